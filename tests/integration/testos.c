// SPDX-License-Identifier: MIT
/* The test OS on real KVM: SMP bring-up, atomics, memory, IPIs. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "tests/integration/harness.h"

static void boot(const char *test, const char *vcpus, const char *extra)
{
	char cmdline[256], pass[128];
	struct run r;

	snprintf(cmdline, sizeof(cmdline), "test=%s%s%s", test,
		 extra ? " " : "", extra ? extra : "");
	snprintf(pass, sizeof(pass), "TEST %s PASS", test);
	harness__run(&r, 120, NULL, "run", "--kernel", harness__testos(),
		     "--vcpus", vcpus, "--mem", "256M", "--cmdline", cmdline,
		     NULL);
	cr_expect_eq(r.status, 0, "%s on %s vCPUs: status %d after %.1fs:\n%s",
		     test, vcpus, r.status, r.secs, r.out);
	cr_expect(harness__has(&r, pass), "no '%s' in:\n%s", pass, r.out);
	/* One host: APs by INIT/SIPI, no wakeup mailbox in the MADT. */
	cr_expect(!harness__has(&r, "ACPI mailbox"), "%s", r.out);
	harness__free(&r);
}

Test(testos, smp_hello_1) { boot("smp-hello", "1", NULL); }
Test(testos, smp_hello_2) { boot("smp-hello", "2", NULL); }
Test(testos, smp_hello_4) { boot("smp-hello", "4", NULL); }
Test(testos, counter_2) { boot("counter", "2", NULL); }
Test(testos, memwalk_2) { boot("memwalk", "2", "mib=64"); }
Test(testos, ipi_pingpong_2) { boot("ipi-pingpong", "2", "rounds=200"); }

Test(testos, failing_test_reports_status)
{
	struct run r;

	harness__run(&r, 60, NULL, "run", "--kernel", harness__testos(),
		     "--cmdline", "test=no-such-test", NULL);
	cr_expect_eq(r.status, 2, "status %d:\n%s", r.status, r.out);
	harness__free(&r);
}
