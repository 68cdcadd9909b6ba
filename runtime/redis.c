#include "redis.h"

#include <assert.h>
#include <hiredis/async.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "log.h"
#include "redis_uv.h"

/* DOWN: waiting out the backoff, commands fail fast. CONNECTING: an attempt is
 * in progress (TCP, then AUTH/SELECT); commands wait in the connect queue.
 * READY: commands go straight to hiredis. CLOSED: everything answers "closed". */
enum { ST_DOWN, ST_CONNECTING, ST_READY, ST_CLOSED };

#define SOCKET_PATH_MAX 108 /* sockaddr_un's sun_path, terminating NUL included */

typedef struct cmd cmd_t;

typedef struct {
  uv_timer_t timer;
  cmd_t *cmd; /* the command it guards */
} watchdog_t;

struct cmd {
  shr_redis_t *r;
  shr_redis_cb cb;
  void *data;
  watchdog_t *wd; /* NULL unless the command has a timeout; closed once answered */
  cmd_t *next;    /* in the connect queue */
  char *fmt;      /* the formatted command while it waits in the queue; owned */
  size_t fmtlen;
  unsigned answered : 1, sent : 1;
};

typedef struct {
  shr_redis_connect_cb fn;
  void *data;
} hook_t;

struct shr_redis {
  uv_loop_t *loop;
  char *name;          /* owned */
  char *host;          /* owned; NULL for a Unix socket */
  int port;
  char *path;          /* owned: the Unix socket, or NULL */
  char where[280];     /* host:port or the socket path, for the log */
  char *user;          /* owned, NULL for plain AUTH <password> */
  char *password;      /* owned, NULL: no AUTH */
  int db;
  redisAsyncContext *ac; /* the connection or attempt; NULL when down */
  int state;
  int setup_left;        /* AUTH/SELECT replies awaited before READY */
  const char *kill_why;  /* a drop asked for inside a hiredis callback */
  uv_timer_t timer;      /* connect timeout, backoff, deferred drop and close */
  unsigned connect_timeout_ms;
  unsigned backoff_ms;
  cmd_t *queue_head, *queue_tail; /* commands waiting for READY */
  int pending;           /* commands not answered yet: they keep the loop alive */
  int depth;             /* > 0 inside a hiredis callback, where freeing ac is forbidden */
  const char *drop_err;  /* the answer of in-flight commands while we free ac */
  int failures;          /* consecutive failed attempts, to log only the first */
  hook_t *hooks;         /* owned */
  int nhooks;
  char *out;             /* owned: the RESP of the command being sent, reused */
  size_t out_cap;
  shr_redis_stats_t stats;
};

struct shr_redis_script {
  char *src; /* owned */
  size_t len;
  char sha[41]; /* "" until SCRIPT LOAD answered */
  int refs;     /* the owner plus calls and loads in flight */
  int loading;
};

static void on_timer(uv_timer_t *t);

/* ---- URL ---- */

