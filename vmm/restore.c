// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/acpi.h"
#include "vmm/cluster.h"
#include "vmm/ioapic.h"
#include "vmm/restore.h"
#include "vmm/uart.h"
#include "vmm/vm.h"
#include "vmm/vmgenid.h"

/* The prefetch file: this magic, then guest-physical addresses (u64). */
#define MSR_IA32_TSC 0x10

#define PREFETCH_MAGIC "SLOSPF1\n"

static int fail(const char *dir, const char *why)
{
	fprintf(stderr, "slos: --restore %s: %s\n", dir, why);
	return -1;
}

static bool has_data(const struct restore *r, uint64_t page)
{
	return page < r->npages && (r->data[page / 64] >> (page % 64)) & 1;
}

/* The page source: holes of the sparse file are zero pages, no read. */
static int file_fetch(struct fault_source *s, uint64_t gpa, void *dst)
{
	struct restore *r = s->priv;
	uint64_t page = gpa / PAGE_SIZE;

	if (!has_data(r, page))
		return 1;
	if (pread(r->snap.mem_fd, dst, PAGE_SIZE, gpa) != (ssize_t)PAGE_SIZE)
		return -EIO;
	return 0;
}

int restore__read_page(struct restore *r, uint64_t gpa, void *dst)
{
	return file_fetch(&r->src, gpa, dst);
}

bool restore__has_data(const struct restore *r, uint64_t gpa)
{
	return has_data(r, gpa / PAGE_SIZE);
}

/* Which pages hold data: SEEK_DATA/SEEK_HOLE, so a restore never reads a
 * page the snapshot left as a hole. */
static int map_data(struct restore *r, uint64_t top)
{
	struct stat st;
	off_t off = 0;

	if (fstat(r->snap.mem_fd, &st))
		return -1;
	if ((uint64_t)st.st_size > top) {
		errno = EFBIG;
		return -1;
	}
	r->npages = top / PAGE_SIZE;
	r->data = calloc((r->npages + 63) / 64, 8);
	if (!r->data)
		return -1;
	for (;;) {
		off_t d = lseek(r->snap.mem_fd, off, SEEK_DATA);
		if (d < 0)
			return errno == ENXIO ? 0 : -1;
		off_t h = lseek(r->snap.mem_fd, d, SEEK_HOLE);
		if (h < 0)
			return -1;
		for (uint64_t p = d / PAGE_SIZE;
		     p < ((uint64_t)h + PAGE_SIZE - 1) / PAGE_SIZE &&
		     p < r->npages;
		     p++)
			r->data[p / 64] |= 1ULL << (p % 64);
		off = h;
	}
}

int restore__open(struct vm *vm, const char *dir)
{
	struct restore *r = calloc(1, sizeof(*r));
	struct vm_config *c = &vm->cfg;
	char err[512];

	if (!r)
		return fail(dir, "out of memory");
	vm->restore = r;
	r->snap.mem_fd = -1;
	if (snapshot__open(&r->snap, dir, err, sizeof(err))) {
		fprintf(stderr, "slos: %s\n", err);
		return -1;
	}
	const struct snap_manifest *m = &r->snap.man;
	if (c->mem_set && c->mem_size != m->mem_size) {
		snprintf(err, sizeof(err),
			 "--mem %llu MiB differs from the snapshot's %llu MiB "
			 "(a restored guest keeps its memory size)",
			 (unsigned long long)(c->mem_size >> 20),
			 (unsigned long long)(m->mem_size >> 20));
		return fail(dir, err);
	}
	if (c->vcpus_set && c->nr_vcpus != m->nr_vcpus) {
		snprintf(err, sizeof(err),
			 "--vcpus %u differs from the snapshot's %u",
			 c->nr_vcpus, m->nr_vcpus);
		return fail(dir, err);
	}
	if (m->pvm != vm->pvm)
		return fail(dir, m->pvm ? "taken under PVM, this KVM is not"
					: "taken on hardware KVM, this is PVM");
	c->mem_size = m->mem_size;
	c->nr_vcpus = m->nr_vcpus;
	c->kernel = c->initrd = NULL;
	return 0;
}

