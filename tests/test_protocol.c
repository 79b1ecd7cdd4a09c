/* test_protocol.c — unit tests of the line protocol (protocol/protocol.h):
 * every command and argument error, every SEARCH option, GET ids, UTF-8 and
 * length checks, reply writing and escaping round trips, status-line parsing,
 * and a fuzz loop over random request lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <math.h>

#include "protocol/protocol.h"
#include "tests/testutil.h"

/* ---- helpers ---------------------------------------------------------------- */

static proto_request req;
static proto_error perr;

static int parse(const char *line)
{
	memset(&perr, 0, sizeof perr);
	return proto_parse_request(line, strlen(line), &req, &perr);
}

static void ok(const char *line, proto_cmd cmd)
{
	int rc = parse(line);
	if (rc != 0)
		fail_msg("\"%s\": rc %d, %s %s", line, rc, proto_errcode_word(perr.code), perr.msg);
	assert_int_equal(req.cmd, cmd);
}

/* Expects an error with this code whose message contains `part`. */
static void bad(const char *line, proto_errcode code, const char *part)
{
	int rc = parse(line);
	if (rc != -1)
		fail_msg("\"%s\": rc %d, wanted %s", line, rc, proto_errcode_word(code));
	if (perr.code != code || !strstr(perr.msg, part))
		fail_msg("\"%s\": got %s \"%s\", wanted %s \"...%s...\"", line,
		         proto_errcode_word(perr.code), perr.msg, proto_errcode_word(code), part);
	assert_true(perr.msg[0] != 0);
	assert_null(strchr(perr.msg, '\n'));
}

static void query_is(const char *q)
{
	assert_int_equal(req.query_len, strlen(q));
	assert_memory_equal(req.query, q, req.query_len);
}

/* xorshift64*: a fixed-seed generator so failures reproduce. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

/* ---- commands ----------------------------------------------------------------- */

static void test_commands(void **state)
{
	ok("PING", PROTO_CMD_PING);
	ok("ping", PROTO_CMD_PING);
	ok("PiNg", PROTO_CMD_PING);
	ok("  \tPING \t ", PROTO_CMD_PING);
	ok("STATS", PROTO_CMD_STATS);
	ok("stats", PROTO_CMD_STATS);
	ok("RELOAD", PROTO_CMD_RELOAD);
	ok("Reload", PROTO_CMD_RELOAD);
	ok("HELP", PROTO_CMD_HELP);
	ok("help", PROTO_CMD_HELP);
	ok("QUIT", PROTO_CMD_QUIT);
	ok("quit", PROTO_CMD_QUIT);
	ok("GET 5", PROTO_CMD_GET);
	ok("get 5", PROTO_CMD_GET);
	ok("COUNT 外商投资", PROTO_CMD_COUNT);
	query_is("外商投资");
	ok("count  a   b  ", PROTO_CMD_COUNT);
	query_is("a   b");
	ok("SEARCH 外商投资", PROTO_CMD_SEARCH);
	query_is("外商投资");
	ok("search\t外商\t投资\t", PROTO_CMD_SEARCH);
	query_is("外商\t投资");
	/* COUNT takes no options: the whole rest is the query */
	ok("COUNT limit=5 x", PROTO_CMD_COUNT);
	query_is("limit=5 x");
	/* AUTH: the password is the rest of the line, inner spaces kept */
	ok("AUTH s3cret", PROTO_CMD_AUTH);
	query_is("s3cret");
	ok("auth  two words\t", PROTO_CMD_AUTH);
	query_is("two words");

	assert_string_equal(proto_cmd_name(PROTO_CMD_SEARCH), "SEARCH");
	assert_string_equal(proto_cmd_name(PROTO_CMD_QUIT), "QUIT");
	assert_string_equal(proto_cmd_name((proto_cmd)99), "?");
}

static void test_unknown(void **state)
{
	bad("FOO", PROTO_E_UNKNOWN, "unknown command \"FOO\" (try HELP)");
	assert_string_equal(perr.msg, "unknown command \"FOO\" (try HELP)");
	bad("PINGX", PROTO_E_UNKNOWN, "PINGX");
	bad("PIN", PROTO_E_UNKNOWN, "PIN");
	bad("搜索 x", PROTO_E_UNKNOWN, "搜索");
	/* a long word is cut in the message, at a character boundary */
	char line[400];
	strcpy(line, "X");
	for (int i = 0; i < 50; i++)
		strcat(line, "搜");
	bad(line, PROTO_E_UNKNOWN, "...\" (try HELP)");
	assert_true(strlen(perr.msg) < 100);
	/* control bytes in the echoed word do not break the line */
	bad("F\x01O", PROTO_E_UNKNOWN, "unknown command");
	for (const char *p = perr.msg; *p; p++)
		assert_true((unsigned char)*p >= 0x20);
}

