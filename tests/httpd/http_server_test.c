/* The HTTP server transport (runtime/http_server.h) in-process on free ports:
 * a small handler on the loop of the main thread, raw-socket clients on a
 * second thread. Bad input (table), auth, header and idle timeouts,
 * pipelining, byte-split requests, keep-alive, HTTP/1.0, Connection: close,
 * 100-continue, async answers, clients leaving early, SSE (normal, client
 * leaving, slow reader dropped), the connection limit, graceful stop, close.
 * Ends with every handle closed and the loop empty. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http_server.h"
#include "test_check.h"

static uv_loop_t loop;
static uv_async_t client_done;
static shr_http_server_t *srv, *asrv;
static int port, aport;
static int servers_closed;

/* Set on the loop's thread, read by the client thread. */
static atomic_int handled, async_noop, async_closed, sse_closed, sse_dropped, sse_write_fail;

/* ---- the handler (loop thread) ---- */

typedef struct async_answer {
  uv_timer_t timer;
  shr_http_req_t *req;
  char n[16];
  int mode; /* SSE: 0 three events, 1 until the client leaves, 2 flood */
  int sent;
} async_answer_t;

static void free_answer(uv_handle_t *h) { free(h->data); }

static void async_fire(uv_timer_t *t) {
  async_answer_t *a = t->data;
  char body[64];
  int n = snprintf(body, sizeof(body), "async %s", a->n);
  if (shr_http_respond(a->req, 200, "text/plain", NULL, body, (size_t)n) < 0) atomic_fetch_add(&async_noop, 1);
  uv_close((uv_handle_t *)t, free_answer);
}

static void async_gone(shr_http_req_t *req, void *data) {
  ASSERT_EQ(0, shr_http_req_alive(req));
  atomic_fetch_add(&async_closed, 1);
}

static void sse_tick(uv_timer_t *t) {
  async_answer_t *a = t->data;
  if (a->mode == 2) {
    static char chunk[16384];
    memset(chunk, 'x', sizeof(chunk));
    if (shr_http_stream_write(a->req, chunk, sizeof(chunk)) == 0) return;
    atomic_store(&sse_write_fail, 1);
    atomic_store(&sse_dropped, 1);
  } else {
    char ev[64];
    int n = snprintf(ev, sizeof(ev), "id: %d\nevent: tick\ndata: {\"n\":%d}\n\n", a->sent, a->sent);
    int rc = shr_http_stream_write(a->req, ev, (size_t)n);
    a->sent++;
    if (a->mode == 1) return; /* may race its client's leaving; on_close follows */
    ASSERT_EQ(0, rc);
    if (a->sent < 3) return;
  }
  shr_http_stream_end(a->req);
  uv_close((uv_handle_t *)t, free_answer);
}

static void sse_gone(shr_http_req_t *req, void *data) {
  async_answer_t *a = data;
  atomic_fetch_add(&sse_closed, 1);
  ASSERT_EQ(-1, shr_http_stream_write(req, "x", 1));
  shr_http_stream_end(req);
  uv_close((uv_handle_t *)&a->timer, free_answer);
}

static async_answer_t *new_answer(shr_http_req_t *req) {
  async_answer_t *a = calloc(1, sizeof(*a));
  ASSERT(a);
  a->req = req;
  uv_timer_init(&loop, &a->timer);
  a->timer.data = a;
  return a;
}

static void handler(shr_http_req_t *req, void *data) {
  const char *path = shr_http_req_path(req);
  char q[256], ms[16], mode[16];
  if (strcmp(path, "/echo") == 0) {
    size_t blen;
    const char *body = shr_http_req_body(req, &blen);
    const char *h = shr_http_req_header(req, "x-TEST");
    if (shr_http_req_param(req, "q", q, sizeof(q)) < 0) strcpy(q, "-");
    char out[2048], extra[160];
    int n = snprintf(out, sizeof(out), "%s %s q=%s h=%s body=%.*s", shr_http_req_method(req), path, q,
                     h ? h : "-", (int)blen, body);
    snprintf(extra, sizeof(extra), "X-Remote: %s\r\nX-Headers: %zu\r\n", shr_http_req_remote(req),
             shr_http_req_header_count(req));
    ASSERT_EQ(0, shr_http_respond(req, 200, "text/plain", extra, out, (size_t)n));
  } else if (strcmp(path, "/async") == 0) {
    async_answer_t *a = new_answer(req);
    ASSERT(shr_http_req_param(req, "ms", ms, sizeof(ms)) > 0);
    ASSERT(shr_http_req_param(req, "n", a->n, sizeof(a->n)) > 0);
    ASSERT_EQ(0, shr_http_req_on_close(req, async_gone, a));
    uv_timer_start(&a->timer, async_fire, (uint64_t)atoi(ms), 0);
    atomic_fetch_add(&handled, 1);
  } else if (strcmp(path, "/sse") == 0) {
    async_answer_t *a = new_answer(req);
    ASSERT(shr_http_req_param(req, "mode", mode, sizeof(mode)) > 0);
    a->mode = atoi(mode);
    ASSERT_EQ(0, shr_http_req_on_close(req, sse_gone, a));
    ASSERT_EQ(0, shr_http_stream_start(req, 200, "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n"));
    uv_timer_start(&a->timer, sse_tick, 5, a->mode == 2 ? 1 : 20);
  } else if (strcmp(path, "/health") == 0) {
    ASSERT_EQ(0, shr_http_respond(req, 200, "application/json", NULL, "{\"status\":\"up\"}", 15));
  } else if (strcmp(path, "/stop") == 0) {
    shr_http_server_stop_accepting(srv);
    ASSERT_EQ(0, shr_http_respond(req, 200, "text/plain", NULL, "stopping", 8));
  } else {
    ASSERT_EQ(0, shr_http_problem(req, 404, "Not Found", "no route \"here\"\n"));
  }
}

