// SPDX-License-Identifier: MIT
/*
 * locality: a partitioned workload for the balancer (bench/locality).
 * Each CPU owns a working set of `mib` MiB and scans it `passes` times,
 * summing every word; nobody else touches it once it is written. CPU i's
 * set is homed on host (h_i + away) mod hosts, h_i being the host CPU i
 * starts on (read from the jump port), so with away=1 (the default) every
 * CPU computes on data that lives on another host, and with away=0 on data
 * of its own host (the all-local baseline, same VM, same sizes).
 *
 * Where the sets go. With `--mem-map contiguous` the DSM makes host h home
 * to RAM pages [h * per, (h + 1) * per), per = ceil(RAM pages / hosts),
 * counted over RAM (below lowmem, then from 4 GiB: vmm/dsm.c
 * dsm__home); the test recomputes that from the e820 map and takes each
 * set from its home's range (ram_alloc_in). With interleaved homes the
 * sets would be spread over every host: the test needs contiguous ones.
 *
 * Who writes them. Each set is filled by a CPU that starts on its home
 * host (if there is one), before the timed part: the data is then in its
 * home's memory, as a partitioned data set would be, and not already
 * cached where its reader runs.
 *
 * Reads, not writes. The scans only read. That is the case where pulling
 * the data is least costly for the DSM (a read fault fetches a copy; an
 * evicted copy is dropped with a header-only DSM_EVICT; a write scan would
 * add a 4 KiB write-back per evicted page and take every page over in M),
 * so the speedup a jump shows here is not inflated by write-backs, and it
 * is the shape of the workloads the policy is for (a vCPU that keeps
 * reading a data set homed elsewhere). (What the DSM sees is another
 * matter: ring 3 runs with interrupts on, so KVM takes these faults as
 * asynchronous page faults, whose worker faults with FOLL_WRITE: the
 * reads arrive as write faults and the evicted pages are written back.)
 *
 * Sizes. A page read once stays cached, so with the whole set fitting in
 * a host's cache the DSM-only run would fault only in its first pass and
 * there would be nothing for a jump to save. Run it with `--host-mem`
 * below `mib` (bench/locality: mib=4 per CPU, --host-mem 2M): a
 * sequential scan of more pages than the budget holds misses on every page
 * of every pass (the DSM's clock evicts in address order, a FIFO that a
 * cyclic scan always defeats), so a CPU whose set is remote pulls it
 * again each pass, one remote fault per page, for as long as it stays
 * where it started. The budget counts every page a host maps, its own
 * home pages included, so the local runs (away=0, or after a jump) fault
 * on every page too, but each is a local fault (the home's own queue, no
 * network): what a jump saves is the network round trip per page.
 *
 * Prints, per CPU: `locality: cpu=C start=H home=H' ms=.. first_ms=..
 * pass_ms_max=.. hosts=H,H,.. sum=0x..` (hosts: where it ran after each
 * pass), then CPU 0: `locality: cpus=N hosts=H away=A mib=M passes=P
 * max_ms=.. checksum=0x.. expected=0x..`; it passes iff every pass of
 * every CPU summed to the value its contents were computed from.
 */
#include "lib.h"
#include "test.h"

#define MIB	   (1UL << 20)
#define PAGE	   4096UL
#define MEM_4G	   (1ULL << 32)
#define MAPPED_TOP 0xc0000000ULL
#define MAX_PASSES 64

static uint64_t *set[MAX_CPUS];
static unsigned start_host[MAX_CPUS], home[MAX_CPUS];
static uint64_t sums[MAX_CPUS];
static volatile uint64_t max_cycles;
static uint64_t words, nhosts;
static volatile int setup_ok;

static inline uint64_t mix(uint64_t h)
{
	h *= 0x100000001b3ULL;
	return h ^ (h >> 31);
}

/* Word k of CPU c's set. */
static inline uint64_t value(unsigned c, uint64_t k)
{
	return mix((uint64_t)c << 40 ^ (k + 1));
}

static void note_max(volatile uint64_t *m, uint64_t v)
{
	for (uint64_t cur = *m; v > cur;)
		if (__atomic_compare_exchange_n(m, &cur, v, 0, __ATOMIC_SEQ_CST,
						__ATOMIC_SEQ_CST))
			break;
}

/* Host h's contiguous home range, as guest-physical addresses below the
 * mapped top (vmm/dsm.c dsm__home, contiguous). */
static void home_range(unsigned h, uint64_t *lo, uint64_t *hi)
{
	uint64_t lowmem = 0, high = 0;

	for (uint32_t i = 0; i < shared.e820_count; i++) {
		const struct e820_entry *e = &shared.e820[i];

		if (e->type != E820_RAM)
			continue;
		if (e->addr >= MEM_4G)
			high += e->size;
		else if (e->addr + e->size > lowmem)
			lowmem = e->addr + e->size;
	}
	uint64_t pages = (lowmem + high) / PAGE;
	uint64_t per = (pages + nhosts - 1) / nhosts;

	*lo = h * per * PAGE;
	*hi = (h + 1) * per * PAGE;
	if (*hi > lowmem)
		*hi = lowmem;
	if (*hi > MAPPED_TOP)
		*hi = MAPPED_TOP;
	if (*lo > *hi)
		*lo = *hi;
}

