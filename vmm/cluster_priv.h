/* SPDX-License-Identifier: MIT */
/*
 * What the cluster's files share with each other and nobody else: the
 * cluster itself, sending to a host, stopping the VM from a handler, and
 * the vCPU jump engine's frame handler (vmm/jump.c).
 */
#ifndef SLOS_CLUSTER_PRIV_H
#define SLOS_CLUSTER_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "balancer/balancer.h"
#include "vmm/cluster.h"
#include "vmm/dsm.h"
#include "vmm/io.h"
#include "vmm/vm.h"

#define IO_SLOTS VM_MAX_VCPUS
#define SETUP_MS 30000 /* a member's KVM and mesh setup, under load */
#define ADDR_LEN 64

struct peer {
	struct cluster *cl;
	int idx; /* -1 until a mesh peer said CL_HELLO */
};

struct io_slot {
	bool done;
	uint8_t data[8];
};

/* A vCPU's DSM faults on this host (vmm/cluster_faults.c, ft_lock). */
#define FAULT_HIST 24 /* log2 buckets of the wait in us: <2, <4, ... */
struct vcpu_faults {
	bool waiting, write; /* a fault of it is being served */
	uint64_t gpa, t0;
	uint64_t faults, by_home[DSM_MAX_HOSTS], hist[FAULT_HIST];
};

/* A vCPU's jump, on both ends (under cl->lock). */
struct jump_slot {
	/* Destination: the state that arrived, not yet loaded. */
	uint8_t *in;
	size_t in_len;
	unsigned in_from;
	uint32_t in_seq;
	uint8_t in_reason;
	uint64_t in_t0, in_tag;	  /* the source's pause time and boot tag */
	uint32_t in_gap, in_came; /* the balancer's back-off it brings */
	uint32_t in_gen;	  /* its generation at the source */
	/* Source: the jump waiting for the destination's word (to: its
	 * destination, -1 when none is under way). */
	uint32_t seq;
	int to;
	int answer; /* 0 none yet, 1 taken, -1 refused */
	char why[160];
	/* Host 0: every host's reports about this vCPU, for `slos ctl`. */
	uint32_t reports;
	bool last_ok;
	char last_why[160];
};

