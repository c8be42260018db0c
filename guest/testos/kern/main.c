// SPDX-License-Identifier: MIT
/*
 * Kernel main: the least ring-0 work that lets ring 3 run the tests, since
 * every kernel instruction is emulated under PVM. No bss clearing: the VMM
 * hands over zeroed RAM, and the page tables are static data.
 */
#include "kern.h"
#include "x86.h"

union kstack kstacks[MAX_CPUS] __attribute__((aligned(KSTACK_SIZE)));
uint32_t ap_boot_cpu;

extern uint64_t pml4[];

void kmain(uint64_t boot_params);

void kmain(uint64_t boot_params)
{
	struct percpu *pc = &kstacks[0].pc;

	shared.boot_tsc = rdtsc();
	pc->cpu = 0;
	gdt_init_cpu(pc);
	idt_init();
	idt_load();
	__asm__ volatile("mov %0, %%cr3" : : "r"((uint64_t)pml4) : "memory");
	boot_params_read(boot_params);
	lapic_init();
	pc->apic = lapic_id();
	clock_init();
	smp_boot();
	cpu_enter_user(0);
}

void cpu_enter_user(uint32_t cpu)
{
	enter_user(cpu, (uint64_t)user_start,
		   (uint64_t)&ustacks[cpu][USTACK_SIZE]);
}
