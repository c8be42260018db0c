// SPDX-License-Identifier: MIT
/*
 * The TCP transport over real loopback sockets: connections, frames both
 * ways, a burst, the handshake's refusals, attackers driven by hand on a
 * raw socket next to a legitimate connection that must not notice, dead
 * peers, and the round trip the DSM's fault path will pay.
 *
 * Every wait here is bounded, so no test needs criterion's .timeout
 * (which, in criterion 2.4.1, leaks in the runner when tests run in
 * parallel, and fails the ASan pass).
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fabric/transport.h"

#define VM_A 0xa11ceULL
#define VM_B 0xb0bULL
#define VM_C 0xc0ffeeULL

#define T_ECHO	    (FABRIC_MSG_USER + 1)
#define T_REPLY	    (FABRIC_MSG_USER + 2)
#define T_BURST	    (FABRIC_MSG_USER + 3)
#define T_BURST_END (FABRIC_MSG_USER + 4)
#define T_SLOW	    (FABRIC_MSG_USER + 5)
#define T_MULTI	    (FABRIC_MSG_USER + 6)
#define T_COUNT	    (FABRIC_MSG_USER + 7)
#define BURST	    10000
#define SENDERS	    4

static const uint8_t key_a[FABRIC_KEY_SIZE] = "VM A's key, 32 bytes, secret!!!";
static const uint8_t key_b[FABRIC_KEY_SIZE] = "VM B's key, 32 bytes, secret!!!";

/* ---- the fabric's event log, captured ---- */

static pthread_mutex_t log_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t log_cv = PTHREAD_COND_INITIALIZER;
static char logs[128][512];
static int nlogs;

static void log_hook(const char *line, void *arg)
{
	pthread_mutex_lock(&log_m);
	snprintf(logs[nlogs % 128], sizeof(logs[0]), "%s", line);
	nlogs++;
	pthread_cond_broadcast(&log_cv);
	pthread_mutex_unlock(&log_m);
	fprintf(stderr, "%s\n", line);
}

static void setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	fabric__set_log(log_hook, NULL);
}

static void deadline(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/* A line with all of a, b (and c) appears within ms. */
static bool logged(const char *a, const char *b, const char *c, int ms)
{
	struct timespec ts;
	int seen = 0;
	bool found = false;

	deadline(&ts, ms);
	pthread_mutex_lock(&log_m);
	for (;;) {
		for (; seen < nlogs; seen++) {
			const char *l = logs[seen % 128];

			if (strstr(l, a) && (!b || strstr(l, b)) &&
			    (!c || strstr(l, c)))
				found = true;
		}
		if (found ||
		    pthread_cond_timedwait(&log_cv, &log_m, &ts) == ETIMEDOUT)
			break;
	}
	for (; !found && seen < nlogs; seen++)
		found = strstr(logs[seen % 128], a) &&
			(!b || strstr(logs[seen % 128], b)) &&
			(!c || strstr(logs[seen % 128], c));
	pthread_mutex_unlock(&log_m);
	return found;
}

/* ---- a server: accepts, starts each connection, echoes ---- */

struct srv {
	struct fabric_listener *l;
	pthread_t thread;
	pthread_mutex_t m;
	pthread_cond_t cv;
	bool stop;
	struct fabric_conn *conns[64];
	int n;
	/* down reports */
	int downs, down_err;
	char down_why[FABRIC_WHY_SIZE];
	int64_t down_ms;
	/* the burst, a slow reader, concurrent senders */
	uint64_t burst_next;
	bool burst_bad;
	uint64_t multi_next[SENDERS];
};

static bool key_for(uint64_t vm, uint8_t key[FABRIC_KEY_SIZE], void *arg)
{
	if (vm == VM_A)
		memcpy(key, key_a, FABRIC_KEY_SIZE);
	else if (vm == VM_B)
		memcpy(key, key_b, FABRIC_KEY_SIZE);
	else
		return false;
	return true;
}

static void srv_frame(struct fabric_conn *c, uint16_t type,
		      const void *payload, size_t len, void *arg)
{
	struct srv *s = arg;
	uint64_t i;

	switch (type) {
	case T_ECHO:
		fabric__send(c, T_REPLY, payload, len);
		break;
	case T_BURST:
		memcpy(&i, payload, sizeof(i));
		if (len != 8 + i % 57 || i != s->burst_next)
			s->burst_bad = true;
		s->burst_next++;
		break;
	case T_SLOW:
		/* The first one stalls this I/O thread for longer than
		 * dead_ms: the sender's socket and queue fill up and it must
		 * wait, and what waited in the socket still counts as the
		 * peer alive once the thread is back. */
		if (!s->burst_next)
			usleep(1200 * 1000);
		memcpy(&i, payload, sizeof(i));
		if (len != FABRIC_MAX_PAYLOAD || i != s->burst_next)
			s->burst_bad = true;
		s->burst_next++;
		break;
	case T_MULTI: {
		uint64_t who[2];

		memcpy(who, payload, sizeof(who));
		if (len != sizeof(who) || who[0] >= SENDERS ||
		    who[1] != s->multi_next[who[0]])
			s->burst_bad = true;
		else
			s->multi_next[who[0]]++;
		break;
	}
	case T_BURST_END: {
		uint64_t r[2] = { s->burst_next, s->burst_bad };

		fabric__send(c, T_BURST_END, r, sizeof(r));
		break;
	}
	case T_COUNT: {
		uint64_t r[SENDERS + 1];

		memcpy(r, s->multi_next, sizeof(s->multi_next));
		r[SENDERS] = s->burst_bad;
		fabric__send(c, T_COUNT, r, sizeof(r));
		break;
	}
	}
}

static void srv_down(struct fabric_conn *c, int err, const char *why,
		     void *arg)
{
	struct srv *s = arg;

	pthread_mutex_lock(&s->m);
	s->downs++;
	s->down_err = err;
	s->down_ms = fabric__now_ms();
	snprintf(s->down_why, sizeof(s->down_why), "%s", why);
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->m);
}

static void *srv_thread(void *arg)
{
	struct srv *s = arg;
	struct fabric_handler h = { srv_frame, srv_down, s };

	for (;;) {
		struct fabric_conn *c;
		int r = fabric__accept(s->l, 50, &c);

		pthread_mutex_lock(&s->m);
		if (s->stop) {
			pthread_mutex_unlock(&s->m);
			fabric__close(c);
			return NULL;
		}
		if (!r) {
			/* no cr_assert off the test's thread */
			if (s->n == 64)
				abort();
			s->conns[s->n++] = c;
		}
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->m);
		if (!r && fabric__start(c, &h))
			abort();
	}
}

static struct srv *srv_start(const char *addr, const struct fabric_opts *o)
{
	struct srv *s = calloc(1, sizeof(*s));
	struct fabric_opts def = { .key_for = key_for };
	char why[FABRIC_WHY_SIZE];

	cr_assert(s);
	if (!o)
		o = &def;
	pthread_mutex_init(&s->m, NULL);
	pthread_cond_init(&s->cv, NULL);
	cr_assert_eq(fabric__listen(addr, o, &s->l, why, sizeof(why)), 0,
		     "%s", why);
	cr_assert_eq(pthread_create(&s->thread, NULL, srv_thread, s), 0);
	return s;
}

