// SPDX-License-Identifier: MIT
/*
 * The IDT, shared by all CPUs. Every vector gets a stub (unknown ones are
 * reported as fatal instead of silently hanging); a few get fast paths.
 * All are interrupt gates, so the kernel always runs with IF=0.
 */
#include "kern.h"

struct idt_gate {
	uint16_t off0;
	uint16_t sel;
	uint8_t ist;
	uint8_t type;
	uint16_t off1;
	uint32_t off2;
	uint32_t zero;
};

#define GATE_INTR 0x8e /* present, DPL 0, 64-bit interrupt gate */

extern char isr_stubs[], ud_entry[], ping_entry[], pong_entry[], wake_entry[],
    tick_entry[], spurious_entry[];

static struct idt_gate idt[256] __attribute__((aligned(16)));

static void set_gate(unsigned vec, const void *fn)
{
	uint64_t a = (uint64_t)fn;

	idt[vec] = (struct idt_gate){
	    .off0 = (uint16_t)a,
	    .sel = SEL_KCODE,
	    .type = GATE_INTR,
	    .off1 = (uint16_t)(a >> 16),
	    .off2 = (uint32_t)(a >> 32),
	};
}

void idt_init(void)
{
	for (unsigned v = 0; v < 256; v++)
		set_gate(v, isr_stubs + 16 * v);
	set_gate(VEC_UD, ud_entry);
	set_gate(VEC_PING, ping_entry);
	set_gate(VEC_PONG, pong_entry);
	set_gate(VEC_WAKE, wake_entry);
	set_gate(VEC_TICK, tick_entry);
	set_gate(VEC_SPUR, spurious_entry);
}

void idt_load(void)
{
	struct desc_ptr idtr = {sizeof(idt) - 1, (uint64_t)idt};

	__asm__ volatile("lidt %0" : : "m"(idtr));
}
