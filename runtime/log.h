/* Logging: one line per event on stderr, with time, level, process role and slot,
 * as text or JSON (log.level, log.format). Used by every unit of the runtime;
 * relies on nothing but libc. */
#ifndef SHR_LOG_H
#define SHR_LOG_H

#include <stdarg.h>

typedef enum { SHR_LOG_DEBUG, SHR_LOG_INFO, SHR_LOG_WARN, SHR_LOG_ERROR } shr_log_level_t;

/* role: "supervisor", "worker", "run"; slot: worker slot or -1. */
void shr_log_set_role(const char *role, int slot);
void shr_log_set_level(shr_log_level_t level);
void shr_log_set_json(int json);
int shr_log_level_parse(const char *name, shr_log_level_t *out);
int shr_log_enabled(shr_log_level_t level);

void shr_log(shr_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void shr_logv(shr_log_level_t level, const char *fmt, va_list ap);

#define shr_debug(...) shr_log(SHR_LOG_DEBUG, __VA_ARGS__)
#define shr_info(...) shr_log(SHR_LOG_INFO, __VA_ARGS__)
#define shr_warn(...) shr_log(SHR_LOG_WARN, __VA_ARGS__)
#define shr_error(...) shr_log(SHR_LOG_ERROR, __VA_ARGS__)

#endif
