/* Server-Sent Events for GET /events/stream: one reader of the events stream
 * (XREAD BLOCK on a connection of its own) fans every entry out to all
 * subscribers, each filtered by ?job_id=. A subscriber first catches up from
 * Last-Event-ID (or from its job's creation) with XRANGE pages, then follows
 * live; idle streams get a comment line every 15 s; a client that cannot keep
 * up is dropped by the transport. Used by api.c; relies on redis and http_server. */
#ifndef SHR_SSE_H
#define SHR_SSE_H

#include "env.h"
#include "http_server.h"

typedef struct shr_sse shr_sse_t;

shr_sse_t *shr_sse_new(shr_env_t *env);
/* Takes over req (a GET /events/stream request) until the client goes away. */
void shr_sse_subscribe(shr_sse_t *sse, shr_http_req_t *req);
/* Ends every stream and frees the hub from the loop. */
void shr_sse_close(shr_sse_t *sse);

#endif
