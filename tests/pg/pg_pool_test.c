/* The PostgreSQL pool (runtime/pg.c) against the harness' server, in the libuv
 * manner: callback counters, exact values and error strings, and every handle
 * closed at the end of each case. Needs SHIELD_TEST_PG_URL. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pg.h"
#include "test_check.h"

static const char *pg_url;
static uv_loop_t loop;

/* What one query answered: the first value (or "(null)"/"(none)"), the error,
 * the SQLSTATE of a server error, and in which order it completed. */
typedef struct {
  int calls;
  int order;
  char value[128];
  char err[512];
  char sqlstate[8];
} answer_t;

static int completed;

static void on_answer(PGresult *res, const char *err, void *data) {
  answer_t *a = data;
  a->calls++;
  a->order = ++completed;
  snprintf(a->err, sizeof a->err, "%s", err ? err : "");
  const char *state = res && err ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  snprintf(a->sqlstate, sizeof a->sqlstate, "%s", state ? state : "");
  if (!err && res && PQntuples(res) > 0)
    snprintf(a->value, sizeof a->value, "%s", PQgetisnull(res, 0, 0) ? "(null)" : PQgetvalue(res, 0, 0));
  else
    snprintf(a->value, sizeof a->value, "(none)");
}

static void query(shr_pg_pool_t *p, const char *sql, answer_t *a) {
  memset(a, 0, sizeof *a);
  CHECK_INT(0, shr_pg_query(p, sql, 0, NULL, NULL, NULL, on_answer, a));
}

static void query1(shr_pg_pool_t *p, const char *sql, const char *param, answer_t *a) {
  memset(a, 0, sizeof *a);
  const char *values[1] = {param};
  CHECK_INT(0, shr_pg_query(p, sql, 1, values, NULL, NULL, on_answer, a));
}

/* Runs the loop until a has its answer (idle sessions do not keep the loop
 * alive, so UV_RUN_ONCE returns once there is nothing left to wait for). */
static void wait_for(answer_t *a) {
  while (a->calls == 0 && uv_run(&loop, UV_RUN_ONCE)) {
  }
  CHECK_INT(1, a->calls);
}

static void close_pool(shr_pg_pool_t *p) {
  shr_pg_pool_close(p);
  uv_run(&loop, UV_RUN_DEFAULT);
}

static void test_basic(void) {
  shr_pg_pool_t *p = shr_pg_pool_new(&loop, pg_url, 2);
  answer_t a, b, c, d;
  query1(p, "SELECT $1::int + 1", "41", &a);
  wait_for(&a);
  CHECK_STR("", a.err);
  CHECK_STR("42", a.value);

  query(p, "SELECT * FROM no_such_table", &b);
  wait_for(&b);
  CHECK_STR("relation \"no_such_table\" does not exist", b.err);
  CHECK_STR("42P01", b.sqlstate);

  /* A NULL parameter is SQL NULL; the session survives an error. */
  const char *values[2] = {NULL, "x"};
  memset(&c, 0, sizeof c);
  CHECK_INT(0, shr_pg_query(p, "SELECT coalesce($1, $2)", 2, values, NULL, NULL, on_answer, &c));
  wait_for(&c);
  CHECK_STR("x", c.value);

  /* With parameters, one statement (the extended protocol); without, a
   * script whose last statement gives the result. */
  query1(p, "SELECT $1::int; SELECT 2", "1", &d);
  wait_for(&d);
  CHECK_STR("cannot insert multiple commands into a prepared statement", d.err);
  query(p, "SELECT 1; SELECT 2", &d);
  wait_for(&d);
  CHECK_STR("2", d.value);

  shr_pg_stats_t st;
  shr_pg_pool_stats(p, &st);
  CHECK_INT(5, st.queries);
  CHECK_INT(2, st.errors);
  CHECK_INT(1, st.connects);
  CHECK_INT(0, st.reconnects);
  CHECK_INT(1, shr_pg_pool_healthy(p));
  close_pool(p);
}

