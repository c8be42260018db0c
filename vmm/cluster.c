// SPDX-License-Identifier: MIT
/* One VM over several hosts: connections, control messages, DSM glue. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vmm/cluster.h"
#include "vmm/cluster_priv.h"
#include "vmm/dsm.h"
#include "vmm/ioapic.h"
#include "vmm/loader.h"
#include "vmm/pvm.h"
#include "vmm/restore.h"
#include "vmm/trace.h"
#include "vmm/vm.h"

static __thread int io_slot = -1;

/*
 * How long a silent host is taken for dead. A host process that dies is
 * noticed at once (its connections close); silence is a hung host or a
 * cut link. Under PVM, guest ring 0 is emulated in the host kernel in
 * stretches that can keep every other thread of a 2-core machine off the
 * CPU for ~1 s (measured: 920 ms), so the deadline is longer there; so it
 * is on a host that is itself emulated (the lab: QEMU TCG), where the 800
 * ms deadline took live hosts for dead. A build with AddressSanitizer
 * (the tests' second pass) runs everything about 3x slower: in the lab,
 * eight such hosts starting at once left one silent for over 3 s.
 */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZER_SLOWDOWN 3
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZER_SLOWDOWN 3
#endif
#endif
#ifndef SANITIZER_SLOWDOWN
#define SANITIZER_SLOWDOWN 1
#endif

int cluster__dead_ms(void)
{
	static int ms;

	if (!ms)
		ms = (pvm__detect() || pvm__host_emulated() ? 3000 : 800) *
		     SANITIZER_SLOWDOWN;
	return ms;
}

int cluster__read_key(const char *path, uint8_t key[FABRIC_KEY_SIZE], char *why,
		      size_t why_len)
{
	uint8_t buf[130];
	ssize_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(why, why_len, "--key %s: %s", path, strerror(errno));
		return -1;
	}
	for (ssize_t r; n < (ssize_t)sizeof(buf); n += r) {
		r = read(fd, buf + n, sizeof(buf) - n);
		if (r <= 0)
			break;
	}
	close(fd);
	if (n == FABRIC_KEY_SIZE) {
		memcpy(key, buf, FABRIC_KEY_SIZE);
		return 0;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (n == 2 * FABRIC_KEY_SIZE) {
		for (int i = 0; i < FABRIC_KEY_SIZE; i++) {
			unsigned v;
			char h[3] = {buf[2 * i], buf[2 * i + 1], 0};
			if (!isxdigit((unsigned char)h[0]) ||
			    !isxdigit((unsigned char)h[1]) ||
			    sscanf(h, "%2x", &v) != 1)
				goto bad;
			key[i] = v;
		}
		return 0;
	}
bad:
	snprintf(why, why_len, "--key %s: need 32 bytes, or 64 hex digits",
		 path);
	return -1;
}

/* ---- waiting on the control plane ---- */

void cluster_deadline(struct timespec *t, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, t);
	t->tv_sec += ms / 1000;
	t->tv_nsec += (ms % 1000) * 1000000L;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

static int wait_until(struct cluster *cl, bool (*cond)(struct cluster *),
		      int ms)
{
	struct timespec t;
	int r = 0;

	cluster_deadline(&t, ms);
	pthread_mutex_lock(&cl->lock);
	while (!cond(cl) && !cl->fail_why[0] && !r &&
	       !atomic_load(&cl->stopping))
		r = pthread_cond_timedwait(&cl->cv, &cl->lock, &t);
	r = cond(cl) ? 0 : -1;
	pthread_mutex_unlock(&cl->lock);
	return r;
}

static void set_fail(struct cluster *cl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_fail(struct cluster *cl, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&cl->lock);
	if (!cl->fail_why[0]) {
		va_start(ap, fmt);
		vsnprintf(cl->fail_why, sizeof(cl->fail_why), fmt, ap);
		va_end(ap);
	}
	pthread_cond_broadcast(&cl->cv);
	pthread_mutex_unlock(&cl->lock);
}

int cluster_send(struct cluster *cl, unsigned to, uint16_t type, const void *p,
		 size_t len)
{
	int r = -ENOTCONN;

	if (to >= cl->n)
		return r;
	pthread_rwlock_rdlock(&cl->conn_lock);
	if (cl->conn[to])
		r = fabric__post(cl->conn[to], type, p, len);
	pthread_rwlock_unlock(&cl->conn_lock);
	return r;
}

/* ---- stopping ---- */

