// SPDX-License-Identifier: MIT
/*
 * Cost of one VM exit to the VMM: `n` ring-3 `out`s to PORT_NOP, which the
 * VMM answers at once, each timed with the TSC (CPU 0 only; the others
 * park so they do not compete for host CPUs).
 */
#include "test.h"

#define WARMUP 100

static int exit_cost(struct tctx *t)
{
	uint64_t n = targ("n", 10000), *v;

	if (t->cpu != 0)
		return 0;
	if (!n)
		return tfail(t, "n must be > 0");
	v = ram_alloc(n * sizeof(*v));
	if (!v)
		return tfail(t, "no RAM for %lu samples", n);
	for (uint64_t i = 0; i < n + WARMUP; i++) {
		uint64_t t0 = rdtsc_ordered();

		uoutb(PORT_NOP, 0);
		if (i >= WARMUP)
			v[i - WARMUP] = rdtsc_ordered() - t0;
	}
	if (!shared.io_direct)
		tprintf("exit-cost: note: io=ud2, each out is a ud2 call\n");
	stats_report("exit-cost", v, n);
	return 0;
}

TESTOS_TEST("exit-cost", exit_cost,
	    "n= timed ring-3 outs to port 0x510 (VM exit round trip)");
