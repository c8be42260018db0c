/* SPDX-License-Identifier: MIT */
/*
 * The fabric's transports: a secure connection to one peer that carries
 * whole frames (a type and 0..FABRIC_MAX_PAYLOAD bytes), over TCP driven
 * by io_uring or over RDMA verbs, behind one interface. The codec
 * (fabric/wire.h) does the cryptography; this layer connects, runs the
 * handshake with a deadline, moves sealed frames, keeps the connection
 * alive with heartbeats, and closes it (logged, never silently) when the
 * peer misbehaves or goes quiet. docs/protocol.md, "Transports".
 *
 * Use:
 *
 *   initiator                              responder (a host daemon)
 *                                          fabric__listen(addr, opts)
 *   fabric__connect(addr, vm, key, opts)   fabric__accept(l, ...): the VM
 *     (connect + handshake, bounded)         id in HELLO picks the key
 *                                            through opts->key_for
 *   fabric__start(c, handler)              fabric__start(c, handler)
 *   fabric__send(c, type, payload, len)    handler->frame(...) in the
 *                                            connection's I/O thread
 *   fabric__close(c)                       handler->down(...): peer gone
 *
 * Errors: 0, a negative errno for the system's failures (-EINVAL bad
 * address, -ECONNREFUSED, -ETIMEDOUT, -ENODEV no RDMA device, -EPIPE the
 * connection is down), or a positive FABRIC_E_* for the protocol's
 * (FABRIC_E_KEY: the keys differ; FABRIC_E_VERSION: no common version).
 * Calls that can fail at setup also write one line (no newline) saying
 * which peer and why into why[0..why_len), for the user.
 */
#ifndef SLOS_FABRIC_TRANSPORT_H
#define SLOS_FABRIC_TRANSPORT_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "fabric/wire.h"

struct fabric_conn;
struct fabric_listener;
struct fabric_transport;

/* A why[] that always fits. */
#define FABRIC_WHY_SIZE 256
/* Frame types below this belong to the transports (wire.h's ranges); the
 * user sends and receives the rest. */
#define FABRIC_MSG_USER FABRIC_MSG_CTL_FIRST

/* "tcp" or "rdma" (--fabric); NULL for anything else. */
const struct fabric_transport *fabric__transport(const char *name);
const char *fabric__transport_name(const struct fabric_transport *tp);
/* Can tp run on this host? 0, or a negative errno with why (RDMA: no
 * device). fabric__listen and fabric__connect check it first. */
int fabric__probe(const struct fabric_transport *tp, char *why,
		  size_t why_len);

struct fabric_opts {
	const struct fabric_transport *tp; /* NULL: TCP */
	int timeout_ms;			   /* connect + handshake; 0: 3000 */
	int heartbeat_ms; /* a heartbeat when nothing was sent; 0: 200 */
	int dead_ms;	  /* no frame for this long: down; 0: 800 */
	/* versions spoken; 0: FABRIC_VERSION_MIN..FABRIC_VERSION */
	uint16_t version_min, version_max;
	/* Responder: copy the key of VM vm_id into key and return true, or
	 * return false if this host serves no such VM (the initiator then
	 * fails as if the keys differed, and learns nothing more). Called
	 * from handshake threads, concurrently. */
	bool (*key_for)(uint64_t vm_id, uint8_t key[FABRIC_KEY_SIZE],
			void *arg);
	void *key_arg;
};

/*
 * "ADDR:PORT" with a numeric IPv4 address, or "[IPv6]:PORT". 0 or -EINVAL
 * with why. Listening on port 0 picks a free port (fabric__listener_addr).
 */
int fabric__parse_addr(const char *s, struct sockaddr_storage *ss,
		       socklen_t *len, char *why, size_t why_len);
/* The inverse, into out[0..len) ("?" for an unknown family). */
void fabric__format_addr(const struct sockaddr *sa, char *out, size_t len);

/* Connect and run the handshake as the initiator, both within
 * opts->timeout_ms. The connection is not started: nothing is read or
 * sent, heartbeats included, before fabric__start. */
