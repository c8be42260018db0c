/* SPDX-License-Identifier: MIT */
/*
 * AP trampoline, copied to TRAMP_BASE (SIPI vector TRAMP_BASE >> 12) by the
 * BSP. Linux-like real -> protected -> long mode: it borrows the kernel GDT
 * (flat 32-bit code at SEL_KCODE32, data at SEL_KDATA, 64-bit code at
 * SEL_KCODE) and the kernel page tables, which are all below 4 GiB.
 * Addresses inside it are TRAMP_BASE + offset, since it runs from the copy.
 */
#include "abi.h"

#define OFF(x) ((x) - tramp_start)

	.section .rodata.tramp, "a"
	.globl tramp_start, tramp_end
	.code16
tramp_start:
	cli
	mov	%cs, %ax
	mov	%ax, %ds
	lgdtl	OFF(tramp_gdtr)
	mov	%cr0, %eax
	and	$0x9fffffff, %eax	/* caches on: clear CD, NW */
	or	$0x00010023, %eax	/* PE, MP, NE, WP */
	mov	%eax, %cr0
	ljmpl	$SEL_KCODE32, $(TRAMP_BASE + OFF(tramp32))

	.code32
tramp32:
	mov	$SEL_KDATA, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	mov	%cr4, %eax
	or	$0x20, %eax		/* PAE */
	mov	%eax, %cr4
	mov	$pml4, %eax
	mov	%eax, %cr3
	mov	$0xc0000080, %ecx	/* EFER.LME */
	rdmsr
	or	$0x100, %eax
	wrmsr
	mov	%cr0, %eax
	or	$0x80000000, %eax	/* PG: long mode becomes active */
	mov	%eax, %cr0
	ljmp	$SEL_KCODE, $ap_entry64

	.balign 8
tramp_gdtr:
	.word	(GDT_FIXED + 2 * MAX_CPUS) * 8 - 1
	.long	gdt
tramp_end:

	.section .note.GNU-stack, "", @progbits
