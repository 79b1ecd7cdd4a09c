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
#define ZDICT_STATIC_LINKING_ONLY  /* ZDICT_trainFromBuffer_fastCover */
#include "indexer/writer.h"
#include "indexer/codec.h"
#include "indexer/format.h"
#include "indexer/keys.h"
#include "indexer/limits.h"
#include "indexer/ngrams.h"
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
#define XXH_STATIC_LINKING_ONLY    /* XXH3_state_t on the stack */
#include <xxhash.h>
#include <zdict.h>
#include <zstd.h>

/* THREADS.  With opts.threads = N > 1 the work runs on N threads in two
 * phases; with N = 1 everything runs on the caller's thread, and the file is
 * the same byte for byte either way.
 *
 *  - Adding: writer_add copies the document and queues it, in jobs of up to
 *    JOB_DOCS documents or JOB_BYTES of text (the queue: q_lock, q_cond).
 *    N tokenizer threads (tworker) take jobs and record the occurrences in
 *    a term table and chains of their own.  Any thread may get any job:
 *    a chain holds absolute document ids in increasing order, and
 *    writer_finish merges the threads' tables by key and each term's chains
 *    by document.  A job's results (token counts) are written into the job
 *    by its thread and read by the caller after the thread is joined; the
 *    queue is the only state shared while documents are added.
 *  - Finishing: the caller and N - 1 helpers take numbered tasks (t_lock):
 *    training the store's dictionary, encoding the postings of one range of
 *    terms (ranges start on a FMT_GROUP boundary), compressing one range of
 *    documents (these wait, t_cond, for the dictionary).  Every task writes
 *    only its own buffers.  After the join the caller lays the postings
 *    ranges end to end, giving each positional blob its absolute
 *    POSITIONS offset (a varint, so only known then) and writing DICT and
 *    DICTINDEX, and writes the file from the pieces.
 * Lock order: there is none, no thread holds two locks. */

#define WRITER_MAX_THREADS 64      /* more threads than this are not used */
#define JOB_DOCS 64                /* documents per tokenizing job, at most */
#define JOB_BYTES (256u << 10)     /* text per job: a job ends past this */
#define CJK_DIRECT 0x30000u        /* body CJK terms below this code point (all
                                      of text.h's CJK) are in an array */
#define CHAIN_MAX (1u << 30)       /* a chain longer than this: out of memory */

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

