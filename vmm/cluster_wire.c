// SPDX-License-Identifier: MIT
/* CL_SPEC's and CL_DEVS's bytes: what a member host is asked to be. Pure,
 * and fuzzed. */
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

#define DEV_RO	1
#define DEV_MAC 2
#define DEV_HDR 11 /* kind, host, flags, mac[6], path length (u16) */

size_t cluster__devs_put(const struct virtio_spec *d, unsigned n,
			 bool vconsole, uint8_t *out, size_t cap)
{
	size_t pos = 2;

	if (cap < 2 || n >= VIRTIO_MAX_DEVS)
		return 0;
	out[0] = n;
	out[1] = vconsole;
	for (unsigned i = 0; i < n; i++) {
		size_t pl = d[i].path ? strlen(d[i].path) : 0;

		if (pl >= CLUSTER_DEV_PATH || cap - pos < DEV_HDR + pl)
			return 0;
		out[pos] = d[i].kind;
		out[pos + 1] = d[i].host;
		out[pos + 2] = (d[i].ro ? DEV_RO : 0) | (d[i].mac_set ? DEV_MAC : 0);
		memcpy(out + pos + 3, d[i].mac, 6);
		out[pos + 9] = pl & 0xff;
		out[pos + 10] = pl >> 8;
		if (pl)
			memcpy(out + pos + DEV_HDR, d[i].path, pl);
		pos += DEV_HDR + pl;
	}
	return pos;
}

int cluster__devs_get(struct cluster_devs *s, const uint8_t *in, size_t len,
		      const char **why)
{
	size_t pos = 2;

	memset(s, 0, sizeof(*s));
	*why = NULL;
	if (len < 2 || in[0] >= VIRTIO_MAX_DEVS || in[1] > 1) {
		*why = "CL_DEVS: bad header";
		return -1;
	}
	s->n = in[0];
	s->vconsole = in[1];
	for (unsigned i = 0; i < s->n; i++) {
		struct virtio_spec *d = &s->d[i];
		size_t pl;

		if (len - pos < DEV_HDR) {
			*why = "CL_DEVS: truncated";
			return -1;
		}
		pl = in[pos + 9] | in[pos + 10] << 8;
		d->kind = in[pos];
		d->host = in[pos + 1];
		d->ro = in[pos + 2] & DEV_RO;
		d->mac_set = in[pos + 2] & DEV_MAC;
		memcpy(d->mac, in + pos + 3, 6);
		if (d->kind > VIRTIO_RNG || d->host >= DSM_MAX_HOSTS ||
		    in[pos + 2] > (DEV_RO | DEV_MAC) ||
		    pl >= CLUSTER_DEV_PATH || len - pos - DEV_HDR < pl ||
		    memchr(in + pos + DEV_HDR, 0, pl) ||
		    (d->kind == VIRTIO_BLK && !pl)) {
			*why = "CL_DEVS: bad device";
			return -1;
		}
		memcpy(s->paths[i], in + pos + DEV_HDR, pl);
		s->paths[i][pl] = '\0';
		d->path = pl ? s->paths[i] : NULL;
		pos += DEV_HDR + pl;
	}
	if (pos != len) {
		*why = "CL_DEVS: trailing bytes";
		return -1;
	}
	return 0;
}
