// SPDX-License-Identifier: MIT
/*
 * bench/restore: what a snapshot buys over a cold boot.
 *
 *  (a) full boot: one `slos run ... --snapshot-when RE --snapshot-to DIR`,
 *      timed from fork/exec to the console line the snapshot is taken at
 *      (and to slos's exit, i.e. the snapshot written);
 *  (b) restore: N times `slos run --restore DIR --stats`, timed from
 *      fork/exec to the `slos: restore: running after X ms` stderr line
 *      (with slos's own X, measured from its main()) and to the next
 *      console line on stdout; then SIGTERM and reap;
 *  (c) VmRSS (and its anon/file/shmem split) of each restored slos right
 *      after its first console line, against --mem, the snapshot's memory
 *      file's allocated size and the cold-booted slos at the snapshot line;
 *  (d) (b) and (c) again with --prefetch, if slos has it.
 *
 * Default guest: the project kernel with the busybox initramfs on 2 vCPUs,
 * locktorture running for ever (stat_interval=1: a `Writes:` line every
 * second), snapshotted at its first `Writes:` line, so the next line is
 * due within a second of guest time. The trigger is a kernel line, not a
 * user-space one, so the bench does not depend on guest system calls
 * (emulated under PVM); with --when SLOS-CONSOLE-READY the snapshot is
 * taken once /init is up and waiting on the console instead
 * (slos.console=1; stdin is /dev/null, so no command ever comes).
 * --initrd none boots without user space (the kernel waits for a root
 * disk, like tests/integration/linux.c's locktorture run).
 * --testos is the fast mode: the test OS's `checksum` test snapshotted at
 * "round 2/"; it also checks that one restore runs to the same result as
 * an uninterrupted run, since a fast restore of a broken VM means nothing.
 *
 * usage: restore [--kernel F] [--initrd F|none] [--n N] [--slos PATH]
 *                [--testos] [--vcpus N] [--mem SIZE] [--when REGEX]
 *                [--timeout SECS] [--dir PARENT]
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vmm/config.h"

#define LINE_BUF     8192 /* a longer console line is cut into pieces */
#define TAIL_LINES   40	  /* output kept to explain a failure */
#define TAIL_COLS    200
#define KILL_GRACE_S 10.0 /* SIGTERM to SIGKILL */
#define PROBE_S	     10.0 /* `slos run --help` and option probes */
#define RUNNING_LINE "slos: restore: running after"
/* The guest prints a line every second: a restore that has shown none
 * after this long is broken, however slow the full boot may be. */
#define RESTORE_TIMEOUT_S 120.0

#define LINUX_CMDLINE                                                          \
	"console=ttyS0 panic=-1 rcutorture.torture_type=none "                 \
	"locktorture.stat_interval=1 locktorture.shutdown_secs=0"

struct opts {
	const char *slos, *kernel, *initrd, *when, *vcpus, *mem_str, *parent;
	uint64_t mem;
	int n;
	bool testos;
	double timeout_s;
	char cmdline[512];
};

struct lines {
	int fd;
	bool eof;
	size_t len;
	char buf[LINE_BUF];
};

struct child {
	pid_t pid;
	double t0; /* just before fork: "from exec" includes the fork */
	struct lines out, err;
	unsigned ntail;
	char tail[TAIL_LINES][TAIL_COLS];
};

struct rss {
	double vm, anon, file, shmem; /* MiB */
};

struct sample {
	double to_running, inproc, to_line; /* ms */
	struct rss rss;
};

struct series {
	double *v;
	size_t n;
};

static volatile sig_atomic_t interrupted;
static char tmp_parent[4096]; /* removed at exit */
static pid_t live_pid;	      /* the slos being run, killed at exit */

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	if (flag == FTW_DP)
		rmdir(p);
	else
		unlink(p);
	return 0;
}

/* A snapshot holds the guest's whole memory: never leave one behind, nor
 * a VM still running when the bench gives up. */
