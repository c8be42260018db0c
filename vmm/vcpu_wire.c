// SPDX-License-Identifier: MIT
/*
 * A vCPU's state on the wire. The KVM structures are the x86-64 UAPI's
 * fixed layouts, the same on every host that can run the VM, so their
 * bytes go as they are; what is checked is that the bytes are exactly the
 * parts the header announces, so a decoded state is never half-filled.
 */
#include <lz4.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/snapshot.h"

#define MAGIC	0x314a4c53u /* "SLJ1" */
#define HAS_ALL (VCPU_HAS_XSAVE | VCPU_HAS_XCRS | VCPU_HAS_DREGS)

struct wire_hdr {
	uint32_t version, has, nr_msrs, pad;
};

/* The parts in wire order: (offset in the state, size), by `has`. */
struct part {
	size_t off, len;
};

static unsigned parts(uint32_t has, uint32_t nr_msrs, struct part *p)
{
	unsigned n = 0;

#define PART(f)                                                                \
	(p[n++] = (struct part){offsetof(struct vcpu_state, f),                \
				sizeof(((struct vcpu_state *)0)->f)})
	PART(regs);
	PART(sregs);
	if (has & VCPU_HAS_XSAVE)
		PART(xsave);
	else
		PART(fpu);
	if (has & VCPU_HAS_XCRS)
		PART(xcrs);
	PART(lapic);
	PART(events);
	PART(mp);
	if (has & VCPU_HAS_DREGS)
		PART(dregs);
#undef PART
	p[n++] = (struct part){offsetof(struct vcpu_state, msrs),
			       nr_msrs * sizeof(struct kvm_msr_entry)};
	return n;
}

#define RAW_MAX (sizeof(struct wire_hdr) + sizeof(struct vcpu_state))

size_t vcpu__state_encode(const struct vcpu_state *s, uint8_t *out, size_t cap)
{
	struct wire_hdr h = {.version = VCPU_WIRE_VERSION,
			     .has = s->has & HAS_ALL,
			     .nr_msrs = s->nr_msrs};
	struct part p[10];
	uint8_t *raw;
	size_t len = sizeof(h);
	int z;

	if (s->nr_msrs > SNAP_MAX_MSRS || cap < 8)
		return 0;
	raw = malloc(RAW_MAX);
	if (!raw)
		return 0;
	memcpy(raw, &h, sizeof(h));
	unsigned n = parts(h.has, h.nr_msrs, p);
	for (unsigned i = 0; i < n; i++) {
		memcpy(raw + len, (const uint8_t *)s + p[i].off, p[i].len);
		len += p[i].len;
	}
	uint32_t magic = MAGIC, rl = len;
	memcpy(out, &magic, 4);
	memcpy(out + 4, &rl, 4);
	z = LZ4_compress_default((const char *)raw, (char *)out + 8, len,
				 cap - 8);
	free(raw);
	return z > 0 ? (size_t)z + 8 : 0;
}

int vcpu__state_decode(const uint8_t *in, size_t len, struct vcpu_state *s,
		       const char **why)
{
	struct wire_hdr h;
	struct part p[10];
	uint32_t magic, rl;
	uint8_t *raw;
	int r = -1;

	if (len < 8 || len > 8 + (size_t)LZ4_compressBound(RAW_MAX)) {
		*why = "vCPU state: bad length";
		return -1;
	}
	memcpy(&magic, in, 4);
	memcpy(&rl, in + 4, 4);
	if (magic != MAGIC) {
		*why = "vCPU state: bad magic";
		return -1;
	}
	if (rl < sizeof(h) || rl > RAW_MAX) {
		*why = "vCPU state: bad size";
		return -1;
	}
	raw = malloc(rl);
	if (!raw) {
		*why = "vCPU state: out of memory";
		return -1;
	}
	if (LZ4_decompress_safe((const char *)in + 8, (char *)raw, len - 8,
				rl) != (int)rl) {
		*why = "vCPU state: corrupt compressed data";
		goto out;
	}
	memcpy(&h, raw, sizeof(h));
	if (h.version != VCPU_WIRE_VERSION) {
		*why = "vCPU state: unknown version";
		goto out;
	}
	if ((h.has & ~HAS_ALL) || h.nr_msrs > SNAP_MAX_MSRS || h.pad) {
		*why = "vCPU state: bad header";
		goto out;
	}
	unsigned n = parts(h.has, h.nr_msrs, p);
	size_t want = sizeof(h);
	for (unsigned i = 0; i < n; i++)
		want += p[i].len;
	if (want != rl) {
		*why = "vCPU state: its parts do not add up to its size";
		goto out;
	}
	memset(s, 0, sizeof(*s));
	s->has = h.has;
	s->nr_msrs = h.nr_msrs;
	size_t off = sizeof(h);
	for (unsigned i = 0; i < n; i++) {
		memcpy((uint8_t *)s + p[i].off, raw + off, p[i].len);
		off += p[i].len;
	}
	r = 0;
out:
	free(raw);
	return r;
}
