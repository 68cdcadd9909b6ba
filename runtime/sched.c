#include "sched.h"

#include <assert.h>
#include <lauxlib.h>
#include <stdlib.h>

#include "clock.h"
#include "deadline_heap.h"
#include "log.h"

enum { WAIT_IDLE, WAIT_PARKED, WAIT_WOKEN, WAIT_CANCELLED };

/* How a queued thread is resumed. */
enum { RESUME_START, RESUME_WAKE, RESUME_TIMEOUT, RESUME_YIELD };

/* A thread that a join waits on. */
typedef struct joiner {
  shr_wait_t wait;
  shr_thread_t *target;
  struct joiner *next;
} joiner_t;

struct shr_thread {
  shr_sched_t *sched;
  lua_State *co;
  int ref;                  /* registry anchor of co */
  shr_wait_t *wait;         /* parked on, or NULL */
  shr_wait_t *woken;        /* completed wait whose push gives the resume values */
  int resume_mode;
  int start_nargs;
  uint64_t deadline;        /* loop ms, 0 = none */
  int heap_index;           /* place in the deadline heap, -1 if absent */
  unsigned expired : 1, finished : 1, killed : 1, queued : 1, ok : 1;
  unsigned reuses : 1;      /* spawned by shr_sched_spawn_reusing */
  int handles;              /* Lua handles referencing this thread */
  joiner_t *joiners;        /* threads waiting for this one to end */
  shr_thread_done_cb done;
  void *done_data;
  void *slots[SHR_THREAD_SLOTS];
  shr_thread_t *next_ready;
  shr_thread_t *prev, *next; /* all live threads, for close */
};

/* A coroutine that ran a thread to its end, anchored in the registry. */
typedef struct {
  lua_State *co;
  int ref;
} spare_t;

#define SPARES_MAX 64

struct shr_sched {
  uv_loop_t *loop;
  lua_State *L;
  uv_idle_t idle;    /* keeps the poll phase from blocking while threads are ready */
  uv_check_t check;  /* resumes threads woken during the poll phase */
  uv_timer_t timer;  /* the earliest deadline */
  uint64_t timer_due; /* loop ms the timer is due at, 0 when it is not armed */
  shr_deadline_heap_t heap;
  shr_thread_t *ready_head, *ready_tail;
  shr_thread_t *all;
  shr_thread_t *zombies; /* finished threads still referenced by a Lua handle */
  shr_thread_t *running;
  shr_thread_t *free_list; /* recycled thread structs */
  int free_count;
  spare_t spares[SPARES_MAX]; /* coroutines for shr_sched_spawn_reusing */
  int nspares;
  int count;
  int closing;
  int handles_open;
};

static char sched_key;

#define FREE_LIST_MAX 1024

static void drain(shr_sched_t *s);

