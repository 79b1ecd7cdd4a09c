/* bench_load.c — the load generator of bench_load.h.  Built to cost the
 * machine little per request, since it shares the cores with the server it
 * measures: request lines are copied, never formatted; every ready request of
 * a connection goes out in one send(); a read takes whatever arrived for a
 * connection and proto_scan frames the replies in place; the clock is read
 * once per read and once per send, not per reply.
 *
 * Timing.  Closed loop: a request's latency runs from the send() that carried
 * it (all requests of one batch share that stamp) to the read() that
 * completed its reply.  Open loop: connection i of c sends its k-th request at
 * begin + (k + i/c) * c/rate, the phases spread so the connections do not
 * fire together, and the latency runs from that intended time, so a server
 * (or a full pipeline) that holds requests back is charged for the wait
 * rather than hiding it (no coordinated omission).  Either way the stamps of
 * the requests in flight sit in a ring of `pipeline` slots per connection,
 * and replies come back in request order, so the oldest stamp is the one. */
#include "bench/bench_load.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Descriptors besides the connections: stdio, one epoll per thread, spares. */
#define FD_SPARE (BENCH_MAX_THREADS + 16)

typedef struct worker worker;
typedef struct run run;

typedef struct {
	worker *w;
	int fd;
	uint32_t index;          /* 0..conns-1 over all threads */
	size_t next_q;           /* the request line sent next */
	proto_scan scan;         /* framing of the reply stream */
	uint64_t *ring;          /* `pipeline` slots: the stamp (ns) of each request in flight */
	uint32_t head, count;    /* the oldest slot, and how many are in flight */
	char *out;               /* queued but not yet sent: out[ooff..olen); room for a full pipeline */
	size_t ooff, olen;
	bool pollout;            /* waiting for EPOLLOUT (the socket was full) */
	bool dead;
	uint64_t last_progress;  /* ns: last byte read, or the send that ended an idle spell */
	uint64_t k;              /* open loop: requests scheduled so far */
	uint64_t due;            /* open loop: intended time of request k; UINT64_MAX: no more */
} conn;

struct worker {
	run *r;
	pthread_t th;
	bool started;
	int ep;
	conn *conns;
	uint32_t nconns, live;
	uint64_t inflight;       /* requests in flight on its live connections */
	char *rbuf;              /* BENCH_READ_BUF bytes, shared by its connections */
	bench_hist *hist;
	uint64_t requests, errors, failures, lost;
	uint64_t replies;        /* all of them, warmup included */
	uint64_t unanswered;     /* in flight on live connections when the loop ended */
	uint64_t oldest_wait_ns; /* the longest any of those had waited */
	bench_err_count err[BENCH_MAX_ERR_CODES + 1];
	uint32_t nerr;
	uint64_t end_ns;         /* when its loop ended */
	/* copies of the counters for the progress line, stored once per wake-up */
	_Atomic uint64_t pub_requests, pub_errors, pub_failures;
};

struct run {
	const bench_load_cfg *cfg;
	bench_load_result *res;
	uint64_t t_begin;        /* ns: the threads start */
	uint64_t t_measure;      /* requests stamped from here on are recorded */
	uint64_t t_end;          /* replies from here on are not; UINT64_MAX: no duration */
	uint64_t timeout_ns;
	double interval_ns;      /* open loop: between two requests of one connection */
	bool budgeted;           /* cfg->total given */
	_Atomic int64_t budget;  /* measured requests still to send */
	_Atomic int running;     /* threads not yet finished */
	pthread_mutex_t mu;      /* guards res->fail_msg */
	worker *workers;
	uint32_t nworkers;
};

/* Set by SIGINT/SIGTERM during a run: every thread stops within a tick. */
static _Atomic bool stop_requested;
/* epoll_pwait2 (nanosecond timeouts) is missing before Linux 5.11. */
static _Atomic bool no_pwait2;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_stop_signal(int sig)
{
	(void)sig;
	atomic_store(&stop_requested, true);
}

static bool stopping(void)
{
	return atomic_load_explicit(&stop_requested, memory_order_relaxed);
}

