/* SPDX-License-Identifier: MIT */
/*
 * Contract between the test OS kernel (ring 0), its ring-3 side and the VMM:
 * segment selectors, interrupt vectors, I/O ports, exit codes and the ud2
 * call ABI. Included by C and assembly.
 */
#ifndef TESTOS_ABI_H
#define TESTOS_ABI_H

#define MAX_CPUS 256

/* GDT layout; 0x08..0x18 match the VMM's boot GDT so the switch is seamless.
 * User data sits below user code like Linux's (sysret-compatible order). */
#define SEL_KCODE32 0x08
#define SEL_KCODE   0x10
#define SEL_KDATA   0x18
#define SEL_UCODE32 0x20
#define SEL_UDATA   0x2b /* 0x28 | RPL 3 */
#define SEL_UCODE   0x33 /* 0x30 | RPL 3 */
#define SEL_TSS0    0x40 /* + 16 * cpu */
#define GDT_FIXED   8	 /* 8-byte slots before the TSS descriptors */

/* Ring-3 RFLAGS: IF, IOPL=3 (port I/O on hardware KVM; PVM needs the TSS
 * I/O bitmap as well), reserved bit 1. */
#define USER_RFLAGS 0x3202

/* Memory layout (see testos.ld): kernel below USER_BASE, user above. */
#define KERNEL_BASE 0x100000
#define USER_BASE   0x800000
#define TRAMP_BASE  0x10000 /* AP trampoline, SIPI vector 0x10 */
#define LAPIC_BASE  0xFEE00000
#define KSTACK_SIZE 8192
#define USTACK_SIZE 16384

/* Vectors. */
#define VEC_UD	 6
#define VEC_GP	 13
#define VEC_PING 0xF0 /* receiver counts it and answers with VEC_PONG */
#define VEC_PONG 0xF1
#define VEC_WAKE 0xF2 /* only ends a SYS_WAIT: EOI and return */
#define VEC_TICK 0xF3 /* periodic timer (SYS_TICK): count, EOI */
#define VEC_SPUR 0xFF

/* Ports. */
#define PORT_COM1      0x3f8
#define PORT_TEST_EXIT 0x501
#define PORT_NOP       0x510 /* unused port the VMM answers at once */
#define PORT_JUMP      0x50c /* over hosts: write a host to move there */

/* The ACPI multiprocessor wakeup mailbox (MADT type 0x10, ACPI 6.4
 * 5.2.12.19), when the MADT has one (a VM over hosts): its registers. */
#define MADT_MP_WAKE	 0x10
#define MP_WAKE_COMMAND	 0x0 /* u16: 1 wakes; reads 0 once taken */
#define MP_WAKE_APIC_ID	 0x4 /* u32 */
#define MP_WAKE_VECTOR	 0x8 /* u64: 64-bit entry, identity-mapped */
#define MP_WAKE_CMD_WAKE 1

/* Exit codes (status of the VMM process). */
#define EXIT_PASS      0
#define EXIT_FAIL      1
#define EXIT_BADCMD    2
#define EXIT_EXCEPTION 3

/*
 * ud2 calls: ring 3 puts the call number in RAX and arguments in RDI, RSI,
 * RDX, then executes ud2. The kernel's #UD handler does the call, puts the
 * result in RAX, skips the ud2 and returns; every other register is kept.
 */
#define SYS_NOP	 0 /* returns 0: measures the round trip */
#define SYS_IPI	 1 /* (apic_id, vector): fixed IPI */
#define SYS_EXIT 2 /* (status): test-exit port; does not return */
#define SYS_OUT	 3 /* (port, value, size 1/2/4): port output */
#define SYS_IN	 4 /* (port, size 1/2/4): port input, value in RAX */
#define SYS_PARK 5 /* stop this CPU for good (cli; hlt) */
#define SYS_WAIT 6 /* (u64 *p, v): if *p == v, sti; hlt until an interrupt */
#define SYS_TICK 7 /* (period_ns): periodic VEC_TICK timer, 0 stops */
/* (addr, len, u64 pattern): store pattern over the 8-byte words of
 * [addr, addr + len) from ring 0, with no check, as a misbehaving kernel
 * would; returns how many read back as written. */
#define SYS_FILL 8
#define SYS_NR	 9

#define SYS_EBADCALL (-1L)

#endif
