// SPDX-License-Identifier: MIT
/* CL_SPEC's bytes: what a member host is asked to be. Pure, and fuzzed. */
#include <string.h>

#include "vmm/cluster.h"
#include "vmm/dsm.h"
#include "vmm/vm.h"

void cluster__spec_put(const struct cluster_spec *s, uint8_t *out)
{
	cl_put32(out, s->host);
	cl_put32(out + 4, s->nhosts);
	cl_put32(out + 8, s->nr_vcpus);
	cl_put32(out + 12, s->pvm);
	cl_put64(out + 16, s->mem_size);
	cl_put64(out + 24, s->host_mem);
	out[32] = s->flags;
	memcpy(out + 33, s->vcpu_map, sizeof(s->vcpu_map));
}

int cluster__spec_get(struct cluster_spec *s, const uint8_t *in, size_t len,
		      const char **why)
{
	*why = NULL;
	if (len != CLUSTER_SPEC_SIZE) {
		*why = "CL_SPEC of the wrong size";
		return -1;
	}
	s->host = cl_get32(in);
	s->nhosts = cl_get32(in + 4);
	s->nr_vcpus = cl_get32(in + 8);
	s->pvm = cl_get32(in + 12);
	s->mem_size = cl_get64(in + 16);
	s->host_mem = cl_get64(in + 24);
	s->flags = in[32];
	memcpy(s->vcpu_map, in + 33, sizeof(s->vcpu_map));
	if (s->nhosts < 2 || s->nhosts > DSM_MAX_HOSTS || !s->host ||
	    s->host >= s->nhosts)
		*why = "CL_SPEC: bad host index or count";
	else if (!s->nr_vcpus || s->nr_vcpus > VM_MAX_VCPUS)
		*why = "CL_SPEC: bad vCPU count";
	else if (s->mem_size < (16ULL << 20) || s->mem_size % 4096 ||
		 s->mem_size > (1ULL << 46) || s->host_mem % 4096)
		*why = "CL_SPEC: bad memory size";
	else if (s->pvm > 1 || s->flags > (CLUSTER_INTERLEAVE | CLUSTER_STATS |
					   CLUSTER_TRACE | CLUSTER_BALANCE))
		*why = "CL_SPEC: bad flag";
	for (unsigned i = 0; !*why && i < VM_MAX_VCPUS; i++)
		if (i < s->nr_vcpus
			? s->vcpu_map[i] >= s->nhosts || (!i && s->vcpu_map[i])
			: s->vcpu_map[i] != 0)
			*why = "CL_SPEC: bad vCPU map";
	return *why ? -1 : 0;
}
