// SPDX-License-Identifier: MIT
/* vmlinux-style ELF loading: what lands in guest RAM, and every rejection. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "tests/fuzz/kimg.h"
#include "vmm/loader.h"

static struct mem m;
static struct kernel_image k;
static char err[256];

static void ram(uint64_t size)
{
	cr_assert_eq(mem__init(&m, size), 0, "mem__init %llu MiB",
		     (unsigned long long)size >> 20);
}

static void fini(void)
{
	mem__exit(&m);
}

static int load(const struct kbuf *b)
{
	err[0] = 0;
	return loader__load_kernel(&m, b->p, b->len, &k, err, sizeof(err));
}

static void expect_err(const struct kbuf *b, const char *needle)
{
	cr_assert_eq(load(b), -1, "loaded, expected \"%s\"", needle);
	cr_assert(strstr(err, needle), "error \"%s\" lacks \"%s\"", err,
		  needle);
	cr_assert(!strchr(err, '\n'), "error has a newline: %s", err);
}

static void check_seg(unsigned s, uint64_t paddr, uint64_t filesz,
		      uint64_t memsz)
{
	const uint8_t *p = mem__ptr(&m, paddr, memsz);
	uint64_t i;

	cr_assert(p);
	for (i = 0; i < filesz; i++)
		cr_assert_eq(p[i], kimg_byte(s, i), "seg %u byte %llu", s,
			     (unsigned long long)i);
	for (; i < memsz; i++)
		cr_assert_eq(p[i], 0, "seg %u bss byte %llu", s,
			     (unsigned long long)i);
}

TestSuite(loader_elf, .fini = fini);

Test(loader_elf, tiny)
{
	struct kbuf b = {0};

	ram(64 << 20);
	/* dirty the bss first: the loader must zero it */
	memset(mem__ptr(&m, 0x101000, 0x2000), 0xee, 0x2000);
	kimg_tiny_elf(&b);
	cr_assert_eq(load(&b), 0, "%s", err);
	cr_assert_eq(k.kind, KERNEL_ELF);
	cr_assert_eq(k.entry, 0x100000);
	cr_assert_eq(k.load_lo, 0x100000);
	cr_assert_eq(k.load_hi, 0x103000);
	cr_assert_eq(k.has_setup, 0);
	cr_assert_null(k.decompressor);
	check_seg(0, 0x100000, 0x300, 0x300);
	check_seg(1, 0x101000, 0x40, 0x2000);
	kb_free(&b);
}

/* Linux's vmlinux: text at 16 MiB, a per-CPU segment with vaddr 0,
 * e_entry physical. */
Test(loader_elf, vmlinux_shape)
{
	struct kimg_seg s[4] = {
	    {.paddr = 0x1000000,
	     .vaddr = 0xffffffff81000000,
	     .filesz = 0x1000,
	     .memsz = 0x1000},
	    {.paddr = 0x1200000,
	     .vaddr = 0xffffffff81200000,
	     .filesz = 0x800,
	     .memsz = 0x1000},
	    {.paddr = 0x1400000, .vaddr = 0, .filesz = 0x100, .memsz = 0x2000},
	    {.type = PT_NOTE, .paddr = 0, .filesz = 0x10, .memsz = 0},
	};
	struct kbuf b = {0};

	ram(64 << 20);
	kimg_elf(&b, s, 4, 0x1000000);
	cr_assert_eq(load(&b), 0, "%s", err);
	cr_assert_eq(k.entry, 0x1000000);
	cr_assert_eq(k.load_lo, 0x1000000);
	cr_assert_eq(k.load_hi, 0x1402000);
	check_seg(1, 0x1200000, 0x800, 0x1000);
	check_seg(2, 0x1400000, 0x100, 0x2000);
	kb_free(&b);
}

Test(loader_elf, virtual_entry)
{
	struct kimg_seg s[1] = {{.paddr = 0x100000,
				 .vaddr = 0xffffffff80100000,
				 .filesz = 0x100,
				 .memsz = 0x1000}};
	struct kbuf b = {0};

	ram(16 << 20);
	kimg_elf(&b, s, 1, 0xffffffff80100040);
	cr_assert_eq(load(&b), 0, "%s", err);
	cr_assert_eq(k.entry, 0x100040);
	kb_free(&b);
}

Test(loader_elf, entry_outside)
{
	struct kimg_seg s[1] = {
	    {.paddr = 0x100000, .filesz = 0x100, .memsz = 0x1000}};
	struct kbuf b = {0};

	ram(16 << 20);
	kimg_elf(&b, s, 1, 0x200000);
	expect_err(&b, "entry point 0x200000 is in no loaded segment");
	kb_free(&b);
}

