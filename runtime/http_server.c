/* The HTTP server object: options, the listener, the connection limit (503),
 * graceful stop and close, request ids, the bearer-token check and counters.
 * Connections live in http_conn.c. */
#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "http_internal.h"
#include "log.h"

/* A connection over the limit: answered 503 and closed, never parsed. */
struct shr_http_reject {
  uv_tcp_t tcp;
  uv_write_t write;
  shr_http_server_t *server;
  shr_http_reject_t *prev, *next;
  size_t len;
  char buf[320];
};

void shr_http_server_opts_from_config(shr_http_server_opts_t *o, const shr_config_t *cfg) {
  memset(o, 0, sizeof(*o));
  o->max_body_bytes = cfg->http_max_body_bytes;
  o->max_connections = cfg->http_max_connections;
  o->header_timeout_ms = cfg->http_header_timeout_ms > 0 ? (unsigned)cfg->http_header_timeout_ms : 0;
  o->idle_timeout_ms = cfg->http_idle_timeout_ms > 0 ? (unsigned)cfg->http_idle_timeout_ms : 0;
  o->auth_token = cfg->http_auth_token;
}

shr_http_server_t *shr_http_server_new(uv_loop_t *loop, const shr_http_server_opts_t *o,
                                       shr_http_handler_fn handler, void *data) {
  assert(loop && handler);
  shr_http_server_t *s = calloc(1, sizeof(*s));
  if (!s) return NULL;
  if (o) s->opts = *o;
  if (!s->opts.max_header_bytes) s->opts.max_header_bytes = 16 * 1024;
  if (!s->opts.max_body_bytes) s->opts.max_body_bytes = 16 * 1024 * 1024;
  if (!s->opts.header_timeout_ms) s->opts.header_timeout_ms = 10000;
  if (!s->opts.idle_timeout_ms) s->opts.idle_timeout_ms = 60000;
  if (s->opts.max_connections <= 0) s->opts.max_connections = 1024;
  if (!s->opts.stream_max_queued) s->opts.stream_max_queued = 1024 * 1024;
  s->opts.auth_token = NULL;
  if (o && o->auth_token && o->auth_token[0]) {
    s->auth_token = strdup(o->auth_token);
    if (!s->auth_token) {
      free(s);
      return NULL;
    }
    s->opts.auth_token = s->auth_token;
  }
  s->loop = loop;
  s->handler = handler;
  s->data = data;
  uv_timer_init(loop, &s->anchor);
  s->anchor.data = s;
  s->anchor_open = 1;
  /* Ids only need to differ between processes and restarts, not be secret. */
  if (uv_random(NULL, NULL, &s->id_seed, sizeof(s->id_seed), 0, NULL) < 0)
    s->id_seed = uv_hrtime() ^ ((uint64_t)getpid() << 32);
  return s;
}

static void maybe_finish(shr_http_server_t *s) {
  if (!s->closing || s->anchor_open || s->listener_state == SHR_HTTP_L_OPEN ||
      s->listener_state == SHR_HTTP_L_CLOSING || s->conns || s->rejects)
    return;
  if (s->on_closed) s->on_closed(s->data);
  free(s->auth_token);
  free(s);
}

void shr_http_server_conn_gone(shr_http_server_t *s) { maybe_finish(s); }

static void reject_closed(uv_handle_t *h) {
  shr_http_reject_t *r = h->data;
  shr_http_server_t *s = r->server;
  if (r->prev) r->prev->next = r->next;
  else s->rejects = r->next;
  if (r->next) r->next->prev = r->prev;
  free(r);
  maybe_finish(s);
}

static void reject_written(uv_write_t *w, int status) {
  shr_http_reject_t *r = w->data;
  if (!uv_is_closing((uv_handle_t *)&r->tcp)) uv_close((uv_handle_t *)&r->tcp, reject_closed);
}

static void reject(shr_http_server_t *s) {
  shr_http_reject_t *r = calloc(1, sizeof(*r));
  if (!r) return;
  uv_tcp_init(s->loop, &r->tcp);
  r->tcp.data = r;
  r->write.data = r;
  r->server = s;
  r->next = s->rejects;
  if (r->next) r->next->prev = r;
  s->rejects = r;
  if (uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&r->tcp) < 0) {
    uv_close((uv_handle_t *)&r->tcp, reject_closed);
    return;
  }
  s->stats.connections_rejected++;
  shr_warn("http: %d connections open, the limit; answering 503", s->stats.connections_open);
  static const char body[] = "{\"type\":\"about:blank\",\"title\":\"Service Unavailable\",\"status\":503,"
                             "\"detail\":\"too many connections\"}";
  char id[SHR_HTTP_ID_MAX + 1];
  shr_http_server_new_id(s, id);
  int n = snprintf(r->buf, sizeof(r->buf),
                   "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\n"
                   "Content-Length: %zu\r\nX-Request-Id: %s\r\nConnection: close\r\n\r\n%s",
                   sizeof(body) - 1, id, body);
  assert(n > 0 && (size_t)n < sizeof(r->buf));
  uv_buf_t b = uv_buf_init(r->buf, (unsigned)n);
  if (uv_write(&r->write, (uv_stream_t *)&r->tcp, &b, 1, reject_written) < 0)
    uv_close((uv_handle_t *)&r->tcp, reject_closed);
}

