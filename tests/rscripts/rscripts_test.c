/* The job system's Redis scripts against a real Redis: every invariant and branch
 * of enqueue, begin, settle, promote, reclaim, cancel and clean (DESIGN section 4). */
#include "rs_harness.h"

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define T0 1700000000000LL
#define DELIVERED_3 "delivered 3 times without an outcome (crashed or stalled worker)"

/* Enqueues job id with n chunks (<id>:<i>, content "text <i>", metadata {"i":<i>}). */
static const char *enqueue(const char *id, int n, const char *idem) {
  const char **argv = malloc(sizeof *argv * (size_t)(5 + 3 * n));
  char(*strs)[3][48] = malloc(sizeof *strs * (size_t)n);
  if (!argv || !strs) exit(1);
  argv[0] = id;
  argv[1] = "ingest";
  argv[2] = "{\"source\":\"test\"}";
  argv[3] = idem ? idem : "";
  argv[4] = "86400";
  for (int i = 0; i < n; i++) {
    snprintf(strs[i][0], sizeof strs[i][0], "%s:%d", id, i);
    snprintf(strs[i][1], sizeof strs[i][1], "text %d", i);
    snprintf(strs[i][2], sizeof strs[i][2], "{\"i\":%d}", i);
    for (int k = 0; k < 3; k++) argv[5 + 3 * i + k] = strs[i][k];
  }
  const char *t = rs_script("enqueue", 5 + 3 * n, argv);
  free(argv);
  free(strs);
  return t;
}

static int starts(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

static long long xlen(const char *key) { return rs_int("XLEN %s", key); }

static long long ttl(const char *key) { return rs_int("TTL %s", key); }

static const char *hget(const char *job, const char *field) {
  return rs_q("HGET job:%s %s", job, field);
}

/* Polls until every pending entry has been idle for ms (XAUTOCLAIM's threshold). */
static void wait_idle(int ms) {
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    redisReply *r = redisCommand(rs_redis, "XPENDING %s %s IDLE %d - + 1000", RS_STREAM,
                                 RS_GROUP, ms);
    long long idle = r && r->type == REDIS_REPLY_ARRAY ? (long long)r->elements : -1;
    freeReplyObject(r);
    if (idle == rs_pending()) return;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - start.tv_sec > 5) {
      fprintf(stderr, "pending entries never became idle\n");
      exit(1);
    }
    usleep(1000);
  }
}

static void test_enqueue(void) {
  rs_reset();
  rs_now = T0;
  RS_EQ_STR("j1|1", enqueue("j1", 3, "k1"));
  RS_EQ_STR("status|queued|job_type|ingest|metadata|{\"source\":\"test\"}|chunks_total|3|"
            "chunks_processed|0|chunks_failed|0|chunks_skipped|0|created_at|1700000000000|rev|1",
            rs_q("HGETALL job:j1"));
  RS_EQ_INT(-1, ttl("job:j1"));
  RS_EQ_INT(3, xlen(RS_STREAM));
  RS_EQ_STR("chunk_id|j1:0|content|text 0|metadata|{\"i\":0}",
            rs_entry(RS_STREAM, 0));
  RS_EQ_STR("chunk_id|j1:2|content|text 2|metadata|{\"i\":2}",
            rs_entry(RS_STREAM, 2));
  RS_EQ_INT(1, xlen(RS_EVENTS));
  RS_EQ_STR("type|ingestion.queued|job_id|j1|data|"
            "{\"job_id\":\"j1\",\"job_type\":\"ingest\",\"chunks_total\":3}",
            rs_event(0));
  RS_EQ_STR("j1", rs_q("SMEMBERS %s", RS_DIRTY));
  RS_EQ_STR("j1", rs_q("GET shield:idempotency:k1"));
  long long key_ttl = ttl("shield:idempotency:k1");
  RS_CHECK(key_ttl > 86000 && key_ttl <= 86400);

  /* The same idempotency key: the first job, and nothing enqueued. */
  RS_EQ_STR("j1|0", enqueue("j2", 2, "k1"));
  RS_EQ_INT(3, xlen(RS_STREAM));
  RS_EQ_INT(0, rs_int("EXISTS job:j2"));
  RS_EQ_INT(1, xlen(RS_EVENTS));

  /* Refused calls change nothing: every check comes before the first write. */
  RS_EQ_STR("error: job exists", enqueue("j1", 1, NULL));
  const char *bad = "error: bad arguments: job id, type, metadata, idempotency key, ttl, "
                    "then chunk triples expected";
  RS_EQ_STR(bad, rs_run("enqueue", "j3", "ingest", "{}", "", "0", "j3:0", "t", NULL));
  RS_EQ_STR(bad, rs_run("enqueue", "j3", "ingest", "{}", "", "0", NULL));
  RS_EQ_STR(bad, rs_run("enqueue", "j3", "ingest", "{}", "k3", "0", "j3:0", "t", "{}", NULL));
  RS_EQ_INT(3, xlen(RS_STREAM));
  RS_EQ_INT(0, rs_int("EXISTS job:j3"));
  RS_EQ_INT(0, rs_int("EXISTS shield:idempotency:k3"));
  RS_EQ_INT(1, xlen(RS_EVENTS));

  /* The defaults stay out of the entries: metadata "{}" and attempt 1. */
  RS_EQ_STR("j4|1", rs_run("enqueue", "j4", "ingest", "{}", "", "0", "j4:0", "t", "{}", NULL));
  RS_EQ_STR("chunk_id|j4:0|content|t", rs_entry(RS_STREAM, 3));
}

static void test_settle_ok(void) {
  rs_entry_t e[8];
  rs_reset();
  rs_now = T0;
  enqueue("j", 3, NULL);
  RS_EQ_INT(3, rs_read("w1", ">", e, 8));
  rs_now = T0 + 1000;
  RS_EQ_STR("run|run|run", rs_begin("w1", 3, e, 3, 0));
  RS_EQ_STR("processing", hget("j", "status"));
  RS_EQ_STR("1700000001000", hget("j", "started_at"));
  RS_EQ_STR("type|ingestion.started|job_id|j|data|{\"job_id\":\"j\",\"started_at\":1700000001000}",
            rs_event(1));
  /* A job starts once. */
  RS_EQ_STR("run|run|run", rs_begin("w1", 3, e, 3, 0));
  RS_EQ_INT(2, xlen(RS_EVENTS));
  RS_EQ_STR("2", hget("j", "rev"));

  rs_now = T0 + 2000;
  const char *first[] = { "ok", e[0].id, "j", "j:0", "", "" };
  RS_EQ_STR("1|1|0|0|0", rs_settle(1, first));
  RS_EQ_STR("1", hget("j", "chunks_processed"));
  RS_EQ_INT(2, xlen(RS_STREAM));
  RS_EQ_INT(2, rs_pending());
  /* The same outcome again (a re-sent batch): counted once, nothing written. */
  RS_EQ_STR("1|0|0|0|0", rs_settle(1, first));
  RS_EQ_STR("1", hget("j", "chunks_processed"));
  RS_EQ_STR("3", hget("j", "rev"));
  RS_EQ_INT(3, xlen(RS_EVENTS));
  RS_EQ_INT(-1, ttl("job:j"));
  RS_EQ_INT(-1, ttl("job:j:done"));

  rs_now = T0 + 5000;
  const char *rest[] = { "ok", e[1].id, "j", "j:1", "", "", "ok", e[2].id, "j", "j:2", "", "" };
  RS_EQ_STR("2|2|0|0|0", rs_settle(2, rest));
  RS_EQ_STR("completed", hget("j", "status"));
  RS_EQ_STR("1700000005000", hget("j", "completed_at"));
  RS_EQ_STR("3", hget("j", "chunks_processed"));
  RS_EQ_STR("0", hget("j", "chunks_failed"));
  RS_EQ_STR("4", hget("j", "rev"));
  RS_EQ_STR("(nil)", hget("j", "error_message"));
  RS_EQ_INT(5, xlen(RS_EVENTS));
  RS_EQ_STR("type|ingestion.progress|job_id|j|data|{\"job_id\":\"j\",\"chunks_processed\":1,"
            "\"chunks_failed\":0,\"chunks_skipped\":0,\"chunks_total\":3,\"percent_complete\":33.33}",
            rs_event(2));
  RS_EQ_STR("type|ingestion.progress|job_id|j|data|{\"job_id\":\"j\",\"chunks_processed\":3,"
            "\"chunks_failed\":0,\"chunks_skipped\":0,\"chunks_total\":3,\"percent_complete\":100}",
            rs_event(3));
  RS_EQ_STR("type|ingestion.completed|job_id|j|data|{\"job_id\":\"j\",\"status\":\"completed\","
            "\"chunks_processed\":3,\"chunks_total\":3,\"duration_ms\":4000,"
            "\"completed_at\":1700000005000}",
            rs_event(4));
  /* No TTL until the PostgreSQL sync has the final state (clean.lua). */
  RS_EQ_INT(-1, ttl("job:j"));
  RS_EQ_INT(-1, ttl("job:j:done"));
  RS_EQ_INT(1, rs_int("SISMEMBER %s j", RS_DIRTY));
  RS_EQ_STR("1", rs_run("clean", "j", "4", NULL));
  long long t = ttl("job:j");
  RS_CHECK(t > 3500 && t <= 3600);
  t = ttl("job:j:done");
  RS_CHECK(t > 3500 && t <= 3600);
  RS_EQ_INT(0, rs_pending());
  RS_EQ_INT(0, xlen(RS_STREAM));
}

