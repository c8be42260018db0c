// SPDX-License-Identifier: MIT
/*
 * The zero page (struct boot_params) a 64-bit Linux entry point reads from
 * RSI: the kernel's setup header plus what a BIOS would have found (e820
 * map) and what the boot loader decided (command line, initrd, RSDP).
 */
#include <stddef.h>
#include <string.h>

#include "vmm/loader_priv.h"

#define E820_RAM      1
#define E820_RESERVED 2

_Static_assert(sizeof(struct boot_params) == 4096, "zero page size");
_Static_assert(offsetof(struct boot_params, acpi_rsdp_addr) == 0x70, "rsdp");
_Static_assert(offsetof(struct boot_params, e820_entries) == 0x1e8, "e820n");
_Static_assert(offsetof(struct boot_params, hdr) == 0x1f1, "hdr");
_Static_assert(offsetof(struct boot_params, e820_table) == 0x2d0, "e820");

static void e820_add(struct boot_params *bp, uint64_t addr, uint64_t size,
		     uint32_t type)
{
	struct boot_e820_entry *e = &bp->e820_table[bp->e820_entries++];

	e->addr = addr;
	e->size = size;
	e->type = type;
}

/* The layout mem.h promises: low RAM with the EBDA..1 MiB BIOS area taken
 * out (the kernel expects firmware there), then RAM above 4 GiB. */
static void e820_fill(const struct mem *m, struct boot_params *bp)
{
	e820_add(bp, 0, MEM_EBDA, E820_RAM);
	e820_add(bp, MEM_EBDA, MEM_HIGH - MEM_EBDA, E820_RESERVED);
	e820_add(bp, MEM_HIGH, m->lowmem - MEM_HIGH, E820_RAM);
	if (m->size > m->lowmem)
		e820_add(bp, MEM_4G, m->size - m->lowmem, E820_RAM);
}

static int check(struct mem *m, const struct setup_header *h,
		 const struct boot_info *bi, size_t cl_len, char *err,
		 size_t errlen)
{
	uint64_t limit = MEM_CMDLINE_MAX - 1;
	uint64_t amax = h->initrd_addr_max ? h->initrd_addr_max : 0x7fffffff;

	if (m->lowmem <= MEM_HIGH || !loader_ram(m, 0, MEM_HIGH)) {
		loader_err(err, errlen,
			   "boot_params: guest RAM (%llu MiB) must be more "
			   "than 1 MiB",
			   MiB(m->size));
		return -1;
	}
	if (h->version >= 0x0206 && h->cmdline_size < limit)
		limit = h->cmdline_size;
	if (cl_len > limit) {
		loader_err(err, errlen,
			   "cmdline: %zu bytes, the kernel accepts at most "
			   "%llu",
			   cl_len, (unsigned long long)limit);
		return -1;
	}
	if (bi->initrd_size &&
	    (!loader_ram(m, bi->initrd_gpa, bi->initrd_size) ||
	     bi->initrd_gpa + bi->initrd_size - 1 > amax)) {
		loader_err(
		    err, errlen,
		    "initrd: [0x%llx,0x%llx) is not RAM below "
		    "initrd_addr_max 0x%llx",
		    (unsigned long long)bi->initrd_gpa,
		    (unsigned long long)(bi->initrd_gpa + bi->initrd_size),
		    (unsigned long long)amax);
		return -1;
	}
	return 0;
}

int loader__boot_params(struct mem *m, const struct kernel_image *k,
			const struct boot_info *bi, char *err, size_t errlen)
{
	static const struct boot_info none;
	const char *cl;
	struct setup_header h;
	struct boot_params *bp;
	char *dst;
	size_t n;

	bi = bi ? bi : &none;
	cl = bi->cmdline ? bi->cmdline : "";
	n = strnlen(cl, MEM_CMDLINE_MAX);
	loader_get_hdr(k, &h);
	if (check(m, &h, bi, n, err, errlen))
		return -1;

	bp = loader_ram(m, MEM_ZEROPAGE, sizeof(*bp));
	memset(bp, 0, sizeof(*bp));
	memcpy((uint8_t *)bp + offsetof(struct boot_params, hdr), k->setup,
	       sizeof(k->setup));
	bp->hdr.type_of_loader = 0xff;
	/* No real-mode setup runs, so no heap; and nobody randomised the
	 * kernel's address, which KASLR_FLAG would tell the kernel. */
	bp->hdr.loadflags |= LOADED_HIGH;
	bp->hdr.loadflags &= ~(KASLR_FLAG | CAN_USE_HEAP);
	bp->hdr.cmd_line_ptr = (uint32_t)MEM_CMDLINE;
	bp->ext_cmd_line_ptr = (uint32_t)(MEM_CMDLINE >> 32);
	bp->hdr.ramdisk_image = (uint32_t)bi->initrd_gpa;
	bp->ext_ramdisk_image = (uint32_t)(bi->initrd_gpa >> 32);
	bp->hdr.ramdisk_size = (uint32_t)bi->initrd_size;
	bp->ext_ramdisk_size = (uint32_t)(bi->initrd_size >> 32);
	if (!bi->initrd_size)
		bp->hdr.ramdisk_image = bp->ext_ramdisk_image = 0;
	bp->acpi_rsdp_addr = bi->rsdp_gpa;
	e820_fill(m, bp);

	dst = loader_ram(m, MEM_CMDLINE, n + 1);
	memcpy(dst, cl, n);
	dst[n] = 0;
	return 0;
}
