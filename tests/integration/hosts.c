// SPDX-License-Identifier: MIT
/*
 * One VM over several hosts (`--local-hosts`, `--hosts` with `slos host`
 * daemons): the test OS over hosts with exact results, eviction under
 * --host-mem, bad input, daemons started here, a host that dies mid-run,
 * attackers on a daemon's port and on a running VM's mesh port, and
 * nothing left behind however host 0 ends.
 *
 * Every wait is bounded here (no criterion .timeout: it leaks in the
 * runner under ASan, see tests/unit/fabric_tcp.c), and whatever a test
 * started is killed by its .fini even when an assertion ends it early.
 * Run with --jobs 1: the machine has two cores, and the timings of the
 * host-death tests are only meaningful with one VM at a time.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/integration/harness.h"

#define RUN_TIMEOUT 90

/* ---- what a test started, cleaned up by .fini whatever happens ---- */

static struct proc *live[16];
static char tmp[64];
static char key_raw[128], key_hex[128], key_other[128];

static void track(struct proc *p)
{
	for (int i = 0; i < 16; i++)
		if (!live[i]) {
			live[i] = p;
			return;
		}
	cr_assert_fail("too many background processes");
}

/* No sanitizer report in what a process (or its daemons) printed: under
 * ASan a member host's error would otherwise only show as a lost host. */
static void sanitizer_clean(const char *out, const char *what)
{
	static const char *const reports[] = { "ERROR: AddressSanitizer",
					       "ERROR: LeakSanitizer",
					       "runtime error: " };
	const char *first = NULL;

	for (size_t i = 0; out && i < sizeof(reports) / sizeof(*reports);
	     i++) {
		const char *r = strstr(out, reports[i]);
		if (r && (!first || r < first))
			first = r;
	}
	if (!first)
		return;
	while (first > out && first[-1] != '\n')
		first--;
	cr_expect_fail("%s: a sanitizer report (the first, cut short):\n%.1500s",
		       what, first);
}

static void release(struct proc *p)
{
	for (int i = 0; i < 16; i++)
		if (live[i] == p)
			live[i] = NULL;
	harness__proc_free(p);
}

/* The whole output of a background process, once it ended, checked. */
static void release_checked(struct proc *p, const char *what)
{
	if (p->pid && harness__wait(p, 0) < 0) {
		kill(p->pid, SIGKILL);
		harness__wait(p, 10);
	}
	harness__wait_output(p, "\1never\1", 5); /* to its end */
	char *out = harness__output(p);
	sanitizer_clean(out, what);
	free(out);
	release(p);
}

static void run_free(struct run *r, const char *what)
{
	sanitizer_clean(r->out, what);
	harness__free(r);
}

static void cleanup(void)
{
	char cmd[128];
	pid_t left[64];

	for (int i = 0; i < 16; i++)
		if (live[i]) {
			harness__proc_free(live[i]);
			live[i] = NULL;
		}
	/* What a failed test left (its check said so already), then the
	 * orphans this process adopted as subreaper: reaped here, or they
	 * would stay zombies of an init that may not reap. */
	int n = harness__descendants(getpid(), "host", left, 64);
	for (int i = 0; i < n && i < 64; i++)
		kill(left[i], SIGKILL);
	for (double end = harness__now() + 5; harness__now() < end;) {
		pid_t r = waitpid(-1, NULL, WNOHANG);
		if (r < 0)
			break; /* no child left */
		if (!r)
			usleep(10 * 1000);
	}
	if (tmp[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
		if (system(cmd))
			cr_log_warn("could not remove %s", tmp);
		tmp[0] = 0;
	}
}

static void write_file(const char *path, const void *b, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, b, n), (ssize_t)n);
	close(fd);
}

/*
 * A temp dir with the VM's key twice, as 32 raw bytes (key_raw) and as 64
 * hex digits and a newline (key_hex), and another key (key_other). The
 * processes whose orphans this test must see come back to it.
 */
static uint8_t the_key[32];

static void setup(void)
{
	uint8_t other[32];
	char hex[66];

	signal(SIGPIPE, SIG_IGN);
	harness__subreaper();
	snprintf(tmp, sizeof(tmp), "/tmp/slos-hosts-XXXXXX");
	cr_assert(mkdtemp(tmp), "mkdtemp");
	cr_assert_eq(getrandom(the_key, 32, 0), 32);
	cr_assert_eq(getrandom(other, 32, 0), 32);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", the_key[i]);
	hex[64] = '\n';
	snprintf(key_raw, sizeof(key_raw), "%s/key", tmp);
	snprintf(key_hex, sizeof(key_hex), "%s/key.hex", tmp);
	snprintf(key_other, sizeof(key_other), "%s/other", tmp);
	write_file(key_raw, the_key, 32);
	write_file(key_hex, hex, 65);
	write_file(key_other, other, 32);
}