struct cluster {
	struct vm *vm;
	unsigned self, n;
	uint64_t vm_id;
	uint8_t key[FABRIC_KEY_SIZE];
	struct fabric_conn *conn[DSM_MAX_HOSTS];
	struct peer peer[DSM_MAX_HOSTS];
	struct peer pending[DSM_MAX_HOSTS]; /* accepted, before CL_HELLO */
	struct fabric_conn *accepted[DSM_MAX_HOSTS];
	char addr[DSM_MAX_HOSTS][ADDR_LEN];
	struct fabric_listener *mesh;
	/* Sends hold it to read; teardown takes a connection out under it,
	 * so no handler posts to a connection being freed. */
	pthread_rwlock_t conn_lock;
	struct dsm dsm;
	struct dsm_mem dm;
	struct fault_source src;
	bool dsm_on;
	/* vmm/cluster_clock.c: kvmclock MSR writes seen, the last page. */
	atomic_uint_fast64_t clock_msrs, clock_page;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	unsigned ready, meshed, hello, preowned; /* bitmasks of hosts */
	bool got_spec, got_peers, go;
	struct cluster_spec spec;
	struct cluster_time time; /* CL_GO: host 0's clocks */
	char fail_why[256];
	uint16_t port[DSM_MAX_HOSTS];
	/* An AP's start (cl->lock): released, at this 64-bit entry. */
	bool ap_go[VM_MAX_VCPUS];
	uint64_t ap_entry[VM_MAX_VCPUS];
	/* Host 0: the ACPI wakeup mailbox (vmm/cluster_wake.c). */
	struct {
		pthread_mutex_t lock;
		uint8_t regs[16]; /* command, reserved, apic_id, vector */
		bool woken[VM_MAX_VCPUS];
		unsigned refusals;
	} wake;
	struct io_slot io[IO_SLOTS];
	atomic_uint next_slot;
	struct io_fwd *iofwd; /* host 0: forwarded accesses (cluster_io.c) */
	atomic_bool stopping;
	bool stop_from_peer;
	struct io_dev fwd_pio[2], fwd_mmio[2], wake_dev, jump_dev;
	/* virtio devices (vmm/cluster_dev.c): every host routes each
	 * window to the host that owns the device. */
	struct cluster_devs devs;
	bool got_devs;
	_Atomic uint8_t dev_owner[VIRTIO_MAX_DEVS];
	unsigned nr_dev_windows;
	struct io_dev vrouter;
	/* Moving one: a window's local accesses take dev_rw for reading,
	 * the move for writing; the target's device waits in
	 * dev_pending; host 0 follows the move in mv (cl->lock). */
	pthread_rwlock_t dev_rw[VIRTIO_MAX_DEVS];
	struct virtio_dev *dev_pending[VIRTIO_MAX_DEVS];
	struct {
		bool active, prepped, ok, done, late;
		unsigned idx, to;
		char why[160];
	} mv;
	atomic_uint_fast64_t fwd_n, fwd_ns; /* accesses this host forwarded */
	/* Where each vCPU runs, as this host last heard (host 0 hears of
	 * every jump). */
	_Atomic uint8_t where[VM_MAX_VCPUS];
	uint32_t gen[VM_MAX_VCPUS]; /* where[]'s generation (cl->lock) */
	struct jump_slot jump[VM_MAX_VCPUS];
	uint32_t jump_seq;
	/* Arrivals here and their latency, pause at the source to running
	 * here (timed only from a source on this machine: same boot id). */
	/* Faults by vCPU; the DSM's own ops on guest memory, wrapped. */
	pthread_mutex_t ft_lock;
	unsigned nwaiting;
	struct vcpu_faults vf[VM_MAX_VCPUS];
	struct dsm_ops mem_ops;
	uint64_t remote_n, remote_ns; /* this host's remote faults, waits */
	/* --balance locality (vmm/cluster_balance.c; ft_lock). */
	bool bal_on;
	struct bal_cfg bal;
	struct bal_vcpu bv[VM_MAX_VCPUS];
	struct bal_load loads[DSM_MAX_HOSTS];
	pthread_t bal_thread;
	uint64_t boot_tag;
	unsigned trace_bad;  /* host 0: bad CL_TRACE frames seen */
	unsigned trace_done; /* host 0: members whose last events came */
	uint64_t jumps_in;
	unsigned nr_lat;
	uint32_t lat_us[4096];
	/* Interrupts for vCPUs elsewhere (vmm/ipi.c; under vm->irq_lock):
	 * each vCPU runs here, is away, or is held between hosts, and what
	 * comes for a held one waits in pend (vectors) and nmi. */
	uint8_t *trap;
	bool trap_ro; /* its code and tables in a read-only slot */
	uint8_t ipi_state[VM_MAX_VCPUS];
	uint64_t ipi_pend[VM_MAX_VCPUS][4];
	bool ipi_nmi[VM_MAX_VCPUS];
	uint64_t ipi_caught, ipi_sent, ipi_in, ipi_delivered, ipi_queued,
	    ipi_lost;
	/* Host 0, `slos stat`: the request's number, each member's answer
	 * (cl->lock). */
	uint32_t stat_seq;
	char *stat_txt[DSM_MAX_HOSTS];
};

enum { IPI_AWAY, IPI_HERE, IPI_HELD };

/* ms from now on CLOCK_MONOTONIC (cl->cv's clock), for timed waits. */
void cluster_deadline(struct timespec *t, int ms);
int cluster_send(struct cluster *cl, unsigned to, uint16_t type, const void *p,
		 size_t len);
