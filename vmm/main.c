// SPDX-License-Identifier: MIT
/* slos: `run` boots a VM (this process is host 0), `ctl` talks to one. */
#include <errno.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "fabric/transport.h"
#include "vmm/cluster.h"
#include "vmm/host.h"
#include "vmm/pvm.h"
#include "vmm/config.h"
#include "vmm/ctl.h"
#include "vmm/snapshot.h"
#include "vmm/trace.h"
#include "vmm/uart.h"
#include "vmm/vm.h"

#define SLOS_VERSION "0.1"
#define CTRL_A	     0x01

static struct termios saved_tty;
static bool tty_raw;

static void tty_restore(void)
{
	if (tty_raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
	tty_raw = false;
}

/* Raw input only for a terminal: a pipe is forwarded as it comes. */
static void tty_setup(void)
{
	struct termios t;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tty))
		return;
	t = saved_tty;
	t.c_lflag &= ~(ICANON | ECHO | ISIG | IEXTEN);
	t.c_iflag &= ~(IXON | ICRNL);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (!tcsetattr(STDIN_FILENO, TCSANOW, &t)) {
		tty_raw = true;
		atexit(tty_restore);
		fprintf(stderr, "slos: console attached; Ctrl-A x quits\r\n");
	}
}

struct console {
	uint8_t buf[512];
	size_t len, off;
	bool eof, ctrl_a;
};

/* The guest's console: hvc0 with --console virtio, else COM1. */
static size_t console_in(struct vm *vm, const uint8_t *b, size_t n)
{
	return vm->vcon ? virtio__console_in(vm->vcon, b, n)
			: uart__input(vm->uart, b, n);
}

static size_t console_space(struct vm *vm)
{
	return vm->vcon ? virtio__console_space(vm->vcon)
			: uart__rx_space(vm->uart);
}

/* Forward pending stdin bytes the console has room for. */
static void console_pump(struct vm *vm, struct console *c)
{
	if (c->off == c->len && !c->eof) {
		ssize_t n = read(STDIN_FILENO, c->buf, sizeof(c->buf));
		if (n <= 0) {
			if (n == 0 || (errno != EINTR && errno != EAGAIN))
				c->eof = true;
			return;
		}
		c->len = n;
		c->off = 0;
	}
	while (tty_raw && c->off < c->len) {
		uint8_t b = c->buf[c->off];
		if (c->ctrl_a) {
			c->ctrl_a = false;
			if (b == 'x') {
				vm__stop(vm, VM_EXIT_OK, "quit from console");
				c->off = c->len;
				return;
			}
			if (b != CTRL_A)
				break;
		} else if (b == CTRL_A) {
			c->ctrl_a = true;
			c->off++;
			continue;
		}
		if (console_in(vm, &b, 1) != 1)
			return;
		c->off++;
	}
	if (!tty_raw)
		c->off += console_in(vm, c->buf + c->off, c->len - c->off);
}

/* --snapshot-when: the UART's line hook (a vCPU thread) matches and parks
 * every vCPU at once, so the guest stops at the line that matched; the
 * main loop, which owns pausing, takes the snapshot. */
struct snap_trigger {
	struct vm *vm;
	regex_t re;
	int efd;
	bool fired;
};

/* A console trigger fires once, on the first line that matches. */
static bool fires(regex_t *re, bool *fired, const char *line, size_t len)
{
	char buf[UART_LINE_MAX + 1];

	if (*fired)
		return false;
	memcpy(buf, line, len);
	buf[len] = 0;
	if (regexec(re, buf, 0, NULL, 0))
		return false;
	*fired = true;
	return true;
}

static void snap_line(void *arg, const char *line, size_t len)
{
	struct snap_trigger *t = arg;
	uint64_t one = 1;

	if (!fires(&t->re, &t->fired, line, len))
		return;
	/* Park only once the main loop is sure to hear of it: it resumes
	 * or stops the VM after the snapshot. */
	if (write(t->efd, &one, sizeof(one)) < 0)
		perror("slos: snapshot trigger");
	else
		vm__pause_soon(t->vm);
}

