#include "pg_stmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash_of(const char *sql) {
  uint64_t h = 14695981039346656037ULL; /* FNV-1a */
  for (const unsigned char *p = (const unsigned char *)sql; *p; p++) h = (h ^ *p) * 1099511628211ULL;
  return h;
}

static shr_pg_stmt_t *named(shr_pg_stmts_t *s, const char *name) {
  for (int i = 0; i < SHR_PG_STMTS_MAX; i++)
    if (s->entries[i].sql && strcmp(s->entries[i].name, name) == 0) return &s->entries[i];
  return NULL;
}

const char *shr_pg_stmts_find(shr_pg_stmts_t *s, const char *sql, int nparams) {
  uint64_t h = hash_of(sql);
  for (int i = 0; i < SHR_PG_STMTS_MAX; i++) {
    shr_pg_stmt_t *e = &s->entries[i];
    if (e->sql && !e->stale && e->hash == h && e->nparams == nparams && strcmp(e->sql, sql) == 0) {
      if (s->clock >= e->replan_at) {
        e->stale = 1;
        return NULL;
      }
      e->used = ++s->clock;
      return e->name;
    }
  }
  return NULL;
}

const shr_pg_stmt_t *shr_pg_stmts_victim(const shr_pg_stmts_t *s) {
  const shr_pg_stmt_t *v = NULL;
  for (int i = 0; i < SHR_PG_STMTS_MAX; i++) {
    const shr_pg_stmt_t *e = &s->entries[i];
    if (!e->sql) continue;
    if (e->stale) return e;
    if (!v || e->used < v->used) v = e;
  }
  return s->count < SHR_PG_STMTS_MAX ? NULL : v;
}

void shr_pg_stmts_new_name(shr_pg_stmts_t *s, char name[SHR_PG_STMT_NAME]) {
  snprintf(name, SHR_PG_STMT_NAME, "shr_%u", s->next_id++);
}

int shr_pg_stmts_add(shr_pg_stmts_t *s, const char *sql, int nparams, const char *name) {
  shr_pg_stmt_t *e = NULL;
  for (int i = 0; i < SHR_PG_STMTS_MAX && !e; i++)
    if (!s->entries[i].sql) e = &s->entries[i];
  if (!e || strlen(name) >= SHR_PG_STMT_NAME) return -1;
  e->sql = strdup(sql);
  if (!e->sql) return -1;
  e->hash = hash_of(sql);
  e->nparams = nparams;
  e->stale = 0;
  e->used = ++s->clock;
  e->replan_at = 2 * s->clock > SHR_PG_REPLAN_MIN ? 2 * s->clock : SHR_PG_REPLAN_MIN;
  memcpy(e->name, name, strlen(name) + 1);
  s->count++;
  return 0;
}

void shr_pg_stmts_remove(shr_pg_stmts_t *s, const char *name) {
  shr_pg_stmt_t *e = named(s, name);
  if (!e) return;
  free(e->sql);
  memset(e, 0, sizeof *e);
  s->count--;
}

void shr_pg_stmts_mark_stale(shr_pg_stmts_t *s, const char *name) {
  shr_pg_stmt_t *e = named(s, name);
  if (e) e->stale = 1;
}

void shr_pg_stmts_clear(shr_pg_stmts_t *s) {
  for (int i = 0; i < SHR_PG_STMTS_MAX; i++) free(s->entries[i].sql);
  memset(s->entries, 0, sizeof s->entries);
  s->count = 0;
}