/* More queries than sessions wait in a FIFO; each gets its own answer. */
static void test_fifo(void) {
  enum { N = 200 };
  shr_pg_pool_t *p = shr_pg_pool_new(&loop, pg_url, 3);
  static answer_t a[N];
  char num[N][16];
  for (int i = 0; i < N; i++) {
    snprintf(num[i], sizeof num[i], "%d", i);
    query1(p, "SELECT $1::int * 2", num[i], &a[i]);
  }
  shr_pg_stats_t st;
  shr_pg_pool_stats(p, &st);
  CHECK_INT(N, st.queued);
  uv_run(&loop, UV_RUN_DEFAULT);
  for (int i = 0; i < N; i++) {
    char want[16];
    snprintf(want, sizeof want, "%d", i * 2);
    CHECK_INT(1, a[i].calls);
    CHECK_STR(want, a[i].value);
  }
  shr_pg_pool_stats(p, &st);
  CHECK_INT(3, st.connects);
  CHECK_INT(0, st.queued);
  close_pool(p);
}

static uv_timer_t timer;
static shr_pg_pool_t *timer_pool;
static void *timer_target;
static void on_cancel_timer(uv_timer_t *h) { CHECK_INT(0, shr_pg_cancel(timer_pool, timer_target)); }

/* Cancels target on p after ms (close the timer at the end of the case). */
static void cancel_after(shr_pg_pool_t *p, void *target, uint64_t ms) {
  uv_timer_init(&loop, &timer);
  timer_pool = p;
  timer_target = target;
  uv_timer_start(&timer, on_cancel_timer, ms, 0);
}

static void test_cancel(void) {
  shr_pg_pool_t *p = shr_pg_pool_new(&loop, pg_url, 1);
  answer_t slow, queued, next, check;
  /* A queued query: cancelled without reaching the server. */
  query(p, "SELECT pg_sleep(0.2)", &slow);
  query(p, "SELECT 'never'", &queued);
  CHECK_INT(0, shr_pg_cancel(p, &queued));
  CHECK_INT(0, queued.calls); /* never inside shr_pg_cancel */
  CHECK_INT(-1, shr_pg_cancel(p, &queued));
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_STR("cancelled", queued.err);
  CHECK(queued.order < slow.order); /* long before the slow one */
  CHECK_STR("", slow.err);

  /* A query in flight: cancelled on the server, the session kept. */
  query(p, "SELECT pg_sleep(10)", &slow);
  query(p, "SELECT 'after'", &next);
  uint64_t t0 = uv_now(&loop);
  cancel_after(p, &slow, 100);
  wait_for(&slow);
  CHECK_STR("cancelled", slow.err);
  CHECK(uv_now(&loop) - t0 < 1000);
  wait_for(&next);
  CHECK_STR("after", next.value);
  query(p, "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(10)' AND state = 'active'",
        &check);
  wait_for(&check);
  CHECK_STR("0", check.value);
  shr_pg_stats_t st;
  shr_pg_pool_stats(p, &st);
  CHECK_INT(1, st.connects);
  CHECK_INT(1, st.cancels);
  uv_close((uv_handle_t *)&timer, NULL);
  close_pool(p);
}

/* A query with parameters is prepared once per session; cancelling its
 * execution keeps the statement for the next call. */
static void test_prepared_cancel(void) {
  shr_pg_pool_t *p = shr_pg_pool_new(&loop, pg_url, 1);
  answer_t slow, next;
  query1(p, "SELECT pg_sleep($1::float8)::text", "10", &slow);
  cancel_after(p, &slow, 100);
  wait_for(&slow);
  CHECK_STR("cancelled", slow.err);
  query1(p, "SELECT pg_sleep($1::float8)::text", "0", &next);
  wait_for(&next);
  CHECK_STR("", next.err);
  CHECK_STR("", next.value);
  shr_pg_stats_t st;
  shr_pg_pool_stats(p, &st);
  CHECK_INT(1, st.prepared);
  CHECK_INT(1, st.connects);
  uv_close((uv_handle_t *)&timer, NULL);
  close_pool(p);
}

typedef struct {
  int calls;
  shr_pg_conn_t *conn;
  char err[256];
} grant_t;

static void on_grant(shr_pg_conn_t *conn, const char *err, void *data) {
  grant_t *g = data;
  g->calls++;
  g->conn = conn;
  snprintf(g->err, sizeof g->err, "%s", err ? err : "");
}

