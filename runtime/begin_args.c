#include "begin_args.h"

#include <stdio.h>
#include <string.h>

size_t shr_chunk_job_len(const char *chunk_id, size_t len) {
  while (len > 0 && chunk_id[len - 1] != ':') len--;
  return len ? len - 1 : 0;
}

static int in_run(const shr_begin_entry_t *e, int pending_pass) {
  return !pending_pass && e->first_delivery && e->job_id_len > 0 && e->chunk_id_len > 0;
}

static int same_job(const shr_begin_entry_t *a, const shr_begin_entry_t *b) {
  return a->job_id_len == b->job_id_len && memcmp(a->job_id, b->job_id, a->job_id_len) == 0;
}

int shr_begin_args(shr_begin_entry_t *entries, int n, int pending_pass, char runs_text[12], const char **argv,
                   size_t *argvlen, int *verdicts) {
  int argc = 1, runs = 0;
  const shr_begin_entry_t *run = NULL; /* the first entry of the current run */
  for (int i = 0; i < n; i++) {
    shr_begin_entry_t *e = &entries[i];
    if (!in_run(e, pending_pass)) continue;
    if (!run || !same_job(run, e)) {
      run = e;
      argv[argc] = e->job_id;
      argvlen[argc++] = e->job_id_len;
      runs++;
    }
    e->verdict = runs - 1;
  }
  argvlen[0] = (size_t)snprintf(runs_text, 12, "%d", runs);
  argv[0] = runs_text;
  int others = runs;
  const char *pending = pending_pass ? "1" : "0";
  for (int i = 0; i < n; i++) {
    shr_begin_entry_t *e = &entries[i];
    if (in_run(e, pending_pass)) continue;
    e->verdict = others++;
    argv[argc] = e->id;
    argvlen[argc++] = e->id_len;
    argv[argc] = e->job_id ? e->job_id : "";
    argvlen[argc++] = e->job_id_len;
    argv[argc] = e->chunk_id ? e->chunk_id : "";
    argvlen[argc++] = e->chunk_id_len;
    argv[argc] = pending;
    argvlen[argc++] = 1;
  }
  if (verdicts) *verdicts = others;
  return argc;
}