static void srv_stop(struct srv *s)
{
	pthread_mutex_lock(&s->m);
	s->stop = true;
	pthread_mutex_unlock(&s->m);
	pthread_join(s->thread, NULL);
	for (int i = 0; i < s->n; i++)
		fabric__close(s->conns[i]);
	fabric__listener_close(s->l);
	free(s);
}

/* Wait until the server has had n down reports. */
static bool srv_wait_down(struct srv *s, int n, int ms)
{
	struct timespec ts;

	deadline(&ts, ms);
	pthread_mutex_lock(&s->m);
	while (s->downs < n)
		if (pthread_cond_timedwait(&s->cv, &s->m, &ts) == ETIMEDOUT)
			break;
	bool ok = s->downs >= n;
	pthread_mutex_unlock(&s->m);
	return ok;
}

static struct fabric_conn *dial_opts(const char *addr, uint64_t vm,
				     const uint8_t *key,
				     const struct fabric_opts *o)
{
	struct fabric_conn *c;
	char why[FABRIC_WHY_SIZE];

	cr_assert_eq(fabric__connect(addr, vm, key, o, &c, why, sizeof(why)),
		     0, "%s", why);
	cr_assert_eq(fabric__start(c, NULL), 0);
	return c;
}

static struct fabric_conn *dial(const char *addr, uint64_t vm,
				const uint8_t *key)
{
	return dial_opts(addr, vm, key, NULL);
}

static void fill(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 31 + seed * 7 + (i >> 8));
}

/* One echo through the server, checked byte for byte. */
static void ping(struct fabric_conn *c, size_t len, unsigned seed)
{
	static uint8_t out[FABRIC_MAX_PAYLOAD], in[FABRIC_MAX_PAYLOAD];
	uint16_t type = 0;
	size_t got = 0;

	fill(out, len, seed);
	cr_assert_eq(fabric__send(c, T_ECHO, out, len), 0);
	cr_assert_eq(fabric__recv(c, 3000, &type, in, sizeof(in), &got), 0,
		     "no echo of %zu bytes: %s", len, fabric__down_why(c));
	cr_assert_eq(type, T_REPLY);
	cr_assert_eq(got, len);
	cr_assert(!memcmp(in, out, len), "echo of %zu bytes differs", len);
}

/* ---- raw sockets, driven by hand ---- */

/* -1 on failure; no cr_assert, the relay's thread uses it too */
static int try_connect(const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct timeval tv = { .tv_sec = 3 };
	int fd;

	if (fabric__parse_addr(addr, &ss, &sl, NULL, 0))
		return -1;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&ss, sl)) {
		close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static int raw_connect(const char *addr)
{
	int fd = try_connect(addr);

	cr_assert_geq(fd, 0, "connect to %s: %s", addr, strerror(errno));
	return fd;
}

/* "ADDR:PORT" of our end, as the server logs it. */
static void local_name(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	getsockname(fd, (struct sockaddr *)&ss, &sl);
	fabric__format_addr((struct sockaddr *)&ss, out, len);
}

static void raw_write(int fd, const void *p, size_t len)
{
	cr_assert_eq(send(fd, p, len, MSG_NOSIGNAL), (ssize_t)len);
}

static bool raw_read(int fd, void *p, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = recv(fd, (uint8_t *)p + got, len - got, 0);

		if (n <= 0)
			return false;
		got += n;
	}
	return true;
}

/* The server closed on us within ms (whatever it sent before). */
static bool raw_closed(int fd, int ms)
{
	int64_t end = fabric__now_ms() + ms;
	uint8_t b[4096];

	while (fabric__now_ms() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 50) <= 0)
			continue;
		ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
	}
	return false;
}

/* Record what we send, for replays. */
struct tape {
	uint8_t b[16384];
	size_t len;
	size_t frame_at[16]; /* where sealed frame k starts */
	int frames;
};

static void tape_put(struct tape *t, const void *p, size_t len)
{
	if (!t)
		return;
	cr_assert_leq(t->len + len, sizeof(t->b));
	memcpy(t->b + t->len, p, len);
	t->len += len;
}

/* The initiator's side of a handshake, by hand. 0, or why it failed. */
static int raw_handshake(int fd, uint64_t vm, const uint8_t *key,
			 struct fabric_session *s, struct tape *t)
{
	struct fabric_hs hs;
	uint8_t out[FABRIC_REPLY_SIZE], in[FABRIC_REPLY_SIZE];
	size_t n, used;
	int r;

	cr_assert_eq(fabric__hs_init(&hs, FABRIC_INITIATOR, 1, 1, NULL), 0);
	cr_assert_eq(fabric__hs_hello(&hs, vm, key, out, sizeof(out), &n), 0);
	raw_write(fd, out, n);
	tape_put(t, out, n);
	if (!raw_read(fd, in, FABRIC_REPLY_SIZE))
		return -ECONNRESET;
	r = fabric__hs_confirm(&hs, in, FABRIC_REPLY_SIZE, &used, out,
			       sizeof(out), &n, s);
	if (r == FABRIC_E_KEY) {
		/* an attacker without the key tries its luck anyway */
		struct fabric_hdr h = { .type = FABRIC_MSG_AUTH,
					.len = FABRIC_MAC_SIZE,
					.vm_id = vm };

		fabric__hdr_put(&h, out);
		memset(out + FABRIC_HDR_SIZE, 0x5a, FABRIC_MAC_SIZE);
		raw_write(fd, out, FABRIC_AUTH_SIZE);
	}
	if (r)
		return r;
	raw_write(fd, out, n);
	tape_put(t, out, n);
	return 0;
}

static size_t raw_seal(struct fabric_session *s, uint16_t type,
		       const void *p, size_t len, uint8_t *out)
{
	size_t n;

	cr_assert_eq(fabric__seal(s, type, p, len, out, FABRIC_MAX_FRAME, &n),
		     0);
	return n;
}

static void raw_send(int fd, struct fabric_session *s, uint16_t type,
		     const void *p, size_t len, struct tape *t)
{
	uint8_t f[FABRIC_MAX_FRAME];
	size_t n = raw_seal(s, type, p, len, f);

	if (t && t->frames < 16)
		t->frame_at[t->frames++] = t->len;
	tape_put(t, f, n);
	raw_write(fd, f, n);
}

/* The next frame from the server, opened. */
static int raw_recv(int fd, struct fabric_session *s, struct fabric_msg *m,
		    uint8_t *payload)
{
	uint8_t f[FABRIC_MAX_FRAME];
	struct fabric_hdr h;
	size_t need, used;

	if (!raw_read(fd, f, FABRIC_HDR_SIZE))
		return -ECONNRESET;
	cr_assert_eq(fabric__peek(f, FABRIC_HDR_SIZE, &h, &need),
		     FABRIC_E_INCOMPLETE);
	if (!raw_read(fd, f + FABRIC_HDR_SIZE, need - FABRIC_HDR_SIZE))
		return -ECONNRESET;
	return fabric__open(s, f, need, &used, m, payload,
			    FABRIC_MAX_PAYLOAD);
}

/* ---- addresses ---- */

