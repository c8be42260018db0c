// SPDX-License-Identifier: MIT
/*
 * The DSM engine with several hosts in one process: each host's "guest
 * mapping" is an array with a per-page protection, each pair of hosts an
 * ordered channel of encoded messages, and a seeded random scheduler
 * interleaves guest accesses and deliveries. Every step checks the
 * protocol's safety properties (one writer or many readers; every mapped
 * copy holds the latest write); at the end every access completes.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/dsm.h"

#define NPAGES 8
#define PG     DSM_PAGE_BYTES
#define QMAX   4096

enum { ABSENT, RO, RW };

struct chan {
	uint8_t *msg[QMAX];
	size_t len[QMAX];
	unsigned head, tail;
};

struct host {
	unsigned id;
	struct dsm d;
	uint8_t mem[NPAGES][PG];
	uint8_t prot[NPAGES];
};

static struct host hosts[DSM_MAX_HOSTS];
static struct chan chans[DSM_MAX_HOSTS][DSM_MAX_HOSTS];
static unsigned nhosts;
static uint64_t latest[NPAGES]; /* value of the last write per page */
static bool priv_page[NPAGES];	/* some host made it its own */
static char errbuf[256];
static int errors;

static int o_send(void *arg, unsigned to, const struct dsm_msg *m)
{
	struct host *h = arg;
	struct chan *c = &chans[h->id][to];
	uint8_t *b = malloc(DSM_WIRE_MAX);

	cr_assert(to != h->id && to < nhosts);
	cr_assert(c->tail - c->head < QMAX);
	c->len[c->tail % QMAX] = dsm__encode(m, b);
	c->msg[c->tail++ % QMAX] = b;
	return 0;
}

static int o_install(void *arg, uint64_t gpa, const void *page, bool wr)
{
	struct host *h = arg;
	unsigned p = gpa / PG;

	cr_assert_eq(h->prot[p], ABSENT, "install over a mapped page");
	if (page)
		memcpy(h->mem[p], page, PG);
	else
		memset(h->mem[p], 0, PG);
	h->prot[p] = wr ? RW : RO;
	return 0;
}

static int o_protect(void *arg, uint64_t gpa)
{
	struct host *h = arg;

	cr_assert_eq(h->prot[gpa / PG], RW);
	h->prot[gpa / PG] = RO;
	return 0;
}

static int o_unprotect(void *arg, uint64_t gpa)
{
	struct host *h = arg;

	cr_assert_eq(h->prot[gpa / PG], RO);
	h->prot[gpa / PG] = RW;
	return 0;
}

static int o_drop(void *arg, uint64_t gpa)
{
	struct host *h = arg;

	h->prot[gpa / PG] = ABSENT;
	memset(h->mem[gpa / PG], 0xee, PG); /* stale bytes must not leak */
	return 0;
}

static int o_read(void *arg, uint64_t gpa, void *buf)
{
	struct host *h = arg;

	cr_assert_neq(h->prot[gpa / PG], ABSENT);
	memcpy(buf, h->mem[gpa / PG], PG);
	return 0;
}

static int o_wake(void *arg, uint64_t gpa)
{
	return 0;
}

static void o_error(void *arg, const char *why)
{
	snprintf(errbuf, sizeof(errbuf), "%s", why);
	errors++;
}

static const struct dsm_ops ops = {
    .send = o_send,
    .install = o_install,
    .protect = o_protect,
    .unprotect = o_unprotect,
    .drop = o_drop,
    .read = o_read,
    .wake = o_wake,
    .error = o_error,
};

static void setup(unsigned n, bool interleave, uint64_t budget)
{
	memset(chans, 0, sizeof(chans));
	memset(latest, 0, sizeof(latest));
	memset(priv_page, 0, sizeof(priv_page));
	errors = 0;
	errbuf[0] = 0;
	nhosts = n;
	for (unsigned i = 0; i < n; i++) {
		struct dsm_config c = {
		    .self = i,
		    .nhosts = n,
		    .lowmem = NPAGES * PG,
		    .size = NPAGES * PG,
		    .interleave = interleave,
		    .budget_pages = budget,
		};
		struct dsm_ops o = ops;
		memset(&hosts[i], 0, sizeof(hosts[i]));
		hosts[i].id = i;
		o.arg = &hosts[i];
		cr_assert_eq(dsm__init(&hosts[i].d, &c, &o), 0);
	}
}

