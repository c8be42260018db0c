// SPDX-License-Identifier: MIT
/*
 * ACPI tables for the guest, laid out in one buffer (docs/acpi.md):
 *
 *	RSDP | XSDT | FADT | MADT | DSDT [| SRAT | SLIT]
 *
 * The DSDT holds _S5_ and, in \_SB_, the config's devices and, optionally,
 * the vmgenid device with the Generic Event Device that notifies it. The
 * SRAT and SLIT, for a VM whose hosts are NUMA nodes, come last.
 *
 * The layout and every table's length are computed before anything is
 * written, so a buffer that is too small or a config the tables cannot
 * express leaves buf untouched. Fields are stored byte by byte in
 * little-endian order: the bytes do not depend on the host's endianness or
 * on struct packing.
 */
#include <string.h>

#include "vmm/acpi.h"
#include "vmm/ioapic.h"

#define OEM_ID	     "SLOS  "
#define OEM_TABLE_ID "SLOSVMM "
#define CREATOR_ID   "SLOS"

#define RSDP_LEN	36
#define HDR_LEN		36
#define XSDT_MIN	 2   /* FADT, MADT; then SRAT, SLIT */
#define FADT_LEN	276 /* ACPI 6.x, up to the hypervisor vendor id */
#define MADT_FIXED_LEN	(HDR_LEN + 8)
#define MADT_LAPIC_LEN	8
#define MADT_IOAPIC_LEN 12
#define MADT_X2APIC_LEN 16
#define MADT_MP_WAKE_LEN 16 /* Linux's BAD_MADT_ENTRY wants exactly this */
#define MADT_MP_WAKE	 0x10

/* SRAT (ACPI 6.4 5.2.16): a 12-byte reserved field after the header, whose
 * first u32 must be 1 "for backward compatibility". */
#define SRAT_FIXED_LEN	(HDR_LEN + 12)
#define SRAT_LAPIC	0  /* Processor Local APIC/SAPIC Affinity */
#define SRAT_LAPIC_LEN	16 /* Linux wants exactly this */
#define SRAT_MEM	1  /* Memory Affinity */
#define SRAT_MEM_LEN	40
#define SRAT_X2APIC	2 /* Processor Local x2APIC Affinity */
#define SRAT_X2APIC_LEN 24
#define SRAT_ENABLED	(1u << 0)
#define SLIT_FIXED_LEN	(HDR_LEN + 8)
#define PAGE_4K		4096ULL

/* The Processor Local APIC entry has an 8-bit APIC id and Linux skips id
 * 0xff, so ids from 255 on need x2APIC entries, as ACPI 5.2.12 asks. */
#define MAX_XAPIC_ID 254

/* FADT Flags */
#define FADT_WBINVD	   (1u << 0)
#define FADT_PWR_BUTTON	   (1u << 4) /* no fixed-feature power button */
#define FADT_SLP_BUTTON	   (1u << 5) /* no fixed-feature sleep button */
#define FADT_RESET_REG_SUP (1u << 10)
#define FADT_HW_REDUCED	   (1u << 20)
/* FADT IA-PC Boot Architecture Flags */
#define BOOT_NO_VGA	 (1u << 2)
#define BOOT_NO_CMOS_RTC (1u << 5)

#define GAS_SYSTEM_IO	1
#define GAS_ACCESS_BYTE 1

/* AML opcodes (ACPI 20.2) */
#define AML_ZERO       0x00
#define AML_ONE	       0x01
#define AML_NAME       0x08
#define AML_BYTE       0x0a
#define AML_WORD       0x0b
#define AML_DWORD      0x0c
#define AML_STRING     0x0d
#define AML_QWORD      0x0e
#define AML_SCOPE      0x10
#define AML_BUFFER     0x11
#define AML_PACKAGE    0x12
#define AML_METHOD     0x14
#define AML_DUAL_NAME  0x2e
#define AML_EXT_PREFIX 0x5b
#define AML_EXT_DEVICE 0x82
#define AML_ROOT_CHAR  0x5c
#define AML_ARG0       0x68
#define AML_NOTIFY     0x86
#define AML_LEQUAL     0x93
#define AML_IF	       0xa0

