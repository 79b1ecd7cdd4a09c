/* engine_int.h — private to the query engine (search/engine*.c): the
 * evaluation tree, a term's components, the per-thread context and top-k
 * heap, and the functions the engine's files share.  Nothing outside
 * search/engine*.c includes it; the public interface is engine.h.
 *
 *   engine.c        contexts, arena, top-k, engine_search, engine_explain
 *   engine_terms.c  a term: its components, candidates, position checks, score
 *   engine_tree.c   the iterator tree for AND/OR/NOT/filters, query compiling
 *   engine_loops.c  tight loops for one term and for AND/OR of simple terms
 */
#ifndef SOUSUO_ENGINE_INT_H
#define SOUSUO_ENGINE_INT_H

#include <stddef.h>
#include <stdint.h>
#include "indexer/limits.h"
#include "search/engine.h"
#include "search/postings.h"

#define MAX_COMPS (SOUSUO_MAX_TERM_TOKENS + 1)

typedef enum { E_TERM, E_AND, E_OR, E_NOT, E_FILTER, E_EMPTY } ekind;

/* The components of one term in one field. */
typedef struct {
	uint32_t n;                 /* 0: the term cannot occur in this field */
	int positional;             /* positions must be checked */
	pcur *cur[MAX_COMPS];
	uint32_t off[MAX_COMPS];    /* offset of each component from the start */
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
	int corrupt;               /* stop: data corrupt, out of memory or out of time */
	int nomem;
	int timed_out;
	uint32_t ticks;            /* work since the clock was last read */
	/* BM25 length norms per document, for the index and b values they were
	 * computed for: one multiply-free lookup per scored document */
	const sousuo_index *norm_ix;
	uint64_t norm_sum;         /* and its header checksum: a reloaded index may
	                              be mapped at the old one's address */
	double norm_b, norm_tb;
	double *norm_body, *norm_title;
	size_t norm_cap;
};


/* A bounded heap of the best hits (the root is the worst kept). */
typedef struct {
	engine_hit *h;
	uint32_t n, k;
	int by_date;
	const sousuo_index *ix;
} topk;


/* engine.c */
int engine_clock_check(engine_ctx *c);

/* Counts `work` units against the deadline; 1 (and the search stops, as
 * for corrupt data) once it has passed. */
static inline int engine_tick(engine_ctx *c, uint32_t work)
{
	if (!c->o->deadline_ns)
		return 0;
	c->ticks += work;
	return c->ticks >= ENGINE_TICKS ? engine_clock_check(c) : 0;
}

void *arena_alloc(engine_ctx *c, size_t n);
pcur *cursor_get(engine_ctx *c);
void topk_push(topk *t, engine_hit x);

/* engine_terms.c */
int build_comps(engine_ctx *c, const query_node *qn, int title, comps *cs);
uint32_t count_aligned(engine_ctx *c, comps *cs);
int comps_at(comps *cs, uint32_t doc);
uint32_t term_candidate(enode *e, uint32_t target);
int term_verify(engine_ctx *c, enode *e, uint32_t doc);
void term_fill_other(engine_ctx *c, enode *e, uint32_t doc);
double term_bound(engine_ctx *c, enode *e, uint32_t doc);
uint32_t term_seek(engine_ctx *c, enode *e, uint32_t target);
double term_score(engine_ctx *c, const enode *e, uint32_t doc);

/* engine_tree.c */
int filter_match(engine_ctx *c, const enode *e, uint32_t doc);
uint32_t node_seek(engine_ctx *c, enode *e, uint32_t target);
double node_score(engine_ctx *c, enode *e, uint32_t doc);
double doc_score(engine_ctx *c, enode *root, uint32_t doc);
enode *compile(engine_ctx *c, const query_node *qn, int depth);
int assign_masks(engine_ctx *c, enode *e);

/* engine_loops.c */
int is_simple(const enode *e);
int simple_tree(const enode *root);
void run_single_term(engine_ctx *c, enode *e, topk *t, int prune, uint64_t *total);
void run_or_simple(engine_ctx *c, enode *root, topk *t, uint64_t *total);
void run_and_simple(engine_ctx *c, enode *root, topk *t, uint64_t *total);

#endif
