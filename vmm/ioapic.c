// SPDX-License-Identifier: MIT
#include <linux/kvm.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/ioapic.h"

#define REGSEL 0x00
#define WIN    0x10
#define EOIREG 0x40

#define RTE_VECTOR(e)	((e) & 0xff)
#define RTE_DELMODE(e)	(((e) >> 8) & 7)
#define RTE_DESTMODE(e) (((e) >> 11) & 1)
#define RTE_REMOTE_IRR	(1ULL << 14)
#define RTE_LEVEL	(1ULL << 15)
#define RTE_MASKED	(1ULL << 16)
#define RTE_DEST(e)	((e) >> 56)
/* Bits the guest may write: all but delivery status and remote IRR. */
#define RTE_RW_MASK	(~((1ULL << 12) | RTE_REMOTE_IRR))

struct ioapic {
	struct io_dev io;
	pthread_mutex_t lock;
	int vm_fd;
	pthread_mutex_t *irq_lock; /* the VM's, over hosts (vm.h) */
	uint32_t id, sel;
	uint64_t rte[IOAPIC_PINS];
	bool line[IOAPIC_PINS];
	uint64_t delivered;
};

static void rte_msi(uint64_t e, uint32_t *addr, uint32_t *data)
{
	*addr = 0xfee00000u | (uint32_t)(RTE_DEST(e) << 12) |
		(RTE_DESTMODE(e) << 2);
	*data = RTE_VECTOR(e) | (RTE_DELMODE(e) << 8) |
		((e & RTE_LEVEL) ? (1u << 15) | (1u << 14) : 0);
}

/* Mirror every pin into KVM's routing so it knows the level vectors. */
static void sync_routes(struct ioapic *io)
{
	union {
		struct kvm_irq_routing r;
		uint8_t b[sizeof(struct kvm_irq_routing) +
			  IOAPIC_PINS * sizeof(struct kvm_irq_routing_entry)];
	} t;
	unsigned n = 0;

	memset(&t, 0, sizeof(t));
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
		uint64_t e = io->rte[pin];
		if (e & RTE_MASKED)
			continue;
		struct kvm_irq_routing_entry *re = &t.r.entries[n++];
		re->gsi = pin;
		re->type = KVM_IRQ_ROUTING_MSI;
		rte_msi(e, &re->u.msi.address_lo, &re->u.msi.data);
	}
	t.r.nr = n;
	if (ioctl(io->vm_fd, KVM_SET_GSI_ROUTING, &t) < 0)
		perror("ioapic: KVM_SET_GSI_ROUTING");
}

static void deliver(struct ioapic *io, unsigned pin)
{
	uint64_t e = io->rte[pin];
	struct kvm_msi msi = { 0 };

	rte_msi(e, &msi.address_lo, &msi.data);
	if (e & RTE_LEVEL)
		io->rte[pin] |= RTE_REMOTE_IRR;
	io->delivered++;
	if (io->irq_lock)
		pthread_mutex_lock(io->irq_lock);
	if (ioctl(io->vm_fd, KVM_SIGNAL_MSI, &msi) < 0)
		perror("ioapic: KVM_SIGNAL_MSI");
	if (io->irq_lock)
		pthread_mutex_unlock(io->irq_lock);
}

static void service(struct ioapic *io, unsigned pin)
{
	uint64_t e = io->rte[pin];

	if (io->line[pin] && !(e & RTE_MASKED) && (e & RTE_LEVEL) &&
	    !(e & RTE_REMOTE_IRR))
		deliver(io, pin);
}

static uint32_t reg_read(struct ioapic *io)
{
	unsigned r = io->sel;

	if (r == 0)
		return io->id << 24;
	if (r == 1) /* version 0x11, 24 entries */
		return 0x11 | ((IOAPIC_PINS - 1) << 16);
	if (r == 2)
		return io->id << 24;
	if (r >= 0x10 && r < 0x10 + 2 * IOAPIC_PINS) {
		uint64_t e = io->rte[(r - 0x10) / 2];
		return (r & 1) ? e >> 32 : (uint32_t)e;
	}
	return 0;
}

static void reg_write(struct ioapic *io, uint32_t v)
{
	unsigned r = io->sel;

	if (r == 0) {
		io->id = (v >> 24) & 0xf;
		return;
	}
	if (r < 0x10 || r >= 0x10 + 2 * IOAPIC_PINS)
		return;
	unsigned pin = (r - 0x10) / 2;
	uint64_t e = io->rte[pin], keep = e & ~RTE_RW_MASK;
	if (r & 1)
		e = ((uint64_t)v << 32) | (uint32_t)e;
	else
		e = (e & 0xffffffff00000000ULL) | v;
	io->rte[pin] = (e & RTE_RW_MASK) | keep;
	if (!(io->rte[pin] & RTE_LEVEL))
		io->rte[pin] &= ~RTE_REMOTE_IRR;
	sync_routes(io);
	service(io, pin);
}

