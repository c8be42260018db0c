/* SPDX-License-Identifier: MIT */
/*
 * virtio 1.x devices over the virtio-mmio transport, version 2 (virtio 1.2
 * 4.2), split as kvmtool splits them: a transport (mmio.c) that owns the
 * registers, the queues and a worker thread per device; split virtqueues
 * over guest RAM (queue.c); devices behind struct virtio_ops (blk.c,
 * net.c, rng.c, console.c). docs/virtio.md has the design.
 *
 * Everything a device reads from a queue is guest-controlled: every index,
 * address and length is checked against the queue size and guest RAM, and
 * a queue the driver broke sets DEVICE_NEEDS_RESET instead of being
 * trusted. A device never touches host memory outside guest RAM.
 *
 * Threads: the guest's register accesses arrive on vCPU threads (or, over
 * hosts, on the fabric thread of a forwarded access); queue work runs on
 * the device's worker. Both take the device's lock. Interrupts are raised
 * by the worker after it drops the lock: they are edge-triggered IOAPIC
 * pins, as Firecracker declares its virtio-mmio devices, so no EOI has to
 * come back across hosts.
 */
#ifndef SLOS_VIRTIO_H
#define SLOS_VIRTIO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>

#include "vmm/io.h"
#include "vmm/mem.h"

/* Windows and pins (vmm/acpi.h keeps 5..22 free for these). */
#define VIRTIO_MMIO_BASE 0xD0000000ULL
#define VIRTIO_MMIO_SIZE 0x1000ULL
#define VIRTIO_GSI_FIRST 5
#define VIRTIO_MAX_DEVS	 18 /* pins 5..22 */
#define VIRTIO_MMIO_END	 (VIRTIO_MMIO_BASE + VIRTIO_MAX_DEVS * VIRTIO_MMIO_SIZE)
#define VIRTIO_ACPI_HID	 "LNRO0005"

/* Register offsets (virtio 1.2 4.2.2). */
#define VIRTIO_MMIO_MAGIC	     0x000
#define VIRTIO_MMIO_VERSION	     0x004
#define VIRTIO_MMIO_DEVICE_ID	     0x008
#define VIRTIO_MMIO_VENDOR_ID	     0x00c
#define VIRTIO_MMIO_DEV_FEATURES     0x010
#define VIRTIO_MMIO_DEV_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRV_FEATURES     0x020
#define VIRTIO_MMIO_DRV_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL	     0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX    0x034
#define VIRTIO_MMIO_QUEUE_NUM	     0x038
#define VIRTIO_MMIO_QUEUE_READY	     0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY     0x050
#define VIRTIO_MMIO_INT_STATUS	     0x060
#define VIRTIO_MMIO_INT_ACK	     0x064
#define VIRTIO_MMIO_STATUS	     0x070
#define VIRTIO_MMIO_QUEUE_DESC_LO    0x080
#define VIRTIO_MMIO_QUEUE_DESC_HI    0x084
#define VIRTIO_MMIO_QUEUE_AVAIL_LO   0x090
#define VIRTIO_MMIO_QUEUE_AVAIL_HI   0x094
#define VIRTIO_MMIO_QUEUE_USED_LO    0x0a0
#define VIRTIO_MMIO_QUEUE_USED_HI    0x0a4
#define VIRTIO_MMIO_CONFIG_GEN	     0x0fc
#define VIRTIO_MMIO_CONFIG	     0x100
#define VIRTIO_MMIO_MAGIC_VALUE	     0x74726976 /* "virt" */
#define VIRTIO_MMIO_VENDOR	     0x534f4c53 /* "SLOS" */

/* Device status bits (2.1). */
#define VIRTIO_S_ACKNOWLEDGE 1
#define VIRTIO_S_DRIVER	     2
#define VIRTIO_S_DRIVER_OK   4
#define VIRTIO_S_FEATURES_OK 8
#define VIRTIO_S_NEEDS_RESET 64
#define VIRTIO_S_FAILED	     128

