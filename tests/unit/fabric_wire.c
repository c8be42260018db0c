// SPDX-License-Identifier: MIT
/*
 * The fabric's wire codec and handshake. Everything a peer sends is
 * untrusted: besides the round trips, every test here truncates, flips,
 * replays, reorders or re-keys messages and expects a refusal, never a
 * crash. Decoders get exact-size heap copies, so the ASan build sees any
 * read past their end.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "fabric/wire.h"

#define VM 0x1234567890abcdefULL
#define T_DATA (FABRIC_MSG_DSM_FIRST + 1)

static const uint8_t vm_key[FABRIC_KEY_SIZE] = "the VM's own 32-byte secret key";
static const uint8_t other_key[FABRIC_KEY_SIZE] = "another VM's 32-byte secret key";
static const uint8_t k_i2r[FABRIC_KEY_SIZE] = "session key, initiator->respond";
static const uint8_t k_r2i[FABRIC_KEY_SIZE] = "session key, responder->initiat";

static uint8_t *dup(const void *p, size_t len)
{
	uint8_t *q = malloc(len ? len : 1);

	cr_assert(q);
	memcpy(q, p, len);
	return q;
}

static void pair(struct fabric_session *i, struct fabric_session *r)
{
	fabric__session_init(i, FABRIC_INITIATOR, VM, FABRIC_VERSION, k_i2r,
			     k_r2i);
	fabric__session_init(r, FABRIC_RESPONDER, VM, FABRIC_VERSION, k_i2r,
			     k_r2i);
}

static void fill(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t k = 0; k < len; k++)
		p[k] = (uint8_t)(k * 131 + seed * 7 + (k >> 8));
}

static size_t seal(struct fabric_session *s, size_t len, unsigned seed,
		   uint8_t *out)
{
	static uint8_t payload[FABRIC_MAX_PAYLOAD];
	size_t n = 0;

	fill(payload, len, seed);
	cr_assert_eq(fabric__seal(s, T_DATA, payload, len, out,
				  FABRIC_MAX_FRAME, &n),
		     FABRIC_OK);
	cr_assert_eq(n, fabric__frame_size(len));
	return n;
}

/* Open from an exact-size copy; the payload buffer is exactly as big as
 * it needs to be too. */
static int open_copy(struct fabric_session *s, const uint8_t *in, size_t len,
		     size_t *used, struct fabric_msg *m, uint8_t *out,
		     size_t cap)
{
	uint8_t *c = dup(in, len);
	int r = fabric__open(s, c, len, used, m, out, cap);

	free(c);
	return r;
}

static bool rejected(int r)
{
	return r != FABRIC_OK && r != FABRIC_E_INCOMPLETE;
}

/* ---- frames ---- */

static void round_trip(size_t len)
{
	struct fabric_session i, r;
	static uint8_t frame[FABRIC_MAX_FRAME], want[FABRIC_MAX_PAYLOAD];
	struct fabric_msg m;
	size_t n, used;

	pair(&i, &r);
	for (unsigned k = 0; k < 4; k++) {
		/* both ways, a few frames each */
		struct fabric_session *tx = k & 1 ? &r : &i;
		struct fabric_session *rx = k & 1 ? &i : &r;
		uint8_t *got = malloc(len ? len : 1);

		n = seal(tx, len, k, frame);
		cr_assert_eq(open_copy(rx, frame, n, &used, &m, got, len),
			     FABRIC_OK, "len %zu frame %u", len, k);
		cr_expect_eq(used, n);
		cr_expect_eq(m.type, T_DATA);
		cr_expect_eq(m.len, len);
		cr_expect_eq(m.seq, k / 2);
		fill(want, len, k);
		cr_expect(!memcmp(got, want, len), "payload differs, len %zu",
			  len);
		/* the payload is not in the clear on the wire */
		if (len >= 16)
			cr_expect(memmem(frame, n, want, 16) == NULL);
		free(got);
	}
}

Test(frame, round_trip_sizes)
{
	round_trip(0);
	round_trip(1);
	round_trip(4096);
	round_trip(FABRIC_MAX_PAYLOAD);
}

Test(frame, seal_refuses)
{
	struct fabric_session i, r;
	static uint8_t buf[FABRIC_MAX_FRAME + 64], p[FABRIC_MAX_PAYLOAD + 1];
	size_t n = 0;

	pair(&i, &r);
	cr_expect_eq(fabric__seal(&i, T_DATA, p, FABRIC_MAX_PAYLOAD + 1, buf,
				  sizeof(buf), &n),
		     FABRIC_E_SPACE);
	cr_expect_eq(fabric__seal(&i, T_DATA, p, 100, buf,
				  fabric__frame_size(100) - 1, &n),
		     FABRIC_E_SPACE);
	cr_expect_eq(fabric__seal(&i, FABRIC_MSG_NONE, p, 1, buf, sizeof(buf),
				  &n),
		     FABRIC_E_TYPE);
	cr_expect_eq(fabric__seal(&i, FABRIC_MSG_HELLO, p, 1, buf,
				  sizeof(buf), &n),
		     FABRIC_E_TYPE);
	cr_expect_eq(fabric__seal(&i, FABRIC_MSG_END, p, 1, buf, sizeof(buf),
				  &n),
		     FABRIC_E_TYPE);
	cr_expect_eq(i.tx_seq, 0, "a refused seal used a sequence number");
	cr_expect_eq(fabric__seal(&i, FABRIC_MSG_END - 1, p, 1, buf,
				  sizeof(buf), &n),
		     FABRIC_OK);
	cr_expect_eq(fabric__seal(&i, FABRIC_MSG_HEARTBEAT, NULL, 0, buf,
				  fabric__frame_size(0), &n),
		     FABRIC_OK);
	cr_expect_eq(i.tx_seq, 2);
}

