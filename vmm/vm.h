/* SPDX-License-Identifier: MIT */
/*
 * One VM on one host: the KVM VM, its vCPU threads and their exit loop,
 * guest RAM with its fault engine, and the devices of the I/O host.
 * Distribution (later issues) plugs in through the fault engine's page
 * source and through hooks here, never through the exit loop's body.
 */
#ifndef SLOS_VM_H
#define SLOS_VM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "vmm/fault.h"
#include "vmm/io.h"
#include "vmm/mem.h"
#include "vmm/profile.h"
#include "vmm/pvm.h"
#include "vmm/virtio/virtio.h"

/* Exit statuses of `slos run` (a test-exit device picks its own). */
#define VM_EXIT_OK	0 /* power-off, reboot, `ctl stop` */
#define VM_EXIT_CRASH	1 /* triple fault, instruction nothing completes */
#define VM_EXIT_USAGE	2 /* bad configuration or input */

struct vm;
struct cluster;

#define VM_MAX_VCPUS 256

#define VCPU_HIST 24 /* log2 buckets in us: <2, <4, ... */

struct vcpu_stats {
	uint64_t exits, io, mmio, intr, pvm_fixups;
	uint64_t jumps, jump_ns; /* departures from this host, their time */
	uint64_t jump_hist[VCPU_HIST]; /* log2 buckets of it in us */
};

struct vcpu {
	struct vm *vm;
	int id, fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
	/* Over hosts (vmm/jump.c): it runs on this host (else its copy here
	 * is parked); it has started here (host 0's APs: see their exits);
	 * the jump asked of it until it is
	 * decided (-1: none; host | JUMP_* << 16, one word so the two go
	 * together). */
	atomic_bool here, live;
	/* Its thread is in KVM_RUN running the guest (vm__hold waits for
	 * it to leave; a parked copy's trap runs do not count). */
	atomic_bool in_guest;
	uint32_t tid; /* its thread (the fault engine names faulters) */
	atomic_int jump_to;
	struct vcpu_stats st;
	struct profile prof;
	struct pvm_accel accel; /* PVM only: string-instruction completion */
	struct pvm_sys_vcpu pvm_sys; /* PVM only: system call breakpoints */
};

struct vm_config {
	const char *name;
	const char *kernel, *initrd, *cmdline;
	unsigned nr_vcpus;
	uint64_t mem_size;
	bool stats;
	const char *profile;	 /* RIP samples file, or NULL */
	const char *trace;	 /* --trace: trace-event JSON file, or NULL */
	bool balance;		 /* --balance locality */
	unsigned profile_us;	 /* sampling period */
	int pvm; /* -1 detect, 0 off, 1 on */
	bool mem_set, vcpus_set; /* given on the command line */
	const char *restore;	 /* snapshot directory to restore */
	bool prefetch;		 /* restore: prefetch the recorded pages */
	const char *snapshot_when, *snapshot_to; /* console regex, dir */
	uint64_t t0_ns;		 /* process start (vm__now_ns) */
	const char *fabric;	 /* --fabric: "tcp" (default) or "rdma" */
	/* Several hosts (vmm/cluster.h). host: this one's index (0: the
	 * I/O host, `slos run`); nhosts 1: a single-host VM. */
	const char *hosts;	 /* --hosts A:P,A:P,... (the other hosts) */
	const char *key_file;	 /* --key: the VM's 32-byte fabric key */
	unsigned local_hosts;	 /* --local-hosts N (0: none) */
	unsigned host, nhosts;
	bool interleave;	 /* --mem-map interleave */
	bool no_numa;		 /* --numa off: no SRAT/SLIT (docs/acpi.md) */
	uint64_t host_mem;	 /* --host-mem: per-host page budget, 0 none */
	uint8_t vcpu_map[VM_MAX_VCPUS]; /* --vcpu-map: host of each vCPU */
	/* --spread-when REGEX: every vCPU starts on host 0 and goes to its
	 * place[] host (--vcpu-map) when a console line matches. */
	const char *spread_when;
	uint8_t place[VM_MAX_VCPUS];
	const char *const *host_addrs; /* host 0: [1..nhosts) to connect */
	const uint8_t *key;	       /* host 0: the VM's fabric key */
	struct cluster *member;	       /* a member host: its cluster */
	/* virtio devices (--disk, --net, --rng), in window order; with
	 * vconsole (--console virtio) a console is the last one. */
	struct virtio_spec vdevs[VIRTIO_MAX_DEVS];
	unsigned nr_vdevs;
	bool vconsole;
};

