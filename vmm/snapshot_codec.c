// SPDX-License-Identifier: MIT
/*
 * The snapshot's manifest and state formats. Both come from files anyone
 * may have edited, truncated or corrupted, so decoding checks every length
 * against the bytes actually there before it copies.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "vmm/cpuid.h"
#include "vmm/snapshot.h"

#define STATE_MAGIC "SLOSSTAT"

enum rec_tag {
	REC_REGS = 1,
	REC_SREGS,
	REC_XSAVE,
	REC_FPU,
	REC_XCRS,
	REC_LAPIC,
	REC_EVENTS,
	REC_MP,
	REC_DREGS,
	REC_MSRS,
	REC_CLOCK = 32,
	REC_UART,
	REC_IOAPIC,
	REC_END = 0xffff,
};

struct state_hdr {
	char magic[8];
	uint32_t version, nr_vcpus;
};

struct rec_hdr {
	uint32_t tag, index;
	uint64_t len;
};

int snapshot__errf(char *err, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
	return -1;
}

#define bad snapshot__errf

/* ---- manifest ---- */

static const char *reg_names[] = { "eax", "ebx", "ecx", "edx" };

int snapshot__manifest_format(const struct snap_manifest *m, char *buf,
			      size_t len)
{
	size_t off = 0;
	int n;

#define OUT(...)                                                         \
	do {                                                             \
		n = snprintf(buf + off, len - off, __VA_ARGS__);         \
		if (n < 0 || (size_t)n >= len - off)                     \
			return -1;                                       \
		off += n;                                                \
	} while (0)
	OUT("slos-snapshot %u\n", SNAP_FORMAT);
	OUT("name %s\n", m->name);
	OUT("vcpus %u\n", m->nr_vcpus);
	OUT("mem %" PRIu64 "\n", m->mem_size);
	OUT("pvm %d\n", m->pvm);
	OUT("tsc-khz %u\n", m->tsc_khz);
	OUT("cpu-vendor %s\n", m->cpu_vendor);
	OUT("cpu-model %s\n", m->cpu_model);
	for (unsigned i = 0; i < m->nr_cpuid; i++) {
		const struct snap_cpuid *c = &m->cpuid[i];
		OUT("cpuid %08x.%u %s %08x\n", c->leaf, c->sub,
		    reg_names[c->reg & 3], c->val);
	}
	OUT("kernel %s\n", m->kernel);
	OUT("cmdline %s\n", m->cmdline);
	OUT("taken %s\n", m->taken);
	/* A manifest cut at a line boundary must not pass for a whole one. */
	OUT("end\n");
#undef OUT
	return 0;
}

static int copy_str(char *dst, size_t cap, const char *v, size_t vlen,
		    bool printable)
{
	if (vlen >= cap)
		return -1;
	for (size_t i = 0; i < vlen; i++)
		if (printable && !isprint((unsigned char)v[i]))
			return -1;
	memcpy(dst, v, vlen);
	dst[vlen] = 0;
	return 0;
}

static int parse_u64(const char *v, size_t vlen, uint64_t max, uint64_t *out)
{
	char tmp[24];
	char *end;

	if (!vlen || vlen >= sizeof(tmp) || !isdigit((unsigned char)v[0]))
		return -1;
	memcpy(tmp, v, vlen);
	tmp[vlen] = 0;
	errno = 0;
	unsigned long long x = strtoull(tmp, &end, 10);
	if (errno || *end || x > max)
		return -1;
	*out = x;
	return 0;
}

static int parse_cpuid(const char *v, size_t vlen, struct snap_cpuid *c)
{
	char tmp[64], reg[8];
	unsigned leaf, sub, val;
	int used = 0;

	if (vlen >= sizeof(tmp))
		return -1;
	memcpy(tmp, v, vlen);
	tmp[vlen] = 0;
	if (sscanf(tmp, "%8x.%u %7s %8x%n", &leaf, &sub, reg, &val, &used) !=
		    4 ||
	    (size_t)used != vlen)
		return -1;
	for (unsigned r = 0; r < 4; r++)
		if (!strcmp(reg, reg_names[r])) {
			*c = (struct snap_cpuid){ .leaf = leaf, .sub = sub,
						  .reg = r, .val = val };
			return 0;
		}
	return -1;
}

