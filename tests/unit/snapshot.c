// SPDX-License-Identifier: MIT
/*
 * The snapshot codec: the text manifest and the binary state. Both come
 * from files anyone may have edited, truncated or corrupted, so besides the
 * round trips every test here feeds damaged input and expects a refusal
 * with one line of message, never a crash. Inputs are passed in exact-size
 * heap copies, so the ASan build sees any read past their end.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "vmm/snapshot.h"

/* The state's record tags, as vmm/snapshot_codec.c numbers them. */
enum {
	T_REGS = 1,
	T_SREGS,
	T_XSAVE,
	T_FPU,
	T_XCRS,
	T_LAPIC,
	T_EVENTS,
	T_MP,
	T_DREGS,
	T_MSRS,
	T_CLOCK = 32,
	T_UART,
	T_IOAPIC,
	T_END = 0xffff,
};

#define ERRLEN 256

/* A refusal carries one non-empty line. */
static void expect_msg(const char *err)
{
	cr_expect(err[0], "empty error message");
	cr_expect(strnlen(err, ERRLEN) < ERRLEN);
	cr_expect(!strchr(err, '\n'), "multi-line error: %s", err);
}

/* ---- manifest ---- */

static int parse(const char *buf, size_t len, struct snap_manifest *m,
		 char *err)
{
	char *copy = malloc(len ? len : 1);
	int r;

	cr_assert(copy);
	memcpy(copy, buf, len);
	err[0] = 0;
	r = snapshot__manifest_parse(copy, len, m, err, ERRLEN);
	free(copy);
	if (r)
		expect_msg(err);
	return r;
}

static int parse_str(const char *text, struct snap_manifest *m, char *err)
{
	return parse(text, strlen(text), m, err);
}

static void fill_manifest(struct snap_manifest *m)
{
	static const char *const cmdline =
	    "console=ttyS0 root=/dev/vda rw quiet init=/sbin/init "
	    "slos.token=\"a b\"   spaces";
	static const char *const name = "fn-42 ~!@#$%^&*()_+{}|:\"<>? ";

	memset(m, 0, sizeof(*m));
	m->version = SNAP_FORMAT;
	/* 64 characters: the longest name there is room for */
	memset(m->name, 'n', 64);
	memcpy(m->name, name, strlen(name));
	m->nr_vcpus = 7;
	m->mem_size = (3ULL << 30) + 4096;
	m->pvm = true;
	m->tsc_khz = 2995200;
	strcpy(m->cpu_vendor, "GenuineIntel");
	strcpy(m->cpu_model, "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz");
	m->nr_cpuid = SNAP_MAX_CPUID;
	for (unsigned i = 0; i < SNAP_MAX_CPUID; i++)
		m->cpuid[i] = (struct snap_cpuid){
		    .leaf = i < 8 ? i : 0x80000000u + i,
		    .sub = i * 1000,
		    .reg = i & 3,
		    .val = 0x9e3779b9u * (i + 1),
		};
	m->cpuid[SNAP_MAX_CPUID - 1].val = 0xffffffff;
	m->cpuid[SNAP_MAX_CPUID - 1].sub = 4294967295u;
	strcpy(m->kernel, "/srv/kernels/vmlinux-6.8 (build #3)");
	strcpy(m->cmdline, cmdline);
	strcpy(m->taken, "2024-05-01T12:34:56Z");
}

static void expect_manifest_eq(const struct snap_manifest *a,
			       const struct snap_manifest *b)
{
	cr_expect_eq(a->version, b->version);
	cr_expect_str_eq(a->name, b->name);
	cr_expect_eq(a->nr_vcpus, b->nr_vcpus);
	cr_expect_eq(a->mem_size, b->mem_size);
	cr_expect_eq(a->pvm, b->pvm);
	cr_expect_eq(a->tsc_khz, b->tsc_khz);
	cr_expect_str_eq(a->cpu_vendor, b->cpu_vendor);
	cr_expect_str_eq(a->cpu_model, b->cpu_model);
	cr_assert_eq(a->nr_cpuid, b->nr_cpuid);
	for (unsigned i = 0; i < a->nr_cpuid; i++) {
		cr_expect_eq(a->cpuid[i].leaf, b->cpuid[i].leaf, "cpuid %u", i);
		cr_expect_eq(a->cpuid[i].sub, b->cpuid[i].sub, "cpuid %u", i);
		cr_expect_eq(a->cpuid[i].reg, b->cpuid[i].reg, "cpuid %u", i);
		cr_expect_eq(a->cpuid[i].val, b->cpuid[i].val, "cpuid %u", i);
	}
	cr_expect_str_eq(a->kernel, b->kernel);
	cr_expect_str_eq(a->cmdline, b->cmdline);
	cr_expect_str_eq(a->taken, b->taken);
}

Test(snapshot, manifest_round_trip)
{
	struct snap_manifest m, out;
	char buf[SNAP_MANIFEST_MAX], err[ERRLEN];

	fill_manifest(&m);
	cr_assert_eq(snapshot__manifest_format(&m, buf, sizeof(buf)), 0);
	cr_assert_eq(parse_str(buf, &out, err), 0, "%s", err);
	expect_manifest_eq(&m, &out);

	/* and again: formatting what was parsed gives the same text */
	char again[SNAP_MANIFEST_MAX];
	cr_assert_eq(snapshot__manifest_format(&out, again, sizeof(again)), 0);
	cr_expect_str_eq(again, buf);
}

Test(snapshot, manifest_round_trip_minimal)
{
	struct snap_manifest m = {
	    .version = SNAP_FORMAT, .nr_vcpus = 1, .mem_size = 16 << 20};
	struct snap_manifest out;
	char buf[SNAP_MANIFEST_MAX], err[ERRLEN];

	/* empty strings, no cpuid words, smallest numbers */
	cr_assert_eq(snapshot__manifest_format(&m, buf, sizeof(buf)), 0);
	cr_assert_eq(parse_str(buf, &out, err), 0, "%s", err);
	expect_manifest_eq(&m, &out);
}

Test(snapshot, manifest_format_buffer_too_small)
{
	struct snap_manifest m;
	char buf[SNAP_MANIFEST_MAX];
	size_t need;

	fill_manifest(&m);
	cr_assert_eq(snapshot__manifest_format(&m, buf, sizeof(buf)), 0);
	need = strlen(buf) + 1;
	cr_expect_eq(snapshot__manifest_format(&m, buf, need), 0);
	for (size_t n = 1; n < need; n += n < 64 ? 1 : 37)
		cr_expect_eq(snapshot__manifest_format(&m, buf, n), -1,
			     "%zu bytes", n);
	cr_expect_eq(snapshot__manifest_format(&m, buf, need - 1), -1);
}

/*
 * A valid manifest, one line per entry. man() builds it with the lines of
 * key KEY replaced by the one LINE (all dropped if LINE is NULL; LINE
 * appended if no line has that key).
 */
static const char *const base_lines[] = {
    "slos-snapshot 1",
    "name web-1",
    "vcpus 2",
    "mem 268435456",
    "pvm 0",
    "tsc-khz 2000000",
    "cpu-vendor AuthenticAMD",
    "cpu-model AMD EPYC 7R13 Processor",
    "cpuid 00000001.0 ecx 80202001",
    "cpuid 00000007.0 ebx 219c07a9",
    "kernel /boot/vmlinuz",
    "cmdline console=ttyS0",
    "taken 2024-05-01T12:00:00Z",
};
#define NR_BASE (sizeof(base_lines) / sizeof(base_lines[0]))

