/* shr_redis_t: one asynchronous Redis connection (AUTH/SELECT from the URL, connect
 * timeout, keepalive, reconnects with backoff, per-command watchdogs, EVALSHA scripts
 * that survive a restart). Used by env, lua_redis.c, the consumer; relies on hiredis 0.14, redis_uv.c. */
#ifndef SHR_REDIS_H
#define SHR_REDIS_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct shr_redis shr_redis_t;
typedef struct shr_redis_script shr_redis_script_t;

/* The answer to one command; called exactly once per command, always. Either
 * reply is non-NULL (it may be an error reply; it is freed after the callback
 * returns unless kept with shr_redis_reply_keep) and err is NULL, or reply is
 * NULL and err is one
 * of these static strings:
 *   "redis: not connected"     no connection (also commands queued during a
 *                              connect attempt that failed; they were never sent)
 *   "redis: connection lost"   the connection dropped with the command in flight:
 *                              its outcome is unknown
 *   "timeout"                  the command's own timeout expired
 *   "closed"                   shr_redis_close was called
 * The callback may issue new commands and may call shr_redis_close. */
typedef void (*shr_redis_cb)(shr_redis_t *r, redisReply *reply, const char *err, void *data);
typedef void (*shr_redis_connect_cb)(shr_redis_t *r, void *data);

typedef struct {
  uint64_t connects;       /* connections established (AUTH/SELECT done) */
  uint64_t reconnects;     /* of those, the ones after the first */
  uint64_t connect_failures;
  uint64_t commands_sent;
  uint64_t timeouts;       /* commands answered "timeout" (each dropped the connection) */
  uint64_t script_reloads; /* NOSCRIPT answered by sending the script again */
} shr_redis_stats_t;

#define SHR_REDIS_CONNECT_TIMEOUT_MS 2000
#define SHR_REDIS_BACKOFF_MIN_MS 100
#define SHR_REDIS_BACKOFF_MAX_MS 5000

/* url: redis://[[user]:password@]host[:port][/db], or for a Unix socket
 * unix://[[user]:password@]/path/to/redis.sock[?db=N] (user, password and path
 * may be %-encoded). name labels the log lines. Starts connecting at once. Returns
 * NULL (with the reason logged) on a bad URL or out of memory. */
shr_redis_t *shr_redis_new(uv_loop_t *loop, const char *url, const char *name);
/* Connect timeout for the next attempts (default SHR_REDIS_CONNECT_TIMEOUT_MS). */
void shr_redis_set_connect_timeout(shr_redis_t *r, unsigned timeout_ms);
/* fn runs after every connect, once AUTH and SELECT succeeded, before any later
 * command is sent; it may send setup commands. Returns 0, or -1 out of memory. */
int shr_redis_on_connect(shr_redis_t *r, shr_redis_connect_cb fn, void *data);
/* 1 when a connection is established and ready. */
int shr_redis_connected(const shr_redis_t *r);

/* Sends one command (argv[0] is its name; lengths in argvlen, which may be
 * NULL for NUL-terminated strings). Commands sent back to back go out in one
 * write. Returns 0 when sent or queued behind a connect in progress; -1 when it
 * failed at once, after cb was called with the reason (fail fast). */
int shr_redis_command(shr_redis_t *r, shr_redis_cb cb, void *data, int argc, const char **argv,
                      const size_t *argvlen);
/* The same with a watchdog: if no reply came within timeout_ms, cb gets
 * "timeout" and the connection is dropped and reconnected, since a half-open
 * connection would otherwise hold it forever (other commands in flight get
 * "redis: connection lost"). For blocking commands, give a timeout longer than
 * the BLOCK time, on a connection of their own. */
int shr_redis_command_timeout(shr_redis_t *r, shr_redis_cb cb, void *data, int argc, const char **argv,
                              const size_t *argvlen, unsigned timeout_ms);

const shr_redis_stats_t *shr_redis_stats(const shr_redis_t *r);

/* Closes the connection: pending commands get "closed" (at once, or from the
 * next loop turn when called inside a callback), later ones too; the memory is
 * freed through the handles' close callbacks (run the loop afterwards). */
void shr_redis_close(shr_redis_t *r);

/* A server-side Lua script, known by its source. Not tied to a connection: any
 * shr_redis_t can call it. NULL when out of memory. */
shr_redis_script_t *shr_redis_script_new(const char *source, size_t len);
/* Drops the caller's reference; calls in flight keep the script alive. */
void shr_redis_script_free(shr_redis_script_t *s);
/* Runs the script with argv = nkeys keys followed by the arguments (argvlen may
 * be NULL). EVALSHA once the SHA-1 is known (learnt by SCRIPT LOAD on first
 * use, meanwhile EVAL); a NOSCRIPT reply (Redis restarted) is answered by
 * sending EVAL with the source once, which also reloads the script; cb sees
 * only the final reply. Same return and callback rules as shr_redis_command. */
int shr_redis_script_call(shr_redis_t *r, shr_redis_script_t *s, shr_redis_cb cb, void *data, int nkeys,
                          int argc, const char **argv, const size_t *argvlen);

/* Keeps the reply a callback was given (not an element of it) past the
 * callback, without copying it; returns it. Free it with shr_redis_reply_free. */
redisReply *shr_redis_reply_keep(redisReply *reply);
void shr_redis_reply_free(redisReply *reply);

#endif
