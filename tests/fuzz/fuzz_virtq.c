// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the virtio code a guest drives: split virtqueues
 * (vmm/virtio/queue.c) and the virtio-mmio transport with its devices
 * (mmio.c, rng.c, console.c, blk.c). Every ring, descriptor, index and
 * register value is the driver's, and a driver may be hostile: it must
 * only ever break its own device (DEVICE_NEEDS_RESET), never make the
 * VMM touch host memory outside guest RAM, crash or spin.
 *
 * Guest RAM is RAM_SIZE bytes between two large PROT_NONE reservations,
 * so any access outside it faults at once (ASan does not watch mmap'd
 * memory, but the guard pages do). RAM is small so that the addresses
 * the input picks land in it often.
 *
 * The input (tests/fuzz/virtq_ops.h has its layout) picks a target:
 *   VQ_QUEUE  one queue driven directly: setup and ready as the
 *             transport allows them, pop, push, read, write;
 *   VQ_RNG, VQ_CONSOLE, VQ_BLK (over a small image on tmpfs): MMIO
 *             register accesses through the device's io_dev, and the
 *             worker's loop run synchronously on this thread;
 *   VQ_PARSE  virtio__parse_disk / virtio__parse_net;
 * then a sequence of operations (reads past the end give zeros). The
 * driver's operations (descriptors, avail ring, raw bytes) are the same
 * for every device. Invariants are checked after every operation.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/fuzz/virtq_ops.h"
#include "vmm/virtio/virtio.h"

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c)) {                                                    \
			fprintf(stderr, "fuzz_virtq:%d: %s\n", __LINE__, #c);  \
			__builtin_trap();                                      \
		}                                                              \
	} while (0)

#define RAM_SIZE    VQ_RAM_SIZE
#define GUARD_BELOW (1ULL << 30)
/* Covers every 32-bit guest-physical address past RAM. */
#define GUARD_ABOVE (4ULL << 30)
#define IMG_SIZE    (64 * 1024)
#define NCHAINS	    4

struct in {
	const uint8_t *p;
	size_t n;
};

