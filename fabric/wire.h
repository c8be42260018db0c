/* SPDX-License-Identifier: MIT */
/*
 * The fabric's wire format and codec: what hosts say to each other, as
 * bytes. Pure functions, no I/O (the transports read and write; this layer
 * turns messages into frames and back). docs/protocol.md has the format.
 *
 * A connection starts with a handshake in the clear (HELLO, HELLO_REPLY,
 * AUTH) that agrees on a protocol version, proves that both sides hold the
 * VM's 32-byte key and derives one session key per direction; after it,
 * every message is a sealed frame: a 32-byte header in the clear, which is
 * the AEAD's associated data, then the payload encrypted and authenticated
 * with ChaCha20-Poly1305 (libsodium), its nonce the direction and the
 * frame's sequence number. Sequence numbers start at 0 in each direction
 * and go up by one per frame, so a replayed, reordered, dropped or
 * reflected frame is refused. Guest memory never crosses in the clear.
 *
 * Everything that decodes takes untrusted bytes and a length and never
 * reads past them. On a stream, FABRIC_E_INCOMPLETE means "read more";
 * every other error is final for the connection (its session is left as
 * it was, but the stream cannot be resynchronised: close it).
 */
#ifndef SLOS_FABRIC_WIRE_H
#define SLOS_FABRIC_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The protocol version this build speaks, and the oldest it still accepts
 * (its predecessor, once there is one). Version 0 is never agreed. */
#define FABRIC_VERSION	   1
#define FABRIC_VERSION_MIN 1

#define FABRIC_MAGIC	   "SLOF" /* 4 bytes on the wire, no NUL */
#define FABRIC_HDR_SIZE	   32
#define FABRIC_TAG_SIZE	   16 /* Poly1305 */
#define FABRIC_KEY_SIZE	   32 /* the per-VM key, and each session key */
#define FABRIC_NONCE_SIZE  32 /* each side's handshake nonce */
#define FABRIC_MAC_SIZE	   32 /* the handshake's proofs of the key */
/* A guest page and room for the message around it. */
#define FABRIC_MAX_PAYLOAD 8192
/* The header's length field counts every byte after the header: payload
 * and tag of a sealed frame, the body of a handshake message. */
#define FABRIC_MAX_BODY	   (FABRIC_MAX_PAYLOAD + FABRIC_TAG_SIZE)
#define FABRIC_MAX_FRAME   (FABRIC_HDR_SIZE + FABRIC_MAX_BODY)

/* Handshake messages, whole (header included). */
#define FABRIC_HELLO_SIZE (FABRIC_HDR_SIZE + 8 + FABRIC_NONCE_SIZE)
#define FABRIC_REPLY_SIZE (FABRIC_HELLO_SIZE + FABRIC_MAC_SIZE)
#define FABRIC_AUTH_SIZE  (FABRIC_HDR_SIZE + FABRIC_MAC_SIZE)

/*
 * Message types: a u16 on the wire. The codec only checks that a sealed
 * frame's type is in [FABRIC_MSG_SEALED, FABRIC_MSG_END) and that the
 * handshake's types come in their order; what a type means is up to its
 * range's owner.
 */
enum fabric_msg_type {
	FABRIC_MSG_NONE = 0, /* never valid */
	/* the handshake, in the clear (header version 0, sequence 0) */
	FABRIC_MSG_HELLO = 0x0001,
	FABRIC_MSG_HELLO_REPLY = 0x0002,
	FABRIC_MSG_AUTH = 0x0003,
	/* sealed frames from here on */
	FABRIC_MSG_SEALED = 0x0010,
	/* the transports' own: liveness and an orderly close */
	FABRIC_MSG_HEARTBEAT = FABRIC_MSG_SEALED,
	FABRIC_MSG_CLOSE = 0x0011,
	/* RDMA's queue-pair parameters, once after the handshake */
	FABRIC_MSG_RDMA_PARAMS = 0x0012,
	/* host daemons and multi-host runs: starting and stopping VMMs */
	FABRIC_MSG_CTL_FIRST = 0x0100,
	FABRIC_MSG_CTL_LAST = 0x01ff,
	/* the DSM's coherence messages (defined with the DSM) */
	FABRIC_MSG_DSM_FIRST = 0x0200,
	FABRIC_MSG_DSM_LAST = 0x02ff,
	/* later subsystems take ranges below this */
	FABRIC_MSG_END = 0x1000,
};

