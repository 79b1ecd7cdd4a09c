/* writer.c — builds the index file: tokenizes documents, accumulates postings
 * in memory, encodes them into blocks and writes the file atomically.
 *
 * ON-DISK FORMAT, version 1 (also docs/INDEX-FORMAT.md; constants and fixed
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
 * keys with the title bit set: the title field.
 *
 * Word and pair keys are 59-bit hashes; two distinct words sharing one would
 * be one term.  The chance for this corpus (~300,000 keys) is below 1e-7 and
 * is not checked.
 */
#include "indexer/writer.h"
#include "indexer/codec.h"
#include "indexer/format.h"
#include "indexer/keys.h"
#include "indexer/limits.h"
#include "indexer/text.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include <zdict.h>
#include <zstd.h>

/* One growable byte buffer. */
typedef struct {
	uint8_t *p;
	size_t len, cap;
} buf;

static int buf_reserve(buf *b, size_t more)
{
	if (b->len + more <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->len + more)
		cap *= 2;
	uint8_t *p = realloc(b->p, cap);
	if (!p)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

static int buf_put(buf *b, const void *data, size_t n)
{
	if (n == 0)
		return 0;
	if (buf_reserve(b, n))
		return -1;
	memcpy(b->p + b->len, data, n);
	b->len += n;
	return 0;
}

static int buf_varint(buf *b, uint64_t v)
{
	if (buf_reserve(b, CODEC_VARINT_MAX))
		return -1;
	b->len += codec_varint_put(b->p + b->len, v);
	return 0;
}

/* A term being built.  Its postings accumulate in `chain` as a varint stream:
 * positional terms: per occurrence v = (delta << 1) | new_doc, where a new
 * document's record is (doc gap << 1 | 1) followed by its first position and
 * later positions are (p - previous p) << 1; CJK terms: per document (doc gap,
 * tf), written when the document ends. */
typedef struct {
	uint64_t key;
	uint8_t *chain;
	uint32_t len, cap;
	uint32_t df;
	uint32_t last_doc;     /* UINT32_MAX before the first */
	uint32_t last_pos;
	uint32_t tf;           /* CJK terms: occurrences in the current document */
} bterm;

typedef struct {
	char *path, *title, *ext_id, *body;
	size_t body_len;
	uint32_t date;
	uint32_t body_tokens, title_tokens;
	char *category;
} bdoc;

struct index_writer {
	writer_opts opts;
	text_tokenizer *tk;
	/* key -> term index, open addressing, power-of-two slots */
	uint32_t *slots;
	size_t nslots;
	bterm *terms;
	size_t nterms, capterms;
	uint32_t *touched;     /* CJK terms seen in the current document */
	size_t ntouched, captouched;
	bdoc *docs;
	size_t ndocs, capdocs;
	uint64_t body_tokens, title_tokens, raw_bytes, npositions;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

index_writer *writer_new(const writer_opts *opts)
{
	index_writer *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->opts.zstd_level = 6;
	w->opts.threads = 2;
	w->opts.zdict_bytes = 112 * 1024;
	if (opts) {
		if (opts->zstd_level)
			w->opts.zstd_level = opts->zstd_level;
		if (opts->threads > 0)
			w->opts.threads = opts->threads;
		if (opts->zdict_bytes)
			w->opts.zdict_bytes = opts->zdict_bytes;
	}
	w->tk = text_tokenizer_new();
	w->nslots = 1u << 16;
	w->slots = calloc(w->nslots, sizeof *w->slots);
	if (!w->tk || !w->slots) {
		writer_free(w);
		return NULL;
	}
	return w;
}

void writer_free(index_writer *w)
{
	if (!w)
		return;
	text_tokenizer_free(w->tk);
	free(w->slots);
	for (size_t i = 0; i < w->nterms; i++)
		free(w->terms[i].chain);
	free(w->terms);
	free(w->touched);
	for (size_t i = 0; i < w->ndocs; i++) {
		bdoc *d = &w->docs[i];
		free(d->path);
		free(d->title);
		free(d->ext_id);
		free(d->body);
		free(d->category);
	}
	free(w->docs);
	free(w);
}

static inline size_t slot_of(uint64_t key, size_t mask)
{
	/* keys of CJK terms are small dense integers: mix before masking */
	key ^= key >> 29;
	key *= 0xbf58476d1ce4e5b9ull;
	key ^= key >> 32;
	return (size_t)key & mask;
}

static int grow_slots(index_writer *w)
{
	size_t n = w->nslots * 2, mask = n - 1;
	uint32_t *s = calloc(n, sizeof *s);
	if (!s)
		return -1;
	for (size_t t = 0; t < w->nterms; t++) {
		size_t i = slot_of(w->terms[t].key, mask);
		while (s[i])
			i = (i + 1) & mask;
		s[i] = (uint32_t)t + 1;
	}
	free(w->slots);
	w->slots = s;
	w->nslots = n;
	return 0;
}

/* Returns the term for key, creating it; NULL when out of memory. */
static bterm *term_get(index_writer *w, uint64_t key)
{
	size_t mask = w->nslots - 1, i = slot_of(key, mask);
	for (;;) {
		uint32_t t = w->slots[i];
		if (!t)
			break;
		if (w->terms[t - 1].key == key)
			return &w->terms[t - 1];
		i = (i + 1) & mask;
	}
	if ((w->nterms + 1) * 2 > w->nslots) {
		if (grow_slots(w))
			return NULL;
		return term_get(w, key);
	}
	if (w->nterms == w->capterms) {
		size_t cap = w->capterms ? w->capterms * 2 : 4096;
		bterm *t = realloc(w->terms, cap * sizeof *t);
		if (!t)
			return NULL;
		w->terms = t;
		w->capterms = cap;
	}
	bterm *t = &w->terms[w->nterms];
	memset(t, 0, sizeof *t);
	t->key = key;
	t->last_doc = UINT32_MAX;
	w->slots[i] = (uint32_t)++w->nterms;
	return t;
}

static int chain_varint(bterm *t, uint64_t v)
{
	if (t->len + CODEC_VARINT_MAX > t->cap) {
		uint32_t cap = t->cap ? t->cap * 2 : 16;
		uint8_t *p = realloc(t->chain, cap);
		if (!p)
			return -1;
		t->chain = p;
		t->cap = cap;
	}
	t->len += (uint32_t)codec_varint_put(t->chain + t->len, v);
	return 0;
}

/* Records one occurrence of key at pos in document doc. */
static int occur(index_writer *w, uint64_t key, uint32_t doc, uint32_t pos)
{
	bterm *t = term_get(w, key);
	if (!t)
		return -1;
	if (!fmt_key_positional(key)) {
		if (t->last_doc != doc) {
			if (w->ntouched == w->captouched) {
				size_t cap = w->captouched ? w->captouched * 2 : 1024;
				uint32_t *p = realloc(w->touched, cap * sizeof *p);
				if (!p)
					return -1;
				w->touched = p;
				w->captouched = cap;
			}
			w->touched[w->ntouched++] = (uint32_t)(t - w->terms);
			t->df++;
			t->tf = 0;
			t->last_pos = t->last_doc;  /* remember the previous doc for the gap */
			t->last_doc = doc;
		}
		t->tf++;
		return 0;
	}
	w->npositions++;
	if (t->last_doc != doc) {
		uint32_t gap = doc - (t->last_doc + 1);  /* UINT32_MAX + 1 wraps to 0 */
		t->df++;
		t->last_doc = doc;
		t->last_pos = pos;
		if (chain_varint(t, ((uint64_t)gap << 1) | 1) || chain_varint(t, pos))
			return -1;
		return 0;
	}
	uint32_t delta = pos - t->last_pos;
	t->last_pos = pos;
	return chain_varint(t, (uint64_t)delta << 1);
}

/* Writes (doc gap, tf) of every CJK term the document touched. */
static int flush_touched(index_writer *w)
{
	for (size_t i = 0; i < w->ntouched; i++) {
		bterm *t = &w->terms[w->touched[i]];
		uint32_t gap = t->last_doc - (t->last_pos + 1);
		if (chain_varint(t, gap) || chain_varint(t, t->tf))
			return -1;
	}
	w->ntouched = 0;
	return 0;
}

/* Tokenizes text into keys (with the title bit when title) for document doc;
 * returns the token count or -1. */
static int64_t index_text(index_writer *w, const char *text, size_t len, uint32_t doc, int title)
{
	text_token tok;
	uint64_t prev_key = 0;
	uint32_t prev_pos = 0;
	int64_t n = 0;
	text_tokenizer_reset(w->tk, text, len);
	while (text_tokenizer_next(w->tk, &tok)) {
		uint64_t key = keys_token(tok.kind, tok.cp, tok.word, tok.word_len);
		uint64_t k = title ? keys_title(key) : key;
		if (occur(w, k, doc, tok.pos))
			return -1;
		if (n > 0 && tok.pos == prev_pos + 1) {
			uint64_t pk = keys_pair(prev_key, key);
			if (pk && occur(w, title ? keys_title(pk) : pk, doc, prev_pos))
				return -1;
		}
		prev_key = key;
		prev_pos = tok.pos;
		n++;
		if (tok.pos >= UINT32_MAX - 4)
			break;  /* unreachable under SOUSUO_MAX_DOC_BYTES; keeps positions 32-bit */
	}
	return n;
}

static char *xstrdup(const char *s)
{
	return strdup(s ? s : "");
}

int writer_add(index_writer *w, const corpus_doc *doc, char *err, size_t errlen)
{
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
	w->ndocs++;  /* owned from here on, freed by writer_free */
	if (!d->path || !d->title || !d->ext_id || !d->category || !d->body)
		goto nomem;
	memcpy(d->body, doc->body, doc->body_len);
	d->body[doc->body_len] = 0;
	d->body_len = doc->body_len;
	d->date = doc->date;

	int64_t nb = index_text(w, d->body, d->body_len, id, 0);
	if (nb < 0)
		goto nomem;
	/* the title field holds the short name a document is known by: "气象法"
	 * rather than "中华人民共和国气象法", so that a query for a law's name
	 * finds the law before the many documents that quote the name */
	const char *tf = doc->short_title && *doc->short_title ? doc->short_title : d->title;
	int64_t nt = index_text(w, tf, strlen(tf), id, 1);
	if (nt < 0 || flush_touched(w))
		goto nomem;
	d->body_tokens = nb > UINT32_MAX ? UINT32_MAX : (uint32_t)nb;
	d->title_tokens = nt > 65535 ? 65535 : (uint32_t)nt;
	w->body_tokens += d->body_tokens;
	w->title_tokens += d->title_tokens;
	w->raw_bytes += d->body_len;
	return 0;
nomem:
	set_err(err, errlen, "out of memory");
	return -1;
}

/* ---- encoding postings ---- */

/* Scratch arrays for one term's decoded postings. */
typedef struct {
	uint32_t *docs, *tfs, *pos;
	size_t cap_docs, cap_pos;
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

/* Decodes a term's chain into s; returns the number of positions. */
static int64_t chain_decode(const bterm *t, scratch *s)
{
	const uint8_t *p = t->chain, *end = t->chain + t->len;
	size_t nd = 0, np = 0;
	uint32_t doc = UINT32_MAX;
	uint64_t v;
	if (scratch_fit(s, t->df, 0))
		return -1;
	if (!fmt_key_positional(t->key)) {
		while (p < end) {
			p = codec_varint_get(p, end, &v);
			doc = doc + 1 + (uint32_t)v;
			p = codec_varint_get(p, end, &v);
			s->docs[nd] = doc;
			s->tfs[nd++] = (uint32_t)v;
		}
		return 0;
	}
	/* positions: at most len of chain values */
	if (scratch_fit(s, t->df, t->len))
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
	return (int64_t)np;
}

static int pack_into(buf *b, const uint32_t *v, size_t n)
{
	if (buf_reserve(b, codec_pack_bound(n)))
		return -1;
	b->len += codec_pack(v, n, b->p + b->len);
	return 0;
}

/* Encodes one term (already decoded into s) into postings and positions. */
static int encode_term(const bterm *t, scratch *s, const bdoc *docs,
                       buf *post, buf *posn, buf *blk, buf *blkpos)
{
	int positional = fmt_key_positional(t->key);
	uint32_t df = t->df;
	size_t nblocks = (df + SOUSUO_BLOCK - 1) / SOUSUO_BLOCK;
	uint32_t tmp[SOUSUO_BLOCK];

	if (positional && buf_varint(post, posn->len))
		return -1;
	blk->len = 0;
	size_t dir_start = post->len;
	uint32_t prev_last = UINT32_MAX;   /* "doc -1" */
	size_t pi = 0;
	/* block data goes to blk/blkpos first so the directory can precede it */
	buf dir = { 0 };
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
			goto fail;
		size_t sum = 0;
		for (size_t i = 0; i < n; i++) {
			tmp[i] = s->tfs[lo + i] - 1;
			sum += s->tfs[lo + i];
		}
		if (pack_into(blk, tmp, n))
			goto fail;
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
				goto fail;
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
						goto fail;
				}
			}
			if (nd % SOUSUO_BLOCK && pack_into(blkpos, tmp, nd % SOUSUO_BLOCK))
				goto fail;
			pi += sum;
		}
		if (nblocks > 1) {
			if (buf_varint(&dir, (uint32_t)(prev - prev_last)) ||
			    buf_varint(&dir, blk->len - blk_start) ||
			    (positional && buf_varint(&dir, blkpos->len - pos_start)) ||
			    buf_varint(&dir, max_tf) || buf_varint(&dir, min_len))
				goto fail;
		}
		prev_last = prev;
	}
	(void)dir_start;
	/* the directory's length first, so a reader finds the blocks without
	 * walking it */
	if ((nblocks > 1 && buf_varint(post, dir.len)) || buf_put(post, dir.p, dir.len) ||
	    buf_put(post, blk->p, blk->len))
		goto fail;
	if (positional && buf_put(posn, blkpos->p, blkpos->len))
		goto fail;
	blkpos->len = 0;
	free(dir.p);
	return 0;