void cluster_stop(struct cluster *cl, int status, const char *fmt, ...)
{
	char why[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (!cl->vm) {
		set_fail(cl, "%s", why);
		return;
	}
	vm__stop(cl->vm, status, why);
}

/* The guest-physical pages a host is home to, for the message that says
 * they are gone. */
static void home_of(struct cluster *cl, unsigned h, char *out, size_t len)
{
	struct dsm *d = &cl->dsm;

	if (!cl->dsm_on) {
		snprintf(out, len, "none yet");
		return;
	}
	if (d->cfg.interleave) {
		snprintf(out, len, "every %u-th page from page %u", cl->n, h);
		return;
	}
	uint64_t lo = h * d->per_host * PAGE_SIZE,
		 hi = (h + 1) * d->per_host * PAGE_SIZE;
	if (hi > d->cfg.size)
		hi = d->cfg.size;
	/* RAM index to guest-physical: above lowmem it sits at 4 GiB. */
	uint64_t glo = lo < d->cfg.lowmem ? lo : lo - d->cfg.lowmem + MEM_4G;
	uint64_t ghi = hi <= d->cfg.lowmem ? hi : hi - d->cfg.lowmem + MEM_4G;
	snprintf(out, len, "guest-physical 0x%llx-0x%llx",
		 (unsigned long long)glo, (unsigned long long)ghi);
}

void cluster__stopping(struct vm *vm, int status, const char *why)
{
	struct cluster *cl = vm->cl;
	uint8_t buf[4 + 200];

	if (!cl || atomic_exchange(&cl->stopping, true))
		return;
	if (!cl->stop_from_peer) {
		size_t n = why ? strnlen(why, 199) : 0;
		cl_put32(buf, status);
		memcpy(buf + 4, why ? why : "", n);
		for (unsigned h = 0; h < cl->n; h++)
			if (h != cl->self && cl->conn[h])
				cluster_send(cl, h, CL_STOP, buf, 4 + n);
	}
	/* vCPUs blocked on faults no host will answer now are let go;
	 * the devices first stop taking requests, which would read the
	 * zeros such faults then give. */
	virtio__halt_all(vm);
	if (cl->dsm_on)
		fault__release(&vm->fault);
	pthread_mutex_lock(&cl->lock);
	pthread_cond_broadcast(&cl->cv);
	pthread_mutex_unlock(&cl->lock);
}

/* ---- frames ---- */

static void on_dsm(struct cluster *cl, struct peer *pe, const void *p,
		   size_t len)
{
	struct dsm_msg m;
	const char *why;

	if (pe->idx < 0 || !cl->dsm_on) {
		cluster_stop(cl, VM_EXIT_CRASH,
			     "host %d sent a DSM message early", pe->idx);
		return;
	}
	if (dsm__decode(p, len, &m, &why)) {
		cluster_stop(cl, VM_EXIT_CRASH, "host %d: %s", pe->idx, why);
		return;
	}
	dsm__recv(&cl->dsm, pe->idx, &m);
}

/* Host 0 performs a member vCPU's port or MMIO access. */
static void on_io(struct cluster *cl, struct peer *pe, const uint8_t *p,
		  size_t len)
{
	if (len != 24 || !cl->vm) {
		cluster_stop(cl, VM_EXIT_CRASH, "host %d: bad CL_IO", pe->idx);
		return;
	}
	unsigned size = p[5];
	bool mmio = p[4];
	uint64_t addr = cl_get64(p + 8);
	/* A member owns nothing but virtio windows. */
	if ((size != 1 && size != 2 && size != 4 && size != 8) || p[4] > 1 ||
	    p[6] > 1 || (!mmio && addr > 0xffff) ||
	    (cl->self && (!mmio || addr < VIRTIO_MMIO_BASE ||
			  addr >= VIRTIO_MMIO_END))) {
		cluster_stop(cl, VM_EXIT_CRASH, "host %d: bad CL_IO", pe->idx);
		return;
	}
	if (!cluster_io_queue(cl, pe->idx, p))
		cluster_stop(cl, VM_EXIT_CRASH,
			     "host %d: more forwarded accesses than vCPUs",
			     pe->idx);
}

static void on_io_done(struct cluster *cl, const uint8_t *p, size_t len)
{
	uint32_t slot = len == 12 ? cl_get32(p) : IO_SLOTS;

	if (slot >= IO_SLOTS) {
		cluster_stop(cl, VM_EXIT_CRASH, "host 0: bad CL_IO_DONE");
		return;
	}
	pthread_mutex_lock(&cl->lock);
	memcpy(cl->io[slot].data, p + 4, 8);
	cl->io[slot].done = true;
	pthread_cond_broadcast(&cl->cv);
	pthread_mutex_unlock(&cl->lock);
}

/* Restored pages this member is home to, owned by host 0; an empty one
 * ends the list (and is answered, on host 0, as done). */
static void on_preown(struct cluster *cl, struct peer *pe, const uint8_t *p,
		      size_t len)
{
	if (cl->self == 0) {
		pthread_mutex_lock(&cl->lock);
		cl->preowned |= 1u << pe->idx;
		pthread_cond_broadcast(&cl->cv);
		pthread_mutex_unlock(&cl->lock);
		return;
	}
	if (pe->idx != 0 || len % 8 || !cl->dsm_on) {
		cluster_stop(cl, VM_EXIT_CRASH, "host 0: bad CL_PREOWN");
		return;
	}
	for (size_t i = 0; i < len; i += 8) {
		uint64_t gpa = cl_get64(p + i);
		if (!dsm__is_ram(&cl->dsm, gpa) ||
		    dsm__home(&cl->dsm, gpa) != cl->self ||
		    dsm__preown(&cl->dsm, gpa, 0)) {
			cluster_stop(cl, VM_EXIT_CRASH,
				     "host 0: bad CL_PREOWN");
			return;
		}
	}
	if (!len)
		cluster_send(cl, 0, CL_PREOWN, NULL, 0);
}

static bool hello_ok(struct cluster *cl, struct peer *pe, struct fabric_conn *c,
		     const uint8_t *p, size_t len)
{
	uint32_t idx = len == 4 ? cl_get32(p) : 0;

	if (pe->idx >= 0 || idx <= cl->self || idx >= cl->n ||
	    (cl->hello & (1u << idx)))
		return false;
	pthread_mutex_lock(&cl->lock);
	pe->idx = idx;
	cl->conn[idx] = c;
	cl->hello |= 1u << idx;
	pthread_cond_broadcast(&cl->cv);
	pthread_mutex_unlock(&cl->lock);
	return true;
}

/* A member: its statistics for host 0's `slos stat` (seq, text). */
static void stat_answer(struct cluster *cl, uint32_t seq)
{
	char *txt = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&txt, &n);

	if (!f)
		return;
	vm__print_stats(cl->vm, f);
	fclose(f);
	static const char cut[] = "slos: (cut: too long for one message)\n";
	if (n > FABRIC_MAX_PAYLOAD - 4) {
		n = FABRIC_MAX_PAYLOAD - 4;
		memcpy(txt + n - (sizeof(cut) - 1), cut, sizeof(cut) - 1);
	}
	uint8_t *m = malloc(n + 4);
	if (m) {
		cl_put32(m, seq);
		memcpy(m + 4, txt, n);
		cluster_send(cl, 0, CL_STAT, m, n + 4);
	}
	free(m);
	free(txt);
}

/* Host 0: a member's answer; its text is shown to a user as it is, so
 * only printable characters and newlines are kept. */
static void stat_in(struct cluster *cl, int from, const uint8_t *p, size_t len)
{
	if (cl->self || from <= 0 || len < 4)
		return;
	char *t = malloc(len - 4 + 1);
	if (!t)
		return;
	for (size_t i = 4; i < len; i++)
		t[i - 4] = (p[i] >= 0x20 && p[i] < 0x7f) || p[i] == '\n'
			       ? p[i]
			       : '?';
	t[len - 4] = 0;
	pthread_mutex_lock(&cl->lock);
	if (cl_get32(p) == cl->stat_seq && !cl->stat_txt[from]) {
		cl->stat_txt[from] = t;
		t = NULL;
		pthread_cond_broadcast(&cl->cv);
	}
	pthread_mutex_unlock(&cl->lock);
	free(t);
}

static bool stats_in(struct cluster *cl)
{
	for (unsigned h = 1; h < cl->n; h++)
		if (!cl->stat_txt[h])
			return false;
	return true;
}