static uint8_t u8(struct in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static uint16_t u16(struct in *in)
{
	uint16_t lo = u8(in);

	return lo | (uint16_t)u8(in) << 8;
}

static uint32_t u32(struct in *in)
{
	uint32_t lo = u16(in);

	return lo | (uint32_t)u16(in) << 16;
}

static uint8_t *ram;
static struct mem mem;

/* A guest-physical address: mostly inside RAM, some straddling its end,
 * some wild. Bit 7 of the tag keeps a ring address unaligned. */
static uint64_t gpa(struct in *in, uint64_t align)
{
	uint8_t t = u8(in);
	uint64_t v = u16(in), a;
	static const uint64_t wild[8] = {
	    ~0ULL,	MEM_HOLE_START,	  MEM_4G,	  1ULL << 48,
	    1ULL << 63, ~0ULL - RAM_SIZE, RAM_SIZE << 16, 0xffffffffULL,
	};

	switch (t & 7) {
	case 5:
		a = RAM_SIZE - (v & 0x3ff);
		break;
	case 6:
		a = RAM_SIZE + v;
		break;
	case 7:
		/* ~0 - v and friends: wraps past the end of the space */
		a = (t >> 3) & 1 ? wild[(t >> 4) & 7] - v
				 : wild[(t >> 4) & 7] + v;
		break;
	default:
		a = v % RAM_SIZE;
	}
	return t & 0x80 ? a : a & ~(align - 1);
}

/* A descriptor length: mostly small, sometimes huge. */
static uint32_t dlen(struct in *in)
{
	static const uint32_t huge[16] = {0xffffffff,
					  0x80000000,
					  RAM_SIZE,
					  RAM_SIZE + 1,
					  RAM_SIZE - 1,
					  0xfffffff0,
					  0x10000000,
					  0x7fffffff,
					  1,
					  16,
					  512,
					  513,
					  4096,
					  4097,
					  0,
					  2};
	uint16_t v = u16(in);

	return v >= 0xfff0 ? huge[v & 15] : v;
}

static void *at(uint64_t g, uint64_t len)
{
	return mem__ptr(&mem, g, len);
}

static void put16(uint64_t g, uint16_t v)
{
	void *p = at(g, 2);

	if (p)
		memcpy(p, &v, 2);
}

static uint16_t get16(uint64_t g)
{
	uint16_t v = 0;
	void *p = at(g, 2);

	if (p)
		memcpy(&v, p, 2);
	return v;
}

/* ---- the driver: writes what a guest writes into its rings ---- */

static bool driver_op(struct in *in, unsigned op, struct virtq *qs, unsigned nq)
{
	struct virtq *q;

	if (op >= NR_DRIVER_OPS)
		return false;
	q = &qs[u8(in) % nq];
	switch (op) {
	case D_DESC: {
		uint8_t i = u8(in);
		uint64_t a = gpa(in, 1);
		uint32_t l = dlen(in);
		uint16_t f = u8(in), nx = u8(in);
		uint8_t *p = at(q->desc + 16ULL * i, 16);

		if (p) {
			memcpy(p, &a, 8);
			memcpy(p + 8, &l, 4);
			memcpy(p + 12, &f, 2);
			memcpy(p + 14, &nx, 2);
		}
		return true;
	}
	case D_AVAIL: {
		uint8_t s = u8(in);

		put16(q->avail + 4 + 2ULL * s, u16(in));
		return true;
	}
	case D_PUBLISH: {
		uint8_t v = u8(in);
		uint16_t idx = get16(q->avail + 2);

		put16(q->avail + 2, v & 0x80 ? u16(in) : idx + v);
		return true;
	}
	case D_FLAGS:
		put16(q->avail, u16(in));
		return true;
	case D_POKE: {
		uint64_t g = u16(in) % RAM_SIZE;
		unsigned n = u8(in) % 64;
		uint8_t *p = at(g, n);

		for (unsigned k = 0; k < n; k++) {
			uint8_t b = u8(in);

			if (p)
				p[k] = b;
		}
		return true;
	}
	case D_CHAIN: {
		/* A well-formed request (if the queue is), so the devices'
		 * own parsing gets reached: segs descriptors from head on,
		 * outs readable ones first, buffers back to back from addr;
		 * hdr bit 7 makes it blk's: a 16-byte header (type, sector)
		 * first, a 1-byte status last. */
		unsigned num = q->num ? q->num : 1;
		uint16_t head = u8(in) % num, i = head;
		unsigned segs = 1 + u8(in) % 8, outs = u8(in) % (segs + 1);
		uint64_t a = gpa(in, 1);
		uint32_t sl = 1 + u16(in) % 4096;
		uint8_t hdr = u8(in), sector = u8(in);

		if (hdr & 0x80) {
			uint8_t *h = at(a, 16);

			if (h) {
				memset(h, 0, 16);
				h[0] = hdr & 0xf;
				h[8] = sector;
			}
		}
		for (unsigned k = 0; k < segs; k++) {
			uint16_t nx = (i + 1) % num;
			uint16_t f = (k + 1 < segs ? VIRTQ_DESC_F_NEXT : 0) |
				     (k >= outs ? VIRTQ_DESC_F_WRITE : 0);
			uint32_t l = sl;

			if (hdr & 0x80 && !k)
				l = 16;
			else if (hdr & 0x80 && k + 1 == segs && k >= outs)
				l = 1; /* the status byte */
			uint8_t *p = at(q->desc + 16ULL * i, 16);

			if (p) {
				memcpy(p, &a, 8);
				memcpy(p + 8, &l, 4);
				memcpy(p + 12, &f, 2);
				memcpy(p + 14, &nx, 2);
			}
			a += l;
			i = nx;
		}
		uint16_t idx = get16(q->avail + 2);

		put16(q->avail + 4 + 2ULL * (idx % num), head);
		put16(q->avail + 2, idx + 1);
		return true;
	}
	}
	return false;
}

/* ---- target 0: one queue, driven directly ---- */

static struct virtq_chain chains[NCHAINS];
static bool have[NCHAINS];

static bool in_ram(const void *p, size_t len)
{
	const uint8_t *b = p;

	return b >= ram && len <= RAM_SIZE && b - ram <= (long)(RAM_SIZE - len);
}

static void check_chain(const struct virtq *q, const struct virtq_chain *c)
{
	uint64_t out = 0, in = 0;

	CHECK(c->head < q->num);
	CHECK(c->nr_out + c->nr_in <= VIRTQ_MAX_SEGS);
	for (unsigned k = 0; k < c->nr_out + c->nr_in; k++) {
		CHECK(c->iov[k].iov_len);
		CHECK(in_ram(c->iov[k].iov_base, c->iov[k].iov_len));
		*(k < c->nr_out ? &out : &in) += c->iov[k].iov_len;
	}
	CHECK(out == c->out_len && in == c->in_len);
}

static size_t expect(uint64_t total, size_t off, size_t len)
{
	uint64_t left = total > off ? total - off : 0;

	return left < len ? left : len;
}

static void queue_target(struct in *in)
{
	static uint8_t buf[RAM_SIZE];
	static struct virtio_dev d;
	struct virtq q = {.kick_fd = -1};

	memset(&d, 0, sizeof(d));
	d.mem = &mem;
	memset(have, 0, sizeof(have));
	while (in->n) {
		unsigned op = u8(in) % NR_QUEUE_OPS;

		if (driver_op(in, op, &q, 1))
			continue;
		switch (op) {
		case Q_SETUP: {
			uint8_t s = u8(in);

			/* The transport keeps the rings while ready. */
			if (q.ready)
				break;
			q.num = s & 0x80 ? u16(in) : 1 << ((s & 15) % 9);
			q.desc = gpa(in, 16);
			q.avail = gpa(in, 2);
			q.used = gpa(in, 4);
			break;
		}
		case Q_READY:
			/* As set_ready(): only a valid queue gets ready. */
			if (!q.ready && virtq__valid(&mem, &q)) {
				q.ready = true;
				q.last_avail = q.used_idx = 0;
			}
			break;
		case Q_UNREADY:
			q.ready = false;
			break;
		case Q_NUM: {
			uint16_t n = u16(in);

			if (!q.ready)
				q.num = n;
			break;
		}
		case Q_POP: {
			unsigned k = u8(in) % NCHAINS;
			uint16_t was = q.last_avail;
			const char *why = NULL;
			int r = virtq__pop(&mem, &q, &chains[k], &why);

			CHECK(r >= -1 && r <= 1);
			if (r == 1) {
				check_chain(&q, &chains[k]);
				CHECK(q.last_avail == (uint16_t)(was + 1));
				have[k] = true;
			} else {
				CHECK(q.last_avail == was);
				CHECK(r == 0 || (why && *why));
			}
			break;
		}
		case Q_PUSH: {
			uint8_t s = u8(in);
			unsigned k = s % NCHAINS;
			uint16_t head = s & 0x80 ? u16(in) : chains[k].head;
			uint32_t len = u32(in);
			bool valid = virtq__valid(&mem, &q);

			virtq__push(&d, &q, head, len);
			if (valid) {
				/* The entry and the index the driver reads. */
				uint64_t e =
				    q.used + 4 +
				    8ULL * ((q.used_idx - 1) & (q.num - 1));
				uint32_t v[2];

				memcpy(v, at(e, 8), 8);
				CHECK(v[0] == head && v[1] == len);
				CHECK(get16(q.used + 2) == q.used_idx);
			}
			break;
		}
		case Q_READ:
		case Q_WRITE: {
			unsigned k = u8(in) % NCHAINS;
			size_t off = u16(in), len = u16(in);
			const struct virtq_chain *c = &chains[k];

			if (!have[k])
				break;
			if (op == Q_READ)
				CHECK(virtq__read(c, off, buf, len) ==
				      expect(c->out_len, off, len));
			else
				CHECK(virtq__write(c, off, buf, len) ==
				      expect(c->in_len, off, len));
			break;
		}
		}
	}
}

/* ---- targets 1-3: the transport and its devices ---- */

static unsigned irqs;
static struct virtio_dev *cur;

static void irq(void *arg, unsigned gsi)
{
	CHECK(arg == cur && gsi == cur->gsi);
	irqs++;
}

static void mmio(struct virtio_dev *d, uint64_t off, void *data, unsigned size,
		 bool write)
{
	d->io.access(&d->io, off, data, size, write);
}

static void wr32(struct virtio_dev *d, uint64_t off, uint32_t v)
{
	mmio(d, off, &v, 4, true);
}

static uint32_t rd32(struct virtio_dev *d, uint64_t off)
{
	uint32_t v = 0xdeadbeef;

	mmio(d, off, &v, 4, false);
	return v;
}

/* The worker's loop (mmio.c), one round, without blocking: the queues
 * the driver kicked, then the device's own fds, then the interrupt. */
static void run(struct virtio_dev *d)
{
	unsigned nq = d->ops->nr_queues;
	struct pollfd p[VIRTIO_MAX_QUEUES + VIRTIO_DEV_FDS];
	uint64_t n;
	bool raise;

	for (unsigned i = 0; i < nq; i++)
		p[i] = (struct pollfd){.fd = d->q[i].kick_fd, .events = POLLIN};
	for (unsigned i = 0; i < VIRTIO_DEV_FDS; i++)
		p[nq + i] = (struct pollfd){.fd = d->fds[i], .events = POLLIN};
	if (poll(p, nq + VIRTIO_DEV_FDS, 0) < 0)
		return;
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < nq; i++) {
		if (!p[i].revents || read(p[i].fd, &n, 8) != 8)
			continue;
		if ((d->status & VIRTIO_S_DRIVER_OK) && !d->broken &&
		    d->q[i].ready)
			d->ops->notify(d, i);
	}
	for (unsigned i = 0; i < VIRTIO_DEV_FDS; i++)
		if (p[nq + i].fd >= 0 && p[nq + i].revents)
			d->ops->ready_fd(d, i);
	raise = d->irq_due;
	d->irq_due = false;
	pthread_mutex_unlock(&d->lock);
	if (raise)
		d->irq(d->irq_arg, d->gsi);
}

