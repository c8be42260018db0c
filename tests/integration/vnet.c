// SPDX-License-Identifier: MIT
/*
 * virtio-net on a tap (vmm/virtio/net.c) under the project kernel. One
 * boot checks the whole path, the guest at 10.0.0.2 (the kernel's ip=
 * autoconfig), its peer at 10.0.0.1 on the host side of the tap, both in
 * a network namespace of the test's own:
 *  - the driver took every feature offered (MRG_RXBUF, the offloads);
 *  - the kernel alone answers ARP and ping: small, full-size (1500-byte
 *    IP packets) and fragmented ones; its MAC is the device's default;
 *  - after a UDP flood that outruns the guest's receive buffers, the
 *    device still receives (the tap left the poll set and came back), and
 *    its worker thread did not spin meanwhile;
 *  - TCP both ways from the guest's user space (slos.console=1 on the
 *    busybox initramfs): the checksum and TSO offloads in both directions,
 *    the bytes compared at the receiving end;
 *  - the guest powers off cleanly and the device counted no error.
 * Plus start-up errors for a tap that cannot be had, without a boot.
 *
 * Needs root (CAP_NET_ADMIN), /dev/net/tun, iproute2 and busybox (the
 * host-side ping); skips without them. Every wait is bounded (no criterion
 * .timeout, as in hosts.c).
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/harness.h"

#define GUEST	  "10.0.0.2"
#define PEER	  "10.0.0.1"
#define TAP	  "vnt0"
#define LINES	  30000 /* `seq 1 LINES`: 168894 bytes */
#define DOWN_PORT 7001
#define UP_PORT	  7002

static char ns[64], tmp[64], fifo[96];
static int home_ns = -1;
static struct proc vm;
static bool vm_started;

static double scaled(double secs)
{
	return secs * harness__time_scale();
}

static const char *tool(const char *name)
{
	static const char *const dirs[] = {"/usr/sbin", "/sbin", "/usr/bin",
					   "/bin"};
	static __thread char p[2][64];
	static __thread unsigned n;
	char *b = p[n++ % 2];

	for (unsigned i = 0; i < 4; i++) {
		snprintf(b, sizeof(p[0]), "%s/%s", dirs[i], name);
		if (!access(b, X_OK))
			return b;
	}
	return NULL;
}

static int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	r = system(cmd);
	return r == -1 || !WIFEXITED(r) ? -1 : WEXITSTATUS(r);
}

/* A tap can be made here: /dev/net/tun and CAP_NET_ADMIN (a throwaway
 * one, gone with the fd). */
