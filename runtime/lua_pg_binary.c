/* Query parameters in PostgreSQL's binary format. shield.pg.real_array packs
 * Lua numbers into the binary form of a real[] (array_recv's input), which
 * the server reads with no float4in per element and the worker writes with
 * no number formatting: embeddings are hundreds to thousands of numbers. */
#include "lua_pg_binary.h"

#include <arpa/inet.h>
#include <float.h>
#include <lauxlib.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define BINARY_MT "shield.pg.binary"

enum { OID_FLOAT4 = 700 };

typedef struct {
  size_t len;
  unsigned char bytes[]; /* the parameter's value as the server reads it */
} binary_t;

static unsigned char *put_u32(unsigned char *at, uint32_t v) {
  v = htonl(v);
  memcpy(at, &v, 4);
  return at + 4;
}

/* real_array(list[, list...]) -> one real[] parameter of every list's numbers
 * in order (a one-dimensional array; no list, or only empty ones: '{}'). */
static int l_real_array(lua_State *L) {
  int nargs = lua_gettop(L);
  size_t count = 0;
  for (int a = 1; a <= nargs; a++) {
    luaL_checktype(L, a, LUA_TTABLE);
    count += lua_objlen(L, a);
  }
  if (count > INT32_MAX / 8)
    return luaL_error(L, "shield.pg.real_array: %f numbers are too many", (lua_Number)count);
  /* ndim, has-null flag, element type; then one dimension's length and lower
   * bound; then each element as a 4-byte length and a big-endian float. */
  size_t len = count ? 20 + 8 * count : 12;
  binary_t *b = lua_newuserdata(L, sizeof *b + len);
  b->len = len;
  unsigned char *at = put_u32(b->bytes, count ? 1 : 0);
  at = put_u32(at, 0);
  at = put_u32(at, OID_FLOAT4);
  if (count) {
    at = put_u32(at, (uint32_t)count);
    at = put_u32(at, 1);
  }
  for (int a = 1; a <= nargs; a++) {
    size_t n = lua_objlen(L, a);
    for (size_t i = 1; i <= n; i++) {
      lua_rawgeti(L, a, (int)i);
      if (lua_type(L, -1) != LUA_TNUMBER)
        return luaL_error(L, "shield.pg.real_array: argument %d, element %d: number expected, got %s", a, (int)i,
                          luaL_typename(L, -1));
      double d = lua_tonumber(L, -1);
      lua_pop(L, 1);
      /* float4in refuses what a real cannot hold; so does this (%f: Lua's %.14g). */
      if (isfinite(d) && fabs(d) > FLT_MAX)
        return luaL_error(L, "shield.pg.real_array: argument %d, element %d: %f is out of range for type real", a,
                          (int)i, d);
      float f = (float)d;
      uint32_t bits;
      memcpy(&bits, &f, 4);
      at = put_u32(at, 4);
      at = put_u32(at, bits);
    }
  }
  luaL_getmetatable(L, BINARY_MT);
  lua_setmetatable(L, -2);
  return 1;
}

int shr_lua_pg_binary_param(lua_State *L, int idx, const char **bytes, int *len) {
  binary_t *b = luaL_testudata(L, idx, BINARY_MT);
  if (!b) return 0;
  *bytes = (const char *)b->bytes;
  *len = (int)b->len;
  return 1;
}

void shr_lua_pg_binary_register(lua_State *L) {
  luaL_newmetatable(L, BINARY_MT);
  lua_pop(L, 1);
  lua_pushcfunction(L, l_real_array);
  lua_setfield(L, -2, "real_array");
}
