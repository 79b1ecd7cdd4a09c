/* engine.c — evaluates a query tree document-at-a-time over postings
 * cursors, exactly, with BM25F scoring and a bounded top-k heap.
 *
 * A query term (QN_TERM) is a list of tokens at fixed relative positions.
 * It becomes one or more "components", each a dictionary key read through a
 * postings cursor with an offset relative to the term's start:
 *   - one token: its own key (a CJK character's postings have no positions,
 *     and none are needed);
 *   - two adjacent tokens: their pair key (a bigram, or a word+CJK pair);
 *   - anything longer: pair keys at offsets 0, 2, 4, ... and the last pair,
 *     which together cover every token, plus the keys of single words that
 *     stand between separators ("covid-19").  A document matches where all
 *     components sit at their offsets from one start position; the number of
 *     such starts is the term's frequency in the document.
 * Every component must occur in a candidate document (they are intersected
 * rarest first), and positions decide: no false positives, no misses.
 * The title field has its own keys; the same components over title keys give
 * the title frequency used by BM25F and by `title:` restrictions.
 */
#include "search/engine.h"
#include "indexer/format.h"
#include "indexer/keys.h"
#include "indexer/limits.h"
#include "search/postings.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COMPS (SOUSUO_MAX_TERM_TOKENS + 1)

typedef enum { E_TERM, E_AND, E_OR, E_NOT, E_FILTER, E_EMPTY } ekind;

/* The components of one term in one field. */
typedef struct {
	uint32_t n;                 /* 0: the term cannot occur in this field */
	int positional;             /* positions must be checked */
	pcur *cur[MAX_COMPS];
	uint32_t off[MAX_COMPS];    /* offset of each component from the start */
	uint8_t filter[MAX_COMPS];  /* 1: a doc-level n-gram of the run, used to
	                               narrow candidates, not in position checks */
	uint64_t covers[MAX_COMPS]; /* positional: the term's tokens (bit = token
	                               index) the component stands for */
	uint64_t all;               /* every token's bit */
	uint32_t df_min;            /* smallest df: an upper bound of the term's df */
} comps;

typedef struct enode enode;
struct enode {
	ekind kind;
	uint32_t doc;               /* current document, PCUR_END when done */
	/* E_TERM */
	comps body, title;
	int title_only;             /* title: restriction */
	uint32_t tf_body, tf_title; /* at doc */
	uint32_t other_for;         /* doc whose other-field tf is filled in
	                               (term_other: scored, not matched), or
	                               PCUR_END while it is still pending */
	double idf, idf_title;       /* from the body's and the title's df */
	const query_node *qn;
	/* E_AND / E_OR / E_NOT */
	enode **kids;
	uint32_t nkids;
	enode **neg;                /* E_AND: kids under NOT */
	uint32_t nneg;
	/* E_FILTER */
	const query_node *filter;
	const uint8_t *catmask;     /* QN_CATEGORY: 1 per matching category id */
	int started;                /* doc is meaningful */
};

/* A bump allocator reset for each query; chunks are kept. */
typedef struct chunk {
	struct chunk *next;
	size_t used, cap;
	max_align_t data[];
} chunk;

struct engine_ctx {
	chunk *chunks;
	pcur **pool;               /* cursors with their reusable position buffers */
	size_t npool, used_pool;
	engine_hit *heap;
	size_t heap_cap;
	uint32_t *posbuf;          /* candidate start positions (count_aligned) */
	uint32_t posbuf_cap;
	uint64_t *bits[2];         /* ALIGN_SPAN zeroed bits each (count_aligned) */
	/* pruning (engine_opts.exact_total = 0): the node whose candidates are
	 * checked against theta, the score a document must beat to enter the
	 * top k (0 until the heap is full), and whether any was skipped */
	const enode *prune_node;
	double theta;
	int pruned;
	uint64_t cover;            /* title tokens the scored terms matched */
	const sousuo_index *ix;
	const engine_opts *o;
	int corrupt;
	int nomem;
	/* BM25 length norms per document, for the index and b values they were
	 * computed for: one multiply-free lookup per scored document */
	const sousuo_index *norm_ix;
	double norm_b, norm_tb;
	double *norm_body, *norm_title;
	size_t norm_cap;
};

void engine_opts_default(engine_opts *o)
{
	o->k1 = 1.2;
	o->b = 0.75;
	o->title_weight = 4.0;
	o->title_b = 1.0;
	o->name_boost = 0.5;
	o->limit = 10;
	o->offset = 0;
	o->exact_total = 1;
	o->generic = 0;
}

engine_ctx *engine_ctx_new(void)
{
	return calloc(1, sizeof(engine_ctx));
}

void engine_ctx_free(engine_ctx *c)
{
	if (!c)
		return;
	for (chunk *k = c->chunks, *n; k; k = n) {
		n = k->next;
		free(k);
	}
	for (size_t i = 0; i < c->npool; i++) {
		pcur_free(c->pool[i]);
		free(c->pool[i]);
	}
	free(c->pool);
	free(c->heap);
	free(c->posbuf);
	free(c->bits[0]);
	free(c->bits[1]);
	free(c->norm_body);
	free(c->norm_title);
	free(c);
}

static void arena_reset(engine_ctx *c)
{
	for (chunk *k = c->chunks; k; k = k->next)
		k->used = 0;
	c->used_pool = 0;
	c->corrupt = 0;
	c->nomem = 0;
}

static void *arena_alloc(engine_ctx *c, size_t n)
{
	n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
	for (chunk *k = c->chunks; k; k = k->next)
		if (k->cap - k->used >= n) {
			void *p = (char *)k->data + k->used;
			k->used += n;
			memset(p, 0, n);
			return p;
		}
	size_t cap = n > 65536 ? n : 65536;
	chunk *k = malloc(sizeof *k + cap);
	if (!k) {
		c->nomem = 1;
		return NULL;
	}
	k->next = c->chunks;
	k->cap = cap;
	k->used = n;
	c->chunks = k;
	memset(k->data, 0, n);
	return k->data;
}

