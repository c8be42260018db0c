// SPDX-License-Identifier: MIT
/*
 * bench/ipi: the round trip of an IPI between vCPUs on two hosts, against
 * a floor measured in the same run.
 *
 *  1. Floor: a TCP round trip between two network namespaces joined by a
 *     veth pair, as --local-hosts makes them, 16 bytes each way (plain
 *     blocking sockets, TCP_NODELAY). An IPI round trip over hosts is two
 *     one-way forwards (CL_IPI: ping to vCPU 1's host, pong back), i.e.
 *     one such round trip plus the VMM's work at each end.
 *  2. Local baseline: the test OS's `ipi-pingpong` on one host, 2 vCPUs.
 *  3. Over hosts: the same test over 2 local hosts, vCPU 0 on host 0 and
 *     vCPU 1 on host 1 (`--vcpu-map 0,1`), its partner spinning at ring 3,
 *     then halted (`hlt=1`). The partner's parked copy on host 0 catches
 *     the ping in the VMM's trap and forwards it; vCPU 0's copy on host 1
 *     catches the pong.
 *
 * The guest times each round with its TSC at ring 3 and prints
 * `ipi-pingpong: n=.. p50_ns=.. p99_ns=..`; --stats says how many IPIs
 * each host forwarded, which checks that they did cross.
 * Must run as root (namespaces).
 *
 * usage: ipi [--slos BIN] [--testos ELF] [--n N]
 */
#include "bench/bench.h"

#include "vmm/pvm.h"

#define WARMUP 16 /* as the test OS's ipi-pingpong */
#define MSG    16

static const struct bench_floor floor_ns = {.ns0 = "slosib0",
					    .ns1 = "slosib1",
					    .if0 = "ib0",
					    .if1 = "ib1",
					    .net = "10.98.1",
					    .port = 7198};

static void die(const char *what)
{
	fprintf(stderr, "bench/ipi: %s: %s\n", what, strerror(errno));
	exit(2);
}

struct run {
	const char *label;
	unsigned long n, p50_ns, p99_ns, sent;
	bool pass;
};

/* One slos run of ipi-pingpong; its figures from the guest's line. */
static int pingpong(const char *slos, const char *testos, int n, bool hosts,
		    bool hlt, struct run *r)
{
	char cmd[1024], line[1024];
	FILE *f;
	int st;

	snprintf(cmd, sizeof(cmd),
		 "%s run --kernel %s --vcpus 2 --mem 128M --stats%s "
		 "--cmdline 'test=ipi-pingpong rounds=%d%s' 2>&1",
		 slos, testos, hosts ? " --local-hosts 2 --vcpu-map 0,1" : "",
		 n, hlt ? " hlt=1" : "");
	f = popen(cmd, "r");
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long sent;
		char *s = strstr(line, ": caught ");
		if (!strncmp(line, "ipi-pingpong: n=", 16))
			sscanf(line,
			       "ipi-pingpong: n=%lu p50_cycles=%*u "
			       "p99_cycles=%*u p50_ns=%lu p99_ns=%lu",
			       &r->n, &r->p50_ns, &r->p99_ns);
		if (strstr(line, "TEST ipi-pingpong PASS"))
			r->pass = true;
		if (!strncmp(line, "slos: host ", 11) && s &&
		    sscanf(s, ": caught %*u, sent %lu", &sent) == 1)
			r->sent += sent;
	}
	st = f ? pclose(f) : -1;
	if (!r->pass || !r->n) {
		fprintf(stderr,
			"bench/ipi: %s failed (status %d; run `%s` to see "
			"why)\n",
			r->label, st, cmd);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *slos = "build/slos", *testos = "build/guest/testos.elf";
	int n = 1000;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--slos") && i + 1 < argc)
			slos = argv[++i];
		else if (!strcmp(argv[i], "--testos") && i + 1 < argc)
			testos = argv[++i];
		else if (!strcmp(argv[i], "--n") && i + 1 < argc)
			n = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: ipi [--slos BIN] [--testos "
					"ELF] [--n N]\n");
			return 2;
		}
	}
	if (n < 10) {
		fprintf(stderr, "bench/ipi: --n must be >= 10\n");
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "bench/ipi: must run as root (it makes network "
				"namespaces, and so does --local-hosts)\n");
		return 2;
	}
	if (access(slos, X_OK) || access(testos, R_OK)) {
		fprintf(stderr, "bench/ipi: %s or %s missing (make)\n", slos,
			testos);
		return 2;
	}

	double *t = calloc(n, sizeof(double));
	if (!t)
		die("calloc");
	const char *why;
	if (bench__tcp_floor(&floor_ns, WARMUP, n, MSG, MSG, t, &why)) {
		fprintf(stderr, "bench/ipi: TCP floor: %s\n", why);
		return 2;
	}
	double f50 = bench__pct(t, n, 50), f99 = bench__pct(t, n, 99);

	struct run runs[3] = {
	    {.label = "local, 1 host, 2 vCPUs, spinning partner"},
	    {.label = "over 2 hosts, spinning partner"},
	    {.label = "over 2 hosts, hlt=1 partner"},
	};
	if (pingpong(slos, testos, n, false, false, &runs[0]) ||
	    pingpong(slos, testos, n, true, false, &runs[1]) ||
	    pingpong(slos, testos, n, true, true, &runs[2]))
		return 1;

	/* The lab's kvm_amd looks like hardware from inside: say lab. */
	printf("bench/ipi (KVM: %s%s; n=%d)\n",
	       pvm__kvm_kind_name(pvm__kvm_kind()),
	       pvm__host_emulated() ? ", in the lab (QEMU TCG)" : "", n);
	printf("  %-44s p50 %9.1f us  p99 %9.1f us\n",
	       "floor: TCP 16 B each way, 2 netns (veth)", f50, f99);
	for (int i = 0; i < 3; i++) {
		struct run *r = &runs[i];
		printf("  %-44s p50 %9.1f us  p99 %9.1f us", r->label,
		       r->p50_ns / 1e3, r->p99_ns / 1e3);
		if (i)
			printf("  = %.2fx / %.2fx floor; IPIs forwarded %lu",
			       r->p50_ns / 1e3 / f50, r->p99_ns / 1e3 / f99,
			       r->sent);
		printf("\n");
	}
	return 0;
}
