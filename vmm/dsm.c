// SPDX-License-Identifier: MIT
/*
 * The DSM engine's core: the cache agent's and the home directory's
 * transitions, one per message or fault, as in vmm/dsm.pml (the handler
 * names below are the model's process actions). docs/dsm.md explains them.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "vmm/dsm.h"
#include "vmm/mem.h"

struct dsm_lq {
	struct dsm_lq *next;
	struct dsm_msg m;
	uint8_t page[];
};

#define ST_ADD(d, f, n) __atomic_add_fetch(&(d)->st.f, (n), __ATOMIC_RELAXED)

static void fail(struct dsm *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fail(struct dsm *d, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	if (atomic_exchange(&d->failed, true))
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (d->ops.error)
		d->ops.error(d->ops.arg, why);
}

static uint64_t pfn(uint64_t gpa)
{
	return gpa >> 12;
}

static pthread_mutex_t *page_lock(struct dsm *d, uint64_t gpa)
{
	return &d->locks[pfn(gpa) % DSM_LOCKS];
}

bool dsm__is_ram(const struct dsm *d, uint64_t gpa)
{
	if (gpa < d->cfg.lowmem)
		return true;
	return gpa >= MEM_4G && gpa - MEM_4G < d->cfg.size - d->cfg.lowmem;
}

unsigned dsm__home(const struct dsm *d, uint64_t gpa)
{
	uint64_t idx =
	    gpa < MEM_4G ? pfn(gpa) : pfn(d->cfg.lowmem + gpa - MEM_4G);

	if (d->cfg.interleave)
		return idx % d->cfg.nhosts;
	return idx / d->per_host;
}

/* Contiguous homes: host h is home to RAM pages [h, h + 1) times this,
 * counting RAM pages from 0 with the 32-bit hole left out. */
static uint64_t per_host(const struct dsm_config *c)
{
	return (pfn(c->size) + c->nhosts - 1) / c->nhosts;
}

unsigned dsm__home_ranges(const struct dsm_config *c,
			  struct dsm_range out[DSM_MAX_RANGES])
{
	uint64_t per, lo, hi;
	unsigned h, n = 0;

	if (c->interleave || c->nhosts < 2 || c->nhosts > DSM_MAX_HOSTS ||
	    c->lowmem > c->size)
		return 0;
	per = per_host(c) * PAGE_SIZE;
	for (h = 0; h < c->nhosts; h++) {
		lo = h * per;
		hi = lo + per < c->size ? lo + per : c->size;
		if (lo >= hi)
			break;
		/* RAM offset to guest-physical: from lowmem on, at 4 GiB. */
		if (lo < c->lowmem)
			out[n++] = (struct dsm_range){
			    .gpa = lo,
			    .len = (hi < c->lowmem ? hi : c->lowmem) - lo,
			    .home = h};
		if (hi > c->lowmem) {
			uint64_t from = lo > c->lowmem ? lo : c->lowmem;

			out[n++] =
			    (struct dsm_range){.gpa = MEM_4G + from - c->lowmem,
					       .len = hi - from,
					       .home = h};
		}
	}
	return n;
}

static void *map(struct dsm *d, int i, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	madvise(p, len, MADV_NOHUGEPAGE);
	d->map_len[i] = len;
	return p;
}

int dsm__init(struct dsm *d, const struct dsm_config *c,
	      const struct dsm_ops *ops)
{
	uint64_t top;

	memset(d, 0, sizeof(*d));
	if (!c->nhosts || c->nhosts > DSM_MAX_HOSTS || c->self >= c->nhosts ||
	    !c->size || c->size % PAGE_SIZE || c->lowmem % PAGE_SIZE ||
	    c->lowmem > c->size)
		return -EINVAL;
	d->cfg = *c;
	d->ops = *ops;
	top = c->size > c->lowmem ? MEM_4G + c->size - c->lowmem : c->lowmem;
	d->npages = pfn(top);
	d->per_host = per_host(c);
	d->state = map(d, 0, d->npages);
	d->dir = map(d, 1, d->npages * sizeof(struct dsm_dir));
	d->store = map(d, 2, top);
	d->priv = map(d, 3, (d->npages + 63) / 64 * 8);
	if (!d->state || !d->dir || !d->store || !d->priv) {
		dsm__exit(d);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < DSM_LOCKS; i++)
		pthread_mutex_init(&d->locks[i], NULL);
	pthread_mutex_init(&d->evict_lock, NULL);
	pthread_mutex_init(&d->lq_lock, NULL);
	d->lq_tail = &d->lq_head;
	return 0;
}