static void cleanup(void)
{
	if (live_pid > 0) {
		kill(live_pid, SIGKILL);
		waitpid(live_pid, NULL, 0);
		live_pid = 0;
	}
	if (tmp_parent[0])
		nftw(tmp_parent, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	tmp_parent[0] = 0;
}

static __attribute__((format(printf, 1, 2), noreturn)) void die(const char *fmt,
								...)
{
	va_list ap;

	fprintf(stderr, "restore: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* --- children and their output, line by line -------------------------- */

static void spawn(struct child *c, char *const argv[])
{
	int out[2], err[2];

	memset(c, 0, sizeof(*c));
	if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
		die("pipe: %s", strerror(errno));
	fflush(NULL);
	c->t0 = now_s();
	c->pid = fork();
	if (c->pid < 0)
		die("fork: %s", strerror(errno));
	if (!c->pid) {
		int null = open("/dev/null", O_RDONLY);

		/* stdin /dev/null: no console input, and no terminal for
		 * slos to put into raw mode under the bench. */
		if (null < 0 || dup2(null, 0) < 0 || dup2(out[1], 1) < 0 ||
		    dup2(err[1], 2) < 0)
			_exit(127);
		execv(argv[0], argv);
		dprintf(2, "restore: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	live_pid = c->pid;
	close(out[1]);
	close(err[1]);
	c->out.fd = out[0];
	c->err.fd = err[0];
}

/* Console lines can be long; the summaries keep their start. */
static void copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);

	memcpy(dst, src, n);
	dst[n] = 0;
}

static void keep_tail(struct child *c, const char *pfx, const char *line)
{
	snprintf(c->tail[c->ntail++ % TAIL_LINES], TAIL_COLS, "%s%s", pfx,
		 line);
}

static void print_tail(const struct child *c)
{
	unsigned from = c->ntail > TAIL_LINES ? c->ntail - TAIL_LINES : 0;

	fprintf(stderr, "restore: last output of slos (pid %d):\n", c->pid);
	for (unsigned i = from; i < c->ntail; i++)
		fprintf(stderr, "    %s\n", c->tail[i % TAIL_LINES]);
}

/* Moves one complete line (or a full buffer, or the rest at EOF) to dst
 * without its newline or carriage return. */
static bool take_line(struct lines *l, char *dst, size_t cap)
{
	char *nl = memchr(l->buf, '\n', l->len);
	size_t n, used;

	if (nl) {
		n = nl - l->buf;
		used = n + 1;
	} else if (l->len == sizeof(l->buf) || (l->eof && l->len)) {
		n = used = l->len;
	} else {
		return false;
	}
	while (n && l->buf[n - 1] == '\r')
		n--;
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, l->buf, n);
	dst[n] = 0;
	memmove(l->buf, l->buf + used, l->len - used);
	l->len -= used;
	return true;
}

static void fill(struct lines *l)
{
	ssize_t r = read(l->fd, l->buf + l->len, sizeof(l->buf) - l->len);

	if (r > 0)
		l->len += r;
	else if (r == 0 || (errno != EINTR && errno != EAGAIN))
		l->eof = true;
}

enum { GOT_OUT = 1, GOT_ERR = 2, GOT_EOF = 0, GOT_TIMEOUT = -1 };

/* Next line from either stream, GOT_EOF once both are closed, or
 * GOT_TIMEOUT at the deadline (also when the bench is interrupted). */
static int next_line(struct child *c, double deadline, char *dst, size_t cap)
{
	for (;;) {
		struct pollfd p[2] = {
		    {.fd = c->out.eof ? -1 : c->out.fd, .events = POLLIN},
		    {.fd = c->err.eof ? -1 : c->err.fd, .events = POLLIN},
		};
		double left;

		if (take_line(&c->out, dst, cap)) {
			keep_tail(c, "", dst);
			return GOT_OUT;
		}
		if (take_line(&c->err, dst, cap)) {
			keep_tail(c, "[stderr] ", dst);
			return GOT_ERR;
		}
		if (c->out.eof && c->err.eof)
			return GOT_EOF;
		left = deadline - now_s();
		if (interrupted || left <= 0)
			return GOT_TIMEOUT;
		/* +1: never wake just before the deadline and spin. */
		if (poll(p, 2, (int)(left * 1000) + 1) < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		if (p[0].revents)
			fill(&c->out);
		if (p[1].revents)
			fill(&c->err);
	}
}

/* Signals the child (sig 0: it is expected to exit by itself), keeps
 * reading so it never blocks on a full pipe, escalates to SIGKILL after
 * a grace period and reaps it. Returns the wait status. */
static int finish(struct child *c, int sig, double grace_s,
		  void (*on_err)(const char *line))
{
	double deadline = now_s() + grace_s;
	char line[LINE_BUF];
	bool killed = false;
	int st = 0, r;

	if (sig)
		kill(c->pid, sig);
	while ((r = next_line(c, deadline, line, sizeof(line))) != GOT_EOF) {
		if (r == GOT_ERR && on_err)
			on_err(line);
		if (r == GOT_TIMEOUT && !killed) {
			kill(c->pid, SIGKILL);
			killed = true;
			deadline = now_s() + KILL_GRACE_S;
		} else if (r == GOT_TIMEOUT) {
			break; /* a grandchild holds the pipes: stop reading */
		}
	}
	while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR)
		;
	live_pid = 0;
	close(c->out.fd);
	close(c->err.fd);
	return st;
}

/* Two per printf at most: each call gets its own of two buffers. */
static const char *status_str(int st)
{
	static char bufs[2][64];
	static unsigned next;
	char *b = bufs[next++ % 2];

	if (WIFEXITED(st))
		snprintf(b, sizeof(bufs[0]), "exit status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(b, sizeof(bufs[0]), "killed by signal %d",
			 WTERMSIG(st));
	else
		snprintf(b, sizeof(bufs[0]), "wait status 0x%x", st);
	return b;
}

/* --- what slos supports ----------------------------------------------- */

/* Runs argv and returns its stdout and stderr together (truncated). */
static void capture(char *const argv[], char *out, size_t cap)
{
	struct child *c = calloc(1, sizeof(*c));
	char line[LINE_BUF];
	double deadline;
	size_t len = 0;
	int r;

	if (!c)
		die("out of memory");
	spawn(c, argv);
	deadline = c->t0 + PROBE_S;
	out[0] = 0;
	while ((r = next_line(c, deadline, line, sizeof(line))) > 0) {
		size_t n = strlen(line);

		if (len + n + 2 > cap)
			continue;
		memcpy(out + len, line, n);
		out[len + n] = '\n';
		len += n + 1;
		out[len] = 0;
	}
	finish(c, r == GOT_TIMEOUT ? SIGKILL : 0, 1, NULL);
	free(c);
}

/*
 * `slos run` has option opt if its usage names it, or if `slos run opt
 * [arg]` alone is not refused as an unknown option (the usage text may lag
 * behind the parser; slos says "unknown or incomplete option", so an
 * option that takes a value gets one). Without --kernel, or with a
 * --restore directory that does not exist, no VM starts.
 */
static bool slos_has(const struct opts *o, const char *opt, const char *arg)
{
	char out[8192], refused[64];
	char *help[] = {(char *)o->slos, "run", "--help", NULL};
	char *probe[] = {(char *)o->slos, "run", (char *)opt, (char *)arg,
			 NULL};

	capture(help, out, sizeof(out));
	if (strstr(out, opt))
		return true;
	capture(probe, out, sizeof(out));
	snprintf(refused, sizeof(refused), "option '%s'", opt);
	return !strstr(out, refused) && !strstr(out, "unrecognized option");
}

/* --- measurements ----------------------------------------------------- */

static bool read_rss(pid_t pid, struct rss *r)
{
	char path[64], line[256];
	FILE *f;
	long kb;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	memset(r, 0, sizeof(*r));
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			r->vm = kb / 1024.0;
		else if (sscanf(line, "RssAnon: %ld", &kb) == 1)
			r->anon = kb / 1024.0;
		else if (sscanf(line, "RssFile: %ld", &kb) == 1)
			r->file = kb / 1024.0;
		else if (sscanf(line, "RssShmem: %ld", &kb) == 1)
			r->shmem = kb / 1024.0;
	}
	fclose(f);
	return r->vm > 0;
}

static uint64_t dir_blocks, dir_files;

static int add_file(const char *p, const struct stat *st, int flag,
		    struct FTW *f)
{
	(void)p;
	(void)f;
	if (flag == FTW_F) {
		dir_blocks += st->st_blocks;
		dir_files++;
	}
	return 0;
}

struct boot {
	double to_match, to_exit; /* s */
	struct rss rss;		  /* cold-booted slos at the snapshot line */
	char line[TAIL_COLS];
	struct stat mem; /* DIR/memory */
};

static void boot_and_snapshot(const struct opts *o, const char *dir,
			      struct boot *b)
{
	char *argv[24], line[LINE_BUF], memfile[4200];
	struct child *c = calloc(1, sizeof(*c));
	double deadline;
	bool matched = false;
	regex_t re;
	int n = 0, r, st;

	if (!c)
		die("out of memory");
	if (regcomp(&re, o->when, REG_EXTENDED | REG_NOSUB))
		die("--when '%s': not a POSIX extended regex", o->when);
	argv[n++] = (char *)o->slos;
	argv[n++] = "run";
	argv[n++] = "--kernel";
	argv[n++] = (char *)o->kernel;
	if (o->initrd) {
		argv[n++] = "--initrd";
		argv[n++] = (char *)o->initrd;
	}
	argv[n++] = "--vcpus";
	argv[n++] = (char *)o->vcpus;
	argv[n++] = "--mem";
	argv[n++] = (char *)o->mem_str;
	argv[n++] = "--cmdline";
	argv[n++] = (char *)o->cmdline;
	argv[n++] = "--snapshot-when";
	argv[n++] = (char *)o->when;
	argv[n++] = "--snapshot-to";
	argv[n++] = (char *)dir;
	argv[n] = NULL;

	memset(b, 0, sizeof(*b));
	spawn(c, argv);
	deadline = c->t0 + o->timeout_s;
	while ((r = next_line(c, deadline, line, sizeof(line))) > 0) {
		if (r != GOT_OUT || matched || regexec(&re, line, 0, NULL, 0))
			continue;
		/* RSS first: slos is pausing the VM and about to write. */
		b->to_match = now_s() - c->t0;
		read_rss(c->pid, &b->rss);
		copy_str(b->line, sizeof(b->line), line);
		matched = true;
	}
	b->to_exit = now_s() - c->t0;
	st = finish(c, r == GOT_TIMEOUT ? SIGTERM : 0, KILL_GRACE_S, NULL);
	regfree(&re);
	if (r == GOT_TIMEOUT || !matched || !WIFEXITED(st) || WEXITSTATUS(st)) {
		print_tail(c);
		die("full boot: %s after %.1f s (%s)",
		    interrupted	       ? "interrupted"
		    : r == GOT_TIMEOUT ? "timed out (--timeout)"
		    : !matched	       ? "no console line matched --when"
			       : "slos did not exit 0 after the snapshot",
		    now_s() - c->t0, status_str(st));
	}
	free(c);
	if (snprintf(memfile, sizeof(memfile), "%s/memory", dir) >=
		(int)sizeof(memfile) ||
	    stat(memfile, &b->mem))
		die("%s: %s (slos exited 0 but wrote no memory file)", memfile,
		    strerror(errno));
	nftw(dir, add_file, 16, FTW_PHYS);
}

static void show_err(const char *line)
{
	if (!strncmp(line, "slos:", 5))
		printf("      | %s\n", line);
}

static void restore_once(const struct opts *o, const char *dir, bool prefetch,
			 bool verbose, struct sample *s)
{
	char *argv[] = {(char *)o->slos,
			"run",
			"--restore",
			(char *)dir,
			"--stats",
			prefetch ? "--prefetch" : NULL,
			NULL};
	char line[LINE_BUF], first[TAIL_COLS] = "";
	struct child *c = calloc(1, sizeof(*c));
	bool running = false, got_line = false;
	double deadline;
	int r = GOT_TIMEOUT, st;

	if (!c)
		die("out of memory");
	spawn(c, argv);
	deadline =
	    c->t0 + (o->timeout_s < RESTORE_TIMEOUT_S ? o->timeout_s
						      : RESTORE_TIMEOUT_S);
	while (!(running && got_line) &&
	       (r = next_line(c, deadline, line, sizeof(line))) > 0) {
		const char *m;

		if (r == GOT_ERR && verbose)
			show_err(line);
		if (r == GOT_ERR && (m = strstr(line, RUNNING_LINE))) {
			s->to_running = (now_s() - c->t0) * 1e3;
			if (sscanf(m + strlen(RUNNING_LINE), "%lf",
				   &s->inproc) != 1)
				die("cannot parse '%s'", line);
			running = true;
		} else if (r == GOT_OUT && !got_line) {
			s->to_line = (now_s() - c->t0) * 1e3;
			/* The console line says the guest runs: sample the
			 * RSS before anything else moves it. */
			read_rss(c->pid, &s->rss);
			copy_str(first, sizeof(first), line);
			got_line = true;
			/* stderr may lag behind stdout a little. */
			if (!running && deadline > now_s() + 5)
				deadline = now_s() + 5;
		}
	}
	if (!(running && got_line)) {
		st = finish(c, SIGTERM, KILL_GRACE_S, NULL);
		print_tail(c);
		die("restore%s: %s after %.1f s (%s)",
		    prefetch ? " --prefetch" : "",
		    interrupted ? "interrupted"
		    : !got_line ? "no console line"
				: "no '" RUNNING_LINE "' line on stderr",
		    now_s() - c->t0, status_str(st));
	}
	if (verbose)
		printf("      first console line: %s\n", first);
	st = finish(c, SIGTERM, KILL_GRACE_S, verbose ? show_err : NULL);
	/* SIGTERM is how this bench ends it: slos's 128+15 is expected. */
	if (!WIFEXITED(st) ||
	    (WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 128 + SIGTERM)) {
		print_tail(c);
		die("restored slos ended with %s", status_str(st));
	}
	free(c);
}

/* --- test OS check: a restored run computes what an unbroken one does -- */

static bool result_of(char *const argv[], double timeout_s, char *res,
		      size_t cap, int *st)
{
	struct child *c = calloc(1, sizeof(*c));
	char line[LINE_BUF];
	int r;

	if (!c)
		die("out of memory");
	res[0] = 0;
	spawn(c, argv);
	while ((r = next_line(c, c->t0 + timeout_s, line, sizeof(line))) > 0)
		if (r == GOT_OUT && !strncmp(line, "checksum: result ", 17))
			copy_str(res, cap, line + 17);
	*st = finish(c, r == GOT_TIMEOUT ? SIGTERM : 0, KILL_GRACE_S, NULL);
	if (!res[0] || !WIFEXITED(*st) || WEXITSTATUS(*st))
		print_tail(c);
	free(c);
	return res[0] && WIFEXITED(*st) && !WEXITSTATUS(*st);
}

static bool check_testos(const struct opts *o, const char *dir)
{
	char *ref[] = {(char *)o->slos,
		       "run",
		       "--kernel",
		       (char *)o->kernel,
		       "--vcpus",
		       (char *)o->vcpus,
		       "--mem",
		       (char *)o->mem_str,
		       "--cmdline",
		       (char *)o->cmdline,
		       NULL};
	char *res[] = {(char *)o->slos, "run", "--restore", (char *)dir, NULL};
	char a[64], b[64];
	int sa, sb;
	bool ok_a = result_of(ref, o->timeout_s, a, sizeof(a), &sa);
	bool ok_b = result_of(res, o->timeout_s, b, sizeof(b), &sb);

	printf("  (e) correctness: uninterrupted run %s (%s), restored run "
	       "to the end %s (%s): %s\n",
	       ok_a ? a : "-", status_str(sa), ok_b ? b : "-", status_str(sb),
	       ok_a && ok_b && !strcmp(a, b) ? "same result" : "MISMATCH");
	return ok_a && ok_b && !strcmp(a, b);
}

/* --- statistics ------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank, like the test OS's stats: ceil(p/100 * n). */
static double pct(const struct series *s, unsigned p)
{
	size_t rank = (s->n * p + 99) / 100;

	return s->v[rank ? rank - 1 : 0];
}

/* One field (at byte offset off) of every sample, sorted; caller frees. */
static struct series sorted(const struct sample *smp, size_t n, size_t off)
{
	struct series s = {malloc(n * sizeof(double)), n};

	if (!s.v)
		die("out of memory");
	for (size_t i = 0; i < n; i++)
		s.v[i] = *(const double *)((const char *)&smp[i] + off);
	qsort(s.v, n, sizeof(*s.v), cmp_double);
	return s;
}

static double row(const char *label, const struct sample *smp, size_t n,
		  size_t off, const char *unit)
{
	struct series s = sorted(smp, n, off);
	double p50 = pct(&s, 50);

	printf("      %-30s %10.3f %10.3f %10.3f %10.3f %s\n", label, s.v[0],
	       p50, pct(&s, 99), s.v[n - 1], unit);
	free(s.v);
	return p50;
}

#define OFF(f) offsetof(struct sample, f)

static void run_series(const struct opts *o, const char *dir, bool prefetch,
		       const struct boot *b)
{
	struct sample *smp = calloc(o->n, sizeof(*smp));
	double alloc_mib = b->mem.st_blocks * 512.0 / (1 << 20);
	double rss50, run50, line50;

	if (!smp)
		die("out of memory");
	printf("  (%c) restore%s, n=%d (first run's slos --stats lines):\n",
	       prefetch ? 'd' : 'b', prefetch ? " --prefetch" : "", o->n);
	for (int i = 0; i < o->n; i++) {
		restore_once(o, dir, prefetch, i == 0, &smp[i]);
		if (interrupted)
			die("interrupted");
	}
	printf("      %-30s %10s %10s %10s %10s\n", "", "min", "p50", "p99",
	       "max");
	run50 = row("exec -> 'running' line", smp, o->n, OFF(to_running), "ms");
	row("in-process 'running after'", smp, o->n, OFF(inproc), "ms");
	line50 =
	    row("exec -> next console line", smp, o->n, OFF(to_line), "ms");
	rss50 = row("(c) VmRSS at first line", smp, o->n, OFF(rss.vm), "MiB");
	row("  RssAnon", smp, o->n, OFF(rss.anon), "MiB");
	row("  RssFile", smp, o->n, OFF(rss.file), "MiB");
	row("  RssShmem", smp, o->n, OFF(rss.shmem), "MiB");
	printf("      p50 VmRSS: %.1f%% of --mem %s, %.2fx the memory file's "
	       "%.1f MiB allocated, %.2fx the cold-booted slos's %.1f MiB\n",
	       100.0 * rss50 / (o->mem / 1048576.0), o->mem_str,
	       alloc_mib > 0 ? rss50 / alloc_mib : 0, alloc_mib,
	       b->rss.vm > 0 ? rss50 / b->rss.vm : 0, b->rss.vm);
	printf("      full boot / p50 restore-to-running:   %8.1fx\n",
	       b->to_match * 1e3 / run50);
	printf("      full boot / p50 restore-to-next-line: %8.1fx\n",
	       b->to_match * 1e3 / line50);
	free(smp);
}

/* --- main ------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: restore [--kernel F] [--initrd F|none] [--n N] "
		"[--slos PATH]\n"
		"               [--testos] [--vcpus N] [--mem SIZE] "
		"[--when REGEX]\n"
		"               [--timeout SECS] [--dir PARENT]\n"
		"  default: build/linux/vmlinux + build/linux/initramfs.cpio, "
		"2 vCPUs, 512M,\n"
		"  locktorture running, snapshot at its first 'Writes:' line; "
		"--testos:\n"
		"  build/guest/testos.elf, test=checksum, 256M, snapshot at "
		"'round 2/'.\n"
		"  N restores (default 10), then N with --prefetch. --timeout: "
		"the full boot's\n"
		"  limit (1200 s, --testos 120 s); a restore gets at most "
		"120 s.\n");
}

static void parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
	    {"kernel", required_argument, NULL, 'k'},
	    {"initrd", required_argument, NULL, 'i'},
	    {"n", required_argument, NULL, 'n'},
	    {"slos", required_argument, NULL, 's'},
	    {"testos", no_argument, NULL, 't'},
	    {"vcpus", required_argument, NULL, 'c'},
	    {"mem", required_argument, NULL, 'm'},
	    {"when", required_argument, NULL, 'w'},
	    {"timeout", required_argument, NULL, 'T'},
	    {"dir", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	bool initrd_set = false;
	char *end;
	int ch, idx = 0;
	long v;

	*o = (struct opts){.slos = "build/slos", .n = 10, .vcpus = "2"};
	while ((ch = getopt_long(argc, argv, "", lo, &idx)) != -1) {
		switch (ch) {
		case 'k':
			o->kernel = optarg;
			break;
		case 'i':
			o->initrd = optarg;
			initrd_set = true;
			break;
		case 'n':
			v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > 100000)
				goto bad;
			o->n = v;
			break;
		case 's':
			o->slos = optarg;
			break;
		case 't':
			o->testos = true;
			break;
		case 'c':
			v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > 255)
				goto bad;
			o->vcpus = optarg;
			break;
		case 'm':
			if (config__parse_size(optarg, &o->mem))
				goto bad;
			o->mem_str = optarg;
			break;
		case 'w':
			o->when = optarg;
			break;
		case 'T':
			o->timeout_s = strtod(optarg, &end);
			if (*end || !(o->timeout_s > 0))
				goto bad;
			break;
		case 'd':
			o->parent = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "restore: unexpected argument '%s'\n",
			argv[optind]);
		usage(stderr);
		exit(2);
	}
	if (o->testos && initrd_set) {
		fprintf(stderr,
			"restore: --initrd does not go with --testos\n");
		exit(2);
	}
	if (o->initrd && !strcmp(o->initrd, "none"))
		o->initrd = NULL;
	else if (!o->testos && !initrd_set)
		o->initrd = "build/linux/initramfs.cpio";
	if (!o->mem_str) {
		o->mem_str = o->testos ? "256M" : "512M";
		config__parse_size(o->mem_str, &o->mem);
	}
	if (o->testos) {
		o->kernel = o->kernel ? o->kernel : "build/guest/testos.elf";
		o->when = o->when ? o->when : "round 2/";
		o->timeout_s = o->timeout_s ? o->timeout_s : 120;
		snprintf(o->cmdline, sizeof(o->cmdline), "test=checksum");
		return;
	}
	if (!o->kernel)
		o->kernel = access("build/linux/vmlinux", R_OK)
				? "build/linux/bzImage"
				: "build/linux/vmlinux";
	/* Booting a Linux guest takes a minute or more under PVM. */
	o->timeout_s = o->timeout_s ? o->timeout_s : 1200;
	/* With user space: /init waits on the console for ever (stdin is
	 * /dev/null, so no line comes) instead of powering off; without: the
	 * kernel waits for a root disk that never comes. Either way
	 * locktorture keeps running. */
	snprintf(o->cmdline, sizeof(o->cmdline), "%s %s", LINUX_CMDLINE,
		 o->initrd ? "slos.console=1" : "root=/dev/vda rootwait");
	o->when = o->when ? o->when : "Writes: +Total:";
	return;
bad:
	fprintf(stderr, "restore: bad value '%s' for --%s\n", optarg,
		lo[idx].name);
	usage(stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_signal};
	char dir[4200];
	struct boot b;
	struct opts o;
	bool prefetch, ok = true;

	parse(argc, argv, &o);
	if (access(o.slos, X_OK))
		die("%s: %s (build it: make build/slos)", o.slos,
		    strerror(errno));
	if (access(o.kernel, R_OK))
		die("%s: %s%s", o.kernel, strerror(errno),
		    o.testos ? " (make build/guest/testos.elf)"
			     : " (scripts/build-linux-guest.sh build/linux, "
			       "or --testos)");
	if (o.initrd && access(o.initrd, R_OK))
		die("%s: %s", o.initrd, strerror(errno));
	if (!slos_has(&o, "--restore", "/nonexistent/slos-bench-probe") ||
	    !slos_has(&o, "--snapshot-when", "x"))
		die("%s has no snapshot support yet (`slos run --restore` / "
		    "`--snapshot-when` unknown); nothing to measure",
		    o.slos);
	prefetch = slos_has(&o, "--prefetch", NULL);

	/* Interrupted, the bench still removes its snapshot (atexit). */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	snprintf(tmp_parent, sizeof(tmp_parent), "%s/slos-restore-XXXXXX",
		 o.parent	    ? o.parent
		 : getenv("TMPDIR") ? getenv("TMPDIR")
				    : "/tmp");
	if (!mkdtemp(tmp_parent)) {
		fprintf(stderr, "restore: mkdtemp %s: %s\n", tmp_parent,
			strerror(errno));
		return 1;
	}
	atexit(cleanup);
	/* slos creates the snapshot directory itself. */
	snprintf(dir, sizeof(dir), "%s/snap", tmp_parent);

	printf("restore: %s%s%s, %s vCPUs, --mem %s, cmdline '%s'\n", o.kernel,
	       o.initrd ? " + " : "", o.initrd ? o.initrd : "", o.vcpus,
	       o.mem_str, o.cmdline);
	printf("  snapshot at /%s/ into %s\n", o.when, dir);
	fflush(stdout);
	boot_and_snapshot(&o, dir, &b);
	printf("  (a) full boot: exec -> snapshot line %.3f s, -> slos exit "
	       "(snapshot written) %.3f s\n",
	       b.to_match, b.to_exit);
	printf("      snapshot line: %s\n", b.line);
	printf("      cold-booted slos at that line: VmRSS %.1f MiB (anon "
	       "%.1f, file %.1f, shmem %.1f)\n",
	       b.rss.vm, b.rss.anon, b.rss.file, b.rss.shmem);
	printf("  (c) snapshot: memory file %.1f MiB apparent, %.1f MiB "
	       "allocated; the directory %lu file(s), %.1f MiB allocated\n",
	       b.mem.st_size / 1048576.0, b.mem.st_blocks * 512 / 1048576.0,
	       (unsigned long)dir_files, dir_blocks * 512 / 1048576.0);
	fflush(stdout);
	run_series(&o, dir, false, &b);
	if (prefetch)
		run_series(&o, dir, true, &b);
	else
		printf("  (d) skipped: %s run has no --prefetch\n", o.slos);
	if (o.testos)
		ok = check_testos(&o, dir);
	return ok ? 0 : 1;
}
