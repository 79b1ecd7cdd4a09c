/* fuzz_text.c — libFuzzer target for the text layer (indexer/text.c,
 * indexer/utf8.c): the NFKC + case-folding normalizer and tokenizer that
 * both the indexer and the query parser run, on any bytes (documents come
 * from PDFs and Markdown of any quality), and the snippet maker
 * (search/snippet.c) that re-tokenizes a body to mark matches.
 *
 * Checked beyond "no crash": every token as text.h describes it (kinds,
 * words valid UTF-8, positions from 0 rising by 1 or 2, source ranges in
 * bounds, in order, valid UTF-8); the end is sticky; a second run with the
 * same tokenizer and one with a fresh tokenizer give the same stream; and,
 * for inputs of at most 256 code points (where text.h's one exception for
 * hostile text cannot apply), exactly the tokens of the rule text.h states:
 * utf8proc_map over each whole valid stretch, then cut (the reference in
 * tests/text_ref.h, which tests/test_text.c uses too).  UTF-8 decoding agrees
 * with encoding and with text_utf8_valid.  Snippets are valid UTF-8 with
 * no control bytes. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "indexer/text.h"
#include "search/query.h"
#include "search/snippet.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/text_ref.h"

/* text.h: a run of more than this many code points may be cut. */
#define TXT_REF_MAX_CPS 256

typedef struct {
	int kind;
	uint32_t cp, pos;
	size_t woff, wlen;         /* word bytes in the list's arena */
	size_t src_start, src_end;
} txt_tok;

typedef struct {
	txt_tok *t;
	size_t n, cap;
	char *bytes;
	size_t nbytes, bcap;
} txt_list;

static struct {
	text_tokenizer *tk;
	snippet_ctx *sn;
	query *fixed[3];
} txt_g;

static void txt_push(txt_list *l, int kind, uint32_t cp, const char *w, size_t wl, uint32_t pos,
                     size_t s, size_t e)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 32;
		l->t = realloc(l->t, l->cap * sizeof *l->t);
		FUZZ_CHECK(l->t != NULL);
	}
	if (l->bcap - l->nbytes < wl + 1) {
		while (l->bcap - l->nbytes < wl + 1)
			l->bcap = l->bcap ? l->bcap * 2 : 256;
		l->bytes = realloc(l->bytes, l->bcap);
		FUZZ_CHECK(l->bytes != NULL);
	}
	if (wl)
		memcpy(l->bytes + l->nbytes, w, wl);
	l->t[l->n++] = (txt_tok){ kind, cp, pos, l->nbytes, wl, s, e };
	l->nbytes += wl;
}

static void txt_list_free(txt_list *l)
{
	free(l->t);
	free(l->bytes);
	memset(l, 0, sizeof *l);
}

static bool txt_same(const txt_list *a, const txt_list *b, bool ranges)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const txt_tok *x = &a->t[i], *y = &b->t[i];
		if (x->kind != y->kind || x->cp != y->cp || x->pos != y->pos || x->wlen != y->wlen ||
		    memcmp(a->bytes + x->woff, b->bytes + y->woff, x->wlen) != 0)
			return false;
		if (ranges && (x->src_start != y->src_start || x->src_end != y->src_end))
			return false;
	}
	return true;
}

/* Runs tk over s[0..len) and checks each token against text.h. */
static void txt_run(text_tokenizer *tk, const char *s, size_t len, txt_list *l)
{
	text_token t;
	size_t prev_start = 0;
	text_tokenizer_reset(tk, s, len);
	while (text_tokenizer_next(tk, &t)) {
		if (t.kind == TEXT_TOK_CJK) {
			FUZZ_CHECK(t.word == NULL && t.word_len == 0 && text_is_cjk(t.cp));
		} else {
			FUZZ_CHECK(t.kind == TEXT_TOK_WORD && t.cp == 0 && t.word && t.word_len > 0);
			FUZZ_CHECK(text_utf8_valid(t.word, t.word_len));
		}
		if (l->n == 0)
			FUZZ_CHECK(t.pos == 0);
		else
			FUZZ_CHECK(t.pos == l->t[l->n - 1].pos + 1 || t.pos == l->t[l->n - 1].pos + 2);
		FUZZ_CHECK(t.src_start < t.src_end && t.src_end <= len && t.src_start >= prev_start);
		FUZZ_CHECK(text_utf8_valid(s + t.src_start, t.src_end - t.src_start));
		prev_start = t.src_start;
		txt_push(l, t.kind, t.cp, t.word, t.word_len, t.pos, t.src_start, t.src_end);
	}
	FUZZ_CHECK(text_tokenizer_next(tk, &t) == 0);   /* the end is sticky */
}

