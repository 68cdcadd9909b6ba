/* The HTTP client (runtime/http_client.c) against the fake server: a round
 * trip with headers and a taken body, a request started from a callback,
 * cancels (no callback), bad input, timeout_ms, the body cap, and close with
 * transfers in flight (each gets "closed" once). Ends with every handle
 * closed and the loop empty. Run under tests/httpc/with-fake.sh. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_client.h"
#include "test_check.h"

static uv_loop_t loop;
static const char *base;

/* One request's outcome. */
typedef struct {
  int calls;
  long status;
  char err[512];
  char *body;       /* taken from the response */
  size_t body_len;
  char x_echo[16];
  int x_multi;      /* X-Multi headers seen */
  int upper_names;  /* header names with an upper-case letter */
} result_t;

static int total_calls; /* every on_result call */

static void on_result(shr_http_client_res_t *res, const char *err, void *data) {
  result_t *r = data;
  r->calls++;
  total_calls++;
  if (!res) {
    snprintf(r->err, sizeof r->err, "%s", err);
    return;
  }
  r->status = res->status;
  for (size_t i = 0; i < res->nheaders; i++) {
    const char *n = res->headers[i].name;
    if (strcmp(n, "x-echo") == 0) snprintf(r->x_echo, sizeof r->x_echo, "%s", res->headers[i].value);
    if (strcmp(n, "x-multi") == 0) r->x_multi++;
    for (; *n; n++)
      if (*n >= 'A' && *n <= 'Z') r->upper_names++;
  }
  r->body = res->body;
  r->body_len = res->body_len;
  res->body = NULL;
}

static void result_clear(result_t *r) {
  free(r->body);
  memset(r, 0, sizeof *r);
}

static int deadline_hit;
static void on_deadline(uv_timer_t *t) { deadline_hit = 1; }

/* Runs the loop until *count reaches want or ms pass. */
static void run_until(int *count, int want, int ms) {
  uv_timer_t timer;
  uv_timer_init(&loop, &timer);
  deadline_hit = 0;
  uv_timer_start(&timer, on_deadline, (uint64_t)ms, 0);
  while (*count < want && !deadline_hit) uv_run(&loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&timer, NULL);
  uv_run(&loop, UV_RUN_NOWAIT);
}

static void run_for(int ms) { run_until(&deadline_hit, 1, ms); }

static shr_http_client_req_t get(const char *path, char *url, size_t len) {
  snprintf(url, len, "%s%s", base, path);
  return (shr_http_client_req_t){.method = "GET", .url = url, .timeout_ms = 10000};
}

static void test_round_trip(shr_http_client_t *c) {
  char url[256];
  snprintf(url, sizeof url, "%s/_echo?q=1", base);
  shr_http_client_header_t hs[] = {{"X-Test", "yes"}, {"Content-Type", "text/plain"}};
  shr_http_client_req_t req = {.method = "POST", .url = url, .headers = hs, .nheaders = 2,
                               .body = "hello", .body_len = 5, .timeout_ms = 10000};
  result_t r = {0};
  CHECK_INT(0, shr_http_request(c, &req, on_result, &r, NULL));
  CHECK_INT(0, r.calls); /* never inside the call */
  run_until(&r.calls, 1, 5000);
  CHECK_INT(1, r.calls);
  CHECK_INT(200, r.status);
  CHECK_STR("1", r.x_echo);
  CHECK_INT(2, r.x_multi);
  CHECK_INT(0, r.upper_names);
  CHECK(r.body && strstr(r.body, "\"body\": \"hello\""));
  CHECK(r.body && strstr(r.body, "\"x-test\": \"yes\""));
  CHECK(r.body && strstr(r.body, "\"content-type\": \"text/plain\""));
  CHECK(r.body && strlen(r.body) == r.body_len);
  result_clear(&r);
}

/* A callback that starts the next request: three in a chain. */
typedef struct {
  shr_http_client_t *c;
  int done;
  long statuses[3];
  char url[256];
} chain_t;

static void on_chain(shr_http_client_res_t *res, const char *err, void *data) {
  chain_t *ch = data;
  ch->statuses[ch->done++] = res ? res->status : -1;
  if (ch->done < 3) {
    shr_http_client_req_t req = {.method = "GET", .url = ch->url, .timeout_ms = 10000};
    CHECK_INT(0, shr_http_request(ch->c, &req, on_chain, ch, NULL));
  }
}

static void test_chain(shr_http_client_t *c) {
  chain_t ch = {.c = c};
  shr_http_client_req_t req = get("/_echo", ch.url, sizeof ch.url);
  CHECK_INT(0, shr_http_request(c, &req, on_chain, &ch, NULL));
  run_until(&ch.done, 3, 5000);
  CHECK_INT(3, ch.done);
  CHECK_INT(200, ch.statuses[0]);
  CHECK_INT(200, ch.statuses[2]);
}