static void test_arity(void **state)
{
	bad("PING x", PROTO_E_ARGS, "PING takes no arguments");
	bad("STATS a b", PROTO_E_ARGS, "STATS takes no arguments");
	bad("RELOAD now", PROTO_E_ARGS, "RELOAD takes no arguments");
	bad("HELP me", PROTO_E_ARGS, "HELP takes no arguments");
	bad("QUIT 1", PROTO_E_ARGS, "QUIT takes no arguments");
	bad("GET", PROTO_E_ARGS, "GET needs an id");
	bad("GET   ", PROTO_E_ARGS, "GET needs an id");
	bad("GET 1 2", PROTO_E_ARGS, "GET takes 1 argument");
	bad("SEARCH", PROTO_E_ARGS, "SEARCH needs a query");
	bad("SEARCH \t ", PROTO_E_ARGS, "SEARCH needs a query");
	bad("COUNT", PROTO_E_ARGS, "COUNT needs a query");
	bad("count  ", PROTO_E_ARGS, "COUNT needs a query");
	bad("AUTH", PROTO_E_ARGS, "AUTH needs a password");
	bad("AUTH \t ", PROTO_E_ARGS, "AUTH needs a password");
}

/* ---- SEARCH options ---------------------------------------------------------- */

static void test_search_defaults(void **state)
{
	ok("SEARCH x", PROTO_CMD_SEARCH);
	assert_int_equal(req.opt.limit, PROTO_DEFAULT_LIMIT);
	assert_int_equal(req.opt.offset, 0);
	assert_int_equal(req.opt.sort, PROTO_SORT_RELEVANCE);
	assert_true(req.opt.snippet);
	assert_true(req.opt.total_exact);
	assert_int_equal(req.opt.nfields, PROTO_NFIELDS);
	for (int i = 0; i < PROTO_NFIELDS; i++)
		assert_int_equal(req.opt.fields[i], i);
	/* the other commands get defaults too */
	ok("PING", PROTO_CMD_PING);
	assert_int_equal(req.opt.limit, PROTO_DEFAULT_LIMIT);
	assert_null(req.query);
}

static void test_search_options(void **state)
{
	ok("SEARCH limit=0 x", PROTO_CMD_SEARCH);
	assert_int_equal(req.opt.limit, 0);
	ok("SEARCH limit=1000 x", PROTO_CMD_SEARCH);
	assert_int_equal(req.opt.limit, 1000);
	ok("SEARCH limit=007 x", PROTO_CMD_SEARCH);
	assert_int_equal(req.opt.limit, 7);
	ok("SEARCH offset=10000 x", PROTO_CMD_SEARCH);
	assert_int_equal(req.opt.offset, 10000);
	ok("SEARCH offset=0 x", PROTO_CMD_SEARCH);
	assert_int_equal(req.opt.offset, 0);
	ok("SEARCH sort=date x", PROTO_CMD_SEARCH);
	assert_int_equal(req.opt.sort, PROTO_SORT_DATE);
	ok("SEARCH sort=relevance x", PROTO_CMD_SEARCH);
	assert_int_equal(req.opt.sort, PROTO_SORT_RELEVANCE);
	ok("SEARCH snippet=off x", PROTO_CMD_SEARCH);
	assert_false(req.opt.snippet);
	ok("SEARCH snippet=on x", PROTO_CMD_SEARCH);
	assert_true(req.opt.snippet);
	ok("SEARCH total=fast x", PROTO_CMD_SEARCH);
	assert_false(req.opt.total_exact);
	ok("SEARCH total=exact x", PROTO_CMD_SEARCH);
	assert_true(req.opt.total_exact);
	ok("SEARCH fields=path,rank x", PROTO_CMD_SEARCH);
	assert_int_equal(req.opt.nfields, 2);
	assert_int_equal(req.opt.fields[0], PROTO_F_PATH);
	assert_int_equal(req.opt.fields[1], PROTO_F_RANK);
	ok("SEARCH fields=snippet,date,category,path,title,score,id,rank x", PROTO_CMD_SEARCH);
	assert_int_equal(req.opt.nfields, PROTO_NFIELDS);
	for (int i = 0; i < PROTO_NFIELDS; i++)
		assert_int_equal(req.opt.fields[i], PROTO_NFIELDS - 1 - i);
	ok("SEARCH fields=id x", PROTO_CMD_SEARCH);
	assert_int_equal(req.opt.nfields, 1);
	assert_int_equal(req.opt.fields[0], PROTO_F_ID);

	/* all together, any order, case-insensitive, tabs between */
	ok("search LIMIT=2\toffset=5  Sort=DATE snippet=Off fields=Rank,PATH total=FAST  外商 投资 ", PROTO_CMD_SEARCH);
	assert_int_equal(req.opt.limit, 2);
	assert_int_equal(req.opt.offset, 5);
	assert_int_equal(req.opt.sort, PROTO_SORT_DATE);
	assert_false(req.opt.snippet);
	assert_false(req.opt.total_exact);
	assert_int_equal(req.opt.nfields, 2);
	assert_int_equal(req.opt.fields[0], PROTO_F_RANK);
	assert_int_equal(req.opt.fields[1], PROTO_F_PATH);
	query_is("外商 投资");

	/* the example of PROTOCOL.md */
	ok("SEARCH limit=2 fields=rank,path 外商投资", PROTO_CMD_SEARCH);
	assert_int_equal(req.opt.limit, 2);
	query_is("外商投资");

	assert_string_equal(proto_field_name(PROTO_F_CATEGORY), "category");
	assert_string_equal(proto_field_name(PROTO_NFIELDS), "?");
}

