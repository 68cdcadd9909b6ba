#include "lua_pg.h"

#include <lauxlib.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_pg_binary.h"
#include "pg.h"
#include "sched.h"

#define TX_MT "shield.pg.tx"

/* Column type OIDs (pg_type.h) that become Lua numbers and booleans. */
enum { OID_BOOL = 16, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23, OID_FLOAT4 = 700, OID_FLOAT8 = 701,
       OID_NUMERIC = 1700 };

/* A transaction: the pinned connection, owned by one light thread. The
 * thread's SHR_THREAD_SLOT_PG holds the tx's id, not a pointer, and the id
 * maps to the tx through a weak table: a tx collected with its killed thread
 * releases its connection in __gc and can never be reached through a stale
 * slot. */
typedef struct {
  shr_pg_conn_t *conn; /* NULL once committed or rolled back */
  uintptr_t id;
} tx_t;

static char txs_key;        /* registry: id -> tx, weak values */
static uintptr_t next_tx_id = 1;

typedef struct {
  shr_wait_t wait;      /* first: the scheduler hands back &wait */
  shr_pg_pool_t *pool;
  shr_pg_conn_t *conn;  /* begin, commit: the pinned connection */
  shr_thread_t *thread; /* begin: whose slot gets the transaction */
  int cancelled;        /* the thread stopped waiting: the callback frees */
  PGresult *res;        /* owned copy: the pool clears its own after the callback */
  double affected;
  int failed;
  char *err;            /* owned; NULL if out of memory */
  char sqlstate[6];
} req_t;

static shr_pg_pool_t *pool_of(lua_State *L) {
  shr_env_t *env = shr_env_of(L);
  if (!env || !env->pg) luaL_error(L, "shield.pg: no PostgreSQL pool in this state");
  return env->pg;
}

static void req_free(req_t *r) {
  if (r->res) PQclear(r->res);
  free(r->err);
  free(r);
}

static void req_fail(req_t *r, const char *err, const PGresult *res) {
  r->failed = 1;
  r->err = strdup(err);
  const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  if (state) snprintf(r->sqlstate, sizeof r->sqlstate, "%s", state);
}

/* nil, err[, sqlstate]; frees r. */
static int push_failure(lua_State *co, req_t *r) {
  lua_pushnil(co);
  lua_pushstring(co, r->err ? r->err : "out of memory");
  int n = 2;
  if (r->sqlstate[0]) {
    lua_pushstring(co, r->sqlstate);
    n = 3;
  }
  req_free(r);
  return n;
}

static void cancel_req(shr_wait_t *w) {
  req_t *r = (req_t *)w;
  r->cancelled = 1;
  shr_pg_cancel(r->pool, r);
}

static req_t *req_new(lua_State *L, shr_pg_pool_t *pool, int (*push)(lua_State *, shr_wait_t *)) {
  req_t *r = calloc(1, sizeof *r);
  if (!r) luaL_error(L, "shield.pg: out of memory");
  r->pool = pool;
  r->wait.push = push;
  r->wait.cancel = cancel_req;
  return r;
}

/* ---- values ---- */

static void push_value(lua_State *co, Oid type, const char *v, int len) {
  switch (type) {
  case OID_BOOL:
    lua_pushboolean(co, v[0] == 't');
    return;
  case OID_INT8: {
    /* Beyond 2^53 a double would silently change the value. */
    long long n = strtoll(v, NULL, 10);
    if (n > (1LL << 53) || n < -(1LL << 53))
      lua_pushlstring(co, v, (size_t)len);
    else
      lua_pushnumber(co, (lua_Number)n);
    return;
  }
  case OID_INT2:
  case OID_INT4:
  case OID_FLOAT4:
  case OID_FLOAT8:
  case OID_NUMERIC:
    lua_pushnumber(co, strtod(v, NULL));
    return;
  default:
    lua_pushlstring(co, v, (size_t)len);
  }
}

/* rows (array of tables keyed by column; NULL columns absent), affected. */
static int push_rows(lua_State *co, shr_wait_t *w) {
  req_t *r = (req_t *)w;
  if (r->failed) return push_failure(co, r);
  PGresult *res = r->res;
  int nrows = PQntuples(res), ncols = PQnfields(res);
  luaL_checkstack(co, ncols + 6, "shield.pg: too many columns");
  lua_createtable(co, nrows, 0);
  int rows = lua_gettop(co), names = rows + 1;
  /* Each column name interned once, reused for every row. */
  for (int j = 0; j < ncols; j++) lua_pushstring(co, PQfname(res, j));
  for (int i = 0; i < nrows; i++) {
    lua_createtable(co, 0, ncols);
    for (int j = 0; j < ncols; j++) {
      if (PQgetisnull(res, i, j)) continue;
      lua_pushvalue(co, names + j);
      push_value(co, PQftype(res, j), PQgetvalue(res, i, j), PQgetlength(res, i, j));
      lua_rawset(co, -3);
    }
    lua_rawseti(co, rows, i + 1);
  }
  lua_settop(co, rows);
  lua_pushnumber(co, r->affected);
  req_free(r);
  return 2;
}

