// SPDX-License-Identifier: MIT
/*
 * The fabric's handshake: version negotiation, proof of the VM's key both
 * ways, session keys. See wire.h for the calls and docs/protocol.md for
 * the messages.
 *
 * Why this shape: both sides already share the VM's key, so no public-key
 * exchange is needed; what must be fresh is the session, so each side adds
 * a random nonce and everything (the proofs, the keys) is derived from a
 * hash of both hellos. A recorded HELLO or HELLO_REPLY replayed later meets
 * a new nonce from the other side and its proof no longer matches; a
 * version range changed in flight changes the transcript the same way.
 * The two proofs and the two keys use distinct labels, so nothing one side
 * sends is ever valid in the other's place (no reflection).
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "fabric/wire.h"

enum { HS_NEW, HS_HELLO_SENT, HS_REPLIED, HS_DONE, HS_FAILED };

/* The hellos' body, after the header: u16 min, u16 max, u16 version
 * (chosen: 0 in HELLO, and in a HELLO_REPLY that found no common one),
 * u16 reserved (0), nonce; a HELLO_REPLY adds the responder's MAC. */
#define BODY_MIN     0
#define BODY_MAX     2
#define BODY_CHOSEN  4
#define BODY_RSVD    6
#define BODY_NONCE   8
#define HASH_SIZE    32

_Static_assert(FABRIC_HELLO_SIZE ==
		       FABRIC_HDR_SIZE + BODY_NONCE + FABRIC_NONCE_SIZE,
	       "hello layout");
_Static_assert(sizeof(((struct fabric_hs *)0)->transcript) == HASH_SIZE,
	       "transcript size");

/* BLAKE2b's salt and personalisation: 16 bytes each, zero-padded. */
static const uint8_t personal[16] = "slos-fabric-hs";
static const uint8_t l_transcript[16] = "transcript";
static const uint8_t l_resp_proof[16] = "responder proof";
static const uint8_t l_init_proof[16] = "initiator proof";
static const uint8_t l_key_i2r[16] = "key i2r";
static const uint8_t l_key_r2i[16] = "key r2i";

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v;
	p[1] = v >> 8;
}

static uint16_t get16(const uint8_t *p)
{
	return p[0] | (uint16_t)p[1] << 8;
}

/* A 32-byte value for one purpose, from the VM's key and the transcript. */
static void prf(uint8_t out[32], const uint8_t key[FABRIC_KEY_SIZE],
		const uint8_t label[16], const uint8_t t[HASH_SIZE])
{
	crypto_generichash_blake2b_salt_personal(out, 32, t, HASH_SIZE, key,
						 FABRIC_KEY_SIZE, label,
						 personal);
}

/* Both hellos as sent, the reply without its MAC (which covers it). */
static void transcript(uint8_t out[HASH_SIZE],
		       const uint8_t hello[FABRIC_HELLO_SIZE],
		       const uint8_t reply[FABRIC_HELLO_SIZE])
{
	uint8_t both[2 * FABRIC_HELLO_SIZE];

	memcpy(both, hello, FABRIC_HELLO_SIZE);
	memcpy(both + FABRIC_HELLO_SIZE, reply, FABRIC_HELLO_SIZE);
	crypto_generichash_blake2b_salt_personal(out, HASH_SIZE, both,
						 sizeof(both), NULL, 0,
						 l_transcript, personal);
}

/* The highest version both ranges hold, or 0. */
static uint16_t negotiate(uint16_t min_a, uint16_t max_a, uint16_t min_b,
			  uint16_t max_b)
{
	uint16_t lo = min_a > min_b ? min_a : min_b;
	uint16_t hi = max_a < max_b ? max_a : max_b;

	if (lo < 1)
		lo = 1;
	return lo <= hi ? hi : 0;
}

static void put_hello(uint8_t *out, enum fabric_msg_type type, uint64_t vm_id,
		      const struct fabric_hs *hs, uint16_t chosen)
{
	struct fabric_hdr h = {
		.type = type,
		.len = (type == FABRIC_MSG_HELLO ? FABRIC_HELLO_SIZE
						 : FABRIC_REPLY_SIZE) -
		       FABRIC_HDR_SIZE,
		.vm_id = vm_id,
	};
	uint8_t *b = out + FABRIC_HDR_SIZE;

	fabric__hdr_put(&h, out);
	put16(b + BODY_MIN, hs->min);
	put16(b + BODY_MAX, hs->max);
	put16(b + BODY_CHOSEN, chosen);
	put16(b + BODY_RSVD, 0);
	memcpy(b + BODY_NONCE, hs->nonce, FABRIC_NONCE_SIZE);
}

