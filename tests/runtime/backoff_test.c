/* The reconnect backoff (runtime/backoff.h): the minimum first, doubling, then
 * the cap, never past it, whatever the bounds. */
#include "backoff.h"
#include "test_check.h"

int main(void) {
  unsigned d = 0;
  const unsigned want[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000};
  for (int i = 0; i < 8; i++) {
    d = shr_backoff_next(d, 100, 5000);
    CHECK_INT(want[i], d);
  }
  CHECK_INT(2000, shr_backoff_next(1600, 100, 2000));
  CHECK_INT(2000, shr_backoff_next(2000, 100, 2000));
  CHECK_INT(3000, shr_backoff_next(3000, 100, 3000));
  CHECK_INT(4294967295u, shr_backoff_next(4294967295u, 1, 4294967295u));
  return test_summary();
}