Test(frame, every_truncation_is_incomplete)
{
	static const size_t lens[] = {0, 1, 100, 4096};
	static uint8_t frame[FABRIC_MAX_FRAME], got[FABRIC_MAX_PAYLOAD];

	for (size_t t = 0; t < sizeof(lens) / sizeof(lens[0]); t++) {
		struct fabric_session i, r;
		struct fabric_msg m;
		size_t n, used;

		pair(&i, &r);
		n = seal(&i, lens[t], t, frame);
		for (size_t cut = 0; cut < n; cut++) {
			used = 0;
			cr_assert_eq(open_copy(&r, frame, cut, &used, &m, got,
					       sizeof(got)),
				     FABRIC_E_INCOMPLETE, "len %zu cut %zu",
				     lens[t], cut);
			cr_assert(used > cut && used <= n,
				  "need %zu for %zu of %zu", used, cut, n);
			if (cut >= FABRIC_HDR_SIZE)
				cr_assert_eq(used, n);
		}
		cr_assert_eq(r.rx_seq, 0);
		cr_assert_eq(open_copy(&r, frame, n, &used, &m, got,
				       sizeof(got)),
			     FABRIC_OK);
	}
}

/* A flipped length can make the frame look longer: a stream reader then
 * waits for more, and what comes (here: noise) must not help it. */
static int open_flipped(struct fabric_session *r, const uint8_t *frame,
			size_t n)
{
	static uint8_t got[FABRIC_MAX_PAYLOAD];
	struct fabric_msg m;
	size_t used;
	int res = open_copy(r, frame, n, &used, &m, got, sizeof(got));

	if (res == FABRIC_E_INCOMPLETE) {
		cr_assert(used > n && used <= FABRIC_MAX_FRAME);
		uint8_t *more = malloc(used);
		memcpy(more, frame, n);
		fill(more + n, used - n, 99);
		res = open_copy(r, more, used, &used, &m, got, sizeof(got));
		free(more);
	}
	return res;
}

Test(frame, every_bit_flip_is_rejected)
{
	static const size_t lens[] = {0, 64};
	uint8_t frame[FABRIC_MAX_FRAME];

	for (size_t t = 0; t < 2; t++) {
		struct fabric_session i, r;
		size_t n;

		pair(&i, &r);
		n = seal(&i, lens[t], 1, frame);
		for (size_t bit = 0; bit < n * 8; bit++) {
			frame[bit / 8] ^= 1 << bit % 8;
			int res = open_flipped(&r, frame, n);
			cr_assert(rejected(res), "len %zu bit %zu: %s",
				  lens[t], bit, fabric__strerror(res));
			frame[bit / 8] ^= 1 << bit % 8;
		}
		cr_assert_eq(r.rx_seq, 0, "a rejected frame moved the session");
		cr_assert_eq(open_flipped(&r, frame, n), FABRIC_OK);
	}
}

Test(frame, replay_and_reorder_are_rejected)
{
	struct fabric_session i, r;
	uint8_t f[3][256], got[64];
	size_t n[3], used;
	struct fabric_msg m;

	pair(&i, &r);
	for (int k = 0; k < 3; k++)
		n[k] = seal(&i, 32, k, f[k]);
	cr_expect_eq(open_copy(&r, f[0], n[0], &used, &m, got, 64), FABRIC_OK);
	cr_expect_eq(open_copy(&r, f[0], n[0], &used, &m, got, 64),
		     FABRIC_E_SEQ, "replayed");
	cr_expect_eq(open_copy(&r, f[2], n[2], &used, &m, got, 64),
		     FABRIC_E_SEQ, "reordered");
	/* refused from its header alone, before the body is there */
	cr_expect_eq(open_copy(&r, f[2], FABRIC_HDR_SIZE, &used, &m, got, 64),
		     FABRIC_E_SEQ);
	cr_expect_eq(open_copy(&r, f[1], n[1], &used, &m, got, 64), FABRIC_OK);
	cr_expect_eq(open_copy(&r, f[1], n[1], &used, &m, got, 64),
		     FABRIC_E_SEQ);
	cr_expect_eq(open_copy(&r, f[0], n[0], &used, &m, got, 64),
		     FABRIC_E_SEQ);
	cr_expect_eq(open_copy(&r, f[2], n[2], &used, &m, got, 64), FABRIC_OK);
	cr_expect_eq(m.seq, 2);
}

/* A forger who rewrites the sequence number to the expected one still
 * fails: the header is authenticated. */
Test(frame, renumbered_replay_fails_authentication)
{
	struct fabric_session i, r;
	uint8_t f[2][128], got[64];
	size_t n[2], used;
	struct fabric_msg m;

	pair(&i, &r);
	n[0] = seal(&i, 16, 0, f[0]);
	n[1] = seal(&i, 16, 1, f[1]);
	cr_assert_eq(open_copy(&r, f[0], n[0], &used, &m, got, 64), FABRIC_OK);
	f[0][16] = 1; /* seq, little-endian */
	cr_expect_eq(open_copy(&r, f[0], n[0], &used, &m, got, 64),
		     FABRIC_E_AUTH);
	cr_expect_eq(open_copy(&r, f[1], n[1], &used, &m, got, 64), FABRIC_OK);
}

