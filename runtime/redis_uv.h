/* The project's own hiredis 0.14 <-> libuv adapter: one uv_poll_t per
 * redisAsyncContext. Unlike Debian's adapters/libuv.h it passes poll errors on
 * to hiredis, so a refused connect reaches the connect callback. Used by
 * redis.c only; relies on hiredis' async API and libuv. */
#ifndef SHR_REDIS_UV_H
#define SHR_REDIS_UV_H

#include <hiredis/async.h>
#include <uv.h>

/* Attaches ac to loop and starts watching for writability, so the outcome of
 * the connect is seen even when no command is queued. The poll handle is closed
 * (and freed in its close callback) by hiredis' cleanup hook when ac is freed.
 * Returns 0, or -1 if ac is attached already or the poll cannot be created. */
int shr_redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop);

/* Whether the poll handle keeps the loop alive (the client refs it only while
 * commands are outstanding). No-op when ac is not attached. */
void shr_redis_uv_set_ref(redisAsyncContext *ac, int ref);

#endif
