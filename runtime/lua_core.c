#include "lua_core.h"

#include <lauxlib.h>

#include "env.h"
#include "log.h"

/* log(level, message): the message is already one string (init.lua joins). */
static int l_log(lua_State *L) {
  static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
  int level = luaL_checkoption(L, 1, NULL, levels);
  const char *msg = luaL_checkstring(L, 2);
  if (shr_log_enabled((shr_log_level_t)level)) shr_log((shr_log_level_t)level, "%s", msg);
  return 0;
}

static int l_log_enabled(lua_State *L) {
  static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
  lua_pushboolean(L, shr_log_enabled((shr_log_level_t)luaL_checkoption(L, 1, NULL, levels)));
  return 1;
}

static int l_memory(lua_State *L) {
  shr_env_t *env = shr_env_of(L);
  lua_pushnumber(L, (lua_Number)env->mem.used);
  lua_pushnumber(L, (lua_Number)env->mem.peak);
  return 2;
}

int shr_lua_core_open(lua_State *L) {
  shr_env_t *env = shr_env_of(L);
  lua_newtable(L);
  shr_sched_lua_register(L);
  static const luaL_Reg fns[] = {{"log", l_log}, {"log_enabled", l_log_enabled}, {"memory", l_memory}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
  lua_pushstring(L, env->role);
  lua_setfield(L, -2, "role");
  lua_pushinteger(L, env->slot);
  lua_setfield(L, -2, "slot");
  lua_pushstring(L, env->config->json);
  lua_setfield(L, -2, "config_json");
  return 1;
}