static pcur *cursor_get(engine_ctx *c)
{
	if (c->used_pool == c->npool) {
		pcur **p = realloc(c->pool, (c->npool + 16) * sizeof *p);
		if (!p)
			return NULL;
		c->pool = p;
		for (size_t i = 0; i < 16; i++) {
			p[c->npool + i] = calloc(1, sizeof(pcur));
			if (!p[c->npool + i]) {
				c->npool += i;
				return NULL;
			}
		}
		c->npool += 16;
	}
	return c->pool[c->used_pool++];
}

/* ---- building components ---- */

static uint64_t tok_key(const query_token *t)
{
	return keys_token(t->kind, t->cp, t->word, t->word_len);
}

/* Adds the component key at offset; returns 0, or 1 when the key does not
 * exist (the term cannot match in this field), or -1 on error. */
static int comp_add(engine_ctx *c, comps *cs, uint64_t key, uint32_t off)
{
	index_term t;
	if (!index_lookup(c->ix, key, &t))
		return 1;
	pcur *p = cursor_get(c);
	if (!p) {
		c->nomem = 1;
		return -1;
	}
	if (pcur_open(p, &t)) {
		c->corrupt = 1;
		return -1;
	}
	cs->cur[cs->n] = p;
	cs->off[cs->n] = off;
	if (cs->n == 0 || t.df < cs->df_min)
		cs->df_min = t.df;
	cs->n++;
	return 0;
}

/* Builds the components of term qn in one field (title != 0: title keys). */
static int build_comps(engine_ctx *c, const query_node *qn, int title, comps *cs)
{
	const query_token *t = qn->toks;
	uint32_t n = qn->ntoks;
	int rc = 0;
	memset(cs, 0, sizeof *cs);
	int run = n >= 3 && n <= 4 && !title;   /* a run of 3-4 CJK characters? */
	for (uint32_t i = 0; i < n && run; i++)
		run = t[i].kind == TEXT_TOK_CJK && (i == 0 || t[i].pos == t[i - 1].pos + 1);
	if (run) {
		/* frequent runs have their own doc-level postings */
		uint32_t cps[4];
		for (uint32_t i = 0; i < n; i++)
			cps[i] = t[i].cp;
		int r = comp_add(c, cs, keys_ngram(cps, n), 0);
		if (r <= 0)
			return r;   /* found (one doc-level component), or an error */
	}
	if (n == 1) {
		uint64_t k = tok_key(&t[0]);
		rc = comp_add(c, cs, title ? keys_title(k) : k, 0);
	} else if (n == 2 && t[1].pos == t[0].pos + 1) {
		uint64_t k = keys_pair(tok_key(&t[0]), tok_key(&t[1]));
		rc = comp_add(c, cs, title ? keys_title(k) : k, 0);
	} else {
		cs->positional = 1;
		uint32_t s = 0;
		while (s < n && rc == 0) {
			uint32_t e = s;   /* segment [s, e] of adjacent tokens */
			while (e + 1 < n && t[e + 1].pos == t[e].pos + 1)
				e++;
			if (e == s) {
				uint64_t k = tok_key(&t[s]);
				rc = comp_add(c, cs, title ? keys_title(k) : k, t[s].pos);
				if (rc == 0)
					cs->covers[cs->n - 1] = 1ull << s;
			} else {
				/* every adjacent pair: per document, the position check
				 * picks the cheapest pairs that cover the run */
				for (uint32_t i = s; i < e && rc == 0; i++) {
					uint64_t k = keys_pair(tok_key(&t[i]), tok_key(&t[i + 1]));
					rc = comp_add(c, cs, title ? keys_title(k) : k, t[i].pos);
					if (rc == 0)
						cs->covers[cs->n - 1] = 3ull << i;
				}
				/* frequent 4-character runs inside a longer run: their
				 * doc-level lists rule candidates out before any position
				 * is read */
				for (uint32_t i = s; i + 3 <= e && rc == 0 && !title && e - s >= 4 &&
				                     cs->n < MAX_COMPS; i++) {
					uint32_t cps[4], k;
					for (k = 0; k < 4 && t[i + k].kind == TEXT_TOK_CJK; k++)
						cps[k] = t[i + k].cp;
					if (k < 4)
						continue;
					int r = comp_add(c, cs, keys_ngram(cps, 4), 0);
					if (r == 0)
						cs->filter[cs->n - 1] = 1;
					else if (r < 0)
						rc = r;
				}
			}
			s = e + 1;
		}
	}
	cs->all = n >= 64 ? ~0ull : (1ull << n) - 1;
	if (rc)
		cs->n = 0;
	/* rarest first: intersection leads with the shortest list */
	for (uint32_t i = 1; i < cs->n; i++)
		for (uint32_t j = i; j > 0 && cs->cur[j]->df < cs->cur[j - 1]->df; j--) {
			pcur *tp = cs->cur[j];
			uint32_t to = cs->off[j];
			uint8_t tf = cs->filter[j];
			uint64_t tc = cs->covers[j];
			cs->cur[j] = cs->cur[j - 1];
			cs->off[j] = cs->off[j - 1];
			cs->filter[j] = cs->filter[j - 1];
			cs->covers[j] = cs->covers[j - 1];
			cs->cur[j - 1] = tp;
			cs->off[j - 1] = to;
			cs->filter[j - 1] = tf;
			cs->covers[j - 1] = tc;
		}
	return rc < 0 ? -1 : 0;
}

/* ---- matching one term ---- */

/* Intersects the sorted starts cand[0..n) with {p - off : p in pos[0..m)}
 * in place, without branches on the data; returns the new count. */
static uint32_t intersect_shifted(uint32_t *cand, uint32_t n, const uint32_t *pos, uint32_t m,
                                  uint32_t off)
{
	uint32_t i = 0, j = 0, k = 0;
	while (i < n && j < m) {
		uint64_t a = (uint64_t)cand[i] + off, b = pos[j];
		cand[k] = cand[i];
		k += a == b;
		i += a <= b;
		j += b <= a;
	}
	return k;
}

/* count_aligned for a document with positions past ALIGN_SPAN: the lead's
 * starts filtered by merging with each other component's positions. */
