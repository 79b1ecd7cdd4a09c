/* client.c — the client library of the line protocol (client.h): buffered,
 * pipelined request writing and reply reading over a non-blocking socket,
 * every wait bounded by poll(2). */
#include "protocol/client.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define OUT_FLUSH_AT   (64u << 10)   /* send() writes once the buffer passes this */
#define IN_MIN         (64u << 10)   /* smallest input buffer */
#define IN_MIN_READ    (16u << 10)   /* grow rather than read less than this */
/* Largest input buffer: a whole reply plus a line of the next one. */
#define IN_MAX         ((size_t)PROTO_CLIENT_MAX_REPLY + PROTO_CLIENT_MAX_LINE + IN_MIN)
/* What each reply line costs in bookkeeping, counted against MAX_REPLY. */
#define LINE_COST      (sizeof(char *) + 2 * sizeof(size_t) + 1)

struct proto_client {
	int fd;
	int timeout_ms;
	int broken;            /* 0, or the error that broke the connection */
	bool eof;              /* the server closed its side */
	char err[256];

	char *ob;              /* output: ob[ooff..olen) still to write */
	size_t olen, ooff, ocap;

	char *ib;              /* input: ib[ibeg..iend) not yet consumed */
	size_t ibeg, iend, icap;
	size_t iscan;          /* no "\n" in ib[ibeg..iscan) */

	size_t *offs;          /* reply lines: offsets into ib while reading */
	char **lines;
	size_t *lens;
	unsigned char *split;
	size_t lcap;
};

const char *proto_client_strcode(int code)
{
	switch (code) {
	case PROTO_CLIENT_OK: return "OK";
	case PROTO_CLIENT_ESYS: return "ESYS";
	case PROTO_CLIENT_ETIMEOUT: return "ETIMEOUT";
	case PROTO_CLIENT_ECLOSED: return "ECLOSED";
	case PROTO_CLIENT_EPROTO: return "EPROTO";
	case PROTO_CLIENT_ETOOBIG: return "ETOOBIG";
	case PROTO_CLIENT_ENOMEM: return "ENOMEM";
	case PROTO_CLIENT_EARG: return "EARG";
	}
	return "E?";
}

__attribute__((format(printf, 3, 4)))
static int fail(proto_client *c, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof c->err, fmt, ap);
	va_end(ap);
	if (code != PROTO_CLIENT_EARG)
		c->broken = code;
	return code;
}

/* ---- connecting ---------------------------------------------------------------- */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Connects the non-blocking fd; 0, or -1 with errno set (ETIMEDOUT on timeout). */
static int connect_wait(int fd, const struct sockaddr *sa, socklen_t salen, int timeout_ms)
{
	if (connect(fd, sa, salen) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EINTR && errno != EAGAIN)
		return -1;
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	for (;;) {
		int n = poll(&pfd, 1, timeout_ms > 0 ? timeout_ms : -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		break;
	}
	int soerr = 0;
	socklen_t sl = sizeof soerr;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
		return -1;
	if (soerr) {
		errno = soerr;
		return -1;
	}
	return 0;
}

static proto_client *client_new(int fd, int timeout_ms)
{
	proto_client *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->fd = fd;
	c->timeout_ms = timeout_ms;
	return c;
}

proto_client *proto_client_connect(const char *host, int port, int timeout_ms,
                                   char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = 0;
	if (!host || !*host)
		host = "127.0.0.1";
	int fd = -1;
	if (host[0] == '/') {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		if (strlen(host) >= sizeof sun.sun_path) {
			set_err(err, errlen, "unix socket path too long: %s", host);
			return NULL;
		}
		memcpy(sun.sun_path, host, strlen(host) + 1);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			set_err(err, errlen, "socket: %s", strerror(errno));
			return NULL;
		}
		if (connect_wait(fd, (struct sockaddr *)&sun, sizeof sun, timeout_ms) != 0) {
			set_err(err, errlen, "connect to %s: %s", host, strerror(errno));
			close(fd);
			return NULL;
		}
	} else {
		if (port <= 0 || port > 65535) {
			set_err(err, errlen, "bad port %d", port);
			return NULL;
		}
		char portstr[16];
		snprintf(portstr, sizeof portstr, "%d", port);
		struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
		                          .ai_flags = AI_NUMERICSERV }, *res = NULL;
		int g = getaddrinfo(host, portstr, &hints, &res);
		if (g != 0) {
			set_err(err, errlen, "%s: %s", host, gai_strerror(g));
			return NULL;
		}
		int last = 0;
		for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
			fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			            ai->ai_protocol);
			if (fd < 0) {
				last = errno;
				continue;
			}
			if (connect_wait(fd, ai->ai_addr, ai->ai_addrlen, timeout_ms) == 0)
				break;
			last = errno;
			close(fd);
			fd = -1;
		}
		freeaddrinfo(res);
		if (fd < 0) {
			set_err(err, errlen, "connect to %s:%d: %s", host, port,
			        last == ETIMEDOUT ? "timed out" : strerror(last));
			return NULL;
		}
		int one = 1;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
	proto_client *c = client_new(fd, timeout_ms);
	if (!c) {
		set_err(err, errlen, "out of memory");
		close(fd);
	}
	return c;
}

