// SPDX-License-Identifier: MIT
/* The DSM engine's ops on this host's guest mapping, through userfaultfd. */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "vmm/dsm.h"
#include "vmm/fault.h"

static uint64_t hva(struct dsm_mem *dm, uint64_t gpa)
{
	return (uintptr_t)dm->fe->mem->hva + gpa;
}

static int m_send(void *arg, unsigned to, const struct dsm_msg *m)
{
	struct dsm_mem *dm = arg;

	return dm->send(dm->arg, to, m);
}

static void m_error(void *arg, const char *why)
{
	struct dsm_mem *dm = arg;

	dm->error(dm->arg, why);
}

static int m_install(void *arg, uint64_t gpa, const void *page, bool wr)
{
	static const uint8_t zero[DSM_PAGE_BYTES]
	    __attribute__((aligned(4096)));
	struct dsm_mem *dm = arg;
	/* A read-only copy goes in write-protected, so no write slips in
	 * between placing and protecting it. */
	struct uffdio_copy c = {
	    .dst = hva(dm, gpa),
	    .src = (uintptr_t)(page ? page : zero),
	    .len = DSM_PAGE_BYTES,
	    .mode = wr ? 0 : UFFDIO_COPY_MODE_WP,
	};

	if (ioctl(dm->fe->uffd, UFFDIO_COPY, &c))
		return -errno;
	__atomic_add_fetch(page ? &dm->fe->st.copied : &dm->fe->st.zero, 1,
			   __ATOMIC_RELAXED);
	return 0;
}

static int wp(struct dsm_mem *dm, uint64_t gpa, bool on)
{
	struct uffdio_writeprotect w = {
	    .range = {.start = hva(dm, gpa), .len = DSM_PAGE_BYTES},
	    .mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	return ioctl(dm->fe->uffd, UFFDIO_WRITEPROTECT, &w) ? -errno : 0;
}

static int m_protect(void *arg, uint64_t gpa)
{
	return wp(arg, gpa, true);
}

static int m_unprotect(void *arg, uint64_t gpa)
{
	return wp(arg, gpa, false); /* wakes the writers */
}

static int m_wake(void *arg, uint64_t gpa)
{
	struct dsm_mem *dm = arg;
	struct uffdio_range r = {.start = hva(dm, gpa), .len = DSM_PAGE_BYTES};

	return ioctl(dm->fe->uffd, UFFDIO_WAKE, &r) ? -errno : 0;
}

/* KVM's MMU notifier drops its mapping with the page. A writer blocked on
 * the write-protected page is woken to fault again, now as a miss. */
static int m_drop(void *arg, uint64_t gpa)
{
	struct dsm_mem *dm = arg;

	if (madvise((void *)(uintptr_t)hva(dm, gpa), DSM_PAGE_BYTES,
		    MADV_DONTNEED))
		return -errno;
	return m_wake(arg, gpa);
}

static int m_read(void *arg, uint64_t gpa, void *buf)
{
	struct dsm_mem *dm = arg;

	memcpy(buf, (void *)(uintptr_t)hva(dm, gpa), DSM_PAGE_BYTES);
	return 0;
}

void dsm_mem__ops(struct dsm_mem *dm, struct dsm_ops *ops)
{
	*ops = (struct dsm_ops){
	    .send = m_send,
	    .install = m_install,
	    .protect = m_protect,
	    .unprotect = m_unprotect,
	    .drop = m_drop,
	    .read = m_read,
	    .wake = m_wake,
	    .error = m_error,
	    .arg = dm,
	};
}
