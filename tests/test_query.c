/* test_query.c — unit tests of the query parser (search/query.h): the
 * grammar, precedence, filters, tokenization of terms through text.h, every
 * error code with its column, the 2,000 benchmark queries, and a fuzz loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "indexer/limits.h"
#include "indexer/text.h"
#include "search/query.h"
#include "tests/testutil.h"

/* ---- helpers ---------------------------------------------------------------- */

typedef struct {
	char buf[8192];
	size_t len;
} sbuf;

static void sb_put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_put(sbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b->buf + b->len, sizeof b->buf - b->len, fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof b->buf - b->len);
	b->len += (size_t)n;
}

static const char *op_name(query_op op)
{
	switch (op) {
	case QOP_EQ: return "=";
	case QOP_LT: return "<";
	case QOP_LE: return "<=";
	case QOP_GT: return ">";
	case QOP_GE: return ">=";
	}
	return "?";
}

/* The tree as an S-expression: (OR (AND a b) c), (NOT x), title:x,
 * "a b" for a term whose text has a space, category:x, date>=LO..HI. */
static void dump(sbuf *b, const query_node *n)
{
	switch (n->kind) {
	case QN_TERM:
		sb_put(b, strchr(n->text, ' ') ? "%s\"%s\"" : "%s%s",
		       n->field == QF_TITLE ? "title:" : "", n->text);
		return;
	case QN_CATEGORY:
		sb_put(b, "category:%s", n->text);
		return;
	case QN_DATE:
		sb_put(b, "date%s%u..%u", op_name(n->op), (unsigned)n->date_lo, (unsigned)n->date_hi);
		return;
	case QN_AND: case QN_OR: case QN_NOT:
		sb_put(b, "(%s", n->kind == QN_AND ? "AND" : n->kind == QN_OR ? "OR" : "NOT");
		for (uint32_t i = 0; i < n->nkids; i++) {
			sb_put(b, " ");
			dump(b, n->kids[i]);
		}
		sb_put(b, ")");
		return;
	}
	fail_msg("bad node kind %d", (int)n->kind);
}

/* A term's tokens: "covid@0 19@2", CJK tokens as their character. */
static void dump_tokens(sbuf *b, const query_node *n)
{
	assert_int_equal(n->kind, QN_TERM);
	for (uint32_t i = 0; i < n->ntoks; i++) {
		const query_token *t = &n->toks[i];
		if (i)
			sb_put(b, " ");
		if (t->kind == TEXT_TOK_CJK) {
			char ch[5];
			ch[text_utf8_put(ch, t->cp)] = '\0';
			sb_put(b, "%s@%u", ch, (unsigned)t->pos);
		} else {
			assert_int_equal(t->kind, TEXT_TOK_WORD);
			sb_put(b, "%.*s@%u", (int)t->word_len, t->word, (unsigned)t->pos);
		}
	}
}

static query *parse_ok_n(const char *s, size_t len)
{
	query_error e;
	query *q = query_parse(s, len, &e);
	if (!q)
		fail_msg("query [%.*s] failed: %s (%s, column %u)", (int)len, s, e.msg,
		         query_errcode_name(e.code), (unsigned)e.col);
	assert_int_equal(e.code, QERR_OK);
	assert_non_null(q->root);
	return q;
}

static query *parse_ok(const char *s)
{
	return parse_ok_n(s, strlen(s));
}

static void check_tree_n(const char *s, size_t len, const char *expect)
{
	query *q = parse_ok_n(s, len);
	sbuf b = { .len = 0 };
	dump(&b, q->root);
	if (strcmp(b.buf, expect) != 0)
		fail_msg("query [%s]: got %s, want %s", s, b.buf, expect);
	query_free(q);
}

static void check_tree(const char *s, const char *expect)
{
	check_tree_n(s, strlen(s), expect);
}

static void check_tokens(const char *s, const char *expect)
{
	query *q = parse_ok(s);
	sbuf b = { .len = 0 };
	dump_tokens(&b, q->root);
	if (strcmp(b.buf, expect) != 0)
		fail_msg("query [%s]: tokens %s, want %s", s, b.buf, expect);
	query_free(q);
}

/* Parses s[0..len) expecting error code at column col; checks the message is
 * one non-empty line naming that column. */
