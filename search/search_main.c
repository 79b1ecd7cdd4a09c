/* search_main.c — sousuo-search: runs queries against an index file from the
 * command line: one query from the arguments with readable results, or many
 * from standard input (--count, --tsv) for scripts and checks. */
#include "indexer/limits.h"
#include "search/engine.h"
#include "search/index.h"
#include "search/query.h"
#include "search/snippet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: sousuo-search -i FILE [options] QUERY...\n"
	        "       sousuo-search -i FILE (--count | --tsv) < queries\n"
	        "  -i FILE           the index\n"
	        "  -n N              results to show (default 10)\n"
	        "  --offset N        results to skip first\n"
	        "  --count           per input line: query TAB total\n"
	        "  --tsv             per result of each input line: query TAB rank TAB score TAB path\n"
	        "  --explain         show how each result's score was made\n"
	        "  --no-snippet      no excerpts\n"
	        "  --fast            the total may be a lower bound (no exact count)\n"
	        "  --k1 X --b X --title-weight X --title-b X --name-boost X\n"
	        "                    ranking parameters (engine.h)\n"
	        "Query language: a b (AND), a | b (OR), -a (NOT), ( ), \"latin phrase\",\n"
	        "title:x, category:行政法规, date>=2019-01-01, date<2021, sort:date\n");
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int parse_num(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v = strtod(s, &end);
	if (!*s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

typedef struct {
	sousuo_index *ix;
	engine_ctx *ec;
	index_store_ctx *sc;
	snippet_ctx *sn;
	engine_opts eo;
	snippet_opts so;
	int snippets, explain;
} app;

static void print_date(uint32_t d)
{
	if (d)
		printf("%04u-%02u-%02u", d / 10000, d / 100 % 100, d % 100);
	else
		printf("%10s", "-");
}

static int run_one(app *a, const char *text)
{
	query_error qe;
	query *q = query_parse(text, strlen(text), &qe);
	if (!q) {
		fprintf(stderr, "sousuo-search: %s\n", qe.msg);
		return 2;
	}
	char err[256];
	engine_result r;
	double t0 = now();
	if (engine_search(a->ec, a->ix, q, &a->eo, &r, err, sizeof err)) {
		fprintf(stderr, "sousuo-search: %s\n", err);
		query_free(q);
		return 1;
	}
	double t1 = now();
	printf("%s%llu documents match \"%s\" (%.3f ms)\n", r.total_exact ? "" : "at least ",
	       (unsigned long long)r.total, text, (t1 - t0) * 1e3);
	for (uint32_t i = 0; i < r.nhits; i++) {
		uint32_t doc = r.hits[i].doc;
		const fmt_doc *fd = index_doc(a->ix, doc);
		index_meta m;
		if (index_doc_meta(a->ix, a->sc, doc, &m)) {
			fprintf(stderr, "sousuo-search: document %u: store corrupt\n", doc);
			query_free(q);
			return 1;
		}
		size_t clen;
		const char *cat = index_category(a->ix, fd->category, &clen);
		printf("\n%2u. %s\n    ", a->eo.offset + i + 1, m.title);
		print_date(fd->date);
		printf("  %.*s  id %u  score %.3f\n    %s\n", (int)clen, cat, doc, r.hits[i].score, m.path);
		if (a->snippets) {
			size_t blen;
			const char *body = index_doc_body(a->ix, a->sc, doc, &blen);
			const char *sn = body ? snippet_make(a->sn, q, body, blen, &a->so) : NULL;
			if (sn)
				printf("    %s\n", sn);
		}
		if (a->explain) {
			char buf[4096];
			if (!engine_explain(a->ec, a->ix, q, &a->eo, doc, buf, sizeof buf))
				printf("    explain:\n%s", buf);
		}
	}
	query_free(q);
	return 0;
}

/* --count / --tsv: one query per line of standard input. */
static int run_lines(app *a, int tsv)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int bad = 0;
	while ((n = getline(&line, &cap, stdin)) >= 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = 0;
		query_error qe;
		query *q = query_parse(line, (size_t)n, &qe);
		if (!q) {
			printf("%s\tERR %s %s\n", line, query_errcode_name(qe.code), qe.msg);
			bad = 1;
			continue;
		}
		char err[256];
		engine_result r;
		if (engine_search(a->ec, a->ix, q, &a->eo, &r, err, sizeof err)) {
			printf("%s\tERR engine %s\n", line, err);
			bad = 1;
		} else if (!tsv) {
			printf("%s\t%llu\n", line, (unsigned long long)r.total);
		} else {
			for (uint32_t i = 0; i < r.nhits; i++) {
				index_meta m;
				if (index_doc_meta(a->ix, a->sc, r.hits[i].doc, &m)) {
					bad = 1;
					continue;
				}
				printf("%s\t%u\t%.6f\t%s\n", line, a->eo.offset + i + 1, r.hits[i].score, m.path);
			}
		}
		query_free(q);
	}
	free(line);
	return bad;
}

int main(int argc, char **argv)
{
	app a;
	memset(&a, 0, sizeof a);
	engine_opts_default(&a.eo);
	snippet_opts_default(&a.so);
	a.snippets = 1;
	const char *path = NULL;
	int mode = 0;   /* 0 one query, 1 count, 2 tsv */
	char qbuf[SOUSUO_MAX_QUERY_BYTES + 1];
	size_t qlen = 0;
	qbuf[0] = 0;
	int i;
	for (i = 1; i < argc; i++) {
		const char *o = argv[i];
		double v;
		int has = i + 1 < argc;
		if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(o, "-i") && has) {
			path = argv[++i];
		} else if (!strcmp(o, "-n") && has) {
			if (parse_num(argv[++i], 0, SOUSUO_MAX_RESULTS, &v))
				goto bad;
			a.eo.limit = (uint32_t)v;
		} else if (!strcmp(o, "--offset") && has) {
			if (parse_num(argv[++i], 0, SOUSUO_MAX_RESULTS, &v))
				goto bad;
			a.eo.offset = (uint32_t)v;
		} else if (!strcmp(o, "--count")) {
			mode = 1;
		} else if (!strcmp(o, "--tsv")) {
			mode = 2;
		} else if (!strcmp(o, "--explain")) {
			a.explain = 1;
		} else if (!strcmp(o, "--no-snippet")) {
			a.snippets = 0;
		} else if (!strcmp(o, "--fast")) {
			a.eo.exact_total = 0;
		} else if (!strcmp(o, "--k1") && has) {
			if (parse_num(argv[++i], 0, 100, &a.eo.k1))
				goto bad;
		} else if (!strcmp(o, "--b") && has) {
			if (parse_num(argv[++i], 0, 1, &a.eo.b))
				goto bad;
		} else if (!strcmp(o, "--title-weight") && has) {
			if (parse_num(argv[++i], 0, 1000, &a.eo.title_weight))
				goto bad;
		} else if (!strcmp(o, "--title-b") && has) {
			if (parse_num(argv[++i], 0, 1, &a.eo.title_b))
				goto bad;
		} else if (!strcmp(o, "--name-boost") && has) {
			if (parse_num(argv[++i], 0, 100, &a.eo.name_boost))
				goto bad;
		} else if (o[0] == '-' && o[1] == '-') {
			fprintf(stderr, "sousuo-search: unknown option %s\n", o);
			usage(stderr);
			return 2;
		} else {
			/* query words; a leading '-' here is the NOT operator */
			size_t n = strlen(o);
			if (qlen + n + 2 > sizeof qbuf) {
				fprintf(stderr, "sousuo-search: query longer than %d bytes\n",
				        SOUSUO_MAX_QUERY_BYTES);
				return 2;
			}
			if (qlen)
				qbuf[qlen++] = ' ';
			memcpy(qbuf + qlen, o, n + 1);
			qlen += n;
		}
	}
	if (!path || (mode == 0 && qlen == 0)) {
		usage(stderr);
		return 2;
	}
	char err[512];
	if (index_open(path, &a.ix, err, sizeof err)) {
		fprintf(stderr, "sousuo-search: %s\n", err);
		return 1;
	}
	a.ec = engine_ctx_new();
	a.sc = index_store_ctx_new();
	a.sn = snippet_ctx_new();
	if (!a.ec || !a.sc || !a.sn) {
		fprintf(stderr, "sousuo-search: out of memory\n");
		return 1;
	}
	int rc = mode ? run_lines(&a, mode == 2) : run_one(&a, qbuf);
	snippet_ctx_free(a.sn);
	index_store_ctx_free(a.sc);
	engine_ctx_free(a.ec);
	index_close(a.ix);
	return rc;
bad:
	fprintf(stderr, "sousuo-search: bad value for %s: %s\n", argv[i - 1], argv[i]);
	return 2;
}
