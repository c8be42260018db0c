// SPDX-License-Identifier: MIT
/*
 * The virtio-mmio transport, version 2 (virtio 1.2 4.2.2): registers,
 * feature and status negotiation, queue setup, and each device's worker
 * thread. A driver's write the spec forbids (features after FEATURES_OK,
 * a queue changed while ready, rings outside RAM) is ignored or breaks the
 * device into DEVICE_NEEDS_RESET; it never reaches the device's code.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/virtio/virtio.h"

static uint64_t offered(const struct virtio_dev *d)
{
	return d->ops->features | VIRTIO_F_VERSION_1;
}

static struct virtq *selected(struct virtio_dev *d)
{
	return d->queue_sel < d->ops->nr_queues ? &d->q[d->queue_sel] : NULL;
}

static void kick(int fd)
{
	uint64_t one = 1;

	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0)
		(void)0; /* a full counter already means "kicked" */
}

void virtio__fail(struct virtio_dev *d, const char *why)
{
	if (!d->broken)
		fprintf(stderr,
			"slos: virtio %s: %s; the device needs a reset\n",
			d->name, why);
	d->broken = why;
	d->st.errors++;
	d->status |= VIRTIO_S_NEEDS_RESET;
	if (d->status & VIRTIO_S_DRIVER_OK) {
		d->isr |= VIRTIO_INT_CONFIG;
		d->irq_due = true;
	}
}

void virtio__config_changed(struct virtio_dev *d)
{
	d->config_gen++;
	if (d->status & VIRTIO_S_DRIVER_OK) {
		d->isr |= VIRTIO_INT_CONFIG;
		d->irq_due = true;
	}
}

static void reset(struct virtio_dev *d)
{
	if (d->ops->reset)
		d->ops->reset(d);
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		int fd = d->q[i].kick_fd;

		d->q[i] = (struct virtq){.kick_fd = fd};
	}
	d->status = d->dev_feat_sel = d->drv_feat_sel = d->queue_sel = 0;
	d->isr = 0;
	d->drv_features = 0;
	d->broken = NULL;
	d->irq_due = false;
}

static void set_status(struct virtio_dev *d, uint32_t v)
{
	uint32_t was = d->status;

	if (!v) {
		reset(d);
		return;
	}
	/* FEATURES_OK only sticks for a subset of what was offered that
	 * has VERSION_1: the driver reads it back to learn so. */
	if ((v & VIRTIO_S_FEATURES_OK) && !(was & VIRTIO_S_FEATURES_OK) &&
	    ((d->drv_features & ~offered(d)) ||
	     !(d->drv_features & VIRTIO_F_VERSION_1)))
		v &= ~VIRTIO_S_FEATURES_OK;
	if ((v & VIRTIO_S_DRIVER_OK) && !(v & VIRTIO_S_FEATURES_OK))
		v &= ~VIRTIO_S_DRIVER_OK;
	d->status = (v & 0xff) | (was & VIRTIO_S_NEEDS_RESET);
	if ((d->status & VIRTIO_S_DRIVER_OK) && !(was & VIRTIO_S_DRIVER_OK)) {
		if (d->ops->start)
			d->ops->start(d);
		/* Buffers queued before DRIVER_OK are looked at now. */
		for (unsigned i = 0; i < d->ops->nr_queues; i++)
			if (d->q[i].ready)
				kick(d->q[i].kick_fd);
	}
}

static void set_ready(struct virtio_dev *d, struct virtq *q, uint32_t v)
{
	if (!v) {
		q->ready = false;
		return;
	}
	if (q->ready)
		return;
	if (!q->num)
		q->num = d->ops->queue_max;
	if (q->num > d->ops->queue_max || !virtq__valid(d->mem, q)) {
		virtio__fail(d, "queue set up with a bad size or rings "
				"outside guest RAM");
		return;
	}
	q->last_avail = q->used_idx = 0;
	q->ready = true;
}

static void set_half(uint64_t *r, bool hi, uint32_t v)
{
	if (hi)
		*r = (*r & 0xffffffffULL) | (uint64_t)v << 32;
	else
		*r = (*r & ~0xffffffffULL) | v;
}

