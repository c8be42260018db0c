// SPDX-License-Identifier: MIT
/*
 * virtio-console (virtio 1.2 5.3), one port, no multiport: what the guest
 * writes to hvc0 goes to out_fd; what the host types (virtio__console_in)
 * waits in a small buffer until the driver offers receive buffers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/virtio/virtio.h"

#define RXQ    0
#define TXQ    1
#define IN_BUF 4096

struct vcon {
	struct virtio_dev dev;
	int out_fd, efd;
	uint8_t in[IN_BUF];
	size_t in_len;
};

static struct vcon *to_con(struct virtio_dev *d)
{
	return (struct vcon *)d;
}

static void put(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* the reader went away: output is dropped */
		p += w;
		n -= w;
	}
}

static void tx(struct virtio_dev *d, struct virtq *q, struct virtq_chain *c)
{
	struct vcon *v = to_con(d);

	for (unsigned i = 0; i < c->nr_out; i++)
		put(v->out_fd, c->iov[i].iov_base, c->iov[i].iov_len);
	d->st.bytes_out += c->out_len;
	virtq__push(d, q, c->head, 0);
}

static void rx(struct virtio_dev *d)
{
	struct vcon *v = to_con(d);
	struct virtq *q = &d->q[RXQ];
	struct virtq_chain c;
	const char *why;

	while (v->in_len && q->ready && !d->broken &&
	       (d->status & VIRTIO_S_DRIVER_OK)) {
		int r = virtq__pop(d->mem, q, &c, &why);

		if (r < 0) {
			virtio__fail(d, why);
			return;
		}
		if (!r)
			return;
		size_t n = virtq__write(&c, 0, v->in, v->in_len);

		memmove(v->in, v->in + n, v->in_len - n);
		v->in_len -= n;
		d->st.bytes_in += n;
		virtq__push(d, q, c.head, n);
	}
}

static void notify(struct virtio_dev *d, unsigned q)
{
	if (q == TXQ)
		virtio__each(d, q, tx);
	else
		rx(d);
}

static void ready_fd(struct virtio_dev *d, unsigned i)
{
	uint64_t n;

	if (read(to_con(d)->efd, &n, sizeof(n)) < 0)
		(void)0;
	rx(d);
}

size_t virtio__console_in(struct virtio_dev *d, const uint8_t *buf, size_t len)
{
	struct vcon *v = to_con(d);
	uint64_t one = 1;
	size_t n;

	pthread_mutex_lock(&d->lock);
	n = IN_BUF - v->in_len < len ? IN_BUF - v->in_len : len;
	memcpy(v->in + v->in_len, buf, n);
	v->in_len += n;
	pthread_mutex_unlock(&d->lock);
	if (n && write(v->efd, &one, sizeof(one)) < 0)
		(void)0;
	return n;
}

size_t virtio__console_space(struct virtio_dev *d)
{
	size_t n;

	pthread_mutex_lock(&d->lock);
	n = IN_BUF - to_con(d)->in_len;
	pthread_mutex_unlock(&d->lock);
	return n;
}

static void con_free(struct virtio_dev *d)
{
	struct vcon *v = to_con(d);

	if (v->efd >= 0)
		close(v->efd);
	free(v);
}

static const struct virtio_ops con_ops = {
    .device_id = VIRTIO_ID_CONSOLE,
    .nr_queues = 2,
    .queue_max = 64,
    .notify = notify,
    .ready_fd = ready_fd,
    .free = con_free,
};

struct virtio_dev *virtio__console_new(int out_fd, char *why, size_t len)
{
	struct vcon *v = calloc(1, sizeof(*v));

	if (!v) {
		snprintf(why, len, "out of memory");
		return NULL;
	}
	v->dev.ops = &con_ops;
	v->out_fd = out_fd;
	v->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (v->efd < 0) {
		snprintf(why, len, "virtio console: %s", strerror(errno));
		free(v);
		return NULL;
	}
	v->dev.fds[0] = v->efd;
	v->dev.fds[1] = -1;
	return &v->dev;
}
