/* test_hist.c — the benchmarks' latency histogram (bench/bench_hist.h):
 * bucket bounds and their relative error over the whole range, percentiles
 * of known distributions against the exact order statistics, merging,
 * values over the range, and the empty histogram. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench/bench_hist.h"
#include "tests/testutil.h"

/* Largest relative error of a percentile: one bucket's width. */
#define REL_ERR (1.0 / BENCH_HIST_SUB)

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static bench_hist *new_hist(void)
{
	bench_hist *h = malloc(sizeof *h);
	assert_non_null(h);
	bench_hist_init(h);
	return h;
}

/* got is the true value v or above it by at most one bucket (the top of
 * v's bucket is reported). */
static void near(uint64_t got, uint64_t v, const char *what)
{
	if (got < v || (double)(got - v) > (double)v * REL_ERR)
		fail_msg("%s: got %llu, true %llu", what, (unsigned long long)got, (unsigned long long)v);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The exact percentile as bench_hist_percentile defines it: the value of
 * rank ceil(pct% of n), at least 1, in sorted v. */
static uint64_t exact(const uint64_t *v, size_t n, double pct)
{
	double r = pct / 100.0 * (double)n;
	size_t rank = (size_t)r;
	if ((double)rank < r)
		rank++;
	if (rank < 1)
		rank = 1;
	return v[rank - 1];
}

/* ---- tests ------------------------------------------------------------------- */

static void test_buckets(void **state)
{
	assert_int_equal(bench_hist_bucket(0), 0);
	/* below 2*SUB every value has its own bucket */
	for (uint64_t v = 0; v < 2 * BENCH_HIST_SUB; v++) {
		assert_int_equal(bench_hist_bucket(v), v);
		assert_int_equal(bench_hist_bucket_high((uint32_t)v), v);
	}
	/* buckets are ordered and contiguous: a bucket's top + 1 starts the next */
	uint32_t last = bench_hist_bucket((1ull << BENCH_HIST_MAX_BITS) - 1);
	assert_int_equal(last, BENCH_HIST_NBUCKETS - 1);
	for (uint32_t b = 0; b < last; b++) {
		uint64_t top = bench_hist_bucket_high(b);
		assert_int_equal(bench_hist_bucket(top), b);
		assert_int_equal(bench_hist_bucket(top + 1), b + 1);
	}
	assert_int_equal(bench_hist_bucket_high(last), (1ull << BENCH_HIST_MAX_BITS) - 1);
	/* values over the range share the last bucket */
	assert_int_equal(bench_hist_bucket(1ull << BENCH_HIST_MAX_BITS), last);
	assert_int_equal(bench_hist_bucket(UINT64_MAX), last);
	/* the top of a value's bucket is within REL_ERR of it, all over the range */
	for (int i = 0; i < 100000; i++) {
		uint64_t v = rng() >> (64 - 1 - rng() % BENCH_HIST_MAX_BITS);
		near(bench_hist_bucket_high(bench_hist_bucket(v)), v, "bucket top");
	}
}

static void test_empty(void **state)
{
	bench_hist *h = new_hist();
	assert_int_equal(bench_hist_percentile(h, 50), 0);
	assert_int_equal(bench_hist_percentile(h, 0), 0);
	assert_int_equal(bench_hist_percentile(h, 100), 0);
	assert_true(bench_hist_mean(h) == 0);
	free(h);
}

static void test_uniform(void **state)
{
	/* 1 us .. 100 ms in steps of 1 us: p50 is 50 ms, p99.9 99.9 ms */
	bench_hist *h = new_hist();
	for (uint64_t i = 1; i <= 100000; i++)
		bench_hist_record(h, i * 1000);
	assert_int_equal(h->count, 100000);
	assert_int_equal(h->min_ns, 1000);
	assert_int_equal(h->max_ns, 100000000);
	near(bench_hist_percentile(h, 50), 50000000, "p50");
	near(bench_hist_percentile(h, 90), 90000000, "p90");
	near(bench_hist_percentile(h, 99), 99000000, "p99");
	near(bench_hist_percentile(h, 99.9), 99900000, "p99.9");
	near(bench_hist_percentile(h, 0.001), 1000, "p0.001");
	assert_int_equal(bench_hist_percentile(h, 0), 1000);
	assert_int_equal(bench_hist_percentile(h, 100), 100000000);
	/* the mean is exact: (1 + 100000) / 2 us */
	assert_true(bench_hist_mean(h) == 50000500.0);
	free(h);
}

static void test_bimodal(void **state)
{
	/* 990 replies of 1 ms and 10 of 100 ms: p99 is still 1 ms, p99.9 is 100 ms */
	bench_hist *h = new_hist();
	for (int i = 0; i < 990; i++)
		bench_hist_record(h, 1000000);
	for (int i = 0; i < 10; i++)
		bench_hist_record(h, 100000000);
	near(bench_hist_percentile(h, 50), 1000000, "p50");
	near(bench_hist_percentile(h, 99), 1000000, "p99");
	near(bench_hist_percentile(h, 99.1), 100000000, "p99.1");
	near(bench_hist_percentile(h, 99.9), 100000000, "p99.9");
	/* a bucket's top is never reported above the largest value */
	assert_int_equal(bench_hist_percentile(h, 99.9), 100000000);
	assert_true(bench_hist_mean(h) == (990.0 * 1e6 + 10.0 * 1e8) / 1000.0);
	free(h);
}

static void test_random_vs_exact(void **state)
{
	/* log-uniform values from 1 us to 10 s, against the sorted array */
	size_t n = 200000;
	uint64_t *v = malloc(n * sizeof *v);
	assert_non_null(v);
	bench_hist *h = new_hist();
	for (size_t i = 0; i < n; i++) {
		int bits = 10 + (int)(rng() % 24);                 /* 2^10 .. 2^34 ns */
		v[i] = (1ull << bits) + rng() % (1ull << bits);
		bench_hist_record(h, v[i]);
	}
	qsort(v, n, sizeof *v, cmp_u64);
	static const double pcts[] = { 0.1, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99 };
	for (size_t i = 0; i < sizeof pcts / sizeof pcts[0]; i++) {
		char what[32];
		snprintf(what, sizeof what, "p%g", pcts[i]);
		near(bench_hist_percentile(h, pcts[i]), exact(v, n, pcts[i]), what);
	}
	assert_int_equal(h->min_ns, v[0]);
	assert_int_equal(h->max_ns, v[n - 1]);
	free(v);
	free(h);
}

static void test_merge(void **state)
{
	/* two threads' halves merged = one histogram of everything */
	bench_hist *all = new_hist(), *a = new_hist(), *b = new_hist(), *m = new_hist();
	for (int i = 0; i < 50000; i++) {
		uint64_t x = rng() % 50000000;
		bench_hist_record(all, x);
		bench_hist_record(i % 3 ? a : b, x);
	}
	bench_hist_merge(m, a);
	bench_hist_merge(m, b);
	assert_int_equal(m->count, all->count);
	assert_int_equal(m->sum_ns, all->sum_ns);
	assert_int_equal(m->min_ns, all->min_ns);
	assert_int_equal(m->max_ns, all->max_ns);
	assert_memory_equal(m->bucket, all->bucket, sizeof all->bucket);
	/* merging an empty histogram changes nothing */
	bench_hist *e = new_hist();
	bench_hist_merge(m, e);
	assert_int_equal(m->min_ns, all->min_ns);
	assert_int_equal(m->count, all->count);
	free(all);
	free(a);
	free(b);
	free(m);
	free(e);
}

static void test_over_range(void **state)
{
	bench_hist *h = new_hist();
	uint64_t big = 200ull * 1000000000;   /* 200 s, over 2^37 ns */
	bench_hist_record(h, 5000);
	bench_hist_record(h, big);
	assert_int_equal(h->clamped, 1);
	assert_int_equal(h->max_ns, big);
	assert_int_equal(h->bucket[BENCH_HIST_NBUCKETS - 1], 1);
	assert_int_equal(bench_hist_percentile(h, 100), big);
	/* the last bucket's top is below the true value: the clamped range */
	assert_int_equal(bench_hist_percentile(h, 99), (1ull << BENCH_HIST_MAX_BITS) - 1);
	near(bench_hist_percentile(h, 50), 5000, "p50");
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buckets),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_uniform),
		cmocka_unit_test(test_bimodal),
		cmocka_unit_test(test_random_vs_exact),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_over_range),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
