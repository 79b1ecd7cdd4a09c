/* test_engine.c — the index writer, reader and query engine together: exact
 * matching on hand-made documents, BM25 arithmetic, ranking order, refusal
 * of corrupted files, and exactness on the real corpus against
 * expected-hits.tsv and against a brute-force scan of random substrings. */
#include <setjmp.h>
#include <sys/wait.h>
#include <xxhash.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "indexer/corpus.h"
#include "indexer/format.h"
#include "indexer/keys.h"
#include "indexer/text.h"
#include "indexer/writer.h"
#include "search/engine.h"
#include "search/index.h"
#include "search/query.h"
#include "search/snippet.h"
#include "tests/testutil.h"

/* ---- helpers ---- */

typedef struct {
	const char *path, *title, *category, *body;
	uint32_t date;
} mini_doc;

static void build_mini(const mini_doc *docs, size_t n, const char *out)
{
	index_writer *w = writer_new(NULL);
	assert_non_null(w);
	char err[256];
	for (size_t i = 0; i < n; i++) {
		corpus_doc d = { (char *)docs[i].path, (char *)docs[i].title, (char *)docs[i].category,
		                 NULL, (char *)docs[i].body, strlen(docs[i].body), docs[i].date, NULL };
		assert_int_equal(writer_add(w, &d, err, sizeof err), 0);
	}
	writer_stats st;
	int rc = writer_finish(w, out, &st, err, sizeof err);
	if (rc)
		fail_msg("writer_finish: %s", err);
	assert_int_equal(st.docs, n);
	writer_free(w);
}

typedef struct {
	sousuo_index *ix;
	engine_ctx *ec;
	engine_opts eo;
} fixture;

/* Opens the index at path with an engine context and default options. */
static fixture *fixture_open(const char *path)
{
	fixture *f = calloc(1, sizeof *f);
	char err[256];
	assert_non_null(f);
	if (index_open(path, &f->ix, err, sizeof err))
		fail_msg("%s", err);
	f->ec = engine_ctx_new();
	engine_opts_default(&f->eo);
	return f;
}

/* Frees what fixture_open made and removes the index file. */
static void fixture_close(fixture *f, const char *path)
{
	engine_ctx_free(f->ec);
	index_close(f->ix);
	unlink(path);
	free(f);
}

static int64_t count_q(fixture *f, const char *q)
{
	query_error qe;
	query *pq = query_parse(q, strlen(q), &qe);
	if (!pq)
		fail_msg("query %s: %s", q, qe.msg);
	engine_result r;
	char err[256];
	if (engine_search(f->ec, f->ix, pq, &f->eo, &r, err, sizeof err))
		fail_msg("search %s: %s", q, err);
	query_free(pq);
	return (int64_t)r.total;
}

/* Runs q and copies the ranked doc ids into ids (up to n); returns total. */
static int64_t rank_q(fixture *f, const char *q, uint32_t *ids, double *scores, uint32_t n)
{
	query_error qe;
	query *pq = query_parse(q, strlen(q), &qe);
	if (!pq)
		fail_msg("query %s: %s", q, qe.msg);
	engine_result r;
	char err[256];
	if (engine_search(f->ec, f->ix, pq, &f->eo, &r, err, sizeof err))
		fail_msg("search %s: %s", q, err);
	for (uint32_t i = 0; i < n; i++) {
		ids[i] = i < r.nhits ? r.hits[i].doc : UINT32_MAX;
		if (scores)
			scores[i] = i < r.nhits ? r.hits[i].score : -1;
	}
	query_free(pq);
	return (int64_t)r.total;
}

/* ---- hand-made documents ---- */

static const mini_doc MINI[] = {
	/* 0 */ { "法律/外商投资法(2019-03-15).md", "中华人民共和国外商投资法", "法律",
	          "\x1f中华人民共和国外商投资法\n外商投\n\n资实行准入前国民待遇加负面清单管理制度。", 20190315 },
	/* 1 */ { "法律/外商投资法(2015-01-01).md", "中华人民共和国外商投资法", "法律",
	          "\x1f中华人民共和国外商投资法\n外商投\n\n资实行准入前国民待遇加负面清单管理制度。", 20150101 },
	/* 2 */ { "行政法规/条例.md", "某某条例", "行政法规",
	          "外商，投资。商投资外商投资不是连续的：外商 投资者？外商|投资 500万元 COVID-19", 20210101 },
	/* 3 */ { "行政法规/山东/规定.md", "山东规定", "行政法规/山东",
	          "罚款500 万元。ＡＰＰ应用 app 2019年 哈哈哈 〇", 0 },
	/* 4 */ { "地方性法规/北京/办法.md", "北京市办法", "地方性法规/北京",
	          "本办法自2019年起施行。外商投资企业", 20200601 },
};

static int mini_setup(void **state)
{
	build_mini(MINI, sizeof MINI / sizeof *MINI, test_tmp_path("mini.idx"));
	*state = fixture_open(test_tmp_path("mini.idx"));
	return 0;
}

