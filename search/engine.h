/* engine.h — query evaluation: matches a parsed query (query.h) against an
 * index (index.h) exactly, scores matches with BM25 over two fields, and
 * keeps the top results.  A term's score is
 *   idf_body * sat(tf_body / norm_body) + title_weight * idf_title * sat(tf_title / norm_title)
 * with sat(x) = x (k1 + 1) / (x + k1), norm = 1 - b + b * len / avg_len, and
 * each field's idf from that field's document frequency (as Lucene scores a
 * query over several fields); the title field is the short name a document
 * is known by (corpus.h).  Callers: sousuo-search, the daemon's workers, the
 * benchmark.  One engine_ctx per thread; the index is shared. */
#ifndef SOUSUO_ENGINE_H
#define SOUSUO_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include "search/index.h"
#include "search/query.h"

typedef struct {
	double k1;             /* BM25 saturation (default 1.2) */
	double b;              /* body length normalization (default 0.75) */
	double title_weight;   /* weight of the title field's BM25 (default 4) */
	double title_b;        /* title length normalization (default 1) */
	double name_boost;     /* a document whose short name is made of exactly
	                          the query's terms (every title token matched
	                          once) scores (1 + name_boost) times (default 0.5):
	                          asking for a law by its name finds that law
	                          before its amendments and implementing rules */
	uint32_t limit;        /* results wanted (default 10) */
	uint32_t offset;       /* results skipped first (default 0) */
	int generic;           /* 1: no specialized loops (single term, AND/OR of
	                          simple terms): for tests and comparisons */
	int exact_total;       /* 1 (default): count every match; 0: the total may
	                          be a lower bound and top-k may prune */
	uint64_t deadline_ns;  /* CLOCK_MONOTONIC time in ns past which the
	                          search gives up with ENGINE_ETIME (0, the
	                          default: none); checked every ENGINE_TICKS
	                          documents or so, so it may be overrun by that
	                          much work (microseconds) */
} engine_opts;

/* Units of work (documents stepped over, blocks counted as 128) between two
 * looks at the clock when a deadline is set. */
#define ENGINE_TICKS 1024

/* engine_search's return when engine_opts.deadline_ns passed. */
#define ENGINE_ETIME (-2)

/* Fills o with the defaults above. */
void engine_opts_default(engine_opts *o);

typedef struct {
	uint32_t doc;
	double score;
} engine_hit;

typedef struct {
	uint64_t total;        /* matching documents (a lower bound if !total_exact) */
	int total_exact;
	uint32_t nhits;        /* hits[] length: at most limit */
	const engine_hit *hits;/* best first; owned by the ctx, valid until its next search */
	uint64_t postings;     /* postings (document entries) decoded: a measure of work */
} engine_result;

typedef struct engine_ctx engine_ctx;

engine_ctx *engine_ctx_new(void);
void engine_ctx_free(engine_ctx *c);

/* Runs q on ix.  Returns 0 and fills *r; ENGINE_ETIME when the deadline
 * passed first; or -1 with a message in err (the index's data are corrupt,
 * out of memory).  Thread-safe for distinct ctxs. */
int engine_search(engine_ctx *c, const sousuo_index *ix, const query *q,
                  const engine_opts *o, engine_result *r, char *err, size_t errlen);

/* Writes a human-readable account of how doc's score for q was made (one
 * line per term: tf in body and title, lengths, idf, contribution) into out
 * (NUL-terminated, truncated to cap).  Returns 0 or -1. */
int engine_explain(engine_ctx *c, const sousuo_index *ix, const query *q,
                   const engine_opts *o, uint32_t doc, char *out, size_t cap);

#endif
