/* The runtime configuration: config/pool.lua evaluated and validated by
 * lua/shield/config.lua (defaults, types, ranges, key paths in errors), then
 * copied into this struct for the C side. Used by main, supervisor, workers
 * and every client; relies on lua_host for the Lua state. */
#ifndef SHR_CONFIG_H
#define SHR_CONFIG_H

#include <stddef.h>

#define SHR_CONFIG_ERROR_MAX 8192

typedef struct shr_config {
  char *path;            /* the config file */
  char *base_dir;        /* the config file's folder: relative paths resolve against it */
  char *redis_url;
  char *postgres_url;
  char *http_listen;     /* host:port */
  char *http_auth_token; /* NULL when unset */
  size_t http_max_body_bytes;
  int http_max_connections;
  int http_header_timeout_ms;
  int http_idle_timeout_ms;
  int pool_size;
  int pool_concurrency;
  int pool_batch_size;
  int pool_retry_attempts;
  int pool_timeout_seconds;
  int pool_health_check_interval;
  int pool_max_tasks_per_child;
  int pool_graceful_shutdown_timeout;
  int pool_stall_seconds;      /* heartbeat age after which a worker is killed */
  size_t pool_lua_memory_limit; /* bytes per worker Lua state, 0 = none */
  char *streams_ingestion;
  char *streams_group;
  char *streams_events;
  char *streams_dead_letter;
  char *streams_retry;           /* sorted set of scheduled retries */
  int streams_events_maxlen;
  int jobs_status_ttl;
  int jobs_max_chunks;
  int jobs_idempotency_ttl;
  size_t jobs_max_chunk_bytes;
  char *script;          /* absolute path of the processing script */
  char *log_level;
  char *log_format;      /* "text" or "json" */
  char *json;            /* the whole validated config as JSON, for Lua states */
} shr_config_t;

/* Loads and validates path. Returns 0, or -1 with every problem (one per line,
 * each naming the file and the key path) in err. */
int shr_config_load(shr_config_t *cfg, const char *path, char *err, size_t errlen);
void shr_config_free(shr_config_t *cfg);

#endif
