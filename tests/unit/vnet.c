// SPDX-License-Identifier: MIT
/*
 * virtio-net (vmm/virtio/net.c) driven register by register, on a real
 * tap in a network namespace of each test's own (criterion runs every test
 * in a process of its own; unshare needs CAP_SYS_ADMIN, the tap
 * CAP_NET_ADMIN: without them the tests skip). The far end of the tap is
 * a packet socket bound to it: what it sends the device receives, what
 * the device transmits it reads. The worker's loop runs here, one round
 * at a time, as in tests/unit/virtio.c.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmm/virtio/virtio.h"

#define RAM_SIZE  0x40000ULL
#define CANARY	  64
#define RX_DESC	  0x1000ULL
#define RX_AVAIL  0x2000ULL
#define RX_USED	  0x3000ULL
#define TX_DESC	  0x4000ULL
#define TX_AVAIL  0x5000ULL
#define TX_USED	  0x6000ULL
#define BUF	  0x8000ULL
#define QNUM	  16
#define HDR	  12
#define TAP	  "vnt0"
#define ETHERTYPE 0x88b5 /* local experimental: nothing else sends it */

#define F_CSUM	    (1u << 0)
#define F_MAC	    (1u << 5)
#define F_MRG_RXBUF (1u << 15)
#define F_STATUS    (1u << 16)

static uint8_t *ram;
static struct mem m;
static struct virtio_dev *dev;
static int tap = -1, pkt = -1;
static unsigned irqs;

/* ---- guest RAM and the driver's side of the queues ---- */

static void desc(uint64_t table, unsigned i, uint64_t addr, uint32_t len,
		 uint16_t flags, uint16_t next)
{
	uint8_t *p = ram + table + 16 * i;

	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
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

static void offer(uint64_t avail, uint16_t head)
{
	uint16_t idx = get16(avail + 2);

	memcpy(ram + avail + 4 + 2 * (idx % QNUM), &head, 2);
	idx++;
	memcpy(ram + avail + 2, &idx, 2);
}

/* Used entry i of a ring: its head and length. */
static uint32_t used_len(uint64_t used, unsigned i)
{
	return get32(used + 4 + 8 * i + 4);
}

static uint32_t used_head(uint64_t used, unsigned i)
{
	return get32(used + 4 + 8 * i);
}

/* ---- the transport ---- */

static void irq(void *arg, unsigned gsi)
{
	irqs++;
}

static void wr(uint64_t off, uint32_t v)
{
	dev->io.access(&dev->io, off, (uint8_t *)&v, 4, true);
}

static uint32_t rd(uint64_t off)
{
	uint32_t v = 0;

	dev->io.access(&dev->io, off, (uint8_t *)&v, 4, false);
	return v;
}

static void setup_queue(unsigned sel, uint64_t d, uint64_t a, uint64_t u)
{
	wr(VIRTIO_MMIO_QUEUE_SEL, sel);
	wr(VIRTIO_MMIO_QUEUE_NUM, QNUM);
	wr(VIRTIO_MMIO_QUEUE_DESC_LO, d);
	wr(VIRTIO_MMIO_QUEUE_AVAIL_LO, a);
	wr(VIRTIO_MMIO_QUEUE_USED_LO, u);
	wr(VIRTIO_MMIO_QUEUE_READY, 1);
}

/* The driver's probe with feature word lo (and VERSION_1), both queues,
 * DRIVER_OK. */
static void bring_up(uint32_t lo)
{
	uint32_t s = VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER;

	wr(VIRTIO_MMIO_STATUS, s);
	wr(VIRTIO_MMIO_DRV_FEATURES_SEL, 0);
	wr(VIRTIO_MMIO_DRV_FEATURES, lo);
	wr(VIRTIO_MMIO_DRV_FEATURES_SEL, 1);
	wr(VIRTIO_MMIO_DRV_FEATURES, 1);
	wr(VIRTIO_MMIO_STATUS, s | VIRTIO_S_FEATURES_OK);
	cr_assert(rd(VIRTIO_MMIO_STATUS) & VIRTIO_S_FEATURES_OK);
	setup_queue(0, RX_DESC, RX_AVAIL, RX_USED);
	setup_queue(1, TX_DESC, TX_AVAIL, TX_USED);
	wr(VIRTIO_MMIO_STATUS, s | VIRTIO_S_FEATURES_OK | VIRTIO_S_DRIVER_OK);
	cr_assert(rd(VIRTIO_MMIO_STATUS) & VIRTIO_S_DRIVER_OK);
}

/* One round of the worker (mmio.c): kicked queues, then the device's
 * fds as they are now (-1: not polled). */
static void run(void)
{
	struct pollfd p[2 + VIRTIO_DEV_FDS];
	uint64_t n;
	bool raise;

	for (unsigned i = 0; i < 2; i++)
		p[i] =
		    (struct pollfd){.fd = dev->q[i].kick_fd, .events = POLLIN};
	for (unsigned i = 0; i < VIRTIO_DEV_FDS; i++)
		p[2 + i] = (struct pollfd){.fd = dev->fds[i], .events = POLLIN};
	cr_assert_geq(poll(p, 2 + VIRTIO_DEV_FDS, 0), 0);
	pthread_mutex_lock(&dev->lock);
	for (unsigned i = 0; i < 2; i++)
		if (p[i].revents && read(p[i].fd, &n, 8) == 8 &&
		    (dev->status & VIRTIO_S_DRIVER_OK) && !dev->broken)
			dev->ops->notify(dev, i);
	for (unsigned i = 0; i < VIRTIO_DEV_FDS; i++)
		if (dev->fds[i] >= 0 && p[2 + i].revents)
			dev->ops->ready_fd(dev, i);
	raise = dev->irq_due;
	dev->irq_due = false;
	pthread_mutex_unlock(&dev->lock);
	if (raise)
		dev->irq(dev->irq_arg, dev->gsi);
}

/* ---- the tap's far end ---- */

static void write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (write(fd, s, strlen(s)) < 0)
			(void)0; /* no IPv6 here: nothing to quiet */
		close(fd);
	}
}

