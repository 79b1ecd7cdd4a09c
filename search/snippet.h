/* snippet.h — the excerpt of a document shown with a result: a window of the
 * body around the best cluster of query matches, cut on character boundaries,
 * markup separators and line breaks shown as spaces (none between two CJK
 * characters), matches wrapped in markers.  Used by sousuo-search and the
 * daemon; one snippet_ctx per thread. */
#ifndef SOUSUO_SNIPPET_H
#define SOUSUO_SNIPPET_H

#include <stddef.h>
#include "search/query.h"

/* Query terms a snippet marks; terms past this many are not marked. */
#define SNIPPET_MAX_TERMS 64
/* Bytes of body read past the first match in search of a window that holds
 * every term; the window is chosen among what was read. */
#define SNIPPET_SCAN_BYTES 16384

typedef struct {
	size_t chars;          /* window length in characters (default 80) */
	const char *open;      /* marker before a match (default "【") */
	const char *close;     /* marker after a match (default "】") */
} snippet_opts;

void snippet_opts_default(snippet_opts *o);

typedef struct snippet_ctx snippet_ctx;
snippet_ctx *snippet_ctx_new(void);
void snippet_ctx_free(snippet_ctx *s);

/* Returns the snippet of text[0..len) for the positive terms of q (terms
 * under a NOT are not marked); NUL-terminated, owned by s, valid until its
 * next call; NULL when out of memory.  With no match in the body (a title-only
 * or filter-only query) it is the start of the text. */
const char *snippet_make(snippet_ctx *s, const query *q, const char *text, size_t len,
                         const snippet_opts *o);

#endif
