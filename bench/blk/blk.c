// SPDX-License-Identifier: MIT
/*
 * bench/blk: virtio-blk read latency and throughput from inside a Linux
 * guest, against the host's own reads of the same file in the same run.
 *
 *  1. A data disk: a file of --size MiB of pseudo-random bytes, attached
 *     read-only as the guest's /dev/vdb; and a script disk (ext2, vda)
 *     holding the guest program (bench/blk/guest.c, static) and run.sh,
 *     which the initramfs's /init runs (slos.run=vda:run.sh).
 *  2. Floor: the host reads the data file with io_uring, one request at
 *     a time (QD1, as the guest's pread), 4 KiB at random offsets and
 *     1 MiB sequentially, both buffered and O_DIRECT. The device does
 *     buffered I/O (vmm/virtio/blk.c) and the file is read once before
 *     every run, so the guest's requests are served from the host's page
 *     cache: the buffered floor is what the device itself pays per
 *     request, and the ratios are against it; O_DIRECT (the host's own
 *     storage) is printed beside it for scale.
 *  3. (a) local: one host, 1 vCPU: the program, its requests and the
 *     device all on host 0.
 *     (b) forwarded: --vcpus 2 --local-hosts 2 --vcpu-map 0,1; the program
 *     runs on CPU 1 (taskset -c 1), whose host (1) has no devices: each
 *     register access of the driver is forwarded to host 0, the queues
 *     and buffers move between the hosts through the DSM, and the
 *     virtio interrupts, routed to CPU 1 (/proc/irq/N/smp_affinity),
 *     cross the fabric back.
 *     The guest prints `BLK mark PHASE` before each phase and sleeps 1 s:
 *     the VMM's counters (`slos ctl NAME stat`, every host) are read at
 *     each mark, so the counts per request cover the phase alone (plus
 *     that second of idle). A first phase spins at ring 3 without I/O:
 *     its rates are the VM's background (timer ticks; over hosts, the
 *     pages they move), printed and taken off the per-read counts.
 *  4. For scale, the guest kernel alone, on both sides: a null system
 *     call and a 4 KiB read of /dev/zero (p50s). Under PVM the guest's
 *     ring 0 is emulated; their ratio to the host's is what that costs.
 *
 * Must run as root (--local-hosts makes network namespaces). Minutes:
 * each boot of the project kernel is 40-90 s of emulated guest ring 0
 * under PVM before the phases run.
 *
 * usage: blk [--slos BIN] [--kernel F] [--initrd F] [--guest F]
 *            [--size MIB] [--secs S] [--seq-secs S] [--spin-secs S]
 *            [--floor-n N] [--dir PARENT] [--only local|hosts] [--keep]
 *            [--verbose]
 */
#include <liburing.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "bench/bench.h"

#include "vmm/pvm.h"

#define BS_RAND	       4096
#define BS_SEQ	       (1 << 20)
#define FLOOR_WARMUP   256
#define BOOT_TIMEOUT_S 1800
#define POWEROFF_S     180
#define DATA_DEV       "blk1" /* the second --disk: script disk first */

static const char *const no_torture =
    "rcutorture.torture_type=none locktorture.torture_type=none";

static bool verbose;

