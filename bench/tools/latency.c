/* latency: enqueue-to-ack latency at a steady rate. One thread enqueues jobs
 * through the atomic enqueue script (the same EVALSHA the HTTP API sends) at
 * RATE chunks/s; another follows the events stream with XREAD BLOCK and takes
 * each ingestion.progress event (one per job per settle call, carrying the
 * job's chunks_processed) as the ack of the chunks it adds. Both clocks are this
 * process's CLOCK_MONOTONIC, so a latency includes the event's trip back to the
 * client (tens of microseconds on loopback). Built by bench/run.sh; relies on
 * hiredis and a running pool.
 *
 *   latency PORT RATE SECONDS CHUNKS_PER_JOB CHUNK_BYTES COMMON_LUA ENQUEUE_LUA
 *
 * Prints one JSON object: rate asked and reached, chunks sent and acked, the
 * latency percentiles in ms, and the enqueue call's own round trip. */
#include <hiredis/hiredis.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STREAM "shield:ingestion_queue"
#define EVENTS "shield:events"
#define ID_PREFIX "bench-lat-"

static int port, chunks_per_job, chunk_bytes;
static double rate, seconds;
static long njobs_max;
static _Atomic long long *sent_us; /* per job: when its enqueue was sent, 0 before */
static int *acked;                 /* per job: chunks acked so far (reader thread only) */
static double *lat_ms;             /* per acked chunk (reader thread only) */
static long nlat;
static atomic_long acked_total; /* nlat, published after each read */
static atomic_int reader_ready, stop_reader;
static char run_tag[32];

static long long now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static void die(const char *what, redisContext *c) {
  fprintf(stderr, "latency: %s: %s\n", what, c && c->err ? c->errstr : "unexpected reply");
  exit(1);
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    exit(1);
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  if (!s || fread(s, 1, (size_t)n, f) != (size_t)n) die("cannot read the scripts", NULL);
  fclose(f);
  s[n] = '\0';
  *len = (size_t)n;
  return s;
}

static redisContext *connect_redis(void) {
  redisContext *c = redisConnect("127.0.0.1", port);
  if (!c || c->err) die("connect", c);
  return c;
}

/* The job index of a bench job id of this run, or -1. */
static long job_index(const char *id, size_t len) {
  size_t tag = strlen(run_tag);
  if (len <= tag || memcmp(id, run_tag, tag) != 0) return -1;
  long i = strtol(id + tag, NULL, 10);
  return i >= 0 && i < njobs_max ? i : -1;
}

static void on_event(const redisReply *fields, long long arrived) {
  const char *type = NULL, *job = NULL, *data = NULL;
  size_t job_len = 0;
  for (size_t k = 0; k + 1 < fields->elements; k += 2) {
    const char *name = fields->element[k]->str;
    const redisReply *v = fields->element[k + 1];
    if (strcmp(name, "type") == 0) type = v->str;
    else if (strcmp(name, "job_id") == 0) job = v->str, job_len = v->len;
    else if (strcmp(name, "data") == 0) data = v->str;
  }
  if (!type || !job || !data || strcmp(type, "ingestion.progress") != 0) return;
  long i = job_index(job, job_len);
  if (i < 0) return;
  const char *p = strstr(data, "\"chunks_processed\":");
  if (!p) return;
  int processed = atoi(p + 19);
  long long sent = atomic_load_explicit(&sent_us[i], memory_order_acquire);
  for (; acked[i] < processed && acked[i] < chunks_per_job; acked[i]++) lat_ms[nlat++] = (double)(arrived - sent) / 1000.0;
}

