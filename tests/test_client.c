/* test_client.c — the client library (protocol/client.h) against a fake
 * server: a thread with a listening socket on 127.0.0.1 port 0 (or a Unix
 * socket) that reads a given number of request lines, writes a scripted
 * reply, and then closes or hangs.  No real sousuo-server involved. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "protocol/client.h"
#include "tests/testutil.h"

/* ---- the fake server ------------------------------------------------------------- */

typedef struct {
	int lfd, port;
	const char *upath;        /* Unix socket path, or NULL for TCP */
	int nreq;                 /* request lines to read before replying */
	const char *reply;        /* then written as is */
	size_t reply_len;
	bool hang;                /* then keep the connection open until fake_stop */
	char got[1 << 16];        /* the request bytes read */
	size_t got_len;
	int stop[2];              /* a pipe: fake_stop writes to wake the thread */
	pthread_t th;
} fake;

static void *fake_main(void *arg)
{
	fake *f = arg;
	struct pollfd p[2] = { { .fd = f->lfd, .events = POLLIN }, { .fd = f->stop[0], .events = POLLIN } };
	if (poll(p, 2, 10000) <= 0 || !(p[0].revents & POLLIN))
		return NULL;
	int fd = accept(f->lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	int lines = 0;
	while (lines < f->nreq && f->got_len < sizeof f->got) {
		ssize_t n = recv(fd, f->got + f->got_len, sizeof f->got - f->got_len, 0);
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			lines += f->got[f->got_len + (size_t)i] == '\n';
		f->got_len += (size_t)n;
	}
	size_t off = 0;
	while (off < f->reply_len) {
		ssize_t n = send(fd, f->reply + off, f->reply_len - off, MSG_NOSIGNAL);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	if (f->hang) {
		struct pollfd s = { .fd = f->stop[0], .events = POLLIN };
		(void)poll(&s, 1, 20000);
	}
	close(fd);
	return NULL;
}

/* Starts a server that reads nreq lines then writes reply (len 0: strlen). */
static fake *fake_start(const char *upath, int nreq, const char *reply, size_t len, bool hang)
{
	fake *f = calloc(1, sizeof *f);
	assert_non_null(f);
	f->nreq = nreq;
	f->reply = reply;
	f->reply_len = len ? len : strlen(reply);
	f->hang = hang;
	f->upath = upath;
	assert_int_equal(pipe(f->stop), 0);
	if (upath) {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		snprintf(sun.sun_path, sizeof sun.sun_path, "%s", upath);
		unlink(upath);
		f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
		assert_true(f->lfd >= 0);
		assert_int_equal(bind(f->lfd, (struct sockaddr *)&sun, sizeof sun), 0);
	} else {
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = 0 };
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		f->lfd = socket(AF_INET, SOCK_STREAM, 0);
		assert_true(f->lfd >= 0);
		assert_int_equal(bind(f->lfd, (struct sockaddr *)&sin, sizeof sin), 0);
		socklen_t sl = sizeof sin;
		assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sin, &sl), 0);
		f->port = ntohs(sin.sin_port);
	}
	assert_int_equal(listen(f->lfd, 8), 0);
	assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
	return f;
}

static void fake_stop(fake *f)
{
	assert_int_equal(write(f->stop[1], "x", 1), 1);
	pthread_join(f->th, NULL);
	close(f->lfd);
	close(f->stop[0]);
	close(f->stop[1]);
	if (f->upath)
		unlink(f->upath);
	free(f);
}

