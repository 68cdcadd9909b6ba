#include "config.h"

#include <errno.h>
#include <lauxlib.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lua_host.h"

static void append(char *err, size_t errlen, const char *fmt, ...) {
  size_t used = strlen(err);
  if (used + 1 >= errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err + used, errlen - used, fmt, ap);
  va_end(ap);
}

/* t[section][key] of the validated table at the top of L. */
static void get_field(lua_State *L, const char *section, const char *key) {
  if (section) {
    lua_getfield(L, -1, section);
    lua_getfield(L, -1, key);
    lua_remove(L, -2);
  } else {
    lua_getfield(L, -1, key);
  }
}

static char *get_string(lua_State *L, const char *section, const char *key) {
  get_field(L, section, key);
  const char *s = lua_tostring(L, -1);
  char *copy = s ? strdup(s) : NULL;
  lua_pop(L, 1);
  return copy;
}

static long long get_number(lua_State *L, const char *section, const char *key) {
  get_field(L, section, key);
  long long v = (long long)lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

/* The script path as written, resolved against the working folder, then the
 * config file's folder; NULL if neither exists. */
static char *resolve_script(const char *script, const char *base_dir) {
  char candidate[PATH_MAX], real[PATH_MAX];
  if (script[0] == '/' || access(script, R_OK) == 0) {
    snprintf(candidate, sizeof candidate, "%s", script);
  } else {
    snprintf(candidate, sizeof candidate, "%s/%s", base_dir, script);
  }
  if (!realpath(candidate, real)) return NULL;
  return strdup(real);
}

static char *dir_of(const char *path) {
  char real[PATH_MAX];
  const char *p = realpath(path, real) ? real : path;
  char *copy = strdup(p);
  char *slash = strrchr(copy, '/');
  if (!slash) {
    free(copy);
    return strdup(".");
  }
  if (slash == copy) slash[1] = '\0';
  else *slash = '\0';
  return copy;
}

static void fill(shr_config_t *c, lua_State *L) {
  c->redis_url = get_string(L, "redis", "url");
  c->postgres_url = get_string(L, "postgres", "url");
  c->http_listen = get_string(L, "http", "listen");
  c->http_auth_token = get_string(L, "http", "auth_token");
  c->http_max_body_bytes = (size_t)get_number(L, "http", "max_body_bytes");
  c->http_max_connections = (int)get_number(L, "http", "max_connections");
  c->http_header_timeout_ms = (int)get_number(L, "http", "header_timeout_ms");
  c->http_idle_timeout_ms = (int)get_number(L, "http", "idle_timeout_ms");
  c->pool_size = (int)get_number(L, "pool", "size");
  c->pool_concurrency = (int)get_number(L, "pool", "concurrency");
  c->pool_batch_size = (int)get_number(L, "pool", "batch_size");
  c->pool_retry_attempts = (int)get_number(L, "pool", "retry_attempts");
  c->pool_timeout_seconds = (int)get_number(L, "pool", "timeout_seconds");
  c->pool_health_check_interval = (int)get_number(L, "pool", "health_check_interval");
  c->pool_max_tasks_per_child = (int)get_number(L, "pool", "max_tasks_per_child");
  c->pool_graceful_shutdown_timeout = (int)get_number(L, "pool", "graceful_shutdown_timeout");
  c->pool_stall_seconds = (int)get_number(L, "pool", "stall_seconds");
  c->pool_lua_memory_limit = (size_t)get_number(L, "pool", "lua_memory_mb") * 1024 * 1024;
  c->streams_ingestion = get_string(L, "streams", "ingestion");
  c->streams_group = get_string(L, "streams", "group");
  c->streams_events = get_string(L, "streams", "events");
  c->streams_dead_letter = get_string(L, "streams", "dead_letter");
  c->streams_retry = get_string(L, "streams", "retry");
  c->streams_events_maxlen = (int)get_number(L, "streams", "events_maxlen");
  c->jobs_status_ttl = (int)get_number(L, "jobs", "status_ttl");
  c->jobs_max_chunks = (int)get_number(L, "jobs", "max_chunks");
  c->jobs_max_chunk_bytes = (size_t)get_number(L, "jobs", "max_chunk_bytes");
  c->jobs_idempotency_ttl = (int)get_number(L, "jobs", "idempotency_ttl");
  c->log_level = get_string(L, "log", "level");
  c->log_format = get_string(L, "log", "format");
}

/* Runs the config file and the schema; leaves the validated table on top. */
static int evaluate(lua_State *L, const char *path, char *err, size_t errlen) {
  if (access(path, R_OK) != 0) {
    append(err, errlen, "%s: cannot read the configuration file: %s\n", path, strerror(errno));
    return -1;
  }
  if (shr_lua_loadfile(L, path) != 0 || lua_pcall(L, 0, 1, 0) != 0) {
    /* The message already starts with "path:line:". */
    append(err, errlen, "%s\n", lua_tostring(L, -1));
    return -1;
  }
  lua_getglobal(L, "require");
  lua_pushliteral(L, "shield.config");
  if (shr_lua_pcall(L, 1, 1) != 0) {
    append(err, errlen, "%s: cannot load the schema: %s\n", path, lua_tostring(L, -1));
    return -1;
  }
  lua_getfield(L, -1, "validate");
  lua_pushvalue(L, -3);
  if (shr_lua_pcall(L, 1, 2) != 0) {
    append(err, errlen, "%s: %s\n", path, lua_tostring(L, -1));
    return -1;
  }
  if (lua_isnil(L, -2)) {
    int n = (int)lua_objlen(L, -1);
    for (int i = 1; i <= n; i++) {
      lua_rawgeti(L, -1, i);
      append(err, errlen, "%s: %s\n", path, lua_tostring(L, -1));
      lua_pop(L, 1);
    }
    return -1;
  }
  lua_pop(L, 1);
  return 0;
}

static int encode_json(lua_State *L, shr_config_t *c, char *err, size_t errlen) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "cjson");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "encode");
  lua_pushvalue(L, -3);
  if (lua_pcall(L, 1, 1, 0) != 0) {
    append(err, errlen, "%s: lightrag: %s\n", c->path, lua_tostring(L, -1));
    lua_pop(L, 2);
    return -1;
  }
  c->json = strdup(lua_tostring(L, -1));
  lua_pop(L, 2);
  return 0;
}