#define VIRTIO_INT_USED	  1
#define VIRTIO_INT_CONFIG 2

#define VIRTIO_F_VERSION_1 (1ULL << 32)

/* Device IDs (5). */
#define VIRTIO_ID_NET	  1
#define VIRTIO_ID_BLK	  2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG	  4

#define VIRTQ_DESC_F_NEXT	   1
#define VIRTQ_DESC_F_WRITE	   2
#define VIRTQ_DESC_F_INDIRECT	   4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

#define VIRTIO_MAX_QUEUES 4
#define VIRTQ_MAX_SIZE	  256
/* Segments of one request; blk announces seg_max from it. */
#define VIRTQ_MAX_SEGS 128

/* One split virtqueue as the driver set it up (2.7). */
struct virtq {
	uint16_t num; /* size the driver chose; a power of 2 */
	bool ready;
	uint64_t desc, avail, used; /* guest-physical */
	uint16_t last_avail;	    /* next avail entry the device takes */
	uint16_t used_idx;	    /* next used entry the device fills */
	int kick_fd;		    /* eventfd: the driver notified */
};

/* One request: its descriptors' buffers, readable ones first. */
struct virtq_chain {
	uint16_t head;
	unsigned nr_out, nr_in;
	uint64_t out_len, in_len;
	struct iovec iov[VIRTQ_MAX_SEGS]; /* [0, nr_out) then nr_in */
};

struct virtio_dev;

struct virtio_ops {
	uint32_t device_id;
	uint64_t features; /* device bits; VERSION_1 is the transport's */
	unsigned nr_queues, queue_max;
	/* Device config space: the transport copies reads out of
	 * config[0, config_len) (kept current by the device) and hands
	 * writes to config_write (NULL: writes ignored). */
	void (*config_write)(struct virtio_dev *d, uint32_t off,
			     const uint8_t *data, unsigned size);
	/* The driver set DRIVER_OK: the queues are ready. */
	void (*start)(struct virtio_dev *d);
	/* Queue q was notified (worker thread, lock held). */
	void (*notify)(struct virtio_dev *d, unsigned q);
	/* One of the device's own fds (d->fds[i]) is readable (worker,
	 * lock held). */
	void (*ready_fd)(struct virtio_dev *d, unsigned i);
	/* The driver reset the device: drop every request in flight and
	 * wait for the backend's I/O on them to end (lock held). */
	void (*reset)(struct virtio_dev *d);
	/* Finish every request in flight and publish it (worker stopped,
	 * lock held): the device is about to move (NULL: none in flight). */
	void (*drain)(struct virtio_dev *d);
	void (*free)(struct virtio_dev *d);
};

#define VIRTIO_DEV_FDS 2

struct virtio_stats {
	uint64_t notifies, interrupts, requests, errors;
	uint64_t bytes_in, bytes_out; /* to and from the guest */
};

struct virtio_dev {
	const struct virtio_ops *ops;
	void *priv;
	char name[16]; /* "blk0", "net0", ... */
	unsigned idx;  /* index among the VM's devices */
	uint64_t base;
	unsigned gsi;
	struct mem *mem;
	struct io_dev io;
	pthread_mutex_t lock;
	/* Transport registers. */
	uint32_t status, dev_feat_sel, drv_feat_sel, queue_sel, isr;
	uint32_t config_gen;
	uint64_t drv_features;
	struct virtq q[VIRTIO_MAX_QUEUES];
	uint8_t config[128];
	uint32_t config_len;
	/* The device's own fds the worker also waits on (-1: none). The
	 * device may change them under the lock; the worker waits on the
	 * new set from its next round (at once from its own callbacks,
	 * else after its next wake-up, e.g. a queue's kick). */
	int fds[VIRTIO_DEV_FDS];
	/* Worker. */
	pthread_t thread;
	bool running;
	int stop_fd;
	bool irq_due; /* a used buffer the driver wants an interrupt for */
	void (*irq)(void *arg, unsigned gsi);
	void *irq_arg;
	struct virtio_stats st;
	const char *broken; /* why the device needs a reset, or NULL */
	/* The VM stops: take no more requests (virtio__halt_all). */
	atomic_bool halted;
};

