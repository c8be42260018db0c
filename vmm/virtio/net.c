// SPDX-License-Identifier: MIT
/*
 * virtio-net (virtio 1.2 5.1) on a tap: one receive and one transmit
 * queue, no control queue. The tap carries the 12-byte virtio_net_hdr of
 * VERSION_1 in front of every frame (IFF_VNET_HDR), so frames go between
 * the tap and guest RAM with one readv/writev, and the checksum and TSO
 * metadata pass through as they are: the host kernel checks (TX) and
 * produces (RX) them. What the tap may hand over is set from the features
 * the driver took (TUNSETOFFLOAD at DRIVER_OK); a header the driver did
 * not agree to is dropped.
 *
 * Receive buffers: with MRG_RXBUF (Linux then posts one page-fragment
 * buffer per descriptor, a full ring of them) a frame spans as many as it
 * needs. The tap cannot say how long its next frame is, so before each
 * read the device takes buffers for the longest frame it may hand over
 * (64 KiB with guest TSO) and puts the unused ones back (virtq__unpop).
 * Without MRG_RXBUF each buffer holds a whole frame (Linux: 1526 bytes,
 * or 64 KiB "big" chains of 19 descriptors with guest TSO, 13 of them in
 * a ring of 256).
 *
 * A tap stays readable while a frame waits, and the worker polls
 * level-triggered, so with no buffer to take a frame the tap leaves the
 * poll set (d->fds[0] = -1) until the driver adds buffers (the receive
 * queue's notify). Frames meanwhile wait in the tap's own queue, which
 * drops when full, like any NIC's.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "vmm/virtio/virtio.h"

/* Feature bits (5.1.3). */
#define NET_F_CSUM	 (1ULL << 0)
#define NET_F_GUEST_CSUM (1ULL << 1)
#define NET_F_MAC	 (1ULL << 5)
#define NET_F_GUEST_TSO4 (1ULL << 7)
#define NET_F_GUEST_TSO6 (1ULL << 8)
#define NET_F_HOST_TSO4	 (1ULL << 11)
#define NET_F_HOST_TSO6	 (1ULL << 12)
#define NET_F_MRG_RXBUF	 (1ULL << 15)
#define NET_F_STATUS	 (1ULL << 16)

#define NET_S_LINK_UP 1

/* virtio_net_hdr (5.1.6) */
#define HDR_F_NEEDS_CSUM 1
#define GSO_NONE	 0
#define GSO_TCPV4	 1
#define GSO_TCPV6	 4
#define GSO_ECN		 0x80

struct net_hdr {
	uint8_t flags, gso_type;
	uint16_t hdr_len, gso_size, csum_start, csum_offset;
	uint16_t num_buffers; /* VERSION_1: always there */
} __attribute__((packed));

#define HDR_LEN	  sizeof(struct net_hdr)
#define ETH_HLEN  14
#define RXQ	  0
#define TXQ	  1
#define QUEUE_MAX VIRTQ_MAX_SIZE
/* The longest frames the tap hands over: a 64 KiB TSO frame (IP's limit
 * plus the Ethernet and VLAN headers), else one of a 1500-byte MTU. */
#define TSO_FRAME   (65535 + ETH_HLEN + 4)
#define PLAIN_FRAME (1500 + ETH_HLEN + 4)
/* readv's limit (UIO_MAXIOV). */
#define RX_IOV 1024
/* Frames taken from the tap per readiness: the worker then looks at
 * the transmit queue's kick again, and interrupts come in batches. */
#define RX_BATCH 64

struct net {
	struct virtio_dev dev;
	int tap;
	char ifname[IFNAMSIZ];
	/* One frame's buffers: the first (it gets the header), the one
	 * being taken, and what readv fills after the header. */
	struct virtq_chain first, c;
	struct iovec iov[RX_IOV];
	uint8_t spill; /* one byte past the buffers */
	uint16_t heads[QUEUE_MAX];
	uint32_t room[QUEUE_MAX];
};

static struct net *to_net(struct virtio_dev *d)
{
	return (struct net *)d;
}

static bool took(const struct virtio_dev *d, uint64_t f)
{
	return d->drv_features & f;
}

/* The tap leaves or rejoins the worker's poll set (it reads d->fds[]
 * again after each round). */
static void poll_tap(struct virtio_dev *d, bool on)
{
	d->fds[0] = on ? to_net(d)->tap : -1;
}

