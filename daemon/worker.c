/* worker.c — worker threads, their event bases and listeners (worker.h).
 *
 * Threading: each worker's base, listener, connections and cmd_ctx are
 * touched only by its own thread once it runs, except worker_stop, which
 * makes the worker's stop event active from another thread (libevent's
 * pthread locking, evthread_use_pthreads, makes that safe).  Shared between
 * workers: the config (read-only), the index holder (its own locks) and the
 * stats (atomics). */
#include "daemon/worker.h"

#include <event2/event.h>
#include <event2/listener.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon/commands.h"
#include "daemon/conn.h"
#include "daemon/log.h"

struct worker {
	int id;
	pthread_t thread;
	bool started;
	bool stopping;
	struct event_base *base;
	struct evconnlistener *listener;
	struct evconnlistener *unix_listener;  /* --unix, or NULL */
	struct event *stop_ev;      /* made active by worker_stop */
	struct event *deadline_ev;  /* SERVER_DRAIN_SECONDS after the stop */
	conn_env env;
	const server_config *cfg;
	server_stats *stats;
	int spare_fd;               /* given up to refuse connections when out of descriptors */
	time_t accept_logged;       /* when an accept error was last logged */
	unsigned long accept_unlogged;  /* accept errors since then, not logged */
	unsigned long accept_shed;      /* connections refused for want of descriptors since then */
};

/* Sends reply and closes.  What the client sent first is read away, so the
 * close does not turn into a reset that could destroy the reply unread. */
static void refuse(evutil_socket_t fd, const char *reply)
{
	char sink[4096];
	for (int i = 0; i < 16 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; i++)
		;
	ssize_t n = send(fd, reply, strlen(reply), MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)n;
	shutdown(fd, SHUT_WR);
	evutil_closesocket(fd);
}

static int open_spare(void)
{
	return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
	worker *w = arg;
	if (w->stopping) {
		evutil_closesocket(fd);
		return;
	}
	uint64_t n = atomic_fetch_add(&w->stats->conns_current, 1);
	if (n >= (uint64_t)w->cfg->max_conns) {
		atomic_fetch_sub(&w->stats->conns_current, 1);
		stat_add(&w->stats->conns_rejected, 1);
		char msg[96];
		snprintf(msg, sizeof msg, "ERR BUSY too many connections (limit %lld)\n", w->cfg->max_conns);
		refuse(fd, msg);
		return;
	}
	conn_start(&w->env, fd);
}

static void reenable_cb(evutil_socket_t fd, short what, void *arg)
{
	worker *w = arg;
	if (w->spare_fd < 0)
		w->spare_fd = open_spare();
	if (!w->stopping && w->listener)
		evconnlistener_enable(w->listener);
	if (!w->stopping && w->unix_listener)
		evconnlistener_enable(w->unix_listener);
}

/* Out of descriptors: the spare one makes room to accept the waiting
 * connections one at a time and refuse each with ERR BUSY, as --max-conns
 * would, rather than leave them unanswered in the listen queue.  Returns
 * how many were refused. */
