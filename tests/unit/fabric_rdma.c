// SPDX-License-Identifier: MIT
/*
 * The RDMA transport's device-independent parts: the queue-pair parameter
 * exchange encoding, credits (including a simulation of two peers that
 * must never overrun each other's buffers nor wait for each other for
 * ever), opening what arrives in receive buffers and staging slots, and
 * the clear refusal on a host with no RDMA device (these machines).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <infiniband/verbs.h>
#include <stdlib.h>
#include <string.h>

#include "fabric/transport.h"

#define VM  0x5eedULL
#define T_P (FABRIC_MSG_DSM_FIRST + 1)

static const uint8_t k_i2r[FABRIC_KEY_SIZE] = "session key, initiator->respond";
static const uint8_t k_r2i[FABRIC_KEY_SIZE] = "session key, responder->initiat";
static const uint8_t k_x[FABRIC_KEY_SIZE] = "some other connection's key....";

static bool have_device(void)
{
	int n = 0;
	struct ibv_device **l = ibv_get_device_list(&n);

	if (l)
		ibv_free_device_list(l);
	return l && n > 0;
}

/* ---- no device ---- */

Test(fabric_rdma, no_device)
{
	struct fabric_opts o = { .tp = fabric__transport("rdma") };
	struct fabric_listener *l;
	struct fabric_conn *c;
	char why[FABRIC_WHY_SIZE];
	uint8_t key[FABRIC_KEY_SIZE] = { 0 };

	if (have_device())
		cr_skip_test("this host has an RDMA device");
	cr_assert_str_eq(fabric__transport_name(o.tp), "rdma");
	cr_assert_eq(fabric__probe(o.tp, why, sizeof(why)), -ENODEV);
	cr_log_info("fabric rdma: %s", why);
	cr_assert(strstr(why, "--fabric rdma: no RDMA device"), "%s", why);
	cr_assert(strstr(why, "use --fabric tcp"), "%s", why);

	/* at start, before anything else is tried */
	why[0] = 0;
	cr_assert_eq(fabric__listen("127.0.0.1:0", &o, &l, why, sizeof(why)),
		     -ENODEV);
	cr_assert(strstr(why, "no RDMA device"), "%s", why);
	why[0] = 0;
	cr_assert_eq(fabric__connect("127.0.0.1:1", VM, key, &o, &c, why,
				     sizeof(why)),
		     -ENODEV);
	cr_assert(strstr(why, "no RDMA device"), "%s", why);
	/* TCP is always there */
	cr_assert_eq(fabric__probe(fabric__transport("tcp"), why, sizeof(why)),
		     0);
}

/* ---- parameters ---- */

static struct fabric_rdma_params sample(void)
{
	struct fabric_rdma_params p = {
		.qpn = 0x123456,
		.psn = 0xabcdef,
		.lid = 0x1234,
		.mtu = 5,
		.gid_index = 3,
		.recv_slots = 64,
		.recv_size = 2048,
		.stage_slots = 32,
		.stage_size = 8256,
		.stage_rkey = 0xdeadbeef,
		.stage_addr = 0x7f0012345000ULL,
	};

	for (int i = 0; i < 16; i++)
		p.gid[i] = 0xf0 + i;
	return p;
}

static int decode(const struct fabric_rdma_params *p)
{
	uint8_t b[FABRIC_RDMA_PARAMS_SIZE];
	struct fabric_rdma_params q;

	fabric__rdma_params_put(p, b);
	return fabric__rdma_params_get(&q, b, sizeof(b));
}

Test(fabric_rdma, params_round_trip)
{
	struct fabric_rdma_params p = sample(), q;
	uint8_t b[FABRIC_RDMA_PARAMS_SIZE], *x;

	fabric__rdma_params_put(&p, b);
	/* an exact-size copy: a read past it is ASan's to see */
	x = malloc(sizeof(b));
	memcpy(x, b, sizeof(b));
	cr_assert_eq(fabric__rdma_params_get(&q, x, sizeof(b)), 0);
	free(x);
	cr_assert_eq(q.qpn, p.qpn);
	cr_assert_eq(q.psn, p.psn);
	cr_assert_eq(q.lid, p.lid);
	cr_assert_eq(q.mtu, p.mtu);
	cr_assert_eq(q.gid_index, p.gid_index);
	cr_assert_arr_eq(q.gid, p.gid, 16);
	cr_assert_eq(q.recv_slots, p.recv_slots);
	cr_assert_eq(q.recv_size, p.recv_size);
	cr_assert_eq(q.stage_slots, p.stage_slots);
	cr_assert_eq(q.stage_size, p.stage_size);
	cr_assert_eq(q.stage_rkey, p.stage_rkey);
	cr_assert_eq(q.stage_addr, p.stage_addr);
	/* little-endian, whatever the host */
	cr_assert_eq(b[0], 0x56);
	cr_assert_eq(b[2], 0x12);
}

