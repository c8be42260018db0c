// SPDX-License-Identifier: MIT
/*
 * virtio: split virtqueues taken from a driver that may be hostile
 * (queue.c), the virtio-mmio transport's registers (mmio.c) over rng and
 * blk, and the --disk/--net values (devices.c). Guest RAM is a plain
 * allocation with a canary right after it, so a write past RAM shows in
 * the plain build too (ASan builds also catch reads).
 */
#include <criterion/criterion.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/virtio/virtio.h"

#define RAM_SIZE 0x10000ULL
#define CANARY	 64
#define DESC	 0x1000ULL
#define AVAIL	 0x2000ULL
#define USED	 0x3000ULL
#define BUF	 0x8000ULL

static uint8_t *ram;
static struct mem m;

static void ram_init(void)
{
	void *p = NULL;

	/* posix_memalign: aligned_alloc wants whole multiples of 4096. */
	cr_assert_eq(posix_memalign(&p, 4096, RAM_SIZE + CANARY), 0);
	ram = p;
	memset(ram, 0, RAM_SIZE);
	memset(ram + RAM_SIZE, 0xa5, CANARY);
	m = (struct mem){
	    .hva = ram, .size = RAM_SIZE, .lowmem = RAM_SIZE, .top = RAM_SIZE};
}

static bool canary_intact(void)
{
	for (unsigned i = 0; i < CANARY; i++)
		if (ram[RAM_SIZE + i] != 0xa5)
			return false;
	return true;
}

static void ram_fini(void)
{
	free(ram);
}

/* ---- the driver's side of a queue ---- */

