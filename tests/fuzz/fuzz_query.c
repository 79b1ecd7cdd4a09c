/* fuzz_query.c — libFuzzer target for the query language: query_parse
 * (search/query.c) on any bytes, and every query it accepts run by the engine
 * (search/engine*.c) against a small index written once from hand-made
 * documents, with snippets and explanations of the hits.
 *
 * The engine is checked against a brute-force evaluator that reads the
 * query tree's meaning straight from query.h and text.h (a term's tokens at
 * the same relative positions in the body, or in the short name for title:;
 * AND, OR, NOT, category prefixes by whole segments, date ranges): the
 * total must be exactly the number of documents it accepts.  The engine's
 * modes must agree as tests/test_engine.c requires: the fast loops and the
 * generic tree give the same hits with the same scores; pruned top-k gives
 * the same hits and a total no larger; a page at an offset is a slice of
 * the first page.  The parse tree itself is checked against query.h's
 * promises (kid counts, token positions, columns, error columns). */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "indexer/keys.h"
#include "indexer/limits.h"
#include "indexer/text.h"
#include "search/engine.h"
#include "search/index.h"
#include "search/query.h"
#include "search/snippet.h"
#include "tests/fuzz/fuzz_util.h"

/* ---- the documents -------------------------------------------------------- */

/* Pieces of body text: CJK runs that repeat across documents (so pairs and
 * n-grams have postings in several blocks), words, word+CJK pairs, the
 * separators and whitespace rules of text.h, full-width and case folding. */
static const char *const qry_pieces[] = {
	"外商投资", "负面清单", "中华人民共和国", "人民代表大会", "行政法规", "个人信息保护",
	"数据安全", "知识产权", "国务院", "第一条", "罚款", "北京市", "上海", "法", "的", "和",
	"外商投\n资", "外商，投资", "covid-19", "COVID 19", "covid19", "500万元", "ＡＰＰ", "app",
	"apple", "5G网络", "Straße", "e\xcc\x81t\xc3\xa9", "〇", "二〇一九年", "（一）", "。",
	"，", " ", "\n", "\n\n", "\x1f", "第十二条 外商投资企业", "投资外商投资",
};
#define QRY_NPIECES (sizeof qry_pieces / sizeof qry_pieces[0])

static const char *const qry_names[] = {
	"外商投资法", "数据安全法", "个人信息保护法", "北京市外商投资条例", "上海市外商投资条例",
	"行政法规制定程序条例", "app", "COVID-19防控办法", "外商投资", "法",
};
static const char *const qry_categories[] = {
	"", "法律", "行政法规", "地方性法规/北京", "地方性法规/上海", "地方性法规", "司法解释/民事",
};
static const uint32_t qry_dates[] = {
	0, 20190315, 20200925, 20210101, 20211231, 20200101, 19991231, 20220229,
};

/* More than one postings block (128 documents) for the common pieces. */
#define QRY_NDOCS 300

typedef struct {
	uint32_t pos;
	uint64_t key;
} qry_tok;

typedef struct {
	char *body, *title, *path;
	const char *name;          /* the title field: short name, else title */
	const char *category;
	uint32_t date;
	qry_tok *btoks, *ntoks;
	size_t nb, nn;
} qry_doc;

static struct {
	int ready;
	sousuo_index *ix;
	engine_ctx *ec;
	snippet_ctx *sn;
	index_store_ctx *st;
	text_tokenizer *tk;
	int has_nul;               /* the query being checked holds a NUL byte */
	qry_doc docs[QRY_NDOCS];
} qry_g;

static uint32_t qry_rng(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(*s >> 33);
}

static qry_tok *qry_tokenize(const char *s, size_t *n)
{
	size_t cap = 16;
	qry_tok *v = malloc(cap * sizeof *v);
	text_token t;
	*n = 0;
	FUZZ_CHECK(v != NULL);
	text_tokenizer_reset(qry_g.tk, s, strlen(s));
	while (text_tokenizer_next(qry_g.tk, &t)) {
		if (*n == cap) {
			cap *= 2;
			v = realloc(v, cap * sizeof *v);
			FUZZ_CHECK(v != NULL);
		}
		v[(*n)++] = (qry_tok){ t.pos, keys_token(t.kind, t.cp, t.word, t.word_len) };
	}
	return v;
}