static int unhex(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* A %-decoded copy of s[0..n), or NULL on a bad escape. */
static char *decode(const char *s, size_t n) {
  char *out = malloc(n + 1), *o = out;
  if (!out) return NULL;
  for (size_t i = 0; i < n; i++) {
    if (s[i] != '%') {
      *o++ = s[i];
      continue;
    }
    int hi = i + 2 < n ? unhex(s[i + 1]) : -1, lo = hi >= 0 ? unhex(s[i + 2]) : -1;
    if (lo < 0) {
      free(out);
      return NULL;
    }
    *o++ = (char)(hi * 16 + lo);
    i += 2;
  }
  *o = '\0';
  return out;
}

static int parse_number(const char *s, size_t n, long max, long *out) {
  if (n == 0 || n > 9) return -1;
  long v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  if (v > max) return -1;
  *out = v;
  return 0;
}

/* [[user]:password@] before the address; p moves past it. */
static const char *parse_credentials(shr_redis_t *r, const char **p, const char *end) {
  const char *at = NULL;
  for (const char *q = *p; q < end; q++)
    if (*q == '@') at = q;
  if (!at) return NULL;
  const char *colon = memchr(*p, ':', (size_t)(at - *p));
  if (!colon) return "expected [user]:password before @";
  if (colon > *p && !(r->user = decode(*p, (size_t)(colon - *p)))) return "bad %-escape in the user";
  if (!(r->password = decode(colon + 1, (size_t)(at - colon - 1)))) return "bad %-escape in the password";
  *p = at + 1;
  return NULL;
}

/* unix://[[user]:password@]/path/to/redis.sock[?db=N] (the form redis-py and
 * Lettuce read): a Redis on this host through its Unix socket. */
static const char *parse_unix_url(shr_redis_t *r, const char *p) {
  const char *end = p + strcspn(p, "?#");
  if (*end == '#') return "a fragment is not supported";
  const char *err = parse_credentials(r, &p, end);
  if (err) return err;
  if (*p != '/') return "the socket path must be absolute (unix:///path/to/redis.sock)";
  if ((size_t)(end - p) >= SOCKET_PATH_MAX) return "the socket path is too long";
  if (!(r->path = decode(p, (size_t)(end - p)))) return "bad %-escape in the socket path";
  long v = 0;
  if (*end == '?' && (strncmp(end, "?db=", 4) != 0 || parse_number(end + 4, strlen(end + 4), 1000000, &v) != 0))
    return "the only query is db=<database number>";
  r->db = (int)v;
  snprintf(r->where, sizeof r->where, "%s", r->path);
  return NULL;
}

/* redis://[[user]:password@]host[:port][/db] or a unix:// URL */
static const char *parse_url(shr_redis_t *r, const char *url) {
  static const char scheme[] = "redis://", unix_scheme[] = "unix://";
  if (strncmp(url, unix_scheme, sizeof unix_scheme - 1) == 0) return parse_unix_url(r, url + sizeof unix_scheme - 1);
  if (strncmp(url, scheme, sizeof scheme - 1) != 0) return "the URL must start with redis:// or unix://";
  const char *p = url + sizeof scheme - 1;
  const char *end = p + strcspn(p, "/?#");
  if (*end == '?' || *end == '#') return "query and fragment are not supported";
  const char *err = parse_credentials(r, &p, end);
  if (err) return err;
  const char *host = p, *host_end, *port = NULL;
  if (*p == '[') {
    host = p + 1;
    host_end = memchr(host, ']', (size_t)(end - host));
    if (!host_end) return "unterminated [ in the host";
    if (host_end + 1 < end) {
      if (host_end[1] != ':') return "bad port";
      port = host_end + 2;
    }
  } else {
    host_end = memchr(p, ':', (size_t)(end - p));
    if (host_end)
      port = host_end + 1;
    else
      host_end = end;
  }
  if (host_end == host) return "missing host";
  if (!(r->host = strndup(host, (size_t)(host_end - host)))) return "out of memory";
  long v = 6379;
  if (port && (parse_number(port, (size_t)(end - port), 65535, &v) != 0 || v == 0)) return "bad port";
  r->port = (int)v;
  v = 0;
  if (*end == '/' && end[1] && parse_number(end + 1, strlen(end + 1), 1000000, &v) != 0)
    return "the path must be a database number";
  r->db = (int)v;
  snprintf(r->where, sizeof r->where, "%s:%d", r->host, r->port);
  return NULL;
}

/* ---- commands ---- */

static void free_watchdog(uv_handle_t *h) { free(h->data); }

static void sync_ref(shr_redis_t *r) {
  if (r->ac) shr_redis_uv_set_ref(r->ac, r->pending > 0);
}

/* Delivers the one answer of c. c itself stays for the caller to free: hiredis
 * or the queue may still hold it. */
static void answer(cmd_t *c, redisReply *reply, const char *err) {
  shr_redis_t *r = c->r;
  assert(!c->answered);
  c->answered = 1;
  if (c->wd) {
    uv_timer_stop(&c->wd->timer);
    uv_close((uv_handle_t *)&c->wd->timer, free_watchdog);
    c->wd = NULL;
  }
  r->pending--;
  c->cb(r, reply, err, c->data);
  sync_ref(r);
}

static void cmd_free(cmd_t *c) {
  if (c->fmt) redisFreeCommand(c->fmt);
  free(c);
}

/* Answers c with err at once and frees it; the fail-fast path. */
static int fail(cmd_t *c, const char *err) {
  answer(c, NULL, err);
  cmd_free(c);
  return -1;
}

static void fail_queue(shr_redis_t *r, const char *err) {
  cmd_t *c;
  while ((c = r->queue_head)) {
    r->queue_head = c->next;
    if (!r->queue_head) r->queue_tail = NULL;
    if (!c->answered) answer(c, NULL, err);
    cmd_free(c);
  }
}

static void schedule(shr_redis_t *r, unsigned ms) { uv_timer_start(&r->timer, on_timer, ms, 0); }

/* The connection or attempt ac is gone or going (hiredis is freeing it, or we
 * are about to): forget it, fail what waited for it, plan the next attempt. */
static void lost(shr_redis_t *r, redisAsyncContext *ac, const char *why) {
  if (r->ac != ac) return;
  r->ac = NULL;
  int was = r->state;
  if (was == ST_CLOSED) {
    fail_queue(r, "closed");
    return;
  }
  r->state = ST_DOWN;
  if (was == ST_READY) {
    shr_warn("redis %s: connection to %s lost (%s); reconnecting", r->name, r->where, why);
  } else {
    r->stats.connect_failures++;
    if (r->failures++ == 0)
      shr_warn("redis %s: cannot connect to %s (%s); retrying", r->name, r->where, why);
    else
      shr_debug("redis %s: cannot connect to %s (%s)", r->name, r->where, why);
  }
  fail_queue(r, "redis: not connected");
  if (r->state != ST_DOWN) return; /* a callback closed the client */
  schedule(r, r->backoff_ms);
  r->backoff_ms = shr_backoff_next(r->backoff_ms, SHR_REDIS_BACKOFF_MIN_MS, SHR_REDIS_BACKOFF_MAX_MS);
}

/* Frees the current connection from outside hiredis: in-flight commands get
 * err (NULL: "redis: connection lost"). */
static void drop(shr_redis_t *r, const char *err, const char *why) {
  assert(r->depth == 0);
  redisAsyncContext *ac = r->ac;
  if (!ac) return;
  lost(r, ac, why);
  r->drop_err = err;
  redisAsyncFree(ac);
  r->drop_err = NULL;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata) {
  cmd_t *c = privdata;
  shr_redis_t *r = c->r;
  r->depth++;
  /* A NULL reply: hiredis is freeing ac, with every callback still pending. */
  if (!reply) lost(r, ac, ac->c.errstr[0] ? ac->c.errstr : "disconnected");
  if (!c->answered) answer(c, reply, reply ? NULL : r->drop_err ? r->drop_err : "redis: connection lost");
  cmd_free(c);
  r->depth--;
}

static cmd_t *cmd_new(shr_redis_t *r, shr_redis_cb cb, void *data) {
  cmd_t *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->r = r;
  c->cb = cb;
  c->data = data;
  r->pending++;
  return c;
}

/* Largest command buffer kept between commands; a bigger one (an enqueue of
 * large chunks) is freed after use. */
#define OUT_KEEP_BYTES (1u << 20)

static char *put_decimal(char *p, size_t v) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) *p++ = digits[--n];
  return p;
}

