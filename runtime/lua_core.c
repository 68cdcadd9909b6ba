#include "lua_core.h"

#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "env.h"
#include "lua_host.h"
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

static int compare_names(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* listdir(path) -> sorted array of entry names (no dot files), or nil, err. */
static int l_listdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  DIR *d = opendir(path);
  if (!d) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(errno));
    return 2;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      char **bigger = realloc(names, cap * sizeof *names);
      if (!bigger) break;
      names = bigger;
    }
    names[n++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, n, sizeof *names, compare_names);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushstring(L, names[i]);
    lua_rawseti(L, -2, (int)i + 1);
    free(names[i]);
  }
  free(names);
  return 1;
}

/* random_hex(nbytes) -> 2*nbytes hex digits from the kernel's CSPRNG. */
static int l_random_hex(lua_State *L) {
  int n = (int)luaL_checkinteger(L, 1);
  luaL_argcheck(L, n > 0 && n <= 64, 1, "1 to 64 bytes");
  unsigned char buf[64];
  if (getrandom(buf, (size_t)n, 0) != n) return luaL_error(L, "random_hex: getrandom failed");
  static const char digits[] = "0123456789abcdef";
  char out[128];
  for (int i = 0; i < n; i++) {
    out[2 * i] = digits[buf[i] >> 4];
    out[2 * i + 1] = digits[buf[i] & 15];
  }
  lua_pushlstring(L, out, (size_t)n * 2);
  return 1;
}

int shr_lua_core_open(lua_State *L) {
  shr_env_t *env = shr_env_of(L);
  lua_newtable(L);
  shr_sched_lua_register(L);
  static const luaL_Reg fns[] = {{"log", l_log}, {"log_enabled", l_log_enabled}, {"memory", l_memory},
                                 {"listdir", l_listdir}, {"random_hex", l_random_hex},
                                 {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
  lua_pushstring(L, env->role);
  lua_setfield(L, -2, "role");
  lua_pushinteger(L, env->slot);
  lua_setfield(L, -2, "slot");
  lua_pushstring(L, env->config->json);
  lua_setfield(L, -2, "config_json");
  lua_pushstring(L, env->config->base_dir);
  lua_setfield(L, -2, "config_dir");
  lua_pushstring(L, shr_lua_dir());
  lua_setfield(L, -2, "lua_dir");
  return 1;
}
