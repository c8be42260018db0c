/* SPDX-License-Identifier: MIT */
/* Ring-3 entry (iretq target, CPU id in RDI) and the port I/O probe. */
	.text
	.globl user_start
user_start:
	xor	%ebp, %ebp
	call	user_main
	ud2

/*
 * uint8_t uio_probe_in(uint16_t port): one `in` whose #GP, if ring-3 port
 * I/O is refused, the kernel recognises by address and skips (AL = 0xff).
 */
	.globl uio_probe_in, uio_probe_insn
uio_probe_in:
	mov	%edi, %edx
	mov	$0xff, %eax
uio_probe_insn:
	inb	%dx, %al
	ret

	.section .note.GNU-stack, "", @progbits