Test(frame, other_keys_and_vms_are_rejected)
{
	struct fabric_session i, r, r2;
	uint8_t f[128], got[64];
	size_t n, used;
	struct fabric_msg m;

	pair(&i, &r);
	n = seal(&i, 32, 0, f);
	/* the same VM id under another key */
	fabric__session_init(&r2, FABRIC_RESPONDER, VM, FABRIC_VERSION,
			     other_key, k_r2i);
	cr_expect_eq(open_copy(&r2, f, n, &used, &m, got, 64), FABRIC_E_AUTH);
	/* another VM's session, even with the same keys */
	fabric__session_init(&r2, FABRIC_RESPONDER, VM + 1, FABRIC_VERSION,
			     k_i2r, k_r2i);
	cr_expect_eq(open_copy(&r2, f, n, &used, &m, got, 64), FABRIC_E_VM);
	/* reflected back to its sender: the other direction's key */
	cr_expect_eq(open_copy(&i, f, n, &used, &m, got, 64), FABRIC_E_AUTH);
	/* a session of another version */
	fabric__session_init(&r2, FABRIC_RESPONDER, VM, FABRIC_VERSION + 1,
			     k_i2r, k_r2i);
	cr_expect_eq(open_copy(&r2, f, n, &used, &m, got, 64),
		     FABRIC_E_VERSION);
	/* the payload buffer left untouched by a refusal */
	memset(got, 0xa5, sizeof(got));
	fabric__session_init(&r2, FABRIC_RESPONDER, VM, FABRIC_VERSION,
			     other_key, k_r2i);
	cr_expect_eq(open_copy(&r2, f, n, &used, &m, got, 64), FABRIC_E_AUTH);
	for (int k = 0; k < 32; k++)
		cr_expect(got[k] == 0 || got[k] == 0xa5);
	cr_expect_eq(open_copy(&r, f, n, &used, &m, got, 64), FABRIC_OK);
}

Test(frame, payload_buffer_too_small)
{
	struct fabric_session i, r;
	uint8_t f[256], got[64];
	size_t n, used;
	struct fabric_msg m;

	pair(&i, &r);
	n = seal(&i, 64, 0, f);
	cr_expect_eq(open_copy(&r, f, n, &used, &m, got, 63), FABRIC_E_SPACE);
	cr_expect_eq(r.rx_seq, 0);
	cr_expect_eq(open_copy(&r, f, n, &used, &m, got, 64), FABRIC_OK);
}

Test(frame, stream_of_frames)
{
	struct fabric_session i, r;
	static uint8_t stream[8 * FABRIC_MAX_FRAME], got[FABRIC_MAX_PAYLOAD],
		want[FABRIC_MAX_PAYLOAD];
	static const size_t lens[] = {0, 1, 4096, 17, FABRIC_MAX_PAYLOAD, 3};
	size_t len = 0, at = 0, used;
	struct fabric_msg m;

	pair(&i, &r);
	for (int k = 0; k < 6; k++)
		len += seal(&i, lens[k], k, stream + len);
	/* a byte at a time, as a slow stream delivers it */
	size_t have = 0;
	for (int k = 0; k < 6;) {
		int res = open_copy(&r, stream + at, have, &used, &m, got,
				    sizeof(got));
		if (res == FABRIC_E_INCOMPLETE) {
			cr_assert(at + have < len);
			have++;
			continue;
		}
		cr_assert_eq(res, FABRIC_OK, "frame %d: %s", k,
			     fabric__strerror(res));
		cr_assert_eq(used, have, "frame %d opened early", k);
		cr_assert_eq(m.len, lens[k]);
		fill(want, lens[k], k);
		cr_assert(!memcmp(got, want, lens[k]));
		at += used;
		have = 0;
		k++;
	}
	cr_expect_eq(at, len);
}

Test(frame, garbage_is_invalid_not_incomplete)
{
	struct fabric_session i, r;
	uint8_t f[128], got[64];
	size_t used;
	struct fabric_msg m;
	struct fabric_hdr h;

	pair(&i, &r);
	seal(&i, 8, 0, f);
	/* a wrong first byte is enough */
	uint8_t junk[1] = {'G'};
	cr_expect_eq(open_copy(&r, junk, 1, &used, &m, got, 64),
		     FABRIC_E_MAGIC);
	cr_expect_eq(open_copy(&r, (const uint8_t *)"SLX", 3, &used, &m, got,
			       64),
		     FABRIC_E_MAGIC);
	cr_expect_eq(open_copy(&r, (const uint8_t *)"SLO", 3, &used, &m, got,
			       64),
		     FABRIC_E_INCOMPLETE);
	cr_expect_eq(open_copy(&r, f, 0, &used, &m, got, 64),
		     FABRIC_E_INCOMPLETE);
	/* a length beyond the maximum, known from the header alone */
	h = (struct fabric_hdr){FABRIC_VERSION, T_DATA, FABRIC_MAX_BODY + 1, 0,
				VM};
	fabric__hdr_put(&h, f);
	cr_expect_eq(open_copy(&r, f, FABRIC_HDR_SIZE, &used, &m, got, 64),
		     FABRIC_E_TOO_LONG);
	h.len = UINT32_MAX;
	fabric__hdr_put(&h, f);
	cr_expect_eq(open_copy(&r, f, FABRIC_HDR_SIZE, &used, &m, got, 64),
		     FABRIC_E_TOO_LONG);
	/* shorter than a tag */
	h.len = FABRIC_TAG_SIZE - 1;
	fabric__hdr_put(&h, f);
	cr_expect_eq(open_copy(&r, f, FABRIC_HDR_SIZE + h.len, &used, &m, got,
			       64),
		     FABRIC_E_HEADER);
	/* reserved bits */
	h.len = FABRIC_TAG_SIZE;
	fabric__hdr_put(&h, f);
	f[13] = 1;
	cr_expect_eq(open_copy(&r, f, FABRIC_HDR_SIZE, &used, &m, got, 64),
		     FABRIC_E_HEADER);
	/* a handshake message where a frame belongs */
	h.type = FABRIC_MSG_HELLO;
	fabric__hdr_put(&h, f);
	cr_expect_eq(open_copy(&r, f, FABRIC_HDR_SIZE, &used, &m, got, 64),
		     FABRIC_E_TYPE);
}