/* The RESP form of argv in r->out. hiredis' own formatter spends ~600
 * instructions an argument in sdscatfmt, and a worker's script calls carry ten
 * arguments per chunk. Returns the length, or -1 out of memory. */
static long format_argv(shr_redis_t *r, int argc, const char **argv, const size_t *argvlen) {
  size_t need = 32;
  for (int i = 0; i < argc; i++) need += (argvlen ? argvlen[i] : strlen(argv[i])) + 32;
  if (need > r->out_cap) {
    char *bigger = realloc(r->out, need);
    if (!bigger) return -1;
    r->out = bigger;
    r->out_cap = need;
  }
  char *p = r->out;
  *p++ = '*';
  p = put_decimal(p, (size_t)argc);
  for (int i = 0; i < argc; i++) {
    size_t len = argvlen ? argvlen[i] : strlen(argv[i]);
    memcpy(p, "\r\n$", 3);
    p = put_decimal(p + 3, len);
    memcpy(p, "\r\n", 2);
    memcpy(p + 2, argv[i], len);
    p += 2 + len;
  }
  memcpy(p, "\r\n", 3); /* the NUL too: hiredis scans the command with strchr */
  return (long)(p + 2 - r->out);
}

static int send_argv(cmd_t *c, int argc, const char **argv, const size_t *argvlen) {
  shr_redis_t *r = c->r;
  long len = format_argv(r, argc, argv, argvlen);
  if (len < 0) return fail(c, "redis: out of memory");
  int rc = redisAsyncFormattedCommand(r->ac, on_reply, c, r->out, (size_t)len);
  if (r->out_cap > OUT_KEEP_BYTES) {
    free(r->out);
    r->out = NULL;
    r->out_cap = 0;
  }
  if (rc != REDIS_OK) return fail(c, "redis: not connected");
  c->sent = 1;
  r->stats.commands_sent++;
  sync_ref(r);
  return 0;
}

