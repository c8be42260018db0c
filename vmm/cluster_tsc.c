// SPDX-License-Identifier: MIT
/*
 * Which clock a Linux guest over hosts keeps time with.
 *
 * KVM marks a guest's kvmclock PVCLOCK_TSC_STABLE_BIT only when it keeps
 * a master clock, which needs the host's clocksource to be the TSC (or
 * Hyper-V's TSC page). Without that bit Linux ends every kvmclock read
 * (and sched_clock is kvmclock under KVM) with a cmpxchg on one global
 * word, pvclock's last_value: over hosts, a page that moves at every clock
 * read on either side (docs/demo.md counted 34,473 of 84,180 page waits on
 * it in one spread boot). There the guest keeps time with the TSC instead,
 * which slos already keeps consistent over hosts and jumps
 * (vmm/cluster_time.c): `no-kvmclock`, `tsc=reliable` (no watchdog to
 * compare it with kvmclock) and `tsc_early_khz` (with no PIT or HPET the
 * guest could not calibrate the TSC). Not under PVM, whose guests need
 * kvmclock (docs/pvm.md); not on one host, where the word never moves.
 */
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/cluster.h"
#include "vmm/vm.h"

static bool host_clock_is_tsc(void)
{
	char cs[64] = "";
	FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/"
			"current_clocksource",
			"r");

	if (!f)
		return false;
	if (!fgets(cs, sizeof(cs), f))
		cs[0] = 0;
	fclose(f);
	cs[strcspn(cs, "\n")] = 0;
	return !strcmp(cs, "tsc") || !strcmp(cs, "hyperv_clocksource_tsc_page");
}

/* The guest TSC's rate before any vCPU of this VM exists: a vCPU of a
 * throwaway VM has this KVM's default rate, which the VM's vCPUs get. */
static int default_tsc_khz(int kvm_fd)
{
	int vm = ioctl(kvm_fd, KVM_CREATE_VM, 0), vcpu = -1, khz = -1;

	if (vm >= 0)
		vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu >= 0)
		khz = ioctl(vcpu, KVM_GET_TSC_KHZ, 0);
	if (vcpu >= 0)
		close(vcpu);
	if (vm >= 0)
		close(vm);
	return khz;
}

const char *cluster__guest_clock(struct vm *vm)
{
	static char opts[96];
	int khz;

	if (vm->cfg.nhosts < 2 || vm->pvm || host_clock_is_tsc())
		return "";
	khz = default_tsc_khz(vm->kvm_fd);
	if (khz <= 0)
		return "";
	snprintf(opts, sizeof(opts),
		 "no-kvmclock tsc=reliable tsc_early_khz=%d ", khz);
	return opts;
}
