/* index.h — the index reader: maps an index file read-only, verifies it, and
 * gives the query engine access to the dictionary, postings, documents and
 * the compressed document store.  Shared by all threads of a process: an
 * opened index is immutable, every function here is thread-safe except where
 * it takes a per-thread index_store_ctx. */
#ifndef SOUSUO_INDEX_H
#define SOUSUO_INDEX_H

#include <stddef.h>
#include <stdint.h>
#include "indexer/format.h"

typedef struct sousuo_index sousuo_index;

/* Maps path, checks the header (magic, version, sizes), every section's
 * bounds and xxh3 checksum, and the fixed tables' internal consistency.
 * Returns 0 and *out, or -1 with a one-line message naming what is wrong in
 * err (e.g. "laws.idx: section POSTINGS: checksum mismatch").  Cost: one pass
 * of checksumming over the file; nothing is decoded. */
int index_open(const char *path, sousuo_index **out, char *err, size_t errlen);
void index_close(sousuo_index *ix);

/* Locks the mapping in memory (mlock), so that the kernel never drops its
 * pages: a dropped page costs a disk read in the middle of a query (on this
 * machine a proactive reclaimer pages out what has not been touched for a
 * while, and such queries took milliseconds).  Returns 0, or -1 with the
 * reason in err (RLIMIT_MEMLOCK, usually): the index still works. */
int index_lock(sousuo_index *ix, char *err, size_t errlen);

const fmt_header *index_header(const sousuo_index *ix);
uint32_t index_ndocs(const sousuo_index *ix);
double index_avg_body(const sousuo_index *ix);   /* tokens */
double index_avg_title(const sousuo_index *ix);  /* tokens */

/* A term's postings, as found in the dictionary.  Pointers into the mapping,
 * valid until index_close. */
typedef struct {
	uint64_t key;
	uint32_t df;
	const uint8_t *blob;      /* the term's blob in POSTINGS */
	const uint8_t *blob_end;  /* end of the blob (the decoder's bound) */
	const uint8_t *pos_base;  /* start of POSITIONS */
	const uint8_t *pos_end;   /* end of POSITIONS */
	uint32_t ndocs;           /* documents in the index: every document id
	                             the postings give must be below it */
} index_term;

/* Looks key up; returns 1 and fills *t when present, else 0. */
int index_lookup(const sousuo_index *ix, uint64_t key, index_term *t);

const fmt_doc *index_doc(const sousuo_index *ix, uint32_t doc);

/* Category path of category id (not NUL-terminated): bytes in *len. */
const char *index_category(const sousuo_index *ix, uint32_t id, size_t *len);
uint32_t index_ncategories(const sousuo_index *ix);

/* Per-thread decompression state for the document store. */
typedef struct index_store_ctx index_store_ctx;
index_store_ctx *index_store_ctx_new(void);
void index_store_ctx_free(index_store_ctx *c);

/* Bytes of decompressed metadata an open index keeps (index_doc_meta). */
#define INDEX_META_CACHE_BYTES (64u << 20)

/* Document doc's metadata.  The strings are owned by ctx or by the index and
 * valid until ctx's next use.  Returns 0, or -1 if the frame is corrupt.
 * Decompressed once per document and kept by the index, up to
 * INDEX_META_CACHE_BYTES in all. */
typedef struct {
	const char *path, *title, *ext_id;
} index_meta;
int index_doc_meta(const sousuo_index *ix, index_store_ctx *ctx, uint32_t doc, index_meta *m);

/* Decompresses document doc's body (NUL-terminated, *len bytes), owned by
 * ctx, valid until its next index_doc_body call.  NULL if corrupt. */
const char *index_doc_body(const sousuo_index *ix, index_store_ctx *ctx, uint32_t doc, size_t *len);

#endif
