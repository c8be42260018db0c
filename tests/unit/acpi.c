// SPDX-License-Identifier: MIT
/*
 * ACPI tables: checksums, lengths and pointers of every table, the MADT's
 * CPU entries, and the DSDT's AML walked by a checker written apart from the
 * emitter. When acpica-tools is installed, iasl disassembles the tables and
 * acpiexec (ACPICA, the interpreter Linux runs) evaluates _S5_ and _CRS and
 * enters S5, which must end in a write of SLP_TYP|SLP_EN to ACPI_PM_PORT.
 * With a vmgenid configured, also \_SB_.VGEN and \_SB_.GED0 (acpiexec runs
 * the GED's _EVT and must see the Notify), and vmm/vmgenid.c's helpers.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/acpi.h"
#include "vmm/dsm.h"
#include "vmm/mem.h"
#include "vmm/vmgenid.h"

#define GPA	0xE0000ULL
#define BUF_MAX 0x20000
#define BIG	(1 << 20)

static uint8_t buf[BIG];

static uint16_t rd16(const uint8_t *p)
{
	return p[0] | p[1] << 8;
}

static uint32_t rd32(const uint8_t *p)
{
	return rd16(p) | (uint32_t)rd16(p + 2) << 16;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return s;
}

struct tables {
	uint8_t *rsdp, *xsdt, *fadt, *madt, *dsdt;
	uint8_t *srat, *slit; /* NULL: none */
	size_t end; /* one past the last byte of any table */
};

/* Map a guest-physical address back into buf, checking [gpa, gpa+len). */
static uint8_t *at(uint64_t gpa, size_t len, size_t buflen)
{
	cr_assert(gpa >= GPA && gpa - GPA + len <= buflen,
		  "address %#llx+%zu outside the buffer",
		  (unsigned long long)gpa, len);
	return buf + (gpa - GPA);
}

static void note_end(struct tables *t, const uint8_t *p, size_t len)
{
	size_t e = p - buf + len;

	if (e > t->end)
		t->end = e;
}

/* Every SDT: length within the buffer, checksum zero, our OEM id. */
static uint8_t *table(struct tables *t, uint64_t gpa, const char *sig,
		      size_t buflen)
{
	uint8_t *p = at(gpa, 36, buflen);
	uint32_t len = rd32(p + 4);

	cr_assert(memcmp(p, sig, 4) == 0, "expected %s, found %.4s", sig, p);
	cr_assert_geq(len, 36);
	at(gpa, len, buflen);
	cr_assert_eq(sum(p, len), 0, "%s checksum", sig);
	cr_assert(memcmp(p + 10, "SLOS  ", 6) == 0, "%s OEM id", sig);
	note_end(t, p, len);
	return p;
}

static struct tables parse(uint64_t rsdp_gpa, size_t buflen)
{
	struct tables t = {0};
	uint32_t xlen;

	cr_assert_eq(rsdp_gpa % 16, 0, "RSDP not on a 16-byte boundary");
	t.rsdp = at(rsdp_gpa, 36, buflen);
	cr_assert(memcmp(t.rsdp, "RSD PTR ", 8) == 0);
	cr_assert_eq(sum(t.rsdp, 20), 0, "RSDP checksum");
	cr_assert_eq(t.rsdp[15], 2, "RSDP revision");
	cr_assert_eq(rd32(t.rsdp + 20), 36, "RSDP length");
	cr_assert_eq(sum(t.rsdp, 36), 0, "RSDP extended checksum");
	cr_assert(memcmp(t.rsdp + 9, "SLOS  ", 6) == 0);
	note_end(&t, t.rsdp, 36);

	t.xsdt = table(&t, rd64(t.rsdp + 24), "XSDT", buflen);
	xlen = rd32(t.xsdt + 4);
	cr_assert(xlen == 36 + 2 * 8 || xlen == 36 + 4 * 8,
		  "XSDT has FADT and MADT (and SRAT and SLIT)");
	t.fadt = table(&t, rd64(t.xsdt + 36), "FACP", buflen);
	t.madt = table(&t, rd64(t.xsdt + 44), "APIC", buflen);
	if (xlen == 36 + 4 * 8) {
		t.srat = table(&t, rd64(t.xsdt + 52), "SRAT", buflen);
		t.slit = table(&t, rd64(t.xsdt + 60), "SLIT", buflen);
	}
	t.dsdt = table(&t, rd64(t.fadt + 140), "DSDT", buflen);
	return t;
}

static struct tables build(const struct acpi_config *cfg, size_t len)
{
	uint64_t rsdp = 0;

	cr_assert_eq(acpi__build(buf, GPA, len, cfg, &rsdp), 0);
	return parse(rsdp, len);
}

/* -------- AML checker: only what the DSDT is meant to contain -------- */

struct dev_seen {
	char name[5];
	char hid[9];
	uint64_t uid, cca;
	uint32_t base, size, gsi;
	uint8_t irq_flags;
	int has_crs, has_uid, nr_mem;
	/* VGEN */
	char cid[16], ddn[16];
	uint64_t addr[2];
	unsigned nr_addr;
	int has_addr;
	/* GED0: _EVT is If (LEqual (Arg0, evt_gsi)) { Notify (path, val) } */
	int has_evt;
	uint64_t evt_gsi, evt_val;
	char evt_path[16];
};

struct dsdt_seen {
	int has_s5;
	uint64_t s5[4];
	unsigned nr_s5;
	unsigned nr_devs;
	struct dev_seen *devs;
	unsigned cap;
};

struct cur {
	const uint8_t *b;
	size_t pos, end;
};

static uint8_t next(struct cur *c)
{
	cr_assert_lt(c->pos, c->end, "AML runs past its package at %zu",
		     c->pos);
	return c->b[c->pos++];
}

/* Returns the absolute end of the package; checks the encoding is the
 * shortest one, which is what iasl emits. */
static size_t pkglen(struct cur *c)
{
	size_t start = c->pos, len, n, i;
	uint8_t lead = next(c);

	n = lead >> 6;
	if (!n) {
		len = lead & 0x3f;
	} else {
		cr_assert_eq(lead & 0x30, 0, "PkgLength reserved bits");
		len = lead & 0xf;
		for (i = 0; i < n; i++)
			len |= (size_t)next(c) << (4 + 8 * i);
	}
	cr_assert_eq(n,
		     (size_t)(len < 0x40       ? 0
			      : len < 0x1000   ? 1
			      : len < 0x100000 ? 2
					       : 3),
		     "PkgLength %zu not minimally encoded", len);
	cr_assert_leq(start + len, c->end, "package overruns its parent");
	return start + len;
}

static void nameseg(struct cur *c, char out[5])
{
	int i;

	for (i = 0; i < 4; i++) {
		char ch = next(c);

		cr_assert((ch >= 'A' && ch <= 'Z') || ch == '_' ||
			      (i && ch >= '0' && ch <= '9'),
			  "bad NameSeg character %#x", ch);
		out[i] = ch;
	}
	out[4] = 0;
}

static uint64_t integer(struct cur *c)
{
	uint8_t op = next(c);
	uint64_t v = 0;
	int n = 0, i;

	switch (op) {
	case 0x00:
		return 0;
	case 0x01:
		return 1;
	case 0x0a:
		n = 1;
		break;
	case 0x0b:
		n = 2;
		break;
	case 0x0c:
		n = 4;
		break;
	case 0x0e:
		n = 8;
		break;
	default:
		cr_assert_fail("expected an integer, found opcode %#x", op);
	}
	for (i = 0; i < n; i++)
		v |= (uint64_t)next(c) << (8 * i);
	return v;
}

static void crs(const uint8_t *r, size_t len, struct dev_seen *d)
{
	size_t i = 0;
	int mem = 0, irq = 0;

	for (;;) {
		uint8_t tag;

		cr_assert_lt(i, len, "resource template without an end tag");
		tag = r[i];
		if (tag == 0x79) {
			cr_assert_eq(i + 2, len, "bytes after the end tag");
			break;
		}
		cr_assert(tag & 0x80, "unexpected small descriptor %#x", tag);
		cr_assert_leq(i + 3 + rd16(r + i + 1), len);
		if (tag == 0x86) {
			cr_assert_eq(rd16(r + i + 1), 9);
			cr_assert_eq(r[i + 3], 1, "Memory32Fixed read-write");
			d->base = rd32(r + i + 4);
			d->size = rd32(r + i + 8);
			mem++;
		} else if (tag == 0x89) {
			cr_assert_eq(rd16(r + i + 1), 6);
			cr_assert_eq(r[i + 4], 1, "one interrupt");
			d->irq_flags = r[i + 3];
			d->gsi = rd32(r + i + 5);
			irq++;
		} else {
			cr_assert_fail("unexpected descriptor %#x", tag);
		}
		i += 3 + rd16(r + i + 1);
	}
	cr_assert(mem <= 1 && irq == 1);
	d->nr_mem = mem;
	d->has_crs = 1;
}