static void test_search_bad_options(void **state)
{
	bad("SEARCH limit=1001 x", PROTO_E_ARGS, "limit must be 0..1000");
	bad("SEARCH limit=-1 x", PROTO_E_ARGS, "limit must be 0..1000");
	bad("SEARCH limit=+1 x", PROTO_E_ARGS, "limit must be 0..1000");
	bad("SEARCH limit= x", PROTO_E_ARGS, "limit must be 0..1000");
	bad("SEARCH limit=1e3 x", PROTO_E_ARGS, "limit must be 0..1000");
	bad("SEARCH limit=ten x", PROTO_E_ARGS, "limit must be 0..1000");
	bad("SEARCH limit=99999999999999999999999 x", PROTO_E_ARGS, "limit must be 0..1000");
	bad("SEARCH offset=10001 x", PROTO_E_ARGS, "offset must be 0..10000");
	bad("SEARCH offset=x x", PROTO_E_ARGS, "offset must be 0..10000");
	bad("SEARCH sort=score x", PROTO_E_ARGS, "sort must be relevance or date");
	bad("SEARCH sort= x", PROTO_E_ARGS, "sort must be relevance or date");
	bad("SEARCH snippet=yes x", PROTO_E_ARGS, "snippet must be on or off");
	bad("SEARCH total=slow x", PROTO_E_ARGS, "total must be exact or fast");
	bad("SEARCH fields=rank,foo x", PROTO_E_ARGS, "unknown field \"foo\"");
	bad("SEARCH fields= x", PROTO_E_ARGS, "empty field name");
	bad("SEARCH fields=rank,,id x", PROTO_E_ARGS, "empty field name");
	bad("SEARCH fields=rank, x", PROTO_E_ARGS, "empty field name");
	bad("SEARCH fields=,rank x", PROTO_E_ARGS, "empty field name");
	bad("SEARCH fields=id,rank,id x", PROTO_E_ARGS, "\"id\" given twice");
	bad("SEARCH limit=1 limit=2 x", PROTO_E_ARGS, "option \"limit\" given twice");
	bad("SEARCH sort=date SORT=date x", PROTO_E_ARGS, "option \"sort\" given twice");
	/* options but no query */
	bad("SEARCH limit=5", PROTO_E_ARGS, "SEARCH needs a query");
	bad("SEARCH limit=5 --", PROTO_E_ARGS, "SEARCH needs a query");
	bad("SEARCH --", PROTO_E_ARGS, "SEARCH needs a query");
	bad("SEARCH limit=5 -- \t", PROTO_E_ARGS, "SEARCH needs a query");
}

static void test_search_query_start(void **state)
{
	/* "--" ends the options */
	ok("SEARCH -- limit=5", PROTO_CMD_SEARCH);
	assert_int_equal(req.opt.limit, PROTO_DEFAULT_LIMIT);
	query_is("limit=5");
	ok("SEARCH limit=3 -- sort=date x", PROTO_CMD_SEARCH);
	assert_int_equal(req.opt.limit, 3);
	assert_int_equal(req.opt.sort, PROTO_SORT_RELEVANCE);
	query_is("sort=date x");
	ok("SEARCH -- -- x", PROTO_CMD_SEARCH);
	query_is("-- x");
	/* the first non-option word starts the query; later option-like words are query */
	ok("SEARCH x limit=5", PROTO_CMD_SEARCH);
	assert_int_equal(req.opt.limit, PROTO_DEFAULT_LIMIT);
	query_is("x limit=5");
	ok("SEARCH limit=4 x limit=5", PROTO_CMD_SEARCH);
	assert_int_equal(req.opt.limit, 4);
	query_is("x limit=5");
	/* option-like words that are not options */
	ok("SEARCH date>=2020-01-01 x", PROTO_CMD_SEARCH);
	query_is("date>=2020-01-01 x");
	ok("SEARCH title:=x", PROTO_CMD_SEARCH);
	query_is("title:=x");
	ok("SEARCH limits=5 x", PROTO_CMD_SEARCH);
	query_is("limits=5 x");
	ok("SEARCH limit 5", PROTO_CMD_SEARCH);
	query_is("limit 5");
	ok("SEARCH =5", PROTO_CMD_SEARCH);
	query_is("=5");
	ok("SEARCH -x a", PROTO_CMD_SEARCH);
	query_is("-x a");
	ok("SEARCH --x", PROTO_CMD_SEARCH);
	query_is("--x");
	ok("SEARCH sort:date 法", PROTO_CMD_SEARCH);
	query_is("sort:date 法");
}

/* ---- GET ---------------------------------------------------------------------- */

