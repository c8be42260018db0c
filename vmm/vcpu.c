// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#include <signal.h>

#include "vmm/cluster.h"
#include "vmm/cpuid.h"
#include "vmm/ioapic.h"
#include "vmm/pvm.h"
#include "vmm/trace.h"
#include "vmm/vm.h"

#define VCPU_NICE 5 /* over hosts: below the service threads */

#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_LINT1 0x360
#define APIC_MODE_EXTINT 0x700
#define APIC_MODE_NMI	 0x400

static int set_cpuid(struct vcpu *v)
{
	struct kvm_cpuid2 *src = v->vm->cpuid;
	size_t sz = sizeof(*src) + src->nent * sizeof(src->entries[0]);
	struct kvm_cpuid2 *c = malloc(sz);
	int r;

	if (!c)
		return -ENOMEM;
	memcpy(c, src, sz);
	cpuid__for_vcpu(c, v->id, v->vm->cfg.nhosts > 1);
	r = ioctl(v->fd, KVM_SET_CPUID2, c);
	free(c);
	return r < 0 ? -errno : 0;
}

static void seg64(struct kvm_segment *s, uint16_t sel, uint8_t type,
		  bool code)
{
	*s = (struct kvm_segment){ .base = 0, .limit = 0xffffffff,
				   .selector = sel, .type = type,
				   .present = 1, .s = 1, .g = 1,
				   .l = code, .db = !code };
}

/* The state Linux's 64-bit boot protocol enters the kernel with. */
static int boot_state(struct vcpu *v, uint64_t entry)
{
	struct kvm_sregs s;
	struct kvm_regs r = { 0 };
	struct kvm_fpu f = { 0 };

	if (ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
		return -errno;
	seg64(&s.cs, 0x10, 0xb, true);
	seg64(&s.ds, 0x18, 0x3, false);
	s.es = s.fs = s.gs = s.ss = s.ds;
	s.tr = (struct kvm_segment){ .selector = 0x20, .limit = 0x67,
				     .type = 0xb, .present = 1 };
	s.ldt = (struct kvm_segment){ .type = 2, .present = 1,
				      .limit = 0xffff };
	s.gdt.base = MEM_GDT;
	s.gdt.limit = 0x2f;
	s.idt.base = 0;
	s.idt.limit = 0;
	s.cr0 = 0x80050033;	/* PG WP NE ET MP PE */
	s.cr3 = MEM_PML4;
	s.cr4 = 0x20;		/* PAE */
	s.efer = 0x500;		/* LMA LME */
	if (ioctl(v->fd, KVM_SET_SREGS, &s) < 0)
		return -errno;
	r.rip = entry;
	r.rsi = MEM_ZEROPAGE;
	r.rsp = MEM_ZEROPAGE; /* below it is free low memory */
	r.rflags = 2;
	if (ioctl(v->fd, KVM_SET_REGS, &r) < 0)
		return -errno;
	f.fcw = 0x37f;
	f.mxcsr = 0x1f80;
	if (ioctl(v->fd, KVM_SET_FPU, &f) < 0)
		return -errno;
	return 0;
}

static int lapic_init(struct vcpu *v)
{
	struct kvm_lapic_state l;

	if (ioctl(v->fd, KVM_GET_LAPIC, &l) < 0)
		return -errno;
	*(uint32_t *)(l.regs + LAPIC_LVT_LINT0) = APIC_MODE_EXTINT;
	*(uint32_t *)(l.regs + LAPIC_LVT_LINT1) = APIC_MODE_NMI;
	if (ioctl(v->fd, KVM_SET_LAPIC, &l) < 0)
		return -errno;
	return 0;
}

int vcpu__init(struct vm *vm, struct vcpu *v, int id, uint64_t entry)
{
	int r;

	v->vm = vm;
	v->id = id;
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, id);
	if (v->fd < 0)
		return -errno;
	v->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		return -errno;
	}
	if ((r = set_cpuid(v)) || (r = lapic_init(v)))
		return r;
	/* APs wait for INIT/SIPI in KVM's in-kernel LAPIC. */
	if (id == 0 && (r = boot_state(v, entry)))
		return r;
	return 0;
}

uint8_t *vcpu__gva_ptr(struct vcpu *v, uint64_t va, size_t len, bool wr)
{
	struct kvm_translation t = { .linear_address = va };

	if (ioctl(v->fd, KVM_TRANSLATE, &t) < 0 || !t.valid ||
	    (wr && !t.writeable))
		return NULL;
	return mem__ptr(&v->vm->mem, t.physical_address, len);
}

