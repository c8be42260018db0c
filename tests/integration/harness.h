/* SPDX-License-Identifier: MIT */
/*
 * Integration-test harness: runs the real `slos` binary (SLOS_BIN, default
 * build/slos) on real KVM and captures what it printed. A run that exceeds
 * its time limit is killed and reported, never left hanging.
 */
#ifndef SLOS_TEST_HARNESS_H
#define SLOS_TEST_HARNESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct run {
	int status;   /* exit status, or 128+signal, or -1 on timeout */
	bool timed_out;
	char *out;    /* stdout and stderr, interleaved */
	size_t len;
	double secs;
	bool matched; /* harness__run_until: the text was seen */
};

/* Run `slos ARGS...` (NULL-terminated) with stdin from `input` (may be
 * NULL), killing it after timeout_s. */
void harness__run(struct run *r, double timeout_s, const char *input, ...)
	__attribute__((sentinel));
/* Like harness__run, but stops slos (SIGTERM) as soon as `until` shows in
 * its output, and sets matched. */
void harness__run_until(struct run *r, double timeout_s, const char *until,
			...) __attribute__((sentinel));
void harness__free(struct run *r);
const char *harness__bin(void);
const char *harness__testos(void);
/* Path of a built artefact under the build dir (SLOS_BUILD, default build). */
const char *harness__artefact(const char *rel);
bool harness__has(const struct run *r, const char *needle);

/*
 * Processes that run in the background (host daemons, a VM that is
 * stopped or attacked while it runs): stdin from /dev/null, stdout and
 * stderr captured by a thread of their own, so waiting on one never
 * blocks it, and the output can be searched while it runs.
 */
struct proc {
	pid_t pid;    /* 0 once reaped */
	int fd;       /* read end of its output */
	int status;   /* as struct run's, once reaped; -1 before */
	double t0, t_exit; /* harness__now() at start and when reaped */
	pthread_t reader;
	pthread_mutex_t m; /* guards out, len, eof */
	pthread_cond_t cv;
	char *out;    /* what it printed so far: use the calls below */
	size_t len;
	bool eof;
};

/* Start `slos ARGS...` (NULL-terminated). 0, or -1 with errno. */
int harness__start(struct proc *p, ...) __attribute__((sentinel));
/* Start argv[0] with argv (NULL-terminated). */
int harness__spawn(struct proc *p, const char *const *argv);
/* Wait until `text` shows in its output: true, or false after timeout_s
 * (or when its output ended without it). */
bool harness__wait_output(struct proc *p, const char *text,
			  double timeout_s);
bool harness__output_has(struct proc *p, const char *text);
/* A copy of its output so far (free it). */
char *harness__output(struct proc *p);
/* Wait for it to end: its status (as struct run's), or -1 after
 * timeout_s with the process still running. */
int harness__wait(struct proc *p, double timeout_s);
/* Send sig, then wait as harness__wait. */
int harness__stop(struct proc *p, int sig, double timeout_s);
/* SIGKILL it if it still runs, reap it, wait for its output to end
 * (at most a few seconds), free everything. */
void harness__proc_free(struct proc *p);

/* `slos host --listen 127.0.0.1:0 --key keyfile`: started and listening,
 * its address ("127.0.0.1:PORT", the port the daemon picked) in addr.
 * 0, or -1 (with its output in p) if it did not say it listens. */
int harness__daemon(struct proc *p, const char *keyfile, char *addr,
		    size_t addr_len);
/* The same on `listen` ("ADDR:0" picks a free port). */
int harness__daemon_at(struct proc *p, const char *listen,
		       const char *keyfile, char *addr, size_t addr_len);

/* Orphans of this process's descendants come to it (PR_SET_CHILD_
 * SUBREAPER), so harness__descendants still sees what they leave. */
void harness__subreaper(void);
/* Live (not zombie) descendants of `ancestor` that run slos with argv1
 * as their command (argv[0]'s last component "slos", argv[1] == argv1:
 * "host" for daemons and the VM processes they fork), or any descendant
 * when argv1 is NULL; up to max pids in out, the count returned. */
int harness__descendants(pid_t ancestor, const char *argv1, pid_t *out,
			 int max);
/* Live (not zombie) children of parent, whatever they run. */
int harness__children(pid_t parent, pid_t *out, int max);
/* A one-line description of pid for messages: "PID (cmdline)". */
void harness__describe(pid_t pid, char *out, size_t len);
/* Each thread of pid as "tid comm state wchan", "; " between: what a
 * process that should have ended is stuck on. */
size_t harness__threads(pid_t pid, char *out, size_t len);
/* Each thread's user stack (gdb attaches; empty without gdb). */
size_t harness__backtrace(pid_t pid, char *out, size_t len);
/* TCP ports pid listens on (IPv4 and IPv6), up to max. */
int harness__listen_ports(pid_t pid, unsigned *ports, int max);
/* The slos under test is an ASan build (SLOS_BIN names one). */
bool harness__asan(void);
/* Slower runs get their time bounds scaled: 3 when SLOS_BIN names an
 * asan build, 3 on an emulated host (the lab), 9 for both, else 1. */
double harness__time_scale(void);
double harness__now(void);

#endif
