// SPDX-License-Identifier: MIT
/*
 * virtio devices over hosts (docs/virtio.md). Each device belongs to one
 * host (--disk FILE,host=N; default host 0); every host routes the
 * accesses to a device's window: the owner's own vCPUs reach the device
 * directly, the others' are forwarded to the owner (CL_IO). A device's
 * interrupt goes to host 0's IOAPIC (CL_IRQ), which sends it to the vCPU
 * wherever that runs. Host 0 tells the members of every device before
 * their VM is made (CL_DEVS), and each opens the backends it owns.
 */
#include <stdio.h>
#include <string.h>

#include "vmm/cluster_priv.h"
#include "vmm/ioapic.h"

static void route(struct io_dev *io, uint64_t off, uint8_t *data, unsigned size,
		  bool write)
{
	struct cluster *cl = io->priv;
	unsigned i = off / VIRTIO_MMIO_SIZE;
	unsigned owner = atomic_load(&cl->dev_owner[i]);
	struct virtio_dev *d;

	if (i >= cl->nr_dev_windows) {
		if (!write)
			memset(data, 0xff, size);
		return;
	}
	if (owner != cl->self) {
		cluster_forward(cl, owner, true, io->base + off, data, size,
				write);
		return;
	}
	d = cl->vm ? cl->vm->vdev[i] : NULL;
	if (d)
		d->io.access(&d->io, off % VIRTIO_MMIO_SIZE, data, size, write);
	else if (!write)
		memset(data, 0xff, size);
}

int cluster_dev_register(struct cluster *cl, struct vm *vm)
{
	const struct vm_config *c = &vm->cfg;

	cl->nr_dev_windows = c->nr_vdevs + c->vconsole;
	for (unsigned i = 0; i < c->nr_vdevs; i++)
		atomic_store(&cl->dev_owner[i], c->vdevs[i].host);
	cl->vrouter = (struct io_dev){.name = "virtio",
				      .base = VIRTIO_MMIO_BASE,
				      .len = VIRTIO_MMIO_END - VIRTIO_MMIO_BASE,
				      .access = route,
				      .priv = cl};
	return io__register(&vm->mmio, &cl->vrouter);
}

int cluster_devs_send(struct cluster *cl, unsigned to)
{
	const struct vm_config *c = &cl->vm->cfg;
	uint8_t buf[2 + VIRTIO_MAX_DEVS * (11 + CLUSTER_DEV_PATH)];
	size_t n;

	if (!c->nr_vdevs && !c->vconsole)
		return 0;
	n = cluster__devs_put(c->vdevs, c->nr_vdevs, c->vconsole, buf,
			      sizeof(buf));
	if (!n)
		return -1;
	return cluster_send(cl, to, CL_DEVS, buf, n) ? -1 : 0;
}

void cluster_devs_frame(struct cluster *cl, int from, const uint8_t *p,
			size_t len)
{
	const char *why = "CL_DEVS from a member";

	pthread_mutex_lock(&cl->lock);
	/* A member learns its index from CL_SPEC, which comes after. */
	if (from != 0 || cl->got_devs || cl->got_spec ||
	    cluster__devs_get(&cl->devs, p, len, &why)) {
		pthread_mutex_unlock(&cl->lock);
		cluster_stop(cl, VM_EXIT_CRASH, "host 0 sent a bad CL_DEVS: %s",
			     why ? why : "out of order");
		return;
	}
	cl->got_devs = true;
	pthread_mutex_unlock(&cl->lock);
}

int cluster_dev_config(struct cluster *cl, struct vm_config *cfg)
{
	cfg->nr_vdevs = cl->devs.n;
	cfg->vconsole = cl->devs.vconsole;
	for (unsigned i = 0; i < cl->devs.n; i++) {
		if (cl->devs.d[i].host >= cl->n)
			return -1;
		cfg->vdevs[i] = cl->devs.d[i];
	}
	return 0;
}

void cluster_irq_frame(struct cluster *cl, int from, const uint8_t *p,
		       size_t len)
{
	struct vm *vm = cl->vm;

	if (cl->self != 0 || len != 1 || p[0] < VIRTIO_GSI_FIRST ||
	    p[0] >= VIRTIO_GSI_FIRST + cl->nr_dev_windows || !vm ||
	    !vm->ioapic) {
		cluster_stop(cl, VM_EXIT_CRASH, "host %d: bad CL_IRQ", from);
		return;
	}
	ioapic__set_irq(vm->ioapic, p[0], true);
	ioapic__set_irq(vm->ioapic, p[0], false);
}

void cluster__irq(struct vm *vm, unsigned gsi)
{
	uint8_t g = gsi;

	if (vm->cl && !atomic_load(&vm->cl->stopping))
		cluster_send(vm->cl, 0, CL_IRQ, &g, 1);
}
