/* The Lua C module `shield.c.core`: light threads (spawn, join, sleep, now,
 * yield), logging through runtime/log, and the runtime's identity (role, slot,
 * config). lua/shield/init.lua builds the public `shield` module on it. */
#ifndef SHR_LUA_CORE_H
#define SHR_LUA_CORE_H

#include <lua.h>

int shr_lua_core_open(lua_State *L);

#endif