static bool can_tap(char *why, size_t len)
{
	struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI};
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr)) {
		snprintf(why, len, "cannot make a tap: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	close(fd);
	return true;
}

static void skip_unless_able(void)
{
	char why[128];

	if (!can_tap(why, sizeof(why)))
		cr_skip_test("%s (needs CAP_NET_ADMIN and /dev/net/tun)", why);
	if (!tool("ip") || !tool("busybox"))
		cr_skip_test("needs iproute2's ip and busybox");
}

/* This thread (and what it starts) moves into a namespace of its own
 * with the tap, up, at PEER/24: slos started from here finds it by name.
 * cleanup (.fini) undoes whatever part of it was done. */
static void setup(void)
{
	char path[128];
	int fd;

	signal(SIGPIPE, SIG_IGN);
	snprintf(tmp, sizeof(tmp), "/tmp/slos-vnet-XXXXXX");
	cr_assert(mkdtemp(tmp), "mkdtemp");
	snprintf(fifo, sizeof(fifo), "%s/console", tmp);
	snprintf(ns, sizeof(ns), "slos-vnet-%d", (int)getpid());
	home_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	cr_assert(home_ns >= 0);
	cr_assert_eq(sh("ip netns add %s", ns), 0, "ip netns add %s", ns);
	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert(fd >= 0 && !setns(fd, CLONE_NEWNET), "setns %s: %s", ns,
		  strerror(errno));
	close(fd);
	cr_assert_eq(sh("ip link set lo up && ip tuntap add dev %s mode tap && "
			"ip addr add %s/24 dev %s && ip link set %s up",
			TAP, PEER, TAP, TAP),
		     0);
}

static void cleanup(void)
{
	if (vm_started) {
		harness__proc_free(&vm);
		vm_started = false;
	}
	if (home_ns >= 0) {
		if (setns(home_ns, CLONE_NEWNET))
			cr_log_warn("back to the test's namespace: %s",
				    strerror(errno));
		close(home_ns);
		home_ns = -1;
	}
	if (ns[0] && sh("ip netns del %s", ns))
		cr_log_warn("could not remove namespace %s", ns);
	ns[0] = 0;
	if (tmp[0] && sh("rm -rf '%s'", tmp))
		cr_log_warn("could not remove %s", tmp);
	tmp[0] = 0;
}

/* ---- the guest's console, a fifo its slos reads ---- */

static int console_open(void)
{
	double end = harness__now() + scaled(20);
	int fd;

	/* No reader yet (the shell that opens it has not run): ENXIO. */
	while ((fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0 &&
	       errno == ENXIO && harness__now() < end)
		usleep(20 * 1000);
	cr_assert(fd >= 0, "%s: %s", fifo, strerror(errno));
	return fd;
}

static void console(int fd, const char *line)
{
	size_t n = strlen(line);

	cr_assert_eq(write(fd, line, n), (ssize_t)n);
	cr_assert_eq(write(fd, "\n", 1), 1);
}

/* ---- the host side ---- */

static char *pattern(size_t *len)
{
	char *b = malloc(LINES * 7 + 1), *p = b;

	for (int i = 1; i <= LINES; i++)
		p += sprintf(p, "%d\n", i);
	*len = p - b;
	return b;
}

static void flood(unsigned n, size_t size)
{
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9)};
	char *b = calloc(1, size);
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	cr_assert(s >= 0 && b);
	inet_pton(AF_INET, GUEST, &to.sin_addr);
	/* ENOBUFS and ICMP errors are expected: the point is many frames. */
	for (unsigned i = 0; i < n; i++)
		sendto(s, b, size, 0, (struct sockaddr *)&to, sizeof(to));
	close(s);
	free(b);
}

/* The tap's frames the host kernel dropped because its queue toward the
 * device was full (/proc/net/dev's transmit "drop"). */
static unsigned long long tap_drops(void)
{
	FILE *f = fopen("/proc/thread-self/net/dev", "r");
	unsigned long long v[12] = {0};
	char line[512];

	while (f && fgets(line, sizeof(line), f)) {
		char *c = strstr(line, TAP ":");

		if (c && sscanf(c + strlen(TAP ":"),
				"%llu %llu %llu %llu %llu %llu %llu %llu %llu "
				"%llu %llu %llu",
				&v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
				&v[7], &v[8], &v[9], &v[10], &v[11]) == 12)
			break;
	}
	if (f)
		fclose(f);
	return v[11];
}

/* CPU seconds of the VM's thread named comm, or -1. */
static double thread_cpu(pid_t pid, const char *comm)
{
	char path[300], name[32];
	double s = -1;
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	while (d && s < 0 && (e = readdir(d))) {
		unsigned long ut, st;
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/task/%s/comm", (int)pid,
			 e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (!fgets(name, sizeof(name), f))
			name[0] = 0;
		fclose(f);
		name[strcspn(name, "\n")] = 0;
		if (strcmp(name, comm))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", (int)pid,
			 e->d_name);
		f = fopen(path, "r");
		/* The name has no ')': the fields after it are plain. */
		if (f && fscanf(f,
				"%*d (%*[^)]) %*c %*d %*d %*d %*d %*d %*u %*u "
				"%*u %*u %*u %lu %lu",
				&ut, &st) == 2)
			s = (double)(ut + st) / sysconf(_SC_CLK_TCK);
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return s;
}

static bool wait_fd(int fd, short ev, double secs)
{
	struct pollfd p = {.fd = fd, .events = ev};

	return poll(&p, 1, (int)(secs * 1000)) == 1;
}

/* Host to guest: the guest's nc listens; connect (refused until it does),
 * send, and wait for the guest to close. */
