/* index_main.c — sousuo-index: builds an index file from corpus folders and
 * JSON Lines files, or checks an existing one (--check). */
#include "indexer/corpus.h"
#include "indexer/format.h"
#include "indexer/writer.h"
#include "search/index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static const char *const sec_names[FMT_NSECTIONS] = {
	"dictindex", "dict", "postings", "positions", "docs", "categories", "zdict", "store"
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: sousuo-index -o FILE [--strict] [--level N] [--threads N] [--ngram-min-df N] INPUT...\n"
	        "       sousuo-index --check FILE\n"
	        "INPUT: folders of .md/.txt files (walked recursively, sorted), .md/.txt files,\n"
	        "       or .jsonl files (one {\"title\",\"body\",\"id\"?,\"date\"?,\"category\"?} a line).\n"
	        "  -o FILE      index to write (atomically: the old one stays until it is complete)\n"
	        "  --strict     stop at the first unreadable or invalid input instead of skipping it\n"
	        "  --level N    zstd level of the document store (default 6)\n"
	        "  --threads N  threads for tokenizing, encoding and compression (default 2);\n"
	        "               the index is the same whatever N\n"
	        "  --ngram-min-df N  runs of 3-4 CJK characters in at least N documents get\n"
	        "               postings of their own (faster queries for common words, a\n"
	        "               larger index); default max(16, documents / 16), 0: none\n"
	        "  --check FILE verify every checksum and table of FILE and print its layout\n");
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void on_skip(void *ctx, const char *what, const char *why)
{
	(void)ctx;
	fprintf(stderr, "sousuo-index: skipped %s: %s\n", what, why);
}

static int check(const char *path)
{
	char err[512];
	sousuo_index *ix;
	if (index_open(path, &ix, err, sizeof err)) {
		fprintf(stderr, "sousuo-index: %s\n", err);
		return 1;
	}
	const fmt_header *h = index_header(ix);
	printf("%s: ok\n", path);
	printf("format version %u, %u documents, %llu terms, %u categories, block %u\n",
	       h->version, h->ndocs, (unsigned long long)h->nterms, h->ncategories, h->block);
	printf("body tokens %llu (avg %.1f), title tokens %llu (avg %.1f)\n",
	       (unsigned long long)h->body_tokens, index_avg_body(ix),
	       (unsigned long long)h->title_tokens, index_avg_title(ix));
	printf("%-11s %12s %12s %18s\n", "section", "offset", "bytes", "xxh3");
	for (int s = 0; s < FMT_NSECTIONS; s++)
		printf("%-11s %12llu %12llu %016llx\n", sec_names[s],
		       (unsigned long long)h->sections[s].offset,
		       (unsigned long long)h->sections[s].length,
		       (unsigned long long)h->sections[s].checksum);
	printf("file bytes %llu\n", (unsigned long long)h->file_bytes);
	index_close(ix);
	return 0;
}

