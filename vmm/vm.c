// SPDX-License-Identifier: MIT
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vmm/acpi.h"
#include "vmm/cluster.h"
#include "vmm/ioapic.h"
#include "vmm/loader.h"
#include "vmm/cpuid.h"
#include "vmm/dsm.h"
#include "vmm/pvm.h"
#include "vmm/restore.h"
#include "vmm/sysdev.h"
#include "vmm/uart.h"
#include "vmm/vmgenid.h"
#include "vmm/vm.h"

#define KERNEL_MAX    (1ULL << 30)

uint64_t vm__now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000ULL + t.tv_nsec;
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("slos: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return -1;
}

/* Whole file into memory; NULL with a message on failure. */
static void *slurp(const char *what, const char *path, size_t *len)
{
	struct stat st;
	void *buf = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		fail("%s %s: %s", what, path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		fail("%s %s: not a regular file", what, path);
		goto out;
	}
	if ((uint64_t)st.st_size > KERNEL_MAX || st.st_size == 0) {
		fail("%s %s: size %lld is not in (0, 1 GiB]", what, path,
		     (long long)st.st_size);
		goto out;
	}
	buf = malloc(st.st_size);
	if (!buf) {
		fail("%s %s: out of memory", what, path);
		goto out;
	}
	for (size_t off = 0; off < (size_t)st.st_size;) {
		ssize_t n = read(fd, (char *)buf + off, st.st_size - off);
		if (n <= 0) {
			fail("%s %s: read failed", what, path);
			free(buf);
			buf = NULL;
			goto out;
		}
		off += n;
	}
	*len = st.st_size;
out:
	close(fd);
	return buf;
}

int vm__memslot(struct vm *vm, unsigned slot, uint64_t gpa, uint64_t len,
		void *hva, bool ro)
{
	struct kvm_userspace_memory_region r = {
	    .slot = slot,
	    .flags = ro ? KVM_MEM_READONLY : 0,
	    .guest_phys_addr = gpa,
	    .memory_size = len,
	    .userspace_addr = (uintptr_t)hva,
	};

	return ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0 ? -errno
								    : 0;
}

static int add_slot(struct vm *vm, unsigned slot, uint64_t gpa, uint64_t len)
{
	return vm__memslot(vm, slot, gpa, len, vm->mem.hva + gpa, false);
}

static int kvm_setup(struct vm *vm)
{
	struct kvm_enable_cap split = { .cap = KVM_CAP_SPLIT_IRQCHIP,
					.args = { IOAPIC_PINS } };
	int max, r;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return fail("/dev/kvm: %s", strerror(errno));
	if (ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		return fail("/dev/kvm: unsupported KVM API version");
	max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max <= 0)
		max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (vm->cfg.nr_vcpus > (unsigned)max)
		return fail("--vcpus %u: KVM allows at most %d",
			    vm->cfg.nr_vcpus, max);
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return fail("KVM_CREATE_VM: %s", strerror(errno));
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size <= 0)
		return fail("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
	if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &split) < 0)
		return fail("KVM split irqchip: %s", strerror(errno));
	if (vm->cfg.nhosts > 1 && (r = cluster__clock_filter(vm)))
		fprintf(stderr,
			"slos: no KVM MSR filter (%s): the kvmclock page will "
			"move between hosts\n",
			strerror(-r));
	/* Intel needs these for real mode (AP trampolines); harmless else. */
	ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000UL);
	vm->cpuid = calloc(1, sizeof(*vm->cpuid) +
				      CPUID_MAX_ENT * sizeof(vm->cpuid->entries[0]));
	if (!vm->cpuid)
		return fail("out of memory");
	vm->cpuid->nent = CPUID_MAX_ENT;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, vm->cpuid) < 0)
		return fail("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
	/* The VM's TSC rate (KVM_CAP_VM_TSC_CONTROL, Linux 5.18+), for the
	 * guest's timing leaf; without it the guest has kvmclock alone. */
	int khz = 0;
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_VM_TSC_CONTROL) > 0)
		khz = ioctl(vm->vm_fd, KVM_GET_TSC_KHZ, 0);
	struct cpuid_opts co = {
		.nr_vcpus = vm->cfg.nr_vcpus,
		.tsc_khz = khz > 0 ? (uint32_t)khz : 0,
		.tsc_deadline = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION,
				      KVM_CAP_TSC_DEADLINE_TIMER) > 0,
		.over_hosts = vm->cfg.nhosts > 1,
	};
	if (cpuid__shape(vm->cpuid, &co))
		return fail("CPUID: too many entries");
	return 0;
}

