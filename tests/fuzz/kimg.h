/* SPDX-License-Identifier: MIT */
/*
 * Synthetic kernel images for the loader's unit tests and the fuzz seed
 * generator: tiny ELF64 executables, wrapped as bzImages whose payload is
 * compressed the way Linux's build does it (xz, lz4 legacy frame, zstd,
 * gzip; the kernel's 4-byte size trailer after all but gzip).
 */
#ifndef SLOS_TESTS_KIMG_H
#define SLOS_TESTS_KIMG_H

#include <elf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

struct kbuf {
	uint8_t *p;
	size_t len, cap;
};

static inline uint8_t *kb_room(struct kbuf *b, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	b->len += n;
	return b->p + b->len - n;
}

static inline void kb_put(struct kbuf *b, const void *d, size_t n)
{
	memcpy(kb_room(b, n), d, n);
}

static inline void kb_put32(struct kbuf *b, uint32_t v)
{
	uint8_t x[4] = {v, v >> 8, v >> 16, v >> 24};

	kb_put(b, x, 4);
}

static inline void kb_free(struct kbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

struct kimg_seg {
	uint64_t paddr, vaddr; /* vaddr 0: same as paddr */
	uint64_t filesz, memsz;
	uint32_t type; /* 0: PT_LOAD */
};

/* Byte i of segment s's file data, so tests can check what landed where. */
static inline uint8_t kimg_byte(unsigned s, uint64_t i)
{
	return (uint8_t)(s * 37 + i * 7 + 1);
}

/* An ELF64 x86-64 ET_EXEC: header, program headers, then each segment's
 * data in order. */
static inline void kimg_elf(struct kbuf *b, const struct kimg_seg *s,
			    unsigned n, uint64_t entry)
{
	Elf64_Ehdr eh = {.e_ident = {ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3,
				     ELFCLASS64, ELFDATA2LSB, EV_CURRENT},
			 .e_type = ET_EXEC,
			 .e_machine = EM_X86_64,
			 .e_version = EV_CURRENT,
			 .e_entry = entry,
			 .e_phoff = sizeof(Elf64_Ehdr),
			 .e_ehsize = sizeof(Elf64_Ehdr),
			 .e_phentsize = sizeof(Elf64_Phdr),
			 .e_phnum = n};
	uint64_t off = sizeof(eh) + n * sizeof(Elf64_Phdr);
	unsigned i;
	uint64_t j;

	kb_put(b, &eh, sizeof(eh));
	for (i = 0; i < n; i++) {
		Elf64_Phdr ph = {.p_type = s[i].type ? s[i].type : PT_LOAD,
				 .p_flags = PF_R | PF_W | PF_X,
				 .p_offset = off,
				 .p_vaddr =
				     s[i].vaddr ? s[i].vaddr : s[i].paddr,
				 .p_paddr = s[i].paddr,
				 .p_filesz = s[i].filesz,
				 .p_memsz = s[i].memsz,
				 .p_align = 0x1000};
		kb_put(b, &ph, sizeof(ph));
		off += s[i].filesz;
	}
	for (i = 0; i < n; i++)
		for (j = 0; j < s[i].filesz; j++)
			*kb_room(b, 1) = kimg_byte(i, j);
}

/* The smallest useful vmlinux: code at 1 MiB plus a bss. */
static inline void kimg_tiny_elf(struct kbuf *b)
{
	struct kimg_seg s[2] = {
	    {.paddr = 0x100000, .filesz = 0x300, .memsz = 0x300},
	    {.paddr = 0x101000, .filesz = 0x40, .memsz = 0x2000},
	};

	kimg_elf(b, s, 2, 0x100000);
}

enum kimg_comp {
	KIMG_NONE, /* payload is the ELF itself */
	KIMG_XZ,
	KIMG_LZ4,
	KIMG_ZSTD,
	KIMG_GZIP,
	KIMG_UNKNOWN, /* bzip2 magic, which the host does not decode */
};

static inline void kimg_lz4_legacy(struct kbuf *o, const uint8_t *in, size_t n)
{
	const size_t blk = 8u << 20;
	size_t i, c;
	char *tmp = malloc(LZ4_compressBound(blk));

	kb_put32(o, 0x184C2102);
	for (i = 0; i < n; i += c) {
		c = n - i < blk ? n - i : blk;
		int z = LZ4_compress_default((const char *)in + i, tmp, (int)c,
					     LZ4_compressBound(blk));
		kb_put32(o, (uint32_t)z);
		kb_put(o, tmp, (size_t)z);
	}
	free(tmp);
}

/* Compress as the kernel build does; 0 on success. */
static inline int kimg_compress(struct kbuf *o, enum kimg_comp c,
				const uint8_t *in, size_t n)
{
	size_t bound = n + n / 2 + 1024, pos = 0;
	uint8_t *dst;

	switch (c) {
	case KIMG_NONE:
		kb_put(o, in, n);
		return 0;
	case KIMG_UNKNOWN:
		kb_put(o, "BZh9", 4);
		kb_put(o, in, n);
		return 0;
	case KIMG_XZ:
		dst = kb_room(o, bound);
		if (lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL, in, n,
					    dst, &pos, bound) != LZMA_OK)
			return -1;
		o->len -= bound - pos;
		break;
	case KIMG_LZ4:
		kimg_lz4_legacy(o, in, n);
		break;
	case KIMG_ZSTD:
		dst = kb_room(o, ZSTD_compressBound(n));
		pos = ZSTD_compress(dst, ZSTD_compressBound(n), in, n, 19);
		if (ZSTD_isError(pos))
			return -1;
		o->len -= ZSTD_compressBound(n) - pos;
		break;
	case KIMG_GZIP: {
		z_stream z = {0};

		if (deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8,
				 Z_DEFAULT_STRATEGY) != Z_OK)
			return -1;
		bound = deflateBound(&z, n) + 64;
		dst = kb_room(o, bound);
		z.next_in = (Bytef *)in;
		z.avail_in = n;
		z.next_out = dst;
		z.avail_out = bound;
		if (deflate(&z, Z_FINISH) != Z_STREAM_END)
			return -1;
		o->len -= z.avail_out;
		deflateEnd(&z);
		return 0; /* gzip carries its own size */
	}
	}
	kb_put32(o, (uint32_t)n); /* size_append in scripts/Makefile.lib */
	return 0;
}

