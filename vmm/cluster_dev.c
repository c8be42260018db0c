// SPDX-License-Identifier: MIT
/*
 * virtio devices over hosts (docs/virtio.md). Each device belongs to one
 * host (--disk FILE,host=N; default host 0); every host routes the
 * accesses to a device's window: the owner's own vCPUs reach the device
 * directly, the others' are forwarded to the owner (CL_IO). A device's
 * interrupt goes to host 0's IOAPIC (CL_IRQ), which sends it to the vCPU
 * wherever that runs. Host 0 tells the members of every device before
 * their VM is made (CL_DEVS), and each opens the backends it owns.
 *
 * Moving a device (`slos ctl VM move-device blk0 2`), driven by host 0:
 *   PREP   0 -> new owner: open the backend, make the device (not run);
 *   PREPPED  new owner -> 0: done, or why not (nothing moved then);
 *   MOVE   0 -> old owner: on its forwarder's thread, with the window
 *          locked: take the ioeventfds back, stop the worker, finish the
 *          requests in flight (their interrupts go out), save the
 *          transport's state, send it (STATE), route the window to the
 *          new owner, free the device;
 *   STATE  old -> new owner: load it, run the device, route the window
 *          here, and tell every other host (OWNER).
 * Accesses meanwhile wait on the window's lock or are forwarded to the
 * old owner, which forwards them on once it has let go: STATE went
 * before them on the same connection, so they find the device there.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

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
	/* A move may take the device away meanwhile: look again under
	 * the window's lock. */
	pthread_rwlock_rdlock(&cl->dev_rw[i]);
	owner = atomic_load(&cl->dev_owner[i]);
	d = cl->vm && owner == cl->self ? cl->vm->vdev[i] : NULL;
	if (d)
		d->io.access(&d->io, off % VIRTIO_MMIO_SIZE, data, size, write);
	pthread_rwlock_unlock(&cl->dev_rw[i]);
	if (!d && owner != cl->self)
		cluster_forward(cl, owner, true, io->base + off, data, size,
				write);
	else if (!d && !write)
		memset(data, 0xff, size);
}

int cluster_dev_register(struct cluster *cl, struct vm *vm)
{
	const struct vm_config *c = &vm->cfg;

	cl->nr_dev_windows = c->nr_vdevs + c->vconsole;
	for (unsigned i = 0; i < VIRTIO_MAX_DEVS; i++)
		pthread_rwlock_init(&cl->dev_rw[i], NULL);
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
	ioapic__pulse(vm->ioapic, p[0]);
}

void cluster__irq(struct vm *vm, unsigned gsi)
{
	uint8_t g = gsi;

	if (vm->cl && !atomic_load(&vm->cl->stopping))
		cluster_send(vm->cl, 0, CL_IRQ, &g, 1);
}

enum { DEV_PREP, DEV_PREPPED, DEV_MOVE, DEV_STATE, DEV_OWNER };

static void dev_op(struct cluster *cl, int from, unsigned op, unsigned idx,
		   unsigned host, const uint8_t *p, size_t len);

/* To a host, or to this one by a direct call. */
static void dev_send(struct cluster *cl, unsigned to, unsigned op, unsigned idx,
		     unsigned host, const void *p, size_t len)
{
	uint8_t buf[3 + VIRTIO_STATE_SIZE + 160];

	if (to == cl->self) {
		dev_op(cl, cl->self, op, idx, host, p, len);
		return;
	}
	if (len > sizeof(buf) - 3)
		len = sizeof(buf) - 3;
	buf[0] = op;
	buf[1] = idx;
	buf[2] = host;
	if (len)
		memcpy(buf + 3, p, len);
	cluster_send(cl, to, CL_DEV, buf, 3 + len);
}

static void prep(struct cluster *cl, unsigned idx)
{
	char why[160] = "";
	struct virtio_dev *d = cl->dev_pending[idx];

	if (!d)
		d = virtio__make(cl->vm, idx, why, sizeof(why));
	cl->dev_pending[idx] = d;
	dev_send(cl, 0, DEV_PREPPED, idx, d != NULL, why, d ? 0 : strlen(why));
}

