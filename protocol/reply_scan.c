/* reply_scan.c — the incremental reply scanner of protocol.h (proto_scan):
 * finds where each reply of a pipelined stream ends, in whatever pieces the
 * bytes arrive, keeping nothing but a status line split between two feeds.
 * sousuo-benchmark runs every byte the server sends through it, so the common
 * case (a whole status line in one feed) is parsed in place, without a copy,
 * and the lines of an OK reply are skipped with memchr. */
#include "protocol/protocol.h"

_Static_assert(PROTO_SCAN_MAX_STATUS > PROTO_MAX_MESSAGE + 64,
               "a status line must fit an ERR message as the daemon writes it");
_Static_assert(PROTO_SCAN_MAX_STATUS < UINT32_MAX, "status_len is 32 bits");

void proto_scan_init(proto_scan *s)
{
	s->broken = PROTO_SCAN_MORE;
	s->lines_left = 0;
	s->nlines = 0;
	s->status_len = 0;
}

static ssize_t lost(proto_scan *s, proto_scan_reply *out, proto_scan_result why)
{
	s->broken = why;
	out->result = why;
	return -1;
}

/* Parses a complete status line (without its "\n"); -1 if the stream is lost.
 * Sets out->result to REPLY for ERR and OK 0; leaves MORE and starts counting
 * lines for OK n. */
static int status_line(proto_scan *s, const char *line, size_t n, proto_scan_reply *out)
{
	if (n && line[n - 1] == '\r')
		n--;
	if (n > PROTO_SCAN_MAX_STATUS)
		return (int)lost(s, out, PROTO_SCAN_TOOLONG);
	proto_status st;
	if (proto_parse_status(line, n, &st) != 0)
		return (int)lost(s, out, PROTO_SCAN_BAD);
	if (!st.ok) {
		size_t w = st.code_len < PROTO_SCAN_MAX_CODE ? st.code_len : PROTO_SCAN_MAX_CODE;
		memcpy(out->code_word, st.code_word, w);
		out->code_word[w] = 0;
		out->ok = false;
		out->nlines = 0;
		out->code = st.code;
		out->result = PROTO_SCAN_REPLY;
	} else if (st.nlines == 0) {
		out->ok = true;
		out->nlines = 0;
		out->result = PROTO_SCAN_REPLY;
	} else {
		s->lines_left = s->nlines = st.nlines;
	}
	return 0;
}

ssize_t proto_scan_feed(proto_scan *s, const char *buf, size_t len, proto_scan_reply *out)
{
	out->result = PROTO_SCAN_MORE;
	if (s->broken != PROTO_SCAN_MORE)
		return lost(s, out, s->broken);
	const char *p = buf, *end = buf + len;
	for (;;) {
		if (s->lines_left) {
			while (s->lines_left) {
				const char *nl = memchr(p, '\n', (size_t)(end - p));
				if (!nl)
					return (ssize_t)len;
				p = nl + 1;
				s->lines_left--;
			}
			out->ok = true;
			out->nlines = s->nlines;
			out->result = PROTO_SCAN_REPLY;
			return p - buf;
		}
		if (p == end)
			return (ssize_t)len;
		/* The status line may take `room` more bytes, its "\r" included;
		 * looking one byte further finds a "\n" that ends a line of exactly
		 * that size, and not finding one there means the line is too long. */
		size_t avail = (size_t)(end - p);
		size_t room = PROTO_SCAN_MAX_STATUS + 1 - s->status_len;
		const char *nl = memchr(p, '\n', avail < room + 1 ? avail : room + 1);
		if (!nl) {
			if (avail > room)
				return lost(s, out, PROTO_SCAN_TOOLONG);
			memcpy(s->status + s->status_len, p, avail);
			s->status_len += (uint32_t)avail;
			return (ssize_t)len;
		}
		size_t n = (size_t)(nl - p);
		const char *line = p;
		if (s->status_len) {
			/* status_len + n <= PROTO_SCAN_MAX_STATUS + 1: n <= room */
			memcpy(s->status + s->status_len, p, n);
			line = s->status;
			n += s->status_len;
			s->status_len = 0;
		}
		p = nl + 1;
		if (status_line(s, line, n, out) != 0)
			return -1;
		if (out->result == PROTO_SCAN_REPLY)
			return p - buf;
	}
}
