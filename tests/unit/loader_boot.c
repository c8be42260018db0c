// SPDX-License-Identifier: MIT
/*
 * What the kernel finds at its entry: boot_params at the offsets of Linux's
 * boot protocol (checked by raw offset, not through the struct the loader
 * uses), the e820 map, command line, initrd placement, page tables and GDT.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "tests/fuzz/kimg.h"
#include "vmm/loader.h"

static struct mem m;
static struct kernel_image k;
static char err[256];

static void fini(void)
{
	mem__exit(&m);
}

static void boot(uint64_t ram, int bz)
{
	struct kbuf b = {0};

	cr_assert_eq(mem__init(&m, ram), 0);
	if (bz)
		cr_assert_eq(kimg_tiny_bzimage(&b, KIMG_ZSTD, NULL), 0);
	else
		kimg_tiny_elf(&b);
	cr_assert_eq(loader__load_kernel(&m, b.p, b.len, &k, err, sizeof(err)),
		     0, "%s", err);
	kb_free(&b);
}

static uint64_t zp(size_t off, int n)
{
	const uint8_t *p = mem__ptr(&m, MEM_ZEROPAGE + off, (uint64_t)n);
	uint64_t v = 0;

	while (n--)
		v = v << 8 | p[n];
	return v;
}

static int params(const struct boot_info *bi)
{
	err[0] = 0;
	return loader__boot_params(&m, &k, bi, err, sizeof(err));
}

static void e820(unsigned i, uint64_t addr, uint64_t size, uint32_t type)
{
	size_t e = 0x2d0 + i * 20;

	cr_assert_eq(zp(e, 8), addr, "e820[%u].addr 0x%llx", i,
		     (unsigned long long)zp(e, 8));
	cr_assert_eq(zp(e + 8, 8), size, "e820[%u].size 0x%llx", i,
		     (unsigned long long)zp(e + 8, 8));
	cr_assert_eq(zp(e + 16, 4), type, "e820[%u].type", i);
}

TestSuite(loader_boot, .fini = fini);

Test(loader_boot, zero_page_for_vmlinux)
{
	struct boot_info bi = {.cmdline = "console=ttyS0 quiet",
			       .rsdp_gpa = 0xe0000};

	boot(512 << 20, 0);
	memset(mem__ptr(&m, MEM_ZEROPAGE, 4096), 0x77, 4096);
	cr_assert_eq(params(&bi), 0, "%s", err);
	cr_assert_eq(zp(0x70, 8), 0xe0000);		 /* acpi_rsdp_addr */
	cr_assert_eq(zp(0x1ef, 1), 0);			 /* sentinel */
	cr_assert_eq(zp(0x1fe, 2), 0xaa55);		 /* boot_flag */
	cr_assert_eq(zp(0x202, 4), 0x53726448);		 /* "HdrS" */
	cr_assert_eq(zp(0x206, 2), 0x020f);		 /* version */
	cr_assert_eq(zp(0x210, 1), 0xff);		 /* type_of_loader */
	cr_assert_eq(zp(0x211, 1), 0x01);		 /* loadflags */
	cr_assert_eq(zp(0x218, 4), 0);			 /* ramdisk_image */
	cr_assert_eq(zp(0x21c, 4), 0);			 /* ramdisk_size */
	cr_assert_eq(zp(0x228, 4), MEM_CMDLINE);	 /* cmd_line_ptr */
	cr_assert_eq(zp(0x22c, 4), 0x7fffffff);		 /* initrd_addr_max */
	cr_assert_eq(zp(0x236, 2) & 1, 1);		 /* XLF_KERNEL_64 */
	cr_assert_eq(zp(0x238, 4), MEM_CMDLINE_MAX - 1); /* cmdline_size */
	cr_assert_eq(zp(0xc8, 4), 0);			 /* ext_cmd_line_ptr */
	cr_assert_eq(zp(0x1e0, 4), 0);			 /* alt_mem_k */
	cr_assert_eq(zp(0xfff, 1), 0);			 /* all cleared first */
	cr_assert_str_eq((char *)mem__ptr(&m, MEM_CMDLINE, 20),
			 "console=ttyS0 quiet");
}