static void die(const char *what)
{
	fprintf(stderr, "bench/blk: %s: %s\n", what, strerror(errno));
	exit(2);
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int r = system(cmd);
	if (r)
		fprintf(stderr, "bench/blk: failed (%d): %s\n", r, cmd);
	return r;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

/* The data disk: incompressible bytes, written and synced once. */
static void make_data(const char *path, unsigned mib)
{
	uint64_t *buf = malloc(BS_SEQ), seed = 0x243f6a8885a308d3ULL;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (!buf || fd < 0)
		die(path);
	for (unsigned m = 0; m < mib; m++) {
		for (size_t i = 0; i < BS_SEQ / sizeof(*buf); i++)
			buf[i] = rnd(&seed);
		if (write(fd, buf, BS_SEQ) != BS_SEQ)
			die("write data disk");
	}
	if (fsync(fd))
		die("fsync data disk");
	close(fd);
	free(buf);
}

/* Reads the whole file through the page cache: the device's reads hit. */
static void warm(const char *path)
{
	char *buf = malloc(BS_SEQ);
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (!buf || fd < 0)
		die(path);
	while (read(fd, buf, BS_SEQ) > 0)
		;
	close(fd);
	free(buf);
}

/* One read at a time through io_uring, as the device submits them. */
static double uring_read(struct io_uring *r, int fd, void *buf, size_t len,
			 off_t off)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(r);
	struct io_uring_cqe *cqe;
	double t0 = bench__now_us();

	io_uring_prep_read(sqe, fd, buf, len, off);
	if (io_uring_submit_and_wait(r, 1) < 1 || io_uring_peek_cqe(r, &cqe))
		die("io_uring");
	if (cqe->res != (int)len) {
		errno = cqe->res < 0 ? -cqe->res : EIO;
		die("floor read");
	}
	io_uring_cqe_seen(r, cqe);
	return bench__now_us() - t0;
}

/* What the guest measures of its kernel alone, on the host: p50s of a
 * null system call and of a 4 KiB read of /dev/zero. */
static void host_kernel(double *sys_us, double *zero_us)
{
	enum { N = 10000 };
	static double t[N];
	static char buf[BS_RAND];
	int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		die("/dev/zero");
	for (int i = 0; i < N; i++) {
		double t0 = bench__now_us();

		syscall(SYS_getppid);
		t[i] = bench__now_us() - t0;
	}
	*sys_us = bench__pct(t, N, 50);
	for (int i = 0; i < N; i++) {
		double t0 = bench__now_us();

		if (read(fd, buf, sizeof(buf)) != sizeof(buf))
			die("read /dev/zero");
		t[i] = bench__now_us() - t0;
	}
	*zero_us = bench__pct(t, N, 50);
	close(fd);
}

struct floor {
	double p50, p99, iops, mibps;
	int n;
	bool ok;
};

/* n timed 4 KiB random reads (after FLOOR_WARMUP), then the whole file
 * in 1 MiB reads, QD1. */
static void floor_run(const char *path, bool direct, int n, size_t size,
		      struct floor *f)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | (direct ? O_DIRECT : 0));
	uint64_t seed = 0x13198a2e03707344ULL, blocks = size / BS_RAND;
	double *t = calloc(n, sizeof(*t)), t0;
	struct io_uring r;
	void *buf;

	memset(f, 0, sizeof(*f));
	if (fd < 0) {
		/* tmpfs had no O_DIRECT before Linux 6.6: say so, go on. */
		fprintf(stderr, "bench/blk: floor%s: %s: %s\n",
			direct ? " O_DIRECT" : "", path, strerror(errno));
		free(t);
		return;
	}
	if (!t || posix_memalign(&buf, 4096, BS_SEQ) ||
	    io_uring_queue_init(8, &r, 0))
		die("floor set-up");
	memset(buf, 0, BS_SEQ);
	for (int i = 0; i < FLOOR_WARMUP; i++)
		uring_read(&r, fd, buf, BS_RAND, rnd(&seed) % blocks * BS_RAND);
	t0 = bench__now_us();
	for (int i = 0; i < n; i++)
		t[i] = uring_read(&r, fd, buf, BS_RAND,
				  rnd(&seed) % blocks * BS_RAND);
	f->iops = n / ((bench__now_us() - t0) / 1e6);
	f->n = n;
	f->p50 = bench__pct(t, n, 50);
	f->p99 = bench__pct(t, n, 99);
	t0 = bench__now_us();
	for (size_t off = 0; off + BS_SEQ <= size; off += BS_SEQ)
		uring_read(&r, fd, buf, BS_SEQ, off);
	f->mibps = (size / BS_SEQ) / ((bench__now_us() - t0) / 1e6);
	f->ok = true;
	io_uring_queue_exit(&r);
	free(buf);
	free(t);
	close(fd);
}

