// SPDX-License-Identifier: MIT
/*
 * The RDMA transport: sealed frames over an RC queue pair (libibverbs).
 *
 * The connection starts as a TCP one (connect, listen, the handshake: all
 * of conn.c); the two sides then swap their queue pairs' parameters as
 * sealed frames over that socket, so nothing about the QP is taken from
 * an unauthenticated peer, bring the QP up, and from then on every frame
 * crosses the QP. The socket stays open only to notice the peer's process
 * going away. One protection domain per connection: a peer's rkey reaches
 * that connection's staging buffers and nothing else.
 *
 * Frames up to the peer's receive size go as two-sided SENDs into its
 * posted receive buffers, which only the adapter writes and only once.
 * Larger ones (pages) go as RDMA WRITE WITH IMMEDIATE into one of the
 * peer's staging slots: the peer could overwrite a slot at any time, so
 * the receiver copies it out once and opens the copy with the codec
 * before anything of it is used. Every message is signalled and one per
 * frame; credits (transport.h) keep the sender within the posted buffers.
 *
 * The device-independent parts (parameter encoding, credits, opening what
 * arrived) come first and are unit-tested; the verbs after them need a
 * device, which the development machines lack.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <infiniband/verbs.h>
#include <poll.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fabric/transport.h"

#define PARAMS_LAYOUT 1
#define RECV_SLOTS    64
#define RECV_SIZE     2048
#define STAGE_SLOTS   32
/* any frame fits a slot, rounded to a cache line */
#define STAGE_SIZE  ((FABRIC_MAX_FRAME + 63) & ~63u)
#define SEND_BUFS   64
#define BACKLOG_MAX (256 * 1024)
#define BACKLOG_HARD (64u << 20)
#define FLUSH_MS    200
#define IMM_MASK    0x7fffu

/* ---- parameters ---- */

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = v >> (8 * i);
}

static uint32_t get32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

void fabric__rdma_params_put(const struct fabric_rdma_params *p,
			     uint8_t out[FABRIC_RDMA_PARAMS_SIZE])
{
	memset(out, 0, FABRIC_RDMA_PARAMS_SIZE);
	put32(out + 0, p->qpn);
	put32(out + 4, p->psn);
	out[8] = p->lid;
	out[9] = p->lid >> 8;
	out[10] = p->mtu;
	out[11] = p->gid_index;
	memcpy(out + 12, p->gid, 16);
	put32(out + 28, p->recv_slots);
	put32(out + 32, p->recv_size);
	put32(out + 36, p->stage_slots);
	put32(out + 40, p->stage_size);
	put32(out + 44, p->stage_rkey);
	put32(out + 48, p->stage_addr);
	put32(out + 52, p->stage_addr >> 32);
	put32(out + 56, PARAMS_LAYOUT);
	/* 60..63 reserved, 0 */
}

int fabric__rdma_params_get(struct fabric_rdma_params *p, const uint8_t *in,
			    size_t len)
{
	if (len != FABRIC_RDMA_PARAMS_SIZE || get32(in + 56) != PARAMS_LAYOUT ||
	    get32(in + 60))
		return FABRIC_E_HEADER;
	p->qpn = get32(in + 0);
	p->psn = get32(in + 4);
	p->lid = in[8] | in[9] << 8;
	p->mtu = in[10];
	p->gid_index = in[11];
	memcpy(p->gid, in + 12, 16);
	p->recv_slots = get32(in + 28);
	p->recv_size = get32(in + 32);
	p->stage_slots = get32(in + 36);
	p->stage_size = get32(in + 40);
	p->stage_rkey = get32(in + 44);
	p->stage_addr = get32(in + 48) | (uint64_t)get32(in + 52) << 32;

	/* Four receives at least: one is kept for credit-only messages,
	 * and one owed must stay below half a window (no echo). */
	if (p->qpn >> 24 || p->psn >> 24 || p->mtu < 1 || p->mtu > 5 ||
	    p->recv_slots < 4 || p->recv_slots > FABRIC_RDMA_MAX_SLOTS ||
	    p->recv_size < fabric__frame_size(0) ||
	    p->recv_size > FABRIC_MAX_FRAME || !p->stage_slots ||
	    p->stage_slots > FABRIC_RDMA_MAX_SLOTS ||
	    p->stage_size < FABRIC_MAX_FRAME ||
	    p->stage_size > FABRIC_RDMA_MAX_STAGE ||
	    p->stage_addr > UINT64_MAX - (uint64_t)p->stage_slots *
						 p->stage_size)
		return FABRIC_E_HEADER;
	return FABRIC_OK;
}

