#include "redis_uv.h"

#include <stdlib.h>

typedef struct {
  uv_poll_t poll;
  redisAsyncContext *ac; /* borrowed; NULL once hiredis ran the cleanup hook */
  int events;            /* UV_READABLE | UV_WRITABLE wanted by hiredis */
  int started;           /* the events the poll handle watches now */
} shr_redis_uv_t;

static void on_poll(uv_poll_t *h, int status, int events);

static void on_closed(uv_handle_t *h) { free(h->data); }

/* hiredis asks for writes once per queued command: restarting the poll each
 * time would cost an epoll_ctl per command, so only real changes go through. */
static void watch(shr_redis_uv_t *p) {
  if (p->events == p->started) return;
  p->started = p->events;
  if (p->events)
    uv_poll_start(&p->poll, p->events, on_poll);
  else
    uv_poll_stop(&p->poll);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  shr_redis_uv_t *p = h->data;
  if (status < 0) {
    /* libuv has stopped the handle (POLLERR: a refused connect, a reset).
     * Let hiredis read the socket error itself: during the connect the write
     * path checks SO_ERROR and fires the connect callback; afterwards the read
     * path sees the error or EOF and disconnects. */
    p->started = 0;
    if (!(p->ac->c.flags & REDIS_CONNECTED))
      redisAsyncHandleWrite(p->ac);
    else
      redisAsyncHandleRead(p->ac);
    /* Still alive (data was queued ahead of the error): keep reading to it. */
    if (p->ac) watch(p);
    return;
  }
  /* Each call may free ac (the cleanup hook then clears p->ac). */
  if ((events & UV_READABLE) && p->ac) redisAsyncHandleRead(p->ac);
  if ((events & UV_WRITABLE) && p->ac) redisAsyncHandleWrite(p->ac);
}

static void add_read(void *data) {
  shr_redis_uv_t *p = data;
  p->events |= UV_READABLE;
  watch(p);
}

static void del_read(void *data) {
  shr_redis_uv_t *p = data;
  p->events &= ~UV_READABLE;
  watch(p);
}

static void add_write(void *data) {
  shr_redis_uv_t *p = data;
  p->events |= UV_WRITABLE;
  watch(p);
}

static void del_write(void *data) {
  shr_redis_uv_t *p = data;
  p->events &= ~UV_WRITABLE;
  watch(p);
}

/* hiredis is freeing the context: its socket closes right after this returns,
 * so the watcher must stop now; the memory goes in the close callback. */
static void cleanup(void *data) {
  shr_redis_uv_t *p = data;
  p->ac->ev.data = NULL;
  p->ac = NULL;
  p->events = 0;
  uv_close((uv_handle_t *)&p->poll, on_closed);
}

int shr_redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop) {
  if (ac->ev.data) return -1;
  shr_redis_uv_t *p = calloc(1, sizeof *p);
  if (!p) return -1;
  if (uv_poll_init(loop, &p->poll, ac->c.fd) != 0) {
    free(p);
    return -1;
  }
  p->poll.data = p;
  p->ac = ac;
  ac->ev.addRead = add_read;
  ac->ev.delRead = del_read;
  ac->ev.addWrite = add_write;
  ac->ev.delWrite = del_write;
  ac->ev.cleanup = cleanup;
  ac->ev.data = p;
  add_write(p);
  return 0;
}

void shr_redis_uv_set_ref(redisAsyncContext *ac, int ref) {
  shr_redis_uv_t *p = ac->ev.data;
  if (!p) return;
  if (ref)
    uv_ref((uv_handle_t *)&p->poll);
  else
    uv_unref((uv_handle_t *)&p->poll);
}
