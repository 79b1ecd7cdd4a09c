/* writer.h — builds an index file from documents (format in writer.c's top
 * comment and docs/INDEX-FORMAT.md).  Called by the sousuo-index program and
 * by tests that need a small index. */
#ifndef SOUSUO_WRITER_H
#define SOUSUO_WRITER_H

#include <stddef.h>
#include <stdint.h>
#include "indexer/corpus.h"

typedef struct {
	int zstd_level;          /* document store compression level (default 6) */
	int threads;             /* threads for tokenizing, encoding and compressing
	                            (default 2; at most 64 are used).  The index is
	                            the same byte for byte whatever the number. */
	size_t zdict_bytes;      /* trained dictionary size (default 256 KiB) */
	uint32_t ngram_min_df;   /* runs of 3-4 CJK characters in at least this many
	                            documents get postings of their own, runs of 4
	                            with positions (ngrams.h);
	                            0: max(16, documents / 16); UINT32_MAX: none */
} writer_opts;

typedef struct {
	uint32_t docs;
	uint64_t terms;
	uint64_t body_tokens;
	uint64_t positions;      /* position entries written */
	uint64_t section_bytes[16];  /* by FMT_SEC_* */
	uint64_t file_bytes;
	uint64_t raw_bytes;      /* bodies as read */
	uint64_t ngrams;         /* n-gram terms written */
	uint64_t postings;       /* (term, document) entries, all terms */
	double tokenize_wait_seconds; /* writer_finish waiting for tokenizing to end */
	double encode_seconds;   /* postings, dictionary, document store */
	double write_seconds;    /* writing and syncing the file */
} writer_stats;

typedef struct index_writer index_writer;

/* opts may be NULL for defaults.  Starts the tokenizing threads when
 * threads > 1 (writer_finish or writer_free ends them).  Returns NULL when
 * out of memory. */
index_writer *writer_new(const writer_opts *opts);

/* Adds one document (copied; doc's strings may be freed after).  Its id is
 * the number of documents added before it.  With more than one thread the
 * document is only queued here and tokenized by the writer's threads.
 * Returns 0, or -1 with a message in err when a limit is exceeded or memory
 * runs out (then writer_finish fails too). */
int writer_add(index_writer *w, const corpus_doc *doc, char *err, size_t errlen);

/* Waits for the tokenizing to end, encodes everything added and writes the
 * index to path atomically: a temporary file in the same folder
 * ("<path>.tmp.<pid>", locked with flock while written), fsync, rename,
 * fsync of the folder; on failure the previous file at path is untouched and
 * the temporary removed.  A process killed while writing leaves its
 * temporary; the next writer_finish for the same path removes it (only
 * temporaries of that exact name pattern that no live writer holds locked;
 * writer_file.c, TEMPORARIES).  Returns 0 and fills *stats (may be
 * NULL), or -1 with a message in err.  Call it once: the writer can only be
 * freed after it, whether it succeeded or not. */
int writer_finish(index_writer *w, const char *path, writer_stats *stats,
                  char *err, size_t errlen);

void writer_free(index_writer *w);

#endif
