/* query.c — the query language's parser (query.h).  A recursive-descent
 * parser over the query's bytes that builds the tree in one arena per query
 * and cuts every term and phrase into tokens with the text layer (text.h), so
 * a query term is read exactly as the indexer reads a document.  Called by the
 * search engine and the daemon; a pure function of its input, no global state.
 *
 * Recursion is bounded: only '(' recurses, and it is refused past
 * SOUSUO_MAX_QUERY_DEPTH before the recursive call, so a query of thousands of
 * '(' costs SOUSUO_MAX_QUERY_DEPTH frames, never the stack.
 *
 * The first problem from the left wins, except that the length limit and then
 * UTF-8 validity are checked on the whole query before parsing starts. */
#include "search/query.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "indexer/limits.h"
#include "indexer/text.h"

/* ---- arena: a bump allocator over a list of chunks ------------------------
 * Every node, token array, word and string of a query lives here; query_free
 * frees the chunks and with them the query.  The arena header and the query
 * struct themselves live in the first chunk, so a parsed query costs one
 * malloc when it fits ARENA_FIRST bytes. */

typedef struct arena_chunk arena_chunk;
struct arena_chunk {
	arena_chunk *next;   /* the chunk allocated before this one */
	size_t cap;          /* data bytes after the header */
	size_t used;         /* data bytes handed out */
};

typedef struct {
	arena_chunk *head;   /* newest chunk: allocations come from here */
} arena;

#define ARENA_ALIGN _Alignof(max_align_t)
#define ALIGN_UP(n) (((n) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1))
#define CHUNK_HDR ALIGN_UP(sizeof(arena_chunk))
enum {
	ARENA_FIRST = 2048,          /* first chunk: most queries fit */
	ARENA_MAX_CHUNK = 64 * 1024  /* chunks double up to this, unless one
	                                allocation needs more */
};

static arena_chunk *chunk_new(size_t cap)
{
	arena_chunk *c = malloc(CHUNK_HDR + cap);
	if (!c)
		return NULL;
	c->next = NULL;
	c->cap = cap;
	c->used = 0;
	return c;
}

static unsigned char *chunk_data(arena_chunk *c)
{
	return (unsigned char *)c + CHUNK_HDR;
}

/* Returns n bytes aligned for any type, or NULL when out of memory. */
static void *arena_alloc(arena *a, size_t n)
{
	n = ALIGN_UP(n);
	arena_chunk *c = a->head;
	if (c->cap - c->used < n) {
		size_t cap = c->cap * 2;
		if (cap > ARENA_MAX_CHUNK)
			cap = ARENA_MAX_CHUNK;
		if (cap < n)
			cap = n;
		c = chunk_new(cap);
		if (!c)
			return NULL;
		c->next = a->head;
		a->head = c;
	}
	void *p = chunk_data(c) + c->used;
	c->used += n;
	return p;
}

static arena *arena_new(void)
{
	arena_chunk *c = chunk_new(ARENA_FIRST);
	if (!c)
		return NULL;
	arena *a = (arena *)chunk_data(c);
	c->used = ALIGN_UP(sizeof *a);
	a->head = c;
	return a;
}

static void arena_free(arena *a)
{
	if (!a)
		return;
	/* a lives in the first chunk, which is the last one freed */
	arena_chunk *c = a->head;
	while (c) {
		arena_chunk *next = c->next;
		free(c);
		c = next;
	}
}

/* ---- parser state and errors ---------------------------------------------- */

typedef struct {
	const char *s;         /* the query */
	size_t len;            /* its bytes */
	size_t i;              /* cursor: offset of the next unread byte */
	arena *a;
	query *q;
	text_tokenizer *tk;    /* created at the first term */
	query_error *err;
	int depth;             /* parentheses open at the cursor */
	int sorted;            /* a sort: was seen */
} parser;