#define HOSTS_TEST(name, ...)                                                 \
	Test(hosts, name, .init = setup, .fini = cleanup, ##__VA_ARGS__)

static double scaled(double secs)
{
	return secs * harness__time_scale();
}

/* ---- checks ---- */

/* Live `slos host` processes (daemons, their VM processes) under this
 * test, listed into out. */
static int leftovers(char *out, size_t len)
{
	pid_t pids[32];
	int n = harness__descendants(getpid(), "host", pids, 32);
	size_t at = 0;

	out[0] = 0;
	for (int i = 0; i < n && i < 32 && at + 1 < len; i++) {
		harness__describe(pids[i], out + at, len - at);
		at += strlen(out + at);
		if (at + 2 < len) {
			strcpy(out + at, "; ");
			at += 2;
		}
	}
	return n;
}

/* Nothing of slos's hosts left under this test: at once (now == true) or
 * within a few seconds. */
static void expect_no_leftovers(const char *when, bool now)
{
	char list[2048];
	double end = harness__now() + (now ? 0 : scaled(5));
	int n;

	while ((n = leftovers(list, sizeof(list))) > 0 && harness__now() < end)
		usleep(20 * 1000);
	cr_expect_eq(n, 0, "%s: %d slos host process(es) left: %s", when, n,
		     list);
}

/* Children of a daemon (its VM processes), gone within a few seconds. */
static void expect_no_vms(pid_t daemon, const char *when)
{
	pid_t pids[16];
	double end = harness__now() + scaled(5);
	int n;

	while ((n = harness__children(daemon, pids, 16)) > 0 &&
	       harness__now() < end)
		usleep(20 * 1000);
	cr_expect_eq(n, 0, "%s: daemon %d still has %d VM process(es)", when,
		     (int)daemon, n);
	for (int i = 0; i < n && i < 16; i++) {
		char th[2048];
		harness__threads(pids[i], th, sizeof(th));
		cr_log_info("%s: VM process %d left, its threads: %s", when,
			    (int)pids[i], th);
		char *bt = malloc(16384);
		if (bt && harness__backtrace(pids[i], bt, 16384))
			cr_log_info("its stacks:\n%s", bt);
		free(bt);
	}
}

/* The line of out that p points into, as a string (static buffer). */
static const char *line_at(const char *out, const char *p)
{
	static char l[512];

	while (p > out && p[-1] != '\n')
		p--;
	snprintf(l, sizeof(l), "%.*s", (int)strcspn(p, "\n"), p);
	return l;
}

/* The line of out that holds `what`, as a string (static buffer). */
static const char *line_of(const char *out, const char *what)
{
	const char *p = out ? strstr(out, what) : NULL;

	return p ? line_at(out, p) : "";
}

/*
 * Silence is taken for death after the fabric's dead time: 800 ms, and
 * 3 s where slos runs under PVM or on an emulated host, the lab
 * (vmm/cluster.c, cluster__dead_ms: emulated guest ring 0 can keep a
 * 2-core host's other threads off the CPU for ~1 s); 3x that in an ASan
 * build. The message says how long the peer had been quiet: "no frame or
 * heartbeat for N ms", N just past the dead time. The dead time that line
 * shows (checked to be one of those of this build), or 3 s if it shows
 * none.
 */
static double dead_time(const char *line)
{
	const char *p = strstr(line, "no frame or heartbeat for ");
	double asan = harness__asan() ? 3 : 1;
	int ms;

	if (!p || sscanf(p, "no frame or heartbeat for %d ms", &ms) != 1) {
		cr_expect_fail("no dead time in '%s'", line);
		return 3 * asan;
	}
	double dead = (ms < 2000 * asan ? 0.8 : 3) * asan;
	cr_expect(ms >= dead * 1000 && ms < dead * 1000 + scaled(0.5) * 1000,
		  "quiet for %d ms: not just past %.1f s, or %.1f s under PVM: "
		  "%s",
		  ms, 0.8 * asan, 3 * asan, line);
	return dead;
}

/* The sum of a "NAME N" counter over every "slos: host H dsm:" line. */
static unsigned long long dsm_sum(const char *out, const char *name)
{
	unsigned long long sum = 0;

	for (const char *p = out; (p = strstr(p, "dsm: faults")); p++) {
		const char *eol = strchr(p, '\n');
		const char *f = strstr(p, name);
		if (f && (!eol || f < eol))
			sum += strtoull(f + strlen(name), NULL, 10);
	}
	return sum;
}

/* ---- 1. the test OS over hosts, exact results ---- */

static const char *vcpu_map(int hosts)
{
	return hosts == 2 ? "0,1" : "0,1,2";
}

/*
 * `test` (with args) on `hosts` local hosts, one vCPU on each; must pass,
 * print `want` (an exact result line, or NULL), have really spread (every
 * vCPU up, pages received from other hosts), and leave nothing behind.
 */
static void over_hosts_map_t(int hosts, int vcpus, const char *map,
			     const char *test, const char *args,
			     const char *memmap, const char *want,
			     double timeout)
{
	char cmdline[128], pass[64], n[8], v[8], cpus[32];
	struct run r;

	snprintf(cmdline, sizeof(cmdline), "test=%s%s%s", test,
		 args ? " " : "", args ? args : "");
	snprintf(pass, sizeof(pass), "TEST %s PASS", test);
	snprintf(n, sizeof(n), "%d", hosts);
	snprintf(v, sizeof(v), "%d", vcpus);
	snprintf(cpus, sizeof(cpus), "testos: cpus=%d/%d ", vcpus, vcpus);
	harness__run(&r, timeout, NULL, "run", "--kernel",
		     harness__testos(), "--local-hosts", n, "--vcpus", v,
		     "--vcpu-map", map, "--mem-map",
		     memmap ? memmap : "contiguous", "--stats", "--cmdline",
		     cmdline, NULL);
	cr_log_info("%s over %d hosts (vCPUs on %s%s%s): %.1f s", cmdline,
		    hosts, map, memmap ? ", " : "", memmap ? memmap : "",
		    r.secs);
	cr_expect_eq(r.status, 0, "%s over %d hosts: status %d after %.1f s:\n%s",
		     cmdline, hosts, r.status, r.secs, r.out);
	cr_expect(harness__has(&r, pass), "no '%s' in:\n%s", pass, r.out);
	cr_expect(harness__has(&r, cpus), "not every vCPU came up ('%s'):\n%s",
		  cpus, r.out);
	if (want)
		cr_expect(harness__has(&r, want), "no '%s' in:\n%s", want,
			  r.out);
	cr_expect_gt(dsm_sum(r.out, "received "), 0,
		     "host 0 received no DSM message:\n%s", r.out);
	run_free(&r, "slos");
	expect_no_leftovers("after the run", true);
}

static void over_hosts_map(int hosts, int vcpus, const char *map,
			   const char *test, const char *args,
			   const char *memmap, const char *want)
{
	over_hosts_map_t(hosts, vcpus, map, test, args, memmap, want,
			 RUN_TIMEOUT);
}

static void over_hosts(int hosts, const char *test, const char *args,
		       const char *memmap, const char *want)
{
	over_hosts_map(hosts, hosts, vcpu_map(hosts), test, args, memmap,
		       want);
}

HOSTS_TEST(counter_2)
{
	over_hosts(2, "counter", "iters=200000", NULL,
		   "counter: total=400000 expected=400000 cpus=2 "
		   "iters=200000");
}

HOSTS_TEST(counter_3)
{
	over_hosts(3, "counter", "iters=200000", NULL,
		   "counter: total=600000 expected=600000 cpus=3 "
		   "iters=200000");
}

HOSTS_TEST(memwalk_2)
{
	over_hosts(2, "memwalk", "mib=16", NULL, ", 0 bad words");
}

HOSTS_TEST(memwalk_3)
{
	over_hosts(3, "memwalk", "mib=16", NULL, ", 0 bad words");
}

/* R x K x (N - 1) observations: every other CPU sees every round of
 * every pair. */
HOSTS_TEST(mp_litmus_2)
{
	over_hosts(2, "mp-litmus", NULL, NULL,
		   "rounds=300 pairs=8 cpus=2 observed=2400 violations=0");
}

HOSTS_TEST(mp_litmus_3)
{
	over_hosts(3, "mp-litmus", NULL, NULL,
		   "rounds=300 pairs=8 cpus=3 observed=4800 violations=0");
}

HOSTS_TEST(mp_litmus_2_interleave)
{
	over_hosts(2, "mp-litmus", NULL, "interleave",
		   "rounds=300 pairs=8 cpus=2 observed=2400 violations=0");
}

HOSTS_TEST(mp_litmus_3_interleave)
{
	over_hosts(3, "mp-litmus", NULL, "interleave",
		   "rounds=300 pairs=8 cpus=3 observed=4800 violations=0");
}

HOSTS_TEST(pingpong_page_2)
{
	over_hosts(2, "pingpong-page", "rounds=200", NULL,
		   "rounds=200 cpus=2 turn=400 counts=200,200 ");
}

HOSTS_TEST(pingpong_page_3)
{
	over_hosts(3, "pingpong-page", "rounds=200", NULL,
		   "rounds=200 cpus=3 turn=600 counts=200,200,200 ");
}

/* More vCPUs than hosts: two vCPUs in each member VMM process. */
HOSTS_TEST(counter_4_vcpus_on_2_hosts)
{
	over_hosts_map(2, 4, "0,1,0,1", "counter", "iters=200000", NULL,
		       "counter: total=800000 expected=800000 cpus=4 "
		       "iters=200000");
}

/* As many hosts as there may be (CONFIG_MAX_HOSTS), a vCPU on each. */
HOSTS_TEST(counter_8_hosts)
{
	over_hosts_map(8, 8, "0,1,2,3,4,5,6,7", "counter", "iters=10000",
		       NULL,
		       "counter: total=80000 expected=80000 cpus=8 "
		       "iters=10000");
}

/* Every AP started on its own host checks in, in order. */
HOSTS_TEST(smp_hello_3)
{
	over_hosts_map(3, 4, "0,2,1,2", "smp-hello", NULL, NULL,
		       "cpu 0 up (apic 0, ring 3)\n"
		       "cpu 1 up (apic 1, ring 3)\n"
		       "cpu 2 up (apic 2, ring 3)\n"
		       "cpu 3 up (apic 3, ring 3)\n"
		       "smp-hello: 4/4 cpus");
}

/* ---- interrupts between hosts ---- */

/*
 * IPIs between vCPUs on different hosts (docs/ipi.md): every round of
 * ipi-pingpong must come back (a lost IPI fails its round after 5 s), and
 * the copies must have caught them (the interrupts line of --stats).
 */
static void pingpong(int hosts, int vcpus, const char *map, const char *args,
		     const char *want)
{
	over_hosts_map_t(hosts, vcpus, map, "ipi-pingpong", args, NULL, want,
			 RUN_TIMEOUT * harness__time_scale());
}

HOSTS_TEST(ipi_pingpong_2)
{
	pingpong(2, 2, "0,1", "rounds=300", "waiting by spinning, jumps 0+0");
}

/* The partner halted (woken by the IPI), on the third host. */
HOSTS_TEST(ipi_pingpong_3_hlt)
{
	pingpong(3, 3, "0,2,1", "rounds=300 hlt=1",
		 "waiting by hlt, jumps 0+0");
}

/*
 * The guest writes int3 over host 0's trap (vmm/ipi.c: TRAP_GPA, its
 * 256 KiB) before the pings, which vCPU 1's copy on host 0 takes there.
 * The code and tables are a read-only slot: the writes are dropped (only
 * the stacks, from 0x8000 on, take them) and every round comes back.
 */
HOSTS_TEST(ipi_trap_scribbled)
{
	static const char cmdline[] =
	    "test=ipi-pingpong rounds=100 scribble=0xfe000000 "
	    "scribble_len=0x40000";
	struct run r;

	harness__run(&r, RUN_TIMEOUT * harness__time_scale(), NULL, "run",
		     "--kernel", harness__testos(), "--local-hosts", "2",
		     "--vcpus", "2", "--vcpu-map", "0,1", "--stats",
		     "--cmdline", cmdline, NULL);
	cr_log_info("%s over 2 hosts: %.1f s", cmdline, r.secs);
	if (harness__has(&r, "trap writable")) {
		run_free(&r, "slos");
		cr_skip_test("this KVM has no read-only memory slots");
	}
	cr_expect_eq(r.status, 0, "status %d after %.1f s:\n%s", r.status,
		     r.secs, r.out);
	cr_expect(harness__has(&r, "TEST ipi-pingpong PASS"), "%s", r.out);
	cr_expect(harness__has(&r, "scribbled 262144 bytes at 0xfe000000, "
				   "28672 words kept"),
		  "the stacks alone should keep the writes:\n%s", r.out);
	cr_expect(harness__has(&r, "lost 0; trap read-only"), "%s", r.out);
	run_free(&r, "slos");
	expect_no_leftovers("after the run", true);
}

/* Both vCPUs keep jumping round 3 hosts while they ping-pong: IPIs chase
 * vCPUs on their way and LAPICs change hands under them. */
HOSTS_TEST(ipi_chase_3)
{
	pingpong(3, 2, "0,1", "rounds=200 hop=4", "jumps 54+");
}

/*
 * The ACPI wakeup mailbox takes garbage: a wakeup of no such CPU, of the
 * boot CPU, of a running AP, an unknown command, an entry above the AP's
 * identity map, a write past the registers (test OS mailbox=abuse). Each
 * refusal is one line, every request still reads back as taken, and the
 * APs (one on host 0, one on host 1) start and the VM ends cleanly.
 */
HOSTS_TEST(mailbox_refusals)
{
	static const char *const refused[] = {
	    "ACPI wakeup mailbox: wakeup of APIC id 8 refused: no such CPU "
	    "(0-2)\n",
	    "ACPI wakeup mailbox: wakeup of APIC id 0 refused: the boot CPU\n",
	    "ACPI wakeup mailbox: command 7 refused (0 noop, 1 wakeup)\n",
	    "ACPI wakeup mailbox: wakeup of APIC id 1 refused: vector "
	    "0x10000000000 is not below 4 GiB\n",
	    "ACPI wakeup mailbox: wakeup of APIC id 1 refused: already woken",
	};
	struct run r;

	harness__run(&r, RUN_TIMEOUT, NULL, "run", "--kernel",
		     harness__testos(), "--local-hosts", "2", "--vcpus", "3",
		     "--vcpu-map", "0,1,0", "--cmdline",
		     "test=smp-hello mailbox=abuse", NULL);
	cr_expect_eq(r.status, 0, "status %d after %.1f s:\n%s", r.status,
		     r.secs, r.out);
	cr_expect(harness__has(&r, "TEST smp-hello PASS"), "%s", r.out);
	cr_expect(harness__has(&r, "smp-hello: 3/3 cpus"), "%s", r.out);
	cr_expect(harness__has(&r, "testos: APs woken through the ACPI "
				   "mailbox at 0xfeb00000"),
		  "%s", r.out);
	cr_expect(!harness__has(&r, "boot problem"), "%s", r.out);
	for (size_t i = 0; i < sizeof(refused) / sizeof(*refused); i++)
		cr_expect(harness__has(&r, refused[i]), "no '%s' in:\n%s",
			  refused[i], r.out);
	run_free(&r, "slos");
	expect_no_leftovers("after the run", true);
}

/* ---- 2. a page budget below the working set ---- */

static void evicting(int hosts, const char *memmap)
{
	char n[8];
	struct run r;

	snprintf(n, sizeof(n), "%d", hosts);
	harness__run(&r, RUN_TIMEOUT, NULL, "run", "--kernel",
		     harness__testos(), "--local-hosts", n, "--vcpus", n,
		     "--vcpu-map", vcpu_map(hosts), "--mem-map", memmap,
		     "--host-mem", "4M", "--stats", "--cmdline",
		     "test=memwalk mib=16", NULL);
	cr_log_info("memwalk mib=16, %d hosts, %s, --host-mem 4M: %.1f s; %s",
		    hosts, memmap, r.secs, line_of(r.out, "dsm: faults"));
	cr_expect_eq(r.status, 0, "status %d after %.1f s:\n%s", r.status,
		     r.secs, r.out);
	cr_expect(harness__has(&r, "TEST memwalk PASS"), "%s", r.out);
	cr_expect(harness__has(&r, ", 0 bad words"), "%s", r.out);
	/* "evicted N S M M": a 4 MiB budget cannot hold a 16 MiB walk */
	cr_expect(harness__has(&r, "dsm: faults"), "no DSM stats:\n%s", r.out);
	unsigned long long s = 0, m = 0;
	for (const char *p = r.out; (p = strstr(p, "; evicted ")); p++) {
		unsigned long long a, b;
		if (sscanf(p, "; evicted %llu S %llu M", &a, &b) == 2) {
			s += a;
			m += b;
		}
	}
	cr_expect(s + m > 0, "no page was evicted:\n%s", r.out);
	run_free(&r, "slos");
	expect_no_leftovers("after the run", true);
}

/* ---- 2. vCPU jumps ---- */

/*
 * The test OS's CPU `cpu` asks to move to the next host n times while it
 * computes: exact checksum, registers intact, timer still ticking. 1000
 * jumps; 200 under ASan, whose pass is for memory errors (each jump moves
 * a few pages too: ~60 ms a jump in the lab).
 */
static void jumps(int hosts, int vcpus, const char *map, int cpu)
{
	int n = harness__asan() ? 200 : 1000;
	char args[64], want[64];

	snprintf(args, sizeof(args), "n=%d cpu=%d", n, cpu);
	snprintf(want, sizeof(want), "jump: n=%d hosts=%d ", n, hosts);
	over_hosts_map_t(hosts, vcpus, map, "jump", args, NULL, want,
			 RUN_TIMEOUT * harness__time_scale());
}

HOSTS_TEST(jump_2)
{
	jumps(2, 1, "0", 0);
}

/* vCPU 1 starts on host 1 and goes round all three. */
HOSTS_TEST(jump_3)
{
	jumps(3, 2, "0,1", 1);
}

/* --trace over 2 hosts: valid trace-event JSON with every jump in it
 * (each at its destination, "guest" the reason, state bytes > 0) and the
 * vCPU's runs on both hosts. */
HOSTS_TEST(trace_of_jumps)
{
	char trace[300], cmd[1024];
	struct run r;

	snprintf(trace, sizeof(trace), "%s/trace.json", tmp);
	harness__run(&r, RUN_TIMEOUT * harness__time_scale(), NULL, "run",
		     "--kernel", harness__testos(), "--local-hosts", "2",
		     "--vcpus", "2", "--vcpu-map", "0,1", "--trace", trace,
		     "--cmdline", "test=jump n=40 cpu=1", NULL);
	cr_expect_eq(r.status, 0, "status %d:\n%s", r.status, r.out);
	run_free(&r, "slos");
	snprintf(cmd, sizeof(cmd),
		 "python3 -c '\n"
		 "import json, sys\n"
		 "e = json.load(open(sys.argv[1]))[\"traceEvents\"]\n"
		 "j = [x for x in e if x[\"name\"] == \"jump\"]\n"
		 "assert len(j) == 40, len(j)\n"
		 "assert {x[\"pid\"] for x in j} == {0, 1}\n"
		 "assert all(x[\"args\"][\"reason\"] == \"guest\" and\n"
		 "           x[\"args\"][\"state_bytes\"] > 0 and\n"
		 "           x[\"args\"][\"from\"] != x[\"pid\"] for x in j)\n"
		 "b = [x for x in e if x[\"name\"] == \"run\" and x[\"ph\"] == \"B\"]\n"
		 "assert len(b) >= 42 and {x[\"pid\"] for x in b} == {0, 1}, len(b)\n"
		 /* vCPU 1's UART output from host 1: forwarded */
		 "i = [x for x in e if x[\"name\"] == \"io\"]\n"
		 "assert i and all(x[\"pid\"] == 1 and x[\"args\"][\"host\"] == 0\n"
		 "                 for x in i), len(i)\n"
		 "' %s",
		 trace);
	cr_expect_eq(system(cmd), 0, "%s is not the trace expected", trace);
}

/*
 * counter with --balance locality: both vCPUs hammer one word homed on
 * host 0, so vCPU 1's faults are all served from there and the policy
 * may move it (how soon depends on the host's speed); the total must be
 * exact whatever it does, and the trace must hold its decisions.
 */
HOSTS_TEST(counter_balanced_2)
{
	char trace[300], cmd[1024];
	struct run r;

	snprintf(trace, sizeof(trace), "%s/balance.json", tmp);
	harness__run(&r, RUN_TIMEOUT * harness__time_scale(), NULL, "run",
		     "--kernel", harness__testos(), "--local-hosts", "2",
		     "--vcpus", "2", "--vcpu-map", "0,1", "--balance",
		     "locality", "--stats", "--trace", trace, "--cmdline",
		     "test=counter iters=1000000", NULL);
	cr_log_info("counter with the balancer: %.1f s", r.secs);
	cr_expect_eq(r.status, 0, "status %d:\n%s", r.status, r.out);
	cr_expect(harness__has(&r, "counter: total=2000000 expected=2000000"),
		  "%s", r.out);
	run_free(&r, "slos");
	snprintf(cmd, sizeof(cmd),
		 "python3 -c '\n"
		 "import json, sys\n"
		 "e = json.load(open(sys.argv[1]))[\"traceEvents\"]\n"
		 "f = [x for x in e if x[\"name\"] == \"fault\"]\n"
		 "assert f and all(x[\"args\"][\"home\"] in (0, 1) for x in f)\n"
		 "j = [x for x in e if x[\"name\"] == \"jump\"]\n"
		 "assert all(x[\"args\"][\"reason\"] == \"balancer\" for x in j)\n"
		 "print(\"balancer: %%d jumps, %%d faults traced\" %% (len(j), len(f)))\n"
		 "' %s",
		 trace);
	cr_expect_eq(system(cmd), 0, "%s is not the trace expected", trace);
}

/* `slos ctl NAME status` until it answers with `want` in it. */
static bool ctl_shows(const char *name, const char *want, double secs)
{
	double end = harness__now() + secs;
	struct run r;

	for (;;) {
		harness__run(&r, 10, NULL, "ctl", name, "status", NULL);
		bool ok = r.status == 0 && harness__has(&r, want);
		harness__free(&r);
		if (ok)
			return true;
		if (harness__now() > end)
			return false;
		usleep(100 * 1000);
	}
}

static void ctl_jump(const char *name, const char *vcpu, const char *host,
		     int status, const char *want)
{
	struct run r;

	harness__run(&r, scaled(30), NULL, "ctl", name, "jump", vcpu, host,
		     NULL);
	cr_expect_eq(r.status, status, "jump %s %s: status %d: %s", vcpu,
		     host, r.status, r.out);
	cr_expect(harness__has(&r, want), "jump %s %s: no '%s' in: %s", vcpu,
		  host, want, r.out);
	harness__free(&r);
}

/* Jumps from outside: the boot CPU and an AP, both ways; refusals of a
 * host or vCPU that does not exist, with the vCPU left running. */
HOSTS_TEST(ctl_jump)
{
	char name[32];
	struct proc vm;
	struct run r;

	snprintf(name, sizeof(name), "jump%d", getpid());
	cr_assert_eq(harness__start(&vm, "run", "--kernel", harness__testos(),
				    "--local-hosts", "2", "--vcpus", "2",
				    "--vcpu-map", "0,1", "--name", name,
				    "--cmdline", "test=counter iters=4000000000",
				    NULL),
		     0);
	track(&vm);
	cr_assert(ctl_shows(name, "\"hosts\":2,\"where\":[0,1]", scaled(30)),
		  "no status over 2 hosts:\n%s", harness__output(&vm));
	cr_assert(harness__wait_output(&vm, "testos: cmdline", scaled(30)),
		  "the VM did not start:\n%s", harness__output(&vm));
	ctl_jump(name, "1", "0", 0, "{\"vcpu\":1,\"from\":1,\"host\":0}");
	cr_expect(ctl_shows(name, "\"where\":[0,0]", 1), "vCPU 1 not on 0");
	ctl_jump(name, "0", "1", 0, "{\"vcpu\":0,\"from\":0,\"host\":1}");
	cr_expect(ctl_shows(name, "\"where\":[1,0]", 1), "vCPU 0 not on 1");
	ctl_jump(name, "0", "0", 0, "\"host\":0}");
	ctl_jump(name, "1", "1", 0, "\"host\":1}");
	ctl_jump(name, "1", "2", 1, "no vCPU 1 or no host 2");
	ctl_jump(name, "2", "0", 1, "no vCPU 2 or no host 0");
	ctl_jump(name, "x", "0", 1, "usage: jump VCPU HOST");
	cr_expect(ctl_shows(name, "\"where\":[0,1]", 1),
		  "refusals moved a vCPU");
	harness__run(&r, 10, NULL, "ctl", NULL);
	cr_expect(harness__has(&r, name), "`slos ctl` does not list %s: %s",
		  name, r.out);
	harness__free(&r);
	/* `slos stat`, live: both hosts' counts, the jumps' histograms. */
	harness__run(&r, 10, NULL, "stat", name, NULL);
	cr_expect_eq(r.status, 0, "stat: %s", r.out);
	cr_expect(harness__has(&r, "2 vCPUs, 2 hosts"), "stat: %s", r.out);
	cr_expect(harness__has(&r, "slos: vcpu 0 exits"), "stat: %s", r.out);
	cr_expect(harness__has(&r, "slos: host 1 vcpu 1 exits"), "stat: %s",
		  r.out);
	cr_expect(harness__has(&r, "jump us log2 ["), "stat: %s", r.out);
	cr_expect(harness__has(&r, "slos: host 1 jumps in"), "stat: %s",
		  r.out);
	cr_expect(harness__has(&r, "slos: host 1 dsm: faults"), "stat: %s",
		  r.out);
	harness__free(&r);
	harness__run(&r, 10, NULL, "stat", "no-such-vm", NULL);
	cr_expect_neq(r.status, 0, "stat of no VM: %s", r.out);
	harness__free(&r);
	harness__run(&r, 10, NULL, "ctl", name, "stop", NULL);
	cr_expect_eq(r.status, 0, "stop: %s", r.out);
	harness__free(&r);
	int st = harness__wait(&vm, scaled(20));
	cr_expect_eq(st, 0, "after the jumps: status %d:\n%s", st,
		     harness__output(&vm));
	cr_expect(!harness__output_has(&vm, "failed"), "%s",
		  harness__output(&vm));
	release_checked(&vm, "host 0");
	expect_no_leftovers("after the run", false);
}

HOSTS_TEST(host_mem_evicts_2)
{
	evicting(2, "contiguous");
}

HOSTS_TEST(host_mem_evicts_3_interleave)
{
	evicting(3, "interleave");
}

/* ---- 3. bad input ---- */

/* Status 2, and a line that starts "slos: " and holds every one of the
 * (NULL-terminated) pieces. */
static void expect_refusal(struct run *r, const char *what, ...)
	__attribute__((sentinel));
static void expect_refusal(struct run *r, const char *what, ...)
{
	const char *first, *piece;
	va_list ap;

	cr_expect_eq(r->status, 2, "%s: status %d after %.1f s:\n%s", what,
		     r->status, r->secs, r->out);
	va_start(ap, what);
	first = va_arg(ap, const char *);
	const char *l = line_of(r->out, first);
	cr_expect(!strncmp(l, "slos: ", 6), "%s: no 'slos: ...%s' line in:\n%s",
		  what, first, r->out);
	while ((piece = va_arg(ap, const char *)))
		cr_expect(strstr(l, piece), "%s: '%s' lacks '%s'", what, l,
			  piece);
	va_end(ap);
	cr_log_info("%s: %s", what, l);
	run_free(r, what);
}

/* A loopback port nothing listens on (bound, then released). */
static void free_port(char *addr, size_t len)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sl), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	snprintf(addr, len, "127.0.0.1:%u", ntohs(sa.sin_port));
}