static proto_client *connect_to(fake *f, int timeout_ms)
{
	char err[256] = "unset";
	proto_client *c = f->upath ? proto_client_connect(f->upath, 0, timeout_ms, err, sizeof err)
	                           : proto_client_connect("127.0.0.1", f->port, timeout_ms, err, sizeof err);
	if (!c)
		fail_msg("connect: %s", err);
	assert_string_equal(err, "");
	return c;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void info_is(const proto_reply *r, const char *info)
{
	assert_true(r->ok);
	assert_int_equal(r->st.info_len, strlen(info));
	assert_memory_equal(r->st.info, info, strlen(info));
}

/* ---- connecting and timeouts -------------------------------------------------- */

static void test_connect_refused(void **state)
{
	/* a port nobody listens on: bind one, then close it */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof sin), 0);
	socklen_t sl = sizeof sin;
	assert_int_equal(getsockname(s, (struct sockaddr *)&sin, &sl), 0);
	int port = ntohs(sin.sin_port);
	close(s);

	char err[256] = "";
	proto_client *c = proto_client_connect("127.0.0.1", port, 1000, err, sizeof err);
	assert_null(c);
	assert_non_null(strstr(err, "refused"));

	/* bad arguments are errors too, never aborts */
	err[0] = 0;
	assert_null(proto_client_connect("127.0.0.1", 0, 1000, err, sizeof err));
	assert_true(err[0] != 0);
	err[0] = 0;
	assert_null(proto_client_connect("no-such-host.invalid", 7878, 1000, err, sizeof err));
	assert_true(err[0] != 0);
	err[0] = 0;
	assert_null(proto_client_connect(test_tmp_path("no-such-socket"), 0, 1000, err, sizeof err));
	assert_true(err[0] != 0);
	assert_null(proto_client_connect("127.0.0.1", port, 1000, NULL, 0));
	proto_client_close(NULL);
}

static void test_read_timeout(void **state)
{
	fake *f = fake_start(NULL, 1, "", 0, true);     /* reads, never answers */
	proto_client *c = connect_to(f, 300);
	proto_reply r;
	double t0 = now_ms();
	int rc = proto_client_request(c, "PING", &r);
	double took = now_ms() - t0;
	assert_int_equal(rc, PROTO_CLIENT_ETIMEOUT);
	assert_non_null(strstr(proto_client_error(c), "timed out"));
	assert_true(took >= 250 && took < 3000);
	assert_false(r.ok);
	assert_int_equal(r.nlines, 0);
	/* the connection is broken from now on: same error, no waiting */
	t0 = now_ms();
	assert_int_equal(proto_client_read_reply(c, &r), PROTO_CLIENT_ETIMEOUT);
	assert_int_equal(proto_client_send(c, "PING"), PROTO_CLIENT_ETIMEOUT);
	assert_true(now_ms() - t0 < 100);
	proto_client_close(c);
	fake_stop(f);
}

/* A timeout also holds while a reply trickles in half-way. */
static void test_read_timeout_mid_reply(void **state)
{
	fake *f = fake_start(NULL, 1, "OK 2 x\nfirst\nsec", 0, true);
	proto_client *c = connect_to(f, 200);
	proto_reply r;
	assert_int_equal(proto_client_request(c, "SEARCH x", &r), PROTO_CLIENT_ETIMEOUT);
	proto_client_close(c);
	fake_stop(f);
}

/* ---- replies ------------------------------------------------------------------ */

static void test_pipelined_in_order(void **state)
{
	/* The server answers only once all three requests have arrived, so the
	 * client must send them all before it reads anything. */
	fake *f = fake_start(NULL, 3,
	                     "OK 0 PONG\n"
	                     "OK 0 132\n"
	                     "OK 2 total=132 exact=1 took_us=41\n"
	                     "1\tpath/a.md\n"
	                     "2\tpath/b.md\n", 0, false);
	proto_client *c = connect_to(f, 5000);
	assert_int_equal(proto_client_send(c, "PING"), 0);
	assert_int_equal(proto_client_send(c, "COUNT 外商投资"), 0);
	assert_int_equal(proto_client_send(c, "SEARCH limit=2 fields=rank,path 外商投资"), 0);
	assert_int_equal(proto_client_flush(c), 0);
	proto_reply r;
	assert_int_equal(proto_client_read_reply(c, &r), 0);
	info_is(&r, "PONG");
	assert_int_equal(r.nlines, 0);
	assert_int_equal(proto_client_read_reply(c, &r), 0);
	info_is(&r, "132");
	assert_int_equal(proto_client_read_reply(c, &r), 0);
	info_is(&r, "total=132 exact=1 took_us=41");
	assert_string_equal(r.status, "OK 2 total=132 exact=1 took_us=41");
	assert_int_equal(r.nlines, 2);
	assert_string_equal(r.lines[0], "1\tpath/a.md");
	assert_string_equal(r.lines[1], "2\tpath/b.md");
	assert_int_equal(r.lens[1], strlen("2\tpath/b.md"));
	/* then the server closes: a clean error, not a crash */
	assert_int_equal(proto_client_read_reply(c, &r), PROTO_CLIENT_ECLOSED);
	proto_client_close(c);
	fake_stop(f);
}