static uint32_t count_aligned_merge(engine_ctx *c, comps *cs, uint32_t lead,
                                    const uint32_t *lp, uint32_t np)
{
	if (np > c->posbuf_cap) {
		uint32_t *b = realloc(c->posbuf, (np + 64) * sizeof *b);
		if (!b) {
			c->nomem = c->corrupt = 1;
			return 0;
		}
		c->posbuf = b;
		c->posbuf_cap = np + 64;
	}
	uint32_t *cand = c->posbuf, n = 0, off = cs->off[lead];
	for (uint32_t k = 0; k < np; k++)
		if (lp[k] >= off)
			cand[n++] = lp[k] - off;
	for (uint32_t i = 0; i < cs->n && n; i++) {
		if (i == lead || cs->filter[i])
			continue;
		uint32_t m;
		const uint32_t *p = pcur_positions(cs->cur[i], &m);
		if (!p) {
			c->corrupt = 1;
			return 0;
		}
		n = intersect_shifted(cand, n, p, m, cs->off[i]);
	}
	return n;
}

/* Positions below this are aligned with bitmaps (kept zeroed between uses);
 * a document with a larger position falls back to merging sorted lists. */
#define ALIGN_SPAN (1u << 20)

static inline int bit_get(const uint64_t *m, uint32_t i) { return (int)(m[i >> 6] >> (i & 63)) & 1; }
static inline void bit_put(uint64_t *m, uint32_t i, uint64_t v) { m[i >> 6] |= v << (i & 63); }
static inline void bit_clear(uint64_t *m, uint32_t i) { m[i >> 6] = 0; (void)i; }

/* Counts start positions p where every component c has p + off[c] among its
 * positions in the current document (all cursors on the same document).
 * The starts implied by the component with the fewest positions are set in
 * a bitmap; every other component, taken by increasing tf, keeps the starts
 * it agrees with (into a second bitmap), with an early exit when none is
 * left.  A document's bitmap spans its length in bits (kilobytes, in L1),
 * and the loops have no data-dependent branches. */
static uint32_t count_aligned(engine_ctx *c, comps *cs)
{
	if (!cs->positional)
		return pcur_tf(cs->cur[0]);
	uint32_t order[MAX_COMPS], tfs[MAX_COMPS], npos = 0;
	for (uint32_t i = 0; i < cs->n; i++) {
		if (cs->filter[i])
			continue;
		uint32_t tf = pcur_tf(cs->cur[i]), j = npos++;
		while (j > 0 && tfs[j - 1] > tf) {
			tfs[j] = tfs[j - 1];
			order[j] = order[j - 1];
			j--;
		}
		tfs[j] = tf;
		order[j] = i;
	}
	/* the cheapest components that still cover every token: any cover
	 * decides exactly, and this document's tfs say which is cheap */
	uint64_t got = 0;
	uint32_t keep = 0;
	for (uint32_t r = 0; r < npos && got != cs->all; r++)
		if (cs->covers[order[r]] & ~got) {
			got |= cs->covers[order[r]];
			order[keep++] = order[r];
		}
	npos = keep;
	uint32_t lead = order[0];
	uint32_t np;
	const uint32_t *lp = pcur_positions(cs->cur[lead], &np);
	if (!lp) {
		c->corrupt = 1;
		return 0;
	}
	if (lp[np - 1] >= ALIGN_SPAN)
		return count_aligned_merge(c, cs, lead, lp, np);
	if (!c->bits[0]) {
		c->bits[0] = calloc(ALIGN_SPAN / 64, sizeof(uint64_t));
		c->bits[1] = calloc(ALIGN_SPAN / 64, sizeof(uint64_t));
		if (!c->bits[0] || !c->bits[1]) {
			c->nomem = c->corrupt = 1;
			return 0;
		}
	}
	uint64_t *cur = c->bits[0], *next = c->bits[1];
	uint32_t off = cs->off[lead], alive = 0;
	for (uint32_t k = 0; k < np; k++)
		if (lp[k] >= off) {
			bit_put(cur, lp[k] - off, 1);
			alive++;
		}
	for (uint32_t r = 1; r < npos; r++) {
		uint32_t i = order[r], m;
		const uint32_t *p = pcur_positions(cs->cur[i], &m);
		if (!p) {
			c->corrupt = 1;
			alive = 0;
			break;
		}
		uint32_t o = cs->off[i];
		alive = 0;
		for (uint32_t k = 0; k < m; k++) {
			uint32_t st = p[k] - o;
			if (p[k] >= o && st < ALIGN_SPAN) {
				uint64_t hit = (uint64_t)bit_get(cur, st);
				bit_put(next, st, hit);
				alive += (uint32_t)hit;
			}
		}
		/* the starts that survived are in next; cur is cleared for reuse */
		for (uint32_t k = 0; k < np; k++)
			if (lp[k] >= off)
				bit_clear(cur, lp[k] - off);
		uint64_t *t = cur;
		cur = next;
		next = t;
		if (!alive)
			break;   /* no start survives: the rest cannot revive one */
	}
	for (uint32_t k = 0; k < np; k++)
		if (lp[k] >= off)
			bit_clear(cur, lp[k] - off);
	return c->corrupt ? 0 : alive;
}

/* First document >= target that holds every component (document level: no
 * positions are read), or PCUR_END. */
static uint32_t comps_candidate(comps *cs, uint32_t target)
{
	if (cs->n == 0)
		return PCUR_END;
	for (;;) {
		uint32_t d = pcur_seek(cs->cur[0], target);
		if (d == PCUR_END)
			return PCUR_END;
		uint32_t i;
		for (i = 1; i < cs->n; i++) {
			uint32_t e = pcur_seek(cs->cur[i], d);
			if (e == PCUR_END)
				return PCUR_END;
			if (e != d) {
				target = e;
				break;
			}
		}
		if (i == cs->n)
			return d;
	}
}

/* 1 if every component holds doc (cursors only move forward). */
static int comps_at(comps *cs, uint32_t doc)
{
	if (cs->n == 0)
		return 0;
	for (uint32_t i = 0; i < cs->n; i++)
		if (pcur_seek(cs->cur[i], doc) != doc)
			return 0;
	return 1;
}

