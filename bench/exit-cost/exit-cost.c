// SPDX-License-Identifier: MIT
/*
 * bench/exit-cost: the round trip of a guest port-I/O exit to the VMM and
 * back, from ring 3 of the test OS (the guest times each `out` to the echo
 * port with its TSC), against the floor measured in the same run: a bare
 * ioctl(KVM_RUN) round trip (immediate_exit set, so KVM returns at once
 * without entering the guest).
 *
 * usage: exit-cost [SLOS_BIN [TESTOS_ELF [N]]]
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

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

/* p50/p99 of a bare KVM_RUN that returns at once. */
static int bare_run(int n, double *p50, double *p99)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm, vcpu, sz;
	struct kvm_run *run;
	double *t = calloc(n, sizeof(*t));

	if (kvm < 0 || !t)
		return -1;
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	vcpu = vm < 0 ? -1 : ioctl(vm, KVM_CREATE_VCPU, 0);
	sz = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vcpu < 0 || sz <= 0)
		return -1;
	run = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		return -1;
	run->immediate_exit = 1;
	for (int i = 0; i < n; i++) {
		double t0 = now_ns();
		int r = ioctl(vcpu, KVM_RUN, 0);
		t[i] = now_ns() - t0;
		if (r == 0 || errno != EINTR)
			return -1;
	}
	qsort(t, n, sizeof(*t), cmp);
	*p50 = t[n / 2];
	*p99 = t[n * 99 / 100];
	munmap(run, sz);
	close(vcpu);
	close(vm);
	close(kvm);
	free(t);
	return 0;
}

int main(int argc, char **argv)
{
	const char *slos = argc > 1 ? argv[1] : "build/slos";
	const char *testos = argc > 2 ? argv[2] : "build/guest/testos.elf";
	int n = argc > 3 ? atoi(argv[3]) : 20000;
	double b50, b99, g50 = -1, g99 = -1;
	char cmd[1024], line[512];

	if (n < 100)
		n = 100;
	if (bare_run(n, &b50, &b99)) {
		fprintf(stderr, "exit-cost: bare KVM_RUN failed: %s\n",
			strerror(errno));
		return 1;
	}
	snprintf(cmd, sizeof(cmd),
		 "%s run --kernel %s --vcpus 1 --mem 64M "
		 "--cmdline 'test=exit-cost n=%d' 2>&1",
		 slos, testos, n);
	FILE *p = popen(cmd, "r");
	if (!p)
		return 1;
	while (fgets(line, sizeof(line), p)) {
		char *s = strstr(line, "exit-cost: n=");
		if (s)
			sscanf(strstr(s, "p50_ns=") ? strstr(s, "p50_ns=") : s,
			       "p50_ns=%lf p99_ns=%lf", &g50, &g99);
	}
	int st = pclose(p);
	if (g50 < 0 || st) {
		fprintf(stderr, "exit-cost: the test OS run failed (%d)\n", st);
		return 1;
	}
	printf("exit-cost: n=%d\n", n);
	printf("  bare KVM_RUN round trip (floor): p50 %8.0f ns  p99 %8.0f ns\n",
	       b50, b99);
	printf("  ring-3 port-I/O exit round trip: p50 %8.0f ns  p99 %8.0f ns\n",
	       g50, g99);
	printf("  ratio to floor:                  p50 %8.2fx   p99 %8.2fx\n",
	       g50 / b50, g99 / b99);
	return 0;
}
