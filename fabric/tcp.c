// SPDX-License-Identifier: MIT
/*
 * The TCP transport: sealed frames over a stream, driven by io_uring. Per
 * connection, one I/O thread and two rings: rx, whose completions only
 * that thread reaps (the recv, liveness), and tx, for sends, used under
 * the connection's lock by whichever thread sends.
 *
 * Sending: a sender seals its frame straight into the queue buffer under
 * the lock and, if no send is out, submits one for everything queued. On
 * a socket with room the kernel runs that send inside io_uring_submit and
 * its completion is there when the call returns, so the sender reaps it
 * itself: a lone frame leaves at once and wakes no other thread (a
 * completion on a ring the I/O thread waits on would wake it for nothing,
 * and on a two-core host that costs the round trip dearly). Frames sealed
 * while a send is out pile up and leave together in the next one: one
 * submission for many, batching exactly when it pays. A send that has to
 * wait for room completes later; then the I/O thread watches the tx ring
 * (a poll on its fd) and carries on from there. Two buffers swap: one
 * being sent, one filling.
 *
 * Receiving: one recv out at a time, into a buffer that holds many frames;
 * the frames in it are opened in order and handed on, a partial one waits
 * for the rest. The codec refuses a frame from its header, so a replayed
 * or foreign frame closes the connection without waiting for its body.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fabric/transport.h"

#define RING_ENTRIES 8
#define RX_SIZE	     (64 * 1024)
/* Senders wait above this much queued; the I/O thread never waits but
 * gives up on a peer that let this much pile up. */
#define TXQ_SIZE (256 * 1024)
#define TXQ_HARD (64u << 20)
/* fabric__close waits this long for queued frames (and CLOSE) to leave. */
#define FLUSH_MS 200

enum { OP_RECV = 1, OP_WATCH };

enum { TX_IDLE, TX_BUSY, TX_PARKED };

struct tcp {
	/* The I/O thread reaps rx: the recv, and a watch on tx while a send
	 * waits for room. Its submissions are under c->lock. */
	struct io_uring rx;
	/* Sends: only the thread holding the tx token (TX_BUSY) touches it,
	 * or, while a send waits (TX_PARKED), the I/O thread once the watch
	 * fires. */
	struct io_uring tx;
	/* under c->lock */
	int tx_state;
	struct fabric_txbuf q;	      /* filling */
	int ops;	      /* out on rx: not yet reaped */
	bool watching;	      /* an OP_WATCH is out */
	atomic_bool stopping; /* fabric__close: no down, no report */
	/* the tx token holder's */
	struct fabric_txbuf fl; /* being sent */
	/* the I/O thread's */
	uint8_t *rxb;
	size_t rxlen;
	bool broken; /* ops may be out for ever: never free their buffers */
};

static int submit_rx(struct fabric_conn *c, struct tcp *t, int op)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&t->rx);
	int r;

	if (!sqe)
		return -EBUSY; /* at most two are ever out */
	if (op == OP_RECV)
		io_uring_prep_recv(sqe, c->fd, t->rxb + t->rxlen,
				   RX_SIZE - t->rxlen, 0);
	else
		io_uring_prep_poll_add(sqe, t->tx.ring_fd, POLLIN);
	io_uring_sqe_set_data64(sqe, op);
	r = io_uring_submit(&t->rx);
	if (r < 0)
		return r;
	t->ops++;
	return 0;
}

/* Account for one send's result: 0, or -EPIPE once down. c->lock held. */
static int sent(struct fabric_conn *c, struct tcp *t, int res)
{
	c->st.tx_writes++;
	if (res <= 0) {
		if (!atomic_load(&t->stopping))
			fabric__conn_down_locked(c, res ? res : -EPIPE,
						 "connection lost: %s",
						 strerror(res ? -res : EPIPE));
		return -EPIPE;
	}
	t->fl.off += res; /* a short send: the rest goes next, first */
	if (t->fl.off == t->fl.len)
		t->fl.len = t->fl.off = 0;
	pthread_cond_broadcast(&c->cond);
	return 0;
}

/*
 * The tx token's work: send what is queued until nothing is, with c->lock
 * dropped around each submission. Senders that come meanwhile only queue
 * and return; their frames leave together in the next send (batching
 * exactly when senders outpace the socket), and a lone frame leaves in
 * its own sender's call at once. A send on a socket with room completes
 * inside io_uring_submit, so its completion is reaped here and no other
 * thread wakes; one that must wait for room parks the token with the I/O
 * thread, which watches the tx ring. c->lock held, tx_state TX_BUSY.
 */