static void on_result(PGresult *res, const char *err, void *data) {
  req_t *r = data;
  if (r->cancelled) {
    req_free(r);
    return;
  }
  if (err) {
    req_fail(r, err, res);
  } else {
    r->res = PQcopyResult(res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
    if (!r->res) req_fail(r, "out of memory", NULL);
    r->affected = atof(PQcmdTuples(res));
  }
  shr_sched_wake(&r->wait);
}

/* Formats the query's parameters (stack 2..top) into values; NULL is SQL
 * NULL. Numbers and booleans become strings on the stack above them, alive
 * until the call returns (the pool copies); binary parameters (real_array)
 * get their lengths and format 1. Returns 0, or pushes nil, err and returns
 * 2. Unsupported types raise. */
static int collect_params(lua_State *L, int n, const char **values, int *lengths, int *formats) {
  int top = lua_gettop(L);
  luaL_checkstack(L, n + 2, "shield.pg: too many parameters");
  for (int i = 0; i < n; i++) {
    int idx = i + 2;
    formats[i] = 0;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
      values[i] = NULL;
      break;
    case LUA_TLIGHTUSERDATA:
      /* pg.null (also cjson.null): the lightuserdata NULL. */
      if (lua_touserdata(L, idx) != NULL) goto bad;
      values[i] = NULL;
      break;
    case LUA_TBOOLEAN:
      values[i] = lua_toboolean(L, idx) ? "true" : "false";
      break;
    case LUA_TNUMBER: {
      lua_Number d = lua_tonumber(L, idx);
      char buf[64];
      if (isnan(d))
        snprintf(buf, sizeof buf, "NaN");
      else if (isinf(d))
        snprintf(buf, sizeof buf, d > 0 ? "Infinity" : "-Infinity");
      else if (d == floor(d) && fabs(d) < 9.2e18)
        snprintf(buf, sizeof buf, "%lld", (long long)d);
      else {
        /* The shortest text that reads back as the same double. */
        for (int prec = 15; prec <= 17; prec++) {
          snprintf(buf, sizeof buf, "%.*g", prec, d);
          if (strtod(buf, NULL) == d) break;
        }
      }
      lua_pushstring(L, buf);
      values[i] = lua_tostring(L, -1);
      break;
    }
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      /* Text parameters end at a NUL: refuse rather than truncate. */
      if (strlen(s) != len) {
        lua_settop(L, top);
        lua_pushnil(L);
        lua_pushfstring(L, "invalid parameter $%d: string contains a NUL byte", i + 1);
        return 2;
      }
      values[i] = s;
      break;
    }
    case LUA_TUSERDATA:
      if (!shr_lua_pg_binary_param(L, idx, &values[i], &lengths[i])) goto bad;
      formats[i] = 1;
      break;
    default:
    bad:
      return luaL_argerror(L, idx, lua_pushfstring(L, "string, number, boolean, nil, pg.null or a pg.real_array expected, got %s",
                                                   luaL_typename(L, idx)));
    }
  }
  return 0;
}

static int push_timeout(lua_State *L) {
  lua_pushnil(L);
  lua_pushliteral(L, "timeout");
  return 2;
}

static int push_closed(lua_State *L) {
  lua_pushnil(L);
  lua_pushliteral(L, "closed");
  return 2;
}

