/* Test client for the job system's Redis scripts; see rs_harness.h. */
#include "rs_harness.h"

#include <stdarg.h>
#include <stdlib.h>

redisContext *rs_redis;
long long rs_now = 1700000000000LL;
const char *rs_events_maxlen = "10000";
const char *rs_status_ttl = "3600";
int rs_failures;

static const char *const script_names[] = {
  "enqueue", "begin", "settle", "promote", "reclaim", "cancel", "clean",
};
#define NSCRIPTS (sizeof script_names / sizeof script_names[0])
static char script_sha[NSCRIPTS][41];

#define RING 16
#define TEXT_MAX 16384
static char ring[RING][TEXT_MAX];
static int ring_next;

static void die_lost(void) {
  fprintf(stderr, "redis: %s\n", rs_redis->errstr[0] ? rs_redis->errstr : "no reply");
  exit(1);
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = NULL;
  if (fseek(f, 0, SEEK_END) == 0) {
    long size = ftell(f);
    if (size >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)size + 1)) != NULL) {
      *len = fread(buf, 1, (size_t)size, f);
      buf[*len] = '\0';
    }
  }
  fclose(f);
  return buf;
}

/* Loads name.lua the way the runtime does: common.lua, a newline, the script. */
static int load_script(const char *dir, size_t index) {
  char path[4096];
  size_t clen = 0, slen = 0;
  snprintf(path, sizeof path, "%s/lua/shield/redis/common.lua", dir);
  char *common = read_file(path, &clen);
  snprintf(path, sizeof path, "%s/lua/shield/redis/%s.lua", dir, script_names[index]);
  char *script = read_file(path, &slen);
  int rc = -1;
  char *text = common && script ? malloc(clen + slen + 2) : NULL;
  if (text) {
    memcpy(text, common, clen);
    text[clen] = '\n';
    memcpy(text + clen + 1, script, slen);
    const char *argv[] = { "SCRIPT", "LOAD", text };
    const size_t lens[] = { 6, 4, clen + slen + 1 };
    redisReply *r = redisCommandArgv(rs_redis, 3, argv, lens);
    if (!r) die_lost();
    if (r->type == REDIS_REPLY_STRING && r->len == 40) {
      memcpy(script_sha[index], r->str, 41);
      rc = 0;
    } else {
      fprintf(stderr, "%s.lua: %s\n", script_names[index], rs_text(r));
    }
    freeReplyObject(r);
  } else {
    fprintf(stderr, "%s.lua: cannot read the script files under %s\n", script_names[index], dir);
  }
  free(text);
  free(common);
  free(script);
  return rc;
}

int rs_setup(void) {
  const char *port = getenv("SHIELD_TEST_REDIS_PORT");
  const char *dir = getenv("SHIELD_SOURCE_DIR");
  if (!port || !dir) {
    fprintf(stderr, "SHIELD_TEST_REDIS_PORT and SHIELD_SOURCE_DIR must be set\n");
    return -1;
  }
  rs_redis = redisConnect("127.0.0.1", atoi(port));
  if (!rs_redis || rs_redis->err) {
    fprintf(stderr, "redis: %s\n", rs_redis ? rs_redis->errstr : "out of memory");
    return -1;
  }
  for (size_t i = 0; i < NSCRIPTS; i++) {
    if (load_script(dir, i) < 0) return -1;
  }
  return 0;
}

void rs_teardown(void) {
  if (rs_redis) redisFree(rs_redis);
  rs_redis = NULL;
}

void rs_reset(void) {
  RS_EQ_STR("OK", rs_q("FLUSHALL"));
  RS_EQ_STR("OK", rs_q("XGROUP CREATE %s %s $ MKSTREAM", RS_STREAM, RS_GROUP));
}

static void append(char *buf, size_t *used, const char *s, size_t len) {
  if (*used >= TEXT_MAX || len >= TEXT_MAX - *used) {
    fprintf(stderr, "reply text longer than %d bytes\n", TEXT_MAX);
    exit(1);
  }
  memcpy(buf + *used, s, len);
  *used += len;
  buf[*used] = '\0';
}

