#include "http_client.h"

#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_REDIRECTS 5L
#define MAX_HEADER_BYTES ((size_t)1 << 20)

typedef struct sock {
  uv_poll_t poll;
  curl_socket_t fd;
  shr_http_client_t *client;
  struct sock *prev, *next; /* the client's list */
} sock_t;

struct shr_http_client {
  uv_loop_t *loop;
  CURLM *multi;             /* owned; NULL once closing */
  uv_timer_t timer;         /* curl's single timeout */
  sock_t *socks;            /* open poll handles */
  shr_http_xfer_t *xfers;   /* in flight */
  int open_handles;         /* timer + poll handles not yet closed */
  int closing;
  int dispatching;          /* inside a completion callback */
  shr_http_client_stats_t stats;
  char err[256];
};

typedef struct buf {
  char *data;
  size_t len, cap;
} buf_t;

struct shr_http_xfer {
  shr_http_client_t *client;
  CURL *easy;                     /* owned */
  struct curl_slist *req_headers; /* owned; curl reads it until the transfer ends */
  shr_http_cb cb;
  void *data;
  buf_t body;
  size_t max_body;
  buf_t head;                     /* response headers: "name\0value\0" ... */
  size_t nheaders;
  int too_large;
  char errbuf[CURL_ERROR_SIZE];
  shr_http_xfer_t *prev, *next;   /* the client's list */
};

static int curl_ready;

/* ---- buffers ---- */

/* Appends n bytes and keeps a NUL after them. */
static int buf_append(buf_t *b, const char *d, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) return -1;
    b->data = p;
    b->cap = cap;
  }
  memcpy(b->data + b->len, d, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

/* ---- requests ---- */

/* RFC 9110 token: methods and header names. */
static int is_token(const char *s) {
  if (!*s) return 0;
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          strchr("!#$%&'*+-.^_`|~", ch)))
      return 0;
  }
  return 1;
}

static int has_crlf(const char *s) { return strpbrk(s, "\r\n") != NULL; }

__attribute__((format(printf, 2, 3))) static void fail_setup(shr_http_client_t *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, sizeof c->err, fmt, ap);
  va_end(ap);
}

static void xfer_free(shr_http_xfer_t *x) {
  if (x->easy) curl_easy_cleanup(x->easy);
  curl_slist_free_all(x->req_headers);
  free(x->body.data);
  free(x->head.data);
  free(x);
}

static void xfer_unlink(shr_http_xfer_t *x) {
  shr_http_client_t *c = x->client;
  if (x->prev) x->prev->next = x->next;
  else c->xfers = x->next;
  if (x->next) x->next->prev = x->prev;
  c->stats.active--;
}

static size_t on_body(char *d, size_t size, size_t n, void *ud) {
  shr_http_xfer_t *x = ud;
  size_t len = size * n;
  if (x->body.len + len > x->max_body) {
    x->too_large = 1;
    return 0;
  }
  return buf_append(&x->body, d, len) == 0 ? len : 0;
}

/* One header line. A status line starts a new response (after a 1xx or a
 * redirect), so only the final response's headers remain. */
static size_t on_header(char *line, size_t size, size_t n, void *ud) {
  shr_http_xfer_t *x = ud;
  size_t total = size * n, len = total;
  if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
    x->head.len = 0;
    x->nheaders = 0;
    return total;
  }
  while (len && (line[len - 1] == '\r' || line[len - 1] == '\n' || line[len - 1] == ' ' || line[len - 1] == '\t'))
    len--;
  if (len == 0) return total;
  if (x->head.len + len + 2 > MAX_HEADER_BYTES) {
    x->too_large = 1;
    return 0;
  }
  if (line[0] == ' ' || line[0] == '\t') {
    /* Obsolete line folding: continue the previous value. */
    if (x->nheaders == 0) return total;
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t')) i++;
    x->head.data[x->head.len - 1] = ' ';
    if (buf_append(&x->head, line + i, len - i) != 0 || buf_append(&x->head, "", 1) != 0) return 0;
    return total;
  }
  const char *colon = memchr(line, ':', len);
  if (!colon) return total;
  size_t name_len = (size_t)(colon - line), v = name_len + 1;
  while (v < len && (line[v] == ' ' || line[v] == '\t')) v++;
  size_t start = x->head.len;
  if (buf_append(&x->head, line, name_len) != 0 || buf_append(&x->head, "", 1) != 0 ||
      buf_append(&x->head, line + v, len - v) != 0 || buf_append(&x->head, "", 1) != 0)
    return 0;
  for (size_t i = start; i < start + name_len; i++)
    if (x->head.data[i] >= 'A' && x->head.data[i] <= 'Z') x->head.data[i] += 'a' - 'A';
  x->nheaders++;
  return total;
}