static int mini_teardown(void **state)
{
	fixture_close(*state, test_tmp_path("mini.idx"));
	return 0;
}

static void test_cjk_runs(void **state)
{
	fixture *f = *state;
	/* across a PDF line break, inside a longer run, never across a separator */
	assert_int_equal(count_q(f, "外商投资"), 4);       /* 0, 1, 4, and 2: 商投资外商投资 */
	assert_int_equal(count_q(f, "商投资外商投资"), 1);
	assert_int_equal(count_q(f, "外商投资不是连续"), 1);
	assert_int_equal(count_q(f, "资外商投"), 1);
	assert_int_equal(count_q(f, "投资者"), 1);          /* "外商 投资者" is one run */
	assert_int_equal(count_q(f, "外商投资者"), 1);      /* whitespace between CJK ignored */
	assert_int_equal(count_q(f, "外商|投资"), 4);       /* '|' is OR even without spaces */
	assert_int_equal(count_q(f, "商投资外"), 1);
	assert_int_equal(count_q(f, "外"), 4);
	assert_int_equal(count_q(f, "〇"), 1);
	assert_int_equal(count_q(f, "哈哈"), 1);
	assert_int_equal(count_q(f, "哈哈哈"), 1);
	assert_int_equal(count_q(f, "哈哈哈哈"), 0);
	assert_int_equal(count_q(f, "国民待遇加负面清单管理制度"), 2);
	assert_int_equal(count_q(f, "国民待遇加负面清单管理制度。"), 2);
	assert_int_equal(count_q(f, "从来没有"), 0);
	assert_int_equal(count_q(f, "龘"), 0);
}

static void test_words_and_mixed(void **state)
{
	fixture *f = *state;
	assert_int_equal(count_q(f, "app"), 1);
	assert_int_equal(count_q(f, "ＡＰＰ"), 1);
	assert_int_equal(count_q(f, "ap"), 0);              /* words match whole */
	assert_int_equal(count_q(f, "500万元"), 1);         /* adjacent only in doc 2 */
	assert_int_equal(count_q(f, "500 万元"), 2);        /* AND */
	assert_int_equal(count_q(f, "2019年"), 2);
	assert_int_equal(count_q(f, "covid-19"), 1);
	assert_int_equal(count_q(f, "\"covid 19\""), 1);    /* any separator is a gap */
	assert_int_equal(count_q(f, "\"19 covid\""), 0);
	assert_int_equal(count_q(f, "外商，投资"), 1);       /* a separator must be there */
}

static void test_boolean_and_filters(void **state)
{
	fixture *f = *state;
	assert_int_equal(count_q(f, "外商投资 -负面清单"), 2);
	assert_int_equal(count_q(f, "哈哈 | 负面清单"), 3);
	assert_int_equal(count_q(f, "(哈哈 | 负面清单) -待遇"), 1);
	assert_int_equal(count_q(f, "-外"), 1);
	assert_int_equal(count_q(f, "category:行政法规"), 2);
	assert_int_equal(count_q(f, "category:行政法规/山东"), 1);
	assert_int_equal(count_q(f, "category:行政"), 0);   /* whole path segments */
	assert_int_equal(count_q(f, "外 -category:法律"), 2);
	assert_int_equal(count_q(f, "外商投资 date>=2019-01-01"), 3);
	assert_int_equal(count_q(f, "外商投资 date<2016"), 1);
	assert_int_equal(count_q(f, "date=2021"), 1);
	assert_int_equal(count_q(f, "title:外商投资法"), 2);
	assert_int_equal(count_q(f, "title:北京"), 1);
	assert_int_equal(count_q(f, "title:清单"), 0);
}

static void test_ranking_order(void **state)
{
	fixture *f = *state;
	uint32_t ids[5];
	double sc[5];
	/* docs 0 and 1 are identical but for the date: newer first on a tie */
	assert_int_equal(rank_q(f, "负面清单", ids, sc, 5), 2);
	assert_int_equal(ids[0], 0);
	assert_int_equal(ids[1], 1);
	assert_true(sc[0] == sc[1]);
	/* a title match outranks a body-only match */
	rank_q(f, "外商投资", ids, sc, 5);
	assert_true(ids[0] == 0 || ids[0] == 1);
	assert_true(sc[0] > sc[2]);
	/* sort:date: newest first whatever the score */
	rank_q(f, "外 sort:date", ids, NULL, 5);
	assert_int_equal(ids[0], 2);
	assert_int_equal(ids[1], 4);
	assert_int_equal(ids[2], 0);
	assert_int_equal(ids[3], 1);
	/* limit 0: the total alone (a fresh context: no heap yet) */
	engine_ctx *fresh = engine_ctx_new();
	engine_ctx *keep = f->ec;
	f->ec = fresh;
	f->eo.limit = 0;
	assert_int_equal(rank_q(f, "外", ids, NULL, 1), 4);
	assert_int_equal(ids[0], UINT32_MAX);
	assert_int_equal(rank_q(f, "外商投资 | 哈哈", ids, NULL, 1), 5);
	assert_int_equal(rank_q(f, "外商投资 负面清单", ids, NULL, 1), 2);
	f->ec = keep;
	engine_ctx_free(fresh);
	engine_opts_default(&f->eo);
	/* offset and limit */
	f->eo.offset = 1;
	f->eo.limit = 2;
	rank_q(f, "外 sort:date", ids, NULL, 3);
	assert_int_equal(ids[0], 4);
	assert_int_equal(ids[1], 0);
	assert_int_equal(ids[2], UINT32_MAX);
	engine_opts_default(&f->eo);
}