Test(fabric_tcp, addresses)
{
	static const char *good[] = { "10.0.0.2:7000", "127.0.0.1:0",
				      "[::1]:7000", "[fe80::1]:65535",
				      "0.0.0.0:1" };
	static const char *bad[] = {
		"",	       "10.0.0.2",  "10.0.0.2:",   "10.0.0.2:70000",
		":7000",       "::1:7000",  "[::1]7000",   "[::1:7000",
		"host:7000",   "1.2.3:80",  "10.0.0.2:7x", "[10.0.0.2]:80",
		"10.0.0.2:-1", "[]:80",
	};
	struct sockaddr_storage ss;
	socklen_t sl;
	char why[FABRIC_WHY_SIZE], back[64];

	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
		cr_assert_eq(fabric__parse_addr(good[i], &ss, &sl, why,
						sizeof(why)),
			     0, "%s: %s", good[i], why);
		fabric__format_addr((struct sockaddr *)&ss, back, sizeof(back));
		cr_assert_str_eq(back, good[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		why[0] = 0;
		cr_assert_eq(fabric__parse_addr(bad[i], &ss, &sl, why,
						sizeof(why)),
			     -EINVAL, "%s accepted", bad[i]);
		cr_assert(strstr(why, "bad address"), "%s", why);
		cr_assert(strstr(why, bad[i]), "%s", why);
	}
	/* through connect and listen too */
	struct fabric_conn *c;
	struct fabric_listener *l;
	cr_assert_eq(fabric__connect("nowhere:7000", VM_A, key_a, NULL, &c,
				     why, sizeof(why)),
		     -EINVAL);
	cr_assert(strstr(why, "bad address 'nowhere:7000'"), "%s", why);
	cr_assert_eq(fabric__listen("[::1]", NULL, &l, why, sizeof(why)),
		     -EINVAL);
	cr_assert_eq(fabric__transport("tcp"), &fabric_tcp);
	cr_assert_eq(fabric__transport("rdma"), &fabric_rdma);
	cr_assert_null(fabric__transport("udp"));
}

/* ---- frames ---- */

static void round_trips(const char *addr)
{
	static const size_t sizes[] = {
		0,    1,    15,	  16,	17,
		63,   64,   65,	  255,	256,
		1000, 1024, 4095, 4096, 4096 + FABRIC_HDR_SIZE,
		5000, 8191, FABRIC_MAX_PAYLOAD,
	};
	struct srv *s = srv_start(addr, NULL);
	struct fabric_conn *c = dial(fabric__listener_addr(s->l), VM_A, key_a);

	cr_assert_eq(fabric__vm_id(c), VM_A);
	cr_assert_eq(fabric__version(c), FABRIC_VERSION);
	cr_assert_str_eq(fabric__peer(c), fabric__listener_addr(s->l));
	for (int k = 0; k < 3; k++)
		for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++)
			ping(c, sizes[i], i + k * 100);
	/* many in flight at once, of every size, still in order */
	for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
		uint8_t p[FABRIC_MAX_PAYLOAD];

		fill(p, sizes[i], i);
		cr_assert_eq(fabric__send(c, T_ECHO, p, sizes[i]), 0);
	}
	for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
		uint8_t p[FABRIC_MAX_PAYLOAD], q[FABRIC_MAX_PAYLOAD];
		uint16_t type;
		size_t len;

		fill(p, sizes[i], i);
		cr_assert_eq(fabric__recv(c, 3000, &type, q, sizeof(q), &len),
			     0);
		cr_assert_eq(len, sizes[i]);
		cr_assert(!memcmp(p, q, len));
	}
	/* the server's side, seen from there */
	pthread_mutex_lock(&s->m);
	cr_assert_eq(s->n, 1);
	cr_assert_eq(fabric__vm_id(s->conns[0]), VM_A);
	pthread_mutex_unlock(&s->m);

	/* an orderly close is reported as one, not as a loss */
	fabric__close(c);
	cr_assert(srv_wait_down(s, 1, 2000));
	cr_assert_eq(s->down_err, 0, "%s", s->down_why);
	cr_assert(strstr(s->down_why, "closed the connection"), "%s",
		  s->down_why);
	srv_stop(s);
}

Test(fabric_tcp, frames_ipv4, .init = setup)
{
	round_trips("127.0.0.1:0");
}

Test(fabric_tcp, frames_ipv6, .init = setup)
{
	round_trips("[::1]:0");
}

Test(fabric_tcp, misuse, .init = setup)
{
	struct srv *s = srv_start("127.0.0.1:0", NULL);
	struct fabric_conn *c = dial(fabric__listener_addr(s->l), VM_A, key_a);
	uint8_t big[FABRIC_MAX_PAYLOAD + 1] = { 0 };
	uint16_t type;
	size_t len;

	cr_assert_eq(fabric__send(c, FABRIC_MSG_HEARTBEAT, NULL, 0),
		     FABRIC_E_TYPE);
	cr_assert_eq(fabric__send(c, FABRIC_MSG_END, NULL, 0), FABRIC_E_TYPE);
	cr_assert_eq(fabric__send(c, T_ECHO, big, sizeof(big)),
		     FABRIC_E_SPACE);
	cr_assert_eq(fabric__start(c, NULL), FABRIC_E_STATE);
	cr_assert_eq(fabric__recv(c, 50, &type, big, sizeof(big), &len),
		     -ETIMEDOUT);
	/* a frame too big for the caller's buffer is dropped, not cut */
	cr_assert_eq(fabric__send(c, T_ECHO, big, 100), 0);
	cr_assert_eq(fabric__recv(c, 3000, &type, big, 10, &len),
		     FABRIC_E_SPACE);
	cr_assert_eq(len, 100);
	ping(c, 10, 1);

	/* the server goes: sends fail, receives say why */
	srv_stop(s);
	cr_assert_eq(fabric__recv(c, 3000, &type, big, sizeof(big), &len),
		     -EPIPE);
	cr_assert(strstr(fabric__down_why(c), "closed the connection"), "%s",
		  fabric__down_why(c));
	cr_assert_eq(fabric__send(c, T_ECHO, big, 1), -EPIPE);
	fabric__close(c);
}

Test(fabric_tcp, burst_in_order, .init = setup)
{
	struct srv *s = srv_start("127.0.0.1:0", NULL);
	struct fabric_conn *c = dial(fabric__listener_addr(s->l), VM_A, key_a);
	uint8_t p[64] = { 0 };
	uint64_t r[2];
	uint16_t type;
	size_t len;
	int64_t t0 = fabric__now_ms();

	for (uint64_t i = 0; i < BURST; i++) {
		memcpy(p, &i, sizeof(i));
		cr_assert_eq(fabric__send(c, T_BURST, p, 8 + i % 57), 0);
	}
	cr_assert_eq(fabric__send(c, T_BURST_END, NULL, 0), 0);
	cr_assert_eq(fabric__recv(c, 10000, &type, r, sizeof(r), &len), 0,
		     "%s", fabric__down_why(c));
	cr_assert_eq(type, T_BURST_END);
	cr_assert_eq(r[0], BURST, "%llu arrived", (unsigned long long)r[0]);
	cr_assert_eq(r[1], 0, "out of order");
	cr_log_info("fabric tcp: %d small frames in %lld ms", BURST,
		    (long long)(fabric__now_ms() - t0));
	fabric__close(c);
	srv_stop(s);
}

