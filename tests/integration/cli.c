// SPDX-License-Identifier: MIT
/* Bad input to `slos run`: one clear line, exit status 2, nothing left. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tests/integration/harness.h"

static void expect_usage(struct run *r, const char *msg)
{
	cr_expect_eq(r->status, 2, "status %d, output:\n%s", r->status, r->out);
	cr_expect(harness__has(r, msg), "no '%s' in:\n%s", msg, r->out);
	harness__free(r);
}

Test(cli, missing_kernel_file)
{
	struct run r;

	harness__run(&r, 20, NULL, "run", "--kernel", "/nonexistent/vmlinux",
		     NULL);
	expect_usage(&r, "/nonexistent/vmlinux: No such file");
}

Test(cli, no_kernel)
{
	struct run r;

	harness__run(&r, 20, NULL, "run", NULL);
	expect_usage(&r, "--kernel FILE is required");
}

Test(cli, not_a_kernel)
{
	struct run r;
	char path[] = "/tmp/slos-test-XXXXXX";
	int fd = mkstemp(path);

	cr_assert(fd >= 0);
	cr_assert(write(fd, "this is not a kernel image\n", 27) == 27);
	close(fd);
	harness__run(&r, 20, NULL, "run", "--kernel", path, NULL);
	unlink(path);
	expect_usage(&r, "kernel");
}

Test(cli, zero_vcpus)
{
	struct run r;

	harness__run(&r, 20, NULL, "run", "--kernel", harness__testos(),
		     "--vcpus", "0", NULL);
	expect_usage(&r, "--vcpus");
}

Test(cli, too_many_vcpus)
{
	struct run r;

	harness__run(&r, 20, NULL, "run", "--kernel", harness__testos(),
		     "--vcpus", "4096", NULL);
	expect_usage(&r, "KVM allows at most");
}

Test(cli, bad_size)
{
	struct run r;

	harness__run(&r, 20, NULL, "run", "--kernel", harness__testos(),
		     "--mem", "12Q", NULL);
	expect_usage(&r, "--mem '12Q'");
}

Test(cli, mem_too_small_for_kernel)
{
	struct run r;

	/* The test OS loads at 1 MiB; 16 MiB is the floor and fits it, so
	 * use the project kernel when built, else a synthetic check of the
	 * loader covers it (tests/unit/loader). */
	if (access(harness__artefact("linux/vmlinux"), R_OK))
		cr_skip_test("no project kernel built (build/linux/vmlinux)");
	harness__run(&r, 20, NULL, "run", "--kernel",
		     harness__artefact("linux/vmlinux"), "--mem", "16M", NULL);
	expect_usage(&r, "--mem");
}

Test(cli, mem_too_large_to_map)
{
	struct run r;

	harness__run(&r, 20, NULL, "run", "--kernel", harness__testos(),
		     "--mem", "64T", NULL);
	expect_usage(&r, "--mem");
}

Test(cli, unknown_option)
{
	struct run r;

	harness__run(&r, 20, NULL, "run", "--kernel", harness__testos(),
		     "--frobnicate", NULL);
	expect_usage(&r, "--frobnicate");
}

/* These machines have no RDMA device: --fabric rdma must say so at start
 * (where a device exists, the run goes on and the test OS passes). */
Test(cli, fabric_rdma_without_device)
{
	struct run r;

	harness__run(&r, 20, NULL, "run", "--kernel", harness__testos(),
		     "--fabric", "rdma", "--cmdline", "test=smp-hello", NULL);
	if (r.status == 0) {
		harness__free(&r);
		cr_skip_test("an RDMA device exists here");
	}
	expect_usage(&r, "no RDMA device");
}

Test(cli, fabric_unknown)
{
	struct run r;

	harness__run(&r, 20, NULL, "run", "--kernel", harness__testos(),
		     "--fabric", "carrier-pigeon", NULL);
	expect_usage(&r, "--fabric 'carrier-pigeon': tcp or rdma");
}
