// SPDX-License-Identifier: MIT
/*
 * One guest time over hosts. Each host's KVM VM starts its own guest TSC
 * (at 0 when its first vCPU is made) and its own kvmclock (at 0 when the
 * VM is made), so without this a vCPU on a member, or one that jumps,
 * would see both clocks step by the hosts' start-up gap. Under PVM the
 * guest TSC is the host's and KVM offers no offset to set: nothing to do.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/cluster.h"
#include "vmm/cluster_priv.h"
#include "vmm/vm.h"

void cluster_boot_id(uint8_t out[16])
{
	char b[64] = {0};
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	unsigned n = 0;

	memset(out, 0, 16);
	if (fd < 0)
		return;
	if (read(fd, b, sizeof(b) - 1) < 32)
		b[0] = 0;
	close(fd);
	for (const char *p = b; *p && n < 32; p++) {
		unsigned v;
		if (*p == '-')
			continue;
		if (sscanf((char[]){*p, 0}, "%1x", &v) != 1)
			break;
		out[n / 2] |= v << (n % 2 ? 0 : 4);
		n++;
	}
}

void cluster__time_put(const struct cluster_time *t, uint8_t *out)
{
	cl_put32(out, t->flags);
	cl_put64(out + 4, t->tsc_offset);
	cl_put64(out + 12, t->tsc_khz);
	cl_put64(out + 20, t->clock);
	cl_put64(out + 28, t->realtime);
	cl_put64(out + 36, t->host_tsc);
	memcpy(out + 44, t->boot_id, 16);
}

int cluster__time_get(struct cluster_time *t, const uint8_t *in, size_t len)
{
	if (len != CLUSTER_TIME_SIZE)
		return -1;
	t->flags = cl_get32(in);
	t->tsc_offset = cl_get64(in + 4);
	t->tsc_khz = cl_get64(in + 12);
	t->clock = cl_get64(in + 20);
	t->realtime = cl_get64(in + 28);
	t->host_tsc = cl_get64(in + 36);
	memcpy(t->boot_id, in + 44, 16);
	return t->flags & ~15u ? -1 : 0;
}

static struct kvm_device_attr tsc_attr(uint64_t *val)
{
	return (struct kvm_device_attr){.group = KVM_VCPU_TSC_CTRL,
					.attr = KVM_VCPU_TSC_OFFSET,
					.addr = (uint64_t)(uintptr_t)val};
}

static bool has_tsc_offset(struct vcpu *v)
{
	struct kvm_device_attr a = tsc_attr(NULL);

	return v->fd >= 0 && !ioctl(v->fd, KVM_HAS_DEVICE_ATTR, &a);
}

void cluster__time_read(struct vm *vm, struct cluster_time *t)
{
	struct vcpu *v = &vm->vcpus[0];
	struct kvm_clock_data c = {0};
	struct kvm_device_attr a = tsc_attr(&t->tsc_offset);

	memset(t, 0, sizeof(*t));
	cluster_boot_id(t->boot_id);
	if (has_tsc_offset(v) && !ioctl(v->fd, KVM_GET_DEVICE_ATTR, &a))
		t->flags |= CLUSTER_TIME_TSC;
	int khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
	t->tsc_khz = khz > 0 ? khz : 0;
	if (!ioctl(vm->vm_fd, KVM_GET_CLOCK, &c)) {
		t->flags |= CLUSTER_TIME_CLOCK;
		t->clock = c.clock;
		if (c.flags & KVM_CLOCK_REALTIME) {
			t->flags |= CLUSTER_TIME_REALTIME;
			t->realtime = c.realtime;
		}
		if (c.flags & KVM_CLOCK_HOST_TSC) {
			t->flags |= CLUSTER_TIME_HOST_TSC;
			t->host_tsc = c.host_tsc;
		}
	}
}

/* This host's offset for host 0's: the same on one machine; elsewhere
 * host 0's host TSC now, from the realtime clock both sides read. */
static int local_offset(struct vm *vm, const struct cluster_time *t,
			uint64_t *off)
{
	const unsigned need = CLUSTER_TIME_REALTIME | CLUSTER_TIME_HOST_TSC;
	struct kvm_clock_data c = {0};
	uint8_t me[16];

	cluster_boot_id(me);
	if (!memcmp(me, t->boot_id, 16)) {
		*off = t->tsc_offset;
		return 0;
	}
	if ((t->flags & need) != need || !t->tsc_khz ||
	    ioctl(vm->vm_fd, KVM_GET_CLOCK, &c) ||
	    (c.flags & (KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC)) !=
		(KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC))
		return -1;
	int64_t dt_ns = (int64_t)(c.realtime - t->realtime);
	uint64_t host0_now =
	    t->host_tsc + dt_ns * (int64_t)t->tsc_khz / 1000000;
	*off = t->tsc_offset + host0_now - c.host_tsc;
	return 0;
}

int cluster__time_apply(struct vm *vm, const struct cluster_time *t)
{
	if (t->flags & CLUSTER_TIME_CLOCK) {
		struct kvm_clock_data c = {.clock = t->clock};
		if (t->flags & CLUSTER_TIME_REALTIME) {
			c.flags = KVM_CLOCK_REALTIME;
			c.realtime = t->realtime;
		}
		if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &c))
			fprintf(stderr,
				"slos: host %u: KVM_SET_CLOCK: %s: the "
				"guest's kvmclock differs between hosts\n",
				vm->cfg.host, strerror(errno));
	}
	if (!(t->flags & CLUSTER_TIME_TSC) || !has_tsc_offset(&vm->vcpus[0]))
		return 0;
	uint64_t off;
	if (local_offset(vm, t, &off)) {
		fprintf(stderr,
			"slos: host %u: cannot translate host 0's TSC "
			"offset (no realtime/host TSC pair): the guest's TSC "
			"differs between hosts\n",
			vm->cfg.host);
		return 0;
	}
	for (unsigned i = 0; i < vm->cfg.nr_vcpus; i++) {
		struct kvm_device_attr a = tsc_attr(&off);
		if (vm->vcpus[i].fd >= 0 &&
		    ioctl(vm->vcpus[i].fd, KVM_SET_DEVICE_ATTR, &a)) {
			fprintf(stderr,
				"slos: host %u: vcpu %u: TSC offset: "
				"%s\n",
				vm->cfg.host, i, strerror(errno));
			return -1;
		}
	}
	return 0;
}
