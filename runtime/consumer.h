/* The task stream consumer of a worker: reads its consumer group with
 * XREADGROUP on a connection of its own (first its own pending entries, then new
 * ones), asks begin.lua for a verdict per batch, runs each task through the
 * processing script in a light thread with the per-chunk deadline, and settles
 * every outcome of a loop turn with one settle.lua call. Used by worker.c;
 * relies on env (Redis client, scheduler) and the Lua runner shield.runtime. */
#ifndef SHR_CONSUMER_H
#define SHR_CONSUMER_H

#include "env.h"
#include "scoreboard.h"

typedef struct shr_consumer shr_consumer_t;

/* Called once the consumer has stopped reading, every task has ended and every
 * outcome is settled (or Redis stayed unreachable past the drain timeout). */
typedef void (*shr_consumer_drained_cb)(void *data);

typedef void (*shr_consumer_recycle_cb)(void *data);

shr_consumer_t *shr_consumer_new(shr_env_t *env, shr_slot_t *slot, const char *name);
/* cb runs once when the worker has done pool.max_tasks_per_child tasks (the
 * consumer stops reading more than that by itself). */
void shr_consumer_on_recycle(shr_consumer_t *c, shr_consumer_recycle_cb cb, void *data);
/* Starts consuming with the script module at registry ref module_ref. */
int shr_consumer_start(shr_consumer_t *c, int module_ref, const char *version);
/* Tasks started from now on use this module; running ones finish on theirs. */
void shr_consumer_swap_script(shr_consumer_t *c, int module_ref, const char *version);
/* Stops reading; drained is called when nothing is in flight or unsettled. */
void shr_consumer_drain(shr_consumer_t *c, shr_consumer_drained_cb drained, void *data);
/* Frees the consumer; only after drained, or if it was never started. */
void shr_consumer_free(shr_consumer_t *c);

#endif
