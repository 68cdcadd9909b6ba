/* The systemd notify protocol spoken directly over $NOTIFY_SOCKET (a unix
 * datagram socket; a leading '@' names an abstract socket), no libsystemd:
 * READY=1, RELOADING=1, STOPPING=1, STATUS=..., WATCHDOG=1. A no-op when the
 * variable is unset. Used by the supervisor. */
#ifndef SHR_SD_NOTIFY_H
#define SHR_SD_NOTIFY_H

#include <stdint.h>

/* Sends one message (e.g. "READY=1\nSTATUS=running"); 0, or -1 on failure. */
int shr_sd_notify(const char *message);
/* The watchdog interval systemd expects pings within ($WATCHDOG_USEC for this
 * pid), in ms, or 0 when no watchdog is set. */
uint64_t shr_sd_watchdog_ms(void);

#endif
