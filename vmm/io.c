// SPDX-License-Identifier: MIT
#include <errno.h>
#include <string.h>

#include "vmm/io.h"

int io__register(struct io_bus *bus, struct io_dev *d)
{
	unsigned i;

	if (bus->nr == IO_BUS_MAX || !d->len)
		return -ENOSPC;
	for (i = 0; i < bus->nr; i++) {
		struct io_dev *o = bus->devs[i];
		if (d->base < o->base + o->len && o->base < d->base + d->len)
			return -EEXIST;
	}
	for (i = bus->nr; i > 0 && bus->devs[i - 1]->base > d->base; i--)
		bus->devs[i] = bus->devs[i - 1];
	bus->devs[i] = d;
	bus->nr++;
	return 0;
}

static struct io_dev *find(struct io_bus *bus, uint64_t addr)
{
	unsigned lo = 0, hi = bus->nr;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		struct io_dev *d = bus->devs[mid];
		if (addr < d->base)
			hi = mid;
		else if (addr >= d->base + d->len)
			lo = mid + 1;
		else
			return d;
	}
	return NULL;
}

bool io__access(struct io_bus *bus, uint64_t addr, uint8_t *data,
		unsigned size, bool write)
{
	struct io_dev *d = find(bus, addr);

	if (!d) {
		__atomic_add_fetch(&bus->unclaimed, 1, __ATOMIC_RELAXED);
		if (!write)
			memset(data, 0xff, size);
		return false;
	}
	d->access(d, addr - d->base, data, size, write);
	return true;
}
