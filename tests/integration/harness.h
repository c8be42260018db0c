/* SPDX-License-Identifier: MIT */
/*
 * Integration-test harness: runs the real `slos` binary (SLOS_BIN, default
 * build/slos) on real KVM and captures what it printed. A run that exceeds
 * its time limit is killed and reported, never left hanging.
 */
#ifndef SLOS_TEST_HARNESS_H
#define SLOS_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>

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

#endif
