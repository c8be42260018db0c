// SPDX-License-Identifier: MIT
/* Taking a snapshot of a paused VM, and opening one for restore. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vmm/restore.h"
#include "vmm/snapshot.h"
#include "vmm/vm.h"

#define PM_PRESENT (1ULL << 63)
#define PM_SWAPPED (1ULL << 62)
#define RUN_MAX	   256 /* pages per write */

#define bad snapshot__errf

static int write_all(int fd, const void *buf, size_t len, off_t off)
{
	const uint8_t *b = buf;

	while (len) {
		ssize_t n = pwrite(fd, b, len, off);
		if (n <= 0)
			return -1;
		b += n;
		len -= n;
		off += n;
	}
	return 0;
}

static int write_file(const char *dir, const char *name, const void *buf,
		      size_t len)
{
	char path[PATH_MAX + 64];
	int fd, r;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	r = write_all(fd, buf, len, 0);
	if (close(fd))
		r = -1;
	return r;
}

static bool is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;

	for (size_t i = 0; i < PAGE_SIZE / 8; i++)
		if (w[i])
			return false;
	return true;
}

/*
 * Every page of [gpa, gpa+len) with data goes to the file at offset gpa.
 * A page the guest never touched is not in the page tables (pagemap says
 * neither present nor swapped) and reads as zero, unless the VM was itself
 * restored and has not faulted it in yet: then the source still holds it.
 */
static int write_range(struct vm *vm, int pm_fd, int fd, uint64_t gpa,
		       uint64_t len)
{
	static uint64_t pm[4096];
	static uint8_t buf[RUN_MAX * PAGE_SIZE] __attribute__((aligned(4096)));
	struct fault_source *src = vm->fault.src;
	uint64_t npages = len / PAGE_SIZE, run_gpa = 0;
	unsigned run = 0;

	for (uint64_t i = 0; i < npages; i += 4096) {
		uint64_t n = npages - i < 4096 ? npages - i : 4096;
		uint64_t va = (uintptr_t)vm->mem.hva + gpa + i * PAGE_SIZE;
		if (pread(pm_fd, pm, n * 8, (va / PAGE_SIZE) * 8) !=
		    (ssize_t)(n * 8))
			return -1;
		for (uint64_t j = 0; j < n; j++) {
			uint64_t g = gpa + (i + j) * PAGE_SIZE;
			uint8_t *dst = buf + run * PAGE_SIZE;
			bool data = false;
			if (pm[j] & (PM_PRESENT | PM_SWAPPED)) {
				memcpy(dst, vm->mem.hva + g, PAGE_SIZE);
				data = !is_zero(dst);
			} else if (vm->restore) {
				int r = src->fetch(src, g, dst);
				if (r < 0)
					return -1;
				data = r == 0 && !is_zero(dst);
			}
			if (data && !run++)
				run_gpa = g;
			/* A run ends at a hole, when full, or at the end. */
			if (run && (!data || run == RUN_MAX)) {
				if (write_all(fd, buf, run * PAGE_SIZE,
					      run_gpa))
					return -1;
				run = 0;
			}
		}
	}
	if (run && write_all(fd, buf, run * PAGE_SIZE, run_gpa))
		return -1;
	return 0;
}

static int write_memory(struct vm *vm, const char *dir)
{
	char path[PATH_MAX + 64];
	int fd, pm_fd, r = -1;

	snprintf(path, sizeof(path), "%s/" SNAP_MEMORY, dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	pm_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || pm_fd < 0)
		goto out;
	if (write_range(vm, pm_fd, fd, 0, vm->mem.lowmem) ||
	    (vm->mem.top > MEM_4G &&
	     write_range(vm, pm_fd, fd, MEM_4G, vm->mem.top - MEM_4G)) ||
	    ftruncate(fd, vm->mem.top))
		goto out;
	r = 0;
out:
	if (fd >= 0 && close(fd))
		r = -1;
	if (pm_fd >= 0)
		close(pm_fd);
	return r;
}

