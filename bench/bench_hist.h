/* bench_hist.h — a latency histogram for the benchmarks (sousuo-benchmark,
 * and the in-process hot path later): log-linear buckets in the manner of
 * HdrHistogram, so recording is a few instructions and no allocation, one
 * histogram per thread is merged at the end, and every percentile is within
 * 1/BENCH_HIST_SUB of the true value however wide the range.
 *
 * Layout: a value v (nanoseconds) below 2*BENCH_HIST_SUB has a bucket of its
 * own; above, with e = floor(log2 v) - BENCH_HIST_SUB_BITS, v falls in bucket
 * (e << SUB_BITS) + (v >> e): each power of two is cut into BENCH_HIST_SUB
 * equal buckets, each 2^e wide, at most 1/BENCH_HIST_SUB of its values. */
#ifndef SOUSUO_BENCH_HIST_H
#define SOUSUO_BENCH_HIST_H

#include <stdint.h>

/* 128 buckets per power of two: < 0.8% relative error. */
#define BENCH_HIST_SUB_BITS 7
#define BENCH_HIST_SUB      (1u << BENCH_HIST_SUB_BITS)
/* Values below 2^37 ns (137 s) are kept; larger ones go in the last bucket
 * (max_ns still holds the exact value). */
#define BENCH_HIST_MAX_BITS 37
#define BENCH_HIST_NBUCKETS ((BENCH_HIST_MAX_BITS - BENCH_HIST_SUB_BITS + 1) << BENCH_HIST_SUB_BITS)

typedef struct {
	uint64_t count;                          /* values recorded */
	uint64_t sum_ns;                         /* their sum, for the mean (584 years) */
	uint64_t min_ns, max_ns;                 /* exact; min is UINT64_MAX when empty */
	uint64_t clamped;                        /* values of 2^BENCH_HIST_MAX_BITS ns or more */
	uint64_t bucket[BENCH_HIST_NBUCKETS];
} bench_hist;

void bench_hist_init(bench_hist *h);

/* The bucket of a value; bench_hist_bucket_high its largest value. */
static inline uint32_t bench_hist_bucket(uint64_t ns)
{
	if (ns >> BENCH_HIST_MAX_BITS)
		ns = (1ull << BENCH_HIST_MAX_BITS) - 1;
	if (ns < 2 * BENCH_HIST_SUB)
		return (uint32_t)ns;
	unsigned e = (unsigned)(63 - __builtin_clzll(ns)) - BENCH_HIST_SUB_BITS;
	return (uint32_t)((e << BENCH_HIST_SUB_BITS) + (ns >> e));
}

uint64_t bench_hist_bucket_high(uint32_t bucket);

static inline void bench_hist_record(bench_hist *h, uint64_t ns)
{
	h->count++;
	h->sum_ns += ns;
	if (ns < h->min_ns)
		h->min_ns = ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
	h->clamped += ns >> BENCH_HIST_MAX_BITS != 0;
	h->bucket[bench_hist_bucket(ns)]++;
}

/* Adds every value of `from` to `into`. */
void bench_hist_merge(bench_hist *into, const bench_hist *from);

/* The smallest recorded value (to the bucket's precision) that at least
 * pct percent of the values do not exceed: the top of its bucket, never more
 * than max_ns.  pct 0 gives min_ns, 100 max_ns; 0 when empty. */
uint64_t bench_hist_percentile(const bench_hist *h, double pct);

/* The exact mean in nanoseconds; 0 when empty. */
double bench_hist_mean(const bench_hist *h);

#endif
