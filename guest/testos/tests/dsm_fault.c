// SPDX-License-Identifier: MIT
/*
 * The cost of a guest page fault, one page at a time, timed at ring 3 with
 * the TSC (bench/dsm-fault drives it; docs/performance.md has the figures).
 *
 * mode=remote (the default with 2+ CPUs), meant for 2 hosts, vCPU k on
 * host k, contiguous homes: [base, base + 3 sets) is homed on CPU 1's host.
 *  1. CPU 1 writes every word of every page of the three sets (an
 *     address-derived pattern, never all zero), so each page is held in M
 *     by its home host and a transfer carries a real 4 KiB payload.
 *  2. CPU 1 is done (it parks); CPU 0, on the other host, waited halted
 *     for it and now, alone:
 *     - local:   writes one word of each of `n` fresh pages of low free RAM
 *                (homed on its own host): a first write served locally;
 *     - local-read: reads one word of each of `n` more fresh pages;
 *     - read:    reads one word of each page of the first set (a remote
 *                read fault: READ_REQ, the home forwards to itself, DATA;
 *                but see docs/performance.md: KVM may report it to
 *                userfaultfd as a write);
 *     - write:   writes one word of each page of the second set (a remote
 *                write fault: the page leaves its home in M);
 *     - seqread: reads every word of the third set, page after page: the
 *                throughput of sequential remote reads, in MiB/s.
 *     Every value read is checked against the pattern.
 * mode=local (the default with 1 CPU; CPU 0 only): `local` and
 * `local-read` alone. On one host `local` is the fault engine placing a
 * zeroed 4 KiB page with UFFDIO_COPY: the floor of any fault served
 * through userfaultfd.
 *
 * share=1 (remote): then CPU 1 reads the first set again, and CPU 0 reads
 * it once more, timed (`reread`): with read sharing both hosts keep their
 * copies (S) and these reads hit; if reads take pages over (M), each one
 * faults again.
 *
 * hold=MS: afterwards CPU 0 prints `dsm-fault: hold` and waits (halted, a
 * 2 ms timer tick) until a byte arrives on COM1 or MS pass, so that the
 * bench can time TCP between the hosts' namespaces while the VM still
 * exists but is idle.
 */
#include "lib.h"
#include "test.h"

#define PAGE	   4096ULL
#define MAX_RANGES 32
#define WARM	   32 /* untimed pages before each timed set */
#define LSR	   5
#define LSR_DR	   0x01
#define SEED	   0x5105d5f0a17c0de5ULL

#define FILL_MS 120000 /* CPU 1 filling the sets: seconds at most */

static volatile uint32_t ready;
static volatile uint64_t filled; /* CPU 1 wrote the sets */
static volatile uint64_t phase;	 /* share=1: 1 CPU 1 may re-read, 2 done */
static uint64_t base, npages, set_pages, share_bad;
static int remote, share;

static inline uint64_t pattern(uint64_t addr)
{
	return (addr * 0x9e3779b97f4a7c15ULL) ^ SEED;
}

static inline uint64_t set_start(unsigned set)
{
	return base + set * set_pages * PAGE;
}

/* Is [lo, hi) inside one range of free RAM? */
static int in_free_ram(uint64_t lo, uint64_t hi)
{
	struct ram_range r[MAX_RANGES];
	size_t n = ram_ranges(r, MAX_RANGES);

	for (size_t i = 0; i < n; i++)
		if (lo >= r[i].start && hi <= r[i].end)
			return 1;
	return 0;
}

/* Default base: the middle of RAM below 3 GiB (e820), page-aligned. With
 * 2 hosts and contiguous homes that is where the second host's range
 * starts. */
static uint64_t default_base(void)
{
	uint64_t top = 0;

	for (uint32_t i = 0; i < shared.e820_count; i++) {
		const struct e820_entry *e = &shared.e820[i];
		uint64_t end = e->addr + e->size;

		if (e->type == E820_RAM && end <= 0xc0000000ULL && end > top)
			top = end;
	}
	return top / 2 & ~(PAGE - 1);
}

/* CPU 1: the home host's vCPU writes every page of the three sets. */
static void fill_sets(void)
{
	uint64_t lo = set_start(0), hi = set_start(3);

	for (uint64_t a = lo; a < hi; a += 8)
		*(volatile uint64_t *)a = pattern(a);
}

/* `dsm-fault: KIND n=.. p50_ns=.. p99_ns=.. min_ns=.. p90_ns=.. max_ns=..
 * mean_ns=..` (bench/dsm-fault parses it). Sorts v. */