Test(fabric_tcp, slow_reader, .init = setup)
{
	enum { FRAMES = 1500 }; /* 12 MiB: more than the sockets hold */
	/* our side waits out the server's stall (it sends no heartbeats) */
	struct fabric_opts patient = { .dead_ms = 5000 };
	struct srv *s = srv_start("127.0.0.1:0", NULL);
	struct fabric_conn *c =
		dial_opts(fabric__listener_addr(s->l), VM_A, key_a, &patient);
	static uint8_t p[FABRIC_MAX_PAYLOAD];
	struct fabric_stats st;
	uint64_t r[2];
	uint16_t type;
	size_t len;
	int64_t t0 = fabric__now_ms();

	for (uint64_t i = 0; i < FRAMES; i++) {
		memcpy(p, &i, sizeof(i));
		cr_assert_eq(fabric__send(c, T_SLOW, p, sizeof(p)), 0);
	}
	cr_assert_eq(fabric__send(c, T_BURST_END, NULL, 0), 0);
	cr_assert_eq(fabric__recv(c, 10000, &type, r, sizeof(r), &len), 0,
		     "%s", fabric__down_why(c));
	cr_assert_eq(r[0], FRAMES, "%llu arrived", (unsigned long long)r[0]);
	cr_assert_eq(r[1], 0, "out of order");
	fabric__stats(c, &st);
	cr_assert_eq(s->downs, 0, "%s", s->down_why);
	cr_log_info("fabric tcp: %d frames of 8 KiB to a stalled reader in "
		    "%lld ms, %llu writes",
		    FRAMES, (long long)(fabric__now_ms() - t0),
		    (unsigned long long)st.tx_writes);
	/* frames queued behind a full socket leave together */
	cr_assert_lt(st.tx_writes, st.tx_frames);
	fabric__close(c);
	srv_stop(s);
}

struct sender {
	struct fabric_conn *c;
	uint64_t id;
};

static void *send_many(void *arg)
{
	struct sender *sd = arg;

	for (uint64_t i = 0; i < BURST / SENDERS; i++) {
		uint64_t who[2] = { sd->id, i };

		if (fabric__send(sd->c, T_MULTI, who, sizeof(who)))
			return (void *)1;
	}
	return NULL;
}

/* Threads sending on one connection at once: each one's frames arrive in
 * its order, and while one thread writes, the others' frames queue and
 * leave together. */
Test(fabric_tcp, concurrent_senders, .init = setup)
{
	struct srv *s = srv_start("127.0.0.1:0", NULL);
	struct fabric_conn *c = dial(fabric__listener_addr(s->l), VM_A, key_a);
	struct sender sd[SENDERS];
	pthread_t th[SENDERS];
	struct fabric_stats st;
	uint64_t r[SENDERS + 1];
	uint16_t type;
	size_t len;

	for (int i = 0; i < SENDERS; i++) {
		sd[i] = (struct sender){ c, i };
		cr_assert_eq(pthread_create(&th[i], NULL, send_many, &sd[i]),
			     0);
	}
	for (int i = 0; i < SENDERS; i++) {
		void *ret;

		pthread_join(th[i], &ret);
		cr_assert_null(ret);
	}
	cr_assert_eq(fabric__send(c, T_COUNT, NULL, 0), 0);
	cr_assert_eq(fabric__recv(c, 10000, &type, r, sizeof(r), &len), 0);
	for (int i = 0; i < SENDERS; i++)
		cr_assert_eq(r[i], BURST / SENDERS, "sender %d: %llu", i,
			     (unsigned long long)r[i]);
	cr_assert_eq(r[SENDERS], 0, "out of order");
	fabric__stats(c, &st);
	cr_log_info("fabric tcp: %d senders, %llu frames in %llu writes",
		    SENDERS, (unsigned long long)st.tx_frames,
		    (unsigned long long)st.tx_writes);
	fabric__close(c);
	srv_stop(s);
}

Test(fabric_tcp, listener_close, .init = setup)
{
	struct fabric_opts o = { .key_for = key_for };
	struct fabric_listener *l;
	struct fabric_conn *c;
	char why[FABRIC_WHY_SIZE];
	uint8_t b[16];
	uint16_t type;
	size_t len;

	cr_assert_eq(fabric__listen("[::1]:0", &o, &l, why, sizeof(why)), 0);
	/* one handshake in progress (a peer that says nothing) and one
	 * done but never accepted */
	int fd = raw_connect(fabric__listener_addr(l));
	c = dial(fabric__listener_addr(l), VM_A, key_a);
	usleep(100 * 1000);
	int64_t t0 = fabric__now_ms();
	fabric__listener_close(l);
	cr_assert_lt(fabric__now_ms() - t0, 1000);
	cr_assert(raw_closed(fd, 1000));
	close(fd);
	cr_assert_lt(fabric__recv(c, 3000, &type, b, sizeof(b), &len), 0);
	cr_assert(strstr(fabric__down_why(c), "connection lost"), "%s",
		  fabric__down_why(c));
	fabric__close(c);
}

/* ---- the handshake's refusals ---- */

Test(fabric_tcp, wrong_key, .init = setup)
{
	struct srv *s = srv_start("127.0.0.1:0", NULL);
	struct fabric_conn *c;
	char why[FABRIC_WHY_SIZE];

	cr_assert_eq(fabric__connect(fabric__listener_addr(s->l), VM_A, key_b,
				     NULL, &c, why, sizeof(why)),
		     FABRIC_E_KEY);
	cr_assert_null(c);
	cr_assert(strstr(why, fabric__listener_addr(s->l)), "%s", why);
	cr_assert(strstr(why, "does not hold VM 0xa11ce's key"), "%s", why);
	cr_assert(logged("handshake refused: the peer does not hold VM "
			 "0xa11ce's key",
			 "127.0.0.1:", NULL, 2000));

	/* a VM this host does not serve looks the same from outside */
	cr_assert_eq(fabric__connect(fabric__listener_addr(s->l), VM_C, key_a,
				     NULL, &c, why, sizeof(why)),
		     FABRIC_E_KEY);
	cr_assert(strstr(why, "does not hold VM 0xc0ffee's key"), "%s", why);
	cr_assert(logged("VM 0xc0ffee is not served here", NULL, NULL, 2000));

	/* and the right key still works, for either VM */
	struct fabric_conn *a = dial(fabric__listener_addr(s->l), VM_A, key_a);
	struct fabric_conn *b = dial(fabric__listener_addr(s->l), VM_B, key_b);
	ping(a, 100, 1);
	ping(b, 100, 2);
	fabric__close(a);
	fabric__close(b);
	srv_stop(s);
}

