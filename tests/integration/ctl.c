// SPDX-License-Identifier: MIT
/* The control socket: `slos ctl NAME status|stop` against a running VM. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/integration/harness.h"

/* A VM that computes for minutes unless stopped. */
static pid_t start_vm(const char *name)
{
	pid_t pid = fork();

	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		execl(harness__bin(), harness__bin(), "run", "--kernel",
		      harness__testos(), "--vcpus", "2", "--mem", "64M",
		      "--name", name, "--cmdline",
		      "test=counter iters=4000000000", (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* The socket appears once the VM is set up; true when status answers. */
static bool wait_up(const char *name)
{
	struct run r;

	for (int i = 0; i < 100; i++) {
		harness__run(&r, 10, NULL, "ctl", name, "status", NULL);
		bool up = r.status == 0;
		harness__free(&r);
		if (up)
			return true;
		usleep(100000);
	}
	return false;
}

static int wait_exit(pid_t pid, int secs)
{
	int st;

	for (int i = 0; i < secs * 10; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(100000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

Test(ctl, status_then_stop, .timeout = 120)
{
	char name[32];
	struct run r;

	snprintf(name, sizeof(name), "ctltest-%d", getpid());
	pid_t pid = start_vm(name);
	cr_assert(wait_up(name), "no control socket for %s", name);
	harness__run(&r, 10, NULL, "ctl", name, "status", NULL);
	cr_assert_eq(r.status, 0, "ctl status failed: %s", r.out);
	cr_expect(harness__has(&r, "\"state\":\"running\""), "%s", r.out);
	cr_expect(harness__has(&r, "\"vcpus\":2"), "%s", r.out);
	cr_expect(harness__has(&r, name), "%s", r.out);
	harness__free(&r);

	harness__run(&r, 10, NULL, "ctl", name, "frobnicate", NULL);
	cr_expect_eq(r.status, 1, "unknown command: %d %s", r.status, r.out);
	cr_expect(harness__has(&r, "unknown command"), "%s", r.out);
	harness__free(&r);

	harness__run(&r, 10, NULL, "ctl", name, "stop", NULL);
	cr_expect_eq(r.status, 0, "ctl stop: %s", r.out);
	harness__free(&r);
	cr_expect_eq(wait_exit(pid, 20), 0, "slos run did not end with 0");

	/* Nothing left behind: the name is free again. */
	harness__run(&r, 10, NULL, "ctl", name, "status", NULL);
	cr_expect_eq(r.status, 2, "socket of a stopped VM answered: %s", r.out);
	harness__free(&r);
}

Test(ctl, sigterm_ends_the_vm_and_its_socket, .timeout = 120)
{
	char name[32];
	struct run r;

	snprintf(name, sizeof(name), "ctlsig-%d", getpid());
	pid_t pid = start_vm(name);
	cr_assert(wait_up(name), "no control socket for %s", name);
	kill(pid, SIGTERM);
	cr_expect_eq(wait_exit(pid, 20), 128 + SIGTERM);
	harness__run(&r, 10, NULL, "ctl", name, "status", NULL);
	cr_expect_eq(r.status, 2, "%s", r.out);
	harness__free(&r);
}
