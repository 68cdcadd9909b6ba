#include "lua_host.h"

#include <lauxlib.h>
#include <limits.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int luaopen_cjson(lua_State *L);
int luaopen_cjson_safe(lua_State *L);

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  shr_lua_mem_t *mem = ud;
  if (nsize == 0) {
    free(ptr);
    mem->used -= osize;
    return NULL;
  }
  /* Refuse growth past the cap; LuaJIT turns NULL into a memory error. */
  if (mem->limit && nsize > osize && mem->used + (nsize - osize) > mem->limit) return NULL;
  void *p = realloc(ptr, nsize);
  if (!p) return NULL;
  mem->used = mem->used - osize + nsize;
  if (mem->used > mem->peak) mem->peak = mem->used;
  return p;
}

static int dir_has_shield(const char *dir) {
  char probe[PATH_MAX];
  snprintf(probe, sizeof probe, "%s/shield/init.lua", dir);
  return access(probe, R_OK) == 0;
}

const char *shr_lua_dir(void) {
  static char dir[PATH_MAX];
  if (dir[0]) return dir;
  const char *env = getenv("SHIELD_LUA_DIR");
  if (env && *env) {
    snprintf(dir, sizeof dir, "%s", env);
    return dir;
  }
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) {
      *slash = '\0';
      snprintf(dir, sizeof dir, "%s/../share/shield-runtime/lua", exe);
      if (dir_has_shield(dir)) return dir;
    }
  }
  snprintf(dir, sizeof dir, "%s", dir_has_shield(SHR_INSTALL_LUA_DIR) ? SHR_INSTALL_LUA_DIR : SHR_SOURCE_LUA_DIR);
  return dir;
}

static void preload(lua_State *L, const char *name, lua_CFunction fn) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, fn);
  lua_setfield(L, -2, name);
  lua_pop(L, 2);
}

lua_State *shr_lua_new(shr_lua_mem_t *mem, const char *extra_path) {
  lua_State *L = lua_newstate(counting_alloc, mem);
  if (!L) return NULL;
  luaL_openlibs(L);
  preload(L, "cjson", luaopen_cjson);
  preload(L, "cjson.safe", luaopen_cjson_safe);

  const char *lua_dir = shr_lua_dir();
  lua_getglobal(L, "package");
  if (extra_path)
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s/?.lua;%s/?/init.lua", extra_path, extra_path, lua_dir, lua_dir);
  else
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", lua_dir, lua_dir);
  lua_setfield(L, -2, "path");
  /* Native modules come linked in; never load .so files from the working folder. */
  lua_pushliteral(L, "");
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
  return L;
}

static int traceback_handler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) {
    if (lua_istable(L, 1)) {
      lua_getfield(L, 1, "message");
      msg = lua_tostring(L, -1);
    }
    if (!msg) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int shr_lua_pcall(lua_State *L, int nargs, int nresults) {
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, traceback_handler);
  lua_insert(L, base);
  int rc = lua_pcall(L, nargs, nresults, base);
  lua_remove(L, base);
  return rc;
}

int shr_lua_require(lua_State *L, const char *module) {
  lua_getglobal(L, "require");
  lua_pushstring(L, module);
  return shr_lua_pcall(L, 1, 1);
}

int shr_lua_require_field(lua_State *L, const char *module, const char *name) {
  int rc = shr_lua_require(L, module);
  if (rc != 0) return rc;
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
  return 0;
}

int shr_lua_loadfile(lua_State *L, const char *path) {
  int rc = luaL_loadfile(L, path);
  if (rc != 0 && rc != LUA_ERRSYNTAX) {
    lua_pop(L, 1);
    lua_pushfstring(L, "%s: cannot read file", path);
  }
  return rc;
}