/* The smallest component tf: the term cannot occur more often than that. */
static uint32_t comps_tf_bound(const comps *cs)
{
	uint32_t m = UINT32_MAX;
	for (uint32_t i = 0; i < cs->n; i++)
		if (pcur_tf(cs->cur[i]) < m)
			m = pcur_tf(cs->cur[i]);
	return m;
}

/* ---- filters ---- */

static int filter_match(engine_ctx *c, const enode *e, uint32_t doc)
{
	const query_node *f = e->filter;
	const fmt_doc *d = index_doc(c->ix, doc);
	if (f->kind == QN_CATEGORY)
		return e->catmask[d->category];
	uint32_t v = d->date;
	if (v == 0)
		return 0;
	switch (f->op) {
	case QOP_EQ: return v >= f->date_lo && v <= f->date_hi;
	case QOP_LT: return v < f->date_lo;
	case QOP_LE: return v <= f->date_hi;
	case QOP_GT: return v > f->date_hi;
	case QOP_GE: return v >= f->date_lo;
	}
	return 0;
}

/* ---- the node iterators ---- */

static uint32_t node_seek(engine_ctx *c, enode *e, uint32_t target);
static double node_score(engine_ctx *c, enode *e, uint32_t doc);

/* The field a term must match in, and the other one (scored only). */
static comps *term_main(enode *e) { return e->title_only ? &e->title : &e->body; }
static comps *term_other(enode *e) { return e->title_only ? &e->body : &e->title; }

/* First document >= target where the term's matching field holds all its
 * components: a candidate, not yet checked by position. */
static uint32_t term_candidate(enode *e, uint32_t target)
{
	return comps_candidate(term_main(e), target);
}

/* Checks the term at its candidate doc by position and records its
 * frequencies there; returns 1 when it matches. */
static int term_verify(engine_ctx *c, enode *e, uint32_t doc)
{
	comps *m = term_main(e), *o = term_other(e);
	(void)o;
	uint32_t tf = m->positional ? count_aligned(c, m) : pcur_tf(m->cur[0]);
	if (!tf)
		return 0;
	if (e->title_only)
		e->tf_title = tf;
	else
		e->tf_body = tf;
	e->other_for = PCUR_END;   /* filled in only if doc gets scored */
	return 1;
}

/* Fills in the tf of the field the term is scored in but not matched on,
 * for its current doc: most matches are excluded (NOT, AND) or pass without
 * a title match, so this runs only for documents being scored. */
static void term_fill_other(engine_ctx *c, enode *e, uint32_t doc)
{
	if (e->other_for == doc)
		return;
	comps *o = term_other(e);
	uint32_t tf = 0;
	/* the other field's cursors usually stand past doc already */
	if (o->n && o->cur[0]->doc <= doc && comps_at(o, doc))
		tf = o->positional ? count_aligned(c, o) : pcur_tf(o->cur[0]);
	if (e->title_only)
		e->tf_body = tf;
	else
		e->tf_title = tf;
	e->other_for = doc;
}

static double term_score(engine_ctx *c, const enode *e, uint32_t doc);

/* An upper bound of the term's score at its candidate doc, from component
 * frequencies alone (no positions decoded). */
static double term_bound(engine_ctx *c, enode *e, uint32_t doc)
{
	enode b = *e;
	uint32_t tm = comps_tf_bound(term_main(e));
	uint32_t to = comps_at(term_other(e), doc) ? comps_tf_bound(term_other(e)) : 0;
	b.tf_body = e->title_only ? to : tm;
	b.tf_title = e->title_only ? tm : to;
	return term_score(c, &b, doc) * (1 + c->o->name_boost);
}

static uint32_t term_seek(engine_ctx *c, enode *e, uint32_t target)
{
	if (e->body.n == 1 && !e->body.positional && !e->title_only) {
		/* one cursor, no positions: every candidate matches */
		pcur *p = e->body.cur[0];
		uint32_t d = pcur_seek(p, target);
		if (d == PCUR_END)
			return e->doc = PCUR_END;
		e->tf_body = pcur_tf(p);
		e->other_for = PCUR_END;
		return e->doc = d;
	}
	for (;;) {
		uint32_t d = term_candidate(e, target);
		if (d == PCUR_END || c->corrupt)
			return e->doc = PCUR_END;
		if (term_verify(c, e, d))
			return e->doc = d;
		if (c->corrupt)
			return e->doc = PCUR_END;
		target = d + 1;
	}
}

/* AND: kids are first brought to a common candidate, terms at document
 * level only; then, when pruning, the candidate's score bound is checked;
 * only then are terms verified by position and NOT kids consulted. */
static uint32_t and_seek(engine_ctx *c, enode *e, uint32_t target)
{
	uint32_t ndocs = index_ndocs(c->ix);
	for (;;) {
		if (target >= ndocs)
			return e->doc = PCUR_END;
		uint32_t i;
		for (i = 0; i < e->nkids; i++) {
			enode *k = e->kids[i];
			uint32_t d = k->kind == E_TERM ? term_candidate(k, target) : node_seek(c, k, target);
			if (d == PCUR_END || c->corrupt)
				return e->doc = PCUR_END;
			if (d != target) {
				target = d;
				break;
			}
		}
		if (i < e->nkids)
			continue;
		if (c->prune_node == e && c->theta > 0) {
			double ub = 0;
			for (i = 0; i < e->nkids; i++)
				ub += e->kids[i]->kind == E_TERM
				          ? term_bound(c, e->kids[i], target)
				          : node_score(c, e->kids[i], target) * (1 + c->o->name_boost);
			if (ub < c->theta) {
				c->pruned = 1;
				target++;
				continue;
			}
		}
		for (i = 0; i < e->nkids; i++) {
			enode *k = e->kids[i];
			if (k->kind != E_TERM)
				continue;
			if (!term_verify(c, k, target))
				break;
			k->doc = target;
		}
		if (c->corrupt)
			return e->doc = PCUR_END;
		if (i < e->nkids) {
			target++;
			continue;
		}
		for (i = 0; i < e->nneg; i++)
			if (node_seek(c, e->neg[i], target) == target)
				break;
		if (i == e->nneg)
			return e->doc = target;
		target++;
	}
}

