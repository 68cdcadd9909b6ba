/* The Redis client (runtime/redis.c) and its libuv adapter against the
 * harness' Redis: bad URLs, a refused and a timed-out connect, round trips,
 * AUTH and SELECT, 10,000 pipelined commands, the on-connect hook, a server
 * restart mid-run with scripts reloaded after it, the per-command watchdog on a
 * half-open connection, and close. Ends with every handle closed. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "redis.h"
#include "test_check.h"

static uv_loop_t loop;
static int redis_port;
static char url[128];

/* ---- loop helpers ---- */

static int deadline_hit;
static void on_deadline(uv_timer_t *t) { deadline_hit = 1; }

/* Runs the loop until pred(arg) holds or ms pass; returns pred(arg). A
 * referenced timer keeps the loop turning: the client's own handles do not
 * while nothing is outstanding. */
static int wait_cond(int (*pred)(const void *), const void *arg, unsigned ms) {
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  deadline_hit = 0;
  uv_timer_start(&t, on_deadline, ms, 0);
  while (!pred(arg) && !deadline_hit) uv_run(&loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&loop, UV_RUN_NOWAIT);
  return pred(arg);
}

static int want_flag;
static int flag_reached(const void *arg) { return *(const int *)arg >= want_flag; }
static int wait_for(const int *flag, int want, unsigned ms) {
  want_flag = want;
  return wait_cond(flag_reached, flag, ms);
}

static int is_connected(const void *r) { return shr_redis_connected(r); }
static int connected_flag(shr_redis_t *r, unsigned ms) { return wait_cond(is_connected, r, ms); }

static uint64_t want_failures;
static int failures_reached(const void *r) { return shr_redis_stats(r)->connect_failures >= want_failures; }

/* Lets closing handles finish. */
static void drain(void) {
  for (int i = 0; i < 5; i++) uv_run(&loop, UV_RUN_NOWAIT);
}

/* ---- answers ---- */

typedef struct {
  int done;
  redisReply *reply; /* kept */
  char err[64];
  uint64_t at;
} answer_t;

static void on_answer(shr_redis_t *r, redisReply *reply, const char *err, void *data) {
  answer_t *a = data;
  a->done++;
  a->at = uv_now(&loop);
  if (reply) a->reply = shr_redis_reply_keep(reply);
  snprintf(a->err, sizeof a->err, "%s", err ? err : "");
}

static void answer_reset(answer_t *a) {
  shr_redis_reply_free(a->reply);
  memset(a, 0, sizeof *a);
}

/* Sends the NULL-terminated words as one command; returns shr_redis_command's result. */
static int sendv(shr_redis_t *r, answer_t *a, unsigned timeout_ms, const char *first, ...) {
  const char *argv[16];
  int argc = 0;
  va_list ap;
  va_start(ap, first);
  for (const char *s = first; s && argc < 16; s = va_arg(ap, const char *)) argv[argc++] = s;
  va_end(ap);
  answer_reset(a);
  return shr_redis_command_timeout(r, on_answer, a, argc, argv, NULL, timeout_ms);
}

#define SEND(r, a, ...) sendv(r, a, 0, __VA_ARGS__, (const char *)NULL)
#define SEND_TIMEOUT(r, a, ms, ...) sendv(r, a, ms, __VA_ARGS__, (const char *)NULL)

/* Sends and waits up to 3 s for the answer. */
#define RUN(r, a, ...) (SEND(r, a, __VA_ARGS__), wait_for(&(a)->done, 1, 3000))

static const char *reply_str(const answer_t *a) {
  if (!a->reply) return a->err[0] ? a->err : "(no reply)";
  switch (a->reply->type) {
  case REDIS_REPLY_STRING:
  case REDIS_REPLY_STATUS:
  case REDIS_REPLY_ERROR:
    return a->reply->str;
  case REDIS_REPLY_NIL:
    return "(nil)";
  default:
    return "(other)";
  }
}

/* ---- sockets ---- */

static int listener(int backlog, int *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, backlog) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
    perror("listener");
    exit(2);
  }
  *port = ntohs(a.sin_port);
  return fd;
}

static int free_port(void) {
  int port, fd = listener(1, &port);
  close(fd);
  return port;
}