/*
 * A handshake message of this type and exact size at in[0..len): its
 * header in *h. Handshake messages carry version 0 and sequence 0 (no
 * version is agreed yet and nothing is sealed), and their sizes never
 * change, so any version can parse any other's hellos.
 */
static int read_msg(const uint8_t *in, size_t len, size_t *used,
		    uint16_t type, size_t size, struct fabric_hdr *h)
{
	int r = fabric__peek(in, len, h, used);

	if ((r != FABRIC_OK && r != FABRIC_E_INCOMPLETE) ||
	    len < FABRIC_HDR_SIZE)
		return r;
	if (h->type != type)
		return FABRIC_E_TYPE;
	if (h->version || h->seq || FABRIC_HDR_SIZE + (size_t)h->len != size)
		return FABRIC_E_HEADER;
	return r;
}

/* Versions from a hello's body; FABRIC_E_HEADER if it is malformed. */
static int read_body(const uint8_t *b, bool reply, uint16_t *min,
		     uint16_t *max, uint16_t *chosen)
{
	*min = get16(b + BODY_MIN);
	*max = get16(b + BODY_MAX);
	*chosen = get16(b + BODY_CHOSEN);
	if (*min > *max || get16(b + BODY_RSVD) || (!reply && *chosen))
		return FABRIC_E_HEADER;
	return FABRIC_OK;
}

static void forget(struct fabric_hs *hs)
{
	sodium_memzero(hs->key, sizeof(hs->key));
	sodium_memzero(hs->nonce, sizeof(hs->nonce));
	sodium_memzero(hs->transcript, sizeof(hs->transcript));
	sodium_memzero(hs->hello, sizeof(hs->hello));
}

/* Every error but "read more" ends the handshake. */
static int fail(struct fabric_hs *hs, int r)
{
	if (r == FABRIC_E_INCOMPLETE)
		return r;
	forget(hs);
	hs->state = HS_FAILED;
	return r;
}

static void start_session(struct fabric_hs *hs, struct fabric_session *s)
{
	uint8_t i2r[FABRIC_KEY_SIZE], r2i[FABRIC_KEY_SIZE];

	prf(i2r, hs->key, l_key_i2r, hs->transcript);
	prf(r2i, hs->key, l_key_r2i, hs->transcript);
	fabric__session_init(s, hs->role, hs->vm_id, hs->version, i2r, r2i);
	sodium_memzero(i2r, sizeof(i2r));
	sodium_memzero(r2i, sizeof(r2i));
	forget(hs);
	hs->state = HS_DONE;
}

int fabric__hs_init(struct fabric_hs *hs, enum fabric_role role,
		    uint16_t min, uint16_t max,
		    const uint8_t nonce[FABRIC_NONCE_SIZE])
{
	if (sodium_init() < 0)
		abort();
	memset(hs, 0, sizeof(*hs));
	hs->state = HS_FAILED;
	if (min > max || !max ||
	    (role != FABRIC_INITIATOR && role != FABRIC_RESPONDER))
		return FABRIC_E_STATE;
	hs->role = role;
	hs->min = min;
	hs->max = max;
	if (nonce)
		memcpy(hs->nonce, nonce, FABRIC_NONCE_SIZE);
	else
		randombytes_buf(hs->nonce, FABRIC_NONCE_SIZE);
	hs->state = HS_NEW;
	return FABRIC_OK;
}

int fabric__hs_hello(struct fabric_hs *hs, uint64_t vm_id,
		     const uint8_t key[FABRIC_KEY_SIZE], uint8_t *out,
		     size_t cap, size_t *out_len)
{
	if (hs->state != HS_NEW || hs->role != FABRIC_INITIATOR)
		return FABRIC_E_STATE;
	if (cap < FABRIC_HELLO_SIZE)
		return FABRIC_E_SPACE;
	hs->vm_id = vm_id;
	memcpy(hs->key, key, FABRIC_KEY_SIZE);
	put_hello(hs->hello, FABRIC_MSG_HELLO, vm_id, hs, 0);
	memcpy(out, hs->hello, FABRIC_HELLO_SIZE);
	*out_len = FABRIC_HELLO_SIZE;
	hs->state = HS_HELLO_SENT;
	return FABRIC_OK;
}

