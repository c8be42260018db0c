/* SPDX-License-Identifier: MIT */
/*
 * Virtual Machine Generation ID: 16 bytes of guest memory at MEM_VMGENID
 * that the VMM changes whenever the guest starts again from saved state
 * (a snapshot restore, a clone), so the guest can tell it was forked and
 * reseed its RNG. The guest finds the bytes through the DSDT's \_SB_.VGEN
 * (acpi_config.vmgenid_gpa) and learns of a change through the Generic
 * Event Device's interrupt, VMGENID_GSI (vmm/acpi.h, docs/acpi.md).
 *
 * Restore path, in this order:
 *   1. restore guest memory, every vCPU's state (KVM_SET_LAPIC included)
 *      and the IOAPIC (ioapic__load), and start the fault engine if memory
 *      comes from userfaultfd: the write below may fault on a page of the
 *      snapshot, and KVM_SET_LAPIC would drop an interrupt queued before;
 *   2. vmgenid__generate(id), then vmgenid__set(&vm->mem, id);
 *   3. ioapic__set_irq(io, VMGENID_GSI, true), then (..., false): an edge;
 *   4. resume the vCPUs (before or after 3: the interrupt waits in the
 *      LAPIC). Linux's GED runs _EVT, which notifies VGEN; vmgenid rereads
 *      the 16 bytes and, as they differ, reseeds (add_vmfork_randomness).
 * A fresh boot only writes an ID (2) before the guest runs.
 */
#ifndef SLOS_VMGENID_H
#define SLOS_VMGENID_H

#include <stdint.h>

#include "vmm/mem.h"

#define VMGENID_SIZE 16

/*
 * A new ID: 128 bits from getrandom() shaped as a version-4 GUID in the
 * byte order Microsoft's spec and Windows read (Data1-3 little-endian, so
 * the version nibble is in byte 7 and the variant bits in byte 8). 0, or
 * a negative errno if the kernel gives no randomness.
 */
int vmgenid__generate(uint8_t id[VMGENID_SIZE]);
/* Write id at MEM_VMGENID; 0, or -EFAULT if that is not RAM. */
int vmgenid__set(struct mem *m, const uint8_t id[VMGENID_SIZE]);
/* Read the ID the guest sees; 0, or -EFAULT. */
int vmgenid__get(const struct mem *m, uint8_t id[VMGENID_SIZE]);

#endif