Test(fabric_rdma, params_refused)
{
	struct fabric_rdma_params p = sample(), q;
	uint8_t b[FABRIC_RDMA_PARAMS_SIZE + 1];

	fabric__rdma_params_put(&p, b);
	cr_assert_eq(fabric__rdma_params_get(&q, b, sizeof(b) - 2),
		     FABRIC_E_HEADER);
	cr_assert_eq(fabric__rdma_params_get(&q, b, sizeof(b)),
		     FABRIC_E_HEADER);
	b[56]++; /* another layout */
	cr_assert_eq(fabric__rdma_params_get(&q, b, FABRIC_RDMA_PARAMS_SIZE),
		     FABRIC_E_HEADER);
	b[56]--;
	b[63] = 1; /* reserved */
	cr_assert_eq(fabric__rdma_params_get(&q, b, FABRIC_RDMA_PARAMS_SIZE),
		     FABRIC_E_HEADER);

#define BAD(field, value)                                                     \
	do {                                                                  \
		struct fabric_rdma_params r = sample();                       \
		r.field = value;                                              \
		cr_assert_eq(decode(&r), FABRIC_E_HEADER, #field " = " #value \
			     " accepted");                                    \
	} while (0)
	BAD(qpn, 1u << 24);
	BAD(psn, 1u << 24);
	BAD(mtu, 0);
	BAD(mtu, 6);
	BAD(recv_slots, 3);
	BAD(recv_slots, FABRIC_RDMA_MAX_SLOTS + 1);
	BAD(recv_size, FABRIC_HDR_SIZE + FABRIC_TAG_SIZE - 1);
	BAD(recv_size, FABRIC_MAX_FRAME + 1);
	BAD(stage_slots, 0);
	BAD(stage_slots, FABRIC_RDMA_MAX_SLOTS + 1);
	BAD(stage_size, FABRIC_MAX_FRAME - 1);
	BAD(stage_size, FABRIC_RDMA_MAX_STAGE + 1);
	BAD(stage_addr, UINT64_MAX - 1000);
#undef BAD
	/* the edges that are fine */
	p.recv_slots = 4;
	p.recv_size = FABRIC_HDR_SIZE + FABRIC_TAG_SIZE;
	p.stage_slots = 1;
	p.stage_size = FABRIC_MAX_FRAME;
	p.mtu = 1;
	cr_assert_eq(decode(&p), 0);

	/* random bytes: refused or decoded, never more */
	srand(1);
	for (int i = 0; i < 20000; i++) {
		uint8_t *x = malloc(FABRIC_RDMA_PARAMS_SIZE);

		for (int k = 0; k < FABRIC_RDMA_PARAMS_SIZE; k++)
			x[k] = rand();
		if (i & 1) { /* a plausible layout, random values */
			memcpy(x + 56, "\1\0\0\0\0\0\0\0", 8);
		}
		int r = fabric__rdma_params_get(&q, x, FABRIC_RDMA_PARAMS_SIZE);
		cr_assert(r == 0 || r == FABRIC_E_HEADER);
		if (!r) {
			uint8_t y[FABRIC_RDMA_PARAMS_SIZE];

			fabric__rdma_params_put(&q, y);
			cr_assert_arr_eq(x, y, sizeof(y));
		}
		free(x);
	}
}

/* ---- credits ---- */

static void flows(struct fabric_rdma_flow *f, uint32_t recv, uint32_t stage,
		  uint32_t peer_recv, uint32_t peer_stage)
{
	struct fabric_rdma_params l = sample(), p = sample();

	l.recv_slots = recv;
	l.stage_slots = stage;
	p.recv_slots = peer_recv;
	p.stage_slots = peer_stage;
	fabric__rdma_flow_init(f, &l, &p);
}