/* Resource descriptors (ACPI 6.4) */
#define RES_MEM32_FIXED 0x86
#define RES_EXT_IRQ	0x89
#define RES_END_TAG	0x79
#define IRQ_CONSUMER	(1u << 0)
#define IRQ_EDGE	(1u << 1)
#define CRS_LEN		(12 + 9 + 2)
#define RES_IO		0x47 /* small item: I/O port range, 7 bytes */

#define VMGENID_LEN   16
#define MAX_PHYS_ADDR (1ULL << 52)
/* Notify value for "the generation ID changed", as QEMU and Firecracker
 * send it. Linux's vmgenid rereads the ID on any value, but only values
 * from 0x80 up are device notifications that reach a driver's .notify. */
#define VMGENID_NOTIFY 0x80

_Static_assert(VMGENID_GSI < IOAPIC_PINS, "the GED's GSI is an IOAPIC pin");

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v;
	p[1] = v >> 8;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v);
	put16(p + 2, v >> 16);
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, v);
	put32(p + 4, v >> 32);
}

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t sum = 0;

	while (n--)
		sum += *p++;
	return -sum;
}

static uint64_t align8(uint64_t x)
{
	return (x + 7) & ~7ULL;
}

/* The common 36-byte header; the caller sets the checksum last. */
static void header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put32(t + 4, len);
	t[8] = rev;
	memcpy(t + 10, OEM_ID, 6);
	memcpy(t + 16, OEM_TABLE_ID, 8);
	put32(t + 24, 1);
	memcpy(t + 28, CREATOR_ID, 4);
	put32(t + 32, 1);
}

static void seal(uint8_t *t)
{
	uint32_t len = t[4] | t[5] << 8 | t[6] << 16 | (uint32_t)t[7] << 24;

	t[9] = 0;
	t[9] = checksum(t, len);
}

/* A Generic Address Structure naming one byte-wide I/O port. */
static void gas_port8(uint8_t *g, uint16_t port)
{
	g[0] = GAS_SYSTEM_IO;
	g[1] = 8;
	g[2] = 0;
	g[3] = GAS_ACCESS_BYTE;
	put64(g + 4, port);
}

/*
 * AML. A body inside a PkgLength is emitted twice: once with p == NULL to
 * measure it, then for real. PkgLength counts its own bytes and its width
 * depends on the body, so measuring first keeps the encoding minimal (as
 * iasl's) and never writes past the table's end. Nesting is 3 deep, so the
 * repeated work is a constant factor.
 */
struct aml {
	uint8_t *p; /* NULL: only count */
	size_t pos;
};

typedef void aml_body_fn(struct aml *a, const void *ctx);

static void emit(struct aml *a, const void *src, size_t n)
{
	if (a->p)
		memcpy(a->p + a->pos, src, n);
	a->pos += n;
}

static void emit1(struct aml *a, uint8_t b)
{
	emit(a, &b, 1);
}

static void aml_pkglen(struct aml *a, size_t body)
{
	/* 1 byte holds 6 bits; n bytes hold 4 + 8 * (n - 1) bits. */
	static const size_t limit[] = {1u << 6, 1u << 12, 1u << 20, 1u << 28};
	uint8_t b[4];
	size_t n = 1, v, i;

	while (n < 4 && body + n >= limit[n - 1])
		n++;
	v = body + n;
	if (n == 1) {
		b[0] = v;
	} else {
		b[0] = (n - 1) << 6 | (v & 0xf);
		for (i = 1; i < n; i++)
			b[i] = v >> (4 + 8 * (i - 1));
	}
	emit(a, b, n);
}

static void aml_pkg(struct aml *a, aml_body_fn *body, const void *ctx)
{
	struct aml dry = {.p = NULL, .pos = 0};

	body(&dry, ctx);
	aml_pkglen(a, dry.pos);
	body(a, ctx);
}

