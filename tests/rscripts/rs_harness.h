/* Test client for the job system's Redis scripts (lua/shield/redis/): a
 * synchronous hiredis connection to the test harness' Redis, the scripts loaded
 * exactly as the runtime loads them (common.lua .. "\n" .. <script>.lua), replies
 * flattened to text for exact comparisons, and assertion macros. Used by
 * the tests in tests/rscripts; relies on SHIELD_TEST_REDIS_PORT and SHIELD_SOURCE_DIR. */
#ifndef RS_HARNESS_H
#define RS_HARNESS_H

#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "begin_args.h"
#include "outbox.h"

#define RS_STREAM "shield:ingestion_queue"
#define RS_RETRY RS_STREAM ":retry"
#define RS_DEAD RS_STREAM ":dead"
#define RS_EVENTS "shield:events"
#define RS_DIRTY "shield:jobs:dirty"
#define RS_GROUP "lightrag-workers"

extern redisContext *rs_redis;
extern long long rs_now;              /* ARGV[1] (epoch ms) of every script call */
extern const char *rs_events_maxlen;  /* ARGV[2] */
extern const char *rs_status_ttl;     /* ARGV[3] */
extern int rs_failures;

/* Connects and loads every script; 0, or -1 with the reason on stderr. */
int rs_setup(void);
void rs_teardown(void);
/* An empty database with the consumer group on an empty task stream. */
void rs_reset(void);

/* A reply as text: strings as they are, integers in decimal, nil as "(nil)",
 * errors as "error: <message>", arrays as their elements joined by '|' (nested
 * arrays in brackets). The text lives in a ring of buffers: valid for the next
 * few calls. */
const char *rs_text(const redisReply *r);
/* A command (hiredis format) and its reply as text; exits if the connection is lost. */
const char *rs_q(const char *fmt, ...);
long long rs_int(const char *fmt, ...);
/* EVALSHA of a script with the five keys and ARGV[1..3] prepended; the reply as
 * text. rs_run takes a NULL-terminated list of arguments. */
const char *rs_script(const char *name, int argc, const char **argv);
const char *rs_run(const char *name, ...);
/* Entries of the task stream pending in the consumer group. */
long long rs_pending(void);
/* The fields (joined by '|') of the index-th entry of a stream, "" if none. */
const char *rs_entry(const char *stream, int index);
/* The index-th event as "type|job_id|data". */
const char *rs_event(int index);

typedef struct {
  char id[48];
  char job[64];    /* "" when the entry's fields read back empty */
  char chunk[96];
  int first; /* a first delivery (see shr_begin_entry_t) */
} rs_entry_t;

/* XREADGROUP from `from` (">" or "0") for consumer; returns the entries read. */
int rs_read(const char *consumer, const char *from, rs_entry_t *out, int max);
/* begin.lua on entries (all from a pending pass or none), encoded as the
 * consumer encodes them (runtime/begin_args.c); one verdict per entry, a run's
 * for each of its entries. rs_begin_verdicts: how many the reply held. */
extern int rs_begin_verdicts;
const char *rs_begin(const char *consumer, int max_deliveries, const rs_entry_t *e, int n,
                     int pending);
/* settle.lua on n records of 6 fields each, encoded as the consumer encodes
 * them (runtime/outbox.c); the summary. */
const char *rs_settle(int n, const char *const *records);

#define RS_CHECK(cond)                                                         \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      rs_failures++;                                                           \
    }                                                                          \
  } while (0)

#define RS_EQ_STR(expected, actual)                                               \
  do {                                                                            \
    const char *rs_e_ = (expected), *rs_a_ = (actual);                            \
    if (strcmp(rs_e_, rs_a_) != 0) {                                              \
      fprintf(stderr, "%s:%d: %s\n  expected: %s\n  actual:   %s\n", __FILE__,    \
              __LINE__, #actual, rs_e_, rs_a_);                                   \
      rs_failures++;                                                              \
    }                                                                             \
  } while (0)

#define RS_EQ_INT(expected, actual)                                                  \
  do {                                                                               \
    long long rs_e_ = (expected), rs_a_ = (actual);                                  \
    if (rs_e_ != rs_a_) {                                                            \
      fprintf(stderr, "%s:%d: %s: expected %lld, got %lld\n", __FILE__, __LINE__,    \
              #actual, rs_e_, rs_a_);                                                \
      rs_failures++;                                                                 \
    }                                                                                \
  } while (0)

#endif