void dsm__exit(struct dsm *d)
{
	void *maps[4] = {d->state, d->dir, d->store, d->priv};

	for (int i = 0; i < 4; i++)
		if (maps[i])
			munmap(maps[i], d->map_len[i]);
	while (d->lq_head) {
		struct dsm_lq *e = d->lq_head;
		d->lq_head = e->next;
		free(e);
	}
	free(d->lazy);
	d->state = NULL;
	d->dir = NULL;
	d->store = NULL;
	d->priv = NULL;
	d->lazy = NULL;
}

/* ---- sending ---- */

static void lq_push(struct dsm *d, const struct dsm_msg *m)
{
	bool page = m->payload == DSM_PAYLOAD_PAGE;
	struct dsm_lq *e = malloc(sizeof(*e) + (page ? DSM_PAGE_BYTES : 0));

	if (!e) {
		fail(d, "out of memory for a local message");
		return;
	}
	e->next = NULL;
	e->m = *m;
	if (page) {
		memcpy(e->page, m->page, DSM_PAGE_BYTES);
		e->m.page = e->page;
	}
	pthread_mutex_lock(&d->lq_lock);
	*d->lq_tail = e;
	d->lq_tail = &e->next;
	pthread_mutex_unlock(&d->lq_lock);
}

/* To this host's own directory or cache agent through the local queue,
 * else to the host. */
static void post(struct dsm *d, unsigned to, const struct dsm_msg *m)
{
	if (to == d->cfg.self) {
		lq_push(d, m);
		return;
	}
	ST_ADD(d, tx, 1);
	if (d->ops.send(d->ops.arg, to, m))
		fail(d, "cannot send %s to host %u", dsm__msg_name(m->type),
		     to);
}

static void send(struct dsm *d, unsigned to, uint8_t type, uint64_t gpa)
{
	struct dsm_msg m = {.type = type, .gpa = gpa};

	post(d, to, &m);
}

static bool all_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;

	for (unsigned i = 0; i < DSM_PAGE_BYTES / 8; i++)
		if (w[i])
			return false;
	return true;
}

/* A message with the page: zero pages go without bytes. */
static void send_page(struct dsm *d, unsigned to, uint8_t type, uint8_t grant,
		      uint64_t gpa, const uint8_t *page)
{
	struct dsm_msg m = {.type = type, .grant = grant, .gpa = gpa};

	if (all_zero(page)) {
		m.payload = DSM_PAYLOAD_ZERO;
		ST_ADD(d, zero_tx, to != d->cfg.self);
	} else {
		m.payload = DSM_PAYLOAD_PAGE;
		m.page = page;
		ST_ADD(d, tx_bytes, to != d->cfg.self ? DSM_PAGE_BYTES : 0);
	}
	post(d, to, &m);
}

static void op_check(struct dsm *d, int r, const char *op, uint64_t gpa)
{
	if (r)
		fail(d, "%s of guest page 0x%llx failed: %s", op,
		     (unsigned long long)gpa, strerror(r < 0 ? -r : r));
}

/* ---- lazy pages (restore over hosts) ---- */

static bool is_lazy(struct dsm *d, uint64_t p)
{
	return d->lazy && (d->lazy[p / 64] >> (p % 64) & 1);
}

static void clear_lazy(struct dsm *d, uint64_t p)
{
	__atomic_and_fetch(&d->lazy[p / 64], ~(1ULL << (p % 64)),
			   __ATOMIC_RELAXED);
}

/* A lazy page this host owns, read from the snapshot into its mapping
 * (writable: it is in DSM_M). -EIO if the read fails, and it stays lazy;
 * else install's result. Under the page's lock. */