Test(frame, header_round_trip)
{
	struct fabric_hdr h = {0xfeed, 0xbeef, FABRIC_MAX_BODY,
			       0x0102030405060708ULL, 0x1112131415161718ULL},
			  g;
	uint8_t b[FABRIC_HDR_SIZE];
	size_t need;

	fabric__hdr_put(&h, b);
	cr_expect(!memcmp(b, FABRIC_MAGIC, 4));
	cr_expect_eq(b[4], 0xed, "little-endian");
	cr_expect_eq(b[16], 0x08);
	cr_expect_eq(fabric__peek(b, sizeof(b), &g, &need),
		     FABRIC_E_INCOMPLETE);
	cr_expect_eq(need, FABRIC_MAX_FRAME);
	cr_expect(g.version == h.version && g.type == h.type &&
		  g.len == h.len && g.seq == h.seq && g.vm_id == h.vm_id);
}

Test(frame, sequence_numbers_run_out)
{
	struct fabric_session i, r;
	uint8_t f[128], got[16];
	size_t n, used;
	struct fabric_msg m;

	pair(&i, &r);
	i.tx_seq = r.rx_seq = UINT64_MAX - 1;
	n = seal(&i, 8, 0, f);
	cr_expect_eq(open_copy(&r, f, n, &used, &m, got, 16), FABRIC_OK);
	cr_expect_eq(m.seq, UINT64_MAX - 1);
	cr_expect_eq(fabric__seal(&i, T_DATA, got, 8, f, sizeof(f), &n),
		     FABRIC_E_EXHAUSTED);
	cr_expect_eq(open_copy(&r, f, n, &used, &m, got, 16),
		     FABRIC_E_EXHAUSTED);
}

Test(frame, strerror_is_one_line_per_code)
{
	for (int e = 0; e < FABRIC_E_COUNT; e++) {
		const char *s = fabric__strerror(e);

		cr_expect(s && s[0] && !strchr(s, '\n'), "code %d", e);
		for (int f = 0; f < e; f++)
			cr_expect(strcmp(s, fabric__strerror(f)), "%d = %d",
				  e, f);
	}
	cr_expect_str_eq(fabric__strerror(-1), "unknown fabric error");
	cr_expect_str_eq(fabric__strerror(FABRIC_E_COUNT),
			 "unknown fabric error");
}

/* ---- handshake ---- */

struct hs_run {
	struct fabric_hs i, r;
	struct fabric_session si, sr;
	uint8_t hello[FABRIC_HELLO_SIZE], reply[FABRIC_REPLY_SIZE],
		auth[FABRIC_AUTH_SIZE];
	int hello_r, reply_r, confirm_r, accept_r;
};

static const uint8_t nonce_i[FABRIC_NONCE_SIZE] = "initiator's nonce";
static const uint8_t nonce_r[FABRIC_NONCE_SIZE] = "responder's nonce";

/* A whole handshake; nonces fixed if asked (NULL: random). Stops at the
 * first failure, whose code stays in its step's field. */
static void handshake(struct hs_run *x, uint16_t imin, uint16_t imax,
		      const uint8_t *ikey, uint16_t rmin, uint16_t rmax,
		      const uint8_t *rkey, bool fixed)
{
	size_t n, used;
	uint8_t *c;

	memset(x, 0, sizeof(*x));
	x->hello_r = x->reply_r = x->confirm_r = x->accept_r = -1;
	cr_assert_eq(fabric__hs_init(&x->i, FABRIC_INITIATOR, imin, imax,
				     fixed ? nonce_i : NULL),
		     FABRIC_OK);
	cr_assert_eq(fabric__hs_init(&x->r, FABRIC_RESPONDER, rmin, rmax,
				     fixed ? nonce_r : NULL),
		     FABRIC_OK);
	x->hello_r = fabric__hs_hello(&x->i, VM, ikey, x->hello,
				      sizeof(x->hello), &n);
	cr_assert_eq(x->hello_r, FABRIC_OK);
	cr_assert_eq(n, FABRIC_HELLO_SIZE);

	c = dup(x->hello, sizeof(x->hello));
	x->reply_r = fabric__hs_reply(&x->r, rkey, c, sizeof(x->hello), &used,
				      x->reply, sizeof(x->reply), &n);
	free(c);
	if (x->reply_r != FABRIC_OK && x->reply_r != FABRIC_E_VERSION)
		return;
	cr_assert_eq(n, FABRIC_REPLY_SIZE);
	cr_assert_eq(used, FABRIC_HELLO_SIZE);

	c = dup(x->reply, sizeof(x->reply));
	x->confirm_r = fabric__hs_confirm(&x->i, c, sizeof(x->reply), &used,
					  x->auth, sizeof(x->auth), &n,
					  &x->si);
	free(c);
	if (x->confirm_r != FABRIC_OK || x->reply_r != FABRIC_OK)
		return;
	cr_assert_eq(n, FABRIC_AUTH_SIZE);

	c = dup(x->auth, sizeof(x->auth));
	x->accept_r = fabric__hs_accept(&x->r, c, sizeof(x->auth), &used,
					&x->sr);
	free(c);
}