static void wait_grant(grant_t *g) {
  while (g->calls == 0 && uv_run(&loop, UV_RUN_ONCE)) {
  }
  CHECK_INT(1, g->calls);
}

static void conn_query(shr_pg_conn_t *c, const char *sql, answer_t *a) {
  memset(a, 0, sizeof *a);
  CHECK_INT(0, shr_pg_conn_query(c, sql, 0, NULL, NULL, NULL, on_answer, a));
}

static void test_pinned(void) {
  shr_pg_pool_t *p = shr_pg_pool_new(&loop, pg_url, 2);
  answer_t a, b, c;
  query(p, "DROP TABLE IF EXISTS pool_pin; CREATE TABLE pool_pin (x int)", &a);
  wait_for(&a);
  CHECK_STR("", a.err);

  /* Committed work on a pinned session. */
  grant_t g = {0};
  CHECK_INT(0, shr_pg_acquire(p, on_grant, &g));
  CHECK_INT(0, g.calls);
  wait_grant(&g);
  CHECK(g.conn != NULL);
  conn_query(g.conn, "BEGIN", &a);
  wait_for(&a);
  conn_query(g.conn, "INSERT INTO pool_pin VALUES (1)", &a);
  wait_for(&a);
  /* Another session does not see it yet. */
  query(p, "SELECT count(*) FROM pool_pin", &b);
  wait_for(&b);
  CHECK_STR("0", b.value);
  conn_query(g.conn, "COMMIT", &a);
  wait_for(&a);
  CHECK_STR("", a.err);
  shr_pg_release(g.conn);

  /* Released without COMMIT: rolled back before anyone else uses it. */
  grant_t h = {0};
  CHECK_INT(0, shr_pg_acquire(p, on_grant, &h));
  wait_grant(&h);
  conn_query(h.conn, "BEGIN", &a);
  wait_for(&a);
  conn_query(h.conn, "INSERT INTO pool_pin VALUES (2)", &a);
  wait_for(&a);
  shr_pg_release(h.conn);
  query(p, "SELECT string_agg(x::text, ',') FROM pool_pin", &b);
  wait_for(&b);
  CHECK_STR("1", b.value);

  /* A plain query that opens a transaction does not leak it to the next one. */
  shr_pg_pool_t *one = shr_pg_pool_new(&loop, pg_url, 1);
  query(one, "BEGIN", &a);
  wait_for(&a);
  /* A transaction-local setting outlives its statement only inside an open
   * transaction. */
  query(one, "SELECT set_config('application_name', 'leaked', true)", &c);
  wait_for(&c);
  query(one, "SELECT current_setting('application_name')", &c);
  wait_for(&c);
  CHECK_STR("shield-runtime", c.value);
  close_pool(one);

  /* Acquires wait in the FIFO when every session is pinned. */
  grant_t g1 = {0}, g2 = {0}, g3 = {0};
  shr_pg_acquire(p, on_grant, &g1);
  shr_pg_acquire(p, on_grant, &g2);
  shr_pg_acquire(p, on_grant, &g3);
  wait_grant(&g1);
  wait_grant(&g2);
  shr_pg_stats_t st;
  shr_pg_pool_stats(p, &st);
  CHECK_INT(2, st.pinned);
  CHECK_INT(1, st.queued);
  CHECK_INT(0, g3.calls);
  CHECK_INT(0, shr_pg_cancel(p, &g3));
  wait_grant(&g3);
  CHECK_STR("cancelled", g3.err);
  CHECK(g3.conn == NULL);
  shr_pg_release(g1.conn);
  shr_pg_release(g2.conn);
  close_pool(p);
}

