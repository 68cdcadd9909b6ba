#include "sse.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "lua_host.h"
#include "redis.h"

#define KEEPALIVE_MS 15000
#define READ_BLOCK_MS 15000
#define READ_COUNT "1000"
#define CATCHUP_COUNT 500
#define RETRY_MS 1000
/* Without Last-Event-ID, a job's stream starts this long before its creation
 * (the caller's clock and the Redis server's may disagree a little). */
#define JOB_START_SLACK_MS 60000

typedef struct sub {
  shr_sse_t *hub;        /* NULL once the hub closed under a fetch in flight */
  shr_http_req_t *req;
  char job_id[64];       /* "" = every event */
  char cursor[48];       /* the last entry id this client has (or its start) */
  int live;              /* caught up: the reader's fan-out feeds it */
  int fetching;          /* an XRANGE (or the job lookup) is in flight */
  int gone;              /* the client went away or was dropped */
  struct sub *prev, *next;
} sub_t;

struct shr_sse {
  shr_env_t *env;
  shr_redis_t *reader;   /* XREAD BLOCK holds a connection of its own */
  char last_id[48];      /* the newest entry the reader has seen */
  int ready;             /* last_id is known */
  sub_t *subs;
  uv_timer_t keepalive;
  uv_timer_t retry;
  int handles_open; /* freed when both timers have closed */
  int events_ref;   /* the shield.events module in the supervisor's Lua state */
};

static void read_next(shr_sse_t *h);
static void fetch(sub_t *s);

/* ---- ids ---- */

static int parse_id(const char *id, unsigned long long *ms, unsigned long long *seq) {
  char *end;
  *ms = strtoull(id, &end, 10);
  if (end == id) return -1;
  *seq = 0;
  if (*end == '-') {
    const char *p = end + 1;
    *seq = strtoull(p, &end, 10);
    if (end == p) return -1;
  }
  return *end == '\0' ? 0 : -1;
}

static int compare_ids(const char *a, const char *b) {
  unsigned long long am, as, bm, bs;
  if (parse_id(a, &am, &as) != 0 || parse_id(b, &bm, &bs) != 0) return 0;
  if (am != bm) return am < bm ? -1 : 1;
  return as < bs ? -1 : as > bs;
}

/* ---- subscribers ---- */

static void sub_free(sub_t *s) {
  if (s->hub) {
    if (s->prev)
      s->prev->next = s->next;
    else
      s->hub->subs = s->next;
    if (s->next) s->next->prev = s->prev;
  }
  shr_http_stream_end(s->req);
  free(s);
}

/* The client is gone (or too slow): end its stream now, or once its fetch
 * in flight comes back. */
static void sub_drop(sub_t *s) {
  s->gone = 1;
  if (!s->fetching) sub_free(s);
}

static void on_client_close(shr_http_req_t *req, void *data) { sub_drop(data); }

static int sub_write(sub_t *s, const char *text, size_t len) {
  if (s->gone) return -1;
  if (shr_http_stream_write(s->req, text, len) != 0) {
    sub_drop(s);
    return -1;
  }
  return 0;
}

/* ---- events ---- */

typedef struct {
  const char *id, *type, *job, *data;
} event_t;

/* One entry ([id, [field, value, ...]]) of the events stream; 0, or -1 if it
 * has not that shape. The strings point into the reply. */
static int parse_entry(const redisReply *entry, event_t *ev) {
  if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 || !entry->element[0]->str) return -1;
  const redisReply *f = entry->element[1];
  if (f->type != REDIS_REPLY_ARRAY) return -1;
  *ev = (event_t){.id = entry->element[0]->str, .type = "", .job = "", .data = "{}"};
  for (size_t i = 0; i + 1 < f->elements; i += 2) {
    const char *k = f->element[i]->str, *v = f->element[i + 1]->str;
    if (!k || !v) continue;
    if (strcmp(k, "type") == 0)
      ev->type = v;
    else if (strcmp(k, "job_id") == 0)
      ev->job = v;
    else if (strcmp(k, "data") == 0)
      ev->data = v;
  }
  return 0;
}

/* Passes ev's payload through the script's event() hook (shield.events.shape):
 * leaves one value on the supervisor's Lua stack, which ev->data may point
 * into until the caller pops it. With no hook, nil and no copy of the data. */
static void shape(shr_sse_t *h, event_t *ev) {
  lua_State *L = h->env->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->events_ref);
  lua_getfield(L, -1, "hook");
  int hooked = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (!hooked) {
    lua_pop(L, 1);
    lua_pushnil(L);
    return;
  }
  lua_getfield(L, -1, "shape");
  lua_remove(L, -2);
  lua_pushstring(L, ev->type);
  lua_pushstring(L, ev->data);
  if (lua_pcall(L, 2, 1, 0) != 0) {
    shr_warn("shaping a %s event: %s", ev->type, lua_tostring(L, -1));
    lua_pop(L, 1);
    lua_pushnil(L);
  }
  if (lua_type(L, -1) == LUA_TSTRING) ev->data = lua_tostring(L, -1);
}

static int wants(const sub_t *s, const event_t *ev) { return !s->job_id[0] || strcmp(s->job_id, ev->job) == 0; }