static void aml_int(struct aml *a, uint64_t v)
{
	uint8_t b[8];
	size_t n;

	if (v <= 1) {
		emit1(a, v ? AML_ONE : AML_ZERO);
		return;
	}
	if (v <= 0xff) {
		emit1(a, AML_BYTE);
		n = 1;
	} else if (v <= 0xffff) {
		emit1(a, AML_WORD);
		n = 2;
	} else if (v <= 0xffffffff) {
		emit1(a, AML_DWORD);
		n = 4;
	} else {
		emit1(a, AML_QWORD);
		n = 8;
	}
	put64(b, v);
	emit(a, b, n);
}

static void aml_name(struct aml *a, const char *seg)
{
	emit1(a, AML_NAME);
	emit(a, seg, 4);
}

static void aml_string(struct aml *a, const char *s)
{
	emit1(a, AML_STRING);
	emit(a, s, strlen(s) + 1);
}

static void s5_body(struct aml *a, const void *ctx)
{
	/* {SLP_TYPa, SLP_TYPb, reserved, reserved}; HW-reduced uses only a. */
	emit1(a, 4);
	aml_int(a, ACPI_SLP_TYP_S5);
	aml_int(a, ACPI_SLP_TYP_S5);
	aml_int(a, 0);
	aml_int(a, 0);
}

/* ResourceTemplate () { Memory32Fixed (ReadWrite, base, size)  -- or, for
 *   an I/O-port device, IO (Decode16, base, base, 1, size) --
 *   Interrupt (ResourceConsumer, Level|Edge, ActiveHigh, Exclusive) { gsi } }
 */
static void crs_body(struct aml *a, const void *ctx)
{
	const struct acpi_mmio_dev *d = ctx;
	uint8_t r[CRS_LEN];
	size_t n;

	if (d->io) {
		r[0] = RES_IO;
		r[1] = 1; /* 16-bit decode */
		put16(r + 2, d->base);
		put16(r + 4, d->base);
		r[6] = 1; /* alignment */
		r[7] = d->size;
		n = 8;
	} else {
		r[0] = RES_MEM32_FIXED;
		put16(r + 1, 9);
		r[3] = 1; /* read-write */
		put32(r + 4, d->base);
		put32(r + 8, d->size);
		n = 12;
	}

	r[n] = RES_EXT_IRQ;
	put16(r + n + 1, 6);
	r[n + 3] = IRQ_CONSUMER | (d->edge ? IRQ_EDGE : 0);
	r[n + 4] = 1; /* one interrupt in the table */
	put32(r + n + 5, d->gsi);
	n += 9;

	r[n++] = RES_END_TAG;
	r[n++] = 0; /* zero: "checksum OK" */

	aml_int(a, n);
	emit(a, r, n);
}

struct dev_ctx {
	unsigned idx;
	const struct acpi_mmio_dev *dev;
};

static void dev_body(struct aml *a, const void *ctx)
{
	static const char hex[] = "0123456789ABCDEF";
	const struct dev_ctx *c = ctx;
	char seg[4] = {'D', hex[c->idx >> 8 & 15], hex[c->idx >> 4 & 15],
		       hex[c->idx & 15]};

	emit(a, seg, 4);
	aml_name(a, "_HID");
	aml_string(a, c->dev->hid);
	aml_name(a, "_UID");
	aml_int(a, c->idx);
	/* DMA is cache-coherent; only arm64 assumes otherwise without it,
	 * but it costs 6 bytes and says what is true. */
	aml_name(a, "_CCA");
	aml_int(a, 1);
	aml_name(a, "_CRS");
	emit1(a, AML_BUFFER);
	aml_pkg(a, crs_body, c->dev);
}

/* {low 32 bits, high 32 bits} of the ID's guest-physical address: the
 * shape Linux's vmgenid_add() insists on (two Integers). */
