#include "consumer.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "begin_args.h"
#include "clock.h"
#include "log.h"
#include "outbox.h"
#include "redis.h"
#include "job_scripts.h"

#define RETRY_DELAY_MS 500
/* Records per settle call: bounds the size of one EVALSHA. */
#define SETTLE_MAX_RECORDS 2000
#define ID_MAX 128

/* One task in flight: what settling it needs if the Lua runner itself fails. */
typedef struct task {
  shr_consumer_t *c;
  char msg_id[48];
  char job_id[ID_MAX];
  char chunk_id[ID_MAX];
  uint64_t started_ms;
  struct task *next_free;
} task_t;

/* The fields of one stream entry of a batch read, in the batch's arena. */
typedef struct {
  int nfields; /* field and value strings, alternating */
  const char **fv;
  size_t *fvlen;
} entry_t;

typedef struct batch {
  int n;
  int pending_pass;
  int verdicts; /* in begin.lua's reply */
  shr_begin_entry_t *refs; /* per entry: its id, job and chunk, what begin is told */
  entry_t *entries;        /* per entry: its fields */
  char *arena;
  shr_consumer_t *consumer;
  struct batch *next; /* in the list of batches waiting to begin again */
} batch_t;

struct shr_consumer {
  shr_env_t *env;
  shr_slot_t *slot;
  const shr_config_t *cfg;
  char name[128];
  shr_redis_t *reader; /* the blocking XREADGROUP holds a connection of its own */
  shr_redis_script_t *begin_script;
  shr_redis_script_t *settle_script;
  int module_ref, ctx_ref, runner_ref; /* registry refs */
  char version[17];

  task_t *tasks; /* pool.concurrency of them */
  task_t *free_tasks;
  int in_flight;   /* reserved by reads, begun, or running */
  uint64_t tasks_done;

  int reading;            /* slots reserved by the read in flight, 0 if none */
  int read_failing, settle_failing; /* log a failure once, and its end */
  int pending_pass;       /* still re-reading our own pending entries */
  char pending_after[48]; /* the pending pass's cursor */
  int begins_in_flight;
  batch_t *begin_waiting; /* batches whose begin call failed, to send again */

  shr_outbox_t filling, sending;
  int settling;
  uv_idle_t flush_idle;
  uv_idle_t drained_idle;
  uv_timer_t retry_timer; /* re-read / re-begin / re-settle after a Redis failure */
  int retry_read, retry_begin, retry_settle;

  shr_consumer_recycle_cb recycle; /* called once when max_tasks_per_child is reached */
  void *recycle_data;
  int draining;
  int stopping; /* the reader is closed: no task starts any more */
  shr_consumer_drained_cb drained;
  void *drained_data;
  int handles_open;
};

static void read_next(shr_consumer_t *c);
static void flush(shr_consumer_t *c);
static void check_drained(shr_consumer_t *c);

/* ---- helpers ---- */

static int free_slots(shr_consumer_t *c) {
  int free = c->cfg->pool_concurrency - c->in_flight;
  int max = c->cfg->pool_max_tasks_per_child;
  if (max > 0) {
    long long left = (long long)max - (long long)c->tasks_done - c->in_flight;
    if (left < free) free = left > 0 ? (int)left : 0;
  }
  return free;
}

static void on_retry_timer(uv_timer_t *h);

static void release_reserved(shr_consumer_t *c, int n);

static void schedule_retry(shr_consumer_t *c) {
  if (!uv_is_active((uv_handle_t *)&c->retry_timer)) uv_timer_start(&c->retry_timer, on_retry_timer, RETRY_DELAY_MS, 0);
}

static void on_flush_idle(uv_idle_t *h);

/* The hot path copies and formats with these rather than snprintf, which costs
 * a few hundred instructions a call and ran four times per chunk. */