static void add_err(bench_err_count *err, uint32_t *nerr, const char *word, uint64_t n)
{
	for (uint32_t i = 0; i < *nerr; i++)
		if (!strcmp(err[i].word, word)) {
			err[i].n += n;
			return;
		}
	if (*nerr == BENCH_MAX_ERR_CODES) {
		snprintf(err[*nerr].word, sizeof err[0].word, "OTHER");
		err[*nerr].n = n;
		++*nerr;
		return;
	}
	if (*nerr > BENCH_MAX_ERR_CODES) {   /* "OTHER" is the last one */
		err[BENCH_MAX_ERR_CODES].n += n;
		return;
	}
	snprintf(err[*nerr].word, sizeof err[0].word, "%s", word);
	err[*nerr].n = n;
	++*nerr;
}

/* ---- one connection ------------------------------------------------------------ */

/* Marks the connection lost, counts it and keeps the first messages.  The
 * loop skips it from then on (its fd is closed, which also leaves epoll). */
__attribute__((format(printf, 2, 3)))
static void conn_fail(conn *c, const char *fmt, ...)
{
	if (c->dead)
		return;
	worker *w = c->w;
	run *r = w->r;
	char msg[BENCH_FAIL_MSG_LEN / 2];   /* the rest is the prefix and suffix below */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	c->dead = true;
	close(c->fd);
	c->fd = -1;
	w->live--;
	w->inflight -= c->count;
	w->failures++;
	w->lost += c->count;
	pthread_mutex_lock(&r->mu);
	bench_load_result *res = r->res;
	if (res->nfail_msg < BENCH_MAX_FAIL_MSGS)
		snprintf(res->fail_msg[res->nfail_msg++], BENCH_FAIL_MSG_LEN,
		         "connection %u: %s (%u requests in flight)", c->index, msg, c->count);
	pthread_mutex_unlock(&r->mu);
	c->count = 0;
}

