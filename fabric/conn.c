// SPDX-License-Identifier: MIT
/*
 * The secure connection, whatever carries it: addresses, connecting and
 * listening, the handshake with a deadline, and what every transport does
 * with frames once they are open (dispatch, liveness, going down, the
 * queue behind fabric__recv). tcp.c and rdma.c only move sealed bytes.
 * See transport.h and docs/protocol.md, "Transports".
 *
 * Setup (connect, accept, the three handshake messages) runs on blocking
 * calls bounded by poll() and a deadline: it is a few small messages per
 * connection, shared by both transports (RDMA bootstraps over TCP), and a
 * deadline is what matters there. The data path is the transports'.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "fabric/transport.h"

#define DEF_TIMEOUT_MS	 3000
#define DEF_HEARTBEAT_MS 200
#define DEF_DEAD_MS	 800
/* Handshakes in progress per listener: beyond this a new connection is
 * closed at once, so a flood of idle connections costs a bounded number
 * of threads, each for at most the timeout. */
#define MAX_PENDING 64
/* Handshakes in progress from one address: one source cannot hold every
 * slot and keep the hosts' own connections out. */
#define MAX_PENDING_FROM 8
/* Frames waiting for fabric__recv: beyond this the reader is not keeping
 * up, and the connection goes down rather than grow without end. */
#define MAX_QUEUED (16u << 20)

struct fabric_qframe {
	struct fabric_qframe *next;
	uint16_t type;
	uint32_t len;
	uint8_t data[];
};

/* ---- transports, log ---- */

const struct fabric_transport *fabric__transport(const char *name)
{
	if (!name || !strcmp(name, "tcp"))
		return &fabric_tcp;
	if (!strcmp(name, "rdma"))
		return &fabric_rdma;
	return NULL;
}

const char *fabric__transport_name(const struct fabric_transport *tp)
{
	return tp ? tp->name : "tcp";
}

int fabric__probe(const struct fabric_transport *tp, char *why,
		  size_t why_len)
{
	if (!tp)
		tp = &fabric_tcp;
	return tp->probe ? tp->probe(why, why_len) : 0;
}

static void (*log_fn)(const char *line, void *arg);
static void *log_arg;

void fabric__set_log(void (*fn)(const char *line, void *arg), void *arg)
{
	log_fn = fn;
	log_arg = arg;
}

void fabric__log(const char *peer, const char *fmt, ...)
{
	char line[512];
	int n = snprintf(line, sizeof(line), "slos: fabric: %s: ", peer);
	va_list ap;

	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(line))
		vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (log_fn)
		log_fn(line, log_arg);
	else
		fprintf(stderr, "%s\n", line);
}

int64_t fabric__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void say(char *why, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!why || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

static void opts_fill(struct fabric_opts *d, const struct fabric_opts *o)
{
	static const struct fabric_opts none;

	*d = o ? *o : none;
	if (!d->tp)
		d->tp = &fabric_tcp;
	if (d->timeout_ms <= 0)
		d->timeout_ms = DEF_TIMEOUT_MS;
	if (d->heartbeat_ms <= 0)
		d->heartbeat_ms = DEF_HEARTBEAT_MS;
	if (d->dead_ms <= 0)
		d->dead_ms = DEF_DEAD_MS;
	if (!d->version_max) {
		d->version_min = FABRIC_VERSION_MIN;
		d->version_max = FABRIC_VERSION;
	}
}

/* ---- addresses ---- */

static int bad_addr(const char *s, const char *detail, char *why,
		    size_t len)
{
	say(why, len,
	    "bad address '%s': %s (expected IPv4:PORT or [IPv6]:PORT, "
	    "numeric)",
	    s ? s : "", detail);
	return -EINVAL;
}

int fabric__parse_addr(const char *s, struct sockaddr_storage *ss,
		       socklen_t *sl, char *why, size_t why_len)
{
	char host[INET6_ADDRSTRLEN];
	const char *h, *port;
	size_t hlen;
	bool v6;

	if (!s || !*s)
		return bad_addr(s, "empty", why, why_len);
	if (s[0] == '[') {
		const char *e = strchr(s, ']');

		if (!e)
			return bad_addr(s, "no ']'", why, why_len);
		if (e[1] != ':')
			return bad_addr(s, "no ':PORT' after ']'", why,
					why_len);
		h = s + 1;
		hlen = e - h;
		port = e + 2;
		v6 = true;
	} else {
		const char *c = strrchr(s, ':');

		if (!c)
			return bad_addr(s, "no port", why, why_len);
		if (memchr(s, ':', c - s))
			return bad_addr(s, "an IPv6 address needs brackets",
					why, why_len);
		h = s;
		hlen = c - s;
		port = c + 1;
		v6 = false;
	}
	if (!hlen || hlen >= sizeof(host))
		return bad_addr(s, "no address before the port", why,
				why_len);
	memcpy(host, h, hlen);
	host[hlen] = 0;

	unsigned long p = 0;
	size_t nd = strspn(port, "0123456789");
	if (!nd || port[nd] || nd > 5 || (p = strtoul(port, NULL, 10)) > 65535)
		return bad_addr(s, "port not a number 0-65535", why, why_len);

	memset(ss, 0, sizeof(*ss));
	if (v6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(p);
		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			return bad_addr(s, "not an IPv6 address", why, why_len);
		*sl = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(p);
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return bad_addr(s, "not an IPv4 address", why, why_len);
		*sl = sizeof(*a);
	}
	return 0;
}

void fabric__format_addr(const struct sockaddr *sa, char *out, size_t len)
{
	char h[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)sa;

		inet_ntop(AF_INET, &a->sin_addr, h, sizeof(h));
		snprintf(out, len, "%s:%u", h, ntohs(a->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)sa;

		inet_ntop(AF_INET6, &a->sin6_addr, h, sizeof(h));
		snprintf(out, len, "[%s]:%u", h, ntohs(a->sin6_port));
	} else {
		snprintf(out, len, "?");
	}
}

/* ---- blocking I/O with a deadline (setup only) ---- */

static int wait_fd(int fd, short ev, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = ev };

	for (;;) {
		int64_t left = deadline - fabric__now_ms();

		if (left <= 0)
			return -ETIMEDOUT;
		int r = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

static int send_all(int fd, const void *buf, size_t len, int64_t deadline)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			p += n;
			len -= n;
		} else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			int r = wait_fd(fd, POLLOUT, deadline);
			if (r)
				return r;
		} else {
			return n < 0 ? -errno : -EPIPE;
		}
	}
	return 0;
}

