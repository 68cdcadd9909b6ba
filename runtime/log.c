#include "log.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define LINE_BYTES 8192

static const char *level_names[] = {"debug", "info", "warn", "error"};
static const char *level_padded[] = {"debug", "info ", "warn ", "error"};

static struct {
  char role[16];
  int slot;
  shr_log_level_t level;
  int json;
  int pid;
  char who[48]; /* "role.slot[pid]" of text lines */
  size_t who_len;
} log_state = {"runtime", -1, SHR_LOG_INFO, 0, 0, "", 0};

/* The lines of one loop turn (shr_log_buffer_start). A flush is at most
 * PIPE_BUF bytes, which a pipe writes atomically: another process's lines
 * never land inside one of ours. */
static struct {
  uv_prepare_t prepare;
  pthread_t owner;
  int on;
  size_t len;
  char data[PIPE_BUF];
} buffered;

static pthread_once_t log_once = PTHREAD_ONCE_INIT;

static void refresh_who(void) {
  log_state.pid = (int)getpid();
  int n = log_state.slot >= 0
              ? snprintf(log_state.who, sizeof log_state.who, "%s.%d[%d]", log_state.role, log_state.slot, log_state.pid)
              : snprintf(log_state.who, sizeof log_state.who, "%s[%d]", log_state.role, log_state.pid);
  log_state.who_len = n > 0 && (size_t)n < sizeof log_state.who ? (size_t)n : strlen(log_state.who);
}

static void write_all(const char *p, size_t len) {
  while (len > 0) {
    ssize_t w = write(STDERR_FILENO, p, len);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return; /* nowhere to report it */
    p += w;
    len -= (size_t)w;
  }
}

static int owns_buffer(void) { return buffered.on && pthread_equal(pthread_self(), buffered.owner); }

void shr_log_flush(void) {
  if (!owns_buffer() || buffered.len == 0) return;
  write_all(buffered.data, buffered.len);
  buffered.len = 0;
}

/* The child of a fork must neither repeat the parent's lines nor touch its
 * loop; its pid is new. */
static void before_fork(void) { shr_log_flush(); }
static void in_child(void) {
  buffered.on = 0;
  buffered.len = 0;
  refresh_who();
}

static void init_once(void) {
  refresh_who();
  pthread_atfork(before_fork, NULL, in_child);
  atexit(shr_log_flush);
}