static struct proc *daemon_at(struct proc *d, const char *listen,
			      const char *key, char *addr, size_t len)
{
	int r = harness__daemon_at(d, listen, key, addr, len);

	track(d);
	if (r) {
		char *o = harness__output(d);
		cr_assert_fail("slos host did not start:\n%s", o);
	}
	return d;
}

static struct proc *daemon_start(struct proc *d, const char *key, char *addr,
				 size_t len)
{
	return daemon_at(d, "127.0.0.1:0", key, addr, len);
}

HOSTS_TEST(bad_input_unreachable_host)
{
	char addr[64], want[96];
	struct run r;

	free_port(addr, sizeof(addr));
	snprintf(want, sizeof(want), "slos: host 1 (%s): ", addr);
	harness__run(&r, RUN_TIMEOUT, NULL, "run", "--kernel",
		     harness__testos(), "--hosts", addr, "--key", key_raw,
		     "--vcpus", "2", "--vcpu-map", "0,1", "--cmdline",
		     "test=counter", NULL);
	cr_expect_lt(r.secs, scaled(10), "%.1f s to find nothing there",
		     r.secs);
	expect_refusal(&r, "nothing listens", want, "connection refused",
		       NULL);
}

HOSTS_TEST(bad_input_wrong_key)
{
	struct proc d;
	char addr[64], want[96];
	struct run r;

	daemon_start(&d, key_raw, addr, sizeof(addr));
	snprintf(want, sizeof(want), "slos: host 1 (%s): ", addr);
	harness__run(&r, RUN_TIMEOUT, NULL, "run", "--kernel",
		     harness__testos(), "--hosts", addr, "--key", key_other,
		     "--vcpus", "2", "--vcpu-map", "0,1", "--cmdline",
		     "test=counter", NULL);
	expect_refusal(&r, "wrong key", want, "key", NULL);
	/* the daemon says so too, and serves the right key after it */
	cr_expect(harness__wait_output(&d, "handshake refused: the peer does "
					   "not hold VM",
				       scaled(5)),
		  "the daemon did not log the refusal");
	harness__run(&r, RUN_TIMEOUT, NULL, "run", "--kernel",
		     harness__testos(), "--hosts", addr, "--key", key_hex,
		     "--vcpus", "2", "--vcpu-map", "0,1", "--cmdline",
		     "test=counter iters=10000", NULL);
	cr_expect_eq(r.status, 0, "right key after a wrong one: %d:\n%s",
		     r.status, r.out);
	cr_expect(harness__has(&r, "TEST counter PASS"), "%s", r.out);
	run_free(&r, "slos");
	expect_no_vms(d.pid, "after the runs");
	release_checked(&d, "daemon");
}

