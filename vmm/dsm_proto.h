/*
 * vmm/dsm_proto.h: the DSM coherence protocol's names, shared with its
 * Promela model vmm/dsm.pml (tests/spin-check.sh checks that every DSM_*
 * name of the model is defined here and that the numeric page and directory
 * states are equal). docs/dsm.md explains the protocol; the model is the
 * reference: the C state machine takes the same transitions on the same
 * messages.
 *
 * Roles. Every page has a home host (the directory: state, owner, copyset,
 * the home's own copy "store", and a FIFO of requests that wait while the
 * entry is busy). Every host, the home included, has a cache agent holding
 * a dsm_page_state per page. The home's cache agent talks to its own
 * directory through an in-order local queue, with the same messages.
 *
 * Ordering the protocol relies on: messages from host A to host B about one
 * page are handled by B in the order A sent them (one ordered stream per
 * pair: the TCP connection, or the RDMA RC queue pair, plus the local queue
 * for A == B). Nothing else is ordered. Each message is handled completely,
 * under the page's lock, before the next one of that page; a handler never
 * blocks (sends are queued, requests for a busy entry go to its FIFO).
 *
 * Common fields of every message: type (enum dsm_msg_type) and gpa (the
 * guest-physical address of the 4 KiB page, page-aligned). The sender is
 * the peer of the connection it came on. No request id, version or epoch
 * is needed: a host has at most one request outstanding per page and the
 * home one transaction per page, and the per-pair order does the rest.
 * Payload kinds (enum dsm_payload): only DSM_DATA, DSM_FWD_DATA and DSM_WB
 * carry page contents, as DSM_PAYLOAD_ZERO (all-zero page: no bytes on the
 * wire, e.g. a page never written) or DSM_PAYLOAD_PAGE (4096 bytes); every
 * other message has DSM_PAYLOAD_NONE.
 */
#ifndef SLOS_DSM_PROTO_H
#define SLOS_DSM_PROTO_H

/* Message types. Values are this header's (the model's mtype numbering is
 * spin's own); the names are the model's. */
enum dsm_msg_type {
	DSM_MSG_INVALID = 0,

	/* ---- cache agent -> home ---- */

	/*
	 * DSM_READ_REQ: requester -> home. A read fault (guest or VMM access)
	 * on a page in DSM_I, after reserving a budget slot (evict first if
	 * full). Requester goes DSM_I -> DSM_IS_D. Fields: gpa. Payload none.
	 * Answered by DSM_DATA(grant DSM_S), maybe after the home fetched the
	 * page from its owner.
	 */
	DSM_READ_REQ = 1,

	/*
	 * DSM_WRITE_REQ: requester -> home. A write fault on a page in DSM_I
	 * (miss: DSM_I -> DSM_IM_D, reserves a slot) or in DSM_S (upgrade:
	 * DSM_S -> DSM_SM_D, keeps its read-only copy and slot). Fields: gpa.
	 * Payload none. Answered by DSM_GRANT if the requester's S copy is
	 * still in the copyset when the home serves it, else DSM_DATA(grant
	 * DSM_M).
	 */
	DSM_WRITE_REQ = 2,

	/*
	 * DSM_EVICT: sharer -> home. The host dropped its DSM_S copy
	 * (eviction over budget; MADV_DONTNEED first): DSM_S -> DSM_I. Fields:
	 * gpa. Payload none. No reply. The home removes it from the copyset
	 * (DSM_DIR_S, maybe -> DSM_DIR_I) or ignores it if it already sent
	 * that host a DSM_INV (DSM_DIR_SM_A): the INV_ACK follows anyway.
	 * Only from stable DSM_S: a page in a transient state is never evicted.
	 */
	DSM_EVICT = 3,

	/*
	 * DSM_WB: owner -> home. The host evicts its DSM_M copy: write-protect,
	 * copy, MADV_DONTNEED, DSM_M -> DSM_I, send. Fields: gpa, payload
	 * (zero or 4 KiB). No reply. The home stores it: DSM_DIR_M -> DSM_DIR_I;
	 * or, if it had forwarded a request to this owner (DSM_DIR_MS_D /
	 * DSM_DIR_MM_D), the WB answers that forward (the owner will drop the
	 * forward when it arrives). Only from stable DSM_M.
	 */
	DSM_WB = 4,

	/*
	 * DSM_INV_ACK: invalidated host -> home. Reply to every DSM_INV,
	 * whatever the host's state: DSM_S -> DSM_I, DSM_SM_D -> DSM_IM_D,
	 * and in DSM_I / DSM_IS_D / DSM_IM_D (it evicted while the INV was in
	 * flight) no change. Fields: gpa. Payload none. The home counts them
	 * in DSM_DIR_SM_A.
	 */
	DSM_INV_ACK = 5,

