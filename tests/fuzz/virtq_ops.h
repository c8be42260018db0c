/* SPDX-License-Identifier: MIT */
/*
 * fuzz_virtq's input layout, shared with gen_corpus.c's seeds. Byte 0 is
 * the target (mod VQ_TARGETS), then operations: an opcode byte (mod the
 * target's number of operations) and its operands, little-endian. An
 * address operand (A) is 3 bytes: a tag and a u16, decoded by the tag's
 * low 3 bits: 0-4 the u16 itself (inside RAM), 5 RAM_SIZE - (u16 & 0x3ff),
 * 6 RAM_SIZE + u16, 7 a wild base +/- u16; tag bit 7 keeps a ring address
 * unaligned. A length (L) is a u16, 0xfff0-0xffff standing for huge ones.
 */
#ifndef SLOS_FUZZ_VIRTQ_OPS_H
#define SLOS_FUZZ_VIRTQ_OPS_H

#define VQ_RAM_SIZE 0x10000ULL

enum {
	VQ_QUEUE,   /* one queue driven directly */
	VQ_RNG,	    /* the transport over virtio-rng */
	VQ_CONSOLE, /* ... over virtio-console */
	VQ_BLK,	    /* ... over virtio-blk */
	VQ_PARSE,   /* byte: bit 0 --net, else --disk; then the value */
	VQ_TARGETS
};

/* The driver's writes into RAM, in every target but VQ_PARSE. q is a
 * byte, mod the device's number of queues. */
enum {
	D_DESC,	   /* q, index u8, A addr, L len, flags u8, next u8 */
	D_AVAIL,   /* q, slot u8, head u16 */
	D_PUBLISH, /* q, delta u8 (bit 7: the new avail index, u16, follows) */
	D_FLAGS,   /* q, avail flags u16 */
	D_POKE,	   /* q, gpa u16, n u8 (mod 64), n bytes */
	/* q, head u8, segs u8 (1 + mod 8), outs u8 (mod segs + 1), A addr,
	 * seglen u16 (1 + mod 4096), hdr u8, sector u8: a well-formed chain
	 * offered in the avail ring; hdr bit 7 makes it a blk request (type
	 * hdr & 15 in a 16-byte first segment, a 1-byte status last). */
	D_CHAIN,
	NR_DRIVER_OPS
};

/* VQ_QUEUE. */
enum {
	/* s u8: num 1 << (s & 15) % 9, or if bit 7 a u16; A desc, A avail,
	 * A used */
	Q_SETUP = NR_DRIVER_OPS,
	Q_READY, /* made ready if virtq__valid */
	Q_UNREADY,
	/* u16: the size, as QUEUE_NUM may set it while not ready */
	Q_NUM,
	Q_POP, /* slot u8 (mod 4) */
	/* s u8: the head of slot s % 4, or if bit 7 a u16; len u32 */
	Q_PUSH,
	Q_READ,	 /* slot u8, off u16, len u16 */
	Q_WRITE, /* the same */
	NR_QUEUE_OPS
};

/* VQ_RNG, VQ_CONSOLE, VQ_BLK. */
enum {
	/* reg u8 (an index in fuzz_virtq.c's regs[]), u32 */
	T_WRITE = NR_DRIVER_OPS,
	T_READ, /* reg u8 */
	/* off u16 (mod 0x1000), s u8 (size 1 << (s & 3); bit 2: write),
	 * u32 lo, u32 hi */
	T_RAW,
	/* A driver's probe: lo u32, b u8 (bit 0: hi u32 follows, else 1),
	 * st u8 (bit 0: DRIVER_OK; bit 7: lo not masked by the offer) */
	T_INIT,
	/* sel u8 (mod 4 unless bit 7), s u8 (num as Q_SETUP; bit 6:
	 * QUEUE_READY), A desc, A avail, A used */
	T_QUEUE,
	T_RUN,	 /* one round of the worker */
	T_INPUT, /* n u8, n bytes for virtio__console_in */
	T_RESET,
	/* A peer's state for a moved device: VIRTIO_STATE_SIZE bytes
	 * (short input: zeros) into virtio__load. */
	T_LOAD,
	T_SAVE_LOAD, /* save, then load the same bytes: must succeed */
	NR_DEV_OPS
};

#endif
