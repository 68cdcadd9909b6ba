/* Light threads: Lua coroutines scheduled on a libuv loop, in the manner of
 * OpenResty's cosockets. The scheduler alone calls lua_resume. An I/O binding
 * parks the running thread with shr_sched_wait() and, from its C callback, wakes
 * it with shr_sched_wake(); the binding's push function turns the stored raw
 * result into Lua values at resume time, so hiredis/libpq/curl callbacks never
 * touch a lua_State. Used by the worker, `run`, and every Lua binding. */
#ifndef SHR_SCHED_H
#define SHR_SCHED_H

#include <lua.h>
#include <stdint.h>
#include <uv.h>

typedef struct shr_sched shr_sched_t;
typedef struct shr_thread shr_thread_t;
typedef struct shr_wait shr_wait_t;

/* A pending operation of a parked thread. Usually embedded in the binding's
 * request struct; zero-initialise it. Exactly one of push or cancel is called,
 * once. wake may come before shr_sched_wait (an I/O that failed at once):
 * shr_sched_wait then returns push's results without yielding. */
struct shr_wait {
  /* The operation completed and the thread resumes: push its results onto co
   * and return their count. Release the request here. */
  int (*push)(lua_State *co, shr_wait_t *w);
  /* The thread stopped waiting (deadline passed, thread killed, scheduler
   * closing): detach from the I/O so a late completion never calls wake, and
   * release what can be released now. The thread resumes with nil, "timeout"
   * (or not at all when killed). */
  void (*cancel)(shr_wait_t *w);
  shr_thread_t *thread; /* the parked thread, set by shr_sched_wait */
  int state;            /* scheduler-private: idle, parked, woken, cancelled */
};

/* Called when a thread ends. ok: 1 if its function returned (results on co's
 * stack from index 1), 0 if it raised (co's stack holds the error value, then a
 * traceback string). The thread is released after the callback returns unless
 * a Lua handle still references it. */
typedef void (*shr_thread_done_cb)(shr_thread_t *t, int ok, lua_State *co, void *data);

shr_sched_t *shr_sched_new(uv_loop_t *loop, lua_State *L);
/* Kills every thread (their waits are cancelled), closes the handles; the
 * scheduler is freed once they are closed (run the loop afterwards). */
void shr_sched_close(shr_sched_t *s);
/* The scheduler of the state L (registered in its registry by shr_sched_new). */
shr_sched_t *shr_sched_of(lua_State *L);
uv_loop_t *shr_sched_loop(shr_sched_t *s);

/* Starts the function at stack index -(nargs+1) of s's main state with the
 * nargs values above it (all popped) as a new thread. It first runs from the
 * loop's next idle/check turn, never inside this call. done may be NULL. */
shr_thread_t *shr_sched_spawn(shr_sched_t *s, int nargs, shr_thread_done_cb done, void *data);
/* The same for a function that never tells coroutines apart (keeps nothing
 * keyed by coroutine.running(), never sets the thread's environment): the
 * thread may run on a coroutine that ran another such thread to its end, and
 * leaves its own for the next one when it returns. Making a coroutine per API
 * request, and collecting it, cost ~5,000 instructions a request. */
shr_thread_t *shr_sched_spawn_reusing(shr_sched_t *s, int nargs, shr_thread_done_cb done, void *data);

/* The running thread of L, or raises a Lua error if L is not a light thread
 * (for instance a coroutine.create inside one). */
shr_thread_t *shr_sched_current(lua_State *L);

/* Parks the running thread of L on w; the C function must end with
 * `return shr_sched_wait(L, w);`. If the thread's deadline has already passed,
 * w->cancel is called at once and the call answers nil, "timeout". */
int shr_sched_wait(lua_State *L, shr_wait_t *w);
/* The operation of w completed: queue its thread to resume (never resumes
 * inside this call). No-op if w was cancelled. */
void shr_sched_wake(shr_wait_t *w);

/* Deadline in loop milliseconds (uv_now); 0 clears it. When it passes, the
 * thread's wait is cancelled and it resumes with nil, "timeout"; every later
 * wait answers nil, "timeout" at once. Threads spawned by a thread inherit its
 * deadline. */
void shr_thread_set_deadline(shr_thread_t *t, uint64_t deadline_ms);
int shr_thread_expired(const shr_thread_t *t);
/* Stops a thread now: cancels its wait; it never resumes; done is not called. */
void shr_thread_kill(shr_thread_t *t);
/* Per-thread slot for bindings (e.g. the PostgreSQL connection pinned by a transaction). */
void **shr_thread_userslot(shr_thread_t *t, int index);
#define SHR_THREAD_SLOT_PG 0
#define SHR_THREAD_SLOTS 2

/* Number of live threads. */
int shr_sched_count(const shr_sched_t *s);

/* Registers shield.core's spawn/join/sleep/now/yield on the table at the top of L. */
void shr_sched_lua_register(lua_State *L);

#endif