/* ---- client side (second thread): raw sockets ---- */

typedef struct client {
  int fd;
  size_t len;
  char buf[1 << 16];
} client_t;

typedef struct response {
  int status;
  char head[8192];
  char body[1 << 15];
  size_t body_len;
} response_t;

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cl_open(client_t *cl, int to_port, int rcvbuf) {
  cl->len = 0;
  cl->fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT(cl->fd >= 0);
  if (rcvbuf) setsockopt(cl->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  struct timeval tv = {5, 0};
  setsockopt(cl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  int one = 1;
  setsockopt(cl->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)to_port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(cl->fd, (struct sockaddr *)&a, sizeof(a)) == 0) return 0;
  int e = errno;
  close(cl->fd);
  cl->fd = -1;
  return -e;
}

static void cl_close(client_t *cl) {
  close(cl->fd);
  cl->fd = -1;
}

static int cl_sendn(client_t *cl, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = send(cl->fd, s, n, MSG_NOSIGNAL);
    if (w <= 0) return -1;
    s += w;
    n -= (size_t)w;
  }
  return 0;
}

static int cl_send(client_t *cl, const char *s) { return cl_sendn(cl, s, strlen(s)); }

/* One more recv into the buffer: bytes, 0 on EOF, -1 on error or timeout. */
static ssize_t cl_fill(client_t *cl) {
  ASSERT(cl->len < sizeof(cl->buf) - 1);
  ssize_t n = recv(cl->fd, cl->buf + cl->len, sizeof(cl->buf) - cl->len - 1, 0);
  if (n > 0) cl->len += (size_t)n;
  return n < 0 ? -1 : n;
}

static void cl_consume(client_t *cl, size_t n) {
  memmove(cl->buf, cl->buf + n, cl->len - n);
  cl->len -= n;
}

static const char *find_header(const char *head, const char *name, char *out, size_t outlen) {
  size_t nl = strlen(name);
  for (const char *line = strstr(head, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n")) {
    const char *l = line + 2;
    if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
      const char *v = l + nl + 1;
      while (*v == ' ') v++;
      size_t vl = strcspn(v, "\r");
      snprintf(out, outlen, "%.*s", (int)vl, v);
      return out;
    }
  }
  return NULL;
}

/* Reads one response framed by Content-Length (none, or head_only: no body).
 * 0, or -1 when the connection ends first. */
static int cl_read_response(client_t *cl, response_t *r, int head_only) {
  char *end;
  while (!(cl->buf[cl->len] = '\0', end = strstr(cl->buf, "\r\n\r\n")))
    if (cl_fill(cl) <= 0) return -1;
  size_t hl = (size_t)(end - cl->buf) + 2;
  ASSERT(hl < sizeof(r->head));
  memcpy(r->head, cl->buf, hl);
  r->head[hl] = '\0';
  cl_consume(cl, hl + 2);
  ASSERT_EQ(1, sscanf(r->head, "HTTP/1.1 %d", &r->status));
  char v[32];
  r->body_len = !head_only && find_header(r->head, "Content-Length", v, sizeof(v)) ? (size_t)atol(v) : 0;
  ASSERT(r->body_len < sizeof(r->body));
  while (cl->len < r->body_len)
    if (cl_fill(cl) <= 0) return -1;
  memcpy(r->body, cl->buf, r->body_len);
  r->body[r->body_len] = '\0';
  cl_consume(cl, r->body_len);
  return 0;
}

static int cl_response(client_t *cl, response_t *r) { return cl_read_response(cl, r, 0); }

/* 1 when the server ends the connection (EOF or reset) within ms; data
 * arriving meanwhile is dropped. */
static int cl_closed(client_t *cl, int ms) {
  long long deadline = now_ms() + ms;
  for (;;) {
    long long left = deadline - now_ms();
    if (left <= 0) return 0;
    struct pollfd p = {.fd = cl->fd, .events = POLLIN};
    if (poll(&p, 1, (int)left) <= 0) continue;
    char tmp[65536];
    ssize_t n = recv(cl->fd, tmp, sizeof(tmp), 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) return 1;
  }
}

