/* SPDX-License-Identifier: MIT */
/*
 * The fault engine: guest RAM registered with userfaultfd, one thread that
 * serves missing pages from a page source. A guest access to a missing page
 * blocks its vCPU in KVM's page-fault path until the engine places the page
 * (UFFDIO_COPY / UFFDIO_ZEROPAGE), so the same mechanism serves fresh RAM
 * (zero source), snapshot restore (file source) and the DSM (remote source).
 */
#ifndef SLOS_FAULT_H
#define SLOS_FAULT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/mem.h"

struct fault_source {
	const char *name;
	/*
	 * Fill `dst` (one page) with the contents of guest page `gpa`.
	 * Return 1 if the page is all zeroes (dst untouched), 0 if filled,
	 * negative errno if the page cannot be had (the VM stops).
	 */
	int (*fetch)(struct fault_source *s, uint64_t gpa, void *dst);
	/*
	 * Or, asynchronous (the DSM): take note of a fault on gpa and
	 * return; whoever later installs the page wakes the faulting thread.
	 * write: a write access; wp: it hit a write-protected page; tid: the
	 * faulting thread (0 if the kernel cannot say). 0 or negative errno
	 * (the VM stops). Guest RAM is then registered in write-protect mode
	 * too.
	 */
	int (*fault)(struct fault_source *s, uint64_t gpa, bool write, bool wp,
		     uint32_t tid);
	void *priv;
};

struct fault_stats {
	uint64_t faults, zero, copied, eexist;
};

struct fault_engine {
	struct mem *mem;
	struct fault_source *src;
	int uffd, quit_efd;
	pthread_t thread;
	bool running;
	int error; /* first error the thread met, negative errno */
	void (*on_error)(void *arg, uint64_t gpa, int err);
	void *arg;
	struct fault_stats st;
	/* fault__trace: the guest-physical pages faulted, in order */
	uint64_t *trace;
	unsigned trace_max, nr_traced;
};

/* The zero source: fresh RAM reads as zeroes. */
extern struct fault_source fault_zero_source;

/* Register every RAM range of m; the thread starts with fault__start. */
int fault__init(struct fault_engine *fe, struct mem *m,
		struct fault_source *src);
int fault__start(struct fault_engine *fe);
/* Record the first max faults' pages into buf (before fault__start); read
 * fe->nr_traced once the guest is stopped. */
void fault__trace(struct fault_engine *fe, uint64_t *buf, unsigned max);
/* Place one page (NULL: the zero page) at gpa unless it is there already;
 * any thread may (prefetching). 0 or negative errno. */
int fault__place(struct fault_engine *fe, uint64_t gpa, const void *page);
/*
 * Unregister guest RAM: every thread waiting on a fault is let go and
 * later accesses are plain memory. For a VM that is stopping while faults
 * wait for a host that will not answer; nothing is placed after this.
 */
void fault__release(struct fault_engine *fe);
void fault__exit(struct fault_engine *fe);

#endif
