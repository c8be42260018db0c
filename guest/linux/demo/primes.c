/*
 * The demo's compute job (make demo, docs/demo.md): counts the primes up
 * to LIMIT with one thread per online CPU, each pinned to its CPU, so on a
 * VM over several hosts the threads run on vCPUs of different hosts. The
 * count is checked against a sieve the main thread runs on its own.
 * An ordinary Linux program: static, built by the host's gcc, unchanged
 * for the VM.
 *
 *   primes [LIMIT [THREADS]]   defaults: 2000000, the online CPUs
 *
 * Prints "SLOS-DEMO primes ... OK" (or FAIL) and exits 0 only when the
 * count is right and every thread ran on the CPU it was pinned to.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Work is dealt in chunks round-robin, so every thread gets a similar
 * mix of small and large numbers. */
#define CHUNK 16384

struct worker {
	pthread_t t;
	unsigned id, nthreads, cpu, ran_on;
	uint64_t limit, count;
	double secs;
	bool pinned;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool is_prime(uint64_t n)
{
	if (n < 2)
		return false;
	if (n % 2 == 0)
		return n == 2;
	for (uint64_t d = 3; d * d <= n; d += 2)
		if (n % d == 0)
			return false;
	return true;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	cpu_set_t set;
	double t0 = now();

	CPU_ZERO(&set);
	CPU_SET(w->cpu, &set);
	w->pinned = !sched_setaffinity(0, sizeof(set), &set);
	for (uint64_t lo = (uint64_t)w->id * CHUNK; lo <= w->limit;
	     lo += (uint64_t)w->nthreads * CHUNK) {
		uint64_t hi = lo + CHUNK;

		for (uint64_t n = lo; n < hi && n <= w->limit; n++)
			w->count += is_prime(n);
	}
	w->ran_on = sched_getcpu();
	w->secs = now() - t0;
	return NULL;
}

static uint64_t sieve(uint64_t limit)
{
	uint8_t *composite = calloc(limit + 1, 1);
	uint64_t count = 0;

	if (!composite)
		return 0;
	for (uint64_t i = 2; i <= limit; i++) {
		if (composite[i])
			continue;
		count++;
		for (uint64_t j = i * i; j <= limit; j += i)
			composite[j] = 1;
	}
	free(composite);
	return count;
}

int main(int argc, char **argv)
{
	uint64_t limit = argc > 1 ? strtoull(argv[1], NULL, 10) : 2000000;
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned n =
	    argc > 2 ? strtoul(argv[2], NULL, 10) : (unsigned long)online;
	uint64_t total = 0, want;
	struct worker *w;
	bool ok = true;
	double t0, secs;

	if (!limit || limit > (1ull << 32) || !n || n > 1024 || online < 1) {
		fprintf(stderr, "usage: primes [LIMIT (1..2^32) [THREADS]]\n");
		return 2;
	}
	w = calloc(n, sizeof(*w));
	if (!w)
		return 1;
	t0 = now();
	for (unsigned i = 0; i < n; i++) {
		w[i] = (struct worker){
		    .id = i, .nthreads = n, .cpu = i % online, .limit = limit};
		if (pthread_create(&w[i].t, NULL, work, &w[i])) {
			perror("primes: pthread_create");
			return 1;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		pthread_join(w[i].t, NULL);
		total += w[i].count;
		printf("SLOS-DEMO primes thread %u cpu %u count %llu %.2f s\n",
		       i, w[i].ran_on, (unsigned long long)w[i].count,
		       w[i].secs);
		ok &= w[i].pinned && w[i].ran_on == w[i].cpu;
	}
	secs = now() - t0;
	want = sieve(limit);
	ok &= total == want;
	printf("SLOS-DEMO primes limit=%llu threads=%u count=%llu sieve=%llu "
	       "%.2f s %s\n",
	       (unsigned long long)limit, n, (unsigned long long)total,
	       (unsigned long long)want, secs, ok ? "OK" : "FAIL");
	free(w);
	return ok ? 0 : 1;
}