static int mem_setup(struct vm *vm)
{
	int r = mem__init(&vm->mem, vm->cfg.mem_size);

	if (r)
		return fail("--mem %llu MiB: cannot map guest RAM: %s",
			    (unsigned long long)(vm->cfg.mem_size >> 20),
			    strerror(-r));
	if (add_slot(vm, 0, 0, vm->mem.lowmem) ||
	    (vm->mem.top > MEM_4G &&
	     add_slot(vm, 1, MEM_4G, vm->mem.top - MEM_4G)))
		return fail("--mem %llu MiB: KVM memory slot: %s",
			    (unsigned long long)(vm->cfg.mem_size >> 20),
			    strerror(errno));
	return 0;
}

static char *full_cmdline(struct vm *vm)
{
	const char *user = vm->cfg.cmdline	? vm->cfg.cmdline
			   : vm->cfg.vconsole ? "console=hvc0"
					      : "console=ttyS0";
	const char *extra = vm->pvm ? pvm__cmdline() : "";
	/* Over hosts, the paravirtual features that cannot follow a vCPU
	 * (cpuid.h, CPUID_KVM_LOCAL) are off in CPUID; under PVM the guest
	 * reads the host's CPUID, so they are switched off here too. Each
	 * host's kvmclock page is its own (vmm/cluster_clock.c), so the vDSO
	 * must not read vCPU 0's entry from another host's vCPU. */
	const char *hosts = vm->cfg.nhosts > 1
				? "nopvspin no-kvmapf no-kvmclock-vsyscall "
				: "";
	const char *clock = cluster__guest_clock(vm);
	char *s;

	/* The user's options come last so that they win. */
	if (asprintf(&s, "%s%s%s%s%s", extra, *extra ? " " : "", hosts, clock,
		     user) < 0)
		return NULL;
	return s;
}

/*
 * Over hosts with contiguous homes, each host is a NUMA node of the guest
 * (docs/acpi.md, "SRAT and SLIT"): its memory the RAM it is home to, its
 * CPUs the vCPUs --vcpu-map starts on it. The ranges come from the DSM's
 * own arithmetic, so the SRAT and the homes cannot disagree. One host,
 * interleaved homes or --numa off: no SRAT.
 */
static void numa_config(const struct vm *vm, struct acpi_config *ac,
			struct acpi_mem_range r[DSM_MAX_RANGES])
{
	struct dsm_range d[DSM_MAX_RANGES];
	struct dsm_config c;
	unsigned i, n;

	if (vm->cfg.no_numa)
		return;
	cluster__dsm_layout(vm, &c);
	n = dsm__home_ranges(&c, d);
	if (!n)
		return;
	for (i = 0; i < n; i++)
		r[i] = (struct acpi_mem_range){
		    .base = d[i].gpa, .len = d[i].len, .node = d[i].home};
	ac->nr_nodes = vm->cfg.nhosts;
	/* Where each vCPU lives: its --spread-when place once booted. */
	ac->vcpu_node = vm->cfg.spread_when ? vm->cfg.place : vm->cfg.vcpu_map;
	ac->nr_mem_ranges = n;
	ac->mem_ranges = r;
}

