// SPDX-License-Identifier: MIT
/*
 * Host-side decompression of a bzImage payload. The guest could unpack
 * itself, but its decompressor runs at CPL0, which the PVM KVM here emulates
 * instruction by instruction: minutes for a stock kernel instead of a
 * fraction of a second on the host.
 *
 * Every decoder writes into one growing buffer capped at `max`, so a
 * decompression bomb costs at most that much memory.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include "vmm/loader_priv.h"

#define LZ4_LEGACY_MAGIC 0x184C2102u
#define LZ4_LEGACY_BLOCK (8u << 20)	/* fixed by the legacy format */
#define XZ_MEMLIMIT	 (128ULL << 20) /* kernels use a 32 MiB dictionary */

struct out {
	uint8_t *p;
	size_t len, cap, max;
	const char *name;
	char *err;
	size_t errlen;
};

/* Make room for at least `need` more bytes (capped at max). Returns 0 if
 * there is any room at all afterwards. */
static int grow(struct out *o, size_t need)
{
	size_t cap = o->cap ? o->cap : 1u << 16;
	uint8_t *p;

	while (cap - o->len < need && cap < o->max)
		cap = cap > o->max / 2 ? o->max : cap * 2;
	if (cap > o->max)
		cap = o->max;
	if (cap != o->cap) {
		p = realloc(o->p, cap);
		if (!p) {
			loader_err(
			    o->err, o->errlen,
			    "kernel: %s payload: out of memory (%zu MiB)",
			    o->name, cap >> 20);
			return -1;
		}
		o->p = p;
		o->cap = cap;
	}
	if (o->len == o->cap) {
		loader_err(o->err, o->errlen,
			   "kernel: %s payload decompresses to more than "
			   "%llu MiB (the limit is the smaller of guest RAM "
			   "and %llu MiB)",
			   o->name, MiB(o->max), MiB(LOADER_DECOMP_MAX));
		return -1;
	}
	return 0;
}

static int bad(struct out *o, const char *what)
{
	loader_err(o->err, o->errlen, "kernel: %s payload is %s", o->name,
		   what);
	return -1;
}

static int unxz(struct out *o, const uint8_t *in, size_t len)
{
	lzma_stream s = LZMA_STREAM_INIT;
	lzma_ret r;

	if (lzma_stream_decoder(&s, XZ_MEMLIMIT, 0) != LZMA_OK)
		return bad(o, "undecodable (xz init failed)");
	s.next_in = in;
	s.avail_in = len;
	do {
		if (grow(o, 1)) {
			lzma_end(&s);
			return -1;
		}
		s.next_out = o->p + o->len;
		s.avail_out = o->cap - o->len;
		r = lzma_code(&s, LZMA_FINISH);
		o->len = o->cap - s.avail_out;
	} while (r == LZMA_OK);
	lzma_end(&s);
	switch (r) {
	case LZMA_STREAM_END:
		return 0;
	case LZMA_BUF_ERROR:
		return bad(o, "truncated");
	case LZMA_MEMLIMIT_ERROR:
		return bad(o, "asking for more than 128 MiB of decoder memory");
	case LZMA_FORMAT_ERROR:
	case LZMA_OPTIONS_ERROR:
		return bad(o, "not a valid xz stream");
	default:
		return bad(o, "corrupt (xz data or check error)");
	}
}

static int is_zstd(const uint8_t *p, size_t len)
{
	uint32_t magic = len >= 4 ? loader_le32(p) : 0;

	return magic == ZSTD_MAGICNUMBER ||
	       (magic & ZSTD_MAGIC_SKIPPABLE_MASK) ==
		   ZSTD_MAGIC_SKIPPABLE_START;
}

/* Frames are decoded back to back while more start in the input; the
 * kernel's 4-byte size trailer after the last frame ends the loop. */