void cluster_dev_move_out(struct cluster *cl, unsigned idx, unsigned to)
{
	struct vm *vm = cl->vm;
	uint8_t st[VIRTIO_STATE_SIZE];
	struct virtio_dev *d;

	pthread_rwlock_wrlock(&cl->dev_rw[idx]);
	d = vm->vdev[idx];
	if (!d || atomic_load(&cl->dev_owner[idx]) != cl->self) {
		pthread_rwlock_unlock(&cl->dev_rw[idx]);
		cluster_stop(cl, VM_EXIT_CRASH,
			     "host %u: asked to move virtio device %u it does "
			     "not have",
			     cl->self, idx);
		return;
	}
	/* Notifications from here exit from now on, and wait above. */
	virtio__unplug_notify(d, vm->vm_fd);
	virtio__quiesce(d);
	virtio__save(d, st);
	dev_send(cl, to, DEV_STATE, idx, to, st, sizeof(st));
	atomic_store(&cl->dev_owner[idx], to);
	vm->vdev[idx] = NULL;
	pthread_rwlock_unlock(&cl->dev_rw[idx]);
	virtio__stop(d);
}

void cluster_dev_take(struct cluster *cl, unsigned idx, const uint8_t *p)
{
	struct virtio_dev *d = cl->dev_pending[idx];
	const char *why = "no device made for it";

	if (cl->vm->vdev[idx])
		why = "it is here already";
	if (!d || cl->vm->vdev[idx] ||
	    virtio__load(d, p, VIRTIO_STATE_SIZE, &why) ||
	    virtio__start(d, cl->vm->vm_fd)) {
		cluster_stop(cl, VM_EXIT_CRASH,
			     "host %u: virtio device %u did not arrive: %s",
			     cl->self, idx, why);
		return;
	}
	cl->dev_pending[idx] = NULL;
	pthread_rwlock_wrlock(&cl->dev_rw[idx]);
	cl->vm->vdev[idx] = d;
	atomic_store(&cl->dev_owner[idx], cl->self);
	pthread_rwlock_unlock(&cl->dev_rw[idx]);
	for (unsigned h = 0; h < cl->n; h++)
		if (h != cl->self)
			dev_send(cl, h, DEV_OWNER, idx, cl->self, NULL, 0);
	if (cl->self == 0)
		dev_op(cl, 0, DEV_OWNER, idx, 0, NULL, 0);
}

static void dev_op(struct cluster *cl, int from, unsigned op, unsigned idx,
		   unsigned host, const uint8_t *p, size_t len)
{
	switch (op) {
	case DEV_PREP:
		prep(cl, idx);
		return;
	case DEV_MOVE:
		/* Host 0's own: its ctl thread may wait for the I/O. */
		if (cl->self == 0)
			cluster_dev_move_out(cl, idx, host);
		else if (!cluster_io_queue_move(cl, idx, host))
			cluster_stop(cl, VM_EXIT_CRASH,
				     "device move: queue full");
		return;
	case DEV_STATE:
		if (!cluster_io_queue_take(cl, idx, p))
			cluster_stop(cl, VM_EXIT_CRASH,
				     "device move: queue full");
		return;
	case DEV_OWNER:
		atomic_store(&cl->dev_owner[idx], host);
		/* fall through: host 0 follows the move */
	case DEV_PREPPED:
		if (cl->self != 0)
			return;
		pthread_mutex_lock(&cl->lock);
		if (cl->mv.active && cl->mv.idx == idx) {
			if (op == DEV_OWNER) {
				cl->mv.done = host == cl->mv.to;
				/* A move that outlived its wait ends here. */
				if (cl->mv.done && cl->mv.late)
					cl->mv.active = false;
			} else {
				cl->mv.prepped = true;
				cl->mv.ok = host;
				snprintf(cl->mv.why, sizeof(cl->mv.why), "%.*s",
					 (int)len, (const char *)p);
			}
			pthread_cond_broadcast(&cl->cv);
		}
		pthread_mutex_unlock(&cl->lock);
		return;
	}
}