static void load_prefetch(struct restore *r, const struct mem *mem)
{
	char path[PATH_MAX + 64];
	struct stat st;
	char magic[8];
	int fd;

	snprintf(path, sizeof(path), "%s/" SNAP_PREFETCH, r->snap.dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (fstat(fd, &st) || st.st_size < 8 || st.st_size % 8 ||
	    st.st_size > 8 * (RESTORE_RECORD_MAX + 1) ||
	    pread(fd, magic, 8, 0) != 8 || memcmp(magic, PREFETCH_MAGIC, 8))
		goto out;
	size_t n = st.st_size / 8 - 1;
	r->prefetch = malloc(n * 8 + 1);
	if (!r->prefetch || pread(fd, r->prefetch, n * 8, 8) != (ssize_t)(n * 8))
		goto out;
	/* Untrusted: keep only page-aligned RAM addresses. */
	for (size_t i = 0; i < n; i++)
		if (!(r->prefetch[i] % PAGE_SIZE) &&
		    mem__is_ram(mem, r->prefetch[i], PAGE_SIZE))
			r->prefetch[r->nr_prefetch++] = r->prefetch[i];
out:
	close(fd);
}

int restore__source(struct vm *vm)
{
	struct restore *r = vm->restore;
	struct snap_manifest host = { 0 };
	char err[256], path[PATH_MAX + 64];

	snapshot__host_cpu(&host, vm->cpuid, vm->pvm);
	if (snapshot__check_cpu(&r->snap.man, &host, err, sizeof(err)))
		return fail(r->snap.dir, err);
	if (map_data(r, vm->mem.top))
		return fail(r->snap.dir,
			    errno == EFBIG ? "memory file larger than the guest"
					   : "cannot map the memory file");
	r->fe = &vm->fault;
	r->src = (struct fault_source){ .name = "snapshot",
					.fetch = file_fetch,
					.priv = r };
	snprintf(path, sizeof(path), "%s/" SNAP_PREFETCH, r->snap.dir);
	if (access(path, F_OK))
		r->touched = malloc(RESTORE_RECORD_MAX * sizeof(uint64_t));
	else if (vm->cfg.prefetch)
		load_prefetch(r, &vm->mem);
	return 0;
}

void restore__trace(struct vm *vm)
{
	fault__trace(&vm->fault, vm->restore->touched, RESTORE_RECORD_MAX);
}

/*
 * The guest's TSC must continue from the snapshot's value: its clocks
 * (tsc=reliable under PVM, kvmclock otherwise) are built on it. KVM offsets
 * the TSC on a host-initiated MSR write; say so if that did not take.
 */
static void check_tsc(struct vm *vm, const struct vcpu_state *s)
{
	uint64_t saved = 0, now;

	for (unsigned i = 0; i < s->nr_msrs; i++)
		if (s->msrs[i].index == MSR_IA32_TSC)
			saved = s->msrs[i].data;
	if (vcpu__get_msr(&vm->vcpus[0], MSR_IA32_TSC, &now))
		return;
	int64_t d = (int64_t)(now - saved);
	/* A restore's own work takes far less than a second (10 GHz).
	 * Under PVM the TSC is the host's (docs/snapshot.md): expected,
	 * so said only with --stats. */
	if ((d < 0 || d > 10000000000LL) && (!vm->pvm || vm->cfg.stats))
		fprintf(stderr,
			"slos: --restore: the guest TSC moved by %lld cycles "
			"(KVM did not offset it)\n",
			(long long)d);
}

int restore__load(struct vm *vm)
{
	struct restore *r = vm->restore;
	struct snap_state *s = &r->snap.st;
	char err[256];

	if (ioapic__load(vm->ioapic, &s->ioapic) ||
	    uart__load(vm->uart, &s->uart))
		return fail(r->snap.dir, "bad device state");
	for (unsigned i = 0; i < vm->cfg.nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		int khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
		uint32_t want = r->snap.man.tsc_khz;
		/* The guest calibrated its clocks to the old rate; without
		 * TSC scaling they run fast or slow by the ratio. */
		if (want && khz > 0 && (uint32_t)khz != want &&
		    ioctl(v->fd, KVM_SET_TSC_KHZ, want) < 0 && i == 0)
			fprintf(stderr,
				"slos: --restore: TSC %d kHz here, %u in the "
				"snapshot, and KVM cannot scale it: guest "
				"time will drift\n",
				khz, want);
		/* Over hosts the kvmclock page is host 0's own, as if the
		 * guest had just set it here (vmm/cluster_clock.c); if it
		 * cannot be, KVM's fault on it is served as any other (no
		 * lock held here). */
		(void)cluster__clock_state(vm, &s->vcpus[i]);
		if (vcpu__load(v, &s->vcpus[i], err, sizeof(err)))
			return fail(r->snap.dir, err);
	}
	if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &s->clock) < 0)
		return fail(r->snap.dir, "KVM_SET_CLOCK failed");
	check_tsc(vm, &s->vcpus[0]);
	return 0;
}

