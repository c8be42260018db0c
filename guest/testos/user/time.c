// SPDX-License-Identifier: MIT
/*
 * TSC rate, in order of trust: `tsc_khz=` on the command line, CPUID leaf
 * 0x15 (crystal ratio), 0x16 (base MHz), 0x40000010 (hypervisor kHz), then
 * kvmclock's scale read by the kernel at boot. CPUID is read here at ring 3
 * (native under PVM). 0 means unknown.
 */
#include "test.h"
#include "user.h"

#define UNKNOWN_KHZ 4000000 /* for timeouts only: errs toward waiting */

static uint64_t khz;
static int khz_done;

static uint64_t from_cpuid(void)
{
	uint32_t r[4], max;

	cpuid(0, 0, r);
	max = r[0];
	if (max >= 0x15) {
		cpuid(0x15, 0, r);
		if (r[0] && r[1] && r[2])
			return (uint64_t)r[2] * r[1] / r[0] / 1000;
	}
	if (max >= 0x16) {
		cpuid(0x16, 0, r);
		if (r[0])
			return (uint64_t)r[0] * 1000;
	}
	cpuid(0x40000000, 0, r);
	if (r[0] >= 0x40000010 && r[0] < 0x40000100) {
		cpuid(0x40000010, 0, r);
		if (r[0])
			return r[0];
	}
	return 0;
}

/* pvclock: ns = ((cycles << shift) * mul) >> 32, shift may be negative. */
static uint64_t from_kvmclock(void)
{
	uint64_t mul = shared.kvmclock_mul;
	int shift = shared.kvmclock_shift;
	uint64_t num = 1000000ULL << 32;

	if (!shared.kvmclock_version || !mul)
		return 0;
	if (shift >= 0)
		return (num >> shift) / mul;
	if (shift >= -11)
		return (num << -shift) / mul;
	return (num / mul) << -shift;
}

uint64_t tsc_khz(void)
{
	if (!khz_done) {
		khz = targ("tsc_khz", 0);
		if (!khz)
			khz = from_cpuid();
		if (!khz)
			khz = from_kvmclock();
		khz_done = 1;
	}
	return khz;
}

const char *tsc_khz_source(void)
{
	size_t len;

	if (targ_str("tsc_khz", &len))
		return "cmdline";
	if (from_cpuid())
		return "cpuid";
	if (from_kvmclock())
		return "kvmclock";
	return "unknown";
}

uint64_t cycles_to_ns(uint64_t cycles)
{
	uint64_t k = tsc_khz();

	if (!k)
		return 0;
	/* Split to avoid overflow for long intervals. */
	return cycles / k * 1000000 + cycles % k * 1000000 / k;
}

uint64_t deadline_in_ms(uint64_t ms)
{
	uint64_t k = tsc_khz();

	return rdtsc() + ms * (k ? k : UNKNOWN_KHZ);
}

int past(uint64_t deadline)
{
	return (int64_t)(rdtsc() - deadline) > 0;
}
