// SPDX-License-Identifier: MIT
/*
 * --balance locality, this host's agent (the policy is balancer/'s): every
 * 100 ms it asks the policy about each vCPU that runs here, from the
 * remote faults vmm/cluster_faults.c fed it, and moves those it says to;
 * every 500 ms it tells the other hosts its load (CL_LOAD: vCPUs running
 * here, cores, memory pressure), the destination's back-pressure. A vCPU's
 * back-off travels with it in its jump (vmm/jump.c).
 *
 * The load it reports leaves out what is on its way out: a vCPU whose
 * last decision was a jump that back-pressure held back (the other host
 * busy or full) does not count as runnable here, and when every vCPU here
 * is such a one, or none runs here at all, the page cache counts as free
 * (what fills it serves vCPUs that left or are leaving). Otherwise two vCPUs
 * that each want the other's host (a swap: each computes on data homed where
 * the other runs, as in bench/locality) would hold each other back for ever,
 * each host full of the other's pages and busy with the vCPU that wants to go;
 * and once one of them has gone, the host it left would still read full of its
 * stale copies and hold the other back.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmm/cluster_priv.h"
#include "vmm/trace.h"

#define TICK_MS 100
#define LOAD_MS 500

/* Per vCPU: its last decision here wanted a jump that back-pressure held
 * back (under ft_lock; one cluster per process). */
static bool held_back[VM_MAX_VCPUS];

uint64_t cluster_ms(void)
{
	return vm__now_ns() / 1000000 + 1; /* never 0: "never" to the policy */
}

/* vCPUs running here, less those held back on their way out. */
static unsigned here_count(struct cluster *cl)
{
	struct vm *vm = cl->vm;
	unsigned n = 0;

	pthread_mutex_lock(&cl->ft_lock);
	for (unsigned i = 0; i < vm->cfg.nr_vcpus; i++)
		n += atomic_load(&vm->vcpus[i].here) && !held_back[i];
	pthread_mutex_unlock(&cl->ft_lock);
	return n;
}

static void send_load(struct cluster *cl)
{
	struct dsm *d = &cl->dsm;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t budget = d->cfg.budget_pages;
	uint32_t mem = budget ? atomic_load(&d->used) * 1000 / budget : 0;
	unsigned n = here_count(cl);
	uint8_t m[12];

	/* No vCPU stays here: what fills the cache serves nobody. */
	if (!n)
		mem = 0;
	cl_put32(m, n);
	cl_put32(m + 4, cores > 0 ? cores : 1);
	cl_put32(m + 8, mem > 1000 ? 1000 : mem);
	for (unsigned h = 0; h < cl->n; h++)
		if (h != cl->self)
			cluster_send(cl, h, CL_LOAD, m, sizeof(m));
}

void cluster_load_frame(struct cluster *cl, unsigned from, const uint8_t *p,
			size_t len)
{
	uint32_t n, cores, mem;

	if (len != 12 || from >= cl->n)
		return;
	n = cl_get32(p);
	cores = cl_get32(p + 4);
	mem = cl_get32(p + 8);
	if (!cores || cores > 65536 || n > VM_MAX_VCPUS || mem > 1000)
		return;
	pthread_mutex_lock(&cl->ft_lock);
	/* With the vCPU that would come counted. */
	cl->loads[from].runnable_per_core = (n + 1.0) / cores;
	cl->loads[from].mem_pressure = mem / 1000.0;
	pthread_mutex_unlock(&cl->ft_lock);
}

/* The costs the policy weighs, as measured here so far. */
static void measure(struct cluster *cl)
{
	struct vm *vm = cl->vm;
	uint64_t jumps = 0, jump_ns = 0;

	for (unsigned i = 0; i < vm->cfg.nr_vcpus; i++) {
		jumps += vm->vcpus[i].st.jumps;
		jump_ns += vm->vcpus[i].st.jump_ns;
	}
	if (jumps >= 4)
		cl->bal.jump_us = jump_ns / 1000.0 / jumps;
	if (cl->remote_n >= 64)
		cl->bal.fault_us = cl->remote_ns / 1000.0 / cl->remote_n;
}

static void tick(struct cluster *cl)
{
	struct vm *vm = cl->vm;
	uint64_t now = cluster_ms();

	pthread_mutex_lock(&cl->ft_lock);
	if (atomic_load(&cl->stopping)) {
		pthread_mutex_unlock(&cl->ft_lock);
		return;
	}
	measure(cl);
	for (unsigned i = 0; i < vm->cfg.nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		struct bal_why w;
		char why[160];
		if (!atomic_load(&v->here) || atomic_load(&v->jump_to) >= 0) {
			held_back[i] = false;
			continue;
		}
		int to =
		    balancer__decide(&cl->bal, &cl->bv[i], cl->loads, now, &w);
		held_back[i] = w.verdict == BAL_BUSY || w.verdict == BAL_FULL;
		if (w.verdict != BAL_NO_WINDOW && w.verdict != BAL_FEW)
			trace__emit(TRACE_BALANCE, cl->self, i,
				    w.best < 0 ? cl->self : (unsigned)w.best,
				    w.faults, w.total, w.verdict);
		if (to < 0)
			continue;
		/* A failed request backs off like a jump. */
		if (cluster__jump(vm, i, to, JUMP_BALANCER, why, sizeof(why)))
			balancer__jumped(&cl->bal, &cl->bv[i], to, false, now);
	}
	pthread_mutex_unlock(&cl->ft_lock);
}

static void *agent(void *arg)
{
	struct cluster *cl = arg;
	unsigned n = 0;

	pthread_setname_np(pthread_self(), "slos-balance");
	while (!atomic_load(&cl->stopping)) {
		struct timespec t = {0, TICK_MS * 1000000L};
		nanosleep(&t, NULL);
		if (atomic_load(&cl->stopping))
			break;
		if (n++ % (LOAD_MS / TICK_MS) == 0)
			send_load(cl);
		tick(cl);
	}
	return NULL;
}

int cluster_balance_start(struct cluster *cl)
{
	struct vm *vm = cl->vm;
	uint64_t now = cluster_ms();

	balancer__defaults(&cl->bal, cl->n);
	for (unsigned i = 0; i < vm->cfg.nr_vcpus; i++)
		balancer__init(&cl->bal, &cl->bv[i], atomic_load(&cl->where[i]),
			       now);
	if (pthread_create(&cl->bal_thread, NULL, agent, cl))
		return -1;
	cl->bal_on = true;
	return 0;
}

void cluster_balance_stop(struct cluster *cl)
{
	if (!cl->bal_on)
		return;
	atomic_store(&cl->stopping, true);
	pthread_join(cl->bal_thread, NULL);
	cl->bal_on = false;
}