Test(loader_boot, zero_page_for_bzimage)
{
	struct boot_info bi = {
	    .cmdline = "x", .initrd_gpa = 0x1f000000, .initrd_size = 0x123456};
	size_t i;

	boot(512 << 20, 1);
	cr_assert_eq(params(&bi), 0, "%s", err);
	cr_assert_eq(zp(0x1f1, 1), 0);	  /* setup_sects, from the file */
	cr_assert_eq(zp(0x201, 1), 0x6a); /* jump */
	cr_assert_eq(zp(0x210, 1), 0xff);
	cr_assert_eq(zp(0x234, 1), 1); /* relocatable_kernel */
	cr_assert_eq(zp(0x238, 4), 2047);
	cr_assert_eq(zp(0x258, 8), 0x100000); /* pref_address */
	cr_assert_eq(zp(0x260, 4), 4 << 20);  /* init_size */
	cr_assert_eq(zp(0x218, 4), 0x1f000000);
	cr_assert_eq(zp(0x21c, 4), 0x123456);
	cr_assert_eq(zp(0xc0, 4), 0); /* ext_ramdisk_image */
	cr_assert_eq(zp(0xc4, 4), 0); /* ext_ramdisk_size */
	/* the file's setup code after the header (0xcc) stays out */
	for (i = 0x26c; i < 0x290; i++)
		cr_assert_eq(zp(i, 1), 0, "zero page byte 0x%zx", i);
}

Test(loader_boot, e820_512m)
{
	boot(512 << 20, 0);
	cr_assert_eq(params(NULL), 0, "%s", err);
	cr_assert_eq(zp(0x1e8, 1), 3);
	e820(0, 0, 0x9fc00, 1);
	e820(1, 0x9fc00, 0x100000 - 0x9fc00, 2);
	e820(2, 0x100000, (512 << 20) - 0x100000, 1);
	cr_assert_eq(zp(0x2d0 + 3 * 20, 8), 0);
	cr_assert_eq(*(char *)mem__ptr(&m, MEM_CMDLINE, 1), 0);
}

Test(loader_boot, e820_5g_has_hole)
{
	boot(5ULL << 30, 0);
	cr_assert_eq(params(NULL), 0, "%s", err);
	cr_assert_eq(zp(0x1e8, 1), 4);
	e820(0, 0, 0x9fc00, 1);
	e820(1, 0x9fc00, 0x60400, 2);
	e820(2, 0x100000, 0xc0000000 - 0x100000, 1);
	e820(3, 0x100000000, 2ULL << 30, 1);
}

Test(loader_boot, ram_too_small)
{
	boot(2 << 20, 0);
	m.lowmem = m.size = 1 << 20; /* as if there were only 1 MiB */
	cr_assert_eq(params(NULL), -1);
	cr_assert(strstr(err, "must be more than 1 MiB"), "%s", err);
}

Test(loader_boot, cmdline_limits)
{
	static char cl[MEM_CMDLINE_MAX + 1];
	struct boot_info bi = {.cmdline = cl};

	boot(64 << 20, 0);
	memset(cl, 'a', MEM_CMDLINE_MAX - 1);
	cr_assert_eq(params(&bi), 0, "%s", err);
	cr_assert_eq(strlen(mem__ptr(&m, MEM_CMDLINE, MEM_CMDLINE_MAX)),
		     MEM_CMDLINE_MAX - 1);
	cl[MEM_CMDLINE_MAX - 1] = 'a';
	cr_assert_eq(params(&bi), -1);
	cr_assert_str_eq(err, "cmdline: 65536 bytes, the kernel accepts at "
			      "most 65535");
	cl[MEM_CMDLINE_MAX] = 'a'; /* unterminated within the limit: same */
	cr_assert_eq(params(&bi), -1);
	mem__exit(&m);

	/* a bzImage's cmdline_size (2047) is the tighter limit */
	boot(64 << 20, 1);
	memset(cl, 0, sizeof(cl));
	memset(cl, 'b', 2047);
	cr_assert_eq(params(&bi), 0, "%s", err);
	cl[2047] = 'b';
	cr_assert_eq(params(&bi), -1);
	cr_assert_str_eq(err, "cmdline: 2048 bytes, the kernel accepts at "
			      "most 2047");
}

