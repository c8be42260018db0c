// SPDX-License-Identifier: MIT
/*
 * A token passed around the CPUs through one page: the turn word and every
 * CPU's counters share it, so under a DSM each pass moves the whole page
 * to the next CPU's host and any word left behind (a stale or torn copy)
 * shows up. CPU k waits for turn % ncpus == k, checks that the previous
 * holder's stamp came along with the turn, bumps its count, writes its
 * stamp and passes the token with a release store of turn + 1.
 */
#include "lib.h"
#include "test.h"

/* The token may take ~50 ms a pass across hosts; only a token that has not
 * moved at all for this long is lost. */
#define STALL_MS 120000

/* 32-bit counts and stamps: 255 CPUs' worth still fit in one page. */
struct token_page {
	volatile uint64_t turn;
	volatile uint64_t last;		   /* CPU that passed the token last */
	volatile uint32_t stamp[MAX_CPUS]; /* turn it saw on its last pass */
	volatile uint32_t count[MAX_CPUS]; /* its passes */
};

_Static_assert(sizeof(struct token_page) <= 4096, "token page > 4 KiB");

/* Alone in its page: nothing else in the image shares its transfers. */
static union {
	struct token_page p;
	uint8_t bytes[4096];
} tok __attribute__((aligned(4096)));

static volatile uint32_t stop;
static volatile uint64_t bad;
static volatile uint32_t first_taken;
static uint64_t first_turn, first_last, first_stamp;

/* Spins until turn == want; 1 if the token stalled or another CPU gave
 * up. The timeout restarts whenever the token moves. */
static int wait_turn(struct tctx *t, uint64_t want)
{
	uint64_t deadline = deadline_in_ms(STALL_MS), seen = ~0ULL, v;

	while ((v = __atomic_load_n(&tok.p.turn, __ATOMIC_ACQUIRE)) != want) {
		if (v > want) {
			stop = 1;
			return tfail(t, "cpu %u: turn %lu went past %lu",
				     t->cpu, v, want);
		}
		if (v != seen) {
			seen = v;
			deadline = deadline_in_ms(STALL_MS);
		}
		cpu_relax();
		if (stop)
			return 1;
		if (past(deadline)) {
			stop = 1;
			return tfail(t,
				     "cpu %u: token stuck at turn %lu for "
				     "%d s (waiting for %lu)",
				     t->cpu, v, STALL_MS / 1000, want);
		}
	}
	return 0;
}

static void check_prev(unsigned me, unsigned n, uint64_t turn)
{
	unsigned prev = (me + n - 1) % n;
	uint64_t last = tok.p.last, stamp = tok.p.stamp[prev];

	if (last == prev && stamp == turn - 1)
		return;
	atomic_add(&bad, 1);
	if (__atomic_exchange_n(&first_taken, 1, __ATOMIC_ACQ_REL))
		return;
	first_turn = turn;
	first_last = last;
	first_stamp = stamp;
}

static int pingpong_page(struct tctx *t)
{
	uint64_t rounds = targ("rounds", 1000), t0, ns, total;
	unsigned n = t->ncpus, me = t->cpu;
	char counts[400];
	size_t len = 0;
	int exact;

	if (me == 0 && (!rounds || rounds * n > UINT32_MAX))
		tfail(t, "rounds must be 1..%u", UINT32_MAX / n);
	tbarrier(t);
	if (!rounds || rounds * n > UINT32_MAX)
		return 1;
	total = rounds * n;
	t0 = rdtsc_ordered();
	for (uint64_t r = 0; r < rounds; r++) {
		uint64_t want = r * n + me;

		if (wait_turn(t, want))
			break;
		if (want)
			check_prev(me, n, want);
		tok.p.count[me] = tok.p.count[me] + 1;
		tok.p.stamp[me] = (uint32_t)want;
		tok.p.last = me;
		__atomic_store_n(&tok.p.turn, want + 1, __ATOMIC_RELEASE);
	}
	/* CPU 0 times the run up to the very last pass, someone else's. */
	if (me == 0 && !stop)
		wait_turn(t, total);
	ns = cycles_to_ns(rdtsc_ordered() - t0);
	tbarrier(t);
	if (me != 0)
		return 0;
	exact = tok.p.turn == total && !bad;
	for (unsigned c = 0; c < n; c++) {
		exact &= tok.p.count[c] == rounds;
		if (len < sizeof(counts) - 16)
			len += snprintf(counts + len, sizeof(counts) - len,
					"%s%u", c ? "," : "", tok.p.count[c]);
		else if (len < sizeof(counts) - 4)
			len += snprintf(counts + len, sizeof(counts) - len,
					",...");
	}
	ns /= total;
	tprintf("pingpong-page: rounds=%lu cpus=%u turn=%lu counts=%s "
		"us_per_pass=%lu.%03lu bad_stamps=%lu\n",
		rounds, n, tok.p.turn, counts, ns / 1000, ns % 1000, bad);
	if (bad)
		return tfail(t,
			     "%lu passes found a stale page; first at turn "
			     "%lu: last=%lu stamp=%lu",
			     bad, first_turn, first_last, first_stamp);
	if (!exact)
		return tfail(t, "turn %lu or a count differs from %lu x %u",
			     tok.p.turn, rounds, n);
	return 0;
}

TESTOS_TEST("pingpong-page", pingpong_page,
	    "rounds= token passes per CPU through one shared page");