size_t vcpu__gva_copy(struct vcpu *v, uint64_t va, void *buf, size_t len,
		      bool wr)
{
	uint8_t *b = buf;
	size_t done = 0;

	while (done < len) {
		size_t n = PAGE_SIZE - ((va + done) & (PAGE_SIZE - 1));
		if (n > len - done)
			n = len - done;
		uint8_t *p = vcpu__gva_ptr(v, va + done, n, wr);
		if (!p)
			break;
		if (wr)
			memcpy(p, b + done, n);
		else
			memcpy(b + done, p, n);
		done += n;
	}
	return done;
}

/* Instruction bytes at RIP: from the exit if KVM gave them, else read
 * through the guest's page tables. Returns the count. */
static size_t insn_bytes(struct vcpu *v, const struct kvm_regs *r,
			 uint8_t *buf)
{
	struct kvm_run *run = v->run;
	size_t n = 0;

	if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR &&
	    run->emulation_failure.suberror == KVM_INTERNAL_ERROR_EMULATION &&
	    run->emulation_failure.ndata >= 2 &&
	    (run->emulation_failure.flags &
	     KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
		n = run->emulation_failure.insn_size;
		if (n > 15)
			n = 15;
		memcpy(buf, run->emulation_failure.insn_bytes, n);
		if (n)
			return n;
	}
	/* As many bytes as are mapped: the next page may not be. */
	return vcpu__gva_copy(v, r->rip, buf, 15, false);
}

static int inject(struct vcpu *v, int vector)
{
	struct kvm_vcpu_events e;

	if (ioctl(v->fd, KVM_GET_VCPU_EVENTS, &e) < 0)
		return -errno;
	e.exception.injected = 1;
	e.exception.nr = vector;
	e.exception.has_error_code = 0;
	e.flags = 0;
	if (ioctl(v->fd, KVM_SET_VCPU_EVENTS, &e) < 0)
		return -errno;
	return 0;
}

/* 4 bytes at a guest-virtual address (the operand may straddle pages). */
static int guest_rw32(struct vcpu *v, uint64_t gva, uint32_t *val, bool wr)
{
	return vcpu__gva_copy(v, gva, val, 4, wr) == 4 ? 0 : -1;
}

static int mxcsr_access(struct vcpu *v, const struct pvm_fix *fix)
{
	struct kvm_fpu f;
	uint32_t m;

	if (ioctl(v->fd, KVM_GET_FPU, &f) < 0)
		return -1;
	if (fix->mem == PVM_MEM_STORE_MXCSR) {
		m = f.mxcsr;
		return guest_rw32(v, fix->ea, &m, true);
	}
	if (guest_rw32(v, fix->ea, &m, false))
		return -1;
	f.mxcsr = m;
	return ioctl(v->fd, KVM_SET_FPU, &f) < 0 ? -1 : 0;
}

static int pvm_complete(struct vcpu *v)
{
	struct kvm_regs r;
	struct kvm_xcrs x = { 0 };
	struct pvm_fix fix;
	uint8_t b[15];
	uint64_t xcr0 = 0;

	if (v->run->emulation_failure.suberror != KVM_INTERNAL_ERROR_EMULATION)
		return -1;
	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0)
		return -1;
	size_t n = insn_bytes(v, &r, b);
	if (!ioctl(v->fd, KVM_GET_XCRS, &x) && x.nr_xcrs)
		xcr0 = x.xcrs[0].value;
	if (pvm__complete(b, n, &r, xcr0, &fix))
		return -1;
	if (fix.mem != PVM_MEM_NONE && mxcsr_access(v, &fix))
		return -1;
	if (ioctl(v->fd, KVM_SET_REGS, &r) < 0)
		return -1;
	if (fix.inject >= 0 && inject(v, fix.inject))
		return -1;
	pvm__count(fix.insn);
	v->st.pvm_fixups++;
	return 0;
}