/* Up to len bytes, at least one: -ECONNRESET at end of stream. */
static int recv_some(int fd, void *buf, size_t len, size_t *got,
		     int64_t deadline)
{
	for (;;) {
		ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);

		if (n > 0) {
			*got = n;
			return 0;
		}
		if (!n)
			return -ECONNRESET;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		int r = wait_fd(fd, POLLIN, deadline);
		if (r)
			return r;
	}
}

/*
 * One message into buf: feed what has arrived to step() until it says
 * something other than "incomplete", reading no more than it says the
 * message needs, so that whatever the peer sends next (frames right after
 * AUTH) stays in the socket for the I/O thread. step() refuses garbage
 * from its first bytes. *have: bytes read, for the caller's messages.
 */
struct reader {
	int fd;
	int64_t deadline;
	uint8_t buf[FABRIC_MAX_FRAME];
	size_t have;
};

static int read_msg(struct reader *rd, int (*step)(void *arg, size_t have,
						  size_t *need),
		    void *arg)
{
	size_t need = FABRIC_HDR_SIZE;
	int r;

	rd->have = 0;
	for (;;) {
		if (rd->have) {
			r = step(arg, rd->have, &need);
			if (r != FABRIC_E_INCOMPLETE)
				return r;
			if (need <= rd->have || need > sizeof(rd->buf))
				return FABRIC_E_HEADER; /* cannot happen */
		}
		size_t got = 0;
		r = recv_some(rd->fd, rd->buf + rd->have, need - rd->have, &got,
			      rd->deadline);
		if (r)
			return r;
		rd->have += got;
	}
}

/* "after 20 of 72 bytes" for a message cut short. */
static void cut_short(struct reader *rd, char *out, size_t len)
{
	struct fabric_hdr h;
	size_t need = FABRIC_HDR_SIZE;

	if (rd->have >= FABRIC_HDR_SIZE)
		fabric__peek(rd->buf, rd->have, &h, &need);
	snprintf(out, len, "after %zu of %zu bytes", rd->have, need);
}

/* ---- handshake ---- */

struct hs_ctx {
	struct reader rd;
	struct fabric_hs hs;
	struct fabric_session s;
	const struct fabric_opts *o;
	uint8_t key[FABRIC_KEY_SIZE];
	bool keyed, known;
	uint8_t out[FABRIC_REPLY_SIZE];
	size_t out_len;
};

static int step_hello(void *arg, size_t have, size_t *need)
{
	struct hs_ctx *x = arg;
	struct fabric_hdr h;
	int r = fabric__peek(x->rd.buf, have, &h, need);

	if ((r != FABRIC_OK && r != FABRIC_E_INCOMPLETE) ||
	    have < FABRIC_HDR_SIZE)
		return r;
	if (!x->keyed) {
		/* An unknown VM gets a random key: the initiator then fails
		 * as it would with a wrong key, and cannot tell the two
		 * apart, so probing for VM ids teaches it nothing. */
		x->known = x->o->key_for &&
			   x->o->key_for(h.vm_id, x->key, x->o->key_arg);
		if (!x->known)
			randombytes_buf(x->key, sizeof(x->key));
		x->keyed = true;
	}
	return fabric__hs_reply(&x->hs, x->key, x->rd.buf, have, need, x->out,
				sizeof(x->out), &x->out_len);
}

static int step_reply(void *arg, size_t have, size_t *need)
{
	struct hs_ctx *x = arg;

	return fabric__hs_confirm(&x->hs, x->rd.buf, have, need, x->out,
				  sizeof(x->out), &x->out_len, &x->s);
}

static int step_auth(void *arg, size_t have, size_t *need)
{
	struct hs_ctx *x = arg;

	return fabric__hs_accept(&x->hs, x->rd.buf, have, need, &x->s);
}