enum fabric_err {
	FABRIC_OK = 0,
	FABRIC_E_INCOMPLETE, /* a prefix so far: not an error on a stream */
	FABRIC_E_MAGIC,	     /* not a fabric frame */
	FABRIC_E_TOO_LONG,   /* length beyond FABRIC_MAX_BODY */
	FABRIC_E_HEADER,     /* a malformed header or handshake message */
	FABRIC_E_TYPE,	     /* a type out of range or out of turn */
	FABRIC_E_VERSION,    /* another version, or no common version */
	FABRIC_E_VM,	     /* addressed to another VM */
	FABRIC_E_SEQ,	     /* replayed, reordered or dropped frame */
	FABRIC_E_AUTH,	     /* forged or corrupted, or another key */
	FABRIC_E_KEY,	     /* the peer does not prove it holds the key */
	FABRIC_E_SPACE,	     /* an output buffer too small, payload too big */
	FABRIC_E_EXHAUSTED,  /* sequence numbers used up: reconnect */
	FABRIC_E_STATE,	     /* a call out of turn, or bad arguments */
	FABRIC_E_COUNT
};

/* One line, no newline, for any value (unknown ones too). */
const char *fabric__strerror(int err);

/* A frame header, decoded. On the wire: magic[4], then little-endian u16
 * version, u16 type, u32 len, u32 reserved (0), u64 seq, u64 vm_id. */
struct fabric_hdr {
	uint16_t version;
	uint16_t type;
	uint32_t len; /* bytes after the header */
	uint64_t seq;
	uint64_t vm_id;
};

void fabric__hdr_put(const struct fabric_hdr *h, uint8_t out[FABRIC_HDR_SIZE]);

/*
 * The framing alone, for a stream reader: the header at buf[0..len).
 * FABRIC_OK: the whole frame, FABRIC_HDR_SIZE + h->len bytes, is there.
 * FABRIC_E_INCOMPLETE: *need is the bytes the frame needs as far as is
 * known (the header's size until the header is complete).
 * FABRIC_E_MAGIC, _TOO_LONG, _HEADER: the stream is not the fabric's.
 * It does not authenticate anything: h is what the peer claims.
 */
int fabric__peek(const uint8_t *buf, size_t len, struct fabric_hdr *h,
		 size_t *need);

enum fabric_role {
	FABRIC_INITIATOR, /* connects, sends HELLO */
	FABRIC_RESPONDER, /* accepts, sends HELLO_REPLY */
};

/* One connection's keys and counters, from a handshake. Single-threaded:
 * a transport seals from one thread and opens from one (possibly another:
 * the tx and rx halves share nothing that either writes). */
struct fabric_session {
	uint64_t vm_id;
	uint16_t version;
	uint8_t tx_dir, rx_dir; /* nonce prefixes: 0 initiator->responder */
	uint64_t tx_seq;	/* the next frame's sequence number, each way */
	uint64_t rx_seq;
	uint8_t tx_key[FABRIC_KEY_SIZE];
	uint8_t rx_key[FABRIC_KEY_SIZE];
};

/* A session from known keys (the handshake's end; tests and fuzzers). */
void fabric__session_init(struct fabric_session *s, enum fabric_role role,
			  uint64_t vm_id, uint16_t version,
			  const uint8_t i2r_key[FABRIC_KEY_SIZE],
			  const uint8_t r2i_key[FABRIC_KEY_SIZE]);
void fabric__session_wipe(struct fabric_session *s);

/* Bytes a sealed frame of len payload bytes takes. */
static inline size_t fabric__frame_size(size_t len)
{
	return FABRIC_HDR_SIZE + len + FABRIC_TAG_SIZE;
}

/*
 * Seal len bytes of payload (len <= FABRIC_MAX_PAYLOAD, may be 0) as a
 * frame of the given type into out[0..cap); *out_len is its size. The
 * payload must not overlap out. Uses one sequence number, on success only.
 */
int fabric__seal(struct fabric_session *s, uint16_t type, const void *payload,
		 size_t len, uint8_t *out, size_t cap, size_t *out_len);

/* A frame opened. */
struct fabric_msg {
	uint16_t type;
	uint32_t len; /* payload bytes */
	uint64_t seq;
};

