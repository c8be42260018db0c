// SPDX-License-Identifier: MIT
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/config.h"

const char config_run_usage[] =
	"usage: slos run --kernel FILE [--initrd FILE] [--cmdline STR]\n"
	"                [--vcpus N] [--mem SIZE] [--name NAME] [--stats]\n"
	"                [--pvm auto|on|off] [--profile FILE [--profile-ms N]]\n"
	"                [--snapshot-when REGEX --snapshot-to DIR] [--fabric tcp|rdma]\n"
	"                [--hosts ADDR:PORT,... --key FILE | --local-hosts N]\n"
	"                [--vcpu-map H,H,... [--spread-when REGEX]]\n"
	"                [--mem-map contiguous|interleave]\n"
	"                [--host-mem SIZE] [--trace FILE] [--balance off|locality]\n"
	"                [--numa auto|off]\n"
	"                [--disk FILE[,ro][,host=N]]... [--rng]\n"
	"                [--net tap[,name=TAP][,mac=MAC][,host=N]]...\n"
	"                [--console uart|virtio]\n"
	"       slos run --restore DIR [--prefetch] [--name NAME] [--stats] ...\n"
	"  SIZE: bytes, or with a K, M, G or T suffix (512M, 2G)\n"
	"  --snapshot-when: snapshot into DIR and exit when a console line\n"
	"  matches REGEX (POSIX extended); --restore: resume a snapshot\n"
	"  --hosts: the other hosts' `slos host` daemons (this one is host 0,\n"
	"  the I/O host); --local-hosts N: N hosts in network namespaces here\n"
	"  --vcpu-map: the host of each vCPU (default: round the hosts);\n"
	"  --spread-when: boot every vCPU on host 0, move each to its\n"
	"  --vcpu-map host when a console line matches REGEX;\n"
	"  --host-mem: guest pages a host may hold before it evicts;\n"
	"  --trace: what the vCPUs did (runs, jumps, faults) as trace-event\n"
	"  JSON for ui.perfetto.dev; --balance locality:\n"
	"  jump vCPUs to the host that holds the pages they fault on;\n"
	"  --numa off: no SRAT/SLIT (auto: a NUMA node per host when homes\n"
	"  are contiguous, docs/acpi.md)\n"
	"  --disk, --net, --rng: virtio-mmio devices (docs/virtio.md), on\n"
	"  host N (default 0); --console virtio: hvc0 instead of ttyS0\n";

int config__parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	switch (toupper((unsigned char)*end)) {
	case 'K':
		shift = 10;
		break;
	case 'M':
		shift = 20;
		break;
	case 'G':
		shift = 30;
		break;
	case 'T':
		shift = 40;
		break;
	case '\0':
		break;
	default:
		return -1;
	}
	if (*end) {
		end++;
		if (toupper((unsigned char)*end) == 'B' ||
		    (toupper((unsigned char)*end) == 'I' &&
		     toupper((unsigned char)end[1]) == 'B'))
			end += (*end == 'B' || *end == 'b') ? 1 : 2;
	}
	if (*end || v > (~0ULL >> shift))
		return -1;
	*out = v << shift;
	return 0;
}

