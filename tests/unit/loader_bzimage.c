// SPDX-License-Identifier: MIT
/*
 * bzImage loading: host-side decompression with each compressor, the
 * guest-decompresses fallback, header checks, bombs, and real kernels when
 * some are around.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/fuzz/kimg.h"
#include "vmm/loader.h"

static struct mem m;
static struct kernel_image k;
static char err[256];

static void ram(uint64_t size)
{
	cr_assert_eq(mem__init(&m, size), 0);
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
}

static const struct {
	enum kimg_comp c;
	const char *name;
} comps[] = {
    {KIMG_NONE, "none"}, {KIMG_XZ, "xz"},     {KIMG_LZ4, "lz4"},
    {KIMG_ZSTD, "zstd"}, {KIMG_GZIP, "gzip"},
};
#define NCOMPS (sizeof(comps) / sizeof(comps[0]))

static uint16_t hdr16(size_t off)
{
	return (uint16_t)(k.setup[off - 0x1f1] | k.setup[off - 0x1f0] << 8);
}

TestSuite(loader_bzimage, .fini = fini);

Test(loader_bzimage, each_compressor)
{
	unsigned i;
	size_t j;

	ram(64 << 20);
	for (i = 0; i < NCOMPS; i++) {
		struct kbuf b = {0};
		const uint8_t *p;

		memset(mem__ptr(&m, 0x100000, 0x3000), 0xee, 0x3000);
		cr_assert_eq(kimg_tiny_bzimage(&b, comps[i].c, NULL), 0);
		cr_assert_eq(load(&b), 0, "%s: %s", comps[i].name, err);
		cr_assert_eq(k.kind, KERNEL_BZIMAGE);
		cr_assert_str_eq(k.decompressor, comps[i].name);
		cr_assert_eq(k.has_setup, 1);
		cr_assert_eq(k.entry, 0x100000);
		cr_assert_eq(k.load_lo, 0x100000);
		/* init_size (4 MiB) reaches past the ELF's end */
		cr_assert_eq(k.load_hi, 0x500000, "%s: load_hi 0x%llx",
			     comps[i].name, (unsigned long long)k.load_hi);
		cr_assert_eq(hdr16(0x1fe), 0xaa55);
		cr_assert_eq(memcmp(k.setup + (0x202 - 0x1f1), "HdrS", 4), 0);
		cr_assert_eq(hdr16(0x206), 0x020f);
		/* the setup code after the header (0x26c) is not copied */
		for (j = 0x26c - 0x1f1; j < sizeof(k.setup); j++)
			cr_assert_eq(k.setup[j], 0, "setup[0x%zx]", j + 0x1f1);
		p = mem__ptr(&m, 0x100000, 0x3000);
		for (j = 0; j < 0x300; j++)
			cr_assert_eq(p[j], kimg_byte(0, j));
		for (j = 0; j < 0x40; j++)
			cr_assert_eq(p[0x1000 + j], kimg_byte(1, j));
		for (j = 0x1040; j < 0x3000; j++)
			cr_assert_eq(p[j], 0);
		kb_free(&b);
	}
}

Test(loader_bzimage, unknown_compression_falls_back)
{
	struct kbuf b = {0};
	const uint8_t *p;
	uint32_t c32;

	ram(64 << 20);
	cr_assert_eq(kimg_tiny_bzimage(&b, KIMG_UNKNOWN, NULL), 0);
	cr_assert_eq(load(&b), 0, "%s", err);
	cr_assert_null(k.decompressor);
	cr_assert_eq(k.entry, 0x100200);
	cr_assert_eq(k.load_lo, 0x100000);
	cr_assert_eq(k.load_hi, 0x500000);
	p = mem__ptr(&m, 0x100000, 0x400);
	cr_assert_eq(p[0], 0x90);
	cr_assert_eq(p[0x200], 0xf4);
	cr_assert_eq(memcmp(p + KIMG_PM_CODE, "BZh9", 4), 0);
	memcpy(&c32, k.setup + (0x214 - 0x1f1), 4);
	cr_assert_eq(c32, 0x100000, "code32_start 0x%x", c32);
	kb_free(&b);
}