void shr_log_set_role(const char *role, int slot) {
  pthread_once(&log_once, init_once);
  snprintf(log_state.role, sizeof log_state.role, "%s", role);
  log_state.slot = slot;
  refresh_who();
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

static void on_prepare(uv_prepare_t *h) {
  (void)h;
  shr_log_flush();
}

int shr_log_buffer_start(uv_loop_t *loop) {
  pthread_once(&log_once, init_once);
  if (buffered.on) return UV_EBUSY;
  int rc = uv_prepare_init(loop, &buffered.prepare);
  if (rc == 0) rc = uv_prepare_start(&buffered.prepare, on_prepare);
  if (rc < 0) return rc;
  uv_unref((uv_handle_t *)&buffered.prepare); /* never what keeps a loop running */
  buffered.owner = pthread_self();
  buffered.len = 0;
  buffered.on = 1;
  return 0;
}

void shr_log_buffer_stop(void) {
  if (!owns_buffer()) return;
  shr_log_flush();
  buffered.on = 0;
  uv_close((uv_handle_t *)&buffered.prepare, NULL);
}

static void emit(shr_log_level_t level, const char *line, size_t len) {
  if (!owns_buffer()) {
    write_all(line, len);
    return;
  }
  if (len > sizeof buffered.data - buffered.len) shr_log_flush();
  if (len > sizeof buffered.data) {
    write_all(line, len);
    return;
  }
  memcpy(buffered.data + buffered.len, line, len);
  buffered.len += len;
  if (level >= SHR_LOG_WARN) shr_log_flush();
}

/* "2024-01-02T03:04:05.678Z" (24 bytes and a NUL); the date and time of
 * day are formatted once a second per thread. */
static size_t format_when(char *out) {
  static _Thread_local struct {
    time_t sec;
    char text[20];
  } cache;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (ts.tv_sec != cache.sec || !cache.text[0]) {
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    strftime(cache.text, sizeof cache.text, "%Y-%m-%dT%H:%M:%S", &tm);
    cache.sec = ts.tv_sec;
  }
  unsigned ms = (unsigned)(ts.tv_nsec / 1000000);
  memcpy(out, cache.text, 19);
  out[19] = '.';
  out[20] = (char)('0' + ms / 100);
  out[21] = (char)('0' + ms / 10 % 10);
  out[22] = (char)('0' + ms % 10);
  out[23] = 'Z';
  out[24] = '\0';
  return 24;
}

/* Appends s to buf as the inside of a JSON string. */
static size_t json_escape(char *buf, size_t cap, size_t len, const char *s, size_t n) {
  for (size_t i = 0; i < n && len + 7 < cap; i++) {
    unsigned char c = (unsigned char)s[i];
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

static size_t format_json(char *line, const char *when, shr_log_level_t level, const char *msg, size_t n) {
  size_t len = (size_t)snprintf(line, LINE_BYTES,
                                "{\"time\":\"%s\",\"level\":\"%s\",\"role\":\"%s\",\"slot\":%d,\"pid\":%d,\"msg\":\"",
                                when, level_names[level], log_state.role, log_state.slot, log_state.pid);
  len = json_escape(line, LINE_BYTES, len, msg, n);
  return len + (size_t)snprintf(line + len, LINE_BYTES - len, "\"}\n");
}

/* "<when> <level> <who> <msg>\n", copied piece by piece: printf would cost
 * more than the rest of an access-log line's request. */
static size_t format_text(char *line, const char *when, size_t wlen, shr_log_level_t level, const char *msg,
                          size_t n) {
  size_t len = 0;
  memcpy(line, when, wlen);
  len += wlen;
  line[len++] = ' ';
  memcpy(line + len, level_padded[level], 5);
  len += 5;
  line[len++] = ' ';
  memcpy(line + len, log_state.who, log_state.who_len);
  len += log_state.who_len;
  line[len++] = ' ';
  /* One line per event: a traceback's newlines become "\n". */
  const char *end = msg + n;
  while (msg < end && len < LINE_BYTES - 3) {
    const char *nl = memchr(msg, '\n', (size_t)(end - msg));
    size_t piece = (size_t)((nl ? nl : end) - msg);
    if (piece > LINE_BYTES - 3 - len) piece = LINE_BYTES - 3 - len;
    memcpy(line + len, msg, piece);
    len += piece;
    msg += piece;
    if (msg < end && *msg == '\n') {
      memcpy(line + len, "\\n", 2);
      len += 2;
      msg++;
    }
  }
  line[len++] = '\n';
  return len;
}

void shr_log_msg(shr_log_level_t level, const char *msg, size_t len) {
  if (!shr_log_enabled(level)) return;
  pthread_once(&log_once, init_once);
  char when[32];
  size_t wlen = format_when(when);
  char line[LINE_BYTES];
  size_t n = log_state.json ? format_json(line, when, level, msg, len)
                            : format_text(line, when, wlen, level, msg, len);
  if (n >= sizeof line) {
    n = sizeof line - 1;
    line[n - 1] = '\n';
  }
  emit(level, line, n);
}

void shr_logv(shr_log_level_t level, const char *fmt, va_list ap) {
  if (!shr_log_enabled(level)) return;
  char msg[4096];
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  if (n < 0) return;
  shr_log_msg(level, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
}

void shr_log(shr_log_level_t level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  shr_logv(level, fmt, ap);
  va_end(ap);
}