static void conn_want_out(conn *c, bool out)
{
	struct epoll_event ev = { .events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c };
	if (epoll_ctl(c->w->ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
		conn_fail(c, "epoll_ctl: %s", strerror(errno));
		return;
	}
	c->pollout = out;
}

static void conn_flush(conn *c)
{
	while (c->ooff < c->olen) {
		ssize_t n = send(c->fd, c->out + c->ooff, c->olen - c->ooff, MSG_NOSIGNAL);
		if (n > 0) {
			c->ooff += (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!c->pollout)
				conn_want_out(c, true);
			return;
		} else {
			conn_fail(c, "write: %s", n < 0 ? strerror(errno) : "wrote nothing");
			return;
		}
	}
	c->ooff = c->olen = 0;
	if (c->pollout)
		conn_want_out(c, false);
}

/* Puts the next request line in the output and its stamp in the ring; the
 * caller makes sure a slot is free (count < pipeline), which also makes
 * room in `out`: it holds at most the requests in flight. */
static void conn_queue(conn *c, uint64_t stamp, uint64_t now)
{
	const bench_load_cfg *cfg = c->w->r->cfg;
	const bench_requests *rq = cfg->req;
	if (c->ooff) {
		memmove(c->out, c->out + c->ooff, c->olen - c->ooff);
		c->olen -= c->ooff;
		c->ooff = 0;
	}
	uint32_t len = rq->len[c->next_q];
	memcpy(c->out + c->olen, rq->buf + rq->off[c->next_q], len);
	c->olen += len;
	if (++c->next_q == rq->n)
		c->next_q = 0;
	uint32_t slot = c->head + c->count;
	if (slot >= cfg->pipeline)
		slot -= cfg->pipeline;
	c->ring[slot] = stamp;
	/* The timeout measures waiting for the server, not idle time. */
	if (c->count++ == 0)
		c->last_progress = now;
	c->w->inflight++;
}

/* Claims up to `want` of the -n requests; all of them when there is no -n. */
static uint32_t take_budget(run *r, uint32_t want)
{
	if (!r->budgeted)
		return want;
	int64_t cur = atomic_load_explicit(&r->budget, memory_order_relaxed);
	while (cur > 0) {
		int64_t got = cur < (int64_t)want ? cur : (int64_t)want;
		if (atomic_compare_exchange_weak_explicit(&r->budget, &cur, cur - got,
		                                          memory_order_relaxed, memory_order_relaxed))
			return (uint32_t)got;
	}
	return 0;
}

/* Closed loop: fills every free pipeline slot and sends them together. */
static void conn_fill(conn *c)
{
	run *r = c->w->r;
	uint32_t want = r->cfg->pipeline - c->count;
	if (!want)
		return;
	uint64_t now = now_ns();
	if (now >= r->t_end || stopping())
		return;
	if (now >= r->t_measure)   /* warmup requests are not counted against -n */
		want = take_budget(r, want);
	for (uint32_t i = 0; i < want; i++)
		conn_queue(c, now, now);
	if (want && !c->pollout)
		conn_flush(c);
}

static uint64_t due_time(const run *r, const conn *c, uint64_t k)
{
	double phase = (double)c->index / (double)r->cfg->conns;
	return r->t_begin + (uint64_t)(((double)k + phase) * r->interval_ns);
}

/* Open loop: sends every request whose time has come, while slots are free;
 * the others wait for a reply, their latency running from their due time. */
static void conn_send_due(conn *c, uint64_t now)
{
	run *r = c->w->r;
	bool queued = false;
	while (c->count < r->cfg->pipeline && c->due <= now) {
		if (c->due >= r->t_measure && !take_budget(r, 1)) {
			c->due = UINT64_MAX;
			break;
		}
		queued = true;
		conn_queue(c, c->due, now);
		c->due = due_time(r, c, ++c->k);
	}
	if (queued && !c->pollout)
		conn_flush(c);
}

/* Frames the replies in p[0..n), read at time t, and records each. */
static void conn_replies(conn *c, const char *p, size_t n, uint64_t t)
{
	worker *w = c->w;
	run *r = w->r;
	uint32_t pipeline = r->cfg->pipeline;
	bool in_time = t < r->t_end;
	while (n) {
		proto_scan_reply rep;
		ssize_t k = proto_scan_feed(&c->scan, p, n, &rep);
		if (k < 0) {
			if (rep.result == PROTO_SCAN_TOOLONG)
				conn_fail(c, "a status line over %d bytes", PROTO_SCAN_MAX_STATUS);
			else
				conn_fail(c, "a malformed status line");
			return;
		}
		p += k;
		n -= (size_t)k;
		if (rep.result != PROTO_SCAN_REPLY)
			break;
		if (!c->count) {
			conn_fail(c, "a reply to no request");
			return;
		}
		uint64_t stamp = c->ring[c->head];
		if (++c->head == pipeline)
			c->head = 0;
		c->count--;
		w->inflight--;
		w->replies++;
		if (stamp >= r->t_measure && in_time) {
			bench_hist_record(w->hist, t > stamp ? t - stamp : 0);
			w->requests++;
			if (!rep.ok) {
				w->errors++;
				add_err(w->err, &w->nerr, rep.code_word, 1);
			}
		}
	}
}

static void conn_read(conn *c)
{
	worker *w = c->w;
	for (int i = 0; i < BENCH_READS_PER_EVENT; i++) {
		ssize_t n = recv(c->fd, w->rbuf, BENCH_READ_BUF, 0);
		if (n > 0) {
			uint64_t t = now_ns();
			c->last_progress = t;
			conn_replies(c, w->rbuf, (size_t)n, t);
			/* a short read emptied the socket: another would only say EAGAIN */
			if (c->dead || (size_t)n < BENCH_READ_BUF)
				break;
		} else if (n == 0) {
			conn_fail(c, "the server closed the connection");
			return;
		} else if (errno == EINTR) {
			continue;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			break;
		} else {
			conn_fail(c, "read: %s", strerror(errno));
			return;
		}
	}
	if (c->dead)
		return;
	if (w->r->cfg->rate > 0)
		conn_send_due(c, now_ns());
	else
		conn_fill(c);
}

/* ---- one thread -------------------------------------------------------------- */

/* Waits at most wait_ns: the number of events, or -1 on an epoll error. */
static int wait_events(int ep, struct epoll_event *ev, uint64_t wait_ns)
{
	int n;
	if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
		struct timespec ts = { .tv_sec = (time_t)(wait_ns / 1000000000u),
		                       .tv_nsec = (long)(wait_ns % 1000000000u) };
		n = epoll_pwait2(ep, ev, BENCH_MAX_EVENTS, &ts, NULL);
		if (n >= 0 || errno != ENOSYS)
			return n < 0 && errno == EINTR ? 0 : n;
		atomic_store(&no_pwait2, true);
	}
	/* Milliseconds, rounded up so that no request goes out before its time. */
	n = epoll_wait(ep, ev, BENCH_MAX_EVENTS, (int)((wait_ns + 999999u) / 1000000u));
	return n < 0 && errno == EINTR ? 0 : n;
}