static void *prefetch_thread(void *arg)
{
	static __thread uint8_t buf[PAGE_SIZE] __attribute__((aligned(4096)));
	struct restore *r = arg;

	for (unsigned i = 0; i < r->nr_prefetch && !r->pf_quit; i++) {
		uint64_t gpa = r->prefetch[i];
		bool data = has_data(r, gpa / PAGE_SIZE);
		if (data && pread(r->snap.mem_fd, buf, PAGE_SIZE, gpa) !=
				    (ssize_t)PAGE_SIZE)
			break;
		if (fault__place(r->fe, gpa, data ? buf : NULL))
			break;
		r->prefetched++;
	}
	return NULL;
}

int restore__start(struct vm *vm)
{
	struct restore *r = vm->restore;
	uint8_t id[VMGENID_SIZE];

	/* Every restore is a new VM: a fresh generation ID, announced
	 * through the GED, makes Linux reseed its RNG, so clones of one
	 * snapshot do not share random state. The write goes through the
	 * fault engine like any access to a restored guest's memory. */
	if (vmgenid__generate(id) || vmgenid__set(&vm->mem, id))
		return fail(r->snap.dir, "cannot write a new VM generation ID");
	ioapic__set_irq(vm->ioapic, VMGENID_GSI, true);
	ioapic__set_irq(vm->ioapic, VMGENID_GSI, false);

	/* Over hosts every page comes through the DSM; a prefetch placing
	 * pages behind its back would break coherence. */
	if (r->nr_prefetch && !vm->cl &&
	    !pthread_create(&r->pf_thread, NULL, prefetch_thread, r)) {
		pthread_setname_np(r->pf_thread, "slos-prefetch");
		r->pf_running = true;
	}
	return 0;
}

/* The first touches of this restore, for the next one: written to a
 * temporary file and renamed, so concurrent restores never see half. */
static void save_touched(struct restore *r)
{
	char tmp[PATH_MAX + 96], path[PATH_MAX + 64];
	unsigned n = r->fe->nr_traced;
	int fd;

	snprintf(path, sizeof(path), "%s/" SNAP_PREFETCH, r->snap.dir);
	snprintf(tmp, sizeof(tmp), "%s.%d", path, getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return; /* a read-only snapshot: no prefetch list, no harm */
	bool ok = write(fd, PREFETCH_MAGIC, 8) == 8 &&
		  write(fd, r->touched, n * 8) == (ssize_t)(n * 8);
	/* link() fails if another restore wrote it first: theirs stays. */
	if (!close(fd) && ok && link(tmp, path) == 0)
		fprintf(stderr, "slos: restore: %u first touches saved for "
				"--prefetch\n", n);
	unlink(tmp);
}

void restore__exit(struct vm *vm)
{
	struct restore *r = vm->restore;

	if (!r)
		return;
	if (r->pf_running) {
		r->pf_quit = true;
		pthread_join(r->pf_thread, NULL);
	}
	if (r->touched && r->fe->nr_traced)
		save_touched(r);
	snapshot__close(&r->snap);
	free(r->data);
	free(r->touched);
	free(r->prefetch);
	free(r);
	vm->restore = NULL;
}