static uint32_t or_seek(engine_ctx *c, enode *e, uint32_t target)
{
	uint32_t best = PCUR_END;
	for (uint32_t i = 0; i < e->nkids; i++) {
		uint32_t d = node_seek(c, e->kids[i], target);
		if (d < best)
			best = d;
	}
	return e->doc = best;
}

static uint32_t not_seek(engine_ctx *c, enode *e, uint32_t target)
{
	uint32_t ndocs = index_ndocs(c->ix);
	while (target < ndocs && node_seek(c, e->kids[0], target) == target)
		target++;
	return e->doc = target < ndocs ? target : PCUR_END;
}

static uint32_t node_seek(engine_ctx *c, enode *e, uint32_t target)
{
	if (e->started && (e->doc == PCUR_END || e->doc >= target))
		return e->doc;
	e->started = 1;
	switch (e->kind) {
	case E_TERM: return term_seek(c, e, target);
	case E_AND: return and_seek(c, e, target);
	case E_OR: return or_seek(c, e, target);
	case E_NOT: return not_seek(c, e, target);
	case E_FILTER: {
		uint32_t n = index_ndocs(c->ix);
		while (target < n && !filter_match(c, e, target))
			target++;
		return e->doc = target < n ? target : PCUR_END;
	}
	case E_EMPTY: return e->doc = PCUR_END;
	}
	return PCUR_END;
}

/* ---- scoring ---- */

static double term_score(engine_ctx *c, const enode *e, uint32_t doc)
{
	const engine_opts *o = c->o;
	double s = 0;
	if (e->tf_body) {
		double tb = e->tf_body * c->norm_body[doc];
		s = e->idf * tb * (o->k1 + 1) / (tb + o->k1);
	}
	if (e->tf_title) {   /* most documents: no title match, no division */
		double tt = e->tf_title * c->norm_title[doc];
		s += o->title_weight * e->idf_title * tt * (o->k1 + 1) / (tt + o->k1);
	}
	return s;
}

/* Sum of the scores of the terms of e that match doc (e is on doc). */
static double node_score(engine_ctx *c, enode *e, uint32_t doc)
{
	double s = 0;
	switch (e->kind) {
	case E_TERM:
		term_fill_other(c, e, doc);
		c->cover += (uint64_t)e->tf_title * e->qn->ntoks;
		return term_score(c, e, doc);
	case E_AND:
	case E_OR:
		for (uint32_t i = 0; i < e->nkids; i++)
			if (e->kids[i]->doc == doc)
				s += node_score(c, e->kids[i], doc);
		return s;
	default:
		return 0;
	}
}

/* The score of doc for the whole query: the terms' sum, boosted when the
 * terms cover the document's short name exactly. */
static double doc_score(engine_ctx *c, enode *root, uint32_t doc)
{
	c->cover = 0;
	double s = node_score(c, root, doc);
	uint32_t tt = index_doc(c->ix, doc)->title_tokens;
	if (tt && c->cover == tt)
		s *= 1 + c->o->name_boost;
	return s;
}

/* ---- compiling the query tree ---- */

static enode *compile(engine_ctx *c, const query_node *qn, int depth);

static enode *new_node(engine_ctx *c, ekind k)
{
	enode *e = arena_alloc(c, sizeof *e);
	if (e)
		e->kind = k;
	return e;
}

static enode *compile_term(engine_ctx *c, const query_node *qn)
{
	enode *e = new_node(c, E_TERM);
	if (!e)
		return NULL;
	e->qn = qn;
	e->title_only = qn->field == QF_TITLE;
	if (build_comps(c, qn, 0, &e->body) || build_comps(c, qn, 1, &e->title))
		return NULL;
	if ((e->title_only ? e->title.n : e->body.n) == 0) {
		e->kind = E_EMPTY;
		e->doc = PCUR_END;
		return e;
	}
	/* idf from the rarest component: known before matching, and never
	 * lower than the term's true idf */
	double n = index_ndocs(c->ix);
	double df = e->title_only ? e->title.df_min : e->body.df_min;
	e->idf = log(1 + (n - df + 0.5) / (df + 0.5));
	df = e->title.n ? e->title.df_min : n;
	e->idf_title = log(1 + (n - df + 0.5) / (df + 0.5));
	return e;
}