/* The two sessions talk, both ways. */
static void sessions_talk(struct fabric_session *a, struct fabric_session *b)
{
	uint8_t f[256], got[64];
	size_t n, used;
	struct fabric_msg m;

	for (int k = 0; k < 4; k++) {
		struct fabric_session *tx = k & 1 ? b : a, *rx = k & 1 ? a : b;

		n = seal(tx, 40, k, f);
		cr_assert_eq(open_copy(rx, f, n, &used, &m, got, sizeof(got)),
			     FABRIC_OK, "frame %d", k);
	}
}

Test(handshake, succeeds_and_sessions_talk)
{
	struct hs_run x;

	handshake(&x, FABRIC_VERSION_MIN, FABRIC_VERSION, vm_key,
		  FABRIC_VERSION_MIN, FABRIC_VERSION, vm_key, false);
	cr_assert_eq(x.confirm_r, FABRIC_OK);
	cr_assert_eq(x.accept_r, FABRIC_OK);
	cr_expect_eq(x.si.version, FABRIC_VERSION);
	cr_expect_eq(x.sr.version, FABRIC_VERSION);
	cr_expect_eq(x.si.vm_id, VM);
	cr_expect_eq(x.sr.vm_id, VM);
	sessions_talk(&x.si, &x.sr);
	/* fresh nonces: fresh keys each time */
	struct hs_run y;
	handshake(&y, 1, 1, vm_key, 1, 1, vm_key, false);
	cr_assert_eq(y.accept_r, FABRIC_OK);
	cr_expect(memcmp(x.si.tx_key, y.si.tx_key, FABRIC_KEY_SIZE));
	cr_expect(memcmp(x.si.tx_key, x.si.rx_key, FABRIC_KEY_SIZE));
	cr_expect(memcmp(x.si.tx_key, vm_key, FABRIC_KEY_SIZE));
	/* the handshakes forgot the VM's key */
	static const uint8_t zero[FABRIC_KEY_SIZE];
	cr_expect(!memcmp(x.i.key, zero, FABRIC_KEY_SIZE));
	cr_expect(!memcmp(x.r.key, zero, FABRIC_KEY_SIZE));
}

Test(handshake, frames_right_after_auth)
{
	struct fabric_hs i, r;
	struct fabric_session si, sr;
	uint8_t hello[FABRIC_HELLO_SIZE], reply[FABRIC_REPLY_SIZE],
		buf[FABRIC_AUTH_SIZE + 256], got[64];
	size_t n, used, len;
	struct fabric_msg m;
	struct fabric_hdr h;

	fabric__hs_init(&i, FABRIC_INITIATOR, 1, 1, NULL);
	fabric__hs_init(&r, FABRIC_RESPONDER, 1, 1, NULL);
	cr_assert_eq(fabric__hs_hello(&i, VM, vm_key, hello, sizeof(hello),
				      &n),
		     FABRIC_OK);
	/* the responder learns the VM from the header, to pick its key */
	cr_assert_eq(fabric__peek(hello, n, &h, &used), FABRIC_OK);
	cr_expect_eq(h.vm_id, VM);
	cr_expect_eq(h.type, FABRIC_MSG_HELLO);
	cr_assert_eq(fabric__hs_reply(&r, vm_key, hello, n, &used, reply,
				      sizeof(reply), &n),
		     FABRIC_OK);
	cr_assert_eq(fabric__hs_confirm(&i, reply, n, &used, buf, sizeof(buf),
					&len, &si),
		     FABRIC_OK);
	len += seal(&si, 40, 0, buf + len);
	cr_assert_eq(fabric__hs_accept(&r, buf, len, &used, &sr), FABRIC_OK);
	cr_assert_eq(used, FABRIC_AUTH_SIZE);
	cr_assert_eq(open_copy(&sr, buf + used, len - used, &used, &m, got,
			       sizeof(got)),
		     FABRIC_OK);
}