static void teardown(void)
{
	for (unsigned i = 0; i < nhosts; i++)
		dsm__exit(&hosts[i].d);
	for (unsigned a = 0; a < DSM_MAX_HOSTS; a++)
		for (unsigned b = 0; b < DSM_MAX_HOSTS; b++)
			while (chans[a][b].head != chans[a][b].tail)
				free(
				    chans[a][b].msg[chans[a][b].head++ % QMAX]);
}

static uint64_t val(struct host *h, unsigned p)
{
	uint64_t v;

	memcpy(&v, h->mem[p], 8);
	return v;
}

/* Safety after every step. */
static void check(void)
{
	cr_assert_eq(errors, 0, "engine error: %s", errbuf);
	for (unsigned p = 0; p < NPAGES; p++) {
		unsigned rw = 0, mapped = 0;
		/* Its contents are each host's by design: only liveness and
		 * the protocol's own checks hold for it. */
		if (priv_page[p])
			continue;
		for (unsigned i = 0; i < nhosts; i++) {
			struct host *h = &hosts[i];
			if (h->prot[p] == ABSENT)
				continue;
			mapped++;
			rw += h->prot[p] == RW;
			cr_assert_eq(val(h, p), latest[p],
				     "host %u page %u holds %lu, latest %lu", i,
				     p, val(h, p), latest[p]);
		}
		cr_assert(rw == 0 || mapped == 1,
			  "page %u: a writer and %u mappings", p, mapped);
	}
}

static bool deliver_one(unsigned a, unsigned b)
{
	struct chan *c = &chans[a][b];
	struct dsm_msg m;
	const char *why = NULL;

	if (c->head == c->tail)
		return false;
	uint8_t *buf = c->msg[c->head % QMAX];
	size_t len = c->len[c->head++ % QMAX];
	cr_assert_eq(dsm__decode(buf, len, &m, &why), 0, "%s", why);
	dsm__recv(&hosts[b].d, a, &m);
	free(buf);
	return true;
}

static bool deliver_any(void)
{
	unsigned n = 0, pick;
	unsigned cand[DSM_MAX_HOSTS * DSM_MAX_HOSTS][2];

	for (unsigned a = 0; a < nhosts; a++)
		for (unsigned b = 0; b < nhosts; b++)
			if (chans[a][b].head != chans[a][b].tail) {
				cand[n][0] = a;
				cand[n++][1] = b;
			}
	if (!n)
		return false;
	pick = rand() % n;
	return deliver_one(cand[pick][0], cand[pick][1]);
}

static uint64_t next_val = 1;
static struct dsm_stats tot; /* over a test's runs: the paths it took */

static void add_stats(void)
{
	for (unsigned i = 0; i < nhosts; i++) {
		struct dsm_stats st;
		dsm__stats(&hosts[i].d, &st);
		tot.inv += st.inv;
		tot.fwd += st.fwd;
		tot.evict_s += st.evict_s;
		tot.evict_m += st.evict_m;
		tot.upgrades += st.upgrades;
		tot.dir_queued += st.dir_queued;
	}
}

/* One guest access: done if the mapping allows it, else a fault. */
static bool access_page(struct host *h, unsigned p, bool write)
{
	if (dsm__is_private(&h->d, p * PG)) {
		cr_assert_eq(h->prot[p], RW, "a private page not writable");
		if (write)
			memcpy(h->mem[p], &(uint64_t){next_val++}, 8);
		return true;
	}
	if (write ? h->prot[p] == RW : h->prot[p] != ABSENT) {
		if (priv_page[p]) {
			if (write)
				memcpy(h->mem[p], &(uint64_t){next_val++}, 8);
			return true;
		}
		if (write) {
			latest[p] = next_val++;
			memcpy(h->mem[p], &latest[p], 8);
		} else {
			cr_assert_eq(val(h, p), latest[p]);
		}
		return true;
	}
	dsm__fault(&h->d, p * PG, write);
	return false;
}