static int load(struct vm *vm, uint64_t *entry)
{
	struct kernel_image k;
	struct boot_info bi = { 0 };
	char err[256] = "";
	size_t len = 0;
	void *buf;
	int r;

	buf = slurp("--kernel", vm->cfg.kernel, &len);
	if (!buf)
		return -1;
	r = loader__load_kernel(&vm->mem, buf, len, &k, err, sizeof(err));
	free(buf);
	if (r)
		return fail("%s", err);
	if (vm->cfg.initrd) {
		buf = slurp("--initrd", vm->cfg.initrd, &len);
		if (!buf)
			return -1;
		r = loader__load_initrd(&vm->mem, &k, buf, len, &bi.initrd_gpa,
					err, sizeof(err));
		free(buf);
		if (r)
			return fail("%s", err);
		bi.initrd_size = len;
	}
	struct acpi_mmio_dev devs[1 + VIRTIO_MAX_DEVS] = {{
		.hid = "PNP0501", .base = UART_COM1_BASE, .size = 8,
		.gsi = UART_COM1_IRQ, .edge = true, .io = true,
	}};
	unsigned ndevs = 1 + virtio__acpi_devs(&vm->cfg, devs + 1);
	struct acpi_config ac = { .nr_vcpus = vm->cfg.nr_vcpus,
				  .ioapic_base = IOAPIC_BASE,
				  .ioapic_id = vm->cfg.nr_vcpus,
				  .nr_devs = ndevs, .devs = devs,
				  .vmgenid_gpa = MEM_VMGENID,
				  .ged_gsi = VMGENID_GSI };
	/* Over hosts APs start through the mailbox, never by INIT/SIPI
	 * (docs/jumps.md). */
	if (vm->cfg.nhosts > 1)
		ac.mp_wake_gpa = ACPI_MP_WAKE_BASE;
	struct acpi_mem_range numa[DSM_MAX_RANGES];
	numa_config(vm, &ac, numa);
	uint8_t genid[VMGENID_SIZE];
	void *acpi = mem__ptr(&vm->mem, MEM_ACPI, MEM_ACPI_MAX);
	if (!acpi || acpi__build(acpi, MEM_ACPI, MEM_ACPI_MAX, &ac,
				 &bi.rsdp_gpa))
		return fail("ACPI tables do not fit");
	char *cmdline = full_cmdline(vm);
	if (!cmdline)
		return fail("out of memory");
	bi.cmdline = cmdline;
	r = loader__boot_params(&vm->mem, &k, &bi, err, sizeof(err));
	free(cmdline);
	if (r)
		return fail("%s", err);
	loader__boot_pagetables(&vm->mem);
	if (vm->cfg.nhosts > 1)
		loader__ap_pagetables(&vm->mem);
	if (vmgenid__generate(genid) || vmgenid__set(&vm->mem, genid))
		return fail("cannot write the VM generation ID");
	*entry = k.entry;
	return 0;
}

static void uart_irq(void *arg, bool level)
{
	struct vm *vm = arg;

	ioapic__set_irq(vm->ioapic, UART_COM1_IRQ, level);
}

static int devices_setup(struct vm *vm)
{
	if (vm->cl && cluster__devices(vm))
		return fail("device registration failed");
	if (virtio__attach(vm))
		return -1;
	if (vm->cfg.host)
		return 0; /* a member host: host 0 has the rest */
	vm->ioapic = ioapic__new(vm->vm_fd, IOAPIC_BASE, vm->cfg.nr_vcpus);
	vm->uart = uart__new(STDOUT_FILENO, uart_irq, vm);
	if (!vm->ioapic || !vm->uart)
		return fail("out of memory");
	if (vm->cl)
		ioapic__set_irq_lock(vm->ioapic, &vm->irq_lock);
	if (io__register(&vm->mmio, ioapic__io(vm->ioapic)) ||
	    io__register(&vm->pio, uart__io(vm->uart)) || sysdev__init(vm))
		return fail("device registration failed");
	return 0;
}

static void fault_error(void *arg, uint64_t gpa, int err)
{
	char why[128];

	snprintf(why, sizeof(why), "guest page 0x%llx unavailable: %s",
		 (unsigned long long)gpa, strerror(-err));
	vm__stop(arg, VM_EXIT_CRASH, why);
}

static void on_kick(int sig)
{
}