int fabric__connect(const char *addr, uint64_t vm_id,
		    const uint8_t key[FABRIC_KEY_SIZE],
		    const struct fabric_opts *o, struct fabric_conn **out,
		    char *why, size_t why_len);

/*
 * Listen on addr. A thread accepts; each connection's handshake runs in a
 * thread of its own, bounded by opts->timeout_ms, so a peer that stalls
 * or sends garbage delays no one else. A failed handshake is logged and
 * closed; a successful one waits for fabric__accept.
 */
int fabric__listen(const char *addr, const struct fabric_opts *o,
		   struct fabric_listener **out, char *why, size_t why_len);
/* "ADDR:PORT" actually bound. */
const char *fabric__listener_addr(const struct fabric_listener *l);
/* The next connection whose handshake succeeded, not started. -ETIMEDOUT
 * after timeout_ms (< 0: wait for ever), -ECANCELED once closing. */
int fabric__accept(struct fabric_listener *l, int timeout_ms,
		   struct fabric_conn **out);
/* Stops accepting, ends pending handshakes, closes connections nobody
 * accepted; accepted ones are the caller's. */
void fabric__listener_close(struct fabric_listener *l);
/* Before a fork: wait up to timeout_ms for the handshakes in flight to end
 * (a thread mid-allocation when the process forks can leave the child's
 * allocator locked: ASan's is not fork-safe) and for the threads of those
 * done to exit; then keep new ones from starting until
 * fabric__listener_release (in the parent; the child uses neither). */
void fabric__listener_hold(struct fabric_listener *l, int timeout_ms);
void fabric__listener_release(struct fabric_listener *l);
/* In a child forked from the listening process: close the child's copies
 * of the listener's descriptors (its threads are not in the child). */
void fabric__listener_forget(struct fabric_listener *l);

struct fabric_handler {
	/* A frame from the peer, in the connection's I/O thread, in order;
	 * payload is valid during the call. It may fabric__send (never
	 * blocks here) but not fabric__close its own connection, and must
	 * not block for long: the thread sends no heartbeats meanwhile. */
	void (*frame)(struct fabric_conn *c, uint16_t type,
		      const void *payload, size_t len, void *arg);
	/* The connection is down: err 0 when the peer closed it in order,
	 * -ETIMEDOUT when it went quiet (missed heartbeats), -ECONNRESET
	 * and the like when the connection was lost, FABRIC_E_* when the
	 * peer sent something refused. Once, in the I/O thread, after the
	 * last frame; not once fabric__close has been called (which waits
	 * for one already running). */
	void (*down)(struct fabric_conn *c, int err, const char *why,
		     void *arg);
	void *arg;
};

/*
 * Start the I/O: frames go to h->frame, or, when h or h->frame is NULL, to
 * a queue that fabric__recv reads. Call it soon after connect/accept: the
 * peer counts the time before it as silence.
 */
int fabric__start(struct fabric_conn *c, const struct fabric_handler *h);
/*
 * Seal and send one frame (type >= FABRIC_MSG_USER). Any thread. A lone
 * frame leaves at once; frames sent while the previous write is in flight
 * go out together in the next. Blocks while a large backlog drains
 * (except in the connection's own I/O thread, which never waits on
 * itself). 0, -EPIPE once down, FABRIC_E_TYPE or FABRIC_E_SPACE.
 */
int fabric__send(struct fabric_conn *c, uint16_t type, const void *payload,
		 size_t len);
/* As fabric__send, but never waits for the backlog to drain (up to a hard
 * bound, past which the connection goes down): for senders that hold
 * locks another connection's handler may need, like the DSM's. */
int fabric__post(struct fabric_conn *c, uint16_t type, const void *payload,
		 size_t len);
/* With no frame handler: the next frame into buf[0..cap), its type and
 * length. 0; -ETIMEDOUT after timeout_ms (< 0: for ever); once the queue
 * is empty and the connection down, its error (-EPIPE if it was 0);
 * FABRIC_E_SPACE if cap is too small (the frame is dropped). */
int fabric__recv(struct fabric_conn *c, int timeout_ms, uint16_t *type,
		 void *buf, size_t cap, size_t *len);
