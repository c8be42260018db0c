// SPDX-License-Identifier: MIT
/*
 * vCPU jumps between hosts (cluster.h has the protocol in brief).
 *
 *   source                         destination            host 0
 *   jump_to set, kick
 *   KVM_RUN -> EINTR (I/O done)
 *   save, encode --- CL_JUMP --->  parked thread loads
 *                <- CL_JUMP_ANSWER (taken / refused)
 *   parks (taken)                  runs;  --- CL_WHERE ---> every host
 *   runs on (refused) ------------------------ CL_WHERE (failed) -->
 *
 * The source never runs the vCPU after sending it unless the destination
 * refused it; a destination that goes silent instead stops the VM (its
 * pages are gone too), and the stop names the vCPU that was in flight.
 * vmm/jump.pml is the protocol's model (one vCPU, 2 and 3 hosts, states
 * that fail to load): the vCPU runs on at most one host, is never lost,
 * and a jump is never refused for a vCPU that already left.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmm/cluster_priv.h"
#include "vmm/snapshot.h"
#include "vmm/trace.h"

#define MSR_IA32_TSC 0x10
/* vcpu, seq, reason, pause time, boot tag; the balancer's back-off
 * (gap ms, the host it came from or ~0), which travels with the vCPU; its
 * generation (one more at each arrival: orders the hosts' CL_WHEREs). */
#define JUMP_HDR  40
#define WHERE_HDR 16 /* vcpu, host, ok, generation */
#define WHY_MAX	  150

static void put_why(uint8_t *p, const char *why, size_t *len)
{
	size_t n = 0;

	while (why && why[n] && n < WHY_MAX) {
		p[n] = why[n];
		n++;
	}
	*len += n;
}

static void get_why(char *dst, size_t cap, const uint8_t *p, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	for (size_t i = 0; i < n; i++)
		dst[i] = p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '?';
	dst[n] = 0;
}

/* Host 0 keeps, per vCPU, the last word on its jumps for `slos ctl`. */
static void note_report(struct cluster *cl, unsigned vcpu, unsigned host,
			bool ok, uint32_t gen, const char *why)
{
	struct jump_slot *j = &cl->jump[vcpu];

	pthread_mutex_lock(&cl->lock);
	/* Reports of two jumps come over two connections: the later
	 * arrival (higher generation) says where it is. */
	if (ok && gen >= cl->gen[vcpu]) {
		cl->gen[vcpu] = gen;
		atomic_store(&cl->where[vcpu], host);
	}
	if (cl->self == 0) {
		j->reports++;
		j->last_ok = ok;
		snprintf(j->last_why, sizeof(j->last_why), "%s",
			 why ? why : "");
	}
	pthread_cond_broadcast(&cl->cv);
	pthread_mutex_unlock(&cl->lock);
}

/* CL_WHERE: ok, the vCPU runs on `host` now; else its jump to `host`
 * failed, why. Successes go to every host, failures to host 0. */
static void report(struct cluster *cl, unsigned vcpu, unsigned host, bool ok,
		   uint32_t gen, const char *why)
{
	uint8_t m[WHERE_HDR + WHY_MAX];
	size_t len = WHERE_HDR;

	cl_put32(m, vcpu);
	cl_put32(m + 4, host);
	cl_put32(m + 8, ok);
	cl_put32(m + 12, gen);
	put_why(m + WHERE_HDR, why, &len);
	note_report(cl, vcpu, host, ok, gen, why);
	for (unsigned h = 0; h < cl->n; h++)
		if (h != cl->self && (ok || h == 0))
			cluster_send(cl, h, CL_WHERE, m, len);
}

/* Back to KVM_RUN, unless the VM is stopping (vcpu__park's reasoning).
 * A jump asked for while this thread was busy has kicked already: keep
 * its immediate exit, or KVM_RUN would run on until some other exit. */
static bool run_on(struct vcpu *v)
{
	struct vm *vm = v->vm;
	bool go;

	pthread_mutex_lock(&vm->lock);
	go = !atomic_load(&vm->stopping);
	/* Nor may it enter the guest while another thread holds the VM
	 * (vm__hold): the exit loop's EINTR path waits for the release. */
	if (go)
		v->run->immediate_exit = atomic_load(&v->jump_to) >= 0 ||
					 atomic_load(&vm->hold_req);
	pthread_mutex_unlock(&vm->lock);
	return go;
}

