/* fuzz_reply.c — libFuzzer target for the client side of the line protocol:
 * the status-line parser, unescaping and field splitting
 * (protocol/client_parse.c), the incremental reply scanner of the benchmark
 * (protocol/reply_scan.c), and the client library's whole read path
 * (protocol/client.c) fed the input as a server's byte stream.  A server is
 * not trusted to be well-behaved: a bug, a wrong port or a proxy in between
 * can send anything.
 *
 * Checked beyond "no crash":
 *  - a status line that parses is written back by the reply writer
 *    (protocol/response.c) and parses to the same thing;
 *  - unescape undoes proto_put_field for any bytes, in place or not, and
 *    re-escaping what it unescaped round-trips;
 *  - splitting at TABs gives the line back;
 *  - the scanner gives the same replies whatever the points the stream is
 *    split at, and the same replies as the client library reads from a
 *    socket (a differential test of two independent framers), failing at
 *    the same reply for the same reason;
 *  - proto_reply_fields agrees with splitting and unescaping by hand. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "protocol/client.h"
#include "protocol/protocol.h"
#include "tests/fuzz/fuzz_util.h"

/* Replies compared per input; a longer stream is compared up to here. */
#define REP_MAX_REPLIES 256
/* Bytes given to the client: what a socket buffer takes without a reader. */
#define REP_MAX_STREAM (64u << 10)

typedef struct {
	bool ok;
	uint32_t nlines;
	proto_errcode code;
} rep_reply;

typedef struct {
	rep_reply r[REP_MAX_REPLIES];
	size_t n;
	proto_scan_result end;     /* MORE: the stream ended; BAD or TOOLONG */
} rep_seq;

static struct {
	int ready;
	int lfd;                   /* listening Unix socket the client connects to */
	char path[108];
	char *tmp;                 /* scratch buffers of the input's size */
	size_t tmpcap;
} rep_g;

static void rep_cleanup(void)
{
	unlink(rep_g.path);
}

static void rep_init(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(rep_g.path, sizeof rep_g.path, "%s/sousuo-fuzz-%ld-reply.sock",
	         tmp && *tmp ? tmp : "/tmp", (long)getpid());
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	FUZZ_CHECK(strlen(rep_g.path) < sizeof sun.sun_path);
	memcpy(sun.sun_path, rep_g.path, strlen(rep_g.path) + 1);
	unlink(rep_g.path);
	rep_g.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	FUZZ_CHECK(rep_g.lfd >= 0);
	FUZZ_CHECK(bind(rep_g.lfd, (struct sockaddr *)&sun, sizeof sun) == 0);
	FUZZ_CHECK(listen(rep_g.lfd, 4) == 0);
	atexit(rep_cleanup);
	rep_g.ready = 1;
}

static char *rep_scratch(size_t n)
{
	if (n + 1 > rep_g.tmpcap) {
		char *p = realloc(rep_g.tmp, n + 1);
		FUZZ_CHECK(p != NULL);
		rep_g.tmp = p;
		rep_g.tmpcap = n + 1;
	}
	return rep_g.tmp;
}

/* ---- one line: status, fields, escapes ------------------------------------------ */

static void rep_check_status(const char *line, size_t len)
{
	proto_status st;
	if (proto_parse_status(line, len, &st) != 0)
		return;
	proto_buf b;
	proto_buf_init(&b);
	if (st.ok) {
		FUZZ_CHECK(len >= 4 && memcmp(line, "OK ", 3) == 0);
		FUZZ_CHECK(st.info >= line && st.info + st.info_len <= line + len);
		FUZZ_CHECK(proto_put_ok(&b, st.nlines, "%.*s", (int)st.info_len, st.info) == 0);
	} else {
		FUZZ_CHECK(len >= 5 && memcmp(line, "ERR ", 4) == 0);
		FUZZ_CHECK(st.code_word == line + 4 && st.code_len >= 1);
		FUZZ_CHECK(st.msg >= line && st.msg + st.msg_len <= line + len);
		bool known = strlen(proto_errcode_word(st.code)) == st.code_len &&
		             memcmp(proto_errcode_word(st.code), st.code_word, st.code_len) == 0;
		FUZZ_CHECK(known || st.code == PROTO_E_INTERNAL);
		if (known) {
			char msg[1100];
			if (st.msg_len < sizeof msg) {
				memcpy(msg, st.msg, st.msg_len);
				msg[st.msg_len] = 0;
				FUZZ_CHECK(proto_put_err(&b, st.code, msg) == 0);
			}
		}
	}
	if (b.len) {
		proto_status again;
		FUZZ_CHECK(b.p[b.len - 1] == '\n');
		FUZZ_CHECK(proto_parse_status(b.p, b.len - 1, &again) == 0);
		FUZZ_CHECK(again.ok == st.ok && again.nlines == st.nlines && again.code == st.code);
		if (st.ok)
			FUZZ_CHECK(again.info_len == st.info_len &&
			           memcmp(again.info, st.info, st.info_len) == 0);
		else if (st.msg_len)
			FUZZ_CHECK(again.msg_len == st.msg_len &&
			           memcmp(again.msg, st.msg, st.msg_len) == 0);
	}
	proto_buf_free(&b);
}

