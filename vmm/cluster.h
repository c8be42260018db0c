/* SPDX-License-Identifier: MIT */
/*
 * One VM over several hosts: the hosts' connections (a full mesh of fabric
 * connections, all under the VM's key), the control messages that set a
 * member host up and stop it, the DSM engine on guest RAM, I/O forwarded
 * from a member's vCPUs to the I/O host's devices, and application
 * processors started on their own host.
 *
 * Host 0 is the I/O host (`slos run`): console, devices, control socket,
 * the boot CPU. It connects to each member's `slos host` daemon, which
 * forks a VMM process for the VM (cluster__member); host 0 hands it its
 * part (CL_SPEC), the members connect to each other (CL_PEERS, CL_HELLO),
 * and once every host reports CL_MESHED host 0 loads the kernel through
 * the DSM and starts the vCPUs (CL_GO). The first stop anywhere stops
 * every host (CL_STOP); a host that goes silent stops the VM with the
 * pages it was home to named. APs start through host 0's ACPI wakeup
 * mailbox (vmm/cluster_wake.c), never by INIT/SIPI.
 */
#ifndef SLOS_CLUSTER_H
#define SLOS_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "fabric/transport.h"
#include "vmm/virtio/virtio.h"

struct vm;
struct vcpu;
struct fabric_conn;

/* Control messages (fabric types in the CTL range). */
enum {
	CL_SPEC = FABRIC_MSG_CTL_FIRST, /* host 0 -> member: its part */
	CL_READY,			/* member -> 0: mesh port */
	CL_FAIL,			/* member -> 0: why it cannot */
	CL_PEERS,			/* 0 -> member: every host's address */
	CL_HELLO,			/* member -> member: my index */
	CL_MESHED,			/* member -> 0: connected to all */
	CL_GO,				/* 0 -> member: start the vCPUs */
	CL_AP_START,			/* 0 -> member: start vCPU in long mode */
	CL_IO,				/* member -> 0: a port/MMIO access */
	CL_IO_DONE,			/* 0 -> member: its result */
	CL_EOI,				/* member -> 0: IOAPIC EOI */
	CL_STOP,			/* any -> any: the VM stops */
	CL_PREOWN,			/* 0 -> member: restored pages */
	CL_JUMP,			/* source -> destination: a vCPU */
	CL_JUMP_ANSWER,			/* destination -> source: taken? */
	CL_JUMP_REQ,			/* 0 -> a vCPU's host: jump it */
	CL_WHERE,			/* a vCPU's new host, or a failure */
	CL_TRACE,			/* member -> 0: --trace records */
	CL_LOAD,			/* any -> all: --balance, my load */
	CL_IPI,				/* any -> a vCPU's host: interrupt */
	CL_STAT_REQ,			/* 0 -> member: `slos stat` */
	CL_STAT,			/* member -> 0: its statistics */
	CL_DEVS,			/* 0 -> member: virtio devices */
	CL_IRQ,				/* a device's host -> 0: its pin */
	CL_DEV,				/* moving a device (cluster_dev.c) */
};

/*
 * The guest's jump port, on every host of a VM over hosts: a 4-byte write
 * of a host index moves the writing vCPU there (the write completes on the
 * destination); a read says where it runs: host | hosts << 8 | 1 << 16
 * (a single-host VM has no such port: all ones).
 */
#define CLUSTER_PORT_JUMP 0x50c

/* Why a vCPU jumped (trace and statistics). */
enum { JUMP_CTL, JUMP_GUEST, JUMP_BALANCER, JUMP_PLACE, JUMP_NR_REASONS };

/* Little-endian fields of the control messages. */
static inline void cl_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = v >> (8 * i);
}

static inline uint32_t cl_get32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void cl_put64(uint8_t *p, uint64_t v)
{
	cl_put32(p, v);
	cl_put32(p + 4, v >> 32);
}

static inline uint64_t cl_get64(const uint8_t *p)
{
	return cl_get32(p) | (uint64_t)cl_get32(p + 4) << 32;
}