static void man(char *buf, size_t len, const char *key, const char *line)
{
	size_t off = 0, klen = key ? strlen(key) : 0;
	bool done = false;

	buf[0] = 0;
	for (size_t i = 0; i < NR_BASE; i++) {
		const char *l = base_lines[i];
		if (key && !strncmp(l, key, klen) && l[klen] == ' ') {
			if (!line || done)
				continue; /* dropped; or replaced */
			done = true;
			l = line;
		}
		if (l)
			off += snprintf(buf + off, len - off, "%s\n", l);
	}
	if (key && !done && line)
		off += snprintf(buf + off, len - off, "%s\n", line);
	/* The last line marks a whole manifest. */
	off += snprintf(buf + off, len - off, "end\n");
	cr_assert_lt(off, len);
}

/* Parse the base manifest with one line changed; returns the result. */
static int parse_with(const char *key, const char *line, char *err)
{
	struct snap_manifest m;
	char buf[4096];

	man(buf, sizeof(buf), key, line);
	return parse_str(buf, &m, err);
}

static void expect_refused(const char *key, const char *line, const char *msg)
{
	char err[ERRLEN];

	cr_expect_eq(parse_with(key, line, err), -1, "accepted '%s'", line);
	cr_expect(strstr(err, msg), "'%s': message '%s' lacks '%s'", line, err,
		  msg);
}

Test(snapshot, manifest_base_is_valid)
{
	struct snap_manifest m;
	char buf[4096], err[ERRLEN];

	man(buf, sizeof(buf), NULL, NULL);
	cr_assert_eq(parse_str(buf, &m, err), 0, "%s", err);
	cr_expect_str_eq(m.name, "web-1");
	cr_expect_eq(m.nr_vcpus, 2);
	cr_expect_eq(m.mem_size, 256 << 20);
	cr_expect_eq(m.pvm, false);
	cr_expect_eq(m.tsc_khz, 2000000);
	cr_expect_str_eq(m.cpu_vendor, "AuthenticAMD");
	cr_expect_str_eq(m.cpu_model, "AMD EPYC 7R13 Processor");
	cr_assert_eq(m.nr_cpuid, 2);
	cr_expect_eq(m.cpuid[1].leaf, 7);
	cr_expect_eq(m.cpuid[1].sub, 0);
	cr_expect_eq(m.cpuid[1].reg, 1);
	cr_expect_eq(m.cpuid[1].val, 0x219c07a9);
	cr_expect_str_eq(m.cmdline, "console=ttyS0");
}

Test(snapshot, manifest_other_version)
{
	char err[ERRLEN];

	expect_refused("slos-snapshot", "slos-snapshot 2", "version 2");
	expect_refused("slos-snapshot", "slos-snapshot 0", "version 0");
	expect_refused("slos-snapshot", "slos-snapshot 4294967295",
		       "version 4294967295");
	expect_refused("slos-snapshot", "slos-snapshot 4294967296",
		       "bad format version");
	expect_refused("slos-snapshot", "slos-snapshot 1.0",
		       "bad format version");
	expect_refused("slos-snapshot", "slos-snapshot ", "bad format version");
	expect_refused("slos-snapshot", "slos-snapshot  1",
		       "bad format version");
	/* the version message names both versions */
	cr_expect_eq(parse_with("slos-snapshot", "slos-snapshot 2", err), -1);
	cr_expect(strstr(err, "version 1"), "%s", err);
}

Test(snapshot, manifest_not_a_manifest)
{
	static const char *const texts[] = {
	    "",
	    "\n",
	    "s",
	    "slos-snapshot",
	    "slos-snapshot 1", /* no newline */
	    "slos-snapshot\n1\n",
	    "SLOS-SNAPSHOT 1\nname x\n",
	    " slos-snapshot 1\n",
	    "name web-1\nslos-snapshot 1\n",
	    "SLOSSTAT\1\0\0\0\1\0\0\0",
	    "#!/bin/sh\necho hi\n",
	};
	struct snap_manifest m;
	char err[ERRLEN];

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		cr_expect_eq(parse_str(texts[i], &m, err), -1, "text %zu", i);
		cr_expect(strstr(err, "not a slos snapshot"), "text %zu: %s", i,
			  err);
	}
	/* binary zeros */
	char zeros[64] = {0};
	cr_expect_eq(parse(zeros, sizeof(zeros), &m, err), -1);
}

/* Every proper prefix of a manifest is refused: mid-line, or at a line's
 * end before the closing 'end' line (cpuid lines lost silently would let
 * a restore skip CPU checks). */
Test(snapshot, manifest_truncated_everywhere)
{
	struct snap_manifest m, out;
	char buf[SNAP_MANIFEST_MAX], err[ERRLEN];
	size_t len;

	fill_manifest(&m);
	cr_assert_eq(snapshot__manifest_format(&m, buf, sizeof(buf)), 0);
	len = strlen(buf);
	for (size_t n = 0; n < len; n++) {
		int r = parse(buf, n, &out, err);
		cr_expect_eq(r, -1, "cut at %zu accepted", n);
		cr_expect(strstr(err, "truncated") ||
				  strstr(err, "not a slos") ||
				  strstr(err, "bad format version"),
			  "cut at %zu: %s", n, err);
	}
	cr_expect_eq(parse(buf, len, &out, err), 0);
	expect_manifest_eq(&m, &out);
}

Test(snapshot, manifest_unknown_key)
{
	char err[ERRLEN];

	expect_refused("colour", "colour blue", "unknown key 'colour'");
	expect_refused("colour", "colour blue", "line 14");
	expect_refused("name", "Name web-1", "unknown key 'Name'");
	expect_refused("vcpus", "vcpus\t2", "unknown key 'vcpus\t2'");
	expect_refused("x", "", "unknown key ''");
	/* a long key is quoted only in part */
	char line[600];
	memset(line, 'k', sizeof(line) - 1);
	line[sizeof(line) - 1] = 0;
	cr_expect_eq(parse_with("k", line, err), -1);
	cr_expect_lt(strlen(err), 100, "%s", err);
	/* a CRLF manifest is not one */
	cr_expect_eq(parse_with("vcpus", "vcpus 2\r", err), -1);
}

Test(snapshot, manifest_repeated_key)
{
	static const char *const lines[] = {
	    "name web-2", "vcpus 2",	  "mem 268435456", "pvm 0",
	    "tsc-khz 1",  "cpu-vendor X", "cpu-model Y",   "kernel /k",
	    "cmdline c",  "taken now",
	};
	char buf[4096], err[ERRLEN];
	struct snap_manifest m;

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		man(buf, sizeof(buf), "no-such-key", lines[i]);
		cr_expect_eq(parse_str(buf, &m, err), -1, "%s", lines[i]);
		cr_expect(strstr(err, "repeated"), "%s: %s", lines[i], err);
	}
	/* cpuid lines repeat, but never for the same word: a snapshot would
	 * fail the check against its own CPU */
	man(buf, sizeof(buf), "no-such-key", "cpuid 00000001.0 ecx 80202001");
	cr_expect_eq(parse_str(buf, &m, err), -1);
	cr_expect(strstr(err, "cpuid word repeated"), "%s", err);
	man(buf, sizeof(buf), "no-such-key", "cpuid 00000001.0 edx 1");
	cr_expect_eq(parse_str(buf, &m, err), 0, "%s", err);
	cr_expect_eq(m.nr_cpuid, 3);
	/* and nothing follows the end line */
	man(buf, sizeof(buf), NULL, NULL);
	strcat(buf, "name x\n");
	cr_expect_eq(parse_str(buf, &m, err), -1);
	cr_expect(strstr(err, "after 'end'"), "%s", err);
}