void cluster__stat_members(struct vm *vm, FILE *f, int ms)
{
	struct cluster *cl = vm->cl;
	struct timespec t;
	uint8_t m[4];
	int r = 0;

	if (!cl || cl->self)
		return;
	pthread_mutex_lock(&cl->lock);
	for (unsigned h = 1; h < cl->n; h++) {
		free(cl->stat_txt[h]);
		cl->stat_txt[h] = NULL;
	}
	cl_put32(m, ++cl->stat_seq);
	pthread_mutex_unlock(&cl->lock);
	for (unsigned h = 1; h < cl->n; h++)
		cluster_send(cl, h, CL_STAT_REQ, m, sizeof(m));
	cluster_deadline(&t, ms);
	pthread_mutex_lock(&cl->lock);
	while (!stats_in(cl) && !atomic_load(&cl->stopping) && !r)
		r = pthread_cond_timedwait(&cl->cv, &cl->lock, &t);
	for (unsigned h = 1; h < cl->n; h++) {
		if (cl->stat_txt[h])
			fputs(cl->stat_txt[h], f);
		else
			fprintf(f, "slos: host %u did not answer in time\n", h);
		free(cl->stat_txt[h]);
		cl->stat_txt[h] = NULL;
	}
	pthread_mutex_unlock(&cl->lock);
}

static void on_frame(struct fabric_conn *c, uint16_t type, const void *payload,
		     size_t len, void *arg)
{
	struct peer *pe = arg;
	struct cluster *cl = pe->cl;
	const uint8_t *p = payload;

	if (type >= FABRIC_MSG_DSM_FIRST && type <= FABRIC_MSG_DSM_LAST) {
		on_dsm(cl, pe, p, len);
		return;
	}
	if (type >= CL_JUMP && type <= CL_WHERE && pe->idx >= 0) {
		jump_frame(cl, pe->idx, type, p, len);
		return;
	}
	if (pe->idx < 0 && type != CL_HELLO) {
		cluster_stop(cl, VM_EXIT_CRASH, "%s: no CL_HELLO first",
			     fabric__peer(c));
		return;
	}
	switch (type) {
	case CL_SPEC: {
		const char *why;
		pthread_mutex_lock(&cl->lock);
		if (cl->self || pe->idx != 0 || cl->got_spec ||
		    cluster__spec_get(&cl->spec, p, len, &why)) {
			pthread_mutex_unlock(&cl->lock);
			set_fail(cl, "host 0 sent a bad CL_SPEC");
			return;
		}
		cl->got_spec = true;
		pthread_cond_broadcast(&cl->cv);
		pthread_mutex_unlock(&cl->lock);
		return;
	}
	case CL_READY:
		if (cl->self || len != 2) {
			set_fail(cl, "host %d: bad CL_READY", pe->idx);
			return;
		}
		pthread_mutex_lock(&cl->lock);
		cl->port[pe->idx] = p[0] | p[1] << 8;
		cl->ready |= 1u << pe->idx;
		pthread_cond_broadcast(&cl->cv);
		pthread_mutex_unlock(&cl->lock);
		return;
	case CL_FAIL:
		set_fail(cl, "host %d (%s): %.*s", pe->idx, cl->addr[pe->idx],
			 (int)(len > 200 ? 200 : len), (const char *)p);
		return;
	case CL_PEERS:
		if (cl->self == 0 || pe->idx != 0 || cl->got_peers ||
		    len != cl->n * ADDR_LEN) {
			set_fail(cl, "host 0 sent a bad CL_PEERS");
			return;
		}
		pthread_mutex_lock(&cl->lock);
		for (unsigned h = 0; h < cl->n; h++) {
			memcpy(cl->addr[h], p + h * ADDR_LEN, ADDR_LEN);
			cl->addr[h][ADDR_LEN - 1] = 0;
		}
		cl->got_peers = true;
		pthread_cond_broadcast(&cl->cv);
		pthread_mutex_unlock(&cl->lock);
		return;
	case CL_HELLO:
		if (!hello_ok(cl, pe, c, p, len))
			set_fail(cl, "%s: bad CL_HELLO", fabric__peer(c));
		return;
	case CL_MESHED:
		pthread_mutex_lock(&cl->lock);
		cl->meshed |= 1u << pe->idx;
		pthread_cond_broadcast(&cl->cv);
		pthread_mutex_unlock(&cl->lock);
		return;
	case CL_GO:
		pthread_mutex_lock(&cl->lock);
		if (cl->self == 0 || pe->idx != 0 || cl->go ||
		    cluster__time_get(&cl->time, p, len)) {
			pthread_mutex_unlock(&cl->lock);
			cluster_stop(cl, VM_EXIT_CRASH,
				     "host 0 sent a bad CL_GO");
			return;
		}
		cl->go = true;
		pthread_cond_broadcast(&cl->cv);
		pthread_mutex_unlock(&cl->lock);
		return;
	case CL_AP_START: {
		uint32_t v = len == 12 ? cl_get32(p) : VM_MAX_VCPUS;
		uint64_t entry = len == 12 ? cl_get64(p + 4) : MEM_4G;
		if (cl->self == 0 || pe->idx != 0 || v >= cl->spec.nr_vcpus ||
		    cl->spec.vcpu_map[v] != cl->self || entry >= MEM_4G) {
			cluster_stop(cl, VM_EXIT_CRASH,
				     "host 0: bad CL_AP_START");
			return;
		}
		cluster_ap_release(cl, v, entry);
		return;
	}
	case CL_PREOWN:
		on_preown(cl, pe, p, len);
		return;
	case CL_IO:
		on_io(cl, pe, p, len);
		return;
	case CL_IO_DONE:
		on_io_done(cl, p, len);
		return;
	case CL_EOI:
		if (len == 1 && cl->vm && cl->vm->ioapic)
			ioapic__eoi(cl->vm->ioapic, p[0]);
		return;
	case CL_LOAD:
		cluster_load_frame(cl, pe->idx, p, len);
		return;
	case CL_IPI:
		ipi_frame(cl, pe->idx, p, len);
		return;
	case CL_STAT_REQ:
		if (pe->idx != 0 || len != 4 || !cl->vm) {
			cluster_stop(cl, VM_EXIT_CRASH, "bad CL_STAT_REQ");
			return;
		}
		stat_answer(cl, cl_get32(p));
		return;
	case CL_STAT:
		stat_in(cl, pe->idx, p, len);
		return;
	case CL_DEVS:
		cluster_devs_frame(cl, pe->idx, p, len);
		return;
	case CL_IRQ:
		cluster_irq_frame(cl, pe->idx, p, len);
		return;
	case CL_DEV:
		cluster_dev_frame(cl, pe->idx, p, len);
		return;
	case CL_TRACE: {
		const char *why;
		/* An empty one: the member's last. */
		if (!len) {
			pthread_mutex_lock(&cl->lock);
			cl->trace_done |= 1u << pe->idx;
			pthread_cond_broadcast(&cl->cv);
			pthread_mutex_unlock(&cl->lock);
			return;
		}
		/* Not worth stopping the VM for: say so once, drop it. */
		if (cl->self == 0 && trace__recv(pe->idx, p, len, &why) &&
		    !cl->trace_bad++)
			fprintf(stderr, "slos: host %d: %s (dropped)\n",
				pe->idx, why);
		return;
	}
	case CL_STOP: {
		uint32_t status = len >= 4 ? cl_get32(p) : VM_EXIT_CRASH;
		int n = len > 4 ? (int)(len - 4 > 200 ? 200 : len - 4) : 0;
		cl->stop_from_peer = cl->self != 0;
		if (!cl->vm) {
			set_fail(cl, "stopped by host %d", pe->idx);
			return;
		}
		if (cl->self == 0)
			cluster_stop(cl, status > 255 ? VM_EXIT_CRASH : status,
				     "host %d: %.*s", pe->idx, n,
				     (const char *)p + 4);
		else
			vm__stop(cl->vm, status, NULL);
		return;
	}
	default:
		cluster_stop(cl, VM_EXIT_CRASH,
			     "host %d sent unknown message 0x%x", pe->idx,
			     type);
	}
}