/* BM25 against the formula evaluated by hand for a one-character term. */
static void test_bm25_arithmetic(void **state)
{
	fixture *f = *state;
	uint32_t ids[5];
	double sc[5];
	/* "哈" occurs 3 times in doc 3's body and not in its title */
	assert_int_equal(rank_q(f, "哈", ids, sc, 5), 1);
	assert_int_equal(ids[0], 3);
	const fmt_header *h = index_header(f->ix);
	const fmt_doc *d = index_doc(f->ix, 3);
	double N = 5, df = 1, k1 = 1.2, b = 0.75;
	double avg = (double)h->body_tokens / N;
	double idf = log(1 + (N - df + 0.5) / (df + 0.5));       /* ln(1 + 4.5/1.5) = ln 4 */
	assert_true(fabs(idf - log(4.0)) < 1e-12);
	double norm = 1 - b + b * d->body_tokens / avg;
	double tf = 3 / norm;
	double want = idf * tf * (k1 + 1) / (tf + k1);   /* no title part: tf_title = 0 */
	assert_true(fabs(sc[0] - want) < 1e-9);
	/* doc 3 body: 罚款 500 万元 ＡＰＰ(app) 应用 app 2019 年 哈哈哈 〇 = 15 tokens */
	assert_int_equal(d->body_tokens, 15);
}

static void test_snippet(void **state)
{
	fixture *f = *state;
	index_store_ctx *sc = index_store_ctx_new();
	snippet_ctx *sn = snippet_ctx_new();
	snippet_opts so;
	snippet_opts_default(&so);
	query_error qe;
	query *q = query_parse("外商投资 清单", strlen("外商投资 清单"), &qe);
	assert_non_null(q);
	size_t len;
	const char *body = index_doc_body(f->ix, sc, 0, &len);
	assert_non_null(body);
	assert_string_equal(body, MINI[0].body);
	const char *s = snippet_make(sn, q, body, len, &so);
	assert_non_null(s);
	/* the match across the line break is marked whole, without the break */
	assert_non_null(strstr(s, "【外商投资】"));
	assert_non_null(strstr(s, "【清单】"));
	assert_null(strchr(s, '\n'));
	assert_null(strchr(s, '\x1f'));
	index_meta m;
	assert_int_equal(index_doc_meta(f->ix, sc, 0, &m), 0);
	assert_string_equal(m.path, MINI[0].path);
	assert_string_equal(m.title, MINI[0].title);
	/* a short window is cut on character boundaries with ellipses */
	so.chars = 6;
	s = snippet_make(sn, q, body, len, &so);
	assert_non_null(s);
	assert_true(text_utf8_valid(s, strlen(s)));
	query_free(q);
	snippet_ctx_free(sn);
	index_store_ctx_free(sc);
}

/* Every 3- and 4-character run of a title is a key of its own (and longer
 * runs are checked by position): title: queries of every substring of 2 to
 * 7 characters of every title match exactly the titles holding it, and
 * runs whose pairs exist but not in that order match nothing. */
static void test_title_runs(void **state)
{
	fixture *f = *state;
	size_t n = sizeof MINI / sizeof MINI[0];
	for (size_t d = 0; d < n; d++) {
		const char *t = MINI[d].title;
		size_t len = strlen(t);   /* all CJK: 3 bytes a character */
		for (size_t a = 0; a < len; a += 3)
			for (size_t k = 2; k <= 7 && a + 3 * k <= len; k++) {
				char sub[64], q[80];
				memcpy(sub, t + a, 3 * k);
				sub[3 * k] = 0;
				int64_t want = 0;
				for (size_t e = 0; e < n; e++)
					want += strstr(MINI[e].title, sub) != NULL;
				snprintf(q, sizeof q, "title:%s", sub);
				if (count_q(f, q) != want)
					fail_msg("%s: %lld, want %lld", q, (long long)count_q(f, q), (long long)want);
			}
	}
	assert_int_equal(count_q(f, "title:和国中"), 0);   /* 和国, 国中: only one in titles */
	assert_int_equal(count_q(f, "title:投资法中"), 0);
	assert_int_equal(count_q(f, "title:实行准入"), 0);  /* in bodies, not in titles */
	assert_int_equal(count_q(f, "实行准入"), 2);
}

