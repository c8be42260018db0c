// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the snapshot codec: arbitrary bytes as a manifest
 * and as a state file, both of which come from files anyone may edit.
 *
 * Input: byte 0 picks the run (bits 0-1: the vCPU count the state is
 * decoded for, 1 to 4; bit 2: overwrite the last 4 bytes with the CRC-32
 * of the rest, so mutations get past the checksum to the record parser);
 * the rest is the file, fed to both decoders. gen_corpus.c writes seeds in
 * this layout.
 *
 * What parses must survive a round trip: a manifest formats and re-parses
 * to the same fields and the same text; a state encodes and decodes to the
 * same bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "vmm/snapshot.h"

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c))                                                      \
			__builtin_trap();                                      \
	} while (0)

#define ERRLEN 256

/* FUZZ_VERBOSE=1 prints each rejection, to see how far seeds get. */
static void check_err(const char *err)
{
	static int verbose = -1;

	CHECK(strnlen(err, ERRLEN) < ERRLEN);
	CHECK(!strchr(err, '\n'));
	CHECK(err[0]);
	if (verbose < 0)
		verbose = getenv("FUZZ_VERBOSE") != NULL;
	if (verbose)
		fprintf(stderr, "rejected: %s\n", err);
}

/* A C string field: terminated inside its array. */
#define CHECK_STR(f) CHECK(memchr((f), 0, sizeof(f)))

static void check_manifest(const struct snap_manifest *m)
{
	CHECK(m->version == SNAP_FORMAT);
	CHECK(m->nr_vcpus >= 1 && m->nr_vcpus <= SNAP_MAX_VCPUS);
	CHECK(m->mem_size >= 16 << 20 && m->mem_size <= 1ULL << 46);
	CHECK(m->mem_size % 4096 == 0);
	CHECK(m->nr_cpuid <= SNAP_MAX_CPUID);
	for (unsigned i = 0; i < m->nr_cpuid; i++)
		CHECK(m->cpuid[i].reg < 4);
	CHECK_STR(m->name);
	CHECK_STR(m->cpu_vendor);
	CHECK_STR(m->cpu_model);
	CHECK_STR(m->kernel);
	CHECK_STR(m->cmdline);
	CHECK_STR(m->taken);
}

/* Whether a CPUID word (leaf, sub-leaf, register) is listed twice. */
static bool cpuid_repeats(const struct snap_manifest *m)
{
	for (unsigned i = 0; i < m->nr_cpuid; i++)
		for (unsigned j = 0; j < i; j++)
			if (m->cpuid[i].leaf == m->cpuid[j].leaf &&
			    m->cpuid[i].sub == m->cpuid[j].sub &&
			    m->cpuid[i].reg == m->cpuid[j].reg)
				return true;
	return false;
}

static bool manifest_eq(const struct snap_manifest *a,
			const struct snap_manifest *b)
{
	if (a->version != b->version || strcmp(a->name, b->name) ||
	    a->nr_vcpus != b->nr_vcpus || a->mem_size != b->mem_size ||
	    a->pvm != b->pvm || a->tsc_khz != b->tsc_khz ||
	    strcmp(a->cpu_vendor, b->cpu_vendor) ||
	    strcmp(a->cpu_model, b->cpu_model) || a->nr_cpuid != b->nr_cpuid ||
	    strcmp(a->kernel, b->kernel) || strcmp(a->cmdline, b->cmdline) ||
	    strcmp(a->taken, b->taken))
		return false;
	for (unsigned i = 0; i < a->nr_cpuid; i++)
		if (a->cpuid[i].leaf != b->cpuid[i].leaf ||
		    a->cpuid[i].sub != b->cpuid[i].sub ||
		    a->cpuid[i].reg != b->cpuid[i].reg ||
		    a->cpuid[i].val != b->cpuid[i].val)
			return false;
	return true;
}

