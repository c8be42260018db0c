// SPDX-License-Identifier: MIT
/*
 * Interrupts for vCPUs that run on another host (docs/ipi.md).
 *
 * KVM never lets userspace see a guest's ICR write (x2APIC MSRs cannot be
 * filtered), so an IPI meant for a vCPU elsewhere lands in that vCPU's
 * parked copy here. The copy therefore sits in KVM_RUN in a small context
 * of the VMM's own (the trap: page tables, GDT, IDT and a stub per vector
 * in a memslot the guest is not told of), halted with interrupts on. The
 * in-kernel LAPIC does the routing exactly as for a local vCPU (physical,
 * logical, shorthands, lowest priority); the stub reports the vector with
 * an `out` to the port of its number and EOIs, and this file sends it
 * (CL_IPI) to the host where the vCPU is, which injects it with
 * KVM_SIGNAL_MSI. Device interrupts of host 0's IOAPIC reach remote vCPUs
 * the same way.
 *
 * A LAPIC changes hands at each jump (the state's in, the copy's out, or
 * back): done under vm__hold and irq_lock, so no IPI is lost between
 * KVM_GET_LAPIC and KVM_SET_LAPIC. While a vCPU is between hosts (HELD),
 * what arrives for it here waits in pend[] and goes with it or after it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "vmm/cluster_priv.h"
#include "vmm/ioapic.h"
#include "vmm/snapshot.h"

#define TRAP_SLOT 8
#define T_PML4	  0x0000
#define T_PDPT	  0x1000
#define T_PD	  0x2000
#define T_GDT	  0x3000
#define T_TSS	  0x3800
#define T_IDT	  0x4000
#define T_LOOP	  0x5000
#define T_COMMON  0x5010
#define T_STUBS	  0x5800
#define STUB_SIZE 8
#define T_STACKS  0x8000
#define STACK	  512
#define SEL_CODE  0x08
#define SEL_DATA  0x10
#define SEL_TSS	  0x18

#define IPI_MAX_HOPS 16
#define CL_IPI_LEN   8 /* vcpu, vector, nmi, hops, 0 */

#define MSR_KVM_WALL_CLOCK     0x11
#define MSR_KVM_WALL_CLOCK_NEW 0x4b564d00

#define LAPIC_TPR      0x80
#define LAPIC_SVR      0xf0
#define LAPIC_ISR      0x100
#define LAPIC_TMR      0x180
#define LAPIC_IRR      0x200
#define LAPIC_ESR      0x280
#define LAPIC_LVT0     0x2f0 /* CMCI; the LVTs run to 0x370 */
#define LAPIC_LVTT     0x320
#define LAPIC_LVTE     0x370
#define LAPIC_TMICT    0x380
#define LAPIC_TMCCT    0x390
#define LVT_MASKED     0x10000
#define APIC_BASE_EXTD 0x400 /* x2APIC mode */

static uint32_t *reg(struct kvm_lapic_state *l, unsigned off)
{
	return (uint32_t *)(l->regs + off);
}

/* ---- the trap ---- */

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

/*
 * The code, hand-assembled (no assembler in the build of vmm/):
 *   loop:   sti; hlt; jmp loop
 *   common: test %r15,%r15; jz 1f            r15: the LAPIC is x2APIC
 *           mov $0x80b,%ecx; xor %eax,%eax; xor %edx,%edx; wrmsr; iretq
 *        1: movl $0,(%r14); iretq            r14: the xAPIC EOI register
 *   stub v: out %al,$v; jmp common           (NMI: out; iretq. An
 *           exception, 0-15 less NMI: out; hlt; the VMM stops the VM at
 *           the out. 16-31 are legal fixed vectors for a LAPIC.)
 */