/* What went wrong with a message read, for a person. */
static void read_fail(struct hs_ctx *x, int r, const char *what,
		      const char *who, char *why, size_t len)
{
	char cut[64];

	if (r == -ETIMEDOUT) {
		say(why, len, "handshake timed out after %d ms waiting for %s",
		    x->o->timeout_ms, what);
	} else if (r == -ECONNRESET && x->rd.have) {
		cut_short(&x->rd, cut, sizeof(cut));
		say(why, len, "truncated %s: %s closed the connection %s",
		    what, who, cut);
	} else if (r == -ECONNRESET) {
		say(why, len, "%s closed the connection before its %s", who,
		    what);
	} else if (r < 0) {
		say(why, len, "handshake: %s", strerror(-r));
	} else {
		say(why, len, "refused %s: %s", what, fabric__strerror(r));
	}
}

static void versions(char *out, size_t len, uint16_t lo, uint16_t hi)
{
	if (lo == hi)
		snprintf(out, len, "%u", lo);
	else
		snprintf(out, len, "%u..%u", lo, hi);
}

static int initiate(struct hs_ctx *x, int fd, uint64_t vm,
		    const uint8_t key[FABRIC_KEY_SIZE], char *why, size_t len)
{
	char ours[16], theirs[16];
	int r;

	r = fabric__hs_init(&x->hs, FABRIC_INITIATOR, x->o->version_min,
			    x->o->version_max, NULL);
	if (r)
		goto proto;
	r = fabric__hs_hello(&x->hs, vm, key, x->out, sizeof(x->out),
			     &x->out_len);
	if (r)
		goto proto;
	r = send_all(fd, x->out, x->out_len, x->rd.deadline);
	if (r) {
		say(why, len, "handshake: sending HELLO: %s", strerror(-r));
		return r;
	}
	r = read_msg(&x->rd, step_reply, x);
	if (r == FABRIC_E_KEY) {
		/* Tell the responder as well, so both sides report the key
		 * rather than one of them a bare close: an AUTH that cannot
		 * be right fails there as FABRIC_E_KEY. */
		struct fabric_hdr h = { .type = FABRIC_MSG_AUTH,
					.len = FABRIC_MAC_SIZE,
					.vm_id = vm };
		uint8_t a[FABRIC_AUTH_SIZE] = { 0 };

		fabric__hdr_put(&h, a);
		send_all(fd, a, sizeof(a), x->rd.deadline);
		say(why, len,
		    "handshake refused: the host does not hold VM %#llx's key "
		    "(the keys differ, or the host serves no such VM)",
		    (unsigned long long)vm);
		return r;
	}
	if (r == FABRIC_E_VERSION) {
		versions(ours, sizeof(ours), x->o->version_min,
			 x->o->version_max);
		versions(theirs, sizeof(theirs), x->hs.peer_min,
			 x->hs.peer_max);
		say(why, len,
		    "protocol version mismatch: this side speaks %s, the host "
		    "%s",
		    ours, theirs);
		return r;
	}
	if (r) {
		read_fail(x, r, "HELLO_REPLY", "the host", why, len);
		return r;
	}
	r = send_all(fd, x->out, x->out_len, x->rd.deadline);
	if (r)
		say(why, len, "handshake: sending AUTH: %s", strerror(-r));
	return r;
proto:
	say(why, len, "handshake: %s", fabric__strerror(r));
	return r;
}

static int respond(struct hs_ctx *x, int fd, char *why, size_t len)
{
	char ours[16], theirs[16];
	uint64_t vm;
	int r;

	r = fabric__hs_init(&x->hs, FABRIC_RESPONDER, x->o->version_min,
			    x->o->version_max, NULL);
	if (r) {
		say(why, len, "handshake: %s", fabric__strerror(r));
		return r;
	}
	r = read_msg(&x->rd, step_hello, x);
	if (r == FABRIC_E_VERSION) {
		/* The reply names our versions so the initiator can say
		 * which; then we are done. */
		send_all(fd, x->out, x->out_len, x->rd.deadline);
		versions(ours, sizeof(ours), x->o->version_min,
			 x->o->version_max);
		versions(theirs, sizeof(theirs), x->hs.peer_min,
			 x->hs.peer_max);
		say(why, len,
		    "handshake refused: protocol version mismatch: the peer "
		    "speaks %s, this host %s",
		    theirs, ours);
		return r;
	}
	if (r) {
		read_fail(x, r, "HELLO", "the peer", why, len);
		return r;
	}
	vm = x->hs.vm_id;
	r = send_all(fd, x->out, x->out_len, x->rd.deadline);
	if (r) {
		say(why, len, "handshake: sending HELLO_REPLY: %s",
		    strerror(-r));
		return r;
	}
	r = read_msg(&x->rd, step_auth, x);
	if (r == FABRIC_E_KEY && x->known)
		say(why, len,
		    "handshake refused: the peer does not hold VM %#llx's key",
		    (unsigned long long)vm);
	else if (r == FABRIC_E_KEY)
		say(why, len, "handshake refused: VM %#llx is not served here",
		    (unsigned long long)vm);
	else if (r)
		read_fail(x, r, "AUTH", "the peer", why, len);
	return r;
}

static struct fabric_conn *conn_new(int fd, const char *peer,
				    const struct fabric_opts *o,
				    const struct fabric_session *s)
{
	struct fabric_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->tp = o->tp;
	c->o = *o;
	c->fd = fd;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	c->s = *s;
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	c->qtail = &c->qhead;
	return c;
}