static unsigned where(void)
{
	uint32_t w = uinl(PORT_JUMP);

	return w == 0xffffffff || !(w & 0x10000) ? 0 : w & 0xff;
}

/* CPU 0: every set from its home's range, in address order. */
static int place(struct tctx *t, uint64_t bytes, uint64_t away)
{
	for (unsigned c = 0; c < t->ncpus; c++)
		home[c] = (start_host[c] + away) % nhosts;
	for (unsigned h = 0; h < nhosts; h++) {
		uint64_t lo, hi;

		home_range(h, &lo, &hi);
		for (unsigned c = 0; c < t->ncpus; c++) {
			if (home[c] != h)
				continue;
			set[c] = ram_alloc_in(lo, hi, bytes);
			if (!set[c])
				return tfail(t,
					     "no %lu MiB free in host %u's "
					     "range 0x%lx-0x%lx for cpu %u",
					     bytes / MIB, h, lo, hi, c);
		}
	}
	return 0;
}

static uint64_t scan(const volatile uint64_t *p, uint64_t n)
{
	uint64_t s = 0;

	for (uint64_t i = 0; i < n; i++)
		s += p[i];
	return s;
}

static int locality(struct tctx *t)
{
	uint64_t mib = targ("mib", 4), passes = targ("passes", 6);
	uint64_t away = targ("away", 1);
	uint32_t w = uinl(PORT_JUMP);
	unsigned ran[MAX_PASSES];
	uint64_t first = 0, pass_max = 0, t0, dt, want = 0;
	int bad = 0;

	nhosts = w == 0xffffffff || !(w & 0x10000) ? 1 : (w >> 8) & 0xff;
	start_host[t->cpu] = where();
	tbarrier(t);
	if (t->cpu == 0) {
		words = mib * MIB / 8;
		if (!mib || !passes || passes > MAX_PASSES)
			tfail(t, "mib must be > 0, passes 1-%d", MAX_PASSES);
		else if (!place(t, mib * MIB, away))
			setup_ok = 1;
		tprintf("locality: cpus=%u hosts=%lu away=%lu mib=%lu "
			"passes=%lu\n",
			t->ncpus, nhosts, away, mib, passes);
	}
	tbarrier(t);
	if (!setup_ok)
		return 1;

	/* Fill the sets homed where this CPU is (the first CPU there), or
	 * its own if no CPU starts on its home. */
	for (unsigned c = 0; c < t->ncpus; c++) {
		unsigned filler = c;

		for (unsigned k = 0; k < t->ncpus; k++)
			if (start_host[k] == home[c]) {
				filler = k;
				break;
			}
		if (filler != t->cpu)
			continue;
		for (uint64_t i = 0; i < words; i++)
			set[c][i] = value(c, i);
	}
	for (uint64_t i = 0; i < words; i++)
		want += value(t->cpu, i);
	tbarrier(t);

	t0 = rdtsc_ordered();
	for (uint64_t p = 0; p < passes; p++) {
		uint64_t p0 = rdtsc_ordered(), s = scan(set[t->cpu], words);
		uint64_t pd = rdtsc_ordered() - p0;

		if (s != want)
			bad++;
		sums[t->cpu] = s;
		if (!p)
			first = pd;
		else if (pd > pass_max)
			pass_max = pd;
		ran[p] = where();
	}
	dt = rdtsc_ordered() - t0;
	note_max(&max_cycles, dt);

	char hosts[3 * MAX_PASSES + 1];
	size_t n = 0;
	for (uint64_t p = 0; p < passes; p++)
		n += snprintf(hosts + n, sizeof(hosts) - n, "%s%u",
			      p ? "," : "", ran[p]);
	tprintf("locality: cpu=%u start=%u home=%u ms=%lu first_ms=%lu "
		"pass_ms_max=%lu hosts=%s sum=0x%016lx%s\n",
		t->cpu, start_host[t->cpu], home[t->cpu],
		cycles_to_ns(dt) / 1000000, cycles_to_ns(first) / 1000000,
		cycles_to_ns(pass_max) / 1000000, hosts, sums[t->cpu],
		bad ? " BAD" : "");
	if (bad)
		tfail(t, "cpu %u: %d of %lu passes summed wrong", t->cpu, bad,
		      passes);
	tbarrier(t);
	if (t->cpu != 0)
		return 0;
	/* A function of (cpus, mib) only: the sums of every set. */
	uint64_t got = 0xcbf29ce484222325ULL, exp = got;
	for (unsigned c = 0; c < t->ncpus; c++) {
		uint64_t e = 0;
		for (uint64_t i = 0; i < words; i++)
			e += value(c, i);
		got = mix(got ^ sums[c]);
		exp = mix(exp ^ e);
	}
	tprintf("locality: cpus=%u hosts=%lu away=%lu mib=%lu passes=%lu "
		"max_ms=%lu checksum=0x%016lx expected=0x%016lx\n",
		t->ncpus, nhosts, away, mib, passes,
		cycles_to_ns(max_cycles) / 1000000, got, exp);
	if (got != exp)
		return tfail(t, "checksum 0x%lx != 0x%lx", got, exp);
	return 0;
}

TESTOS_TEST("locality", locality,
	    "mib= passes= away=: each CPU scans a set homed on another host");