static int unzstd(struct out *o, const uint8_t *in, size_t len)
{
	ZSTD_DCtx *d = ZSTD_createDCtx();
	ZSTD_inBuffer ib = {in, len, 0};
	ZSTD_outBuffer ob;
	size_t r;
	int ret = -1;

	if (!d)
		return bad(o, "undecodable (zstd init failed)");
	for (;;) {
		if (grow(o, 1))
			break;
		ob = (ZSTD_outBuffer){o->p, o->cap, o->len};
		r = ZSTD_decompressStream(d, &ob, &ib);
		o->len = ob.pos;
		if (ZSTD_isError(r)) {
			loader_err(o->err, o->errlen,
				   "kernel: zstd payload is corrupt (%s)",
				   ZSTD_getErrorName(r));
			break;
		}
		if (r == 0 && !is_zstd(in + ib.pos, len - ib.pos)) {
			ret = 0;
			break;
		}
		if (r != 0 && ib.pos == ib.size && ob.pos < ob.size) {
			bad(o, "truncated");
			break;
		}
	}
	ZSTD_freeDCtx(d);
	return ret;
}

static int ungzip(struct out *o, const uint8_t *in, size_t len)
{
	z_stream z;
	int r;

	if (len > UINT_MAX)
		return bad(o, "too large for zlib");
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return bad(o, "undecodable (zlib init failed)");
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	do {
		if (grow(o, 1)) {
			inflateEnd(&z);
			return -1;
		}
		z.next_out = o->p + o->len;
		z.avail_out = (uInt)(o->cap - o->len);
		r = inflate(&z, Z_NO_FLUSH);
		o->len = o->cap - z.avail_out;
	} while (r == Z_OK);
	inflateEnd(&z);
	if (r == Z_STREAM_END)
		return 0;
	if (r == Z_BUF_ERROR)
		return bad(o, "truncated");
	return bad(o, "corrupt");
}

/*
 * The kernel's lz4 is the legacy frame: magic, then blocks of a 4-byte
 * little-endian compressed size and the data, each unpacking to at most
 * 8 MiB; the magic may repeat (concatenated frames). No end marker: the
 * kernel build appends the uncompressed size as a last 4-byte word, so a
 * lone final word that equals the output size ends the stream too.
 */
static int unlz4(struct out *o, const uint8_t *in, size_t len)
{
	size_t pos = 4, room;
	uint32_t c;
	int r;

	while (len - pos >= 4) {
		c = loader_le32(in + pos);
		pos += 4;
		if (c == LZ4_LEGACY_MAGIC)
			continue;
		if (c == 0 || (pos == len && c == o->len))
			return 0;
		if (c > (uint32_t)LZ4_compressBound(LZ4_LEGACY_BLOCK))
			return bad(o, "corrupt (lz4 block size too large)");
		if (c > len - pos)
			return bad(o, "truncated");
		if (grow(o, LZ4_LEGACY_BLOCK))
			return -1;
		room = o->cap - o->len;
		if (room > LZ4_LEGACY_BLOCK)
			room = LZ4_LEGACY_BLOCK;
		r = LZ4_decompress_safe((const char *)in + pos,
					(char *)o->p + o->len, (int)c,
					(int)room);
		if (r < 0)
			return bad(o, room < LZ4_LEGACY_BLOCK
					  ? "corrupt (lz4 block) or over the "
					    "size limit"
					  : "corrupt (lz4 block)");
		o->len += (size_t)r;
		pos += c;
	}
	return pos == len ? 0 : bad(o, "truncated");
}

static const struct {
	const char *name;
	uint8_t magic[6];
	size_t n;
	int (*fn)(struct out *o, const uint8_t *in, size_t len);
} fmts[] = {
    {"xz", {0xfd, '7', 'z', 'X', 'Z', 0}, 6, unxz},
    {"lz4", {0x02, 0x21, 0x4c, 0x18}, 4, unlz4},
    {"zstd", {0x28, 0xb5, 0x2f, 0xfd}, 4, unzstd},
    {"gzip", {0x1f, 0x8b}, 2, ungzip},
};

int loader_decompress(const uint8_t *in, size_t len, size_t max,
		      struct loader_buf *out, const char **name, char *err,
		      size_t errlen)
{
	struct out o = {.max = max, .err = err, .errlen = errlen};
	size_t i;

	for (i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		if (len < fmts[i].n || memcmp(in, fmts[i].magic, fmts[i].n))
			continue;
		o.name = *name = fmts[i].name;
		if (fmts[i].fn(&o, in, len)) {
			free(o.p);
			return -1;
		}
		out->p = o.p;
		out->len = o.len;
		return 0;
	}
	return 1;
}