Test(snapshot, manifest_missing_key)
{
	static const char *const required[] = {
	    "name", "vcpus", "mem", "pvm", "tsc-khz", "cpu-vendor", "cpu-model",
	};
	static const char *const optional[] = {
	    "cpuid",
	    "kernel",
	    "cmdline",
	    "taken",
	};
	char err[ERRLEN], want[64];

	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		snprintf(want, sizeof(want), "no '%s'", required[i]);
		expect_refused(required[i], NULL, want);
	}
	for (size_t i = 0; i < sizeof(optional) / sizeof(optional[0]); i++)
		cr_expect_eq(parse_with(optional[i], NULL, err), 0, "%s: %s",
			     optional[i], err);
	/* just the version line */
	struct snap_manifest m;
	cr_expect_eq(parse_str("slos-snapshot 1\n", &m, err), -1);
	cr_expect(strstr(err, "truncated"), "%s", err);
	cr_expect_eq(parse_str("slos-snapshot 1\nend\n", &m, err), -1);
	cr_expect(strstr(err, "no 'name'"), "%s", err);
}

Test(snapshot, manifest_bad_numbers)
{
	static const struct {
		const char *key, *line, *msg;
	} bad[] = {
	    {"vcpus", "vcpus 0", "bad vcpus"},
	    {"vcpus", "vcpus 1025", "bad vcpus"},
	    {"vcpus", "vcpus -1", "bad vcpus"},
	    {"vcpus", "vcpus +1", "bad vcpus"},
	    {"vcpus", "vcpus  1", "bad vcpus"},
	    {"vcpus", "vcpus 1 ", "bad vcpus"},
	    {"vcpus", "vcpus 0x2", "bad vcpus"},
	    {"vcpus", "vcpus", "bad vcpus"},
	    {"vcpus", "vcpus ", "bad vcpus"},
	    {"vcpus", "vcpus 18446744073709551616", "bad vcpus"},
	    {"vcpus", "vcpus 4294967298", "bad vcpus"},
	    {"mem", "mem 268435457", "bad mem"},
	    {"mem", "mem 16773120", "bad mem"}, /* < 16 MiB */
	    {"mem", "mem 0", "bad mem"},
	    {"mem", "mem 4096", "bad mem"},
	    {"mem", "mem 70368744181760", "bad mem"}, /* 2^46 + 4096 */
	    {"mem", "mem 18446744073709551615", "bad mem"},
	    {"mem", "mem 18446744073709551616", "bad mem"},
	    {"mem", "mem 99999999999999999999999", "bad mem"},
	    {"mem", "mem 256M", "bad mem"},
	    {"pvm", "pvm 2", "bad pvm"},
	    {"pvm", "pvm yes", "bad pvm"},
	    {"pvm", "pvm", "bad pvm"},
	    {"tsc-khz", "tsc-khz 4294967296", "bad tsc-khz"},
	    {"tsc-khz", "tsc-khz -5", "bad tsc-khz"},
	    {"tsc-khz", "tsc-khz 1e6", "bad tsc-khz"},
	};
	char err[ERRLEN];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		expect_refused(bad[i].key, bad[i].line, bad[i].msg);
		expect_refused(bad[i].key, bad[i].line, "line ");
	}
	/* the limits themselves */
	cr_expect_eq(parse_with("vcpus", "vcpus 1", err), 0, "%s", err);
	cr_expect_eq(parse_with("vcpus", "vcpus 1024", err), 0, "%s", err);
	cr_expect_eq(parse_with("vcpus", "vcpus 0002", err), 0, "%s", err);
	cr_expect_eq(parse_with("mem", "mem 16777216", err), 0, "%s", err);
	cr_expect_eq(parse_with("mem", "mem 268439552000", err), 0, "%s", err);
	cr_expect_eq(parse_with("mem", "mem 70368744177664", err), 0, "%s",
		     err);
	cr_expect_eq(parse_with("pvm", "pvm 1", err), 0, "%s", err);
	cr_expect_eq(parse_with("tsc-khz", "tsc-khz 0", err), 0, "%s", err);
	cr_expect_eq(parse_with("tsc-khz", "tsc-khz 4294967295", err), 0, "%s",
		     err);
}

Test(snapshot, manifest_cpuid_lines)
{
	char buf[4096], line[64], err[ERRLEN];
	struct snap_manifest m;

	/* exactly SNAP_MAX_CPUID is fine, one more is not */
	man(buf, sizeof(buf), "cpuid", NULL);
	*strstr(buf, "end\n") = 0;
	for (unsigned i = 0; i <= SNAP_MAX_CPUID; i++) {
		struct snap_manifest out;
		char whole[4200];

		snprintf(whole, sizeof(whole), "%send\n", buf);
		int r = parse_str(whole, &out, err);
		cr_expect_eq(r, 0, "%u lines: %s", i, err);
		cr_expect_eq(out.nr_cpuid, i);
		snprintf(line, sizeof(line), "cpuid %08x.%u edx %08x\n", i, i,
			 ~i);
		strcat(buf, line);
	}
	strcat(buf, "end\n");
	cr_expect_eq(parse_str(buf, &m, err), -1);
	cr_expect(strstr(err, "more than 16 cpuid lines"), "%s", err);

	static const char *const bad[] = {
	    "cpuid 00000001.0 exx 1",	"cpuid 00000001.0 eax",
	    "cpuid 00000001.0 eax 1 2", "cpuid 00000001 eax 1",
	    "cpuid 1.0 eax 1 ",		"cpuid 123456789.0 eax 1",
	    "cpuid 1.0 eax 123456789",	"cpuid",
	    "cpuid 1.0 EAX 1",		"cpuid g.0 eax 1",
	    "cpuid 1.0 eaxx 1",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_refused("cpuid", bad[i], "bad cpuid line");
	cr_expect_eq(parse_with("cpuid", "cpuid 1.0 eax 1", err), 0, "%s", err);
}

Test(snapshot, manifest_bad_strings)
{
	char name[80], err[ERRLEN];

	expect_refused("name",
		       "name a\x01"
		       "b",
		       "bad name");
	expect_refused("name", "name \x7f", "bad name");
	expect_refused("name", "name a\tb", "bad name");
	expect_refused("name", "name caf\xc3\xa9", "bad name");
	expect_refused("name", "name \x1b[31mred", "bad name");
	expect_refused("cpu-vendor", "cpu-vendor Genuine\x02ntel",
		       "bad cpu-vendor");
	expect_refused("cpu-vendor", "cpu-vendor GenuineIntel!",
		       "bad cpu-vendor");
	expect_refused("cpu-model", "cpu-model \x80", "bad cpu-model");
	expect_refused("taken", "taken \x01", "bad taken");

	/* a NUL in the name is not printable either */
	struct snap_manifest m;
	char buf[4096];
	man(buf, sizeof(buf), "name", "name a#b");
	size_t len = strlen(buf);
	*strchr(buf, '#') = 0;
	cr_expect_eq(parse(buf, len, &m, err), -1);
	cr_expect(strstr(err, "bad name"), "%s", err);

	/* 64 characters fit, 65 do not */
	strcpy(name, "name ");
	memset(name + 5, 'x', 64);
	name[69] = 0;
	cr_expect_eq(parse_with("name", name, err), 0, "%s", err);
	strcat(name, "x");
	expect_refused("name", name, "bad name");
	/* spaces inside a value are the value's */
	cr_expect_eq(parse_with("name", "name  a b ", err), 0, "%s", err);
	cr_expect_eq(parse_with("name", "name", err), 0, "%s", err);

	static char big[2048];
	strcpy(big, "kernel ");
	memset(big + 7, 'k', 256);
	expect_refused("kernel", big, "bad kernel");
	big[7 + 255] = 0;
	cr_expect_eq(parse_with("kernel", big, err), 0, "%s", err);
	strcpy(big, "cmdline ");
	memset(big + 8, 'c', 1024);
	expect_refused("cmdline", big, "bad cmdline");
	expect_refused("cmdline", "cmdline a\x01b", "bad cmdline");
}

/* ---- state ---- */

static void fill(void *p, size_t n, uint8_t seed)
{
	uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 8));
}