/* "A," names a second host with no address: refused naming it (after
 * host 1 was reached: its VM process must not stay). */
HOSTS_TEST(bad_input_empty_host_address)
{
	struct proc d;
	char addr[64], list[80];
	struct run r;

	daemon_start(&d, key_raw, addr, sizeof(addr));
	snprintf(list, sizeof(list), "%s,", addr);
	harness__run(&r, RUN_TIMEOUT, NULL, "run", "--kernel",
		     harness__testos(), "--hosts", list, "--key", key_raw,
		     "--vcpus", "2", "--vcpu-map", "0,1", "--cmdline",
		     "test=counter", NULL);
	expect_refusal(&r, "trailing comma", "slos: --hosts", "no empty entry",
		       NULL);
	expect_no_vms(d.pid, "after host 0 gave up");
	release_checked(&d, "daemon");
}

/* The first host answers, the second does not: host 0 names the second,
 * and the first one's VM process does not stay behind. */
HOSTS_TEST(bad_input_second_host_unreachable)
{
	struct proc d;
	char addr[64], nowhere[64], both[160], want[96];
	struct run r;

	daemon_start(&d, key_raw, addr, sizeof(addr));
	free_port(nowhere, sizeof(nowhere));
	snprintf(both, sizeof(both), "%s,%s", addr, nowhere);
	snprintf(want, sizeof(want), "slos: host 2 (%s): ", nowhere);
	harness__run(&r, RUN_TIMEOUT, NULL, "run", "--kernel",
		     harness__testos(), "--hosts", both, "--key", key_raw,
		     "--vcpus", "3", "--vcpu-map", "0,1,2", "--cmdline",
		     "test=counter", NULL);
	expect_refusal(&r, "second host unreachable", want,
		       "connection refused", NULL);
	expect_no_vms(d.pid, "after host 0 gave up");
	release_checked(&d, "daemon");
}

static void refused_args(const char *what, const char *msg, ...)
	__attribute__((sentinel));
static void refused_args(const char *what, const char *msg, ...)
{
	const char *argv[40] = { harness__bin(), "run", "--kernel",
				 harness__testos(), "--cmdline",
				 "test=counter" };
	int n = 6;
	va_list ap;
	struct proc p;

	va_start(ap, msg);
	for (const char *a; n < 39 && (a = va_arg(ap, const char *));)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	cr_assert_eq(harness__spawn(&p, argv), 0);
	track(&p);
	int st = harness__wait(&p, scaled(30));
	harness__wait_output(&p, "\1never\1", 5); /* its output, whole */
	struct run r = { .status = st, .out = harness__output(&p),
			 .secs = p.t_exit - p.t0 };
	r.len = strlen(r.out);
	release_checked(&p, "host 0");
	expect_refusal(&r, what, msg, NULL);
	expect_no_leftovers(what, true);
}

HOSTS_TEST(bad_input_options)
{
	refused_args("vCPU 0 elsewhere",
		     "--vcpu-map '1,0': vCPU 0 (the boot CPU) runs on the I/O "
		     "host",
		     "--local-hosts", "2", "--vcpus", "2", "--vcpu-map", "1,0",
		     NULL);
	refused_args("too few entries", "--vcpu-map '0,1': 2 entries for 3 vCPUs",
		     "--local-hosts", "2", "--vcpus", "3", "--vcpu-map", "0,1",
		     NULL);
	refused_args("too many entries",
		     "--vcpu-map '0,1,1': more entries than the 2 vCPUs",
		     "--local-hosts", "2", "--vcpus", "2", "--vcpu-map",
		     "0,1,1", NULL);
	refused_args("host out of range",
		     "--vcpu-map '0,2': entry 1 is not a host from 0 to 1",
		     "--local-hosts", "2", "--vcpus", "2", "--vcpu-map", "0,2",
		     NULL);
	refused_args("host out of range, --hosts",
		     "--vcpu-map '0,1,3': entry 2 is not a host from 0 to 2",
		     "--hosts", "127.0.0.1:1,127.0.0.1:2", "--key", key_raw,
		     "--vcpus", "3", "--vcpu-map", "0,1,3", NULL);
	refused_args("a map with one host", "entry 1 is not a host from 0 to 0",
		     "--vcpus", "2", "--vcpu-map", "0,1", NULL);
	refused_args("--hosts without --key", "--hosts needs --key FILE",
		     "--hosts", "127.0.0.1:1", "--vcpus", "2", NULL);
	refused_args("--local-hosts with --hosts",
		     "--hosts and --local-hosts do not go together",
		     "--local-hosts", "2", "--hosts", "127.0.0.1:1", "--key",
		     key_raw, NULL);
	refused_args("bad --mem-map", "--mem-map 'stripes'", "--local-hosts",
		     "2", "--mem-map", "stripes", NULL);
	refused_args("bad --host-mem", "--host-mem '100K'", "--local-hosts",
		     "2", "--host-mem", "100K", NULL);
	refused_args("bad --local-hosts", "--local-hosts '0'",
		     "--local-hosts", "0", NULL);
	refused_args("too many local hosts", "--local-hosts '9': 1 to 8 hosts",
		     "--local-hosts", "9", NULL);
	refused_args("too many hosts", "--hosts: at most 7 hosts", "--hosts",
		     "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3,127.0.0.1:4,"
		     "127.0.0.1:5,127.0.0.1:6,127.0.0.1:7,127.0.0.1:8",
		     "--key", key_raw, NULL);
}

