/* Throughput of the hot-path scripts, printed (not asserted): begin and settle of
 * 100,000 entries in batches of 100, one synchronous EVALSHA per batch, with tiny
 * and with 1 KiB chunk contents (the trim after each XACK walks the first stream
 * node up to its oldest needed entry: ~100 tiny entries a node, a few large ones).
 * The outcome is asserted: every job completed, the stream and its PEL empty,
 * the events stream capped. */
#include "rs_harness.h"

#include <stdlib.h>
#include <time.h>

#define JOBS 100
#define CHUNKS 1000
#define BATCH 100
#define TOTAL (JOBS * CHUNKS)

static double seconds_since(const struct timespec *start) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static void enqueue_all(int content_bytes) {
  static char strs[CHUNKS][3][32];
  char *content = malloc((size_t)content_bytes + 1);
  if (!content) exit(1);
  memset(content, 'x', (size_t)content_bytes);
  content[content_bytes] = '\0';
  static const char *argv[5 + 3 * CHUNKS];
  for (int j = 0; j < JOBS; j++) {
    char id[16];
    snprintf(id, sizeof id, "job%d", j);
    argv[0] = id;
    argv[1] = "bench";
    argv[2] = "{}";
    argv[3] = "";
    argv[4] = "0";
    for (int i = 0; i < CHUNKS; i++) {
      snprintf(strs[i][0], sizeof strs[i][0], "%s:%d", id, i);
      snprintf(strs[i][2], sizeof strs[i][2], "{}");
      argv[5 + 3 * i] = strs[i][0];
      argv[6 + 3 * i] = content;
      argv[7 + 3 * i] = strs[i][2];
    }
    char expected[32];
    snprintf(expected, sizeof expected, "%s|1", id);
    RS_EQ_STR(expected, rs_script("enqueue", 5 + 3 * CHUNKS, argv));
  }
  free(content);
}

static void run_pass(int content_bytes) {
  rs_reset();
  enqueue_all(content_bytes);

  rs_entry_t *e = malloc(sizeof *e * TOTAL);
  const char **records = malloc(sizeof *records * 6 * BATCH);
  if (!e || !records) exit(1);
  int read = 0;
  while (read < TOTAL) {
    int n = rs_read("bench", ">", e + read, 1000);
    if (n <= 0) break;
    read += n;
  }
  RS_EQ_INT(TOTAL, read);

  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  char runs[BATCH * 4];
  for (int i = 0; i < BATCH; i++) memcpy(runs + 4 * i, "run|", 4);
  runs[BATCH * 4 - 1] = '\0';
  for (int b = 0; b < TOTAL / BATCH; b++) RS_EQ_STR(runs, rs_begin("bench", 3, e + b * BATCH, BATCH, 0));
  double begin_s = seconds_since(&start);

  clock_gettime(CLOCK_MONOTONIC, &start);
  for (int b = 0; b < TOTAL / BATCH; b++) {
    for (int i = 0; i < BATCH; i++) {
      const rs_entry_t *x = &e[b * BATCH + i];
      const char *r[6] = { "ok", x->id, x->job, x->chunk, "", "" };
      memcpy(records + 6 * i, r, sizeof r);
    }
    RS_EQ_STR("100|100|0|0|0", rs_settle(BATCH, records));
  }
  double settle_s = seconds_since(&start);

  printf("content %4d B: begin %.0f entries/s, settle %.0f chunks/s (%d in batches of %d)\n",
         content_bytes, TOTAL / begin_s, TOTAL / settle_s, TOTAL, BATCH);

  int completed = 0;
  for (int j = 0; j < JOBS; j++) {
    char key[32];
    snprintf(key, sizeof key, "job:job%d", j);
    completed += strcmp(rs_q("HGET %s status", key), "completed") == 0;
  }
  RS_EQ_INT(JOBS, completed);
  RS_EQ_INT(0, rs_int("XLEN %s", RS_STREAM));
  RS_EQ_INT(0, rs_pending());
  RS_CHECK(rs_int("XLEN %s", RS_EVENTS) < 200);

  free(records);
  free(e);
}

int main(void) {
  if (rs_setup() < 0) return 1;
  rs_events_maxlen = "100";
  run_pass(16);
  run_pass(1024);
  rs_teardown();
  return rs_failures ? 1 : 0;
}
