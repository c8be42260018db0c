// SPDX-License-Identifier: MIT
/* The CPUID slos gives a guest on hardware KVM (vmm/cpuid.c). */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "vmm/cpuid.h"

static struct kvm_cpuid2 *supported(void)
{
	struct kvm_cpuid2 *c = calloc(
	    1, sizeof(*c) + CPUID_MAX_ENT * sizeof(struct kvm_cpuid_entry2));
	struct kvm_cpuid_entry2 e[] = {
	    {.function = 0, .eax = 0x1f},
	    {.function = 1,
	     .ebx = 0x00ff0800,
	     .ecx = CPUID_VMX,
	     .edx = CPUID_HTT},
	    {.function = 4,
	     .index = 0,
	     .eax = 0x121,
	     .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX},
	    {.function = 4,
	     .index = 1,
	     .eax = 0x163 | 15 << 14, /* L3, shared by 16 threads */
	     .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX},
	    {.function = 4,
	     .index = 2,
	     .eax = 0,
	     .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX},
	    {.function = 0xb,
	     .index = 0,
	     .eax = 7,
	     .ebx = 9,
	     .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX},
	    {.function = 0x40000000, .eax = 0x40000001},
	    {.function = 0x40000001, .eax = 0x1ffff},
	    {.function = 0x80000001, .ecx = CPUID_SVM},
	    {.function = 0x80000008, .ecx = 0xffff},
	    {.function = 0x8000000a, .eax = 1, .ebx = 8, .edx = 0xff},
	    {.function = 0x8000001d,
	     .index = 0,
	     .eax = 0x163 | 7 << 14,
	     .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX},
	    {.function = 0x8000001e, .eax = 9, .ebx = 0x109, .ecx = 0x101},
	};

	cr_assert(c);
	c->nent = sizeof(e) / sizeof(e[0]);
	memcpy(c->entries, e, sizeof(e));
	return c;
}

Test(cpuid, announces_a_hypervisor_without_nesting)
{
	struct kvm_cpuid2 *c = supported();
	struct cpuid_opts o = {.nr_vcpus = 1, .tsc_deadline = true};

	cr_assert_eq(cpuid__shape(c, &o), 0);
	struct kvm_cpuid_entry2 *l1 = cpuid__find(c, 1, 0);
	cr_expect(l1->ecx & CPUID_HYPERVISOR, "kvmclock needs the bit");
	cr_expect(l1->ecx & CPUID_TSC_DEADLINE);
	cr_expect(!(l1->ecx & CPUID_VMX));
	cr_expect(!(cpuid__find(c, 0x80000001, 0)->ecx & CPUID_SVM));
	struct kvm_cpuid_entry2 *svm = cpuid__find(c, 0x8000000a, 0);
	cr_expect_eq(svm->eax | svm->ebx | svm->ecx | svm->edx, 0);
	cr_expect(!(l1->edx & CPUID_HTT), "one CPU: no HTT");
	cr_expect_null(cpuid__find(c, 0x40000010, 0), "no TSC rate: no leaf");
	free(c);
}

Test(cpuid, timing_leaf_when_the_tsc_rate_is_known)
{
	struct kvm_cpuid2 *c = supported();
	struct cpuid_opts o = {.nr_vcpus = 2, .tsc_khz = 2599992};

	cr_assert_eq(cpuid__shape(c, &o), 0);
	struct kvm_cpuid_entry2 *t = cpuid__find(c, 0x40000010, 0);
	cr_assert(t);
	cr_expect_eq(t->eax, 2599992);
	cr_expect_eq(t->ebx, CPUID_LAPIC_KHZ);
	cr_expect_eq(cpuid__find(c, 0x40000000, 0)->eax, 0x40000010);
	cr_expect(!(cpuid__find(c, 1, 0)->ecx & CPUID_TSC_DEADLINE),
		  "no TSC-deadline unless KVM emulates it");
	free(c);
}

Test(cpuid, one_package_of_n_cores)
{
	struct kvm_cpuid2 *c = supported();
	struct cpuid_opts o = {.nr_vcpus = 6};

	cr_assert_eq(cpuid__shape(c, &o), 0);
	struct kvm_cpuid_entry2 *smt = cpuid__find(c, 0xb, 0),
				*core = cpuid__find(c, 0xb, 1),
				*end = cpuid__find(c, 0xb, 2);
	cr_assert(smt && core && end);
	cr_expect_eq(smt->ebx, 1);
	cr_expect_eq(smt->ecx, 1u << 8);
	cr_expect_eq(core->eax, 3, "6 cores: 3 bits of APIC ID");
	cr_expect_eq(core->ebx, 6);
	cr_expect_eq(core->ecx, 2u << 8 | 1);
	cr_expect_eq(end->ecx, 2);
	cr_expect_null(cpuid__find(c, 0x1f, 0), "no 0x1f unless KVM lists it");
	struct kvm_cpuid_entry2 *l1 = cpuid__find(c, 1, 0);
	cr_expect_eq((l1->ebx >> 16) & 0xff, 8);
	cr_expect(l1->edx & CPUID_HTT);
	cr_expect_eq(cpuid__find(c, 4, 0)->eax >> 26, 5);
	cr_expect_eq(cpuid__find(c, 0x80000008, 0)->ecx & 0xf0ff, 3 << 12 | 5);
	free(c);
}