/* The VMM's counters, summed as the lines of `slos ctl NAME stat` (and
 * of --stats at exit) give them; vCPUs over every host, hosts apart. */
struct ctr {
	unsigned long long exits[2], mmio[2]; /* by vCPU */
	unsigned long long dsm_faults[2], dsm_sent[2], dsm_kib[2], irq_sent[2];
	unsigned long long vcpu_dsm[2];	    /* by vCPU, as the rest by host */
	unsigned long long vcpu_wait_us[2]; /* from the log2 histogram */
	unsigned long long notifies, irqs, reqs;
	bool ok;
	double at_us; /* when read (the driver's clock) */
};

static void ctr_line(struct ctr *c, const char *line)
{
	unsigned long long a, b, d;
	unsigned h = 0, v;
	const char *p, *s;
	int k = 0;

	if (strncmp(line, "slos: ", 6))
		return;
	p = line + 6;
	if (sscanf(p, "host %u %n", &h, &k) == 1 && k)
		p += k;
	if (h > 1)
		return;
	if (sscanf(p, "vcpu %u exits %llu io %*u mmio %llu", &v, &a, &b) == 3 &&
	    v < 2) {
		c->exits[v] += a; /* a parked copy's exits count too */
		c->mmio[v] += b;
	} else if (sscanf(p, "vcpu %u dsm faults %llu", &v, &a) == 2 && v < 2) {
		c->vcpu_dsm[v] = a;
		/* Bucket k holds waits of [2^k, 2^(k+1)) us (k = 0: under 2
		 * us): counted at 1.5 * 2^k, an estimate within ~1.4x. */
		s = strstr(p, "wait us log2 [");
		s = s ? s + strlen("wait us log2 [") : NULL;
		for (int bk = 0; s && bk < 40; bk++) {
			if (sscanf(s, "%llu%n", &a, &k) != 1)
				break;
			c->vcpu_wait_us[v] += a * (3ULL << bk) / 2;
			s += k;
		}
	} else if (sscanf(p, "dsm: faults %llu", &a) == 1) {
		c->dsm_faults[h] = a;
		s = strstr(p, "; sent ");
		if (s && sscanf(s, "; sent %llu (%llu KiB", &b, &d) == 2) {
			c->dsm_sent[h] = b;
			c->dsm_kib[h] = d;
		}
	} else if (sscanf(p,
			  "interrupts for other hosts' vCPUs: caught %*u, "
			  "sent %llu",
			  &a) == 1) {
		c->irq_sent[h] = a;
	} else if (sscanf(p,
			  DATA_DEV " notifies %llu interrupts %llu requests "
				   "%llu",
			  &a, &b, &d) == 3) {
		c->notifies = a;
		c->irqs = b;
		c->reqs = d;
	}
}

static void ctr_now(const char *slos, const char *name, struct ctr *c)
{
	char cmd[512], line[1024];
	FILE *f;

	memset(c, 0, sizeof(*c));
	c->at_us = bench__now_us();
	snprintf(cmd, sizeof(cmd), "%s ctl %s stat 2>&1", slos, name);
	f = popen(cmd, "r");
	while (f && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "slos stat ", 10))
			c->ok = true;
		ctr_line(c, line);
	}
	if (f)
		pclose(f);
}

static void ctr_sub(struct ctr *d, const struct ctr *a, const struct ctr *b)
{
	const unsigned long long *pa = (const void *)a, *pb = (const void *)b;
	unsigned long long *pd = (void *)d;

	/* Every field before `ok` is a counter. */
	for (size_t i = 0; i < offsetof(struct ctr, ok) / sizeof(*pd); i++)
		pd[i] = pa[i] - pb[i];
	d->ok = a->ok && b->ok;
	d->at_us = a->at_us - b->at_us; /* a duration, in a difference */
}

