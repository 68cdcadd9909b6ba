/* The processing script: loads a script file into a worker environment's state
 * (module table kept in the registry, version = hash of the source) and runs
 * its init as a light thread. Used by workers, `--check` and the supervisor's
 * scratch validation on start and reload; relies on env and sched. */
#ifndef SHR_SCRIPT_H
#define SHR_SCRIPT_H

#include <lauxlib.h>
#include <lua.h>

#include "env.h"

typedef struct shr_script {
  int module_ref;   /* registry ref of the module table, LUA_NOREF if none */
  char version[17]; /* FNV-1a 64 of the source, hex */
} shr_script_t;

/* Compiles and runs path, checks the module shape. Returns 0, or -1 with err
 * naming the file (and line for syntax and runtime errors). */
int shr_script_load(lua_State *L, const char *path, shr_script_t *out, char *err, size_t errlen);
/* The same from src (len bytes) read from path earlier. */
int shr_script_load_source(lua_State *L, const char *path, const char *src, size_t len, shr_script_t *out,
                           char *err, size_t errlen);
/* The file's bytes (malloc'd, *len set), or NULL with err. */
char *shr_script_read(const char *path, size_t *len, char *err, size_t errlen);
void shr_script_release(lua_State *L, shr_script_t *s);

typedef void (*shr_script_init_cb)(void *data, int ok, const char *err);
/* Runs script.init(config.lightrag) in a new light thread of env, with a
 * deadline of timeout_ms; done gets the error with its traceback on failure. */
int shr_script_start_init(shr_env_t *env, const shr_script_t *s, int timeout_ms, shr_script_init_cb done,
                          void *data);

/* FNV-1a 64 of buf as 16 hex digits. */
void shr_script_hash(const char *buf, size_t len, char out[17]);

#endif
