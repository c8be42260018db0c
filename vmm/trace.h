/* SPDX-License-Identifier: MIT */
/*
 * --trace FILE: what the vCPUs did, as Chrome trace-event JSON (opens in
 * ui.perfetto.dev or chrome://tracing). One process per host ("host N"),
 * one thread per vCPU ("vCPU N"): a "run" slice for every stretch a vCPU
 * ran on a host, an instant "jump" event at each arrival (from, to,
 * reason, latency, state bytes), a "fault" slice for each DSM fault a
 * vCPU waited for (page, read or write, its home host, wait), an "io"
 * slice for each device access forwarded to the device's host (port or
 * MMIO address, read or write, that host, wait), and the balancer's
 * decisions with their inputs.
 *
 * Host 0 writes the file. A member keeps its events as fixed 40-byte
 * records and sends them to host 0 in CL_TRACE frames (at most every
 * 200 ms, and when a batch is full); host 0 checks every record before it
 * formats it, so the file stays valid JSON whatever a peer sends.
 * Timestamps: each host's CLOCK_REALTIME in microseconds, shown relative
 * to host 0's at the start (hosts on one machine share it; others are as
 * close as their clock synchronization).
 */
#ifndef SLOS_TRACE_H
#define SLOS_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum trace_kind {
	TRACE_RUN_BEGIN, /* the vCPU runs on `host` from ts */
	TRACE_RUN_END,	 /* ... until ts */
	TRACE_JUMP,	 /* arrived: a = from, b = reason, c = latency us,
			  * d = state bytes */
	TRACE_FAULT,	 /* a DSM fault ended: a = guest-physical page,
			  * b = its home, c = wait us, d = write */
	TRACE_BALANCE,	 /* the policy's view: a = the host that served
			  * most, b = its faults, c = all remote faults,
			  * d = the verdict (enum bal_verdict) */
	TRACE_IO,	 /* a device access forwarded to another host
			  * ended: a = port or guest-physical address,
			  * b = that host, c = wait us, d = write */
	TRACE_NR_KINDS
};

struct trace_ev {
	uint8_t kind, host;
	uint16_t vcpu;
	uint32_t d;
	uint64_t ts_us;
	uint64_t a, b, c;
};
#define TRACE_EV_SIZE	40
#define TRACE_BATCH_MAX 204 /* records in one CL_TRACE frame */

/* Host 0: write events to path (created, truncated). -1 with why. */
int trace__open(const char *path, unsigned nhosts, unsigned nr_vcpus, char *why,
		size_t len);
/* A member: send batches through send (to host 0). */
void trace__remote(int (*send)(void *arg, const void *p, size_t len),
		   void *arg);
bool trace__on(void);
/* From any thread; cheap when tracing is off. */
void trace__emit(enum trace_kind k, unsigned host, unsigned vcpu, uint64_t a,
		 uint64_t b, uint64_t c, uint32_t d);
/* A member: send what is buffered. */
void trace__flush(void);
/* Host 0: a member's CL_TRACE frame (untrusted): 0, or -1 with why. */
int trace__recv(unsigned from, const uint8_t *p, size_t len, const char **why);
/* Host 0: finish the file. */
void trace__close(void);

/* The record codec (exact, little-endian; fuzzed with the jump codecs). */
void trace__put(const struct trace_ev *e, uint8_t *out);
void trace__get(struct trace_ev *e, const uint8_t *in);

#endif