static void test_cancel(shr_http_client_t *c) {
  char url[256];
  shr_http_client_req_t req = get("/_echo?delay_ms=100", url, sizeof url);
  result_t r[10] = {{0}};
  shr_http_xfer_t *x[10];
  shr_http_client_stats_t s0, s1;
  shr_http_client_stats(c, &s0);
  for (int i = 0; i < 10; i++) CHECK_INT(0, shr_http_request(c, &req, on_result, &r[i], &x[i]));
  run_for(20); /* let them reach the server */
  int before = total_calls;
  for (int i = 0; i < 10; i += 2) shr_http_cancel(x[i]);
  run_until(&total_calls, before + 5, 5000);
  run_for(200); /* a cancelled one must not call late */
  for (int i = 0; i < 10; i++) {
    CHECK_INT(i % 2 ? 1 : 0, r[i].calls);
    if (i % 2) CHECK_INT(200, r[i].status);
    result_clear(&r[i]);
  }
  shr_http_client_stats(c, &s1);
  CHECK_INT(5, (long long)(s1.cancelled - s0.cancelled));
  CHECK_INT(0, (long long)s1.active);
}

static void test_bad_input(shr_http_client_t *c) {
  char url[256];
  result_t r = {0};
  shr_http_client_req_t req = get("/_echo", url, sizeof url);
  req.method = "G T";
  CHECK_INT(-EINVAL, shr_http_request(c, &req, on_result, &r, NULL));
  CHECK_STR("bad method \"G T\"", shr_http_client_error(c));
  req.method = "GET";
  shr_http_client_header_t bad_name[] = {{"X A", "1"}};
  req.headers = bad_name;
  req.nheaders = 1;
  CHECK_INT(-EINVAL, shr_http_request(c, &req, on_result, &r, NULL));
  CHECK_STR("bad header name \"X A\"", shr_http_client_error(c));
  shr_http_client_header_t bad_value[] = {{"X-A", "1\r\nX-B: 2"}};
  req.headers = bad_value;
  CHECK_INT(-EINVAL, shr_http_request(c, &req, on_result, &r, NULL));
  CHECK_STR("bad header value for X-A (CR or LF)", shr_http_client_error(c));
  run_for(50);
  CHECK_INT(0, r.calls);
}

static void test_timeout_and_cap(shr_http_client_t *c) {
  char url[256], url2[256];
  result_t r = {0}, big = {0};
  shr_http_client_req_t req = get("/_hang", url, sizeof url);
  req.timeout_ms = 200;
  CHECK_INT(0, shr_http_request(c, &req, on_result, &r, NULL));
  shr_http_client_req_t req2 = get("/_echo?bytes=11", url2, sizeof url2);
  req2.max_body = 10;
  CHECK_INT(0, shr_http_request(c, &req2, on_result, &big, NULL));
  uint64_t t0 = uv_now(&loop);
  run_until(&r.calls, 1, 5000);
  uint64_t took = uv_now(&loop) - t0;
  CHECK_STR("timeout", r.err);
  CHECK(took >= 190 && took < 2000);
  run_until(&big.calls, 1, 5000);
  CHECK(strncmp(big.err, "response too large: ", 20) == 0);
  result_clear(&r);
  result_clear(&big);
}

/* Close with transfers in flight: each gets "closed" once, and a request
 * made from that callback is refused. */
typedef struct {
  shr_http_client_t *c;
  int calls;
  int refused;
  char err[64];
} closing_t;

static void on_closed(shr_http_client_res_t *res, const char *err, void *data) {
  closing_t *k = data;
  k->calls++;
  snprintf(k->err, sizeof k->err, "%s", err ? err : "(answer)");
  shr_http_client_req_t req = {.method = "GET", .url = "http://127.0.0.1:1/", .timeout_ms = 100};
  if (shr_http_request(k->c, &req, on_closed, k, NULL) == -ECANCELED) k->refused++;
}

static void test_close(shr_http_client_t *c) {
  char url[256];
  closing_t k[3] = {{.c = c}, {.c = c}, {.c = c}};
  shr_http_client_req_t req = get("/_hang", url, sizeof url);
  for (int i = 0; i < 3; i++) CHECK_INT(0, shr_http_request(c, &req, on_closed, &k[i], NULL));
  run_for(100); /* connected and waiting */
  shr_http_client_close(c);
  for (int i = 0; i < 3; i++) {
    CHECK_INT(1, k[i].calls);
    CHECK_STR("closed", k[i].err);
    CHECK_INT(1, k[i].refused);
  }
}

int main(void) {
  base = getenv("SHIELD_FAKE_URL");
  if (!base) {
    fprintf(stderr, "SHIELD_FAKE_URL is not set (run under tests/httpc/with-fake.sh)\n");
    return 2;
  }
  uv_loop_init(&loop);
  shr_http_client_t *c = shr_http_client_new(&loop, 64);
  CHECK(c != NULL);
  test_round_trip(c);
  test_chain(c);
  test_cancel(c);
  test_bad_input(c);
  test_timeout_and_cap(c);
  test_close(c);
  /* Every handle closes and the client frees itself. */
  CHECK_INT(0, uv_run(&loop, UV_RUN_DEFAULT));
  CHECK_INT(0, uv_loop_close(&loop));
  return test_summary();
}