/* ev as an SSE message to s, if it is for s. */
static void send_event(sub_t *s, const event_t *ev) {
  snprintf(s->cursor, sizeof s->cursor, "%s", ev->id);
  if (!wants(s, ev)) return;
  size_t need = strlen(ev->id) + strlen(ev->type) + strlen(ev->data) + 32;
  char stack[2048];
  char *text = need <= sizeof stack ? stack : malloc(need);
  if (!text) return;
  int n = snprintf(text, need, "id: %s\nevent: %s\ndata: %s\n\n", ev->id, ev->type, ev->data);
  sub_write(s, text, (size_t)n);
  if (text != stack) free(text);
}

/* One entry of a catch-up page to s. */
static void deliver(sub_t *s, const redisReply *entry) {
  event_t ev;
  if (parse_entry(entry, &ev) != 0) return;
  int shaped = wants(s, &ev);
  if (shaped) shape(s->hub, &ev);
  send_event(s, &ev);
  if (shaped) lua_pop(s->hub->env->L, 1);
}

/* ---- catching up with XRANGE ---- */

static void on_fetch(shr_redis_t *r, redisReply *reply, const char *err, void *data) {
  sub_t *s = data;
  if (s->gone || !s->hub) {
    sub_free(s);
    return;
  }
  if (!reply || reply->type != REDIS_REPLY_ARRAY) {
    /* Redis is away: the client reconnects with Last-Event-ID later. */
    s->fetching = 0;
    sub_drop(s);
    return;
  }
  /* Still "fetching" while delivering: a write that drops a slow client only
   * marks it gone, and it is freed here, after the loop. */
  for (size_t i = 0; i < reply->elements && !s->gone; i++) deliver(s, reply->element[i]);
  s->fetching = 0;
  if (s->gone) {
    sub_free(s);
    return;
  }
  shr_sse_t *h = s->hub;
  if ((int)reply->elements == CATCHUP_COUNT || (h->ready && compare_ids(h->last_id, s->cursor) > 0)) {
    fetch(s);
    return;
  }
  s->live = 1;
}

static void fetch(sub_t *s) {
  char start[64], count[16];
  snprintf(start, sizeof start, "(%s", s->cursor);
  snprintf(count, sizeof count, "%d", CATCHUP_COUNT);
  const char *argv[] = {"XRANGE", s->hub->env->config->streams_events, start, "+", "COUNT", count};
  s->fetching = 1;
  shr_redis_command(s->hub->env->redis, on_fetch, s, 6, argv, NULL);
}

static void on_job_created(shr_redis_t *r, redisReply *reply, const char *err, void *data) {
  sub_t *s = data;
  s->fetching = 0;
  if (s->gone || !s->hub) {
    sub_free(s);
    return;
  }
  if (reply && reply->type == REDIS_REPLY_STRING) {
    unsigned long long created = strtoull(reply->str, NULL, 10);
    unsigned long long start = created > JOB_START_SLACK_MS ? created - JOB_START_SLACK_MS : 0;
    snprintf(s->cursor, sizeof s->cursor, "%llu-0", start);
  } else if (s->hub->ready) {
    /* Unknown (or expired) job: from now on. */
    snprintf(s->cursor, sizeof s->cursor, "%s", s->hub->last_id);
  }
  fetch(s);
}

static int valid_job_id(const char *id) {
  size_t n = strlen(id);
  if (n == 0 || n > 63) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f') || id[i] == '-')) return 0;
  return 1;
}

