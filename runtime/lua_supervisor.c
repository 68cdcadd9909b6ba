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

/* durations() -> {bounds = {...}, counts = {... cumulative, last +Inf}, sum}. */
static int l_durations(lua_State *L) {
  shr_scoreboard_t *sb = shr_supervisor_scoreboard(SUP(L));
  uint64_t counts[SHR_DURATION_BUCKETS + 1] = {0}, sum_us = 0;
  for (int i = 0; i < sb->nslots; i++) {
    for (int b = 0; b <= SHR_DURATION_BUCKETS; b++) counts[b] += atomic_load(&sb->slots[i].duration_buckets[b]);
    sum_us += atomic_load(&sb->slots[i].duration_sum_us);
  }
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
    running += counts[b];
    lua_pushnumber(L, (double)running);
    lua_rawseti(L, -2, b + 1);
  }
  lua_setfield(L, -2, "counts");
  set_number(L, "sum", (double)sum_us / 1e6);
  return 1;
}

/* steps() -> {name = {count =, sum =}} summed over the slots. */
static int l_steps(lua_State *L) {
  shr_scoreboard_t *sb = shr_supervisor_scoreboard(SUP(L));
  lua_newtable(L);
  for (int i = 0; i < sb->nslots; i++) {
    for (int k = 0; k < SHR_STEP_STATS; k++) {
      shr_step_stat_t *st = &sb->slots[i].steps[k];
      uint64_t count = atomic_load(&st->count);
      if (count == 0) continue;
      lua_getfield(L, -1, st->name);
      if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_createtable(L, 0, 2);
        set_number(L, "count", 0);
        set_number(L, "sum", 0);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, st->name);
      }
      lua_getfield(L, -1, "count");
      double seen = lua_tonumber(L, -1);
      lua_getfield(L, -2, "sum");
      double sum = lua_tonumber(L, -1);
      lua_pop(L, 2);
      set_number(L, "count", seen + (double)count);
      set_number(L, "sum", sum + (double)atomic_load(&st->sum_us) / 1e6);
      lua_pop(L, 1);
    }
  }
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