static void vgen_addr_body(struct aml *a, const void *ctx)
{
	const struct acpi_config *cfg = ctx;

	emit1(a, 2);
	aml_int(a, cfg->vmgenid_gpa & 0xffffffff);
	aml_int(a, cfg->vmgenid_gpa >> 32);
}

/*
 * Device (VGEN) {
 *   Name (_HID, "SLOS0001")  Name (_CID, "VM_GEN_COUNTER")
 *   Name (_DDN, "VM_Gen_Counter")  Name (ADDR, Package (2) { lo, hi }) }
 *
 * Linux 6.1's vmgenid matches "VMGENCTR" or "VM_GEN_COUNTER" against the
 * _HID and each _CID with strcmp(), so the _CID is upper case. (Microsoft's
 * spec, QEMU and Firecracker write "VM_Gen_Counter", which Linux only
 * matches because ACPICA upper-cases _HID/_CID strings when it evaluates
 * them, nsrepair2.c.) "VMGENCTR" is no valid _HID (the last four must be
 * hex; iasl refuses it), so _HID is ours and the match is through _CID.
 * ADDR is a Name: it never changes while the tables exist, and Linux
 * evaluates it once, at probe.
 */
static void vgen_body(struct aml *a, const void *ctx)
{
	emit(a, "VGEN", 4);
	aml_name(a, "_HID");
	aml_string(a, ACPI_VMGENID_HID);
	aml_name(a, "_CID");
	aml_string(a, ACPI_VMGENID_CID);
	aml_name(a, "_DDN");
	aml_string(a, "VM_Gen_Counter");
	aml_name(a, "ADDR");
	emit1(a, AML_PACKAGE);
	aml_pkg(a, vgen_addr_body, ctx);
}

/* ResourceTemplate () { Interrupt (ResourceConsumer, Edge, ActiveHigh,
 *   Exclusive) { gsi } }: a pulse per event, so edge; nothing shares it. */
static void ged_crs_body(struct aml *a, const void *ctx)
{
	const struct acpi_config *cfg = ctx;
	uint8_t r[9 + 2];

	r[0] = RES_EXT_IRQ;
	put16(r + 1, 6);
	r[3] = IRQ_CONSUMER | IRQ_EDGE;
	r[4] = 1;
	put32(r + 5, cfg->ged_gsi);
	r[9] = RES_END_TAG;
	r[10] = 0;
	aml_int(a, sizeof(r));
	emit(a, r, sizeof(r));
}

/* If (LEqual (Arg0, gsi)) { Notify (\_SB_.VGEN, 0x80) } */
static void ged_if_body(struct aml *a, const void *ctx)
{
	const struct acpi_config *cfg = ctx;

	emit1(a, AML_LEQUAL);
	emit1(a, AML_ARG0);
	aml_int(a, cfg->ged_gsi);
	emit1(a, AML_NOTIFY);
	emit1(a, AML_ROOT_CHAR);
	emit1(a, AML_DUAL_NAME); /* two NameSegs follow */
	emit(a, "_SB_VGEN", 8);
	aml_int(a, VMGENID_NOTIFY);
}

/* Method (_EVT, 1, NotSerialized): evged calls it from its threaded IRQ
 * handler with the GSI that fired (it looks for _Exx first, then _EVT). */
static void ged_evt_body(struct aml *a, const void *ctx)
{
	emit(a, "_EVT", 4);
	emit1(a, 1); /* one argument, not serialized, sync level 0 */
	emit1(a, AML_IF);
	aml_pkg(a, ged_if_body, ctx);
}

/* Device (GED0) { Name (_HID, "ACPI0013")  Name (_UID, Zero)
 *   Name (_CRS, ...)  Method (_EVT, 1) { ... } }
 * A hardware-reduced platform has no GPE blocks and no SCI, so a device
 * notification needs an interrupt of its own: the GED is ACPI's way. */