int main(int argc, char **argv)
{
	const char *out = NULL;
	int strict = 0;
	writer_opts wo = { 0 };
	const char **inputs = calloc((size_t)argc, sizeof *inputs);
	int ninputs = 0;
	if (!inputs)
		return 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--check") && i + 1 < argc) {
			return check(argv[i + 1]);
		} else if (!strcmp(a, "-o") && i + 1 < argc) {
			out = argv[++i];
		} else if (!strcmp(a, "--strict")) {
			strict = 1;
		} else if (!strcmp(a, "--level") && i + 1 < argc) {
			wo.zstd_level = atoi(argv[++i]);
			if (wo.zstd_level < 1 || wo.zstd_level > 22) {
				fprintf(stderr, "sousuo-index: --level must be 1..22\n");
				return 2;
			}
		} else if (!strcmp(a, "--ngram-min-df") && i + 1 < argc) {
			char *end;
			long v = strtol(argv[++i], &end, 10);
			if (*end || v < 0 || v > 1000000000) {
				fprintf(stderr, "sousuo-index: --ngram-min-df must be 0..1000000000\n");
				return 2;
			}
			wo.ngram_min_df = v == 0 ? UINT32_MAX : (uint32_t)v;
		} else if (!strcmp(a, "--threads") && i + 1 < argc) {
			wo.threads = atoi(argv[++i]);
			if (wo.threads < 1 || wo.threads > 256) {
				fprintf(stderr, "sousuo-index: --threads must be 1..256\n");
				return 2;
			}
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr, "sousuo-index: unknown option %s\n", a);
			usage(stderr);
			return 2;
		} else {
			inputs[ninputs++] = a;
		}
	}
	if (!out || ninputs == 0) {
		usage(stderr);
		return 2;
	}
	double t0 = now();
	char err[512];
	corpus_reader *r = corpus_open(inputs, ninputs, strict, on_skip, NULL, err, sizeof err);
	if (!r) {
		fprintf(stderr, "sousuo-index: %s\n", err);
		return 1;
	}
	index_writer *w = writer_new(&wo);
	if (!w) {
		fprintf(stderr, "sousuo-index: out of memory\n");
		return 1;
	}
	int tty = isatty(2), rc;
	corpus_doc d;
	uint64_t ndocs = 0, bytes = 0;
	double last = t0;
	while ((rc = corpus_next(r, &d)) == 1) {
		if (writer_add(w, &d, err, sizeof err)) {
			fprintf(stderr, "sousuo-index: %s\n", err);
			return 1;
		}
		ndocs++;
		bytes += d.body_len;
		double t = now();
		if (tty && t - last > 0.2) {
			fprintf(stderr, "\r%llu documents, %.1f MB, %.1f MB/s, %.1f s",
			        (unsigned long long)ndocs, bytes / 1e6, bytes / 1e6 / (t - t0), t - t0);
			last = t;
		}
	}
	if (tty)
		fprintf(stderr, "\r\033[K");
	if (rc < 0) {
		fprintf(stderr, "sousuo-index: %s\n", corpus_error(r));
		return 1;
	}
	uint64_t skipped = corpus_skipped(r);
	corpus_close(r);
	double t1 = now();
	writer_stats st;
	if (writer_finish(w, out, &st, err, sizeof err)) {
		fprintf(stderr, "sousuo-index: %s\n", err);
		writer_free(w);
		return 1;
	}
	writer_free(w);
	double t2 = now();
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("%s: %u documents, %llu skipped, %.1f MB of text\n", out, st.docs,
	       (unsigned long long)skipped, st.raw_bytes / 1e6);
	printf("%llu terms (%llu n-grams), %llu postings, %llu positions\n",
	       (unsigned long long)st.terms, (unsigned long long)st.ngrams,
	       (unsigned long long)st.postings, (unsigned long long)st.positions);
	for (int s = 0; s < FMT_NSECTIONS; s++)
		printf("  %-11s %10.2f MB  %5.3f x text\n", sec_names[s], st.section_bytes[s] / 1e6,
		       st.raw_bytes ? (double)st.section_bytes[s] / st.raw_bytes : 0);
	printf("  %-11s %10.2f MB  %5.3f x text\n", "file", st.file_bytes / 1e6,
	       st.raw_bytes ? (double)st.file_bytes / st.raw_bytes : 0);
	/* tokenizing runs alongside reading; what is left of it when the last
	 * document has been read is the wait */
	printf("time %.2f s (reading and tokenizing %.2f s + %.2f s, encoding %.2f s, "
	       "writing %.2f s), %.1f MB/s, peak memory %.0f MB\n",
	       t2 - t0, t1 - t0, st.tokenize_wait_seconds, st.encode_seconds, st.write_seconds,
	       st.raw_bytes / 1e6 / (t2 - t0), ru.ru_maxrss / 1024.0);
	free(inputs);
	return 0;
}
