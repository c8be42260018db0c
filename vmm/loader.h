/* SPDX-License-Identifier: MIT */
/*
 * Kernel loader: a vmlinux ELF or a bzImage into guest RAM, entered at its
 * 64-bit entry point (Linux 64-bit boot protocol), and the boot_params
 * ("zero page") that goes with it. Parsing is pure and bounds-checked: the
 * file is untrusted input (fuzzed in tests/fuzz/).
 */
#ifndef SLOS_LOADER_H
#define SLOS_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/mem.h"

enum kernel_kind { KERNEL_ELF = 1, KERNEL_BZIMAGE };

struct kernel_image {
	enum kernel_kind kind;
	uint64_t entry;	  /* guest-physical 64-bit entry point */
	uint64_t load_lo; /* lowest guest-physical byte loaded */
	/* One past the kernel's footprint: the highest byte loaded or, for a
	 * bzImage, start + init_size if that is higher (the kernel uses that
	 * much before it reads the e820 map, so nothing may go there). */
	uint64_t load_hi;
	int has_setup; /* a bzImage setup header was found */
	/* Setup header bytes 0x1f1..0x27f as boot_params wants them: the
	 * file's header if has_setup, else one the loader made up for a
	 * vmlinux (boot flag, "HdrS", version 2.15, cmdline_size...). */
	uint8_t setup[0x280 - 0x1f1];
	/* How the bzImage payload was unpacked on the host: "xz", "lz4",
	 * "zstd", "gzip", "none" (payload is a plain ELF), or NULL: format
	 * unknown, so the protected-mode code is loaded as is and decompresses
	 * itself in the guest (slow here: emulated). NULL for an ELF too. */
	const char *decompressor;
};

/* The boot GDT at MEM_GDT (loader__boot_pagetables): selectors and the raw
 * descriptors, for the vCPU code that loads the matching hidden segment
 * state. The TSS descriptor (16 bytes, base 0, limit 0x67, busy) exists only
 * so TR can hold something valid; no TSS is ever used at boot. */
#define LOADER_GDT_CODE	 0x10
#define LOADER_GDT_DATA	 0x18
#define LOADER_GDT_TSS	 0x20
#define LOADER_GDT_LIMIT 0x2f
#define LOADER_DESC_CODE 0x00af9b000000ffffULL
#define LOADER_DESC_DATA 0x00cf93000000ffffULL
#define LOADER_DESC_TSS	 0x00008b0000000067ULL

/* Largest decompressed bzImage payload accepted (also capped at the guest's
 * RAM size): a hostile file must not make the VMM allocate without bound. */
#define LOADER_DECOMP_MAX (512ULL << 20)

/*
 * Load `len` bytes at `file` into `m`. On failure returns -1 and writes one
 * line naming the problem into err (no newline).
 */
int loader__load_kernel(struct mem *m, const void *file, size_t len,
			struct kernel_image *out, char *err, size_t errlen);

/* Place an initrd at the highest page-aligned RAM that ends below
 * min(4 GiB, initrd_addr_max + 1), outside [load_lo, load_hi) and above
 * 1 MiB. Returns -1 with err if it does not fit. */
int loader__load_initrd(struct mem *m, const struct kernel_image *k,
			const void *file, size_t len, uint64_t *gpa, char *err,
			size_t errlen);

struct boot_info {
	const char *cmdline;
	uint64_t initrd_gpa, initrd_size;
	uint64_t rsdp_gpa;
};

/* Fill the zero page at MEM_ZEROPAGE: setup header, e820 map from `m`,
 * command line at MEM_CMDLINE, initrd, ACPI RSDP. */
int loader__boot_params(struct mem *m, const struct kernel_image *k,
			const struct boot_info *bi, char *err, size_t errlen);

/* Identity page tables (2 MiB pages over [0, 4 GiB)) at MEM_PML4: PML4,
 * PDPT at MEM_PML4 + 0x1000, four PDs at MEM_PML4 + 0x2000..0x5fff; and the
 * boot GDT at MEM_GDT, as the 64-bit boot protocol expects them. */
void loader__boot_pagetables(struct mem *m);

/*
 * Over hosts: what an AP started through the ACPI mailbox begins on
 * (docs/jumps.md), in [MEM_AP_BOOT, MEM_AP_BOOT_END), which the guest
 * never reuses (e820 reserved): identity page tables over [0, 4 GiB) in
 * 2 MiB pages with Accessed and Dirty set (a page walk then writes
 * nothing, so no DSM write fault on a member), the hole uncached; and a
 * GDT with the boot GDT's descriptors.
 */
#define LOADER_AP_PML4 MEM_AP_BOOT
#define LOADER_AP_GDT  (MEM_AP_BOOT + 0x6000)
void loader__ap_pagetables(struct mem *m);

#endif
