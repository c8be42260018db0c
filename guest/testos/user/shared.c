// SPDX-License-Identifier: MIT
/* Data the kernel fills for ring 3, placed in the user region. */
#include "shared.h"

struct shared shared;
/* Each ipi-pingpong counter alone on its page: over hosts CPU 1's handler
 * writes one and CPU 0's the other, and a page they shared would cross the
 * network every round. */
__asm__(".pushsection .bss.ipi_counters, \"aw\", @nobits\n"
	".balign 4096\n"
	".globl ipi_pings\n"
	"ipi_pings: .skip 4096\n"
	".globl ipi_pongs\n"
	"ipi_pongs: .skip 4096\n"
	".popsection");
volatile uint64_t timer_ticks;
volatile uint32_t ipi_reply_apic;
uint8_t ustacks[MAX_CPUS][USTACK_SIZE] __attribute__((aligned(4096)));