void proto_client_close(proto_client *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->ob);
	free(c->ib);
	free(c->offs);
	free(c->lines);
	free(c->lens);
	free(c->split);
	free(c);
}

void proto_client_set_timeout(proto_client *c, int timeout_ms)
{
	c->timeout_ms = timeout_ms;
}

const char *proto_client_error(const proto_client *c)
{
	return c ? c->err : "no client";
}

/* ---- writing ------------------------------------------------------------------ */

/* Waits for `events`; 1 ready (revents in *rev), or a negative code. */
static int wait_fd(proto_client *c, short events, short *rev, const char *what)
{
	struct pollfd pfd = { .fd = c->fd, .events = events };
	for (;;) {
		int n = poll(&pfd, 1, c->timeout_ms > 0 ? c->timeout_ms : -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail(c, PROTO_CLIENT_ESYS, "poll: %s", strerror(errno));
		if (n == 0)
			return fail(c, PROTO_CLIENT_ETIMEOUT, "timed out after %d ms %s",
			            c->timeout_ms, what);
		*rev = pfd.revents;
		return 1;
	}
}

int proto_client_sendn(proto_client *c, const char *line, size_t len)
{
	if (c->broken)
		return c->broken;
	if (memchr(line, '\n', len) || memchr(line, '\r', len))
		return fail(c, PROTO_CLIENT_EARG, "a request must not hold a line break");
	if (len + 1 > c->ocap - c->olen) {
		if (len + 1 > SIZE_MAX / 2 - c->olen)
			return fail(c, PROTO_CLIENT_ENOMEM, "request too large");
		size_t cap = c->ocap ? c->ocap : 4096;
		while (cap < c->olen + len + 1)
			cap *= 2;
		char *p = realloc(c->ob, cap);
		if (!p)
			return fail(c, PROTO_CLIENT_ENOMEM, "out of memory");
		c->ob = p;
		c->ocap = cap;
	}
	if (len)
		memcpy(c->ob + c->olen, line, len);
	c->ob[c->olen + len] = '\n';
	c->olen += len + 1;
	if (c->olen - c->ooff > OUT_FLUSH_AT)
		return proto_client_flush(c);
	return 0;
}

int proto_client_send(proto_client *c, const char *line)
{
	return proto_client_sendn(c, line, strlen(line));
}

int proto_client_flush(proto_client *c)
{
	if (c->broken)
		return c->broken;
	while (c->ooff < c->olen) {
		ssize_t n = send(c->fd, c->ob + c->ooff, c->olen - c->ooff, MSG_NOSIGNAL);
		if (n > 0) {
			c->ooff += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			if (errno == EPIPE || errno == ECONNRESET)
				return fail(c, PROTO_CLIENT_ECLOSED, "connection closed by server while writing");
			return fail(c, PROTO_CLIENT_ESYS, "send: %s", strerror(errno));
		}
		/* The socket is full.  Read replies into free room meanwhile (never
		 * moving the buffer: the last reply still points into it), so a
		 * server that stops reading until we read does not deadlock us. */
		bool room = !c->eof && c->iend < c->icap;
		short rev = 0;
		int w = wait_fd(c, (short)(POLLOUT | (room ? POLLIN : 0)), &rev, "writing");
		if (w < 0)
			return w;
		if (room && (rev & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t r = recv(c->fd, c->ib + c->iend, c->icap - c->iend, 0);
			if (r > 0)
				c->iend += (size_t)r;
			else if (r == 0)
				c->eof = true;
			else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
				return fail(c, PROTO_CLIENT_ESYS, "recv: %s", strerror(errno));
		}
	}
	c->olen = c->ooff = 0;
	return 0;
}

/* ---- reading ------------------------------------------------------------------ */

/* Makes room for at least IN_MIN_READ more bytes (or what is left below IN_MAX). */
static int in_room(proto_client *c)
{
	if (c->icap - c->iend >= IN_MIN_READ)
		return 0;
	if (c->icap >= IN_MAX) {
		if (c->iend < c->icap)
			return 0;
		return fail(c, PROTO_CLIENT_ETOOBIG, "reply over %u bytes", PROTO_CLIENT_MAX_REPLY);
	}
	size_t cap = c->icap ? c->icap * 2 : IN_MIN;
	if (cap > IN_MAX)
		cap = IN_MAX;
	char *p = realloc(c->ib, cap);
	if (!p)
		return fail(c, PROTO_CLIENT_ENOMEM, "out of memory");
	c->ib = p;
	c->icap = cap;
	return 0;
}

/* Reads more input; 0 or a negative code.  `mid`: inside a reply. */
static int in_fill(proto_client *c, bool mid)
{
	int rc = in_room(c);
	if (rc)
		return rc;
	for (;;) {
		ssize_t n = c->eof ? 0 : recv(c->fd, c->ib + c->iend, c->icap - c->iend, 0);
		if (n > 0) {
			c->iend += (size_t)n;
			return 0;
		}
		if (n == 0) {
			c->eof = true;
			return fail(c, PROTO_CLIENT_ECLOSED, mid ? "connection closed by server in the middle of a reply"
			                                         : "connection closed by server");
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			if (errno == ECONNRESET)
				return fail(c, PROTO_CLIENT_ECLOSED, "connection reset by server");
			return fail(c, PROTO_CLIENT_ESYS, "recv: %s", strerror(errno));
		}
		short rev = 0;
		int w = wait_fd(c, POLLIN, &rev, "waiting for a reply");
		if (w < 0)
			return w;
	}
}

/* Takes one line off the input: its offset in ib and length, terminator
 * replaced by NUL ("\r\n" too).  0 or a negative code. */
static int in_line(proto_client *c, bool mid, size_t *off, size_t *len)
{
	for (;;) {
		char *nl = c->iscan < c->iend
		         ? memchr(c->ib + c->iscan, '\n', c->iend - c->iscan) : NULL;
		if (nl) {
			size_t end = (size_t)(nl - c->ib);
			size_t l = end - c->ibeg;
			*nl = 0;
			if (l > 0 && c->ib[end - 1] == '\r')
				c->ib[end - 1] = 0, l--;
			if (l > PROTO_CLIENT_MAX_LINE)
				return fail(c, PROTO_CLIENT_ETOOBIG, "reply line over %u bytes",
				            PROTO_CLIENT_MAX_LINE);
			*off = c->ibeg;
			*len = l;
			c->ibeg = c->iscan = end + 1;
			return 0;
		}
		c->iscan = c->iend;
		if (c->iend - c->ibeg > (size_t)PROTO_CLIENT_MAX_LINE + 1)
			return fail(c, PROTO_CLIENT_ETOOBIG, "reply line over %u bytes",
			            PROTO_CLIENT_MAX_LINE);
		int rc = in_fill(c, mid || c->iend > c->ibeg);
		if (rc)
			return rc;
	}
}

static int lines_room(proto_client *c, size_t need)
{
	if (need <= c->lcap)
		return 0;
	size_t cap = c->lcap ? c->lcap * 2 : 64;
	while (cap < need)
		cap *= 2;
	size_t *o = realloc(c->offs, cap * sizeof *o);
	if (o) c->offs = o;
	char **l = realloc(c->lines, cap * sizeof *l);
	if (l) c->lines = l;
	size_t *n = realloc(c->lens, cap * sizeof *n);
	if (n) c->lens = n;
	unsigned char *s = realloc(c->split, cap);
	if (s) c->split = s;
	if (!o || !l || !n || !s)
		return fail(c, PROTO_CLIENT_ENOMEM, "out of memory");
	c->lcap = cap;
	return 0;
}

/* A printable excerpt of a bad line for the error message. */
static void excerpt(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 5 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch == 0x7f)
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", ch);
		else
			out[o++] = (char)ch;
	}
	if (o < n && o + 4 < cap)
		memcpy(out + o, "...", 3), o += 3;
	out[o] = 0;
}