static int wait_atomic(atomic_int *v, int want, int ms) {
  long long deadline = now_ms() + ms;
  while (atomic_load(v) < want && now_ms() < deadline) usleep(5000);
  return atomic_load(v) >= want;
}

static void request(client_t *cl, const char *req, response_t *r) {
  ASSERT_EQ(0, cl_send(cl, req));
  ASSERT_EQ(0, cl_response(cl, r));
}

static int is_hex16(const char *s) { return strlen(s) == 16 && strspn(s, "0123456789abcdef") == 16; }

/* ---- client scenarios ---- */

static void basic(void) {
  client_t *cl = malloc(sizeof(*cl));
  response_t *r = malloc(sizeof(*r));
  char v[256], remote[64];
  ASSERT_EQ(0, cl_open(cl, port, 0));
  request(cl, "GET /echo?x=1&q=a%20b+c HTTP/1.1\r\nHost: t\r\nX-Test: Hi\r\nX-Request-Id: abc-123\r\n\r\n", r);
  ASSERT_EQ(200, r->status);
  ASSERT_STR("GET /echo q=a b c h=Hi body=", r->body);
  ASSERT_STR("abc-123", find_header(r->head, "X-Request-Id", v, sizeof(v)));
  ASSERT_STR("text/plain", find_header(r->head, "Content-Type", v, sizeof(v)));
  ASSERT(find_header(r->head, "Connection", v, sizeof(v)) == NULL);
  ASSERT(find_header(r->head, "X-Remote", remote, sizeof(remote)));
  ASSERT(strncmp(remote, "127.0.0.1:", 10) == 0);
  /* Keep-alive: the same connection (same remote port) serves the next one. */
  request(cl, "POST /echo HTTP/1.1\r\nHost: t\r\nX-Empty:\r\nContent-Length: 5\r\n\r\nhello", r);
  ASSERT_EQ(200, r->status);
  ASSERT_STR("3", find_header(r->head, "X-Headers", v, sizeof(v)));
  ASSERT_STR("POST /echo q=- h=- body=hello", r->body);
  ASSERT_STR(remote, find_header(r->head, "X-Remote", v, sizeof(v)));
  ASSERT(is_hex16(find_header(r->head, "X-Request-Id", v, sizeof(v))));
  /* A chunked body, and a request id that is not printable ASCII is replaced. */
  request(cl, "PUT /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\nX-Request-Id: a b\r\n\r\n"
              "3\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n", r);
  ASSERT_STR("PUT /echo q=- h=- body=abcde", r->body);
  ASSERT(is_hex16(find_header(r->head, "X-Request-Id", v, sizeof(v))));
  request(cl, "GET /nowhere HTTP/1.1\r\n\r\n", r);
  ASSERT_EQ(404, r->status);
  ASSERT_STR("application/problem+json", find_header(r->head, "Content-Type", v, sizeof(v)));
  /* JSON escaping of the detail: quotes and a control character. */
  ASSERT_STR("{\"type\":\"about:blank\",\"title\":\"Not Found\",\"status\":404,"
             "\"detail\":\"no route \\\"here\\\"\\u000a\"}", r->body);
  /* HEAD: the length is announced, no body follows. */
  ASSERT_EQ(0, cl_send(cl, "HEAD /health HTTP/1.1\r\n\r\n"));
  ASSERT_EQ(0, cl_read_response(cl, r, 1));
  ASSERT_EQ(200, r->status);
  ASSERT_STR("15", find_header(r->head, "Content-Length", v, sizeof(v)));
  request(cl, "GET /echo?q=after-head HTTP/1.1\r\n\r\n", r);
  ASSERT_STR("GET /echo q=after-head h=- body=", r->body);
  cl_close(cl);
  free(cl);
  free(r);
}

typedef struct bad_case {
  const char *name;
  const char *prefix;   /* sent first ("many small headers": then 1000 "A: b" lines) */
  char fill;            /* then fill_n bytes of fill */
  size_t fill_n;
  const char *suffix;
  int status;
  const char *body;     /* exact problem+json */
} bad_case_t;