fail:
	free(dir.p);
	return -1;
}

static int cmp_key(const void *a, const void *b)
{
	uint64_t x = ((const bterm *)a)->key, y = ((const bterm *)b)->key;
	return x < y ? -1 : x > y;
}

/* ---- the document store ---- */

typedef struct {
	const index_writer *w;
	const ZSTD_CDict *cdict;
	size_t lo, hi;
	buf out;             /* frames of docs [lo, hi) */
	size_t *frame_len;   /* 2 per doc: meta, body */
	int failed;
} store_job;

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

static void *store_worker(void *arg)
{
	store_job *j = arg;
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	buf meta = { 0 };
	if (!cc) {
		j->failed = 1;
		return NULL;
	}
	for (size_t i = j->lo; i < j->hi && !j->failed; i++) {
		const bdoc *d = &j->w->docs[i];
		meta.len = 0;
		if (buf_put(&meta, d->path, strlen(d->path) + 1) ||
		    buf_put(&meta, d->title, strlen(d->title) + 1) ||
		    buf_put(&meta, d->ext_id, strlen(d->ext_id) + 1) ||
		    compress_frame(cc, j->cdict, j->w->opts.zstd_level, &j->out, meta.p, meta.len,
		                   &j->frame_len[2 * (i - j->lo)]) ||
		    compress_frame(cc, j->cdict, j->w->opts.zstd_level, &j->out, d->body, d->body_len,
		                   &j->frame_len[2 * (i - j->lo) + 1]))
			j->failed = 1;
	}
	free(meta.p);
	ZSTD_freeCCtx(cc);
	return NULL;
}

