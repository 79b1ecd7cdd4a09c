/* engine_terms.c — one query term against the index: the components its
 * tokens become (engine.c's opening comment explains why they are exact),
 * finding candidate documents, checking positions, and the term's BM25
 * score.  Called by the engine's tree and loops (engine_int.h). */
#include "search/engine_int.h"
#include "indexer/format.h"
#include "indexer/keys.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
int build_comps(engine_ctx *c, const query_node *qn, int title, comps *cs)
{
	const query_token *t = qn->toks;
	uint32_t n = qn->ntoks;
	int rc = 0;
	memset(cs, 0, sizeof *cs);
	int run = n >= 3 && n <= 4;   /* a run of 3-4 CJK characters? */
	for (uint32_t i = 0; i < n && run; i++)
		run = t[i].kind == TEXT_TOK_CJK && (i == 0 || t[i].pos == t[i - 1].pos + 1);
	if (run) {
		/* frequent runs have their own postings; in titles every run has */
		uint32_t cps[4];
		for (uint32_t i = 0; i < n; i++)
			cps[i] = t[i].cp;
		int r = comp_add(c, cs, title ? keys_title(keys_ngram(cps, n)) : keys_ngram(cps, n), 0);
		if (r <= 0 || title) {
			cs->all = (1ull << n) - 1;
			/* found: one component read for its tf alone, even a 4-run's
			 * positional one; absent from titles: no title holds the run */
			return r < 0 ? r : 0;
		}
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
				/* frequent 4-character runs inside a longer run: every
				 * candidate must hold them, and one covers 4 tokens with
				 * few positions where the pairs inside it are common */
				for (uint32_t i = s; i + 3 <= e && rc == 0 && !title && e - s >= 4 &&
				                     cs->n < MAX_COMPS; i++) {
					uint32_t cps[4], k;
					for (k = 0; k < 4 && t[i + k].kind == TEXT_TOK_CJK; k++)
						cps[k] = t[i + k].cp;
					if (k < 4)
						continue;
					int r = comp_add(c, cs, keys_ngram(cps, 4), t[i].pos);
					if (r == 0)
						cs->covers[cs->n - 1] = 0xFull << i;
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
			uint64_t tc = cs->covers[j];
			cs->cur[j] = cs->cur[j - 1];
			cs->off[j] = cs->off[j - 1];
			cs->covers[j] = cs->covers[j - 1];
			cs->cur[j - 1] = tp;
			cs->off[j - 1] = to;
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
		if (i == lead)
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
uint32_t count_aligned(engine_ctx *c, comps *cs)
{
	if (!cs->positional)
		return pcur_tf(cs->cur[0]);
	uint32_t order[MAX_COMPS], tfs[MAX_COMPS], npos = 0;
	for (uint32_t i = 0; i < cs->n; i++) {
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
int comps_at(comps *cs, uint32_t doc)
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

/* The field a term must match in, and the other one (scored only). */
static comps *term_main(enode *e) { return e->title_only ? &e->title : &e->body; }
static comps *term_other(enode *e) { return e->title_only ? &e->body : &e->title; }

/* First document >= target where the term's matching field holds all its
 * components: a candidate, not yet checked by position. */
uint32_t term_candidate(enode *e, uint32_t target)
{
	return comps_candidate(term_main(e), target);
}

/* Checks the term at its candidate doc by position and records its
 * frequencies there; returns 1 when it matches. */
int term_verify(engine_ctx *c, enode *e, uint32_t doc)
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
void term_fill_other(engine_ctx *c, enode *e, uint32_t doc)
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

double term_score(engine_ctx *c, const enode *e, uint32_t doc);

/* An upper bound of the term's score at its candidate doc, from component
 * frequencies alone (no positions decoded). */
double term_bound(engine_ctx *c, enode *e, uint32_t doc)
{
	enode b = *e;
	uint32_t tm = comps_tf_bound(term_main(e));
	uint32_t to = comps_at(term_other(e), doc) ? comps_tf_bound(term_other(e)) : 0;
	b.tf_body = e->title_only ? to : tm;
	b.tf_title = e->title_only ? tm : to;
	return term_score(c, &b, doc) * (1 + c->o->name_boost);
}

uint32_t term_seek(engine_ctx *c, enode *e, uint32_t target)
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

/* ---- scoring ---- */

double term_score(engine_ctx *c, const enode *e, uint32_t doc)
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