static void hs_wipe(struct hs_ctx *x)
{
	fabric__hs_wipe(&x->hs);
	sodium_memzero(x, sizeof(*x));
}

static void tune(int fd)
{
	int one = 1;

	/* Frames are whole messages someone waits for: never hold one
	 * back to fill a segment (the transports batch themselves). */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* ---- connect ---- */

static int tcp_connect(const struct sockaddr_storage *ss, socklen_t sl,
		       const char *addr, int64_t deadline, int timeout_ms,
		       int *out, char *why, size_t len)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK |
						SOCK_CLOEXEC,
			0);
	int r, err = 0;
	socklen_t el = sizeof(err);

	if (fd < 0) {
		r = -errno;
		say(why, len, "%s: socket: %s", addr, strerror(-r));
		return r;
	}
	tune(fd);
	if (connect(fd, (const struct sockaddr *)ss, sl) < 0 &&
	    errno != EINPROGRESS) {
		err = errno;
	} else {
		r = wait_fd(fd, POLLOUT, deadline);
		if (r == -ETIMEDOUT) {
			say(why, len, "%s: connect timed out after %d ms", addr,
			    timeout_ms);
			close(fd);
			return r;
		}
		if (r)
			err = -r;
		else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
	}
	if (err) {
		if (err == ECONNREFUSED)
			say(why, len,
			    "%s: connection refused (nothing listens there)",
			    addr);
		else
			say(why, len, "%s: connect: %s", addr, strerror(err));
		close(fd);
		return -err;
	}
	*out = fd;
	return 0;
}

int fabric__connect(const char *addr, uint64_t vm_id,
		    const uint8_t key[FABRIC_KEY_SIZE],
		    const struct fabric_opts *opts, struct fabric_conn **out,
		    char *why, size_t why_len)
{
	struct fabric_opts o;
	struct sockaddr_storage ss;
	socklen_t sl;
	char peer[64], msg[FABRIC_WHY_SIZE];
	struct hs_ctx *x;
	int fd = -1, r;

	*out = NULL;
	opts_fill(&o, opts);
	r = fabric__probe(o.tp, why, why_len);
	if (r)
		return r;
	r = fabric__parse_addr(addr, &ss, &sl, why, why_len);
	if (r)
		return r;
	fabric__format_addr((struct sockaddr *)&ss, peer, sizeof(peer));

	int64_t deadline = fabric__now_ms() + o.timeout_ms;
	r = tcp_connect(&ss, sl, peer, deadline, o.timeout_ms, &fd, why,
			why_len);
	if (r)
		return r;
	x = calloc(1, sizeof(*x));
	if (!x) {
		close(fd);
		say(why, why_len, "%s: out of memory", peer);
		return -ENOMEM;
	}
	x->o = &o;
	x->rd.fd = fd;
	x->rd.deadline = deadline;
	r = initiate(x, fd, vm_id, key, msg, sizeof(msg));
	if (r) {
		say(why, why_len, "%s: %s", peer, msg);
		hs_wipe(x);
		free(x);
		close(fd);
		return r;
	}
	*out = conn_new(fd, peer, &o, &x->s);
	hs_wipe(x);
	free(x);
	if (!*out) {
		close(fd);
		say(why, why_len, "%s: out of memory", peer);
		return -ENOMEM;
	}
	return 0;
}

/* ---- listen, accept ---- */

struct ready {
	struct ready *next;
	struct fabric_conn *c;
};

struct fabric_listener {
	struct fabric_opts o;
	int fd, efd;
	char addr[64];
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool closing;
	int pending;
	/* Each handshake in flight (NULL: a free slot; its fd is shut down
	 * on close), and through it what its thread holds: a process forked
	 * while one runs (slos host's VM processes) has no such thread, and
	 * its leak checker must still find the memory. */
	struct hs_job *pending_job[MAX_PENDING];
	char pending_from[MAX_PENDING][64]; /* the peer's address, no port */
	struct ready *ready, **ready_tail;
	/* Handshakes whose threads are ending or ended, to be joined: none
	 * is left ending when a connection is handed out, nor during
	 * fabric__listener_hold (a process that forks, slos host, must not
	 * fork while such a thread frees and exits: ASan's allocator is not
	 * fork-safe). */
	struct hs_job *ended;
};

struct hs_job {
	struct fabric_listener *l;
	int fd, slot;
	char peer[64];
	struct hs_ctx *x;
	struct fabric_conn *c;
	struct ready *rd;
	pthread_t thread;
	struct hs_job *next_ended;
};

/* Join the handshake threads that ended; l->lock held (they no longer
 * take it). */
static void reap_handshakes(struct fabric_listener *l)
{
	while (l->ended) {
		struct hs_job *j = l->ended;

		l->ended = j->next_ended;
		pthread_join(j->thread, NULL);
		free(j);
	}
}

