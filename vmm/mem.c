// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "vmm/mem.h"

int mem__init(struct mem *m, uint64_t size)
{
	memset(m, 0, sizeof(*m));
	if (size < MEM_HIGH || size % PAGE_SIZE)
		return -EINVAL;
	m->size = size;
	m->lowmem = size < MEM_HOLE_START ? size : MEM_HOLE_START;
	m->top = size <= MEM_HOLE_START ? size : MEM_4G + (size - m->lowmem);
	/* NORESERVE: a guest may be larger than this host's RAM (later it
	 * spans hosts), and untouched pages cost nothing. */
	void *p = mmap(NULL, m->top, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	m->hva = p;
	if (mprotect(m->hva, m->lowmem, PROT_READ | PROT_WRITE) ||
	    (m->top > MEM_4G &&
	     mprotect(m->hva + MEM_4G, m->top - MEM_4G,
		      PROT_READ | PROT_WRITE))) {
		int e = -errno;
		mem__exit(m);
		return e;
	}
	/* The DSM and the fault engine work in 4 KiB pages. */
	madvise(m->hva, m->top, MADV_NOHUGEPAGE);
	return 0;
}

void mem__exit(struct mem *m)
{
	if (m->hva)
		munmap(m->hva, m->top);
	m->hva = NULL;
}

bool mem__is_ram(const struct mem *m, uint64_t gpa, uint64_t len)
{
	uint64_t end = gpa + len;

	if (end < gpa)
		return false;
	if (end <= m->lowmem)
		return true;
	return gpa >= MEM_4G && end <= m->top;
}

void *mem__ptr(const struct mem *m, uint64_t gpa, uint64_t len)
{
	return mem__is_ram(m, gpa, len) ? m->hva + gpa : NULL;
}
