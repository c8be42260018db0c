// SPDX-License-Identifier: MIT
/*
 * bench/fabric-rtt: the round trip of a 64-byte request answered by a
 * 4096-byte reply (the DSM's remote read fault on the wire) between two
 * network namespaces joined by a veth pair, through the fabric (sealed
 * frames over TCP + io_uring) against the floor measured in the same run
 * over the same veth: plain blocking TCP sockets, write 64 then read 4096.
 * This is issue 4's "TCP floor".
 *
 * Must run as root (it makes namespaces). Namespaces slos-rtt-a-PID and
 * slos-rtt-b-PID and the veth pair are removed on exit, error, SIGINT or
 * SIGTERM, unless --keep.
 *
 * usage: fabric-rtt [--n N] [--keep]
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fabric/transport.h"

#define ADDR_A	    "10.213.0.1"
#define ADDR_B	    "10.213.0.2"
#define FABRIC_PORT 7300
#define PLAIN_PORT  7301
#define REQ_SIZE    64
#define REPLY_SIZE  4096
#define WARMUP	    1000
#define VM_ID	    0x5105f1b0ULL

static char ns_a[64], ns_b[64], veth_a[16], veth_b[16];
static bool keep;
static bool ns_made; /* something to delete */
static pid_t child = -1;
static atomic_flag cleaning = ATOMIC_FLAG_INIT;
/* A signal is being handled: the failures it causes are not news. */
static atomic_bool stopping;

/* The key both sides hold; a bench has no secret to protect. */
static const uint8_t key[FABRIC_KEY_SIZE] = "slos-fabric-rtt-bench-key-32byte";

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "fabric-rtt: failed: %s\n", cmd);
		return -1;
	}
	return 0;
}

/*
 * Kill the responder and delete the namespaces (the veth goes with them).
 * Exactly once: the signal thread and the main path may race here, and the
 * loser must not exit under the winner, so it waits to be ended.
 */
static void cleanup(void)
{
	if (atomic_flag_test_and_set(&cleaning)) {
		for (;;)
			pause();
	}
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		child = -1;
	}
	if (!ns_made)
		return;
	if (keep) {
		fprintf(stderr, "fabric-rtt: kept namespaces %s and %s\n", ns_a,
			ns_b);
		return;
	}
	/* Quietly: after a failed setup one of them may not exist. ip netns
	 * del works from any network namespace: it unmounts /run/netns. */
	run("ip netns del %s 2>/dev/null || true", ns_a);
	run("ip netns del %s 2>/dev/null || true", ns_b);
}

static __attribute__((noreturn)) void die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;

	if (atomic_load(&stopping))
		cleanup(); /* waits for the signal thread to end us */
	fputs("fabric-rtt: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cleanup();
	exit(1);
}

/* SIGINT/SIGTERM are blocked in every thread and taken here, so cleanup
 * runs in a normal thread (system() is not async-signal-safe). */
static void *signal_thread(void *arg)
{
	sigset_t *set = arg;
	int sig = 0;

	sigwait(set, &sig);
	atomic_store(&stopping, true);
	fprintf(stderr, "fabric-rtt: signal %d, cleaning up\n", sig);
	cleanup();
	_exit(128 + sig);
}

static void enter_ns(const char *name)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET))
		die("enter %s: %s", name, strerror(errno));
	close(fd);
}

static int full_io(int fd, void *buf, size_t len, bool wr)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t r = wr ? write(fd, p, len) : read(fd, p, len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		len -= r;
	}
	return 0;
}

/* ---- the responder, in namespace B ---- */

static bool key_for(uint64_t vm_id, uint8_t out[FABRIC_KEY_SIZE], void *arg)
{
	if (vm_id != VM_ID)
		return false;
	memcpy(out, key, FABRIC_KEY_SIZE);
	return true;
}

static void on_frame(struct fabric_conn *c, uint16_t type, const void *payload,
		     size_t len, void *arg)
{
	static uint8_t reply[REPLY_SIZE];

	/* Answered from the I/O thread, as the DSM's page server would:
	 * no hop to another thread on the reply's path. */
	if (len == REQ_SIZE)
		fabric__send(c, type, reply, sizeof(reply));
}

static void on_down(struct fabric_conn *c, int err, const char *why, void *arg)
{
}

