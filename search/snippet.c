/* snippet.c — picks and renders the excerpt of a result (snippet.h).  It
 * re-tokenizes the body with the same tokenizer as the indexer, so a match is
 * found exactly where the index found it, with its byte range in the original
 * text. */
#include "search/snippet.h"
#include "indexer/keys.h"
#include "indexer/text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	uint64_t key;
	uint32_t pos;
	uint32_t start, end;   /* source bytes */
} stok;

typedef struct {
	uint32_t start, end;   /* source bytes of one match */
	uint32_t term;         /* which query term */
} span;

struct snippet_ctx {
	text_tokenizer *tk;
	stok *toks;
	size_t ntoks, cap;
	span *spans;
	size_t nspans, capspans;
	const query_node *terms[64];
	uint32_t nterms;
	char *out;
	size_t outcap, outlen;
};

void snippet_opts_default(snippet_opts *o)
{
	o->chars = 80;
	o->open = "【";
	o->close = "】";
}

snippet_ctx *snippet_ctx_new(void)
{
	snippet_ctx *s = calloc(1, sizeof *s);
	if (s && !(s->tk = text_tokenizer_new())) {
		free(s);
		return NULL;
	}
	return s;
}

void snippet_ctx_free(snippet_ctx *s)
{
	if (!s)
		return;
	text_tokenizer_free(s->tk);
	free(s->toks);
	free(s->spans);
	free(s->out);
	free(s);
}

static void collect_terms(snippet_ctx *s, const query_node *n)
{
	if (n->kind == QN_TERM) {
		if (s->nterms < 64)
			s->terms[s->nterms++] = n;
	} else if (n->kind == QN_AND || n->kind == QN_OR) {
		for (uint32_t i = 0; i < n->nkids; i++)
			collect_terms(s, n->kids[i]);
	}
}

static int add_span(snippet_ctx *s, uint32_t start, uint32_t end, uint32_t term)
{
	if (s->nspans == s->capspans) {
		size_t cap = s->capspans ? s->capspans * 2 : 64;
		span *p = realloc(s->spans, cap * sizeof *p);
		if (!p)
			return -1;
		s->spans = p;
		s->capspans = cap;
	}
	s->spans[s->nspans++] = (span){ start, end, term };
	return 0;
}

static int cmp_span(const void *a, const void *b)
{
	const span *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start ? 1 : (x->end > y->end) - (x->end < y->end);
}

/* Finds every occurrence of every term in the token list. */
static int find_spans(snippet_ctx *s)
{
	for (uint32_t t = 0; t < s->nterms; t++) {
		const query_node *qn = s->terms[t];
		uint64_t k0 = keys_token(qn->toks[0].kind, qn->toks[0].cp, qn->toks[0].word,
		                         qn->toks[0].word_len);
		for (size_t i = 0; i < s->ntoks; i++) {
			if (s->toks[i].key != k0)
				continue;
			size_t j = i;
			uint32_t m;
			for (m = 1; m < qn->ntoks; m++) {
				uint32_t want = s->toks[i].pos + qn->toks[m].pos;
				while (j < s->ntoks && s->toks[j].pos < want)
					j++;
				const query_token *qt = &qn->toks[m];
				if (j == s->ntoks || s->toks[j].pos != want ||
				    s->toks[j].key != keys_token(qt->kind, qt->cp, qt->word, qt->word_len))
					break;
			}
			if (m == qn->ntoks &&
			    add_span(s, s->toks[i].start, s->toks[qn->ntoks == 1 ? i : j].end, t))
				return -1;
		}
	}
	qsort(s->spans, s->nspans, sizeof *s->spans, cmp_span);
	return 0;
}

static int out_put(snippet_ctx *s, const char *p, size_t n)
{
	if (s->outlen + n + 1 > s->outcap) {
		size_t cap = (s->outlen + n + 1) * 2;
		char *o = realloc(s->out, cap);
		if (!o)
			return -1;
		s->out = o;
		s->outcap = cap;
	}
	memcpy(s->out + s->outlen, p, n);
	s->outlen += n;
	s->out[s->outlen] = 0;
	return 0;
}

static int is_space_or_ctl(uint32_t cp)
{
	return cp < 0x20 || cp == ' ' || cp == 0x7F || cp == 0x3000 || cp == 0xA0 ||
	       cp == 0x2028 || cp == 0x2029 || (cp >= 0x2000 && cp <= 0x200A);
}