/*
 * Open the frame at in[0..len) into payload[0..cap). FABRIC_OK: *used is
 * the frame's size (the next frame starts there), m describes it, the
 * session expects the next sequence number. FABRIC_E_INCOMPLETE: *used is
 * the size needed as far as known (see fabric__peek). The header is
 * checked as soon as it is complete, so a frame that cannot be the next
 * one is refused before its body arrives. Any other error: the session is
 * unchanged and payload holds nothing of the frame.
 */
int fabric__open(struct fabric_session *s, const uint8_t *in, size_t len,
		 size_t *used, struct fabric_msg *m, void *payload,
		 size_t cap);

/*
 * The handshake (handshake.c), driven by the transport:
 *
 *   initiator                              responder
 *   fabric__hs_init                        fabric__hs_init
 *   fabric__hs_hello      -- HELLO -->     fabric__peek: which VM, so
 *                                          which key
 *                                          fabric__hs_reply
 *   fabric__hs_confirm  <-- HELLO_REPLY --
 *     (session ready)     -- AUTH -->      fabric__hs_accept
 *                                            (session ready)
 *
 * The initiator may send frames right after AUTH; the responder opens none
 * before fabric__hs_accept succeeds. Each side's MAC covers both hellos
 * whole (so both nonces and both version ranges: a replayed message, or a
 * range changed in flight, fails FABRIC_E_KEY); the session keys are
 * BLAKE2b, keyed with the VM's key, over the same transcript.
 *
 * Versions: the responder picks the highest version in both ranges. With
 * none in common it still writes a HELLO_REPLY (naming version 0 and its
 * range) for the initiator to report, and returns FABRIC_E_VERSION: send
 * it, then close. Either side's peer_min/peer_max then say what the peer
 * speaks.
 */
struct fabric_hs {
	enum fabric_role role;
	int state;
	uint16_t min, max;	     /* the versions we accept */
	uint16_t peer_min, peer_max; /* the peer's, once heard */
	uint16_t version;	     /* agreed */
	uint64_t vm_id;
	uint8_t key[FABRIC_KEY_SIZE];
	uint8_t nonce[FABRIC_NONCE_SIZE];
	uint8_t transcript[32]; /* hash of both hellos, less the reply's MAC */
	uint8_t hello[FABRIC_HELLO_SIZE]; /* the initiator's, as sent */
};

/* Versions accepted: normally FABRIC_VERSION_MIN..FABRIC_VERSION. The
 * nonce is random; nonce != NULL fixes it (tests, fuzzers, never a real
 * connection). FABRIC_E_STATE if min > max or max is 0. */
int fabric__hs_init(struct fabric_hs *hs, enum fabric_role role,
		    uint16_t min, uint16_t max,
		    const uint8_t nonce[FABRIC_NONCE_SIZE]);
/* Initiator: write HELLO (FABRIC_HELLO_SIZE bytes) for this VM. */
int fabric__hs_hello(struct fabric_hs *hs, uint64_t vm_id,
		     const uint8_t key[FABRIC_KEY_SIZE], uint8_t *out,
		     size_t cap, size_t *out_len);
/* Responder: read a HELLO from in[0..len), with the key of the VM its
 * header names; write HELLO_REPLY (FABRIC_REPLY_SIZE bytes). *used as for
 * fabric__open. */
int fabric__hs_reply(struct fabric_hs *hs, const uint8_t key[FABRIC_KEY_SIZE],
		     const uint8_t *in, size_t len, size_t *used, uint8_t *out,
		     size_t cap, size_t *out_len);
/* Initiator: read HELLO_REPLY, check the responder's proof, write AUTH
 * (FABRIC_AUTH_SIZE bytes) and fill the session. */
int fabric__hs_confirm(struct fabric_hs *hs, const uint8_t *in, size_t len,
		       size_t *used, uint8_t *out, size_t cap,
		       size_t *out_len, struct fabric_session *s);
/* Responder: read AUTH, check the initiator's proof, fill the session. */
int fabric__hs_accept(struct fabric_hs *hs, const uint8_t *in, size_t len,
		      size_t *used, struct fabric_session *s);
/* Forget the key and the nonces (done, failed or abandoned). */
void fabric__hs_wipe(struct fabric_hs *hs);

#endif
