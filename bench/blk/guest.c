// SPDX-License-Identifier: MIT
/*
 * bench/blk's guest side: an ordinary static Linux program (built with
 * the host's gcc -static -O2 by the Makefile) that measures a block
 * device from inside the guest, bypassing the guest's page cache
 * (O_DIRECT), so every read is a virtio-blk request:
 *
 *  - random reads: 4 KiB at uniformly random 4 KiB-aligned offsets, one
 *    pread at a time (queue depth 1: the project kernel has neither AIO
 *    nor io_uring, and QD1 is what gives a per-request latency), for
 *    -t SECS or -n OPS, whichever comes first, after -w untimed reads;
 *  - sequential reads: 1 MiB preads from offset 0 to the end of the
 *    device, or for -s SECS.
 *
 * Each request is timed with the TSC at ring 3 (a clock_gettime that is
 * not served by the vDSO would be a system call, and under PVM every
 * guest kernel entry is emulated: it would land in the figure); the TSC
 * rate is calibrated against CLOCK_MONOTONIC over the whole run. Output,
 * one line each, for bench/blk/blk.c to parse:
 *
 *   BLK ready dev=D bytes=N cpu=C clock_ns=NS
 *   BLK kernel null_syscall_us=.. read_zero_4k_us=..   (p50s, n=200)
 *   BLK mark spin                (then 1 s asleep: the host takes stats)
 *                                (-i SECS spinning at ring 3, no I/O)
 *   BLK mark randread
 *   BLK randread qd=1 bs=4096 n=N secs=S iops=I p50_us=.. p99_us=.. max_us=..
 *   BLK mark seqread
 *   BLK seqread bs=1048576 n=N mib=M secs=S mibps=R p50_us=.. p99_us=..
 *   BLK mark end
 *   BLK done                     (exit 0), or BLK FAIL: why (exit 1)
 *
 * usage: guest DEV [-t SECS] [-n OPS] [-w WARMUP] [-s SECS] [-i SECS]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#define BS_RAND	 4096
#define BS_SEQ	 (1 << 20)
#define KERNEL_N 200

static uint64_t tsc0;
static double ns0;

static double mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

/* TSC ticks per us, from the start of the program to now. */
static double tsc_per_us(void)
{
	uint64_t t = __rdtsc();
	double ns = mono_ns();

	return (t - tsc0) / ((ns - ns0) / 1e3);
}

static void fail(const char *what)
{
	printf("BLK FAIL: %s: %s\n", what, strerror(errno));
	fflush(stdout);
	exit(1);
}

/* The host reads the VMM's counters when it sees a mark: give it time
 * to do so before the phase begins. */
