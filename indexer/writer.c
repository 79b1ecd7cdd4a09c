/* writer.c — builds the index file (writer.h): writer_new, writer_add and
 * writer_free, and writer_finish, which encodes everything on several
 * threads and lays out the sections below.  The work itself is in
 * writer_tokenize.c, writer_postings.c, writer_store.c and writer_file.c
 * (private header writer_int.h, which also describes the threads).
 *
 * ON-DISK FORMAT, version 2 (also docs/INDEX-FORMAT.md; constants and fixed
 * records in format.h).  Little-endian throughout.
 *
 *   file      := header section*          sections start on 64-byte boundaries
 *   header    := fmt_header               magic "SOUSUOIX", version, counts,
 *                                         section table {offset, length, xxh3},
 *                                         xxh3 of the header itself
 *   DICTINDEX := fmt_group[ngroups]       {u64 first key, u32 DICT offset,
 *                                         u32 POSTINGS offset} per 16 terms
 *   DICT      := (entry[16])[ngroups]     entry: [varint key delta] varint df
 *                                         varint blob-bytes (format.h);
 *                                         key = kind:4 field:1 value:59
 *   POSTINGS  := term-blob*               one per term, in key order
 *   POSITIONS := position data of positional terms, in key order
 *   DOCS      := fmt_doc[ndocs]           lengths, date, store offsets, category
 *   CATEGORIES:= u32 n, u32 off[n+1], bytes   category paths, sorted
 *   ZDICT     := zstd dictionary (may be empty: then frames use no dictionary)
 *   STORE     := (meta-frame body-frame)[ndocs]   zstd frames
 *
 *   term-blob := [varint positions-offset]      positional kinds only: where
 *                                               the term's data starts in POSITIONS
 *                [varint dir-bytes directory]   only when nblocks > 1
 *                block[nblocks]                 nblocks = ceil(df / 128)
 *   directory := dir-entry[nblocks]
 *   dir-entry := varint last-doc-delta          last doc of this block minus last
 *                                               doc of the previous one (first: +1
 *                                               from -1, i.e. last doc + 1)
 *                varint block-bytes             bytes of this block in POSTINGS
 *                [varint pos-bytes]             positional: bytes of its positions
 *                varint max-tf                  largest tf in the block
 *                varint min-len                 smallest body length (tokens) of a
 *                                               document in the block: with max-tf
 *                                               an upper bound of any BM25 score
 *   block     := pack(doc-gap[n]) pack(tf-1[n])
 *                doc-gap: doc minus previous doc minus 1 (the first block's first:
 *                the doc itself; a later block's first: from the previous
 *                block's last doc)
 *   positions of a block := pack(first[n]) pack(pos-delta[k])*
 *                first: each document's first position, absolute;
 *                pos-delta: p[i]-p[i-1]-1 for every later position of every
 *                document, document after document, packed in runs of 128
 *                (the last shorter): sum(tf) - n values in all
 *   pack      := codec.c's PFOR block (n known from df / tf sums)
 *
 *   meta-frame: zstd( path NUL title NUL ext-id NUL )
 *   body-frame: zstd( body ), the searched text after Markdown cleanup
 *
 * A document's body is tokenized (text.h) into CJK characters and words with
 * positions.  Keys (keys.h): every token's own key (CJK: doc-level postings,
 * no positions; word: positional) and, for every two adjacent tokens of which
 * at least one is CJK, the pair's key (positional).  The document's short
 * name (corpus.h: short_title, else its title) is tokenized the same way into
 * keys with the title bit set: the title field.  Runs of 3 and 4 CJK
 * characters whose every pair is frequent and that occur in at least
 * ngram_min_df documents get keys of their own (ngrams.c): runs of 3 with
 * doc-level postings (FMT_KIND_NGRAM), runs of 4 with their start positions
 * (FMT_KIND_NGRAM4).  In the title field every run of 3 and 4 gets these
 * keys (writer_tokenize.c), frequent or not.
 *
 * Word, pair and n-gram keys are 59-bit hashes; two distinct words sharing one would
 * be one term.  The chance for this corpus (~300,000 keys) is below 1e-7 and
 * is not checked.
 */
#include "indexer/writer_int.h"
#include "indexer/limits.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- the writer ---- */

