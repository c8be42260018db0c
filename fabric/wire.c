// SPDX-License-Identifier: MIT
/*
 * Frames: the header, sealing and opening. See wire.h and
 * docs/protocol.md. Every field is encoded byte by byte, little-endian,
 * so the format does not depend on this compiler's struct layout.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "fabric/wire.h"

_Static_assert(FABRIC_TAG_SIZE == crypto_aead_chacha20poly1305_ietf_ABYTES,
	       "tag size");
_Static_assert(FABRIC_KEY_SIZE == crypto_aead_chacha20poly1305_ietf_KEYBYTES,
	       "key size");
_Static_assert(FABRIC_MAX_FRAME <= UINT32_MAX, "length field");

#define NONCE_BYTES crypto_aead_chacha20poly1305_ietf_NPUBBYTES

static const char *const errs[FABRIC_E_COUNT] = {
	[FABRIC_OK] = "ok",
	[FABRIC_E_INCOMPLETE] = "incomplete message (more bytes needed)",
	[FABRIC_E_MAGIC] = "not a fabric message (bad magic)",
	[FABRIC_E_TOO_LONG] = "message longer than the protocol allows",
	[FABRIC_E_HEADER] = "malformed message header or handshake message",
	[FABRIC_E_TYPE] = "message type out of range or out of turn",
	[FABRIC_E_VERSION] = "protocol version not spoken here",
	[FABRIC_E_VM] = "message for another VM",
	[FABRIC_E_SEQ] = "sequence number out of order (replayed or "
			 "reordered frame)",
	[FABRIC_E_AUTH] = "frame failed authentication (forged, corrupted or "
			  "under another key)",
	[FABRIC_E_KEY] = "peer does not hold this VM's key (or replayed its "
			 "handshake)",
	[FABRIC_E_SPACE] = "buffer too small or payload too large",
	[FABRIC_E_EXHAUSTED] = "sequence numbers exhausted: reconnect",
	[FABRIC_E_STATE] = "handshake step out of turn or bad argument",
};

const char *fabric__strerror(int err)
{
	if (err < 0 || err >= FABRIC_E_COUNT || !errs[err])
		return "unknown fabric error";
	return errs[err];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v;
	p[1] = v >> 8;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = v >> (8 * i);
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = v >> (8 * i);
}

static uint16_t get16(const uint8_t *p)
{
	return p[0] | (uint16_t)p[1] << 8;
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

void fabric__hdr_put(const struct fabric_hdr *h, uint8_t out[FABRIC_HDR_SIZE])
{
	memcpy(out, FABRIC_MAGIC, 4);
	put16(out + 4, h->version);
	put16(out + 6, h->type);
	put32(out + 8, h->len);
	put32(out + 12, 0);
	put64(out + 16, h->seq);
	put64(out + 24, h->vm_id);
}

int fabric__peek(const uint8_t *buf, size_t len, struct fabric_hdr *h,
		 size_t *need)
{
	/* Refuse garbage from its first bytes, so a stream reader does not
	 * wait for a header that will never make sense. */
	for (size_t i = 0; i < 4 && i < len; i++)
		if (buf[i] != FABRIC_MAGIC[i])
			return FABRIC_E_MAGIC;
	if (len < FABRIC_HDR_SIZE) {
		*need = FABRIC_HDR_SIZE;
		return FABRIC_E_INCOMPLETE;
	}
	h->version = get16(buf + 4);
	h->type = get16(buf + 6);
	h->len = get32(buf + 8);
	h->seq = get64(buf + 16);
	h->vm_id = get64(buf + 24);
	if (h->len > FABRIC_MAX_BODY)
		return FABRIC_E_TOO_LONG;
	/* reserved: must be 0, so a later version may give it a meaning */
	if (get32(buf + 12))
		return FABRIC_E_HEADER;
	*need = FABRIC_HDR_SIZE + (size_t)h->len;
	return len < *need ? FABRIC_E_INCOMPLETE : FABRIC_OK;
}

