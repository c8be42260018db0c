/* SPDX-License-Identifier: MIT */
/*
 * Guest RIP sampling (`slos run --profile FILE`): each vCPU thread arms a
 * per-thread timer; its signal kicks the vCPU out of KVM_RUN, and the RIP
 * KVM syncs into kvm_run (KVM_SYNC_X86_REGS) is recorded, with no extra
 * ioctl. At exit the samples are written one per line ("vcpu rip cpl");
 * scripts/profile.sh symbolizes them with the kernel's System.map.
 */
#ifndef SLOS_PROFILE_H
#define SLOS_PROFILE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct vcpu;

struct profile {
	uint64_t *rip;
	uint8_t *cpl;
	size_t n, cap;
	timer_t timer;
	int armed;
};

/* Called on the vCPU's own thread before its first KVM_RUN. */
int profile__start(struct vcpu *v, unsigned period_us);
/* Called after KVM_RUN returned: records a sample if one is due. */
void profile__tick(struct vcpu *v);
void profile__stop(struct vcpu *v);
int profile__write(const char *path, struct vcpu *vcpus, unsigned n);

#endif
