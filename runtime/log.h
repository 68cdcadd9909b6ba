/* Logging: one line per event on stderr, with time, level, process role and slot,
 * as text or JSON (log.level, log.format); optionally buffered per loop turn.
 * Used by every unit of the runtime; relies on libc, and libuv for the buffer. */
#ifndef SHR_LOG_H
#define SHR_LOG_H

#include <stdarg.h>
#include <stddef.h>

struct uv_loop_s; /* uv_loop_t */

typedef enum { SHR_LOG_DEBUG, SHR_LOG_INFO, SHR_LOG_WARN, SHR_LOG_ERROR } shr_log_level_t;

/* role: "supervisor", "worker", "run"; slot: worker slot or -1. */
void shr_log_set_role(const char *role, int slot);
void shr_log_set_level(shr_log_level_t level);
void shr_log_set_json(int json);
int shr_log_level_parse(const char *name, shr_log_level_t *out);
int shr_log_enabled(shr_log_level_t level);

void shr_log(shr_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void shr_logv(shr_log_level_t level, const char *fmt, va_list ap);
/* A message already formatted (len bytes, no newline): skips printf. */
void shr_log_msg(shr_log_level_t level, const char *msg, size_t len);

/* Buffering for a busy loop (the supervisor's HTTP API): lines logged by the
 * loop's thread below warn collect in a buffer written once per loop turn,
 * just before the loop waits for I/O, in writes of at most PIPE_BUF bytes that
 * end at a line's end. warn and error lines flush at once, and so do exit and
 * fork; a crash loses at most the lines of the current turn. Other threads
 * write directly. Returns 0, or a negative libuv error (lines stay unbuffered). */
int shr_log_buffer_start(struct uv_loop_s *loop);
/* Writes what is buffered and closes the loop's handle (before the loop ends). */
void shr_log_buffer_stop(void);
void shr_log_flush(void);

#define shr_debug(...) shr_log(SHR_LOG_DEBUG, __VA_ARGS__)
#define shr_info(...) shr_log(SHR_LOG_INFO, __VA_ARGS__)
#define shr_warn(...) shr_log(SHR_LOG_WARN, __VA_ARGS__)
#define shr_error(...) shr_log(SHR_LOG_ERROR, __VA_ARGS__)

#endif
