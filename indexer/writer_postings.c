/* writer_postings.c — the index's terms: the threads' tables merged by key,
 * the n-gram terms, and each term's chains decoded and encoded into blocks.
 * Called by writer.c (writer_int.h). */
#include "indexer/writer_int.h"
#include "indexer/limits.h"
#include "indexer/ngrams.h"

#include <stdlib.h>
#include <string.h>

/* ---- merging the threads' terms ---- */

/* Merges the sealed workers' sorted term arrays by key. */
int merge_terms(index_writer *w, mterm **out, size_t *nout, bterm ***outparts)
{
	size_t total = 0, nm = 0, np = 0;
	for (size_t i = 0; i < w->nwk; i++)
		total += w->wk[i].nterms;
	mterm *mt = malloc((total + 1) * sizeof *mt);
	bterm **parts = malloc((total + 1) * sizeof *parts);
	size_t *cur = calloc(w->nwk, sizeof *cur);
	if (!mt || !parts || !cur) {
		free(mt);
		free(parts);
		free(cur);
		return -1;
	}
	for (;;) {
		int any = 0;
		uint64_t k = 0;
		for (size_t i = 0; i < w->nwk; i++)
			if (cur[i] < w->wk[i].nterms && (!any || w->wk[i].terms[cur[i]].key < k)) {
				k = w->wk[i].terms[cur[i]].key;
				any = 1;
			}
		if (!any)
			break;
		mterm *m = &mt[nm++];
		memset(m, 0, sizeof *m);
		m->key = k;
		m->part = (uint32_t)np;
		for (size_t i = 0; i < w->nwk; i++)
			if (cur[i] < w->wk[i].nterms && w->wk[i].terms[cur[i]].key == k) {
				bterm *t = &w->wk[i].terms[cur[i]++];
				parts[np++] = t;
				m->df += t->df;
			}
	}
	parts[np] = NULL;
	free(cur);
	*out = mt;
	*nout = nm;
	*outparts = parts;
	return 0;
}

/* ---- n-gram terms ---- */

/* Adds the doc-level terms of frequent runs of 3-4 CJK characters
 * (ngrams.h) to the merged term list, keeping it sorted by key.  Their
 * chains are built in the CJK terms' format (doc gap, tf) and owned by
 * *ng (n of them), freed by the caller. */