static void net_init(void)
{
	struct virtio_spec s = {.kind = VIRTIO_NET, .path = TAP};
	struct ifreq ifr = {0};
	struct sockaddr_ll ll = {.sll_family = AF_PACKET,
				 .sll_protocol = htons(ETH_P_ALL)};
	void *p = NULL;
	char why[256];
	int fd;

	if (unshare(CLONE_NEWNET))
		cr_skip_test("unshare(CLONE_NEWNET): %s (needs root)",
			     strerror(errno));
	if (access("/dev/net/tun", F_OK))
		cr_skip_test("no /dev/net/tun");
	/* IPv6 would send its own frames (DAD, router solicitations) as
	 * soon as the tap is up. */
	write_file("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
	cr_assert_eq(posix_memalign(&p, 4096, RAM_SIZE + CANARY), 0);
	ram = p;
	memset(ram, 0, RAM_SIZE);
	memset(ram + RAM_SIZE, 0xa5, CANARY);
	m = (struct mem){
	    .hva = ram, .size = RAM_SIZE, .lowmem = RAM_SIZE, .top = RAM_SIZE};
	dev = virtio__net_new(&s, why, sizeof(why));
	cr_assert_not_null(dev, "%s", why);
	strcpy(dev->name, "net0");
	tap = dev->fds[0];
	cr_assert_eq(virtio__init(dev, 0, &m, irq, NULL), 0);
	/* The tap up, and a packet socket on it. */
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert(fd >= 0);
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", TAP);
	cr_assert(!ioctl(fd, SIOCGIFFLAGS, &ifr));
	ifr.ifr_flags |= IFF_UP;
	cr_assert(!ioctl(fd, SIOCSIFFLAGS, &ifr), "%s up: %s", TAP,
		  strerror(errno));
	close(fd);
	pkt = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	cr_assert(pkt >= 0, "packet socket: %s", strerror(errno));
	ll.sll_ifindex = if_nametoindex(TAP);
	cr_assert(!bind(pkt, (struct sockaddr *)&ll, sizeof(ll)));
	irqs = 0;
}

static void net_fini(void)
{
	bool intact = true;

	virtio__stop(dev);
	dev = NULL;
	if (pkt >= 0)
		close(pkt);
	pkt = -1;
	for (unsigned i = 0; ram && i < CANARY; i++)
		intact &= ram[RAM_SIZE + i] == 0xa5;
	cr_expect(intact, "a write past guest RAM");
	free(ram);
	ram = NULL;
}

TestSuite(net, .init = net_init, .fini = net_fini);

/* An Ethernet frame of len bytes: broadcast, our type, payload i * 7. */
static void frame(uint8_t *f, size_t len, uint8_t seed)
{
	memset(f, 0xff, 6);
	memcpy(f + 6, "\x02\x00\x00\x00\x00\x01", 6);
	f[12] = ETHERTYPE >> 8;
	f[13] = ETHERTYPE & 0xff;
	for (size_t i = 14; i < len; i++)
		f[i] = (uint8_t)(i * 7 + seed);
}

/* The far end sends a frame; the tap then has it for the device. */
static void send_frame(size_t len, uint8_t seed)
{
	uint8_t f[2048];
	struct pollfd p = {.fd = tap, .events = POLLIN};

	frame(f, len, seed);
	cr_assert_eq(send(pkt, f, len, 0), (ssize_t)len, "send: %s",
		     strerror(errno));
	cr_assert_eq(poll(&p, 1, 2000), 1, "the tap never had the frame");
}

static void rx_buffer(unsigned i, uint64_t addr, uint32_t len)
{
	desc(RX_DESC, i, addr, len, VIRTQ_DESC_F_WRITE, 0);
	offer(RX_AVAIL, i);
}

Test(net, config_space_mac_and_link)
{
	uint8_t cfg[8];
	uint16_t status;

	for (unsigned i = 0; i < 8; i++)
		dev->io.access(&dev->io, VIRTIO_MMIO_CONFIG + i, &cfg[i], 1,
			       false);
	memcpy(&status, cfg + 6, 2);
	cr_expect(!memcmp(cfg, "\x52\x54\x00", 3), "MAC prefix");
	cr_expect_eq(status, 1, "link up");
	cr_expect_eq(rd(VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_NET);
	wr(VIRTIO_MMIO_DEV_FEATURES_SEL, 0);
	cr_expect_eq(rd(VIRTIO_MMIO_DEV_FEATURES) &
			 (F_MAC | F_STATUS | F_MRG_RXBUF | F_CSUM),
		     F_MAC | F_STATUS | F_MRG_RXBUF | F_CSUM);
}

Test(net, default_mac_is_the_same_for_the_same_tap)
{
	struct virtio_spec s = {.kind = VIRTIO_NET, .path = "vnt1"};
	struct virtio_spec t = {.kind = VIRTIO_NET,
				.path = "vnt1",
				.mac_set = true,
				.mac = {2, 0, 0x5e, 0x10, 0, 1}};
	char why[256];
	struct virtio_dev *a, *b;
	uint8_t mac_a[6];

	a = virtio__net_new(&s, why, sizeof(why));
	cr_assert_not_null(a, "%s", why);
	memcpy(mac_a, a->config, 6);
	a->ops->free(a);
	b = virtio__net_new(&s, why, sizeof(why));
	cr_assert_not_null(b, "%s", why);
	cr_expect(!memcmp(mac_a, b->config, 6));
	cr_expect(memcmp(mac_a, dev->config, 6), "vnt0 and vnt1 differ");
	b->ops->free(b);
	b = virtio__net_new(&t, why, sizeof(why));
	cr_assert_not_null(b, "%s", why);
	cr_expect(!memcmp(b->config, t.mac, 6));
	b->ops->free(b);
}

Test(net, transmit_reaches_the_tap)
{
	uint8_t f[600], got[2048];
	struct pollfd p = {.fd = pkt, .events = POLLIN};
	ssize_t n;

	bring_up(F_MAC);
	run();
	frame(f, sizeof(f), 1);
	/* Header and frame split over three descriptors. */
	memset(ram + BUF, 0, HDR);
	memcpy(ram + BUF + 0x100, f, 100);
	memcpy(ram + BUF + 0x400, f + 100, sizeof(f) - 100);
	desc(TX_DESC, 3, BUF, HDR, VIRTQ_DESC_F_NEXT, 4);
	desc(TX_DESC, 4, BUF + 0x100, 100, VIRTQ_DESC_F_NEXT, 5);
	desc(TX_DESC, 5, BUF + 0x400, sizeof(f) - 100, 0, 0);
	offer(TX_AVAIL, 3);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	run();
	cr_expect_eq(get16(TX_USED + 2), 1);
	cr_expect_eq(used_head(TX_USED, 0), 3);
	cr_expect_eq(used_len(TX_USED, 0), 0);
	cr_expect_eq(dev->st.errors, 0);
	cr_assert_eq(poll(&p, 1, 2000), 1, "nothing came out of the tap");
	n = recv(pkt, got, sizeof(got), 0);
	cr_expect_eq(n, (ssize_t)sizeof(f));
	cr_expect(!memcmp(got, f, sizeof(f)));
	/* Shorter than a header and an Ethernet header: dropped. */
	desc(TX_DESC, 6, BUF, HDR + 10, 0, 0);
	offer(TX_AVAIL, 6);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	run();
	cr_expect_eq(get16(TX_USED + 2), 2);
	cr_expect_eq(dev->st.errors, 1);
}

Test(net, receive_into_one_buffer)
{
	uint8_t f[1000];

	bring_up(F_MAC);
	run();
	rx_buffer(0, BUF, 1526);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	run();
	send_frame(sizeof(f), 2);
	run();
	cr_assert_eq(get16(RX_USED + 2), 1);
	cr_expect_eq(used_head(RX_USED, 0), 0);
	cr_expect_eq(used_len(RX_USED, 0), HDR + sizeof(f));
	cr_expect_eq(ram[BUF], 0, "flags");
	cr_expect_eq(ram[BUF + 1], 0, "gso_type");
	cr_expect_eq(get16(BUF + 10), 1, "num_buffers");
	frame(f, sizeof(f), 2);
	cr_expect(!memcmp(ram + BUF + HDR, f, sizeof(f)));
	cr_expect_eq(irqs, 1);
	cr_expect_eq(dev->st.errors, 0);
}

/* Without MRG_RXBUF a frame longer than the buffer is lost (the buffer
 * takes the next one), and a buffer too small for any frame goes back
 * empty. */
Test(net, receive_drops_what_does_not_fit)
{
	bring_up(F_MAC);
	run();
	rx_buffer(0, BUF, 20);		 /* not even a header and Ethernet's */
	rx_buffer(1, BUF + 0x1000, 200); /* too short for the first frame */
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	run();
	send_frame(1000, 3);
	send_frame(100, 4);
	run();
	cr_assert_eq(get16(RX_USED + 2), 2);
	cr_expect_eq(used_head(RX_USED, 0), 0);
	cr_expect_eq(used_len(RX_USED, 0), 0);
	cr_expect_eq(used_head(RX_USED, 1), 1);
	cr_expect_eq(used_len(RX_USED, 1), HDR + 100, "len %u",
		     used_len(RX_USED, 1));
	cr_expect_eq(ram[BUF + 0x1000 + HDR + 14], (uint8_t)(14 * 7 + 4),
		     "the second frame's payload");
	cr_expect_eq(dev->st.errors, 2);
}

/* With MRG_RXBUF a frame spans buffers, all published at once with
 * num_buffers in the first; the device waits until the ring holds the
 * longest frame, and leaves unused buffers where they were. */
Test(net, receive_mergeable_over_several_buffers)
{
	uint8_t f[1200];

	bring_up(F_MAC | F_MRG_RXBUF);
	run();
	for (unsigned i = 0; i < 4; i++)
		rx_buffer(i, BUF + 0x1000 * i, 512);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	run();
	send_frame(sizeof(f), 5);
	run();
	cr_assert_eq(get16(RX_USED + 2), 3);
	cr_expect_eq(used_len(RX_USED, 0), 512);
	cr_expect_eq(used_len(RX_USED, 1), 512);
	cr_expect_eq(used_len(RX_USED, 2), HDR + sizeof(f) - 1024);
	cr_expect_eq(get16(BUF + 10), 3, "num_buffers");
	frame(f, sizeof(f), 5);
	cr_expect(!memcmp(ram + BUF + HDR, f, 512 - HDR));
	cr_expect(!memcmp(ram + BUF + 0x1000, f + 512 - HDR, 512));
	cr_expect(!memcmp(ram + BUF + 0x2000, f + 1024 - HDR,
			  sizeof(f) - 1024 + HDR));
	cr_expect_eq(dev->q[0].last_avail, 3, "buffer 3 left in the ring");
	/* 512 bytes left: short of a 1518-byte frame, so the tap leaves the
	 * poll set rather than be read into buffers that may not hold it. */
	send_frame(60, 6);
	run();
	cr_expect_eq(get16(RX_USED + 2), 3);
	cr_expect_eq(dev->fds[0], -1);
	run(); /* nothing to do, nothing polled */
	cr_expect_eq(dev->q[0].last_avail, 3);
	for (unsigned i = 4; i < 8; i++)
		rx_buffer(i, BUF + 0x1000 * i, 512);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	run();
	cr_expect_eq(dev->fds[0], tap, "polled again");
	cr_assert_eq(get16(RX_USED + 2), 4);
	cr_expect_eq(used_head(RX_USED, 3), 3);
	cr_expect_eq(used_len(RX_USED, 3), HDR + 60);
	cr_expect_eq(get16(BUF + 0x3000 + 10), 1, "num_buffers");
	cr_expect_eq(dev->st.errors, 0);
}

/* No buffer: the frame waits in the tap, the tap leaves the poll set
 * (the worker would spin on it otherwise) until the driver adds one. */
Test(net, receive_waits_for_buffers_without_spinning)
{
	bring_up(F_MAC);
	run();
	send_frame(80, 7);
	run();
	cr_expect_eq(dev->fds[0], -1);
	cr_expect_eq(get16(RX_USED + 2), 0);
	rx_buffer(0, BUF, 1526);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	run();
	cr_assert_eq(get16(RX_USED + 2), 1);
	cr_expect_eq(used_len(RX_USED, 0), HDR + 80);
	/* That was the only buffer: the tap is out of the poll set again. */
	cr_expect_eq(dev->fds[0], -1);
	send_frame(80, 8);
	rx_buffer(1, BUF + 0x1000, 1526);
	rx_buffer(2, BUF + 0x2000, 1526);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	run();
	cr_assert_eq(get16(RX_USED + 2), 2);
	cr_expect_eq(dev->fds[0], tap, "a buffer left: polled");
}

/* Before DRIVER_OK (and after a reset) frames wait in the tap too. */
Test(net, frames_before_the_driver_wait)
{
	send_frame(80, 8);
	run();
	cr_expect_eq(dev->fds[0], -1);
	bring_up(F_MAC);
	rx_buffer(0, BUF, 1526);
	run(); /* DRIVER_OK kicked the queues */
	cr_assert_eq(get16(RX_USED + 2), 1);
	cr_expect_eq(used_len(RX_USED, 0), HDR + 80);
}

/* A hostile receive chain breaks the device, not the VMM. */
Test(net, broken_receive_chain_needs_reset)
{
	bring_up(F_MAC);
	run();
	desc(RX_DESC, 0, BUF, 64, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
	offer(RX_AVAIL, 0);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	send_frame(80, 9);
	run();
	cr_expect(rd(VIRTIO_MMIO_STATUS) & VIRTIO_S_NEEDS_RESET);
	cr_expect_eq(dev->fds[0], -1, "a broken device polls no tap");
	cr_expect_eq(get16(RX_USED + 2), 0);
	/* Reset and again: the frame is still there. */
	wr(VIRTIO_MMIO_STATUS, 0);
	memset(ram, 0, BUF);
	bring_up(F_MAC);
	rx_buffer(0, BUF, 1526);
	run();
	cr_assert_eq(get16(RX_USED + 2), 1);
	cr_expect_eq(used_len(RX_USED, 0), HDR + 80);
}