int vm__init(struct vm *vm, const struct vm_config *cfg)
{
	uint64_t entry = 0, rnd = 0;
	int r;

	memset(vm, 0, sizeof(*vm));
	vm->cfg = *cfg;
	vm->cl = cfg->member;
	vm->kvm_fd = vm->vm_fd = vm->stop_efd = -1;
	vm->fault.uffd = vm->fault.quit_efd = -1;
	vm->start_ns = vm__now_ns();
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->pause_cv, NULL);
	pthread_mutex_init(&vm->hold_mu, NULL);
	pthread_mutex_init(&vm->irq_lock, NULL);
	pthread_cond_init(&vm->hold_cv, NULL);
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = vm->start_ns ^ getpid();
	snprintf(vm->id, sizeof(vm->id), "%016llx", (unsigned long long)rnd);
	vm->pvm = cfg->pvm < 0 ? pvm__detect() : cfg->pvm;

	struct sigaction sa = { .sa_handler = on_kick };
	sigaction(SIGUSR1, &sa, NULL);

	vm->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_efd < 0)
		return fail("eventfd: %s", strerror(errno));
	if (cfg->restore && restore__open(vm, cfg->restore))
		return -1;
	cfg = &vm->cfg; /* a restore takes vCPUs and memory from the snapshot */
	if (kvm_setup(vm) || mem_setup(vm))
		return -1;
	/* Over hosts, the DSM serves guest RAM from the start: the loader's
	 * writes go through it like any other access. */
	if (cfg->nhosts > 1 &&
	    ((!vm->cl &&
	      cluster__io_host(vm, cfg->host_addrs, cfg->key)) ||
	     cluster__dsm_start(vm)))
		return -1;
	if ((!vm->restore && !cfg->host && load(vm, &entry)) ||
	    devices_setup(vm) || (vm->restore && restore__source(vm)) ||
	    (vm->restore && vm->cl && cluster__restore(vm)))
		return -1;
	/* Loaded pages are present; everything else faults in through the
	 * engine from here on: zero pages for a fresh VM, the snapshot's
	 * pages for a restored one. */
	if (!vm->cl) {
		r = fault__init(&vm->fault, &vm->mem,
				vm->restore ? &vm->restore->src
					    : &fault_zero_source);
		if (r)
			return fail("userfaultfd on guest RAM: %s",
				    strerror(-r));
	}
	vm->fault.on_error = fault_error;
	vm->fault.arg = vm;
	if (vm->restore)
		restore__trace(vm);
	vm->vcpus = calloc(cfg->nr_vcpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return fail("out of memory");
	/* Over hosts every host has every vCPU: those placed elsewhere are
	 * parked copies, ready for a jump here (vmm/jump.c). */
	for (unsigned i = 0; i < cfg->nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		v->fd = -1;
		v->id = i;
		atomic_store(&v->jump_to, -1);
		atomic_store(&v->here,
			     cfg->nhosts < 2 || cfg->vcpu_map[i] == cfg->host);
		r = vcpu__init(vm, v, i, entry);
		if (r)
			return fail("vcpu %u: %s", i, strerror(-r));
	}
	/* KVM reads guest memory while the state goes in (the kvmclock MSR
	 * maps its page): the snapshot's pages must be served by then. */
	if (vm->restore &&
	    ((!vm->fault.running && (r = fault__start(&vm->fault))) ||
	     restore__load(vm)))
		return r ? fail("fault engine: %s", strerror(-r)) : -1;
	return 0;
}

int vm__start(struct vm *vm)
{
	int r = vm->fault.running ? 0 : fault__start(&vm->fault);

	if (r)
		return fail("fault engine: %s", strerror(-r));
	if (vm->restore && restore__start(vm))
		return -1;
	if (virtio__start_all(vm))
		return -1;
	if (!vm->cfg.host)
		cluster__clocks(vm);
	for (unsigned i = 0; i < vm->cfg.nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		if (v->fd < 0)
			continue;
		r = pthread_create(&v->thread, NULL, vcpu__thread, v);
		if (r) {
			vm__stop(vm, VM_EXIT_CRASH, "cannot start vCPU thread");
			return fail("vcpu %u thread: %s", i, strerror(r));
		}
		v->started = true;
	}
	if (!vm->cfg.host)
		cluster__go(vm);
	if (cluster__balance(vm))
		vm__stop(vm, VM_EXIT_CRASH, "cannot start the balancer");
	if (vm->restore && vm->cfg.stats)
		fprintf(stderr, "slos: restore: running after %.3f ms\n",
			(vm__now_ns() - vm->cfg.t0_ns) / 1e6);
	return 0;
}