/* --spread-when: the same hook, on a match, asks each vCPU to go to its
 * --vcpu-map host (the jumps happen at the vCPUs' next exits). */
struct spread_trigger {
	struct vm *vm;
	regex_t re;
	bool fired;
};

static void spread_line(void *arg, const char *line, size_t len)
{
	struct spread_trigger *t = arg;
	char why[160];

	if (!fires(&t->re, &t->fired, line, len))
		return;
	for (unsigned i = 0; i < t->vm->cfg.nr_vcpus; i++) {
		unsigned h = t->vm->cfg.place[i];
		if (h &&
		    cluster__jump(t->vm, i, h, JUMP_PLACE, why, sizeof(why)))
			fprintf(stderr,
				"slos: --spread-when: vCPU %u stays on host 0: "
				"%s\n",
				i, why);
	}
}

static void snap_fire(struct vm *vm, struct snap_trigger *t)
{
	char err[512];
	uint64_t v;

	/* Fires once (t->fired): the value read is of no interest. */
	if (read(t->efd, &v, sizeof(v)) < 0)
		perror("slos: snapshot trigger");
	if (snapshot__vm(vm, vm->cfg.snapshot_to, true, err, sizeof(err))) {
		fprintf(stderr, "slos: %s\n", err);
		vm__stop(vm, VM_EXIT_CRASH, "snapshot failed");
	}
}

/* SIGINT, SIGTERM and SIGHUP are taken from the first instant of `run`
 * through a signalfd, never by default action: a signal during setup is
 * kept pending and stops the VM in order (its hosts too), whatever stage
 * it came in. SIGPIPE is blocked: a lost peer is an error return. Every
 * thread and child inherits the mask; children exec'd clear it. */
static int signals_take(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sigdelset(&set, SIGPIPE);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* A signal that came during setup: its number (0 if none). */
static int signal_pending(int sfd)
{
	struct signalfd_siginfo si;

	if (read(sfd, &si, sizeof(si)) != sizeof(si))
		return 0;
	fprintf(stderr, "slos: stopped by signal %u during setup\n",
		si.ssi_signo);
	return (int)si.ssi_signo;
}

/* Setup failed: its hosts go, and the status says why. A Ctrl-C reaches
 * the whole process group, so a helper of the setup may have died of the
 * same signal: then the signal is the reason (128+N), not the helper. */
static int setup_failed(int sfd)
{
	int sig = signal_pending(sfd);

	localhosts__stop();
	return sig ? 128 + sig : VM_EXIT_USAGE;
}

static int main_loop(struct vm *vm, int ctl_fd, int sfd,
		     struct snap_trigger *t)
{
	struct console con = { 0 };

	while (!atomic_load(&vm->stopping)) {
		bool want_in = !con.eof && (con.off < con.len ||
					    console_space(vm) > 0);
		struct pollfd p[5] = {
			{ .fd = vm->stop_efd, .events = POLLIN },
			{ .fd = want_in && con.off == con.len ? STDIN_FILENO
							      : -1,
			  .events = POLLIN },
			{ .fd = ctl_fd, .events = POLLIN },
			{ .fd = sfd, .events = POLLIN },
			{ .fd = t ? t->efd : -1, .events = POLLIN },
		};
		/* 20 ms: flush partial console lines, retry queued input. */
		int n = poll(p, 5, 20);
		if (n < 0 && errno != EINTR)
			break;
		uart__flush(vm->uart);
		if (p[1].revents || (con.off < con.len))
			console_pump(vm, &con);
		if (p[2].revents & POLLIN)
			ctl__serve(vm, ctl_fd);
		if (p[4].revents & POLLIN)
			snap_fire(vm, t);
		if (p[3].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				char why[64];
				snprintf(why, sizeof(why), "stopped by signal %u",
					 si.ssi_signo);
				vm__stop(vm, 128 + si.ssi_signo, why);
			}
		}
	}
	return 0;
}

