#include "job_scripts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "lua_host.h"

static int append_file(char **buf, size_t *len, const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    char *bigger = realloc(*buf, *len + n + 1);
    if (!bigger) {
      fclose(f);
      return -1;
    }
    *buf = bigger;
    memcpy(*buf + *len, chunk, n);
    *len += n;
    (*buf)[*len] = '\0';
  }
  fclose(f);
  return 0;
}

static int append_text(char **buf, size_t *len, const char *text) {
  size_t n = strlen(text);
  char *bigger = realloc(*buf, *len + n + 1);
  if (!bigger) return -1;
  *buf = bigger;
  memcpy(*buf + *len, text, n + 1);
  *len += n;
  return 0;
}

shr_redis_script_t *shr_job_script_load(const char *name, char *err, size_t errlen) {
  char common[4096], script[4096];
  snprintf(common, sizeof common, "%s/shield/redis/common.lua", shr_lua_dir());
  snprintf(script, sizeof script, "%s/shield/redis/%s.lua", shr_lua_dir(), name);
  char *src = NULL;
  size_t len = 0;
  const char *failed = NULL;
  if (append_file(&src, &len, common) != 0)
    failed = common;
  else if (append_text(&src, &len, "\n") != 0 || append_file(&src, &len, script) != 0)
    failed = script;
  if (failed) {
    snprintf(err, errlen, "%s: %s", failed, strerror(errno ? errno : ENOMEM));
    free(src);
    return NULL;
  }
  shr_redis_script_t *s = shr_redis_script_new(src, len);
  free(src);
  if (!s) snprintf(err, errlen, "%s: out of memory", name);
  return s;
}

void shr_job_script_head(const shr_config_t *cfg, const char **argv, size_t *argvlen, char buf[96]) {
  int a = snprintf(buf, 96, "%llu", (unsigned long long)shr_wall_ms()) + 1;
  int b = snprintf(buf + a, (size_t)(96 - a), "%d", cfg->streams_events_maxlen) + 1;
  snprintf(buf + a + b, (size_t)(96 - a - b), "%d", cfg->jobs_status_ttl);
  argv[0] = cfg->streams_ingestion;
  argv[1] = cfg->streams_retry;
  argv[2] = cfg->streams_dead_letter;
  argv[3] = cfg->streams_events;
  argv[4] = SHR_JOBS_DIRTY_KEY;
  argv[5] = buf;
  argv[6] = buf + a;
  argv[7] = buf + a + b;
  for (int i = 0; i < SHR_JOB_SCRIPT_HEAD; i++) argvlen[i] = strlen(argv[i]);
}
