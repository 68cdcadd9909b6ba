/* The log buffer the HTTP API turns on (runtime/log.h): each case runs in a
 * child process whose stderr is a pipe the test reads. Buffered lines appear
 * while the loop waits (not only at exit), in order, with warn lines flushing
 * what came before; none is lost when the process exits in the middle of a
 * loop turn, none is repeated by a forked child, and a turn of more than
 * PIPE_BUF bytes arrives whole. Ends with the handle closed and the loop empty. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "log.h"
#include "test_check.h"

#define OUT_CAP (1 << 20)

static uv_loop_t loop;
static uv_timer_t tick, idle_wait;
static char out[OUT_CAP];
static size_t out_len;

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int count(const char *needle) {
  int n = 0;
  for (const char *p = out; (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
  return n;
}

/* In a child writing to a pipe: a fresh loop with buffering on, where cb
 * runs from a timer; the loop runs until stopped, then closes. Reads until
 * the output holds until_text (noting the time since the start in *ms) and
 * on to its end; returns the child's exit status. */
static int run_child(uv_timer_cb cb, const char *until_text, long long *ms) {
  int fds[2];
  ASSERT_EQ(0, pipe(fds));
  long long start = now_ms();
  pid_t pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], STDERR_FILENO);
    close(fds[1]);
    shr_log_set_role("test", -1);
    ASSERT_EQ(0, uv_loop_init(&loop));
    ASSERT_EQ(0, shr_log_buffer_start(&loop));
    uv_timer_init(&loop, &tick);
    uv_timer_init(&loop, &idle_wait);
    uv_timer_start(&tick, cb, 10, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    shr_log_buffer_stop();
    uv_close((uv_handle_t *)&tick, NULL);
    uv_close((uv_handle_t *)&idle_wait, NULL);
    ASSERT_EQ(0, uv_run(&loop, UV_RUN_DEFAULT));
    ASSERT_EQ(0, uv_loop_close(&loop));
    exit(0);
  }
  close(fds[1]);
  out_len = 0;
  if (ms) *ms = -1;
  for (;;) {
    ASSERT(out_len < OUT_CAP - 1);
    ssize_t n = read(fds[0], out + out_len, OUT_CAP - 1 - out_len);
    if (n < 0 && errno == EINTR) continue;
    ASSERT(n >= 0);
    if (n == 0) break;
    out_len += (size_t)n;
    out[out_len] = '\0';
    if (ms && *ms < 0 && strstr(out, until_text)) *ms = now_ms() - start;
  }
  out[out_len] = '\0';
  close(fds[0]);
  int status;
  ASSERT_EQ(pid, waitpid(pid, &status, 0));
  return status;
}

static void stop_loop(uv_timer_t *t) { uv_stop(t->loop); }

/* ---- lines appear while the loop waits ---- */

static void log_three(uv_timer_t *t) {
  shr_info("line one");
  shr_info("line two");
  shr_debug("not shown");
  shr_info("line three");
  uv_timer_start(&idle_wait, stop_loop, 3000, 0); /* the loop waits */
}

static void prompt(void) {
  long long ms;
  ASSERT_EQ(0, run_child(log_three, "line three\n", &ms));
  ASSERT(ms >= 0 && ms < 1500); /* long before the 3 s wait ends */
  ASSERT_EQ(1, count("line one\n"));
  ASSERT_EQ(0, count("not shown"));
  char *one = strstr(out, "line one"), *two = strstr(out, "line two"), *three = strstr(out, "line three");
  ASSERT(one && two && three && one < two && two < three);
  ASSERT(strstr(out, " info  test[") != NULL);
}

/* ---- exit in the middle of a turn; warn flushes ---- */

static void log_and_exit(uv_timer_t *t) {
  shr_info("first");
  shr_warn("second, a warning"); /* writes both at once */
  for (int i = 0; i < 100; i++) shr_info("buffered %d", i);
  exit(3); /* no turn ends: only the exit handler can write these */
}

static void exit_mid_turn(void) {
  int status = run_child(log_and_exit, NULL, NULL);
  ASSERT(WIFEXITED(status));
  ASSERT_EQ(3, WEXITSTATUS(status));
  ASSERT_EQ(1, count(" first\n"));
  ASSERT_EQ(1, count(" warn  test["));
  ASSERT(strstr(out, " first\n") < strstr(out, "second, a warning"));
  ASSERT_EQ(100, count(" buffered "));
  ASSERT(strstr(out, "buffered 98\n") < strstr(out, "buffered 99\n"));
}

/* ---- a fork does not repeat the parent's buffered lines ---- */

static void log_and_fork(uv_timer_t *t) {
  shr_info("before the fork");
  fflush(NULL);
  pid_t pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0) {
    shr_info("in the forked child");
    exit(0);
  }
  int status;
  ASSERT_EQ(pid, waitpid(pid, &status, 0));
  ASSERT_EQ(0, status);
  shr_info("after the fork");
  uv_stop(t->loop);
}

static void fork_once(void) {
  ASSERT_EQ(0, run_child(log_and_fork, NULL, NULL));
  ASSERT_EQ(1, count("before the fork\n"));
  ASSERT_EQ(1, count("in the forked child\n"));
  ASSERT_EQ(1, count("after the fork\n"));
  ASSERT(strstr(out, "before the fork") < strstr(out, "in the forked child"));
}

/* ---- a turn of more than PIPE_BUF bytes ---- */

static void log_many(uv_timer_t *t) {
  char pad[200];
  memset(pad, 'x', sizeof pad - 1);
  pad[sizeof pad - 1] = '\0';
  for (int i = 0; i < 500; i++) shr_info("many %03d %s", i, pad);
  uv_stop(t->loop);
}

static void many_lines(void) {
  ASSERT_EQ(0, run_child(log_many, NULL, NULL));
  ASSERT_EQ(500, count(" many "));
  ASSERT(strstr(out, "many 000 ") < strstr(out, "many 499 "));
  /* Every line whole: as many line ends as lines. */
  int lines = 0;
  for (size_t i = 0; i < out_len; i++) lines += out[i] == '\n';
  ASSERT_EQ(500, lines);
}

int main(void) {
  prompt();
  exit_mid_turn();
  fork_once();
  many_lines();
  return test_summary();
}