static void sort_by_cost(enode **v, uint32_t n)
{
	/* cheap estimate: a term's rarest df; others go last */
	for (uint32_t i = 1; i < n; i++)
		for (uint32_t j = i; j > 0; j--) {
			uint32_t a = v[j]->kind == E_TERM ? v[j]->body.df_min : UINT32_MAX;
			uint32_t b = v[j - 1]->kind == E_TERM ? v[j - 1]->body.df_min : UINT32_MAX;
			if (a >= b)
				break;
			enode *t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
}

static enode *compile(engine_ctx *c, const query_node *qn, int depth)
{
	if (depth > SOUSUO_MAX_QUERY_DEPTH * 2 + 4)
		return NULL;
	switch (qn->kind) {
	case QN_TERM:
		return compile_term(c, qn);
	case QN_CATEGORY:
	case QN_DATE: {
		enode *e = new_node(c, E_FILTER);
		if (e)
			e->filter = qn;
		return e;
	}
	case QN_NOT: {
		enode *e = new_node(c, E_NOT);
		if (!e)
			return NULL;
		e->kids = arena_alloc(c, sizeof *e->kids);
		if (!e->kids || !(e->kids[0] = compile(c, qn->kids[0], depth + 1)))
			return NULL;
		e->nkids = 1;
		return e;
	}
	case QN_AND:
	case QN_OR: {
		enode *e = new_node(c, qn->kind == QN_AND ? E_AND : E_OR);
		if (!e)
			return NULL;
		e->kids = arena_alloc(c, qn->nkids * sizeof *e->kids);
		e->neg = arena_alloc(c, qn->nkids * sizeof *e->neg);
		if (!e->kids || !e->neg)
			return NULL;
		int any_pos = 0;
		for (uint32_t i = 0; i < qn->nkids; i++)
			if (qn->kids[i]->kind != QN_NOT)
				any_pos = 1;
		for (uint32_t i = 0; i < qn->nkids; i++) {
			const query_node *k = qn->kids[i];
			if (e->kind == E_AND && k->kind == QN_NOT && any_pos) {
				enode *x = compile(c, k->kids[0], depth + 1);
				if (!x)
					return NULL;
				e->neg[e->nneg++] = x;
			} else {
				enode *x = compile(c, k, depth + 1);
				if (!x)
					return NULL;
				e->kids[e->nkids++] = x;
			}
		}
		if (e->kind == E_AND)
			sort_by_cost(e->kids, e->nkids);
		return e;
	}
	}
	return NULL;
}

/* ---- top-k ---- */

typedef struct {
	engine_hit *h;
	uint32_t n, k;
	int by_date;
	const sousuo_index *ix;
} topk;

/* 1 if a ranks before b: higher score, then newer, then lower id. */
static int better(const topk *t, const engine_hit *a, const engine_hit *b)
{
	/* the score decides almost always: read the dates only when needed */
	if (!t->by_date && a->score != b->score)
		return a->score > b->score;
	uint32_t da = index_doc(t->ix, a->doc)->date, db = index_doc(t->ix, b->doc)->date;
	if (t->by_date && da != db)
		return da > db;
	if (a->score != b->score)
		return a->score > b->score;
	if (da != db)
		return da > db;
	return a->doc < b->doc;
}

/* Min-heap on "better": the root is the worst kept hit. */
static void topk_push(topk *t, engine_hit x)
{
	if (t->k == 0)
		return;
	if (t->n < t->k) {
		uint32_t i = t->n++;
		while (i > 0) {
			uint32_t p = (i - 1) / 2;
			if (!better(t, &t->h[p], &x))
				break;
			t->h[i] = t->h[p];
			i = p;
		}
		t->h[i] = x;
		return;
	}
	if (!better(t, &x, &t->h[0]))
		return;
	uint32_t i = 0;
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;
		const engine_hit *worst = &x;
		if (l < t->n && better(t, worst, &t->h[l])) {
			m = l;
			worst = &t->h[l];
		}
		if (r < t->n && better(t, worst, &t->h[r]))
			m = r;
		if (m == i)
			break;
		t->h[i] = t->h[m];
		i = m;
	}
	t->h[i] = x;
}

/* Sorts the heap best first (insertion sort: k is small and this avoids a
 * global comparator context, which would not be thread-safe). */
static void topk_sort(topk *t)
{
	for (uint32_t i = 1; i < t->n; i++) {
		engine_hit x = t->h[i];
		uint32_t j = i;
		while (j > 0 && better(t, &x, &t->h[j - 1])) {
			t->h[j] = t->h[j - 1];
			j--;
		}
		t->h[j] = x;
	}
}

static int prepare(engine_ctx *c, const sousuo_index *ix, const query *q, const engine_opts *o,
                   enode **root, char *err, size_t errlen)
{
	arena_reset(c);
	c->ix = ix;
	c->o = o;
	uint32_t nd = index_ndocs(ix);
	if (c->norm_ix != ix || c->norm_b != o->b || c->norm_tb != o->title_b || nd > c->norm_cap) {
		if (nd > c->norm_cap) {
			double *a = realloc(c->norm_body, (nd + 1) * sizeof *a);
			if (a)
				c->norm_body = a;
			double *b = realloc(c->norm_title, (nd + 1) * sizeof *b);
			if (b)
				c->norm_title = b;
			if (!a || !b) {
				snprintf(err, errlen, "out of memory");
				return -1;
			}
			c->norm_cap = nd;
		}
		/* stored inverted: 1 / (1 - b + b * len / avg) */
		for (uint32_t i = 0; i < nd; i++) {
			const fmt_doc *d = index_doc(ix, i);
			c->norm_body[i] = (1 / (1 - o->b + o->b * d->body_tokens / index_avg_body(ix)));
			c->norm_title[i] = (1 / (1 - o->title_b + o->title_b * d->title_tokens /
			                                            index_avg_title(ix)));
		}
		c->norm_ix = ix;
		c->norm_b = o->b;
		c->norm_tb = o->title_b;
	}
	*root = compile(c, q->root, 0);
	if (!*root) {
		snprintf(err, errlen, "%s", c->corrupt ? "index data corrupt" : "out of memory");
		return -1;
	}
	return 0;
}

/* Gives every category filter its mask: 1 for each category whose path is
 * the prefix or lies below it ("地方性法规" covers "地方性法规/山东"). */
static int assign_masks(engine_ctx *c, enode *e)
{
	if (e->kind == E_FILTER) {
		if (e->filter->kind != QN_CATEGORY)
			return 0;
		uint32_t n = index_ncategories(c->ix);
		uint8_t *m = arena_alloc(c, n + 1);
		if (!m)
			return -1;
		const char *want = e->filter->text;
		size_t plen = strlen(want);
		for (uint32_t i = 0; i < n; i++) {
			size_t len;
			const char *s = index_category(c->ix, i, &len);
			m[i] = len >= plen && memcmp(s, want, plen) == 0 &&
			       (len == plen || plen == 0 || s[plen] == '/' || want[plen - 1] == '/');
		}
		e->catmask = m;
		return 0;
	}
	for (uint32_t i = 0; i < e->nkids; i++)
		if (assign_masks(c, e->kids[i]))
			return -1;
	for (uint32_t i = 0; i < e->nneg; i++)
		if (assign_masks(c, e->neg[i]))
			return -1;
	return 0;
}

/* The loop for the commonest query: one term whose body matching needs no
 * positions (a CJK character, an adjacent pair, a word).  Documents come
 * straight from the decoded blocks; with pruning, a whole block whose
 * directory bound cannot beat theta is skipped undecoded. */
