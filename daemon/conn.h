/* conn.h — one client connection: a bufferevent, the line reader with its
 * limits (--max-line before the newline arrives, --max-output, --idle-timeout,
 * a bounded number of requests per wake-up) and the close sequence.  Every
 * function runs in the thread of the worker whose event base the connection
 * lives on (worker.c); the connection's requests run synchronously there, so
 * pipelined replies leave in request order. */
#ifndef SOUSUO_DAEMON_CONN_H
#define SOUSUO_DAEMON_CONN_H

#include <event2/event.h>
#include <event2/util.h>
#include <stddef.h>

#include "daemon/commands.h"
#include "daemon/config.h"
#include "daemon/stats.h"
#include "protocol/protocol.h"

typedef struct conn conn;

/* The bytes one direction's buffers of all a worker's connections hold
 * (kept by conn.c), and the worker's share of the limit on them. */
typedef struct {
	size_t bytes;
	size_t cap;
	atomic_uint_fast64_t *gauge;  /* the same sum over all workers, or NULL */
} conn_bytes;

/* What the connections of one worker share; owned by the worker, outlives
 * its connections.  `head` and `count` are kept by conn.c. */
typedef struct {
	struct event_base *base;
	const server_config *cfg;
	server_stats *stats;
	cmd_ctx *cmds;
	proto_buf reply;              /* one reply at a time, copied to the socket */
	void (*on_free)(void *arg);   /* called after each connection is freed */
	void *arg;
	conn *head;                   /* open connections (conn.c) */
	size_t count;
	conn_bytes out;               /* unsent replies; --max-output-total */
	conn_bytes in;                /* input not yet run; --max-input-total */
} conn_env;

/* Takes over fd (an accepted, not yet non-blocking socket) and starts
 * serving it.  Counts it in stats->conns_total; the caller has already
 * counted it in conns_current, which conn.c decrements when it is freed.
 * Returns 0, or -1 (fd closed, conns_current given back) when out of memory. */
int conn_start(conn_env *env, evutil_socket_t fd);

/* Shutdown: every connection stops reading requests, sends the replies it
 * has, and closes (env->on_free tells when the last one is gone). */
void conn_close_all(conn_env *env);

/* Frees every connection at once, replies or not (after the drain bound). */
void conn_free_all(conn_env *env);

#endif