static uint64_t offered(const struct virtio_dev *d)
{
	return d->ops->features | VIRTIO_F_VERSION_1;
}

/* What the transport promises whatever the driver wrote. */
static void check_dev(struct virtio_dev *d)
{
	CHECK(!d->broken || (d->status & VIRTIO_S_NEEDS_RESET));
	CHECK(!(d->status & VIRTIO_S_DRIVER_OK) ||
	      (d->status & VIRTIO_S_FEATURES_OK));
	if (d->status & VIRTIO_S_FEATURES_OK)
		CHECK(!(d->drv_features & ~offered(d)) &&
		      (d->drv_features & VIRTIO_F_VERSION_1));
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		const struct virtq *q = &d->q[i];

		if (i >= d->ops->nr_queues)
			CHECK(!q->ready);
		if (q->ready)
			CHECK(q->num <= d->ops->queue_max &&
			      virtq__valid(&mem, q));
	}
}

static const uint16_t regs[] = {
    VIRTIO_MMIO_MAGIC,		VIRTIO_MMIO_VERSION,
    VIRTIO_MMIO_DEVICE_ID,	VIRTIO_MMIO_VENDOR_ID,
    VIRTIO_MMIO_DEV_FEATURES,	VIRTIO_MMIO_DEV_FEATURES_SEL,
    VIRTIO_MMIO_DRV_FEATURES,	VIRTIO_MMIO_DRV_FEATURES_SEL,
    VIRTIO_MMIO_QUEUE_SEL,	VIRTIO_MMIO_QUEUE_NUM_MAX,
    VIRTIO_MMIO_QUEUE_NUM,	VIRTIO_MMIO_QUEUE_READY,
    VIRTIO_MMIO_QUEUE_NOTIFY,	VIRTIO_MMIO_INT_STATUS,
    VIRTIO_MMIO_INT_ACK,	VIRTIO_MMIO_STATUS,
    VIRTIO_MMIO_QUEUE_DESC_LO,	VIRTIO_MMIO_QUEUE_DESC_HI,
    VIRTIO_MMIO_QUEUE_AVAIL_LO, VIRTIO_MMIO_QUEUE_AVAIL_HI,
    VIRTIO_MMIO_QUEUE_USED_LO,	VIRTIO_MMIO_QUEUE_USED_HI,
    VIRTIO_MMIO_CONFIG_GEN,	VIRTIO_MMIO_CONFIG,
};
#define NREGS (sizeof(regs) / sizeof(regs[0]))