static void string(struct cur *c, char *out, size_t cap)
{
	size_t i = 0;

	cr_assert_eq(next(c), 0x0d, "expected a string");
	while ((out[i] = next(c)))
		cr_assert_lt(++i, cap, "string too long");
}

/* Name (XXXX, data) inside a Device or at the root. */
static void name(struct cur *c, struct dsdt_seen *s, struct dev_seen *d)
{
	char n[5];
	uint8_t op;
	size_t end;

	nameseg(c, n);
	if (d && !strcmp(n, "_HID")) {
		size_t i = 0;

		cr_assert_eq(next(c), 0x0d, "_HID is a string");
		while ((d->hid[i] = next(c)))
			cr_assert_lt(++i, sizeof(d->hid), "_HID too long");
	} else if (d && !strcmp(n, "_UID")) {
		d->uid = integer(c);
		d->has_uid = 1;
	} else if (d && !strcmp(n, "_CID")) {
		string(c, d->cid, sizeof(d->cid));
	} else if (d && !strcmp(n, "_DDN")) {
		string(c, d->ddn, sizeof(d->ddn));
	} else if (d && !strcmp(n, "ADDR")) {
		struct cur p;
		unsigned count;

		cr_assert_eq(next(c), 0x12, "ADDR is a package");
		end = pkglen(c);
		p = (struct cur){c->b, c->pos, end};
		count = next(&p);
		while (p.pos < end) {
			cr_assert_lt(d->nr_addr, 2, "ADDR has 2 elements");
			d->addr[d->nr_addr++] = integer(&p);
		}
		cr_assert_eq(count, d->nr_addr, "NumElements vs elements");
		d->has_addr = 1;
		c->pos = end;
	} else if (d && !strcmp(n, "_CCA")) {
		d->cca = integer(c);
	} else if (d && !strcmp(n, "_CRS")) {
		struct cur b;
		uint64_t size;

		cr_assert_eq(next(c), 0x11, "_CRS is a buffer");
		end = pkglen(c);
		b = (struct cur){c->b, c->pos, end};
		size = integer(&b);
		cr_assert_eq(size, end - b.pos, "BufferSize vs bytes");
		crs(c->b + b.pos, end - b.pos, d);
		c->pos = end;
	} else if (!d && !strcmp(n, "_S5_")) {
		struct cur p;
		unsigned count;

		cr_assert_eq(next(c), 0x12, "_S5_ is a package");
		end = pkglen(c);
		p = (struct cur){c->b, c->pos, end};
		count = next(&p);
		while (p.pos < end) {
			cr_assert_lt(s->nr_s5, 4);
			s->s5[s->nr_s5++] = integer(&p);
		}
		cr_assert_eq(count, s->nr_s5, "NumElements vs elements");
		s->has_s5 = 1;
		c->pos = end;
	} else {
		op = c->b[c->pos];
		cr_assert_fail("unexpected Name %s (data op %#x)", n, op);
	}
}

/* Method (_EVT, 1, NotSerialized) { If (LEqual (Arg0, gsi)) {
 *   Notify (\_SB_.VGEN, value) } }, and nothing else. */
static void method(struct cur *c, struct dev_seen *d)
{
	size_t end = pkglen(c), if_end;
	struct cur m = {c->b, c->pos, end};
	char n[5];
	int i;

	nameseg(&m, n);
	cr_assert_str_eq(n, "_EVT", "the only Method is the GED's _EVT");
	cr_assert_eq(next(&m), 1, "one argument, NotSerialized");
	cr_assert_eq(next(&m), 0xa0, "If");
	if_end = pkglen(&m);
	cr_assert_eq(if_end, end, "the If is the whole body");
	cr_assert_eq(next(&m), 0x93, "LEqual");
	cr_assert_eq(next(&m), 0x68, "Arg0");
	d->evt_gsi = integer(&m);
	cr_assert_eq(next(&m), 0x86, "Notify");
	for (i = 0; i < 10; i++)
		d->evt_path[i] = next(&m);
	d->evt_val = integer(&m);
	cr_assert_eq(m.pos, end, "bytes after the Notify");
	d->has_evt = 1;
	c->pos = end;
}

static void device(struct cur *c, struct dsdt_seen *s)
{
	size_t end = pkglen(c);
	struct cur body;
	struct dev_seen *d;

	cr_assert_lt(s->nr_devs, s->cap);
	d = &s->devs[s->nr_devs++];
	memset(d, 0, sizeof(*d));
	body = (struct cur){c->b, c->pos, end};
	nameseg(&body, d->name);
	while (body.pos < end) {
		uint8_t op = next(&body);

		if (op == 0x14) {
			method(&body, d);
			continue;
		}
		cr_assert_eq(op, 0x08, "only Names and _EVT inside a Device");
		name(&body, s, d);
	}
	c->pos = end;
}

static void dsdt_walk(const uint8_t *dsdt, struct dsdt_seen *s)
{
	struct cur c = {dsdt, 36, rd32(dsdt + 4)};

	while (c.pos < c.end) {
		uint8_t op = next(&c);

		if (op == 0x08) {
			name(&c, s, NULL);
		} else if (op == 0x10) {
			size_t end = pkglen(&c);
			struct cur sc = {c.b, c.pos, end};
			char n[5];

			cr_assert_eq(next(&sc), '\\', "Scope (\\_SB)");
			nameseg(&sc, n);
			cr_assert_str_eq(n, "_SB_");
			while (sc.pos < end) {
				cr_assert_eq(next(&sc), 0x5b);
				cr_assert_eq(next(&sc), 0x82, "only Devices");
				device(&sc, s);
			}
			c.pos = end;
		} else {
			cr_assert_fail("unexpected opcode %#x at %zu", op,
				       c.pos - 1);
		}
	}
}

/* -------- configs -------- */

static struct acpi_mmio_dev *mkdevs(unsigned n)
{
	struct acpi_mmio_dev *d = calloc(n ? n : 1, sizeof(*d));
	unsigned i;

	cr_assert_not_null(d);
	for (i = 0; i < n; i++) {
		d[i].hid = i % 2 ? "LNRO0005" : "SLS0001";
		d[i].base = 0xD0000000ULL + i * 0x1000ULL;
		d[i].size = 0x200;
		d[i].gsi = 5 + i % 19;
		d[i].edge = i % 3 == 2;
	}
	return d;
}

static struct acpi_config mkcfg(unsigned vcpus, unsigned ndevs)
{
	return (struct acpi_config){
	    .nr_vcpus = vcpus,
	    .ioapic_base = IOAPIC_BASE,
	    .ioapic_id = 3,
	    .nr_devs = ndevs,
	    .devs = mkdevs(ndevs),
	};
}

/* \_SB_.VGEN and \_SB_.GED0, after the config's devices. */
static void check_vmgenid(const struct acpi_config *cfg,
			  const struct dev_seen *v, const struct dev_seen *g)
{
	static const char vgen_path[] = "\\\x2e_SB_VGEN";

	cr_assert_str_eq(v->name, "VGEN");
	cr_assert_str_eq(v->hid, ACPI_VMGENID_HID);
	/* What Linux 6.1's vmgenid_ids[] has, byte for byte. */
	cr_assert_str_eq(v->cid, "VM_GEN_COUNTER");
	cr_assert_str_eq(v->ddn, "VM_Gen_Counter");
	cr_assert(v->has_addr, "no ADDR");
	cr_assert_eq(v->nr_addr, 2);
	cr_assert_eq(v->addr[0], cfg->vmgenid_gpa & 0xffffffff, "ADDR low");
	cr_assert_eq(v->addr[1], cfg->vmgenid_gpa >> 32, "ADDR high");
	cr_assert(!v->has_crs && !v->has_evt && !v->has_uid);

	cr_assert_str_eq(g->name, "GED0");
	cr_assert_str_eq(g->hid, "ACPI0013");
	cr_assert(g->has_uid);
	cr_assert_eq(g->uid, 0);
	cr_assert(g->has_crs);
	cr_assert_eq(g->nr_mem, 0, "the GED has only an interrupt");
	cr_assert_eq(g->gsi, cfg->ged_gsi);
	cr_assert_eq(g->irq_flags, 0x03, "consumer, edge, active-high");
	cr_assert(g->has_evt, "no _EVT");
	cr_assert_eq(g->evt_gsi, cfg->ged_gsi, "_EVT compares another GSI");
	cr_assert(memcmp(g->evt_path, vgen_path, 10) == 0,
		  "_EVT does not Notify \\_SB_.VGEN");
	cr_assert_eq(g->evt_val, 0x80);
}

