/* The Lua C module `shield.c.supervisor`, only in the supervisor's state: the
 * scoreboard (workers, their counters), the script version and reload state,
 * for /health/detailed and /metrics. Relies on supervisor and scoreboard. */
#ifndef SHR_LUA_SUPERVISOR_H
#define SHR_LUA_SUPERVISOR_H

#include <lua.h>

#include "supervisor.h"

/* Registers the module in package.preload with s bound to it. */
void shr_lua_supervisor_preload(lua_State *L, shr_supervisor_t *s);

#endif