static int unlazy(struct dsm *d, uint64_t gpa)
{
	static __thread uint8_t buf[DSM_PAGE_BYTES]
	    __attribute__((aligned(64)));

	if (d->fill(d->fill_arg, gpa, buf) < 0)
		return -EIO;
	clear_lazy(d, pfn(gpa));
	atomic_fetch_add(&d->used, 1);
	return d->ops.install(d->ops.arg, gpa, buf, true);
}

/* ---- host-private pages ---- */

static bool is_priv(struct dsm *d, uint64_t p)
{
	return __atomic_load_n(&d->priv[p / 64], __ATOMIC_RELAXED) >> (p % 64) &
	       1;
}

/* The mapping ops for a page the protocol moves: none for a private one,
 * whose mapping stays as it is. */
static int m_op(struct dsm *d, int (*op)(void *, uint64_t), uint64_t gpa)
{
	return is_priv(d, pfn(gpa)) ? 0 : op(d->ops.arg, gpa);
}

/* The contents of a page this host holds in DSM_M, for a forward or a
 * write-back: it is write-protected first so that they are stable (a
 * private page's are this host's, as they are now). */
static int take_copy(struct dsm *d, uint64_t gpa, uint8_t *buf)
{
	uint64_t p = pfn(gpa);

	if (is_lazy(d, p)) {
		clear_lazy(d, p);
		return d->fill(d->fill_arg, gpa, buf) < 0 ? -EIO : 0;
	}
	int r = m_op(d, d->ops.protect, gpa);
	if (!r)
		r = d->ops.read(d->ops.arg, gpa, buf);
	return r;
}

/* ---- budget ---- */

static bool over_budget(struct dsm *d)
{
	return d->cfg.budget_pages &&
	       atomic_load(&d->used) >= d->cfg.budget_pages;
}

/* Evict one stable page (not `keep`): S is dropped (DSM_EVICT), M written
 * back (DSM_WB). Pages in transient states and lazy ones are skipped; a
 * page whose lock is busy too. Returns whether one went. */
static bool evict_one(struct dsm *d, uint64_t keep)
{
	static __thread uint8_t buf[DSM_PAGE_BYTES]
	    __attribute__((aligned(64)));

	for (uint64_t n = 0; n < d->npages; n++) {
		uint64_t p = d->hand++ % d->npages, gpa = p << 12;
		uint8_t s = __atomic_load_n(&d->state[p], __ATOMIC_RELAXED);

		if (p == keep || (s != DSM_S && s != DSM_M) || is_lazy(d, p) ||
		    is_priv(d, p))
			continue;
		pthread_mutex_t *l = page_lock(d, gpa);
		if (pthread_mutex_trylock(l))
			continue;
		s = d->state[p];
		/* Made private since the look above. */
		if (is_priv(d, p)) {
			pthread_mutex_unlock(l);
			continue;
		}
		unsigned home = dsm__home(d, gpa);
		if (s == DSM_S) {
			op_check(d, d->ops.drop(d->ops.arg, gpa), "drop", gpa);
			d->state[p] = DSM_I;
			send(d, home, DSM_EVICT, gpa);
			ST_ADD(d, evict_s, 1);
		} else if (s == DSM_M) {
			op_check(d, take_copy(d, gpa, buf), "write-back", gpa);
			op_check(d, d->ops.drop(d->ops.arg, gpa), "drop", gpa);
			d->state[p] = DSM_I;
			send_page(d, home, DSM_WB, 0, gpa, buf);
			ST_ADD(d, evict_m, 1);
		}
		pthread_mutex_unlock(l);
		if (s == DSM_S || s == DSM_M) {
			atomic_fetch_sub(&d->used, 1);
			return true;
		}
	}
	return false;
}

static void make_room(struct dsm *d, uint64_t keep)
{
	pthread_mutex_lock(&d->evict_lock);
	while (over_budget(d) && evict_one(d, keep))
		;
	pthread_mutex_unlock(&d->evict_lock);
}

/* ---- the local queue ---- */

static void handle(struct dsm *d, unsigned from, const struct dsm_msg *m);

