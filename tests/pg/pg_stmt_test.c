/* The prepared-statement book of a session (runtime/pg_stmt.c): lookups by
 * text and parameter count, least recently used out first, stale entries
 * never found and evicted first, and nothing left after a clear. */
#include <stdio.h>

#include "pg_stmt.h"
#include "test_check.h"

static void fill(shr_pg_stmts_t *s, int n) {
  for (int i = 0; i < n; i++) {
    char sql[32], name[SHR_PG_STMT_NAME];
    snprintf(sql, sizeof sql, "SELECT $1::int + %d", i);
    shr_pg_stmts_new_name(s, name);
    CHECK_INT(0, shr_pg_stmts_add(s, sql, 1, name));
  }
}

static void test_find(void) {
  shr_pg_stmts_t s = {0};
  char name[SHR_PG_STMT_NAME];
  CHECK(shr_pg_stmts_find(&s, "SELECT $1", 1) == NULL);
  shr_pg_stmts_new_name(&s, name);
  CHECK_STR("shr_0", name);
  CHECK_INT(0, shr_pg_stmts_add(&s, "SELECT $1", 1, name));
  CHECK_STR("shr_0", shr_pg_stmts_find(&s, "SELECT $1", 1));
  /* The parameter count is part of the key: the server answers differently. */
  CHECK(shr_pg_stmts_find(&s, "SELECT $1", 2) == NULL);
  CHECK(shr_pg_stmts_find(&s, "SELECT $2", 1) == NULL);
  CHECK(shr_pg_stmts_victim(&s) == NULL);
  shr_pg_stmts_clear(&s);
}

static void test_lru(void) {
  shr_pg_stmts_t s = {0};
  fill(&s, SHR_PG_STMTS_MAX);
  CHECK_INT(SHR_PG_STMTS_MAX, s.count);
  /* The oldest is the victim until it is used again. */
  CHECK_STR("shr_0", shr_pg_stmts_victim(&s)->name);
  CHECK_STR("shr_0", shr_pg_stmts_find(&s, "SELECT $1::int + 0", 1));
  CHECK_STR("shr_1", shr_pg_stmts_victim(&s)->name);
  shr_pg_stmts_remove(&s, "shr_1");
  CHECK_INT(SHR_PG_STMTS_MAX - 1, s.count);
  CHECK(shr_pg_stmts_victim(&s) == NULL);
  CHECK(shr_pg_stmts_find(&s, "SELECT $1::int + 1", 1) == NULL);
  /* Names are never reused in a session, even after a clear. */
  char name[SHR_PG_STMT_NAME];
  shr_pg_stmts_new_name(&s, name);
  char want[SHR_PG_STMT_NAME];
  snprintf(want, sizeof want, "shr_%d", SHR_PG_STMTS_MAX);
  CHECK_STR(want, name);
  CHECK_INT(0, shr_pg_stmts_add(&s, "SELECT 'new', $1", 1, name));
  CHECK_INT(-1, shr_pg_stmts_add(&s, "SELECT 'no room', $1", 1, "shr_x"));
  shr_pg_stmts_clear(&s);
  CHECK_INT(0, s.count);
  CHECK(shr_pg_stmts_find(&s, "SELECT 'new', $1", 1) == NULL);
  shr_pg_stmts_new_name(&s, name);
  snprintf(want, sizeof want, "shr_%d", SHR_PG_STMTS_MAX + 1);
  CHECK_STR(want, name);
}

static void test_stale(void) {
  shr_pg_stmts_t s = {0};
  fill(&s, SHR_PG_STMTS_MAX);
  shr_pg_stmts_mark_stale(&s, "shr_5");
  CHECK(shr_pg_stmts_find(&s, "SELECT $1::int + 5", 1) == NULL);
  CHECK_STR("shr_5", shr_pg_stmts_victim(&s)->name);
  shr_pg_stmts_remove(&s, "shr_5");
  char name[SHR_PG_STMT_NAME];
  shr_pg_stmts_new_name(&s, name);
  CHECK_INT(0, shr_pg_stmts_add(&s, "SELECT $1::int + 5", 1, name));
  CHECK_STR(name, shr_pg_stmts_find(&s, "SELECT $1::int + 5", 1));
  shr_pg_stmts_clear(&s);
}

/* Prepared again each time the session's executions double. */
static void test_replan(void) {
  shr_pg_stmts_t s = {0};
  char name[SHR_PG_STMT_NAME];
  int prepares = 0;
  for (int i = 0; i < 1000; i++) {
    if (shr_pg_stmts_find(&s, "SELECT $1", 1)) continue;
    const shr_pg_stmt_t *v = shr_pg_stmts_victim(&s);
    if (v) {
      CHECK_INT(1, v->stale);
      snprintf(name, sizeof name, "%s", v->name);
      shr_pg_stmts_remove(&s, name);
    }
    shr_pg_stmts_new_name(&s, name);
    CHECK_INT(0, shr_pg_stmts_add(&s, "SELECT $1", 1, name));
    prepares++;
  }
  /* At executions 0, 64, 128, 256 and 512. */
  CHECK_INT(5, prepares);
  CHECK_INT(1, s.count);
  shr_pg_stmts_clear(&s);
}

int main(void) {
  test_find();
  test_lru();
  test_stale();
  test_replan();
  return test_summary();
}
