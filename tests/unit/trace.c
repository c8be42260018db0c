// SPDX-License-Identifier: MIT
/*
 * --trace's writer (vmm/trace.c): events become trace-event JSON; a
 * member's batch is checked record by record (its host, kinds, ranges)
 * and a bad one is refused without touching the file, which stays valid
 * JSON (checked with python3's json module).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/cluster.h"
#include "vmm/trace.h"

static char path[64];

static void rec(uint8_t *out, uint8_t kind, uint8_t host, uint16_t vcpu,
		uint64_t a, uint64_t b)
{
	struct trace_ev e = { .kind = kind, .host = host, .vcpu = vcpu,
			      .ts_us = 1, .a = a, .b = b, .c = 7, .d = 1500 };

	trace__put(&e, out);
}

static void setup(void)
{
	char why[256];
	int fd;

	snprintf(path, sizeof(path), "/tmp/slos-trace-XXXXXX");
	fd = mkstemp(path);
	cr_assert(fd >= 0);
	close(fd);
	cr_assert_eq(trace__open(path, 2, 2, why, sizeof(why)), 0, "%s",
		     why);
}

static void teardown(void)
{
	unlink(path);
}

Test(trace, codec_round_trip)
{
	struct trace_ev e = { .kind = TRACE_JUMP, .host = 3, .vcpu = 513,
			      .d = 4096, .ts_us = 1ull << 50, .a = 2,
			      .b = 1, .c = 99 },
			u;
	uint8_t b[TRACE_EV_SIZE];

	trace__put(&e, b);
	trace__get(&u, b);
	cr_expect(u.kind == e.kind && u.host == e.host && u.vcpu == e.vcpu &&
		  u.d == e.d && u.ts_us == e.ts_us && u.a == e.a &&
		  u.b == e.b && u.c == e.c);
}

Test(trace, file_is_json_and_bad_batches_refused, .init = setup,
     .fini = teardown)
{
	uint8_t b[4 * TRACE_EV_SIZE];
	const char *why;
	char cmd[512];

	trace__emit(TRACE_RUN_BEGIN, 0, 0, 0, 0, 0, 0);
	trace__emit(TRACE_JUMP, 0, 1, 1, JUMP_GUEST, 120, 1700);
	trace__emit(TRACE_FAULT, 0, 1, 0x123000, 1, 35, 1);
	rec(b, TRACE_RUN_BEGIN, 1, 1, 0, 0);
	rec(b + TRACE_EV_SIZE, TRACE_JUMP, 1, 0, 0, JUMP_CTL);
	cr_expect_eq(trace__recv(1, b, 2 * TRACE_EV_SIZE, &why), 0);
	/* each refused */
	cr_expect(trace__recv(1, b, TRACE_EV_SIZE - 1, &why));
	cr_expect(trace__recv(0, b, TRACE_EV_SIZE, &why), "another host's");
	rec(b, TRACE_NR_KINDS, 1, 0, 0, 0);
	cr_expect(trace__recv(1, b, TRACE_EV_SIZE, &why), "kind");
	rec(b, TRACE_RUN_END, 1, 2, 0, 0);
	cr_expect(trace__recv(1, b, TRACE_EV_SIZE, &why), "vCPU");
	rec(b, TRACE_JUMP, 1, 0, 5, 0);
	cr_expect(trace__recv(1, b, TRACE_EV_SIZE, &why), "from");
	rec(b, TRACE_JUMP, 1, 0, 0, JUMP_NR_REASONS);
	cr_expect(trace__recv(1, b, TRACE_EV_SIZE, &why), "reason");
	rec(b, TRACE_FAULT, 1, 0, 0x5000, 2);
	cr_expect(trace__recv(1, b, TRACE_EV_SIZE, &why), "home");
	trace__close();
	snprintf(cmd, sizeof(cmd),
		 "python3 -c 'import json,sys; e = json.load(open(sys.argv[1]))"
		 "[\"traceEvents\"]; assert len([x for x in e if x[\"name\"] "
		 "== \"jump\"]) == 2; assert [x[\"args\"][\"gpa\"] for x in e if "
		 "x[\"name\"] == \"fault\"] == [\"0x123000\"]' %s",
		 path);
	cr_expect_eq(system(cmd), 0, "not the JSON expected");
}
