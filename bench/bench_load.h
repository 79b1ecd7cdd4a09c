/* bench_load.h — the load generator behind sousuo-benchmark: connections to
 * sousuo-server spread over client threads, each thread one epoll loop over
 * non-blocking sockets, sending pre-built request lines closed loop (a new
 * request as soon as a pipeline slot frees) or open loop (on a fixed schedule,
 * latency counted from the intended send time), framing the replies with
 * proto_scan and recording latencies in per-thread bench_hist histograms.
 * benchmark_main.c parses the options, builds the requests and prints. */
#ifndef SOUSUO_BENCH_LOAD_H
#define SOUSUO_BENCH_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench/bench_hist.h"
#include "protocol/protocol.h"

/* ---- limits ------------------------------------------------------------------- */

#define BENCH_MAX_CONNS      10000
#define BENCH_MAX_PIPELINE   1024
#define BENCH_MAX_THREADS    64
/* One read buffer per thread, shared by its connections: proto_scan keeps
 * what a reply split between reads needs, so nothing stays in the buffer. */
#define BENCH_READ_BUF       (256u << 10)
/* Full-buffer reads of one connection per wake-up before the others' turn. */
#define BENCH_READS_PER_EVENT 4
#define BENCH_MAX_EVENTS     256
/* Longest sleep of a thread: how soon it sees a stop and checks timeouts. */
#define BENCH_TICK_NS        (100u * 1000 * 1000)
/* The live progress line is redrawn this often. */
#define BENCH_PROGRESS_NS    (1000u * 1000 * 1000)
#define BENCH_CONNECT_TIMEOUT_MS 5000
/* Connection failures described on stderr; the rest are only counted. */
#define BENCH_MAX_FAIL_MSGS  5
#define BENCH_FAIL_MSG_LEN   200
/* Distinct ERR code words counted apart; further ones count as "OTHER". */
#define BENCH_MAX_ERR_CODES  16

/* ---- requests ------------------------------------------------------------------- */

/* The request lines, each with its "\n", built once: the send loop only
 * copies them.  Line i is buf[off[i] .. off[i] + len[i]). */
typedef struct {
	char *buf;
	size_t *off;
	uint32_t *len;
	size_t n;                /* lines, at least 1 */
	size_t max_len;          /* the longest, its "\n" included */
} bench_requests;

/* ---- a run ----------------------------------------------------------------------- */

typedef struct {
	const char *host;        /* name or address; a path starting with '/' is a Unix socket */
	int port;
	uint32_t conns;          /* 1..BENCH_MAX_CONNS */
	uint32_t pipeline;       /* requests in flight per connection, 1..BENCH_MAX_PIPELINE */
	uint32_t threads;        /* 1..BENCH_MAX_THREADS; more than conns is cut to conns */
	double rate;             /* open loop: requests per second, all connections; 0 closed loop */
	double warmup_s;         /* replies to requests sent (open loop: due) before this are not recorded */
	double duration_s;       /* measured seconds after the warmup; 0: no limit (then total must be set) */
	uint64_t total;          /* stop after this many recorded replies; 0: no limit */
	double timeout_s;        /* a connection with requests in flight and no byte for this long fails */
	bool progress;           /* a live line on stderr once a second */
	const bench_requests *req;
} bench_load_cfg;

typedef struct {
	char word[PROTO_SCAN_MAX_CODE + 1];
	uint64_t n;
} bench_err_count;

typedef struct {
	uint64_t requests;       /* replies recorded (OK and ERR) */
	uint64_t errors;         /* ERR among them */
	bench_err_count err[BENCH_MAX_ERR_CODES + 1];   /* by code word; the last may be "OTHER" */
	uint32_t nerr;
	uint64_t failures;       /* connections lost: closed, reset, malformed reply, timeout */
	uint64_t lost;           /* requests in flight on them */
	uint64_t replies;        /* every reply, the warmup's included (for CPU per reply) */
	/* Requests still in flight when the run ended (not counted anywhere),
	 * and how long the oldest of them had waited: a wait longer than the
	 * largest latency recorded means the figures flatter a stalling server. */
	uint64_t unanswered;
	uint64_t oldest_wait_ns;
	double seconds;          /* the measured time: from the end of the warmup to the last reply
	                            (total) or to the end of the duration */
	double cpu_seconds;      /* user + system CPU of this process during the run, warmup
	                            included; the kernel's loopback TCP work on sends is
	                            charged here too */
	bench_hist *hist;        /* latencies in ns, all threads; owned by the result */
	char fail_msg[BENCH_MAX_FAIL_MSGS][BENCH_FAIL_MSG_LEN];
	uint32_t nfail_msg;
	bool interrupted;        /* stopped by SIGINT or SIGTERM */
} bench_load_result;

/* Connects every connection, runs the load and fills *res (free it with
 * bench_load_result_free).  Returns 0, or -1 with a message in err when a
 * connection cannot be made or memory runs out (nothing was measured). */
int bench_load_run(const bench_load_cfg *cfg, bench_load_result *res, char *err, size_t errlen);

void bench_load_result_free(bench_load_result *res);

#endif
