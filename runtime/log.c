#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *level_names[] = {"debug", "info", "warn", "error"};

static struct {
  char role[16];
  int slot;
  shr_log_level_t level;
  int json;
} log_state = {"runtime", -1, SHR_LOG_INFO, 0};

void shr_log_set_role(const char *role, int slot) {
  snprintf(log_state.role, sizeof log_state.role, "%s", role);
  log_state.slot = slot;
}

void shr_log_set_level(shr_log_level_t level) { log_state.level = level; }
void shr_log_set_json(int json) { log_state.json = json; }
int shr_log_enabled(shr_log_level_t level) { return level >= log_state.level; }

int shr_log_level_parse(const char *name, shr_log_level_t *out) {
  for (int i = 0; i < 4; i++) {
    if (strcmp(name, level_names[i]) == 0) {
      *out = (shr_log_level_t)i;
      return 0;
    }
  }
  return -1;
}

/* Appends s to buf as the inside of a JSON string. */
static size_t json_escape(char *buf, size_t cap, size_t len, const char *s) {
  for (; *s && len + 7 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      buf[len++] = '\\';
      buf[len++] = (char)c;
    } else if (c < 0x20) {
      len += (size_t)snprintf(buf + len, cap - len, "\\u%04x", c);
    } else {
      buf[len++] = (char)c;
    }
  }
  return len;
}

void shr_logv(shr_log_level_t level, const char *fmt, va_list ap) {
  if (!shr_log_enabled(level)) return;
  char msg[4096];
  vsnprintf(msg, sizeof msg, fmt, ap);

  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char when[40];
  size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(when + n, sizeof when - n, ".%03ldZ", ts.tv_nsec / 1000000);

  char who[32];
  if (log_state.slot >= 0)
    snprintf(who, sizeof who, "%s.%d", log_state.role, log_state.slot);
  else
    snprintf(who, sizeof who, "%s", log_state.role);

  char line[8192];
  size_t len;
  if (log_state.json) {
    len = (size_t)snprintf(line, sizeof line,
                           "{\"time\":\"%s\",\"level\":\"%s\",\"role\":\"%s\",\"slot\":%d,\"pid\":%d,\"msg\":\"",
                           when, level_names[level], log_state.role, log_state.slot, (int)getpid());
    len = json_escape(line, sizeof line, len, msg);
    len += (size_t)snprintf(line + len, sizeof line - len, "\"}\n");
  } else {
    len = (size_t)snprintf(line, sizeof line, "%s %-5s %s[%d] %s\n", when, level_names[level], who,
                           (int)getpid(), msg);
  }
  if (len >= sizeof line) {
    len = sizeof line - 1;
    line[len - 1] = '\n';
  }
  /* One write per line so lines of concurrent processes never interleave. */
  ssize_t w = write(STDERR_FILENO, line, len);
  (void)w;
}

void shr_log(shr_log_level_t level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  shr_logv(level, fmt, ap);
  va_end(ap);
}