Test(loader_bzimage, fallback_at_pref_address)
{
	struct kimg_bz o = {.pref_address = 0x1000000};
	struct kbuf b = {0};

	ram(64 << 20);
	cr_assert_eq(kimg_tiny_bzimage(&b, KIMG_UNKNOWN, &o), 0);
	cr_assert_eq(load(&b), 0, "%s", err);
	cr_assert_eq(k.entry, 0x1000200);
	kb_free(&b);
	o.pref_address = 0x8000;
	cr_assert_eq(kimg_tiny_bzimage(&b, KIMG_UNKNOWN, &o), 0);
	expect_err(&b, "pref_address 0x8000 is not between 1 MiB and 4 GiB");
	kb_free(&b);
}

Test(loader_bzimage, no_payload_falls_back)
{
	struct kbuf b = {0};

	ram(64 << 20);
	cr_assert_eq(kimg_tiny_bzimage(&b, KIMG_XZ, NULL), 0);
	kb_set(&b, 0x24c, 0, 4);
	cr_assert_eq(load(&b), 0, "%s", err);
	cr_assert_null(k.decompressor);
	cr_assert_eq(k.entry, 0x100200);
	kb_free(&b);
}

Test(loader_bzimage, init_size_too_big)
{
	struct kimg_bz o = {.init_size = 40 << 20};
	struct kbuf b = {0};

	ram(32 << 20);
	cr_assert_eq(kimg_tiny_bzimage(&b, KIMG_ZSTD, &o), 0);
	expect_err(&b, "kernel: needs [0x100000,0x2900000) to initialise "
		       "(init_size 40 MiB), which outside guest RAM (32 MiB)");
	kb_free(&b);
	cr_assert_eq(kimg_tiny_bzimage(&b, KIMG_UNKNOWN, &o), 0);
	expect_err(&b, "init_size 40 MiB");
	kb_free(&b);
}

Test(loader_bzimage, header_checks)
{
	static const struct {
		size_t off;
		uint64_t v;
		int n;
		const char *msg;
	} t[] = {
	    {0x206, 0x020b, 2, "boot protocol 2.11 is too old"},
	    {0x236, 0x2, 2, "XLF_KERNEL_64 clear"},
	    {0x211, 0x80, 1, "zImage"},
	    {0x201, 0x50, 1, "setup header too short (ends at 0x252)"},
	    {0x201, 0xff, 1, ""},
	    {0x24c, 0xfffffff0, 4, "payload at 0xd00+0xfffffff0 is past"},
	    {0x248, 0xfffffff0, 4, "is past the end of the file"},
	    {0x1f1, 200, 1, "setup code alone takes 102912"},
	};
	unsigned i;

	ram(64 << 20);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct kbuf b = {0};

		cr_assert_eq(kimg_tiny_bzimage(&b, KIMG_GZIP, NULL), 0);
		kb_set(&b, t[i].off, t[i].v, t[i].n);
		if (t[i].off == 0x201 && t[i].v == 0xff) {
			/* header runs to 0x301: fine, only 0x280 copied */
			cr_assert_eq(load(&b), 0, "%s", err);
			cr_assert_eq(k.setup[sizeof(k.setup) - 1], 0xcc);
		} else {
			expect_err(&b, t[i].msg);
		}
		kb_free(&b);
	}
}

/* An old kernel's header is short too; the version is what to report. */
Test(loader_bzimage, old_protocol)
{
	struct kbuf b = {0};

	ram(64 << 20);
	cr_assert_eq(kimg_tiny_bzimage(&b, KIMG_GZIP, NULL), 0);
	kb_set(&b, 0x206, 0x0202, 2);
	kb_set(&b, 0x201, 0x20, 1);
	expect_err(&b, "kernel: bzImage boot protocol 2.02 is too old");
	kb_free(&b);
}

