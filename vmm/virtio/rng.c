// SPDX-License-Identifier: MIT
/* virtio-rng (virtio 1.2 5.4): the host's getrandom(2) into every buffer
 * the driver offers, at most RNG_MAX bytes a request. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

#include "vmm/virtio/virtio.h"

#define RNG_MAX 4096

static void fill(struct virtio_dev *d, struct virtq *q, struct virtq_chain *c)
{
	uint8_t buf[RNG_MAX];
	size_t want = c->in_len < RNG_MAX ? c->in_len : RNG_MAX;
	ssize_t n = getrandom(buf, want, 0);

	if (n < 0)
		n = 0;
	n = virtq__write(c, 0, buf, n);
	d->st.bytes_in += n;
	virtq__push(d, q, c->head, n);
}

static void notify(struct virtio_dev *d, unsigned q)
{
	virtio__each(d, q, fill);
}

static void rng_free(struct virtio_dev *d)
{
	free(d);
}

static const struct virtio_ops rng_ops = {
    .device_id = VIRTIO_ID_RNG,
    .nr_queues = 1,
    .queue_max = 64,
    .notify = notify,
    .free = rng_free,
};

struct virtio_dev *virtio__rng_new(char *why, size_t len)
{
	struct virtio_dev *d = calloc(1, sizeof(*d));

	if (!d) {
		snprintf(why, len, "out of memory");
		return NULL;
	}
	d->ops = &rng_ops;
	d->fds[0] = d->fds[1] = -1;
	return d;
}