int config__valid_name(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 64 || s[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
			return 0;
	return 1;
}

static int bad(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -1;
}

/* How many hosts, and the vCPU map against them. */
static int hosts_parse(struct vm_config *c, const char *vmap, char *err,
		       size_t errlen)
{
	c->nhosts = 1;
	if (c->hosts && c->local_hosts)
		return bad(err, errlen,
			   "--hosts and --local-hosts do not go together");
	if (c->hosts) {
		c->nhosts = 2;
		for (const char *p = c->hosts; *p; p++)
			c->nhosts += *p == ',';
		if (c->nhosts > CONFIG_MAX_HOSTS)
			return bad(err, errlen, "--hosts: at most %d hosts",
				   CONFIG_MAX_HOSTS - 1);
		if (!c->key_file)
			return bad(err, errlen,
				   "--hosts needs --key FILE (the VM's key)");
		size_t l = strlen(c->hosts);
		if (!l || c->hosts[0] == ',' || c->hosts[l - 1] == ',' ||
		    strstr(c->hosts, ",,"))
			return bad(err, errlen,
				   "--hosts '%s': ADDR:PORT,ADDR:PORT,... with "
				   "no empty entry",
				   c->hosts);
	}
	if (c->local_hosts) {
		if (c->key_file)
			return bad(err, errlen,
				   "--key goes with --hosts (--local-hosts "
				   "makes the VM's key itself)");
		c->nhosts = c->local_hosts;
	}
	/* APIC ID 255 is the broadcast an interrupt forwarded to a vCPU's
	 * host would be sent to (vmm/ipi.c: physical xAPIC MSIs). */
	if (c->nr_vcpus > VM_MAX_VCPUS - 1 && c->nhosts > 1)
		return bad(err, errlen, "--vcpus: at most %d over hosts",
			   VM_MAX_VCPUS - 1);
	/* By default the vCPUs go round the hosts (a restored VM's stay on
	 * host 0, where the snapshot is). */
	if (!vmap) {
		/* (Over hosts nr_vcpus fits the map: checked above.) */
		for (unsigned i = 0;
		     !c->restore && c->nhosts > 1 && i < c->nr_vcpus; i++)
			c->vcpu_map[i] = i % c->nhosts;
		return 0;
	}
	if (c->restore)
		return bad(err, errlen,
			   "--vcpu-map: a restored VM runs its vCPUs on the I/O "
			   "host");
	unsigned i = 0;
	for (const char *p = vmap;; i++) {
		char *end;
		errno = 0;
		long h = strtol(p, &end, 10);
		if (errno || end == p || h < 0 || (unsigned long)h >= c->nhosts)
			return bad(err, errlen,
				   "--vcpu-map '%s': entry %u is not a host "
				   "from 0 to %u",
				   vmap, i, c->nhosts - 1);
		if (i >= c->nr_vcpus)
			return bad(err, errlen,
				   "--vcpu-map '%s': more entries than the %u "
				   "vCPUs",
				   vmap, c->nr_vcpus);
		c->vcpu_map[i] = h;
		if (!*end)
			break;
		if (*end != ',')
			return bad(err, errlen,
				   "--vcpu-map '%s': hosts separated by commas",
				   vmap);
		p = end + 1;
	}
	if (i + 1 != c->nr_vcpus)
		return bad(err, errlen,
			   "--vcpu-map '%s': %u entries for %u vCPUs", vmap,
			   i + 1, c->nr_vcpus);
	if (c->vcpu_map[0] != 0)
		return bad(err, errlen,
			   "--vcpu-map '%s': vCPU 0 (the boot CPU) runs on the "
			   "I/O host, 0",
			   vmap);
	return 0;
}

int config__parse_run(int argc, char **argv, struct vm_config *c, char *err,
		      size_t errlen)
{
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "cmdline", required_argument, NULL, 'c' },
		{ "vcpus", required_argument, NULL, 'n' },
		{ "mem", required_argument, NULL, 'm' },
		{ "name", required_argument, NULL, 'N' },
		{ "stats", no_argument, NULL, 's' },
		{ "pvm", required_argument, NULL, 'p' },
		{ "profile", required_argument, NULL, 'P' },
		{ "profile-ms", required_argument, NULL, 'T' },
		{ "restore", required_argument, NULL, 'R' },
		{ "prefetch", no_argument, NULL, 'F' },
		{ "snapshot-when", required_argument, NULL, 'W' },
		{ "snapshot-to", required_argument, NULL, 'O' },
		{ "spread-when", required_argument, NULL, 'S' },
		{ "fabric", required_argument, NULL, 'f' },
		{ "hosts", required_argument, NULL, 'H' },
		{ "key", required_argument, NULL, 'K' },
		{ "local-hosts", required_argument, NULL, 'L' },
		{ "vcpu-map", required_argument, NULL, 'V' },
		{ "mem-map", required_argument, NULL, 'M' },
		{ "host-mem", required_argument, NULL, 'B' },
		{ "trace", required_argument, NULL, 'X' },
		{ "balance", required_argument, NULL, 'b' },
		{ "numa", required_argument, NULL, 'U' },
		{ "disk", required_argument, NULL, 'D' },
		{ "net", required_argument, NULL, 'E' },
		{ "rng", no_argument, NULL, 'r' },
		{ "console", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *vmap = NULL;
	char *end;
	long n;
	int o;

	*c = (struct vm_config){ .nr_vcpus = 1, .mem_size = CONFIG_MEM_DEFAULT,
				 .pvm = -1, .profile_us = 10000,
				 .fabric = "tcp" };
	optind = 1;
	opterr = 0;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'k':
			c->kernel = optarg;
			break;
		case 'i':
			c->initrd = optarg;
			break;
		case 'c':
			c->cmdline = optarg;
			break;
		case 'n':
			errno = 0;
			n = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || n < 1 ||
			    n > 4096)
				return bad(err, errlen,
					   "--vcpus '%s': need a number from 1",
					   optarg);
			c->nr_vcpus = n;
			c->vcpus_set = true;
			break;
		case 'm':
			if (config__parse_size(optarg, &c->mem_size))
				return bad(err, errlen,
					   "--mem '%s': not a size (like 512M)",
					   optarg);
			if (c->mem_size < (16ULL << 20) ||
			    c->mem_size % 4096 || c->mem_size > CONFIG_MEM_MAX)
				return bad(err, errlen,
					   "--mem '%s': need a multiple of 4K "
					   "from 16M to 64T",
					   optarg);
			c->mem_set = true;
			break;
		case 'N':
			if (!config__valid_name(optarg))
				return bad(err, errlen,
					   "--name '%s': use 1-64 of "
					   "[A-Za-z0-9._-]",
					   optarg);
			c->name = optarg;
			break;
		case 's':
			c->stats = true;
			break;
		case 'p':
			if (!strcmp(optarg, "auto"))
				c->pvm = -1;
			else if (!strcmp(optarg, "on"))
				c->pvm = 1;
			else if (!strcmp(optarg, "off"))
				c->pvm = 0;
			else
				return bad(err, errlen,
					   "--pvm '%s': auto, on or off",
					   optarg);
			break;
		case 'P':
			c->profile = optarg;
			break;
		case 'X':
			if (!*optarg)
				return bad(err, errlen, "--trace needs a file");
			c->trace = optarg;
			break;
		case 'b':
			if (!strcmp(optarg, "locality"))
				c->balance = true;
			else if (strcmp(optarg, "off"))
				return bad(err, errlen,
					   "--balance '%s': off or locality",
					   optarg);
			break;
		case 'U':
			if (!strcmp(optarg, "off"))
				c->no_numa = true;
			else if (strcmp(optarg, "auto"))
				return bad(err, errlen,
					   "--numa '%s': auto or off", optarg);
			break;
		case 'T':
			errno = 0;
			n = strtol(optarg, &end, 10);
			if (errno || *end || n < 1 || n > 10000)
				return bad(err, errlen,
					   "--profile-ms '%s': 1 to 10000",
					   optarg);
			c->profile_us = n * 1000;
			break;
		case 'R':
			c->restore = optarg;
			break;
		case 'F':
			c->prefetch = true;
			break;
		case 'W': {
			regex_t re;
			int e = regcomp(&re, optarg, REG_EXTENDED | REG_NOSUB);
			if (e)
				return bad(err, errlen,
					   "--snapshot-when '%s': not a regular "
					   "expression",
					   optarg);
			regfree(&re);
			c->snapshot_when = optarg;
			break;
		}
		case 'S': {
			regex_t re;
			if (regcomp(&re, optarg, REG_EXTENDED | REG_NOSUB))
				return bad(err, errlen,
					   "--spread-when '%s': not a regular "
					   "expression",
					   optarg);
			regfree(&re);
			c->spread_when = optarg;
			break;
		}
		case 'O':
			if (!*optarg)
				return bad(err, errlen,
					   "--snapshot-to: empty path");
			c->snapshot_to = optarg;
			break;
		case 'f':
			if (strcmp(optarg, "tcp") && strcmp(optarg, "rdma"))
				return bad(err, errlen,
					   "--fabric '%s': tcp or rdma", optarg);
			c->fabric = optarg;
			break;
		case 'H':
			c->hosts = optarg;
			break;
		case 'K':
			c->key_file = optarg;
			break;
		case 'L':
			errno = 0;
			n = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || n < 1 ||
			    n > CONFIG_MAX_HOSTS)
				return bad(err, errlen,
					   "--local-hosts '%s': 1 to %d hosts "
					   "(the I/O host included)",
					   optarg, CONFIG_MAX_HOSTS);
			c->local_hosts = n;
			break;
		case 'V':
			vmap = optarg;
			break;
		case 'M':
			if (!strcmp(optarg, "interleave"))
				c->interleave = true;
			else if (strcmp(optarg, "contiguous"))
				return bad(err, errlen,
					   "--mem-map '%s': contiguous or "
					   "interleave",
					   optarg);
			break;
		case 'B':
			if (config__parse_size(optarg, &c->host_mem) ||
			    c->host_mem < (1ULL << 20) || c->host_mem % 4096)
				return bad(err, errlen,
					   "--host-mem '%s': a size of at least "
					   "1M, in whole pages",
					   optarg);
			break;
		case 'D':
		case 'E':
		case 'r':
			if (c->nr_vdevs == VIRTIO_MAX_DEVS - 1)
				return bad(err, errlen,
					   "too many virtio devices (at most "
					   "%u)",
					   VIRTIO_MAX_DEVS - 1);
			struct virtio_spec *s = &c->vdevs[c->nr_vdevs];
			if (o == 'r')
				*s = (struct virtio_spec){.kind = VIRTIO_RNG};
			else if ((o == 'D' ? virtio__parse_disk
					   : virtio__parse_net)(optarg, s, err,
								errlen))
				return -1;
			c->nr_vdevs++;
			break;
		case 'C':
			if (!strcmp(optarg, "virtio"))
				c->vconsole = true;
			else if (strcmp(optarg, "uart"))
				return bad(err, errlen,
					   "--console '%s': uart or virtio",
					   optarg);
			break;
		case 'h':
			return 1;
		default:
			return bad(err, errlen, "unknown or incomplete option '%s'",
				   argv[optind - 1]);
		}
	}
	if (optind < argc)
		return bad(err, errlen, "unexpected argument '%s'",
			   argv[optind]);
	if (hosts_parse(c, vmap, err, errlen))
		return -1;
	if (c->spread_when) {
		/* Boot where the devices are, spread once the guest is up
		 * (docs/jumps.md). */
		if (c->nhosts < 2 || c->restore)
			return bad(err, errlen,
				   "--spread-when: a VM over hosts, not "
				   "restored (--hosts or --local-hosts)");
		if (c->snapshot_when)
			return bad(err, errlen,
				   "--spread-when and --snapshot-when: one "
				   "console trigger at a time");
		if (c->vconsole)
			return bad(err, errlen,
				   "--spread-when watches the UART: not with "
				   "--console virtio");
		memcpy(c->place, c->vcpu_map, sizeof(c->place));
		memset(c->vcpu_map, 0, sizeof(c->vcpu_map));
	}
	for (unsigned i = 0; i < c->nr_vdevs; i++)
		if (c->vdevs[i].host >= c->nhosts)
			return bad(err, errlen,
				   "%s%u: host=%u, but the VM has %u host%s",
				   virtio__kind_name(c->vdevs[i].kind), i,
				   c->vdevs[i].host, c->nhosts,
				   c->nhosts == 1 ? "" : "s");
	if (c->balance && c->nhosts < 2)
		return bad(err, errlen,
			   "--balance locality: the VM runs on one host "
			   "(--hosts or --local-hosts)");
	if ((c->snapshot_when || c->restore) && (c->nr_vdevs || c->vconsole))
		return bad(err, errlen,
			   "snapshots do not hold virtio devices' state yet: "
			   "--snapshot-when and --restore go without --disk, "
			   "--net, --rng and --console virtio");
	if (!c->snapshot_when != !c->snapshot_to)
		return bad(err, errlen,
			   "--snapshot-when and --snapshot-to go together");
	if (c->restore) {
		if (c->kernel || c->initrd || c->cmdline)
			return bad(err, errlen,
				   "--restore: the kernel, initrd and command "
				   "line come from the snapshot");
		return 0;
	}
	if (c->prefetch)
		return bad(err, errlen, "--prefetch needs --restore");
	if (!c->kernel)
		return bad(err, errlen, "--kernel FILE is required");
	return 0;
}