/* From an empty database: jobs a and b of na and nb chunks enqueued, read by
 * w1 into e (8 entries at most) and begun. */
static void begin_two_jobs(rs_entry_t *e, const char *a, int na, const char *b, int nb) {
  rs_reset();
  rs_now = T0;
  enqueue(a, na, NULL);
  enqueue(b, nb, NULL);
  RS_EQ_INT(na + nb, rs_read("w1", ">", e, 8));
  char want[8 * 4] = "run";
  for (int i = 1; i < na + nb; i++) strcat(want, "|run");
  RS_EQ_STR(want, rs_begin("w1", 3, e, na + nb, 0));
}

/* The count:<name> fields of a job hash, sorted. */
static const char *count_fields(const char *job) {
  return rs_q("EVAL %s 1 job:%s", "local out = {} for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do "
              "if f:find('^count:') then out[#out + 1] = f end end table.sort(out) return out", job);
}

/* Counts of ok chunks (the text slot, "name=n,..."): added to count:<name> once
 * per chunk, when the done set counts it; one HINCRBY per job and name. */
static void test_settle_counts(void) {
  rs_entry_t e[8];
  begin_two_jobs(e, "c", 4, "d", 2);
  /* c:0 twice in the batch (a redelivered copy): its counts add once. */
  const char *b1[] = { "ok", e[0].id, "c", "c:0", "", "entities=3,relations=1",
                       "ok", e[1].id, "c", "c:1", "", "entities=2,vectors=4",
                       "ok", e[0].id, "c", "c:0", "", "entities=3,relations=1",
                       "ok", e[4].id, "d", "d:0", "", "relations=7" };
  RS_EQ_STR("4|3|0|0|0", rs_settle(4, b1));
  RS_EQ_STR("5", hget("c", "count:entities"));
  RS_EQ_STR("1", hget("c", "count:relations"));
  RS_EQ_STR("4", hget("c", "count:vectors"));
  RS_EQ_STR("7", hget("d", "count:relations"));
  RS_EQ_STR("(nil)", hget("d", "count:entities"));
  /* The same batch again (a lost reply): the done set has them, nothing adds. */
  RS_EQ_STR("4|0|0|0|0", rs_settle(4, b1));
  RS_EQ_STR("5", hget("c", "count:entities"));
  RS_EQ_STR("7", hget("d", "count:relations"));
  /* A redelivery of c:1 in a later batch beside a new chunk: only the new one adds. */
  const char *b2[] = { "ok", e[1].id, "c", "c:1", "", "entities=2,vectors=4",
                       "ok", e[2].id, "c", "c:2", "", "entities=10,vectors=0" };
  RS_EQ_STR("2|1|0|0|0", rs_settle(2, b2));
  RS_EQ_STR("15", hget("c", "count:entities"));
  RS_EQ_STR("4", hget("c", "count:vectors"));
  RS_EQ_STR("4", hget("c", "rev")); /* enqueue, begin, b1, b2 */
  /* Without counts (noop scripts) nothing is added; a text the worker never
   * writes, or a value over the per-chunk bound, is ignored. */
  const char *b3[] = { "ok", e[3].id, "c", "c:3", "", "",
                       "ok", e[5].id, "d", "d:1", "", "Bad Name=1,relations=1000000001,ok_name=2,x=-3" };
  RS_EQ_STR("2|2|0|0|0", rs_settle(2, b3));
  RS_EQ_STR("completed", hget("c", "status"));
  RS_EQ_STR("count:entities|count:relations|count:vectors", count_fields("c"));
  RS_EQ_STR("count:ok_name|count:relations", count_fields("d"));
  RS_EQ_STR("7", hget("d", "count:relations"));
  RS_EQ_STR("2", hget("d", "count:ok_name"));
  /* A job whose hash is gone gets no counts back. */
  rs_q("DEL job:c job:c:done");
  const char *b4[] = { "ok", e[3].id, "c", "c:3", "", "entities=1" };
  RS_EQ_STR("1|0|0|0|0", rs_settle(1, b4));
  RS_EQ_INT(0, rs_int("EXISTS job:c"));
}

/* The arguments joined by '|' (lengths given: the outbox's are not C strings). */
static const char *joined(int argc, const char *const *argv, const size_t *argvlen) {
  static char buf[4096];
  size_t used = 0;
  for (int i = 0; i < argc && used < sizeof buf; i++)
    used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%.*s", i ? "|" : "", (int)argvlen[i], argv[i]);
  return buf;
}

/* settle's encoding (runtime/outbox.c): every msg id, then the ok records as
 * runs of one job, consecutive among the ok records (another record between
 * does not split a run, another job does), then the other records whole. */
static void test_settle_runs(void) {
  rs_entry_t e[8];
  begin_two_jobs(e, "a", 3, "b", 2);
  RS_EQ_INT(2, rs_begin_verdicts);
  const char *recs[] = { "ok", "1-0", "a", "a:0", "", "",
                         "ok", "2-0", "b", "b:0", "", "entities=2",
                         "retry", "3-0", "b", "b:1", "1700000009000", "boom",
                         "ok", "4-0", "a", "a:1", "", "entities=1",
                         "ok", "5-0", "a", "a:2", "", "",
                         "ok", "6-0", "", "", "", "" };
  shr_outbox_t box;
  shr_outbox_init(&box);
  for (int i = 0; i < 6; i++) {
    size_t lens[SHR_OUTBOX_FIELDS];
    for (int k = 0; k < SHR_OUTBOX_FIELDS; k++) lens[k] = strlen(recs[6 * i + k]);
    RS_EQ_INT(0, shr_outbox_add(&box, recs + 6 * i, lens));
  }
  const char *head[] = { "g" };
  const size_t headlen[] = { 1 };
  const char **argv;
  const size_t *argvlen;
  int argc = shr_outbox_argv(&box, 1, head, headlen, &argv, &argvlen);
  RS_EQ_STR("g|6|1-0|2-0|3-0|4-0|5-0|6-0|3|a|1|0|a:0|b|1|1|b:0|b:0|entities=2|a|2|1|a:1|a:2|a:1|entities=1"
            "|retry|3-0|b|b:1|1700000009000|boom",
            joined(argc, argv, argvlen));
  shr_outbox_free(&box);

  /* The same records with the entries' ids, settled: each run counts. */
  const char *ids[] = { e[0].id, e[3].id, e[4].id, e[1].id, e[2].id };
  for (int i = 0; i < 5; i++) recs[6 * i + 1] = ids[i];
  RS_EQ_STR("5|4|1|0|0", rs_settle(5, recs));
  RS_EQ_STR("completed", hget("a", "status"));
  RS_EQ_STR("3", hget("a", "chunks_processed"));
  RS_EQ_STR("1", hget("a", "count:entities"));
  RS_EQ_STR("1", hget("b", "chunks_processed"));
  RS_EQ_STR("2", hget("b", "count:entities"));
  RS_EQ_INT(1, rs_int("ZCARD %s", RS_RETRY));
  RS_EQ_INT(0, rs_pending());

  /* Runs whose sizes overrun the arguments are refused before any write. */
  RS_EQ_STR("error: bad arguments: the runs overrun the arguments, or the other records are not of 6 values",
            rs_run("settle", RS_GROUP, "1", e[0].id, "1", "a", "3", "0", "a:0", NULL));
  RS_EQ_STR("error: bad arguments: run 1: job id, chunk count, counted count expected",
            rs_run("settle", RS_GROUP, "1", e[0].id, "1", "a", "0", "0", NULL));
}

