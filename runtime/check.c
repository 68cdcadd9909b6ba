#include "check.h"

#include <stdio.h>

#include "env.h"
#include "script.h"

int shr_check(const shr_config_t *cfg) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  shr_env_t env;
  char err[4096];
  int status = 0;
  if (shr_env_init(&env, &loop, cfg, "check", -1, NULL, err, sizeof err) != 0) {
    fprintf(stderr, "%s: %s\n", cfg->path, err);
    return 1;
  }
  shr_script_t script;
  if (shr_script_load(env.L, cfg->script, &script, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    status = 1;
  } else {
    printf("%s: ok (script %s, version %s)\n", cfg->path, cfg->script, script.version);
    shr_script_release(env.L, &script);
  }
  shr_env_close(&env);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return status;
}