Test(loader_elf, high_ram_segment)
{
	struct kimg_seg s[2] = {
	    {.paddr = 0x100000, .filesz = 0x10, .memsz = 0x10},
	    {.paddr = 0x100000000, .filesz = 0x100, .memsz = 0x3000},
	};
	struct kbuf b = {0};

	ram(3ULL << 30 | 64 << 20); /* 64 MiB above 4 GiB */
	kimg_elf(&b, s, 2, 0x100000);
	cr_assert_eq(load(&b), 0, "%s", err);
	check_seg(1, 0x100000000, 0x100, 0x3000);
	cr_assert_eq(k.load_hi, 0x100003000);
	kb_free(&b);
}

Test(loader_elf, segment_in_hole)
{
	struct kimg_seg s[1] = {
	    {.paddr = 0xbffff000, .filesz = 0x10, .memsz = 0x2000}};
	struct kbuf b = {0};

	ram(4ULL << 30);
	kimg_elf(&b, s, 1, 0xbffff000);
	expect_err(&b, "segment 0 [0xbffff000,0xc0001000) overlaps the MMIO "
		       "hole");
	kb_free(&b);
}

Test(loader_elf, segment_too_big)
{
	struct kimg_seg s[2] = {
	    {.paddr = 0x100000, .filesz = 0x10, .memsz = 0x10},
	    {.paddr = 0x1000000, .filesz = 0x10, .memsz = 600 << 20},
	};
	struct kbuf b = {0};

	ram(512 << 20);
	kimg_elf(&b, s, 2, 0x100000);
	expect_err(&b, "kernel: segment 1 [0x1000000,0x26800000) outside "
		       "guest RAM (512 MiB): use a larger --mem");
	kb_free(&b);
}

Test(loader_elf, below_1m)
{
	struct kimg_seg s[1] = {
	    {.paddr = 0x9000, .filesz = 0x10, .memsz = 0x10}};
	struct kbuf b = {0};

	ram(16 << 20);
	kimg_elf(&b, s, 1, 0x9000);
	expect_err(&b, "segment 0 [0x9000,0x9010) is below 1 MiB");
	kb_free(&b);
}

Test(loader_elf, straddles_1m)
{
	struct kimg_seg s[1] = {
	    {.paddr = 0xff000, .filesz = 0x10, .memsz = 0x2000}};
	struct kbuf b = {0};

	ram(16 << 20);
	kimg_elf(&b, s, 1, 0x100000);
	expect_err(&b, "below 1 MiB");
	kb_free(&b);
}

Test(loader_elf, overlap)
{
	struct kimg_seg s[3] = {
	    {.paddr = 0x300000, .filesz = 0x10, .memsz = 0x1000},
	    {.paddr = 0x100000, .filesz = 0x10, .memsz = 0x10},
	    {.paddr = 0x300800, .filesz = 0x10, .memsz = 0x10},
	};
	struct kbuf b = {0};

	ram(16 << 20);
	/* nothing may be written when the file is rejected */
	memset(mem__ptr(&m, 0x100000, 0x10), 0xab, 0x10);
	kimg_elf(&b, s, 3, 0x100000);
	expect_err(&b, "segments 0 [0x300000,0x301000) and 2 [0x300800,"
		       "0x300810) overlap");
	cr_assert_eq(*(uint8_t *)mem__ptr(&m, 0x100000, 1), 0xab);
	kb_free(&b);
}

Test(loader_elf, adjacent_is_fine)
{
	struct kimg_seg s[2] = {
	    {.paddr = 0x100000, .filesz = 0x10, .memsz = 0x1000},
	    {.paddr = 0x101000, .filesz = 0x10, .memsz = 0x10},
	};
	struct kbuf b = {0};

	ram(16 << 20);
	kimg_elf(&b, s, 2, 0x100000);
	cr_assert_eq(load(&b), 0, "%s", err);
	kb_free(&b);
}

Test(loader_elf, filesz_over_memsz)
{
	struct kimg_seg s[1] = {
	    {.paddr = 0x100000, .filesz = 0x20, .memsz = 0x10}};
	struct kbuf b = {0};

	ram(16 << 20);
	kimg_elf(&b, s, 1, 0x100000);
	expect_err(&b, "segment 0 file size 0x20 exceeds its memory size");
	kb_free(&b);
}