static void check_dsdt(const struct acpi_config *cfg, const uint8_t *dsdt)
{
	unsigned extra = cfg->vmgenid_gpa ? 2 : 0;
	struct dsdt_seen s = {.cap = cfg->nr_devs + extra};
	unsigned i;

	s.devs = calloc(s.cap ? s.cap : 1, sizeof(*s.devs));
	cr_assert_eq(dsdt[8], 2, "DSDT revision 2: 64-bit integers");
	dsdt_walk(dsdt, &s);
	cr_assert(s.has_s5, "no _S5_");
	cr_assert_geq(s.nr_s5, 1);
	cr_assert_eq(s.s5[0], ACPI_SLP_TYP_S5);
	cr_assert_eq(s.nr_devs, cfg->nr_devs + extra);
	if (extra)
		check_vmgenid(cfg, &s.devs[cfg->nr_devs],
			      &s.devs[cfg->nr_devs + 1]);
	else
		cr_assert_null(memmem(dsdt, rd32(dsdt + 4), "ACPI0013", 8),
			       "a GED without a vmgenid");
	for (i = 0; i < cfg->nr_devs; i++) {
		const struct acpi_mmio_dev *want = &cfg->devs[i];
		struct dev_seen *got = &s.devs[i];
		char n[16];

		snprintf(n, sizeof(n), "D%03X", i);
		cr_assert_str_eq(got->name, n);
		cr_assert_str_eq(got->hid, want->hid);
		cr_assert_eq(got->uid, i);
		cr_assert_eq(got->cca, 1);
		cr_assert(got->has_crs);
		cr_assert_eq(got->nr_mem, 1);
		cr_assert_eq(got->base, want->base);
		cr_assert_eq(got->size, want->size);
		cr_assert_eq(got->gsi, want->gsi);
		/* consumer, active-high, exclusive, not wake; bit 1 = edge */
		cr_assert_eq(got->irq_flags, want->edge ? 0x03 : 0x01);
		/* and the raw HID string is in the table, for simple scanners
		 */
		cr_assert_not_null(memmem(dsdt, rd32(dsdt + 4), want->hid,
					  strlen(want->hid) + 1));
	}
	free(s.devs);
}

/* -------- tests -------- */

Test(acpi, rsdp_xsdt_and_checksums)
{
	struct acpi_config cfg = mkcfg(2, 3);
	uint64_t rsdp = 0;
	struct tables t;

	memset(buf, 0xaa, BUF_MAX);
	cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, &cfg, &rsdp), 0);
	cr_assert_eq(rsdp, GPA, "RSDP first, where the E0000 scan starts");
	t = parse(rsdp, BUF_MAX);
	cr_assert_eq(rd32(t.rsdp + 16), 0, "no RSDT");
	cr_assert_eq(t.xsdt[8], 1);
	/* nothing written past the tables */
	for (size_t i = t.end; i < BUF_MAX; i++)
		cr_assert_eq(buf[i], 0xaa, "byte %zu beyond the tables", i);
	free((void *)cfg.devs);
}

Test(acpi, unaligned_gpa_keeps_rsdp_aligned)
{
	struct acpi_config cfg = mkcfg(1, 1);
	uint64_t rsdp = 0;

	cr_assert_eq(acpi__build(buf + 4, GPA + 4, BUF_MAX - 4, &cfg, &rsdp),
		     0);
	cr_assert_eq(rsdp, GPA + 16);
	parse(rsdp, BUF_MAX);
	free((void *)cfg.devs);
}

Test(acpi, fadt_hw_reduced_power_and_reset)
{
	struct acpi_config cfg = mkcfg(1, 0);
	struct tables t = build(&cfg, BUF_MAX);
	const uint8_t *f = t.fadt;
	uint32_t flags = rd32(f + 112);
	static const unsigned gas[] = {116, 244, 256};

	cr_assert_eq(rd32(f + 4), 276);
	cr_assert_eq(f[8], 6, "FADT major revision");
	cr_assert_eq(f[131], 3, "FADT minor revision");
	cr_assert(flags & (1u << 20), "HW_REDUCED_ACPI");
	cr_assert(flags & (1u << 10), "RESET_REG_SUP");
	cr_assert(flags & (1u << 4) && flags & (1u << 5),
		  "no fixed-feature buttons");
	cr_assert_eq(rd32(f + 36), 0, "no FACS");
	cr_assert_eq(rd64(f + 132), 0, "no X_FACS");
	cr_assert_eq(rd16(f + 46), 0, "no SCI");
	cr_assert_eq(rd32(f + 76), 0, "no PM timer");
	cr_assert_eq(rd64(f + 208 + 4), 0, "no X_PM_TMR");
	cr_assert_eq(rd32(f + 40), rd64(f + 140), "DSDT and X_DSDT agree");
	for (unsigned i = 0; i < 3; i++) {
		const uint8_t *g = f + gas[i];

		cr_assert_eq(g[0], 1, "System I/O");
		cr_assert_eq(g[1], 8, "8 bits");
		cr_assert_eq(g[2], 0);
		cr_assert_eq(g[3], 1, "byte access");
		cr_assert_eq(rd64(g + 4), ACPI_PM_PORT);
	}
	cr_assert_eq(f[128], ACPI_RESET_VALUE);
	free((void *)cfg.devs);
}

static void check_madt_wake(unsigned n, uint64_t wake)
{
	struct acpi_config cfg = mkcfg(n, 1);
	cfg.mp_wake_gpa = wake;
	struct tables t = build(&cfg, BIG);
	const uint8_t *m = t.madt, *e = m + 44, *end = m + rd32(m + 4);
	unsigned lapic = 0, x2apic = 0, ioapic = 0, next_id = 0, wakes = 0;

	cr_assert_eq(rd32(m + 36), LAPIC_BASE);
	cr_assert_eq(rd32(m + 40), 0, "no PCAT_COMPAT");
	while (e < end) {
		cr_assert_geq(e[1], 2);
		cr_assert_leq(e + e[1], end, "entry overruns the MADT");
		switch (e[0]) {
		case 0:
			cr_assert_eq(e[1], 8);
			cr_assert_eq(e[3], next_id, "APIC ids in order");
			cr_assert_eq(e[2], next_id, "UID = APIC id");
			cr_assert_eq(rd32(e + 4), 1, "enabled");
			cr_assert_lt(e[3], 255);
			lapic++;
			next_id++;
			break;
		case 9:
			cr_assert_eq(e[1], 16);
			cr_assert_eq(rd32(e + 4), next_id,
				     "x2APIC ids in order");
			cr_assert_geq(rd32(e + 4), 255, "xAPIC entry would do");
			cr_assert_eq(rd32(e + 8), 1, "enabled");
			cr_assert_eq(rd32(e + 12), next_id);
			x2apic++;
			next_id++;
			break;
		case 1:
			cr_assert_eq(e[1], 12);
			cr_assert_eq(e[2], cfg.ioapic_id);
			cr_assert_eq(rd32(e + 4), cfg.ioapic_base);
			cr_assert_eq(rd32(e + 8), 0, "GSI base");
			ioapic++;
			break;
		case 0x10:
			/* Linux's BAD_MADT_ENTRY: sizeof(struct
			 * acpi_madt_multiproc_wakeup) == 16. */
			cr_assert_eq(e[1], 16);
			cr_assert_eq(rd16(e + 2), 0, "mailbox version 0");
			cr_assert_eq(rd32(e + 4), 0, "reserved");
			cr_assert_eq(rd64(e + 8), wake);
			wakes++;
			break;
		default:
			cr_assert_fail("unexpected MADT entry type %u", e[0]);
		}
		e += e[1];
	}
	cr_assert_eq(e, end);
	cr_assert_eq(lapic + x2apic, n, "one entry per vCPU");
	cr_assert_eq(lapic, n < 255 ? n : 255);
	cr_assert_eq(ioapic, 1);
	cr_assert_eq(wakes, wake ? 1 : 0, "one wakeup entry iff asked");
	free((void *)cfg.devs);
}

