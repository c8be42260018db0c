/* SPDX-License-Identifier: MIT */
/* Command-line parsing for `slos run`: pure, so it is unit-tested. */
#ifndef SLOS_CONFIG_H
#define SLOS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/vm.h"

#define CONFIG_MEM_DEFAULT (512ULL << 20)
#define CONFIG_MEM_MAX	   (1ULL << 46) /* 64 TiB: the guest spans hosts */
#define CONFIG_MAX_HOSTS   8	       /* DSM_MAX_HOSTS */

/* "512M", "2G", "65536K", "1T", or bytes. Returns 0 or -1. */
int config__parse_size(const char *s, uint64_t *out);
/* Name of a VM: 1-64 of [A-Za-z0-9._-], not starting with '.'. */
int config__valid_name(const char *s);
/*
 * Parse `slos run` options (argv[0] is "run"). On error returns -1 with one
 * line in err; on --help returns 1.
 */
int config__parse_run(int argc, char **argv, struct vm_config *c, char *err,
		      size_t errlen);
extern const char config_run_usage[];

#endif
