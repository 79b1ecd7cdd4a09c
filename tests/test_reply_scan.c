/* test_reply_scan.c — the incremental reply scanner (protocol.h, proto_scan):
 * a stream of several replies fed whole, byte by byte and cut at random
 * points must give the same replies ending at the same offsets; "\r\n"
 * endings; malformed and over-long status lines, also split; code words. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "protocol/protocol.h"
#include "tests/testutil.h"

/* ---- helpers ---------------------------------------------------------------- */

#define MAX_GOT 64

typedef struct {
	bool ok;
	uint32_t nlines;
	proto_errcode code;
	char word[PROTO_SCAN_MAX_CODE + 1];
	size_t end;                  /* stream offset just past the reply */
} got_reply;

typedef struct {
	got_reply r[MAX_GOT];
	size_t n;
	proto_scan_result lost;      /* BAD or TOOLONG when the stream was lost, else MORE */
	size_t lost_at;              /* the offset of the feed that reported it */
} got_stream;

/* xorshift64*: a fixed seed so failures reproduce. */
static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

enum { WHOLE, BYTES, RANDOM };

/* Feeds s[0..len) in chunks (each copied to a buffer of its exact size, so
 * ASan sees any read past a chunk) and collects the replies. */
static void scan_stream(const char *s, size_t len, int how, got_stream *g)
{
	memset(g, 0, sizeof *g);
	proto_scan sc;
	proto_scan_init(&sc);
	size_t pos = 0;
	while (pos < len) {
		size_t n = how == WHOLE ? len - pos : how == BYTES ? 1 : 1 + rng() % 40;
		if (n > len - pos)
			n = len - pos;
		char *chunk = malloc(n);
		assert_non_null(chunk);
		memcpy(chunk, s + pos, n);
		size_t off = 0;
		while (off < n) {
			proto_scan_reply rep;
			memset(&rep, 0xa5, sizeof rep);
			ssize_t k = proto_scan_feed(&sc, chunk + off, n - off, &rep);
			if (k < 0) {
				assert_true(rep.result == PROTO_SCAN_BAD || rep.result == PROTO_SCAN_TOOLONG);
				g->lost = rep.result;
				g->lost_at = pos + off;
				free(chunk);
				/* sticky until proto_scan_init */
				proto_scan_reply again;
				assert_int_equal(proto_scan_feed(&sc, "OK 0\n", 5, &again), -1);
				assert_int_equal(again.result, g->lost);
				return;
			}
			assert_true((size_t)k <= n - off);
			off += (size_t)k;
			if (rep.result == PROTO_SCAN_MORE) {
				assert_int_equal(off, n);
				break;
			}
			assert_int_equal(rep.result, PROTO_SCAN_REPLY);
			assert_true(k > 0);
			assert_true(g->n < MAX_GOT);
			got_reply *r = &g->r[g->n++];
			r->ok = rep.ok;
			r->nlines = rep.nlines;
			r->end = pos + off;
			if (!rep.ok) {
				r->code = rep.code;
				assert_true(strlen(rep.code_word) <= PROTO_SCAN_MAX_CODE);
				strcpy(r->word, rep.code_word);
			}
		}
		free(chunk);
		pos += n;
	}
	/* an empty feed at a reply boundary ends nothing */
	proto_scan_reply rep;
	assert_int_equal(proto_scan_feed(&sc, "", 0, &rep), 0);
	assert_int_equal(rep.result, PROTO_SCAN_MORE);
}

static void same_streams(const got_stream *a, const got_stream *b)
{
	assert_int_equal(a->n, b->n);
	assert_int_equal(a->lost, b->lost);
	for (size_t i = 0; i < a->n; i++) {
		assert_int_equal(a->r[i].ok, b->r[i].ok);
		assert_int_equal(a->r[i].nlines, b->r[i].nlines);
		assert_int_equal(a->r[i].end, b->r[i].end);
		if (!a->r[i].ok) {
			assert_int_equal(a->r[i].code, b->r[i].code);
			assert_string_equal(a->r[i].word, b->r[i].word);
		}
	}
}

/* Every way of feeding gives `want` (checked on the whole feed by the caller). */
static void all_feeds_agree(const char *s, size_t len, got_stream *whole)
{
	got_stream g;
	scan_stream(s, len, WHOLE, whole);
	scan_stream(s, len, BYTES, &g);
	same_streams(whole, &g);
	for (int i = 0; i < 200; i++) {
		scan_stream(s, len, RANDOM, &g);
		same_streams(whole, &g);
	}
}

