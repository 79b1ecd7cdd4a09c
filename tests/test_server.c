/* test_server.c — black-box tests of sousuo-server: builds a small index,
 * starts $BIN/sousuo-server on an ephemeral loopback port, and talks to it
 * over plain TCP sockets: every command and the error codes, pipelining in
 * order, 1-byte writes, RELOAD with a new and with a corrupt file, 500
 * concurrent clients, RELOAD under continuous load, clients that stop
 * reading, --max-conns and --idle-timeout (on servers of their own), SIGTERM.
 * The servers are always killed at the end. */
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
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "indexer/corpus.h"
#include "indexer/writer.h"
#include "tests/serverutil.h"
#include "tests/testutil.h"
#include <cjson/cJSON.h>

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

static int start_server(void **state)
{
	const char *idx = test_tmp_path("server.idx");
	build_index(NDOCS_A, idx);
	static const char *const extra[] = { "--threads", "2", NULL };
	server_pid = spawn_server(idx, extra, 0, &server_port, NULL, &server_log);
	return 0;
}

static int stop_server(void **state)
{
	kill_server(&server_pid, &server_log);
	unlink(test_tmp_path("server.idx"));
	unlink(test_tmp_path("bad.idx"));
	unlink(test_tmp_path("a.idx"));
	unlink(test_tmp_path("b.idx"));
	unlink(test_tmp_path("swap.idx"));
	unlink(test_tmp_path("limits.idx"));
	return 0;
}

/* ---- a client over a plain socket ---- */

typedef struct {
	int fd;
	char buf[1 << 16];
	size_t start, end;
} client;

static client *cl_open_port(int port)
{
	client *c = calloc(1, sizeof *c);
	assert_non_null(c);
	c->fd = raw_connect(port);
	if (c->fd < 0)
		fail_msg("connect: %s", strerror(errno));
	return c;
}

static client *cl_open(void)
{
	return cl_open_port(server_port);
}

static void cl_close(client *c)
{
	close(c->fd);
	free(c);
}

static void cl_send(client *c, const void *p, size_t n)
{
	if (raw_write(c->fd, p, n))
		fail_msg("send: %s", strerror(errno));
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

/* ---- many clients, reloads under load, limits ---- */

/* Queries with their totals in the first index (DOCS[0..NDOCS_A)). */
static const struct { const char *q; int total; } KNOWN[] = {
	{ "外商投资", 3 }, { "诚信", 1 }, { "负面清单", 1 }, { "国务院", 1 },
	{ "合同", 0 }, { "外商", 3 },
};
#define NKNOWN (sizeof KNOWN / sizeof KNOWN[0])

/* One of the 500 clients: a non-blocking socket with the replies it still
 * waits for in this round. */
enum { MC_ROUNDS = 5, MC_PER_ROUND = 4 };
typedef struct {
	int fd;
	int round, next;      /* the round it is in, the reply it waits for */
	bool done;
	size_t len;
	char in[4096];
	char want[MC_PER_ROUND][128];
	bool prefix[MC_PER_ROUND];   /* want is a prefix of the status, not all of it */
	unsigned lines[MC_PER_ROUND];
} mclient;

static char mc_fail_msg[512];
static int mc_fails;

static void mc_failf(const char *fmt, ...)
{
	if (mc_fails++ == 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(mc_fail_msg, sizeof mc_fail_msg, fmt, ap);
		va_end(ap);
	}
}

/* Sends client i's requests of its current round, noting the answers due. */
static void mc_send_round(mclient *m, int i)
{
	int r = m->round;
	const char *q = KNOWN[(size_t)(i + r) % NKNOWN].q;
	int t = KNOWN[(size_t)(i + r) % NKNOWN].total;
	int g = (i + r) % NDOCS_A;
	char req[512];
	int n = snprintf(req, sizeof req, "COUNT %s\nZ%d_%d\nSEARCH limit=1 fields=id %s\nGET %d\n",
	                 q, i, r, q, g);
	snprintf(m->want[0], sizeof m->want[0], "OK 0 %d", t);
	m->prefix[0] = false;
	m->lines[0] = 0;
	snprintf(m->want[1], sizeof m->want[1], "ERR UNKNOWN unknown command \"Z%d_%d\" (try HELP)", i, r);
	m->prefix[1] = false;
	m->lines[1] = 0;
	snprintf(m->want[2], sizeof m->want[2], "OK %d total=%d ", t > 0, t);
	m->prefix[2] = true;
	m->lines[2] = t > 0;
	snprintf(m->want[3], sizeof m->want[3], "OK 6 id=%d", g);
	m->prefix[3] = false;
	m->lines[3] = 6;
	m->next = 0;
	ssize_t w = send(m->fd, req, (size_t)n, MSG_NOSIGNAL);
	if (w != n)
		mc_failf("client %d: short send (%zd of %d): %s", i, w, n, strerror(errno));
}

/* Checks the complete replies in m's input; returns false on a bad one. */
static bool mc_consume(mclient *m, int i)
{
	for (;;) {
		char *nl = memchr(m->in, '\n', m->len);
		if (!nl)
			return true;
		size_t stlen = (size_t)(nl - m->in);
		unsigned want_lines = 0;
		if (!strncmp(m->in, "OK ", 3))
			want_lines = (unsigned)strtoul(m->in + 3, NULL, 10);
		/* the whole reply must be here */
		char *p = nl + 1, *end = m->in + m->len;
		for (unsigned k = 0; k < want_lines; k++) {
			char *e = memchr(p, '\n', (size_t)(end - p));
			if (!e)
				return true;
			p = e + 1;
		}
		char st[256];
		snprintf(st, sizeof st, "%.*s", (int)stlen, m->in);
		int k = m->next;
		bool ok = m->prefix[k] ? !strncmp(st, m->want[k], strlen(m->want[k]))
		                       : !strcmp(st, m->want[k]);
		if (!ok || want_lines != m->lines[k]) {
			mc_failf("client %d round %d reply %d: \"%s\" (%u lines), expected \"%s\" (%u lines)",
			         i, m->round, k, st, want_lines, m->want[k], m->lines[k]);
			return false;
		}
		if (k == 2 && want_lines == 1) {
			/* the hit is a document of the first index */
			long id = strtol(nl + 1, NULL, 10);
			if (id < 0 || id >= NDOCS_A) {
				mc_failf("client %d: SEARCH hit id %ld", i, id);
				return false;
			}
		}
		size_t used = (size_t)(p - m->in);
		memmove(m->in, p, m->len - used);
		m->len -= used;
		if (++m->next == MC_PER_ROUND) {
			if (m->len) {
				mc_failf("client %d: %zu unexpected bytes", i, m->len);
				return false;
			}
			if (++m->round == MC_ROUNDS) {
				m->done = true;
				return true;
			}
			mc_send_round(m, i);
		}
	}
}

/* 500 clients connected at once, all with requests in flight, each checking
 * its own answers (an unknown command echoes the client's own tag). */
static void test_concurrent_clients(void **state)
{
	enum { N = 500 };
	mclient *mc = calloc(N, sizeof *mc);
	struct pollfd *pf = calloc(N, sizeof *pf);
	int *who = calloc(N, sizeof *who);
	assert_true(mc && pf && who);
	mc_fails = 0;
	long t0 = now_ms();
	for (int i = 0; i < N; i++) {
		mc[i].fd = socket(AF_INET, SOCK_STREAM, 0);
		assert_true(mc[i].fd >= 0);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)server_port) };
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (connect(mc[i].fd, (struct sockaddr *)&a, sizeof a))
			fail_msg("connect %d: %s", i, strerror(errno));
		int one = 1;
		setsockopt(mc[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		fcntl(mc[i].fd, F_SETFL, O_NONBLOCK);
	}
	for (int i = 0; i < N; i++)
		mc_send_round(&mc[i], i);
	long end = now_ms() + 4 * WAIT_MS;
	int active = N;
	while (active && !mc_fails && now_ms() < end) {
		int np = 0;
		for (int i = 0; i < N; i++)
			if (!mc[i].done) {
				pf[np] = (struct pollfd){ mc[i].fd, POLLIN, 0 };
				who[np++] = i;
			}
		int r = poll(pf, (nfds_t)np, 200);
		if (r < 0 && errno == EINTR)
			continue;
		assert_true(r >= 0);
		for (int k = 0; k < np && !mc_fails; k++) {
			if (!pf[k].revents)
				continue;
			mclient *m = &mc[who[k]];
			ssize_t n = recv(m->fd, m->in + m->len, sizeof m->in - 1 - m->len, 0);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n <= 0) {
				mc_failf("client %d: %s in round %d", who[k], n ? strerror(errno) : "EOF", m->round);
				break;
			}
			m->len += (size_t)n;
			if (mc_consume(m, who[k]) && m->done)
				active--;
		}
	}
	long took = now_ms() - t0;
	for (int i = 0; i < N; i++)
		close(mc[i].fd);
	free(mc);
	free(pf);
	free(who);
	if (mc_fails)
		fail_msg("%d failure(s); the first: %s", mc_fails, mc_fail_msg);
	if (active)
		fail_msg("%d of %d clients unfinished after %ld ms", active, N, took);
	fprintf(stderr, "500 clients, %d replies checked in %ld ms\n",
	        N * MC_ROUNDS * MC_PER_ROUND, took);
	client *c = cl_open();
	assert_true(stat_value(c, "connections_total") >= N);
	cl_close(c);
}

