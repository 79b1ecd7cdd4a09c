/* corpus_int.h — private to indexer/corpus*.c: the reader's state and the
 * functions the corpus files share.  Nothing else should include it; the
 * public API is corpus.h.
 *
 * Which file holds what:
 *  - corpus.c          the API (corpus_open/next/close/error/skipped), input
 *                      checks and dispatch, skip reporting, shared helpers,
 *                      whole-file reads of .md/.txt files (corpus_load_file);
 *  - corpus_walk.c     the sorted recursive folder walk (hidden entries,
 *                      symbolic links, loops);
 *  - corpus_jsonl.c    JSON Lines files, parsed with cJSON;
 *  - corpus_markdown.c corpus_clean_markdown and titles;
 *  - corpus_dates.c    corpus_date_from_name / corpus_date_from_text and the
 *                      JSON "date" field. */
#ifndef SOUSUO_CORPUS_INT_H
#define SOUSUO_CORPUS_INT_H

#include "indexer/corpus.h"

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

enum { K_NONE, K_MD, K_TXT, K_JSONL, K_DIR };

/* One folder being walked: its entries sorted byte-wise, hidden ones left out. */
typedef struct {
	struct dirent **ents;
	int n, i;
	char *rel;  /* path relative to the root, "" for the root */
	char *fs;   /* path to open */
	dev_t dev;
	ino_t ino;
} frame;

struct corpus_reader {
	char **inputs;
	int *kinds;
	int n, next_input;
	int strict, failed;
	corpus_skip_fn skip;
	void *skip_ctx;
	uint64_t skipped;
	char err[1024];

	frame *stack;
	size_t depth, stack_cap;

	/* The JSON Lines file being read, if any. */
	FILE *jf;
	char *jpath;     /* doc path prefix ("x.jsonl", "sub/x.jsonl") */
	char *jfs;       /* path it was opened by, for skip reports */
	uint64_t jline;
	char *line;      /* the current line, at most SOUSUO_MAX_DOC_BYTES + 1 */
	size_t line_cap;
	char *rbuf;      /* bytes read from jf and not yet taken into a line */
	size_t rpos, rlen;

	corpus_doc cur;
};

/* corpus.c: helpers */
char *corpus_dup_n(const char *s, size_t n);
char *corpus_dup_s(const char *s);
const char *corpus_base_name(const char *path);
int corpus_kind_of_name(const char *name);  /* K_MD, K_TXT, K_JSONL or K_NONE */
int corpus_oom(corpus_reader *r);           /* sets "out of memory", returns -1 */
/* Reports one skipped input; returns -1 in strict mode (the error is set),
 * else 0. */
int corpus_skip_input(corpus_reader *r, const char *what, const char *fmt, ...);
void corpus_free_doc(corpus_doc *d);
int corpus_utf8_valid(const char *s, size_t len);
/* Reads one .md/.txt file into r->cur: 1 (document), 0 (skipped), -1. */
int corpus_load_file(corpus_reader *r, const char *rel, const char *fs, int kind);

/* corpus_walk.c: the folder stack in r->stack */
int corpus_walk_push(corpus_reader *r, char *rel, char *fs);  /* takes rel, fs */
void corpus_walk_pop(corpus_reader *r);
int corpus_walk_step(corpus_reader *r);  /* 1 (document), 0 (go on), -1 */

/* corpus_jsonl.c: the JSON Lines file in r->jf */
int corpus_jsonl_open(corpus_reader *r, const char *rel, const char *fs);
int corpus_jsonl_next(corpus_reader *r);  /* 1, 0 at its end (closed), -1 */
void corpus_jsonl_close(corpus_reader *r);

/* corpus_markdown.c: titles */
#define CORPUS_MAX_TITLE_BYTES 1024   /* longer titles are cut (corpus.h) */
char *corpus_make_title(const char *s, size_t n, int strip_hashes);
char *corpus_title_from_name(const char *rel);

/* corpus_dates.c */
long corpus_find_name_date(const char *name, size_t n, int *y, int *m, int *d);
uint32_t corpus_date_from_iso(const char *s);  /* JSON "date": YYYY[-MM-DD] */

#endif