/* src[0..len) as a string in dst (size bytes), cut to fit. */
static void copy_text(char *dst, size_t size, const char *src, size_t len) {
  if (len >= size) len = size - 1;
  if (len) memcpy(dst, src, len);
  dst[len] = '\0';
}

/* A time in ms as a decimal integer, rounded, written at the end of buf;
 * anything not positive is "0". Returns the start of the text. */
static const char *format_ms(char buf[24], double ms) {
  unsigned long long v = ms > 0 && ms < 1e19 ? (unsigned long long)(ms + 0.5) : 0;
  char *p = buf + 23;
  *p = '\0';
  do {
    *--p = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  return p;
}

static void add_record(shr_consumer_t *c, const char *op, const char *msg_id, size_t msg_len, const char *job_id,
                       size_t job_len, const char *chunk_id, size_t chunk_len, const char *num, const char *text,
                       size_t text_len) {
  const char *f[SHR_OUTBOX_FIELDS] = {op, msg_id, job_id, chunk_id, num, text};
  size_t l[SHR_OUTBOX_FIELDS] = {strlen(op), msg_len, job_len, chunk_len, strlen(num), text_len};
  if (shr_outbox_add(&c->filling, f, l) != 0) {
    /* Out of memory: the entry stays pending and is recovered later. */
    shr_error("cannot buffer the outcome of %.*s: out of memory", (int)msg_len, msg_id);
    return;
  }
  if (!uv_is_active((uv_handle_t *)&c->flush_idle)) uv_idle_start(&c->flush_idle, on_flush_idle);
}

/* ---- batches ---- */

static void batch_free(batch_t *b) {
  if (!b) return;
  free(b->refs);
  free(b->entries);
  free(b->arena);
  free(b);
}

static int is_field(const redisReply *r, const char *name, size_t len) {
  return r->type == REDIS_REPLY_STRING && r->len == len && memcmp(r->str, name, len) == 0;
}

/* Copies the entries of an XREADGROUP reply (hiredis frees it after the
 * callback) into one arena. */
static batch_t *batch_copy(const redisReply *entries, int pending_pass) {
  size_t bytes = 0, nstrings = 0;
  for (size_t i = 0; i < entries->elements; i++) {
    const redisReply *e = entries->element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2) continue;
    bytes += e->element[0]->len + 1;
    const redisReply *fv = e->element[1];
    if (fv->type == REDIS_REPLY_ARRAY) {
      nstrings += fv->elements;
      for (size_t k = 0; k < fv->elements; k++) bytes += fv->element[k]->len + 1;
    }
  }
  batch_t *b = calloc(1, sizeof *b);
  if (!b) return NULL;
  b->pending_pass = pending_pass;
  size_t max = entries->elements ? entries->elements : 1;
  b->refs = calloc(max, sizeof *b->refs);
  b->entries = calloc(max, sizeof *b->entries);
  /* One block: the strings, then the pointer and length arrays. */
  b->arena = malloc(bytes + nstrings * (sizeof(char *) + sizeof(size_t)) + 16);
  if (!b->refs || !b->entries || !b->arena) {
    batch_free(b);
    return NULL;
  }
  const char **ptrs = (const char **)b->arena;
  size_t *lens = (size_t *)(ptrs + nstrings);
  char *text = (char *)(lens + nstrings);
  for (size_t i = 0; i < entries->elements; i++) {
    const redisReply *e = entries->element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2) continue;
    shr_begin_entry_t *ref = &b->refs[b->n];
    entry_t *out = &b->entries[b->n++];
    memcpy(text, e->element[0]->str, e->element[0]->len + 1);
    ref->id = text;
    ref->id_len = e->element[0]->len;
    ref->first_delivery = !pending_pass;
    text += ref->id_len + 1;
    const redisReply *fv = e->element[1];
    out->fv = ptrs;
    out->fvlen = lens;
    /* A nil field list: the entry was deleted while pending (already settled). */
    if (fv->type != REDIS_REPLY_ARRAY) continue;
    out->nfields = (int)fv->elements;
    for (size_t k = 0; k < fv->elements; k++) {
      const redisReply *s = fv->element[k];
      memcpy(text, s->str ? s->str : "", s->len);
      text[s->len] = '\0';
      *ptrs++ = text;
      *lens++ = s->len;
      text += s->len + 1;
      if (k % 2 == 1) {
        const redisReply *key = fv->element[k - 1];
        const char *value = text - s->len - 1;
        if (is_field(key, "job_id", 6)) {
          ref->job_id = value;
          ref->job_id_len = s->len;
        } else if (is_field(key, "chunk_id", 8)) {
          ref->chunk_id = value;
          ref->chunk_id_len = s->len;
        } else if (is_field(key, "deliveries", 10) || (is_field(key, "attempt", 7) && strcmp(value, "1") != 0)) {
          ref->first_delivery = 0;
        }
      }
    }
    if (!ref->job_id && ref->chunk_id) {
      ref->job_id = ref->chunk_id;
      ref->job_id_len = shr_chunk_job_len(ref->chunk_id, ref->chunk_id_len);
    }
  }
  return b;
}

