/* SPDX-License-Identifier: MIT */
/*
 * The DSM engine: guest-physical memory spread over hosts and kept coherent
 * page by page with the home-based MSI protocol of docs/dsm.md, whose names
 * and transitions (vmm/dsm_proto.h, the model vmm/dsm.pml) this follows.
 *
 * The engine is mechanism only and knows neither userfaultfd nor the
 * fabric: it is driven by faults (dsm__fault) and by messages (dsm__recv),
 * and acts through struct dsm_ops (install, protect, drop a page of this
 * host's guest mapping; send a message to a host). vmm/dsm_mem.c gives the
 * userfaultfd ops, the cluster layer the sending; the unit tests give
 * in-memory ones and run several engines in one process.
 *
 * Threads: any thread may call dsm__fault and dsm__recv at once. Each
 * message or fault is handled under its page's lock and never blocks: sends
 * are queued (ops.send must not wait), requests for a busy directory entry
 * wait in its FIFO. Messages a host sends to itself (its cache agent to its
 * own directory) go through one in-order local queue, as in the model.
 */
#ifndef SLOS_DSM_H
#define SLOS_DSM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/dsm_proto.h"

#define DSM_MAX_HOSTS 8
#define DSM_LOCKS     1024 /* page locks, striped */

/* A message as the engine sees it. payload: DSM_PAYLOAD_*; page points at
 * DSM_PAGE_BYTES when it is DSM_PAYLOAD_PAGE. */
struct dsm_msg {
	uint8_t type;  /* enum dsm_msg_type */
	uint8_t grant; /* DSM_DATA: DSM_S or DSM_M */
	uint8_t payload;
	uint64_t gpa;
	const void *page;
};

/* Encoded message: 16-byte header (gpa, type, grant, payload, 5 zero
 * bytes), then the page for DSM_PAYLOAD_PAGE. */
#define DSM_WIRE_HDR 16
#define DSM_WIRE_MAX (DSM_WIRE_HDR + DSM_PAGE_BYTES)

struct dsm_ops {
	/* Queue m for host `to` (never this host); must not block. 0 or
	 * negative errno (the VM stops). */
	int (*send)(void *arg, unsigned to, const struct dsm_msg *m);
	/* Map the page at gpa (page NULL: all zero), writable or read-only,
	 * and wake whoever waits on it. */
	int (*install)(void *arg, uint64_t gpa, const void *page,
		       bool writable);
	/* Read-only from now on (its contents are then stable). */
	int (*protect)(void *arg, uint64_t gpa);
	/* Writable again, and wake the writers waiting on it. */
	int (*unprotect)(void *arg, uint64_t gpa);
	/* Unmap; the next access faults. Wakes waiters so they fault anew. */
	int (*drop)(void *arg, uint64_t gpa);
	/* The page's current contents (it is mapped) into buf. */
	int (*read)(void *arg, uint64_t gpa, void *buf);
	/* Wake whoever waits on gpa (the access it faulted for is allowed). */
	int (*wake)(void *arg, uint64_t gpa);
	/* A protocol violation or a failed op: the engine is unusable. */
	void (*error)(void *arg, const char *why);
	void *arg;
};

struct dsm_config {
	unsigned self, nhosts; /* 1 <= nhosts <= DSM_MAX_HOSTS */
	uint64_t lowmem, size; /* guest RAM layout, as struct mem */
	bool interleave;       /* --mem-map interleave: home = page % nhosts */
	uint64_t budget_pages; /* pages this host may cache, 0: unlimited */
};

struct dsm_stats {
	uint64_t faults, hits, waits, read_req, write_req, upgrades;
	uint64_t rx, tx, tx_bytes, zero_tx;
	uint64_t inv, fwd, evict_s, evict_m;
	uint64_t dir_served, dir_queued;
};

/* The directory entry of a page at its home. 16 bytes. */
struct dsm_dir {
	uint8_t state; /* enum dsm_dir_state */
	uint8_t owner; /* DSM_DIR_M and the forwarding states */
	uint8_t cur;   /* busy: the requester being served */
	uint8_t cur_write;
	uint8_t acks; /* DSM_DIR_SM_A: INV_ACKs due */
	uint8_t nq;
	uint16_t copyset;
	uint8_t q[DSM_MAX_HOSTS]; /* FIFO: host | 0x80 for a write */
};

struct dsm_lq; /* the local queue's entries */

