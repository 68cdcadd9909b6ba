#include "pg.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "log.h"
#include "pg_stmt.h"

#define CONNECT_TIMEOUT_MS 10000 /* when the conninfo sets no connect_timeout */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
/* How long a cancelled query may take to stop before its session is reset. */
#define CANCEL_GRACE_MS 1000
#define ERR_MAX 512

enum {
  CONN_CLOSED,     /* no session */
  CONN_CONNECTING, /* PQconnectPoll in progress */
  CONN_IDLE,
  CONN_BUSY,       /* a query in flight */
  CONN_DRAINING,   /* a cancelled query ended; its PQcancel has not returned yet */
};

/* The protocol steps of a query. One with parameters runs as a named
 * prepared statement of its session, so the server parses and plans it once
 * per session (and again as pg_stmt.h schedules), not per call: a miss first
 * prepares it, after deallocating a stale statement or, when the session has
 * SHR_PG_STMTS_MAX, the least recently used one. */
enum {
  STEP_SIMPLE,     /* no parameters: the simple protocol (scripts of several statements) */
  STEP_DEALLOCATE, /* DEALLOCATE the victim (stale or least recently used) in stmt */
  STEP_PREPARE,    /* preparing sql as stmt */
  STEP_EXECUTE,    /* executing the prepared stmt */
};

/* A query, an acquire (acb set) or the pool's own ROLLBACK (no callback). */
typedef struct query {
  struct query *prev, *next; /* the FIFO or the completion list */
  shr_pg_cb cb;
  shr_pg_acquire_cb acb;
  void *data;
  shr_pg_conn_t *granted; /* acquire: the connection pinned for it */
  const char *err;        /* the failure of a deferred completion */
  int err_owned;
  int cancelled;
  int step;
  int reprepared;              /* prepared again once after its statement was gone */
  char stmt[SHR_PG_STMT_NAME]; /* the statement of the step */
  int nparams;
  const char *sql;            /* in the same allocation */
  const char *const *values;  /* in the same allocation */
  const int *lengths, *formats; /* same; NULL when every value is text */
} query_t;

struct shr_pg_conn {
  shr_pg_pool_t *pool;
  PGconn *pg;        /* owned */
  uv_poll_t *poll;   /* owned; freed in its close callback */
  int poll_fd;
  uv_timer_t timer;  /* connect timeout, then cancel grace */
  int state;
  int poll_events;   /* what the watcher was started with */
  int pinned;        /* by shr_pg_acquire; CLOSED and pinned: the session was lost */
  int had_session;
  unsigned gen;      /* sessions opened: a late PQcancel of an old one is ignored */
  int cancel_running;
  query_t *q;        /* in flight; owned */
  PGresult *res;     /* what the query in flight answered so far; owned */
  shr_pg_stmts_t stmts; /* the session's prepared statements */
};

typedef struct {
  query_t *head, *tail;
} qlist_t;

struct shr_pg_pool {
  uv_loop_t *loop;
  char *conninfo;    /* owned */
  uint64_t connect_timeout_ms;
  int size;
  shr_pg_conn_t *conns; /* owned, size entries */
  qlist_t fifo;         /* waiting for a connection */
  qlist_t done;         /* failures and grants, delivered from the defer timer */
  uv_timer_t defer;
  uv_timer_t backoff;
  unsigned backoff_ms;   /* current delay, 0 after a success */
  int backing_off;      /* connecting failed recently: fail queries at once */
  int failing;          /* the last connect failed */
  char down_err[ERR_MAX];
  int closing;
  int handles;          /* open uv handles */
  int works;            /* PQcancel calls on the thread pool */
  shr_pg_stats_t stats;
};

static void dispatch(shr_pg_pool_t *p);
static void on_poll(uv_poll_t *h, int status, int events);

/* ---- queries and lists ---- */

static void qlist_push(qlist_t *l, query_t *q) {
  q->next = NULL;
  q->prev = l->tail;
  if (l->tail)
    l->tail->next = q;
  else
    l->head = q;
  l->tail = q;
}

static void qlist_remove(qlist_t *l, query_t *q) {
  if (q->prev)
    q->prev->next = q->next;
  else
    l->head = q->next;
  if (q->next)
    q->next->prev = q->prev;
  else
    l->tail = q->prev;
  q->prev = q->next = NULL;
}

static int is_binary(const int *formats, int i) { return formats && formats[i] == 1; }

/* One allocation holds the struct, the value pointers, the lengths and
 * formats (when some value is binary), the SQL and the values, so a caller's
 * buffers may go away while the query waits. */