static void ged_body(struct aml *a, const void *ctx)
{
	emit(a, "GED0", 4);
	aml_name(a, "_HID");
	aml_string(a, "ACPI0013");
	aml_name(a, "_UID");
	aml_int(a, 0);
	aml_name(a, "_CRS");
	emit1(a, AML_BUFFER);
	aml_pkg(a, ged_crs_body, ctx);
	emit1(a, AML_METHOD);
	aml_pkg(a, ged_evt_body, ctx);
}

static void aml_device(struct aml *a, aml_body_fn *body, const void *ctx)
{
	emit1(a, AML_EXT_PREFIX);
	emit1(a, AML_EXT_DEVICE);
	aml_pkg(a, body, ctx);
}

static void sb_body(struct aml *a, const void *ctx)
{
	const struct acpi_config *cfg = ctx;
	unsigned i;

	emit(a, (const char[]){AML_ROOT_CHAR, '_', 'S', 'B', '_'}, 5);
	for (i = 0; i < cfg->nr_devs; i++) {
		struct dev_ctx c = {.idx = i, .dev = &cfg->devs[i]};

		aml_device(a, dev_body, &c);
	}
	if (cfg->vmgenid_gpa) {
		aml_device(a, vgen_body, cfg);
		aml_device(a, ged_body, cfg);
	}
}

static void dsdt_aml(struct aml *a, const struct acpi_config *cfg)
{
	aml_name(a, "_S5_");
	emit1(a, AML_PACKAGE);
	aml_pkg(a, s5_body, NULL);
	if (cfg->nr_devs || cfg->vmgenid_gpa) {
		emit1(a, AML_SCOPE);
		aml_pkg(a, sb_body, cfg);
	}
}

static size_t dsdt_len(const struct acpi_config *cfg)
{
	struct aml dry = {.p = NULL, .pos = 0};

	dsdt_aml(&dry, cfg);
	return HDR_LEN + dry.pos;
}

static unsigned nr_xapic(const struct acpi_config *cfg)
{
	return cfg->nr_vcpus > MAX_XAPIC_ID + 1 ? MAX_XAPIC_ID + 1
						: cfg->nr_vcpus;
}

static uint64_t madt_len(const struct acpi_config *cfg)
{
	uint64_t nx = nr_xapic(cfg);

	return MADT_FIXED_LEN + nx * MADT_LAPIC_LEN + MADT_IOAPIC_LEN +
	       (cfg->nr_vcpus - nx) * MADT_X2APIC_LEN +
	       (cfg->mp_wake_gpa ? MADT_MP_WAKE_LEN : 0);
}

static void build_madt(uint8_t *t, const struct acpi_config *cfg, uint32_t len)
{
	uint8_t *e = t + MADT_FIXED_LEN;
	unsigned i;

	header(t, "APIC", len, 5);
	put32(t + 36, LAPIC_BASE);
	put32(t + 40, 0); /* no PCAT_COMPAT: there is no 8259 */

	/* APIC-id order: the boot vCPU (id 0) first, as ACPI asks, and
	 * Linux numbers the rest in MADT order. */
	for (i = 0; i < cfg->nr_vcpus; i++) {
		if (i <= MAX_XAPIC_ID) {
			e[0] = 0; /* Processor Local APIC */
			e[1] = MADT_LAPIC_LEN;
			e[2] = i;	 /* ACPI processor UID */
			e[3] = i;	 /* APIC id */
			put32(e + 4, 1); /* enabled */
			e += MADT_LAPIC_LEN;
		} else {
			e[0] = 9; /* Processor Local x2APIC */
			e[1] = MADT_X2APIC_LEN;
			put32(e + 4, i);  /* x2APIC id */
			put32(e + 8, 1);  /* enabled */
			put32(e + 12, i); /* ACPI processor UID */
			e += MADT_X2APIC_LEN;
		}
	}

	e[0] = 1; /* I/O APIC */
	e[1] = MADT_IOAPIC_LEN;
	e[2] = cfg->ioapic_id;
	put32(e + 4, cfg->ioapic_base);
	put32(e + 8, 0); /* GSI base: ISA IRQ n = GSI n = pin n */
	e += MADT_IOAPIC_LEN;

	if (cfg->mp_wake_gpa) {
		e[0] = MADT_MP_WAKE;
		e[1] = MADT_MP_WAKE_LEN;
		put16(e + 2, 0); /* mailbox version 0 */
		put32(e + 4, 0); /* reserved */
		put64(e + 8, cfg->mp_wake_gpa);
	}
	seal(t);
}

