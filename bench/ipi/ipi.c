// SPDX-License-Identifier: MIT
/*
 * bench/ipi: the round trip of an IPI between vCPUs on two hosts, against
 * a floor measured in the same run.
 *
 *  1. Floor: a TCP round trip between two network namespaces joined by a
 *     veth pair, as --local-hosts makes them, 16 bytes each way (plain
 *     blocking sockets, TCP_NODELAY). An IPI round trip over hosts is two
 *     one-way forwards (CL_IPI: ping to vCPU 1's host, pong back), i.e.
 *     one such round trip plus the VMM's work at each end.
 *  2. Local baseline: the test OS's `ipi-pingpong` on one host, 2 vCPUs.
 *  3. Over hosts: the same test over 2 local hosts, vCPU 0 on host 0 and
 *     vCPU 1 on host 1 (`--vcpu-map 0,1`), its partner spinning at ring 3,
 *     then halted (`hlt=1`). The partner's parked copy on host 0 catches
 *     the ping in the VMM's trap and forwards it; vCPU 0's copy on host 1
 *     catches the pong.
 *
 * The guest times each round with its TSC at ring 3 and prints
 * `ipi-pingpong: n=.. p50_ns=.. p99_ns=..`; --stats says how many IPIs
 * each host forwarded, which checks that they did cross.
 * Must run as root (namespaces).
 *
 * usage: ipi [--slos BIN] [--testos ELF] [--n N]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vmm/pvm.h"

#define NS0    "slosib0"
#define NS1    "slosib1"
#define MSG    16
#define WARMUP 16 /* as the test OS's ipi-pingpong */

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The test OS's percentile (user/stats.c): element (n * p - 1) / 100. */
static double pct(double *v, int n, int p)
{
	qsort(v, n, sizeof(*v), cmp);
	return v[(n * p - 1) / 100 < 0 ? 0 : (n * p - 1) / 100];
}

static void del_ns(void)
{
	if (system("ip netns del " NS0 " 2>/dev/null; ip netns del " NS1
		   " 2>/dev/null"))
		return;
}

static void die(const char *what)
{
	fprintf(stderr, "bench/ipi: %s: %s\n", what, strerror(errno));
	del_ns();
	exit(2);
}

static void in_ns(const char *ns)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET))
		die(path);
	close(fd);
}

static int full(int fd, void *p, size_t n, bool wr)
{
	for (size_t k = 0; k < n;) {
		ssize_t r = wr ? write(fd, (char *)p + k, n - k)
			       : read(fd, (char *)p + k, n - k);
		if (r <= 0)
			return -1;
		k += r;
	}
	return 0;
}

/* The floor: WARMUP + n round trips of MSG bytes each way, NS0 -> NS1. */
static void floor_tcp(int n, double *t)
{
	int p[2], one = 1;
	pid_t srv, cli;
	char r;

	del_ns(); /* a run that was killed may have left them */
	if (system("ip netns add " NS0 " && ip netns add " NS1 " && "
		   "ip link add ib0 netns " NS0 " type veth peer name ib1 "
		   "netns " NS1 " && "
		   "ip -n " NS0 " addr add 10.98.1.1/24 dev ib0 && "
		   "ip -n " NS1 " addr add 10.98.1.2/24 dev ib1 && "
		   "ip -n " NS0 " link set ib0 up && ip -n " NS1
		   " link set ib1 up && ip -n " NS0 " link set lo up && "
		   "ip -n " NS1 " link set lo up"))
		die("network namespaces");
	if (pipe(p))
		die("pipe");
	srv = fork();
	if (srv == 0) {
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_port = htons(7198)};
		char buf[MSG];
		in_ns(NS1);
		int l = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(l, (void *)&a, sizeof(a)) || listen(l, 1))
			_exit(1);
		if (write(p[1], "r", 1) != 1)
			_exit(1);
		int c = accept(l, NULL, NULL);
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		while (!full(c, buf, MSG, false) && !full(c, buf, MSG, true))
			;
		_exit(0);
	}
	if (read(p[0], &r, 1) != 1)
		die("responder");
	cli = fork();
	if (cli == 0) {
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_port = htons(7198)};
		char buf[MSG] = {0};
		in_ns(NS0);
		inet_pton(AF_INET, "10.98.1.2", &a.sin_addr);
		int c = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(c, (void *)&a, sizeof(a)))
			_exit(1);
		for (int i = 0; i < WARMUP + n; i++) {
			double t0 = now_us(), d;
			if (full(c, buf, MSG, true) || full(c, buf, MSG, false))
				_exit(1);
			d = now_us() - t0;
			if (i >= WARMUP &&
			    write(p[1], &d, sizeof(d)) != sizeof(d))
				_exit(1);
		}
		_exit(0);
	}
	for (int i = 0; i < n; i++)
		if (full(p[0], &t[i], sizeof(t[i]), false))
			die("TCP floor");
	waitpid(cli, NULL, 0);
	kill(srv, SIGKILL);
	waitpid(srv, NULL, 0);
	close(p[0]);
	close(p[1]);
	del_ns();
}

