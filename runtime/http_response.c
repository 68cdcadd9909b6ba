/* Answers of the HTTP server: buffered responses, problem+json, SSE streams,
 * and the access-log line with the counters of every finished request. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "log.h"

const char *shr_http_reason(int status) {
  switch (status) {
  case 100: return "Continue";
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 204: return "No Content";
  case 301: return "Moved Permanently";
  case 302: return "Found";
  case 304: return "Not Modified";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 410: return "Gone";
  case 413: return "Content Too Large";
  case 414: return "URI Too Long";
  case 415: return "Unsupported Media Type";
  case 417: return "Expectation Failed";
  case 422: return "Unprocessable Content";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  default: return status < 300 ? "OK" : status < 400 ? "Redirect" : status < 500 ? "Client Error" : "Server Error";
  }
}

/* Appends to a fixed buffer, cutting at its end: printf costs more than the
 * rest of a small answer, and a head's size is known before it is written. */
typedef struct out {
  char *p;
  size_t len, cap;
} out_t;

static void out_mem(out_t *o, const char *s, size_t n) {
  if (n > o->cap - o->len) n = o->cap - o->len;
  memcpy(o->p + o->len, s, n);
  o->len += n;
}

static void out_str(out_t *o, const char *s) { out_mem(o, s, strlen(s)); }

static void out_uint(out_t *o, unsigned long long v) {
  char d[20];
  size_t n = 0;
  do {
    d[sizeof d - ++n] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  out_mem(o, d + sizeof d - n, n);
}

void shr_http_log_request(shr_http_server_t *s, const shr_http_req_t *req, int status) {
  if (status == 499)
    s->stats.requests_aborted++;
  else if (status >= 100 && status < 600)
    s->stats.requests[status / 100 - 1]++;
  if (!shr_log_enabled(SHR_LOG_INFO)) return;
  const char *path = shr_http_req_path(req);
  uint64_t tenths = (uv_hrtime() - req->start_ns + 50000) / 100000; /* of a millisecond, rounded */
  char line[4096];
  out_t o = {line, 0, sizeof line};
  out_str(&o, "http ");
  out_str(&o, req->method);
  out_str(&o, " ");
  out_str(&o, path[0] ? path : "-");
  out_str(&o, " ");
  out_uint(&o, (unsigned)status);
  out_str(&o, " ");
  out_uint(&o, req->bytes_sent);
  out_str(&o, " bytes ");
  out_uint(&o, tenths / 10);
  out_str(&o, ".");
  out_uint(&o, tenths % 10);
  out_str(&o, " ms id=");
  out_str(&o, req->id[0] ? req->id : "-");
  shr_log_msg(SHR_LOG_INFO, line, o.len);
}

static int put(shr_http_buf_t *b, const char *s) { return shr_http_buf_append(b, s, strlen(s)); }

/* The head of a response up to its blank line: status line, framing,
 * X-Request-Id and the caller's extra lines, in one allocation with room for
 * body_room more bytes. length < 0: none (streams, 204, 304). */
static int format_head(shr_http_buf_t *b, const shr_http_req_t *req, int status, const char *content_type,
                       long long length, int keep_alive, const char *extra, size_t body_room) {
  const char *reason = shr_http_reason(status);
  /* 160: the fixed words of the lines below (111 bytes) and their numbers. */
  size_t head_cap = 160 + strlen(reason) + (content_type ? strlen(content_type) : 0) + strlen(req->id) +
                    (extra ? strlen(extra) : 0);
  b->data = malloc(head_cap + body_room + 1);
  if (!b->data) return -1;
  b->cap = head_cap + body_room + 1;
  out_t o = {b->data, 0, head_cap};
  out_str(&o, "HTTP/1.1 ");
  out_uint(&o, (unsigned)status);
  out_str(&o, " ");
  out_str(&o, reason);
  out_str(&o, "\r\n");
  if (content_type) {
    out_str(&o, "Content-Type: ");
    out_str(&o, content_type);
    out_str(&o, "\r\n");
  }
  if (length >= 0) {
    out_str(&o, "Content-Length: ");
    out_uint(&o, (unsigned long long)length);
    out_str(&o, "\r\n");
  }
  out_str(&o, "X-Request-Id: ");
  out_str(&o, req->id);
  out_str(&o, "\r\n");
  if (!keep_alive)
    out_str(&o, "Connection: close\r\n");
  else if (req->http10)
    out_str(&o, "Connection: keep-alive\r\n");
  if (extra) out_str(&o, extra);
  out_str(&o, "\r\n");
  assert(o.len < o.cap);
  b->len = o.len;
  b->data[b->len] = '\0';
  return 0;
}

/* The handler's finishing call: 1 when req still has a live connection to
 * answer on; otherwise req is left to whoever frees it (now, or the
 * connection's close callback, which logs it). */
static int take(shr_http_req_t *req) {
  assert(!req->handler_done);
  req->handler_done = 1;
  if (!req->conn) {
    shr_http_req_free(req);
    return 0;
  }
  assert(req->conn->current == req);
  return !req->conn->closing;
}

/* req is answered: log it, let the connection go on. */
static void done(shr_http_req_t *req, int keep_alive) {
  shr_http_conn_t *c = req->conn;
  shr_http_log_request(c->server, req, req->status);
  c->current = NULL;
  shr_http_req_free(req);
  shr_http_conn_answered(c, keep_alive);
}

int shr_http_respond(shr_http_req_t *req, int status, const char *content_type, const char *extra_headers,
                     const void *body, size_t len) {
  assert(status >= 200 && status <= 599);
  assert(!req->streaming);
  if (!take(req)) return -1;
  shr_http_conn_t *c = req->conn;
  int keep_alive = req->keep_alive && !c->server->stopping;
  int bodiless = status == 204 || status == 304;
  int head_only = strcmp(req->method, "HEAD") == 0;
  size_t body_len = bodiless || head_only ? 0 : len;
  shr_http_buf_t b = {0};
  int rc = format_head(&b, req, status, content_type, bodiless ? -1 : (long long)len, keep_alive, extra_headers,
                       body_len);
  if (rc == 0) rc = shr_http_buf_append(&b, body, body_len); /* fits: no reallocation */
  req->status = status;
  if (rc < 0) {
    shr_http_buf_free(&b);
    shr_error("http: out of memory answering id=%s", req->id);
    shr_http_conn_close(c);
    return -1;
  }
  req->bytes_sent = b.len;
  if (shr_http_conn_send(c, b.data, b.len) < 0) return -1;
  done(req, keep_alive);
  return 0;
}

static int json_string(shr_http_buf_t *b, const char *s) {
  int rc = put(b, "\"");
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    char esc[8];
    if (ch == '"' || ch == '\\') {
      esc[0] = '\\', esc[1] = (char)ch, esc[2] = '\0';
    } else if (ch < 0x20 || ch == 0x7f) {
      snprintf(esc, sizeof(esc), "\\u%04x", ch);
    } else {
      rc |= shr_http_buf_append(b, s, 1);
      continue;
    }
    rc |= put(b, esc);
  }
  return rc | put(b, "\"");
}