static void dev_op(struct virtio_dev *d, struct in *in, unsigned op)
{
	switch (op) {
	case T_WRITE: {
		uint16_t r = regs[u8(in) % NREGS];

		wr32(d, r, u32(in));
		break;
	}
	case T_READ: {
		uint16_t r = regs[u8(in) % NREGS];
		uint32_t v = rd32(d, r);

		if (r == VIRTIO_MMIO_MAGIC)
			CHECK(v == VIRTIO_MMIO_MAGIC_VALUE);
		else if (r == VIRTIO_MMIO_VERSION)
			CHECK(v == 2);
		else if (r == VIRTIO_MMIO_DEVICE_ID)
			CHECK(v == d->ops->device_id);
		else if (r == VIRTIO_MMIO_STATUS)
			CHECK(v == d->status);
		break;
	}
	case T_RAW: {
		uint16_t off = u16(in) % VIRTIO_MMIO_SIZE;
		uint8_t s = u8(in);
		unsigned size = 1 << (s & 3);
		uint64_t v = u32(in);
		uint8_t data[8];
		uint64_t c = off - VIRTIO_MMIO_CONFIG;

		v |= (uint64_t)u32(in) << 32;
		memcpy(data, &v, 8);
		mmio(d, off, data, size, s & 4);
		if (s & 4)
			break;
		/* Past the config space, and a register access of the
		 * wrong size or alignment: zeros. */
		if (off >= VIRTIO_MMIO_CONFIG &&
		    (c >= d->config_len || size > d->config_len - c))
			for (unsigned k = 0; k < size; k++)
				CHECK(!data[k]);
		if (off < VIRTIO_MMIO_CONFIG && (size != 4 || (off & 3)))
			for (unsigned k = 0; k < size; k++)
				CHECK(!data[k]);
		break;
	}
	case T_INIT: {
		/* A driver's probe as Linux does it (virtio 1.2 3.1.1). */
		uint32_t lo = u32(in), hi = u8(in) & 1 ? u32(in) : 1;
		uint8_t st = u8(in);

		wr32(d, VIRTIO_MMIO_STATUS, 0);
		wr32(d, VIRTIO_MMIO_STATUS, VIRTIO_S_ACKNOWLEDGE);
		wr32(d, VIRTIO_MMIO_STATUS,
		     VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER);
		wr32(d, VIRTIO_MMIO_DEV_FEATURES_SEL, 0);
		lo &= st & 0x80 ? ~0u : rd32(d, VIRTIO_MMIO_DEV_FEATURES);
		wr32(d, VIRTIO_MMIO_DRV_FEATURES_SEL, 0);
		wr32(d, VIRTIO_MMIO_DRV_FEATURES, lo);
		wr32(d, VIRTIO_MMIO_DRV_FEATURES_SEL, 1);
		wr32(d, VIRTIO_MMIO_DRV_FEATURES, hi);
		wr32(d, VIRTIO_MMIO_STATUS,
		     VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER |
			 VIRTIO_S_FEATURES_OK);
		if (st & 1)
			wr32(d, VIRTIO_MMIO_STATUS,
			     rd32(d, VIRTIO_MMIO_STATUS) | VIRTIO_S_DRIVER_OK);
		break;
	}
	case T_QUEUE: {
		uint32_t sel = u8(in);
		uint8_t s = u8(in);
		uint32_t num = s & 0x80 ? u16(in) : 1 << ((s & 15) % 9);
		uint64_t desc = gpa(in, 16), avail = gpa(in, 2),
			 used = gpa(in, 4);

		wr32(d, VIRTIO_MMIO_QUEUE_SEL, sel & 0x80 ? sel : sel % 4);
		wr32(d, VIRTIO_MMIO_QUEUE_NUM, num);
		wr32(d, VIRTIO_MMIO_QUEUE_DESC_LO, desc);
		wr32(d, VIRTIO_MMIO_QUEUE_DESC_HI, desc >> 32);
		wr32(d, VIRTIO_MMIO_QUEUE_AVAIL_LO, avail);
		wr32(d, VIRTIO_MMIO_QUEUE_AVAIL_HI, avail >> 32);
		wr32(d, VIRTIO_MMIO_QUEUE_USED_LO, used);
		wr32(d, VIRTIO_MMIO_QUEUE_USED_HI, used >> 32);
		if (s & 0x40)
			wr32(d, VIRTIO_MMIO_QUEUE_READY, 1);
		break;
	}
	case T_RUN:
		run(d);
		break;
	case T_INPUT: {
		uint8_t b[256];
		unsigned n = u8(in);

		for (unsigned k = 0; k < n; k++)
			b[k] = u8(in);
		if (d->ops->device_id == VIRTIO_ID_CONSOLE)
			virtio__console_in(d, b, n);
		break;
	}
	case T_RESET:
		wr32(d, VIRTIO_MMIO_STATUS, 0);
		break;
	case T_LOAD: {
		uint8_t st[VIRTIO_STATE_SIZE] = {0};
		const char *why = NULL;

		for (unsigned i = 0; i < sizeof(st); i++)
			st[i] = u8(in);
		if (virtio__load(d, st, sizeof(st), &why))
			CHECK(why);
		break;
	}
	case T_SAVE_LOAD: {
		uint8_t st[VIRTIO_STATE_SIZE];
		const char *why = NULL;

		virtio__save(d, st);
		CHECK(!virtio__load(d, st, sizeof(st), &why));
		break;
	}
	}
}