static uint64_t srat_len(const struct acpi_config *cfg)
{
	uint64_t nx = nr_xapic(cfg);

	return SRAT_FIXED_LEN + nx * SRAT_LAPIC_LEN +
	       (cfg->nr_vcpus - nx) * SRAT_X2APIC_LEN +
	       (uint64_t)cfg->nr_mem_ranges * SRAT_MEM_LEN;
}

static uint64_t slit_len(const struct acpi_config *cfg)
{
	return SLIT_FIXED_LEN + (uint64_t)cfg->nr_nodes * cfg->nr_nodes;
}

/*
 * Revision 3 (ACPI 4+): Linux reads all 32 bits of a Local APIC
 * affinity's proximity domain from revision 2 on. CPU entries take the
 * MADT's kind for the same APIC id (Local APIC up to 254, x2APIC after),
 * in the MADT's order, so the guest finds every CPU it enumerates. Linux
 * numbers nodes in the order their domains first appear, CPUs first.
 */
static void build_srat(uint8_t *t, const struct acpi_config *cfg, uint32_t len)
{
	uint8_t *e = t + SRAT_FIXED_LEN;
	unsigned i;

	header(t, "SRAT", len, 3);
	put32(t + HDR_LEN, 1); /* reserved, 1 for backward compatibility */
	for (i = 0; i < cfg->nr_vcpus; i++) {
		uint32_t pxm = cfg->vcpu_node[i];

		if (i <= MAX_XAPIC_ID) {
			e[0] = SRAT_LAPIC;
			e[1] = SRAT_LAPIC_LEN;
			e[2] = pxm; /* domain bits 7:0 */
			e[3] = i;   /* APIC id */
			put32(e + 4, SRAT_ENABLED);
			e[8] = 0;	 /* local SAPIC EID */
			e[9] = pxm >> 8; /* domain bits 31:8 */
			e[10] = pxm >> 16;
			e[11] = pxm >> 24;
			put32(e + 12, 0); /* clock domain */
			e += SRAT_LAPIC_LEN;
		} else {
			e[0] = SRAT_X2APIC;
			e[1] = SRAT_X2APIC_LEN;
			put32(e + 4, pxm);
			put32(e + 8, i); /* x2APIC id */
			put32(e + 12, SRAT_ENABLED);
			e += SRAT_X2APIC_LEN;
		}
	}
	for (i = 0; i < cfg->nr_mem_ranges; i++) {
		const struct acpi_mem_range *r = &cfg->mem_ranges[i];

		e[0] = SRAT_MEM;
		e[1] = SRAT_MEM_LEN;
		put32(e + 2, r->node);
		put64(e + 8, r->base);
		put64(e + 16, r->len);
		/* Enabled; not hot-pluggable, not non-volatile. */
		put32(e + 28, SRAT_ENABLED);
		e += SRAT_MEM_LEN;
	}
	seal(t);
}

/* Two distances: a node to itself and any two hosts (acpi.h). */
static void build_slit(uint8_t *t, const struct acpi_config *cfg, uint32_t len)
{
	unsigned n = cfg->nr_nodes, i, j;

	header(t, "SLIT", len, 1);
	put64(t + HDR_LEN, n);
	for (i = 0; i < n; i++)
		for (j = 0; j < n; j++)
			t[SLIT_FIXED_LEN + i * n + j] =
			    i == j ? ACPI_SLIT_LOCAL : ACPI_SLIT_REMOTE;
	seal(t);
}