/* The window: the first place where every term meets, found without
 * reading the rest of the document; when the terms never meet, the best
 * window within SNIPPET_SCAN_BYTES of the first match. */
static void test_snippet_window(void **state)
{
	snippet_ctx *sn = snippet_ctx_new();
	snippet_opts so;
	snippet_opts_default(&so);
	so.chars = 20;
	query_error qe;
	query *q = query_parse("甲乙 丙丁", strlen("甲乙 丙丁"), &qe);
	assert_non_null(q);
	/* 甲乙 alone, then 甲乙 and 丙丁 together, then both again later */
	char *text = malloc(3 * SNIPPET_SCAN_BYTES);
	assert_non_null(text);
	size_t n = 0;
	n += (size_t)sprintf(text + n, "开头甲乙在此。");
	for (int i = 0; i < 200; i++)
		n += (size_t)sprintf(text + n, "空");
	n += (size_t)sprintf(text + n, "第一处甲乙丙丁相遇。");
	for (int i = 0; i < 200; i++)
		n += (size_t)sprintf(text + n, "空");
	n += (size_t)sprintf(text + n, "第二处丙丁甲乙丙丁甲乙。");
	const char *s = snippet_make(sn, q, text, n, &so);
	assert_non_null(s);
	assert_non_null(strstr(s, "第一处【甲乙】【丙丁】"));
	/* the terms meet only after the scan bound: the window stays near the
	 * first match */
	n = (size_t)sprintf(text, "开头甲乙在此。");
	while (n < 2 * SNIPPET_SCAN_BYTES)
		n += (size_t)sprintf(text + n, "空");
	n += (size_t)sprintf(text + n, "甲乙丙丁");
	s = snippet_make(sn, q, text, n, &so);
	assert_non_null(s);
	assert_non_null(strstr(s, "开头【甲乙】"));
	assert_null(strstr(s, "【丙丁】"));
	/* a term found only once still gets marked wherever it is */
	n = 0;
	while (n < 2 * SNIPPET_SCAN_BYTES)
		n += (size_t)sprintf(text + n, "空");
	n += (size_t)sprintf(text + n, "末尾丙丁");
	s = snippet_make(sn, q, text, n, &so);
	assert_non_null(s);
	assert_non_null(strstr(s, "末尾【丙丁】"));
	free(text);
	query_free(q);
	snippet_ctx_free(sn);
}

/* ---- corrupted files ---- */

static char *slurp(const char *p, size_t *n)
{
	FILE *fp = fopen(p, "rb");
	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	*n = (size_t)ftell(fp);
	fseek(fp, 0, SEEK_SET);
	char *b = malloc(*n + 1);
	assert_int_equal(fread(b, 1, *n, fp), *n);
	fclose(fp);
	return b;
}

static void spit(const char *p, const char *b, size_t n)
{
	FILE *fp = fopen(p, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(b, 1, n, fp), n);
	fclose(fp);
}

static void expect_refused(const char *p, const char *needle)
{
	sousuo_index *ix = NULL;
	char err[512] = "";
	assert_int_equal(index_open(p, &ix, err, sizeof err), -1);
	assert_null(ix);
	if (needle && !strstr(err, needle))
		fail_msg("expected \"%s\" in \"%s\"", needle, err);
}

