/* testutil.h — small helpers shared by the cmocka test programs. */
#ifndef SOUSUO_TESTUTIL_H
#define SOUSUO_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "indexer/corpus.h"

/* The read-only shared data folder (corpus, bench files): $SHARED or ../shared. */
static inline const char *test_shared_dir(void)
{
	const char *s = getenv("SHARED");
	return s && *s ? s : "../shared";
}

/* Folder holding the built programs: $BIN or bin. */
static inline const char *test_bin_dir(void)
{
	const char *s = getenv("BIN");
	return s && *s ? s : "bin";
}

/* A path in /tmp unique to this process: /tmp/sousuo-test-PID-name.  The
 * string lives in one of 8 rotating static buffers. */
static inline char *test_tmp_path(const char *name)
{
	static char buf[8][256];
	static int k;
	char *p = buf[k++ & 7];
	snprintf(p, sizeof buf[0], "/tmp/sousuo-test-%ld-%s", (long)getpid(), name);
	return p;
}

/* A reader over the shared law corpus and the seed document, in that order
 * ($SHARED/corpus/laws, $SHARED/corpus/seed); NULL with a message in err. */
static inline corpus_reader *test_open_corpus(corpus_skip_fn skip, char *err, size_t errlen)
{
	char laws[512], seed[512];
	snprintf(laws, sizeof laws, "%s/corpus/laws", test_shared_dir());
	snprintf(seed, sizeof seed, "%s/corpus/seed", test_shared_dir());
	const char *inputs[2] = { laws, seed };
	return corpus_open(inputs, 2, 0, skip, NULL, err, errlen);
}

#endif
