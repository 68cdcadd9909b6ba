/* One HTTP server connection: reads into a buffer, parses with llhttp one
 * request at a time (the parser pauses at the end of each request until its
 * answer is queued, so pipelined requests are answered in order), enforces the
 * limits and timeouts, queues writes, and closes with a lingering shutdown so
 * a client still sending does not lose the answer to a reset. */
#include <arpa/inet.h>
#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_internal.h"
#include "log.h"

#define READ_CHUNK 65536
#define LINGER_MS 2000

typedef struct write_req {
  uv_write_t req;
  shr_http_conn_t *conn;
  char *data; /* owned */
} write_req_t;

static void conn_process(shr_http_conn_t *c);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);

/* ---- timer ---- */

/* The timer is due at the deadline of what it counts or before it
 * (timer_due): a later deadline leaves it be, and when it fires early it is
 * started again for the rest. A keep-alive request moves the deadline three
 * times (head, nothing while the handler runs, idle), and starting the timer
 * each time cost ~600 instructions a request. */
static void on_timer(uv_timer_t *t);

static void start_timer(shr_http_conn_t *c, uint64_t now) {
  c->timer_due = c->deadline;
  uv_timer_start(&c->timer, on_timer, c->deadline - now, 0);
}

static void on_timer(uv_timer_t *t) {
  shr_http_conn_t *c = t->data;
  c->timer_due = 0;
  if (c->tmode == SHR_HTTP_T_NONE) return;
  uint64_t now = uv_now(c->server->loop);
  if (now < c->deadline) {
    start_timer(c, now);
    return;
  }
  if (c->tmode == SHR_HTTP_T_HEADER && c->in_message)
    shr_info("http: %s sent no complete request head in %u ms, dropped", c->remote,
             c->server->opts.header_timeout_ms);
  shr_http_conn_close(c);
}

/* Counts ms for mode; a count of the same mode keeps its deadline unless
 * restart, so a trickling client cannot push it back. */
static void set_timer(shr_http_conn_t *c, int mode, unsigned ms, int restart) {
  if (c->tmode == mode && !restart) return;
  uint64_t now = uv_now(c->server->loop);
  c->tmode = mode;
  c->deadline = now + ms;
  if (!c->timer_due || c->deadline < c->timer_due) start_timer(c, now);
}

/* The timer may still fire: with nothing to count, it does nothing. */
static void stop_timer(shr_http_conn_t *c) { c->tmode = SHR_HTTP_T_NONE; }

/* ---- close ---- */

static void conn_closed(uv_handle_t *h) {
  shr_http_conn_t *c = h->data;
  if (--c->handles_open > 0) return;
  shr_http_server_t *s = c->server;
  if (c->prev) c->prev->next = c->next;
  else s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  s->stats.connections_open--;
  if (c->building) shr_http_req_free(c->building);
  if (c->ready) shr_http_req_free(c->ready);
  shr_http_req_t *req = c->current;
  if (req) {
    /* A stream's client leaving is how streams usually end. */
    shr_http_log_request(s, req, req->streaming && req->bytes_sent ? req->status : 499);
    if (req->handler_done) {
      shr_http_req_free(req);
    } else {
      req->conn = NULL;
      if (req->on_close) req->on_close(req, req->close_data); /* may free req */
    }
  }
  free(c->in.data);
  free(c);
  shr_http_server_conn_gone(s);
}

void shr_http_conn_close(shr_http_conn_t *c) {
  if (c->closing) return;
  c->closing = 1;
  uv_close((uv_handle_t *)&c->tcp, conn_closed);
  uv_close((uv_handle_t *)&c->timer, conn_closed);
}

static void on_shutdown(uv_shutdown_t *r, int status) {
  if (status < 0) shr_http_conn_close(r->data);
}

/* Once the last answer is sent: half-close, then read and drop what the
 * client still sends until it closes too or LINGER_MS pass. */
static void maybe_linger(shr_http_conn_t *c) {
  if (c->closing || c->lingering || !c->close_after || c->pending_writes) return;
  c->lingering = 1;
  c->in.len = 0;
  c->shutdown.data = c;
  if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) < 0 ||
      (!c->reading && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)) {
    shr_http_conn_close(c);
    return;
  }
  c->reading = 1;
  unsigned ms = c->server->opts.header_timeout_ms < LINGER_MS ? c->server->opts.header_timeout_ms : LINGER_MS;
  set_timer(c, SHR_HTTP_T_LINGER, ms, 1);
}

/* ---- writes ---- */

