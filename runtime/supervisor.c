#include "supervisor.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api.h"
#include "clock.h"
#include "env.h"
#include "log.h"
#include "lua_host.h"
#include "lua_supervisor.h"
#include "script.h"
#include "script_probe.h"
#include "sd_notify.h"
#include "worker.h"

/* A worker that dies sooner than this after its start counts as crashing. */
#define CRASH_WINDOW_MS 5000
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 30000
#define WATCH_INTERVAL_MS 250

typedef struct {
  int crashes;          /* consecutive early deaths */
  uint64_t refork_at;   /* monotonic ms of the delayed re-fork, 0 if none */
  int stall_killed;     /* we killed it for a stalled heartbeat */
} slot_control_t;

struct shr_supervisor {
  const shr_config_t *cfg;
  uv_loop_t *loop;
  shr_scoreboard_t *sb;
  slot_control_t *control;
  uv_signal_t sig_term, sig_int, sig_hup, sig_chld;
  uv_timer_t watch;
  uv_timer_t shutdown_timer;
  uv_fs_event_t script_watch; /* edits under the script's folder trigger a reload */
  uv_timer_t reload_debounce;
  uv_idle_t closer;
  uv_timer_t sd_watchdog; /* WATCHDOG=1 pings when systemd asks for them */
  int watching_script;
  shr_env_t env;              /* the supervisor's Lua side: maintenance, API */
  int env_ready;
  shr_api_t *api;
  int shutting_down;
  int exit_status;
  int ready_sent;             /* READY=1 told to systemd: every worker ran */
  char script_version[17];
  /* The source of script_version: workers forked later start from it, not from
   * the file, which a failed reload leaves broken on disk. */
  char *script_src;
  size_t script_len;
  char reload_error[1024];
  int reload_in_progress;
  uint64_t reloads_ok, reloads_failed;
};

shr_scoreboard_t *shr_supervisor_scoreboard(shr_supervisor_t *s) { return s->sb; }
const char *shr_supervisor_script_version(shr_supervisor_t *s) { return s->script_version; }
const char *shr_supervisor_reload_error(shr_supervisor_t *s) { return s->reload_error; }
uint64_t shr_supervisor_reloads(shr_supervisor_t *s, int ok) { return ok ? s->reloads_ok : s->reloads_failed; }

static int live_workers(shr_supervisor_t *s) {
  int n = 0;
  for (int i = 0; i < s->sb->nslots; i++) n += atomic_load(&s->sb->slots[i].pid) > 0;
  return n;
}

/* ---- forking ---- */

/* In a new worker: closes every descriptor but stdio. close_range needs Linux
 * 5.9 and a seccomp filter may refuse it; then each one is closed in turn. */
static void close_inherited_fds(void) {
  if (close_range(3, ~0U, 0) == 0) return;
  long max = sysconf(_SC_OPEN_MAX);
  if (max <= 0 || max > (1L << 20)) max = 1L << 20;
  for (long fd = 3; fd < max; fd++) close((int)fd);
}

static void fork_worker(shr_supervisor_t *s, int i) {
  shr_slot_t *slot = &s->sb->slots[i];
  pid_t parent = getpid();
  fflush(NULL);
  atomic_store(&slot->state, SHR_WORKER_STARTING);
  atomic_store(&slot->started_ms, shr_monotonic_ms());
  shr_slot_heartbeat(slot);
  /* Signals stay blocked across fork until the child has dropped the
   * supervisor's handlers: a SIGTERM from PDEATHSIG then reaches the worker's
   * default disposition instead of being swallowed by the parent's handler. */
  sigset_t all, before;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &before);
  pid_t pid = fork();
  if (pid != 0) sigprocmask(SIG_SETMASK, &before, NULL);
  if (pid < 0) {
    shr_error("fork of worker %d failed: %s; retrying", i, strerror(errno));
    s->control[i].refork_at = shr_monotonic_ms() + 1000;
    atomic_store(&slot->state, SHR_WORKER_BACKOFF);
    return;
  }
  if (pid == 0) {
    /* The child owns nothing of the supervisor's loop: drop its descriptors
     * (listening socket, connections) and its signal dispositions. */
    for (int sig = 1; sig < NSIG; sig++) signal(sig, SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    close_inherited_fds();
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    shr_worker_main(s->cfg, s->sb, i, s->script_src, s->script_len);
  }
  atomic_store(&slot->pid, pid);
  atomic_fetch_add(&slot->generation, 1);
  s->control[i].stall_killed = 0;
  shr_info("worker %d started (pid %d)", i, (int)pid);
}