static int gather(struct vm *vm, struct snap_manifest *m,
		  struct snap_state *s, char *err, size_t errlen)
{
	time_t now = time(NULL);
	struct tm tm;
	int khz;

	memset(m, 0, sizeof(*m));
	m->version = SNAP_FORMAT;
	snprintf(m->name, sizeof(m->name), "%s", vm->cfg.name);
	m->nr_vcpus = vm->cfg.nr_vcpus;
	m->mem_size = vm->cfg.mem_size;
	m->pvm = vm->pvm;
	khz = ioctl(vm->vcpus[0].fd, KVM_GET_TSC_KHZ, 0);
	m->tsc_khz = khz > 0 ? khz : 0;
	snapshot__host_cpu(m, vm->cpuid, vm->pvm);
	snprintf(m->kernel, sizeof(m->kernel), "%s",
		 vm->cfg.kernel ? vm->cfg.kernel : "");
	snprintf(m->cmdline, sizeof(m->cmdline), "%s",
		 vm->cfg.cmdline ? vm->cfg.cmdline : "");
	/* Informational fields: printable, one line. */
	for (char *p = m->cmdline; *p; p++)
		if (!isprint((unsigned char)*p))
			*p = '?';
	for (char *p = m->kernel; *p; p++)
		if (!isprint((unsigned char)*p))
			*p = '?';
	gmtime_r(&now, &tm);
	strftime(m->taken, sizeof(m->taken), "%Y-%m-%dT%H:%M:%SZ", &tm);

	memset(s, 0, sizeof(*s));
	s->nr_vcpus = vm->cfg.nr_vcpus;
	s->vcpus = calloc(s->nr_vcpus, sizeof(*s->vcpus));
	if (!s->vcpus)
		return bad(err, errlen, "out of memory");
	for (unsigned i = 0; i < s->nr_vcpus; i++)
		if (vcpu__save(&vm->vcpus[i], &s->vcpus[i], err, errlen))
			return -1;
	if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &s->clock) < 0)
		return bad(err, errlen, "KVM_GET_CLOCK: %s", strerror(errno));
	/* Restored with KVM_SET_CLOCK's plain semantics: only the clock. */
	s->clock.flags = 0;
	uart__save(vm->uart, &s->uart);
	ioapic__save(vm->ioapic, &s->ioapic);
	return 0;
}

