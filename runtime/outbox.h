/* A buffer of fixed-width string records (op, msg_id, job_id, chunk_id, num,
 * text) waiting to be sent as the arguments of one settle.lua call. Strings
 * are copied into one growing arena and the memory is reused from batch to
 * batch, so settling allocates nothing in the steady state. Used by consumer.c
 * (and by the script tests, which settle through the same encoding). */
#ifndef SHR_OUTBOX_H
#define SHR_OUTBOX_H

#include <stddef.h>

#define SHR_OUTBOX_FIELDS 6

typedef struct {
  char *arena;
  size_t used, cap;
  size_t *offsets; /* SHR_OUTBOX_FIELDS per record, into arena */
  size_t *lengths;
  int count, cap_records;
  /* built by shr_outbox_argv: */
  const char **argv;
  size_t *argvlen;
  int argv_cap;
  int *ok_records; /* indexes of the ok records with a job, in order */
  char (*numbers)[12];
  int numbers_cap; /* of both ok_records and numbers */
} shr_outbox_t;

void shr_outbox_init(shr_outbox_t *o);
void shr_outbox_free(shr_outbox_t *o);
void shr_outbox_clear(shr_outbox_t *o);
/* Appends one record; fields are (pointer, length) pairs. Returns 0 or -1. */
int shr_outbox_add(shr_outbox_t *o, const char *const fields[SHR_OUTBOX_FIELDS],
                   const size_t lengths[SHR_OUTBOX_FIELDS]);
/* Moves every record of src to the end of dst (src ends empty). */
int shr_outbox_append(shr_outbox_t *dst, shr_outbox_t *src);
/* settle.lua's argument vector (see its header): the nhead strings of head,
 * the record count and every record's msg_id, then the ok records as runs of
 * one job (consecutive among the ok records), then the other records whole.
 * Valid until the next change of o. Returns the count, or -1 out of memory. */
int shr_outbox_argv(shr_outbox_t *o, int nhead, const char *const *head, const size_t *headlen,
                    const char ***argv, const size_t **argvlen);

#endif