/* The other hosts' addresses and the VM's key: --hosts with --key, or
 * --local-hosts, which makes them. */
static int hosts_setup(struct vm_config *c, char *err, size_t len)
{
	static char addrs[CONFIG_MAX_HOSTS][LOCAL_ADDR_LEN];
	static const char *ptrs[CONFIG_MAX_HOSTS];
	static uint8_t key[FABRIC_KEY_SIZE];

	if (c->nhosts < 2)
		return 0;
	if (c->snapshot_when) {
		snprintf(err, len,
			 "--snapshot-when: snapshots of a VM over several hosts "
			 "are not supported yet (restoring one over hosts is)");
		return -1;
	}
	if (c->local_hosts) {
		if (localhosts__start(c->nhosts, addrs, key, err, len))
			return -1;
	} else {
		unsigned i = 1;
		for (const char *p = c->hosts; *p; i++) {
			size_t n = strcspn(p, ",");
			if (!n || n >= LOCAL_ADDR_LEN) {
				snprintf(err, len, "--hosts '%s': bad address",
					 c->hosts);
				return -1;
			}
			memcpy(addrs[i], p, n);
			addrs[i][n] = 0;
			p += n + (p[n] == ',');
		}
		if (cluster__read_key(c->key_file, key, err, len))
			return -1;
	}
	for (unsigned i = 0; i < CONFIG_MAX_HOSTS; i++)
		ptrs[i] = addrs[i];
	c->host_addrs = ptrs;
	c->key = key;
	return 0;
}

