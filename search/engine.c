/* engine.c — query evaluation, the entry points: per-thread contexts, the
 * top-k heap, engine_search (which picks a tight loop for simple queries or
 * the iterator tree for the rest) and engine_explain.  The parts live in
 * engine_terms.c, engine_tree.c and engine_loops.c (see engine_int.h).
 *
 * Exactness.  A query term (QN_TERM) is a list of tokens at fixed relative
 * positions.  It becomes "components", each a dictionary key read through a
 * postings cursor, with an offset from the term's start:
 *   - one token: its own key (a CJK character's postings have no positions,
 *     and none are needed: every document in the list contains it);
 *   - two adjacent tokens: their pair key (a bigram, or a word+CJK pair),
 *     again without positions;
 *   - a run of 3-4 CJK characters that the index holds as an n-gram: that
 *     key alone, doc-level, as exact as a pair;
 *   - anything else: the key of every adjacent pair and of every word that
 *     stands alone between separators ("covid-19"), with positions, and of
 *     every 4-character run inside a run of 5+ that the index holds
 *     (FMT_KIND_NGRAM4, positional).
 * A document is a candidate when it holds every component; it matches where
 * a set of components covering every token sits at its offsets from one
 * start position (any cover decides: each document uses the cheapest), and
 * the number of such starts is the term's frequency there.  No false
 * positives, no misses.  The title field has its own keys; the same
 * components over title keys give the title frequency used in scoring and by
 * `title:` restrictions.
 */
#include "search/engine_int.h"
#include "indexer/format.h"
#include "indexer/keys.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void engine_opts_default(engine_opts *o)
{
	memset(o, 0, sizeof *o);   /* a field added later starts at 0 too */
	o->k1 = 1.2;
	o->b = 0.75;
	o->title_weight = 4.0;
	o->title_b = 1.0;
	o->name_boost = 0.5;
	o->limit = 10;
	o->exact_total = 1;
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
	c->timed_out = 0;
	c->ticks = 0;
}

int engine_clock_check(engine_ctx *c)
{
	struct timespec ts;
	c->ticks = 0;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec < c->o->deadline_ns)
		return 0;
	c->timed_out = c->corrupt = 1;
	return 1;
}

void *arena_alloc(engine_ctx *c, size_t n)
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

pcur *cursor_get(engine_ctx *c)
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
void topk_push(topk *t, engine_hit x)
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

/* Sorts the heap best first in place: the root (the worst kept) goes to
 * the end again and again, n log n for the deepest pages (an insertion sort
 * took 130-255 ms at offset 9990); no global comparator context, which qsort
 * would need and which would not be thread-safe. */
static void topk_sort(topk *t)
{
	uint32_t n = t->n;
	while (n > 1) {
		engine_hit x = t->h[n - 1];
		t->h[n - 1] = t->h[0];
		n--;
		uint32_t i = 0;
		for (;;) {
			uint32_t l = 2 * i + 1, r = l + 1, m = i;
			const engine_hit *worst = &x;
			if (l < n && better(t, worst, &t->h[l])) {
				m = l;
				worst = &t->h[l];
			}
			if (r < n && better(t, worst, &t->h[r]))
				m = r;
			if (m == i)
				break;
			t->h[i] = t->h[m];
			i = m;
		}
		t->h[i] = x;
	}
}

static int prepare(engine_ctx *c, const sousuo_index *ix, const query *q, const engine_opts *o,
                   enode **root, char *err, size_t errlen)
{
	arena_reset(c);
	c->ix = ix;
	c->o = o;
	uint32_t nd = index_ndocs(ix);
	uint64_t sum = index_header(ix)->header_checksum;
	if (c->norm_ix != ix || c->norm_sum != sum || c->norm_b != o->b || c->norm_tb != o->title_b ||
	    nd > c->norm_cap) {
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
		c->norm_sum = sum;
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
		if (engine_tick(c, 1))
			break;
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
		if (t.n < t.k || (t.k && (t.by_date || h.score >= t.h[0].score)))
			topk_push(&t, h);
		/* a margin keeps rounding in the bound from skipping a tie */
		if (c->prune_node && t.n == t.k)
			c->theta = t.h[0].score * (1 - 1e-9);
		d++;
	}
done:
	if (c->timed_out) {
		snprintf(err, errlen, "time budget exceeded");
		return ENGINE_ETIME;
	}
	if (c->corrupt) {
		snprintf(err, errlen, "index data corrupt");
		return -1;
	}
	topk_sort(&t);
	for (uint32_t i = 0; i < c->used_pool; i++)
		r->postings += c->pool[i]->ndecoded;
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