static void trap_code(uint8_t *t)
{
	static const uint8_t loop[] = {0xfb, 0xf4, 0xeb, 0xfc};
	static const uint8_t common[] = {
	    0x4d, 0x85, 0xff, 0x74, 0x0d, 0xb9, 0x0b, 0x08, 0x00,
	    0x00, 0x31, 0xc0, 0x31, 0xd2, 0x0f, 0x30, 0x48, 0xcf,
	    0x41, 0xc7, 0x06, 0x00, 0x00, 0x00, 0x00, 0x48, 0xcf,
	};

	memcpy(t + T_LOOP, loop, sizeof(loop));
	memcpy(t + T_COMMON, common, sizeof(common));
	for (unsigned v = 0; v < 256; v++) {
		uint8_t *s = t + T_STUBS + v * STUB_SIZE;
		uint64_t h = TRAP_GPA + T_STUBS + v * STUB_SIZE;
		s[0] = 0xe6;
		s[1] = v;
		if (v == 2) {
			s[2] = 0x48;
			s[3] = 0xcf;
		} else if (v < 16) {
			s[2] = 0xf4;
			s[3] = 0xeb;
			s[4] = 0xfd;
		} else {
			s[2] = 0xe9;
			put32(s + 3, (uint32_t)(T_COMMON -
						(T_STUBS + v * STUB_SIZE + 7)));
		}
		/* Interrupt gate, ring 0, present. */
		put64(t + T_IDT + v * 16,
		      (h & 0xffff) | (uint64_t)SEL_CODE << 16 | 0x8eULL << 40 |
			  ((h >> 16) & 0xffff) << 48);
		put64(t + T_IDT + v * 16 + 8, h >> 32);
	}
}

/* Identity map of [3 GiB, 4 GiB) in 2 MiB pages (the trap and the xAPIC
 * page); accessed and dirty set, so the walker never writes. A GDT with
 * accessed descriptors, and the TSS a 64-bit TR needs. */
static void trap_tables(uint8_t *t)
{
	uint64_t tss = TRAP_GPA + T_TSS;

	put64(t + T_PML4, (TRAP_GPA + T_PDPT) | 0x23);
	put64(t + T_PDPT + 3 * 8, (TRAP_GPA + T_PD) | 0x23);
	for (uint64_t i = 0; i < 512; i++)
		put64(t + T_PD + i * 8, (MEM_HOLE_START + (i << 21)) | 0xe3);
	put64(t + T_GDT + 8, 0x00af9b000000ffffULL);
	put64(t + T_GDT + 16, 0x00cf93000000ffffULL);
	put64(t + T_GDT + 24, 0x67 | (tss & 0xffffff) << 16 | 0x8bULL << 40 |
				  ((tss >> 24) & 0xff) << 56);
	put64(t + T_GDT + 32, tss >> 32);
}

int ipi_setup(struct vm *vm)
{
	struct cluster *cl = vm->cl;
	uint8_t *t = mmap(NULL, TRAP_SIZE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int e;

	if (t == MAP_FAILED)
		return -errno;
	trap_tables(t);
	trap_code(t);
	/* Two slots: the code and tables read-only, so a guest vCPU on this
	 * host that writes there (the range is in no e820 entry, but nothing
	 * stops a write) makes an MMIO write no device claims, dropped as on
	 * a ROM, and the parked copies keep working; the stacks, which the
	 * CPU writes at every interrupt, writable. A KVM without read-only
	 * slots gets one writable slot. */
	cl->trap_ro =
	    ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) > 0;
	if (cl->trap_ro) {
		e = mprotect(t, T_STACKS, PROT_READ) < 0 ? -errno : 0;
		if (!e)
			e = vm__memslot(vm, TRAP_SLOT, TRAP_GPA, T_STACKS, t,
					true);
		if (!e)
			e = vm__memslot(vm, TRAP_SLOT + 1, TRAP_GPA + T_STACKS,
					TRAP_SIZE - T_STACKS, t + T_STACKS,
					false);
	} else {
		e = vm__memslot(vm, TRAP_SLOT, TRAP_GPA, TRAP_SIZE, t, false);
	}
	if (e) {
		munmap(t, TRAP_SIZE);
		return e;
	}
	cl->trap = t;
	for (unsigned i = 0; i < vm->cfg.nr_vcpus; i++)
		cl->ipi_state[i] =
		    vm->cfg.vcpu_map[i] == cl->self ? IPI_HERE : IPI_AWAY;
	return 0;
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code)
{
	*s = (struct kvm_segment){.limit = 0xffffffff,
				  .selector = sel,
				  .type = type,
				  .present = 1,
				  .s = 1,
				  .g = 1,
				  .l = code,
				  .db = !code};
}

/*
 * KVM's paravirtual MSRs point KVM at guest memory it writes (kvmclock,
 * steal time with its preempted and flush-TLB flags, PV EOI, async page
 * faults): a copy left with the vCPU's values would have this host's KVM
 * write there too, fighting the vCPU's own host (and dragging those pages
 * over the DSM). Off in the copy; the state sets them again where it goes.
 */