static void reg_write(struct virtio_dev *d, uint64_t off, uint32_t v)
{
	struct virtq *q = selected(d);
	bool locked = !q || q->ready;

	switch (off) {
	case VIRTIO_MMIO_DEV_FEATURES_SEL:
		d->dev_feat_sel = v;
		break;
	case VIRTIO_MMIO_DRV_FEATURES_SEL:
		d->drv_feat_sel = v;
		break;
	case VIRTIO_MMIO_DRV_FEATURES:
		if (d->status & VIRTIO_S_FEATURES_OK || d->drv_feat_sel > 1)
			break;
		set_half(&d->drv_features, d->drv_feat_sel, v);
		break;
	case VIRTIO_MMIO_QUEUE_SEL:
		d->queue_sel = v;
		break;
	case VIRTIO_MMIO_QUEUE_NUM:
		if (!locked)
			q->num = v > 0xffff ? 0xffff : v;
		break;
	case VIRTIO_MMIO_QUEUE_READY:
		if (q)
			set_ready(d, q, v);
		break;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		if (v < d->ops->nr_queues)
			kick(d->q[v].kick_fd);
		break;
	case VIRTIO_MMIO_INT_ACK:
		d->isr &= ~v;
		break;
	case VIRTIO_MMIO_STATUS:
		set_status(d, v);
		break;
	case VIRTIO_MMIO_QUEUE_DESC_LO:
	case VIRTIO_MMIO_QUEUE_DESC_HI:
		if (!locked)
			set_half(&q->desc, off & 4, v);
		break;
	case VIRTIO_MMIO_QUEUE_AVAIL_LO:
	case VIRTIO_MMIO_QUEUE_AVAIL_HI:
		if (!locked)
			set_half(&q->avail, off & 4, v);
		break;
	case VIRTIO_MMIO_QUEUE_USED_LO:
	case VIRTIO_MMIO_QUEUE_USED_HI:
		if (!locked)
			set_half(&q->used, off & 4, v);
		break;
	}
}

static uint32_t reg_read(struct virtio_dev *d, uint64_t off)
{
	struct virtq *q = selected(d);

	switch (off) {
	case VIRTIO_MMIO_MAGIC:
		return VIRTIO_MMIO_MAGIC_VALUE;
	case VIRTIO_MMIO_VERSION:
		return 2;
	case VIRTIO_MMIO_DEVICE_ID:
		return d->ops->device_id;
	case VIRTIO_MMIO_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEV_FEATURES:
		return d->dev_feat_sel > 1
			   ? 0
			   : (uint32_t)(offered(d) >> (32 * d->dev_feat_sel));
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return q ? d->ops->queue_max : 0;
	case VIRTIO_MMIO_QUEUE_READY:
		return q && q->ready;
	case VIRTIO_MMIO_INT_STATUS:
		return d->isr;
	case VIRTIO_MMIO_STATUS:
		return d->status;
	case VIRTIO_MMIO_CONFIG_GEN:
		return d->config_gen;
	}
	return 0;
}

/* Lock held: drop it, then raise the interrupt a used buffer or a
 * config change made due (never under the lock: the IOAPIC's and the
 * fabric's locks come after it). */
static void unlock_and_raise(struct virtio_dev *d)
{
	bool irq = d->irq_due;

	d->irq_due = false;
	pthread_mutex_unlock(&d->lock);
	if (irq) {
		d->st.interrupts++;
		d->irq(d->irq_arg, d->gsi);
	}
}

static void mmio_access(struct io_dev *io, uint64_t off, uint8_t *data,
			unsigned size, bool write)
{
	struct virtio_dev *d = io->priv;

	pthread_mutex_lock(&d->lock);
	if (off >= VIRTIO_MMIO_CONFIG) {
		uint64_t c = off - VIRTIO_MMIO_CONFIG;
		bool in = c < d->config_len && size <= d->config_len - c;

		if (write && in && d->ops->config_write)
			d->ops->config_write(d, c, data, size);
		else if (!write && in)
			memcpy(data, d->config + c, size);
		else if (!write)
			memset(data, 0, size);
	} else if (size != 4 || (off & 3)) {
		/* The spec allows only aligned 32-bit register accesses. */
		if (!write)
			memset(data, 0, size);
	} else if (write) {
		uint32_t v;

		memcpy(&v, data, 4);
		reg_write(d, off, v);
	} else {
		uint32_t v = reg_read(d, off);

		memcpy(data, &v, 4);
	}
	unlock_and_raise(d);
}

bool virtio__each(struct virtio_dev *d, unsigned qi,
		  void (*fn)(struct virtio_dev *d, struct virtq *vq,
			     struct virtq_chain *c))
{
	struct virtq *q = &d->q[qi];
	struct virtq_chain c;
	const char *why;
	int r;

	while (!d->broken && q->ready &&
	       (r = virtq__pop(d->mem, q, &c, &why)) != 0) {
		if (r < 0) {
			virtio__fail(d, why);
			return false;
		}
		fn(d, q, &c);
	}
	return !d->broken;
}