static void run_single_term(engine_ctx *c, enode *e, topk *t, int prune, uint64_t *total)
{
	const engine_opts *o = c->o;
	pcur *bc = e->body.cur[0];
	comps *tc = &e->title;
	const double k1 = o->k1, idf = e->idf, *nb = c->norm_body;
	double title_max = tc->n ? o->title_weight * e->idf_title * (k1 + 1) : 0;
	const double boost = 1 + o->name_boost;
	const uint32_t ntoks = e->qn->ntoks;
	double avg = index_avg_body(c->ix);
	(void)prune;
	while (bc->doc != PCUR_END) {
		/* a block whose bound cannot beat the k-th score is counted, not
		 * decoded: every document of a one-cursor term matches, so the
		 * total stays exact */
		if (c->theta > 0 && bc->nblocks > 1 && !bc->decoded) {
			double norm = 1 / (1 - o->b + o->b * bc->min_len / avg);
			double x = bc->max_tf * norm;
			double tmax = tc->n && pcur_seek(tc->cur[0], bc->base) <= bc->last ? title_max : 0;
			if ((idf * x * (k1 + 1) / (x + k1) + tmax) * boost < c->theta) {
				*total += bc->n;
				if (pcur_block_next(bc))
					break;
				continue;
			}
		}
		if (pcur_block_load(bc)) {
			c->corrupt = 1;
			return;
		}
		*total += bc->n;
		/* once the heap is full, s >= theta <=> x (idf (k1 + 1) - theta) >=
		 * theta k1: most documents are turned away without a division */
		double th = c->theta, a = idf * (k1 + 1) - th, bk = th * k1;
		for (uint32_t i = 0; i < bc->n; i++) {
			uint32_t d = bc->docs[i];
			double x = bc->tfs[i] * nb[d];
			int title = tc->n && tc->cur[0]->doc <= d;
			if (th > 0 && !title && x * a < bk)
				continue;
			double s = idf * x * (k1 + 1) / (x + k1);
			if (title && comps_at(tc, d)) {
				uint32_t tt = tc->positional ? count_aligned(c, tc) : pcur_tf(tc->cur[0]);
				double y = tt * c->norm_title[d];
				s += o->title_weight * e->idf_title * y * (k1 + 1) / (y + k1);
				uint32_t len = index_doc(c->ix, d)->title_tokens;
				if (len && (uint64_t)tt * ntoks == len)
					s *= boost;
			}
			if (t->n < t->k || t->by_date || s >= t->h[0].score) {
				engine_hit h = { d, s };
				topk_push(t, h);
				if (t->n == t->k && !t->by_date) {
					c->theta = th = t->h[0].score * (1 - 1e-9);
					a = idf * (k1 + 1) - th;
					bk = th * k1;
				}
			}
		}
		bc->i = bc->n - 1;
		bc->doc = bc->docs[bc->n - 1];
		if (pcur_block_next(bc))
			break;
	}
	if (bc->corrupt)
		c->corrupt = 1;
}

/* A term read from one cursor, without positions: every document of the
 * cursor matches, with the cursor's tf. */
static int is_simple(const enode *e)
{
	return e->kind == E_TERM && !e->title_only && e->body.n == 1 && !e->body.positional;
}

/* The score of a simple term at d (its cursor there); adds the title tokens
 * it matched to *cover. */
static inline double simple_score(engine_ctx *c, enode *e, uint32_t d, uint64_t *cover)
{
	const engine_opts *o = c->o;
	double x = pcur_tf(e->body.cur[0]) * c->norm_body[d];
	double s = e->idf * x * (o->k1 + 1) / (x + o->k1);
	comps *tc = &e->title;
	if (tc->n && tc->cur[0]->doc <= d && comps_at(tc, d)) {
		uint32_t tt = tc->positional ? count_aligned(c, tc) : pcur_tf(tc->cur[0]);
		double y = tt * c->norm_title[d];
		s += o->title_weight * e->idf_title * y * (o->k1 + 1) / (y + o->k1);
		*cover += (uint64_t)tt * e->qn->ntoks;
	}
	return s;
}

static inline void push_hit(engine_ctx *c, topk *t, uint32_t d, double s, uint64_t cover)
{
	uint32_t len = index_doc(c->ix, d)->title_tokens;
	if (len && cover == len)
		s *= 1 + c->o->name_boost;
	if (t->n < t->k || t->by_date || s >= t->h[0].score) {
		engine_hit h = { d, s };
		topk_push(t, h);
	}
}

/* Root OR whose kids are all simple terms (or absent ones): a merge over
 * the cursors, exhaustive. */
static void run_or_simple(engine_ctx *c, enode *root, topk *t, uint64_t *total)
{
	for (;;) {
		uint32_t d = PCUR_END;
		for (uint32_t i = 0; i < root->nkids; i++)
			if (root->kids[i]->kind == E_TERM && root->kids[i]->body.cur[0]->doc < d)
				d = root->kids[i]->body.cur[0]->doc;
		if (d == PCUR_END)
			break;
		double s = 0;
		uint64_t cover = 0;
		for (uint32_t i = 0; i < root->nkids; i++) {
			enode *k = root->kids[i];
			if (k->kind != E_TERM || k->body.cur[0]->doc != d)
				continue;
			s += simple_score(c, k, d, &cover);
			pcur_next(k->body.cur[0]);
		}
		(*total)++;
		push_hit(c, t, d, s, cover);
	}
}

/* Root AND of simple terms, filters and NOTs of simple terms: leapfrog over
 * the cursors (rarest first), exhaustive. */
static void run_and_simple(engine_ctx *c, enode *root, topk *t, uint64_t *total)
{
	uint32_t ndocs = index_ndocs(c->ix), d = 0;
	while (d < ndocs) {
		uint32_t i;
		for (i = 0; i < root->nkids; i++) {
			enode *k = root->kids[i];
			uint32_t e;
			if (k->kind == E_FILTER) {
				e = d;
				while (e < ndocs && !filter_match(c, k, e))
					e++;
				if (e == ndocs)
					return;
			} else {
				e = pcur_seek(k->body.cur[0], d);
				if (e == PCUR_END)
					return;
			}
			if (e != d) {
				d = e;
				break;
			}
		}
		if (i < root->nkids)
			continue;
		for (i = 0; i < root->nneg; i++) {
			enode *k = root->neg[i];
			if (k->kind == E_TERM && pcur_seek(k->body.cur[0], d) == d)
				break;
		}
		if (i < root->nneg) {
			d++;
			continue;
		}
		double s = 0;
		uint64_t cover = 0;
		for (i = 0; i < root->nkids; i++)
			if (root->kids[i]->kind == E_TERM)
				s += simple_score(c, root->kids[i], d, &cover);
		(*total)++;
		push_hit(c, t, d, s, cover);
		d++;
	}
}