/* begin's encoding (runtime/begin_args.c): first deliveries as runs of one
 * job, a job id each, then every other entry as a quadruple; each entry learns
 * where its verdict is. A pending pass has no runs. */
static void test_begin_runs(void) {
  shr_begin_entry_t refs[4] = {
    { .id = "1-0", .id_len = 3, .job_id = "a", .job_id_len = 1, .chunk_id = "a:0", .chunk_id_len = 3,
      .first_delivery = 1 },
    { .id = "2-0", .id_len = 3, .job_id = "a", .job_id_len = 1, .chunk_id = "a:1", .chunk_id_len = 3 },
    { .id = "3-0", .id_len = 3, .job_id = "a", .job_id_len = 1, .chunk_id = "a:2", .chunk_id_len = 3,
      .first_delivery = 1 },
    { .id = "4-0", .id_len = 3, .job_id = "b", .job_id_len = 1, .chunk_id = "b:0", .chunk_id_len = 3,
      .first_delivery = 1 },
  };
  const char *argv[SHR_BEGIN_ARGS_MAX(4)];
  size_t argvlen[SHR_BEGIN_ARGS_MAX(4)];
  char runs[12];
  int argc = shr_begin_args(refs, 4, 0, runs, argv, argvlen, NULL);
  RS_EQ_STR("2|a|b|2-0|a|a:1|0", joined(argc, argv, argvlen));
  RS_EQ_INT(0, refs[0].verdict);
  RS_EQ_INT(2, refs[1].verdict);
  RS_EQ_INT(0, refs[2].verdict);
  RS_EQ_INT(1, refs[3].verdict);
  argc = shr_begin_args(refs, 2, 1, runs, argv, argvlen, NULL);
  RS_EQ_STR("0|1-0|a|a:0|1|2-0|a|a:1|1", joined(argc, argv, argvlen));
  RS_EQ_INT(1, refs[1].verdict);

  /* rs_read marks first deliveries as the consumer does: read with ">", no
   * attempt over 1, no carried deliveries. */
  rs_entry_t e[8];
  rs_reset();
  rs_now = T0;
  enqueue("r", 1, NULL);
  rs_q("XADD %s * job_id r chunk_id r:0 content x attempt 1", RS_STREAM);
  rs_q("XADD %s * job_id r chunk_id r:0 content x attempt 2", RS_STREAM);
  rs_q("XADD %s * job_id r chunk_id r:0 content x deliveries 1", RS_STREAM);
  RS_EQ_INT(4, rs_read("w1", ">", e, 8));
  RS_EQ_INT(1, e[0].first);
  RS_EQ_INT(1, e[1].first);
  RS_EQ_INT(0, e[2].first);
  RS_EQ_INT(0, e[3].first);
  RS_EQ_STR("run|run|run|run", rs_begin("w1", 3, e, 4, 0));
  RS_EQ_INT(3, rs_begin_verdicts);
}

/* One progress event per job per batch, in the order the batch first touched the
 * jobs, each carrying the count after the batch. */
static void test_progress_coalesced(void) {
  rs_entry_t e[8];
  begin_two_jobs(e, "m", 3, "n", 3);
  RS_EQ_INT(4, xlen(RS_EVENTS));
  const char *b1[] = { "ok", e[3].id, "n", "n:0", "", "", "ok", e[0].id, "m", "m:0", "", "",
                       "ok", e[4].id, "n", "n:1", "", "" };
  RS_EQ_STR("3|3|0|0|0", rs_settle(3, b1));
  RS_EQ_INT(6, xlen(RS_EVENTS));
  RS_EQ_STR("type|ingestion.progress|job_id|n|data|{\"job_id\":\"n\",\"chunks_processed\":2,"
            "\"chunks_failed\":0,\"chunks_skipped\":0,\"chunks_total\":3,\"percent_complete\":66.66}",
            rs_event(4));
  RS_EQ_STR("type|ingestion.progress|job_id|m|data|{\"job_id\":\"m\",\"chunks_processed\":1,"
            "\"chunks_failed\":0,\"chunks_skipped\":0,\"chunks_total\":3,\"percent_complete\":33.33}",
            rs_event(5));
  const char *b2[] = { "ok", e[1].id, "m", "m:1", "", "", "ok", e[2].id, "m", "m:2", "", "",
                       "ok", e[5].id, "n", "n:2", "", "" };
  RS_EQ_STR("3|3|0|0|0", rs_settle(3, b2));
  RS_EQ_INT(10, xlen(RS_EVENTS));
  RS_EQ_STR("type|ingestion.progress|job_id|m|data|{\"job_id\":\"m\",\"chunks_processed\":3,"
            "\"chunks_failed\":0,\"chunks_skipped\":0,\"chunks_total\":3,\"percent_complete\":100}",
            rs_event(6));
  RS_CHECK(starts(rs_event(7), "type|ingestion.completed|job_id|m|"));
  RS_CHECK(starts(rs_event(8), "type|ingestion.progress|job_id|n|"));
  RS_CHECK(starts(rs_event(9), "type|ingestion.completed|job_id|n|"));
}

static void test_retry_and_promote(void) {
  rs_entry_t e[8];
  rs_reset();
  rs_now = T0;
  enqueue("r1", 1, NULL);
  RS_EQ_INT(1, rs_read("w1", ">", e, 8));
  RS_EQ_STR("run", rs_begin("w1", 3, e, 1, 0));
  const char *retry[] = { "retry", e[0].id, "r1", "r1:0", "1700000005000", "timeout" };
  RS_EQ_STR("1|0|1|0|0", rs_settle(1, retry));
  RS_EQ_STR("[\"chunk_id\",\"r1:0\",\"content\",\"text 0\",\"metadata\","
            "\"{\\\"i\\\":0}\",\"attempt\",\"2\"]|1700000005000",
            rs_q("ZRANGE %s 0 -1 WITHSCORES", RS_RETRY));
  RS_EQ_INT(0, xlen(RS_STREAM));
  RS_EQ_INT(0, rs_pending());
  RS_EQ_STR("type|chunk.retry|job_id|r1|data|{\"job_id\":\"r1\",\"chunk_id\":\"r1:0\","
            "\"attempt\":2,\"due_at\":1700000005000,\"error\":\"timeout\"}",
            rs_event(2));
  RS_EQ_STR("processing", hget("r1", "status"));
  RS_EQ_STR("0", hget("r1", "chunks_processed"));
  RS_EQ_STR("2", hget("r1", "rev"));
  /* The batch re-sent: the entry is gone (settled), nothing scheduled twice. */
  RS_EQ_STR("1|0|0|0|0", rs_settle(1, retry));
  RS_EQ_INT(1, rs_int("ZCARD %s", RS_RETRY));

  /* promote moves only due entries. */
  rs_now = T0 + 4999;
  RS_EQ_STR("0", rs_run("promote", "10", NULL));
  rs_now = T0 + 5000;
  RS_EQ_STR("1", rs_run("promote", "10", NULL));
  RS_EQ_INT(0, rs_int("ZCARD %s", RS_RETRY));
  RS_EQ_STR("chunk_id|r1:0|content|text 0|metadata|{\"i\":0}|attempt|2",
            rs_entry(RS_STREAM, 0));

  /* Attempt 2 succeeds; then a late second copy of the done chunk fails
   * retryably: no retry is scheduled, the copy is only acknowledged. */
  RS_EQ_INT(1, rs_read("w1", ">", e, 8));
  RS_EQ_STR("run", rs_begin("w1", 3, e, 1, 0));
  const char *ok[] = { "ok", e[0].id, "r1", "r1:0", "", "" };
  RS_EQ_STR("1|1|0|0|0", rs_settle(1, ok));
  RS_EQ_STR("completed", hget("r1", "status"));
  rs_q("XADD %s * job_id r1 chunk_id r1:0 content x metadata {} attempt 2", RS_STREAM);
  RS_EQ_INT(1, rs_read("w1", ">", e, 8));
  const char *late[] = { "retry", e[0].id, "r1", "r1:0", "1700000009000", "timeout" };
  RS_EQ_STR("1|0|0|0|0", rs_settle(1, late));
  RS_EQ_INT(0, rs_int("ZCARD %s", RS_RETRY));
  RS_EQ_INT(0, xlen(RS_STREAM));
  RS_EQ_INT(0, rs_pending());

  /* A retry is an outcome: carried deliveries are dropped; no attempt field means 1. */
  enqueue("r2", 1, NULL);
  rs_q("XADD %s * job_id r2 chunk_id r2:0 content c deliveries 2", RS_STREAM);
  RS_EQ_INT(2, rs_read("w1", ">", e, 8));
  const char *carried[] = { "retry", e[1].id, "r2", "r2:0", "1700000009000", "timeout" };
  RS_EQ_STR("1|0|1|0|0", rs_settle(1, carried));
  RS_EQ_STR("[\"job_id\",\"r2\",\"chunk_id\",\"r2:0\",\"content\",\"c\",\"attempt\",\"2\"]",
            rs_q("ZRANGE %s 0 -1", RS_RETRY));
}