static void describe_exit(int status, char *buf, size_t len) {
  if (WIFEXITED(status))
    snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
  else if (WIFSIGNALED(status))
    snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
  else
    snprintf(buf, len, "stopped (status %d)", status);
}

/* Events of the supervisor go through shield.emit from a light thread:
 * emit_begin pushes the function, kind and an empty data table of nfields (0,
 * or -1 with nothing pushed when the environment is not up); the caller fills
 * the table, emit_send starts the thread. */
static int emit_begin(shr_supervisor_t *s, const char *kind, int nfields) {
  if (!s->env_ready) return -1;
  lua_State *L = s->env.L;
  if (shr_lua_require_field(L, "shield", "emit") != 0) {
    shr_warn("cannot emit %s: %s", kind, lua_tostring(L, -1));
    lua_pop(L, 1);
    return -1;
  }
  lua_pushstring(L, kind);
  lua_createtable(L, 0, nfields);
  return 0;
}

static void emit_send(shr_supervisor_t *s) { shr_sched_spawn(s->env.sched, 2, NULL, NULL); }

/* A worker that did not stop by itself cannot say so: worker.stopped for it. */
static void emit_worker_lost(shr_supervisor_t *s, int i, int pid, const char *how) {
  lua_State *L = s->env.L;
  if (emit_begin(s, "worker.stopped", 4) != 0) return;
  lua_pushinteger(L, i);
  lua_setfield(L, -2, "slot");
  lua_pushinteger(L, pid);
  lua_setfield(L, -2, "pid");
  lua_pushstring(L, how);
  lua_setfield(L, -2, "reason");
  lua_pushnumber(L, (lua_Number)atomic_load(&s->sb->slots[i].tasks_done));
  lua_setfield(L, -2, "tasks_done");
  emit_send(s);
}

static void on_worker_exit(shr_supervisor_t *s, int i, int pid, int status) {
  shr_slot_t *slot = &s->sb->slots[i];
  slot_control_t *c = &s->control[i];
  char how[128];
  describe_exit(status, how, sizeof how);
  atomic_store(&slot->pid, 0);
  atomic_store(&slot->in_flight, 0);
  if (s->shutting_down) {
    atomic_store(&slot->state, SHR_WORKER_STOPPED);
    shr_info("worker %d %s", i, how);
    return;
  }
  int planned = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!planned) emit_worker_lost(s, i, pid, how);
  uint64_t lived = shr_monotonic_ms() - atomic_load(&slot->started_ms);
  if (planned) {
    shr_info("worker %d %s after %llu tasks (recycled)", i, how, (unsigned long long)atomic_load(&slot->tasks_done));
    c->crashes = 0;
    fork_worker(s, i);
    return;
  }
  atomic_fetch_add(&slot->restarts, 1);
  c->crashes = (lived < CRASH_WINDOW_MS || c->stall_killed) ? c->crashes + 1 : 1;
  if (c->crashes <= 1) {
    shr_warn("worker %d %s%s; restarting it", i, how, c->stall_killed ? " after its heartbeat stalled" : "");
    fork_worker(s, i);
    return;
  }
  uint64_t delay = BACKOFF_FIRST_MS;
  for (int k = 2; k < c->crashes && delay < BACKOFF_MAX_MS; k++) delay *= 2;
  if (delay > BACKOFF_MAX_MS) delay = BACKOFF_MAX_MS;
  shr_error("worker %d %s%s: %d crashes in a row, next start in %llu ms", i, how,
            c->stall_killed ? " after its heartbeat stalled" : "", c->crashes, (unsigned long long)delay);
  c->refork_at = shr_monotonic_ms() + delay;
  atomic_store(&slot->state, SHR_WORKER_BACKOFF);
}

static void finish_shutdown(shr_supervisor_t *s);