/* Send CLOSE, stop, free. Not from the connection's own callbacks. */
void fabric__close(struct fabric_conn *c);

/* What went through the connection: frames each way and the writes and
 * reads (or RDMA messages) that carried them; frames per write shows the
 * batching. */
struct fabric_stats {
	uint64_t tx_frames, tx_writes, rx_frames, rx_reads;
};
void fabric__stats(struct fabric_conn *c, struct fabric_stats *st);

uint64_t fabric__vm_id(const struct fabric_conn *c);
uint16_t fabric__version(const struct fabric_conn *c);
const char *fabric__peer(const struct fabric_conn *c); /* "ADDR:PORT" */
/* Why the connection is down ("" while it is up). */
const char *fabric__down_why(struct fabric_conn *c);

/* Where the fabric's one-line events go (refused peers, lost peers):
 * stderr unless set. line has no newline. Process-wide. */
void fabric__set_log(void (*fn)(const char *line, void *arg), void *arg);

/* ------------------------------------------------------------------ */
/* For the transports' implementations (conn.c, tcp.c, rdma.c) and their
 * tests; users stop reading here. */

struct fabric_transport {
	const char *name;
	int (*probe)(char *why, size_t why_len);
	/* Take over c->fd and c->s after the handshake: set up, start the
	 * I/O thread. 0 or an error with c->down_why set. */
	int (*start)(struct fabric_conn *c);
	/* Seal and queue, c->lock held on entry and exit. wait: block on
	 * c->cond while the backlog is large; false (the I/O thread, the
	 * transport's own frames): queue anyway. */
	int (*send)(struct fabric_conn *c, uint16_t type, const void *payload,
		    size_t len, bool wait);
	/* Flush what is queued (up to a short bound), stop the I/O thread,
	 * free the transport's state. c->fd stays the caller's. */
	void (*stop)(struct fabric_conn *c);
};

extern const struct fabric_transport fabric_tcp, fabric_rdma;

struct fabric_qframe; /* a frame waiting for fabric__recv */

struct fabric_conn {
	const struct fabric_transport *tp;
	struct fabric_opts o; /* defaults filled in */
	int fd;		      /* the TCP socket (RDMA: its bootstrap) */
	char peer[64];
	/* The tx half is used under lock, the rx half by the I/O thread. */
	struct fabric_session s;
	struct fabric_handler h;
	bool started;
	pthread_t io_thread; /* the transport's, made by its start */
	/* Guards the tx side, the queue for fabric__recv and down state. */
	pthread_mutex_t lock;
	pthread_cond_t cond; /* tx space, queue, down */
	/* CLOCK_MONOTONIC ms of the last frame each way: liveness */
	_Atomic int64_t last_rx, last_tx;
	atomic_bool down;
	bool closing;	  /* fabric__close: no down report */
	bool peer_closed; /* CLOSE received */
	int down_err;
	char down_why[FABRIC_WHY_SIZE];
	struct fabric_stats st; /* tx_* under lock, rx_* the I/O thread's */
	struct fabric_qframe *qhead, **qtail;
	size_t qbytes;
	void *tp_priv;
	uint8_t rx_payload[FABRIC_MAX_PAYLOAD]; /* I/O thread's */
};

/* The transport's I/O thread says so first thing: its sends never wait
 * for space (only it could make some). */