/*
 * A state of nr vCPUs, every part filled with bytes that differ per vCPU
 * and per part; vCPU i has the optional parts has[i] and nr_msrs[i] MSRs.
 */
static void make_state(struct snap_state *s, unsigned nr, const uint32_t *has,
		       const uint32_t *nr_msrs)
{
	memset(s, 0, sizeof(*s));
	s->nr_vcpus = nr;
	s->vcpus = calloc(nr, sizeof(*s->vcpus));
	cr_assert(s->vcpus);
	for (unsigned i = 0; i < nr; i++) {
		struct vcpu_state *v = &s->vcpus[i];
		uint8_t k = i * 16;

		v->has = has[i];
		fill(&v->regs, sizeof(v->regs), k + 1);
		fill(&v->sregs, sizeof(v->sregs), k + 2);
		if (v->has & VCPU_HAS_XSAVE)
			fill(&v->xsave, sizeof(v->xsave), k + 3);
		else
			fill(&v->fpu, sizeof(v->fpu), k + 4);
		if (v->has & VCPU_HAS_XCRS) {
			fill(&v->xcrs, sizeof(v->xcrs), k + 5);
			v->xcrs.nr_xcrs = 1 + i % KVM_MAX_XCRS;
		}
		fill(&v->lapic, sizeof(v->lapic), k + 6);
		fill(&v->events, sizeof(v->events), k + 7);
		fill(&v->mp, sizeof(v->mp), k + 8);
		if (v->has & VCPU_HAS_DREGS)
			fill(&v->dregs, sizeof(v->dregs), k + 9);
		v->nr_msrs = nr_msrs[i];
		fill(v->msrs, v->nr_msrs * sizeof(v->msrs[0]), k + 10);
	}
	fill(&s->clock, sizeof(s->clock), 201);
	fill(&s->uart, sizeof(s->uart), 202);
	fill(&s->ioapic, sizeof(s->ioapic), 203);
}

#define EXPECT_PART(a, b, f, i)                                                \
	cr_expect(!memcmp(&(a)->f, &(b)->f, sizeof((a)->f)),                   \
		  "vCPU %u: " #f " differs", i)

static void expect_state_eq(const struct snap_state *a,
			    const struct snap_state *b)
{
	cr_assert_eq(a->nr_vcpus, b->nr_vcpus);
	for (unsigned i = 0; i < a->nr_vcpus; i++) {
		const struct vcpu_state *x = &a->vcpus[i], *y = &b->vcpus[i];

		cr_expect_eq(x->has, y->has, "vCPU %u: has %x, not %x", i,
			     y->has, x->has);
		EXPECT_PART(x, y, regs, i);
		EXPECT_PART(x, y, sregs, i);
		if (x->has & VCPU_HAS_XSAVE)
			EXPECT_PART(x, y, xsave, i);
		else
			EXPECT_PART(x, y, fpu, i);
		if (x->has & VCPU_HAS_XCRS)
			EXPECT_PART(x, y, xcrs, i);
		EXPECT_PART(x, y, lapic, i);
		EXPECT_PART(x, y, events, i);
		EXPECT_PART(x, y, mp, i);
		if (x->has & VCPU_HAS_DREGS)
			EXPECT_PART(x, y, dregs, i);
		cr_assert_eq(x->nr_msrs, y->nr_msrs, "vCPU %u", i);
		cr_expect(
		    !memcmp(x->msrs, y->msrs, x->nr_msrs * sizeof(x->msrs[0])),
		    "vCPU %u: msrs differ", i);
	}
	cr_expect(!memcmp(&a->clock, &b->clock, sizeof(a->clock)));
	cr_expect(!memcmp(&a->uart, &b->uart, sizeof(a->uart)));
	cr_expect(!memcmp(&a->ioapic, &b->ioapic, sizeof(a->ioapic)));
}

/*
 * Decode an exact-size copy of buf. After a failure the state must be
 * empty and freeing it (twice) harmless.
 */
static int decode(const void *buf, size_t len, unsigned nr,
		  struct snap_state *s, char *err)
{
	void *copy = malloc(len ? len : 1);
	int r;

	cr_assert(copy);
	memcpy(copy, buf, len);
	err[0] = 0;
	memset(s, 0xa5, sizeof(*s));
	r = snapshot__state_decode(copy, len, nr, s, err, ERRLEN);
	free(copy);
	if (r) {
		cr_expect_eq(r, -1);
		expect_msg(err);
		snapshot__state_free(s);
		snapshot__state_free(s);
		cr_expect_null(s->vcpus);
	}
	return r;
}

static void round_trip(unsigned nr, const uint32_t *has,
		       const uint32_t *nr_msrs)
{
	struct snap_state s, out;
	char err[ERRLEN];
	size_t len = 0;
	void *enc;

	make_state(&s, nr, has, nr_msrs);
	enc = snapshot__state_encode(&s, &len);
	cr_assert(enc);
	cr_assert_gt(len, 16);
	cr_expect(!memcmp(enc, "SLOSSTAT", 8));
	cr_expect_eq(len % 4, 0);
	cr_assert_eq(decode(enc, len, nr, &out, err), 0, "%s", err);
	expect_state_eq(&s, &out);
	snapshot__state_free(&out);
	cr_expect_null(out.vcpus);
	snapshot__state_free(&out);
	free(enc);
	snapshot__state_free(&s);
}

Test(snapshot, state_round_trip_one_vcpu)
{
	static const uint32_t all =
	    VCPU_HAS_XSAVE | VCPU_HAS_XCRS | VCPU_HAS_DREGS;
	static const uint32_t msrs[] = {0, 1, 5, SNAP_MAX_MSRS};
	static const uint32_t has[] = {
	    0,
	    VCPU_HAS_XSAVE,
	    VCPU_HAS_XCRS,
	    VCPU_HAS_DREGS,
	    VCPU_HAS_XSAVE | VCPU_HAS_XCRS,
	    all,
	};

	for (size_t i = 0; i < sizeof(has) / sizeof(has[0]); i++)
		for (size_t j = 0; j < sizeof(msrs) / sizeof(msrs[0]); j++)
			round_trip(1, &has[i], &msrs[j]);
}

Test(snapshot, state_round_trip_three_vcpus)
{
	static const uint32_t all =
	    VCPU_HAS_XSAVE | VCPU_HAS_XCRS | VCPU_HAS_DREGS;
	const uint32_t has[][3] = {
	    {0, 0, 0},
	    {all, all, all},
	    {0, VCPU_HAS_XSAVE | VCPU_HAS_XCRS, all},
	    {all, VCPU_HAS_DREGS, 0},
	};
	const uint32_t msrs[][3] = {
	    {0, 5, SNAP_MAX_MSRS},
	    {SNAP_MAX_MSRS, 0, 5},
	    {5, 5, 5},
	};

	for (size_t i = 0; i < sizeof(has) / sizeof(has[0]); i++)
		for (size_t j = 0; j < sizeof(msrs) / sizeof(msrs[0]); j++)
			round_trip(3, has[i], msrs[j]);
}

/* The records go to their own vCPU: swap two vCPUs, the decode follows. */
Test(snapshot, state_vcpus_are_distinct)
{
	const uint32_t has[3] = {VCPU_HAS_XSAVE, 0, VCPU_HAS_DREGS};
	const uint32_t msrs[3] = {3, 4, 5};
	struct snap_state s, out;
	char err[ERRLEN];
	size_t len;
	void *enc;

	make_state(&s, 3, has, msrs);
	enc = snapshot__state_encode(&s, &len);
	cr_assert(enc);
	cr_assert_eq(decode(enc, len, 3, &out, err), 0, "%s", err);
	for (unsigned i = 0; i < 3; i++)
		for (unsigned j = 0; j < 3; j++)
			if (i != j)
				cr_expect(memcmp(&out.vcpus[i].regs,
						 &out.vcpus[j].regs,
						 sizeof(out.vcpus[i].regs)));
	cr_expect_eq(out.vcpus[0].has, VCPU_HAS_XSAVE);
	cr_expect_eq(out.vcpus[1].has, 0);
	cr_expect_eq(out.vcpus[2].has, VCPU_HAS_DREGS);
	cr_expect_eq(out.vcpus[1].nr_msrs, 4);
	snapshot__state_free(&out);
	free(enc);
	snapshot__state_free(&s);
}

Test(snapshot, state_wrong_vcpu_count)
{
	const uint32_t has[3] = {0, 0, 0}, msrs[3] = {0, 0, 0};
	static const unsigned tries[] = {
	    0, 1, 2, 4, SNAP_MAX_VCPUS, SNAP_MAX_VCPUS + 1, ~0u};
	struct snap_state s, out;
	char err[ERRLEN];
	size_t len;
	void *enc;

	make_state(&s, 3, has, msrs);
	enc = snapshot__state_encode(&s, &len);
	cr_assert(enc);
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		cr_expect_eq(decode(enc, len, tries[i], &out, err), -1);
		cr_expect(strstr(err, "3 vCPUs"), "%u: %s", tries[i], err);
	}
	cr_expect_eq(decode(enc, len, 3, &out, err), 0, "%s", err);
	snapshot__state_free(&out);
	free(enc);
	snapshot__state_free(&s);
}