static void test_corruption(void **state)
{
	(void)state;
	static const char *const names[FMT_NSECTIONS] = {
		"DICTINDEX", "DICT", "POSTINGS", "POSITIONS", "DOCS", "CATEGORIES", "ZDICT", "STORE"
	};
	const char *good = test_tmp_path("mini.idx"), *bad = test_tmp_path("bad.idx");
	size_t n;
	char *b = slurp(good, &n);
	fmt_header h;
	memcpy(&h, b, sizeof h);
	/* a flipped byte in every non-empty section */
	for (int s = 0; s < FMT_NSECTIONS; s++) {
		if (!h.sections[s].length)
			continue;
		size_t at = h.sections[s].offset + h.sections[s].length / 2;
		b[at] ^= 0x40;
		spit(bad, b, n);
		expect_refused(bad, names[s]);
		/* and the program says so, with a non-zero exit */
		char cmd[1024], msg[512] = "";
		snprintf(cmd, sizeof cmd, "'%s/sousuo-index' --check '%s' 2>&1", test_bin_dir(), bad);
		FILE *pp = popen(cmd, "r");
		assert_non_null(pp);
		size_t got = fread(msg, 1, sizeof msg - 1, pp);
		msg[got] = 0;
		int rc = pclose(pp);
		if (!WIFEXITED(rc) || WEXITSTATUS(rc) == 0 || !strstr(msg, names[s]))
			fail_msg("sousuo-index --check with %s corrupt: status %d, said \"%s\"", names[s], rc, msg);
		b[at] ^= 0x40;
	}
	/* a flipped byte in the header */
	b[offsetof(fmt_header, ndocs)] ^= 1;
	spit(bad, b, n);
	expect_refused(bad, "header");
	b[offsetof(fmt_header, ndocs)] ^= 1;
	/* truncated: at every section boundary, and mid-header */
	for (int s = 0; s < FMT_NSECTIONS; s++) {
		spit(bad, b, h.sections[s].offset + h.sections[s].length / 2);
		expect_refused(bad, NULL);
	}
	/* and exactly at every section's start and end */
	for (int s = 0; s < FMT_NSECTIONS; s++) {
		uint64_t cut[2] = { h.sections[s].offset, h.sections[s].offset + h.sections[s].length };
		for (int k = 0; k < 2; k++)
			if (cut[k] < n) {
				spit(bad, b, cut[k]);
				expect_refused(bad, NULL);
			}
	}
	spit(bad, b, 100);
	expect_refused(bad, "too short");
	spit(bad, b, 0);
	expect_refused(bad, "too short");
	/* wrong magic, wrong version */
	b[0] ^= 0xFF;
	spit(bad, b, n);
	expect_refused(bad, "magic");
	b[0] ^= 0xFF;
	((fmt_header *)b)->version = 99;
	spit(bad, b, n);
	expect_refused(bad, "version");
	/* a header that is consistent with its own checksum but claims huge
	 * counts or sections past the end: refused by the checks of the
	 * tables, never read out of bounds (ASan watches) */
	struct { size_t off, size; } fields[] = {
		{ offsetof(fmt_header, ndocs), 4 }, { offsetof(fmt_header, ncategories), 4 },
		{ offsetof(fmt_header, nterms), 8 }, { offsetof(fmt_header, file_bytes), 8 },
		{ offsetof(fmt_header, block), 4 }, { offsetof(fmt_header, nsections), 4 },
		{ offsetof(fmt_header, header_bytes), 4 },
	};
	for (size_t f = 0; f <= sizeof fields / sizeof fields[0] + 2 * FMT_NSECTIONS; f++) {
		char *c = malloc(n);
		assert_non_null(c);
		memcpy(c, b, n);
		fmt_header *ch = (fmt_header *)c;
		if (f < sizeof fields / sizeof fields[0]) {
			memset(c + fields[f].off, 0xFF, fields[f].size);
		} else if (f < sizeof fields / sizeof fields[0] + 2 * FMT_NSECTIONS) {
			size_t s = (f - sizeof fields / sizeof fields[0]) / 2;
			if ((f - sizeof fields / sizeof fields[0]) % 2)
				ch->sections[s].length = UINT64_MAX - 7;
			else
				ch->sections[s].offset = n - 1;
		} else {
			ch->sections[FMT_SEC_DOCS].length = 0;   /* documents claimed, table empty */
		}
		ch->header_checksum = XXH3_64bits(c, offsetof(fmt_header, header_checksum));
		spit(bad, c, n);
		expect_refused(bad, NULL);
		free(c);
	}
	/* the good file still opens */
	spit(bad, b, 0);
	expect_refused("/nonexistent/sousuo.idx", "cannot open");
	sousuo_index *ix;
	char err[256];
	assert_int_equal(index_open(good, &ix, err, sizeof err), 0);
	index_close(ix);
	unlink(bad);
	free(b);
}

/* ---- the real corpus ---- */

static void on_skip(void *ctx, const char *what, const char *why)
{
	(void)ctx;
	fprintf(stderr, "skipped %s: %s\n", what, why);
}

/* Builds an index of the shared corpus (every `step`-th document); returns
 * the number of n-gram terms written. */
static uint64_t build_corpus(const char *out, size_t step)
{
	char err[512];
	corpus_reader *r = test_open_corpus(on_skip, err, sizeof err);
	if (!r)
		fail_msg("%s", err);
	index_writer *w = writer_new(NULL);
	corpus_doc d;
	size_t i = 0;
	int rc;
	while ((rc = corpus_next(r, &d)) == 1)
		if (i++ % step == 0)
			assert_int_equal(writer_add(w, &d, err, sizeof err), 0);
	assert_int_equal(rc, 0);
	corpus_close(r);
	writer_stats st;
	if (writer_finish(w, out, &st, err, sizeof err))
		fail_msg("%s", err);
	writer_free(w);
	return st.ngrams;
}

static int corpus_setup(void **state)
{
	build_corpus(test_tmp_path("laws.idx"), 1);
	*state = fixture_open(test_tmp_path("laws.idx"));
	return 0;
}

static int corpus_teardown(void **state)
{
	fixture_close(*state, test_tmp_path("laws.idx"));
	return 0;
}

