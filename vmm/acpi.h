/* SPDX-License-Identifier: MIT */
/*
 * ACPI tables for the guest: RSDP, XSDT, FADT (hardware-reduced), DSDT,
 * MADT, and over hosts SRAT and SLIT (docs/acpi.md). Debian's kernels find
 * virtio-mmio devices only through the DSDT and CPUs through the MADT, so later
 * issues add devices here.
 */
#ifndef SLOS_ACPI_H
#define SLOS_ACPI_H

#include <stdbool.h>
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
/* Linux (acpi_hw_extended_sleep) first writes WAK_STS to clear it, then
 * SLP_TYP|SLP_EN, then polls until WAK_STS reads set: the power device
 * ignores the first write and reads as ACPI_WAK_STS. */
#define ACPI_SLP_TYP_SHIFT 2
#define ACPI_WAK_STS	   0x80

#define IOAPIC_BASE 0xFEC00000ULL
#define LAPIC_BASE  0xFEE00000ULL

/*
 * The ACPI multiprocessor wakeup mailbox (ACPI 6.4 5.2.12.19, MADT type
 * 0x10) of a VM over hosts: one 4 KiB MMIO page in the 32-bit hole, not
 * RAM, so every access the guest makes exits to the VMM (docs/jumps.md).
 * The guest finds it through the MADT; the layout is the spec's (Linux
 * 6.1's struct acpi_madt_multiproc_wakeup_mailbox).
 */
#define ACPI_MP_WAKE_BASE	   0xFEB00000ULL
#define ACPI_MP_WAKE_SIZE	   0x1000
#define ACPI_MP_WAKE_COMMAND	   0x0 /* u16: 0 noop, 1 wakeup */
#define ACPI_MP_WAKE_APIC_ID	   0x4 /* u32 */
#define ACPI_MP_WAKE_VECTOR	   0x8 /* u64: 64-bit entry, identity-mapped */
#define ACPI_MP_WAKE_CMD_NOOP	   0
#define ACPI_MP_WAKE_CMD_WAKEUP	   1

/* The Generic Event Device's interrupt when the VM has a vmgenid device:
 * the IOAPIC's last pin, so that 5..22 stay one free run for virtio-mmio
 * devices (4 is COM1). Edge-triggered, active-high. */
#define VMGENID_GSI 23
/* \_SB_.VGEN's IDs: Linux's vmgenid binds through the _CID. */
#define ACPI_VMGENID_HID "SLOS0001"
#define ACPI_VMGENID_CID "VM_GEN_COUNTER"

struct acpi_mmio_dev {
	const char *hid; /* e.g. "LNRO0005" for virtio-mmio */
	uint64_t base;
	uint32_t size;
	uint32_t gsi;
	/* false (the default): level-triggered, the virtio-mmio semantics of
	 * an interrupt line held until the driver acks InterruptStatus.
	 * true: edge-triggered, as Firecracker declares it. Active-high and
	 * exclusive either way. */
	bool edge;
	/* An I/O-port range (IO descriptor, size < 256) instead of MMIO:
	 * legacy devices such as the COM1 UART (PNP0501), which Linux in
	 * hardware-reduced mode only wires to its IRQ when the DSDT says. */
	bool io;
};

/* Device i is \_SB_.Dnnn (nnn = i in hex), so at most 4096 devices. */
#define ACPI_MAX_DEVS 4096

/*
 * NUMA: proximity domain n is node n of the guest. A slos VM makes one per
 * host (docs/acpi.md, "SRAT and SLIT"). The SLIT says ACPI_SLIT_LOCAL
 * within a node and ACPI_SLIT_REMOTE between two: above Linux's
 * RECLAIM_DISTANCE (30), so its scheduler neither balances fork/exec nor
 * wakes tasks affine across nodes, the costly moves over hosts.
 */
#define ACPI_MAX_NODES	 64
#define ACPI_MAX_RANGES	 256
#define ACPI_SLIT_LOCAL	 10
#define ACPI_SLIT_REMOTE 40

/* Guest-physical RAM [base, base + len) of one node (SRAT Memory
 * Affinity). */
struct acpi_mem_range {
	uint64_t base, len;
	unsigned node;
};

struct acpi_config {
	unsigned nr_vcpus; /* APIC ids 0..nr_vcpus-1 */
	uint64_t ioapic_base;
	unsigned ioapic_id;
	unsigned nr_devs;
	const struct acpi_mmio_dev *devs;
	/*
	 * Virtual Machine Generation ID (docs/acpi.md). Nonzero: the DSDT
	 * gets \_SB_.VGEN, whose ADDR names the 16-byte ID at vmgenid_gpa,
	 * and \_SB_.GED0, a Generic Event Device (ACPI0013) whose interrupt
	 * is GSI ged_gsi (edge, active-high) and whose _EVT notifies VGEN.
	 * The 16 bytes must be memory the guest does not use as RAM (e820
	 * reserved, as MEM_VMGENID is): the VMM rewrites them on restore.
	 * 0: no such devices, and ged_gsi is ignored.
	 */
	uint64_t vmgenid_gpa;
	uint32_t ged_gsi;
	/* Nonzero: the MADT gets a Multiprocessor Wakeup entry (type 0x10,
	 * mailbox version 0) naming the mailbox at this 4 KiB-aligned
	 * address. 0: none, and APs start by INIT/SIPI. */
	uint64_t mp_wake_gpa;
	/*
	 * nr_nodes nonzero: an SRAT and a SLIT, linked from the XSDT. Every
	 * vCPU (APIC id i) is in node vcpu_node[i]; the memory ranges, in
	 * ascending address order, 4 KiB aligned, not overlapping, each name
	 * a node < nr_nodes. 0: neither table, and the rest is ignored.
	 */
	unsigned nr_nodes;
	const uint8_t *vcpu_node; /* nr_vcpus entries */
	unsigned nr_mem_ranges;
	const struct acpi_mem_range *mem_ranges;
};

/*
 * Build every table into buf, which the guest sees at guest-physical gpa,
 * at most len bytes. Returns 0 and the RSDP's guest-physical address, or -1
 * if len is too small. Also -1, with buf untouched, for a config the tables
 * cannot express: no vCPU, more than ACPI_MAX_DEVS devices, a NULL or
 * malformed _HID (7 or 8 characters of A-Z, 0-9, _), a device range that is
 * empty or not below 4 GiB, an IOAPIC id above 255 or base above 4 GiB; with
 * vmgenid_gpa set, a vmgenid_gpa not 16-byte aligned, beyond 2^52 or
 * overlapping the tables, or a ged_gsi that is not an IOAPIC pin or is a
 * device's GSI; an mp_wake_gpa not 4 KiB aligned or beyond 2^52; with
 * nr_nodes set, more than ACPI_MAX_NODES nodes or ACPI_MAX_RANGES ranges,
 * a vCPU or range whose node is not below nr_nodes, or a range that is
 * empty, unaligned, out of order, overlapping or beyond 2^52.
 * Pure and deterministic: writes only into buf, the same bytes every time.
 */
int acpi__build(void *buf, uint64_t gpa, size_t len,
		const struct acpi_config *cfg, uint64_t *rsdp_gpa);

#endif