/* Untrusted: a peer's frame. Who may send what is checked here. */
void cluster_dev_frame(struct cluster *cl, int from, const uint8_t *p,
		       size_t len)
{
	unsigned op, idx, host;
	bool ok;

	if (len < 3 || !cl->vm) {
		cluster_stop(cl, VM_EXIT_CRASH, "host %d: bad CL_DEV", from);
		return;
	}
	op = p[0];
	idx = p[1];
	host = p[2];
	ok = idx < cl->nr_dev_windows && idx < cl->vm->cfg.nr_vdevs;
	switch (op) {
	case DEV_PREP:
	case DEV_MOVE:
		ok = ok && from == 0 && host < cl->n && len == 3;
		break;
	case DEV_PREPPED:
		ok = ok && cl->self == 0 && host <= 1 &&
		     (unsigned)from == cl->mv.to;
		break;
	case DEV_STATE:
		ok = ok && host == cl->self && len == 3 + VIRTIO_STATE_SIZE;
		break;
	case DEV_OWNER:
		ok = ok && host == (unsigned)from && len == 3;
		break;
	default:
		ok = false;
	}
	if (!ok) {
		cluster_stop(cl, VM_EXIT_CRASH, "host %d: bad CL_DEV (op %u)",
			     from, op);
		return;
	}
	dev_op(cl, from, op, idx, host, p + 3, len - 3);
}

static int wait_mv(struct cluster *cl, bool *flag, int ms)
{
	struct timespec t;
	int r = 0;

	cluster_deadline(&t, ms);
	while (!*flag && !r && !atomic_load(&cl->stopping))
		r = pthread_cond_timedwait(&cl->cv, &cl->lock, &t);
	return *flag ? 0 : -1;
}

int cluster__move_device(struct vm *vm, const char *dev, unsigned host, int ms,
			 char *why, size_t len)
{
	struct cluster *cl = vm->cl;
	unsigned idx, from;
	char name[16];
	int r = -1;

	if (!cl) {
		snprintf(why, len, "the VM runs on one host");
		return -1;
	}
	for (idx = 0; idx < cl->nr_dev_windows; idx++) {
		virtio__dev_name(&vm->cfg, idx, name, sizeof(name));
		if (!strcmp(name, dev))
			break;
	}
	if (idx == cl->nr_dev_windows) {
		snprintf(why, len, "no device '%s'", dev);
		return -1;
	}
	if (idx >= vm->cfg.nr_vdevs) {
		snprintf(why, len, "the console stays on host 0");
		return -1;
	}
	if (host >= cl->n) {
		snprintf(why, len, "no host %u (0-%u)", host, cl->n - 1);
		return -1;
	}
	from = atomic_load(&cl->dev_owner[idx]);
	if (from == host)
		return 0;
	pthread_mutex_lock(&cl->lock);
	if (cl->mv.active) {
		pthread_mutex_unlock(&cl->lock);
		snprintf(why, len, "another device is moving");
		return -1;
	}
	cl->mv.active = true;
	cl->mv.prepped = cl->mv.ok = cl->mv.done = cl->mv.late = false;
	cl->mv.idx = idx;
	cl->mv.to = host;
	cl->mv.why[0] = '\0';
	pthread_mutex_unlock(&cl->lock);

	dev_send(cl, host, DEV_PREP, idx, host, NULL, 0);
	pthread_mutex_lock(&cl->lock);
	if (wait_mv(cl, &cl->mv.prepped, ms))
		snprintf(why, len, "host %u did not answer", host);
	else if (!cl->mv.ok)
		snprintf(why, len, "host %u cannot take it: %s", host,
			 cl->mv.why);
	else
		r = 0;
	pthread_mutex_unlock(&cl->lock);
	if (!r) {
		dev_send(cl, from, DEV_MOVE, idx, host, NULL, 0);
		pthread_mutex_lock(&cl->lock);
		if (wait_mv(cl, &cl->mv.done, ms)) {
			snprintf(why, len,
				 "not there after %d ms (still moving: no "
				 "other move until it arrives)",
				 ms);
			/* It may still arrive: the next move waits for
			 * that rather than find the device in between. */
			cl->mv.late = true;
			pthread_mutex_unlock(&cl->lock);
			return -1;
		}
		pthread_mutex_unlock(&cl->lock);
	}
	pthread_mutex_lock(&cl->lock);
	cl->mv.active = false;
	pthread_mutex_unlock(&cl->lock);
	return r;
}

void cluster_dev_exit(struct cluster *cl)
{
	for (unsigned i = 0; i < VIRTIO_MAX_DEVS; i++) {
		virtio__stop(cl->dev_pending[i]);
		cl->dev_pending[i] = NULL;
	}
}
