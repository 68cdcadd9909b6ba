/* `shield-runtime --check`: the configuration is already valid when this runs;
 * compiles the processing script, checks its module shape and runs its init
 * with the configuration, as a start would. Used by main. */
#ifndef SHR_CHECK_H
#define SHR_CHECK_H

#include "config.h"

/* Returns the exit status: 0, or 1 after printing every problem. */
int shr_check(const shr_config_t *cfg);

#endif