static void mark(const char *phase)
{
	printf("BLK mark %s\n", phase);
	fflush(stdout);
	sleep(1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* As bench/bench.h's (the test OS's): element (n * p - 1) / 100. */
static uint64_t pct(uint64_t *v, long n, int p)
{
	long i = (n * p - 1) / 100;

	return v[i < 0 ? 0 : i];
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static void full_pread(int fd, void *buf, size_t len, off_t off)
{
	ssize_t r = pread(fd, buf, len, off);

	if (r < 0)
		fail("pread");
	if ((size_t)r != len) {
		errno = EIO;
		fail("short pread");
	}
}

int main(int argc, char **argv)
{
	double rand_secs = 20, seq_secs = 60, spin_secs = 5, t;
	long max_ops = 200000, warmup = 16, n;
	uint64_t size, seed = 0x9e3779b97f4a7c15ULL, *lat;
	const char *dev;
	void *buf4k, *buf1m;
	int fd, opt;

	while ((opt = getopt(argc, argv, "t:n:w:s:i:")) != -1) {
		switch (opt) {
		case 't':
			rand_secs = atof(optarg);
			break;
		case 'n':
			max_ops = atol(optarg);
			break;
		case 'w':
			warmup = atol(optarg);
			break;
		case 's':
			seq_secs = atof(optarg);
			break;
		case 'i':
			spin_secs = atof(optarg);
			break;
		default:
			fprintf(stderr, "usage: guest DEV [-t SECS] [-n OPS] "
					"[-w WARMUP] [-s SECS] [-i SECS]\n");
			return 2;
		}
	}
	if (optind != argc - 1 || max_ops < 1) {
		fprintf(stderr, "usage: guest DEV [-t SECS] [-n OPS] [-w "
				"WARMUP] [-s SECS] [-i SECS]\n");
		return 2;
	}
	dev = argv[optind];
	tsc0 = __rdtsc();
	ns0 = mono_ns();

	fd = open(dev, O_RDONLY | O_DIRECT);
	if (fd < 0)
		fail(dev);
	/* A regular file works too (a check of this program on the host). */
	if (ioctl(fd, BLKGETSIZE64, &size)) {
		struct stat st;

		if (fstat(fd, &st))
			fail("BLKGETSIZE64");
		size = st.st_size;
	}
	if (size < BS_SEQ) {
		errno = EINVAL;
		fail("device smaller than 1 MiB");
	}
	/* Allocated and touched before any timing: a first touch is a
	 * guest page fault (and, over hosts, maybe a DSM fault). */
	long cap = max_ops > KERNEL_N ? max_ops : KERNEL_N;
	lat = calloc(cap, sizeof(*lat));
	if (!lat || posix_memalign(&buf4k, 4096, BS_RAND) ||
	    posix_memalign(&buf1m, 4096, BS_SEQ))
		fail("memory");
	memset(lat, 0, cap * sizeof(*lat));
	memset(buf4k, 0, BS_RAND);
	memset(buf1m, 0, BS_SEQ);
	/* What a clock read costs here (the loops read it between
	 * requests): tens of ns through the vDSO, far more as a system
	 * call under PVM. */
	double c0 = mono_ns();
	for (int i = 0; i < 100; i++)
		mono_ns();
	printf("BLK ready dev=%s bytes=%llu cpu=%d clock_ns=%.0f\n", dev,
	       (unsigned long long)size, sched_getcpu(),
	       (mono_ns() - c0) / 101);
	fflush(stdout);

	/* The guest kernel without the device, for scale: a null system
	 * call, and a 4 KiB read that only copies (from /dev/zero). Under
	 * PVM both are emulated guest ring 0, as most of a device read is. */
	int zfd = open("/dev/zero", O_RDONLY);
	if (zfd < 0)
		fail("/dev/zero");
	for (int i = 0; i < KERNEL_N; i++) {
		uint64_t a = __rdtsc();

		syscall(SYS_getppid);
		lat[i] = __rdtsc() - a;
	}
	qsort(lat, KERNEL_N, sizeof(*lat), cmp_u64);
	uint64_t sys50 = pct(lat, KERNEL_N, 50);
	for (int i = 0; i < KERNEL_N; i++) {
		uint64_t a = __rdtsc();

		if (read(zfd, buf4k, BS_RAND) != BS_RAND)
			fail("read /dev/zero");
		lat[i] = __rdtsc() - a;
	}
	qsort(lat, KERNEL_N, sizeof(*lat), cmp_u64);
	close(zfd);
	double fk = tsc_per_us();
	printf("BLK kernel null_syscall_us=%.1f read_zero_4k_us=%.1f\n",
	       sys50 / fk, pct(lat, KERNEL_N, 50) / fk);
	fflush(stdout);

	uint64_t blocks = size / BS_RAND;
	for (long i = 0; i < warmup; i++)
		full_pread(fd, buf4k, BS_RAND, rnd(&seed) % blocks * BS_RAND);

	/* The VM's background with this CPU busy but no I/O (ring 3 only:
	 * timer ticks, and over hosts the pages they make move), so the
	 * host can tell it from what each read costs. */
	mark("spin");
	double start = mono_ns(), limit = spin_secs * 1e9;
	while (mono_ns() - start < limit)
		;
	mark("randread");
	start = mono_ns();
	limit = rand_secs * 1e9;
	for (n = 0; n < max_ops && (n & 15 || mono_ns() - start < limit); n++) {
		off_t off = rnd(&seed) % blocks * BS_RAND;
		uint64_t a = __rdtsc();

		full_pread(fd, buf4k, BS_RAND, off);
		lat[n] = __rdtsc() - a;
	}
	t = (mono_ns() - start) / 1e9;
	if (!n) {
		errno = EINVAL;
		fail("no random read in the time given");
	}
	double f = tsc_per_us();
	qsort(lat, n, sizeof(*lat), cmp_u64);
	printf("BLK randread qd=1 bs=%d n=%ld secs=%.3f iops=%.1f "
	       "p50_us=%.1f p99_us=%.1f max_us=%.1f\n",
	       BS_RAND, n, t, n / t, pct(lat, n, 50) / f, pct(lat, n, 99) / f,
	       lat[n - 1] / f);
	fflush(stdout);

	mark("seqread");
	long nseq = size / BS_SEQ;
	start = mono_ns();
	limit = seq_secs * 1e9;
	for (n = 0; n < nseq && n < max_ops && mono_ns() - start < limit; n++) {
		uint64_t a = __rdtsc();

		full_pread(fd, buf1m, BS_SEQ, (off_t)n * BS_SEQ);
		lat[n] = __rdtsc() - a;
	}
	t = (mono_ns() - start) / 1e9;
	if (!n) {
		errno = EINVAL;
		fail("no sequential read in the time given");
	}
	f = tsc_per_us();
	qsort(lat, n, sizeof(*lat), cmp_u64);
	printf("BLK seqread bs=%d n=%ld mib=%ld secs=%.3f mibps=%.2f "
	       "p50_us=%.1f p99_us=%.1f\n",
	       BS_SEQ, n, n, t, n / t, pct(lat, n, 50) / f,
	       pct(lat, n, 99) / f);
	printf("BLK tsc_mhz=%.1f\n", f);
	fflush(stdout);
	mark("end");
	printf("BLK done\n");
	return 0;
}
