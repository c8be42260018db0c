// SPDX-License-Identifier: MIT
/*
 * A vCPU's complete KVM state, read for a snapshot and written back on
 * restore. The vCPU must be out of KVM_RUN with its pending I/O completed
 * (vm__pause re-enters KVM_RUN with immediate_exit first, as the KVM API
 * asks before state is saved).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/snapshot.h"
#include "vmm/vm.h"

#define MSR_IA32_TSC	      0x10
#define MSR_IA32_TSC_DEADLINE 0x6e0

#define bad snapshot__errf

int vcpu__get_msr(struct vcpu *v, uint32_t index, uint64_t *val)
{
	union {
		struct kvm_msrs h;
		uint8_t b[sizeof(struct kvm_msrs) +
			  sizeof(struct kvm_msr_entry)];
	} m = { .h.nmsrs = 1 };

	m.h.entries[0].index = index;
	if (ioctl(v->fd, KVM_GET_MSRS, &m) != 1)
		return -1;
	*val = m.h.entries[0].data;
	return 0;
}

/* The MSRs KVM says a VMM should save that this vCPU model has, probed
 * once per VM (one ioctl each): a save then reads them all in one. */
static int msr_probe(struct vcpu *v)
{
	struct vm *vm = v->vm;
	struct kvm_msr_list *l = calloc(1, sizeof(*l) + 1024 * 4);
	uint32_t *idx = NULL;
	unsigned n = 0;
	int r = -1;

	if (!l)
		return -1;
	l->nmsrs = 1024;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, l) < 0)
		goto out;
	idx = calloc(l->nmsrs + 1, sizeof(*idx));
	if (!idx)
		goto out;
	for (unsigned i = 0; i < l->nmsrs; i++) {
		uint64_t val;
		if (vcpu__get_msr(v, l->indices[i], &val))
			continue;
		if (n == SNAP_MAX_MSRS) {
			r = -E2BIG;
			goto out;
		}
		idx[n++] = l->indices[i];
	}
	/* Two vCPUs may probe at once: the first to finish publishes, the
	 * count before the list that readers test. */
	pthread_mutex_lock(&vm->lock);
	if (!vm->msr_idx) {
		vm->nr_msr_idx = n;
		__atomic_store_n(&vm->msr_idx, idx, __ATOMIC_RELEASE);
		idx = NULL;
	}
	pthread_mutex_unlock(&vm->lock);
	r = 0;
out:
	free(idx);
	free(l);
	return r;
}

static int save_msrs(struct vcpu *v, struct vcpu_state *s, char *err,
		     size_t errlen)
{
	struct vm *vm = v->vm;
	struct kvm_msrs *m;
	uint32_t *idx = __atomic_load_n(&vm->msr_idx, __ATOMIC_ACQUIRE);
	unsigned n;
	int r;

	if (!idx) {
		r = msr_probe(v);
		if (r == -E2BIG)
			return bad(err, errlen, "more than %d MSRs",
				   SNAP_MAX_MSRS);
		if (r)
			return bad(err, errlen,
				   "KVM_GET_MSR_INDEX_LIST failed");
		idx = __atomic_load_n(&vm->msr_idx, __ATOMIC_ACQUIRE);
	}
	n = vm->nr_msr_idx;
	m = calloc(1, sizeof(*m) + n * sizeof(m->entries[0]));
	if (!m)
		return bad(err, errlen, "out of memory");
	m->nmsrs = n;
	for (unsigned i = 0; i < n; i++)
		m->entries[i].index = idx[i];
	r = ioctl(v->fd, KVM_GET_MSRS, m);
	if (r != (int)n) {
		free(m);
		return bad(err, errlen, "vcpu %d: KVM_GET_MSRS read %d of %u",
			   v->id, r, n);
	}
	memcpy(s->msrs, m->entries, n * sizeof(m->entries[0]));
	s->nr_msrs = n;
	free(m);
	return 0;
}