static void check_err_n(const char *s, size_t len, query_errcode code, uint32_t col)
{
	query_error e;
	query *q = query_parse(s, len, &e);
	if (q) {
		sbuf b = { .len = 0 };
		dump(&b, q->root);
		query_free(q);
		fail_msg("query [%.*s] parsed as %s, want error %s at column %u", (int)(len > 80 ? 80 : len),
		         s, b.buf, query_errcode_name(code), (unsigned)col);
	}
	if (e.code != code || e.col != col)
		fail_msg("query [%.*s]: error %s at column %u (%s), want %s at column %u",
		         (int)(len > 80 ? 80 : len), s, query_errcode_name(e.code), (unsigned)e.col,
		         e.msg, query_errcode_name(code), (unsigned)col);
	assert_true(e.msg[0] != '\0');
	assert_null(strchr(e.msg, '\n'));
	char where[32];
	snprintf(where, sizeof where, "column %u", (unsigned)col);
	if (!strstr(e.msg, where))
		fail_msg("message [%s] does not say \"%s\"", e.msg, where);
}

static void check_err(const char *s, query_errcode code, uint32_t col)
{
	check_err_n(s, strlen(s), code, col);
}

static char *repeat(const char *unit, int n, const char *tail)
{
	size_t u = strlen(unit), t = strlen(tail);
	char *s = malloc(u * (size_t)n + t + 1);
	assert_non_null(s);
	for (int i = 0; i < n; i++)
		memcpy(s + u * (size_t)i, unit, u);
	memcpy(s + u * (size_t)n, tail, t + 1);
	return s;
}

/* ---- grammar ------------------------------------------------------------------ */

static void test_precedence(void **state)
{
	(void)state;
	check_tree("a", "a");
	check_tree("a b", "(AND a b)");
	check_tree("a b | c", "(OR (AND a b) c)");
	check_tree("a | b c", "(OR a (AND b c))");
	check_tree("a|b", "(OR a b)");
	check_tree("a | b | c", "(OR a b c)");
	check_tree("a b | c d | e", "(OR (AND a b) (AND c d) e)");
	check_tree("  a   b  ", "(AND a b)");

	query *q = parse_ok("a b | c");
	assert_int_equal(q->nterms, 3);
	assert_int_equal(q->sort, QSORT_RELEVANCE);
	assert_int_equal(q->root->col, 1);
	assert_int_equal(q->root->kids[1]->col, 7);
	query_free(q);
}

static void test_not(void **state)
{
	(void)state;
	check_tree("a -b", "(AND a (NOT b))");
	check_tree("-b a", "(AND (NOT b) a)");
	check_tree("-信息", "(NOT 信息)");
	check_tree("-a -b", "(AND (NOT a) (NOT b))");
	check_tree("a|-b", "(OR a (NOT b))");
	check_tree("a -(b | c)", "(AND a (NOT (OR b c)))");
	check_tree("(-a)", "(NOT a)");
	check_tree("-(-a)", "(NOT (NOT a))");
	check_tree("-\"外商 投资\"", "(NOT \"外商 投资\")");
	check_tree("-title:外商", "(NOT title:外商)");
	/* '-' inside a chunk is part of the term */
	check_tree("a-b", "a-b");
	check_tree("covid-19 -病毒", "(AND covid-19 (NOT 病毒))");
	/* after ')' or a closing '"' a new chunk starts, so '-' is NOT there */
	check_tree("(a)-b", "(AND a (NOT b))");
	check_tree("\"a\"-b", "(AND a (NOT b))");
	/* after title: the term may begin with '-' (it is a separator there) */
	check_tree("title:-a", "title:-a");

	query *q = parse_ok("a -b");
	assert_int_equal(q->root->kids[1]->kind, QN_NOT);
	assert_int_equal(q->root->kids[1]->col, 3);
	assert_int_equal(q->root->kids[1]->nkids, 1);
	assert_int_equal(q->root->kids[1]->kids[0]->col, 4);
	query_free(q);
}

static void test_parens(void **state)
{
	(void)state;
	check_tree("(a)", "a");
	check_tree("((a))", "a");
	check_tree("(a b) | c", "(OR (AND a b) c)");
	check_tree("a (b | c)", "(AND a (OR b c))");
	check_tree("(a | b) (c | d)", "(AND (OR a b) (OR c d))");
	check_tree("(a (b | (c d)))", "(AND a (OR b (AND c d)))");
	check_tree("((a | b) -(c (d | e)))", "(AND (OR a b) (NOT (AND c (OR d e))))");
	check_tree("a(b)c", "(AND a b c)");
	/* same-kind nesting is flattened */
	check_tree("(a b) c", "(AND a b c)");
	check_tree("a | (b | c)", "(OR a b c)");
	check_tree("(a | b) c", "(AND (OR a b) c)");

	/* exactly SOUSUO_MAX_QUERY_DEPTH levels are fine */
	char *open = repeat("(", SOUSUO_MAX_QUERY_DEPTH, "a");
	char *s = repeat(")", SOUSUO_MAX_QUERY_DEPTH, "");
	char *full = malloc(strlen(open) + strlen(s) + 1);
	assert_non_null(full);
	strcpy(full, open);
	strcat(full, s);
	check_tree(full, "a");
	free(open);
	free(s);
	free(full);
}

