/* response.c — the daemon's reply writer (protocol.h): a growable buffer and
 * the status-line and field writers.  Called by sousuo-server to build each
 * reply before writing it to the socket. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/protocol.h"

void proto_buf_init(proto_buf *b)
{
	b->p = NULL;
	b->len = b->cap = 0;
	b->failed = false;
}

void proto_buf_free(proto_buf *b)
{
	free(b->p);
	proto_buf_init(b);
}

void proto_buf_reset(proto_buf *b)
{
	b->len = 0;
	b->failed = false;
}

int proto_buf_grow(proto_buf *b, size_t need)
{
	if (b->failed)
		return -1;
	if (need <= b->cap - b->len)
		return 0;
	if (need > SIZE_MAX / 2 - b->len) {
		b->failed = true;
		return -1;
	}
	/* Doubling keeps appends amortized O(1); 4 KiB floor since most replies
	 * are a few hundred bytes to a few KiB. */
	size_t cap = b->cap ? b->cap : 4096;
	while (cap - b->len < need)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p) {
		b->failed = true;
		return -1;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

/* Control bytes become spaces: status lines must stay one line. */
static void one_line(char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			s[i] = ' ';
}

int proto_put_ok(proto_buf *b, unsigned nlines, const char *info_fmt, ...)
{
	char head[32];
	int hn = snprintf(head, sizeof head, "OK %u", nlines);
	if (proto_buf_append(b, head, (size_t)hn) != 0)
		return -1;
	if (info_fmt && info_fmt[0]) {
		va_list ap;
		va_start(ap, info_fmt);
		int n = vsnprintf(NULL, 0, info_fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = true;
			return -1;
		}
		if (n == 0)  /* "%s" of "": no info, so no trailing space */
			return proto_put_eol(b);
		/* +2: the space before the info, and vsnprintf's NUL */
		if (proto_buf_grow(b, (size_t)n + 2) != 0)
			return -1;
		b->p[b->len++] = ' ';
		va_start(ap, info_fmt);
		vsnprintf(b->p + b->len, (size_t)n + 1, info_fmt, ap);
		va_end(ap);
		one_line(b->p + b->len, (size_t)n);
		b->len += (size_t)n;
	}
	return proto_put_eol(b);
}

int proto_put_err(proto_buf *b, proto_errcode code, const char *message)
{
	const char *w = proto_errcode_word(code);
	if (proto_buf_append(b, "ERR ", 4) != 0 || proto_buf_append(b, w, strlen(w)) != 0)
		return -1;
	size_t n = message ? strlen(message) : 0;
	if (n) {
		if (proto_buf_grow(b, n + 1) != 0)
			return -1;
		b->p[b->len++] = ' ';
		memcpy(b->p + b->len, message, n);
		one_line(b->p + b->len, n);
		b->len += n;
	}
	return proto_put_eol(b);
}

int proto_put_error(proto_buf *b, const proto_error *err)
{
	return proto_put_err(b, err->code, err->msg);
}

/* What each byte is written as: 0 = itself, else the letter after the
 * backslash ('x' for \xHH). */
static char escape_of(unsigned char c)
{
	switch (c) {
	case '\\': return '\\';
	case '\t': return 't';
	case '\n': return 'n';
	case '\r': return 'r';
	}
	return c < 0x20 || c == 0x7f ? 'x' : 0;
}

/* Whether any of the 8 bytes of w is below 0x20, a backslash or DEL (the
 * bytes escape_of escapes): titles, paths and snippets are mostly bytes
 * that need nothing, and testing 8 at a time took escaping from 7% of the
 * server's instructions (callgrind, the bench query file) to under 2%.  The
 * test is exact about "any": a borrow can only mark bytes above a byte that
 * is itself marked. */
static bool word_needs_escape(uint64_t w)
{
	const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
	uint64_t bs = w ^ (ones * '\\'), del = w ^ (ones * 0x7f);
	uint64_t below = (w - ones * 0x20) & ~w;
	uint64_t zero = ((bs - ones) & ~bs) | ((del - ones) & ~del);
	return ((below | zero) & highs) != 0;
}

int proto_put_field(proto_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t run = 0;  /* start of the current stretch of bytes written as they are */
	for (size_t i = 0; i < n; i++) {
		if ((i & 7) == 0) {
			uint64_t w;
			while (i + 8 <= n && (memcpy(&w, s + i, 8), !word_needs_escape(w)))
				i += 8;
			if (i >= n)
				break;
		}
		char e = escape_of((unsigned char)s[i]);
		if (!e)
			continue;
		if (proto_buf_append(b, s + run, i - run) != 0)
			return -1;
		char seq[4] = { '\\', e, 0, 0 };
		size_t sl = 2;
		if (e == 'x') {
			seq[2] = hex[(unsigned char)s[i] >> 4];
			seq[3] = hex[(unsigned char)s[i] & 15];
			sl = 4;
		}
		if (proto_buf_append(b, seq, sl) != 0)
			return -1;
		run = i + 1;
	}
	return proto_buf_append(b, s + run, n - run);
}

int proto_put_tab(proto_buf *b)
{
	return proto_buf_append(b, "\t", 1);
}

int proto_put_eol(proto_buf *b)
{
	return proto_buf_append(b, "\n", 1);
}

int proto_put_uint_pad(proto_buf *b, uint64_t v, unsigned width)
{
	char d[20];
	unsigned n = 0;
	do {
		d[sizeof d - 1 - n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n < width && n < sizeof d)
		d[sizeof d - 1 - n++] = '0';
	return proto_buf_append(b, d + sizeof d - n, n);
}

int proto_put_uint(proto_buf *b, uint64_t v)
{
	return proto_put_uint_pad(b, v, 1);
}

/* Below FIXED4_FAST, x * 10000 is within 1e-7 of its exact value, so
 * rounding it to an integer agrees with printf's exact decimal rounding
 * except within FIXED4_TIE of a half, which goes to printf itself. */
#define FIXED4_FAST 1e5
#define FIXED4_TIE 1e-6

int proto_put_fixed4(proto_buf *b, double x)
{
	double r = x * 10000.0, fl = floor(r), frac = r - fl;
	/* signbit: printf writes -0.0 as "-0.0000" */
	if (!(x < FIXED4_FAST) || signbit(x) || fabs(frac - 0.5) < FIXED4_TIE) {
		char s[320];   /* DBL_MAX has 309 digits before the point */
		int n = snprintf(s, sizeof s, "%.4f", x);
		return n > 0 ? proto_buf_append(b, s, (size_t)n < sizeof s ? (size_t)n : sizeof s - 1)
		             : -1;
	}
	uint64_t v = (uint64_t)fl + (frac > 0.5);
	if (proto_put_uint(b, v / 10000) || proto_buf_append(b, ".", 1))
		return -1;
	return proto_put_uint_pad(b, v % 10000, 4);
}
