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

/* SLOS_PVM=0/1 in the environment overrides detection. */
bool pvm__detect(void);
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

#endif