Test(fabric_tcp, version_mismatch, .init = setup)
{
	struct fabric_opts future = { .key_for = key_for,
				      .version_min = 2,
				      .version_max = 3 };
	struct fabric_opts both = { .key_for = key_for,
				    .version_min = 1,
				    .version_max = 2 };
	struct srv *s = srv_start("127.0.0.1:0", &future);
	struct fabric_conn *c;
	char why[FABRIC_WHY_SIZE];

	cr_assert_eq(fabric__connect(fabric__listener_addr(s->l), VM_A, key_a,
				     NULL, &c, why, sizeof(why)),
		     FABRIC_E_VERSION);
	cr_assert(strstr(why, "protocol version mismatch: this side speaks 1, "
			      "the host 2..3"),
		  "%s", why);
	cr_assert(logged("protocol version mismatch: the peer speaks 1, this "
			 "host 2..3",
			 NULL, NULL, 2000));
	srv_stop(s);

	/* adjacent releases agree on the older one */
	s = srv_start("127.0.0.1:0", &both);
	c = dial(fabric__listener_addr(s->l), VM_A, key_a);
	cr_assert_eq(fabric__version(c), 1);
	ping(c, 64, 3);
	fabric__close(c);
	srv_stop(s);
}

Test(fabric_tcp, refused_and_timeouts, .init = setup)
{
	struct fabric_opts quick = { .timeout_ms = 300, .key_for = key_for };
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	struct fabric_conn *c;
	char why[FABRIC_WHY_SIZE], addr[64];
	int fd, r;

	/* a port nothing listens on */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sl), 0);
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	fabric__format_addr((struct sockaddr *)&sa, addr, sizeof(addr));
	close(fd);
	cr_assert_eq(fabric__connect(addr, VM_A, key_a, &quick, &c, why,
				     sizeof(why)),
		     -ECONNREFUSED);
	cr_assert(strstr(why, "connection refused"), "%s", why);
	cr_assert(strstr(why, addr), "%s", why);

	/* a listener that never answers the HELLO */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_port = 0;
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(fd, 8), 0);
	sl = sizeof(sa);
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	fabric__format_addr((struct sockaddr *)&sa, addr, sizeof(addr));
	int64_t t0 = fabric__now_ms();
	cr_assert_eq(fabric__connect(addr, VM_A, key_a, &quick, &c, why,
				     sizeof(why)),
		     -ETIMEDOUT);
	int64_t dt = fabric__now_ms() - t0;
	cr_assert(strstr(why, "handshake timed out after 300 ms waiting for "
			      "HELLO_REPLY"),
		  "%s", why);
	cr_assert(dt >= 250 && dt < 1500, "%lld ms", (long long)dt);

	/* a listener whose queue is full: the connect itself times out
	 * (SYNs dropped), where the kernel does that */
	int q = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_port = 0;
	cr_assert_eq(bind(q, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(q, 0), 0);
	sl = sizeof(sa);
	getsockname(q, (struct sockaddr *)&sa, &sl);
	fabric__format_addr((struct sockaddr *)&sa, addr, sizeof(addr));
	int fill1 = raw_connect(addr);
	int fill2 = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	connect(fill2, (struct sockaddr *)&sa, sizeof(sa));
	r = fabric__connect(addr, VM_A, key_a, &quick, &c, why, sizeof(why));
	cr_assert_eq(r, -ETIMEDOUT, "%s", why);
	cr_assert(strstr(why, "timed out after 300 ms"), "%s", why);
	close(fill1);
	close(fill2);
	close(q);
	close(fd);

	/* the responder bounds it too: a peer that connects and says
	 * nothing is dropped and logged */
	struct srv *s = srv_start("127.0.0.1:0", &quick);
	char me[64];
	fd = raw_connect(fabric__listener_addr(s->l));
	local_name(fd, me, sizeof(me));
	cr_assert(raw_closed(fd, 2000));
	cr_assert(logged(me, "handshake timed out after 300 ms waiting for "
			     "HELLO",
			 NULL, 2000));
	close(fd);
	srv_stop(s);
}

/* ---- attackers next to a legitimate connection ---- */

struct scene {
	struct srv *s;
	struct fabric_conn *legit;
	unsigned pings;
};

static void scene_start(struct scene *sc)
{
	sc->s = srv_start("127.0.0.1:0", NULL);
	sc->legit = dial(fabric__listener_addr(sc->s->l), VM_A, key_a);
	ping(sc->legit, 4096, 0);
}

/* The attacker was refused with this reason, logged with its address,
 * and closed; the legitimate connection did not notice. */
static void refused(struct scene *sc, int fd, const char *reason)
{
	char me[64];

	local_name(fd, me, sizeof(me));
	cr_assert(raw_closed(fd, 3000), "not closed: %s", reason);
	cr_assert(logged(me, reason, "connection closed", 3000),
		  "no log line for %s with '%s'", me, reason);
	close(fd);
	ping(sc->legit, 4096, ++sc->pings);
	ping(sc->legit, 0, ++sc->pings);
	cr_assert_str_empty(fabric__down_why(sc->legit));
}

static void scene_end(struct scene *sc)
{
	fabric__close(sc->legit);
	srv_stop(sc->s);
}

Test(fabric_tcp, attacker_garbage, .init = setup)
{
	struct scene sc = { 0 };
	int fd;

	scene_start(&sc);
	fd = raw_connect(fabric__listener_addr(sc.s->l));
	raw_write(fd, "GET / HTTP/1.1\r\n\r\n", 18);
	refused(&sc, fd, "refused HELLO: not a fabric message (bad magic)");

	/* a HELLO's header with a length no handshake message has */
	uint8_t h[FABRIC_HDR_SIZE];
	struct fabric_hdr hd = { .type = FABRIC_MSG_HELLO,
				 .len = FABRIC_MAX_BODY,
				 .vm_id = VM_A };
	fabric__hdr_put(&hd, h);
	fd = raw_connect(fabric__listener_addr(sc.s->l));
	raw_write(fd, h, sizeof(h));
	refused(&sc, fd, "refused HELLO: malformed");

	/* sealed frames before any handshake */
	struct fabric_session fake;
	fabric__session_init(&fake, FABRIC_INITIATOR, VM_A, 1, key_a, key_a);
	fd = raw_connect(fabric__listener_addr(sc.s->l));
	raw_send(fd, &fake, T_ECHO, "hi", 2, NULL);
	refused(&sc, fd, "refused HELLO: message type out of range");

	/* garbage after a good handshake */
	struct fabric_session ses;
	fd = raw_connect(fabric__listener_addr(sc.s->l));
	cr_assert_eq(raw_handshake(fd, VM_A, key_a, &ses, NULL), 0);
	raw_write(fd, "\0\0\0\0garbage garbage garbage garbage", 36);
	refused(&sc, fd, "refused a frame: not a fabric message");
	scene_end(&sc);
}