static void send_to_guest(const char *b, size_t len, double secs)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(DOWN_PORT)};
	double end = harness__now() + secs;
	size_t off = 0;
	int s = -1;
	char c;

	inet_pton(AF_INET, GUEST, &a.sin_addr);
	while (harness__now() < end) {
		s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		cr_assert(s >= 0);
		if (!connect(s, (struct sockaddr *)&a, sizeof(a)))
			break;
		close(s);
		s = -1;
		usleep(300 * 1000);
	}
	cr_assert(s >= 0, "the guest never listened on %d", DOWN_PORT);
	while (off < len) {
		cr_assert(wait_fd(s, POLLOUT, end - harness__now()),
			  "sending to the guest: stuck at %zu of %zu bytes",
			  off, len);
		ssize_t w = send(s, b + off, len - off, MSG_DONTWAIT);

		cr_assert(w > 0 || errno == EAGAIN, "send: %s",
			  strerror(errno));
		if (w > 0)
			off += w;
	}
	shutdown(s, SHUT_WR);
	cr_expect(wait_fd(s, POLLIN, end - harness__now()) &&
		      recv(s, &c, 1, 0) == 0,
		  "the guest did not close");
	close(s);
}

/* Guest to host: accept one connection on l and read it to its end. */
static char *recv_from_guest(int l, size_t *len, size_t max, double secs)
{
	double end = harness__now() + secs;
	char *b = malloc(max + 1);
	int s;

	*len = 0;
	cr_assert(wait_fd(l, POLLIN, secs), "the guest never connected");
	s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	cr_assert(s >= 0);
	for (;;) {
		cr_assert(wait_fd(s, POLLIN, end - harness__now()),
			  "receiving from the guest: stuck at %zu bytes", *len);
		ssize_t r = recv(s, b + *len, max + 1 - *len, 0);

		if (r <= 0)
			break;
		*len += r;
		if (*len > max)
			break;
	}
	close(s);
	return b;
}

static int listen_on(const char *ip, int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	inet_pton(AF_INET, ip, &a.sin_addr);
	cr_assert(s >= 0);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	cr_assert(!bind(s, (struct sockaddr *)&a, sizeof(a)) && !listen(s, 1),
		  "listen %s:%d: %s", ip, port, strerror(errno));
	return s;
}

static void sanitizer_clean(const char *out)
{
	cr_expect(!strstr(out, "ERROR: AddressSanitizer") &&
		      !strstr(out, "ERROR: LeakSanitizer") &&
		      !strstr(out, "runtime error: "),
		  "a sanitizer report:\n%s", out);
}

/*
 * hosts: CPU 1 runs on a second host and does the guest's side of it
 * (its TCP ends are pinned there, the device's interrupts bound to it):
 * the device stays on host 0, so CPU 1's register accesses are forwarded
 * there and its interrupts come back across the fabric.
 */