static void server(const char *what) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s/tests/harness/servers.sh %s '%s'", getenv("SHIELD_SOURCE_DIR"), what,
           getenv("SHIELD_TEST_DIR"));
  if (system(cmd) != 0) {
    fprintf(stderr, "failed: %s\n", cmd);
    exit(2);
  }
}

/* ---- tests ---- */

static void test_bad_urls(void) {
  const char *bad[] = {"http://127.0.0.1:6379", "redis://", "redis://127.0.0.1:0", "redis://127.0.0.1:99999",
                       "redis://127.0.0.1:1/x", "redis://127.0.0.1:1?db=2", "redis://pass@127.0.0.1:1",
                       "redis://:%zz@127.0.0.1:1", "redis://[::1:1", "unix://", "unix://redis.sock",
                       "unix:///tmp/r.sock?db=x", "unix:///tmp/r.sock?dbs=1", "unix:///tmp/r.sock#f",
                       "unix:///tmp/%zz.sock", "unix://pass@/tmp/r.sock",
                       "unix:///a/very/long/path/to/a/socket/that/does/not/fit/in/the/one/hundred/and/"
                       "eight/bytes/of/sun_path/in/the/sockaddr/of/a/unix/domain/socket.sock"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) CHECK(shr_redis_new(&loop, bad[i], "bad") == NULL);
  char good[128];
  snprintf(good, sizeof good, "redis://u:p%%40ss@127.0.0.1:%d/3", free_port());
  shr_redis_t *r = shr_redis_new(&loop, good, "good");
  CHECK(r != NULL);
  if (r) shr_redis_close(r);
  drain();
}

static void test_refused(void) {
  char u[64];
  snprintf(u, sizeof u, "redis://127.0.0.1:%d/0", free_port());
  shr_redis_t *r = shr_redis_new(&loop, u, "refused");
  answer_t a = {0};
  uint64_t t0 = uv_now(&loop);
  SEND(r, &a, "PING");
  CHECK(wait_for(&a.done, 1, 3000));
  CHECK_INT(1, a.done);
  CHECK_STR("redis: not connected", a.err);
  CHECK(a.reply == NULL);
  CHECK(a.at - t0 < 1000);
  CHECK(!shr_redis_connected(r));
  CHECK(shr_redis_stats(r)->connect_failures >= 1);
  /* Down between attempts: the next command fails at once, inside the call. */
  int rc = SEND(r, &a, "PING");
  CHECK_INT(-1, rc);
  CHECK_INT(1, a.done);
  CHECK_STR("redis: not connected", a.err);
  shr_redis_close(r);
  answer_reset(&a);
  drain();
}

static void test_connect_timeout(void) {
  /* A listener whose accept queue is full drops SYNs: the connect hangs. */
  int port, lfd = listener(0, &port), fill[3];
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  for (int i = 0; i < 3; i++) {
    fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    connect(fill[i], (struct sockaddr *)&sa, sizeof sa);
  }
  usleep(100 * 1000); /* let the fillers' handshakes settle in the kernel */
  char u[64];
  snprintf(u, sizeof u, "redis://127.0.0.1:%d/0", port);
  shr_redis_t *r = shr_redis_new(&loop, u, "blackhole");
  shr_redis_set_connect_timeout(r, 300);
  answer_t a = {0};
  uint64_t t0 = uv_now(&loop);
  CHECK_INT(0, SEND(r, &a, "PING")); /* queued behind the attempt */
  CHECK(wait_for(&a.done, 1, 3000));
  CHECK_STR("redis: not connected", a.err);
  CHECK(a.at - t0 >= 250 && a.at - t0 < 1500);
  CHECK_INT(1, (long long)shr_redis_stats(r)->connect_failures);
  shr_redis_close(r);
  answer_reset(&a);
  drain();
  for (int i = 0; i < 3; i++) close(fill[i]);
  close(lfd);
}

