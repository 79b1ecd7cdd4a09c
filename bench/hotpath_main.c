/* hotpath_main.c — sousuo-hotpath: the query hot path measured in-process.
 * Loads an index, parses every query of a query file once, then runs the
 * whole file several times warm (parse + match + score + top-k, no snippets:
 * the part every query pays) and reports per-query latency percentiles, the
 * time for the whole file, and a breakdown by query class.  With --known
 * FILE it also reports MRR@10 and success@1 of a known-item file
 * ("query TAB path|path...").  It also measures, as the physical limits
 * beside those figures, the integer codec's raw decoding speed and this
 * machine's memcpy bandwidth, and reports postings decoded per second; with
 * --tsv FILE it writes the per-class table for plotting. */
#include "indexer/codec.h"
#include "indexer/limits.h"
#include "search/engine.h"
#include "search/index.h"
#include "search/query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
	if (!n)
		return 0;
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i];
}

enum { C_1, C_2, C_34, C_5P, C_AND, C_OR, C_NOT, C_LATIN, NCLASS };
static const char *const class_names[NCLASS] = {
	"1 char", "2 chars", "3-4 chars", "5+ chars", "AND", "OR", "NOT", "latin/digits"
};

static int classify(const char *q)
{
	if (strchr(q, '|'))
		return C_OR;
	if (strstr(q, " -") || q[0] == '-')
		return C_NOT;
	for (const char *p = q; *p; p++)
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))
			return C_LATIN;
	if (strchr(q, ' '))
		return C_AND;
	size_t chars = 0;
	for (const char *p = q; *p; p++)
		chars += ((unsigned char)*p & 0xC0) != 0x80;
	return chars == 1 ? C_1 : chars == 2 ? C_2 : chars <= 4 ? C_34 : C_5P;
}

static void usage(void)
{
	fprintf(stderr, "usage: sousuo-hotpath -i INDEX -f QUERIES [-r RUNS] [--fast] [--known FILE]\n"
	                "                      [--per-query OUT]   (OUT: query TAB median us, slowest first)\n"
	                "                      [--tsv OUT]         (OUT: class n p50 p90 p99 max qps, us)\n"
	                "                      [--no-limits]       (no codec and memcpy ceilings: for profiling)\n");
}

static double known_item(sousuo_index *ix, engine_ctx *ec, const char *path, double *s1)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	index_store_ctx *sc = index_store_ctx_new();
	engine_opts eo;
	engine_opts_default(&eo);
	char *line = NULL;
	size_t cap = 0;
	double mrr = 0;
	int n = 0, first = 0;
	while (getline(&line, &cap, f) > 0) {
		line[strcspn(line, "\r\n")] = 0;
		char *tab = strchr(line, '\t');
		if (!tab)
			continue;
		*tab = 0;
		query_error qe;
		query *q = query_parse(line, strlen(line), &qe);
		engine_result r;
		char err[256];
		n++;
		if (!q || engine_search(ec, ix, q, &eo, &r, err, sizeof err)) {
			query_free(q);
			continue;
		}
		for (uint32_t i = 0; i < r.nhits; i++) {
			index_meta m;
			if (index_doc_meta(ix, sc, r.hits[i].doc, &m))
				continue;
			size_t pl = strlen(m.path);
			int hit = 0;
			for (const char *p = tab + 1; *p;) {
				size_t l = strcspn(p, "|\t");
				hit |= l == pl && !memcmp(p, m.path, l);
				p += l + (p[l] != 0);
			}
			if (hit) {
				mrr += 1.0 / (i + 1);
				first += i == 0;
				break;
			}
		}
		query_free(q);
	}
	free(line);
	fclose(f);
	index_store_ctx_free(sc);
	*s1 = n ? (double)first / n : 0;
	return n ? mrr / n : 0;
}

/* The ceilings beside the query figures: how fast the postings codec
 * decodes blocks of 128 gaps of typical widths (the postings of this corpus
 * mostly take 2 to 8 bits), and memcpy bandwidth on a buffer far larger than
 * the caches. */