static const uint32_t pv_msrs[] = {
    0x4b564d01, /* MSR_KVM_SYSTEM_TIME_NEW */
    0x12,	/* MSR_KVM_SYSTEM_TIME */
    0x4b564d03, /* MSR_KVM_STEAL_TIME */
    0x4b564d04, /* MSR_KVM_PV_EOI_EN */
    0x4b564d02, /* MSR_KVM_ASYNC_PF_EN */
};

static void pv_off(struct vcpu *v)
{
	union {
		struct kvm_msrs h;
		uint8_t
		    b[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
	} m;

	/* One at a time: a KVM without one of them refuses just that. */
	for (unsigned i = 0; i < sizeof(pv_msrs) / sizeof(pv_msrs[0]); i++) {
		memset(&m, 0, sizeof(m));
		m.h.nmsrs = 1;
		m.h.entries[0].index = pv_msrs[i];
		ioctl(v->fd, KVM_SET_MSRS, &m);
	}
}

/* The copy's CPU state in the trap (its LAPIC is set apart). */
static int trap_enter(struct vcpu *v)
{
	struct kvm_sregs s;
	struct kvm_regs r = {0};
	struct kvm_vcpu_events e = {0};
	struct kvm_debugregs d = {0};
	struct kvm_mp_state mp = {.mp_state = KVM_MP_STATE_RUNNABLE};

	if (ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
		return -errno;
	seg(&s.cs, SEL_CODE, 0xb, true);
	seg(&s.ds, SEL_DATA, 0x3, false);
	s.es = s.fs = s.gs = s.ss = s.ds;
	s.tr = (struct kvm_segment){.base = TRAP_GPA + T_TSS,
				    .limit = 0x67,
				    .selector = SEL_TSS,
				    .type = 0xb,
				    .present = 1};
	s.ldt = (struct kvm_segment){.type = 2, .present = 1, .limit = 0xffff};
	s.gdt.base = TRAP_GPA + T_GDT;
	s.gdt.limit = 5 * 8 - 1;
	s.idt.base = TRAP_GPA + T_IDT;
	s.idt.limit = 256 * 16 - 1;
	s.cr0 = 0x80050033;
	s.cr2 = 0;
	s.cr3 = TRAP_GPA + T_PML4;
	s.cr4 = 0x20;
	s.cr8 = 0;
	s.efer = 0x500;
	/* An interrupt KVM was injecting was drained into pend already. */
	memset(s.interrupt_bitmap, 0, sizeof(s.interrupt_bitmap));
	if (ioctl(v->fd, KVM_SET_SREGS, &s) < 0)
		return -errno;
	r.rip = TRAP_GPA + T_LOOP;
	r.rsp = TRAP_GPA + T_STACKS + (uint64_t)(v->id + 1) * STACK;
	r.rflags = 2;
	r.r15 = !!(s.apic_base & APIC_BASE_EXTD);
	r.r14 = (s.apic_base & ~0xfffULL) + 0xb0;
	if (ioctl(v->fd, KVM_SET_REGS, &r) < 0)
		return -errno;
	e.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW;
	if (ioctl(v->fd, KVM_SET_VCPU_EVENTS, &e) < 0)
		return -errno;
	d.dr6 = 0xffff0ff0;
	d.dr7 = 0x400;
	if (ioctl(v->fd, KVM_SET_DEBUGREGS, &d) < 0 && errno != EINVAL)
		return -errno;
	if (ioctl(v->fd, KVM_SET_MP_STATE, &mp) < 0)
		return -errno;
	pv_off(v);
	return 0;
}

/* The copy's LAPIC: the vCPU's addressing (ID, LDR, DFR, mode), enabled,
 * nothing pending or in service, no timer, every LVT masked. */
static void sanitize(struct kvm_lapic_state *l)
{
	for (unsigned i = 0; i < 8; i++) {
		*reg(l, LAPIC_ISR + i * 16) = 0;
		*reg(l, LAPIC_TMR + i * 16) = 0;
		*reg(l, LAPIC_IRR + i * 16) = 0;
	}
	*reg(l, LAPIC_TPR) = 0;
	*reg(l, LAPIC_ESR) = 0;
	*reg(l, LAPIC_SVR) |= 0x100;
	for (unsigned o = LAPIC_LVT0; o <= LAPIC_LVTE; o += 16)
		*reg(l, o) |= LVT_MASKED;
	*reg(l, LAPIC_LVTT) = LVT_MASKED;
	*reg(l, LAPIC_TMICT) = 0;
	*reg(l, LAPIC_TMCCT) = 0;
}

static void pend_set(struct cluster *cl, unsigned id, unsigned vec)
{
	cl->ipi_pend[id][vec / 64] |= 1ULL << (vec % 64);
}

/*
 * What the copy holds for its vCPU and has not reported (irq_lock, the
 * copy out of KVM_RUN): its IRR, an interrupt or NMI KVM was injecting,
 * and a vector whose stub was entered but had not run its `out` yet.
 */
static int drain(struct vcpu *v, bool in_trap, struct kvm_lapic_state *l)
{
	struct cluster *cl = v->vm->cl;
	struct kvm_vcpu_events e;
	struct kvm_regs r;

	if (ioctl(v->fd, KVM_GET_LAPIC, l) < 0 ||
	    ioctl(v->fd, KVM_GET_VCPU_EVENTS, &e) < 0)
		return -errno;
	for (unsigned i = 0; i < 8; i++)
		cl->ipi_pend[v->id][i / 2] |=
		    (uint64_t)*reg(l, LAPIC_IRR + i * 16) << (32 * (i % 2));
	if (!in_trap)
		return 0;
	if (e.interrupt.injected)
		pend_set(cl, v->id, e.interrupt.nr);
	if (e.nmi.injected || e.nmi.pending)
		cl->ipi_nmi[v->id] = true;
	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0)
		return -errno;
	uint64_t stubs = TRAP_GPA + T_STUBS;
	if (r.rip >= stubs && r.rip < stubs + 256 * STUB_SIZE &&
	    !((r.rip - stubs) % STUB_SIZE)) {
		unsigned vec = (r.rip - stubs) / STUB_SIZE;
		/* KVM moves RIP past an OUT only at the next KVM_RUN: at the
		 * stub's first byte after its own exit, it was reported. */
		struct kvm_run *run = v->run;
		if (run->exit_reason == KVM_EXIT_IO && run->io.port == vec)
			return 0;
		if (vec == 2)
			cl->ipi_nmi[v->id] = true;
		else if (vec >= 16)
			pend_set(cl, v->id, vec);
	}
	return 0;
}

/* ---- delivery and forwarding ---- */

/* KVM_SIGNAL_MSI to the vCPU's APIC ID: the LAPIC here does the rest. */
static void inject(struct cluster *cl, unsigned id, unsigned vec, bool nmi)
{
	struct kvm_msi m = {.address_lo = 0xfee00000u | (id & 0xff) << 12,
			    .data = nmi ? 0x400 : vec};

	if (ioctl(cl->vm->vm_fd, KVM_SIGNAL_MSI, &m) < 0)
		fprintf(stderr, "slos: vcpu %u: KVM_SIGNAL_MSI: %s\n", id,
			strerror(errno));
	cl->ipi_delivered++;
}

struct fwd {
	unsigned to, id, vec, hops;
	bool nmi;
};

static void send_fwd(struct cluster *cl, const struct fwd *f)
{
	uint8_t m[CL_IPI_LEN] = {0};

	cl_put32(m, f->id);
	m[4] = f->vec;
	m[5] = f->nmi;
	m[6] = f->hops;
	if (cluster_send(cl, f->to, CL_IPI, m, sizeof(m)))
		fprintf(stderr, "slos: vcpu %u: IPI 0x%x to host %u not sent\n",
			f->id, f->vec, f->to);
}

/* One interrupt for vCPU id (irq_lock): inject, queue, or say where to
 * send it (*f, true). */
static bool route(struct cluster *cl, unsigned id, unsigned vec, bool nmi,
		  unsigned hops, struct fwd *f)
{
	switch (cl->ipi_state[id]) {
	case IPI_HERE:
		inject(cl, id, vec, nmi);
		return false;
	case IPI_HELD:
		if (nmi)
			cl->ipi_nmi[id] = true;
		else
			pend_set(cl, id, vec);
		cl->ipi_queued++;
		return false;
	}
	unsigned to = atomic_load(&cl->where[id]);
	if (to == cl->self || hops >= IPI_MAX_HOPS) {
		if (!cl->ipi_lost++)
			fprintf(stderr,
				"slos: host %u: an interrupt (0x%x) for vCPU "
				"%u has nowhere to go (%u hops): dropped\n",
				cl->self, nmi ? 2 : vec, id, hops);
		return false;
	}
	*f = (struct fwd){
	    .to = to, .id = id, .vec = vec, .hops = hops, .nmi = nmi};
	return true;
}

/* Everything pend[] holds for id goes to host `to` (irq_lock held; the
 * sends are made by the caller, after unlocking: up to 257 of them). */
static unsigned take_pend(struct cluster *cl, unsigned id, unsigned to,
			  struct fwd *out)
{
	unsigned n = 0;

	if (cl->ipi_nmi[id])
		out[n++] = (struct fwd){.to = to, .id = id, .nmi = true};
	for (unsigned vec = 0; vec < 256; vec++)
		if (cl->ipi_pend[id][vec / 64] & (1ULL << (vec % 64)))
			out[n++] = (struct fwd){.to = to, .id = id, .vec = vec};
	memset(cl->ipi_pend[id], 0, sizeof(cl->ipi_pend[id]));
	cl->ipi_nmi[id] = false;
	cl->ipi_sent += n;
	return n;
}

static void send_all(struct cluster *cl, const struct fwd *f, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		send_fwd(cl, &f[i]);
}

/* One interrupt for vCPU id, counted in *count, routed, sent on. */
static void route_one(struct cluster *cl, unsigned id, unsigned vec, bool nmi,
		      unsigned hops, uint64_t *count)
{
	struct fwd f;
	bool out;

	pthread_mutex_lock(&cl->vm->irq_lock);
	(*count)++;
	out = route(cl, id, vec, nmi, hops, &f);
	if (out)
		cl->ipi_sent++;
	pthread_mutex_unlock(&cl->vm->irq_lock);
	if (out)
		send_fwd(cl, &f);
}

void ipi_frame(struct cluster *cl, unsigned from, const uint8_t *p, size_t len)
{
	struct vm *vm = cl->vm;

	if (atomic_load(&cl->stopping) || !vm)
		return;
	uint32_t id = len == CL_IPI_LEN ? cl_get32(p) : VM_MAX_VCPUS;
	if (id >= vm->cfg.nr_vcpus || p[5] > 1 || (!p[5] && p[4] < 16)) {
		cluster_stop(cl, VM_EXIT_CRASH, "host %u: bad CL_IPI", from);
		return;
	}
	route_one(cl, id, p[4], p[5], p[6] + 1u, &cl->ipi_in);
}

/* The copy's stub reported vector vec. */
static void caught(struct vcpu *v, unsigned vec)
{
	struct cluster *cl = v->vm->cl;

	route_one(cl, v->id, vec, vec == 2, 0, &cl->ipi_caught);
}

/* ---- the copy's thread ---- */

static bool arrival(struct cluster *cl, unsigned id)
{
	bool in;

	pthread_mutex_lock(&cl->lock);
	in = cl->jump[id].in != NULL;
	pthread_mutex_unlock(&cl->lock);
	return in;
}

static void trap_fatal(struct vcpu *v, const char *fmt, unsigned long long a)
{
	char why[160];

	snprintf(why, sizeof(why), fmt, a);
	vcpu__dump(v, why);
	vm__stop(v->vm, VM_EXIT_CRASH, why);
}

/* Sets the copy's whole state (its LAPIC too if sanitize) and runs it in
 * the trap until the vCPU's state arrives (true) or the VM stops. */
bool ipi_park(struct vcpu *v, bool fresh)
{
	struct vm *vm = v->vm;
	struct cluster *cl = vm->cl;
	struct kvm_run *run = v->run;
	int r = 0;

	if (fresh) {
		struct kvm_lapic_state l;
		struct fwd f[257];
		unsigned n = 0;
		vm__hold(vm, v);
		pthread_mutex_lock(&vm->irq_lock);
		r = drain(v, false, &l);
		if (!r) {
			sanitize(&l);
			if (ioctl(v->fd, KVM_SET_LAPIC, &l) < 0)
				r = -errno;
		}
		if (cl->ipi_state[v->id] == IPI_AWAY &&
		    atomic_load(&cl->where[v->id]) != cl->self)
			n = take_pend(cl, v->id, atomic_load(&cl->where[v->id]),
				      f);
		pthread_mutex_unlock(&vm->irq_lock);
		vm__release(vm);
		send_all(cl, f, n);
	}
	if (r || (r = trap_enter(v))) {
		trap_fatal(v, "cannot park the vCPU's copy: errno %llu", -r);
		return false;
	}
	for (;;) {
		__atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
		if (atomic_load(&vm->stopping) || atomic_load(&cl->stopping))
			return false;
		if (arrival(cl, v->id))
			return true;
		if (atomic_load(&vm->pause_req)) {
			vcpu__park(v);
			continue;
		}
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			trap_fatal(v, "copy: KVM_RUN failed: errno %llu",
				   errno);
			return false;
		}
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			if (run->io.direction != KVM_EXIT_IO_OUT ||
			    run->io.port > 255 ||
			    (run->io.port < 16 && run->io.port != 2)) {
				trap_fatal(
				    v,
				    "the vCPU's copy faulted in its trap "
				    "(port/vector %llu)",
				    run->io.port);
				return false;
			}
			caught(v, run->io.port);
			break;
		case KVM_EXIT_IOAPIC_EOI:
			/* A level-triggered vector the copy caught, and EOIs
			 * at once: the IOAPIC may look at its pin again. */
			if (vm->ioapic)
				ioapic__eoi(vm->ioapic, run->eoi.vector);
			break;
		case KVM_EXIT_INTR:
			break;
		default:
			trap_fatal(v, "the vCPU's copy exited its trap (%llu)",
				   run->exit_reason);
			return false;
		}
	}
}