/* ---- credits ---- */

void fabric__rdma_flow_init(struct fabric_rdma_flow *f,
			    const struct fabric_rdma_params *local,
			    const struct fabric_rdma_params *peer)
{
	memset(f, 0, sizeof(*f));
	f->recv_credits = f->peer_recv_slots = peer->recv_slots;
	f->stage_credits = f->peer_stage_slots = peer->stage_slots;
	f->rx_recv_slots = local->recv_slots;
	f->rx_stage_slots = local->stage_slots;
}

bool fabric__rdma_flow_can(const struct fabric_rdma_flow *f, bool staged,
			   bool credit_only)
{
	if (credit_only)
		return f->recv_credits >= 1;
	return f->recv_credits >= 2 && (!staged || f->stage_credits >= 1);
}

uint32_t fabric__rdma_flow_take(struct fabric_rdma_flow *f, bool staged,
				bool credit_only)
{
	uint32_t slot = 0;

	f->recv_credits--;
	if (staged && !credit_only) {
		f->stage_credits--;
		slot = f->next_stage;
		f->next_stage = (f->next_stage + 1) % f->peer_stage_slots;
	}
	return slot;
}

uint32_t fabric__rdma_flow_imm(struct fabric_rdma_flow *f)
{
	/* windows are at most FABRIC_RDMA_MAX_SLOTS < IMM_MASK: all fits */
	uint32_t imm = f->owed_recv | f->owed_stage << 15;

	f->owed_recv = f->owed_stage = 0;
	return imm;
}

int fabric__rdma_flow_credit(struct fabric_rdma_flow *f, uint32_t imm)
{
	uint32_t r = imm & IMM_MASK, s = imm >> 15 & IMM_MASK;

	if (imm >> 30 || f->recv_credits + r > f->peer_recv_slots ||
	    f->stage_credits + s > f->peer_stage_slots)
		return FABRIC_E_HEADER;
	f->recv_credits += r;
	f->stage_credits += s;
	return FABRIC_OK;
}

uint32_t fabric__rdma_flow_rx_slot(const struct fabric_rdma_flow *f)
{
	return f->rx_next;
}

void fabric__rdma_flow_received(struct fabric_rdma_flow *f, bool staged)
{
	f->owed_recv++;
	if (staged) {
		f->rx_next = (f->rx_next + 1) % f->rx_stage_slots;
		f->owed_stage++;
	}
}

bool fabric__rdma_flow_owes(const struct fabric_rdma_flow *f)
{
	return f->owed_recv >= (f->rx_recv_slots + 1) / 2 ||
	       (f->owed_stage && f->owed_stage >= (f->rx_stage_slots + 1) / 2);
}

int fabric__rdma_flow_next(const struct fabric_rdma_flow *f, bool has_frame,
			   bool staged)
{
	if (has_frame && fabric__rdma_flow_can(f, staged, false))
		return FABRIC_RDMA_FRAME;
	if (fabric__rdma_flow_owes(f) && fabric__rdma_flow_can(f, false, true))
		return FABRIC_RDMA_CREDITS;
	return FABRIC_RDMA_NONE;
}

/* ---- opening what arrived ---- */

int fabric__rdma_msg_open(struct fabric_session *s, const uint8_t *buf,
			  size_t byte_len, struct fabric_msg *m, void *payload,
			  size_t cap)
{
	size_t used;
	int r = fabric__open(s, buf, byte_len, &used, m, payload, cap);

	/* One message, one frame: a short one will never be completed, and
	 * bytes after the frame are not the protocol's. The session is
	 * unchanged on refusal; for trailing bytes it has moved on, which
	 * does not matter as the connection closes. */
	if (r == FABRIC_E_INCOMPLETE)
		return FABRIC_E_HEADER;
	if (!r && used != byte_len)
		return FABRIC_E_HEADER;
	return r;
}