/* ---- running tasks ---- */

/* The scoreboard shows the entries this worker holds, not the slots a read
 * still waiting on XREADGROUP BLOCK has reserved: an idle worker shows 0. */
static void publish_in_flight(shr_consumer_t *c) {
  atomic_store_explicit(&c->slot->in_flight, c->in_flight - c->reading, memory_order_relaxed);
}

static void finish_task(shr_consumer_t *c, task_t *t) {
  double seconds = (double)(uv_now(c->env->loop) - t->started_ms) / 1000.0;
  shr_slot_record_duration(c->slot, seconds);
  t->next_free = c->free_tasks;
  c->free_tasks = t;
  c->in_flight--;
  c->tasks_done++;
  publish_in_flight(c);
  atomic_fetch_add_explicit(&c->slot->tasks_done, 1, memory_order_relaxed);
  int max = c->cfg->pool_max_tasks_per_child;
  if (max > 0 && c->tasks_done >= (uint64_t)max && c->recycle && !c->draining) {
    shr_consumer_recycle_cb cb = c->recycle;
    c->recycle = NULL;
    cb(c->recycle_data);
  }
  read_next(c);
  check_drained(c);
}

static void count_outcome(shr_consumer_t *c, const char *op) {
  _Atomic uint64_t *counter = op[0] == 'o' ? &c->slot->chunks_ok : op[0] == 'r' ? &c->slot->chunks_retried
                              : op[0] == 's' ? &c->slot->chunks_skipped : &c->slot->chunks_dead;
  atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

/* result.steps of a successful task: {{name = "extract", ms = 12.5}, ...}. */
static void record_steps(shr_consumer_t *c, lua_State *co, int result) {
  lua_getfield(co, result, "steps");
  if (lua_istable(co, -1)) {
    int n = (int)lua_objlen(co, -1);
    for (int i = 1; i <= n; i++) {
      lua_rawgeti(co, -1, i);
      if (lua_istable(co, -1)) {
        lua_getfield(co, -1, "name");
        lua_getfield(co, -2, "ms");
        size_t len;
        const char *name = lua_tolstring(co, -2, &len);
        if (name && lua_isnumber(co, -1)) shr_slot_record_step(c->slot, name, len, lua_tonumber(co, -1) / 1000.0);
        lua_pop(co, 2);
      }
      lua_pop(co, 1);
    }
  }
  lua_pop(co, 1);
}

/* run_task returned: op, job_id, chunk_id, due_ms, a text (the error, or an ok
 * outcome's encoded counts: settle.lua's text slot) and the result (sched.c
 * leaves the results from index 1), or raised (error value and traceback). */
static void on_task_done(shr_thread_t *thread, int ok, lua_State *co, void *data) {
  task_t *t = data;
  shr_consumer_t *c = t->c;
  size_t msg_len = strlen(t->msg_id);
  if (!ok) {
    const char *err = lua_tostring(co, -1);
    shr_error("the task runner failed on %s: %s", t->msg_id, err ? err : "?");
    char buf[24];
    const char *due = format_ms(buf, (double)(shr_wall_ms() + 1000));
    add_record(c, "retry", t->msg_id, msg_len, t->job_id, strlen(t->job_id), t->chunk_id, strlen(t->chunk_id), due,
               "runtime error while running the task", 36);
    count_outcome(c, "retry");
  } else {
    size_t op_len, job_len, chunk_len, text_len;
    const char *op = lua_tolstring(co, 1, &op_len);
    const char *job = lua_tolstring(co, 2, &job_len);
    const char *chunk = lua_tolstring(co, 3, &chunk_len);
    char buf[24];
    const char *due = format_ms(buf, lua_tonumber(co, 4));
    const char *text = lua_tolstring(co, 5, &text_len);
    add_record(c, op, t->msg_id, msg_len, job ? job : "", job ? job_len : 0, chunk ? chunk : "", chunk ? chunk_len : 0,
               due, text ? text : "", text ? text_len : 0);
    count_outcome(c, op);
    if (lua_istable(co, 6)) record_steps(c, co, 6);
  }
  finish_task(c, t);
}

static void run_entry(shr_consumer_t *c, const shr_begin_entry_t *ref, const entry_t *e) {
  lua_State *L = c->env->L;
  task_t *t = c->free_tasks;
  c->free_tasks = t->next_free;
  t->c = c;
  copy_text(t->msg_id, sizeof t->msg_id, ref->id, ref->id_len);
  copy_text(t->job_id, sizeof t->job_id, ref->job_id, ref->job_id_len);
  copy_text(t->chunk_id, sizeof t->chunk_id, ref->chunk_id, ref->chunk_id_len);
  t->started_ms = uv_now(c->env->loop);

  luaL_checkstack(L, e->nfields + 8, "task fields");
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->runner_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->module_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->ctx_ref);
  lua_pushinteger(L, c->cfg->pool_retry_attempts);
  lua_pushlstring(L, ref->id, ref->id_len);
  for (int k = 0; k < e->nfields; k++) lua_pushlstring(L, e->fv[k], e->fvlen[k]);
  shr_thread_t *thread = shr_sched_spawn(c->env->sched, 4 + e->nfields, on_task_done, t);
  shr_thread_set_deadline(thread, t->started_ms + (uint64_t)c->cfg->pool_timeout_seconds * 1000);
}