Test(handshake, wrong_key_detected_both_ways)
{
	struct hs_run x, y;

	/* the responder lacks the initiator's key: the initiator sees it */
	handshake(&x, 1, 1, vm_key, 1, 1, other_key, false);
	cr_expect_eq(x.reply_r, FABRIC_OK);
	cr_expect_eq(x.confirm_r, FABRIC_E_KEY);
	/* the initiator lacks the key: an AUTH computed under its key (got
	 * here by answering the same hello, with the same nonce, under that
	 * key) fails at the responder */
	handshake(&x, 1, 1, vm_key, 1, 1, vm_key, true);
	handshake(&y, 1, 1, other_key, 1, 1, other_key, true);
	cr_assert_eq(y.confirm_r, FABRIC_OK);
	cr_assert(!memcmp(x.reply, y.reply, FABRIC_HELLO_SIZE),
		  "the two replies differ before their MACs");
	struct fabric_hs r;
	struct fabric_session s;
	uint8_t reply[FABRIC_REPLY_SIZE];
	size_t n, used;
	fabric__hs_init(&r, FABRIC_RESPONDER, 1, 1, nonce_r);
	cr_assert_eq(fabric__hs_reply(&r, vm_key, x.hello, sizeof(x.hello),
				      &used, reply, sizeof(reply), &n),
		     FABRIC_OK);
	uint8_t *c = dup(y.auth, sizeof(y.auth));
	cr_expect_eq(fabric__hs_accept(&r, c, sizeof(y.auth), &used, &s),
		     FABRIC_E_KEY);
	free(c);
	/* nor does the responder's own proof, reflected */
	fabric__hs_init(&r, FABRIC_RESPONDER, 1, 1, nonce_r);
	fabric__hs_reply(&r, vm_key, x.hello, sizeof(x.hello), &used, reply,
			 sizeof(reply), &n);
	uint8_t auth[FABRIC_AUTH_SIZE];
	memcpy(auth, x.auth, FABRIC_HDR_SIZE);
	memcpy(auth + FABRIC_HDR_SIZE, reply + FABRIC_HELLO_SIZE,
	       FABRIC_MAC_SIZE);
	cr_expect_eq(fabric__hs_accept(&r, auth, sizeof(auth), &used, &s),
		     FABRIC_E_KEY);
}

Test(handshake, replayed_messages_fail)
{
	struct hs_run old, x;
	struct fabric_session s;
	uint8_t reply[FABRIC_REPLY_SIZE], auth[FABRIC_AUTH_SIZE];
	size_t n, used;

	handshake(&old, 1, 1, vm_key, 1, 1, vm_key, false);
	cr_assert_eq(old.accept_r, FABRIC_OK);

	/* an old HELLO and AUTH to a new responder */
	fabric__hs_init(&x.r, FABRIC_RESPONDER, 1, 1, NULL);
	cr_assert_eq(fabric__hs_reply(&x.r, vm_key, old.hello,
				      sizeof(old.hello), &used, reply,
				      sizeof(reply), &n),
		     FABRIC_OK);
	cr_expect_eq(fabric__hs_accept(&x.r, old.auth, sizeof(old.auth),
				       &used, &s),
		     FABRIC_E_KEY);

	/* an old HELLO_REPLY to a new initiator */
	fabric__hs_init(&x.i, FABRIC_INITIATOR, 1, 1, NULL);
	uint8_t hello[FABRIC_HELLO_SIZE];
	fabric__hs_hello(&x.i, VM, vm_key, hello, sizeof(hello), &n);
	cr_expect_eq(fabric__hs_confirm(&x.i, old.reply, sizeof(old.reply),
					&used, auth, sizeof(auth), &n, &s),
		     FABRIC_E_KEY);
}

static void agree(uint16_t imin, uint16_t imax, uint16_t rmin, uint16_t rmax,
		  uint16_t want)
{
	struct hs_run x;

	handshake(&x, imin, imax, vm_key, rmin, rmax, vm_key, false);
	if (want) {
		cr_assert_eq(x.accept_r, FABRIC_OK, "[%u,%u] [%u,%u]", imin,
			     imax, rmin, rmax);
		cr_expect_eq(x.si.version, want);
		cr_expect_eq(x.sr.version, want);
		sessions_talk(&x.si, &x.sr);
		return;
	}
	cr_expect_eq(x.reply_r, FABRIC_E_VERSION, "[%u,%u] [%u,%u]", imin,
		     imax, rmin, rmax);
	cr_expect_eq(x.confirm_r, FABRIC_E_VERSION);
	/* each side can say what the other speaks */
	cr_expect_eq(x.i.peer_min, rmin);
	cr_expect_eq(x.i.peer_max, rmax);
	cr_expect_eq(x.r.peer_min, imin);
	cr_expect_eq(x.r.peer_max, imax);
}

Test(handshake, version_negotiation)
{
	agree(1, 2, 0, 1, 1); /* a newer and an older peer */
	agree(0, 1, 1, 2, 1);
	agree(1, 1, 1, 1, 1);
	agree(1, 2, 1, 2, 2);
	agree(1, 3, 2, 5, 3);
	agree(0, 2, 0, 2, 2);
	agree(2, 3, 1, 1, 0); /* disjoint */
	agree(1, 1, 2, 3, 0);

	/* version 0 is never agreed: a peer offering [0,0] (which this
	 * build cannot be) gets a refusal */
	struct fabric_hs hs;
	uint8_t hello[FABRIC_HELLO_SIZE], reply[FABRIC_REPLY_SIZE];
	size_t n, used;
	fabric__hs_init(&hs, FABRIC_INITIATOR, 1, 1, NULL);
	fabric__hs_hello(&hs, VM, vm_key, hello, sizeof(hello), &n);
	memset(hello + FABRIC_HDR_SIZE, 0, 4);
	fabric__hs_init(&hs, FABRIC_RESPONDER, 0, 1, NULL);
	cr_expect_eq(fabric__hs_reply(&hs, vm_key, hello, n, &used, reply,
				      sizeof(reply), &n),
		     FABRIC_E_VERSION);

	cr_expect_eq(fabric__hs_init(&hs, FABRIC_INITIATOR, 2, 1, NULL),
		     FABRIC_E_STATE);
	cr_expect_eq(fabric__hs_init(&hs, FABRIC_INITIATOR, 0, 0, NULL),
		     FABRIC_E_STATE);
}

