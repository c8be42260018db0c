// SPDX-License-Identifier: MIT
/* All CPUs `lock xadd` one shared word `iters` times; no update may be lost. */
#include "test.h"

static volatile uint64_t word __attribute__((aligned(64)));
static volatile uint64_t max_cycles;

static int counter(struct tctx *t)
{
	uint64_t iters = targ("iters", 1000000), t0, dt, expect;

	tbarrier(t);
	t0 = rdtsc_ordered();
	for (uint64_t i = 0; i < iters; i++)
		__atomic_fetch_add(&word, 1, __ATOMIC_SEQ_CST);
	dt = rdtsc_ordered() - t0;
	for (uint64_t m = max_cycles; dt > m;)
		if (__atomic_compare_exchange_n(&max_cycles, &m, dt, 0,
						__ATOMIC_SEQ_CST,
						__ATOMIC_SEQ_CST))
			break;
	tbarrier(t);
	if (t->cpu != 0)
		return 0;
	expect = iters * t->ncpus;
	tprintf("counter: total=%lu expected=%lu cpus=%u iters=%lu "
		"slowest_cpu_ms=%lu\n",
		word, expect, t->ncpus, iters,
		cycles_to_ns(max_cycles) / 1000000);
	if (word != expect)
		return tfail(t, "total %lu != %lu", word, expect);
	return 0;
}

TESTOS_TEST("counter", counter,
	    "iters= lock xadd per CPU on one word; total must be exact");