/* ---- begin: one verdict per entry ---- */

static void settle_skipped(shr_consumer_t *c, const shr_begin_entry_t *ref) {
  add_record(c, "skip", ref->id, ref->id_len, ref->job_id ? ref->job_id : "", ref->job_id_len,
             ref->chunk_id ? ref->chunk_id : "", ref->chunk_id_len, "0", "", 0);
  count_outcome(c, "skip");
}

static void release_reserved(shr_consumer_t *c, int n) {
  c->in_flight -= n;
  publish_in_flight(c);
}

static void on_begin(shr_redis_t *r, redisReply *reply, const char *err, void *data);

static void send_begin(shr_consumer_t *c, batch_t *b) {
  int argc = SHR_JOB_SCRIPT_HEAD + 3 + SHR_BEGIN_ARGS_MAX(b->n);
  const char **argv = malloc((size_t)argc * sizeof *argv);
  size_t *argvlen = malloc((size_t)argc * sizeof *argvlen);
  if (!argv || !argvlen) {
    free(argv);
    free(argvlen);
    b->next = c->begin_waiting;
    c->begin_waiting = b;
    schedule_retry(c);
    return;
  }
  char head[96], max_deliveries[16], runs[12];
  shr_job_script_head(c->cfg, argv, argvlen, head);
  snprintf(max_deliveries, sizeof max_deliveries, "%d", c->cfg->pool_retry_attempts);
  int k = SHR_JOB_SCRIPT_HEAD;
  argv[k] = c->cfg->streams_group;
  argvlen[k++] = strlen(c->cfg->streams_group);
  argv[k] = c->name;
  argvlen[k++] = strlen(c->name);
  argv[k] = max_deliveries;
  argvlen[k++] = strlen(max_deliveries);
  k += shr_begin_args(b->refs, b->n, b->pending_pass, runs, argv + k, argvlen + k, &b->verdicts);
  c->begins_in_flight++;
  shr_redis_script_call(c->env->redis, c->begin_script, on_begin, b, 5, k, argv, argvlen);
  free(argv);
  free(argvlen);
}

