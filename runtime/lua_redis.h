/* The Lua C module `shield.c.redis` (shield.redis): call, pipeline and server
 * scripts on the environment's Redis client, yielding the calling light thread
 * until the answer. Preloaded by env.c; relies on redis.c, sched and env. */
#ifndef SHR_LUA_REDIS_H
#define SHR_LUA_REDIS_H

#include <lua.h>

int shr_lua_redis_open(lua_State *L);

#endif
