/* Capped exponential backoff, shared by the Redis and PostgreSQL clients'
 * reconnects. */
#ifndef SHR_BACKOFF_H
#define SHR_BACKOFF_H

/* The delay after current (0: the first): min_ms, then doubling up to max_ms. */
static inline unsigned shr_backoff_next(unsigned current, unsigned min_ms, unsigned max_ms) {
  if (current == 0) return min_ms;
  return current >= max_ms / 2 ? max_ms : current * 2;
}

#endif
