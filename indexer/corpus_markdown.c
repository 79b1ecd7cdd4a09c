/* corpus_markdown.c — Markdown cleanup (corpus_clean_markdown) and titles
 * (from a heading, a JSON "title" or a file name); called by corpus.c,
 * corpus_jsonl.c and the tests. */
#include "indexer/corpus_int.h"
#include "indexer/text.h"

#include <stdlib.h>
#include <string.h>

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
 * sequence (" ##") is removed too.  A title longer than
 * CORPUS_MAX_TITLE_BYTES is cut at a character and ends in "…".  Returns ""
 * (malloc'd) when nothing is left, NULL when out of memory. */
char *corpus_make_title(const char *s, size_t n, int strip_hashes)
{
	/* each input byte gives at most 3 (U+FFFD); room for the "…" */
	size_t room = n < CORPUS_MAX_TITLE_BYTES ? n * 3 : CORPUS_MAX_TITLE_BYTES;
	char *t = malloc(room + 4);
	if (!t)
		return NULL;
	size_t o = 0, i = 0;
	int pending_space = 0, cut = 0;
	while (i < n) {
		uint32_t cp;
		size_t k = text_utf8_get(s + i, n - i, &cp);
		if (cp != UINT32_MAX && title_space(cp)) {
			pending_space = o > 0;
		} else {
			size_t need = (size_t)pending_space + (cp == UINT32_MAX ? 3 : k);
			if (o + need > CORPUS_MAX_TITLE_BYTES) {
				/* a heading or JSON title of megabytes (a file without
				 * newlines) would be shown whole with every result */
				cut = 1;
				break;
			}
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
	if (cut) {
		memcpy(t + o, "\xE2\x80\xA6", 3);  /* … */
		o += 3;
	} else if (strip_hashes) {
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

/* The title of a file without a level-1 heading: its name without the
 * extension and a trailing "(YYYY-MM-DD)". */
char *corpus_title_from_name(const char *rel)
{
	const char *name = corpus_base_name(rel);
	size_t n = strlen(name);
	const char *dot = strrchr(name, '.');
	if (dot && dot != name)
		n = (size_t)(dot - name);
	size_t full = n;
	while (n > 0 && (name[n - 1] == ' ' || name[n - 1] == '\t'))
		n--;
	int y, m, d;
	long at = corpus_find_name_date(name, n, &y, &m, &d);
	if (at >= 0 && (size_t)at + 12 == n)
		n = (size_t)at;
	char *t = corpus_make_title(name, n, 0);
	if (t && !*t) {
		free(t);
		t = corpus_make_title(name, full, 0);
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
				t = corpus_make_title(out + h1_start, o - h1_start, 1);
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
