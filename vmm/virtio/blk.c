// SPDX-License-Identifier: MIT
/*
 * virtio-blk (virtio 1.2 5.2) on a raw image, its I/O through io_uring.
 * Reads and writes go straight between the file and guest RAM, buffered
 * (no O_DIRECT): a direct transfer would pin guest pages and bypass the
 * page tables the DSM write-protects, so a page could change hands in
 * the middle of it. A flush is an fsync of the image, done after the
 * writes the driver saw complete, so a flushed write survives the VMM's
 * death.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/virtio/virtio.h"

#define BLK_F_SEG_MAX  (1ULL << 2)
#define BLK_F_RO       (1ULL << 5)
#define BLK_F_BLK_SIZE (1ULL << 6)
#define BLK_F_FLUSH    (1ULL << 9)

#define T_IN	 0
#define T_OUT	 1
#define T_FLUSH	 4
#define T_GET_ID 8

#define S_OK	 0
#define S_IOERR	 1
#define S_UNSUPP 2

#define SECTOR	  512
#define QUEUE_MAX 128
#define HDR_LEN	  16
#define ID_LEN	  20

struct req {
	uint16_t head;
	uint8_t *status;
	uint32_t want; /* bytes the operation must move */
	uint32_t used; /* bytes written into the request's in part */
	bool read;
	struct iovec iov[VIRTQ_MAX_SEGS];
};

struct blk {
	struct virtio_dev dev;
	struct io_uring ring;
	bool ring_ok;
	int fd, efd;
	bool ro;
	uint64_t sectors;
	unsigned inflight;
	struct req reqs[QUEUE_MAX];
	uint16_t free[QUEUE_MAX];
	unsigned nr_free;
};

static struct blk *to_blk(struct virtio_dev *d)
{
	return (struct blk *)d;
}

/* The iovecs of bytes [off, off+len) of src[0, n). */
static unsigned slice(const struct iovec *src, unsigned n, size_t off,
		      size_t len, struct iovec *dst)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n && len; i++) {
		size_t l = src[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		size_t t = l - off < len ? l - off : len;

		dst[k++] = (struct iovec){(uint8_t *)src[i].iov_base + off, t};
		len -= t;
		off = 0;
	}
	return k;
}

static void finish(struct virtio_dev *d, struct req *r, uint8_t status)
{
	struct blk *b = to_blk(d);

	*r->status = status;
	if (status != S_OK)
		d->st.errors++;
	virtq__push(d, &d->q[0], r->head, r->used);
	b->free[b->nr_free++] = r - b->reqs;
}

/* The last byte the driver gave to be written is the status. */
static uint8_t *status_byte(const struct virtq_chain *c)
{
	const struct iovec *last = &c->iov[c->nr_out + c->nr_in - 1];

	return (uint8_t *)last->iov_base + last->iov_len - 1;
}

