// SPDX-License-Identifier: MIT
/*
 * An ordinary Linux program (static, built with the host's gcc) that the
 * stock initramfs runs as /apps/uspace: it checks the guest's user space
 * the way an application would use it, and prints one line per check and a
 * verdict the integration test reads:
 *   SLOS-USPACE cpus nproc=N cpuinfo=N online=N
 *   SLOS-USPACE threads n=N cpus-seen=N sum=0x... ok
 *   SLOS-USPACE exec nproc-said=N ok
 *   SLOS-USPACE pipe bytes=N ok
 *   SLOS-USPACE tmpfs bytes=N ok
 *   SLOS-USPACE PASS
 * or, for each check that failed, SLOS-USPACE FAIL: why, and at the end
 * SLOS-USPACE FAILED. A check that hangs is reported after 120 s.
 * Exit status 0 only when every check passed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORDS	   (1u << 20) /* 8 MiB of data the threads sum */
#define ROUNDS	   8
#define PIPE_BYTES (4u << 20)
#define FILE_BYTES (8u << 20)

static int failed;
static const char *volatile stage = "start";

static void on_alarm(int sig)
{
	static const char a[] = "SLOS-USPACE FAIL: timed out in ";

	(void)sig;
	if (write(1, a, sizeof(a) - 1) < 0 ||
	    write(1, stage, strlen(stage)) < 0 || write(1, "\n", 1) < 0)
		_exit(2);
	_exit(1);
}

