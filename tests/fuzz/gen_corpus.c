// SPDX-License-Identifier: MIT
/*
 * Writes the fuzzers' seed corpora: `gen_corpus DIR` fills DIR/loader/ with
 * tiny valid kernels in fuzz_loader's input layout (4-byte prefix, file,
 * command line), DIR/snapshot/ with manifests and state files in
 * fuzz_snapshot's (1-byte prefix, file), and DIR/virtq/ with well-behaved
 * drivers' sessions in fuzz_virtq's (tests/fuzz/virtq_ops.h).
 * Deterministic, so regenerating changes nothing.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>

#include "tests/fuzz/kimg.h"
#include "tests/fuzz/virtq_ops.h"
#include "vmm/snapshot.h"

static const char *dir;

static void seed(const char *name, uint8_t layout, uint8_t initrd,
		 const struct kbuf *img, const char *cl)
{
	size_t n = strlen(cl);
	uint8_t pre[4] = {layout, (uint8_t)n, (uint8_t)(n >> 8), initrd};
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/loader/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(pre, 1, 4, f) != 4 ||
	    fwrite(img->p, 1, img->len, f) != img->len ||
	    fwrite(cl, 1, n, f) != n || fclose(f)) {
		perror(path);
		exit(1);
	}
}

static void snap_seed(const char *name, uint8_t ctl, const void *p, size_t n)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/snapshot/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(&ctl, 1, 1, f) != 1 || fwrite(p, 1, n, f) != n ||
	    fclose(f)) {
		perror(path);
		exit(1);
	}
}

static const char manifest_full[] = "slos-snapshot 1\n"
				    "name web-1\n"
				    "vcpus 2\n"
				    "mem 268435456\n"
				    "pvm 0\n"
				    "tsc-khz 2994374\n"
				    "cpu-vendor GenuineIntel\n"
				    "cpu-model Intel(R) Xeon(R) CPU @ 2.20GHz\n"
				    "cpuid 00000001.0 ecx f6fa3203\n"
				    "cpuid 00000007.0 ebx 219c07a9\n"
				    "cpuid 80000001.0 edx 2c100800\n"
				    "kernel guest/linux/bzImage\n"
				    "cmdline console=ttyS0 quiet\n"
				    "taken 2024-05-01T12:00:00Z\n"
				    "end\n";

static const char manifest_min[] = "slos-snapshot 1\n"
				   "name x\n"
				   "vcpus 1\n"
				   "mem 16777216\n"
				   "pvm 1\n"
				   "tsc-khz 0\n"
				   "cpu-vendor AuthenticAMD\n"
				   "cpu-model \n"
				   "end\n";

/* The state format (vmm/snapshot_codec.c), written independently of it:
 * a header, records {u32 tag, u32 index, u64 len, payload padded to 8},
 * the end record, the CRC-32 of all that. */
static void srec(struct kbuf *b, uint32_t tag, uint32_t index, const void *p,
		 size_t n)
{
	static const uint8_t zero[8];
	uint64_t len = n;

	kb_put32(b, tag);
	kb_put32(b, index);
	kb_put(b, &len, 8);
	if (n)
		kb_put(b, p, n);
	kb_put(b, zero, (8 - n % 8) % 8);
}

/* A vCPU in long mode, as Linux runs; has picks the optional parts. */
static void svcpu(struct kbuf *b, uint32_t i, uint32_t has, uint32_t nr_msrs)
{
	static struct vcpu_state v;

	memset(&v, 0, sizeof(v));
	v.regs.rip = 0xffffffff81000000 + i * 0x40;
	v.regs.rsp = 0xffffc90000004000 + i * 0x4000;
	v.regs.rflags = 0x246;
	v.sregs.cr0 = 0x80050033;
	v.sregs.cr3 = 0x1000000 + i * 0x1000;
	v.sregs.cr4 = 0x3606f0;
	v.sregs.efer = 0xd01;
	v.sregs.cs = (struct kvm_segment){.selector = 0x10,
					  .limit = ~0u,
					  .type = 11,
					  .present = 1,
					  .s = 1,
					  .l = 1,
					  .g = 1};
	v.fpu.fcw = 0x37f;
	v.fpu.mxcsr = 0x1f80;
	v.xsave.region[0] = 0x37f;
	v.xsave.region[6] = 0x1f80;
	v.xcrs.nr_xcrs = 1;
	v.xcrs.xcrs[0].value = 7;
	v.lapic.regs[0x20 + 3] = i; /* APIC ID */
	v.lapic.regs[0xf0] = 0xff;
	v.lapic.regs[0xf1] = 1; /* software enabled */
	v.events.flags = KVM_VCPUEVENT_VALID_SHADOW;
	v.mp.mp_state = KVM_MP_STATE_RUNNABLE;
	v.dregs.dr6 = 0xffff0ff0;
	v.dregs.dr7 = 0x400;
	v.msrs[0] = (struct kvm_msr_entry){.index = 0xc0000080, .data = 0xd01};
	v.msrs[1] = (struct kvm_msr_entry){.index = 0x10, .data = 1 << 30};

	srec(b, 1, i, &v.regs, sizeof(v.regs));
	srec(b, 2, i, &v.sregs, sizeof(v.sregs));
	if (has & VCPU_HAS_XSAVE)
		srec(b, 3, i, &v.xsave, sizeof(v.xsave));
	else
		srec(b, 4, i, &v.fpu, sizeof(v.fpu));
	if (has & VCPU_HAS_XCRS)
		srec(b, 5, i, &v.xcrs, sizeof(v.xcrs));
	srec(b, 6, i, &v.lapic, sizeof(v.lapic));
	srec(b, 7, i, &v.events, sizeof(v.events));
	srec(b, 8, i, &v.mp, sizeof(v.mp));
	if (has & VCPU_HAS_DREGS)
		srec(b, 9, i, &v.dregs, sizeof(v.dregs));
	srec(b, 10, i, v.msrs, nr_msrs * sizeof(v.msrs[0]));
}

