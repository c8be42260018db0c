// SPDX-License-Identifier: MIT
/*
 * trap(): the slow path of every vector. Ring-3 ud2 calls and the IOPL
 * probe are handled and return; anything else is an unexpected exception:
 * report vector, error code, RIP, CR2 and registers, exit with status 3.
 */
#include "kern.h"
#include "lib.h"
#include "x86.h"

static const char *const exc_names[32] = {
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS",
    "#NP", "#SS", "#GP", "#PF", "15",  "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
    "22",  "23",  "24",	 "25",	"26",  "27",  "#HV", "#VC", "#SX", "31",
};

void kexit(uint32_t status)
{
	outl(PORT_TEST_EXIT, status);
	halt_forever();
}

static void out_port(uint16_t port, uint32_t v, uint64_t size)
{
	if (size == 1)
		outb(port, (uint8_t)v);
	else if (size == 2)
		__asm__ volatile("outw %0, %1"
				 :
				 : "a"((uint16_t)v), "Nd"(port));
	else
		outl(port, v);
}

static uint32_t in_port(uint16_t port, uint64_t size)
{
	uint32_t v = 0;

	if (size == 1)
		v = inb(port);
	else if (size == 2)
		__asm__ volatile("inw %1, %w0" : "=a"(v) : "Nd"(port));
	else
		__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static long fill(volatile uint64_t *p, uint64_t n, uint64_t pat)
{
	long kept = 0;

	for (uint64_t i = 0; i < n; i++)
		p[i] = pat;
	for (uint64_t i = 0; i < n; i++)
		kept += p[i] == pat;
	return kept;
}

static void sys_call(struct trap_frame *f)
{
	long ret = 0;

	switch (f->rax) {
	case SYS_NOP:
		break;
	case SYS_IPI:
		lapic_icr((uint32_t)f->rdi, 0x4000 | (f->rsi & 0xff));
		break;
	case SYS_EXIT:
		kexit((uint32_t)f->rdi);
	case SYS_OUT:
		out_port((uint16_t)f->rdi, (uint32_t)f->rsi, f->rdx);
		break;
	case SYS_IN:
		ret = in_port((uint16_t)f->rdi, f->rsi);
		break;
	case SYS_PARK:
		halt_forever();
	case SYS_WAIT:
		/* IF=0 here, so nothing slips between the check and hlt (sti
		 * holds interrupts off for one more instruction). The
		 * interrupt's handler runs at ring 0 and returns here. */
		if (*(volatile uint64_t *)f->rdi == f->rsi) {
			/* Also wake by the clock: the caller re-checks. */
			lapic_wake_in(2000000);
			__asm__ volatile("sti; hlt; cli" ::: "memory");
		}
		break;
	case SYS_TICK:
		lapic_tick((uint32_t)f->rdi);
		break;
	case SYS_FILL:
		ret = fill((volatile uint64_t *)f->rdi, f->rsi / 8, f->rdx);
		break;
	default:
		ret = SYS_EBADCALL;
		break;
	}
	f->rax = (uint64_t)ret;
	f->rip += 2;
}

static void fatal(struct trap_frame *f)
{
	struct percpu *pc = this_cpu();
	uint64_t cr2 = read_cr2();
	const char *name = f->vector < 32 ? exc_names[f->vector] : "IRQ";

	/* A fault while reporting: do not recurse, just stop the VM. */
	if (pc->in_fatal++)
		kexit(EXIT_EXCEPTION);
	kprintf("\ntestos: EXCEPTION %s vector %lu on cpu %u at ring %lu\n",
		name, f->vector, pc->cpu, f->cs & 3);
	kprintf("  err=%016lx rip=%016lx cs=%04lx rflags=%08lx\n", f->error,
		f->rip, f->cs, f->rflags);
	kprintf("  rsp=%016lx ss=%04lx cr2=%016lx\n", f->rsp, f->ss, cr2);
	kprintf("  rax=%016lx rbx=%016lx rcx=%016lx rdx=%016lx\n", f->rax,
		f->rbx, f->rcx, f->rdx);
	kprintf("  rsi=%016lx rdi=%016lx rbp=%016lx r8 =%016lx\n", f->rsi,
		f->rdi, f->rbp, f->r8);
	kprintf("  r9 =%016lx r10=%016lx r11=%016lx r12=%016lx\n", f->r9,
		f->r10, f->r11, f->r12);
	kprintf("  r13=%016lx r14=%016lx r15=%016lx\n", f->r13, f->r14, f->r15);
	kprintf("TEST %s FAIL unexpected exception %s\n",
		shared.test_name ? shared.test_name : "?", name);
	kexit(EXIT_EXCEPTION);
}

void trap(struct trap_frame *f)
{
	bool user = (f->cs & 3) == 3;

	if (user && f->vector == VEC_UD &&
	    *(volatile uint16_t *)f->rip == 0x0b0f) {
		sys_call(f);
		return;
	}
	/* #GP on the probing `in` means neither IOPL nor the bitmap gives
	 * ring 3 the ports here: note it and skip the 1-byte instruction. */
	if (user && f->vector == VEC_GP && f->rip == (uint64_t)uio_probe_insn) {
		shared.io_probe_faulted = 1;
		f->rip += 1;
		return;
	}
	fatal(f);
}