Test(fabric_rdma, credits)
{
	struct fabric_rdma_flow f;
	int sent = 0;

	flows(&f, 8, 4, 6, 3);
	/* frames stop one short: the last credit is for handing back */
	while (fabric__rdma_flow_can(&f, false, false)) {
		fabric__rdma_flow_take(&f, false, false);
		sent++;
	}
	cr_assert_eq(sent, 5);
	cr_assert(fabric__rdma_flow_can(&f, false, true));
	cr_assert_eq(fabric__rdma_flow_next(&f, true, false), FABRIC_RDMA_NONE,
		     "nothing owed: no reason to spend the last credit");

	/* the peer hands back 5 receives */
	cr_assert_eq(fabric__rdma_flow_credit(&f, 5), 0);
	cr_assert_eq(f.recv_credits, 6);
	/* more than it ever had, or reserved bits: refused, nothing taken */
	cr_assert_eq(fabric__rdma_flow_credit(&f, 1), FABRIC_E_HEADER);
	cr_assert_eq(fabric__rdma_flow_credit(&f, 1u << 15), FABRIC_E_HEADER);
	cr_assert_eq(fabric__rdma_flow_credit(&f, 1u << 30), FABRIC_E_HEADER);
	cr_assert_eq(fabric__rdma_flow_credit(&f, 1u << 31), FABRIC_E_HEADER);
	cr_assert_eq(f.recv_credits, 6);
	cr_assert_eq(f.stage_credits, 3);

	/* staged frames take a slot each, in order, round the ring */
	uint32_t slots[6];
	for (int i = 0; i < 3; i++) {
		cr_assert(fabric__rdma_flow_can(&f, true, false));
		slots[i] = fabric__rdma_flow_take(&f, true, false);
	}
	cr_assert(!fabric__rdma_flow_can(&f, true, false), "out of slots");
	cr_assert(fabric__rdma_flow_can(&f, false, false), "but not receives");
	cr_assert_eq(fabric__rdma_flow_credit(&f, 3 | 2u << 15), 0);
	for (int i = 3; i < 5; i++)
		slots[i] = fabric__rdma_flow_take(&f, true, false);
	cr_assert_eq(slots[0], 0);
	cr_assert_eq(slots[1], 1);
	cr_assert_eq(slots[2], 2);
	cr_assert_eq(slots[3], 0);
	cr_assert_eq(slots[4], 1);

	/* receiving: owed, handed in the next immediate, once */
	flows(&f, 8, 8, 8, 4);
	fabric__rdma_flow_received(&f, false);
	cr_assert_eq(fabric__rdma_flow_rx_slot(&f), 0);
	fabric__rdma_flow_received(&f, true);
	cr_assert_eq(fabric__rdma_flow_rx_slot(&f), 1);
	fabric__rdma_flow_received(&f, true);
	cr_assert(!fabric__rdma_flow_owes(&f), "3 of 8 owed");
	fabric__rdma_flow_received(&f, false);
	cr_assert(fabric__rdma_flow_owes(&f), "half the window");
	cr_assert_eq(fabric__rdma_flow_next(&f, false, false),
		     FABRIC_RDMA_CREDITS);
	cr_assert_eq(fabric__rdma_flow_imm(&f), 4 | 2u << 15);
	cr_assert_eq(fabric__rdma_flow_imm(&f), 0);
	cr_assert(!fabric__rdma_flow_owes(&f));
	/* slots alone can make it owed too */
	flows(&f, 64, 2, 8, 4);
	fabric__rdma_flow_received(&f, true);
	cr_assert(fabric__rdma_flow_owes(&f));
	/* and the slot ring wraps */
	fabric__rdma_flow_received(&f, true);
	cr_assert_eq(fabric__rdma_flow_rx_slot(&f), 0);
}

/*
 * Two peers, both with a long backlog of frames (some staged), messages
 * delivered and processed in random orders with any delay: a message
 * never arrives at a peer without a posted receive buffer (or, staged,
 * into a slot still holding an unread frame), every frame arrives, and
 * once they have, the peers fall quiet instead of trading credit-only
 * messages for ever.
 */
struct sim_msg {
	bool staged, credits;
	uint32_t imm, slot;
};

struct sim_side {
	struct fabric_rdma_flow f;
	int backlog, sent, got, msgs;
	int posted;		/* our receive buffers posted */
	bool slot_full[16];	/* our slots holding an unread frame */
	struct sim_msg out[4096]; /* in flight to the peer, FIFO */
	int out_h, out_t;
	struct sim_msg cq[4096]; /* arrived here, not yet processed */
	int cq_h, cq_t;
};