static void on_down(struct fabric_conn *c, int err, const char *why, void *arg)
{
	struct peer *pe = arg;
	struct cluster *cl = pe->cl;
	char pages[96], flying[200], also[240] = "";

	if (atomic_load(&cl->stopping))
		return;
	home_of(cl, pe->idx < 0 ? 0 : pe->idx, pages, sizeof(pages));
	/* A vCPU sent there and not yet taken is lost with it: say so. */
	pthread_mutex_lock(&cl->lock);
	if (pe->idx >= 0 &&
	    cluster_in_flight(cl, pe->idx, flying, sizeof(flying)))
		snprintf(also, sizeof(also), "; %s was jumping to it", flying);
	pthread_mutex_unlock(&cl->lock);
	if (pe->idx == 0)
		cluster_stop(cl, VM_EXIT_CRASH, "lost the I/O host: %s%s", why,
			     also);
	else if (cl->self == 0)
		cluster_stop(
		    cl, VM_EXIT_CRASH,
		    "host %d (%s) is gone (%s): the guest pages it is home "
		    "to (%s) are unreachable%s",
		    pe->idx, cl->addr[pe->idx], why, pages, also);
	else /* host 0 names this host; the address is a mesh port */
		cluster_stop(
		    cl, VM_EXIT_CRASH,
		    "host %d is gone (%s): the guest pages it is home to "
		    "(%s) are unreachable%s",
		    pe->idx, why, pages, also);
}

/* ---- the DSM on guest RAM ---- */

static int dsm_send(void *arg, unsigned to, const struct dsm_msg *m)
{
	struct cluster *cl = arg;
	uint8_t buf[DSM_WIRE_MAX];
	size_t n = dsm__encode(m, buf);
	int r = cluster_send(cl, to, FABRIC_MSG_DSM_FIRST, buf, n);

	/* Before the engine's own, vaguer, error: which host and why. */
	if (r && !atomic_load(&cl->stopping))
		cluster_stop(
		    cl, VM_EXIT_CRASH,
		    "host %u is unreachable (%s): the DSM cannot send it "
		    "%s for guest page 0x%llx",
		    to,
		    cl->conn[to] ? fabric__down_why(cl->conn[to])
				 : "not connected",
		    dsm__msg_name(m->type), (unsigned long long)m->gpa);
	return r;
}

static void dsm_error(void *arg, const char *why)
{
	struct cluster *cl = arg;

	cluster_stop(cl, VM_EXIT_CRASH, "dsm: %s", why);
}

static int src_fault(struct fault_source *s, uint64_t gpa, bool write, bool wp,
		     uint32_t tid)
{
	struct cluster *cl = s->priv;

	cluster_fault_begin(cl, gpa, write, tid);
	return dsm__fault(&cl->dsm, gpa, write);
}

/* The ops that end a vCPU's wait, timed (vmm/cluster_faults.c). */
static int w_install(void *arg, uint64_t gpa, const void *page, bool wr)
{
	struct cluster *cl = ((struct dsm_mem *)arg)->arg;
	int r = cl->mem_ops.install(arg, gpa, page, wr);

	cluster_fault_end(cl, gpa);
	return r;
}

static int w_unprotect(void *arg, uint64_t gpa)
{
	struct cluster *cl = ((struct dsm_mem *)arg)->arg;
	int r = cl->mem_ops.unprotect(arg, gpa);

	cluster_fault_end(cl, gpa);
	return r;
}

static int w_wake(void *arg, uint64_t gpa)
{
	struct cluster *cl = ((struct dsm_mem *)arg)->arg;
	int r = cl->mem_ops.wake(arg, gpa);

	cluster_fault_end(cl, gpa);
	return r;
}

void cluster__dsm_layout(const struct vm *vm, struct dsm_config *c)
{
	*c = (struct dsm_config){
	    .self = vm->cfg.host,
	    .nhosts = vm->cfg.nhosts,
	    .lowmem = vm->mem.lowmem,
	    .size = vm->mem.size,
	    .interleave = vm->cfg.interleave,
	    .budget_pages = vm->cfg.host_mem / PAGE_SIZE,
	};
}

int cluster__dsm_start(struct vm *vm)
{
	struct cluster *cl = vm->cl;
	struct dsm_config c;
	struct dsm_ops ops;
	int r;

	cluster__dsm_layout(vm, &c);

	cl->dm = (struct dsm_mem){
	    .fe = &vm->fault, .send = dsm_send, .error = dsm_error, .arg = cl};
	dsm_mem__ops(&cl->dm, &ops);
	cl->mem_ops = ops;
	ops.install = w_install;
	ops.unprotect = w_unprotect;
	ops.wake = w_wake;
	r = dsm__init(&cl->dsm, &c, &ops);
	if (r) {
		fprintf(stderr, "slos: dsm: %s\n", strerror(-r));
		return -1;
	}
	cl->src = (struct fault_source){
	    .name = "dsm", .fault = src_fault, .priv = cl};
	r = fault__init(&vm->fault, &vm->mem, &cl->src);
	if (r) {
		fprintf(stderr,
			"slos: userfaultfd (missing + write-protect) on guest "
			"RAM: %s\n",
			strerror(-r));
		return -1;
	}
	r = fault__start(&vm->fault);
	if (r) {
		fprintf(stderr, "slos: fault engine: %s\n", strerror(-r));
		return -1;
	}
	cl->dsm_on = true;
	return 0;
}

/* ---- devices ---- */