static void run_random_priv(unsigned n, bool interleave, uint64_t budget,
			    unsigned seed, unsigned steps, bool priv)
{
	setup(n, interleave, budget);
	srand(seed);
	for (unsigned s = 0; s < steps; s++) {
		/* Now and then a host makes page 2 or 5 its own. */
		if (priv && rand() % 200 == 0) {
			unsigned p = rand() % 2 ? 2 : 5;
			priv_page[p] = true;
			cr_assert_eq(
			    dsm__privatize(&hosts[rand() % n].d, p * PG), 0);
		} else if (rand() % 2)
			access_page(&hosts[rand() % n], rand() % NPAGES,
				    rand() % 3 == 0);
		else
			deliver_any();
		check();
	}
	/* Liveness: every host reads then writes every page to the end. */
	for (unsigned i = 0; i < n; i++) {
		for (unsigned p = 0; p < NPAGES; p++) {
			for (int w = 0; w < 2; w++) {
				unsigned tries = 0;
				while (!access_page(&hosts[i], p, w)) {
					while (deliver_any())
						check();
					cr_assert(++tries < 10,
						  "host %u page %u %s never "
						  "completes",
						  i, p, w ? "write" : "read");
				}
				check();
			}
		}
	}
	add_stats();
	teardown();
}

static void run_random(unsigned n, bool interleave, uint64_t budget,
		       unsigned seed, unsigned steps)
{
	run_random_priv(n, interleave, budget, seed, steps, false);
}

Test(dsm, random_2_hosts)
{
	for (unsigned seed = 1; seed <= 40; seed++)
		run_random(2, false, 0, seed, 3000);
	cr_assert(tot.inv && tot.fwd && tot.upgrades && tot.dir_queued);
}

Test(dsm, random_3_hosts_interleaved)
{
	for (unsigned seed = 1; seed <= 40; seed++)
		run_random(3, true, 0, seed, 3000);
	cr_assert(tot.inv && tot.fwd && tot.upgrades && tot.dir_queued);
}

Test(dsm, random_3_hosts_budget_evicts)
{
	for (unsigned seed = 1; seed <= 40; seed++)
		run_random(3, seed % 2, 2, seed, 3000);
	cr_assert(tot.evict_s && tot.evict_m, "the budget made hosts evict");
}

Test(dsm, random_4_hosts_tiny_budget)
{
	for (unsigned seed = 1; seed <= 20; seed++)
		run_random(4, true, 1, seed, 4000);
	cr_assert(tot.evict_s && tot.evict_m);
}

/* Private pages (the kvmclock page) in the middle of the traffic: the
 * protocol goes on without a violation, every access completes, and the
 * other pages stay coherent. */
Test(dsm, random_3_hosts_private_pages)
{
	for (unsigned seed = 1; seed <= 40; seed++)
		run_random_priv(3, seed % 2, seed % 3 ? 0 : 2, seed, 3000,
				true);
	cr_assert(tot.inv && tot.fwd);
}

static void pump(void)
{
	while (deliver_any())
		check();
}

Test(dsm, remote_read_then_write_moves_the_page)
{
	setup(2, false, 0);
	/* pages 0-3 homed on host 0, 4-7 on host 1 */
	cr_assert_eq(dsm__home(&hosts[0].d, 5 * PG), 1);
	cr_assert_eq(dsm__home(&hosts[0].d, 2 * PG), 0);
	cr_assert(!access_page(&hosts[1], 5, true));
	pump();
	cr_assert(access_page(&hosts[1], 5, true));
	cr_assert_eq(dsm__state(&hosts[1].d, 5 * PG), DSM_M);
	/* host 0 reads: the owner downgrades, both share it */
	cr_assert(!access_page(&hosts[0], 5, false));
	pump();
	cr_assert(access_page(&hosts[0], 5, false));
	cr_assert_eq(dsm__state(&hosts[0].d, 5 * PG), DSM_S);
	cr_assert_eq(dsm__state(&hosts[1].d, 5 * PG), DSM_S);
	/* host 0 writes: host 1's copy is invalidated */
	cr_assert(!access_page(&hosts[0], 5, true));
	pump();
	cr_assert(access_page(&hosts[0], 5, true));
	cr_assert_eq(hosts[1].prot[5], ABSENT);
	struct dsm_stats st;
	dsm__stats(&hosts[1].d, &st);
	cr_assert_eq(st.inv, 1);
	teardown();
}

