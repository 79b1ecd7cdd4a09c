/* test_fuzz_regress.c — replays the fuzz targets' inputs under `make test`:
 * every file of tests/fuzz/regress/TARGET (inputs that once crashed, hung or
 * broke an invariant, and hand-made tricky ones) and tests/fuzz/corpus/TARGET
 * (the seeds) goes through that target's LLVMFuzzerTestOneInput, built here
 * with the project's compiler and flags instead of clang and libFuzzer.  So a
 * bug a fuzzer once found stays fixed in every build, the sanitized one
 * (make test-asan) included.
 *
 * How five targets share one program: each target file is #included with
 * LLVMFuzzerTestOneInput renamed by a macro (fuzz_request_one, ...); the
 * targets name their own static helpers with distinct prefixes and set
 * themselves up on their first input, so nothing else clashes or needs
 * calling.  FUZZ_FAIL, which a target calls when an invariant breaks, is
 * defined here first to fail the cmocka test with the input's path.  The
 * generic test rule of the Makefile builds this file alone, so this is also
 * how the targets' sources get in.  $FUZZ_DIR overrides tests/fuzz. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *fr_input = "";   /* path of the input being replayed */

#define FUZZ_FAIL(what, file, line) \
	fail_msg("%s: %s:%d: invariant failed: %s", fr_input, (file), (line), (what))

#define LLVMFuzzerTestOneInput fuzz_request_one
#include "tests/fuzz/fuzz_request.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_query_one
#include "tests/fuzz/fuzz_query.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_text_one
#include "tests/fuzz/fuzz_text.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_index_one
#include "tests/fuzz/fuzz_index.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_reply_one
#include "tests/fuzz/fuzz_reply.c"
#undef LLVMFuzzerTestOneInput

typedef int (*fr_target)(const uint8_t *data, size_t size);

static int fr_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads a whole file into a block of exactly its size (so that the
 * sanitizer sees a read past the input's end); NULL on error. */
static uint8_t *fr_read(const char *path, size_t *len)
{
	*len = 0;
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	uint8_t *buf = NULL;
	long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
	if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc(n ? (size_t)n : 1)) &&
	    fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	if (buf)
		*len = (size_t)n;
	return buf;
}

/* Runs every file of FUZZ_DIR/kind/target through fn, in name order;
 * returns how many. */
static size_t fr_replay(const char *kind, const char *target, fr_target fn)
{
	const char *top = getenv("FUZZ_DIR");
	char dir[512];
	snprintf(dir, sizeof dir, "%s/%s/%s", top && *top ? top : "tests/fuzz", kind, target);
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			names = realloc(names, cap * sizeof *names);
			assert_non_null(names);
		}
		names[n] = strdup(e->d_name);
		assert_non_null(names[n]);
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof *names, fr_cmp);
	static char path[1024];
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		size_t len;
		uint8_t *buf = fr_read(path, &len);
		if (!buf)
			fail_msg("cannot read %s", path);
		fr_input = path;
		fn(buf, len);
		fr_input = "";
		free(buf);
		free(names[i]);
	}
	free(names);
	return n;
}

/* Both folders of one target; the seed corpus must be there. */
static void fr_run(const char *target, fr_target fn)
{
	size_t seeds = fr_replay("corpus", target, fn);
	size_t regress = fr_replay("regress", target, fn);
	fprintf(stderr, "fuzz_%s: %zu seeds, %zu regression inputs\n", target, seeds, regress);
	assert_true(seeds > 0);
}

static void test_request(void **state) { (void)state; fr_run("request", fuzz_request_one); }
static void test_query(void **state) { (void)state; fr_run("query", fuzz_query_one); }
static void test_text(void **state) { (void)state; fr_run("text", fuzz_text_one); }
static void test_index(void **state) { (void)state; fr_run("index", fuzz_index_one); }
static void test_reply(void **state) { (void)state; fr_run("reply", fuzz_reply_one); }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_query),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_index),
		cmocka_unit_test(test_reply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
