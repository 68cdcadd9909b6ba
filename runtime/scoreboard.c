#include "scoreboard.h"

#include <string.h>
#include <sys/mman.h>

#include "clock.h"

const double shr_duration_bounds[SHR_DURATION_BUCKETS] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.25,
                                                           0.5,   1,     2.5,  5,    10,  30};

static const char *const state_names[SHR_WORKER_STATES] = {"empty", "starting", "idle",   "busy",
                                                            "draining", "backoff", "stopped"};

const char *shr_worker_state_name(shr_worker_state_t s) {
  return (s >= 0 && s < SHR_WORKER_STATES) ? state_names[s] : "unknown";
}

static size_t mapping_size(int nslots) { return sizeof(shr_scoreboard_t) + (size_t)nslots * sizeof(shr_slot_t); }

shr_scoreboard_t *shr_scoreboard_new(int nslots) {
  void *p = mmap(NULL, mapping_size(nslots), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  shr_scoreboard_t *sb = p; /* zero-filled by the kernel */
  sb->nslots = nslots;
  return sb;
}

void shr_scoreboard_free(shr_scoreboard_t *sb) { munmap(sb, mapping_size(sb->nslots)); }

void shr_slot_heartbeat(shr_slot_t *slot) {
  atomic_store_explicit(&slot->heartbeat_ms, shr_monotonic_ms(), memory_order_relaxed);
}

/* Buckets are upper bounds, inclusive (Prometheus' le). Step times come from
 * scripts: a negative, NaN or absurd one is clamped before the integer cast. */
void shr_histogram_record(shr_histogram_t *h, double seconds) {
  if (!(seconds >= 0)) seconds = 0;
  if (seconds > 1e9) seconds = 1e9;
  int i = 0;
  while (i < SHR_DURATION_BUCKETS && seconds > shr_duration_bounds[i]) i++;
  atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->sum_us, (uint64_t)(seconds * 1e6), memory_order_relaxed);
}

uint64_t shr_histogram_count(const shr_histogram_t *h) {
  uint64_t n = 0;
  for (int i = 0; i <= SHR_DURATION_BUCKETS; i++) n += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
  return n;
}

void shr_slot_record_duration(shr_slot_t *slot, double seconds) { shr_histogram_record(&slot->durations, seconds); }

void shr_slot_record_step(shr_slot_t *slot, const char *name, size_t len, double seconds) {
  if (len == 0 || len >= SHR_STEP_NAME_MAX) return;
  for (int i = 0; i < SHR_STEP_STATS; i++) {
    shr_step_stat_t *st = &slot->steps[i];
    if (st->name[0] == '\0') {
      memcpy(st->name, name, len);
      st->name[len] = '\0';
      atomic_thread_fence(memory_order_release);
    } else if (strncmp(st->name, name, len) != 0 || st->name[len] != '\0') {
      continue;
    }
    shr_histogram_record(&st->durations, seconds);
    return;
  }
}
