// SPDX-License-Identifier: MIT
/* Barrier and failure reporting shared by all tests. */
#include <stdarg.h>

#include "lib.h"
#include "test.h"
#include "user.h"

#define BARRIER_TIMEOUT_MS 120000

static volatile uint32_t bar_count, bar_sense;
static volatile uint32_t fail_lock;
char fail_reason[256];
volatile uint32_t failed;

/* Sense-reversing: reusable without a second reset phase. */
void tbarrier(struct tctx *t)
{
	uint32_t sense = !bar_sense;
	uint64_t deadline;

	if (__atomic_add_fetch(&bar_count, 1, __ATOMIC_ACQ_REL) == t->ncpus) {
		bar_count = 0;
		__atomic_store_n(&bar_sense, sense, __ATOMIC_RELEASE);
		return;
	}
	deadline = deadline_in_ms(BARRIER_TIMEOUT_MS);
	while (__atomic_load_n(&bar_sense, __ATOMIC_ACQUIRE) != sense) {
		cpu_relax();
		if (past(deadline)) {
			tfail(t, "barrier timeout on cpu %u", t->cpu);
			finish_run(t);
		}
	}
}

int tfail(struct tctx *t, const char *fmt, ...)
{
	va_list ap;

	(void)t;
	if (__atomic_exchange_n(&fail_lock, 1, __ATOMIC_ACQUIRE))
		return 1;
	va_start(ap, fmt);
	vsnprintf(fail_reason, sizeof(fail_reason), fmt, ap);
	va_end(ap);
	__atomic_store_n(&failed, 1, __ATOMIC_RELEASE);
	return 1;
}
