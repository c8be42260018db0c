// SPDX-License-Identifier: MIT
/*
 * The locality policy (balancer/locality.c) on simulated fault streams:
 * a steady workload settles after one jump; one that alternates between
 * two hosts' data backs off instead of flapping (at most one jump per
 * second, fewer and fewer); and the reasons not to jump each hold.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "balancer/balancer.h"

static struct bal_cfg c;
static struct bal_load idle[BAL_MAX_HOSTS];

/* ms of faults at `rate` per second served by `from(t)`, deciding every
 * 100 ms and jumping when told; the number of jumps. */
static int simulate(struct bal_vcpu *v, uint64_t *t, uint64_t ms, int rate,
		    int (*from)(uint64_t t, unsigned here),
		    const struct bal_load *loads)
{
	int jumps = 0;

	for (uint64_t end = *t + ms; *t < end; (*t)++) {
		int h = from(*t, v->host);
		if (h >= 0 && h != (int)v->host && rate &&
		    (*t * rate) / 1000 != ((*t + 1) * rate) / 1000)
			balancer__fault(&c, v, h, *t);
		if (*t % 100 == 0) {
			struct bal_why w;
			int to = balancer__decide(&c, v, loads, *t, &w);
			if (to >= 0) {
				cr_assert_eq(w.verdict, BAL_JUMP);
				balancer__jumped(&c, v, to, true, *t);
				jumps++;
			}
		}
	}
	return jumps;
}

static int on_host1(uint64_t t, unsigned here)
{
	return 1;
}

static int alternating(uint64_t t, unsigned here)
{
	return (t / 1500) % 2; /* host 0's data, then host 1's, ... */
}

static int spread(uint64_t t, unsigned here)
{
	return 1 + (t / 2) % 2; /* hosts 1 and 2 alike, from host 0 */
}

static void setup(void)
{
	balancer__defaults(&c, 3);
	memset(idle, 0, sizeof(idle));
}

TestSuite(balancer, .init = setup);

Test(balancer, steady_workload_settles_after_one_jump)
{
	struct bal_vcpu v;
	uint64_t t = 1;

	balancer__init(&c, &v, 0, t);
	cr_expect_eq(simulate(&v, &t, 60000, 500, on_host1, idle), 1);
	cr_expect_eq(v.host, 1);
}

Test(balancer, alternating_workload_backs_off)
{
	struct bal_vcpu v;
	uint64_t t = 1, last = 0;
	int total = 0;

	balancer__init(&c, &v, 0, t);
	for (int s = 0; s < 120; s++) {
		uint64_t t0 = t;
		int j = simulate(&v, &t, 1000, 500, alternating, idle);
		cr_expect_leq(j, 1, "%d jumps in second %d", j, s);
		if (j && last)
			cr_expect_geq(t0 - last, c.min_gap_ms - 100);
		if (j)
			last = t0;
		total += j;
	}
	/* Without back-off it would follow every phase (80 times). */
	cr_expect_lt(total, 40, "%d jumps in 120 s", total);
	cr_expect_gt(v.gap_ms, c.min_gap_ms);
}

Test(balancer, reasons_not_to_jump)
{
	struct bal_vcpu v;
	struct bal_load busy[BAL_MAX_HOSTS] = { { 0 } }, full[BAL_MAX_HOSTS];
	struct bal_why w;
	uint64_t t = 1;

	balancer__init(&c, &v, 0, t);
	cr_expect_eq(simulate(&v, &t, 10000, 5, on_host1, idle), 0,
		     "a trickle of faults");
	balancer__decide(&c, &v, idle, t, &w);
	cr_expect_eq(w.verdict, BAL_FEW, "%s", balancer__verdict_name(w.verdict));

	balancer__init(&c, &v, 0, t);
	cr_expect_eq(simulate(&v, &t, 10000, 500, spread, idle), 0,
		     "faults spread over two hosts");
	balancer__decide(&c, &v, idle, t, &w);
	cr_expect_eq(w.verdict, BAL_SPLIT, "%s", balancer__verdict_name(w.verdict));

	busy[1].runnable_per_core = 1.5;
	balancer__init(&c, &v, 0, t);
	cr_expect_eq(simulate(&v, &t, 10000, 500, on_host1, busy), 0);
	balancer__decide(&c, &v, busy, t, &w);
	cr_expect_eq(w.verdict, BAL_BUSY, "%s", balancer__verdict_name(w.verdict));

	memset(full, 0, sizeof(full));
	full[1].mem_pressure = 0.95;
	balancer__init(&c, &v, 0, t);
	cr_expect_eq(simulate(&v, &t, 10000, 500, on_host1, full), 0);

	c.fault_us = 1; /* cheap faults: 500 of them do not pay a jump */
	balancer__init(&c, &v, 0, t);
	cr_expect_eq(simulate(&v, &t, 10000, 500, on_host1, idle), 0);
	balancer__decide(&c, &v, idle, t, &w);
	cr_expect_eq(w.verdict, BAL_CHEAP, "%s", balancer__verdict_name(w.verdict));
	cr_expect_eq(w.best, 1);
	cr_expect_gt(w.total, 400);
}