static void on_begin(shr_redis_t *r, redisReply *reply, const char *err, void *data) {
  batch_t *b = data;
  shr_consumer_t *c = b->consumer;
  c->begins_in_flight--;
  if (!reply || reply->type != REDIS_REPLY_ARRAY || (int)reply->elements != b->verdicts) {
    /* Nothing was decided (or the outcome is unknown): the entries are still
     * pending for us; ask again, the verdicts are idempotent. */
    shr_warn("begin of %d entries failed: %s; retrying", b->n,
             err ? err : (reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply"));
    if (c->stopping) {
      release_reserved(c, b->n);
      batch_free(b);
      check_drained(c);
      return;
    }
    b->next = c->begin_waiting;
    c->begin_waiting = b;
    schedule_retry(c);
    return;
  }
  int released = 0;
  for (int i = 0; i < b->n; i++) {
    const shr_begin_entry_t *ref = &b->refs[i];
    const redisReply *v = reply->element[ref->verdict];
    const char *verdict = v->type == REDIS_REPLY_STRING || v->type == REDIS_REPLY_STATUS ? v->str : "";
    if (strcmp(verdict, "run") == 0 && !c->stopping) {
      run_entry(c, ref, &b->entries[i]);
    } else if (strcmp(verdict, "skip") == 0) {
      settle_skipped(c, ref);
      released++;
    } else {
      if (strcmp(verdict, "dead") == 0) count_outcome(c, "dead");
      released++;
    }
  }
  release_reserved(c, released);
  batch_free(b);
  read_next(c);
  check_drained(c);
}

/* ---- reading ---- */

static void on_read(shr_redis_t *r, redisReply *reply, const char *err, void *data);

static void read_next(shr_consumer_t *c) {
  if (c->reading || c->draining || c->retry_read) return;
  int free = free_slots(c);
  if (free <= 0) return;
  /* Own pending entries are re-read one at a time, each run to its outcome
   * before the next: a poison entry that kills the worker then raises only its
   * own delivery count, not those of the innocent entries pending beside it. */
  if (c->pending_pass) {
    if (c->in_flight > 0) return;
    free = 1;
  }
  int count = free < c->cfg->pool_batch_size ? free : c->cfg->pool_batch_size;
  char count_text[16], block_text[16];
  snprintf(count_text, sizeof count_text, "%d", c->pending_pass ? free : count);
  snprintf(block_text, sizeof block_text, "%d", c->cfg->pool_health_check_interval * 1000);
  const char *argv[11] = {"XREADGROUP", "GROUP", c->cfg->streams_group, c->name, "COUNT", count_text};
  int argc = 6;
  if (!c->pending_pass) {
    argv[argc++] = "BLOCK";
    argv[argc++] = block_text;
  }
  argv[argc++] = "STREAMS";
  argv[argc++] = c->cfg->streams_ingestion;
  argv[argc++] = c->pending_pass ? c->pending_after : ">";
  c->reading = c->pending_pass ? free : count;
  /* Reserve the slots now, so concurrent completions cannot over-read. */
  c->in_flight += c->reading;
  publish_in_flight(c);
  /* The watchdog outlives the BLOCK time: a half-open connection is dropped. */
  unsigned watchdog = (unsigned)c->cfg->pool_health_check_interval * 1000u + 10000u;
  shr_redis_command_timeout(c->reader, on_read, c, argc, argv, NULL, watchdog);
}

static void ensure_group(shr_consumer_t *c);

static void on_read(shr_redis_t *r, redisReply *reply, const char *err, void *data) {
  shr_consumer_t *c = data;
  int reserved = c->reading;
  c->reading = 0;
  shr_slot_heartbeat(c->slot);
  if (!reply || reply->type == REDIS_REPLY_ERROR) {
    release_reserved(c, reserved);
    if (c->stopping) {
      check_drained(c);
      return;
    }
    const char *why = err ? err : reply->str;
    if (reply && strncmp(reply->str, "NOGROUP", 7) == 0) {
      shr_warn("the consumer group is gone (%s): creating it again", why);
      ensure_group(c);
    } else if (!c->read_failing) {
      shr_warn("reading the task stream failed: %s; retrying", why);
    }
    c->read_failing = 1;
    c->retry_read = 1;
    schedule_retry(c);
    return;
  }
  if (c->read_failing) shr_info("reading the task stream again");
  c->read_failing = 0;
  /* A nil reply: BLOCK timed out with nothing new. */
  const redisReply *entries = NULL;
  if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1) {
    const redisReply *stream = reply->element[0];
    if (stream->type == REDIS_REPLY_ARRAY && stream->elements == 2) entries = stream->element[1];
  }
  if (!entries || entries->type != REDIS_REPLY_ARRAY || entries->elements == 0) {
    release_reserved(c, reserved);
    if (c->pending_pass) {
      c->pending_pass = 0;
      shr_info("own pending entries re-read; now reading new tasks");
    }
    read_next(c);
    check_drained(c);
    return;
  }
  batch_t *b = batch_copy(entries, c->pending_pass);
  if (!b) {
    /* The entries stay pending for us and come back with the next start. */
    shr_error("out of memory copying %zu entries", entries->elements);
    release_reserved(c, reserved);
    c->retry_read = 1;
    schedule_retry(c);
    return;
  }
  b->consumer = c;
  release_reserved(c, reserved - b->n);
  if (c->pending_pass) {
    const shr_begin_entry_t *last = &b->refs[b->n - 1];
    snprintf(c->pending_after, sizeof c->pending_after, "%.*s", (int)last->id_len, last->id);
  }
  send_begin(c, b);
  read_next(c);
}

static void on_group(shr_redis_t *r, redisReply *reply, const char *err, void *data) {
  if (reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "BUSYGROUP", 9) != 0)
    shr_warn("XGROUP CREATE failed: %s", reply->str);
}