static void flatten(char *buf, size_t *used, const redisReply *r) {
  char num[32];
  switch (r->type) {
  case REDIS_REPLY_STRING:
  case REDIS_REPLY_STATUS:
    append(buf, used, r->str, r->len);
    break;
  case REDIS_REPLY_ERROR:
    append(buf, used, "error: ", 7);
    append(buf, used, r->str, r->len);
    break;
  case REDIS_REPLY_INTEGER: {
    int n = snprintf(num, sizeof num, "%lld", r->integer);
    append(buf, used, num, n > 0 ? (size_t)n : 0);
    break;
  }
  case REDIS_REPLY_NIL:
    append(buf, used, "(nil)", 5);
    break;
  case REDIS_REPLY_ARRAY:
    for (size_t i = 0; i < r->elements; i++) {
      const redisReply *e = r->element[i];
      if (i > 0) append(buf, used, "|", 1);
      if (e->type == REDIS_REPLY_ARRAY) append(buf, used, "[", 1);
      flatten(buf, used, e);
      if (e->type == REDIS_REPLY_ARRAY) append(buf, used, "]", 1);
    }
    break;
  }
}

const char *rs_text(const redisReply *r) {
  char *buf = ring[ring_next];
  ring_next = (ring_next + 1) % RING;
  size_t used = 0;
  buf[0] = '\0';
  flatten(buf, &used, r);
  return buf;
}

static const char *text_of(redisReply *r) {
  if (!r) die_lost();
  const char *t = rs_text(r);
  freeReplyObject(r);
  return t;
}

const char *rs_q(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = redisvCommand(rs_redis, fmt, ap);
  va_end(ap);
  return text_of(r);
}

long long rs_int(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = redisvCommand(rs_redis, fmt, ap);
  va_end(ap);
  if (!r) die_lost();
  long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -999999;
  if (r->type != REDIS_REPLY_INTEGER) fprintf(stderr, "not an integer: %s\n", rs_text(r));
  freeReplyObject(r);
  return v;
}

/* EVALSHA of a script, its arguments with lengths (NULL: C strings); the reply. */
static redisReply *script_reply(const char *name, int argc, const char **argv, const size_t *argvlen) {
  size_t index = 0;
  while (index < NSCRIPTS && strcmp(script_names[index], name) != 0) index++;
  if (index == NSCRIPTS) {
    fprintf(stderr, "unknown script %s\n", name);
    exit(1);
  }
  char now[32];
  snprintf(now, sizeof now, "%lld", rs_now);
  const char *head[] = { "EVALSHA", script_sha[index], "5", RS_STREAM, RS_RETRY, RS_DEAD,
                         RS_EVENTS, RS_DIRTY, now, rs_events_maxlen, rs_status_ttl };
  const int nhead = (int)(sizeof head / sizeof head[0]);
  const char **all = malloc(sizeof *all * (size_t)(nhead + argc));
  size_t *lens = malloc(sizeof *lens * (size_t)(nhead + argc));
  if (!all || !lens) exit(1);
  for (int i = 0; i < nhead + argc; i++) {
    all[i] = i < nhead ? head[i] : argv[i - nhead];
    lens[i] = i >= nhead && argvlen ? argvlen[i - nhead] : strlen(all[i]);
  }
  redisReply *r = redisCommandArgv(rs_redis, nhead + argc, all, lens);
  free(all);
  free(lens);
  if (!r) die_lost();
  return r;
}

const char *rs_script(const char *name, int argc, const char **argv) {
  return text_of(script_reply(name, argc, argv, NULL));
}

const char *rs_run(const char *name, ...) {
  const char *argv[64];
  int argc = 0;
  va_list ap;
  va_start(ap, name);
  for (const char *a = va_arg(ap, const char *); a; a = va_arg(ap, const char *)) {
    if (argc == 64) exit(1);
    argv[argc++] = a;
  }
  va_end(ap);
  return rs_script(name, argc, argv);
}

long long rs_pending(void) {
  redisReply *r = redisCommand(rs_redis, "XPENDING %s %s", RS_STREAM, RS_GROUP);
  if (!r) die_lost();
  long long n = r->type == REDIS_REPLY_ARRAY ? r->element[0]->integer : -1;
  freeReplyObject(r);
  return n;
}

const char *rs_entry(const char *stream, int index) {
  redisReply *r = redisCommand(rs_redis, "XRANGE %s - +", stream);
  if (!r) die_lost();
  const char *t = "";
  if (r->type == REDIS_REPLY_ARRAY && (size_t)index < r->elements)
    t = rs_text(r->element[index]->element[1]);
  freeReplyObject(r);
  return t;
}

const char *rs_event(int index) { return rs_entry(RS_EVENTS, index); }

static void copy_str(char *dst, size_t size, const redisReply *r) {
  snprintf(dst, size, "%s", r && r->type == REDIS_REPLY_STRING ? r->str : "");
}