void vm__stop(struct vm *vm, int status, const char *why)
{
	pthread_mutex_lock(&vm->lock);
	if (atomic_load(&vm->stopping)) {
		pthread_mutex_unlock(&vm->lock);
		return;
	}
	vm->exit_status = status;
	atomic_store(&vm->stopping, true);
	if (why)
		fprintf(stderr, "slos: %s\n", why);
	for (unsigned i = 0; vm->vcpus && i < vm->cfg.nr_vcpus; i++)
		vcpu__kick(&vm->vcpus[i]);
	pthread_cond_broadcast(&vm->pause_cv);
	pthread_cond_broadcast(&vm->hold_cv);
	if (vm->cl)
		cluster__stopping(vm, status, why);
	uint64_t one = 1;
	if (write(vm->stop_efd, &one, sizeof(one)) < 0)
		perror("slos: stop eventfd");
	pthread_mutex_unlock(&vm->lock);
}

int vm__pause(struct vm *vm)
{
	unsigned started = 0;
	int r = 0;

	pthread_mutex_lock(&vm->lock);
	atomic_store(&vm->pause_req, true);
	for (unsigned i = 0; i < vm->cfg.nr_vcpus; i++)
		started += vm->vcpus[i].started;
	while (vm->paused < started && !atomic_load(&vm->stopping)) {
		struct timespec t;
		/* Kick again while waiting: a kick sent while the vCPU was
		 * between KVM_RUNs is consumed by the next one, which may
		 * not be the one that parks. */
		for (unsigned i = 0; i < vm->cfg.nr_vcpus; i++)
			vcpu__kick(&vm->vcpus[i]);
		clock_gettime(CLOCK_REALTIME, &t);
		t.tv_nsec += 10 * 1000 * 1000;
		if (t.tv_nsec >= 1000000000) {
			t.tv_sec++;
			t.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&vm->pause_cv, &vm->lock, &t);
	}
	if (atomic_load(&vm->stopping))
		r = -1;
	pthread_mutex_unlock(&vm->lock);
	return r;
}

void vm__pause_soon(struct vm *vm)
{
	atomic_store(&vm->pause_req, true);
	for (unsigned i = 0; i < vm->cfg.nr_vcpus; i++)
		vcpu__kick(&vm->vcpus[i]);
}

void vm__resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	atomic_store(&vm->pause_req, false);
	pthread_cond_broadcast(&vm->pause_cv);
	pthread_mutex_unlock(&vm->lock);
}

void vm__hold(struct vm *vm, struct vcpu *self)
{
	unsigned n = vm->cfg.nr_vcpus;

	pthread_mutex_lock(&vm->hold_mu);
	/* Under vm->lock, as rearm() reads it: a vCPU thread between two
	 * KVM_RUNs either sees the hold or keeps this immediate exit. */
	pthread_mutex_lock(&vm->lock);
	atomic_store(&vm->hold_req, true);
	for (unsigned i = 0; i < n; i++) {
		struct vcpu *v = &vm->vcpus[i];
		if (v != self && v->run && atomic_load(&v->here))
			__atomic_store_n(&v->run->immediate_exit, 1,
					 __ATOMIC_SEQ_CST);
	}
	pthread_mutex_unlock(&vm->lock);
	for (unsigned i = 0; i < n; i++) {
		struct vcpu *v = &vm->vcpus[i];
		if (v == self || !atomic_load(&v->here))
			continue;
		/* A thread that enters KVM_RUN from now on returns at once
		 * (immediate_exit); one inside needs the signal. */
		for (unsigned k = 0; atomic_load(&v->in_guest) &&
				     !atomic_load(&vm->stopping);
		     k++) {
			if (k % 64 == 0 && v->started)
				pthread_kill(v->thread, SIGUSR1);
			if (k < 16)
				sched_yield();
			else
				nanosleep(&(struct timespec){.tv_nsec = 20000},
					  NULL);
		}
	}
}

void vm__release(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	atomic_store(&vm->hold_req, false);
	pthread_cond_broadcast(&vm->hold_cv);
	pthread_mutex_unlock(&vm->lock);
	pthread_mutex_unlock(&vm->hold_mu);
}