static void ensure_group(shr_consumer_t *c) {
  const char *argv[] = {"XGROUP", "CREATE", c->cfg->streams_ingestion, c->cfg->streams_group, "0", "MKSTREAM"};
  shr_redis_command(c->env->redis, on_group, c, 6, argv, NULL);
}

/* ---- settling ---- */

static void on_settle(shr_redis_t *r, redisReply *reply, const char *err, void *data) {
  shr_consumer_t *c = data;
  c->settling = 0;
  if (!reply || reply->type == REDIS_REPLY_ERROR) {
    /* Keep the records and send them again: settling is idempotent (the done
     * set decides), and a NULL reply means the outcome is unknown. */
    if (!c->settle_failing)
      shr_warn("settling %d outcomes failed: %s; retrying", c->sending.count, err ? err : reply->str);
    c->settle_failing = 1;
    shr_outbox_append(&c->sending, &c->filling);
    shr_outbox_t tmp = c->filling;
    c->filling = c->sending;
    c->sending = tmp;
    c->retry_settle = 1;
    schedule_retry(c);
    return;
  }
  if (c->settle_failing) shr_info("settling outcomes again");
  c->settle_failing = 0;
  shr_outbox_clear(&c->sending);
  if (c->filling.count) flush(c);
  check_drained(c);
}

