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
	uint64_t entry;	    /* guest-physical 64-bit entry point */
	uint64_t load_lo;   /* lowest guest-physical byte loaded */
	uint64_t load_hi;   /* one past the highest byte loaded */
	int has_setup;	    /* a bzImage setup header was found */
	uint8_t setup[0x280 - 0x1f1]; /* setup header bytes 0x1f1..0x27f */
	const char *decompressor;     /* "xz", "lz4", "zstd", "gzip" or NULL */
};

/*
 * Load `len` bytes at `file` into `m`. On failure returns -1 and writes one
 * line naming the problem into err (no newline).
 */
int loader__load_kernel(struct mem *m, const void *file, size_t len,
			struct kernel_image *out, char *err, size_t errlen);

/* Place an initrd at the highest suitable RAM below 4 GiB (and above the
 * kernel). Returns -1 with err if it does not fit. */
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

/* Identity page tables (2 MiB pages over [0, 4 GiB)) at MEM_PML4 and the boot
 * GDT at MEM_GDT, as the 64-bit boot protocol expects them. */
void loader__boot_pagetables(struct mem *m);

#endif
