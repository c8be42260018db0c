// SPDX-License-Identifier: MIT
/*
 * Reads Linux's boot_params ("zero page") that the VMM filled: command
 * line, e820 map and the RSDP address. Copies go to `shared` so that ring
 * 3 does all parsing.
 */
#include "kern.h"

#define BP_ACPI_RSDP	 0x070
#define BP_EXT_CMDLINE	 0x0c8
#define BP_E820_ENTRIES	 0x1e8
#define BP_CMDLINE_PTR	 0x228
#define BP_E820_TABLE	 0x2d0
#define BP_E820_ENTRY_SZ 20

static inline uint32_t rd32(uint64_t a)
{
	return *(volatile uint32_t *)a;
}

void boot_params_read(uint64_t bp)
{
	uint64_t cmd = rd32(bp + BP_CMDLINE_PTR) |
		       (uint64_t)rd32(bp + BP_EXT_CMDLINE) << 32;
	uint32_t n = *(volatile uint8_t *)(bp + BP_E820_ENTRIES);
	uint64_t rsdp = rd32(bp + BP_ACPI_RSDP) |
			(uint64_t)rd32(bp + BP_ACPI_RSDP + 4) << 32;

	if (cmd) {
		const volatile char *s = (const char *)cmd;

		for (int i = 0; i < CMDLINE_MAX - 1 && s[i]; i++)
			shared.cmdline[i] = s[i];
	}
	if (n > E820_MAX)
		n = E820_MAX;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t e = bp + BP_E820_TABLE + i * BP_E820_ENTRY_SZ;

		shared.e820[i].addr = rd32(e) | (uint64_t)rd32(e + 4) << 32;
		shared.e820[i].size = rd32(e + 8) | (uint64_t)rd32(e + 12)
							<< 32;
		shared.e820[i].type = rd32(e + 16);
	}
	shared.e820_count = n;
	shared.image_end = (uint64_t)__user_end;
	acpi_find_cpus(rsdp);
}