void cluster_forward(struct cluster *cl, unsigned to, bool mmio,
		     uint64_t addr, uint8_t *data, unsigned size, bool write)
{
	uint8_t msg[24] = {0};
	uint64_t t0 = vm__now_ns();

	if (io_slot < 0)
		io_slot = atomic_fetch_add(&cl->next_slot, 1);
	if (io_slot >= IO_SLOTS || size > 8) {
		memset(data, 0xff, size);
		return;
	}
	cl_put32(msg, io_slot);
	msg[4] = mmio;
	msg[5] = size;
	msg[6] = write;
	cl_put64(msg + 8, addr);
	if (write)
		memcpy(msg + 16, data, size);
	pthread_mutex_lock(&cl->lock);
	cl->io[io_slot].done = false;
	pthread_mutex_unlock(&cl->lock);
	if (cluster_send(cl, to, CL_IO, msg, sizeof(msg))) {
		memset(data, 0xff, size);
		return;
	}
	pthread_mutex_lock(&cl->lock);
	while (!cl->io[io_slot].done && !atomic_load(&cl->stopping))
		pthread_cond_wait(&cl->cv, &cl->lock);
	if (!write)
		memcpy(data, cl->io[io_slot].data, size);
	pthread_mutex_unlock(&cl->lock);
	uint64_t ns = vm__now_ns() - t0;
	struct vcpu *v;

	atomic_fetch_add(&cl->fwd_n, 1);
	atomic_fetch_add(&cl->fwd_ns, ns);
	/* A vCPU's own access (the forwarder passing one on is not). */
	if (trace__on() && (v = vcpu__current()))
		trace__emit(TRACE_IO, cl->self, v->id, addr, to, ns / 1000,
			    write);
}

static void fwd_access(struct io_dev *d, uint64_t off, uint8_t *data,
		       unsigned size, bool write)
{
	struct cluster *cl = d->priv;

	cluster_forward(cl, 0, d != &cl->fwd_pio[0] && d != &cl->fwd_pio[1],
			d->base + off, data, size, write);
}

int cluster__devices(struct vm *vm)
{
	struct cluster *cl = vm->cl;
	const uint64_t jp = CLUSTER_PORT_JUMP;
	int r = ipi_setup(vm);

	if (r) {
		fprintf(stderr, "slos: the trap for parked vCPUs: %s\n",
			strerror(-r));
		return -1;
	}

	/* Every host answers the jump port itself: it moves the vCPU
	 * that runs here. */
	cl->jump_dev = (struct io_dev){.name = "jump",
				       .base = jp,
				       .len = 4,
				       .access = jump_port,
				       .priv = cl};
	if (io__register(&vm->pio, &cl->jump_dev))
		return -1;
	/* Every host performs forwarded accesses to the devices it owns. */
	if (cluster_io_start(cl) || cluster_dev_register(cl, vm))
		return -1;
	if (cl->self == 0)
		return cluster_wake_register(cl);
	/* A member's other accesses go to host 0's devices. */
	cl->fwd_pio[0] = (struct io_dev){.name = "forward",
					 .base = 0,
					 .len = jp,
					 .access = fwd_access,
					 .priv = cl};
	cl->fwd_pio[1] = (struct io_dev){.name = "forward",
					 .base = jp + 4,
					 .len = 0x10000 - jp - 4,
					 .access = fwd_access,
					 .priv = cl};
	/* Around the virtio windows, which cluster_dev.c routes. */
	cl->fwd_mmio[0] = (struct io_dev){.name = "forward",
					  .base = 0,
					  .len = VIRTIO_MMIO_BASE,
					  .access = fwd_access,
					  .priv = cl};
	cl->fwd_mmio[1] = (struct io_dev){.name = "forward",
					  .base = VIRTIO_MMIO_END,
					  .len = (1ULL << 52) - VIRTIO_MMIO_END,
					  .access = fwd_access,
					  .priv = cl};
	if (io__register(&vm->pio, &cl->fwd_pio[0]) ||
	    io__register(&vm->pio, &cl->fwd_pio[1]) ||
	    io__register(&vm->mmio, &cl->fwd_mmio[0]) ||
	    io__register(&vm->mmio, &cl->fwd_mmio[1]))
		return -1;
	return 0;
}

void cluster__eoi(struct vm *vm, uint8_t vector)
{
	if (vm->cl && vm->cl->self)
		cluster_send(vm->cl, 0, CL_EOI, &vector, 1);
}

static bool ap_started(struct cluster *cl, unsigned id)
{
	return cl->ap_go[id] || atomic_load(&cl->stopping);
}

static void seg(struct kvm_segment *s, uint16_t sel, bool code)
{
	*s = (struct kvm_segment){.base = 0,
				  .limit = 0xffffffff,
				  .selector = sel,
				  .type = code ? 0xb : 0x3,
				  .present = 1,
				  .s = 1,
				  .g = 1,
				  .l = code,
				  .db = !code};
}

/*
 * What the ACPI mailbox promises the woken AP (ACPI 6.4 5.2.12.19, and
 * what Linux 6.1's trampoline_start64 relies on): 64-bit mode, paging on
 * with [0, 4 GiB) identity-mapped, interrupts off, at the wakeup vector.
 * The tables and GDT are host 0's loader's (loader__ap_pagetables), in
 * memory the guest never reuses.
 */
bool cluster__ap_wait(struct vcpu *v)
{
	struct cluster *cl = v->vm->cl;
	struct kvm_sregs s;
	struct kvm_regs r = {0};
	struct kvm_mp_state mp = {.mp_state = KVM_MP_STATE_RUNNABLE};

	pthread_mutex_lock(&cl->lock);
	while (!ap_started(cl, v->id))
		pthread_cond_wait(&cl->cv, &cl->lock);
	uint64_t entry = cl->ap_entry[v->id];
	pthread_mutex_unlock(&cl->lock);
	if (atomic_load(&cl->stopping))
		return false;
	if (ioctl(v->fd, KVM_GET_SREGS, &s)) {
		vm__stop(v->vm, VM_EXIT_CRASH, "cannot start an AP");
		return false;
	}
	seg(&s.cs, LOADER_GDT_CODE, true);
	seg(&s.ds, LOADER_GDT_DATA, false);
	s.es = s.fs = s.gs = s.ss = s.ds;
	s.tr = (struct kvm_segment){.selector = LOADER_GDT_TSS,
				    .limit = 0x67,
				    .type = 0xb,
				    .present = 1};
	s.gdt.base = LOADER_AP_GDT;
	s.gdt.limit = LOADER_GDT_LIMIT;
	s.idt.base = 0;
	s.idt.limit = 0;
	s.cr0 = 0x80050033; /* PG WP NE ET MP PE */
	s.cr3 = LOADER_AP_PML4;
	s.cr4 = 0x20; /* PAE only: no PCIDE, so the guest may turn PG off */
	s.efer = 0x500; /* LMA LME */
	r.rip = entry;
	r.rflags = 2; /* IF clear */
	if (ioctl(v->fd, KVM_SET_SREGS, &s) || ioctl(v->fd, KVM_SET_REGS, &r) ||
	    ioctl(v->fd, KVM_SET_MP_STATE, &mp)) {
		vm__stop(v->vm, VM_EXIT_CRASH, "cannot start an AP");
		return false;
	}
	return true;
}

