/*
 * The demo's disk job (make demo, docs/demo.md): writes FILE of MiB MiB of
 * a deterministic pattern, fsyncs it, drops the page cache so the read
 * comes from the disk again, reads it back and checks every byte. Run in
 * a directory on the virtio disk; the host can check the file afterwards
 * (the pattern depends only on the size). An ordinary Linux program:
 * static, built by the host's gcc.
 *
 *   diskio [FILE [MiB]]   defaults: diskio.dat, 16
 *
 * Prints "SLOS-DEMO diskio ... OK" (or FAIL) with both rates.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOCK (1u << 20)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Block i's bytes: xorshift64 seeded by the block number. */
static void fill(uint64_t *p, uint64_t block)
{
	uint64_t x = 0x9e3779b97f4a7c15ull * (block + 1);

	for (size_t i = 0; i < BLOCK / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = x;
	}
}

static bool full(ssize_t (*io)(int, void *, size_t), int fd, void *p)
{
	size_t done = 0;

	while (done < BLOCK) {
		ssize_t r;

		errno = 0; /* a short file reads 0 with no error */
		r = io(fd, (char *)p + done, BLOCK - done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		done += r;
	}
	return true;
}

static ssize_t wr(int fd, void *p, size_t n)
{
	return write(fd, p, n);
}

/* Best effort: without it the read may come from the page cache. */
static bool drop_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	bool ok = fd >= 0 && write(fd, "3\n", 2) == 2;

	if (fd >= 0)
		close(fd);
	return ok;
}

int main(int argc, char **argv)
{
	const char *file = argc > 1 ? argv[1] : "diskio.dat";
	unsigned long mib = argc > 2 ? strtoul(argv[2], NULL, 10) : 16;
	uint64_t *want = malloc(BLOCK), *got = malloc(BLOCK);
	double t0, wsecs, rsecs;
	unsigned bad = 0;
	bool dropped;
	int fd;

	if (!want || !got || !mib || mib > 4096) {
		fprintf(stderr, "usage: diskio [FILE [MiB (1..4096)]]\n");
		return 2;
	}
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		fprintf(stderr, "diskio: %s: %s\n", file, strerror(errno));
		return 1;
	}
	t0 = now();
	for (unsigned b = 0; b < mib; b++) {
		fill(want, b);
		if (!full(wr, fd, want)) {
			fprintf(stderr, "diskio: write: %s\n", strerror(errno));
			return 1;
		}
	}
	if (fsync(fd) || close(fd)) {
		fprintf(stderr, "diskio: fsync: %s\n", strerror(errno));
		return 1;
	}
	wsecs = now() - t0;
	dropped = drop_caches();
	fd = open(file, O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "diskio: %s: %s\n", file, strerror(errno));
		return 1;
	}
	t0 = now();
	for (unsigned b = 0; b < mib; b++) {
		if (!full(read, fd, got)) {
			fprintf(stderr, "diskio: read: %s\n",
				errno ? strerror(errno) : "file too short");
			return 1;
		}
		fill(want, b);
		bad += memcmp(want, got, BLOCK) != 0;
	}
	rsecs = now() - t0;
	close(fd);
	printf("SLOS-DEMO diskio %s %lu MiB: write+fsync %.1f MiB/s, read%s "
	       "%.1f MiB/s, %u bad blocks %s\n",
	       file, mib, mib / wsecs, dropped ? "" : " (cached)", mib / rsecs,
	       bad, bad ? "FAIL" : "OK");
	free(want);
	free(got);
	return bad ? 1 : 0;
}