static void check_madt(unsigned n)
{
	check_madt_wake(n, 0);
}

/* Over hosts: the multiprocessor wakeup entry, exact bytes, last. */
Test(acpi, madt_mp_wakeup_entry)
{
	static const uint8_t want[16] = {0x10, 16, 0, 0, 0, 0, 0, 0,
					 0x00, 0x00, 0xb0, 0xfe, 0, 0, 0, 0};
	struct acpi_config cfg = mkcfg(4, 1);
	struct tables t;
	uint32_t len, plain;

	check_madt_wake(1, ACPI_MP_WAKE_BASE);
	check_madt_wake(4, ACPI_MP_WAKE_BASE);
	check_madt_wake(300, ACPI_MP_WAKE_BASE);
	t = build(&cfg, BIG);
	plain = rd32(t.madt + 4);
	free((void *)cfg.devs);
	cfg = mkcfg(4, 1);
	cfg.mp_wake_gpa = ACPI_MP_WAKE_BASE;
	t = build(&cfg, BIG);
	len = rd32(t.madt + 4);
	cr_assert_eq(len, plain + 16);
	cr_assert_eq(memcmp(t.madt + len - 16, want, 16), 0,
		     "entry bytes differ");
	free((void *)cfg.devs);
}

Test(acpi, madt_mp_wakeup_rejects_bad_mailbox)
{
	struct acpi_config c = {.nr_vcpus = 2, .ioapic_base = IOAPIC_BASE};
	uint64_t r;

	c.mp_wake_gpa = ACPI_MP_WAKE_BASE + 8;
	cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, &c, &r), -1, "unaligned");
	c.mp_wake_gpa = 1ULL << 52;
	cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, &c, &r), -1, "past 2^52");
	c.mp_wake_gpa = (1ULL << 52) - 4096;
	cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, &c, &r), 0);
}

Test(acpi, madt_1)
{
	check_madt(1);
}
Test(acpi, madt_2)
{
	check_madt(2);
}
Test(acpi, madt_4)
{
	check_madt(4);
}
Test(acpi, madt_64)
{
	check_madt(64);
}
Test(acpi, madt_254_255_256)
{
	check_madt(254);
	check_madt(255);
	check_madt(256);
}
Test(acpi, madt_300_uses_x2apic)
{
	check_madt(300);
}

Test(acpi, dsdt_devices_and_s5)
{
	static const unsigned counts[] = {0, 1, 3, 100, 1000};

	for (unsigned i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		struct acpi_config cfg = mkcfg(4, counts[i]);
		struct tables t = build(&cfg, BIG);

		check_dsdt(&cfg, t.dsdt);
		free((void *)cfg.devs);
	}
}

Test(acpi, dsdt_pkglength_widths)
{
	/* 4096 devices: the \_SB_ scope needs a 3-byte PkgLength, devices
	 * 1 byte; 700 needs 2 bytes. The checker insists on minimal forms. */
	struct acpi_config cfg = mkcfg(1, ACPI_MAX_DEVS);
	struct tables t = build(&cfg, BIG);

	check_dsdt(&cfg, t.dsdt);
	free((void *)cfg.devs);
	cfg = mkcfg(1, 700);
	t = build(&cfg, BIG);
	check_dsdt(&cfg, t.dsdt);
	free((void *)cfg.devs);
}

Test(acpi, too_small_buffer)
{
	struct acpi_config cfg = mkcfg(8, 4);
	struct tables t = build(&cfg, BUF_MAX);
	size_t need = t.end, len;
	uint64_t rsdp = 0x1234;

	static uint8_t pattern[BUF_MAX];

	memset(pattern, 0x5a, need);
	for (len = 0; len < need; len++) {
		memcpy(buf, pattern, need);
		cr_assert_eq(acpi__build(buf, GPA, len, &cfg, &rsdp), -1,
			     "len %zu < %zu accepted", len, need);
		cr_assert_eq(memcmp(buf, pattern, need), 0,
			     "wrote into buf with len %zu", len);
	}
	cr_assert_eq(rsdp, 0x1234, "rsdp_gpa untouched on failure");
	cr_assert_eq(acpi__build(buf, GPA, need, &cfg, &rsdp), 0);
	free((void *)cfg.devs);
}

Test(acpi, deterministic)
{
	static uint8_t a[BUF_MAX];
	struct acpi_config cfg = mkcfg(300, 17);
	uint64_t r1, r2;

	memset(buf, 0x00, BUF_MAX);
	memset(a, 0xff, BUF_MAX);
	cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, &cfg, &r1), 0);
	cr_assert_eq(acpi__build(a, GPA, BUF_MAX, &cfg, &r2), 0);
	cr_assert_eq(r1, r2);
	cr_assert_eq(memcmp(a, buf, parse(r1, BUF_MAX).end), 0);
	free((void *)cfg.devs);
}

Test(acpi, rejects_what_it_cannot_express)
{
	struct acpi_mmio_dev d = {"LNRO0005", 0xD0000000, 0x200, 5, false, false};
	struct acpi_config ok = {.nr_vcpus = 1, .ioapic_base = IOAPIC_BASE,
				 .nr_devs = 1, .devs = &d},
			   c;
	uint64_t r;
	static const char *bad_hid[] = {NULL,	     "",	 "LNRO",
					"LNRO00050", "lnro0005", "LNRO 005"};

	cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, &ok, &r), 0);
	cr_assert_eq(acpi__build(NULL, GPA, BUF_MAX, &ok, &r), -1);
	cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, NULL, &r), -1);
	cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, &ok, NULL), -1);
	c = ok;
	c.nr_vcpus = 0;
	cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, &c, &r), -1);
	c = ok;
	c.ioapic_id = 256;
	cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, &c, &r), -1);
	c = ok;
	c.ioapic_base = 1ULL << 32;
	cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, &c, &r), -1);
	c = ok;
	c.devs = NULL;
	cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, &c, &r), -1);
	c = ok;
	c.nr_devs = ACPI_MAX_DEVS + 1;
	cr_assert_eq(acpi__build(buf, GPA, BIG, &c, &r), -1);
	for (unsigned i = 0; i < sizeof(bad_hid) / sizeof(*bad_hid); i++) {
		struct acpi_mmio_dev b = d;
		c = ok;
		b.hid = bad_hid[i];
		c.devs = &b;
		cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, &c, &r), -1,
			     "HID %s", bad_hid[i] ? bad_hid[i] : "NULL");
	}
	{
		struct acpi_mmio_dev b = d;
		c = ok;
		c.devs = &b;
		b.size = 0;
		cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, &c, &r), -1);
		b.size = 0x1000;
		b.base = 0xFFFFF000;
		cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, &c, &r), 0);
		b.base = 0xFFFFF001;
		cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, &c, &r), -1);
		b.base = ~0ULL;
		cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, &c, &r), -1);
	}
}

/* -------- vmgenid: \_SB_.VGEN and the GED -------- */

/* mkcfg's devices take GSIs 5..23 once there are 19; below that the GED
 * gets the pin the VMM uses. */
static struct acpi_config mkcfg_vg(unsigned vcpus, unsigned ndevs,
				   uint64_t gpa)
{
	struct acpi_config c = mkcfg(vcpus, ndevs);

	c.vmgenid_gpa = gpa;
	c.ged_gsi = ndevs < 19 ? VMGENID_GSI : 3;
	return c;
}