static void lq_drain(struct dsm *d)
{
	pthread_mutex_lock(&d->lq_lock);
	if (d->lq_draining) {
		pthread_mutex_unlock(&d->lq_lock);
		return;
	}
	d->lq_draining = true;
	while (d->lq_head) {
		struct dsm_lq *e = d->lq_head;
		d->lq_head = e->next;
		if (!d->lq_head)
			d->lq_tail = &d->lq_head;
		pthread_mutex_unlock(&d->lq_lock);
		handle(d, d->cfg.self, &e->m);
		free(e);
		pthread_mutex_lock(&d->lq_lock);
	}
	d->lq_draining = false;
	pthread_mutex_unlock(&d->lq_lock);
}

/* ---- cache agent ---- */

int dsm__fault(struct dsm *d, uint64_t gpa, bool write)
{
	uint64_t p = pfn(gpa);
	bool reserved = false;

	gpa &= ~(uint64_t)(DSM_PAGE_BYTES - 1);
	if (atomic_load(&d->failed))
		return -EIO;
	if (!dsm__is_ram(d, gpa))
		return -EFAULT;
	ST_ADD(d, faults, 1);
	/* A miss takes a budget slot: make room before taking the page's
	 * lock (eviction takes other pages' locks). */
	if (d->state[p] == DSM_I && !is_priv(d, p)) {
		make_room(d, p);
		atomic_fetch_add(&d->used, 1);
		reserved = true;
	}
	pthread_mutex_lock(page_lock(d, gpa));
	unsigned home = dsm__home(d, gpa);
	/* A fault that was on its way when the page became private: it is
	 * mapped and writable now. */
	if (is_priv(d, p)) {
		ST_ADD(d, hits, 1);
		op_check(d, d->ops.wake(d->ops.arg, gpa), "wake", gpa);
		goto out;
	}
	switch (d->state[p]) {
	case DSM_I:
		/* Dropped since the check above (an INV, a forward): the slot
		 * is taken now, the budget made good by the next miss. */
		if (!reserved)
			atomic_fetch_add(&d->used, 1);
		d->state[p] = write ? DSM_IM_D : DSM_IS_D;
		reserved = false;
		send(d, home, write ? DSM_WRITE_REQ : DSM_READ_REQ, gpa);
		ST_ADD(d, read_req, !write);
		ST_ADD(d, write_req, write);
		break;
	case DSM_S:
		if (write) {
			d->state[p] = DSM_SM_D;
			send(d, home, DSM_WRITE_REQ, gpa);
			ST_ADD(d, upgrades, 1);
		} else {
			ST_ADD(d, hits, 1);
			op_check(d, d->ops.wake(d->ops.arg, gpa), "wake", gpa);
		}
		break;
	case DSM_M:
		if (is_lazy(d, p)) {
			int r = unlazy(d, gpa);
			if (r == -EIO)
				fail(d,
				     "guest page 0x%llx: cannot read it "
				     "from the snapshot",
				     (unsigned long long)gpa);
			else
				op_check(d, r, "install", gpa);
			break;
		}
		ST_ADD(d, hits, 1);
		op_check(d, d->ops.wake(d->ops.arg, gpa), "wake", gpa);
		break;
	default:
		/* A request is out: its answer wakes every waiter, and a
		 * writer woken by a read-only grant faults again. */
		ST_ADD(d, waits, 1);
		break;
	}
out:
	pthread_mutex_unlock(page_lock(d, gpa));
	if (reserved)
		atomic_fetch_sub(&d->used, 1);
	lq_drain(d);
	return atomic_load(&d->failed) ? -EIO : 0;
}

static void bad(struct dsm *d, unsigned from, const struct dsm_msg *m,
		const char *where, unsigned state)
{
	fail(d,
	     "protocol violation: %s for guest page 0x%llx from host %u "
	     "in %s state %u",
	     dsm__msg_name(m->type), (unsigned long long)m->gpa, from, where,
	     state);
}