static void txs_get(lua_State *L) {
  lua_pushlightuserdata(L, &txs_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
}

/* The open transaction of the running thread, or NULL. A slot naming a
 * transaction that is gone (collected while its thread lived on) is cleared
 * and raises: its queries must not silently run outside it. */
static tx_t *current_tx(lua_State *L, shr_thread_t *t) {
  void **slot = shr_thread_userslot(t, SHR_THREAD_SLOT_PG);
  uintptr_t id = (uintptr_t)*slot;
  if (!id) return NULL;
  txs_get(L);
  lua_pushnumber(L, (lua_Number)id);
  lua_rawget(L, -2);
  tx_t *tx = lua_touserdata(L, -1);
  lua_pop(L, 2);
  if (!tx || !tx->conn) {
    *slot = NULL;
    luaL_error(L, "shield.pg: the thread's transaction is gone");
  }
  return tx;
}

/* query(sql, ...) -> rows, affected | nil, err[, sqlstate] */
static int l_query(lua_State *L) {
  if (lua_type(L, 1) != LUA_TSTRING) return luaL_typerror(L, 1, "string");
  shr_pg_pool_t *pool = pool_of(L);
  shr_thread_t *t = shr_sched_current(L);
  int n = lua_gettop(L) - 1;
  size_t slots = (size_t)(n > 0 ? n : 1);
  const char **values = lua_newuserdata(L, slots * (sizeof *values + 2 * sizeof(int)));
  int *lengths = (int *)(values + slots), *formats = lengths + slots;
  int failed = collect_params(L, n, values, lengths, formats);
  if (failed) return failed;
  if (shr_thread_expired(t)) return push_timeout(L);
  tx_t *tx = current_tx(L, t);
  req_t *r = req_new(L, pool, push_rows);
  const char *sql = lua_tostring(L, 1);
  int rc = tx ? shr_pg_conn_query(tx->conn, sql, n, values, lengths, formats, on_result, r)
              : shr_pg_query(pool, sql, n, values, lengths, formats, on_result, r);
  if (rc != 0) {
    free(r);
    if (tx) return luaL_error(L, "shield.pg: the transaction's connection is busy");
    return push_closed(L);
  }
  return shr_sched_wait(L, &r->wait);
}

/* ---- transactions ---- */

static int push_begin(lua_State *co, shr_wait_t *w) {
  req_t *r = (req_t *)w;
  if (r->failed) return push_failure(co, r);
  tx_t *tx = lua_newuserdata(co, sizeof *tx);
  tx->conn = r->conn;
  tx->id = next_tx_id++;
  luaL_getmetatable(co, TX_MT);
  lua_setmetatable(co, -2);
  txs_get(co);
  lua_pushnumber(co, (lua_Number)tx->id);
  lua_pushvalue(co, -3);
  lua_rawset(co, -3);
  lua_pop(co, 1);
  *shr_thread_userslot(r->thread, SHR_THREAD_SLOT_PG) = (void *)tx->id;
  req_free(r);
  return 1;
}

static void on_begun(PGresult *res, const char *err, void *data) {
  req_t *r = data;
  if (r->cancelled || err) {
    shr_pg_release(r->conn);
    r->conn = NULL;
  }
  if (r->cancelled) {
    req_free(r);
    return;
  }
  if (err) req_fail(r, err, res);
  shr_sched_wake(&r->wait);
}

static void on_acquired(shr_pg_conn_t *conn, const char *err, void *data) {
  req_t *r = data;
  if (r->cancelled) {
    if (conn) shr_pg_release(conn);
    req_free(r);
    return;
  }
  if (err) {
    req_fail(r, err, NULL);
    shr_sched_wake(&r->wait);
    return;
  }
  r->conn = conn;
  if (shr_pg_conn_query(conn, "BEGIN", 0, NULL, NULL, NULL, on_begun, r) != 0) {
    shr_pg_release(conn);
    r->conn = NULL;
    req_fail(r, "closed", NULL);
    shr_sched_wake(&r->wait);
  }
}

/* begin() -> tx | nil, err: pins a connection to the running thread (its
 * queries then run on it) and opens a transaction. The caller keeps tx and
 * ends it with commit(tx) or rollback(tx). */
static int l_begin(lua_State *L) {
  shr_pg_pool_t *pool = pool_of(L);
  shr_thread_t *t = shr_sched_current(L);
  if (current_tx(L, t)) return luaL_error(L, "shield.pg: nested transactions are not supported");
  if (shr_thread_expired(t)) return push_timeout(L);
  req_t *r = req_new(L, pool, push_begin);
  r->thread = t;
  if (shr_pg_acquire(pool, on_acquired, r) != 0) {
    free(r);
    return push_closed(L);
  }
  return shr_sched_wait(L, &r->wait);
}

/* Detaches tx from its thread and returns its connection, still pinned. */
static shr_pg_conn_t *tx_end(lua_State *L, shr_thread_t *t, tx_t *tx) {
  shr_pg_conn_t *conn = tx->conn;
  tx->conn = NULL;
  *shr_thread_userslot(t, SHR_THREAD_SLOT_PG) = NULL;
  txs_get(L);
  lua_pushnumber(L, (lua_Number)tx->id);
  lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  return conn;
}

static tx_t *check_tx(lua_State *L, shr_thread_t *t) {
  tx_t *tx = luaL_checkudata(L, 1, TX_MT);
  if (tx->conn && (uintptr_t)*shr_thread_userslot(t, SHR_THREAD_SLOT_PG) != tx->id)
    luaL_error(L, "shield.pg: the transaction belongs to another thread");
  return tx;
}

static int push_commit(lua_State *co, shr_wait_t *w) {
  req_t *r = (req_t *)w;
  if (r->failed) return push_failure(co, r);
  req_free(r);
  lua_pushboolean(co, 1);
  return 1;
}

static void on_committed(PGresult *res, const char *err, void *data) {
  req_t *r = data;
  shr_pg_release(r->conn);
  if (r->cancelled) {
    req_free(r);
    return;
  }
  if (err)
    req_fail(r, err, res);
  else if (strcmp(PQcmdStatus(res), "ROLLBACK") == 0)
    req_fail(r, "rolled back: a statement of the transaction failed", NULL);
  shr_sched_wake(&r->wait);
}

/* commit(tx) -> true | nil, err. The connection returns to the pool either way. */
static int l_commit(lua_State *L) {
  shr_pg_pool_t *pool = pool_of(L);
  shr_thread_t *t = shr_sched_current(L);
  tx_t *tx = check_tx(L, t);
  if (!tx->conn) return luaL_error(L, "shield.pg: the transaction is over");
  shr_pg_conn_t *conn = tx_end(L, t, tx);
  if (shr_thread_expired(t)) {
    shr_pg_release(conn); /* the pool rolls the transaction back */
    return push_timeout(L);
  }
  req_t *r = req_new(L, pool, push_commit);
  r->conn = conn;
  if (shr_pg_conn_query(conn, "COMMIT", 0, NULL, NULL, NULL, on_committed, r) != 0) {
    shr_pg_release(conn);
    free(r);
    return push_closed(L);
  }
  return shr_sched_wait(L, &r->wait);
}

/* rollback(tx): never waits; the pool rolls back before reusing the
 * connection. A second call does nothing. */
static int l_rollback(lua_State *L) {
  shr_thread_t *t = shr_sched_current(L);
  tx_t *tx = check_tx(L, t);
  if (tx->conn) shr_pg_release(tx_end(L, t, tx));
  return 0;
}

/* A transaction collected while open (its thread was killed): give the
 * connection back, unless the pool is closed already (state teardown). */
static int l_tx_gc(lua_State *L) {
  tx_t *tx = luaL_checkudata(L, 1, TX_MT);
  shr_env_t *env = shr_env_of(L);
  if (tx->conn && env && env->pg) shr_pg_release(tx->conn);
  tx->conn = NULL;
  return 0;
}

/* ---- pool state ---- */

static int l_stats(lua_State *L) {
  shr_pg_stats_t st;
  shr_pg_pool_stats(pool_of(L), &st);
  lua_createtable(L, 0, 12);
#define FIELD(name)                          \
  lua_pushnumber(L, (lua_Number)st.name);    \
  lua_setfield(L, -2, #name)
  FIELD(queries);
  FIELD(errors);
  FIELD(connects);
  FIELD(reconnects);
  FIELD(connect_failures);
  FIELD(cancels);
  FIELD(prepared);
  FIELD(size);
  FIELD(open);
  FIELD(busy);
  FIELD(pinned);
  FIELD(queued);
#undef FIELD
  return 1;
}

static int l_healthy(lua_State *L) {
  lua_pushboolean(L, shr_pg_pool_healthy(pool_of(L)));
  return 1;
}

int shr_lua_pg_open(lua_State *L) {
  if (luaL_newmetatable(L, TX_MT)) {
    lua_pushcfunction(L, l_tx_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  txs_get(L);
  if (lua_isnil(L, -1)) {
    lua_pushlightuserdata(L, &txs_key);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
  }
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {{"query", l_query},   {"begin", l_begin}, {"commit", l_commit},
                                 {"rollback", l_rollback}, {"stats", l_stats}, {"healthy", l_healthy},
                                 {NULL, NULL}};
  lua_createtable(L, 0, 7);
  luaL_register(L, NULL, fns);
  shr_lua_pg_binary_register(L);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  return 1;
}

int shr_lua_pg_init(shr_env_t *env, char *err, size_t errlen) {
  int size = env->config->pool_concurrency;
  if (size > SHR_LUA_PG_MAX_SESSIONS) size = SHR_LUA_PG_MAX_SESSIONS;
  if (size < 1) size = 1;
  env->pg = shr_pg_pool_new(env->loop, env->config->postgres_url, size);
  if (!env->pg) {
    snprintf(err, errlen, "cannot create the PostgreSQL pool: out of memory");
    return -1;
  }
  return 0;
}

void shr_lua_pg_close(shr_env_t *env) {
  if (!env->pg) return;
  shr_pg_pool_close(env->pg);
  env->pg = NULL;
}
