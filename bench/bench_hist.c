/* bench_hist.c — the latency histogram of bench_hist.h: merging and
 * percentiles (recording is inline in the header, it is the hot part). */
#include "bench/bench_hist.h"

#include <string.h>

void bench_hist_init(bench_hist *h)
{
	memset(h, 0, sizeof *h);
	h->min_ns = UINT64_MAX;
}

uint64_t bench_hist_bucket_high(uint32_t bucket)
{
	if (bucket < 2 * BENCH_HIST_SUB)
		return bucket;
	unsigned e = (bucket >> BENCH_HIST_SUB_BITS) - 1;
	uint64_t m = bucket - ((uint64_t)e << BENCH_HIST_SUB_BITS);   /* SUB .. 2*SUB-1 */
	return ((m + 1) << e) - 1;
}

void bench_hist_merge(bench_hist *into, const bench_hist *from)
{
	into->count += from->count;
	into->sum_ns += from->sum_ns;
	into->clamped += from->clamped;
	if (from->min_ns < into->min_ns)
		into->min_ns = from->min_ns;
	if (from->max_ns > into->max_ns)
		into->max_ns = from->max_ns;
	for (uint32_t i = 0; i < BENCH_HIST_NBUCKETS; i++)
		into->bucket[i] += from->bucket[i];
}

uint64_t bench_hist_percentile(const bench_hist *h, double pct)
{
	if (!h->count)
		return 0;
	if (pct <= 0)
		return h->min_ns;
	if (pct >= 100)
		return h->max_ns;
	/* the rank of the value: ceil(pct% of count), at least 1 */
	double r = pct / 100.0 * (double)h->count;
	uint64_t rank = (uint64_t)r;
	if ((double)rank < r)
		rank++;
	if (rank < 1)
		rank = 1;
	uint64_t seen = 0;
	for (uint32_t i = 0; i < BENCH_HIST_NBUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= rank) {
			uint64_t v = bench_hist_bucket_high(i);
			if (v > h->max_ns)
				v = h->max_ns;
			if (v < h->min_ns)
				v = h->min_ns;
			return v;
		}
	}
	return h->max_ns;
}

double bench_hist_mean(const bench_hist *h)
{
	return h->count ? (double)h->sum_ns / (double)h->count : 0;
}