static void tx(struct virtio_dev *d, struct virtq *q, struct virtq_chain *c)
{
	struct net *n = to_net(d);
	ssize_t w;

	/* The header and the frame may be split over descriptors anyhow:
	 * the tap takes them as one gathered write. */
	if (c->out_len < HDR_LEN + ETH_HLEN) {
		d->st.errors++;
	} else {
		do
			w = writev(n->tap, c->iov, c->nr_out);
		while (w < 0 && errno == EINTR);
		/* A tap that is down (EIO), a header the host kernel refuses
		 * (EINVAL) or no memory: the frame is lost, as on a wire. */
		if (w < 0)
			d->st.errors++;
		else
			d->st.bytes_out += c->out_len - HDR_LEN;
	}
	virtq__push(d, q, c->head, 0);
}

/* The header as the driver may see it: what it did not negotiate is
 * dropped (a previous driver's offloads, from before its reset, can still
 * be queued in the tap), and DATA_VALID is cleared without GUEST_CSUM
 * (5.1.6.4.1). */
static bool fix_hdr(const struct virtio_dev *d, struct net_hdr *h)
{
	uint8_t gso = h->gso_type & ~GSO_ECN;

	if ((h->flags & HDR_F_NEEDS_CSUM) && !took(d, NET_F_GUEST_CSUM))
		return false;
	if ((h->gso_type & GSO_ECN) ||
	    (gso == GSO_TCPV4 && !took(d, NET_F_GUEST_TSO4)) ||
	    (gso == GSO_TCPV6 && !took(d, NET_F_GUEST_TSO6)) ||
	    (gso != GSO_NONE && gso != GSO_TCPV4 && gso != GSO_TCPV6))
		return false;
	if (!took(d, NET_F_GUEST_CSUM))
		h->flags = 0;
	return true;
}

/* Append c's in-buffers past their first skip bytes to n->iov[*k...]. */
static bool gather(struct net *n, const struct virtq_chain *c, size_t skip,
		   unsigned *k)
{
	const struct iovec *in = c->iov + c->nr_out;

	if (*k + c->nr_in > RX_IOV - 1) /* and one for spill */
		return false;
	for (unsigned i = 0; i < c->nr_in; i++) {
		size_t l = in[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		n->iov[(*k)++] =
		    (struct iovec){(uint8_t *)in[i].iov_base + skip, l - skip};
		skip = 0;
	}
	return true;
}

/*
 * Buffers for the next frame: one chain, or with MRG_RXBUF as many as
 * hold the longest frame the tap may hand over. How many were taken (their
 * in-buffers in n->iov[1, *segs), less the header's bytes: iov[0] is for
 * a local copy of it), 0 if there are not enough yet (none kept), -1 if
 * the queue broke.
 */
static int take(struct virtio_dev *d, unsigned *segs)
{
	struct net *n = to_net(d);
	struct virtq *q = &d->q[RXQ];
	bool mrg = took(d, NET_F_MRG_RXBUF);
	uint64_t need = HDR_LEN + (took(d, NET_F_GUEST_TSO4 | NET_F_GUEST_TSO6)
				       ? TSO_FRAME
				       : PLAIN_FRAME);
	uint64_t have = 0;
	unsigned k = 0;
	const char *why;

	*segs = 1;
	while (k < QUEUE_MAX) {
		struct virtq_chain *c = k ? &n->c : &n->first;
		int r = virtq__pop(d->mem, q, c, &why);

		if (r < 0) {
			virtq__unpop(q, k);
			virtio__fail(d, why);
			return -1;
		}
		if (!r)
			break;
		/* Room for the header, and without MRG_RXBUF for a frame
		 * (5.1.6.3.1); a first chain without it goes back empty. */
		if (c->in_len < HDR_LEN + (k || mrg ? 0 : ETH_HLEN)) {
			if (k) {
				virtq__unpop(q, 1);
				return k;
			}
			d->st.errors++;
			virtq__push(d, q, c->head, 0);
			continue;
		}
		if (!gather(n, c, k ? 0 : HDR_LEN, segs)) {
			virtq__unpop(q, 1);
			return k;
		}
		n->heads[k] = c->head;
		n->room[k] = c->in_len;
		have += c->in_len;
		k++;
		if (!mrg || have >= need)
			return k;
	}
	/* Short of the longest frame: wait for the driver's next buffers,
	 * unless the ring cannot give more (every entry is taken). */
	if (k && k < q->num && k < QUEUE_MAX) {
		virtq__unpop(q, k);
		return 0;
	}
	return k;
}

/* One frame from the tap into the guest's buffers: true if one was moved
 * or lost; false if the tap is empty, or the buffers ran short (the tap
 * is then left alone until the driver adds some). */
static bool rx_frame(struct virtio_dev *d)
{
	struct net *n = to_net(d);
	struct virtq *q = &d->q[RXQ];
	uint64_t have = 0, left;
	struct net_hdr h;
	unsigned segs, k, m;
	int t = take(d, &segs);
	ssize_t r;

	if (t <= 0) {
		poll_tap(d, false);
		return false;
	}
	k = t;
	for (unsigned i = 0; i < k; i++)
		have += n->room[i];
	/* The header comes to a local copy: it is checked and fixed where
	 * the driver cannot change it meanwhile. */
	n->iov[0] = (struct iovec){&h, HDR_LEN};
	n->iov[segs++] = (struct iovec){&n->spill, 1};
	do
		r = readv(n->tap, n->iov, segs);
	while (r < 0 && errno == EINTR);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		virtq__unpop(q, k);
		return false;
	}
	if (r < 0) {
		/* The tap is gone (ip link del): no more frames, and no
		 * spinning on its error either. */
		virtq__unpop(q, k);
		poll_tap(d, false);
		virtio__fail(d, "the tap stopped working");
		return false;
	}
	/* A frame longer than the buffers reaches the spare byte past them,
	 * whether the tap then returns its whole length (older kernels) or
	 * what it copied: either way more than they hold. A frame lost, as
	 * a NIC loses one; its buffers serve the next. */
	if (r < (ssize_t)(HDR_LEN + ETH_HLEN) || (uint64_t)r > have ||
	    !fix_hdr(d, &h)) {
		d->st.errors++;
		virtq__unpop(q, k);
		return true;
	}
	left = r;
	for (m = 0; m < k && left; m++) {
		n->room[m] = left < n->room[m] ? left : n->room[m];
		left -= n->room[m];
	}
	h.num_buffers = m;
	virtq__write(&n->first, 0, &h, HDR_LEN);
	virtq__push_n(d, q, n->heads, n->room, m);
	virtq__unpop(q, k - m);
	d->st.bytes_in += r - HDR_LEN;
	return true;
}