static void on_watchdog(uv_timer_t *t) {
  cmd_t *c = ((watchdog_t *)t->data)->cmd;
  shr_redis_t *r = c->r;
  int in_flight = c->sent;
  r->stats.timeouts++;
  answer(c, NULL, "timeout");
  /* A command still queued was never sent: the connect timer covers that. A
   * sent one without a reply means a dead or half-open connection. */
  if (in_flight && r->state == ST_READY) drop(r, NULL, "no reply within the command timeout");
}

int shr_redis_command_timeout(shr_redis_t *r, shr_redis_cb cb, void *data, int argc, const char **argv,
                              const size_t *argvlen, unsigned timeout_ms) {
  assert(argc > 0);
  cmd_t *c = cmd_new(r, cb, data);
  if (!c) {
    cb(r, NULL, "redis: out of memory", data);
    return -1;
  }
  if (r->state == ST_CLOSED) return fail(c, "closed");
  if (r->state == ST_DOWN) return fail(c, "redis: not connected");
  if (timeout_ms) {
    if (!(c->wd = malloc(sizeof *c->wd))) return fail(c, "redis: out of memory");
    c->wd->cmd = c;
    uv_timer_init(r->loop, &c->wd->timer);
    c->wd->timer.data = c->wd;
    uv_timer_start(&c->wd->timer, on_watchdog, timeout_ms, 0);
  }
  if (r->state == ST_READY) return send_argv(c, argc, argv, argvlen);
  int len = redisFormatCommandArgv(&c->fmt, argc, argv, argvlen);
  if (len < 0) return fail(c, "redis: out of memory");
  c->fmtlen = (size_t)len;
  if (r->queue_tail)
    r->queue_tail->next = c;
  else
    r->queue_head = c;
  r->queue_tail = c;
  sync_ref(r);
  return 0;
}

int shr_redis_command(shr_redis_t *r, shr_redis_cb cb, void *data, int argc, const char **argv,
                      const size_t *argvlen) {
  return shr_redis_command_timeout(r, cb, data, argc, argv, argvlen, 0);
}

/* ---- replies ---- */

/* hiredis builds the replies of our connections with the functions below
 * instead of its own, which make an allocation per object and another per
 * string: here a reply (the root object, which a callback is given) is one
 * allocation, and its elements go in blocks it owns, each block twice the
 * size of the one before. hiredis only ever frees roots. A reply carries a
 * count of references, one for hiredis (dropped when it frees the reply after
 * the callback) and one per keep, so a callback keeps a reply without copying
 * it. */
typedef struct block {
  struct block *next; /* the block filled before this one */
  size_t used, cap;   /* bytes of the room after this header */
} block_t;

typedef struct {
  int refs;
  block_t *blocks; /* owned: the one being filled, then older ones */
  redisReply reply;
} root_t;

/* A first block's room for each element of the root: a short string's object
 * and text. */
#define ROOM_PER_ELEMENT 64
#define ALIGNED(n) (((n) + 7) & ~(size_t)7)

