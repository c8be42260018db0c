/* SPDX-License-Identifier: MIT */
/*
 * Restoring a VM from a snapshot (vmm/snapshot.h): the snapshot's memory
 * file becomes the fault engine's page source, so guest pages come in on
 * first touch; the pages a restore touches first are recorded for the next
 * restore of the same snapshot to prefetch (--prefetch).
 */
#ifndef SLOS_RESTORE_H
#define SLOS_RESTORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/fault.h"
#include "vmm/snapshot.h"

#define RESTORE_RECORD_MAX 65536 /* pages recorded for prefetch */

struct restore {
	struct snapshot snap;
	struct fault_source src;
	struct fault_engine *fe;
	uint64_t *data; /* bitmap: pages with data in the memory file */
	uint64_t npages;
	/* First touches, in order: the fault engine's trace (fault__trace)
	 * when this restore records them for the next one's prefetch. */
	uint64_t *touched;
	/* Prefetch of a previous restore's first touches. */
	uint64_t *prefetch;
	unsigned nr_prefetch;
	pthread_t pf_thread;
	bool pf_running;
	volatile bool pf_quit;
	uint64_t prefetched;
};

struct vm;

/* Open DIR and check it against this host and the user's options; -1 with
 * a message on stderr (exit status 2). */
int restore__open(struct vm *vm, const char *dir);
/* The page source for the fault engine, once guest RAM is mapped. */
int restore__source(struct vm *vm);
/* A page of the snapshot's memory file into dst: 1 for a hole (zero, dst
 * untouched), 0, or -EIO. */
int restore__read_page(struct restore *r, uint64_t gpa, void *dst);
/* Does the memory file hold data for this page? */
bool restore__has_data(const struct restore *r, uint64_t gpa);
/* After fault__init: trace the first touches if this restore records. */
void restore__trace(struct vm *vm);
/* Load devices and every vCPU's state (after their creation). */
int restore__load(struct vm *vm);
/* Just before the vCPUs run: fresh VM generation ID, prefetch. */
int restore__start(struct vm *vm);
/* At exit: save the first-touch list (if new), free everything. */
void restore__exit(struct vm *vm);

#endif
