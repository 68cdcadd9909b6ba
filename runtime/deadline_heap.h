/* A binary min-heap of light threads ordered by deadline, so the scheduler
 * needs one uv_timer for all deadlines. Used by sched.c only; the thread's
 * deadline and heap position are read through sched.c's accessors. */
#ifndef SHR_DEADLINE_HEAP_H
#define SHR_DEADLINE_HEAP_H

#include <stdint.h>

#include "sched.h"

typedef struct {
  shr_thread_t **items;
  int len, cap;
} shr_deadline_heap_t;

uint64_t shr_thread_deadline(const shr_thread_t *t);
int *shr_thread_heap_index(shr_thread_t *t);

void shr_deadline_heap_init(shr_deadline_heap_t *h);
void shr_deadline_heap_free(shr_deadline_heap_t *h);
int shr_deadline_heap_insert(shr_deadline_heap_t *h, shr_thread_t *t);
void shr_deadline_heap_remove(shr_deadline_heap_t *h, shr_thread_t *t);
shr_thread_t *shr_deadline_heap_min(const shr_deadline_heap_t *h);

#endif