	/*
	 * DSM_FWD_DATA: owner -> home. Reply to DSM_FWD_READ (owner
	 * write-protects, copies: DSM_M -> DSM_S) or DSM_FWD_WRITE (owner
	 * write-protects, copies, drops: DSM_M -> DSM_I). Fields: gpa, payload
	 * (zero or 4 KiB). The home stores it and answers the waiting
	 * requester with DSM_DATA.
	 */
	DSM_FWD_DATA = 6,

	/* ---- home -> cache agent ---- */

	/*
	 * DSM_DATA: home -> requester. The page and the state granted.
	 * Fields: gpa, grant (DSM_S for a DSM_READ_REQ: DSM_IS_D -> DSM_S,
	 * install read-only; DSM_M for a DSM_WRITE_REQ: DSM_IM_D -> DSM_M,
	 * install writable), payload (zero or 4 KiB: the home's store, just
	 * refreshed from the owner if there was one).
	 */
	DSM_DATA = 7,

	/*
	 * DSM_GRANT: home -> requester. Reply to an upgrade DSM_WRITE_REQ
	 * whose S copy survived: every other copy is gone, DSM_SM_D -> DSM_M
	 * (un-write-protect). Fields: gpa. Payload none.
	 */
	DSM_GRANT = 8,

	/*
	 * DSM_INV: home -> sharer. A writer waits (DSM_DIR_SM_A): drop the S
	 * copy (MADV_DONTNEED). Fields: gpa. Payload none. Always answered by
	 * DSM_INV_ACK (see there). Never sent to the owner.
	 */
	DSM_INV = 9,

	/*
	 * DSM_FWD_READ: home -> owner. A reader waits (DSM_DIR_MS_D): in
	 * DSM_M, write-protect, send DSM_FWD_DATA, -> DSM_S. In DSM_I /
	 * DSM_IS_D / DSM_IM_D it is stale (this host's DSM_WB crossed it and
	 * answered the home): drop it, no reply. Fields: gpa. Payload none.
	 */
	DSM_FWD_READ = 10,

	/*
	 * DSM_FWD_WRITE: home -> owner. A writer waits (DSM_DIR_MM_D): in
	 * DSM_M, write-protect, send DSM_FWD_DATA, drop, -> DSM_I. Stale in
	 * DSM_I / DSM_IS_D / DSM_IM_D: drop, no reply. Fields: gpa. Payload
	 * none.
	 */
	DSM_FWD_WRITE = 11,

	DSM_MSG_MAX = 12,
};

/*
 * A host's state for one page (its cache agent). Numbered as in the model.
 * "Slot": the page counts against the host's budget (--host-mem).
 */
enum dsm_page_state {
	DSM_I = 0,	/* invalid: not mapped; any access faults. No slot. */
	DSM_S = 1,	/* shared: mapped read-only (UFFDIO_WRITEPROTECT); slot */
	DSM_M = 2,	/* modified: mapped writable, the only copy; slot */
	DSM_IS_D = 3,	/* DSM_READ_REQ sent, waiting for DSM_DATA; slot reserved */
	DSM_IM_D = 4,	/* DSM_WRITE_REQ sent, waiting for DSM_DATA; slot reserved */
	DSM_SM_D = 5,	/* upgrade sent holding S (still readable), waiting for
			 * DSM_GRANT; a DSM_INV meanwhile drops the copy and
			 * moves to DSM_IM_D; slot */
	DSM_PAGE_STATE_MAX = 6,
};

/* The directory entry of a page at its home. Numbered as in the model.
 * The entry is busy in the last three: requests then wait in its FIFO
 * (at most one per host) and are served in arrival order when it is free. */
enum dsm_dir_state {
	DSM_DIR_I = 0,		/* no cached copy; store is current */
	DSM_DIR_S = 1,		/* copyset (>= 1 host) holds copies equal to store */
	DSM_DIR_M = 2,		/* owner holds the only copy; store is stale */
	DSM_DIR_SM_A = 3,	/* busy: DSM_INV sent to the other sharers of a
				 * writer, counting DSM_INV_ACKs */
	DSM_DIR_MS_D = 4,	/* busy: DSM_FWD_READ sent to the owner for a reader,
				 * waiting for DSM_FWD_DATA or the owner's DSM_WB */
	DSM_DIR_MM_D = 5,	/* busy: DSM_FWD_WRITE sent to the owner for a writer,
				 * waiting for DSM_FWD_DATA or the owner's DSM_WB */
	DSM_DIR_STATE_MAX = 6,
};

/* How DSM_DATA, DSM_FWD_DATA and DSM_WB carry the page. */
enum dsm_payload {
	DSM_PAYLOAD_NONE = 0,	/* every other message */
	DSM_PAYLOAD_ZERO = 1,	/* the page is all zero: no bytes follow */
	DSM_PAYLOAD_PAGE = 2,	/* 4096 bytes follow */
};

#define DSM_PAGE_BYTES 4096u

/* Checked by the model (its channel bound): at most this many messages about
 * one page are in flight from one host to another at any time, so a
 * connection's send queue needs at most this many entries per page. */
#define DSM_INFLIGHT_PER_PAGE 3u

#endif /* SLOS_DSM_PROTO_H */
