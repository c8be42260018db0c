// SPDX-License-Identifier: MIT
/*
 * TSC rate from kvmclock. Neither this host's CPUID (AMD: no leaves 0x15,
 * 0x16) nor the hypervisor leaf 0x40000010 gives it, but KVM's pvclock
 * page carries the exact TSC-to-ns scale KVM uses. Ring 3 turns it into
 * kHz (ring 0 should not divide when it need not) and also checks CPUID.
 */
#include "kern.h"
#include "x86.h"

#define MSR_KVM_SYSTEM_TIME_NEW	 0x4b564d01
#define KVM_FEATURE_CLOCKSOURCE2 (1u << 3)

struct pvclock {
	uint32_t version;
	uint32_t pad0;
	uint64_t tsc_timestamp;
	uint64_t system_time;
	uint32_t tsc_to_system_mul;
	int8_t tsc_shift;
	uint8_t flags;
	uint8_t pad[2];
};

static struct pvclock pvclock __attribute__((aligned(64)));

/* Only where KVM's signature and clocksource2 are advertised: an unknown
 * MSR would #GP, which is fatal at ring 0. */
static bool have_kvmclock(void)
{
	uint32_t r[4];

	cpuid(0x40000000, 0, r);
	if (r[0] < 0x40000001 || r[1] != 0x4b4d564b || r[2] != 0x564b4d56 ||
	    r[3] != 0x4d)
		return false;
	cpuid(0x40000001, 0, r);
	return r[0] & KVM_FEATURE_CLOCKSOURCE2;
}

void clock_init(void)
{
	if (!have_kvmclock())
		return;
	wrmsr(MSR_KVM_SYSTEM_TIME_NEW, (uint64_t)&pvclock | 1);
	shared.kvmclock_mul = pvclock.tsc_to_system_mul;
	shared.kvmclock_shift = pvclock.tsc_shift;
	shared.kvmclock_version = pvclock.version;
	/* Stop KVM from writing into kernel memory later. */
	wrmsr(MSR_KVM_SYSTEM_TIME_NEW, 0);
}