static void test_phrase(void **state)
{
	(void)state;
	check_tree("\"外商 投资\"", "\"外商 投资\"");
	check_tree("\"foreign investment\" law", "(AND \"foreign investment\" law)");
	check_tree("a\"b c\"d", "(AND a \"b c\" d)");
	check_tree("\"a | (b) -c\"", "\"a | (b) -c\"");
	check_tokens("\"外商 投资\"", "外@0 商@1 投@2 资@3");
	check_tokens("\"foreign investment\"", "foreign@0 investment@2");
	check_tokens("\"a | (b) -c\"", "a@0 b@2 c@4");

	query *q = parse_ok("x \"a b\"");
	assert_int_equal(q->root->kids[1]->col, 3);
	assert_string_equal(q->root->kids[1]->text, "a b");
	assert_int_equal(q->root->kids[1]->field, QF_ANY);
	query_free(q);
}

static void test_title(void **state)
{
	(void)state;
	check_tree("title:外商", "title:外商");
	check_tree("title:\"外商 投资\"", "title:\"外商 投资\"");
	check_tree("title:外商 投资", "(AND title:外商 投资)");
	check_tree("TITLE:a | Title:\"b c\"", "(OR title:a title:\"b c\")");
	check_tree("(title:a)", "title:a");
	/* a keyword only at the start of a primary */
	check_tree("subtitle:a", "subtitle:a");
	check_tree("titles:a", "titles:a");

	query *q = parse_ok("x title:外商");
	const query_node *t = q->root->kids[1];
	assert_int_equal(t->kind, QN_TERM);
	assert_int_equal(t->field, QF_TITLE);
	assert_int_equal(t->col, 3);
	assert_string_equal(t->text, "外商");
	assert_int_equal(t->ntoks, 2);
	query_free(q);

	check_err("title:", QERR_SYNTAX, 1);
	check_err("a title: b", QERR_SYNTAX, 3);
	check_err("title:(a)", QERR_SYNTAX, 1);
}

/* ---- filters ------------------------------------------------------------------- */

static void test_category(void **state)
{
	(void)state;
	check_tree("category:刑法", "category:刑法");
	check_tree("category:地方性法规/北京 合同", "(AND category:地方性法规/北京 合同)");
	check_tree("CATEGORY:/案例/", "category:案例");
	check_tree("Category:刑法/", "category:刑法");
	check_tree("(category:刑法 | category:民法典) 合同",
	           "(AND (OR category:刑法 category:民法典) 合同)");
	check_tree("-category:案例 合同", "(AND (NOT category:案例) 合同)");
	check_tree("category:刑法 date>=2019", "(AND category:刑法 date>=20190101..20191231)");

	query *q = parse_ok("a category:刑法");
	assert_int_equal(q->root->kids[1]->kind, QN_CATEGORY);
	assert_int_equal(q->root->kids[1]->col, 3);
	assert_int_equal(q->nterms, 1);   /* filters are not terms */
	query_free(q);

	check_err("category:", QERR_FILTER, 1);
	check_err("a category:/", QERR_FILTER, 3);
	check_err("category: 刑法", QERR_FILTER, 1);
	check_err("category:a//b", QERR_FILTER, 11);
}

static void test_date(void **state)
{
	(void)state;
	check_tree("date>=2019-01-01", "date>=20190101..20190101");
	check_tree("date<2021", "date<20210101..20211231");
	check_tree("date=2021-06", "date=20210601..20210630");
	check_tree("date>2021-06-30", "date>20210630..20210630");
	check_tree("date<=2021-02", "date<=20210201..20210228");
	check_tree("date=2020-02", "date=20200201..20200229");
	check_tree("date=2000-02-29", "date=20000229..20000229");
	check_tree("date=2021-6-1", "date=20210601..20210601");
	check_tree("DATE>=2019 Date<2020", "(AND date>=20190101..20191231 date<20200101..20201231)");
	check_tree("(date>=2019)", "date>=20190101..20191231");
	check_tree("-date<2000 合同", "(AND (NOT date<20000101..20001231) 合同)");
	/* not a filter: no operator right after "date" */
	check_tree("date", "date");
	check_tree("dates", "dates");
	check_tree("update>2019", "update>2019");

	query *q = parse_ok("x date>=2019");
	const query_node *d = q->root->kids[1];
	assert_int_equal(d->kind, QN_DATE);
	assert_int_equal(d->op, QOP_GE);
	assert_int_equal(d->col, 3);
	assert_int_equal(d->date_lo, 20190101);
	assert_int_equal(d->date_hi, 20191231);
	query_free(q);
}

