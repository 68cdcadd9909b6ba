/* The shared-memory scoreboard: one slot per worker with its pid, state,
 * heartbeat and counters, mapped before the workers are forked so the supervisor
 * reads what every worker writes without a round trip. Counters of a slot are
 * never reset when its worker is re-forked, so metrics never go backwards. */
#ifndef SHR_SCOREBOARD_H
#define SHR_SCOREBOARD_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum {
  SHR_WORKER_EMPTY,    /* never started */
  SHR_WORKER_STARTING, /* forked, loading the script */
  SHR_WORKER_IDLE,     /* waiting for tasks */
  SHR_WORKER_BUSY,     /* running tasks */
  SHR_WORKER_DRAINING, /* finishing its tasks before exiting */
  SHR_WORKER_BACKOFF,  /* exited; re-fork delayed after repeated crashes */
  SHR_WORKER_STOPPED,  /* exited during shutdown */
  SHR_WORKER_STATES
} shr_worker_state_t;

const char *shr_worker_state_name(shr_worker_state_t s);

#define SHR_DURATION_BUCKETS 12 /* duration histograms (chunks, steps), seconds */
#define SHR_STEP_STATS 12       /* distinct step names reported per slot */
#define SHR_STEP_NAME_MAX 32

extern const double shr_duration_bounds[SHR_DURATION_BUCKETS];

/* A duration histogram: runs per bucket of shr_duration_bounds (not cumulative;
 * the last is +Inf) and their total time. */
typedef struct {
  _Atomic uint64_t buckets[SHR_DURATION_BUCKETS + 1];
  _Atomic uint64_t sum_us;
} shr_histogram_t;

/* Time spent in one named step of the processing script (result.steps). */
typedef struct {
  char name[SHR_STEP_NAME_MAX]; /* set once, before a bucket first moves */
  shr_histogram_t durations;
} shr_step_stat_t;

typedef struct {
  _Atomic int pid;
  _Atomic int state;
  _Atomic uint64_t heartbeat_ms;  /* CLOCK_MONOTONIC ms of the last heartbeat */
  _Atomic uint64_t started_ms;    /* when the current worker was forked */
  _Atomic uint64_t generation;    /* workers forked in this slot */
  _Atomic uint64_t restarts;      /* re-forks after an unexpected exit */
  _Atomic uint64_t tasks_done;    /* by the current worker (recycling) */
  _Atomic int in_flight;
  /* cumulative over the slot's life */
  _Atomic uint64_t chunks_ok;
  _Atomic uint64_t chunks_retried;
  _Atomic uint64_t chunks_dead;
  _Atomic uint64_t chunks_skipped;
  shr_histogram_t durations; /* of whole chunks */
  _Atomic uint64_t redis_reconnects;
  _Atomic uint64_t pg_reconnects;
  shr_step_stat_t steps[SHR_STEP_STATS];
  char script_version[17]; /* written by the worker, read racily for display */
} shr_slot_t;

typedef struct {
  int nslots;
  shr_slot_t slots[];
} shr_scoreboard_t;

/* A shared anonymous mapping, inherited by forked workers. */
shr_scoreboard_t *shr_scoreboard_new(int nslots);
void shr_scoreboard_free(shr_scoreboard_t *sb);

void shr_slot_heartbeat(shr_slot_t *slot);
void shr_histogram_record(shr_histogram_t *h, double seconds);
/* The runs a histogram holds: the sum of its buckets. */
uint64_t shr_histogram_count(const shr_histogram_t *h);
void shr_slot_record_duration(shr_slot_t *slot, double seconds);
/* Adds one run of step name; names past SHR_STEP_STATS are not recorded. */
void shr_slot_record_step(shr_slot_t *slot, const char *name, size_t len, double seconds);

#endif
