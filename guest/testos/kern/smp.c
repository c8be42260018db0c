// SPDX-License-Identifier: MIT
/*
 * AP bring-up, one AP at a time like Linux. With a wakeup mailbox in the
 * MADT (a VM over hosts, where an INIT/SIPI must never be sent), through
 * it: APIC id and 64-bit entry, then the wakeup command, as Linux 6.1's
 * acpi_wakeup_cpu does. Without: copy the trampoline below 1 MiB, then
 * INIT and SIPI through the ICR; a second SIPI only if the AP has not
 * arrived. An AP that never arrives ends the bring-up (CPU ids stay
 * contiguous); ring 3 reports it.
 */
#include "kern.h"
#include "lib.h"
#include "x86.h"

#define ICR_INIT    0xc500 /* INIT, level, assert */
#define ICR_STARTUP 0x4600
#define SIPI_VECTOR (TRAMP_BASE >> 12)

extern char tramp_start[], tramp_end[], ap_mbox_entry[];

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
}

static bool start_by_sipi(uint32_t cpu, uint32_t apic)
{
	lapic_icr(apic, ICR_INIT);
	sipi(apic);
	if (wait_alive(cpu, 200 * MS))
		return true;
	sipi(apic);
	return wait_alive(cpu, 10000 * MS);
}

/* One mailbox request; false if the command is not taken within 10 s
 * (Linux would spin for ever). Every access is an exit to the VMM, and
 * volatile keeps them in program order, which x86 stores keep too. */
static bool mbox_request(uint16_t cmd, uint32_t apic, uint64_t entry)
{
	volatile uint8_t *mb = (volatile uint8_t *)shared.mp_wake;
	uint64_t t0 = rdtsc();

	*(volatile uint32_t *)(mb + MP_WAKE_APIC_ID) = apic;
	*(volatile uint64_t *)(mb + MP_WAKE_VECTOR) = entry;
	*(volatile uint16_t *)(mb + MP_WAKE_COMMAND) = cmd;
	while (*(volatile uint16_t *)(mb + MP_WAKE_COMMAND))
		if (rdtsc() - t0 > 10000 * MS)
			return false;
	return true;
}

static bool start_by_mailbox(uint32_t cpu, uint32_t apic)
{
	if (!mbox_request(MP_WAKE_CMD_WAKE, apic, (uint64_t)ap_mbox_entry)) {
		shared.boot_error = "the wakeup mailbox did not take a wakeup";
		return false;
	}
	/* A remote AP fetches the kernel's pages at first touch: slow. */
	return wait_alive(cpu, 10000 * MS);
}

/* A whole word of the command line (ring 0 has no argument parser). */
static bool cmdline_has(const char *word)
{
	size_t n = strlen(word);

	for (const char *p = shared.cmdline; *p;) {
		size_t len = 0;

		while (p[len] && p[len] != ' ')
			len++;
		if (len == n && !memcmp(p, word, n))
			return true;
		p += len;
		while (*p == ' ')
			p++;
	}
	return false;
}

/*
 * mailbox=abuse: requests the VMM must refuse (no such APIC id, the boot
 * CPU, an unknown command, an entry above the identity map) and a write
 * past the registers, before the real bring-up; each must still read
 * back as taken, and leave every AP startable. The VMM names each one.
 */
static void mbox_abuse(void)
{
	volatile uint8_t *mb = (volatile uint8_t *)shared.mp_wake;
	uint32_t apic = shared.cpu_apic[1];

	if (!mbox_request(MP_WAKE_CMD_WAKE, shared.ncpus_madt + 5,
			  (uint64_t)ap_mbox_entry) ||
	    !mbox_request(MP_WAKE_CMD_WAKE, shared.cpu_apic[0],
			  (uint64_t)ap_mbox_entry) ||
	    !mbox_request(7, apic, (uint64_t)ap_mbox_entry) ||
	    !mbox_request(MP_WAKE_CMD_WAKE, apic, 1ULL << 40))
		shared.boot_error = "the wakeup mailbox hung on a bad request";
	*(volatile uint64_t *)(mb + 0x800) = ~0ULL;
}

void smp_boot(void)
{
	uint32_t n = shared.ncpus_madt;
	bool abuse = shared.mp_wake && n > 1 && cmdline_has("mailbox=abuse");

	shared.smp_tsc = rdtsc();
	shared.cpu_alive[0] = 1;
	shared.ncpus = 1;
	if (n <= 1)
		return;
	if (abuse)
		mbox_abuse();
	if (!shared.mp_wake)
		memcpy((void *)TRAMP_BASE, tramp_start,
		       tramp_end - tramp_start);
	for (uint32_t cpu = 1; cpu < n; cpu++) {
		uint32_t apic = shared.cpu_apic[cpu];

		kstacks[cpu].pc.cpu = cpu;
		kstacks[cpu].pc.apic = apic;
		__atomic_store_n(&ap_boot_cpu, cpu, __ATOMIC_RELEASE);
		if (!(shared.mp_wake ? start_by_mailbox(cpu, apic)
				     : start_by_sipi(cpu, apic))) {
			if (!shared.boot_error)
				shared.boot_error = "an AP did not start";
			break;
		}
		shared.ncpus = cpu + 1;
	}
	/* A second wakeup of a running AP: refused, the AP unharmed. */
	if (abuse && shared.ncpus > 1 &&
	    !mbox_request(MP_WAKE_CMD_WAKE, shared.cpu_apic[1],
			  (uint64_t)ap_mbox_entry))
		shared.boot_error = "the wakeup mailbox hung on a rewake";
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