static void test_many_pipelined(void **state)
{
	enum { N = 1000 };
	static char reply[N * 40];
	size_t o = 0;
	for (int i = 0; i < N; i++)
		o += (size_t)snprintf(reply + o, sizeof reply - o, "OK 1 n=%d\nline %d\n", i, i);
	fake *f = fake_start(NULL, N, reply, o, false);
	proto_client *c = connect_to(f, 5000);
	for (int i = 0; i < N; i++) {
		char req[32];
		snprintf(req, sizeof req, "COUNT q%d", i);
		assert_int_equal(proto_client_send(c, req), 0);
	}
	for (int i = 0; i < N; i++) {
		proto_reply r;
		char want[32];
		assert_int_equal(proto_client_read_reply(c, &r), 0);
		snprintf(want, sizeof want, "n=%d", i);
		info_is(&r, want);
		snprintf(want, sizeof want, "line %d", i);
		assert_int_equal(r.nlines, 1);
		assert_string_equal(r.lines[0], want);
	}
	proto_client_close(c);
	fake_stop(f);
}

static void test_multiline_err_crlf(void **state)
{
	fake *f = fake_start(NULL, 3,
	                     "OK 6 id=7\r\n"
	                     "title\t外商投资法\r\n"
	                     "path\t法律/外商投资法.md\n"
	                     "category\t法律\n"
	                     "date\t\n"
	                     "ext_id\t\n"
	                     "text\t第一条\\n第二条\n"
	                     "ERR NOTFOUND no document 99\n"
	                     "ERR NEWCODE\n", 0, false);
	proto_client *c = connect_to(f, 5000);
	proto_reply r;
	assert_int_equal(proto_client_send(c, "GET 7"), 0);
	assert_int_equal(proto_client_send(c, "GET 99"), 0);
	assert_int_equal(proto_client_send(c, "GET 100"), 0);
	assert_int_equal(proto_client_read_reply(c, &r), 0);
	info_is(&r, "id=7");
	assert_int_equal(r.nlines, 6);
	assert_string_equal(r.lines[0], "title\t外商投资法");   /* "\r\n" stripped */
	assert_string_equal(r.lines[3], "date\t");
	proto_slice fl[2];
	assert_int_equal(proto_reply_fields(&r, 5, fl, 2), 2);
	assert_int_equal(fl[1].n, strlen("第一条\n第二条"));
	assert_memory_equal(fl[1].p, "第一条\n第二条", fl[1].n);
	assert_int_equal(proto_reply_fields(&r, 3, fl, 2), 2);
	assert_int_equal(fl[1].n, 0);

	assert_int_equal(proto_client_read_reply(c, &r), 0);
	assert_false(r.ok);
	assert_int_equal(r.st.code, PROTO_E_NOTFOUND);
	assert_int_equal(r.nlines, 0);
	assert_null(r.lines);
	assert_int_equal(r.st.msg_len, strlen("no document 99"));
	/* an unknown code is INTERNAL, still read fine */
	assert_int_equal(proto_client_read_reply(c, &r), 0);
	assert_false(r.ok);
	assert_int_equal(r.st.code, PROTO_E_INTERNAL);
	assert_int_equal(r.st.code_len, 7);
	proto_client_close(c);
	fake_stop(f);
}