/* Every line of expected-hits.tsv: the engine's exact total must agree. */
static void test_expected_hits(void **state)
{
	fixture *f = *state;
	char path[512], line[4096];
	snprintf(path, sizeof path, "%s/bench/expected-hits.tsv", test_shared_dir());
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	int lines = 0, bad = 0;
	while (fgets(line, sizeof line, fp)) {
		char *t1 = strchr(line, '\t');
		assert_non_null(t1);
		*t1 = 0;
		long want = strtol(t1 + 1, NULL, 10);
		int64_t got = count_q(f, line);
		if (got != want) {
			fprintf(stderr, "mismatch: %s: expected %ld, engine %lld\n", line, want,
			        (long long)got);
			bad++;
		}
		lines++;
	}
	fclose(fp);
	assert_int_equal(lines, 2000);
	assert_int_equal(bad, 0);
}

/* Runs every benchmark query with options a and with options b and fails
 * unless both give the same documents in the same order with the same
 * scores; with same_total, the same totals too, else b's total must not
 * exceed a's.  Returns how many of b's runs reported an inexact total. */
static int compare_modes(fixture *f, const engine_opts *a, const engine_opts *b,
                         int same_total, const char *what)
{
	char path[512], line[4096];
	snprintf(path, sizeof path, "%s/bench/queries.txt", test_shared_dir());
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	int n = 0, inexact = 0;
	while (fgets(line, sizeof line, fp)) {
		line[strcspn(line, "\r\n")] = 0;
		query_error qe;
		query *q = query_parse(line, strlen(line), &qe);
		assert_non_null(q);
		engine_result ra, rb;
		char err[256];
		assert_int_equal(engine_search(f->ec, f->ix, q, a, &ra, err, sizeof err), 0);
		uint32_t docs[64], na = ra.nhits;
		double scores[64];
		uint64_t total = ra.total;
		assert_true(na <= 64);
		for (uint32_t i = 0; i < na; i++) {
			docs[i] = ra.hits[i].doc;
			scores[i] = ra.hits[i].score;
		}
		assert_int_equal(engine_search(f->ec, f->ix, q, b, &rb, err, sizeof err), 0);
		if (rb.nhits != na || (same_total ? rb.total != total : rb.total > total))
			fail_msg("%s: %s: %llu/%u against %llu/%u", what, line,
			         (unsigned long long)rb.total, rb.nhits, (unsigned long long)total, na);
		for (uint32_t i = 0; i < na; i++)
			if (rb.hits[i].doc != docs[i] || rb.hits[i].score != scores[i])
				fail_msg("%s: %s: rank %u differs", what, line, i + 1);
		inexact += !rb.total_exact;
		query_free(q);
		n++;
	}
	fclose(fp);
	assert_int_equal(n, 2000);
	return inexact;
}

/* Pruned top-k (exact_total = 0) returns exactly the exhaustive top-k at
 * two depths; its total never exceeds the exact one. */
static void test_pruned_equals_exhaustive(void **state)
{
	int inexact = 0;
	for (uint32_t limit = 10; limit <= 50; limit += 40) {
		engine_opts a, b;
		engine_opts_default(&a);
		a.limit = limit;
		b = a;
		b.exact_total = 0;
		inexact += compare_modes(*state, &a, &b, 0, "pruned");
	}
	fprintf(stderr, "pruned top-k: %d of 4000 runs skipped documents\n", inexact);
	assert_true(inexact > 100);   /* the pruning really happened */
}

/* The specialized loops (one term, AND/OR of simple terms) give exactly
 * what the generic iterator tree gives. */
static void test_fast_paths_equal_generic(void **state)
{
	engine_opts a, b;
	engine_opts_default(&a);
	b = a;
	b.generic = 1;
	assert_int_equal(compare_modes(*state, &a, &b, 1, "generic"), 0);
}

/* The time budget: a deadline already past stops every kind of query that
 * has enough work to look at the clock, with ENGINE_ETIME and a message,
 * and the next search on the same ctx is whole again; a deadline far off
 * changes nothing. */
static void test_deadline(void **state)
{
	fixture *f = *state;
	static const char *const heavy[] = {
		"的",                    /* one term: the single-term loop */
		"的 | 法 | 国",          /* OR of simple terms */
		"的 法 人",              /* AND of simple terms */
		"的 -中华人民共和国",    /* NOT in the tree */
		"(的 | 法) 规定",        /* the generic tree */
		"中华人民共和国 | 的",   /* positional runs */
	};
	char err[256];
	for (size_t i = 0; i < sizeof heavy / sizeof heavy[0]; i++) {
		query_error qe;
		query *q = query_parse(heavy[i], strlen(heavy[i]), &qe);
		assert_non_null(q);
		engine_opts o;
		engine_opts_default(&o);
		engine_result r, want;
		assert_int_equal(engine_search(f->ec, f->ix, q, &o, &want, err, sizeof err), 0);
		uint64_t total = want.total;
		uint32_t top = want.nhits ? want.hits[0].doc : UINT32_MAX;
		o.deadline_ns = 1;
		err[0] = 0;
		int rc = engine_search(f->ec, f->ix, q, &o, &r, err, sizeof err);
		if (rc != ENGINE_ETIME)
			fail_msg("%s: returned %d with a deadline in the past", heavy[i], rc);
		assert_string_equal(err, "time budget exceeded");
		o.deadline_ns = UINT64_MAX;
		assert_int_equal(engine_search(f->ec, f->ix, q, &o, &r, err, sizeof err), 0);
		assert_int_equal(r.total, total);
		assert_int_equal(r.nhits ? r.hits[0].doc : UINT32_MAX, top);
		query_free(q);
	}
}

