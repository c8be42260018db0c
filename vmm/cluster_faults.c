// SPDX-License-Identifier: MIT
/*
 * Which vCPU waited for which guest page, and how long: the fault engine
 * names the faulting thread, the DSM's install, unprotect and wake ops
 * end the wait. Each host counts its vCPUs' DSM faults by the page's home
 * (a remote fault: a home elsewhere) with a log2 histogram of the waits
 * (--stats), and each fault is a trace event (--trace). The balancer's
 * locality policy reads the same counts.
 *
 * KVM's asynchronous page faults: when the guest has interrupts on, KVM
 * does not fault a missing page in the vCPU's thread; it holds the vCPU
 * (halted, or with a "page not present" event) and lets a worker thread
 * of the host kernel fault the page in, so userfaultfd names that worker.
 * Such a fault (a thread outside this process, the VM running) is the
 * vCPU's that runs on this host when only one does; with several it
 * cannot be told whose and stays unattributed. Without this the policy
 * saw next to none of a guest's user-space faults (ring 3 runs with
 * interrupts on): 60 of 5800 in bench/locality.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vmm/cluster_priv.h"
#include "vmm/trace.h"

static struct vcpu *of_tid(struct cluster *cl, uint32_t tid)
{
	struct vm *vm = cl->vm;
	/* The loader's faults come before the vCPUs exist. */
	struct vcpu *vs =
	    vm ? __atomic_load_n(&vm->vcpus, __ATOMIC_ACQUIRE) : NULL;
	struct vcpu *one = NULL;

	for (unsigned i = 0; tid && vs && i < vm->cfg.nr_vcpus; i++)
		if (vs[i].tid == tid)
			return &vs[i];
	/* Not a vCPU's thread: one of slos's own (a device, a restore), or
	 * KVM's async page-fault worker (above). */
	if (!vs || (tid && !syscall(SYS_tgkill, getpid(), tid, 0)))
		return NULL;
	for (unsigned i = 0; i < vm->cfg.nr_vcpus; i++) {
		if (!atomic_load(&vs[i].here))
			continue;
		if (one)
			return NULL;
		one = &vs[i];
	}
	return one;
}

void cluster_fault_begin(struct cluster *cl, uint64_t gpa, bool write,
			 uint32_t tid)
{
	struct vcpu *v = of_tid(cl, tid);

	if (!v)
		return; /* the loader, a device, a restore: not a vCPU's */
	struct vcpu_faults *f = &cl->vf[v->id];
	pthread_mutex_lock(&cl->ft_lock);
	if (!f->waiting)
		cl->nwaiting++;
	f->waiting = true;
	f->gpa = gpa;
	f->write = write;
	f->t0 = vm__now_ns();
	pthread_mutex_unlock(&cl->ft_lock);
}

static unsigned log2_us(uint64_t ns)
{
	uint64_t us = ns / 1000;
	unsigned b = 0;

	while (us > 1 && b < FAULT_HIST - 1) {
		us >>= 1;
		b++;
	}
	return b;
}

void cluster_fault_end(struct cluster *cl, uint64_t gpa)
{
	struct vm *vm = cl->vm;

	if (!vm || !vm->vcpus ||
	    !__atomic_load_n(&cl->nwaiting, __ATOMIC_RELAXED))
		return;
	unsigned home = dsm__home(&cl->dsm, gpa);
	pthread_mutex_lock(&cl->ft_lock);
	/* Read under the lock: a fault begun after an earlier read would
	 * have a later t0, and its wait would wrap to ~2^64 ns. */
	uint64_t now = vm__now_ns();
	for (unsigned i = 0; cl->nwaiting && i < vm->cfg.nr_vcpus; i++) {
		struct vcpu_faults *f = &cl->vf[i];
		if (!f->waiting || f->gpa != gpa)
			continue;
		uint64_t ns = now - f->t0;
		f->waiting = false;
		cl->nwaiting--;
		f->faults++;
		f->by_home[home]++;
		f->hist[log2_us(ns)]++;
		if (home != cl->self) {
			cl->remote_n++;
			cl->remote_ns += ns;
		}
		if (cl->bal_on)
			balancer__fault(&cl->bal, &cl->bv[i], home,
					now / 1000000 + 1);
		trace__emit(TRACE_FAULT, cl->self, i, gpa, home, ns / 1000,
			    f->write);
	}
	pthread_mutex_unlock(&cl->ft_lock);
}

void cluster_fault_stats(struct cluster *cl, FILE *out)
{
	struct vm *vm = cl->vm;

	for (unsigned i = 0; vm && i < vm->cfg.nr_vcpus; i++) {
		struct vcpu_faults *f = &cl->vf[i];
		char line[512];
		int n;
		uint64_t remote = 0;
		if (!f->faults)
			continue;
		for (unsigned h = 0; h < cl->n; h++)
			if (h != cl->self)
				remote += f->by_home[h];
		n = snprintf(line, sizeof(line),
			     "slos: host %u vcpu %u dsm faults %llu (remote "
			     "%llu); wait us log2 [",
			     cl->self, i, (unsigned long long)f->faults,
			     (unsigned long long)remote);
		unsigned top = FAULT_HIST;
		while (top > 1 && !f->hist[top - 1])
			top--;
		for (unsigned b = 0;
		     b < top && n > 0 && (size_t)n < sizeof(line); b++)
			n += snprintf(line + n, sizeof(line) - n, "%s%llu",
				      b ? " " : "",
				      (unsigned long long)f->hist[b]);
		/* One write: the hosts share a terminal. */
		fprintf(out, "%.*s]\n", (int)sizeof(line) - 3, line);
	}
}
