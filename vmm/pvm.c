// SPDX-License-Identifier: MIT
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/pvm.h"

static const char *const names[PVM_NR_INSNS] = {
	[PVM_INT3] = "int3",	   [PVM_FWAIT] = "fwait",
	[PVM_CLAC] = "clac",	   [PVM_STAC] = "stac",
	[PVM_FENCE] = "fence",	   [PVM_PAUSE] = "pause",
	[PVM_XGETBV] = "xgetbv",   [PVM_POPCNT] = "popcnt",
	[PVM_LDMXCSR] = "ldmxcsr", [PVM_STMXCSR] = "stmxcsr",
};

static uint64_t counts[PVM_NR_INSNS];

/*
 * Guest ring 0 is emulated, so the options come in two groups (docs/pvm.md
 * has both tables with the evidence). Each of the first avoids an
 * instruction KVM's emulator cannot execute:
 *  clearcpuid=141  cx16: SLUB's `lock cmpxchg16b`
 *  clearcpuid=151  popcnt: hweight's `popcnt`
 *  clearcpuid=308  smap: `clac`/`stac` on every exception entry
 *  noxsave         FPU init's `xrstor` (and with it AVX in the kernel)
 *  clearcpuid=129,137,147,148,153,317  pclmulqdq, ssse3, sse4.1, sse4.2,
 *                  aes, sha-ni: SIMD the kernel's crypto and crc code picks
 *                  when present (blake2s_compress_ssse3's `movd` to %xmm15
 *                  stopped the stock kernel in its RNG)
 * Each of the second cuts emulated work a boot profile showed:
 *  initcall_blacklist=ftrace_check_for_weak_functions,trace_eval_init,
 *                  load_system_certificate_list
 *                  a kallsyms lookup for each of ~40k ftrace records: 250 s
 *                  of Debian's stock kernel's boot, and soft-lockup splats;
 *                  rewriting every trace event's format with enum values:
 *                  7% of what was left (only trace output shows the names);
 *                  RSA checks of the built-in X.509 certificates: minutes
 *                  of emulated big-number arithmetic before init (modules
 *                  then load unverified, tainting the kernel)
 *  cryptomgr.notests  the crypto API's self-tests (Debian leaves them on):
 *                  RSA private-key test vectors alone are minutes of
 *                  emulated big-number arithmetic (mpihelp_* at 35-60%)
 *  mitigations=off return thunks (SRSO safe-ret) and retpolines on every
 *                  call and return: ~6% of the profile
 *  tsc=reliable    no clocksource watchdog; TSC reads instead of pvclock
 *  nowatchdog      no soft-lockup detector (an emulated CPU "locks up" for
 *                  seconds in long loops, and the splat unwinds the stack)
 *  rodata=off      no read-only/NX marking of kernel text and data, and so
 *                  no DEBUG_WX walk of every kernel page table after it:
 *                  Debian's stock kernel reached init at 438 s instead of
 *                  621 s (a protection a test guest can do without)
 * And one for correctness:
 *  clocksource=kvm-clock  PVM cannot offset the guest TSC (guest rdtsc is
 *                  the host's), so a restored guest timing itself by the
 *                  TSC would jump by the time its snapshot sat on disk;
 *                  kvmclock continues from the snapshot (KVM_SET_CLOCK)
 */
const char *pvm__cmdline(void)
{
	return "clearcpuid=129,137,141,147,148,151,153,308,317 noxsave "
	       "initcall_blacklist=ftrace_check_for_weak_functions,"
	       "trace_eval_init,load_system_certificate_list "
	       "cryptomgr.notests mitigations=off tsc=reliable nowatchdog "
	       "rodata=off clocksource=kvm-clock";
}

const char *pvm__insn_name(enum pvm_insn i)
{
	return i < PVM_NR_INSNS ? names[i] : "?";
}

void pvm__count(enum pvm_insn i)
{
	__atomic_add_fetch(&counts[i], 1, __ATOMIC_RELAXED);
}