void ipi_arriving(struct cluster *cl, unsigned id)
{
	pthread_mutex_lock(&cl->vm->irq_lock);
	cl->ipi_state[id] = IPI_HELD;
	pthread_mutex_unlock(&cl->vm->irq_lock);
}

void ipi_refused(struct vcpu *v, unsigned from)
{
	struct cluster *cl = v->vm->cl;
	struct fwd f[257];
	unsigned n;

	pthread_mutex_lock(&cl->vm->irq_lock);
	cl->ipi_state[v->id] = IPI_AWAY;
	n = take_pend(cl, v->id, from, f);
	pthread_mutex_unlock(&cl->vm->irq_lock);
	send_all(cl, f, n);
}

/* What pend[] holds for the vCPU goes into its state's LAPIC (edge; an
 * IRR bit already set there coalesces, as in hardware). */
static void merge(struct cluster *cl, unsigned id, struct vcpu_state *s)
{
	for (unsigned i = 0; i < 8; i++)
		*reg(&s->lapic, LAPIC_IRR + i * 16) |=
		    (uint32_t)(cl->ipi_pend[id][i / 2] >> (32 * (i % 2)));
	if (cl->ipi_nmi[id]) {
		s->events.nmi.pending = 1;
		s->events.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING;
	}
	memset(cl->ipi_pend[id], 0, sizeof(cl->ipi_pend[id]));
	cl->ipi_nmi[id] = false;
}