/* Replaces every "\n" by "\r\n" (malloc'd; *len updated). */
static char *crlf(const char *s, size_t *len)
{
	char *out = malloc(2 * *len + 1);
	assert_non_null(out);
	size_t o = 0;
	for (size_t i = 0; i < *len; i++) {
		if (s[i] == '\n')
			out[o++] = '\r';
		out[o++] = s[i];
	}
	*len = o;
	return out;
}

/* ---- tests ------------------------------------------------------------------- */

static const char stream[] =
	"OK 3 total=132 exact=1 took_us=41\n"
	"1\t42\t12.5000\t外商投资法\tpath/a.md\t法律\t2019-03-15\t【外商投资】\n"
	"2\t7\t\\t\\n\\\\\tx\n"
	"\n"                                   /* an empty hit line is still a line */
	"ERR QUERY unbalanced \"(\" at column 3\n"
	"OK 0 PONG\n"
	"OK 1\n"
	"ERR UTF8 looks like a status line but is the line of OK 1\n"
	"ERR UTF8\n"
	"OK 2 stats\n"
	"OK 5 not a status line\n"            /* a line that looks like a status, inside a body */
	"ERR BUSY\n"
	"ERR NEWCODE9 from a newer server\n"
	"OK 0\n";

static void check_stream_replies(const got_stream *g, const char *s, size_t len)
{
	assert_int_equal(g->lost, PROTO_SCAN_MORE);
	assert_int_equal(g->n, 8);
	assert_true(g->r[0].ok);
	assert_int_equal(g->r[0].nlines, 3);
	assert_false(g->r[1].ok);
	assert_int_equal(g->r[1].code, PROTO_E_QUERY);
	assert_string_equal(g->r[1].word, "QUERY");
	assert_true(g->r[2].ok);
	assert_int_equal(g->r[2].nlines, 0);
	assert_true(g->r[3].ok);
	assert_int_equal(g->r[3].nlines, 1);
	assert_false(g->r[4].ok);
	assert_int_equal(g->r[4].code, PROTO_E_UTF8);
	assert_string_equal(g->r[4].word, "UTF8");
	assert_true(g->r[5].ok);
	assert_int_equal(g->r[5].nlines, 2);
	assert_false(g->r[6].ok);
	assert_int_equal(g->r[6].code, PROTO_E_INTERNAL);   /* unknown words count as INTERNAL */
	assert_string_equal(g->r[6].word, "NEWCODE9");
	assert_true(g->r[7].ok);
	assert_int_equal(g->r[7].nlines, 0);
	assert_int_equal(g->r[7].end, len);
	/* every reply ends just after a "\n", and the next starts with OK or ERR */
	for (size_t i = 0; i < g->n; i++) {
		assert_int_equal(s[g->r[i].end - 1], '\n');
		if (g->r[i].end < len)
			assert_true(!strncmp(s + g->r[i].end, "OK ", 3) || !strncmp(s + g->r[i].end, "ERR ", 4));
	}
}

static void test_stream(void **state)
{
	size_t len = sizeof stream - 1;
	got_stream g;
	all_feeds_agree(stream, len, &g);
	check_stream_replies(&g, stream, len);
	/* the other code words */
	got_stream h;
	const char busy[] = "ERR BUSY too many connections\nERR TOOLONG\n";
	all_feeds_agree(busy, sizeof busy - 1, &h);
	assert_int_equal(h.n, 2);
	assert_int_equal(h.r[0].code, PROTO_E_BUSY);
	assert_int_equal(h.r[1].code, PROTO_E_TOOLONG);
}

static void test_crlf(void **state)
{
	size_t len = sizeof stream - 1;
	char *s = crlf(stream, &len);
	got_stream g;
	all_feeds_agree(s, len, &g);
	check_stream_replies(&g, s, len);
	free(s);
}

static void test_big_body(void **state)
{
	/* body lines of any length cost the scanner nothing */
	size_t line = 300000, len = 0;
	char *s = malloc(2 * line + 64);
	assert_non_null(s);
	len += (size_t)sprintf(s, "OK 2 big\n");
	memset(s + len, 'x', line);
	len += line;
	s[len++] = '\n';
	memset(s + len, 'y', line);
	len += line;
	s[len++] = '\n';
	len += (size_t)sprintf(s + len, "OK 0 PONG\n");
	got_stream g, r;
	scan_stream(s, len, WHOLE, &g);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.r[0].nlines, 2);
	assert_int_equal(g.r[0].end, len - 10);
	for (int i = 0; i < 5; i++) {
		scan_stream(s, len, RANDOM, &r);
		same_streams(&g, &r);
	}
	free(s);
}

