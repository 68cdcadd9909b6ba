#include "worker.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "consumer.h"
#include "env.h"
#include "log.h"
#include "pg.h"
#include "redis.h"
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
  uv_idle_t stopper;
  int stopping;
  int draining;
  const char *drain_reason;
  uint64_t redis_reconnects_base, pg_reconnects_base;
  int reloading;
  int exit_status;
} worker_t;

static void set_state(worker_t *w, shr_worker_state_t s) { atomic_store(&w->slot->state, (int)s); }

static void on_heartbeat(uv_timer_t *h) {
  worker_t *w = h->data;
  shr_slot_heartbeat(w->slot);
  /* Slot counters outlive this worker: add ours to what earlier ones left. */
  if (w->env.redis)
    atomic_store(&w->slot->redis_reconnects, w->redis_reconnects_base + shr_redis_stats(w->env.redis)->reconnects);
  if (w->env.pg) {
    shr_pg_stats_t pg;
    shr_pg_pool_stats(w->env.pg, &pg);
    atomic_store(&w->slot->pg_reconnects, w->pg_reconnects_base + pg.reconnects);
  }
  if (!w->draining && atomic_load(&w->slot->state) != SHR_WORKER_STARTING)
    set_state(w, atomic_load(&w->slot->in_flight) > 0 ? SHR_WORKER_BUSY : SHR_WORKER_IDLE);
}

/* Closes everything so uv_run returns; from an idle callback, never inside the
 * scheduler or a client callback that shr_env_close would free under them. */
static void on_stop_idle(uv_idle_t *h) {
  worker_t *w = h->data;
  if (w->consumer) {
    shr_consumer_free(w->consumer);
    w->consumer = NULL;
  }
  if (w->script.module_ref != LUA_NOREF) shr_script_release(w->env.L, &w->script);
  shr_env_close(&w->env);
  uv_handle_t *own[] = {(uv_handle_t *)&w->heartbeat, (uv_handle_t *)&w->sigterm, (uv_handle_t *)&w->sigusr1,
                        (uv_handle_t *)&w->stopper};
  for (size_t i = 0; i < sizeof own / sizeof *own; i++) uv_close(own[i], NULL);
}

static void stop(worker_t *w, int status) {
  if (w->stopping) return;
  w->stopping = 1;
  w->exit_status = status;
  set_state(w, SHR_WORKER_DRAINING);
  uv_idle_start(&w->stopper, on_stop_idle);
}

static void set_count(lua_State *L, const char *name, uint64_t v) {
  lua_pushnumber(L, (lua_Number)v);
  lua_setfield(L, -2, name);
}

/* Emits worker.started / worker.stopped through shield.runtime.emit in a light
 * thread; done runs when it was sent. */
static void emit_worker_event(worker_t *w, const char *kind, const char *reason, shr_thread_done_cb done) {
  lua_State *L = w->env.L;
  if (shr_lua_require_field(L, "shield.runtime", "emit") != 0) {
    shr_warn("cannot emit %s: %s", kind, lua_tostring(L, -1));
    lua_pop(L, 1);
    if (done) done(NULL, 1, L, w);
    return;
  }
  lua_pushstring(L, kind);
  lua_createtable(L, 0, 10);
  lua_pushinteger(L, w->slot_index);
  lua_setfield(L, -2, "slot");
  lua_pushinteger(L, (lua_Integer)getpid());
  lua_setfield(L, -2, "pid");
  lua_pushstring(L, w->script.version);
  lua_setfield(L, -2, "script_version");
  lua_pushstring(L, reason);
  lua_setfield(L, -2, "reason");
  set_count(L, "generation", atomic_load(&w->slot->generation));
  set_count(L, "tasks_done", atomic_load(&w->slot->tasks_done));
  set_count(L, "chunks_ok_total", atomic_load(&w->slot->chunks_ok));
  set_count(L, "chunks_retried_total", atomic_load(&w->slot->chunks_retried));
  set_count(L, "chunks_dead_total", atomic_load(&w->slot->chunks_dead));
  shr_thread_t *t = shr_sched_spawn(w->env.sched, 2, done, w);
  if (t) shr_thread_set_deadline(t, uv_now(&w->loop) + 2000);
}

static void on_stopped_emitted(shr_thread_t *t, int ok, lua_State *co, void *data) { stop(data, 0); }

static void on_drained(void *data) {
  worker_t *w = data;
  shr_info("drained: %llu tasks done", (unsigned long long)atomic_load(&w->slot->tasks_done));
  emit_worker_event(w, "worker.stopped", w->drain_reason, on_stopped_emitted);
}

static void drain(worker_t *w, const char *why) {
  if (w->draining) return;
  w->draining = 1;
  w->drain_reason = why;
  set_state(w, SHR_WORKER_DRAINING);
  shr_info("draining (%s): no new tasks; finishing %d in flight", why, atomic_load(&w->slot->in_flight));
  if (w->consumer)
    shr_consumer_drain(w->consumer, on_drained, w);
  else
    stop(w, 0);
}

static void on_sigterm(uv_async_t *h) { drain(h->data, "shutdown"); }
static void on_recycle(void *data) { drain(data, "recycled"); }

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
  /* Logged before the state moves: the supervisor's "all workers run" line,
   * which the state triggers, then always follows it. */
  shr_info("ready: script %s version %s, consumer %s", w->cfg->script, w->script.version, name);
  set_state(w, SHR_WORKER_IDLE);
  emit_worker_event(w, "worker.started", "started", NULL);
}

static uv_async_t *term_async, *usr1_async;

static void on_signal(int signum) { uv_async_send(signum == SIGTERM ? term_async : usr1_async); }

void shr_worker_main(const shr_config_t *cfg, shr_scoreboard_t *sb, int slot_index, const char *script_src,
                     size_t script_len) {
  static worker_t w;
  memset(&w, 0, sizeof w);
  w.cfg = cfg;
  w.slot_index = slot_index;
  w.slot = &sb->slots[slot_index];
  w.script.module_ref = w.next_script.module_ref = LUA_NOREF;
  shr_log_set_role("worker", slot_index);
  atomic_store(&w.slot->tasks_done, 0);
  atomic_store(&w.slot->in_flight, 0);
  w.redis_reconnects_base = atomic_load(&w.slot->redis_reconnects);
  w.pg_reconnects_base = atomic_load(&w.slot->pg_reconnects);
  shr_slot_heartbeat(w.slot);

  /* Interactive ^C reaches the whole process group: the supervisor decides. */
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);

  uv_loop_init(&w.loop);
  uv_timer_init(&w.loop, &w.heartbeat);
  w.heartbeat.data = &w;
  uv_timer_start(&w.heartbeat, on_heartbeat, 1000, 1000);
  uv_idle_init(&w.loop, &w.stopper);
  w.stopper.data = &w;
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
    _exit(SHR_WORKER_EXIT_INIT);
  }
  if (shr_script_load_source(w.env.L, cfg->script, script_src, script_len, &w.script, err, sizeof err) != 0) {
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