static void test_fields_unescaped(void **state)
{
	fake *f = fake_start(NULL, 1,
	                     "OK 3 total=3\n"
	                     "1\ta\\tb\\\\c\\nd\\re\t\\x01\\x7fz\t\n"
	                     "2\tbad \\q escape\n"
	                     "plain\n", 0, false);
	proto_client *c = connect_to(f, 5000);
	proto_reply r;
	assert_int_equal(proto_client_request(c, "SEARCH x", &r), 0);
	assert_int_equal(r.nlines, 3);
	proto_slice fl[8];
	assert_int_equal(proto_reply_fields(&r, 0, fl, 8), 4);
	assert_int_equal(fl[0].n, 1);
	assert_string_equal(fl[0].p, "1");
	assert_string_equal(fl[1].p, "a\tb\\c\nd\re");     /* NUL-terminated in place */
	assert_int_equal(fl[2].n, 3);
	assert_memory_equal(fl[2].p, "\x01\x7fz", 3);
	assert_int_equal(fl[3].n, 0);
	/* a line is split once; more fields than room still counts them all */
	assert_int_equal(proto_reply_fields(&r, 0, fl, 8), -1);
	assert_int_equal(proto_reply_fields(&r, 1, fl, 8), -1);  /* bad escape */
	assert_string_equal(r.lines[1], "2\tbad \\q escape");     /* left as it came */
	assert_int_equal(proto_reply_fields(&r, 2, fl, 0), 1);
	assert_int_equal(proto_reply_fields(&r, 3, fl, 8), -1);  /* out of range */
	proto_client_close(c);
	fake_stop(f);
}

static void test_too_many_fields(void **state)
{
	fake *f = fake_start(NULL, 1, "OK 1\na\tb\tc\td\n", 0, false);
	proto_client *c = connect_to(f, 5000);
	proto_reply r;
	assert_int_equal(proto_client_request(c, "X", &r), 0);
	assert_true(r.ok);
	assert_int_equal(r.st.info_len, 0);
	proto_slice fl[2];
	assert_int_equal(proto_reply_fields(&r, 0, fl, 2), 4);
	assert_string_equal(fl[1].p, "b");
	proto_client_close(c);
	fake_stop(f);
}

/* ---- bad replies ---------------------------------------------------------------- */

static void bad_status(const char *reply)
{
	fake *f = fake_start(NULL, 1, reply, 0, false);
	proto_client *c = connect_to(f, 5000);
	proto_reply r;
	int rc = proto_client_request(c, "PING", &r);
	if (rc != PROTO_CLIENT_EPROTO)
		fail_msg("reply \"%s\": rc %d (%s), wanted EPROTO", reply, rc, proto_client_error(c));
	assert_non_null(strstr(proto_client_error(c), "malformed"));
	assert_int_equal(proto_client_read_reply(c, &r), PROTO_CLIENT_EPROTO);  /* stays broken */
	proto_client_close(c);
	fake_stop(f);
}

static void test_malformed_status(void **state)
{
	bad_status("HELLO\n");
	bad_status("OK\n");
	bad_status("OK x\n");
	bad_status("OK  1\n");
	bad_status("OK 99999999999\n");
	bad_status("ERR lower case\n");
	bad_status("\n");
	bad_status("OK 0 a\tb\n");
}

static void test_closed_mid_reply(void **state)
{
	fake *f = fake_start(NULL, 1, "OK 3 total=3\nline one\nline t", 0, false);
	proto_client *c = connect_to(f, 5000);
	proto_reply r;
	assert_int_equal(proto_client_request(c, "SEARCH x", &r), PROTO_CLIENT_ECLOSED);
	assert_non_null(strstr(proto_client_error(c), "middle of a reply"));
	proto_client_close(c);
	fake_stop(f);

	/* closed before any reply at all */
	f = fake_start(NULL, 1, "", 0, false);
	c = connect_to(f, 5000);
	assert_int_equal(proto_client_request(c, "QUIT", &r), PROTO_CLIENT_ECLOSED);
	proto_client_close(c);
	fake_stop(f);

	/* closed inside the status line */
	f = fake_start(NULL, 1, "OK 0 PO", 0, false);
	c = connect_to(f, 5000);
	assert_int_equal(proto_client_request(c, "PING", &r), PROTO_CLIENT_ECLOSED);
	proto_client_close(c);
	fake_stop(f);
}

static void huge(bool status_line)
{
	size_t n = (size_t)PROTO_CLIENT_MAX_LINE + 1024;
	char *reply = malloc(n + 16);
	assert_non_null(reply);
	size_t o = 0;
	if (!status_line)
		o = (size_t)sprintf(reply, "OK 1 x\n");
	memset(reply + o, 'a', n);
	if (status_line)
		memcpy(reply, "OK 0 ", 5);
	reply[o + n] = '\n';
	fake *f = fake_start(NULL, 1, reply, o + n + 1, false);
	proto_client *c = connect_to(f, 5000);
	proto_reply r;
	assert_int_equal(proto_client_request(c, "GET 1", &r), PROTO_CLIENT_ETOOBIG);
	assert_non_null(strstr(proto_client_error(c), "over"));
	proto_client_close(c);
	fake_stop(f);
	free(reply);
}

