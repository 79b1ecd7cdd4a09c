/* test_server.c — black-box tests of sousuo-server: builds a small index,
 * starts $BIN/sousuo-server on an ephemeral loopback port, and talks to it
 * over plain TCP sockets: every command and the error codes, pipelining in
 * order, 1-byte writes, RELOAD with a new and with a corrupt file, SIGTERM.
 * The server is always killed at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

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
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "indexer/corpus.h"
#include "indexer/writer.h"
#include "tests/testutil.h"

/* How long any single wait on the server may take before the test fails. */
#define WAIT_MS 10000

/* ---- the index ---- */

typedef struct {
	const char *path, *title, *category, *body;
	uint32_t date;
} mini_doc;

static const mini_doc DOCS[] = {
	{ "法律/外商投资法.md", "中华人民共和国外商投资法", "法律",
	  "国家对外商投资实行准入前国民待遇加负面清单管理制度。", 20190315 },
	{ "行政法规/条例.md", "外商投资法实施条例", "行政法规",
	  "外商投资企业的登记注册，由国务院市场监督管理部门负责。", 20191226 },
	{ "法律/民法典.md", "中华人民共和国民法典", "法律",
	  "民事主体从事民事活动，应当遵循诚信原则。\tTAB 与 \\ 反斜杠", 20200528 },
	{ "地方性法规/北京/办法.md", "北京市办法", "地方性法规/北京",
	  "本办法自2019年起施行。外商投资企业应当依法经营。", 0 },
	{ "法律/公司法.md", "中华人民共和国公司法", "法律",
	  "外商投资的有限责任公司和股份有限公司适用本法。", 20231229 },
	{ "法律/合同法.md", "中华人民共和国合同法", "法律",
	  "当事人订立合同，应当遵循公平原则。", 19990315 },
};
#define NDOCS_A 4   /* the first index: DOCS[0..4), 外商投资 in 3 */
#define NDOCS_B 6   /* the rebuilt one: all of DOCS, 外商投资 in 4 */

static void build_index(size_t n, const char *out)
{
	index_writer *w = writer_new(NULL);
	assert_non_null(w);
	char err[256];
	for (size_t i = 0; i < n; i++) {
		corpus_doc d = { (char *)DOCS[i].path, (char *)DOCS[i].title, (char *)DOCS[i].category,
		                 NULL, (char *)DOCS[i].body, strlen(DOCS[i].body), DOCS[i].date, NULL };
		assert_int_equal(writer_add(w, &d, err, sizeof err), 0);
	}
	if (writer_finish(w, out, NULL, err, sizeof err))
		fail_msg("writer_finish: %s", err);
	writer_free(w);
}

/* ---- the server process ---- */

static pid_t server_pid = -1;
static int server_port;
static int server_log = -1;   /* read end of the server's stderr */

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Copies whatever the server has logged to our stderr (non-blocking). */
static void drain_log(void)
{
	char buf[4096];
	ssize_t n;
	while (server_log >= 0 && (n = read(server_log, buf, sizeof buf)) > 0)
		fwrite(buf, 1, (size_t)n, stderr);
}

