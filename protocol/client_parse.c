/* client_parse.c — the client side of the protocol (protocol.h): status
 * lines, TAB-separated fields and unescaping.  Called by sousuo-cli and the
 * benchmark; it is strict so that tests catch a server writing bad replies. */
#include "protocol/protocol.h"

static const proto_errcode all_codes[] = {
	PROTO_E_UNKNOWN, PROTO_E_ARGS, PROTO_E_QUERY, PROTO_E_UTF8,
	PROTO_E_NOTFOUND, PROTO_E_BUSY, PROTO_E_TOOLONG, PROTO_E_INTERNAL, PROTO_E_AUTH,
};

static bool has_control(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return true;
	return false;
}

int proto_parse_status(const char *line, size_t len, proto_status *st)
{
	memset(st, 0, sizeof *st);
	/* A status line is one line: a stray CR, LF or other control byte means
	 * the framing is off, and guessing would misread the following lines. */
	if (has_control(line, len))
		return -1;
	if (len >= 2 && line[0] == 'O' && line[1] == 'K') {
		size_t i = 2;
		if (i == len || line[i] != ' ')
			return -1;
		i++;
		size_t start = i;
		uint64_t n = 0;
		while (i < len && line[i] >= '0' && line[i] <= '9') {
			n = n * 10 + (unsigned)(line[i] - '0');
			if (n > UINT32_MAX)
				return -1;
			i++;
		}
		if (i == start)
			return -1;
		st->ok = true;
		st->nlines = (uint32_t)n;
		st->info = line + len;
		if (i < len) {
			if (line[i] != ' ')
				return -1;
			st->info = line + i + 1;
			st->info_len = len - i - 1;
		}
		return 0;
	}
	if (len >= 3 && memcmp(line, "ERR", 3) == 0) {
		size_t i = 3;
		if (i == len || line[i] != ' ')
			return -1;
		i++;
		size_t start = i;
		/* capitals, then capitals or digits ("UTF8") */
		while (i < len && ((line[i] >= 'A' && line[i] <= 'Z') ||
		                   (i > start && line[i] >= '0' && line[i] <= '9')))
			i++;
		if (i == start)
			return -1;
		st->code_word = line + start;
		st->code_len = i - start;
		/* A code we do not know (a newer server) is still an error. */
		st->code = PROTO_E_INTERNAL;
		for (size_t k = 0; k < sizeof all_codes / sizeof all_codes[0]; k++) {
			const char *w = proto_errcode_word(all_codes[k]);
			if (strlen(w) == st->code_len && memcmp(w, st->code_word, st->code_len) == 0)
				st->code = all_codes[k];
		}
		st->msg = line + len;
		if (i < len) {
			if (line[i] != ' ')
				return -1;
			st->msg = line + i + 1;
			st->msg_len = len - i - 1;
		}
		return 0;
	}
	return -1;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

ssize_t proto_unescape(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '\\') {
			if (++i == n)
				return -1;
			switch (s[i]) {
			case '\\': c = '\\'; break;
			case 't': c = '\t'; break;
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 'x': {
				if (n - i < 3)
					return -1;
				int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
				if (hi < 0 || lo < 0)
					return -1;
				c = (char)(hi << 4 | lo);
				i += 2;
				break;
			}
			default:
				return -1;
			}
		}
		/* o <= i always, so writing in place (out == s) never overtakes the reader */
		if (o == cap)
			return -2;
		out[o++] = c;
	}
	return (ssize_t)o;
}

size_t proto_split_fields(const char *line, size_t len, proto_slice *fields, size_t max)
{
	size_t nf = 0, start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && line[i] != '\t')
			continue;
		if (nf < max) {
			fields[nf].p = line + start;
			fields[nf].n = i - start;
		}
		nf++;
		start = i + 1;
	}
	return nf;
}
