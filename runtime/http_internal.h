/* Internals of the HTTP server shared by its files: http_server.c (listener,
 * counters), http_conn.c (connections, parsing, timers, writes),
 * http_request.c (the request object) and http_response.c (answers, log). */
#ifndef SHR_HTTP_INTERNAL_H
#define SHR_HTTP_INTERNAL_H

#include <llhttp.h>

#include "http_server.h"

#define SHR_HTTP_ID_MAX 128
#define SHR_HTTP_REMOTE_MAX 64

typedef struct shr_http_conn shr_http_conn_t;

typedef struct shr_http_buf {
  char *data; /* owned */
  size_t len, cap;
} shr_http_buf_t;

typedef struct shr_http_hdr {
  size_t name, value; /* offsets into the request's head buffer */
} shr_http_hdr_t;

struct shr_http_req {
  shr_http_conn_t *conn;        /* NULL once the connection is gone */
  const char *method;           /* static, from llhttp */
  shr_http_buf_t target;        /* raw request target */
  char *path, *query;           /* owned, split from target at the end of the headers */
  shr_http_buf_t head;          /* header names and values, NUL-terminated, back to back */
  size_t mark;                  /* head offset where the field or value being read starts */
  size_t name_off;              /* the name of the header whose value is being read */
  shr_http_hdr_t *hdrs;         /* owned */
  size_t nhdrs, hdrs_cap;
  size_t head_bytes;            /* counted against max_header_bytes */
  shr_http_buf_t body;
  char id[SHR_HTTP_ID_MAX + 1];
  char remote[SHR_HTTP_REMOTE_MAX];
  uint64_t start_ns;
  size_t bytes_sent;
  int status;
  int keep_alive;
  int http10;                   /* HTTP/1.0: keep-alive must be announced */
  int headers_done;
  int streaming;
  int handler_done;             /* the handler made its finishing call */
  shr_http_req_close_fn on_close;
  void *close_data;
};

/* What a connection's timer is counting. */
enum { SHR_HTTP_T_NONE, SHR_HTTP_T_HEADER, SHR_HTTP_T_BODY, SHR_HTTP_T_IDLE, SHR_HTTP_T_LINGER };

struct shr_http_conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_shutdown_t shutdown;
  shr_http_server_t *server;
  shr_http_conn_t *prev, *next;  /* the server's list */
  llhttp_t parser;
  shr_http_buf_t in;             /* received, not yet parsed */
  shr_http_req_t *building;      /* being parsed; owned */
  shr_http_req_t *ready;         /* parsed, about to be handed to the handler; owned */
  shr_http_req_t *current;       /* with the handler (or streaming); at most one */
  char remote[SHR_HTTP_REMOTE_MAX];
  int tmode;                     /* what the timer counts: SHR_HTTP_T_* */
  uint64_t deadline;             /* loop ms when that runs out */
  uint64_t timer_due;            /* loop ms the timer is due at (<= deadline), 0 when not armed */
  int handles_open;
  int pending_writes;
  int reject_status;             /* set by a parser callback that refuses the request */
  char reject_detail[96];
  int in_message;                /* bytes of a request have arrived, not all of it */
  int in_process;                /* inside conn_process: do not re-enter the parser */
  int reading;
  int close_after;               /* close once the queued writes are sent */
  int lingering;
  int closing;
};

typedef struct shr_http_reject shr_http_reject_t;

enum { SHR_HTTP_L_NONE, SHR_HTTP_L_OPEN, SHR_HTTP_L_CLOSING, SHR_HTTP_L_CLOSED };

struct shr_http_server {
  uv_loop_t *loop;
  uv_tcp_t listener;
  uv_timer_t anchor;             /* closed last, so on_closed always runs from the loop */
  int listener_state;            /* SHR_HTTP_L_* */
  int anchor_open;
  shr_http_server_opts_t opts;   /* defaults applied; auth_token points at auth_token below */
  char *auth_token;              /* owned, NULL when unset */
  shr_http_handler_fn handler;
  void *data;
  shr_http_server_closed_fn on_closed;
  shr_http_conn_t *conns;        /* open connections */
  shr_http_reject_t *rejects;    /* connections being answered 503 */
  shr_http_server_stats_t stats;
  uint64_t id_seed, id_next;
  int stopping;
  int closing;
};

/* http_server.c */
void shr_http_server_conn_gone(shr_http_server_t *s);
void shr_http_server_new_id(shr_http_server_t *s, char *out);
int shr_http_server_authorized(const shr_http_server_t *s, const char *authorization);

/* http_conn.c */
void shr_http_conn_accept(shr_http_server_t *s);
void shr_http_conn_close(shr_http_conn_t *c);
void shr_http_conn_stop(shr_http_conn_t *c);
/* Queues len bytes of data (malloc'd, taken over) for c; on failure closes c
 * and returns -1. */
int shr_http_conn_send(shr_http_conn_t *c, char *data, size_t len);
/* The handler answered c's current request: go on with the next, or close. */
void shr_http_conn_answered(shr_http_conn_t *c, int keep_alive);
size_t shr_http_conn_queued(const shr_http_conn_t *c);

/* http_request.c */
int shr_http_buf_append(shr_http_buf_t *b, const char *data, size_t len);
void shr_http_buf_free(shr_http_buf_t *b);
shr_http_req_t *shr_http_req_new(shr_http_conn_t *c);
void shr_http_req_free(shr_http_req_t *req);
int shr_http_req_end_field(shr_http_req_t *req);
int shr_http_req_end_value(shr_http_req_t *req);
int shr_http_req_split_target(shr_http_req_t *req);

/* http_response.c */
int shr_http_problem_h(shr_http_req_t *req, int status, const char *title, const char *detail,
                       const char *extra_headers);
const char *shr_http_reason(int status);
/* The access-log line and counters of a request that ends with status. */
void shr_http_log_request(shr_http_server_t *s, const shr_http_req_t *req, int status);

#endif
