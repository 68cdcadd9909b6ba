/* The supervisor process: probes the processing script, forks pool.size workers
 * and re-forks them (backoff when they crash in a loop, kill when their
 * heartbeat stalls), reloads on SIGHUP, drains on SIGTERM/SIGINT. Used by main;
 * relies on scoreboard, worker and script_probe. */
#ifndef SHR_SUPERVISOR_H
#define SHR_SUPERVISOR_H

#include <stdint.h>

#include "config.h"
#include "scoreboard.h"

typedef struct shr_supervisor shr_supervisor_t;

/* Runs until shutdown; returns the process exit status. */
int shr_supervisor_main(const shr_config_t *cfg);

shr_scoreboard_t *shr_supervisor_scoreboard(shr_supervisor_t *s);
const char *shr_supervisor_script_version(shr_supervisor_t *s);
const char *shr_supervisor_reload_error(shr_supervisor_t *s);
void shr_supervisor_reload(shr_supervisor_t *s);
/* Reloads that succeeded (ok = 1) or failed (ok = 0) since start. */
uint64_t shr_supervisor_reloads(shr_supervisor_t *s, int ok);

#endif