static void *small_state(size_t *len)
{
	const uint32_t has = 0, msrs = 0;
	struct snap_state s;
	void *enc;

	make_state(&s, 1, &has, &msrs);
	enc = snapshot__state_encode(&s, len);
	cr_assert(enc);
	snapshot__state_free(&s);
	return enc;
}

static void *big_state(size_t *len)
{
	const uint32_t all = VCPU_HAS_XSAVE | VCPU_HAS_XCRS | VCPU_HAS_DREGS;
	const uint32_t has[3] = {all, 0, all}, msrs[3] = {5, 0, 256};
	struct snap_state s;
	void *enc;

	make_state(&s, 3, has, msrs);
	enc = snapshot__state_encode(&s, len);
	cr_assert(enc);
	snapshot__state_free(&s);
	return enc;
}

static void truncations(const void *enc, size_t len, unsigned nr, size_t stride)
{
	struct snap_state out;
	char err[ERRLEN];

	for (size_t n = 0; n < len; n += n + stride < len ? stride : 1)
		cr_expect_eq(decode(enc, n, nr, &out, err), -1,
			     "%zu of %zu bytes accepted", n, len);
	cr_expect_eq(decode(enc, len, nr, &out, err), 0, "%s", err);
	snapshot__state_free(&out);
}

Test(snapshot, state_truncated_everywhere)
{
	size_t len;
	void *enc = small_state(&len);

	truncations(enc, len, 1, 1);
	free(enc);
	enc = big_state(&len);
	truncations(enc, len, 3, 13);
	free(enc);
}

static void flips(const void *enc, size_t len, unsigned nr, size_t stride)
{
	static const uint8_t masks[] = {0x01, 0x80, 0xff};
	struct snap_state out;
	uint8_t *b = malloc(len);
	char err[ERRLEN];

	cr_assert(b);
	memcpy(b, enc, len);
	for (size_t i = 0; i < len; i += i + stride < len ? stride : 1)
		for (size_t k = 0; k < sizeof(masks); k++) {
			b[i] ^= masks[k];
			cr_expect_eq(decode(b, len, nr, &out, err), -1,
				     "byte %zu ^ %02x of %zu accepted", i,
				     masks[k], len);
			b[i] ^= masks[k];
		}
	cr_expect_eq(decode(b, len, nr, &out, err), 0, "%s", err);
	snapshot__state_free(&out);
	free(b);
}

Test(snapshot, state_corrupted_byte)
{
	size_t len;
	void *enc = small_state(&len);

	flips(enc, len, 1, 1);
	free(enc);
	enc = big_state(&len);
	flips(enc, len, 3, 11);
	free(enc);
}

Test(snapshot, state_corruption_named)
{
	struct snap_state out;
	char err[ERRLEN];
	size_t len;
	uint8_t *enc = small_state(&len);

	enc[100] ^= 1;
	cr_expect_eq(decode(enc, len, 1, &out, err), -1);
	cr_expect(strstr(err, "checksum"), "%s", err);
	enc[100] ^= 1;
	enc[len - 1] ^= 1; /* the CRC itself */
	cr_expect_eq(decode(enc, len, 1, &out, err), -1);
	cr_expect(strstr(err, "checksum"), "%s", err);
	enc[len - 1] ^= 1;
	enc[0] = 'X';
	cr_expect_eq(decode(enc, len, 1, &out, err), -1);
	cr_expect(strstr(err, "not a slos state"), "%s", err);
	free(enc);
}

/*
 * Crafted states: records laid out by hand, with a valid CRC, so each
 * reaches the record checks. The layout is snapshot_codec.c's: header
 * {magic[8], u32 version, u32 nr_vcpus}; records {u32 tag, u32 index,
 * u64 len, payload padded to 8}; REC_END; u32 CRC-32 of all before it.
 */
struct craft {
	uint8_t *p;
	size_t len, cap;
};

static uint8_t payload[8192];

static void c_put(struct craft *c, const void *d, size_t n)
{
	if (c->len + n > c->cap) {
		c->cap = (c->len + n) * 2;
		c->p = realloc(c->p, c->cap);
		cr_assert(c->p);
	}
	memcpy(c->p + c->len, d, n);
	c->len += n;
}

static void c_hdr(struct craft *c, const char *magic, uint32_t version,
		  uint32_t nr)
{
	c_put(c, magic, 8);
	c_put(c, &version, 4);
	c_put(c, &nr, 4);
}

static void c_rec_hdr(struct craft *c, uint32_t tag, uint32_t index,
		      uint64_t len)
{
	c_put(c, &tag, 4);
	c_put(c, &index, 4);
	c_put(c, &len, 8);
}

static void c_rec(struct craft *c, uint32_t tag, uint32_t index, size_t len)
{
	cr_assert_leq(len, sizeof(payload));
	c_rec_hdr(c, tag, index, len);
	c_put(c, payload, len);
	c_put(c, payload, (8 - len % 8) % 8);
}

static size_t tag_size(uint32_t tag)
{
	struct vcpu_state *v = NULL;
	struct snap_state *s = NULL;

	switch (tag) {
	case T_REGS:
		return sizeof(v->regs);
	case T_SREGS:
		return sizeof(v->sregs);
	case T_XSAVE:
		return sizeof(v->xsave);
	case T_FPU:
		return sizeof(v->fpu);
	case T_XCRS:
		return sizeof(v->xcrs);
	case T_LAPIC:
		return sizeof(v->lapic);
	case T_EVENTS:
		return sizeof(v->events);
	case T_MP:
		return sizeof(v->mp);
	case T_DREGS:
		return sizeof(v->dregs);
	case T_MSRS:
		return 2 * sizeof(v->msrs[0]);
	case T_CLOCK:
		return sizeof(s->clock);
	case T_UART:
		return sizeof(s->uart);
	case T_IOAPIC:
		return sizeof(s->ioapic);
	default:
		return 0;
	}
}

static const uint32_t vcpu_tags[] = {T_REGS,   T_SREGS, T_FPU, T_LAPIC,
				     T_EVENTS, T_MP,	T_MSRS};
static const uint32_t vm_tags[] = {T_CLOCK, T_UART, T_IOAPIC};
#define NR_VCPU_TAGS (sizeof(vcpu_tags) / sizeof(vcpu_tags[0]))
#define NR_VM_TAGS   (sizeof(vm_tags) / sizeof(vm_tags[0]))