Test(fabric_tcp, attacker_truncated, .init = setup)
{
	struct scene sc = { 0 };
	struct fabric_session ses;
	uint8_t f[FABRIC_MAX_FRAME], hello[FABRIC_HELLO_SIZE], p[1000] = { 0 };
	struct fabric_hs hs;
	size_t n;
	int fd;

	scene_start(&sc);
	/* half a HELLO, then the attacker hangs up */
	fabric__hs_init(&hs, FABRIC_INITIATOR, 1, 1, NULL);
	fabric__hs_hello(&hs, VM_A, key_a, hello, sizeof(hello), &n);
	fd = raw_connect(fabric__listener_addr(sc.s->l));
	raw_write(fd, hello, 40);
	shutdown(fd, SHUT_WR);
	refused(&sc, fd,
		"truncated HELLO: the peer closed the connection after 40 of "
		"72 bytes");

	/* a frame cut short on an authenticated connection */
	fd = raw_connect(fabric__listener_addr(sc.s->l));
	cr_assert_eq(raw_handshake(fd, VM_A, key_a, &ses, NULL), 0);
	n = raw_seal(&ses, T_ECHO, p, sizeof(p), f);
	raw_write(fd, f, n - 100);
	shutdown(fd, SHUT_WR);
	refused(&sc, fd,
		"truncated frame: the peer closed the connection after 948 of "
		"1048 bytes");

	/* cut short and left hanging: the silence ends it */
	fd = raw_connect(fabric__listener_addr(sc.s->l));
	cr_assert_eq(raw_handshake(fd, VM_A, key_a, &ses, NULL), 0);
	n = raw_seal(&ses, T_ECHO, p, sizeof(p), f);
	raw_write(fd, f, 500);
	refused(&sc, fd, "peer presumed dead");
	scene_end(&sc);
}

Test(fabric_tcp, attacker_foreign_key, .init = setup)
{
	struct scene sc = { 0 };
	struct fabric_session ses, other;
	static const uint8_t k1[FABRIC_KEY_SIZE] = "not a key of any VM here 1";
	static const uint8_t k2[FABRIC_KEY_SIZE] = "not a key of any VM here 2";
	int fd;

	scene_start(&sc);
	/* claims VM A, holds only B's key */
	fd = raw_connect(fabric__listener_addr(sc.s->l));
	cr_assert_eq(raw_handshake(fd, VM_A, key_b, &ses, NULL), FABRIC_E_KEY);
	refused(&sc, fd, "does not hold VM 0xa11ce's key");

	/* holds B's key, and sends a frame addressed to VM A */
	fd = raw_connect(fabric__listener_addr(sc.s->l));
	cr_assert_eq(raw_handshake(fd, VM_B, key_b, &ses, NULL), 0);
	fabric__session_init(&other, FABRIC_INITIATOR, VM_A, 1, k1, k2);
	raw_send(fd, &other, T_ECHO, "into A", 6, NULL);
	refused(&sc, fd, "refused a frame: message for another VM");

	/* a frame for B under a key that is not this session's */
	fd = raw_connect(fabric__listener_addr(sc.s->l));
	cr_assert_eq(raw_handshake(fd, VM_B, key_b, &ses, NULL), 0);
	fabric__session_init(&other, FABRIC_INITIATOR, VM_B, 1, k1, k2);
	raw_send(fd, &other, T_ECHO, "forged", 6, NULL);
	refused(&sc, fd, "refused a frame: frame failed authentication");

	/* a bit flipped in flight */
	uint8_t f[FABRIC_MAX_FRAME];
	fd = raw_connect(fabric__listener_addr(sc.s->l));
	cr_assert_eq(raw_handshake(fd, VM_B, key_b, &ses, NULL), 0);
	size_t n = raw_seal(&ses, T_ECHO, "payload", 7, f);
	f[FABRIC_HDR_SIZE + 3] ^= 0x20;
	raw_write(fd, f, n);
	refused(&sc, fd, "refused a frame: frame failed authentication");

	/* and a transport message the user's side never sends */
	fd = raw_connect(fabric__listener_addr(sc.s->l));
	cr_assert_eq(raw_handshake(fd, VM_B, key_b, &ses, NULL), 0);
	raw_send(fd, &ses, FABRIC_MSG_RDMA_PARAMS, NULL, 0, NULL);
	refused(&sc, fd, "transport message 0x12 out of place");
	scene_end(&sc);
}

/*
 * A man in the middle: relays a real client's session to the server,
 * whole messages at a time, keeping a copy of what the client sent, and
 * can slip extra bytes into the stream between two messages.
 */
struct relay {
	int lfd, cfd, sfd;
	char addr[64], to[64];
	pthread_t thread;
	pthread_mutex_t m;
	struct tape tape;
	uint8_t pend[FABRIC_MAX_FRAME * 2];
	size_t plen;
	int quit[2];
};

static void *relay_thread(void *arg)
{
	struct relay *r = arg;
	uint8_t b[65536];
	struct pollfd p[3];

	r->cfd = accept(r->lfd, NULL, NULL);
	r->sfd = try_connect(r->to);
	if (r->cfd < 0 || r->sfd < 0)
		return NULL;
	p[0] = (struct pollfd){ .fd = r->cfd, .events = POLLIN };
	p[1] = (struct pollfd){ .fd = r->sfd, .events = POLLIN };
	p[2] = (struct pollfd){ .fd = r->quit[0], .events = POLLIN };
	while (poll(p, 3, -1) > 0 && !p[2].revents) {
		if (p[1].revents) {
			ssize_t n = recv(r->sfd, b, sizeof(b), 0);
			if (n <= 0)
				break;
			send(r->cfd, b, n, MSG_NOSIGNAL);
		}
		if (p[0].revents) {
			ssize_t n = recv(r->cfd, r->pend + r->plen,
					 sizeof(r->pend) - r->plen, 0);
			if (n <= 0)
				break;
			r->plen += n;
			/* forward whole messages only */
			for (;;) {
				struct fabric_hdr h;
				size_t need;
				int e = fabric__peek(r->pend, r->plen, &h,
						     &need);
				if (e != FABRIC_OK)
					break;
				pthread_mutex_lock(&r->m);
				if (h.type >= FABRIC_MSG_SEALED &&
				    r->tape.frames < 16)
					r->tape.frame_at[r->tape.frames++] =
						r->tape.len;
				if (r->tape.len + need <= sizeof(r->tape.b)) {
					memcpy(r->tape.b + r->tape.len, r->pend,
					       need);
					r->tape.len += need;
				}
				send(r->sfd, r->pend, need, MSG_NOSIGNAL);
				pthread_mutex_unlock(&r->m);
				memmove(r->pend, r->pend + need,
					r->plen - need);
				r->plen -= need;
			}
		}
	}
	shutdown(r->cfd, SHUT_RDWR);
	shutdown(r->sfd, SHUT_RDWR);
	return NULL;
}

static void relay_start(struct relay *r, const char *to)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);

	memset(r, 0, sizeof(*r));
	r->cfd = r->sfd = -1;
	snprintf(r->to, sizeof(r->to), "%s", to);
	pthread_mutex_init(&r->m, NULL);
	cr_assert_eq(pipe(r->quit), 0);
	r->lfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(bind(r->lfd, (struct sockaddr *)&sa, sl), 0);
	cr_assert_eq(listen(r->lfd, 1), 0);
	getsockname(r->lfd, (struct sockaddr *)&sa, &sl);
	fabric__format_addr((struct sockaddr *)&sa, r->addr, sizeof(r->addr));
	cr_assert_eq(pthread_create(&r->thread, NULL, relay_thread, r), 0);
}

static void relay_stop(struct relay *r)
{
	cr_assert_eq(write(r->quit[1], "q", 1), 1);
	pthread_join(r->thread, NULL);
	close(r->cfd);
	close(r->sfd);
	close(r->lfd);
	close(r->quit[0]);
	close(r->quit[1]);
}