static int start_server(void **state)
{
	const char *idx = test_tmp_path("server.idx");
	build_index(NDOCS_A, idx);
	char exe[512];
	snprintf(exe, sizeof exe, "%s/sousuo-server", test_bin_dir());
	int p[2];
	assert_int_equal(pipe(p), 0);
	server_pid = fork();
	assert_true(server_pid >= 0);
	if (server_pid == 0) {
		dup2(p[1], 2);
		close(p[0]);
		close(p[1]);
		execl(exe, exe, "-i", idx, "--port", "0", "--threads", "2", (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", exe, strerror(errno));
		_exit(127);
	}
	close(p[1]);
	server_log = p[0];
	/* read its log until "listening on HOST:PORT" */
	char log[8192];
	size_t len = 0;
	long end = now_ms() + WAIT_MS;
	for (;;) {
		struct pollfd pf = { server_log, POLLIN, 0 };
		long left = end - now_ms();
		if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
			fail_msg("server did not say \"listening on\"; log so far: %.*s", (int)len, log);
		ssize_t n = read(server_log, log + len, sizeof log - 1 - len);
		if (n <= 0)
			fail_msg("server exited before listening; log: %.*s", (int)len, log);
		len += (size_t)n;
		log[len] = 0;
		char *at = strstr(log, "listening on ");
		char *eol = at ? strchr(at, '\n') : NULL;
		if (eol) {
			char *colon = strchr(at + 13, ':');
			assert_non_null(colon);
			server_port = atoi(colon + 1);
			assert_true(server_port > 0 && server_port < 65536);
			break;
		}
	}
	fwrite(log, 1, len, stderr);
	fcntl(server_log, F_SETFL, O_NONBLOCK);
	return 0;
}

static int stop_server(void **state)
{
	if (server_pid > 0) {
		kill(server_pid, SIGKILL);
		waitpid(server_pid, NULL, 0);
		server_pid = -1;
	}
	drain_log();
	if (server_log >= 0)
		close(server_log);
	server_log = -1;
	unlink(test_tmp_path("server.idx"));
	unlink(test_tmp_path("bad.idx"));
	return 0;
}

/* ---- a client over a plain socket ---- */

typedef struct {
	int fd;
	char buf[1 << 16];
	size_t start, end;
} client;

static client *cl_open(void)
{
	client *c = calloc(1, sizeof *c);
	assert_non_null(c);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(c->fd >= 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)server_port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(c->fd, (struct sockaddr *)&a, sizeof a))
		fail_msg("connect: %s", strerror(errno));
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return c;
}

static void cl_close(client *c)
{
	close(c->fd);
	free(c);
}

static void cl_send(client *c, const void *p, size_t n)
{
	const char *s = p;
	while (n) {
		ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			fail_msg("send: %s", strerror(errno));
		s += w;
		n -= (size_t)w;
	}
}

static void cl_sends(client *c, const char *s)
{
	cl_send(c, s, strlen(s));
}

/* Reads one line (without "\n") into out; returns its length, or -1 at EOF. */
static ssize_t cl_line(client *c, char *out, size_t cap)
{
	long end = now_ms() + WAIT_MS;
	for (;;) {
		char *nl = memchr(c->buf + c->start, '\n', c->end - c->start);
		if (nl) {
			size_t n = (size_t)(nl - (c->buf + c->start));
			assert_true(n < cap);
			memcpy(out, c->buf + c->start, n);
			out[n] = 0;
			c->start += n + 1;
			return (ssize_t)n;
		}
		if (c->start > 0) {
			memmove(c->buf, c->buf + c->start, c->end - c->start);
			c->end -= c->start;
			c->start = 0;
		}
		assert_true(c->end < sizeof c->buf);
		struct pollfd pf = { c->fd, POLLIN, 0 };
		long left = end - now_ms();
		if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
			fail_msg("no reply from the server within %d ms", WAIT_MS);
		ssize_t r = recv(c->fd, c->buf + c->end, sizeof c->buf - c->end, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == ECONNRESET)
			return -1;
		assert_true(r >= 0);
		if (r == 0) {
			if (c->end > 0)
				fail_msg("EOF after a partial line: %.*s", (int)c->end, c->buf);
			return -1;
		}
		c->end += (size_t)r;
	}
}

/* Reads a reply: its status line into status and the lines it announces
 * (concatenated, each ending in "\n") into body if not NULL.  Returns the
 * number of lines that followed (0 for ERR). */
static unsigned cl_reply(client *c, char *status, size_t cap, char *body, size_t bodycap)
{
	if (cl_line(c, status, cap) < 0)
		fail_msg("EOF instead of a reply");
	if (!strncmp(status, "ERR ", 4))
		return 0;
	if (strncmp(status, "OK ", 3))
		fail_msg("bad status line: %s", status);
	unsigned n = (unsigned)strtoul(status + 3, NULL, 10);
	size_t used = 0;
	char line[1 << 16];
	for (unsigned i = 0; i < n; i++) {
		ssize_t l = cl_line(c, line, sizeof line);
		if (l < 0)
			fail_msg("EOF after %u of %u lines of \"%s\"", i, n, status);
		if (body && used + (size_t)l + 2 <= bodycap) {
			memcpy(body + used, line, (size_t)l);
			used += (size_t)l;
			body[used++] = '\n';
			body[used] = 0;
		}
	}
	if (body && n == 0 && bodycap)
		body[0] = 0;
	return n;
}

/* Sends one request and checks that the status line starts with want. */
static void expect(client *c, const char *req, const char *want)
{
	char st[4096];
	cl_sends(c, req);
	cl_reply(c, st, sizeof st, NULL, 0);
	if (strncmp(st, want, strlen(want)))
		fail_msg("%s-> \"%s\", expected \"%s...\"", req, st, want);
}

/* The value of name in a STATS reply. */
static long stat_value(client *c, const char *name)
{
	char st[256], body[1 << 14];
	cl_sends(c, "STATS\n");
	cl_reply(c, st, sizeof st, body, sizeof body);
	char key[64];
	snprintf(key, sizeof key, "\n%s\t", name);
	char *p = strstr(body, key);
	if (!p && !strncmp(body, key + 1, strlen(key + 1)))
		p = body - 1;
	if (!p)
		fail_msg("STATS has no %s", name);
	return atol(p + strlen(key));
}

/* ---- tests ---- */

static void test_commands(void **state)
{
	client *c = cl_open();
	char st[4096], body[1 << 15];
	expect(c, "PING\n", "OK 0 PONG");
	expect(c, "ping\r\n", "OK 0 PONG");
	expect(c, "COUNT 外商投资\n", "OK 0 3");
	expect(c, "COUNT 诚信\n", "OK 0 1");
	cl_sends(c, "\n\n  \r\n");          /* blank lines: no reply at all ... */
	expect(c, "PING\n", "OK 0 PONG");  /* ... so the next reply is PING's */

	cl_sends(c, "SEARCH 外商投资\n");
	unsigned n = cl_reply(c, st, sizeof st, body, sizeof body);
	assert_int_equal(n, 3);
	assert_true(!strncmp(st, "OK 3 total=3 exact=1 took_us=", 29));
	/* all 8 fields per line, rank 1 first, the match marked in the snippet */
	assert_true(!strncmp(body, "1\t", 2));
	assert_non_null(strstr(body, "【外商投资】"));
	int tabs = 0;
	for (char *p = body; *p != '\n'; p++)
		tabs += *p == '\t';
	assert_int_equal(tabs, 7);

	cl_sends(c, "SEARCH limit=2 offset=1 fields=rank,path 外商投资\n");
	n = cl_reply(c, st, sizeof st, body, sizeof body);
	assert_int_equal(n, 2);
	assert_true(!strncmp(st, "OK 2 total=3 ", 13));
	assert_true(!strncmp(body, "2\t", 2));
	assert_non_null(strstr(body, "\n3\t"));

	/* sort=date: newest first; limit=0 is a count with a SEARCH status */
	cl_sends(c, "SEARCH sort=date fields=date 外商投资\n");
	n = cl_reply(c, st, sizeof st, body, sizeof body);
	assert_int_equal(n, 3);
	assert_string_equal(body, "2019-12-26\n2019-03-15\n\n");
	cl_sends(c, "SEARCH limit=0 外商投资\n");
	assert_int_equal(cl_reply(c, st, sizeof st, body, sizeof body), 0);
	assert_true(!strncmp(st, "OK 0 total=3 exact=1", 20));
	cl_sends(c, "SEARCH snippet=off fields=id,snippet total=fast 诚信\n");
	assert_int_equal(cl_reply(c, st, sizeof st, body, sizeof body), 1);
	assert_string_equal(body, "2\t\n");

	/* GET: 6 lines; TAB and backslash in the text escaped */
	cl_sends(c, "GET 2\n");
	n = cl_reply(c, st, sizeof st, body, sizeof body);
	assert_int_equal(n, 6);
	assert_string_equal(st, "OK 6 id=2");
	assert_true(!strncmp(body, "title\t中华人民共和国民法典\npath\t法律/民法典.md\n"
	                     "category\t法律\ndate\t2020-05-28\next_id\t\ntext\t", 99));
	assert_non_null(strstr(body, "title\t中华人民共和国民法典\n"));
	assert_non_null(strstr(body, "date\t2020-05-28\n"));
	assert_non_null(strstr(body, "诚信原则。\\tTAB 与 \\\\ 反斜杠\n"));

	cl_sends(c, "HELP\n");
	assert_true(cl_reply(c, st, sizeof st, body, sizeof body) >= 8);
	assert_non_null(strstr(body, "SEARCH"));
	assert_int_equal(stat_value(c, "documents"), NDOCS_A);
	assert_true(stat_value(c, "requests") >= 10);

	cl_sends(c, "QUIT\nPING\n");
	cl_reply(c, st, sizeof st, NULL, 0);
	assert_string_equal(st, "OK 0 bye");
	assert_int_equal(cl_line(c, st, sizeof st), -1);  /* closed, PING unanswered */
	cl_close(c);
}

static void test_errors(void **state)
{
	client *c = cl_open();
	char st[4096];
	expect(c, "FOO bar\n", "ERR UNKNOWN unknown command \"FOO\"");
	expect(c, "GET\n", "ERR ARGS");
	expect(c, "GET x\n", "ERR ARGS");
	expect(c, "PING 1\n", "ERR ARGS");
	expect(c, "SEARCH limit=5000 外商\n", "ERR ARGS");
	expect(c, "SEARCH fields=id,id 外商\n", "ERR ARGS");
	expect(c, "SEARCH\n", "ERR ARGS");
	/* a bad query: the message says where */
	cl_sends(c, "SEARCH ab -\n");
	cl_reply(c, st, sizeof st, NULL, 0);
	assert_true(!strncmp(st, "ERR QUERY ", 10));
	assert_non_null(strstr(st, "column 4"));
	expect(c, "COUNT (外商\n", "ERR QUERY");
	expect(c, "SEARCH \xff\xfe\n", "ERR UTF8");
	cl_send(c, "PING\0x\n", 7);
	cl_reply(c, st, sizeof st, NULL, 0);
	assert_true(!strncmp(st, "ERR UTF8 ", 9));
	assert_non_null(strstr(st, "NUL"));
	expect(c, "GET 4\n", "ERR NOTFOUND");
	expect(c, "GET 99999999999\n", "ERR ");
	/* none of those closed the connection */
	expect(c, "PING\n", "OK 0 PONG");
	assert_true(stat_value(c, "errors_QUERY") >= 2);
	cl_close(c);

	/* TOOLONG: before the newline ever arrives, then the connection closes */
	c = cl_open();
	size_t big = 70000;
	char *line = malloc(big);
	assert_non_null(line);
	memset(line, 'a', big);
	memcpy(line, "COUNT ", 6);
	cl_send(c, line, big);
	cl_reply(c, st, sizeof st, NULL, 0);
	assert_true(!strncmp(st, "ERR TOOLONG ", 12));
	assert_int_equal(cl_line(c, st, sizeof st), -1);
	cl_close(c);

	/* the limit is exact: 65535 bytes + "\n" is a (bad) request, one more is too long */
	c = cl_open();
	memset(line, 'x', big);
	memcpy(line, "COUNT ", 6);
	line[65535] = '\n';
	cl_send(c, line, 65536);
	expect(c, "PING\n", "ERR QUERY");   /* the query is over the query parser's limit */
	cl_reply(c, st, sizeof st, NULL, 0);
	assert_string_equal(st, "OK 0 PONG");
	line[65535] = 'x';
	line[65536] = '\n';
	cl_send(c, line, 65537);
	cl_reply(c, st, sizeof st, NULL, 0);
	assert_true(!strncmp(st, "ERR TOOLONG ", 12));
	assert_int_equal(cl_line(c, st, sizeof st), -1);
	cl_close(c);
	free(line);
}

/* 1,000 requests in one write; each reply is checked against its request. */
static void test_pipeline(void **state)
{
	enum { N = 1000 };
	client *c = cl_open();
	size_t cap = N * 40, len = 0;
	char *req = malloc(cap);
	assert_non_null(req);
	for (int i = 0; i < N; i++) {
		switch (i % 4) {
		case 0: len += (size_t)snprintf(req + len, cap - len, "X%d\n", i); break;
		case 1: len += (size_t)snprintf(req + len, cap - len, "PING\n"); break;
		case 2: len += (size_t)snprintf(req + len, cap - len, "COUNT 外商投资\n"); break;
		case 3: len += (size_t)snprintf(req + len, cap - len, "GET %d\n", i % NDOCS_A); break;
		}
	}
	cl_send(c, req, len);
	char st[4096], want[64];
	for (int i = 0; i < N; i++) {
		unsigned n = cl_reply(c, st, sizeof st, NULL, 0);
		switch (i % 4) {
		case 0:
			snprintf(want, sizeof want, "ERR UNKNOWN unknown command \"X%d\"", i);
			break;
		case 1: snprintf(want, sizeof want, "OK 0 PONG"); break;
		case 2: snprintf(want, sizeof want, "OK 0 3"); break;
		case 3:
			snprintf(want, sizeof want, "OK 6 id=%d", i % NDOCS_A);
			assert_int_equal(n, 6);
			break;
		}
		if (strncmp(st, want, strlen(want)))
			fail_msg("reply %d: \"%s\", expected \"%s\"", i, st, want);
	}
	expect(c, "PING\n", "OK 0 PONG");
	free(req);
	cl_close(c);
}

/* A request arriving one byte per write gets the same reply. */
static void test_split_writes(void **state)
{
	client *c = cl_open();
	const char *req = "SEARCH limit=2 fields=id,path 外商投资\r\n";
	char st1[4096], body1[4096], st2[4096], body2[4096];
	cl_sends(c, req);
	cl_reply(c, st1, sizeof st1, body1, sizeof body1);
	for (const char *p = req; *p; p++) {
		cl_send(c, p, 1);
		usleep(500);
	}
	cl_reply(c, st2, sizeof st2, body2, sizeof body2);
	/* the same but for took_us */
	*strstr(st1, " took_us=") = 0;
	*strstr(st2, " took_us=") = 0;
	assert_string_equal(st1, st2);
	assert_string_equal(body1, body2);
	assert_true(!strncmp(st1, "OK 2 total=3", 12));
	cl_close(c);
}

/* RELOAD swaps in a rebuilt index on a live connection; a corrupt file is
 * refused and the index in use keeps answering, also for SIGHUP. */
static void test_reload(void **state)
{
	client *c = cl_open();
	char st[4096];
	expect(c, "COUNT 外商投资\n", "OK 0 3");
	build_index(NDOCS_B, test_tmp_path("server.idx"));   /* renamed over the old one */
	expect(c, "COUNT 外商投资\n", "OK 0 3");              /* not before RELOAD */
	expect(c, "RELOAD\n", "OK 0 reloaded 6");
	expect(c, "COUNT 外商投资\n", "OK 0 4");
	expect(c, "GET 5\n", "OK 6 id=5");
	assert_int_equal(stat_value(c, "documents"), NDOCS_B);

	/* the first half of it, renamed over the path */
	const char *path = test_tmp_path("server.idx"), *bad = test_tmp_path("bad.idx");
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *bytes = malloc((size_t)size);
	assert_non_null(bytes);
	assert_int_equal(fread(bytes, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	f = fopen(bad, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(bytes, 1, (size_t)size / 2, f), (size_t)size / 2);
	fclose(f);
	free(bytes);
	assert_int_equal(rename(bad, path), 0);

	cl_sends(c, "RELOAD\n");
	cl_reply(c, st, sizeof st, NULL, 0);
	assert_true(!strncmp(st, "ERR INTERNAL ", 13));
	expect(c, "COUNT 外商投资\n", "OK 0 4");
	expect(c, "GET 5\n", "OK 6 id=5");
	assert_int_equal(kill(server_pid, SIGHUP), 0);
	long end = now_ms() + WAIT_MS;
	while (stat_value(c, "reload_failures") < 2 && now_ms() < end)
		usleep(10000);
	assert_int_equal(stat_value(c, "reload_failures"), 2);
	expect(c, "COUNT 外商投资\n", "OK 0 4");
	/* a good file again */
	build_index(NDOCS_A, path);
	expect(c, "RELOAD\n", "OK 0 reloaded 4");
	expect(c, "COUNT 外商投资\n", "OK 0 3");
	cl_close(c);
}

/* SIGTERM: open connections are closed after their replies, exit status 0. */
static void test_sigterm(void **state)
{
	client *c = cl_open();
	expect(c, "PING\n", "OK 0 PONG");
	assert_int_equal(kill(server_pid, SIGTERM), 0);
	char st[256];
	assert_int_equal(cl_line(c, st, sizeof st), -1);   /* EOF, not a reset or a hang */
	cl_close(c);
	int status = 0;
	long end = now_ms() + WAIT_MS;
	pid_t r;
	while ((r = waitpid(server_pid, &status, WNOHANG)) == 0 && now_ms() < end)
		usleep(10000);
	assert_int_equal(r, server_pid);
	server_pid = -1;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commands),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_pipeline),
		cmocka_unit_test(test_split_writes),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_sigterm),
	};
	return cmocka_run_group_tests(tests, start_server, stop_server);
}
