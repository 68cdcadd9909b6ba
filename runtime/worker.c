#include "worker.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "consumer.h"
#include "env.h"
#include "log.h"
#include "script.h"

typedef struct {
  const shr_config_t *cfg;
  shr_slot_t *slot;
  int slot_index;
  uv_loop_t loop;
  shr_env_t env;
  shr_script_t script;      /* the version new tasks use */
  shr_script_t next_script; /* a reload being initialised */
  shr_consumer_t *consumer;
  uv_timer_t heartbeat;
  uv_async_t sigterm; /* SIGTERM and SIGUSR1 arrive here from plain handlers */
  uv_async_t sigusr1;
  int draining;
  int reloading;
  int exit_status;
} worker_t;

static void set_state(worker_t *w, shr_worker_state_t s) { atomic_store(&w->slot->state, (int)s); }

static void on_heartbeat(uv_timer_t *h) {
  worker_t *w = h->data;
  shr_slot_heartbeat(w->slot);
  if (!w->draining && atomic_load(&w->slot->state) != SHR_WORKER_STARTING)
    set_state(w, atomic_load(&w->slot->in_flight) > 0 ? SHR_WORKER_BUSY : SHR_WORKER_IDLE);
}

/* Closes everything so uv_run returns. */
static void stop(worker_t *w, int status) {
  w->exit_status = status;
  set_state(w, SHR_WORKER_DRAINING);
  if (w->consumer) {
    shr_consumer_free(w->consumer);
    w->consumer = NULL;
  }
  if (w->script.module_ref != LUA_NOREF) shr_script_release(w->env.L, &w->script);
  shr_env_close(&w->env);
  uv_close((uv_handle_t *)&w->heartbeat, NULL);
  uv_close((uv_handle_t *)&w->sigterm, NULL);
  uv_close((uv_handle_t *)&w->sigusr1, NULL);
}

static void on_drained(void *data) {
  worker_t *w = data;
  shr_info("drained: %llu tasks done", (unsigned long long)atomic_load(&w->slot->tasks_done));
  stop(w, 0);
}

static void drain(worker_t *w, const char *why) {
  if (w->draining) return;
  w->draining = 1;
  set_state(w, SHR_WORKER_DRAINING);
  shr_info("%s: no new tasks; finishing %d in flight", why, atomic_load(&w->slot->in_flight));
  if (w->consumer)
    shr_consumer_drain(w->consumer, on_drained, w);
  else
    stop(w, 0);
}

static void on_sigterm(uv_async_t *h) { drain(h->data, "draining"); }
static void on_recycle(void *data) { drain(data, "recycling after max_tasks_per_child"); }

/* ---- reload: a new script version between tasks ---- */

static void on_reload_init(void *data, int ok, const char *err) {
  worker_t *w = data;
  w->reloading = 0;
  if (!ok) {
    shr_error("reload: %s: init failed, keeping version %s: %s", w->cfg->script, w->script.version, err);
    shr_script_release(w->env.L, &w->next_script);
    return;
  }
  shr_script_release(w->env.L, &w->script);
  w->script = w->next_script;
  w->next_script.module_ref = LUA_NOREF;
  if (w->consumer) shr_consumer_swap_script(w->consumer, w->script.module_ref, w->script.version);
  memcpy(w->slot->script_version, w->script.version, sizeof w->script.version);
  shr_info("reloaded: script version %s", w->script.version);
}

static void on_sigusr1(uv_async_t *h) {
  worker_t *w = h->data;
  if (w->draining || w->reloading) return;
  char err[4096];
  if (shr_script_load(w->env.L, w->cfg->script, &w->next_script, err, sizeof err) != 0) {
    shr_error("reload: keeping version %s: %s", w->script.version, err);
    return;
  }
  if (strcmp(w->next_script.version, w->script.version) == 0) {
    shr_script_release(w->env.L, &w->next_script);
    return;
  }
  w->reloading = 1;
  shr_script_start_init(&w->env, &w->next_script, w->cfg->pool_timeout_seconds * 1000, on_reload_init, w);
}

/* ---- start ---- */

static void on_init_done(void *data, int ok, const char *err) {
  worker_t *w = data;
  if (!ok) {
    shr_error("%s: init failed: %s", w->cfg->script, err);
    stop(w, SHR_WORKER_EXIT_INIT);
    return;
  }
  memcpy(w->slot->script_version, w->script.version, sizeof w->script.version);
  if (w->draining) {
    stop(w, 0);
    return;
  }
  char host[256], name[300];
  if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "localhost");
  host[sizeof host - 1] = '\0';
  /* Stable per slot: a re-forked worker re-reads its predecessor's pending entries. */
  snprintf(name, sizeof name, "%s-w%d", host, w->slot_index);
  w->consumer = shr_consumer_new(&w->env, w->slot, name);
  if (!w->consumer || shr_consumer_start(w->consumer, w->script.module_ref, w->script.version) != 0) {
    shr_error("cannot start consuming the task stream");
    stop(w, SHR_WORKER_EXIT_INIT);
    return;
  }
  shr_consumer_on_recycle(w->consumer, on_recycle, w);
  set_state(w, SHR_WORKER_IDLE);
  shr_info("ready: script %s version %s, consumer %s", w->cfg->script, w->script.version, name);
}

static uv_async_t *term_async, *usr1_async;

static void on_signal(int signum) { uv_async_send(signum == SIGTERM ? term_async : usr1_async); }

void shr_worker_main(const shr_config_t *cfg, shr_scoreboard_t *sb, int slot_index) {
  static worker_t w;
  memset(&w, 0, sizeof w);
  w.cfg = cfg;
  w.slot_index = slot_index;
  w.slot = &sb->slots[slot_index];
  w.script.module_ref = w.next_script.module_ref = LUA_NOREF;
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
   * async-signal-safe, so plain handlers forward the signals into the loop. */
  uv_async_init(&w.loop, &w.sigterm, on_sigterm);
  uv_async_init(&w.loop, &w.sigusr1, on_sigusr1);
  w.sigterm.data = w.sigusr1.data = &w;
  term_async = &w.sigterm;
  usr1_async = &w.sigusr1;
  struct sigaction sa = {.sa_handler = on_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);

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
  uv_loop_close(&w.loop);
  shr_info("exiting with status %d", w.exit_status);
  exit(w.exit_status);
}
