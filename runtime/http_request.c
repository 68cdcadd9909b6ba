/* The request object of the HTTP server: built by the parser callbacks in
 * http_conn.c, read by handlers through the accessors of http_server.h. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_internal.h"

/* Keeps a NUL after the data, so targets and bodies read as C strings. */
int shr_http_buf_append(shr_http_buf_t *b, const char *data, size_t len) {
  if (b->cap < b->len + len + 1) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + len + 1) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) return -1;
    b->data = p;
    b->cap = cap;
  }
  if (len) memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len] = '\0';
  return 0;
}

void shr_http_buf_free(shr_http_buf_t *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

shr_http_req_t *shr_http_req_new(shr_http_conn_t *c) {
  shr_http_req_t *req = calloc(1, sizeof(*req));
  if (!req) return NULL;
  req->conn = c;
  req->method = "-";
  memcpy(req->remote, c->remote, sizeof(req->remote));
  req->start_ns = uv_hrtime();
  return req;
}

void shr_http_req_free(shr_http_req_t *req) {
  shr_http_buf_free(&req->target);
  shr_http_buf_free(&req->head);
  shr_http_buf_free(&req->body);
  free(req->path);
  free(req->query);
  free(req->hdrs);
  free(req);
}

int shr_http_req_end_field(shr_http_req_t *req) {
  if (shr_http_buf_append(&req->head, "", 1) < 0) return -1;
  req->name_off = req->mark;
  req->mark = req->head.len;
  return 0;
}

int shr_http_req_end_value(shr_http_req_t *req) {
  if (shr_http_buf_append(&req->head, "", 1) < 0) return -1;
  if (req->nhdrs == req->hdrs_cap) {
    size_t cap = req->hdrs_cap ? req->hdrs_cap * 2 : 16;
    shr_http_hdr_t *h = realloc(req->hdrs, cap * sizeof(*h));
    if (!h) return -1;
    req->hdrs = h;
    req->hdrs_cap = cap;
  }
  req->hdrs[req->nhdrs].name = req->name_off;
  req->hdrs[req->nhdrs].value = req->mark;
  req->nhdrs++;
  req->mark = req->head.len;
  return 0;
}

int shr_http_req_split_target(shr_http_req_t *req) {
  const char *t = req->target.data ? req->target.data : "";
  size_t plen = strcspn(t, "?#");
  size_t qlen = t[plen] == '?' ? strcspn(t + plen + 1, "#") : 0;
  req->path = strndup(t, plen);
  req->query = strndup(qlen ? t + plen + 1 : "", qlen);
  return req->path && req->query ? 0 : -1;
}

const char *shr_http_req_method(const shr_http_req_t *req) { return req->method; }
const char *shr_http_req_target(const shr_http_req_t *req) { return req->target.data ? req->target.data : ""; }
const char *shr_http_req_path(const shr_http_req_t *req) { return req->path ? req->path : ""; }
const char *shr_http_req_query(const shr_http_req_t *req) { return req->query ? req->query : ""; }
const char *shr_http_req_id(const shr_http_req_t *req) { return req->id; }
const char *shr_http_req_remote(const shr_http_req_t *req) { return req->remote; }
size_t shr_http_req_header_count(const shr_http_req_t *req) { return req->nhdrs; }

void shr_http_req_header_at(const shr_http_req_t *req, size_t i, const char **name, const char **value) {
  assert(i < req->nhdrs);
  *name = req->head.data + req->hdrs[i].name;
  *value = req->head.data + req->hdrs[i].value;
}

const char *shr_http_req_header(const shr_http_req_t *req, const char *name) {
  for (size_t i = 0; i < req->nhdrs; i++)
    if (strcasecmp(req->head.data + req->hdrs[i].name, name) == 0) return req->head.data + req->hdrs[i].value;
  return NULL;
}

const char *shr_http_req_body(const shr_http_req_t *req, size_t *len) {
  if (len) *len = req->body.len;
  return req->body.data ? req->body.data : "";
}

int shr_http_req_alive(const shr_http_req_t *req) { return req->conn && !req->conn->closing; }

int shr_http_req_on_close(shr_http_req_t *req, shr_http_req_close_fn cb, void *data) {
  if (!shr_http_req_alive(req)) return -1;
  req->on_close = cb;
  req->close_data = data;
  return 0;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* The decoded byte at s[*i] (advancing *i), or -1 for a bad %-escape. */
static int next_byte(const char *s, size_t n, size_t *i) {
  char c = s[(*i)++];
  if (c == '+') return ' ';
  if (c != '%') return (unsigned char)c;
  if (*i + 2 > n) return -1;
  int hi = hexval(s[*i]), lo = hexval(s[*i + 1]);
  if (hi < 0 || lo < 0) return -1;
  *i += 2;
  return hi * 16 + lo;
}

static int key_is(const char *s, size_t n, const char *name) {
  size_t i = 0, j = 0;
  while (i < n) {
    int b = next_byte(s, n, &i);
    if (b < 0 || name[j] == '\0' || (unsigned char)name[j] != b) return 0;
    j++;
  }
  return name[j] == '\0';
}

int shr_http_req_param(const shr_http_req_t *req, const char *name, char *out, size_t outlen) {
  const char *q = shr_http_req_query(req);
  while (*q) {
    size_t n = strcspn(q, "&");
    const char *eq = memchr(q, '=', n);
    size_t kn = eq ? (size_t)(eq - q) : n;
    if (key_is(q, kn, name)) {
      const char *v = eq ? eq + 1 : q + n;
      size_t vn = (size_t)(q + n - v), i = 0, o = 0;
      while (i < vn) {
        int b = next_byte(v, vn, &i);
        if (b < 0 || o + 1 >= outlen) return -2;
        out[o++] = (char)b;
      }
      if (outlen == 0) return -2;
      out[o] = '\0';
      return (int)o;
    }
    q += n;
    if (*q == '&') q++;
  }
  return -1;
}