static void *reader(void *arg) {
  redisContext *c = connect_redis();
  char last[64];
  redisReply *r = redisCommand(c, "XREVRANGE %s + - COUNT 1", EVENTS);
  if (!r || r->type != REDIS_REPLY_ARRAY) die("XREVRANGE", c);
  snprintf(last, sizeof last, "%s", r->elements ? r->element[0]->element[0]->str : "0-0");
  freeReplyObject(r);
  atomic_store(&reader_ready, 1); /* the sender may go */
  while (!atomic_load(&stop_reader)) {
    r = redisCommand(c, "XREAD COUNT 10000 BLOCK 100 STREAMS %s %s", EVENTS, last);
    if (!r) die("XREAD", c);
    long long arrived = now_us();
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
      const redisReply *entries = r->element[0]->element[1];
      for (size_t k = 0; k < entries->elements; k++) {
        const redisReply *e = entries->element[k];
        on_event(e->element[1], arrived);
        snprintf(last, sizeof last, "%s", e->element[0]->str);
      }
    }
    freeReplyObject(r);
    atomic_store(&acked_total, nlat);
  }
  redisFree(c);
  return NULL;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double pct(const double *v, long n, double p) {
  if (n == 0) return 0;
  long i = (long)ceil(p / 100.0 * (double)n) - 1;
  return v[i < 0 ? 0 : i];
}

