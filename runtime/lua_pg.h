/* The Lua C module `shield.c.pg`: parameterized queries and transaction
 * primitives for light threads, on the environment's PostgreSQL pool.
 * lua/shield/pg.lua builds shield.pg on it; env.c creates and closes the pool
 * here. Relies on pg.h and the scheduler (sched.h). */
#ifndef SHR_LUA_PG_H
#define SHR_LUA_PG_H

#include <lua.h>
#include <stddef.h>

#include "env.h"

/* Creates env->pg from config->postgres_url, with pool.concurrency sessions
 * (at most SHR_LUA_PG_MAX_SESSIONS). Returns 0, or -1 with err set. */
#define SHR_LUA_PG_MAX_SESSIONS 8
int shr_lua_pg_init(shr_env_t *env, char *err, size_t errlen);
/* Closes env->pg (pending queries fail with "closed") and clears it. */
void shr_lua_pg_close(shr_env_t *env);

int shr_lua_pg_open(lua_State *L);

#endif