/* Byte offset `chars` characters after (or before, back != 0) at. */
static size_t walk_chars(const char *t, size_t len, size_t at, size_t chars, int back)
{
	while (chars > 0) {
		if (back) {
			if (at == 0)
				break;
			at--;
			while (at > 0 && ((unsigned char)t[at] & 0xC0) == 0x80)
				at--;
		} else {
			if (at >= len)
				break;
			uint32_t cp;
			at += text_utf8_get(t + at, len - at, &cp);
		}
		chars--;
	}
	return at;
}

/* Appends text[a..b) with whitespace and control runs shown as one space, or
 * none between two CJK characters, and invalid bytes dropped. */
static int render(snippet_ctx *s, const char *t, size_t a, size_t b, uint32_t *prev)
{
	size_t i = a;
	int pending = 0;
	while (i < b) {
		uint32_t cp;
		size_t n = text_utf8_get(t + i, b - i, &cp);
		if (cp == UINT32_MAX) {
			i += n;
			continue;
		}
		if (is_space_or_ctl(cp)) {
			pending = 1;
			i += n;
			continue;
		}
		if (pending && !(text_is_cjk(*prev) && text_is_cjk(cp)) && *prev != 0)
			if (out_put(s, " ", 1))
				return -1;
		pending = 0;
		if (out_put(s, t + i, n))
			return -1;
		*prev = cp;
		i += n;
	}
	return 0;
}

const char *snippet_make(snippet_ctx *s, const query *q, const char *text, size_t len,
                         const snippet_opts *o)
{
	s->nterms = 0;
	s->ntoks = 0;
	s->nspans = 0;
	s->outlen = 0;
	if (out_put(s, "", 0))
		return NULL;
	collect_terms(s, q->root);
	text_token tok;
	text_tokenizer_reset(s->tk, text, len);
	while (s->nterms && text_tokenizer_next(s->tk, &tok)) {
		if (s->ntoks == s->cap) {
			size_t cap = s->cap ? s->cap * 2 : 1024;
			stok *p = realloc(s->toks, cap * sizeof *p);
			if (!p)
				return NULL;
			s->toks = p;
			s->cap = cap;
		}
		s->toks[s->ntoks++] = (stok){ keys_token(tok.kind, tok.cp, tok.word, tok.word_len),
		                              tok.pos, (uint32_t)tok.src_start, (uint32_t)tok.src_end };
	}
	if (find_spans(s))
		return NULL;

	/* the window: starts a little before the span that begins the richest
	 * cluster (most distinct terms, then most matches) within `chars` */
	size_t best = 0, best_score = 0;
	for (size_t i = 0; i < s->nspans; i++) {
		size_t lim = walk_chars(text, len, s->spans[i].start, o->chars * 3 / 4, 0);
		uint64_t seen = 0;
		size_t count = 0;
		for (size_t j = i; j < s->nspans && s->spans[j].end <= lim; j++) {
			seen |= 1ull << (s->spans[j].term & 63);
			count++;
		}
		size_t score = (size_t)__builtin_popcountll(seen) * 1000 + count;
		if (score > best_score) {
			best_score = score;
			best = i;
		}
	}
	size_t from = 0;
	if (s->nspans)
		from = walk_chars(text, len, s->spans[best].start, o->chars / 6, 1);
	size_t to = walk_chars(text, len, from, o->chars, 0);
	/* no cut inside a match */
	for (size_t j = 0; j < s->nspans; j++)
		if (s->spans[j].start < to && s->spans[j].end > to)
			to = s->spans[j].end;
	uint32_t prev = 0;
	if (from > 0 && out_put(s, "…", strlen("…")))
		return NULL;
	size_t at = from;
	for (size_t j = 0; j < s->nspans && at < to; j++) {
		const span *sp = &s->spans[j];
		if (sp->start < at || sp->start >= to)
			continue;
		if (render(s, text, at, sp->start, &prev) || out_put(s, o->open, strlen(o->open)) ||
		    render(s, text, sp->start, sp->end, &prev) || out_put(s, o->close, strlen(o->close)))
			return NULL;
		at = sp->end;
	}
	if (render(s, text, at, to, &prev))
		return NULL;
	if (to < len && out_put(s, "…", strlen("…")))
		return NULL;
	return s->out;
}