static const bad_case_t bad_cases[] = {
  {"request line", "GARBAGE\r\n\r\n", 0, 0, "", 400,
   "{\"type\":\"about:blank\",\"title\":\"Bad Request\",\"status\":400,"
   "\"detail\":\"Invalid method encountered\"}"},
  {"bad version", "GET / HTTP/7.5\r\n\r\n", 0, 0, "", 400,
   "{\"type\":\"about:blank\",\"title\":\"Bad Request\",\"status\":400,"
   "\"detail\":\"Invalid HTTP version\"}"},
  {"bad content-length", "POST /echo HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 0, 0, "", 400,
   "{\"type\":\"about:blank\",\"title\":\"Bad Request\",\"status\":400,"
   "\"detail\":\"Invalid character in Content-Length\"}"},
  {"header without colon", "GET / HTTP/1.1\r\nNoColon\r\n\r\n", 0, 0, "", 400,
   "{\"type\":\"about:blank\",\"title\":\"Bad Request\",\"status\":400,"
   "\"detail\":\"Invalid header token\"}"},
  {"control byte in target", "GET /a\x01b HTTP/1.1\r\n\r\n", 0, 0, "", 400,
   "{\"type\":\"about:blank\",\"title\":\"Bad Request\",\"status\":400,"
   "\"detail\":\"Invalid char in url path\"}"},
  {"huge header", "GET /echo HTTP/1.1\r\nX-Big: ", 'a', 5000, "\r\n\r\n", 431,
   "{\"type\":\"about:blank\",\"title\":\"Request Header Fields Too Large\",\"status\":431,"
   "\"detail\":\"request head exceeds 4096 bytes\"}"},
  {"many small headers", "GET /echo HTTP/1.1\r\n", 0, 0, "", 431,
   "{\"type\":\"about:blank\",\"title\":\"Request Header Fields Too Large\",\"status\":431,"
   "\"detail\":\"request head exceeds 4096 bytes\"}"},
  {"huge target", "GET /", 'a', 5000, " HTTP/1.1\r\n\r\n", 414,
   "{\"type\":\"about:blank\",\"title\":\"URI Too Long\",\"status\":414,"
   "\"detail\":\"request target exceeds 4096 bytes\"}"},
  {"content-length too big", "POST /echo HTTP/1.1\r\nContent-Length: 2000\r\n\r\n", 0, 0, "", 413,
   "{\"type\":\"about:blank\",\"title\":\"Content Too Large\",\"status\":413,"
   "\"detail\":\"body exceeds 1024 bytes\"}"},
  {"chunked too big", "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n", 'x', 1024,
   "\r\n1\r\nx\r\n0\r\n\r\n", 413,
   "{\"type\":\"about:blank\",\"title\":\"Content Too Large\",\"status\":413,"
   "\"detail\":\"body exceeds 1024 bytes\"}"},
  {"unknown expectation", "POST /echo HTTP/1.1\r\nExpect: teapot\r\nContent-Length: 1\r\n\r\n", 0, 0, "", 417,
   "{\"type\":\"about:blank\",\"title\":\"Expectation Failed\",\"status\":417,"
   "\"detail\":\"only 100-continue is supported\"}"},
};

static void bad_input(void) {
  client_t *cl = malloc(sizeof(*cl));
  response_t *r = malloc(sizeof(*r));
  char v[256];
  for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
    const bad_case_t *bc = &bad_cases[i];
    fprintf(stderr, "bad input: %s\n", bc->name);
    ASSERT_EQ(0, cl_open(cl, port, 0));
    ASSERT_EQ(0, cl_send(cl, bc->prefix));
    if (strcmp(bc->name, "many small headers") == 0) {
      for (int h = 0; h < 1000; h++) cl_send(cl, "A: b\r\n"); /* the server may close midway */
    } else if (bc->fill_n) {
      char *fill = malloc(bc->fill_n);
      memset(fill, bc->fill, bc->fill_n);
      ASSERT_EQ(0, cl_sendn(cl, fill, bc->fill_n));
      free(fill);
    }
    cl_send(cl, bc->suffix);
    ASSERT_EQ(0, cl_response(cl, r));
    ASSERT_EQ(bc->status, r->status);
    ASSERT_STR("application/problem+json", find_header(r->head, "Content-Type", v, sizeof(v)));
    ASSERT_STR("close", find_header(r->head, "Connection", v, sizeof(v)));
    ASSERT(is_hex16(find_header(r->head, "X-Request-Id", v, sizeof(v))));
    ASSERT_STR(bc->body, r->body);
    ASSERT_EQ(1, cl_closed(cl, 3000));
    cl_close(cl);
  }
  free(cl);
  free(r);
}

static void auth(void) {
  client_t *cl = malloc(sizeof(*cl));
  response_t *r = malloc(sizeof(*r));
  char v[256];
  static const char *const refused[] = {"", "Authorization: Bearer nope\r\n", "Authorization: Bearer s3cre\r\n",
                                        "Authorization: Bearer s3cret2\r\n", "Authorization: Basic s3cret\r\n",
                                        "Authorization: s3cret\r\n"};
  char req[256];
  for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
    ASSERT_EQ(0, cl_open(cl, aport, 0));
    snprintf(req, sizeof(req), "POST /echo HTTP/1.1\r\n%sContent-Length: 3\r\n\r\nabc", refused[i]);
    request(cl, req, r);
    ASSERT_EQ(401, r->status);
    ASSERT_STR("{\"type\":\"about:blank\",\"title\":\"Unauthorized\",\"status\":401,"
               "\"detail\":\"missing or invalid bearer token\"}", r->body);
    ASSERT_STR("Bearer", find_header(r->head, "WWW-Authenticate", v, sizeof(v)));
    ASSERT_EQ(1, cl_closed(cl, 3000));
    cl_close(cl);
  }
  ASSERT_EQ(0, cl_open(cl, aport, 0));
  request(cl, "GET /health HTTP/1.1\r\n\r\n", r);
  ASSERT_EQ(200, r->status);
  ASSERT_STR("{\"status\":\"up\"}", r->body);
  request(cl, "GET /echo?q=1 HTTP/1.1\r\nAuthorization: Bearer s3cret\r\n\r\n", r);
  ASSERT_EQ(200, r->status);
  ASSERT_STR("GET /echo q=1 h=- body=", r->body);
  request(cl, "GET /echo?q=2 HTTP/1.1\r\nauthorization: bearer s3cret\r\n\r\n", r);
  ASSERT_EQ(200, r->status);
  request(cl, "GET /health/detailed HTTP/1.1\r\n\r\n", r);
  ASSERT_EQ(401, r->status);
  cl_close(cl);
  free(cl);
  free(r);
}