index_writer *writer_new(const writer_opts *opts)
{
	index_writer *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->opts.zstd_level = 6;
	w->opts.threads = 2;
	w->opts.zdict_bytes = 256 * 1024;
	if (opts) {
		if (opts->zstd_level)
			w->opts.zstd_level = opts->zstd_level;
		if (opts->threads > 0)
			w->opts.threads = opts->threads;
		if (opts->zdict_bytes)
			w->opts.zdict_bytes = opts->zdict_bytes;
		w->opts.ngram_min_df = opts->ngram_min_df;
	}
	if (w->opts.threads > WRITER_MAX_THREADS)
		w->opts.threads = WRITER_MAX_THREADS;
	pthread_mutex_init(&w->q_lock, NULL);
	pthread_cond_init(&w->q_cond, NULL);
	w->nwk = (size_t)w->opts.threads;
	w->wk = calloc(w->nwk, sizeof *w->wk);
	if (!w->wk) {
		writer_free(w);
		return NULL;
	}
	for (size_t i = 0; i < w->nwk; i++)
		if (worker_init(&w->wk[i], w)) {
			writer_free(w);
			return NULL;
		}
	if (w->nwk > 1)
		start_threads(w);  /* else writer_add tokenizes */
	return w;
}

void writer_free(index_writer *w)
{
	if (!w)
		return;
	stop_threads(w, 1);
	for (size_t i = 0; w->wk && i < w->nwk; i++)
		worker_free(&w->wk[i]);
	free(w->wk);
	while (w->q_head) {
		tjob *j = w->q_head;
		w->q_head = j->next;
		free(j);
	}
	free(w->cur);
	for (size_t i = 0; i < w->ndocs; i++) {
		bdoc *d = &w->docs[i];
		free(d->path);
		free(d->title);
		free(d->name);
		free(d->ext_id);
		free(d->body);
		free(d->category);
	}
	free(w->docs);
	pthread_mutex_destroy(&w->q_lock);
	pthread_cond_destroy(&w->q_cond);
	free(w);
}

static char *xstrdup(const char *s)
{
	return strdup(s ? s : "");
}

int writer_add(index_writer *w, const corpus_doc *doc, char *err, size_t errlen)
{
	if (w->finished || w->failed) {
		set_err(err, errlen, w->finished ? "the index was already finished"
		                                 : "an earlier document failed");
		return -1;
	}
	if (w->ndocs >= SOUSUO_MAX_DOCS) {
		set_err(err, errlen, "too many documents (limit %u)", SOUSUO_MAX_DOCS);
		return -1;
	}
	if (doc->body_len > SOUSUO_MAX_DOC_BYTES) {
		set_err(err, errlen, "%s: body of %zu bytes is over the limit of %u",
		        doc->path, doc->body_len, SOUSUO_MAX_DOC_BYTES);
		return -1;
	}
	if (w->ndocs == w->capdocs) {
		size_t cap = w->capdocs ? w->capdocs * 2 : 1024;
		bdoc *d = realloc(w->docs, cap * sizeof *d);
		if (!d)
			goto nomem;
		w->docs = d;
		w->capdocs = cap;
	}
	uint32_t id = (uint32_t)w->ndocs;
	bdoc *d = &w->docs[id];
	memset(d, 0, sizeof *d);
	d->path = xstrdup(doc->path);
	d->title = xstrdup(doc->title);
	d->ext_id = xstrdup(doc->ext_id);
	d->category = xstrdup(doc->category);
	d->body = malloc(doc->body_len + 1);
	/* the title field holds the short name a document is known by: "气象法"
	 * rather than "中华人民共和国气象法", so that a query for a law's name
	 * finds the law before the many documents that quote the name */
	int own_name = doc->short_title && *doc->short_title && d->title &&
	               strcmp(doc->short_title, d->title);
	if (own_name)
		d->name = strdup(doc->short_title);
	w->ndocs++;  /* owned from here on, freed by writer_free */
	if (!d->path || !d->title || !d->ext_id || !d->category || !d->body ||
	    (own_name && !d->name))
		goto nomem;
	memcpy(d->body, doc->body, doc->body_len);
	d->body[doc->body_len] = 0;
	d->body_len = doc->body_len;
	d->date = doc->date;
	w->raw_bytes += d->body_len;
	jdoc jd = { d->body, d->name ? d->name : d->title, d->body_len, 0, 0 };

	if (!w->nthreads) {
		if (tokenize_doc(&w->wk[0], id, &jd))
			goto nomem;
		d->body_tokens = jd.body_tokens;
		d->title_tokens = jd.title_tokens;
		return 0;
	}
	if (!w->cur) {
		if (!(w->cur = malloc(sizeof *w->cur)))
			goto nomem;
		w->cur->first = id;
		w->cur->n = 0;
		w->cur->bytes = 0;
	}
	tjob *j = w->cur;
	j->d[j->n++] = jd;
	j->bytes += jd.body_len;
	if (j->n == JOB_DOCS || j->bytes >= JOB_BYTES) {
		w->cur = NULL;
		if (queue_push(w, j))
			goto nomem;
	}
	return 0;
nomem:
	w->failed = 1;
	set_err(err, errlen, "out of memory");
	return -1;
}