static void desc(const struct virtq *q, unsigned i, uint64_t addr, uint32_t len,
		 uint16_t flags, uint16_t next)
{
	uint8_t *p = ram + q->desc + 16 * i;

	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

static void put16(uint64_t gpa, uint16_t v)
{
	memcpy(ram + gpa, &v, 2);
}

static uint16_t get16(uint64_t gpa)
{
	uint16_t v;

	memcpy(&v, ram + gpa, 2);
	return v;
}

static uint32_t get32(uint64_t gpa)
{
	uint32_t v;

	memcpy(&v, ram + gpa, 4);
	return v;
}

/* Offer head in the next avail slot and publish it. */
static void offer(const struct virtq *q, uint16_t head)
{
	uint16_t idx = get16(q->avail + 2);

	put16(q->avail + 4 + 2 * (idx % q->num), head);
	put16(q->avail + 2, idx + 1);
}

static struct virtq queue(uint16_t num)
{
	return (struct virtq){.num = num,
			      .ready = true,
			      .desc = DESC,
			      .avail = AVAIL,
			      .used = USED,
			      .kick_fd = -1};
}

TestSuite(queue, .init = ram_init, .fini = ram_fini);

Test(queue, pop_takes_a_chain_readable_then_writable)
{
	struct virtq q = queue(8);
	struct virtq_chain c;
	const char *why = NULL;

	desc(&q, 2, BUF, 16, VIRTQ_DESC_F_NEXT, 5);
	desc(&q, 5, BUF + 0x100, 512, VIRTQ_DESC_F_NEXT, 7);
	desc(&q, 7, BUF + 0x400, 0, VIRTQ_DESC_F_NEXT, 0); /* skipped */
	desc(&q, 0, BUF + 0x1000, 1, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	desc(&q, 1, BUF + 0x2000, 100, VIRTQ_DESC_F_WRITE, 0);
	offer(&q, 2);
	cr_assert_eq(virtq__pop(&m, &q, &c, &why), 1, "%s", why);
	cr_expect_eq(c.head, 2);
	cr_expect_eq(c.nr_out, 2);
	cr_expect_eq(c.nr_in, 2);
	cr_expect_eq(c.out_len, 528);
	cr_expect_eq(c.in_len, 101);
	cr_expect_eq(c.iov[0].iov_base, ram + BUF);
	cr_expect_eq(c.iov[0].iov_len, 16);
	cr_expect_eq(c.iov[1].iov_base, ram + BUF + 0x100);
	cr_expect_eq(c.iov[1].iov_len, 512);
	cr_expect_eq(c.iov[2].iov_base, ram + BUF + 0x1000);
	cr_expect_eq(c.iov[3].iov_len, 100);
	cr_expect_eq(q.last_avail, 1);
	/* Nothing more offered. */
	cr_expect_eq(virtq__pop(&m, &q, &c, &why), 0);
	cr_expect_eq(q.last_avail, 1);
}

static void expect_broken(struct virtq *q, const char *what)
{
	struct virtq_chain c;
	const char *why = NULL;
	uint16_t was = q->last_avail;

	cr_assert_eq(virtq__pop(&m, q, &c, &why), -1);
	cr_assert_not_null(why);
	cr_expect(strstr(why, what), "'%s' does not say '%s'", why, what);
	cr_expect_eq(q->last_avail, was, "a broken request was consumed");
}

Test(queue, pop_refuses_loops)
{
	struct virtq q = queue(8);

	desc(&q, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 1);
	desc(&q, 1, BUF, 8, VIRTQ_DESC_F_NEXT, 0);
	offer(&q, 0);
	expect_broken(&q, "loops");
	/* A descriptor that names itself. */
	desc(&q, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 0);
	expect_broken(&q, "loops");
	/* Zero-length descriptors count too: they cost a step each. */
	for (unsigned i = 0; i < 8; i++)
		desc(&q, i, 0, 0, VIRTQ_DESC_F_NEXT, (i + 1) % 8);
	expect_broken(&q, "loops");
}

Test(queue, pop_takes_a_chain_as_long_as_the_queue)
{
	struct virtq q = queue(8);
	struct virtq_chain c;
	const char *why = NULL;

	for (unsigned i = 0; i < 8; i++)
		desc(&q, i, BUF + i, 1, i < 7 ? VIRTQ_DESC_F_NEXT : 0, i + 1);
	offer(&q, 0);
	cr_assert_eq(virtq__pop(&m, &q, &c, &why), 1, "%s", why);
	cr_expect_eq(c.nr_out, 8);
}

Test(queue, pop_refuses_indexes_past_the_queue)
{
	struct virtq q = queue(8);

	desc(&q, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 8);
	offer(&q, 0);
	expect_broken(&q, "past the queue");
	q = queue(8);
	put16(AVAIL + 2, 0);
	offer(&q, 8);
	expect_broken(&q, "past the queue");
}

Test(queue, pop_refuses_buffers_outside_ram)
{
	static const struct {
		uint64_t addr;
		uint32_t len;
	} bad[] = {
	    {RAM_SIZE - 8, 16},	 /* straddles the end */
	    {RAM_SIZE, 1},	 /* just past it */
	    {~0ULL - 7, 16},	 /* wraps to 0 */
	    {0, 0xffffffff},	 /* huge */
	    {MEM_4G, 4096},	 /* no RAM above 4 GiB here */
	    {MEM_HOLE_START, 1}, /* the MMIO hole */
	};

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct virtq q = queue(8);

		memset(ram, 0, RAM_SIZE);
		desc(&q, 0, bad[i].addr, bad[i].len, VIRTQ_DESC_F_WRITE, 0);
		offer(&q, 0);
		expect_broken(&q, "outside guest RAM");
	}
	/* The last byte of RAM is fine. */
	struct virtq q = queue(8);
	struct virtq_chain c;
	const char *why;

	memset(ram, 0, RAM_SIZE);
	desc(&q, 0, RAM_SIZE - 1, 1, 0, 0);
	offer(&q, 0);
	cr_expect_eq(virtq__pop(&m, &q, &c, &why), 1);
}

Test(queue, pop_refuses_an_avail_index_more_than_a_queue_ahead)
{
	struct virtq q = queue(8);
	struct virtq_chain c;
	const char *why = NULL;

	for (unsigned i = 0; i < 8; i++)
		desc(&q, i, BUF, 1, 0, 0);
	put16(AVAIL + 2, 9);
	expect_broken(&q, "more than a queue ahead");
	/* From last_avail on, with wrap-around: 0xfffc + 9 wraps to 5. */
	q.last_avail = 0xfffc;
	put16(AVAIL + 2, 5);
	expect_broken(&q, "more than a queue ahead");
	/* Exactly a queue ahead is a full ring: fine. */
	put16(AVAIL + 2, 4);
	for (unsigned i = 0; i < 8; i++)
		cr_assert_eq(virtq__pop(&m, &q, &c, &why), 1);
	cr_expect_eq(virtq__pop(&m, &q, &c, &why), 0);
}

Test(queue, pop_refuses_readable_after_writable_and_indirect)
{
	struct virtq q = queue(8);

	desc(&q, 0, BUF, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	desc(&q, 1, BUF, 8, 0, 0);
	offer(&q, 0);
	expect_broken(&q, "readable descriptor after a writable");
	desc(&q, 0, BUF, 16, VIRTQ_DESC_F_INDIRECT, 0);
	expect_broken(&q, "indirect");
}

Test(queue, pop_refuses_too_many_segments)
{
	struct virtq q = queue(256);
	struct virtq_chain c;
	const char *why = NULL;

	for (unsigned i = 0; i <= VIRTQ_MAX_SEGS; i++)
		desc(&q, i, BUF + i, 1, VIRTQ_DESC_F_NEXT, i + 1);
	desc(&q, VIRTQ_MAX_SEGS, BUF, 1, 0, 0);
	offer(&q, 0);
	expect_broken(&q, "too many segments");
	desc(&q, VIRTQ_MAX_SEGS - 1, BUF, 1, 0, 0);
	cr_expect_eq(virtq__pop(&m, &q, &c, &why), 1, "%s", why);
	cr_expect_eq(c.nr_out, VIRTQ_MAX_SEGS);
}

Test(queue, pop_on_a_queue_not_ready)
{
	struct virtq q = queue(8);

	q.ready = false;
	expect_broken(&q, "not ready");
}

Test(queue, push_fills_the_used_ring_and_asks_for_an_interrupt)
{
	struct virtio_dev d = {.mem = &m};
	struct virtq q = queue(8);

	q.used_idx = 7;
	virtq__push(&d, &q, 3, 42);
	cr_expect_eq(get16(USED + 2), 8);
	cr_expect_eq(get32(USED + 4 + 8 * 7), 3);
	cr_expect_eq(get32(USED + 4 + 8 * 7 + 4), 42);
	cr_expect_eq(d.isr, VIRTIO_INT_USED);
	cr_expect(d.irq_due);
	cr_expect_eq(d.st.requests, 1);
	/* The ring wraps. */
	virtq__push(&d, &q, 5, 1);
	cr_expect_eq(get16(USED + 2), 9);
	cr_expect_eq(get32(USED + 4), 5);
	cr_expect(canary_intact());
}

Test(queue, push_without_interrupt_when_the_driver_suppressed_it)
{
	struct virtio_dev d = {.mem = &m};
	struct virtq q = queue(8);

	put16(AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);
	virtq__push(&d, &q, 1, 2);
	cr_expect_eq(get16(USED + 2), 1);
	cr_expect_eq(get32(USED + 4), 1);
	cr_expect_eq(d.isr, 0);
	cr_expect_not(d.irq_due);
}

/* The transport lets a driver clear QUEUE_READY, then set QUEUE_NUM to 0
 * and move the used ring while blk still has a request in flight; its
 * completion must not index the ring with num - 1 = 0xffff. */
Test(queue, push_to_a_queue_the_driver_shrank_stays_in_ram)
{
	struct virtio_dev d = {.mem = &m};
	struct virtq q = queue(8);

	q.ready = false;
	q.num = 0;
	q.used = RAM_SIZE - 8;
	q.used_idx = 0;
	virtq__push(&d, &q, 1, 1);
	cr_expect(canary_intact(), "push wrote past guest RAM");
	memset(ram + RAM_SIZE, 0xa5, CANARY);
	/* A misaligned used ring (only checked when made ready). */
	q = queue(8);
	q.ready = false;
	q.used = USED + 1;
	virtq__push(&d, &q, 1, 1);
	cr_expect(canary_intact());
}

Test(queue, read_and_write_across_segments)
{
	struct virtq q = queue(8);
	struct virtq_chain c;
	const char *why = NULL;
	uint8_t buf[32];

	memcpy(ram + BUF, "abc", 3);
	memcpy(ram + BUF + 0x10, "defgh", 5);
	desc(&q, 0, BUF, 3, VIRTQ_DESC_F_NEXT, 1);
	desc(&q, 1, BUF + 0x10, 5, VIRTQ_DESC_F_NEXT, 2);
	desc(&q, 2, BUF + 0x20, 2, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 3);
	desc(&q, 3, BUF + 0x30, 4, VIRTQ_DESC_F_WRITE, 0);
	offer(&q, 0);
	cr_assert_eq(virtq__pop(&m, &q, &c, &why), 1, "%s", why);
	cr_expect_eq(virtq__read(&c, 2, buf, sizeof(buf)), 6);
	cr_expect_arr_eq(buf, "cdefgh", 6);
	cr_expect_eq(virtq__read(&c, 8, buf, sizeof(buf)), 0);
	cr_expect_eq(virtq__write(&c, 1, "WXYZ!", 5), 5);
	cr_expect_eq(ram[BUF + 0x21], 'W');
	cr_expect_arr_eq(ram + BUF + 0x30, "XYZ!", 4);
	cr_expect_eq(virtq__write(&c, 0, "0123456789", 10), 6);
	cr_expect_eq(ram[BUF + 0x34], 0, "wrote past the buffer");
}

/* ---- the transport ---- */

static struct virtio_dev *dev;
static unsigned irqs, last_gsi;

static void irq(void *arg, unsigned gsi)
{
	irqs++;
	last_gsi = gsi;
}

static void mmio(uint64_t off, void *data, unsigned size, bool write)
{
	dev->io.access(&dev->io, off, data, size, write);
}

static void wr(uint64_t off, uint32_t v)
{
	mmio(off, &v, 4, true);
}

static uint32_t rd(uint64_t off)
{
	uint32_t v = 0xdeadbeef;

	mmio(off, &v, 4, false);
	return v;
}

/* One round of the worker's loop (mmio.c), on this thread: what was
 * readable when it polled, the kicked queues first, then the device's
 * own fds (so blk reaps this round's submissions in the next one). */
static void run(void)
{
	struct virtio_dev *d = dev;
	unsigned nq = d->ops->nr_queues;
	struct pollfd p[VIRTIO_MAX_QUEUES + VIRTIO_DEV_FDS];
	uint64_t n;
	bool raise;

	for (unsigned i = 0; i < nq; i++)
		p[i] = (struct pollfd){.fd = d->q[i].kick_fd, .events = POLLIN};
	for (unsigned i = 0; i < VIRTIO_DEV_FDS; i++)
		p[nq + i] = (struct pollfd){.fd = d->fds[i], .events = POLLIN};
	cr_assert_geq(poll(p, nq + VIRTIO_DEV_FDS, 0), 0);
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < nq; i++)
		if (p[i].revents && read(p[i].fd, &n, 8) == 8 &&
		    (d->status & VIRTIO_S_DRIVER_OK) && !d->broken &&
		    d->q[i].ready)
			d->ops->notify(d, i);
	for (unsigned i = 0; i < VIRTIO_DEV_FDS; i++)
		if (p[nq + i].fd >= 0 && p[nq + i].revents)
			d->ops->ready_fd(d, i);
	raise = d->irq_due;
	d->irq_due = false;
	pthread_mutex_unlock(&d->lock);
	if (raise)
		d->irq(d->irq_arg, d->gsi);
}

static void rng_init(void)
{
	char why[128];

	ram_init();
	irqs = 0;
	dev = virtio__rng_new(why, sizeof(why));
	cr_assert_not_null(dev, "%s", why);
	strcpy(dev->name, "rng0");
	cr_assert_eq(virtio__init(dev, 1, &m, irq, NULL), 0);
}

static void dev_fini(void)
{
	virtio__stop(dev);
	dev = NULL;
	ram_fini();
}

/* The driver's probe up to FEATURES_OK, with these feature words. */
static uint32_t negotiate(uint32_t lo, uint32_t hi)
{
	wr(VIRTIO_MMIO_STATUS, VIRTIO_S_ACKNOWLEDGE);
	wr(VIRTIO_MMIO_STATUS, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER);
	wr(VIRTIO_MMIO_DRV_FEATURES_SEL, 0);
	wr(VIRTIO_MMIO_DRV_FEATURES, lo);
	wr(VIRTIO_MMIO_DRV_FEATURES_SEL, 1);
	wr(VIRTIO_MMIO_DRV_FEATURES, hi);
	wr(VIRTIO_MMIO_STATUS,
	   VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK);
	return rd(VIRTIO_MMIO_STATUS);
}

static void setup_queue(unsigned sel, uint32_t num, uint64_t d, uint64_t a,
			uint64_t u)
{
	wr(VIRTIO_MMIO_QUEUE_SEL, sel);
	wr(VIRTIO_MMIO_QUEUE_NUM, num);
	wr(VIRTIO_MMIO_QUEUE_DESC_LO, d);
	wr(VIRTIO_MMIO_QUEUE_DESC_HI, d >> 32);
	wr(VIRTIO_MMIO_QUEUE_AVAIL_LO, a);
	wr(VIRTIO_MMIO_QUEUE_AVAIL_HI, a >> 32);
	wr(VIRTIO_MMIO_QUEUE_USED_LO, u);
	wr(VIRTIO_MMIO_QUEUE_USED_HI, u >> 32);
	wr(VIRTIO_MMIO_QUEUE_READY, 1);
}

/* Probe, one queue at DESC/AVAIL/USED of num entries, DRIVER_OK. */
static void bring_up(uint32_t num)
{
	cr_assert(negotiate(0, 1) & VIRTIO_S_FEATURES_OK);
	setup_queue(0, num, DESC, AVAIL, USED);
	cr_assert_eq(rd(VIRTIO_MMIO_QUEUE_READY), 1);
	wr(VIRTIO_MMIO_STATUS, rd(VIRTIO_MMIO_STATUS) | VIRTIO_S_DRIVER_OK);
	cr_assert(rd(VIRTIO_MMIO_STATUS) & VIRTIO_S_DRIVER_OK);
}

TestSuite(mmio, .init = rng_init, .fini = dev_fini);

Test(mmio, identifies_itself)
{
	cr_expect_eq(rd(VIRTIO_MMIO_MAGIC), 0x74726976);
	cr_expect_eq(rd(VIRTIO_MMIO_VERSION), 2);
	cr_expect_eq(rd(VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_RNG);
	cr_expect_eq(rd(VIRTIO_MMIO_VENDOR_ID), VIRTIO_MMIO_VENDOR);
	cr_expect_eq(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), 64);
	cr_expect_eq(dev->base, VIRTIO_MMIO_BASE + VIRTIO_MMIO_SIZE);
	cr_expect_eq(dev->gsi, VIRTIO_GSI_FIRST + 1);
	/* A queue the device does not have. */
	wr(VIRTIO_MMIO_QUEUE_SEL, 1);
	cr_expect_eq(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
}

Test(mmio, offers_version_1_only)
{
	wr(VIRTIO_MMIO_DEV_FEATURES_SEL, 0);
	cr_expect_eq(rd(VIRTIO_MMIO_DEV_FEATURES), 0);
	wr(VIRTIO_MMIO_DEV_FEATURES_SEL, 1);
	cr_expect_eq(rd(VIRTIO_MMIO_DEV_FEATURES), 1);
	wr(VIRTIO_MMIO_DEV_FEATURES_SEL, 2);
	cr_expect_eq(rd(VIRTIO_MMIO_DEV_FEATURES), 0);
}

Test(mmio, features_ok_refused_without_version_1)
{
	cr_expect_not(negotiate(0, 0) & VIRTIO_S_FEATURES_OK);
	/* DRIVER_OK needs FEATURES_OK. */
	wr(VIRTIO_MMIO_STATUS,
	   VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_DRIVER_OK);
	cr_expect_not(rd(VIRTIO_MMIO_STATUS) & VIRTIO_S_DRIVER_OK);
}

Test(mmio, features_ok_refused_with_bits_not_offered)
{
	cr_expect_not(negotiate(1 << 5, 1) & VIRTIO_S_FEATURES_OK);
	cr_expect_not(negotiate(0, 1 | 1 << 3) & VIRTIO_S_FEATURES_OK);
	/* A selector past the two words selects nothing. */
	wr(VIRTIO_MMIO_DRV_FEATURES_SEL, 2);
	wr(VIRTIO_MMIO_DRV_FEATURES, ~0u);
	cr_expect_eq(dev->drv_features, VIRTIO_F_VERSION_1 | 1ULL << 35);
}

Test(mmio, features_ok_sticks_and_freezes_the_features)
{
	cr_assert(negotiate(0, 1) & VIRTIO_S_FEATURES_OK);
	wr(VIRTIO_MMIO_DRV_FEATURES_SEL, 0);
	wr(VIRTIO_MMIO_DRV_FEATURES, 1 << 5);
	cr_expect_eq(dev->drv_features, VIRTIO_F_VERSION_1);
}

Test(mmio, queue_outside_ram_needs_reset)
{
	cr_assert(negotiate(0, 1) & VIRTIO_S_FEATURES_OK);
	/* 16 entries need 256 bytes of descriptors; 64 are left. */
	setup_queue(0, 16, RAM_SIZE - 64, AVAIL, USED);
	cr_expect_eq(rd(VIRTIO_MMIO_QUEUE_READY), 0);
	cr_expect(rd(VIRTIO_MMIO_STATUS) & VIRTIO_S_NEEDS_RESET);
	cr_expect_not_null(dev->broken);
}

Test(mmio, queue_setup_refusals)
{
	static const struct {
		uint32_t num;
		uint64_t d, a, u;
	} bad[] = {
	    {16, DESC, AVAIL, MEM_4G + USED},	  /* no RAM above 4 GiB */
	    {16, DESC, RAM_SIZE - 8, USED},	  /* avail straddles */
	    {16, DESC, AVAIL, ~0ULL - 7},	  /* wraps */
	    {128, DESC, AVAIL, USED},		  /* past QUEUE_NUM_MAX */
	    {12, DESC, AVAIL, USED},		  /* not a power of 2 */
	    {16, DESC + 8, AVAIL, USED},	  /* misaligned */
	    {0x10000 + 16, DESC, AVAIL, USED},	  /* clamped to 0xffff */
	    {16, DESC | 1ULL << 32, AVAIL, USED}, /* high half counts */
	};

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		wr(VIRTIO_MMIO_STATUS, 0);
		cr_assert_eq(rd(VIRTIO_MMIO_STATUS), 0);
		setup_queue(0, bad[i].num, bad[i].d, bad[i].a, bad[i].u);
		cr_expect_eq(rd(VIRTIO_MMIO_QUEUE_READY), 0, "case %u", i);
		cr_expect(rd(VIRTIO_MMIO_STATUS) & VIRTIO_S_NEEDS_RESET,
			  "case %u", i);
	}
}

Test(mmio, reset_clears_queues_and_status)
{
	bring_up(8);
	/* Writes to a ready queue's registers are ignored. */
	wr(VIRTIO_MMIO_QUEUE_NUM, 4);
	wr(VIRTIO_MMIO_QUEUE_DESC_LO, 0x5000);
	cr_expect_eq(dev->q[0].num, 8);
	cr_expect_eq(dev->q[0].desc, DESC);
	virtio__fail(dev, "test");
	cr_expect(rd(VIRTIO_MMIO_STATUS) & VIRTIO_S_NEEDS_RESET);
	cr_expect(rd(VIRTIO_MMIO_INT_STATUS) & VIRTIO_INT_CONFIG);
	wr(VIRTIO_MMIO_STATUS, 0);
	cr_expect_eq(rd(VIRTIO_MMIO_STATUS), 0);
	cr_expect_eq(rd(VIRTIO_MMIO_INT_STATUS), 0);
	cr_expect_eq(rd(VIRTIO_MMIO_QUEUE_READY), 0);
	cr_expect_eq(dev->q[0].num, 0);
	cr_expect_eq(dev->q[0].desc, 0);
	cr_expect_eq(dev->q[0].avail, 0);
	cr_expect_eq(dev->q[0].used, 0);
	cr_expect_eq(dev->q[0].last_avail, 0);
	cr_expect_eq(dev->drv_features, 0);
	cr_expect_null(dev->broken);
	cr_expect_geq(dev->q[0].kick_fd, 0, "reset lost the kick eventfd");
}

Test(mmio, narrow_and_misaligned_register_accesses_are_ignored)
{
	uint8_t b = VIRTIO_S_ACKNOWLEDGE;
	uint16_t h = 0xffff;
	uint64_t q = ~0ULL;
	uint32_t v = ~0u;

	mmio(VIRTIO_MMIO_STATUS, &b, 1, true);
	cr_expect_eq(rd(VIRTIO_MMIO_STATUS), 0);
	mmio(VIRTIO_MMIO_MAGIC, &h, 2, false);
	cr_expect_eq(h, 0);
	mmio(VIRTIO_MMIO_MAGIC, &q, 8, false);
	cr_expect_eq(q, 0);
	mmio(VIRTIO_MMIO_MAGIC + 2, &v, 4, false);
	cr_expect_eq(v, 0);
	v = VIRTIO_S_ACKNOWLEDGE;
	mmio(VIRTIO_MMIO_STATUS + 1, &v, 4, true);
	cr_expect_eq(rd(VIRTIO_MMIO_STATUS), 0);
	/* Unknown but aligned: reads 0, writes go nowhere. */
	cr_expect_eq(rd(0x0c0), 0);
	wr(0x0c0, 1);
}

Test(mmio, config_space_past_its_length_reads_0)
{
	uint32_t v = ~0u;

	/* rng has no config space at all. */
	mmio(VIRTIO_MMIO_CONFIG, &v, 4, false);
	cr_expect_eq(v, 0);
	v = ~0u;
	mmio(VIRTIO_MMIO_SIZE - 4, &v, 4, false);
	cr_expect_eq(v, 0);
	wr(VIRTIO_MMIO_CONFIG, 1); /* ignored, no crash */
}

Test(mmio, rng_fills_a_buffer_and_interrupts)
{
	bring_up(8);
	desc(&dev->q[0], 0, BUF, 64, VIRTQ_DESC_F_WRITE, 0);
	offer(&dev->q[0], 0);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	run();
	cr_expect_eq(get16(USED + 2), 1);
	cr_expect_eq(get32(USED + 4), 0);
	cr_expect_eq(get32(USED + 8), 64);
	cr_expect_eq(irqs, 1);
	cr_expect_eq(last_gsi, VIRTIO_GSI_FIRST + 1);
	cr_expect(rd(VIRTIO_MMIO_INT_STATUS) & VIRTIO_INT_USED);
	wr(VIRTIO_MMIO_INT_ACK, VIRTIO_INT_USED);
	cr_expect_eq(rd(VIRTIO_MMIO_INT_STATUS), 0);
}

Test(mmio, broken_chain_needs_reset_and_stops_the_queue)
{
	bring_up(8);
	desc(&dev->q[0], 0, BUF, 64, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
	offer(&dev->q[0], 0);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	run();
	cr_expect(rd(VIRTIO_MMIO_STATUS) & VIRTIO_S_NEEDS_RESET);
	cr_expect(rd(VIRTIO_MMIO_INT_STATUS) & VIRTIO_INT_CONFIG);
	cr_expect_eq(irqs, 1);
	cr_expect_eq(get16(USED + 2), 0);
	/* Later requests wait for the reset. */
	desc(&dev->q[0], 1, BUF, 64, VIRTQ_DESC_F_WRITE, 0);
	offer(&dev->q[0], 1);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	run();
	cr_expect_eq(get16(USED + 2), 0);
}

/* ---- blk over a small image ---- */

#define IMG_SECTORS 16

static char img[64];

static void blk_init(void)
{
	struct virtio_spec s = {.kind = VIRTIO_BLK, .path = img};
	uint8_t data[IMG_SECTORS * 512];
	char why[256];
	int fd;

	ram_init();
	irqs = 0;
	strcpy(img, "/tmp/slos-virtio-test.XXXXXX");
	fd = mkstemp(img);
	cr_assert_geq(fd, 0);
	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = i / 512 + 1;
	cr_assert_eq(write(fd, data, sizeof(data)), (ssize_t)sizeof(data));
	close(fd);
	dev = virtio__blk_new(&s, why, sizeof(why));
	cr_assert_not_null(dev, "%s", why);
	strcpy(dev->name, "blk0");
	cr_assert_eq(virtio__init(dev, 0, &m, irq, NULL), 0);
}

static void blk_fini(void)
{
	dev_fini();
	unlink(img);
}

/* Wait for blk's io_uring to complete what it was given. */
static void wait_io(void)
{
	struct pollfd p = {.fd = dev->fds[0], .events = POLLIN};

	cr_assert_eq(poll(&p, 1, 5000), 1, "no completion");
}

/* Chain 0: a read of sector 2 into BUF + 0x100, the status at
 * BUF + 0x400. */
static void blk_read_chain(void)
{
	struct virtq *q = &dev->q[0];
	uint8_t hdr[16] = {0}; /* type 0: in */

	hdr[8] = 2;
	memcpy(ram + BUF, hdr, 16);
	ram[BUF + 0x400] = 0xff;
	desc(q, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
	desc(q, 1, BUF + 0x100, 512, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
	desc(q, 2, BUF + 0x400, 1, VIRTQ_DESC_F_WRITE, 0);
}

/* The read offered and submitted; its completion is not reaped yet. */
static void blk_read_request(void)
{
	blk_read_chain();
	offer(&dev->q[0], 0);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	run();
}

TestSuite(blk, .init = blk_init, .fini = blk_fini);

Test(blk, config_space)
{
	uint64_t cap = 0;
	uint32_t v = ~0u;
	uint8_t b = 0xff;

	mmio(VIRTIO_MMIO_CONFIG, &cap, 8, false);
	cr_expect_eq(cap, IMG_SECTORS);
	cr_expect_eq(rd(VIRTIO_MMIO_CONFIG + 20), 512);
	mmio(VIRTIO_MMIO_CONFIG + 21, &b, 1, false);
	cr_expect_eq(b, 2);
	/* Crossing the end of the 24 bytes, and past them: zeros. */
	mmio(VIRTIO_MMIO_CONFIG + 22, &v, 4, false);
	cr_expect_eq(v, 0);
	cr_expect_eq(rd(VIRTIO_MMIO_CONFIG + 24), 0);
	b = 0xff;
	mmio(VIRTIO_MMIO_CONFIG + 24, &b, 1, false);
	cr_expect_eq(b, 0);
}

Test(blk, read_request)
{
	bring_up(8);
	blk_read_request();
	wait_io();
	run();
	cr_expect_eq(ram[BUF + 0x400], 0, "status");
	cr_expect_eq(ram[BUF + 0x100], 3);
	cr_expect_eq(ram[BUF + 0x100 + 511], 3);
	cr_expect_eq(get16(USED + 2), 1);
	cr_expect_eq(get32(USED + 8), 513);
	cr_expect_eq(irqs, 1);
}

/* The driver takes a ready queue away while a read is in flight, makes
 * it 0 entries long and puts its used ring at the last bytes of RAM; the
 * completion must not be published past RAM. */
Test(blk, completion_after_the_queue_shrank_stays_in_ram)
{
	bring_up(8);
	blk_read_request();
	wait_io();
	wr(VIRTIO_MMIO_QUEUE_READY, 0);
	wr(VIRTIO_MMIO_QUEUE_NUM, 0);
	wr(VIRTIO_MMIO_QUEUE_USED_LO, RAM_SIZE - 6);
	run();
	cr_expect(canary_intact(), "a completion was written past guest RAM");
	cr_expect_eq(ram[BUF + 0x400], 0, "status");
}

Test(blk, reset_waits_for_io_and_drops_it)
{
	bring_up(8);
	blk_read_request();
	wr(VIRTIO_MMIO_STATUS, 0);
	cr_expect_eq(rd(VIRTIO_MMIO_STATUS), 0);
	run();
	cr_expect_eq(get16(USED + 2), 0, "published after the reset");
}

/* Buffers go back to the driver only when their I/O completes, so a
 * driver that keeps offering (here the same chain over and over) can have
 * more requests in flight than blk has room for: that breaks the device
 * instead of overrunning its request table. */
Test(blk, more_requests_in_flight_than_the_queue_holds)
{
	struct virtq *q = &dev->q[0];

	bring_up(128);
	blk_read_chain();
	for (unsigned i = 0; i < 128; i++)
		offer(q, 0);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	run(); /* 128 submitted, none reaped */
	cr_expect_not(rd(VIRTIO_MMIO_STATUS) & VIRTIO_S_NEEDS_RESET);
	offer(q, 0);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	wait_io();
	run(); /* the queue first: the 129th finds no room */
	cr_expect(rd(VIRTIO_MMIO_STATUS) & VIRTIO_S_NEEDS_RESET);
	cr_expect_str_eq(dev->broken, "more requests than the queue holds");
	/* What was in flight still completes, and a reset recovers. */
	for (int i = 0; i < 100 && get16(USED + 2) < 128; i++) {
		wait_io();
		run();
	}
	cr_expect_eq(get16(USED + 2), 128);
	wr(VIRTIO_MMIO_STATUS, 0);
	cr_expect_eq(rd(VIRTIO_MMIO_STATUS), 0);
}

/* ---- --disk and --net ---- */

Test(parse, disk)
{
	struct virtio_spec s;
	char why[128];

	cr_assert_eq(virtio__parse_disk("img,ro,host=1", &s, why, sizeof(why)),
		     0, "%s", why);
	cr_expect_eq(s.kind, VIRTIO_BLK);
	cr_expect_str_eq(s.path, "img");
	cr_expect(s.ro);
	cr_expect_eq(s.host, 1);
	free((char *)s.path);
	cr_assert_eq(virtio__parse_disk("/a/b.img", &s, why, sizeof(why)), 0);
	cr_expect_str_eq(s.path, "/a/b.img");
	cr_expect_not(s.ro);
	cr_expect_eq(s.host, 0);
	free((char *)s.path);
}

Test(parse, disk_refusals)
{
	static const char *const bad[] = {
	    "img,bogus", "img,ro=1",   "img,host",    "img,host=256",
	    "img,host=", "img,host=x", "img,host=-1", "",
	};
	struct virtio_spec s;
	char why[128];

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = 0;
		cr_expect_eq(virtio__parse_disk(bad[i], &s, why, sizeof(why)),
			     -1, "'%s' accepted", bad[i]);
		cr_expect_neq(why[0], 0, "'%s': no reason", bad[i]);
	}
	virtio__parse_disk("img,bogus", &s, why, sizeof(why));
	cr_expect(strstr(why, "bogus"), "%s", why);
}

Test(parse, net)
{
	struct virtio_spec s;
	char why[128];

	cr_assert_eq(virtio__parse_net("tap", &s, why, sizeof(why)), 0, "%s",
		     why);
	cr_expect_eq(s.kind, VIRTIO_NET);
	cr_expect_null(s.path);
	cr_expect_not(s.mac_set);
	cr_assert_eq(virtio__parse_net("tap,name=tap0,mac=02:00:5e:10:00:01,"
				       "host=2",
				       &s, why, sizeof(why)),
		     0, "%s", why);
	cr_expect_str_eq(s.path, "tap0");
	cr_expect(s.mac_set);
	cr_expect_arr_eq(s.mac, ((uint8_t[]){2, 0, 0x5e, 0x10, 0, 1}), 6);
	cr_expect_eq(s.host, 2);
	free((char *)s.path);
}

Test(parse, net_refusals)
{
	static const char *const bad[] = {
	    "tap,mac=01:00:5e:00:00:01",    /* multicast */
	    "tap,mac=02:00:00:00:00",	    /* short */
	    "tap,mac=02:00:00:00:00:01:02", /* long */
	    "tap,mac=02:00:00:00:00:0g",    /* not hex */
	    "tap,name=toolongname12345678", /* past IFNAMSIZ */
	    "tap,name=",		    /* empty */
	    "user",			    /* no such backend */
	    "tap,bogus",
	    "tap,name=tap0,bogus", /* the name is not kept (or leaked) */
	    "user,name=tap0",
	};
	struct virtio_spec s;
	char why[128];

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = 0;
		cr_expect_eq(virtio__parse_net(bad[i], &s, why, sizeof(why)),
			     -1, "'%s' accepted", bad[i]);
		cr_expect_neq(why[0], 0, "'%s': no reason", bad[i]);
		cr_expect_null(s.path, "'%s'", bad[i]);
	}
}

Test(parse, net_last_name_counts)
{
	struct virtio_spec s;
	char why[128];

	cr_assert_eq(
	    virtio__parse_net("tap,name=a,name=b", &s, why, sizeof(why)), 0,
	    "%s", why);
	cr_expect_str_eq(s.path, "b");
	free((char *)s.path);
}