/* The cache agent gets a message from the page's home. */
static void cache_recv(struct dsm *d, unsigned from, const struct dsm_msg *m)
{
	static __thread uint8_t buf[DSM_PAGE_BYTES]
	    __attribute__((aligned(64)));
	uint64_t p = pfn(m->gpa), gpa = m->gpa;
	uint8_t s = d->state[p];

	switch (m->type) {
	case DSM_DATA:
		if (!((s == DSM_IS_D && m->grant == DSM_S) ||
		      (s == DSM_IM_D && m->grant == DSM_M)))
			return bad(d, from, m, "cache", s);
		d->state[p] = m->grant;
		if (!is_priv(d, p))
			op_check(d,
				 d->ops.install(d->ops.arg, gpa,
						m->payload == DSM_PAYLOAD_PAGE
						    ? m->page
						    : NULL,
						m->grant == DSM_M),
				 "install", gpa);
		break;
	case DSM_GRANT:
		if (s != DSM_SM_D)
			return bad(d, from, m, "cache", s);
		d->state[p] = DSM_M;
		op_check(d, m_op(d, d->ops.unprotect, gpa), "unprotect", gpa);
		break;
	case DSM_INV:
		ST_ADD(d, inv, 1);
		if (s == DSM_S || s == DSM_SM_D) {
			op_check(d, m_op(d, d->ops.drop, gpa), "drop", gpa);
			d->state[p] = s == DSM_S ? DSM_I : DSM_IM_D;
			if (s == DSM_S)
				atomic_fetch_sub(&d->used, 1);
		} else if (s == DSM_M) {
			return bad(d, from, m, "cache", s);
		}
		send(d, from, DSM_INV_ACK, gpa);
		break;
	case DSM_FWD_READ:
	case DSM_FWD_WRITE:
		if (s == DSM_I || s == DSM_IS_D || s == DSM_IM_D)
			break; /* stale: our write-back answered it */
		if (s != DSM_M)
			return bad(d, from, m, "cache", s);
		ST_ADD(d, fwd, 1);
		bool lazy = is_lazy(d, p);
		op_check(d, take_copy(d, gpa, buf), "forward", gpa);
		if (m->type == DSM_FWD_WRITE) {
			if (!lazy) {
				op_check(d, m_op(d, d->ops.drop, gpa), "drop",
					 gpa);
				atomic_fetch_sub(&d->used, 1);
			}
			d->state[p] = DSM_I;
		} else {
			/* A lazy page becomes a mapped read-only copy. */
			if (lazy) {
				op_check(
				    d,
				    d->ops.install(d->ops.arg, gpa, buf, false),
				    "install", gpa);
				atomic_fetch_add(&d->used, 1);
			}
			d->state[p] = DSM_S;
		}
		send_page(d, from, DSM_FWD_DATA, 0, gpa, buf);
		break;
	}
}

/* ---- home directory ---- */

static void store_put(struct dsm *d, const struct dsm_msg *m)
{
	uint8_t *dst = d->store + m->gpa;

	if (m->payload == DSM_PAYLOAD_PAGE)
		memcpy(dst, m->page, DSM_PAGE_BYTES);
	else if (!all_zero(dst))
		memset(dst, 0, DSM_PAGE_BYTES);
}

static void dir_serve(struct dsm *d, struct dsm_dir *e, uint64_t gpa,
		      unsigned who, bool write);

static void finish_write(struct dsm *d, struct dsm_dir *e, uint64_t gpa,
			 unsigned w)
{
	if (e->copyset & (1u << w))
		send(d, w, DSM_GRANT, gpa);
	else
		send_page(d, w, DSM_DATA, DSM_M, gpa, d->store + gpa);
	e->owner = w;
	e->copyset = 0;
	e->state = DSM_DIR_M;
}

/* The entry is free: serve the FIFO in order until one makes it busy. */
static void dir_next(struct dsm *d, struct dsm_dir *e, uint64_t gpa)
{
	while (e->nq && e->state <= DSM_DIR_M) {
		uint8_t q = e->q[0];
		memmove(e->q, e->q + 1, --e->nq);
		dir_serve(d, e, gpa, q & 0x7f, q & 0x80);
	}
}