static void on_sigchld(uv_signal_t *h, int signum) {
  shr_supervisor_t *s = h->data;
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    for (int i = 0; i < s->sb->nslots; i++) {
      if (atomic_load(&s->sb->slots[i].pid) == pid) {
        on_worker_exit(s, i, pid, status);
        break;
      }
    }
  }
  if (s->shutting_down && live_workers(s) == 0) finish_shutdown(s);
}

/* ---- watching: stalls and delayed re-forks ---- */

static int all_workers_running(shr_supervisor_t *s) {
  for (int i = 0; i < s->sb->nslots; i++) {
    int state = atomic_load(&s->sb->slots[i].state);
    if (state != SHR_WORKER_IDLE && state != SHR_WORKER_BUSY) return 0;
  }
  return 1;
}

static void on_watch(uv_timer_t *h) {
  shr_supervisor_t *s = h->data;
  uint64_t now = shr_monotonic_ms();
  if (!s->ready_sent && !s->shutting_down && all_workers_running(s)) {
    s->ready_sent = 1;
    shr_sd_notify("READY=1\nSTATUS=running");
    shr_info("ready: all %d workers run the script", s->sb->nslots);
  }
  uint64_t stall_ms = (uint64_t)s->cfg->pool_stall_seconds * 1000;
  for (int i = 0; i < s->sb->nslots; i++) {
    shr_slot_t *slot = &s->sb->slots[i];
    slot_control_t *c = &s->control[i];
    int pid = atomic_load(&slot->pid);
    if (pid > 0 && !c->stall_killed && now - atomic_load(&slot->heartbeat_ms) > stall_ms) {
      shr_error("worker %d (pid %d) has not heart-beaten for %llu s (limit %d s): killing it", i, pid,
                (unsigned long long)((now - atomic_load(&slot->heartbeat_ms)) / 1000), s->cfg->pool_stall_seconds);
      c->stall_killed = 1;
      kill(pid, SIGKILL);
    }
    if (pid == 0 && c->refork_at && now >= c->refork_at && !s->shutting_down) {
      c->refork_at = 0;
      fork_worker(s, i);
    }
  }
}

/* ---- signals ---- */

static void on_shutdown_timeout(uv_timer_t *h) {
  shr_supervisor_t *s = h->data;
  shr_warn("graceful shutdown timeout (%d s) passed: killing %d workers; their tasks stay pending",
           s->cfg->pool_graceful_shutdown_timeout, live_workers(s));
  for (int i = 0; i < s->sb->nslots; i++) {
    int pid = atomic_load(&s->sb->slots[i].pid);
    if (pid > 0) kill(pid, SIGKILL);
  }
}

/* Closes the supervisor's own handles; every other unit closes its own. */
static void close_own_handles(shr_supervisor_t *s) {
  uv_handle_t *own[] = {(uv_handle_t *)&s->sig_term, (uv_handle_t *)&s->sig_int,
                        (uv_handle_t *)&s->sig_hup,  (uv_handle_t *)&s->sig_chld,
                        (uv_handle_t *)&s->watch,    (uv_handle_t *)&s->shutdown_timer,
                        (uv_handle_t *)&s->reload_debounce, (uv_handle_t *)&s->closer,
                        (uv_handle_t *)&s->sd_watchdog,
                        (uv_handle_t *)&s->script_watch};
  size_t n = sizeof own / sizeof *own;
  if (!s->watching_script) n--;
  for (size_t i = 0; i < n; i++)
    if (!uv_is_closing(own[i])) uv_close(own[i], NULL);
}

/* From an idle callback: never inside the scheduler that shr_env_close frees. */
static void on_close_everything(uv_idle_t *h) {
  shr_supervisor_t *s = h->data;
  uv_idle_stop(h);
  if (s->api) {
    shr_api_close(s->api);
    s->api = NULL;
  }
  if (s->env_ready) {
    s->env_ready = 0;
    shr_env_close(&s->env);
  }
  close_own_handles(s);
}

static void close_everything(shr_supervisor_t *s) { uv_idle_start(&s->closer, on_close_everything); }

static void on_final_sync(shr_thread_t *t, int ok, lua_State *co, void *data) {
  shr_supervisor_t *s = data;
  if (!ok)
    shr_error("final job sync failed: %s", lua_tostring(co, -1));
  else if (lua_isnil(co, 1))
    shr_warn("final job sync to PostgreSQL incomplete (%s): the next start finishes it", lua_tostring(co, 2));
  shr_info("shutdown complete");
  close_everything(s);
}