static void manifest(const uint8_t *data, size_t size)
{
	static char text[SNAP_MANIFEST_MAX], again[SNAP_MANIFEST_MAX];
	static struct snap_manifest m, m2;
	char err[ERRLEN];

	/* exact-size copy, so ASan sees any read past the end */
	char *buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	err[0] = 0;
	int r = snapshot__manifest_parse(buf, size, &m, err, sizeof(err));
	free(buf);
	if (r) {
		CHECK(r == -1);
		check_err(err);
		return;
	}
	check_manifest(&m);
	/* A CPU runs its own snapshots. (Not when a word is listed twice
	 * with other bits: the parser takes both, the check holds the host
	 * to the last one only.) */
	if (!cpuid_repeats(&m))
		CHECK(snapshot__check_cpu(&m, &m, err, sizeof(err)) == 0);

	CHECK(snapshot__manifest_format(&m, text, sizeof(text)) == 0);
	size_t len = strlen(text);
	buf = malloc(len);
	memcpy(buf, text, len);
	err[0] = 0;
	r = snapshot__manifest_parse(buf, len, &m2, err, sizeof(err));
	free(buf);
	if (r) {
		fprintf(stderr, "formatted manifest refused: %s\n%s", err,
			text);
		__builtin_trap();
	}
	CHECK(manifest_eq(&m, &m2));
	CHECK(snapshot__manifest_format(&m2, again, sizeof(again)) == 0);
	CHECK(!strcmp(text, again));
}

static void check_state(const struct snap_state *s, unsigned nr)
{
	CHECK(s->nr_vcpus == nr);
	CHECK(s->vcpus);
	for (unsigned i = 0; i < nr; i++) {
		const struct vcpu_state *v = &s->vcpus[i];

		CHECK(!(v->has &
			~(VCPU_HAS_XSAVE | VCPU_HAS_XCRS | VCPU_HAS_DREGS)));
		CHECK(v->nr_msrs <= SNAP_MAX_MSRS);
		CHECK(v->xcrs.nr_xcrs <= KVM_MAX_XCRS);
	}
}

static bool state_eq(const struct snap_state *a, const struct snap_state *b)
{
	return a->nr_vcpus == b->nr_vcpus &&
	       !memcmp(a->vcpus, b->vcpus, a->nr_vcpus * sizeof(*a->vcpus)) &&
	       !memcmp(&a->clock, &b->clock, sizeof(a->clock)) &&
	       !memcmp(&a->uart, &b->uart, sizeof(a->uart)) &&
	       !memcmp(&a->ioapic, &b->ioapic, sizeof(a->ioapic));
}

static void state(const uint8_t *data, size_t size, unsigned nr, bool fix)
{
	struct snap_state s, s2;
	char err[ERRLEN];
	size_t len, len2;

	uint8_t *buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	if (fix && size >= 4) {
		uint32_t crc = crc32(0, buf, size - 4);
		memcpy(buf + size - 4, &crc, 4);
	}
	err[0] = 0;
	int r = snapshot__state_decode(buf, size, nr, &s, err, sizeof(err));
	free(buf);
	if (r) {
		CHECK(r == -1);
		check_err(err);
		/* freeing after a failure is harmless, even twice */
		snapshot__state_free(&s);
		snapshot__state_free(&s);
		CHECK(!s.vcpus);
		return;
	}
	check_state(&s, nr);

	/* re-encoded, it decodes to the same state */
	uint8_t *enc = snapshot__state_encode(&s, &len);
	CHECK(enc);
	CHECK(len <= size);
	err[0] = 0;
	if (snapshot__state_decode(enc, len, nr, &s2, err, sizeof(err))) {
		fprintf(stderr, "re-encoded state refused: %s\n", err);
		__builtin_trap();
	}
	CHECK(state_eq(&s, &s2));
	/* and the encoding is canonical */
	uint8_t *enc2 = snapshot__state_encode(&s2, &len2);
	CHECK(enc2);
	CHECK(len2 == len && !memcmp(enc, enc2, len));
	free(enc);
	free(enc2);
	snapshot__state_free(&s2);
	snapshot__state_free(&s);
	snapshot__state_free(&s);
	CHECK(!s.vcpus);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	manifest(data + 1, size - 1);
	state(data + 1, size - 1, (data[0] & 3) + 1, data[0] & 4);
	return 0;
}