void fabric__conn_io_thread(const struct fabric_conn *c);
int64_t fabric__now_ms(void);
/* One event line: "slos: fabric: PEER: ...". */
void fabric__log(const char *peer, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * Frames in from the stream at buf[0..len): open each whole one, handle
 * the transports' own and hand the rest on. *used: bytes consumed (what is
 * left is a frame's beginning). 0, or the error that took the connection
 * down (already logged, the down state set).
 */
int fabric__conn_input(struct fabric_conn *c, const uint8_t *buf,
		       size_t len, size_t *used);
/* One frame opened by the transport, its payload in c->rx_payload: the
 * transports' own handled, the user's handed on. 0 or the error that took
 * the connection down. */
int fabric__conn_deliver(struct fabric_conn *c, const struct fabric_msg *m);
/* Mark the connection down, first reason wins: wake every waiter, shut
 * the socket down (so the I/O thread's reads end), log it unless it is an
 * orderly close. Returns true for the call that did it. Takes c->lock. */
bool fabric__conn_down(struct fabric_conn *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Same, c->lock held. */
bool fabric__conn_down_locked(struct fabric_conn *c, int err,
			      const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A transport's queue of sealed frames waiting to go out: [off, len) of p
 * is still to send. */
struct fabric_txbuf {
	uint8_t *p;
	size_t len, off, cap;
};
/* Room for need more bytes, doubling from first up to hard (beyond that
 * the peer does not read: the connection goes down). c->lock held; 0,
 * -ENOMEM or -EPIPE. */
int fabric__txbuf_grow(struct fabric_conn *c, struct fabric_txbuf *b,
		       size_t need, size_t first, size_t hard);
/* Seal one frame onto the end of b, which has room (fabric__txbuf_grow),
 * and count it. c->lock held; 0 or an error. */
int fabric__txbuf_seal(struct fabric_conn *c, struct fabric_txbuf *b,
		       uint16_t type, const void *payload, size_t len);
/* The I/O thread's last act: the user's down callback, unless closing. */
void fabric__conn_report(struct fabric_conn *c);
/*
 * Liveness, for the I/O thread's loop: fabric__conn_tick says whether a
 * heartbeat is due (*beat: send it with fabric__conn_send_nowait) and
 * returns how long to wait, at most, before calling it again;
 * fabric__conn_silent, called after handling what arrived (so frames that
 * waited in the socket while a handler ran count), takes the connection
 * down when nothing came for dead_ms, and says so.
 */
int fabric__conn_tick(struct fabric_conn *c, bool *beat);
bool fabric__conn_silent(struct fabric_conn *c);
/* A transport frame (heartbeat, close) that must not wait for space. */
int fabric__conn_send_nowait(struct fabric_conn *c, uint16_t type);
/* Blocking whole-frame I/O on c->fd, before the I/O thread runs (RDMA's
 * bootstrap), within the deadline (fabric__now_ms() scale). */
int fabric__conn_send_sync(struct fabric_conn *c, uint16_t type,
			   const void *payload, size_t len, int64_t deadline);
int fabric__conn_recv_sync(struct fabric_conn *c, uint16_t type,
			   void *payload, size_t cap, size_t *len,
			   int64_t deadline);

/* RDMA's device-independent parts (rdma.c), unit-tested without a device. */

/* One side's queue pair and buffers, sent to the peer in a sealed
 * FABRIC_MSG_RDMA_PARAMS frame over the bootstrap TCP connection, once the
 * handshake is done: authenticated like any frame. */
struct fabric_rdma_params {
	uint32_t qpn, psn; /* 24 bits each */
	uint16_t lid;	   /* 0 on RoCE */
	uint8_t mtu;	   /* enum ibv_mtu, 1..5 */
	uint8_t gid_index;
	uint8_t gid[16];
	uint32_t recv_slots;  /* receive buffers kept posted, >= 4 */
	uint32_t recv_size;   /* bytes each: the largest frame SENT */
	uint32_t stage_slots; /* staging buffers the peer may RDMA WRITE */
	uint32_t stage_size;  /* bytes each: any frame fits */
	uint32_t stage_rkey;
	uint64_t stage_addr;
};
#define FABRIC_RDMA_PARAMS_SIZE 64
#define FABRIC_RDMA_MAX_SLOTS	4096
#define FABRIC_RDMA_MAX_STAGE	(1u << 20)

void fabric__rdma_params_put(const struct fabric_rdma_params *p,
			     uint8_t out[FABRIC_RDMA_PARAMS_SIZE]);
/* 0, or FABRIC_E_HEADER for a wrong size or layout, a reserved field set
 * or a value out of range: the peer is authenticated, but its numbers
 * size our loops and address our writes, so they are checked. */
int fabric__rdma_params_get(struct fabric_rdma_params *p, const uint8_t *in,
			    size_t len);

/*
 * Credits. A frame SENT takes one of the peer's posted receive buffers; a
 * frame WRITTEN into a staging slot takes a slot and a receive buffer (its
 * immediate consumes one). Every message's 32-bit immediate hands back
 * what its sender has freed since (receives in bits 0-14, slots in 15-29;
 * 30-31 are 0). A frame needs two receive credits: the last one is kept
 * for a credit-only message (a SEND with no frame), which goes when half
 * a window is owed and no frame will carry it. So two peers that both ran
 * dry can always hand credits back (the one that owes a whole window has
 * its last credit, by conservation), and credit-only messages die out:
 * it takes half a window of them (two at least, hence windows of 4) to
 * call for one back. Slots are written and freed in order, so a count
 * names them.
 */
struct fabric_rdma_flow {
	uint32_t recv_credits, stage_credits; /* ours to use at the peer */
	uint32_t peer_recv_slots, peer_stage_slots;
	uint32_t next_stage;		    /* the peer's slot we write next */
	uint32_t rx_recv_slots, rx_stage_slots; /* ours */
	uint32_t rx_next;		    /* our slot the peer writes next */
	uint32_t owed_recv, owed_stage;	    /* ours freed, not yet handed */
};

void fabric__rdma_flow_init(struct fabric_rdma_flow *f,
			    const struct fabric_rdma_params *local,
			    const struct fabric_rdma_params *peer);
/* May a message go now? credit_only: one with no frame, which may use the
 * last receive credit. */
bool fabric__rdma_flow_can(const struct fabric_rdma_flow *f, bool staged,
			   bool credit_only);
/* Use the credits for one message; returns the peer's staging slot to
 * write (staged frames). */
uint32_t fabric__rdma_flow_take(struct fabric_rdma_flow *f, bool staged,
				bool credit_only);
/* The immediate for the next message: the credits owed, now handed. */
uint32_t fabric__rdma_flow_imm(struct fabric_rdma_flow *f);
/* A message came in carrying imm: take its credits. FABRIC_E_HEADER if
 * it hands back more than was ever taken, or sets the reserved bits (a
 * broken or hostile peer). */
int fabric__rdma_flow_credit(struct fabric_rdma_flow *f, uint32_t imm);
/* Our slot the next staged frame is in. */
uint32_t fabric__rdma_flow_rx_slot(const struct fabric_rdma_flow *f);
/* A message came in and its receive buffer is posted again (a staged
 * frame's slot copied out): its credits are owed. */
void fabric__rdma_flow_received(struct fabric_rdma_flow *f, bool staged);
/* Is half a window owed (then a credit-only message goes if no frame
 * carries the credits)? */
bool fabric__rdma_flow_owes(const struct fabric_rdma_flow *f);

enum { FABRIC_RDMA_NONE, FABRIC_RDMA_FRAME, FABRIC_RDMA_CREDITS };
/* What to post next, given the head of the backlog (has_frame, staged):
 * the frame if the credits allow, else a credit-only message if one is
 * owed, else nothing (a completion or the peer's credits will call
 * again). */
int fabric__rdma_flow_next(const struct fabric_rdma_flow *f, bool has_frame,
			   bool staged);

/* A SENT message of byte_len bytes in a receive buffer: exactly one whole
 * frame, opened (authenticated, the next in sequence) into payload. */
int fabric__rdma_msg_open(struct fabric_session *s, const uint8_t *buf,
			  size_t byte_len, struct fabric_msg *m, void *payload,
			  size_t cap);
/*
 * A frame the peer wrote into a staging slot with RDMA WRITE: the peer can
 * write the slot again at any time, so its byte_len bytes (as the
 * completion reports them) are copied out once into scratch (slot_size
 * bytes), and only the copy is opened, as fabric__rdma_msg_open. Nothing
 * of the slot is used before that succeeds.
 */
int fabric__rdma_stage_open(struct fabric_session *s,
			    const volatile uint8_t *slot, size_t slot_size,
			    size_t byte_len, uint8_t *scratch,
			    struct fabric_msg *m, void *payload, size_t cap);

#endif
