// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vmm/fault.h"

static int zero_fetch(struct fault_source *s, uint64_t gpa, void *dst)
{
	return 1;
}

struct fault_source fault_zero_source = {
    .name = "zero",
    .fetch = zero_fetch,
};

static int uffd_open(void)
{
	/* The syscall needs vm.unprivileged_userfaultfd or CAP_SYS_PTRACE for
	 * faults KVM takes on the guest's behalf ("kernel" faults); the
	 * /dev/userfaultfd node (6.1+) only needs its file mode. */
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0) {
		int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
		if (dev >= 0) {
			fd =
			    ioctl(dev, _IO(0xAA, 0x00), O_CLOEXEC | O_NONBLOCK);
			close(dev);
		}
	}
	return fd;
}

static int reg_range(int uffd, uint8_t *hva, uint64_t len, bool wp)
{
	struct uffdio_register r = {
	    .range = {.start = (uintptr_t)hva, .len = len},
	    .mode = UFFDIO_REGISTER_MODE_MISSING |
		    (wp ? UFFDIO_REGISTER_MODE_WP : 0),
	};

	return ioctl(uffd, UFFDIO_REGISTER, &r);
}

int fault__init(struct fault_engine *fe, struct mem *m,
		struct fault_source *src)
{
	struct uffdio_api api = {.api = UFFD_API};

	memset(fe, 0, sizeof(*fe));
	fe->mem = m;
	fe->src = src;
	fe->quit_efd = -1;
	fe->uffd = uffd_open();
	if (fe->uffd < 0)
		return -errno;
	/* The faulting thread's id says which vCPU waits (statistics,
	 * traces, the balancer); a kernel without it (before 4.14) still
	 * serves faults. */
	api.features = UFFD_FEATURE_THREAD_ID;
	if (ioctl(fe->uffd, UFFDIO_API, &api)) {
		api = (struct uffdio_api){.api = UFFD_API};
		if (ioctl(fe->uffd, UFFDIO_API, &api))
			goto fail;
	}
	bool wp = src->fault != NULL;
	if (wp && !(api.features & UFFD_FEATURE_PAGEFAULT_FLAG_WP)) {
		errno = EOPNOTSUPP;
		goto fail;
	}
	if (reg_range(fe->uffd, m->hva, m->lowmem, wp))
		goto fail;
	if (m->top > MEM_4G &&
	    reg_range(fe->uffd, m->hva + MEM_4G, m->top - MEM_4G, wp))
		goto fail;
	fe->quit_efd = eventfd(0, EFD_CLOEXEC);
	if (fe->quit_efd < 0)
		goto fail;
	return 0;
fail:;
	int e = -errno;
	fault__exit(fe);
	return e;
}

int fault__place(struct fault_engine *fe, uint64_t gpa, const void *page)
{
	uint64_t hva = (uintptr_t)fe->mem->hva + gpa;

	if (!page) {
		struct uffdio_zeropage z = {
		    .range = {.start = hva, .len = PAGE_SIZE},
		};
		if (!ioctl(fe->uffd, UFFDIO_ZEROPAGE, &z)) {
			__atomic_add_fetch(&fe->st.zero, 1, __ATOMIC_RELAXED);
			return 0;
		}
	} else {
		struct uffdio_copy c = {
		    .dst = hva,
		    .src = (uintptr_t)page,
		    .len = PAGE_SIZE,
		};
		if (!ioctl(fe->uffd, UFFDIO_COPY, &c)) {
			__atomic_add_fetch(&fe->st.copied, 1, __ATOMIC_RELAXED);
			return 0;
		}
	}
	/* Placed already (a prefetch, or another fault on the same page won
	 * the race). Wake whoever waits on it, in case the winner's wake-up
	 * came before this fault was queued. */
	if (errno == EEXIST) {
		struct uffdio_range r = {.start = hva, .len = PAGE_SIZE};
		__atomic_add_fetch(&fe->st.eexist, 1, __ATOMIC_RELAXED);
		ioctl(fe->uffd, UFFDIO_WAKE, &r);
		return 0;
	}
	return -errno;
}

