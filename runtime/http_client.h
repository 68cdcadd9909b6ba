/* The outbound HTTP client: one libcurl multi handle driven by a libuv loop
 * (a uv_poll per socket, one uv_timer), so hundreds of transfers run at once
 * on one thread and keep-alive connections are reused. Used by lua_http.c
 * (shield.http) and its C test; relies on libcurl and libuv. */
#ifndef SHR_HTTP_CLIENT_H
#define SHR_HTTP_CLIENT_H

#include <stddef.h>
#include <uv.h>

typedef struct shr_http_client shr_http_client_t;
typedef struct shr_http_xfer shr_http_xfer_t;

/* (The server's request type owns the name shr_http_req_t.) */
typedef struct shr_http_client_header {
  const char *name;
  const char *value;
} shr_http_client_header_t;

/* A request; shr_http_request copies everything it needs. */
typedef struct shr_http_client_req {
  const char *method;                       /* "GET", "POST", ... */
  const char *url;                          /* http:// or https:// only */
  const shr_http_client_header_t *headers;  /* may be NULL when nheaders is 0 */
  size_t nheaders;
  const char *body;                         /* NULL: no body */
  size_t body_len;
  long timeout_ms;                          /* whole transfer, > 0 */
  size_t max_body;                          /* 0: SHR_HTTP_MAX_BODY */
} shr_http_client_req_t;

#define SHR_HTTP_MAX_BODY ((size_t)64 << 20)

/* The final response (after redirects). Valid during the callback only,
 * except body: the callback may take it (free() it later) by setting
 * res->body to NULL. body is NUL-terminated. */
typedef struct shr_http_client_res {
  long status;
  const shr_http_client_header_t *headers;  /* names lowercased, in arrival order */
  size_t nheaders;
  char *body;
  size_t body_len;
} shr_http_client_res_t;

/* Exactly one call per request unless it was cancelled: res set and err NULL,
 * or res NULL and err = "<fixed words>[: curl's detail]" with the words one
 * of "timeout", "connection refused", "connect failed", "resolve failed",
 * "unsupported protocol", "bad url", "too many redirects", "response too large",
 * "tls failed", "closed", "bad response", "out of memory", "http failed".
 * A client closed with transfers in flight calls them with "closed". */
typedef void (*shr_http_cb)(shr_http_client_res_t *res, const char *err, void *data);

/* At most max_host_connections open to one host (and kept alive in all):
 * transfers beyond it queue inside curl until a connection is free, so a
 * burst cannot open a socket per request. NULL if curl cannot be initialised. */
shr_http_client_t *shr_http_client_new(uv_loop_t *loop, long max_host_connections);
/* Ends every transfer (their callbacks get "closed"), closes the connections;
 * the memory is freed once the libuv handles closed (run the loop). Not from
 * inside a callback of this client. */
void shr_http_client_close(shr_http_client_t *c);

/* Starts a transfer; the callback runs from the loop, never inside this call.
 * *out_handle (if out_handle is not NULL) identifies the transfer for
 * shr_http_cancel until its callback runs. Returns 0, or with the reason in
 * shr_http_client_error(): -EINVAL (a method or header name that is not a
 * token, a header value with CR or LF), -ENOMEM, -ECANCELED (client closing). */
int shr_http_request(shr_http_client_t *c, const shr_http_client_req_t *req, shr_http_cb cb, void *data,
                     shr_http_xfer_t **out_handle);
/* Removes a transfer whose caller gave up: its callback never runs. */
void shr_http_cancel(shr_http_xfer_t *x);

const char *shr_http_client_error(const shr_http_client_t *c);

typedef struct shr_http_client_stats {
  unsigned long requests;  /* transfers started */
  unsigned long failed;    /* completed with an error (cancelled ones excluded) */
  unsigned long cancelled;
  unsigned long connects;  /* new connections opened (CURLINFO_NUM_CONNECTS summed) */
  unsigned long active;    /* in flight now */
} shr_http_client_stats_t;

void shr_http_client_stats(const shr_http_client_t *c, shr_http_client_stats_t *out);

#endif
