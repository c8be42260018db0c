/* SPDX-License-Identifier: MIT */
/*
 * The test API, all ring 3. A test is one function run on every CPU that
 * came up; it returns 0 for pass. Register it with one line:
 *
 *	TESTOS_TEST("name", fn, "one-line description");
 *
 * The test passes iff every CPU returns 0 and nobody called tfail().
 */
#ifndef TESTOS_TEST_H
#define TESTOS_TEST_H

#include <stddef.h>
#include <stdint.h>

#include "shared.h"
#include "usys.h"
#include "x86.h"

struct tctx {
	unsigned cpu;	/* 0..ncpus-1; CPU 0 is the BSP */
	unsigned ncpus; /* CPUs that came up */
};

struct testos_test {
	const char *name;
	int (*run)(struct tctx *t);
	const char *help;
};

#define TESTOS_TEST(tname, fn, thelp)                                          \
	static const struct testos_test testos_test_##fn                       \
	    __attribute__((used, section(".testos_tests"), aligned(8))) = {    \
		.name = tname, .run = fn, .help = thelp}

/* Command-line argument `key=value` as a number (k/m/g suffixes allowed),
 * or def if absent; a malformed value ends the run with exit status 2. */
uint64_t targ(const char *key, uint64_t def);
/* Pointer to the value of `key=` (not NUL-terminated: ends at space or
 * NUL) and its length, or NULL. */
const char *targ_str(const char *key, size_t *len);

/* Line-atomic printing on COM1. */
void tprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Record why the test failed (first reason wins); returns 1 so a test can
 * `return tfail(t, ...)`. */
int tfail(struct tctx *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Wait until every CPU of the test gets here (fails the run on timeout). */
void tbarrier(struct tctx *t);

/* TSC rate (kHz), 0 if unknown; conversions give 0 then. */
uint64_t tsc_khz(void);
uint64_t cycles_to_ns(uint64_t cycles);
/* Deadline helpers for spin loops: `timeout_ms` from now. */
uint64_t deadline_in_ms(uint64_t ms);
int past(uint64_t deadline);

/* Free RAM (e820 minus the image), user-accessible at ring 3. */
struct ram_range {
	uint64_t start, end;
};
size_t ram_ranges(struct ram_range *r, size_t max);
/* Carve `bytes` off the start of free RAM, 4 KiB aligned; NULL if none. */
void *ram_alloc(uint64_t bytes);
/* The same, from the first free RAM inside guest-physical [lo, hi); all
 * free RAM below the block is given up too (allocation only moves up). */
void *ram_alloc_in(uint64_t lo, uint64_t hi, uint64_t bytes);

/* Sort ascending, then nearest-rank percentile (p in 0..100). */
void stats_sort(uint64_t *v, size_t n);
uint64_t stats_pct(const uint64_t *sorted, size_t n, unsigned p);
/* Sorts v and prints `label: n=.. p50_cycles=.. p99_cycles=.. p50_ns=..
 * p99_ns=..` (the format benchmarks parse), then min/max on a second line. */
void stats_report(const char *label, uint64_t *v, size_t n);

/* Port I/O from ring 3: direct if the probe worked, else ud2 calls. */
void uoutb(uint16_t port, uint8_t v);
uint8_t uinb(uint16_t port);
void uoutl(uint16_t port, uint32_t v);
uint32_t uinl(uint16_t port);
__attribute__((noreturn)) void uexit(uint32_t status);

static inline uint64_t atomic_add(volatile uint64_t *p, uint64_t v)
{
	return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
}

#endif