int fabric__rdma_stage_open(struct fabric_session *s,
			    const volatile uint8_t *slot, size_t slot_size,
			    size_t byte_len, uint8_t *scratch,
			    struct fabric_msg *m, void *payload, size_t cap)
{
	if (byte_len > slot_size)
		return FABRIC_E_TOO_LONG;
	/* volatile: one read of each byte, whatever the compiler would
	 * like to re-read later */
	for (size_t i = 0; i < byte_len; i++)
		scratch[i] = slot[i];
	return fabric__rdma_msg_open(s, scratch, byte_len, m, payload, cap);
}

/* ---- probe ---- */

static int rdma_probe(char *why, size_t len)
{
	int n = 0;
	struct ibv_device **l = ibv_get_device_list(&n);

	if (!l) {
		int e = errno;

		snprintf(why, len,
			 "--fabric rdma: no RDMA device (ibv_get_device_list: "
			 "%s: no RDMA support in this kernel); use --fabric "
			 "tcp",
			 strerror(e));
		return -ENODEV;
	}
	ibv_free_device_list(l);
	if (!n) {
		snprintf(why, len,
			 "--fabric rdma: no RDMA device (ibv_get_device_list "
			 "found none); use --fabric tcp");
		return -ENODEV;
	}
	return 0;
}

/* ---- verbs ---- */

struct rdma {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_comp_channel *ch;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *recv_mr, *stage_mr, *send_mr;
	uint8_t *recv_buf, *stage_buf, *send_buf, *scratch;
	uint8_t port;
	struct fabric_rdma_params local, peer;
	/* under c->lock */
	struct fabric_rdma_flow flow;
	struct fabric_txbuf bl;
	uint64_t send_head, send_tail; /* send buffers in use */
	atomic_bool stopping;
};

static void *rdma_zalloc(size_t len)
{
	void *p = NULL;

	if (posix_memalign(&p, 4096, len))
		return NULL;
	memset(p, 0, len);
	return p;
}

static void rdma_free(struct rdma *d)
{
	if (d->qp)
		ibv_destroy_qp(d->qp);
	if (d->cq)
		ibv_destroy_cq(d->cq);
	if (d->ch)
		ibv_destroy_comp_channel(d->ch);
	if (d->recv_mr)
		ibv_dereg_mr(d->recv_mr);
	if (d->stage_mr)
		ibv_dereg_mr(d->stage_mr);
	if (d->send_mr)
		ibv_dereg_mr(d->send_mr);
	if (d->pd)
		ibv_dealloc_pd(d->pd);
	if (d->ctx)
		ibv_close_device(d->ctx);
	free(d->recv_buf);
	free(d->stage_buf);
	free(d->send_buf);
	free(d->scratch);
	free(d->bl.p);
	free(d);
}

static int post_recv(struct rdma *d, uint32_t i)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)(d->recv_buf + (size_t)i * RECV_SIZE),
		.length = RECV_SIZE,
		.lkey = d->recv_mr->lkey,
	};
	struct ibv_recv_wr wr = { .wr_id = i, .sg_list = &sge, .num_sge = 1 };
	struct ibv_recv_wr *bad;

	return -ibv_post_recv(d->qp, &wr, &bad);
}

/* One message: a frame (SEND or, staged, RDMA WRITE into the peer's next
 * slot) or, with len 0, credits only. c->lock held. */
static int post(struct fabric_conn *c, struct rdma *d, const uint8_t *frame,
		size_t len, bool staged)
{
	size_t i = d->send_head % SEND_BUFS;
	struct ibv_sge sge = {
		.addr = (uintptr_t)(d->send_buf + i * STAGE_SIZE),
		.length = len,
		.lkey = d->send_mr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = d->send_head,
		.sg_list = &sge,
		.num_sge = len ? 1 : 0,
		.opcode = staged ? IBV_WR_RDMA_WRITE_WITH_IMM
				 : IBV_WR_SEND_WITH_IMM,
		.send_flags = IBV_SEND_SIGNALED,
	};
	struct ibv_send_wr *bad;
	uint32_t slot;
	int r;

	if (len)
		memcpy(d->send_buf + i * STAGE_SIZE, frame, len);
	slot = fabric__rdma_flow_take(&d->flow, staged, !len);
	if (staged) {
		wr.wr.rdma.remote_addr = d->peer.stage_addr +
					 (uint64_t)slot * d->peer.stage_size;
		wr.wr.rdma.rkey = d->peer.stage_rkey;
	}
	wr.imm_data = htonl(fabric__rdma_flow_imm(&d->flow));
	r = ibv_post_send(d->qp, &wr, &bad);
	if (r) {
		fabric__conn_down_locked(c, -r, "ibv_post_send: %s",
					 strerror(r));
		return -r;
	}
	d->send_head++;
	c->st.tx_writes++;
	return 0;
}