static void on_written(uv_write_t *r, int status) {
  write_req_t *w = r->data;
  shr_http_conn_t *c = w->conn;
  free(w->data);
  free(w);
  c->pending_writes--;
  if (status < 0)
    shr_http_conn_close(c);
  else
    maybe_linger(c);
}

int shr_http_conn_send(shr_http_conn_t *c, char *data, size_t len) {
  assert(len <= UINT_MAX);
  uv_buf_t b = uv_buf_init(data, (unsigned)len);
  /* Most answers fit the socket's buffer: written at once without a write
   * request, whose completion costs libuv (1.44) an epoll_ctl re-arming the
   * socket. An error is left to uv_write, which reports it as before. */
  int n = c->closing ? 0 : uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (n > 0 && (size_t)n == len) {
    free(data);
    return 0;
  }
  if (n > 0) b = uv_buf_init(data + n, (unsigned)(len - (size_t)n));
  write_req_t *w = c->closing ? NULL : malloc(sizeof(*w));
  if (!w) {
    free(data);
    shr_http_conn_close(c);
    return -1;
  }
  w->conn = c;
  w->data = data;
  w->req.data = w;
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
    free(data);
    free(w);
    shr_http_conn_close(c);
    return -1;
  }
  c->pending_writes++;
  return 0;
}

size_t shr_http_conn_queued(const shr_http_conn_t *c) {
  return uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp);
}

/* ---- parser callbacks ---- */

/* A callback's refusal: answer_refused sends it once llhttp_execute returns. */
static int refuse(shr_http_conn_t *c, int status, const char *detail) {
  c->reject_status = status;
  snprintf(c->reject_detail, sizeof(c->reject_detail), "%s", detail);
  return -1;
}

static int refuse_limit(shr_http_conn_t *c, int status, const char *what, size_t limit) {
  c->reject_status = status;
  snprintf(c->reject_detail, sizeof(c->reject_detail), "%s exceeds %zu bytes", what, limit);
  return -1;
}

static int count_head(shr_http_conn_t *c, size_t len) {
  shr_http_req_t *req = c->building;
  req->head_bytes += len;
  if (req->head_bytes <= c->server->opts.max_header_bytes) return 0;
  return refuse_limit(c, 431, "request head", c->server->opts.max_header_bytes);
}

static int on_message_begin(llhttp_t *p) {
  shr_http_conn_t *c = p->data;
  c->in_message = 1;
  c->reject_status = 0;
  c->building = shr_http_req_new(c);
  if (!c->building) return refuse(c, 503, "out of memory");
  set_timer(c, SHR_HTTP_T_HEADER, c->server->opts.header_timeout_ms, 0);
  return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len) {
  shr_http_conn_t *c = p->data;
  shr_http_req_t *req = c->building;
  req->method = llhttp_method_name((llhttp_method_t)llhttp_get_method(p)); /* for the log of a refusal */
  req->head_bytes += len;
  if (req->head_bytes > c->server->opts.max_header_bytes)
    return refuse_limit(c, 414, "request target", c->server->opts.max_header_bytes);
  return shr_http_buf_append(&req->target, at, len) < 0 ? refuse(c, 503, "out of memory") : 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len) {
  shr_http_conn_t *c = p->data;
  if (count_head(c, len) < 0) return -1;
  if (c->building->headers_done) return 0; /* trailers: counted, not kept */
  return shr_http_buf_append(&c->building->head, at, len) < 0 ? refuse(c, 503, "out of memory") : 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len) { return on_header_field(p, at, len); }

static int on_header_field_complete(llhttp_t *p) {
  shr_http_conn_t *c = p->data;
  /* ": " and CRLF count too, so many empty headers still hit the limit. */
  if (count_head(c, 4) < 0) return -1;
  if (c->building->headers_done) return 0;
  return shr_http_req_end_field(c->building) < 0 ? refuse(c, 503, "out of memory") : 0;
}

static int on_header_value_complete(llhttp_t *p) {
  shr_http_conn_t *c = p->data;
  if (c->building->headers_done) return 0;
  return shr_http_req_end_value(c->building) < 0 ? refuse(c, 503, "out of memory") : 0;
}

static int valid_id(const char *id) {
  size_t n = strlen(id);
  if (n == 0 || n > SHR_HTTP_ID_MAX) return 0;
  for (size_t i = 0; i < n; i++)
    if (id[i] < 0x21 || id[i] > 0x7e) return 0;
  return 1;
}