Test(dsm, private_page_is_left_alone)
{
	setup(2, false, 0);
	/* page 1's home is host 0, which writes it */
	cr_assert(!access_page(&hosts[0], 1, true));
	pump();
	cr_assert(access_page(&hosts[0], 1, true));
	/* host 1 makes it its own: zeros, writable, no message */
	cr_assert_eq(dsm__privatize(&hosts[1].d, 1 * PG + 0x40), 0);
	cr_assert_eq(hosts[1].prot[1], RW);
	cr_assert_eq(val(&hosts[1], 1), 0);
	cr_assert_eq(chans[1][0].tail, chans[1][0].head);
	memcpy(hosts[1].mem[1], &(uint64_t){0xc10c}, 8);
	/* host 0 keeps writing its own copy without taking host 1's */
	cr_assert(access_page(&hosts[0], 1, true));
	cr_assert_eq(val(&hosts[1], 1), 0xc10c);
	/* a fault already on its way is answered at once */
	cr_assert_eq(dsm__fault(&hosts[1].d, 1 * PG, true), 0);
	cr_assert_eq(chans[1][0].tail, chans[1][0].head);
	/* host 0 makes it its own too: it keeps what it has */
	uint64_t mine = val(&hosts[0], 1);
	cr_assert_eq(dsm__privatize(&hosts[0].d, 1 * PG), 0);
	cr_assert_eq(val(&hosts[0], 1), mine);
	cr_assert_eq(hosts[0].prot[1], RW);
	cr_assert(dsm__is_private(&hosts[0].d, PG));
	cr_assert(!dsm__is_private(&hosts[0].d, 2 * PG));
	cr_assert_eq(dsm__privatize(&hosts[0].d, 1ULL << 40), -EINVAL);
	cr_assert_eq(errors, 0, "%s", errbuf);
	teardown();
}

Test(dsm, untouched_pages_travel_as_zero)
{
	setup(2, false, 0);
	cr_assert(!access_page(&hosts[0], 6, false));
	/* the request is the only message; the answer carries no bytes */
	cr_assert_eq(chans[0][1].tail, 1);
	deliver_one(0, 1);
	cr_assert_eq(chans[1][0].len[0], DSM_WIRE_HDR);
	pump();
	cr_assert(access_page(&hosts[0], 6, false));
	struct dsm_stats st;
	dsm__stats(&hosts[1].d, &st);
	cr_assert_eq(st.zero_tx, 1);
	cr_assert_eq(st.tx_bytes, 0);
	teardown();
}

Test(dsm, unexpected_answer_is_a_clear_error)
{
	struct dsm_msg m = {.type = DSM_GRANT, .gpa = 5 * PG};

	setup(2, false, 0);
	dsm__recv(&hosts[0].d, 1, &m);
	cr_assert_eq(errors, 1);
	cr_assert(strstr(errbuf, "DSM_GRANT"), "%s", errbuf);
	cr_assert_eq(dsm__fault(&hosts[0].d, 5 * PG, false), -EIO);
	teardown();
}

Test(dsm, request_for_a_page_homed_elsewhere_is_refused)
{
	struct dsm_msg m = {.type = DSM_READ_REQ, .gpa = 5 * PG};

	setup(2, false, 0);
	dsm__recv(&hosts[0].d, 1, &m);
	cr_assert_eq(errors, 1);
	cr_assert(strstr(errbuf, "home"), "%s", errbuf);
	teardown();
}

Test(dsm, codec_round_trip_and_refusals)
{
	uint8_t page[PG], buf[DSM_WIRE_MAX];
	struct dsm_msg m = {.type = DSM_DATA,
			    .grant = DSM_M,
			    .payload = DSM_PAYLOAD_PAGE,
			    .gpa = 0x1234000,
			    .page = page},
		       o;
	const char *why;

	memset(page, 0x5a, sizeof(page));
	size_t n = dsm__encode(&m, buf);
	cr_assert_eq(n, DSM_WIRE_MAX);
	cr_assert_eq(dsm__decode(buf, n, &o, &why), 0);
	cr_assert_eq(o.gpa, m.gpa);
	cr_assert_eq(o.grant, DSM_M);
	cr_assert_eq(memcmp(o.page, page, PG), 0);
	cr_assert_neq(dsm__decode(buf, n - 1, &o, &why), 0);
	cr_assert_neq(dsm__decode(buf, 3, &o, &why), 0);
	buf[0] = 1; /* unaligned */
	cr_assert_neq(dsm__decode(buf, n, &o, &why), 0);
	cr_assert_str_eq(why, "unaligned guest page");
	buf[0] = 0;
	buf[9] = 7; /* grant */
	cr_assert_neq(dsm__decode(buf, n, &o, &why), 0);
	buf[9] = DSM_M;
	buf[13] = 1; /* reserved */
	cr_assert_neq(dsm__decode(buf, n, &o, &why), 0);
	buf[13] = 0;
	buf[8] = DSM_INV; /* no payload allowed */
	cr_assert_neq(dsm__decode(buf, n, &o, &why), 0);
	buf[8] = 0x55;
	cr_assert_neq(dsm__decode(buf, n, &o, &why), 0);
}
