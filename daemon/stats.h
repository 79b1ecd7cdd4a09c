/* stats.h — the server's counters, shown by STATS: one struct of relaxed
 * atomics shared by all workers (a counter is a statistic, never used to
 * synchronize anything except conns_current, the --max-conns gate). */
#ifndef SOUSUO_DAEMON_STATS_H
#define SOUSUO_DAEMON_STATS_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "protocol/protocol.h"

typedef struct {
	time_t started;                       /* unix time the server started */
	atomic_uint_fast64_t conns_current;   /* open connections now */
	atomic_uint_fast64_t conns_total;     /* connections accepted since start */
	atomic_uint_fast64_t conns_rejected;  /* refused at --max-conns (ERR BUSY) */
	atomic_uint_fast64_t requests;        /* non-empty request lines answered */
	atomic_uint_fast64_t errors;          /* ERR replies, all codes */
	atomic_uint_fast64_t errors_by_code[PROTO_E_LAST + 1];
	atomic_uint_fast64_t output_paused;   /* times a connection's pending replies
	                                         reached --max-output and reading stopped */
	atomic_uint_fast64_t output_paused_total; /* times a connection with replies
	                                         waiting stopped reading because all
	                                         connections held --max-output-total */
	atomic_uint_fast64_t output_pending;  /* bytes of replies queued and not yet
	                                         sent, all connections, now */
	atomic_uint_fast64_t input_evicted;   /* partial lines dropped, and their
	                                         connections closed, at
	                                         --max-input-total */
	atomic_uint_fast64_t idle_closed;     /* closed by --idle-timeout */
	atomic_uint_fast64_t send_closed;     /* closed by --send-timeout (not
	                                         reading its replies) */
	atomic_uint_fast64_t queries_timed_out; /* abandoned at --query-timeout */
	atomic_uint_fast64_t slow_requests;   /* logged by --slow-log */
	atomic_uint_fast64_t auth_failures;   /* wrong AUTH passwords */
	atomic_uint_fast64_t reloads;         /* successful RELOAD / SIGHUP */
	atomic_uint_fast64_t reload_failures; /* refused new index files */
} server_stats;

static inline void stat_add(atomic_uint_fast64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static inline uint64_t stat_get(atomic_uint_fast64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

#endif
