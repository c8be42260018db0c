/* SPDX-License-Identifier: MIT */
/*
 * Guest-physical memory of one VM on one host.
 *
 * The whole guest-physical span [0, top) is one contiguous host mapping, so a
 * guest-physical address converts to a host address by adding `hva`. RAM
 * below 3 GiB is at [0, lowmem); the rest of RAM starts at 4 GiB, leaving the
 * 32-bit MMIO hole [MEM_HOLE_START, 4 GiB) unbacked (PROT_NONE, no memslot).
 * RAM is private anonymous memory without huge pages: the fault engine
 * (vmm/fault.h) serves its missing pages through userfaultfd, and dropping a
 * page with MADV_DONTNEED makes the next guest access fault again, which is
 * what snapshot restore and the DSM build on.
 */
#ifndef SLOS_MEM_H
#define SLOS_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MEM_HOLE_START 0xC0000000ULL
#define MEM_4G	       0x100000000ULL
#define PAGE_SIZE      4096ULL

/* Fixed low-memory layout the loader and the boot code agree on. */
#define MEM_GDT	      0x0500ULL	 /* boot GDT: 0x10 code64, 0x18 data */
#define MEM_ZEROPAGE  0x7000ULL	 /* struct boot_params */
#define MEM_PML4      0x9000ULL	 /* boot page tables 0x9000-0xefff */
#define MEM_CMDLINE   0x20000ULL /* kernel command line, < 64 KiB */
#define MEM_CMDLINE_MAX 0x10000ULL
#define MEM_EBDA      0x9fc00ULL /* [EBDA, 1 MiB) is reserved in e820 */
#define MEM_VMGENID   0x9ff00ULL /* 16-byte VM generation ID (vmm/vmgenid.h) */
/* Over hosts: the page tables and GDT an AP started through the ACPI
 * mailbox begins on (loader__ap_pagetables); inside the e820-reserved
 * [EBDA, 1 MiB), so the guest never reuses them. */
#define MEM_AP_BOOT   0xD0000ULL
#define MEM_AP_BOOT_END 0xD7000ULL
#define MEM_ACPI      0xE0000ULL /* ACPI tables, up to 1 MiB */
#define MEM_ACPI_MAX  0x20000ULL
#define MEM_HIGH      0x100000ULL

struct mem {
	uint8_t *hva;	 /* host address of guest-physical 0 */
	uint64_t size;	 /* bytes of RAM */
	uint64_t lowmem; /* bytes of RAM below MEM_HOLE_START */
	uint64_t top;	 /* end of the guest-physical span */
};

int mem__init(struct mem *m, uint64_t size);
void mem__exit(struct mem *m);
/* Host pointer for [gpa, gpa+len) if it is all RAM, else NULL. */
void *mem__ptr(const struct mem *m, uint64_t gpa, uint64_t len);
bool mem__is_ram(const struct mem *m, uint64_t gpa, uint64_t len);

#endif