static void test_huge_line(void **state)
{
	huge(false);
	huge(true);
}

/* A big reply just under the line limit is fine, and the next one after it too. */
static void test_big_line_ok(void **state)
{
	size_t n = 4u << 20;
	char *reply = malloc(n + 64);
	assert_non_null(reply);
	size_t o = (size_t)sprintf(reply, "OK 1 big\n");
	memset(reply + o, 'b', n);
	o += n;
	o += (size_t)sprintf(reply + o, "\nOK 0 PONG\n");
	fake *f = fake_start(NULL, 2, reply, o, false);
	proto_client *c = connect_to(f, 5000);
	assert_int_equal(proto_client_send(c, "GET 1"), 0);
	assert_int_equal(proto_client_send(c, "PING"), 0);
	proto_reply r;
	assert_int_equal(proto_client_read_reply(c, &r), 0);
	assert_int_equal(r.nlines, 1);
	assert_int_equal(r.lens[0], n);
	assert_int_equal(r.lines[0][n - 1], 'b');
	assert_int_equal(proto_client_read_reply(c, &r), 0);
	info_is(&r, "PONG");
	proto_client_close(c);
	fake_stop(f);
	free(reply);
}

/* ---- requests ------------------------------------------------------------------- */

static void test_send_checks(void **state)
{
	fake *f = fake_start(NULL, 2, "OK 0 PONG\nOK 0 PONG\n", 0, false);
	proto_client *c = connect_to(f, 5000);
	/* a line break would be two requests: refused, and the client stays usable */
	assert_int_equal(proto_client_send(c, "PING\nQUIT"), PROTO_CLIENT_EARG);
	assert_int_equal(proto_client_send(c, "PING\r"), PROTO_CLIENT_EARG);
	assert_int_equal(proto_client_send(c, "PING"), 0);
	assert_int_equal(proto_client_sendn(c, "PINGxx", 4), 0);
	proto_reply r;
	assert_int_equal(proto_client_read_reply(c, &r), 0);
	info_is(&r, "PONG");
	assert_int_equal(proto_client_read_reply(c, &r), 0);
	info_is(&r, "PONG");
	assert_int_equal(f->got_len, 10);
	assert_memory_equal(f->got, "PING\nPING\n", 10);
	proto_client_close(c);
	fake_stop(f);
}

static void test_unix_socket(void **state)
{
	fake *f = fake_start(test_tmp_path("cli.sock"), 1, "OK 0 PONG\n", 0, false);
	proto_client *c = connect_to(f, 5000);
	proto_reply r;
	assert_int_equal(proto_client_request(c, "PING", &r), 0);
	info_is(&r, "PONG");
	proto_client_close(c);
	fake_stop(f);
}

static void test_strcode(void **state)
{
	assert_string_equal(proto_client_strcode(PROTO_CLIENT_ETIMEOUT), "ETIMEOUT");
	assert_string_equal(proto_client_strcode(PROTO_CLIENT_ETOOBIG), "ETOOBIG");
	assert_string_equal(proto_client_strcode(42), "E?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_read_timeout),
		cmocka_unit_test(test_read_timeout_mid_reply),
		cmocka_unit_test(test_pipelined_in_order),
		cmocka_unit_test(test_many_pipelined),
		cmocka_unit_test(test_multiline_err_crlf),
		cmocka_unit_test(test_fields_unescaped),
		cmocka_unit_test(test_too_many_fields),
		cmocka_unit_test(test_malformed_status),
		cmocka_unit_test(test_closed_mid_reply),
		cmocka_unit_test(test_huge_line),
		cmocka_unit_test(test_big_line_ok),
		cmocka_unit_test(test_send_checks),
		cmocka_unit_test(test_unix_socket),
		cmocka_unit_test(test_strcode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
