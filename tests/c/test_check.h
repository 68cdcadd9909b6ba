/* The checks of the C tests, in the libuv manner: the failing line and the
 * values on stderr. CHECK* count the failure and go on, so one run reports
 * every broken case; ASSERT* abort, for a case that cannot go on without it.
 * A test ends with `return test_summary();`. */
#ifndef SHR_TEST_CHECK_H
#define SHR_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures, checks;

static inline void test_failed(int fatal) {
  failures++;
  if (fatal) abort();
}

/* Prints "N checks, M failed"; the exit status of the test. */
static inline int test_summary(void) {
  printf("%d checks, %d failed\n", checks, failures);
  return failures ? 1 : 0;
}

#define TEST_TRUE_(fatal, cond)                                                  \
  do {                                                                           \
    checks++;                                                                    \
    if (!(cond)) {                                                               \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
      test_failed(fatal);                                                        \
    }                                                                            \
  } while (0)

#define TEST_INT_(fatal, want, got)                                                          \
  do {                                                                                       \
    long long w_ = (long long)(want), g_ = (long long)(got);                                 \
    checks++;                                                                                \
    if (w_ != g_) {                                                                          \
      fprintf(stderr, "%s:%d: %s: want %lld, got %lld\n", __FILE__, __LINE__, #got, w_, g_); \
      test_failed(fatal);                                                                    \
    }                                                                                        \
  } while (0)

#define TEST_STR_(fatal, want, got)                                                           \
  do {                                                                                        \
    const char *w_ = (want), *g_ = (got);                                                     \
    checks++;                                                                                 \
    if (!g_ || strcmp(w_, g_) != 0) {                                                         \
      fprintf(stderr, "%s:%d: %s: want \"%s\", got \"%s\"\n", __FILE__, __LINE__, #got, w_,  \
              g_ ? g_ : "(null)");                                                            \
      test_failed(fatal);                                                                     \
    }                                                                                         \
  } while (0)

#define CHECK(cond) TEST_TRUE_(0, cond)
#define CHECK_INT(want, got) TEST_INT_(0, want, got)
#define CHECK_STR(want, got) TEST_STR_(0, want, got)
#define ASSERT(cond) TEST_TRUE_(1, cond)
#define ASSERT_EQ(want, got) TEST_INT_(1, want, got)
#define ASSERT_STR(want, got) TEST_STR_(1, want, got)

#endif
