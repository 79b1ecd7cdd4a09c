/* server_main.c — sousuo-server: parses the options (config.h), opens the
 * index (index_holder.h), starts the workers (worker.h) and turns signals
 * into reloads (SIGHUP) and a draining stop (SIGTERM, SIGINT).  The main
 * thread runs only its own small event base for the signals. */
#include <event2/event.h>
#include <event2/thread.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "daemon/config.h"
#include "daemon/http.h"
#include "daemon/index_holder.h"
#include "daemon/log.h"
#include "daemon/stats.h"
#include "daemon/worker.h"

typedef struct {
	server_config cfg;
	server_stats stats;
	index_holder *holder;
	worker **workers;
	int nworkers;
	http_server *http;
	struct event_base *base;
	int unix_fd;               /* --unix listening socket, or -1 */
} server;

/* The --unix socket: a stale socket file left by a server that died is
 * replaced, one that a live server answers on is not, and nothing that is
 * not a socket is ever removed. */
static int open_unix(const char *path)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa.sun_path) {
		log_msg(LOGL_ERROR, "--unix %s: path longer than %zu bytes", path, sizeof sa.sun_path - 1);
		return -1;
	}
	strcpy(sa.sun_path, path);
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_msg(LOGL_ERROR, "--unix %s: exists and is not a socket", path);
			return -1;
		}
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0;
		if (probe >= 0)
			close(probe);
		if (live) {
			log_msg(LOGL_ERROR, "--unix %s: another server is listening there", path);
			return -1;
		}
		unlink(path);
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, SERVER_BACKLOG)) {
		log_msg(LOGL_ERROR, "--unix %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Every connection holds a descriptor: raises the soft RLIMIT_NOFILE to fit
 * --max-conns and the descriptors that are not connections, as far as the
 * hard limit allows, and lowers --max-conns to what fits past that, so that
 * a connection over the limit is refused with ERR BUSY instead of waiting
 * unaccepted.  -1 when not even one connection fits. */
static int fit_fd_limit(server_config *c)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl)) {
		log_msg(LOGL_WARN, "getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
		return 0;
	}
	rlim_t reserve = SERVER_FD_RESERVE + (rlim_t)c->threads * SERVER_FD_PER_THREAD +
	                 (c->http_port >= 0 ? SERVER_HTTP_FD_RESERVE : 0);
	rlim_t need = (rlim_t)c->max_conns + reserve;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		rlim_t was = rl.rlim_cur;
		rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need ? rl.rlim_max : need;
		if (setrlimit(RLIMIT_NOFILE, &rl) || getrlimit(RLIMIT_NOFILE, &rl))
			rl.rlim_cur = was;
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
		return 0;
	if (rl.rlim_cur <= reserve) {
		log_msg(LOGL_ERROR, "RLIMIT_NOFILE is %llu: no descriptors left for connections once %llu "
		        "are kept for the server itself; raise it (ulimit -n)",
		        (unsigned long long)rl.rlim_cur, (unsigned long long)reserve);
		return -1;
	}
	log_msg(LOGL_WARN, "--max-conns lowered from %lld to %llu to fit RLIMIT_NOFILE %llu (the hard "
	        "limit; %llu descriptors kept for the server itself); raise it with ulimit -n",
	        c->max_conns, (unsigned long long)(rl.rlim_cur - reserve),
	        (unsigned long long)rl.rlim_cur, (unsigned long long)reserve);
	c->max_conns = (long long)(rl.rlim_cur - reserve);
	return 0;
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	server *s = arg;
	log_msg(LOGL_INFO, "stopping (%s): no new connections, flushing replies (at most %d s)",
	        sig == SIGINT ? "SIGINT" : "SIGTERM", SERVER_DRAIN_SECONDS);
	for (int i = 0; i < s->nworkers; i++)
		worker_stop(s->workers[i]);
	if (s->http)
		http_stop(s->http);
	event_base_loopexit(s->base, NULL);
}

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
	server *s = arg;
	char err[512];
	uint32_t ndocs;
	log_msg(LOGL_INFO, "SIGHUP: reloading %s", index_holder_path(s->holder));
	if (index_holder_reload(s->holder, &ndocs, err, sizeof err))
		stat_add(&s->stats.reload_failures, 1);
	else
		stat_add(&s->stats.reloads, 1);
}

