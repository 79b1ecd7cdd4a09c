/* corpus.c — reads folders of .md/.txt files and JSON Lines files into
 * documents (corpus.h): a sorted recursive walk, whole-file reads with the
 * size / NUL / UTF-8 checks, Markdown cleanup, title and date extraction. */
#include "indexer/corpus.h"
#include "indexer/limits.h"
#include "indexer/text.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define INFO_END "<!-- INFO END -->"
#define HEADER_LINES 10

enum { K_NONE, K_MD, K_TXT, K_JSONL, K_DIR };

/* One folder being walked: its entries sorted byte-wise, hidden ones left out. */
typedef struct {
	struct dirent **ents;
	int n, i;
	char *rel;  /* path relative to the root, "" for the root */
	char *fs;   /* path to open */
	dev_t dev;
	ino_t ino;
} frame;

struct corpus_reader {
	char **inputs;
	int *kinds;
	int n, next_input;
	int strict, failed;
	corpus_skip_fn skip;
	void *skip_ctx;
	uint64_t skipped;
	char err[1024];

	frame *stack;
	size_t depth, stack_cap;

	/* The JSON Lines file being read, if any. */
	FILE *jf;
	char *jpath;     /* doc path prefix ("x.jsonl", "sub/x.jsonl") */
	char *jfs;       /* path it was opened by, for skip reports */
	uint64_t jline;
	char *line;
	size_t line_cap;

	corpus_doc cur;
};

/* ---------------------------------------------------------------- helpers */

static char *dup_n(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

static char *dup_s(const char *s)
{
	return dup_n(s, strlen(s));
}

/* a + "/" + b; just b when a is "" ; no doubled "/" when a ends with one. */
static char *join(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la == 0)
		return dup_n(b, lb);
	int slash = a[la - 1] != '/';
	char *p = malloc(la + slash + lb + 1);
	if (!p)
		return NULL;
	memcpy(p, a, la);
	if (slash)
		p[la] = '/';
	memcpy(p + la + slash, b, lb + 1);
	return p;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static int kind_of_name(const char *name)
{
	const char *dot = strrchr(name, '.');
	if (!dot || dot == name)
		return K_NONE;
	if (strcasecmp(dot, ".md") == 0)
		return K_MD;
	if (strcasecmp(dot, ".txt") == 0)
		return K_TXT;
	if (strcasecmp(dot, ".jsonl") == 0)
		return K_JSONL;
	return K_NONE;
}

/* Cuts an incomplete UTF-8 sequence off the end of a truncated message. */
static void trim_partial_utf8(char *buf, size_t size, int written)
{
	if (written < 0 || (size_t)written < size)
		return;
	size_t len = strlen(buf);
	size_t k = len;
	while (k > 0 && len - k < 3 && ((unsigned char)buf[k - 1] & 0xC0) == 0x80)
		k--;
	if (k > 0 && (unsigned char)buf[k - 1] >= 0xC0 && !text_utf8_valid(buf + k - 1, len - k + 1))
		buf[k - 1] = '\0';
}

static void set_err(corpus_reader *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(r->err, sizeof r->err, fmt, ap);
	va_end(ap);
	trim_partial_utf8(r->err, sizeof r->err, w);
	r->failed = 1;
}

static int oom(corpus_reader *r)
{
	set_err(r, "out of memory");
	return -1;
}

/* Reports one skipped input; returns -1 in strict mode (the error is set),
 * else 0. */
static int skip_input(corpus_reader *r, const char *what, const char *fmt, ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	trim_partial_utf8(why, sizeof why, w);
	r->skipped++;
	if (r->skip)
		r->skip(r->skip_ctx, what, why);
	if (r->strict) {
		set_err(r, "%s: %s", what, why);
		return -1;
	}
	return 0;
}

static void free_doc(corpus_doc *d)
{
	free(d->path);
	free(d->title);
	free(d->short_title);
	free(d->category);
	free(d->ext_id);
	free(d->body);
	memset(d, 0, sizeof *d);
}

/* text_utf8_valid with a fast path for the common cases (ASCII, and the
 * 3-byte sequences led by E1..EC / EE..EF, which are valid whatever their
 * continuation bytes); every other sequence is judged by text_utf8_get, so
 * the rules stay those of utf8.c.  About 3x faster on Chinese text. */
static int utf8_valid(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		unsigned c = u[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xE1 && c != 0xED && c <= 0xEF && len - i >= 3 &&
		    (u[i + 1] & 0xC0) == 0x80 && (u[i + 2] & 0xC0) == 0x80) {
			i += 3;
			continue;
		}
		uint32_t cp;
		i += text_utf8_get(s + i, len - i, &cp);
		if (cp == UINT32_MAX)
			return 0;
	}
	return 1;
}

/* ---------------------------------------------------------------- titles */

/* Whitespace-like code points folded into one space inside a title: ASCII
 * whitespace, every other control character (incl. the "\x1f" separator),
 * NBSP, the Unicode spaces U+2000..200A, U+2028/2029, U+3000. */