/* vCPU index's required records but skip; then the VM's but skip. */
static void c_vcpu(struct craft *c, uint32_t index, uint32_t skip)
{
	for (size_t i = 0; i < NR_VCPU_TAGS; i++)
		if (vcpu_tags[i] != skip)
			c_rec(c, vcpu_tags[i], index, tag_size(vcpu_tags[i]));
}

static void c_vm(struct craft *c, uint32_t skip)
{
	for (size_t i = 0; i < NR_VM_TAGS; i++)
		if (vm_tags[i] != skip)
			c_rec(c, vm_tags[i], 0, tag_size(vm_tags[i]));
}

static void c_end(struct craft *c)
{
	c_rec_hdr(c, T_END, 0, 0);
}

static void c_crc(struct craft *c)
{
	uint32_t crc = crc32(0, c->p, c->len);

	c_put(c, &crc, 4);
}

/* A complete state of nr vCPUs but for the record skip. */
static void c_state(struct craft *c, unsigned nr, uint32_t skip)
{
	c_hdr(c, "SLOSSTAT", SNAP_FORMAT, nr);
	for (unsigned i = 0; i < nr; i++)
		c_vcpu(c, i, skip);
	c_vm(c, skip);
}

/* Decode c (CRC appended here) for nr vCPUs; expect msg on failure. */
static int c_decode(struct craft *c, unsigned nr, const char *msg)
{
	struct snap_state out;
	char err[ERRLEN];
	int r;

	c_crc(c);
	r = decode(c->p, c->len, nr, &out, err);
	if (msg) {
		cr_expect_eq(r, -1, "accepted; wanted '%s'", msg);
		cr_expect(strstr(err, msg), "'%s' lacks '%s'", err, msg);
	}
	snapshot__state_free(&out);
	free(c->p);
	*c = (struct craft){0};
	return r;
}

Test(snapshot, crafted_valid)
{
	struct snap_state out;
	struct craft c = {0};
	char err[ERRLEN];

	/* the crafting itself is right: a complete state decodes */
	for (unsigned nr = 1; nr <= 3; nr++) {
		c_state(&c, nr, 0);
		c_end(&c);
		cr_expect_eq(c_decode(&c, nr, NULL), 0);
	}
	/* with the optional parts, in any order */
	c_hdr(&c, "SLOSSTAT", SNAP_FORMAT, 2);
	c_vm(&c, 0);
	c_rec(&c, T_DREGS, 1, tag_size(T_DREGS));
	c_vcpu(&c, 1, T_FPU);
	c_rec(&c, T_XSAVE, 1, tag_size(T_XSAVE));
	c_vcpu(&c, 0, 0);
	c_rec(&c, T_XCRS, 0, tag_size(T_XCRS)); /* zeros: nr_xcrs 0 */
	c_end(&c);
	c_crc(&c);
	cr_assert_eq(decode(c.p, c.len, 2, &out, err), 0, "%s", err);
	cr_expect_eq(out.vcpus[0].has, VCPU_HAS_XCRS);
	cr_expect_eq(out.vcpus[1].has, VCPU_HAS_XSAVE | VCPU_HAS_DREGS);
	cr_expect_eq(out.vcpus[0].nr_msrs, 2);
	snapshot__state_free(&out);
	free(c.p);
}

Test(snapshot, crafted_overrun)
{
	static const uint64_t lens[] = {152, 4096, 1ull << 32, UINT64_MAX - 7,
					UINT64_MAX};
	struct craft c = {0};

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		/* a REGS record claiming more than is left; 144 is there */
		c_hdr(&c, "SLOSSTAT", SNAP_FORMAT, 1);
		c_rec_hdr(&c, T_REGS, 0, lens[i]);
		c_put(&c, payload, 144);
		c_decode(&c, 1, "overruns");
	}
	/* the last record without its padding */
	c_hdr(&c, "SLOSSTAT", SNAP_FORMAT, 1);
	c_vcpu(&c, 0, T_MP);
	c_vm(&c, 0);
	c_rec_hdr(&c, T_MP, 0, 4);
	c_put(&c, payload, 4);
	c_decode(&c, 1, "truncated");
	/* a record header cut short */
	c_state(&c, 1, 0);
	c_put(&c, payload, 12);
	c_decode(&c, 1, "truncated");
}

Test(snapshot, crafted_vcpu_index_out_of_range)
{
	static const uint32_t bad[] = {1, 2, 3, 1024, 0x7fffffff, ~0u};
	struct craft c = {0};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		for (size_t t = 0; t < NR_VCPU_TAGS; t++) {
			c_state(&c, 1, 0);
			c_rec(&c, vcpu_tags[t], bad[i], tag_size(vcpu_tags[t]));
			c_end(&c);
			c_decode(&c, 1, "for vCPU");
		}
	/* 3 vCPUs: index 3 is one too many */
	c_state(&c, 3, 0);
	c_rec(&c, T_DREGS, 3, tag_size(T_DREGS));
	c_end(&c);
	c_decode(&c, 3, "vCPU 3 of 3");
}

static void unknown_tags(const uint32_t *tags, size_t n)
{
	struct craft c = {0};

	for (size_t i = 0; i < n; i++) {
		c_state(&c, 1, 0);
		c_rec(&c, tags[i], 0, 16);
		c_end(&c);
		c_decode(&c, 1, "unknown record");
		/* first thing after the header */
		c_hdr(&c, "SLOSSTAT", SNAP_FORMAT, 1);
		c_rec(&c, tags[i], 0, 0);
		c_end(&c);
		c_decode(&c, 1, "unknown record");
	}
}

Test(snapshot, crafted_unknown_tag)
{
	/* unused tags in the vCPU range and the VM range */
	static const uint32_t tags[] = {0, 11, 12, 31, 35, 40, 47};

	unknown_tags(tags, sizeof(tags) / sizeof(tags[0]));
}

/* Tags past the VM records' range (48 and up, but for REC_END). */
Test(snapshot, crafted_unknown_tag_large)
{
	static const uint32_t tags[] = {48,	 63,	     0x1234, 0xfffe,
					0x10000, 0x80000000, ~0u};

	unknown_tags(tags, sizeof(tags) / sizeof(tags[0]));
}

Test(snapshot, crafted_duplicate_record)
{
	struct craft c = {0};

	for (size_t t = 0; t < NR_VCPU_TAGS; t++) {
		c_state(&c, 2, 0);
		c_rec(&c, vcpu_tags[t], 1, tag_size(vcpu_tags[t]));
		c_end(&c);
		c_decode(&c, 2, "repeated");
	}
	for (size_t t = 0; t < NR_VM_TAGS; t++) {
		c_state(&c, 1, 0);
		c_rec(&c, vm_tags[t], 0, tag_size(vm_tags[t]));
		c_end(&c);
		c_decode(&c, 1, "repeated");
		/* another index does not make it another record */
		c_state(&c, 1, 0);
		c_rec(&c, vm_tags[t], 5, tag_size(vm_tags[t]));
		c_end(&c);
		c_decode(&c, 1, "repeated");
	}
	static const uint32_t opt[] = {T_XSAVE, T_XCRS, T_DREGS};
	for (size_t t = 0; t < 3; t++) {
		c_state(&c, 1, T_FPU);
		c_rec(&c, opt[t], 0, tag_size(opt[t]));
		if (opt[t] != T_XSAVE)
			c_rec(&c, T_XSAVE, 0, tag_size(T_XSAVE));
		c_rec(&c, opt[t], 0, tag_size(opt[t]));
		c_end(&c);
		c_decode(&c, 1, "repeated");
	}
}