static void test_get(void **state)
{
	ok("GET 0", PROTO_CMD_GET);
	assert_true(req.id == 0);
	ok("GET 12", PROTO_CMD_GET);
	assert_true(req.id == 12);
	ok("GET\t000123\t", PROTO_CMD_GET);
	assert_true(req.id == 123);
	ok("GET 18446744073709551615", PROTO_CMD_GET);
	assert_true(req.id == UINT64_MAX);
	ok("GET 18446744073709551610", PROTO_CMD_GET);
	assert_true(req.id == UINT64_MAX - 5);
	bad("GET 18446744073709551616", PROTO_E_ARGS, "id is over 18446744073709551615");
	bad("GET 99999999999999999999999999", PROTO_E_ARGS, "id is over");
	bad("GET 99999999999999999999999999x", PROTO_E_ARGS, "decimal number");
	bad("GET 12x", PROTO_E_ARGS, "id must be a decimal number, not \"12x\"");
	bad("GET -1", PROTO_E_ARGS, "decimal number");
	bad("GET +1", PROTO_E_ARGS, "decimal number");
	bad("GET 0x10", PROTO_E_ARGS, "decimal number");
	bad("GET 1.0", PROTO_E_ARGS, "decimal number");
	bad("GET 一", PROTO_E_ARGS, "decimal number");
	bad("GET 1 x", PROTO_E_ARGS, "takes 1 argument");
}

/* ---- line-level checks ---------------------------------------------------------- */

static void test_blank(void **state)
{
	assert_int_equal(parse(""), 1);
	assert_int_equal(parse(" "), 1);
	assert_int_equal(parse("\t \t"), 1);
	assert_int_equal(proto_parse_request(NULL, 0, &req, &perr), 1);
}

static void test_utf8(void **state)
{
	bad("SEARCH \xff", PROTO_E_UTF8, "invalid UTF-8 at byte 8");
	bad("\xc0\x80", PROTO_E_UTF8, "invalid UTF-8");        /* overlong NUL */
	bad("SEARCH \xe0\x80\x80", PROTO_E_UTF8, "invalid UTF-8"); /* overlong */
	bad("SEARCH \xed\xa0\x80", PROTO_E_UTF8, "invalid UTF-8"); /* surrogate */
	bad("SEARCH \xf4\x90\x80\x80", PROTO_E_UTF8, "invalid UTF-8"); /* > U+10FFFF */
	bad("SEARCH \xf5\x80\x80\x80", PROTO_E_UTF8, "invalid UTF-8");
	bad("SEARCH \xe5\xa4", PROTO_E_UTF8, "invalid UTF-8");     /* cut short */
	bad("SEARCH \xe5\xa4x", PROTO_E_UTF8, "invalid UTF-8");
	bad("SEARCH \x80", PROTO_E_UTF8, "invalid UTF-8");
	bad("FOO \xff", PROTO_E_UTF8, "invalid UTF-8");  /* before the command check */
	ok("SEARCH \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf \xc2\x80 \xef\xbf\xbf", PROTO_CMD_SEARCH);

	const char nul[] = "SEARCH a\0b";
	assert_int_equal(proto_parse_request(nul, sizeof nul - 1, &req, &perr), -1);
	assert_int_equal(perr.code, PROTO_E_UTF8);
	assert_non_null(strstr(perr.msg, "NUL byte at byte 9"));
	const char nul2[] = "\0";
	assert_int_equal(proto_parse_request(nul2, 1, &req, &perr), -1);
	assert_int_equal(perr.code, PROTO_E_UTF8);
}

static void test_too_long(void **state)
{
	char *line = malloc(PROTO_MAX_LINE + 10);
	assert_non_null(line);
	memcpy(line, "SEARCH ", 7);
	memset(line + 7, 'a', PROTO_MAX_LINE + 3);
	/* the longest line allowed: PROTO_MAX_LINE with its "\n" */
	assert_int_equal(proto_parse_request(line, PROTO_MAX_LINE - 1, &req, &perr), 0);
	assert_int_equal(req.query_len, PROTO_MAX_LINE - 1 - 7);
	assert_int_equal(proto_parse_request(line, PROTO_MAX_LINE, &req, &perr), -1);
	assert_int_equal(perr.code, PROTO_E_TOOLONG);
	assert_int_equal(proto_parse_request(line, PROTO_MAX_LINE + 5, &req, &perr), -1);
	assert_int_equal(perr.code, PROTO_E_TOOLONG);
	/* over-long wins over bad bytes and blank lines */
	memset(line, ' ', PROTO_MAX_LINE + 5);
	line[3] = (char)0xff;
	assert_int_equal(proto_parse_request(line, PROTO_MAX_LINE + 5, &req, &perr), -1);
	assert_int_equal(perr.code, PROTO_E_TOOLONG);
	free(line);
}

