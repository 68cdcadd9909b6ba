#include "api.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_server.h"
#include "log.h"
#include "lua_host.h"
#include "sse.h"

/* A Lua handler that has not answered by then gets a 504. */
#define HANDLER_TIMEOUT_MS 30000

/* A request whose Lua handler is still running. */
typedef struct call {
  shr_http_req_t *req;
  shr_thread_t *thread;
  shr_api_t *api;
  struct call *prev, *next;
} call_t;

struct shr_api {
  shr_env_t *env;
  shr_http_server_t *server;
  shr_sse_t *sse;
  int serve_ref; /* registry: shield.api.serve */
  int headers_mt_ref; /* registry: the metatable of req.headers */
  call_t *calls; /* answered at close if their handler never finishes */
};

static void call_remove(call_t *c) {
  if (c->prev)
    c->prev->next = c->next;
  else
    c->api->calls = c->next;
  if (c->next) c->next->prev = c->prev;
}

/* The Lua router answered: status, content type, header lines, body. */
static void on_handler_done(shr_thread_t *t, int ok, lua_State *co, void *data) {
  call_t *c = data;
  shr_http_req_t *req = c->req;
  call_remove(c);
  free(c);
  if (!ok) {
    shr_error("http %s %s: %s", shr_http_req_method(req), shr_http_req_path(req), lua_tostring(co, -1));
    shr_http_problem(req, 500, "Internal Server Error", "the request handler failed; see the log");
    return;
  }
  int status = (int)lua_tointeger(co, 1);
  const char *content_type = lua_tostring(co, 2);
  const char *headers = lua_tostring(co, 3);
  size_t len = 0;
  const char *body = lua_tolstring(co, 4, &len);
  if (status < 100 || status > 599 || !body) {
    shr_http_problem(req, 500, "Internal Server Error", "the request handler gave no answer");
    return;
  }
  shr_http_respond(req, status, content_type, headers && *headers ? headers : NULL, body, len);
}

/* req.headers for the Lua routes: the request's headers copied into a
 * userdata, looked up by name (any case; the first of repeated ones, as
 * shr_http_req_header) when a route reads one. Only ingest does: a table of
 * them cost every request ~1,300 instructions, this copy ~500. */
typedef struct {
  size_t count;
  char pairs[]; /* count times "name\0value\0" */
} headers_t;

static int l_header(lua_State *L) {
  const headers_t *h = lua_touserdata(L, 1);
  const char *want = lua_tostring(L, 2);
  const char *name = h->pairs;
  for (size_t i = 0; want && i < h->count; i++) {
    const char *value = name + strlen(name) + 1;
    if (strcasecmp(name, want) == 0) {
      lua_pushstring(L, value);
      return 1;
    }
    name = value + strlen(value) + 1;
  }
  lua_pushnil(L);
  return 1;
}

static void push_headers(lua_State *L, const shr_api_t *api, const shr_http_req_t *req) {
  size_t n = shr_http_req_header_count(req), size = 0;
  const char *name, *value;
  for (size_t i = 0; i < n; i++) {
    shr_http_req_header_at(req, i, &name, &value);
    size += strlen(name) + strlen(value) + 2;
  }
  headers_t *h = lua_newuserdata(L, sizeof *h + size);
  h->count = n;
  char *p = h->pairs;
  for (size_t i = 0; i < n; i++) {
    shr_http_req_header_at(req, i, &name, &value);
    p = stpcpy(p, name) + 1;
    p = stpcpy(p, value) + 1;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, api->headers_mt_ref);
  lua_setmetatable(L, -2);
}

static void on_request(shr_http_req_t *req, void *data) {
  shr_api_t *api = data;
  if (strcmp(shr_http_req_path(req), "/events/stream") == 0) {
    if (strcmp(shr_http_req_method(req), "GET") != 0) {
      shr_http_problem(req, 405, "Method Not Allowed", "the events stream answers GET only");
      return;
    }
    if (!api->sse) {
      shr_http_problem(req, 503, "Service Unavailable", "shutting down");
      return;
    }
    shr_sse_subscribe(api->sse, req);
    return;
  }
  lua_State *L = api->env->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, api->serve_ref);
  lua_pushstring(L, shr_http_req_method(req));
  lua_pushstring(L, shr_http_req_path(req));
  lua_pushstring(L, shr_http_req_query(req));
  push_headers(L, api, req);
  size_t len = 0;
  const char *body = shr_http_req_body(req, &len);
  lua_pushlstring(L, body ? body : "", body ? len : 0);
  lua_pushstring(L, shr_http_req_id(req));
  call_t *c = calloc(1, sizeof *c);
  shr_thread_t *t = c ? shr_sched_spawn_reusing(api->env->sched, 6, on_handler_done, c) : NULL;
  if (!t) {
    if (!c) lua_pop(L, 7);
    free(c);
    shr_http_problem(req, 503, "Service Unavailable", "out of memory");
    return;
  }
  c->req = req;
  c->thread = t;
  c->api = api;
  c->next = api->calls;
  if (api->calls) api->calls->prev = c;
  api->calls = c;
  shr_thread_set_deadline(t, uv_now(api->env->loop) + HANDLER_TIMEOUT_MS);
}

shr_api_t *shr_api_start(shr_env_t *env, char *err, size_t errlen) {
  shr_api_t *api = calloc(1, sizeof *api);
  if (!api) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  api->env = env;
  lua_State *L = env->L;
  lua_getglobal(L, "require");
  lua_pushliteral(L, "shield.api");
  if (shr_lua_pcall(L, 1, 1) != 0) {
    snprintf(err, errlen, "cannot load the API routes: %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    free(api);
    return NULL;
  }
  lua_getfield(L, -1, "serve");
  api->serve_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, l_header);
  lua_setfield(L, -2, "__index");
  api->headers_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);

  shr_http_server_opts_t opts;
  shr_http_server_opts_from_config(&opts, env->config);
  api->server = shr_http_server_new(env->loop, &opts, on_request, api);
  api->sse = shr_sse_new(env);
  if (!api->server || !api->sse ||
      shr_http_server_listen(api->server, env->config->http_listen, err, errlen) != 0) {
    if (!api->server || !api->sse) snprintf(err, errlen, "out of memory");
    shr_api_close(api);
    return NULL;
  }
  shr_info("HTTP API listening on %s (port %d)", env->config->http_listen, shr_http_server_port(api->server));
  /* An access-log line per request: written once per loop turn, not each
   * with its own write(2). */
  int rc = shr_log_buffer_start(env->loop);
  if (rc < 0) shr_warn("log lines unbuffered: %s", uv_strerror(rc));
  return api;
}

int shr_api_port(const shr_api_t *api) { return shr_http_server_port(api->server); }

void shr_api_stop_accepting(shr_api_t *api) {
  shr_http_server_stop_accepting(api->server);
  if (api->sse) {
    shr_sse_close(api->sse);
    api->sse = NULL;
  }
}

void shr_api_close(shr_api_t *api) {
  while (api->calls) {
    call_t *c = api->calls;
    call_remove(c);
    shr_thread_kill(c->thread);
    shr_http_problem(c->req, 503, "Service Unavailable", "shutting down");
    free(c);
  }
  if (api->sse) shr_sse_close(api->sse);
  if (api->server) shr_http_server_close(api->server, NULL);
  luaL_unref(api->env->L, LUA_REGISTRYINDEX, api->serve_ref);
  luaL_unref(api->env->L, LUA_REGISTRYINDEX, api->headers_mt_ref);
  shr_log_buffer_stop();
  free(api);
}
