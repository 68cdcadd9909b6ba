/* The assertions of the C tests of tests/httpd, in the libuv manner: the
 * failing line and the values, then abort. Relies on stdio, stdlib, string. */
#ifndef SHR_TEST_ASSERT_H
#define SHR_TEST_ASSERT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ASSERT(cond)                                                                  \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond);    \
      abort();                                                                        \
    }                                                                                 \
  } while (0)

#define ASSERT_EQ(want, got)                                                          \
  do {                                                                                \
    long long w_ = (long long)(want), g_ = (long long)(got);                          \
    if (w_ != g_) {                                                                   \
      fprintf(stderr, "%s:%d: %s: want %lld, got %lld\n", __FILE__, __LINE__, #got, w_, g_); \
      abort();                                                                        \
    }                                                                                 \
  } while (0)

#define ASSERT_STR(want, got)                                                         \
  do {                                                                                \
    const char *w_ = (want), *g_ = (got);                                             \
    if (!g_ || strcmp(w_, g_) != 0) {                                                 \
      fprintf(stderr, "%s:%d: %s: want \"%s\", got \"%s\"\n", __FILE__, __LINE__, #got, w_, \
              g_ ? g_ : "(null)");                                                    \
      abort();                                                                        \
    }                                                                                 \
  } while (0)

#endif