static root_t *root_of(redisReply *r) { return (root_t *)((char *)r - offsetof(root_t, reply)); }

static root_t *task_root(const redisReadTask *task) {
  while (task->parent) task = task->parent;
  return root_of(task->obj);
}

static void *root_alloc(root_t *root, size_t size) {
  size = ALIGNED(size);
  block_t *b = root->blocks;
  if (!b || b->cap - b->used < size) {
    size_t cap = b ? 2 * b->cap : root->reply.elements * ROOM_PER_ELEMENT;
    if (cap < size) cap = size;
    if (!(b = malloc(sizeof *b + cap))) return NULL;
    *b = (block_t){root->blocks, 0, cap};
    root->blocks = b;
  }
  void *p = (char *)(b + 1) + b->used;
  b->used += size;
  return p;
}

/* An object of type with extra bytes right after it (uninitialized): a root,
 * or an element in its root's blocks, set in its parent. (task->type is the
 * protocol's: a nil bulk string is a string task.) */
static redisReply *new_object(const redisReadTask *task, int type, size_t extra) {
  redisReply *r;
  if (!task->parent) {
    root_t *root = malloc(sizeof *root + extra);
    if (!root) return NULL;
    root->refs = 1;
    root->blocks = NULL;
    r = &root->reply;
  } else {
    if (!(r = root_alloc(task_root(task), sizeof *r + extra))) return NULL;
    ((redisReply *)task->parent->obj)->element[task->idx] = r;
  }
  *r = (redisReply){.type = type};
  return r;
}

static void *create_string(const redisReadTask *task, char *str, size_t len) {
  redisReply *r = new_object(task, task->type, len + 1);
  if (!r) return NULL;
  r->str = (char *)(r + 1);
  memcpy(r->str, str, len);
  r->str[len] = '\0';
  r->len = len;
  return r;
}

static void *create_array(const redisReadTask *task, int elements) {
  size_t size = (size_t)elements * sizeof(redisReply *);
  redisReply *r = new_object(task, REDIS_REPLY_ARRAY, size);
  if (!r) return NULL;
  r->elements = (size_t)elements;
  if (elements > 0) {
    r->element = (redisReply **)(r + 1);
    memset(r->element, 0, size); /* a reply cut short by an error is freed with its holes */
  }
  return r;
}

static void *create_integer(const redisReadTask *task, long long value) {
  redisReply *r = new_object(task, REDIS_REPLY_INTEGER, 0);
  if (r) r->integer = value;
  return r;
}

static void *create_nil(const redisReadTask *task) { return new_object(task, REDIS_REPLY_NIL, 0); }

/* hiredis' free, and ours: a reply goes with its last reference. */
static void release(void *reply) {
  if (!reply) return;
  root_t *root = root_of(reply);
  if (--root->refs > 0) return;
  for (block_t *b = root->blocks, *older; b; b = older) {
    older = b->next;
    free(b);
  }
  free(root);
}

static redisReplyObjectFunctions reply_functions = {create_string, create_array, create_integer, create_nil,
                                                    release};

redisReply *shr_redis_reply_keep(redisReply *reply) {
  root_of(reply)->refs++;
  return reply;
}

void shr_redis_reply_free(redisReply *reply) { release(reply); }

/* ---- connection ---- */

static void ready(shr_redis_t *r) {
  uv_timer_stop(&r->timer);
  r->state = ST_READY;
  r->backoff_ms = SHR_REDIS_BACKOFF_MIN_MS;
  r->failures = 0;
  if (r->stats.connects++ > 0) {
    r->stats.reconnects++;
    shr_info("redis %s: reconnected to %s", r->name, r->where);
  } else {
    shr_debug("redis %s: connected to %s", r->name, r->where);
  }
  /* Hooks first, so their setup precedes the commands that waited. */
  for (int i = 0; i < r->nhooks && r->state == ST_READY; i++) r->hooks[i].fn(r, r->hooks[i].data);
  cmd_t *c;
  while (r->state == ST_READY && (c = r->queue_head)) {
    r->queue_head = c->next;
    if (!r->queue_head) r->queue_tail = NULL;
    if (c->answered) {
      cmd_free(c);
    } else if (redisAsyncFormattedCommand(r->ac, on_reply, c, c->fmt, c->fmtlen) != REDIS_OK) {
      fail(c, "redis: not connected");
    } else {
      redisFreeCommand(c->fmt);
      c->fmt = NULL;
      c->sent = 1;
      r->stats.commands_sent++;
    }
  }
  sync_ref(r);
}