/* Post what the credits and send buffers allow. c->lock held. */
static void pump(struct fabric_conn *c, struct rdma *d)
{
	pthread_cond_broadcast(&c->cond);
	while (!atomic_load(&c->down) &&
	       d->send_head - d->send_tail < SEND_BUFS) {
		const uint8_t *f = d->bl.p + d->bl.off;
		bool has = d->bl.off < d->bl.len, staged = false;
		struct fabric_hdr h;
		size_t need = 0;

		if (has) {
			/* our own sealed frames: the framing is sound */
			fabric__peek(f, d->bl.len - d->bl.off, &h, &need);
			staged = need > d->peer.recv_size;
		}
		switch (fabric__rdma_flow_next(&d->flow, has, staged)) {
		case FABRIC_RDMA_FRAME:
			if (post(c, d, f, need, staged))
				return;
			d->bl.off += need;
			if (d->bl.off == d->bl.len)
				d->bl.off = d->bl.len = 0;
			continue;
		case FABRIC_RDMA_CREDITS:
			post(c, d, NULL, 0, false);
			continue;
		}
		return; /* a completion or the peer's credits call again */
	}
}

static int rdma_send(struct fabric_conn *c, uint16_t type, const void *payload,
		     size_t len, bool wait)
{
	struct rdma *d = c->tp_priv;
	size_t need = fabric__frame_size(len);
	int r;

	while (d->bl.len + need > d->bl.cap) {
		if (atomic_load(&c->down))
			return -EPIPE;
		if (wait && d->bl.len - d->bl.off >= BACKLOG_MAX) {
			pthread_cond_wait(&c->cond, &c->lock);
			continue;
		}
		if (d->bl.off) { /* drop what has been posted */
			memmove(d->bl.p, d->bl.p + d->bl.off,
				d->bl.len - d->bl.off);
			d->bl.len -= d->bl.off;
			d->bl.off = 0;
			continue;
		}
		r = fabric__txbuf_grow(c, &d->bl, need, BACKLOG_MAX,
				       BACKLOG_HARD);
		if (r)
			return r;
	}
	r = fabric__txbuf_seal(c, &d->bl, type, payload, len);
	if (r)
		return r;
	pump(c, d);
	return 0;
}

static void completion(struct fabric_conn *c, struct rdma *d,
		       const struct ibv_wc *wc)
{
	struct fabric_msg m;
	bool staged = wc->opcode == IBV_WC_RECV_RDMA_WITH_IMM;
	uint32_t slot = 0;
	int r;

	if (wc->status != IBV_WC_SUCCESS) {
		if (!atomic_load(&d->stopping))
			fabric__conn_down(c, -EIO,
					  "RDMA completion failed: %s",
					  ibv_wc_status_str(wc->status));
		return;
	}
	if (wc->opcode == IBV_WC_SEND || wc->opcode == IBV_WC_RDMA_WRITE) {
		pthread_mutex_lock(&c->lock);
		d->send_tail++;
		pump(c, d);
		pthread_mutex_unlock(&c->lock);
		return;
	}
	if (wc->opcode != IBV_WC_RECV && !staged)
		return;

	pthread_mutex_lock(&c->lock);
	r = wc->wc_flags & IBV_WC_WITH_IMM
		    ? fabric__rdma_flow_credit(&d->flow, ntohl(wc->imm_data))
		    : FABRIC_E_HEADER;
	slot = fabric__rdma_flow_rx_slot(&d->flow);
	c->st.rx_reads++;
	pthread_mutex_unlock(&c->lock);
	if (r) {
		fabric__conn_down(c, r, "refused a message: bad credits");
		return;
	}
	if (staged)
		r = fabric__rdma_stage_open(
			&c->s, d->stage_buf + (size_t)slot * STAGE_SIZE,
			STAGE_SIZE, wc->byte_len, d->scratch, &m,
			c->rx_payload, sizeof(c->rx_payload));
	else if (wc->byte_len)
		r = fabric__rdma_msg_open(
			&c->s, d->recv_buf + wc->wr_id * RECV_SIZE,
			wc->byte_len, &m, c->rx_payload,
			sizeof(c->rx_payload));
	if (!r)
		r = post_recv(d, wc->wr_id);
	if (r) {
		fabric__conn_down(c, r, "refused a message: %s",
				  r < 0 ? strerror(-r) : fabric__strerror(r));
		return;
	}
	/* Only now, with the buffer posted again and the slot copied out,
	 * are their credits the peer's to use. */
	pthread_mutex_lock(&c->lock);
	fabric__rdma_flow_received(&d->flow, staged);
	pump(c, d);
	pthread_mutex_unlock(&c->lock);
	if (staged || wc->byte_len)
		fabric__conn_deliver(c, &m);
}