Test(fabric_tcp, attacker_replay, .init = setup)
{
	struct scene sc = { 0 };
	struct relay r;
	struct fabric_conn *c;
	struct tape t;
	char me[64];
	int fd;

	scene_start(&sc);
	relay_start(&r, fabric__listener_addr(sc.s->l));
	c = dial(r.addr, VM_A, key_a);
	for (int i = 0; i < 4; i++)
		ping(c, 100 + i, i);
	pthread_mutex_lock(&r.m);
	t = r.tape;
	pthread_mutex_unlock(&r.m);
	cr_assert_geq(t.frames, 4);

	/* the whole recorded session, replayed on a new connection: the
	 * server's fresh nonce makes the old AUTH worthless */
	fd = raw_connect(fabric__listener_addr(sc.s->l));
	raw_write(fd, t.b, t.len);
	refused(&sc, fd, "does not hold VM 0xa11ce's key");

	/* a recorded frame slipped into the live session: out of sequence,
	 * and the session it was slipped into is closed */
	local_name(r.sfd, me, sizeof(me));
	pthread_mutex_lock(&r.m);
	size_t at = t.frame_at[1], len = t.frame_at[2] - at;
	send(r.sfd, t.b + at, len, MSG_NOSIGNAL);
	pthread_mutex_unlock(&r.m);
	cr_assert(logged(me,
			 "refused a frame: sequence number out of order "
			 "(replayed or reordered frame)",
			 "connection closed", 3000));
	uint16_t type;
	size_t got;
	uint8_t b[64];
	cr_assert_neq(fabric__recv(c, 3000, &type, b, sizeof(b), &got), 0);
	ping(sc.legit, 4096, 99);
	fabric__close(c);
	relay_stop(&r);
	scene_end(&sc);
}

/* ---- liveness ---- */

/* A raw peer that keeps its own side alive and counts the heartbeats
 * the server sends an idle connection. */
Test(fabric_tcp, heartbeats, .init = setup)
{
	struct srv *s = srv_start("127.0.0.1:0", NULL);
	struct fabric_session ses;
	struct fabric_msg m;
	uint8_t p[FABRIC_MAX_PAYLOAD];
	int fd = raw_connect(fabric__listener_addr(s->l)), beats = 0;
	int64_t t0, last_tx;

	cr_assert_eq(raw_handshake(fd, VM_A, key_a, &ses, NULL), 0);
	t0 = last_tx = fabric__now_ms();
	while (fabric__now_ms() - t0 < 1200) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };

		if (fabric__now_ms() - last_tx >= 200) {
			raw_send(fd, &ses, FABRIC_MSG_HEARTBEAT, NULL, 0, NULL);
			last_tx = fabric__now_ms();
		}
		if (poll(&pf, 1, 20) <= 0)
			continue;
		cr_assert_eq(raw_recv(fd, &ses, &m, p), 0);
		cr_assert_eq(m.type, FABRIC_MSG_HEARTBEAT);
		beats++;
	}
	cr_assert(beats >= 4 && beats <= 8, "%d heartbeats in 1.2 s", beats);
	close(fd);
	srv_stop(s);

	/* two idle fabric ends keep each other up */
	s = srv_start("127.0.0.1:0", NULL);
	struct fabric_conn *c = dial(fabric__listener_addr(s->l), VM_A, key_a);
	usleep(1500 * 1000);
	cr_assert_str_empty(fabric__down_why(c));
	cr_assert_eq(s->downs, 0);
	ping(c, 64, 1);
	fabric__close(c);
	srv_stop(s);
}

struct downs {
	pthread_mutex_t m;
	pthread_cond_t cv;
	int n, err;
	int64_t at;
	char why[FABRIC_WHY_SIZE];
};

static void on_down(struct fabric_conn *c, int err, const char *why,
		    void *arg)
{
	struct downs *d = arg;

	pthread_mutex_lock(&d->m);
	d->n++;
	d->err = err;
	d->at = fabric__now_ms();
	snprintf(d->why, sizeof(d->why), "%s", why);
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->m);
}

static void ignore(struct fabric_conn *c, uint16_t type, const void *p,
		   size_t len, void *arg)
{
}

static bool wait_downs(struct downs *d, int ms)
{
	struct timespec ts;

	deadline(&ts, ms);
	pthread_mutex_lock(&d->m);
	while (!d->n)
		if (pthread_cond_timedwait(&d->cv, &d->m, &ts) == ETIMEDOUT)
			break;
	bool ok = d->n > 0;
	pthread_mutex_unlock(&d->m);
	return ok;
}

/* A responder that completes the handshake by hand, then never says or
 * reads anything again: the initiator gives up on it within a second. */
Test(fabric_tcp, silent_peer, .init = setup)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6,
				   .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	socklen_t sl = sizeof(sa);
	struct downs d = { .m = PTHREAD_MUTEX_INITIALIZER,
			   .cv = PTHREAD_COND_INITIALIZER };
	struct fabric_handler h = { ignore, on_down, &d };
	struct fabric_conn *c;
	char addr[64], why[FABRIC_WHY_SIZE];
	int l = socket(AF_INET6, SOCK_STREAM, 0);

	cr_assert_eq(bind(l, (struct sockaddr *)&sa, sl), 0);
	cr_assert_eq(listen(l, 1), 0);
	getsockname(l, (struct sockaddr *)&sa, &sl);
	fabric__format_addr((struct sockaddr *)&sa, addr, sizeof(addr));

	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (!pid) {
		struct fabric_hs hs;
		struct fabric_session s;
		uint8_t in[FABRIC_HELLO_SIZE], out[FABRIC_REPLY_SIZE];
		size_t used, n;
		int fd = accept(l, NULL, NULL);

		if (!raw_read(fd, in, FABRIC_HELLO_SIZE) ||
		    fabric__hs_init(&hs, FABRIC_RESPONDER, 1, 1, NULL) ||
		    fabric__hs_reply(&hs, key_a, in, sizeof(in), &used, out,
				     sizeof(out), &n))
			_exit(1);
		send(fd, out, n, MSG_NOSIGNAL);
		if (!raw_read(fd, in, FABRIC_AUTH_SIZE) ||
		    fabric__hs_accept(&hs, in, FABRIC_AUTH_SIZE, &used, &s))
			_exit(1);
		pause();
		_exit(0);
	}
	cr_assert_eq(fabric__connect(addr, VM_A, key_a, NULL, &c, why,
				     sizeof(why)),
		     0, "%s", why);
	int64_t t0 = fabric__now_ms();
	cr_assert_eq(fabric__start(c, &h), 0);
	cr_assert(wait_downs(&d, 3000));
	int64_t dt = d.at - t0;
	cr_log_info("fabric tcp: silent peer declared dead after %lld ms",
		    (long long)dt);
	cr_assert_eq(d.err, -ETIMEDOUT, "%d %s", d.err, d.why);
	cr_assert(strstr(d.why, "peer presumed dead"), "%s", d.why);
	cr_assert(dt < 1000, "%lld ms", (long long)dt);
	cr_assert(logged(addr, "peer presumed dead", NULL, 1000));
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	fabric__close(c);
	close(l);
}