static void tx_run(struct fabric_conn *c, struct tcp *t)
{
	for (;;) {
		struct io_uring_sqe *sqe;
		struct io_uring_cqe *cqe;
		int r, res = 0;

		if (!t->fl.len) {
			if (!t->q.len || atomic_load(&c->down))
				break;
			struct fabric_txbuf b = t->fl;
			t->fl = t->q;
			t->q = b;
			t->q.len = t->q.off = 0;
			pthread_cond_broadcast(&c->cond);
		}
		pthread_mutex_unlock(&c->lock);
		/* one send is ever out: never NULL */
		sqe = io_uring_get_sqe(&t->tx);
		io_uring_prep_send(sqe, c->fd, t->fl.p + t->fl.off,
				   t->fl.len - t->fl.off, MSG_NOSIGNAL);
		r = io_uring_submit(&t->tx);
		bool done = r >= 0 && !io_uring_peek_cqe(&t->tx, &cqe);
		if (done) {
			res = cqe->res;
			io_uring_cqe_seen(&t->tx, cqe);
		}
		pthread_mutex_lock(&c->lock);
		if (r < 0) {
			fabric__conn_down_locked(c, r, "io_uring send: %s",
						 strerror(-r));
			break;
		}
		if (!done) {
			r = t->watching ? 0 : submit_rx(c, t, OP_WATCH);
			t->watching = true;
			if (r) {
				/* nobody will reap it: keep the token out */
				fabric__conn_down_locked(c, r, "io_uring: %s",
							 strerror(-r));
				t->broken = true;
			}
			t->tx_state = TX_PARKED;
			return;
		}
		if (sent(c, t, res))
			break;
	}
	t->fl.len = t->fl.off = 0;
	t->tx_state = TX_IDLE;
	pthread_cond_broadcast(&c->cond);
}

static int tcp_send(struct fabric_conn *c, uint16_t type, const void *payload,
		    size_t len, bool wait)
{
	struct tcp *t = c->tp_priv;
	size_t need = fabric__frame_size(len);
	int r;

	while (t->q.len + need > t->q.cap) {
		if (atomic_load(&c->down))
			return -EPIPE;
		if (wait && t->q.len) {
			pthread_cond_wait(&c->cond, &c->lock);
			continue;
		}
		r = fabric__txbuf_grow(c, &t->q, need, TXQ_SIZE, TXQ_HARD);
		if (r)
			return r;
	}
	r = fabric__txbuf_seal(c, &t->q, type, payload, len);
	if (r)
		return r;
	if (t->tx_state == TX_IDLE) {
		t->tx_state = TX_BUSY;
		tx_run(c, t);
	}
	return 0;
}

/* The parked send completed (or the watch woke early). */
static void watched(struct fabric_conn *c, struct tcp *t)
{
	struct io_uring_cqe *cqe;

	pthread_mutex_lock(&c->lock);
	t->ops--;
	t->watching = false;
	if (t->tx_state == TX_PARKED && !io_uring_peek_cqe(&t->tx, &cqe)) {
		int res = cqe->res;

		io_uring_cqe_seen(&t->tx, cqe);
		t->tx_state = TX_BUSY;
		if (sent(c, t, res)) {
			t->fl.len = t->fl.off = 0;
			t->tx_state = TX_IDLE;
			pthread_cond_broadcast(&c->cond);
		} else {
			tx_run(c, t);
		}
	} else if (t->tx_state == TX_PARKED) {
		int r = submit_rx(c, t, OP_WATCH);

		t->watching = !r;
		if (r) {
			fabric__conn_down_locked(c, r, "io_uring: %s",
						 strerror(-r));
			t->broken = true;
		}
	}
	pthread_mutex_unlock(&c->lock);
}

static void arm_recv(struct fabric_conn *c, struct tcp *t)
{
	int r = 0;

	pthread_mutex_lock(&c->lock);
	if (!atomic_load(&c->down) && !atomic_load(&t->stopping))
		r = submit_rx(c, t, OP_RECV);
	if (r)
		fabric__conn_down_locked(c, r, "io_uring recv: %s",
					 strerror(-r));
	pthread_mutex_unlock(&c->lock);
}

static void received(struct fabric_conn *c, struct tcp *t, int res)
{
	size_t used;

	pthread_mutex_lock(&c->lock);
	t->ops--;
	c->st.rx_reads += res > 0;
	pthread_mutex_unlock(&c->lock);
	if (atomic_load(&t->stopping) || atomic_load(&c->down))
		return;
	if (res > 0) {
		t->rxlen += res;
		if (fabric__conn_input(c, t->rxb, t->rxlen, &used))
			return;
		memmove(t->rxb, t->rxb + used, t->rxlen - used);
		t->rxlen -= used;
		arm_recv(c, t);
	} else if (!res && t->rxlen) {
		struct fabric_hdr h;
		size_t need = FABRIC_HDR_SIZE;

		fabric__peek(t->rxb, t->rxlen, &h, &need);
		fabric__conn_down(c, FABRIC_E_INCOMPLETE,
				  "truncated frame: the peer closed the "
				  "connection after %zu of %zu bytes",
				  t->rxlen, need);
	} else {
		fabric__conn_down(c, res ? res : -ECONNRESET,
				  "connection lost: %s",
				  res ? strerror(-res)
				      : "closed by the peer without CLOSE");
	}
}

