/* request{method=, url=, headers={name=value}, body=, timeout_ms=, max_body_bytes=}
 *   -> {status=, headers={lowercased name=value}, body=} | nil, err
 * Repeated response headers are joined with ", ". Errors are http_client.h's
 * ("timeout", "connection refused: ...", "unsupported protocol: ...", ...);
 * the thread's deadline gives nil, "timeout" and removes the transfer.
 * stats() -> {requests=, failed=, cancelled=, connects=, active=} */
#include "lua_http.h"

#include <errno.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_client.h"
#include "sched.h"

#define DEFAULT_TIMEOUT_MS 60000
/* Beyond a day a timeout is a mistake, and curl takes a long. */
#define MAX_TIMEOUT_MS 86400000.0

typedef struct {
  shr_wait_t wait;        /* first: the scheduler hands back &wait */
  shr_http_xfer_t *xfer;  /* in flight; NULL once answered */
  long status;
  int failed;
  char *err;              /* owned; NULL on failure means out of memory */
  char *body;             /* owned, taken from the client */
  size_t body_len;
  char *head;             /* owned: "name\0value\0" ... */
  size_t nheaders;
} req_t;

static void req_free(req_t *r) {
  free(r->err);
  free(r->body);
  free(r->head);
  free(r);
}

/* Copies the headers into one block the push walks later. */
static int keep_headers(req_t *r, const shr_http_client_res_t *res) {
  size_t size = 0;
  for (size_t i = 0; i < res->nheaders; i++)
    size += strlen(res->headers[i].name) + strlen(res->headers[i].value) + 2;
  if (size == 0) return 0;
  char *p = r->head = malloc(size);
  if (!p) return -1;
  for (size_t i = 0; i < res->nheaders; i++) {
    size_t n = strlen(res->headers[i].name) + 1, v = strlen(res->headers[i].value) + 1;
    memcpy(p, res->headers[i].name, n);
    memcpy(p + n, res->headers[i].value, v);
    p += n + v;
  }
  r->nheaders = res->nheaders;
  return 0;
}

static void on_response(shr_http_client_res_t *res, const char *err, void *data) {
  req_t *r = data;
  r->xfer = NULL;
  if (res) {
    r->status = res->status;
    r->body = res->body;
    r->body_len = res->body_len;
    res->body = NULL;
    if (keep_headers(r, res) != 0) err = "out of memory";
  }
  if (err) {
    r->failed = 1;
    r->err = strdup(err);
  }
  shr_sched_wake(&r->wait);
}

static void cancel_req(shr_wait_t *w) {
  req_t *r = (req_t *)w;
  if (r->xfer) shr_http_cancel(r->xfer);
  req_free(r);
}

static int push_response(lua_State *co, shr_wait_t *w) {
  req_t *r = (req_t *)w;
  if (r->failed) {
    lua_pushnil(co);
    lua_pushstring(co, r->err ? r->err : "out of memory");
    req_free(r);
    return 2;
  }
  lua_createtable(co, 0, 3);
  lua_pushnumber(co, (lua_Number)r->status);
  lua_setfield(co, -2, "status");
  lua_createtable(co, 0, (int)r->nheaders);
  const char *p = r->head;
  for (size_t i = 0; i < r->nheaders; i++) {
    const char *name = p, *value = p + strlen(p) + 1;
    p = value + strlen(value) + 1;
    lua_pushstring(co, name);
    lua_pushvalue(co, -1);
    lua_rawget(co, -3);
    if (lua_isstring(co, -1)) {
      lua_pushliteral(co, ", ");
      lua_pushstring(co, value);
      lua_concat(co, 3);
    } else {
      lua_pop(co, 1);
      lua_pushstring(co, value);
    }
    lua_rawset(co, -3);
  }
  lua_setfield(co, -2, "headers");
  lua_pushlstring(co, r->body ? r->body : "", r->body_len);
  lua_setfield(co, -2, "body");
  req_free(r);
  return 1;
}

/* ---- arguments ---- */

/* The string field k of the options table (index 1), or def when absent. */
static const char *opt_string(lua_State *L, const char *k, const char *def, size_t *len) {
  lua_getfield(L, 1, k);
  int t = lua_type(L, -1);
  lua_pop(L, 1);
  if (t == LUA_TNIL) {
    if (len) *len = def ? strlen(def) : 0;
    return def;
  }
  if (t != LUA_TSTRING) luaL_error(L, "bad argument #1 to 'request': %s must be a string, got %s", k, lua_typename(L, t));
  lua_getfield(L, 1, k);
  size_t n;
  const char *s = lua_tolstring(L, -1, &n);
  lua_pop(L, 1); /* still referenced by the options table */
  if (len) *len = n;
  else if (strlen(s) != n) luaL_error(L, "bad argument #1 to 'request': %s contains a NUL byte", k);
  return s;
}

static double opt_positive(lua_State *L, const char *k, double def, double max) {
  lua_getfield(L, 1, k);
  int t = lua_type(L, -1);
  double v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  if (t == LUA_TNIL) return def;
  if (t != LUA_TNUMBER || !(v >= 1) || v > max)
    luaL_error(L, "bad argument #1 to 'request': %s must be a number from 1 to %.0f", k, max);
  return v;
}