HOSTS_TEST(bad_input_keys)
{
	char short_key[160], missing[160];

	snprintf(short_key, sizeof(short_key), "%s/short", tmp);
	snprintf(missing, sizeof(missing), "%s/none", tmp);
	write_file(short_key, "0123456789abcdef\n", 17);
	refused_args("short key", "need 32 bytes, or 64 hex digits", "--hosts",
		     "127.0.0.1:1", "--key", short_key, "--vcpus", "2",
		     "--vcpu-map", "0,1", NULL);
	refused_args("missing key", "No such file", "--hosts", "127.0.0.1:1",
		     "--key", missing, "--vcpus", "2", "--vcpu-map", "0,1",
		     NULL);

	/* and the daemon refuses them the same way */
	struct run r;
	harness__run(&r, 30, NULL, "host", "--listen", "127.0.0.1:0", "--key",
		     short_key, NULL);
	cr_expect_eq(r.status, 2, "slos host with a short key: %d\n%s",
		     r.status, r.out);
	cr_expect(harness__has(&r, "need 32 bytes, or 64 hex digits"), "%s",
		  r.out);
	run_free(&r, "slos");
	harness__run(&r, 30, NULL, "host", "--listen", "nowhere:1", "--key",
		     key_raw, NULL);
	cr_expect_eq(r.status, 2, "slos host on a bad address: %d\n%s",
		     r.status, r.out);
	cr_expect(harness__has(&r, "bad address 'nowhere:1'"), "%s", r.out);
	run_free(&r, "slos");
}

/* ---- 4. daemons started here ---- */

/* A daemon's VM process ended with status 0; if not, what the daemon and
 * the member said. */
static void expect_vm_ended(struct proc *d, const char *what)
{
	if (harness__wait_output(d, "ended (status 0)", scaled(5)))
		return;
	char *o = harness__output(d);
	cr_expect_fail("%s's VM process did not end with status 0:\n%s", what,
		       o);
	free(o);
}

HOSTS_TEST(own_daemons)
{
	struct proc d1, d2;
	char a1[64], a2[64], hosts[160];
	struct run r;

	/* one daemon reads the key as hex, the other and host 0 raw */
	daemon_start(&d1, key_hex, a1, sizeof(a1));
	daemon_start(&d2, key_raw, a2, sizeof(a2));
	snprintf(hosts, sizeof(hosts), "%s,%s", a1, a2);
	harness__run(&r, RUN_TIMEOUT, NULL, "run", "--kernel",
		     harness__testos(), "--hosts", hosts, "--key", key_raw,
		     "--vcpus", "3", "--vcpu-map", "0,1,2", "--stats",
		     "--cmdline", "test=counter iters=200000", NULL);
	cr_log_info("counter over 2 daemons: %.1f s", r.secs);
	cr_expect_eq(r.status, 0, "status %d after %.1f s:\n%s", r.status,
		     r.secs, r.out);
	cr_expect(harness__has(&r, "TEST counter PASS"), "%s", r.out);
	cr_expect(harness__has(&r, "counter: total=600000 expected=600000 "
				   "cpus=3"),
		  "%s", r.out);
	run_free(&r, "slos");
	/* each daemon ran one VM process for it, which ended with the VM */
	expect_vm_ended(&d1, "daemon 1");
	expect_vm_ended(&d2, "daemon 2");
	expect_no_vms(d1.pid, "after the run");
	expect_no_vms(d2.pid, "after the run");

	char list[2048];
	cr_expect_eq(leftovers(list, sizeof(list)), 2,
		     "the scan should see the 2 daemons: %s", list);
	/* SIGTERM ends a daemon, with status 0, and nothing stays */
	cr_expect_eq(harness__stop(&d1, SIGTERM, scaled(10)), 0);
	cr_expect_eq(harness__stop(&d2, SIGTERM, scaled(10)), 0);
	expect_no_leftovers("after SIGTERM to the daemons", true);
	release_checked(&d1, "daemon 1");
	release_checked(&d2, "daemon 2");
}

/* Daemons on IPv6 loopback: the mesh between members too. */
HOSTS_TEST(own_daemons_ipv6)
{
	struct proc d1, d2;
	char a1[64], a2[64], hosts[160];
	struct run r;

	daemon_at(&d1, "[::1]:0", key_raw, a1, sizeof(a1));
	daemon_at(&d2, "[::1]:0", key_raw, a2, sizeof(a2));
	cr_assert(!strncmp(a1, "[::1]:", 6), "%s", a1);
	snprintf(hosts, sizeof(hosts), "%s,%s", a1, a2);
	harness__run(&r, RUN_TIMEOUT, NULL, "run", "--kernel",
		     harness__testos(), "--hosts", hosts, "--key", key_raw,
		     "--vcpus", "3", "--vcpu-map", "0,1,2", "--cmdline",
		     "test=pingpong-page rounds=100", NULL);
	cr_expect_eq(r.status, 0, "status %d after %.1f s:\n%s", r.status,
		     r.secs, r.out);
	cr_expect(harness__has(&r, "turn=300 counts=100,100,100 "), "%s",
		  r.out);
	run_free(&r, "slos");
	expect_no_vms(d1.pid, "after the run");
	expect_no_vms(d2.pid, "after the run");
	release_checked(&d1, "daemon 1");
	release_checked(&d2, "daemon 2");
}

/* Two VMs at once over the same daemons: one VM process each. */
HOSTS_TEST(two_vms_on_the_same_daemons)
{
	struct proc d1, d2, vm[2];
	char a1[64], a2[64], hosts[160];

	daemon_start(&d1, key_raw, a1, sizeof(a1));
	daemon_start(&d2, key_raw, a2, sizeof(a2));
	snprintf(hosts, sizeof(hosts), "%s,%s", a1, a2);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(harness__start(&vm[i], "run", "--kernel",
					    harness__testos(), "--hosts",
					    hosts, "--key", key_raw, "--vcpus",
					    "3", "--vcpu-map", "0,1,2",
					    "--cmdline",
					    "test=counter iters=100000", NULL),
			     0);
		track(&vm[i]);
	}
	for (int i = 0; i < 2; i++) {
		int st = harness__wait(&vm[i], RUN_TIMEOUT);
		char *out = harness__output(&vm[i]);
		cr_expect_eq(st, 0, "VM %d: status %d:\n%s", i, st, out);
		cr_expect(strstr(out, "counter: total=300000 expected=300000"),
			  "VM %d:\n%s", i, out);
		free(out);
		release_checked(&vm[i], "host 0");
	}
	char *o1 = harness__output(&d1), *o2 = harness__output(&d2);
	int n1 = 0, n2 = 0;
	for (const char *p = o1; (p = strstr(p, ": process ")); p++)
		n1++;
	for (const char *p = o2; (p = strstr(p, ": process ")); p++)
		n2++;
	cr_expect(n1 == 2 && n2 == 2, "VM processes: %d and %d:\n%s\n%s", n1,
		  n2, o1, o2);
	free(o1);
	free(o2);
	expect_no_vms(d1.pid, "after both VMs");
	expect_no_vms(d2.pid, "after both VMs");
	release_checked(&d1, "daemon 1");
	release_checked(&d2, "daemon 2");
}

/* A daemon stopped while its VM runs takes its VM process with it, and
 * host 0 notices the host gone. */
static void daemon_dies_mid_run(int sig)
{
	struct proc d, vm;
	char addr[64], gone[96];
	pid_t vms[4];

	daemon_start(&d, key_raw, addr, sizeof(addr));
	cr_assert_eq(harness__start(&vm, "run", "--kernel", harness__testos(),
				    "--hosts", addr, "--key", key_raw,
				    "--vcpus", "2", "--vcpu-map", "0,1",
				    "--cmdline",
				    "test=pingpong-page rounds=100000",
				    NULL),
		     0);
	track(&vm);
	cr_assert(harness__wait_output(&vm, "testos: cmdline", scaled(30)),
		  "the VM did not start:\n%s", harness__output(&vm));
	cr_assert_eq(harness__children(d.pid, vms, 4), 1);
	usleep(300 * 1000);
	double t = harness__now();
	kill(d.pid, sig);
	/* "host 1 (ADDR) is gone (why): ...", or, when the DSM's send
	 * fails first, "host 1 is unreachable (why): ..." (as below). */
	snprintf(gone, sizeof(gone), "slos: host 1 (%s) is gone", addr);
	cr_expect(harness__wait_output(&vm, "unreachable", scaled(5)),
		  "no lost host in:\n%s", harness__output(&vm));
	cr_expect(harness__output_has(&vm, gone) ||
			  harness__output_has(&vm, "slos: host 1 is unreachable ("),
		  "host 1 (%s) not named in:\n%s", addr,
		  harness__output(&vm));
	double seen = harness__now() - t;
	int st = harness__wait(&vm, scaled(10));
	cr_log_info("daemon killed (signal %d): host 0 said so after %.2f s, "
		    "ended after %.2f s",
		    sig, seen, vm.t_exit - t);
	cr_expect(st != 0 && st != -1, "host 0: status %d:\n%s", st,
		  harness__output(&vm));
	cr_expect_lt(vm.t_exit - t, scaled(3));
	release_checked(&vm, "host 0");
	harness__wait(&d, scaled(10));
	release_checked(&d, "daemon");
	expect_no_leftovers("after the daemon died", false);
}

