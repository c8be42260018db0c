// SPDX-License-Identifier: MIT
/* Every CPU checks in from ring 3, in CPU order so the log reads well. */
#include "test.h"

static volatile uint64_t checked_in;

static int smp_hello(struct tctx *t)
{
	uint64_t deadline = deadline_in_ms(10000);

	while (__atomic_load_n(&checked_in, __ATOMIC_ACQUIRE) != t->cpu) {
		cpu_relax();
		if (past(deadline))
			return tfail(t, "cpu %u: turn never came", t->cpu);
	}
	tprintf("cpu %u up (apic %u, ring %u)\n", t->cpu,
		shared.cpu_apic[t->cpu], read_cs() & 3);
	atomic_add(&checked_in, 1);
	tbarrier(t);
	if (t->cpu != 0)
		return 0;
	tprintf("smp-hello: %lu/%u cpus\n", checked_in, shared.ncpus_madt);
	if (checked_in != shared.ncpus_madt)
		return tfail(t, "%lu of %u cpus checked in", checked_in,
			     shared.ncpus_madt);
	return 0;
}

TESTOS_TEST("smp-hello", smp_hello, "every CPU checks in from ring 3");