static void submit(struct virtio_dev *d, struct virtq *q, struct virtq_chain *c)
{
	struct blk *b = to_blk(d);
	uint8_t hdr[HDR_LEN];
	uint32_t type;
	uint64_t sector, len;
	struct io_uring_sqe *sqe;
	struct req *r;
	unsigned n;

	if (!c->nr_in || virtq__read(c, 0, hdr, HDR_LEN) != HDR_LEN) {
		/* Nowhere to put a status: give the buffers back. */
		d->st.errors++;
		virtq__push(d, q, c->head, 0);
		return;
	}
	if (!b->nr_free) {
		virtio__fail(d, "more requests than the queue holds");
		return;
	}
	r = &b->reqs[b->free[--b->nr_free]];
	memset(r, 0, offsetof(struct req, iov));
	r->head = c->head;
	r->status = status_byte(c);
	r->used = 1;
	memcpy(&type, hdr, 4);
	memcpy(&sector, hdr + 8, 8);
	switch (type) {
	case T_IN:
	case T_OUT:
		r->read = type == T_IN;
		len = r->read ? c->in_len - 1 : c->out_len - HDR_LEN;
		if (len % SECTOR || sector > b->sectors ||
		    len / SECTOR > b->sectors - sector || len > UINT32_MAX ||
		    (!r->read && b->ro)) {
			finish(d, r, S_IOERR);
			return;
		}
		if (!len) {
			finish(d, r, S_OK);
			return;
		}
		n = r->read
			? slice(c->iov + c->nr_out, c->nr_in, 0, len, r->iov)
			: slice(c->iov, c->nr_out, HDR_LEN, len, r->iov);
		r->want = len;
		if (r->read)
			r->used += len;
		sqe = io_uring_get_sqe(&b->ring);
		if (r->read)
			io_uring_prep_readv(sqe, b->fd, r->iov, n,
					    sector * SECTOR);
		else
			io_uring_prep_writev(sqe, b->fd, r->iov, n,
					     sector * SECTOR);
		break;
	case T_FLUSH:
		sqe = io_uring_get_sqe(&b->ring);
		io_uring_prep_fsync(sqe, b->fd, 0);
		break;
	case T_GET_ID: {
		char id[ID_LEN + 1] = {0};

		snprintf(id, sizeof(id), "slos-%s", d->name);
		r->used += virtq__write(
		    c, 0, id, c->in_len - 1 < ID_LEN ? c->in_len - 1 : ID_LEN);
		finish(d, r, S_OK);
		return;
	}
	default:
		finish(d, r, S_UNSUPP);
		return;
	}
	io_uring_sqe_set_data(sqe, r);
	b->inflight++;
}

static void reap(struct virtio_dev *d, bool wait)
{
	struct blk *b = to_blk(d);
	struct io_uring_cqe *cqe;

	while (b->inflight) {
		int e = wait ? io_uring_wait_cqe(&b->ring, &cqe)
			     : io_uring_peek_cqe(&b->ring, &cqe);

		if (e == -EINTR)
			continue;
		if (e)
			break;
		struct req *r = io_uring_cqe_get_data(cqe);
		bool ok = cqe->res >= 0 && (uint32_t)cqe->res == r->want;

		io_uring_cqe_seen(&b->ring, cqe);
		b->inflight--;
		if (r->read)
			d->st.bytes_in += r->want;
		else
			d->st.bytes_out += r->want;
		finish(d, r, ok ? S_OK : S_IOERR);
	}
}

static void notify(struct virtio_dev *d, unsigned q)
{
	struct blk *b = to_blk(d);

	virtio__each(d, q, submit);
	if (io_uring_sq_ready(&b->ring))
		io_uring_submit(&b->ring);
}

static void ready_fd(struct virtio_dev *d, unsigned i)
{
	struct blk *b = to_blk(d);
	uint64_t n;

	if (read(b->efd, &n, sizeof(n)) < 0)
		(void)0; /* nonblocking: nothing to clear */
	reap(d, false);
}

/* The driver's reset: the requests in flight finish into guest RAM the
 * driver has given up, so their completions are waited for but their
 * status is not published (the rings are gone). */
static void blk_reset(struct virtio_dev *d)
{
	struct blk *b = to_blk(d);

	if (!b->ring_ok)
		return;
	if (io_uring_sq_ready(&b->ring))
		io_uring_submit(&b->ring);
	d->q[0].ready = false;
	while (b->inflight) {
		struct io_uring_cqe *cqe;
		int e = io_uring_wait_cqe(&b->ring, &cqe);

		if (e == -EINTR)
			continue;
		if (e)
			break; /* the ring itself failed: nothing to wait for */
		io_uring_cqe_seen(&b->ring, cqe);
		b->inflight--;
	}
	b->nr_free = 0;
	for (unsigned i = 0; i < QUEUE_MAX; i++)
		b->free[b->nr_free++] = i;
}