static void dir_serve(struct dsm *d, struct dsm_dir *e, uint64_t gpa,
		      unsigned who, bool write)
{
	ST_ADD(d, dir_served, 1);
	if (!write) {
		if (e->state == DSM_DIR_M) {
			e->cur = who;
			e->cur_write = 0;
			e->state = DSM_DIR_MS_D;
			send(d, e->owner, DSM_FWD_READ, gpa);
			return;
		}
		e->copyset |= 1u << who;
		e->state = DSM_DIR_S;
		send_page(d, who, DSM_DATA, DSM_S, gpa, d->store + gpa);
		return;
	}
	if (e->state == DSM_DIR_M) {
		e->cur = who;
		e->cur_write = 1;
		e->state = DSM_DIR_MM_D;
		send(d, e->owner, DSM_FWD_WRITE, gpa);
		return;
	}
	uint16_t others = e->copyset & ~(1u << who);
	e->copyset &= 1u << who;
	e->acks = 0;
	for (unsigned h = 0; h < d->cfg.nhosts; h++) {
		if (others & (1u << h)) {
			send(d, h, DSM_INV, gpa);
			e->acks++;
		}
	}
	if (e->acks) {
		e->cur = who;
		e->cur_write = 1;
		e->state = DSM_DIR_SM_A;
		return;
	}
	finish_write(d, e, gpa, who);
}

/* The owner's copy came back (DSM_FWD_DATA, or its DSM_WB crossing the
 * forward): serve the waiting requester. kept: the owner kept an S copy. */
static void dir_fwd_done(struct dsm *d, struct dsm_dir *e, uint64_t gpa,
			 bool kept)
{
	unsigned o = e->owner, r = e->cur;

	if (e->state == DSM_DIR_MS_D) {
		e->copyset = (kept ? 1u << o : 0) | 1u << r;
		e->state = DSM_DIR_S;
		send_page(d, r, DSM_DATA, DSM_S, gpa, d->store + gpa);
	} else {
		e->owner = r;
		e->copyset = 0;
		e->state = DSM_DIR_M;
		send_page(d, r, DSM_DATA, DSM_M, gpa, d->store + gpa);
	}
}

static void dir_recv(struct dsm *d, unsigned from, const struct dsm_msg *m)
{
	struct dsm_dir *e = &d->dir[pfn(m->gpa)];
	uint64_t gpa = m->gpa;
	bool busy = e->state > DSM_DIR_M;

	switch (m->type) {
	case DSM_READ_REQ:
	case DSM_WRITE_REQ: {
		bool write = m->type == DSM_WRITE_REQ;
		if ((e->state == DSM_DIR_M && e->owner == from) ||
		    (busy && e->cur == from))
			return bad(d, from, m, "directory", e->state);
		if (busy) {
			for (unsigned i = 0; i < e->nq; i++)
				if ((e->q[i] & 0x7f) == from)
					return bad(d, from, m, "directory",
						   e->state);
			e->q[e->nq++] = from | (write ? 0x80 : 0);
			ST_ADD(d, dir_queued, 1);
			return;
		}
		dir_serve(d, e, gpa, from, write);
		break;
	}
	case DSM_EVICT:
		if (e->state == DSM_DIR_S && (e->copyset & (1u << from))) {
			e->copyset &= ~(1u << from);
			if (!e->copyset)
				e->state = DSM_DIR_I;
		} else if (!(e->state == DSM_DIR_SM_A &&
			     !(e->copyset & (1u << from)))) {
			return bad(d, from, m, "directory", e->state);
		}
		break;
	case DSM_INV_ACK:
		if (e->state != DSM_DIR_SM_A || !e->acks)
			return bad(d, from, m, "directory", e->state);
		if (--e->acks == 0) {
			finish_write(d, e, gpa, e->cur);
			dir_next(d, e, gpa);
		}
		break;
	case DSM_WB:
		if (e->owner != from ||
		    (e->state != DSM_DIR_M && e->state != DSM_DIR_MS_D &&
		     e->state != DSM_DIR_MM_D))
			return bad(d, from, m, "directory", e->state);
		store_put(d, m);
		if (e->state == DSM_DIR_M) {
			e->state = DSM_DIR_I;
			e->copyset = 0;
		} else {
			dir_fwd_done(d, e, gpa, false);
		}
		dir_next(d, e, gpa);
		break;
	case DSM_FWD_DATA:
		if (e->owner != from ||
		    (e->state != DSM_DIR_MS_D && e->state != DSM_DIR_MM_D))
			return bad(d, from, m, "directory", e->state);
		store_put(d, m);
		dir_fwd_done(d, e, gpa, e->state == DSM_DIR_MS_D);
		dir_next(d, e, gpa);
		break;
	}
}