static void test_promote_limits(void) {
  rs_reset();
  rs_now = T0;
  rs_q("ZADD %s %lld [\"job_id\",\"p\",\"chunk_id\",\"p:0\",\"attempt\",\"2\"]", RS_RETRY, T0 - 2000);
  rs_q("ZADD %s %lld [\"job_id\",\"p\",\"chunk_id\",\"p:1\",\"attempt\",\"3\"]", RS_RETRY, T0 - 1000);
  rs_q("ZADD %s %lld [\"job_id\",\"p\",\"chunk_id\",\"p:2\",\"attempt\",\"2\"]", RS_RETRY, T0 + 1);
  RS_EQ_STR("1", rs_run("promote", "1", NULL));
  RS_EQ_STR("job_id|p|chunk_id|p:0|attempt|2", rs_entry(RS_STREAM, 0));
  RS_EQ_STR("1", rs_run("promote", "10", NULL));
  RS_EQ_STR("job_id|p|chunk_id|p:1|attempt|3", rs_entry(RS_STREAM, 1));
  RS_EQ_STR("0", rs_run("promote", "10", NULL));
  RS_EQ_INT(1, rs_int("ZCARD %s", RS_RETRY));
  RS_EQ_INT(2, xlen(RS_STREAM));
  /* A member that does not decode goes to the dead letters, not round and round. */
  rs_q("ZADD %s 0 garbage", RS_RETRY);
  RS_EQ_STR("0", rs_run("promote", "10", NULL));
  RS_EQ_STR("raw|garbage|error|undecodable retry entry|failed_at|1700000000000",
            rs_entry(RS_DEAD, 0));
  RS_EQ_INT(1, rs_int("ZCARD %s", RS_RETRY));
  RS_EQ_STR("error: bad arguments: limit expected", rs_run("promote", "0", NULL));
}

static void test_dead_and_failed(void) {
  rs_entry_t e[8];
  rs_reset();
  rs_now = T0;
  enqueue("f1", 3, NULL);
  RS_EQ_INT(3, rs_read("w1", ">", e, 8));
  rs_now = T0 + 1000;
  RS_EQ_STR("run|run|run", rs_begin("w1", 3, e, 3, 0));
  rs_now = T0 + 2000;
  const char *b1[] = { "ok", e[0].id, "f1", "f1:0", "", "", "dead", e[1].id, "f1", "f1:1", "", "boom 1" };
  RS_EQ_STR("2|1|0|1|0", rs_settle(2, b1));
  RS_EQ_STR("job_id|f1|chunk_id|f1:1|content|text 1|metadata|{\"i\":1}|error|boom 1|"
            "attempts|1|failed_at|1700000002000",
            rs_entry(RS_DEAD, 0));
  RS_EQ_STR("boom 1", hget("f1", "error_message"));
  RS_EQ_STR("1", hget("f1", "chunks_failed"));
  RS_EQ_STR("processing", hget("f1", "status"));
  RS_EQ_INT(-1, ttl("job:f1"));
  RS_EQ_STR("type|chunk.dead|job_id|f1|data|{\"job_id\":\"f1\",\"chunk_id\":\"f1:1\",\"attempts\":1,"
            "\"error\":\"boom 1\"}",
            rs_event(2));
  RS_EQ_STR("type|ingestion.progress|job_id|f1|data|{\"job_id\":\"f1\",\"chunks_processed\":1,"
            "\"chunks_failed\":1,\"chunks_skipped\":0,\"chunks_total\":3,\"percent_complete\":66.66}",
            rs_event(3));
  /* Dead again (a re-sent batch): neither counted nor dead-lettered twice. */
  const char *again[] = { "dead", e[1].id, "f1", "f1:1", "", "boom 1" };
  RS_EQ_STR("1|0|0|0|0", rs_settle(1, again));
  RS_EQ_INT(1, xlen(RS_DEAD));
  RS_EQ_STR("1", hget("f1", "chunks_failed"));

  rs_now = T0 + 3500;
  const char *b2[] = { "dead", e[2].id, "f1", "f1:2", "", "boom 2" };
  RS_EQ_STR("1|0|0|1|0", rs_settle(1, b2));
  RS_EQ_STR("failed", hget("f1", "status"));
  RS_EQ_STR("boom 1", hget("f1", "error_message"));
  RS_EQ_STR("2", hget("f1", "chunks_failed"));
  RS_EQ_STR("1", hget("f1", "chunks_processed"));
  RS_EQ_STR("1700000003500", hget("f1", "completed_at"));
  RS_EQ_INT(7, xlen(RS_EVENTS));
  RS_EQ_STR("type|ingestion.failed|job_id|f1|data|{\"job_id\":\"f1\",\"status\":\"failed\","
            "\"chunks_processed\":1,\"chunks_failed\":2,\"chunks_total\":3,\"error\":\"boom 1\","
            "\"duration_ms\":2500,\"completed_at\":1700000003500}",
            rs_event(6));
  RS_EQ_INT(-1, ttl("job:f1"));
  RS_EQ_STR("1", rs_run("clean", "f1", hget("f1", "rev"), NULL));
  RS_CHECK(ttl("job:f1") > 0);
  RS_CHECK(ttl("job:f1:done") > 0);

  /* A malformed entry (no job_id): dead-lettered once, no job accounting. */
  rs_q("XADD %s * content orphan", RS_STREAM);
  RS_EQ_INT(1, rs_read("w1", ">", e, 8));
  RS_EQ_STR("", e[0].job);
  const char *bad[] = { "dead", e[0].id, "", "", "", "malformed entry" };
  RS_EQ_STR("1|0|0|1|0", rs_settle(1, bad));
  RS_EQ_STR("content|orphan|error|malformed entry|attempts|1|failed_at|1700000003500",
            rs_entry(RS_DEAD, 2));
  RS_EQ_STR("1|0|0|0|0", rs_settle(1, bad));
  RS_EQ_INT(3, xlen(RS_DEAD));
  RS_EQ_INT(7, xlen(RS_EVENTS));
  RS_EQ_INT(0, rs_pending());

  /* Bad records are refused before anything is written. */
  rs_q("XADD %s * job_id f1 chunk_id f1:2", RS_STREAM);
  RS_EQ_INT(1, rs_read("w1", ">", e, 8));
  const char *bad_op[] = { "ok", e[0].id, "f1", "f1:2", "", "", "maybe", e[0].id, "f1", "f1:2", "", "" };
  /* ARGV[4..]: group, 2, two msg ids, 1, a run of one chunk (4 values), then "maybe". */
  RS_EQ_STR("error: bad arguments: the record at ARGV[13]: bad op or due time", rs_settle(2, bad_op));
  const char *bad_due[] = { "retry", e[0].id, "f1", "f1:2", "soon", "x" };
  RS_EQ_STR("error: bad arguments: the record at ARGV[8]: bad op or due time", rs_settle(1, bad_due));
  RS_EQ_INT(1, rs_pending());
}