static void slow_headers(void) {
  client_t *cl = malloc(sizeof(*cl));
  static const char req[] = "GET /echo HTTP/1.1\r\nHost: example\r\nX-Slow: 1234567890\r\n\r\n";
  ASSERT_EQ(0, cl_open(cl, port, 0));
  long long start = now_ms(), closed_at = 0;
  for (size_t i = 0; i < sizeof(req) - 1 && !closed_at; i++) {
    if (send(cl->fd, req + i, 1, MSG_NOSIGNAL) < 0) closed_at = now_ms();
    else if (cl_closed(cl, 200)) closed_at = now_ms();
  }
  ASSERT(closed_at > 0);
  long long took = closed_at - start;
  fprintf(stderr, "slow headers: dropped after %lld ms\n", took);
  ASSERT(took >= 950 && took < 2000);
  cl_close(cl);
  /* A connection that sends nothing at all is dropped by the same timer. */
  ASSERT_EQ(0, cl_open(cl, port, 0));
  start = now_ms();
  ASSERT_EQ(1, cl_closed(cl, 3000));
  ASSERT(now_ms() - start >= 950);
  cl_close(cl);
  free(cl);
}

static void idle_keepalive(void) {
  client_t *cl = malloc(sizeof(*cl));
  response_t *r = malloc(sizeof(*r));
  ASSERT_EQ(0, cl_open(cl, port, 0));
  request(cl, "GET /health HTTP/1.1\r\n\r\n", r);
  long long start = now_ms();
  ASSERT_EQ(1, cl_closed(cl, 4000));
  long long took = now_ms() - start;
  ASSERT(took >= 1400 && took < 3000);
  cl_close(cl);
  free(cl);
  free(r);
}

/* After an answer, a head that starts and stalls is dropped by the header
 * timeout counted from its start, though the idle one would come sooner. */
static void slow_headers_after_answer(void) {
  client_t *cl = malloc(sizeof(*cl));
  response_t *r = malloc(sizeof(*r));
  ASSERT_EQ(0, cl_open(cl, port, 0));
  request(cl, "GET /health HTTP/1.1\r\n\r\n", r);
  usleep(1000 * 1000); /* the idle timeout (1500 ms) has 500 ms to go */
  ASSERT_EQ(0, cl_send(cl, "GET /echo HTTP/1.1\r\nHost: exa"));
  long long start = now_ms();
  ASSERT_EQ(1, cl_closed(cl, 3000));
  long long took = now_ms() - start;
  fprintf(stderr, "stalled head after an answer: dropped after %lld ms\n", took);
  ASSERT(took >= 950 && took < 2000);
  cl_close(cl);
  free(cl);
  free(r);
}

static void pipelined(void) {
  client_t *cl = malloc(sizeof(*cl));
  response_t *r = malloc(sizeof(*r));
  ASSERT_EQ(0, cl_open(cl, port, 0));
  /* The first is answered last on the server's clock, yet first on the wire. */
  ASSERT_EQ(0, cl_send(cl, "GET /async?ms=100&n=1 HTTP/1.1\r\n\r\n"
                           "POST /echo?q=2 HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"
                           "GET /echo?q=3 HTTP/1.1\r\n\r\n"));
  ASSERT_EQ(0, cl_response(cl, r));
  ASSERT_STR("async 1", r->body);
  ASSERT_EQ(0, cl_response(cl, r));
  ASSERT_STR("POST /echo q=2 h=- body=hi", r->body);
  ASSERT_EQ(0, cl_response(cl, r));
  ASSERT_STR("GET /echo q=3 h=- body=", r->body);
  cl_close(cl);
  free(cl);
  free(r);
}

static void split_bytes(void) {
  client_t *cl = malloc(sizeof(*cl));
  response_t *r = malloc(sizeof(*r));
  static const char req[] = "POST /echo?q=split HTTP/1.1\r\nX-Test: one byte\r\nContent-Length: 7\r\n\r\nbyte by";
  ASSERT_EQ(0, cl_open(cl, port, 0));
  for (size_t i = 0; i < sizeof(req) - 1; i++) {
    ASSERT_EQ(0, cl_sendn(cl, req + i, 1));
    usleep(1000); /* pacing, so most bytes arrive in reads of their own */
  }
  ASSERT_EQ(0, cl_response(cl, r));
  ASSERT_EQ(200, r->status);
  ASSERT_STR("POST /echo q=split h=one byte body=byte by", r->body);
  cl_close(cl);
  free(cl);
  free(r);
}