enum { K_NAME, K_VCPUS, K_MEM, K_PVM, K_TSC, K_VENDOR, K_MODEL, K_CPUID,
       K_KERNEL, K_CMDLINE, K_TAKEN, NR_KEYS };
static const char *keys[NR_KEYS] = {
	"name", "vcpus", "mem", "pvm", "tsc-khz", "cpu-vendor", "cpu-model",
	"cpuid", "kernel", "cmdline", "taken",
};
/* Keys a manifest must have (cpuid may repeat, the rest appear once). */
#define REQUIRED                                                          \
	((1u << K_NAME) | (1u << K_VCPUS) | (1u << K_MEM) | (1u << K_PVM) | \
	 (1u << K_TSC) | (1u << K_VENDOR) | (1u << K_MODEL))

static int manifest_line(struct snap_manifest *m, unsigned *seen,
			 const char *k, size_t klen, const char *v,
			 size_t vlen, char *err, size_t errlen)
{
	uint64_t x;
	int key = -1;

	for (int i = 0; i < NR_KEYS; i++)
		if (strlen(keys[i]) == klen && !memcmp(keys[i], k, klen))
			key = i;
	if (key < 0)
		return bad(err, errlen, "unknown key '%.*s'",
			   (int)(klen > 32 ? 32 : klen), k);
	if (key != K_CPUID && (*seen & (1u << key)))
		return bad(err, errlen, "key '%s' repeated", keys[key]);
	*seen |= 1u << key;
	switch (key) {
	case K_NAME:
		if (copy_str(m->name, sizeof(m->name), v, vlen, true))
			return bad(err, errlen, "bad name");
		return 0;
	case K_VCPUS:
		if (parse_u64(v, vlen, SNAP_MAX_VCPUS, &x) || !x)
			return bad(err, errlen, "bad vcpus (1 to %d)",
				   SNAP_MAX_VCPUS);
		m->nr_vcpus = x;
		return 0;
	case K_MEM:
		if (parse_u64(v, vlen, 1ULL << 46, &x) || x < (16ULL << 20) ||
		    x % 4096)
			return bad(err, errlen, "bad mem");
		m->mem_size = x;
		return 0;
	case K_PVM:
		if (parse_u64(v, vlen, 1, &x))
			return bad(err, errlen, "bad pvm (0 or 1)");
		m->pvm = x;
		return 0;
	case K_TSC:
		if (parse_u64(v, vlen, UINT32_MAX, &x))
			return bad(err, errlen, "bad tsc-khz");
		m->tsc_khz = x;
		return 0;
	case K_VENDOR:
		if (copy_str(m->cpu_vendor, sizeof(m->cpu_vendor), v, vlen,
			     true))
			return bad(err, errlen, "bad cpu-vendor");
		return 0;
	case K_MODEL:
		if (copy_str(m->cpu_model, sizeof(m->cpu_model), v, vlen,
			     true))
			return bad(err, errlen, "bad cpu-model");
		return 0;
	case K_CPUID:
		if (m->nr_cpuid == SNAP_MAX_CPUID)
			return bad(err, errlen, "more than %d cpuid lines",
				   SNAP_MAX_CPUID);
		if (parse_cpuid(v, vlen, &m->cpuid[m->nr_cpuid]))
			return bad(err, errlen,
				   "bad cpuid line (LEAF.SUB REG HEX)");
		for (unsigned i = 0; i < m->nr_cpuid; i++) {
			const struct snap_cpuid *a = &m->cpuid[i],
						*b = &m->cpuid[m->nr_cpuid];
			if (a->leaf == b->leaf && a->sub == b->sub &&
			    a->reg == b->reg)
				return bad(err, errlen, "cpuid word repeated");
		}
		m->nr_cpuid++;
		return 0;
	case K_KERNEL:
		return copy_str(m->kernel, sizeof(m->kernel), v, vlen, true)
			       ? bad(err, errlen, "bad kernel")
			       : 0;
	case K_CMDLINE:
		return copy_str(m->cmdline, sizeof(m->cmdline), v, vlen, true)
			       ? bad(err, errlen, "bad cmdline")
			       : 0;
	default:
		return copy_str(m->taken, sizeof(m->taken), v, vlen, true)
			       ? bad(err, errlen, "bad taken")
			       : 0;
	}
}