/* Methods that carry no body unless one is given; any other method without a
 * body sends Content-Length: 0, which servers expect of a bodiless PUT. */
static int bodiless(const char *method) {
  static const char *const names[] = {"GET", "HEAD", "DELETE", "OPTIONS", "TRACE"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(method, names[i]) == 0) return 1;
  return 0;
}

/* The request's header list: the caller's, then ours to stop curl inventing
 * an Expect: 100-continue round trip or a form Content-Type. */
static int build_headers(shr_http_client_t *c, shr_http_xfer_t *x, const shr_http_client_req_t *req) {
  int has_type = 0, has_expect = 0;
  for (size_t i = 0; i < req->nheaders; i++) {
    const shr_http_client_header_t *h = &req->headers[i];
    if (!is_token(h->name)) {
      fail_setup(c, "bad header name \"%s\"", h->name);
      return -EINVAL;
    }
    if (has_crlf(h->value)) {
      fail_setup(c, "bad header value for %s (CR or LF)", h->name);
      return -EINVAL;
    }
    has_type |= strcasecmp(h->name, "content-type") == 0;
    has_expect |= strcasecmp(h->name, "expect") == 0;
    size_t len = strlen(h->name) + strlen(h->value) + 3;
    char *line = malloc(len);
    if (!line) goto oom;
    /* "Name;" is curl's way to send a header with an empty value. */
    if (h->value[0]) snprintf(line, len, "%s: %s", h->name, h->value);
    else snprintf(line, len, "%s;", h->name);
    struct curl_slist *l = curl_slist_append(x->req_headers, line);
    free(line);
    if (!l) goto oom;
    x->req_headers = l;
  }
  if (!has_expect && !(x->req_headers = curl_slist_append(x->req_headers, "Expect:"))) goto oom;
  if (!has_type && req->body && !(x->req_headers = curl_slist_append(x->req_headers, "Content-Type:"))) goto oom;
  return 0;
oom:
  fail_setup(c, "out of memory");
  return -ENOMEM;
}

#define SET(opt, val)                                                \
  do {                                                               \
    if (curl_easy_setopt(e, opt, val) != CURLE_OK) goto fail;        \
  } while (0)

static int setup_easy(shr_http_xfer_t *x, const shr_http_client_req_t *req) {
  CURL *e = x->easy;
  SET(CURLOPT_PRIVATE, (void *)x);
  SET(CURLOPT_URL, req->url);
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_FOLLOWLOCATION, 1L);
  SET(CURLOPT_MAXREDIRS, MAX_REDIRECTS);
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_TCP_KEEPALIVE, 1L);
  SET(CURLOPT_TIMEOUT_MS, req->timeout_ms);
  SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max_body);
  SET(CURLOPT_USERAGENT, "shield-runtime/" SHR_VERSION);
  SET(CURLOPT_ERRORBUFFER, x->errbuf);
  SET(CURLOPT_WRITEFUNCTION, on_body);
  SET(CURLOPT_WRITEDATA, (void *)x);
  SET(CURLOPT_HEADERFUNCTION, on_header);
  SET(CURLOPT_HEADERDATA, (void *)x);
  SET(CURLOPT_HTTPHEADER, x->req_headers);
  const char *m = req->method;
  if (req->body || !bodiless(m)) {
    /* The size first: COPYPOSTFIELDS then copies that many bytes, NULs included. */
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(req->body ? req->body_len : 0));
    SET(CURLOPT_COPYPOSTFIELDS, req->body ? req->body : "");
    if (strcmp(m, "POST") != 0) SET(CURLOPT_CUSTOMREQUEST, m);
  } else if (strcmp(m, "HEAD") == 0) {
    SET(CURLOPT_NOBODY, 1L);
  } else if (strcmp(m, "GET") != 0) {
    SET(CURLOPT_CUSTOMREQUEST, m);
  }
  return 0;
fail:
  return -1;
}

#undef SET

