/* postings.c — decoding of a term's postings; see postings.h and the format
 * at the top of indexer/writer.c.  Every read is bounded by the section's end;
 * inconsistent counts or sizes mark the cursor corrupt instead of trusting
 * them. */
#include "search/postings.h"
#include "indexer/codec.h"
#include "indexer/format.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static int corrupt(pcur *c)
{
	c->corrupt = 1;
	c->doc = PCUR_END;
	c->block = c->nblocks;
	return -1;
}

/* Reads the directory entry of the next block (multi-block terms) and makes
 * it current without decoding it. */
static int enter_block(pcur *c)
{
	uint32_t remaining = c->df - c->block * SOUSUO_BLOCK;
	c->n = remaining < SOUSUO_BLOCK ? remaining : SOUSUO_BLOCK;
	c->decoded = 0;
	c->pos_ready = 0;
	c->blkpos = c->posdata;
	if (c->nblocks == 1) {
		c->last = PCUR_END;   /* unknown until decoded */
		c->max_tf = c->min_len = 0;
		c->data_bytes = (uint32_t)(c->end - c->data);
		c->pos_bytes = (uint32_t)(c->pos_end - c->posdata);
		return 0;
	}
	uint32_t delta, bytes, pbytes = 0, maxtf, minlen;
	const uint8_t *p = c->dir;
	p = codec_varint_get32(p, c->end, &delta);
	if (p)
		p = codec_varint_get32(p, c->end, &bytes);
	if (p && c->positional)
		p = codec_varint_get32(p, c->end, &pbytes);
	if (p)
		p = codec_varint_get32(p, c->end, &maxtf);
	if (p)
		p = codec_varint_get32(p, c->end, &minlen);
	if (!p || delta == 0 || (uint64_t)c->base + delta - 1 >= c->ndocs ||
	    bytes > (size_t)(c->end - c->data) ||
	    pbytes > (size_t)(c->pos_end - c->posdata))
		return corrupt(c);
	c->dir = p;
	c->last = c->base + delta - 1;
	c->data_bytes = bytes;
	c->pos_bytes = pbytes;
	c->max_tf = maxtf;
	c->min_len = minlen;
	return 0;
}

/* Leaves the current block for the next one; returns 0 or -1 when done. */
static int next_block(pcur *c)
{
	c->base = c->last + 1;
	c->data += c->data_bytes;
	c->posdata += c->pos_bytes;
	if (++c->block >= c->nblocks) {
		c->doc = PCUR_END;
		return -1;
	}
	return enter_block(c);
}

static int decode_block(pcur *c)
{
	const uint8_t *p = c->data, *end = c->data + c->data_bytes;
	p = codec_unpack(p, end, c->docs, c->n);
	if (p)
		p = codec_unpack(p, end, c->tfs, c->n);
	if (!p)
		return corrupt(c);
	/* prefix sums in 64 bits, checked once at the end: the ids only grow,
	 * so the last one is the largest; no branch in the loops */
	uint64_t next = c->base;    /* the smallest document the next gap can give */
	uint32_t tfmax = 0;
	for (uint32_t i = 0; i < c->n; i++) {
		next += c->docs[i];
		c->docs[i] = (uint32_t)next++;
	}
	for (uint32_t i = 0; i < c->n; i++) {
		tfmax |= c->tfs[i] == UINT32_MAX;
		c->tfs[i] += 1;
	}
	/* an id past the last document would index the engine's per-document
	 * tables out of bounds */
	if (next - 1 >= c->ndocs || tfmax)
		return corrupt(c);
	uint32_t d = c->docs[c->n - 1];
	if (c->nblocks == 1) {
		c->last = d;
		c->data_bytes = (uint32_t)(p - c->data);
	} else if (d != c->last) {
		return corrupt(c);
	}
	c->decoded = 1;
	c->ndecoded += c->n;
	c->i = 0;
	return 0;
}

int pcur_open(pcur *c, const index_term *t)
{
	memset(c, 0, offsetof(pcur, pos));
	c->end = t->blob_end;
	c->pos_end = t->pos_end;
	c->ndocs = t->ndocs;
	c->df = t->df;
	c->nblocks = (t->df + SOUSUO_BLOCK - 1) / SOUSUO_BLOCK;
	c->positional = fmt_key_positional(t->key);
	const uint8_t *p = t->blob;
	c->posdata = t->pos_end;
	if (c->positional) {
		uint64_t off;
		p = codec_varint_get(p, c->end, &off);
		if (!p || off > (uint64_t)(t->pos_end - t->pos_base))
			return corrupt(c);
		c->posdata = t->pos_base + off;
	}
	if (c->nblocks > 1) {
		uint64_t dir_bytes;
		p = codec_varint_get(p, c->end, &dir_bytes);
		if (!p || dir_bytes > (uint64_t)(c->end - p))
			return corrupt(c);
		c->dir = p;
		c->data = p + dir_bytes;
	} else {
		c->dir = p;
		c->data = p;
	}
	c->base = 0;
	c->block = 0;
	if (enter_block(c) || decode_block(c))
		return -1;
	c->doc = c->docs[0];
	return 0;
}