static void qry_init(void)
{
	static fuzz_doc in[QRY_NDOCS];
	uint64_t seed = 42;
	qry_g.tk = text_tokenizer_new();
	FUZZ_CHECK(qry_g.tk != NULL);
	for (uint32_t i = 0; i < QRY_NDOCS; i++) {
		qry_doc *d = &qry_g.docs[i];
		char buf[1024];
		size_t at = 0;
		uint32_t npieces = 2 + qry_rng(&seed) % 12;
		for (uint32_t k = 0; k < npieces; k++) {
			const char *p = qry_pieces[qry_rng(&seed) % QRY_NPIECES];
			size_t pl = strlen(p);
			if (at + pl < sizeof buf) {
				memcpy(buf + at, p, pl);
				at += pl;
			}
		}
		buf[at] = 0;
		d->body = strdup(buf);
		const char *name = qry_names[qry_rng(&seed) % (sizeof qry_names / sizeof qry_names[0])];
		snprintf(buf, sizeof buf, i % 3 ? "中华人民共和国%s" : "%s", name);
		d->title = strdup(buf);
		snprintf(buf, sizeof buf, "doc%03u/%s.md", i, name);
		d->path = strdup(buf);
		FUZZ_CHECK(d->body && d->title && d->path);
		d->name = strcmp(name, d->title) ? name : d->title;
		d->category = qry_categories[qry_rng(&seed) %
		                             (sizeof qry_categories / sizeof qry_categories[0])];
		d->date = qry_dates[qry_rng(&seed) % (sizeof qry_dates / sizeof qry_dates[0])];
		in[i] = (fuzz_doc){ d->path, d->title, name, d->category, NULL, d->body, d->date };
		d->btoks = qry_tokenize(d->body, &d->nb);
		d->ntoks = qry_tokenize(d->name, &d->nn);
	}
	qry_g.ix = fuzz_build_index(in, QRY_NDOCS, 2, "query", NULL, NULL);
	qry_g.ec = engine_ctx_new();
	qry_g.sn = snippet_ctx_new();
	qry_g.st = index_store_ctx_new();
	FUZZ_CHECK(qry_g.ix && qry_g.ec && qry_g.sn && qry_g.st);
	FUZZ_CHECK(index_ndocs(qry_g.ix) == QRY_NDOCS);
	qry_g.ready = 1;
}

/* ---- the parse tree --------------------------------------------------------- */

/* Checks n and below against query.h; returns the number of QN_TERM leaves. */
static uint32_t qry_check_tree(const query_node *n, size_t len, int depth)
{
	FUZZ_CHECK(n != NULL && depth < 4 * (SOUSUO_MAX_QUERY_DEPTH + 2));
	FUZZ_CHECK(n->col >= 1 && n->col <= len);
	uint32_t terms = 0;
	switch (n->kind) {
	case QN_TERM: {
		FUZZ_CHECK(n->ntoks >= 1 && n->ntoks <= SOUSUO_MAX_TERM_TOKENS);
		FUZZ_CHECK(n->field == QF_ANY || n->field == QF_TITLE);
		FUZZ_CHECK(n->text != NULL && n->toks[0].pos == 0);
		for (uint32_t i = 0; i < n->ntoks; i++) {
			const query_token *t = &n->toks[i];
			FUZZ_CHECK(i == 0 || t->pos > t[-1].pos);
			if (t->kind == TEXT_TOK_CJK)
				FUZZ_CHECK(text_is_cjk(t->cp) && t->word == NULL);
			else
				FUZZ_CHECK(t->kind == TEXT_TOK_WORD && t->word && t->word_len > 0 &&
				           text_utf8_valid(t->word, t->word_len));
		}
		/* the text as written tokenizes to the same tokens (text is
		 * NUL-terminated: a NUL in the query, whitespace to the parser,
		 * ends it early) */
		if (qry_g.has_nul)
			return 1;
		text_token tt;
		uint32_t k = 0, base = 0;
		text_tokenizer_reset(qry_g.tk, n->text, strlen(n->text));
		while (text_tokenizer_next(qry_g.tk, &tt)) {
			FUZZ_CHECK(k < n->ntoks);
			if (k == 0)
				base = tt.pos;
			const query_token *t = &n->toks[k++];
			FUZZ_CHECK(tt.kind == t->kind && tt.pos - base == t->pos);
			if (t->kind == TEXT_TOK_CJK)
				FUZZ_CHECK(tt.cp == t->cp);
			else
				FUZZ_CHECK(tt.word_len == t->word_len &&
				           memcmp(tt.word, t->word, t->word_len) == 0);
		}
		FUZZ_CHECK(k == n->ntoks);
		return 1;
	}
	case QN_AND:
	case QN_OR:
		FUZZ_CHECK(n->nkids >= 2);
		for (uint32_t i = 0; i < n->nkids; i++) {
			FUZZ_CHECK(n->kids[i]->kind != n->kind);
			terms += qry_check_tree(n->kids[i], len, depth + 1);
		}
		return terms;
	case QN_NOT:
		FUZZ_CHECK(n->nkids == 1);
		return qry_check_tree(n->kids[0], len, depth + 1);
	case QN_CATEGORY: {
		size_t l = n->text ? strlen(n->text) : 0;
		FUZZ_CHECK(l > 0 && n->text[0] != '/' && n->text[l - 1] != '/');
		FUZZ_CHECK(strstr(n->text, "//") == NULL);
		return 0;
	}
	case QN_DATE:
		FUZZ_CHECK(n->op >= QOP_EQ && n->op <= QOP_GE);
		FUZZ_CHECK(n->date_lo >= 10101 && n->date_lo <= n->date_hi && n->date_hi <= 99991231);
		return 0;
	}
	FUZZ_CHECK(!"unknown node kind");
	return 0;
}

