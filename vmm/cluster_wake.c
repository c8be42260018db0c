// SPDX-License-Identifier: MIT
/*
 * The ACPI multiprocessor wakeup mailbox of a VM over hosts (ACPI 6.4
 * 5.2.12.19; docs/jumps.md, "How APs start over hosts"): host 0's MMIO
 * page at ACPI_MP_WAKE_BASE, named by the MADT. A member forwards the
 * accesses of a boot CPU that jumped there, like every MMIO access.
 *
 * The guest writes apic_id and wakeup_vector, then command = 1, and spins
 * until command reads 0 again (Linux 6.1 acpi_wakeup_cpu). The page is not
 * RAM, so each of those accesses is an exit: the write of the command does
 * the whole wakeup at once (the AP's host is told, its thread sets the
 * 64-bit start state) and the command then reads 0. A request the VMM
 * refuses reads 0 afterwards too: the mailbox has no error field, and an
 * OS that spins on the command must not spin forever; it sees the AP not
 * arrive instead (Linux gives up on it after 10 s).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vmm/acpi.h"
#include "vmm/cluster_priv.h"
#include "vmm/mem.h"

/* A guest that keeps writing garbage must not flood the console. */
#define MAX_REFUSALS_SHOWN 16

static void refuse(struct cluster *cl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void refuse(struct cluster *cl, const char *fmt, ...)
{
	char why[160];
	va_list ap;

	if (cl->wake.refusals++ >= MAX_REFUSALS_SHOWN)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	fprintf(stderr, "slos: ACPI wakeup mailbox: %s%s\n", why,
		cl->wake.refusals == MAX_REFUSALS_SHOWN
		    ? " (further refusals not shown)"
		    : "");
}

void cluster_ap_release(struct cluster *cl, unsigned vcpu, uint64_t entry)
{
	pthread_mutex_lock(&cl->lock);
	cl->ap_entry[vcpu] = entry;
	cl->ap_go[vcpu] = true;
	pthread_cond_broadcast(&cl->cv);
	pthread_mutex_unlock(&cl->lock);
}

/* Under wake.lock. */
static void wakeup(struct cluster *cl)
{
	const struct vm_config *cfg = &cl->vm->cfg;
	const uint8_t *r = cl->wake.regs;
	uint32_t apic = cl_get32(r + ACPI_MP_WAKE_APIC_ID);
	uint64_t entry = cl_get64(r + ACPI_MP_WAKE_VECTOR);
	uint8_t msg[12];

	/* APIC id == vCPU index in slos. */
	if (apic >= cfg->nr_vcpus) {
		refuse(cl, "wakeup of APIC id %u refused: no such CPU (0-%u)",
		       apic, cfg->nr_vcpus - 1);
		return;
	}
	if (apic == 0) {
		refuse(cl, "wakeup of APIC id 0 refused: the boot CPU");
		return;
	}
	if (cl->wake.woken[apic]) {
		refuse(cl,
		       "wakeup of APIC id %u refused: already woken (one "
		       "wakeup per CPU over hosts; no CPU hotplug)",
		       apic);
		return;
	}
	/* The AP starts on identity tables of [0, 4 GiB). */
	if (entry >= MEM_4G) {
		refuse(cl,
		       "wakeup of APIC id %u refused: vector 0x%llx is not "
		       "below 4 GiB",
		       apic, (unsigned long long)entry);
		return;
	}
	cl->wake.woken[apic] = true;
	unsigned host = cfg->vcpu_map[apic];
	if (host == cl->self) {
		cluster_ap_release(cl, apic, entry);
		return;
	}
	cl_put32(msg, apic);
	cl_put64(msg + 4, entry);
	if (cluster_send(cl, host, CL_AP_START, msg, sizeof(msg)))
		fprintf(stderr,
			"slos: ACPI wakeup mailbox: cannot start vCPU %u on "
			"host %u\n",
			apic, host);
}

static void mailbox(struct io_dev *d, uint64_t off, uint8_t *data,
		    unsigned size, bool write)
{
	struct cluster *cl = d->priv;
	uint8_t *regs = cl->wake.regs;

	/* Byte by byte, so that any width and alignment the guest uses
	 * lands as it would in memory; past the three registers the page
	 * reads as zeros and ignores writes. */
	pthread_mutex_lock(&cl->wake.lock);
	for (unsigned i = 0; i < size; i++) {
		uint64_t at = off + i;

		if (at >= sizeof(cl->wake.regs)) {
			if (!write)
				data[i] = 0;
			continue;
		}
		if (write)
			regs[at] = data[i];
		else
			data[i] = regs[at];
	}
	if (write && off < 2) {
		unsigned cmd = regs[0] | regs[1] << 8;

		if (cmd == ACPI_MP_WAKE_CMD_WAKEUP)
			wakeup(cl);
		else if (cmd != ACPI_MP_WAKE_CMD_NOOP)
			refuse(cl, "command %u refused (0 noop, 1 wakeup)",
			       cmd);
		regs[0] = regs[1] = 0;
	}
	pthread_mutex_unlock(&cl->wake.lock);
}

int cluster_wake_register(struct cluster *cl)
{
	pthread_mutex_init(&cl->wake.lock, NULL);
	cl->wake_dev = (struct io_dev){.name = "acpi-mp-wakeup",
				       .base = ACPI_MP_WAKE_BASE,
				       .len = ACPI_MP_WAKE_SIZE,
				       .access = mailbox,
				       .priv = cl};
	return io__register(&cl->vm->mmio, &cl->wake_dev);
}