/*
 * Under the hold and irq_lock: what the copy holds (drain, into l: its
 * LAPIC as read) and pend go into s, which is loaded. held (if given):
 * pend as it was before the merge. -2 if the copy could not be read.
 *
 * Less kvmclock's wall clock: KVM answers its write by writing the wall
 * time into the guest page it names, then and there, from this thread,
 * under irq_lock; if another host has that page, the fault waits for the
 * fabric thread, which waits for irq_lock to deliver an interrupt. The
 * lab's spread boots deadlocked so (host 1's heartbeats stopped). The
 * guest writes the MSR itself before each read of that page.
 */
static int load_merged(struct vcpu *v, struct vcpu_state *s, bool in_trap,
		       struct kvm_lapic_state *l, uint64_t held[4],
		       bool *held_nmi, char *why, size_t len)
{
	struct cluster *cl = v->vm->cl;
	int r = drain(v, in_trap, l);

	if (r) {
		snprintf(why, len, "the copy's state: %s", strerror(-r));
		return -2;
	}
	if (held) {
		memcpy(held, cl->ipi_pend[v->id], sizeof(cl->ipi_pend[0]));
		*held_nmi = cl->ipi_nmi[v->id];
	}
	merge(cl, v->id, s);
	vcpu__drop_msr(s, MSR_KVM_WALL_CLOCK);
	vcpu__drop_msr(s, MSR_KVM_WALL_CLOCK_NEW);
	return vcpu__load(v, s, why, len);
}

