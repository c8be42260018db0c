// SPDX-License-Identifier: MIT
/*
 * Each host performs the port and MMIO accesses other hosts forward to it
 * (CL_IO: host 0 for its UART and devices, a member for the virtio devices
 * it owns), and its device moves, on a thread of its own, never on a
 * connection's thread: a device's handler
 * may wait for its lock while the device's worker, holding it, waits for
 * a guest page, and that page arrives on a connection's thread. One
 * thread keeps the accesses in the order they came.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/cluster_priv.h"

/* Each vCPU has one access in flight; and a device move or so. */
#define IOQ_LEN (VM_MAX_VCPUS + 8)

struct io_req {
	uint8_t from;
	/* Device jobs: msg[0] the device, msg[1] its new host; a take's
	 * state (malloc'd, freed here). */
	bool move, take;
	uint8_t *state;
	uint8_t msg[24];
};

struct io_fwd {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct io_req q[IOQ_LEN];
	unsigned head, len;
	bool stop;
};

static void perform(struct cluster *cl, const struct io_req *r)
{
	const uint8_t *p = r->msg;
	bool mmio = p[4], wr = p[6];
	uint8_t data[8], out[12];

	memcpy(data, p + 16, 8);
	io__access(mmio ? &cl->vm->mmio : &cl->vm->pio, cl_get64(p + 8), data,
		   p[5], wr);
	memcpy(out, p, 4);
	memcpy(out + 4, data, 8);
	cluster_send(cl, r->from, CL_IO_DONE, out, sizeof(out));
}

static void *forwarder(void *arg)
{
	struct cluster *cl = arg;
	struct io_fwd *f = cl->iofwd;

	pthread_setname_np(pthread_self(), "slos-io-fwd");
	pthread_mutex_lock(&f->lock);
	for (;;) {
		while (!f->len && !f->stop)
			pthread_cond_wait(&f->cv, &f->lock);
		if (f->stop)
			break;
		struct io_req r = f->q[f->head];

		f->head = (f->head + 1) % IOQ_LEN;
		f->len--;
		pthread_mutex_unlock(&f->lock);
		if (r.move)
			cluster_dev_move_out(cl, r.msg[0], r.msg[1]);
		else if (r.take)
			cluster_dev_take(cl, r.msg[0], r.state);
		else
			perform(cl, &r);
		free(r.state);
		pthread_mutex_lock(&f->lock);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

int cluster_io_start(struct cluster *cl)
{
	struct io_fwd *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cv, NULL);
	cl->iofwd = f;
	if (pthread_create(&f->thread, NULL, forwarder, cl)) {
		cl->iofwd = NULL;
		free(f);
		return -1;
	}
	return 0;
}

static bool enqueue(struct cluster *cl, const struct io_req *req)
{
	struct io_fwd *f = cl->iofwd;
	bool ok;

	if (!f)
		return false;
	pthread_mutex_lock(&f->lock);
	ok = f->len < IOQ_LEN;
	if (ok) {
		f->q[(f->head + f->len) % IOQ_LEN] = *req;
		f->len++;
		pthread_cond_signal(&f->cv);
	}
	pthread_mutex_unlock(&f->lock);
	return ok;
}

bool cluster_io_queue_move(struct cluster *cl, unsigned idx, unsigned to)
{
	struct io_req r = {.move = true, .msg = {idx, to}};

	return enqueue(cl, &r);
}

bool cluster_io_queue_take(struct cluster *cl, unsigned idx,
			   const uint8_t *state)
{
	struct io_req r = {.take = true, .msg = {idx}};

	r.state = malloc(VIRTIO_STATE_SIZE);
	if (!r.state)
		return false;
	memcpy(r.state, state, VIRTIO_STATE_SIZE);
	if (enqueue(cl, &r))
		return true;
	free(r.state);
	return false;
}

bool cluster_io_queue(struct cluster *cl, unsigned from, const uint8_t *msg)
{
	struct io_req r = {.from = from};

	memcpy(r.msg, msg, sizeof(r.msg));
	return enqueue(cl, &r);
}

/* After the fault engine has stopped: an access blocked on a device that
 * waits for a page is let go by then. */
void cluster_io_stop(struct cluster *cl)
{
	struct io_fwd *f = cl->iofwd;

	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	f->stop = true;
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->lock);
	pthread_join(f->thread, NULL);
	free(f);
	cl->iofwd = NULL;
}
