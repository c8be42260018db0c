// SPDX-License-Identifier: MIT
/* The DSM messages' bytes inside a fabric frame: pure, and fuzzed. */
#include <errno.h>
#include <string.h>

#include "vmm/dsm.h"

static const char *const names[DSM_MSG_MAX] = {
    [DSM_READ_REQ] = "DSM_READ_REQ",
    [DSM_WRITE_REQ] = "DSM_WRITE_REQ",
    [DSM_EVICT] = "DSM_EVICT",
    [DSM_WB] = "DSM_WB",
    [DSM_INV_ACK] = "DSM_INV_ACK",
    [DSM_FWD_DATA] = "DSM_FWD_DATA",
    [DSM_DATA] = "DSM_DATA",
    [DSM_GRANT] = "DSM_GRANT",
    [DSM_INV] = "DSM_INV",
    [DSM_FWD_READ] = "DSM_FWD_READ",
    [DSM_FWD_WRITE] = "DSM_FWD_WRITE",
};

const char *dsm__msg_name(unsigned type)
{
	return type < DSM_MSG_MAX && names[type] ? names[type] : "DSM_?";
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = v >> (8 * i);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

size_t dsm__encode(const struct dsm_msg *m, uint8_t *out)
{
	memset(out, 0, DSM_WIRE_HDR);
	put64(out, m->gpa);
	out[8] = m->type;
	out[9] = m->grant;
	out[10] = m->payload;
	if (m->payload != DSM_PAYLOAD_PAGE)
		return DSM_WIRE_HDR;
	memcpy(out + DSM_WIRE_HDR, m->page, DSM_PAGE_BYTES);
	return DSM_WIRE_MAX;
}

/* Which messages carry a page, and which a grant. */
static bool has_data(uint8_t t)
{
	return t == DSM_DATA || t == DSM_FWD_DATA || t == DSM_WB;
}

int dsm__decode(const uint8_t *buf, size_t len, struct dsm_msg *m,
		const char **why)
{
	const char *w = NULL;

	memset(m, 0, sizeof(*m));
	if (len < DSM_WIRE_HDR) {
		w = "short DSM message";
		goto bad;
	}
	m->gpa = get64(buf);
	m->type = buf[8];
	m->grant = buf[9];
	m->payload = buf[10];
	for (int i = 11; i < DSM_WIRE_HDR; i++)
		if (buf[i])
			w = "reserved DSM header bytes set";
	if (w)
		goto bad;
	if (!m->type || m->type >= DSM_MSG_MAX)
		w = "unknown DSM message type";
	else if (m->gpa % DSM_PAGE_BYTES)
		w = "unaligned guest page";
	else if (has_data(m->type) ? m->payload != DSM_PAYLOAD_ZERO &&
					 m->payload != DSM_PAYLOAD_PAGE
				   : m->payload != DSM_PAYLOAD_NONE)
		w = "bad DSM payload kind";
	else if (m->type == DSM_DATA ? m->grant != DSM_S && m->grant != DSM_M
				     : m->grant != 0)
		w = "bad DSM grant";
	else if (len !=
		 (m->payload == DSM_PAYLOAD_PAGE ? DSM_WIRE_MAX : DSM_WIRE_HDR))
		w = "DSM message length does not match its payload";
	if (w)
		goto bad;
	if (m->payload == DSM_PAYLOAD_PAGE)
		m->page = buf + DSM_WIRE_HDR;
	return 0;
bad:
	if (why)
		*why = w;
	return -EINVAL;
}