static void vnet_run(bool hosts)
{
	const char *kernel = "build/linux/vmlinux";
	const char *initrd = "build/linux/initramfs.cpio";
	char busybox[64], mac[18] = "", cmd[256], *out;
	const char *hw, *feat;
	size_t plen, ulen;
	char *pat, *up;
	double t0, t;
	int con, l;
	const char *pin = hosts ? "taskset -c 1 " : "";

	skip_unless_able();
	if (access(kernel, R_OK) || access(initrd, R_OK))
		cr_skip_test("no build/linux (scripts/build-linux-guest.sh)");
	setup();
	snprintf(busybox, sizeof(busybox), "%s", tool("busybox"));
	cr_assert(!mkfifo(fifo, 0600), "mkfifo %s", fifo);
	/* The shell holds the fifo open for writing too, so the console
	 * never ends between two of the test's lines. */
	const char *argv[] = {
	    "/bin/sh",
	    "-c",
	    "exec 3<>\"$0\" && exec \"$@\" <&3 3<&-",
	    fifo,
	    harness__bin(),
	    "run",
	    "--kernel",
	    kernel,
	    "--initrd",
	    initrd,
	    "--vcpus",
	    hosts ? "2" : "1",
	    "--local-hosts",
	    hosts ? "2" : "1",
	    "--mem",
	    "256M",
	    "--stats",
	    "--net",
	    "tap,name=" TAP,
	    "--cmdline",
	    "console=ttyS0 panic=-1 slos.console=1 "
	    "rcutorture.torture_type=none locktorture.torture_type=none "
	    "ip=" GUEST "::" PEER ":255.255.255.0::eth0:off",
	    NULL};
	cr_assert(!harness__spawn(&vm, argv), "cannot start slos");
	vm_started = true;
	t0 = harness__now();
	con = console_open();
	cr_assert(harness__wait_output(&vm, "SLOS-CONSOLE-READY", scaled(300)),
		  "no console after %.0f s:\n%s", harness__now() - t0,
		  harness__output(&vm));
	cr_log_info("boot to the console: %.1f s", harness__now() - t0);
	if (hosts) {
		console(con,
			"for i in $(grep virtio /proc/interrupts | cut -d: "
			"-f1); do echo 2 > /proc/irq/$i/smp_affinity; "
			"done; echo VNET-AFF''INITY");
		cr_expect(
		    harness__wait_output(&vm, "VNET-AFFINITY", scaled(60)));
	}

	/* The kernel's ip= configured eth0 with the device's MAC. */
	out = harness__output(&vm);
	hw = strstr(out, "device=eth0, hwaddr=");
	cr_assert(hw, "no IP-Config of eth0:\n%s", out);
	snprintf(mac, sizeof(mac), "%s", hw + strlen("device=eth0, hwaddr="));
	free(out);
	cr_expect(!strncmp(mac, "52:54:00:", 9), "MAC %s", mac);

	/* The driver took every feature offered: MRG_RXBUF, the checksum
	 * and TSO offloads both ways, MAC, STATUS, VERSION_1 (its sysfs
	 * file is one digit per bit, bit 0 first). */
	console(con, "echo VNET-FEAT-$(cat /sys/class/net/eth0/device/features)"
		     "-FEAT''-END");
	/* The whole line: the console's bytes come one exit each (over
	 * hosts, one forwarded access each), so its start shows first. */
	cr_expect(harness__wait_output(&vm, "-FEAT-END", scaled(60)));
	out = harness__output(&vm);
	feat = strstr(out, "VNET-FEAT-");
	cr_expect(feat && !strncmp(feat + 10, "11000101100110011", 17) &&
		      feat[10 + 32] == '1',
		  "features %.74s", feat ? feat : "(none)");
	free(out);

	/* ARP and ICMP both ways; 1472 bytes of ping fill a 1500-byte IP
	 * packet, 4000 bytes come as 3 fragments each way. */
	t = harness__now();
	cr_assert_eq(
	    sh("%s ping -q -c 3 -w %d %s", busybox, (int)scaled(60), GUEST), 0,
	    "no answer to ping");
	cr_log_info("3 pings answered in %.1f s", harness__now() - t);
	snprintf(cmd, sizeof(cmd), "ip neigh show %s | grep -qi '%s'", GUEST,
		 mac);
	cr_expect_eq(sh("%s", cmd), 0, "the neighbour entry is not %s", mac);
	cr_expect_eq(sh("%s ping -q -c 2 -s 1472 -w %d %s", busybox,
			(int)scaled(60), GUEST),
		     0, "no answer to full-size pings");
	cr_expect_eq(sh("%s ping -q -c 2 -s 4000 -w %d %s", busybox,
			(int)scaled(60), GUEST),
		     0, "no answer to fragmented pings");

	/* More frames than the guest has buffers for: the tap holds (and
	 * drops) them while the device waits for buffers; then it must
	 * take frames again. */
	unsigned long long drops = tap_drops();
	t = harness__now();
	flood(20000, 1400);
	/* A ping sent while the tap is still full is dropped there: one
	 * ping at a time until one gets through. */
	double end = harness__now() + scaled(120);
	bool answered = false;
	while (!answered && harness__now() < end)
		answered =
		    !sh("%s ping -q -c 1 -W 5 %s >/dev/null", busybox, GUEST);
	cr_expect(answered, "no answer to ping after the flood");
	cr_log_info("after a 20000-frame UDP flood (%llu dropped at the tap), "
		    "a ping answered in %.1f s",
		    tap_drops() - drops, harness__now() - t);

	/* Host to guest over TCP; the guest compares. */
	pat = pattern(&plen);
	snprintf(cmd, sizeof(cmd),
		 "%snc -l -p %d >/tmp/d && seq 1 %d >/tmp/e && cmp /tmp/d "
		 "/tmp/e && echo VNET-DOWN-O''K",
		 pin, DOWN_PORT, LINES);
	t = harness__now();
	console(con, cmd);
	send_to_guest(pat, plen, scaled(120));
	cr_expect(harness__wait_output(&vm, "VNET-DOWN-OK", scaled(120)),
		  "the guest did not receive the %zu bytes intact", plen);
	cr_log_info("TCP host to guest, %zu bytes, checked: %.1f s", plen,
		    harness__now() - t);

	/* Guest to host over TCP; compared here. */
	l = listen_on(PEER, UP_PORT);
	snprintf(cmd, sizeof(cmd), "seq 1 %d | %snc %s %d", LINES, pin, PEER,
		 UP_PORT);
	t = harness__now();
	console(con, cmd);
	up = recv_from_guest(l, &ulen, plen, scaled(240));
	close(l);
	cr_expect(ulen == plen && !memcmp(up, pat, plen),
		  "the guest sent %zu bytes, %s %zu expected", ulen,
		  ulen == plen ? "not the" : "not", plen);
	cr_log_info("TCP guest to host, %zu bytes, checked: %.1f s", ulen,
		    harness__now() - t);
	free(up);
	free(pat);

	/* The worker slept while it had nothing to do, flood included. */
	double cpu = thread_cpu(vm.pid, "slos-net0");
	double wall = harness__now() - t0;
	cr_expect(cpu >= 0 && cpu < 2 + wall / 10,
		  "the net worker used %.1f s of CPU in %.0f s", cpu, wall);
	cr_log_info("the net worker's CPU: %.2f s in %.0f s", cpu, wall);

	console(con, "poweroff -f");
	close(con);
	int st = harness__wait(&vm, scaled(60));
	out = harness__output(&vm);
	cr_expect_eq(st, 0, "status %d:\n%s", st, out);
	const char *stats = strstr(out, "slos: net0 ");
	cr_expect(stats, "no net0 statistics:\n%s", out);
	if (stats)
		cr_expect(strstr(stats, " errors 0 "), "%.200s", stats);
	if (hosts)
		cr_expect(strstr(out, "slos: host 1 forwarded"), "%s", out);
	sanitizer_clean(out);
	free(out);
}