typedef struct {
	atomic_int *stop;
	long answers, old_total, new_total, failures;
	char first_failure[300];
} load_arg;

/* Keeps sending COUNT 外商投资 (8 pipelined at a time) until told to stop;
 * every answer must be the old index's total (3) or the new one's (4). */
static void *load_thread(void *p)
{
	load_arg *a = p;
	cl *t = cl_connect(server_port);
	if (!t) {
		a->failures++;
		snprintf(a->first_failure, sizeof a->first_failure, "cannot connect");
		return NULL;
	}
	char batch[8 * 32] = "", st[256];
	for (int i = 0; i < 8; i++)
		strcat(batch, "COUNT 外商投资\n");
	long end = now_ms() + 3 * WAIT_MS;
	while (!atomic_load(a->stop) && now_ms() < end && !a->failures) {
		if (raw_write(t->fd, batch, strlen(batch))) {
			a->failures++;
			snprintf(a->first_failure, sizeof a->first_failure, "send: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < 8; i++) {
			if (cl_read_line(t, st, sizeof st, now_ms() + WAIT_MS) < 0) {
				a->failures++;
				snprintf(a->first_failure, sizeof a->first_failure, "no answer");
				break;
			}
			a->answers++;
			if (!strcmp(st, "OK 0 3")) {
				a->old_total++;
			} else if (!strcmp(st, "OK 0 4")) {
				a->new_total++;
			} else if (a->failures++ == 0) {
				snprintf(a->first_failure, sizeof a->first_failure, "answer \"%s\"", st);
			}
		}
	}
	cl_free(t);
	return NULL;
}

enum { RELOADS = 10 };
typedef struct {
	int done, failures;
	char first_failure[400];
} reload_arg;

/* Puts the index file with n documents at the served path atomically. */
static int swap_in(int n)
{
	const char *src = test_tmp_path(n == NDOCS_A ? "a.idx" : "b.idx");
	const char *tmp = test_tmp_path("swap.idx"), *dst = test_tmp_path("server.idx");
	unlink(tmp);
	return link(src, tmp) || rename(tmp, dst) ? -1 : 0;
}

/* The fifth client: RELOAD, alternately the 6- and the 4-document index. */
static void *reload_thread(void *p)
{
	reload_arg *a = p;
	cl *t = cl_connect(server_port);
	if (!t) {
		a->failures++;
		snprintf(a->first_failure, sizeof a->first_failure, "cannot connect");
		return NULL;
	}
	char st[256], want[64];
	for (int k = 0; k < RELOADS; k++) {
		usleep(60000);
		int n = k % 2 == 0 ? NDOCS_B : NDOCS_A;
		snprintf(want, sizeof want, "OK 0 reloaded %d", n);
		if (swap_in(n)) {
			snprintf(a->first_failure, sizeof a->first_failure, "swap_in: %s", strerror(errno));
			a->failures++;
			break;
		}
		if (raw_write(t->fd, "RELOAD\n", strlen("RELOAD\n")) ||
		    cl_read_line(t, st, sizeof st, now_ms() + WAIT_MS) < 0) {
			snprintf(a->first_failure, sizeof a->first_failure, "RELOAD %d: no answer", k);
			a->failures++;
			break;
		}
		if (strcmp(st, want)) {
			snprintf(a->first_failure, sizeof a->first_failure, "RELOAD %d: \"%s\", expected \"%s\"",
			         k, st, want);
			a->failures++;
			break;
		}
		a->done++;
	}
	usleep(60000);
	cl_free(t);
	return NULL;
}

/* RELOAD under continuous load: 4 clients keep counting while a fifth
 * reloads 10 times; every answer is the old or the new total. */
static void test_reload_under_load(void **state)
{
	build_index(NDOCS_A, test_tmp_path("a.idx"));
	build_index(NDOCS_B, test_tmp_path("b.idx"));
	assert_int_equal(swap_in(NDOCS_A), 0);
	client *c = cl_open();
	expect(c, "RELOAD\n", "OK 0 reloaded 4");
	long reloads0 = stat_value(c, "reloads");

	enum { NLOAD = 4 };
	atomic_int stop = 0;
	load_arg la[NLOAD];
	reload_arg ra;
	memset(la, 0, sizeof la);
	memset(&ra, 0, sizeof ra);
	pthread_t th[NLOAD + 1];
	long t0 = now_ms();
	for (int i = 0; i < NLOAD; i++) {
		la[i].stop = &stop;
		assert_int_equal(pthread_create(&th[i], NULL, load_thread, &la[i]), 0);
	}
	assert_int_equal(pthread_create(&th[NLOAD], NULL, reload_thread, &ra), 0);
	pthread_join(th[NLOAD], NULL);
	atomic_store(&stop, 1);
	long answers = 0, olds = 0, news = 0, fails = 0;
	for (int i = 0; i < NLOAD; i++) {
		pthread_join(th[i], NULL);
		answers += la[i].answers;
		olds += la[i].old_total;
		news += la[i].new_total;
		fails += la[i].failures;
		if (la[i].failures)
			fprintf(stderr, "load client %d: %ld failure(s), the first: %s\n", i, la[i].failures,
			        la[i].first_failure);
	}
	fprintf(stderr, "reload under load: %d reloads, %ld answers (%ld old, %ld new), "
	        "%ld failed, %ld ms\n", ra.done, answers, olds, news, fails, now_ms() - t0);
	if (ra.failures)
		fail_msg("reloader: %s", ra.first_failure);
	assert_int_equal(ra.done, RELOADS);
	assert_int_equal(fails, 0);
	assert_true(olds > 0 && news > 0);
	assert_int_equal(olds + news, answers);
	/* the last reload was of the 4-document index */
	expect(c, "COUNT 外商投资\n", "OK 0 3");
	assert_int_equal(stat_value(c, "reloads"), reloads0 + RELOADS);
	cl_close(c);
}

static long vm_rss_kb(pid_t pid)
{
	long kb = rss_kb(pid);
	assert_true(kb > 0);
	return kb;
}

/* Clients that pipeline many SEARCHes and never read the replies: the
 * others keep getting answers promptly and the server's memory stays
 * bounded (the stalled ones are paused at --max-output). */
static void test_slow_readers(void **state)
{
	enum { NSLOW = 3, MAX_BYTES = 64 << 20 };
	long rss0 = vm_rss_kb(server_pid);
	client *c = cl_open();
	long paused0 = stat_value(c, "output_paused");
	const char *one = "SEARCH 外商投资\n";
	size_t onelen = strlen(one), chunk = 1000 * onelen;
	char *req = malloc(chunk);
	assert_non_null(req);
	for (size_t i = 0; i < 1000; i++)
		memcpy(req + i * onelen, one, onelen);
	client *slow[NSLOW];
	size_t sent[NSLOW];
	long t0 = now_ms();
	for (int s = 0; s < NSLOW; s++) {
		slow[s] = cl_open();
		fcntl(slow[s]->fd, F_SETFL, O_NONBLOCK);
		sent[s] = 0;
		/* send until the server has stopped reading for 300 ms (or 64 MB) */
		size_t off = 0;
		long end = now_ms() + WAIT_MS;
		while (sent[s] < MAX_BYTES && now_ms() < end) {
			ssize_t w = send(slow[s]->fd, req + off, chunk - off, MSG_NOSIGNAL);
			if (w > 0) {
				sent[s] += (size_t)w;
				off = (off + (size_t)w) % chunk;
				continue;
			}
			if (w < 0 && errno != EAGAIN && errno != EINTR)
				fail_msg("slow client %d: send: %s", s, strerror(errno));
			struct pollfd pf = { slow[s]->fd, POLLOUT, 0 };
			if (poll(&pf, 1, 300) == 0)
				break;
		}
		/* meanwhile another client is answered promptly */
		long worst = 0;
		for (int i = 0; i < 50; i++) {
			long q0 = now_ms();
			expect(c, "COUNT 外商投资\n", "OK 0 3");
			if (now_ms() - q0 > worst)
				worst = now_ms() - q0;
		}
		if (worst > 1000)
			fail_msg("a COUNT took %ld ms while %d client(s) were not reading", worst, s + 1);
	}
	/* each stalled connection reaches --max-output, where the server stops
	 * reading its requests (a slow server may still be working through them) */
	long paused, end = now_ms() + WAIT_MS;
	while ((paused = stat_value(c, "output_paused") - paused0) < NSLOW && now_ms() < end)
		usleep(20000);
	long rss1 = vm_rss_kb(server_pid);
	/* new connections are served too, each promptly */
	long worst = 0;
	for (int i = 0; i < 20; i++) {
		long q0 = now_ms();
		client *d = cl_open();
		expect(d, "SEARCH limit=1 fields=id 外商投资\n", "OK 1 total=3 ");
		cl_close(d);
		if (now_ms() - q0 > worst)
			worst = now_ms() - q0;
	}
	fprintf(stderr, "slow readers: sent %zu, %zu, %zu request bytes unread; server RSS %ld -> %ld KiB; "
	        "%ld pauses; slowest new client %ld ms; %ld ms in all\n", sent[0], sent[1], sent[2],
	        rss0, rss1, paused, worst, now_ms() - t0);
	for (int s = 0; s < NSLOW; s++)
		cl_close(slow[s]);
	free(req);
	assert_true(worst < 1000);
	assert_true(paused >= NSLOW);
	assert_true(rss1 - rss0 < 200 * 1024);
	expect(c, "PING\n", "OK 0 PONG");
	cl_close(c);
}

/* The server of a limits test; killed by its teardown whatever happens. */
static pid_t limits_pid = -1;
static int limits_log = -1;

static int stop_limits_server(void **state)
{
	kill_server(&limits_pid, &limits_log);
	unlink(test_tmp_path("limits.idx"));
	return 0;
}

/* --max-conns 3: the 4th connection gets ERR BUSY and is closed; once one
 * closes, a new connection is served. */
static void test_max_conns(void **state)
{
	const char *idx = test_tmp_path("limits.idx");
	build_index(NDOCS_A, idx);
	static const char *const extra[] = { "--threads", "2", "--max-conns", "3", NULL };
	int port;
	limits_pid = spawn_server(idx, extra, 0, &port, NULL, &limits_log);
	client *c[3];
	for (int i = 0; i < 3; i++) {
		c[i] = cl_open_port(port);
		expect(c[i], "PING\n", "OK 0 PONG");
	}
	char st[256];
	client *x = cl_open_port(port);
	ssize_t n = cl_line(x, st, sizeof st);
	if (n < 0 || strcmp(st, "ERR BUSY too many connections (limit 3)"))
		fail_msg("4th connection: %s", n < 0 ? "closed without ERR BUSY" : st);
	assert_int_equal(cl_line(x, st, sizeof st), -1);
	cl_close(x);
	for (int i = 0; i < 3; i++)
		expect(c[i], "PING\n", "OK 0 PONG");   /* the others are unaffected */
	assert_true(stat_value(c[0], "connections_rejected") >= 1);
	cl_close(c[2]);
	/* the slot frees once the server has seen the close */
	bool served = false;
	long end = now_ms() + WAIT_MS;
	while (!served && now_ms() < end) {
		x = cl_open_port(port);
		cl_sends(x, "PING\n");
		served = cl_line(x, st, sizeof st) > 0 && !strcmp(st, "OK 0 PONG");
		cl_close(x);
		if (!served)
			usleep(20000);
	}
	cl_close(c[0]);
	cl_close(c[1]);
	assert_true(served);
}

/* --max-output-total 1M with --max-output far above it: a client that
 * pipelines SEARCHes and never reads is paused at the total, not at its own
 * limit; a reading client is still served; the pending bytes the server
 * counts stay near the total and go back to 0 once the client is gone
 * (each connection gives back what it held when it closes). */
static void test_output_total(void **state)
{
	enum { NREQ = 20000, TOTAL = 1 << 20 };
	const char *idx = test_tmp_path("limits.idx");
	build_index(NDOCS_A, idx);
	static const char *const extra[] = { "--threads", "1", "--max-output", "1G",
	                                     "--max-output-total", "1M", NULL };
	int port;
	limits_pid = spawn_server(idx, extra, 0, &port, NULL, &limits_log);
	client *ctl = cl_open_port(port);
	client *hog = cl_open_port(port);
	int small = 16384;   /* the socket holds little: the server's buffer fills */
	setsockopt(hog->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	const char *one = "SEARCH 外商投资\n";
	size_t onelen = strlen(one);
	char *req = malloc(NREQ * onelen);
	assert_non_null(req);
	for (size_t i = 0; i < NREQ; i++)
		memcpy(req + i * onelen, one, onelen);
	fcntl(hog->fd, F_SETFL, O_NONBLOCK);
	/* all of it, or until the server has stopped reading for 300 ms */
	size_t sent = 0;
	long end = now_ms() + WAIT_MS;
	while (sent < NREQ * onelen && now_ms() < end) {
		ssize_t w = send(hog->fd, req + sent, NREQ * onelen - sent, MSG_NOSIGNAL);
		if (w > 0) {
			sent += (size_t)w;
			continue;
		}
		struct pollfd pf = { hog->fd, POLLOUT, 0 };
		if (poll(&pf, 1, 300) == 0)
			break;
	}
	/* the kernel's socket buffers fill first (MBs on loopback), then the
	 * server's own, up to the total */
	long pending = 0;
	end = now_ms() + WAIT_MS;
	while ((pending = stat_value(ctl, "output_pending")) < TOTAL && now_ms() < end)
		usleep(20000);
	long paused = stat_value(ctl, "output_paused_total");
	long own = stat_value(ctl, "output_paused");
	expect(ctl, "SEARCH limit=1 fields=id 外商投资\n", "OK 1 total=3 ");
	fprintf(stderr, "output total: %zu request bytes sent, paused at the total %ld time(s), at "
	        "--max-output %ld; %ld bytes pending\n", sent, paused, own, pending);
	assert_true(paused >= 1);
	assert_int_equal(own, 0);
	assert_true(pending >= TOTAL && pending < 2 * TOTAL);
	cl_close(hog);
	free(req);
	end = now_ms() + WAIT_MS;
	while ((pending = stat_value(ctl, "output_pending")) != 0 && now_ms() < end)
		usleep(20000);
	assert_int_equal(pending, 0);
	cl_close(ctl);
}

/* --max-input-total 1M: 40 connections each send 60,000 bytes of one line
 * and wait.  Those that come while the total is under the cap are held
 * (no reply: their lines may still end); past it, each one is answered
 * ERR BUSY and closed as its partial line grows; a client of short
 * requests is served throughout; once the held ones go, a long line is
 * held again (each connection gives back its input when it closes). */
static void test_input_total(void **state)
{
	enum { N = 40, PART = 60000, TOTAL = 1 << 20 };
	const char *idx = test_tmp_path("limits.idx");
	build_index(NDOCS_A, idx);
	static const char *const extra[] = { "--threads", "1", "--max-input-total", "1M", NULL };
	int port;
	limits_pid = spawn_server(idx, extra, 0, &port, NULL, &limits_log);
	client *ctl = cl_open_port(port);
	char *part = malloc(PART);
	assert_non_null(part);
	memcpy(part, "SEARCH ", 7);
	memset(part + 7, 'a', PART - 7);
	cl *c[N];
	for (int i = 0; i < N; i++) {
		c[i] = cl_connect(port);
		assert_non_null(c[i]);
		assert_int_equal(raw_write(c[i]->fd, part, PART), 0);
		/* each arrives before the next: the order decides who is held */
		expect(ctl, "PING\n", "OK 0 PONG");
	}
	int held = 0, evicted = 0;
	long settle = now_ms() + 2000;   /* replies come by then, if at all */
	for (int i = 0; i < N; i++) {
		char line[512];
		long wait = settle > now_ms() + 100 ? settle : now_ms() + 100;
		ssize_t n = cl_read_line(c[i], line, sizeof line, wait);
		if (n == CL_TIMEOUT) {
			held++;
			continue;
		}
		if (n < 0 || strncmp(line, "ERR BUSY the server's input buffers are full", 44))
			fail_msg("connection %d: %s", i, n < 0 ? "closed without a reply" : line);
		assert_int_equal(cl_read_line(c[i], line, sizeof line, now_ms() + WAIT_MS), CL_EOF);
		evicted++;
	}
	long counted = stat_value(ctl, "input_evicted");
	fprintf(stderr, "input total: of %d connections holding %d-byte partial lines, %d held and %d "
	        "answered ERR BUSY (input_evicted %ld)\n", N, PART, held, evicted, counted);
	/* at most the cap and one line more is held; fewer when replies and
	 * reads interleave (ASan), as an evicted line counts until it goes */
	assert_true(held >= TOTAL / PART / 2 && held <= TOTAL / PART + 1);
	assert_int_equal(held + evicted, N);
	assert_int_equal(counted, evicted);
	for (int i = 0; i < N; i++)
		cl_free(c[i]);
	/* the held input is given back: a long line is held and then answered */
	bool answered = false;
	long end = now_ms() + WAIT_MS;
	while (!answered && now_ms() < end) {
		cl *x = cl_connect(port);
		assert_non_null(x);
		char line[512];
		assert_int_equal(raw_write(x->fd, part, PART), 0);
		bool held_now = cl_read_line(x, line, sizeof line, now_ms() + 200) == CL_TIMEOUT;
		answered = held_now && !raw_write(x->fd, "\n", 1) &&
		           cl_read_line(x, line, sizeof line, now_ms() + WAIT_MS) > 0 &&
		           strncmp(line, "ERR BUSY", 8);
		cl_free(x);
		if (!answered)
			usleep(50000);
	}
	free(part);
	cl_close(ctl);
	assert_true(answered);
}

/* --idle-timeout 1: an idle connection is closed after about a second, a
 * busy one stays open; --send-timeout 1: one that stops reading its replies
 * (paused at --max-output) is closed too, as its output makes no progress. */
static void test_idle_timeout(void **state)
{
	const char *idx = test_tmp_path("limits.idx");
	build_index(NDOCS_A, idx);
	static const char *const extra[] = { "--threads", "2", "--idle-timeout", "1",
	                                     "--send-timeout", "1", "--max-output", "4096", NULL };
	int port;
	limits_pid = spawn_server(idx, extra, 0, &port, NULL, &limits_log);
	client *idle = cl_open_port(port), *busy = cl_open_port(port), *stalled = cl_open_port(port);
	expect(idle, "PING\n", "OK 0 PONG");
	/* the stalled one: many SEARCHes, as much as goes out at once, never read */
	fcntl(stalled->fd, F_SETFL, O_NONBLOCK);
	static char req[20 * 4096];
	size_t onelen = strlen("SEARCH 外商投资\n"), sent = 0;
	for (size_t i = 0; i + onelen <= sizeof req; i += onelen)
		memcpy(req + i, "SEARCH 外商投资\n", onelen);
	for (int i = 0; i < 16; i++) {
		ssize_t w = send(stalled->fd, req, sizeof req / onelen * onelen, MSG_NOSIGNAL);
		if (w <= 0)
			break;
		sent += (size_t)w;
	}
	assert_true(sent > 0);
	long t0 = now_ms(), closed_after = -1;
	expect(busy, "PING\n", "OK 0 PONG");
	while (now_ms() - t0 < 2500) {
		usleep(100000);
		expect(busy, "COUNT 外商投资\n", "OK 0 3");
		char b;
		if (closed_after < 0 && recv(idle->fd, &b, 1, MSG_DONTWAIT) == 0)
			closed_after = now_ms() - t0;
	}
	expect(busy, "PING\n", "OK 0 PONG");
	long idle_closed = stat_value(busy, "idle_closed");
	long send_closed = stat_value(busy, "send_timeout_closed");
	long paused = stat_value(busy, "output_paused");
	/* the stalled connection ends after the replies it was sent */
	long end = now_ms() + WAIT_MS, got = 0;
	ssize_t r;
	for (;;) {
		struct pollfd pf = { stalled->fd, POLLIN, 0 };
		if (now_ms() >= end || poll(&pf, 1, (int)(end - now_ms())) <= 0)
			fail_msg("the stalled connection is still open after %ld reply bytes", got);
		r = recv(stalled->fd, req, sizeof req, 0);
		if (r <= 0 && !(r < 0 && (errno == EAGAIN || errno == EINTR)))
			break;
		if (r > 0)
			got += r;
	}
	cl_close(idle);
	cl_close(busy);
	cl_close(stalled);
	fprintf(stderr, "idle connection closed after %ld ms; the stalled one after %ld reply bytes "
	        "(%zu request bytes sent)\n", closed_after, got, sent);
	assert_true(closed_after >= 800 && closed_after <= 2500);
	assert_true(paused >= 1);
	assert_int_equal(idle_closed, 1);
	assert_int_equal(send_closed, 1);
}

/* ---- the HTTP/JSON port ---- */

/* One raw HTTP/1.1 GET on a new connection; returns the status code and the
 * body parsed as JSON (NULL if it is not). */
static int http_get(int port, const char *path, cJSON **json)
{
	client *c = cl_open_port(port);
	char req[1024];
	snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
	cl_sends(c, req);
	static char buf[1 << 17];
	size_t len = 0;
	long end = now_ms() + WAIT_MS;
	for (;;) {
		struct pollfd pf = { c->fd, POLLIN, 0 };
		if (now_ms() >= end || poll(&pf, 1, (int)(end - now_ms())) <= 0)
			fail_msg("GET %s: no complete reply", path);
		ssize_t n = recv(c->fd, buf + len, sizeof buf - 1 - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
		assert_true(len < sizeof buf - 1);
	}
	buf[len] = 0;
	cl_close(c);
	int status = 0;
	if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
		fail_msg("GET %s: bad status line: %.80s", path, buf);
	char *body = strstr(buf, "\r\n\r\n");
	assert_non_null(body);
	assert_non_null(strstr(buf, "Content-Type: application/json"));
	*json = cJSON_Parse(body + 4);
	if (!*json)
		fail_msg("GET %s: body is not JSON: %.200s", path, body + 4);
	return status;
}

static void expect_http_error(int port, const char *path, int status, const char *code)
{
	cJSON *j;
	int st = http_get(port, path, &j);
	if (st != status)
		fail_msg("GET %s: status %d, want %d", path, st, status);
	cJSON *e = cJSON_GetObjectItem(j, "error");
	assert_non_null(e);
	const char *cw = cJSON_GetStringValue(cJSON_GetObjectItem(e, "code"));
	assert_non_null(cw);
	assert_string_equal(cw, code);
	assert_non_null(cJSON_GetStringValue(cJSON_GetObjectItem(e, "message")));
	cJSON_Delete(j);
}

static double json_num(cJSON *o, const char *name)
{
	cJSON *v = cJSON_GetObjectItem(o, name);
	if (!cJSON_IsNumber(v))
		fail_msg("\"%s\" is not a number", name);
	return cJSON_GetNumberValue(v);
}

static void test_http(void **state)
{
	const char *idx = test_tmp_path("limits.idx");
	build_index(NDOCS_A, idx);
	static const char *const extra[] = { "--threads", "2", "--http-port", "0", NULL };
	int port, hp;
	limits_pid = spawn_server(idx, extra, 0, &port, &hp, &limits_log);
	assert_true(hp > 0 && hp != port);
	cJSON *j;

	assert_int_equal(http_get(hp, "/health", &j), 200);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "status")), "ok");
	assert_int_equal((int)json_num(j, "documents"), NDOCS_A);
	cJSON_Delete(j);

	/* the line protocol's COUNT, to compare with */
	client *c = cl_open_port(port);
	char st[256];
	cl_sends(c, "COUNT 外商投资\n");
	assert_true(cl_line(c, st, sizeof st) > 0);
	assert_true(!strncmp(st, "OK 0 ", 5));
	int line_total = atoi(st + 5);
	assert_int_equal(line_total, 3);
	cl_close(c);

	assert_int_equal(http_get(hp, "/search?q=%E5%A4%96%E5%95%86%E6%8A%95%E8%B5%84", &j), 200);
	assert_int_equal((int)json_num(j, "total"), line_total);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "exact")));
	json_num(j, "took_us");
	cJSON *hits = cJSON_GetObjectItem(j, "hits");
	assert_true(cJSON_IsArray(hits));
	assert_int_equal(cJSON_GetArraySize(hits), line_total);
	for (int i = 0; i < cJSON_GetArraySize(hits); i++) {
		cJSON *h = cJSON_GetArrayItem(hits, i);
		assert_int_equal((int)json_num(h, "rank"), i + 1);
		int id = (int)json_num(h, "id");
		assert_true(id >= 0 && id < NDOCS_A);
		json_num(h, "score");
		assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(h, "title")), DOCS[id].title);
		assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(h, "path")), DOCS[id].path);
		assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(h, "category")),
		                    DOCS[id].category);
		assert_non_null(cJSON_GetStringValue(cJSON_GetObjectItem(h, "date")));
		const char *snip = cJSON_GetStringValue(cJSON_GetObjectItem(h, "snippet"));
		assert_non_null(snip);
		assert_non_null(strstr(snip, "【外商投资】"));
	}
	cJSON_Delete(j);

	/* limit, offset, snippet=off */
	assert_int_equal(http_get(hp, "/search?q=%E5%A4%96%E5%95%86%E6%8A%95%E8%B5%84&limit=1&offset=1"
	                          "&snippet=off", &j), 200);
	assert_int_equal((int)json_num(j, "total"), line_total);
	hits = cJSON_GetObjectItem(j, "hits");
	assert_int_equal(cJSON_GetArraySize(hits), 1);
	assert_int_equal((int)json_num(cJSON_GetArrayItem(hits, 0), "rank"), 2);
	assert_null(cJSON_GetObjectItem(cJSON_GetArrayItem(hits, 0), "snippet"));
	cJSON_Delete(j);

	assert_int_equal(http_get(hp, "/count?q=%E5%A4%96%E5%95%86%E6%8A%95%E8%B5%84", &j), 200);
	assert_int_equal((int)json_num(j, "total"), line_total);
	cJSON_Delete(j);

	/* doc 2's body holds a TAB and a backslash: JSON-escaped, then parsed back */
	assert_int_equal(http_get(hp, "/doc/2", &j), 200);
	assert_int_equal((int)json_num(j, "id"), 2);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "title")), DOCS[2].title);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "category")), DOCS[2].category);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "date")), "2020-05-28");
	const char *text = cJSON_GetStringValue(cJSON_GetObjectItem(j, "text"));
	assert_non_null(text);
	assert_non_null(strstr(text, "\tTAB 与 \\ 反斜杠"));
	cJSON_Delete(j);
	assert_int_equal(http_get(hp, "/doc/0", &j), 200);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "path")), DOCS[0].path);
	cJSON_Delete(j);

	assert_int_equal(http_get(hp, "/stats", &j), 200);
	assert_int_equal((int)json_num(j, "documents"), NDOCS_A);
	assert_true(json_num(j, "requests") >= 1);
	assert_non_null(cJSON_GetStringValue(cJSON_GetObjectItem(j, "index_file")));
	cJSON_Delete(j);

	expect_http_error(hp, "/doc/999999", 404, "NOTFOUND");
	expect_http_error(hp, "/doc/abc", 404, "NOTFOUND");
	expect_http_error(hp, "/search", 400, "QUERY");
	expect_http_error(hp, "/search?q=", 400, "QUERY");
	expect_http_error(hp, "/count", 400, "QUERY");
	expect_http_error(hp, "/search?q=%28", 400, "QUERY");
	expect_http_error(hp, "/search?q=x&limit=abc", 400, "ARGS");
	expect_http_error(hp, "/search?q=x&limit=1%20offset=2", 400, "ARGS");
	expect_http_error(hp, "/nope", 404, "NOTFOUND");

	/* a POST is refused with 405 */
	c = cl_open_port(hp);
	cl_sends(c, "POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
	assert_true(cl_line(c, st, sizeof st) > 0);
	assert_true(!strncmp(st, "HTTP/1.1 405", 12));
	cl_close(c);
}