static void test_begin_verdicts(void) {
  rs_entry_t e[8];
  rs_reset();
  rs_now = T0;
  enqueue("d", 2, NULL);
  RS_EQ_INT(2, rs_read("w1", ">", e, 8));
  RS_EQ_STR("run|run", rs_begin("w1", 3, e, 2, 0));
  const char *ok[] = { "ok", e[0].id, "d", "d:0", "", "" };
  RS_EQ_STR("1|1|0|0|0", rs_settle(1, ok));

  /* A retry's copy of a done chunk, and an entry of a job that does not exist. */
  rs_q("XADD %s * job_id d chunk_id d:0 content x metadata {} attempt 2", RS_STREAM);
  rs_q("XADD %s * job_id nojob chunk_id nojob:0 content x metadata {} attempt 1", RS_STREAM);
  RS_EQ_INT(2, rs_read("w1", ">", e, 8));
  RS_EQ_STR("skip|skip", rs_begin("w1", 3, e, 2, 0));
  RS_EQ_INT(2, rs_begin_verdicts); /* the first delivery of nojob is a run of its own */
  const char *skips[] = { "skip", e[0].id, "d", "d:0", "", "", "skip", e[1].id, "nojob", "nojob:0", "", "" };
  RS_EQ_STR("2|0|0|0|0", rs_settle(2, skips));
  RS_EQ_STR("0", hget("d", "chunks_skipped"));
  RS_EQ_INT(0, rs_int("EXISTS job:nojob"));

  /* A second first delivery of a done chunk (only a foreign producer writes
   * one) is not looked up: it runs, and its outcome counts nowhere. */
  rs_q("XADD %s * job_id d chunk_id d:0 content x", RS_STREAM);
  RS_EQ_INT(1, rs_read("w1", ">", e, 8));
  RS_EQ_STR("run", rs_begin("w1", 3, e, 1, 0));
  const char *again[] = { "ok", e[0].id, "d", "d:0", "", "" };
  RS_EQ_STR("1|0|0|0|0", rs_settle(1, again));
  RS_EQ_STR("1", hget("d", "chunks_processed"));
  RS_EQ_INT(1, rs_pending());

  /* d:1 was delivered once; each of the worker's own id-0 reads adds one. */
  RS_EQ_INT(1, rs_read("w1", "0", e, 8));
  RS_EQ_STR("run", rs_begin("w1", 3, e, 1, 1));
  RS_EQ_INT(1, rs_read("w1", "0", e, 8));
  RS_EQ_STR("run", rs_begin("w1", 3, e, 1, 1));
  RS_EQ_INT(1, rs_read("w1", "0", e, 8));
  RS_EQ_STR("dead", rs_begin("w1", 3, e, 1, 1));
  RS_EQ_STR("job_id|d|chunk_id|d:1|content|text 1|metadata|{\"i\":1}|error|" DELIVERED_3
            "|attempts|3|failed_at|1700000000000",
            rs_entry(RS_DEAD, 0));
  RS_EQ_STR("failed", hget("d", "status"));
  RS_EQ_STR(DELIVERED_3, hget("d", "error_message"));
  RS_EQ_STR("1", hget("d", "chunks_failed"));
  RS_EQ_STR("1", hget("d", "chunks_processed"));
  RS_EQ_INT(0, rs_pending());
  RS_EQ_INT(0, xlen(RS_STREAM));

  /* Pending-pass entries no longer this consumer's, or deleted while pending. */
  enqueue("g", 2, NULL);
  RS_EQ_INT(2, rs_read("w1", ">", e, 8));
  RS_EQ_STR("gone|gone", rs_begin("w2", 3, e, 2, 1));
  RS_EQ_INT(2, rs_pending());
  rs_q("XDEL %s %s", RS_STREAM, e[0].id);
  RS_EQ_INT(2, rs_read("w1", "0", e, 8));
  RS_EQ_STR("", e[0].job);
  RS_EQ_STR("gone|run", rs_begin("w1", 3, e, 2, 1));
  RS_EQ_INT(1, rs_pending());
  RS_EQ_STR("processing", hget("g", "status"));

  /* A malformed entry is dead-lettered by begin itself. */
  rs_q("XADD %s * content orphan attempt 1", RS_STREAM);
  RS_EQ_INT(1, rs_read("w1", ">", e, 8));
  RS_EQ_STR("dead", rs_begin("w1", 3, e, 1, 0));
  RS_EQ_STR("content|orphan|attempt|1|error|malformed entry: no job_id|attempts|1|"
            "failed_at|1700000000000",
            rs_entry(RS_DEAD, 1));
  RS_EQ_INT(1, rs_pending());

  /* Deliveries carried from earlier reclaims count on the pending pass. */
  rs_q("XADD %s * job_id g chunk_id g:0 content x metadata {} attempt 1 deliveries 2", RS_STREAM);
  RS_EQ_INT(1, rs_read("w1", ">", e, 8));
  RS_EQ_STR("run", rs_begin("w1", 3, e, 1, 0));
  RS_EQ_INT(2, rs_read("w1", "0", e, 8));
  RS_EQ_STR("g:1", e[0].chunk);
  RS_EQ_STR("run|dead", rs_begin("w1", 3, e, 2, 1));
  RS_EQ_STR("job_id|g|chunk_id|g:0|content|x|metadata|{}|attempt|1|deliveries|2|error|" DELIVERED_3
            "|attempts|3|failed_at|1700000000000",
            rs_entry(RS_DEAD, 2));
  RS_EQ_STR("1", hget("g", "chunks_failed"));
  RS_EQ_INT(1, rs_pending());
}

/* A chunk twice in one pending pass: its over-delivered entry is dead-lettered,
 * which makes the other copy a skip in the same call. */
static void test_begin_buried_copy(void) {
  rs_entry_t e[8];
  rs_reset();
  rs_now = T0;
  enqueue("p", 1, NULL);
  RS_EQ_INT(1, rs_read("w1", ">", e, 8));
  RS_EQ_INT(1, rs_read("w1", "0", e, 8));
  RS_EQ_INT(1, rs_read("w1", "0", e, 8));
  rs_q("XADD %s * job_id p chunk_id p:0 content x attempt 1", RS_STREAM);
  RS_EQ_INT(1, rs_read("w1", ">", e, 8));
  RS_EQ_INT(2, rs_read("w1", "0", e, 8));
  RS_EQ_STR("p:0", e[1].chunk);
  RS_EQ_STR("dead|skip", rs_begin("w1", 3, e, 2, 1));
  RS_EQ_STR("1", hget("p", "chunks_failed"));
  RS_EQ_STR("failed", hget("p", "status"));
}

/* An entry of a real job without a chunk_id is none of its chunks: dead-lettered
 * as malformed, the job's counts untouched. */
static void test_begin_no_chunk_id(void) {
  rs_entry_t e[8];
  rs_reset();
  rs_now = T0;
  enqueue("m", 1, NULL);
  rs_q("XADD %s * job_id m content stray attempt 1", RS_STREAM);
  RS_EQ_INT(2, rs_read("w1", ">", e, 8));
  RS_EQ_STR("run|dead", rs_begin("w1", 3, e, 2, 0));
  RS_EQ_STR("job_id|m|content|stray|attempt|1|error|malformed entry: no chunk_id|attempts|1|"
            "failed_at|1700000000000",
            rs_entry(RS_DEAD, 0));
  RS_EQ_STR("0", hget("m", "chunks_failed"));
  RS_EQ_STR("processing", hget("m", "status"));
  RS_EQ_INT(1, rs_pending());
}