static int load(struct vcpu *v, const uint8_t *p, size_t len, unsigned from,
		char *why, size_t why_len)
{
	struct vcpu_state *s = malloc(sizeof(*s));
	const char *bad;
	int r;

	if (!s) {
		snprintf(why, why_len, "out of memory");
		goto refused;
	}
	if (vcpu__state_decode(p, len, s, &bad)) {
		snprintf(why, why_len, "%s", bad);
		goto refused;
	}
	/* Every host's VM shows the guest one TSC (cluster__time_apply):
	 * writing the value the source read would step it back by the
	 * flight time. */
	vcpu__drop_msr(s, MSR_IA32_TSC);
	r = cluster__clock_state(v->vm, s);
	if (r) {
		snprintf(why, why_len,
			 "its kvmclock page cannot be this host's own: %s",
			 strerror(-r));
		goto refused;
	}
	r = ipi_handover_in(v, s, true, from, why, why_len);
	free(s);
	return r;
refused:
	ipi_refused(v, from);
	free(s);
	return -1;
}

/* The balancer's view of a vCPU that just arrived: counted afresh here,
 * with the back-off it brought (within the policy's bounds). */
static void arrived_bal(struct cluster *cl, unsigned id, uint32_t gap,
			uint32_t came)
{
	uint64_t now = cluster_ms();
	struct bal_vcpu *b = &cl->bv[id];

	pthread_mutex_lock(&cl->ft_lock);
	balancer__init(&cl->bal, b, cl->self, now);
	if (gap > b->gap_ms && gap <= cl->bal.max_gap_ms)
		b->gap_ms = gap;
	b->came_from = came < cl->n ? (int)came : -1;
	b->last_jump_ms = now;
	pthread_mutex_unlock(&cl->ft_lock);
}

/* A parked copy's thread: catch interrupts for the vCPU in the trap until
 * its state arrives (fresh: the copy was not just left by it), load it,
 * run. */
static bool arrive(struct vcpu *v, bool fresh)
{
	struct cluster *cl = v->vm->cl;
	struct jump_slot *j = &cl->jump[v->id];

	for (;; fresh = true) {
		char why[WHY_MAX + 1] = "";
		uint8_t ans[12 + WHY_MAX];
		size_t alen = 12;

		if (!ipi_park(v, fresh))
			return false;
		pthread_mutex_lock(&cl->lock);
		uint8_t *in = j->in;
		size_t in_len = j->in_len;
		unsigned from = j->in_from;
		uint32_t seq = j->in_seq;
		uint64_t t0 = j->in_tag == cl->boot_tag ? j->in_t0 : 0;
		unsigned reason =
		    j->in_reason < JUMP_NR_REASONS ? j->in_reason : JUMP_CTL;
		uint32_t gap = j->in_gap, came = j->in_came;
		uint32_t gen = j->in_gen + 1;
		j->in = NULL;
		pthread_mutex_unlock(&cl->lock);
		if (atomic_load(&cl->stopping)) {
			free(in);
			return false;
		}
		int r = load(v, in, in_len, from, why, sizeof(why));
		free(in);
		cl_put32(ans, v->id);
		cl_put32(ans + 4, seq);
		cl_put32(ans + 8, r == 0);
		if (r) {
			fprintf(stderr,
				"slos: vcpu %d: the state host %u sent did not "
				"load here (%s): it stays there\n",
				v->id, from, why);
			put_why(ans + 12, why, &alen);
			cluster_send(cl, from, CL_JUMP_ANSWER, ans, alen);
			continue;
		}
		cluster_send(cl, from, CL_JUMP_ANSWER, ans, alen);
		uint64_t lat = t0 ? (vm__now_ns() - t0) / 1000 : 0;
		pthread_mutex_lock(&cl->lock);
		cl->jumps_in++;
		if (t0 &&
		    cl->nr_lat < sizeof(cl->lat_us) / sizeof(cl->lat_us[0]))
			cl->lat_us[cl->nr_lat++] = lat;
		pthread_mutex_unlock(&cl->lock);
		if (cl->bal_on)
			arrived_bal(cl, v->id, gap, came);
		trace__emit(TRACE_JUMP, cl->self, v->id, from, reason, lat,
			    in_len);
		trace__emit(TRACE_RUN_BEGIN, cl->self, v->id, 0, 0, 0, 0);
		atomic_store(&v->live, true);
		report(cl, v->id, cl->self, true, gen, NULL);
		return run_on(v);
	}
}

/* The jump did not happen: the vCPU runs on here, its state (s, when the
 * copy was emptied already) loaded again. */
