/* SPDX-License-Identifier: MIT */
/*
 * Interrupt and exception entry. Everything here runs at ring 0, which PVM
 * emulates at ~600 ns per instruction, so the hot paths (ud2 calls SYS_NOP
 * and SYS_IPI, the ping-pong IPIs) are a handful of instructions that never
 * reach C. Everything else saves a full struct trap_frame and calls trap().
 * The kernel runs with IF=0, so interrupts only ever arrive from ring 3.
 */
#include "abi.h"

#define APIC_EOI    0xb0
#define APIC_ICR_LO 0x300
#define APIC_ICR_HI 0x310
#define ICR_ASSERT  0x4000

	.text
/* One 16-byte stub per vector: isr_stubs + 16 * vector. */
	.balign 16
	.globl isr_stubs
isr_stubs:
	.set	vec, 0
	.rept	256
	.balign	16
	.if	(vec == 8) || (vec >= 10 && vec <= 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	.else
	pushq	$0			/* no error code: keep the frame uniform */
	.endif
	pushq	$vec
	jmp	isr_common
	.set	vec, vec + 1
	.endr

isr_common:
	push	%rax
	push	%rbx
	push	%rcx
	push	%rdx
	push	%rsi
	push	%rdi
	push	%rbp
	push	%r8
	push	%r9
	push	%r10
	push	%r11
	push	%r12
	push	%r13
	push	%r14
	push	%r15
	mov	%rsp, %rdi
	call	trap
	pop	%r15
	pop	%r14
	pop	%r13
	pop	%r12
	pop	%r11
	pop	%r10
	pop	%r9
	pop	%r8
	pop	%rbp
	pop	%rdi
	pop	%rsi
	pop	%rdx
	pop	%rcx
	pop	%rbx
	pop	%rax
	add	$16, %rsp		/* vector, error code */
	iretq

/*
 * #UD: a ud2 call from ring 3. Frame on entry: RIP at 0(%rsp), CS at 8.
 * Fast paths for SYS_NOP and SYS_IPI; the rest goes through trap().
 */
	.globl ud_entry
ud_entry:
	testb	$3, 8(%rsp)
	jz	isr_stubs + 16 * VEC_UD	/* #UD in the kernel: fatal */
	push	%rdx
	mov	8(%rsp), %rdx
	cmpw	$0x0b0f, (%rdx)		/* really ud2? */
	jne	2f
	cmp	$SYS_IPI, %rax
	je	1f
	test	%rax, %rax		/* SYS_NOP */
	jne	2f
	pop	%rdx
	addq	$2, (%rsp)
	iretq
1:	push	%rcx
	mov	$LAPIC_BASE, %ecx
	mov	%edi, %edx
	shl	$24, %edx
	mov	%edx, APIC_ICR_HI(%rcx)
	movzbl	%sil, %edx
	or	$ICR_ASSERT, %edx
	mov	%edx, APIC_ICR_LO(%rcx)
	pop	%rcx
	pop	%rdx
	xor	%eax, %eax
	addq	$2, (%rsp)
	iretq
2:	pop	%rdx
	jmp	isr_stubs + 16 * VEC_UD

/* ipi-pingpong receiver: count, answer with VEC_PONG, EOI. */
	.globl ping_entry
ping_entry:
	push	%rax
	push	%rdx
	lock incq ipi_pings(%rip)
	mov	$LAPIC_BASE, %eax
	mov	ipi_reply_apic(%rip), %edx
	shl	$24, %edx
	mov	%edx, APIC_ICR_HI(%rax)
	movl	$(ICR_ASSERT | VEC_PONG), APIC_ICR_LO(%rax)
	movl	$0, APIC_EOI(%rax)
	pop	%rdx
	pop	%rax
	iretq

	.globl pong_entry
pong_entry:
	push	%rax
	lock incq ipi_pongs(%rip)
	mov	$LAPIC_BASE, %eax
	movl	$0, APIC_EOI(%rax)
	pop	%rax
	iretq

/* SYS_TICK's periodic timer: count, EOI. */
	.globl tick_entry
tick_entry:
	push	%rax
	lock incq timer_ticks(%rip)
	mov	$LAPIC_BASE, %eax
	movl	$0, APIC_EOI(%rax)
	pop	%rax
	iretq

	.globl wake_entry
wake_entry:
	push	%rax
	mov	$LAPIC_BASE, %eax
	movl	$0, APIC_EOI(%rax)
	pop	%rax
	iretq

/* Spurious interrupts need neither EOI nor a report. */
	.globl spurious_entry
spurious_entry:
	iretq

	.section .note.GNU-stack, "", @progbits
