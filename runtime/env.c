#include "env.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "lua_core.h"
#include "lua_host.h"
#include "lua_http.h"
#include "lua_pg.h"
#include "lua_redis.h"
#include "redis.h"

static char env_key;

shr_env_t *shr_env_of(lua_State *L) {
  lua_pushlightuserdata(L, &env_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  shr_env_t *env = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return env;
}

static void preload(lua_State *L, const char *name, lua_CFunction open) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, open);
  lua_setfield(L, -2, name);
  lua_pop(L, 2);
}

int shr_env_init(shr_env_t *env, uv_loop_t *loop, const shr_config_t *cfg, const char *role, int slot,
                 const char *extra_path, char *err, size_t errlen) {
  memset(env, 0, sizeof *env);
  env->loop = loop;
  env->config = cfg;
  env->role = role;
  env->slot = slot;
  env->mem.limit = cfg->pool_lua_memory_limit;
  env->L = shr_lua_new(&env->mem, extra_path);
  if (!env->L) {
    snprintf(err, errlen, "cannot create a Lua state");
    return -1;
  }
  lua_State *L = env->L;
  lua_pushlightuserdata(L, &env_key);
  lua_pushlightuserdata(L, env);
  lua_rawset(L, LUA_REGISTRYINDEX);
  env->sched = shr_sched_new(loop, L);

  /* bindings: init */
  if (shr_lua_http_init(env, err, errlen) != 0) {
    shr_env_close(env);
    return -1;
  }
  if (shr_lua_pg_init(env, err, errlen) != 0) {
    shr_env_close(env);
    return -1;
  }
  if (!(env->redis = shr_redis_new(loop, cfg->redis_url, "main"))) {
    snprintf(err, errlen, "redis.url: cannot create the Redis client for %s", cfg->redis_url);
    shr_env_close(env);
    return -1;
  }

  preload(L, "shield.c.core", shr_lua_core_open);
  /* bindings: preload */
  preload(L, "shield.c.http", shr_lua_http_open);
  preload(L, "shield.c.pg", shr_lua_pg_open);
  preload(L, "shield.c.redis", shr_lua_redis_open);
  return 0;
}

void shr_env_close(shr_env_t *env) {
  if (!env->L) return;
  shr_sched_close(env->sched);
  /* bindings: close */
  shr_lua_http_close(env);
  shr_lua_pg_close(env);
  if (env->redis) shr_redis_close(env->redis);
  if (env->redis_blocking) shr_redis_close(env->redis_blocking);
  env->redis = env->redis_blocking = NULL;
  lua_close(env->L);
  env->L = NULL;
}