static bool refused(struct vcpu *v, unsigned to, const char *why,
		    struct vcpu_state *s)
{
	struct cluster *cl = v->vm->cl;
	char err[WHY_MAX + 1];
	/* Gone from here for a moment (ipi_stay makes it here again). */
	bool back = !atomic_load(&v->here);

	if (s && ipi_stay(v, s, err, sizeof(err))) {
		free(s);
		cluster_stop(cl, VM_EXIT_CRASH,
			     "vCPU %d: its jump to host %u failed and its "
			     "state does not load again here: %s",
			     v->id, to, err);
		return false;
	}
	free(s);
	if (!atomic_exchange(&v->here, true) || back)
		trace__emit(TRACE_RUN_BEGIN, cl->self, v->id, 0, 0, 0, 0);
	fprintf(stderr,
		"slos: vcpu %d: jump to host %u failed (%s): it runs on at "
		"host %u\n",
		v->id, to, why, cl->self);
	report(cl, v->id, to, false, 0, why);
	atomic_store(&v->jump_to, -1);
	return run_on(v);
}

bool cluster__depart(struct vcpu *v)
{
	struct cluster *cl = v->vm->cl;
	struct jump_slot *j = &cl->jump[v->id];
	/* jump_to stays set until the jump is decided, so that no other
	 * request is taken for a vCPU on its way out. */
	int req = atomic_load(&v->jump_to);
	unsigned to = req & 0xffff, reason = (unsigned)req >> 16;
	uint64_t t0 = vm__now_ns();
	char why[WHY_MAX + 1];

	if (req < 0 || to == cl->self || to >= cl->n) {
		atomic_store(&v->jump_to, -1);
		return run_on(v);
	}
	struct vcpu_state *s = malloc(sizeof(*s));
	uint8_t *m = malloc(FABRIC_MAX_PAYLOAD);
	size_t n = 0;
	int r = -1;
	/* saved: the copy's LAPIC is emptied, s must be loaded again if
	 * the vCPU stays. */
	bool saved = false;
	if (!s || !m) {
		snprintf(why, sizeof(why), "out of memory");
	} else if (!ipi_handover_out(v, s, why, sizeof(why))) {
		saved = true;
		n = vcpu__state_encode(s, m + JUMP_HDR,
				       FABRIC_MAX_PAYLOAD - JUMP_HDR);
		if (!n)
			snprintf(why, sizeof(why),
				 "its state does not fit in a message");
	}
	/* Its back-off as it will be once it has moved. */
	struct bal_vcpu bal = {.came_from = -1};
	if (cl->bal_on) {
		pthread_mutex_lock(&cl->ft_lock);
		bal = cl->bv[v->id];
		balancer__jumped(&cl->bal, &bal, to, true, cluster_ms());
		pthread_mutex_unlock(&cl->ft_lock);
	}
	if (n) {
		/* Gone from here before it is sent: a jump back (or round the
		 * hosts) can arrive before the answer, on another connection,
		 * and must not find it still here (vmm/jump.pml). */
		atomic_store(&v->here, false);
		trace__emit(TRACE_RUN_END, cl->self, v->id, 0, 0, 0, 0);
		pthread_mutex_lock(&cl->lock);
		j->seq = ++cl->jump_seq;
		j->answer = 0;
		j->to = to;
		pthread_mutex_unlock(&cl->lock);
		cl_put32(m, v->id);
		cl_put32(m + 4, j->seq);
		cl_put32(m + 8, reason);
		cl_put64(m + 12, t0);
		cl_put64(m + 20, cl->boot_tag);
		cl_put32(m + 28, bal.gap_ms);
		cl_put32(m + 32, bal.came_from);
		cl_put32(m + 36, cl->gen[v->id]);
		r = cluster_send(cl, to, CL_JUMP, m, JUMP_HDR + n);
		if (r)
			snprintf(why, sizeof(why), "host %u is unreachable: %s",
				 to, strerror(-r));
	}
	uint32_t gen = cl->gen[v->id];
	free(m);
	if (!saved) {
		free(s);
		s = NULL;
	}
	if (r) {
		pthread_mutex_lock(&cl->lock);
		j->to = -1;
		pthread_mutex_unlock(&cl->lock);
		return refused(v, to, why, s);
	}
	pthread_mutex_lock(&cl->lock);
	while (!j->answer && !atomic_load(&cl->stopping))
		pthread_cond_wait(&cl->cv, &cl->lock);
	int answer = j->answer;
	snprintf(why, sizeof(why), "%s", j->why);
	j->to = -1;
	pthread_mutex_unlock(&cl->lock);
	if (atomic_load(&cl->stopping)) {
		free(s);
		return false;
	}
	if (cl->bal_on) {
		pthread_mutex_lock(&cl->ft_lock);
		if (answer < 0)
			balancer__jumped(&cl->bal, &cl->bv[v->id], to, false,
					 cluster_ms());
		else
			cl->bv[v->id] = bal;
		pthread_mutex_unlock(&cl->ft_lock);
	}
	if (answer < 0)
		return refused(v, to, why, s);
	free(s);
	/* Where its interrupts go now, unless a later jump's report came
	 * first (the destination reports generation gen + 1). */
	pthread_mutex_lock(&cl->lock);
	if (cl->gen[v->id] <= gen) {
		cl->gen[v->id] = gen + 1;
		atomic_store(&cl->where[v->id], to);
	}
	pthread_mutex_unlock(&cl->lock);
	ipi_departed(cl, v->id, to);
	uint64_t ns = vm__now_ns() - t0;
	unsigned b = 0;
	while (b + 1 < VCPU_HIST && ns / 1000 >= 2ull << b)
		b++;
	v->st.jump_hist[b]++;
	v->st.jumps++;
	v->st.jump_ns += ns;
	atomic_store(&v->jump_to, -1);
	return arrive(v, false);
}