int proto_client_read_reply(proto_client *c, proto_reply *r)
{
	memset(r, 0, sizeof *r);
	r->status = "";
	if (c->broken)
		return c->broken;
	int rc = proto_client_flush(c);
	if (rc)
		return rc;

	/* The previous reply is done with: drop it, and shrink a buffer a huge
	 * reply left behind. */
	if (c->ibeg) {
		memmove(c->ib, c->ib + c->ibeg, c->iend - c->ibeg);
		c->iend -= c->ibeg;
		c->iscan -= c->ibeg;
		c->ibeg = 0;
	}
	if (c->icap > 4 * IN_MIN && c->iend < IN_MIN) {
		char *p = realloc(c->ib, IN_MIN);
		if (p) {
			c->ib = p;
			c->icap = IN_MIN;
		}
	}

	size_t soff = 0, slen = 0;
	rc = in_line(c, false, &soff, &slen);
	if (rc)
		return rc;
	proto_status st;
	if (proto_parse_status(c->ib + soff, slen, &st) != 0) {
		char ex[96];
		excerpt(c->ib + soff, slen, ex, sizeof ex);
		return fail(c, PROTO_CLIENT_EPROTO, "malformed status line \"%s\"", ex);
	}
	uint32_t n = st.ok ? st.nlines : 0;
	for (uint32_t i = 0; i < n; i++) {
		if (c->ibeg + (size_t)i * LINE_COST > PROTO_CLIENT_MAX_REPLY)
			return fail(c, PROTO_CLIENT_ETOOBIG, "reply over %u bytes", PROTO_CLIENT_MAX_REPLY);
		if ((rc = lines_room(c, (size_t)i + 1)) != 0)
			return rc;
		size_t off = 0, len = 0;
		if ((rc = in_line(c, true, &off, &len)) != 0)
			return rc;
		c->offs[i] = off;
		c->lens[i] = len;
	}
	/* The buffer no longer moves until the next read: hand out pointers. */
	for (uint32_t i = 0; i < n; i++) {
		c->lines[i] = c->ib + c->offs[i];
		c->split[i] = 0;
	}
	r->status = c->ib + soff;
	r->status_len = slen;
	/* parse again so st points into the final buffer */
	(void)proto_parse_status(r->status, slen, &r->st);
	r->ok = r->st.ok;
	r->nlines = n;
	r->lines = n ? c->lines : NULL;
	r->lens = n ? c->lens : NULL;
	r->split_ = n ? c->split : NULL;
	return 0;
}

