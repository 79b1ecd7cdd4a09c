/* engine_loops.c — tight loops for the commonest queries: one term that
 * needs no positions, and an OR or AND of such terms, straight over decoded
 * postings blocks without the iterator tree; tests check they agree with
 * the tree (engine_opts.generic).  Called by engine.c (engine_int.h). */
#include "search/engine_int.h"
#include "indexer/format.h"
#include "indexer/keys.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The loop for the commonest query: one term whose body matching needs no
 * positions (a CJK character, an adjacent pair, a word).  Documents come
 * straight from the decoded blocks; with pruning, a whole block whose
 * directory bound cannot beat theta is skipped undecoded. */
void run_single_term(engine_ctx *c, enode *e, topk *t, int prune, uint64_t *total)
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
		if (engine_tick(c, 128))
			return;
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
			if (t->n < t->k || (t->k && (t->by_date || s >= t->h[0].score))) {
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
int is_simple(const enode *e)
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
	if (t->n < t->k || (t->k && (t->by_date || s >= t->h[0].score))) {
		engine_hit h = { d, s };
		topk_push(t, h);
	}
}

/* Root OR whose kids are all simple terms (or absent ones): a merge over
 * the cursors, exhaustive. */
void run_or_simple(engine_ctx *c, enode *root, topk *t, uint64_t *total)
{
	for (;;) {
		if (engine_tick(c, root->nkids))
			return;
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
void run_and_simple(engine_ctx *c, enode *root, topk *t, uint64_t *total)
{
	uint32_t ndocs = index_ndocs(c->ix), d = 0;
	while (d < ndocs) {
		if (engine_tick(c, 1))
			return;
		uint32_t i;
		for (i = 0; i < root->nkids; i++) {
			enode *k = root->kids[i];
			uint32_t e;
			if (k->kind == E_FILTER) {
				e = d;
				while (e < ndocs && !filter_match(c, k, e))
					e++;   /* a filter costs a table read per document: no tick */
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
int simple_tree(const enode *root)
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