/* headers = {name = value}: an array of pointers into strings kept alive by
 * an anchor table at the top of the stack (numbers are converted there). */
static shr_http_client_header_t *collect_headers(lua_State *L, size_t *count) {
  *count = 0;
  lua_getfield(L, 1, "headers");
  int hidx = lua_gettop(L);
  lua_newtable(L);
  int anchor = hidx + 1;
  if (lua_isnil(L, hidx)) return NULL;
  if (!lua_istable(L, hidx)) luaL_error(L, "bad argument #1 to 'request': headers must be a table");
  size_t n = 0;
  lua_pushnil(L);
  while (lua_next(L, hidx)) {
    n++;
    lua_pop(L, 1);
  }
  shr_http_client_header_t *hs = lua_newuserdata(L, (n ? n : 1) * sizeof *hs);
  lua_rawseti(L, anchor, 0);
  size_t i = 0;
  lua_pushnil(L);
  while (lua_next(L, hidx)) {
    if (lua_type(L, -2) != LUA_TSTRING || (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER))
      luaL_error(L, "bad argument #1 to 'request': headers must map names to strings");
    size_t nl, vl;
    hs[i].name = lua_tolstring(L, -2, &nl);
    lua_pushvalue(L, -1);
    hs[i].value = lua_tolstring(L, -1, &vl);
    lua_rawseti(L, anchor, (int)i + 1);
    if (strlen(hs[i].name) != nl || strlen(hs[i].value) != vl)
      luaL_error(L, "bad argument #1 to 'request': header %s contains a NUL byte", hs[i].name);
    i++;
    lua_pop(L, 1);
  }
  *count = n;
  return hs;
}

static shr_http_client_t *client_of(lua_State *L) {
  shr_env_t *env = shr_env_of(L);
  if (!env || !env->http) luaL_error(L, "shield.http: no HTTP client in this state");
  return env->http;
}

static int l_request(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  shr_http_client_t *c = client_of(L);
  shr_thread_t *t = shr_sched_current(L);
  shr_http_client_req_t req = {0};
  req.method = opt_string(L, "method", "GET", NULL);
  req.url = opt_string(L, "url", NULL, NULL);
  if (!req.url) luaL_error(L, "bad argument #1 to 'request': url must be a string, got nil");
  req.body = opt_string(L, "body", NULL, &req.body_len);
  req.timeout_ms = (long)opt_positive(L, "timeout_ms", DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS);
  req.max_body = (size_t)opt_positive(L, "max_body_bytes", (double)SHR_HTTP_MAX_BODY, 1e12);
  req.headers = collect_headers(L, &req.nheaders);
  if (shr_thread_expired(t)) {
    lua_pushnil(L);
    lua_pushliteral(L, "timeout");
    return 2;
  }
  req_t *r = calloc(1, sizeof *r);
  if (!r) return luaL_error(L, "shield.http: out of memory");
  r->wait.push = push_response;
  r->wait.cancel = cancel_req;
  int rc = shr_http_request(c, &req, on_response, r, &r->xfer);
  if (rc != 0) {
    free(r);
    if (rc == -EINVAL) return luaL_error(L, "bad argument #1 to 'request': %s", shr_http_client_error(c));
    lua_pushnil(L);
    lua_pushstring(L, shr_http_client_error(c));
    return 2;
  }
  return shr_sched_wait(L, &r->wait);
}

static int l_stats(lua_State *L) {
  shr_http_client_stats_t s;
  shr_http_client_stats(client_of(L), &s);
  lua_createtable(L, 0, 5);
  lua_pushnumber(L, (lua_Number)s.requests);
  lua_setfield(L, -2, "requests");
  lua_pushnumber(L, (lua_Number)s.failed);
  lua_setfield(L, -2, "failed");
  lua_pushnumber(L, (lua_Number)s.cancelled);
  lua_setfield(L, -2, "cancelled");
  lua_pushnumber(L, (lua_Number)s.connects);
  lua_setfield(L, -2, "connects");
  lua_pushnumber(L, (lua_Number)s.active);
  lua_setfield(L, -2, "active");
  return 1;
}

/* As many connections per host as the worker runs tasks: every task may be
 * waiting on the same LLM server (never fewer than a handful). */
int shr_lua_http_init(shr_env_t *env, char *err, size_t errlen) {
  long max_connections = env->config->pool_concurrency > 8 ? env->config->pool_concurrency : 8;
  if (!(env->http = shr_http_client_new(env->loop, max_connections))) {
    snprintf(err, errlen, "cannot create the HTTP client (libcurl initialisation failed)");
    return -1;
  }
  return 0;
}

void shr_lua_http_close(shr_env_t *env) {
  if (env->http) shr_http_client_close(env->http);
  env->http = NULL;
}

int shr_lua_http_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"request", l_request}, {"stats", l_stats}, {NULL, NULL}};
  lua_newtable(L);
  luaL_setfuncs(L, fns, 0);
  return 1;
}