static void test_refused(void) {
  shr_pg_pool_t *p = shr_pg_pool_new(&loop, "postgresql://postgres@127.0.0.1:1/shield", 2);
  answer_t a, b;
  query(p, "SELECT 1", &a);
  wait_for(&a);
  CHECK_STR("connection refused: connection to server at \"127.0.0.1\", port 1 failed: Connection refused",
             a.err);
  CHECK_INT(0, shr_pg_pool_healthy(p));
  /* While backing off, queries fail at once with the same error. */
  uint64_t t0 = uv_now(&loop);
  query(p, "SELECT 1", &b);
  wait_for(&b);
  CHECK_STR(a.err, b.err);
  CHECK(uv_now(&loop) - t0 < 50);
  shr_pg_stats_t st;
  shr_pg_pool_stats(p, &st);
  CHECK_INT(1, st.connect_failures);
  close_pool(p);

  /* A bad conninfo fails the queries, not the pool's creation. */
  p = shr_pg_pool_new(&loop, "postgresql://127.0.0.1:notaport/x", 1);
  query(p, "SELECT 1", &a);
  wait_for(&a);
  CHECK_STR("connection refused: invalid integer value \"notaport\" for connection option \"port\"", a.err);
  close_pool(p);
}

/* libpq tries the next host on a new socket: the watcher follows it. */
static void test_socket_switch(void) {
  const char *port = getenv("SHIELD_TEST_PG_PORT");
  char url[256];
  snprintf(url, sizeof url, "postgresql://postgres@127.0.0.1:1,127.0.0.1:%s/shield", port ? port : "5432");
  shr_pg_pool_t *p = shr_pg_pool_new(&loop, url, 2);
  answer_t a, b;
  query(p, "SELECT current_setting('port')", &a);
  query(p, "SELECT 'second'", &b);
  wait_for(&a);
  wait_for(&b);
  CHECK_STR(port ? port : "5432", a.value);
  CHECK_STR("second", b.value);
  CHECK_INT(1, shr_pg_pool_healthy(p));
  close_pool(p);
}

/* A server that accepts the TCP connection but never answers: the pool's own
 * timer ends the connect (PQconnectPoll ignores connect_timeout). */
static void test_connect_timeout(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sa;
  CHECK(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
  CHECK(listen(fd, 8) == 0);
  CHECK(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
  char url[256];
  snprintf(url, sizeof url, "postgresql://postgres@127.0.0.1:%d/shield?connect_timeout=1&sslmode=disable",
           ntohs(sa.sin_port));
  shr_pg_pool_t *p = shr_pg_pool_new(&loop, url, 1);
  answer_t a;
  uint64_t t0 = uv_now(&loop);
  query(p, "SELECT 1", &a);
  wait_for(&a);
  uint64_t took = uv_now(&loop) - t0;
  CHECK_STR("connection refused: timed out after 1000 ms", a.err);
  CHECK(took >= 990 && took < 1500);
  close_pool(p);
  close(fd);
}

/* Closing runs every pending callback before it returns. */
static void test_close(void) {
  shr_pg_pool_t *p = shr_pg_pool_new(&loop, pg_url, 1);
  answer_t a, slow, queued, cancelled;
  query(p, "SELECT 1", &a);
  wait_for(&a);
  query(p, "SELECT pg_sleep(0.5)", &slow);
  query(p, "SELECT 2", &queued);
  grant_t g = {0};
  shr_pg_acquire(p, on_grant, &g);
  query(p, "SELECT 3", &cancelled);
  shr_pg_cancel(p, &cancelled);
  uv_run(&loop, UV_RUN_NOWAIT);
  shr_pg_pool_close(p);
  CHECK_INT(1, slow.calls);
  CHECK_STR("closed", slow.err);
  CHECK_STR("closed", queued.err);
  CHECK_INT(1, g.calls);
  CHECK_STR("closed", g.err);
  CHECK_INT(1, cancelled.calls);
  CHECK_STR("cancelled", cancelled.err);
  CHECK_INT(-1, shr_pg_query(p, "SELECT 1", 0, NULL, NULL, NULL, on_answer, &a));
  uv_run(&loop, UV_RUN_DEFAULT);
}

int main(void) {
  pg_url = getenv("SHIELD_TEST_PG_URL");
  if (!pg_url) {
    fprintf(stderr, "SHIELD_TEST_PG_URL is not set\n");
    return 1;
  }
  uv_loop_init(&loop);
  test_basic();
  test_fifo();
  test_cancel();
  test_prepared_cancel();
  test_pinned();
  test_refused();
  test_socket_switch();
  test_connect_timeout();
  test_close();
  CHECK_INT(0, uv_loop_close(&loop));
  return test_summary();
}
