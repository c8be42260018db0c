/* SPDX-License-Identifier: MIT */
/*
 * The control socket of a VM: a Unix stream socket at
 * CTL_DIR/NAME.sock (/run/slos for root, else $XDG_RUNTIME_DIR/slos or
 * /tmp/slos-UID). One request per connection, one line each way:
 *   request:  "SLOS1 <command> [args]\n"
 *   reply:    "SLOS1 OK <json>\n" or "SLOS1 ERR <message>\n"
 * The version word lets later versions answer older clients. Commands now:
 * `status` (with "where": the host each vCPU runs on), `stop`,
 * `snapshot /ABS/DIR [--stop]` (vmm/snapshot.h), `jump VCPU HOST` (answers
 * once the vCPU runs there, or why it could not; within 10 s).
 * `slos ctl` alone lists every running VM's status, one a line.
 */
#ifndef SLOS_CTL_H
#define SLOS_CTL_H

#include <stddef.h>

#define CTL_VERSION "SLOS1"
#define CTL_LINE_MAX 4096

struct vm;

/* Socket path for NAME into buf; -1 if it does not fit. */
int ctl__path(const char *name, char *buf, size_t len);
/* Listen for the VM; -1 with a message (name in use, no directory). */
int ctl__listen(const char *name, char *path, size_t len);
/* Serve one connection on a listening socket (never blocks long). */
void ctl__serve(struct vm *vm, int listen_fd);
/* `slos ctl NAME CMD [ARGS]`: returns the process exit status. */
int ctl__client(int argc, char **argv);
/* Parse a request line: fills cmd (and arg, may be empty); -1 if bad. */
int ctl__parse(const char *line, char *cmd, size_t cmdlen, char *arg,
	       size_t arglen);

#endif
