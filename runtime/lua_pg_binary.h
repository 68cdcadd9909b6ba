/* Query parameters in PostgreSQL's binary format (shield.pg.real_array). */
#ifndef SHR_LUA_PG_BINARY_H
#define SHR_LUA_PG_BINARY_H

#include <lua.h>

/* Adds real_array to the table on top of the stack. */
void shr_lua_pg_binary_register(lua_State *L);

/* 1 and the value's bytes if the value at idx is a binary parameter (alive
 * while the value is), else 0. */
int shr_lua_pg_binary_param(lua_State *L, int idx, const char **bytes, int *len);

#endif