static void test_date_bad(void **state)
{
	(void)state;
	check_err("date>=2021-13-01", QERR_FILTER, 7);
	check_err("date=2021-02-30", QERR_FILTER, 6);   /* rejected: no such day */
	check_err("date=2021-02-29", QERR_FILTER, 6);   /* not a leap year */
	check_err("date=1900-02-29", QERR_FILTER, 6);
	check_err("date=2021-04-31", QERR_FILTER, 6);
	check_err("date=2021-00", QERR_FILTER, 6);
	check_err("date=2021-01-00", QERR_FILTER, 6);
	check_err("date=2021-006", QERR_FILTER, 6);
	check_err("date=0000", QERR_FILTER, 6);
	check_err("date=21", QERR_FILTER, 6);
	check_err("date=20210", QERR_FILTER, 6);
	check_err("date>=2019x", QERR_FILTER, 7);
	check_err("date=2021-06-01-02", QERR_FILTER, 6);
	check_err("date=2021-", QERR_FILTER, 6);
	check_err("a date>=", QERR_FILTER, 9);
	check_err("date=>2019", QERR_FILTER, 6);
	check_err("date:2021", QERR_FILTER, 1);
	check_err("a date=２０２１", QERR_FILTER, 8);
}

static void test_sort(void **state)
{
	(void)state;
	query *q = parse_ok("a sort:date");
	assert_int_equal(q->sort, QSORT_DATE);
	assert_int_equal(q->root->kind, QN_TERM);
	query_free(q);

	q = parse_ok("SORT:Relevance a b");
	assert_int_equal(q->sort, QSORT_RELEVANCE);
	assert_int_equal(q->root->kind, QN_AND);
	assert_int_equal(q->root->nkids, 2);
	query_free(q);

	q = parse_ok("a | b Sort:DATE");
	assert_int_equal(q->sort, QSORT_DATE);
	query_free(q);
	check_tree("a | b sort:date", "(OR a b)");
	check_tree("category:刑法 sort:date", "category:刑法");

	check_err("sort:date", QERR_EMPTY, 1);
	check_err("sort:foo a", QERR_FILTER, 1);
	check_err("sort: a", QERR_FILTER, 1);
	check_err("a (sort:date)", QERR_FILTER, 4);
	check_err("a -sort:date", QERR_FILTER, 4);
	check_err("a sort:date sort:relevance", QERR_FILTER, 13);
	check_err("a | sort:date", QERR_SYNTAX, 3);
}

static void test_only_filters_and_nots(void **state)
{
	(void)state;
	check_tree("date>=2019", "date>=20190101..20191231");
	check_tree("category:案例 -date<2000",
	           "(AND category:案例 (NOT date<20000101..20001231))");
	check_tree("-信息", "(NOT 信息)");
	check_tree("-a -b | -c", "(OR (AND (NOT a) (NOT b)) (NOT c))");
	query *q = parse_ok("category:案例 date=2020");
	assert_int_equal(q->nterms, 0);
	query_free(q);
}

/* ---- tokens ---------------------------------------------------------------------- */

static void test_normalization(void **state)
{
	(void)state;
	query *q = parse_ok("ＡＰＰ");
	const query_node *t = q->root;
	assert_int_equal(t->ntoks, 1);
	assert_int_equal(t->toks[0].kind, TEXT_TOK_WORD);
	assert_int_equal(t->toks[0].word_len, 3);
	assert_memory_equal(t->toks[0].word, "app", 3);
	assert_string_equal(t->text, "ＡＰＰ");   /* as written */
	query_free(q);

	check_tokens("COVID", "covid@0");
	check_tokens("Ｃｏｖｉｄ－１９", "covid@0 19@2");
	check_tokens("title:ＡＰＰ", "app@0");
}

static void test_positions(void **state)
{
	(void)state;
	check_tokens("covid-19", "covid@0 19@2");
	check_tokens("外商投资", "外@0 商@1 投@2 资@3");
	check_tokens("500万元", "500@0 万@1 元@2");
	check_tokens("外商，投资", "外@0 商@1 投@3 资@4");
	check_tokens("5，万元", "5@0 万@2 元@3");
	check_tokens("法", "法@0");
	check_tokens("a-b-c", "a@0 b@2 c@4");
	/* a leading separator is no gap: the first token is at 0 */
	check_tokens("title:，外商", "外@0 商@1");
	check_tokens("\"  外商\"", "外@0 商@1");

	query *q = parse_ok("外商投资");
	assert_int_equal(q->root->toks[0].cp, 0x5916);
	assert_null(q->root->toks[0].word);
	query_free(q);
}

