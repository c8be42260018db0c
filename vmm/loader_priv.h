/* SPDX-License-Identifier: MIT */
/*
 * What the loader's files share with each other and nobody else: error
 * formatting, the RAM check every guest write goes through, and the three
 * format back ends (ELF, bzImage, host-side decompression).
 */
#ifndef SLOS_LOADER_PRIV_H
#define SLOS_LOADER_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include <asm/bootparam.h>

#include "vmm/loader.h"

#define MiB(x) ((unsigned long long)(x) >> 20)

void loader_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Host pointer for [gpa, gpa+len) if all of it is RAM (len > 0), else NULL;
 * safe against gpa + len wrapping. */
void *loader_ram(const struct mem *m, uint64_t gpa, uint64_t len);

/* Say why [gpa, gpa+len) is not RAM, for an error message: "outside guest
 * RAM (512 MiB): use a larger --mem" or "in the MMIO hole [3 GiB, 4 GiB)". */
const char *loader_ram_why(const struct mem *m, uint64_t gpa, uint64_t len,
			   char *buf, size_t n);

/* Load a vmlinux-style ELF; `who` prefixes every error ("kernel", "kernel
 * (xz payload)"). Fills entry, load_lo, load_hi only. */
int loader_elf_load(struct mem *m, const uint8_t *f, size_t len,
		    const char *who, struct kernel_image *out, char *err,
		    size_t errlen);

int loader_bzimage_load(struct mem *m, const uint8_t *f, size_t len,
			struct kernel_image *out, char *err, size_t errlen);

struct loader_buf {
	uint8_t *p;
	size_t len;
};

/*
 * Decompress in[0, len) by its magic, into at most `max` bytes. Returns 0
 * with *out filled (free out->p) and *name set, 1 if the format is not one
 * the host decodes (nothing allocated), -1 with err if the stream is
 * corrupt, truncated or larger than max.
 */
int loader_decompress(const uint8_t *in, size_t len, size_t max,
		      struct loader_buf *out, const char **name, char *err,
		      size_t errlen);

/* The setup header the loader writes for a kernel that has none. */
void loader_default_setup(struct kernel_image *k);

static inline void loader_get_hdr(const struct kernel_image *k,
				  struct setup_header *h)
{
	_Static_assert(sizeof(*h) <= sizeof(k->setup), "setup header size");
	__builtin_memcpy(h, k->setup, sizeof(*h));
}

static inline void loader_put_hdr(struct kernel_image *k,
				  const struct setup_header *h)
{
	__builtin_memcpy(k->setup, h, sizeof(*h));
}

static inline uint32_t loader_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

#endif