/* ---- queue.c ---- */

/*
 * Take the next available request of q: 1 and the chain, 0 if none, -1
 * if the driver broke the queue (why says how; the transport then sets
 * DEVICE_NEEDS_RESET). Buffers are host pointers into guest RAM, checked
 * to lie inside it; a chain is at most the queue size long (no loops).
 */
int virtq__pop(struct mem *m, struct virtq *q, struct virtq_chain *c,
	       const char **why);
/* Give request head back with len bytes written; the interrupt is
 * raised once the worker drops the lock, unless the driver suppressed
 * it. Nothing is published if the driver has since made the queue's
 * size or rings invalid (virtq__valid). */
void virtq__push(struct virtio_dev *d, struct virtq *q, uint16_t head,
		 uint32_t len);
/* Give back n requests at once, in this order: the driver sees all of
 * them or none (one received frame over several buffers). */
void virtq__push_n(struct virtio_dev *d, struct virtq *q, const uint16_t *heads,
		   const uint32_t *lens, unsigned n);
/* The last n requests taken go back to the ring as if never taken (the
 * device had nothing to put in them yet). Only the worker takes from a
 * queue, so they are still the next ones. */
void virtq__unpop(struct virtq *q, unsigned n);
/* The queue's rings lie in guest RAM (checked when the driver readies
 * it). */
bool virtq__valid(const struct mem *m, const struct virtq *q);
/* Copy between a chain's buffers and a flat buffer, from byte off of its
 * readable (out) or writable (in) part; returns bytes copied. */
size_t virtq__read(const struct virtq_chain *c, size_t off, void *buf,
		   size_t len);
size_t virtq__write(const struct virtq_chain *c, size_t off, const void *buf,
		    size_t len);

/* ---- mmio.c: the transport ---- */

/*
 * Set d up as device number idx of a VM (window VIRTIO_MMIO_BASE +
 * idx * VIRTIO_MMIO_SIZE, pin VIRTIO_GSI_FIRST + idx) with ops and priv
 * already filled in; irq raises the pin. 0, or -errno.
 */
int virtio__init(struct virtio_dev *d, unsigned idx, struct mem *m,
		 void (*irq)(void *arg, unsigned gsi), void *irq_arg);
/* Start the worker; with vm_fd >= 0, notifications of vCPUs on this
 * host's KVM skip the exit to userspace (KVM_IOEVENTFD). */
int virtio__start(struct virtio_dev *d, int vm_fd);
/* Stop the worker (after the I/O in flight) and free the device. */
void virtio__stop(struct virtio_dev *d);
/*
 * Moving a device to another host (vmm/cluster_dev.c): quiesce stops the
 * worker and finishes what is in flight; save writes the transport's
 * state (registers and queues; VIRTIO_STATE_SIZE bytes); load sets it on
 * a fresh device of the same kind, checking it as untrusted (-1, why),
 * and looks at every ready queue once it runs (a notification may have
 * come in between); unplug_notify takes the ioeventfds back.
 */
#define VIRTIO_STATE_SIZE (40 + VIRTIO_MAX_QUEUES * 32)
void virtio__quiesce(struct virtio_dev *d);
void virtio__save(struct virtio_dev *d, uint8_t *out);
int virtio__load(struct virtio_dev *d, const uint8_t *in, size_t len,
		 const char **why);
/* Only the ioeventfds: notifications exit to the VMM from then on. */
void virtio__unplug_notify(struct virtio_dev *d, int vm_fd);
/* The device marks itself broken (lock held): NEEDS_RESET, config
 * interrupt, and why printed once. */
