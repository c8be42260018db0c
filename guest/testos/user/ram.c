// SPDX-License-Identifier: MIT
/*
 * Free RAM for tests: e820 RAM above the loaded image (and so above 1 MiB
 * and USER_BASE: it is all user-accessible) and below the 3 GiB MMIO hole,
 * minus what ram_alloc() handed out. RAM above 4 GiB is not mapped.
 */
#include "test.h"

#define MAPPED_TOP 0xc0000000ULL
#define PAGE	   4096ULL

static uint64_t alloc_top; /* everything below is taken */

static uint64_t floor_addr(void)
{
	uint64_t lo = (shared.image_end + PAGE - 1) & ~(PAGE - 1);

	return alloc_top > lo ? alloc_top : lo;
}

size_t ram_ranges(struct ram_range *r, size_t max)
{
	uint64_t lo = floor_addr();
	size_t n = 0;

	for (uint32_t i = 0; i < shared.e820_count && n < max; i++) {
		const struct e820_entry *e = &shared.e820[i];
		uint64_t s = e->addr, end = e->addr + e->size;

		if (e->type != E820_RAM)
			continue;
		s = (s + PAGE - 1) & ~(PAGE - 1);
		end &= ~(PAGE - 1);
		if (s < lo)
			s = lo;
		if (end > MAPPED_TOP)
			end = MAPPED_TOP;
		if (s < end)
			r[n++] = (struct ram_range){s, end};
	}
	return n;
}

void *ram_alloc(uint64_t bytes)
{
	struct ram_range r[16];
	size_t n = ram_ranges(r, 16);

	bytes = (bytes + PAGE - 1) & ~(PAGE - 1);
	for (size_t i = 0; i < n; i++) {
		if (r[i].end - r[i].start >= bytes) {
			alloc_top = r[i].start + bytes;
			return (void *)r[i].start;
		}
	}
	return 0;
}

void *ram_alloc_in(uint64_t lo, uint64_t hi, uint64_t bytes)
{
	struct ram_range r[16];
	size_t n = ram_ranges(r, 16);

	bytes = (bytes + PAGE - 1) & ~(PAGE - 1);
	lo = (lo + PAGE - 1) & ~(PAGE - 1);
	for (size_t i = 0; i < n; i++) {
		uint64_t s = r[i].start > lo ? r[i].start : lo;
		uint64_t e = r[i].end < hi ? r[i].end : hi;

		if (s < e && e - s >= bytes) {
			alloc_top = s + bytes;
			return (void *)s;
		}
	}
	return 0;
}