static void drain_cq(struct fabric_conn *c, struct rdma *d)
{
	struct ibv_wc wc[16];
	struct ibv_cq *cq;
	void *ctx;
	int n;

	if (ibv_get_cq_event(d->ch, &cq, &ctx))
		return; /* nonblocking: no event yet */
	ibv_ack_cq_events(cq, 1);
	if (ibv_req_notify_cq(d->cq, 0)) {
		fabric__conn_down(c, -EIO, "ibv_req_notify_cq failed");
		return;
	}
	/* after re-arming, so nothing completes unseen in between */
	while ((n = ibv_poll_cq(d->cq, 16, wc)) > 0)
		for (int i = 0; i < n && !atomic_load(&c->down); i++)
			completion(c, d, &wc[i]);
	if (n < 0)
		fabric__conn_down(c, -EIO, "ibv_poll_cq failed");
}

static void *rdma_loop(void *arg)
{
	struct fabric_conn *c = arg;
	struct rdma *d = c->tp_priv;
	struct pollfd p[2] = { { .fd = d->ch->fd, .events = POLLIN },
			       { .fd = c->fd, .events = POLLIN } };

	fabric__conn_io_thread(c);
	while (!atomic_load(&c->down) && !atomic_load(&d->stopping)) {
		bool beat = false;
		int wait_ms = fabric__conn_tick(c, &beat), n;
		char b;

		if (beat)
			fabric__conn_send_nowait(c, FABRIC_MSG_HEARTBEAT);
		n = poll(p, 2, wait_ms);
		if (n > 0 && p[0].revents)
			drain_cq(c, d);
		if (fabric__conn_silent(c))
			break;
		if (n <= 0 || !p[1].revents || atomic_load(&d->stopping))
			continue;
		/* Nothing crosses the bootstrap socket after setup: its
		 * end is the peer process's end. */
		ssize_t got = recv(c->fd, &b, 1, MSG_DONTWAIT);
		int e = errno;

		if (got > 0)
			fabric__conn_down(c, FABRIC_E_HEADER,
					  "refused: bytes on the RDMA "
					  "connection's bootstrap socket");
		else if (!got || (e != EAGAIN && e != EINTR))
			fabric__conn_down(c, got ? -e : -ECONNRESET,
					  "connection lost: %s",
					  got ? strerror(e)
					      : "the peer's bootstrap socket "
						"closed");
	}
	fabric__conn_report(c);
	return NULL;
}

static int qp_up(struct rdma *d)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT,
		.pkey_index = 0,
		.port_num = d->port,
		.qp_access_flags = IBV_ACCESS_REMOTE_WRITE,
	};
	int r;

	/* verbs return a positive errno */
	r = -ibv_modify_qp(d->qp, &a,
			   IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
				   IBV_QP_ACCESS_FLAGS);
	for (uint32_t i = 0; !r && i < RECV_SLOTS; i++)
		r = post_recv(d, i);
	return r;
}

