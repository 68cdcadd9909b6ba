#include "check.h"

#include <stdio.h>

#include "log.h"
#include "script_probe.h"

typedef struct {
  const shr_config_t *cfg;
  int status;
} check_t;

static void on_probed(void *data, int ok, const char *err, const char *version, const char *src, size_t len) {
  check_t *c = data;
  if (ok) {
    printf("%s: ok (script %s, version %s)\n", c->cfg->path, c->cfg->script, version);
  } else {
    fprintf(stderr, "%s\n", err);
    c->status = 1;
  }
}

/* The probe the supervisor runs before forking workers and before a reload:
 * what passes here starts (settings the script's init rejects fail here too). */
int shr_check(const shr_config_t *cfg) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  check_t c = {cfg, 0};
  /* The verdict is the output: no chatter about servers the init never used. */
  shr_log_set_level(SHR_LOG_ERROR);
  if (shr_script_probe(&loop, cfg, on_probed, &c) != 0) c.status = 1;
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return c.status;
}
