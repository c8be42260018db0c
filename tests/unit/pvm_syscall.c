// SPDX-License-Identifier: MIT
/* Decoding and decisions of the PVM system-call hook (vmm/pvm_syscall.c). */
#include <criterion/criterion.h>
#include <string.h>

#include "vmm/pvm.h"

/* Linux's values: kernel CS 0x10, user32 CS 0x23 (user64 0x33). */
#define STAR   0x0023001000000000ULL
#define LSTAR  0xffffffff81a00080ULL
#define SFMASK 0x47700ULL /* TF DF IF IOPL NT AC */

static const struct pvm_sys_msrs msrs = {
    .star = STAR, .lstar = LSTAR, .sfmask = SFMASK};

static void gate(uint8_t g[16], uint64_t h, uint16_t sel, unsigned type,
		 unsigned dpl, unsigned ist, bool p)
{
	uint64_t lo = (h & 0xffff) | ((uint64_t)sel << 16) |
		      ((uint64_t)ist << 32) | ((uint64_t)type << 40) |
		      ((uint64_t)dpl << 45) | ((uint64_t)p << 47) |
		      ((h >> 16 & 0xffff) << 48);
	uint64_t hi = h >> 32;

	memcpy(g, &lo, 8);
	memcpy(g + 8, &hi, 8);
}

Test(pvm_syscall, gate_decode)
{
	uint8_t g[16];
	struct pvm_gate d;

	gate(g, 0xffffffff81c01230ULL, 0x10, 0xe, 3, 2, true);
	pvm__gate_decode(g, &d);
	cr_expect_eq(d.handler, 0xffffffff81c01230ULL);
	cr_expect_eq(d.sel, 0x10);
	cr_expect_eq(d.type, 0xe);
	cr_expect_eq(d.dpl, 3);
	cr_expect_eq(d.ist, 2);
	cr_expect(d.present);
	gate(g, 0x1234, 0x8, 0xf, 0, 0, false);
	pvm__gate_decode(g, &d);
	cr_expect_eq(d.handler, 0x1234);
	cr_expect(!d.present);
	cr_expect_eq(d.type, 0xf);
}

Test(pvm_syscall, frame_decode_with_and_without_error_code)
{
	const uint64_t w[6] = {5, 0x401000, 0x33, 0x202, 0x7ffd000, 0x2b};
	struct pvm_frame f;

	pvm__frame_decode(w, true, &f);
	cr_expect_eq(f.err, 5);
	cr_expect_eq(f.rip, 0x401000);
	cr_expect_eq(f.cs, 0x33);
	cr_expect_eq(f.rflags, 0x202);
	cr_expect_eq(f.rsp, 0x7ffd000);
	cr_expect_eq(f.ss, 0x2b);
	pvm__frame_decode(w + 1, false, &f);
	cr_expect_eq(f.err, 0);
	cr_expect_eq(f.rip, 0x401000);
	cr_expect_eq(f.ss, 0x2b);
}

Test(pvm_syscall, star_segments)
{
	struct kvm_segment cs, ss;

	pvm__star_segments(STAR, &cs, &ss);
	cr_expect_eq(cs.selector, 0x10);
	cr_expect_eq(cs.dpl, 0);
	cr_expect_eq(cs.l, 1);
	cr_expect_eq(cs.type, 0xb);
	cr_expect_eq(cs.present, 1);
	cr_expect_eq(ss.selector, 0x18);
	cr_expect_eq(ss.dpl, 0);
	cr_expect_eq(ss.type, 0x3);
	/* RPL bits in STAR are ignored for the kernel CS. */
	pvm__star_segments(STAR | (3ULL << 32), &cs, &ss);
	cr_expect_eq(cs.selector, 0x10);
	cr_expect_eq(ss.selector, 0x18);
}

/* The state at the #PF handler after a user `syscall` at 0x401000. */
static void syscall_pf(struct pvm_frame *f, struct kvm_regs *r)
{
	*f = (struct pvm_frame){.err = 5,
				.rip = LSTAR,
				.cs = 0x33,
				.rflags = 0x46 | PVM_RFLAGS_RF,
				.rsp = 0x7ffd000,
				.ss = 0x2b};
	*r = (struct kvm_regs){.rip = 0xffffffff81a00b00ULL,
			       .rsp = 0xfffffe0000002fd0ULL,
			       .rflags = 0x2,
			       .rcx = 0x401002,
			       .r11 = 0x246};
}