static void *plain_server(void *arg)
{
	int lfd = (int)(intptr_t)arg;

	for (;;) {
		uint8_t req[REQ_SIZE], reply[REPLY_SIZE] = {0};
		int one = 1, fd = accept(lfd, NULL, NULL);

		if (fd < 0)
			continue;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		while (!full_io(fd, req, sizeof(req), false) &&
		       !full_io(fd, reply, sizeof(reply), true))
			;
		close(fd);
	}
	return NULL;
}

static int plain_listen(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(PLAIN_PORT)};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	inet_pton(AF_INET, ADDR_B, &sa.sin_addr);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4))
		return -1;
	return fd;
}

static __attribute__((noreturn)) void responder(int ready_fd)
{
	static const struct fabric_handler h = {.frame = on_frame,
						.down = on_down};
	struct fabric_opts o = {.key_for = key_for};
	struct fabric_listener *l;
	char why[FABRIC_WHY_SIZE], addr[64];
	pthread_t t;
	int lfd;

	/* The parent owns cleanup; if it dies we must not linger. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		_exit(1);
	/* die() here would clean up on the parent's behalf: only it does. */
	child = -1;
	ns_made = false;
	enter_ns(ns_b);
	snprintf(addr, sizeof(addr), "%s:%d", ADDR_B, FABRIC_PORT);
	if (fabric__listen(addr, &o, &l, why, sizeof(why))) {
		fprintf(stderr, "fabric-rtt: responder: %s\n", why);
		_exit(1);
	}
	lfd = plain_listen();
	if (lfd < 0 ||
	    pthread_create(&t, NULL, plain_server, (void *)(intptr_t)lfd)) {
		fprintf(stderr, "fabric-rtt: responder: plain listen: %s\n",
			strerror(errno));
		_exit(1);
	}
	if (write(ready_fd, "r", 1) != 1)
		_exit(1);
	close(ready_fd);
	for (;;) {
		struct fabric_conn *c;

		if (fabric__accept(l, -1, &c))
			continue;
		if (fabric__start(c, &h))
			fabric__close(c);
		/* Left open: the parent ends us with SIGKILL. */
	}
}

/* ---- the initiator, in namespace A ---- */

static void report(const char *what, double *t, int n, double *p50)
{
	qsort(t, n, sizeof(*t), cmp);
	*p50 = t[n / 2];
	printf("  %-34s p50 %8.1f us  p99 %8.1f us  max %8.1f us\n", what,
	       t[n / 2] / 1e3, t[n * 99 / 100] / 1e3, t[n - 1] / 1e3);
}

static void bench_fabric(double *t, int n, double *p99, double *p50)
{
	struct fabric_opts o = {0};
	struct fabric_conn *c = NULL;
	char why[FABRIC_WHY_SIZE], addr[64];
	static uint8_t req[REQ_SIZE], buf[FABRIC_MAX_PAYLOAD];
	int r = -1;

	snprintf(addr, sizeof(addr), "%s:%d", ADDR_B, FABRIC_PORT);
	/* The veth's carrier can take a moment to come up after link set
	 * up; retry briefly rather than fail the run on it. */
	for (int i = 0; i < 10 && r; i++) {
		r = fabric__connect(addr, VM_ID, key, &o, &c, why, sizeof(why));
		if (r)
			usleep(200000);
	}
	if (r)
		die("fabric connect: %s", why);
	/* No handler: replies queue for fabric__recv, the synchronous
	 * waiter a faulting vCPU would be. */
	if (fabric__start(c, NULL))
		die("fabric start: %s", fabric__down_why(c));
	for (int i = -WARMUP; i < n; i++) {
		uint16_t type;
		size_t len;
		double t0 = now_ns();

		r = fabric__send(c, FABRIC_MSG_USER, req, sizeof(req));
		if (!r)
			r = fabric__recv(c, 5000, &type, buf, sizeof(buf),
					 &len);
		if (r || len != REPLY_SIZE)
			die("fabric round trip %d: %d (%s)", i, r,
			    fabric__down_why(c));
		if (i >= 0)
			t[i] = now_ns() - t0;
	}
	struct fabric_stats st;

	fabric__stats(c, &st);
	fabric__close(c);
	report("fabric (sealed, io_uring):", t, n, p50);
	*p99 = t[n * 99 / 100];
	printf(
	    "    frames tx %llu in %llu writes, rx %llu in %llu reads\n",
	    (unsigned long long)st.tx_frames, (unsigned long long)st.tx_writes,
	    (unsigned long long)st.rx_frames, (unsigned long long)st.rx_reads);
}

