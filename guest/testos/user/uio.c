// SPDX-License-Identifier: MIT
/*
 * Port I/O and serial output at ring 3. IOPL=3 and the TSS I/O bitmap let
 * `in`/`out` run directly (each is a VM exit, but no emulated ring-0
 * code); where the hypervisor refuses them anyway (the probe took #GP)
 * they become ud2 calls.
 */
#include <stdarg.h>

#include "lib.h"
#include "test.h"

#define LSR	 5
#define LSR_THRE 0x20

static volatile uint32_t print_lock;

void uoutb(uint16_t port, uint8_t v)
{
	if (shared.io_direct)
		outb(port, v);
	else
		usys(SYS_OUT, port, v, 1);
}

uint8_t uinb(uint16_t port)
{
	if (shared.io_direct)
		return inb(port);
	return (uint8_t)usys(SYS_IN, port, 1, 0);
}

void uoutl(uint16_t port, uint32_t v)
{
	if (shared.io_direct)
		outl(port, v);
	else
		usys(SYS_OUT, port, v, 4);
}

uint32_t uinl(uint16_t port)
{
	uint32_t v;

	if (!shared.io_direct)
		return (uint32_t)usys(SYS_IN, port, 4, 0);
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

void uexit(uint32_t status)
{
	if (shared.io_direct)
		outl(PORT_TEST_EXIT, status);
	usys(SYS_EXIT, status, 0, 0);
	for (;;)
		usys(SYS_PARK, 0, 0, 0);
}

static void uputc(char c)
{
	for (int i = 0; i < 100000 && !(uinb(PORT_COM1 + LSR) & LSR_THRE); i++)
		cpu_relax();
	uoutb(PORT_COM1, (uint8_t)c);
}

void tprintf(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(buf))
		n = sizeof(buf) - 1;
	while (__atomic_exchange_n(&print_lock, 1, __ATOMIC_ACQUIRE))
		cpu_relax();
	for (int i = 0; i < n; i++)
		uputc(buf[i]);
	__atomic_store_n(&print_lock, 0, __ATOMIC_RELEASE);
}
