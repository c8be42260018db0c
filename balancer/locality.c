// SPDX-License-Identifier: MIT
/* --balance locality: jump a vCPU to the host that holds its pages. */
#include <string.h>

#include "balancer/balancer.h"

void balancer__defaults(struct bal_cfg *c, unsigned nhosts)
{
	*c = (struct bal_cfg){
	    .nhosts = nhosts > BAL_MAX_HOSTS ? BAL_MAX_HOSTS : nhosts,
	    .window_ms = 1000,
	    .fault_us = 50,
	    .jump_us = 500,
	    .gain = 2,
	    .min_faults = 16,
	    .majority = 0.5,
	    .min_gap_ms = 1000,
	    .max_gap_ms = 16000,
	    .max_load = 1,
	    .max_mem = 0.9,
	};
}

void balancer__init(const struct bal_cfg *c, struct bal_vcpu *v, unsigned host,
		    uint64_t now_ms)
{
	memset(v, 0, sizeof(*v));
	v->host = host;
	v->win_start_ms = now_ms;
	v->came_from = -1;
	v->gap_ms = c->min_gap_ms;
}

/* Close the windows that ended by now: the last full one is kept. A
 * window that saw no faults eases the back-off. */
static void roll(const struct bal_cfg *c, struct bal_vcpu *v, uint64_t now)
{
	if (now < v->win_start_ms + c->window_ms)
		return;
	bool quiet = true;
	for (unsigned h = 0; h < c->nhosts; h++)
		quiet &= v->cur[h] == 0;
	/* More than one window passed: the last full one was empty. */
	if (now >= v->win_start_ms + 2 * c->window_ms)
		memset(v->last, 0, sizeof(v->last));
	else
		memcpy(v->last, v->cur, sizeof(v->last));
	memset(v->cur, 0, sizeof(v->cur));
	v->have_last = true;
	v->win_start_ms = now - (now - v->win_start_ms) % c->window_ms;
	if (quiet && v->gap_ms > c->min_gap_ms)
		v->gap_ms /= 2;
	if (v->gap_ms < c->min_gap_ms)
		v->gap_ms = c->min_gap_ms;
}

void balancer__fault(const struct bal_cfg *c, struct bal_vcpu *v, unsigned from,
		     uint64_t now_ms)
{
	roll(c, v, now_ms);
	if (from < c->nhosts && from != v->host && v->cur[from] < UINT32_MAX)
		v->cur[from]++;
}

int balancer__decide(const struct bal_cfg *c, struct bal_vcpu *v,
		     const struct bal_load *loads, uint64_t now_ms,
		     struct bal_why *why)
{
	struct bal_why w = {.best = -1, .verdict = BAL_NO_WINDOW};

	roll(c, v, now_ms);
	if (v->have_last) {
		for (unsigned h = 0; h < c->nhosts; h++) {
			w.total += v->last[h];
			if (h != v->host &&
			    (w.best < 0 || v->last[h] > w.faults)) {
				w.best = h;
				w.faults = v->last[h];
			}
		}
		w.saving_us = w.faults * c->fault_us;
		const struct bal_load *d = w.best >= 0 ? &loads[w.best] : NULL;
		if (w.faults < c->min_faults)
			w.verdict = BAL_FEW;
		else if (w.faults <= c->majority * w.total)
			w.verdict = BAL_SPLIT;
		else if (w.saving_us <= c->gain * c->jump_us)
			w.verdict = BAL_CHEAP;
		else if (v->last_jump_ms &&
			 now_ms < v->last_jump_ms + v->gap_ms)
			w.verdict = BAL_BACKOFF;
		else if (d->runnable_per_core > c->max_load)
			w.verdict = BAL_BUSY;
		else if (d->mem_pressure >= c->max_mem)
			w.verdict = BAL_FULL;
		else
			w.verdict = BAL_JUMP;
	}
	if (why)
		*why = w;
	return w.verdict == BAL_JUMP ? w.best : -1;
}

const char *balancer__verdict_name(enum bal_verdict v)
{
	static const char *const n[BAL_NR_VERDICTS] = {
	    [BAL_JUMP] = "jump",
	    [BAL_NO_WINDOW] = "no full window yet",
	    [BAL_FEW] = "too few remote faults",
	    [BAL_SPLIT] = "no host serves most of them",
	    [BAL_CHEAP] = "pulling the pages costs less than a jump",
	    [BAL_BACKOFF] = "backing off",
	    [BAL_BUSY] = "that host's CPUs are busy",
	    [BAL_FULL] = "that host's memory is full",
	};

	return v < BAL_NR_VERDICTS ? n[v] : "?";
}

void balancer__jumped(const struct bal_cfg *c, struct bal_vcpu *v,
		      unsigned host, bool ok, uint64_t now_ms)
{
	v->last_jump_ms = now_ms ? now_ms : 1;
	if (!ok)
		return; /* tried: back off as if it had moved */
	/* Straight back where it came from: it flaps; wait longer. */
	if ((int)host == v->came_from) {
		v->gap_ms *= 2;
		if (v->gap_ms > c->max_gap_ms)
			v->gap_ms = c->max_gap_ms;
	}
	v->came_from = v->host;
	v->host = host;
	/* What it counted there says nothing about here. */
	memset(v->cur, 0, sizeof(v->cur));
	memset(v->last, 0, sizeof(v->last));
	v->have_last = false;
	v->win_start_ms = now_ms;
}