int snapshot__manifest_parse(const char *buf, size_t len,
			     struct snap_manifest *m, char *err, size_t errlen)
{
	static const char head[] = "slos-snapshot ";
	unsigned seen = 0, line = 1;
	size_t off;
	uint64_t ver;
	char e[160];

	memset(m, 0, sizeof(*m));
	const char *nl = memchr(buf, '\n', len);
	if (len < sizeof(head) || memcmp(buf, head, sizeof(head) - 1) || !nl)
		return bad(err, errlen, "manifest: not a slos snapshot");
	off = sizeof(head) - 1;
	if (parse_u64(buf + off, nl - buf - off, UINT32_MAX, &ver))
		return bad(err, errlen, "manifest: bad format version");
	if (ver != SNAP_FORMAT)
		return bad(err, errlen,
			   "manifest: snapshot format version %" PRIu64
			   " is not supported (this slos reads version %d)",
			   ver, SNAP_FORMAT);
	m->version = ver;
	off = nl - buf + 1;
	while (off < len) {
		line++;
		nl = memchr(buf + off, '\n', len - off);
		if (!nl)
			return bad(err, errlen,
				   "manifest line %u: no newline (truncated?)",
				   line);
		const char *k = buf + off;
		size_t l = nl - k;
		if (l == 3 && !memcmp(k, "end", 3)) {
			if ((size_t)(nl - buf + 1) != len)
				return bad(err, errlen,
					   "manifest line %u: text after 'end'",
					   line);
			seen |= 1u << NR_KEYS;
			break;
		}
		const char *sp = memchr(k, ' ', l);
		size_t klen = sp ? (size_t)(sp - k) : l;
		const char *v = sp ? sp + 1 : nl;
		if (manifest_line(m, &seen, k, klen, v, nl - v, e, sizeof(e)))
			return bad(err, errlen, "manifest line %u: %s", line,
				   e);
		off = nl - buf + 1;
	}
	if (!(seen & (1u << NR_KEYS)))
		return bad(err, errlen, "manifest: no 'end' line (truncated?)");
	if ((seen & REQUIRED) != REQUIRED) {
		for (int i = 0; i < NR_KEYS; i++)
			if ((REQUIRED & (1u << i)) && !(seen & (1u << i)))
				return bad(err, errlen,
					   "manifest: no '%s' (truncated?)",
					   keys[i]);
	}
	return 0;
}

/* ---- state ---- */

struct out {
	uint8_t *buf;
	size_t len, cap;
	bool oom;
};

static void put(struct out *o, const void *p, size_t n)
{
	if (o->oom)
		return;
	if (o->len + n > o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 65536;
		while (cap < o->len + n)
			cap *= 2;
		uint8_t *b = realloc(o->buf, cap);
		if (!b) {
			o->oom = true;
			return;
		}
		o->buf = b;
		o->cap = cap;
	}
	if (n)
		memcpy(o->buf + o->len, p, n);
	o->len += n;
}

static void rec(struct out *o, uint32_t tag, uint32_t index, const void *p,
		size_t n)
{
	static const uint8_t zero[8];
	struct rec_hdr h = { .tag = tag, .index = index, .len = n };

	put(o, &h, sizeof(h));
	put(o, p, n);
	put(o, zero, (8 - n % 8) % 8);
}

