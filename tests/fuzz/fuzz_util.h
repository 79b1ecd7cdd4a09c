/* fuzz_util.h — what the libFuzzer targets in tests/fuzz/ share: the check
 * that turns a broken invariant into a crash libFuzzer keeps, and small
 * indexes written from hand-made documents.
 *
 * Each target (fuzz_*.c) includes this header; tests/test_fuzz_regress.c
 * includes all five targets into one translation unit (each target's
 * LLVMFuzzerTestOneInput renamed by a macro), so everything here is a macro
 * or static inline, and each target prefixes its own static names. */
#ifndef SOUSUO_FUZZ_UTIL_H
#define SOUSUO_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "indexer/corpus.h"
#include "indexer/writer.h"
#include "search/index.h"

/* A broken invariant must stop the process so that libFuzzer saves the
 * input; the regression test defines FUZZ_FAIL to report through cmocka
 * instead. */
#ifndef FUZZ_FAIL
#define FUZZ_FAIL(what, file, line) \
	(fprintf(stderr, "%s:%d: invariant failed: %s\n", (file), (line), (what)), abort())
#endif
#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			FUZZ_FAIL(#cond, __FILE__, __LINE__); \
	} while (0)

/* One hand-made document; short_title NULL means "the title". */
typedef struct {
	const char *path, *title, *short_title, *category, *ext_id, *body;
	uint32_t date;
} fuzz_doc;

/* Writes an index of docs[0..n) and returns it opened, or NULL with a
 * message on stderr.  writer_finish needs a path, so the file goes to
 * $TMPDIR (or /tmp) and is unlinked once mapped: no file outlives the
 * process.  With bytes non-NULL the file's contents are also returned
 * (malloc'd, *len bytes) for targets that mutate them.  ngram_min_df as in
 * writer_opts (1: every 3- and 4-character run gets its n-gram term). */
static inline sousuo_index *fuzz_build_index(const fuzz_doc *docs, size_t n,
                                             uint32_t ngram_min_df, const char *tag,
                                             uint8_t **bytes, size_t *len)
{
	char path[512], err[256];
	const char *tmp = getenv("TMPDIR");
	snprintf(path, sizeof path, "%s/sousuo-fuzz-%ld-%s.idx", tmp && *tmp ? tmp : "/tmp",
	         (long)getpid(), tag);
	writer_opts wo = { .zstd_level = 3, .threads = 1, .zdict_bytes = 0,
	                   .ngram_min_df = ngram_min_df };
	index_writer *w = writer_new(&wo);
	if (!w)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		corpus_doc d = { (char *)docs[i].path, (char *)docs[i].title,
		                 (char *)docs[i].category, (char *)docs[i].ext_id,
		                 (char *)docs[i].body, strlen(docs[i].body), docs[i].date,
		                 (char *)docs[i].short_title };
		if (writer_add(w, &d, err, sizeof err)) {
			fprintf(stderr, "fuzz: writer_add: %s\n", err);
			writer_free(w);
			return NULL;
		}
	}
	int rc = writer_finish(w, path, NULL, err, sizeof err);
	writer_free(w);
	if (rc) {
		fprintf(stderr, "fuzz: writer_finish: %s\n", err);
		return NULL;
	}
	if (bytes) {
		FILE *f = fopen(path, "rb");
		*bytes = NULL;
		*len = 0;
		if (f && fseek(f, 0, SEEK_END) == 0) {
			long sz = ftell(f);
			*bytes = sz > 0 ? malloc((size_t)sz) : NULL;
			rewind(f);
			if (*bytes && fread(*bytes, 1, (size_t)sz, f) == (size_t)sz)
				*len = (size_t)sz;
		}
		if (f)
			fclose(f);
	}
	sousuo_index *ix = NULL;
	if (index_open(path, &ix, err, sizeof err))
		fprintf(stderr, "fuzz: index_open: %s\n", err);
	unlink(path);
	return ix;
}

#endif
