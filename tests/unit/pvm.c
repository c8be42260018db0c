// SPDX-License-Identifier: MIT
/* The instructions slos completes for KVM's emulator under PVM. */
#include <criterion/criterion.h>

#include "vmm/pvm.h"

static struct kvm_regs regs(void)
{
	return (struct kvm_regs){ .rip = 0x1000, .rflags = 2 };
}

#define BYTES(...) ((const uint8_t[]){ __VA_ARGS__ })
#define N(...)	   sizeof((const uint8_t[]){ __VA_ARGS__ })

Test(pvm, int3_advances_and_injects_bp)
{
	struct kvm_regs r = regs();
	struct pvm_fix f;

	cr_assert_eq(pvm__complete(BYTES(0xcc), 1, &r, 0, &f), 0);
	cr_expect_eq(f.insn, PVM_INT3);
	cr_expect_eq(f.inject, 3);
	cr_expect_eq(r.rip, 0x1001);
}

Test(pvm, fwait_is_a_nop)
{
	struct kvm_regs r = regs();
	struct pvm_fix f;

	cr_assert_eq(pvm__complete(BYTES(0x9b, 0xcc), 2, &r, 0, &f), 0);
	cr_expect_eq(f.insn, PVM_FWAIT);
	cr_expect_eq(f.inject, -1);
	cr_expect_eq(r.rip, 0x1001);
}

Test(pvm, clac_stac_flip_ac)
{
	struct kvm_regs r = regs();
	struct pvm_fix f;

	cr_assert_eq(pvm__complete(BYTES(0x0f, 0x01, 0xcb), 3, &r, 0, &f), 0);
	cr_expect(r.rflags & (1 << 18));
	cr_assert_eq(pvm__complete(BYTES(0x0f, 0x01, 0xca), 3, &r, 0, &f), 0);
	cr_expect(!(r.rflags & (1 << 18)));
	cr_expect_eq(r.rip, 0x1006);
}

Test(pvm, xgetbv_reads_xcr0)
{
	struct kvm_regs r = regs();
	struct pvm_fix f;

	cr_assert_eq(pvm__complete(BYTES(0x0f, 0x01, 0xd0), 3, &r,
				   0x100000007ULL, &f), 0);
	cr_expect_eq(r.rax, 7);
	cr_expect_eq(r.rdx, 1);
	r.rcx = 1; /* XCR1 is not defined here */
	cr_expect_eq(pvm__complete(BYTES(0x0f, 0x01, 0xd0), 3, &r, 7, &f), -1);
}

Test(pvm, popcnt_register_forms)
{
	struct kvm_regs r = regs();
	struct pvm_fix f;

	/* popcnt %rbx, %rax: f3 48 0f b8 c3 */
	r.rbx = 0xff00ff00ff00ff00ULL;
	r.rax = ~0ULL;
	cr_assert_eq(pvm__complete(BYTES(0xf3, 0x48, 0x0f, 0xb8, 0xc3), 5, &r,
				   0, &f), 0);
	cr_expect_eq(r.rax, 32);
	cr_expect_eq(r.rip, 0x1005);
	/* popcnt %r9d, %r10d: f3 45 0f b8 d1, upper half zeroed */
	r.r9 = 0xffffffff00000003ULL;
	r.r10 = ~0ULL;
	cr_assert_eq(pvm__complete(BYTES(0xf3, 0x45, 0x0f, 0xb8, 0xd1), 5, &r,
				   0, &f), 0);
	cr_expect_eq(r.r10, 2);
	/* zero source sets ZF */
	r.rcx = 0;
	cr_assert_eq(pvm__complete(BYTES(0xf3, 0x0f, 0xb8, 0xc1), 4, &r, 0,
				   &f), 0);
	cr_expect(r.rflags & (1 << 6));
	/* a memory operand is refused */
	cr_expect_eq(pvm__complete(BYTES(0xf3, 0x0f, 0xb8, 0x07), 4, &r, 0,
				   &f), -1);
}

Test(pvm, unknown_and_truncated_are_refused)
{
	struct kvm_regs r = regs();
	struct pvm_fix f;

	/* xrstor (%rdi): the emulator's gap is avoided with noxsave */
	cr_expect_eq(pvm__complete(BYTES(0x0f, 0xae, 0x2f), 3, &r, 0, &f), -1);
	cr_expect_eq(pvm__complete(BYTES(0x0f, 0x01), 2, &r, 0, &f), -1);
	cr_expect_eq(pvm__complete(BYTES(0x66, 0x66), 2, &r, 0, &f), -1);
	cr_expect_eq(pvm__complete(NULL, 0, &r, 0, &f), -1);
	cr_expect_eq(r.rip, 0x1000, "a refused instruction moves nothing");
}