static void test_cancel(void) {
  rs_entry_t e[8];
  rs_reset();
  rs_now = T0;
  enqueue("x", 3, NULL);
  RS_EQ_INT(2, rs_read("w1", ">", e, 2));
  RS_EQ_STR("run|run", rs_begin("w1", 3, e, 2, 0));
  rs_now = T0 + 1000;
  RS_EQ_STR("cancelled", rs_run("cancel", "x", NULL));
  RS_EQ_STR("cancelled", hget("x", "status"));
  RS_EQ_STR("3", hget("x", "rev"));
  RS_EQ_INT(-1, ttl("job:x"));
  RS_EQ_STR("type|ingestion.cancelled|job_id|x|data|{\"job_id\":\"x\",\"chunks_processed\":0,"
            "\"chunks_failed\":0,\"chunks_skipped\":0,\"chunks_total\":3}",
            rs_event(2));
  RS_EQ_STR("error: already cancelled", rs_run("cancel", "x", NULL));
  RS_EQ_STR("error: not found", rs_run("cancel", "nope", NULL));

  /* Chunks in flight still record their outcome; a retry becomes a skip. */
  const char *inflight[] = { "ok", e[0].id, "x", "x:0", "", "", "retry", e[1].id, "x", "x:1",
                             "1700000009000", "timeout" };
  RS_EQ_STR("2|1|0|0|1", rs_settle(2, inflight));
  RS_EQ_INT(0, rs_int("ZCARD %s", RS_RETRY));
  RS_EQ_STR("1", hget("x", "chunks_processed"));
  RS_EQ_STR("1", hget("x", "chunks_skipped"));
  RS_EQ_INT(-1, ttl("job:x"));

  /* The chunk never started: begin skips it, settle counts it, the job is final. */
  RS_EQ_INT(1, rs_read("w1", ">", e, 8));
  RS_EQ_STR("skip", rs_begin("w1", 3, e, 1, 0));
  rs_now = T0 + 3000;
  const char *skip[] = { "skip", e[0].id, "x", "x:2", "", "" };
  RS_EQ_STR("1|0|0|0|1", rs_settle(1, skip));
  RS_EQ_STR("cancelled", hget("x", "status"));
  RS_EQ_STR("2", hget("x", "chunks_skipped"));
  RS_EQ_STR("1700000003000", hget("x", "completed_at"));
  RS_EQ_INT(-1, ttl("job:x"));
  RS_EQ_STR("1", rs_run("clean", "x", hget("x", "rev"), NULL));
  RS_CHECK(ttl("job:x") > 0);
  RS_CHECK(ttl("job:x:done") > 0);
  /* queued, started, cancelled, the in-flight batch's progress; no final event. */
  RS_EQ_INT(4, xlen(RS_EVENTS));
  RS_CHECK(starts(rs_event(3), "type|ingestion.progress|job_id|x|"));

  enqueue("y", 1, NULL);
  RS_EQ_INT(1, rs_read("w1", ">", e, 8));
  RS_EQ_STR("run", rs_begin("w1", 3, e, 1, 0));
  const char *ok[] = { "ok", e[0].id, "y", "y:0", "", "" };
  RS_EQ_STR("1|1|0|0|0", rs_settle(1, ok));
  RS_EQ_STR("error: already completed", rs_run("cancel", "y", NULL));
}

static void test_reclaim(void) {
  rs_entry_t e[8];
  rs_reset();
  rs_now = T0;
  enqueue("q", 3, NULL);
  RS_EQ_INT(3, rs_read("w1", ">", e, 8));
  /* Not idle for long enough: nothing is claimed. */
  RS_EQ_STR("0-0|0|0", rs_run("reclaim", RS_GROUP, "supervisor", "60000", "0-0", "10", "3", NULL));
  RS_EQ_INT(3, rs_pending());

  /* Two per call: the cursor continues the scan. */
  wait_idle(5);
  char cursor[64];
  snprintf(cursor, sizeof cursor, "%s", rs_run("reclaim", RS_GROUP, "supervisor", "5", "0-0", "2", "3", NULL));
  char *bar = strchr(cursor, '|');
  RS_CHECK(bar != NULL);
  if (!bar) return;
  RS_EQ_STR("|2|0", bar);
  *bar = '\0';
  RS_EQ_STR(e[2].id, cursor);
  RS_EQ_STR("0-0|1|0", rs_run("reclaim", RS_GROUP, "supervisor", "5", cursor, "2", "3", NULL));
  RS_EQ_INT(0, rs_pending());
  RS_EQ_INT(3, xlen(RS_STREAM));
  RS_EQ_STR("chunk_id|q:0|content|text 0|metadata|{\"i\":0}|deliveries|1",
            rs_entry(RS_STREAM, 0));

  /* Taken by another worker that dies too: the deliveries carry over. */
  RS_EQ_INT(3, rs_read("w2", ">", e, 8));
  wait_idle(5);
  RS_EQ_STR("0-0|3|0", rs_run("reclaim", RS_GROUP, "supervisor", "5", "0-0", "10", "3", NULL));
  RS_EQ_STR("chunk_id|q:2|content|text 2|metadata|{\"i\":2}|deliveries|2",
            rs_entry(RS_STREAM, 2));
  RS_EQ_INT(3, rs_read("w3", ">", e, 8));
  wait_idle(5);
  RS_EQ_STR("0-0|0|3", rs_run("reclaim", RS_GROUP, "supervisor", "5", "0-0", "10", "3", NULL));
  RS_EQ_STR("job_id|q|chunk_id|q:0|content|text 0|metadata|{\"i\":0}|deliveries|2|"
            "error|" DELIVERED_3 "|attempts|3|failed_at|1700000000000",
            rs_entry(RS_DEAD, 0));
  RS_EQ_STR("failed", hget("q", "status"));
  RS_EQ_STR("3", hget("q", "chunks_failed"));
  RS_EQ_INT(0, xlen(RS_STREAM));
  RS_EQ_INT(0, rs_pending());

  /* An entry deleted while pending is only acknowledged. */
  rs_q("XADD %s * job_id q chunk_id q:0 content x", RS_STREAM);
  RS_EQ_INT(1, rs_read("w1", ">", e, 8));
  rs_q("XDEL %s %s", RS_STREAM, e[0].id);
  wait_idle(5);
  RS_EQ_STR("0-0|0|0", rs_run("reclaim", RS_GROUP, "supervisor", "5", "0-0", "10", "3", NULL));
  RS_EQ_INT(0, rs_pending());
  RS_EQ_INT(3, xlen(RS_DEAD));
}

/* Longer than one unpack() slice: SADD and XACK go in slices of 1000. */
static void test_big_batch(void) {
  enum { N = 2500 };
  rs_entry_t *e = malloc(sizeof *e * N);
  const char **records = malloc(sizeof *records * 6 * N);
  if (!e || !records) exit(1);
  rs_reset();
  rs_now = T0;
  RS_EQ_STR("big|1", enqueue("big", N, NULL));
  RS_EQ_INT(N, rs_read("w1", ">", e, N));
  for (int i = 0; i < N; i++) {
    const char *r[6] = { "ok", e[i].id, e[i].job, e[i].chunk, "", "" };
    memcpy(records + 6 * i, r, sizeof r);
  }
  /* Four chunks done first: begin, which does not look up first deliveries,
   * runs them with the others (one run, one verdict); settle counts them once. */
  static const int done[] = { 0, 999, 1000, N - 1 };
  const char *first[4 * 6];
  for (int k = 0; k < 4; k++) memcpy(first + 6 * k, records + 6 * done[k], sizeof *first * 6);
  RS_EQ_STR("4|4|0|0|0", rs_settle(4, first));
  char *want = malloc(4 * N);
  if (!want) exit(1);
  for (int i = 0; i < N; i++) memcpy(want + 4 * i, "run|", 4);
  want[4 * N - 1] = '\0';
  RS_EQ_STR(want, rs_begin("w1", 3, e, N, 0));
  RS_EQ_INT(1, rs_begin_verdicts);
  free(want);
  RS_EQ_STR("2500|2496|0|0|0", rs_settle(N, records));
  RS_EQ_STR("completed", hget("big", "status"));
  RS_EQ_INT(N, rs_int("SCARD job:big:done"));
  RS_EQ_INT(0, rs_pending());
  RS_EQ_INT(0, xlen(RS_STREAM));
  free(records);
  free(e);
}

/* The fields (joined by '|') of task entry id, "" once deleted or trimmed. */
static const char *entry_by_id(const char *id) {
  return rs_q("EVAL %s 1 %s %s", "local r = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])[1] "
              "return r and r[2] or {}", RS_STREAM, id);
}

/* XREADGROUP of up to count new entries for group audit; how many it read. */
static long long audit_read(int count) {
  redisReply *r = redisCommand(rs_redis, "XREADGROUP GROUP audit a1 COUNT %d STREAMS %s >", count,
                               RS_STREAM);
  long long n = r && r->type == REDIS_REPLY_ARRAY ? (long long)r->element[0]->element[1]->elements : -1;
  freeReplyObject(r);
  return n;
}

