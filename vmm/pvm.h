/* SPDX-License-Identifier: MIT */
/*
 * Support for KVM's PVM backend (nested KVM without VT-x/AMD-V), where guest
 * ring 0 runs in KVM's instruction emulator. Everything here is active only
 * when PVM is detected; on hardware KVM slos never calls into it.
 *  - kernel options a stock Linux needs to get through the emulator;
 *  - completion in userspace of the instructions the emulator gives up on
 *    (KVM_EXIT_INTERNAL_ERROR, emulation suberror).
 * The decoder and the completion are pure functions over struct kvm_regs so
 * they are unit-tested without KVM.
 */
#ifndef SLOS_PVM_H
#define SLOS_PVM_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum pvm_insn {
	PVM_INT3,
	PVM_FWAIT,
	PVM_CLAC,
	PVM_STAC,
	PVM_FENCE,
	PVM_PAUSE,
	PVM_XGETBV,
	PVM_POPCNT,
	PVM_LDMXCSR,
	PVM_STMXCSR,
	PVM_NR_INSNS,
};

/* A memory access the caller completes through the guest's page tables. */
enum pvm_mem {
	PVM_MEM_NONE,
	PVM_MEM_LOAD_MXCSR,  /* MXCSR = 32 bits at ea */
	PVM_MEM_STORE_MXCSR, /* 32 bits at ea = MXCSR */
};

struct pvm_fix {
	enum pvm_insn insn;
	unsigned len;	    /* bytes to advance RIP */
	int inject;	    /* exception vector to inject after, or -1 */
	enum pvm_mem mem;   /* memory half of the instruction, if any */
	uint64_t ea;	    /* its guest-virtual address */
};

/*
 * Which KVM /dev/kvm is. A machine without /dev/kvm may still have the
 * kvm_pvm module loaded, so the kind is read from the KVM that opens: PVM
 * when kvm_pvm is loaded and no kvm_intel/kvm_amd is, or, with both
 * loaded, when /dev/kvm lacks what only hardware backends offer (nested
 * state, SMM).
 */
enum kvm_kind { KVM_KIND_NONE, KVM_KIND_PVM, KVM_KIND_INTEL, KVM_KIND_AMD };
enum kvm_kind pvm__kvm_kind(void);
/* "none", "PVM", "hardware (kvm_intel)", "hardware (kvm_amd)" */
const char *pvm__kvm_kind_name(enum kvm_kind k);
/* PVM is the KVM here; SLOS_PVM=0/1 in the environment overrides. */
bool pvm__detect(void);
/* This host is itself a guest of a CPU emulator (QEMU TCG, as in the lab:
 * hypervisor signature "TCGTCGTCGTCG"), so everything it runs, the host
 * kernel included, is tens of times slower than the hardware it names. */
bool pvm__host_emulated(void);
/* Kernel options appended to a Linux command line under PVM. */
const char *pvm__cmdline(void);
/*
 * Complete the instruction at regs->rip whose bytes are insn[0..n): updates
 * regs (RIP, results) and fills fix. xcr0 is the vCPU's XCR0 (for xgetbv).
 * Returns 0, or -1 if the instruction is not one slos can complete.
 */
int pvm__complete(const uint8_t *insn, size_t n, struct kvm_regs *regs,
		  uint64_t xcr0, struct pvm_fix *fix);
const char *pvm__insn_name(enum pvm_insn i);

/*
 * Acceleration of long string instructions at guest ring 0
 * (vmm/pvm_accel.c): a per-vCPU timer kicks the vCPU, and a `rep stos` or
 * `rep movs` found running is completed on guest RAM by slos.
 */
#define PVM_ACCEL_US	 2000
#define PVM_STROP_DF	 0x400ULL
#define PVM_STROP_MAX	 (1ULL << 30)

struct pvm_accel {
	timer_t timer;
	int armed;
	uint64_t ops, bytes;
};

struct pvm_strop {
	bool fill;	    /* stos (else movs) */
	unsigned size;	    /* element bytes */
	unsigned len;	    /* instruction bytes */
	uint64_t count, dst, src, value;
};

/* Decode a forward `rep stos`/`rep movs` at r->rip; 0, or -1 if it is not
 * one slos completes. */
int pvm__string_op(const uint8_t *b, size_t n, const struct kvm_regs *r,
		   struct pvm_strop *op);

struct vcpu;
/* On the vCPU's thread: arm its kick timer; after each KVM_RUN: act on it. */
int pvm_accel__start(struct vcpu *v, unsigned period_us);
void pvm_accel__tick(struct vcpu *v);
void pvm_accel__stop(struct vcpu *v);

/* Per-process counters, printed with --stats. */
void pvm__count(enum pvm_insn i);
void pvm__print_stats(void);

