/* SPDX-License-Identifier: MIT */
/* Kernel-internal interfaces. Everything declared here runs at ring 0. */
#ifndef TESTOS_KERN_H
#define TESTOS_KERN_H

#include <stdbool.h>
#include <stdint.h>

#include "abi.h"
#include "shared.h"

struct tss {
	uint32_t reserved0;
	uint64_t rsp0, rsp1, rsp2;
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));

/* A TSS with an I/O permission bitmap allowing every port to ring 3 (the
 * bitmap is zero: RAM from the VMM is). PVM ignores RFLAGS.IOPL for ring-3
 * `in`/`out` but honours this bitmap. The last byte must be 0xff. */
#define IOMAP_BYTES (65536 / 8 + 1)

struct tss_io {
	struct tss tss;
	uint8_t iomap[IOMAP_BYTES];
} __attribute__((packed, aligned(16)));

/* Per-CPU data lives at the bottom of that CPU's kernel stack, so a handler
 * finds it from RSP alone: no GS base, no swapgs. */
struct percpu {
	uint32_t cpu;
	uint32_t apic;
	uint32_t in_fatal;
};

union kstack {
	struct percpu pc;
	uint8_t bytes[KSTACK_SIZE];
};

extern union kstack kstacks[MAX_CPUS];

static inline struct percpu *this_cpu(void)
{
	uint64_t rsp;

	__asm__ volatile("mov %%rsp, %0" : "=r"(rsp));
	return (struct percpu *)(rsp & ~(uint64_t)(KSTACK_SIZE - 1));
}

/* Saved by kern/isr.S; field order mirrors its pushes. */
struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};

struct desc_ptr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

/* entry.S */
void gdt_load(const struct desc_ptr *gdtr);
__attribute__((noreturn)) void enter_user(uint64_t cpu, uint64_t rip,
					  uint64_t rsp);
__attribute__((noreturn)) void halt_forever(void);
extern uint32_t ap_boot_cpu;

/* gdt.c, idt.c */
void gdt_init_cpu(struct percpu *pc);
void idt_init(void);
void idt_load(void);

/* trap.c */
void trap(struct trap_frame *f);
__attribute__((noreturn)) void kexit(uint32_t status);

/* kprint.c: serial output from ring 0 (slow: error paths only). */
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* lapic.c */
void lapic_init(void);
uint32_t lapic_id(void);
void lapic_wake_in(uint32_t ns);
void lapic_tick(uint32_t ns);
void lapic_icr(uint32_t apic, uint32_t low);

/* boot.c, acpi.c, clock.c, smp.c */
void boot_params_read(uint64_t bp);
void acpi_find_cpus(uint64_t rsdp);
void clock_init(void);
void smp_boot(void);
void cpu_enter_user(uint32_t cpu) __attribute__((noreturn));

/* Ring-3 symbols the kernel needs (user/ustart.S). */
extern char user_start[], uio_probe_insn[];
extern uint8_t ustacks[MAX_CPUS][USTACK_SIZE];

#endif
