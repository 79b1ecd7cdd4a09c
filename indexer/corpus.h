/* corpus.h — reads a corpus into documents for the indexer: folders of .md
 * and .txt files walked recursively in sorted (byte-wise) order, and JSON
 * Lines files.  It extracts each document's metadata and strips Markdown
 * markup.  Called by the indexer's main program; knows nothing of indexes.
 *
 * Per document:
 *  - path: relative to the corpus root it was found under, e.g.
 *    "行政法规/专利代理条例(2018-11-06).md" for root ".../laws".  A JSON Lines
 *    document's path is "<file name>:<line number>" (1-based); a .md/.txt file
 *    given directly as an input has its base name as path.
 *  - category: the folder part of path ("行政法规", "地方性法规/山东"), "" at
 *    the root; JSON Lines: the "category" field or "".
 *  - date: YYYYMMDD as an integer from "(YYYY-MM-DD)" in the file name, else
 *    from the first date written in the header lines (the lines before the
 *    "<!-- INFO END -->" marker, or the first 10 lines: "2009年2月28日",
 *    "2021年 12月 9日", "2019-06-05"), else 0; JSON Lines: "date" field
 *    ("YYYY-MM-DD" or "YYYY"), else 0.
 *  - title: the text of the first level-1 Markdown heading ("# 标题"), else the
 *    file name without its extension and without a trailing "(YYYY-MM-DD)";
 *    JSON Lines: the "title" field.
 *  - body: the text that is searched and shown in snippets.  For .md files,
 *    markup is replaced by a hard separator so that it is neither indexed nor
 *    shown, and text on its two sides never joins into one CJK run:
 *    YAML front matter at the very start ("---" line ... "---" line) and HTML
 *    comments ("<!-- ... -->") are replaced by one "\x1f" byte each; heading
 *    marks ("#" x 1..6 followed by a space at a line start) are replaced by
 *    "\x1f" too.  ("\x1f" is not whitespace, so the tokenizer treats it as a
 *    separator; snippet code shows it as a space.)  .txt bodies are the file
 *    text unchanged.  JSON Lines: the "title" field, "\n", then "body".
 *  - ext_id: JSON Lines "id" field (string or number, as a string), else NULL.
 *
 * Bad inputs (unreadable, empty, invalid UTF-8, binary with NUL bytes, larger
 * than SOUSUO_MAX_DOC_BYTES, a malformed JSON line, a line missing title or
 * body) are skipped: corpus_next reports each through the skip callback with a
 * one-line reason and goes on; in strict mode it returns -1 instead.
 * Symbolic links to directories are not followed (no loops); other entries
 * that are not regular files or directories are ignored.
 */
#ifndef SOUSUO_CORPUS_H
#define SOUSUO_CORPUS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
	char *path;      /* see above; owned by the reader */
	char *title;     /* valid UTF-8, no newlines; owned by the reader */
	char *category;  /* owned by the reader */
	char *ext_id;    /* may be NULL; owned by the reader */
	char *body;      /* valid UTF-8, body_len bytes + a NUL; owned by the reader */
	size_t body_len;
	uint32_t date;   /* YYYYMMDD or 0 */
} corpus_doc;

/* Called once for each skipped input: what (a path, or "file:line") and why. */
typedef void (*corpus_skip_fn)(void *ctx, const char *what, const char *why);

typedef struct corpus_reader corpus_reader;

/* Opens a reader over inputs[0..n): folders, .md/.txt files, or .jsonl files.
 * Returns NULL and writes a message into err (errlen bytes) when an input does
 * not exist or cannot be opened.  strict != 0 makes any skipped input fatal.
 * skip may be NULL. */
corpus_reader *corpus_open(const char *const *inputs, int n, int strict,
                           corpus_skip_fn skip, void *skip_ctx,
                           char *err, size_t errlen);

/* Fills *doc with the next document and returns 1; returns 0 at the end and
 * -1 on a fatal error (strict mode, or out of memory), with the message
 * available from corpus_error.  The strings in *doc stay valid until the next
 * corpus_next or corpus_close call. */
int corpus_next(corpus_reader *r, corpus_doc *doc);

/* The last fatal error's message, or "" if none.  Owned by the reader. */
const char *corpus_error(const corpus_reader *r);

/* Inputs skipped so far. */
uint64_t corpus_skipped(const corpus_reader *r);

void corpus_close(corpus_reader *r);

/* Exposed for unit tests: the Markdown cleanup described above, on a NUL-
 * terminated text; returns a new malloc'd string (caller frees) and its length
 * in *out_len, and writes the first level-1 heading (trimmed, malloc'd, or
 * NULL if none) into *title.  Returns NULL when out of memory. */
char *corpus_clean_markdown(const char *text, size_t len, size_t *out_len, char **title);

/* Exposed for unit tests: parses a date as described above from a file name
 * ("名(2018-11-06).md") or from header text; returns YYYYMMDD or 0. */
uint32_t corpus_date_from_name(const char *name);
uint32_t corpus_date_from_text(const char *text, size_t len);

#endif