static void finish_shutdown(shr_supervisor_t *s) {
  if (s->shutting_down == 2) return;
  s->shutting_down = 2;
  shr_info("all workers stopped; flushing job state to PostgreSQL");
  if (!s->env_ready) {
    close_everything(s);
    return;
  }
  lua_State *L = s->env.L;
  if (shr_lua_require_field(L, "shield.supervisor.main", "final_sync") != 0) {
    shr_error("final job sync: %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    close_everything(s);
    return;
  }
  shr_thread_t *t = shr_sched_spawn(s->env.sched, 0, on_final_sync, s);
  shr_thread_set_deadline(t, uv_now(s->loop) + 10000);
}

static void begin_shutdown(shr_supervisor_t *s, int signum) {
  if (s->shutting_down) {
    shr_warn("second %s: exiting at once", strsignal(signum));
    for (int i = 0; i < s->sb->nslots; i++) {
      int pid = atomic_load(&s->sb->slots[i].pid);
      if (pid > 0) kill(pid, SIGKILL);
    }
    _exit(1);
  }
  s->shutting_down = 1;
  shr_sd_notify("STOPPING=1\nSTATUS=draining");
  if (s->api) shr_api_stop_accepting(s->api);
  shr_info("%s: graceful shutdown, draining %d workers (up to %d s)", strsignal(signum), live_workers(s),
           s->cfg->pool_graceful_shutdown_timeout);
  for (int i = 0; i < s->sb->nslots; i++) {
    s->control[i].refork_at = 0;
    int pid = atomic_load(&s->sb->slots[i].pid);
    if (pid > 0)
      kill(pid, SIGTERM);
    else
      atomic_store(&s->sb->slots[i].state, SHR_WORKER_STOPPED);
  }
  uv_timer_stop(&s->watch);
  uv_timer_start(&s->shutdown_timer, on_shutdown_timeout, (uint64_t)s->cfg->pool_graceful_shutdown_timeout * 1000,
                 0);
  if (live_workers(s) == 0) finish_shutdown(s);
}

static void on_term(uv_signal_t *h, int signum) { begin_shutdown(h->data, signum); }

static void emit_reload_event(shr_supervisor_t *s, const char *version, const char *err) {
  lua_State *L = s->env.L;
  if (emit_begin(s, err ? "runtime.reload_failed" : "runtime.reloaded", 3) != 0) return;
  lua_pushstring(L, s->cfg->script);
  lua_setfield(L, -2, "script");
  lua_pushstring(L, version);
  lua_setfield(L, -2, "version");
  if (err) {
    lua_pushstring(L, err);
    lua_setfield(L, -2, "error");
  }
  emit_send(s);
}

/* Hands the event() function of the kept source to shield.events, which shapes
 * what Server-Sent Events subscribers receive. The script's top level runs
 * again here, in the supervisor's state; init does not. */
static void install_event_hook(shr_supervisor_t *s) {
  lua_State *L = s->env.L;
  char err[1024];
  shr_script_t module = {.module_ref = LUA_NOREF};
  if (shr_script_load_source(L, s->cfg->script, s->script_src, s->script_len, &module, err, sizeof err) != 0)
    shr_warn("events are sent with default payloads: %s", err);
  if (shr_lua_require_field(L, "shield.events", "set_hook") != 0) {
    shr_error("events: %s", lua_tostring(L, -1));
    lua_pop(L, 1);
  } else {
    if (module.module_ref == LUA_NOREF) {
      lua_pushnil(L);
    } else {
      lua_rawgeti(L, LUA_REGISTRYINDEX, module.module_ref);
      lua_getfield(L, -1, "event");
      lua_remove(L, -2);
    }
    if (lua_pcall(L, 1, 0, 0) != 0) {
      shr_error("events: %s", lua_tostring(L, -1));
      lua_pop(L, 1);
    }
  }
  if (module.module_ref != LUA_NOREF) shr_script_release(L, &module);
}

/* Keeps src as the source new workers start from; 0, or -1 out of memory. */
static int keep_source(shr_supervisor_t *s, const char *version, const char *src, size_t len) {
  char *copy = malloc(len ? len : 1);
  if (!copy) return -1;
  memcpy(copy, src, len);
  free(s->script_src);
  s->script_src = copy;
  s->script_len = len;
  snprintf(s->script_version, sizeof s->script_version, "%s", version);
  return 0;
}

static void on_reload_probed(void *data, int ok, const char *err, const char *version, const char *src,
                             size_t len) {
  shr_supervisor_t *s = data;
  s->reload_in_progress = 0;
  if (s->ready_sent)
    shr_sd_notify(ok ? "READY=1\nSTATUS=running" : "READY=1\nSTATUS=running; last reload failed");
  if (!ok) {
    snprintf(s->reload_error, sizeof s->reload_error, "%s", err);
    s->reloads_failed++;
    shr_error("reload failed, keeping script version %s: %s", s->script_version, err);
    emit_reload_event(s, s->script_version, err);
    return;
  }
  s->reload_error[0] = '\0';
  s->reloads_ok++;
  if (strcmp(version, s->script_version) == 0) {
    shr_info("reload: script unchanged (version %s)", version);
    return;
  }
  if (keep_source(s, version, src, len) != 0) {
    shr_error("reload: out of memory keeping version %s; workers stay on %s", version, s->script_version);
    return;
  }
  shr_info("reload: script %s compiled and initialised (version %s); swapping workers to it", s->cfg->script,
           version);
  emit_reload_event(s, version, NULL);
  install_event_hook(s);
  for (int i = 0; i < s->sb->nslots; i++) {
    int pid = atomic_load(&s->sb->slots[i].pid);
    if (pid > 0) kill(pid, SIGUSR1);
  }
}

void shr_supervisor_reload(shr_supervisor_t *s) {
  if (s->shutting_down || s->reload_in_progress) return;
  s->reload_in_progress = 1;
  shr_sd_notify("RELOADING=1");
  shr_info("reload requested: probing %s", s->cfg->script);
  if (shr_script_probe(s->loop, s->cfg, on_reload_probed, s) != 0) s->reload_in_progress = 0;
}

static void on_hup(uv_signal_t *h, int signum) {
  shr_info("SIGHUP: reloading the processing script");
  shr_supervisor_reload(h->data);
}

/* Editors write files in several steps: wait for the burst to end. */
static void on_reload_debounced(uv_timer_t *h) { shr_supervisor_reload(h->data); }

static void on_script_dir_event(uv_fs_event_t *h, const char *file, int events, int status) {
  shr_supervisor_t *s = h->data;
  if (status < 0 || !file || file[0] == '.' || !strstr(file, ".lua")) return;
  uv_timer_start(&s->reload_debounce, on_reload_debounced, 300, 0);
}

static void watch_script_dir(shr_supervisor_t *s) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", s->cfg->script);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = '\0';
  uv_fs_event_init(s->loop, &s->script_watch);
  s->script_watch.data = s;
  int rc = uv_fs_event_start(&s->script_watch, on_script_dir_event, dir, 0);
  s->watching_script = 1;
  if (rc != 0) shr_warn("cannot watch %s for script edits (%s): reload with SIGHUP", dir, uv_strerror(rc));
}

