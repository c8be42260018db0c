// SPDX-License-Identifier: MIT
/* Cost of a ud2 call round trip (ring 3 -> kernel #UD fast path -> ring 3). */
#include "test.h"

static int ud2_cost(struct tctx *t)
{
	uint64_t n = targ("n", 10000), *v;

	if (t->cpu != 0)
		return 0;
	if (!n)
		return tfail(t, "n must be > 0");
	v = ram_alloc(n * sizeof(*v));
	if (!v)
		return tfail(t, "no RAM for %lu samples", n);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t t0 = rdtsc_ordered();

		usys(SYS_NOP, 0, 0, 0);
		v[i] = rdtsc_ordered() - t0;
	}
	stats_report("ud2-cost", v, n);
	return 0;
}

TESTOS_TEST("ud2-cost", ud2_cost,
	    "n= timed SYS_NOP ud2 calls (ring 3 -> 0 -> 3 round trip)");
