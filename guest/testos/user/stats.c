// SPDX-License-Identifier: MIT
/* Sorting and percentiles for latency samples (heapsort: in place, no
 * recursion, O(n log n) even on sorted input). */
#include "test.h"

static void sift(uint64_t *v, size_t i, size_t n)
{
	for (;;) {
		size_t c = 2 * i + 1;
		uint64_t tmp;

		if (c >= n)
			return;
		if (c + 1 < n && v[c + 1] > v[c])
			c++;
		if (v[i] >= v[c])
			return;
		tmp = v[i];
		v[i] = v[c];
		v[c] = tmp;
		i = c;
	}
}

void stats_sort(uint64_t *v, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		sift(v, i, n);
	for (size_t end = n; end-- > 1;) {
		uint64_t tmp = v[0];

		v[0] = v[end];
		v[end] = tmp;
		sift(v, 0, end);
	}
}

uint64_t stats_pct(const uint64_t *sorted, size_t n, unsigned p)
{
	size_t rank;

	if (!n)
		return 0;
	rank = (n * p + 99) / 100; /* nearest rank: ceil(p/100 * n) */
	return sorted[rank ? rank - 1 : 0];
}

void stats_report(const char *label, uint64_t *v, size_t n)
{
	uint64_t p50, p99;

	stats_sort(v, n);
	p50 = stats_pct(v, n, 50);
	p99 = stats_pct(v, n, 99);
	tprintf("%s: n=%zu p50_cycles=%lu p99_cycles=%lu p50_ns=%lu "
		"p99_ns=%lu\n",
		label, n, p50, p99, cycles_to_ns(p50), cycles_to_ns(p99));
	tprintf("%s: min_cycles=%lu p90_cycles=%lu p95_cycles=%lu "
		"max_cycles=%lu tsc_khz=%lu\n",
		label, n ? v[0] : 0, stats_pct(v, n, 90), stats_pct(v, n, 95),
		n ? v[n - 1] : 0, tsc_khz());
}