/* ---- finishing: tasks on several threads ---- */

static void *finish_main(void *arg)
{
	finish_ctx *c = arg;
	for (;;) {
		pthread_mutex_lock(&c->t_lock);
		size_t i = c->next++;
		pthread_mutex_unlock(&c->t_lock);
		if (i == 0)
			dict_task(c);
		else if (i <= c->npost)
			post_task(c, &c->post[i - 1]);
		else if (i <= c->npost + c->nstore)
			store_task(c, &c->store[i - 1 - c->npost]);
		else
			break;
	}
	return NULL;
}

/* Runs every task of c on `threads` threads, the caller's among them. */
static void run_tasks(finish_ctx *c, int threads)
{
	pthread_t th[WRITER_MAX_THREADS];
	int started = 0;
	for (int i = 1; i < threads; i++) {
		if (pthread_create(&th[started], NULL, finish_main, c))
			break;
		started++;
	}
	finish_main(c);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
}

/* A term's share of the encoding work: its chain bytes and a little more. */
static uint64_t term_cost(const mterm *m, bterm *const *parts)
{
	uint64_t cost = 16;
	for (bterm *const *p = parts + m->part; *p && (*p)->key == m->key; p++)
		cost += (*p)->len;
	return cost;
}

/* Splits terms into pieces of about equal chain bytes, each starting on a
 * group boundary. */
static void split_terms(const mterm *mt, size_t nm, bterm *const *parts, post_piece *pc,
                        size_t np)
{
	uint64_t total = 0, acc = 0;
	for (size_t i = 0; i < nm; i++)
		total += term_cost(&mt[i], parts);
	size_t at = 0;
	for (size_t p = 0; p < np; p++) {
		pc[p].lo = at;
		uint64_t target = total / np * (p + 1);
		if (p == np - 1)
			at = nm;
		while (at < nm && (acc < target || at % FMT_GROUP))
			acc += term_cost(&mt[at++], parts);
		pc[p].hi = at;
	}
}

/* Splits documents into pieces of about equal body bytes. */
static int split_docs(const index_writer *w, store_piece *sp, size_t np)
{
	size_t per = w->raw_bytes / np + 1, at = 0;
	for (size_t i = 0; i < np; i++) {
		size_t acc = 0, lo = at;
		while (at < w->ndocs && (acc < per || i == np - 1))
			acc += w->docs[at++].body_len;
		sp[i].lo = lo;
		sp[i].hi = at;
		sp[i].frame_len = calloc(2 * (at - lo) + 1, sizeof(size_t));
		if (!sp[i].frame_len)
			return -1;
	}
	return 0;
}

/* ---- writer_finish ---- */

/* Returns what the writer has just freed to the system.  Not done by free:
 * glibc trims an arena only when its free top passes the trim threshold,
 * which follows the mmap threshold (up to 64 MB) once a large block has been
 * freed, so the tokenizing threads' freed term chunks and tables would stay
 * resident under the merged tables allocated next. */
static void give_back(void)
{
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}

/* Frees the terms and their chains once encoded (or when failing): the
 * blobs and the dictionary are still to be laid out, and need only mt. */
static void drop_terms(index_writer *w, bterm ***parts, bterm **ngt, size_t nngt)
{
	free(*parts);
	*parts = NULL;
	free_terms(*ngt, nngt);
	*ngt = NULL;
	for (size_t i = 0; i < w->nwk; i++) {
		free_terms(w->wk[i].terms, w->wk[i].nterms);
		w->wk[i].terms = NULL;
		w->wk[i].nterms = 0;
	}
}