static void test_errcode_words(void **state)
{
	static const struct { proto_errcode c; const char *w; } t[] = {
		{ PROTO_E_UNKNOWN, "UNKNOWN" }, { PROTO_E_ARGS, "ARGS" }, { PROTO_E_QUERY, "QUERY" },
		{ PROTO_E_UTF8, "UTF8" }, { PROTO_E_NOTFOUND, "NOTFOUND" }, { PROTO_E_BUSY, "BUSY" },
		{ PROTO_E_TOOLONG, "TOOLONG" }, { PROTO_E_INTERNAL, "INTERNAL" }, { PROTO_E_AUTH, "AUTH" },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		assert_string_equal(proto_errcode_word(t[i].c), t[i].w);
	assert_string_equal(proto_errcode_word((proto_errcode)0), "INTERNAL");
	assert_string_equal(proto_errcode_word((proto_errcode)1234), "INTERNAL");

	proto_error e;
	assert_int_equal(proto_fail(&e, PROTO_E_QUERY, "bad %s at column %d\r\nx", "paren", 3), -1);
	assert_int_equal(e.code, PROTO_E_QUERY);
	assert_string_equal(e.msg, "bad paren at column 3  x");
	proto_fail(&e, PROTO_E_BUSY, "%s", "");
	assert_string_equal(e.msg, "error");
	char big[1000];
	memset(big, 'z', sizeof big - 1);
	big[sizeof big - 1] = 0;
	proto_fail(&e, PROTO_E_INTERNAL, "%s", big);
	assert_int_equal(strlen(e.msg), PROTO_MAX_MESSAGE - 1);
}

/* ---- replies -------------------------------------------------------------------- */

static void buf_is(proto_buf *b, const char *want)
{
	assert_false(b->failed);
	if (b->len != strlen(want) || memcmp(b->p, want, b->len) != 0)
		fail_msg("buffer \"%.*s\", wanted \"%s\"", (int)b->len, b->p, want);
}

static void test_writers(void **state)
{
	proto_buf b;
	proto_buf_init(&b);
	assert_int_equal(proto_put_ok(&b, 0, "PONG"), 0);
	buf_is(&b, "OK 0 PONG\n");
	proto_buf_reset(&b);
	proto_put_ok(&b, 2, "total=%u exact=%d took_us=%u", 132u, 1, 41u);
	buf_is(&b, "OK 2 total=132 exact=1 took_us=41\n");
	proto_buf_reset(&b);
	proto_put_ok(&b, 3, NULL);
	proto_put_ok(&b, 0, "%s", "");
	proto_put_ok(&b, 1, "a\nb\tc");
	buf_is(&b, "OK 3\nOK 0\nOK 1 a b c\n");
	proto_buf_reset(&b);
	proto_put_err(&b, PROTO_E_UNKNOWN, "unknown command \"FOO\" (try HELP)");
	proto_put_err(&b, PROTO_E_QUERY, "line one\nline two\r");
	proto_put_err(&b, PROTO_E_BUSY, NULL);
	proto_error e;
	proto_fail(&e, PROTO_E_ARGS, "limit must be 0..%d", PROTO_MAX_LIMIT);
	proto_put_error(&b, &e);
	buf_is(&b, "ERR UNKNOWN unknown command \"FOO\" (try HELP)\n"
	           "ERR QUERY line one line two \nERR BUSY\nERR ARGS limit must be 0..1000\n");
	proto_buf_reset(&b);
	proto_put_field(&b, "1", 1);
	proto_put_tab(&b);
	const char f[] = "a\\b\tc\nd\re\x01\x1f\x7f 外商\x80";
	proto_put_field(&b, f, sizeof f - 1);
	proto_put_tab(&b);
	proto_put_field(&b, "", 0);
	proto_put_eol(&b);
	buf_is(&b, "1\ta\\\\b\\tc\\nd\\re\\x01\\x1f\\x7f 外商\x80\t\n");

	/* growth: a large reply lands intact */
	proto_buf_reset(&b);
	for (int i = 0; i < 100000; i++)
		proto_put_ok(&b, (unsigned)i, "x");
	assert_false(b.failed);
	assert_true(b.len > 100000 * 6);
	assert_memory_equal(b.p + b.len - 10, "K 99999 x\n", 10);
	proto_buf_free(&b);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
	/* free twice is fine */
	proto_buf_free(&b);
}

static void test_escape_roundtrip(void **state)
{
	proto_buf b;
	proto_buf_init(&b);
	char s[300], out[300];
	/* every byte on its own */
	for (int c = 0; c < 256; c++) {
		proto_buf_reset(&b);
		s[0] = (char)c;
		assert_int_equal(proto_put_field(&b, s, 1), 0);
		for (size_t i = 0; i < b.len; i++) {
			unsigned char x = (unsigned char)b.p[i];
			assert_true(x >= 0x20 && x != 0x7f);  /* nothing that breaks a line or field */
		}
		ssize_t n = proto_unescape(b.p, b.len, out, sizeof out);
		assert_int_equal(n, 1);
		assert_int_equal((unsigned char)out[0], c);
	}
	/* random strings over all bytes */
	for (int iter = 0; iter < 20000; iter++) {
		size_t n = rng() % 300;
		for (size_t i = 0; i < n; i++)
			s[i] = (char)rng();
		proto_buf_reset(&b);
		assert_int_equal(proto_put_field(&b, s, n), 0);
		assert_null(memchr(b.p, '\t', b.len));
		assert_null(memchr(b.p, '\n', b.len));
		assert_null(memchr(b.p, '\r', b.len));
		ssize_t m = proto_unescape(b.p, b.len, out, sizeof out);
		assert_int_equal(m, (ssize_t)n);
		assert_memory_equal(out, s, n);
		/* in place */
		m = proto_unescape(b.p, b.len, b.p, b.len);
		assert_int_equal(m, (ssize_t)n);
		assert_memory_equal(b.p, s, n);
	}
	/* mostly plain text with a rare byte to escape anywhere: the writer
	 * skips 8 plain bytes at a time, so its output is checked against the
	 * same bytes written one at a time */
	proto_buf ref;
	proto_buf_init(&ref);
	static const unsigned char special[] = { 0, 1, '\t', '\n', '\r', 0x1f, '\\', 0x7f };
	for (int iter = 0; iter < 50000; iter++) {
		size_t n = rng() % 300;
		for (size_t i = 0; i < n; i++) {
			unsigned r = rng();
			s[i] = (char)(r % 64 == 0 ? special[(r >> 8) % sizeof special]
			                          : r % 2 ? 0x20 + (r >> 8) % 0x5c    /* ' ' .. '[' */
			                                  : 0x80 + (r >> 8) % 0x80);
		}
		proto_buf_reset(&b);
		proto_buf_reset(&ref);
		assert_int_equal(proto_put_field(&b, s, n), 0);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(proto_put_field(&ref, s + i, 1), 0);
		assert_int_equal(b.len, ref.len);
		assert_memory_equal(b.p, ref.p, b.len);
		for (size_t i = 0; i < b.len; i++)
			assert_true((unsigned char)b.p[i] >= 0x20 && (unsigned char)b.p[i] != 0x7f);
	}
	proto_buf_free(&ref);
	proto_buf_free(&b);
}

static void test_unescape(void **state)
{
	char out[64];
#define UNESC(s) proto_unescape(s, sizeof s - 1, out, sizeof out)
	assert_int_equal(UNESC(""), 0);
	assert_int_equal(UNESC("abc"), 3);
	assert_int_equal(UNESC("\\x41\\x4A\\x4a"), 3);  /* any hex case reads back */
	assert_memory_equal(out, "AJJ", 3);
	assert_int_equal(UNESC("\\\\\\t\\n\\r"), 4);
	assert_memory_equal(out, "\\\t\n\r", 4);
	/* bad escapes */
	assert_int_equal(UNESC("\\"), -1);
	assert_int_equal(UNESC("ab\\"), -1);
	assert_int_equal(UNESC("\\a"), -1);
	assert_int_equal(UNESC("\\0"), -1);
	assert_int_equal(UNESC("\\T"), -1);
	assert_int_equal(UNESC("\\N"), -1);
	assert_int_equal(UNESC("\\\""), -1);
	assert_int_equal(UNESC("\\x"), -1);
	assert_int_equal(UNESC("\\x4"), -1);
	assert_int_equal(UNESC("\\xg0"), -1);
	assert_int_equal(UNESC("\\x0g"), -1);
	assert_int_equal(UNESC("\\X41"), -1);
	assert_int_equal(UNESC("ok\\qok"), -1);
#undef UNESC
	/* output too small */
	assert_int_equal(proto_unescape("abcd", 4, out, 3), -2);
	assert_int_equal(proto_unescape("ab\\n", 4, out, 3), 3);
}

static void test_split(void **state)
{
	proto_slice f[4];
	assert_int_equal(proto_split_fields("", 0, f, 4), 1);
	assert_int_equal(f[0].n, 0);
	const char l1[] = "1\t法律/外商投资法.md";
	assert_int_equal(proto_split_fields(l1, sizeof l1 - 1, f, 4), 2);
	assert_int_equal(f[0].n, 1);
	assert_memory_equal(f[0].p, "1", 1);
	assert_int_equal(f[1].n, strlen("法律/外商投资法.md"));
	const char l2[] = "\ta\t\t";
	assert_int_equal(proto_split_fields(l2, sizeof l2 - 1, f, 4), 4);
	assert_int_equal(f[0].n, 0);
	assert_int_equal(f[1].n, 1);
	assert_int_equal(f[2].n, 0);
	assert_int_equal(f[3].n, 0);
	const char l3[] = "a\tb\tc\td\te\tf";
	assert_int_equal(proto_split_fields(l3, sizeof l3 - 1, f, 4), 6);
	assert_memory_equal(f[3].p, "d", 1);
	assert_int_equal(f[3].n, 1);
	assert_int_equal(proto_split_fields(l3, sizeof l3 - 1, NULL, 0), 6);

	/* a written line splits and unescapes back to its fields */
	proto_buf b;
	proto_buf_init(&b);
	const char *vals[3] = { "7", "a\tb", "x\\y\nz" };
	for (int i = 0; i < 3; i++) {
		if (i)
			proto_put_tab(&b);
		proto_put_field(&b, vals[i], strlen(vals[i]));
	}
	assert_int_equal(proto_split_fields(b.p, b.len, f, 4), 3);
	for (int i = 0; i < 3; i++) {
		char out[16];
		ssize_t n = proto_unescape(f[i].p, f[i].n, out, sizeof out);
		assert_int_equal(n, (ssize_t)strlen(vals[i]));
		assert_memory_equal(out, vals[i], (size_t)n);
	}
	proto_buf_free(&b);
}

/* ---- status lines ---------------------------------------------------------------- */

static int status(const char *line, proto_status *st)
{
	return proto_parse_status(line, strlen(line), st);
}

static void test_status_valid(void **state)
{
	proto_status st;
	assert_int_equal(status("OK 0 PONG", &st), 0);
	assert_true(st.ok);
	assert_int_equal(st.nlines, 0);
	assert_int_equal(st.info_len, 4);
	assert_memory_equal(st.info, "PONG", 4);

	assert_int_equal(status("OK 2 total=132 exact=1 took_us=41", &st), 0);
	assert_true(st.ok);
	assert_int_equal(st.nlines, 2);
	assert_int_equal(st.info_len, strlen("total=132 exact=1 took_us=41"));

	assert_int_equal(status("OK 6", &st), 0);
	assert_int_equal(st.nlines, 6);
	assert_int_equal(st.info_len, 0);
	assert_non_null(st.info);

	assert_int_equal(status("OK 4294967295 x", &st), 0);
	assert_int_equal(st.nlines, 4294967295u);
	assert_int_equal(status("OK 1 ", &st), 0);
	assert_int_equal(st.info_len, 0);
	assert_int_equal(status("OK 0 外商 投资", &st), 0);

	assert_int_equal(status("ERR UNKNOWN unknown command \"FOO\" (try HELP)", &st), 0);
	assert_false(st.ok);
	assert_int_equal(st.code, PROTO_E_UNKNOWN);
	assert_int_equal(st.code_len, 7);
	assert_int_equal(st.msg_len, strlen("unknown command \"FOO\" (try HELP)"));
	assert_memory_equal(st.msg, "unknown", 7);

	assert_int_equal(status("ERR TOOLONG line is over 65536 bytes", &st), 0);
	assert_int_equal(st.code, PROTO_E_TOOLONG);
	assert_int_equal(status("ERR UTF8 invalid UTF-8 at byte 3", &st), 0);
	assert_int_equal(st.code, PROTO_E_UTF8);
	assert_int_equal(status("ERR BUSY", &st), 0);
	assert_int_equal(st.code, PROTO_E_BUSY);
	assert_int_equal(st.msg_len, 0);
	/* a code this client does not know is still an error reply */
	assert_int_equal(status("ERR NEWTHING something", &st), 0);
	assert_false(st.ok);
	assert_int_equal(st.code, PROTO_E_INTERNAL);
	assert_int_equal(st.code_len, 8);

	/* every code the writer can produce reads back */
	proto_buf b;
	proto_buf_init(&b);
	for (int c = PROTO_E_UNKNOWN; c <= PROTO_E_INTERNAL; c++) {
		proto_buf_reset(&b);
		proto_put_err(&b, (proto_errcode)c, "msg here");
		assert_int_equal(proto_parse_status(b.p, b.len - 1, &st), 0);
		assert_int_equal(st.code, c);
		assert_int_equal(st.msg_len, 8);
	}
	proto_buf_reset(&b);
	proto_put_ok(&b, 17, "total=%d", 5);
	assert_int_equal(proto_parse_status(b.p, b.len - 1, &st), 0);
	assert_int_equal(st.nlines, 17);
	proto_buf_free(&b);
}

static void test_status_malformed(void **state)
{
	static const char *const badl[] = {
		"", "O", "OK", "OK ", "OK x", "OK -1", "OK +1", "OK  1", "OK 1x", "OK 1\tx",
		"ok 0", "Ok 0", "OK0", "OK 4294967296", "OK 99999999999999999999999",
		"OK 0 a\rb", "OK 0 a\nb", "OK 0\r", " OK 0", "OKAY 0",
		"ERR", "ERR ", "ERR args bad", "ERR 42 x", "ERR ARGS\tx", "ERRARGS x",
		"ERR ARGS_X y", "ERR  ARGS x", "ERR 8BIT x", "err ARGS x", "ERR ARGS x\x01",
		"1\tpath", "PONG", "total=5",
	};
	proto_status st;
	for (size_t i = 0; i < sizeof badl / sizeof badl[0]; i++)
		if (status(badl[i], &st) != -1)
			fail_msg("status \"%s\" was accepted", badl[i]);
	const char nul[] = "OK 0 a\0b";
	assert_int_equal(proto_parse_status(nul, sizeof nul - 1, &st), -1);
}

/* ---- fuzz ------------------------------------------------------------------------- */

static void test_fuzz(void **state)
{
	static const char *const pieces[] = {
		"SEARCH", "search", "COUNT", "GET", "PING", "STATS", "RELOAD", "HELP", "QUIT", "FOO",
		"limit=", "offset=", "sort=", "snippet=", "fields=", "total=", "--", "-",
		"date", "relevance", "on", "off", "exact", "fast", "rank", "id", ",", "=",
		"0", "1", "1000", "1001", "18446744073709551615", "18446744073709551616",
		"外商", "投资", "法", " ", " ", " ", "\t", "\xff", "\xe5", "\xa4", "\x01", "\\",
		"\"", "(", ")", "|", "x",
	};
	const size_t np = sizeof pieces / sizeof pieces[0];
	char line[512];
	int counts[3] = { 0 };
	rng_state = 12345;
	for (int iter = 0; iter < 100000; iter++) {
		size_t len = 0;
		int k = (int)(rng() % 12);
		for (int j = 0; j < k; j++) {
			if (rng() % 8 == 0) {
				/* a raw random byte, NUL included */
				if (len < sizeof line)
					line[len++] = (char)rng();
				continue;
			}
			const char *p = pieces[rng() % np];
			size_t pl = strlen(p);
			if (len + pl > sizeof line)
				break;
			memcpy(line + len, p, pl);
			len += pl;
		}
		/* parse from a heap copy of exactly len bytes, so ASan sees overreads */
		char *copy = malloc(len ? len : 1);
		assert_non_null(copy);
		memcpy(copy, line, len);
		proto_request r;
		proto_error e;
		memset(&e, 0, sizeof e);
		int rc = proto_parse_request(copy, len, &r, &e);
		assert_true(rc == 0 || rc == 1 || rc == -1);
		counts[rc + 1]++;
		if (rc == -1) {
			assert_true(e.msg[0] != 0);
			assert_true(strlen(e.msg) < sizeof e.msg);
			assert_true(e.code >= PROTO_E_UNKNOWN && e.code <= PROTO_E_INTERNAL);
			for (const char *m = e.msg; *m; m++)
				assert_true((unsigned char)*m >= 0x20 && *m != 0x7f);
		} else if (rc == 0) {
			assert_true(r.cmd < PROTO_NCMDS);
			if (r.cmd == PROTO_CMD_SEARCH || r.cmd == PROTO_CMD_COUNT) {
				assert_true(r.query_len > 0);
				assert_true(r.query >= copy && r.query + r.query_len <= copy + len);
			}
			assert_true(r.opt.limit <= PROTO_MAX_LIMIT);
			assert_true(r.opt.offset <= PROTO_MAX_OFFSET);
			assert_true(r.opt.nfields >= 1 && r.opt.nfields <= PROTO_NFIELDS);
		}
		free(copy);

		/* the status parser on the same random bytes: never crashes */
		proto_status st;
		copy = malloc(len ? len : 1);
		memcpy(copy, line, len);
		(void)proto_parse_status(copy, len, &st);
		char out[512];
		(void)proto_unescape(copy, len, out, sizeof out);
		free(copy);
	}
	/* the generator reaches all three outcomes often */
	assert_true(counts[0] > 1000);  /* errors */
	assert_true(counts[1] > 1000);  /* requests */
	assert_true(counts[2] > 100);   /* blank */
}

/* proto_put_fixed4 and proto_put_uint against printf, byte for byte: scores
 * of every size, values a hair either side of a rounding half, exact halves
 * (which printf rounds to even), huge, negative, infinite and NaN. */
static void check_fixed4(double x)
{
	proto_buf b;
	proto_buf_init(&b);
	char want[400];
	snprintf(want, sizeof want, "%.4f", x);
	assert_int_equal(proto_put_fixed4(&b, x), 0);
	assert_int_equal(b.len, strlen(want));
	if (memcmp(b.p, want, b.len))
		fail_msg("%.17g: \"%.*s\", printf \"%s\"", x, (int)b.len, b.p, want);
	proto_buf_free(&b);
}

static void test_number_writers(void **state)
{
	uint64_t rng = 0x9e3779b97f4a7c15ULL;
	for (int i = 0; i < 2000000; i++) {
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		double u = (double)(rng >> 11) / 9007199254740992.0;
		double x;
		switch (i % 5) {
		case 0: x = u * 60; break;                              /* BM25 scores */
		case 1: x = ldexp(u, (int)(rng % 80) - 40); break;      /* every scale */
		case 2: x = (double)(rng % 2000000) / 10000 + 0.00005;  /* near a half */
			break;
		case 3: x = nextafter((double)(rng % 2000000) / 10000 + 0.00005, (rng & 1) ? 0 : 1e9);
			break;
		default: x = (double)(rng % 4000000) / 20000; break;    /* halves, exact or not */
		}
		check_fixed4(x);
	}
	const double edge[] = { 0.0, -0.0, 0.00005, 0.00015, 0.00025, 9999.99995, 99999.99995,
	                        1e5, 1e5 - 1e-9, 123456789.123456, 1e300, -1.5, -0.00004,
	                        INFINITY, -INFINITY, NAN, 5e-324, 0.5, 2.5 };
	for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++)
		check_fixed4(edge[i]);
	const uint64_t ints[] = { 0, 1, 9, 10, 99, 100, 4294967295u, 18446744073709551615ull };
	for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
		for (unsigned w = 0; w <= 20; w += 2) {
			proto_buf b;
			proto_buf_init(&b);
			char want[32];
			snprintf(want, sizeof want, "%0*llu", (int)w, (unsigned long long)ints[i]);
			assert_int_equal(proto_put_uint_pad(&b, ints[i], w), 0);
			assert_int_equal(b.len, strlen(want));
			assert_memory_equal(b.p, want, b.len);
			proto_buf_free(&b);
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commands),
		cmocka_unit_test(test_unknown),
		cmocka_unit_test(test_arity),
		cmocka_unit_test(test_search_defaults),
		cmocka_unit_test(test_search_options),
		cmocka_unit_test(test_search_bad_options),
		cmocka_unit_test(test_search_query_start),
		cmocka_unit_test(test_get),
		cmocka_unit_test(test_blank),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_errcode_words),
		cmocka_unit_test(test_writers),
		cmocka_unit_test(test_number_writers),
		cmocka_unit_test(test_escape_roundtrip),
		cmocka_unit_test(test_unescape),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_status_valid),
		cmocka_unit_test(test_status_malformed),
		cmocka_unit_test(test_fuzz),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