/* ---- the reference ---------------------------------------------------------- */

static void txt_ref_push(void *l, int kind, uint32_t cp, const char *w, size_t wl, uint32_t pos)
{
	txt_push(l, kind, cp, w, wl, pos, 0, 0);
}

/* ---- UTF-8 and snippets ----------------------------------------------------------- */

/* Decoding then encoding gives the bytes back; the validator agrees.
 * Returns the number of code points (a bad byte counts as one). */
static size_t txt_check_utf8(const char *s, size_t len)
{
	size_t i = 0, ncp = 0;
	bool all_ok = true;
	while (i < len) {
		uint32_t cp;
		size_t k = text_utf8_get(s + i, len - i, &cp);
		FUZZ_CHECK(k >= 1 && k <= 4 && k <= len - i);
		if (cp == TEXT_REF_BAD) {
			FUZZ_CHECK(k == 1);
			all_ok = false;
		} else {
			char buf[4];
			FUZZ_CHECK(cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF));
			FUZZ_CHECK(text_utf8_put(buf, cp) == k && memcmp(buf, s + i, k) == 0);
		}
		i += k;
		ncp++;
	}
	FUZZ_CHECK(text_utf8_valid(s, len) == (int)all_ok);
	return ncp;
}

static void txt_check_snippet(const query *q, const char *s, size_t len, size_t chars)
{
	snippet_opts o;
	snippet_opts_default(&o);
	o.chars = chars;
	const char *out = snippet_make(txt_g.sn, q, s, len, &o);
	FUZZ_CHECK(out != NULL);
	size_t n = strlen(out);
	FUZZ_CHECK(text_utf8_valid(out, n));
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK((unsigned char)out[i] >= 0x20 && out[i] != 0x7f);
}

static void txt_init(void)
{
	static const char *const fixed[] = { "外商投资 app", "\"covid 19\" | 5g", "中 -国 法律" };
	txt_g.tk = text_tokenizer_new();
	txt_g.sn = snippet_ctx_new();
	FUZZ_CHECK(txt_g.tk && txt_g.sn);
	for (size_t i = 0; i < 3; i++) {
		txt_g.fixed[i] = query_parse(fixed[i], strlen(fixed[i]), NULL);
		FUZZ_CHECK(txt_g.fixed[i] != NULL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!txt_g.tk)
		txt_init();
	const char *s = (const char *)data;
	size_t ncp = txt_check_utf8(s, size);

	txt_list a = { 0 }, b = { 0 }, c = { 0 };
	txt_run(txt_g.tk, s, size, &a);
	txt_run(txt_g.tk, s, size, &b);
	FUZZ_CHECK(txt_same(&a, &b, true));
	text_tokenizer *fresh = text_tokenizer_new();
	FUZZ_CHECK(fresh != NULL);
	txt_run(fresh, s, size, &c);
	text_tokenizer_free(fresh);
	FUZZ_CHECK(txt_same(&a, &c, true));
	if (ncp <= TXT_REF_MAX_CPS) {
		txt_list r = { 0 };
		FUZZ_CHECK(text_ref_tokenize(s, size, txt_ref_push, &r) == 0);
		FUZZ_CHECK(txt_same(&a, &r, false));
		txt_list_free(&r);
	}
	txt_list_free(&a);
	txt_list_free(&b);
	txt_list_free(&c);

	/* snippets: fixed queries, and one made of the text's own start so that
	 * something matches */
	for (size_t i = 0; i < 3; i++)
		txt_check_snippet(txt_g.fixed[i], s, size, 1 + (size + i * 40) % 120);
	size_t ql = size < 12 ? size : 12;
	query *q = query_parse(s, ql, NULL);
	if (q) {
		txt_check_snippet(q, s, size, 80);
		query_free(q);
	}
	return 0;
}