int writer_finish(index_writer *w, const char *path, writer_stats *stats, char *err, size_t errlen)
{
	if (w->finished) {
		set_err(err, errlen, "the index was already finished");
		return -1;
	}
	w->finished = 1;
	double t0 = now();
	buf own[FMT_NSECTIONS];        /* sections built here in one piece */
	section secs[FMT_NSECTIONS];
	memset(own, 0, sizeof own);
	memset(secs, 0, sizeof secs);
	fmt_doc *fdocs = NULL;
	mterm *mt = NULL;
	bterm **parts = NULL, *ngt = NULL;   /* ngt: the n-gram terms' chains */
	size_t nm = 0, nngt = 0;
	int threads = w->opts.threads, rc = -1;
	finish_ctx c;
	memset(&c, 0, sizeof c);
	pthread_mutex_init(&c.t_lock, NULL);
	pthread_cond_init(&c.t_cond, NULL);
	buf *posn_parts = NULL, *store_parts = NULL;
	fmt_header h;
	memset(&h, 0, sizeof h);

	if (end_tokenizing(w))
		goto nomem;
	give_back();
	if (merge_terms(w, &mt, &nm, &parts) || add_ngrams(w, &mt, &nm, &parts, &ngt, &nngt))
		goto nomem;
	double t1 = now();
	uint64_t body_tokens = 0, title_tokens = 0, npositions = 0;
	for (size_t i = 0; i < w->ndocs; i++) {
		body_tokens += w->docs[i].body_tokens;
		title_tokens += w->docs[i].title_tokens;
	}
	for (size_t i = 0; i < w->nwk; i++)
		npositions += w->wk[i].npositions;

	/* pieces: several per thread so that they even out */
	c.w = w;
	c.mt = mt;
	c.parts = parts;
	c.zdict = &own[FMT_SEC_ZDICT];
	c.npost = threads == 1 ? 1 : 4 * (size_t)threads;
	c.nstore = threads == 1 ? 1 : 4 * (size_t)threads;
	if (c.nstore > w->ndocs)
		c.nstore = w->ndocs ? w->ndocs : 1;
	c.post = calloc(c.npost, sizeof *c.post);
	c.store = calloc(c.nstore, sizeof *c.store);
	fdocs = calloc(w->ndocs + 1, sizeof *fdocs);
	posn_parts = calloc(c.npost, sizeof *posn_parts);
	store_parts = calloc(c.nstore, sizeof *store_parts);
	if (!c.post || !c.store || !fdocs || !posn_parts || !store_parts ||
	    split_docs(w, c.store, c.nstore))
		goto nomem;
	split_terms(mt, nm, parts, c.post, c.npost);
	run_tasks(&c, threads);
	drop_terms(w, &parts, &ngt, nngt);
	give_back();
	for (size_t p = 0; p < c.npost; p++)
		if (c.post[p].failed)
			goto nomem;
	if (c.dict_state < 0)
		goto store_failed;
	for (size_t p = 0; p < c.nstore; p++)
		if (c.store[p].failed)
			goto store_failed;

	/* the postings pieces end to end, each blob behind its absolute
	 * positions offset; the dictionary */
	buf *dict = &own[FMT_SEC_DICT], *dindex = &own[FMT_SEC_DICTINDEX], *post = &own[FMT_SEC_POSTINGS];
	uint64_t posn_base = 0;
	for (size_t p = 0; p < c.npost; p++) {
		post_piece *pc = &c.post[p];
		const uint8_t *src = pc->post.p;
		if (buf_reserve(post, pc->post.len + (pc->hi - pc->lo) * CODEC_VARINT_MAX))
			goto nomem;
		for (size_t i = pc->lo; i < pc->hi; i++) {
			const mterm *m = &mt[i];
			size_t before = post->len;
			if (before > UINT32_MAX || dict->len > UINT32_MAX) {
				set_err(err, errlen, "dictionary or postings over 4 GiB: split the corpus");
				goto out;
			}
			if (i % FMT_GROUP == 0) {
				fmt_group g = { m->key, (uint32_t)dict->len, (uint32_t)before };
				if (buf_put(dindex, &g, sizeof g))
					goto nomem;
			} else if (buf_varint(dict, m->key - mt[i - 1].key)) {
				goto nomem;
			}
			if ((fmt_key_positional(m->key) && buf_varint(post, posn_base + m->posn)) ||
			    buf_put(post, src, m->blob) || buf_varint(dict, m->df) ||
			    buf_varint(dict, post->len - before))
				goto nomem;
			src += m->blob;
		}
		buf_free(&pc->post);
		posn_parts[p] = pc->posn;
		posn_base += pc->posn.len;
	}

	for (size_t i = 0; i < w->ndocs; i++) {
		fdocs[i].body_tokens = w->docs[i].body_tokens;
		fdocs[i].title_tokens = (uint16_t)w->docs[i].title_tokens;
		fdocs[i].date = w->docs[i].date;
	}
	uint32_t ncat = 0;
	if (build_categories(w, &own[FMT_SEC_CATEGORIES], fdocs, &ncat))
		goto nomem;
	uint64_t off = 0;
	for (size_t p = 0; p < c.nstore; p++) {
		store_piece *sp = &c.store[p];
		for (size_t k = sp->lo; k < sp->hi; k++) {
			fmt_doc *f = &fdocs[k];
			f->store = off;
			f->meta_bytes = (uint32_t)sp->frame_len[2 * (k - sp->lo)];
			f->body_bytes = (uint32_t)sp->frame_len[2 * (k - sp->lo) + 1];
			off += f->meta_bytes + f->body_bytes;
		}
		store_parts[p] = sp->out;
	}
	if (buf_put(&own[FMT_SEC_DOCS], fdocs, w->ndocs * sizeof *fdocs))
		goto nomem;
	for (int s = 0; s < FMT_NSECTIONS; s++) {
		if (s == FMT_SEC_POSITIONS) {
			secs[s].part = posn_parts;
			secs[s].nparts = c.npost;
		} else if (s == FMT_SEC_STORE) {
			secs[s].part = store_parts;
			secs[s].nparts = c.nstore;
		} else {
			secs[s].part = &own[s];
			secs[s].nparts = 1;
		}
		for (size_t i = 0; i < secs[s].nparts; i++)
			secs[s].len += secs[s].part[i].len;
	}
	double t2 = now();

	h.magic = FMT_MAGIC;
	h.version = FMT_VERSION;
	h.header_bytes = sizeof h;
	h.ndocs = (uint32_t)w->ndocs;
	h.ncategories = ncat;
	h.nterms = nm;
	h.body_tokens = body_tokens;
	h.title_tokens = title_tokens;
	h.created = (uint64_t)time(NULL);
	h.block = SOUSUO_BLOCK;
	h.nsections = FMT_NSECTIONS;
	if (write_file(path, &h, secs, err, errlen))
		goto out;
	if (stats) {
		memset(stats, 0, sizeof *stats);
		stats->docs = h.ndocs;
		stats->terms = h.nterms;
		stats->body_tokens = h.body_tokens;
		stats->positions = npositions;
		for (int i = 0; i < FMT_NSECTIONS; i++)
			stats->section_bytes[i] = secs[i].len;
		stats->file_bytes = h.file_bytes;
		stats->raw_bytes = w->raw_bytes;
		stats->ngrams = nngt;
		for (size_t i = 0; i < nm; i++)
			stats->postings += mt[i].df;
		stats->tokenize_wait_seconds = t1 - t0;
		stats->encode_seconds = t2 - t1;
		stats->write_seconds = now() - t2;
	}
	rc = 0;
	goto out;
store_failed:
	set_err(err, errlen, "compressing the document store failed");
	goto out;
nomem:
	set_err(err, errlen, "out of memory");
out:
	for (int i = 0; i < FMT_NSECTIONS; i++)
		buf_free(&own[i]);
	for (size_t p = 0; c.post && p < c.npost; p++) {
		buf_free(&c.post[p].post);
		buf_free(&c.post[p].posn);
	}
	for (size_t p = 0; c.store && p < c.nstore; p++) {
		buf_free(&c.store[p].out);
		free(c.store[p].frame_len);
	}
	free(c.post);
	free(c.store);
	ZSTD_freeCDict(c.cdict);
	pthread_mutex_destroy(&c.t_lock);
	pthread_cond_destroy(&c.t_cond);
	free(posn_parts);
	free(store_parts);
	free(mt);
	free(fdocs);
	drop_terms(w, &parts, &ngt, nngt);
	return rc;
}
