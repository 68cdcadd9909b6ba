#include "outbox.h"

#include <stdlib.h>
#include <string.h>

void shr_outbox_init(shr_outbox_t *o) { memset(o, 0, sizeof *o); }

void shr_outbox_free(shr_outbox_t *o) {
  free(o->arena);
  free(o->offsets);
  free(o->lengths);
  free(o->argv);
  free(o->argvlen);
  memset(o, 0, sizeof *o);
}

void shr_outbox_clear(shr_outbox_t *o) {
  o->used = 0;
  o->count = 0;
}

static int grow(void **p, size_t elem, int *cap, int need) {
  if (need <= *cap) return 0;
  int n = *cap ? *cap : 64;
  while (n < need) n *= 2;
  void *q = realloc(*p, (size_t)n * elem);
  if (!q) return -1;
  *p = q;
  *cap = n;
  return 0;
}

static int reserve_records(shr_outbox_t *o, int need) {
  int cap = o->cap_records;
  if (grow((void **)&o->offsets, sizeof(size_t) * SHR_OUTBOX_FIELDS, &cap, need) != 0) return -1;
  cap = o->cap_records;
  if (grow((void **)&o->lengths, sizeof(size_t) * SHR_OUTBOX_FIELDS, &cap, need) != 0) return -1;
  o->cap_records = cap;
  return 0;
}

static int reserve_bytes(shr_outbox_t *o, size_t extra) {
  if (o->used + extra <= o->cap) return 0;
  size_t cap = o->cap ? o->cap : 4096;
  while (cap < o->used + extra) cap *= 2;
  char *a = realloc(o->arena, cap);
  if (!a) return -1;
  o->arena = a;
  o->cap = cap;
  return 0;
}

int shr_outbox_add(shr_outbox_t *o, const char *const fields[SHR_OUTBOX_FIELDS],
                   const size_t lengths[SHR_OUTBOX_FIELDS]) {
  size_t total = 0;
  for (int i = 0; i < SHR_OUTBOX_FIELDS; i++) total += lengths[i];
  if (reserve_records(o, o->count + 1) != 0 || reserve_bytes(o, total) != 0) return -1;
  size_t *off = o->offsets + (size_t)o->count * SHR_OUTBOX_FIELDS;
  size_t *len = o->lengths + (size_t)o->count * SHR_OUTBOX_FIELDS;
  for (int i = 0; i < SHR_OUTBOX_FIELDS; i++) {
    off[i] = o->used;
    len[i] = lengths[i];
    if (lengths[i]) memcpy(o->arena + o->used, fields[i], lengths[i]);
    o->used += lengths[i];
  }
  o->count++;
  return 0;
}

int shr_outbox_append(shr_outbox_t *dst, shr_outbox_t *src) {
  for (int r = 0; r < src->count; r++) {
    const char *fields[SHR_OUTBOX_FIELDS];
    const size_t *len = src->lengths + (size_t)r * SHR_OUTBOX_FIELDS;
    const size_t *off = src->offsets + (size_t)r * SHR_OUTBOX_FIELDS;
    for (int i = 0; i < SHR_OUTBOX_FIELDS; i++) fields[i] = src->arena + off[i];
    if (shr_outbox_add(dst, fields, len) != 0) return -1;
  }
  shr_outbox_clear(src);
  return 0;
}

int shr_outbox_argv(shr_outbox_t *o, int nhead, const char *const *head, const size_t *headlen,
                    const char ***argv, const size_t **argvlen) {
  int n = nhead + o->count * SHR_OUTBOX_FIELDS;
  int cap = o->argv_cap;
  if (grow((void **)&o->argv, sizeof(char *), &cap, n) != 0) return -1;
  cap = o->argv_cap;
  if (grow((void **)&o->argvlen, sizeof(size_t), &cap, n) != 0) return -1;
  o->argv_cap = cap;
  for (int i = 0; i < nhead; i++) {
    o->argv[i] = head[i];
    o->argvlen[i] = headlen[i];
  }
  for (int i = 0; i < o->count * SHR_OUTBOX_FIELDS; i++) {
    o->argv[nhead + i] = o->arena + o->offsets[i];
    o->argvlen[nhead + i] = o->lengths[i];
  }
  *argv = o->argv;
  *argvlen = o->argvlen;
  return n;
}