int rs_read(const char *consumer, const char *from, rs_entry_t *out, int max) {
  redisReply *r = redisCommand(rs_redis, "XREADGROUP GROUP %s %s COUNT %d STREAMS %s %s",
                               RS_GROUP, consumer, max, RS_STREAM, from);
  if (!r) die_lost();
  int n = 0;
  if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
    const redisReply *entries = r->element[0]->element[1];
    for (size_t i = 0; i < entries->elements && n < max; i++, n++) {
      const redisReply *e = entries->element[i], *fields = e->element[1];
      rs_entry_t *o = &out[n];
      copy_str(o->id, sizeof o->id, e->element[0]);
      o->job[0] = o->chunk[0] = '\0';
      o->first = strcmp(from, ">") == 0;
      int has_job = 0;
      for (size_t k = 0; fields->type == REDIS_REPLY_ARRAY && k + 1 < fields->elements; k += 2) {
        const char *name = fields->element[k]->str, *value = fields->element[k + 1]->str;
        if (strcmp(name, "job_id") == 0) {
          copy_str(o->job, sizeof o->job, fields->element[k + 1]);
          has_job = 1;
        } else if (strcmp(name, "chunk_id") == 0) {
          copy_str(o->chunk, sizeof o->chunk, fields->element[k + 1]);
        } else if (strcmp(name, "deliveries") == 0 || (strcmp(name, "attempt") == 0 && strcmp(value, "1") != 0)) {
          o->first = 0;
        }
      }
      if (!has_job) snprintf(o->job, sizeof o->job, "%.*s", (int)shr_chunk_job_len(o->chunk, strlen(o->chunk)), o->chunk);
    }
  }
  freeReplyObject(r);
  return n;
}

int rs_begin_verdicts;

const char *rs_begin(const char *consumer, int max_deliveries, const rs_entry_t *e, int n,
                     int pending) {
  char max[16], runs[12];
  snprintf(max, sizeof max, "%d", max_deliveries);
  const char **argv = malloc(sizeof *argv * (size_t)(3 + SHR_BEGIN_ARGS_MAX(n)));
  size_t *argvlen = malloc(sizeof *argvlen * (size_t)(3 + SHR_BEGIN_ARGS_MAX(n)));
  shr_begin_entry_t *refs = calloc((size_t)n + 1, sizeof *refs);
  if (!argv || !argvlen || !refs) exit(1);
  const char *head[] = { RS_GROUP, consumer, max };
  for (int i = 0; i < 3; i++) {
    argv[i] = head[i];
    argvlen[i] = strlen(head[i]);
  }
  for (int i = 0; i < n; i++) {
    refs[i] = (shr_begin_entry_t){ .id = e[i].id, .id_len = strlen(e[i].id),
                                   .job_id = e[i].job, .job_id_len = strlen(e[i].job),
                                   .chunk_id = e[i].chunk, .chunk_id_len = strlen(e[i].chunk),
                                   .first_delivery = e[i].first };
  }
  int argc = 3 + shr_begin_args(refs, n, pending, runs, argv + 3, argvlen + 3, NULL);
  redisReply *r = script_reply("begin", argc, argv, argvlen);
  rs_begin_verdicts = r->type == REDIS_REPLY_ARRAY ? (int)r->elements : -1;
  /* One verdict per entry, as the consumer reads them (a run's for each of its entries). */
  const char *t = rs_text(r);
  if (r->type == REDIS_REPLY_ARRAY) {
    char *buf = ring[ring_next];
    ring_next = (ring_next + 1) % RING;
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && used < TEXT_MAX; i++) {
      const redisReply *v = refs[i].verdict < (int)r->elements ? r->element[refs[i].verdict] : NULL;
      const char *verdict = v && v->type == REDIS_REPLY_STRING ? v->str : "(not a verdict)";
      used += (size_t)snprintf(buf + used, TEXT_MAX - used, "%s%s", i ? "|" : "", verdict);
    }
    t = buf;
  }
  freeReplyObject(r);
  free(argv);
  free(argvlen);
  free(refs);
  return t;
}

const char *rs_settle(int n, const char *const *records) {
  shr_outbox_t box;
  shr_outbox_init(&box);
  for (int i = 0; i < n; i++) {
    const char *const *f = records + 6 * i;
    size_t lens[SHR_OUTBOX_FIELDS];
    for (int k = 0; k < SHR_OUTBOX_FIELDS; k++) lens[k] = strlen(f[k]);
    if (shr_outbox_add(&box, f, lens) != 0) exit(1);
  }
  const char *head[] = { RS_GROUP };
  size_t headlen[] = { strlen(RS_GROUP) };
  const char **argv;
  const size_t *argvlen;
  int argc = shr_outbox_argv(&box, 1, head, headlen, &argv, &argvlen);
  if (argc < 0) exit(1);
  const char *t = text_of(script_reply("settle", argc, argv, argvlen));
  shr_outbox_free(&box);
  return t;
}