/* CL_SPEC, as host 0 sends it. */
struct cluster_spec {
	uint32_t host, nhosts, nr_vcpus, pvm;
	uint64_t mem_size, host_mem;
	uint8_t flags; /* CLUSTER_INTERLEAVE | CLUSTER_STATS */
	uint8_t vcpu_map[256];
};
#define CLUSTER_INTERLEAVE 1 /* --mem-map interleave */
#define CLUSTER_STATS	   2 /* --stats: the member prints its own */
#define CLUSTER_TRACE	   4 /* --trace: the member sends its events */
#define CLUSTER_BALANCE	   8 /* --balance locality */
#define CLUSTER_SPEC_SIZE  (4 * 4 + 2 * 8 + 1 + 256)
void cluster__spec_put(const struct cluster_spec *s, uint8_t *out);
/* Untrusted bytes: 0, or -1 with why. */
int cluster__spec_get(struct cluster_spec *s, const uint8_t *in, size_t len,
		      const char **why);

/*
 * CL_DEVS, sent before CL_SPEC when the VM has virtio devices: every
 * device (each host routes each window to its owner), whether a virtio
 * console follows them (it is host 0's), and each device's backend (the
 * owner opens it). paths holds the strings the specs point into.
 */
#define CLUSTER_DEV_PATH 256
struct cluster_devs {
	unsigned n;
	bool vconsole;
	struct virtio_spec d[VIRTIO_MAX_DEVS];
	char paths[VIRTIO_MAX_DEVS][CLUSTER_DEV_PATH];
};
/* Bytes written into out (at most cap), or 0 if they do not fit or a
 * path is too long. */
size_t cluster__devs_put(const struct virtio_spec *d, unsigned n,
			 bool vconsole, uint8_t *out, size_t cap);
/* Untrusted bytes: 0, or -1 with why. */
int cluster__devs_get(struct cluster_devs *s, const uint8_t *in, size_t len,
		      const char **why);

/*
 * Host 0's guest clocks, sent with CL_GO so that every host's KVM VM shows
 * the guest one TSC and one kvmclock: a vCPU that jumps or runs elsewhere
 * must not see time step. Offsets are relative to host 0's host TSC; a
 * member on the same machine (same boot id) takes them as they are, one
 * elsewhere translates them through the realtime clock (as good as the
 * hosts' clock synchronization).
 */
struct cluster_time {
	uint32_t flags;
	uint64_t tsc_offset; /* CLUSTER_TIME_TSC: guest TSC - host TSC */
	uint64_t tsc_khz;    /* host 0's */
	uint64_t clock;	     /* CLUSTER_TIME_CLOCK: kvmclock, ns */
	uint64_t realtime;   /* at the same instant, ns */
	uint64_t host_tsc;   /* at the same instant (CLUSTER_TIME_HOST_TSC) */
	uint8_t boot_id[16];
};
#define CLUSTER_TIME_TSC      1
#define CLUSTER_TIME_CLOCK    2
#define CLUSTER_TIME_REALTIME 4
#define CLUSTER_TIME_HOST_TSC 8
#define CLUSTER_TIME_SIZE     (4 + 5 * 8 + 16)
void cluster__time_put(const struct cluster_time *t, uint8_t *out);
int cluster__time_get(struct cluster_time *t, const uint8_t *in, size_t len);
/* Host 0: its clocks now. A member: set them on every vCPU of its VM
 * before any runs (0, or -1 with a message). */
void cluster__time_read(struct vm *vm, struct cluster_time *t);
int cluster__time_apply(struct vm *vm, const struct cluster_time *t);

/* Silence after which a host is taken for dead: 800 ms, 3 s under PVM. */
int cluster__dead_ms(void);

/* The VM's key: 32 raw bytes, or 64 hex digits (and a newline). */
int cluster__read_key(const char *path, uint8_t key[FABRIC_KEY_SIZE], char *why,
		      size_t why_len);

/* Host 0, from vm__init once guest RAM is mapped: connect to every other
 * host (addrs[1..nhosts)), set each up, wait for the mesh; then the DSM
 * engine serves guest RAM. -1 with a message (exit status 2). */
int cluster__io_host(struct vm *vm, const char *const *addrs,
		     const uint8_t key[FABRIC_KEY_SIZE]);
/* Host 0, before its vCPUs run: its clocks for CL_GO (vCPU ioctls wait
 * while the vCPU is in KVM_RUN, maybe for long). */
void cluster__clocks(struct vm *vm);
/* Host 0, once its vCPUs run: the members start theirs. */
void cluster__go(struct vm *vm);
/* Every host, once its vCPUs run: --balance's agent (0, or -1). */
int cluster__balance(struct vm *vm);

/* A member: the VMM process for one VM, on the connection from host 0
 * (not started). Runs the VM's part here and returns the exit status. */
