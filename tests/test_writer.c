/* test_writer.c — the index writer (indexer/writer.h): the same documents give
 * the same index byte for byte whatever the number of threads (every section's
 * length and xxh3 in the header; the header's `created` differs between
 * builds, so whole files are not compared), and a failed build leaves no
 * temporary file and the previous index untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "indexer/corpus.h"
#include "indexer/format.h"
#include "indexer/writer.h"
#include "search/index.h"
#include "tests/testutil.h"

/* ---- inputs ---- */

/* A document owned by the test (corpus_doc's strings belong to the reader). */
typedef struct {
	char *path, *title, *category, *ext_id, *body, *short_title;
	size_t body_len;
	uint32_t date;
} tdoc;

typedef struct {
	tdoc *d;
	size_t n, cap;
} tdocs;

static char *dup_or_null(const char *s)
{
	if (!s)
		return NULL;
	char *c = strdup(s);
	assert_non_null(c);
	return c;
}

static void tdocs_add(tdocs *t, const char *path, const char *title, const char *category,
                      const char *ext_id, const char *body, size_t body_len, uint32_t date,
                      const char *short_title)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->d = realloc(t->d, t->cap * sizeof *t->d);
		assert_non_null(t->d);
	}
	tdoc *d = &t->d[t->n++];
	d->path = dup_or_null(path);
	d->title = dup_or_null(title);
	d->category = dup_or_null(category);
	d->ext_id = dup_or_null(ext_id);
	d->short_title = dup_or_null(short_title);
	d->body = malloc(body_len + 1);
	assert_non_null(d->body);
	memcpy(d->body, body, body_len);
	d->body[body_len] = 0;
	d->body_len = body_len;
	d->date = date;
}

static void tdocs_free(tdocs *t)
{
	for (size_t i = 0; i < t->n; i++) {
		tdoc *d = &t->d[i];
		free(d->path);
		free(d->title);
		free(d->category);
		free(d->ext_id);
		free(d->short_title);
		free(d->body);
	}
	free(t->d);
	memset(t, 0, sizeof *t);
}

/* Hand-made documents: edge cases of the tokenizer and of the fields. */
static void add_handmade(tdocs *t)
{
	static const struct {
		const char *path, *title, *category, *ext_id, *body, *short_title;
		uint32_t date;
	} H[] = {
		{ "法律/外商投资法(2019-03-15).md", "中华人民共和国外商投资法", "法律", NULL,
		  "\x1f中华人民共和国外商投资法\n外商投\n\n资实行准入前国民待遇加负面清单管理制度。",
		  "外商投资法", 20190315 },
		{ "行政法规/条例.md", "某某条例", "行政法规", NULL,
		  "外商，投资。商投资外商投资不是连续的：外商 投资者？外商|投资 500万元 COVID-19",
		  NULL, 20210101 },
		{ "行政法规/山东/规定.md", "山东规定", "行政法规/山东", NULL,
		  "罚款500 万元。ＡＰＰ应用 app 2019年 哈哈哈 〇 𠀀𠀁 丽\xef\xa5\x9b", NULL, 0 },
		{ "empty.md", "空", "", NULL, "", NULL, 0 },
		{ "punct.md", "", "", NULL, "，。！？……——", "", 0 },
		{ "data.jsonl:3", "JSON 文档", "数据", "id-42", "JSON 文档\n正文 text 正文", NULL,
		  20200101 },
	};
	for (size_t i = 0; i < sizeof H / sizeof *H; i++)
		tdocs_add(t, H[i].path, H[i].title, H[i].category, H[i].ext_id, H[i].body,
		          strlen(H[i].body), H[i].date, H[i].short_title);
	/* one long document: runs of positions longer than a block */
	size_t n = 0;
	char *big = malloc(600 * 40);
	assert_non_null(big);
	for (int i = 0; i < 600; i++)
		n += (size_t)sprintf(big + n, "外商投资%s", i % 7 ? "企业" : "，word ");
	tdocs_add(t, "big.md", "大文档", "法律", NULL, big, n, 0, NULL);
	free(big);
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(uint32_t below)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (uint32_t)((rng * 0x2545F4914F6CDD1Dull) >> 33) % below;
}

/* Generated documents over a small vocabulary: many terms in more than
 * SOUSUO_BLOCK documents, and more documents than one tokenizing job holds. */
