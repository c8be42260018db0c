// SPDX-License-Identifier: MIT
/*
 * Under PVM a long `rep stos`/`rep movs` at guest ring 0 runs in KVM's
 * emulator one element at a time: Debian's kernel clears its 17 MiB bss
 * with `rep stosb` at ~1.6 us a byte, 27 s of its boot, and every
 * clear_page() costs milliseconds. Each vCPU thread is kicked every
 * PVM_ACCEL_US; when the kick finds the vCPU inside such an instruction,
 * slos completes the rest of it on guest RAM and moves RIP past it, as the
 * CPU would have. Only plain forward copies and fills of RAM qualify;
 * anything else (MMIO, DF=1, overlap, a page not mapped) is left to KVM.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vmm/pvm.h"
#include "vmm/vm.h"

#define ACCEL_SIG (SIGRTMIN + 1)
#define ACCEL_MIN 256 /* bytes left: below this, KVM finishes soon anyway */

static __thread volatile sig_atomic_t due;

static void on_tick(int sig)
{
	due = 1;
}

int pvm_accel__start(struct vcpu *v, unsigned period_us)
{
	struct sigevent se = { .sigev_notify = SIGEV_THREAD_ID,
			       .sigev_signo = ACCEL_SIG };
	struct sigaction sa = { .sa_handler = on_tick };
	struct itimerspec it = {
		.it_interval = { .tv_sec = 0, .tv_nsec = period_us * 1000L },
		.it_value = { .tv_sec = 0, .tv_nsec = period_us * 1000L },
	};

	se._sigev_un._tid = syscall(SYS_gettid);
	sigaction(ACCEL_SIG, &sa, NULL);
	v->run->kvm_valid_regs |= KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
	if (timer_create(CLOCK_MONOTONIC, &se, &v->accel.timer))
		return -errno;
	v->accel.armed = 1;
	if (timer_settime(v->accel.timer, 0, &it, NULL))
		return -errno;
	return 0;
}

void pvm_accel__stop(struct vcpu *v)
{
	if (v->accel.armed)
		timer_delete(v->accel.timer);
	v->accel.armed = 0;
}

int pvm__string_op(const uint8_t *b, size_t n, const struct kvm_regs *r,
		   struct pvm_strop *op)
{
	size_t i = 0;
	bool rep = false, rex_w = false, opsize = false;

	for (; i < n && i < 4; i++) {
		if (b[i] == 0xf3)
			rep = true;
		else if (b[i] == 0x66)
			opsize = true;
		else
			break;
	}
	if (i < n && (b[i] & 0xf0) == 0x40) {
		rex_w = b[i] & 8;
		i++;
	}
	if (!rep || i >= n || (r->rflags & PVM_STROP_DF))
		return -1;
	switch (b[i]) {
	case 0xaa:
	case 0xa4:
		op->size = 1;
		break;
	case 0xab:
	case 0xa5:
		op->size = rex_w ? 8 : opsize ? 2 : 4;
		break;
	default:
		return -1;
	}
	op->fill = b[i] == 0xaa || b[i] == 0xab;
	op->len = i + 1;
	op->count = r->rcx;
	op->dst = r->rdi;
	op->src = r->rsi;
	op->value = r->rax;
	if (op->count > PVM_STROP_MAX / op->size)
		return -1;
	uint64_t bytes = op->count * op->size;
	/* A copy whose destination starts inside its source: element-wise
	 * forward semantics differ from a block copy. */
	if (!op->fill && op->dst > op->src && op->dst < op->src + bytes)
		return -1;
	return 0;
}

static size_t page_left(uint64_t va)
{
	return PAGE_SIZE - (va & (PAGE_SIZE - 1));
}

/* Check every page first: nothing is written unless all of it is RAM. */
static bool all_ram(struct vcpu *v, uint64_t va, uint64_t bytes, bool wr)
{
	for (uint64_t off = 0; off < bytes;) {
		size_t c = page_left(va + off);
		if (c > bytes - off)
			c = bytes - off;
		if (!vcpu__gva_ptr(v, va + off, c, wr))
			return false;
		off += c;
	}
	return true;
}

static void fill(uint8_t *p, size_t c, uint64_t off, const struct pvm_strop *op)
{
	if (op->size == 1 || !op->value) {
		memset(p, (uint8_t)op->value, c);
		return;
	}
	/* Chunks split at page boundaries, not element boundaries. */
	for (size_t k = 0; k < c; k++)
		p[k] = op->value >> (8 * ((off + k) % op->size));
}

static int run_op(struct vcpu *v, const struct pvm_strop *op)
{
	uint64_t bytes = op->count * op->size;

	if (!all_ram(v, op->dst, bytes, true) ||
	    (!op->fill && !all_ram(v, op->src, bytes, false)))
		return -1;
	for (uint64_t off = 0; off < bytes;) {
		size_t c = page_left(op->dst + off);
		if (!op->fill && page_left(op->src + off) < c)
			c = page_left(op->src + off);
		if (c > bytes - off)
			c = bytes - off;
		uint8_t *d = vcpu__gva_ptr(v, op->dst + off, c, true);
		if (!d)
			return -1;
		if (op->fill) {
			fill(d, c, off, op);
		} else {
			uint8_t *s = vcpu__gva_ptr(v, op->src + off, c, false);
			if (!s)
				return -1;
			memmove(d, s, c);
		}
		off += c;
	}
	return 0;
}

void pvm_accel__tick(struct vcpu *v)
{
	struct kvm_regs *r = &v->run->s.regs.regs;
	struct pvm_strop op;
	uint8_t b[8];
	size_t n = 0;

	if (!due)
		return;
	due = 0;
	if (v->run->s.regs.sregs.cs.dpl != 0 || !v->run->s.regs.sregs.cs.l ||
	    r->rcx < ACCEL_MIN)
		return;
	/* The instruction's bytes, up to the end of RIP's page. */
	size_t c = page_left(r->rip) < sizeof(b) ? page_left(r->rip) : sizeof(b);
	uint8_t *p = vcpu__gva_ptr(v, r->rip, c, false);
	if (!p)
		return;
	memcpy(b, p, c);
	n = c;
	if (pvm__string_op(b, n, r, &op) || run_op(v, &op))
		return;
	uint64_t bytes = op.count * op.size;
	r->rdi += bytes;
	if (!op.fill)
		r->rsi += bytes;
	r->rcx = 0;
	r->rip += op.len;
	v->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
	v->accel.ops++;
	v->accel.bytes += bytes;
}