HOSTS_TEST(daemon_sigterm_mid_run)
{
	daemon_dies_mid_run(SIGTERM);
}

HOSTS_TEST(daemon_sigkill_mid_run)
{
	daemon_dies_mid_run(SIGKILL);
}

/* ---- 5. a host dies mid-run ---- */

/*
 * A VM over 1 or 2 daemons here (2 or 3 hosts), busy passing a page
 * around; `sig` to the VM process of host `victim` once the test runs.
 * Host 0 must say which host is gone (SIGKILL: the connection drops, at
 * once, so within notice_s; SIGSTOP: its heartbeats stop, so within the
 * dead time the message names plus notice_s) and end, non-zero, soon
 * after. The other host's VM process ends too, and the daemons serve the
 * next VM.
 */
static void host_dies(int hosts, int victim, int sig, double notice_s)
{
	struct proc d[2], vm;
	char addr[2][64], list[160], gone[128];
	pid_t pids[4];

	for (int i = 0; i < hosts - 1; i++)
		daemon_start(&d[i], key_raw, addr[i], sizeof(addr[i]));
	snprintf(list, sizeof(list), "%s%s%s", addr[0], hosts > 2 ? "," : "",
		 hosts > 2 ? addr[1] : "");
	cr_assert_eq(harness__start(&vm, "run", "--kernel", harness__testos(),
				    "--hosts", list, "--key", key_raw,
				    "--vcpus", hosts == 2 ? "2" : "3",
				    "--vcpu-map", vcpu_map(hosts), "--cmdline",
				    "test=pingpong-page rounds=100000",
				    NULL),
		     0);
	track(&vm);
	cr_assert(harness__wait_output(&vm, "testos: cmdline", scaled(30)),
		  "the VM did not start:\n%s", harness__output(&vm));
	usleep(500 * 1000);
	cr_assert_eq(harness__children(d[victim - 1].pid, pids, 4), 1,
		     "host %d's daemon has no VM process", victim);
	pid_t member = pids[0];

	double t = harness__now();
	kill(member, sig);
	/* "... is gone (why): the guest pages ... are unreachable", or, when
	 * the DSM's send fails first, "host V is unreachable (why): ..." */
	cr_expect(harness__wait_output(&vm, "unreachable", scaled(5)),
		  "no host is gone");
	double seen = harness__now() - t;
	int st = harness__wait(&vm, scaled(10));
	char *out = harness__output(&vm);
	const char *l = line_of(out, "unreachable");
	cr_log_info("host %d of %d %s: noticed after %.2f s, host 0 ended "
		    "after %.2f s (status %d): %s",
		    victim, hosts, sig == SIGKILL ? "killed" : "stopped", seen,
		    vm.t_exit - t, st, l);
	cr_expect(st > 0, "host 0 ended with status %d:\n%s", st, out);
	/*
	 * Host 0 saw it itself: "slos: host V (its --hosts address) is gone
	 * (why): the guest pages it is home to (...) are unreachable". With
	 * 3 hosts the other member may see it first and stop the VM; host 0
	 * then prints that member's word for it: "slos: host 1: host 2
	 * (ADDR:MESH-PORT) is gone ...", the address being the victim's mesh
	 * listener, not its daemon's.
	 */
	snprintf(gone, sizeof(gone), "slos: host %d (%s) is gone (", victim,
		 addr[victim - 1]);
	char relayed[64], unreach[64];
	snprintf(relayed, sizeof(relayed), "slos: host %d: host %d ",
		 victim == 1 ? 2 : 1, victim);
	snprintf(unreach, sizeof(unreach), "slos: host %d is unreachable (",
		 victim);
	cr_expect(strstr(l, gone) == l || strstr(l, unreach) == l ||
			  (hosts > 2 && strstr(l, relayed) == l),
		  "'%s' does not name host %d (%s)", l, victim,
		  addr[victim - 1]);
	cr_expect(strstr(l, "unreachable"), "%s", l);
	double dead = 0;
	if (sig == SIGSTOP) {
		dead = dead_time(l);
	}
	cr_expect_lt(seen, dead + scaled(notice_s),
		     "noticed after %.2f s (dead time %.1f s)", seen, dead);
	cr_expect_lt(vm.t_exit - t, dead + scaled(3),
		     "ended %.2f s after the kill", vm.t_exit - t);
	free(out);
	release_checked(&vm, "host 0");
	if (sig == SIGSTOP)
		kill(member, SIGCONT);
	/* every VM process ends: the victim's and the survivor's */
	for (int i = 0; i < hosts - 1; i++)
		expect_no_vms(d[i].pid, "after the VM stopped");

	/* the daemons go on serving */
	struct run r;
	harness__run(&r, RUN_TIMEOUT, NULL, "run", "--kernel",
		     harness__testos(), "--hosts", list, "--key", key_raw,
		     "--vcpus", hosts == 2 ? "2" : "3", "--vcpu-map",
		     vcpu_map(hosts), "--cmdline", "test=counter iters=10000",
		     NULL);
	cr_expect_eq(r.status, 0, "the next VM: %d\n%s", r.status, r.out);
	run_free(&r, "slos");
	for (int i = 0; i < hosts - 1; i++)
		release_checked(&d[i], "a daemon");
	expect_no_leftovers("after the daemons", false);
}

HOSTS_TEST(host_killed)
{
	host_dies(2, 1, SIGKILL, 1.0);
}

HOSTS_TEST(host_stopped)
{
	/* the dead time, then a scheduler on a busy two-core machine */
	host_dies(2, 1, SIGSTOP, 0.7);
}

HOSTS_TEST(host_2_of_3_killed)
{
	host_dies(3, 2, SIGKILL, 1.0);
}

/*
 * Host 0 itself goes (SIGKILL: its connections drop; SIGSTOP: silence):
 * the members' VM processes must not outlive it, or a daemon would keep
 * every VM whose I/O host died. Continued, a stopped host 0 finds its
 * hosts gone and ends non-zero.
 */
static void io_host_dies(int sig)
{
	struct proc d1, d2, vm;
	char a1[64], a2[64], hosts[160];
	pid_t pids[4];

	daemon_start(&d1, key_raw, a1, sizeof(a1));
	daemon_start(&d2, key_raw, a2, sizeof(a2));
	snprintf(hosts, sizeof(hosts), "%s,%s", a1, a2);
	cr_assert_eq(harness__start(&vm, "run", "--kernel", harness__testos(),
				    "--hosts", hosts, "--key", key_raw,
				    "--vcpus", "3", "--vcpu-map", "0,1,2",
				    "--cmdline",
				    "test=pingpong-page rounds=100000", NULL),
		     0);
	track(&vm);
	cr_assert(harness__wait_output(&vm, "testos: cmdline", scaled(30)),
		  "the VM did not start:\n%s", harness__output(&vm));
	usleep(300 * 1000);
	cr_assert_eq(harness__children(d1.pid, pids, 4), 1);
	cr_assert_eq(harness__children(d2.pid, pids, 4), 1);
	double t = harness__now(), end = t + scaled(5);
	kill(vm.pid, sig);
	int n1, n2;
	for (;;) {
		n1 = harness__children(d1.pid, pids, 4);
		n2 = harness__children(d2.pid, pids, 4);
		if ((!n1 && !n2) || harness__now() >= end)
			break;
		usleep(5000);
	}
	double gone = harness__now() - t;
	cr_expect(!n1 && !n2, "VM processes left on the daemons");
	/* Either member may see it first and stop the other; it says "lost
	 * the I/O host: why", or, when its DSM's send to host 0 fails
	 * first, "host 0 is unreachable (why): ...". */
	static const char *const said[] = {"slos: lost the I/O host: ",
					   "slos: host 0 is unreachable ("};
	const char *l = NULL;
	char *o1 = NULL, *o2 = NULL;
	for (double until = harness__now() + scaled(4);;) {
		free(o1);
		free(o2);
		o1 = harness__output(&d1);
		o2 = harness__output(&d2);
		for (int i = 0; i < 4 && !l; i++) {
			const char *o = i & 1 ? o2 : o1;
			if (strstr(o, said[i / 2]))
				l = line_of(o, said[i / 2]);
		}
		if (l || harness__now() >= until)
			break;
		usleep(20 * 1000);
	}
	cr_expect(l, "no member said why it stopped:\n%s\n%s", o1, o2);
	if (!l)
		l = "";
	double dead = 0;
	if (sig == SIGSTOP) {
		dead = dead_time(l);
	}
	cr_log_info("host 0 %s: its hosts' VM processes ended after %.2f s: "
		    "%s",
		    sig == SIGKILL ? "killed" : "stopped", gone, l);
	cr_expect_lt(gone, dead + scaled(1.5),
		     "the members took %.2f s:\n%s\n%s", gone, o1, o2);
	free(o1);
	free(o2);
	if (sig == SIGSTOP) {
		kill(vm.pid, SIGCONT);
		int st = harness__wait(&vm, scaled(10));
		char *out = harness__output(&vm);
		cr_expect(st > 0, "host 0 continued: status %d:\n%s", st,
			  out);
		/* It learns from whichever comes first: a connection found
		 * closed ("host N (...) is gone (...): ... are
		 * unreachable"), or the DSM failing to send to that host
		 * ("host N is unreachable (why): ..."). */
		cr_expect(strstr(out, "unreachable"), "%s", out);
		cr_log_info("host 0, continued: status %d: %s", st,
			    line_of(out, "unreachable"));
		free(out);
	}
	release_checked(&vm, "host 0");
	release_checked(&d1, "daemon 1");
	release_checked(&d2, "daemon 2");
	expect_no_leftovers("after the daemons", false);
}

HOSTS_TEST(io_host_killed)
{
	io_host_dies(SIGKILL);
}

HOSTS_TEST(io_host_stopped)
{
	io_host_dies(SIGSTOP);
}

/* ---- 6. attackers ---- */