static void add_generated(tdocs *t, size_t ndocs)
{
	static const char *const cjk[] = { "法", "律", "条", "例", "国", "家", "人", "民",
	                                   "政", "府", "外", "商", "投", "资", "企", "业" };
	static const char *const words[] = { "app", "2019", "covid", "5g", "ＡＢＣ" };
	static const char *const seps[] = { "", "", "", " ", "，", "\n", "。" };
	char *body = malloc(64 * 1024);
	assert_non_null(body);
	for (size_t k = 0; k < ndocs; k++) {
		size_t n = 0, ntok = 20 + rnd(400);
		for (size_t i = 0; i < ntok; i++) {
			if (rnd(10) == 0)
				n += (size_t)sprintf(body + n, " %s ", words[rnd(5)]);
			else
				n += (size_t)sprintf(body + n, "%s", cjk[rnd(16)]);
			n += (size_t)sprintf(body + n, "%s", seps[rnd(7)]);
		}
		char path[64], title[64];
		snprintf(path, sizeof path, "gen/%03zu.md", k);
		snprintf(title, sizeof title, "合成%s%s文档", cjk[rnd(16)], cjk[rnd(16)]);
		tdocs_add(t, path, title, k % 3 ? "gen" : "gen/sub", NULL, body, n,
		          k % 5 ? 20000101 + (uint32_t)k : 0, NULL);
	}
	free(body);
}

static void on_skip(void *ctx, const char *what, const char *why)
{
	(void)ctx;
	fprintf(stderr, "skipped %s: %s\n", what, why);
}

/* Every step-th document of the shared corpus. */
static void add_corpus(tdocs *t, size_t step)
{
	char err[512];
	corpus_reader *r = test_open_corpus(on_skip, err, sizeof err);
	if (!r)
		fail_msg("%s", err);
	corpus_doc d;
	size_t i = 0;
	int rc;
	while ((rc = corpus_next(r, &d)) == 1)
		if (i++ % step == 0)
			tdocs_add(t, d.path, d.title, d.category, d.ext_id, d.body, d.body_len, d.date,
			          d.short_title);
	assert_int_equal(rc, 0);
	corpus_close(r);
}

/* ---- helpers ---- */

static index_writer *writer_with(const tdocs *t, int threads)
{
	writer_opts o = { 0 };
	o.threads = threads;
	index_writer *w = writer_new(&o);
	assert_non_null(w);
	char err[256];
	for (size_t i = 0; i < t->n; i++) {
		const tdoc *s = &t->d[i];
		corpus_doc d = { s->path, s->title, s->category, s->ext_id, s->body, s->body_len,
		                 s->date, s->short_title };
		if (writer_add(w, &d, err, sizeof err))
			fail_msg("writer_add %s: %s", s->path, err);
	}
	return w;
}

/* Builds t with threads threads at path; returns the checked file's header. */
static fmt_header build(const tdocs *t, int threads, const char *path)
{
	index_writer *w = writer_with(t, threads);
	char err[512];
	writer_stats st;
	if (writer_finish(w, path, &st, err, sizeof err))
		fail_msg("writer_finish (%d threads): %s", threads, err);
	writer_free(w);
	assert_int_equal(st.docs, t->n);
	sousuo_index *ix;
	if (index_open(path, &ix, err, sizeof err))
		fail_msg("index_open (%d threads): %s", threads, err);
	fmt_header h = *index_header(ix);
	index_close(ix);
	for (int s = 0; s < FMT_NSECTIONS; s++)
		assert_int_equal(st.section_bytes[s], h.sections[s].length);
	return h;
}

static void assert_same_index(const fmt_header *a, const fmt_header *b, int threads)
{
	if (a->ndocs != b->ndocs || a->nterms != b->nterms || a->ncategories != b->ncategories ||
	    a->body_tokens != b->body_tokens || a->title_tokens != b->title_tokens ||
	    a->file_bytes != b->file_bytes)
		fail_msg("%d threads: counts differ from 1 thread", threads);
	for (int s = 0; s < FMT_NSECTIONS; s++)
		if (a->sections[s].offset != b->sections[s].offset ||
		    a->sections[s].length != b->sections[s].length ||
		    a->sections[s].checksum != b->sections[s].checksum)
			fail_msg("%d threads: section %d differs from 1 thread "
			         "(%llu bytes, xxh3 %016llx; 1 thread: %llu bytes, xxh3 %016llx)",
			         threads, s, (unsigned long long)b->sections[s].length,
			         (unsigned long long)b->sections[s].checksum,
			         (unsigned long long)a->sections[s].length,
			         (unsigned long long)a->sections[s].checksum);
}

/* Builds t with 1 thread and with each of threads[]; all must agree. */
static void check_threads(const tdocs *t, const int *threads, size_t n)
{
	const char *path = test_tmp_path("threads.idx");
	fmt_header ref = build(t, 1, path);
	for (size_t i = 0; i < n; i++) {
		fmt_header h = build(t, threads[i], path);
		assert_same_index(&ref, &h, threads[i]);
	}
	unlink(path);
}

/* ---- tests ---- */

static void test_threads_empty(void **state)
{
	(void)state;
	tdocs t = { 0 };
	const int th[] = { 2, 3 };
	check_threads(&t, th, 2);
}

static void test_threads_handmade(void **state)
{
	(void)state;
	tdocs t = { 0 };
	add_handmade(&t);
	const int th[] = { 2, 3, 16 };  /* 16: more threads than documents */
	check_threads(&t, th, 3);
	tdocs_free(&t);
}

static void test_threads_generated(void **state)
{
	(void)state;
	tdocs t = { 0 };
	add_generated(&t, 700);
	const int th[] = { 2, 3, 5 };
	check_threads(&t, th, 3);
	tdocs_free(&t);
}