static void publish(worker *w)
{
	atomic_store_explicit(&w->pub_requests, w->requests, memory_order_relaxed);
	atomic_store_explicit(&w->pub_errors, w->errors, memory_order_relaxed);
	atomic_store_explicit(&w->pub_failures, w->failures, memory_order_relaxed);
}

static void check_timeouts(worker *w, uint64_t now)
{
	const run *r = w->r;
	for (uint32_t i = 0; i < w->nconns; i++) {
		conn *c = &w->conns[i];
		if (!c->dead && c->count && now > c->last_progress &&
		    now - c->last_progress > r->timeout_ns)
			conn_fail(c, "no reply for %.1f s", r->cfg->timeout_s);
	}
}

static void *worker_main(void *arg)
{
	worker *w = arg;
	run *r = w->r;
	bool open_loop = r->cfg->rate > 0;
	struct epoll_event ev[BENCH_MAX_EVENTS];
	uint64_t last_check = now_ns();
	if (!open_loop)
		for (uint32_t i = 0; i < w->nconns; i++)
			conn_fill(&w->conns[i]);
	for (;;) {
		uint64_t now = now_ns();
		if (now >= r->t_end || stopping() || !w->live)
			break;
		/* -n: every request is sent (by some thread) and ours are answered */
		if (r->budgeted && !w->inflight &&
		    atomic_load_explicit(&r->budget, memory_order_relaxed) <= 0)
			break;
		if (now - last_check >= BENCH_TICK_NS) {
			check_timeouts(w, now);
			last_check = now;
		}
		uint64_t wake = now + BENCH_TICK_NS;
		if (wake > r->t_end)
			wake = r->t_end;
		if (open_loop)
			for (uint32_t i = 0; i < w->nconns; i++) {
				conn *c = &w->conns[i];
				if (c->dead)
					continue;
				conn_send_due(c, now);
				if (!c->dead && c->count < r->cfg->pipeline && c->due < wake)
					wake = c->due;
			}
		int n = wait_events(w->ep, ev, wake > now ? wake - now : 0);
		if (n < 0) {
			char msg[64];
			snprintf(msg, sizeof msg, "epoll: %s", strerror(errno));
			for (uint32_t i = 0; i < w->nconns; i++)
				conn_fail(&w->conns[i], "%s", msg);
			break;
		}
		for (int i = 0; i < n; i++) {
			conn *c = ev[i].data.ptr;
			if (!c->dead && (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				conn_read(c);
			if (!c->dead && (ev[i].events & EPOLLOUT))
				conn_flush(c);
		}
		publish(w);
	}
	w->end_ns = now_ns();
	for (uint32_t i = 0; i < w->nconns; i++) {
		const conn *c = &w->conns[i];
		if (c->dead || !c->count)
			continue;
		w->unanswered += c->count;
		uint64_t oldest = c->ring[c->head];
		if (w->end_ns > oldest && w->end_ns - oldest > w->oldest_wait_ns)
			w->oldest_wait_ns = w->end_ns - oldest;
	}
	publish(w);
	atomic_fetch_sub(&r->running, 1);
	return NULL;
}

/* ---- connecting ------------------------------------------------------------------ */

typedef struct {
	struct sockaddr_storage sa;
	socklen_t len;
	bool tcp;
} target;

/* One connected non-blocking socket to t: 0 and *fd, or an errno value. */
static int connect_to(const target *t, int *fd_out)
{
	int fd = socket(t->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | (t->tcp ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0)
		return errno;
	int e = 0;
	if (!t->tcp) {
		/* a local socket answers at once; blocking avoids EAGAIN retries */
		if (connect(fd, (const struct sockaddr *)&t->sa, t->len) != 0)
			e = errno;
		else if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
			e = errno;
	} else if (connect(fd, (const struct sockaddr *)&t->sa, t->len) != 0) {
		if (errno != EINPROGRESS && errno != EINTR) {
			e = errno;
		} else {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			int n;
			do
				n = poll(&p, 1, BENCH_CONNECT_TIMEOUT_MS);
			while (n < 0 && errno == EINTR);
			socklen_t sl = sizeof e;
			if (n == 0)
				e = ETIMEDOUT;
			else if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) != 0)
				e = errno;
		}
	}
	if (e) {
		close(fd);
		return e;
	}
	if (t->tcp) {
		int one = 1;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
	*fd_out = fd;
	return 0;
}

static const char *hint(int e)
{
	return e == ECONNREFUSED || e == ENOENT ? " (is sousuo-server running?)" : "";
}

/* Finds the address (the first of the host's that accepts) and makes the
 * first connection on it: 0, or -1 with a message. */
static int resolve(const bench_load_cfg *cfg, target *t, int *fd, char *err, size_t errlen)
{
	memset(t, 0, sizeof *t);
	if (cfg->host[0] == '/') {
		struct sockaddr_un *sun = (struct sockaddr_un *)&t->sa;
		if (strlen(cfg->host) >= sizeof sun->sun_path) {
			snprintf(err, errlen, "unix socket path too long: %s", cfg->host);
			return -1;
		}
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, cfg->host, strlen(cfg->host) + 1);
		t->len = sizeof *sun;
		int e = connect_to(t, fd);
		if (e) {
			snprintf(err, errlen, "cannot connect to %s: %s%s", cfg->host, strerror(e), hint(e));
			return -1;
		}
		return 0;
	}
	char port[16];
	snprintf(port, sizeof port, "%d", cfg->port);
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
	                          .ai_flags = AI_NUMERICSERV }, *res = NULL;
	int g = getaddrinfo(cfg->host, port, &hints, &res);
	if (g) {
		snprintf(err, errlen, "%s: %s", cfg->host, gai_strerror(g));
		return -1;
	}
	int e = EHOSTUNREACH;
	t->tcp = true;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof t->sa)
			continue;
		memcpy(&t->sa, ai->ai_addr, ai->ai_addrlen);
		t->len = ai->ai_addrlen;
		if ((e = connect_to(t, fd)) == 0)
			break;
	}
	freeaddrinfo(res);
	if (e) {
		snprintf(err, errlen, "cannot connect to %s:%d: %s%s", cfg->host, cfg->port,
		         strerror(e), hint(e));
		return -1;
	}
	return 0;
}

