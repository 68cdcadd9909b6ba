/* The supervisor's HTTP API: the transport (http_server) on http.listen, every
 * route answered by the Lua router lua/shield/api in a light thread of the
 * supervisor's environment, except GET /events/stream, which sse.c serves.
 * Used by supervisor.c; relies on env, http_server and sse. */
#ifndef SHR_API_H
#define SHR_API_H

#include "env.h"

typedef struct shr_api shr_api_t;

/* Listens on cfg->http_listen. NULL with err set when it cannot. */
shr_api_t *shr_api_start(shr_env_t *env, char *err, size_t errlen);
/* The port actually bound (for http.listen with port 0). */
int shr_api_port(const shr_api_t *api);
/* Graceful shutdown: no new connections; requests in flight finish; event
 * streams end. */
void shr_api_stop_accepting(shr_api_t *api);
/* Closes everything; api is freed from the loop. */
void shr_api_close(shr_api_t *api);

#endif