Test(snapshot, crafted_missing_record)
{
	struct craft c = {0};

	for (size_t t = 0; t < NR_VCPU_TAGS; t++) {
		c_state(&c, 1, vcpu_tags[t]);
		c_end(&c);
		c_decode(&c, 1, "vCPU 0 incomplete");
		/* missing from the last vCPU only */
		c_hdr(&c, "SLOSSTAT", SNAP_FORMAT, 3);
		c_vcpu(&c, 0, 0);
		c_vcpu(&c, 1, 0);
		c_vcpu(&c, 2, vcpu_tags[t]);
		c_vm(&c, 0);
		c_end(&c);
		c_decode(&c, 3, "vCPU 2 incomplete");
	}
	for (size_t t = 0; t < NR_VM_TAGS; t++) {
		c_state(&c, 1, vm_tags[t]);
		c_end(&c);
		c_decode(&c, 1, "missing");
	}
	/* both FPU and XSAVE: which would the vCPU load? */
	c_state(&c, 1, 0);
	c_rec(&c, T_XSAVE, 0, tag_size(T_XSAVE));
	c_end(&c);
	c_decode(&c, 1, "incomplete");
	/* no records at all */
	c_hdr(&c, "SLOSSTAT", SNAP_FORMAT, 1);
	c_end(&c);
	c_decode(&c, 1, "missing");
	/* no REC_END */
	c_state(&c, 1, 0);
	c_decode(&c, 1, "truncated");
}

Test(snapshot, crafted_bad_records)
{
	static const struct {
		uint32_t tag;
		uint64_t len;
	} bad[] = {
	    {T_REGS, 0},	{T_REGS, 136},	  {T_REGS, 152},
	    {T_SREGS, 8},	{T_FPU, 4096},	  {T_MP, 8},
	    {T_LAPIC, 1023},	{T_CLOCK, 0},	  {T_UART, 16},
	    {T_MSRS, 17},	{T_MSRS, 8},	  {T_MSRS, 4104},
	    {T_MSRS, 257 * 16}, {T_IOAPIC, 8192},
	};
	struct craft c = {0};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c_state(&c, 1, bad[i].tag);
		c_rec(&c, bad[i].tag, 0, bad[i].len);
		c_end(&c);
		c_decode(&c, 1, "bytes, not");
	}
	/* 256 MSRs is the most, and none is fine */
	c_state(&c, 1, T_MSRS);
	c_rec(&c, T_MSRS, 0, SNAP_MAX_MSRS * 16);
	c_end(&c);
	cr_expect_eq(c_decode(&c, 1, NULL), 0);
	c_state(&c, 1, T_MSRS);
	c_rec(&c, T_MSRS, 0, 0);
	c_end(&c);
	cr_expect_eq(c_decode(&c, 1, NULL), 0);

	/* an XCR count past KVM's */
	struct kvm_xcrs x = {.nr_xcrs = KVM_MAX_XCRS + 1};
	c_state(&c, 1, 0);
	c_rec_hdr(&c, T_XCRS, 0, sizeof(x));
	c_put(&c, &x, sizeof(x));
	c_end(&c);
	c_decode(&c, 1, "XCR count");
	x.nr_xcrs = KVM_MAX_XCRS;
	c_state(&c, 1, 0);
	c_rec_hdr(&c, T_XCRS, 0, sizeof(x));
	c_put(&c, &x, sizeof(x));
	c_end(&c);
	cr_expect_eq(c_decode(&c, 1, NULL), 0);
}

Test(snapshot, crafted_bad_framing)
{
	struct craft c = {0};

	/* bytes after REC_END */
	c_state(&c, 1, 0);
	c_end(&c);
	c_put(&c, payload, 8);
	c_decode(&c, 1, "after the end");
	/* REC_END claiming a payload */
	c_state(&c, 1, 0);
	c_rec(&c, T_END, 0, 8);
	c_decode(&c, 1, "after the end");
	/* other magic, other version, both with a valid CRC */
	c_hdr(&c, "SLOSSTAX", SNAP_FORMAT, 1);
	c_vcpu(&c, 0, 0);
	c_vm(&c, 0);
	c_end(&c);
	c_decode(&c, 1, "not a slos state");
	c_hdr(&c, "SLOSSTAT", SNAP_FORMAT + 1, 1);
	c_vcpu(&c, 0, 0);
	c_vm(&c, 0);
	c_end(&c);
	c_decode(&c, 1, "format version 2");
	/* vCPU counts out of range, header and caller agreeing */
	c_hdr(&c, "SLOSSTAT", SNAP_FORMAT, 0);
	c_vm(&c, 0);
	c_end(&c);
	c_decode(&c, 0, "bad vCPU count");
	c_hdr(&c, "SLOSSTAT", SNAP_FORMAT, SNAP_MAX_VCPUS + 1);
	c_end(&c);
	c_decode(&c, SNAP_MAX_VCPUS + 1, "bad vCPU count");
	c_hdr(&c, "SLOSSTAT", SNAP_FORMAT, ~0u);
	c_end(&c);
	c_decode(&c, ~0u, "bad vCPU count");
	/* just a header and a CRC */
	c_hdr(&c, "SLOSSTAT", SNAP_FORMAT, 1);
	c_decode(&c, 1, "truncated");
}

/* ---- CPU check ---- */

static void cpu(struct snap_manifest *m, const char *vendor)
{
	static const struct snap_cpuid words[] = {
	    {1, 0, 2, 0xfeda3203},	    {1, 0, 3, 0x178bfbff},
	    {7, 0, 1, 0x219c07a9},	    {7, 0, 2, 0x0040069c},
	    {0xd, 1, 0, 0x0000000f},	    {0x80000001, 0, 2, 0x75c237ff},
	    {0x80000001, 0, 3, 0x2fd3fbff},
	};

	memset(m, 0, sizeof(*m));
	strcpy(m->cpu_vendor, vendor);
	strcpy(m->cpu_model, "Test CPU");
	m->nr_cpuid = sizeof(words) / sizeof(words[0]);
	memcpy(m->cpuid, words, sizeof(words));
}

Test(snapshot, check_cpu_equal)
{
	struct snap_manifest snap, host;
	char err[ERRLEN] = "";

	cpu(&snap, "AuthenticAMD");
	cpu(&host, "AuthenticAMD");
	cr_expect_eq(snapshot__check_cpu(&snap, &host, err, sizeof(err)), 0,
		     "%s", err);
	/* order does not matter */
	host.cpuid[0] = snap.cpuid[6];
	host.cpuid[6] = snap.cpuid[0];
	cr_expect_eq(snapshot__check_cpu(&snap, &host, err, sizeof(err)), 0,
		     "%s", err);
	/* nor does the model */
	strcpy(host.cpu_model, "Another CPU");
	cr_expect_eq(snapshot__check_cpu(&snap, &host, err, sizeof(err)), 0,
		     "%s", err);
}

/* HTT describes the VM's shape, not the CPU: a VM saved as one package
 * restores over hosts, where each vCPU is a package of its own. */
Test(snapshot, check_cpu_ignores_htt)
{
	struct snap_manifest snap, host;
	char err[ERRLEN] = "";

	cpu(&snap, "AuthenticAMD");
	cpu(&host, "AuthenticAMD");
	host.cpuid[1].val &= ~(1u << 28);
	cr_expect_eq(snapshot__check_cpu(&snap, &host, err, sizeof(err)), 0,
		     "%s", err);
	/* another bit of the same word still counts */
	host.cpuid[1].val &= ~(1u << 25); /* SSE */
	cr_expect_eq(snapshot__check_cpu(&snap, &host, err, sizeof(err)), -1);
	cr_expect(strstr(err, "bits 02000000"), "%s", err);
}

