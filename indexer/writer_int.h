/* writer_int.h — private to the index writer (indexer/writer*.c): the
 * writer's state, the terms, documents and jobs it builds, the finishing
 * tasks' pieces and the functions the writer's files share.  Nothing outside
 * indexer/writer*.c includes it; the public interface is writer.h.
 *
 *   writer.c           writer_new/add/free, writer_finish (lays out the
 *                      sections), the ON-DISK FORMAT comment at its top
 *   writer_tokenize.c  term tables and chains, tokenizing, the tokenizing
 *                      threads and their job queue
 *   writer_postings.c  merging the threads' terms, n-gram terms, decoding
 *                      chains and encoding postings blocks
 *   writer_store.c     the zstd dictionary and the document store's frames
 *   writer_file.c      the category table and the atomic file write
 */
#ifndef SOUSUO_WRITER_INT_H
#define SOUSUO_WRITER_INT_H

#include "indexer/writer.h"
#include "indexer/codec.h"
#include "indexer/format.h"
#include "indexer/text.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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

/* One growable byte buffer. */
typedef struct {
	uint8_t *p;
	size_t len, cap;
} buf;

static inline int buf_reserve(buf *b, size_t more)
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

static inline int buf_put(buf *b, const void *data, size_t n)
{
	if (n == 0)
		return 0;
	if (buf_reserve(b, n))
		return -1;
	memcpy(b->p + b->len, data, n);
	b->len += n;
	return 0;
}

static inline int buf_varint(buf *b, uint64_t v)
{
	if (buf_reserve(b, CODEC_VARINT_MAX))
		return -1;
	b->len += codec_varint_put(b->p + b->len, v);
	return 0;
}

static inline void buf_free(buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

/* ---- terms being built (writer_tokenize.c) ---- */

/* A term being built.  Its postings accumulate in `chain` as a varint stream:
 * positional terms: per occurrence v = (delta << 1) | new_doc, where a new
 * document's record is (doc gap << 1 | 1) followed by its first position and
 * later positions are (p - previous p) << 1; CJK terms: per document (doc gap,
 * tf), the gap written at the document's first occurrence, tf when the
 * document ends.  A doc gap is doc minus previous doc minus 1, the first from
 * "doc -1": ids are absolute, so the chains of one term in several threads
 * decode each to its own documents.  Most terms are rare (on random text
 * nearly all occur once), so a chain of up to CHAIN_INLINE bytes is kept in
 * the term itself, in the pointer's place: no allocation for them, which
 * would cost at least 48 bytes with malloc's header.  32 bytes: two to a
 * cache line. */
#define CHAIN_INLINE 8
typedef struct {
	uint64_t key;          /* 0: not a term yet (no key is 0: kinds start at 1) */
	union {
		uint8_t *p;    /* len > CHAIN_INLINE: malloc'd (writer_tokenize.c's
		                  chain_cap(len) bytes, add_ngrams: len) */
		uint8_t in[CHAIN_INLINE];
	} chain;
	uint32_t len;          /* bytes in chain */
	uint32_t df;
	uint32_t last_doc;     /* UINT32_MAX before the first */
	uint32_t last;         /* positional: last position; CJK: tf in last_doc */
} bterm;

static inline const uint8_t *chain_bytes(const bterm *t)
{
	return t->len > CHAIN_INLINE ? t->chain.p : t->chain.in;
}

static inline void chain_free(bterm *t)
{
	if (t->len > CHAIN_INLINE)
		free(t->chain.p);
	t->len = 0;
}

/* key -> term.  The terms lie in chunks of TERM_CHUNK in the order they were
 * first seen (a chunk never moves, so growing costs no copy of the terms);
 * the table is open addressing, linear probing, of 8-byte slots, 2^bits of
 * them at most 5/8 full.  A slot's tag (a fold of the key) spares reading
 * the term of a slot that holds another key.  Growing frees the old slots
 * before taking the new ones and refills them from the chunks in order. */
#define TERM_CHUNK_BITS 14     /* 512 KiB of terms */
#define TERM_CHUNK ((size_t)1 << TERM_CHUNK_BITS)
typedef struct {
	uint32_t tag;
	uint32_t idx;          /* the term's number + 1; 0: an empty slot */
} tslot;

typedef struct {
	tslot *slot;
	unsigned bits;
	bterm **chunk;         /* nchunks of them, TERM_CHUNK terms each */
	size_t n, nchunks;     /* terms; chunks allocated */
} termtab;

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
	bterm *cjk;            /* body CJK terms by code point, CJK_DIRECT of
	                          them (writer_tokenize.c; calloc'd: pages of
	                          unused code points stay untouched) */
	uint64_t *touched;     /* doc-level keys seen in the current document */
	size_t ntouched, captouched;
	uint64_t npositions;
	tjob *done;            /* jobs it ran, with their results */
	bterm *terms;          /* once sealed: all its terms in key order; tt and
	                          cjk are then empty (NULL before) */
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

/* ---- merged terms (writer_postings.c) ---- */

/* A term of the index: its chains in the threads' tables, and where its
 * encoding went.  There is one for every term: 32 bytes, its count of
 * chains and their bytes are found through parts instead. */
typedef struct {
	uint64_t key;
	uint64_t blob;         /* bytes of its blob in its piece, after the
	                          positions offset */
	uint64_t posn;         /* offset of its positions in its piece's POSITIONS */
	uint32_t part;         /* its chains: parts[part] and the ones after it
	                          with its key (parts ends with NULL) */
	uint32_t df;
} mterm;

static inline uint32_t mterm_nparts(const mterm *m, bterm *const *parts)
{
	uint32_t n = 1;
	while (parts[m->part + n] && parts[m->part + n]->key == m->key)
		n++;
	return n;
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

/* A section's bytes: pieces laid end to end (borrowed). */
typedef struct {
	const buf *part;
	size_t nparts;
	uint64_t len;
} section;

/* writer.c */
void set_err(char *err, size_t errlen, const char *fmt, ...);

/* writer_tokenize.c */
int worker_init(tworker *wk, index_writer *w);
void worker_free(tworker *wk);
void free_terms(bterm *t, size_t n);
void start_threads(index_writer *w);
void stop_threads(index_writer *w, int abort);
int queue_push(index_writer *w, tjob *j);
int tokenize_doc(tworker *wk, uint32_t id, jdoc *d);
int end_tokenizing(index_writer *w);

/* writer_postings.c */
int merge_terms(index_writer *w, mterm **out, size_t *nout, bterm ***outparts);
int add_ngrams(index_writer *w, mterm **pmt, size_t *pnm, bterm ***pparts,
               bterm **ng, size_t *nng);
void post_task(finish_ctx *c, post_piece *pc);

/* writer_store.c */
void dict_task(finish_ctx *c);
void store_task(finish_ctx *c, store_piece *sp);

/* writer_file.c */
int build_categories(const index_writer *w, buf *out, fmt_doc *fdocs, uint32_t *ncat);
int write_file(const char *path, fmt_header *h, const section *secs, char *err,
               size_t errlen);

#endif