static void *hs_thread(void *arg)
{
	struct hs_job *j = arg;
	struct fabric_listener *l = j->l;
	char why[FABRIC_WHY_SIZE];
	struct hs_ctx *x = j->x = calloc(1, sizeof(*x));
	int r = -ENOMEM;

	if (x) {
		x->o = &l->o;
		x->rd.fd = j->fd;
		x->rd.deadline = fabric__now_ms() + l->o.timeout_ms;
		r = respond(x, j->fd, why, sizeof(why));
		if (!r) {
			j->c = conn_new(j->fd, j->peer, &l->o, &x->s);
			j->rd = malloc(sizeof(*j->rd));
		}
		hs_wipe(x);
		free(x);
		j->x = NULL;
	}

	struct fabric_conn *c = j->c;
	struct ready *rd = j->rd;

	pthread_mutex_lock(&l->lock);
	l->pending_job[j->slot] = NULL;
	if (r || !c || !rd || l->closing) {
		if (r && !l->closing)
			fabric__log(j->peer, "%s; connection closed", why);
		if (c)
			c->fd = -1; /* closed below */
		fabric__close(c);
		free(rd);
		close(j->fd);
	} else {
		rd->c = c;
		rd->next = NULL;
		*l->ready_tail = rd;
		l->ready_tail = &rd->next;
	}
	j->thread = pthread_self();
	j->next_ended = l->ended;
	l->ended = j;
	l->pending--;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

static void spawn_handshake(struct fabric_listener *l, int fd,
			    const char *peer)
{
	struct hs_job *j = NULL;
	pthread_attr_t a;
	pthread_t t;
	int slot = -1, same = 0;
	char from[64];
	const char *colon = strrchr(peer, ':');

	snprintf(from, sizeof(from), "%.*s",
		 colon ? (int)(colon - peer) : (int)strlen(peer), peer);
	pthread_mutex_lock(&l->lock);
	for (int i = 0; i < MAX_PENDING; i++) {
		if (!l->pending_job[i]) {
			if (slot < 0)
				slot = i;
		} else if (!strcmp(l->pending_from[i], from)) {
			same++;
		}
	}
	if (same >= MAX_PENDING_FROM)
		slot = -1;
	reap_handshakes(l);
	if (slot >= 0 && (j = malloc(sizeof(*j)))) {
		*j = (struct hs_job){.l = l, .fd = fd, .slot = slot};
		snprintf(j->peer, sizeof(j->peer), "%s", peer);
		l->pending_job[slot] = j;
		snprintf(l->pending_from[slot], sizeof(l->pending_from[slot]),
			 "%s", from);
		l->pending++;
	}
	pthread_mutex_unlock(&l->lock);
	if (slot < 0 || !j) {
		fabric__log(peer, "refused: %s; connection closed",
			    same >= MAX_PENDING_FROM
				    ? "too many handshakes in progress from "
				      "its address"
			    : slot < 0 ? "too many handshakes in progress"
				       : "out of memory");
		close(fd);
		return;
	}
	pthread_attr_init(&a);
	if (pthread_create(&t, &a, hs_thread, j)) {
		pthread_mutex_lock(&l->lock);
		l->pending_job[slot] = NULL;
		l->pending--;
		pthread_cond_broadcast(&l->cond);
		pthread_mutex_unlock(&l->lock);
		fabric__log(peer, "refused: no thread for its handshake");
		close(fd);
		free(j);
	}
	pthread_attr_destroy(&a);
}

static void *accept_thread(void *arg)
{
	struct fabric_listener *l = arg;
	struct pollfd p[2] = { { .fd = l->fd, .events = POLLIN },
			       { .fd = l->efd, .events = POLLIN } };

	for (;;) {
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;

		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char peer[64];
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM)
				usleep(10000); /* let others close first */
			continue;
		}
		tune(fd);
		fabric__format_addr((struct sockaddr *)&ss, peer, sizeof(peer));
		spawn_handshake(l, fd, peer);
	}
	return NULL;
}

int fabric__listen(const char *addr, const struct fabric_opts *opts,
		   struct fabric_listener **out, char *why, size_t why_len)
{
	struct fabric_listener *l;
	struct sockaddr_storage ss;
	socklen_t sl;
	int r, one = 1;

	*out = NULL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	opts_fill(&l->o, opts);
	l->fd = l->efd = -1;
	r = fabric__probe(l->o.tp, why, why_len);
	if (r)
		goto fail;
	r = fabric__parse_addr(addr, &ss, &sl, why, why_len);
	if (r)
		goto fail;
	l->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l->fd < 0)
		goto fail_errno;
	setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l->fd, (struct sockaddr *)&ss, sl) < 0 ||
	    listen(l->fd, 128) < 0)
		goto fail_errno;
	sl = sizeof(ss);
	getsockname(l->fd, (struct sockaddr *)&ss, &sl);
	fabric__format_addr((struct sockaddr *)&ss, l->addr, sizeof(l->addr));
	l->efd = eventfd(0, EFD_CLOEXEC);
	if (l->efd < 0)
		goto fail_errno;
	l->ready_tail = &l->ready;
	pthread_mutex_init(&l->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cond, &ca);
	pthread_condattr_destroy(&ca);
	r = -pthread_create(&l->thread, NULL, accept_thread, l);
	if (r) {
		say(why, why_len, "%s: cannot start its thread: %s", addr,
		    strerror(-r));
		pthread_mutex_destroy(&l->lock);
		pthread_cond_destroy(&l->cond);
		goto fail;
	}
	*out = l;
	return 0;
fail_errno:
	r = -errno;
	say(why, why_len, "%s: %s", addr, strerror(errno));