/* Trains a dictionary on samples of the bodies: the first 4 KiB of documents
 * spread over the corpus, at most 8 MiB in all.  Returns 0 with an empty dict
 * when the corpus is too small to train on (a dictionary is an optimisation). */
static int train_dict(const index_writer *w, buf *dict)
{
	const size_t per_doc = 4096, budget = 8u << 20;
	size_t total = 0;
	for (size_t i = 0; i < w->ndocs; i++)
		total += w->docs[i].body_len < per_doc ? w->docs[i].body_len : per_doc;
	if (total < 64 * w->opts.zdict_bytes || w->ndocs < 16)
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
			free(samples.p);
			return -1;
		}
		sizes[ns++] = n;
	}
	if (buf_reserve(dict, w->opts.zdict_bytes)) {
		free(sizes);
		free(samples.p);
		return -1;
	}
	size_t r = ZDICT_trainFromBuffer(dict->p, w->opts.zdict_bytes, samples.p, sizes, (unsigned)ns);
	dict->len = ZDICT_isError(r) ? 0 : r;
	free(sizes);
	free(samples.p);
	return 0;
}

static int build_store(index_writer *w, buf *dict, buf *store, fmt_doc *fdocs)
{
	if (train_dict(w, dict))
		return -1;
	ZSTD_CDict *cd = NULL;
	if (dict->len) {
		cd = ZSTD_createCDict(dict->p, dict->len, w->opts.zstd_level);
		if (!cd)
			return -1;
	}
	int nt = w->opts.threads;
	if ((size_t)nt > w->ndocs)
		nt = w->ndocs ? (int)w->ndocs : 1;
	store_job *jobs = calloc((size_t)nt, sizeof *jobs);
	pthread_t *th = calloc((size_t)nt, sizeof *th);
	int rc = -1;
	if (!jobs || !th)
		goto out;
	/* split by bytes, not by count: documents differ a lot in size */
	size_t per = w->raw_bytes / (size_t)nt + 1, at = 0;
	for (int i = 0; i < nt; i++) {
		size_t acc = 0, lo = at;
		while (at < w->ndocs && (acc < per || i == nt - 1))
			acc += w->docs[at++].body_len;
		jobs[i] = (store_job){ .w = w, .cdict = cd, .lo = lo, .hi = at };
		jobs[i].frame_len = calloc(2 * (at - lo) + 1, sizeof(size_t));
		if (!jobs[i].frame_len)
			goto out;
	}
	int started = 0;
	for (int i = 0; i < nt; i++) {
		if (pthread_create(&th[i], NULL, store_worker, &jobs[i])) {
			jobs[i].failed = 1;
			break;
		}
		started++;
	}
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	rc = 0;
	for (int i = 0; i < nt; i++) {
		store_job *j = &jobs[i];
		if (j->failed || i >= started) {
			rc = -1;
			continue;
		}
		size_t off = store->len;
		if (buf_put(store, j->out.p, j->out.len)) {
			rc = -1;
			continue;
		}
		for (size_t k = j->lo; k < j->hi; k++) {
			fmt_doc *f = &fdocs[k];
			f->store = off;
			f->meta_bytes = (uint32_t)j->frame_len[2 * (k - j->lo)];
			f->body_bytes = (uint32_t)j->frame_len[2 * (k - j->lo) + 1];
			off += f->meta_bytes + f->body_bytes;
		}
	}
out:
	if (jobs)
		for (int i = 0; i < nt; i++) {
			free(jobs[i].out.p);
			free(jobs[i].frame_len);
		}
	free(jobs);
	free(th);
	ZSTD_freeCDict(cd);
	return rc;
}