static void http10_and_close(void) {
  client_t *cl = malloc(sizeof(*cl));
  response_t *r = malloc(sizeof(*r));
  char v[64];
  ASSERT_EQ(0, cl_open(cl, port, 0));
  request(cl, "GET /echo HTTP/1.0\r\n\r\n", r);
  ASSERT_EQ(200, r->status);
  ASSERT_STR("close", find_header(r->head, "Connection", v, sizeof(v)));
  ASSERT_EQ(1, cl_closed(cl, 3000));
  cl_close(cl);

  ASSERT_EQ(0, cl_open(cl, port, 0));
  request(cl, "GET /echo?q=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", r);
  ASSERT_STR("keep-alive", find_header(r->head, "Connection", v, sizeof(v)));
  request(cl, "GET /echo?q=2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", r);
  ASSERT_STR("GET /echo q=2 h=- body=", r->body);
  ASSERT_STR("keep-alive", find_header(r->head, "Connection", v, sizeof(v)));
  cl_close(cl);

  /* Connection: close; what follows it on the wire is never answered. */
  ASSERT_EQ(0, cl_open(cl, port, 0));
  request(cl, "GET /echo?q=c HTTP/1.1\r\nConnection: close\r\n\r\nGET /echo?q=after HTTP/1.1\r\n\r\n", r);
  ASSERT_STR("GET /echo q=c h=- body=", r->body);
  ASSERT_STR("close", find_header(r->head, "Connection", v, sizeof(v)));
  ASSERT_EQ(0, cl_fill(cl)); /* EOF, no second answer */
  ASSERT_EQ(0, cl->len);
  cl_close(cl);

  /* Upgrades are not supported: answered as plain requests, then closed. */
  ASSERT_EQ(0, cl_open(cl, port, 0));
  request(cl, "GET /echo?q=up HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
              "\x81\x05hello", r);
  ASSERT_STR("GET /echo q=up h=- body=", r->body);
  ASSERT_STR("close", find_header(r->head, "Connection", v, sizeof(v)));
  ASSERT_EQ(0, cl_fill(cl));
  cl_close(cl);
  ASSERT_EQ(0, cl_open(cl, port, 0));
  request(cl, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", r);
  ASSERT_EQ(404, r->status);
  ASSERT_STR("close", find_header(r->head, "Connection", v, sizeof(v)));
  ASSERT_EQ(0, cl_fill(cl));
  cl_close(cl);
  free(cl);
  free(r);
}

static void expect_continue(void) {
  client_t *cl = malloc(sizeof(*cl));
  response_t *r = malloc(sizeof(*r));
  ASSERT_EQ(0, cl_open(cl, port, 0));
  request(cl, "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", r);
  ASSERT_EQ(100, r->status);
  request(cl, "hello", r);
  ASSERT_EQ(200, r->status);
  ASSERT_STR("POST /echo q=- h=- body=hello", r->body);
  cl_close(cl);
  free(cl);
  free(r);
}

static void async_answers(void) {
  client_t *cl = malloc(sizeof(*cl));
  response_t *r = malloc(sizeof(*r));
  ASSERT_EQ(0, cl_open(cl, port, 0));
  long long start = now_ms();
  request(cl, "GET /async?ms=150&n=5 HTTP/1.1\r\n\r\n", r);
  ASSERT(now_ms() - start >= 140);
  ASSERT_STR("async 5", r->body);
  cl_close(cl);
  /* The client leaves before the answer: on_close, then a no-op answer. */
  ASSERT_EQ(0, cl_open(cl, port, 0));
  int seen = atomic_load(&handled);
  ASSERT_EQ(0, cl_send(cl, "GET /async?ms=300&n=6 HTTP/1.1\r\n\r\n"));
  ASSERT(wait_atomic(&handled, seen + 1, 3000));
  cl_close(cl);
  ASSERT(wait_atomic(&async_noop, 1, 3000));
  ASSERT_EQ(1, atomic_load(&async_closed));
  free(cl);
  free(r);
}

static void sse(void) {
  client_t *cl = malloc(sizeof(*cl));
  response_t *r = malloc(sizeof(*r));
  char v[64];
  ASSERT_EQ(0, cl_open(cl, port, 0));
  request(cl, "GET /sse?mode=0 HTTP/1.1\r\n\r\n", r);
  ASSERT_EQ(200, r->status);
  ASSERT_STR("text/event-stream", find_header(r->head, "Content-Type", v, sizeof(v)));
  ASSERT_STR("close", find_header(r->head, "Connection", v, sizeof(v)));
  ASSERT(find_header(r->head, "Content-Length", v, sizeof(v)) == NULL);
  while (cl_fill(cl) > 0) {}
  cl->buf[cl->len] = '\0';
  ASSERT_STR("id: 0\nevent: tick\ndata: {\"n\":0}\n\nid: 1\nevent: tick\ndata: {\"n\":1}\n\n"
             "id: 2\nevent: tick\ndata: {\"n\":2}\n\n", cl->buf);
  cl_close(cl);

  /* The client leaves mid-stream: the handler hears of it. */
  ASSERT_EQ(0, cl_open(cl, port, 0));
  request(cl, "GET /sse?mode=1 HTTP/1.1\r\n\r\n", r);
  while (cl->buf[cl->len] = '\0', !strstr(cl->buf, "data: {\"n\":1}\n\n")) ASSERT(cl_fill(cl) > 0);
  cl_close(cl);
  ASSERT(wait_atomic(&sse_closed, 1, 3000));

  /* A reader that stops reading is dropped once 64 KiB wait unsent. */
  ASSERT_EQ(0, cl_open(cl, port, 4096));
  ASSERT_EQ(0, cl_send(cl, "GET /sse?mode=2 HTTP/1.1\r\n\r\n"));
  ASSERT(wait_atomic(&sse_dropped, 1, 10000));
  ASSERT_EQ(1, cl_closed(cl, 3000));
  cl_close(cl);
  ASSERT_EQ(1, atomic_load(&sse_write_fail));
  ASSERT_EQ(1, atomic_load(&sse_closed)); /* the handler ended it itself: no on_close */
  free(cl);
  free(r);
}

static int rejected_seen;

static void max_connections(void) {
  client_t *cls = malloc(7 * sizeof(*cls));
  response_t *r = malloc(sizeof(*r));
  char v[64];
  for (int i = 0; i < 6; i++) {
    ASSERT_EQ(0, cl_open(&cls[i], port, 0));
    request(&cls[i], "GET /health HTTP/1.1\r\n\r\n", r);
    ASSERT_EQ(200, r->status);
  }
  ASSERT_EQ(0, cl_open(&cls[6], port, 0));
  ASSERT_EQ(0, cl_response(&cls[6], r));
  ASSERT_EQ(503, r->status);
  rejected_seen++;
  ASSERT_STR("{\"type\":\"about:blank\",\"title\":\"Service Unavailable\",\"status\":503,"
             "\"detail\":\"too many connections\"}", r->body);
  ASSERT(is_hex16(find_header(r->head, "X-Request-Id", v, sizeof(v))));
  ASSERT_EQ(1, cl_closed(&cls[6], 3000));
  cl_close(&cls[6]);
  /* One leaves: a new one is served once the server has seen it go. */
  cl_close(&cls[0]);
  long long deadline = now_ms() + 3000;
  for (;;) {
    ASSERT(now_ms() < deadline);
    ASSERT_EQ(0, cl_open(&cls[6], port, 0));
    request(&cls[6], "GET /health HTTP/1.1\r\n\r\n", r);
    cl_close(&cls[6]);
    if (r->status == 200) break;
    ASSERT_EQ(503, r->status);
    rejected_seen++;
    usleep(10000);
  }
  for (int i = 1; i < 6; i++) cl_close(&cls[i]);
  free(cls);
  free(r);
}

static void graceful_stop(void) {
  client_t *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b)), *c = malloc(sizeof(*c));
  response_t *r = malloc(sizeof(*r));
  char v[64];
  ASSERT_EQ(0, cl_open(a, port, 0));
  request(a, "GET /health HTTP/1.1\r\n\r\n", r);
  ASSERT_EQ(0, cl_open(b, port, 0));
  int seen = atomic_load(&handled);
  ASSERT_EQ(0, cl_send(b, "GET /async?ms=300&n=7 HTTP/1.1\r\n\r\n"));
  ASSERT(wait_atomic(&handled, seen + 1, 3000));
  ASSERT_EQ(0, cl_open(c, port, 0));
  request(c, "GET /stop HTTP/1.1\r\n\r\n", r);
  ASSERT_STR("stopping", r->body);
  ASSERT_STR("close", find_header(r->head, "Connection", v, sizeof(v)));
  ASSERT_EQ(1, cl_closed(a, 1000)); /* idle: closed at once */
  ASSERT_EQ(0, cl_response(b, r));  /* in flight: answered, then closed */
  ASSERT_STR("async 7", r->body);
  ASSERT_STR("close", find_header(r->head, "Connection", v, sizeof(v)));
  ASSERT_EQ(1, cl_closed(b, 3000));
  ASSERT_EQ(1, cl_closed(c, 3000));
  ASSERT_EQ(-ECONNREFUSED, cl_open(a, port, 0));
  cl_close(b);
  cl_close(c);
  free(a);
  free(b);
  free(c);
  free(r);
}