Test(acpi, vmgenid_devices_only_when_configured)
{
	static const unsigned counts[] = {0, 1, 3, 100};

	for (unsigned i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		struct acpi_config cfg = mkcfg_vg(2, counts[i], 0);
		struct tables t = build(&cfg, BIG);
		uint32_t dlen = rd32(t.dsdt + 4);

		check_dsdt(&cfg, t.dsdt);
		cr_assert_null(memmem(t.dsdt, dlen, "VGEN", 4));
		cr_assert_null(memmem(t.dsdt, dlen, "GED0", 4));
		/* ged_gsi means nothing without the device */
		cfg.ged_gsi = 1000;
		t = build(&cfg, BIG);
		cr_assert_eq(rd32(t.dsdt + 4), dlen);

		cfg.vmgenid_gpa = MEM_VMGENID;
		cfg.ged_gsi = counts[i] < 19 ? VMGENID_GSI : 3;
		t = build(&cfg, BIG);
		check_dsdt(&cfg, t.dsdt);
		free((void *)cfg.devs);
	}
}

Test(acpi, vmgenid_addr_encodes_address)
{
	/* Name (ADDR, Package (0x02) { 0x0009FF00, Zero }) as iasl emits it:
	 * PkgLength 8, two elements, DWordConst, ZeroOp. */
	static const uint8_t want[] = {'A',  'D',  'D',	 'R',  0x12, 0x08,
				       0x02, 0x0c, 0x00, 0xff, 0x09, 0x00,
				       0x00};
	static const uint64_t gpas[] = {0x10,	       0x9ff00,	    0xfffffff0,
					0x100000000ULL, 0x123456789a0ULL,
					(1ULL << 52) - 16};
	struct acpi_config cfg = mkcfg_vg(1, 1, MEM_VMGENID);
	struct tables t = build(&cfg, BUF_MAX);

	cr_assert_eq(MEM_VMGENID, 0x9ff00);
	cr_assert_not_null(memmem(t.dsdt, rd32(t.dsdt + 4), want,
				  sizeof(want)));
	for (unsigned i = 0; i < sizeof(gpas) / sizeof(*gpas); i++) {
		cfg.vmgenid_gpa = gpas[i];
		t = build(&cfg, BUF_MAX);
		check_dsdt(&cfg, t.dsdt); /* ADDR = {gpa & 0xffffffff, gpa >> 32} */
	}
	free((void *)cfg.devs);
}

Test(acpi, vmgenid_rejects_what_it_cannot_express)
{
	struct acpi_mmio_dev d = {"LNRO0005", 0xD0000000, 0x200, 5, false, false};
	struct acpi_config ok = {.nr_vcpus = 1,
				 .ioapic_base = IOAPIC_BASE,
				 .nr_devs = 1,
				 .devs = &d,
				 .vmgenid_gpa = MEM_VMGENID,
				 .ged_gsi = VMGENID_GSI},
			   c;
	static uint8_t pattern[BUF_MAX];
	uint64_t r = 0x1234, r2;
	static const uint64_t bad_gpa[] = {
	    MEM_VMGENID + 8,  MEM_VMGENID + 1,	1ULL << 52,
	    ~0ULL & ~15ULL,   GPA,		GPA + 0x40,
	    GPA - 8 /* unaligned, then 8 bytes into the RSDP */};

	memset(pattern, 0x5a, BUF_MAX);
	memcpy(buf, pattern, BUF_MAX);
	cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, &ok, &r2), 0);
	for (unsigned i = 0; i < sizeof(bad_gpa) / sizeof(*bad_gpa); i++) {
		c = ok;
		c.vmgenid_gpa = bad_gpa[i];
		memcpy(buf, pattern, BUF_MAX);
		cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, &c, &r), -1,
			     "vmgenid_gpa %#llx accepted",
			     (unsigned long long)bad_gpa[i]);
		cr_assert_eq(memcmp(buf, pattern, BUF_MAX), 0);
	}
	/* just below the tables, and just past them */
	c = ok;
	c.vmgenid_gpa = GPA - 16;
	cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, &c, &r), 0);
	c.vmgenid_gpa = (GPA + parse(r, BUF_MAX).end + 15) & ~15ULL;
	cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, &c, &r), 0);
	c.vmgenid_gpa -= 16;
	cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, &c, &r), -1,
		     "ID overlapping the DSDT's end");
	/* the GED's GSI: an IOAPIC pin, and not a device's */
	c = ok;
	c.ged_gsi = 24;
	cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, &c, &r), -1);
	c.ged_gsi = d.gsi;
	cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, &c, &r), -1,
		     "GED sharing an Exclusive interrupt");
	c.ged_gsi = 0;
	cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, &c, &r), 0);
	c.ged_gsi = 23;
	cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, &c, &r), 0);
}

Test(acpi, vmgenid_deterministic_and_sized)
{
	static uint8_t a[BUF_MAX];
	struct acpi_config cfg = mkcfg_vg(4, 2, MEM_VMGENID);
	uint64_t r1, r2;
	size_t with, without;

	memset(buf, 0x00, BUF_MAX);
	memset(a, 0xff, BUF_MAX);
	cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, &cfg, &r1), 0);
	cr_assert_eq(acpi__build(a, GPA, BUF_MAX, &cfg, &r2), 0);
	cr_assert_eq(r1, r2);
	with = parse(r1, BUF_MAX).end;
	cr_assert_eq(memcmp(a, buf, with), 0);
	cfg.vmgenid_gpa = 0;
	cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, &cfg, &r1), 0);
	without = parse(r1, BUF_MAX).end;
	/* docs/acpi.md gives the cost: VGEN 79 bytes, GED0 75 */
	cr_assert_eq(with - without, 79 + 75, "%zu", with - without);
	free((void *)cfg.devs);
}

Test(vmgenid, generate_is_random_v4)
{
	uint8_t a[VMGENID_SIZE], b[VMGENID_SIZE];
	unsigned seen_hi = 0, seen_lo = 0;

	for (int i = 0; i < 64; i++) {
		cr_assert_eq(vmgenid__generate(a), 0);
		cr_assert_eq(vmgenid__generate(b), 0);
		cr_assert_neq(memcmp(a, b, VMGENID_SIZE), 0);
		cr_assert_eq(a[7] >> 4, 4, "version 4 (Data3, little-endian)");
		cr_assert_eq(a[8] >> 6, 2, "RFC 4122 variant");
		seen_hi |= a[0];
		seen_lo |= a[15];
	}
	cr_assert_eq(seen_hi, 0xff, "byte 0 never varies");
	cr_assert_eq(seen_lo, 0xff, "byte 15 never varies");
}

Test(vmgenid, set_and_get_at_mem_vmgenid)
{
	struct mem m, none = {0};
	uint8_t id[VMGENID_SIZE], back[VMGENID_SIZE];

	cr_assert_eq(mem__init(&m, 2 << 20), 0);
	cr_assert_eq(vmgenid__generate(id), 0);
	cr_assert_eq(vmgenid__set(&m, id), 0);
	cr_assert_eq(memcmp(m.hva + MEM_VMGENID, id, VMGENID_SIZE), 0);
	cr_assert_eq(m.hva[MEM_VMGENID - 1], 0, "wrote before the ID");
	cr_assert_eq(m.hva[MEM_VMGENID + VMGENID_SIZE], 0,
		     "wrote after the ID");
	cr_assert_eq(vmgenid__get(&m, back), 0);
	cr_assert_eq(memcmp(back, id, VMGENID_SIZE), 0);
	mem__exit(&m);
	cr_assert_eq(vmgenid__set(&none, id), -EFAULT);
	cr_assert_eq(vmgenid__get(&none, back), -EFAULT);
}

/* -------- SRAT and SLIT -------- */

/* A VM's NUMA config as vm.c makes it: the DSM's home ranges, one node per
 * host, vCPUs on their --vcpu-map host. nr_nodes 0 when there are no
 * ranges (one host, interleave). */
struct numa {
	struct dsm_config dc;
	struct dsm_range d[DSM_MAX_RANGES];
	struct acpi_mem_range r[DSM_MAX_RANGES];
	uint8_t map[512];
	struct acpi_config cfg;
};

static void mknuma(struct numa *n, unsigned hosts, uint64_t size,
		   bool interleave, unsigned vcpus)
{
	unsigned i, k;

	memset(n, 0, sizeof(*n));
	n->dc = (struct dsm_config){
	    .nhosts = hosts,
	    .lowmem = size < MEM_HOLE_START ? size : MEM_HOLE_START,
	    .size = size,
	    .interleave = interleave};
	n->cfg = mkcfg(vcpus, 1);
	for (i = 0; i < vcpus; i++)
		n->map[i] = i % hosts;
	k = dsm__home_ranges(&n->dc, n->d);
	for (i = 0; i < k; i++)
		n->r[i] = (struct acpi_mem_range){.base = n->d[i].gpa,
						  .len = n->d[i].len,
						  .node = n->d[i].home};
	if (k) {
		n->cfg.nr_nodes = hosts;
		n->cfg.vcpu_node = n->map;
		n->cfg.nr_mem_ranges = k;
		n->cfg.mem_ranges = n->r;
	}
}