/* ---- host 0 ---- */

static bool all_ready(struct cluster *cl)
{
	return cl->ready == ((1u << cl->n) - 2);
}

static bool all_meshed(struct cluster *cl)
{
	return cl->meshed == ((1u << cl->n) - 2);
}

static struct cluster *cluster_new(struct vm *vm, unsigned self, unsigned n)
{
	struct cluster *cl = calloc(1, sizeof(*cl));

	if (!cl)
		return NULL;
	cl->vm = vm;
	cl->self = self;
	cl->n = n;
	pthread_mutex_init(&cl->lock, NULL);
	pthread_mutex_init(&cl->ft_lock, NULL);
	pthread_rwlock_init(&cl->conn_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&cl->cv, &ca);
	pthread_condattr_destroy(&ca);
	for (unsigned i = 0; i < DSM_MAX_HOSTS; i++) {
		cl->peer[i] = (struct peer){.cl = cl, .idx = i};
		cl->pending[i] = (struct peer){.cl = cl, .idx = -1};
	}
	for (unsigned i = 0; i < VM_MAX_VCPUS; i++)
		cl->jump[i].to = -1;
	uint8_t id[16];
	cluster_boot_id(id);
	memcpy(&cl->boot_tag, id, sizeof(cl->boot_tag));
	return cl;
}

/* "A.B.C.D:PORT" -> "A.B.C.D:port" */
static void with_port(char *out, const char *addr, unsigned port)
{
	const char *colon = strrchr(addr, ':');
	int n = colon ? (int)(colon - addr) : (int)strlen(addr);

	snprintf(out, ADDR_LEN, "%.*s:%u", n, addr, port);
}

int cluster__io_host(struct vm *vm, const char *const *addrs,
		     const uint8_t key[FABRIC_KEY_SIZE])
{
	struct cluster *cl = cluster_new(vm, 0, vm->cfg.nhosts);
	struct fabric_opts o = {0};
	char why[256];
	uint8_t spec[CLUSTER_SPEC_SIZE];

	if (!cl)
		return -1;
	vm->cl = cl;
	for (unsigned i = 0; i < VM_MAX_VCPUS; i++)
		atomic_store(&cl->where[i], vm->cfg.vcpu_map[i]);
	memcpy(cl->key, key, FABRIC_KEY_SIZE);
	if (getrandom(&cl->vm_id, sizeof(cl->vm_id), 0) != sizeof(cl->vm_id))
		cl->vm_id = vm__now_ns() ^ getpid();
	if (!strcmp(vm->cfg.fabric, "rdma"))
		o.tp = &fabric_rdma;
	o.timeout_ms = 5000;
	o.dead_ms = cluster__dead_ms();
	for (unsigned h = 1; h < cl->n; h++) {
		snprintf(cl->addr[h], ADDR_LEN, "%s", addrs[h]);
		if (fabric__connect(addrs[h], cl->vm_id, key, &o, &cl->conn[h],
				    why, sizeof(why))) {
			fprintf(stderr, "slos: host %u (%s): %s\n", h, addrs[h],
				why);
			return -1;
		}
		if (fabric__start(cl->conn[h], &(struct fabric_handler){
						   .frame = on_frame,
						   .down = on_down,
						   .arg = &cl->peer[h]})) {
			fprintf(stderr, "slos: host %u (%s): cannot start\n", h,
				addrs[h]);
			return -1;
		}
		struct cluster_spec s = {
		    .host = h,
		    .nhosts = cl->n,
		    .nr_vcpus = vm->cfg.nr_vcpus,
		    .pvm = vm->pvm,
		    .mem_size = vm->cfg.mem_size,
		    .host_mem = vm->cfg.host_mem,
		    .flags = (vm->cfg.interleave ? CLUSTER_INTERLEAVE : 0) |
			     (vm->cfg.stats ? CLUSTER_STATS : 0) |
			     (vm->cfg.trace ? CLUSTER_TRACE : 0) |
			     (vm->cfg.balance ? CLUSTER_BALANCE : 0),
		};
		memcpy(s.vcpu_map, vm->cfg.vcpu_map, sizeof(s.vcpu_map));
		if (cluster_devs_send(cl, h)) {
			fprintf(stderr, "slos: the virtio devices' paths do "
					"not fit a CL_DEVS frame\n");
			return -1;
		}
		cluster__spec_put(&s, spec);
		fabric__send(cl->conn[h], CL_SPEC, spec, sizeof(spec));
	}
	if (wait_until(cl, all_ready, SETUP_MS)) {
		for (unsigned h = 1; h < cl->n && !cl->fail_why[0]; h++)
			if (!(cl->ready & (1u << h)))
				set_fail(cl,
					 "host %u (%s): not ready after %d s",
					 h, cl->addr[h], SETUP_MS / 1000);
		fprintf(stderr, "slos: %s\n", cl->fail_why);
		return -1;
	}
	/* Members listen where host 0 reached their daemon. */
	uint8_t peers[DSM_MAX_HOSTS * ADDR_LEN] = {0};
	for (unsigned h = 1; h < cl->n; h++)
		with_port((char *)peers + h * ADDR_LEN, addrs[h], cl->port[h]);
	for (unsigned h = 1; h < cl->n; h++)
		fabric__send(cl->conn[h], CL_PEERS, peers, cl->n * ADDR_LEN);
	if (wait_until(cl, all_meshed, SETUP_MS)) {
		fprintf(stderr, "slos: %s\n",
			cl->fail_why[0] ? cl->fail_why
					: "the hosts did not connect to each "
					  "other");
		return -1;
	}
	return 0;
}

static int fill(void *arg, uint64_t gpa, void *dst)
{
	struct vm *vm = arg;
	int r = restore__read_page(vm->restore, gpa, dst);

	if (r == 1)
		memset(dst, 0, PAGE_SIZE);
	return r < 0 ? r : 0;
}

static bool all_preowned(struct cluster *cl)
{
	return cl->preowned == ((1u << cl->n) - 2);
}