/* host:port as text: "127.0.0.1:7878", "[::1]:7878". */
static void addr_text(const struct sockaddr *sa, socklen_t len, char *out, size_t cap)
{
	char host[NI_MAXHOST], port[NI_MAXSERV];
	if (getnameinfo(sa, len, host, sizeof host, port, sizeof port, NI_NUMERICHOST | NI_NUMERICSERV)) {
		snprintf(out, cap, "?");
		return;
	}
	snprintf(out, cap, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

/* 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104: nobody else can connect. */
static bool is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

static int start_workers(server *s)
{
	char port[16], err[256];
	snprintf(port, sizeof port, "%lld", s->cfg.port);
	struct addrinfo hints, *ai;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	int rc = getaddrinfo(s->cfg.bind, port, &hints, &ai);
	if (rc) {
		log_msg(LOGL_ERROR, "--bind %s: %s", s->cfg.bind, gai_strerror(rc));
		return -1;
	}
	struct sockaddr_storage ss;
	socklen_t sslen = (socklen_t)ai->ai_addrlen;
	memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	if (!is_loopback((struct sockaddr *)&ss) && !s->cfg.requirepass) {
		log_msg(LOGL_ERROR, "--bind %s is not a loopback address: anyone who can reach it could "
		        "search and reload; give --requirepass (or SOUSUO_REQUIREPASS)", s->cfg.bind);
		return -1;
	}

	if (s->cfg.unix_path && (s->unix_fd = open_unix(s->cfg.unix_path)) < 0)
		return -1;
	s->workers = calloc((size_t)s->cfg.threads, sizeof *s->workers);
	if (!s->workers) {
		log_msg(LOGL_ERROR, "out of memory");
		return -1;
	}
	for (int i = 0; i < s->cfg.threads; i++) {
		worker *w = worker_new(i, (struct sockaddr *)&ss, sslen, s->unix_fd, &s->cfg, s->holder,
		                       &s->stats, err, sizeof err);
		if (!w) {
			char at[128];
			addr_text((struct sockaddr *)&ss, sslen, at, sizeof at);
			log_msg(LOGL_ERROR, "%s: %s", at, err);
			return -1;
		}
		s->workers[s->nworkers++] = w;
		/* with --port 0 the first socket picks the port; the others share it */
		if (i == 0 && worker_local_addr(w, &ss, &sslen)) {
			log_msg(LOGL_ERROR, "getsockname failed");
			return -1;
		}
	}
	/* signals go to the main thread only: the workers start with them blocked */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (int i = 0; i < s->nworkers; i++)
		if (worker_start(s->workers[i])) {
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			log_msg(LOGL_ERROR, "cannot start worker thread %d", i);
			return -1;
		}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (s->cfg.http_port >= 0) {
		s->http = http_new(&s->cfg, (int)s->cfg.http_port, s->holder, &s->stats, err, sizeof err);
		if (!s->http) {
			log_msg(LOGL_ERROR, "--http-port: %s", err);
			return -1;
		}
		if (http_start(s->http)) {
			log_msg(LOGL_ERROR, "cannot start the http thread");
			http_join_free(s->http);
			s->http = NULL;
			return -1;
		}
		log_msg(LOGL_INFO, "http listening on %s:%d", s->cfg.bind, http_port(s->http));
	}
	char at[128];
	addr_text((struct sockaddr *)&ss, sslen, at, sizeof at);
	log_msg(LOGL_INFO, "listening on %s%s%s, %d threads, max line %lld, max connections %lld, "
	        "idle timeout %lld s, max output %lld (all connections %lld), max input (all "
	        "connections) %lld, send timeout %lld s, "
	        "query timeout %lld us",
	        at, s->cfg.unix_path ? " and " : "", s->cfg.unix_path ? s->cfg.unix_path : "",
	        s->nworkers, s->cfg.max_line, s->cfg.max_conns, s->cfg.idle_timeout,
	        s->cfg.max_output, s->cfg.max_output_total, s->cfg.max_input_total, s->cfg.send_timeout,
	        s->cfg.query_timeout);
	return 0;
}

int main(int argc, char **argv)
{
	static server s;
	s.unix_fd = -1;
	char err[512];
	int rc = config_parse(&s.cfg, argc, argv, err, sizeof err);
	if (rc == 1) {
		config_usage(stdout);
		return 0;
	}
	if (rc) {
		fprintf(stderr, "sousuo-server: %s\n", err);
		config_usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	log_route_libevent();
	if (evthread_use_pthreads()) {
		log_msg(LOGL_ERROR, "libevent has no pthreads support");
		return 1;
	}
	if (fit_fd_limit(&s.cfg))
		return 1;
	s.stats.started = time(NULL);
	s.holder = index_holder_open(s.cfg.index_path, err, sizeof err);
	if (!s.holder) {
		log_msg(LOGL_ERROR, "cannot open the index: %s", err);
		return 1;
	}
	index_ref *ref = index_holder_acquire(s.holder);
	log_msg(LOGL_INFO, "starting: index %s (%u documents)", s.cfg.index_path,
	        index_ndocs(index_ref_index(ref)));
	index_ref_release(ref);
	int status = 1;
	struct event *sig_term = NULL, *sig_int = NULL, *sig_hup = NULL;
	s.base = event_base_new();
	if (!s.base) {
		log_msg(LOGL_ERROR, "cannot create an event base");
		goto out;
	}
	sig_term = evsignal_new(s.base, SIGTERM, on_stop_signal, &s);
	sig_int = evsignal_new(s.base, SIGINT, on_stop_signal, &s);
	sig_hup = evsignal_new(s.base, SIGHUP, on_sighup, &s);
	if (!sig_term || !sig_int || !sig_hup || evsignal_add(sig_term, NULL) ||
	    evsignal_add(sig_int, NULL) || evsignal_add(sig_hup, NULL)) {
		log_msg(LOGL_ERROR, "cannot install signal handlers");
		goto out;
	}
	if (start_workers(&s) == 0) {
		event_base_dispatch(s.base);
		status = 0;
	} else {
		for (int i = 0; i < s.nworkers; i++)
			worker_stop(s.workers[i]);
		if (s.http)
			http_stop(s.http);
	}
out:
	for (int i = 0; i < s.nworkers; i++)
		worker_join_free(s.workers[i]);
	free(s.workers);
	http_join_free(s.http);
	if (s.unix_fd >= 0) {
		close(s.unix_fd);
		unlink(s.cfg.unix_path);
	}
	if (sig_term)
		event_free(sig_term);
	if (sig_int)
		event_free(sig_int);
	if (sig_hup)
		event_free(sig_hup);
	if (s.base)
		event_base_free(s.base);
	index_holder_free(s.holder);
	if (status == 0)
		log_msg(LOGL_INFO, "stopped");
	return status;
}