/* ---- running a scenario on the client thread while the loop runs ---- */

static void *client_main(void *arg) {
  ((void (*)(void))arg)();
  uv_async_send(&client_done);
  return NULL;
}

static void on_client_done(uv_async_t *a) { uv_stop(&loop); }

static int deadline_hit;
static void on_deadline(uv_timer_t *t) { deadline_hit = 1; }

/* Runs the loop until the server has closed every connection (at most 3 s). */
static void settle_connections(void) {
  uv_timer_t t;
  shr_http_server_stats_t st;
  uv_timer_init(&loop, &t);
  deadline_hit = 0;
  uv_timer_start(&t, on_deadline, 3000, 0);
  for (;;) {
    shr_http_server_stats(srv, &st);
    if (st.connections_open == 0 || deadline_hit) break;
    uv_run(&loop, UV_RUN_ONCE);
  }
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&loop, UV_RUN_NOWAIT);
  ASSERT_EQ(0, st.connections_open);
}

static void run_client(const char *name, void (*fn)(void)) {
  pthread_t th;
  fprintf(stderr, "-- %s\n", name);
  ASSERT_EQ(0, pthread_create(&th, NULL, client_main, (void *)fn));
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_EQ(0, pthread_join(th, NULL));
  settle_connections();
}

static void on_server_closed(void *data) { servers_closed++; }