static void sstate(struct kbuf *b, unsigned nr, const uint32_t *has,
		   const uint32_t *nr_msrs)
{
	static struct snap_state s;

	memset(&s, 0, sizeof(s));
	s.clock.clock = 123456789012;
	s.uart.lcr = 3;
	s.uart.mcr = 0xb;
	s.uart.fcr = 0xc1;
	s.uart.dll = 1;
	s.ioapic.id = 0;
	for (unsigned i = 0; i < IOAPIC_PINS; i++)
		s.ioapic.rte[i] = 1 << 16; /* masked */
	s.ioapic.rte[4] = 0x24;

	kb_put(b, "SLOSSTAT", 8);
	kb_put32(b, SNAP_FORMAT);
	kb_put32(b, nr);
	for (unsigned i = 0; i < nr; i++)
		svcpu(b, i, has[i], nr_msrs[i]);
	srec(b, 32, 0, &s.clock, sizeof(s.clock));
	srec(b, 33, 0, &s.uart, sizeof(s.uart));
	srec(b, 34, 0, &s.ioapic, sizeof(s.ioapic));
	srec(b, 0xffff, 0, NULL, 0);
	kb_put32(b, crc32(0, b->p, b->len));
}

static int snapshot_seeds(void)
{
	const uint32_t has1[] = {0}, msrs1[] = {2};
	const uint32_t has2[] = {0, VCPU_HAS_XSAVE | VCPU_HAS_XCRS |
					VCPU_HAS_DREGS};
	const uint32_t msrs2[] = {0, 2};
	struct kbuf b = {0};
	char path[512];

	snprintf(path, sizeof(path), "%s/snapshot", dir);
	if (mkdir(path, 0755) && errno != EEXIST)
		return perror(path), 1;
	snap_seed("manifest", 0x00, manifest_full, strlen(manifest_full));
	snap_seed("manifest-min", 0x00, manifest_min, strlen(manifest_min));
	/* byte 0: the vCPU count - 1; bit 2 recomputes the CRC */
	sstate(&b, 1, has1, msrs1);
	snap_seed("state-1", 0x00, b.p, b.len);
	kb_free(&b);
	sstate(&b, 2, has2, msrs2);
	snap_seed("state-2", 0x05, b.p, b.len);
	kb_free(&b);
	return 0;
}

/* ---- fuzz_virtq: a driver's sessions, op by op ---- */

#define VQ_DESC	 0x1000
#define VQ_AVAIL 0x2000
#define VQ_USED	 0x3000
#define VQ_BUF	 0x8000

static void vb(struct kbuf *b, int n, ...)
{
	va_list ap;

	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		uint8_t c = va_arg(ap, int);

		kb_put(b, &c, 1);
	}
	va_end(ap);
}

static void v16(struct kbuf *b, uint16_t v)
{
	vb(b, 2, v & 0xff, v >> 8);
}

/* An address inside RAM (tag 0). */
static void vaddr(struct kbuf *b, uint16_t gpa)
{
	vb(b, 1, 0);
	v16(b, gpa);
}

/* Queue q: 1 << lg entries at VQ_DESC + q * 0x100 and so on; T_QUEUE
 * takes the queue's number (Q_SETUP has one queue), and 0x40 in flags
 * makes it ready. */