static void report(const char *kind, uint64_t *v, uint64_t n)
{
	uint64_t sum = 0;

	for (uint64_t i = 0; i < n; i++)
		sum += v[i];
	stats_sort(v, n);
	tprintf("dsm-fault: %s n=%lu p50_ns=%lu p99_ns=%lu min_ns=%lu "
		"p90_ns=%lu max_ns=%lu mean_ns=%lu\n",
		kind, n, cycles_to_ns(stats_pct(v, n, 50)),
		cycles_to_ns(stats_pct(v, n, 99)), cycles_to_ns(v[0]),
		cycles_to_ns(stats_pct(v, n, 90)), cycles_to_ns(v[n - 1]),
		cycles_to_ns(sum / n));
}

/* One timed write of one word per page of [lo, lo + (WARM + n) pages);
 * the first WARM untimed. */
static void time_writes(uint64_t lo, uint64_t n, uint64_t *v)
{
	for (uint64_t i = 0; i < WARM + n; i++) {
		volatile uint64_t *p = (volatile uint64_t *)(lo + i * PAGE);
		uint64_t t0 = rdtsc_ordered();

		*p = pattern((uint64_t)p) + 1;
		__asm__ volatile("mfence" ::: "memory");
		uint64_t t1 = rdtsc_ordered();
		if (i >= WARM)
			v[i - WARM] = t1 - t0;
	}
}

/* Timed reads of one word per page; returns the number of bad words. The
 * word read moves through the pages so that the whole page must be
 * there, not just its first line. fresh: never written, so all zero. */
static uint64_t time_reads(uint64_t lo, uint64_t n, uint64_t *v, int fresh)
{
	uint64_t bad = 0;

	for (uint64_t i = 0; i < WARM + n; i++) {
		volatile uint64_t *p =
		    (volatile uint64_t *)(lo + i * PAGE + (i * 8 % PAGE));
		uint64_t t0 = rdtsc_ordered(), x = *p;
		uint64_t t1 = rdtsc_ordered();

		if (i >= WARM)
			v[i - WARM] = t1 - t0;
		bad += x != (fresh ? 0 : pattern((uint64_t)p));
	}
	return bad;
}

/* After the timed writes: the word written stuck, and the rest of each
 * page came along with it (patterned: CPU 1's pattern; else zero). */
static uint64_t check_written(uint64_t lo, uint64_t n, int patterned)
{
	uint64_t bad = 0;

	for (uint64_t i = 0; i < WARM + n; i++) {
		volatile uint64_t *p = (volatile uint64_t *)(lo + i * PAGE);

		bad += p[0] != pattern((uint64_t)p) + 1;
		bad += p[511] != (patterned ? pattern((uint64_t)&p[511]) : 0);
	}
	return bad;
}

/* Every word of every page, in order, after WARM untimed pages: the time
 * in *cycles; returns the number of bad words. */
static uint64_t seq_read(uint64_t lo, uint64_t n, uint64_t *cycles)
{
	uint64_t bad = 0, t0;

	/* Warm-up pages, then the timed run. */
	for (uint64_t a = lo; a < lo + WARM * PAGE; a += 8)
		bad += *(volatile uint64_t *)a != pattern(a);
	lo += WARM * PAGE;
	t0 = rdtsc_ordered();
	for (uint64_t a = lo; a < lo + n * PAGE; a += 8)
		bad += *(volatile uint64_t *)a != pattern(a);
	*cycles = rdtsc_ordered() - t0;
	return bad;
}

/* Halted until *p == want (2 ms ticks); 1 after FILL_MS. */
static int wait_for(volatile uint64_t *p, uint64_t want)
{
	uint64_t dl = deadline_in_ms(FILL_MS), v;

	while ((v = __atomic_load_n(p, __ATOMIC_ACQUIRE)) != want) {
		if (past(dl))
			return 1;
		usys(SYS_WAIT, (long)p, (long)v, 0);
	}
	return 0;
}

static void hold(uint64_t ms)
{
	uint64_t deadline = deadline_in_ms(ms), t0 = rdtsc(), zero = 0;
	int got = 0;

	tprintf("dsm-fault: hold (send a byte on COM1 to go on)\n");
	while (!past(deadline)) {
		if (uinb(PORT_COM1 + LSR) & LSR_DR) {
			(void)uinb(PORT_COM1);
			got = 1;
			break;
		}
		usys(SYS_WAIT, (long)&zero, 0, 0); /* up to 2 ms, halted */
	}
	tprintf("dsm-fault: hold ended after %lu ms (%s)\n",
		cycles_to_ns(rdtsc() - t0) / 1000000, got ? "byte" : "timeout");
}