int add_ngrams(index_writer *w, mterm **pmt, size_t *pnm, bterm ***pparts,
                      bterm **ng, size_t *nng)
{
	uint32_t min_df = w->opts.ngram_min_df;
	if (!min_df)
		min_df = w->ndocs / 16 > 16 ? (uint32_t)(w->ndocs / 16) : 16;
	*ng = NULL;
	*nng = 0;
	if (min_df == UINT32_MAX || w->ndocs < min_df)
		return 0;
	mterm *mt = *pmt;
	size_t nm = *pnm, npairs = 0;
	size_t nparts = nm ? mt[nm - 1].part + mterm_nparts(&mt[nm - 1], *pparts) : 0;
	uint64_t *pairs = malloc((nm + 1) * sizeof *pairs);
	const char **bodies = malloc((w->ndocs + 1) * sizeof *bodies);
	size_t *lens = malloc((w->ndocs + 1) * sizeof *lens);
	ngram_result r = { 0 };
	int rc = -1;
	if (!pairs || !bodies || !lens)
		goto out;
	for (size_t i = 0; i < nm; i++)
		if (fmt_key_kind(mt[i].key) == FMT_KIND_BIGRAM && !(mt[i].key & FMT_KEY_TITLE) &&
		    mt[i].df >= min_df)
			pairs[npairs++] = mt[i].key;
	for (size_t i = 0; i < w->ndocs; i++) {
		bodies[i] = w->docs[i].body;
		lens[i] = w->docs[i].body_len;
	}
	if (ngrams_collect(bodies, lens, (uint32_t)w->ndocs, pairs, npairs, min_df,
	                   w->opts.threads, &r))
		goto out;
	if (r.n == 0) {
		rc = 0;
		goto out;
	}
	bterm *nt = calloc(r.n, sizeof *nt);
	mterm *out = malloc((nm + r.n) * sizeof *out);
	bterm **parts = realloc(*pparts, (nparts + r.n + 1) * sizeof *parts);
	if (parts)
		*pparts = parts;
	if (!nt || !out || !parts) {
		free(nt);
		free(out);
		goto out;
	}
	*ng = nt;
	*nng = r.n;
	for (size_t i = 0; i < r.n; i++) {
		const ngram_list *l = &r.lists[i];
		buf ch = { 0 };
		uint32_t prev = UINT32_MAX;
		const uint32_t *pos = l->pos;
		int bad = 0;
		for (uint32_t k = 0; k < l->df && !bad; k++) {
			uint32_t gap = l->docs[k] - prev - 1;
			prev = l->docs[k];
			if (!pos) {   /* the CJK terms' chain: (doc gap, tf) */
				bad = buf_varint(&ch, gap) || buf_varint(&ch, l->tfs[k]);
				continue;
			}
			/* the positional chain: (gap << 1 | 1, first), then deltas << 1 */
			bad = buf_varint(&ch, ((uint64_t)gap << 1) | 1) || buf_varint(&ch, pos[0]);
			for (uint32_t m = 1; m < l->tfs[k] && !bad; m++)
				bad = buf_varint(&ch, (uint64_t)(pos[m] - pos[m - 1]) << 1);
			pos += l->tfs[k];
		}
		if (bad) {
			buf_free(&ch);
			free(out);
			goto out;
		}
		nt[i].key = l->key;
		nt[i].len = (uint32_t)ch.len;
		if (ch.len > CHAIN_INLINE) {
			nt[i].chain.p = ch.p;
		} else {
			memcpy(nt[i].chain.in, ch.p, ch.len);
			buf_free(&ch);
		}
		nt[i].df = l->df;
		parts[nparts + i] = &nt[i];
	}
	parts[nparts + r.n] = NULL;
	/* merge by key: n-gram keys are of their own kind, never equal */
	size_t a = 0, b = 0, o = 0;
	while (a < nm || b < r.n) {
		if (b == r.n || (a < nm && mt[a].key < r.lists[b].key)) {
			out[o++] = mt[a++];
		} else {
			mterm m = { 0 };
			m.key = r.lists[b].key;
			m.part = (uint32_t)(nparts + b);
			m.df = r.lists[b].df;
			out[o++] = m;
			b++;
		}
	}
	free(mt);
	*pmt = out;
	*pnm = o;
	rc = 0;
out:
	ngram_result_free(&r);
	free(pairs);
	free(bodies);
	free(lens);
	return rc;
}

/* ---- encoding postings ---- */

/* Decoded postings of one term: docs[nd], tfs[nd], pos[np]. */
typedef struct {
	uint32_t *docs, *tfs, *pos;
	size_t cap_docs, cap_pos;
	size_t nd, np;
} scratch;

static int scratch_fit(scratch *s, size_t ndocs, size_t npos)
{
	if (ndocs > s->cap_docs) {
		size_t cap = ndocs * 2;
		uint32_t *a = realloc(s->docs, cap * sizeof *a), *b;
		if (!a)
			return -1;
		s->docs = a;
		b = realloc(s->tfs, cap * sizeof *b);
		if (!b)
			return -1;
		s->tfs = b;
		s->cap_docs = cap;
	}
	if (npos > s->cap_pos) {
		size_t cap = npos * 2;
		uint32_t *a = realloc(s->pos, cap * sizeof *a);
		if (!a)
			return -1;
		s->pos = a;
		s->cap_pos = cap;
	}
	return 0;
}

static void scratch_free(scratch *s)
{
	free(s->docs);
	free(s->tfs);
	free(s->pos);
}