static void test_round_trip(shr_redis_t *r) {
  answer_t a = {0};
  CHECK(RUN(r, &a, "SET", "rt:k", "v1"));
  CHECK_INT(REDIS_REPLY_STATUS, a.reply->type);
  CHECK_STR("OK", reply_str(&a));
  CHECK(RUN(r, &a, "GET", "rt:k"));
  CHECK_INT(REDIS_REPLY_STRING, a.reply->type);
  CHECK_STR("v1", reply_str(&a));
  CHECK(RUN(r, &a, "GET", "rt:missing"));
  CHECK_INT(REDIS_REPLY_NIL, a.reply->type);
  CHECK(RUN(r, &a, "INCRBY", "rt:n", "41"));
  CHECK(RUN(r, &a, "INCR", "rt:n"));
  CHECK_INT(REDIS_REPLY_INTEGER, a.reply->type);
  CHECK_INT(42, a.reply->integer);
  CHECK(RUN(r, &a, "NOSUCHCMD", "x"));
  CHECK_INT(REDIS_REPLY_ERROR, a.reply->type);
  CHECK_STR("ERR unknown command 'NOSUCHCMD', with args beginning with: 'x' ", reply_str(&a));
  CHECK(RUN(r, &a, "RPUSH", "rt:l", "a", "b"));
  CHECK(RUN(r, &a, "LRANGE", "rt:l", "0", "-1"));
  CHECK_INT(REDIS_REPLY_ARRAY, a.reply->type);
  CHECK_INT(2, (long long)a.reply->elements);
  CHECK_STR("b", a.reply->element[1]->str);
  /* Binary-safe arguments. */
  const char *argv[] = {"SET", "rt:bin", "a\0b"};
  const size_t lens[] = {3, 6, 3};
  answer_reset(&a);
  shr_redis_command(r, on_answer, &a, 3, argv, lens);
  CHECK(wait_for(&a.done, 1, 3000));
  CHECK(RUN(r, &a, "GET", "rt:bin"));
  CHECK_INT(3, (long long)a.reply->len);
  CHECK(memcmp(a.reply->str, "a\0b", 3) == 0);
  answer_reset(&a);
}

/* A client of url (database db) writes a key that admin sees only in db. */
static void check_in_db(shr_redis_t *admin, const char *url, const char *db) {
  answer_t a = {0};
  shr_redis_t *c = shr_redis_new(&loop, url, "in-db");
  CHECK(RUN(c, &a, "SET", "sel:k", db));
  CHECK_STR("OK", reply_str(&a));
  CHECK(RUN(admin, &a, "GET", "sel:k"));
  CHECK_STR("(nil)", reply_str(&a));
  CHECK(RUN(admin, &a, "SELECT", db));
  CHECK(RUN(admin, &a, "GET", "sel:k"));
  CHECK_STR(db, reply_str(&a));
  CHECK(RUN(admin, &a, "DEL", "sel:k"));
  CHECK(RUN(admin, &a, "SELECT", "0"));
  shr_redis_close(c);
  answer_reset(&a);
}

/* A client of url gets its connection ready (AUTH accepted) and answers PING. */
static void check_ping(const char *url, const char *name) {
  answer_t a = {0};
  shr_redis_t *c = shr_redis_new(&loop, url, name);
  CHECK(RUN(c, &a, "PING"));
  CHECK_STR("PONG", reply_str(&a));
  shr_redis_close(c);
  answer_reset(&a);
}

static void test_select_and_auth(shr_redis_t *admin) {
  answer_t a = {0};
  char u[160];
  snprintf(u, sizeof u, "redis://127.0.0.1:%d/5", redis_port);
  check_in_db(admin, u, "5");

  /* A password with ':' and '@' travels %-encoded. */
  CHECK(RUN(admin, &a, "CONFIG", "SET", "requirepass", "s3:cr@t"));
  CHECK_STR("OK", reply_str(&a));
  snprintf(u, sizeof u, "redis://:s3%%3Acr%%40t@127.0.0.1:%d/0", redis_port);
  check_ping(u, "auth");
  snprintf(u, sizeof u, "redis://default:s3%%3Acr%%40t@127.0.0.1:%d/0", redis_port);
  check_ping(u, "acl");
  /* A wrong password never makes the connection ready. */
  snprintf(u, sizeof u, "redis://:wrong@127.0.0.1:%d/0", redis_port);
  shr_redis_t *denied = shr_redis_new(&loop, u, "denied");
  CHECK(RUN(denied, &a, "PING"));
  CHECK_STR("redis: not connected", a.err);
  CHECK(!shr_redis_connected(denied));
  shr_redis_close(denied);
  CHECK(RUN(admin, &a, "CONFIG", "SET", "requirepass", ""));
  CHECK_STR("OK", reply_str(&a));
  answer_reset(&a);
  drain();
}