static unsigned shed(worker *w, struct evconnlistener *l)
{
	if (w->spare_fd < 0)
		return 0;
	close(w->spare_fd);
	unsigned n = 0;
	while (n < SERVER_SHED_BATCH) {
		int fd = accept4(evconnlistener_get_fd(l), NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			break;
		refuse(fd, "ERR BUSY too many connections (out of descriptors)\n");
		n++;
	}
	/* another thread may take the descriptor meanwhile: then reenable_cb retries */
	w->spare_fd = open_spare();
	stat_add(&w->stats->conns_rejected, n);
	return n;
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	worker *w = arg;
	int e = EVUTIL_SOCKET_ERROR();
	unsigned refused = e == EMFILE || e == ENFILE ? shed(w, l) : 0;
	w->accept_shed += refused;
	if (log_due(&w->accept_logged, SERVER_ACCEPT_LOG_SECONDS)) {
		log_msg(LOGL_ERROR, "worker %d: accept: %s (%lu more such errors and %lu connections "
		        "refused with ERR BUSY since the last report)", w->id,
		        evutil_socket_error_to_string(e), w->accept_unlogged, w->accept_shed);
		w->accept_unlogged = 0;
		w->accept_shed = 0;
	} else {
		w->accept_unlogged++;
	}
	if (refused)
		return;   /* the queue moved: keep accepting */
	/* out of descriptors or memory: pause accepting a moment rather than spin */
	if (w->listener)
		evconnlistener_disable(w->listener);
	if (w->unix_listener)
		evconnlistener_disable(w->unix_listener);
	struct timeval tv = { 0, 100000 };
	event_base_once(w->base, -1, EV_TIMEOUT, reenable_cb, w, &tv);
}

/* Last connection gone during a stop: the thread may end. */
static void on_conn_free(void *arg)
{
	worker *w = arg;
	if (w->stopping && w->env.count == 0)
		event_base_loopexit(w->base, NULL);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	worker *w = arg;
	if (w->env.count)
		log_msg(LOGL_WARN, "worker %d: %zu connection(s) still flushing after %d s; closing them",
		        w->id, w->env.count, SERVER_DRAIN_SECONDS);
	event_base_loopbreak(w->base);
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
	worker *w = arg;
	if (w->stopping)
		return;
	w->stopping = true;
	if (w->listener) {
		evconnlistener_free(w->listener);
		w->listener = NULL;
	}
	if (w->unix_listener) {
		evconnlistener_free(w->unix_listener);
		w->unix_listener = NULL;
	}
	conn_close_all(&w->env);
	if (w->env.count == 0) {
		event_base_loopexit(w->base, NULL);
		return;
	}
	struct timeval tv = { SERVER_DRAIN_SECONDS, 0 };
	evtimer_add(w->deadline_ev, &tv);
}

static void *worker_main(void *arg)
{
	worker *w = arg;
	event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

static void worker_free(worker *w)
{
	if (!w)
		return;
	conn_free_all(&w->env);
	if (w->listener)
		evconnlistener_free(w->listener);
	if (w->unix_listener)
		evconnlistener_free(w->unix_listener);
	if (w->stop_ev)
		event_free(w->stop_ev);
	if (w->deadline_ev)
		event_free(w->deadline_ev);
	cmd_ctx_free(w->env.cmds);
	proto_buf_free(&w->env.reply);
	if (w->spare_fd >= 0)
		close(w->spare_fd);
	if (w->base)
		event_base_free(w->base);
	free(w);
}

worker *worker_new(int id, const struct sockaddr *addr, socklen_t addrlen, int unix_fd,
                   const server_config *cfg, index_holder *holder, server_stats *stats,
                   char *err, size_t errlen)
{
	worker *w = calloc(1, sizeof *w);
	if (!w) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->id = id;
	w->spare_fd = open_spare();
	w->cfg = cfg;
	w->stats = stats;
	proto_buf_init(&w->env.reply);
	w->base = event_base_new();
	if (!w->base)
		goto nomem;
	w->env.base = w->base;
	w->env.cfg = cfg;
	w->env.stats = stats;
	w->env.on_free = on_conn_free;
	w->env.arg = w;
	w->env.cmds = cmd_ctx_new(holder, stats, cfg);
	w->env.out.cap = (size_t)(cfg->max_output_total / cfg->threads);
	w->env.out.gauge = &stats->output_pending;
	w->env.in.cap = (size_t)(cfg->max_input_total / cfg->threads);
	w->stop_ev = event_new(w->base, -1, 0, stop_cb, w);
	w->deadline_ev = evtimer_new(w->base, deadline_cb, w);
	if (!w->env.cmds || !w->stop_ev || !w->deadline_ev)
		goto nomem;
	w->listener = evconnlistener_new_bind(w->base, accept_cb, w,
	                                      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC |
	                                      LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT,
	                                      SERVER_BACKLOG, addr, (int)addrlen);
	if (!w->listener) {
		snprintf(err, errlen, "cannot listen: %s",
		         evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		worker_free(w);
		return NULL;
	}
	evconnlistener_set_error_cb(w->listener, accept_error_cb);
	if (unix_fd >= 0) {
		int fd = fcntl(unix_fd, F_DUPFD_CLOEXEC, 0);
		/* backlog -1: the socket is listening already */
		w->unix_listener = fd < 0 ? NULL
		                          : evconnlistener_new(w->base, accept_cb, w,
		                                               LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
		                                               -1, fd);
		if (!w->unix_listener) {
			if (fd >= 0)
				close(fd);
			snprintf(err, errlen, "cannot listen on the Unix socket: %s", strerror(errno));
			worker_free(w);
			return NULL;
		}
		evconnlistener_set_error_cb(w->unix_listener, accept_error_cb);
	}
	return w;
nomem:
	snprintf(err, errlen, "out of memory");
	worker_free(w);
	return NULL;
}

int worker_local_addr(worker *w, struct sockaddr_storage *ss, socklen_t *len)
{
	*len = sizeof *ss;
	return getsockname(evconnlistener_get_fd(w->listener), (struct sockaddr *)ss, len);
}

int worker_start(worker *w)
{
	if (pthread_create(&w->thread, NULL, worker_main, w))
		return -1;
	w->started = true;
	return 0;
}

void worker_stop(worker *w)
{
	event_active(w->stop_ev, EV_TIMEOUT, 0);
}

void worker_join_free(worker *w)
{
	if (w && w->started)
		pthread_join(w->thread, NULL);
	worker_free(w);
}