int cluster__restore(struct vm *vm)
{
	struct cluster *cl = vm->cl;
	static uint8_t buf[DSM_MAX_HOSTS][1000 * 8];
	size_t n[DSM_MAX_HOSTS] = {0};
	uint64_t pages = 0;

	dsm__set_fill(&cl->dsm, fill, vm);
	for (uint64_t gpa = 0; gpa < vm->mem.top; gpa += PAGE_SIZE) {
		if (!dsm__is_ram(&cl->dsm, gpa) ||
		    !restore__has_data(vm->restore, gpa))
			continue;
		unsigned h = dsm__home(&cl->dsm, gpa);
		if (dsm__preown(&cl->dsm, gpa, 0))
			return -1;
		pages++;
		if (!h)
			continue;
		cl_put64(buf[h] + n[h], gpa);
		n[h] += 8;
		if (n[h] == sizeof(buf[h])) {
			fabric__send(cl->conn[h], CL_PREOWN, buf[h], n[h]);
			n[h] = 0;
		}
	}
	for (unsigned h = 1; h < cl->n; h++) {
		if (n[h])
			fabric__send(cl->conn[h], CL_PREOWN, buf[h], n[h]);
		fabric__send(cl->conn[h], CL_PREOWN, NULL, 0);
	}
	if (wait_until(cl, all_preowned, SETUP_MS)) {
		fprintf(stderr, "slos: --restore: the hosts did not take the "
				"snapshot's pages\n");
		return -1;
	}
	if (vm->cfg.stats)
		fprintf(stderr,
			"slos: restore: %llu pages owned by host 0, "
			"served from the snapshot at first touch\n",
			(unsigned long long)pages);
	return 0;
}

void cluster__clocks(struct vm *vm)
{
	if (vm->cl)
		cluster__time_read(vm, &vm->cl->time);
}

int cluster__balance(struct vm *vm)
{
	if (!vm->cl || !vm->cfg.balance || cluster_balance_start(vm->cl)) {
		if (vm->cl && vm->cfg.balance)
			fprintf(stderr, "slos: --balance: no agent thread\n");
		return vm->cl && vm->cfg.balance ? -1 : 0;
	}
	return 0;
}

void cluster__go(struct vm *vm)
{
	uint8_t m[CLUSTER_TIME_SIZE];

	if (!vm->cl)
		return;
	cluster__time_put(&vm->cl->time, m);
	for (unsigned h = 1; h < vm->cl->n; h++)
		cluster_send(vm->cl, h, CL_GO, m, sizeof(m));
}

/* ---- a member ---- */

static bool got_spec(struct cluster *cl)
{
	return cl->got_spec;
}

static bool got_peers(struct cluster *cl)
{
	return cl->got_peers;
}

static bool all_hello(struct cluster *cl)
{
	unsigned want = 0;

	for (unsigned h = cl->self + 1; h < cl->n; h++)
		want |= 1u << h;
	return (cl->hello & want) == want;
}

static bool go_or_stop(struct cluster *cl)
{
	return cl->go || atomic_load(&cl->stopping);
}

static bool member_key(uint64_t vm_id, uint8_t key[FABRIC_KEY_SIZE], void *arg)
{
	struct cluster *cl = arg;

	if (vm_id != cl->vm_id)
		return false;
	memcpy(key, cl->key, FABRIC_KEY_SIZE);
	return true;
}

static void member_fail(struct cluster *cl, const char *why)
{
	fprintf(stderr, "slos: host %u: %s\n", cl->self, why);
	if (cl->conn[0])
		fabric__send(cl->conn[0], CL_FAIL, why, strlen(why));
}

/* The mesh: connect to the members below, accept those above. */
static int mesh(struct cluster *cl)
{
	struct fabric_opts o = {.timeout_ms = 5000,
				.key_for = member_key,
				.key_arg = cl,
				.dead_ms = cluster__dead_ms()};
	char why[256];
	uint8_t me[4];

	cl_put32(me, cl->self);
	for (unsigned h = 1; h < cl->self; h++) {
		if (fabric__connect(cl->addr[h], cl->vm_id, cl->key, &o,
				    &cl->conn[h], why, sizeof(why)) ||
		    fabric__start(cl->conn[h], &(struct fabric_handler){
						   .frame = on_frame,
						   .down = on_down,
						   .arg = &cl->peer[h]})) {
			char msg[320];
			snprintf(msg, sizeof(msg), "cannot reach host %u: %s",
				 h, why);
			member_fail(cl, msg);
			return -1;
		}
		fabric__send(cl->conn[h], CL_HELLO, me, sizeof(me));
	}
	for (unsigned k = 0; k < cl->n - 1 - cl->self; k++) {
		struct fabric_conn *c;
		if (fabric__accept(cl->mesh, SETUP_MS, &c)) {
			member_fail(cl, "the other hosts did not connect");
			return -1;
		}
		cl->accepted[k] = c;
		fabric__start(c,
			      &(struct fabric_handler){.frame = on_frame,
						       .down = on_down,
						       .arg = &cl->pending[k]});
	}
	if (wait_until(cl, all_hello, SETUP_MS)) {
		member_fail(cl, "no CL_HELLO from a host");
		return -1;
	}
	return 0;
}

static int send_trace(void *arg, const void *p, size_t len)
{
	return cluster_send(arg, 0, CL_TRACE, p, len);
}

