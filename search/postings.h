/* postings.h — a cursor over one term's postings (format: indexer/writer.c):
 * documents in increasing order with their term frequency, block skipping
 * through the directory, and the positions of the current document decoded
 * on demand.  Used by the query engine; one cursor per query term, owned by
 * the caller (usually from a per-thread pool), no allocation except the
 * positions buffer, which is kept and reused across opens. */
#ifndef SOUSUO_POSTINGS_H
#define SOUSUO_POSTINGS_H

#include <stdint.h>
#include "indexer/limits.h"
#include "search/index.h"

#define PCUR_END UINT32_MAX

typedef struct {
	/* the term */
	const uint8_t *end;           /* end of POSTINGS: decoding bound */
	const uint8_t *pos_end;       /* end of POSITIONS */
	uint32_t ndocs;               /* document ids must be below this */
	uint32_t df, nblocks;
	int positional;
	/* where the next block's directory entry, data and positions start */
	const uint8_t *dir, *data, *posdata;
	uint32_t block;               /* current block, 0-based; nblocks = done */
	uint32_t base;                /* last doc of the previous block + 1 */
	/* the current block */
	uint32_t n;                   /* documents in it */
	uint32_t last;                /* its last document */
	uint32_t max_tf, min_len;     /* from the directory (0, 0 for one block) */
	uint32_t data_bytes, pos_bytes;
	int decoded;                  /* docs/tfs of the block are decoded */
	uint32_t docs[SOUSUO_BLOCK], tfs[SOUSUO_BLOCK];
	uint32_t i;                   /* index of the current document in the block */
	uint32_t doc;                 /* current document or PCUR_END */
	/* positions of the current block, decoded chunk by chunk on demand:
	 * chunks before the first one a requested document needs are skipped
	 * undecoded, and only the requested document's deltas are made absolute */
	const uint8_t *blkpos;        /* start of this block's positions */
	int pos_ready;                /* pos_start[] and the chunk state are set */
	uint32_t pos_start[SOUSUO_BLOCK + 1];  /* prefix sums of tfs[] - 1: where
	                                         each document's deltas start */
	uint32_t firsts[SOUSUO_BLOCK];          /* each document's first position */
	uint32_t chunk_next;          /* first chunk not yet decoded or skipped */
	const uint8_t *chunk_ptr;     /* its bytes */
	const uint8_t *pos_limit;     /* end of this block's positions */
	uint32_t docpos_i;            /* index of the document in docpos, or UINT32_MAX */
	int corrupt;                  /* set when the data do not decode */
	uint64_t ndecoded;            /* documents decoded so far (benchmarks) */
	/* buffers below survive pcur_open: owned, grown, freed by pcur_free */
	uint32_t *pos;                /* raw deltas of the block's later positions */
	uint32_t pos_cap;
	uint32_t *docpos;             /* absolute positions of one document */
	uint32_t docpos_cap;
} pcur;

/* Initializes a cursor (previously zeroed or closed) on term t, positioned on
 * its first document.  Returns 0, or -1 when the postings are corrupt. */
int pcur_open(pcur *c, const index_term *t);

/* Frees the positions buffer; the cursor may be opened again after. */
void pcur_free(pcur *c);

/* Moves to the first document >= target (never backwards); returns it or
 * PCUR_END.  On corrupt data it sets c->corrupt and returns PCUR_END. */
uint32_t pcur_seek_slow(pcur *c, uint32_t target);

/* The common case inline: the target lies in the decoded current block. */
static inline uint32_t pcur_seek(pcur *c, uint32_t target)
{
	if (c->doc == PCUR_END || target <= c->doc)
		return c->doc;
	if (c->decoded && target <= c->docs[c->n - 1]) {
		uint32_t i = c->i + 1;
		while (c->docs[i] < target)
			i++;
		c->i = i;
		return c->doc = c->docs[i];
	}
	return pcur_seek_slow(c, target);
}

static inline uint32_t pcur_next(pcur *c)
{
	return c->doc == PCUR_END ? PCUR_END : pcur_seek(c, c->doc + 1);
}

static inline uint32_t pcur_tf(const pcur *c) { return c->tfs[c->i]; }

/* Block-at-a-time access for scoring loops that own the cursor: the
 * current block's documents are docs[i..n), their tfs tfs[i..n) once the
 * block is loaded.  pcur_block_next leaves the current block for the next
 * one without decoding it (its directory bound max_tf/min_len is then known
 * for a multi-block term) and returns 0, or -1 after the last block (doc is
 * then PCUR_END).  pcur_block_load decodes it and puts the cursor on its
 * first document; 0, or -1 when corrupt.  Between the two calls the cursor
 * must not be used otherwise. */
int pcur_block_next(pcur *c);
int pcur_block_load(pcur *c);

/* Positions (absolute, increasing) of the current document; *n = its tf.
 * Valid until the cursor moves.  NULL (and c->corrupt) on corrupt data. */
const uint32_t *pcur_positions(pcur *c, uint32_t *n);

#endif
