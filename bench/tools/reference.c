/* reference: the client issue 9 measured as the yardstick for scenario 1, on
 * the bench's own Redis. It fills a stream with TASKS entries (job_id,
 * chunk_id, content; TASKS_PER_JOB consecutive entries a job) and drains it
 * through a consumer group on one connection with what a worker pool must do
 * at the least: per batch one XACK, one HINCRBY per job, and one XADD event per
 * task, pipelined with the XREADGROUP of the next batch (one round trip a
 * batch). No done sets, job states, retries or stream trimming: a ceiling for
 * what Redis can settle, not a job system. Built by bench/run.sh.
 *
 *   reference PORT TASKS TASKS_PER_JOB CHUNK_BYTES BATCH
 *
 * Prints one JSON object: tasks, ms (first read to last reply), tasks_per_s,
 * and redis_cpu_us_per_task (INFO cpu around the drain). Exits 1 when Redis
 * did not count every task once or left any pending. */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STREAM "bench:reference:queue"
#define EVENTS "bench:reference:events"
#define GROUP "reference"
#define FILL_PIPELINE 1000

static redisContext *redis;

static void die(const char *what) {
  fprintf(stderr, "reference: %s: %s\n", what, redis->err ? redis->errstr : "unexpected reply");
  exit(1);
}

static long long now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static redisReply *get_reply(const char *what) {
  redisReply *r;
  if (redisGetReply(redis, (void **)&r) != REDIS_OK) die(what);
  if (r->type == REDIS_REPLY_ERROR) {
    fprintf(stderr, "reference: %s: %s\n", what, r->str);
    exit(1);
  }
  return r;
}

static void discard_replies(int n, const char *what) {
  for (int i = 0; i < n; i++) freeReplyObject(get_reply(what));
}

/* used_cpu_user + used_cpu_sys of INFO cpu, in microseconds. */
static long long redis_cpu_us(void) {
  redisReply *r = redisCommand(redis, "INFO cpu");
  if (!r || r->type != REDIS_REPLY_STRING) die("INFO cpu");
  double total = 0;
  for (const char *p = r->str; (p = strstr(p, "used_cpu_")) != NULL; p++) {
    double v;
    if (sscanf(p, "used_cpu_user:%lf", &v) == 1 || sscanf(p, "used_cpu_sys:%lf", &v) == 1) total += v;
  }
  freeReplyObject(r);
  return (long long)(total * 1e6);
}

/* The sum of every job's chunks_processed. */
static long long counted_tasks(long tasks, int per_job) {
  long jobs = (tasks + per_job - 1) / per_job;
  long long sum = 0;
  for (long j = 0; j < jobs; j++) redisAppendCommand(redis, "HGET bench:reference:job:job-%ld chunks_processed", j);
  for (long j = 0; j < jobs; j++) {
    redisReply *r = get_reply("HGET");
    if (r->type == REDIS_REPLY_STRING) sum += atoll(r->str);
    freeReplyObject(r);
  }
  return sum;
}

static void fill(long tasks, int per_job, int bytes) {
  char *content = malloc((size_t)bytes + 1);
  if (!content) die("out of memory");
  memset(content, 'x', (size_t)bytes);
  content[bytes] = '\0';
  for (long i = 0; i < tasks; i++) {
    char job[32], chunk[48];
    snprintf(job, sizeof job, "job-%ld", i / per_job);
    snprintf(chunk, sizeof chunk, "%s:%ld", job, i % per_job);
    redisAppendCommand(redis, "XADD %s * job_id %s chunk_id %s content %s", STREAM, job, chunk, content);
    if ((i + 1) % FILL_PIPELINE == 0 || i + 1 == tasks) discard_replies((int)(i % FILL_PIPELINE) + 1, "XADD");
  }
  free(content);
}

static void append_read(int batch) {
  redisAppendCommand(redis, "XREADGROUP GROUP %s c1 COUNT %d STREAMS %s >", GROUP, batch, STREAM);
}

/* The field value of an entry's flat field list, or "". */
static const char *field(const redisReply *fields, const char *name) {
  for (size_t i = 0; i + 1 < fields->elements; i += 2)
    if (strcmp(fields->element[i]->str, name) == 0) return fields->element[i + 1]->str;
  return "";
}

/* Appends the settlement of one XREADGROUP batch: one XACK, one HINCRBY per
 * run of one job, one XADD per task. Returns how many commands it appended. */
