/* text_ref.h — a brute-force reference for the tokens of indexer/text.c,
 * written from the rule text.h states rather than from the tokenizer's
 * streaming code: utf8proc_map over each whole valid stretch of the input,
 * then cut the code points into words and CJK characters and number them.
 * tests/test_text.c and the fuzz target tests/fuzz/fuzz_text.c both compare
 * the tokenizer with it.
 *
 * It calls neither cmocka nor FUZZ_CHECK: the fuzz target also runs inside
 * tests/test_fuzz_regress.c, so failures are returned for the caller to
 * report its own way.  Everything is static inline (see fuzz_util.h). */
#ifndef SOUSUO_TEXT_REF_H
#define SOUSUO_TEXT_REF_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <utf8proc.h>

#include "indexer/text.h"

#define TEXT_REF_NORM (UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD)
/* What text_utf8_get stores for an invalid byte. */
#define TEXT_REF_BAD UINT32_MAX

enum { TEXT_REF_SEP, TEXT_REF_SPACE, TEXT_REF_WORD, TEXT_REF_CJK };

/* The class of a normalized code point.  The CJK ranges are spelled out
 * here, not taken from text_is_cjk, so that the reference does not lean on
 * the code it checks. */
static inline int text_ref_class(uint32_t cp)
{
	static const uint32_t ws[] = { 0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029,
				       0x202F, 0x205F, 0x3000 };
	if (cp == TEXT_REF_BAD)
		return TEXT_REF_SEP;
	if ((cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x4E00 && cp <= 0x9FFF) ||
	    (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x20000 && cp <= 0x2FFFF) ||
	    cp == 0x3007)
		return TEXT_REF_CJK;
	if ((cp >= 9 && cp <= 13) || (cp >= 0x2000 && cp <= 0x200A))
		return TEXT_REF_SPACE;
	for (size_t i = 0; i < sizeof ws / sizeof *ws; i++)
		if (cp == ws[i])
			return TEXT_REF_SPACE;
	switch (utf8proc_category((utf8proc_int32_t)cp)) {
	case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL:
	case UTF8PROC_CATEGORY_LT: case UTF8PROC_CATEGORY_LM:
	case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN:
	case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
	case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL:
	case UTF8PROC_CATEGORY_NO:
		return TEXT_REF_WORD;
	default:
		return TEXT_REF_SEP;
	}
}

static inline int text_ref_append(uint32_t **cps, size_t *n, size_t *cap, uint32_t cp)
{
	if (*n == *cap) {
		uint32_t *p = realloc(*cps, 2 * *cap * sizeof *p);
		if (!p)
			return -1;
		*cps = p;
		*cap *= 2;
	}
	(*cps)[(*n)++] = cp;
	return 0;
}

/* The whole text as normalized code points, TEXT_REF_BAD for each invalid
 * byte: malloc'd, *n_out of them; NULL if out of memory or utf8proc fails. */
static inline uint32_t *text_ref_normalize(const char *s, size_t len, size_t *n_out)
{
	size_t cap = 16, n = 0, i = 0;
	uint32_t *cps = malloc(cap * sizeof *cps);
	if (!cps)
		return NULL;
	while (i < len) {
		uint32_t cp;
		size_t j = i, k;
		while (j < len && (k = text_utf8_get(s + j, len - j, &cp), cp != TEXT_REF_BAD))
			j += k;
		utf8proc_uint8_t *m = NULL;
		utf8proc_ssize_t mlen = 0;
		if (j > i) {
			mlen = utf8proc_map((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(j - i), &m,
			                    TEXT_REF_NORM);
			if (mlen < 0)
				goto fail;
		}
		for (utf8proc_ssize_t p = 0; p < mlen;) {
			utf8proc_int32_t c;
			utf8proc_ssize_t r = utf8proc_iterate(m + p, mlen - p, &c);
			if (r <= 0 || text_ref_append(&cps, &n, &cap, (uint32_t)c)) {
				free(m);
				goto fail;
			}
			p += r;
		}
		free(m);
		if (j < len) {
			if (text_ref_append(&cps, &n, &cap, TEXT_REF_BAD))
				goto fail;
			j++;
		}
		i = j;
	}
	*n_out = n;
	return cps;
fail:
	free(cps);
	return NULL;
}

/* Receives the reference's tokens in order: a word (kind TEXT_TOK_WORD,
 * cp 0) or a CJK character (TEXT_TOK_CJK, word NULL, word_len 0). */
typedef void (*text_ref_emit)(void *ctx, int kind, uint32_t cp, const char *word,
                              size_t word_len, uint32_t pos);

/* The tokens of s[0..len), passed to emit; 0, or -1 if the text could not
 * be normalized (out of memory, utf8proc failed). */
static inline int text_ref_tokenize(const char *s, size_t len, text_ref_emit emit, void *ctx)
{
	size_t n;
	uint32_t *cps = text_ref_normalize(s, len, &n);
	if (!cps)
		return -1;
	char *w = malloc(4 * n + 1);
	if (!w) {
		free(cps);
		return -1;
	}
	size_t wl = 0;
	int have = 0, last_cjk = 0, space = 0, sep = 0;
	uint32_t pos = 0;
	for (size_t i = 0; i <= n; i++) {
		int cls = i < n ? text_ref_class(cps[i]) : TEXT_REF_SEP;
		if (cls == TEXT_REF_WORD) {
			wl += text_utf8_put(w + wl, cps[i]);
			continue;
		}
		if (wl) {
			pos = !have ? 0 : pos + 1 + (sep || space);
			emit(ctx, TEXT_TOK_WORD, 0, w, wl, pos);
			have = 1, last_cjk = 0, space = sep = 0, wl = 0;
		}
		if (i == n)
			break;
		if (cls == TEXT_REF_CJK) {
			pos = !have ? 0 : pos + 1 + (sep || (space && !last_cjk));
			emit(ctx, TEXT_TOK_CJK, cps[i], NULL, 0, pos);
			have = 1, last_cjk = 1, space = sep = 0;
		} else if (cls == TEXT_REF_SPACE) {
			space = 1;
		} else {
			sep = 1;
		}
	}
	free(w);
	free(cps);
	return 0;
}

#endif
