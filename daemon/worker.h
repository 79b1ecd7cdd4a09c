/* worker.h — the worker threads: each has its own event base, its own
 * SO_REUSEPORT listening socket on the server's address (the kernel spreads
 * new connections over them), its connections and its per-thread command
 * context.  With --unix, every worker also accepts on the one Unix socket
 * (whichever thread wakes first takes the connection).  Created and
 * stopped by server_main.c. */
#ifndef SOUSUO_DAEMON_WORKER_H
#define SOUSUO_DAEMON_WORKER_H

#include <stddef.h>
#include <sys/socket.h>

#include "daemon/config.h"
#include "daemon/index_holder.h"
#include "daemon/stats.h"

typedef struct worker worker;

/* Creates worker `id` listening on addr (which may have port 0 only for the
 * first worker: the others must be given the port it got, see
 * worker_local_addr), and also on the listening Unix socket unix_fd unless it
 * is -1 (the worker uses a duplicate: the caller keeps and closes its own).
 * cfg, holder and stats are shared and must outlive the worker.  Returns
 * NULL with a message in err. */
worker *worker_new(int id, const struct sockaddr *addr, socklen_t addrlen, int unix_fd,
                   const server_config *cfg, index_holder *holder, server_stats *stats,
                   char *err, size_t errlen);

/* The address the worker's socket is bound to.  0 or -1. */
int worker_local_addr(worker *w, struct sockaddr_storage *ss, socklen_t *len);

/* Starts the worker's thread.  0 or -1. */
int worker_start(worker *w);

/* Asks the worker to stop (thread-safe, returns at once): it closes its
 * listener, lets its connections flush and close, and its thread ends when
 * the last one is gone or after SERVER_DRAIN_SECONDS. */
void worker_stop(worker *w);

/* Waits for the thread (after worker_stop), then frees everything. */
void worker_join_free(worker *w);

#endif