/* A man in the middle lowering the initiator's offer is caught: the
 * responder's proof covers the hello it received. */
Test(handshake, downgrade_in_flight_fails)
{
	struct fabric_hs i, r;
	struct fabric_session s;
	uint8_t hello[FABRIC_HELLO_SIZE], reply[FABRIC_REPLY_SIZE],
		auth[FABRIC_AUTH_SIZE];
	size_t n, used;

	fabric__hs_init(&i, FABRIC_INITIATOR, 1, 2, NULL);
	fabric__hs_init(&r, FABRIC_RESPONDER, 1, 2, NULL);
	fabric__hs_hello(&i, VM, vm_key, hello, sizeof(hello), &n);
	hello[FABRIC_HDR_SIZE + 2] = 1; /* max 2 -> 1 */
	cr_assert_eq(fabric__hs_reply(&r, vm_key, hello, n, &used, reply,
				      sizeof(reply), &n),
		     FABRIC_OK);
	cr_expect_eq(fabric__hs_confirm(&i, reply, n, &used, auth,
					sizeof(auth), &n, &s),
		     FABRIC_E_KEY);
}

Test(handshake, truncated_messages_are_incomplete)
{
	struct fabric_hs i, r;
	struct fabric_session si, sr;
	uint8_t hello[FABRIC_HELLO_SIZE], reply[FABRIC_REPLY_SIZE],
		auth[FABRIC_AUTH_SIZE];
	size_t n, used;

	fabric__hs_init(&i, FABRIC_INITIATOR, 1, 1, NULL);
	fabric__hs_init(&r, FABRIC_RESPONDER, 1, 1, NULL);
	fabric__hs_hello(&i, VM, vm_key, hello, sizeof(hello), &n);
	/* a truncated message does not move a handshake on */
	for (size_t cut = 0; cut < sizeof(hello); cut++) {
		uint8_t *c = dup(hello, cut);
		cr_assert_eq(fabric__hs_reply(&r, vm_key, c, cut, &used, reply,
					      sizeof(reply), &n),
			     FABRIC_E_INCOMPLETE, "hello cut %zu", cut);
		cr_assert(used > cut && used <= sizeof(hello));
		free(c);
	}
	cr_assert_eq(fabric__hs_reply(&r, vm_key, hello, sizeof(hello), &used,
				      reply, sizeof(reply), &n),
		     FABRIC_OK);
	for (size_t cut = 0; cut < sizeof(reply); cut++) {
		uint8_t *c = dup(reply, cut);
		cr_assert_eq(fabric__hs_confirm(&i, c, cut, &used, auth,
						sizeof(auth), &n, &si),
			     FABRIC_E_INCOMPLETE, "reply cut %zu", cut);
		free(c);
	}
	cr_assert_eq(fabric__hs_confirm(&i, reply, sizeof(reply), &used, auth,
					sizeof(auth), &n, &si),
		     FABRIC_OK);
	for (size_t cut = 0; cut < sizeof(auth); cut++) {
		uint8_t *c = dup(auth, cut);
		cr_assert_eq(fabric__hs_accept(&r, c, cut, &used, &sr),
			     FABRIC_E_INCOMPLETE, "auth cut %zu", cut);
		free(c);
	}
	cr_assert_eq(fabric__hs_accept(&r, auth, sizeof(auth), &used, &sr),
		     FABRIC_OK);
	sessions_talk(&si, &sr);
}

/* Every bit of every handshake message matters: flipped, the handshake
 * fails, at the receiver or (a hello's nonce or offer, which only the
 * transcript covers) one step later. */
Test(handshake, every_bit_flip_fails)
{
	struct hs_run x;
	struct fabric_hs i, r;
	struct fabric_session s;
	uint8_t out[FABRIC_REPLY_SIZE], auth[FABRIC_AUTH_SIZE];
	size_t n, used;

	handshake(&x, 1, 2, vm_key, 1, 2, vm_key, true);
	cr_assert_eq(x.accept_r, FABRIC_OK);

	for (size_t bit = 0; bit < FABRIC_HELLO_SIZE * 8; bit++) {
		uint8_t *c = dup(x.hello, FABRIC_HELLO_SIZE);
		c[bit / 8] ^= 1 << bit % 8;
		fabric__hs_init(&i, FABRIC_INITIATOR, 1, 2, nonce_i);
		fabric__hs_init(&r, FABRIC_RESPONDER, 1, 2, nonce_r);
		fabric__hs_hello(&i, VM, vm_key, out, sizeof(out), &n);
		int res = fabric__hs_reply(&r, vm_key, c, FABRIC_HELLO_SIZE,
					   &used, out, sizeof(out), &n);
		free(c);
		if (res == FABRIC_OK || res == FABRIC_E_VERSION)
			res = fabric__hs_confirm(&i, out, n, &used, auth,
						 sizeof(auth), &n, &s);
		cr_assert(rejected(res), "hello bit %zu: %s", bit,
			  fabric__strerror(res));
	}
	for (size_t bit = 0; bit < FABRIC_REPLY_SIZE * 8; bit++) {
		uint8_t *c = dup(x.reply, FABRIC_REPLY_SIZE);
		c[bit / 8] ^= 1 << bit % 8;
		fabric__hs_init(&i, FABRIC_INITIATOR, 1, 2, nonce_i);
		fabric__hs_hello(&i, VM, vm_key, out, sizeof(out), &n);
		int res = fabric__hs_confirm(&i, c, FABRIC_REPLY_SIZE, &used,
					     auth, sizeof(auth), &n, &s);
		free(c);
		cr_assert(rejected(res), "reply bit %zu: %s", bit,
			  fabric__strerror(res));
	}
	for (size_t bit = 0; bit < FABRIC_AUTH_SIZE * 8; bit++) {
		uint8_t *c = dup(x.auth, FABRIC_AUTH_SIZE);
		c[bit / 8] ^= 1 << bit % 8;
		fabric__hs_init(&r, FABRIC_RESPONDER, 1, 2, nonce_r);
		cr_assert_eq(fabric__hs_reply(&r, vm_key, x.hello,
					      FABRIC_HELLO_SIZE, &used, out,
					      sizeof(out), &n),
			     FABRIC_OK);
		int res = fabric__hs_accept(&r, c, FABRIC_AUTH_SIZE, &used, &s);
		free(c);
		cr_assert(rejected(res), "auth bit %zu: %s", bit,
			  fabric__strerror(res));
	}
}