static int img_fd = -1, null_fd = -1;
static struct virtio_dev *blk;

/* One blk device for the whole run: an io_uring per input would cost
 * more than the input. Each input starts it from a reset, on zeros. */
static struct virtio_dev *blk_dev(void)
{
	static bool tried;
	char path[] = "/dev/shm/fuzz_virtq.XXXXXX", why[256];
	struct virtio_spec s = {.kind = VIRTIO_BLK, .path = path};

	if (tried)
		return blk;
	tried = true;
	/* tmpfs: the driver's flushes cost nothing there. */
	img_fd = mkstemp(path);
	if (img_fd < 0) {
		strcpy(path, "/tmp/fuzz_virtq.XXXXXX");
		img_fd = mkstemp(path);
	}
	if (img_fd < 0 || ftruncate(img_fd, IMG_SIZE))
		return NULL;
	blk = virtio__blk_new(&s, why, sizeof(why));
	unlink(path);
	if (!blk) {
		fprintf(stderr, "fuzz_virtq: no blk target: %s\n", why);
		return NULL;
	}
	snprintf(blk->name, sizeof(blk->name), "blk0");
	if (virtio__init(blk, 0, &mem, irq, blk)) {
		virtio__stop(blk);
		blk = NULL;
	}
	return blk;
}