static void flush(shr_consumer_t *c) {
  if (c->settling || c->retry_settle || c->filling.count == 0) return;
  /* Swap: the filled buffer is sent, completions fill the other. */
  shr_outbox_t tmp = c->sending;
  c->sending = c->filling;
  c->filling = tmp;
  const char *head[SHR_JOB_SCRIPT_HEAD + 1];
  size_t headlen[SHR_JOB_SCRIPT_HEAD + 1];
  char buf[96];
  shr_job_script_head(c->cfg, head, headlen, buf);
  head[SHR_JOB_SCRIPT_HEAD] = c->cfg->streams_group;
  headlen[SHR_JOB_SCRIPT_HEAD] = strlen(c->cfg->streams_group);
  const char **argv;
  const size_t *argvlen;
  int argc = shr_outbox_argv(&c->sending, SHR_JOB_SCRIPT_HEAD + 1, head, headlen, &argv, &argvlen);
  if (argc < 0) {
    shr_outbox_append(&c->filling, &c->sending);
    c->retry_settle = 1;
    schedule_retry(c);
    return;
  }
  c->settling = 1;
  shr_redis_script_call(c->env->redis, c->settle_script, on_settle, c, 5, argc, argv, argvlen);
}

static void on_flush_idle(uv_idle_t *h) {
  shr_consumer_t *c = h->data;
  uv_idle_stop(h);
  flush(c);
}

static void on_retry_timer(uv_timer_t *h) {
  shr_consumer_t *c = h->data;
  if (c->retry_settle) {
    c->retry_settle = 0;
    flush(c);
  }
  batch_t *waiting = c->begin_waiting;
  c->begin_waiting = NULL;
  while (waiting) {
    batch_t *next = waiting->next;
    waiting->next = NULL;
    send_begin(c, waiting);
    waiting = next;
  }
  if (c->retry_read) {
    c->retry_read = 0;
    read_next(c);
  }
}

/* ---- lifecycle ---- */

