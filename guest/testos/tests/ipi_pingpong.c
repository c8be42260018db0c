// SPDX-License-Identifier: MIT
/*
 * IPI round trips CPU 0 -> CPU 1 -> CPU 0. CPU 0 sends VEC_PING with a ud2
 * call; CPU 1, spinning at ring 3, takes it in a five-instruction kernel
 * handler that answers VEC_PONG; CPU 0's PONG handler counts it and CPU 0's
 * ring-3 loop sees the count move. With one CPU the IPIs go to itself.
 * hop=K (a VM over hosts): both CPUs keep moving to the next host, CPU 1
 * after every K pings it answered, CPU 0 every K rounds, so IPIs chase
 * vCPUs that are on their way; a lost one fails the round.
 * scribble=ADDR scribble_len=LEN: first CPU 0 writes int3 bytes over
 * [ADDR, ADDR + LEN) from ring 0 (a VM over hosts: the VMM's trap, where
 * the parked copy of CPU 1 on CPU 0's host takes the pings).
 */
#include "test.h"

#define WARMUP 16

static volatile uint64_t done;
static uint64_t use_hlt, hop, jumps[2];
static uint32_t hosts;

/* On to the next host, if hop= asks for it. */
static void hop_on(unsigned i)
{
	uint32_t w = uinl(PORT_JUMP);

	uoutl(PORT_JUMP, ((w & 0xff) + 1) % hosts);
	__atomic_add_fetch(&jumps[i], 1, __ATOMIC_RELAXED);
}

static int ipi_pingpong(struct tctx *t)
{
	uint64_t rounds = targ("rounds", 1000), *v;
	unsigned partner = t->ncpus > 1 ? 1 : 0;

	use_hlt = targ("hlt", 0);
	hop = targ("hop", 0);
	if (hop) {
		uint32_t w = uinl(PORT_JUMP);
		if (w == 0xffffffff || !(w & 0x10000) || ((w >> 8) & 0xff) < 2)
			return tfail(t, "hop= needs a VM over 2+ hosts");
		hosts = (w >> 8) & 0xff;
	}
	if (t->cpu != 0) {
		/* The partner waits with IF=1: spinning at ring 3, or with
		 * hlt=1 halted in the kernel (SYS_WAIT), like an idle CPU. */
		uint64_t seen = 0;
		if (t->cpu == partner)
			while (!__atomic_load_n(&done, __ATOMIC_ACQUIRE)) {
				if (hop && ipi_pings >= seen + hop) {
					seen = ipi_pings;
					hop_on(1);
				}
				if (use_hlt)
					usys(SYS_WAIT, (long)&done, 0, 0);
				else
					cpu_relax();
			}
		return 0;
	}
	if (!rounds)
		return tfail(t, "rounds must be > 0");
	v = ram_alloc(rounds * sizeof(*v));
	if (!v)
		return tfail(t, "no RAM for %lu samples", rounds);
	ipi_reply_apic = shared.cpu_apic[0];
	uint64_t at = targ("scribble", 0);
	if (at) {
		uint64_t len = targ("scribble_len", 4096);
		long kept = usys(SYS_FILL, (long)at, (long)len,
				 (long)0xccccccccccccccccULL);
		tprintf("ipi-pingpong: scribbled %lu bytes at 0x%lx, %ld "
			"words kept\n",
			len, at, kept);
	}
	for (uint64_t r = 0; r < rounds + WARMUP; r++) {
		uint64_t want = ipi_pongs + 1, deadline = deadline_in_ms(5000);
		uint64_t t0 = rdtsc_ordered();

		if (hop && r % hop == hop / 2)
			hop_on(0);
		usys(SYS_IPI, shared.cpu_apic[partner], VEC_PING, 0);
		while (__atomic_load_n(&ipi_pongs, __ATOMIC_ACQUIRE) != want) {
			if (use_hlt)
				usys(SYS_WAIT, (long)&ipi_pongs, want - 1, 0);
			else
				cpu_relax();
			if (past(deadline)) {
				__atomic_store_n(&done, 1, __ATOMIC_RELEASE);
				usys(SYS_IPI, shared.cpu_apic[partner],
				     VEC_PONG, 0);
				return tfail(t,
					     "round %lu: no pong (pings %lu)",
					     r, ipi_pings);
			}
		}
		if (r >= WARMUP)
			v[r - WARMUP] = rdtsc_ordered() - t0;
	}
	__atomic_store_n(&done, 1, __ATOMIC_RELEASE);
	/* Wake a halted partner so it sees `done` (its PONG is not counted
	 * any more: ipi_pongs is no longer read). */
	if (partner)
		usys(SYS_IPI, shared.cpu_apic[partner], VEC_PONG, 0);
	tprintf("ipi-pingpong: cpu0 <-> cpu%u (apic %u), %lu rounds, "
		"waiting by %s, jumps %lu+%lu\n",
		partner, shared.cpu_apic[partner], rounds,
		use_hlt ? "hlt" : "spinning", jumps[0],
		__atomic_load_n(&jumps[1], __ATOMIC_RELAXED));
	stats_report("ipi-pingpong", v, rounds);
	if (ipi_pings != rounds + WARMUP)
		return tfail(t, "pings %lu != %lu", ipi_pings, rounds + WARMUP);
	return 0;
}

TESTOS_TEST("ipi-pingpong", ipi_pingpong,
	    "rounds= hlt= hop= scribble= scribble_len= IPI round trips "
	    "cpu0<->cpu1, p50/p99");