static void physical_limits(void)
{
	enum { NB = 8192, MEMBYTES = 256 << 20 };
	uint32_t in[SOUSUO_BLOCK], out[SOUSUO_BLOCK];
	size_t bound = codec_pack_bound(SOUSUO_BLOCK);
	uint8_t *packed = malloc((size_t)NB * bound);
	size_t *at = malloc((NB + 1) * sizeof *at);
	char *a = malloc(MEMBYTES), *b = malloc(MEMBYTES);
	if (!packed || !at || !a || !b) {
		free(packed), free(at), free(a), free(b);
		return;
	}
	uint32_t seed = 12345;
	at[0] = 0;
	for (int k = 0; k < NB; k++) {
		unsigned width = 2 + (unsigned)k % 7;   /* 2..8 bits */
		for (int i = 0; i < SOUSUO_BLOCK; i++) {
			seed = seed * 1103515245u + 12345u;
			in[i] = (seed >> 8) & ((1u << width) - 1);
		}
		at[k + 1] = at[k] + codec_pack(in, SOUSUO_BLOCK, packed + at[k]);
	}
	uint64_t sink = 0;
	double best = 1e9;
	for (int rep = 0; rep < 5; rep++) {
		double t = now();
		for (int k = 0; k < NB; k++) {
			if (!codec_unpack(packed + at[k], packed + at[k + 1], out, SOUSUO_BLOCK))
				break;
			sink += out[k & (SOUSUO_BLOCK - 1)];
		}
		t = now() - t;
		if (t < best)
			best = t;
	}
	printf("codec: %.0f million integers decoded per second (blocks of %d, 2-8 bits)\n",
	       (double)NB * SOUSUO_BLOCK / best / 1e6, SOUSUO_BLOCK);
	memset(a, 1, MEMBYTES);
	memset(b, 2, MEMBYTES);
	best = 1e9;
	for (int rep = 0; rep < 3; rep++) {
		double t = now();
		memcpy(rep & 1 ? a : b, rep & 1 ? b : a, MEMBYTES);
		t = now() - t;
		if (t < best)
			best = t;
	}
	sink += (unsigned char)a[MEMBYTES / 2] + (unsigned char)b[7];
	printf("memcpy: %.1f GB/s (%d MiB)%s\n", MEMBYTES / best / 1e9, MEMBYTES >> 20,
	       sink == 1 ? " " : "");
	free(packed);
	free(at);
	free(a);
	free(b);
}