static void vqueue(struct kbuf *b, uint8_t op, uint8_t q, uint8_t lg,
		   uint8_t flags)
{
	vb(b, 1, op);
	if (op == T_QUEUE)
		vb(b, 1, q);
	vb(b, 1, lg | flags);
	vaddr(b, VQ_DESC + q * 0x100);
	vaddr(b, VQ_AVAIL + q * 0x100);
	vaddr(b, VQ_USED + q * 0x100);
}

static void vchain(struct kbuf *b, uint8_t q, uint8_t head, uint8_t segs,
		   uint8_t outs, uint16_t addr, uint16_t seglen, uint8_t hdr,
		   uint8_t sector)
{
	vb(b, 5, D_CHAIN, q, head, segs - 1, outs);
	vaddr(b, addr);
	v16(b, seglen - 1);
	vb(b, 2, hdr, sector);
}

/* A register write through T_RAW: 4 bytes, aligned. */
static void vwrite(struct kbuf *b, uint16_t reg, uint32_t v)
{
	vb(b, 1, T_RAW);
	v16(b, reg);
	vb(b, 1, 2 | 4);
	kb_put32(b, v);
	kb_put32(b, 0);
}

/* Probe with VERSION_1 (and the device's own bits), DRIVER_OK. */
static void vinit(struct kbuf *b)
{
	vb(b, 1, T_INIT);
	kb_put32(b, ~0u);
	vb(b, 2, 0, 1);
}

static void vseed(const char *name, uint8_t target, struct kbuf *b)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/virtq/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(&target, 1, 1, f) != 1 ||
	    fwrite(b->p, 1, b->len, f) != b->len || fclose(f)) {
		perror(path);
		exit(1);
	}
	kb_free(b);
}

