// SPDX-License-Identifier: MIT
/*
 * The end-to-end run users do, as `make demo` does it (scripts/demo.sh):
 * Debian's stock kernel, unmodified, on 4 vCPUs over local hosts, its
 * busybox user space running the demo's two ordinary programs from the
 * guest image: /demo/primes (a thread pinned to each vCPU, the count
 * checked against a sieve) and /demo/diskio (a file written, synced and
 * read back on a virtio disk, whose bytes the script then checks from the
 * host). Each case is one boot that checks all of that, the CPUs and
 * memory the guest sees, power-off and the summary.
 *
 * Under PVM the script itself moves the run into the lab (a stock
 * kernel's user space on several vCPUs needs hardware-style KVM there,
 * docs/pvm-syscalls.md), so these run on every machine with /dev/kvm or
 * the lab; they run once per `make test` (not in the ASan pass).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/integration/harness.h"

static void expect_line(const char *out, const char *want)
{
	cr_expect(strstr(out, want), "no '%s' in:\n%s", want, out);
}

/* The summary's "vcpu N  boot: R remote faults J jumps; apps: R2
 * remote faults J2 jumps" lines: every R summed. */
static unsigned long remote_faults(const char *out)
{
	unsigned long sum = 0, r1, j1, r2, j2;
	unsigned v;

	for (const char *l = out; (l = strstr(l, "\nvcpu ")); l++)
		if (sscanf(l + 1,
			   "vcpu %u boot: %lu remote faults %lu jumps; apps: "
			   "%lu remote faults %lu jumps",
			   &v, &r1, &j1, &r2, &j2) == 5)
			sum += r1 + r2;
	return sum;
}

static void demo(const char *hosts)
{
	const char *argv[] = {"scripts/demo.sh", NULL};
	char dir[64], want[96];
	struct proc p;
	char *out;
	int st;

	if (getenv("SLOS_NO_STOCK"))
		cr_skip_test("once per make test (plain build)");
	if (access("build/linux/stock-vmlinuz", R_OK))
		cr_skip_test("no build/linux/stock-vmlinuz");
	/* Under build/, not /tmp: a lab sees this machine's files but
	 * has a /tmp of its own. */
	snprintf(dir, sizeof(dir), "build/e2e-%s-hosts", hosts);
	/* The checks below assume the demo's defaults. */
	static const char *const knobs[] = {"VCPUS", "MEM",	 "LIMIT",
					    "MIB",   "VCPU_MAP", "BALANCE",
					    "OUT",   "SPREAD"};
	for (unsigned i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++)
		unsetenv(knobs[i]);
	unsetenv("NUMA");
	setenv("DEMO", dir, 1);
	setenv("HOSTS", hosts, 1);
	setenv("SLOS_BIN", harness__bin(), 1);
	/* The VM's own limit, inside the test's. */
	setenv("DEMO_TIMEOUT", "1000", 1);
	cr_assert(!harness__spawn(&p, argv));
	st = harness__wait(&p, 1500);
	harness__wait_output(&p, "\1never\1", 5); /* its output, whole */
	out = harness__output(&p);
	cr_expect_eq(st, 0, "demo.sh: status %d after %.0f s:\n%s", st,
		     harness__now() - p.t0, out);
	expect_line(out, "SLOS-GUEST-UP");
	expect_line(out, "SLOS-DEMO nproc=4 cpuinfo=4");
	/* Every vCPU ran a thread, and the count is the sieve's. */
	for (unsigned c = 0; c < 4; c++) {
		snprintf(want, sizeof(want),
			 "SLOS-DEMO primes thread %u cpu %u ", c, c);
		expect_line(out, want);
	}
	expect_line(out, "threads=4 count=148933 sieve=148933");
	expect_line(out, "SLOS-DEMO primes rc=0");
	expect_line(out, "0 bad blocks OK");
	expect_line(out, "SLOS-DEMO diskio rc=0");
	expect_line(out, "as the guest saw it");
	expect_line(out, "guest powered off");
	expect_line(out, "boot to init:");
	/* The SRAT made each host a NUMA node of the guest (docs/acpi.md):
	 * with 1 GiB every host is home to some RAM, so every node is up. */
	snprintf(want, sizeof(want), "\nnuma:          nodes=%s ", hosts);
	expect_line(out, want);
	expect_line(out, "\nvcpu 3 ");
	/* Where the vCPUs were as the apps ended (all on host 0 in the lab
	 * and under PVM, docs/demo.md). */
	expect_line(out, "placement:     vCPUs on hosts ");
	expect_line(out, "demo: OK");
	cr_expect(remote_faults(out) > 0, "no remote faults over hosts:\n%s",
		  out);
	cr_log_info("demo over %s hosts: %.0f s", hosts, harness__now() - p.t0);
	free(out);
	harness__proc_free(&p);
}

Test(linux_e2e, demo_2_hosts, .timeout = 1600)
{
	demo("2");
}

Test(linux_e2e, demo_3_hosts, .timeout = 1600)
{
	demo("3");
}