void vcpu__dump(struct vcpu *v, const char *why)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	uint8_t b[15];
	size_t n = 0;

	flockfile(stderr);
	fprintf(stderr, "slos: vcpu %d: %s\n", v->id, why);
	if (!ioctl(v->fd, KVM_GET_REGS, &r)) {
		fprintf(stderr,
			" rip %016llx rsp %016llx rflags %08llx\n"
			" rax %016llx rbx %016llx rcx %016llx rdx %016llx\n"
			" rsi %016llx rdi %016llx rbp %016llx\n"
			" r8  %016llx r9  %016llx r10 %016llx r11 %016llx\n"
			" r12 %016llx r13 %016llx r14 %016llx r15 %016llx\n",
			r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx,
			r.rsi, r.rdi, r.rbp, r.r8, r.r9, r.r10, r.r11, r.r12,
			r.r13, r.r14, r.r15);
		n = insn_bytes(v, &r, b);
	}
	if (!ioctl(v->fd, KVM_GET_SREGS, &s))
		fprintf(stderr,
			" cs %04x (l=%d dpl=%d) ss %04x cr0 %llx cr2 %llx "
			"cr3 %llx cr4 %llx efer %llx\n",
			s.cs.selector, s.cs.l, s.cs.dpl, s.ss.selector, s.cr0,
			s.cr2, s.cr3, s.cr4, s.efer);
	fprintf(stderr, " code:");
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, " %02x", b[i]);
	fprintf(stderr, n ? "\n" : " (unreadable)\n");
	funlockfile(stderr);
}

static void fatal(struct vcpu *v, const char *fmt, unsigned long long a)
{
	char why[128];

	snprintf(why, sizeof(why), fmt, a);
	vcpu__dump(v, why);
	vm__stop(v->vm, VM_EXIT_CRASH, why);
}

static void on_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *p = (uint8_t *)run + run->io.data_offset;
	bool wr = run->io.direction == KVM_EXIT_IO_OUT;

	v->st.io++;
	for (unsigned i = 0; i < run->io.count; i++, p += run->io.size)
		io__access(&v->vm->pio, run->io.port, p, run->io.size, wr);
}

static void on_mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	unsigned len = run->mmio.len > 8 ? 8 : run->mmio.len;

	v->st.mmio++;
	io__access(&v->vm->mmio, run->mmio.phys_addr, run->mmio.data, len,
		   run->mmio.is_write);
}

static void handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	struct vm *vm = v->vm;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		on_io(v);
		break;
	case KVM_EXIT_MMIO:
		on_mmio(v);
		break;
	case KVM_EXIT_INTR:
		v->st.intr++;
		break;
	case KVM_EXIT_IOAPIC_EOI:
		if (vm->ioapic)
			ioapic__eoi(vm->ioapic, run->eoi.vector);
		else
			cluster__eoi(vm, run->eoi.vector);
		break;
	case KVM_EXIT_X86_WRMSR:
		/* Only over hosts does a filter send MSR writes here. */
		cluster__wrmsr(v);
		break;
	case KVM_EXIT_HLT:
		/* In-kernel LAPIC handles HLT; an exit means nothing can
		 * wake this vCPU (interrupts off). */
		fatal(v, "halted with nothing to wake it", 0);
		break;
	case KVM_EXIT_SHUTDOWN:
		/* SVM leaves the VMCB undefined on shutdown, so KVM resets the
		 * vCPU before it exits: the registers show no trace of it. */
		fatal(v, pvm__kvm_kind() == KVM_KIND_AMD
				 ? "triple fault (shutdown; kvm_amd reset the vCPU: "
				   "the registers below are its reset state)"
				 : "triple fault (shutdown)",
		      0);
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		vm__stop(vm, VM_EXIT_OK, "guest system event");
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		if (vm->pvm && !pvm_complete(v))
			break;
		fatal(v, "instruction nothing can complete (suberror %llu)",
		      run->internal.suberror);
		break;
	case KVM_EXIT_DEBUG:
		if (vm->pvm && !pvm_syscall__debug_exit(v))
			break;
		fatal(v, "unexpected debug exit (exception %llu)",
		      run->debug.arch.exception);
		break;
	case KVM_EXIT_FAIL_ENTRY:
		fatal(v, "entry failed (reason 0x%llx)",
		      run->fail_entry.hardware_entry_failure_reason);
		break;
	default:
		fatal(v, "unhandled exit reason %llu", run->exit_reason);
		break;
	}
}

static __thread struct vcpu *self;

/* A kick that found nothing to do (its jump was taken by an earlier
 * signal's EINTR, say) must not leave immediate_exit set, or every
 * KVM_RUN returns at once. Stopping and pausing keep theirs. */