static bool is_ram(const struct dsm_config *c, uint64_t gpa)
{
	return gpa < c->lowmem ||
	       (gpa >= MEM_4G && gpa - MEM_4G < c->size - c->lowmem);
}

/*
 * Parse the SRAT and SLIT as Linux 6.1 would (arch/x86/mm/srat.c,
 * drivers/acpi/numa/srat.c) and check them against the config and against
 * the DSM's own homes, page by page on a live engine.
 */
static void check_numa(struct numa *n)
{
	const struct acpi_config *cfg = &n->cfg;
	struct tables t = build(cfg, BIG);
	const uint8_t *e, *end;
	unsigned lapic = 0, x2apic = 0, mems = 0, i, j, nn = cfg->nr_nodes;
	uint64_t prev_end = 0, covered = 0;

	cr_assert_not_null(t.srat);
	cr_assert_not_null(t.slit);
	cr_assert_eq(t.srat[8], 3, "SRAT revision 3: 32-bit domains");
	cr_assert_eq(rd32(t.srat + 36), 1, "reserved field is 1");
	cr_assert_eq(rd64(t.srat + 40), 0);
	e = t.srat + 48;
	end = t.srat + rd32(t.srat + 4);
	while (e < end) {
		cr_assert_geq(e[1], 2);
		cr_assert_leq(e + e[1], end, "entry overruns the SRAT");
		switch (e[0]) {
		case 0: {
			unsigned pxm = e[2] | e[9] << 8 | e[10] << 16 |
				       (unsigned)e[11] << 24;

			cr_assert_eq(e[1], 16, "Linux wants exactly 16");
			cr_assert_eq(mems, 0, "CPUs first");
			cr_assert_eq(e[3], lapic, "APIC ids in MADT order");
			cr_assert_lt(e[3], 255);
			cr_assert_eq(rd32(e + 4), 1, "enabled");
			cr_assert_eq(e[8], 0, "SAPIC EID");
			cr_assert_eq(rd32(e + 12), 0, "clock domain");
			cr_assert_eq(pxm, n->map[lapic], "vCPU %u's node",
				     lapic);
			lapic++;
			break;
		}
		case 2:
			cr_assert_eq(e[1], 24);
			cr_assert_eq(rd16(e + 2), 0);
			cr_assert_eq(rd32(e + 8), 255 + x2apic,
				     "x2APIC ids as the MADT's");
			cr_assert_eq(rd32(e + 4), n->map[255 + x2apic]);
			cr_assert_eq(rd32(e + 12), 1, "enabled");
			cr_assert_eq(rd32(e + 16) | rd32(e + 20), 0);
			x2apic++;
			break;
		case 1: {
			uint64_t base = rd64(e + 8), len = rd64(e + 16);
			unsigned pxm = rd32(e + 2);

			cr_assert_eq(e[1], 40);
			cr_assert_eq(rd16(e + 6), 0);
			cr_assert_eq(rd32(e + 24), 0);
			cr_assert_eq(rd32(e + 28), 1,
				     "enabled, not hot-pluggable");
			cr_assert_eq(rd64(e + 32), 0);
			cr_assert_gt(len, 0);
			cr_assert_geq(base, prev_end, "ranges in order, apart");
			cr_assert_lt(pxm, nn);
			/* RAM only: never the 32-bit hole or past the end */
			cr_assert(is_ram(&n->dc, base) &&
				      is_ram(&n->dc, base + len - 1),
				  "range %#llx+%#llx is not all RAM",
				  (unsigned long long)base,
				  (unsigned long long)len);
			cr_assert(base + len <= n->dc.lowmem || base >= MEM_4G,
				  "range across the hole");
			prev_end = base + len;
			covered += len;
			mems++;
			break;
		}
		default:
			cr_assert_fail("unexpected SRAT entry type %u", e[0]);
		}
		e += e[1];
	}
	cr_assert_eq(e, end);
	cr_assert_eq(lapic + x2apic, cfg->nr_vcpus, "one entry per vCPU");
	cr_assert_eq(lapic, cfg->nr_vcpus < 255 ? cfg->nr_vcpus : 255);
	cr_assert_eq(mems, cfg->nr_mem_ranges);
	/* Linux drops NUMA when the nodes miss e820 RAM (a MiB or more). */
	cr_assert_eq(covered, n->dc.size, "every RAM byte in a node");

	/* The SLIT: n x n, 10 on the diagonal, above 10 elsewhere (Linux's
	 * slit_valid). */
	cr_assert_eq(t.slit[8], 1);
	cr_assert_eq(rd64(t.slit + 36), nn);
	cr_assert_eq(rd32(t.slit + 4), 44 + nn * nn);
	for (i = 0; i < nn; i++)
		for (j = 0; j < nn; j++)
			cr_assert_eq(t.slit[44 + i * nn + j],
				     i == j ? ACPI_SLIT_LOCAL
					    : ACPI_SLIT_REMOTE);

	/* The same homes as the DSM's: every page of every range, and the
	 * pages either side of each range's ends. */
	struct dsm d;
	struct dsm_ops ops = {0};

	cr_assert_eq(dsm__init(&d, &n->dc, &ops), 0);
	for (e = t.srat + 48; e < end; e += e[1]) {
		uint64_t base = rd64(e + 8), len = rd64(e + 16), g;

		if (e[0] != 1)
			continue;
		for (g = base; g < base + len; g += 4096)
			cr_assert_eq(dsm__home(&d, g), rd32(e + 2),
				     "page %#llx: SRAT says node %u, the DSM "
				     "home %u",
				     (unsigned long long)g, rd32(e + 2),
				     dsm__home(&d, g));
	}
	dsm__exit(&d);
	free((void *)cfg->devs);
}

Test(acpi, numa_2_hosts)
{
	struct numa n;

	mknuma(&n, 2, 1ULL << 30, false, 4);
	cr_assert_eq(n.cfg.nr_mem_ranges, 2);
	cr_assert_eq(n.r[0].base, 0);
	cr_assert_eq(n.r[0].len, 512ULL << 20);
	cr_assert_eq(n.r[1].base, 512ULL << 20);
	cr_assert_eq(n.r[1].node, 1);
	check_numa(&n);
}

/* 4 GiB + 20 KiB over 2 hosts: host 1's RAM straddles the hole, so it has
 * two ranges, below 3 GiB and from 4 GiB. */
Test(acpi, numa_2_hosts_split_at_hole)
{
	struct numa n;

	mknuma(&n, 2, (4ULL << 30) + 5 * 4096, false, 3);
	cr_assert_eq(n.cfg.nr_mem_ranges, 3);
	cr_assert_eq(n.r[1].node, 1);
	cr_assert_eq(n.r[1].base + n.r[1].len, MEM_HOLE_START);
	cr_assert_eq(n.r[2].node, 1);
	cr_assert_eq(n.r[2].base, MEM_4G);
	check_numa(&n);
}

/* Odd sizes over 3 hosts: pages that do not divide by 3, the hole inside
 * host 2's run, a RAM end that is not a MiB boundary. */
Test(acpi, numa_3_hosts_odd_sizes)
{
	static const uint64_t sizes[] = {
	    (1ULL << 30) + 4096,      (768ULL << 20) - 4096,
	    (3ULL << 30) + 7 * 4096,  (5ULL << 30) + 3 * 4096,
	    (2ULL << 30) + 11 * 4096,
	};
	struct numa n;

	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		mknuma(&n, 3, sizes[i], false, 5);
		check_numa(&n);
	}
}

/* Guest RAM too small for every host to be home to a page: the last host
 * is a node with CPUs and no memory, which Linux takes. */
Test(acpi, numa_host_without_ram)
{
	struct numa n;

	mknuma(&n, 3, 4 * 4096, false, 3);
	cr_assert_eq(n.cfg.nr_mem_ranges, 2);
	check_numa(&n);
}

