// SPDX-License-Identifier: MIT
/*
 * Split virtqueues (virtio 1.2 2.7) in guest RAM. The driver can change
 * any byte of the rings at any time, so each index is read once into a
 * local and checked before use, and a chain is walked with a step bound.
 */
#include <stddef.h>
#include <string.h>

#include "vmm/virtio/virtio.h"

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

static uint16_t load16(const void *p)
{
	return __atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE);
}

bool virtq__valid(const struct mem *m, const struct virtq *q)
{
	uint64_t n = q->num;

	return n && n <= VIRTQ_MAX_SIZE && !(n & (n - 1)) && !(q->desc & 15) &&
	       !(q->avail & 1) && !(q->used & 3) &&
	       mem__ptr(m, q->desc, 16 * n) &&
	       mem__ptr(m, q->avail, 6 + 2 * n) &&
	       mem__ptr(m, q->used, 6 + 8 * n);
}

int virtq__pop(struct mem *m, struct virtq *q, struct virtq_chain *c,
	       const char **why)
{
	const uint8_t *avail = mem__ptr(m, q->avail, 6 + 2 * q->num);
	const struct desc *tab = mem__ptr(m, q->desc, 16 * q->num);
	uint16_t idx, head, i;
	unsigned steps = 0;
	bool in = false;

	if (!q->ready || !avail || !tab) {
		*why = "queue not ready";
		return -1;
	}
	idx = load16(avail + 2);
	if (idx == q->last_avail)
		return 0;
	if ((uint16_t)(idx - q->last_avail) > q->num) {
		*why = "available index ran more than a queue ahead";
		return -1;
	}
	head = load16(avail + 4 + 2 * (q->last_avail & (q->num - 1)));
	if (head >= q->num) {
		*why = "available ring names a descriptor past the queue";
		return -1;
	}
	memset(c, 0, offsetof(struct virtq_chain, iov));
	c->head = head;
	for (i = head;;) {
		struct desc d;

		/* One copy: the driver may rewrite the entry meanwhile. */
		memcpy(&d, &tab[i], sizeof(d));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (++steps > q->num) {
			*why = "descriptor chain loops or outruns the queue";
			return -1;
		}
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			*why = "indirect descriptor (not negotiated)";
			return -1;
		}
		if (d.flags & VIRTQ_DESC_F_WRITE)
			in = true;
		else if (in) {
			*why = "readable descriptor after a writable one";
			return -1;
		}
		if (d.len) {
			void *p = mem__ptr(m, d.addr, d.len);
			unsigned n = c->nr_out + c->nr_in;

			if (!p) {
				*why = "descriptor buffer outside guest RAM";
				return -1;
			}
			if (n == VIRTQ_MAX_SEGS) {
				*why = "request has too many segments";
				return -1;
			}
			c->iov[n] = (struct iovec){p, d.len};
			if (in) {
				c->nr_in++;
				c->in_len += d.len;
			} else {
				c->nr_out++;
				c->out_len += d.len;
			}
		}
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		if (d.next >= q->num) {
			*why = "descriptor chain points past the queue";
			return -1;
		}
		i = d.next;
	}
	q->last_avail++;
	return 1;
}

void virtq__push_n(struct virtio_dev *d, struct virtq *q, const uint16_t *heads,
		   const uint32_t *lens, unsigned n)
{
	uint8_t *used;
	const uint8_t *avail;

	/* A completion can outlive the queue being ready (blk's I/O in
	 * flight), and while it is not the driver may set any size and
	 * rings: num 0 would make the index mask 0xffff, an odd ring a
	 * misaligned store. Publish only to rings that still pass the
	 * checks the queue was readied with. */
	if (!n || !virtq__valid(d->mem, q))
		return;
	used = mem__ptr(d->mem, q->used, 6 + 8 * q->num);
	avail = mem__ptr(d->mem, q->avail, 6 + 2 * q->num);
	for (unsigned i = 0; i < n; i++) {
		uint8_t *e = used + 4 + 8 * (q->used_idx & (q->num - 1));

		memcpy(e, &(uint32_t){heads[i]}, 4);
		memcpy(e + 4, &lens[i], 4);
		q->used_idx++;
	}
	/* The entries are visible before the index that publishes them. */
	__atomic_store_n((uint16_t *)(used + 2), q->used_idx, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!(load16(avail) & VIRTQ_AVAIL_F_NO_INTERRUPT)) {
		d->isr |= VIRTIO_INT_USED;
		d->irq_due = true;
	}
	d->st.requests += n;
}

void virtq__push(struct virtio_dev *d, struct virtq *q, uint16_t head,
		 uint32_t len)
{
	virtq__push_n(d, q, &head, &len, 1);
}

void virtq__unpop(struct virtq *q, unsigned n)
{
	q->last_avail -= n;
}

static size_t copy(const struct iovec *iov, unsigned n, size_t off,
		   uint8_t *buf, size_t len, bool to_iov)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		size_t k = l - off < len - done ? l - off : len - done;
		uint8_t *p = (uint8_t *)iov[i].iov_base + off;

		if (to_iov)
			memcpy(p, buf + done, k);
		else
			memcpy(buf + done, p, k);
		done += k;
		off = 0;
	}
	return done;
}

size_t virtq__read(const struct virtq_chain *c, size_t off, void *buf,
		   size_t len)
{
	return copy(c->iov, c->nr_out, off, buf, len, false);
}

size_t virtq__write(const struct virtq_chain *c, size_t off, const void *buf,
		    size_t len)
{
	return copy(c->iov + c->nr_out, c->nr_in, off, (uint8_t *)buf, len,
		    true);
}
