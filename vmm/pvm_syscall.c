// SPDX-License-Identifier: MIT
/*
 * System calls from guest user space under PVM (see pvm.h and
 * docs/pvm-syscalls.md). The decisions are pure functions below; the rest
 * reads and writes the vCPU state that KVM syncs into kvm_run at every exit
 * (KVM_CAP_SYNC_REGS), because each vCPU ioctl costs ~5 us under PVM.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/pvm.h"
#include "vmm/vm.h"

#define VEC_UD	  6
#define VEC_PF	  14
#define VEC_INT80 0x80
#define GATE_SIZE 16

#define MSR_STAR   0xC0000081
#define MSR_LSTAR  0xC0000082
#define MSR_SFMASK 0xC0000084

#define PTE_P	  1ULL
#define PTE_PS	  (1ULL << 7)
#define PTE_ADDR  0x000ffffffffff000ULL
#define CR3_ADDR  0x000ffffffffff000ULL
#define CR4_LA57  (1ULL << 12)
#define KERNEL_VA (1ULL << 63)

static uint64_t n_syscall, n_int80, n_pass, n_rejected, n_arm;

static void count(uint64_t *c)
{
	__atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
}

void pvm__gate_decode(const uint8_t g[16], struct pvm_gate *gate)
{
	uint64_t lo, hi;

	memcpy(&lo, g, 8);
	memcpy(&hi, g + 8, 8);
	gate->handler = (lo & 0xffff) | ((lo >> 32) & 0xffff0000ULL) |
			((hi & 0xffffffffULL) << 32);
	gate->sel = (lo >> 16) & 0xffff;
	gate->ist = (lo >> 32) & 7;
	gate->type = (lo >> 40) & 0xf;
	gate->dpl = (lo >> 45) & 3;
	gate->present = (lo >> 47) & 1;
}

void pvm__frame_decode(const uint64_t *w, bool has_err, struct pvm_frame *f)
{
	f->err = has_err ? *w++ : 0;
	f->rip = w[0];
	f->cs = w[1];
	f->rflags = w[2];
	f->rsp = w[3];
	f->ss = w[4];
}

void pvm__star_segments(uint64_t star, struct kvm_segment *cs,
			struct kvm_segment *ss)
{
	uint16_t sel = (star >> 32) & 0xfffc;

	/* What SYSCALL loads: flat, CPL 0; CS 64-bit code, SS writable data. */
	*cs = (struct kvm_segment){.selector = sel,
				   .limit = 0xffffffff,
				   .type = 0xb,
				   .present = 1,
				   .s = 1,
				   .l = 1,
				   .g = 1};
	*ss = (struct kvm_segment){.selector = sel + 8,
				   .limit = 0xffffffff,
				   .type = 0x3,
				   .present = 1,
				   .s = 1,
				   .db = 1,
				   .g = 1};
}

bool pvm__is_syscall_pf(const struct pvm_frame *f, const struct kvm_regs *r,
			const struct pvm_sys_msrs *m, bool insn_ok)
{
	uint64_t mask = m->sfmask | PVM_RFLAGS_RF;

	if ((f->cs & 3) != 3 || !m->lstar || f->rip != m->lstar || !insn_ok)
		return false;
	/*
	 * A user jump to LSTAR faults the same way. A real SYSCALL left the
	 * return address in RCX (checked by the caller: 0f 05 before it),
	 * RFLAGS in R11, and RFLAGS masked with SFMASK; a forged entry
	 * cannot clear IF, so it fails this and stays a #PF.
	 */
	if (f->rflags & m->sfmask & ~PVM_RFLAGS_RF)
		return false;
	return ((r->r11 | 2) & ~mask) == ((f->rflags | 2) & ~mask);
}

bool pvm__enter_syscall(const struct pvm_frame *f, const struct pvm_sys_msrs *m,
			struct kvm_regs *r, struct kvm_sregs *s)
{
	struct kvm_segment cs, ss;

	r->rip = m->lstar;
	r->rsp = f->rsp; /* SYSCALL does not switch stacks */
	r->rflags = ((f->rflags & ~m->sfmask) | 2) & ~PVM_RFLAGS_RF;
	pvm__star_segments(m->star, &cs, &ss);
	/*
	 * Delivering the #PF already loaded the gate's CS at CPL 0. When that
	 * is STAR's kernel CS, as in Linux, only SS differs (NULL instead of
	 * STAR+8), which is a valid CPL-0 SS in 64-bit mode and what every
	 * interrupt from user mode leaves: skip the costlier sregs write.
	 */
	if (s->cs.selector == cs.selector && s->cs.l && s->cs.dpl == 0)
		return false;
	s->cs = cs;
	s->ss = ss;
	return true;
}

