#include "script.h"

#include <errno.h>
#include <lauxlib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_host.h"

void shr_script_hash(const char *buf, size_t len, char out[17]) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < len; i++) {
    h ^= (unsigned char)buf[i];
    h *= 0x100000001b3ULL;
  }
  snprintf(out, 17, "%016llx", (unsigned long long)h);
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 65536, n = 0, got;
  char *buf = malloc(cap);
  while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n < cap) continue;
    char *bigger = realloc(buf, cap * 2);
    if (!bigger) free(buf);
    buf = bigger;
    cap *= 2;
  }
  fclose(f);
  *len = n;
  return buf;
}

static const char *const optional_functions[] = {"init", "retry", "event", NULL};

char *shr_script_read(const char *path, size_t *len, char *err, size_t errlen) {
  char *src = read_file(path, len);
  if (!src) snprintf(err, errlen, "%s: cannot read the script: %s", path, strerror(errno));
  return src;
}

int shr_script_load(lua_State *L, const char *path, shr_script_t *out, char *err, size_t errlen) {
  out->module_ref = LUA_NOREF;
  size_t len;
  char *src = shr_script_read(path, &len, err, errlen);
  if (!src) return -1;
  int rc = shr_script_load_source(L, path, src, len, out, err, errlen);
  free(src);
  return rc;
}

int shr_script_load_source(lua_State *L, const char *path, const char *src, size_t len, shr_script_t *out,
                           char *err, size_t errlen) {
  out->module_ref = LUA_NOREF;
  shr_script_hash(src, len, out->version);
  char chunkname[4096];
  snprintf(chunkname, sizeof chunkname, "@%s", path);
  if (luaL_loadbuffer(L, src, len, chunkname) != 0 || shr_lua_pcall(L, 0, 1) != 0) {
    snprintf(err, errlen, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return -1;
  }
  if (!lua_istable(L, -1)) {
    snprintf(err, errlen, "%s: the script must return a module table, got %s", path, luaL_typename(L, -1));
    lua_pop(L, 1);
    return -1;
  }
  lua_getfield(L, -1, "process");
  int has_process = lua_isfunction(L, -1);
  lua_pop(L, 1);
  if (!has_process) {
    snprintf(err, errlen, "%s: the module has no process(task, ctx) function", path);
    lua_pop(L, 1);
    return -1;
  }
  for (int i = 0; optional_functions[i]; i++) {
    lua_getfield(L, -1, optional_functions[i]);
    int bad = !lua_isnil(L, -1) && !lua_isfunction(L, -1);
    lua_pop(L, 1);
    if (bad) {
      snprintf(err, errlen, "%s: module field '%s' must be a function", path, optional_functions[i]);
      lua_pop(L, 1);
      return -1;
    }
  }
  out->module_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

void shr_script_release(lua_State *L, shr_script_t *s) {
  luaL_unref(L, LUA_REGISTRYINDEX, s->module_ref);
  s->module_ref = LUA_NOREF;
}

typedef struct {
  shr_script_init_cb done;
  void *data;
} init_call_t;

static void on_init_done(shr_thread_t *t, int ok, lua_State *co, void *data) {
  init_call_t *call = data;
  /* On error the traceback string is on top (sched.c). */
  call->done(call->data, ok, ok ? NULL : lua_tostring(co, -1));
  free(call);
}

int shr_script_start_init(shr_env_t *env, const shr_script_t *s, int timeout_ms, shr_script_init_cb done,
                          void *data) {
  lua_State *L = env->L;
  init_call_t *call = malloc(sizeof *call);
  if (!call) return -1;
  call->done = done;
  call->data = data;
  if (shr_lua_require_field(L, "shield.runtime", "init_script") != 0) {
    done(data, 0, lua_tostring(L, -1));
    lua_pop(L, 1);
    free(call);
    return 0;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->module_ref);
  shr_thread_t *t = shr_sched_spawn(env->sched, 1, on_init_done, call);
  if (!t) {
    free(call);
    return -1;
  }
  shr_thread_set_deadline(t, uv_now(env->loop) + (uint64_t)timeout_ms);
  return 0;
}