static query_t *query_new(const char *sql, int nparams, const char *const *values, const int *lengths,
                          const int *formats) {
  size_t sql_len = sql ? strlen(sql) : 0;
  int binary = 0;
  for (int i = 0; i < nparams; i++) binary |= values[i] && is_binary(formats, i);
  size_t ints = binary ? 2 * (size_t)nparams * sizeof(int) : 0;
  size_t size = sizeof(query_t) + (size_t)nparams * sizeof(char *) + ints + sql_len + 1;
  for (int i = 0; i < nparams; i++)
    if (values[i]) size += (is_binary(formats, i) ? (size_t)lengths[i] : strlen(values[i])) + 1;
  query_t *q = calloc(1, size);
  if (!q) return NULL;
  char **vals = (char **)(q + 1);
  int *lens = (int *)(vals + nparams), *fmts = lens + nparams;
  char *at = (char *)vals + (size_t)nparams * sizeof(char *) + ints;
  memcpy(at, sql ? sql : "", sql_len + 1);
  q->sql = at;
  at += sql_len + 1;
  for (int i = 0; i < nparams; i++) {
    if (!values[i]) continue;
    size_t n = is_binary(formats, i) ? (size_t)lengths[i] : strlen(values[i]);
    memcpy(at, values[i], n);
    at[n] = '\0';
    vals[i] = at;
    at += n + 1;
    if (binary) {
      lens[i] = (int)n;
      fmts[i] = is_binary(formats, i);
    }
  }
  q->nparams = nparams;
  q->values = (const char *const *)vals;
  if (binary) {
    q->lengths = lens;
    q->formats = fmts;
  }
  return q;
}

/* Runs the query's callback once and frees it. */
static void complete(shr_pg_pool_t *p, query_t *q, PGresult *res, const char *err) {
  if (q->cb || q->acb) {
    p->stats.queries++;
    if (err) p->stats.errors++;
  }
  if (q->acb)
    q->acb(err ? NULL : q->granted, err, q->data);
  else if (q->cb)
    q->cb(res, err, q->data);
  if (q->err_owned) free((char *)q->err);
  free(q);
}

static void on_defer(uv_timer_t *h) {
  shr_pg_pool_t *p = h->data;
  /* Only what is listed now: completions added by these callbacks wait a turn. */
  query_t *q = p->done.head;
  p->done.head = p->done.tail = NULL;
  while (q && !p->closing) {
    query_t *next = q->next;
    complete(p, q, NULL, q->err);
    q = next;
  }
  /* The pool closed in a callback: the rest still get their one call. */
  while (q) {
    query_t *next = q->next;
    complete(p, q, NULL, q->err ? q->err : "closed");
    q = next;
  }
}

static void defer(shr_pg_pool_t *p, query_t *q) {
  qlist_push(&p->done, q);
  if (!uv_is_active((uv_handle_t *)&p->defer)) uv_timer_start(&p->defer, on_defer, 0, 0);
}

static void set_err(query_t *q, const char *err) {
  if (q->err_owned) free((char *)q->err);
  char *copy = strdup(err);
  q->err = copy ? copy : "out of memory";
  q->err_owned = copy != NULL;
}

/* Fails q from the loop, never inside the caller's call into the pool. */
static void fail(shr_pg_pool_t *p, query_t *q, const char *err) {
  set_err(q, err);
  defer(p, q);
}

/* The first line of a libpq message, without the severity libpq puts before
 * a server's message ("FATAL:  ") nor trailing blanks. */
