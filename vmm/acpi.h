/* SPDX-License-Identifier: MIT */
/*
 * ACPI tables for the guest: RSDP, XSDT, FADT (hardware-reduced), DSDT,
 * MADT. Debian's kernels find virtio-mmio devices only through the DSDT and
 * CPUs through the MADT, so later issues add devices here.
 */
#ifndef SLOS_ACPI_H
#define SLOS_ACPI_H

#include <stddef.h>
#include <stdint.h>

/* The VMM's power device: one I/O port acting as the FADT's sleep control
 * and sleep status registers and its reset register. A byte write with
 * SLP_EN (bit 5) set and SLP_TYP (bits 2-4) = 5 powers off; a write of
 * ACPI_RESET_VALUE resets. _S5_ in the DSDT names SLP_TYP 5. */
#define ACPI_PM_PORT	 0x600
#define ACPI_SLP_EN	 0x20
#define ACPI_SLP_TYP_S5	 5
#define ACPI_RESET_VALUE 0x01

#define IOAPIC_BASE 0xFEC00000ULL
#define LAPIC_BASE  0xFEE00000ULL

struct acpi_mmio_dev {
	const char *hid; /* e.g. "LNRO0005" for virtio-mmio */
	uint64_t base;
	uint32_t size;
	uint32_t gsi;
};

struct acpi_config {
	unsigned nr_vcpus; /* APIC ids 0..nr_vcpus-1 */
	uint64_t ioapic_base;
	unsigned ioapic_id;
	unsigned nr_devs;
	const struct acpi_mmio_dev *devs;
};

/*
 * Build every table into buf, which the guest sees at guest-physical gpa,
 * at most len bytes. Returns 0 and the RSDP's guest-physical address, or -1
 * if len is too small.
 */
int acpi__build(void *buf, uint64_t gpa, size_t len,
		const struct acpi_config *cfg, uint64_t *rsdp_gpa);

#endif