static void rx(struct virtio_dev *d)
{
	struct virtq *q = &d->q[RXQ];

	for (unsigned i = 0; i < RX_BATCH; i++) {
		if (!(d->status & VIRTIO_S_DRIVER_OK) || d->broken ||
		    !q->ready) {
			poll_tap(d, false);
			return;
		}
		if (!rx_frame(d))
			return;
	}
}

static void notify(struct virtio_dev *d, unsigned q)
{
	if (q == TXQ) {
		virtio__each(d, q, tx);
	} else if (d->fds[0] < 0) {
		/* New receive buffers: frames the tap held can come. */
		poll_tap(d, true);
		rx(d);
	}
}

static void ready_fd(struct virtio_dev *d, unsigned i)
{
	rx(d);
}

/* The tap hands over only what the driver can take: partial checksums
 * with GUEST_CSUM, TSO frames with GUEST_TSO4/6; else the host kernel
 * completes them before they reach the tap. */
static int set_offload(struct net *n, uint64_t f)
{
	unsigned off = 0;

	if (f & NET_F_GUEST_CSUM) {
		off |= TUN_F_CSUM;
		if (f & NET_F_GUEST_TSO4)
			off |= TUN_F_TSO4;
		if (f & NET_F_GUEST_TSO6)
			off |= TUN_F_TSO6;
	}
	return ioctl(n->tap, TUNSETOFFLOAD, off);
}

static void start(struct virtio_dev *d)
{
	if (set_offload(to_net(d), d->drv_features))
		virtio__fail(d, "tap: TUNSETOFFLOAD refused the offloads");
}

static void net_reset(struct virtio_dev *d)
{
	set_offload(to_net(d), 0);
}

static void net_free(struct virtio_dev *d)
{
	struct net *n = to_net(d);

	if (n->tap >= 0)
		close(n->tap);
	free(n);
}

static const struct virtio_ops net_ops = {
    .device_id = VIRTIO_ID_NET,
    .features = NET_F_MAC | NET_F_STATUS | NET_F_MRG_RXBUF | NET_F_CSUM |
		NET_F_GUEST_CSUM | NET_F_HOST_TSO4 | NET_F_HOST_TSO6 |
		NET_F_GUEST_TSO4 | NET_F_GUEST_TSO6,
    .nr_queues = 2,
    .queue_max = QUEUE_MAX,
    .start = start,
    .notify = notify,
    .ready_fd = ready_fd,
    .reset = net_reset,
    .free = net_free,
};