static void first_line(char *out, size_t n, const char *prefix, const char *msg) {
  if (!msg || !*msg) msg = "unknown error";
  size_t upper = strspn(msg, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
  if (upper > 0 && strncmp(msg + upper, ":  ", 3) == 0) msg += upper + 3;
  size_t len = strcspn(msg, "\n");
  while (len > 0 && (msg[len - 1] == ' ' || msg[len - 1] == '\r' || msg[len - 1] == '\t')) len--;
  snprintf(out, n, "%s%.*s", prefix, (int)len, msg);
}

/* ---- sessions ---- */

/* The pool is freed once its handles closed and its PQcancel calls returned. */
static void maybe_free(shr_pg_pool_t *p) {
  if (p->closing && p->handles == 0 && p->works == 0) {
    free(p->conns);
    free(p->conninfo);
    free(p);
  }
}

static void on_poll_closed(uv_handle_t *h) {
  shr_pg_pool_t *p = ((shr_pg_conn_t *)h->data)->pool;
  free(h);
  p->handles--;
  maybe_free(p);
}

static void on_handle_closed(uv_handle_t *h) {
  shr_pg_pool_t *p = h->data;
  p->handles--;
  maybe_free(p);
}

static void close_poll(shr_pg_conn_t *c) {
  if (!c->poll) return;
  uv_poll_stop(c->poll);
  uv_close((uv_handle_t *)c->poll, on_poll_closed);
  c->poll = NULL;
}

/* Watches the session's socket. libpq may switch sockets between
 * PQconnectPoll calls and libuv refuses a second watcher on one fd, so a
 * changed fd gets a fresh watcher. While connecting, uv_poll_start runs every
 * time: it re-registers the fd with epoll, which also covers a new socket that
 * reused the old number. */
static int watch(shr_pg_conn_t *c, int events) {
  shr_pg_pool_t *p = c->pool;
  int fd = PQsocket(c->pg);
  if (fd < 0) return -1;
  if (c->poll && c->poll_fd != fd) close_poll(c);
  if (!c->poll) {
    uv_poll_t *h = malloc(sizeof *h);
    if (!h) return -1;
    if (uv_poll_init(p->loop, h, fd) != 0) {
      free(h);
      return -1;
    }
    h->data = c;
    p->handles++;
    c->poll = h;
    c->poll_fd = fd;
    c->poll_events = 0;
  }
  if (events != c->poll_events || c->state == CONN_CONNECTING) {
    if (uv_poll_start(c->poll, events, on_poll) != 0) return -1;
    c->poll_events = events;
  }
  /* An idle session must not keep the loop alive. */
  if (c->state == CONN_IDLE)
    uv_unref((uv_handle_t *)c->poll);
  else
    uv_ref((uv_handle_t *)c->poll);
  return 0;
}

/* Ends the session; the query in flight (if any) fails with err. */
static void end_session(shr_pg_conn_t *c, const char *err) {
  shr_pg_pool_t *p = c->pool;
  close_poll(c);
  uv_timer_stop(&c->timer);
  if (c->pg) PQfinish(c->pg);
  c->pg = NULL;
  if (c->res) PQclear(c->res);
  c->res = NULL;
  c->cancel_running = 0;
  c->state = CONN_CLOSED;
  shr_pg_stmts_clear(&c->stmts);
  query_t *q = c->q;
  c->q = NULL;
  if (q) fail(p, q, q->cancelled ? "cancelled" : err);
}

static void lost(shr_pg_conn_t *c, const char *msg) {
  char err[ERR_MAX];
  first_line(err, sizeof err, "closed: ", msg);
  if (!c->pool->closing) shr_warn("postgres: session %s", err);
  end_session(c, err);
  dispatch(c->pool);
}

static int live_connections(shr_pg_pool_t *p) {
  int n = 0;
  for (int i = 0; i < p->size; i++) {
    shr_pg_conn_t *c = &p->conns[i];
    if (!c->pinned && c->state != CONN_CLOSED) n++;
  }
  return n;
}

static void on_backoff(uv_timer_t *h);

static void connect_failed(shr_pg_conn_t *c, const char *msg) {
  shr_pg_pool_t *p = c->pool;
  p->stats.connect_failures++;
  /* msg may live in the session's PGconn. */
  first_line(p->down_err, sizeof p->down_err, "connection refused: ", msg);
  end_session(c, "closed");
  if (!p->failing) shr_warn("postgres: %s; retrying with backoff", p->down_err);
  p->failing = 1;
  /* Sessions failing together (the server went away) count as one failure. */
  if (!p->backing_off) {
    p->backing_off = 1;
    p->backoff_ms = shr_backoff_next(p->backoff_ms, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
    uv_timer_start(&p->backoff, on_backoff, p->backoff_ms, 0);
  }
  dispatch(p);
}

static void on_connect_timeout(uv_timer_t *h) {
  shr_pg_conn_t *c = h->data;
  char msg[64];
  snprintf(msg, sizeof msg, "timed out after %llu ms", (unsigned long long)c->pool->connect_timeout_ms);
  connect_failed(c, msg);
}

static void connected(shr_pg_conn_t *c) {
  shr_pg_pool_t *p = c->pool;
  uv_timer_stop(&c->timer);
  PQsetnonblocking(c->pg, 1);
  p->stats.connects++;
  if (c->had_session) p->stats.reconnects++;
  c->had_session = 1;
  if (p->failing) shr_info("postgres: connected again");
  p->failing = 0;
  p->backing_off = 0;
  p->backoff_ms = 0;
  uv_timer_stop(&p->backoff);
  c->state = CONN_IDLE;
  if (watch(c, UV_READABLE) != 0) {
    lost(c, "cannot watch the socket");
    return;
  }
  dispatch(p);
}

static void connect_step(shr_pg_conn_t *c) {
  switch (PQconnectPoll(c->pg)) {
  case PGRES_POLLING_OK:
    connected(c);
    return;
  case PGRES_POLLING_FAILED:
    connect_failed(c, PQerrorMessage(c->pg));
    return;
  case PGRES_POLLING_READING:
    if (watch(c, UV_READABLE) != 0) connect_failed(c, "cannot watch the socket");
    return;
  default:
    if (watch(c, UV_WRITABLE) != 0) connect_failed(c, "cannot watch the socket");
    return;
  }
}

/* Server notices ("... already exists, skipping") are for debugging only. */
static void on_notice(void *arg, const char *msg) {
  char line[ERR_MAX];
  first_line(line, sizeof line, "postgres: ", msg);
  shr_debug("%s", line);
}

static void conn_open(shr_pg_conn_t *c) {
  shr_pg_pool_t *p = c->pool;
  /* The conninfo is expanded from dbname; the fallback name only applies when
   * it sets no application_name. Host names are resolved synchronously by
   * libpq: configure an address where that matters. */
  const char *const keys[] = {"dbname", "fallback_application_name", NULL};
  const char *const vals[] = {p->conninfo, "shield-runtime", NULL};
  c->pg = PQconnectStartParams(keys, vals, 1);
  c->gen++;
  c->state = CONN_CONNECTING;
  if (!c->pg) {
    connect_failed(c, "out of memory");
    return;
  }
  if (PQstatus(c->pg) == CONNECTION_BAD) {
    connect_failed(c, PQerrorMessage(c->pg));
    return;
  }
  PQsetNoticeProcessor(c->pg, on_notice, NULL);
  uv_timer_start(&c->timer, on_connect_timeout, p->connect_timeout_ms, 0);
  /* Before the first PQconnectPoll, libpq wants the socket writable. */
  if (watch(c, UV_WRITABLE) != 0) connect_failed(c, "cannot watch the socket");
}

static void on_backoff(uv_timer_t *h) {
  shr_pg_pool_t *p = h->data;
  /* Probe with one connection so the pool heals even when nobody queries;
   * queries arriving meanwhile wait for its outcome. */
  p->backing_off = 0;
  for (int i = 0; i < p->size; i++) {
    shr_pg_conn_t *c = &p->conns[i];
    if (c->state == CONN_CONNECTING) return;
  }
  for (int i = 0; i < p->size; i++) {
    shr_pg_conn_t *c = &p->conns[i];
    if (c->state == CONN_CLOSED && !c->pinned) {
      conn_open(c);
      break;
    }
  }
  dispatch(p);
}

/* ---- queries on a session ---- */

static void start_query(shr_pg_conn_t *c, query_t *q);

/* A session back in the shared pool must not carry an open transaction. */
static void settle(shr_pg_conn_t *c) {
  if (c->state != CONN_IDLE || c->pinned || PQtransactionStatus(c->pg) == PQTRANS_IDLE) return;
  query_t *q = query_new("ROLLBACK", 0, NULL, NULL, NULL);
  if (!q) {
    end_session(c, "closed");
    return;
  }
  start_query(c, q);
}

static int is_error(ExecStatusType st) {
  return st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR;
}

/* A prepared statement whose plan can no longer give the result type it was
 * prepared with (a table changed under a SELECT *) fails once, as in
 * PostgreSQL itself; it is prepared again next time. */
static void execute_failed(shr_pg_conn_t *c, query_t *q, const PGresult *res) {
  const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  if (state && strcmp(state, "0A000") == 0) shr_pg_stmts_mark_stale(&c->stmts, q->stmt);
}

static void query_done(shr_pg_conn_t *c) {
  shr_pg_pool_t *p = c->pool;
  query_t *q = c->q;
  PGresult *res = c->res;
  c->q = NULL;
  c->res = NULL;
  uv_timer_stop(&c->timer);
  char err[ERR_MAX];
  const char *e = NULL;
  int reset = PQstatus(c->pg) != CONNECTION_OK;
  ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  if (q->cancelled) {
    e = "cancelled";
  } else if (reset) {
    first_line(err, sizeof err, "closed: ", primary ? primary : PQerrorMessage(c->pg));
    e = err;
  } else if (is_error(st)) {
    first_line(err, sizeof err, "", primary ? primary : (res ? PQresultErrorMessage(res) : PQerrorMessage(c->pg)));
    e = err;
  } else if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
    /* The session is stuck in COPY mode: only a new one is usable. */
    snprintf(err, sizeof err, "COPY is not supported");
    e = err;
    reset = 1;
  }
  if (e && !reset && !q->cancelled && q->step == STEP_EXECUTE) execute_failed(c, q, res);
  int internal = !q->cb && !q->acb;
  if (reset) {
    if (!q->cancelled) shr_warn("postgres: session %s", e);
    end_session(c, e);
  } else if (c->cancel_running) {
    c->state = CONN_DRAINING;
    if (watch(c, UV_READABLE) != 0) end_session(c, "closed");
  } else if (internal && (e || PQtransactionStatus(c->pg) != PQTRANS_IDLE)) {
    /* A failed ROLLBACK leaves the session in an unknown state. */
    end_session(c, "closed");
  } else {
    c->state = CONN_IDLE;
    /* (A cancelled query's transaction was released by its owner.) */
    if (!internal && !c->pinned && !q->cancelled && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
      shr_warn("postgres: a query left a transaction open; rolled back (use shield.pg.transaction)");
    /* Before the callback, which may queue the next query on this session. */
    settle(c);
    if (c->state == CONN_IDLE && watch(c, UV_READABLE) != 0) end_session(c, "closed");
  }
  /* A server error passes its result on, for the SQLSTATE. */
  complete(p, q, reset || q->cancelled ? NULL : res, e);
  if (res) PQclear(res);
  dispatch(p);
}

static void flush(shr_pg_conn_t *c) {
  int r = PQflush(c->pg);
  if (r < 0) {
    lost(c, PQerrorMessage(c->pg));
    return;
  }
  /* While output is pending, read too: the server may answer early. */
  if (watch(c, r ? UV_READABLE | UV_WRITABLE : UV_READABLE) != 0) lost(c, "cannot watch the socket");
}

static int send_execute(shr_pg_conn_t *c, query_t *q) {
  q->step = STEP_EXECUTE;
  return PQsendQueryPrepared(c->pg, q->stmt, q->nparams, q->values, q->lengths, q->formats, 0);
}

/* Sends q's first step; returns what libpq's send did. Without parameters the
 * simple protocol runs scripts of several statements (migrations); with them
 * the extended protocol allows one. */
static int send_first_step(shr_pg_conn_t *c, query_t *q) {
  if (!q->nparams) {
    q->step = STEP_SIMPLE;
    return PQsendQuery(c->pg, q->sql);
  }
  const char *name = shr_pg_stmts_find(&c->stmts, q->sql, q->nparams);
  if (name) {
    snprintf(q->stmt, sizeof q->stmt, "%s", name);
    return send_execute(c, q);
  }
  const shr_pg_stmt_t *victim = shr_pg_stmts_victim(&c->stmts);
  if (victim) {
    char sql[32 + SHR_PG_STMT_NAME];
    snprintf(q->stmt, sizeof q->stmt, "%s", victim->name);
    snprintf(sql, sizeof sql, "DEALLOCATE %s", victim->name);
    q->step = STEP_DEALLOCATE;
    return PQsendQuery(c->pg, sql);
  }
  shr_pg_stmts_new_name(&c->stmts, q->stmt);
  q->step = STEP_PREPARE;
  return PQsendPrepare(c->pg, q->stmt, q->sql, q->nparams, NULL);
}

/* The statement q executed or deallocated was gone from the session (a
 * script ran DEALLOCATE ALL or DISCARD ALL): the session has none of them
 * left; nothing of q ran, so outside a transaction (which the error would have
 * aborted) q starts again, once. */
static int statement_gone(shr_pg_conn_t *c, query_t *q) {
  const char *state = PQresultErrorField(c->res, PG_DIAG_SQLSTATE);
  if (!state || strcmp(state, "26000") != 0) return 0;
  shr_pg_stmts_clear(&c->stmts);
  return !q->reprepared && PQtransactionStatus(c->pg) == PQTRANS_IDLE;
}

/* The step in flight answered (c->res): books a DEALLOCATE or PREPARE that
 * worked and sends the next step. Returns 1 if it sent one, 0 when the query
 * is over (its last step, a failure, or cancelled). */
static int next_step(shr_pg_conn_t *c) {
  query_t *q = c->q;
  if (PQstatus(c->pg) != CONNECTION_OK || !c->res) return 0;
  ExecStatusType st = PQresultStatus(c->res);
  int again = 0; /* from the first step again */
  if (q->step == STEP_DEALLOCATE && st == PGRES_COMMAND_OK) {
    shr_pg_stmts_remove(&c->stmts, q->stmt);
    again = 1;
  } else if (q->step == STEP_PREPARE && st == PGRES_COMMAND_OK) {
    c->pool->stats.prepared++;
    /* Out of memory: executed this once, never found again. */
    shr_pg_stmts_add(&c->stmts, q->sql, q->nparams, q->stmt);
  } else if ((q->step == STEP_EXECUTE || q->step == STEP_DEALLOCATE) && is_error(st) && statement_gone(c, q)) {
    q->reprepared = 1;
    again = 1;
  } else {
    return 0;
  }
  if (q->cancelled) return 0;
  PQclear(c->res);
  c->res = NULL;
  /* A send libpq refuses ends the query with libpq's message. */
  if (!(again ? send_first_step(c, q) : send_execute(c, q))) return 0;
  flush(c);
  return 1;
}

static void start_query(shr_pg_conn_t *c, query_t *q) {
  shr_pg_pool_t *p = c->pool;
  c->q = q;
  c->state = CONN_BUSY;
  if (!send_first_step(c, q)) {
    c->q = NULL;
    if (PQstatus(c->pg) == CONNECTION_OK) {
      /* Refused by libpq itself (for instance too many parameters). */
      char err[ERR_MAX];
      first_line(err, sizeof err, "", PQerrorMessage(c->pg));
      c->state = CONN_IDLE;
      fail(p, q, err);
      return;
    }
    c->q = q;
    lost(c, PQerrorMessage(c->pg));
    return;
  }
  flush(c);
}

/* Reads what the server sent: the answer of the query in flight, or, on an
 * idle session, notices and the end of a dying session. */
static void readable(shr_pg_conn_t *c) {
  if (!PQconsumeInput(c->pg)) {
    lost(c, PQerrorMessage(c->pg));
    return;
  }
  PGnotify *n;
  while ((n = PQnotifies(c->pg))) PQfreemem(n);
  if (c->state != CONN_BUSY) {
    PGresult *r;
    while (!PQisBusy(c->pg) && (r = PQgetResult(c->pg))) PQclear(r);
    if (PQstatus(c->pg) != CONNECTION_OK) lost(c, PQerrorMessage(c->pg));
    return;
  }
  /* Every result until NULL, even after an error; the first error wins. */
  while (!PQisBusy(c->pg)) {
    PGresult *r = PQgetResult(c->pg);
    if (!r) {
      if (!next_step(c)) query_done(c);
      return;
    }
    ExecStatusType st = PQresultStatus(r);
    if (c->res && is_error(PQresultStatus(c->res))) {
      PQclear(r);
    } else {
      if (c->res) PQclear(c->res);
      c->res = r;
    }
    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
      query_done(c);
      return;
    }
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  shr_pg_conn_t *c = h->data;
  if (status < 0) {
    /* libuv reports POLLERR (a refused connect, a reset) as UV_EBADF and
     * stops the watcher; libpq reads the socket's own error. */
    c->poll_events = 0;
    if (c->state == CONN_CONNECTING)
      connect_step(c);
    else
      lost(c, PQconsumeInput(c->pg) ? uv_strerror(status) : PQerrorMessage(c->pg));
    return;
  }
  switch (c->state) {
  case CONN_CONNECTING:
    connect_step(c);
    return;
  case CONN_BUSY:
    if (events & UV_WRITABLE) {
      int r = PQflush(c->pg);
      if (r < 0) {
        lost(c, PQerrorMessage(c->pg));
        return;
      }
      if (r == 0 && watch(c, UV_READABLE) != 0) {
        lost(c, "cannot watch the socket");
        return;
      }
    }
    if (events & UV_READABLE) readable(c);
    return;
  default:
    readable(c);
    return;
  }
}

/* ---- cancellation ---- */

/* PQcancel blocks (it opens a new connection to the server), so it runs on
 * libuv's thread pool (where an unreachable server holds a thread until the
 * TCP connect gives up). Cancelling, rather than dropping the session, stops the
 * statement on the server at once and keeps the session; should the cancel
 * not land, the grace timer resets the session instead. The session serves
 * nobody until the PQcancel returned, so a late cancel cannot hit the next
 * query. */
typedef struct {
  uv_work_t req;
  PGcancel *cancel;    /* owned */
  shr_pg_conn_t *conn;
  unsigned gen;
  int ok;
  char errbuf[256];
} cancel_work_t;

static void cancel_run(uv_work_t *req) {
  cancel_work_t *w = req->data;
  w->ok = PQcancel(w->cancel, w->errbuf, sizeof w->errbuf);
}

static void cancel_done(uv_work_t *req, int status) {
  cancel_work_t *w = req->data;
  shr_pg_conn_t *c = w->conn;
  shr_pg_pool_t *p = c->pool;
  PQfreeCancel(w->cancel);
  p->works--;
  if (!w->ok && !p->closing) shr_debug("postgres: cancel request failed: %s", w->errbuf);
  int current = w->gen == c->gen;
  free(w);
  if (p->closing) {
    maybe_free(p);
    return;
  }
  if (!current) return;
  c->cancel_running = 0;
  if (c->state == CONN_DRAINING) {
    c->state = CONN_IDLE;
    settle(c);
    if (c->state == CONN_IDLE && watch(c, UV_READABLE) != 0) lost(c, "cannot watch the socket");
    dispatch(p);
  }
}

static void on_cancel_grace(uv_timer_t *h) {
  shr_pg_conn_t *c = h->data;
  shr_warn("postgres: a cancelled query did not stop within %d ms; resetting its connection", CANCEL_GRACE_MS);
  end_session(c, "cancelled");
  dispatch(c->pool);
}

/* Asks the server to stop the statement running on c's session. */
static void send_cancel(shr_pg_conn_t *c) {
  shr_pg_pool_t *p = c->pool;
  if (c->cancel_running) return;
  cancel_work_t *w = calloc(1, sizeof *w);
  if (!w) return;
  w->cancel = PQgetCancel(c->pg);
  if (!w->cancel) {
    free(w);
    return;
  }
  w->conn = c;
  w->gen = c->gen;
  w->req.data = w;
  if (uv_queue_work(p->loop, &w->req, cancel_run, cancel_done) != 0) {
    PQfreeCancel(w->cancel);
    free(w);
    return;
  }
  p->works++;
  c->cancel_running = 1;
}

static void cancel_in_flight(shr_pg_conn_t *c) {
  c->q->cancelled = 1;
  c->pool->stats.cancels++;
  uv_timer_start(&c->timer, on_cancel_grace, CANCEL_GRACE_MS, 0);
  send_cancel(c);
}

int shr_pg_cancel(shr_pg_pool_t *p, void *data) {
  if (p->closing || !data) return -1;
  for (query_t *q = p->fifo.head; q; q = q->next) {
    if (q->data != data) continue;
    qlist_remove(&p->fifo, q);
    fail(p, q, "cancelled");
    return 0;
  }
  for (int i = 0; i < p->size; i++) {
    shr_pg_conn_t *c = &p->conns[i];
    if (c->q && c->q->data == data && (c->q->cb || c->q->acb) && !c->q->cancelled) {
      cancel_in_flight(c);
      return 0;
    }
  }
  return -1;
}

/* ---- the pool ---- */

static void dispatch(shr_pg_pool_t *p) {
  if (p->closing) return;
  while (p->fifo.head) {
    shr_pg_conn_t *idle = NULL;
    for (int i = 0; i < p->size && !idle; i++)
      if (p->conns[i].state == CONN_IDLE && !p->conns[i].pinned) idle = &p->conns[i];
    if (!idle) break;
    query_t *q = p->fifo.head;
    qlist_remove(&p->fifo, q);
    if (q->acb) {
      idle->pinned = 1;
      q->granted = idle;
      defer(p, q);
    } else {
      start_query(idle, q);
    }
  }
  if (!p->fifo.head) return;
  if (p->backing_off) {
    /* Nothing can serve them until the backoff ends: fail them now. */
    if (live_connections(p) > 0) return;
    query_t *q;
    while ((q = p->fifo.head)) {
      qlist_remove(&p->fifo, q);
      fail(p, q, p->down_err);
    }
    return;
  }
  /* Open as many sessions as there are waiting queries not already covered
   * by a connect in progress. Counting stops at the pool's size: the FIFO may
   * hold thousands, and this runs after every query. */
  int waiting = 0, connecting = 0;
  for (query_t *q = p->fifo.head; q && waiting < p->size; q = q->next) waiting++;
  for (int i = 0; i < p->size; i++)
    if (p->conns[i].state == CONN_CONNECTING) connecting++;
  for (int i = 0; i < p->size && connecting < waiting && !p->backing_off; i++) {
    shr_pg_conn_t *c = &p->conns[i];
    if (c->state != CONN_CLOSED || c->pinned) continue;
    conn_open(c);
    connecting++;
  }
}

/* connect_timeout from the conninfo (seconds), since PQconnectPoll ignores it. */
static uint64_t connect_timeout_of(const char *conninfo) {
  uint64_t ms = CONNECT_TIMEOUT_MS;
  PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
  if (!opts) return ms;
  for (PQconninfoOption *o = opts; o->keyword; o++) {
    if (strcmp(o->keyword, "connect_timeout") == 0 && o->val && atoi(o->val) > 0)
      ms = (uint64_t)atoi(o->val) * 1000;
  }
  PQconninfoFree(opts);
  return ms;
}

shr_pg_pool_t *shr_pg_pool_new(uv_loop_t *loop, const char *conninfo, int size) {
  assert(size > 0);
  shr_pg_pool_t *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->conninfo = strdup(conninfo);
  p->conns = calloc((size_t)size, sizeof *p->conns);
  if (!p->conninfo || !p->conns) {
    free(p->conninfo);
    free(p->conns);
    free(p);
    return NULL;
  }
  p->loop = loop;
  p->size = size;
  p->connect_timeout_ms = connect_timeout_of(conninfo);
  uv_timer_init(loop, &p->defer);
  uv_timer_init(loop, &p->backoff);
  p->defer.data = p->backoff.data = p;
  /* Healing a pool nobody uses must not keep the loop alive. */
  uv_unref((uv_handle_t *)&p->backoff);
  p->handles = 2;
  for (int i = 0; i < size; i++) {
    shr_pg_conn_t *c = &p->conns[i];
    c->pool = p;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    uv_unref((uv_handle_t *)&c->timer);
    p->handles++;
  }
  return p;
}

static void on_conn_timer_closed(uv_handle_t *h) {
  shr_pg_conn_t *c = h->data;
  shr_pg_pool_t *p = c->pool;
  p->handles--;
  maybe_free(p);
}

void shr_pg_pool_close(shr_pg_pool_t *p) {
  if (p->closing) return;
  p->closing = 1;
  /* Detach everything first: the callbacks may call back into the pool. */
  qlist_t pending = {NULL, NULL};
  query_t *q;
  while ((q = p->done.head)) {
    qlist_remove(&p->done, q);
    qlist_push(&pending, q);
  }
  while ((q = p->fifo.head)) {
    qlist_remove(&p->fifo, q);
    qlist_push(&pending, q);
  }
  for (int i = 0; i < p->size; i++) {
    shr_pg_conn_t *c = &p->conns[i];
    query_t *inflight = c->q;
    c->q = NULL;
    /* Nobody waits for the statement any more: stop it on the server too
     * (the pool is freed once the cancel returned). */
    if (c->state == CONN_BUSY) send_cancel(c);
    if (inflight) {
      if (inflight->cancelled) set_err(inflight, "cancelled");
      qlist_push(&pending, inflight);
    }
    end_session(c, "closed");
    c->pinned = 0;
    uv_close((uv_handle_t *)&c->timer, on_conn_timer_closed);
  }
  uv_close((uv_handle_t *)&p->defer, on_handle_closed);
  uv_close((uv_handle_t *)&p->backoff, on_handle_closed);
  while ((q = pending.head)) {
    qlist_remove(&pending, q);
    complete(p, q, NULL, q->err && !q->granted ? q->err : "closed");
  }
}

int shr_pg_query(shr_pg_pool_t *p, const char *sql, int nparams, const char *const *values,
                 const int *lengths, const int *formats, shr_pg_cb cb, void *data) {
  if (p->closing || !sql || nparams < 0 || (nparams > 0 && !values) || !cb) return -1;
  query_t *q = query_new(sql, nparams, values, lengths, formats);
  if (!q) return -1;
  q->cb = cb;
  q->data = data;
  qlist_push(&p->fifo, q);
  dispatch(p);
  return 0;
}

int shr_pg_acquire(shr_pg_pool_t *p, shr_pg_acquire_cb cb, void *data) {
  if (p->closing || !cb) return -1;
  query_t *q = query_new(NULL, 0, NULL, NULL, NULL);
  if (!q) return -1;
  q->acb = cb;
  q->data = data;
  qlist_push(&p->fifo, q);
  dispatch(p);
  return 0;
}

int shr_pg_conn_query(shr_pg_conn_t *c, const char *sql, int nparams, const char *const *values,
                      const int *lengths, const int *formats, shr_pg_cb cb, void *data) {
  shr_pg_pool_t *p = c->pool;
  assert(c->pinned);
  if (p->closing || !sql || nparams < 0 || (nparams > 0 && !values) || !cb) return -1;
  if (c->state != CONN_IDLE && c->state != CONN_CLOSED) return -1;
  query_t *q = query_new(sql, nparams, values, lengths, formats);
  if (!q) return -1;
  q->cb = cb;
  q->data = data;
  if (c->state == CONN_CLOSED) {
    fail(p, q, "closed: the transaction's connection was lost");
    return 0;
  }
  start_query(c, q);
  return 0;
}

void shr_pg_release(shr_pg_conn_t *c) {
  shr_pg_pool_t *p = c->pool;
  c->pinned = 0;
  if (p->closing) return;
  settle(c);
  dispatch(p);
}

void shr_pg_pool_stats(const shr_pg_pool_t *p, shr_pg_stats_t *out) {
  *out = p->stats;
  out->size = p->size;
  out->open = out->busy = out->pinned = out->queued = 0;
  for (int i = 0; i < p->size; i++) {
    const shr_pg_conn_t *c = &p->conns[i];
    if (c->state == CONN_IDLE || c->state == CONN_BUSY || c->state == CONN_DRAINING) out->open++;
    if (c->state == CONN_BUSY || c->state == CONN_DRAINING) out->busy++;
    if (c->pinned) out->pinned++;
  }
  for (const query_t *q = p->fifo.head; q; q = q->next) out->queued++;
}

int shr_pg_pool_healthy(const shr_pg_pool_t *p) { return !p->failing; }