int shr_http_request(shr_http_client_t *c, const shr_http_client_req_t *req, shr_http_cb cb, void *data,
                     shr_http_xfer_t **out_handle) {
  assert(req->method && req->url && cb && req->timeout_ms > 0);
  if (c->closing) {
    fail_setup(c, "closed");
    return -ECANCELED;
  }
  if (!is_token(req->method)) {
    fail_setup(c, "bad method \"%s\"", req->method);
    return -EINVAL;
  }
  shr_http_xfer_t *x = calloc(1, sizeof *x);
  if (!x || !(x->easy = curl_easy_init())) {
    free(x);
    fail_setup(c, "out of memory");
    return -ENOMEM;
  }
  x->client = c;
  x->cb = cb;
  x->data = data;
  x->max_body = req->max_body ? req->max_body : SHR_HTTP_MAX_BODY;
  int rc = build_headers(c, x, req);
  if (rc != 0) {
    xfer_free(x);
    return rc;
  }
  if (setup_easy(x, req) != 0 || curl_multi_add_handle(c->multi, x->easy) != CURLM_OK) {
    xfer_free(x);
    fail_setup(c, "out of memory");
    return -ENOMEM;
  }
  x->next = c->xfers;
  if (c->xfers) c->xfers->prev = x;
  c->xfers = x;
  c->stats.requests++;
  c->stats.active++;
  if (out_handle) *out_handle = x;
  return 0;
}

void shr_http_cancel(shr_http_xfer_t *x) {
  shr_http_client_t *c = x->client;
  xfer_unlink(x);
  curl_multi_remove_handle(c->multi, x->easy);
  c->stats.cancelled++;
  xfer_free(x);
}

/* ---- completion ---- */

static const char *error_words(shr_http_xfer_t *x, CURLcode rc) {
  switch (rc) {
  case CURLE_OPERATION_TIMEDOUT:
    return "timeout";
  case CURLE_COULDNT_CONNECT: {
    long oserr = 0;
    curl_easy_getinfo(x->easy, CURLINFO_OS_ERRNO, &oserr);
    return oserr == ECONNREFUSED ? "connection refused" : "connect failed";
  }
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
    return "resolve failed";
  case CURLE_UNSUPPORTED_PROTOCOL:
    return "unsupported protocol";
  case CURLE_URL_MALFORMAT:
    return "bad url";
  case CURLE_TOO_MANY_REDIRECTS:
    return "too many redirects";
  case CURLE_FILESIZE_EXCEEDED:
    return "response too large";
  case CURLE_WRITE_ERROR:
    return x->too_large ? "response too large" : "out of memory";
  case CURLE_OUT_OF_MEMORY:
    return "out of memory";
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
    return "tls failed";
  case CURLE_GOT_NOTHING:
  case CURLE_RECV_ERROR:
  case CURLE_SEND_ERROR:
  case CURLE_PARTIAL_FILE:
    return "closed";
  case CURLE_WEIRD_SERVER_REPLY:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
  case CURLE_BAD_CONTENT_ENCODING:
    return "bad response";
  default:
    return "http failed";
  }
}

static void deliver(shr_http_xfer_t *x, CURLcode rc) {
  shr_http_client_t *c = x->client;
  long connects = 0;
  curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &connects);
  c->stats.connects += (unsigned long)connects;
  xfer_unlink(x);
  curl_multi_remove_handle(c->multi, x->easy);

  shr_http_client_header_t *hs = NULL;
  if (rc == CURLE_OK && x->nheaders && !(hs = malloc(x->nheaders * sizeof *hs))) rc = CURLE_OUT_OF_MEMORY;
  if (rc == CURLE_OK && !x->body.data && buf_append(&x->body, "", 0) != 0) rc = CURLE_OUT_OF_MEMORY;
  c->dispatching++;
  if (rc == CURLE_OK) {
    const char *p = x->head.data;
    for (size_t i = 0; i < x->nheaders; i++) {
      hs[i].name = p;
      p += strlen(p) + 1;
      hs[i].value = p;
      p += strlen(p) + 1;
    }
    shr_http_client_res_t res = {.headers = hs, .nheaders = x->nheaders, .body = x->body.data,
                                 .body_len = x->body.len};
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &res.status);
    x->body.data = NULL;
    x->cb(&res, NULL, x->data);
    free(res.body);
    free(hs);
  } else {
    c->stats.failed++;
    const char *words = error_words(x, rc);
    char err[CURL_ERROR_SIZE + 64];
    /* Timeouts carry no detail, so callers match one string whichever
     * deadline (the request's or the light thread's) passed first. */
    if (rc == CURLE_OPERATION_TIMEDOUT) snprintf(err, sizeof err, "%s", words);
    else snprintf(err, sizeof err, "%s: %s", words, x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
    x->cb(NULL, err, x->data);
  }
  c->dispatching--;
  xfer_free(x);
}