int fabric__hs_reply(struct fabric_hs *hs, const uint8_t key[FABRIC_KEY_SIZE],
		     const uint8_t *in, size_t len, size_t *used, uint8_t *out,
		     size_t cap, size_t *out_len)
{
	struct fabric_hdr h;
	uint16_t min, max, chosen;
	int r;

	if (hs->state != HS_NEW || hs->role != FABRIC_RESPONDER)
		return FABRIC_E_STATE;
	if (cap < FABRIC_REPLY_SIZE)
		return FABRIC_E_SPACE;
	r = read_msg(in, len, used, FABRIC_MSG_HELLO, FABRIC_HELLO_SIZE, &h);
	if (r != FABRIC_OK)
		return fail(hs, r);
	r = read_body(in + FABRIC_HDR_SIZE, false, &min, &max, &chosen);
	if (r != FABRIC_OK)
		return fail(hs, r);
	hs->peer_min = min;
	hs->peer_max = max;
	hs->vm_id = h.vm_id;
	hs->version = negotiate(hs->min, hs->max, min, max);

	put_hello(out, FABRIC_MSG_HELLO_REPLY, h.vm_id, hs, hs->version);
	*out_len = FABRIC_REPLY_SIZE;
	if (!hs->version) {
		/* No proof: nothing follows, and the initiator only reports
		 * it. A forger could send the same, but could as well have
		 * cut the connection. */
		memset(out + FABRIC_HELLO_SIZE, 0, FABRIC_MAC_SIZE);
		return fail(hs, FABRIC_E_VERSION);
	}
	memcpy(hs->key, key, FABRIC_KEY_SIZE);
	transcript(hs->transcript, in, out);
	prf(out + FABRIC_HELLO_SIZE, hs->key, l_resp_proof, hs->transcript);
	hs->state = HS_REPLIED;
	return FABRIC_OK;
}

int fabric__hs_confirm(struct fabric_hs *hs, const uint8_t *in, size_t len,
		       size_t *used, uint8_t *out, size_t cap,
		       size_t *out_len, struct fabric_session *s)
{
	struct fabric_hdr h;
	uint16_t min, max, chosen;
	uint8_t mac[FABRIC_MAC_SIZE];
	int r;

	if (hs->state != HS_HELLO_SENT)
		return FABRIC_E_STATE;
	if (cap < FABRIC_AUTH_SIZE)
		return FABRIC_E_SPACE;
	r = read_msg(in, len, used, FABRIC_MSG_HELLO_REPLY, FABRIC_REPLY_SIZE,
		     &h);
	if (r != FABRIC_OK)
		return fail(hs, r);
	if (h.vm_id != hs->vm_id)
		return fail(hs, FABRIC_E_VM);
	r = read_body(in + FABRIC_HDR_SIZE, true, &min, &max, &chosen);
	if (r != FABRIC_OK)
		return fail(hs, r);
	hs->peer_min = min;
	hs->peer_max = max;
	if (!chosen)
		return fail(hs, FABRIC_E_VERSION);

	/* The proof before the version: once the reply is known to come
	 * whole from a holder of the key, a bad choice is its own error. */
	transcript(hs->transcript, hs->hello, in);
	prf(mac, hs->key, l_resp_proof, hs->transcript);
	r = sodium_memcmp(mac, in + FABRIC_HELLO_SIZE, FABRIC_MAC_SIZE);
	sodium_memzero(mac, sizeof(mac));
	if (r)
		return fail(hs, FABRIC_E_KEY);
	if (chosen != negotiate(hs->min, hs->max, min, max))
		return fail(hs, FABRIC_E_VERSION);
	hs->version = chosen;

	struct fabric_hdr a = {
		.type = FABRIC_MSG_AUTH,
		.len = FABRIC_MAC_SIZE,
		.vm_id = hs->vm_id,
	};
	fabric__hdr_put(&a, out);
	prf(out + FABRIC_HDR_SIZE, hs->key, l_init_proof, hs->transcript);
	*out_len = FABRIC_AUTH_SIZE;
	start_session(hs, s);
	return FABRIC_OK;
}

int fabric__hs_accept(struct fabric_hs *hs, const uint8_t *in, size_t len,
		      size_t *used, struct fabric_session *s)
{
	struct fabric_hdr h;
	uint8_t mac[FABRIC_MAC_SIZE];
	int r;

	if (hs->state != HS_REPLIED)
		return FABRIC_E_STATE;
	r = read_msg(in, len, used, FABRIC_MSG_AUTH, FABRIC_AUTH_SIZE, &h);
	if (r != FABRIC_OK)
		return fail(hs, r);
	if (h.vm_id != hs->vm_id)
		return fail(hs, FABRIC_E_VM);
	prf(mac, hs->key, l_init_proof, hs->transcript);
	r = sodium_memcmp(mac, in + FABRIC_HDR_SIZE, FABRIC_MAC_SIZE);
	sodium_memzero(mac, sizeof(mac));
	if (r)
		return fail(hs, FABRIC_E_KEY);
	start_session(hs, s);
	return FABRIC_OK;
}

void fabric__hs_wipe(struct fabric_hs *hs)
{
	forget(hs);
	hs->state = HS_FAILED;
}
