// SPDX-License-Identifier: MIT
/*
 * What a jump carries: a vCPU's state (vmm/vcpu_wire.c) and host 0's
 * clocks (vmm/cluster_time.c). Round trips, the size a typical state
 * takes, and refusals of damaged bytes (decoded from exact-size heap
 * copies, so the ASan build sees any read past the end).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "fabric/wire.h"
#include "vmm/cluster.h"
#include "vmm/snapshot.h"

static struct vcpu_state a, b;
static uint8_t buf[16384];

/* A state like a running guest's: registers set, the XSAVE area mostly
 * zero, forty MSRs. */
static void typical(struct vcpu_state *s)
{
	memset(s, 0, sizeof(*s));
	s->has = VCPU_HAS_XSAVE | VCPU_HAS_XCRS | VCPU_HAS_DREGS;
	s->regs.rip = 0xffffffff81000000;
	s->regs.rsp = 0xffffc90000003f00;
	s->regs.rax = 0x1234;
	s->regs.rflags = 0x246;
	s->sregs.cr0 = 0x80050033;
	s->sregs.cr3 = 0x1000;
	s->sregs.efer = 0xd01;
	for (int i = 0; i < 64; i++)
		s->xsave.region[i] = 0x1f80 + i;
	s->xcrs.nr_xcrs = 1;
	s->xcrs.xcrs[0].value = 7;
	for (int i = 0; i < 1024; i += 16)
		s->lapic.regs[i] = i;
	s->mp.mp_state = KVM_MP_STATE_RUNNABLE;
	s->dregs.dr7 = 0x400;
	s->nr_msrs = 40;
	for (unsigned i = 0; i < s->nr_msrs; i++)
		s->msrs[i] = (struct kvm_msr_entry){ .index = 0xc0000080 + i,
						     .data = i * 0x1111 };
}

static int decode(const uint8_t *p, size_t n, struct vcpu_state *s,
		  const char **why)
{
	uint8_t *copy = malloc(n ? n : 1);
	int r;

	cr_assert(copy);
	memcpy(copy, p, n);
	*why = NULL;
	r = vcpu__state_decode(copy, n, s, why);
	free(copy);
	if (r)
		cr_expect(*why && (*why)[0]);
	return r;
}

Test(vcpu_wire, round_trip_fits_one_message)
{
	const char *why;
	size_t n;

	typical(&a);
	n = vcpu__state_encode(&a, buf, sizeof(buf));
	cr_assert(n > 0);
	cr_expect(n < 3000, "a typical state took %zu bytes", n);
	cr_assert(n <= FABRIC_MAX_PAYLOAD);
	cr_assert_eq(decode(buf, n, &b, &why), 0, "%s", why);
	cr_expect(!memcmp(&a, &b, sizeof(a)));
}

Test(vcpu_wire, fpu_only_state)
{
	const char *why;

	typical(&a);
	a.has = 0;
	memset(&a.xsave, 0, sizeof(a.xsave));
	memset(&a.xcrs, 0, sizeof(a.xcrs));
	memset(&a.dregs, 0, sizeof(a.dregs));
	a.fpu.fcw = 0x37f;
	size_t n = vcpu__state_encode(&a, buf, sizeof(buf));
	cr_assert(n);
	cr_assert_eq(decode(buf, n, &b, &why), 0, "%s", why);
	cr_expect(!memcmp(&a, &b, sizeof(a)));
}

Test(vcpu_wire, too_big_for_the_buffer)
{
	typical(&a);
	srand(1);
	for (unsigned i = 0; i < 1024; i++)
		a.xsave.region[i] = rand();
	a.nr_msrs = SNAP_MAX_MSRS;
	for (unsigned i = 0; i < a.nr_msrs; i++)
		a.msrs[i] = (struct kvm_msr_entry){
			.index = rand(), .data = (uint64_t)rand() << 32 | rand()
		};
	for (unsigned i = 0; i < sizeof(a.lapic.regs); i++)
		a.lapic.regs[i] = rand();
	cr_expect_eq(vcpu__state_encode(&a, buf, FABRIC_MAX_PAYLOAD), 0);
	cr_expect_eq(vcpu__state_encode(&a, buf, 4), 0);
}

Test(vcpu_wire, damaged_input_refused)
{
	const char *why;
	size_t n;

	typical(&a);
	n = vcpu__state_encode(&a, buf, sizeof(buf));
	cr_assert(n);
	for (size_t k = 0; k < n; k += n / 7 + 1)
		cr_expect(decode(buf, k, &b, &why), "truncated to %zu", k);
	buf[0] ^= 1; /* magic */
	cr_expect(decode(buf, n, &b, &why));
	buf[0] ^= 1;
	uint32_t big = 1u << 30; /* declared size */
	memcpy(buf + 4, &big, 4);
	cr_expect(decode(buf, n, &b, &why));
	cr_expect(decode(buf, 0, &b, &why));
}

Test(vcpu_wire, parts_must_add_up)
{
	const char *why;

	typical(&a);
	a.nr_msrs = SNAP_MAX_MSRS + 1; /* the encoder refuses it */
	cr_expect_eq(vcpu__state_encode(&a, buf, sizeof(buf)), 0);
	cr_expect(decode((const uint8_t *)"SLJ1\0\0\0\0", 8, &b, &why));
}

Test(cluster_time, round_trip_and_bad_length)
{
	struct cluster_time t = { .flags = CLUSTER_TIME_TSC |
					    CLUSTER_TIME_CLOCK,
				  .tsc_offset = (uint64_t)-123456789,
				  .tsc_khz = 2400000,
				  .clock = 42,
				  .realtime = 1ull << 60,
				  .host_tsc = 77 },
			    u;
	uint8_t m[CLUSTER_TIME_SIZE];

	memset(t.boot_id, 0xab, sizeof(t.boot_id));
	cluster__time_put(&t, m);
	cr_assert_eq(cluster__time_get(&u, m, sizeof(m)), 0);
	cr_expect(u.flags == t.flags && u.tsc_offset == t.tsc_offset &&
		  u.tsc_khz == t.tsc_khz && u.clock == t.clock &&
		  u.realtime == t.realtime && u.host_tsc == t.host_tsc &&
		  !memcmp(u.boot_id, t.boot_id, sizeof(t.boot_id)));
	cr_expect(cluster__time_get(&u, m, sizeof(m) - 1));
	m[0] = 0x80; /* unknown flag */
	cr_expect(cluster__time_get(&u, m, sizeof(m)));
}