static void rearm(struct vcpu *v)
{
	struct vm *vm = v->vm;

	pthread_mutex_lock(&vm->lock);
	if (!atomic_load(&vm->stopping) && !atomic_load(&vm->pause_req) &&
	    !atomic_load(&vm->hold_req) && atomic_load(&v->jump_to) < 0)
		v->run->immediate_exit = 0;
	pthread_mutex_unlock(&vm->lock);
}

struct vcpu *vcpu__current(void)
{
	return self;
}

void *vcpu__thread(void *arg)
{
	struct vcpu *v = arg;
	struct vm *vm = v->vm;
	char name[16];

	snprintf(name, sizeof(name), "slos-vcpu%d", v->id);
	pthread_setname_np(pthread_self(), name);
	/* Over hosts, the threads that answer other hosts (fabric I/O, the
	 * fault thread) must get a CPU at once, or a busy vCPU delays every
	 * host's faults and even the heartbeats. */
	if (vm->cl)
		setpriority(PRIO_PROCESS, gettid(), VCPU_NICE);
	self = v;
	v->tid = gettid();
	/* Over hosts: an AP on a member starts when host 0's boot CPU names
	 * it, a parked copy when the vCPU jumps here (and says so itself). */
	bool placed_here = atomic_load(&v->here);
	if (vm->cl && !cluster__vcpu_start(v))
		return NULL;
	if (placed_here)
		trace__emit(TRACE_RUN_BEGIN, vm->cfg.host, v->id, 0, 0, 0, 0);
	if (vm->cfg.profile && profile__start(v, vm->cfg.profile_us))
		fprintf(stderr, "slos: vcpu %d: profiling unavailable\n", v->id);
	if (vm->pvm && pvm_accel__start(v, PVM_ACCEL_US))
		fprintf(stderr, "slos: vcpu %d: no PVM acceleration\n", v->id);
	while (!atomic_load(&vm->stopping)) {
		if (vm->pvm)
			pvm_syscall__prepare(v);
		/* Only a VM over hosts is ever held (vm__hold): a single
		 * host's exit loop keeps its two atomic stores off. */
		if (vm->cl)
			atomic_store(&v->in_guest, true);
		int r = ioctl(v->fd, KVM_RUN, 0);
		if (vm->cl)
			atomic_store(&v->in_guest, false);
		if (v->prof.armed)
			profile__tick(v);
		if (v->accel.armed)
			pvm_accel__tick(v);
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				if (atomic_load(&vm->pause_req))
					vcpu__park(v);
				if (atomic_load(&vm->hold_req))
					vcpu__held(v);
				if (atomic_load(&v->jump_to) >= 0) {
					if (!cluster__depart(v))
						break;
				} else {
					rearm(v);
				}
				continue;
			}
			fatal(v, "KVM_RUN failed: errno %llu", errno);
			break;
		}
		v->st.exits++;
		handle_exit(v);
	}
	if (atomic_load(&v->here))
		trace__emit(TRACE_RUN_END, vm->cfg.host, v->id, 0, 0, 0, 0);
	profile__stop(v);
	pvm_accel__stop(v);
	return NULL;
}

/*
 * Reached through a KVM_RUN that returned EINTR after a pause kick: with
 * immediate_exit set, KVM first completed the I/O of the previous exit, so
 * the state is consistent. Wait here until resumed (or stopped).
 */
void vcpu__park(struct vcpu *v)
{
	struct vm *vm = v->vm;

	pthread_mutex_lock(&vm->lock);
	vm->paused++;
	pthread_cond_broadcast(&vm->pause_cv);
	while (atomic_load(&vm->pause_req) && !atomic_load(&vm->stopping))
		pthread_cond_wait(&vm->pause_cv, &vm->lock);
	vm->paused--;
	if (!atomic_load(&vm->stopping))
		v->run->immediate_exit = 0;
	pthread_mutex_unlock(&vm->lock);
}

void vcpu__held(struct vcpu *v)
{
	struct vm *vm = v->vm;

	pthread_mutex_lock(&vm->lock);
	while (atomic_load(&vm->hold_req) && !atomic_load(&vm->stopping))
		pthread_cond_wait(&vm->hold_cv, &vm->lock);
	pthread_mutex_unlock(&vm->lock);
}

void vcpu__kick(struct vcpu *v)
{
	if (v->run)
		v->run->immediate_exit = 1;
	if (v->started)
		pthread_kill(v->thread, SIGUSR1);
}
