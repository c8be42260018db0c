// SPDX-License-Identifier: MIT
/*
 * bzImage: the setup header tells where the compressed vmlinux (payload)
 * is; it is unpacked on the host and loaded as an ELF, so the guest starts
 * in the kernel proper instead of running its own decompressor emulated.
 * Only a payload in a format the host cannot decode is loaded the classic
 * way (protected-mode code at pref_address, entry at +0x200).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/loader_priv.h"

#define HDR_OFF	    0x1f1
#define STARTUP_64  0x200  /* startup_64 in the protected-mode code */
#define MIN_HDR_END 0x264  /* through init_size: every 2.12+ header has it */
#define MIN_VERSION 0x020c /* 2.12: xloadflags, so XLF_KERNEL_64 */

/* The kernel needs [start, start + init_size) before it reads e820. */
static int check_init_size(struct mem *m, const struct setup_header *h,
			   struct kernel_image *out, char *err, size_t errlen)
{
	uint64_t start = out->load_lo, end = start + h->init_size;
	char why[96];

	if (h->init_size && !loader_ram(m, start, h->init_size)) {
		loader_err(
		    err, errlen,
		    "kernel: needs [0x%llx,0x%llx) to initialise "
		    "(init_size %u MiB), which %s",
		    (unsigned long long)start, (unsigned long long)end,
		    h->init_size >> 20,
		    loader_ram_why(m, start, h->init_size, why, sizeof(why)));
		return -1;
	}
	if (end > out->load_hi)
		out->load_hi = end;
	return 0;
}

/* The format is unknown: the kernel will decompress itself in the guest. */
static int load_pm(struct mem *m, const uint8_t *pm, size_t len,
		   struct setup_header *h, struct kernel_image *out, char *err,
		   size_t errlen)
{
	uint64_t at = h->pref_address ? h->pref_address : MEM_HIGH;
	char why[96];
	uint8_t *dst;

	if (len <= STARTUP_64) {
		loader_err(err, errlen,
			   "kernel: bzImage protected-mode code is %zu bytes, "
			   "too short to hold startup_64 at +0x200",
			   len);
		return -1;
	}
	if (at < MEM_HIGH || at > UINT32_MAX) {
		loader_err(err, errlen,
			   "kernel: bzImage pref_address 0x%llx is not between "
			   "1 MiB and 4 GiB",
			   (unsigned long long)at);
		return -1;
	}
	dst = loader_ram(m, at, len);
	if (!dst) {
		loader_err(
		    err, errlen, "kernel: bzImage code [0x%llx,0x%llx) %s",
		    (unsigned long long)at, (unsigned long long)(at + len),
		    loader_ram_why(m, at, len, why, sizeof(why)));
		return -1;
	}
	out->load_lo = at;
	out->load_hi = at + len;
	if (check_init_size(m, h, out, err, errlen))
		return -1;
	memcpy(dst, pm, len);
	out->entry = at + STARTUP_64;
	h->code32_start = (uint32_t)at;
	return 0;
}

static int load_payload(struct mem *m, const uint8_t *p, size_t len,
			struct setup_header *h, struct kernel_image *out,
			char *err, size_t errlen)
{
	size_t max = m->size < LOADER_DECOMP_MAX ? m->size : LOADER_DECOMP_MAX;
	struct loader_buf b = {(uint8_t *)p, len};
	const char *name = "none";
	char who[48];
	int r = 1;

	if (len < 4 || memcmp(p, "\177ELF", 4)) {
		r = loader_decompress(p, len, max, &b, &name, err, errlen);
		if (r != 0)
			return r;
	}
	snprintf(who, sizeof(who), "kernel (%s payload)", name);
	if (b.len < 4 || memcmp(b.p, "\177ELF", 4)) {
		loader_err(err, errlen, "%s: not an ELF vmlinux", who);
		r = -1;
	} else {
		r = loader_elf_load(m, b.p, b.len, who, out, err, errlen);
	}
	if (r == 0)
		r = check_init_size(m, h, out, err, errlen);
	if (b.p != p)
		free(b.p);
	out->decompressor = name;
	return r;
}

int loader_bzimage_load(struct mem *m, const uint8_t *f, size_t len,
			struct kernel_image *out, char *err, size_t errlen)
{
	size_t hdr_end = 0x202 + (size_t)f[0x201], pm_off, pm_len;
	unsigned version = len >= 0x208 ? f[0x206] | f[0x207] << 8 : 0;
	struct setup_header h;
	const uint8_t *pm;
	int r;

	/* The version first: an old kernel's header is also a short one, and
	 * "too old" is the better message. */
	if (len >= 0x208 && version < MIN_VERSION) {
		loader_err(err, errlen,
			   "kernel: bzImage boot protocol %u.%02u is too old "
			   "(64-bit entry needs 2.12+)",
			   version >> 8, version & 0xff);
		return -1;
	}
	if (hdr_end < MIN_HDR_END || hdr_end > len) {
		loader_err(err, errlen,
			   "kernel: bzImage setup header %s (ends at 0x%zx)",
			   hdr_end > len ? "truncated" : "too short", hdr_end);
		return -1;
	}
	/* Past the header's end the file holds setup code, not fields. */
	if (hdr_end > 0x280)
		hdr_end = 0x280;
	memcpy(out->setup, f + HDR_OFF, hdr_end - HDR_OFF);
	out->has_setup = 1;
	loader_get_hdr(out, &h);
	if (!(h.xloadflags & XLF_KERNEL_64)) {
		loader_err(err, errlen,
			   "kernel: bzImage has no 64-bit entry point "
			   "(XLF_KERNEL_64 clear: a 32-bit kernel?)");
		return -1;
	}
	if (!(h.loadflags & LOADED_HIGH)) {
		loader_err(err, errlen,
			   "kernel: zImage (not loaded high) is unsupported");
		return -1;
	}
	pm_off = ((size_t)(h.setup_sects ? h.setup_sects : 4) + 1) * 512;
	if (pm_off >= len) {
		loader_err(err, errlen,
			   "kernel: bzImage truncated: %zu bytes, setup code "
			   "alone takes %zu",
			   len, pm_off);
		return -1;
	}
	pm = f + pm_off;
	pm_len = len - pm_off;
	if (h.payload_offset > pm_len ||
	    h.payload_length > pm_len - h.payload_offset) {
		loader_err(err, errlen,
			   "kernel: bzImage payload at 0x%zx+0x%x is past the "
			   "end of the file (%zu bytes)",
			   pm_off + h.payload_offset, h.payload_length, len);
		return -1;
	}
	r = 1;
	if (h.payload_length)
		r = load_payload(m, pm + h.payload_offset, h.payload_length, &h,
				 out, err, errlen);
	if (r == 1) {
		out->decompressor = NULL;
		r = load_pm(m, pm, pm_len, &h, out, err, errlen);
	}
	loader_put_hdr(out, &h);
	return r;
}