/*
 * A fabric initiator by hand, for attackers that hold the key. The unit
 * tests use libslos's own codec for this (fabric/wire.h, in
 * tests/unit/fabric_tcp.c), but the Makefile links an integration test
 * with harness.c and criterion only (its tests/integration/% rule), not
 * build/libslos.a or libsodium. So this is the initiator's side of
 * docs/protocol.md (header, HELLO, HELLO_REPLY's proof, AUTH, the i2r
 * session key, sealing) written again on libsodium loaded at run time
 * (slos links it, so it is installed). Should the two ever differ, the
 * handshake with the right key below fails first, and says so.
 */
#define HDR	    32
#define HELLO	    72
#define REPLY	    104
#define AUTH	    64
#define TAG	    16
#define T_HELLO	    1
#define T_REPLY	    2
#define T_AUTH	    3
#define T_HEARTBEAT 0x10
#define T_CTL	    0x100

static struct {
	int (*init)(void);
	int (*hash)(unsigned char *out, size_t outlen, const unsigned char *in,
		    unsigned long long inlen, const unsigned char *key,
		    size_t keylen, const unsigned char *salt,
		    const unsigned char *personal);
	int (*seal)(unsigned char *c, unsigned long long *clen,
		    const unsigned char *m, unsigned long long mlen,
		    const unsigned char *ad, unsigned long long adlen,
		    const unsigned char *nsec, const unsigned char *npub,
		    const unsigned char *k);
} na;

static bool sodium(void)
{
	void *h = dlopen("libsodium.so.23", RTLD_NOW);

	if (!h)
		h = dlopen("libsodium.so", RTLD_NOW);
	if (!h)
		return false;
	na.init = (int (*)(void))dlsym(h, "sodium_init");
	na.hash = (typeof(na.hash))dlsym(
		h, "crypto_generichash_blake2b_salt_personal");
	na.seal = (typeof(na.seal))dlsym(
		h, "crypto_aead_chacha20poly1305_ietf_encrypt");
	return na.init && na.hash && na.seal && na.init() >= 0;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v;
	p[1] = v >> 8;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = v >> (8 * i);
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, v);
	put32(p + 4, v >> 32);
}

static void hdr(uint8_t *p, uint16_t version, uint16_t type, uint32_t len,
		uint64_t seq, uint64_t vm)
{
	memcpy(p, "SLOF", 4);
	put16(p + 4, version);
	put16(p + 6, type);
	put32(p + 8, len);
	put32(p + 12, 0);
	put64(p + 16, seq);
	put64(p + 24, vm);
}

/* BLAKE2b-256 with the handshake's personalisation and a label. */
static void prf(uint8_t out[32], const uint8_t *key, const char *label,
		const uint8_t *in, size_t len)
{
	uint8_t salt[16] = { 0 }, pers[16] = "slos-fabric-hs";

	memcpy(salt, label, strlen(label));
	na.hash(out, 32, in, len, key, key ? 32 : 0, salt, pers);
}

struct peer {
	int fd;
	char me[64]; /* our end, as the other side logs it */
	uint64_t vm;
	uint16_t version;
	uint64_t seq;
	uint8_t k_i2r[32];
};

static int tcp_to(const char *addr, struct peer *p)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	char host[64];
	unsigned port;
	struct timeval tv = { .tv_sec = 5 };

	memset(p, 0, sizeof(*p));
	if (sscanf(addr, "%63[^:]:%u", host, &port) != 2 ||
	    inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -1;
	sa.sin_port = htons(port);
	p->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p->fd < 0 || connect(p->fd, (struct sockaddr *)&sa, sl)) {
		if (p->fd >= 0)
			close(p->fd);
		p->fd = -1;
		return -1;
	}
	setsockopt(p->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	getsockname(p->fd, (struct sockaddr *)&sa, &sl);
	snprintf(p->me, sizeof(p->me), "%s:%u", inet_ntoa(sa.sin_addr),
		 ntohs(sa.sin_port));
	return 0;
}

static void raw_write(struct peer *p, const void *b, size_t n)
{
	cr_assert_eq(send(p->fd, b, n, MSG_NOSIGNAL), (ssize_t)n, "send: %s",
		     strerror(errno));
}

static bool raw_read(struct peer *p, void *b, size_t n)
{
	for (size_t got = 0; got < n;) {
		ssize_t k = recv(p->fd, (uint8_t *)b + got, n - got, 0);
		if (k <= 0)
			return false;
		got += k;
	}
	return true;
}

/* The HELLO this peer opens with. */
static void hello(struct peer *p, uint64_t vm, uint8_t out[HELLO])
{
	p->vm = vm;
	hdr(out, 0, T_HELLO, HELLO - HDR, 0, vm);
	put16(out + HDR, 1);	 /* versions 1..1 */
	put16(out + HDR + 2, 1);
	put16(out + HDR + 4, 0);
	put16(out + HDR + 6, 0);
	cr_assert_eq(getrandom(out + HDR + 8, 32, 0), 32);
}

/* The initiator's handshake under `key`: true if the responder proved
 * the same key (then AUTH is sent and the session keyed); false if not
 * (an AUTH under our key is sent anyway, as a confused host would). */
static bool handshake(struct peer *p, uint64_t vm, const uint8_t *key)
{
	uint8_t h[HELLO], r[REPLY], both[2 * HELLO], t[32], mac[32];
	uint8_t a[AUTH];

	hello(p, vm, h);
	raw_write(p, h, HELLO);
	cr_assert(raw_read(p, r, REPLY), "no HELLO_REPLY from the host");
	cr_assert(!memcmp(r, "SLOF", 4) && r[6] == T_REPLY,
		  "not a HELLO_REPLY");
	p->version = r[HDR + 4] | r[HDR + 5] << 8;
	memcpy(both, h, HELLO);
	memcpy(both + HELLO, r, HELLO);
	prf(t, NULL, "transcript", both, sizeof(both));
	prf(mac, key, "responder proof", t, 32);
	bool keyed = !memcmp(mac, r + HELLO, 32);
	hdr(a, 0, T_AUTH, 32, 0, vm);
	prf(a + HDR, key, "initiator proof", t, 32);
	raw_write(p, a, AUTH);
	prf(p->k_i2r, key, "key i2r", t, 32);
	return keyed;
}

/* A sealed frame with the next sequence number into out; its size. */
static size_t seal(struct peer *p, uint16_t type, const void *payload,
		   size_t len, uint8_t *out)
{
	uint8_t nonce[12];
	unsigned long long clen;

	hdr(out, p->version, type, len + TAG, p->seq, p->vm);
	put32(nonce, 0); /* initiator to responder */
	put64(nonce + 4, p->seq);
	na.seal(out + HDR, &clen, payload, len, out, HDR, NULL, nonce,
		p->k_i2r);
	p->seq++;
	return HDR + clen;
}

