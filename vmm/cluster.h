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
 * pages it was home to named.
 */
#ifndef SLOS_CLUSTER_H
#define SLOS_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "fabric/transport.h"

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
	CL_AP_START,			/* 0 -> member: start vCPU at SIPI */
	CL_IO,				/* member -> 0: a port/MMIO access */
	CL_IO_DONE,			/* 0 -> member: its result */
	CL_EOI,				/* member -> 0: IOAPIC EOI */
	CL_STOP,			/* any -> any: the VM stops */
	CL_PREOWN,			/* 0 -> member: restored pages */
};

/* Port the test OS writes when it starts an AP: apic | vector << 16. */
#define CLUSTER_PORT_AP_START 0x508

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
#define CLUSTER_SPEC_SIZE  (4 * 4 + 2 * 8 + 1 + 256)
void cluster__spec_put(const struct cluster_spec *s, uint8_t *out);
/* Untrusted bytes: 0, or -1 with why. */
int cluster__spec_get(struct cluster_spec *s, const uint8_t *in, size_t len,
		      const char **why);

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
/* Host 0, once its vCPUs run: the members start theirs. */
void cluster__go(struct vm *vm);

/* A member: the VMM process for one VM, on the connection from host 0
 * (not started). Runs the VM's part here and returns the exit status. */
int cluster__member(struct fabric_conn *c, const uint8_t key[FABRIC_KEY_SIZE]);

/* Hooks of vmm/vm.c and vmm/vcpu.c. */
int cluster__dsm_start(struct vm *vm); /* fault engine on the DSM */
int cluster__devices(struct vm *vm);   /* forwarders, AP-start port */
/* --restore over hosts (host 0 holds the snapshot): every page with data
 * in it starts owned by host 0 and is read from the file at first use;
 * its home learns so (CL_PREOWN) before anything runs. */
int cluster__restore(struct vm *vm);
void cluster__stopping(struct vm *vm, int status, const char *why);
void cluster__exit(struct vm *vm);
/* A member's AP waits for its start; false if the VM stopped first. */
bool cluster__ap_wait(struct vcpu *v);
void cluster__eoi(struct vm *vm, uint8_t vector);
void cluster__print_stats(struct vm *vm);

#endif
