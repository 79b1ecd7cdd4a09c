/* testutil.h — small helpers shared by the cmocka test programs. */
#ifndef SOUSUO_TESTUTIL_H
#define SOUSUO_TESTUTIL_H

#include <stdlib.h>

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

#endif