static void rep_check_escapes(const char *s, size_t n)
{
	/* escaping any bytes gives one clean field that unescapes back */
	proto_buf b;
	proto_buf_init(&b);
	FUZZ_CHECK(proto_put_field(&b, s, n) == 0 && !b.failed);
	for (size_t i = 0; i < b.len; i++)
		FUZZ_CHECK((unsigned char)b.p[i] >= 0x20 && b.p[i] != 0x7f);
	char *out = malloc(b.len + 1);
	FUZZ_CHECK(out != NULL);
	ssize_t r = proto_unescape(b.p, b.len, out, b.len);
	FUZZ_CHECK(r == (ssize_t)n && memcmp(out, s, n) == 0);
	free(out);

	/* unescaping the input: out of place and in place agree; too small a
	 * buffer is -2; escaping the result and unescaping again is stable */
	char *a = malloc(n + 1), *inplace = rep_scratch(n);
	FUZZ_CHECK(a != NULL);
	memcpy(inplace, s, n);
	ssize_t ra = proto_unescape(s, n, a, n);
	ssize_t rb = proto_unescape(inplace, n, inplace, n);
	FUZZ_CHECK(ra == rb && ra >= -1 && ra <= (ssize_t)n);
	if (ra > 0) {
		FUZZ_CHECK(memcmp(a, inplace, (size_t)ra) == 0);
		FUZZ_CHECK(proto_unescape(s, n, rep_scratch(n), (size_t)ra - 1) == -2);
	}
	if (ra >= 0) {
		proto_buf_reset(&b);
		FUZZ_CHECK(proto_put_field(&b, a, (size_t)ra) == 0);
		char *c = malloc(b.len + 1);
		FUZZ_CHECK(c != NULL);
		FUZZ_CHECK(proto_unescape(b.p, b.len, c, b.len) == ra && memcmp(c, a, (size_t)ra) == 0);
		free(c);
	}
	free(a);
	proto_buf_free(&b);
}

static void rep_check_split(const char *s, size_t n)
{
	proto_slice f[8];
	size_t tabs = 0;
	for (size_t i = 0; i < n; i++)
		tabs += s[i] == '\t';
	size_t nf = proto_split_fields(s, n, f, 8);
	FUZZ_CHECK(nf == tabs + 1);
	const char *at = s;
	for (size_t i = 0; i < nf && i < 8; i++) {
		FUZZ_CHECK(f[i].p == at && f[i].n <= n - (size_t)(at - s));
		FUZZ_CHECK(memchr(f[i].p, '\t', f[i].n) == NULL);
		at = f[i].p + f[i].n;
		FUZZ_CHECK(at == s + n || *at == '\t');
		at++;
	}
	if (nf <= 8)
		FUZZ_CHECK(at == s + n + 1);
}

/* ---- the stream: scanner and client ---------------------------------------------- */

/* Scans s[0..n) fed in pieces of `step` bytes (0: all at once). */
static void rep_scan(const char *s, size_t n, size_t step, rep_seq *q)
{
	proto_scan sc;
	proto_scan_init(&sc);
	q->n = 0;
	q->end = PROTO_SCAN_MORE;
	size_t at = 0;
	while (at < n && q->n < REP_MAX_REPLIES) {
		size_t piece = step && n - at > step ? step : n - at;
		proto_scan_reply out;
		memset(&out, 0x5a, sizeof out);
		ssize_t used = proto_scan_feed(&sc, s + at, piece, &out);
		if (used < 0) {
			FUZZ_CHECK(out.result == PROTO_SCAN_BAD || out.result == PROTO_SCAN_TOOLONG);
			q->end = out.result;
			/* broken is sticky */
			proto_scan_reply again;
			FUZZ_CHECK(proto_scan_feed(&sc, "OK 0\n", 5, &again) == -1 &&
			           again.result == out.result);
			return;
		}
		FUZZ_CHECK(used >= 1 && (size_t)used <= piece);
		at += (size_t)used;
		if (out.result == PROTO_SCAN_REPLY) {
			FUZZ_CHECK(s[at - 1] == '\n');
			if (!out.ok)
				FUZZ_CHECK(strnlen(out.code_word, sizeof out.code_word) <
				           sizeof out.code_word && out.code_word[0] >= 'A' &&
				           out.code_word[0] <= 'Z');
			q->r[q->n++] = (rep_reply){ out.ok, out.ok ? out.nlines : 0,
			                            out.ok ? 0 : out.code };
		} else {
			FUZZ_CHECK(out.result == PROTO_SCAN_MORE && (size_t)used == piece);
		}
	}
}

static bool rep_same(const rep_seq *a, const rep_seq *b)
{
	if (a->n != b->n || a->end != b->end)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (a->r[i].ok != b->r[i].ok || a->r[i].nlines != b->r[i].nlines ||
		    a->r[i].code != b->r[i].code)
			return false;
	return true;
}