int main(int argc, char **argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: latency PORT RATE SECONDS CHUNKS_PER_JOB CHUNK_BYTES COMMON_LUA ENQUEUE_LUA\n");
    return 2;
  }
  port = atoi(argv[1]);
  rate = atof(argv[2]);
  seconds = atof(argv[3]);
  chunks_per_job = atoi(argv[4]);
  chunk_bytes = atoi(argv[5]);
  if (port <= 0 || rate <= 0 || seconds <= 0 || chunks_per_job <= 0 || chunk_bytes <= 0) {
    fprintf(stderr, "latency: bad arguments\n");
    return 2;
  }
  size_t common_len, enqueue_len;
  char *common = read_file(argv[6], &common_len), *enqueue = read_file(argv[7], &enqueue_len);
  char *script = malloc(common_len + enqueue_len + 2);
  memcpy(script, common, common_len);
  script[common_len] = '\n';
  if (!script) die("out of memory", NULL);
  memcpy(script + common_len + 1, enqueue, enqueue_len + 1);

  double job_rate = rate / chunks_per_job;
  njobs_max = (long)(job_rate * seconds) + 2;
  sent_us = calloc((size_t)njobs_max, sizeof *sent_us);
  acked = calloc((size_t)njobs_max, sizeof *acked);
  lat_ms = malloc((size_t)njobs_max * (size_t)chunks_per_job * sizeof *lat_ms);
  double *rtt_ms = malloc((size_t)njobs_max * sizeof *rtt_ms);
  char *content = malloc((size_t)chunk_bytes + 1);
  if (!sent_us || !acked || !lat_ms || !rtt_ms || !content) die("out of memory", NULL);
  memset(content, 'x', (size_t)chunk_bytes);
  content[chunk_bytes] = '\0';
  snprintf(run_tag, sizeof run_tag, ID_PREFIX "%ld-", (long)getpid());

  redisContext *c = connect_redis();
  redisReply *r = redisCommand(c, "SCRIPT LOAD %s", script);
  if (!r || r->type != REDIS_REPLY_STRING) die("SCRIPT LOAD", c);
  char sha[41];
  snprintf(sha, sizeof sha, "%s", r->str);
  freeReplyObject(r);

  pthread_t thread;
  pthread_create(&thread, NULL, reader, NULL);
  while (!atomic_load(&reader_ready)) usleep(1000);

  /* EVALSHA sha 5 S R D E dirty now maxlen ttl id type meta idem idem_ttl (chunk_id content meta)* */
  int argc_e = 16 + 3 * chunks_per_job;
  const char **av = malloc((size_t)argc_e * sizeof *av);
  size_t *al = malloc((size_t)argc_e * sizeof *al);
  char (*chunk_ids)[96] = malloc((size_t)chunks_per_job * sizeof *chunk_ids);
  if (!av || !al || !chunk_ids) die("out of memory", NULL);
  char job_id[64], now_text[32];
  long long t0 = now_us();
  long done_jobs = 0;
  while (1) {
    long long t = now_us();
    double elapsed = (double)(t - t0) / 1e6;
    if (elapsed >= seconds) break;
    long due = (long)(job_rate * elapsed) + 1;
    if (due > njobs_max) due = njobs_max;
    if (done_jobs >= due) {
      usleep(100);
      continue;
    }
    long first = done_jobs;
    for (; done_jobs < due; done_jobs++) {
      snprintf(job_id, sizeof job_id, "%s%ld", run_tag, done_jobs);
      struct timespec wall;
      clock_gettime(CLOCK_REALTIME, &wall);
      snprintf(now_text, sizeof now_text, "%lld", (long long)wall.tv_sec * 1000LL + wall.tv_nsec / 1000000);
      const char *head[16] = {"EVALSHA", sha, "5", STREAM, STREAM ":retry", STREAM ":dead", EVENTS,
                              "shield:jobs:dirty", now_text, "100000", "3600", job_id, "bench", "{}", "", "0"};
      for (int k = 0; k < 16; k++) av[k] = head[k], al[k] = strlen(head[k]);
      for (int j = 0; j < chunks_per_job; j++) {
        int n = snprintf(chunk_ids[j], sizeof chunk_ids[j], "%s:%d", job_id, j);
        av[16 + 3 * j] = chunk_ids[j], al[16 + 3 * j] = (size_t)n;
        av[17 + 3 * j] = content, al[17 + 3 * j] = (size_t)chunk_bytes;
        av[18 + 3 * j] = "{}", al[18 + 3 * j] = 2;
      }
      redisAppendCommandArgv(c, argc_e, av, al);
      /* Stamped before the write, so no ack can precede its stamp. */
      atomic_store_explicit(&sent_us[done_jobs], now_us(), memory_order_release);
    }
    for (long k = first; k < done_jobs; k++) {
      if (redisGetReply(c, (void **)&r) != REDIS_OK) die("enqueue", c);
      if (r->type != REDIS_REPLY_ARRAY) {
        fprintf(stderr, "latency: enqueue refused: %s\n", r->type == REDIS_REPLY_ERROR ? r->str : "?");
        exit(1);
      }
      freeReplyObject(r);
      rtt_ms[k] = (double)(now_us() - atomic_load(&sent_us[k])) / 1000.0;
    }
  }
  double send_seconds = (double)(now_us() - t0) / 1e6;
  long total = done_jobs * chunks_per_job;
  /* Wait for the last acks: up to 30 s after sending stopped. */
  long long deadline = now_us() + 30000000LL;
  while (now_us() < deadline) {
    usleep(20000);
    if (atomic_load(&acked_total) >= total) break;
  }
  atomic_store(&stop_reader, 1);
  pthread_join(thread, NULL);
  redisFree(c);

  qsort(lat_ms, (size_t)nlat, sizeof *lat_ms, cmp_double);
  qsort(rtt_ms, (size_t)done_jobs, sizeof *rtt_ms, cmp_double);
  double sum = 0;
  for (long i = 0; i < nlat; i++) sum += lat_ms[i];
  printf("{\"rate_asked\":%.0f,\"rate_reached\":%.0f,\"chunks_per_job\":%d,\"chunk_bytes\":%d,"
         "\"seconds\":%.2f,\"chunks_sent\":%ld,\"chunks_acked\":%ld,"
         "\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,\"mean_ms\":%.3f,"
         "\"enqueue_rtt_p50_ms\":%.3f,\"enqueue_rtt_p99_ms\":%.3f}\n",
         rate, (double)total / send_seconds, chunks_per_job, chunk_bytes, send_seconds, total, nlat,
         pct(lat_ms, nlat, 50), pct(lat_ms, nlat, 90), pct(lat_ms, nlat, 99), pct(lat_ms, nlat, 99.9),
         nlat ? lat_ms[nlat - 1] : 0.0, nlat ? sum / (double)nlat : 0.0, pct(rtt_ms, done_jobs, 50),
         pct(rtt_ms, done_jobs, 99));
  free(av);
  free(al);
  free(chunk_ids);
  free(content);
  free(rtt_ms);
  free(lat_ms);
  free(acked);
  free(sent_us);
  free(script);
  free(enqueue);
  free(common);
  return 0;
}