Test(loader_boot, initrd_placement)
{
	static uint8_t rd[(1 << 20) + 123];
	uint64_t gpa = 0;

	memset(rd, 0x42, sizeof(rd));
	boot(512 << 20, 0);
	cr_assert_eq(
	    loader__load_initrd(&m, &k, rd, sizeof(rd), &gpa, err, sizeof(err)),
	    0, "%s", err);
	cr_assert_eq(gpa, ((512 << 20) - sizeof(rd)) & ~0xfffULL);
	cr_assert_eq(memcmp(mem__ptr(&m, gpa, sizeof(rd)), rd, sizeof(rd)), 0);
	mem__exit(&m);

	/* 5 GiB: initrd_addr_max 0x7fffffff caps it below 2 GiB */
	boot(5ULL << 30, 0);
	cr_assert_eq(
	    loader__load_initrd(&m, &k, rd, sizeof(rd), &gpa, err, sizeof(err)),
	    0, "%s", err);
	cr_assert_eq(gpa, (0x80000000 - sizeof(rd)) & ~0xfffULL);
	mem__exit(&m);

	/* a bzImage's own initrd_addr_max */
	struct kimg_bz o = {.initrd_addr_max = 0x0fffffff};
	struct kbuf b = {0};

	cr_assert_eq(mem__init(&m, 512 << 20), 0);
	cr_assert_eq(kimg_tiny_bzimage(&b, KIMG_GZIP, &o), 0);
	cr_assert_eq(loader__load_kernel(&m, b.p, b.len, &k, err, sizeof(err)),
		     0, "%s", err);
	kb_free(&b);
	cr_assert_eq(
	    loader__load_initrd(&m, &k, rd, sizeof(rd), &gpa, err, sizeof(err)),
	    0, "%s", err);
	cr_assert_eq(gpa, (0x10000000 - sizeof(rd)) & ~0xfffULL);
	struct boot_info bi = {.initrd_gpa = gpa, .initrd_size = sizeof(rd)};
	cr_assert_eq(params(&bi), 0, "%s", err);
	cr_assert_eq(zp(0x218, 4), gpa);
	cr_assert_eq(zp(0x21c, 4), sizeof(rd));
	/* one byte over initrd_addr_max is refused by boot_params */
	bi.initrd_gpa = 0x10000000 - sizeof(rd) + 1;
	cr_assert_eq(params(&bi), -1);
	cr_assert(strstr(err, "initrd_addr_max 0xfffffff"), "%s", err);
}