Test(loader_bzimage, payload_not_elf)
{
	static const uint8_t junk[64] = {1, 2, 3};
	struct kbuf z = {0}, b = {0};
	struct kimg_bz o = {0};

	ram(64 << 20);
	cr_assert_eq(kimg_compress(&z, KIMG_XZ, junk, sizeof(junk)), 0);
	kimg_bzimage(&b, &o, z.p, z.len);
	expect_err(&b, "kernel (xz payload): not an ELF vmlinux");
	kb_free(&z);
	kb_free(&b);
}

Test(loader_bzimage, elf_errors_name_the_payload)
{
	struct kimg_seg s[1] = {
	    {.paddr = 0x100000, .filesz = 0x10, .memsz = 100 << 20}};
	struct kbuf e = {0}, z = {0}, b = {0};
	struct kimg_bz o = {0};

	ram(64 << 20);
	kimg_elf(&e, s, 1, 0x100000);
	cr_assert_eq(kimg_compress(&z, KIMG_LZ4, e.p, e.len), 0);
	kimg_bzimage(&b, &o, z.p, z.len);
	expect_err(&b, "kernel (lz4 payload): segment 0 [0x100000,0x6500000) "
		       "outside guest RAM (64 MiB): use a larger --mem");
	kb_free(&e);
	kb_free(&z);
	kb_free(&b);
}

/* 80 MiB of zeros packed small: the decoders must stop at the limit (the
 * guest's RAM size, 64 MiB here) instead of allocating it all. */
Test(loader_bzimage, bombs)
{
	size_t n = 80 << 20;
	uint8_t *zeros = calloc(1, n);
	unsigned i;

	ram(64 << 20);
	for (i = 1; i < NCOMPS; i++) {
		struct kbuf z = {0}, b = {0};
		struct kimg_bz o = {0};

		cr_assert_eq(kimg_compress(&z, comps[i].c, zeros, n), 0);
		kimg_bzimage(&b, &o, z.p, z.len);
		expect_err(&b, "payload decompresses to more than 64 MiB");
		kb_free(&z);
		kb_free(&b);
	}
	free(zeros);
}

/* Shortening payload_length cuts the compressed stream: never a crash;
 * once the cut reaches past the 4-byte size trailer, always an error, until
 * so little is left that the magic is gone (then it is an unknown format,
 * which the guest would decompress itself). */
Test(loader_bzimage, truncated_payloads)
{
	unsigned i;
	uint32_t cut, plen;

	ram(16 << 20);
	for (i = 1; i < NCOMPS; i++) {
		struct kbuf b = {0};
		size_t trailer = comps[i].c == KIMG_GZIP ? 0 : 4;

		cr_assert_eq(kimg_tiny_bzimage(&b, comps[i].c, NULL), 0);
		memcpy(&plen, b.p + 0x24c, 4);
		for (cut = 1; cut < plen; cut++) {
			kb_set(&b, 0x24c, plen - cut, 4);
			int r = load(&b);

			if (cut > trailer && plen - cut >= 6)
				cr_assert_eq(r, -1, "%s cut %u loaded",
					     comps[i].name, cut);
			if (r)
				cr_assert(strncmp(err, "kernel", 6) == 0, "%s",
					  err);
		}
		kb_free(&b);
	}
}

/* Every prefix of a bzImage file fails cleanly. */
Test(loader_bzimage, truncated_files)
{
	unsigned i;
	size_t n;

	ram(16 << 20);
	for (i = 0; i < NCOMPS; i++) {
		struct kbuf b = {0};

		cr_assert_eq(kimg_tiny_bzimage(&b, comps[i].c, NULL), 0);
		for (n = 0; n < b.len; n++) {
			uint8_t *c = malloc(n ? n : 1);

			memcpy(c, b.p, n);
			cr_assert_eq(
			    loader__load_kernel(&m, c, n, &k, err, sizeof(err)),
			    -1, "%s: %zu-byte prefix loaded", comps[i].name, n);
			free(c);
		}
		kb_free(&b);
	}
}