/* ---- the time budget, the slow-query log, the Unix socket ---- */

static client *cl_open_unix(const char *path)
{
	client *c = calloc(1, sizeof *c);
	assert_non_null(c);
	c->fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(c->fd >= 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
	if (connect(c->fd, (struct sockaddr *)&a, sizeof a))
		fail_msg("connect %s: %s", path, strerror(errno));
	return c;
}

/* An index big enough for a query to outlast a 1 us budget: the engine
 * looks at the clock every ENGINE_TICKS documents. */
static void build_big_index(const char *out, size_t ndocs)
{
	index_writer *w = writer_new(NULL);
	assert_non_null(w);
	char err[256], path[64], body[128];
	for (size_t i = 0; i < ndocs; i++) {
		snprintf(path, sizeof path, "d/%zu.md", i);
		int n = snprintf(body, sizeof body, "第%zu号：外商投资企业依法经营。", i);
		corpus_doc d = { path, path, "d", NULL, body, (size_t)n, 20200101, NULL };
		assert_int_equal(writer_add(w, &d, err, sizeof err), 0);
	}
	if (writer_finish(w, out, NULL, err, sizeof err))
		fail_msg("writer_finish: %s", err);
	writer_free(w);
}

/* Reads the server's log until it holds `want`; false after WAIT_MS. */
static bool log_holds(int logfd, const char *want)
{
	static char log[1 << 16];
	size_t len = 0;
	long end = now_ms() + WAIT_MS;
	while (now_ms() < end) {
		ssize_t n = read(logfd, log + len, sizeof log - 1 - len);
		if (n > 0) {
			fwrite(log + len, 1, (size_t)n, stderr);
			len += (size_t)n;
			log[len] = 0;
			if (strstr(log, want))
				return true;
			if (len > sizeof log / 2) {   /* keep the tail */
				memmove(log, log + len - 1024, 1024);
				len = 1024;
			}
			continue;
		}
		usleep(20000);
	}
	return false;
}

/* Runs the server with extra arguments that must make it refuse to start;
 * returns its exit status (fails if it does not exit within WAIT_MS). */
static int refused_start(const char *idx, const char *const *extra)
{
	char exe[512];
	snprintf(exe, sizeof exe, "%s/sousuo-server", test_bin_dir());
	const char *argv[32] = { exe, "-i", idx, "--port", "0" };
	int argc = 5;
	for (int i = 0; extra[i] && argc < 31; i++)
		argv[argc++] = extra[i];
	argv[argc] = NULL;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execv(exe, (char *const *)argv);
		_exit(127);
	}
	long end = now_ms() + WAIT_MS;
	int st;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (now_ms() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			fail_msg("the server did not refuse to start");
		}
		usleep(20000);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* --query-timeout 1us: a query with real work is abandoned with ERR BUSY
 * (over the line protocol, on the Unix socket, and as HTTP 503), the
 * connection stays usable and a cheap command still works; --slow-log logs
 * it; a stale socket file is replaced, a file that is not a socket is not. */
static void test_budget_slowlog_unix(void **state)
{
	const char *idx = test_tmp_path("limits.idx");
	build_big_index(idx, 5000);
	char sock[256];
	snprintf(sock, sizeof sock, "%s", test_tmp_path("server.sock"));
	unlink(sock);
	static const char *extra[] = { "--threads", "2", "--query-timeout", "1us", "--slow-log", "1us",
	                               "--http-port", "0", "--unix", NULL, NULL };
	extra[9] = sock;
	int port, hp;
	limits_pid = spawn_server(idx, extra, 0, &port, &hp, &limits_log);
	client *u = cl_open_unix(sock);
	expect(u, "PING\n", "OK 0 PONG");
	expect(u, "SEARCH 外商投资\n", "ERR BUSY the query ran past its time budget (1 us)");
	expect(u, "COUNT 外\n", "ERR BUSY the query ran past its time budget (1 us)");
	expect(u, "GET 7\n", "OK 6 id=7");
	client *t = cl_open_port(port);
	expect(t, "COUNT 外商投资 | 依法\n", "ERR BUSY the query ran past its time budget (1 us)");
	assert_true(stat_value(t, "queries_timed_out") >= 3);
	assert_true(stat_value(t, "slow_requests") >= 3);
	cl_close(t);
	expect_http_error(hp, "/search?q=%E5%A4%96", 503, "BUSY");
	assert_true(log_holds(limits_log, "slow request: "));
	cl_close(u);

	/* killed, the server leaves its socket file; the next one replaces it */
	kill_server(&limits_pid, &limits_log);
	static const char *again[] = { "--threads", "1", "--unix", NULL, NULL };
	again[3] = sock;
	limits_pid = spawn_server(idx, again, 0, &port, NULL, &limits_log);
	u = cl_open_unix(sock);
	expect(u, "COUNT 外商投资\n", "OK 0 5000");
	cl_close(u);
	/* while it lives, a second server on the same path is refused */
	assert_int_equal(refused_start(idx, again), 1);
	kill_server(&limits_pid, &limits_log);
	/* a path holding something else is never removed */
	unlink(sock);
	FILE *f = fopen(sock, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(refused_start(idx, again), 1);
	struct stat stt;
	assert_int_equal(stat(sock, &stt), 0);
	assert_true(S_ISREG(stt.st_mode));
	unlink(sock);
}

/* One raw HTTP GET with an Authorization header (or none); the status. */
static int http_status_auth(int port, const char *path, const char *auth)
{
	client *c = cl_open_port(port);
	char req[1024], st[256];
	snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n%s%s%sConnection: close\r\n\r\n",
	         path, auth ? "Authorization: " : "", auth ? auth : "", auth ? "\r\n" : "");
	cl_sends(c, req);
	int status = 0;
	if (cl_line(c, st, sizeof st) > 0)
		sscanf(st, "HTTP/1.1 %d", &status);
	cl_close(c);
	return status;
}

/* --requirepass: until AUTH, only AUTH, PING, HELP and QUIT run; a wrong
 * password is refused (three close the connection); HTTP wants a Bearer
 * header; binding beyond loopback without a password is refused; a server
 * without one says so to AUTH. */
static void test_requirepass(void **state)
{
	const char *idx = test_tmp_path("limits.idx");
	build_index(NDOCS_A, idx);
	static const char *const extra[] = { "--threads", "2", "--requirepass", "s3cret pass",
	                                     "--http-port", "0", NULL };
	int port, hp;
	limits_pid = spawn_server(idx, extra, 0, &port, &hp, &limits_log);
	client *c = cl_open_port(port);
	expect(c, "PING\n", "OK 0 PONG");
	expect(c, "COUNT 外商投资\n", "ERR AUTH authentication required (AUTH <password>)");
	expect(c, "STATS\n", "ERR AUTH authentication required (AUTH <password>)");
	expect(c, "AUTH s3cret\n", "ERR AUTH wrong password");
	expect(c, "AUTH s3cret pass\n", "OK 0 authenticated");
	expect(c, "COUNT 外商投资\n", "OK 0 3");
	expect(c, "AUTH s3cret pas\n", "ERR AUTH wrong password");   /* and logged out */
	expect(c, "COUNT 外商投资\n", "ERR AUTH authentication required (AUTH <password>)");
	cl_close(c);
	/* three wrong passwords end the connection */
	c = cl_open_port(port);
	expect(c, "AUTH a\n", "ERR AUTH wrong password");
	expect(c, "AUTH b\n", "ERR AUTH wrong password");
	expect(c, "AUTH c\n", "ERR AUTH wrong password; closing after 3 tries");
	char st[256];
	assert_int_equal(cl_line(c, st, sizeof st), -1);
	cl_close(c);
	c = cl_open_port(port);
	expect(c, "AUTH s3cret pass\n", "OK 0 authenticated");
	assert_true(stat_value(c, "auth_failures") >= 5);
	cl_close(c);
	/* HTTP */
	assert_int_equal(http_status_auth(hp, "/count?q=x", NULL), 401);
	assert_int_equal(http_status_auth(hp, "/count?q=x", "Bearer wrong"), 401);
	assert_int_equal(http_status_auth(hp, "/count?q=x", "Bearer s3cret pass"), 200);
	kill_server(&limits_pid, &limits_log);
	/* beyond loopback, a password is required */
	static const char *const open_bind[] = { "--bind", "0.0.0.0", NULL };
	assert_int_equal(refused_start(idx, open_bind), 1);
	/* no password set: AUTH is an argument error */
	client *m = cl_open();
	expect(m, "AUTH x\n", "ERR ARGS this server has no password (no --requirepass)");
	cl_close(m);
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
		cmocka_unit_test(test_concurrent_clients),
		cmocka_unit_test(test_reload_under_load),
		cmocka_unit_test(test_slow_readers),
		cmocka_unit_test_teardown(test_max_conns, stop_limits_server),
		cmocka_unit_test_teardown(test_output_total, stop_limits_server),
		cmocka_unit_test_teardown(test_input_total, stop_limits_server),
		cmocka_unit_test_teardown(test_idle_timeout, stop_limits_server),
		cmocka_unit_test_teardown(test_http, stop_limits_server),
		cmocka_unit_test_teardown(test_budget_slowlog_unix, stop_limits_server),
		cmocka_unit_test_teardown(test_requirepass, stop_limits_server),
		cmocka_unit_test(test_sigterm),
	};
	return cmocka_run_group_tests(tests, start_server, stop_server);
}