Test(pvm, detection_override)
{
	setenv("SLOS_PVM", "0", 1);
	cr_expect(!pvm__detect());
	setenv("SLOS_PVM", "1", 1);
	cr_expect(pvm__detect());
	unsetenv("SLOS_PVM");
}

Test(pvm, ldmxcsr_stmxcsr_memory_operands)
{
	struct kvm_regs r = regs();
	struct pvm_fix f;

	/* ldmxcsr 0x4(%rsp): 0f ae 54 24 04 (met in kernel_fpu_begin) */
	r.rsp = 0xffffc9000000fd80ULL;
	cr_assert_eq(pvm__complete(BYTES(0x0f, 0xae, 0x54, 0x24, 0x04), 5, &r,
				   0, &f), 0);
	cr_expect_eq(f.insn, PVM_LDMXCSR);
	cr_expect_eq(f.mem, PVM_MEM_LOAD_MXCSR);
	cr_expect_eq(f.ea, 0xffffc9000000fd84ULL);
	cr_expect_eq(r.rip, 0x1005);
	/* stmxcsr -0x10(%rbp): 0f ae 5d f0 */
	r.rbp = 0x8000;
	cr_assert_eq(pvm__complete(BYTES(0x0f, 0xae, 0x5d, 0xf0), 4, &r, 0,
				   &f), 0);
	cr_expect_eq(f.mem, PVM_MEM_STORE_MXCSR);
	cr_expect_eq(f.ea, 0x7ff0);
	/* ldmxcsr 0x100(%rip): relative to the next instruction */
	r.rip = 0x2000;
	cr_assert_eq(pvm__complete(BYTES(0x0f, 0xae, 0x15, 0x00, 0x01, 0, 0),
				   7, &r, 0, &f), 0);
	cr_expect_eq(f.ea, 0x2007 + 0x100);
	/* ldmxcsr (%r12,%rbx,8) with REX.B: 41 0f ae 14 dc */
	r.r12 = 0x1000;
	r.rbx = 2;
	cr_assert_eq(pvm__complete(BYTES(0x41, 0x0f, 0xae, 0x14, 0xdc), 5, &r,
				   0, &f), 0);
	cr_expect_eq(f.ea, 0x1000 + 16);
	/* truncated displacement is refused */
	cr_expect_eq(pvm__complete(BYTES(0x0f, 0xae, 0x54, 0x24), 4, &r, 0,
				   &f), -1);
}

Test(pvm, string_ops_decoded_for_acceleration)
{
	struct kvm_regs r = regs();
	struct pvm_strop op;

	r.rcx = 0x10000;
	r.rdi = 0x5000;
	r.rsi = 0x1000;
	r.rax = 0;
	/* rep stosb: clear_bss in Debian's kernel */
	cr_assert_eq(pvm__string_op(BYTES(0xf3, 0xaa), 2, &r, &op), 0);
	cr_expect(op.fill);
	cr_expect_eq(op.size, 1);
	cr_expect_eq(op.len, 2);
	/* rep stosq */
	cr_assert_eq(pvm__string_op(BYTES(0xf3, 0x48, 0xab), 3, &r, &op), 0);
	cr_expect_eq(op.size, 8);
	cr_expect_eq(op.len, 3);
	/* rep movsl, no overlap (dst above src by less than the length is
	 * refused; dst below src copies forward like memmove) */
	cr_assert_eq(pvm__string_op(BYTES(0xf3, 0xa5), 2, &r, &op), -1,
		     "dst inside [src, src+len) must be refused");
	r.rdi = 0x100000;
	cr_assert_eq(pvm__string_op(BYTES(0xf3, 0xa5), 2, &r, &op), 0);
	cr_expect(!op.fill);
	cr_expect_eq(op.size, 4);
	/* no rep, DF set, other opcodes: left to KVM */
	cr_expect_eq(pvm__string_op(BYTES(0xaa), 1, &r, &op), -1);
	cr_expect_eq(pvm__string_op(BYTES(0xf3, 0x90), 2, &r, &op), -1);
	r.rflags |= PVM_STROP_DF;
	cr_expect_eq(pvm__string_op(BYTES(0xf3, 0xaa), 2, &r, &op), -1);
	r.rflags &= ~PVM_STROP_DF;
	r.rcx = ~0ULL; /* absurd counts are refused, not overflowed */
	cr_expect_eq(pvm__string_op(BYTES(0xf3, 0x48, 0xab), 3, &r, &op), -1);
}