Test(cpuid, each_vcpu_its_apic_id)
{
	struct kvm_cpuid2 *c = supported();
	struct cpuid_opts o = {.nr_vcpus = 4};

	cr_assert_eq(cpuid__shape(c, &o), 0);
	cpuid__for_vcpu(c, 3, false);
	cr_expect_eq(cpuid__find(c, 1, 0)->ebx >> 24, 3);
	cr_expect_eq(cpuid__find(c, 0xb, 0)->edx, 3);
	cr_expect_eq(cpuid__find(c, 0xb, 1)->edx, 3);
	cr_expect_eq(cpuid__find(c, 1, 0)->ebx & 0xff00, 0x0800,
		     "CLFLUSH size kept");
	free(c);
}

/* vCPU id's AMD topology leaf (0x8000001e): its extended APIC ID, and
 * the core and node IDs want. */
static void amd_ids(struct kvm_cpuid2 *c, unsigned id, bool over_hosts,
		    uint32_t core, uint32_t node)
{
	cpuid__for_vcpu(c, id, over_hosts);
	struct kvm_cpuid_entry2 *t = cpuid__find(c, 0x8000001e, 0);
	cr_expect_eq(t->eax, id);
	cr_expect_eq(t->ebx, core, "one thread a core, core %u", core);
	cr_expect_eq(t->ecx, node, "node %u", node);
}

/* Over hosts each vCPU is a package of its own, sharing no cache: Linux
 * (6.1) warns of a last-level cache shared across the SRAT's nodes, and
 * takes that cache's ID from leaf 4 (Intel), 0x8000001d, or (AMD before
 * family 0x17) the package or 0x8000001e's node ID. */
Test(cpuid, over_hosts_a_package_per_vcpu)
{
	struct kvm_cpuid2 *c = supported();
	struct cpuid_opts o = {.nr_vcpus = 4, .over_hosts = true};

	cr_assert_eq(cpuid__shape(c, &o), 0);
	struct kvm_cpuid_entry2 *core = cpuid__find(c, 0xb, 1);
	cr_expect_eq(core->eax, 0, "the package is the whole APIC ID");
	cr_expect_eq(core->ebx, 1);
	struct kvm_cpuid_entry2 *l1 = cpuid__find(c, 1, 0);
	cr_expect_eq((l1->ebx >> 16) & 0xff, 1);
	cr_expect(!(l1->edx & CPUID_HTT));
	for (uint32_t i = 0; i < 2; i++) {
		uint32_t a = cpuid__find(c, 4, i)->eax;
		cr_expect_eq(a >> 26, 0, "one core a package");
		cr_expect_eq((a >> 14) & 0xfff, 0, "cache %u shared by 1", i);
		cr_expect_eq(a & 0x3fff, i ? 0x163u : 0x121u, "type kept");
	}
	cr_expect_eq(cpuid__find(c, 0x8000001d, 0)->eax, 0x163);
	cr_expect_eq(cpuid__find(c, 0x80000008, 0)->ecx & 0xf0ff, 0);
	/* Its own node ID: its own die and cache. */
	amd_ids(c, 3, true, 0, 3);
	free(c);
}

/* One host: caches shared as KVM said, within the one package. */
Test(cpuid, one_host_caches_shared_within_the_package)
{
	struct kvm_cpuid2 *c = supported();
	struct cpuid_opts o = {.nr_vcpus = 4};

	cr_assert_eq(cpuid__shape(c, &o), 0);
	cr_expect_eq((cpuid__find(c, 4, 1)->eax >> 14) & 0xfff, 3,
		     "16 threads clamped to the package's 4");
	cr_expect_eq((cpuid__find(c, 0x8000001d, 0)->eax >> 14) & 0xfff, 3);
	amd_ids(c, 2, false, 2, 0);
	free(c);
}

/* One host with more vCPUs than leaf 1's 8-bit count holds: still one
 * package, each vCPU a core of it. */
Test(cpuid, one_host_200_vcpus_one_package)
{
	struct kvm_cpuid2 *c = supported();
	struct cpuid_opts o = {.nr_vcpus = 200};

	cr_assert_eq(cpuid__shape(c, &o), 0);
	cr_expect_eq(cpuid__find(c, 0xb, 1)->eax, 8);
	cr_expect_eq(cpuid__find(c, 0xb, 1)->ebx, 200);
	amd_ids(c, 191, false, 191, 0);
	free(c);
}

/* Over hosts: no PV spinlock kicks, no async page faults (their host
 * side stays where the vCPU was); every other PV feature stays. */
Test(cpuid, over_hosts_no_host_local_pv_features)
{
	struct kvm_cpuid2 *c = supported(), *d = supported();
	struct cpuid_opts o = {.nr_vcpus = 2}, h = {.nr_vcpus = 2,
						    .over_hosts = true};

	cr_assert_eq(cpuid__shape(c, &o), 0);
	cr_assert_eq(cpuid__shape(d, &h), 0);
	cr_expect_eq(cpuid__find(c, 0x40000001, 0)->eax, 0x1ffff);
	cr_expect_eq(cpuid__find(d, 0x40000001, 0)->eax,
		     0x1ffff & ~CPUID_KVM_LOCAL);
	cr_expect(cpuid__find(d, 0x40000001, 0)->eax & (1u << 11),
		  "PV send-IPI stays (its IPIs reach the copies)");
	free(c);
	free(d);
}

Test(cpuid, full_table_refused)
{
	struct kvm_cpuid2 *c = supported();
	struct cpuid_opts o = {.nr_vcpus = 2, .tsc_khz = 1000};

	c->nent = CPUID_MAX_ENT; /* the rest zeroed: function 0 entries */
	cr_expect_eq(cpuid__shape(c, &o), -1);
	free(c);
}