/* A real peer in another process, stopped (SIGSTOP: its kernel still
 * ACKs, only heartbeats tell), then one killed (the connection drops). */
static pid_t child_peer(const char *addr)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (!pid) {
		struct fabric_conn *c;
		uint8_t b[FABRIC_MAX_PAYLOAD];
		uint16_t type;
		size_t len;

		if (fabric__connect(addr, VM_B, key_b, NULL, &c, NULL, 0) ||
		    fabric__start(c, NULL))
			_exit(1);
		while (!fabric__recv(c, -1, &type, b, sizeof(b), &len))
			fabric__send(c, T_REPLY, b, len);
		_exit(0);
	}
	return pid;
}

static void dead_peer(int sig, int within_ms, const char *reason)
{
	struct srv *s = srv_start("127.0.0.1:0", NULL);
	pid_t pid = child_peer(fabric__listener_addr(s->l));
	struct timespec ts;

	deadline(&ts, 5000);
	pthread_mutex_lock(&s->m);
	while (!s->n)
		cr_assert_neq(pthread_cond_timedwait(&s->cv, &s->m, &ts),
			      ETIMEDOUT);
	pthread_mutex_unlock(&s->m);
	usleep(300 * 1000); /* heartbeats have gone both ways */
	cr_assert_eq(s->downs, 0);

	int64_t t0 = fabric__now_ms();
	kill(pid, sig);
	cr_assert(srv_wait_down(s, 1, 3000));
	int64_t dt = s->down_ms - t0;
	cr_log_info("fabric tcp: peer %s noticed after %lld ms",
		    sig == SIGSTOP ? "stopped" : "killed", (long long)dt);
	cr_assert(strstr(s->down_why, reason), "%s", s->down_why);
	cr_assert(dt < within_ms, "%lld ms: %s", (long long)dt, s->down_why);
	cr_assert(logged(reason, "VM 0xb0b", NULL, 1000));
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	srv_stop(s);
}

Test(fabric_tcp, stopped_peer, .init = setup)
{
	dead_peer(SIGSTOP, 1000, "no frame or heartbeat for");
}

Test(fabric_tcp, killed_peer, .init = setup)
{
	dead_peer(SIGKILL, 300, "connection lost");
}

/* ---- the round trip ---- */

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

enum { WARM = 100, N = 2000 };

/* Handler to handler: each reply's arrival sends the next request from
 * the I/O thread, the way a DSM that serves faults in its handler would
 * run. */
struct pingpong {
	pthread_mutex_t m;
	pthread_cond_t cv;
	bool done;
	size_t size;
	int i;
	int64_t t0, t[N];
	uint8_t buf[4096];
};

static void pong(struct fabric_conn *c, uint16_t type, const void *p,
		 size_t len, void *arg)
{
	struct pingpong *pp = arg;
	int64_t now = now_ns();

	if (pp->i >= WARM)
		pp->t[pp->i - WARM] = now - pp->t0;
	if (++pp->i < WARM + N) {
		pp->t0 = now_ns();
		fabric__send(c, T_ECHO, pp->buf, pp->size);
		return;
	}
	pthread_mutex_lock(&pp->m);
	pp->done = true;
	pthread_cond_signal(&pp->cv);
	pthread_mutex_unlock(&pp->m);
}

/* The floor: the same exchange on plain blocking sockets, no fabric. */
static int floor_fd;

static void *floor_echo(void *arg)
{
	uint8_t b[4096];
	size_t size = *(size_t *)arg;

	for (;;) {
		if (!raw_read(floor_fd, b, size))
			return NULL;
		send(floor_fd, b, size, MSG_NOSIGNAL);
	}
}

static void report(const char *what, size_t size, int64_t *t)
{
	qsort(t, N, sizeof(*t), cmp64);
	cr_log_info("fabric tcp loopback round trip %-18s %4zu B: p50 %5.1f "
		    "us, p99 %6.1f us",
		    what, size, t[N / 2] / 1e3, t[N * 99 / 100] / 1e3);
}

Test(fabric_tcp, round_trip_latency, .init = setup)
{
	static const size_t sizes[] = { 64, 256, 1024, 4096 };
	static struct pingpong pp = { .m = PTHREAD_MUTEX_INITIALIZER,
				      .cv = PTHREAD_COND_INITIALIZER };
	static int64_t t[N];
	struct srv *s = srv_start("127.0.0.1:0", NULL);
	uint8_t out[4096], in[4096];

	fill(out, sizeof(out), 5);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(*sizes); k++) {
		size_t size = sizes[k];

		/* the floor */
		struct sockaddr_in sa = { .sin_family = AF_INET,
					  .sin_addr.s_addr =
						  htonl(INADDR_LOOPBACK) };
		socklen_t sl = sizeof(sa);
		int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
		pthread_t th;

		cr_assert_eq(bind(l, (struct sockaddr *)&sa, sl), 0);
		cr_assert_eq(listen(l, 1), 0);
		getsockname(l, (struct sockaddr *)&sa, &sl);
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sl), 0);
		floor_fd = accept(l, NULL, NULL);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(floor_fd, IPPROTO_TCP, TCP_NODELAY, &one,
			   sizeof(one));
		pthread_create(&th, NULL, floor_echo, &size);
		for (int i = 0; i < WARM + N; i++) {
			int64_t t0 = now_ns();

			raw_write(fd, out, size);
			cr_assert(raw_read(fd, in, size));
			if (i >= WARM)
				t[i - WARM] = now_ns() - t0;
		}
		close(fd);
		pthread_join(th, NULL);
		close(floor_fd);
		close(l);
		report("(plain TCP floor)", size, t);

		/* handler to handler */
		struct fabric_handler h = { pong, NULL, &pp };
		struct fabric_conn *c;
		char why[FABRIC_WHY_SIZE];

		cr_assert_eq(fabric__connect(fabric__listener_addr(s->l), VM_A,
					     key_a, NULL, &c, why, sizeof(why)),
			     0);
		pp.size = size;
		pp.i = 0;
		pp.done = false;
		cr_assert_eq(fabric__start(c, &h), 0);
		pthread_mutex_lock(&pp.m);
		pp.t0 = now_ns();
		cr_assert_eq(fabric__send(c, T_ECHO, pp.buf, size), 0);
		struct timespec ts;
		deadline(&ts, 10000);
		while (!pp.done)
			cr_assert_neq(
				pthread_cond_timedwait(&pp.cv, &pp.m, &ts),
				ETIMEDOUT, "ping-pong stalled at %d", pp.i);
		pthread_mutex_unlock(&pp.m);
		report("(handlers)", size, pp.t);
		fabric__close(c);

		/* a thread that sends and waits in fabric__recv */
		c = dial(fabric__listener_addr(s->l), VM_A, key_a);
		for (int i = 0; i < WARM + N; i++) {
			uint16_t type;
			size_t len;
			int64_t t0 = now_ns();

			cr_assert_eq(fabric__send(c, T_ECHO, out, size), 0);
			cr_assert_eq(fabric__recv(c, 3000, &type, in,
						  sizeof(in), &len),
				     0);
			if (i >= WARM)
				t[i - WARM] = now_ns() - t0;
		}
		report("(fabric__recv)", size, t);
		fabric__close(c);
	}
	srv_stop(s);
}