static bool staged_nth(int n)
{
	return n % 3 == 1;
}

static void sim_pump(struct sim_side *a)
{
	for (;;) {
		bool staged = staged_nth(a->sent);
		int what =
			fabric__rdma_flow_next(&a->f, a->backlog > 0, staged);
		struct sim_msg m = { 0 };

		if (what == FABRIC_RDMA_NONE)
			return;
		m.credits = what == FABRIC_RDMA_CREDITS;
		m.staged = !m.credits && staged;
		m.slot = fabric__rdma_flow_take(&a->f, m.staged, m.credits);
		m.imm = fabric__rdma_flow_imm(&a->f);
		if (!m.credits) {
			a->backlog--;
			a->sent++;
		}
		cr_assert_lt(a->out_t - a->out_h, 4096);
		a->out[a->out_t++ % 4096] = m;
		a->msgs++;
	}
}

/* The wire: the peer's adapter takes the message into a posted buffer. */
static void sim_arrive(struct sim_side *a, struct sim_side *b)
{
	struct sim_msg m = a->out[a->out_h++ % 4096];

	cr_assert_gt(b->posted, 0, "a message arrived with no buffer posted");
	b->posted--;
	if (m.staged) {
		cr_assert_lt(m.slot, 16);
		cr_assert(!b->slot_full[m.slot], "a staging slot overwritten");
		b->slot_full[m.slot] = true;
	}
	b->cq[b->cq_t++ % 4096] = m;
}

/* The peer's I/O thread takes the completion, as rdma.c does. */
static void sim_process(struct sim_side *b)
{
	struct sim_msg m = b->cq[b->cq_h++ % 4096];

	cr_assert_eq(fabric__rdma_flow_credit(&b->f, m.imm), 0);
	if (m.staged) {
		cr_assert_eq(m.slot, fabric__rdma_flow_rx_slot(&b->f));
		b->slot_full[m.slot] = false;
	}
	if (!m.credits)
		b->got++;
	b->posted++;
	fabric__rdma_flow_received(&b->f, m.staged);
	sim_pump(b);
}

static long sim_steps;

static void simulate(unsigned seed, uint32_t recv_a, uint32_t stage_a,
		     uint32_t recv_b, uint32_t stage_b, int frames_a,
		     int frames_b)
{
	static struct sim_side a, b;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	flows(&a.f, recv_a, stage_a, recv_b, stage_b);
	flows(&b.f, recv_b, stage_b, recv_a, stage_a);
	a.posted = recv_a;
	b.posted = recv_b;
	a.backlog = frames_a;
	b.backlog = frames_b;
	srand(seed);
	sim_pump(&a);
	sim_pump(&b);
	for (long step = 0;; step++) {
		int choice[4], n = 0;

		cr_assert_lt(step, 10000000);
		if (a.out_h != a.out_t)
			choice[n++] = 0;
		if (b.out_h != b.out_t)
			choice[n++] = 1;
		if (a.cq_h != a.cq_t)
			choice[n++] = 2;
		if (b.cq_h != b.cq_t)
			choice[n++] = 3;
		if (!n)
			break; /* quiet */
		switch (choice[rand() % n]) {
		case 0:
			sim_arrive(&a, &b);
			break;
		case 1:
			sim_arrive(&b, &a);
			break;
		case 2:
			sim_process(&a);
			break;
		case 3:
			sim_process(&b);
			break;
		}
	}
	sim_steps += a.msgs + b.msgs;
	cr_assert_eq(b.got, frames_a, "seed %u: %d of %d frames a->b (stuck)",
		     seed, b.got, frames_a);
	cr_assert_eq(a.got, frames_b, "seed %u: %d of %d frames b->a (stuck)",
		     seed, a.got, frames_b);
	/* credit-only messages: at most about one per half window of
	 * messages received, and they die out */
	int extra = a.msgs + b.msgs - frames_a - frames_b;
	cr_assert_leq(extra, frames_a + frames_b + 4,
		      "seed %u: %d credit-only messages", seed, extra);
}

