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
#define PTE_PWT 0x8ULL
#define PTE_PCD 0x10ULL
#define PTE_A  0x20ULL
#define PTE_D  0x40ULL
#define PTE_PS 0x80ULL /* 2 MiB page in a PD entry */

#define PT_END	(MEM_PML4 + 0x6000) /* PML4, PDPT, four PDs (one per GiB) */

_Static_assert(PT_END <= MEM_CMDLINE, "boot page tables overlap cmdline");
_Static_assert(MEM_GDT + LOADER_GDT_LIMIT + 1 <= MEM_ZEROPAGE, "GDT size");
_Static_assert(LOADER_AP_GDT + 0x1000 <= MEM_AP_BOOT_END, "AP GDT");
_Static_assert(MEM_AP_BOOT >= MEM_EBDA && MEM_AP_BOOT_END <= MEM_ACPI,
	       "AP tables outside the e820 hole or over the ACPI tables");

/* PML4 at pml4's page, PDPT and four PDs after it; upper: bits for every
 * level, leaf: for the 2 MiB pages only. */
static void identity_4g(uint64_t *pml4, uint64_t gpa, uint64_t upper,
			uint64_t leaf, uint64_t hole)
{
	uint64_t *pdpt = pml4 + 512, *pd = pml4 + 1024;
	unsigned i;

	memset(pml4, 0, 0x6000);
	pml4[0] = (gpa + 0x1000) | PTE_P | PTE_RW | upper;
	for (i = 0; i < 4; i++)
		pdpt[i] = (gpa + 0x2000 + i * 0x1000ULL) | PTE_P | PTE_RW |
			  upper;
	for (i = 0; i < 4 * 512; i++) {
		uint64_t a = (uint64_t)i << 21;

		pd[i] = a | PTE_P | PTE_RW | PTE_PS | upper | leaf |
			(a >= MEM_HOLE_START ? hole : 0);
	}
}

static void boot_gdt(uint64_t *gdt)
{
	memset(gdt, 0, LOADER_GDT_LIMIT + 1);
	gdt[LOADER_GDT_CODE / 8] = LOADER_DESC_CODE;
	gdt[LOADER_GDT_DATA / 8] = LOADER_DESC_DATA;
	gdt[LOADER_GDT_TSS / 8] = LOADER_DESC_TSS;
}

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

	if (!pml4 || !gdt)
		return;
	identity_4g(pml4, MEM_PML4, 0, 0, 0);
	boot_gdt(gdt);
}

/*
 * Long after boot, unlike the boot tables: the guest's own tables are
 * elsewhere by then, and these are only walked until the AP loads them.
 * A/D preset, since a page walk that sets them writes the page, which on
 * a member is a DSM write fault that takes the page from host 0.
 */
void loader__ap_pagetables(struct mem *m)
{
	uint64_t *pml4 = loader_ram(m, LOADER_AP_PML4, 0x6000);
	uint64_t *gdt = loader_ram(m, LOADER_AP_GDT, LOADER_GDT_LIMIT + 1);

	if (!pml4 || !gdt)
		return;
	identity_4g(pml4, LOADER_AP_PML4, PTE_A, PTE_D, PTE_PWT | PTE_PCD);
	boot_gdt(gdt);
}