/* The Lua type of the group's lag in XINFO GROUPS: "boolean" when Redis
 * cannot tell it (nil), else "number". */
static const char *lag_type(void) {
  return rs_q("EVAL %s 1 %s", "local g = redis.call('XINFO', 'GROUPS', KEYS[1])[1] "
              "for i = 1, #g, 2 do if g[i] == 'lag' then return type(g[i + 1]) end end", RS_STREAM);
}

/* Acknowledged entries are trimmed in order (common.lua trim_acked): behind an
 * older pending entry they stay readable, and go with it once it settles. An
 * outcome re-sent for such an entry does nothing: the PEL, not XRANGE, says
 * whether it is still due. */
static void test_trim_held_back(void) {
  rs_entry_t e[8];
  rs_reset();
  rs_now = T0;
  enqueue("h", 5, NULL);
  rs_q("XADD %s * content orphan", RS_STREAM);
  RS_EQ_INT(6, rs_read("w1", ">", e, 8));
  RS_EQ_STR("run|run|run|run|run", rs_begin("w1", 3, e, 5, 0));
  const char *later[] = { "ok", e[1].id, "h", "h:1", "", "", "ok", e[2].id, "h", "h:2", "", "",
                          "retry", e[3].id, "h", "h:3", "1700000005000", "timeout",
                          "dead", e[5].id, "", "", "", "malformed entry" };
  RS_EQ_STR("4|2|1|1|0", rs_settle(4, later));
  RS_EQ_INT(2, rs_pending()); /* h:0 and h:4 */
  RS_EQ_INT(6, xlen(RS_STREAM));
  RS_EQ_STR("chunk_id|h:3|content|text 3|metadata|{\"i\":3}", entry_by_id(e[3].id));
  RS_EQ_STR("content|orphan", entry_by_id(e[5].id));
  long long events = xlen(RS_EVENTS);
  /* Re-sent (a lost reply): the retried and the dead-lettered entries are still
   * readable, but acknowledged: nothing is scheduled or dead-lettered twice. */
  RS_EQ_STR("4|0|0|0|0", rs_settle(4, later));
  RS_EQ_INT(1, rs_int("ZCARD %s", RS_RETRY));
  RS_EQ_INT(1, xlen(RS_DEAD));
  RS_EQ_INT(events, xlen(RS_EVENTS));
  RS_EQ_INT(6, xlen(RS_STREAM));
  /* The newest pending entry settles: still behind h:0. */
  const char *newest[] = { "ok", e[4].id, "h", "h:4", "", "" };
  RS_EQ_STR("1|1|0|0|0", rs_settle(1, newest));
  RS_EQ_INT(6, xlen(RS_STREAM));
  /* The oldest settles: one trim takes every entry. */
  const char *oldest[] = { "ok", e[0].id, "h", "h:0", "", "" };
  RS_EQ_STR("1|1|0|0|0", rs_settle(1, oldest));
  RS_EQ_INT(0, xlen(RS_STREAM));
  RS_EQ_INT(0, rs_pending());
  RS_EQ_STR("", entry_by_id(e[3].id));
}

/* Entries not yet delivered stay, whatever is acknowledged before them; the
 * ids reclaim.lua and promote.lua add come after the last delivered one. */
static void test_trim_undelivered(void) {
  rs_entry_t e[8];
  rs_reset();
  rs_now = T0;
  enqueue("u", 4, NULL);
  RS_EQ_INT(2, rs_read("w1", ">", e, 2));
  const char *two[] = { "ok", e[0].id, "u", "u:0", "", "", "ok", e[1].id, "u", "u:1", "", "" };
  RS_EQ_STR("2|2|0|0|0", rs_settle(2, two));
  RS_EQ_INT(2, xlen(RS_STREAM));
  RS_EQ_STR("chunk_id|u:2|content|text 2|metadata|{\"i\":2}", rs_entry(RS_STREAM, 0));
  RS_EQ_STR("chunk_id|u:3|content|text 3|metadata|{\"i\":3}", rs_entry(RS_STREAM, 1));
  /* A retry of u:2 lands after u:3, still undelivered, when promoted. */
  RS_EQ_INT(1, rs_read("w1", ">", e, 1));
  const char *retry[] = { "retry", e[0].id, "u", "u:2", "1700000000000", "timeout" };
  RS_EQ_STR("1|0|1|0|0", rs_settle(1, retry));
  RS_EQ_STR("1", rs_run("promote", "10", NULL));
  RS_EQ_INT(2, xlen(RS_STREAM));
  RS_EQ_INT(2, rs_read("w1", ">", e, 8));
  RS_EQ_STR("u:3", e[0].chunk);
  RS_EQ_STR("u:2", e[1].chunk);
  const char *rest[] = { "ok", e[0].id, "u", "u:3", "", "", "ok", e[1].id, "u", "u:2", "", "" };
  RS_EQ_STR("2|2|0|0|0", rs_settle(2, rest));
  RS_EQ_STR("completed", hget("u", "status"));
  RS_EQ_INT(0, xlen(RS_STREAM));
}

/* A second consumer group (reading from the start): the trim keeps what it has
 * not read and what it has pending. A re-sent outcome (nothing new to
 * acknowledge) is what triggers the trim here. */
static void test_trim_second_group(void) {
  rs_entry_t e[8];
  rs_reset();
  rs_now = T0;
  enqueue("v", 4, NULL);
  RS_EQ_STR("OK", rs_q("XGROUP CREATE %s audit 0", RS_STREAM));
  RS_EQ_INT(4, rs_read("w1", ">", e, 8));
  const char *all[] = { "ok", e[0].id, "v", "v:0", "", "", "ok", e[1].id, "v", "v:1", "", "",
                        "ok", e[2].id, "v", "v:2", "", "", "ok", e[3].id, "v", "v:3", "", "" };
  RS_EQ_STR("4|4|0|0|0", rs_settle(4, all));
  RS_EQ_INT(0, rs_pending());
  RS_EQ_INT(4, xlen(RS_STREAM));
  RS_EQ_INT(2, audit_read(2));
  RS_EQ_STR("4|0|0|0|0", rs_settle(4, all));
  RS_EQ_INT(4, xlen(RS_STREAM));
  RS_EQ_INT(1, rs_int("XACK %s audit %s", RS_STREAM, e[0].id));
  RS_EQ_STR("4|0|0|0|0", rs_settle(4, all));
  RS_EQ_INT(3, xlen(RS_STREAM)); /* v:1 pending in audit, v:2 and v:3 unread */
  RS_EQ_INT(1, rs_int("XACK %s audit %s", RS_STREAM, e[1].id));
  RS_EQ_STR("4|0|0|0|0", rs_settle(4, all));
  RS_EQ_INT(2, xlen(RS_STREAM));
  RS_EQ_STR("chunk_id|v:2|content|text 2|metadata|{\"i\":2}", rs_entry(RS_STREAM, 0));
  RS_EQ_INT(2, audit_read(2));
  RS_EQ_INT(2, rs_int("XACK %s audit %s %s", RS_STREAM, e[2].id, e[3].id));
  RS_EQ_STR("4|0|0|0|0", rs_settle(4, all));
  RS_EQ_INT(0, xlen(RS_STREAM));
}

/* When Redis 7.0 cannot tell a group's lag (its last-delivered entry deleted by
 * someone else), the acknowledged entries held back cannot be counted: each
 * call deletes the entries it acknowledges, as past the bound. */
static void test_trim_lag_unknown(void) {
  rs_entry_t e[8];
  rs_reset();
  rs_now = T0;
  enqueue("l", 5, NULL);
  RS_EQ_INT(3, rs_read("w1", ">", e, 3));
  RS_EQ_INT(1, rs_int("XACK %s %s %s", RS_STREAM, RS_GROUP, e[2].id));
  RS_EQ_INT(1, rs_int("XDEL %s %s", RS_STREAM, e[2].id));
  RS_EQ_STR("boolean", lag_type());
  const char *one[] = { "ok", e[1].id, "l", "l:1", "", "" };
  RS_EQ_STR("1|1|0|0|0", rs_settle(1, one));
  RS_EQ_INT(3, xlen(RS_STREAM));
  RS_EQ_STR("", entry_by_id(e[1].id));
  /* The next delivery makes the lag known again: l:3 is held behind l:0. */
  RS_EQ_INT(2, rs_read("w1", ">", e + 3, 2));
  RS_EQ_STR("number", lag_type());
  const char *three[] = { "ok", e[3].id, "l", "l:3", "", "" };
  RS_EQ_STR("1|1|0|0|0", rs_settle(1, three));
  RS_EQ_INT(3, xlen(RS_STREAM));
  const char *rest[] = { "ok", e[0].id, "l", "l:0", "", "", "ok", e[4].id, "l", "l:4", "", "" };
  RS_EQ_STR("2|2|0|0|0", rs_settle(2, rest));
  RS_EQ_INT(0, xlen(RS_STREAM));
}