static void drain(int fd)
{
	uint64_t n;

	if (fd >= 0 && read(fd, &n, 8) < 0)
		(void)0; /* nonblocking eventfd: nothing was pending */
}

static void dev_target(struct in *in, unsigned kind)
{
	char why[256];
	struct virtio_dev *d;

	if (kind == VQ_BLK) {
		d = blk_dev();
		if (!d)
			return;
		/* A fresh image: what the last input wrote into it could
		 * otherwise land in this one's rings. */
		if (ftruncate(img_fd, 0) || ftruncate(img_fd, IMG_SIZE))
			return;
		for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
			drain(d->q[i].kick_fd);
		drain(d->fds[0]);
	} else {
		d = kind == VQ_RNG
			? virtio__rng_new(why, sizeof(why))
			: virtio__console_new(null_fd, why, sizeof(why));
		CHECK(d);
		snprintf(d->name, sizeof(d->name), "%s",
			 kind == VQ_RNG ? "rng0" : "con0");
		CHECK(virtio__init(d, kind, &mem, irq, d) == 0);
	}
	cur = d;
	d->config_gen = 0; /* blk's lives on from the last input */
	while (in->n) {
		unsigned op = u8(in) % NR_DEV_OPS;

		if (!driver_op(in, op, d->q, d->ops->nr_queues))
			dev_op(d, in, op);
		check_dev(d);
	}
	/* What was kicked last, then the reset that waits for blk's I/O
	 * in flight, before RAM is reused. */
	run(d);
	check_dev(d);
	wr32(d, VIRTIO_MMIO_STATUS, 0);
	CHECK(!d->status && !d->broken && !d->q[0].ready);
	if (d != blk)
		virtio__stop(d);
}

/* The first byte's bit 0: --net, else --disk; the rest is the value. */
static void parse_target(struct in *in)
{
	char s[256], why[128] = "";
	bool net = u8(in) & 1;
	size_t n = in->n < sizeof(s) - 1 ? in->n : sizeof(s) - 1;
	struct virtio_spec sp;
	int r;

	memcpy(s, in->p, n);
	s[n] = 0;
	r = (net ? virtio__parse_net : virtio__parse_disk)(s, &sp, why,
							   sizeof(why));
	if (!r) {
		CHECK(sp.host <= 255);
		CHECK(!sp.mac_set || !(sp.mac[0] & 1));
		free((char *)sp.path);
	} else {
		CHECK(r == -1 && why[0]);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint8_t *p = mmap(NULL, GUARD_BELOW + RAM_SIZE + GUARD_ABOVE, PROT_NONE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	CHECK(p != MAP_FAILED);
	ram = p + GUARD_BELOW;
	CHECK(!mprotect(ram, RAM_SIZE, PROT_READ | PROT_WRITE));
	mem = (struct mem){
	    .hva = ram, .size = RAM_SIZE, .lowmem = RAM_SIZE, .top = RAM_SIZE};
	null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	CHECK(null_fd >= 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = {data + 1, size ? size - 1 : 0};

	if (!size)
		return 0;
	memset(ram, 0, RAM_SIZE);
	switch (data[0] % VQ_TARGETS) {
	case VQ_QUEUE:
		queue_target(&in);
		break;
	case VQ_PARSE:
		parse_target(&in);
		break;
	default:
		dev_target(&in, data[0] % VQ_TARGETS);
	}
	return 0;
}