fail:
	if (l->fd >= 0)
		close(l->fd);
	if (l->efd >= 0)
		close(l->efd);
	free(l);
	return r;
}

const char *fabric__listener_addr(const struct fabric_listener *l)
{
	return l->addr;
}

static void deadline_ts(struct timespec *ts, int timeout_ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += timeout_ms / 1000;
	ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

int fabric__accept(struct fabric_listener *l, int timeout_ms,
		   struct fabric_conn **out)
{
	struct timespec ts;
	struct ready *rd;
	int r = 0;

	*out = NULL;
	if (timeout_ms >= 0)
		deadline_ts(&ts, timeout_ms);
	pthread_mutex_lock(&l->lock);
	while (!l->ready && !l->closing && !r)
		r = timeout_ms < 0 ? pthread_cond_wait(&l->cond, &l->lock)
				   : pthread_cond_timedwait(&l->cond, &l->lock,
							    &ts);
	rd = l->ready;
	if (rd) {
		l->ready = rd->next;
		if (!l->ready)
			l->ready_tail = &l->ready;
		*out = rd->c;
		free(rd);
		reap_handshakes(l);
		r = 0;
	} else {
		r = l->closing ? -ECANCELED : -ETIMEDOUT;
	}
	pthread_mutex_unlock(&l->lock);
	return r;
}

void fabric__listener_hold(struct fabric_listener *l, int timeout_ms)
{
	struct timespec ts;

	deadline_ts(&ts, timeout_ms);
	pthread_mutex_lock(&l->lock);
	while (l->pending && !l->closing &&
	       !pthread_cond_timedwait(&l->cond, &l->lock, &ts))
		;
	if (l->pending)
		fabric__log(l->addr,
			    "%d handshake(s) still in progress at a fork",
			    l->pending);
	reap_handshakes(l);
}

void fabric__listener_release(struct fabric_listener *l)
{
	pthread_mutex_unlock(&l->lock);
}

void fabric__listener_forget(struct fabric_listener *l)
{
	close(l->fd);
	close(l->efd);
	for (int i = 0; i < MAX_PENDING; i++)
		if (l->pending_job[i])
			close(l->pending_job[i]->fd);
	/* other VMs' connections, not this child's to keep open */
	for (struct ready *rd = l->ready; rd; rd = rd->next)
		if (rd->c && rd->c->fd >= 0)
			close(rd->c->fd);
}

void fabric__listener_close(struct fabric_listener *l)
{
	uint64_t one = 1;

	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	l->closing = true;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
	if (write(l->efd, &one, sizeof(one)) < 0)
		abort(); /* an eventfd write cannot fail here */
	pthread_join(l->thread, NULL);

	pthread_mutex_lock(&l->lock);
	for (int i = 0; i < MAX_PENDING; i++)
		if (l->pending_job[i])
			shutdown(l->pending_job[i]->fd, SHUT_RDWR);
	while (l->pending)
		pthread_cond_wait(&l->cond, &l->lock);
	reap_handshakes(l);
	pthread_mutex_unlock(&l->lock);

	while (l->ready) {
		struct ready *rd = l->ready;

		l->ready = rd->next;
		fabric__close(rd->c);
		free(rd);
	}
	close(l->fd);
	close(l->efd);
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->cond);
	free(l);
}

/* ---- the connection ---- */

uint64_t fabric__vm_id(const struct fabric_conn *c)
{
	return c->s.vm_id;
}

uint16_t fabric__version(const struct fabric_conn *c)
{
	return c->s.version;
}

const char *fabric__peer(const struct fabric_conn *c)
{
	return c->peer;
}

void fabric__stats(struct fabric_conn *c, struct fabric_stats *st)
{
	pthread_mutex_lock(&c->lock);
	*st = c->st;
	pthread_mutex_unlock(&c->lock);
}

const char *fabric__down_why(struct fabric_conn *c)
{
	return atomic_load(&c->down) ? c->down_why : "";
}

int fabric__start(struct fabric_conn *c, const struct fabric_handler *h)
{
	int r;

	if (c->started)
		return FABRIC_E_STATE;
	if (h)
		c->h = *h;
	atomic_store(&c->last_rx, fabric__now_ms());
	atomic_store(&c->last_tx, fabric__now_ms());
	/* Before the I/O thread exists: its first frame's handler may
	 * already send. */
	c->started = true;
	r = c->tp->start(c);
	if (r)
		c->started = false;
	return r;
}

/* The connection whose I/O thread this is, if any. */
static __thread const struct fabric_conn *io_conn;

void fabric__conn_io_thread(const struct fabric_conn *c)
{
	io_conn = c;
}

static bool in_io_thread(const struct fabric_conn *c)
{
	return io_conn == c;
}

static int send_frame(struct fabric_conn *c, uint16_t type,
		      const void *payload, size_t len, bool wait)
{
	int r;

	if (type < FABRIC_MSG_USER || type >= FABRIC_MSG_END)
		return FABRIC_E_TYPE;
	if (len > FABRIC_MAX_PAYLOAD)
		return FABRIC_E_SPACE;
	if (!c->started)
		return FABRIC_E_STATE;
	pthread_mutex_lock(&c->lock);
	r = atomic_load(&c->down)
		    ? -EPIPE
		    : c->tp->send(c, type, payload, len,
				  wait && !in_io_thread(c));
	pthread_mutex_unlock(&c->lock);
	return r;
}