void *snapshot__state_encode(const struct snap_state *s, size_t *len)
{
	struct state_hdr h = { .magic = STATE_MAGIC, .version = SNAP_FORMAT,
			       .nr_vcpus = s->nr_vcpus };
	struct out o = { 0 };

	put(&o, &h, sizeof(h));
	for (unsigned i = 0; i < s->nr_vcpus; i++) {
		const struct vcpu_state *v = &s->vcpus[i];
		rec(&o, REC_REGS, i, &v->regs, sizeof(v->regs));
		rec(&o, REC_SREGS, i, &v->sregs, sizeof(v->sregs));
		if (v->has & VCPU_HAS_XSAVE)
			rec(&o, REC_XSAVE, i, &v->xsave, sizeof(v->xsave));
		else
			rec(&o, REC_FPU, i, &v->fpu, sizeof(v->fpu));
		if (v->has & VCPU_HAS_XCRS)
			rec(&o, REC_XCRS, i, &v->xcrs, sizeof(v->xcrs));
		rec(&o, REC_LAPIC, i, &v->lapic, sizeof(v->lapic));
		rec(&o, REC_EVENTS, i, &v->events, sizeof(v->events));
		rec(&o, REC_MP, i, &v->mp, sizeof(v->mp));
		if (v->has & VCPU_HAS_DREGS)
			rec(&o, REC_DREGS, i, &v->dregs, sizeof(v->dregs));
		rec(&o, REC_MSRS, i, v->msrs,
		    v->nr_msrs * sizeof(v->msrs[0]));
	}
	rec(&o, REC_CLOCK, 0, &s->clock, sizeof(s->clock));
	rec(&o, REC_UART, 0, &s->uart, sizeof(s->uart));
	rec(&o, REC_IOAPIC, 0, &s->ioapic, sizeof(s->ioapic));
	rec(&o, REC_END, 0, NULL, 0);
	uint32_t crc = crc32(0, o.buf, o.len);
	put(&o, &crc, sizeof(crc));
	if (o.oom) {
		free(o.buf);
		return NULL;
	}
	*len = o.len;
	return o.buf;
}

/* Where a record's payload goes, and the bit that marks it seen. */
static void *rec_dst(struct snap_state *s, const struct rec_hdr *h,
		     size_t *size, uint32_t *bit)
{
	struct vcpu_state *v = h->tag < REC_CLOCK ? &s->vcpus[h->index] : NULL;

	if (h->tag > REC_IOAPIC || (h->tag > REC_MSRS && h->tag < REC_CLOCK))
		return NULL;
	*bit = 1u << (h->tag < REC_CLOCK ? h->tag : h->tag - REC_CLOCK + 16);
	switch (h->tag) {
	case REC_REGS: *size = sizeof(v->regs); return &v->regs;
	case REC_SREGS: *size = sizeof(v->sregs); return &v->sregs;
	case REC_XSAVE: *size = sizeof(v->xsave); return &v->xsave;
	case REC_FPU: *size = sizeof(v->fpu); return &v->fpu;
	case REC_XCRS: *size = sizeof(v->xcrs); return &v->xcrs;
	case REC_LAPIC: *size = sizeof(v->lapic); return &v->lapic;
	case REC_EVENTS: *size = sizeof(v->events); return &v->events;
	case REC_MP: *size = sizeof(v->mp); return &v->mp;
	case REC_DREGS: *size = sizeof(v->dregs); return &v->dregs;
	case REC_MSRS: *size = sizeof(v->msrs); return v->msrs;
	case REC_CLOCK: *size = sizeof(s->clock); return &s->clock;
	case REC_UART: *size = sizeof(s->uart); return &s->uart;
	case REC_IOAPIC: *size = sizeof(s->ioapic); return &s->ioapic;
	default: return NULL;
	}
}

#define VCPU_NEEDED                                                        \
	((1u << REC_REGS) | (1u << REC_SREGS) | (1u << REC_LAPIC) |        \
	 (1u << REC_EVENTS) | (1u << REC_MP) | (1u << REC_MSRS))
#define VM_NEEDED (7u << 16)

int snapshot__state_decode(const void *buf, size_t len, unsigned nr_vcpus,
			   struct snap_state *s, char *err, size_t errlen)
{
	const uint8_t *b = buf;
	struct state_hdr h;
	uint32_t crc, vm_seen = 0, *seen;
	size_t off = sizeof(h);

