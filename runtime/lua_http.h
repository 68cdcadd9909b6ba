/* The Lua C module `shield.c.http` (shield.http in scripts): HTTP requests
 * that park the calling light thread until the answer, on the environment's
 * HTTP client. env.c creates and closes the client here. Relies on
 * http_client.h and the scheduler (sched.h). */
#ifndef SHR_LUA_HTTP_H
#define SHR_LUA_HTTP_H

#include <lua.h>
#include <stddef.h>

#include "env.h"

/* Creates env->http. Returns 0, or -1 with err set. */
int shr_lua_http_init(shr_env_t *env, char *err, size_t errlen);
/* Closes env->http (transfers still in flight end with "closed") and clears it. */
void shr_lua_http_close(shr_env_t *env);

int shr_lua_http_open(lua_State *L);

#endif