static int on_headers_complete(llhttp_t *p) {
  shr_http_conn_t *c = p->data;
  shr_http_server_t *s = c->server;
  shr_http_req_t *req = c->building;
  req->headers_done = 1;
  req->method = llhttp_method_name((llhttp_method_t)llhttp_get_method(p));
  req->http10 = llhttp_get_http_major(p) == 1 && llhttp_get_http_minor(p) == 0;
  const char *id = shr_http_req_header(req, "X-Request-Id");
  if (id && valid_id(id))
    memcpy(req->id, id, strlen(id) + 1);
  else
    shr_http_server_new_id(s, req->id);
  if (shr_http_req_split_target(req) < 0) return refuse(c, 503, "out of memory");
  if (strcmp(req->path, "/health") != 0 && !shr_http_server_authorized(s, shr_http_req_header(req, "Authorization")))
    return refuse(c, 401, "missing or invalid bearer token");
  int chunked = (p->flags & F_CHUNKED) != 0;
  int has_body = chunked || ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0);
  if (!chunked && (p->flags & F_CONTENT_LENGTH) && p->content_length > s->opts.max_body_bytes)
    return refuse_limit(c, 413, "body", s->opts.max_body_bytes);
  const char *expect = shr_http_req_header(req, "Expect");
  if (expect && !req->http10) {
    if (strcasecmp(expect, "100-continue") != 0) return refuse(c, 417, "only 100-continue is supported");
    if (has_body) {
      char *cont = strdup("HTTP/1.1 100 Continue\r\n\r\n");
      if (!cont || shr_http_conn_send(c, cont, strlen(cont)) < 0) return -1;
    }
  }
  if (has_body) {
    if (!chunked) {
      /* The whole body in one allocation: its size is known and capped. */
      req->body.data = malloc(p->content_length + 1);
      if (!req->body.data) return refuse(c, 503, "out of memory");
      req->body.cap = p->content_length + 1;
      req->body.data[0] = '\0';
    }
    set_timer(c, SHR_HTTP_T_BODY, s->opts.idle_timeout_ms, 1);
  }
  return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len) {
  shr_http_conn_t *c = p->data;
  shr_http_req_t *req = c->building;
  if (req->body.len + len > c->server->opts.max_body_bytes)
    return refuse_limit(c, 413, "body", c->server->opts.max_body_bytes);
  return shr_http_buf_append(&req->body, at, len) < 0 ? refuse(c, 503, "out of memory") : 0;
}

static int on_message_complete(llhttp_t *p) {
  shr_http_conn_t *c = p->data;
  shr_http_req_t *req = c->building;
  c->building = NULL;
  /* After an Upgrade request the bytes that follow are not HTTP: answer, close. */
  req->keep_alive = llhttp_should_keep_alive(p) && !llhttp_get_upgrade(p);
  c->ready = req;
  c->in_message = 0;
  stop_timer(c);
  return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
  .on_message_begin = on_message_begin,
  .on_url = on_url,
  .on_header_field = on_header_field,
  .on_header_value = on_header_value,
  .on_header_field_complete = on_header_field_complete,
  .on_header_value_complete = on_header_value_complete,
  .on_headers_complete = on_headers_complete,
  .on_body = on_body,
  .on_message_complete = on_message_complete,
};

/* ---- processing ---- */

static void dispatch(shr_http_conn_t *c) {
  shr_http_req_t *req = c->ready;
  c->ready = NULL;
  c->current = req;
  c->server->handler(req, c->server->data);
}

/* Answers a request the parser refused, and closes after the answer. */
static void answer_refused(shr_http_conn_t *c, llhttp_errno_t e) {
  int status = c->reject_status ? c->reject_status : 400;
  const char *detail = c->reject_status ? c->reject_detail : llhttp_get_error_reason(&c->parser);
  shr_http_req_t *req = c->building ? c->building : shr_http_req_new(c);
  c->building = NULL;
  if (!req) {
    shr_http_conn_close(c);
    return;
  }
  if (!req->id[0]) shr_http_server_new_id(c->server, req->id);
  req->keep_alive = 0;
  c->current = req;
  if (status == 400)
    shr_debug("http: bad request from %s: %s (%s)", c->remote, detail ? detail : "-", llhttp_errno_name(e));
  shr_http_problem_h(req, status, shr_http_reason(status), detail && detail[0] ? detail : "malformed request",
                     status == 401 ? "WWW-Authenticate: Bearer\r\n" : NULL);
}

static size_t in_cap(const shr_http_conn_t *c) { return READ_CHUNK + c->server->opts.max_header_bytes; }