static int qp_connect(struct rdma *d)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_RTR,
		.path_mtu = d->local.mtu < d->peer.mtu ? d->local.mtu
						       : d->peer.mtu,
		.dest_qp_num = d->peer.qpn,
		.rq_psn = d->peer.psn,
		.max_dest_rd_atomic = 1,
		.min_rnr_timer = 12,
		.ah_attr = {
			.dlid = d->peer.lid,
			.port_num = d->port,
		},
	};
	static const uint8_t zero[16];
	int r;

	if (memcmp(d->peer.gid, zero, 16)) { /* RoCE, or routed IB */
		a.ah_attr.is_global = 1;
		memcpy(a.ah_attr.grh.dgid.raw, d->peer.gid, 16);
		a.ah_attr.grh.sgid_index = d->local.gid_index;
		a.ah_attr.grh.hop_limit = 64;
	}
	r = -ibv_modify_qp(d->qp, &a,
			   IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
				   IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
				   IBV_QP_MAX_DEST_RD_ATOMIC |
				   IBV_QP_MIN_RNR_TIMER);
	if (r)
		return r;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.timeout = 14;
	a.retry_cnt = 7;
	a.rnr_retry = 7; /* credits make RNR rare; never fatal */
	a.sq_psn = d->local.psn;
	a.max_rd_atomic = 1;
	return -ibv_modify_qp(d->qp, &a,
			      IBV_QP_STATE | IBV_QP_TIMEOUT |
				      IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
				      IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC);
}

/* A failed verbs call that returned NULL: its errno, never 0. */
static int verr(int fallback)
{
	return errno > 0 ? -errno : -fallback;
}

/* Device, PD, CQ, QP, buffers; the local parameters. */
static int rdma_open(struct rdma *d, const char **what)
{
	struct ibv_device **l;
	struct ibv_port_attr pa;
	union ibv_gid gid;
	int n = 0;

	*what = "ibv_get_device_list";
	l = ibv_get_device_list(&n);
	if (!l || !n) {
		if (l)
			ibv_free_device_list(l);
		return -ENODEV;
	}
	*what = "ibv_open_device";
	d->ctx = ibv_open_device(l[0]);
	ibv_free_device_list(l);
	if (!d->ctx)
		return verr(ENODEV);
	d->port = 1;
	*what = "ibv_query_port";
	if (ibv_query_port(d->ctx, d->port, &pa))
		return -EIO;
	*what = "ibv_query_gid";
	if (ibv_query_gid(d->ctx, d->port, 0, &gid))
		return -EIO;
	*what = "ibv_alloc_pd";
	if (!(d->pd = ibv_alloc_pd(d->ctx)))
		return -ENOMEM;
	*what = "ibv_create_comp_channel";
	if (!(d->ch = ibv_create_comp_channel(d->ctx)))
		return verr(EIO);
	*what = "ibv_create_cq";
	d->cq = ibv_create_cq(d->ctx, RECV_SLOTS + SEND_BUFS + 4, NULL, d->ch,
			      0);
	if (!d->cq)
		return verr(EIO);

	struct ibv_qp_init_attr qa = {
		.send_cq = d->cq,
		.recv_cq = d->cq,
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = SEND_BUFS + 1,
			 .max_recv_wr = RECV_SLOTS,
			 .max_send_sge = 1,
			 .max_recv_sge = 1 },
	};
	*what = "ibv_create_qp";
	if (!(d->qp = ibv_create_qp(d->pd, &qa)))
		return verr(EIO);

	*what = "buffers";
	d->recv_buf = rdma_zalloc((size_t)RECV_SLOTS * RECV_SIZE);
	d->stage_buf = rdma_zalloc((size_t)STAGE_SLOTS * STAGE_SIZE);
	d->send_buf = rdma_zalloc((size_t)SEND_BUFS * STAGE_SIZE);
	d->scratch = rdma_zalloc(STAGE_SIZE);
	if (!d->recv_buf || !d->stage_buf || !d->send_buf || !d->scratch)
		return -ENOMEM;
	*what = "ibv_reg_mr";
	d->recv_mr = ibv_reg_mr(d->pd, d->recv_buf,
				(size_t)RECV_SLOTS * RECV_SIZE,
				IBV_ACCESS_LOCAL_WRITE);
	/* the only memory the peer may write */
	d->stage_mr = ibv_reg_mr(d->pd, d->stage_buf,
				 (size_t)STAGE_SLOTS * STAGE_SIZE,
				 IBV_ACCESS_LOCAL_WRITE |
					 IBV_ACCESS_REMOTE_WRITE);
	d->send_mr = ibv_reg_mr(d->pd, d->send_buf,
				(size_t)SEND_BUFS * STAGE_SIZE, 0);
	if (!d->recv_mr || !d->stage_mr || !d->send_mr)
		return verr(EIO);

	uint32_t psn;
	randombytes_buf(&psn, sizeof(psn));
	d->local = (struct fabric_rdma_params){
		.qpn = d->qp->qp_num,
		.psn = psn & 0xffffff,
		.lid = pa.lid,
		.mtu = pa.active_mtu,
		.gid_index = 0,
		.recv_slots = RECV_SLOTS,
		.recv_size = RECV_SIZE,
		.stage_slots = STAGE_SLOTS,
		.stage_size = STAGE_SIZE,
		.stage_rkey = d->stage_mr->rkey,
		.stage_addr = (uintptr_t)d->stage_buf,
	};
	memcpy(d->local.gid, gid.raw, 16);
	*what = "ibv_modify_qp (INIT)";
	return qp_up(d);
}