/* ---- brute force ---------------------------------------------------------------- */

static uint64_t qry_tok_key(const query_token *t)
{
	return keys_token(t->kind, t->cp, t->word, t->word_len);
}

/* 1 if the term's tokens stand at the same relative positions somewhere in
 * v[0..n) (positions strictly increase, so a position holds one token). */
static bool qry_term_in(const query_node *t, const qry_tok *v, size_t n)
{
	uint64_t k0 = qry_tok_key(&t->toks[0]);
	for (size_t j = 0; j < n; j++) {
		if (v[j].key != k0)
			continue;
		size_t at = j;
		uint32_t i;
		for (i = 1; i < t->ntoks; i++) {
			uint64_t want = (uint64_t)v[j].pos + t->toks[i].pos;
			while (at < n && v[at].pos < want)
				at++;
			if (at == n || v[at].pos != want || v[at].key != qry_tok_key(&t->toks[i]))
				break;
		}
		if (i == t->ntoks)
			return true;
	}
	return false;
}

static bool qry_eval(const query_node *n, const qry_doc *d)
{
	switch (n->kind) {
	case QN_TERM:
		return n->field == QF_TITLE ? qry_term_in(n, d->ntoks, d->nn)
		                            : qry_term_in(n, d->btoks, d->nb);
	case QN_AND:
		for (uint32_t i = 0; i < n->nkids; i++)
			if (!qry_eval(n->kids[i], d))
				return false;
		return true;
	case QN_OR:
		for (uint32_t i = 0; i < n->nkids; i++)
			if (qry_eval(n->kids[i], d))
				return true;
		return false;
	case QN_NOT:
		return !qry_eval(n->kids[0], d);
	case QN_CATEGORY: {
		size_t pl = strlen(n->text);
		return strncmp(d->category, n->text, pl) == 0 &&
		       (d->category[pl] == 0 || d->category[pl] == '/');
	}
	case QN_DATE:
		if (!d->date)
			return false;
		switch (n->op) {
		case QOP_EQ: return d->date >= n->date_lo && d->date <= n->date_hi;
		case QOP_LT: return d->date < n->date_lo;
		case QOP_LE: return d->date <= n->date_hi;
		case QOP_GT: return d->date > n->date_hi;
		case QOP_GE: return d->date >= n->date_lo;
		}
	}
	return false;
}

/* ---- the engine ------------------------------------------------------------------ */

typedef struct {
	uint64_t total;
	uint32_t n;
	engine_hit hits[32];
} qry_run;

static void qry_search(const query *q, const engine_opts *o, qry_run *out)
{
	engine_result r;
	char err[256] = "";
	int rc = engine_search(qry_g.ec, qry_g.ix, q, o, &r, err, sizeof err);
	if (rc != 0)
		fprintf(stderr, "engine_search: %d %s\n", rc, err);
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK(r.nhits <= o->limit && r.nhits <= 32 && r.total <= QRY_NDOCS);
	out->total = r.total;
	out->n = r.nhits;
	for (uint32_t i = 0; i < r.nhits; i++) {
		FUZZ_CHECK(r.hits[i].doc < QRY_NDOCS && isfinite(r.hits[i].score) &&
		           r.hits[i].score >= 0);
		out->hits[i] = r.hits[i];
	}
}

static bool qry_same_hits(const engine_hit *a, const engine_hit *b, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (a[i].doc != b[i].doc || a[i].score != b[i].score)
			return false;
	return true;
}

/* Each hit's stored fields are the document's, its snippet is one line of
 * valid UTF-8, and explain agrees that it matches. */