bool pvm__enter_int80(const struct pvm_frame *f, const struct pvm_gate *gate,
		      const struct pvm_gate *ud, struct kvm_regs *r)
{
	/* Only what INT n from CPL 3 would accept; the #UD delivery must have
	 * used the same stack the 0x80 gate would (no IST) and CS. */
	if ((f->cs & 3) != 3 || !gate->present || gate->dpl != 3 ||
	    (gate->type != 0xe && gate->type != 0xf) || gate->ist || ud->ist ||
	    gate->sel != ud->sel)
		return false;
	r->rip = gate->handler;
	/* An interrupt gate clears IF, a trap gate keeps the caller's. */
	r->rflags &= ~(PVM_RFLAGS_RF | PVM_RFLAGS_IF);
	if (gate->type == 0xf)
		r->rflags |= f->rflags & PVM_RFLAGS_IF;
	return true;
}

/* Length of the ModRM operand bytes (ModRM, SIB, displacement) at m. */
static int modrm_len(const uint8_t *m, size_t n)
{
	unsigned mod = m[0] >> 6, rm = m[0] & 7;
	int len = 1;

	if (n < 1 || mod == 3)
		return -1;
	if (rm == 4) {
		if (n < 2)
			return -1;
		len++;
		if (mod == 0 && (m[1] & 7) == 5)
			len += 4;
	} else if (mod == 0 && rm == 5) {
		len += 4; /* RIP-relative */
	}
	len += mod == 1 ? 1 : mod == 2 ? 4 : 0;
	return len <= (int)n ? len : -1;
}

int pvm__step_entry(const uint8_t *b, size_t n, struct kvm_regs *r,
		    uint64_t *push)
{
	size_t i = 0;
	int len;

	while (i < n && i < 4 && b[i] == 0x66)
		i++; /* operand-size prefixes pad long NOPs */
	if (i >= n)
		return -1;
	if (b[i] == 0x90) {
		len = i + 1;
	} else if (n - i >= 3 && b[i] == 0x0f && b[i + 1] == 0x1f &&
		   ((b[i + 2] >> 3) & 7) == 0) {
		int m = modrm_len(b + i + 2, n - i - 2);
		if (m < 0)
			return -1;
		len = i + 2 + m;
	} else if (i) {
		return -1;
	} else if (n >= 4 && !memcmp(b, "\xf3\x0f\x1e\xfa", 4)) {
		len = 4; /* endbr64 */
	} else if (b[0] == 0xfc) {
		r->rflags &= ~PVM_RFLAGS_DF;
		len = 1;
	} else if (n >= 3 && !memcmp(b, "\x0f\x01\xca", 3)) {
		r->rflags &= ~PVM_RFLAGS_AC; /* clac */
		len = 3;
	} else if (n >= 2 && b[0] == 0x6a) {
		*push = (uint64_t)(int64_t)(int8_t)b[1];
		r->rsp -= 8;
		len = 2;
	} else if (n >= 5 && b[0] == 0x68) {
		int32_t imm;
		memcpy(&imm, b + 1, 4);
		*push = (uint64_t)(int64_t)imm;
		r->rsp -= 8;
		len = 5;
	} else {
		return -1;
	}
	r->rip += len;
	return len;
}

int pvm__walk(uint64_t cr3, bool la57, uint64_t va,
	      const uint64_t *(*read)(void *arg, uint64_t gpa), void *arg,
	      uint64_t *gpa)
{
	uint64_t table = cr3 & CR3_ADDR;

	for (int level = la57 ? 5 : 4; level >= 1; level--) {
		unsigned shift = 12 + 9 * (level - 1);
		const uint64_t *e =
		    read(arg, table + ((va >> shift) & 511) * 8);
		if (!e || !(*e & PTE_P))
			return -1;
		if (level == 1 ||
		    ((level == 2 || level == 3) && (*e & PTE_PS))) {
			uint64_t size = 1ULL << shift;
			/* Large pages: bit 12 is PAT, not address. */
			uint64_t base = *e & PTE_ADDR & ~(size - 1);
			*gpa = base | (va & (size - 1));
			return 0;
		}
		table = *e & PTE_ADDR;
	}
	return -1;
}

/* ---- guest memory by virtual address, vCPU state from kvm_run ---- */

static const uint64_t *read_pte(void *arg, uint64_t gpa)
{
	return mem__ptr(arg, gpa, 8);
}