struct run {
	const char *label;
	bool hosts;
	int cpu, rc, status;
	long n, seq_n;
	double secs, iops, p50, p99, max, seq_secs, mibps, seq_p50, wall;
	double sys_us, zero_us;	       /* the guest kernel alone, p50s */
	unsigned long long irq_cpu[2]; /* the data disk's, per guest CPU */
	struct ctr at_spin, at_rand, at_seq, at_end, spin, rand, seq;
	char log[320]; /* the console, every line */
	bool stopped;  /* no power-off after the script: ctl stop */
	bool done;
};

static void parse_guest(struct run *r, const char *line)
{
	const char *p;

	if ((p = strstr(line, "BLK ready ")) && (p = strstr(p, " cpu=")))
		sscanf(p, " cpu=%d", &r->cpu);
	else if ((p = strstr(line, "BLK kernel ")))
		sscanf(p, "BLK kernel null_syscall_us=%lf read_zero_4k_us=%lf",
		       &r->sys_us, &r->zero_us);
	else if ((p = strstr(line, "BLK randread ")))
		sscanf(p,
		       "BLK randread qd=1 bs=4096 n=%ld secs=%lf iops=%lf "
		       "p50_us=%lf p99_us=%lf max_us=%lf",
		       &r->n, &r->secs, &r->iops, &r->p50, &r->p99, &r->max);
	else if ((p = strstr(line, "BLK seqread ")))
		sscanf(p,
		       "BLK seqread bs=1048576 n=%ld mib=%*d secs=%lf "
		       "mibps=%lf p50_us=%lf",
		       &r->seq_n, &r->seq_secs, &r->mibps, &r->seq_p50);
	else if (strstr(line, "BLK done"))
		r->done = true;
	else if ((p = strstr(line, "SLOS-RUN rc=")))
		sscanf(p, "SLOS-RUN rc=%d", &r->rc);
	else if ((p = strstr(line, " virtio1")) && strstr(line, "IO-APIC"))
		sscanf(line, " %*d: %llu %llu", &r->irq_cpu[0], &r->irq_cpu[1]);
}

/* The script the guest's /init runs from the script disk. */
static void write_script(const char *dir, double secs, double seq_secs,
			 double spin_secs)
{
	char path[320];
	FILE *f;

	snprintf(path, sizeof(path), "%s/files/run.sh", dir);
	f = fopen(path, "w");
	if (!f)
		die(path);
	fprintf(f,
		"args='-t %g -s %g -i %g /dev/vdb'\n"
		"if grep -q slos.cpu1 /proc/cmdline; then\n"
		"  for i in $(grep virtio /proc/interrupts | cut -d: -f1); "
		"do\n"
		"    echo 2 > /proc/irq/$i/smp_affinity; done\n"
		"  taskset -c 1 ./guest $args\n"
		"else ./guest $args; fi\n"
		"echo BLK rc=$?\n"
		"grep virtio /proc/interrupts\n",
		secs, seq_secs, spin_secs);
	fclose(f);
}

/* Lines of a pipe, with a timeout: 1 a line, 0 none in time, -1 EOF. */
struct lines {
	int fd;
	size_t len;
	char buf[8192];
};

static int next_line(struct lines *l, char *line, size_t max, int ms)
{
	for (;;) {
		char *nl = memchr(l->buf, '\n', l->len);
		size_t n = nl ? (size_t)(nl - l->buf) + 1 : l->len;

		if (nl || l->len == sizeof(l->buf)) {
			size_t c = n < max - 1 ? n : max - 1;

			memcpy(line, l->buf, c);
			line[c] = '\0';
			memmove(l->buf, l->buf + n, l->len - n);
			l->len -= n;
			return 1;
		}
		struct pollfd p = {.fd = l->fd, .events = POLLIN};
		int r = poll(&p, 1, ms);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return 0;
		ssize_t k =
		    read(l->fd, l->buf + l->len, sizeof(l->buf) - l->len);
		if (k <= 0) {
			if (!l->len)
				return -1;
			/* The last line had no newline. */
			memcpy(line, l->buf, l->len < max ? l->len : max - 1);
			line[l->len < max ? l->len : max - 1] = '\0';
			l->len = 0;
			return 1;
		}
		l->len += k;
	}
}