static void *worker(void *arg)
{
	struct virtio_dev *d = arg;
	unsigned nq = d->ops->nr_queues;
	struct pollfd p[VIRTIO_MAX_QUEUES + VIRTIO_DEV_FDS + 1];
	char name[16];

	snprintf(name, sizeof(name), "slos-%.10s", d->name);
	pthread_setname_np(pthread_self(), name);
	for (unsigned i = 0; i < nq; i++)
		p[i] = (struct pollfd){.fd = d->q[i].kick_fd, .events = POLLIN};
	for (unsigned i = 0; i < VIRTIO_DEV_FDS; i++)
		p[nq + i] = (struct pollfd){.fd = d->fds[i], .events = POLLIN};
	p[nq + VIRTIO_DEV_FDS] =
	    (struct pollfd){.fd = d->stop_fd, .events = POLLIN};
	for (;;) {
		uint64_t n;

		if (poll(p, nq + VIRTIO_DEV_FDS + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[nq + VIRTIO_DEV_FDS].revents)
			break;
		pthread_mutex_lock(&d->lock);
		if (atomic_load(&d->halted)) {
			pthread_mutex_unlock(&d->lock);
			break;
		}
		for (unsigned i = 0; i < nq; i++) {
			if (!p[i].revents || read(p[i].fd, &n, 8) != 8)
				continue;
			d->st.notifies++;
			if ((d->status & VIRTIO_S_DRIVER_OK) && !d->broken &&
			    d->q[i].ready)
				d->ops->notify(d, i);
		}
		for (unsigned i = 0; i < VIRTIO_DEV_FDS; i++)
			if (d->fds[i] >= 0 && p[nq + i].revents)
				d->ops->ready_fd(d, i);
		/* A device may have dropped an fd that stays readable (a tap
		 * with no receive buffer to take a frame) or taken it back:
		 * wait on the set as it is now (poll skips -1). */
		for (unsigned i = 0; i < VIRTIO_DEV_FDS; i++)
			p[nq + i].fd = d->fds[i];
		unlock_and_raise(d);
	}
	return NULL;
}

int virtio__init(struct virtio_dev *d, unsigned idx, struct mem *m,
		 void (*irq)(void *arg, unsigned gsi), void *irq_arg)
{
	/* virtio__stop may follow a failure here: no fd of ours is 0. */
	d->stop_fd = -1;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		d->q[i].kick_fd = -1;
	pthread_mutex_init(&d->lock, NULL);
	if (idx >= VIRTIO_MAX_DEVS || d->ops->nr_queues > VIRTIO_MAX_QUEUES ||
	    d->config_len > sizeof(d->config))
		return -EINVAL;
	d->idx = idx;
	d->base = VIRTIO_MMIO_BASE + idx * VIRTIO_MMIO_SIZE;
	d->gsi = VIRTIO_GSI_FIRST + idx;
	d->mem = m;
	d->irq = irq;
	d->irq_arg = irq_arg;
	d->io = (struct io_dev){.name = d->name,
				.base = d->base,
				.len = VIRTIO_MMIO_SIZE,
				.access = mmio_access,
				.priv = d};
	d->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->stop_fd < 0)
		return -errno;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		d->q[i].kick_fd = -1;
		if (i < d->ops->nr_queues) {
			d->q[i].kick_fd =
			    eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
			if (d->q[i].kick_fd < 0)
				return -errno;
		}
	}
	return 0;
}

/* A vCPU's notification then costs no exit to userspace. Optional: the
 * register path does the same without it. */
static void ioeventfds(struct virtio_dev *d, int vm_fd, bool off)
{
	for (unsigned i = 0; i < d->ops->nr_queues; i++) {
		struct kvm_ioeventfd e = {
		    .datamatch = i,
		    .addr = d->base + VIRTIO_MMIO_QUEUE_NOTIFY,
		    .len = 4,
		    .fd = d->q[i].kick_fd,
		    .flags = KVM_IOEVENTFD_FLAG_DATAMATCH |
			     (off ? KVM_IOEVENTFD_FLAG_DEASSIGN : 0),
		};

		if (ioctl(vm_fd, KVM_IOEVENTFD, &e) && !off)
			return;
	}
}

int virtio__start(struct virtio_dev *d, int vm_fd)
{
	int r;

	if (vm_fd >= 0)
		ioeventfds(d, vm_fd, false);
	r = pthread_create(&d->thread, NULL, worker, d);
	if (r)
		return -r;
	d->running = true;
	return 0;
}

static void stop_worker(struct virtio_dev *d)
{
	if (d->running) {
		kick(d->stop_fd);
		pthread_join(d->thread, NULL);
		d->running = false;
	}
}

void virtio__stop(struct virtio_dev *d)
{
	if (!d)
		return;
	stop_worker(d);
	pthread_mutex_lock(&d->lock);
	if (d->ops->reset)
		d->ops->reset(d);
	pthread_mutex_unlock(&d->lock);
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		if (d->q[i].kick_fd >= 0)
			close(d->q[i].kick_fd);
	if (d->stop_fd >= 0)
		close(d->stop_fd);
	if (d->ops->free)
		d->ops->free(d);
}