void fabric__session_init(struct fabric_session *s, enum fabric_role role,
			  uint64_t vm_id, uint16_t version,
			  const uint8_t i2r_key[FABRIC_KEY_SIZE],
			  const uint8_t r2i_key[FABRIC_KEY_SIZE])
{
	bool init = role == FABRIC_INITIATOR;

	/* Idempotent; after the first call a lock and a flag. Sessions are
	 * made once per connection, so the codec's hot path never pays. */
	if (sodium_init() < 0)
		abort();
	memset(s, 0, sizeof(*s));
	s->vm_id = vm_id;
	s->version = version;
	s->tx_dir = init ? 0 : 1;
	s->rx_dir = init ? 1 : 0;
	memcpy(s->tx_key, init ? i2r_key : r2i_key, FABRIC_KEY_SIZE);
	memcpy(s->rx_key, init ? r2i_key : i2r_key, FABRIC_KEY_SIZE);
}

void fabric__session_wipe(struct fabric_session *s)
{
	sodium_memzero(s, sizeof(*s));
}

/* Unique per key: each direction has its own key and its own counter,
 * which never goes back; the direction is in it as well so that even a
 * mistake giving both directions one key would not repeat a nonce. */
static void nonce(uint8_t out[NONCE_BYTES], uint8_t dir, uint64_t seq)
{
	put32(out, dir);
	put64(out + 4, seq);
}

static bool sealed_type(uint16_t type)
{
	return type >= FABRIC_MSG_SEALED && type < FABRIC_MSG_END;
}

int fabric__seal(struct fabric_session *s, uint16_t type, const void *payload,
		 size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
	uint8_t n[NONCE_BYTES];
	unsigned long long clen;

	if (!sealed_type(type))
		return FABRIC_E_TYPE;
	if (len > FABRIC_MAX_PAYLOAD || cap < fabric__frame_size(len))
		return FABRIC_E_SPACE;
	/* the last number is never used, so the receiver's counter never
	 * wraps either */
	if (s->tx_seq == UINT64_MAX)
		return FABRIC_E_EXHAUSTED;

	struct fabric_hdr h = {
		.version = s->version,
		.type = type,
		.len = len + FABRIC_TAG_SIZE,
		.seq = s->tx_seq,
		.vm_id = s->vm_id,
	};
	fabric__hdr_put(&h, out);
	nonce(n, s->tx_dir, s->tx_seq);
	crypto_aead_chacha20poly1305_ietf_encrypt(
		out + FABRIC_HDR_SIZE, &clen, payload, len, out,
		FABRIC_HDR_SIZE, NULL, n, s->tx_key);
	s->tx_seq++;
	*out_len = FABRIC_HDR_SIZE + clen;
	return FABRIC_OK;
}

int fabric__open(struct fabric_session *s, const uint8_t *in, size_t len,
		 size_t *used, struct fabric_msg *m, void *payload, size_t cap)
{
	struct fabric_hdr h;
	uint8_t n[NONCE_BYTES];
	int r = fabric__peek(in, len, &h, used);

	if (r != FABRIC_OK && r != FABRIC_E_INCOMPLETE)
		return r;
	if (len < FABRIC_HDR_SIZE)
		return r;
	/* The header in the clear first: a frame that cannot be the next
	 * one is refused without waiting for (or decrypting) its body. */
	if (h.version != s->version)
		return FABRIC_E_VERSION;
	if (!sealed_type(h.type))
		return FABRIC_E_TYPE;
	if (h.len < FABRIC_TAG_SIZE)
		return FABRIC_E_HEADER;
	if (h.vm_id != s->vm_id)
		return FABRIC_E_VM;
	if (s->rx_seq == UINT64_MAX)
		return FABRIC_E_EXHAUSTED;
	if (h.seq != s->rx_seq)
		return FABRIC_E_SEQ;
	if (r == FABRIC_E_INCOMPLETE)
		return r;

	size_t plen = h.len - FABRIC_TAG_SIZE;
	if (cap < plen)
		return FABRIC_E_SPACE;
	nonce(n, s->rx_dir, h.seq);
	if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(
		    payload, NULL, in + FABRIC_HDR_SIZE, plen,
		    in + FABRIC_HDR_SIZE + plen, in, FABRIC_HDR_SIZE, n,
		    s->rx_key))
		return FABRIC_E_AUTH;
	s->rx_seq++;
	m->type = h.type;
	m->len = plen;
	m->seq = h.seq;
	return FABRIC_OK;
}
