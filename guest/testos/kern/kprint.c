// SPDX-License-Identifier: MIT
/* Serial output from ring 0 (COM1, polled). Only error paths use it. */
#include <stdarg.h>

#include "kern.h"
#include "lib.h"
#include "x86.h"

#define LSR	 5
#define LSR_THRE 0x20

static volatile uint32_t kprint_lock;

static void kputc(char c)
{
	/* Bounded: a broken UART must not turn a report into a hang. */
	for (int i = 0; i < 100000 && !(inb(PORT_COM1 + LSR) & LSR_THRE); i++)
		;
	outb(PORT_COM1, (uint8_t)c);
}

void kprintf(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n, i, spins;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(buf))
		n = sizeof(buf) - 1;
	/* Another CPU may die holding the lock: give up waiting eventually. */
	for (spins = 0; spins < 1000000; spins++)
		if (!__atomic_exchange_n(&kprint_lock, 1, __ATOMIC_ACQUIRE))
			break;
	for (i = 0; i < n; i++)
		kputc(buf[i]);
	__atomic_store_n(&kprint_lock, 0, __ATOMIC_RELEASE);
}
