/* `shield-runtime run FILE.lua [ARGS]`: runs a Lua file as the main light thread
 * of a worker environment and returns its exit status. Used by main; relies on
 * env, sched and lua_host. */
#ifndef SHR_RUN_H
#define SHR_RUN_H

#include "config.h"

int shr_run_file(const shr_config_t *cfg, const char *file, int argc, char **argv);

#endif