struct run {
	const char *label;
	unsigned long n, p50_ns, p99_ns, sent;
	bool pass;
};

/* One slos run of ipi-pingpong; its figures from the guest's line. */
static int pingpong(const char *slos, const char *testos, int n, bool hosts,
		    bool hlt, struct run *r)
{
	char cmd[1024], line[1024];
	FILE *f;
	int st;

	snprintf(cmd, sizeof(cmd),
		 "%s run --kernel %s --vcpus 2 --mem 128M --stats%s "
		 "--cmdline 'test=ipi-pingpong rounds=%d%s' 2>&1",
		 slos, testos, hosts ? " --local-hosts 2 --vcpu-map 0,1" : "",
		 n, hlt ? " hlt=1" : "");
	f = popen(cmd, "r");
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long sent;
		char *s = strstr(line, ": caught ");
		if (!strncmp(line, "ipi-pingpong: n=", 16))
			sscanf(line,
			       "ipi-pingpong: n=%lu p50_cycles=%*u "
			       "p99_cycles=%*u p50_ns=%lu p99_ns=%lu",
			       &r->n, &r->p50_ns, &r->p99_ns);
		if (strstr(line, "TEST ipi-pingpong PASS"))
			r->pass = true;
		if (!strncmp(line, "slos: host ", 11) && s &&
		    sscanf(s, ": caught %*u, sent %lu", &sent) == 1)
			r->sent += sent;
	}
	st = f ? pclose(f) : -1;
	if (!r->pass || !r->n) {
		fprintf(stderr,
			"bench/ipi: %s failed (status %d; run `%s` to see "
			"why)\n",
			r->label, st, cmd);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *slos = "build/slos", *testos = "build/guest/testos.elf";
	int n = 1000;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--slos") && i + 1 < argc)
			slos = argv[++i];
		else if (!strcmp(argv[i], "--testos") && i + 1 < argc)
			testos = argv[++i];
		else if (!strcmp(argv[i], "--n") && i + 1 < argc)
			n = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: ipi [--slos BIN] [--testos "
					"ELF] [--n N]\n");
			return 2;
		}
	}
	if (n < 10) {
		fprintf(stderr, "bench/ipi: --n must be >= 10\n");
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "bench/ipi: must run as root (it makes network "
				"namespaces, and so does --local-hosts)\n");
		return 2;
	}
	if (access(slos, X_OK) || access(testos, R_OK)) {
		fprintf(stderr, "bench/ipi: %s or %s missing (make)\n", slos,
			testos);
		return 2;
	}

	double *t = calloc(n, sizeof(double));
	if (!t)
		die("calloc");
	floor_tcp(n, t);
	double f50 = pct(t, n, 50), f99 = pct(t, n, 99);

	struct run runs[3] = {
	    {.label = "local, 1 host, 2 vCPUs, spinning partner"},
	    {.label = "over 2 hosts, spinning partner"},
	    {.label = "over 2 hosts, hlt=1 partner"},
	};
	if (pingpong(slos, testos, n, false, false, &runs[0]) ||
	    pingpong(slos, testos, n, true, false, &runs[1]) ||
	    pingpong(slos, testos, n, true, true, &runs[2]))
		return 1;

	/* The lab's kvm_amd looks like hardware from inside: say lab. */
	printf("bench/ipi (KVM: %s%s; n=%d)\n",
	       pvm__kvm_kind_name(pvm__kvm_kind()),
	       pvm__host_emulated() ? ", in the lab (QEMU TCG)" : "", n);
	printf("  %-44s p50 %9.1f us  p99 %9.1f us\n",
	       "floor: TCP 16 B each way, 2 netns (veth)", f50, f99);
	for (int i = 0; i < 3; i++) {
		struct run *r = &runs[i];
		printf("  %-44s p50 %9.1f us  p99 %9.1f us", r->label,
		       r->p50_ns / 1e3, r->p99_ns / 1e3);
		if (i)
			printf("  = %.2fx / %.2fx floor; IPIs forwarded %lu",
			       r->p50_ns / 1e3 / f50, r->p99_ns / 1e3 / f99,
			       r->sent);
		printf("\n");
	}
	return 0;
}