static void set_err(query_error *err, query_errcode code, size_t off,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Fills *err with code, the 1-based column of byte offset off, and a message
 * formatted from fmt (the caller writes the column into it). */
static void set_err(query_error *err, query_errcode code, size_t off,
                    const char *fmt, ...)
{
	va_list ap;
	err->code = code;
	err->col = (uint32_t)off + 1;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
}

#define FAIL(p, code, off, ...) (set_err((p)->err, (code), (off), __VA_ARGS__), -1)
#define COL(off) ((unsigned)(off) + 1)

static int nomem(parser *p)
{
	return FAIL(p, QERR_NOMEM, p->i, "out of memory at column %u", COL(p->i));
}

static query_node *node_new(parser *p, query_node_kind kind, size_t off)
{
	query_node *n = arena_alloc(p->a, sizeof *n);
	if (!n)
		return NULL;
	memset(n, 0, sizeof *n);
	n->kind = kind;
	n->col = (uint32_t)off + 1;
	return n;
}

static char *arena_strndup(arena *a, const char *s, size_t n)
{
	char *d = arena_alloc(a, n + 1);
	if (!d)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

/* ---- characters ---------------------------------------------------------- */

/* Byte length of the whitespace character at offset i, or 0.  Whitespace is
 * ASCII space and every ASCII control character (so a stray NUL or escape in
 * a query line separates instead of hiding inside a term), plus Unicode
 * White_Space such as the ideographic space U+3000 that Chinese input methods
 * type. */
static size_t space_len(const parser *p, size_t i)
{
	unsigned char c = (unsigned char)p->s[i];
	if (c < 0x80)
		return c <= 0x20 || c == 0x7F;
	if (c != 0xC2 && c != 0xE1 && c != 0xE2 && c != 0xE3)
		return 0;
	uint32_t cp;
	size_t n = text_utf8_get(p->s + i, p->len - i, &cp);
	switch (cp) {
	case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
	case 0x202F: case 0x205F: case 0x3000:
		return n;
	default:
		return cp >= 0x2000 && cp <= 0x200A ? n : 0;
	}
}

/* 1 if offset i ends a chunk: the end, whitespace, ( ) | or ". */
static int is_delim(const parser *p, size_t i)
{
	if (i >= p->len)
		return 1;
	char c = p->s[i];
	return c == '(' || c == ')' || c == '|' || c == '"' || space_len(p, i);
}

static size_t chunk_end(const parser *p, size_t i)
{
	while (!is_delim(p, i))
		i++;
	return i;
}

static void skip_space(parser *p)
{
	size_t n;
	while (p->i < p->len && (n = space_len(p, p->i)) > 0)
		p->i += n;
}

static int lower_ascii(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* 1 if s[i..i+n) equals the lowercase ASCII keyword kw, ignoring case. */
static int ci_equal(const char *s, size_t n, const char *kw)
{
	if (strlen(kw) != n)
		return 0;
	for (size_t k = 0; k < n; k++)
		if (lower_ascii((unsigned char)s[k]) != kw[k])
			return 0;
	return 1;
}

/* 1 if the keyword kw (lowercase ASCII) starts at the cursor, ignoring case. */
static int at_keyword(const parser *p, const char *kw)
{
	size_t n = strlen(kw);
	return p->len - p->i >= n && ci_equal(p->s + p->i, n, kw);
}

/* ---- kid lists ------------------------------------------------------------ */

typedef struct {
	query_node **v;
	uint32_t n, cap;
} kid_list;

static int kids_push(parser *p, kid_list *k, query_node *x)
{
	if (k->n == k->cap) {
		uint32_t cap = k->cap ? k->cap * 2 : 4;
		query_node **v = arena_alloc(p->a, cap * sizeof *v);
		if (!v)
			return nomem(p);
		if (k->n)
			memcpy(v, k->v, k->n * sizeof *v);
		k->v = v;
		k->cap = cap;
	}
	k->v[k->n++] = x;
	return 0;
}

/* Makes an AND or OR of k's nodes in *out: NULL for none, the node itself for
 * one, and otherwise one node whose kids of the same kind are flattened into
 * it (associativity: "(a b) c" is AND(a, b, c)). */
static int make_nary(parser *p, query_node_kind kind, const kid_list *k,
                     query_node **out)
{
	if (k->n <= 1) {
		*out = k->n ? k->v[0] : NULL;
		return 0;
	}
	uint32_t total = 0;
	for (uint32_t j = 0; j < k->n; j++)
		total += k->v[j]->kind == kind ? k->v[j]->nkids : 1;
	query_node *n = node_new(p, kind, k->v[0]->col - 1);
	query_node **v = arena_alloc(p->a, total * sizeof *v);
	if (!n || !v)
		return nomem(p);
	uint32_t m = 0;
	for (uint32_t j = 0; j < k->n; j++) {
		query_node *x = k->v[j];
		if (x->kind == kind) {
			memcpy(v + m, x->kids, x->nkids * sizeof *v);
			m += x->nkids;
		} else {
			v[m++] = x;
		}
	}
	n->kids = v;
	n->nkids = m;
	*out = n;
	return 0;
}

/* ---- terms and phrases ------------------------------------------------------ */

/* Makes a QN_TERM of the text s[off, off+n) in *out: its node starts at byte
 * at (where title: or the opening quote is).  Tokenizes the text, copies the
 * tokens with positions relative to the first, and refuses a term with no
 * tokens, too many tokens, or a lone CJK character between separators. */
static int make_term(parser *p, size_t at, size_t off, size_t n,
                     query_field field, int phrase, query_node **out)
{
	const char *what = phrase ? "phrase" : "term";
	if (p->q->nterms >= SOUSUO_MAX_QUERY_TERMS)
		return FAIL(p, QERR_TOO_MANY_TERMS, at,
		            "too many terms: the %s at column %u is over the limit of %d",
		            what, COL(at), SOUSUO_MAX_QUERY_TERMS);
	if (!p->tk && !(p->tk = text_tokenizer_new()))
		return nomem(p);

	query_token toks[SOUSUO_MAX_TERM_TOKENS];
	size_t src[SOUSUO_MAX_TERM_TOKENS];   /* each token's first byte in s */
	uint32_t nt = 0;
	text_token t;
	text_tokenizer_reset(p->tk, p->s + off, n);
	while (text_tokenizer_next(p->tk, &t)) {
		if (nt == SOUSUO_MAX_TERM_TOKENS)
			return FAIL(p, QERR_TERM_TOO_LONG, at,
			            "%s at column %u is over the limit of %d tokens",
			            what, COL(at), SOUSUO_MAX_TERM_TOKENS);
		query_token *q = &toks[nt];
		q->kind = t.kind;
		q->cp = t.cp;
		q->word = NULL;
		q->word_len = 0;
		if (t.kind == TEXT_TOK_WORD) {
			/* valid until the next call: copy now */
			if (!(q->word = arena_strndup(p->a, t.word, t.word_len)))
				return nomem(p);
			q->word_len = (uint32_t)t.word_len;
		}
		q->pos = t.pos;
		src[nt] = off + t.src_start;
		nt++;
	}
	if (nt == 0)
		return FAIL(p, QERR_NO_TOKENS, at,
		            "%s at column %u has no letters, digits or CJK characters",
		            what, COL(at));

	uint32_t base = toks[0].pos, gaps = 0;
	for (uint32_t j = 0; j < nt; j++) {
		toks[j].pos -= base;
		if (j > 0 && toks[j].pos - toks[j - 1].pos > 1)
			gaps++;
	}
	/* A part is a run of adjacent tokens; with more than one part, a part
	 * that is one CJK character cannot be placed by the index. */
	for (uint32_t j = 0; gaps > 0 && j < nt; j++) {
		int gap_before = j == 0 || toks[j].pos - toks[j - 1].pos > 1;
		int gap_after = j + 1 == nt || toks[j + 1].pos - toks[j].pos > 1;
		if (toks[j].kind == TEXT_TOK_CJK && gap_before && gap_after) {
			char ch[4];
			size_t chn = text_utf8_put(ch, toks[j].cp);
			return FAIL(p, QERR_LONE_CJK, src[j],
			            "lone CJK character '%.*s' at column %u between separators inside a %s:"
			            " join it to its neighbours or search it as its own term",
			            (int)chn, ch, COL(src[j]), what);
		}
	}

	query_node *node = node_new(p, QN_TERM, at);
	query_token *copy = arena_alloc(p->a, nt * sizeof *copy);
	char *text = arena_strndup(p->a, p->s + off, n);
	if (!node || !copy || !text)
		return nomem(p);
	memcpy(copy, toks, nt * sizeof *copy);
	node->field = field;
	node->toks = copy;
	node->ntoks = nt;
	node->text = text;
	p->q->nterms++;
	*out = node;
	return 0;
}

/* The cursor is on '"': reads the phrase up to the closing '"'. */
static int parse_phrase(parser *p, size_t at, query_field field, query_node **out)
{
	size_t open = p->i;
	const char *close = memchr(p->s + open + 1, '"', p->len - open - 1);
	if (!close)
		return FAIL(p, QERR_QUOTE, open,
		            "unterminated phrase: the '\"' at column %u has no closing '\"'",
		            COL(open));
	size_t end = (size_t)(close - p->s);
	p->i = end + 1;
	return make_term(p, at, open + 1, end - open - 1, field, 1, out);
}

/* The cursor is on a term character: reads the term to the end of its chunk. */
static int parse_term(parser *p, size_t at, query_field field, query_node **out)
{
	size_t start = p->i, end = chunk_end(p, start);
	p->i = end;
	return make_term(p, at, start, end - start, field, 0, out);
}

/* ---- filters ---------------------------------------------------------------- */

static int category_value(parser *p, size_t at, query_node **out)
{
	size_t v = p->i + strlen("category:"), end = chunk_end(p, v);
	p->i = end;
	/* whole path segments: "北京/" and "/北京" mean "北京" */
	while (v < end && p->s[v] == '/')
		v++;
	while (end > v && p->s[end - 1] == '/')
		end--;
	if (v == end)
		return FAIL(p, QERR_FILTER, at,
		            "'category:' at column %u needs a category, as in category:地方性法规/北京",
		            COL(at));
	for (size_t j = v; j + 1 < end; j++)
		if (p->s[j] == '/' && p->s[j + 1] == '/')
			return FAIL(p, QERR_FILTER, j,
			            "empty path segment '//' in category at column %u", COL(j));
	query_node *n = node_new(p, QN_CATEGORY, at);
	if (!n || !(n->text = arena_strndup(p->a, p->s + v, end - v)))
		return nomem(p);
	*out = n;
	return 0;
}

static int days_in_month(unsigned y, unsigned m)
{
	static const unsigned char days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return days[m - 1];
}

/* Reads 1 or 2 ASCII digits at d[*i]; returns the number or -1. */
static int read_2digits(const char *d, size_t n, size_t *i)
{
	int v = -1;
	for (size_t k = 0; k < 2 && *i < n && d[*i] >= '0' && d[*i] <= '9'; k++, (*i)++)
		v = (v < 0 ? 0 : v * 10) + (d[*i] - '0');
	return v;
}

/* Parses YYYY, YYYY-M[M] or YYYY-M[M]-D[D] from d[0..n) into the inclusive
 * range of days it covers, as YYYYMMDD.  Returns 1, or 0 when malformed or not
 * a real date (month 13, February 30, year 0000). */
static int parse_date(const char *d, size_t n, uint32_t *lo, uint32_t *hi)
{
	size_t i = 0;
	unsigned y = 0;
	for (; i < 4; i++) {
		if (i >= n || d[i] < '0' || d[i] > '9')
			return 0;
		y = y * 10 + (unsigned)(d[i] - '0');
	}
	if (y == 0)
		return 0;
	if (i == n) {
		*lo = y * 10000 + 101;
		*hi = y * 10000 + 1231;
		return 1;
	}
	if (d[i++] != '-')
		return 0;
	int m = read_2digits(d, n, &i);
	if (m < 1 || m > 12)
		return 0;
	int last = days_in_month(y, (unsigned)m);
	if (i == n) {
		*lo = y * 10000 + (unsigned)m * 100 + 1;
		*hi = y * 10000 + (unsigned)m * 100 + (unsigned)last;
		return 1;
	}
	if (d[i++] != '-')
		return 0;
	int day = read_2digits(d, n, &i);
	if (day < 1 || day > last || i != n)
		return 0;
	*lo = *hi = y * 10000 + (unsigned)m * 100 + (unsigned)day;
	return 1;
}

/* The cursor is on "date" followed by one of < > = : */
static int date_filter(parser *p, size_t at, query_node **out)
{
	size_t o = p->i + 4;
	query_op op;
	char c = p->s[o], c2 = o + 1 < p->len ? p->s[o + 1] : '\0';
	if (c == '>' || c == '<') {
		int eq = c2 == '=';
		op = c == '>' ? (eq ? QOP_GE : QOP_GT) : (eq ? QOP_LE : QOP_LT);
		o += 1 + (size_t)eq;
	} else if (c == '=') {
		op = QOP_EQ;
		o++;
	} else {
		p->i = chunk_end(p, o);
		return FAIL(p, QERR_FILTER, at,
		            "date filter at column %u needs an operator: date>=2019, date<2021-06, date=2021-06-01",
		            COL(at));
	}
	size_t end = chunk_end(p, o);
	p->i = end;
	query_node *n = node_new(p, QN_DATE, at);
	if (!n)
		return nomem(p);
	n->op = op;
	if (!parse_date(p->s + o, end - o, &n->date_lo, &n->date_hi))
		return FAIL(p, QERR_FILTER, o,
		            "bad date at column %u: expected YYYY, YYYY-MM or YYYY-MM-DD with a real month and day",
		            COL(o));
	*out = n;
	return 0;
}

/* sort: sets the query's order and makes no node. */
static int sort_option(parser *p, size_t at, int negated)
{
	size_t v = p->i + strlen("sort:"), end = chunk_end(p, v);
	p->i = end;
	if (negated)
		return FAIL(p, QERR_FILTER, at, "'sort:' at column %u cannot be negated", COL(at));
	if (p->depth > 0)
		return FAIL(p, QERR_FILTER, at,
		            "'sort:' at column %u is only allowed at the top level, not inside parentheses",
		            COL(at));
	query_sort sort;
	if (ci_equal(p->s + v, end - v, "date"))
		sort = QSORT_DATE;
	else if (ci_equal(p->s + v, end - v, "relevance"))
		sort = QSORT_RELEVANCE;
	else
		return FAIL(p, QERR_FILTER, at,
		            "'sort:' at column %u takes 'date' or 'relevance'", COL(at));
	if (p->sorted)
		return FAIL(p, QERR_FILTER, at, "second 'sort:' at column %u: give it once", COL(at));
	p->sorted = 1;
	p->q->sort = sort;
	return 0;
}

/* ---- the grammar -------------------------------------------------------------- */

static int parse_or(parser *p, query_node **out);

/* '(' or ')' ... */
static int parse_group(parser *p, query_node **out)
{
	size_t open = p->i;
	if (p->depth >= SOUSUO_MAX_QUERY_DEPTH)
		return FAIL(p, QERR_TOO_DEEP, open,
		            "parentheses nested deeper than %d at column %u",
		            SOUSUO_MAX_QUERY_DEPTH, COL(open));
	p->depth++;
	p->i++;
	query_node *n;
	if (parse_or(p, &n))
		return -1;
	if (p->i >= p->len)   /* parse_or stops only at the end or at ')' */
		return FAIL(p, QERR_PAREN, open, "unbalanced '(' at column %u: no matching ')'",
		            COL(open));
	if (!n)
		return FAIL(p, QERR_SYNTAX, open, "empty parentheses at column %u", COL(open));
	p->i++;
	p->depth--;
	*out = n;
	return 0;
}

/* primary := '(' or ')' | filter | [ 'title:' ] ( term | phrase ).  The
 * cursor is on a character that starts one.  *out is NULL after sort:. */
static int parse_primary(parser *p, int negated, query_node **out)
{
	size_t at = p->i;
	char c = p->s[at];
	*out = NULL;
	if (c == '(')
		return parse_group(p, out);
	if (c == '"')
		return parse_phrase(p, at, QF_ANY, out);
	if (at_keyword(p, "title:")) {
		p->i += strlen("title:");
		if (p->i < p->len && p->s[p->i] == '"')
			return parse_phrase(p, at, QF_TITLE, out);
		if (is_delim(p, p->i))
			return FAIL(p, QERR_SYNTAX, at,
			            "'title:' at column %u must be followed by a term or a phrase",
			            COL(at));
		return parse_term(p, at, QF_TITLE, out);
	}
	if (at_keyword(p, "category:"))
		return category_value(p, at, out);
	if (at_keyword(p, "sort:"))
		return sort_option(p, at, negated);
	if (at_keyword(p, "date") && p->i + 4 < p->len) {
		char op = p->s[p->i + 4];
		if (op == '<' || op == '>' || op == '=' || op == ':')
			return date_filter(p, at, out);
	}
	return parse_term(p, at, QF_ANY, out);
}

/* unary := '-' primary | primary.  A second '-' right after the first is
 * refused: "--x" is not read as NOT NOT x; "-(-x)" is. */
static int parse_unary(parser *p, query_node **out)
{
	if (p->s[p->i] != '-')
		return parse_primary(p, 0, out);
	size_t minus = p->i++;
	if (p->i >= p->len || space_len(p, p->i) || p->s[p->i] == ')' || p->s[p->i] == '|')
		return FAIL(p, QERR_SYNTAX, minus,
		            "'-' at column %u has nothing after it to exclude", COL(minus));
	if (p->s[p->i] == '-')
		return FAIL(p, QERR_SYNTAX, p->i,
		            "'-' at column %u follows another '-': double negation is not supported",
		            COL(p->i));
	query_node *kid;
	if (parse_primary(p, 1, &kid))
		return -1;
	query_node *n = node_new(p, QN_NOT, minus);
	query_node **kids = arena_alloc(p->a, sizeof *kids);
	if (!n || !kids)
		return nomem(p);
	kids[0] = kid;   /* never NULL: a negated sort: is an error */
	n->kids = kids;
	n->nkids = 1;
	*out = n;
	return 0;
}

/* and := unary*, up to the end, ')' or '|'.  *out is NULL for none. */
static int parse_and(parser *p, query_node **out)
{
	kid_list k = { 0 };
	for (;;) {
		skip_space(p);
		if (p->i >= p->len || p->s[p->i] == ')' || p->s[p->i] == '|')
			break;
		query_node *n;
		if (parse_unary(p, &n))
			return -1;
		if (n && kids_push(p, &k, n))
			return -1;
	}
	return make_nary(p, QN_AND, &k, out);
}

/* or := and ( '|' and )*, up to the end or ')'.  *out is NULL when there is
 * nothing at all; an empty side of a '|' is an error. */
static int parse_or(parser *p, query_node **out)
{
	kid_list k = { 0 };
	size_t bar = 0;
	int after_bar = 0;
	for (;;) {
		query_node *n;
		if (parse_and(p, &n))
			return -1;
		if (!n) {
			if (after_bar)
				return FAIL(p, QERR_SYNTAX, bar,
				            "'|' at column %u has nothing on its right", COL(bar));
			if (p->i < p->len && p->s[p->i] == '|')
				return FAIL(p, QERR_SYNTAX, p->i,
				            "'|' at column %u has nothing on its left", COL(p->i));
			*out = NULL;
			return 0;
		}
		if (kids_push(p, &k, n))
			return -1;
		if (p->i >= p->len || p->s[p->i] != '|')
			break;
		bar = p->i++;
		after_bar = 1;
	}
	return make_nary(p, QN_OR, &k, out);
}

/* ---- the interface -------------------------------------------------------------- */

query *query_parse(const char *text, size_t len, query_error *err)
{
	query_error scratch;
	if (!err)
		err = &scratch;
	err->code = QERR_OK;
	err->col = 0;
	err->msg[0] = '\0';

	if (len > SOUSUO_MAX_QUERY_BYTES) {
		set_err(err, QERR_TOO_LONG, SOUSUO_MAX_QUERY_BYTES,
		        "query of %zu bytes is over the limit of %d: too long from column %u",
		        len, SOUSUO_MAX_QUERY_BYTES, COL(SOUSUO_MAX_QUERY_BYTES));
		return NULL;
	}
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n = text_utf8_get(text + i, len - i, &cp);
		if (cp == UINT32_MAX) {
			set_err(err, QERR_UTF8, i, "invalid UTF-8 byte 0x%02X at column %u",
			        (unsigned char)text[i], COL(i));
			return NULL;
		}
		i += n;
	}

	arena *a = arena_new();
	query *q = a ? arena_alloc(a, sizeof *q) : NULL;
	if (!q) {
		arena_free(a);
		set_err(err, QERR_NOMEM, 0, "out of memory at column 1");
		return NULL;
	}
	memset(q, 0, sizeof *q);
	q->arena = a;
	q->sort = QSORT_RELEVANCE;

	parser p = { .s = text, .len = len, .a = a, .q = q, .err = err };
	query_node *root;
	if (parse_or(&p, &root))
		goto fail;
	if (p.i < len) {   /* parse_or stops only at the end or at ')' */
		set_err(err, QERR_PAREN, p.i, "unbalanced ')' at column %u: no matching '('", COL(p.i));
		goto fail;
	}
	if (!root) {
		set_err(err, QERR_EMPTY, 0, "empty query at column 1: no term or filter to search for");
		goto fail;
	}
	q->root = root;
	if (p.tk)
		text_tokenizer_free(p.tk);
	return q;
fail:
	if (p.tk)
		text_tokenizer_free(p.tk);
	arena_free(a);
	return NULL;
}

void query_free(query *q)
{
	if (q)
		arena_free(q->arena);
}

const char *query_errcode_name(query_errcode code)
{
	static const char *const names[] = {
		[QERR_OK] = "ok",
		[QERR_EMPTY] = "empty",
		[QERR_TOO_LONG] = "too-long",
		[QERR_UTF8] = "utf8",
		[QERR_SYNTAX] = "syntax",
		[QERR_PAREN] = "paren",
		[QERR_QUOTE] = "quote",
		[QERR_NO_TOKENS] = "no-tokens",
		[QERR_TOO_MANY_TERMS] = "too-many-terms",
		[QERR_TOO_DEEP] = "too-deep",
		[QERR_TERM_TOO_LONG] = "term-too-long",
		[QERR_FILTER] = "filter",
		[QERR_LONE_CJK] = "lone-cjk",
		[QERR_NOMEM] = "nomem",
	};
	if ((unsigned)code < sizeof names / sizeof names[0] && names[code])
		return names[code];
	return "unknown";
}