struct dsm {
	struct dsm_config cfg;
	struct dsm_ops ops;
	uint64_t npages;     /* of the guest-physical span [0, top) */
	uint64_t per_host;   /* contiguous homes: RAM pages per host */
	uint8_t *state;	     /* enum dsm_page_state, per page of the span */
	struct dsm_dir *dir; /* per page of the span (home pages used) */
	uint8_t *store;	     /* home copies, offset = gpa */
	uint64_t *priv;	     /* host-private pages, a bit per page */
	size_t map_len[4];
	pthread_mutex_t locks[DSM_LOCKS];
	/* Budget: pages in any state but DSM_I. */
	atomic_uint_fast64_t used;
	uint64_t hand; /* eviction clock, under evict_lock */
	pthread_mutex_t evict_lock;
	/* The local queue and whether a thread is draining it. */
	pthread_mutex_t lq_lock;
	struct dsm_lq *lq_head, **lq_tail;
	bool lq_draining;
	atomic_bool failed;
	struct dsm_stats st; /* updated with relaxed atomics */
	/* --restore over hosts: pages this host owns (DSM_M) whose contents
	 * are still in the snapshot (a bit per page), read by fill(). */
	uint64_t *lazy;
	int (*fill)(void *arg, uint64_t gpa, void *dst);
	void *fill_arg;
};

/* 0 or negative errno (bad config: -EINVAL). Every page starts DSM_I with
 * its directory DSM_DIR_I and a zero store. */
int dsm__init(struct dsm *d, const struct dsm_config *c,
	      const struct dsm_ops *ops);
void dsm__exit(struct dsm *d);

/* The home host of a RAM page (gpa must be RAM). */
unsigned dsm__home(const struct dsm *d, uint64_t gpa);
bool dsm__is_ram(const struct dsm *d, uint64_t gpa);

/*
 * The guest-physical RAM each host is home to, as dsm__home computes it,
 * for what the guest is told (the ACPI SRAT). Contiguous homes over two
 * hosts or more: each host's run of RAM pages, in address order, split in
 * two where it straddles the 32-bit hole; a host with no RAM (tiny guests)
 * has none. 0 ranges when homes say nothing of locality: one host (every
 * page is at home) or --mem-map interleave (no two neighbouring pages
 * share a home). c need not belong to an initialized engine.
 */
struct dsm_range {
	uint64_t gpa, len;
	unsigned home;
};
#define DSM_MAX_RANGES (DSM_MAX_HOSTS + 1)
unsigned dsm__home_ranges(const struct dsm_config *c,
			  struct dsm_range out[DSM_MAX_RANGES]);

/* A fault on gpa at this host (guest or VMM access). write: the access was
 * a write. 0, or negative errno once the engine failed. */
int dsm__fault(struct dsm *d, uint64_t gpa, bool write);
/* A message from host `from` (already decoded). 0 or negative errno; a
 * violation is reported through ops.error. */
int dsm__recv(struct dsm *d, unsigned from, const struct dsm_msg *m);

/* Codec (vmm/dsm_wire.c). Encode into out[DSM_WIRE_MAX]: the length. */
size_t dsm__encode(const struct dsm_msg *m, uint8_t *out);
/* Decode untrusted bytes; m->page points into buf. 0 or -EINVAL with why. */
int dsm__decode(const uint8_t *buf, size_t len, struct dsm_msg *m,
		const char **why);

/* Names for logs. */
const char *dsm__msg_name(unsigned type);

/*
 * A restore over hosts, before any fault: the snapshot's host (owner) holds
 * every page with contents in the snapshot in DSM_M, unmapped until used,
 * read by fill() when its guest touches it or a home forwards a request for
 * it; each home starts those pages in DSM_DIR_M with that owner. So the
 * pages travel on first touch, through the protocol's own forwards.
 * dsm__preown: mark one such page (on the owner and on the page's home).
 */
void dsm__set_fill(struct dsm *d,
		   int (*fill)(void *arg, uint64_t gpa, void *dst), void *arg);
int dsm__preown(struct dsm *d, uint64_t gpa, unsigned owner);

/*
 * Make the page at gpa this host's own: from now on it stays mapped and
 * writable here, this host's accesses never fault on it and nothing the
 * other hosts do reaches it. For a page that every host's KVM writes for
 * its own vCPUs and the guest reads only for the vCPU reading it (the
 * kvmclock entries: docs/dsm.md "Host-private pages"). A page not held
 * here starts as zeros. The protocol goes on around it unchanged: the
 * directory and this host's cache state still answer every message, and
 * answers carry this host's copy. 0 or negative errno.
 */
int dsm__privatize(struct dsm *d, uint64_t gpa);
bool dsm__is_private(struct dsm *d, uint64_t gpa);

/* State of a page, for tests and stats. */
enum dsm_page_state dsm__state(struct dsm *d, uint64_t gpa);
void dsm__stats(struct dsm *d, struct dsm_stats *out);

/*
 * The ops on a host's real guest mapping (vmm/dsm_mem.c): userfaultfd
 * (UFFDIO_COPY, with UFFDIO_COPY_MODE_WP for read-only copies;
 * UFFDIO_WRITEPROTECT; MADV_DONTNEED then UFFDIO_WAKE), for guest RAM that
 * the fault engine registered. Sending and errors are the caller's.
 */
struct fault_engine;
struct dsm_mem {
	struct fault_engine *fe;
	int (*send)(void *arg, unsigned to, const struct dsm_msg *m);
	void (*error)(void *arg, const char *why);
	void *arg;
};
void dsm_mem__ops(struct dsm_mem *dm, struct dsm_ops *ops);

#endif
