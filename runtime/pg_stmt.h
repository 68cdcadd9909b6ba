/* The named prepared statements of one PostgreSQL session: which SQL texts
 * (with their parameter counts) are prepared under which names, at most
 * SHR_PG_STMTS_MAX, the least recently used out first. Bookkeeping only:
 * runtime/pg.c sends the PREPARE and DEALLOCATE this asks for. Relies on libc.
 *
 * A statement is prepared again each time the session's executions double
 * (from SHR_PG_REPLAN_MIN on): PostgreSQL keeps the generic plan it made after
 * the fifth execution until the table's statistics change (autovacuum, up to
 * a minute later), so a plan made while a table held a few rows (a sequential
 * scan) would otherwise go on scanning it as it grows. */
#ifndef SHR_PG_STMT_H
#define SHR_PG_STMT_H

#include <stdint.h>

#define SHR_PG_STMTS_MAX 32
#define SHR_PG_STMT_NAME 16
#define SHR_PG_REPLAN_MIN 64

typedef struct {
  char *sql;                    /* owned; NULL: a free entry */
  uint64_t hash;                /* of sql */
  int nparams;
  int stale;                    /* never found again; deallocated before the next prepare */
  uint64_t used;                /* the cache's clock at its last use */
  uint64_t replan_at;           /* the clock at which it is prepared again */
  char name[SHR_PG_STMT_NAME];  /* "shr_<n>", unique in the session */
} shr_pg_stmt_t;

typedef struct {
  shr_pg_stmt_t entries[SHR_PG_STMTS_MAX];
  int count;
  unsigned next_id;
  uint64_t clock;
} shr_pg_stmts_t;

/* The name sql (with nparams parameters) is prepared under, marked as just
 * used, or NULL (also when it is due to be prepared again: it is then stale). */
const char *shr_pg_stmts_find(shr_pg_stmts_t *s, const char *sql, int nparams);
/* The statement to deallocate before another is added: a stale one, else
 * the least recently used when there is no room; NULL if none. */
const shr_pg_stmt_t *shr_pg_stmts_victim(const shr_pg_stmts_t *s);
/* Writes a name no statement of the session had before. */
void shr_pg_stmts_new_name(shr_pg_stmts_t *s, char name[SHR_PG_STMT_NAME]);
/* Records sql as prepared under name (needs room: see victim). Returns 0, or
 * -1 when out of memory (the statement is then not reused). */
int shr_pg_stmts_add(shr_pg_stmts_t *s, const char *sql, int nparams, const char *name);
/* Forgets the statement named name (deallocated). */
void shr_pg_stmts_remove(shr_pg_stmts_t *s, const char *name);
/* Keeps the statement named name until it is evicted, never reusing it. */
void shr_pg_stmts_mark_stale(shr_pg_stmts_t *s, const char *name);
/* Forgets every statement (the session ended, or they were dropped). */
void shr_pg_stmts_clear(shr_pg_stmts_t *s);

#endif