static int title_space(uint32_t cp)
{
	return cp < 0x20 || cp == ' ' || cp == 0x7F || cp == 0x85 || cp == 0xA0 ||
	       (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
	       cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* A title from s[0..n): whitespace runs collapsed to one space, trimmed,
 * invalid UTF-8 replaced by U+FFFD; with strip_hashes, a Markdown closing
 * sequence (" ##") is removed too.  Returns "" (malloc'd) when nothing is
 * left, NULL when out of memory. */
static char *make_title(const char *s, size_t n, int strip_hashes)
{
	char *t = malloc(n * 3 + 1);
	if (!t)
		return NULL;
	size_t o = 0, i = 0;
	int pending_space = 0;
	while (i < n) {
		uint32_t cp;
		size_t k = text_utf8_get(s + i, n - i, &cp);
		if (cp != UINT32_MAX && title_space(cp)) {
			pending_space = o > 0;
		} else {
			if (pending_space)
				t[o++] = ' ';
			pending_space = 0;
			if (cp == UINT32_MAX)
				o += text_utf8_put(t + o, 0xFFFD);
			else {
				memcpy(t + o, s + i, k);
				o += k;
			}
		}
		i += k;
	}
	if (strip_hashes) {
		size_t e = o;
		while (e > 0 && t[e - 1] == '#')
			e--;
		if (e < o && (e == 0 || t[e - 1] == ' ')) {
			o = e;
			if (o > 0)
				o--;  /* the space before the closing sequence */
		}
	}
	t[o] = '\0';
	return t;
}

/* ---------------------------------------------------------------- dates */

static int valid_ymd(int y, int m, int d)
{
	return y >= 1900 && y <= 2100 && m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

static uint32_t ymd(int y, int m, int d)
{
	return (uint32_t)(y * 10000 + m * 100 + d);
}

/* An ASCII or full-width digit at s[i]: its value, with its size in *adv;
 * -1 if none. */
static int digit_at(const unsigned char *s, size_t len, size_t i, size_t *adv)
{
	if (i < len && s[i] >= '0' && s[i] <= '9') {
		*adv = 1;
		return s[i] - '0';
	}
	if (i + 2 < len && s[i] == 0xEF && s[i + 1] == 0xBC && s[i + 2] >= 0x90 && s[i + 2] <= 0x99) {
		*adv = 3;
		return s[i + 2] - 0x90;
	}
	return -1;
}

static int digit_before(const unsigned char *s, size_t i)
{
	if (i >= 1 && s[i - 1] >= '0' && s[i - 1] <= '9')
		return 1;
	return i >= 3 && s[i - 3] == 0xEF && s[i - 2] == 0xBC && s[i - 1] >= 0x90 && s[i - 1] <= 0x99;
}

/* Reads min..max digits at *p, which must not be followed by another digit. */
static int read_num(const unsigned char *s, size_t len, size_t *p, int min, int max)
{
	int v = 0, nd = 0;
	size_t adv;
	int d;
	while (nd < max && (d = digit_at(s, len, *p, &adv)) >= 0) {
		v = v * 10 + d;
		*p += adv;
		nd++;
	}
	if (nd < min || digit_at(s, len, *p, &adv) >= 0)
		return -1;
	return v;
}

/* Spaces allowed inside a written date: ASCII space, tab, NBSP, U+3000. */
static void skip_spaces(const unsigned char *s, size_t len, size_t *p)
{
	for (;;) {
		if (*p < len && (s[*p] == ' ' || s[*p] == '\t'))
			*p += 1;
		else if (*p + 1 < len && s[*p] == 0xC2 && s[*p + 1] == 0xA0)
			*p += 2;
		else if (*p + 2 < len && s[*p] == 0xE3 && s[*p + 1] == 0x80 && s[*p + 2] == 0x80)
			*p += 3;
		else
			return;
	}
}

static int literal(const unsigned char *s, size_t len, size_t *p, const char *lit)
{
	size_t n = strlen(lit);
	if (*p + n <= len && memcmp(s + *p, lit, n) == 0) {
		*p += n;
		return 1;
	}
	return 0;
}

/* "2009年2月28日", "2021年 12月 9日", "2019-06-05", "2019.6.5", "2019/6/5"
 * starting at s[i] (a digit not preceded by a digit). */
static uint32_t arabic_date_at(const unsigned char *s, size_t len, size_t i)
{
	size_t p = i;
	int y = read_num(s, len, &p, 4, 4);
	if (y < 0)
		return 0;
	if (p < len && (s[p] == '-' || s[p] == '.' || s[p] == '/')) {
		unsigned char sep = s[p++];
		int m = read_num(s, len, &p, 1, 2);
		if (m < 0 || p >= len || s[p] != sep)
			return 0;
		p++;
		int d = read_num(s, len, &p, 1, 2);
		if (d < 0)
			return 0;
		/* "2019.6.5.1" is a version number, not a date */
		if (p + 1 < len && s[p] == sep && s[p + 1] >= '0' && s[p + 1] <= '9')
			return 0;
		return valid_ymd(y, m, d) ? ymd(y, m, d) : 0;
	}
	skip_spaces(s, len, &p);
	if (!literal(s, len, &p, "年"))
		return 0;
	skip_spaces(s, len, &p);
	int m = read_num(s, len, &p, 1, 2);
	if (m < 0)
		return 0;
	skip_spaces(s, len, &p);
	if (!literal(s, len, &p, "月"))
		return 0;
	skip_spaces(s, len, &p);
	int d = read_num(s, len, &p, 1, 2);
	if (d < 0)
		return 0;
	skip_spaces(s, len, &p);
	if (!literal(s, len, &p, "日"))
		return 0;
	return valid_ymd(y, m, d) ? ymd(y, m, d) : 0;
}

/* Chinese numeral digit value, 10 for 十, -1 otherwise. */
static int cn_digit(uint32_t cp)
{
	switch (cp) {
	case 0x3007: case 0x25CB: case 0x96F6: case 0x039F: case 0xFF2F: return 0; /* 〇 ○ 零 Ο Ｏ */
	case 0x4E00: return 1;
	case 0x4E8C: return 2;
	case 0x4E09: return 3;
	case 0x56DB: return 4;
	case 0x4E94: return 5;
	case 0x516D: return 6;
	case 0x4E03: return 7;
	case 0x516B: return 8;
	case 0x4E5D: return 9;
	case 0x5341: return 10;
	default: return -1;
	}
}

static int cn_at(const unsigned char *s, size_t len, size_t *p)
{
	if (*p >= len)
		return -1;
	uint32_t cp;
	size_t k = text_utf8_get((const char *)s + *p, len - *p, &cp);
	int v = cp == UINT32_MAX ? -1 : cn_digit(cp);
	if (v >= 0)
		*p += k;
	return v;
}

/* 1..39 written as 五, 十, 十二, 二十, 二十三. */
static int cn_small(const unsigned char *s, size_t len, size_t *p)
{
	size_t q = *p;
	int a = cn_at(s, len, &q);
	int v;
	if (a == 10) {
		v = 10;
	} else if (a >= 1 && a <= 9) {
		size_t q2 = q;
		if (cn_at(s, len, &q2) != 10) {
			*p = q;
			return a;
		}
		q = q2;
		v = a * 10;
	} else {
		return -1;
	}
	size_t q3 = q;
	int b = cn_at(s, len, &q3);
	if (b >= 1 && b <= 9) {
		v += b;
		q = q3;
	}
	*p = q;
	return v;
}

/* "二〇一九年六月五日" starting at s[i]. */
static uint32_t cn_date_at(const unsigned char *s, size_t len, size_t i)
{
	size_t p = i;
	int y = 0;
	for (int k = 0; k < 4; k++) {
		int d = cn_at(s, len, &p);
		if (d < 0 || d > 9)
			return 0;
		y = y * 10 + d;
	}
	if (!literal(s, len, &p, "年"))
		return 0;
	int m = cn_small(s, len, &p);
	if (m < 0 || !literal(s, len, &p, "月"))
		return 0;
	int d = cn_small(s, len, &p);
	if (d < 0 || !literal(s, len, &p, "日"))
		return 0;
	return valid_ymd(y, m, d) ? ymd(y, m, d) : 0;
}

uint32_t corpus_date_from_text(const char *text, size_t len)
{
	if (!text)
		return 0;
	const unsigned char *s = (const unsigned char *)text;
	const char *mark = memmem(text, len, INFO_END, strlen(INFO_END));
	size_t end;
	if (mark) {
		end = (size_t)(mark - text);
	} else {
		end = len;
		int lines = 0;
		for (size_t i = 0; i < len; i++)
			if (s[i] == '\n' && ++lines == HEADER_LINES) {
				end = i;
				break;
			}
	}
	int prev_cn = 0;  /* the previous code point was a Chinese digit */
	size_t i = 0;
	while (i < end) {
		size_t adv;
		if (digit_at(s, end, i, &adv) >= 0) {
			if (!digit_before(s, i)) {
				uint32_t d = arabic_date_at(s, end, i);
				if (d)
					return d;
			}
			i += adv;
			prev_cn = 0;
			continue;
		}
		if (s[i] < 0x80) {
			i++;
			prev_cn = 0;
			continue;
		}
		uint32_t cp;
		size_t k = text_utf8_get(text + i, end - i, &cp);
		int cd = cp == UINT32_MAX ? -1 : cn_digit(cp);
		if (cd >= 0 && cd <= 9 && !prev_cn) {
			uint32_t d = cn_date_at(s, end, i);
			if (d)
				return d;
		}
		prev_cn = cd >= 0 && cd <= 9;
		i += k;
	}
	return 0;
}

/* Position of the last "(YYYY-MM-DD)" in name[0..n), or -1; its parts in
 * *y, *m, *d. */
static long find_name_date(const char *name, size_t n, int *y, int *m, int *d)
{
	if (n < 12)
		return -1;
	for (size_t i = n - 12 + 1; i-- > 0;) {
		const char *p = name + i;
		if (p[0] != '(' || p[5] != '-' || p[8] != '-' || p[11] != ')')
			continue;
		int ok = 1, v[3] = { 0, 0, 0 };
		static const int at[3][2] = { { 1, 4 }, { 6, 2 }, { 9, 2 } };
		for (int f = 0; f < 3 && ok; f++)
			for (int k = 0; k < at[f][1]; k++) {
				char c = p[at[f][0] + k];
				if (c < '0' || c > '9') {
					ok = 0;
					break;
				}
				v[f] = v[f] * 10 + (c - '0');
			}
		if (ok) {
			*y = v[0];
			*m = v[1];
			*d = v[2];
			return (long)i;
		}
	}
	return -1;
}

uint32_t corpus_date_from_name(const char *name)
{
	if (!name)
		return 0;
	name = base_name(name);
	int y, m, d;
	if (find_name_date(name, strlen(name), &y, &m, &d) < 0 || !valid_ymd(y, m, d))
		return 0;
	return ymd(y, m, d);
}

/* The title of a file without a level-1 heading: its name without the
 * extension and a trailing "(YYYY-MM-DD)". */
static char *title_from_name(const char *rel)
{
	const char *name = base_name(rel);
	size_t n = strlen(name);
	const char *dot = strrchr(name, '.');
	if (dot && dot != name)
		n = (size_t)(dot - name);
	size_t full = n;
	while (n > 0 && (name[n - 1] == ' ' || name[n - 1] == '\t'))
		n--;
	int y, m, d;
	long at = find_name_date(name, n, &y, &m, &d);
	if (at >= 0 && (size_t)at + 12 == n)
		n = (size_t)at;
	char *t = make_title(name, n, 0);
	if (t && !*t) {
		free(t);
		t = make_title(name, full, 0);
	}
	return t;
}

/* ---------------------------------------------------------------- Markdown */

/* If a "---" fence line starts at s[i], returns 1 and the end of its content
 * (before "\n" or at len) in *eol. */
static int fence_line(const char *s, size_t len, size_t i, size_t *eol)
{
	if (i + 3 > len || memcmp(s + i, "---", 3) != 0)
		return 0;
	size_t j = i + 3;
	while (j < len && (s[j] == ' ' || s[j] == '\t' || s[j] == '\r'))
		j++;
	if (j < len && s[j] != '\n')
		return 0;
	*eol = j;
	return 1;
}

char *corpus_clean_markdown(const char *text, size_t len, size_t *out_len, char **title)
{
	if (title)
		*title = NULL;
	if (!text)
		len = 0;
	char *out = malloc(len + 1);
	if (!out)
		return NULL;
	size_t i = 0, o = 0;
	char *t = NULL;
	int line_start = 1;
	int in_h1 = 0;    /* inside the text of a level-1 heading line */
	size_t h1_start = 0;
	/* cached positions of the next "<" and "\n"; stale once <= i */
	size_t next_lt = 0, next_nl = 0;

	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		i = 3;
	size_t eol;
	if (fence_line(text, len, i, &eol)) {
		size_t j = eol;
		while (j < len) {
			j++;  /* past "\n" */
			size_t e2;
			if (fence_line(text, len, j, &e2)) {
				out[o++] = '\x1f';
				i = e2;
				line_start = 0;
				break;
			}
			const char *nl = memchr(text + j, '\n', len - j);
			j = nl ? (size_t)(nl - text) : len;
		}
	}

	for (;;) {
		if (in_h1 && (i >= len || text[i] == '\n')) {
			in_h1 = 0;
			if (!t) {
				t = make_title(out + h1_start, o - h1_start, 1);
				if (!t) {
					free(out);
					return NULL;
				}
				if (!*t) {
					free(t);
					t = NULL;
				}
			}
		}
		if (i >= len)
			break;
		char c = text[i];
		if (!line_start && c != '<' && c != '\n') {
			/* copy the run up to the next "<" or line end at once */
			if (next_lt <= i) {
				const char *p = memchr(text + i, '<', len - i);
				next_lt = p ? (size_t)(p - text) : len;
			}
			if (next_nl <= i) {
				const char *p = memchr(text + i, '\n', len - i);
				next_nl = p ? (size_t)(p - text) : len;
			}
			size_t e = next_lt < next_nl ? next_lt : next_nl;
			memcpy(out + o, text + i, e - i);
			o += e - i;
			i = e;
			continue;
		}
		if (c == '<' && len - i >= 4 && memcmp(text + i, "<!--", 4) == 0) {
			const char *e = memmem(text + i + 4, len - i - 4, "-->", 3);
			i = e ? (size_t)(e - text) + 3 : len;
			out[o++] = '\x1f';
			line_start = 0;
			continue;
		}
		if (c == '#' && line_start) {
			size_t k = 0;
			while (i + k < len && k < 7 && text[i + k] == '#')
				k++;
			if (k <= 6 && i + k < len && (text[i + k] == ' ' || text[i + k] == '\t')) {
				i += k;
				while (i < len && (text[i] == ' ' || text[i] == '\t'))
					i++;
				out[o++] = '\x1f';
				line_start = 0;
				if (k == 1 && !t) {
					in_h1 = 1;
					h1_start = o;
				}
				continue;
			}
		}
		out[o++] = c;
		line_start = c == '\n';
		i++;
	}
	out[o] = '\0';
	if (out_len)
		*out_len = o;
	if (title)
		*title = t;
	else
		free(t);
	return out;
}

/* ---------------------------------------------------------------- reading */

/* Reads a whole regular file.  Returns 1 with the bytes in *buf (NUL-
 * terminated), 0 when skipped (reason in why), -1 when out of memory. */
static int read_whole(const char *fs, char **buf, size_t *len, char *why, size_t whylen)
{
	*buf = NULL;
	*len = 0;
	int fd = open(fs, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(why, whylen, "cannot open: %s", strerror(errno));
		return 0;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		snprintf(why, whylen, "cannot stat: %s", strerror(errno));
		close(fd);
		return 0;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "not a regular file");
		close(fd);
		return 0;
	}
	if ((uint64_t)st.st_size > SOUSUO_MAX_DOC_BYTES) {
		snprintf(why, whylen, "larger than %u bytes (%llu bytes)", SOUSUO_MAX_DOC_BYTES,
		         (unsigned long long)st.st_size);
		close(fd);
		return 0;
	}
	size_t cap = (size_t)st.st_size + 1, n = 0;
	char *b = malloc(cap + 1);
	if (!b) {
		close(fd);
		return -1;
	}
	for (;;) {
		if (n == cap) {  /* the file grew since fstat */
			if (cap > SOUSUO_MAX_DOC_BYTES) {
				snprintf(why, whylen, "larger than %u bytes", SOUSUO_MAX_DOC_BYTES);
				free(b);
				close(fd);
				return 0;
			}
			size_t nc = cap * 2 > (size_t)SOUSUO_MAX_DOC_BYTES + 1 ? (size_t)SOUSUO_MAX_DOC_BYTES + 1 : cap * 2;
			char *nb = realloc(b, nc + 1);
			if (!nb) {
				free(b);
				close(fd);
				return -1;
			}
			b = nb;
			cap = nc;
		}
		ssize_t k = read(fd, b + n, cap - n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			snprintf(why, whylen, "read error: %s", strerror(errno));
			free(b);
			close(fd);
			return 0;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	if (n > SOUSUO_MAX_DOC_BYTES) {
		snprintf(why, whylen, "larger than %u bytes", SOUSUO_MAX_DOC_BYTES);
		free(b);
		return 0;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 1;
}

static char *category_of(const char *rel)
{
	const char *s = strrchr(rel, '/');
	return s ? dup_n(rel, (size_t)(s - rel)) : dup_s("");
}

/* Reads one .md/.txt file into r->cur.  Returns 1 (document), 0 (skipped),
 * -1 (fatal). */
static int load_file(corpus_reader *r, const char *rel, const char *fs, int kind)
{
	char why[256];
	if (!utf8_valid(rel, strlen(rel)))
		return skip_input(r, fs, "file name is not valid UTF-8");
	char *buf;
	size_t len;
	int rc = read_whole(fs, &buf, &len, why, sizeof why);
	if (rc < 0)
		return oom(r);
	if (rc == 0)
		return skip_input(r, fs, "%s", why);
	size_t off = 0;
	if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
		off = 3;
	const char *reason = NULL;
	if (len == off)
		reason = "empty file";
	else if (memchr(buf + off, '\0', len - off))
		reason = "binary file (contains NUL bytes)";
	else if (!utf8_valid(buf + off, len - off))
		reason = "invalid UTF-8";
	if (reason) {
		free(buf);
		return skip_input(r, fs, "%s", reason);
	}

	corpus_doc *d = &r->cur;
	d->date = corpus_date_from_name(rel);
	if (!d->date)
		d->date = corpus_date_from_text(buf + off, len - off);
	if (kind == K_MD) {
		d->body = corpus_clean_markdown(buf + off, len - off, &d->body_len, &d->title);
		free(buf);
		if (!d->body)
			return oom(r);
	} else {
		if (off) {
			memmove(buf, buf + off, len - off + 1);
			len -= off;
		}
		d->body = buf;
		d->body_len = len;
	}
	d->short_title = title_from_name(rel);
	if (!d->title)
		d->title = dup_s(d->short_title ? d->short_title : "");
	d->path = dup_s(rel);
	d->category = category_of(rel);
	if (!d->title || !d->short_title || !d->path || !d->category)
		return oom(r);
	return 1;
}

/* ---------------------------------------------------------------- JSON Lines */

static void close_jsonl(corpus_reader *r)
{
	if (r->jf)
		fclose(r->jf);
	r->jf = NULL;
	free(r->jpath);
	free(r->jfs);
	r->jpath = r->jfs = NULL;
	free(r->line);
	r->line = NULL;
	r->line_cap = 0;
}

/* Starts reading a JSON Lines file; returns 0 or -1 (fatal). */
static int open_jsonl(corpus_reader *r, const char *rel, const char *fs)
{
	if (!utf8_valid(rel, strlen(rel)))
		return skip_input(r, fs, "file name is not valid UTF-8");
	int fd = open(fs, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return skip_input(r, fs, "cannot open: %s", strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return skip_input(r, fs, "not a regular file");
	}
	if (st.st_size == 0) {
		close(fd);
		return skip_input(r, fs, "empty file");
	}
	FILE *f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return oom(r);
	}
	r->jf = f;
	r->jpath = dup_s(rel);
	r->jfs = dup_s(fs);
	r->jline = 0;
	if (!r->jpath || !r->jfs) {
		close_jsonl(r);
		return oom(r);
	}
	return 0;
}

static int json_str(const cJSON *o, const char *key, const char **out)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!cJSON_IsString(it) || !it->valuestring)
		return 0;
	*out = it->valuestring;
	return 1;
}

static uint32_t json_date(const char *s)
{
	size_t n = strlen(s);
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || ((i == 4 || i == 7) && s[i] == '-' && n == 10)))
			return 0;
	if (n == 4) {
		int y = atoi(s);
		return valid_ymd(y, 1, 1) ? ymd(y, 1, 1) : 0;
	}
	if (n == 10 && s[4] == '-' && s[7] == '-') {
		int y = atoi(s), m = atoi(s + 5), d = atoi(s + 8);
		return valid_ymd(y, m, d) ? ymd(y, m, d) : 0;
	}
	return 0;
}

/* Builds r->cur from one parsed line; returns 1, 0 (skipped) or -1. */
static int json_doc(corpus_reader *r, const cJSON *root, const char *what)
{
	const char *title, *body, *s;
	if (!cJSON_IsObject(root))
		return skip_input(r, what, "not a JSON object");
	if (!json_str(root, "title", &title))
		return skip_input(r, what, "\"title\" missing or not a string");
	if (!json_str(root, "body", &body))
		return skip_input(r, what, "\"body\" missing or not a string");
	size_t tl = strlen(title), bl = strlen(body);
	if (!utf8_valid(title, tl) || !utf8_valid(body, bl))
		return skip_input(r, what, "invalid UTF-8");
	if (tl + 1 + bl > SOUSUO_MAX_DOC_BYTES)
		return skip_input(r, what, "larger than %u bytes", SOUSUO_MAX_DOC_BYTES);

	corpus_doc *d = &r->cur;
	const char *cat = "";
	if (json_str(root, "category", &s)) {
		if (!utf8_valid(s, strlen(s)))
			return skip_input(r, what, "invalid UTF-8");
		cat = s;
	}
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
	if (cJSON_IsString(id) && id->valuestring) {
		if (!utf8_valid(id->valuestring, strlen(id->valuestring)))
			return skip_input(r, what, "invalid UTF-8");
		d->ext_id = dup_s(id->valuestring);
		if (!d->ext_id)
			return oom(r);
	} else if (cJSON_IsNumber(id)) {
		char nb[64];
		double v = id->valuedouble;
		if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == (double)(long long)v)
			snprintf(nb, sizeof nb, "%lld", (long long)v);
		else
			snprintf(nb, sizeof nb, "%.17g", v);
		d->ext_id = dup_s(nb);
		if (!d->ext_id)
			return oom(r);
	}
	if (json_str(root, "date", &s))
		d->date = json_date(s);

	char ln[32];
	snprintf(ln, sizeof ln, ":%llu", (unsigned long long)r->jline);
	size_t pl = strlen(r->jpath), ll = strlen(ln);
	d->path = malloc(pl + ll + 1);
	d->body = malloc(tl + 1 + bl + 1);
	d->title = make_title(title, tl, 0);
	d->short_title = d->title ? dup_s(d->title) : NULL;
	d->category = dup_s(cat);
	if (!d->path || !d->body || !d->title || !d->short_title || !d->category)
		return oom(r);
	memcpy(d->path, r->jpath, pl);
	memcpy(d->path + pl, ln, ll + 1);
	memcpy(d->body, title, tl);
	d->body[tl] = '\n';
	memcpy(d->body + tl + 1, body, bl + 1);
	d->body_len = tl + 1 + bl;
	return 1;
}

/* Next document of the open JSON Lines file: 1, 0 at its end (closed), -1. */
static int jsonl_next(corpus_reader *r)
{
	for (;;) {
		errno = 0;
		ssize_t n = getline(&r->line, &r->line_cap, r->jf);
		if (n < 0) {
			int e = errno;
			int bad = ferror(r->jf);
			char *fs = r->jfs;
			r->jfs = NULL;
			close_jsonl(r);
			int rc = 0;
			if (e == ENOMEM)
				rc = oom(r);
			else if (bad)
				rc = skip_input(r, fs, "read error: %s", strerror(e ? e : EIO));
			free(fs);
			return rc;
		}
		r->jline++;
		char *s = r->line;
		size_t len = (size_t)n;
		if (len && s[len - 1] == '\n')
			len--;
		if (len && s[len - 1] == '\r')
			len--;
		s[len] = '\0';
		if (r->jline == 1 && len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
			s += 3;
			len -= 3;
		}
		size_t k = 0;
		while (k < len && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r'))
			k++;
		if (k == len)
			continue;  /* blank line */

		char what[64];
		snprintf(what, sizeof what, ":%llu", (unsigned long long)r->jline);
		char *w = malloc(strlen(r->jfs) + strlen(what) + 1);
		if (!w)
			return oom(r);
		strcpy(w, r->jfs);
		strcat(w, what);

		int rc;
		if (memchr(s, '\0', len)) {
			rc = skip_input(r, w, "contains NUL bytes");
		} else if (!utf8_valid(s, len)) {
			rc = skip_input(r, w, "invalid UTF-8");
		} else {
			const char *end = NULL;
			cJSON *root = cJSON_ParseWithOpts(s, &end, 1);
			if (r->line_cap > (1u << 20)) {
				/* keep peak memory near one line plus its parse */
				free(r->line);
				r->line = NULL;
				r->line_cap = 0;
			}
			if (!root)
				rc = skip_input(r, w, "malformed JSON");
			else
				rc = json_doc(r, root, w);
			cJSON_Delete(root);
		}
		free(w);
		if (rc != 0)
			return rc;
		free_doc(&r->cur);  /* a skipped line may have set some fields */
	}
}

/* ---------------------------------------------------------------- walking */

static int skip_hidden(const struct dirent *e)
{
	return e->d_name[0] != '.';
}

static int by_bytes(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static void pop_frame(corpus_reader *r)
{
	frame *f = &r->stack[--r->depth];
	for (int i = 0; i < f->n; i++)
		free(f->ents[i]);
	free(f->ents);
	free(f->rel);
	free(f->fs);
}

/* Pushes a folder (taking rel and fs); returns 0 or -1 (fatal). */
static int push_frame(corpus_reader *r, char *rel, char *fs)
{
	struct stat st;
	if (stat(fs, &st) != 0) {
		int rc = skip_input(r, fs, "cannot open folder: %s", strerror(errno));
		free(rel);
		free(fs);
		return rc;
	}
	for (size_t i = 0; i < r->depth; i++)
		if (r->stack[i].dev == st.st_dev && r->stack[i].ino == st.st_ino) {
			free(rel);  /* a loop through a bind mount: not followed */
			free(fs);
			return 0;
		}
	if (r->depth == r->stack_cap) {
		size_t nc = r->stack_cap ? r->stack_cap * 2 : 8;
		frame *ns = realloc(r->stack, nc * sizeof *ns);
		if (!ns) {
			free(rel);
			free(fs);
			return oom(r);
		}
		r->stack = ns;
		r->stack_cap = nc;
	}
	struct dirent **ents = NULL;
	errno = 0;
	int n = scandir(fs, &ents, skip_hidden, by_bytes);
	if (n < 0) {
		int e = errno;
		int rc = e == ENOMEM ? oom(r) : skip_input(r, fs, "cannot open folder: %s", strerror(e));
		free(rel);
		free(fs);
		return rc;
	}
	frame *f = &r->stack[r->depth++];
	f->ents = ents;
	f->n = n;
	f->i = 0;
	f->rel = rel;
	f->fs = fs;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	return 0;
}

/* Handles the next entry of the top folder: 1 (document), 0 (go on), -1. */
static int walk_step(corpus_reader *r)
{
	frame *f = &r->stack[r->depth - 1];
	if (f->i >= f->n) {
		pop_frame(r);
		return 0;
	}
	struct dirent *e = f->ents[f->i++];
	const char *name = e->d_name;
	int kind = kind_of_name(name);
	char *rel = join(f->rel, name);
	char *fs = join(f->fs, name);
	if (!rel || !fs) {
		free(rel);
		free(fs);
		return oom(r);
	}
	int type = K_NONE, rc = 0;
	if (e->d_type == DT_DIR) {
		type = K_DIR;
	} else if (e->d_type == DT_REG) {
		type = kind;
	} else if (e->d_type == DT_LNK || e->d_type == DT_UNKNOWN) {
		struct stat st;
		if (lstat(fs, &st) != 0) {
			if (kind != K_NONE)
				rc = skip_input(r, fs, "cannot stat: %s", strerror(errno));
		} else if (S_ISDIR(st.st_mode)) {
			type = K_DIR;
		} else if (S_ISREG(st.st_mode)) {
			type = kind;
		} else if (S_ISLNK(st.st_mode) && kind != K_NONE) {
			/* a link to a file is read; a link to a folder is not followed */
			if (stat(fs, &st) != 0)
				rc = skip_input(r, fs, "broken symbolic link");
			else if (S_ISREG(st.st_mode))
				type = kind;
		}
	}
	if (type == K_DIR)
		return push_frame(r, rel, fs);  /* takes rel and fs */
	if (type == K_MD || type == K_TXT)
		rc = load_file(r, rel, fs, type);
	else if (type == K_JSONL)
		rc = open_jsonl(r, rel, fs);
	free(rel);
	free(fs);
	return rc;
}

/* ---------------------------------------------------------------- API */

corpus_reader *corpus_open(const char *const *inputs, int n, int strict,
                           corpus_skip_fn skip, void *skip_ctx,
                           char *err, size_t errlen)
{
	char dummy[1];
	if (!err || errlen == 0) {
		err = dummy;
		errlen = sizeof dummy;
	}
	err[0] = '\0';
	if (n < 0 || (n > 0 && !inputs)) {
		snprintf(err, errlen, "no inputs");
		return NULL;
	}
	corpus_reader *r = calloc(1, sizeof *r);
	if (!r || (n > 0 && (!(r->inputs = calloc((size_t)n, sizeof *r->inputs)) ||
	                     !(r->kinds = calloc((size_t)n, sizeof *r->kinds))))) {
		snprintf(err, errlen, "out of memory");
		corpus_close(r);
		return NULL;
	}
	r->strict = strict;
	r->skip = skip;
	r->skip_ctx = skip_ctx;
	for (int i = 0; i < n; i++) {
		const char *in = inputs[i];
		struct stat st;
		int w = -1;  /* >= 0 once an error message is written */
		if (!in || !*in) {
			w = snprintf(err, errlen, "empty input path");
		} else if (stat(in, &st) != 0) {
			w = snprintf(err, errlen, "%s: %s", in, strerror(errno));
		} else if (S_ISDIR(st.st_mode)) {
			DIR *dir = opendir(in);
			if (!dir)
				w = snprintf(err, errlen, "%s: %s", in, strerror(errno));
			else
				closedir(dir);
			r->kinds[i] = K_DIR;
		} else if (S_ISREG(st.st_mode)) {
			r->kinds[i] = kind_of_name(base_name(in));
			if (r->kinds[i] == K_NONE) {
				w = snprintf(err, errlen, "%s: not a .md, .txt or .jsonl file", in);
			} else {
				int fd = open(in, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
				if (fd < 0)
					w = snprintf(err, errlen, "%s: %s", in, strerror(errno));
				else
					close(fd);
			}
		} else {
			w = snprintf(err, errlen, "%s: not a regular file or folder", in);
		}
		if (w >= 0) {
			trim_partial_utf8(err, errlen, w);
			corpus_close(r);
			return NULL;
		}
		r->inputs[i] = dup_s(in);
		r->n = i + 1;
		if (!r->inputs[i]) {
			snprintf(err, errlen, "out of memory");
			corpus_close(r);
			return NULL;
		}
	}
	r->n = n;
	return r;
}

int corpus_next(corpus_reader *r, corpus_doc *doc)
{
	if (!r)
		return -1;
	free_doc(&r->cur);
	for (;;) {
		if (r->failed)
			return -1;
		int rc;
		if (r->jf) {
			rc = jsonl_next(r);
		} else if (r->depth > 0) {
			rc = walk_step(r);
		} else if (r->next_input < r->n) {
			int i = r->next_input++;
			const char *in = r->inputs[i];
			if (r->kinds[i] == K_DIR) {
				char *rel = dup_s(""), *fs = dup_s(in);
				if (!rel || !fs) {
					free(rel);
					free(fs);
					return oom(r);
				}
				rc = push_frame(r, rel, fs);
			} else if (r->kinds[i] == K_JSONL) {
				rc = open_jsonl(r, base_name(in), in);
			} else {
				rc = load_file(r, base_name(in), in, r->kinds[i]);
			}
		} else {
			return 0;
		}
		if (rc == 1) {
			if (doc)
				*doc = r->cur;
			return 1;
		}
		free_doc(&r->cur);
		if (rc < 0) {
			if (!r->failed)
				oom(r);
			return -1;
		}
	}
}

const char *corpus_error(const corpus_reader *r)
{
	return r ? r->err : "";
}

uint64_t corpus_skipped(const corpus_reader *r)
{
	return r ? r->skipped : 0;
}

void corpus_close(corpus_reader *r)
{
	if (!r)
		return;
	free_doc(&r->cur);
	close_jsonl(r);
	while (r->depth > 0)
		pop_frame(r);
	free(r->stack);
	if (r->inputs)
		for (int i = 0; i < r->n; i++)
			free(r->inputs[i]);
	free(r->inputs);
	free(r->kinds);
	free(r);
}
