/* The job system's atomic Redis scripts (lua/shield/redis/<name>.lua) for C
 * callers: each loaded as common.lua + the script, and called with the calling
 * convention of common.lua (five fixed keys, then now, events maxlen, status
 * ttl, then the script's own arguments). Used by the stream consumer; the Lua
 * side has lua/shield/redis_scripts.lua. */
#ifndef SHR_JOB_SCRIPTS_H
#define SHR_JOB_SCRIPTS_H

#include "config.h"
#include "redis.h"

#define SHR_JOBS_DIRTY_KEY "shield:jobs:dirty"
/* Keys and leading arguments every script takes. */
#define SHR_JOB_SCRIPT_HEAD 8

/* Loads lua/shield/redis/<name>.lua; NULL with err set on failure. */
shr_redis_script_t *shr_job_script_load(const char *name, char *err, size_t errlen);

/* Fills the first SHR_JOB_SCRIPT_HEAD argv entries (keys, now, maxlen, ttl);
 * buf holds the numbers' text and must live until the call is sent. */
void shr_job_script_head(const shr_config_t *cfg, const char **argv, size_t *argvlen, char buf[96]);

#endif
