/* SPDX-License-Identifier: MIT */
/*
 * The balancer's first policy, `--balance locality`: local decisions, one
 * vCPU at a time, from what the vCPU's own remote faults say (policy only:
 * the mechanism that counts faults and moves vCPUs is vmm/'s).
 *
 * Interface with vmm/: for each remote fault of a vCPU, the host whose
 * page it waited for (balancer__fault); every so often (each window's end
 * at the latest), balancer__decide, with each host's load, which returns
 * the host to jump to or -1, and why, for the trace. vmm/ then asks for the
 * jump (reason JUMP_BALANCER) and reports the outcome (balancer__jumped).
 *
 * The rule: over the last full window, if one host served most of the
 * vCPU's remote faults, and pulling those pages costs more than moving
 * the vCPU there (faults x fault cost > gain x jump cost), and that host
 * is not loaded past its limit (runnable vCPUs per core, memory pressure:
 * the back-pressure of the seed paper), jump there. Hysteresis: the gain
 * factor, a minimum fault count, and a per-vCPU back-off after each jump
 * (at least `min_gap_ms`, doubled each time the vCPU goes straight back
 * where it came from, halved after each quiet window), so a steady
 * workload settles and no vCPU flaps.
 */
#ifndef SLOS_BALANCER_H
#define SLOS_BALANCER_H

#include <stdbool.h>
#include <stdint.h>

#define BAL_MAX_HOSTS 16

struct bal_cfg {
	unsigned nhosts;
	uint64_t window_ms;  /* fault counting window (1000) */
	double fault_us;     /* what one remote fault costs (measured) */
	double jump_us;	     /* what one jump costs (measured) */
	double gain;	     /* saving needed, in jump costs (2) */
	unsigned min_faults; /* fewer in a window: nothing to decide (16) */
	double majority;     /* the host's share of the faults (0.5) */
	uint64_t min_gap_ms; /* between two jumps of a vCPU (1000) */
	uint64_t max_gap_ms; /* the back-off's ceiling (16000) */
	double max_load;     /* runnable vCPUs per core a host may take (1) */
	double max_mem;	     /* memory pressure a host may take, 0-1 (0.9) */
};

/* A host's load, as its agent reports it. */
struct bal_load {
	double runnable_per_core; /* with the jumping vCPU counted */
	double mem_pressure;	  /* guest pages held / budget, 0-1 */
};

struct bal_vcpu {
	unsigned host;	       /* where it runs */
	uint64_t win_start_ms; /* the current window */
	uint32_t cur[BAL_MAX_HOSTS], last[BAL_MAX_HOSTS]; /* faults served */
	bool have_last;
	uint64_t last_jump_ms; /* 0: never */
	int came_from;	       /* the host of its last jump, -1 none */
	uint64_t gap_ms;       /* its back-off now */
};

enum bal_verdict {
	BAL_JUMP,
	BAL_NO_WINDOW, /* no full window counted yet */
	BAL_FEW,       /* too few remote faults */
	BAL_SPLIT,     /* no host serves most of them */
	BAL_CHEAP,     /* pulling the pages costs less than a jump */
	BAL_BACKOFF,   /* too soon after its last jump */
	BAL_BUSY,      /* that host's CPUs are busy */
	BAL_FULL,      /* that host's memory is full */
	BAL_NR_VERDICTS
};

/* What a decision was made from (the trace shows it). */
struct bal_why {
	int best;	  /* the host that served most, -1 none */
	uint32_t faults;  /* its faults in the last window */
	uint32_t total;	  /* all remote faults in the last window */
	double saving_us; /* faults x fault cost */
	enum bal_verdict verdict;
};

/* "jump", or why not, in words. */
const char *balancer__verdict_name(enum bal_verdict v);

void balancer__defaults(struct bal_cfg *c, unsigned nhosts);
void balancer__init(const struct bal_cfg *c, struct bal_vcpu *v, unsigned host,
		    uint64_t now_ms);
/* A remote fault of the vCPU, served by `from` (its page's holder). */
void balancer__fault(const struct bal_cfg *c, struct bal_vcpu *v, unsigned from,
		     uint64_t now_ms);
/* The host to jump to, or -1; loads[h] for every host. */
int balancer__decide(const struct bal_cfg *c, struct bal_vcpu *v,
		     const struct bal_load *loads, uint64_t now_ms,
		     struct bal_why *why);
/* The jump happened (to `host`), or did not (ok false). */
void balancer__jumped(const struct bal_cfg *c, struct bal_vcpu *v,
		      unsigned host, bool ok, uint64_t now_ms);

#endif