/* Decodes a chain, appending to s. */
static int chain_decode(const bterm *t, scratch *s)
{
	const uint8_t *p = chain_bytes(t), *end = p + t->len;
	size_t nd = s->nd, np = s->np;
	uint32_t doc = UINT32_MAX;
	uint64_t v;
	if (!fmt_key_positional(t->key)) {
		if (scratch_fit(s, nd + t->df, 0))
			return -1;
		while (p < end) {
			p = codec_varint_get(p, end, &v);
			doc = doc + 1 + (uint32_t)v;
			p = codec_varint_get(p, end, &v);
			s->docs[nd] = doc;
			s->tfs[nd++] = (uint32_t)v;
		}
		s->nd = nd;
		return 0;
	}
	/* positions: at most len of chain values */
	if (scratch_fit(s, nd + t->df, np + t->len))
		return -1;
	uint32_t pos = 0;
	while (p < end) {
		p = codec_varint_get(p, end, &v);
		if (v & 1) {
			doc = doc + 1 + (uint32_t)(v >> 1);
			p = codec_varint_get(p, end, &v);
			pos = (uint32_t)v;
			s->docs[nd] = doc;
			s->tfs[nd++] = 1;
		} else {
			pos += (uint32_t)(v >> 1);
			s->tfs[nd - 1]++;
		}
		s->pos[np++] = pos;
	}
	s->nd = nd;
	s->np = np;
	return 0;
}

/* Decodes a term's chains into s in document order: one chain directly,
 * several (each a subset of the documents, in order) through raw. */
static int term_decode(const mterm *m, bterm *const *parts, scratch *s, scratch *raw)
{
	s->nd = s->np = 0;
	uint32_t n = mterm_nparts(m, parts);
	if (n == 1)
		return chain_decode(parts[m->part], s);
	size_t d0[WRITER_MAX_THREADS + 1], p0[WRITER_MAX_THREADS + 1];
	size_t dc[WRITER_MAX_THREADS], pc[WRITER_MAX_THREADS];
	raw->nd = raw->np = 0;
	for (uint32_t j = 0; j < n; j++) {
		dc[j] = d0[j] = raw->nd;
		pc[j] = p0[j] = raw->np;
		if (chain_decode(parts[m->part + j], raw))
			return -1;
	}
	d0[n] = raw->nd;
	if (scratch_fit(s, raw->nd, raw->np))
		return -1;
	int positional = fmt_key_positional(m->key);
	for (size_t nd = 0; nd < raw->nd; nd++) {
		uint32_t best = UINT32_MAX, bj = 0;
		for (uint32_t j = 0; j < n; j++)
			if (dc[j] < d0[j + 1] && raw->docs[dc[j]] <= best) {
				best = raw->docs[dc[j]];
				bj = j;
			}
		uint32_t tf = raw->tfs[dc[bj]++];
		s->docs[nd] = best;
		s->tfs[nd] = tf;
		if (positional) {
			memcpy(s->pos + s->np, raw->pos + pc[bj], tf * sizeof *s->pos);
			pc[bj] += tf;
			s->np += tf;
		}
	}
	s->nd = raw->nd;
	return 0;
}

static int pack_into(buf *b, const uint32_t *v, size_t n)
{
	if (buf_reserve(b, codec_pack_bound(n)))
		return -1;
	b->len += codec_pack(v, n, b->p + b->len);
	return 0;
}

/* Encodes one term (decoded into s) into post (its blob but for the leading
 * positions offset, which the caller writes) and posn (its positions).  blk,
 * blkpos and dir are scratch buffers. */
