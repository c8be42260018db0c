// SPDX-License-Identifier: MIT
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "vmm/vmgenid.h"

_Static_assert(MEM_VMGENID % VMGENID_SIZE == 0,
	       "acpi__build wants the ID 16-byte aligned");
_Static_assert(MEM_VMGENID >= MEM_EBDA &&
		   MEM_VMGENID + VMGENID_SIZE <= MEM_ACPI,
	       "in the e820-reserved area, clear of the ACPI tables");

int vmgenid__generate(uint8_t id[VMGENID_SIZE])
{
	size_t got = 0;

	/* 16 bytes never come short from a ready pool, but EINTR can. */
	while (got < VMGENID_SIZE) {
		ssize_t n = getrandom(id + got, VMGENID_SIZE - got, 0);

		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0)
			got += n;
	}
	id[7] = (id[7] & 0x0f) | 0x40; /* version 4: random */
	id[8] = (id[8] & 0x3f) | 0x80; /* variant: RFC 4122 */
	return 0;
}

int vmgenid__set(struct mem *m, const uint8_t id[VMGENID_SIZE])
{
	uint8_t *p = mem__ptr(m, MEM_VMGENID, VMGENID_SIZE);

	if (!p)
		return -EFAULT;
	memcpy(p, id, VMGENID_SIZE);
	/* The bytes are in memory before the caller raises the GSI; the
	 * MSI's ioctl orders them for the guest's vCPUs too. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	return 0;
}

int vmgenid__get(const struct mem *m, uint8_t id[VMGENID_SIZE])
{
	const uint8_t *p = mem__ptr(m, MEM_VMGENID, VMGENID_SIZE);

	if (!p)
		return -EFAULT;
	memcpy(id, p, VMGENID_SIZE);
	return 0;
}