/* unix:// URLs: the harness' Redis through its socket, with a database and a
 * password; a missing socket is retried like a refused TCP connect. */
static void test_unix_socket(shr_redis_t *admin) {
  answer_t a = {0};
  char u[256];
  const char *sock = getenv("SHIELD_TEST_REDIS_SOCKET");
  CHECK(sock && *sock); /* empty: the harness' folder path is too long for a socket */
  if (!sock || !*sock) return;
  snprintf(u, sizeof u, "unix://%s?db=6", sock);
  check_in_db(admin, u, "6");
  CHECK(RUN(admin, &a, "CONFIG", "SET", "requirepass", "s3:cr@t"));
  snprintf(u, sizeof u, "unix://:s3%%3Acr%%40t@%s", sock);
  check_ping(u, "unix-auth");
  CHECK(RUN(admin, &a, "CONFIG", "SET", "requirepass", ""));
  snprintf(u, sizeof u, "unix://%s.missing", sock);
  shr_redis_t *local = shr_redis_new(&loop, u, "unix-missing");
  CHECK(RUN(local, &a, "PING"));
  CHECK_STR("redis: not connected", a.err);
  CHECK(shr_redis_stats(local)->connect_failures >= 1);
  shr_redis_close(local);
  answer_reset(&a);
  drain();
}

static int in_order, out_of_order;

static void on_incr(shr_redis_t *r, redisReply *reply, const char *err, void *data) {
  long long want = (long long)(intptr_t)data;
  if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == want && in_order == want - 1)
    in_order++;
  else
    out_of_order++;
}

static void test_pipeline(shr_redis_t *r) {
  enum { N = 10000 };
  answer_t a = {0};
  CHECK(RUN(r, &a, "DEL", "pipe:n"));
  uint64_t sent = shr_redis_stats(r)->commands_sent;
  in_order = out_of_order = 0;
  const char *argv[] = {"INCR", "pipe:n"};
  int refused = 0;
  for (long i = 1; i <= N; i++) refused += shr_redis_command(r, on_incr, (void *)(intptr_t)i, 2, argv, NULL) != 0;
  CHECK_INT(0, refused);
  CHECK(wait_for(&in_order, N, 10000));
  CHECK_INT(N, in_order);
  CHECK_INT(0, out_of_order);
  CHECK_INT(N, (long long)(shr_redis_stats(r)->commands_sent - sent));
  answer_reset(&a);
}

static int hook_calls;

static void on_setname(shr_redis_t *r, redisReply *reply, const char *err, void *data) {}

static void on_connected(shr_redis_t *r, void *data) {
  hook_calls++;
  const char *argv[] = {"CLIENT", "SETNAME", data};
  shr_redis_command(r, on_setname, NULL, 3, argv, NULL);
}

static void test_hook_order(shr_redis_t *r) {
  /* Registered before the first connect completed: its CLIENT SETNAME went out
   * before the GETNAME that was queued during the connect. */
  answer_t a = {0};
  CHECK(RUN(r, &a, "CLIENT", "GETNAME"));
  CHECK_STR("shieldtest", reply_str(&a));
  CHECK_INT(1, hook_calls);
  answer_reset(&a);
}