/* Past APIC id 254 the CPUs are x2APIC affinity entries, as in the MADT. */
Test(acpi, numa_x2apic_entries)
{
	struct numa n;

	mknuma(&n, 3, 2ULL << 30, false, 300);
	check_numa(&n);
}

/* One host, or interleaved homes: nothing to say, no SRAT, no SLIT. */
Test(acpi, numa_none_for_one_host_or_interleave)
{
	struct numa n;
	struct tables t;

	mknuma(&n, 1, 1ULL << 30, false, 2);
	cr_assert_eq(n.cfg.nr_nodes, 0);
	t = build(&n.cfg, BIG);
	cr_assert_null(t.srat);
	cr_assert_eq(rd32(t.xsdt + 4), 36 + 2 * 8);
	cr_assert_null(memmem(buf, t.end, "SRAT", 4));
	cr_assert_null(memmem(buf, t.end, "SLIT", 4));
	free((void *)n.cfg.devs);

	mknuma(&n, 2, 1ULL << 30, true, 2);
	cr_assert_eq(n.cfg.nr_nodes, 0);
	t = build(&n.cfg, BIG);
	cr_assert_null(t.srat);
	cr_assert_null(t.slit);
	free((void *)n.cfg.devs);
}

Test(acpi, numa_rejects_what_it_cannot_express)
{
	static uint8_t map[4] = {0, 1, 0, 1};
	struct acpi_mem_range r[2] = {{0, 1 << 20, 0}, {1 << 20, 1 << 20, 1}};
	struct acpi_config ok = mkcfg(4, 1), c;
	uint64_t rsdp = 0;

	ok.nr_nodes = 2;
	ok.vcpu_node = map;
	ok.nr_mem_ranges = 2;
	ok.mem_ranges = r;
	cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, &ok, &rsdp), 0);
	memset(buf, 0x5a, BUF_MAX);

#define REJECT(what)                                                           \
	do {                                                                   \
		uint64_t g = 7;                                                \
		cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, &c, &g), -1,       \
			     what);                                            \
		cr_assert_eq(g, 7);                                            \
		cr_assert_eq(buf[0], 0x5a, what ": buffer written");           \
	} while (0)

	c = ok;
	c.nr_nodes = 1;
	REJECT("a vCPU in node 1 of 1");
	c = ok;
	c.nr_nodes = ACPI_MAX_NODES + 1;
	REJECT("too many nodes");
	c = ok;
	c.vcpu_node = NULL;
	REJECT("no vCPU nodes");
	c = ok;
	c.mem_ranges = NULL;
	REJECT("no ranges");
	struct acpi_mem_range bad[2];
	memcpy(bad, r, sizeof(bad));
	bad[1].base = (1 << 20) - 4096;
	c = ok;
	c.mem_ranges = bad;
	REJECT("overlapping ranges");
	memcpy(bad, r, sizeof(bad));
	bad[0].base = 2 << 20;
	c.mem_ranges = bad;
	REJECT("ranges out of order");
	memcpy(bad, r, sizeof(bad));
	bad[1].len = 100;
	REJECT("unaligned range");
	memcpy(bad, r, sizeof(bad));
	bad[1].len = 0;
	REJECT("empty range");
	memcpy(bad, r, sizeof(bad));
	bad[1].node = 2;
	REJECT("range in no node");
	memcpy(bad, r, sizeof(bad));
	bad[1].base = 1ULL << 52;
	REJECT("range beyond 2^52");
#undef REJECT
	free((void *)ok.devs);
}

/* -------- ACPICA, when installed -------- */

static int have(const char *tool)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	return system(cmd) == 0;
}

static void save(const char *dir, const char *file, const uint8_t *t)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(t, 1, rd32(t + 4), f), rd32(t + 4));
	fclose(f);
}

static char *slurp(const char *dir, const char *file)
{
	static char text[1 << 20];
	char path[256];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "r");
	cr_assert_not_null(f, "%s missing", path);
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = 0;
	fclose(f);
	return text;
}

static void save_all(const char *dir, struct acpi_config *cfg)
{
	struct tables t;

	t = build(cfg, BUF_MAX);
	save(dir, "facp.dat", t.fadt);
	save(dir, "apic.dat", t.madt);
	save(dir, "dsdt.dat", t.dsdt);
}

static void run(const char *dir, const char *cmd)
{
	char line[1024];

	snprintf(line, sizeof(line), "cd %s && %s", dir, cmd);
	cr_assert_eq(system(line), 0, "failed: %s", line);
}

static char tmpdir[] = "/tmp/slos-acpi-XXXXXX";

/* .fini runs after a failed assertion too, so no directory is left. */
static void rm_tmpdir(void)
{
	char line[64];

	if (strstr(tmpdir, "XXXXXX"))
		return;
	snprintf(line, sizeof(line), "rm -rf %s", tmpdir);
	if (system(line))
		fprintf(stderr, "could not remove %s\n", tmpdir);
}
Test(acpi, iasl_disassembles, .fini = rm_tmpdir)
{
	const char *dir = tmpdir;
	/* 200 devices: \_SB_'s PkgLength takes 3 bytes */
	struct acpi_config cfg = mkcfg(2, 200);
	const char *dsl;

	if (!have("iasl")) {
		cr_skip_test(
		    "iasl not installed (apt-get install acpica-tools)");
		return;
	}
	cr_assert_not_null(mkdtemp(tmpdir));
	save_all(dir, &cfg);
	run(dir, "iasl -d dsdt.dat facp.dat apic.dat >log 2>&1");
	dsl = slurp(dir, "dsdt.dsl");
	cr_assert_not_null(strstr(dsl, "Name (_S5, Package (0x04)"), "%s", dsl);
	cr_assert_not_null(strstr(dsl, "Device (D001)"), "%s", dsl);
	cr_assert_not_null(strstr(dsl, "Name (_HID, \"LNRO0005\")"), "%s", dsl);
	cr_assert_not_null(strstr(dsl, "Memory32Fixed (ReadWrite,\n"
				       "                    0xD0001000,"),
			   "%s", dsl);
	cr_assert_not_null(strstr(dsl, "Interrupt (ResourceConsumer, Level, "
				       "ActiveHigh, Exclusive, ,, )"),
			   "%s", dsl);
	cr_assert_not_null(strstr(dsl, "Interrupt (ResourceConsumer, Edge, "
				       "ActiveHigh, Exclusive, ,, )"),
			   "%s", dsl);
	dsl = slurp(dir, "facp.dsl");
	cr_assert_not_null(strstr(dsl, "Hardware Reduced (V5) : 1"), "%s", dsl);
	cr_assert_null(strstr(dsl, "Incorrect checksum"), "%s", dsl);
	dsl = slurp(dir, "apic.dsl");
	cr_assert_null(strstr(dsl, "Incorrect checksum"), "%s", dsl);
	/* Recompiled without iasl's optimizations (which drop the root
	 * prefix of \_SB_), the AML after the header is ours byte for byte:
	 * same opcodes, same minimal PkgLengths, same integer widths. */
	run(dir, "iasl -oa -p re dsdt.dsl >>log 2>&1 && "
		 "tail -c +37 dsdt.dat >a && tail -c +37 re.aml >b && cmp a b");
	free((void *)cfg.devs);
}

/* ACPICA's reading of the SRAT and SLIT: no complaint, the fields where
 * it expects them. */
Test(acpi, iasl_disassembles_srat_slit, .fini = rm_tmpdir)
{
	const char *dir = tmpdir;
	struct numa n;
	struct tables t;
	const char *dsl;

	if (!have("iasl")) {
		cr_skip_test(
		    "iasl not installed (apt-get install acpica-tools)");
		return;
	}
	cr_assert_not_null(mkdtemp(tmpdir));
	mknuma(&n, 2, (4ULL << 30) + 5 * 4096, false, 3);
	t = build(&n.cfg, BIG);
	save(dir, "srat.dat", t.srat);
	save(dir, "slit.dat", t.slit);
	run(dir, "iasl -d srat.dat slit.dat >log 2>&1");
	dsl = slurp(dir, "srat.dsl");
	cr_assert_null(strstr(dsl, "Incorrect checksum"), "%s", dsl);
	cr_assert_null(strstr(dsl, "**** "), "%s", dsl);
	cr_assert_not_null(strstr(dsl, "Table Revision : 00000001"), "%s", dsl);
	cr_assert_not_null(strstr(dsl, "Proximity Domain Low(8) : 01"), "%s",
			   dsl);
	cr_assert_not_null(strstr(dsl, "Base Address : 0000000100000000"), "%s",
			   dsl);
	cr_assert_not_null(strstr(dsl, "Address Length : 0000000040005000"),
			   "%s", dsl);
	dsl = slurp(dir, "slit.dsl");
	cr_assert_null(strstr(dsl, "Incorrect checksum"), "%s", dsl);
	cr_assert_not_null(strstr(dsl, "Localities : 0000000000000002"), "%s",
			   dsl);
	cr_assert_not_null(strstr(dsl, "Locality   0 : 0A 28"), "%s", dsl);
	free((void *)n.cfg.devs);
}

