// SPDX-License-Identifier: MIT
/*
 * The kvmclock page over hosts. Linux keeps every vCPU's kvmclock entry
 * (pvclock_vcpu_time_info, padded to 64 bytes) in one page (hv_clock_boot:
 * 64 entries), and each host's KVM rewrites the entries of the vCPUs running
 * there at every clock update: as a DSM page that would be written by
 * every host in turn and ping-pong at each tick (docs/demo.md measured 89k
 * of 154k page waits in one lab boot on it). Each CPU reads only its own
 * entry (the vDSO reads vCPU 0's: `no-kvmclock-vsyscall` over hosts), so
 * the page can be each host's own: its KVM writes the entries of its vCPUs,
 * and they read them there.
 *
 * The VMM learns the page from the guest itself: KVM's MSR filter sends
 * the guest's writes of the two kvmclock MSRs to userspace, which makes
 * the page private (dsm__privatize) and then sets the MSR on KVM's behalf
 * (KVM_SET_MSRS, which the filter does not see). A vCPU that jumps brings
 * the MSR in its state, and its destination makes the page private before
 * it loads the state.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/cluster.h"
#include "vmm/cluster_priv.h"
#include "vmm/snapshot.h"
#include "vmm/vm.h"

#define MSR_KVM_SYSTEM_TIME	0x12
#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01

static bool is_clock_msr(uint32_t index)
{
	return index == MSR_KVM_SYSTEM_TIME || index == MSR_KVM_SYSTEM_TIME_NEW;
}

int cluster__clock_filter(struct vm *vm)
{
	/* A clear bit denies: the write exits to userspace. KVM copies the
	 * bitmap in, a long at a time. */
	uint64_t deny = 0;
	struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_USER_SPACE_MSR,
				     .args = {KVM_MSR_EXIT_REASON_FILTER}};
	struct kvm_msr_filter f = {
	    .flags = KVM_MSR_FILTER_DEFAULT_ALLOW,
	    .ranges = {{.flags = KVM_MSR_FILTER_WRITE,
			.nmsrs = 1,
			.base = MSR_KVM_SYSTEM_TIME,
			.bitmap = (uint8_t *)&deny},
		       {.flags = KVM_MSR_FILTER_WRITE,
			.nmsrs = 1,
			.base = MSR_KVM_SYSTEM_TIME_NEW,
			.bitmap = (uint8_t *)&deny}},
	};

	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_MSR_FILTER) <= 0)
		return -ENOTSUP;
	if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) < 0 ||
	    ioctl(vm->vm_fd, KVM_X86_SET_MSR_FILTER, &f) < 0)
		return -errno;
	return 0;
}

static int privatize(struct cluster *cl, uint64_t msr)
{
	static atomic_bool warned;
	int r;

	if (!(msr & 1))
		return 0;
	atomic_fetch_add(&cl->clock_msrs, 1);
	atomic_store(&cl->clock_page, msr & ~0xfffULL);
	r = dsm__privatize(&cl->dsm, msr & ~1ULL);
	if (r && !atomic_exchange(&warned, true))
		fprintf(stderr,
			"slos: kvmclock page 0x%llx stays shared between "
			"hosts: %s\n",
			(unsigned long long)(msr & ~0xfffULL), strerror(-r));
	return r;
}

void cluster__wrmsr(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	union {
		struct kvm_msrs h;
		uint8_t
		    b[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
	} m = {.h.nmsrs = 1};

	if (!v->vm->cl || !is_clock_msr(run->msr.index)) {
		run->msr.error = 1; /* not filtered by us: #GP, as KVM would */
		return;
	}
	m.h.entries[0].index = run->msr.index;
	m.h.entries[0].data = run->msr.data;
	privatize(v->vm->cl, run->msr.data);
	/* What KVM refuses (a clock it cannot offer) is the guest's #GP. */
	run->msr.error = ioctl(v->fd, KVM_SET_MSRS, &m) != 1;
}

int cluster__clock_state(struct vm *vm, const struct vcpu_state *s)
{
	int r = 0;

	for (unsigned i = 0; vm->cl && i < s->nr_msrs && !r; i++)
		if (is_clock_msr(s->msrs[i].index))
			r = privatize(vm->cl, s->msrs[i].data);
	return r;
}

void cluster_clock_stats(struct cluster *cl, FILE *f)
{
	uint64_t n = atomic_load(&cl->clock_msrs),
		 gpa = atomic_load(&cl->clock_page);

	if (n)
		fprintf(f,
			"slos: host %u kvmclock: set %llu times, page 0x%llx "
			"%s\n",
			cl->self, (unsigned long long)n,
			(unsigned long long)gpa,
			dsm__is_private(&cl->dsm, gpa) ? "private to this host"
						       : "shared");
}
