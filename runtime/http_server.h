/* The HTTP/1.1 server transport: a listener, keep-alive connections parsed by
 * llhttp, limits (header size and time, body size, connections, bearer token),
 * buffered and streamed (SSE) responses, access log and counters. Used by the
 * supervisor's API routes; relies on libuv, llhttp and log.h. */
#ifndef SHR_HTTP_SERVER_H
#define SHR_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"

typedef struct shr_http_server shr_http_server_t;
typedef struct shr_http_req shr_http_req_t;

/* Zero fields take the defaults given in brackets. */
typedef struct shr_http_server_opts {
  size_t max_header_bytes;     /* request line + headers [16 KiB] -> 431 (414 for the target) */
  size_t max_body_bytes;       /* [16 MiB] -> 413 */
  unsigned header_timeout_ms;  /* first byte to end of headers, and accept to first byte [10 s] */
  unsigned idle_timeout_ms;    /* keep-alive idle time, and the gap between body reads [60 s] */
  int max_connections;         /* more are answered 503 and closed [1024] */
  size_t stream_max_queued;    /* a stream's unsent bytes before the client is dropped [1 MiB] */
  const char *auth_token;      /* NULL or "": no auth; copied */
} shr_http_server_opts_t;

typedef struct shr_http_server_stats {
  uint64_t requests[5];        /* answered, by status class: [0] 1xx .. [4] 5xx */
  uint64_t requests_aborted;   /* the client went away before the answer */
  uint64_t connections_total;  /* accepted and served */
  uint64_t connections_rejected; /* answered 503: over max_connections */
  int connections_open;
} shr_http_server_stats_t;

/* Called once per complete request. The handler owns req until it calls
 * exactly one of shr_http_respond, shr_http_problem or shr_http_stream_end, now
 * or later from the loop; if the client is gone by then the call is a no-op
 * that only frees req. */
typedef void (*shr_http_handler_fn)(shr_http_req_t *req, void *data);
typedef void (*shr_http_server_closed_fn)(void *data);
/* The client went away before the handler finished; req stays valid until the
 * handler's finishing call, which the handler still has to make. */
typedef void (*shr_http_req_close_fn)(shr_http_req_t *req, void *data);

/* ---- server ---- */

void shr_http_server_opts_from_config(shr_http_server_opts_t *o, const shr_config_t *cfg);
/* NULL only when out of memory. data is handed to handler and on_closed. */
shr_http_server_t *shr_http_server_new(uv_loop_t *loop, const shr_http_server_opts_t *o,
                                       shr_http_handler_fn handler, void *data);
/* "host:port" or "[v6]:port"; port 0 picks a free one (see shr_http_server_port).
 * Returns 0, or -1 with err set. Once per server. */
int shr_http_server_listen(shr_http_server_t *s, const char *hostport, char *err, size_t errlen);
int shr_http_server_port(const shr_http_server_t *s);
/* Graceful shutdown: closes the listener and idle connections; requests in
 * flight finish, and their connections close after the answer. */
void shr_http_server_stop_accepting(shr_http_server_t *s);
/* Closes everything at once (unanswered requests see their on_close); on_closed
 * (may be NULL) runs from the loop when every handle is closed, then s is freed. */
void shr_http_server_close(shr_http_server_t *s, shr_http_server_closed_fn on_closed);
void shr_http_server_stats(const shr_http_server_t *s, shr_http_server_stats_t *out);

/* ---- request (valid until the handler's finishing call) ---- */

const char *shr_http_req_method(const shr_http_req_t *req);  /* "GET" */
const char *shr_http_req_target(const shr_http_req_t *req);  /* raw, "/a/b?x=1" */
const char *shr_http_req_path(const shr_http_req_t *req);    /* raw, "/a/b" */
const char *shr_http_req_query(const shr_http_req_t *req);   /* raw, "x=1", "" if none */
/* The first header of that name (case-insensitive), or NULL. */
const char *shr_http_req_header(const shr_http_req_t *req, const char *name);
size_t shr_http_req_header_count(const shr_http_req_t *req);
void shr_http_req_header_at(const shr_http_req_t *req, size_t i, const char **name, const char **value);
const char *shr_http_req_body(const shr_http_req_t *req, size_t *len); /* NUL-terminated */
const char *shr_http_req_id(const shr_http_req_t *req);      /* X-Request-Id, or generated */
const char *shr_http_req_remote(const shr_http_req_t *req);  /* "1.2.3.4:5678", "[::1]:5678" */
/* Decodes query parameter name (%XX, '+') into out (NUL-terminated). Returns its
 * length, -1 when absent, -2 when malformed or longer than outlen - 1. An out of
 * strlen(query) + 1 bytes always fits. */
int shr_http_req_param(const shr_http_req_t *req, const char *name, char *out, size_t outlen);
/* 1 while the client is connected. */
int shr_http_req_alive(const shr_http_req_t *req);
/* Registers cb for the client going away. Returns 0, or -1 (cb not registered)
 * when it is already gone. */
int shr_http_req_on_close(shr_http_req_t *req, shr_http_req_close_fn cb, void *data);

/* ---- responses: each finishing call consumes req ---- */

/* extra_headers: NULL or complete "Name: value\r\n" lines. content_type may be
 * NULL. Returns 0 when queued, -1 when the client was gone (a no-op). */
int shr_http_respond(shr_http_req_t *req, int status, const char *content_type,
                     const char *extra_headers, const void *body, size_t len);
/* application/problem+json (RFC 9457) with title and, unless NULL, detail. */
int shr_http_problem(shr_http_req_t *req, int status, const char *title, const char *detail);

/* Streaming (Server-Sent Events): the head without a length, the connection
 * closing when the stream ends. headers as extra_headers above (give the
 * Content-Type there). Each returns 0, or -1 when the client is gone; a write
 * that would leave more than stream_max_queued bytes unsent drops the client. */
int shr_http_stream_start(shr_http_req_t *req, int status, const char *headers);
int shr_http_stream_write(shr_http_req_t *req, const void *data, size_t len);
/* The finishing call of a started stream. */
void shr_http_stream_end(shr_http_req_t *req);

#endif