void cluster_stop(struct cluster *cl, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* vmm/cluster_faults.c: a vCPU thread's fault begins (tid: the thread),
 * any fault on gpa ends; --stats. */
void cluster_fault_begin(struct cluster *cl, uint64_t gpa, bool write,
			 uint32_t tid);
void cluster_fault_end(struct cluster *cl, uint64_t gpa);
void cluster_fault_stats(struct cluster *cl, FILE *f);
/* vmm/cluster_balance.c: the agent; a CL_LOAD frame; ms since boot. */
int cluster_balance_start(struct cluster *cl);
void cluster_balance_stop(struct cluster *cl);
void cluster_load_frame(struct cluster *cl, unsigned from, const uint8_t *p,
			size_t len);
uint64_t cluster_ms(void);
/* This machine's boot id (vmm/cluster_time.c). */
void cluster_boot_id(uint8_t out[16]);
/* --stats: arrivals and their latency (vmm/jump.c). */
void cluster_jump_stats(struct cluster *cl, FILE *f);

/* An AP waits for its start; false if the VM stopped first. */
bool cluster__ap_wait(struct vcpu *v);
/* vmm/cluster_wake.c: host 0's wakeup mailbox device; an AP of this host
 * released at entry (from the mailbox or CL_AP_START). */
int cluster_wake_register(struct cluster *cl);
/* Do a port or MMIO access on host `to` (a vCPU's, or the forwarder's,
 * thread: it waits for the answer). */
void cluster_forward(struct cluster *cl, unsigned to, bool mmio,
		     uint64_t addr, uint8_t *data, unsigned size, bool write);
/* vmm/cluster_dev.c: virtio windows over hosts. */
int cluster_dev_register(struct cluster *cl, struct vm *vm);
int cluster_devs_send(struct cluster *cl, unsigned to);
void cluster_devs_frame(struct cluster *cl, int from, const uint8_t *p,
			size_t len);
void cluster_irq_frame(struct cluster *cl, int from, const uint8_t *p,
		       size_t len);
int cluster_dev_config(struct cluster *cl, struct vm_config *cfg);
/* vmm/cluster_io.c: each host's thread for forwarded accesses. */
int cluster_io_start(struct cluster *cl);
/* A checked CL_IO from host `from`; false if the queue is full. */
bool cluster_io_queue(struct cluster *cl, unsigned from, const uint8_t *msg);
void cluster_io_stop(struct cluster *cl);
/* Give device idx to host `to` (on the forwarder's thread: it waits for
 * the device's I/O, which may wait for pages). */
bool cluster_io_queue_move(struct cluster *cl, unsigned idx, unsigned to);
void cluster_dev_move_out(struct cluster *cl, unsigned idx, unsigned to);
/* The new owner sets the state up on the same thread: KVM_IOEVENTFD waits
 * for SRCU, which a vCPU faulting on a page holds, and the page may come
 * on the connection that brought the state. */
bool cluster_io_queue_take(struct cluster *cl, unsigned idx,
			   const uint8_t *state);
void cluster_dev_take(struct cluster *cl, unsigned idx, const uint8_t *state);
void cluster_dev_exit(struct cluster *cl);
void cluster_dev_frame(struct cluster *cl, int from, const uint8_t *p,
		       size_t len);
void cluster_ap_release(struct cluster *cl, unsigned vcpu, uint64_t entry);

/* vmm/jump.c: CL_JUMP, CL_JUMP_ANSWER, CL_JUMP_REQ and CL_WHERE. */
void jump_frame(struct cluster *cl, unsigned from, uint16_t type,
		const uint8_t *p, size_t len);
/* For a stop message: the vCPUs on their way to host, as "vCPU 1, ...". */
size_t cluster_in_flight(struct cluster *cl, unsigned host, char *out,
			 size_t len);
/* The guest's jump port (CLUSTER_PORT_JUMP), on every host. */
void jump_port(struct io_dev *d, uint64_t off, uint8_t *data, unsigned size,
	       bool write);

/*
 * vmm/ipi.c. A parked copy sits in the VMM's trap (GPA TRAP_GPA, every
 * host's own memslot) and reports the interrupts its LAPIC takes, which
 * go to the vCPU's host (CL_IPI) and are injected there.
 */
#define TRAP_GPA 0xfe000000ULL
#define TRAP_SIZE 0x40000ULL
struct vcpu_state;
/* From vm__init, before cl->vm is set on a member. */
int ipi_setup(struct vm *vm);
void ipi_frame(struct cluster *cl, unsigned from, const uint8_t *p,
	       size_t len);
/* The copy's thread: into the trap (fresh: its LAPIC is set up too, not
 * already by ipi_handover_out) until the vCPU's state arrives (true) or
 * the VM stops. */
bool ipi_park(struct vcpu *v, bool fresh);
/* A jump's state for id is here (CL_JUMP taken): hold what comes. */
void ipi_arriving(struct cluster *cl, unsigned id);
/* An arrival refused before ipi_handover_in (its state did not decode,
 * or cannot load here): what came for it meanwhile goes back to `from`,
 * as when that load fails without reading the copy. */
void ipi_refused(struct vcpu *v, unsigned from);
/* Load an arriving state, with what the copy and pend hold for it merged
 * in; on failure what they held goes back to host `from`. */
int ipi_handover_in(struct vcpu *v, struct vcpu_state *s, bool in_trap,
		    unsigned from, char *why, size_t len);
/* Save a departing vCPU and leave its copy's LAPIC empty. */
int ipi_handover_out(struct vcpu *v, struct vcpu_state *s, char *why,
		     size_t len);
/* Its destination took it (where[] says so): what waited goes there. */
void ipi_departed(struct cluster *cl, unsigned id, unsigned to);
/* Its jump failed: load s again, with what came meanwhile. */
int ipi_stay(struct vcpu *v, struct vcpu_state *s, char *why, size_t len);
void ipi_stats(struct cluster *cl, FILE *f);

/* vmm/cluster_clock.c: --stats' kvmclock line. */
void cluster_clock_stats(struct cluster *cl, FILE *f);

#endif