/* ---- start ---- */

static void start_workers(shr_supervisor_t *s);

/* main.run has prepared the group and the schema (or tried): fork the workers. */
static void on_maintenance_started(shr_thread_t *t, int ok, lua_State *co, void *data) {
  shr_supervisor_t *s = data;
  if (!ok) shr_error("supervisor maintenance failed to start: %s", lua_tostring(co, -1));
  if (!s->shutting_down) start_workers(s);
}

/* The supervisor's Lua side: maintenance threads (lua/shield/supervisor/main.lua)
 * and the HTTP API; the workers are forked once main.run returns. Returns 0,
 * or -1 when the API cannot listen. */
static int start_env(shr_supervisor_t *s) {
  char err[1024];
  if (shr_env_init(&s->env, s->loop, s->cfg, "supervisor", -1, NULL, err, sizeof err) != 0) {
    shr_error("cannot start the supervisor's Lua environment: %s", err);
    return -1;
  }
  s->env_ready = 1;
  shr_lua_supervisor_preload(s->env.L, s);
  s->api = shr_api_start(&s->env, err, sizeof err);
  if (!s->api) {
    fprintf(stderr, "%s: http.listen: %s\n", s->cfg->path, err);
    shr_error("not starting: the HTTP API cannot listen on %s: %s", s->cfg->http_listen, err);
    return -1;
  }
  char host[256];
  if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "localhost");
  host[sizeof host - 1] = '\0';
  lua_State *L = s->env.L;
  if (shr_lua_require_field(L, "shield.supervisor.main", "run") != 0) {
    shr_error("%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return -1;
  }
  lua_pushstring(L, host);
  shr_sched_spawn(s->env.sched, 1, on_maintenance_started, s);
  install_event_hook(s);
  return 0;
}

