// SPDX-License-Identifier: MIT
/*
 * A long, deterministic computation for snapshot/restore tests: `rounds`
 * rounds in which every CPU runs a serial xorshift-multiply chain `passes`
 * times over a `mib` MiB region, reading each word and writing the chain
 * value back, so the result depends on every byte of guest memory, on
 * every CPU's registers mid-loop and on cross-CPU ordering. A restored VM
 * must print the same `checksum: result` as an uninterrupted run.
 *
 * Determinism: region k belongs to nobody in particular; in round r CPU c
 * mixes region (c + r) % ncpus, seeded from the digest region k+1 ended
 * the previous round with. A barrier separates rounds and each round
 * writes its own digest slot, so no outcome depends on timing: the
 * result is a function of (rounds, passes, mib, ncpus) only. Contents
 * start from the word index, not the address, so the image's size (where
 * free RAM starts) does not change it either.
 */
#include "test.h"

#define MIB (1UL << 20)
/* A barrier wait this long (vCPU running time, see cbarrier) fails. */
#define CBARRIER_TIMEOUT_MS 120000
/* A gap this long between two polls means the VM was not running. */
#define PAUSE_GAP_MS 500

static uint64_t *base; /* ncpus regions of `words` words each */
static uint64_t words; /* per region */
static uint64_t digest[2][MAX_CPUS];
static volatile uint32_t bar_count, bar_sense;
static volatile uint64_t max_init_cycles;

/*
 * tbarrier()'s timeout is a TSC deadline, and a VM restored long after
 * its snapshot may see its TSC jump (that is the VMM's choice), so a CPU
 * caught waiting in a barrier by the snapshot would fail at once. This
 * one counts only the time between close polls: a long gap is a paused
 * VM (or a descheduled vCPU), not a lost CPU.
 */
static int cbarrier(struct tctx *t)
{
	uint32_t sense = !bar_sense;
	uint64_t khz = tsc_khz() ? tsc_khz() : 4000000, waited = 0, last;

	if (__atomic_add_fetch(&bar_count, 1, __ATOMIC_ACQ_REL) == t->ncpus) {
		bar_count = 0;
		__atomic_store_n(&bar_sense, sense, __ATOMIC_RELEASE);
		return 0;
	}
	last = rdtsc();
	while (__atomic_load_n(&bar_sense, __ATOMIC_ACQUIRE) != sense) {
		uint64_t now, gap;

		cpu_relax();
		now = rdtsc();
		gap = now - last;
		last = now;
		if (gap < PAUSE_GAP_MS * khz)
			waited += gap;
		if (waited > CBARRIER_TIMEOUT_MS * khz)
			return tfail(t, "barrier timeout on cpu %u", t->cpu);
	}
	return 0;
}

static inline uint64_t mix(uint64_t h)
{
	h *= 0x100000001b3ULL; /* FNV-1a's 64-bit prime */
	return h ^ (h >> 31);
}

/* The chain is serial on purpose: the value written to word i depends on
 * every word before it, so an interrupted pass must resume exactly. */
static uint64_t mix_region(uint64_t *p, uint64_t n, uint64_t h)
{
	for (uint64_t i = 0; i < n; i++) {
		h = mix(h ^ p[i]);
		p[i] = h;
	}
	return h;
}

static void note_max(volatile uint64_t *m, uint64_t v)
{
	for (uint64_t cur = *m; v > cur;)
		if (__atomic_compare_exchange_n(m, &cur, v, 0, __ATOMIC_SEQ_CST,
						__ATOMIC_SEQ_CST))
			break;
}

static int checksum(struct tctx *t)
{
	uint64_t rounds = targ("rounds", 20), passes = targ("passes", 12);
	uint64_t mib = targ("mib", 16), t0, t1, result;
	unsigned n = t->ncpus;

	if (t->cpu == 0) {
		if (!rounds || !passes || !mib)
			tfail(t, "rounds, passes and mib must be > 0");
		else if (!(base = ram_alloc(mib * MIB * n)))
			tfail(t, "no %lu MiB of contiguous free RAM",
			      mib * MIB * n / MIB);
		words = mib * MIB / 8;
		tprintf("checksum: cpus=%u mib=%lu (per cpu) rounds=%lu "
			"passes=%lu\n",
			n, mib, rounds, passes);
	}
	if (cbarrier(t) || !base)
		return 1;

	/* First touch of every page: a VMM fault each, so time it apart. */
	t0 = rdtsc_ordered();
	for (uint64_t i = 0, *p = base + t->cpu * words; i < words; i++)
		p[i] = mix(t->cpu * words + i + 1);
	digest[1][t->cpu] = mix(t->cpu + 1);
	note_max(&max_init_cycles, rdtsc_ordered() - t0);
	if (cbarrier(t))
		return 1;

	t1 = rdtsc_ordered();
	for (uint64_t r = 0; r < rounds; r++) {
		unsigned k = (t->cpu + r) % n;
		uint64_t h =
		    mix(digest[(r + 1) & 1][(k + 1) % n] ^ (r << 32) ^ k);

		for (uint64_t ps = 0; ps < passes; ps++)
			h = mix_region(base + k * words, words, h);
		digest[r & 1][k] = h;
		if (cbarrier(t))
			return 1;
		if (t->cpu == 0)
			tprintf("checksum: round %lu/%lu\n", r + 1, rounds);
	}
	if (t->cpu != 0)
		return 0;
	/* After the last barrier: every region's final digest, in order. */
	result = 0xcbf29ce484222325ULL; /* FNV-1a's offset basis */
	for (unsigned k = 0; k < n; k++)
		result = mix(result ^ digest[(rounds - 1) & 1][k]);
	tprintf("checksum: first touch %lu ms (slowest cpu), rounds %lu ms\n",
		cycles_to_ns(max_init_cycles) / 1000000,
		cycles_to_ns(rdtsc_ordered() - t1) / 1000000);
	tprintf("checksum: result 0x%016lx\n", result);
	return 0;
}

TESTOS_TEST("checksum", checksum,
	    "rounds= passes= mib= deterministic memory hash across CPUs");