static void lost_at(const char *s, proto_scan_result why, size_t nreplies)
{
	got_stream g;
	all_feeds_agree(s, strlen(s), &g);
	if (g.lost != why)
		fail_msg("\"%s\": lost %d, wanted %d", s, g.lost, why);
	assert_int_equal(g.n, nreplies);
}

static void test_malformed(void **state)
{
	lost_at("HELLO\n", PROTO_SCAN_BAD, 0);
	lost_at("\n", PROTO_SCAN_BAD, 0);
	lost_at("\r\n", PROTO_SCAN_BAD, 0);
	lost_at("OK\n", PROTO_SCAN_BAD, 0);
	lost_at("OK x\n", PROTO_SCAN_BAD, 0);
	lost_at("OK  1\n", PROTO_SCAN_BAD, 0);
	lost_at("OK 99999999999\n", PROTO_SCAN_BAD, 0);
	lost_at("ok 0\n", PROTO_SCAN_BAD, 0);
	lost_at("ERR\n", PROTO_SCAN_BAD, 0);
	lost_at("ERR query\n", PROTO_SCAN_BAD, 0);
	lost_at("OK 0 a\tb\n", PROTO_SCAN_BAD, 0);       /* a control byte in a status line */
	lost_at("OK 0 a\rb\n", PROTO_SCAN_BAD, 0);
	lost_at("OK 0 a\r\r\n", PROTO_SCAN_BAD, 0);      /* only one "\r" is the terminator */
	/* after good replies: the good ones come out first */
	lost_at("OK 0 PONG\nOK 1\nline\nERR ARGS x\nPONG\nOK 0\n", PROTO_SCAN_BAD, 3);
	/* a NUL byte */
	const char nul[] = "OK 0 PONG\nOK 0 a\0b\nOK 0\n";
	got_stream g;
	all_feeds_agree(nul, sizeof nul - 1, &g);
	assert_int_equal(g.lost, PROTO_SCAN_BAD);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.lost_at, 10);
}

static void test_too_long(void **state)
{
	size_t max = PROTO_SCAN_MAX_STATUS;
	char *s = malloc(max + 64);
	assert_non_null(s);
	got_stream g;
	/* exactly the limit: fine, with "\n" or "\r\n" */
	memcpy(s, "OK 0 ", 5);
	memset(s + 5, 'i', max - 5);
	strcpy(s + max, "\nOK 0\n");
	all_feeds_agree(s, strlen(s), &g);
	assert_int_equal(g.lost, PROTO_SCAN_MORE);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.r[0].end, max + 1);
	strcpy(s + max, "\r\nOK 0\r\n");
	all_feeds_agree(s, strlen(s), &g);
	assert_int_equal(g.lost, PROTO_SCAN_MORE);
	assert_int_equal(g.n, 2);
	/* one over, with either ending */
	strcpy(s + max, "i\nOK 0\n");
	lost_at(s, PROTO_SCAN_TOOLONG, 0);
	strcpy(s + max, "i\r\nOK 0\n");
	lost_at(s, PROTO_SCAN_TOOLONG, 0);
	/* after a good reply, and with no "\n" in sight: reported as soon as the
	 * line cannot fit, not when it ends */
	memcpy(s, "OK 0\n", 5);
	memset(s + 5, 'i', max + 2);
	s[max + 7] = 0;
	got_stream h;
	all_feeds_agree(s, strlen(s), &h);
	assert_int_equal(h.lost, PROTO_SCAN_TOOLONG);
	assert_int_equal(h.n, 1);
	/* one byte less could still be a line of the limit and its "\r" */
	s[max + 6] = 0;
	all_feeds_agree(s, strlen(s), &h);
	assert_int_equal(h.lost, PROTO_SCAN_MORE);
	assert_int_equal(h.n, 1);
	free(s);
}