static int rdma_start(struct fabric_conn *c)
{
	struct rdma *d = calloc(1, sizeof(*d));
	int64_t deadline = fabric__now_ms() + c->o.timeout_ms;
	uint8_t buf[FABRIC_RDMA_PARAMS_SIZE];
	const char *what = "setup";
	size_t len;
	int r;

	if (!d)
		return -ENOMEM;
	r = rdma_open(d, &what);
	if (r)
		goto fail;
	/* Swap parameters over the authenticated socket, bring the QP up,
	 * then a heartbeat each way: once it arrives, the peer's QP is
	 * ready to receive, so no SEND can meet a QP not yet up. */
	fabric__rdma_params_put(&d->local, buf);
	what = "sending the queue pair's parameters";
	r = fabric__conn_send_sync(c, FABRIC_MSG_RDMA_PARAMS, buf, sizeof(buf),
				   deadline);
	if (r)
		goto fail;
	what = "receiving the peer's queue pair parameters";
	r = fabric__conn_recv_sync(c, FABRIC_MSG_RDMA_PARAMS, buf, sizeof(buf),
				   &len, deadline);
	if (!r)
		r = fabric__rdma_params_get(&d->peer, buf, len);
	if (r)
		goto fail;
	what = "ibv_modify_qp (RTR, RTS)";
	r = qp_connect(d);
	if (r)
		goto fail;
	what = "the ready exchange";
	r = fabric__conn_send_sync(c, FABRIC_MSG_HEARTBEAT, NULL, 0, deadline);
	if (!r)
		r = fabric__conn_recv_sync(c, FABRIC_MSG_HEARTBEAT, buf,
					   sizeof(buf), &len, deadline);
	if (r)
		goto fail;
	fabric__rdma_flow_init(&d->flow, &d->local, &d->peer);
	what = "ibv_req_notify_cq";
	r = -ibv_req_notify_cq(d->cq, 0);
	if (r)
		goto fail;
	fcntl(d->ch->fd, F_SETFL, fcntl(d->ch->fd, F_GETFL) | O_NONBLOCK);
	c->tp_priv = d;
	r = -pthread_create(&c->io_thread, NULL, rdma_loop, c);
	if (!r)
		return 0;
	c->tp_priv = NULL;
	what = "pthread_create";
fail:
	fabric__conn_down(c, r, "RDMA setup: %s: %s", what,
			  r < 0 ? strerror(-r) : fabric__strerror(r));
	rdma_free(d);
	return r;
}

static void rdma_stop(struct fabric_conn *c)
{
	struct rdma *d = c->tp_priv;
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_ERR };
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += FLUSH_MS * 1000000L;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&c->lock);
	while (!atomic_load(&c->down) &&
	       (d->bl.len || d->send_head != d->send_tail))
		if (pthread_cond_timedwait(&c->cond, &c->lock, &ts))
			break;
	atomic_store(&d->stopping, true);
	pthread_mutex_unlock(&c->lock);
	/* flushes what is posted; the thread wakes on the socket */
	ibv_modify_qp(d->qp, &a, IBV_QP_STATE);
	shutdown(c->fd, SHUT_RDWR);
	pthread_join(c->io_thread, NULL);
	c->tp_priv = NULL;
	rdma_free(d);
}

const struct fabric_transport fabric_rdma = {
	.name = "rdma",
	.probe = rdma_probe,
	.start = rdma_start,
	.send = rdma_send,
	.stop = rdma_stop,
};
