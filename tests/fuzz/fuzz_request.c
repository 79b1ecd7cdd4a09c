/* fuzz_request.c — libFuzzer target for the daemon's request parser,
 * proto_parse_request (protocol/request.c): every byte a client sends ends
 * up here, so it must never read past the line and must keep the promises
 * protocol.h makes about what it returns.  The input is one request line
 * without its terminator.
 *
 * Checked beyond "no crash": the UTF-8 verdict agrees with text.h's
 * validator (two independent implementations); a blank line is really
 * blank; a query points inside the line, is non-empty and trimmed; SEARCH
 * options are within their limits; an error message is one printable line
 * that the reply writer and the client's status parser carry intact. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "indexer/text.h"
#include "protocol/protocol.h"
#include "tests/fuzz/fuzz_util.h"

static bool req_blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return false;
	return true;
}

static char req_upper(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
}

/* The first word of the line names the command, ignoring ASCII case. */
static bool req_first_word_is(const char *s, size_t n, const char *name)
{
	size_t i = 0;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	size_t k = 0;
	for (; name[k]; k++, i++)
		if (i >= n || req_upper(s[i]) != name[k])
			return false;
	return i == n || s[i] == ' ' || s[i] == '\t';
}

/* GET's argument is the id in decimal, maybe with leading zeros. */
static void req_check_get_id(const char *s, size_t n, uint64_t id)
{
	size_t i = 0;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	while (i < n && s[i] != ' ' && s[i] != '\t')
		i++;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	size_t end = i;
	while (end < n && s[end] != ' ' && s[end] != '\t')
		end++;
	while (end - i > 1 && s[i] == '0')
		i++;
	char want[24];
	int wl = snprintf(want, sizeof want, "%llu", (unsigned long long)id);
	FUZZ_CHECK(wl > 0 && end - i == (size_t)wl && memcmp(s + i, want, (size_t)wl) == 0);
}

/* An error as the daemon sends it must come back the same from the
 * client's parser: same code, the message unchanged. */
static void req_check_error_roundtrip(const proto_error *err)
{
	proto_buf b;
	proto_buf_init(&b);
	FUZZ_CHECK(proto_put_error(&b, err) == 0 && !b.failed);
	FUZZ_CHECK(b.len >= 1 && b.p[b.len - 1] == '\n');
	proto_status st;
	FUZZ_CHECK(proto_parse_status(b.p, b.len - 1, &st) == 0);
	FUZZ_CHECK(!st.ok && st.code == err->code);
	FUZZ_CHECK(st.msg_len == strlen(err->msg) && memcmp(st.msg, err->msg, st.msg_len) == 0);
	proto_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	proto_request rq;
	proto_error err;
	memset(&err, 0, sizeof err);
	int rc = proto_parse_request(line, size, &rq, &err);
	FUZZ_CHECK(rc == 0 || rc == 1 || rc == -1);

	bool valid = text_utf8_valid(line, size) && !memchr(line, 0, size);
	if (size > PROTO_MAX_LINE - 1)
		FUZZ_CHECK(rc == -1 && err.code == PROTO_E_TOOLONG);
	else
		FUZZ_CHECK((rc == -1 && err.code == PROTO_E_UTF8) == !valid);

	if (rc == 1) {
		FUZZ_CHECK(valid && req_blank(line, size));
		return 0;
	}
	if (rc == -1) {
		size_t mlen = strnlen(err.msg, sizeof err.msg);
		FUZZ_CHECK(mlen > 0 && mlen < sizeof err.msg);
		for (size_t i = 0; i < mlen; i++)
			FUZZ_CHECK((unsigned char)err.msg[i] >= 0x20 && err.msg[i] != 0x7f);
		FUZZ_CHECK(strcmp(proto_errcode_word(err.code), "INTERNAL") != 0 ||
		           err.code == PROTO_E_INTERNAL);
		req_check_error_roundtrip(&err);
		return 0;
	}

	FUZZ_CHECK(valid && !req_blank(line, size));
	FUZZ_CHECK((unsigned)rq.cmd < PROTO_NCMDS);
	FUZZ_CHECK(req_first_word_is(line, size, proto_cmd_name(rq.cmd)));
	if (rq.cmd == PROTO_CMD_SEARCH || rq.cmd == PROTO_CMD_COUNT) {
		FUZZ_CHECK(rq.query >= line && rq.query_len > 0);
		FUZZ_CHECK(rq.query_len <= size && (size_t)(rq.query - line) <= size - rq.query_len);
		FUZZ_CHECK(!req_blank(rq.query, 1) && !req_blank(rq.query + rq.query_len - 1, 1));
		/* the query is cut at a blank, never inside a character */
		FUZZ_CHECK(text_utf8_valid(rq.query, rq.query_len));
	}
	const proto_search_opts *o = &rq.opt;
	FUZZ_CHECK(o->limit <= PROTO_MAX_LIMIT && o->offset <= PROTO_MAX_OFFSET);
	FUZZ_CHECK(o->sort == PROTO_SORT_RELEVANCE || o->sort == PROTO_SORT_DATE);
	FUZZ_CHECK(o->nfields >= 1 && o->nfields <= PROTO_NFIELDS);
	unsigned seen = 0;
	for (unsigned i = 0; i < o->nfields; i++) {
		FUZZ_CHECK(o->fields[i] < PROTO_NFIELDS && !(seen & (1u << o->fields[i])));
		seen |= 1u << o->fields[i];
	}
	if (rq.cmd == PROTO_CMD_GET)
		req_check_get_id(line, size, rq.id);
	if (rq.cmd != PROTO_CMD_SEARCH) {
		/* options belong to SEARCH; the others see the defaults */
		FUZZ_CHECK(o->limit == PROTO_DEFAULT_LIMIT && o->offset == 0 && o->snippet &&
		           o->total_exact && o->nfields == PROTO_NFIELDS);
	}
	return 0;
}
