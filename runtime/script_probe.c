#include "script_probe.h"

#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "script.h"

typedef struct {
  shr_env_t env;
  shr_script_t script;
  uv_idle_t finisher; /* closes the scratch env outside of its own callbacks */
  shr_script_probe_cb done;
  void *data;
  int ok;
  char *src; /* what was compiled */
  size_t len;
  char err[4096];
} probe_t;

static void on_finisher_closed(uv_handle_t *h) {
  probe_t *p = h->data;
  p->done(p->data, p->ok, p->ok ? NULL : p->err, p->script.version, p->src, p->len);
  free(p->src);
  free(p);
}

static void finish(uv_idle_t *h) {
  probe_t *p = h->data;
  uv_idle_stop(h);
  if (p->script.module_ref != LUA_NOREF) shr_script_release(p->env.L, &p->script);
  shr_env_close(&p->env);
  uv_close((uv_handle_t *)h, on_finisher_closed);
}

static void on_init_done(void *data, int ok, const char *err) {
  probe_t *p = data;
  p->ok = ok;
  if (!ok) snprintf(p->err, sizeof p->err, "%s: init failed: %s", p->env.config->script, err);
  uv_idle_start(&p->finisher, finish);
}

int shr_script_probe(uv_loop_t *loop, const shr_config_t *cfg, shr_script_probe_cb done, void *data) {
  probe_t *p = calloc(1, sizeof *p);
  if (!p) return -1;
  p->done = done;
  p->data = data;
  p->script.module_ref = LUA_NOREF;
  uv_idle_init(loop, &p->finisher);
  p->finisher.data = p;
  if (shr_env_init(&p->env, loop, cfg, "probe", -1, NULL, p->err, sizeof p->err) != 0 ||
      !(p->src = shr_script_read(cfg->script, &p->len, p->err, sizeof p->err)) ||
      shr_script_load_source(p->env.L, cfg->script, p->src, p->len, &p->script, p->err, sizeof p->err) != 0 ||
      shr_script_start_init(&p->env, &p->script, cfg->pool_timeout_seconds * 1000, on_init_done, p) != 0) {
    p->ok = 0;
    uv_idle_start(&p->finisher, finish);
  }
  return 0;
}
