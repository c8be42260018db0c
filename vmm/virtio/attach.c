// SPDX-License-Identifier: MIT
/*
 * A VM's virtio devices: their ACPI entries (every host builds the same
 * list, so window i and pin 5+i name the same device everywhere), the
 * ones this host owns, and their interrupts through the I/O host's
 * IOAPIC. A member's accesses to a window it does not own are forwarded
 * like every MMIO access (vmm/cluster.c).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vmm/acpi.h"
#include "vmm/cluster.h"
#include "vmm/ioapic.h"
#include "vmm/vm.h"

static unsigned total(const struct vm_config *c)
{
	return c->nr_vdevs + c->vconsole;
}

unsigned virtio__acpi_devs(const struct vm_config *c, struct acpi_mmio_dev *out)
{
	unsigned n = total(c);

	for (unsigned i = 0; i < n; i++)
		out[i] = (struct acpi_mmio_dev){
		    .hid = VIRTIO_ACPI_HID,
		    .base = VIRTIO_MMIO_BASE + i * VIRTIO_MMIO_SIZE,
		    .size = VIRTIO_MMIO_SIZE,
		    .gsi = VIRTIO_GSI_FIRST + i,
		    .edge = true,
		};
	return n;
}

/* Edge-triggered: one rising edge per batch of used buffers. */
static void raise_irq(void *arg, unsigned gsi)
{
	struct vm *vm = arg;

	if (atomic_load(&vm->stopping))
		return;
	if (!vm->ioapic) {
		cluster__irq(vm, gsi); /* a member: host 0 has the IOAPIC */
		return;
	}
	ioapic__pulse(vm->ioapic, gsi);
}

static unsigned owner(const struct vm_config *c, unsigned i)
{
	return i < c->nr_vdevs ? c->vdevs[i].host : 0;
}

void virtio__dev_name(const struct vm_config *c, unsigned i, char *out,
		      size_t len)
{
	snprintf(out, len, "%s%u",
		 virtio__kind_name(i < c->nr_vdevs ? c->vdevs[i].kind
						   : VIRTIO_CONSOLE),
		 i);
}

struct virtio_dev *virtio__make(struct vm *vm, unsigned i, char *why,
				size_t len)
{
	const struct vm_config *c = &vm->cfg;
	struct virtio_dev *d =
	    i < c->nr_vdevs ? virtio__new(&c->vdevs[i], why, len)
			    : virtio__console_new(STDOUT_FILENO, why, len);

	if (!d)
		return NULL;
	virtio__dev_name(c, i, d->name, sizeof(d->name));
	if (virtio__init(d, i, &vm->mem, raise_irq, vm)) {
		snprintf(why, len, "%s: cannot set it up", d->name);
		virtio__stop(d);
		return NULL;
	}
	return d;
}

int virtio__attach(struct vm *vm)
{
	const struct vm_config *c = &vm->cfg;
	char why[256];

	for (unsigned i = 0; i < total(c); i++) {
		struct virtio_dev *d;

		if (owner(c, i) != c->host)
			continue;
		d = virtio__make(vm, i, why, sizeof(why));
		if (!d) {
			fprintf(stderr, "slos: %s\n", why);
			return -1;
		}
		vm->vdev[i] = d;
		if (i >= c->nr_vdevs)
			vm->vcon = d;
		/* Over hosts vmm/cluster_dev.c routes the windows. */
		if (!vm->cl && io__register(&vm->mmio, &d->io)) {
			fprintf(stderr, "slos: %s: cannot set it up\n",
				d->name);
			return -1;
		}
	}
	return 0;
}

int virtio__start_all(struct vm *vm)
{
	for (unsigned i = 0; i < VIRTIO_MAX_DEVS; i++) {
		int r = vm->vdev[i] ? virtio__start(vm->vdev[i], vm->vm_fd) : 0;

		if (r) {
			fprintf(stderr, "slos: %s: its thread: %s\n",
				vm->vdev[i]->name, strerror(-r));
			return -1;
		}
	}
	return 0;
}

void virtio__halt_all(struct vm *vm)
{
	for (unsigned i = 0; i < VIRTIO_MAX_DEVS; i++) {
		struct virtio_dev *d = vm->vdev[i];

		/* Not under its lock: a worker holding it may wait for a
		 * page that only this thread's connection would bring. */
		if (d)
			atomic_store(&d->halted, true);
	}
}

void virtio__detach(struct vm *vm)
{
	for (unsigned i = 0; i < VIRTIO_MAX_DEVS; i++) {
		virtio__stop(vm->vdev[i]);
		vm->vdev[i] = NULL;
	}
	vm->vcon = NULL;
}

void virtio__print_stats(struct vm *vm, FILE *f)
{
	for (unsigned i = 0; i < VIRTIO_MAX_DEVS; i++) {
		struct virtio_dev *d = vm->vdev[i];

		if (!d)
			continue;
		fprintf(f,
			"slos: %s notifies %llu interrupts %llu requests %llu "
			"errors %llu in %llu B out %llu B\n",
			d->name, (unsigned long long)d->st.notifies,
			(unsigned long long)d->st.interrupts,
			(unsigned long long)d->st.requests,
			(unsigned long long)d->st.errors,
			(unsigned long long)d->st.bytes_in,
			(unsigned long long)d->st.bytes_out);
	}
}