int cluster__member(struct fabric_conn *c, const uint8_t key[FABRIC_KEY_SIZE])
{
	struct cluster *cl = cluster_new(NULL, 0, DSM_MAX_HOSTS);
	static struct vm vm;
	struct vm_config cfg = {0};
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char local[ADDR_LEN], why[256];
	int status;

	if (!cl)
		return VM_EXIT_CRASH;
	cl->conn[0] = c;
	cl->vm_id = fabric__vm_id(c);
	memcpy(cl->key, key, FABRIC_KEY_SIZE);
	if (fabric__start(c, &(struct fabric_handler){.frame = on_frame,
						      .down = on_down,
						      .arg = &cl->peer[0]}) ||
	    wait_until(cl, got_spec, 10000)) {
		fprintf(stderr, "slos: host: no VM spec from %s%s%s\n",
			fabric__peer(c), cl->fail_why[0] ? ": " : "",
			cl->fail_why);
		fabric__close(c);
		free(cl);
		return VM_EXIT_USAGE;
	}
	cl->self = cl->spec.host;
	cl->n = cl->spec.nhosts;
	for (unsigned i = 0; i < VM_MAX_VCPUS; i++)
		atomic_store(&cl->where[i], cl->spec.vcpu_map[i]);
	cfg = (struct vm_config){
	    .nr_vcpus = cl->spec.nr_vcpus,
	    .mem_size = cl->spec.mem_size,
	    .pvm = cl->spec.pvm,
	    .fabric = "tcp",
	    .host = cl->self,
	    .nhosts = cl->n,
	    .interleave = cl->spec.flags & CLUSTER_INTERLEAVE,
	    .stats = cl->spec.flags & CLUSTER_STATS,
	    .balance = cl->spec.flags & CLUSTER_BALANCE,
	    .host_mem = cl->spec.host_mem,
	    .member = cl,
	    .profile_us = 10000,
	};
	memcpy(cfg.vcpu_map, cl->spec.vcpu_map, sizeof(cfg.vcpu_map));
	if (cluster_dev_config(cl, &cfg)) {
		member_fail(cl, "a virtio device names a host the VM lacks");
		goto out;
	}
	if (cl->spec.flags & CLUSTER_TRACE)
		trace__remote(send_trace, cl);
	if (vm__init(&vm, &cfg)) {
		member_fail(cl, "VM setup failed (see that host's log)");
		goto out;
	}
	cl->vm = &vm;
	if (getsockname(c->fd, (struct sockaddr *)&ss, &sl)) {
		member_fail(cl, "getsockname failed");
		goto out;
	}
	char me[ADDR_LEN];
	fabric__format_addr((struct sockaddr *)&ss, me, sizeof(me));
	with_port(local, me, 0);
	struct fabric_opts lo = {.key_for = member_key,
				 .key_arg = cl,
				 .dead_ms = cluster__dead_ms()};
	if (fabric__listen(local, &lo, &cl->mesh, why, sizeof(why))) {
		member_fail(cl, why);
		goto out;
	}
	const char *bound = fabric__listener_addr(cl->mesh);
	unsigned port = atoi(strrchr(bound, ':') + 1);
	uint8_t pb[2] = {port & 0xff, port >> 8};
	fabric__send(c, CL_READY, pb, 2);
	if (wait_until(cl, got_peers, SETUP_MS) || mesh(cl)) {
		if (!cl->fail_why[0])
			member_fail(cl, "host 0 sent no peers");
		goto out;
	}
	fabric__send(c, CL_MESHED, NULL, 0);
	pthread_mutex_lock(&cl->lock);
	while (!go_or_stop(cl))
		pthread_cond_wait(&cl->cv, &cl->lock);
	pthread_mutex_unlock(&cl->lock);
	if (!atomic_load(&cl->stopping) && cluster__time_apply(&vm, &cl->time))
		vm__stop(&vm, VM_EXIT_CRASH, "cannot set the guest's clocks");
	if (!atomic_load(&cl->stopping) && vm__start(&vm))
		vm__stop(&vm, VM_EXIT_CRASH, "cannot start the vCPUs");
	/* Wait for the stop; meanwhile send --trace events every 200 ms. */
	struct pollfd pf = {.fd = vm.stop_efd, .events = POLLIN};
	while (poll(&pf, 1, 200) <= 0)
		trace__flush();
out:
	vm__stop(&vm, VM_EXIT_CRASH, NULL);
	status = vm__wait(&vm);
	trace__flush();
	if (cl->spec.flags & CLUSTER_TRACE)
		cluster_send(cl, 0, CL_TRACE, NULL, 0);
	if (cfg.stats)
		cluster__print_stats(&vm, stderr);
	if (cl->spec.flags & CLUSTER_STATS)
		virtio__print_stats(&vm, stderr);
	vm__exit(&vm);
	return status;
}

static bool traces_in(struct cluster *cl)
{
	return cl->trace_done == ((1u << cl->n) - 2);
}

void cluster__trace_drain(struct vm *vm, int ms)
{
	struct cluster *cl = vm->cl;

	if (!cl || cl->self)
		return;
	/* wait_until gives up at a stop, which this follows: wait here. */
	struct timespec t;
	cluster_deadline(&t, ms);
	pthread_mutex_lock(&cl->lock);
	while (!traces_in(cl) &&
	       !pthread_cond_timedwait(&cl->cv, &cl->lock, &t))
		;
	pthread_mutex_unlock(&cl->lock);
}

void cluster__print_stats(struct vm *vm, FILE *f)
{
	struct cluster *cl = vm->cl;
	struct dsm_stats s;

	if (!cl || !cl->dsm_on)
		return;
	cluster_jump_stats(cl, f);
	ipi_stats(cl, f);
	uint64_t fn = atomic_load(&cl->fwd_n);
	if (fn)
		fprintf(f,
			"slos: host %u forwarded %llu device accesses, "
			"%.1f us each on average\n",
			cl->self, (unsigned long long)fn,
			atomic_load(&cl->fwd_ns) / 1e3 / fn);
	cluster_fault_stats(cl, f);
	cluster_clock_stats(cl, f);
	dsm__stats(&cl->dsm, &s);
	fprintf(
	    f,
	    "slos: host %u dsm: faults %llu (already valid %llu, already "
	    "asked %llu) read_req %llu write_req %llu "
	    "upgrades %llu; sent %llu (%llu KiB of pages, %llu zero); "
	    "received %llu; inv %llu fwd %llu; evicted %llu S %llu M; "
	    "home served %llu queued %llu\n",
	    cl->self, (unsigned long long)s.faults, (unsigned long long)s.hits,
	    (unsigned long long)s.waits, (unsigned long long)s.read_req,
	    (unsigned long long)s.write_req, (unsigned long long)s.upgrades,
	    (unsigned long long)s.tx, (unsigned long long)(s.tx_bytes >> 10),
	    (unsigned long long)s.zero_tx, (unsigned long long)s.rx,
	    (unsigned long long)s.inv, (unsigned long long)s.fwd,
	    (unsigned long long)s.evict_s, (unsigned long long)s.evict_m,
	    (unsigned long long)s.dir_served, (unsigned long long)s.dir_queued);
}

void cluster__exit(struct vm *vm)
{
	struct cluster *cl = vm->cl;

	if (!cl)
		return;
	atomic_store(&cl->stopping, true);
	cluster_balance_stop(cl);
	if (cl->mesh)
		fabric__listener_close(cl->mesh);
	/* Every connection's I/O thread is joined (no DSM input after
	 * this), then the fault thread, and only then is the DSM freed. */
	for (unsigned h = 0; h < DSM_MAX_HOSTS; h++) {
		pthread_rwlock_wrlock(&cl->conn_lock);
		struct fabric_conn *c = cl->conn[h];
		cl->conn[h] = NULL;
		pthread_rwlock_unlock(&cl->conn_lock);
		for (unsigned k = 0; k < DSM_MAX_HOSTS; k++)
			if (cl->accepted[k] == c)
				cl->accepted[k] = NULL;
		if (c)
			fabric__close(c);
	}
	for (unsigned k = 0; k < DSM_MAX_HOSTS; k++)
		if (cl->accepted[k])
			fabric__close(cl->accepted[k]);
	fault__exit(&vm->fault);
	cluster_io_stop(cl);
	cluster_dev_exit(cl);
	if (cl->dsm_on)
		dsm__exit(&cl->dsm);
	for (unsigned i = 0; i < VM_MAX_VCPUS; i++)
		free(cl->jump[i].in); /* arrived after the stop */
	for (unsigned h = 0; h < DSM_MAX_HOSTS; h++)
		free(cl->stat_txt[h]);
	if (cl->trap)
		munmap(cl->trap, TRAP_SIZE);
	vm->cl = NULL;
	free(cl);
}
