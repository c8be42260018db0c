// SPDX-License-Identifier: MIT
/*
 * What the 64-bit boot protocol requires to be in place at the entry point:
 * paging on with the kernel, zero page and command line identity-mapped,
 * and a GDT with flat __BOOT_CS (0x10) and __BOOT_DS (0x18).
 */
#include <string.h>

#include "vmm/loader_priv.h"

#define PTE_P  0x1ULL
#define PTE_RW 0x2ULL
#define PTE_PS 0x80ULL /* 2 MiB page in a PD entry */

#define PT_PDPT (MEM_PML4 + 0x1000)
#define PT_PD	(MEM_PML4 + 0x2000) /* four PDs, one per GiB */
#define PT_END	(MEM_PML4 + 0x6000)

_Static_assert(PT_END <= MEM_CMDLINE, "boot page tables overlap cmdline");
_Static_assert(MEM_GDT + LOADER_GDT_LIMIT + 1 <= MEM_ZEROPAGE, "GDT size");

/*
 * 2 MiB pages rather than 1 GiB ones: 1 GiB pages are an optional CPU
 * feature (pdpe1gb) and the guest's CPUID is whatever the host has.
 * Everything below 4 GiB is mapped, MMIO hole included, so the kernel may
 * touch anything low before its own page tables exist.
 */
void loader__boot_pagetables(struct mem *m)
{
	uint64_t *pml4 = loader_ram(m, MEM_PML4, PT_END - MEM_PML4);
	uint64_t *gdt = loader_ram(m, MEM_GDT, LOADER_GDT_LIMIT + 1);
	uint64_t *pdpt, *pd;
	unsigned i;

	if (!pml4 || !gdt)
		return;
	memset(pml4, 0, PT_END - MEM_PML4);
	pdpt = pml4 + 512;
	pd = pml4 + 1024;
	pml4[0] = PT_PDPT | PTE_P | PTE_RW;
	for (i = 0; i < 4; i++)
		pdpt[i] = (PT_PD + i * 0x1000ULL) | PTE_P | PTE_RW;
	for (i = 0; i < 4 * 512; i++)
		pd[i] = ((uint64_t)i << 21) | PTE_P | PTE_RW | PTE_PS;

	memset(gdt, 0, LOADER_GDT_LIMIT + 1);
	gdt[LOADER_GDT_CODE / 8] = LOADER_DESC_CODE;
	gdt[LOADER_GDT_DATA / 8] = LOADER_DESC_DATA;
	gdt[LOADER_GDT_TSS / 8] = LOADER_DESC_TSS;
}