Test(loader_elf, wrapping_segment)
{
	struct kimg_seg s[1] = {
	    {.paddr = 0xfffffffffffff000, .filesz = 0, .memsz = 0x2000}};
	struct kbuf b = {0};

	ram(16 << 20);
	kimg_elf(&b, s, 1, 0x100000);
	expect_err(&b, "address range wraps");
	kb_free(&b);
}

Test(loader_elf, no_loadable)
{
	struct kimg_seg s[1] = {
	    {.type = PT_NOTE, .paddr = 0x100000, .filesz = 4, .memsz = 4}};
	struct kbuf b = {0};

	ram(16 << 20);
	kimg_elf(&b, s, 1, 0x100000);
	expect_err(&b, "no loadable segments");
	kb_free(&b);
}

static void patch(struct kbuf *b, size_t off, uint64_t v, int n)
{
	kb_set(b, off, v, n);
}

Test(loader_elf, bad_headers)
{
	static const struct {
		size_t off;
		uint64_t v;
		int n;
		const char *msg;
	} t[] = {
	    {0, 0x7f454c47, 4, "not an ELF or bzImage (bad magic)"},
	    {EI_CLASS, ELFCLASS32, 1, "not a 64-bit ELF"},
	    {EI_DATA, ELFDATA2MSB, 1, "not a little-endian ELF"},
	    {offsetof(Elf64_Ehdr, e_machine), EM_386, 2,
	     "ELF machine 3 is not x86-64"},
	    {offsetof(Elf64_Ehdr, e_type), ET_DYN, 2,
	     "ELF type 3 is not an executable"},
	    {offsetof(Elf64_Ehdr, e_phentsize), 32, 2,
	     "program header size 32"},
	    {offsetof(Elf64_Ehdr, e_phnum), 0, 2, "no program headers"},
	    {offsetof(Elf64_Ehdr, e_phnum), 0xffff, 2, "PN_XNUM"},
	    {offsetof(Elf64_Ehdr, e_phnum), 500, 2,
	     "truncated ELF program header table"},
	    {offsetof(Elf64_Ehdr, e_phoff), ~0ULL - 8, 8,
	     "truncated ELF program header table"},
	    {64 + offsetof(Elf64_Phdr, p_offset), 1 << 20, 8,
	     "past the end of the file"},
	    {64 + offsetof(Elf64_Phdr, p_offset), ~0ULL, 8,
	     "past the end of the file"},
	};
	unsigned i;

	ram(16 << 20);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct kbuf b = {0};

		kimg_tiny_elf(&b);
		if (t[i].off == 0)
			memcpy(b.p,
			       "\x7f"
			       "ELG",
			       4);
		else
			patch(&b, t[i].off, t[i].v, t[i].n);
		expect_err(&b, t[i].msg);
		kb_free(&b);
	}
}

/* Every prefix of a valid file is rejected cleanly (ASan would see any
 * read past the end: the copy below is exactly as long as the prefix). */
Test(loader_elf, truncated_everywhere)
{
	struct kbuf b = {0};
	size_t n;

	ram(16 << 20);
	kimg_tiny_elf(&b);
	for (n = 0; n < b.len; n++) {
		uint8_t *c = malloc(n ? n : 1);

		memcpy(c, b.p, n);
		err[0] = 0;
		cr_assert_eq(
		    loader__load_kernel(&m, c, n, &k, err, sizeof(err)), -1,
		    "prefix of %zu bytes loaded", n);
		cr_assert(strncmp(err, "kernel: ", 8) == 0, "%zu: %s", n, err);
		free(c);
	}
	kb_free(&b);
}

Test(loader_elf, tiny_files)
{
	ram(16 << 20);
	cr_assert_eq(loader__load_kernel(&m, "", 0, &k, err, sizeof(err)), -1);
	cr_assert_str_eq(err, "kernel: file too short (0 bytes)");
	cr_assert_eq(loader__load_kernel(&m, NULL, 0, &k, err, sizeof(err)),
		     -1);
	cr_assert_eq(
	    loader__load_kernel(&m, "hello, world", 12, &k, err, sizeof(err)),
	    -1);
	cr_assert_str_eq(err, "kernel: not an ELF or bzImage (bad magic)");
	/* a tiny error buffer is fine, and so is none */
	cr_assert_eq(loader__load_kernel(&m, "xyzw", 4, &k, err, 8), -1);
	cr_assert_str_eq(err, "kernel:");
	cr_assert_eq(loader__load_kernel(&m, "xyzw", 4, &k, NULL, 0), -1);
}