Test(fabric_rdma, credits_simulated)
{
	static const uint32_t w[][4] = {
		{ 4, 1, 4, 1 },	  { 4, 2, 8, 4 },   { 5, 3, 4, 1 },
		{ 8, 4, 8, 4 },	  { 16, 8, 4, 2 },  { 64, 16, 64, 16 },
		{ 7, 5, 13, 3 },
	};

	for (unsigned seed = 1; seed <= 60; seed++) {
		const uint32_t *x = w[seed % (sizeof(w) / sizeof(*w))];

		simulate(seed, x[0], x[1], x[2], x[3], 400, 300 + seed);
		simulate(seed + 1000, x[0], x[1], x[2], x[3], 500, 0);
		simulate(seed + 2000, x[0], x[1], x[2], x[3], 1, 1);
	}
	cr_log_info("fabric rdma: %ld messages simulated", sim_steps);
}

/* ---- opening what arrives ---- */

static void pair(struct fabric_session *tx, struct fabric_session *rx)
{
	fabric__session_init(tx, FABRIC_INITIATOR, VM, FABRIC_VERSION, k_i2r,
			     k_r2i);
	fabric__session_init(rx, FABRIC_RESPONDER, VM, FABRIC_VERSION, k_i2r,
			     k_r2i);
}

static size_t seal(struct fabric_session *s, size_t len, uint8_t *out)
{
	static uint8_t p[FABRIC_MAX_PAYLOAD];
	size_t n;

	for (size_t i = 0; i < len; i++)
		p[i] = i * 7 + len;
	cr_assert_eq(fabric__seal(s, T_P, p, len, out, FABRIC_MAX_FRAME, &n),
		     0);
	return n;
}

/* A receive buffer: an exact-size copy. */
static int msg_open(struct fabric_session *s, const uint8_t *f, size_t len,
		    struct fabric_msg *m)
{
	static uint8_t p[FABRIC_MAX_PAYLOAD];
	uint8_t *b = malloc(len ? len : 1);
	int r;

	memcpy(b, f, len);
	r = fabric__rdma_msg_open(s, b, len, m, p, sizeof(p));
	free(b);
	return r;
}

Test(fabric_rdma, sent_messages)
{
	struct fabric_session tx, rx, other;
	struct fabric_msg m;
	uint8_t f[2 * FABRIC_MAX_FRAME];
	size_t n, n2;

	pair(&tx, &rx);
	n = seal(&tx, 100, f);
	cr_assert_eq(msg_open(&rx, f, n, &m), 0);
	cr_assert_eq(m.len, 100);
	cr_assert_eq(m.type, T_P);
	/* the same again: a replay */
	cr_assert_eq(msg_open(&rx, f, n, &m), FABRIC_E_SEQ);
	/* one message, one frame: not a part, not two */
	n = seal(&tx, 100, f);
	cr_assert_eq(msg_open(&rx, f, n - 1, &m), FABRIC_E_HEADER);
	cr_assert_eq(msg_open(&rx, f, 10, &m), FABRIC_E_HEADER);
	n2 = seal(&tx, 0, f + n);
	cr_assert_eq(msg_open(&rx, f, n + n2, &m), FABRIC_E_HEADER);
	/* the session moved past the first one there; a fresh pair */
	pair(&tx, &rx);
	n = seal(&tx, 0, f);
	f[n - 1] ^= 1;
	cr_assert_eq(msg_open(&rx, f, n, &m), FABRIC_E_AUTH);
	/* another connection's keys, or VM */
	fabric__session_init(&other, FABRIC_INITIATOR, VM, FABRIC_VERSION, k_x,
			     k_x);
	n = seal(&other, 64, f);
	cr_assert_eq(msg_open(&rx, f, n, &m), FABRIC_E_AUTH);
	fabric__session_init(&other, FABRIC_INITIATOR, VM + 1, FABRIC_VERSION,
			     k_i2r, k_r2i);
	n = seal(&other, 64, f);
	cr_assert_eq(msg_open(&rx, f, n, &m), FABRIC_E_VM);
	/* none of that moved the session on: the next frame is still 0 */
	cr_assert_eq(rx.rx_seq, 0);
	tx.tx_seq = 0;
	n = seal(&tx, 64, f);
	cr_assert_eq(msg_open(&rx, f, n, &m), 0);
	cr_assert_eq(m.seq, 0);
}

/* A staging slot the peer writes with RDMA WRITE: exact size, so ASan
 * catches any read past it, even of the slot. */
