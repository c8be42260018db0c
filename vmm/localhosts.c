// SPDX-License-Identifier: MIT
/*
 * --local-hosts: several hosts on one machine, each in a network namespace
 * of its own with its own address, joined by veth links to a bridge in host
 * 0's namespace, with real TCP between them.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vmm/host.h"

#define SUBNET "10.97.0."
#define PORT   7100

static pid_t daemons[8];
static unsigned nr_daemons;

/* A child about to exec: none of host 0's blocked signals (vmm/main.c
 * takes them through a signalfd) stays blocked in what it runs. */
static void unblock_all(void)
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Run a command (words split on spaces), quietly; its exit status. */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char line[256], *argv[16];
	int argc = 0, st;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	for (char *t = strtok(line, " "); t && argc < 15; t = strtok(NULL, " "))
		argv[argc++] = t;
	argv[argc] = NULL;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, STDOUT_FILENO);
		unblock_all();
		execvp(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int say(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int say(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return -1;
}

static void close_all(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* Talk to a member host's child through its namespace's set-up; returns
 * -1 with why said, or 0 once its daemon listens. */
static int bring_up(unsigned i, pid_t pid, int up, int go, int ready, char *why,
		    size_t why_len)
{
	char c;

	if (read(up, &c, 1) != 1)
		return say(why, why_len, "host %u: cannot make its namespace",
			   i);
	if (run("ip link add slh%u type veth peer name eth0 netns %d", i,
		(int)pid) ||
	    run("ip link set slh%u master slbr0", i) ||
	    run("ip link set slh%u up", i))
		return say(why, why_len, "host %u: cannot link its namespace",
			   i);
	if (write(go, "g", 1) != 1)
		return say(why, why_len, "host %u: lost", i);
	/* The daemon says when it listens. */
	struct pollfd p = {.fd = ready, .events = POLLIN};
	if (poll(&p, 1, 15000) != 1 || read(ready, &c, 1) != 1)
		return say(why, why_len, "host %u: its daemon did not start",
			   i);
	return 0;
}

/* One member host: a namespace, its end of a veth link, its daemon. */
static int spawn(unsigned i, int key_fd, char *why, size_t why_len)
{
	/* up[2], go[2], ready[2] */
	int fd[6] = {-1, -1, -1, -1, -1, -1};
	char c;

	pid_t parent = getpid(), pid = -1;
	int r = -1;

	if (pipe2(fd, O_CLOEXEC) || pipe2(fd + 2, O_CLOEXEC) || pipe(fd + 4)) {
		say(why, why_len, "pipe: %s", strerror(errno));
		goto out;
	}
	if ((pid = fork()) < 0) {
		say(why, why_len, "fork: %s", strerror(errno));
		goto out;
	}
	if (!pid) {
		char listen[32], kf[32], rf[16];
		/* SIGTERM from localhosts__stop ends it before its exec too. */
		unblock_all();
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent || unshare(CLONE_NEWNET))
			_exit(126);
		if (write(fd[1], "u", 1) != 1 || read(fd[2], &c, 1) != 1)
			_exit(126);
		if (run("ip link set lo up") ||
		    run("ip addr add " SUBNET "%u/24 dev eth0", i + 1) ||
		    run("ip link set eth0 up"))
			_exit(125);
		snprintf(listen, sizeof(listen), SUBNET "%u:%u", i + 1, PORT);
		snprintf(kf, sizeof(kf), "/proc/self/fd/%d", key_fd);
		snprintf(rf, sizeof(rf), "%d", fd[5]);
		close(fd[4]);
		execl("/proc/self/exe", "slos", "host", "--listen", listen,
		      "--key", kf, "--ready-fd", rf, (char *)NULL);
		_exit(127);
	}
	daemons[nr_daemons++] = pid;
	close(fd[5]);
	fd[5] = -1;
	r = bring_up(i, pid, fd[0], fd[3], fd[4], why, why_len);
out:
	close_all(fd, 6);
	return r;
}

int localhosts__start(unsigned n, char addrs[][LOCAL_ADDR_LEN], uint8_t key[32],
		      char *why, size_t why_len)
{
	if (geteuid() != 0)
		return say(why, why_len,
			   "--local-hosts needs root (it creates network "
			   "namespaces); or start `slos host` daemons and "
			   "use --hosts");
	if (getrandom(key, 32, 0) != 32)
		return say(why, why_len, "no randomness for the VM's key");
	/* The key reaches the daemons as a file only they can open. */
	int kfd = memfd_create("slos-key", 0);
	if (kfd < 0 || write(kfd, key, 32) != 32) {
		say(why, why_len, "memfd: %s", strerror(errno));
		goto fail;
	}
	if (unshare(CLONE_NEWNET)) {
		say(why, why_len, "network namespace: %s", strerror(errno));
		goto fail;
	}
	if (run("ip link set lo up") || run("ip link add slbr0 type bridge") ||
	    run("ip addr add " SUBNET "1/24 dev slbr0") ||
	    run("ip link set slbr0 up")) {
		say(why, why_len,
		    "cannot set up the bridge (is iproute2 installed?)");
		goto fail;
	}
	for (unsigned i = 1; i < n; i++) {
		if (spawn(i, kfd, why, why_len))
			goto fail;
		snprintf(addrs[i], LOCAL_ADDR_LEN, SUBNET "%u:%u", i + 1, PORT);
	}
	close(kfd);
	return 0;
fail:
	if (kfd >= 0)
		close(kfd);
	return -1;
}

void localhosts__stop(void)
{
	struct timespec t = {0, 20 * 1000 * 1000};

	for (unsigned i = 0; i < nr_daemons; i++)
		kill(daemons[i], SIGTERM);
	for (int tries = 0; tries < 100; tries++) {
		bool left = false;
		for (unsigned i = 0; i < nr_daemons; i++) {
			if (daemons[i] && waitpid(daemons[i], NULL, WNOHANG))
				daemons[i] = 0;
			left |= daemons[i] != 0;
		}
		if (!left)
			break;
		nanosleep(&t, NULL);
	}
	for (unsigned i = 0; i < nr_daemons; i++) {
		if (daemons[i]) {
			kill(daemons[i], SIGKILL);
			waitpid(daemons[i], NULL, 0);
		}
	}
	nr_daemons = 0;
}
