/* writer_store.c — the document store: its zstd dictionary and each
 * document's compressed frames.  Called by writer.c (writer_int.h). */
#define ZDICT_STATIC_LINKING_ONLY  /* ZDICT_trainFromBuffer_fastCover */
#include "indexer/writer_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zdict.h>
#include <zstd.h>

/* ---- the document store ---- */

/* Trains a dictionary on samples of the bodies: the first 4 KiB of documents
 * spread over the corpus, at most 12 MiB in all.  Leaves dict empty when the
 * corpus is too small to train on (a dictionary is an optimisation).
 * fastCover with fixed parameters: ZDICT_trainFromBuffer's search over k
 * took 1.4 s on the laws corpus, this takes 0.2 s and its dictionary
 * compresses the store 1.6% better (k 100, d 6, f 18 were the best of
 * k 32..200, d 6 or 8, f 18..22 there). */
static int train_dict(const index_writer *w, buf *dict)
{
	const size_t per_doc = 4096, budget = 12u << 20;
	size_t total = 0;
	for (size_t i = 0; i < w->ndocs; i++)
		total += w->docs[i].body_len < per_doc ? w->docs[i].body_len : per_doc;
	if (total < 32 * w->opts.zdict_bytes || w->ndocs < 16)
		return 0;
	size_t step = total > budget ? (total + budget - 1) / budget : 1;
	buf samples = { 0 };
	size_t *sizes = calloc(w->ndocs, sizeof *sizes), ns = 0;
	if (!sizes)
		return -1;
	for (size_t i = 0; i < w->ndocs; i += step) {
		size_t n = w->docs[i].body_len < per_doc ? w->docs[i].body_len : per_doc;
		if (!n)
			continue;
		if (buf_put(&samples, w->docs[i].body, n)) {
			free(sizes);
			buf_free(&samples);
			return -1;
		}
		sizes[ns++] = n;
	}
	if (buf_reserve(dict, w->opts.zdict_bytes)) {
		free(sizes);
		buf_free(&samples);
		return -1;
	}
	ZDICT_fastCover_params_t p;
	memset(&p, 0, sizeof p);
	p.k = 100;
	p.d = 6;
	p.f = 18;
	p.accel = 1;
	p.nbThreads = 1;
	size_t r = ZDICT_trainFromBuffer_fastCover(dict->p, w->opts.zdict_bytes, samples.p, sizes,
	                                           (unsigned)ns, p);
	dict->len = ZDICT_isError(r) ? 0 : r;
	free(sizes);
	buf_free(&samples);
	return 0;
}

static int compress_frame(ZSTD_CCtx *cc, const ZSTD_CDict *cd, int level, buf *out,
                          const void *src, size_t n, size_t *len)
{
	size_t bound = ZSTD_compressBound(n);
	if (buf_reserve(out, bound))
		return -1;
	size_t r = cd ? ZSTD_compress_usingCDict(cc, out->p + out->len, bound, src, n, cd)
	              : ZSTD_compressCCtx(cc, out->p + out->len, bound, src, n, level);
	if (ZSTD_isError(r))
		return -1;
	out->len += r;
	*len = r;
	return 0;
}

/* A finishing task: trains the dictionary, then lets the store tasks go on. */
void dict_task(finish_ctx *c)
{
	int ok = !train_dict(c->w, c->zdict);
	if (ok && c->zdict->len) {
		c->cdict = ZSTD_createCDict(c->zdict->p, c->zdict->len, c->w->opts.zstd_level);
		ok = c->cdict != NULL;
	}
	pthread_mutex_lock(&c->t_lock);
	c->dict_state = ok ? 1 : -1;
	pthread_cond_broadcast(&c->t_cond);
	pthread_mutex_unlock(&c->t_lock);
}

/* A finishing task: compresses one piece's documents once the dictionary is
 * ready. */
void store_task(finish_ctx *c, store_piece *sp)
{
	pthread_mutex_lock(&c->t_lock);
	while (!c->dict_state)
		pthread_cond_wait(&c->t_cond, &c->t_lock);
	int state = c->dict_state;
	pthread_mutex_unlock(&c->t_lock);
	ZSTD_CCtx *cc = state > 0 ? ZSTD_createCCtx() : NULL;
	buf meta = { 0 };
	int level = c->w->opts.zstd_level;
	if (!cc)
		sp->failed = 1;
	for (size_t i = sp->lo; i < sp->hi && !sp->failed; i++) {
		const bdoc *d = &c->w->docs[i];
		meta.len = 0;
		if (buf_put(&meta, d->path, strlen(d->path) + 1) ||
		    buf_put(&meta, d->title, strlen(d->title) + 1) ||
		    buf_put(&meta, d->ext_id, strlen(d->ext_id) + 1) ||
		    compress_frame(cc, c->cdict, level, &sp->out, meta.p, meta.len,
		                   &sp->frame_len[2 * (i - sp->lo)]) ||
		    compress_frame(cc, c->cdict, level, &sp->out, d->body, d->body_len,
		                   &sp->frame_len[2 * (i - sp->lo) + 1]))
			sp->failed = 1;
	}
	buf_free(&meta);
	ZSTD_freeCCtx(cc);
}