int cluster__member(struct fabric_conn *c, const uint8_t key[FABRIC_KEY_SIZE]);

/* Hooks of vmm/vm.c and vmm/vcpu.c. */
int cluster__dsm_start(struct vm *vm); /* fault engine on the DSM */
/* The DSM's config of this VM, whose homes are the guest's NUMA nodes in
 * the SRAT too (vm.c): one source, so the two cannot disagree. */
struct dsm_config;
void cluster__dsm_layout(const struct vm *vm, struct dsm_config *c);
int cluster__devices(struct vm *vm);   /* forwarders, wakeup mailbox */
/* --restore over hosts (host 0 holds the snapshot): every page with data
 * in it starts owned by host 0 and is read from the file at first use;
 * its home learns so (CL_PREOWN) before anything runs. */
int cluster__restore(struct vm *vm);
void cluster__stopping(struct vm *vm, int status, const char *why);
void cluster__exit(struct vm *vm);
/*
 * vCPU jumps (vmm/jump.c). Every host has every vCPU in its KVM VM; each
 * runs on one host at a time, the others' copies are parked (in the
 * VMM's interrupt trap, vmm/ipi.c: never running guest code). A jump: the
 * source's vCPU thread stops
 * at an exit with its I/O completed, sends its whole state, and waits for
 * the destination's answer; the destination's thread loads the state and
 * runs it; only a refusal (state that would not load) lets it run on at
 * the source, so the vCPU never runs twice.
 */
/* A vCPU thread's start: true once it runs here (false: the VM stopped).
 * An AP of a member waits for its start, a parked copy for its arrival. */
bool cluster__vcpu_start(struct vcpu *v);
/* From a vCPU thread whose jump_to is set, out of KVM_RUN: jump. True when
 * it runs here again (the jump failed, or it came back). */
bool cluster__depart(struct vcpu *v);
/* Ask vCPU `vcpu` to move to `host`, from any thread of any host: 0, or -1
 * with why. */
int cluster__jump(struct vm *vm, unsigned vcpu, unsigned host, int reason,
		  char *why, size_t len);
/* Host 0 (`slos ctl VM jump`): ask, and wait up to ms for the outcome;
 * 0, or -1 with why. */
int cluster__jump_wait(struct vm *vm, unsigned vcpu, unsigned host, int ms,
		       char *why, size_t len);
/* Where vCPU runs as this host knows (host 0 knows). */
unsigned cluster__where(struct vm *vm, unsigned vcpu);
void cluster__eoi(struct vm *vm, uint8_t vector);
/* The kvmclock page is each host's own (vmm/cluster_clock.c): from
 * kvm_setup, send the guest's kvmclock MSR writes to userspace (0, or
 * negative errno: the page then moves between hosts like any other);
 * and KVM_EXIT_X86_WRMSR, from the vCPU's thread. */
int cluster__clock_filter(struct vm *vm);
void cluster__wrmsr(struct vcpu *v);
/* A state about to load here (an arrival, a restore) names its kvmclock
 * page, which becomes this host's own: 0, or negative errno if it could
 * not (then loading the MSR makes KVM fault on the page at once, from the
 * loading thread). */
struct vcpu_state;
int cluster__clock_state(struct vm *vm, const struct vcpu_state *s);
/* Kernel options that make a Linux guest over hosts keep time with the
 * TSC where this host's kvmclock has no stable bit (vmm/cluster_tsc.c),
 * each followed by a space; "" elsewhere. */
const char *cluster__guest_clock(struct vm *vm);
/* A member's device raises its pin on host 0's IOAPIC (edge). */
void cluster__irq(struct vm *vm, unsigned gsi);
/* Host 0 (`slos ctl VM move-device DEV HOST`): move virtio device `dev`
 * ("blk0") and its backend to `host` while the guest runs; 0 once it
 * runs there, or -1 with why (the device then stays where it was). */
int cluster__move_device(struct vm *vm, const char *dev, unsigned host,
			 int ms, char *why, size_t len);
void cluster__print_stats(struct vm *vm, FILE *f);
/* Host 0, `slos stat`: every member's statistics, asked for now and
 * waited for up to ms. */
void cluster__stat_members(struct vm *vm, FILE *f, int ms);
/* Host 0, stopped, with --trace: wait up to ms for the members' last
 * events. */
void cluster__trace_drain(struct vm *vm, int ms);

#endif