static int append_settle(const redisReply *entries, const char **argv, size_t *lens) {
  size_t n = entries->elements;
  argv[0] = "XACK";
  argv[1] = STREAM;
  argv[2] = GROUP;
  for (size_t i = 0; i < n; i++) argv[3 + i] = entries->element[i]->element[0]->str;
  for (size_t i = 0; i < 3 + n; i++) lens[i] = strlen(argv[i]);
  redisAppendCommandArgv(redis, (int)(3 + n), argv, lens);
  int appended = 1;
  for (size_t i = 0; i < n;) {
    const char *job = field(entries->element[i]->element[1], "job_id");
    size_t run = 1;
    while (i + run < n && strcmp(field(entries->element[i + run]->element[1], "job_id"), job) == 0) run++;
    redisAppendCommand(redis, "HINCRBY bench:reference:job:%s chunks_processed %d", job, (int)run);
    appended++;
    for (size_t k = i; k < i + run; k++) {
      const char *chunk = field(entries->element[k]->element[1], "chunk_id");
      char data[128];
      int len = snprintf(data, sizeof data, "{\"chunk_id\":\"%s\"}", chunk);
      if (len >= (int)sizeof data) len = (int)sizeof data - 1; /* truncated: the ids here are short */
      const char *xadd[] = {"XADD", EVENTS, "MAXLEN", "~", "100000", "*", "type", "chunk.done", "job_id", job, "data", data};
      size_t xlen[12];
      for (int a = 0; a < 12; a++) xlen[a] = a == 11 ? (size_t)len : strlen(xadd[a]);
      redisAppendCommandArgv(redis, 12, xadd, xlen);
      appended++;
    }
    i += run;
  }
  return appended;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: reference PORT TASKS TASKS_PER_JOB CHUNK_BYTES BATCH\n");
    return 2;
  }
  int port = atoi(argv[1]), per_job = atoi(argv[3]), bytes = atoi(argv[4]), batch = atoi(argv[5]);
  long tasks = atol(argv[2]);
  if (port <= 0 || tasks <= 0 || per_job <= 0 || bytes < 0 || batch <= 0) {
    fprintf(stderr, "reference: every argument must be a positive number\n");
    return 2;
  }
  redis = redisConnect("127.0.0.1", port);
  if (!redis || redis->err) die("connect");

  redisAppendCommand(redis, "DEL %s %s", STREAM, EVENTS);
  long jobs = (tasks + per_job - 1) / per_job;
  for (long j = 0; j < jobs; j++) redisAppendCommand(redis, "DEL bench:reference:job:job-%ld", j);
  discard_replies((int)jobs + 1, "DEL");
  freeReplyObject(redisCommand(redis, "XGROUP CREATE %s %s $ MKSTREAM", STREAM, GROUP));
  fill(tasks, per_job, bytes);

  const char **ack_argv = malloc(sizeof *ack_argv * (3 + (size_t)batch));
  size_t *ack_lens = malloc(sizeof *ack_lens * (3 + (size_t)batch));
  if (!ack_argv || !ack_lens) die("out of memory");
  long long cpu0 = redis_cpu_us(), t0 = now_us();
  long settled = 0;
  /* Two reads in flight, so Redis has the next batch to serve while this
   * process settles one: replies come R1 R2 S1 R3 S2 R4 ..., and before the
   * read reply R(k+2) come the settle replies S(k) appended after R(k). */
  int settles_due[2] = {0, 0}, reads_in_flight = 2;
  append_read(batch);
  append_read(batch);
  for (unsigned k = 0; reads_in_flight > 0; k++) {
    discard_replies(settles_due[k % 2], "settle");
    settles_due[k % 2] = 0;
    redisReply *r = get_reply("XREADGROUP");
    reads_in_flight--;
    if (r->type == REDIS_REPLY_ARRAY) {
      const redisReply *entries = r->element[0]->element[1];
      settles_due[k % 2] = append_settle(entries, ack_argv, ack_lens);
      settled += (long)entries->elements;
      append_read(batch);
      reads_in_flight++;
    } /* else nil: drained; the other read in flight answers nil too */
    freeReplyObject(r);
  }
  discard_replies(settles_due[0] + settles_due[1], "settle");
  long long t1 = now_us(), cpu1 = redis_cpu_us();

  redisReply *p = redisCommand(redis, "XPENDING %s %s", STREAM, GROUP);
  if (!p || p->type != REDIS_REPLY_ARRAY || p->elements < 1) die("XPENDING");
  long long still_pending = p->element[0]->integer;
  freeReplyObject(p);
  long long counted = counted_tasks(tasks, per_job);
  if (settled != tasks || counted != tasks || still_pending != 0) {
    fprintf(stderr, "reference: read %ld of %ld tasks, counted %lld, %lld still pending\n", settled, tasks,
            counted, still_pending);
    return 1;
  }
  double ms = (double)(t1 - t0) / 1000.0;
  printf("{\"tasks\": %ld, \"batch\": %d, \"ms\": %.1f, \"tasks_per_s\": %.0f, \"redis_cpu_us_per_task\": %.2f}\n",
         tasks, batch, ms, (double)tasks * 1000.0 / ms, (double)(cpu1 - cpu0) / (double)tasks);
  free(ack_argv);
  free(ack_lens);
  redisFree(redis);
  return 0;
}