/* After parsing: reading and timers for the state the connection is in. */
static void settle(shr_http_conn_t *c) {
  if (c->closing || c->lingering) return;
  if (c->close_after) {
    maybe_linger(c);
    return;
  }
  if (c->current) {
    /* Keep reading to notice a client that leaves, up to a bounded backlog. */
    if (c->reading && c->in.len >= in_cap(c)) {
      uv_read_stop((uv_stream_t *)&c->tcp);
      c->reading = 0;
    }
    return;
  }
  if (!c->reading) {
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
      shr_http_conn_close(c);
      return;
    }
    c->reading = 1;
  }
  if (c->in_message) return;
  if (c->server->stopping) {
    c->close_after = 1;
    maybe_linger(c);
  } else if (c->tmode == SHR_HTTP_T_NONE) {
    set_timer(c, SHR_HTTP_T_IDLE, c->server->opts.idle_timeout_ms, 1);
  }
}

static void conn_process(shr_http_conn_t *c) {
  if (c->in_process) return;
  c->in_process = 1;
  while (!c->closing && !c->close_after && !c->current && c->in.len > 0) {
    llhttp_errno_t e = llhttp_execute(&c->parser, c->in.data, c->in.len);
    if (e == HPE_OK) {
      c->in.len = 0;
    } else if ((e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) && c->ready) {
      size_t used = (size_t)(llhttp_get_error_pos(&c->parser) - c->in.data);
      memmove(c->in.data, c->in.data + used, c->in.len - used);
      c->in.len -= used;
      llhttp_resume(&c->parser);
      dispatch(c);
    } else {
      c->in.len = 0;
      answer_refused(c, e);
    }
  }
  c->in_process = 0;
  settle(c);
}

void shr_http_conn_answered(shr_http_conn_t *c, int keep_alive) {
  if (!keep_alive) c->close_after = 1;
  conn_process(c);
}

void shr_http_conn_stop(shr_http_conn_t *c) {
  if (c->closing || c->current || c->in_message) return;
  c->close_after = 1;
  maybe_linger(c);
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  shr_http_conn_t *c = h->data;
  if (c->lingering) c->in.len = 0;
  if (c->in.cap - c->in.len < READ_CHUNK) {
    char *p = realloc(c->in.data, c->in.len + READ_CHUNK);
    if (!p) {
      *buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
      return;
    }
    c->in.data = p;
    c->in.cap = c->in.len + READ_CHUNK;
  }
  *buf = uv_buf_init(c->in.data + c->in.len, (unsigned)(c->in.cap - c->in.len));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  shr_http_conn_t *c = st->data;
  if (n == 0) return;
  if (n < 0) {
    /* EOF counts as the client leaving, even mid-answer: as Go's server does,
     * a handler learns of it (on_close) and can stop its work. */
    shr_http_conn_close(c);
    return;
  }
  if (c->lingering) return;
  c->in.len += (size_t)n;
  if (c->tmode == SHR_HTTP_T_BODY) set_timer(c, SHR_HTTP_T_BODY, c->server->opts.idle_timeout_ms, 1);
  conn_process(c);
}

static void format_peer(shr_http_conn_t *c) {
  struct sockaddr_storage addr;
  int len = sizeof(addr);
  char ip[INET6_ADDRSTRLEN] = "?";
  snprintf(c->remote, sizeof(c->remote), "-");
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&addr, &len) < 0) return;
  if (addr.ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&addr;
    uv_ip6_name(a, ip, sizeof(ip));
    snprintf(c->remote, sizeof(c->remote), "[%s]:%d", ip, ntohs(a->sin6_port));
  } else {
    const struct sockaddr_in *a = (const struct sockaddr_in *)&addr;
    uv_ip4_name(a, ip, sizeof(ip));
    snprintf(c->remote, sizeof(c->remote), "%s:%d", ip, ntohs(a->sin_port));
  }
}

void shr_http_conn_accept(shr_http_server_t *s) {
  shr_http_conn_t *c = calloc(1, sizeof(*c));
  if (!c) {
    shr_error("http: out of memory accepting a connection");
    return;
  }
  c->server = s;
  uv_tcp_init(s->loop, &c->tcp);
  uv_timer_init(s->loop, &c->timer);
  c->tcp.data = c;
  c->timer.data = c;
  c->handles_open = 2;
  c->next = s->conns;
  if (c->next) c->next->prev = c;
  s->conns = c;
  s->stats.connections_open++;
  if (uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&c->tcp) < 0) {
    shr_http_conn_close(c);
    return;
  }
  s->stats.connections_total++;
  uv_tcp_nodelay(&c->tcp, 1);
  format_peer(c);
  llhttp_init(&c->parser, HTTP_REQUEST, &settings);
  c->parser.data = c;
  set_timer(c, SHR_HTTP_T_HEADER, s->opts.header_timeout_ms, 1);
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
    shr_http_conn_close(c);
    return;
  }
  c->reading = 1;
}