int proto_client_request(proto_client *c, const char *line, proto_reply *r)
{
	int rc = proto_client_send(c, line);
	if (rc) {
		memset(r, 0, sizeof *r);
		r->status = "";
		return rc;
	}
	return proto_client_read_reply(c, r);
}

ssize_t proto_reply_fields(proto_reply *r, uint32_t i, proto_slice *fields, size_t max)
{
	if (!r || i >= r->nlines || !r->split_ || r->split_[i])
		return -1;
	char *line = r->lines[i];
	size_t len = r->lens[i], nf = 0, start = 0;
	/* Check every escape first, so a bad line is left as it came. */
	for (size_t k = 0; k < len; k++) {
		if (line[k] != '\\')
			continue;
		char e = ++k < len ? line[k] : 0;
		if (e == 'x') {
			if (len - k < 3 || !isxdigit((unsigned char)line[k + 1]) ||
			    !isxdigit((unsigned char)line[k + 2]))
				return -1;
			k += 2;
		} else if (e != '\\' && e != 't' && e != 'n' && e != 'r') {
			return -1;
		}
	}
	r->split_[i] = 1;
	for (size_t k = 0; k <= len; k++) {
		if (k < len && line[k] != '\t')
			continue;
		ssize_t n = proto_unescape(line + start, k - start, line + start, k - start);
		if (n < 0)
			return -1;
		line[start + (size_t)n] = 0;
		if (nf < max) {
			fields[nf].p = line + start;
			fields[nf].n = (size_t)n;
		}
		nf++;
		start = k + 1;
	}
	return (ssize_t)nf;
}