void pvm__print_stats(void)
{
	for (int i = 0; i < PVM_NR_INSNS; i++)
		if (counts[i])
			fprintf(stderr, "slos: pvm completed %-8s %llu\n",
				names[i], (unsigned long long)counts[i]);
	pvm_syscall__print_stats();
}

static __u64 *gpr(struct kvm_regs *r, unsigned n)
{
	__u64 *t[16] = { &r->rax, &r->rcx, &r->rdx, &r->rbx,
			    &r->rsp, &r->rbp, &r->rsi, &r->rdi,
			    &r->r8,  &r->r9,  &r->r10, &r->r11,
			    &r->r12, &r->r13, &r->r14, &r->r15 };
	return t[n & 15];
}

#define RFLAGS_AC (1ULL << 18)
#define RFLAGS_ARITH 0x8d5ULL /* CF PF AF ZF SF OF */
#define RFLAGS_ZF (1ULL << 6)

/* popcnt r, r/m with a register operand only (mod == 3). */
static int popcnt(const uint8_t *p, size_t n, unsigned rex, bool opsize,
		  struct kvm_regs *r)
{
	if (n < 1 || (p[0] >> 6) != 3)
		return -1;
	unsigned reg = ((p[0] >> 3) & 7) | ((rex & 4) << 1);
	unsigned rm = (p[0] & 7) | ((rex & 1) << 3);
	uint64_t v = *gpr(r, rm), res;

	if (rex & 8)
		res = __builtin_popcountll(v);
	else if (opsize)
		res = __builtin_popcount(v & 0xffff);
	else
		res = __builtin_popcount((uint32_t)v);
	if (opsize && !(rex & 8))
		*gpr(r, reg) = (*gpr(r, reg) & ~0xffffULL) | res;
	else
		*gpr(r, reg) = res; /* 32-bit results zero-extend */
	r->rflags &= ~RFLAGS_ARITH;
	if (!v)
		r->rflags |= RFLAGS_ZF;
	return 0;
}

/*
 * Effective address of a ModRM memory operand at p[0..n) (64-bit
 * addressing, no segment override). A RIP-relative operand yields only its
 * displacement: the caller adds the RIP after the whole instruction.
 * Returns the bytes of ModRM, SIB and displacement, or -1 for a register
 * operand or truncated bytes.
 */
static int modrm_ea(const uint8_t *p, size_t n, unsigned rex,
		    struct kvm_regs *r, uint64_t *ea)
{
	unsigned mod, rm, len = 1;
	uint64_t base = 0;
	int64_t disp = 0;

	if (n < 1 || (p[0] >> 6) == 3)
		return -1;
	mod = p[0] >> 6;
	rm = p[0] & 7;
	if (rm == 4) { /* SIB */
		if (n < 2)
			return -1;
		uint8_t sib = p[1];
		unsigned idx = ((sib >> 3) & 7) | ((rex & 2) << 2);
		unsigned b = (sib & 7) | ((rex & 1) << 3);
		len = 2;
		if (idx != 4)
			base += *gpr(r, idx) << (sib >> 6);
		if ((sib & 7) == 5 && mod == 0) {
			if (n < len + 4)
				return -1;
			disp = (int32_t)(p[len] | p[len + 1] << 8 |
					 p[len + 2] << 16 |
					 (uint32_t)p[len + 3] << 24);
			*ea = base + disp;
			return len + 4;
		}
		base += *gpr(r, b);
	} else if (rm == 5 && mod == 0) { /* RIP-relative */
		if (n < 5)
			return -1;
		disp = (int32_t)(p[1] | p[2] << 8 | p[3] << 16 |
				 (uint32_t)p[4] << 24);
		*ea = disp;
		return 5;
	} else {
		base = *gpr(r, rm | ((rex & 1) << 3));
	}
	if (mod == 1) {
		if (n < len + 1)
			return -1;
		disp = (int8_t)p[len];
		len += 1;
	} else if (mod == 2) {
		if (n < len + 4)
			return -1;
		disp = (int32_t)(p[len] | p[len + 1] << 8 | p[len + 2] << 16 |
				 (uint32_t)p[len + 3] << 24);
		len += 4;
	}
	*ea = base + disp;
	return len;
}