static void build_fadt(uint8_t *t, uint64_t dsdt)
{
	header(t, "FACP", FADT_LEN, 6);
	/* No FACS: HW-reduced ACPI has no firmware waking vector or lock. */
	if (dsdt <= 0xffffffff)
		put32(t + 40, dsdt);
	/* C2/C3 unsupported (latency above 100 and 1000 us) for an OS that
	 * reads these: there is no P_BLK to enter them with anyway. */
	put16(t + 96, 101);
	put16(t + 98, 1001);
	put16(t + 109, BOOT_NO_VGA | BOOT_NO_CMOS_RTC);
	put32(t + 112, FADT_WBINVD | FADT_PWR_BUTTON | FADT_SLP_BUTTON |
			   FADT_RESET_REG_SUP | FADT_HW_REDUCED);
	gas_port8(t + 116, ACPI_PM_PORT);
	t[128] = ACPI_RESET_VALUE;
	t[131] = 3; /* FADT minor version: ACPI 6.3 */
	put64(t + 140, dsdt);
	gas_port8(t + 244, ACPI_PM_PORT); /* sleep control */
	gas_port8(t + 256, ACPI_PM_PORT); /* sleep status */
	seal(t);
}

static void build_rsdp(uint8_t *r, uint64_t xsdt)
{
	memcpy(r, "RSD PTR ", 8);
	memcpy(r + 9, OEM_ID, 6);
	r[15] = 2;
	put32(r + 16, 0); /* no RSDT: every reader we target uses the XSDT */
	put32(r + 20, RSDP_LEN);
	put64(r + 24, xsdt);
	r[8] = checksum(r, 20);
	r[32] = checksum(r, RSDP_LEN);
}

static int hid_ok(const char *hid)
{
	size_t n;

	if (!hid)
		return 0;
	for (n = 0; hid[n]; n++) {
		char c = hid[n];

		if (n == 8 || !((c >= 'A' && c <= 'Z') ||
				(c >= '0' && c <= '9') || c == '_'))
			return 0;
	}
	return n == 7 || n == 8;
}

/* Ranges in order and apart: Linux merges a node's ranges into one span
 * and refuses overlapping nodes (numa_cleanup_meminfo), so a table it
 * would take apart is refused here. */
static int numa_ok(const struct acpi_config *cfg)
{
	uint64_t end = 0;
	unsigned i;

	if (cfg->nr_nodes > ACPI_MAX_NODES ||
	    cfg->nr_mem_ranges > ACPI_MAX_RANGES || !cfg->vcpu_node ||
	    (cfg->nr_mem_ranges && !cfg->mem_ranges))
		return 0;
	for (i = 0; i < cfg->nr_vcpus; i++)
		if (cfg->vcpu_node[i] >= cfg->nr_nodes)
			return 0;
	for (i = 0; i < cfg->nr_mem_ranges; i++) {
		const struct acpi_mem_range *r = &cfg->mem_ranges[i];

		if (r->node >= cfg->nr_nodes || !r->len || r->base % PAGE_4K ||
		    r->len % PAGE_4K || r->base < end ||
		    r->base > MAX_PHYS_ADDR || r->len > MAX_PHYS_ADDR - r->base)
			return 0;
		end = r->base + r->len;
	}
	return 1;
}

