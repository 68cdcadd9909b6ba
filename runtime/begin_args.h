/* begin.lua's arguments for one batch of stream entries (see its header):
 * first deliveries go as runs of one job, a job id per run, and every other
 * entry as (msg_id, job_id, chunk_id, pending pass). Used by consumer.c, and by
 * the script tests, which begin through the same encoding. */
#ifndef SHR_BEGIN_ARGS_H
#define SHR_BEGIN_ARGS_H

#include <stddef.h>

typedef struct {
  const char *id, *job_id, *chunk_id; /* job_id, chunk_id NULL when missing */
  size_t id_len, job_id_len, chunk_id_len;
  /* Read with ">", and neither a retry (attempt > 1) nor a reclaimed entry
   * (carried deliveries): its chunk cannot be final yet. */
  int first_delivery;
  int verdict; /* set by shr_begin_args: the index of its verdict in the reply */
} shr_begin_entry_t;

/* The length of the job id in a chunk id "<job_id>:<index>" (up to its last
 * ':'), 0 when it has none: the job of an entry without a job_id field (what
 * enqueue.lua writes). */
size_t shr_chunk_job_len(const char *chunk_id, size_t len);

/* The most arguments shr_begin_args writes for n entries. */
#define SHR_BEGIN_ARGS_MAX(n) (1 + 4 * (n))

/* Writes the arguments after begin.lua's group, consumer and max deliveries
 * for entries[0..n) into argv and argvlen, and sets each entry's verdict index;
 * pending_pass: the entries came from the worker's own id-0 read. runs_text
 * holds the run count's text and must live until the call is sent. Returns the
 * number of arguments written; *verdicts (unless NULL) gets the number of
 * verdicts the reply will hold. */
int shr_begin_args(shr_begin_entry_t *entries, int n, int pending_pass, char runs_text[12], const char **argv,
                   size_t *argvlen, int *verdicts);

#endif