/* AUTH and SELECT answers; data names the failure ("AUTH failed"). */
static void on_setup_reply(shr_redis_t *r, redisReply *reply, const char *err, void *data) {
  if (!reply) return; /* the attempt failed: lost() saw to it */
  if (reply->type == REDIS_REPLY_ERROR) {
    shr_error("redis %s: %s: %s", r->name, (const char *)data, reply->str);
    /* Freeing ac is not allowed in here: drop from the timer. */
    r->kill_why = data;
    schedule(r, 0);
  } else if (--r->setup_left == 0 && r->state == ST_CONNECTING && !r->kill_why) {
    ready(r);
  }
}

static void send_setup(shr_redis_t *r, const char *what, int argc, const char **argv) {
  cmd_t *c = cmd_new(r, on_setup_reply, (void *)what);
  if (!c) return; /* the connect timer will retry */
  r->setup_left++;
  send_argv(c, argc, argv, NULL);
}

static void on_connect(const redisAsyncContext *cac, int status) {
  redisAsyncContext *ac = (redisAsyncContext *)cac;
  shr_redis_t *r = ac->data;
  r->depth++;
  if (status != REDIS_OK)
    lost(r, ac, ac->c.errstr[0] ? ac->c.errstr : "connect failed");
  else if (r->ac == ac && r->state == ST_CONNECTING && r->setup_left == 0)
    ready(r);
  r->depth--;
}

static void on_disconnect(const redisAsyncContext *cac, int status) {
  redisAsyncContext *ac = (redisAsyncContext *)cac;
  shr_redis_t *r = ac->data;
  r->depth++;
  lost(r, ac, ac->c.errstr[0] ? ac->c.errstr : "disconnected");
  r->depth--;
}

static void connect_now(shr_redis_t *r) {
  r->state = ST_CONNECTING;
  r->kill_why = NULL;
  r->setup_left = 0;
  redisAsyncContext *ac = r->path ? redisAsyncConnectUnix(r->path) : redisAsyncConnect(r->host, r->port);
  if (!ac) {
    r->state = ST_DOWN;
    shr_warn("redis %s: out of memory while connecting", r->name);
    schedule(r, r->backoff_ms);
    return;
  }
  r->ac = ac;
  ac->data = r;
  ac->c.reader->fn = &reply_functions;
  const char *why = NULL;
  if (ac->err)
    why = ac->errstr;
  else if (!r->path && redisEnableKeepAlive(&ac->c) != REDIS_OK)
    why = "cannot enable TCP keepalive";
  else if (shr_redis_uv_attach(ac, r->loop) != 0)
    why = "cannot watch the socket";
  if (why) {
    char copy[160];
    snprintf(copy, sizeof copy, "%s", why);
    lost(r, ac, copy);
    redisAsyncFree(ac);
    return;
  }
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  if (r->password) {
    const char *argv[] = {"AUTH", r->user ? r->user : r->password, r->password};
    send_setup(r, "AUTH failed", r->user ? 3 : 2, argv);
  }
  if (r->db) {
    char db[16];
    snprintf(db, sizeof db, "%d", r->db);
    const char *argv[] = {"SELECT", db};
    send_setup(r, "SELECT failed", 2, argv);
  }
  schedule(r, r->connect_timeout_ms);
  sync_ref(r);
}

static void free_client(uv_handle_t *h) {
  shr_redis_t *r = h->data;
  free(r->name);
  free(r->host);
  free(r->path);
  free(r->user);
  free(r->password);
  free(r->hooks);
  free(r->out);
  free(r);
}