/* Host pointer for [va, va+len) within one guest page, or NULL. */
static uint8_t *gva_ptr(struct vcpu *v, uint64_t va, size_t len)
{
	const struct kvm_sregs *s = &v->run->s.regs.sregs;
	uint64_t gpa;

	if (pvm__walk(s->cr3, s->cr4 & CR4_LA57, va, read_pte, &v->vm->mem,
		      &gpa))
		return NULL;
	return mem__ptr(&v->vm->mem, gpa, len);
}

/* Copy between guest-virtual memory and buf, page by page. */
static int gva_copy(struct vcpu *v, uint64_t va, void *buf, size_t len,
		    bool write)
{
	uint8_t *b = buf;

	while (len) {
		size_t n = PAGE_SIZE - (va & (PAGE_SIZE - 1));
		if (n > len)
			n = len;
		uint8_t *p = gva_ptr(v, va, n);
		if (!p)
			return -1;
		if (write)
			memcpy(p, b, n);
		else
			memcpy(b, p, n);
		va += n;
		b += n;
		len -= n;
	}
	return 0;
}

static int read_gate(struct vcpu *v, unsigned vec, struct pvm_gate *g)
{
	const struct kvm_dtable *idt = &v->run->s.regs.sregs.idt;
	uint8_t raw[GATE_SIZE];

	if ((uint32_t)idt->limit + 1 < (vec + 1) * GATE_SIZE ||
	    gva_copy(v, idt->base + vec * GATE_SIZE, raw, sizeof(raw), false))
		return -1;
	pvm__gate_decode(raw, g);
	return 0;
}

static int read_msrs(struct vcpu *v)
{
	union {
		struct kvm_msrs h;
		uint8_t b[sizeof(struct kvm_msrs) +
			  3 * sizeof(struct kvm_msr_entry)];
	} m = {.h.nmsrs = 3};
	struct kvm_msr_entry *e = m.h.entries;

	e[0].index = MSR_STAR;
	e[1].index = MSR_LSTAR;
	e[2].index = MSR_SFMASK;
	if (ioctl(v->fd, KVM_GET_MSRS, &m) != 3)
		return -1;
	v->pvm_sys.msrs = (struct pvm_sys_msrs){
	    .star = e[0].data, .lstar = e[1].data, .sfmask = e[2].data};
	return 0;
}

static void set_dirty(struct vcpu *v, uint64_t what)
{
	v->run->kvm_dirty_regs |= what;
}

/* Publish the handlers this vCPU found; every vCPU arms them before its
 * next KVM_RUN (kicked, so that one waiting for SIPI does too). */
static void publish(struct vcpu *v, uint64_t pf, uint64_t ud)
{
	struct vm *vm = v->vm;

	pthread_mutex_lock(&vm->lock);
	if (vm->pvm_sys.pf != pf || vm->pvm_sys.ud != ud) {
		vm->pvm_sys.pf = pf;
		vm->pvm_sys.ud = ud;
		atomic_fetch_add(&vm->pvm_sys.gen, 1);
		for (unsigned i = 0; i < vm->cfg.nr_vcpus; i++)
			if (&vm->vcpus[i] != v)
				vcpu__kick(&vm->vcpus[i]);
	}
	pthread_mutex_unlock(&vm->lock);
}

/* Linux builds its IDT late in boot and may load another one later: look
 * at it at every exit (a page walk on the host, no ioctl). */
#define EFER_SCE 0x1ULL
#define IDT_RECHECK 64

static void observe_idt(struct vcpu *v)
{
	struct pvm_sys_vcpu *ps = &v->pvm_sys;
	struct pvm_gate pf, ud;

	/* Only a guest that turned `syscall` on (EFER.SCE) gets the
	 * breakpoints: one that never makes system calls (the test OS uses
	 * its own ud2 calls) runs exactly as without this hook. */
	if (!(v->run->s.regs.sregs.efer & EFER_SCE))
		return;
	/* Reading the gates is a page walk: do it when the IDT moves, and
	 * otherwise every IDT_RECHECK exits for gates rewritten in place
	 * (rare: Linux fills its IDT before it loads it). */
	uint64_t base = v->run->s.regs.sregs.idt.base;
	if (base == ps->seen_idt && ++ps->idt_age < IDT_RECHECK)
		return;
	ps->seen_idt = base;
	ps->idt_age = 0;
	if (read_gate(v, VEC_PF, &pf) || read_gate(v, VEC_UD, &ud) ||
	    !pf.present || !ud.present)
		return;
	if (pf.handler == ps->seen_pf && ud.handler == ps->seen_ud)
		return;
	ps->seen_pf = pf.handler;
	ps->seen_ud = ud.handler;
	publish(v, pf.handler, ud.handler);
}

