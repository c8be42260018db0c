// SPDX-License-Identifier: MIT
/*
 * Message passing, the litmus test a page-granular DSM must not break:
 * the writer of pair i stores data[i] = r, then flag[i] = r (release);
 * a reader that sees flag[i] == r (acquire) must then read data[i] == r.
 * Every word sits alone on its own page, and a pair's two pages lie far
 * apart in free RAM, so that across hosts they have different homes and
 * travel separately: a DSM that lets the flag's page overtake the data's
 * (or serves a stale copy of the data) shows here as a violation.
 *
 * Pair i belongs to CPU i % ncpus; every other CPU reads it. Rounds are
 * lockstep and no CPU may miss one: a reader waits for flag == r on every
 * pair it reads, then posts r in its own `done` word (on its own page), and
 * nobody writes round r + 1 before every done word says r. Those words are
 * single-writer, so a round costs no read-modify-write page migrations the
 * way a counter barrier (tbarrier) would.
 */
#include "test.h"

#define PAGE	   4096ULL
#define MAX_PAIRS  64
#define MAX_RANGES 32
#define MAX_PAGES  (2 * MAX_PAIRS + MAX_CPUS)
/* A flag page is this many pages (mod this) after its data page, plus
 * one: 60 = lcm(2..6), so with homes interleaved page by page over 2 to 6
 * hosts the two pages of a pair never share a home. */
#define INTERLEAVE_LCM 60
/* One wait (a flag, the done words) failing after this long means a lost
 * CPU, never a slow page: transfers take well under a second. */
#define WAIT_MS 120000

static struct ram_range ranges[MAX_RANGES];
static size_t nranges;
static uint64_t free_pages;
static uint64_t used[MAX_PAGES];
static size_t nused;

static volatile uint64_t *data[MAX_PAIRS], *flag[MAX_PAIRS];
static volatile uint64_t *done[MAX_CPUS];
static volatile uint32_t ready, stop;

static volatile uint64_t observed, violations, max_cycles;
static volatile uint32_t first_taken;
static uint64_t first_pair, first_round, first_flag, first_data, first_cpu;

/* Physical address of the idx-th page of free RAM (ranges concatenated). */
static uint64_t page_addr(uint64_t idx)
{
	for (size_t i = 0; i < nranges; i++) {
		uint64_t n = (ranges[i].end - ranges[i].start) / PAGE;

		if (idx < n)
			return ranges[i].start + idx * PAGE;
		idx -= n;
	}
	return 0;
}

static int is_used(uint64_t idx)
{
	for (size_t i = 0; i < nused; i++)
		if (used[i] == idx)
			return 1;
	return 0;
}

/* Takes the first unused page at or after idx (wrapping). */
static volatile uint64_t *take(uint64_t idx)
{
	idx %= free_pages;
	while (is_used(idx))
		idx = (idx + 1) % free_pages;
	used[nused++] = idx;
	return (volatile uint64_t *)page_addr(idx);
}

/* Near idx, a page whose page number is one more than near_pg's modulo
 * INTERLEAVE_LCM; where a range boundary allows none, just near idx. */
static volatile uint64_t *take_apart(uint64_t idx, uint64_t near_pg)
{
	uint64_t want = (near_pg + 1) % INTERLEAVE_LCM;

	for (uint64_t d = 1; d <= INTERLEAVE_LCM; d++) {
		uint64_t j = (idx + d) % free_pages;

		if (page_addr(j) / PAGE % INTERLEAVE_LCM == want && !is_used(j))
			return take(j);
	}
	return take(idx + 1);
}

/*
 * Data i at fraction i/K of free RAM, flag i half of free RAM further
 * (wrapping): with homes in contiguous per-host ranges over 2 or 3 hosts,
 * each pair then straddles a boundary. CPU c's done page is in the middle
 * of the c-th of n slices, at home on CPU c's host when vCPUs and RAM are
 * split over the hosts in the same order.
 */
static int layout(struct tctx *t, uint64_t k)
{
	unsigned n = t->ncpus;

	nranges = ram_ranges(ranges, MAX_RANGES);
	free_pages = 0;
	for (size_t i = 0; i < nranges; i++)
		free_pages += (ranges[i].end - ranges[i].start) / PAGE;
	/* Room for the pairs' spacing, so pages do not crowd together. */
	if (free_pages < (2 * k + n) * 2 * INTERLEAVE_LCM)
		return tfail(t, "only %lu free pages", free_pages);
	for (uint64_t i = 0; i < k; i++)
		data[i] = take(i * free_pages / k);
	for (uint64_t i = 0; i < k; i++)
		flag[i] = take_apart((i + k / 2) % k * free_pages / k,
				     (uint64_t)data[i] / PAGE);
	for (unsigned c = 0; c < n; c++)
		done[c] = take((2 * c + 1) * free_pages / (2 * n));
	for (uint64_t i = 0; i < k; i++) {
		*data[i] = 0;
		*flag[i] = 0;
		tprintf("mp-litmus: pair %lu data %lx flag %lx (writer cpu "
			"%lu)\n",
			i, (uint64_t)data[i], (uint64_t)flag[i], i % n);
	}
	for (unsigned c = 0; c < n; c++)
		*done[c] = 0;
	tprintf("mp-litmus: free RAM %lx-%lx (%lu pages), done pages "
		"%lx..%lx\n",
		ranges[0].start, ranges[nranges - 1].end, free_pages,
		(uint64_t)done[0], (uint64_t)done[n - 1]);
	return 0;
}

