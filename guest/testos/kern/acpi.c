// SPDX-License-Identifier: MIT
/*
 * Finds the CPUs: RSDP -> XSDT (or RSDT) -> MADT local-APIC entries. The
 * BSP becomes CPU 0, the other enabled APICs follow in MADT order. Any
 * problem leaves a single CPU and a message for ring 3 to print. A
 * multiprocessor wakeup entry names the mailbox APs start through.
 */
#include "kern.h"
#include "lib.h"

#define MADT_LAPIC	   0
#define MADT_LAPIC_ENABLED 1
#define SDT_HDR		   36

static uint8_t sum(const uint8_t *p, uint32_t len)
{
	uint8_t s = 0;

	while (len--)
		s += *p++;
	return s;
}

static const uint8_t *find_rsdp(uint64_t hint)
{
	if (hint && !memcmp((const void *)hint, "RSD PTR ", 8))
		return (const uint8_t *)hint;
	/* Legacy search of the BIOS area, 16-byte steps. */
	for (uint64_t a = 0xe0000; a < 0x100000; a += 16)
		if (*(const uint64_t *)a == 0x2052545020445352ULL)
			return (const uint8_t *)a;
	return 0;
}

static uint32_t rd32(const uint8_t *p)
{
	return *(const uint32_t *)p;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static const uint8_t *find_madt(const uint8_t *rsdp)
{
	const uint8_t *sdt;
	uint32_t esz;

	if (rsdp[15] >= 2 && rd64(rsdp + 24)) {
		sdt = (const uint8_t *)rd64(rsdp + 24);
		esz = 8;
	} else {
		sdt = (const uint8_t *)(uint64_t)rd32(rsdp + 16);
		esz = 4;
	}
	if (!sdt || sum(sdt, rd32(sdt + 4)))
		return 0;
	for (uint32_t off = SDT_HDR; off + esz <= rd32(sdt + 4); off += esz) {
		const uint8_t *t =
		    (const uint8_t *)(esz == 8 ? rd64(sdt + off)
					       : rd32(sdt + off));

		if (t && !memcmp(t, "APIC", 4))
			return sum(t, rd32(t + 4)) ? 0 : t;
	}
	return 0;
}

void acpi_find_cpus(uint64_t rsdp_hint)
{
	const uint8_t *rsdp = find_rsdp(rsdp_hint), *madt;
	uint32_t bsp = lapic_id(), n = 1;

	shared.cpu_apic[0] = bsp;
	shared.ncpus_madt = 1;
	if (!rsdp || sum(rsdp, 20)) {
		shared.boot_error = "no valid ACPI RSDP: running on CPU 0 only";
		return;
	}
	madt = find_madt(rsdp);
	if (!madt) {
		shared.boot_error = "no valid MADT: running on CPU 0 only";
		return;
	}
	shared.ncpus_madt = 0;
	for (uint32_t off = SDT_HDR + 8; off + 2 <= rd32(madt + 4);) {
		const uint8_t *e = madt + off;

		if (e[1] < 2)
			break;
		/* Linux's length check: the whole 16-byte entry. */
		if (e[0] == MADT_MP_WAKE && e[1] >= 16 &&
		    off + 16 <= rd32(madt + 4))
			shared.mp_wake = rd64(e + 8);
		if (e[0] == MADT_LAPIC && e[1] >= 8 &&
		    (rd32(e + 4) & MADT_LAPIC_ENABLED)) {
			shared.ncpus_madt++;
			if (e[3] != bsp && n < MAX_CPUS)
				shared.cpu_apic[n++] = e[3];
		}
		off += e[1];
	}
	if (shared.ncpus_madt > MAX_CPUS) {
		shared.boot_error = "more CPUs than MAX_CPUS: extra ones idle";
		shared.ncpus_madt = MAX_CPUS;
	}
}