/* ---- categories ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Builds the sorted category table and sets each document's category id. */
static int build_categories(const index_writer *w, buf *out, fmt_doc *fdocs, uint32_t *ncat)
{
	char **names = malloc((w->ndocs + 1) * sizeof *names);
	if (!names)
		return -1;
	for (size_t i = 0; i < w->ndocs; i++)
		names[i] = w->docs[i].category;
	qsort(names, w->ndocs, sizeof *names, cmp_str);
	size_t n = 0;
	for (size_t i = 0; i < w->ndocs; i++)
		if (n == 0 || strcmp(names[n - 1], names[i]))
			names[n++] = names[i];
	if (n > 65535) {
		free(names);
		return -1;
	}
	uint32_t count = (uint32_t)n, off = 0;
	int rc = buf_put(out, &count, 4);
	for (size_t i = 0; i <= n && !rc; i++) {
		rc = buf_put(out, &off, 4);
		if (i < n)
			off += (uint32_t)strlen(names[i]);
	}
	for (size_t i = 0; i < n && !rc; i++)
		rc = buf_put(out, names[i], strlen(names[i]));
	for (size_t i = 0; i < w->ndocs && !rc; i++) {
		char *key = w->docs[i].category;
		char **hit = bsearch(&key, names, n, sizeof *names, cmp_str);
		fdocs[i].category = (uint16_t)(hit - names);
	}
	*ncat = count;
	free(names);
	return rc;
}