/* ldmxcsr/stmxcsr m32: 0f ae /2, /3. */
static int mxcsr_op(const uint8_t *op, size_t left, unsigned prefix_len,
		    unsigned rex, struct kvm_regs *r, struct pvm_fix *fix)
{
	uint64_t ea;
	int ml = modrm_ea(op + 2, left - 2, rex, r, &ea);

	if (ml < 0)
		return -1;
	fix->len = prefix_len + 2 + ml;
	if ((op[2] >> 6) == 0 && (op[2] & 7) == 5)
		ea += r->rip + fix->len;
	fix->ea = ea;
	if (((op[2] >> 3) & 7) == 2) {
		fix->insn = PVM_LDMXCSR;
		fix->mem = PVM_MEM_LOAD_MXCSR;
	} else {
		fix->insn = PVM_STMXCSR;
		fix->mem = PVM_MEM_STORE_MXCSR;
	}
	return 0;
}

int pvm__complete(const uint8_t *insn, size_t n, struct kvm_regs *regs,
		  uint64_t xcr0, struct pvm_fix *fix)
{
	size_t i = 0;
	unsigned rex = 0;
	bool rep = false, opsize = false;

	fix->inject = -1;
	fix->mem = PVM_MEM_NONE;
	/* Legacy prefixes, then at most one REX right before the opcode. */
	for (; i < n && i < 14; i++) {
		uint8_t b = insn[i];
		if (b == 0xf3)
			rep = true;
		else if (b == 0x66)
			opsize = true;
		else if (!(b == 0xf2 || b == 0xf0 || b == 0x67 || b == 0x2e ||
			   b == 0x36 || b == 0x3e || b == 0x26 || b == 0x64 ||
			   b == 0x65))
			break;
	}
	if (i < n && (insn[i] & 0xf0) == 0x40)
		rex = insn[i++];
	if (i >= n)
		return -1;
	const uint8_t *op = insn + i;
	size_t left = n - i;

	if (op[0] == 0xcc) {
		fix->insn = PVM_INT3;
		fix->len = i + 1;
		fix->inject = 3; /* #BP is a trap: pushed RIP is past it */
	} else if (op[0] == 0x9b) {
		fix->insn = PVM_FWAIT;
		fix->len = i + 1;
	} else if (op[0] == 0x90 && rep) {
		fix->insn = PVM_PAUSE;
		fix->len = i + 1;
	} else if (left >= 3 && op[0] == 0x0f && op[1] == 0x01 &&
		   (op[2] == 0xca || op[2] == 0xcb)) {
		fix->insn = op[2] == 0xca ? PVM_CLAC : PVM_STAC;
		fix->len = i + 3;
		if (op[2] == 0xca)
			regs->rflags &= ~RFLAGS_AC;
		else
			regs->rflags |= RFLAGS_AC;
	} else if (left >= 3 && op[0] == 0x0f && op[1] == 0xae &&
		   (op[2] == 0xe8 || op[2] == 0xf0 || op[2] == 0xf8)) {
		fix->insn = PVM_FENCE;
		fix->len = i + 3;
	} else if (left >= 3 && op[0] == 0x0f && op[1] == 0x01 &&
		   op[2] == 0xd0) {
		if ((uint32_t)regs->rcx != 0)
			return -1; /* only XCR0 is defined */
		fix->insn = PVM_XGETBV;
		fix->len = i + 3;
		regs->rax = (uint32_t)xcr0;
		regs->rdx = xcr0 >> 32;
	} else if (left >= 3 && op[0] == 0x0f && op[1] == 0xae &&
		   (op[2] >> 6) != 3 &&
		   (((op[2] >> 3) & 7) == 2 || ((op[2] >> 3) & 7) == 3)) {
		if (mxcsr_op(op, left, i, rex, regs, fix))
			return -1;
	} else if (rep && left >= 3 && op[0] == 0x0f && op[1] == 0xb8) {
		if (popcnt(op + 2, left - 2, rex, opsize, regs))
			return -1;
		fix->insn = PVM_POPCNT;
		fix->len = i + 3;
	} else {
		return -1;
	}
	regs->rip += fix->len;
	return 0;
}
