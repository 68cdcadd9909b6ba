/* fake_llm: an OpenAI-compatible chat-completions stand-in for the slow-service
 * benchmark. Every POST is answered after a fixed delay with a LightRAG
 * extraction (two entities and a relation whose names are unique per request,
 * so concurrent chunks never contend on the same graph rows). GET /stats
 * answers at once with {"requests","in_flight","max_in_flight"}; POST /reset
 * zeroes the counters. HTTP/1.1 keep-alive, one request at a time per
 * connection (what libcurl sends). Built by bench/run.sh; relies on libuv.
 *
 *   fake_llm PORT [DELAY_MS]    prints "ready" once it listens on 127.0.0.1 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#define MAX_REQUEST (1024 * 1024)

typedef struct conn {
  uv_tcp_t tcp;
  uv_timer_t timer; /* the delay of the request being answered */
  char *buf;        /* bytes read and not consumed yet */
  size_t len, cap;
  size_t request_len; /* of the request being answered, 0 when none */
  int handles_open;
  int closing;
} conn_t;

typedef struct {
  uv_write_t req;
  char *data;
} write_t;

static uv_loop_t *loop;
static uint64_t delay_ms = 200;
static unsigned long long requests, in_flight, max_in_flight;

static void on_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  if (--c->handles_open == 0) {
    free(c->buf);
    free(c);
  }
}

static void conn_close(conn_t *c) {
  if (c->closing) return;
  c->closing = 1;
  if (c->request_len) in_flight--;
  uv_close((uv_handle_t *)&c->timer, on_closed);
  uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_written(uv_write_t *req, int status) {
  write_t *w = (write_t *)req;
  free(w->data);
  free(w);
}

static void send_text(conn_t *c, const char *status, const char *body) {
  size_t body_len = strlen(body);
  size_t cap = body_len + 256;
  write_t *w = malloc(sizeof *w);
  char *data = malloc(cap);
  if (!w || !data) {
    free(w);
    free(data);
    conn_close(c);
    return;
  }
  int n = snprintf(data, cap,
                   "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                   "Connection: keep-alive\r\n\r\n%s",
                   status, body_len, body);
  w->data = data;
  uv_buf_t b = uv_buf_init(data, (unsigned)n);
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
    free(data);
    free(w);
    conn_close(c);
  }
}

static void answer_completion(conn_t *c) {
  unsigned long long n = ++requests;
  char body[1024];
  snprintf(body, sizeof body,
           "{\"id\":\"fake-%llu\",\"object\":\"chat.completion\",\"created\":0,\"model\":\"fake\","
           "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
           "\"entity<|#|>Entity %llu A<|#|>Concept<|#|>The first thing named in request %llu.\\n"
           "entity<|#|>Entity %llu B<|#|>Concept<|#|>The second thing named in request %llu.\\n"
           "relation<|#|>Entity %llu A<|#|>Entity %llu B<|#|>related<|#|>A is related to B.\\n"
           "<|COMPLETE|>\"},\"finish_reason\":\"stop\"}],"
           "\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":60,\"total_tokens\":160}}",
           n, n, n, n, n, n, n);
  send_text(c, "200 OK", body);
}

static void handle_next(conn_t *c);

static void on_delay(uv_timer_t *t) {
  conn_t *c = t->data;
  size_t n = c->request_len;
  c->request_len = 0;
  in_flight--;
  memmove(c->buf, c->buf + n, c->len - n);
  c->len -= n;
  answer_completion(c);
  handle_next(c);
}

/* The length of the complete request at the front of the buffer, 0 if more
 * bytes are needed, -1 if it is malformed. */
static long request_length(conn_t *c) {
  char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
  if (!end) return c->len > 65536 ? -1 : 0;
  size_t head = (size_t)(end - c->buf) + 4;
  size_t body = 0;
  for (char *line = memchr(c->buf, '\n', head); line && line < end; line = memchr(line + 1, '\n', (size_t)(end - line))) {
    if (strncasecmp(line + 1, "content-length:", 15) == 0) body = strtoul(line + 16, NULL, 10);
  }
  if (head + body > MAX_REQUEST) return -1;
  return c->len >= head + body ? (long)(head + body) : 0;
}

static void handle_next(conn_t *c) {
  if (c->closing || c->request_len) return;
  long n = request_length(c);
  if (n < 0) {
    conn_close(c);
    return;
  }
  if (n == 0) return;
  if (strncmp(c->buf, "GET /stats ", 11) == 0 || strncmp(c->buf, "POST /reset ", 12) == 0) {
    if (c->buf[0] == 'P') requests = max_in_flight = 0;
    char body[160];
    snprintf(body, sizeof body, "{\"requests\":%llu,\"in_flight\":%llu,\"max_in_flight\":%llu}", requests, in_flight,
             max_in_flight);
    send_text(c, "200 OK", body);
    memmove(c->buf, c->buf + n, c->len - (size_t)n);
    c->len -= (size_t)n;
    handle_next(c);
    return;
  }
  c->request_len = (size_t)n;
  if (++in_flight > max_in_flight) max_in_flight = in_flight;
  uv_timer_start(&c->timer, on_delay, delay_ms, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out) {
  conn_t *c = h->data;
  if (c->cap - c->len < 16384) {
    size_t cap = c->cap ? c->cap * 2 : 32768;
    char *bigger = cap <= 2 * MAX_REQUEST ? realloc(c->buf, cap) : NULL;
    if (!bigger) {
      *out = uv_buf_init(NULL, 0);
      return;
    }
    c->buf = bigger;
    c->cap = cap;
  }
  *out = uv_buf_init(c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  conn_t *c = s->data;
  if (n < 0) {
    conn_close(c);
    return;
  }
  c->len += (size_t)n;
  handle_next(c);
}

static void on_connection(uv_stream_t *server, int status) {
  if (status != 0) return;
  conn_t *c = calloc(1, sizeof *c);
  if (!c) return;
  uv_tcp_init(loop, &c->tcp);
  uv_timer_init(loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->handles_open = 2;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
    conn_close(c);
  uv_tcp_nodelay(&c->tcp, 1);
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 3 || !isdigit((unsigned char)argv[1][0])) {
    fprintf(stderr, "usage: fake_llm PORT [DELAY_MS]\n");
    return 2;
  }
  if (argc == 3) delay_ms = strtoull(argv[2], NULL, 10);
  loop = uv_default_loop();
  uv_tcp_t server;
  struct sockaddr_in addr;
  uv_tcp_init(loop, &server);
  uv_ip4_addr("127.0.0.1", atoi(argv[1]), &addr);
  int rc = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&server, 4096, on_connection);
  if (rc != 0) {
    fprintf(stderr, "fake_llm: cannot listen on 127.0.0.1:%s: %s\n", argv[1], uv_strerror(rc));
    return 1;
  }
  printf("ready\n");
  fflush(stdout);
  return uv_run(loop, UV_RUN_DEFAULT);
}
