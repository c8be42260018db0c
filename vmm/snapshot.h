/* SPDX-License-Identifier: MIT */
/*
 * VM snapshots: a directory with
 *   manifest  text, versioned: the VM's configuration and the host CPU it
 *             was taken on (checked before a restore);
 *   state     binary records: every vCPU's KVM state, the guest clock, the
 *             VMM's devices; a CRC-32 trailer;
 *   memory    guest-physical memory as a sparse file (offset = guest-
 *             physical address): pages never written are holes.
 * docs/snapshot.md has the formats. A restore serves `memory` page by page
 * through the fault engine, so a snapshot's files are only ever read and
 * one snapshot restores many times, concurrently.
 *
 * The codec (snapshot_codec.c) is pure: it turns untrusted bytes into the
 * structures below or refuses them, never reading out of bounds; it is
 * fuzzed (tests/fuzz).
 */
#ifndef SLOS_SNAPSHOT_H
#define SLOS_SNAPSHOT_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/ioapic.h"
#include "vmm/uart.h"

#define SNAP_FORMAT	 1
#define SNAP_MAX_VCPUS	 1024
#define SNAP_MAX_MSRS	 256
#define SNAP_MAX_CPUID	 16
#define SNAP_MANIFEST	 "manifest"
#define SNAP_STATE	 "state"
#define SNAP_MEMORY	 "memory"
/* Written by a restore, never by a snapshot: the pages that restore touched
 * first, in order, for the next restore's --prefetch. */
#define SNAP_PREFETCH	 "prefetch"
#define SNAP_MANIFEST_MAX 16384
#define SNAP_STATE_MAX	 (64ULL << 20)

/* A CPUID word the guest saw: it needs every bit set in it. */
struct snap_cpuid {
	uint32_t leaf, sub;
	uint8_t reg; /* 0 eax, 1 ebx, 2 ecx, 3 edx */
	uint32_t val;
};

struct snap_manifest {
	unsigned version;
	char name[65];
	unsigned nr_vcpus;
	uint64_t mem_size;
	bool pvm;
	uint32_t tsc_khz;
	char cpu_vendor[13];
	char cpu_model[64];
	unsigned nr_cpuid;
	struct snap_cpuid cpuid[SNAP_MAX_CPUID];
	/* Informational, for people: what was booted. */
	char kernel[256], cmdline[1024], taken[32];
};

/* Which optional parts a vCPU's state holds. */
#define VCPU_HAS_XSAVE 0x1 /* else fpu */
#define VCPU_HAS_XCRS  0x2
#define VCPU_HAS_DREGS 0x4

struct vcpu_state {
	uint32_t has;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	/* struct kvm_xsave's 4 KiB (its flexible tail, for KVM_GET_XSAVE2,
	 * cannot sit inside a struct) */
	struct {
		uint32_t region[1024];
	} xsave;
	struct kvm_fpu fpu;
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp;
	struct kvm_debugregs dregs;
	uint32_t nr_msrs;
	struct kvm_msr_entry msrs[SNAP_MAX_MSRS];
};

struct snap_state {
	unsigned nr_vcpus;
	struct vcpu_state *vcpus;
	struct kvm_clock_data clock;
	struct uart_state uart;
	struct ioapic_state ioapic;
};

/* One line into err (printf-style); returns -1 for `return` chains. */
int snapshot__errf(char *err, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Codec (pure). Each returns 0, or -1 with one line in err. */
int snapshot__manifest_format(const struct snap_manifest *m, char *buf,
			      size_t len);
int snapshot__manifest_parse(const char *buf, size_t len,
			     struct snap_manifest *m, char *err,
			     size_t errlen);
/* A malloc'ed encoding of s; NULL if out of memory. */
void *snapshot__state_encode(const struct snap_state *s, size_t *len);
/* Decode a state for nr_vcpus vCPUs (from the manifest); allocates
 * s->vcpus, which snapshot__state_free releases (also after a failure). */
int snapshot__state_decode(const void *buf, size_t len, unsigned nr_vcpus,
			   struct snap_state *s, char *err, size_t errlen);
void snapshot__state_free(struct snap_state *s);

/* This host's CPU as a manifest records it (vendor, model, CPUID words). */
void snapshot__host_cpu(struct snap_manifest *m, const struct kvm_cpuid2 *c,
			bool pvm);
/* 0 if this host has every CPUID bit the snapshot's guest saw; else -1
 * naming the first missing word and bits. */
int snapshot__check_cpu(const struct snap_manifest *snap,
			const struct snap_manifest *host, char *err,
			size_t errlen);

struct vm;
struct vcpu;

/*
 * Taking one (vmm/snapshot.c): the VM must be paused (vm__pause). Writes
 * DIR, which must not exist, atomically (a temporary directory renamed at
 * the end). Returns 0 or -1 with a message in err.
 */
int snapshot__take(struct vm *vm, const char *dir, char *err, size_t errlen);
/* Pause, take, then resume the VM or (stop) end it with status 0. */
int snapshot__vm(struct vm *vm, const char *dir, bool stop, char *err,
		 size_t errlen);

/* A snapshot opened for restore: manifest and state read and checked. */
struct snapshot {
	char *dir;
	struct snap_manifest man;
	struct snap_state st;
	int mem_fd;
};

/* Open and check DIR: -1 with a message for anything unusable (exit
 * status 2 for the caller). */
int snapshot__open(struct snapshot *s, const char *dir, char *err,
		   size_t errlen);
void snapshot__close(struct snapshot *s);

/* vCPU state (vmm/vcpu_state.c). */
int vcpu__save(struct vcpu *v, struct vcpu_state *s, char *err,
	       size_t errlen);
int vcpu__load(struct vcpu *v, const struct vcpu_state *s, char *err,
	       size_t errlen);
/* s without MSR index (the others in their order: KVM's, which the load
 * follows). */
void vcpu__drop_msr(struct vcpu_state *s, uint32_t index);
/*
 * One vCPU's state as a jump carries it (vmm/vcpu_wire.c): the parts it
 * holds, LZ4-compressed (the 4 KiB XSAVE area is mostly zeros: ~2 KiB in
 * all). Encode returns the length, or 0 if it does not fit in cap. Decode
 * takes untrusted bytes: 0, or -1 with why (fuzzed).
 */
#define VCPU_WIRE_VERSION 1
size_t vcpu__state_encode(const struct vcpu_state *s, uint8_t *out, size_t cap);
int vcpu__state_decode(const uint8_t *in, size_t len, struct vcpu_state *s,
		       const char **why);

#endif