struct slot {
	uint8_t *mem;
	size_t size;
	uint8_t *scratch;
};

static struct slot slot_new(size_t size)
{
	struct slot s = { malloc(size), size, malloc(size) };

	memset(s.mem, 0xee, size);
	return s;
}

static void slot_free(struct slot *s)
{
	free(s->mem);
	free(s->scratch);
}

static int stage_open(struct fabric_session *rx, struct slot *sl,
		      size_t byte_len, struct fabric_msg *m, uint8_t *p)
{
	return fabric__rdma_stage_open(rx, sl->mem, sl->size, byte_len,
				       sl->scratch, m, p, FABRIC_MAX_PAYLOAD);
}

Test(fabric_rdma, staged_frames)
{
	struct fabric_session tx, rx, other;
	struct slot sl = slot_new(FABRIC_MAX_FRAME);
	static uint8_t p[FABRIC_MAX_PAYLOAD], f[FABRIC_MAX_FRAME];
	struct fabric_msg m;
	size_t n;

	pair(&tx, &rx);
	/* a page, written into the slot, opened from a copy */
	n = seal(&tx, 4096, sl.mem);
	cr_assert_eq(stage_open(&rx, &sl, n, &m, p), 0);
	cr_assert_eq(m.len, 4096);
	for (size_t i = 0; i < 4096; i++)
		cr_assert_eq(p[i], (uint8_t)(i * 7 + 4096));
	/* the largest frame fills the slot exactly */
	n = seal(&tx, FABRIC_MAX_PAYLOAD, sl.mem);
	cr_assert_eq(n, sl.size);
	cr_assert_eq(stage_open(&rx, &sl, n, &m, p), 0);

	/* what the slot still holds when the next completion comes is an
	 * old frame: a replay */
	cr_assert_eq(stage_open(&rx, &sl, n, &m, p), FABRIC_E_SEQ);
	/* a completion claiming more than the slot holds */
	n = seal(&tx, 100, sl.mem);
	cr_assert_eq(stage_open(&rx, &sl, sl.size + 1, &m, p),
		     FABRIC_E_TOO_LONG);
	/* a length that is not the frame's: short, or with bytes after */
	cr_assert_eq(stage_open(&rx, &sl, n - 1, &m, p), FABRIC_E_HEADER);
	cr_assert_eq(stage_open(&rx, &sl, n + 1, &m, p), FABRIC_E_HEADER);
	cr_assert_eq(stage_open(&rx, &sl, 0, &m, p), FABRIC_E_HEADER);
	/* the bytes after the frame are the slot's old contents and are
	 * not read: only the reported length is copied out */
	memset(sl.mem + n, 0x11, sl.size - n);
	pair(&tx, &rx);
	n = seal(&tx, 100, sl.mem);
	cr_assert_eq(stage_open(&rx, &sl, n, &m, p), 0);

	/* tampered, or under another connection's (another VM's) key */
	n = seal(&tx, 4096, sl.mem);
	sl.mem[FABRIC_HDR_SIZE + 2000] ^= 0x80;
	cr_assert_eq(stage_open(&rx, &sl, n, &m, p), FABRIC_E_AUTH);
	fabric__session_init(&other, FABRIC_INITIATOR, VM, FABRIC_VERSION, k_x,
			     k_r2i);
	other.tx_seq = rx.rx_seq;
	n = seal(&other, 4096, sl.mem);
	cr_assert_eq(stage_open(&rx, &sl, n, &m, p), FABRIC_E_AUTH);
	fabric__session_init(&other, FABRIC_INITIATOR, VM ^ 1, FABRIC_VERSION,
			     k_i2r, k_r2i);
	other.tx_seq = rx.rx_seq;
	n = seal(&other, 4096, sl.mem);
	cr_assert_eq(stage_open(&rx, &sl, n, &m, p), FABRIC_E_VM);

	/* refused frames leave nothing of theirs in the payload buffer */
	pair(&tx, &rx);
	memset(p, 0, sizeof(p));
	n = seal(&tx, 64, f);
	f[n - 3] ^= 4;
	memcpy(sl.mem, f, n);
	cr_assert_eq(stage_open(&rx, &sl, n, &m, p), FABRIC_E_AUTH);
	for (size_t i = 0; i < 64; i++)
		cr_assert_eq(p[i], 0);
	slot_free(&sl);
}
