// SPDX-License-Identifier: MIT
/*
 * `slos host --listen ADDR:PORT --key FILE`: a host's daemon. Each
 * connection that proves the key is a VM's host 0 asking this host to take
 * part: the daemon forks one VMM process for it (cluster__member), which
 * ends with the VM. A peer that fails the handshake is logged and closed
 * by the fabric; the daemon and its VMs go on.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm/cluster.h"
#include "vmm/host.h"
#include "vmm/vm.h"

#define MAX_VMS 64

static uint8_t key[FABRIC_KEY_SIZE];
static pid_t vms[MAX_VMS];

static bool any_vm_key(uint64_t vm_id, uint8_t out[FABRIC_KEY_SIZE], void *arg)
{
	memcpy(out, key, FABRIC_KEY_SIZE);
	return true;
}

static const char host_usage[] =
    "usage: slos host --listen ADDR:PORT --key FILE [--ready-fd N]\n"
    "  serve VMs whose host 0 proves the key in FILE (32 bytes, or 64 hex\n"
    "  digits); --ready-fd: write a line to fd N once listening\n";

static void reap(void)
{
	int st;
	pid_t pid;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (int i = 0; i < MAX_VMS; i++)
			if (vms[i] == pid)
				vms[i] = 0;
		fprintf(stderr, "slos host: VM process %d ended (%s %d)\n",
			(int)pid, WIFEXITED(st) ? "status" : "signal",
			WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	}
}

static void serve_vm(struct fabric_listener *l, struct fabric_conn *c,
		     const sigset_t *set)
{
	pid_t parent = getpid(), pid;

	/* No handshake thread of the listener's mid-way through the fork. */
	fabric__listener_hold(l, 1000);
	pid = fork();
	if (pid)
		fabric__listener_release(l);
	if (pid < 0) {
		fprintf(stderr, "slos host: fork: %s\n", strerror(errno));
		fabric__close(c);
		return;
	}
	if (pid) {
		for (int i = 0; i < MAX_VMS; i++)
			if (!vms[i]) {
				vms[i] = pid;
				break;
			}
		fprintf(stderr, "slos host: VM %016llx from %s: process %d\n",
			(unsigned long long)fabric__vm_id(c), fabric__peer(c),
			(int)pid);
		fabric__close(c); /* not started: the child's now */
		return;
	}
	/* The VM's process ends with its daemon. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(VM_EXIT_CRASH);
	fabric__listener_forget(l);
	sigprocmask(SIG_UNBLOCK, set, NULL);
	exit(cluster__member(c, key));
}

int host__main(int argc, char **argv)
{
	const char *listen = NULL, *keyf = NULL;
	int ready_fd = -1;
	char why[256];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help")) {
			fputs(host_usage, stdout);
			return 0;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "slos host: '%s' needs a value\n%s",
				argv[i], host_usage);
			return VM_EXIT_USAGE;
		}
		if (!strcmp(argv[i], "--listen")) {
			listen = argv[++i];
		} else if (!strcmp(argv[i], "--key")) {
			keyf = argv[++i];
		} else if (!strcmp(argv[i], "--ready-fd")) {
			ready_fd = atoi(argv[++i]);
		} else {
			fprintf(stderr, "slos host: unknown option '%s'\n%s",
				argv[i], host_usage);
			return VM_EXIT_USAGE;
		}
	}
	if (!listen || !keyf) {
		fprintf(stderr,
			"slos host: --listen and --key are required\n%s",
			host_usage);
		return VM_EXIT_USAGE;
	}
	if (cluster__read_key(keyf, key, why, sizeof(why))) {
		fprintf(stderr, "slos host: %s\n", why);
		return VM_EXIT_USAGE;
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);

	struct fabric_opts o = {.key_for = any_vm_key,
				.dead_ms = cluster__dead_ms()};
	struct fabric_listener *l;
	if (fabric__listen(listen, &o, &l, why, sizeof(why))) {
		fprintf(stderr, "slos host: %s\n", why);
		return VM_EXIT_USAGE;
	}
	fprintf(stderr, "slos host: listening on %s\n",
		fabric__listener_addr(l));
	if (ready_fd >= 0) {
		if (write(ready_fd, "ready\n", 6) != 6)
			perror("slos host: --ready-fd");
		close(ready_fd);
	}
	for (;;) {
		struct fabric_conn *c;
		struct pollfd p = {.fd = sfd, .events = POLLIN};
		if (poll(&p, 1, 0) > 0) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == sizeof(si) &&
			    si.ssi_signo != SIGCHLD && si.ssi_signo != SIGPIPE)
				break;
			reap();
		}
		int r = fabric__accept(l, 100, &c);
		if (r == -ETIMEDOUT)
			continue;
		if (r)
			break;
		serve_vm(l, c, &set);
	}
	fabric__listener_close(l);
	/* The VMs end with their daemon. */
	for (int i = 0; i < MAX_VMS; i++)
		if (vms[i])
			kill(vms[i], SIGTERM);
	while (wait(NULL) > 0)
		;
	return 0;
}