Test(acpi, acpiexec_powers_off_through_pm_port, .fini = rm_tmpdir)
{
	const char *dir = tmpdir;
	char want[64];
	struct acpi_config cfg = mkcfg(2, 2);
	const char *out;

	if (!have("acpiexec")) {
		cr_skip_test("acpiexec not installed "
			     "(apt-get install acpica-tools)");
		return;
	}
	cr_assert_not_null(mkdtemp(tmpdir));
	save_all(dir, &cfg);
	/* -x: ACPICA's debug trace, which logs every register access; a few
	 * MB of it, so keep only the lines looked at. */
	run(dir, "timeout 20 acpiexec -x 0xffffffff -b "
		 "'evaluate \\_S5_; resources \\_SB.D001; sleep 5' "
		 "facp.dat dsdt.dat apic.dat 2>&1 | grep -E "
		 "'HwExtendedSleep|Wrote:|Triggering|Address :' >log");
	out = slurp(dir, "log");
	cr_assert_not_null(strstr(out, "HwExtendedSleep"),
			   "ACPICA did not take the HW-reduced sleep path");
	snprintf(want, sizeof(want), "Wrote: %016X width  8   to %016X",
		 ACPI_SLP_EN | ACPI_SLP_TYP_S5 << ACPI_SLP_TYP_SHIFT,
		 ACPI_PM_PORT);
	cr_assert_not_null(strstr(out, want), "no \"%s\" in the trace", want);
	cr_assert_not_null(strstr(out, "Triggering : Level"));
	cr_assert_not_null(strstr(out, "Address : D0001000"));
	free((void *)cfg.devs);
}

Test(acpi, io_port_device_for_com1)
{
	struct acpi_mmio_dev d = { .hid = "PNP0501", .base = 0x3f8, .size = 8,
				   .gsi = 4, .edge = true, .io = true };
	struct acpi_config c = { .nr_vcpus = 1, .ioapic_base = IOAPIC_BASE,
				.nr_devs = 1, .devs = &d };
	static const uint8_t io_desc[] = { 0x47, 1, 0xf8, 3, 0xf8, 3, 1, 8 };
	uint64_t r;

	cr_assert_eq(acpi__build(buf, GPA, BUF_MAX, &c, &r), 0);
	cr_expect(memmem(buf, BUF_MAX, io_desc, sizeof(io_desc)),
		  "no IO (Decode16, 0x3f8, 0x3f8, 1, 8) descriptor");
	cr_expect(memmem(buf, BUF_MAX, "PNP0501", 7));
	d.base = 0xfffc; /* runs past the 64 KiB port space */
	cr_expect_eq(acpi__build(buf, GPA, BUF_MAX, &c, &r), -1);
}

Test(acpi, iasl_disassembles_vmgenid, .fini = rm_tmpdir)
{
	const char *dir = tmpdir;
	struct acpi_config cfg = mkcfg_vg(2, 2, MEM_VMGENID);
	const char *dsl, *log;

	if (!have("iasl")) {
		cr_skip_test(
		    "iasl not installed (apt-get install acpica-tools)");
		return;
	}
	cr_assert_not_null(mkdtemp(tmpdir));
	save_all(dir, &cfg);
	run(dir, "iasl -d dsdt.dat >log 2>&1");
	log = slurp(dir, "log");
	cr_assert_null(strstr(log, "Error"), "%s", log);
	cr_assert_null(strstr(log, "Warning"), "%s", log);
	dsl = slurp(dir, "dsdt.dsl");
	cr_assert_null(strstr(dsl, "External"), "unresolved names: %s", dsl);
	cr_assert_not_null(strstr(dsl, "Device (VGEN)"), "%s", dsl);
	cr_assert_not_null(strstr(dsl, "Name (_HID, \"" ACPI_VMGENID_HID "\")"),
			   "%s", dsl);
	cr_assert_not_null(strstr(dsl, "Name (_CID, \"VM_GEN_COUNTER\")"),
			   "%s", dsl);
	cr_assert_not_null(strstr(dsl, "Name (ADDR, Package (0x02)\n"
				       "            {\n"
				       "                0x0009FF00, \n"
				       "                Zero\n"),
			   "%s", dsl);
	cr_assert_not_null(strstr(dsl, "Device (GED0)"), "%s", dsl);
	cr_assert_not_null(strstr(dsl, "Name (_HID, \"ACPI0013\" /* Generic "
				       "Event Device */)"),
			   "%s", dsl);
	cr_assert_not_null(strstr(dsl, "Interrupt (ResourceConsumer, Edge, "
				       "ActiveHigh, Exclusive, ,, )\n"
				       "                {\n"
				       "                    0x00000017,"),
			   "%s", dsl);
	cr_assert_not_null(strstr(dsl, "Method (_EVT, 1, NotSerialized)"),
			   "%s", dsl);
	cr_assert_not_null(strstr(dsl, "If ((Arg0 == 0x17))"), "%s", dsl);
	cr_assert_not_null(strstr(dsl, "Notify (\\_SB.VGEN, 0x80)"), "%s", dsl);
	/* The compiler checks more than the disassembler (it refuses, for
	 * one, a _HID like "VMGENCTR"), and the AML must come back ours. */
	run(dir, "iasl -oa -p re dsdt.dsl >>log 2>&1 && "
		 "tail -c +37 dsdt.dat >a && tail -c +37 re.aml >b && cmp a b");
	log = slurp(dir, "log");
	cr_assert_not_null(strstr(log, "0 Errors, 0 Warnings, 0 Remarks"),
			   "%s", log);
	free((void *)cfg.devs);
}

Test(acpi, acpiexec_ged_notifies_vmgenid, .fini = rm_tmpdir)
{
	const char *dir = tmpdir;
	struct acpi_config cfg = mkcfg_vg(2, 2, 0x123456789a0ULL);
	const char *out, *p;

	if (!have("acpiexec")) {
		cr_skip_test("acpiexec not installed "
			     "(apt-get install acpica-tools)");
		return;
	}
	cr_assert_not_null(mkdtemp(tmpdir));
	save_all(dir, &cfg);
	/* A GSI that is not the GED's must notify nothing; then the GED's. */
	run(dir, "timeout 20 acpiexec -b "
		 "'evaluate \\_SB.VGEN.ADDR; evaluate \\_SB.VGEN._CID; "
		 "execute \\_SB.GED0._EVT 0x16; "
		 "evaluate \\_SB.VGEN._HID; "
		 "execute \\_SB.GED0._EVT 0x17' "
		 "facp.dat dsdt.dat apic.dat >log 2>&1");
	out = slurp(dir, "log");
	cr_assert_not_null(strstr(out, "[Integer] = 00000000456789A0"), "%s",
			   out);
	cr_assert_not_null(strstr(out, "[Integer] = 0000000000000123"), "%s",
			   out);
	cr_assert_not_null(strstr(out, "\"VM_GEN_COUNTER\""), "%s", out);
	p = strstr(out, "Received a Device Notify on [VGEN]");
	cr_assert_not_null(p, "no Notify: %s", out);
	cr_assert_not_null(strstr(p, "Value 0x80"), "%s", out);
	/* ... and only after the last command, the one with the GED's GSI */
	cr_assert_not_null(strstr(out, "Evaluating \\_SB.VGEN._HID"));
	cr_assert(p > strstr(out, "Evaluating \\_SB.VGEN._HID"),
		  "GSI 0x16 notified VGEN: %s", out);
	cr_assert_null(strstr(p + 1, "Received a Device Notify"),
		       "two Notifies: %s", out);
	free((void *)cfg.devs);
}
