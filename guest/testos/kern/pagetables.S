/* SPDX-License-Identifier: MIT */
/*
 * The kernel's page tables, built by the assembler so that no emulated
 * ring-0 loop has to write them: identity map of [0, 4 GiB) in 2 MiB pages.
 * [0, USER_BASE) is supervisor-only (kernel image, boot data, trampoline),
 * [USER_BASE, 3 GiB) is user-accessible (user image and all free RAM),
 * [3 GiB, 4 GiB) is the MMIO hole (LAPIC, IOAPIC): supervisor, uncached.
 */
#include "abi.h"

#define PTE_P	0x1
#define PTE_W	0x2
#define PTE_U	0x4
#define PTE_PWT 0x8
#define PTE_PCD 0x10
#define PTE_PS	0x80

	.section .data.pagetables, "aw"
	.balign 4096
	.globl pml4
pml4:
	.quad	pdpt + (PTE_P | PTE_W | PTE_U)
	.fill	511, 8, 0
pdpt:
	.quad	pd + 0x0000 + (PTE_P | PTE_W | PTE_U)
	.quad	pd + 0x1000 + (PTE_P | PTE_W | PTE_U)
	.quad	pd + 0x2000 + (PTE_P | PTE_W | PTE_U)
	.quad	pd + 0x3000 + (PTE_P | PTE_W | PTE_U)
	.fill	508, 8, 0
pd:
	.set	addr, 0
	.rept	2048
	.if	addr < USER_BASE
	.quad	addr | (PTE_P | PTE_W | PTE_PS)
	.elseif	addr >= 0xc0000000
	.quad	addr | (PTE_P | PTE_W | PTE_PS | PTE_PWT | PTE_PCD)
	.else
	.quad	addr | (PTE_P | PTE_W | PTE_U | PTE_PS)
	.endif
	.set	addr, addr + 0x200000
	.endr

	.section .note.GNU-stack, "", @progbits