/* Past ACKED_HELD_MAX (common.lua, 10,000) acknowledged entries held behind an
 * older pending one, each call deletes the entries it acknowledges (XDEL), so
 * memory stops growing; never the group's last-delivered entry (its deletion
 * would make Redis 7.0's lag unknown). With audit, a second group, only entries
 * audit has read and does not have pending are deleted. */
enum { HELD = 10000, EXTRA = 100, BIG = 1 + HELD + EXTRA };


/* Enqueues a (1 chunk) and b (HELD + EXTRA), reads them all into e, and
 * settles b's first HELD chunks in batches of 1000: all stay, behind a:0. */
static void hold_back(rs_entry_t *e, const char **records) {
  rs_reset();
  rs_now = T0;
  enqueue("a", 1, NULL);
  enqueue("b", HELD + EXTRA, NULL);
  RS_EQ_INT(BIG, rs_read("w1", ">", e, BIG));
  for (int i = 0; i < BIG; i++) {
    const char *r[6] = { "ok", e[i].id, e[i].job, e[i].chunk, "", "" };
    memcpy(records + 6 * i, r, sizeof r);
  }
  for (int first = 1; first < 1 + HELD; first += 1000)
    RS_EQ_STR("1000|1000|0|0|0", rs_settle(1000, records + 6 * first));
  RS_EQ_INT(BIG, xlen(RS_STREAM));
  RS_EQ_INT(1 + EXTRA, rs_pending());
}

static void test_trim_bound(void) {
  rs_entry_t *e = malloc(sizeof *e * BIG);
  const char **records = malloc(sizeof *records * 6 * BIG);
  if (!e || !records) exit(1);
  hold_back(e, records);
  /* Over the bound: the last EXTRA are deleted as they are acknowledged, but
   * the newest (the group's last delivered). */
  RS_EQ_STR("100|100|0|0|0", rs_settle(EXTRA, records + 6 * (1 + HELD)));
  RS_EQ_INT(BIG - (EXTRA - 1), xlen(RS_STREAM));
  RS_EQ_STR("", entry_by_id(e[1 + HELD].id));
  RS_EQ_STR("", entry_by_id(e[BIG - 2].id));
  RS_CHECK(strcmp("", entry_by_id(e[BIG - 1].id)) != 0);
  RS_CHECK(strcmp("", entry_by_id(e[HELD].id)) != 0);
  RS_EQ_STR("10100", hget("b", "chunks_processed"));
  RS_EQ_STR("completed", hget("b", "status"));
  /* a:0 settles: the trim takes the rest. */
  RS_EQ_STR("1|1|0|0|0", rs_settle(1, records));
  RS_EQ_INT(0, xlen(RS_STREAM));
  RS_EQ_INT(0, rs_pending());

  /* The same with audit, which has read up to b's chunk HELD + 49 and has
   * HELD + 10 pending. */
  hold_back(e, records);
  RS_EQ_STR("OK", rs_q("XGROUP CREATE %s audit 0", RS_STREAM));
  RS_EQ_INT(1 + HELD + 50, audit_read(1 + HELD + 50));
  const char *kept = e[1 + HELD + 10].id;
  RS_EQ_INT(HELD + 50, rs_int("EVAL %s 1 %s %s", "local n = 0 "
              "for _, p in ipairs(redis.call('XPENDING', KEYS[1], 'audit', '-', '+', 20000)) do "
              "if p[1] ~= ARGV[1] then n = n + redis.call('XACK', KEYS[1], 'audit', p[1]) end end "
              "return n", RS_STREAM, kept));
  RS_EQ_STR("100|100|0|0|0", rs_settle(EXTRA, records + 6 * (1 + HELD)));
  /* Deleted: audit's read and acknowledged ones (chunks HELD .. HELD + 49), but
   * HELD + 10 (pending in audit) and HELD + 49 (audit's last delivered). */
  RS_EQ_INT(BIG - 48, xlen(RS_STREAM));
  RS_EQ_STR("", entry_by_id(e[1 + HELD].id));
  RS_CHECK(strcmp("", entry_by_id(kept)) != 0);
  RS_CHECK(strcmp("", entry_by_id(e[1 + HELD + 49].id)) != 0);
  RS_CHECK(strcmp("", entry_by_id(e[1 + HELD + 50].id)) != 0);
  /* a:0 settles: the trim stops at audit's pending entry. */
  RS_EQ_STR("1|1|0|0|0", rs_settle(1, records));
  RS_EQ_INT(52, xlen(RS_STREAM));
  RS_EQ_INT(50, audit_read(100));
  RS_EQ_INT(51, rs_int("EVAL %s 1 %s", "local n = 0 "
              "for _, p in ipairs(redis.call('XPENDING', KEYS[1], 'audit', '-', '+', 100)) do "
              "n = n + redis.call('XACK', KEYS[1], 'audit', p[1]) end return n", RS_STREAM));
  RS_EQ_STR("1|0|0|0|0", rs_settle(1, records));
  RS_EQ_INT(0, xlen(RS_STREAM));
  free(records);
  free(e);
}

static void test_clean(void) {
  rs_reset();
  rs_now = T0;
  enqueue("a", 1, NULL);
  enqueue("b", 1, NULL);
  RS_EQ_STR("1", hget("b", "rev"));
  /* b changes while the sync writes what it read at rev 1. */
  RS_EQ_STR("cancelled", rs_run("cancel", "b", NULL));
  rs_q("SADD %s expired", RS_DIRTY);
  RS_EQ_STR("2", rs_run("clean", "a", "1", "b", "1", "expired", "4", NULL));
  RS_EQ_INT(-1, ttl("job:a")); /* queued, not final: no TTL */
  RS_EQ_STR("b", rs_q("SMEMBERS %s", RS_DIRTY));
  RS_EQ_STR("1", rs_run("clean", "b", "2", NULL));
  RS_EQ_INT(0, rs_int("SCARD %s", RS_DIRTY));
  RS_EQ_STR("error: bad arguments: pairs of job id and rev expected", rs_run("clean", "a", NULL));
}

int main(void) {
  static const struct {
    const char *name;
    void (*fn)(void);
  } tests[] = {
    { "enqueue", test_enqueue },
    { "settle ok", test_settle_ok },
    { "settle counts", test_settle_counts },
    { "settle runs", test_settle_runs },
    { "begin runs", test_begin_runs },
    { "progress coalesced", test_progress_coalesced },
    { "retry and promote", test_retry_and_promote },
    { "promote limits", test_promote_limits },
    { "dead and failed", test_dead_and_failed },
    { "begin verdicts", test_begin_verdicts },
    { "begin: a buried chunk's copy", test_begin_buried_copy },
    { "begin: no chunk_id", test_begin_no_chunk_id },
    { "cancel", test_cancel },
    { "reclaim", test_reclaim },
    { "big batch", test_big_batch },
    { "trim: held behind an older pending entry", test_trim_held_back },
    { "trim: undelivered entries stay", test_trim_undelivered },
    { "trim: a second group's entries stay", test_trim_second_group },
    { "trim: lag unknown", test_trim_lag_unknown },
    { "trim: deletes past the bound", test_trim_bound },
    { "clean", test_clean },
  };
  const int n = (int)(sizeof tests / sizeof tests[0]);
  if (rs_setup() < 0) return 1;
  printf("1..%d\n", n);
  int failed = 0;
  for (int i = 0; i < n; i++) {
    int before = rs_failures;
    tests[i].fn();
    int ok = rs_failures == before;
    failed += !ok;
    printf("%sok %d - %s\n", ok ? "" : "not ", i + 1, tests[i].name);
  }
  rs_teardown();
  return failed ? 1 : 0;
}