/* Flipped bytes in the compressed data: xz and gzip notice through their
 * checksums; lz4 and zstd may decode garbage, which the ELF checks catch
 * or load harmlessly. Either way no crash. */
Test(loader_bzimage, corrupt_payloads)
{
	unsigned i;
	size_t j, off = 4 * 512 + 512 + KIMG_PM_CODE;

	ram(16 << 20);
	for (i = 1; i < NCOMPS; i++) {
		struct kbuf b = {0};

		cr_assert_eq(kimg_tiny_bzimage(&b, comps[i].c, NULL), 0);
		for (j = off + 6; j < b.len; j++) {
			b.p[j] ^= 0x5a;
			int r = load(&b);

			if (comps[i].c == KIMG_XZ && j < b.len - 4)
				cr_assert_eq(r, -1, "xz flip at %zu loaded", j);
			b.p[j] ^= 0x5a;
		}
		kb_free(&b);
	}
}

static void try_real(const char *path)
{
	struct boot_info bi = {.cmdline = "console=ttyS0"};
	uint32_t init_size;
	uint8_t *buf;
	FILE *f;
	long n;

	f = fopen(path, "rb");
	if (!f)
		return;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	cr_assert_eq(
	    loader__load_kernel(&m, buf, (size_t)n, &k, err, sizeof(err)), 0,
	    "%s: %s", path, err);
	cr_log_info("%s: %s, decompressor %s, entry 0x%llx, [0x%llx,0x%llx)",
		    path, k.kind == KERNEL_ELF ? "ELF" : "bzImage",
		    k.kind == KERNEL_ELF ? "-"
		    : k.decompressor	 ? k.decompressor
					 : "(in guest)",
		    (unsigned long long)k.entry, (unsigned long long)k.load_lo,
		    (unsigned long long)k.load_hi);
	cr_assert_eq(k.entry, 0x1000000, "entry 0x%llx",
		     (unsigned long long)k.entry);
	cr_assert_geq(k.load_lo, 0x1000000);
	if (k.kind == KERNEL_BZIMAGE) {
		cr_assert(k.has_setup);
		cr_assert_not_null(k.decompressor, "%s not host-decoded", path);
		memcpy(&init_size, k.setup + (0x260 - 0x1f1), 4);
		cr_assert_geq(k.load_hi, k.load_lo + init_size);
	}
	cr_assert_eq(loader__boot_params(&m, &k, &bi, err, sizeof(err)), 0,
		     "%s", err);
	free(buf);
}

/* Stock or project kernels, when the build or the environment has them
 * (SLOS_TEST_KERNELS: colon-separated paths). */
Test(loader_bzimage, real_kernels)
{
	static const char *paths[] = {"build/linux/stock-vmlinuz",
				      "build/linux/bzImage",
				      "build/linux/vmlinux"};
	char *env = getenv("SLOS_TEST_KERNELS"), *s, *tok, *save = NULL;
	struct stat st;
	unsigned i, found = 0;

	ram(512 << 20);
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (stat(paths[i], &st) == 0) {
			try_real(paths[i]);
			found++;
		}
	}
	if (env) {
		s = strdup(env);
		for (tok = strtok_r(s, ":", &save); tok;
		     tok = strtok_r(NULL, ":", &save)) {
			cr_assert_eq(stat(tok, &st), 0, "%s missing", tok);
			try_real(tok);
			found++;
		}
		free(s);
	}
	if (!found)
		cr_skip_test("no real kernel: build/linux/stock-vmlinuz, "
			     "build/linux/bzImage, build/linux/vmlinux absent "
			     "and SLOS_TEST_KERNELS unset");
}
