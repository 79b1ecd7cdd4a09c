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
 *
 * Details (corpus*.c; corpus_int.h says which file holds what):
 *  - Walk: depth first; at each level entries are sorted by strcmp on their
 *    names, folders descended where they sort ("a.md" < "b/x.md" < "c.md").
 *    Names starting with "." are ignored.  Extensions .md/.txt/.jsonl match
 *    in any case (".MD").  A symbolic link to a regular file is read; a broken
 *    link with one of those extensions (dangling, or a loop of links) is
 *    skipped with a reason ("broken symbolic link: <strerror>").  Inputs are
 *    read in the order given; a link given directly as an input is followed.
 *  - A file, or a JSON line, is read whole; a UTF-8 BOM at its start is
 *    dropped (a file holding only a BOM is "empty").  A file whose path is not
 *    valid UTF-8 is skipped, so path, category, title and body are always
 *    valid UTF-8.
 *  - Skip reports: what is the path as opened (input joined with the relative
 *    path), or "<that path>:<line>" for a JSON line.  In strict mode the skip
 *    callback is still called and counted, then corpus_next returns -1 with
 *    corpus_error = "<what>: <why>", and keeps returning -1.
 *  - Markdown: front matter must start at byte 0 and be closed by a "---" line
 *    (trailing spaces/CR allowed), else it is text; the "\x1f" replaces it up
 *    to the end of the closing fence, its newline kept.  A heading mark is
 *    "#" x 1..6 at column 0 followed by spaces/tabs, all replaced by one
 *    "\x1f".  Fenced code blocks are not recognised.  HTML comments are
 *    replaced anywhere, also in mid-line.
 *  - Titles: whitespace and control runs (incl. "\x1f" from a comment inside
 *    the heading) collapse to one space, trimmed; a Markdown closing sequence
 *    ("# 标题 ##") is dropped; an empty level-1 heading is passed over.  A
 *    title (heading, JSON "title" or name) longer than 1024 bytes is cut at a
 *    character and ends in "…" (a JSON title is still whole in the body).  .txt
 *    titles always come from the file name.  The name fallback is never empty
 *    ("(2018-11-06).md" keeps "(2018-11-06)").
 *  - Dates: year 1900..2100, month 1..12, day 1..31 (not checked against the
 *    month); an invalid candidate is passed over.  From a name: the last
 *    "(YYYY-MM-DD)" in the base name.  From text: "2009年2月28日" (ASCII or
 *    full-width digits, spaces/U+3000 allowed around 年月日), "2019-06-05",
 *    "2019.6.5", "2019/6/5" (month/day 1 or 2 digits, not followed by the
 *    separator and a digit), "二〇一九年六月五日" (〇/○/零 for zero); a date
 *    must not follow or run into other digits.  Applies to .md and .txt.
 *  - JSON Lines: blank lines are ignored (not skips); an empty .jsonl file is
 *    skipped as "empty file".  A line must be one JSON object with nothing
 *    after it.  A line longer than SOUSUO_MAX_DOC_BYTES, or holding a NUL
 *    byte or the escape \u0000 (which would cut a string short), is skipped;
 *    the reader keeps at most that many bytes of a line, so a huge file
 *    without newlines does not fill memory.  A non-string "category", a
 *    "date" of another form, an "id" that is neither string nor number:
 *    treated as absent.  A numeric id is written as an integer when it is
 *    one ("42"), else "%.17g".  The title is as given (whitespace collapsed,
 *    cut past 1024 bytes as above), possibly "".
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
	char *short_title; /* the name the document is known by: a file's name
	                      without extension and "(YYYY-MM-DD)" ("气象法" where
	                      title is "中华人民共和国气象法"); JSON Lines: the
	                      title.  Owned by the reader; may be NULL for
	                      documents made by hand, meaning "same as title". */
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