int shr_http_problem_h(shr_http_req_t *req, int status, const char *title, const char *detail,
                       const char *extra_headers) {
  shr_http_buf_t b = {0};
  char num[32];
  snprintf(num, sizeof(num), ",\"status\":%d", status);
  int rc = put(&b, "{\"type\":\"about:blank\",\"title\":") | json_string(&b, title) | put(&b, num);
  if (detail) rc |= put(&b, ",\"detail\":") | json_string(&b, detail);
  rc |= put(&b, "}");
  if (rc < 0) {
    shr_http_buf_free(&b);
    return shr_http_respond(req, 500, NULL, NULL, "", 0);
  }
  rc = shr_http_respond(req, status, "application/problem+json", extra_headers, b.data, b.len);
  shr_http_buf_free(&b);
  return rc;
}

int shr_http_problem(shr_http_req_t *req, int status, const char *title, const char *detail) {
  return shr_http_problem_h(req, status, title, detail, NULL);
}

int shr_http_stream_start(shr_http_req_t *req, int status, const char *headers) {
  assert(status >= 200 && status <= 599);
  assert(!req->handler_done && !req->streaming);
  req->streaming = 1;
  req->status = status;
  if (!shr_http_req_alive(req)) return -1;
  shr_http_buf_t b = {0};
  if (format_head(&b, req, status, NULL, -1, 0, headers, 0) < 0) {
    shr_http_buf_free(&b);
    shr_http_conn_close(req->conn);
    return -1;
  }
  req->bytes_sent = b.len;
  return shr_http_conn_send(req->conn, b.data, b.len);
}

int shr_http_stream_write(shr_http_req_t *req, const void *data, size_t len) {
  assert(req->streaming && !req->handler_done);
  if (!shr_http_req_alive(req)) return -1;
  shr_http_conn_t *c = req->conn;
  if (shr_http_conn_queued(c) + len > c->server->opts.stream_max_queued) {
    shr_warn("http stream dropped: client too slow, %zu bytes unsent id=%s", shr_http_conn_queued(c), req->id);
    shr_http_conn_close(c);
    return -1;
  }
  char *copy = malloc(len ? len : 1);
  if (!copy) {
    shr_http_conn_close(c);
    return -1;
  }
  memcpy(copy, data, len);
  req->bytes_sent += len;
  return shr_http_conn_send(c, copy, len);
}

void shr_http_stream_end(shr_http_req_t *req) {
  assert(req->streaming);
  if (take(req)) done(req, 0);
}