static bool to_home(uint8_t type)
{
	return type <= DSM_FWD_DATA;
}

static void handle(struct dsm *d, unsigned from, const struct dsm_msg *m)
{
	pthread_mutex_t *l = page_lock(d, m->gpa);

	pthread_mutex_lock(l);
	if (to_home(m->type))
		dir_recv(d, from, m);
	else
		cache_recv(d, from, m);
	pthread_mutex_unlock(l);
}

int dsm__recv(struct dsm *d, unsigned from, const struct dsm_msg *m)
{
	if (atomic_load(&d->failed))
		return -EIO;
	if (from >= d->cfg.nhosts || from == d->cfg.self || !m->type ||
	    m->type >= DSM_MSG_MAX || !dsm__is_ram(d, m->gpa) ||
	    m->gpa % DSM_PAGE_BYTES) {
		fail(d, "bad DSM message from host %u", from);
		return -EINVAL;
	}
	unsigned home = dsm__home(d, m->gpa);
	/* Requests go to the page's home, answers come from it. */
	if (to_home(m->type) ? home != d->cfg.self : home != from) {
		fail(d,
		     "protocol violation: %s for guest page 0x%llx from "
		     "host %u, whose home is host %u",
		     dsm__msg_name(m->type), (unsigned long long)m->gpa, from,
		     home);
		return -EINVAL;
	}
	ST_ADD(d, rx, 1);
	handle(d, from, m);
	lq_drain(d);
	return atomic_load(&d->failed) ? -EIO : 0;
}

void dsm__set_fill(struct dsm *d,
		   int (*fill)(void *arg, uint64_t gpa, void *dst), void *arg)
{
	d->fill = fill;
	d->fill_arg = arg;
}

int dsm__preown(struct dsm *d, uint64_t gpa, unsigned owner)
{
	uint64_t p = pfn(gpa);

	if (!dsm__is_ram(d, gpa) || gpa % DSM_PAGE_BYTES ||
	    owner >= d->cfg.nhosts)
		return -EINVAL;
	if (owner == d->cfg.self) {
		if (!d->fill)
			return -EINVAL;
		if (!d->lazy) {
			d->lazy = calloc((d->npages + 63) / 64, 8);
			if (!d->lazy)
				return -ENOMEM;
		}
		d->lazy[p / 64] |= 1ULL << (p % 64);
		d->state[p] = DSM_M;
	}
	if (dsm__home(d, gpa) == d->cfg.self) {
		d->dir[p].state = DSM_DIR_M;
		d->dir[p].owner = owner;
	}
	return 0;
}

int dsm__privatize(struct dsm *d, uint64_t gpa)
{
	uint64_t p = pfn(gpa);
	int r = 0;

	gpa &= ~(uint64_t)(DSM_PAGE_BYTES - 1);
	if (!dsm__is_ram(d, gpa))
		return -EINVAL;
	pthread_mutex_lock(page_lock(d, gpa));
	if (is_priv(d, p))
		goto out;
	switch (d->state[p]) {
	case DSM_S:
	case DSM_SM_D:
		r = d->ops.unprotect(d->ops.arg, gpa);
		break;
	case DSM_M:
		if (is_lazy(d, p))
			r = unlazy(d, gpa);
		break;
	default:
		/* Not mapped here (and maybe on its way): zeros, which the
		 * answer will not overwrite. */
		r = d->ops.install(d->ops.arg, gpa, NULL, true);
		break;
	}
	if (!r)
		__atomic_or_fetch(&d->priv[p / 64], 1ULL << (p % 64),
				  __ATOMIC_RELAXED);
out:
	pthread_mutex_unlock(page_lock(d, gpa));
	return r;
}

bool dsm__is_private(struct dsm *d, uint64_t gpa)
{
	return dsm__is_ram(d, gpa) && is_priv(d, pfn(gpa));
}

enum dsm_page_state dsm__state(struct dsm *d, uint64_t gpa)
{
	return __atomic_load_n(&d->state[pfn(gpa)], __ATOMIC_RELAXED);
}

void dsm__stats(struct dsm *d, struct dsm_stats *out)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	*out = d->st;
}
