/* A worker process: its own loop, Lua state with the processing script, and
 * clients; heartbeats into its scoreboard slot; consumes the task stream; on
 * SIGTERM drains its tasks and exits 0; after pool.max_tasks_per_child tasks
 * it drains and exits 0 so the supervisor forks a fresh one. Started by the
 * supervisor in a forked child. */
#ifndef SHR_WORKER_H
#define SHR_WORKER_H

#include "config.h"
#include "scoreboard.h"

/* Exit status of a worker whose script failed to load or init. */
#define SHR_WORKER_EXIT_INIT 3

/* Runs the worker of slot from script_src, the source the supervisor last
 * validated (script_len bytes of cfg->script); never returns. */
void shr_worker_main(const shr_config_t *cfg, shr_scoreboard_t *sb, int slot, const char *script_src,
                     size_t script_len) __attribute__((noreturn));

#endif