static void listen_errors(void) {
  char err[256];
  shr_http_server_t *s = shr_http_server_new(&loop, NULL, handler, NULL);
  ASSERT(s);
  ASSERT_EQ(-1, shr_http_server_listen(s, "localhost", err, sizeof(err)));
  ASSERT_STR("listen: bad address \"localhost\", want host:port or [v6]:port", err);
  ASSERT_EQ(-1, shr_http_server_listen(s, "127.0.0.1:70000", err, sizeof(err)));
  ASSERT_STR("listen: bad address \"127.0.0.1:70000\", want host:port or [v6]:port", err);
  ASSERT_EQ(-1, shr_http_server_listen(s, "localhost:80", err, sizeof(err)));
  ASSERT_STR("listen: bad address \"localhost:80\": invalid argument", err);
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
  ASSERT_EQ(-1, shr_http_server_listen(s, addr, err, sizeof(err)));
  char want[128];
  snprintf(want, sizeof(want), "listen 127.0.0.1:%d: address already in use", port);
  ASSERT_STR(want, err);
  ASSERT_EQ(-1, shr_http_server_port(s));
  shr_http_server_close(s, on_server_closed);
  uv_run(&loop, UV_RUN_NOWAIT);
  ASSERT_EQ(1, servers_closed);
  servers_closed = 0;
}

int main(void) {
  char err[256];
  ASSERT_EQ(0, uv_loop_init(&loop));
  ASSERT_EQ(0, uv_async_init(&loop, &client_done, on_client_done));

  shr_http_server_opts_t o = {.max_header_bytes = 4096, .max_body_bytes = 1024, .header_timeout_ms = 1000,
                              .idle_timeout_ms = 1500, .max_connections = 6, .stream_max_queued = 65536};
  srv = shr_http_server_new(&loop, &o, handler, NULL);
  ASSERT(srv);
  ASSERT_EQ(0, shr_http_server_listen(srv, "127.0.0.1:0", err, sizeof(err)));
  port = shr_http_server_port(srv);
  ASSERT(port > 0);

  shr_http_server_opts_t ao = {.auth_token = "s3cret"};
  asrv = shr_http_server_new(&loop, &ao, handler, NULL);
  ASSERT(asrv);
  ASSERT_EQ(0, shr_http_server_listen(asrv, "127.0.0.1:0", err, sizeof(err)));
  aport = shr_http_server_port(asrv);

  listen_errors();
  run_client("basic", basic);
  run_client("bad input", bad_input);
  run_client("auth", auth);
  run_client("slow headers", slow_headers);
  run_client("idle keep-alive", idle_keepalive);
  run_client("slow headers after an answer", slow_headers_after_answer);
  run_client("pipelined", pipelined);
  run_client("split into bytes", split_bytes);
  run_client("http/1.0 and connection: close", http10_and_close);
  run_client("expect: 100-continue", expect_continue);
  run_client("async answers", async_answers);
  run_client("sse", sse);
  run_client("max connections", max_connections);

  shr_http_server_stats_t st;
  shr_http_server_stats(srv, &st);
  ASSERT_EQ(rejected_seen, st.connections_rejected);
  ASSERT_EQ(1, st.requests_aborted);
  ASSERT_EQ(0, st.connections_open);
  ASSERT_EQ(28, st.requests[1]);
  ASSERT_EQ(13, st.requests[3]); /* the bad-input table and two 404 */
  ASSERT_EQ(0, st.requests[4]);

  run_client("graceful stop", graceful_stop);

  shr_http_server_close(srv, on_server_closed);
  shr_http_server_close(asrv, on_server_closed);
  uv_close((uv_handle_t *)&client_done, NULL);
  ASSERT_EQ(0, uv_run(&loop, UV_RUN_DEFAULT));
  ASSERT_EQ(2, servers_closed);
  ASSERT_EQ(0, uv_loop_close(&loop));
  return test_summary();
}
