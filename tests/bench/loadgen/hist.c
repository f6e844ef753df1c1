/*
 * hist.c — a log-linear latency histogram (the layout of HdrHistogram).
 *
 * Values below 2^(SUB_BITS+1) ns have a bucket each. Above, a value v with
 * its highest bit at position m falls in exponent e = m - SUB_BITS, and
 * its bucket is (e << SUB_BITS) + (v >> e): 128 buckets of width 2^e cover
 * [2^m, 2^(m+1)). So a bucket is never wider than 1/128 of its values
 * (under 0.8%), and the middle of a bucket is within 0.4% of any value in
 * it. The indexes of consecutive exponents follow each other with no gap.
 */
#include "bench.h"

#define SUB_COUNT (1u << BENCH_HIST_SUB_BITS) /* 128 */
#define MAX_VALUE ((UINT64_C(1) << BENCH_HIST_MAX_EXP) - 1)

static unsigned int bucket_of(uint64_t v)
{
	unsigned int msb, e;

	if (v < 2 * SUB_COUNT)
		return (unsigned int)v;
	msb = 63u - (unsigned int)__builtin_clzll(v);
	e = msb - BENCH_HIST_SUB_BITS;
	return (e << BENCH_HIST_SUB_BITS) + (unsigned int)(v >> e);
}

/* The middle of bucket i. */
static uint64_t value_of(unsigned int i)
{
	unsigned int e;
	uint64_t m;

	if (i < 2 * SUB_COUNT)
		return i;
	e = (i >> BENCH_HIST_SUB_BITS) - 1;
	m = i - ((uint64_t)e << BENCH_HIST_SUB_BITS); /* in [128, 256) */
	return (m << e) + ((UINT64_C(1) << e) >> 1);
}

void bench_hist_record(struct bench_hist *h, uint64_t ns)
{
	if (ns > MAX_VALUE)
		ns = MAX_VALUE;
	h->buckets[bucket_of(ns)]++;
	h->count++;
	h->sum_ns += ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
}

uint64_t bench_hist_quantile(const struct bench_hist *h, double q)
{
	uint64_t rank, seen = 0;

	if (h->count == 0)
		return 0;
	/* The smallest value with at least q of the samples at or below it. */
	rank = (uint64_t)(q * (double)h->count + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > h->count)
		rank = h->count;
	for (unsigned int i = 0; i < BENCH_HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank) {
			uint64_t v = value_of(i);
			return v < h->max_ns ? v : h->max_ns;
		}
	}
	return h->max_ns;
}
