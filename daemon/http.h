/* http.h — the HTTP/JSON port (--http-port): one thread with its own event
 * base and evhttp, serving GET /search, /count, /doc/<id>, /stats and
 * /health.  Each request is run as a line-protocol command through its own
 * cmd_ctx (commands.h) and the reply is turned into JSON (json.h), so the
 * search and formatting logic is the line protocol's. */
#ifndef SOUSUO_DAEMON_HTTP_H
#define SOUSUO_DAEMON_HTTP_H

#include <stddef.h>

#include "daemon/config.h"
#include "daemon/index_holder.h"
#include "daemon/stats.h"

typedef struct http_server http_server;

/* Binds cfg->bind:port (0: a free port).  NULL with a message in err. */
http_server *http_new(const server_config *cfg, int port, index_holder *holder,
                      server_stats *stats, char *err, size_t errlen);
/* The port it listens on. */
int http_port(const http_server *h);
/* Starts its thread (with all signals blocked).  0 or -1. */
int http_start(http_server *h);
/* Asks it to stop (thread-safe); in-flight requests are answered first. */
void http_stop(http_server *h);
/* Waits for the thread (after http_stop), then frees everything. */
void http_join_free(http_server *h);

#endif
