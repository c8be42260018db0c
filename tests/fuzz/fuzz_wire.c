// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the fabric's wire codec (fabric/wire.h): whatever
 * reaches a host's port is untrusted, so arbitrary bytes go to the frame
 * decoder and to each step of the handshake.
 *
 * Input: byte 0 picks the target (mod 4), the rest is what the peer sent:
 *   0  a stream of frames, opened one after another by a responder's
 *      session with fixed keys (seeds hold frames sealed under them, so
 *      mutations start from frames that open);
 *   1  a round trip: bytes 1-2 a type, the rest a payload; sealed, it must
 *      open to the same, and with any one bit flipped (chosen from the
 *      input) it must not;
 *   2  a responder (fixed key and nonce) given a HELLO, then an AUTH;
 *   3  an initiator (fixed key and nonce) given a HELLO_REPLY.
 * Whatever the input: a known error code, "incomplete" only asking for
 * more than it was given and never more than a frame, "ok" never taking
 * more than it was given.
 *
 * FUZZ_WIRE_SEEDS=DIR build/fuzz/fuzz_wire writes the seed corpus (valid
 * frames and handshake messages for these keys and nonces) and exits.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fabric/wire.h"

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c))                                                      \
			__builtin_trap();                                      \
	} while (0)

#define VM 0x5eed5eed5eed5eedULL
static const uint8_t vm_key[FABRIC_KEY_SIZE] = "fuzz_wire: the VM's key";
static const uint8_t k_i2r[FABRIC_KEY_SIZE] = "fuzz_wire: initiator->responder";
static const uint8_t k_r2i[FABRIC_KEY_SIZE] = "fuzz_wire: responder->initiator";
static const uint8_t nonce_i[FABRIC_NONCE_SIZE] = "fuzz_wire: initiator nonce";
static const uint8_t nonce_r[FABRIC_NONCE_SIZE] = "fuzz_wire: responder nonce";

static void check_code(int r, size_t len, size_t used)
{
	const char *s = fabric__strerror(r);

	CHECK(r >= 0 && r < FABRIC_E_COUNT);
	CHECK(s[0] && !strchr(s, '\n'));
	if (r == FABRIC_OK)
		CHECK(used <= len);
	if (r == FABRIC_E_INCOMPLETE)
		CHECK(used > len && used <= FABRIC_MAX_FRAME);
}

static void sessions(struct fabric_session *i, struct fabric_session *r)
{
	fabric__session_init(i, FABRIC_INITIATOR, VM, FABRIC_VERSION, k_i2r,
			     k_r2i);
	fabric__session_init(r, FABRIC_RESPONDER, VM, FABRIC_VERSION, k_i2r,
			     k_r2i);
}

static void stream(const uint8_t *data, size_t size)
{
	static uint8_t payload[FABRIC_MAX_PAYLOAD];
	struct fabric_session i, r;
	struct fabric_msg m;
	size_t used;

	sessions(&i, &r);
	while (size) {
		uint64_t seq = r.rx_seq;
		int res = fabric__open(&r, data, size, &used, &m, payload,
				       sizeof(payload));

		check_code(res, size, used);
		if (res != FABRIC_OK) {
			CHECK(r.rx_seq == seq);
			return;
		}
		CHECK(used == fabric__frame_size(m.len));
		CHECK(m.len <= FABRIC_MAX_PAYLOAD && m.seq == seq);
		CHECK(m.type >= FABRIC_MSG_SEALED && m.type < FABRIC_MSG_END);
		CHECK(r.rx_seq == seq + 1);
		data += used;
		size -= used;
	}
}

static void round_trip(const uint8_t *data, size_t size)
{
	static uint8_t frame[FABRIC_MAX_FRAME], got[FABRIC_MAX_PAYLOAD];
	struct fabric_session i, r;
	struct fabric_msg m;
	size_t n = 0, used;

	if (size < 2)
		return;
	uint16_t type = data[0] | data[1] << 8;
	data += 2;
	size -= 2;
	if (size > FABRIC_MAX_PAYLOAD)
		size = FABRIC_MAX_PAYLOAD;
	sessions(&i, &r);
	int res = fabric__seal(&i, type, data, size, frame, sizeof(frame), &n);
	if (type < FABRIC_MSG_SEALED || type >= FABRIC_MSG_END) {
		CHECK(res == FABRIC_E_TYPE && i.tx_seq == 0);
		return;
	}
	CHECK(res == FABRIC_OK && n == fabric__frame_size(size));

	uint8_t *c = malloc(n);
	memcpy(c, frame, n);
	CHECK(fabric__open(&r, c, n, &used, &m, got, size) == FABRIC_OK);
	CHECK(used == n && m.type == type && m.len == size && m.seq == 0);
	CHECK(!memcmp(got, data, size));

	/* the same frame again, one bit flipped: refused, or (a length
	 * made longer) incomplete, never opened */
	sessions(&i, &r);
	size_t bit = 0;
	for (size_t k = 0; k < size && k < 8; k++)
		bit = bit * 251 + data[k];
	bit %= n * 8;
	memcpy(c, frame, n);
	c[bit / 8] ^= 1 << bit % 8;
	res = fabric__open(&r, c, n, &used, &m, got, sizeof(got));
	check_code(res, n, used);
	CHECK(res != FABRIC_OK && r.rx_seq == 0);
	free(c);
}