/* ---- writing the file ---- */

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t r = write(fd, c, n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

static int write_file(const char *path, fmt_header *h, const buf *secs, char *err, size_t errlen)
{
	static const char zeros[64];
	size_t plen = strlen(path);
	char *tmp = malloc(plen + 32);
	if (!tmp) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		set_err(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		free(tmp);
		return -1;
	}
	uint64_t off = (sizeof *h + 63) & ~63ull;
	for (int s = 0; s < FMT_NSECTIONS; s++) {
		h->sections[s].offset = off;
		h->sections[s].length = secs[s].len;
		h->sections[s].checksum = XXH3_64bits(secs[s].p, secs[s].len);
		off = (off + secs[s].len + 63) & ~63ull;
	}
	h->file_bytes = off;
	h->header_checksum = XXH3_64bits(h, offsetof(fmt_header, header_checksum));
	int rc = write_all(fd, h, sizeof *h);
	uint64_t at = sizeof *h;
	for (int s = 0; s < FMT_NSECTIONS && !rc; s++) {
		rc = write_all(fd, zeros, h->sections[s].offset - at);
		if (!rc)
			rc = write_all(fd, secs[s].p, secs[s].len);
		at = h->sections[s].offset + secs[s].len;
	}
	if (!rc)
		rc = write_all(fd, zeros, off - at);
	if (!rc)
		rc = fsync(fd);
	if (close(fd) && !rc)
		rc = -1;
	if (!rc)
		rc = rename(tmp, path);
	if (rc) {
		set_err(err, errlen, "cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
		free(tmp);
		return -1;
	}
	/* make the rename itself durable */
	char *dir = strdup(path);
	if (dir) {
		int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
		free(dir);
	}
	free(tmp);
	return 0;
}

int writer_finish(index_writer *w, const char *path, writer_stats *stats, char *err, size_t errlen)
{
	buf secs[FMT_NSECTIONS];
	memset(secs, 0, sizeof secs);
	scratch s = { 0 };
	buf blk = { 0 }, blkpos = { 0 };
	fmt_doc *fdocs = calloc(w->ndocs + 1, sizeof *fdocs);
	fmt_header h;
	int rc = -1;
	memset(&h, 0, sizeof h);
	if (!fdocs)
		goto nomem;

	/* terms in key order; the hash slots are useless after this */
	qsort(w->terms, w->nterms, sizeof *w->terms, cmp_key);
	for (size_t i = 0; i < w->nterms; i++) {
		bterm *t = &w->terms[i];
		size_t before = secs[FMT_SEC_POSTINGS].len;
		if (before > UINT32_MAX || secs[FMT_SEC_DICT].len > UINT32_MAX) {
			set_err(err, errlen, "dictionary or postings over 4 GiB: split the corpus");
			goto out;
		}
		if (i % FMT_GROUP == 0) {
			fmt_group g = { t->key, (uint32_t)secs[FMT_SEC_DICT].len, (uint32_t)before };
			if (buf_put(&secs[FMT_SEC_DICTINDEX], &g, sizeof g))
				goto nomem;
		} else if (buf_varint(&secs[FMT_SEC_DICT], t->key - w->terms[i - 1].key)) {
			goto nomem;
		}
		if (chain_decode(t, &s) < 0 ||
		    encode_term(t, &s, w->docs, &secs[FMT_SEC_POSTINGS], &secs[FMT_SEC_POSITIONS],
		                &blk, &blkpos) ||
		    buf_varint(&secs[FMT_SEC_DICT], t->df) ||
		    buf_varint(&secs[FMT_SEC_DICT], secs[FMT_SEC_POSTINGS].len - before))
			goto nomem;
		free(t->chain);
		t->chain = NULL;
	}

	for (size_t i = 0; i < w->ndocs; i++) {
		fdocs[i].body_tokens = w->docs[i].body_tokens;
		fdocs[i].title_tokens = (uint16_t)w->docs[i].title_tokens;
		fdocs[i].date = w->docs[i].date;
	}
	uint32_t ncat = 0;
	if (build_categories(w, &secs[FMT_SEC_CATEGORIES], fdocs, &ncat))
		goto nomem;
	if (build_store(w, &secs[FMT_SEC_ZDICT], &secs[FMT_SEC_STORE], fdocs)) {
		set_err(err, errlen, "compressing the document store failed");
		goto out;
	}
	if (buf_put(&secs[FMT_SEC_DOCS], fdocs, w->ndocs * sizeof *fdocs))
		goto nomem;

	h.magic = FMT_MAGIC;
	h.version = FMT_VERSION;
	h.header_bytes = sizeof h;
	h.ndocs = (uint32_t)w->ndocs;
	h.ncategories = ncat;
	h.nterms = w->nterms;
	h.body_tokens = w->body_tokens;
	h.title_tokens = w->title_tokens;
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
		stats->positions = w->npositions;
		for (int i = 0; i < FMT_NSECTIONS; i++)
			stats->section_bytes[i] = secs[i].len;
		stats->file_bytes = h.file_bytes;
		stats->raw_bytes = w->raw_bytes;
	}
	rc = 0;
	goto out;
nomem:
	set_err(err, errlen, "out of memory");
out:
	for (int i = 0; i < FMT_NSECTIONS; i++)
		free(secs[i].p);
	free(s.docs);
	free(s.tfs);
	free(s.pos);
	free(blk.p);
	free(blkpos.p);
	free(fdocs);
	return rc;
}