static void test_code_word(void **state)
{
	/* a code word longer than PROTO_SCAN_MAX_CODE is cut, not refused */
	char s[128];
	char word[PROTO_SCAN_MAX_CODE + 10];
	memset(word, 'X', sizeof word - 1);
	word[sizeof word - 1] = 0;
	snprintf(s, sizeof s, "ERR %s message\nERR NOTFOUND\n", word);
	got_stream g;
	all_feeds_agree(s, strlen(s), &g);
	assert_int_equal(g.n, 2);
	assert_int_equal(strlen(g.r[0].word), PROTO_SCAN_MAX_CODE);
	assert_memory_equal(g.r[0].word, word, PROTO_SCAN_MAX_CODE);
	assert_int_equal(g.r[0].code, PROTO_E_INTERNAL);
	assert_string_equal(g.r[1].word, "NOTFOUND");
	assert_int_equal(g.r[1].code, PROTO_E_NOTFOUND);
}

static void test_reinit(void **state)
{
	proto_scan sc;
	proto_scan_reply rep;
	proto_scan_init(&sc);
	assert_int_equal(proto_scan_feed(&sc, "OK 2 x\nhalf", 11, &rep), 11);
	assert_int_equal(rep.result, PROTO_SCAN_MORE);
	assert_int_equal(proto_scan_feed(&sc, "NO\n", 3, &rep), 3);   /* still a body line */
	assert_int_equal(rep.result, PROTO_SCAN_MORE);
	assert_int_equal(proto_scan_feed(&sc, "BAD\nOK 0\n", 9, &rep), 4);
	assert_int_equal(rep.result, PROTO_SCAN_REPLY);
	assert_int_equal(rep.nlines, 2);
	assert_int_equal(proto_scan_feed(&sc, "BAD\n", 4, &rep), -1);
	assert_int_equal(rep.result, PROTO_SCAN_BAD);
	assert_int_equal(proto_scan_feed(&sc, "OK 0\n", 5, &rep), -1);
	proto_scan_init(&sc);   /* a new connection */
	assert_int_equal(proto_scan_feed(&sc, "OK 0\n", 5, &rep), 5);
	assert_int_equal(rep.result, PROTO_SCAN_REPLY);
	/* a split status line is dropped by init too */
	assert_int_equal(proto_scan_feed(&sc, "ERR QUE", 7, &rep), 7);
	proto_scan_init(&sc);
	assert_int_equal(proto_scan_feed(&sc, "OK 1 a\nb\n", 9, &rep), 9);
	assert_int_equal(rep.result, PROTO_SCAN_REPLY);
	assert_true(rep.ok);
}

/* Random streams of replies built with the writers of protocol.h, fed at
 * random cut points: the scanner finds every reply the writer wrote. */
static void test_random_streams(void **state)
{
	for (int round = 0; round < 200; round++) {
		proto_buf b;
		proto_buf_init(&b);
		size_t nrep = 1 + rng() % 20, ends[32];
		bool oks[32];
		uint32_t lines[32];
		for (size_t i = 0; i < nrep; i++) {
			oks[i] = rng() % 3 != 0;
			lines[i] = 0;
			if (oks[i]) {
				lines[i] = (uint32_t)(rng() % 5);
				if (rng() % 2)
					proto_put_ok(&b, lines[i], "total=%u", (unsigned)i);
				else
					proto_put_ok(&b, lines[i], "%s", "");
				for (uint32_t l = 0; l < lines[i]; l++) {
					char f[64];
					size_t n = rng() % sizeof f;
					for (size_t k = 0; k < n; k++)
						f[k] = (char)(rng() % 256);   /* escaped by the writer */
					proto_put_field(&b, f, n);
					proto_put_tab(&b);
					proto_put_eol(&b);
				}
			} else {
				proto_put_err(&b, (proto_errcode)(1 + rng() % PROTO_E_INTERNAL), "message\n\r x");
			}
			ends[i] = b.len;
		}
		assert_false(b.failed);
		got_stream g;
		scan_stream(b.p, b.len, RANDOM, &g);
		assert_int_equal(g.lost, PROTO_SCAN_MORE);
		assert_int_equal(g.n, nrep);
		for (size_t i = 0; i < nrep; i++) {
			assert_int_equal(g.r[i].ok, oks[i]);
			assert_int_equal(g.r[i].nlines, lines[i]);
			assert_int_equal(g.r[i].end, ends[i]);
		}
		proto_buf_free(&b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stream),
		cmocka_unit_test(test_crlf),
		cmocka_unit_test(test_big_body),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_code_word),
		cmocka_unit_test(test_reinit),
		cmocka_unit_test(test_random_streams),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