int ipi_handover_in(struct vcpu *v, struct vcpu_state *s, bool in_trap,
		    unsigned from, char *why, size_t len)
{
	struct vm *vm = v->vm;
	struct cluster *cl = vm->cl;
	struct kvm_lapic_state empty;
	uint64_t held[4];
	bool held_nmi = false;
	struct fwd f[257];
	unsigned n = 0;
	int r;

	vm__hold(vm, v);
	pthread_mutex_lock(&vm->irq_lock);
	r = load_merged(v, s, in_trap, &empty, held, &held_nmi, why, len);
	if (r) {
		/* It stays at the source: what came for it goes back (the
		 * merge emptied pend into the state, which is dropped), and
		 * the copy's LAPIC is left empty, not holding the state's
		 * IRR (vmm/ipi.pml found both: a loss and a double). */
		if (r != -2) {
			memcpy(cl->ipi_pend[v->id], held, sizeof(held));
			cl->ipi_nmi[v->id] = held_nmi;
			sanitize(&empty);
			if (ioctl(v->fd, KVM_SET_LAPIC, &empty) < 0)
				fprintf(stderr,
					"slos: vcpu %d: the copy's LAPIC: %s\n",
					v->id, strerror(errno));
		}
		cl->ipi_state[v->id] = IPI_AWAY;
		n = take_pend(cl, v->id, from, f);
		r = -1;
	} else {
		cl->ipi_state[v->id] = IPI_HERE;
		atomic_store(&v->here, true);
	}
	pthread_mutex_unlock(&vm->irq_lock);
	vm__release(vm);
	send_all(cl, f, n);
	return r;
}