void virtio__quiesce(struct virtio_dev *d)
{
	stop_worker(d);
	pthread_mutex_lock(&d->lock);
	/* A broken device's I/O in flight must end here too: the new
	 * owner's reset gives its buffers back to the driver. */
	if (d->ops->drain)
		d->ops->drain(d);
	unlock_and_raise(d);
}

/* Little-endian fields, in order; x86 hosts only, so plain copies. */
struct cursor {
	uint8_t *p;
	const uint8_t *q;
	size_t left;
};

static void put(struct cursor *c, uint64_t v, unsigned n)
{
	memcpy(c->p, &v, n);
	c->p += n;
}

static uint64_t get(struct cursor *c, unsigned n)
{
	uint64_t v = 0;

	memcpy(&v, c->q, n);
	c->q += n;
	return v;
}

void virtio__save(struct virtio_dev *d, uint8_t *out)
{
	struct cursor c = {.p = out};

	pthread_mutex_lock(&d->lock);
	put(&c, d->ops->device_id, 4);
	put(&c, d->status, 4);
	put(&c, d->dev_feat_sel, 4);
	put(&c, d->drv_feat_sel, 4);
	put(&c, d->queue_sel, 4);
	put(&c, d->isr, 4);
	put(&c, d->config_gen, 4);
	put(&c, d->drv_features, 8);
	put(&c, d->broken != NULL, 4);
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		const struct virtq *q = &d->q[i];

		put(&c, q->num, 2);
		put(&c, q->ready, 2);
		put(&c, q->desc, 8);
		put(&c, q->avail, 8);
		put(&c, q->used, 8);
		put(&c, q->last_avail, 2);
		put(&c, q->used_idx, 2);
	}
	pthread_mutex_unlock(&d->lock);
}

int virtio__load(struct virtio_dev *d, const uint8_t *in, size_t len,
		 const char **why)
{
	struct cursor c = {.q = in};
	struct virtq q[VIRTIO_MAX_QUEUES];
	uint32_t id, status, dsel, fsel, qsel, isr, gen, broken;
	uint64_t feat;

	if (len != VIRTIO_STATE_SIZE) {
		*why = "device state of the wrong size";
		return -1;
	}
	id = get(&c, 4);
	status = get(&c, 4);
	dsel = get(&c, 4);
	fsel = get(&c, 4);
	qsel = get(&c, 4);
	isr = get(&c, 4);
	gen = get(&c, 4);
	feat = get(&c, 8);
	broken = get(&c, 4);
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		q[i].num = get(&c, 2);
		q[i].ready = get(&c, 2);
		q[i].desc = get(&c, 8);
		q[i].avail = get(&c, 8);
		q[i].used = get(&c, 8);
		q[i].last_avail = get(&c, 2);
		q[i].used_idx = get(&c, 2);
		q[i].kick_fd = d->q[i].kick_fd;
		if (q[i].ready &&
		    (i >= d->ops->nr_queues || q[i].num > d->ops->queue_max ||
		     !virtq__valid(d->mem, &q[i]))) {
			*why = "device state with a bad queue";
			return -1;
		}
	}
	/* What the transport itself would never reach is refused, so the
	 * new host holds the invariants the old one kept. Before
	 * FEATURES_OK the driver's word may hold anything. */
	if (id != d->ops->device_id || status > 0xff || isr > 3 || broken > 1 ||
	    (broken && !(status & VIRTIO_S_NEEDS_RESET)) ||
	    ((status & VIRTIO_S_DRIVER_OK) &&
	     !(status & VIRTIO_S_FEATURES_OK)) ||
	    ((status & VIRTIO_S_FEATURES_OK) &&
	     ((feat & ~offered(d)) || !(feat & VIRTIO_F_VERSION_1)))) {
		*why = "device state that does not fit the device";
		return -1;
	}
	pthread_mutex_lock(&d->lock);
	d->status = status;
	d->dev_feat_sel = dsel;
	d->drv_feat_sel = fsel;
	d->queue_sel = qsel;
	d->isr = isr;
	d->config_gen = gen;
	d->drv_features = feat;
	d->broken = broken ? "broken before it moved" : NULL;
	memcpy(d->q, q, sizeof(q));
	/* What DRIVER_OK set up on the old host (net: the tap's
	 * offloads) is set up here too. */
	if ((status & VIRTIO_S_DRIVER_OK) && d->ops->start)
		d->ops->start(d);
	pthread_mutex_unlock(&d->lock);
	/* A notification may have reached the old host after it stopped. */
	for (unsigned i = 0; i < d->ops->nr_queues; i++)
		if (q[i].ready)
			kick(q[i].kick_fd);
	return 0;
}

void virtio__unplug_notify(struct virtio_dev *d, int vm_fd)
{
	if (vm_fd >= 0)
		ioeventfds(d, vm_fd, true);
}