static int virtq_seeds(void)
{
	static const struct {
		const char *name;
		uint8_t net;
		const char *v;
	} parse[] = {
	    {"disk", 0, "img,ro,host=1"},
	    {"net", 1, "tap,name=tap0,mac=02:00:00:00:00:01,host=2"},
	};
	struct kbuf b = {0};
	char path[512];

	snprintf(path, sizeof(path), "%s/virtq", dir);
	if (mkdir(path, 0755) && errno != EEXIST)
		return perror(path), 1;

	/* One queue: a 3-segment chain popped, read, written, pushed; then
	 * a queue made 0 long while not ready gets a push. */
	vqueue(&b, Q_SETUP, 0, 3, 0);
	vb(&b, 1, Q_READY);
	vchain(&b, 0, 2, 3, 1, VQ_BUF, 64, 0, 0);
	vb(&b, 2, Q_POP, 0);
	vb(&b, 2, Q_READ, 0);
	v16(&b, 8);
	v16(&b, 100);
	vb(&b, 2, Q_WRITE, 0);
	v16(&b, 0);
	v16(&b, 100);
	vb(&b, 2, Q_PUSH, 0);
	kb_put32(&b, 128);
	vb(&b, 1, Q_UNREADY);
	vb(&b, 1, Q_NUM);
	v16(&b, 0);
	vb(&b, 2, Q_PUSH, 0);
	kb_put32(&b, 1);
	vseed("queue", VQ_QUEUE, &b);

	/* rng: two buffers, one notify. */
	vinit(&b);
	vqueue(&b, T_QUEUE, 0, 3, 0x40);
	vchain(&b, 0, 0, 1, 0, VQ_BUF, 64, 0, 0);
	vchain(&b, 0, 1, 2, 0, VQ_BUF + 0x100, 4000, 0, 0);
	vwrite(&b, 0x050, 0); /* QUEUE_NOTIFY */
	vb(&b, 1, T_RUN);
	vseed("rng", VQ_RNG, &b);

	/* console: output on the transmit queue, input into a buffer on
	 * the receive queue. */
	vinit(&b);
	vqueue(&b, T_QUEUE, 0, 3, 0x40);
	vqueue(&b, T_QUEUE, 1, 3, 0x40);
	vb(&b, 4, D_POKE, 1, VQ_BUF & 0xff, VQ_BUF >> 8);
	vb(&b, 6, 5, 'h', 'e', 'l', 'l', 'o');
	vchain(&b, 1, 0, 1, 1, VQ_BUF, 5, 0, 0);
	vwrite(&b, 0x050, 1);
	vb(&b, 1, T_RUN);
	vb(&b, 5, T_INPUT, 3, 'l', 's', '\n');
	vchain(&b, 0, 0, 1, 0, VQ_BUF + 0x100, 64, 0, 0);
	vwrite(&b, 0x050, 0);
	vb(&b, 2, T_RUN, T_RUN);
	vseed("console", VQ_CONSOLE, &b);

	/* blk: a read, a write, a flush and a GET_ID, completed; then a
	 * read whose completion comes after the driver made the queue 0
	 * long with its used ring at the end of RAM. */
	vinit(&b);
	vqueue(&b, T_QUEUE, 0, 4, 0x40);
	vchain(&b, 0, 0, 3, 1, VQ_BUF, 512, 0x80 | 0, 1);
	vchain(&b, 0, 3, 3, 2, VQ_BUF + 0x400, 512, 0x80 | 1, 2);
	vchain(&b, 0, 6, 2, 1, VQ_BUF + 0x800, 16, 0x80 | 4, 0);
	vchain(&b, 0, 8, 3, 1, VQ_BUF + 0xc00, 20, 0x80 | 8, 0);
	vwrite(&b, 0x050, 0);
	vb(&b, 3, T_RUN, T_RUN, T_RUN);
	vseed("blk", VQ_BLK, &b);

	vinit(&b);
	vqueue(&b, T_QUEUE, 0, 3, 0x40);
	vchain(&b, 0, 0, 3, 1, VQ_BUF, 512, 0x80 | 0, 1);
	vwrite(&b, 0x050, 0);
	vb(&b, 1, T_RUN);
	vwrite(&b, 0x044, 0); /* QUEUE_READY */
	vwrite(&b, 0x038, 0); /* QUEUE_NUM */
	vwrite(&b, 0x0a0, VQ_RAM_SIZE - 6);
	vb(&b, 2, T_RUN, T_RUN);
	vseed("blk-shrunk", VQ_BLK, &b);

	/* A bad chain breaks the device; the driver resets it. */
	vinit(&b);
	vqueue(&b, T_QUEUE, 0, 3, 0x40);
	vb(&b, 3, D_DESC, 0, 0);
	vaddr(&b, VQ_BUF);
	v16(&b, 64);
	vb(&b, 2, 1 | 2, 0); /* NEXT | WRITE, to itself */
	vb(&b, 5, D_AVAIL, 0, 0, 0, 0);
	vb(&b, 3, D_PUBLISH, 0, 1);
	vwrite(&b, 0x050, 0);
	vb(&b, 2, T_RUN, T_RESET);
	vseed("rng-loop", VQ_RNG, &b);

	for (unsigned i = 0; i < sizeof(parse) / sizeof(parse[0]); i++) {
		vb(&b, 1, parse[i].net);
		kb_put(&b, parse[i].v, strlen(parse[i].v));
		vseed(parse[i].name, VQ_PARSE, &b);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		enum kimg_comp c;
	} bz[] = {
	    {"bz-none", KIMG_NONE}, {"bz-xz", KIMG_XZ},
	    {"bz-lz4", KIMG_LZ4},   {"bz-zstd", KIMG_ZSTD},
	    {"bz-gzip", KIMG_GZIP}, {"bz-guest", KIMG_UNKNOWN},
	};
	/* one setup sector keeps the seeds small; 2 MiB of init_size fits
	 * the 8 MiB layout */
	struct kimg_bz o = {.setup_sects = 1, .init_size = 2 << 20};
	struct kimg_seg virt[1] = {{.paddr = 0x200000,
				    .vaddr = 0xffffffff80200000,
				    .filesz = 0x80,
				    .memsz = 0x1000}};
	struct kimg_seg high[2] = {
	    {.paddr = 0x100000, .filesz = 0x40, .memsz = 0x1000},
	    {.paddr = 0x100000000, .filesz = 0x40, .memsz = 0x2000},
	};
	struct kbuf b = {0};
	char path[512];
	unsigned i;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	dir = argv[1];
	snprintf(path, sizeof(path), "%s/loader", dir);
	if (mkdir(dir, 0755) && errno != EEXIST)
		return perror(dir), 1;
	if (mkdir(path, 0755) && errno != EEXIST)
		return perror(path), 1;

	kimg_tiny_elf(&b);
	seed("elf-tiny", 1, 0x03, &b, "console=ttyS0");
	kb_free(&b);
	kimg_elf(&b, virt, 1, 0xffffffff80200010);
	seed("elf-virt", 2, 0x00, &b, "");
	kb_free(&b);
	kimg_elf(&b, high, 2, 0x100000);
	seed("elf-high", 4, 0x05, &b, "root=/dev/vda");
	kb_free(&b);
	for (i = 0; i < sizeof(bz) / sizeof(bz[0]); i++) {
		if (kimg_tiny_bzimage(&b, bz[i].c, &o))
			return fprintf(stderr, "%s failed\n", bz[i].name), 1;
		seed(bz[i].name, 1, 0x01, &b, "quiet");
		kb_free(&b);
	}
	return snapshot_seeds() || virtq_seeds();
}
