#include "lua_supervisor.h"

#include <lauxlib.h>
#include <string.h>

#include "clock.h"
#include "scoreboard.h"

#define SUP(L) ((shr_supervisor_t *)lua_touserdata(L, lua_upvalueindex(1)))

static void set_number(lua_State *L, const char *name, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, name);
}

/* workers() -> array of per-slot tables. */
static int l_workers(lua_State *L) {
  shr_scoreboard_t *sb = shr_supervisor_scoreboard(SUP(L));
  uint64_t now = shr_monotonic_ms();
  lua_createtable(L, sb->nslots, 0);
  for (int i = 0; i < sb->nslots; i++) {
    shr_slot_t *s = &sb->slots[i];
    lua_createtable(L, 0, 16);
    set_number(L, "slot", i);
    set_number(L, "pid", atomic_load(&s->pid));
    lua_pushstring(L, shr_worker_state_name((shr_worker_state_t)atomic_load(&s->state)));
    lua_setfield(L, -2, "state");
    uint64_t hb = atomic_load(&s->heartbeat_ms);
    set_number(L, "heartbeat_age_ms", hb && now > hb ? (double)(now - hb) : 0);
    set_number(L, "tasks_done", (double)atomic_load(&s->tasks_done));
    set_number(L, "in_flight", atomic_load(&s->in_flight));
    set_number(L, "generation", (double)atomic_load(&s->generation));
    set_number(L, "restarts", (double)atomic_load(&s->restarts));
    set_number(L, "chunks_ok", (double)atomic_load(&s->chunks_ok));
    set_number(L, "chunks_retried", (double)atomic_load(&s->chunks_retried));
    set_number(L, "chunks_dead", (double)atomic_load(&s->chunks_dead));
    set_number(L, "chunks_skipped", (double)atomic_load(&s->chunks_skipped));
    set_number(L, "redis_reconnects", (double)atomic_load(&s->redis_reconnects));
    set_number(L, "pg_reconnects", (double)atomic_load(&s->pg_reconnects));
    lua_pushlstring(L, s->script_version, strnlen(s->script_version, sizeof s->script_version - 1));
    lua_setfield(L, -2, "script_version");
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* A histogram's raw bucket counts and total time, summed over slots. */
typedef struct {
  uint64_t buckets[SHR_DURATION_BUCKETS + 1];
  uint64_t sum_us;
} histogram_sum_t;

static void histogram_add(histogram_sum_t *sum, const shr_histogram_t *h) {
  for (int b = 0; b <= SHR_DURATION_BUCKETS; b++) sum->buckets[b] += atomic_load(&h->buckets[b]);
  sum->sum_us += atomic_load(&h->sum_us);
}

/* Pushes {bounds = {...}, counts = {... cumulative, last +Inf}, sum}: the shape
 * metrics.lua renders as a Prometheus histogram. */
static void push_histogram(lua_State *L, const histogram_sum_t *sum) {
  lua_createtable(L, 0, 3);
  lua_createtable(L, SHR_DURATION_BUCKETS, 0);
  for (int b = 0; b < SHR_DURATION_BUCKETS; b++) {
    lua_pushnumber(L, shr_duration_bounds[b]);
    lua_rawseti(L, -2, b + 1);
  }
  lua_setfield(L, -2, "bounds");
  lua_createtable(L, SHR_DURATION_BUCKETS + 1, 0);
  uint64_t running = 0;
  for (int b = 0; b <= SHR_DURATION_BUCKETS; b++) {
    running += sum->buckets[b];
    lua_pushnumber(L, (double)running);
    lua_rawseti(L, -2, b + 1);
  }
  lua_setfield(L, -2, "counts");
  set_number(L, "sum", (double)sum->sum_us / 1e6);
}

/* durations() -> the chunk duration histogram (push_histogram's shape). */
static int l_durations(lua_State *L) {
  shr_scoreboard_t *sb = shr_supervisor_scoreboard(SUP(L));
  histogram_sum_t sum = {0};
  for (int i = 0; i < sb->nslots; i++) histogram_add(&sum, &sb->slots[i].durations);
  push_histogram(L, &sum);
  return 1;
}

typedef struct {
  const char *name;
  histogram_sum_t sum;
} step_sum_t;

/* steps() -> {name = histogram} summed over the slots, for the steps that ran. */
static int l_steps(lua_State *L) {
  shr_scoreboard_t *sb = shr_supervisor_scoreboard(SUP(L));
  /* Slots usually report the same few names: merged by a linear search, in
   * scratch memory the GC owns (nothing leaks if a push below raises). */
  size_t size = (size_t)sb->nslots * SHR_STEP_STATS * sizeof(step_sum_t);
  step_sum_t *steps = memset(lua_newuserdata(L, size), 0, size);
  int n = 0;
  for (int i = 0; i < sb->nslots; i++) {
    for (int k = 0; k < SHR_STEP_STATS; k++) {
      shr_step_stat_t *st = &sb->slots[i].steps[k];
      if (shr_histogram_count(&st->durations) == 0) continue;
      int m = 0;
      while (m < n && strcmp(steps[m].name, st->name) != 0) m++;
      if (m == n) steps[n++].name = st->name;
      histogram_add(&steps[m].sum, &st->durations);
    }
  }
  lua_createtable(L, 0, n);
  for (int m = 0; m < n; m++) {
    push_histogram(L, &steps[m].sum);
    lua_setfield(L, -2, steps[m].name);
  }
  lua_remove(L, -2);
  return 1;
}

static int l_script(lua_State *L) {
  shr_supervisor_t *s = SUP(L);
  lua_createtable(L, 0, 4);
  lua_pushstring(L, shr_supervisor_script_version(s));
  lua_setfield(L, -2, "version");
  const char *err = shr_supervisor_reload_error(s);
  if (err && *err) {
    lua_pushstring(L, err);
    lua_setfield(L, -2, "last_reload_error");
  }
  set_number(L, "reloads_ok", (double)shr_supervisor_reloads(s, 1));
  set_number(L, "reloads_failed", (double)shr_supervisor_reloads(s, 0));
  return 1;
}

static int l_reload(lua_State *L) {
  shr_supervisor_reload(SUP(L));
  return 0;
}

static int open_module(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"workers", l_workers}, {"durations", l_durations}, {"steps", l_steps},
      {"script", l_script},   {"reload", l_reload},       {NULL, NULL}};
  lua_newtable(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  luaL_setfuncs(L, fns, 1);
  return 1;
}

void shr_lua_supervisor_preload(lua_State *L, shr_supervisor_t *s) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushlightuserdata(L, s);
  lua_pushcclosure(L, open_module, 1);
  lua_setfield(L, -2, "shield.c.supervisor");
  lua_pop(L, 2);
}