static void remove_tree(const char *dir)
{
	static const char *names[] = { SNAP_MANIFEST, SNAP_STATE, SNAP_MEMORY };
	char path[PATH_MAX + 64];

	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

int snapshot__take(struct vm *vm, const char *dir, char *err, size_t errlen)
{
	char tmp[PATH_MAX], man[SNAP_MANIFEST_MAX];
	struct snap_manifest m;
	struct snap_state s;
	struct stat st;
	void *state = NULL;
	size_t state_len = 0;
	int r = -1;

	if (!*dir || strlen(dir) > PATH_MAX - 64)
		return bad(err, errlen, "snapshot directory: bad path");
	if (!lstat(dir, &st))
		return bad(err, errlen, "snapshot directory %s exists", dir);
	snprintf(tmp, sizeof(tmp), "%s.partial-%d", dir, getpid());
	if (mkdir(tmp, 0755))
		return bad(err, errlen, "snapshot directory %s: %s", tmp,
			   strerror(errno));
	if (gather(vm, &m, &s, err, errlen))
		goto out;
	state = snapshot__state_encode(&s, &state_len);
	if (!state || snapshot__manifest_format(&m, man, sizeof(man))) {
		bad(err, errlen, "snapshot: cannot encode the state");
		goto out;
	}
	if (write_file(tmp, SNAP_STATE, state, state_len) ||
	    write_memory(vm, tmp) ||
	    /* The manifest last: a directory without one is not a snapshot. */
	    write_file(tmp, SNAP_MANIFEST, man, strlen(man))) {
		bad(err, errlen, "snapshot %s: write failed: %s", tmp,
		    strerror(errno));
		goto out;
	}
	if (rename(tmp, dir)) {
		bad(err, errlen, "snapshot: rename to %s: %s", dir,
		    strerror(errno));
		goto out;
	}
	r = 0;
out:
	if (r)
		remove_tree(tmp);
	free(state);
	snapshot__state_free(&s);
	return r;
}

int snapshot__vm(struct vm *vm, const char *dir, bool stop, char *err,
		 size_t errlen)
{
	uint64_t t = vm__now_ns();
	int r;

	if (vm->cl)
		return bad(err, errlen,
			   "snapshots of a VM over several hosts are not "
			   "supported yet (restoring one over hosts is)");
	if (vm__pause(vm))
		return bad(err, errlen, "the VM stopped before the snapshot");
	r = snapshot__take(vm, dir, err, errlen);
	if (!r)
		fprintf(stderr, "slos: snapshot %s written in %.1f ms\n", dir,
			(vm__now_ns() - t) / 1e6);
	if (stop && !r)
		vm__stop(vm, VM_EXIT_OK, "stopped after the snapshot");
	vm__resume(vm);
	return r;
}

/* A whole small file, NUL-terminated; NULL with a message. */
static char *slurp(const char *dir, const char *name, size_t max,
		   size_t *len, char *err, size_t errlen)
{
	char path[PATH_MAX + 64];
	struct stat st;
	char *buf = NULL;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		bad(err, errlen, "snapshot %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size > max) {
		bad(err, errlen, "snapshot %s: not a regular file up to %zu "
				 "bytes",
		    path, max);
		goto out;
	}
	buf = malloc(st.st_size + 1);
	if (!buf) {
		bad(err, errlen, "out of memory");
		goto out;
	}
	size_t off = 0;
	while (off < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + off, st.st_size - off);
		if (n <= 0)
			break;
		off += n;
	}
	buf[off] = 0;
	*len = off;
out:
	close(fd);
	return buf;
}

int snapshot__open(struct snapshot *s, const char *dir, char *err,
		   size_t errlen)
{
	char path[PATH_MAX + 64], e[256];
	struct stat st;
	size_t len;
	char *buf;
	int r;

	memset(s, 0, sizeof(*s));
	s->mem_fd = -1;
	if (strlen(dir) > PATH_MAX - 64)
		return bad(err, errlen, "--restore: path too long");
	s->dir = strdup(dir);
	buf = slurp(dir, SNAP_MANIFEST, SNAP_MANIFEST_MAX, &len, err, errlen);
	if (!buf || !s->dir)
		goto fail;
	r = snapshot__manifest_parse(buf, len, &s->man, e, sizeof(e));
	free(buf);
	if (r) {
		bad(err, errlen, "snapshot %s: %s", dir, e);
		goto fail;
	}
	buf = slurp(dir, SNAP_STATE, SNAP_STATE_MAX, &len, err, errlen);
	if (!buf)
		goto fail;
	r = snapshot__state_decode(buf, len, s->man.nr_vcpus, &s->st, e,
				   sizeof(e));
	free(buf);
	if (r) {
		bad(err, errlen, "snapshot %s: %s", dir, e);
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/" SNAP_MEMORY, dir);
	s->mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->mem_fd < 0 || fstat(s->mem_fd, &st) || !S_ISREG(st.st_mode)) {
		bad(err, errlen, "snapshot %s: %s", path,
		    s->mem_fd < 0 ? strerror(errno) : "not a regular file");
		goto fail;
	}
	return 0;
fail:
	snapshot__close(s);
	return -1;
}

void snapshot__close(struct snapshot *s)
{
	snapshot__state_free(&s->st);
	if (s->mem_fd >= 0)
		close(s->mem_fd);
	s->mem_fd = -1;
	free(s->dir);
	s->dir = NULL;
}
