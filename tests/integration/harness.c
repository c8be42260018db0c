// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/integration/harness.h"

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

const char *harness__bin(void)
{
	const char *b = getenv("SLOS_BIN");

	return b && *b ? b : "build/slos";
}

const char *harness__artefact(const char *rel)
{
	/* Buffers in turn: results may be used side by side. */
	static __thread char buf[4][512];
	static __thread unsigned n;
	const char *d = getenv("SLOS_BUILD");
	char *b = buf[n++ % 4];

	snprintf(b, sizeof(buf[0]), "%s/%s", d && *d ? d : "build", rel);
	return b;
}

const char *harness__testos(void)
{
	/* The guest is built once, by the plain build. */
	return "build/guest/testos.elf";
}

static void append(struct run *r, const char *b, size_t n)
{
	r->out = realloc(r->out, r->len + n + 1);
	memcpy(r->out + r->len, b, n);
	r->len += n;
	r->out[r->len] = 0;
}

static void vrun(struct run *r, double timeout_s, const char *input,
		 const char *until, va_list ap)
{
	const char *argv[64];
	int n = 0, out[2], in[2];

	memset(r, 0, sizeof(*r));
	append(r, "", 0);
	argv[n++] = harness__bin();
	for (const char *a; n < 63 && (a = va_arg(ap, const char *));)
		argv[n++] = a;
	argv[n] = NULL;
	if (pipe2(out, O_CLOEXEC) || pipe2(in, O_CLOEXEC)) {
		r->status = -1;
		return;
	}
	double t0 = now();
	pid_t pid = fork();
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(out[1], 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(out[1]);
	close(in[0]);
	if (input && write(in[1], input, strlen(input)) < 0)
		perror("harness: stdin");
	close(in[1]);
	for (;;) {
		double left = timeout_s - (now() - t0);
		if (left <= 0) {
			r->timed_out = true;
			kill(pid, SIGKILL);
			break;
		}
		struct pollfd p = { .fd = out[0], .events = POLLIN };
		int k = poll(&p, 1, left * 1000 > 1000 ? 1000 : left * 1000 + 1);
		if (k <= 0)
			continue;
		char buf[4096];
		ssize_t got = read(out[0], buf, sizeof(buf));
		if (got <= 0)
			break;
		append(r, buf, got);
		if (until && !r->matched && strstr(r->out, until)) {
			r->matched = true;
			kill(pid, SIGTERM);
		}
	}
	close(out[0]);
	int st;
	waitpid(pid, &st, 0);
	r->secs = now() - t0;
	if (r->timed_out)
		r->status = -1;
	else if (WIFEXITED(st))
		r->status = WEXITSTATUS(st);
	else
		r->status = 128 + WTERMSIG(st);
}

void harness__run(struct run *r, double timeout_s, const char *input, ...)
{
	va_list ap;

	va_start(ap, input);
	vrun(r, timeout_s, input, NULL, ap);
	va_end(ap);
}

void harness__run_until(struct run *r, double timeout_s, const char *until,
			...)
{
	va_list ap;

	va_start(ap, until);
	vrun(r, timeout_s, NULL, until, ap);
	va_end(ap);
}

void harness__free(struct run *r)
{
	free(r->out);
	r->out = NULL;
}

bool harness__has(const struct run *r, const char *needle)
{
	return r->out && strstr(r->out, needle);
}