Test(vnet, linux_guest_ping_flood_tcp, .fini = cleanup)
{
	vnet_run(false);
}

/* The lab's nested KVM makes Linux on a second host too slow (see
 * tests/integration/virtio.c); there the one-host case stands for it. */
Test(vnet, linux_guest_cpu_on_other_host, .fini = cleanup)
{
	if (getenv("SLOS_IN_LAB"))
		cr_skip_test("lab: Linux over hosts is too slow there");
	vnet_run(true);
}

/* A tap that cannot be had stops slos before the guest runs, saying
 * which and why (exit status 2, bad input). */
Test(vnet, tap_errors_at_start)
{
	struct run r;

	skip_unless_able();
	/* lo is no tap. */
	harness__run(&r, scaled(30), NULL, "run", "--kernel", harness__testos(),
		     "--net", "tap,name=lo", NULL);
	cr_expect_eq(r.status, 2, "status %d:\n%s", r.status, r.out);
	cr_expect(harness__has(&r, "--net tap,name=lo: TUNSETIFF: Invalid "
				   "argument (that name is an interface "
				   "other than a single-queue tap)"),
		  "%s", r.out);
	harness__free(&r);
	/* Without CAP_NET_ADMIN no new tap (setpriv drops it for slos). */
	if (!tool("setpriv")) {
		cr_log_warn("no setpriv: the missing-capability case is not "
			    "checked");
		return;
	}
	const char *argv[] = {tool("setpriv"),
			      "--bounding-set=-net_admin",
			      "--",
			      harness__bin(),
			      "run",
			      "--kernel",
			      harness__testos(),
			      "--net",
			      "tap,name=vnt-noperm",
			      NULL};
	struct proc p;

	cr_assert(!harness__spawn(&p, argv));
	int st = harness__wait(&p, scaled(30));
	/* Reaped is not read yet: its output comes through a thread. */
	harness__wait_output(&p, "CAP_NET_ADMIN", scaled(10));
	char *out = harness__output(&p);

	cr_expect_eq(st, 2, "status %d:\n%s", st, out);
	cr_expect(strstr(out, "--net tap,name=vnt-noperm: TUNSETIFF: "
			      "Operation not permitted (needs CAP_NET_ADMIN"),
		  "%s", out);
	free(out);
	harness__proc_free(&p);
}