/* proto_reply_fields on line i against splitting and unescaping a copy
 * (lines of up to 16 fields; longer ones are only split). */
static void rep_check_fields(proto_reply *r, uint32_t i)
{
	size_t len = r->lens[i];
	FUZZ_CHECK(r->lines[i][len] == 0);
	char *copy = malloc(len + 1);
	FUZZ_CHECK(copy != NULL);
	memcpy(copy, r->lines[i], len);
	proto_slice f[16], g[16];
	size_t want = proto_split_fields(copy, len, g, 16);
	ssize_t nf = proto_reply_fields(r, i, f, 16);
	if (want <= 16) {
		bool good = true;
		for (size_t k = 0; k < want; k++)
			good = good && proto_unescape(g[k].p, g[k].n, rep_scratch(g[k].n), g[k].n) >= 0;
		FUZZ_CHECK((nf >= 0) == good);
		if (nf >= 0) {
			FUZZ_CHECK((size_t)nf == want);
			for (size_t k = 0; k < want; k++) {
				char *u = rep_scratch(g[k].n);
				ssize_t un = proto_unescape(g[k].p, g[k].n, u, g[k].n);
				FUZZ_CHECK(un == (ssize_t)f[k].n && memcmp(u, f[k].p, f[k].n) == 0);
			}
			FUZZ_CHECK(proto_reply_fields(r, i, f, 16) == -1);   /* split once only */
		} else {
			FUZZ_CHECK(memcmp(copy, r->lines[i], len) == 0);  /* left untouched */
		}
	}
	free(copy);
}

/* Reads s[0..n) as a server's stream through the client library and
 * compares every reply with what the scanner found in the same bytes. */
static void rep_client(const char *s, size_t n, const rep_seq *scan)
{
	char err[256];
	proto_client *c = proto_client_connect(rep_g.path, 0, 5000, err, sizeof err);
	FUZZ_CHECK(c != NULL);
	int sfd = accept4(rep_g.lfd, NULL, NULL, SOCK_CLOEXEC);
	FUZZ_CHECK(sfd >= 0);
	size_t off = 0;
	while (off < n) {
		ssize_t w = write(sfd, s + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		FUZZ_CHECK(w > 0);
		off += (size_t)w;
	}
	close(sfd);

	size_t k = 0;
	int rc;
	for (;; k++) {
		proto_reply r;
		if (k == REP_MAX_REPLIES) {
			rc = 0;   /* the comparison's bound: the scanner stopped here */
			break;
		}
		rc = proto_client_read_reply(c, &r);
		if (rc != 0)
			break;
		if (k >= scan->n) {
			/* the scanner stopped earlier: only at a status line it
			 * found too long */
			FUZZ_CHECK(scan->end == PROTO_SCAN_TOOLONG);
			break;
		}
		const rep_reply *want = &scan->r[k];
		FUZZ_CHECK(r.ok == want->ok && r.nlines == want->nlines);
		FUZZ_CHECK(r.ok || r.st.code == want->code);
		FUZZ_CHECK(r.status[r.status_len] == 0);
		for (uint32_t i = 0; i < r.nlines; i++)
			rep_check_fields(&r, i);
	}
	if (rc != 0) {
		/* every reply the scanner completed, the client read too, and it
		 * stops for the reason the scanner stopped */
		bool agree = k >= scan->n &&
		             (scan->end == PROTO_SCAN_TOOLONG ||
		              rc == (scan->end == PROTO_SCAN_BAD ? PROTO_CLIENT_EPROTO
		                                                 : PROTO_CLIENT_ECLOSED));
		if (!agree)
			fprintf(stderr, "client: %s (%s) after %zu replies; scanner: %zu replies, then %s\n",
			        proto_client_strcode(rc), proto_client_error(c), k, scan->n,
			        scan->end == PROTO_SCAN_BAD ? "BAD" :
			        scan->end == PROTO_SCAN_TOOLONG ? "TOOLONG" : "end of stream");
		FUZZ_CHECK(agree);
		/* a broken client stays broken */
		proto_reply r;
		FUZZ_CHECK(proto_client_read_reply(c, &r) == rc && r.nlines == 0);
		FUZZ_CHECK(proto_client_error(c)[0] != 0);
	}
	proto_client_close(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!rep_g.ready)
		rep_init();
	const char *s = (const char *)data;

	/* the input's first line, as a status line and as a reply line */
	const char *nl = memchr(s, '\n', size);
	size_t first = nl ? (size_t)(nl - s) : size;
	rep_check_status(s, first);
	rep_check_status(s, size);
	rep_check_escapes(s, first);
	rep_check_split(s, first);

	/* the whole input as a stream of replies */
	size_t n = size < REP_MAX_STREAM ? size : REP_MAX_STREAM;
	static rep_seq whole, piece;
	rep_scan(s, n, 0, &whole);
	static const size_t steps[] = { 1, 2, 3, 7, 64, 1025 };
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		rep_scan(s, n, steps[i], &piece);
		FUZZ_CHECK(rep_same(&whole, &piece));
	}
	rep_client(s, n, &whole);
	return 0;
}