int shr_config_load(shr_config_t *c, const char *path, char *err, size_t errlen) {
  memset(c, 0, sizeof *c);
  err[0] = '\0';
  c->path = strdup(path);
  c->base_dir = dir_of(path);
  shr_lua_mem_t mem = {0};
  lua_State *L = shr_lua_new(&mem, NULL);
  if (!L) {
    append(err, errlen, "%s: out of memory\n", path);
    return -1;
  }
  int rc = evaluate(L, path, err, errlen);
  if (rc == 0) {
    fill(c, L);
    char *script = get_string(L, NULL, "script");
    c->script = resolve_script(script, c->base_dir);
    if (!c->script) {
      append(err, errlen, "%s: script: file \"%s\" not found (looked in the working folder and in %s)\n", path,
             script, c->base_dir);
      rc = -1;
    } else {
      /* Workers see the resolved path. */
      lua_pushstring(L, c->script);
      lua_setfield(L, -2, "script");
      rc = encode_json(L, c, err, errlen);
    }
    free(script);
  }
  lua_close(L);
  size_t len = strlen(err);
  if (len && err[len - 1] == '\n') err[len - 1] = '\0';
  return rc;
}

void shr_config_free(shr_config_t *c) {
  char **strings[] = {&c->path,           &c->base_dir,          &c->redis_url,        &c->postgres_url,
                      &c->http_listen,    &c->http_auth_token,   &c->streams_ingestion, &c->streams_group,
                      &c->streams_events, &c->streams_dead_letter, &c->streams_retry,   &c->script,
                      &c->log_level,      &c->log_format,        &c->json};
  for (size_t i = 0; i < sizeof strings / sizeof *strings; i++) {
    free(*strings[i]);
    *strings[i] = NULL;
  }
}