/* Ranking sanity on the real corpus: the known-item file's MRR@10 must not
 * fall below what Lucene reaches here (1.000 would be the goal; the
 * assertion guards against regressions, the exact figure is in make bench). */
static void test_known_item(void **state)
{
	fixture *f = *state;
	char path[512], line[8192];
	snprintf(path, sizeof path, "%s/bench/known-item.tsv", test_shared_dir());
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	index_store_ctx *sc = index_store_ctx_new();
	double mrr = 0;
	int n = 0;
	while (fgets(line, sizeof line, fp)) {
		line[strcspn(line, "\r\n")] = 0;
		char *tab = strchr(line, '\t');
		assert_non_null(tab);
		*tab = 0;
		const char *rel = tab + 1;
		uint32_t ids[10];
		rank_q(f, line, ids, NULL, 10);
		for (int i = 0; i < 10 && ids[i] != UINT32_MAX; i++) {
			index_meta m;
			assert_int_equal(index_doc_meta(f->ix, sc, ids[i], &m), 0);
			/* relevant paths are separated by '|', relative to laws/ */
			size_t pl = strlen(m.path);
			const char *p = rel;
			int hit = 0;
			while (*p) {
				size_t l = strcspn(p, "|\t");
				if (l == pl && !memcmp(p, m.path, l))
					hit = 1;
				p += l + (p[l] != 0);
			}
			if (hit) {
				mrr += 1.0 / (i + 1);
				break;
			}
		}
		n++;
	}
	fclose(fp);
	index_store_ctx_free(sc);
	mrr /= n;
	fprintf(stderr, "known-item MRR@10 = %.4f over %d queries\n", mrr, n);
	assert_true(mrr >= 0.999);   /* Lucene reaches 1.000 here */
}

/* ---- brute force on a sample of the corpus ---- */

typedef struct {
	uint64_t key;
	uint32_t pos;
} btok;

typedef struct {
	btok *t;
	size_t n;
	char *body;
	size_t len;
	size_t *start, *end;   /* source bytes of each token */
} bdoc;

static uint64_t qkey(const query_token *t)
{
	return keys_token(t->kind, t->cp, t->word, t->word_len);
}

/* 1 if the term's tokens occur at their relative positions in d. */
static int brute_term(const bdoc *d, const query_node *qn)
{
	uint64_t k0 = qkey(&qn->toks[0]);
	for (size_t i = 0; i < d->n; i++) {
		if (d->t[i].key != k0)
			continue;
		size_t j = i;
		uint32_t m;
		for (m = 1; m < qn->ntoks; m++) {
			uint32_t want = d->t[i].pos + qn->toks[m].pos;
			while (j < d->n && d->t[j].pos < want)
				j++;
			if (j == d->n || d->t[j].pos != want || d->t[j].key != qkey(&qn->toks[m]))
				break;
		}
		if (m == qn->ntoks)
			return 1;
	}
	return 0;
}

