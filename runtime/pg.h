/* A small pool of non-blocking libpq connections driven by uv_poll: queued
 * parameterized queries, connections pinned for transactions, cancellation and
 * reconnection with capped backoff. Used by lua_pg.c (shield.pg) and the
 * supervisor; relies on libpq and libuv only. */
#ifndef SHR_PG_H
#define SHR_PG_H

#include <libpq-fe.h>
#include <stdint.h>
#include <uv.h>

typedef struct shr_pg_pool shr_pg_pool_t;
typedef struct shr_pg_conn shr_pg_conn_t;

/* Exactly one call per query, never inside shr_pg_query/shr_pg_cancel. On
 * success err is NULL. On failure err starts with fixed words: "closed" (the
 * connection died or the pool closed; outcome unknown), "connection refused"
 * (cannot connect), "cancelled", or is the server's own message, in which case
 * res is the error result (PQresultErrorField gives the SQLSTATE). res belongs
 * to the pool and is cleared when cb returns. */
typedef void (*shr_pg_cb)(PGresult *res, const char *err, void *data);
/* Exactly one call per acquire, never inside shr_pg_acquire/shr_pg_cancel:
 * conn pinned to the caller until shr_pg_release, or NULL and err. */
typedef void (*shr_pg_acquire_cb)(shr_pg_conn_t *conn, const char *err, void *data);

typedef struct shr_pg_stats {
  uint64_t queries;          /* completed, in any way */
  uint64_t errors;           /* completed with err set */
  uint64_t connects;         /* sessions opened */
  uint64_t reconnects;       /* sessions opened on a slot that had one before */
  uint64_t connect_failures;
  uint64_t cancels;          /* in-flight queries cancelled */
  uint64_t prepared;         /* statements prepared (queries with parameters, once per session) */
  int size, open, busy, pinned, queued;
} shr_pg_stats_t;

/* size connections at most, opened lazily when queries need them. conninfo is
 * a libpq connection string or URI (its connect_timeout is honoured). NULL
 * only when out of memory; a bad conninfo fails the queries instead. */
shr_pg_pool_t *shr_pg_pool_new(uv_loop_t *loop, const char *conninfo, int size);
/* Fails every pending query and acquire with "closed" (their callbacks run
 * before this returns), closes the connections; the pool is freed once its
 * handles are closed (run the loop afterwards). */
void shr_pg_pool_close(shr_pg_pool_t *p);

/* Sends sql with nparams parameters ($1..$n; values[i] NULL is SQL NULL) on a
 * free connection, or queues it (FIFO) while all are busy. A value is text
 * ending at its first NUL, unless formats (may be NULL) has 1 for it: then it
 * is PostgreSQL's binary format of the parameter's type, lengths[i] bytes.
 * With parameters sql is one statement, run as a named prepared statement of
 * the session (prepared on its first use there; pg_stmt.h); without, it may
 * be several (the result is the last one's, the first error wins).
 * sql and values are copied. While the server is unreachable queries fail at once (backoff).
 * Returns 0, or -1 (pool closing, bad arguments, out of memory: cb not
 * called). data identifies the query for shr_pg_cancel. */
int shr_pg_query(shr_pg_pool_t *p, const char *sql, int nparams, const char *const *values,
                 const int *lengths, const int *formats, shr_pg_cb cb, void *data);

/* Pins a free connection to the caller (for BEGIN..COMMIT), waiting in the
 * same FIFO as queries. Returns 0, or -1 (cb not called). */
int shr_pg_acquire(shr_pg_pool_t *p, shr_pg_acquire_cb cb, void *data);
/* A query on a pinned connection; fails with "closed" if its session was lost
 * (a new session would silently drop the transaction). Returns -1 (cb not
 * called) if a query is in flight on it already. */
int shr_pg_conn_query(shr_pg_conn_t *c, const char *sql, int nparams, const char *const *values,
                      const int *lengths, const int *formats, shr_pg_cb cb, void *data);
/* Returns a pinned connection to the pool, at once. A transaction left open
 * on it is rolled back before the connection serves anyone else. */
void shr_pg_release(shr_pg_conn_t *c);

/* The caller of the query or acquire identified by data gave up. It completes
 * later with "cancelled" (cb still runs once). A query in flight is cancelled
 * on the server; the connection is reset if the server does not answer soon.
 * Returns 0, or -1 if no such query is pending (its callback is imminent). */
int shr_pg_cancel(shr_pg_pool_t *p, void *data);

void shr_pg_pool_stats(const shr_pg_pool_t *p, shr_pg_stats_t *out);
/* 0 while connecting fails (the pool backs off), 1 otherwise, also before the
 * first connection. */
int shr_pg_pool_healthy(const shr_pg_pool_t *p);

#endif