static void ioapic_access(struct io_dev *d, uint64_t off, uint8_t *data,
			  unsigned size, bool write)
{
	struct ioapic *io = d->priv;
	uint32_t v = 0;

	memcpy(&v, data, size < 4 ? size : 4);
	pthread_mutex_lock(&io->lock);
	if (off == REGSEL) {
		if (write)
			io->sel = v & 0xff;
		else
			v = io->sel;
	} else if (off == WIN) {
		if (write)
			reg_write(io, v);
		else
			v = reg_read(io);
	} else if (off == EOIREG && write) {
		pthread_mutex_unlock(&io->lock);
		ioapic__eoi(io, v & 0xff);
		return;
	}
	pthread_mutex_unlock(&io->lock);
	if (!write) {
		memset(data, 0, size);
		memcpy(data, &v, size < 4 ? size : 4);
	}
}

struct ioapic *ioapic__new(int vm_fd, uint64_t base, unsigned id)
{
	struct ioapic *io = calloc(1, sizeof(*io));

	if (!io)
		return NULL;
	pthread_mutex_init(&io->lock, NULL);
	io->vm_fd = vm_fd;
	io->id = id;
	for (unsigned i = 0; i < IOAPIC_PINS; i++)
		io->rte[i] = RTE_MASKED;
	io->io = (struct io_dev){ .name = "ioapic", .base = base,
				  .len = 0x1000, .access = ioapic_access,
				  .priv = io };
	return io;
}

void ioapic__free(struct ioapic *io)
{
	if (!io)
		return;
	pthread_mutex_destroy(&io->lock);
	free(io);
}

struct io_dev *ioapic__io(struct ioapic *io)
{
	return &io->io;
}

void ioapic__set_irq(struct ioapic *io, unsigned pin, bool level)
{
	if (pin >= IOAPIC_PINS)
		return;
	pthread_mutex_lock(&io->lock);
	bool rising = level && !io->line[pin];
	io->line[pin] = level;
	uint64_t e = io->rte[pin];
	if (e & RTE_LEVEL)
		service(io, pin);
	else if (rising && !(e & RTE_MASKED))
		deliver(io, pin);
	pthread_mutex_unlock(&io->lock);
}

void ioapic__pulse(struct ioapic *io, unsigned pin)
{
	if (pin >= IOAPIC_PINS)
		return;
	pthread_mutex_lock(&io->lock);
	uint64_t e = io->rte[pin];
	if (!(e & RTE_LEVEL) && !(e & RTE_MASKED))
		deliver(io, pin);
	pthread_mutex_unlock(&io->lock);
}

void ioapic__eoi(struct ioapic *io, uint8_t vector)
{
	pthread_mutex_lock(&io->lock);
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
		uint64_t e = io->rte[pin];
		if (RTE_VECTOR(e) != vector || !(e & RTE_REMOTE_IRR))
			continue;
		io->rte[pin] &= ~RTE_REMOTE_IRR;
		service(io, pin);
	}
	pthread_mutex_unlock(&io->lock);
}

uint64_t ioapic__delivered(struct ioapic *io)
{
	return io->delivered;
}

void ioapic__save(struct ioapic *io, struct ioapic_state *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_lock(&io->lock);
	s->id = io->id;
	s->sel = io->sel;
	memcpy(s->rte, io->rte, sizeof(s->rte));
	for (unsigned i = 0; i < IOAPIC_PINS; i++)
		s->line[i] = io->line[i];
	pthread_mutex_unlock(&io->lock);
}

int ioapic__load(struct ioapic *io, const struct ioapic_state *s)
{
	if (s->id > 0xf || s->sel > 0xff)
		return -1;
	for (unsigned i = 0; i < IOAPIC_PINS; i++)
		if (s->line[i] > 1)
			return -1;
	pthread_mutex_lock(&io->lock);
	io->id = s->id;
	io->sel = s->sel;
	for (unsigned i = 0; i < IOAPIC_PINS; i++) {
		/* Delivery status is never set here; keep it clear. */
		io->rte[i] = s->rte[i] & ~(1ULL << 12);
		io->line[i] = s->line[i];
	}
	sync_routes(io);
	pthread_mutex_unlock(&io->lock);
	return 0;
}

void ioapic__set_irq_lock(struct ioapic *io, pthread_mutex_t *lock)
{
	io->irq_lock = lock;
}