Test(pvm_syscall, syscall_pf_is_recognised)
{
	struct pvm_frame f;
	struct kvm_regs r;

	syscall_pf(&f, &r);
	cr_expect(pvm__is_syscall_pf(&f, &r, &msrs, true));
	/* no 0f 05 before RCX: a jump to LSTAR, not a syscall */
	cr_expect(!pvm__is_syscall_pf(&f, &r, &msrs, false));
}

Test(pvm_syscall, other_faults_are_not_syscalls)
{
	struct pvm_frame f;
	struct kvm_regs r;

	syscall_pf(&f, &r);
	f.cs = 0x10; /* from the kernel */
	cr_expect(!pvm__is_syscall_pf(&f, &r, &msrs, true));
	syscall_pf(&f, &r);
	f.rip = 0x401000; /* an ordinary user fault */
	cr_expect(!pvm__is_syscall_pf(&f, &r, &msrs, true));
	syscall_pf(&f, &r);
	f.rflags |= PVM_RFLAGS_IF; /* jmp to LSTAR: IF not masked */
	cr_expect(!pvm__is_syscall_pf(&f, &r, &msrs, true));
	syscall_pf(&f, &r);
	r.r11 = 0x2c7; /* R11 does not match the flags the fault saw */
	cr_expect(!pvm__is_syscall_pf(&f, &r, &msrs, true));
	syscall_pf(&f, &r);
	struct pvm_sys_msrs none = {0};
	cr_expect(!pvm__is_syscall_pf(&f, &r, &none, true));
}

Test(pvm_syscall, enter_syscall_regs_only_when_cs_matches)
{
	struct pvm_frame f;
	struct kvm_regs r;
	struct kvm_sregs s = {0};

	syscall_pf(&f, &r);
	s.cs = (struct kvm_segment){.selector = 0x10, .l = 1, .dpl = 0};
	cr_expect(!pvm__enter_syscall(&f, &msrs, &r, &s));
	cr_expect_eq(r.rip, LSTAR);
	cr_expect_eq(r.rsp, 0x7ffd000);
	cr_expect_eq(r.rflags, 0x46); /* the masked flags, RF dropped */
	cr_expect_eq(r.rcx, 0x401002);
	cr_expect_eq(r.r11, 0x246);
}

Test(pvm_syscall, enter_syscall_loads_star_segments)
{
	struct pvm_frame f;
	struct kvm_regs r;
	struct kvm_sregs s = {0};

	syscall_pf(&f, &r);
	s.cs = (struct kvm_segment){.selector = 0x8, .l = 1, .dpl = 0};
	cr_expect(pvm__enter_syscall(&f, &msrs, &r, &s));
	cr_expect_eq(s.cs.selector, 0x10);
	cr_expect_eq(s.ss.selector, 0x18);
	cr_expect_eq(s.cs.dpl, 0);
}

static void int80_setup(struct pvm_frame *f, struct kvm_regs *r,
			struct pvm_gate *g80, struct pvm_gate *ud)
{
	*f = (struct pvm_frame){.rip = 0x8049000,
				.cs = 0x23,
				.rflags = 0x202,
				.rsp = 0xffd0,
				.ss = 0x2b};
	*r = (struct kvm_regs){.rip = 0xffffffff81a00c00ULL,
			       .rsp = 0xfffffe0000002fd8ULL,
			       .rflags = 0x2 | PVM_RFLAGS_RF};
	*g80 = (struct pvm_gate){.handler = 0xffffffff81a01000ULL,
				 .sel = 0x10,
				 .type = 0xe,
				 .dpl = 3,
				 .present = true};
	*ud = (struct pvm_gate){.handler = 0xffffffff81a00c00ULL,
				.sel = 0x10,
				.type = 0xe,
				.present = true};
}

