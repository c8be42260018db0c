/* SPDX-License-Identifier: MIT */
/*
 * The CPUID a guest sees. On hardware KVM (VT-x/AMD-V) CPUID is
 * virtualized: the guest sees exactly what KVM_SET_CPUID2 gives it, so slos
 * shapes KVM_GET_SUPPORTED_CPUID into a deliberate machine: it announces a
 * hypervisor (Linux then finds kvmclock and takes the TSC rate from it; with
 * no hypervisor bit it calibrates against a PIT/HPET slos does not have and
 * hangs), offers the TSC-deadline timer KVM emulates, describes one package
 * of nr_vcpus cores (over hosts a package per vCPU), hides nested
 * virtualization, and adds the hypervisor timing leaf 0x40000010 (TSC and
 * LAPIC-timer rates). Under PVM the guest reads the host's CPUID instead,
 * but KVM still checks what it was given.
 * Pure over struct kvm_cpuid2, so unit-tested without KVM.
 */
#ifndef SLOS_CPUID_H
#define SLOS_CPUID_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#define CPUID_MAX_ENT 256
/* KVM's LAPIC timer counts at 1 GHz (APIC_BUS_CYCLE_NS = 1). */
#define CPUID_LAPIC_KHZ 1000000

#define CPUID_HYPERVISOR   (1u << 31) /* leaf 1 ECX */
#define CPUID_TSC_DEADLINE (1u << 24)
#define CPUID_VMX	   (1u << 5)
#define CPUID_SVM	   (1u << 2)  /* leaf 0x80000001 ECX */
#define CPUID_HTT	   (1u << 28) /* leaf 1 EDX */

struct cpuid_opts {
	unsigned nr_vcpus;
	uint32_t tsc_khz;  /* 0: not known, no timing leaf */
	bool tsc_deadline; /* KVM_CAP_TSC_DEADLINE_TIMER */
	/* A VM over several hosts: no paravirtual feature whose host side
	 * stays with the host a vCPU left (CPUID_KVM_LOCAL). */
	bool over_hosts;
};

/*
 * KVM's paravirtual features (leaf 0x40000001 EAX) that cannot follow a
 * vCPU to another host: a PV spinlock's kick (KVM_HC_KICK_CPU) only sets
 * a flag in the LAPIC it reaches, a parked copy's, with no interrupt
 * for the copy to catch, so a waiter halted with interrupts off on
 * another host would never wake; an async page fault's "page ready"
 * comes from the host the fault was taken on, after the vCPU may have
 * left it.
 */
#define CPUID_KVM_ASYNC_PF	  (1u << 4)
#define CPUID_KVM_PV_UNHALT	  (1u << 7)
#define CPUID_KVM_ASYNC_PF_VMEXIT (1u << 10)
#define CPUID_KVM_ASYNC_PF_INT	  (1u << 14)
#define CPUID_KVM_LOCAL                                                    \
	(CPUID_KVM_ASYNC_PF | CPUID_KVM_PV_UNHALT |                       \
	 CPUID_KVM_ASYNC_PF_VMEXIT | CPUID_KVM_ASYNC_PF_INT)

/*
 * Shape c (KVM_GET_SUPPORTED_CPUID's answer, room for CPUID_MAX_ENT
 * entries) as above. Returns 0, or -1 if an entry does not fit.
 */
int cpuid__shape(struct kvm_cpuid2 *c, const struct cpuid_opts *o);
/* The same VM's CPUID for vCPU id: its APIC IDs (leaves 1, 0xb, 0x1f,
 * 0x8000001e) and AMD core or (over_hosts, as cpuid__shape was told)
 * node ID. */
void cpuid__for_vcpu(struct kvm_cpuid2 *c, unsigned id, bool over_hosts);
struct kvm_cpuid_entry2 *cpuid__find(struct kvm_cpuid2 *c, uint32_t fn,
				     uint32_t index);

#endif
