// SPDX-License-Identifier: MIT
#include <criterion/criterion.h>
#include <string.h>

#include "vmm/config.h"
#include "vmm/ctl.h"

Test(config, sizes)
{
	uint64_t v;

	cr_assert_eq(config__parse_size("512M", &v), 0);
	cr_expect_eq(v, 512ULL << 20);
	cr_assert_eq(config__parse_size("2G", &v), 0);
	cr_expect_eq(v, 2ULL << 30);
	cr_assert_eq(config__parse_size("2GiB", &v), 0);
	cr_expect_eq(v, 2ULL << 30);
	cr_assert_eq(config__parse_size("65536k", &v), 0);
	cr_expect_eq(v, 64ULL << 20);
	cr_assert_eq(config__parse_size("4096", &v), 0);
	cr_expect_eq(v, 4096);
	cr_expect_eq(config__parse_size("", &v), -1);
	cr_expect_eq(config__parse_size("G", &v), -1);
	cr_expect_eq(config__parse_size("-1G", &v), -1);
	cr_expect_eq(config__parse_size("12Q", &v), -1);
	cr_expect_eq(config__parse_size("1GG", &v), -1);
	cr_expect_eq(config__parse_size("99999999999999999999", &v), -1);
	cr_expect_eq(config__parse_size("17179869184T", &v), -1, "overflow");
}

static int parse(struct vm_config *c, char *err, const char *a1,
		 const char *a2, const char *a3, const char *a4)
{
	char *argv[] = { "run", (char *)a1, (char *)a2, (char *)a3, (char *)a4,
			 NULL };
	int argc = 1;

	while (argv[argc])
		argc++;
	return config__parse_run(argc, argv, c, err, 256);
}

Test(config, run_options)
{
	struct vm_config c;
	char err[256];

	cr_assert_eq(parse(&c, err, "--kernel", "k", "--vcpus", "4"), 0);
	cr_expect_str_eq(c.kernel, "k");
	cr_expect_eq(c.nr_vcpus, 4);
	cr_expect_eq(c.mem_size, CONFIG_MEM_DEFAULT);
	cr_expect_eq(parse(&c, err, "--kernel", "k", "--vcpus", "0"), -1);
	cr_expect(strstr(err, "--vcpus"));
	cr_expect_eq(parse(&c, err, "--kernel", "k", "--mem", "1M"), -1);
	cr_expect_eq(parse(&c, err, "--kernel", "k", "--mem", "x"), -1);
	cr_expect_eq(parse(&c, err, "--vcpus", "2", NULL, NULL), -1);
	cr_expect(strstr(err, "--kernel"));
	cr_expect_eq(parse(&c, err, "--kernel", "k", "--name", "a/b"), -1);
	cr_expect_eq(parse(&c, err, "--kernel", "k", "stray", NULL), -1);
	cr_expect_eq(parse(&c, err, "--help", NULL, NULL, NULL), 1);
}

/* Over hosts the vCPUs go round the hosts unless --vcpu-map says. */
Test(config, vcpu_map_default_round_robin)
{
	struct vm_config c;
	char err[256];
	char *argv[] = { "run", "--kernel", "k", "--vcpus", "5",
			 "--local-hosts", "3", NULL };

	cr_assert_eq(config__parse_run(7, argv, &c, err, sizeof(err)), 0, "%s",
		     err);
	for (unsigned i = 0; i < 5; i++)
		cr_expect_eq(c.vcpu_map[i], i % 3, "vCPU %u on %u", i,
			     c.vcpu_map[i]);
	cr_assert_eq(parse(&c, err, "--kernel", "k", "--vcpus", "3"), 0);
	for (unsigned i = 0; i < 3; i++)
		cr_expect_eq(c.vcpu_map[i], 0, "one host: vCPU %u on %u", i,
			     c.vcpu_map[i]);
	/* More vCPUs than the map holds: KVM says no later, not a crash. */
	cr_expect_eq(parse(&c, err, "--kernel", "k", "--vcpus", "4096"), 0);
	char *over[] = { "run", "--kernel", "k", "--vcpus", "255",
			 "--local-hosts", "2", NULL };
	cr_expect_eq(config__parse_run(7, over, &c, err, sizeof(err)), 0, "%s",
		     err);
	over[4] = "256";
	cr_expect_eq(config__parse_run(7, over, &c, err, sizeof(err)), -1);
	cr_expect(strstr(err, "at most 255 over hosts"), "%s", err);
}

