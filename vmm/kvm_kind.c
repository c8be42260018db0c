// SPDX-License-Identifier: MIT
/* Which KVM is here: kept apart from pvm.c so the tests can link it alone. */
#include <cpuid.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "vmm/pvm.h"

static bool loaded(const char *mod)
{
	char p[64];

	snprintf(p, sizeof(p), "/sys/module/%s", mod);
	return access(p, F_OK) == 0;
}

static enum kvm_kind probe(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	bool pvm = loaded("kvm_pvm"), intel = loaded("kvm_intel");
	bool amd = loaded("kvm_amd"), hw_caps;

	if (fd < 0 || ioctl(fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		if (fd >= 0)
			close(fd);
		return KVM_KIND_NONE;
	}
	hw_caps = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_NESTED_STATE) > 0 ||
		  ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_SMM) > 0;
	close(fd);
	if (pvm && (!(intel || amd) || !hw_caps))
		return KVM_KIND_PVM;
	return amd ? KVM_KIND_AMD : KVM_KIND_INTEL;
}

enum kvm_kind pvm__kvm_kind(void)
{
	static enum kvm_kind kind = -1;

	if ((int)kind < 0)
		kind = probe();
	return kind;
}

const char *pvm__kvm_kind_name(enum kvm_kind k)
{
	switch (k) {
	case KVM_KIND_PVM:
		return "PVM";
	case KVM_KIND_INTEL:
		return "hardware (kvm_intel)";
	case KVM_KIND_AMD:
		return "hardware (kvm_amd)";
	default:
		return "none";
	}
}

bool pvm__detect(void)
{
	const char *e = getenv("SLOS_PVM");

	if (e && *e)
		return atoi(e) != 0;
	return pvm__kvm_kind() == KVM_KIND_PVM;
}

bool pvm__host_emulated(void)
{
	static int emulated = -1;
	unsigned a, b, c, d;
	char sig[13];

	if (emulated >= 0)
		return emulated;
	emulated = 0;
	__cpuid(1, a, b, c, d);
	if (!(c & (1u << 31)))
		return false;
	__cpuid(0x40000000, a, b, c, d);
	memcpy(sig, &b, 4);
	memcpy(sig + 4, &c, 4);
	memcpy(sig + 8, &d, 4);
	sig[12] = 0;
	emulated = !strcmp(sig, "TCGTCGTCGTCG");
	return emulated;
}