static void buf_free(buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- terms being built ---- */

/* A term being built.  Its postings accumulate in `chain` as a varint stream:
 * positional terms: per occurrence v = (delta << 1) | new_doc, where a new
 * document's record is (doc gap << 1 | 1) followed by its first position and
 * later positions are (p - previous p) << 1; CJK terms: per document (doc gap,
 * tf), the gap written at the document's first occurrence, tf when the
 * document ends.  A doc gap is doc minus previous doc minus 1, the first from
 * "doc -1": ids are absolute, so the chains of one term in several threads
 * decode each to its own documents.  32 bytes: two to a cache line. */
typedef struct {
	uint64_t key;          /* 0: an empty slot (no key is 0: kinds start at 1) */
	uint8_t *chain;
	uint32_t len;          /* bytes in chain; its allocation is chain_cap(len) */
	uint32_t df;
	uint32_t last_doc;     /* UINT32_MAX before the first */
	uint32_t last;         /* positional: last position; CJK: tf in last_doc */
} bterm;

/* A chain of len bytes has room for one more varint: the allocation is the
 * power of two (at least 32) that holds len + CODEC_VARINT_MAX. */
static inline uint32_t chain_cap(uint32_t len)
{
	uint32_t need = len + CODEC_VARINT_MAX;
	return need <= 32 ? 32 : 2u << (31 - __builtin_clz(need - 1));
}

static int chain_grow(bterm *t, uint32_t old_cap)
{
	uint32_t cap = chain_cap(t->len);
	if (cap == old_cap)
		return 0;
	if (t->len > CHAIN_MAX)
		return -1;
	uint8_t *p = realloc(t->chain, cap);
	if (!p)
		return -1;
	t->chain = p;
	return 0;
}

static inline int chain_put(bterm *t, uint64_t v)
{
	if (!t->chain && !(t->chain = malloc(chain_cap(0))))
		return -1;
	uint32_t cap = chain_cap(t->len);
	t->len += (uint32_t)codec_varint_put(t->chain + t->len, v);
	return chain_cap(t->len) == cap ? 0 : chain_grow(t, cap);
}

/* key -> term: open addressing of the terms themselves, linear probing,
 * 2^bits slots at most 5/8 full. */
typedef struct {
	bterm *slot;
	unsigned bits;
	size_t n;
} termtab;

static inline size_t tt_home(uint64_t key, unsigned bits)
{
	/* keys of bigrams are code points side by side: multiply to mix them
	 * into the high bits, which are the ones used */
	return (size_t)((key * 0x9E3779B97F4A7C15ull) >> (64 - bits));
}

/* Zeroed slots on a cache line boundary: no slot straddles two lines. */
static bterm *tt_alloc(unsigned bits)
{
	size_t bytes = ((size_t)1 << bits) * sizeof(bterm);
	bterm *s = aligned_alloc(64, bytes);
	if (s)
		memset(s, 0, bytes);
	return s;
}

static int tt_grow(termtab *tt)
{
	unsigned bits = tt->bits + 1;
	size_t mask = ((size_t)1 << bits) - 1;
	bterm *s = tt_alloc(bits);
	if (!s)
		return -1;
	for (size_t i = 0, n = (size_t)1 << tt->bits; i < n; i++) {
		const bterm *t = &tt->slot[i];
		if (!t->key)
			continue;
		size_t j = tt_home(t->key, bits);
		while (s[j].key)
			j = (j + 1) & mask;
		s[j] = *t;
	}
	free(tt->slot);
	tt->slot = s;
	tt->bits = bits;
	return 0;
}

static bterm *tt_find(const termtab *tt, uint64_t key)
{
	size_t mask = ((size_t)1 << tt->bits) - 1;
	for (size_t i = tt_home(key, tt->bits);; i = (i + 1) & mask) {
		bterm *t = &tt->slot[i];
		if (t->key == key)
			return t;
		if (!t->key)
			return NULL;
	}
}

/* Returns the term for key, creating it; NULL when out of memory.  The
 * pointer is valid until the next tt_get. */
static inline bterm *tt_get(termtab *tt, uint64_t key)
{
	size_t mask = ((size_t)1 << tt->bits) - 1, i = tt_home(key, tt->bits);
	for (;; i = (i + 1) & mask) {
		bterm *t = &tt->slot[i];
		if (t->key == key)
			return t;
		if (!t->key)
			break;
	}
	if ((tt->n + 1) * 8 > (mask + 1) * 5) {
		if (tt_grow(tt))
			return NULL;
		return tt_get(tt, key);
	}
	bterm *t = &tt->slot[i];
	t->key = key;
	t->last_doc = UINT32_MAX;
	tt->n++;
	return t;
}


/* ---- documents and tokenizing jobs ---- */

typedef struct {
	char *path, *title, *ext_id, *body;
	char *name;            /* the title field's text when not the title, else NULL */
	size_t body_len;
	uint32_t date;
	uint32_t body_tokens, title_tokens;
	char *category;
} bdoc;

/* One document of a job: texts borrowed from its bdoc (which stay put when
 * the docs array moves), results filled in by the tokenizing thread. */
typedef struct {
	const char *body, *name;
	size_t body_len;
	uint32_t body_tokens, title_tokens;
} jdoc;

typedef struct tjob {
	struct tjob *next;
	uint32_t first, n;     /* documents first .. first + n - 1 */
	size_t bytes;
	jdoc d[JOB_DOCS];
} tjob;

/* One tokenizing thread's state (or, with one thread, the caller's). */
typedef struct {
	struct index_writer *w;
	pthread_t th;
	int running;           /* th was started and not yet joined */
	int failed;            /* out of memory: its tables are incomplete */
	text_tokenizer *tk;
	termtab tt;            /* every term but the body's CJK ones */
	bterm *cjk;            /* body CJK terms by code point, CJK_DIRECT of them
	                          (calloc'd: pages of unused code points stay
	                          untouched) */
	uint64_t *touched;     /* doc-level keys seen in the current document */
	size_t ntouched, captouched;
	uint64_t npositions;
	tjob *done;            /* jobs it ran, with their results */
	bterm *terms;          /* once sealed: all its terms in key order; tt and
	                          cjk are then empty */
	size_t nterms;
} tworker;

struct index_writer {
	writer_opts opts;
	int failed;            /* a writer_add failed: the index would be incomplete */
	int finished;          /* writer_finish was called */
	bdoc *docs;
	size_t ndocs, capdocs;
	uint64_t raw_bytes;
	tworker *wk;
	size_t nwk;
	size_t nthreads;       /* tokenizing threads running; 0: writer_add tokenizes */
	tjob *cur;             /* the job writer_add is filling */
	pthread_mutex_t q_lock;
	pthread_cond_t q_cond;
	tjob *q_head, *q_tail; /* jobs waiting */
	int q_closing;         /* no more jobs: threads end when the queue is empty */
	int q_abort;           /* writer_free: threads drop the jobs left */
	int q_failed;          /* a thread ran out of memory */
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

/* ---- tokenizing ---- */

static int touch(tworker *wk, uint64_t key)
{
	if (wk->ntouched == wk->captouched) {
		size_t cap = wk->captouched ? wk->captouched * 2 : 1024;
		uint64_t *p = realloc(wk->touched, cap * sizeof *p);
		if (!p)
			return -1;
		wk->touched = p;
		wk->captouched = cap;
	}
	wk->touched[wk->ntouched++] = key;
	return 0;
}

/* 1 if key's term lives in the worker's cjk array: a body CJK character. */
static inline int cjk_direct(uint64_t key)
{
	return fmt_key_kind(key) == FMT_KIND_CJK && !(key & FMT_KEY_TITLE) &&
	       (key & FMT_KEY_VALUE_MASK) < CJK_DIRECT;
}

/* Records one occurrence of key at pos in document doc. */
static inline int occur(tworker *wk, uint64_t key, uint32_t doc, uint32_t pos)
{
	bterm *t;
	if (!fmt_key_positional(key)) {
		if (cjk_direct(key)) {
			t = &wk->cjk[key & FMT_KEY_VALUE_MASK];
			if (!t->key) {
				t->key = key;
				t->last_doc = UINT32_MAX;
			}
		} else if (!(t = tt_get(&wk->tt, key))) {
			return -1;
		}
		if (t->last_doc != doc) {
			/* UINT32_MAX + 1 wraps to 0: the first gap is the doc */
			if (touch(wk, key) || chain_put(t, doc - (t->last_doc + 1)))
				return -1;
			t->df++;
			t->last_doc = doc;
			t->last = 0;
		}
		t->last++;
		return 0;
	}
	if (!(t = tt_get(&wk->tt, key)))
		return -1;
	wk->npositions++;
	if (t->last_doc != doc) {
		uint32_t gap = doc - (t->last_doc + 1);
		t->df++;
		t->last_doc = doc;
		t->last = pos;
		return chain_put(t, ((uint64_t)gap << 1) | 1) || chain_put(t, pos) ? -1 : 0;
	}
	uint32_t delta = pos - t->last;
	t->last = pos;
	return chain_put(t, (uint64_t)delta << 1);
}

/* Writes the tf of every doc-level term the document touched. */
static int flush_touched(tworker *wk)
{
	for (size_t i = 0; i < wk->ntouched; i++) {
		uint64_t key = wk->touched[i];
		bterm *t = cjk_direct(key) ? &wk->cjk[key & FMT_KEY_VALUE_MASK]
		                           : tt_find(&wk->tt, key);
		if (chain_put(t, t->last))
			return -1;
	}
	wk->ntouched = 0;
	return 0;
}

/* Keys are recorded in batches: computing a batch first lets the hash slots
 * of the next keys be fetched while the current ones are recorded. */
#define BATCH 256
#define AHEAD 8
typedef struct {
	uint64_t key[BATCH];
	uint32_t pos[BATCH];
	size_t n;
} kbatch;

/* Where key's term is or would be.  (__builtin_prefetch is called at the
 * loop: GCC 12 drops it from the branches of an inlined helper.) */
static inline const bterm *term_home(const tworker *wk, uint64_t key)
{
	return cjk_direct(key) ? &wk->cjk[key & FMT_KEY_VALUE_MASK]
	                       : &wk->tt.slot[tt_home(key, wk->tt.bits)];
}

static int batch_flush(tworker *wk, kbatch *b, uint32_t doc)
{
	for (size_t i = 0; i < b->n && i < AHEAD; i++)
		__builtin_prefetch(term_home(wk, b->key[i]));
	for (size_t i = 0; i < b->n; i++) {
		if (i + AHEAD < b->n)
			__builtin_prefetch(term_home(wk, b->key[i + AHEAD]));
		if (occur(wk, b->key[i], doc, b->pos[i]))
			return -1;
	}
	b->n = 0;
	return 0;
}

/* Tokenizes text into keys (with the title bit when title) for document doc;
 * returns the token count or -1. */
static int64_t index_text(tworker *wk, const char *text, size_t len, uint32_t doc, int title)
{
	text_token tok;
	uint64_t prev_key = 0;
	uint32_t prev_pos = 0;
	int64_t n = 0;
	kbatch b;
	b.n = 0;
	text_tokenizer_reset(wk->tk, text, len);
	while (text_tokenizer_next(wk->tk, &tok)) {
		uint64_t key = keys_token(tok.kind, tok.cp, tok.word, tok.word_len);
		if (b.n + 2 > BATCH && batch_flush(wk, &b, doc))
			return -1;
		b.key[b.n] = title ? keys_title(key) : key;
		b.pos[b.n++] = tok.pos;
		if (n > 0 && tok.pos == prev_pos + 1) {
			uint64_t pk = keys_pair(prev_key, key);
			if (pk) {
				b.key[b.n] = title ? keys_title(pk) : pk;
				b.pos[b.n++] = prev_pos;
			}
		}
		prev_key = key;
		prev_pos = tok.pos;
		n++;
		if (tok.pos >= UINT32_MAX - 4)
			break;  /* unreachable under SOUSUO_MAX_DOC_BYTES; keeps positions 32-bit */
	}
	if (batch_flush(wk, &b, doc))
		return -1;
	return n;
}

/* Records document id: its body and its title field. */
static int index_doc(tworker *wk, uint32_t id, jdoc *d)
{
	int64_t nb = index_text(wk, d->body, d->body_len, id, 0);
	if (nb < 0)
		return -1;
	int64_t nt = index_text(wk, d->name, strlen(d->name), id, 1);
	if (nt < 0 || flush_touched(wk))
		return -1;
	d->body_tokens = nb > UINT32_MAX ? UINT32_MAX : (uint32_t)nb;
	d->title_tokens = nt > 65535 ? 65535 : (uint32_t)nt;
	return 0;
}

static int cmp_key(const void *a, const void *b)
{
	uint64_t x = ((const bterm *)a)->key, y = ((const bterm *)b)->key;
	return x < y ? -1 : x > y;
}

/* Moves all of a worker's terms into one array sorted by key. */
static int worker_seal(tworker *wk)
{
	size_t nslots = (size_t)1 << wk->tt.bits, n = 0, ncjk = 0;
	bterm *a = wk->tt.slot;
	for (size_t i = 0; i < nslots; i++)
		if (a[i].key)
			a[n++] = a[i];
	for (uint32_t cp = 0; cp < CJK_DIRECT; cp++)
		ncjk += wk->cjk[cp].key != 0;
	bterm *b = realloc(a, (n + ncjk + 1) * sizeof *a);
	if (!b) {
		/* keep the chains reachable for writer_free */
		memset(a + n, 0, (nslots - n) * sizeof *a);
		return -1;
	}
	for (uint32_t cp = 0; cp < CJK_DIRECT; cp++)
		if (wk->cjk[cp].key)
			b[n++] = wk->cjk[cp];
	free(wk->cjk);
	wk->cjk = NULL;
	wk->tt.slot = NULL;
	wk->tt.n = 0;
	qsort(b, n, sizeof *b, cmp_key);
	wk->terms = b;
	wk->nterms = n;
	return 0;
}

static void *tok_main(void *arg)
{
	tworker *wk = arg;
	index_writer *w = wk->w;
	int abort = 0;
	for (;;) {
		pthread_mutex_lock(&w->q_lock);
		while (!w->q_head && !w->q_closing)
			pthread_cond_wait(&w->q_cond, &w->q_lock);
		tjob *j = w->q_head;
		if (j) {
			w->q_head = j->next;
			if (!w->q_head)
				w->q_tail = NULL;
		}
		abort = w->q_abort;
		pthread_mutex_unlock(&w->q_lock);
		if (!j)
			break;
		j->next = wk->done;
		wk->done = j;
		if (abort || wk->failed)
			continue;
		for (uint32_t k = 0; k < j->n && !wk->failed; k++)
			if (index_doc(wk, j->first + k, &j->d[k]))
				wk->failed = 1;
		if (wk->failed) {
			pthread_mutex_lock(&w->q_lock);
			w->q_failed = 1;
			pthread_mutex_unlock(&w->q_lock);
		}
	}
	if (!abort && !wk->failed && worker_seal(wk))
		wk->failed = 1;
	return NULL;
}

static int queue_push(index_writer *w, tjob *j)
{
	pthread_mutex_lock(&w->q_lock);
	int failed = w->q_failed;
	if (!failed) {
		j->next = NULL;
		if (w->q_tail)
			w->q_tail->next = j;
		else
			w->q_head = j;
		w->q_tail = j;
		pthread_cond_signal(&w->q_cond);
	}
	pthread_mutex_unlock(&w->q_lock);
	if (failed)
		free(j);
	return failed ? -1 : 0;
}

/* Ends the tokenizing threads: with abort, dropping the jobs still queued. */
static void stop_threads(index_writer *w, int abort)
{
	if (!w->nthreads)
		return;
	pthread_mutex_lock(&w->q_lock);
	w->q_closing = 1;
	w->q_abort |= abort;
	pthread_cond_broadcast(&w->q_cond);
	pthread_mutex_unlock(&w->q_lock);
	for (size_t i = 0; i < w->nwk; i++)
		if (w->wk[i].running) {
			pthread_join(w->wk[i].th, NULL);
			w->wk[i].running = 0;
		}
	w->nthreads = 0;
}

/* ---- the writer ---- */

static int worker_init(tworker *wk, index_writer *w)
{
	wk->w = w;
	wk->tk = text_tokenizer_new();
	wk->tt.bits = 14;
	wk->tt.slot = tt_alloc(wk->tt.bits);
	wk->cjk = calloc(CJK_DIRECT, sizeof(bterm));
	return wk->tk && wk->tt.slot && wk->cjk ? 0 : -1;
}

static void free_terms(bterm *t, size_t n)
{
	if (t)
		for (size_t i = 0; i < n; i++)
			free(t[i].chain);
	free(t);
}

static void worker_free(tworker *wk)
{
	text_tokenizer_free(wk->tk);
	free_terms(wk->tt.slot, wk->tt.slot ? (size_t)1 << wk->tt.bits : 0);
	free_terms(wk->cjk, wk->cjk ? CJK_DIRECT : 0);
	free_terms(wk->terms, wk->nterms);
	free(wk->touched);
	while (wk->done) {
		tjob *j = wk->done;
		wk->done = j->next;
		free(j);
	}
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
	if (w->nwk > 1) {
		/* fewer threads than asked for (even none) still give the same index */
		for (size_t i = 0; i < w->nwk; i++) {
			if (pthread_create(&w->wk[i].th, NULL, tok_main, &w->wk[i]))
				break;
			w->wk[i].running = 1;
			w->nthreads++;
		}
	}
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
		if (index_doc(&w->wk[0], id, &jd))
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

/* ---- merging the threads' terms ---- */

/* A term of the index: its chains in the threads' tables, and where its
 * encoding went. */
typedef struct {
	uint64_t key;
	uint32_t part, nparts; /* its chains: parts[part .. part + nparts) */
	uint32_t df;
	uint64_t cost;         /* chain bytes: to split the work evenly */
	uint64_t blob;         /* bytes of its blob in its piece, after the
	                          positions offset */
	uint64_t posn;         /* offset of its positions in its piece's POSITIONS */
} mterm;

/* Merges the sealed workers' sorted term arrays by key. */
static int merge_terms(index_writer *w, mterm **out, size_t *nout, bterm ***outparts)
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
				m->nparts++;
				m->df += t->df;
				m->cost += t->len;
			}
	}
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
static int add_ngrams(index_writer *w, mterm **pmt, size_t *pnm, bterm ***pparts,
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
	size_t nm = *pnm, npairs = 0, nparts = nm ? mt[nm - 1].part + mt[nm - 1].nparts : 0;
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
		for (uint32_t k = 0; k < l->df; k++) {
			if (buf_varint(&ch, l->docs[k] - prev - 1) || buf_varint(&ch, l->tfs[k])) {
				buf_free(&ch);
				free(out);
				goto out;
			}
			prev = l->docs[k];
		}
		nt[i].key = l->key;
		nt[i].chain = ch.p;
		nt[i].len = (uint32_t)ch.len;
		nt[i].df = l->df;
		parts[nparts + i] = &nt[i];
	}
	/* merge by key: n-gram keys are of their own kind, never equal */
	size_t a = 0, b = 0, o = 0;
	while (a < nm || b < r.n) {
		if (b == r.n || (a < nm && mt[a].key < r.lists[b].key)) {
			out[o++] = mt[a++];
		} else {
			mterm m = { 0 };
			m.key = r.lists[b].key;
			m.part = (uint32_t)(nparts + b);
			m.nparts = 1;
			m.df = r.lists[b].df;
			m.cost = nt[b].len;
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
	const uint8_t *p = t->chain, *end = t->chain + t->len;
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
	if (m->nparts == 1)
		return chain_decode(parts[m->part], s);
	size_t d0[WRITER_MAX_THREADS + 1], p0[WRITER_MAX_THREADS + 1];
	size_t dc[WRITER_MAX_THREADS], pc[WRITER_MAX_THREADS];
	uint32_t n = m->nparts;
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

/* ---- the document store ---- */

/* Trains a dictionary on samples of the bodies: the first 4 KiB of documents
 * spread over the corpus, at most 8 MiB in all.  Leaves dict empty when the
 * corpus is too small to train on (a dictionary is an optimisation).
 * fastCover with fixed parameters: ZDICT_trainFromBuffer's search over k
 * took 1.4 s on the laws corpus, this takes 0.2 s and its dictionary
 * compresses the store 1.6% better (k 100, d 6, f 18 were the best of
 * k 32..200, d 6 or 8, f 18..22 there). */
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

/* ---- finishing: tasks on several threads ---- */

typedef struct {
	size_t lo, hi;         /* terms [lo, hi) */
	buf post, posn;
	int failed;
} post_piece;

typedef struct {
	size_t lo, hi;         /* documents [lo, hi) */
	buf out;               /* their frames */
	size_t *frame_len;     /* 2 per doc: meta, body */
	int failed;
} store_piece;

typedef struct {
	const index_writer *w;
	mterm *mt;
	bterm **parts;
	post_piece *post;
	size_t npost;
	store_piece *store;
	size_t nstore;
	buf *zdict;
	ZSTD_CDict *cdict;
	pthread_mutex_t t_lock;
	pthread_cond_t t_cond;
	size_t next;           /* task to hand out: 0 the dictionary, then postings
	                          pieces, then store pieces */
	int dict_state;        /* 0 training, 1 ready, -1 failed */
} finish_ctx;

static void post_task(finish_ctx *c, post_piece *pc)
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
		for (uint32_t j = 0; j < m->nparts; j++) {
			bterm *t = c->parts[m->part + j];
			free(t->chain);
			t->chain = NULL;
		}
	}
	scratch_free(&s);
	scratch_free(&raw);
	buf_free(&blk);
	buf_free(&blkpos);
	buf_free(&dir);
}

static void dict_task(finish_ctx *c)
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

static void store_task(finish_ctx *c, store_piece *sp)
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

/* Splits terms into pieces of about equal chain bytes, each starting on a
 * group boundary. */
static void split_terms(const mterm *mt, size_t nm, post_piece *pc, size_t np)
{
	uint64_t total = 0, acc = 0;
	for (size_t i = 0; i < nm; i++)
		total += mt[i].cost + 16;
	size_t at = 0;
	for (size_t p = 0; p < np; p++) {
		pc[p].lo = at;
		uint64_t target = total / np * (p + 1);
		if (p == np - 1)
			at = nm;
		while (at < nm && (acc < target || at % FMT_GROUP))
			acc += mt[at++].cost + 16;
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

/* A section's bytes: pieces laid end to end (borrowed). */
typedef struct {
	const buf *part;
	size_t nparts;
	uint64_t len;
} section;

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

static uint64_t section_xxh3(const section *s)
{
	if (s->nparts == 1)
		return XXH3_64bits(s->part[0].p, s->part[0].len);
	XXH3_state_t st;   /* the same hash as of the pieces in one buffer */
	XXH3_64bits_reset(&st);
	for (size_t i = 0; i < s->nparts; i++)
		if (s->part[i].len)
			XXH3_64bits_update(&st, s->part[i].p, s->part[i].len);
	return XXH3_64bits_digest(&st);
}

static int write_file(const char *path, fmt_header *h, const section *secs, char *err,
                      size_t errlen)
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
		h->sections[s].checksum = section_xxh3(&secs[s]);
		off = (off + secs[s].len + 63) & ~63ull;
	}
	h->file_bytes = off;
	h->header_checksum = XXH3_64bits(h, offsetof(fmt_header, header_checksum));
	int rc = write_all(fd, h, sizeof *h);
	uint64_t at = sizeof *h;
	for (int s = 0; s < FMT_NSECTIONS && !rc; s++) {
		rc = write_all(fd, zeros, h->sections[s].offset - at);
		for (size_t i = 0; i < secs[s].nparts && !rc; i++)
			rc = write_all(fd, secs[s].part[i].p, secs[s].part[i].len);
		at = h->sections[s].offset + secs[s].len;
	}
	if (!rc)
		rc = write_all(fd, zeros, off - at);
	if (!rc)
		rc = fsync(fd);
	int e = errno;
	if (close(fd) && !rc) {
		rc = -1;
		e = errno;
	}
	if (!rc && rename(tmp, path)) {
		rc = -1;
		e = errno;
	}
	if (rc) {
		set_err(err, errlen, "cannot write %s: %s", path, strerror(e));
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

/* ---- writer_finish ---- */

/* Ends tokenizing: queues the last job, joins the threads, seals the tables
 * of workers that had no thread, and copies the jobs' results. */
static int end_tokenizing(index_writer *w)
{
	if (w->cur) {
		tjob *j = w->cur;
		w->cur = NULL;
		if (!w->nthreads) {
			free(j);  /* cannot happen: jobs exist only with threads */
		} else if (queue_push(w, j)) {
			w->failed = 1;
		}
	}
	stop_threads(w, 0);
	for (size_t i = 0; i < w->nwk; i++) {
		tworker *wk = &w->wk[i];
		if (wk->failed || w->failed)
			return -1;
		/* a worker that had a thread sealed its table there */
		if (wk->tt.slot && worker_seal(wk))
			return -1;
		for (tjob *j = wk->done; j; j = j->next)
			for (uint32_t k = 0; k < j->n; k++) {
				w->docs[j->first + k].body_tokens = j->d[k].body_tokens;
				w->docs[j->first + k].title_tokens = j->d[k].title_tokens;
			}
		while (wk->done) {
			tjob *j = wk->done;
			wk->done = j->next;
			free(j);
		}
	}
	return 0;
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

	if (end_tokenizing(w) || merge_terms(w, &mt, &nm, &parts) ||
	    add_ngrams(w, &mt, &nm, &parts, &ngt, &nngt))
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
	split_terms(mt, nm, c.post, c.npost);
	run_tasks(&c, threads);
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
	free(parts);
	free(fdocs);
	if (ngt)
		free_terms(ngt, nngt);
	/* the chains are of no use any more (and some were freed) */
	for (size_t i = 0; i < w->nwk; i++) {
		free_terms(w->wk[i].terms, w->wk[i].nterms);
		w->wk[i].terms = NULL;
		w->wk[i].nterms = 0;
	}
	return rc;
}