static void test_restart(shr_redis_t *r) {
  static const char src[] = "return {KEYS[1], ARGV[1], tonumber(ARGV[2]) + 1}";
  shr_redis_script_t *s = shr_redis_script_new(src, sizeof src - 1);
  const char *args[] = {"sk", "a", "41"};
  answer_t a = {0}, blpop = {0}, timed = {0};
  for (int i = 0; i < 2; i++) {
    answer_reset(&a);
    shr_redis_script_call(r, s, on_answer, &a, 1, 3, args, NULL);
    CHECK(wait_for(&a.done, 1, 3000));
    CHECK(a.reply && a.reply->type == REDIS_REPLY_ARRAY && a.reply->elements == 3);
    if (a.reply && a.reply->elements == 3) {
      CHECK_STR("sk", a.reply->element[0]->str);
      CHECK_STR("a", a.reply->element[1]->str);
      CHECK_INT(42, a.reply->element[2]->integer);
    }
  }
  CHECK_INT(0, (long long)shr_redis_stats(r)->script_reloads);
  /* A script's own error reply passes through untouched. */
  static const char bad_src[] = "return redis.error_reply('MYERR bad input')";
  shr_redis_script_t *bad = shr_redis_script_new(bad_src, sizeof bad_src - 1);
  answer_reset(&a);
  shr_redis_script_call(r, bad, on_answer, &a, 0, 0, NULL, NULL);
  CHECK(wait_for(&a.done, 1, 3000));
  CHECK_STR("MYERR bad input", reply_str(&a));
  shr_redis_script_free(bad);

  /* Commands in flight when the server goes away get "connection lost". */
  SEND(r, &blpop, "BLPOP", "restart:none", "10");
  SEND_TIMEOUT(r, &timed, 20000, "BLPOP", "restart:none2", "10");
  uv_run(&loop, UV_RUN_NOWAIT); /* write them */
  server("redis-stop");
  CHECK(wait_for(&blpop.done, 1, 3000));
  CHECK(wait_for(&timed.done, 1, 3000));
  CHECK_STR("redis: connection lost", blpop.err);
  CHECK_STR("redis: connection lost", timed.err);
  CHECK(!shr_redis_connected(r));
  /* New commands fail fast while the server is down. */
  uint64_t t0 = uv_now(&loop);
  SEND(r, &a, "PING");
  CHECK(wait_for(&a.done, 1, 3000));
  CHECK_STR("redis: not connected", a.err);
  CHECK(a.at - t0 < 500);
  answer_reset(&a);
  shr_redis_script_call(r, s, on_answer, &a, 1, 3, args, NULL);
  CHECK(wait_for(&a.done, 1, 3000));
  CHECK_STR("redis: not connected", a.err);

  /* Attempts go on, refused, without piling anything up, each gap about twice
   * the one before (capped exponential backoff). */
  uint64_t at[3];
  for (int k = 0; k < 3; k++) {
    want_failures = shr_redis_stats(r)->connect_failures + 1;
    CHECK(wait_cond(failures_reached, r, 6000));
    uv_update_time(&loop);
    at[k] = uv_now(&loop);
  }
  uint64_t gap1 = at[1] - at[0], gap2 = at[2] - at[1];
  int doubling = gap1 >= SHR_REDIS_BACKOFF_MIN_MS && gap2 >= gap1 * 3 / 2 && gap2 <= gap1 * 3;
  CHECK(doubling);
  if (!doubling) fprintf(stderr, "reconnect gaps: %llu then %llu ms\n", (unsigned long long)gap1, (unsigned long long)gap2);
  server("redis-start");
  CHECK(connected_flag(r, 15000));
  CHECK_INT(1, (long long)shr_redis_stats(r)->reconnects);
  CHECK_INT(2, hook_calls);
  CHECK(RUN(r, &a, "CLIENT", "GETNAME"));
  CHECK_STR("shieldtest", reply_str(&a));

  /* The restarted server forgot the script: NOSCRIPT, EVAL, same answer. */
  for (int i = 0; i < 2; i++) {
    answer_reset(&a);
    shr_redis_script_call(r, s, on_answer, &a, 1, 3, args, NULL);
    CHECK(wait_for(&a.done, 1, 3000));
    CHECK(a.reply && a.reply->type == REDIS_REPLY_ARRAY && a.reply->elements == 3);
    if (a.reply && a.reply->elements == 3) CHECK_INT(42, a.reply->element[2]->integer);
  }
  CHECK_INT(1, (long long)shr_redis_stats(r)->script_reloads);
  shr_redis_script_free(s);
  answer_reset(&a);
  answer_reset(&blpop);
  answer_reset(&timed);
}