Test(pvm_syscall, int80_redirects_to_gate)
{
	struct pvm_frame f;
	struct kvm_regs r;
	struct pvm_gate g, ud;

	int80_setup(&f, &r, &g, &ud);
	cr_expect(pvm__enter_int80(&f, &g, &ud, &r));
	cr_expect_eq(r.rip, 0xffffffff81a01000ULL);
	cr_expect_eq(r.rflags, 0x2);
	cr_expect_eq(r.rsp, 0xfffffe0000002fd8ULL); /* frame kept */
	/* a trap gate keeps the caller's IF */
	int80_setup(&f, &r, &g, &ud);
	g.type = 0xf;
	cr_expect(pvm__enter_int80(&f, &g, &ud, &r));
	cr_expect_eq(r.rflags, 0x202);
}

Test(pvm_syscall, int80_refused_like_the_cpu_would)
{
	struct pvm_frame f;
	struct kvm_regs r;
	struct pvm_gate g, ud;

	int80_setup(&f, &r, &g, &ud);
	g.dpl = 0;
	cr_expect(!pvm__enter_int80(&f, &g, &ud, &r));
	int80_setup(&f, &r, &g, &ud);
	g.present = false;
	cr_expect(!pvm__enter_int80(&f, &g, &ud, &r));
	int80_setup(&f, &r, &g, &ud);
	g.ist = 1; /* would need another stack than the #UD frame's */
	cr_expect(!pvm__enter_int80(&f, &g, &ud, &r));
	int80_setup(&f, &r, &g, &ud);
	f.cs = 0x10; /* from the kernel */
	cr_expect(!pvm__enter_int80(&f, &g, &ud, &r));
	cr_expect_eq(r.rip, 0xffffffff81a00c00ULL); /* untouched */
}

/* Guest-physical memory for the walker: 64 pages. */
static uint64_t pm[64 * 512];

static const uint64_t *rd(void *arg, uint64_t gpa)
{
	return gpa + 8 <= sizeof(pm) ? &pm[gpa / 8] : NULL;
}

#define PG(n) ((uint64_t)(n)*4096)

Test(pvm_syscall, walk_4k_2m_1g)
{
	uint64_t va = 0xffffffff81234567ULL, gpa;

	memset(pm, 0, sizeof(pm));
	/* PML4 at page 1, PDPT 2, PD 3, PT 4 */
	pm[PG(1) / 8 + ((va >> 39) & 511)] = PG(2) | 3;
	pm[PG(2) / 8 + ((va >> 30) & 511)] = PG(3) | 3;
	pm[PG(3) / 8 + ((va >> 21) & 511)] = PG(4) | 3;
	pm[PG(4) / 8 + ((va >> 12) & 511)] = PG(9) | 3 | (1ULL << 63);
	cr_assert_eq(pvm__walk(PG(1) | 0x18, false, va, rd, NULL, &gpa), 0);
	cr_expect_eq(gpa, PG(9) | 0x567);

	/* 2 MiB page (PAT bit 12 set must not leak into the address) */
	pm[PG(3) / 8 + ((va >> 21) & 511)] = 0x40000000ULL | 0x1083;
	cr_assert_eq(pvm__walk(PG(1), false, va, rd, NULL, &gpa), 0);
	cr_expect_eq(gpa, 0x40000000ULL | (va & 0x1fffff));

	/* 1 GiB page */
	pm[PG(2) / 8 + ((va >> 30) & 511)] = 0x80000000ULL | 0x83;
	cr_assert_eq(pvm__walk(PG(1), false, va, rd, NULL, &gpa), 0);
	cr_expect_eq(gpa, 0x80000000ULL | (va & 0x3fffffff));

	/* not present */
	pm[PG(1) / 8 + ((va >> 39) & 511)] = 0;
	cr_expect_eq(pvm__walk(PG(1), false, va, rd, NULL, &gpa), -1);
	/* table outside RAM */
	pm[PG(1) / 8 + ((va >> 39) & 511)] = (1ULL << 40) | 3;
	cr_expect_eq(pvm__walk(PG(1), false, va, rd, NULL, &gpa), -1);
}