static const char *hint(int e)
{
	switch (e) {
	case EPERM:
	case EACCES:
		return " (needs CAP_NET_ADMIN, or a tap made beforehand for "
		       "this user: ip tuntap add NAME mode tap user USER)";
	case ENOENT:
	case ENODEV:
		return " (no tun driver: modprobe tun)";
	case EBUSY:
		return " (another process has that tap open)";
	case EINVAL:
		return " (that name is an interface other than a "
		       "single-queue tap)";
	}
	return "";
}

static int open_tap(struct net *n, const struct virtio_spec *s, char *why,
		    size_t len)
{
	struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR};
	const char *name = s->path;
	int sz = HDR_LEN, e;

	if (s->tap_open) {
		/* A copy: the spec's stays open for a move back here. */
		n->tap = fcntl(s->tap_fd, F_DUPFD_CLOEXEC, 0);
		if (ioctl(n->tap, TUNGETIFF, &ifr)) {
			snprintf(why, len, "--net: TUNGETIFF: %s",
				 strerror(errno));
			return -1;
		}
		snprintf(n->ifname, IFNAMSIZ, "%s", ifr.ifr_name);
		return 0;
	}
	n->tap = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (n->tap < 0) {
		e = errno;
		snprintf(why, len, "--net tap%s%s: /dev/net/tun: %s%s",
			 name ? ",name=" : "", name ? name : "", strerror(e),
			 hint(e));
		return -1;
	}
	if (name)
		snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	if (ioctl(n->tap, TUNSETIFF, &ifr)) {
		e = errno;
		snprintf(why, len, "--net tap%s%s: TUNSETIFF: %s%s",
			 name ? ",name=" : "", name ? name : "", strerror(e),
			 hint(e));
		return -1;
	}
	snprintf(n->ifname, IFNAMSIZ, "%s", ifr.ifr_name);
	/* x86 is little-endian like VERSION_1's header, so no TUNSETVNETLE. */
	if (ioctl(n->tap, TUNSETVNETHDRSZ, &sz) || set_offload(n, 0)) {
		e = errno;
		snprintf(why, len, "--net tap,name=%s: vnet header: %s",
			 n->ifname, strerror(e));
		return -1;
	}
	return 0;
}

/* 52:54:00 (locally administered, QEMU's prefix) and 3 bytes of a hash of
 * the tap's name: the same command line gives the same address, and VMs on
 * one host, each on a tap of its own, differ. */
static void default_mac(const char *ifname, uint8_t mac[6])
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (const char *p = ifname; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	mac[0] = 0x52;
	mac[1] = 0x54;
	mac[2] = 0x00;
	mac[3] = h >> 16;
	mac[4] = h >> 8;
	mac[5] = h;
}

struct virtio_dev *virtio__net_new(const struct virtio_spec *s, char *why,
				   size_t len)
{
	struct net *n = calloc(1, sizeof(*n));
	uint16_t st = NET_S_LINK_UP;

	if (!n) {
		snprintf(why, len, "out of memory");
		return NULL;
	}
	n->dev.ops = &net_ops;
	n->dev.priv = n;
	n->dev.fds[1] = -1;
	if (open_tap(n, s, why, len)) {
		net_free(&n->dev);
		return NULL;
	}
	n->dev.fds[0] = n->tap;
	/* The host side needs the name to set the tap up. */
	if (!s->path)
		fprintf(stderr, "slos: --net tap: the kernel named it %s\n",
			n->ifname);
	/* Config (5.1.4): mac, status. */
	if (s->mac_set)
		memcpy(n->dev.config, s->mac, 6);
	else
		default_mac(n->ifname, n->dev.config);
	memcpy(n->dev.config + 6, &st, 2);
	n->dev.config_len = 8;
	return &n->dev;
}

int virtio__net_preopen(struct virtio_spec *s, unsigned nr, char *why,
			size_t len)
{
	for (unsigned i = 0; i < nr; i++) {
		struct net n = {.tap = -1};

		if (s[i].kind != VIRTIO_NET || s[i].host || s[i].tap_open)
			continue;
		if (open_tap(&n, &s[i], why, len)) {
			if (n.tap >= 0)
				close(n.tap);
			return -1;
		}
		s[i].tap_fd = n.tap;
		s[i].tap_open = true;
	}
	return 0;
}