/* Returns 0, or negative errno when the page could not be placed. */
static int place(struct fault_engine *fe, uint64_t gpa, bool write)
{
	static __thread uint8_t buf[PAGE_SIZE] __attribute__((aligned(4096)));
	int r = fe->src->fetch(fe->src, gpa, buf);

	if (r < 0)
		return r;
	/* A write to the shared zero page would fault again to copy it. */
	if (r == 1 && write) {
		memset(buf, 0, PAGE_SIZE);
		r = 0;
	}
	return fault__place(fe, gpa, r == 1 ? NULL : buf);
}

/* The first error stops the VM (on_error). */
static void note_error(struct fault_engine *fe, uint64_t gpa, int r)
{
	if (r >= 0 || fe->error)
		return;
	fe->error = r;
	if (fe->on_error)
		fe->on_error(fe->arg, gpa, r);
}

static void *fault_thread(void *arg)
{
	struct fault_engine *fe = arg;
	struct pollfd p[2] = {
	    {.fd = fe->uffd, .events = POLLIN},
	    {.fd = fe->quit_efd, .events = POLLIN},
	};
	struct uffd_msg msgs[16];

	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		ssize_t n = read(fe->uffd, msgs, sizeof(msgs));
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			break;
		}
		for (size_t i = 0; i < n / sizeof(msgs[0]); i++) {
			if (msgs[i].event != UFFD_EVENT_PAGEFAULT)
				continue;
			uint64_t gpa =
			    (msgs[i].arg.pagefault.address & ~(PAGE_SIZE - 1)) -
			    (uintptr_t)fe->mem->hva;
			uint64_t fl = msgs[i].arg.pagefault.flags;
			fe->st.faults++;
			if (fe->nr_traced < fe->trace_max)
				fe->trace[fe->nr_traced++] = gpa;
			if (fe->src->fault) {
				int e = fe->src->fault(
				    fe->src, gpa,
				    fl & UFFD_PAGEFAULT_FLAG_WRITE,
				    fl & UFFD_PAGEFAULT_FLAG_WP,
				    msgs[i].arg.pagefault.feat.ptid);
				note_error(fe, gpa, e);
				continue;
			}
			int r = place(fe, gpa, fl & UFFD_PAGEFAULT_FLAG_WRITE);
			note_error(fe, gpa, r);
			/* The VM is stopping; still unblock the faulting
			 * thread (a zero page), which otherwise waits in
			 * the kernel, unkillable, and hangs the exit. */
			if (r < 0)
				fault__place(fe, gpa, NULL);
		}
	}
	return NULL;
}

void fault__trace(struct fault_engine *fe, uint64_t *buf, unsigned max)
{
	fe->trace = buf;
	fe->trace_max = buf ? max : 0;
	fe->nr_traced = 0;
}

int fault__start(struct fault_engine *fe)
{
	int r = pthread_create(&fe->thread, NULL, fault_thread, fe);

	if (r)
		return -r;
	pthread_setname_np(fe->thread, "slos-fault");
	fe->running = true;
	return 0;
}

void fault__release(struct fault_engine *fe)
{
	struct mem *m = fe->mem;
	struct uffdio_range r = {.start = (uintptr_t)m->hva, .len = m->lowmem};

	if (fe->uffd < 0)
		return;
	ioctl(fe->uffd, UFFDIO_UNREGISTER, &r);
	if (m->top > MEM_4G) {
		r.start = (uintptr_t)m->hva + MEM_4G;
		r.len = m->top - MEM_4G;
		ioctl(fe->uffd, UFFDIO_UNREGISTER, &r);
	}
}

void fault__exit(struct fault_engine *fe)
{
	if (fe->running) {
		uint64_t one = 1;
		if (write(fe->quit_efd, &one, sizeof(one)) < 0)
			perror("fault: eventfd");
		pthread_join(fe->thread, NULL);
		fe->running = false;
	}
	if (fe->uffd >= 0)
		close(fe->uffd);
	if (fe->quit_efd >= 0)
		close(fe->quit_efd);
	fe->uffd = fe->quit_efd = -1;
}