static void blk_free(struct virtio_dev *d)
{
	struct blk *b = to_blk(d);

	if (b->ring_ok)
		io_uring_queue_exit(&b->ring);
	if (b->efd >= 0)
		close(b->efd);
	if (b->fd >= 0)
		close(b->fd);
	free(b);
}

static void drain(struct virtio_dev *d)
{
	struct blk *b = to_blk(d);

	if (io_uring_sq_ready(&b->ring))
		io_uring_submit(&b->ring);
	reap(d, true);
	/* The next owner may see the image through another page cache
	 * (a shared file system): what was written is on disk first. */
	if (fdatasync(b->fd) && errno != EINVAL)
		fprintf(stderr, "slos: virtio %s: fdatasync: %s\n", d->name,
			strerror(errno));
}

static const struct virtio_ops blk_ops = {
    .device_id = VIRTIO_ID_BLK,
    .features = BLK_F_SEG_MAX | BLK_F_BLK_SIZE | BLK_F_FLUSH,
    .nr_queues = 1,
    .queue_max = QUEUE_MAX,
    .notify = notify,
    .ready_fd = ready_fd,
    .reset = blk_reset,
    .drain = drain,
    .free = blk_free,
};

static const struct virtio_ops blk_ro_ops = {
    .device_id = VIRTIO_ID_BLK,
    .features = BLK_F_SEG_MAX | BLK_F_BLK_SIZE | BLK_F_FLUSH | BLK_F_RO,
    .nr_queues = 1,
    .queue_max = QUEUE_MAX,
    .notify = notify,
    .ready_fd = ready_fd,
    .reset = blk_reset,
    .drain = drain,
    .free = blk_free,
};

struct virtio_dev *virtio__blk_new(const struct virtio_spec *s, char *why,
				   size_t len)
{
	struct blk *b = calloc(1, sizeof(*b));
	struct stat st;
	uint32_t v;
	int e;

	if (!b) {
		snprintf(why, len, "out of memory");
		return NULL;
	}
	b->efd = -1;
	b->ro = s->ro;
	b->dev.ops = s->ro ? &blk_ro_ops : &blk_ops;
	b->dev.priv = b;
	b->fd = open(s->path, (s->ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (b->fd < 0) {
		snprintf(why, len, "--disk %s: %s", s->path, strerror(errno));
		goto fail;
	}
	if (fstat(b->fd, &st) || !S_ISREG(st.st_mode)) {
		snprintf(why, len, "--disk %s: not a regular file", s->path);
		goto fail;
	}
	if (st.st_size % SECTOR || !st.st_size) {
		snprintf(why, len,
			 "--disk %s: %lld bytes, not a non-zero multiple of "
			 "512",
			 s->path, (long long)st.st_size);
		goto fail;
	}
	b->sectors = st.st_size / SECTOR;
	e = io_uring_queue_init(QUEUE_MAX, &b->ring, 0);
	if (e) {
		snprintf(why, len, "--disk %s: io_uring: %s", s->path,
			 strerror(-e));
		goto fail;
	}
	b->ring_ok = true;
	b->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->efd < 0 || io_uring_register_eventfd(&b->ring, b->efd)) {
		snprintf(why, len, "--disk %s: io_uring eventfd: %s", s->path,
			 strerror(errno));
		goto fail;
	}
	b->dev.fds[0] = b->efd;
	b->dev.fds[1] = -1;
	for (unsigned i = 0; i < QUEUE_MAX; i++)
		b->free[b->nr_free++] = i;
	/* Config: capacity, seg_max, blk_size (virtio 1.2 5.2.4). */
	memcpy(b->dev.config, &b->sectors, 8);
	v = VIRTQ_MAX_SEGS - 2; /* less the header and the status */
	memcpy(b->dev.config + 12, &v, 4);
	v = SECTOR;
	memcpy(b->dev.config + 20, &v, 4);
	b->dev.config_len = 24;
	return &b->dev;
fail:
	blk_free(&b->dev);
	return NULL;
}