/* Raises the soft open-file limit to fit the connections: 0 or -1. */
static int fit_fd_limit(uint32_t conns, char *err, size_t errlen)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)conns + FD_SPARE;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need)
		return 0;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
		snprintf(err, errlen, "%u connections need %llu open files, the limit is %llu "
		         "(ulimit -n)", conns, (unsigned long long)need, (unsigned long long)rl.rlim_max);
		return -1;
	}
	rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
		snprintf(err, errlen, "setrlimit(RLIMIT_NOFILE, %llu): %s", (unsigned long long)need,
		         strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- the run ---------------------------------------------------------------------- */

static double cpu_now(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void progress_line(run *r, uint64_t now, uint64_t *prev_req, uint64_t *prev_t)
{
	uint64_t req = 0, errs = 0, fails = 0;
	for (uint32_t i = 0; i < r->nworkers; i++) {
		req += atomic_load_explicit(&r->workers[i].pub_requests, memory_order_relaxed);
		errs += atomic_load_explicit(&r->workers[i].pub_errors, memory_order_relaxed);
		fails += atomic_load_explicit(&r->workers[i].pub_failures, memory_order_relaxed);
	}
	double dt = (double)(now - *prev_t) / 1e9;
	fprintf(stderr, "\r%-6s %7.1f s %12llu requests %10.0f req/s %8llu errors %5llu failures ",
	        now < r->t_measure ? "warmup" : "", (double)(now - r->t_begin) / 1e9,
	        (unsigned long long)req, dt > 0 ? (double)(req - *prev_req) / dt : 0.0,
	        (unsigned long long)errs, (unsigned long long)fails);
	*prev_req = req;
	*prev_t = now;
}

/* The main thread while the workers run: a progress line, or nothing. */
static void watch(run *r)
{
	if (!r->cfg->progress)
		return;
	uint64_t next = r->t_begin + BENCH_PROGRESS_NS, prev_req = 0, prev_t = r->t_begin;
	while (atomic_load(&r->running) > 0) {
		uint64_t now = now_ns(), wait = next > now ? next - now : 0;
		if (wait > BENCH_TICK_NS)
			wait = BENCH_TICK_NS;
		struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)wait };
		nanosleep(&ts, NULL);
		now = now_ns();
		if (now >= next && atomic_load(&r->running) > 0) {
			progress_line(r, now, &prev_req, &prev_t);
			next += BENCH_PROGRESS_NS;
		}
	}
	if (next > r->t_begin + BENCH_PROGRESS_NS)   /* a line was drawn: erase it */
		fprintf(stderr, "\r%90s\r", "");
}