	memset(s, 0, sizeof(*s));
	if (len < sizeof(h) + sizeof(crc))
		return bad(err, errlen, "state: truncated (%zu bytes)", len);
	memcpy(&h, b, sizeof(h));
	if (memcmp(h.magic, STATE_MAGIC, 8))
		return bad(err, errlen, "state: not a slos state file");
	if (h.version != SNAP_FORMAT)
		return bad(err, errlen, "state: format version %u, not %d",
			   h.version, SNAP_FORMAT);
	if (h.nr_vcpus != nr_vcpus)
		return bad(err, errlen,
			   "state: %u vCPUs, but the manifest says %u",
			   h.nr_vcpus, nr_vcpus);
	memcpy(&crc, b + len - sizeof(crc), sizeof(crc));
	len -= sizeof(crc);
	if (crc32(0, b, len) != crc)
		return bad(err, errlen, "state: checksum mismatch (corrupted)");
	if (!nr_vcpus || nr_vcpus > SNAP_MAX_VCPUS)
		return bad(err, errlen, "state: bad vCPU count");
	s->nr_vcpus = nr_vcpus;
	s->vcpus = calloc(nr_vcpus, sizeof(*s->vcpus));
	seen = calloc(nr_vcpus, sizeof(*seen));
	if (!s->vcpus || !seen) {
		free(seen);
		return bad(err, errlen, "state: out of memory");
	}
	for (;;) {
		struct rec_hdr r;
		size_t size;
		uint32_t bit;
		void *dst;

		if (len - off < sizeof(r)) {
			bad(err, errlen, "state: truncated at byte %zu", off);
			goto fail;
		}
		memcpy(&r, b + off, sizeof(r));
		off += sizeof(r);
		if (r.tag == REC_END)
			break;
		if (r.len > len - off) {
			bad(err, errlen, "state: record %u overruns the file",
			    r.tag);
			goto fail;
		}
		if (r.tag < REC_CLOCK && r.index >= nr_vcpus) {
			bad(err, errlen, "state: record %u for vCPU %u of %u",
			    r.tag, r.index, nr_vcpus);
			goto fail;
		}
		dst = rec_dst(s, &r, &size, &bit);
		if (!dst) {
			bad(err, errlen, "state: unknown record %u", r.tag);
			goto fail;
		}
		uint32_t *sn = r.tag < REC_CLOCK ? &seen[r.index] : &vm_seen;
		if (*sn & bit) {
			bad(err, errlen, "state: record %u repeated", r.tag);
			goto fail;
		}
		*sn |= bit;
		if (r.tag == REC_MSRS ? r.len > size || r.len % 16
				      : r.len != size) {
			bad(err, errlen, "state: record %u has %" PRIu64
					 " bytes, not %zu",
			    r.tag, r.len, size);
			goto fail;
		}
		memcpy(dst, b + off, r.len);
		if (r.tag == REC_MSRS)
			s->vcpus[r.index].nr_msrs = r.len / 16;
		off += r.len + (8 - r.len % 8) % 8;
		if (off > len) {
			bad(err, errlen, "state: truncated padding");
			goto fail;
		}
	}
	if (off != len) {
		bad(err, errlen, "state: %zu bytes after the end", len - off);
		goto fail;
	}
	if ((vm_seen & VM_NEEDED) != VM_NEEDED) {
		bad(err, errlen, "state: clock, UART or IOAPIC missing");
		goto fail;
	}
	for (unsigned i = 0; i < nr_vcpus; i++) {
		struct vcpu_state *v = &s->vcpus[i];
		bool xs = seen[i] & (1u << REC_XSAVE);
		if ((seen[i] & VCPU_NEEDED) != VCPU_NEEDED ||
		    xs == !!(seen[i] & (1u << REC_FPU))) {
			bad(err, errlen, "state: vCPU %u incomplete", i);
			goto fail;
		}
		v->has = (xs ? VCPU_HAS_XSAVE : 0) |
			 (seen[i] & (1u << REC_XCRS) ? VCPU_HAS_XCRS : 0) |
			 (seen[i] & (1u << REC_DREGS) ? VCPU_HAS_DREGS : 0);
		if (v->xcrs.nr_xcrs > KVM_MAX_XCRS) {
			bad(err, errlen, "state: vCPU %u: bad XCR count", i);
			goto fail;
		}
	}
	free(seen);
	return 0;
fail:
	free(seen);
	snapshot__state_free(s);
	return -1;
}

void snapshot__state_free(struct snap_state *s)
{
	free(s->vcpus);
	s->vcpus = NULL;
	s->nr_vcpus = 0;
}

/* ---- host CPU ---- */

static const struct { uint32_t leaf, sub; uint8_t reg; } feature_words[] = {
	{ 1, 0, 2 },	      { 1, 0, 3 },	    { 7, 0, 1 },
	{ 7, 0, 2 },	      { 7, 0, 3 },	    { 0xd, 1, 0 },
	{ 0x80000001, 0, 2 }, { 0x80000001, 0, 3 }, { 0x80000007, 0, 3 },
};

