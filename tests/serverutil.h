/* serverutil.h — what the black-box tests of sousuo-server (test_server.c,
 * test_abuse.c) share: starting and killing a server process, and plain
 * loopback clients.
 *
 * Include it after cmocka.h.  Only spawn_server calls cmocka (it fails the
 * test); the rest returns errors instead, because the tests' client
 * threads use it and cmocka's checks belong to the main thread. */
#ifndef SOUSUO_SERVERUTIL_H
#define SOUSUO_SERVERUTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/testutil.h"

/* How long any single wait on the server may take before the test fails. */
#define WAIT_MS 10000

static inline long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* The port of a logged "HOST:PORT", or 0.  The address ends at the ',' or
 * space that follows it in the server's log lines; the port is after its
 * last ':' because an IPv6 host ("[::1]") holds colons too. */
static inline int logged_port(const char *addr)
{
	const char *colon = memrchr(addr, ':', strcspn(addr, ", \n"));
	return colon ? atoi(colon + 1) : 0;
}

/* Starts $BIN/sousuo-server on idx with the extra arguments (NULL
 * terminated) on an ephemeral loopback port; nofile > 0 lowers its
 * descriptor limit to that.  Returns its pid, its port, the port of its
 * HTTP listener if it logged one (else 0; http_port may be NULL), and the
 * read end of its stderr (non-blocking, close-on-exec so that servers
 * started later do not hold it open). */
static inline pid_t spawn_server(const char *idx, const char *const *extra, long nofile,
                                 int *port, int *http_port, int *logfd)
{
	char exe[512];
	snprintf(exe, sizeof exe, "%s/sousuo-server", test_bin_dir());
	const char *argv[32] = { exe, "-i", idx, "--port", "0" };
	int argc = 5;
	for (int i = 0; extra && extra[i] && argc < 31; i++)
		argv[argc++] = extra[i];
	argv[argc] = NULL;
	if (http_port)
		*http_port = 0;
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], 2);
		if (nofile > 0) {
			struct rlimit rl = { (rlim_t)nofile, (rlim_t)nofile };
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		execv(exe, (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", exe, strerror(errno));
		_exit(127);
	}
	close(p[1]);
	*logfd = p[0];
	char log[8192];
	size_t len = 0;
	long end = now_ms() + WAIT_MS;
	for (;;) {
		struct pollfd pf = { *logfd, POLLIN, 0 };
		long left = end - now_ms();
		if (left <= 0 || poll(&pf, 1, (int)left) <= 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			fail_msg("server did not say \"listening on\"; log so far: %.*s", (int)len, log);
		}
		ssize_t n = read(*logfd, log + len, sizeof log - 1 - len);
		if (n <= 0) {
			waitpid(pid, NULL, 0);
			fail_msg("server exited before listening; log: %.*s", (int)len, log);
		}
		len += (size_t)n;
		log[len] = 0;
		/* the line protocol's "listening on", not "http listening on" */
		char *at = log;
		while ((at = strstr(at, "listening on ")) && at - log >= 5 && !memcmp(at - 5, "http ", 5))
			at += 13;
		char *eol = at ? strchr(at, '\n') : NULL;
		char *hat = strstr(log, "http listening on ");
		if (http_port && hat && strchr(hat, '\n'))
			*http_port = logged_port(hat + 18);
		if (eol) {
			*port = logged_port(at + 13);
			assert_true(*port > 0 && *port < 65536);
			break;
		}
	}
	fwrite(log, 1, len, stderr);
	fcntl(*logfd, F_SETFL, O_NONBLOCK);
	return pid;
}

/* Copies what the server logged to our stderr (non-blocking). */
static inline void drain_log(int logfd)
{
	char buf[4096];
	ssize_t n;
	while (logfd >= 0 && (n = read(logfd, buf, sizeof buf)) > 0)
		fwrite(buf, 1, (size_t)n, stderr);
}

/* Kills a server started by spawn_server, copies the rest of its log to
 * stderr, and sets *pid and *logfd to -1: a teardown that runs after the
 * test already killed it must neither signal a pid that may have been
 * reused nor close a descriptor number that may have been. */
static inline void kill_server(pid_t *pid, int *logfd)
{
	if (*pid > 0) {
		kill(*pid, SIGKILL);
		waitpid(*pid, NULL, 0);
	}
	drain_log(*logfd);
	if (*logfd >= 0)
		close(*logfd);
	*pid = -1;
	*logfd = -1;
}

/* VmRSS of pid in KiB, or -1. */
static inline long rss_kb(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long kb = -1;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "VmRSS:", 6))
			kb = atol(line + 6);
	fclose(f);
	return kb;
}

/* ---- clients ---- */

/* A blocking loopback TCP connection: the descriptor, or -1 with errno.
 * Close-on-exec: a server spawned later must not keep our sockets open. */
static inline int raw_connect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

/* All of p, or -1 with errno. */
static inline int raw_write(int fd, const void *p, size_t n)
{
	const char *s = p;
	while (n) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/* A connection with a read buffer, for reading replies line by line. */
typedef struct {
	int fd;
	size_t start, end;
	char buf[1 << 16];
} cl;

enum { CL_EOF = -1, CL_TIMEOUT = -2 };

/* A cl on fd (which may be -1, to connect later), or NULL. */
static inline cl *cl_new(int fd)
{
	cl *c = calloc(1, sizeof *c);
	if (c)
		c->fd = fd;
	return c;
}

static inline void cl_free(cl *c)
{
	if (c) {
		if (c->fd >= 0)
			close(c->fd);
		free(c);
	}
}

/* A cl connected to the loopback port, or NULL with errno. */
static inline cl *cl_connect(int port)
{
	int fd = raw_connect(port);
	if (fd < 0)
		return NULL;
	cl *c = cl_new(fd);
	if (!c)
		close(fd);
	return c;
}

/* One line (without "\n") into out by the deadline: its length, CL_EOF at
 * end of stream or reset, CL_TIMEOUT on a timeout, an error or a line longer
 * than cap. */
static inline ssize_t cl_read_line(cl *c, char *out, size_t cap, long deadline)
{
	for (;;) {
		char *nl = memchr(c->buf + c->start, '\n', c->end - c->start);
		if (nl) {
			size_t n = (size_t)(nl - (c->buf + c->start));
			if (n >= cap)
				return CL_TIMEOUT;
			memcpy(out, c->buf + c->start, n);
			out[n] = 0;
			c->start += n + 1;
			return (ssize_t)n;
		}
		memmove(c->buf, c->buf + c->start, c->end - c->start);
		c->end -= c->start;
		c->start = 0;
		if (c->end == sizeof c->buf)
			return CL_TIMEOUT;
		struct pollfd pf = { c->fd, POLLIN, 0 };
		long left = deadline - now_ms();
		if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
			return CL_TIMEOUT;
		ssize_t r = recv(c->fd, c->buf + c->end, sizeof c->buf - c->end, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0 || (r < 0 && (errno == ECONNRESET || errno == EPIPE)))
			return CL_EOF;
		if (r < 0)
			return CL_TIMEOUT;
		c->end += (size_t)r;
	}
}

#endif
