// SPDX-License-Identifier: MIT
/*
 * AP bring-up, one AP at a time like Linux: copy the trampoline below
 * 1 MiB, then INIT and SIPI through the ICR; a second SIPI only if the AP
 * has not arrived. Each SIPI is also announced on PORT_AP_START. An AP
 * that never arrives ends the bring-up (CPU ids stay contiguous); ring 3
 * reports it.
 */
#include "kern.h"
#include "lib.h"
#include "x86.h"

#define ICR_INIT    0xc500 /* INIT, level, assert */
#define ICR_STARTUP 0x4600
#define SIPI_VECTOR (TRAMP_BASE >> 12)

extern char tramp_start[], tramp_end[];

/* Timeouts in TSC cycles; the rate is not known yet at ring 0, so assume a
 * fast 4 GHz, which only makes waits longer on slower CPUs. */
#define MS 4000000ULL

static bool wait_alive(uint32_t cpu, uint64_t cycles)
{
	uint64_t t0 = rdtsc();

	while (!*(volatile uint32_t *)&shared.cpu_alive[cpu])
		if (rdtsc() - t0 > cycles)
			return false;
	return true;
}

static void sipi(uint32_t apic)
{
	lapic_icr(apic, ICR_STARTUP | SIPI_VECTOR);
	/* An IPI cannot reach an AP on another host: its VMM starts it. */
	outl(PORT_AP_START, apic | SIPI_VECTOR << 16);
}

void smp_boot(void)
{
	uint32_t n = shared.ncpus_madt;

	shared.smp_tsc = rdtsc();
	shared.cpu_alive[0] = 1;
	shared.ncpus = 1;
	if (n <= 1)
		return;
	memcpy((void *)TRAMP_BASE, tramp_start, tramp_end - tramp_start);
	for (uint32_t cpu = 1; cpu < n; cpu++) {
		uint32_t apic = shared.cpu_apic[cpu];

		kstacks[cpu].pc.cpu = cpu;
		kstacks[cpu].pc.apic = apic;
		__atomic_store_n(&ap_boot_cpu, cpu, __ATOMIC_RELEASE);
		lapic_icr(apic, ICR_INIT);
		sipi(apic);
		if (!wait_alive(cpu, 200 * MS)) {
			sipi(apic);
			/* A remote AP fetches the trampoline and kernel pages
			 * over the network at first touch, emulated: slow. */
			if (!wait_alive(cpu, 10000 * MS)) {
				shared.boot_error = "an AP did not start";
				break;
			}
		}
		shared.ncpus = cpu + 1;
	}
}

void ap_main(uint32_t cpu);

void ap_main(uint32_t cpu)
{
	struct percpu *pc = &kstacks[cpu].pc;

	gdt_init_cpu(pc);
	idt_load();
	lapic_init();
	if (lapic_id() != pc->apic)
		shared.boot_error = "an AP's APIC id differs from the MADT";
	__atomic_store_n(&shared.cpu_alive[cpu], 1, __ATOMIC_RELEASE);
	cpu_enter_user(cpu);
}
