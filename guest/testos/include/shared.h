/* SPDX-License-Identifier: MIT */
/*
 * Boot facts the kernel hands to ring 3, and the few words both sides
 * touch afterwards. It lives in the user region (user/shared.c) so ring 3
 * reads it directly instead of asking the slow emulated kernel.
 */
#ifndef TESTOS_SHARED_H
#define TESTOS_SHARED_H

#include <stdint.h>

#include "abi.h"

#define CMDLINE_MAX 2048
#define E820_MAX    128
#define E820_RAM    1

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

struct shared {
	uint32_t ncpus_madt; /* enabled local APICs in the MADT */
	uint32_t ncpus;	     /* CPUs brought up, ids 0..ncpus-1 */
	uint32_t cpu_apic[MAX_CPUS];
	uint64_t boot_tsc; /* TSC at kernel entry */
	uint64_t smp_tsc;  /* TSC when AP bring-up started */
	uint64_t user_tsc; /* TSC when CPU 0 entered ring 3 */
	/* kvmclock's TSC scale, if KVM filled it (version != 0). */
	uint32_t kvmclock_version;
	uint32_t kvmclock_mul;
	int8_t kvmclock_shift;
	uint64_t image_end; /* end of the loaded image and its bss */
	char cmdline[CMDLINE_MAX];
	uint32_t e820_count;
	struct e820_entry e820[E820_MAX];
	const char *test_name;	/* set by ring 3 for the kernel's reports */
	const char *boot_error; /* kernel-side problem to report, or 0 */
	/* 1 once ring 3 found that `in`/`out` work directly. */
	volatile uint32_t io_direct;
	volatile uint32_t io_probe_faulted;
	volatile uint32_t cpu_alive[MAX_CPUS]; /* kernel side reached */
	/* The MADT's wakeup mailbox (APs start through it), or 0 (INIT/SIPI). */
	uint64_t mp_wake;
};

extern struct shared shared;

/* ipi-pingpong: counted by the kernel's IPI handlers (kern/isr.S), which
 * answer a VEC_PING with a VEC_PONG to ipi_reply_apic. */
extern volatile uint64_t ipi_pings, ipi_pongs;
extern volatile uint32_t ipi_reply_apic;
/* SYS_TICK's timer interrupts, counted by the kernel (kern/isr.S). */
extern volatile uint64_t timer_ticks;

/* Linker-script symbols. */
extern char __kernel_start[], __kernel_end[], __user_start[], __user_end[];

#endif
