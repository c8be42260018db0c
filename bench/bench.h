/* SPDX-License-Identifier: MIT */
/*
 * What the benches share: a monotonic clock in us, the test OS's
 * percentile, and the network floor: TCP round trips between two network
 * namespaces joined by a veth pair, as `--local-hosts` makes them (plain
 * blocking sockets, TCP_NODELAY). Header-only: each bench is a program of
 * its own (bench/NAME/NAME.c). Root, for the namespaces.
 */
#ifndef SLOS_BENCH_H
#define SLOS_BENCH_H

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

static inline double bench__now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static inline int bench__cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The test OS's percentile (user/stats.c): element (n * p - 1) / 100. */
static inline double bench__pct(double *v, int n, int p)
{
	qsort(v, n, sizeof(*v), bench__cmp);
	return v[(n * p - 1) / 100 < 0 ? 0 : (n * p - 1) / 100];
}

/* Two namespaces ns0 and ns1, a veth pair if0/if1 between them, with
 * addresses net.1 and net.2 (net: "10.98.1"), a TCP port on ns1. */
struct bench_floor {
	const char *ns0, *ns1, *if0, *if1, *net;
	unsigned port;
};

static inline void bench__floor_del(const struct bench_floor *f)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd),
		 "ip netns del %s 2>/dev/null; ip netns del %s 2>/dev/null",
		 f->ns0, f->ns1);
	if (system(cmd))
		return;
}

static inline int bench__in_ns(const char *ns)
{
	char path[64];
	int fd, r;

	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	r = setns(fd, CLONE_NEWNET);
	close(fd);
	return r;
}

static inline int bench__full(int fd, void *p, size_t n, bool wr)
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

/*
 * warmup + n round trips, `out` bytes ns0 -> ns1 and `back` bytes back;
 * the n timed ones (us) in t. 0, or -1 with why (the namespaces are gone
 * either way).
 */
static inline int bench__tcp_floor(const struct bench_floor *f, int warmup,
				   int n, size_t out, size_t back, double *t,
				   const char **why)
{
	char cmd[768], addr[32], r;
	int p[2], one = 1;
	pid_t srv, cli;

	bench__floor_del(f); /* a run that was killed may have left them */
	snprintf(cmd, sizeof(cmd),
		 "ip netns add %1$s && ip netns add %2$s && "
		 "ip link add %3$s netns %1$s type veth peer name %4$s "
		 "netns %2$s && ip -n %1$s addr add %5$s.1/24 dev %3$s && "
		 "ip -n %2$s addr add %5$s.2/24 dev %4$s && "
		 "ip -n %1$s link set %3$s up && ip -n %2$s link set %4$s up "
		 "&& ip -n %1$s link set lo up && ip -n %2$s link set lo up",
		 f->ns0, f->ns1, f->if0, f->if1, f->net);
	if (system(cmd)) {
		*why = "network namespaces (root?)";
		bench__floor_del(f);
		return -1;
	}
	snprintf(addr, sizeof(addr), "%s.2", f->net);
	if (pipe(p)) {
		*why = "pipe";
		bench__floor_del(f);
		return -1;
	}
	srv = fork();
	if (srv == 0) {
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_port = htons(f->port)};
		char *buf = calloc(1, out > back ? out : back);
		if (!buf || bench__in_ns(f->ns1))
			_exit(1);
		int l = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(l, (void *)&a, sizeof(a)) || listen(l, 1) ||
		    write(p[1], "r", 1) != 1)
			_exit(1);
		int c = accept(l, NULL, NULL);
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		while (!bench__full(c, buf, out, false) &&
		       !bench__full(c, buf, back, true))
			;
		_exit(0);
	}
	if (read(p[0], &r, 1) != 1) {
		*why = "the responder did not start";
		kill(srv, SIGKILL);
		waitpid(srv, NULL, 0);
		bench__floor_del(f);
		return -1;
	}
	cli = fork();
	if (cli == 0) {
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_port = htons(f->port)};
		char *buf = calloc(1, out > back ? out : back);
		if (!buf || bench__in_ns(f->ns0))
			_exit(1);
		inet_pton(AF_INET, addr, &a.sin_addr);
		int c = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(c, (void *)&a, sizeof(a)))
			_exit(1);
		for (int i = 0; i < warmup + n; i++) {
			double t0 = bench__now_us(), d;
			if (bench__full(c, buf, out, true) ||
			    bench__full(c, buf, back, false))
				_exit(1);
			d = bench__now_us() - t0;
			if (i >= warmup &&
			    write(p[1], &d, sizeof(d)) != sizeof(d))
				_exit(1);
		}
		_exit(0);
	}
	int bad = 0;
	for (int i = 0; i < n && !bad; i++)
		bad = bench__full(p[0], &t[i], sizeof(t[i]), false);
	waitpid(cli, NULL, 0);
	kill(srv, SIGKILL);
	waitpid(srv, NULL, 0);
	close(p[0]);
	close(p[1]);
	bench__floor_del(f);
	if (bad)
		*why = "the TCP round trips failed";
	return bad ? -1 : 0;
}

#endif
