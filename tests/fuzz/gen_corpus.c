// SPDX-License-Identifier: MIT
/*
 * Writes the fuzzers' seed corpora: `gen_corpus DIR` fills DIR/loader/ with
 * tiny valid kernels in fuzz_loader's input layout (4-byte prefix, file,
 * command line). Deterministic, so regenerating changes nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include "tests/fuzz/kimg.h"

static const char *dir;

static void seed(const char *name, uint8_t layout, uint8_t initrd,
		 const struct kbuf *img, const char *cl)
{
	size_t n = strlen(cl);
	uint8_t pre[4] = {layout, (uint8_t)n, (uint8_t)(n >> 8), initrd};
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/loader/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(pre, 1, 4, f) != 4 ||
	    fwrite(img->p, 1, img->len, f) != img->len ||
	    fwrite(cl, 1, n, f) != n || fclose(f)) {
		perror(path);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		enum kimg_comp c;
	} bz[] = {
	    {"bz-none", KIMG_NONE}, {"bz-xz", KIMG_XZ},
	    {"bz-lz4", KIMG_LZ4},   {"bz-zstd", KIMG_ZSTD},
	    {"bz-gzip", KIMG_GZIP}, {"bz-guest", KIMG_UNKNOWN},
	};
	/* one setup sector keeps the seeds small; 2 MiB of init_size fits
	 * the 8 MiB layout */
	struct kimg_bz o = {.setup_sects = 1, .init_size = 2 << 20};
	struct kimg_seg virt[1] = {{.paddr = 0x200000,
				    .vaddr = 0xffffffff80200000,
				    .filesz = 0x80,
				    .memsz = 0x1000}};
	struct kimg_seg high[2] = {
	    {.paddr = 0x100000, .filesz = 0x40, .memsz = 0x1000},
	    {.paddr = 0x100000000, .filesz = 0x40, .memsz = 0x2000},
	};
	struct kbuf b = {0};
	char path[512];
	unsigned i;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	dir = argv[1];
	snprintf(path, sizeof(path), "%s/loader", dir);
	if (mkdir(dir, 0755) && errno != EEXIST)
		return perror(dir), 1;
	if (mkdir(path, 0755) && errno != EEXIST)
		return perror(path), 1;

	kimg_tiny_elf(&b);
	seed("elf-tiny", 1, 0x03, &b, "console=ttyS0");
	kb_free(&b);
	kimg_elf(&b, virt, 1, 0xffffffff80200010);
	seed("elf-virt", 2, 0x00, &b, "");
	kb_free(&b);
	kimg_elf(&b, high, 2, 0x100000);
	seed("elf-high", 4, 0x05, &b, "root=/dev/vda");
	kb_free(&b);
	for (i = 0; i < sizeof(bz) / sizeof(bz[0]); i++) {
		if (kimg_tiny_bzimage(&b, bz[i].c, &o))
			return fprintf(stderr, "%s failed\n", bz[i].name), 1;
		seed(bz[i].name, 1, 0x01, &b, "quiet");
		kb_free(&b);
	}
	return 0;
}