static int encode_term(uint64_t key, const scratch *s, const bdoc *docs,
                       buf *post, buf *posn, buf *blk, buf *blkpos, buf *dir)
{
	int positional = fmt_key_positional(key);
	uint32_t df = (uint32_t)s->nd;
	size_t nblocks = (df + SOUSUO_BLOCK - 1) / SOUSUO_BLOCK;
	uint32_t tmp[SOUSUO_BLOCK];

	blk->len = 0;
	blkpos->len = 0;
	dir->len = 0;
	uint32_t prev_last = UINT32_MAX;   /* "doc -1" */
	size_t pi = 0;
	/* block data goes to blk/blkpos first so the directory can precede it */
	for (size_t b = 0; b < nblocks; b++) {
		size_t lo = b * SOUSUO_BLOCK, n = df - lo < SOUSUO_BLOCK ? df - lo : SOUSUO_BLOCK;
		uint32_t prev = prev_last, max_tf = 0, min_len = UINT32_MAX;
		size_t blk_start = blk->len, pos_start = blkpos->len;
		for (size_t i = 0; i < n; i++) {
			uint32_t d = s->docs[lo + i];
			tmp[i] = d - prev - 1;
			prev = d;
			if (s->tfs[lo + i] > max_tf)
				max_tf = s->tfs[lo + i];
			if (docs[d].body_tokens < min_len)
				min_len = docs[d].body_tokens;
		}
		if (pack_into(blk, tmp, n))
			return -1;
		size_t sum = 0;
		for (size_t i = 0; i < n; i++) {
			tmp[i] = s->tfs[lo + i] - 1;
			sum += s->tfs[lo + i];
		}
		if (pack_into(blk, tmp, n))
			return -1;
		if (positional) {
			/* first positions of the block's documents, then the
			 * other positions' deltas, document after document: the
			 * large first values stay out of the delta chunks */
			size_t k = 0;
			for (size_t i = 0; i < n; i++) {
				tmp[i] = s->pos[pi + k];
				k += s->tfs[lo + i];
			}
			if (pack_into(blkpos, tmp, n))
				return -1;
			size_t nd = 0;
			k = 0;
			for (size_t i = 0; i < n; i++) {
				uint32_t last = s->pos[pi + k];
				k++;
				for (uint32_t j = 1; j < s->tfs[lo + i]; j++, k++) {
					uint32_t p = s->pos[pi + k];
					tmp[nd++ % SOUSUO_BLOCK] = p - last - 1;
					last = p;
					if (nd % SOUSUO_BLOCK == 0 && pack_into(blkpos, tmp, SOUSUO_BLOCK))
						return -1;
				}
			}
			if (nd % SOUSUO_BLOCK && pack_into(blkpos, tmp, nd % SOUSUO_BLOCK))
				return -1;
			pi += sum;
		}
		if (nblocks > 1) {
			if (buf_varint(dir, (uint32_t)(prev - prev_last)) ||
			    buf_varint(dir, blk->len - blk_start) ||
			    (positional && buf_varint(dir, blkpos->len - pos_start)) ||
			    buf_varint(dir, max_tf) || buf_varint(dir, min_len))
				return -1;
		}
		prev_last = prev;
	}
	/* the directory's length first, so a reader finds the blocks without
	 * walking it */
	if ((nblocks > 1 && buf_varint(post, dir->len)) || buf_put(post, dir->p, dir->len) ||
	    buf_put(post, blk->p, blk->len))
		return -1;
	if (positional && buf_put(posn, blkpos->p, blkpos->len))
		return -1;
	return 0;
}

/* A finishing task: encodes the terms of one piece, freeing their chains. */
void post_task(finish_ctx *c, post_piece *pc)
{
	scratch s = { 0 }, raw = { 0 };
	buf blk = { 0 }, blkpos = { 0 }, dir = { 0 };
	for (size_t i = pc->lo; i < pc->hi; i++) {
		mterm *m = &c->mt[i];
		size_t post0 = pc->post.len, posn0 = pc->posn.len;
		if (term_decode(m, c->parts, &s, &raw) ||
		    encode_term(m->key, &s, c->w->docs, &pc->post, &pc->posn, &blk, &blkpos, &dir)) {
			pc->failed = 1;
			break;
		}
		m->blob = pc->post.len - post0;
		m->posn = posn0;
		for (uint32_t j = 0, n = mterm_nparts(m, c->parts); j < n; j++)
			chain_free(c->parts[m->part + j]);
	}
	scratch_free(&s);
	scratch_free(&raw);
	buf_free(&blk);
	buf_free(&blkpos);
	buf_free(&dir);
}
