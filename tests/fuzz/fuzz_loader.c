// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the kernel loader: arbitrary bytes as a kernel file
 * (ELF, bzImage with any payload), then initrd placement, boot_params with a
 * fuzzed command line, and the page tables, over small guest RAM.
 *
 * Input: byte 0 picks the RAM layout, bytes 1-2 (little-endian) the
 * command line length L, byte 3 the initrd (bit 0: load one; bits 1-6:
 * its size in 64 KiB units, plus one byte); then the kernel file, whose
 * last L bytes are taken as the command line instead. gen_corpus.c writes
 * seeds in this layout.
 *
 * Guest RAM is a PROT_NONE reservation with only the RAM ranges accessible,
 * so a write anywhere else faults at once instead of going unnoticed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "vmm/loader.h"

struct layout {
	uint64_t low, high; /* RAM at [0, low) and [4 GiB, 4 GiB + high) */
};

static const struct layout layouts[] = {
    {2 << 20, 0},  {8 << 20, 0},	 {24 << 20, 0},
    {64 << 20, 0}, {32 << 20, 16 << 20}, {(1 << 20) + 4096, 0},
};
#define NLAYOUTS (sizeof(layouts) / sizeof(layouts[0]))

static struct mem mems[NLAYOUTS];
static uint8_t initrd[(63 << 16) + 1];

static struct mem *get_mem(unsigned i)
{
	const struct layout *l = &layouts[i];
	struct mem *m = &mems[i];
	uint64_t top = l->high ? MEM_4G + l->high : l->low;

	if (m->hva)
		return m;
	m->hva = mmap(NULL, top, PROT_NONE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m->hva == MAP_FAILED)
		abort();
	if (mprotect(m->hva, l->low, PROT_READ | PROT_WRITE) ||
	    (l->high &&
	     mprotect(m->hva + MEM_4G, l->high, PROT_READ | PROT_WRITE)))
		abort();
	m->size = l->low + l->high;
	m->lowmem = l->low;
	m->top = top;
	return m;
}

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c))                                                      \
			__builtin_trap();                                      \
	} while (0)

/* FUZZ_VERBOSE=1 prints each rejection, to see how far seeds get. */
static void check_err(const char *err)
{
	static int verbose = -1;

	CHECK(strnlen(err, 256) < 256);
	CHECK(!strchr(err, '\n'));
	CHECK(err[0]);
	if (verbose < 0)
		verbose = getenv("FUZZ_VERBOSE") != NULL;
	if (verbose)
		fprintf(stderr, "rejected: %s\n", err);
}

static void boot(struct mem *m, const struct kernel_image *k, uint8_t rdflags,
		 const char *cl)
{
	struct boot_info bi = {.cmdline = cl, .rsdp_gpa = MEM_ACPI};
	size_t rdlen = ((size_t)(rdflags >> 1 & 63) << 16) + 1;
	char err[256];
	uint64_t gpa = 0;

	if (rdflags & 1) {
		err[0] = 0;
		if (loader__load_initrd(m, k, initrd, rdlen, &gpa, err,
					sizeof(err)) == 0) {
			CHECK(gpa >= k->load_hi || gpa + rdlen <= k->load_lo);
			CHECK(gpa >= MEM_HIGH);
			CHECK(gpa % PAGE_SIZE == 0);
			CHECK(gpa + rdlen <= m->lowmem);
			CHECK(gpa + rdlen <= 0x80000000);
			bi.initrd_gpa = gpa;
			bi.initrd_size = rdlen;
		} else {
			check_err(err);
		}
	}
	err[0] = 0;
	if (loader__boot_params(m, k, &bi, err, sizeof(err)) == 0) {
		const uint8_t *zp = mem__ptr(m, MEM_ZEROPAGE, 4096);

		CHECK(zp[0x210] == 0xff);
		CHECK(zp[0x1e8] >= 3 && zp[0x1e8] <= 4);
		CHECK(!strcmp(mem__ptr(m, MEM_CMDLINE, 1), cl));
	} else {
		check_err(err);
	}
	loader__boot_pagetables(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kernel_image k;
	struct mem *m;
	size_t cl_len, klen;
	char err[256], *cl;

	if (size < 4)
		return 0;
	m = get_mem(data[0] % NLAYOUTS);
	cl_len = data[1] | (size_t)data[2] << 8;
	klen = size - 4;
	if (cl_len > klen)
		cl_len = klen;
	klen -= cl_len;

	/* Exact-size copies so ASan sees any read past either end. */
	uint8_t *kern = malloc(klen ? klen : 1);
	memcpy(kern, data + 4, klen);
	cl = malloc(cl_len + 1);
	memcpy(cl, data + 4 + klen, cl_len);
	cl[cl_len] = 0;

	err[0] = 0;
	if (loader__load_kernel(m, kern, klen, &k, err, sizeof(err)) == 0) {
		CHECK(k.kind == KERNEL_ELF || k.kind == KERNEL_BZIMAGE);
		CHECK(k.load_lo >= MEM_HIGH && k.load_lo < k.load_hi);
		CHECK(k.entry >= k.load_lo && k.entry < k.load_hi);
		CHECK(mem__is_ram(m, k.entry, 1));
		CHECK(k.has_setup == (k.kind == KERNEL_BZIMAGE));
		boot(m, &k, data[3], cl);
	} else {
		check_err(err);
	}
	free(kern);
	free(cl);
	return 0;
}