void virtio__fail(struct virtio_dev *d, const char *why);
/* The device changed its config space (lock held). */
void virtio__config_changed(struct virtio_dev *d);
/* Worker, lock held: take requests of queue q until none is left,
 * calling fn on each; false if the queue broke. */
bool virtio__each(struct virtio_dev *d, unsigned q,
		  void (*fn)(struct virtio_dev *d, struct virtq *vq,
			     struct virtq_chain *c));

/* ---- devices ---- */

enum virtio_kind { VIRTIO_BLK, VIRTIO_NET, VIRTIO_RNG, VIRTIO_CONSOLE };

/* One device as the command line asks for it (config.c parses it). */
struct virtio_spec {
	enum virtio_kind kind;
	const char *path; /* blk: the image; net: the tap's name or NULL */
	bool ro;	  /* blk: read-only */
	unsigned host;	  /* the host that owns it */
	uint8_t mac[6];	  /* net */
	bool mac_set;
	/* net: the tap, opened already (virtio__net_preopen), when
	 * tap_open; the device takes it over. */
	bool tap_open;
	int tap_fd;
};

/* Parse one --disk FILE[,ro][,host=N] / --net tap[,name=N][,mac=M]
 * [,host=N] value into s; 0, or -1 with why. */
int virtio__parse_disk(const char *arg, struct virtio_spec *s, char *why,
		       size_t len);
int virtio__parse_net(const char *arg, struct virtio_spec *s, char *why,
		      size_t len);

/* Make the device a spec asks for, its backend opened; NULL and why. */
struct virtio_dev *virtio__blk_new(const struct virtio_spec *s, char *why,
				   size_t len);
struct virtio_dev *virtio__net_new(const struct virtio_spec *s, char *why,
				   size_t len);
struct virtio_dev *virtio__rng_new(char *why, size_t len);
/* Open the tap of each --net host 0 owns, in the network namespace the
 * command runs in, before --local-hosts moves host 0 to a namespace of
 * its own; 0, or -1 with why. */
int virtio__net_preopen(struct virtio_spec *s, unsigned n, char *why,
			size_t len);
/* hvc0: output to out_fd; input from virtio__console_in. */
struct virtio_dev *virtio__console_new(int out_fd, char *why, size_t len);
/* Host input for the guest: bytes taken (the rest waits for room), and
 * the room there is now. Any thread. */
size_t virtio__console_in(struct virtio_dev *d, const uint8_t *buf, size_t len);
size_t virtio__console_space(struct virtio_dev *d);
/* Any kind but the console. */
struct virtio_dev *virtio__new(const struct virtio_spec *s, char *why,
			       size_t len);
/* "blk", "net", "rng", "console". */
const char *virtio__kind_name(enum virtio_kind k);

/* ---- attach.c: a VM's devices ---- */

struct vm;
struct vm_config;
struct acpi_mmio_dev;

/* The ACPI entries of every device of the VM (out has VIRTIO_MAX_DEVS
 * room); how many. */
unsigned virtio__acpi_devs(const struct vm_config *c,
			   struct acpi_mmio_dev *out);
/* Device i of the VM, made and set up (not started, not on a bus). */
struct virtio_dev *virtio__make(struct vm *vm, unsigned i, char *why,
				size_t len);
/* Its name: kind and index ("blk0"). */
void virtio__dev_name(const struct vm_config *c, unsigned i, char *out,
		      size_t len);
/* Make and register the devices this host owns; -1 with a message. */
int virtio__attach(struct vm *vm);
int virtio__start_all(struct vm *vm);
void virtio__detach(struct vm *vm);
/* The VM over hosts stops: before guest RAM stops being served (its
 * faults then read zeros), the devices take no more requests, so none
 * starts copying zeros to a disk or a tap. A copy already blocked on a
 * page may still (docs/virtio.md). */
void virtio__halt_all(struct vm *vm);
void virtio__print_stats(struct vm *vm, FILE *f);

#endif