static void test_random_vs_brute_force(void **state)
{
	(void)state;
	const char *p = test_tmp_path("sample.idx");
	const size_t step = 17;
	/* frequent runs get n-gram terms: the queries below check them too */
	assert_true(build_corpus(p, step) > 100);
	fixture fx = { 0 };
	char err[256];
	if (index_open(p, &fx.ix, err, sizeof err))
		fail_msg("%s", err);
	fx.ec = engine_ctx_new();
	engine_opts_default(&fx.eo);
	uint32_t nd = index_ndocs(fx.ix);
	assert_true(nd > 150);   /* > 128: common terms span several blocks */

	/* every document's tokens, through the store and the tokenizer */
	bdoc *docs = calloc(nd, sizeof *docs);
	index_store_ctx *sc = index_store_ctx_new();
	text_tokenizer *tk = text_tokenizer_new();
	for (uint32_t i = 0; i < nd; i++) {
		size_t len;
		const char *b = index_doc_body(fx.ix, sc, i, &len);
		assert_non_null(b);
		docs[i].body = malloc(len + 1);
		memcpy(docs[i].body, b, len + 1);
		docs[i].len = len;
		size_t cap = 1024;
		docs[i].t = malloc(cap * sizeof(btok));
		docs[i].start = malloc(cap * sizeof(size_t));
		docs[i].end = malloc(cap * sizeof(size_t));
		text_token t;
		text_tokenizer_reset(tk, docs[i].body, len);
		while (text_tokenizer_next(tk, &t)) {
			if (docs[i].n == cap) {
				cap *= 2;
				docs[i].t = realloc(docs[i].t, cap * sizeof(btok));
				docs[i].start = realloc(docs[i].start, cap * sizeof(size_t));
				docs[i].end = realloc(docs[i].end, cap * sizeof(size_t));
			}
			docs[i].t[docs[i].n] = (btok){ keys_token(t.kind, t.cp, t.word, t.word_len), t.pos };
			docs[i].start[docs[i].n] = t.src_start;
			docs[i].end[docs[i].n] = t.src_end;
			docs[i].n++;
		}
	}
	text_tokenizer_free(tk);
	index_store_ctx_free(sc);

	srand(20261202);
	int checked = 0, nonzero = 0;
	static const char *const pool[] = { "法", "律", "条", "例", "国", "务", "院", "规", "定",
	                                    "外", "商", "投", "资", "龘", "一", "的" };
	for (int it = 0; it < 3000; it++) {
		char q[512];
		if (it % 5 == 4) {
			/* a string from a small alphabet: mostly occurs nowhere */
			int len = 2 + rand() % 4;
			q[0] = 0;
			for (int k = 0; k < len; k++)
				strcat(q, pool[rand() % 16]);
		} else {
			const bdoc *d = &docs[rand() % nd];
			if (d->n < 10)
				continue;
			size_t i = (size_t)rand() % (d->n - 8), len = 1 + (size_t)rand() % 8;
			size_t a = d->start[i], b = d->end[i + len - 1];
			if (b - a >= sizeof q)
				continue;
			memcpy(q, d->body + a, b - a);
			q[b - a] = 0;
		}
		query_error qe;
		query *pq = query_parse(q, strlen(q), &qe);
		if (!pq)
			continue;   /* operators or a lone CJK char between separators */
		engine_result r;
		assert_int_equal(engine_search(fx.ec, fx.ix, pq, &fx.eo, &r, err, sizeof err), 0);
		uint64_t want = 0;
		const query_node *root = pq->root;
		for (uint32_t di = 0; di < nd; di++) {
			int all = 1;
			if (root->kind == QN_TERM) {
				all = brute_term(&docs[di], root);
			} else if (root->kind == QN_AND) {
				for (uint32_t k = 0; k < root->nkids && all; k++) {
					const query_node *kid = root->kids[k];
					if (kid->kind == QN_TERM)
						all = brute_term(&docs[di], kid);
					else if (kid->kind == QN_NOT && kid->kids[0]->kind == QN_TERM)
						all = !brute_term(&docs[di], kid->kids[0]);
					else
						all = -1;
				}
			} else {
				all = -1;
			}
			if (all < 0)
				break;
			want += (uint64_t)all;
		}
		if (root->kind != QN_TERM && root->kind != QN_AND) {
			query_free(pq);
			continue;
		}
		if (r.total != want)
			fail_msg("query \"%s\": engine %llu, brute force %llu", q,
			         (unsigned long long)r.total, (unsigned long long)want);
		checked++;
		nonzero += want > 0;
		query_free(pq);
	}
	fprintf(stderr, "random queries checked: %d (%d with matches)\n", checked, nonzero);
	assert_true(checked > 1500);
	assert_true(nonzero > 1000);
	for (uint32_t i = 0; i < nd; i++) {
		free(docs[i].t);
		free(docs[i].start);
		free(docs[i].end);
		free(docs[i].body);
	}
	free(docs);
	engine_ctx_free(fx.ec);
	index_close(fx.ix);
	unlink(p);
}

int main(void)
{
	const struct CMUnitTest mini[] = {
		cmocka_unit_test(test_cjk_runs),
		cmocka_unit_test(test_words_and_mixed),
		cmocka_unit_test(test_boolean_and_filters),
		cmocka_unit_test(test_ranking_order),
		cmocka_unit_test(test_bm25_arithmetic),
		cmocka_unit_test(test_snippet),
		cmocka_unit_test(test_snippet_window),
		cmocka_unit_test(test_title_runs),
		cmocka_unit_test(test_corruption),
	};
	const struct CMUnitTest corpus[] = {
		cmocka_unit_test(test_expected_hits),
		cmocka_unit_test(test_pruned_equals_exhaustive),
		cmocka_unit_test(test_fast_paths_equal_generic),
		cmocka_unit_test(test_deadline),
		cmocka_unit_test(test_known_item),
	};
	const struct CMUnitTest sample[] = {
		cmocka_unit_test(test_random_vs_brute_force),
	};
	int rc = cmocka_run_group_tests_name("engine on hand-made documents", mini, mini_setup,
	                                     mini_teardown);
	rc += cmocka_run_group_tests_name("engine on the law corpus", corpus, corpus_setup,
	                                  corpus_teardown);
	rc += cmocka_run_group_tests_name("engine against brute force", sample, NULL, NULL);
	return rc ? 1 : 0;
}