static int boot(const char *slos, const char *kernel, const char *initrd,
		const char *dir, struct run *r)
{
	char cmd[2048], line[1024], name[64];
	double t0 = bench__now_us(), ran = 0;
	struct lines *l = calloc(1, sizeof(*l));
	FILE *f, *log;

	snprintf(name, sizeof(name), "bench-blk-%d-%s", (int)getpid(),
		 r->hosts ? "hosts" : "local");
	snprintf(r->log, sizeof(r->log), "%s/%s.log", dir,
		 r->hosts ? "hosts" : "local");
	snprintf(cmd, sizeof(cmd),
		 "timeout -k 30 %d %s run --kernel %s --initrd %s --mem 256M "
		 "--name %s %s --disk %s/script.img --disk %s/data.img,ro "
		 "--stats --cmdline 'console=ttyS0 panic=-1 %s "
		 "slos.run=vda:run.sh%s' 2>&1",
		 BOOT_TIMEOUT_S, slos, kernel, initrd, name,
		 r->hosts ? "--vcpus 2 --local-hosts 2 --vcpu-map 0,1"
			  : "--vcpus 1",
		 dir, dir, no_torture, r->hosts ? " slos.cpu1" : "");
	r->cpu = -1;
	r->rc = -1;
	log = fopen(r->log, "w");
	f = popen(cmd, "r");
	if (!l || !log || !f)
		die("starting slos");
	l->fd = fileno(f);
	for (;;) {
		int got = next_line(l, line, sizeof(line), 1000);

		if (got < 0)
			break;
		/* Powering off takes seconds: a guest that has not, long
		 * after its script ended, is stuck; stop it, say so. */
		if (!got) {
			if (ran && !r->stopped &&
			    bench__now_us() - ran > POWEROFF_S * 1e6) {
				r->stopped = true;
				sh("%s ctl %s stop >/dev/null", slos, name);
			}
			continue;
		}
		fputs(line, log);
		fflush(log);
		if (verbose)
			fputs(line, stderr);
		if (strstr(line, "BLK mark spin"))
			ctr_now(slos, name, &r->at_spin);
		else if (strstr(line, "BLK mark randread"))
			ctr_now(slos, name, &r->at_rand);
		else if (strstr(line, "BLK mark seqread"))
			ctr_now(slos, name, &r->at_seq);
		else if (strstr(line, "BLK mark end"))
			ctr_now(slos, name, &r->at_end);
		else if (strstr(line, "BLK FAIL"))
			fprintf(stderr, "bench/blk: %s: %s", r->label, line);
		else if (strstr(line, "SLOS-RUN rc="))
			ran = bench__now_us();
		parse_guest(r, line);
	}
	r->status = pclose(f);
	fclose(log);
	free(l);
	r->wall = (bench__now_us() - t0) / 1e6;
	ctr_sub(&r->spin, &r->at_rand, &r->at_spin);
	ctr_sub(&r->rand, &r->at_seq, &r->at_rand);
	ctr_sub(&r->seq, &r->at_end, &r->at_seq);
	if (!r->done || r->rc || !r->n || !r->seq_n ||
	    r->cpu != (r->hosts ? 1 : 0)) {
		fprintf(stderr,
			"bench/blk: %s failed (status %d, guest rc %d, cpu "
			"%d; console: %s)\n",
			r->label, r->status, r->rc, r->cpu, r->log);
		r->n = 0; /* no figures from a run that failed */
		return -1;
	}
	/* The figures stand; the VM's end is reported beside them. */
	if (r->status || r->stopped) {
		fprintf(stderr,
			"bench/blk: %s: measured, but the VM did not end "
			"cleanly (status %d%s; console: %s)\n",
			r->label, r->status,
			r->stopped ? ", stopped: no power-off" : "", r->log);
		return -1;
	}
	return 0;
}