static void on_connection(uv_stream_t *listener, int status) {
  shr_http_server_t *s = listener->data;
  if (status < 0) {
    shr_warn("http accept: %s", uv_strerror(status));
    return;
  }
  if (s->stats.connections_open >= s->opts.max_connections)
    reject(s);
  else
    shr_http_conn_accept(s);
}

static int parse_hostport(const char *hp, char *host, size_t hostlen, int *port, int *v6) {
  const char *colon;
  *v6 = hp[0] == '[';
  if (*v6) {
    const char *end = strchr(hp, ']');
    if (!end || end[1] != ':') return -1;
    if ((size_t)(end - hp - 1) >= hostlen) return -1;
    snprintf(host, hostlen, "%.*s", (int)(end - hp - 1), hp + 1);
    colon = end + 1;
  } else {
    colon = strrchr(hp, ':');
    if (!colon || (size_t)(colon - hp) >= hostlen) return -1;
    snprintf(host, hostlen, "%.*s", (int)(colon - hp), hp);
  }
  char *stop;
  long p = strtol(colon + 1, &stop, 10);
  if (colon[1] == '\0' || *stop != '\0' || p < 0 || p > 65535) return -1;
  *port = (int)p;
  return 0;
}

static void listener_closed(uv_handle_t *h) {
  shr_http_server_t *s = h->data;
  s->listener_state = SHR_HTTP_L_CLOSED;
  maybe_finish(s);
}

static void close_listener(shr_http_server_t *s) {
  if (s->listener_state != SHR_HTTP_L_OPEN) return;
  s->listener_state = SHR_HTTP_L_CLOSING;
  uv_close((uv_handle_t *)&s->listener, listener_closed);
}

int shr_http_server_listen(shr_http_server_t *s, const char *hostport, char *err, size_t errlen) {
  assert(s->listener_state == SHR_HTTP_L_NONE && !s->closing && !s->stopping);
  char host[128];
  int port, v6, rc;
  struct sockaddr_storage addr;
  if (parse_hostport(hostport, host, sizeof(host), &port, &v6) < 0) {
    snprintf(err, errlen, "listen: bad address \"%s\", want host:port or [v6]:port", hostport);
    return -1;
  }
  rc = v6 ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr)
          : uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
  if (rc < 0) {
    snprintf(err, errlen, "listen: bad address \"%s\": %s", hostport, uv_strerror(rc));
    return -1;
  }
  uv_tcp_init(s->loop, &s->listener);
  s->listener.data = s;
  s->listener_state = SHR_HTTP_L_OPEN;
  /* libuv sets SO_REUSEADDR on every TCP bind: a restart rebinds at once. */
  rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
  if (rc < 0) {
    snprintf(err, errlen, "listen %s: %s", hostport, uv_strerror(rc));
    close_listener(s);
    return -1;
  }
  return 0;
}

int shr_http_server_port(const shr_http_server_t *s) {
  struct sockaddr_storage addr;
  int len = sizeof(addr);
  if (s->listener_state != SHR_HTTP_L_OPEN ||
      uv_tcp_getsockname(&s->listener, (struct sockaddr *)&addr, &len) < 0)
    return -1;
  if (addr.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
  return ntohs(((struct sockaddr_in *)&addr)->sin_port);
}

void shr_http_server_stop_accepting(shr_http_server_t *s) {
  if (s->stopping) return;
  s->stopping = 1;
  close_listener(s);
  for (shr_http_conn_t *c = s->conns; c; c = c->next) shr_http_conn_stop(c);
}

static void anchor_closed(uv_handle_t *h) {
  shr_http_server_t *s = h->data;
  s->anchor_open = 0;
  maybe_finish(s);
}

void shr_http_server_close(shr_http_server_t *s, shr_http_server_closed_fn on_closed) {
  assert(!s->closing);
  s->closing = 1;
  s->stopping = 1;
  s->on_closed = on_closed;
  close_listener(s);
  /* Closing is asynchronous: nothing leaves the lists before the loop runs. */
  for (shr_http_conn_t *c = s->conns; c; c = c->next) shr_http_conn_close(c);
  for (shr_http_reject_t *r = s->rejects; r; r = r->next)
    if (!uv_is_closing((uv_handle_t *)&r->tcp)) uv_close((uv_handle_t *)&r->tcp, reject_closed);
  uv_close((uv_handle_t *)&s->anchor, anchor_closed);
}

void shr_http_server_stats(const shr_http_server_t *s, shr_http_server_stats_t *out) { *out = s->stats; }

void shr_http_server_new_id(shr_http_server_t *s, char *out) {
  /* splitmix64 over seed + counter: distinct for 2^64 requests. */
  uint64_t z = s->id_seed + ++s->id_next * 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  /* "%016llx" by hand: snprintf cost 900 instructions a request. */
  static const char hex[] = "0123456789abcdef";
  for (int i = 15; i >= 0; i--, z >>= 4) out[i] = hex[z & 15];
  out[16] = '\0';
}

int shr_http_server_authorized(const shr_http_server_t *s, const char *authorization) {
  if (!s->auth_token) return 1;
  if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0) return 0;
  const char *got = authorization + 7;
  size_t glen = strlen(got), wlen = strlen(s->auth_token);
  /* Constant time in the token's length: no early exit on the first mismatch. */
  unsigned char diff = glen != wlen;
  for (size_t i = 0; i < wlen; i++) diff |= (unsigned char)((i < glen ? got[i] : 0) ^ s->auth_token[i]);
  return diff == 0;
}
