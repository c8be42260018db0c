// SPDX-License-Identifier: MIT
/* Data the kernel fills for ring 3, placed in the user region. */
#include "shared.h"

struct shared shared;
volatile uint64_t ipi_pings, ipi_pongs;
volatile uint64_t timer_ticks;
volatile uint32_t ipi_reply_apic;
uint8_t ustacks[MAX_CPUS][USTACK_SIZE] __attribute__((aligned(4096)));
