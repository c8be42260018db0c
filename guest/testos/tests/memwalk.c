// SPDX-License-Identifier: MIT
/*
 * Writes an address-derived pattern over `mib` MiB of free RAM (from the
 * e820 map), split between the CPUs, then each CPU verifies the slice
 * another CPU wrote, so cross-CPU visibility is checked too.
 */
#include "test.h"

#define MAX_RANGES 32
#define MIB	   (1UL << 20)

static struct ram_range ranges[MAX_RANGES];
static size_t nranges;
static uint64_t total, seed;
static volatile uint64_t bad, first_bad = ~0ULL;
static volatile uint64_t write_cycles, verify_cycles;

static inline uint64_t pattern(uint64_t addr)
{
	return (addr * 0x9e3779b97f4a7c15ULL) ^ seed;
}

/* Calls fn on the pieces of [off, off+len) of the concatenated ranges. */
static void walk(uint64_t off, uint64_t len,
		 void (*fn)(volatile uint64_t *p, uint64_t n))
{
	for (size_t i = 0; i < nranges && len; i++) {
		uint64_t sz = ranges[i].end - ranges[i].start, n;

		if (off >= sz) {
			off -= sz;
			continue;
		}
		n = sz - off < len ? sz - off : len;
		fn((volatile uint64_t *)(ranges[i].start + off), n / 8);
		len -= n;
		off = 0;
	}
}

static void fill(volatile uint64_t *p, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		p[i] = pattern((uint64_t)&p[i]);
}

static void check(volatile uint64_t *p, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		if (p[i] != pattern((uint64_t)&p[i])) {
			atomic_add(&bad, 1);
			for (uint64_t f = first_bad; (uint64_t)&p[i] < f;)
				if (__atomic_compare_exchange_n(
					&first_bad, &f, (uint64_t)&p[i], 0,
					__ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
					break;
		}
	}
}

static void slice(struct tctx *t, unsigned who, uint64_t *off, uint64_t *len)
{
	uint64_t per = total / t->ncpus / 4096 * 4096;

	*off = per * who;
	*len = who == t->ncpus - 1 ? total - *off : per;
}

static void note_max(volatile uint64_t *m, uint64_t v)
{
	for (uint64_t cur = *m; v > cur;)
		if (__atomic_compare_exchange_n(m, &cur, v, 0, __ATOMIC_SEQ_CST,
						__ATOMIC_SEQ_CST))
			break;
}

static uint64_t mib_per_s(uint64_t bytes, uint64_t cycles)
{
	uint64_t ns = cycles_to_ns(cycles);

	return ns ? bytes / MIB * 1000000000ULL / ns : 0;
}

static int memwalk(struct tctx *t)
{
	uint64_t off, len, t0;

	if (t->cpu == 0) {
		uint64_t want = targ("mib", 64) * MIB, have = 0;

		nranges = ram_ranges(ranges, MAX_RANGES);
		for (size_t i = 0; i < nranges; i++) {
			uint64_t sz = ranges[i].end - ranges[i].start;

			if (have + sz > want) {
				ranges[i].end = ranges[i].start + want - have;
				sz = want - have;
			}
			have += sz;
			if (have == want) {
				nranges = i + 1;
				break;
			}
		}
		total = have;
		seed = rdtsc();
		if (have < want)
			tfail(t, "only %lu MiB of free RAM, %lu asked",
			      have / MIB, want / MIB);
	}
	tbarrier(t);
	if (total < targ("mib", 64) * MIB)
		return 1;
	slice(t, t->cpu, &off, &len);
	t0 = rdtsc_ordered();
	walk(off, len, fill);
	note_max(&write_cycles, rdtsc_ordered() - t0);
	tbarrier(t);
	slice(t, (t->cpu + 1) % t->ncpus, &off, &len);
	t0 = rdtsc_ordered();
	walk(off, len, check);
	note_max(&verify_cycles, rdtsc_ordered() - t0);
	tbarrier(t);
	if (t->cpu != 0)
		return 0;
	tprintf("memwalk: %lu MiB in %zu range(s) from %lx, %u cpus: "
		"write %lu MiB/s, verify %lu MiB/s, %lu bad words\n",
		total / MIB, nranges, ranges[0].start, t->ncpus,
		mib_per_s(total, write_cycles), mib_per_s(total, verify_cycles),
		bad);
	if (bad)
		return tfail(t, "%lu bad words, first at %lx", bad, first_bad);
	return 0;
}

TESTOS_TEST("memwalk", memwalk,
	    "mib= MiB of free RAM written and verified across CPUs");