static void test_watchdog(void) {
  /* The kernel completes handshakes on a listener that never accepts: a
   * connection that looks fine and never answers, like a half-open one. */
  int port, lfd = listener(16, &port);
  char u[64];
  snprintf(u, sizeof u, "redis://127.0.0.1:%d/0", port);
  shr_redis_t *r = shr_redis_new(&loop, u, "mute");
  CHECK(connected_flag(r, 3000));
  answer_t plain = {0}, timed = {0};
  uint64_t t0 = uv_now(&loop);
  SEND(r, &plain, "PING");
  SEND_TIMEOUT(r, &timed, 300, "BLPOP", "x", "0");
  CHECK(wait_for(&timed.done, 1, 3000));
  CHECK_STR("timeout", timed.err);
  CHECK(timed.at - t0 >= 250 && timed.at - t0 < 1500);
  CHECK(wait_for(&plain.done, 1, 1000));
  CHECK_STR("redis: connection lost", plain.err);
  CHECK_INT(1, (long long)shr_redis_stats(r)->timeouts);
  /* The connection was replaced. */
  CHECK(connected_flag(r, 3000));
  CHECK_INT(1, (long long)shr_redis_stats(r)->reconnects);
  shr_redis_close(r);
  answer_reset(&plain);
  answer_reset(&timed);
  drain();
  close(lfd);
}

static void test_timeout_not_hit(shr_redis_t *r) {
  answer_t a = {0};
  uint64_t before = shr_redis_stats(r)->timeouts;
  SEND_TIMEOUT(r, &a, 3000, "BLPOP", "wd:none", "1");
  CHECK(wait_for(&a.done, 1, 5000));
  CHECK_STR("(nil)", reply_str(&a));
  CHECK_INT(0, (long long)(shr_redis_stats(r)->timeouts - before));
  answer_reset(&a);
}

static void close_from_callback(shr_redis_t *r, redisReply *reply, const char *err, void *data) {
  *(int *)data = 1;
  shr_redis_close(r);
}

static void test_close(void) {
  shr_redis_t *r = shr_redis_new(&loop, url, "closing");
  CHECK(connected_flag(r, 3000));
  answer_t a = {0}, b = {0};
  SEND(r, &a, "BLPOP", "close:none", "5");
  SEND(r, &b, "SET", "close:k", "v");
  shr_redis_close(r);
  CHECK_INT(1, a.done);
  CHECK_STR("closed", a.err);
  CHECK_INT(1, b.done);
  CHECK_STR("closed", b.err);
  drain();

  /* Closing while connecting answers the queued commands. */
  r = shr_redis_new(&loop, url, "closing");
  CHECK_INT(0, SEND(r, &a, "PING"));
  shr_redis_close(r);
  CHECK_INT(1, a.done);
  CHECK_STR("closed", a.err);
  drain();

  /* Closed from inside a reply callback: the rest are answered "closed" too. */
  r = shr_redis_new(&loop, url, "closing");
  CHECK(connected_flag(r, 3000));
  int closed = 0;
  const char *ping[] = {"PING"};
  shr_redis_command(r, close_from_callback, &closed, 1, ping, NULL);
  SEND(r, &a, "BLPOP", "close:none", "5");
  CHECK(wait_for(&closed, 1, 3000));
  CHECK(wait_for(&a.done, 1, 1000));
  CHECK_STR("closed", a.err);
  answer_reset(&a);
  answer_reset(&b);
  drain();
}

int main(void) {
  const char *port = getenv("SHIELD_TEST_REDIS_PORT");
  if (!port || !getenv("SHIELD_TEST_DIR") || !getenv("SHIELD_SOURCE_DIR")) {
    fprintf(stderr, "run under tests/harness/with-servers.sh\n");
    return 2;
  }
  redis_port = atoi(port);
  snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", redis_port);
  uv_loop_init(&loop);

  test_bad_urls();
  test_refused();
  test_connect_timeout();

  shr_redis_t *r = shr_redis_new(&loop, url, "main");
  shr_redis_on_connect(r, on_connected, "shieldtest");
  test_hook_order(r);
  test_round_trip(r);
  test_select_and_auth(r);
  test_unix_socket(r);
  test_pipeline(r);
  test_timeout_not_hit(r);
  test_restart(r);
  shr_redis_close(r);
  drain();

  test_watchdog();
  test_close();

  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_INT(0, uv_loop_close(&loop));
  return test_summary();
}
