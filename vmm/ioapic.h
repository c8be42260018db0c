/* SPDX-License-Identifier: MIT */
/*
 * The VMM's IOAPIC (82093AA, 24 pins). With KVM's split irqchip the LAPICs
 * are in the kernel and the IOAPIC is ours: a pin turns into an MSI sent
 * with KVM_SIGNAL_MSI, and each pin's entry is mirrored into KVM's GSI
 * routing so that KVM reports the EOI of level-triggered vectors
 * (KVM_EXIT_IOAPIC_EOI). Later, a pin raised on one host is forwarded to
 * the vCPU's host through the same MSI.
 */
#ifndef SLOS_IOAPIC_H
#define SLOS_IOAPIC_H

#include <stdbool.h>
#include <pthread.h>
#include <stdint.h>

#include "vmm/io.h"

#define IOAPIC_PINS 24

struct ioapic;

/* What a snapshot keeps of the IOAPIC (vmm/snapshot.h). */
struct ioapic_state {
	uint32_t id, sel;
	uint64_t rte[IOAPIC_PINS];
	uint8_t line[IOAPIC_PINS];
};

struct ioapic *ioapic__new(int vm_fd, uint64_t base, unsigned id);
void ioapic__free(struct ioapic *io);
struct io_dev *ioapic__io(struct ioapic *io);
void ioapic__set_irq(struct ioapic *io, unsigned pin, bool level);
/* One edge on an edge-triggered pin, under one hold of the lock: two
 * raisers of the same pin (set high, set low each) could interleave and
 * give one interrupt for two. */
void ioapic__pulse(struct ioapic *io, unsigned pin);
void ioapic__eoi(struct ioapic *io, uint8_t vector);
uint64_t ioapic__delivered(struct ioapic *io);
/* Over hosts: its interrupts are injected under the VM's irq_lock, so
 * none lands in a LAPIC that is changing hands (vm__hold). */
void ioapic__set_irq_lock(struct ioapic *io, pthread_mutex_t *lock);
void ioapic__save(struct ioapic *io, struct ioapic_state *s);
/* Loads s and mirrors it into KVM's routing; -1 if s is malformed. */
int ioapic__load(struct ioapic *io, const struct ioapic_state *s);

#endif