static void on_sd_watchdog(uv_timer_t *h) { shr_sd_notify("WATCHDOG=1"); }

static void start_workers(shr_supervisor_t *s) {
  watch_script_dir(s);
  for (int i = 0; i < s->sb->nslots; i++) fork_worker(s, i);
  uv_timer_start(&s->watch, on_watch, WATCH_INTERVAL_MS, WATCH_INTERVAL_MS);
  shr_info("running: %d workers, concurrency %d each, script %s (version %s)", s->sb->nslots,
           s->cfg->pool_concurrency, s->cfg->script, s->script_version);
  uint64_t wd = shr_sd_watchdog_ms();
  if (wd) uv_timer_start(&s->sd_watchdog, on_sd_watchdog, wd / 2, wd / 2);
}

static void on_start_probed(void *data, int ok, const char *err, const char *version, const char *src,
                            size_t len) {
  shr_supervisor_t *s = data;
  if (!ok) {
    fprintf(stderr, "%s\n", err);
    shr_error("not starting: the processing script failed");
    s->exit_status = 1;
    s->shutting_down = 2;
    close_everything(s);
    return;
  }
  if (keep_source(s, version, src, len) != 0) {
    shr_error("not starting: out of memory");
    s->exit_status = 1;
    s->shutting_down = 2;
    close_everything(s);
    return;
  }
  if (s->shutting_down) {
    finish_shutdown(s);
    return;
  }
  if (start_env(s) != 0) {
    s->exit_status = 1;
    s->shutting_down = 2;
    close_everything(s);
  }
}

int shr_supervisor_main(const shr_config_t *cfg) {
  static shr_supervisor_t sup;
  shr_supervisor_t *s = &sup;
  memset(s, 0, sizeof *s);
  s->cfg = cfg;
  s->loop = uv_default_loop();
  s->sb = shr_scoreboard_new(cfg->pool_size);
  s->control = calloc((size_t)cfg->pool_size, sizeof *s->control);
  if (!s->sb || !s->control) {
    fprintf(stderr, "shield-runtime: cannot allocate the scoreboard\n");
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  uv_signal_t *sigs[] = {&s->sig_term, &s->sig_int, &s->sig_hup, &s->sig_chld};
  for (size_t i = 0; i < 4; i++) {
    uv_signal_init(s->loop, sigs[i]);
    sigs[i]->data = s;
  }
  uv_signal_start(&s->sig_term, on_term, SIGTERM);
  uv_signal_start(&s->sig_int, on_term, SIGINT);
  uv_signal_start(&s->sig_hup, on_hup, SIGHUP);
  uv_signal_start(&s->sig_chld, on_sigchld, SIGCHLD);
  uv_timer_init(s->loop, &s->watch);
  uv_timer_init(s->loop, &s->shutdown_timer);
  uv_timer_init(s->loop, &s->reload_debounce);
  uv_idle_init(s->loop, &s->closer);
  uv_timer_init(s->loop, &s->sd_watchdog);
  s->closer.data = s->sd_watchdog.data = s;
  s->watch.data = s->shutdown_timer.data = s->reload_debounce.data = s;

  shr_info("shield-runtime %s starting: config %s, %d workers", SHR_VERSION, cfg->path, cfg->pool_size);
  shr_script_probe(s->loop, cfg, on_start_probed, s);
  uv_run(s->loop, UV_RUN_DEFAULT);
  uv_loop_close(s->loop);
  shr_scoreboard_free(s->sb);
  free(s->control);
  free(s->script_src);
  return s->exit_status;
}