static void qry_check_hits(const query *q, const engine_opts *o, const qry_run *r)
{
	char buf[4096];
	for (uint32_t i = 0; i < r->n; i++) {
		uint32_t doc = r->hits[i].doc;
		const qry_doc *d = &qry_g.docs[doc];
		FUZZ_CHECK(qry_eval(q->root, d));
		index_meta m;
		FUZZ_CHECK(index_doc_meta(qry_g.ix, qry_g.st, doc, &m) == 0);
		FUZZ_CHECK(strcmp(m.path, d->path) == 0 && strcmp(m.title, d->title) == 0);
		size_t blen;
		const char *body = index_doc_body(qry_g.ix, qry_g.st, doc, &blen);
		FUZZ_CHECK(body && blen == strlen(d->body) && memcmp(body, d->body, blen) == 0);
		snippet_opts so;
		snippet_opts_default(&so);
		so.chars = 1 + i * 7;
		const char *sn = snippet_make(qry_g.sn, q, body, blen, &so);
		FUZZ_CHECK(sn != NULL && text_utf8_valid(sn, strlen(sn)) && !strchr(sn, '\n'));
		if (i < 2) {
			FUZZ_CHECK(engine_explain(qry_g.ec, qry_g.ix, q, o, doc, buf, sizeof buf) == 0);
			FUZZ_CHECK(strnlen(buf, sizeof buf) < sizeof buf && strstr(buf, "does not match") == NULL);
		}
	}
}

static void qry_check_engine(const query *q)
{
	uint64_t want = 0;
	for (uint32_t d = 0; d < QRY_NDOCS; d++)
		want += qry_eval(q->root, &qry_g.docs[d]);

	engine_opts a, b, c, p;
	engine_opts_default(&a);
	a.limit = 20;
	b = a;
	b.generic = 1;
	c = a;
	c.exact_total = 0;
	p = a;
	p.offset = 3;
	p.limit = 5;
	static qry_run ra, rb, rc, rp;
	qry_search(q, &a, &ra);
	if (ra.total != want)
		fprintf(stderr, "engine total %llu, brute force %llu\n",
		        (unsigned long long)ra.total, (unsigned long long)want);
	FUZZ_CHECK(ra.total == want);
	FUZZ_CHECK(ra.n == (want < a.limit ? want : a.limit));
	qry_search(q, &b, &rb);
	FUZZ_CHECK(rb.total == ra.total && rb.n == ra.n && qry_same_hits(ra.hits, rb.hits, ra.n));
	qry_search(q, &c, &rc);
	FUZZ_CHECK(rc.total <= ra.total && rc.n == ra.n && qry_same_hits(ra.hits, rc.hits, ra.n));
	qry_search(q, &p, &rp);
	FUZZ_CHECK(rp.total == ra.total);
	FUZZ_CHECK(rp.n == (ra.n > 3 ? (ra.n - 3 < 5 ? ra.n - 3 : 5) : 0));
	FUZZ_CHECK(qry_same_hits(ra.hits + (ra.n > 3 ? 3 : ra.n), rp.hits, rp.n));
	qry_check_hits(q, &a, &ra);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!qry_g.ready)
		qry_init();
	const char *text = (const char *)data;
	query_error err;
	memset(&err, 0x55, sizeof err);
	query *q = query_parse(text, size, &err);
	bool valid = text_utf8_valid(text, size);
	if (!q) {
		FUZZ_CHECK(err.code > QERR_OK && err.code <= QERR_NOMEM);
		FUZZ_CHECK(strcmp(query_errcode_name(err.code), "unknown") != 0);
		size_t ml = strnlen(err.msg, sizeof err.msg);
		FUZZ_CHECK(ml > 0 && ml < sizeof err.msg);
		FUZZ_CHECK(err.col >= 1 && err.col <= size + 1);
		if (size > SOUSUO_MAX_QUERY_BYTES)
			FUZZ_CHECK(err.code == QERR_TOO_LONG);
		else
			FUZZ_CHECK((err.code == QERR_UTF8) == !valid);
		if (err.code == QERR_UTF8) {
			/* the column is the first byte that does not decode */
			FUZZ_CHECK(text_utf8_valid(text, err.col - 1) &&
			           !text_utf8_valid(text + err.col - 1, size - (err.col - 1)));
		}
		return 0;
	}
	FUZZ_CHECK(size <= SOUSUO_MAX_QUERY_BYTES && valid);
	FUZZ_CHECK(err.code == QERR_OK);
	FUZZ_CHECK(q->sort == QSORT_RELEVANCE || q->sort == QSORT_DATE);
	qry_g.has_nul = memchr(text, 0, size) != NULL;
	uint32_t terms = qry_check_tree(q->root, size, 0);
	FUZZ_CHECK(terms == q->nterms && terms <= SOUSUO_MAX_QUERY_TERMS);
	qry_check_engine(q);
	query_free(q);
	return 0;
}
