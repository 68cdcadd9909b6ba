#include "run.h"

#include <lauxlib.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "log.h"
#include "lua_host.h"

typedef struct {
  uv_loop_t *loop;
  int finished;
  int status;
} run_state_t;

/* Exit status from the file's first result: a number is the status, false is
 * 1, anything else (nil, true) is 0; an error is 1 and is logged. */
static void on_main_done(shr_thread_t *t, int ok, lua_State *co, void *data) {
  run_state_t *st = data;
  st->finished = 1;
  if (!ok) {
    shr_error("%s", lua_tostring(co, -1));
    st->status = 1;
  } else if (lua_gettop(co) >= 1 && lua_type(co, 1) == LUA_TNUMBER) {
    st->status = (int)lua_tointeger(co, 1);
  } else if (lua_gettop(co) >= 1 && lua_type(co, 1) == LUA_TBOOLEAN && !lua_toboolean(co, 1)) {
    st->status = 1;
  } else {
    st->status = 0;
  }
  uv_stop(st->loop);
}

int shr_run_file(const shr_config_t *cfg, const char *file, int argc, char **argv) {
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", file);
  char *slash = strrchr(dir, '/');
  if (slash)
    *slash = '\0';
  else
    snprintf(dir, sizeof dir, ".");

  uv_loop_t loop;
  uv_loop_init(&loop);
  shr_env_t env;
  char err[1024];
  if (shr_env_init(&env, &loop, cfg, "run", -1, dir, err, sizeof err) != 0) {
    fprintf(stderr, "shield-runtime: %s\n", err);
    return 1;
  }
  lua_State *L = env.L;
  /* arg table as the standalone interpreter makes it. */
  lua_createtable(L, argc, 1);
  lua_pushstring(L, file);
  lua_rawseti(L, -2, 0);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setglobal(L, "arg");

  run_state_t st = {&loop, 0, 1};
  if (shr_lua_loadfile(L, file) != 0) {
    fprintf(stderr, "shield-runtime: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
  } else {
    for (int i = 0; i < argc; i++) lua_pushstring(L, argv[i]);
    shr_sched_spawn(env.sched, argc, on_main_done, &st);
    /* Runs until the main thread ends (on_main_done stops the loop), even while
     * reconnect timers or light threads it left behind are still alive. */
    uv_run(&loop, UV_RUN_DEFAULT);
    if (!st.finished) shr_error("run: %s: the main thread never finished (nothing left to wait for)", file);
  }
  shr_env_close(&env);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0) shr_warn("run: the loop still had open handles at exit");
  return st.status;
}