/* Down or stopping, and nothing out that may still touch our buffers. */
static bool finished(struct fabric_conn *c, struct tcp *t)
{
	bool done;

	pthread_mutex_lock(&c->lock);
	done = (atomic_load(&c->down) || atomic_load(&t->stopping)) &&
	       !t->ops && (t->tx_state == TX_IDLE || t->broken);
	pthread_mutex_unlock(&c->lock);
	return done;
}

static void *tcp_loop(void *arg)
{
	struct fabric_conn *c = arg;
	struct tcp *t = c->tp_priv;

	fabric__conn_io_thread(c);
	arm_recv(c, t);
	while (!finished(c, t)) {
		struct __kernel_timespec ts;
		struct io_uring_cqe *cqe;
		bool live = !atomic_load(&c->down) &&
			    !atomic_load(&t->stopping);
		bool beat = false;
		int wait_ms = live ? fabric__conn_tick(c, &beat) : 100, r;
		unsigned head, n = 0;

		if (beat)
			fabric__conn_send_nowait(c, FABRIC_MSG_HEARTBEAT);
		ts.tv_sec = wait_ms / 1000;
		ts.tv_nsec = (long long)(wait_ms % 1000) * 1000000;
		r = io_uring_wait_cqe_timeout(&t->rx, &cqe, &ts);
		if (r < 0 && r != -ETIME && r != -EINTR) {
			fabric__conn_down(c, r, "io_uring wait: %s",
					  strerror(-r));
			t->broken = true;
			break;
		}
		io_uring_for_each_cqe(&t->rx, head, cqe)
		{
			uint64_t op = io_uring_cqe_get_data64(cqe);
			int res = cqe->res;

			n++;
			if (op == OP_RECV)
				received(c, t, res);
			else if (op == OP_WATCH)
				watched(c, t);
		}
		io_uring_cq_advance(&t->rx, n);
		if (live && !atomic_load(&t->stopping))
			fabric__conn_silent(c);
	}
	fabric__conn_report(c);
	return NULL;
}

static void tcp_free(struct tcp *t)
{
	free(t->q.p);
	free(t->fl.p);
	free(t->rxb);
	free(t);
}

static int tcp_start(struct fabric_conn *c)
{
	struct tcp *t = calloc(1, sizeof(*t));
	const char *what = "out of memory";
	int r = -ENOMEM, fl;

	if (!t)
		return r;
	t->q.cap = t->fl.cap = TXQ_SIZE;
	t->q.p = malloc(TXQ_SIZE);
	t->fl.p = malloc(TXQ_SIZE);
	t->rxb = malloc(RX_SIZE);
	if (!t->q.p || !t->fl.p || !t->rxb)
		goto fail;
	what = "io_uring_queue_init (io_uring disabled? see "
	       "/proc/sys/kernel/io_uring_disabled)";
	r = io_uring_queue_init(RING_ENTRIES, &t->rx, 0);
	if (r)
		goto fail;
	r = io_uring_queue_init(RING_ENTRIES, &t->tx, 0);
	if (r) {
		io_uring_queue_exit(&t->rx);
		goto fail;
	}
	/* The I/O thread's timed waits must not take an SQE: other
	 * threads submit to its ring concurrently. */
	what = "io_uring lacks timed waits (IORING_FEAT_EXT_ARG, Linux 5.11)";
	r = -ENOSYS;
	if (!(t->rx.features & IORING_FEAT_EXT_ARG))
		goto fail_rings;
	/* setup used non-blocking calls; io_uring polls by itself */
	fl = fcntl(c->fd, F_GETFL);
	if (fl >= 0)
		fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK);
	c->tp_priv = t;
	what = "pthread_create";
	r = -pthread_create(&c->io_thread, NULL, tcp_loop, c);
	if (!r)
		return 0;
	c->tp_priv = NULL;
fail_rings:
	io_uring_queue_exit(&t->tx);
	io_uring_queue_exit(&t->rx);
fail:
	fabric__conn_down(c, r, "TCP setup: %s: %s", what, strerror(-r));
	tcp_free(t);
	return r;
}

static void tcp_stop(struct fabric_conn *c)
{
	struct tcp *t = c->tp_priv;
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += FLUSH_MS * 1000000L;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&c->lock);
	while (!atomic_load(&c->down) && (t->tx_state != TX_IDLE || t->q.len))
		if (pthread_cond_timedwait(&c->cond, &c->lock, &ts))
			break;
	atomic_store(&t->stopping, true);
	pthread_mutex_unlock(&c->lock);
	/* the pending recv (and a stuck send) complete at once */
	shutdown(c->fd, SHUT_RDWR);
	pthread_join(c->io_thread, NULL);
	c->tp_priv = NULL;
	if (t->broken)
		return; /* leak what the kernel may still touch */
	io_uring_queue_exit(&t->tx);
	io_uring_queue_exit(&t->rx);
	tcp_free(t);
}

const struct fabric_transport fabric_tcp = {
	.name = "tcp",
	.start = tcp_start,
	.send = tcp_send,
	.stop = tcp_stop,
};
