/* Validates the processing script in a scratch environment: compile, check the
 * module, run init with a deadline, tear the environment down. The supervisor
 * probes before forking workers and before every reload, so a broken script
 * never reaches a worker. Relies on env and script. */
#ifndef SHR_SCRIPT_PROBE_H
#define SHR_SCRIPT_PROBE_H

#include <uv.h>

#include "config.h"

/* ok: 1 if the script compiled and init succeeded; err: what failed, with the
 * file and line; version: the source hash and src (len bytes) the source that
 * passed (valid when ok, during the call only). */
typedef void (*shr_script_probe_cb)(void *data, int ok, const char *err, const char *version, const char *src,
                                    size_t len);

int shr_script_probe(uv_loop_t *loop, const shr_config_t *cfg, shr_script_probe_cb done, void *data);

#endif
