/* shield-runtime: the command line. Parses arguments, loads the configuration
 * and hands over to the supervisor, `--check` or `run`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "log.h"
#include "run.h"
#include "supervisor.h"

#ifdef __SANITIZE_ADDRESS__
/* LeakSanitizer reports blocks of LuaJIT's trace compiler as leaked: LuaJIT
 * reaches them through biased or tagged pointers that LSan cannot follow. It
 * happens in every recycled worker (it inherits the supervisor's Lua state over
 * fork and never closes it) and after busy coroutine-heavy runs. Nothing of
 * ours allocates through LuaJIT, so its blocks are left out of the report. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libluajit-5.1.so\n"; }
#endif

static void usage(FILE *out) {
  fprintf(out,
          "usage: shield-runtime [--config PATH] [--check]\n"
          "       shield-runtime [--config PATH] run FILE.lua [ARGS...]\n"
          "       shield-runtime --version | --help\n"
          "\n"
          "  --config PATH  the configuration file (default config/pool.lua)\n"
          "  --check        validate the configuration and compile the processing\n"
          "                 script, then exit 0, or 1 listing every problem\n"
          "  run FILE.lua   run FILE.lua as the main light thread of a worker\n"
          "                 environment (the `shield` module, connections from the\n"
          "                 configuration); exits with its status\n"
          "\n"
          "Signals: SIGTERM/SIGINT drain and stop (a second one exits at once),\n"
          "SIGHUP reloads the processing script.\n");
}

static void apply_logging(const shr_config_t *cfg) {
  shr_log_level_t level;
  if (shr_log_level_parse(cfg->log_level, &level) == 0) shr_log_set_level(level);
  shr_log_set_json(strcmp(cfg->log_format, "json") == 0);
}

int main(int argc, char **argv) {
  const char *config_path = "config/pool.lua";
  int check = 0, i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "--version") == 0) {
      printf("shield-runtime %s\n", SHR_VERSION);
      return 0;
    } else if (strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) {
      if (++i == argc) {
        fprintf(stderr, "shield-runtime: --config needs a path\n");
        return 2;
      }
      config_path = argv[i];
    } else if (strncmp(a, "--config=", 9) == 0) {
      config_path = a + 9;
    } else if (strcmp(a, "--check") == 0) {
      check = 1;
    } else if (strcmp(a, "run") == 0) {
      break;
    } else {
      fprintf(stderr, "shield-runtime: unknown argument '%s'\n", a);
      usage(stderr);
      return 2;
    }
  }
  int run_mode = i < argc;
  if (run_mode && i + 1 >= argc) {
    fprintf(stderr, "shield-runtime: run needs a Lua file\n");
    return 2;
  }

  shr_config_t cfg;
  char err[SHR_CONFIG_ERROR_MAX];
  if (shr_config_load(&cfg, config_path, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    shr_config_free(&cfg);
    return 1;
  }
  apply_logging(&cfg);

  int status;
  if (run_mode) {
    shr_log_set_role("run", -1);
    status = shr_run_file(&cfg, argv[i + 1], argc - i - 2, argv + i + 2);
  } else if (check) {
    status = shr_check(&cfg);
  } else {
    shr_log_set_role("supervisor", -1);
    status = shr_supervisor_main(&cfg);
  }
  shr_config_free(&cfg);
  return status;
}
