/* SPDX-License-Identifier: MIT */
/*
 * Port-I/O and MMIO dispatch: devices register a range and get the accesses
 * the guest makes inside it. Lookups happen on every exit, so a bus is a
 * small sorted array searched without locks; devices are added before the
 * vCPUs start and never removed while they run.
 */
#ifndef SLOS_IO_H
#define SLOS_IO_H

#include <stdbool.h>
#include <stdint.h>

struct io_dev;
typedef void (*io_fn)(struct io_dev *d, uint64_t off, uint8_t *data,
		      unsigned size, bool write);

struct io_dev {
	const char *name;
	uint64_t base, len;
	io_fn access;
	void *priv;
};

#define IO_BUS_MAX 32

struct io_bus {
	unsigned nr;
	struct io_dev *devs[IO_BUS_MAX];
	/* Accesses nothing claimed: counted, reads return all ones. */
	uint64_t unclaimed;
};

int io__register(struct io_bus *bus, struct io_dev *d);
/* Returns false if no device claims addr. */
bool io__access(struct io_bus *bus, uint64_t addr, uint8_t *data,
		unsigned size, bool write);

#endif