static int load_runner(shr_consumer_t *c) {
  lua_State *L = c->env->L;
  if (shr_lua_require_field(L, "shield.runtime", "run_task") != 0) {
    shr_error("cannot load shield.runtime: %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return -1;
  }
  c->runner_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

static int make_context(shr_consumer_t *c, const char *version) {
  lua_State *L = c->env->L;
  if (shr_lua_require_field(L, "shield.runtime", "new_context") != 0) {
    shr_error("cannot load shield.runtime: %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return -1;
  }
  lua_pushstring(L, version);
  if (lua_pcall(L, 1, 1, 0) != 0) {
    shr_error("cannot build the task context: %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return -1;
  }
  luaL_unref(L, LUA_REGISTRYINDEX, c->ctx_ref);
  c->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

void shr_consumer_on_recycle(shr_consumer_t *c, shr_consumer_recycle_cb cb, void *data) {
  c->recycle = cb;
  c->recycle_data = data;
}

shr_consumer_t *shr_consumer_new(shr_env_t *env, shr_slot_t *slot, const char *name) {
  shr_consumer_t *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->env = env;
  c->slot = slot;
  c->cfg = env->config;
  snprintf(c->name, sizeof c->name, "%s", name);
  c->module_ref = c->ctx_ref = c->runner_ref = LUA_NOREF;
  c->pending_pass = 1;
  snprintf(c->pending_after, sizeof c->pending_after, "0");
  shr_outbox_init(&c->filling);
  shr_outbox_init(&c->sending);
  int n = c->cfg->pool_concurrency;
  c->tasks = calloc((size_t)n, sizeof *c->tasks);
  char err[512];
  c->begin_script = shr_job_script_load("begin", err, sizeof err);
  if (c->begin_script) c->settle_script = shr_job_script_load("settle", err, sizeof err);
  c->reader = shr_redis_new(env->loop, c->cfg->redis_url, "stream reader");
  if (!c->tasks || !c->begin_script || !c->settle_script || !c->reader || load_runner(c) != 0) {
    if (!c->begin_script || !c->settle_script) shr_error("%s", err);
    shr_consumer_free(c);
    return NULL;
  }
  for (int i = n - 1; i >= 0; i--) {
    c->tasks[i].next_free = c->free_tasks;
    c->free_tasks = &c->tasks[i];
  }
  uv_idle_init(env->loop, &c->flush_idle);
  uv_idle_init(env->loop, &c->drained_idle);
  uv_timer_init(env->loop, &c->retry_timer);
  c->flush_idle.data = c->drained_idle.data = c->retry_timer.data = c;
  c->handles_open = 3;
  return c;
}

int shr_consumer_start(shr_consumer_t *c, int module_ref, const char *version) {
  c->module_ref = module_ref;
  snprintf(c->version, sizeof c->version, "%s", version);
  if (make_context(c, version) != 0) return -1;
  ensure_group(c);
  read_next(c);
  return 0;
}

void shr_consumer_swap_script(shr_consumer_t *c, int module_ref, const char *version) {
  c->module_ref = module_ref;
  snprintf(c->version, sizeof c->version, "%s", version);
  make_context(c, version);
}

static void on_drained_idle(uv_idle_t *h) {
  shr_consumer_t *c = h->data;
  uv_idle_stop(h);
  if (c->drained) {
    shr_consumer_drained_cb cb = c->drained;
    c->drained = NULL;
    cb(c->drained_data);
  }
}

/* Reports the end of a drain from the next loop turn, never from inside one of
 * the consumer's own callbacks: the drained callback frees the consumer. */
static void check_drained(shr_consumer_t *c) {
  if (!c->draining || c->in_flight > 0 || c->reading || c->begins_in_flight || c->begin_waiting ||
      c->filling.count > 0 || c->settling || c->retry_settle)
    return;
  if (c->drained && !uv_is_active((uv_handle_t *)&c->drained_idle)) uv_idle_start(&c->drained_idle, on_drained_idle);
}

void shr_consumer_drain(shr_consumer_t *c, shr_consumer_drained_cb drained, void *data) {
  c->draining = 1;
  c->drained = drained;
  c->drained_data = data;
  /* A blocked XREADGROUP would hold the drain for up to the BLOCK time: drop
   * the reader; entries it delivered meanwhile stay pending for this consumer
   * and are re-read by the next worker in this slot. */
  if (c->reader) {
    c->stopping = 1;
    shr_redis_close(c->reader);
    c->reader = NULL;
  }
  check_drained(c);
}

static void on_handle_closed(uv_handle_t *h) {
  shr_consumer_t *c = h->data;
  if (--c->handles_open == 0) free(c);
}

void shr_consumer_free(shr_consumer_t *c) {
  lua_State *L = c->env->L;
  if (L) {
    luaL_unref(L, LUA_REGISTRYINDEX, c->ctx_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, c->runner_ref);
  }
  if (c->reader) shr_redis_close(c->reader);
  if (c->begin_script) shr_redis_script_free(c->begin_script);
  if (c->settle_script) shr_redis_script_free(c->settle_script);
  while (c->begin_waiting) {
    batch_t *next = c->begin_waiting->next;
    batch_free(c->begin_waiting);
    c->begin_waiting = next;
  }
  shr_outbox_free(&c->filling);
  shr_outbox_free(&c->sending);
  free(c->tasks);
  if (c->handles_open) {
    uv_close((uv_handle_t *)&c->flush_idle, on_handle_closed);
    uv_close((uv_handle_t *)&c->drained_idle, on_handle_closed);
    uv_close((uv_handle_t *)&c->retry_timer, on_handle_closed);
  } else {
    free(c);
  }
}