static void arm(struct vcpu *v)
{
	struct pvm_sys_vcpu *ps = &v->pvm_sys;
	struct vm *vm = v->vm;
	struct kvm_guest_debug dbg = {
	    .control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP,
	};

	pthread_mutex_lock(&vm->lock);
	ps->armed_gen = atomic_load(&vm->pvm_sys.gen);
	ps->armed_pf = vm->pvm_sys.pf;
	ps->armed_ud = vm->pvm_sys.ud;
	pthread_mutex_unlock(&vm->lock);
	/* Execute breakpoints (R/W 00, LEN 00), L and G enabled. */
	dbg.arch.debugreg[0] = ps->armed_pf;
	dbg.arch.debugreg[1] = ps->armed_ud;
	dbg.arch.debugreg[7] = 0xf;
	if (ioctl(v->fd, KVM_SET_GUEST_DEBUG, &dbg) < 0) {
		fprintf(stderr, "slos: vcpu %d: KVM_SET_GUEST_DEBUG: %s\n",
			v->id, strerror(errno));
		ps->armed_pf = ps->armed_ud = 0;
		return;
	}
	/* The kernel sets up STAR/LSTAR before its final IDT. */
	read_msrs(v);
	count(&n_arm);
}

void pvm_syscall__prepare(struct vcpu *v)
{
	struct pvm_sys_vcpu *ps = &v->pvm_sys;
	struct kvm_run *run = v->run;

	if (!ps->synced) {
		run->kvm_valid_regs |= KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
		ps->synced = true;
	} else {
		observe_idt(v);
	}
	if (atomic_load(&v->vm->pvm_sys.gen) != ps->armed_gen &&
	    !ps->disabled) {
		/* A kick from publish() leaves immediate_exit set; clear it
		 * unless the VM is stopping (then the kick was vm__stop's). */
		if (run->immediate_exit) {
			run->immediate_exit = 0;
			if (atomic_load(&v->vm->stopping))
				run->immediate_exit = 1;
		}
		arm(v);
	}
}

static int on_pf(struct vcpu *v)
{
	struct pvm_sys_vcpu *ps = &v->pvm_sys;
	struct kvm_regs *r = &v->run->s.regs.regs;
	struct kvm_sregs *s = &v->run->s.regs.sregs;
	uint64_t w[6];
	uint8_t insn[2];
	struct pvm_frame f;

	if (gva_copy(v, r->rsp, w, sizeof(w), false))
		return -1;
	pvm__frame_decode(w, true, &f);
	if ((f.cs & 3) != 3 || !(f.rip & KERNEL_VA))
		return -1; /* the common case: a real page fault */
	/* LSTAR may have moved since we armed (reads are ~5 us: only for a
	 * user fault on a kernel address). */
	if (f.rip != ps->msrs.lstar && read_msrs(v))
		return -1;
	bool insn_ok = !gva_copy(v, r->rcx - 2, insn, 2, false) &&
		       insn[0] == 0x0f && insn[1] == 0x05;
	if (!pvm__is_syscall_pf(&f, r, &ps->msrs, insn_ok)) {
		count(&n_rejected);
		return -1;
	}
	set_dirty(v, KVM_SYNC_X86_REGS);
	if (pvm__enter_syscall(&f, &ps->msrs, r, s))
		set_dirty(v, KVM_SYNC_X86_SREGS);
	count(&n_syscall);
	return 0;
}

static int on_ud(struct vcpu *v)
{
	struct kvm_regs *r = &v->run->s.regs.regs, nr = *r;
	struct pvm_gate gate, ud;
	uint64_t w[5];
	uint8_t insn[2];
	struct pvm_frame f;

	if (gva_copy(v, r->rsp, w, sizeof(w), false))
		return -1;
	pvm__frame_decode(w, false, &f);
	if ((f.cs & 3) != 3 || gva_copy(v, f.rip, insn, 2, false) ||
	    insn[0] != 0xcd || insn[1] != VEC_INT80)
		return -1;
	if (read_gate(v, VEC_INT80, &gate) || read_gate(v, VEC_UD, &ud) ||
	    !pvm__enter_int80(&f, &gate, &ud, &nr))
		return -1;
	/* INT n pushes the address after it; #UD pushed the int itself. */
	w[0] = f.rip + 2;
	if (gva_copy(v, r->rsp, w, 8, true))
		return -1;
	*r = nr;
	set_dirty(v, KVM_SYNC_X86_REGS);
	count(&n_int80);
	return 0;
}