static int setup(struct tctx *t)
{
	size_t len;
	const char *m = targ_str("mode", &len);

	remote = t->ncpus >= 2;
	if (m && len == 6 && !strncmp(m, "remote", 6))
		remote = 1;
	else if (m && len == 5 && !strncmp(m, "local", 5))
		remote = 0;
	else if (m)
		return tfail(t, "mode= must be remote or local");
	if (remote && t->ncpus < 2)
		return tfail(t, "mode=remote needs >= 2 cpus");
	share = targ("share", 0) != 0;
	npages = targ("n", 2000);
	if (!npages || npages > 1000000)
		return tfail(t, "n must be 1..1000000");
	set_pages = WARM + npages;
	base = targ("base", default_base());
	if (base % PAGE)
		return tfail(t, "base=%lx is not page-aligned", base);
	if (remote && !in_free_ram(set_start(0), set_start(3)))
		return tfail(t, "base=%lx + 3 x %lu pages is not free RAM",
			     base, set_pages);
	return 0;
}

static int dsm_fault(struct tctx *t)
{
	uint64_t *v, lo, bad = 0, cycles, hold_ms = targ("hold", 0);

	if (t->cpu == 0 && !setup(t))
		ready = 1;
	tbarrier(t);
	if (!ready)
		return 1;
	if (t->cpu == 1 && remote) {
		fill_sets();
		__atomic_store_n(&filled, 1, __ATOMIC_RELEASE);
		if (!share)
			return 0;
		/* share=1: read set 1 again once CPU 0 has read it. */
		if (wait_for(&phase, 1))
			return tfail(t, "cpu 0 never finished its reads");
		for (uint64_t i = 0; i < set_pages; i++) {
			volatile uint64_t *p =
			    (volatile uint64_t *)(set_start(0) + i * PAGE);
			share_bad += *p != pattern((uint64_t)p);
		}
		__atomic_store_n(&phase, 2, __ATOMIC_RELEASE);
		return 0;
	}
	if (t->cpu != 0)
		return 0;
	/* Halted meanwhile (2 ms ticks), not spinning: CPU 1 and its host's
	 * fault handling get the host CPUs. */
	if (remote && wait_for(&filled, 1))
		return tfail(t, "cpu 1 did not fill the sets in %d s",
			     FILL_MS / 1000);

	/* Samples, then the local set right after them, both low in free
	 * RAM (on CPU 0's home host) and written here first. */
	v = ram_alloc(npages * sizeof(*v));
	lo = v ? (uint64_t)ram_alloc(2 * set_pages * PAGE) : 0;
	if (!lo || (remote && lo + 2 * set_pages * PAGE > base))
		return tfail(t,
			     "no room below base=%lx for the samples and "
			     "%lu local pages",
			     base, set_pages);
	for (uint64_t i = 0; i < npages; i++)
		v[i] = 0;
	tprintf("dsm-fault: mode=%s cpus=%u n=%lu local=%lx set=%lx-%lx "
		"tsc_khz=%lu\n",
		remote ? "remote" : "local", t->ncpus, npages, lo,
		remote ? set_start(0) : 0, remote ? set_start(3) : 0,
		tsc_khz());

	time_writes(lo, npages, v);
	bad += check_written(lo, npages, 0);
	report("local", v, npages);
	bad += time_reads(lo + set_pages * PAGE, npages, v, 1);
	report("local-read", v, npages);
	if (remote) {
		bad += time_reads(set_start(0), npages, v, 0);
		report("read", v, npages);
		time_writes(set_start(1), npages, v);
		bad += check_written(set_start(1), npages, 1);
		report("write", v, npages);
		bad += seq_read(set_start(2), npages, &cycles);
		uint64_t ns = cycles_to_ns(cycles);
		/* MiB/s with 3 decimals: bytes/s * 1000 / 2^20. */
		uint64_t mibk =
		    ns ? npages * PAGE * 1000000000ULL / ns * 1000 / 1048576
		       : 0;
		tprintf("dsm-fault: seqread n=%lu ns=%lu ns_per_page=%lu "
			"MiB_s=%lu.%03lu\n",
			npages, ns, ns / npages, mibk / 1000, mibk % 1000);
	}
	if (remote && share) {
		/* Both hosts have now read set 1: with read sharing each holds
		 * it in S and these reads all hit. */
		__atomic_store_n(&phase, 1, __ATOMIC_RELEASE);
		if (wait_for(&phase, 2))
			return tfail(t, "cpu 1 did not re-read set 1");
		bad += time_reads(set_start(0), npages, v, 0) + share_bad;
		report("reread", v, npages);
	}
	if (hold_ms)
		hold(hold_ms);
	if (bad)
		return tfail(t, "%lu words read back wrong", bad);
	return 0;
}

TESTOS_TEST("dsm-fault", dsm_fault,
	    "mode=remote|local n= base= hold= page fault latency (DSM)");