static double load1(void)
{
	double l = -1;
	FILE *f = fopen("/proc/loadavg", "r");

	if (f && fscanf(f, "%lf", &l) != 1)
		l = -1;
	if (f)
		fclose(f);
	return l;
}

static void print_floor(const char *what, const struct floor *f)
{
	if (!f->ok) {
		printf("  %-36s not measured\n", what);
		return;
	}
	printf("  %-36s 4 KiB random p50 %7.1f us  p99 %7.1f us  %8.0f "
	       "IOPS (n=%d); 1 MiB seq %7.1f MiB/s\n",
	       what, f->p50, f->p99, f->iops, f->n, f->mibps);
}

/* Per 4 KiB read of the random phase, as counted and less the VM's
 * background: the spin phase's rate times the random phase's length. */
static void print_counts(const struct run *r)
{
	const struct ctr *c = &r->rand, *b = &r->spin;
	double n = r->n, bs = b->at_us / 1e6, k = c->at_us / b->at_us;
	int cpu = r->hosts; /* the program's */

#define NET(x) ((c->x - k * b->x) / n)
	if (!c->ok || !b->ok || bs <= 0) {
		printf("      (the VMM's counters could not be read)\n");
		return;
	}
	printf("      background, CPU %d spinning at ring 3 without I/O "
	       "(%.1f s): %.0f exits/s",
	       cpu, bs, b->exits[cpu] / bs);
	if (r->hosts)
		printf(", DSM faults %.0f/s on host 0 and %.0f/s on host 1, "
		       "DSM messages %.0f/s",
		       b->dsm_faults[0] / bs, b->dsm_faults[1] / bs,
		       (b->dsm_sent[0] + b->dsm_sent[1]) / bs);
	printf("\n      per 4 KiB read: %.2f device requests, %.2f "
	       "notifies, %.2f interrupts; exits on CPU %d %.1f (MMIO %.1f), "
	       "%.1f less the background\n",
	       c->reqs / n, c->notifies / n, c->irqs / n, cpu,
	       c->exits[cpu] / n, c->mmio[cpu] / n, NET(exits[cpu]));
	if (r->hosts) {
		printf("      per 4 KiB read: DSM faults host 0 %.2f, host 1 "
		       "%.2f (CPU 1's %.2f, waiting ~%.2f ms in all); less "
		       "the background %.2f and %.2f\n",
		       c->dsm_faults[0] / n, c->dsm_faults[1] / n,
		       c->vcpu_dsm[1] / n, c->vcpu_wait_us[1] / n / 1e3,
		       NET(dsm_faults[0]), NET(dsm_faults[1]));
		printf("      per 4 KiB read: DSM messages %.2f (%.1f KiB of "
		       "pages), less the background %.2f (%.1f KiB); "
		       "interrupts forwarded host 0 -> 1 %.2f\n",
		       (c->dsm_sent[0] + c->dsm_sent[1]) / n,
		       (c->dsm_kib[0] + c->dsm_kib[1]) / n,
		       NET(dsm_sent[0]) + NET(dsm_sent[1]),
		       NET(dsm_kib[0]) + NET(dsm_kib[1]), c->irq_sent[0] / n);
	}
#undef NET
	printf("      the data disk's interrupts by guest CPU (whole run): "
	       "CPU 0 %llu, CPU 1 %llu\n",
	       r->irq_cpu[0], r->irq_cpu[1]);
}