static int config_ok(const struct acpi_config *cfg)
{
	unsigned i;

	if (!cfg->nr_vcpus || cfg->ioapic_id > 0xff ||
	    cfg->ioapic_base > 0xffffffff || cfg->nr_devs > ACPI_MAX_DEVS ||
	    (cfg->nr_devs && !cfg->devs))
		return 0;
	for (i = 0; i < cfg->nr_devs; i++) {
		const struct acpi_mmio_dev *d = &cfg->devs[i];

		if (!hid_ok(d->hid) || !d->size ||
		    d->base > 0x100000000ULL - d->size ||
		    (d->io && (d->size > 0xff || d->base + d->size > 0x10000)))
			return 0;
		/* Both Interrupt descriptors say Exclusive: a shared line
		 * would fail one of the two drivers' request_irq(). */
		if (cfg->vmgenid_gpa && d->gsi == cfg->ged_gsi)
			return 0;
	}
	/* 16-byte aligned: the ID sits in one cache line and one page, so
	 * the VMM's write and the guest's read never straddle either. ADDR
	 * has both halves, so it need not be below 4 GiB, only within the
	 * 52 bits of physical address x86-64 can have. */
	if (cfg->vmgenid_gpa &&
	    (cfg->vmgenid_gpa % VMGENID_LEN ||
	     cfg->vmgenid_gpa > MAX_PHYS_ADDR - VMGENID_LEN ||
	     cfg->ged_gsi >= IOAPIC_PINS))
		return 0;
	/* ACPI 6.4 5.2.12.19: the mailbox is 4 KiB, 4 KiB aligned. */
	if (cfg->mp_wake_gpa &&
	    (cfg->mp_wake_gpa % 4096 ||
	     cfg->mp_wake_gpa > MAX_PHYS_ADDR - 4096))
		return 0;
	return !cfg->nr_nodes || numa_ok(cfg);
}

int acpi__build(void *buf, uint64_t gpa, size_t len,
		const struct acpi_config *cfg, uint64_t *rsdp_gpa)
{
	uint64_t rsdp, xsdt, fadt, madt, dsdt, srat = 0, slit = 0, end;
	uint64_t xlen, mlen, dlen, slen = 0, llen = 0;
	uint8_t *b = buf;
	struct aml a;

	if (!buf || !cfg || !rsdp_gpa || !config_ok(cfg))
		return -1;

	/* The RSDP must sit on a 16-byte boundary for the BIOS-area scan. */
	rsdp = -gpa & 15;
	xsdt = align8(rsdp + RSDP_LEN);
	xlen = HDR_LEN + 8 * (XSDT_MIN + (cfg->nr_nodes ? 2 : 0));
	fadt = align8(xsdt + xlen);
	madt = align8(fadt + FADT_LEN);
	mlen = madt_len(cfg);
	dsdt = align8(madt + mlen);
	dlen = dsdt_len(cfg);
	end = dsdt + dlen;
	if (cfg->nr_nodes) {
		srat = align8(end);
		slen = srat_len(cfg);
		slit = align8(srat + slen);
		llen = slit_len(cfg);
		end = slit + llen;
	}
	if (mlen > 0xffffffff || dlen > 0xffffffff || slen > 0xffffffff ||
	    end > len || gpa + end < gpa)
		return -1;
	/* The VMM rewrites the ID on restore: never inside the tables. */
	if (cfg->vmgenid_gpa && cfg->vmgenid_gpa < gpa + end &&
	    cfg->vmgenid_gpa + VMGENID_LEN > gpa)
		return -1;

	memset(b, 0, end);
	a = (struct aml){.p = b + dsdt + HDR_LEN, .pos = 0};
	header(b + dsdt, "DSDT", dlen, 2); /* 2: 64-bit AML integers */
	dsdt_aml(&a, cfg);
	seal(b + dsdt);

	build_madt(b + madt, cfg, mlen);
	build_fadt(b + fadt, gpa + dsdt);

	header(b + xsdt, "XSDT", xlen, 1);
	put64(b + xsdt + HDR_LEN, gpa + fadt);
	put64(b + xsdt + HDR_LEN + 8, gpa + madt);
	if (cfg->nr_nodes) {
		build_srat(b + srat, cfg, slen);
		build_slit(b + slit, cfg, llen);
		put64(b + xsdt + HDR_LEN + 16, gpa + srat);
		put64(b + xsdt + HDR_LEN + 24, gpa + slit);
	}
	seal(b + xsdt);

	build_rsdp(b + rsdp, gpa + xsdt);
	*rsdp_gpa = gpa + rsdp;
	return 0;
}