/* --spread-when: every vCPU starts on host 0, the map is where they go. */
Test(config, spread_when)
{
	struct vm_config c;
	char err[256];
	char *argv[] = {"run",	      "--kernel",
			"k",	      "--vcpus",
			"4",	      "--local-hosts",
			"2",	      "--vcpu-map",
			"0,1,1,0",    "--spread-when",
			"init after", NULL,
			NULL,	      NULL};

	cr_assert_eq(config__parse_run(11, argv, &c, err, sizeof(err)), 0, "%s",
		     err);
	cr_expect_str_eq(c.spread_when, "init after");
	for (unsigned i = 0; i < 4; i++) {
		cr_expect_eq(c.vcpu_map[i], 0, "vCPU %u boots on host 0", i);
		cr_expect_eq(c.place[i], i == 1 || i == 2, "vCPU %u goes to %u",
			     i, c.place[i]);
	}
	argv[10] = "(";
	cr_expect_eq(config__parse_run(11, argv, &c, err, sizeof(err)), -1);
	cr_expect(strstr(err, "not a regular expression"), "%s", err);
	argv[10] = "x";
	argv[11] = "--console";
	argv[12] = "virtio";
	cr_expect_eq(config__parse_run(13, argv, &c, err, sizeof(err)), -1);
	cr_expect(strstr(err, "not with --console virtio"), "%s", err);
	cr_expect_eq(parse(&c, err, "--kernel", "k", "--spread-when", "x"), -1);
	cr_expect(strstr(err, "a VM over hosts"), "%s", err);
}

Test(ctl, request_parsing)
{
	char cmd[32], arg[64];

	cr_assert_eq(ctl__parse("SLOS1 status", cmd, 32, arg, 64), 0);
	cr_expect_str_eq(cmd, "status");
	cr_expect_str_eq(arg, "");
	cr_assert_eq(ctl__parse("SLOS1 snapshot /tmp/x", cmd, 32, arg, 64), 0);
	cr_expect_str_eq(arg, "/tmp/x");
	cr_expect_eq(ctl__parse("SLOS2 status", cmd, 32, arg, 64), -1);
	cr_expect_eq(ctl__parse("SLOS1 ", cmd, 32, arg, 64), -1);
	cr_expect_eq(ctl__parse("status", cmd, 32, arg, 64), -1);
}

Test(config, restore_and_snapshot_options)
{
	struct vm_config c;
	char err[256];

	cr_assert_eq(parse(&c, err, "--restore", "/s", NULL, NULL), 0, "%s",
		     err);
	cr_expect_str_eq(c.restore, "/s");
	cr_expect(!c.mem_set && !c.vcpus_set && !c.kernel);
	cr_assert_eq(parse(&c, err, "--restore", "/s", "--prefetch", NULL), 0);
	cr_expect(c.prefetch);
	cr_assert_eq(parse(&c, err, "--restore", "/s", "--mem", "1G"), 0);
	cr_expect(c.mem_set);
	cr_expect_eq(parse(&c, err, "--restore", "/s", "--kernel", "k"), -1);
	cr_expect(strstr(err, "come from the snapshot"), "%s", err);
	cr_expect_eq(parse(&c, err, "--kernel", "k", "--prefetch", NULL), -1);
	cr_expect_eq(parse(&c, err, "--kernel", "k", "--snapshot-to", "d"),
		     -1);
	cr_expect(strstr(err, "go together"), "%s", err);

	char *argv[] = { "run", "--kernel", "k", "--snapshot-when", "a[",
			 "--snapshot-to", "d", NULL };
	cr_expect_eq(config__parse_run(7, argv, &c, err, 256), -1);
	cr_expect(strstr(err, "regular expression"), "%s", err);
	argv[4] = "^\\[ *[0-9.]+\\] Writes:";
	cr_expect_eq(config__parse_run(7, argv, &c, err, 256), 0, "%s", err);
	cr_expect_str_eq(c.snapshot_to, "d");
}

Test(config, trace_and_balance_options)
{
	struct vm_config c;
	char err[256];

	cr_assert_eq(parse(&c, err, "--kernel", "k", "--trace", "t.json"), 0,
		     "%s", err);
	cr_expect_str_eq(c.trace, "t.json");
	cr_expect_eq(parse(&c, err, "--kernel", "k", "--trace", ""), -1);
	cr_expect_eq(parse(&c, err, "--kernel", "k", "--balance", "off"), 0);
	cr_expect(!c.balance);
	cr_expect_eq(parse(&c, err, "--kernel", "k", "--balance", "locality"),
		     -1);
	cr_expect(strstr(err, "one host"), "%s", err);
	cr_expect_eq(parse(&c, err, "--kernel", "k", "--balance", "fast"), -1);
	cr_expect(strstr(err, "off or locality"), "%s", err);

	char *argv[] = { "run", "--kernel", "k", "--local-hosts", "2",
			 "--balance", "locality", NULL };
	cr_expect_eq(config__parse_run(7, argv, &c, err, 256), 0, "%s", err);
	cr_expect(c.balance && c.nhosts == 2);
}