void pcur_free(pcur *c)
{
	free(c->pos);
	free(c->docpos);
	c->pos = c->docpos = NULL;
	c->pos_cap = c->docpos_cap = 0;
}

int pcur_block_next(pcur *c)
{
	if (c->doc == PCUR_END)
		return -1;
	if (c->nblocks == 1 && !c->decoded && decode_block(c))
		return -1;   /* its last document is only known once decoded */
	return next_block(c);
}

int pcur_block_load(pcur *c)
{
	if (!c->decoded && decode_block(c))
		return -1;
	c->i = 0;
	c->doc = c->docs[0];
	return 0;
}

uint32_t pcur_seek_slow(pcur *c, uint32_t target)
{
	if (c->doc == PCUR_END || target <= c->doc)
		return c->doc;
	/* skip whole blocks through the directory without decoding them */
	while (c->last < target || (c->decoded && c->docs[c->n - 1] < target)) {
		if (next_block(c))
			return PCUR_END;
	}
	if (!c->decoded && decode_block(c))
		return PCUR_END;
	uint32_t i = c->i;
	while (i < c->n && c->docs[i] < target)
		i++;
	if (i == c->n) {  /* only possible for a block whose last < target: handled above */
		return corrupt(c), PCUR_END;
	}
	if (i != c->i)
		c->i = i;
	c->doc = c->docs[i];
	return c->doc;
}

/* Sets up position decoding for the current block: prefix sums of the tfs
 * and room for the block's raw deltas. */
static int positions_setup(pcur *c)
{
	uint64_t total = 0;
	c->pos_start[0] = 0;
	for (uint32_t i = 0; i < c->n; i++) {
		total += c->tfs[i] - 1;
		if (total > UINT32_MAX / 2)
			return corrupt(c);
		c->pos_start[i + 1] = (uint32_t)total;
	}
	c->chunk_next = 0;
	c->pos_limit = c->nblocks == 1 ? c->pos_end : c->blkpos + c->pos_bytes;
	c->chunk_ptr = codec_unpack(c->blkpos, c->pos_limit, c->firsts, c->n);
	if (!c->chunk_ptr)
		return corrupt(c);
	/* Each run of up to SOUSUO_BLOCK deltas takes at least a byte, so the
	 * data bound the count; corrupt tfs alone would size the buffer below
	 * at up to 8 GB. */
	if (total > (uint64_t)(c->pos_limit - c->chunk_ptr) * SOUSUO_BLOCK)
		return corrupt(c);
	if (total > c->pos_cap) {
		uint32_t cap = (uint32_t)total + 64;
		uint32_t *p = realloc(c->pos, (size_t)cap * sizeof *p);
		if (!p)
			return corrupt(c);
		c->pos = p;
		c->pos_cap = cap;
	}
	c->docpos_i = UINT32_MAX;
	c->pos_ready = 1;
	return 0;
}

const uint32_t *pcur_positions(pcur *c, uint32_t *n)
{
	if (c->doc == PCUR_END || !c->positional)
		return NULL;
	if (!c->pos_ready && positions_setup(c))
		return NULL;
	uint32_t i = c->i, tf = c->tfs[i];
	*n = tf;
	if (c->docpos_i == i)
		return c->docpos;
	uint32_t first = c->pos_start[i], last = c->pos_start[i + 1];
	uint32_t total = c->pos_start[c->n];
	if (tf > c->docpos_cap) {
		uint32_t cap = tf + 64;
		uint32_t *p = realloc(c->docpos, (size_t)cap * sizeof *p);
		if (!p)
			return corrupt(c), NULL;
		c->docpos = p;
		c->docpos_cap = cap;
	}
	c->docpos[0] = c->firsts[i];
	c->docpos_i = i;
	if (tf == 1)
		return c->docpos;
	/* chunks wholly before this document's deltas are skipped */
	while (c->chunk_next < first / SOUSUO_BLOCK) {
		uint32_t k = c->chunk_next * SOUSUO_BLOCK, m = total - k < SOUSUO_BLOCK ? total - k : SOUSUO_BLOCK;
		if (!(c->chunk_ptr = codec_skip(c->chunk_ptr, c->pos_limit, m)))
			return corrupt(c), NULL;
		c->chunk_next++;
	}
	while (c->chunk_next <= (last - 1) / SOUSUO_BLOCK) {
		uint32_t k = c->chunk_next * SOUSUO_BLOCK, m = total - k < SOUSUO_BLOCK ? total - k : SOUSUO_BLOCK;
		if (!(c->chunk_ptr = codec_unpack(c->chunk_ptr, c->pos_limit, c->pos + k, m)))
			return corrupt(c), NULL;
		c->chunk_next++;
	}
	const uint32_t *raw = c->pos + first;
	uint64_t at = c->firsts[i];
	for (uint32_t j = 1; j < tf; j++) {
		at += (uint64_t)raw[j - 1] + 1;
		c->docpos[j] = (uint32_t)at;
	}
	if (at >= UINT32_MAX) {
		c->docpos_i = UINT32_MAX;
		return corrupt(c), NULL;
	}
	return c->docpos;
}
