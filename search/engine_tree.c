/* engine_tree.c — the general evaluation: a tree of iterators over
 * terms, AND, OR, NOT and filters, compiled from the parsed query, moving
 * document by document; and the score of a document for the whole query.
 * Called by engine.c (engine_int.h). */
#include "search/engine_int.h"
#include "indexer/format.h"
#include "indexer/keys.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- filters ---- */

int filter_match(engine_ctx *c, const enode *e, uint32_t doc)
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

/* AND: kids are first brought to a common candidate, terms at document
 * level only; then, when pruning, the candidate's score bound is checked;
 * only then are terms verified by position and NOT kids consulted. */
static uint32_t and_seek(engine_ctx *c, enode *e, uint32_t target)
{
	uint32_t ndocs = index_ndocs(c->ix);
	for (;;) {
		if (target >= ndocs || engine_tick(c, 1))
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
	while (target < ndocs && node_seek(c, e->kids[0], target) == target && !engine_tick(c, 1))
		target++;
	return e->doc = target < ndocs ? target : PCUR_END;
}

uint32_t node_seek(engine_ctx *c, enode *e, uint32_t target)
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
		while (target < n && !filter_match(c, e, target) && !engine_tick(c, 1))
			target++;
		return e->doc = target < n ? target : PCUR_END;
	}
	case E_EMPTY: return e->doc = PCUR_END;
	}
	return PCUR_END;
}

/* Sum of the scores of the terms of e that match doc (e is on doc). */
double node_score(engine_ctx *c, enode *e, uint32_t doc)
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
double doc_score(engine_ctx *c, enode *root, uint32_t doc)
{
	c->cover = 0;
	double s = node_score(c, root, doc);
	uint32_t tt = index_doc(c->ix, doc)->title_tokens;
	if (tt && c->cover == tt)
		s *= 1 + c->o->name_boost;
	return s;
}

/* ---- compiling the query tree ---- */

enode *compile(engine_ctx *c, const query_node *qn, int depth);

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

/* The deepest tree the parser makes: each level of parentheses, the top one
 * included, can hold an OR, an AND and a NOT on one path ("x | -y -(x | -y
 * -(...))"), and a leaf ends it.  Deeper is a tree not made by query_parse. */
#define COMPILE_MAX_DEPTH (3 * (SOUSUO_MAX_QUERY_DEPTH + 1))

enode *compile(engine_ctx *c, const query_node *qn, int depth)
{
	if (depth > COMPILE_MAX_DEPTH)
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

/* Gives every category filter its mask: 1 for each category whose path is
 * the prefix or lies below it ("地方性法规" covers "地方性法规/山东"). */
int assign_masks(engine_ctx *c, enode *e)
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