static void note_first(unsigned cpu, uint64_t pair, uint64_t r, uint64_t f,
		       uint64_t d)
{
	if (__atomic_exchange_n(&first_taken, 1, __ATOMIC_ACQ_REL))
		return;
	first_cpu = cpu;
	first_pair = pair;
	first_round = r;
	first_flag = f;
	first_data = d;
}

/* Spins until *p >= want and returns what it read there; 0 after a
 * timeout or when another CPU stopped the run. */
static uint64_t wait_ge(struct tctx *t, volatile uint64_t *p, uint64_t want,
			const char *what, uint64_t which)
{
	uint64_t deadline = deadline_in_ms(WAIT_MS), v;

	while ((v = __atomic_load_n(p, __ATOMIC_ACQUIRE)) < want) {
		cpu_relax();
		if (stop)
			return 0;
		if (past(deadline)) {
			stop = 1;
			tfail(t,
			      "cpu %u: timeout waiting for %s %lu to reach "
			      "round %lu",
			      t->cpu, what, which, want);
			return 0;
		}
	}
	return v;
}

static int run_rounds(struct tctx *t, uint64_t rounds, uint64_t k,
		      uint64_t *obs, uint64_t *viol)
{
	unsigned n = t->ncpus, me = t->cpu;

	for (uint64_t r = 1; r <= rounds; r++) {
		for (unsigned c = 0; r > 1 && c < n; c++)
			if (c != me && !wait_ge(t, done[c], r - 1, "done", c))
				return 1;
		for (uint64_t i = me; i < k; i += n) {
			*data[i] = r;
			__atomic_store_n(flag[i], r, __ATOMIC_RELEASE);
		}
		for (uint64_t i = 0; i < k; i++) {
			uint64_t f, d;

			if (i % n == me)
				continue;
			if (!(f = wait_ge(t, flag[i], r, "flag", i)))
				return 1;
			d = *data[i];
			(*obs)++;
			/* Below r is the forbidden outcome; above r (or a
			 * flag past r) cannot happen in lockstep either. */
			if (d != r || f != r) {
				(*viol)++;
				note_first(me, i, r, f, d);
			}
		}
		__atomic_store_n(done[me], r, __ATOMIC_RELEASE);
	}
	return 0;
}

static int mp_litmus(struct tctx *t)
{
	uint64_t rounds = targ("rounds", 300), k = targ("pairs", 8);
	uint64_t obs = 0, viol = 0, t0, dt, expect, ns;
	unsigned n = t->ncpus;

	if (t->cpu == 0) {
		if (n < 2)
			tfail(t, "needs >= 2 cpus");
		else if (!rounds || !k || k > MAX_PAIRS)
			tfail(t, "rounds must be > 0, pairs 1..%d", MAX_PAIRS);
		else if (!layout(t, k))
			ready = 1;
	}
	tbarrier(t);
	if (!ready)
		return 1;
	t0 = rdtsc_ordered();
	run_rounds(t, rounds, k, &obs, &viol);
	dt = rdtsc_ordered() - t0;
	atomic_add(&observed, obs);
	atomic_add(&violations, viol);
	for (uint64_t m = max_cycles; dt > m;)
		if (__atomic_compare_exchange_n(&max_cycles, &m, dt, 0,
						__ATOMIC_SEQ_CST,
						__ATOMIC_SEQ_CST))
			break;
	tbarrier(t);
	if (t->cpu != 0)
		return 0;
	expect = rounds * k * (n - 1);
	tprintf("mp-litmus: rounds=%lu pairs=%lu cpus=%u observed=%lu "
		"violations=%lu\n",
		rounds, k, n, observed, violations);
	ns = cycles_to_ns(max_cycles) / rounds;
	tprintf("mp-litmus: %lu ms, %lu.%03lu us per round\n",
		cycles_to_ns(max_cycles) / 1000000, ns / 1000, ns % 1000);
	if (violations)
		return tfail(t,
			     "%lu violations; first: cpu %lu pair %lu round "
			     "%lu saw flag %lu data %lu",
			     violations, first_cpu, first_pair, first_round,
			     first_flag, first_data);
	if (observed != expect)
		return tfail(t, "observed %lu of %lu", observed, expect);
	return 0;
}

TESTOS_TEST("mp-litmus", mp_litmus,
	    "rounds= pairs= message passing across far-apart pages");