int ipi_handover_out(struct vcpu *v, struct vcpu_state *s, char *why,
		     size_t len)
{
	struct vm *vm = v->vm;
	struct cluster *cl = vm->cl;
	int r;

	vm__hold(vm, v);
	pthread_mutex_lock(&vm->irq_lock);
	r = vcpu__save(v, s, why, len);
	if (!r) {
		struct kvm_lapic_state l = s->lapic;
		sanitize(&l);
		if (ioctl(v->fd, KVM_SET_LAPIC, &l) < 0) {
			snprintf(why, len, "the copy's LAPIC: %s",
				 strerror(errno));
			r = -1;
		} else {
			cl->ipi_state[v->id] = IPI_HELD;
		}
	}
	pthread_mutex_unlock(&vm->irq_lock);
	vm__release(vm);
	return r;
}

void ipi_departed(struct cluster *cl, unsigned id, unsigned to)
{
	struct fwd f[257];
	unsigned n = 0;

	/* If it is already on its way back (a CL_JUMP taken here before
	 * this thread saw its answer), it stays HELD: what waits is its. */
	pthread_mutex_lock(&cl->lock);
	pthread_mutex_lock(&cl->vm->irq_lock);
	if (!cl->jump[id].in) {
		cl->ipi_state[id] = IPI_AWAY;
		n = take_pend(cl, id, to, f);
	}
	pthread_mutex_unlock(&cl->vm->irq_lock);
	pthread_mutex_unlock(&cl->lock);
	send_all(cl, f, n);
}

int ipi_stay(struct vcpu *v, struct vcpu_state *s, char *why, size_t len)
{
	struct vm *vm = v->vm;
	struct cluster *cl = vm->cl;
	struct kvm_lapic_state l;
	int r;

	vm__hold(vm, v);
	pthread_mutex_lock(&vm->irq_lock);
	r = load_merged(v, s, false, &l, NULL, NULL, why, len) ? -1 : 0;
	cl->ipi_state[v->id] = IPI_HERE;
	/* Here again before the hold ends, so the next holder waits for it. */
	atomic_store(&v->here, true);
	pthread_mutex_unlock(&vm->irq_lock);
	vm__release(vm);
	return r;
}

void ipi_stats(struct cluster *cl, FILE *f)
{
	if (!cl->ipi_caught && !cl->ipi_in && !cl->ipi_delivered)
		return;
	fprintf(f,
		"slos: host %u interrupts for other hosts' vCPUs: caught %llu, "
		"sent %llu, received %llu, injected %llu, held for a jump "
		"%llu, lost %llu; trap %s\n",
		cl->self, (unsigned long long)cl->ipi_caught,
		(unsigned long long)cl->ipi_sent,
		(unsigned long long)cl->ipi_in,
		(unsigned long long)cl->ipi_delivered,
		(unsigned long long)cl->ipi_queued,
		(unsigned long long)cl->ipi_lost,
		cl->trap_ro ? "read-only"
			    : "writable (KVM has no read-only slots)");
}
