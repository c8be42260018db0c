// SPDX-License-Identifier: MIT
#include <stdio.h>
#include <string.h>

#include "vmm/acpi.h"
#include "vmm/sysdev.h"
#include "vmm/vm.h"

static void power_access(struct io_dev *d, uint64_t off, uint8_t *data,
			 unsigned size, bool write)
{
	struct vm *vm = d->priv;

	if (!write) {
		/* Sleep status: WAK_STS set, so a guest polling it moves on. */
		data[0] = 0x80;
		return;
	}
	if ((data[0] & ACPI_SLP_EN) &&
	    ((data[0] >> 2) & 7) == ACPI_SLP_TYP_S5)
		vm__stop(vm, VM_EXIT_OK, "guest powered off");
	else if (data[0] == ACPI_RESET_VALUE)
		vm__stop(vm, VM_EXIT_OK, "guest reset");
}

static void testexit_access(struct io_dev *d, uint64_t off, uint8_t *data,
			    unsigned size, bool write)
{
	char why[64];

	if (!write) {
		memset(data, 0, size);
		return;
	}
	snprintf(why, sizeof(why), "test-exit device: status %u", data[0]);
	vm__stop(d->priv, data[0], why);
}

static void kbd_access(struct io_dev *d, uint64_t off, uint8_t *data,
		       unsigned size, bool write)
{
	if (!write) {
		/* Status: output buffer empty, input buffer empty. */
		memset(data, 0, size);
		return;
	}
	if (off == 4 && data[0] == 0xfe)
		vm__stop(d->priv, VM_EXIT_OK, "guest reset (keyboard)");
}

static void port92_access(struct io_dev *d, uint64_t off, uint8_t *data,
			  unsigned size, bool write)
{
	if (!write)
		data[0] = 0x02; /* A20 on */
	else if (data[0] & 1)
		vm__stop(d->priv, VM_EXIT_OK, "guest reset (port 0x92)");
}

static void empty_access(struct io_dev *d, uint64_t off, uint8_t *data,
			 unsigned size, bool write)
{
	if (!write)
		memset(data, 0xff, size);
}

static void echo_access(struct io_dev *d, uint64_t off, uint8_t *data,
			unsigned size, bool write)
{
	if (!write)
		memset(data, 0, size);
}

#define DEV(n, b, l, fn) { .name = n, .base = b, .len = l, .access = fn }

static struct io_dev devs[] = {
	DEV("acpi-pm", ACPI_PM_PORT, 1, power_access),
	DEV("test-exit", TESTEXIT_PORT, 4, testexit_access),
	DEV("echo", ECHO_PORT, 4, echo_access),
	DEV("kbd", 0x60, 5, kbd_access),
	DEV("port92", 0x92, 1, port92_access),
	DEV("pic1", 0x20, 2, empty_access),
	DEV("pic2", 0xa0, 2, empty_access),
	DEV("pit", 0x40, 4, empty_access),
	DEV("post", 0x80, 1, empty_access),
	DEV("pci-conf", 0xcf8, 8, empty_access),
};

int sysdev__init(struct vm *vm)
{
	/* One VM per process: the static table's priv is that VM. */
	for (size_t i = 0; i < sizeof(devs) / sizeof(devs[0]); i++) {
		devs[i].priv = vm;
		int r = io__register(&vm->pio, &devs[i]);
		if (r)
			return r;
	}
	return 0;
}
