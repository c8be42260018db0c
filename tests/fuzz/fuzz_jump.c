// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for what a jump carries between hosts: a vCPU's state
 * (vcpu__state_decode) and host 0's clocks (cluster__time_get). Both come
 * from another host, so a peer with the VM's key could send anything.
 *
 * Input: byte 0 picks the run.
 *   0: the rest is an encoded state, decoded as it is.
 *   1: the rest is a CL_GO payload (clocks); what parses re-encodes to
 *      the same bytes.
 *   2: the rest fills a vCPU state (parts and MSR count clamped) that is
 *      encoded, decoded, and must come back the same.
 *   3: as 2, then the encoded bytes are damaged at offsets and with
 *      values taken from the input's last 8 bytes before decoding: valid
 *      compressed data with wrong contents reaches the parser this way.
 *   4: the rest is a CL_TRACE batch from host (byte 1 % 4) of a VM of
 *      3 hosts and 4 vCPUs, written to /dev/null: refused or formatted,
 *      never read out of bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/cluster.h"
#include "vmm/snapshot.h"
#include "vmm/trace.h"

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c))                                                      \
			__builtin_trap();                                      \
	} while (0)

#define CAP 16384

/* Member by member, so the structure's padding stays zero (the wire
 * carries members, not padding). */
static void from_bytes(struct vcpu_state *s, const uint8_t *p, size_t n)
{
	size_t off = 0;

	memset(s, 0, sizeof(*s));
#define FILL(f)                                                                \
	do {                                                                   \
		size_t k = sizeof(s->f) < n - off ? sizeof(s->f) : n - off;    \
		memcpy(&s->f, p + off, k);                                     \
		off += k;                                                      \
	} while (0)
	FILL(has);
	FILL(nr_msrs);
	FILL(regs);
	FILL(sregs);
	FILL(lapic);
	FILL(events);
	FILL(mp);
	FILL(xcrs);
	FILL(dregs);
	FILL(fpu);
	FILL(xsave);
	FILL(msrs);
#undef FILL
	s->has &= VCPU_HAS_XSAVE | VCPU_HAS_XCRS | VCPU_HAS_DREGS;
	s->nr_msrs %= SNAP_MAX_MSRS + 1;
	/* Parts the state does not hold are not carried: zero them so the
	 * round trip can compare whole structures. */
	if (s->has & VCPU_HAS_XSAVE)
		memset(&s->fpu, 0, sizeof(s->fpu));
	else
		memset(&s->xsave, 0, sizeof(s->xsave));
	if (!(s->has & VCPU_HAS_XCRS))
		memset(&s->xcrs, 0, sizeof(s->xcrs));
	if (!(s->has & VCPU_HAS_DREGS))
		memset(&s->dregs, 0, sizeof(s->dregs));
	memset(s->msrs + s->nr_msrs, 0,
	       (SNAP_MAX_MSRS - s->nr_msrs) * sizeof(s->msrs[0]));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vcpu_state a, b;
	static uint8_t enc[CAP];
	const char *why = NULL;

	if (!size)
		return 0;
	uint8_t mode = data[0] % 5;
	const uint8_t *p = data + 1;
	size_t n = size - 1;

	if (mode == 0) {
		uint8_t *copy = malloc(n ? n : 1);
		memcpy(copy, p, n);
		if (vcpu__state_decode(copy, n, &a, &why))
			CHECK(why && why[0]);
		else
			CHECK(a.nr_msrs <= SNAP_MAX_MSRS);
		free(copy);
		return 0;
	}
	if (mode == 4) {
		static bool open;
		char err[128];
		if (!open && trace__open("/dev/null", 3, 4, err, sizeof(err)))
			return 0;
		open = true;
		if (!n)
			return 0;
		uint8_t *copy = malloc(n - 1 ? n - 1 : 1);
		memcpy(copy, p + 1, n - 1);
		if (trace__recv(p[0] % 4, copy, n - 1, &why))
			CHECK(why && why[0]);
		free(copy);
		return 0;
	}
	if (mode == 1) {
		struct cluster_time t;
		uint8_t out[CLUSTER_TIME_SIZE];
		if (cluster__time_get(&t, p, n))
			return 0;
		cluster__time_put(&t, out);
		CHECK(n == sizeof(out) && !memcmp(out, p, n));
		return 0;
	}
	from_bytes(&a, p, n);
	size_t len = vcpu__state_encode(&a, enc, sizeof(enc));
	if (!len)
		return 0; /* incompressible: the jump refuses it */
	if (mode == 3 && n >= 8) {
		for (int i = 0; i < 4; i++)
			enc[(p[n - 8 + 2 * i] * 131u + i) % len] ^=
				p[n - 7 + 2 * i] | 1;
		if (vcpu__state_decode(enc, len, &b, &why))
			CHECK(why && why[0]);
		return 0;
	}
	CHECK(!vcpu__state_decode(enc, len, &b, &why));
	CHECK(!memcmp(&a, &b, sizeof(a)));
	return 0;
}
