/* The two clocks: monotonic milliseconds for intervals and heartbeats, wall
 * milliseconds since the epoch for what is stored or compared across processes
 * (job timestamps, retry due times). */
#ifndef SHR_CLOCK_H
#define SHR_CLOCK_H

#include <stdint.h>

uint64_t shr_monotonic_ms(void);
uint64_t shr_wall_ms(void);

#endif