/* Hand-made documents, generated ones, every 7th document of the corpus. */
static void test_threads_corpus(void **state)
{
	(void)state;
	tdocs t = { 0 };
	add_handmade(&t);
	add_generated(&t, 150);
	add_corpus(&t, 7);
	assert_true(t.n > 400);
	const int th[] = { 2, 3 };
	check_threads(&t, th, 2);
	tdocs_free(&t);
}

/* A writer freed without writer_finish, with documents still queued. */
static void test_free_unfinished(void **state)
{
	(void)state;
	tdocs t = { 0 };
	add_generated(&t, 300);
	for (int threads = 1; threads <= 3; threads++)
		writer_free(writer_with(&t, threads));
	tdocs_free(&t);
}

static void test_finish_once(void **state)
{
	(void)state;
	tdocs t = { 0 };
	add_handmade(&t);
	const char *path = test_tmp_path("once.idx");
	index_writer *w = writer_with(&t, 2);
	char err[256];
	assert_int_equal(writer_finish(w, path, NULL, err, sizeof err), 0);
	err[0] = 0;
	assert_int_equal(writer_finish(w, path, NULL, err, sizeof err), -1);
	assert_true(err[0] != 0);
	corpus_doc d = { "x.md", "x", "", NULL, "x", 1, 0, NULL };
	err[0] = 0;
	assert_int_equal(writer_add(w, &d, err, sizeof err), -1);
	assert_true(err[0] != 0);
	writer_free(w);
	unlink(path);
	tdocs_free(&t);
}

static void test_missing_folder(void **state)
{
	(void)state;
	tdocs t = { 0 };
	add_handmade(&t);
	char dir[256], path[300];
	snprintf(dir, sizeof dir, "%s", test_tmp_path("no-such-folder"));
	snprintf(path, sizeof path, "%s/x.idx", dir);
	rmdir(dir);
	for (int threads = 1; threads <= 2; threads++) {
		index_writer *w = writer_with(&t, threads);
		char err[512] = "";
		assert_int_equal(writer_finish(w, path, NULL, err, sizeof err), -1);
		writer_free(w);
		if (!strstr(err, "cannot create") || !strstr(err, "x.idx"))
			fail_msg("unexpected message: %s", err);
		struct stat st;
		assert_int_equal(stat(dir, &st), -1);  /* nothing was created */
		assert_int_equal(errno, ENOENT);
	}
	tdocs_free(&t);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc((size_t)n + 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return b;
}

/* A build that fails while writing (the file size limit makes write fail
 * with EFBIG) leaves the previous index as it was and no temporary file. */
static void test_failed_write_keeps_old(void **state)
{
	(void)state;
	char dir[256], path[300];
	snprintf(dir, sizeof dir, "%s", test_tmp_path("keep-XXXXXX"));
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/x.idx", dir);

	tdocs small = { 0 }, large = { 0 };
	add_handmade(&small);
	add_generated(&large, 300);
	build(&small, 2, path);
	size_t old_len;
	char *old = slurp(path, &old_len);

	for (int threads = 1; threads <= 2; threads++) {
		index_writer *w = writer_with(&large, threads);
		struct rlimit lim, saved;
		struct sigaction ign, saved_sa;
		memset(&ign, 0, sizeof ign);
		ign.sa_handler = SIG_IGN;
		assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
		lim = saved;
		lim.rlim_cur = 16 * 1024;
		assert_int_equal(sigaction(SIGXFSZ, &ign, &saved_sa), 0);
		assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
		char err[512] = "";
		int rc = writer_finish(w, path, NULL, err, sizeof err);
		setrlimit(RLIMIT_FSIZE, &saved);
		sigaction(SIGXFSZ, &saved_sa, NULL);
		writer_free(w);
		assert_int_equal(rc, -1);
		if (!strstr(err, "cannot write") || !strstr(err, "x.idx"))
			fail_msg("unexpected message: %s", err);

		size_t len;
		char *now = slurp(path, &len);
		assert_int_equal(len, old_len);
		assert_memory_equal(now, old, len);
		free(now);
		DIR *dh = opendir(dir);
		assert_non_null(dh);
		struct dirent *e;
		while ((e = readdir(dh)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "x.idx"))
				fail_msg("left behind: %s/%s", dir, e->d_name);
		closedir(dh);
	}
	free(old);
	unlink(path);
	rmdir(dir);
	tdocs_free(&small);
	tdocs_free(&large);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threads_empty),
		cmocka_unit_test(test_threads_handmade),
		cmocka_unit_test(test_threads_generated),
		cmocka_unit_test(test_threads_corpus),
		cmocka_unit_test(test_free_unfinished),
		cmocka_unit_test(test_finish_once),
		cmocka_unit_test(test_missing_folder),
		cmocka_unit_test(test_failed_write_keeps_old),
	};
	return cmocka_run_group_tests_name("index writer", tests, NULL, NULL) ? 1 : 0;
}
