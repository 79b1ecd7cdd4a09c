/* query.h — the query language's parser: turns a query string into a tree
 * that the engine evaluates.  A pure function of its input: no index, no I/O.
 *
 * Grammar (whitespace separates; '|' binds looser than juxtaposition):
 *   query   := or
 *   or      := and ( '|' and )*
 *   and     := unary+                      juxtaposition = AND
 *   unary   := '-' primary | primary       '-' only at the start of a chunk
 *   primary := '(' or ')' | filter | [ 'title:' ] ( term | phrase )
 *   term    := a chunk of characters other than whitespace ( ) | "
 *   phrase  := '"' any characters but '"' '"'
 *   filter  := 'category:' value           prefix of the category path
 *            | 'date' op date              op: >= > <= < =   date: YYYY, YYYY-MM, YYYY-MM-DD
 *            | 'sort:' ( 'date' | 'relevance' )     (only at top level; not a leaf)
 * Keywords (title:, category:, date, sort:) are ASCII and case-insensitive.
 * A term or phrase is tokenized with text.h: its tokens must occur in a
 * document at the same relative positions (a gap-free CJK run as a substring,
 * words whole, "500万元" as 500 directly followed by 万元; separators inside
 * the term, as in "covid-19", must be separators in the document too).
 *
 * Details the grammar leaves open, as query.c decides them:
 *  - Whitespace is ASCII space, every ASCII control character (NUL included)
 *    and Unicode White_Space (U+3000 ...).  Only ASCII ( ) | " - are
 *    operators; full-width （ ） ｜ “ are ordinary separators inside a term.
 *  - A chunk starts at the query start, after whitespace, and after ( ) | or
 *    a closing '"'; so "a-b" is one term but "(a)-b" is a AND NOT b.  '-' must
 *    be directly followed by its operand: "-", "a - b" and "--x" are syntax
 *    errors (NOT NOT x is written -(-x)).  After title: the term may start with
 *    '-'.
 *  - Keywords are recognised only where a primary starts; "date" is the date
 *    filter only when directly followed by < > = (or ':', which is an error
 *    naming the operators), so "dates" and "date" alone are terms.
 *  - date: the year has 4 digits (0001..9999), month and day 1 or 2 digits,
 *    checked against the calendar (2021-02-30 and 2021-13-01 are refused).  The
 *    evaluator compares a document date d as: = lo<=d<=hi, < d<lo, <= d<=hi,
 *    > d>hi, >= d>=lo.
 *  - category: the value is kept as written, leading and trailing '/'
 *    removed; an empty value or an empty segment ("a//b") is an error.
 *  - sort: at most once, outside parentheses, not negated; it makes no node.
 *    A query of only sort: is empty; "a | sort:date" leaves '|' without a
 *    right side.
 *  - AND/OR with one kid are that kid, and an AND (OR) kid of an AND (OR) is
 *    merged into it: "(a b) c" is AND(a, b, c), so nkids >= 2.
 *  - Columns: NOT at its '-'; AND/OR at the first kid; a term at its first
 *    byte, or at title:, or at the opening '"'.  Term errors (no-tokens,
 *    term-too-long, too-many-terms) point at the term's column, lone-cjk at
 *    the character, a dangling '|' at the '|', unbalanced '(' at that '(',
 *    too-deep at the first '(' over the limit, too-long at column
 *    SOUSUO_MAX_QUERY_BYTES + 1, empty at column 1.
 *  - Order: the length, then UTF-8 over the whole query, then the leftmost
 *    problem wins.
 *  - SOUSUO_MAX_QUERY_TERMS counts QN_TERM leaves only; filters do not count.
 */
#ifndef SOUSUO_QUERY_H
#define SOUSUO_QUERY_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
	QN_TERM = 1,   /* tokens at fixed relative positions */
	QN_AND,        /* all kids */
	QN_OR,         /* any kid */
	QN_NOT,        /* kids[0] absent */
	QN_CATEGORY,   /* document category starts with `text` (whole path segments) */
	QN_DATE        /* document date compared with `date` by `op` */
} query_node_kind;

typedef enum { QOP_EQ = 1, QOP_LT, QOP_LE, QOP_GT, QOP_GE } query_op;
typedef enum { QF_ANY = 0, QF_TITLE = 1 } query_field;
typedef enum { QSORT_RELEVANCE = 0, QSORT_DATE = 1 } query_sort;

typedef struct {
	int kind;          /* TEXT_TOK_CJK or TEXT_TOK_WORD */
	uint32_t cp;       /* CJK code point */
	const char *word;  /* normalized word bytes (owned by the query) */
	uint32_t word_len;
	uint32_t pos;      /* relative position: 0 for the first token */
} query_token;

typedef struct query_node query_node;
struct query_node {
	query_node_kind kind;
	uint32_t col;            /* 1-based byte column where the node starts */
	/* QN_TERM */
	query_field field;
	query_token *toks;       /* ntoks >= 1 */
	uint32_t ntoks;
	const char *text;        /* QN_TERM: the term as written (NUL-terminated),
	                            without title: and, for a phrase, without
	                            the quotes; QN_CATEGORY: the prefix */
	/* QN_DATE */
	query_op op;
	uint32_t date_lo, date_hi;   /* the range the written date covers, YYYYMMDD,
	                                inclusive: "2021" is 20210101..20211231 */
	/* QN_AND, QN_OR, QN_NOT */
	query_node **kids;
	uint32_t nkids;
};

typedef struct {
	query_node *root;        /* never NULL for a parsed query */
	query_sort sort;
	uint32_t nterms;         /* QN_TERM leaves */
	void *arena;             /* private: owns every node, token and string */
} query;

typedef enum {
	QERR_OK = 0,
	QERR_EMPTY,          /* nothing to search for */
	QERR_TOO_LONG,       /* over SOUSUO_MAX_QUERY_BYTES */
	QERR_UTF8,           /* invalid UTF-8 */
	QERR_SYNTAX,         /* unexpected character or missing operand */
	QERR_PAREN,          /* unbalanced parentheses */
	QERR_QUOTE,          /* unterminated phrase */
	QERR_NO_TOKENS,      /* a term with no letters, digits or CJK characters */
	QERR_TOO_MANY_TERMS, /* over SOUSUO_MAX_QUERY_TERMS */
	QERR_TOO_DEEP,       /* nesting over SOUSUO_MAX_QUERY_DEPTH */
	QERR_TERM_TOO_LONG,  /* a term over SOUSUO_MAX_TERM_TOKENS tokens */
	QERR_FILTER,         /* malformed category:/date/sort: */
	QERR_LONE_CJK,       /* a single CJK character between separators inside
	                        a multi-part term or phrase ("外，资") */
	QERR_NOMEM
} query_errcode;

typedef struct {
	query_errcode code;
	uint32_t col;        /* 1-based byte column of the problem */
	char msg[192];       /* one line, says what and where */
} query_error;

/* Parses text[0..len).  Returns a query to be freed with query_free, or NULL
 * with *err filled in.  Never reads past len; any bytes are accepted. */
query *query_parse(const char *text, size_t len, query_error *err);
void query_free(query *q);

/* A short name for an error code ("syntax", "paren", ...), for protocols. */
const char *query_errcode_name(query_errcode code);

#endif
