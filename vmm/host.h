/* SPDX-License-Identifier: MIT */
/* Hosts: the `slos host` daemon, and `--local-hosts` on one machine. */
#ifndef SLOS_HOST_H
#define SLOS_HOST_H

#include <stddef.h>
#include <stdint.h>

int host__main(int argc, char **argv);

#define LOCAL_ADDR_LEN 64

/*
 * --local-hosts n: move this process (host 0) into a new network namespace
 * with a bridge, and start n-1 `slos host` daemons (exe), each in a
 * namespace of its own joined to the bridge by a veth link, under a fresh
 * key. The namespaces have no names: they, their links and the daemons'
 * VM processes go when the processes do (PR_SET_PDEATHSIG), so nothing is
 * left behind whatever way host 0 ends; localhosts__stop ends them in
 * order. addrs[1..n) get the daemons' addresses. Call before any thread
 * exists. Needs root. 0, or -1 with why.
 */
int localhosts__start(unsigned n, char addrs[][LOCAL_ADDR_LEN], uint8_t key[32],
		      char *why, size_t why_len);
void localhosts__stop(void);

#endif
