// SPDX-License-Identifier: MIT
/* One GDT for all CPUs: fixed code/data segments, then a TSS per CPU. */
#include "kern.h"

#define DESC_KCODE32 0x00cf9b000000ffffULL
#define DESC_KCODE64 0x00af9b000000ffffULL
#define DESC_KDATA   0x00cf93000000ffffULL /* also the trampoline's data */
#define DESC_UCODE32 0x00cffb000000ffffULL
#define DESC_UDATA   0x00cff3000000ffffULL
#define DESC_UCODE64 0x00affb000000ffffULL
#define TSS_AVAIL    0x89ULL

uint64_t gdt[GDT_FIXED + 2 * MAX_CPUS] __attribute__((aligned(64))) = {
    [SEL_KCODE32 / 8] = DESC_KCODE32, [SEL_KCODE / 8] = DESC_KCODE64,
    [SEL_KDATA / 8] = DESC_KDATA,     [SEL_UCODE32 / 8] = DESC_UCODE32,
    [SEL_UDATA / 8] = DESC_UDATA,     [SEL_UCODE / 8] = DESC_UCODE64,
};

static struct tss_io tss_io[MAX_CPUS];

/* Loads the GDT, then this CPU's TSS: ring-3 traps switch to rsp0, the
 * top of this CPU's kernel stack; the I/O bitmap opens every port. */
void gdt_init_cpu(struct percpu *pc)
{
	struct desc_ptr gdtr = {sizeof(gdt) - 1, (uint64_t)gdt};
	struct tss_io *t = &tss_io[pc->cpu];
	uint64_t base = (uint64_t)t;
	uint64_t limit = sizeof(*t) - 1;
	unsigned slot = GDT_FIXED + 2 * pc->cpu;
	uint16_t sel = (uint16_t)(SEL_TSS0 + 16 * pc->cpu);

	t->tss.rsp0 = (uint64_t)pc + KSTACK_SIZE;
	t->tss.iomap_base = sizeof(t->tss);
	t->iomap[IOMAP_BYTES - 1] = 0xff;
	gdt[slot] = (limit & 0xffff) | ((base & 0xffffff) << 16) |
		    (TSS_AVAIL << 40) | (((base >> 24) & 0xff) << 56);
	gdt[slot + 1] = base >> 32;
	gdt_load(&gdtr);
	__asm__ volatile("ltr %0" : : "r"(sel));
}