int fabric__send(struct fabric_conn *c, uint16_t type, const void *payload,
		 size_t len)
{
	return send_frame(c, type, payload, len, true);
}

int fabric__post(struct fabric_conn *c, uint16_t type, const void *payload,
		 size_t len)
{
	return send_frame(c, type, payload, len, false);
}

int fabric__conn_send_nowait(struct fabric_conn *c, uint16_t type)
{
	int r;

	pthread_mutex_lock(&c->lock);
	r = atomic_load(&c->down) ? -EPIPE
				  : c->tp->send(c, type, NULL, 0, false);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int fabric__recv(struct fabric_conn *c, int timeout_ms, uint16_t *type,
		 void *buf, size_t cap, size_t *len)
{
	struct fabric_qframe *f;
	struct timespec ts;
	int r = 0;

	if (!c->started || c->h.frame)
		return FABRIC_E_STATE;
	if (timeout_ms >= 0)
		deadline_ts(&ts, timeout_ms);
	pthread_mutex_lock(&c->lock);
	while (!c->qhead && !atomic_load(&c->down) && !r)
		r = timeout_ms < 0 ? pthread_cond_wait(&c->cond, &c->lock)
				   : pthread_cond_timedwait(&c->cond, &c->lock,
							    &ts);
	f = c->qhead;
	if (f) {
		c->qhead = f->next;
		if (!c->qhead)
			c->qtail = &c->qhead;
		c->qbytes -= f->len;
	}
	if (!f)
		r = r ? -ETIMEDOUT : (c->down_err ? c->down_err : -EPIPE);
	pthread_mutex_unlock(&c->lock);
	if (!f)
		return r;
	*type = f->type;
	*len = f->len;
	r = 0;
	if (f->len > cap)
		r = FABRIC_E_SPACE;
	else
		memcpy(buf, f->data, f->len);
	free(f);
	return r;
}

void fabric__close(struct fabric_conn *c)
{
	if (!c)
		return;
	if (c->started) {
		pthread_mutex_lock(&c->lock);
		c->closing = true;
		pthread_mutex_unlock(&c->lock);
		/* In order, so the peer reports a close and not a loss. */
		fabric__conn_send_nowait(c, FABRIC_MSG_CLOSE);
		c->tp->stop(c);
	}
	if (c->fd >= 0)
		close(c->fd);
	while (c->qhead) {
		struct fabric_qframe *f = c->qhead;

		c->qhead = f->next;
		free(f);
	}
	fabric__session_wipe(&c->s);
	sodium_memzero(c->rx_payload, sizeof(c->rx_payload));
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
}

/* ---- for the transports ---- */

static bool vdown(struct fabric_conn *c, int err, const char *fmt,
		  va_list ap)
{
	if (atomic_load(&c->down))
		return false;
	vsnprintf(c->down_why, sizeof(c->down_why), fmt, ap);
	c->down_err = err;
	atomic_store(&c->down, true);
	/* Ends the I/O thread's pending reads and writes at once. */
	if (c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR);
	pthread_cond_broadcast(&c->cond);
	if (err && !c->closing)
		fabric__log(c->peer, "VM %#llx: %s; connection closed",
			    (unsigned long long)c->s.vm_id, c->down_why);
	return true;
}

bool fabric__conn_down_locked(struct fabric_conn *c, int err,
			      const char *fmt, ...)
{
	va_list ap;
	bool r;

	va_start(ap, fmt);
	r = vdown(c, err, fmt, ap);
	va_end(ap);
	return r;
}

bool fabric__conn_down(struct fabric_conn *c, int err, const char *fmt, ...)
{
	va_list ap;
	bool r;

	pthread_mutex_lock(&c->lock);
	va_start(ap, fmt);
	r = vdown(c, err, fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&c->lock);
	return r;
}

void fabric__conn_report(struct fabric_conn *c)
{
	bool report;

	pthread_mutex_lock(&c->lock);
	report = !c->closing && atomic_load(&c->down) && c->h.down;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	if (report)
		c->h.down(c, c->down_err, c->down_why, c->h.arg);
}

static int queue(struct fabric_conn *c, const struct fabric_msg *m)
{
	struct fabric_qframe *f;

	pthread_mutex_lock(&c->lock);
	if (c->qbytes + m->len > MAX_QUEUED) {
		pthread_mutex_unlock(&c->lock);
		fabric__conn_down(c, -ENOBUFS,
				  "receive queue full: frames are not read");
		return -ENOBUFS;
	}
	pthread_mutex_unlock(&c->lock);
	f = malloc(sizeof(*f) + m->len);
	if (!f) {
		fabric__conn_down(c, -ENOMEM, "out of memory for a frame");
		return -ENOMEM;
	}
	f->next = NULL;
	f->type = m->type;
	f->len = m->len;
	memcpy(f->data, c->rx_payload, m->len);
	pthread_mutex_lock(&c->lock);
	*c->qtail = f;
	c->qtail = &f->next;
	c->qbytes += m->len;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int fabric__conn_deliver(struct fabric_conn *c, const struct fabric_msg *m)
{
	atomic_store(&c->last_rx, fabric__now_ms());
	pthread_mutex_lock(&c->lock);
	c->st.rx_frames++;
	pthread_mutex_unlock(&c->lock);
	switch (m->type) {
	case FABRIC_MSG_HEARTBEAT:
		return 0;
	case FABRIC_MSG_CLOSE:
		fabric__conn_down(c, 0, "the peer closed the connection");
		return 0;
	}
	if (m->type < FABRIC_MSG_USER) {
		fabric__conn_down(c, FABRIC_E_TYPE,
				  "refused a frame: transport message %#x out "
				  "of place",
				  m->type);
		return FABRIC_E_TYPE;
	}
	if (!c->h.frame)
		return queue(c, m);
	c->h.frame(c, m->type, c->rx_payload, m->len, c->h.arg);
	return 0;
}

int fabric__conn_input(struct fabric_conn *c, const uint8_t *buf, size_t len,
		       size_t *used)
{
	size_t off = 0;
	int r = 0;

	while (off < len && !atomic_load(&c->down)) {
		struct fabric_msg m;
		size_t u;

		r = fabric__open(&c->s, buf + off, len - off, &u, &m,
				 c->rx_payload, sizeof(c->rx_payload));
		if (r == FABRIC_E_INCOMPLETE) {
			r = 0;
			break;
		}
		if (r) {
			fabric__conn_down(c, r, "refused a frame: %s",
					  fabric__strerror(r));
			break;
		}
		off += u;
		r = fabric__conn_deliver(c, &m);
		if (r)
			break;
	}
	*used = off;
	return r;
}

int fabric__conn_tick(struct fabric_conn *c, bool *beat)
{
	int64_t now = fabric__now_ms();
	int64_t rx = atomic_load(&c->last_rx), tx = atomic_load(&c->last_tx);
	int64_t next;

	*beat = now - tx >= c->o.heartbeat_ms;
	next = (*beat ? now : tx) + c->o.heartbeat_ms;
	if (rx + c->o.dead_ms < next)
		next = rx + c->o.dead_ms;
	next -= now;
	return next < 1 ? 1 : next > 1000 ? 1000 : (int)next;
}

bool fabric__conn_silent(struct fabric_conn *c)
{
	int64_t quiet = fabric__now_ms() - atomic_load(&c->last_rx);

	if (quiet < c->o.dead_ms)
		return false;
	fabric__conn_down(c, -ETIMEDOUT,
			  "no frame or heartbeat for %lld ms: peer presumed "
			  "dead",
			  (long long)quiet);
	return true;
}

int fabric__conn_send_sync(struct fabric_conn *c, uint16_t type,
			   const void *payload, size_t len, int64_t deadline)
{
	uint8_t *f = malloc(FABRIC_MAX_FRAME);
	size_t n;
	int r;

	if (!f)
		return -ENOMEM;
	pthread_mutex_lock(&c->lock);
	r = fabric__seal(&c->s, type, payload, len, f, FABRIC_MAX_FRAME, &n);
	pthread_mutex_unlock(&c->lock);
	if (!r)
		r = send_all(c->fd, f, n, deadline);
	free(f);
	return r;
}

struct sync_rx {
	struct reader *rd;
	struct fabric_conn *c;
	struct fabric_msg m;
	void *payload;
	size_t cap;
};

static int step_frame(void *arg, size_t have, size_t *need)
{
	struct sync_rx *x = arg;

	return fabric__open(&x->c->s, x->rd->buf, have, need, &x->m,
			    x->payload, x->cap);
}

int fabric__conn_recv_sync(struct fabric_conn *c, uint16_t type,
			   void *payload, size_t cap, size_t *len,
			   int64_t deadline)
{
	struct reader *rd = malloc(sizeof(*rd));
	struct sync_rx x = { .rd = rd, .c = c, .payload = payload,
			     .cap = cap };
	int r;

	if (!rd)
		return -ENOMEM;
	rd->fd = c->fd;
	rd->deadline = deadline;
	r = read_msg(rd, step_frame, &x);
	free(rd);
	if (r)
		return r;
	atomic_store(&c->last_rx, fabric__now_ms());
	if (x.m.type != type)
		return FABRIC_E_TYPE;
	*len = x.m.len;
	return 0;
}

int fabric__txbuf_grow(struct fabric_conn *c, struct fabric_txbuf *b,
		       size_t need, size_t first, size_t hard)
{
	size_t cap = b->cap ? b->cap * 2 : first;

	if (cap < b->len + need)
		cap = b->len + need;
	if (cap > hard) {
		fabric__conn_down_locked(c, -ENOBUFS,
					 "more than %zu MiB queued: the peer "
					 "does not read",
					 hard >> 20);
		return -EPIPE;
	}
	uint8_t *p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

int fabric__txbuf_seal(struct fabric_conn *c, struct fabric_txbuf *b,
		       uint16_t type, const void *payload, size_t len)
{
	size_t n;
	int r;

	if (atomic_load(&c->down))
		return -EPIPE;
	r = fabric__seal(&c->s, type, payload, len, b->p + b->len,
			 b->cap - b->len, &n);
	if (r)
		return r;
	b->len += n;
	c->st.tx_frames++;
	atomic_store(&c->last_tx, fabric__now_ms());
	return 0;
}
