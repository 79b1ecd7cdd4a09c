/* corpus_dates.c — document dates from a file name, from the head of a text
 * and from a JSON "date" field; called by corpus.c, corpus_markdown.c,
 * corpus_jsonl.c and the tests. */
#include "indexer/corpus_int.h"
#include "indexer/text.h"

#include <stdlib.h>
#include <string.h>

#define INFO_END "<!-- INFO END -->"
#define HEADER_LINES 10

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
long corpus_find_name_date(const char *name, size_t n, int *y, int *m, int *d)
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
	name = corpus_base_name(name);
	int y, m, d;
	if (corpus_find_name_date(name, strlen(name), &y, &m, &d) < 0 || !valid_ymd(y, m, d))
		return 0;
	return ymd(y, m, d);
}

/* A JSON "date" field: "YYYY" or "YYYY-MM-DD", else 0. */
uint32_t corpus_date_from_iso(const char *s)
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
