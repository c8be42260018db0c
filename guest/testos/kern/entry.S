/* SPDX-License-Identifier: MIT */
/*
 * 64-bit entry points: the BSP's from the VMM (Linux 64-bit boot protocol,
 * boot_params in RSI, no usable stack) and the APs' from the trampoline
 * or the ACPI wakeup mailbox.
 * Also the one-way switch to ring 3.
 */
#include "abi.h"

	.section .text.entry, "ax"
	.code64
	.globl _start
_start:
	cli
	/* CPU 0's kernel stack; its struct percpu sits at the bottom. */
	lea	kstacks + KSTACK_SIZE(%rip), %rsp
	xor	%ebp, %ebp
	mov	%rsi, %rdi
	call	kmain
	jmp	halt_forever

	.text
/* The trampoline jumps here with the kernel GDT loaded and paging on. */
	.globl ap_entry64
ap_entry64:
	mov	$SEL_KDATA, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	mov	ap_boot_cpu(%rip), %edi
	mov	%rdi, %rax
	imul	$KSTACK_SIZE, %rax
	lea	kstacks + KSTACK_SIZE(%rip), %rsp
	add	%rax, %rsp
	xor	%ebp, %ebp
	call	ap_main
	jmp	halt_forever

/*
 * The ACPI wakeup mailbox's entry: 64-bit mode on the VMM's identity page
 * tables and GDT, interrupts off, no stack. Take the kernel's own tables
 * and GDT (identity too, so nothing moves under us) and this AP's stack,
 * reload CS, and go on as the trampoline does.
 */
	.globl ap_mbox_entry
ap_mbox_entry:
	cli
	lea	pml4(%rip), %rax
	mov	%rax, %cr3
	lgdt	ap_gdtr(%rip)
	mov	ap_boot_cpu(%rip), %eax
	imul	$KSTACK_SIZE, %rax
	lea	kstacks + KSTACK_SIZE(%rip), %rsp
	add	%rax, %rsp
	pushq	$SEL_KCODE
	lea	ap_entry64(%rip), %rax
	push	%rax
	lretq

	.globl halt_forever
halt_forever:
	cli
	hlt
	jmp	halt_forever

/* void gdt_load(const struct desc_ptr *gdtr): lgdt, reload every segment. */
	.globl gdt_load
gdt_load:
	lgdt	(%rdi)
	mov	$SEL_KDATA, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	xor	%eax, %eax
	mov	%eax, %fs
	mov	%eax, %gs
	pop	%rax
	pushq	$SEL_KCODE
	push	%rax
	lretq

/*
 * void enter_user(uint64_t cpu, uint64_t rip, uint64_t rsp): iretq to ring
 * 3 with IF and IOPL=3; RDI (the CPU id) is the user entry's argument.
 */
	.globl enter_user
enter_user:
	mov	$SEL_UDATA, %eax
	mov	%eax, %ds
	mov	%eax, %es
	pushq	$SEL_UDATA
	push	%rdx
	pushq	$USER_RFLAGS
	pushq	$SEL_UCODE
	push	%rsi
	xor	%eax, %eax
	xor	%ebx, %ebx
	xor	%ecx, %ecx
	xor	%edx, %edx
	xor	%esi, %esi
	xor	%ebp, %ebp
	xor	%r8d, %r8d
	xor	%r9d, %r9d
	xor	%r10d, %r10d
	xor	%r11d, %r11d
	xor	%r12d, %r12d
	xor	%r13d, %r13d
	xor	%r14d, %r14d
	xor	%r15d, %r15d
	iretq

	.section .rodata
	.balign 8
	.word	0, 0, 0
ap_gdtr:				/* limit, then the 64-bit base */
	.word	(GDT_FIXED + 2 * MAX_CPUS) * 8 - 1
	.quad	gdt

	.section .note.GNU-stack, "", @progbits
