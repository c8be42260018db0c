// SPDX-License-Identifier: MIT
/*
 * Kernel and initrd placement: picks the format of the kernel file, and the
 * helpers every loader file uses to touch guest RAM only where it is RAM.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vmm/loader_priv.h"

static const uint8_t elf_magic[4] = {0x7f, 'E', 'L', 'F'};

void loader_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void *loader_ram(const struct mem *m, uint64_t gpa, uint64_t len)
{
	if (!len || gpa + len < gpa)
		return NULL;
	return mem__ptr(m, gpa, len);
}

const char *loader_ram_why(const struct mem *m, uint64_t gpa, uint64_t len,
			   char *buf, size_t n)
{
	uint64_t end = gpa + len;

	if (end < gpa)
		snprintf(buf, n, "wraps around the address space");
	else if (end > MEM_HOLE_START && gpa < MEM_4G)
		snprintf(buf, n, "overlaps the MMIO hole [3 GiB, 4 GiB)");
	else
		snprintf(buf, n,
			 "outside guest RAM (%llu MiB): use a larger --mem",
			 MiB(m->size));
	return buf;
}

/*
 * A vmlinux has no setup header, but the kernel reads boot_params.hdr all
 * the same, so give it the header a bzImage of the same protocol would have.
 */
void loader_default_setup(struct kernel_image *k)
{
	struct setup_header h;

	memset(&h, 0, sizeof(h));
	h.boot_flag = 0xAA55;
	h.jump = 0x66eb;       /* "jmp 0x268": where a 2.15 header ends */
	h.header = 0x53726448; /* "HdrS" */
	h.version = 0x020f;
	h.type_of_loader = 0xff;
	h.loadflags = LOADED_HIGH;
	h.initrd_addr_max = 0x7fffffff; /* what 64-bit header.S says */
	h.kernel_alignment = 0x200000;
	h.xloadflags = XLF_KERNEL_64;
	h.cmdline_size = MEM_CMDLINE_MAX - 1;
	h.pref_address = k->load_lo;
	h.init_size = (uint32_t)(k->load_hi - k->load_lo);
	memset(k->setup, 0, sizeof(k->setup));
	loader_put_hdr(k, &h);
}

int loader__load_kernel(struct mem *m, const void *file, size_t len,
			struct kernel_image *out, char *err, size_t errlen)
{
	const uint8_t *f = file;

	memset(out, 0, sizeof(*out));
	if (!f || len < 4) {
		loader_err(err, errlen, "kernel: file too short (%zu bytes)",
			   f ? len : 0);
		return -1;
	}
	if (!memcmp(f, elf_magic, 4)) {
		out->kind = KERNEL_ELF;
		if (loader_elf_load(m, f, len, "kernel", out, err, errlen))
			return -1;
		loader_default_setup(out);
		return 0;
	}
	if (len >= 0x206 && f[0x1fe] == 0x55 && f[0x1ff] == 0xaa &&
	    !memcmp(f + 0x202, "HdrS", 4)) {
		out->kind = KERNEL_BZIMAGE;
		return loader_bzimage_load(m, f, len, out, err, errlen);
	}
	loader_err(err, errlen, "kernel: not an ELF or bzImage (bad magic)");
	return -1;
}

/* Highest page-aligned [addr, addr+len) in [MEM_HIGH, top) that keeps
 * clear of the kernel's footprint [lo, hi); 0 if there is none. */
static uint64_t initrd_slot(uint64_t top, uint64_t len, uint64_t lo,
			    uint64_t hi)
{
	uint64_t addr;

	if (len > top)
		return 0;
	addr = (top - len) & ~(PAGE_SIZE - 1);
	if (addr < hi && addr + len > lo) /* below the kernel, then */
		addr = lo >= len ? (lo - len) & ~(PAGE_SIZE - 1) : 0;
	return addr >= MEM_HIGH ? addr : 0;
}

int loader__load_initrd(struct mem *m, const struct kernel_image *k,
			const void *file, size_t len, uint64_t *gpa, char *err,
			size_t errlen)
{
	struct setup_header h;
	uint64_t amax, top, addr;
	void *dst = NULL;

	if (!file || !len) {
		loader_err(err, errlen, "initrd: empty file");
		return -1;
	}
	loader_get_hdr(k, &h);
	/* initrd_addr_max is the highest byte the initrd may occupy; a header
	 * without one gets the 64-bit kernels' own value. */
	amax = h.initrd_addr_max ? h.initrd_addr_max : 0x7fffffff;
	top = amax + 1 < m->lowmem ? amax + 1 : m->lowmem;
	addr = initrd_slot(top, len, k->load_lo, k->load_hi);
	if (addr)
		dst = loader_ram(m, addr, len);
	if (!dst) {
		loader_err(err, errlen,
			   "initrd: %zu KiB does not fit below 0x%llx (guest "
			   "RAM %llu MiB, initrd_addr_max 0x%llx) outside the "
			   "kernel's [0x%llx,0x%llx): use a larger --mem",
			   len >> 10, (unsigned long long)top, MiB(m->size),
			   (unsigned long long)amax,
			   (unsigned long long)k->load_lo,
			   (unsigned long long)k->load_hi);
		return -1;
	}
	memcpy(dst, file, len);
	*gpa = addr;
	return 0;
}