/* 1 if the root is an OR of simple (or absent) terms, or an AND of simple
 * terms and filters with NOTs of simple (or absent) terms. */
static int simple_tree(const enode *root)
{
	if (root->kind == E_OR) {
		for (uint32_t i = 0; i < root->nkids; i++)
			if (!is_simple(root->kids[i]) && root->kids[i]->kind != E_EMPTY)
				return 0;
		return 1;
	}
	if (root->kind != E_AND)
		return 0;
	int terms = 0;
	for (uint32_t i = 0; i < root->nkids; i++) {
		if (is_simple(root->kids[i]))
			terms++;
		else if (root->kids[i]->kind != E_FILTER)
			return 0;
	}
	for (uint32_t i = 0; i < root->nneg; i++)
		if (!is_simple(root->neg[i]) && root->neg[i]->kind != E_EMPTY)
			return 0;
	return terms > 0;
}

int engine_search(engine_ctx *c, const sousuo_index *ix, const query *q,
                  const engine_opts *o, engine_result *r, char *err, size_t errlen)
{
	enode *root;
	memset(r, 0, sizeof *r);
	if (prepare(c, ix, q, o, &root, err, errlen) || assign_masks(c, root))
		return -1;
	uint64_t want = (uint64_t)o->offset + o->limit;
	if (want > SOUSUO_MAX_RESULTS)
		want = SOUSUO_MAX_RESULTS;
	if (want > c->heap_cap) {
		engine_hit *h = realloc(c->heap, want * sizeof *h);
		if (!h) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		c->heap = h;
		c->heap_cap = want;
	}
	topk t = { c->heap, 0, (uint32_t)want, q->sort == QSORT_DATE, ix };
	uint64_t total = 0;
	uint32_t d = 0;
	/* Without exact totals, a candidate whose score bound cannot beat the
	 * k-th best so far is never verified: pruned top-k is exhaustive
	 * top-k, the total becomes a lower bound.  For a single term or an AND
	 * at the root; other queries run exhaustively. */
	int prune = !o->exact_total && q->sort == QSORT_RELEVANCE && t.k > 0;
	c->prune_node = prune && (root->kind == E_TERM || root->kind == E_AND) ? root : NULL;
	c->theta = 0;
	c->pruned = 0;
	if (!o->generic && is_simple(root)) {
		run_single_term(c, root, &t, prune, &total);
		goto done;
	}
	if (!o->generic && simple_tree(root)) {
		if (root->kind == E_OR)
			run_or_simple(c, root, &t, &total);
		else
			run_and_simple(c, root, &t, &total);
		for (uint32_t i = 0; i < c->used_pool; i++)
			if (c->pool[i]->corrupt)
				c->corrupt = 1;
		goto done;
	}
	/* all nodes start "before" document 0 */
	for (;;) {
		if (c->prune_node == root && root->kind == E_TERM) {
			d = term_candidate(root, d);
			if (d == PCUR_END || c->corrupt)
				break;
			if (c->theta > 0 && term_bound(c, root, d) < c->theta) {
				c->pruned = 1;
				d++;
				continue;
			}
			if (!term_verify(c, root, d)) {
				d++;
				continue;
			}
			root->doc = d;
		} else {
			d = node_seek(c, root, d);
			if (d == PCUR_END || c->corrupt)
				break;
		}
		total++;
		engine_hit h = { d, doc_score(c, root, d) };
		/* most documents lose to the worst kept hit on score alone */
		if (t.n < t.k || t.by_date || h.score >= t.h[0].score)
			topk_push(&t, h);
		/* a margin keeps rounding in the bound from skipping a tie */
		if (c->prune_node && t.n == t.k)
			c->theta = t.h[0].score * (1 - 1e-9);
		d++;
	}
done:
	if (c->corrupt) {
		snprintf(err, errlen, "index data corrupt");
		return -1;
	}
	topk_sort(&t);
	r->total = total;
	r->total_exact = !c->pruned;
	r->nhits = t.n > o->offset ? t.n - o->offset : 0;
	r->hits = t.h + (t.n > o->offset ? o->offset : t.n);
	return 0;
}

int engine_explain(engine_ctx *c, const sousuo_index *ix, const query *q,
                   const engine_opts *o, uint32_t doc, char *out, size_t cap)
{
	char err[128];
	enode *root;
	if (cap)
		out[0] = 0;
	if (doc >= index_ndocs(ix) || prepare(c, ix, q, o, &root, err, sizeof err) ||
	    assign_masks(c, root))
		return -1;
	if (node_seek(c, root, doc) != doc)
		return snprintf(out, cap, "document %u does not match\n", doc), 0;
	/* walk the tree iteratively with a small explicit stack */
	enode *stack[64];
	int sp = 0;
	size_t at = 0;
	const fmt_doc *fd = index_doc(ix, doc);
	stack[sp++] = root;
	while (sp > 0) {
		enode *e = stack[--sp];
		if (e->kind == E_TERM && e->doc == doc) {
			term_fill_other(c, e, doc);
			int n = snprintf(out + at, cap - at,
			                 "%s%s: tf body %u (len %u, avg %.1f), tf title %u (len %u, avg %.1f), "
			                 "idf %.3f, score %.4f\n",
			                 e->title_only ? "title:" : "", e->qn->text, e->tf_body,
			                 fd->body_tokens, index_avg_body(ix), e->tf_title,
			                 fd->title_tokens, index_avg_title(ix), e->idf,
			                 term_score(c, e, doc));
			if (n > 0 && (size_t)n < cap - at)
				at += (size_t)n;
		} else if ((e->kind == E_AND || e->kind == E_OR) && e->doc == doc) {
			for (uint32_t i = 0; i < e->nkids && sp < 64; i++)
				stack[sp++] = e->kids[i];
		}
	}
	int n = snprintf(out + at, cap - at,
	                 "total %.4f (k1 %.2f, b %.2f, title weight %.2f, title b %.2f, name boost %.2f%s)\n",
	                 doc_score(c, root, doc), o->k1, o->b, o->title_weight, o->title_b,
	                 o->name_boost, c->cover == fd->title_tokens ? ", applied" : "");
	(void)n;
	return 0;
}