static void test_lone_cjk(void **state)
{
	(void)state;
	check_err("外，资", QERR_LONE_CJK, 1);
	check_err("外商，资", QERR_LONE_CJK, 10);
	check_err("\"abc 中\"", QERR_LONE_CJK, 6);
	check_err("a，中", QERR_LONE_CJK, 5);
	check_err("中-abc", QERR_LONE_CJK, 1);
	check_err("x title:外，资商", QERR_LONE_CJK, 9);
	check_err("外商，资，投资", QERR_LONE_CJK, 10);
	/* fine: one character alone, or every part longer than one CJK */
	check_tree("法", "法");
	check_tree("外商，投资", "外商，投资");
	check_tree("\"外 资\"", "\"外 资\"");   /* whitespace between CJK is ignored */
	check_tree("a中", "a中");
	check_tree("5，万元", "5，万元");
	check_tree("中a，b", "中a，b");
}

/* ---- errors ----------------------------------------------------------------------- */

static void test_err_empty(void **state)
{
	(void)state;
	check_err("", QERR_EMPTY, 1);
	check_err_n(NULL, 0, QERR_EMPTY, 1);
	check_err("   ", QERR_EMPTY, 1);
	check_err("\t\r\n", QERR_EMPTY, 1);
	check_err("\xe3\x80\x80", QERR_EMPTY, 1);   /* U+3000 */
	check_err("sort:date", QERR_EMPTY, 1);
	check_err(" sort:relevance ", QERR_EMPTY, 1);
}

static void test_err_too_long(void **state)
{
	(void)state;
	char *s = repeat("a", SOUSUO_MAX_QUERY_BYTES, "");
	query *q = parse_ok(s);   /* exactly the limit is fine */
	assert_int_equal(q->root->ntoks, 1);
	query_free(q);
	free(s);
	s = repeat("a", SOUSUO_MAX_QUERY_BYTES + 1, "");
	check_err(s, QERR_TOO_LONG, SOUSUO_MAX_QUERY_BYTES + 1);
	free(s);
	/* the length is checked before anything else */
	s = repeat("(", SOUSUO_MAX_QUERY_BYTES + 1, "\xff");
	check_err(s, QERR_TOO_LONG, SOUSUO_MAX_QUERY_BYTES + 1);
	free(s);
}

static void test_err_utf8(void **state)
{
	(void)state;
	check_err("ab\xff", QERR_UTF8, 3);
	check_err("\xe4\xb8", QERR_UTF8, 1);               /* truncated */
	check_err("外\xc0\x80", QERR_UTF8, 4);              /* overlong */
	check_err("a \xed\xa0\x80", QERR_UTF8, 3);          /* surrogate */
	check_err("a \xf4\x90\x80\x80", QERR_UTF8, 3);      /* over U+10FFFF */
	check_err("(a \x80", QERR_UTF8, 4);                 /* before the paren error */
}

static void test_err_syntax(void **state)
{
	(void)state;
	check_err("a |", QERR_SYNTAX, 3);
	check_err("| a", QERR_SYNTAX, 1);
	check_err("a | | b", QERR_SYNTAX, 3);
	check_err("a || b", QERR_SYNTAX, 3);
	check_err("(a|)", QERR_SYNTAX, 3);
	check_err("(|a)", QERR_SYNTAX, 2);
	check_err("()", QERR_SYNTAX, 1);
	check_err("a ( ) b", QERR_SYNTAX, 3);
	check_err("-", QERR_SYNTAX, 1);
	check_err("a -", QERR_SYNTAX, 3);
	check_err("a - b", QERR_SYNTAX, 3);
	check_err("(a -)", QERR_SYNTAX, 4);
	check_err("-|a", QERR_SYNTAX, 1);
	/* "--x" is refused, not read as NOT NOT x; "-(-x)" says that */
	check_err("--x", QERR_SYNTAX, 2);
	check_err("a ---", QERR_SYNTAX, 4);
}

static void test_err_paren(void **state)
{
	(void)state;
	check_err("(", QERR_PAREN, 1);
	check_err("(a", QERR_PAREN, 1);
	check_err("a (b", QERR_PAREN, 3);
	check_err("((a)", QERR_PAREN, 1);
	check_err("(a (b)", QERR_PAREN, 1);
	check_err(")", QERR_PAREN, 1);
	check_err("a)", QERR_PAREN, 2);
	check_err("a ) b", QERR_PAREN, 3);
	check_err("(a))", QERR_PAREN, 4);
}