Test(snapshot, check_cpu_host_lacks_bits)
{
	struct snap_manifest snap, host;
	char err[ERRLEN];

	cpu(&snap, "GenuineIntel");
	cpu(&host, "GenuineIntel");
	host.cpuid[2].val &= ~0x00000020u; /* 7.0 ebx: AVX2 */
	host.cpuid[2].val &= ~0x00010000u; /* AVX512F (not set anyway) */
	err[0] = 0;
	cr_expect_eq(snapshot__check_cpu(&snap, &host, err, sizeof(err)), -1);
	expect_msg(err);
	cr_expect(strstr(err, "00000007.0 ebx"), "%s", err);
	cr_expect(strstr(err, "bits 00000020"), "%s", err);

	/* the word missing altogether: every bit of it */
	cpu(&host, "GenuineIntel");
	host.nr_cpuid = 4; /* without 0xd.1 and 0x80000001 */
	err[0] = 0;
	cr_expect_eq(snapshot__check_cpu(&snap, &host, err, sizeof(err)), -1);
	cr_expect(strstr(err, "0000000d.1 eax"), "%s", err);
	cr_expect(strstr(err, "bits 0000000f"), "%s", err);

	/* same bits under another sub-leaf or register do not count */
	cpu(&host, "GenuineIntel");
	host.cpuid[6].reg = 2;
	host.cpuid[5].reg = 3;
	cr_expect_eq(snapshot__check_cpu(&snap, &host, err, sizeof(err)), -1);
	cr_expect(strstr(err, "80000001.0"), "%s", err);
	cpu(&host, "GenuineIntel");
	host.cpuid[4].sub = 0;
	cr_expect_eq(snapshot__check_cpu(&snap, &host, err, sizeof(err)), -1);
	cr_expect(strstr(err, "0000000d.1"), "%s", err);

	/* an empty host has nothing */
	memset(&host, 0, sizeof(host));
	strcpy(host.cpu_vendor, "GenuineIntel");
	cr_expect_eq(snapshot__check_cpu(&snap, &host, err, sizeof(err)), -1);
	cr_expect(strstr(err, "00000001.0 ecx"), "%s", err);
}

Test(snapshot, check_cpu_other_vendor)
{
	struct snap_manifest snap, host;
	char err[ERRLEN];

	cpu(&snap, "GenuineIntel");
	cpu(&host, "AuthenticAMD");
	err[0] = 0;
	cr_expect_eq(snapshot__check_cpu(&snap, &host, err, sizeof(err)), -1);
	expect_msg(err);
	cr_expect(strstr(err, "GenuineIntel"), "%s", err);
	cr_expect(strstr(err, "AuthenticAMD"), "%s", err);
	/* even with every bit there */
	for (unsigned i = 0; i < host.nr_cpuid; i++)
		host.cpuid[i].val = ~0u;
	cr_expect_eq(snapshot__check_cpu(&snap, &host, err, sizeof(err)), -1);
	strcpy(host.cpu_vendor, "");
	cr_expect_eq(snapshot__check_cpu(&snap, &host, err, sizeof(err)), -1);
}

Test(snapshot, check_cpu_host_has_more)
{
	struct snap_manifest snap, host;
	char err[ERRLEN] = "";

	cpu(&snap, "GenuineIntel");
	cpu(&host, "GenuineIntel");
	for (unsigned i = 0; i < host.nr_cpuid; i++)
		host.cpuid[i].val |= 0x80000001u;
	host.cpuid[host.nr_cpuid++] =
	    (struct snap_cpuid){0x80000007, 0, 3, 0x100};
	cr_expect_eq(snapshot__check_cpu(&snap, &host, err, sizeof(err)), 0,
		     "%s", err);
	/* a snapshot with no words runs anywhere of its vendor */
	snap.nr_cpuid = 0;
	memset(&host.cpuid, 0, sizeof(host.cpuid));
	host.nr_cpuid = 0;
	cr_expect_eq(snapshot__check_cpu(&snap, &host, err, sizeof(err)), 0,
		     "%s", err);
}

/* What a manifest records of a CPU passes its own check, parsed back. */
Test(snapshot, check_cpu_through_manifest)
{
	struct snap_manifest snap, host, out;
	char buf[SNAP_MANIFEST_MAX], err[ERRLEN];

	fill_manifest(&snap);
	cr_assert_eq(snapshot__manifest_format(&snap, buf, sizeof(buf)), 0);
	cr_assert_eq(parse_str(buf, &out, err), 0, "%s", err);
	host = out;
	cr_expect_eq(snapshot__check_cpu(&out, &host, err, sizeof(err)), 0,
		     "%s", err);
	host.cpuid[3].val = 0;
	cr_expect_eq(snapshot__check_cpu(&out, &host, err, sizeof(err)), -1);
}

/* What this host records of its CPU: the words KVM offers the guest, or
 * (PVM, where CPUID is not virtualized) the host's own. */
Test(snapshot, host_cpu)
{
	const size_t n = 5;
	struct kvm_cpuid2 *c =
	    calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
	struct snap_manifest m, out;
	char buf[SNAP_MANIFEST_MAX], err[ERRLEN];

	cr_assert(c);
	c->nent = n;
	/* sub-leaf 1 first: leaf 7's sub-leaf 0 must still be found */
	c->entries[0] =
	    (struct kvm_cpuid_entry2){.function = 7,
				      .index = 1,
				      .ebx = 0xdead,
				      .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX};
	c->entries[1] =
	    (struct kvm_cpuid_entry2){.function = 7,
				      .index = 0,
				      .ebx = 0x33,
				      .ecx = 0x44,
				      .edx = 0x55,
				      .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX};
	c->entries[2] =
	    (struct kvm_cpuid_entry2){.function = 1, .ecx = 0x11, .edx = 0x22};
	c->entries[3] =
	    (struct kvm_cpuid_entry2){.function = 0xd,
				      .index = 1,
				      .eax = 0xf,
				      .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX};
	c->entries[4] =
	    (struct kvm_cpuid_entry2){.function = 0x80000008, .eax = 0x3030};

	memset(&m, 0x55, sizeof(m));
	snapshot__host_cpu(&m, c, false);
	cr_expect_gt(strlen(m.cpu_vendor), 0);
	for (const char *p = m.cpu_model; *p; p++)
		cr_expect(isprint((unsigned char)*p));
	cr_expect_neq(m.cpu_model[0], ' ');
	/* 0x80000001 and 0x80000007 are not offered: skipped */
	static const struct snap_cpuid want[] = {
	    {1, 0, 2, 0x11}, {1, 0, 3, 0x22}, {7, 0, 1, 0x33},
	    {7, 0, 2, 0x44}, {7, 0, 3, 0x55}, {0xd, 1, 0, 0xf},
	};
	cr_assert_eq(m.nr_cpuid, 6);
	for (unsigned i = 0; i < 6; i++) {
		cr_expect_eq(m.cpuid[i].leaf, want[i].leaf, "word %u", i);
		cr_expect_eq(m.cpuid[i].sub, want[i].sub, "word %u", i);
		cr_expect_eq(m.cpuid[i].reg, want[i].reg, "word %u", i);
		cr_expect_eq(m.cpuid[i].val, want[i].val, "word %u", i);
	}

	/* PVM: the host's own CPUID, every word */
	struct snap_manifest pvm;
	memset(&pvm, 0, sizeof(pvm));
	snapshot__host_cpu(&pvm, c, true);
	cr_expect_eq(pvm.nr_cpuid, 9);
	cr_expect_str_eq(pvm.cpu_vendor, m.cpu_vendor);
	cr_expect_str_eq(pvm.cpu_model, m.cpu_model);
	cr_expect_eq(snapshot__check_cpu(&pvm, &pvm, err, sizeof(err)), 0, "%s",
		     err);

	/* it goes through a manifest unchanged */
	pvm.version = SNAP_FORMAT;
	pvm.nr_vcpus = 1;
	pvm.mem_size = 64 << 20;
	cr_assert_eq(snapshot__manifest_format(&pvm, buf, sizeof(buf)), 0);
	cr_assert_eq(parse_str(buf, &out, err), 0, "%s", err);
	expect_manifest_eq(&pvm, &out);
	free(c);
}
