/* ngrams.h — finds the runs of 3 and 4 adjacent CJK characters that occur
 * in many documents and collects their postings: documents and frequencies
 * for runs of 3 (FMT_KIND_NGRAM), and positions too for runs of 4
 * (FMT_KIND_NGRAM4).  A query that is exactly such a run is answered from
 * one list instead of by checking pair positions in every document, and a
 * longer run is covered by few 4-character runs: the common words and
 * phrases of a query log ("人民政府", "人民代表大会") are exactly the runs
 * whose position checks cost the most.  Called by the writer after its main
 * pass, over the bodies it keeps. */
#ifndef SOUSUO_NGRAMS_H
#define SOUSUO_NGRAMS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
	uint64_t key;          /* keys_ngram of the run */
	uint32_t df;           /* documents: >= the min_df asked for */
	uint32_t *docs;        /* df ascending document ids */
	uint32_t *tfs;         /* df occurrence counts (>= 1) */
	uint32_t *pos;         /* runs of 4 (FMT_KIND_NGRAM4): the start positions,
	                          sum(tfs) of them, document after document,
	                          increasing within one; NULL for runs of 3 */
} ngram_list;

typedef struct {
	ngram_list *lists;     /* sorted by key */
	size_t n;
	uint64_t occurrences;  /* occurrences scanned (for statistics) */
	void *pool, *pospool;  /* private: own docs, tfs and pos */
} ngram_result;

/* Scans bodies[0..ndocs) (document i is bodies[i], lens[i] bytes) for runs
 * of 3 and 4 CJK characters whose every adjacent pair is one of
 * frequent_pairs[0..npairs) (FMT_KIND_BIGRAM keys of bigrams in at least
 * min_df documents: a run cannot be in more documents than its pairs) and
 * keeps those in at least min_df documents.  Uses `threads` threads.
 * Returns 0 and fills *out (free with ngram_result_free), or -1 when out of
 * memory. */
int ngrams_collect(const char *const *bodies, const size_t *lens, uint32_t ndocs,
                   const uint64_t *frequent_pairs, size_t npairs, uint32_t min_df,
                   int threads, ngram_result *out);

void ngram_result_free(ngram_result *r);

#endif