static void fail(const char *fmt, ...)
{
	va_list ap;

	printf("SLOS-USPACE FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	failed = 1;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

static uint64_t *data;

struct worker {
	pthread_t t;
	int cpu, ran_on;
	size_t lo, hi;
	uint64_t sum;
};

static uint64_t sum_range(size_t lo, size_t hi)
{
	uint64_t s = 0;

	for (int r = 0; r < ROUNDS; r++)
		for (size_t i = lo; i < hi; i++)
			s += mix(data[i] + r);
	return s;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(w->cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		w->ran_on = -1;
		return NULL;
	}
	w->sum = sum_range(w->lo, w->hi);
	w->ran_on = sched_getcpu();
	return NULL;
}

static int count_cpuinfo(void)
{
	char line[256];
	int n = 0;
	FILE *f = fopen("/proc/cpuinfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += !strncmp(line, "processor", 9);
	fclose(f);
	return n;
}

/* One thread pinned to each online CPU sums its share of the data; the
 * total must equal a single-threaded sum over all of it. */
static void check_threads(int n)
{
	struct worker *w = calloc(n, sizeof(*w));
	uint64_t total = 0, want;
	int seen = 0;

	data = malloc(WORDS * sizeof(*data));
	if (!w || !data) {
		fail("threads: out of memory");
		return;
	}
	for (size_t i = 0; i < WORDS; i++)
		data[i] = mix(i);
	for (int i = 0; i < n; i++) {
		int e;
		w[i].cpu = i;
		w[i].lo = (size_t)WORDS * i / n;
		w[i].hi = (size_t)WORDS * (i + 1) / n;
		e = pthread_create(&w[i].t, NULL, work, &w[i]);
		if (e) {
			/* the program ends soon after: no need to join */
			fail("threads: pthread_create: %s", strerror(e));
			return;
		}
	}
	for (int i = 0; i < n; i++) {
		pthread_join(w[i].t, NULL);
		total += w[i].sum;
		seen += w[i].ran_on == i;
	}
	want = sum_range(0, WORDS);
	printf("SLOS-USPACE threads n=%d cpus-seen=%d sum=0x%016llx %s\n", n,
	       seen, (unsigned long long)total,
	       total == want && seen == n ? "ok" : "BAD");
	if (total != want)
		fail("threads: sum 0x%llx, single-threaded 0x%llx",
		     (unsigned long long)total, (unsigned long long)want);
	if (seen != n)
		fail("threads: only %d of %d threads ran on their CPU", seen,
		     n);
	free(w);
}

/* fork + exec of busybox's nproc, its output read through a pipe. */
static void check_exec(int n)
{
	char buf[64] = {0};
	int p[2], st = -1;
	ssize_t got = 0, r;
	pid_t pid;

	if (pipe(p)) {
		fail("exec: pipe: %s", strerror(errno));
		return;
	}
	pid = fork();
	if (pid < 0) {
		fail("exec: fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return;
	}
	if (!pid) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execlp("nproc", "nproc", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	while ((r = read(p[0], buf + got, sizeof(buf) - 1 - got)) > 0)
		got += r;
	close(p[0]);
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fail("exec: nproc ended with status 0x%x", st);
		return;
	}
	printf("SLOS-USPACE exec nproc-said=%d %s\n", atoi(buf),
	       atoi(buf) == n ? "ok" : "BAD");
	if (atoi(buf) != n)
		fail("exec: nproc said '%s', expected %d", buf, n);
}

/* A child checksums what the parent streams through one pipe and sends
 * the sum back through another. */
static void check_pipe(void)
{
	int down[2], up[2], st;
	uint64_t sent = 0, back = 0;
	pid_t pid;

	if (pipe(down) || pipe(up)) {
		fail("pipe: %s", strerror(errno));
		return;
	}
	pid = fork();
	if (pid < 0) {
		fail("pipe: fork: %s", strerror(errno));
		for (int i = 0; i < 2; i++)
			close(down[i]), close(up[i]);
		return;
	}
	if (!pid) {
		uint64_t s = 0, b[512];
		ssize_t r;
		close(down[1]);
		close(up[0]);
		/* Byte by byte: reads may split the stream anywhere. */
		while ((r = read(down[0], b, sizeof(b))) > 0)
			for (ssize_t i = 0; i < r; i++)
				s = s * 31 + ((uint8_t *)b)[i];
		_exit(write(up[1], &s, sizeof(s)) == sizeof(s) ? 0 : 1);
	}
	close(down[0]);
	close(up[1]);
	for (uint32_t off = 0; off < PIPE_BYTES;) {
		uint8_t b[4096];
		for (size_t i = 0; i < sizeof(b); i++) {
			b[i] = (uint8_t)mix(off + i);
			sent = sent * 31 + b[i];
		}
		if (write(down[1], b, sizeof(b)) != (ssize_t)sizeof(b)) {
			fail("pipe: write: %s", strerror(errno));
			break;
		}
		off += sizeof(b);
	}
	close(down[1]);
	if (read(up[0], &back, sizeof(back)) != sizeof(back))
		fail("pipe: no checksum back");
	close(up[0]);
	waitpid(pid, &st, 0);
	printf("SLOS-USPACE pipe bytes=%u %s\n", PIPE_BYTES,
	       back == sent ? "ok" : "BAD");
	if (back != sent)
		fail("pipe: child summed 0x%llx, sent 0x%llx",
		     (unsigned long long)back, (unsigned long long)sent);
}

/* A file written, synced, read back and removed on a fresh tmpfs. */
static void check_tmpfs(void)
{
	const char *dir = "/mnt/uspace", *path = "/mnt/uspace/file";
	uint8_t *w = malloc(FILE_BYTES), *r = malloc(FILE_BYTES);
	ssize_t n;
	int fd;

	mkdir("/mnt", 0755);
	mkdir(dir, 0755);
	if (!w || !r || mount("tmpfs", dir, "tmpfs", 0, "size=64m")) {
		fail("tmpfs: mount: %s", strerror(errno));
		return;
	}
	for (size_t i = 0; i < FILE_BYTES; i++)
		w[i] = (uint8_t)mix(i * 7);
	fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
	if (fd < 0 || write(fd, w, FILE_BYTES) != FILE_BYTES || fsync(fd)) {
		fail("tmpfs: write: %s", strerror(errno));
		return;
	}
	close(fd);
	fd = open(path, O_RDONLY);
	n = fd < 0 ? -1 : read(fd, r, FILE_BYTES);
	if (fd >= 0)
		close(fd);
	printf("SLOS-USPACE tmpfs bytes=%zd %s\n", n,
	       n == FILE_BYTES && !memcmp(w, r, FILE_BYTES) ? "ok" : "BAD");
	if (n != FILE_BYTES || memcmp(w, r, FILE_BYTES))
		fail("tmpfs: read back %zd bytes, not what was written", n);
	if (unlink(path) || umount(dir))
		fail("tmpfs: cleanup: %s", strerror(errno));
	free(w);
	free(r);
}

int main(void)
{
	int nproc = (int)sysconf(_SC_NPROCESSORS_ONLN);
	int cpuinfo = count_cpuinfo();
	cpu_set_t set;

	setvbuf(stdout, NULL, _IOLBF, 0);
	/* A child that dies shows as a failed check, not a silent SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alarm);
	alarm(120);
	CPU_ZERO(&set);
	sched_getaffinity(0, sizeof(set), &set);
	printf("SLOS-USPACE cpus nproc=%d cpuinfo=%d online=%d\n", nproc,
	       cpuinfo, CPU_COUNT(&set));
	if (nproc < 1 || cpuinfo != nproc || CPU_COUNT(&set) != nproc)
		fail("cpus: nproc %d, /proc/cpuinfo %d, affinity %d", nproc,
		     cpuinfo, CPU_COUNT(&set));
	stage = "threads";
	check_threads(nproc);
	stage = "exec";
	check_exec(nproc);
	stage = "pipe";
	check_pipe();
	stage = "tmpfs";
	check_tmpfs();
	printf("SLOS-USPACE %s\n", failed ? "FAILED" : "PASS");
	return failed;
}