static void bench_plain(double *t, int n, double *p99, double *p50)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(PLAIN_PORT)};
	static uint8_t req[REQ_SIZE], reply[REPLY_SIZE];
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	inet_pton(AF_INET, ADDR_B, &sa.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		die("plain connect: %s", strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (int i = -WARMUP; i < n; i++) {
		double t0 = now_ns();

		if (full_io(fd, req, sizeof(req), true) ||
		    full_io(fd, reply, sizeof(reply), false))
			die("plain round trip %d: %s", i, strerror(errno));
		if (i >= 0)
			t[i] = now_ns() - t0;
	}
	close(fd);
	report("plain TCP (floor):", t, n, p50);
	*p99 = t[n * 99 / 100];
}

static void setup_net(void)
{
	pid_t me = getpid();

	snprintf(ns_a, sizeof(ns_a), "slos-rtt-a-%d", (int)me);
	snprintf(ns_b, sizeof(ns_b), "slos-rtt-b-%d", (int)me);
	/* Interface names are at most 15 bytes; a PID fits in 7 digits. */
	snprintf(veth_a, sizeof(veth_a), "rtta%d", (int)me);
	snprintf(veth_b, sizeof(veth_b), "rttb%d", (int)me);
	ns_made = true;
	if (run("ip netns add %s", ns_a) || run("ip netns add %s", ns_b) ||
	    run("ip link add %s netns %s type veth peer name %s netns %s",
		veth_a, ns_a, veth_b, ns_b) ||
	    run("ip -n %s addr add %s/24 dev %s", ns_a, ADDR_A, veth_a) ||
	    run("ip -n %s addr add %s/24 dev %s", ns_b, ADDR_B, veth_b) ||
	    run("ip -n %s link set lo up", ns_a) ||
	    run("ip -n %s link set lo up", ns_b) ||
	    run("ip -n %s link set %s up", ns_a, veth_a) ||
	    run("ip -n %s link set %s up", ns_b, veth_b))
		die("network setup failed");
}

static __attribute__((noreturn)) void usage(void)
{
	fprintf(stderr, "usage: fabric-rtt [--n N] [--keep]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	double *t, f50, f99, p50, p99;
	int n = 20000, pfd[2];
	sigset_t set;
	pthread_t st;
	char c;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--n") && i + 1 < argc)
			n = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--keep"))
			keep = true;
		else
			usage();
	}
	if (n < 100)
		n = 100;
	if (geteuid() != 0) {
		fprintf(stderr, "fabric-rtt: must run as root (it creates "
				"network namespaces and a veth pair)\n");
		return 2;
	}
	t = calloc(n, sizeof(*t));
	if (!t)
		return 1;
	/* Before any other thread exists, so every one (the fabric's I/O
	 * threads included) inherits the mask and only sigwait sees them. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (pthread_create(&st, NULL, signal_thread, &set))
		return 1;
	/* A dead child's pipe must not kill us mid-measurement. */
	signal(SIGPIPE, SIG_IGN);

	setup_net();
	if (pipe2(pfd, O_CLOEXEC))
		die("pipe: %s", strerror(errno));
	fflush(NULL);
	child = fork();
	if (child < 0)
		die("fork: %s", strerror(errno));
	if (child == 0) {
		close(pfd[0]);
		responder(pfd[1]);
	}
	close(pfd[1]);
	if (read(pfd[0], &c, 1) != 1)
		die("the responder failed to start");
	close(pfd[0]);
	/* setns moves only this thread; every socket and thread the
	 * benches make from here on is in namespace A. */
	enter_ns(ns_a);

	printf("fabric-rtt: n=%d, %d B request -> %d B reply, veth "
	       "%s -> %s\n",
	       n, REQ_SIZE, REPLY_SIZE, ADDR_A, ADDR_B);
	bench_plain(t, n, &p99, &p50);
	bench_fabric(t, n, &f99, &f50);
	printf("  ratio fabric/plain:                 p50 %8.2fx     "
	       "p99 %8.2fx\n",
	       f50 / p50, f99 / p99);
	fflush(stdout);
	cleanup();
	free(t);
	return 0;
}