static void test_err_quote(void **state)
{
	(void)state;
	check_err("\"", QERR_QUOTE, 1);
	check_err("a \"bc", QERR_QUOTE, 3);
	check_err("\"a\" \"b", QERR_QUOTE, 5);
	check_err("title:\"外商", QERR_QUOTE, 7);
}

static void test_err_no_tokens(void **state)
{
	(void)state;
	check_err("，", QERR_NO_TOKENS, 1);
	check_err("a ，", QERR_NO_TOKENS, 3);
	check_err("\"---\"", QERR_NO_TOKENS, 1);
	check_err("\"\"", QERR_NO_TOKENS, 1);
	check_err("a \"  \"", QERR_NO_TOKENS, 3);
	check_err("a title:---", QERR_NO_TOKENS, 3);
	check_err("a-b ~", QERR_NO_TOKENS, 5);
	check_err("(a | ！)", QERR_NO_TOKENS, 6);
}

static void test_err_too_many_terms(void **state)
{
	(void)state;
	char *s = repeat("a ", SOUSUO_MAX_QUERY_TERMS, "");
	query *q = parse_ok(s);
	assert_int_equal(q->nterms, SOUSUO_MAX_QUERY_TERMS);
	query_free(q);
	free(s);

	/* filters do not count */
	s = repeat("a ", SOUSUO_MAX_QUERY_TERMS, "category:刑法 date>2000 -category:案例");
	q = parse_ok(s);
	assert_int_equal(q->nterms, SOUSUO_MAX_QUERY_TERMS);
	query_free(q);
	free(s);

	s = repeat("a ", SOUSUO_MAX_QUERY_TERMS, "b");
	check_err(s, QERR_TOO_MANY_TERMS, 2 * SOUSUO_MAX_QUERY_TERMS + 1);
	free(s);
	s = repeat("a|", SOUSUO_MAX_QUERY_TERMS, "(-\"b\")");
	check_err(s, QERR_TOO_MANY_TERMS, 2 * SOUSUO_MAX_QUERY_TERMS + 3);
	free(s);
}

static void test_err_too_deep(void **state)
{
	(void)state;
	char *s = repeat("(", SOUSUO_MAX_QUERY_DEPTH + 1, "a");
	check_err(s, QERR_TOO_DEEP, SOUSUO_MAX_QUERY_DEPTH + 1);
	free(s);
	/* no unbounded recursion: a query of nothing but '(' */
	s = repeat("(", SOUSUO_MAX_QUERY_BYTES, "");
	check_err(s, QERR_TOO_DEEP, SOUSUO_MAX_QUERY_DEPTH + 1);
	free(s);
	s = repeat("-(", SOUSUO_MAX_QUERY_BYTES / 2, "");
	check_err(s, QERR_TOO_DEEP, 2 * SOUSUO_MAX_QUERY_DEPTH + 2);
	free(s);
	/* depth is what is open at once, not how many groups there are */
	s = repeat("(a) ", 30, "");
	check_tree(s, "(AND a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a)");
	free(s);
}

static void test_err_term_too_long(void **state)
{
	(void)state;
	char *s = repeat("中", SOUSUO_MAX_TERM_TOKENS, "");
	query *q = parse_ok(s);
	assert_int_equal(q->root->ntoks, SOUSUO_MAX_TERM_TOKENS);
	assert_int_equal(q->root->toks[SOUSUO_MAX_TERM_TOKENS - 1].pos, SOUSUO_MAX_TERM_TOKENS - 1);
	query_free(q);
	free(s);
	s = repeat("中", SOUSUO_MAX_TERM_TOKENS + 1, "");
	check_err(s, QERR_TERM_TOO_LONG, 1);
	free(s);
	char *inner = repeat("w ", SOUSUO_MAX_TERM_TOKENS + 1, "\"");
	s = malloc(strlen(inner) + 8);
	assert_non_null(s);
	strcpy(s, "x \"");
	strcat(s, inner);
	check_err(s, QERR_TERM_TOO_LONG, 3);
	free(s);
	free(inner);
}

static void test_err_filter(void **state)
{
	(void)state;
	check_err("category:", QERR_FILTER, 1);
	check_err("date>=2021-13-01", QERR_FILTER, 7);
	check_err("sort:newest", QERR_FILTER, 1);
}

static void test_err_lone_cjk(void **state)
{
	(void)state;
	check_err("外，资", QERR_LONE_CJK, 1);
}