static int cmd_run(int argc, char **argv)
{
	/* Static, like vm: the strings it holds live as long as the
	 * process, whichever way it ends (LeakSanitizer agrees). */
	static struct vm_config cfg;
	char err[256], name[32], path[256];
	static struct vm vm;
	static struct snap_trigger trig = { .efd = -1 };
	static struct spread_trigger spread;
	uint64_t t0 = vm__now_ns();
	int r, ctl_fd, sfd, sig;

	r = config__parse_run(argc, argv, &cfg, err, sizeof(err));
	if (r) {
		if (r > 0) {
			fputs(config_run_usage, stdout);
			return 0;
		}
		fprintf(stderr, "slos: %s\n%s", err, config_run_usage);
		return VM_EXIT_USAGE;
	}
	if (!cfg.name) {
		snprintf(name, sizeof(name), "vm-%d", getpid());
		cfg.name = name;
	}
	cfg.t0_ns = t0;
	sfd = signals_take();
	if (sfd < 0) {
		perror("slos: signalfd");
		return VM_EXIT_USAGE;
	}
	/* Taps first: --local-hosts moves this process to a network
	 * namespace of its own, and the tap belongs where the user is. */
	if (virtio__net_preopen(cfg.vdevs, cfg.nr_vdevs, err, sizeof(err))) {
		fprintf(stderr, "slos: %s\n", err);
		return setup_failed(sfd);
	}
	if (hosts_setup(&cfg, err, sizeof(err))) {
		fprintf(stderr, "slos: %s\n", err);
		return setup_failed(sfd);
	}
	/* The fabric must be usable before any host is asked for anything:
	 * RDMA without a device fails here, not at the first remote fault. */
	const struct fabric_transport *tp = fabric__transport(cfg.fabric);
	if (!tp || fabric__probe(tp, err, sizeof(err))) {
		fprintf(stderr, "slos: %s\n",
			tp ? err : "--fabric: unknown transport");
		return setup_failed(sfd);
	}
	if (vm__init(&vm, &cfg)) {
		vm__exit(&vm);
		return setup_failed(sfd);
	}
	/* After vm__init: a restore sets the vCPU count. */
	if (cfg.trace && trace__open(cfg.trace, vm.cfg.nhosts,
				     vm.cfg.nr_vcpus, err, sizeof(err))) {
		fprintf(stderr, "slos: %s\n", err);
		vm__exit(&vm);
		return setup_failed(sfd);
	}
	ctl_fd = ctl__listen(cfg.name, path, sizeof(path));
	if (ctl_fd < 0) {
		trace__close();
		vm__exit(&vm);
		return setup_failed(sfd);
	}
	if (cfg.snapshot_when) {
		regcomp(&trig.re, cfg.snapshot_when, REG_EXTENDED | REG_NOSUB);
		trig.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (trig.efd < 0) {
			perror("slos: --snapshot-when");
			trace__close();
			regfree(&trig.re);
			close(ctl_fd);
			unlink(path);
			vm__exit(&vm);
			localhosts__stop();
			return VM_EXIT_USAGE;
		}
		trig.vm = &vm;
		uart__on_line(vm.uart, snap_line, &trig);
	}
	if (cfg.spread_when) {
		regcomp(&spread.re, cfg.spread_when, REG_EXTENDED | REG_NOSUB);
		spread.vm = &vm;
		uart__on_line(vm.uart, spread_line, &spread);
	}
	tty_setup();
	/* Stopped before the guest runs: nothing of it to keep. */
	if ((sig = signal_pending(sfd)))
		vm__stop(&vm, 128 + sig, NULL);
	else if (vm__start(&vm) == 0)
		main_loop(&vm, ctl_fd, sfd,
			  cfg.snapshot_when ? &trig : NULL);
	r = vm__wait(&vm);
	/* The members' last events first (they stop after host 0 did). */
	if (cfg.trace)
		cluster__trace_drain(&vm, 5000);
	trace__close();
	tty_restore();
	close(ctl_fd);
	unlink(path);
	if (cfg.stats)
		vm__print_stats(&vm, stderr);
	if (cfg.profile)
		profile__write(cfg.profile, vm.vcpus, cfg.nr_vcpus);
	vm__exit(&vm);
	if (cfg.snapshot_when) {
		regfree(&trig.re);
		close(trig.efd);
	}
	if (cfg.spread_when)
		regfree(&spread.re);
	localhosts__stop();
	close(sfd);
	return r;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: slos run --kernel FILE [options]   boot a VM\n"
		   "       slos run --restore DIR [options]   resume a snapshot\n"
		   "       slos host --listen ADDR:PORT --key FILE   serve VMs\n"
		   "       slos ctl                           list the VMs\n"
		   "       slos ctl NAME status|stop          control a VM\n"
		   "       slos ctl NAME jump VCPU HOST       move a vCPU\n"
		   "       slos ctl NAME move-device DEV HOST move a device\n"
		   "       slos stat NAME                     a VM's counts, live\n"
		   "       slos ctl NAME snapshot DIR [--stop]\n"
		   "       slos kvm                           which KVM /dev/kvm is\n"
		   "       slos version\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return VM_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(argv[1], "ctl"))
		return ctl__client(argc - 1, argv + 1);
	if (!strcmp(argv[1], "host"))
		return host__main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "stat")) {
		if (argc != 3) {
			fprintf(stderr, "usage: slos stat NAME\n");
			return VM_EXIT_USAGE;
		}
		char *a[] = { "ctl", argv[2], "stat", NULL };
		return ctl__client(3, a);
	}
	if (!strcmp(argv[1], "kvm")) {
		enum kvm_kind k = pvm__kvm_kind();

		printf("%s\n", pvm__kvm_kind_name(k));
		return k == KVM_KIND_NONE ? VM_EXIT_USAGE : 0;
	}
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		printf("slos " SLOS_VERSION "\n");
		return 0;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "slos: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return VM_EXIT_USAGE;
}