static void on_timer(uv_timer_t *t) {
  shr_redis_t *r = t->data;
  switch (r->state) {
  case ST_CLOSED: /* a close asked for inside a callback */
    drop(r, "closed", "closed");
    uv_close((uv_handle_t *)&r->timer, free_client);
    break;
  case ST_DOWN:
    connect_now(r);
    break;
  case ST_CONNECTING:
    drop(r, NULL, r->kill_why ? r->kill_why : "connect timeout");
    break;
  default:
    break;
  }
}

shr_redis_t *shr_redis_new(uv_loop_t *loop, const char *url, const char *name) {
  shr_redis_t *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->loop = loop;
  r->connect_timeout_ms = SHR_REDIS_CONNECT_TIMEOUT_MS;
  r->backoff_ms = SHR_REDIS_BACKOFF_MIN_MS;
  r->name = strdup(name);
  const char *err = r->name ? parse_url(r, url) : "out of memory";
  if (err) {
    shr_error("redis %s: bad URL %s: %s", name, url, err);
    free(r->name);
    free(r->host);
    free(r->path);
    free(r->user);
    free(r->password);
    free(r);
    return NULL;
  }
  uv_timer_init(loop, &r->timer);
  r->timer.data = r;
  /* Reconnecting in the background must not keep a finished loop alive. */
  uv_unref((uv_handle_t *)&r->timer);
  connect_now(r);
  return r;
}

void shr_redis_set_connect_timeout(shr_redis_t *r, unsigned timeout_ms) {
  r->connect_timeout_ms = timeout_ms;
  if (r->state == ST_CONNECTING && !r->kill_why) schedule(r, timeout_ms);
}

int shr_redis_on_connect(shr_redis_t *r, shr_redis_connect_cb fn, void *data) {
  hook_t *hooks = realloc(r->hooks, (size_t)(r->nhooks + 1) * sizeof *hooks);
  if (!hooks) return -1;
  hooks[r->nhooks++] = (hook_t){fn, data};
  r->hooks = hooks;
  return 0;
}

int shr_redis_connected(const shr_redis_t *r) { return r->state == ST_READY; }

const shr_redis_stats_t *shr_redis_stats(const shr_redis_t *r) { return &r->stats; }

void shr_redis_close(shr_redis_t *r) {
  assert(r->state != ST_CLOSED);
  r->state = ST_CLOSED;
  fail_queue(r, "closed");
  if (r->ac && r->depth > 0) {
    schedule(r, 0);
    return;
  }
  redisAsyncContext *ac = r->ac;
  r->ac = NULL;
  if (ac) {
    r->drop_err = "closed";
    redisAsyncFree(ac);
    r->drop_err = NULL;
  }
  uv_close((uv_handle_t *)&r->timer, free_client);
}

/* ---- scripts ---- */

typedef struct {
  shr_redis_script_t *s;
  shr_redis_cb cb;
  void *data;
  int nkeys, argc;
  const char **argv; /* a copy for the NOSCRIPT retry, in the same block */
  size_t *argvlen;
  int retried;
} script_call_t;

shr_redis_script_t *shr_redis_script_new(const char *source, size_t len) {
  shr_redis_script_t *s = calloc(1, sizeof *s);
  if (!s || !(s->src = malloc(len + 1))) {
    free(s);
    return NULL;
  }
  memcpy(s->src, source, len);
  s->src[len] = '\0';
  s->len = len;
  s->refs = 1;
  return s;
}

void shr_redis_script_free(shr_redis_script_t *s) {
  if (--s->refs > 0) return;
  free(s->src);
  free(s);
}

static void on_script_loaded(shr_redis_t *r, redisReply *reply, const char *err, void *data) {
  shr_redis_script_t *s = data;
  s->loading = 0;
  if (reply && reply->type == REDIS_REPLY_STRING && reply->len == 40) memcpy(s->sha, reply->str, 41);
  shr_redis_script_free(s);
}

static void on_script_reply(shr_redis_t *r, redisReply *reply, const char *err, void *data);