struct kimg_bz {
	uint16_t version;	  /* 0: 0x020f */
	uint16_t xloadflags;	  /* 0: 0x7f, like Debian's kernels */
	uint8_t setup_sects;	  /* 0 means 4, as in the protocol */
	uint8_t loadflags;	  /* 0: LOADED_HIGH */
	uint32_t init_size;	  /* 0: 4 MiB */
	uint64_t pref_address;	  /* 0: 1 MiB */
	uint32_t cmdline_size;	  /* 0: 2047 */
	uint32_t initrd_addr_max; /* 0: 0x7fffffff */
};

#define KIMG_PM_CODE 0x300 /* protected-mode code before the payload */

static inline void kb_set(struct kbuf *b, size_t off, uint64_t v, int n)
{
	int i;

	for (i = 0; i < n; i++)
		b->p[off + i] = (uint8_t)(v >> (8 * i));
}

/* A bzImage: setup sectors with the header, then protected-mode code
 * (KIMG_PM_CODE bytes, startup_64 at +0x200) and the payload. */
static inline void kimg_bzimage(struct kbuf *b, const struct kimg_bz *o,
				const uint8_t *payload, size_t n)
{
	unsigned sects = o->setup_sects ? o->setup_sects : 4;
	size_t pm = (sects + 1) * 512, i;

	memset(kb_room(b, pm), 0, pm);
	b->p[0x1f1] = o->setup_sects;
	kb_set(b, 0x1fe, 0xaa55, 2);
	b->p[0x200] = 0xeb;
	b->p[0x201] = 0x6a; /* header ends at 0x26c, as in Linux 6.1 */
	memcpy(b->p + 0x202, "HdrS", 4);
	kb_set(b, 0x206, o->version ? o->version : 0x020f, 2);
	b->p[0x211] = o->loadflags ? o->loadflags : 1;
	kb_set(b, 0x22c, o->initrd_addr_max ? o->initrd_addr_max : 0x7fffffff,
	       4);
	kb_set(b, 0x230, 0x200000, 4);
	b->p[0x234] = 1;
	b->p[0x235] = 21;
	kb_set(b, 0x236, o->xloadflags ? o->xloadflags : 0x7f, 2);
	kb_set(b, 0x238, o->cmdline_size ? o->cmdline_size : 2047, 4);
	kb_set(b, 0x248, KIMG_PM_CODE, 4);
	kb_set(b, 0x24c, n, 4);
	kb_set(b, 0x258, o->pref_address ? o->pref_address : 0x100000, 8);
	kb_set(b, 0x260, o->init_size ? o->init_size : 4u << 20, 4);
	/* setup code past the header: must not leak into boot_params */
	for (i = 0x26c; i < 0x400; i++)
		b->p[i] = 0xcc;
	for (i = 0; i < KIMG_PM_CODE; i++)
		*kb_room(b, 1) = i == 0x200 ? 0xf4 : 0x90; /* hlt at +0x200 */
	kb_put(b, payload, n);
}

/* A whole bzImage around the tiny ELF. */
static inline int kimg_tiny_bzimage(struct kbuf *b, enum kimg_comp c,
				    const struct kimg_bz *o)
{
	struct kbuf elf = {0}, z = {0};
	static const struct kimg_bz dflt;
	int r;

	kimg_tiny_elf(&elf);
	r = kimg_compress(&z, c, elf.p, elf.len);
	if (!r)
		kimg_bzimage(b, o ? o : &dflt, z.p, z.len);
	kb_free(&elf);
	kb_free(&z);
	return r;
}

#endif