/* The other side closed on us within secs (whatever it sent first). */
static bool closed(struct peer *p, double secs)
{
	double end = harness__now() + secs;
	uint8_t b[4096];

	while (harness__now() < end) {
		struct pollfd pf = { .fd = p->fd, .events = POLLIN };
		if (poll(&pf, 1, 50) <= 0)
			continue;
		ssize_t n = recv(p->fd, b, sizeof(b), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
	}
	return false;
}

/* A line of out with both a and b, as a string (static buffer). */
static const char *line_with(const char *out, const char *a, const char *b)
{
	for (const char *p = out; p && (p = strstr(p, a)); p++) {
		const char *l = line_at(out, p);
		if (strstr(l, b))
			return l;
	}
	return NULL;
}

/* The attacker's connection was closed, and `d` logged a line for it:
 * "slos: fabric: <its address>: ...<reason>...". An earlier connection
 * from the same port to another listener (the flood's, to the daemon) has
 * lines of its own: only a line with the reason counts. */
static void expect_refused(struct proc *d, struct peer *p, const char *what,
			   const char *reason)
{
	char want[128];
	const char *l = NULL;
	char *out = NULL;

	cr_expect(closed(p, scaled(5)), "%s: connection not closed", what);
	snprintf(want, sizeof(want), "slos: fabric: %s: ", p->me);
	for (double end = harness__now() + scaled(5);;) {
		free(out);
		out = harness__output(d);
		if ((l = line_with(out, want, reason)) || harness__now() > end)
			break;
		usleep(20 * 1000);
	}
	cr_expect(l, "%s: no line for %s with '%s' in:\n%s", what, p->me,
		  reason, out);
	cr_log_info("%s: %s", what, l ? l : "(none)");
	free(out);
	close(p->fd);
}

static uint64_t random_vm(void)
{
	uint64_t v;

	cr_assert_eq(getrandom(&v, 8, 0), 8);
	return v;
}

/* Attackers that never get past the handshake, at addr. */
static void unauthenticated(struct proc *logger, const char *addr,
			    uint64_t vm, const char *where)
{
	struct peer p;
	uint8_t h[HELLO], other[32];
	char what[96];

	snprintf(what, sizeof(what), "%s: garbage", where);
	cr_assert_eq(tcp_to(addr, &p), 0, "connect to %s", addr);
	raw_write(&p, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
	expect_refused(logger, &p, what,
		       "refused HELLO: not a fabric message (bad magic)");

	snprintf(what, sizeof(what), "%s: truncated HELLO", where);
	cr_assert_eq(tcp_to(addr, &p), 0);
	hello(&p, vm, h);
	raw_write(&p, h, 40);
	shutdown(p.fd, SHUT_WR);
	expect_refused(logger, &p, what,
		       "truncated HELLO: the peer closed the connection after "
		       "40 of 72 bytes");

	snprintf(what, sizeof(what), "%s: another key", where);
	cr_assert_eq(getrandom(other, 32, 0), 32);
	cr_assert_eq(tcp_to(addr, &p), 0);
	cr_expect(!handshake(&p, vm, other),
		  "the host proved a key it should not have");
	expect_refused(logger, &p, what, "handshake refused: ");
}

/* Attackers with the key, past the handshake (each one makes the daemon
 * fork a VM process, which must end on the refusal). */
static void authenticated(struct proc *d, const char *addr)
{
	uint8_t f[HDR + 1024 + TAG], g[HDR + TAG], payload[1024] = { 0 };
	struct peer p;
	size_t n;

	/* a frame whose tag was changed in flight */
	cr_assert_eq(tcp_to(addr, &p), 0);
	cr_assert(handshake(&p, random_vm(), the_key), "the key was refused");
	n = seal(&p, T_CTL, payload, sizeof(payload), f);
	f[n - 3] ^= 0x40;
	raw_write(&p, f, n);
	expect_refused(d, &p, "corrupted tag",
		       "refused a frame: frame failed authentication");

	/* a good frame, then the same bytes again */
	cr_assert_eq(tcp_to(addr, &p), 0);
	cr_assert(handshake(&p, random_vm(), the_key));
	n = seal(&p, T_HEARTBEAT, NULL, 0, g);
	raw_write(&p, g, n);
	raw_write(&p, g, n);
	expect_refused(d, &p, "replayed frame",
		       "refused a frame: sequence number out of order");

	/* a frame cut short, then the attacker hangs up */
	cr_assert_eq(tcp_to(addr, &p), 0);
	cr_assert(handshake(&p, random_vm(), the_key));
	n = seal(&p, T_CTL, payload, sizeof(payload), f);
	raw_write(&p, f, n - 100);
	shutdown(p.fd, SHUT_WR);
	expect_refused(d, &p, "truncated frame",
		       "truncated frame: the peer closed the connection after "
		       "972 of 1072 bytes");
}

/* The VM id the daemon logged for the VM it serves. */
static uint64_t served_vm(struct proc *d)
{
	char *out = harness__output(d);
	const char *v = strstr(out, "slos host: VM ");
	uint64_t id = v ? strtoull(v + 14, NULL, 16) : 0;

	free(out);
	return id;
}

HOSTS_TEST(attackers)
{
	struct proc d, vm;
	char addr[64], mesh[64];
	unsigned ports[4];
	pid_t member;

	cr_assert(sodium(), "libsodium: %s", dlerror());
	daemon_start(&d, key_raw, addr, sizeof(addr));
	/* ~10 s here: long enough for every attacker below */
	cr_assert_eq(harness__start(&vm, "run", "--kernel", harness__testos(),
				    "--hosts", addr, "--key", key_raw,
				    "--vcpus", "2", "--vcpu-map", "0,1",
				    "--cmdline",
				    "test=pingpong-page rounds=2500", NULL),
		     0);
	track(&vm);
	cr_assert(harness__wait_output(&vm, "testos: cmdline", scaled(30)),
		  "the VM did not start:\n%s", harness__output(&vm));
	cr_assert_eq(harness__children(d.pid, &member, 1), 1);
	uint64_t id = served_vm(&d);
	cr_assert_neq(id, 0);

	/* on the daemon's port */
	unauthenticated(&d, addr, id, "daemon");
	authenticated(&d, addr);

	/* a flood of connections that say nothing: beyond 64 handshakes at
	 * once they are turned away, the rest time out */
	struct peer flood[80];
	for (int i = 0; i < 80; i++)
		cr_assert_eq(tcp_to(addr, &flood[i]), 0, "flood %d", i);
	cr_expect(harness__wait_output(&d, "too many handshakes in progress",
				       scaled(5)),
		  "no flood refused");
	for (int i = 0; i < 80; i++) {
		cr_expect(closed(&flood[i], scaled(6)),
			  "idle connection %d not closed", i);
		close(flood[i].fd);
	}

	/* on the running VM's own mesh port (host 1's VM process listens
	 * for the other members); the VM's id does not help without the
	 * key */
	int np = harness__listen_ports(member, ports, 4);
	cr_expect_eq(np, 1, "host 1's VM process listens on %d ports", np);
	if (np >= 1) {
		snprintf(mesh, sizeof(mesh), "127.0.0.1:%u", ports[0]);
		unauthenticated(&d, mesh, id, "mesh");
	}

	cr_log_info("attackers done %.1f s into the VM's run",
		    harness__now() - vm.t0);
	/* all that while the VM ran, and it did not notice */
	cr_expect_eq(harness__wait(&vm, 0), -1,
		     "the VM ended before the attackers were done (make it "
		     "run longer):\n%s",
		     harness__output(&vm));
	int st = harness__wait(&vm, RUN_TIMEOUT);
	char *out = harness__output(&vm);
	cr_log_info("the attacked VM ended after %.1f s: %s", vm.t_exit - vm.t0,
		    line_of(out, "pingpong-page: rounds"));
	cr_expect_eq(st, 0, "the attacked VM: status %d:\n%s", st, out);
	cr_expect(strstr(out, "TEST pingpong-page PASS"), "%s", out);
	cr_expect(strstr(out, "turn=5000 counts=2500,2500 "), "%s", out);
	free(out);
	release_checked(&vm, "host 0");
	/* the attackers' VM processes ended as the VM's did, on their own */
	expect_no_vms(d.pid, "after the VM");
	int ended = 0;
	for (double end = harness__now() + scaled(5);;) {
		out = harness__output(&d);
		ended = 0;
		for (const char *p = out; (p = strstr(p, " ended (")); p++)
			ended++;
		if (ended >= 4 || harness__now() > end)
			break;
		free(out);
		usleep(20 * 1000);
	}
	cr_expect_eq(ended, 4, "the VM's and 3 attackers' VM processes:\n%s",
		     out);
	cr_expect(!strstr(out, "ended (signal"), "%s", out);
	free(out);
	cr_expect_eq(harness__wait(&d, 0), -1, "the daemon died");
	release_checked(&d, "daemon");
	expect_no_leftovers("after the daemon", false);
}

/* ---- 7. --local-hosts leaves nothing behind ---- */

HOSTS_TEST(local_hosts_cleanup_after_run)
{
	struct run r;

	harness__run(&r, RUN_TIMEOUT, NULL, "run", "--kernel",
		     harness__testos(), "--local-hosts", "3", "--vcpus", "3",
		     "--vcpu-map", "0,1,2", "--cmdline",
		     "test=counter iters=10000", NULL);
	cr_expect_eq(r.status, 0, "%d:\n%s", r.status, r.out);
	run_free(&r, "slos");
	expect_no_leftovers("after a --local-hosts 3 run", true);
}

HOSTS_TEST(local_hosts_cleanup_after_sigterm)
{
	struct run r;

	harness__run_until(&r, RUN_TIMEOUT, "testos: cmdline", "run",
			   "--kernel", harness__testos(), "--local-hosts", "3",
			   "--vcpus", "3", "--vcpu-map", "0,1,2", "--cmdline",
			   "test=pingpong-page rounds=100000", NULL);
	cr_expect(r.matched, "the VM did not start:\n%s", r.out);
	cr_expect_eq(r.status, 128 + SIGTERM, "%d:\n%s", r.status, r.out);
	cr_expect_lt(r.secs, scaled(30), "%.1f s", r.secs);
	run_free(&r, "slos");
	expect_no_leftovers("after SIGTERM to host 0", true);
}

/* Host 0 ended by `sig` `after` seconds into a --local-hosts 3 run
 * (< 0: once the test runs). */
static void local_hosts_signal(int sig, double after, int want)
{
	struct proc p;

	cr_assert_eq(harness__start(&p, "run", "--kernel", harness__testos(),
				    "--local-hosts", "3", "--vcpus", "3",
				    "--vcpu-map", "0,1,2", "--cmdline",
				    "test=pingpong-page rounds=100000",
				    NULL),
		     0);
	track(&p);
	if (after < 0) {
		char list[2048];
		cr_assert(harness__wait_output(&p, "testos: cmdline",
					       scaled(30)),
			  "the VM did not start:\n%s", harness__output(&p));
		/* the scan sees them while they run: 2 daemons, 2 VM
		 * processes */
		cr_expect_eq(leftovers(list, sizeof(list)), 4,
			     "while the VM runs: %s", list);
	} else {
		usleep(after * 1e6);
	}
	int st = harness__stop(&p, sig, scaled(20));
	char *out = harness__output(&p);
	cr_log_info("signal %d to host 0 %s%.2f s: status %d after %.2f s; "
		    "%s",
		    sig, after < 0 ? "once the test ran, " : "after ",
		    after < 0 ? p.t_exit - p.t0 : after, st,
		    p.t_exit - p.t0,
		    strstr(out, "testos: cmdline") ? "the test had started"
		    : strstr(out, "testos:")	   ? "the guest had booted"
						   : "before the guest ran");
	if (want >= 0)
		cr_expect_eq(st, want, "signal %d: status %d:\n%s", sig, st,
			     out);
	else
		cr_expect(st != -1, "signal %d after %.2f s: still running:\n%s",
			  sig, after, out);
	char when[64];
	snprintf(when, sizeof(when), "signal %d to host 0 after %.2f s", sig,
		 after);
	/* Once the VM runs, host 0 ends its hosts before it exits. Killed
	 * (SIGKILL, or an early signal's default action), it cannot: the
	 * daemons and their VM processes follow it on their own
	 * (PR_SET_PDEATHSIG), a moment later. */
	expect_no_leftovers(when, sig != SIGKILL && after < 0);
	free(out);
	release_checked(&p, "host 0");
}

HOSTS_TEST(local_hosts_cleanup_after_sigint)
{
	local_hosts_signal(SIGINT, -1, 128 + SIGINT);
}

HOSTS_TEST(local_hosts_cleanup_after_sigkill)
{
	local_hosts_signal(SIGKILL, -1, 128 + SIGKILL);
}

/* SIGINT while host 0 is still making the hosts (namespaces, links,
 * daemons) or connecting to them: whatever it was doing, nothing stays.
 * No status is asked for: an early signal ends it by default action. */
HOSTS_TEST(local_hosts_cleanup_during_setup)
{
	static const double at[] = { 0.01, 0.05, 0.1, 0.2, 0.3 };

	for (size_t i = 0; i < sizeof(at) / sizeof(*at); i++)
		local_hosts_signal(SIGINT, at[i], -1);
}