/*
 * System calls from guest user space (vmm/pvm_syscall.c, docs/pvm-syscalls.md).
 * Under PVM a ring-3 `syscall` jumps to LSTAR without leaving CPL 3, so the
 * fetch of kernel text raises a #PF, and `int $0x80` raises #UD. slos puts
 * hardware breakpoints (KVM_SET_GUEST_DEBUG) on the guest's #PF and #UD
 * handlers, which KVM's emulator does honour, and at the resulting
 * KVM_EXIT_DEBUG turns such an exception back into the system call entry.
 */
#define PVM_RFLAGS_IF 0x200ULL
#define PVM_RFLAGS_TF 0x100ULL
#define PVM_RFLAGS_RF 0x10000ULL
#define PVM_RFLAGS_DF 0x400ULL
#define PVM_RFLAGS_AC 0x40000ULL

struct pvm_sys_msrs {
	uint64_t star, lstar, sfmask;
};

/* A 64-bit IDT gate. */
struct pvm_gate {
	uint64_t handler;
	uint16_t sel;
	uint8_t type, dpl, ist;
	bool present;
};

/* What the CPU pushed when it delivered an exception. */
struct pvm_frame {
	uint64_t err, rip, cs, rflags, rsp, ss;
};

/* Handler addresses one vCPU found in its IDT; the latest is armed on all. */
struct pvm_sys_vm {
	uint64_t pf, ud; /* under vm->lock */
	_Atomic unsigned gen;
};

struct pvm_sys_vcpu {
	bool synced;		/* kvm_valid_regs includes regs and sregs */
	uint64_t seen_pf, seen_ud;	/* in this vCPU's IDT when last read */
	uint64_t seen_idt;		/* IDT base then */
	unsigned idt_age;		/* exits since the gates were read */
	uint64_t armed_pf, armed_ud;	/* in this vCPU's DR0, DR1 */
	unsigned armed_gen;
	bool disabled;		/* an entry slos cannot step over */
	struct pvm_sys_msrs msrs;
};

struct vcpu;

/* vCPU thread, before every KVM_RUN: keeps the breakpoints on the guest's
 * current #PF/#UD handlers. */
void pvm_syscall__prepare(struct vcpu *v);
/* KVM_EXIT_DEBUG: 0 if handled (the vCPU may run on), -1 if not ours. */
int pvm_syscall__debug_exit(struct vcpu *v);
void pvm_syscall__print_stats(void);

/* Pure parts, unit-tested. */
void pvm__gate_decode(const uint8_t g[16], struct pvm_gate *gate);
/* w: the words at the handler's RSP; has_err: the vector pushes one. */
void pvm__frame_decode(const uint64_t *w, bool has_err, struct pvm_frame *f);
/* The CS and SS `syscall` loads: STAR[47:32] and STAR[47:32] + 8, CPL 0. */
void pvm__star_segments(uint64_t star, struct kvm_segment *cs,
			struct kvm_segment *ss);
/*
 * Is the #PF with frame f (taken at the #PF handler's entry, regs r) a
 * ring-3 `syscall` that faulted fetching LSTAR? insn_ok: the two bytes
 * before r->rcx are 0f 05.
 */
bool pvm__is_syscall_pf(const struct pvm_frame *f, const struct kvm_regs *r,
			const struct pvm_sys_msrs *m, bool insn_ok);
/* Turn regs at the #PF handler into those `syscall` should have produced.
 * Returns true if sregs (CS, SS) had to change too. */
bool pvm__enter_syscall(const struct pvm_frame *f, const struct pvm_sys_msrs *m,
			struct kvm_regs *r, struct kvm_sregs *s);
/*
 * `int $0x80` that raised #UD: frame f at the #UD handler, gate the IDT's
 * vector 0x80, ud the #UD gate. Returns true and updates r (RIP, RFLAGS) if
 * the int 0x80 gate should run instead; the caller then adds 2 to the RIP in
 * the frame in guest memory.
 */
bool pvm__enter_int80(const struct pvm_frame *f, const struct pvm_gate *gate,
		      const struct pvm_gate *ud, struct kvm_regs *r);
/*
 * Complete the first instruction of an exception entry (b[0..n) at r->rip)
 * for a vCPU stopped on a breakpoint there: NOPs, endbr64, cld, clac,
 * push imm. Updates r; for a push, *push is the value to store at the new
 * r->rsp. Returns the length, or -1 for anything else.
 */
int pvm__step_entry(const uint8_t *b, size_t n, struct kvm_regs *r,
		    uint64_t *push);
/*
 * Guest-virtual to guest-physical through 4- or 5-level page tables;
 * read(gpa) returns a pointer to the 8-byte entry or NULL. Permissions are
 * not checked (the VMM reads as the kernel would). 0 or -1.
 */
int pvm__walk(uint64_t cr3, bool la57, uint64_t va,
	      const uint64_t *(*read)(void *arg, uint64_t gpa), void *arg,
	      uint64_t *gpa);

#endif