Test(handshake, out_of_turn_and_foreign_messages)
{
	struct hs_run x;
	struct fabric_hs i, r;
	struct fabric_session s;
	uint8_t out[FABRIC_MAX_FRAME];
	size_t n, used;

	handshake(&x, 1, 1, vm_key, 1, 1, vm_key, false);
	cr_assert_eq(x.accept_r, FABRIC_OK);
	/* a finished handshake takes nothing more */
	cr_expect_eq(fabric__hs_accept(&x.r, x.auth, sizeof(x.auth), &used,
				       &s),
		     FABRIC_E_STATE);
	cr_expect_eq(fabric__hs_confirm(&x.i, x.reply, sizeof(x.reply), &used,
					out, sizeof(out), &n, &s),
		     FABRIC_E_STATE);
	/* roles */
	fabric__hs_init(&i, FABRIC_INITIATOR, 1, 1, NULL);
	fabric__hs_init(&r, FABRIC_RESPONDER, 1, 1, NULL);
	cr_expect_eq(fabric__hs_reply(&i, vm_key, x.hello, sizeof(x.hello),
				      &used, out, sizeof(out), &n),
		     FABRIC_E_STATE);
	cr_expect_eq(fabric__hs_hello(&r, VM, vm_key, out, sizeof(out), &n),
		     FABRIC_E_STATE);
	cr_expect_eq(fabric__hs_accept(&r, x.auth, sizeof(x.auth), &used, &s),
		     FABRIC_E_STATE);
	/* a small buffer is the caller's mistake: nothing is consumed */
	cr_expect_eq(fabric__hs_hello(&i, VM, vm_key, out,
				      FABRIC_HELLO_SIZE - 1, &n),
		     FABRIC_E_SPACE);
	cr_expect_eq(fabric__hs_reply(&r, vm_key, x.hello, sizeof(x.hello),
				      &used, out, FABRIC_REPLY_SIZE - 1, &n),
		     FABRIC_E_SPACE);
	/* the wrong message at each step */
	cr_expect_eq(fabric__hs_reply(&r, vm_key, x.auth, sizeof(x.auth),
				      &used, out, sizeof(out), &n),
		     FABRIC_E_TYPE);
	fabric__hs_init(&r, FABRIC_RESPONDER, 1, 1, NULL);
	n = seal(&x.si, 40, 0, out);
	cr_expect_eq(fabric__hs_reply(&r, vm_key, out, n, &used, out + n,
				      sizeof(out) - n, &n),
		     FABRIC_E_TYPE);
	cr_expect_eq(fabric__hs_hello(&i, VM, vm_key, out, sizeof(out), &n),
		     FABRIC_OK);
	cr_expect_eq(fabric__hs_confirm(&i, out, n, &used, out + n,
					sizeof(out) - n, &n, &s),
		     FABRIC_E_TYPE, "its own hello");
	/* a failed handshake stays failed */
	cr_expect_eq(fabric__hs_confirm(&i, x.reply, sizeof(x.reply), &used,
					out, sizeof(out), &n, &s),
		     FABRIC_E_STATE);
}

Test(handshake, reply_for_another_vm)
{
	struct fabric_hs i, r;
	struct fabric_session s;
	uint8_t hello[FABRIC_HELLO_SIZE], reply[FABRIC_REPLY_SIZE],
		auth[FABRIC_AUTH_SIZE];
	size_t n, used;

	fabric__hs_init(&i, FABRIC_INITIATOR, 1, 1, NULL);
	fabric__hs_init(&r, FABRIC_RESPONDER, 1, 1, NULL);
	fabric__hs_hello(&i, VM, vm_key, hello, sizeof(hello), &n);
	hello[24] ^= 1; /* vm id */
	cr_assert_eq(fabric__hs_reply(&r, vm_key, hello, n, &used, reply,
				      sizeof(reply), &n),
		     FABRIC_OK);
	cr_expect_eq(fabric__hs_confirm(&i, reply, n, &used, auth,
					sizeof(auth), &n, &s),
		     FABRIC_E_VM);
}
