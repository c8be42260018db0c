// SPDX-License-Identifier: MIT
/*
 * Local APIC in xAPIC (MMIO) mode: it needs no CPUID check or MSR write,
 * and under PVM the MMIO accesses go through KVM's in-kernel LAPIC anyway.
 */
#include "kern.h"
#include "x86.h"

#define APIC_ID	     0x20
#define APIC_TPR     0x80
#define APIC_SVR     0xf0
#define APIC_ICR_LO  0x300
#define APIC_ICR_HI  0x310
#define APIC_LVT_TMR 0x320
#define APIC_LVT0    0x350
#define APIC_LVT1    0x360
#define APIC_LVT_ERR 0x370
#define SVR_ENABLE   0x100
#define LVT_MASKED   0x10000
#define ICR_BUSY     0x1000

static inline void lapic_write(uint32_t reg, uint32_t v)
{
	mmio_write32(LAPIC_BASE + reg, v);
}

/* Software-enable the LAPIC (IPIs are accepted only then) and mask the
 * LVT inputs: KVM leaves the BSP's LINT0 in ExtINT mode at reset, and a
 * stray PIC interrupt would be an unexpected vector. */
void lapic_init(void)
{
	lapic_write(APIC_LVT0, LVT_MASKED);
	lapic_write(APIC_LVT1, LVT_MASKED);
	lapic_write(APIC_LVT_TMR, LVT_MASKED);
	lapic_write(APIC_LVT_ERR, LVT_MASKED);
	lapic_write(APIC_TPR, 0);
	lapic_write(APIC_SVR, SVR_ENABLE | VEC_SPUR);
}

#define APIC_TMR_INIT 0x380
#define APIC_TMR_DIV  0x3e0
#define TMR_DIV_1     0xb
#define LVT_PERIODIC  0x20000

/* A one-shot LAPIC timer interrupt (VEC_WAKE) after about `ns` (KVM's
 * LAPIC timer counts at 1 GHz): a halted CPU then wakes even when the IPI
 * meant to wake it cannot reach it, as from a vCPU on another host. */
void lapic_wake_in(uint32_t ns)
{
	lapic_write(APIC_TMR_DIV, TMR_DIV_1);
	lapic_write(APIC_LVT_TMR, VEC_WAKE);
	lapic_write(APIC_TMR_INIT, ns);
}

/* A periodic timer: VEC_TICK every `ns` (0: stopped). Its handler counts
 * timer_ticks, which the jump test reads to see time go on across hosts. */
void lapic_tick(uint32_t ns)
{
	lapic_write(APIC_TMR_DIV, TMR_DIV_1);
	lapic_write(APIC_LVT_TMR, ns ? LVT_PERIODIC | VEC_TICK : LVT_MASKED);
	lapic_write(APIC_TMR_INIT, ns);
}

uint32_t lapic_id(void)
{
	return mmio_read32(LAPIC_BASE + APIC_ID) >> 24;
}

void lapic_icr(uint32_t apic, uint32_t low)
{
	/* KVM delivers at once; the bound only guards odd LAPICs. */
	for (int i = 0;
	     i < 1000 && (mmio_read32(LAPIC_BASE + APIC_ICR_LO) & ICR_BUSY);
	     i++)
		;
	lapic_write(APIC_ICR_HI, apic << 24);
	lapic_write(APIC_ICR_LO, low);
}