int vcpu__save(struct vcpu *v, struct vcpu_state *s, char *err,
	       size_t errlen)
{
	int fd = v->fd;
	struct kvm_run *run = v->run;

	/* What the VMM changed in kvm_run for the next KVM_RUN (PVM's
	 * completed string ops and system calls) is not in KVM yet: put it
	 * there, or the state misses it and whatever runs next on this vCPU
	 * (its parked copy) gets it. */
	if (run && run->kvm_dirty_regs) {
		if (((run->kvm_dirty_regs & KVM_SYNC_X86_REGS) &&
		     ioctl(fd, KVM_SET_REGS, &run->s.regs.regs) < 0) ||
		    ((run->kvm_dirty_regs & KVM_SYNC_X86_SREGS) &&
		     ioctl(fd, KVM_SET_SREGS, &run->s.regs.sregs) < 0) ||
		    ((run->kvm_dirty_regs & KVM_SYNC_X86_EVENTS) &&
		     ioctl(fd, KVM_SET_VCPU_EVENTS, &run->s.regs.events) < 0))
			return bad(err, errlen,
				   "vcpu %d: pending registers: %s", v->id,
				   strerror(errno));
		run->kvm_dirty_regs = 0;
	}
	memset(s, 0, sizeof(*s));
	if (ioctl(fd, KVM_GET_REGS, &s->regs) < 0 ||
	    ioctl(fd, KVM_GET_SREGS, &s->sregs) < 0)
		return bad(err, errlen, "vcpu %d: registers: %s", v->id,
			   strerror(errno));
	if (ioctl(v->vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0 &&
	    ioctl(fd, KVM_GET_XSAVE, &s->xsave) == 0)
		s->has |= VCPU_HAS_XSAVE;
	else if (ioctl(fd, KVM_GET_FPU, &s->fpu) < 0)
		return bad(err, errlen, "vcpu %d: FPU: %s", v->id,
			   strerror(errno));
	if (ioctl(v->vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0 &&
	    ioctl(fd, KVM_GET_XCRS, &s->xcrs) == 0)
		s->has |= VCPU_HAS_XCRS;
	if (ioctl(fd, KVM_GET_DEBUGREGS, &s->dregs) == 0)
		s->has |= VCPU_HAS_DREGS;
	if (ioctl(fd, KVM_GET_LAPIC, &s->lapic) < 0 ||
	    ioctl(fd, KVM_GET_VCPU_EVENTS, &s->events) < 0 ||
	    ioctl(fd, KVM_GET_MP_STATE, &s->mp) < 0)
		return bad(err, errlen, "vcpu %d: LAPIC/events/MP state: %s",
			   v->id, strerror(errno));
	return save_msrs(v, s, err, errlen);
}

/* Set MSRs from s in the order KVM needs: the TSC first (the deadline and
 * kvmclock are relative to it), the TSC deadline last (KVM keeps it only
 * once the LAPIC timer is in deadline mode, i.e. after KVM_SET_LAPIC). */
static int load_msrs(struct vcpu *v, const struct vcpu_state *s, char *err,
		     size_t errlen)
{
	size_t sz = sizeof(struct kvm_msr_entry) * (s->nr_msrs + 1);
	struct kvm_msr_entry *e = calloc(1, sz);
	struct kvm_msrs *m = calloc(1, sizeof(*m) + sz);
	unsigned n = 0, start = 0, failed = 0, first_bad = 0;
	int r = 0;

	if (!e || !m) {
		free(e);
		free(m);
		return bad(err, errlen, "out of memory");
	}
	for (int pass = 0; pass < 3; pass++)
		for (unsigned i = 0; i < s->nr_msrs; i++) {
			uint32_t idx = s->msrs[i].index;
			int p = idx == MSR_IA32_TSC	     ? 0
				: idx == MSR_IA32_TSC_DEADLINE ? 2
							       : 1;
			if (p == pass)
				e[n++] = s->msrs[i];
		}
	/* KVM_SET_MSRS stops at the first entry it refuses and returns how
	 * many it set: note that one and go on after it. */
	while (start < n) {
		m->nmsrs = n - start;
		memcpy(m->entries, e + start, m->nmsrs * sizeof(*e));
		r = ioctl(v->fd, KVM_SET_MSRS, m);
		if (r < 0 || (unsigned)r == m->nmsrs)
			break;
		if (!failed++)
			first_bad = e[start + r].index;
		start += r + 1;
	}
	free(e);
	free(m);
	if (r < 0)
		return bad(err, errlen, "vcpu %d: KVM_SET_MSRS: %s", v->id,
			   strerror(errno));
	if (failed)
		fprintf(stderr,
			"slos: vcpu %d: %u MSRs not restored (first 0x%x)\n",
			v->id, failed, first_bad);
	return 0;
}

void vcpu__drop_msr(struct vcpu_state *s, uint32_t index)
{
	unsigned n = 0;

	for (unsigned i = 0; i < s->nr_msrs; i++)
		if (s->msrs[i].index != index)
			s->msrs[n++] = s->msrs[i];
	s->nr_msrs = n;
}

int vcpu__load(struct vcpu *v, const struct vcpu_state *s, char *err,
	       size_t errlen)
{
	struct kvm_vcpu_events ev = s->events;
	int fd = v->fd;

#define SET(req, arg, what)                                               \
	do {                                                              \
		if (ioctl(fd, req, arg) < 0)                              \
			return bad(err, errlen, "vcpu %d: %s: %s", v->id, \
				   what, strerror(errno));                \
	} while (0)
	/* Order as QEMU's: sregs (EFER, CR4, APIC base) before what depends
	 * on them, the LAPIC before its timer's MSR, events last. */
	SET(KVM_SET_SREGS, &s->sregs, "special registers");
	SET(KVM_SET_REGS, &s->regs, "registers");
	if (s->has & VCPU_HAS_XSAVE)
		SET(KVM_SET_XSAVE, &s->xsave, "XSAVE state");
	else
		SET(KVM_SET_FPU, &s->fpu, "FPU state");
	if (s->has & VCPU_HAS_XCRS)
		SET(KVM_SET_XCRS, &s->xcrs, "XCRs");
	SET(KVM_SET_LAPIC, &s->lapic, "LAPIC");
	if (load_msrs(v, s, err, errlen))
		return -1;
	SET(KVM_SET_MP_STATE, &s->mp, "MP state");
	/* What GET reports is what SET may take, plus the fields GET always
	 * fills but SET reads only when told. */
	ev.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING |
		    KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	SET(KVM_SET_VCPU_EVENTS, &ev, "pending events");
	if (s->has & VCPU_HAS_DREGS)
		SET(KVM_SET_DEBUGREGS, &s->dregs, "debug registers");
#undef SET
	return 0;
}
