/* The scoreboard's histograms (runtime/scoreboard.h): a duration lands in the
 * first bucket whose bound it does not exceed (bounds inclusive, like
 * Prometheus' le), past the last bound in +Inf; a step's runs fill a histogram
 * of their own per name, and names past SHR_STEP_STATS are dropped. */
#include <math.h>

#include "scoreboard.h"
#include "test_check.h"

static uint64_t bucket(const shr_histogram_t *h, int i) { return atomic_load(&h->buckets[i]); }

static void test_duration_buckets(shr_slot_t *slot) {
  shr_slot_record_duration(slot, 0.0005);
  shr_slot_record_duration(slot, 0.001); /* on the bound: still the first bucket */
  shr_slot_record_duration(slot, 0.2);
  shr_slot_record_duration(slot, 31);
  const shr_histogram_t *h = &slot->durations;
  CHECK_INT(2, bucket(h, 0));
  CHECK_INT(1, bucket(h, 5)); /* le 0.25 */
  CHECK_INT(1, bucket(h, SHR_DURATION_BUCKETS));
  CHECK_INT(4, shr_histogram_count(h));
  CHECK_INT(500 + 1000 + 200000 + 31000000, atomic_load(&h->sum_us));
}

static void test_step_histograms(shr_slot_t *slot) {
  shr_slot_record_step(slot, "extract", 7, 0.0015);
  shr_slot_record_step(slot, "extract", 7, 0.004);
  shr_slot_record_step(slot, "extract", 7, 3);
  shr_slot_record_step(slot, "embed", 5, 0.0005);
  /* Only the first len bytes name the step. */
  shr_slot_record_step(slot, "embedding", 5, 0.02);
  shr_step_stat_t *extract = &slot->steps[0], *embed = &slot->steps[1];
  CHECK_STR("extract", extract->name);
  CHECK_INT(2, bucket(&extract->durations, 1)); /* le 0.005 */
  CHECK_INT(1, bucket(&extract->durations, 9)); /* le 5 */
  CHECK_INT(3, shr_histogram_count(&extract->durations));
  CHECK_INT(1500 + 4000 + 3000000, atomic_load(&extract->durations.sum_us));
  CHECK_STR("embed", embed->name);
  CHECK_INT(1, bucket(&embed->durations, 0));
  CHECK_INT(1, bucket(&embed->durations, 3)); /* le 0.05 */
  CHECK_INT(2, shr_histogram_count(&embed->durations));
  /* A time a script made up: negative and NaN count in the first bucket as 0. */
  shr_slot_record_step(slot, "embed", 5, -4);
  shr_slot_record_step(slot, "embed", 5, NAN);
  CHECK_INT(3, bucket(&embed->durations, 0));
  CHECK_INT(20500, atomic_load(&embed->durations.sum_us));
}

static void test_step_limits(shr_slot_t *slot, shr_slot_t *empty) {
  char name[SHR_STEP_NAME_MAX + 1];
  for (int i = 0; i < SHR_STEP_STATS + 3; i++) {
    int len = snprintf(name, sizeof name, "step%d", i);
    shr_slot_record_step(slot, name, (size_t)len, 0.01);
  }
  CHECK_STR("step11", slot->steps[SHR_STEP_STATS - 1].name);
  uint64_t total = 0;
  for (int i = 0; i < SHR_STEP_STATS; i++) total += shr_histogram_count(&slot->steps[i].durations);
  CHECK_INT(SHR_STEP_STATS, total);
  /* Names too long for the slot, and empty ones, are not recorded. */
  memset(name, 'x', SHR_STEP_NAME_MAX);
  shr_slot_record_step(empty, name, SHR_STEP_NAME_MAX, 0.01);
  shr_slot_record_step(empty, "", 0, 0.01);
  CHECK_INT(0, empty->steps[0].name[0]);
}

int main(void) {
  shr_scoreboard_t *sb = shr_scoreboard_new(3);
  ASSERT(sb != NULL);
  test_duration_buckets(&sb->slots[0]);
  test_step_histograms(&sb->slots[0]);
  test_step_limits(&sb->slots[1], &sb->slots[2]);
  shr_scoreboard_free(sb);
  return test_summary();
}