static void responder(const uint8_t *data, size_t size)
{
	struct fabric_hs hs;
	struct fabric_session s;
	uint8_t reply[FABRIC_REPLY_SIZE];
	size_t used, n;

	CHECK(fabric__hs_init(&hs, FABRIC_RESPONDER, FABRIC_VERSION_MIN,
			      FABRIC_VERSION, nonce_r) == FABRIC_OK);
	int res = fabric__hs_reply(&hs, vm_key, data, size, &used, reply,
				   sizeof(reply), &n);
	check_code(res, size, used);
	if (res != FABRIC_OK)
		return;
	CHECK(used == FABRIC_HELLO_SIZE && n == FABRIC_REPLY_SIZE);
	data += used;
	size -= used;
	res = fabric__hs_accept(&hs, data, size, &used, &s);
	check_code(res, size, used);
	if (res == FABRIC_OK)
		CHECK(used == FABRIC_AUTH_SIZE && s.vm_id == hs.vm_id &&
		      s.version >= FABRIC_VERSION_MIN &&
		      s.version <= FABRIC_VERSION);
}

static void initiator(const uint8_t *data, size_t size)
{
	struct fabric_hs hs;
	struct fabric_session s;
	uint8_t buf[FABRIC_REPLY_SIZE];
	size_t used, n;

	CHECK(fabric__hs_init(&hs, FABRIC_INITIATOR, FABRIC_VERSION_MIN,
			      FABRIC_VERSION, nonce_i) == FABRIC_OK);
	CHECK(fabric__hs_hello(&hs, VM, vm_key, buf, sizeof(buf), &n) ==
	      FABRIC_OK);
	int res = fabric__hs_confirm(&hs, data, size, &used, buf, sizeof(buf),
				     &n, &s);
	check_code(res, size, used);
	if (res == FABRIC_OK)
		CHECK(used == FABRIC_REPLY_SIZE && n == FABRIC_AUTH_SIZE &&
		      s.vm_id == VM);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;

	/* exact-size copy, so ASan sees any read past the end */
	uint8_t *buf = malloc(size - 1 ? size - 1 : 1);
	memcpy(buf, data + 1, size - 1);
	switch (data[0] % 4) {
	case 0:
		stream(buf, size - 1);
		break;
	case 1:
		round_trip(buf, size - 1);
		break;
	case 2:
		responder(buf, size - 1);
		break;
	case 3:
		initiator(buf, size - 1);
		break;
	}
	free(buf);
	return 0;
}

/* ---- seeds ---- */

static void seed(const char *dir, const char *name, uint8_t target,
		 const uint8_t *p, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fputc(target, f) == EOF || fwrite(p, 1, len, f) != len ||
	    fclose(f)) {
		perror(path);
		exit(1);
	}
}

static void write_seeds(const char *dir)
{
	static uint8_t buf[4 * FABRIC_MAX_FRAME], page[FABRIC_MAX_PAYLOAD];
	/* the largest frame also sets libFuzzer's default -max_len */
	static const size_t lens[] = {0, 1, 64, FABRIC_MAX_PAYLOAD};
	struct fabric_session i, r;
	struct fabric_hs hi, hr;
	uint8_t hello[FABRIC_HELLO_SIZE], reply[FABRIC_REPLY_SIZE],
		two[FABRIC_HELLO_SIZE + FABRIC_AUTH_SIZE];
	size_t len = 0, n, used;

	/* frames: one of each size, then a stream of small ones */
	for (size_t k = 0; k < sizeof(page); k++)
		page[k] = k * 7;
	for (size_t k = 0; k < 4; k++) {
		char name[32];

		sessions(&i, &r);
		fabric__seal(&i, FABRIC_MSG_DSM_FIRST + k, page, lens[k], buf,
			     sizeof(buf), &n);
		snprintf(name, sizeof(name), "frame-%zu", lens[k]);
		seed(dir, name, 0, buf, n);
	}
	sessions(&i, &r);
	for (size_t k = 0; k < 4; k++) {
		fabric__seal(&i, FABRIC_MSG_HEARTBEAT + k, page, k * 20,
			     buf + len, sizeof(buf) - len, &n);
		len += n;
	}
	seed(dir, "stream", 0, buf, len);

	/* round trips: a type, a payload */
	buf[0] = FABRIC_MSG_DSM_FIRST & 0xff;
	buf[1] = FABRIC_MSG_DSM_FIRST >> 8;
	memcpy(buf + 2, page, 64);
	seed(dir, "seal-64", 1, buf, 66);
	buf[0] = 0;
	buf[1] = 0;
	seed(dir, "seal-none", 1, buf, 2);

	/* a handshake with the harness's keys and nonces */
	fabric__hs_init(&hi, FABRIC_INITIATOR, FABRIC_VERSION_MIN,
			FABRIC_VERSION, nonce_i);
	fabric__hs_init(&hr, FABRIC_RESPONDER, FABRIC_VERSION_MIN,
			FABRIC_VERSION, nonce_r);
	fabric__hs_hello(&hi, VM, vm_key, hello, sizeof(hello), &n);
	fabric__hs_reply(&hr, vm_key, hello, sizeof(hello), &used, reply,
			 sizeof(reply), &n);
	memcpy(two, hello, sizeof(hello));
	if (fabric__hs_confirm(&hi, reply, sizeof(reply), &used,
			       two + sizeof(hello), FABRIC_AUTH_SIZE, &n,
			       &i) != FABRIC_OK) {
		fprintf(stderr, "fuzz_wire: seed handshake failed\n");
		exit(1);
	}
	seed(dir, "hello-auth", 2, two, sizeof(two));
	seed(dir, "hello", 2, hello, sizeof(hello));
	seed(dir, "reply", 3, reply, sizeof(reply));
	exit(0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("FUZZ_WIRE_SEEDS");

	if (dir)
		write_seeds(dir);
	return 0;
}
