#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void shr_outbox_init(shr_outbox_t *o) { memset(o, 0, sizeof *o); }

void shr_outbox_free(shr_outbox_t *o) {
  free(o->arena);
  free(o->offsets);
  free(o->lengths);
  free(o->argv);
  free(o->argvlen);
  free(o->ok_records);
  free(o->numbers);
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

enum { OP, MSG_ID, JOB_ID, CHUNK_ID, NUM, TEXT };

static const char *field_of(const shr_outbox_t *o, int record, int field, size_t *len) {
  size_t i = (size_t)record * SHR_OUTBOX_FIELDS + (size_t)field;
  *len = o->lengths[i];
  return o->arena + o->offsets[i];
}

static int is_ok(const shr_outbox_t *o, int record) {
  size_t len;
  const char *op = field_of(o, record, OP, &len);
  return len == 2 && memcmp(op, "ok", 2) == 0;
}

static int same_job(const shr_outbox_t *o, int a, int b) {
  size_t alen, blen;
  const char *ajob = field_of(o, a, JOB_ID, &alen), *bjob = field_of(o, b, JOB_ID, &blen);
  return alen == blen && memcmp(ajob, bjob, alen) == 0;
}

typedef struct {
  shr_outbox_t *o;
  int argc, nnumbers;
} builder_t;

static void push(builder_t *b, const char *s, size_t len) {
  b->o->argv[b->argc] = s;
  b->o->argvlen[b->argc++] = len;
}

static void push_field(builder_t *b, int record, int field) {
  size_t len;
  const char *s = field_of(b->o, record, field, &len);
  push(b, s, len);
}

static void push_number(builder_t *b, int n) {
  char *s = b->o->numbers[b->nnumbers++];
  push(b, s, (size_t)snprintf(s, sizeof b->o->numbers[0], "%d", n));
}

/* The run of ok records starting at ok_records[first]: job_id, k, c, the k
 * chunk ids, then the c (chunk_id, counts) pairs. Returns the run's length k. */
static int push_run(builder_t *b, int first, int nok) {
  const int *ok = b->o->ok_records;
  int k = 1, c = 0;
  while (first + k < nok && same_job(b->o, ok[first], ok[first + k])) k++;
  for (int i = first; i < first + k; i++) c += b->o->lengths[(size_t)ok[i] * SHR_OUTBOX_FIELDS + TEXT] > 0;
  push_field(b, ok[first], JOB_ID);
  push_number(b, k);
  push_number(b, c);
  for (int i = first; i < first + k; i++) push_field(b, ok[i], CHUNK_ID);
  for (int i = first; i < first + k && c > 0; i++) {
    if (b->o->lengths[(size_t)ok[i] * SHR_OUTBOX_FIELDS + TEXT] == 0) continue;
    push_field(b, ok[i], CHUNK_ID);
    push_field(b, ok[i], TEXT);
  }
  return k;
}

int shr_outbox_argv(shr_outbox_t *o, int nhead, const char *const *head, const size_t *headlen,
                    const char ***argv, const size_t **argvlen) {
  /* At most: the head, 2 counts, per record its msg_id and either 6 values
   * (another record) or a chunk id, a counts pair and a run's 3 values. */
  int max = nhead + 2 + o->count * 7;
  int cap = o->argv_cap;
  if (grow((void **)&o->argv, sizeof(char *), &cap, max) != 0) return -1;
  cap = o->argv_cap;
  if (grow((void **)&o->argvlen, sizeof(size_t), &cap, max) != 0) return -1;
  o->argv_cap = cap;
  int numbers = 2 * o->count + 2; /* the record and run counts, 2 per run */
  cap = o->numbers_cap;
  if (grow((void **)&o->ok_records, sizeof(int), &cap, numbers) != 0) return -1;
  cap = o->numbers_cap;
  if (grow((void **)&o->numbers, sizeof o->numbers[0], &cap, numbers) != 0) return -1;
  o->numbers_cap = cap;

  builder_t b = {o, 0, 0};
  for (int i = 0; i < nhead; i++) push(&b, head[i], headlen[i]);
  push_number(&b, o->count);
  int nok = 0;
  for (int r = 0; r < o->count; r++) {
    push_field(&b, r, MSG_ID);
    if (is_ok(o, r) && o->lengths[(size_t)r * SHR_OUTBOX_FIELDS + JOB_ID] > 0) o->ok_records[nok++] = r;
  }
  int runs_at = b.argc, runs = 0;
  push(&b, "", 0); /* the run count, once known */
  for (int first = 0; first < nok; runs++) first += push_run(&b, first, nok);
  char *s = o->numbers[b.nnumbers++];
  o->argv[runs_at] = s;
  o->argvlen[runs_at] = (size_t)snprintf(s, sizeof o->numbers[0], "%d", runs);
  for (int r = 0; r < o->count; r++) {
    if (is_ok(o, r)) continue;
    for (int f = 0; f < SHR_OUTBOX_FIELDS; f++) push_field(&b, r, f);
  }
  *argv = o->argv;
  *argvlen = o->argvlen;
  return b.argc;
}