bool cluster__vcpu_start(struct vcpu *v)
{
	struct cluster *cl = v->vm->cl;
	bool ok;

	if (!atomic_load(&v->here))
		return arrive(v, true);
	/* The boot CPU runs at once, as do a restore's vCPUs (their state
	 * is loaded); every other AP waits for its mailbox wakeup. */
	if (cl->self == 0 && (v->id == 0 || v->vm->restore))
		return true;
	ok = cluster__ap_wait(v);
	if (ok)
		atomic_store(&v->live, true);
	return ok;
}

int cluster__jump(struct vm *vm, unsigned vcpu, unsigned host, int reason,
		  char *why, size_t len)
{
	struct cluster *cl = vm->cl;

	if (!cl) {
		snprintf(why, len, "the VM runs on one host");
		return -1;
	}
	if (atomic_load(&cl->stopping)) {
		snprintf(why, len, "the VM is stopping");
		return -1;
	}
	if (vcpu >= vm->cfg.nr_vcpus || host >= cl->n) {
		snprintf(why, len,
			 "no vCPU %u or no host %u (vCPUs 0-%u, hosts "
			 "0-%u)",
			 vcpu, host, vm->cfg.nr_vcpus - 1, cl->n - 1);
		return -1;
	}
	struct vcpu *v = &vm->vcpus[vcpu];
	if (!atomic_load(&v->here)) {
		unsigned at = atomic_load(&cl->where[vcpu]);
		uint8_t m[12];
		if (cl->self || at == cl->self) {
			snprintf(why, len, "vCPU %u is not on host %u", vcpu,
				 cl->self);
			return -1;
		}
		cl_put32(m, vcpu);
		cl_put32(m + 4, host);
		cl_put32(m + 8, reason);
		if (cluster_send(cl, at, CL_JUMP_REQ, m, sizeof(m))) {
			snprintf(why, len,
				 "host %u (where vCPU %u is) is "
				 "unreachable",
				 at, vcpu);
			return -1;
		}
		return 0;
	}
	/* Started: arrived here or woken through the mailbox (live), or
	 * host 0's boot CPU (or a restored vCPU) that has exited since. */
	if (!atomic_load(&v->live) &&
	    !__atomic_load_n(&v->st.exits, __ATOMIC_RELAXED)) {
		snprintf(why, len, "vCPU %u has not started", vcpu);
		return -1;
	}
	int none = -1;
	if (!atomic_compare_exchange_strong(
		&v->jump_to, &none, (int)(host | (unsigned)reason << 16))) {
		snprintf(why, len, "vCPU %u is already jumping", vcpu);
		return -1;
	}
	vcpu__kick(v);
	return 0;
}