int vm__wait(struct vm *vm)
{
	for (unsigned i = 0; vm->vcpus && i < vm->cfg.nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		if (!v->started)
			continue;
		/* A kick can land before the thread enters KVM_RUN. */
		vcpu__kick(v);
		pthread_join(v->thread, NULL);
		v->started = false;
	}
	return vm->exit_status;
}

/* " [a b c ...]" of a log2 histogram, up to its last non-empty bucket. */
static void hist(FILE *f, const uint64_t *h, unsigned n)
{
	while (n > 1 && !h[n - 1])
		n--;
	fputs(" [", f);
	for (unsigned b = 0; b < n; b++)
		fprintf(f, "%s%llu", b ? " " : "", (unsigned long long)h[b]);
	fputs("]", f);
}

void vm__print_stats(struct vm *vm, FILE *f)
{
	char host[24] = "";

	/* A member's lines say which host they come from (`slos stat`). */
	if (vm->cfg.host)
		snprintf(host, sizeof(host), "host %u ", vm->cfg.host);
	for (unsigned i = 0; vm->vcpus && i < vm->cfg.nr_vcpus; i++) {
		struct vcpu_stats *s = &vm->vcpus[i].st;
		if (vm->cfg.host && !s->exits && !s->jumps)
			continue;
		/* One line, one write: the hosts share a terminal. */
		char *line = NULL;
		size_t len = 0;
		FILE *l = open_memstream(&line, &len);
		if (!l)
			continue;
		fprintf(l,
			"slos: %svcpu %u exits %llu io %llu mmio %llu intr %llu "
			"pvm %llu strops %llu (%llu KiB) jumps %llu (%.1f "
			"ms)",
			host, i, (unsigned long long)s->exits,
			(unsigned long long)s->io, (unsigned long long)s->mmio,
			(unsigned long long)s->intr,
			(unsigned long long)s->pvm_fixups,
			(unsigned long long)vm->vcpus[i].accel.ops,
			(unsigned long long)(vm->vcpus[i].accel.bytes >> 10),
			(unsigned long long)s->jumps, s->jump_ns / 1e6);
		if (s->jumps) {
			fputs("; jump us log2", l);
			hist(l, s->jump_hist, VCPU_HIST);
		}
		fputc('\n', l);
		fclose(l);
		fputs(line, f);
		free(line);
	}
	fprintf(f,
		"slos: %sfaults %llu (zero %llu, copied %llu, raced %llu); "
		"irqs %llu; stray io %llu mmio %llu; ran %.3f s\n",
		host, (unsigned long long)vm->fault.st.faults,
		(unsigned long long)vm->fault.st.zero,
		(unsigned long long)vm->fault.st.copied,
		(unsigned long long)vm->fault.st.eexist,
		(unsigned long long)(vm->ioapic ? ioapic__delivered(vm->ioapic)
						: 0),
		(unsigned long long)vm->pio.unclaimed,
		(unsigned long long)vm->mmio.unclaimed,
		(vm__now_ns() - vm->start_ns) / 1e9);
	if (vm->pvm && f == stderr)
		pvm__print_stats();
	cluster__print_stats(vm, f);
	virtio__print_stats(vm, f);
}

void vm__exit(struct vm *vm)
{
	vm__wait(vm);
	/* First the threads that may still touch the vCPUs: the hosts'
	 * connections, the balancer, the fault thread. */
	cluster__exit(vm);
	for (unsigned i = 0; vm->vcpus && i < vm->cfg.nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		if (v->run)
			munmap(v->run, vm->run_size);
		if (v->fd >= 0)
			close(v->fd);
	}
	free(vm->vcpus);
	vm->vcpus = NULL;
	restore__exit(vm);
	/* After the fault engine: a device blocked on a page the DSM will
	 * no longer serve is let go when its userfaultfd closes. */
	fault__exit(&vm->fault);
	virtio__detach(vm);
	uart__free(vm->uart);
	ioapic__free(vm->ioapic);
	vm->uart = NULL;
	vm->ioapic = NULL;
	mem__exit(&vm->mem);
	free(vm->cpuid);
	free(vm->msr_idx);
	vm->cpuid = NULL;
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (vm->stop_efd >= 0)
		close(vm->stop_efd);
	vm->vm_fd = vm->kvm_fd = vm->stop_efd = -1;
}
