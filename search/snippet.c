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
	const query_node *terms[SNIPPET_MAX_TERMS];
	uint32_t nterms;
	uint32_t kfirst[SNIPPET_MAX_TERMS];
	uint64_t *keys;
	size_t capkeys;
	size_t last_start[SNIPPET_MAX_TERMS];  /* source byte where term t last began */
	uint64_t seen;                         /* terms found so far */
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
	free(s->keys);
	free(s->out);
	free(s);
}

static void collect_terms(snippet_ctx *s, const query_node *n)
{
	if (n->kind == QN_TERM) {
		if (s->nterms < SNIPPET_MAX_TERMS)
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

/* The query term keys, flattened: term t's tokens are keys[kfirst[t] ..
 * kfirst[t] + terms[t]->ntoks). */
static int collect_keys(snippet_ctx *s)
{
	size_t need = 0;
	for (uint32_t t = 0; t < s->nterms; t++)
		need += s->terms[t]->ntoks;
	if (need > s->capkeys) {
		uint64_t *k = realloc(s->keys, need * sizeof *k);
		if (!k)
			return -1;
		s->keys = k;
		s->capkeys = need;
	}
	size_t at = 0;
	for (uint32_t t = 0; t < s->nterms; t++) {
		const query_node *qn = s->terms[t];
		s->kfirst[t] = (uint32_t)at;
		for (uint32_t m = 0; m < qn->ntoks; m++) {
			const query_token *qt = &qn->toks[m];
			s->keys[at++] = keys_token(qt->kind, qt->cp, qt->word, qt->word_len);
		}
	}
	return 0;
}

/* Adds the occurrences of terms that end at token j, the newest one: the
 * term's last token is j, and its earlier tokens sit at the same relative
 * positions behind it.  Returns the number of spans added, or -1. */
static int spans_ending_at(snippet_ctx *s, size_t j)
{
	int added = 0;
	for (uint32_t t = 0; t < s->nterms; t++) {
		const query_node *qn = s->terms[t];
		const uint64_t *k = s->keys + s->kfirst[t];
		uint32_t last = qn->ntoks - 1;
		if (s->toks[j].key != k[last])
			continue;
		size_t i = j;
		uint32_t m;
		for (m = last; m > 0; m--) {
			uint32_t back = qn->toks[last].pos - qn->toks[m - 1].pos;
			if (s->toks[j].pos < back)
				break;
			uint32_t want = s->toks[j].pos - back;
			while (i > 0 && s->toks[i].pos > want)
				i--;
			if (s->toks[i].pos != want || s->toks[i].key != k[m - 1])
				break;
		}
		if (m > 0)
			continue;
		if (add_span(s, s->toks[i].start, s->toks[j].end, t))
			return -1;
		s->last_start[t] = s->toks[i].start;
		s->seen |= 1ull << (t & 63);
		added++;
	}
	return added;
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
	s->seen = 0;
	collect_terms(s, q->root);
	if (collect_keys(s))
		return NULL;
	/* Tokenizing is most of a snippet's cost, so it stops early: once a
	 * window (3/4 of the snippet) holds an occurrence of every term, the
	 * text up to that window's end is enough to choose within.  Otherwise
	 * the choice is made within SNIPPET_SCAN_BYTES after the first match,
	 * so a long document whose terms never meet costs a bounded amount. */
	uint64_t all = s->nterms >= 64 ? ~0ull : (1ull << s->nterms) - 1;
	size_t stop_at = SIZE_MAX;
	text_token tok;
	text_tokenizer_reset(s->tk, text, len);
	while (s->nterms && text_tokenizer_next(s->tk, &tok)) {
		if (tok.src_start >= stop_at)
			break;
		if (s->nspans && tok.src_start - s->spans[0].start > SNIPPET_SCAN_BYTES)
			break;
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
		int added = spans_ending_at(s, s->ntoks - 1);
		if (added < 0)
			return NULL;
		if (added && stop_at == SIZE_MAX && (s->seen & all) == all) {
			size_t first = tok.src_start;
			for (uint32_t t = 0; t < s->nterms; t++)
				if (s->last_start[t] < first)
					first = s->last_start[t];
			size_t lim = walk_chars(text, len, first, o->chars * 3 / 4, 0);
			if (tok.src_end <= lim)
				stop_at = lim;
		}
	}
	/* spans is NULL until the first match, and qsort's pointer must not be */
	if (s->nspans > 1)
		qsort(s->spans, s->nspans, sizeof *s->spans, cmp_span);

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