struct vm {
	struct vm_config cfg;
	char id[17];
	int kvm_fd, vm_fd;
	int run_size;
	bool pvm;
	struct mem mem;
	struct fault_engine fault;
	struct kvm_cpuid2 *cpuid;
	struct vcpu *vcpus;
	struct io_bus pio, mmio;
	struct uart *uart;
	struct ioapic *ioapic;
	struct virtio_dev *vdev[VIRTIO_MAX_DEVS]; /* this host's, or NULL */
	struct virtio_dev *vcon;		  /* --console virtio */
	atomic_bool stopping;
	int exit_status;
	int stop_efd; /* readable once the VM has stopped */
	uint64_t start_ns;
	pthread_mutex_t lock;
	struct pvm_sys_vm pvm_sys;
	/* Pausing (snapshots): vCPUs park in vcpu__park while pause_req. */
	atomic_bool pause_req;
	unsigned paused;
	pthread_cond_t pause_cv;
	/* Holding (vm__hold): the vCPUs running here stay out of guest mode
	 * while one thread changes a LAPIC's hands. irq_lock serializes
	 * every interrupt the VMM injects with such hand-overs. */
	pthread_mutex_t hold_mu, irq_lock;
	atomic_bool hold_req;
	pthread_cond_t hold_cv;
	struct restore *restore; /* restoring from a snapshot, or NULL */
	struct cluster *cl;	 /* several hosts, or NULL */
	/* The MSRs a vCPU state holds: KVM's list, less those this vCPU
	 * model lacks (probed once, vmm/vcpu_state.c). */
	uint32_t *msr_idx;
	unsigned nr_msr_idx;
};

/* Create the VM, load the kernel, ready every vCPU; -1 with a message on
 * stderr (exit status VM_EXIT_USAGE for the caller). */
int vm__init(struct vm *vm, const struct vm_config *cfg);
int vm__start(struct vm *vm);
/* First stop wins: its status is the process's exit status. */
void vm__stop(struct vm *vm, int status, const char *why);
/* Join every thread; returns the exit status. */
int vm__wait(struct vm *vm);
void vm__exit(struct vm *vm);
/* Map [gpa, gpa + len) of guest memory to hva (KVM_MEM_READONLY if ro):
 * 0, or negative errno. */
int vm__memslot(struct vm *vm, unsigned slot, uint64_t gpa, uint64_t len,
		void *hva, bool ro);
/* --stats (at the end) and `slos stat` (live): counts and histograms. */
void vm__print_stats(struct vm *vm, FILE *f);
/*
 * Stop every vCPU at an instruction boundary with its pending I/O
 * completed, so its state can be read (snapshots); -1 if the VM stopped
 * meanwhile. Only the main thread pauses and resumes.
 */
int vm__pause(struct vm *vm);
/* Ask every vCPU to park at its next exit, from any thread (a vCPU's own
 * exit handler too): a vm__pause that follows then finds the VM where the
 * request was made, not where the main thread got to it. */
void vm__pause_soon(struct vm *vm);
void vm__resume(struct vm *vm);
/*
 * Keep every other vCPU that runs here (v->here) out of guest mode until
 * vm__release, from a vCPU thread (self) that is out of KVM_RUN: then
 * nothing but the VMM (under irq_lock) writes a LAPIC of this VM, so one
 * can be read and written back without losing an IPI. KVM_GET/SET_LAPIC
 * cannot merge an IRR atomically. Holders take turns.
 */
void vm__hold(struct vm *vm, struct vcpu *self);
void vm__release(struct vm *vm);

/* vCPU side (vmm/vcpu.c). */
int vcpu__init(struct vm *vm, struct vcpu *v, int id, uint64_t entry);
void *vcpu__thread(void *arg);
void vcpu__dump(struct vcpu *v, const char *why);
void vcpu__kick(struct vcpu *v);
void vcpu__park(struct vcpu *v);
/* Out of KVM_RUN on a kick: wait while the VM is held (vm__hold). */
void vcpu__held(struct vcpu *v);
/* The vCPU whose thread this is (NULL on other threads). */
struct vcpu *vcpu__current(void);
/* One MSR through KVM_GET_MSRS (vmm/vcpu_state.c); 0 or -1. */
int vcpu__get_msr(struct vcpu *v, uint32_t index, uint64_t *val);
/* Guest-virtual memory through the vCPU's page tables (KVM_TRANSLATE):
 * a host pointer for len bytes within one page (NULL if not RAM, unmapped,
 * or read-only for wr), and a copy across pages that returns how many
 * bytes it could move. */
uint8_t *vcpu__gva_ptr(struct vcpu *v, uint64_t va, size_t len, bool wr);
size_t vcpu__gva_copy(struct vcpu *v, uint64_t va, void *buf, size_t len,
		      bool wr);

uint64_t vm__now_ns(void);

#endif