Test(pvm_syscall, walk_5_level)
{
	uint64_t va = 0xff11223344556677ULL, gpa;

	memset(pm, 0, sizeof(pm));
	pm[PG(1) / 8 + ((va >> 48) & 511)] = PG(2) | 1;
	pm[PG(2) / 8 + ((va >> 39) & 511)] = PG(3) | 1;
	pm[PG(3) / 8 + ((va >> 30) & 511)] = PG(4) | 1;
	pm[PG(4) / 8 + ((va >> 21) & 511)] = PG(5) | 1;
	pm[PG(5) / 8 + ((va >> 12) & 511)] = PG(7) | 1;
	cr_assert_eq(pvm__walk(PG(1), true, va, rd, NULL, &gpa), 0);
	cr_expect_eq(gpa, PG(7) | 0x677);
	/* the same tables read as 4-level miss */
	cr_expect_eq(pvm__walk(PG(1), false, va, rd, NULL, &gpa), -1);
}

/* Stepping over the first instruction of an exception entry. */
static int step(const uint8_t *b, size_t n, struct kvm_regs *r, uint64_t *p)
{
	*r = (struct kvm_regs){.rip = 0x1000,
			       .rsp = 0x8000,
			       .rflags = 0x2 | PVM_RFLAGS_DF | PVM_RFLAGS_AC};
	*p = 0;
	return pvm__step_entry(b, n, r, p);
}

#define STEP(...)                                                              \
	step((const uint8_t[]){__VA_ARGS__},                                   \
	     sizeof((const uint8_t[]){__VA_ARGS__}), &r, &push)

Test(pvm_syscall, step_entry_nops)
{
	struct kvm_regs r;
	uint64_t push;

	cr_expect_eq(STEP(0x90, 0x90), 1);
	cr_expect_eq(r.rip, 0x1001);
	cr_expect_eq(STEP(0x0f, 0x1f, 0x00, 0xfc), 3);
	cr_expect_eq(STEP(0x0f, 0x1f, 0x40, 0x00), 4);
	cr_expect_eq(STEP(0x0f, 0x1f, 0x44, 0x00, 0x00), 5);
	cr_expect_eq(STEP(0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00), 6);
	cr_expect_eq(STEP(0x0f, 0x1f, 0x80, 0, 0, 0, 0), 7);
	cr_expect_eq(STEP(0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0), 8);
	cr_expect_eq(STEP(0x66, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0), 9);
	cr_expect_eq(r.rip, 0x1009);
	cr_expect_eq(r.rsp, 0x8000);
	cr_expect_eq(STEP(0x0f, 0x1f, 0x84, 0, 0), -1); /* truncated */
	cr_expect_eq(STEP(0x0f, 0x1f, 0xc0), -1);	/* register form */
	cr_expect_eq(STEP(0x66, 0xfc), -1);
}

Test(pvm_syscall, step_entry_flags_and_endbr)
{
	struct kvm_regs r;
	uint64_t push;

	cr_expect_eq(STEP(0xf3, 0x0f, 0x1e, 0xfa), 4);
	cr_expect_eq(r.rflags, 0x2 | PVM_RFLAGS_DF | PVM_RFLAGS_AC);
	cr_expect_eq(STEP(0xfc), 1);
	cr_expect_eq(r.rflags, 0x2 | PVM_RFLAGS_AC);
	cr_expect_eq(STEP(0x0f, 0x01, 0xca), 3);
	cr_expect_eq(r.rflags, 0x2 | PVM_RFLAGS_DF);
	cr_expect_eq(r.rip, 0x1003);
}

Test(pvm_syscall, step_entry_push)
{
	struct kvm_regs r;
	uint64_t push;

	cr_expect_eq(STEP(0x6a, 0x0e), 2);
	cr_expect_eq(push, 14);
	cr_expect_eq(r.rsp, 0x7ff8);
	cr_expect_eq(r.rip, 0x1002);
	cr_expect_eq(STEP(0x6a, 0xff), 2);
	cr_expect_eq(push, ~0ULL);
	cr_expect_eq(STEP(0x68, 0x00, 0x00, 0x00, 0x80), 5);
	cr_expect_eq(push, 0xffffffff80000000ULL);
	cr_expect_eq(STEP(0x6a), -1);
	cr_expect_eq(STEP(0xe8, 0, 0, 0, 0), -1); /* call: not ours */
	cr_expect_eq(r.rip, 0x1000);
}