/*
 * Run the handler's first instruction here. KVM ignores RFLAGS.RF for the
 * breakpoints of KVM_SET_GUEST_DEBUG (measured: the breakpoint re-fired
 * forever with RF=1), so the guest cannot be resumed at the breakpoint;
 * exception entries start with a few simple instructions (NOPs, endbr64, clac,
 * cld, push imm) that are cheap to complete in the VMM.
 */
static int step_over(struct vcpu *v)
{
	struct kvm_regs *r = &v->run->s.regs.regs, nr = *r;
	uint64_t push = 0;
	uint8_t b[15];
	size_t n = sizeof(b);

	/* The 15 bytes may cross into a page that is not mapped: take
	 * what there is. */
	while (n && gva_copy(v, r->rip, b, n, false))
		n = n > 8 ? 8 : n - 1;
	if (pvm__step_entry(b, n, &nr, &push) < 0)
		return -1;
	if (nr.rsp != r->rsp && gva_copy(v, nr.rsp, &push, 8, true))
		return -1;
	*r = nr;
	set_dirty(v, KVM_SYNC_X86_REGS);
	return 0;
}

/* The guest cannot get past its exception entry: give up on system calls
 * for this vCPU rather than hang it. */
static void disarm(struct vcpu *v)
{
	struct kvm_guest_debug dbg = {0};
	struct pvm_sys_vcpu *ps = &v->pvm_sys;
	uint8_t b[8] = {0};

	gva_copy(v, v->run->s.regs.regs.rip, b, sizeof(b), false);
	fprintf(stderr,
		"slos: vcpu %d: cannot step over the exception entry at %llx "
		"(%02x %02x %02x %02x %02x %02x): user system calls disabled\n",
		v->id, (unsigned long long)v->run->s.regs.regs.rip, b[0], b[1],
		b[2], b[3], b[4], b[5]);
	ioctl(v->fd, KVM_SET_GUEST_DEBUG, &dbg);
	ps->armed_pf = ps->armed_ud = 0;
	ps->disabled = true;
}

/* SLOS_PVM_SYS_TRACE=N: print the first N debug exits (diagnosis). */
static void trace(struct vcpu *v, const char *what)
{
	static int left = -1;
	const struct kvm_regs *r = &v->run->s.regs.regs;
	unsigned long long w[6] = {0};

	if (left < 0) {
		const char *e = getenv("SLOS_PVM_SYS_TRACE");
		left = e ? atoi(e) : 0;
	}
	if (!left)
		return;
	left--;
	gva_copy(v, r->rsp, w, sizeof(w), false);
	fprintf(
	    stderr,
	    "slos: pvm-sys t %llu vcpu %d %s: rip %llx rsp %llx rflags %llx "
	    "rcx %llx r11 %llx frame %llx %llx %llx %llx %llx %llx\n",
	    (unsigned long long)vm__now_ns(), v->id, what, r->rip, r->rsp,
	    r->rflags, r->rcx, r->r11, w[0], w[1], w[2], w[3], w[4], w[5]);
}

int pvm_syscall__debug_exit(struct vcpu *v)
{
	struct pvm_sys_vcpu *ps = &v->pvm_sys;
	struct kvm_regs *r = &v->run->s.regs.regs;

	if (!ps->synced || (!ps->armed_pf && !ps->armed_ud))
		return -1;
	trace(v, r->rip == ps->armed_pf	  ? "#PF"
		 : r->rip == ps->armed_ud ? "#UD"
					  : "other");
	if (ps->armed_pf && r->rip == ps->armed_pf && !on_pf(v))
		return 0;
	if (ps->armed_ud && r->rip == ps->armed_ud && !on_ud(v))
		return 0;
	/* Any other exception (or a stale breakpoint): the guest's handler
	 * runs on, past the breakpoint. */
	if (step_over(v))
		disarm(v);
	count(&n_pass);
	return 0;
}

void pvm_syscall__print_stats(void)
{
	if (!n_arm)
		return;
	fprintf(stderr,
		"slos: pvm syscall %llu int80 %llu passed %llu rejected %llu "
		"(armed %llu times)\n",
		(unsigned long long)n_syscall, (unsigned long long)n_int80,
		(unsigned long long)n_pass, (unsigned long long)n_rejected,
		(unsigned long long)n_arm);
}