int cluster__jump_wait(struct vm *vm, unsigned vcpu, unsigned host, int ms,
		       char *why, size_t len)
{
	struct cluster *cl = vm->cl;
	struct timespec t;
	uint32_t base = 0;
	int r = 0;

	if (cl && vcpu < vm->cfg.nr_vcpus &&
	    atomic_load(&cl->where[vcpu]) == host)
		return 0;
	if (cl && vcpu < vm->cfg.nr_vcpus) {
		pthread_mutex_lock(&cl->lock);
		base = cl->jump[vcpu].reports;
		pthread_mutex_unlock(&cl->lock);
	}
	if (cluster__jump(vm, vcpu, host, JUMP_CTL, why, len))
		return -1;
	cluster_deadline(&t, ms);
	struct jump_slot *j = &cl->jump[vcpu];
	pthread_mutex_lock(&cl->lock);
	while (j->reports == base && !atomic_load(&cl->stopping) && !r)
		r = pthread_cond_timedwait(&cl->cv, &cl->lock, &t);
	if (j->reports == base)
		snprintf(why, len, "%s",
			 atomic_load(&cl->stopping)
			     ? "the VM stopped"
			     : "no word of the jump in time (it may still "
			       "happen)");
	else if (!j->last_ok)
		snprintf(why, len, "%s", j->last_why);
	else if (atomic_load(&cl->where[vcpu]) != host)
		snprintf(why, len, "it moved on to host %u meanwhile",
			 atomic_load(&cl->where[vcpu]));
	r = j->reports == base || !j->last_ok ||
		    atomic_load(&cl->where[vcpu]) != host
		? -1
		: 0;
	pthread_mutex_unlock(&cl->lock);
	return r;
}

unsigned cluster__where(struct vm *vm, unsigned vcpu)
{
	if (!vm->cl || vcpu >= vm->cfg.nr_vcpus)
		return 0;
	return atomic_load(&vm->cl->where[vcpu]);
}

/* A jump arrives: hand it to the parked thread (or refuse it). */
static void on_jump(struct cluster *cl, unsigned from, const uint8_t *p,
		    size_t len)
{
	struct vm *vm = cl->vm;
	uint32_t id = cl_get32(p), seq = cl_get32(p + 4);
	const char *no = NULL;
	uint8_t ans[12 + WHY_MAX];
	size_t alen = 12;

	if (id >= vm->cfg.nr_vcpus) {
		cluster_stop(cl, VM_EXIT_CRASH, "host %u: bad CL_JUMP", from);
		return;
	}
	struct jump_slot *j = &cl->jump[id];
	uint8_t *copy = malloc(len - JUMP_HDR);
	pthread_mutex_lock(&cl->lock);
	if (atomic_load(&vm->vcpus[id].here))
		no = "it already runs here";
	else if (j->in)
		no = "another state for it is waiting here";
	else if (!copy)
		no = "out of memory";
	if (!no) {
		/* Before the copy's thread can see it: from now on what
		 * comes for the vCPU waits for its state to load. */
		ipi_arriving(cl, id);
		memcpy(copy, p + JUMP_HDR, len - JUMP_HDR);
		j->in = copy;
		j->in_len = len - JUMP_HDR;
		j->in_from = from;
		j->in_seq = seq;
		j->in_reason = cl_get32(p + 8);
		j->in_t0 = cl_get64(p + 12);
		j->in_tag = cl_get64(p + 20);
		j->in_gap = cl_get32(p + 28);
		j->in_came = cl_get32(p + 32);
		j->in_gen = cl_get32(p + 36);
		copy = NULL;
		pthread_cond_broadcast(&cl->cv);
	}
	pthread_mutex_unlock(&cl->lock);
	free(copy);
	if (!no) {
		vcpu__kick(&vm->vcpus[id]); /* out of its trap */
		return;
	}
	cl_put32(ans, id);
	cl_put32(ans + 4, seq);
	cl_put32(ans + 8, 0);
	put_why(ans + 12, no, &alen);
	cluster_send(cl, from, CL_JUMP_ANSWER, ans, alen);
}

static void on_answer(struct cluster *cl, unsigned from, const uint8_t *p,
		      size_t len)
{
	uint32_t id = cl_get32(p), seq = cl_get32(p + 4);
	struct jump_slot *j;

	if (id >= cl->vm->cfg.nr_vcpus)
		return;
	j = &cl->jump[id];
	pthread_mutex_lock(&cl->lock);
	if (j->seq == seq && j->to == (int)from && !j->answer) {
		j->answer = cl_get32(p + 8) ? 1 : -1;
		get_why(j->why, sizeof(j->why), p + 12, len - 12);
		pthread_cond_broadcast(&cl->cv);
	}
	pthread_mutex_unlock(&cl->lock);
}