int main(int argc, char **argv)
{
	const char *ipath = NULL, *qpath = NULL, *kpath = NULL, *dpath = NULL, *tpath = NULL;
	int runs = 5, fast = 0, limits = 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-i") && i + 1 < argc)
			ipath = argv[++i];
		else if (!strcmp(argv[i], "-f") && i + 1 < argc)
			qpath = argv[++i];
		else if (!strcmp(argv[i], "-r") && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--known") && i + 1 < argc)
			kpath = argv[++i];
		else if (!strcmp(argv[i], "--fast"))
			fast = 1;
		else if (!strcmp(argv[i], "--per-query") && i + 1 < argc)
			dpath = argv[++i];
		else if (!strcmp(argv[i], "--tsv") && i + 1 < argc)
			tpath = argv[++i];
		else if (!strcmp(argv[i], "--no-limits"))
			limits = 0;
		else {
			usage();
			return 2;
		}
	}
	if (!ipath || !qpath || runs < 1) {
		usage();
		return 2;
	}
	char err[512];
	sousuo_index *ix;
	double t0 = now();
	if (index_open(ipath, &ix, err, sizeof err)) {
		fprintf(stderr, "sousuo-hotpath: %s\n", err);
		return 1;
	}
	double t_open = now() - t0;
	if (index_lock(ix, err, sizeof err))
		fprintf(stderr, "sousuo-hotpath: %s (figures may include page faults)\n", err);
	FILE *f = fopen(qpath, "r");
	if (!f) {
		fprintf(stderr, "sousuo-hotpath: cannot open %s\n", qpath);
		return 1;
	}
	char **qs = NULL;
	size_t nq = 0, capq = 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, f)) >= 0) {
		line[strcspn(line, "\r\n")] = 0;
		if (nq == capq) {
			capq = capq ? capq * 2 : 1024;
			qs = realloc(qs, capq * sizeof *qs);
		}
		qs[nq++] = strdup(line);
	}
	free(line);
	fclose(f);

	engine_ctx *ec = engine_ctx_new();
	engine_opts eo;
	engine_opts_default(&eo);
	eo.exact_total = !fast;
	double *lat = calloc(nq * (size_t)runs, sizeof *lat);
	double *pass = calloc((size_t)runs, sizeof *pass);
	int *cls = calloc(nq, sizeof *cls);
	uint64_t sink = 0, *posts = calloc(nq, sizeof *posts);
	size_t errors = 0;
	for (size_t i = 0; i < nq; i++)
		cls[i] = classify(qs[i]);
	for (int r = -1; r < runs; r++) {   /* r = -1: warm-up */
		double ps = now();
		for (size_t i = 0; i < nq; i++) {
			double a = now();
			query_error qe;
			query *q = query_parse(qs[i], strlen(qs[i]), &qe);
			engine_result res;
			if (!q || engine_search(ec, ix, q, &eo, &res, err, sizeof err))
				errors += r < 0;
			else {
				sink += res.total;
				posts[i] = res.postings;
			}
			query_free(q);
			if (r >= 0)
				lat[(size_t)r * nq + i] = now() - a;
		}
		if (r >= 0)
			pass[r] = now() - ps;
	}
	qsort(pass, (size_t)runs, sizeof *pass, cmp_d);
	size_t n = nq * (size_t)runs;
	double *all = malloc(n * sizeof *all);
	memcpy(all, lat, n * sizeof *all);
	qsort(all, n, sizeof *all, cmp_d);
	printf("index %s opened (checksums verified) in %.1f ms\n", ipath, t_open * 1e3);
	printf("%zu queries x %d runs, warm, in-process, one thread, %s, top 10, no snippets; "
	       "%zu failed\n", nq, runs, fast ? "pruned (totals may be lower bounds)" : "exact totals",
	       errors);
	printf("whole file: median %.1f ms (min %.1f, max %.1f); %.0f queries/s on one core\n",
	       pass[runs / 2] * 1e3, pass[0] * 1e3, pass[runs - 1] * 1e3, nq / pass[runs / 2]);
	printf("per query: p50 %.1f us  p90 %.1f us  p99 %.1f us  max %.1f us\n",
	       pct(all, n, 0.5) * 1e6, pct(all, n, 0.9) * 1e6, pct(all, n, 0.99) * 1e6,
	       all[n - 1] * 1e6);
	uint64_t post_all = 0;
	for (size_t i = 0; i < nq; i++)
		post_all += posts[i];
	printf("postings decoded: %.1f per query, %.0f million per second\n", (double)post_all / nq,
	       post_all / pass[runs / 2] / 1e6);
	FILE *tsv = tpath ? fopen(tpath, "w") : NULL;
	if (tpath && !tsv)
		fprintf(stderr, "sousuo-hotpath: cannot write %s\n", tpath);
	if (tsv)
		fprintf(tsv, "class\tn\tp50_us\tp90_us\tp99_us\tmax_us\tqps\n");
	printf("%-14s %6s %10s %10s %10s %10s %12s\n", "class", "n", "p50 us", "p99 us", "max us",
	       "queries/s", "postings/s");
	for (int c = 0; c < NCLASS; c++) {
		size_t k = 0;
		double sum = 0;
		uint64_t cp = 0;
		for (size_t i = 0; i < nq; i++)
			if (cls[i] == c)
				cp += posts[i];
		for (int r = 0; r < runs; r++)
			for (size_t i = 0; i < nq; i++)
				if (cls[i] == c) {
					all[k++] = lat[(size_t)r * nq + i];
					sum += lat[(size_t)r * nq + i];
				}
		if (!k)
			continue;
		qsort(all, k, sizeof *all, cmp_d);
		double qps = k / sum, pps = cp * (double)runs / sum;
		printf("%-14s %6zu %10.1f %10.1f %10.1f %10.0f %10.0f M\n", class_names[c], k / (size_t)runs,
		       pct(all, k, 0.5) * 1e6, pct(all, k, 0.99) * 1e6, all[k - 1] * 1e6, qps, pps / 1e6);
		if (tsv)
			fprintf(tsv, "%s\t%zu\t%.1f\t%.1f\t%.1f\t%.1f\t%.0f\n", class_names[c],
			        k / (size_t)runs, pct(all, k, 0.5) * 1e6, pct(all, k, 0.9) * 1e6,
			        pct(all, k, 0.99) * 1e6, all[k - 1] * 1e6, qps);
	}
	if (tsv)
		fclose(tsv);
	if (limits)
		physical_limits();
	if (dpath) {
		FILE *o = fopen(dpath, "w");
		double *med = malloc(nq * sizeof *med), *v = malloc((size_t)runs * sizeof *v);
		size_t *ord = malloc(nq * sizeof *ord);
		for (size_t i = 0; o && med && v && ord && i < nq; i++) {
			for (int r = 0; r < runs; r++)
				v[r] = lat[(size_t)r * nq + i];
			qsort(v, (size_t)runs, sizeof *v, cmp_d);
			med[i] = v[runs / 2];
			ord[i] = i;
		}
		for (size_t i = 1; o && med && ord && i < nq; i++)   /* slowest first */
			for (size_t j = i; j > 0 && med[ord[j]] > med[ord[j - 1]]; j--) {
				size_t t = ord[j];
				ord[j] = ord[j - 1];
				ord[j - 1] = t;
			}
		for (size_t i = 0; o && med && ord && i < nq; i++)
			fprintf(o, "%s\t%.1f\n", qs[ord[i]], med[ord[i]] * 1e6);
		if (o)
			fclose(o);
		free(med);
		free(v);
		free(ord);
	}
	if (kpath) {
		double s1 = 0, mrr = known_item(ix, ec, kpath, &s1);
		printf("known-item %s: MRR@10 %.4f, success@1 %.4f\n", kpath, mrr, s1);
	}
	if (sink == 42)
		printf(" ");
	for (size_t i = 0; i < nq; i++)
		free(qs[i]);
	free(qs);
	free(all);
	free(lat);
	free(pass);
	free(cls);
	free(posts);
	engine_ctx_free(ec);
	index_close(ix);
	return errors ? 1 : 0;
}