/* EVALSHA (use_sha) or EVAL with the source, then nkeys and argv. */
static int script_send(shr_redis_t *r, script_call_t *sc, int use_sha, const char **argv, const size_t *argvlen) {
  int n = sc->argc + 3;
  const char **v = malloc((size_t)n * sizeof *v);
  size_t *l = malloc((size_t)n * sizeof *l);
  if (!v || !l) {
    free(v);
    free(l);
    sc->retried = 1;
    on_script_reply(r, NULL, "redis: out of memory", sc);
    return -1;
  }
  char nkeys[16];
  snprintf(nkeys, sizeof nkeys, "%d", sc->nkeys);
  v[0] = use_sha ? "EVALSHA" : "EVAL";
  l[0] = strlen(v[0]);
  v[1] = use_sha ? sc->s->sha : sc->s->src;
  l[1] = use_sha ? 40 : sc->s->len;
  v[2] = nkeys;
  l[2] = strlen(nkeys);
  for (int i = 0; i < sc->argc; i++) {
    v[i + 3] = argv[i];
    l[i + 3] = argvlen ? argvlen[i] : strlen(argv[i]);
  }
  int rc = shr_redis_command(r, on_script_reply, sc, n, v, l);
  free(v);
  free(l);
  return rc;
}

static void on_script_reply(shr_redis_t *r, redisReply *reply, const char *err, void *data) {
  script_call_t *sc = data;
  if (reply && reply->type == REDIS_REPLY_ERROR && !sc->retried && strncmp(reply->str, "NOSCRIPT", 8) == 0) {
    /* Redis restarted (or flushed its scripts): EVAL sends the source, which
     * also puts it back in the cache for the next EVALSHA. */
    sc->retried = 1;
    r->stats.script_reloads++;
    script_send(r, sc, 0, sc->argv, sc->argvlen);
    return;
  }
  sc->cb(r, reply, err, sc->data);
  shr_redis_script_free(sc->s);
  free(sc);
}

/* The call with, when a retry is possible, a copy of its arguments in one block. */
static script_call_t *script_call_new(int copy, int argc, const char **argv, const size_t *argvlen) {
  size_t size = sizeof(script_call_t), total = 0;
  if (copy) {
    for (int i = 0; i < argc; i++) total += (argvlen ? argvlen[i] : strlen(argv[i])) + 1;
    size += (size_t)argc * (sizeof(char *) + sizeof(size_t)) + total;
  }
  /* Only the header is zeroed: the copy behind it is written in full. */
  script_call_t *sc = malloc(size);
  if (!sc) return NULL;
  memset(sc, 0, sizeof *sc);
  if (!copy) return sc;
  sc->argv = (const char **)(sc + 1);
  sc->argvlen = (size_t *)(sc->argv + argc);
  char *p = (char *)(sc->argvlen + argc);
  for (int i = 0; i < argc; i++) {
    size_t len = argvlen ? argvlen[i] : strlen(argv[i]);
    memcpy(p, argv[i], len);
    p[len] = '\0';
    sc->argv[i] = p;
    sc->argvlen[i] = len;
    p += len + 1;
  }
  return sc;
}

int shr_redis_script_call(shr_redis_t *r, shr_redis_script_t *s, shr_redis_cb cb, void *data, int nkeys,
                          int argc, const char **argv, const size_t *argvlen) {
  assert(nkeys >= 0 && nkeys <= argc);
  int use_sha = s->sha[0] != '\0';
  script_call_t *sc = script_call_new(use_sha, argc, argv, argvlen);
  if (!sc) {
    cb(r, NULL, "redis: out of memory", data);
    return -1;
  }
  sc->s = s;
  s->refs++;
  sc->cb = cb;
  sc->data = data;
  sc->nkeys = nkeys;
  sc->argc = argc;
  sc->retried = !use_sha;
  if (!use_sha && !s->loading && shr_redis_connected(r)) {
    /* Learn the SHA-1 once; until then calls send the source. */
    const char *load[] = {"SCRIPT", "LOAD", s->src};
    const size_t loadlen[] = {6, 4, s->len};
    s->loading = 1;
    s->refs++;
    shr_redis_command(r, on_script_loaded, s, 3, load, loadlen);
  }
  return script_send(r, sc, use_sha, argv, argvlen);
}