static void test_messages(void **state)
{
	(void)state;
	query_error e;
	assert_null(query_parse("a b ) c", 7, &e));
	assert_string_equal(e.msg, "unbalanced ')' at column 5: no matching '('");
	assert_null(query_parse("(a b", 4, &e));
	assert_string_equal(e.msg, "unbalanced '(' at column 1: no matching ')'");
	assert_null(query_parse("外商，资", strlen("外商，资"), &e));
	assert_non_null(strstr(e.msg, "'资'"));
	/* a NULL error pointer is allowed */
	assert_null(query_parse("(", 1, NULL));
	query *q = query_parse("a", 1, &e);
	assert_non_null(q);
	assert_int_equal(e.code, QERR_OK);
	assert_int_equal(e.col, 0);
	query_free(q);
	query_free(NULL);
}

static void test_errcode_names(void **state)
{
	(void)state;
	static const struct { query_errcode code; const char *name; } want[] = {
		{ QERR_EMPTY, "empty" }, { QERR_TOO_LONG, "too-long" }, { QERR_UTF8, "utf8" },
		{ QERR_SYNTAX, "syntax" }, { QERR_PAREN, "paren" }, { QERR_QUOTE, "quote" },
		{ QERR_NO_TOKENS, "no-tokens" }, { QERR_TOO_MANY_TERMS, "too-many-terms" },
		{ QERR_TOO_DEEP, "too-deep" }, { QERR_TERM_TOO_LONG, "term-too-long" },
		{ QERR_FILTER, "filter" }, { QERR_LONE_CJK, "lone-cjk" }, { QERR_NOMEM, "nomem" },
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		assert_string_equal(query_errcode_name(want[i].code), want[i].name);
	assert_string_equal(query_errcode_name(QERR_OK), "ok");
	assert_string_equal(query_errcode_name((query_errcode)999), "unknown");
}

static void test_whitespace(void **state)
{
	(void)state;
	check_tree("外商\xe3\x80\x80投资", "(AND 外商 投资)");   /* U+3000 */
	check_tree("a\xc2\xa0" "b", "(AND a b)");                  /* U+00A0 */
	check_tree("a\tb\nc\r", "(AND a b c)");
	check_tree_n("a\0b", 3, "(AND a b)");                      /* NUL separates */
	check_tree("\xe3\x80\x80-信息", "(NOT 信息)");
	check_tree("a\xe3\x80\x80|\xe3\x80\x80" "b", "(OR a b)");
}

/* ---- the benchmark queries --------------------------------------------------------- */

static void test_bench_queries(void **state)
{
	(void)state;
	char path[1024];
	snprintf(path, sizeof path, "%s/bench/queries.txt", test_shared_dir());
	FILE *f = fopen(path, "r");
	if (!f)
		fail_msg("cannot open %s (set SHARED)", path);
	char line[8192];
	int n = 0, nots = 0, ors = 0;
	while (fgets(line, sizeof line, f)) {
		size_t len = strcspn(line, "\r\n");
		line[len] = '\0';
		query_error e;
		query *q = query_parse(line, len, &e);
		if (!q)
			fail_msg("%s line %d [%s]: %s", path, n + 1, line, e.msg);
		nots += strstr(line, " -") != NULL;
		ors += strchr(line, '|') != NULL;
		query_free(q);
		n++;
	}
	fclose(f);
	assert_int_equal(n, 2000);
	assert_true(nots > 0 && ors > 0);   /* the file has both forms */
}

/* ---- fuzz ---------------------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

/* Checks the invariants of a parsed tree; returns its QN_TERM leaves. */
static uint32_t check_node(const query_node *n, int depth)
{
	assert_non_null(n);
	assert_true(depth < 4 * SOUSUO_MAX_QUERY_DEPTH + 8);
	assert_true(n->col >= 1);
	uint32_t terms = 0;
	switch (n->kind) {
	case QN_TERM:
		assert_true(n->ntoks >= 1 && n->ntoks <= SOUSUO_MAX_TERM_TOKENS);
		assert_non_null(n->text);
		assert_int_equal(n->toks[0].pos, 0);
		for (uint32_t i = 0; i < n->ntoks; i++) {
			const query_token *t = &n->toks[i];
			if (i)
				assert_true(t->pos == n->toks[i - 1].pos + 1 || t->pos == n->toks[i - 1].pos + 2);
			if (t->kind == TEXT_TOK_WORD)
				assert_true(t->word && t->word_len > 0);
			else
				assert_true(t->kind == TEXT_TOK_CJK && text_is_cjk(t->cp));
		}
		return 1;
	case QN_CATEGORY:
		assert_true(n->text && n->text[0] != '\0');
		return 0;
	case QN_DATE:
		assert_true(n->op >= QOP_EQ && n->op <= QOP_GE);
		assert_true(n->date_lo <= n->date_hi && n->date_lo >= 10101 && n->date_hi <= 99991231);
		return 0;
	case QN_NOT:
		assert_int_equal(n->nkids, 1);
		return check_node(n->kids[0], depth + 1);
	case QN_AND: case QN_OR:
		assert_true(n->nkids >= 2);
		for (uint32_t i = 0; i < n->nkids; i++) {
			assert_true(n->kids[i]->kind != n->kind);   /* flattened */
			terms += check_node(n->kids[i], depth + 1);
		}
		return terms;
	}
	fail_msg("bad node kind %d", (int)n->kind);
	return 0;
}

static void test_fuzz(void **state)
{
	(void)state;
	static const char *const pieces[] = {
		"a", "b", "Z", "7", "2021", " ", "  ", "\t", "(", ")", "|", "\"", "-", ":", "/",
		"title:", "category:", "date", ">=", "<", "=", "-06", "-30", "sort:", "date",
		"外", "商", "投资", "，", "。", "ＡＰＰ", "\xe3\x80\x80", "\xf0\xa0\x80\x80",
		"\x80", "\xff", "\xc3", "\xe4\xb8", "\xed\xa0\x80", "\0", "\x7f",
	};
	const size_t npieces = sizeof pieces / sizeof pieces[0];
	uint64_t seed = 0x5eed5eed12345678ull;
	char buf[SOUSUO_MAX_QUERY_BYTES + 64];
	int ok = 0;
	for (int iter = 0; iter < 100000; iter++) {
		size_t len = 0;
		uint64_t r = rng_next(&seed);
		size_t target = (r & 7) == 0 ? r % (sizeof buf) : r % 48;
		int raw = (r >> 32) % 4 == 0;
		while (len < target) {
			uint64_t x = rng_next(&seed);
			if (raw) {
				buf[len++] = (char)(x & 0xFF);
				continue;
			}
			const char *pc = pieces[x % npieces];
			size_t pl = pc[0] ? strlen(pc) : 1;   /* "\0" is one NUL byte */
			if (len + pl > sizeof buf)
				break;
			memcpy(buf + len, pc, pl);
			len += pl;
		}
		query_error e;
		query *q = query_parse(buf, len, &e);
		if (q) {
			assert_int_equal(e.code, QERR_OK);
			assert_true(len <= SOUSUO_MAX_QUERY_BYTES);
			uint32_t terms = check_node(q->root, 0);
			assert_int_equal(terms, q->nterms);
			assert_true(q->nterms <= SOUSUO_MAX_QUERY_TERMS);
			assert_true(q->sort == QSORT_RELEVANCE || q->sort == QSORT_DATE);
			query_free(q);
			ok++;
		} else {
			if (e.code <= QERR_OK || e.code > QERR_NOMEM || e.col < 1 || e.col > len + 1)
				fail_msg("iteration %d: error %d at column %u for %zu bytes (%s)", iter,
				         (int)e.code, (unsigned)e.col, len, e.msg);
			assert_true(e.msg[0] != '\0' && strlen(e.msg) < sizeof e.msg);
			assert_null(strchr(e.msg, '\n'));
		}
	}
	/* the generator must reach the parser's success path too */
	assert_true(ok > 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_not),
		cmocka_unit_test(test_parens),
		cmocka_unit_test(test_phrase),
		cmocka_unit_test(test_title),
		cmocka_unit_test(test_category),
		cmocka_unit_test(test_date),
		cmocka_unit_test(test_date_bad),
		cmocka_unit_test(test_sort),
		cmocka_unit_test(test_only_filters_and_nots),
		cmocka_unit_test(test_normalization),
		cmocka_unit_test(test_positions),
		cmocka_unit_test(test_lone_cjk),
		cmocka_unit_test(test_err_empty),
		cmocka_unit_test(test_err_too_long),
		cmocka_unit_test(test_err_utf8),
		cmocka_unit_test(test_err_syntax),
		cmocka_unit_test(test_err_paren),
		cmocka_unit_test(test_err_quote),
		cmocka_unit_test(test_err_no_tokens),
		cmocka_unit_test(test_err_too_many_terms),
		cmocka_unit_test(test_err_too_deep),
		cmocka_unit_test(test_err_term_too_long),
		cmocka_unit_test(test_err_filter),
		cmocka_unit_test(test_err_lone_cjk),
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_errcode_names),
		cmocka_unit_test(test_whitespace),
		cmocka_unit_test(test_bench_queries),
		cmocka_unit_test(test_fuzz),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
