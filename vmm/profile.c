// SPDX-License-Identifier: MIT
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vmm/profile.h"
#include "vmm/vm.h"

#define PROFILE_SIG SIGRTMIN

static __thread volatile sig_atomic_t due;

static void on_tick(int sig)
{
	due = 1;
}

int profile__start(struct vcpu *v, unsigned period_us)
{
	struct sigevent se = { .sigev_notify = SIGEV_THREAD_ID,
			       .sigev_signo = PROFILE_SIG };
	struct sigaction sa = { .sa_handler = on_tick };
	struct itimerspec it = {
		.it_interval = { .tv_sec = period_us / 1000000,
				 .tv_nsec = (period_us % 1000000) * 1000 },
	};

	it.it_value = it.it_interval;
	se._sigev_un._tid = syscall(SYS_gettid);
	sigaction(PROFILE_SIG, &sa, NULL);
	v->run->kvm_valid_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
	if (timer_create(CLOCK_MONOTONIC, &se, &v->prof.timer))
		return -errno;
	v->prof.armed = 1;
	if (timer_settime(v->prof.timer, 0, &it, NULL))
		return -errno;
	return 0;
}

void profile__tick(struct vcpu *v)
{
	struct profile *p = &v->prof;

	if (!due)
		return;
	due = 0;
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 4096;
		uint64_t *r = realloc(p->rip, cap * sizeof(*r));
		uint8_t *c = r ? realloc(p->cpl, cap) : NULL;
		if (r)
			p->rip = r;
		if (!c)
			return;
		p->cpl = c;
		p->cap = cap;
	}
	p->rip[p->n] = v->run->s.regs.regs.rip;
	p->cpl[p->n++] = v->run->s.regs.sregs.cs.dpl;
}

void profile__stop(struct vcpu *v)
{
	if (v->prof.armed)
		timer_delete(v->prof.timer);
	v->prof.armed = 0;
}

int profile__write(const char *path, struct vcpu *vcpus, unsigned n)
{
	FILE *f = fopen(path, "w");
	size_t total = 0;

	if (!f)
		return -errno;
	for (unsigned i = 0; i < n; i++) {
		struct profile *p = &vcpus[i].prof;
		for (size_t k = 0; k < p->n; k++)
			fprintf(f, "%u %016llx %u\n", i,
				(unsigned long long)p->rip[k], p->cpl[k]);
		total += p->n;
		free(p->rip);
		free(p->cpl);
		memset(p, 0, sizeof(*p));
	}
	fclose(f);
	fprintf(stderr, "slos: %zu RIP samples written to %s\n", total, path);
	return 0;
}
