/* LuaJIT states for the runtime: a counting allocator that caps a state's memory,
 * the standard libraries, lua-cjson preloaded (linked in statically), and
 * package.path set to the project's lua/ folder and the script's folder. Used by
 * config loading, workers, `run` and the supervisor's API state. */
#ifndef SHR_LUA_HOST_H
#define SHR_LUA_HOST_H

#include <lua.h>
#include <stddef.h>

typedef struct {
  size_t used;  /* bytes currently allocated by the state */
  size_t limit; /* 0 = unlimited */
  size_t peak;
} shr_lua_mem_t;

/* The folder holding lua/shield: $SHIELD_LUA_DIR, else next to the installed
 * binary (../share/shield-runtime/lua), else the source tree. */
const char *shr_lua_dir(void);

/* A new state; extra_path (may be NULL) is a folder searched for modules before
 * lua/. mem must outlive the state. */
lua_State *shr_lua_new(shr_lua_mem_t *mem, const char *extra_path);

/* lua_pcall with a traceback message handler. On error the message (with
 * traceback) is left on the stack. */
int shr_lua_pcall(lua_State *L, int nargs, int nresults);

/* Pushes require(module). On error returns non-zero with the message (with
 * traceback) on the stack instead. */
int shr_lua_require(lua_State *L, const char *module);
/* Pushes require(module)[name]. On error returns non-zero with the message
 * (with traceback) on the stack instead. */
int shr_lua_require_field(lua_State *L, const char *module, const char *name);

/* Loads a file as a chunk (syntax errors name the file and line). */
int shr_lua_loadfile(lua_State *L, const char *path);

#endif