static void check_done(shr_http_client_t *c) {
  CURLMsg *m;
  int left;
  while (c->multi && (m = curl_multi_info_read(c->multi, &left))) {
    if (m->msg != CURLMSG_DONE) continue;
    char *priv = NULL;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
    /* m is invalid once its handle leaves the multi: read the result first. */
    deliver((shr_http_xfer_t *)priv, m->data.result);
  }
}

/* ---- curl on libuv ---- */

static void on_handle_closed(uv_handle_t *h) {
  shr_http_client_t *c;
  if (h->type == UV_POLL) {
    sock_t *k = h->data;
    c = k->client;
    free(k);
  } else {
    c = h->data;
  }
  if (--c->open_handles == 0 && c->closing) free(c);
}

static void sock_close(shr_http_client_t *c, sock_t *k) {
  if (k->prev) k->prev->next = k->next;
  else c->socks = k->next;
  if (k->next) k->next->prev = k->prev;
  uv_close((uv_handle_t *)&k->poll, on_handle_closed);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  sock_t *k = h->data;
  shr_http_client_t *c = k->client;
  int flags = 0, running;
  if (status < 0) flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  /* k may be closed inside this call (curl removes the socket). */
  curl_multi_socket_action(c->multi, k->fd, flags, &running);
  check_done(c);
}

static int on_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp) {
  shr_http_client_t *c = userp;
  sock_t *k = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (k) {
      sock_close(c, k);
      if (c->multi) curl_multi_assign(c->multi, fd, NULL);
    }
    return 0;
  }
  if (!c->multi) return 0; /* inside curl_multi_cleanup: nothing new to watch */
  if (!k) {
    k = calloc(1, sizeof *k);
    if (!k) return -1;
    if (uv_poll_init_socket(c->loop, &k->poll, fd) != 0) {
      free(k);
      return -1;
    }
    k->fd = fd;
    k->client = c;
    k->poll.data = k;
    k->next = c->socks;
    if (c->socks) c->socks->prev = k;
    c->socks = k;
    c->open_handles++;
    curl_multi_assign(c->multi, fd, k);
  }
  int events = 0;
  if (what & CURL_POLL_IN) events |= UV_READABLE;
  if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
  uv_poll_start(&k->poll, events, on_poll);
  return 0;
}

static void on_timer(uv_timer_t *h) {
  shr_http_client_t *c = h->data;
  int running;
  curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(c);
}

/* curl asks for one timer; it is never run from inside this callback (a 0
 * timeout fires on the next loop turn), as curl requires. */
static int on_timer_change(CURLM *m, long timeout_ms, void *userp) {
  shr_http_client_t *c = userp;
  if (timeout_ms < 0) uv_timer_stop(&c->timer);
  else uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
  return 0;
}

shr_http_client_t *shr_http_client_new(uv_loop_t *loop, long max_host_connections) {
  /* Once per process, before any thread exists; the parent's init serves
   * its forked workers. */
  if (!curl_ready) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) return NULL;
    curl_ready = 1;
  }
  shr_http_client_t *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  if (!(c->multi = curl_multi_init())) {
    free(c);
    return NULL;
  }
  c->loop = loop;
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer_change);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_host_connections);
  curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, max_host_connections);
  uv_timer_init(loop, &c->timer);
  c->timer.data = c;
  c->open_handles = 1;
  return c;
}

void shr_http_client_close(shr_http_client_t *c) {
  assert(!c->dispatching && !c->closing);
  c->closing = 1;
  while (c->xfers) {
    shr_http_xfer_t *x = c->xfers;
    xfer_unlink(x);
    curl_multi_remove_handle(c->multi, x->easy);
    c->stats.failed++;
    x->cb(NULL, "closed", x->data);
    xfer_free(x);
  }
  /* Closes the cached connections; curl may report their sockets removed
   * (on_socket then only closes the poll handles). */
  CURLM *m = c->multi;
  c->multi = NULL;
  curl_multi_cleanup(m);
  while (c->socks) sock_close(c, c->socks);
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

const char *shr_http_client_error(const shr_http_client_t *c) { return c->err; }

void shr_http_client_stats(const shr_http_client_t *c, shr_http_client_stats_t *out) { *out = c->stats; }