static const struct kvm_cpuid_entry2 *find(const struct kvm_cpuid2 *c,
					   uint32_t leaf, uint32_t sub)
{
	for (unsigned i = 0; i < c->nent; i++)
		if (c->entries[i].function == leaf &&
		    (!(c->entries[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) ||
		     c->entries[i].index == sub))
			return &c->entries[i];
	return NULL;
}

static uint32_t word(const struct kvm_cpuid_entry2 *e, unsigned reg)
{
	uint32_t r[4] = { e->eax, e->ebx, e->ecx, e->edx };

	return r[reg];
}

static void raw_cpuid(uint32_t leaf, uint32_t sub, struct kvm_cpuid_entry2 *e)
{
	__asm__ volatile("cpuid"
			 : "=a"(e->eax), "=b"(e->ebx), "=c"(e->ecx),
			   "=d"(e->edx)
			 : "a"(leaf), "c"(sub));
}

void snapshot__host_cpu(struct snap_manifest *m, const struct kvm_cpuid2 *c,
			bool pvm)
{
	struct kvm_cpuid_entry2 e;
	uint32_t brand[12];

	raw_cpuid(0, 0, &e);
	memcpy(m->cpu_vendor, &e.ebx, 4);
	memcpy(m->cpu_vendor + 4, &e.edx, 4);
	memcpy(m->cpu_vendor + 8, &e.ecx, 4);
	m->cpu_vendor[12] = 0;
	for (unsigned i = 0; i < 3; i++) {
		raw_cpuid(0x80000002 + i, 0, &e);
		memcpy(&brand[i * 4], &e.eax, 16);
	}
	memcpy(m->cpu_model, brand, 48);
	m->cpu_model[48] = 0;
	for (char *p = m->cpu_model; *p; p++)
		if (!isprint((unsigned char)*p))
			*p = '?';
	/* Strip the padding some models' brand strings carry. */
	char *p = m->cpu_model;
	while (*p == ' ')
		p++;
	memmove(m->cpu_model, p, strlen(p) + 1);
	m->nr_cpuid = 0;
	for (size_t i = 0; i < sizeof(feature_words) / sizeof(*feature_words);
	     i++) {
		uint32_t leaf = feature_words[i].leaf, sub = feature_words[i].sub;
		const struct kvm_cpuid_entry2 *k;
		/* Under PVM CPUID is not virtualized: the guest sees the
		 * host's own, so that is what it may depend on. */
		if (pvm) {
			raw_cpuid(leaf, sub, &e);
			k = &e;
		} else {
			k = find(c, leaf, sub);
			if (!k)
				continue;
		}
		m->cpuid[m->nr_cpuid++] = (struct snap_cpuid){
			.leaf = leaf, .sub = sub, .reg = feature_words[i].reg,
			.val = word(k, feature_words[i].reg)
		};
	}
}

int snapshot__check_cpu(const struct snap_manifest *snap,
			const struct snap_manifest *host, char *err,
			size_t errlen)
{
	if (strcmp(snap->cpu_vendor, host->cpu_vendor))
		return bad(err, errlen,
			   "snapshot taken on a %s CPU, this host is %s",
			   snap->cpu_vendor, host->cpu_vendor);
	for (unsigned i = 0; i < snap->nr_cpuid; i++) {
		const struct snap_cpuid *s = &snap->cpuid[i];
		uint32_t have = 0;
		for (unsigned j = 0; j < host->nr_cpuid; j++) {
			const struct snap_cpuid *h = &host->cpuid[j];
			if (h->leaf == s->leaf && h->sub == s->sub &&
			    h->reg == s->reg)
				have = h->val;
		}
		uint32_t lack = s->val & ~have;
		/* HTT says how slos shaped the VM (one package, or a package
		 * per vCPU over hosts: cpuid__shape), not what the CPU can
		 * do: a VM saved on one host restores over several. */
		if (s->leaf == 1 && s->reg == 3)
			lack &= ~CPUID_HTT;
		if (lack)
			return bad(err, errlen,
				   "this host's CPU lacks features the "
				   "snapshot's guest saw: CPUID %08x.%u %s "
				   "bits %08x",
				   s->leaf, s->sub, reg_names[s->reg & 3],
				   lack);
	}
	return 0;
}