Test(loader_boot, initrd_too_big)
{
	size_t n = 70 << 20;
	uint8_t *rd = calloc(1, n);
	uint64_t gpa = 0;

	boot(64 << 20, 0);
	cr_assert_eq(loader__load_initrd(&m, &k, rd, n, &gpa, err, sizeof(err)),
		     -1);
	cr_assert(strstr(err, "initrd: 71680 KiB does not fit"), "%s", err);
	cr_assert(strstr(err, "use a larger --mem"), "%s", err);
	/* fits in RAM but not above the kernel's init_size footprint */
	mem__exit(&m);
	boot(8 << 20, 1); /* kernel footprint [1 MiB, 5 MiB) */
	cr_assert_eq(
	    loader__load_initrd(&m, &k, rd, 4 << 20, &gpa, err, sizeof(err)),
	    -1);
	cr_assert(strstr(err, "outside the kernel's [0x100000,0x500000)"), "%s",
		  err);
	cr_assert_eq(
	    loader__load_initrd(&m, &k, rd, 3 << 20, &gpa, err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_eq(gpa, 0x500000);
	cr_assert_eq(loader__load_initrd(&m, &k, rd, 0, &gpa, err, sizeof(err)),
		     -1);
	cr_assert_str_eq(err, "initrd: empty file");
	free(rd);
}

/* A kernel at the top of RAM: the initrd goes below it. */
Test(loader_boot, initrd_below_high_kernel)
{
	struct kimg_seg s[1] = {
	    {.paddr = 48 << 20, .filesz = 0x10, .memsz = 16 << 20}};
	static uint8_t rd[1 << 20];
	struct kbuf b = {0};
	uint64_t gpa = 0;

	cr_assert_eq(mem__init(&m, 64 << 20), 0);
	kimg_elf(&b, s, 1, 48 << 20);
	cr_assert_eq(loader__load_kernel(&m, b.p, b.len, &k, err, sizeof(err)),
		     0, "%s", err);
	kb_free(&b);
	cr_assert_eq(
	    loader__load_initrd(&m, &k, rd, sizeof(rd), &gpa, err, sizeof(err)),
	    0, "%s", err);
	cr_assert_eq(gpa, 47 << 20);
}

Test(loader_boot, initrd_not_ram)
{
	struct boot_info bi = {.initrd_gpa = 60 << 20, .initrd_size = 8 << 20};

	boot(64 << 20, 0);
	cr_assert_eq(params(&bi), -1);
	cr_assert(strstr(err, "initrd: [0x3c00000,0x4400000) is not RAM"), "%s",
		  err);
}

Test(loader_boot, pagetables_and_gdt)
{
	const uint64_t *pt, *gdt;
	unsigned i;

	boot(64 << 20, 0);
	memset(mem__ptr(&m, 0x8000, 0x8000), 0x55, 0x8000);
	loader__boot_pagetables(&m);
	pt = mem__ptr(&m, MEM_PML4, 0x6000);
	cr_assert_eq(pt[0], 0xa003);
	for (i = 1; i < 512; i++)
		cr_assert_eq(pt[i], 0, "pml4[%u]", i);
	for (i = 0; i < 4; i++)
		cr_assert_eq(pt[512 + i], 0xb003 + i * 0x1000ULL, "pdpt[%u]",
			     i);
	for (; i < 512; i++)
		cr_assert_eq(pt[512 + i], 0, "pdpt[%u]", i);
	for (i = 0; i < 2048; i++)
		cr_assert_eq(pt[1024 + i], ((uint64_t)i << 21) | 0x83,
			     "pd entry %u", i);
	/* neighbours untouched */
	cr_assert_eq(*(uint8_t *)mem__ptr(&m, 0x8fff, 1), 0x55);
	cr_assert_eq(*(uint8_t *)mem__ptr(&m, 0xf000, 1), 0x55);

	gdt = mem__ptr(&m, MEM_GDT, 0x30);
	cr_assert_eq(gdt[0], 0);
	cr_assert_eq(gdt[1], 0);
	cr_assert_eq(gdt[2], 0x00af9b000000ffffULL);
	cr_assert_eq(gdt[3], 0x00cf93000000ffffULL);
	cr_assert_eq(gdt[4], LOADER_DESC_TSS);
	cr_assert_eq(gdt[5], 0);
	cr_assert_eq(LOADER_GDT_CODE, 0x10);
	cr_assert_eq(LOADER_GDT_DATA, 0x18);
}

/* Over hosts: an AP woken through the ACPI mailbox starts on these. */
Test(loader_boot, ap_pagetables_and_gdt)
{
	const uint64_t *pt, *gdt;
	unsigned i;

	boot(64 << 20, 0);
	memset(mem__ptr(&m, 0xc0000, 0x30000), 0x55, 0x30000);
	loader__ap_pagetables(&m);
	pt = mem__ptr(&m, LOADER_AP_PML4, 0x6000);
	/* P RW, Accessed set on every level; Dirty on the 2 MiB pages. */
	cr_assert_eq(pt[0], 0xd1023);
	for (i = 1; i < 512; i++)
		cr_assert_eq(pt[i], 0, "pml4[%u]", i);
	for (i = 0; i < 4; i++)
		cr_assert_eq(pt[512 + i], 0xd2023 + i * 0x1000ULL, "pdpt[%u]",
			     i);
	for (; i < 512; i++)
		cr_assert_eq(pt[512 + i], 0, "pdpt[%u]", i);
	for (i = 0; i < 2048; i++) {
		uint64_t a = (uint64_t)i << 21;
		uint64_t want = a | 0xe3 | (a >= MEM_HOLE_START ? 0x18 : 0);
		cr_assert_eq(pt[1024 + i], want, "pd entry %u", i);
	}
	gdt = mem__ptr(&m, LOADER_AP_GDT, 0x30);
	cr_assert_eq(gdt[0], 0);
	cr_assert_eq(gdt[LOADER_GDT_CODE / 8], LOADER_DESC_CODE);
	cr_assert_eq(gdt[LOADER_GDT_DATA / 8], LOADER_DESC_DATA);
	cr_assert_eq(gdt[LOADER_GDT_TSS / 8], LOADER_DESC_TSS);
	/* neighbours untouched: below, and the ACPI tables above */
	cr_assert_eq(*(uint8_t *)mem__ptr(&m, MEM_AP_BOOT - 1, 1), 0x55);
	cr_assert_eq(*(uint8_t *)mem__ptr(&m, LOADER_AP_GDT + 0x30, 1), 0x55);
	cr_assert_eq(*(uint8_t *)mem__ptr(&m, MEM_ACPI, 1), 0x55);
	/* the boot tables are somewhere else entirely */
	cr_assert_eq(*(uint8_t *)mem__ptr(&m, MEM_PML4, 1), 0);
}
