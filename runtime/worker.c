#include "worker.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "env.h"
#include "log.h"
#include "script.h"

typedef struct {
  const shr_config_t *cfg;
  shr_slot_t *slot;
  int slot_index;
  uv_loop_t loop;
  shr_env_t env;
  shr_script_t script;
  uv_timer_t heartbeat;
  uv_async_t sigterm; /* SIGTERM arrives here from a plain handler (see main) */
  int draining;
  int exit_status;
} worker_t;

static void set_state(worker_t *w, shr_worker_state_t s) { atomic_store(&w->slot->state, (int)s); }

static void on_heartbeat(uv_timer_t *h) {
  worker_t *w = h->data;
  shr_slot_heartbeat(w->slot);
}

static void close_walk_cb(uv_handle_t *h, void *arg) {
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* Stops everything and lets uv_run return. */
static void stop(worker_t *w, int status) {
  w->exit_status = status;
  set_state(w, SHR_WORKER_DRAINING);
  if (w->script.module_ref != LUA_NOREF) shr_script_release(w->env.L, &w->script);
  shr_env_close(&w->env);
  uv_close((uv_handle_t *)&w->heartbeat, NULL);
  uv_close((uv_handle_t *)&w->sigterm, NULL);
}

static void maybe_finish_drain(worker_t *w) {
  if (w->draining && atomic_load(&w->slot->in_flight) == 0) stop(w, 0);
}

static void on_sigterm(uv_async_t *h) {
  worker_t *w = h->data;
  if (w->draining) return;
  w->draining = 1;
  shr_info("draining: no new tasks; finishing %d in flight", atomic_load(&w->slot->in_flight));
  set_state(w, SHR_WORKER_DRAINING);
  maybe_finish_drain(w);
}

static uv_async_t *term_async;

static void on_sigterm_signal(int signum) { uv_async_send(term_async); }

static void on_init_done(void *data, int ok, const char *err) {
  worker_t *w = data;
  if (!ok) {
    shr_error("%s: init failed: %s", w->cfg->script, err);
    stop(w, SHR_WORKER_EXIT_INIT);
    return;
  }
  memcpy(w->slot->script_version, w->script.version, sizeof w->script.version);
  set_state(w, SHR_WORKER_IDLE);
  shr_info("ready: script %s version %s", w->cfg->script, w->script.version);
  maybe_finish_drain(w);
}

void shr_worker_main(const shr_config_t *cfg, shr_scoreboard_t *sb, int slot_index) {
  static worker_t w;
  memset(&w, 0, sizeof w);
  w.cfg = cfg;
  w.slot_index = slot_index;
  w.slot = &sb->slots[slot_index];
  w.script.module_ref = LUA_NOREF;
  shr_log_set_role("worker", slot_index);
  atomic_store(&w.slot->tasks_done, 0);
  atomic_store(&w.slot->in_flight, 0);
  shr_slot_heartbeat(w.slot);

  /* Interactive ^C reaches the whole process group: the supervisor decides. */
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);

  uv_loop_init(&w.loop);
  uv_timer_init(&w.loop, &w.heartbeat);
  w.heartbeat.data = &w;
  uv_timer_start(&w.heartbeat, on_heartbeat, 1000, 1000);
  /* Not uv_signal: libuv's process-wide signal lock pipe is re-made by an atfork
   * handler and then closed with the supervisor's descriptors; uv_async_send is
   * async-signal-safe, so a plain handler forwards SIGTERM into the loop. */
  uv_async_init(&w.loop, &w.sigterm, on_sigterm);
  w.sigterm.data = &w;
  term_async = &w.sigterm;
  struct sigaction sa = {.sa_handler = on_sigterm_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);

  char err[4096];
  if (shr_env_init(&w.env, &w.loop, cfg, "worker", slot_index, NULL, err, sizeof err) != 0) {
    shr_error("%s", err);
    exit(SHR_WORKER_EXIT_INIT);
  }
  if (shr_script_load(w.env.L, cfg->script, &w.script, err, sizeof err) != 0) {
    shr_error("%s", err);
    stop(&w, SHR_WORKER_EXIT_INIT);
  } else {
    shr_script_start_init(&w.env, &w.script, cfg->pool_timeout_seconds * 1000, on_init_done, &w);
  }
  uv_run(&w.loop, UV_RUN_DEFAULT);
  uv_walk(&w.loop, close_walk_cb, NULL);
  uv_run(&w.loop, UV_RUN_DEFAULT);
  uv_loop_close(&w.loop);
  shr_info("exiting with status %d", w.exit_status);
  exit(w.exit_status);
}