shr_sched_t *shr_sched_of(lua_State *L) {
  lua_pushlightuserdata(L, &sched_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  shr_sched_t *s = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return s;
}

uv_loop_t *shr_sched_loop(shr_sched_t *s) { return s->loop; }
int shr_sched_count(const shr_sched_t *s) { return s->count; }

static void on_idle(uv_idle_t *h) { drain(h->data); }
static void on_check(uv_check_t *h) { drain(h->data); }

static void on_deadline_timer(uv_timer_t *h);

shr_sched_t *shr_sched_new(uv_loop_t *loop, lua_State *L) {
  shr_sched_t *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->loop = loop;
  s->L = L;
  uv_idle_init(loop, &s->idle);
  uv_check_init(loop, &s->check);
  uv_timer_init(loop, &s->timer);
  s->idle.data = s->check.data = s->timer.data = s;
  uv_check_start(&s->check, on_check);
  /* The check handle alone must not keep the loop alive. */
  uv_unref((uv_handle_t *)&s->check);
  uv_unref((uv_handle_t *)&s->timer);
  s->handles_open = 3;
  shr_deadline_heap_init(&s->heap);
  lua_pushlightuserdata(L, &sched_key);
  lua_pushlightuserdata(L, s);
  lua_rawset(L, LUA_REGISTRYINDEX);
  return s;
}

/* ---- ready queue ---- */

static void enqueue(shr_thread_t *t, int mode) {
  shr_sched_t *s = t->sched;
  assert(!t->queued);
  t->queued = 1;
  t->resume_mode = mode;
  t->next_ready = NULL;
  if (s->ready_tail)
    s->ready_tail->next_ready = t;
  else
    s->ready_head = t;
  s->ready_tail = t;
  if (!uv_is_active((uv_handle_t *)&s->idle)) uv_idle_start(&s->idle, on_idle);
}

/* ---- deadlines ---- */

/* The timer is due at the earliest deadline or before it: a thread leaving
 * the heap leaves the timer be (it may fire early, and re-arms), since
 * re-arming as each thread finished cost two timer starts a request. */
static void arm_timer(shr_sched_t *s, uint64_t deadline) {
  if (s->timer_due && s->timer_due <= deadline) return;
  uint64_t now = uv_now(s->loop);
  uv_timer_start(&s->timer, on_deadline_timer, deadline > now ? deadline - now : 0, 0);
  s->timer_due = deadline;
}

static void expire(shr_thread_t *t) {
  t->expired = 1;
  shr_wait_t *w = t->wait;
  if (w) {
    t->wait = NULL;
    w->state = WAIT_CANCELLED;
    w->thread = NULL;
    w->cancel(w);
    enqueue(t, RESUME_TIMEOUT);
  }
}

static void on_deadline_timer(uv_timer_t *h) {
  shr_sched_t *s = h->data;
  uint64_t now = uv_now(s->loop);
  shr_thread_t *t;
  s->timer_due = 0;
  while ((t = shr_deadline_heap_min(&s->heap)) && t->deadline <= now) {
    shr_deadline_heap_remove(&s->heap, t);
    expire(t);
  }
  if (t) arm_timer(s, t->deadline);
}

void shr_thread_set_deadline(shr_thread_t *t, uint64_t deadline_ms) {
  shr_sched_t *s = t->sched;
  if (t->heap_index >= 0) shr_deadline_heap_remove(&s->heap, t);
  t->deadline = deadline_ms;
  if (deadline_ms) {
    shr_deadline_heap_insert(&s->heap, t);
    arm_timer(s, deadline_ms);
  }
}

int shr_thread_expired(const shr_thread_t *t) { return t->expired; }
void **shr_thread_userslot(shr_thread_t *t, int index) {
  assert(index >= 0 && index < SHR_THREAD_SLOTS);
  return &t->slots[index];
}

/* The heap reads and writes these two fields through accessors (deadline_heap.h). */
uint64_t shr_thread_deadline(const shr_thread_t *t) { return t->deadline; }
int *shr_thread_heap_index(shr_thread_t *t) { return &t->heap_index; }

/* ---- thread lifetime ---- */

static void list_remove(shr_thread_t **head, shr_thread_t *t) {
  if (t->prev)
    t->prev->next = t->next;
  else
    *head = t->next;
  if (t->next) t->next->prev = t->prev;
  t->prev = t->next = NULL;
}

static void list_push(shr_thread_t **head, shr_thread_t *t) {
  t->prev = NULL;
  t->next = *head;
  if (*head) (*head)->prev = t;
  *head = t;
}


static shr_thread_t *thread_alloc(shr_sched_t *s) {
  shr_thread_t *t = s->free_list;
  if (t) {
    s->free_list = t->next;
    s->free_count--;
  } else {
    t = malloc(sizeof *t);
    if (!t) return NULL;
  }
  *t = (shr_thread_t){.sched = s, .heap_index = -1, .ref = LUA_NOREF};
  list_push(&s->all, t);
  s->count++;
  return t;
}

static void thread_free(shr_thread_t *t) {
  shr_sched_t *s = t->sched;
  if (s && s->free_count < FREE_LIST_MAX && !s->closing) {
    t->next = s->free_list;
    s->free_list = t;
    s->free_count++;
  } else {
    free(t);
  }
}

/* t's coroutine: a spare one if t may reuse one, else a new one. */
static void take_coroutine(shr_thread_t *t) {
  shr_sched_t *s = t->sched;
  if (t->reuses && s->nspares > 0) {
    spare_t *spare = &s->spares[--s->nspares];
    t->co = spare->co;
    t->ref = spare->ref;
    return;
  }
  t->co = lua_newthread(s->L);
  t->ref = luaL_ref(s->L, LUA_REGISTRYINDEX);
}

/* A coroutine whose function returned can run another one (lua_resume starts
 * it like a new coroutine); one that raised or was killed cannot. */
static void release_coroutine(shr_thread_t *t) {
  shr_sched_t *s = t->sched;
  if (t->reuses && t->ok && !t->killed && !s->closing && s->nspares < SPARES_MAX) {
    lua_settop(t->co, 0);
    s->spares[s->nspares++] = (spare_t){t->co, t->ref};
  } else {
    luaL_unref(s->L, LUA_REGISTRYINDEX, t->ref);
  }
}

/* Drops the thread from the scheduler: its deadline, its place in the list
 * and its coroutine (released, or kept as a spare). While a Lua handle refers
 * to the thread, the struct and its coroutine live on. */
static void thread_retire(shr_thread_t *t) {
  shr_sched_t *s = t->sched;
  if (t->heap_index >= 0) shr_deadline_heap_remove(&s->heap, t);
  list_remove(&s->all, t);
  s->count--;
  t->finished = 1;
  if (t->handles == 0) {
    release_coroutine(t);
    thread_free(t);
  } else {
    list_push(&s->zombies, t);
  }
}

static void wake_joiners(shr_thread_t *t) {
  joiner_t *j = t->joiners;
  t->joiners = NULL;
  while (j) {
    joiner_t *next = j->next;
    j->next = NULL;
    shr_sched_wake(&j->wait);
    j = next;
  }
}

static void finish(shr_thread_t *t, int ok) {
  t->ok = ok;
  lua_State *co = t->co;
  if (!ok) {
    /* co holds the error value; add a traceback string after it. */
    const char *msg = lua_tostring(co, -1);
    if (!msg && lua_istable(co, -1)) {
      lua_getfield(co, -1, "message");
      msg = lua_tostring(co, -1);
      lua_pop(co, 1);
    }
    luaL_traceback(co, co, msg ? msg : "(error object is not a string)", 0);
    /* Leave exactly [error value, traceback] on the stack. */
    int top = lua_gettop(co);
    if (top > 2) {
      lua_replace(co, 2);
      lua_pushvalue(co, top - 1);
      lua_replace(co, 1);
      lua_settop(co, 2);
    }
  }
  t->finished = 1;
  if (t->done)
    t->done(t, ok, co, t->done_data);
  else if (!ok && !t->joiners)
    /* A spawned thread nobody waits on: its error would be lost. A later join
     * still gets the error value. */
    shr_error("light thread failed: %s", lua_tostring(co, 2));
  wake_joiners(t);
  thread_retire(t);
}

static void run(shr_thread_t *t, int nargs) {
  shr_sched_t *s = t->sched;
  s->running = t;
  int rc = lua_resume(t->co, nargs);
  s->running = NULL;
  if (rc == LUA_YIELD) {
    if (t->killed) {
      thread_retire(t);
    } else if (!t->wait && !t->queued) {
      lua_settop(t->co, 0); /* a plain coroutine.yield(): run again next turn */
      enqueue(t, RESUME_YIELD);
    }
    return;
  }
  finish(t, rc == 0);
}

static int push_trampoline(lua_State *L) {
  shr_wait_t *w = lua_touserdata(L, 1);
  lua_settop(L, 0);
  return w->push(L, w);
}

/* Runs w's push under lua_pcall on the main state, then moves the values to
 * co: building a large reply may raise (out of memory under the state's cap),
 * and outside lua_resume that would be a panic. The thread then gets
 * nil, "out of memory: ...". */
static int protected_push(shr_sched_t *s, lua_State *co, shr_wait_t *w) {
  lua_State *L = s->L;
  int base = lua_gettop(L);
  lua_pushcfunction(L, push_trampoline);
  lua_pushlightuserdata(L, w);
  if (lua_pcall(L, 1, LUA_MULTRET, 0) != 0) {
    const char *msg = lua_tostring(L, -1);
    lua_pushnil(co);
    lua_pushfstring(co, "out of memory: %s", msg ? msg : "?");
    lua_settop(L, base);
    return 2;
  }
  int n = lua_gettop(L) - base;
  lua_xmove(L, co, n);
  return n;
}

static void resume_queued(shr_thread_t *t) {
  lua_State *co = t->co;
  int nargs = 0;
  switch (t->resume_mode) {
  case RESUME_START:
    nargs = t->start_nargs;
    break;
  case RESUME_WAKE: {
    shr_wait_t *w = t->woken;
    t->woken = NULL;
    nargs = protected_push(t->sched, co, w);
    break;
  }
  case RESUME_TIMEOUT:
    lua_pushnil(co);
    lua_pushliteral(co, "timeout");
    nargs = 2;
    break;
  default:
    break;
  }
  if (t->killed) {
    lua_settop(co, 0);
    thread_retire(t);
    return;
  }
  run(t, nargs);
}

static void drain(shr_sched_t *s) {
  /* Only the threads queued now: ones queued while draining wait a turn, so a
   * thread that yields in a loop cannot starve the loop's I/O. */
  shr_thread_t *t = s->ready_head, *last = s->ready_tail;
  s->ready_head = s->ready_tail = NULL;
  while (t) {
    shr_thread_t *next = t->next_ready;
    t->queued = 0;
    resume_queued(t);
    if (t == last) break;
    t = next;
  }
  if (!s->ready_head) uv_idle_stop(&s->idle);
}

static shr_thread_t *spawn(shr_sched_t *s, int nargs, shr_thread_done_cb done, void *data, int reuses) {
  lua_State *L = s->L;
  shr_thread_t *t = thread_alloc(s);
  if (!t) {
    lua_pop(L, nargs + 1);
    return NULL;
  }
  t->reuses = reuses;
  take_coroutine(t);
  lua_xmove(L, t->co, nargs + 1);
  t->start_nargs = nargs;
  t->done = done;
  t->done_data = data;
  enqueue(t, RESUME_START);
  return t;
}

shr_thread_t *shr_sched_spawn(shr_sched_t *s, int nargs, shr_thread_done_cb done, void *data) {
  return spawn(s, nargs, done, data, 0);
}

shr_thread_t *shr_sched_spawn_reusing(shr_sched_t *s, int nargs, shr_thread_done_cb done, void *data) {
  return spawn(s, nargs, done, data, 1);
}

shr_thread_t *shr_sched_current(lua_State *L) {
  shr_sched_t *s = shr_sched_of(L);
  if (!s || !s->running || s->running->co != L) {
    luaL_error(L, "shield I/O must be called from a shield light thread, not a plain coroutine");
    return NULL;
  }
  return s->running;
}

int shr_sched_wait(lua_State *L, shr_wait_t *w) {
  shr_thread_t *t = shr_sched_current(L);
  if (w->state == WAIT_WOKEN) return w->push(L, w);
  if (t->expired) {
    w->state = WAIT_CANCELLED;
    w->cancel(w);
    lua_pushnil(L);
    lua_pushliteral(L, "timeout");
    return 2;
  }
  w->state = WAIT_PARKED;
  w->thread = t;
  t->wait = w;
  return lua_yield(L, 0);
}

void shr_sched_wake(shr_wait_t *w) {
  if (w->state == WAIT_IDLE) {
    w->state = WAIT_WOKEN; /* completed before the thread parked */
    return;
  }
  if (w->state != WAIT_PARKED) return;
  shr_thread_t *t = w->thread;
  w->state = WAIT_WOKEN;
  w->thread = NULL;
  t->wait = NULL;
  t->woken = w;
  enqueue(t, RESUME_WAKE);
}

void shr_thread_kill(shr_thread_t *t) {
  if (t->finished || t->killed) return;
  t->killed = 1;
  if (t->wait) {
    shr_wait_t *w = t->wait;
    t->wait = NULL;
    w->state = WAIT_CANCELLED;
    w->thread = NULL;
    w->cancel(w);
  }
  wake_joiners(t);
  /* A queued thread is retired when the queue reaches it (its woken wait is
   * pushed and dropped there, which releases the request); a running one when
   * it yields. */
  if (!t->queued && t->sched->running != t) thread_retire(t);
}

/* ---- close ---- */

static void on_handle_closed(uv_handle_t *h) {
  shr_sched_t *s = h->data;
  if (--s->handles_open == 0) {
    while (s->free_list) {
      shr_thread_t *t = s->free_list;
      s->free_list = t->next;
      free(t);
    }
    shr_deadline_heap_free(&s->heap);
    free(s);
  }
}

void shr_sched_close(shr_sched_t *s) {
  s->closing = 1;
  /* Drop the ready queue first: woken waits are pushed and discarded, which
   * releases their requests. */
  for (shr_thread_t *t = s->ready_head; t; t = t->next_ready) {
    t->queued = 0;
    if (t->resume_mode == RESUME_WAKE && t->woken) {
      t->woken->push(t->co, t->woken);
      t->woken = NULL;
    }
    lua_settop(t->co, 0);
  }
  s->ready_head = s->ready_tail = NULL;
  while (s->all) {
    shr_thread_t *t = s->all;
    shr_thread_kill(t);
    if (s->all == t) thread_retire(t);
  }
  /* Handles outlive the scheduler until lua_close collects them. */
  while (s->zombies) {
    shr_thread_t *t = s->zombies;
    list_remove(&s->zombies, t);
    t->sched = NULL;
  }
  while (s->nspares > 0) luaL_unref(s->L, LUA_REGISTRYINDEX, s->spares[--s->nspares].ref);
  lua_pushlightuserdata(s->L, &sched_key);
  lua_pushnil(s->L);
  lua_rawset(s->L, LUA_REGISTRYINDEX);
  uv_close((uv_handle_t *)&s->idle, on_handle_closed);
  uv_close((uv_handle_t *)&s->check, on_handle_closed);
  uv_close((uv_handle_t *)&s->timer, on_handle_closed);
}

/* ---- Lua handles of threads (shield.spawn / shield.join) ---- */

#define THREAD_MT "shield.thread"

typedef struct {
  shr_thread_t *t;
} thread_handle_t;

/* Pushes ok and the results (or the error) of the finished thread t onto co. */
static int push_thread_results(lua_State *co, shr_thread_t *t) {
  if (t->killed && !t->ok) {
    lua_pushboolean(co, 0);
    lua_pushliteral(co, "killed");
    return 2;
  }
  lua_State *tco = t->co;
  int n = t->ok ? lua_gettop(tco) : 1;
  luaL_checkstack(co, n + 1, "join results");
  lua_pushboolean(co, t->ok);
  for (int i = 1; i <= n; i++) {
    lua_pushvalue(tco, i);
    lua_xmove(tco, co, 1);
  }
  return n + 1;
}

static int push_join_results(lua_State *co, shr_wait_t *w) {
  joiner_t *j = (joiner_t *)w;
  shr_thread_t *t = j->target;
  free(j);
  return push_thread_results(co, t);
}

static void cancel_join(shr_wait_t *w) {
  joiner_t *j = (joiner_t *)w;
  joiner_t **p = &j->target->joiners;
  while (*p && *p != j) p = &(*p)->next;
  if (*p) *p = j->next;
  free(j);
}

static int l_spawn(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  shr_sched_t *s = shr_sched_of(L);
  shr_thread_t *parent = (s && s->running && s->running->co == L) ? s->running : NULL;
  if (!s) return luaL_error(L, "shield.spawn: no scheduler");
  int nargs = lua_gettop(L) - 1;
  shr_thread_t *t = thread_alloc(s);
  if (!t) return luaL_error(L, "shield.spawn: out of memory");
  thread_handle_t *h = lua_newuserdata(L, sizeof *h);
  h->t = t;
  t->handles = 1;
  luaL_getmetatable(L, THREAD_MT);
  lua_setmetatable(L, -2);
  lua_insert(L, 1);
  t->co = lua_newthread(L);
  t->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_xmove(L, t->co, nargs + 1);
  t->start_nargs = nargs;
  if (parent && parent->deadline) shr_thread_set_deadline(t, parent->deadline);
  if (parent && parent->expired) t->expired = 1;
  enqueue(t, RESUME_START);
  return 1;
}

static int l_join(lua_State *L) {
  thread_handle_t *h = luaL_checkudata(L, 1, THREAD_MT);
  shr_thread_t *t = h->t;
  if (t->finished || t->killed) return push_thread_results(L, t);
  if (shr_sched_current(L) == t) return luaL_error(L, "shield.join: a thread cannot join itself");
  joiner_t *j = calloc(1, sizeof *j);
  if (!j) return luaL_error(L, "shield.join: out of memory");
  j->wait.push = push_join_results;
  j->wait.cancel = cancel_join;
  j->target = t;
  j->next = t->joiners;
  t->joiners = j;
  return shr_sched_wait(L, &j->wait);
}

static int l_thread_gc(lua_State *L) {
  thread_handle_t *h = luaL_checkudata(L, 1, THREAD_MT);
  shr_thread_t *t = h->t;
  if (!t) return 0;
  h->t = NULL;
  if (--t->handles > 0 || !t->finished) return 0;
  luaL_unref(L, LUA_REGISTRYINDEX, t->ref);
  if (t->sched) {
    list_remove(&t->sched->zombies, t);
    thread_free(t);
  } else {
    free(t);
  }
  return 0;
}

static int l_thread_tostring(lua_State *L) {
  thread_handle_t *h = luaL_checkudata(L, 1, THREAD_MT);
  lua_pushfstring(L, "shield.thread: %p", (void *)h->t);
  return 1;
}

/* ---- timers ---- */

typedef struct {
  shr_wait_t wait;
  uv_timer_t timer;
} sleep_req_t;

static void free_sleep(uv_handle_t *h) { free(h->data); }

static void on_sleep_done(uv_timer_t *h) { shr_sched_wake(&((sleep_req_t *)h->data)->wait); }

static int push_sleep(lua_State *co, shr_wait_t *w) {
  sleep_req_t *r = (sleep_req_t *)w;
  uv_close((uv_handle_t *)&r->timer, free_sleep);
  lua_pushboolean(co, 1);
  return 1;
}

static void cancel_sleep(shr_wait_t *w) {
  sleep_req_t *r = (sleep_req_t *)w;
  uv_timer_stop(&r->timer);
  uv_close((uv_handle_t *)&r->timer, free_sleep);
}

static int l_sleep(lua_State *L) {
  lua_Number ms = luaL_checknumber(L, 1);
  if (ms < 0) ms = 0;
  shr_thread_t *t = shr_sched_current(L);
  sleep_req_t *r = calloc(1, sizeof *r);
  if (!r) return luaL_error(L, "shield.sleep: out of memory");
  r->wait.push = push_sleep;
  r->wait.cancel = cancel_sleep;
  uv_timer_init(t->sched->loop, &r->timer);
  r->timer.data = r;
  uv_timer_start(&r->timer, on_sleep_done, (uint64_t)ms, 0);
  return shr_sched_wait(L, &r->wait);
}

static int l_now(lua_State *L) {
  /* Wall-clock milliseconds, as Lua number (exact below 2^53). */
  lua_pushnumber(L, (lua_Number)shr_wall_ms());
  return 1;
}

static int l_yield(lua_State *L) {
  shr_sched_current(L);
  return lua_yield(L, 0);
}

static int l_deadline(lua_State *L) {
  /* Milliseconds left before the running thread's deadline, or nil. */
  shr_thread_t *t = shr_sched_current(L);
  if (!t->deadline) return 0;
  uint64_t now = uv_now(t->sched->loop);
  lua_pushnumber(L, t->deadline > now ? (lua_Number)(t->deadline - now) : 0);
  return 1;
}

static int l_set_deadline(lua_State *L) {
  /* The running thread must finish within ms from now; nil clears. */
  shr_thread_t *t = shr_sched_current(L);
  if (lua_isnoneornil(L, 1)) {
    shr_thread_set_deadline(t, 0);
    return 0;
  }
  lua_Number ms = luaL_checknumber(L, 1);
  shr_thread_set_deadline(t, uv_now(t->sched->loop) + (uint64_t)(ms > 0 ? ms : 0));
  return 0;
}

void shr_sched_lua_register(lua_State *L) {
  if (luaL_newmetatable(L, THREAD_MT)) {
    lua_pushcfunction(L, l_thread_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_thread_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {{"spawn", l_spawn}, {"join", l_join},   {"sleep", l_sleep},
                                 {"now", l_now},     {"yield", l_yield}, {"deadline_left", l_deadline},
                                 {"set_deadline", l_set_deadline}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
