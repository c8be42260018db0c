// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for what one host takes from another in the DSM: the
 * DSM messages' decoder, the CL_SPEC decoder, and the engine itself fed a
 * hostile peer's messages. The peer is authenticated, but a buggy or
 * compromised host must only ever stop the VM with an error, never make
 * this one read or write out of bounds.
 *
 * Byte 0 picks the target (mod 4), the rest is the input:
 *   0  dsm__decode; what it accepts encodes back to the same bytes;
 *   1  cluster__spec_get; what it accepts puts back to the same bytes;
 *   2  a 3-host engine (this host is 0, 64 pages interleaved) takes a
 *      sequence of records [from (1 byte) | length (1 byte) | bytes],
 *      each decoded and, if accepted, handed to dsm__recv, with local
 *      faults (from = 0xff: the byte after is the page, the next the
 *      access) in between. Errors are fine; crashes are not.
 *   3  cluster__devs_get (CL_DEVS: the virtio devices and their paths);
 *      what it accepts puts back to the same bytes.
 */
#include <stdint.h>
#include <string.h>

#include "vmm/cluster.h"
#include "vmm/dsm.h"

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c))                                                      \
			__builtin_trap();                                      \
	} while (0)

#define NPAGES 64

static uint8_t mem[NPAGES][DSM_PAGE_BYTES];
static uint8_t mapped[NPAGES];

static int o_send(void *a, unsigned to, const struct dsm_msg *m)
{
	uint8_t buf[DSM_WIRE_MAX];

	CHECK(to < 3 && to != 0);
	CHECK(dsm__encode(m, buf) <= sizeof(buf));
	return 0;
}

static int o_install(void *a, uint64_t gpa, const void *page, bool wr)
{
	CHECK(gpa / DSM_PAGE_BYTES < NPAGES);
	if (page)
		memcpy(mem[gpa / DSM_PAGE_BYTES], page, DSM_PAGE_BYTES);
	mapped[gpa / DSM_PAGE_BYTES] = 1 + wr;
	return 0;
}

static int o_page(void *a, uint64_t gpa)
{
	CHECK(gpa / DSM_PAGE_BYTES < NPAGES);
	return 0;
}

static int o_drop(void *a, uint64_t gpa)
{
	CHECK(gpa / DSM_PAGE_BYTES < NPAGES);
	mapped[gpa / DSM_PAGE_BYTES] = 0;
	return 0;
}

static int o_read(void *a, uint64_t gpa, void *buf)
{
	CHECK(gpa / DSM_PAGE_BYTES < NPAGES);
	memcpy(buf, mem[gpa / DSM_PAGE_BYTES], DSM_PAGE_BYTES);
	return 0;
}

static void o_error(void *a, const char *why)
{
	CHECK(why && *why);
}

static void engine(const uint8_t *p, size_t n)
{
	static const struct dsm_ops ops = {
	    .send = o_send,
	    .install = o_install,
	    .protect = o_page,
	    .unprotect = o_page,
	    .drop = o_drop,
	    .read = o_read,
	    .wake = o_page,
	    .error = o_error,
	};
	struct dsm_config c = {.self = 0,
			       .nhosts = 3,
			       .lowmem = NPAGES * DSM_PAGE_BYTES,
			       .size = NPAGES * DSM_PAGE_BYTES,
			       .interleave = true,
			       .budget_pages = 8};
	static struct dsm d;

	CHECK(dsm__init(&d, &c, &ops) == 0);
	while (n >= 2) {
		uint8_t from = p[0], len = p[1];
		p += 2;
		n -= 2;
		if (from == 0xff) {
			dsm__fault(&d, (len % NPAGES) * DSM_PAGE_BYTES,
				   n && (p[0] & 1));
			if (n) {
				p++;
				n--;
			}
			continue;
		}
		size_t l = len == 0xff ? DSM_WIRE_MAX : len;
		if (l > n)
			break;
		struct dsm_msg m;
		const char *why;
		if (!dsm__decode(p, l, &m, &why))
			dsm__recv(&d, from % 4, &m);
		p += l;
		n -= l;
	}
	dsm__exit(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	const uint8_t *p = data + 1;
	size_t n = size - 1;

	switch (data[0] % 4) {
	case 0: {
		struct dsm_msg m;
		const char *why = NULL;
		uint8_t out[DSM_WIRE_MAX];
		if (dsm__decode(p, n, &m, &why)) {
			CHECK(why);
			break;
		}
		CHECK(dsm__encode(&m, out) == n && !memcmp(out, p, n));
		break;
	}
	case 1: {
		struct cluster_spec s;
		const char *why = NULL;
		uint8_t out[CLUSTER_SPEC_SIZE];
		if (cluster__spec_get(&s, p, n, &why)) {
			CHECK(why);
			break;
		}
		cluster__spec_put(&s, out);
		CHECK(n == CLUSTER_SPEC_SIZE && !memcmp(out, p, n));
		break;
	}
	case 3: {
		static struct cluster_devs s;
		static uint8_t out[2 + VIRTIO_MAX_DEVS * (11 + CLUSTER_DEV_PATH)];
		const char *why = NULL;
		if (cluster__devs_get(&s, p, n, &why)) {
			CHECK(why);
			break;
		}
		CHECK(cluster__devs_put(s.d, s.n, s.vconsole, out,
					sizeof(out)) == n &&
		      !memcmp(out, p, n));
		break;
	}
	default:
		engine(p, n);
	}
	return 0;
}