static void free_workers(run *r)
{
	for (uint32_t i = 0; r->workers && i < r->nworkers; i++) {
		worker *w = &r->workers[i];
		for (uint32_t j = 0; w->conns && j < w->nconns; j++) {
			conn *c = &w->conns[j];
			if (c->fd >= 0)
				close(c->fd);
			free(c->ring);
			free(c->out);
		}
		if (w->ep >= 0)
			close(w->ep);
		free(w->conns);
		free(w->rbuf);
		free(w->hist);
	}
	free(r->workers);
}

/* Allocates the threads' state and connects every connection: 0 or -1. */
static int setup(run *r, char *err, size_t errlen)
{
	const bench_load_cfg *cfg = r->cfg;
	r->nworkers = cfg->threads < cfg->conns ? cfg->threads : cfg->conns;
	r->workers = calloc(r->nworkers, sizeof *r->workers);
	if (!r->workers)
		goto nomem;
	for (uint32_t i = 0; i < r->nworkers; i++)
		r->workers[i].ep = -1;   /* free_workers closes only what was opened */
	for (uint32_t i = 0; i < r->nworkers; i++) {
		worker *w = &r->workers[i];
		w->r = r;
		/* connection j goes to thread j % threads: round-robin */
		w->nconns = cfg->conns / r->nworkers + (i < cfg->conns % r->nworkers);
		w->conns = calloc(w->nconns, sizeof *w->conns);
		if (!w->conns)
			goto nomem;
		for (uint32_t j = 0; j < w->nconns; j++)
			w->conns[j].fd = -1;
		w->rbuf = malloc(BENCH_READ_BUF);
		w->hist = malloc(sizeof *w->hist);
		if (!w->rbuf || !w->hist)
			goto nomem;
		bench_hist_init(w->hist);
		if ((w->ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
			snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
			return -1;
		}
	}
	target t;
	int first_fd = -1;
	if (fit_fd_limit(cfg->conns, err, errlen) || resolve(cfg, &t, &first_fd, err, errlen))
		return -1;
	for (uint32_t i = 0; i < cfg->conns; i++) {
		worker *w = &r->workers[i % r->nworkers];
		conn *c = &w->conns[i / r->nworkers];
		c->w = w;
		c->index = i;
		c->next_q = (size_t)((uint64_t)i * cfg->req->n / cfg->conns);
		proto_scan_init(&c->scan);
		c->ring = calloc(cfg->pipeline, sizeof *c->ring);
		c->out = malloc((size_t)cfg->pipeline * cfg->req->max_len);
		if (!c->ring || !c->out) {
			if (i == 0)
				close(first_fd);
			goto nomem;
		}
		int e = 0;
		if (i == 0)
			c->fd = first_fd;
		else if ((e = connect_to(&t, &c->fd)) != 0) {
			snprintf(err, errlen, "connection %u of %u: cannot connect to %s: %s", i + 1,
			         cfg->conns, cfg->host, strerror(e));
			return -1;
		}
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
		if (epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
			snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
			return -1;
		}
		w->live++;
	}
	return 0;
nomem:
	snprintf(err, errlen, "out of memory for %u connections x pipeline %u", cfg->conns,
	         cfg->pipeline);
	return -1;
}

static void collect(run *r, bench_load_result *res)
{
	uint64_t end = r->t_begin;
	for (uint32_t i = 0; i < r->nworkers; i++) {
		worker *w = &r->workers[i];
		bench_hist_merge(res->hist, w->hist);
		res->requests += w->requests;
		res->errors += w->errors;
		res->failures += w->failures;
		res->lost += w->lost;
		res->replies += w->replies;
		res->unanswered += w->unanswered;
		if (w->oldest_wait_ns > res->oldest_wait_ns)
			res->oldest_wait_ns = w->oldest_wait_ns;
		for (uint32_t k = 0; k < w->nerr; k++)
			add_err(res->err, &res->nerr, w->err[k].word, w->err[k].n);
		if (w->end_ns > end)
			end = w->end_ns;
	}
	if (end > r->t_end)
		end = r->t_end;
	res->seconds = end > r->t_measure ? (double)(end - r->t_measure) / 1e9 : 0;
}

int bench_load_run(const bench_load_cfg *cfg, bench_load_result *res, char *err, size_t errlen)
{
	memset(res, 0, sizeof *res);
	if (!cfg->conns || cfg->conns > BENCH_MAX_CONNS || !cfg->pipeline ||
	    cfg->pipeline > BENCH_MAX_PIPELINE || !cfg->threads || cfg->threads > BENCH_MAX_THREADS ||
	    !cfg->req || !cfg->req->n || (!cfg->duration_s && !cfg->total)) {
		snprintf(err, errlen, "bad load settings");
		return -1;
	}
	res->hist = malloc(sizeof *res->hist);
	if (!res->hist) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	bench_hist_init(res->hist);
	run r = { .cfg = cfg, .res = res };
	pthread_mutex_init(&r.mu, NULL);
	int rc = -1;
	if (setup(&r, err, errlen))
		goto out;

	struct sigaction sa = { .sa_handler = on_stop_signal }, old_int, old_term;
	sigemptyset(&sa.sa_mask);
	atomic_store(&stop_requested, false);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);

	r.timeout_ns = (uint64_t)(cfg->timeout_s * 1e9);
	if (cfg->rate > 0)
		r.interval_ns = 1e9 * cfg->conns / cfg->rate;
	r.budgeted = cfg->total > 0;
	atomic_store(&r.budget, (int64_t)cfg->total);
	atomic_store(&r.running, (int)r.nworkers);
	double cpu0 = cpu_now();
	r.t_begin = now_ns();
	r.t_measure = r.t_begin + (uint64_t)(cfg->warmup_s * 1e9);
	r.t_end = cfg->duration_s > 0 ? r.t_measure + (uint64_t)(cfg->duration_s * 1e9) : UINT64_MAX;
	for (uint32_t i = 0; i < r.nworkers; i++) {
		worker *w = &r.workers[i];
		for (uint32_t j = 0; j < w->nconns; j++)
			w->conns[j].due = due_time(&r, &w->conns[j], 0);
		int e = pthread_create(&w->th, NULL, worker_main, w);
		if (e) {
			snprintf(err, errlen, "pthread_create: %s", strerror(e));
			atomic_store(&stop_requested, true);
			atomic_fetch_sub(&r.running, (int)(r.nworkers - i));
			break;
		}
		w->started = true;
	}
	watch(&r);
	bool all_started = true;
	for (uint32_t i = 0; i < r.nworkers; i++) {
		if (r.workers[i].started)
			pthread_join(r.workers[i].th, NULL);
		else
			all_started = false;
	}
	res->cpu_seconds = cpu_now() - cpu0;
	res->interrupted = all_started && atomic_load(&stop_requested);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	if (all_started) {
		collect(&r, res);
		rc = 0;
	}
out:
	free_workers(&r);
	pthread_mutex_destroy(&r.mu);
	if (rc) {
		free(res->hist);
		res->hist = NULL;
	}
	return rc;
}

void bench_load_result_free(bench_load_result *res)
{
	free(res->hist);
	res->hist = NULL;
}
