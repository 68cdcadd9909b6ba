/* A worker environment: the loop, the Lua state with its scheduler, and the
 * clients every Lua binding reaches (Redis, PostgreSQL, HTTP). One per process
 * (a worker, `shield-runtime run`, or the supervisor's API state). Bindings find
 * it with shr_env_of(L). */
#ifndef SHR_ENV_H
#define SHR_ENV_H

#include <lua.h>
#include <uv.h>

#include "config.h"
#include "lua_host.h"
#include "sched.h"

struct shr_redis;
struct shr_pg_pool;
struct shr_http_client;

typedef struct shr_env {
  uv_loop_t *loop;
  lua_State *L;                   /* main state; owned */
  shr_sched_t *sched;             /* owned */
  const shr_config_t *config;     /* borrowed */
  struct shr_redis *redis;        /* ordinary commands; owned */
  struct shr_redis *redis_blocking; /* scripts' blocking commands, made on first use; owned */
  struct shr_pg_pool *pg;         /* owned */
  struct shr_http_client *http;   /* owned */
  const char *role;               /* "worker", "run", "supervisor" */
  int slot;                       /* worker slot, -1 otherwise */
  shr_lua_mem_t mem;              /* L's allocation counter and cap */
} shr_env_t;

shr_env_t *shr_env_of(lua_State *L);

/* Creates the Lua state (modules searched in extra_path first, if not NULL),
 * the scheduler and the clients. Returns 0, or -1 with err set. */
int shr_env_init(shr_env_t *env, uv_loop_t *loop, const shr_config_t *cfg, const char *role, int slot,
                 const char *extra_path, char *err, size_t errlen);
/* Kills the threads, closes the clients and the state; run the loop afterwards
 * so the handles finish closing. */
void shr_env_close(shr_env_t *env);

#endif
