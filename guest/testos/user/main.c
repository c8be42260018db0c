// SPDX-License-Identifier: MIT
/*
 * Ring-3 framework, entered on every CPU by the kernel. CPU 0 probes port
 * I/O, reads the command line, picks the test and releases the others;
 * all run it; CPU 0 collects the results, prints `TEST <name> PASS|FAIL`
 * and ends the VM through the test-exit port. The other CPUs park in the
 * kernel (hlt) when done so they stop competing for host CPUs.
 */
#include "lib.h"
#include "test.h"
#include "user.h"

#define FINISH_TIMEOUT_MS 120000

extern const struct testos_test __start_testos_tests[], __stop_testos_tests[];

static volatile uint64_t go;
static volatile uint32_t finished;
static volatile int results[MAX_CPUS];
static const struct testos_test *cur;
static char test_name[64];
static uint64_t t_start;

static const struct testos_test *find_test(const char *name)
{
	for (const struct testos_test *t = __start_testos_tests;
	     t < __stop_testos_tests; t++)
		if (!strcmp(t->name, name))
			return t;
	return 0;
}

static void list_tests(void)
{
	for (const struct testos_test *t = __start_testos_tests;
	     t < __stop_testos_tests; t++)
		tprintf("  %-14s %s\n", t->name, t->help);
}

static void setup(void)
{
	size_t len;
	const char *name;
	uint64_t khz;

	uio_probe_in(PORT_COM1 + 5);
	shared.io_direct = !shared.io_probe_faulted;
	/* io=ud2 forces the fallback, to test it or compare costs. */
	name = targ_str("io", &len);
	if (name && len == 3 && !strncmp(name, "ud2", 3))
		shared.io_direct = 0;
	khz = tsc_khz();
	tprintf("testos: cpus=%u/%u tsc_khz=%lu (%s) io=%s boot_ms=%lu "
		"smp_ms=%lu\n",
		shared.ncpus, shared.ncpus_madt, khz, tsc_khz_source(),
		shared.io_direct ? "direct" : "ud2",
		cycles_to_ns(shared.user_tsc - shared.boot_tsc) / 1000000,
		cycles_to_ns(shared.user_tsc - shared.smp_tsc) / 1000000);
	tprintf("testos: cmdline '%s'\n", shared.cmdline);
	if (shared.mp_wake)
		tprintf("testos: APs woken through the ACPI mailbox at 0x%lx\n",
			shared.mp_wake);
	if (shared.boot_error)
		tprintf("testos: boot problem: %s\n", shared.boot_error);
	name = targ_str("test", &len);
	if (!name || !len || len >= sizeof(test_name)) {
		tprintf("testos: usage: test=NAME [key=value...]; tests:\n");
		list_tests();
		tprintf("TEST ? FAIL bad command line\n");
		uexit(EXIT_BADCMD);
	}
	memcpy(test_name, name, len);
	shared.test_name = test_name;
	if (!strcmp(test_name, "list")) {
		list_tests();
		tprintf("TEST list PASS\n");
		uexit(EXIT_PASS);
	}
	cur = find_test(test_name);
	if (!cur) {
		tprintf("testos: unknown test '%s'; tests:\n", test_name);
		list_tests();
		tprintf("TEST %s FAIL unknown test\n", test_name);
		uexit(EXIT_BADCMD);
	}
	t_start = rdtsc();
	__atomic_store_n(&go, 1, __ATOMIC_RELEASE);
	for (unsigned c = 1; c < shared.ncpus; c++)
		usys(SYS_IPI, shared.cpu_apic[c], VEC_WAKE, 0);
}

void finish_run(struct tctx *t)
{
	uint64_t deadline;

	if (t->cpu != 0) {
		__atomic_add_fetch(&finished, 1, __ATOMIC_RELEASE);
		for (;;)
			usys(SYS_PARK, 0, 0, 0);
	}
	deadline = deadline_in_ms(FINISH_TIMEOUT_MS);
	while (__atomic_load_n(&finished, __ATOMIC_ACQUIRE) < t->ncpus - 1) {
		cpu_relax();
		if (past(deadline)) {
			tfail(t, "timeout: only %u of %u cpus finished",
			      finished + 1, t->ncpus);
			break;
		}
	}
	for (unsigned c = 0; c < t->ncpus && !failed; c++)
		if (results[c])
			tfail(t, "cpu %u returned %d", c, results[c]);
	tprintf("testos: %s took %lu ms\n", test_name,
		cycles_to_ns(rdtsc() - t_start) / 1000000);
	if (failed) {
		tprintf("TEST %s FAIL %s\n", test_name, fail_reason);
		uexit(EXIT_FAIL);
	}
	tprintf("TEST %s PASS\n", test_name);
	uexit(EXIT_PASS);
}

void user_main(unsigned cpu)
{
	struct tctx t = {.cpu = cpu};

	if (cpu == 0) {
		shared.user_tsc = rdtsc();
		setup();
	} else {
		/* Halted, not spinning: during bring-up and CPU 0's setup
		 * the waiting APs would take host CPUs from the others. */
		while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE))
			usys(SYS_WAIT, (long)&go, 0, 0);
	}
	/* Read only after `go`: the BSP sets ncpus once bring-up is over. */
	t.ncpus = shared.ncpus;
	if (cpu >= t.ncpus) /* came up after the kernel gave up on it */
		for (;;)
			usys(SYS_PARK, 0, 0, 0);
	results[cpu] = cur->run(&t);
	finish_run(&t);
}