static void print_run(const struct run *r, const struct floor *fb,
		      const struct floor *fd, double hsys, double hzero)
{
	printf("  %s (program on CPU %d; boot to exit %.0f s)\n", r->label,
	       r->cpu, r->wall);
	printf("      guest kernel alone, p50: null system call %.1f us "
	       "(%.0fx the host's), 4 KiB read of /dev/zero %.1f us "
	       "(%.0fx)\n",
	       r->sys_us, r->sys_us / hsys, r->zero_us, r->zero_us / hzero);
	printf("      4 KiB random, QD1: p50 %9.1f us  p99 %9.1f us  max "
	       "%9.1f us  %7.1f IOPS (n=%ld in %.1f s)\n",
	       r->p50, r->p99, r->max, r->iops, r->n, r->secs);
	if (fb->ok)
		printf("        / buffered floor: p50 %.0fx  p99 %.0fx  IOPS "
		       "%.4fx\n",
		       r->p50 / fb->p50, r->p99 / fb->p99, r->iops / fb->iops);
	if (fd->ok)
		printf("        / O_DIRECT floor: p50 %.1fx  p99 %.1fx  IOPS "
		       "%.3fx\n",
		       r->p50 / fd->p50, r->p99 / fd->p99, r->iops / fd->iops);
	/* A 1 MiB read is one device request when its pages are contiguous
	 * in guest-physical memory, up to three when they are scattered
	 * (seg_max 126): the guest's allocator decides, not the device. */
	double rq = r->seq.ok ? (double)r->seq.reqs / r->seq_n : 0;
	printf("      1 MiB sequential: %.2f MiB/s (%ld MiB in %.1f s; p50 "
	       "%.1f ms a read; %.2f device requests a read, %.1f ms "
	       "each)",
	       r->mibps, r->seq_n, r->seq_secs, r->seq_p50 / 1e3, rq,
	       rq ? r->seq_secs * 1e3 / (r->seq_n * rq) : 0);
	if (fb->ok)
		printf(" = %.4fx buffered", r->mibps / fb->mibps);
	if (fd->ok)
		printf(", %.4fx O_DIRECT", r->mibps / fd->mibps);
	printf("\n");
	print_counts(r);
	if (r->status || r->stopped)
		printf(
		    "      !! the VM did not end cleanly (status %d%s): %s\n",
		    r->status, r->stopped ? ", stopped: no power-off" : "",
		    r->log);
}

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: blk [--slos BIN] [--kernel F] [--initrd F] [--guest "
	    "F]\n"
	    "           [--size MIB] [--secs S] [--seq-secs S] [--spin-secs "
	    "S]\n"
	    "           [--floor-n N] [--dir PARENT] [--only local|hosts]\n"
	    "           [--keep] [--verbose]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *slos = "build/slos", *kernel = "build/linux/vmlinux",
		   *initrd = "build/linux/initramfs.cpio",
		   *guest = "build/bench/blk/guest", *parent = "/tmp",
		   *only = NULL;
	double secs = 20, seq_secs = 30, spin_secs = 5;
	int floor_n = 20000;
	unsigned mib = 256;
	bool keep = false;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--keep"))
			keep = true;
		else if (!strcmp(a, "--verbose"))
			verbose = true;
		else if (!v)
			usage();
		else if (!strcmp(a, "--slos"))
			slos = v;
		else if (!strcmp(a, "--kernel"))
			kernel = v;
		else if (!strcmp(a, "--initrd"))
			initrd = v;
		else if (!strcmp(a, "--guest"))
			guest = v;
		else if (!strcmp(a, "--size"))
			mib = atoi(v);
		else if (!strcmp(a, "--secs"))
			secs = atof(v);
		else if (!strcmp(a, "--seq-secs"))
			seq_secs = atof(v);
		else if (!strcmp(a, "--spin-secs"))
			spin_secs = atof(v);
		else if (!strcmp(a, "--floor-n"))
			floor_n = atoi(v);
		else if (!strcmp(a, "--dir"))
			parent = v;
		else if (!strcmp(a, "--only"))
			only = v;
		else
			usage();
		if (strcmp(a, "--keep") && strcmp(a, "--verbose"))
			i++;
	}
	if (mib < 2 || secs <= 0 || seq_secs <= 0 || spin_secs <= 0 ||
	    floor_n < 100 ||
	    (only && strcmp(only, "local") && strcmp(only, "hosts")))
		usage();
	if (geteuid() != 0) {
		fprintf(stderr, "bench/blk: must run as root (--local-hosts "
				"makes network namespaces)\n");
		return 2;
	}
	if (access(slos, X_OK) || access(kernel, R_OK) ||
	    access(initrd, R_OK) || access(guest, X_OK)) {
		fprintf(stderr,
			"bench/blk: %s, %s, %s or %s missing (make; "
			"scripts/build-linux-guest.sh build/linux)\n",
			slos, kernel, initrd, guest);
		return 2;
	}
	if (system("command -v mke2fs >/dev/null")) {
		fprintf(stderr, "bench/blk: no mke2fs (e2fsprogs)\n");
		return 2;
	}

	char dir[256], data[300];
	snprintf(dir, sizeof(dir), "%s/slos-bench-blk-XXXXXX", parent);
	if (!mkdtemp(dir))
		die(dir);
	snprintf(data, sizeof(data), "%s/data.img", dir);
	double l0 = load1();
	time_t now = time(NULL);
	char date[32];
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M", localtime(&now));

	make_data(data, mib);
	if (sh("mkdir -p %1$s/files && cp %2$s %1$s/files/guest", dir, guest))
		return 2;
	write_script(dir, secs, seq_secs, spin_secs);
	if (sh("truncate -s 16M %1$s/script.img && "
	       "mke2fs -q -t ext2 -d %1$s/files %1$s/script.img",
	       dir))
		return 2;

	struct floor fb, fd;
	size_t size = (size_t)mib << 20;
	double hsys, hzero;
	host_kernel(&hsys, &hzero);
	warm(data);
	floor_run(data, false, floor_n, size, &fb);
	floor_run(data, true, floor_n, size, &fd);

	struct run runs[2] = {
	    {.label = "(a) local: 1 host, 1 vCPU", .hosts = false},
	    {.label = "(b) forwarded: CPU 1 on host 1, devices on host 0",
	     .hosts = true},
	};
	int bad = 0;
	for (int i = 0; i < 2; i++) {
		if (only && strcmp(only, runs[i].hosts ? "hosts" : "local"))
			continue;
		warm(data);
		bad |= boot(slos, kernel, initrd, dir, &runs[i]);
	}

	printf("bench/blk (KVM: %s%s; %s; load average %.1f at the start, "
	       "%.1f at the end)\n",
	       pvm__kvm_kind_name(pvm__kvm_kind()),
	       pvm__host_emulated() ? ", in the lab (QEMU TCG)" : "", date, l0,
	       load1());
	printf("  data disk: %u MiB in %s, read-only /dev/vdb in the guest\n",
	       mib, dir);
	printf("host floor, io_uring QD1 on the data file:\n");
	print_floor("buffered, page cache warm", &fb);
	print_floor("O_DIRECT", &fd);
	printf("  host kernel alone, p50: null system call %.2f us, 4 KiB "
	       "read of /dev/zero %.2f us (n=10000)\n",
	       hsys, hzero);
	printf("guest: project kernel + busybox, O_DIRECT pread QD1 on "
	       "/dev/vdb, timed by the TSC at ring 3:\n");
	for (int i = 0; i < 2; i++)
		if (runs[i].n)
			print_run(&runs[i], &fb, &fd, hsys, hzero);
	if (runs[0].n && runs[1].n)
		printf("  (b) / (a): p50 %.2fx  p99 %.2fx  IOPS %.2fx  MiB/s "
		       "%.2fx\n",
		       runs[1].p50 / runs[0].p50, runs[1].p99 / runs[0].p99,
		       runs[1].iops / runs[0].iops,
		       runs[1].mibps / runs[0].mibps);
	if (!keep && !bad)
		sh("rm -rf %s", dir);
	else
		fprintf(stderr, "bench/blk: kept %s (consoles: *.log)\n", dir);
	return bad ? 1 : 0;
}