void shr_sse_subscribe(shr_sse_t *h, shr_http_req_t *req) {
  char job[256] = "";
  int jl = shr_http_req_param(req, "job_id", job, sizeof job);
  if (jl == -2 || (jl >= 0 && !valid_job_id(job))) {
    shr_http_problem(req, 400, "Bad Request", "job_id: not a job id");
    return;
  }
  const char *last = shr_http_req_header(req, "Last-Event-ID");
  unsigned long long ms, seq;
  if (last && (strlen(last) >= 48 || parse_id(last, &ms, &seq) != 0)) {
    shr_http_problem(req, 400, "Bad Request", "Last-Event-ID: not an event id");
    return;
  }
  sub_t *s = calloc(1, sizeof *s);
  if (!s) {
    shr_http_problem(req, 503, "Service Unavailable", "out of memory");
    return;
  }
  s->hub = h;
  s->req = req;
  if (jl > 0) snprintf(s->job_id, sizeof s->job_id, "%s", job);
  s->next = h->subs;
  if (h->subs) h->subs->prev = s;
  h->subs = s;
  if (shr_http_stream_start(req, 200,
                            "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                            "X-Accel-Buffering: no\r\n") != 0 ||
      shr_http_req_on_close(req, on_client_close, s) != 0) {
    sub_drop(s);
    return;
  }
  static const char hello[] = "retry: 2000\n\n";
  if (sub_write(s, hello, sizeof hello - 1) != 0) return;
  if (last) {
    snprintf(s->cursor, sizeof s->cursor, "%s", last);
    fetch(s);
  } else if (s->job_id[0]) {
    char key[96];
    snprintf(key, sizeof key, "job:%s", s->job_id);
    const char *argv[] = {"HGET", key, "created_at"};
    s->fetching = 1;
    shr_redis_command(h->env->redis, on_job_created, s, 3, argv, NULL);
  } else {
    snprintf(s->cursor, sizeof s->cursor, "%s", h->ready ? h->last_id : "0-0");
    if (h->ready)
      s->live = 1;
    else
      fetch(s);
  }
}

/* ---- the reader ---- */

static void on_retry(uv_timer_t *t) { read_next(t->data); }

/* A live entry to every subscriber following live, shaped once, when the
 * first subscriber that wants it is found. */
static void fan_out(shr_sse_t *h, event_t *ev) {
  int shaped = 0;
  for (sub_t *s = h->subs, *next; s; s = next) {
    next = s->next;
    if (!s->live || compare_ids(ev->id, s->cursor) <= 0) continue;
    if (!shaped && wants(s, ev)) {
      shape(h, ev);
      shaped = 1;
    }
    send_event(s, ev);
  }
  if (shaped) lua_pop(h->env->L, 1);
}

static void on_read(shr_redis_t *r, redisReply *reply, const char *err, void *data) {
  shr_sse_t *h = data;
  if (!h->reader) return; /* closing */
  if (!reply || reply->type == REDIS_REPLY_ERROR) {
    uv_timer_start(&h->retry, on_retry, RETRY_MS, 0);
    return;
  }
  if (!h->ready) {
    /* The answer to XREVRANGE + - COUNT 1: where the live stream starts. */
    h->ready = 1;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1)
      snprintf(h->last_id, sizeof h->last_id, "%s", reply->element[0]->element[0]->str);
    read_next(h);
    return;
  }
  if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1) {
    const redisReply *entries = reply->element[0]->element[1];
    for (size_t i = 0; i < entries->elements; i++) {
      event_t ev;
      if (parse_entry(entries->element[i], &ev) != 0) continue;
      fan_out(h, &ev);
      snprintf(h->last_id, sizeof h->last_id, "%s", ev.id);
    }
  }
  read_next(h);
}

static void read_next(shr_sse_t *h) {
  const char *events = h->env->config->streams_events;
  unsigned watchdog = READ_BLOCK_MS + 10000;
  if (!h->ready) {
    const char *argv[] = {"XREVRANGE", events, "+", "-", "COUNT", "1"};
    shr_redis_command_timeout(h->reader, on_read, h, 6, argv, NULL, watchdog);
    return;
  }
  char block[16];
  snprintf(block, sizeof block, "%d", READ_BLOCK_MS);
  const char *argv[] = {"XREAD", "COUNT", READ_COUNT, "BLOCK", block, "STREAMS", events, h->last_id};
  shr_redis_command_timeout(h->reader, on_read, h, 8, argv, NULL, watchdog);
}

static void on_keepalive(uv_timer_t *t) {
  shr_sse_t *h = t->data;
  static const char comment[] = ": keepalive\n\n";
  for (sub_t *s = h->subs, *next; s; s = next) {
    next = s->next;
    sub_write(s, comment, sizeof comment - 1);
  }
}

shr_sse_t *shr_sse_new(shr_env_t *env) {
  shr_sse_t *h = calloc(1, sizeof *h);
  if (!h) return NULL;
  h->env = env;
  snprintf(h->last_id, sizeof h->last_id, "0-0");
  if (shr_lua_require(env->L, "shield.events") != 0) {
    shr_error("events: %s", lua_tostring(env->L, -1));
    lua_pop(env->L, 1);
    free(h);
    return NULL;
  }
  h->events_ref = luaL_ref(env->L, LUA_REGISTRYINDEX);
  h->reader = shr_redis_new(env->loop, env->config->redis_url, "events reader");
  if (!h->reader) {
    luaL_unref(env->L, LUA_REGISTRYINDEX, h->events_ref);
    free(h);
    return NULL;
  }
  uv_timer_init(env->loop, &h->keepalive);
  uv_timer_init(env->loop, &h->retry);
  h->keepalive.data = h->retry.data = h;
  uv_timer_start(&h->keepalive, on_keepalive, KEEPALIVE_MS, KEEPALIVE_MS);
  read_next(h);
  return h;
}

static void on_timer_closed(uv_handle_t *handle) {
  shr_sse_t *h = handle->data;
  if (--h->handles_open == 0) free(h);
}

void shr_sse_close(shr_sse_t *h) {
  shr_redis_t *reader = h->reader;
  h->reader = NULL;
  shr_redis_close(reader);
  luaL_unref(h->env->L, LUA_REGISTRYINDEX, h->events_ref);
  while (h->subs) {
    sub_t *s = h->subs;
    h->subs = s->next;
    s->prev = s->next = NULL;
    s->hub = NULL;
    s->gone = 1;
    if (!s->fetching) {
      shr_http_stream_end(s->req);
      free(s);
    }
  }
  h->handles_open = 2;
  uv_close((uv_handle_t *)&h->keepalive, on_timer_closed);
  uv_close((uv_handle_t *)&h->retry, on_timer_closed);
}
