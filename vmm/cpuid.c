// SPDX-License-Identifier: MIT
#include <string.h>

#include "vmm/cpuid.h"

#define KVM_SIG_LEAF 0x40000000u
#define TIMING_LEAF  0x40000010u
#define TOPO_LEAF    0xbu
#define TOPO2_LEAF   0x1fu

struct kvm_cpuid_entry2 *cpuid__find(struct kvm_cpuid2 *c, uint32_t fn,
				     uint32_t index)
{
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function == fn &&
		    (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) ||
		     e->index == index))
			return e;
	}
	return NULL;
}

/* The entry (fn, index), added zeroed if KVM did not list it. */
static struct kvm_cpuid_entry2 *put(struct kvm_cpuid2 *c, uint32_t fn,
				    uint32_t index, bool indexed)
{
	struct kvm_cpuid_entry2 *e = cpuid__find(c, fn, index);

	if (e)
		return e;
	if (c->nent >= CPUID_MAX_ENT)
		return NULL;
	e = &c->entries[c->nent++];
	memset(e, 0, sizeof(*e));
	e->function = fn;
	e->index = index;
	e->flags = indexed ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
	return e;
}

static unsigned order(unsigned n)
{
	unsigned s = 0;

	while ((1u << s) < n)
		s++;
	return s;
}

/* Each cache leaf fn (4, or AMD's 0x8000001d) lists: its "threads
 * sharing it - 1" (EAX[25:14]) at most a package's, and for leaf 4 its
 * "cores in the package - 1" (EAX[31:26]). */
static void caches(struct kvm_cpuid2 *c, uint32_t fn, unsigned cores,
		   unsigned shift)
{
	uint32_t max = (1u << shift) - 1;
	struct kvm_cpuid_entry2 *e;

	for (uint32_t i = 0;
	     (e = cpuid__find(c, fn, i)) && e->index == i && (e->eax & 0x1f);
	     i++) {
		if (fn == 4)
			e->eax = (e->eax & 0x03ffffffu) |
				 ((cores > 64 ? 63 : cores - 1) << 26);
		if (((e->eax >> 14) & 0xfff) > max)
			e->eax = (e->eax & ~(0xfffu << 14)) | max << 14;
	}
}

/*
 * Packages of `cores` cores, one thread each: the extended topology leaf
 * (0xb, and 0x1f where KVM lists it) with levels SMT and core, the same
 * counts in the older places Linux reads, and no cache shared wider than
 * a package.
 */
static int topology(struct kvm_cpuid2 *c, unsigned cores, uint32_t max_basic)
{
	unsigned shift = order(cores);
	uint32_t leaves[2] = {TOPO_LEAF, TOPO2_LEAF};
	struct kvm_cpuid_entry2 *e;

	for (unsigned l = 0; l < 2; l++) {
		if (leaves[l] > max_basic ||
		    (l == 1 && !cpuid__find(c, TOPO2_LEAF, 0)))
			continue;
		struct kvm_cpuid_entry2 *smt = put(c, leaves[l], 0, true),
					*core = put(c, leaves[l], 1, true),
					*end = put(c, leaves[l], 2, true);
		if (!smt || !core || !end)
			return -1;
		smt->eax = 0;
		smt->ebx = 1;
		smt->ecx = (1u << 8) | 0;
		core->eax = shift;
		core->ebx = cores;
		core->ecx = (2u << 8) | 1;
		end->eax = end->ebx = 0;
		end->ecx = 2;
		for (uint32_t i = 3;
		     (e = cpuid__find(c, leaves[l], i)) && e->index == i; i++)
			e->eax = e->ebx = 0, e->ecx = i;
	}
	if ((e = cpuid__find(c, 1, 0))) {
		e->ebx = (e->ebx & 0xff00ffffu) | ((1u << shift) & 0xff) << 16;
		if (cores > 1)
			e->edx |= CPUID_HTT;
		else
			e->edx &= ~CPUID_HTT;
	}
	caches(c, 4, cores, shift);
	caches(c, 0x8000001d, cores, shift);
	if ((e = cpuid__find(c, 0x80000008, 0)))
		e->ecx =
		    (e->ecx & ~0xf0ffu) | (shift << 12) | ((cores - 1) & 0xff);
	/* AMD's own topology leaf: one thread per core; cpuid__for_vcpu
	 * numbers the cores, or (over hosts, packages of one) the nodes. */
	if ((e = cpuid__find(c, 0x8000001e, 0)))
		e->eax = e->ebx = e->ecx = 0;
	return 0;
}

int cpuid__shape(struct kvm_cpuid2 *c, const struct cpuid_opts *o)
{
	struct kvm_cpuid_entry2 *e;
	uint32_t max_basic = 0;

	if ((e = cpuid__find(c, 0, 0)))
		max_basic = e->eax;
	if ((e = cpuid__find(c, 1, 0))) {
		e->ecx |= CPUID_HYPERVISOR;
		e->ecx &= ~CPUID_VMX;
		if (o->tsc_deadline)
			e->ecx |= CPUID_TSC_DEADLINE;
	}
	if ((e = cpuid__find(c, 0x80000001, 0)))
		e->ecx &= ~CPUID_SVM;
	/* No SVM leaf without SVM. */
	for (unsigned i = 0; i < c->nent; i++)
		if (c->entries[i].function == 0x8000000a)
			memset(&c->entries[i].eax, 0, 16);
	/* Over hosts any two vCPUs may be on different hosts (and the SRAT
	 * puts them in different NUMA nodes, where Linux refuses a shared
	 * cache with a warning): each vCPU is a package of its own. */
	if (o->nr_vcpus &&
	    topology(c, o->over_hosts ? 1 : o->nr_vcpus, max_basic))
		return -1;
	if (o->over_hosts && (e = cpuid__find(c, KVM_SIG_LEAF + 1, 0)))
		e->eax &= ~CPUID_KVM_LOCAL;
	e = cpuid__find(c, KVM_SIG_LEAF, 0);
	if (e && o->tsc_khz) {
		struct kvm_cpuid_entry2 *t;
		if (e->eax < TIMING_LEAF)
			e->eax = TIMING_LEAF;
		if (!(t = put(c, TIMING_LEAF, 0, false)))
			return -1;
		t->eax = o->tsc_khz;
		t->ebx = CPUID_LAPIC_KHZ;
		t->ecx = t->edx = 0;
	}
	return 0;
}

void cpuid__for_vcpu(struct kvm_cpuid2 *c, unsigned id, bool over_hosts)
{
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function == 1)
			e->ebx = (e->ebx & 0x00ffffff) | ((uint32_t)id << 24);
		else if (e->function == TOPO_LEAF || e->function == TOPO2_LEAF)
			e->edx = id;
		else if (e->function == 0x8000001e) {
			/* Linux on AMD takes its die (and, on families
			 * before 0x17, its last-level cache) from the node
			 * ID: packages of one CPU each have their own. */
			e->eax = id;
			e->ebx = over_hosts ? 0 : id & 0xff;
			e->ecx = over_hosts ? id & 0xff : 0;
		}
	}
}