void jump_frame(struct cluster *cl, unsigned from, uint16_t type,
		const uint8_t *p, size_t len)
{
	char why[WHY_MAX + 1];

	/* Stopping: nothing moves any more (the vCPUs' threads are gone). */
	if (atomic_load(&cl->stopping))
		return;
	if (!cl->vm || len < 12 || len > FABRIC_MAX_PAYLOAD ||
	    (type == CL_JUMP && len <= JUMP_HDR) ||
	    (type == CL_JUMP_REQ && (from != 0 || len != 12)) ||
	    (type == CL_WHERE &&
	     (len < WHERE_HDR || len > WHERE_HDR + WHY_MAX)) ||
	    (type == CL_JUMP_ANSWER && len > 12 + WHY_MAX)) {
		cluster_stop(cl, VM_EXIT_CRASH,
			     "host %u: bad jump message 0x%x", from, type);
		return;
	}
	uint32_t id = cl_get32(p), host = cl_get32(p + 4);
	switch (type) {
	case CL_JUMP:
		on_jump(cl, from, p, len);
		return;
	case CL_JUMP_ANSWER:
		on_answer(cl, from, p, len);
		return;
	case CL_JUMP_REQ:
		if (cl_get32(p + 8) >= JUMP_NR_REASONS) {
			cluster_stop(cl, VM_EXIT_CRASH,
				     "host %u: bad CL_JUMP_REQ", from);
			return;
		}
		if (cluster__jump(cl->vm, id, host, cl_get32(p + 8), why,
				  sizeof(why)) &&
		    id < cl->vm->cfg.nr_vcpus)
			report(cl, id, host, false, 0, why);
		return;
	case CL_WHERE:
		if (id >= cl->vm->cfg.nr_vcpus || host >= cl->n) {
			cluster_stop(cl, VM_EXIT_CRASH, "host %u: bad CL_WHERE",
				     from);
			return;
		}
		get_why(why, sizeof(why), p + WHERE_HDR, len - WHERE_HDR);
		note_report(cl, id, host, cl_get32(p + 8), cl_get32(p + 12),
			    why);
		return;
	}
}

void jump_port(struct io_dev *d, uint64_t off, uint8_t *data, unsigned size,
	       bool write)
{
	struct cluster *cl = d->priv;
	struct vcpu *v = vcpu__current();
	char why[WHY_MAX + 1];

	if (!write) {
		uint32_t val = cl->self | cl->n << 8 | 1u << 16;
		memcpy(data, &val, size > 4 ? 4 : size);
		return;
	}
	if (!v || off || size != 4)
		return;
	uint32_t to = cl_get32(data);
	if (to == cl->self)
		return;
	if (cluster__jump(cl->vm, v->id, to, JUMP_GUEST, why, sizeof(why)))
		fprintf(stderr, "slos: vcpu %d: guest's jump to host %u: %s\n",
			v->id, to, why);
}

/* For a stop message: the vCPUs that were on their way to `host`. */
size_t cluster_in_flight(struct cluster *cl, unsigned host, char *out,
			 size_t len)
{
	size_t n = 0;

	out[0] = 0;
	for (unsigned i = 0; cl->vm && i < cl->vm->cfg.nr_vcpus; i++)
		if (cl->jump[i].to == (int)host && !cl->jump[i].answer &&
		    n + 40 < len)
			n += snprintf(out + n, len - n, "%svCPU %u",
				      n ? ", " : "", i);
	return n;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

void cluster_jump_stats(struct cluster *cl, FILE *f)
{
	static uint32_t us[sizeof(cl->lat_us) / sizeof(cl->lat_us[0])];
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	char lat[128] = "";

	/* A copy: arrivals go on adding while `slos stat` asks. */
	pthread_mutex_lock(&mu);
	pthread_mutex_lock(&cl->lock);
	unsigned n = cl->nr_lat;
	uint64_t in = cl->jumps_in;
	memcpy(us, cl->lat_us, n * sizeof(us[0]));
	pthread_mutex_unlock(&cl->lock);
	if (in) {
		qsort(us, n, sizeof(us[0]), cmp_u32);
		if (n)
			snprintf(lat, sizeof(lat),
				 "; pause to running n=%u p50_us=%u p99_us=%u "
				 "max_us=%u",
				 n, us[(n - 1) / 2], us[(n * 99 - 1) / 100],
				 us[n - 1]);
		/* One write: the hosts share a terminal. */
		fprintf(f, "slos: host %u jumps in %llu%s\n", cl->self,
			(unsigned long long)in, lat);
	}
	pthread_mutex_unlock(&mu);
}
