// SPDX-License-Identifier: MIT
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/integration/harness.h"
#include "vmm/pvm.h"

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

/* fork + exec with stdin/stdout/stderr on in/out. Returns only once the
 * child has exec'd (or died trying): a signal a test sends "0.01 s after
 * start" must reach slos, not the forked copy of the test process, whose
 * inherited handlers would swallow it. The child starts with no blocked
 * or ignored signals, whatever criterion's worker had. */
static pid_t launch(const char *const *argv, int in, int out)
{
	int sync[2];
	char c;

	if (pipe2(sync, O_CLOEXEC))
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (int s = 1; s < NSIG; s++)
			signal(s, SIG_DFL);
		close(sync[0]);
		dup2(in, 0);
		dup2(out, 1);
		dup2(out, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(sync[1]);
	if (pid > 0)
		while (read(sync[0], &c, 1) < 0 && errno == EINTR)
			;
	close(sync[0]);
	return pid;
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
	pid_t pid = launch(argv, in[0], out[1]);
	close(out[1]);
	close(in[0]);
	if (pid < 0) {
		close(in[1]);
		close(out[0]);
		r->status = -1;
		return;
	}
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

/* ---- background processes ---- */

double harness__now(void)
{
	return now();
}

bool harness__asan(void)
{
	return strstr(harness__bin(), "asan");
}

double harness__time_scale(void)
{
	/* ASan triples the VMM's own work; the lab (QEMU TCG under the lab's
	 * KVM) is as slow again for everything. */
	return (harness__asan() ? 3 : 1) *
	       (pvm__host_emulated() ? 3 : 1);
}

static void *proc_reader(void *arg)
{
	struct proc *p = arg;
	char buf[4096];

	for (;;) {
		ssize_t got = read(p->fd, buf, sizeof(buf));
		if (got < 0 && errno == EINTR)
			continue;
		pthread_mutex_lock(&p->m);
		if (got > 0) {
			char *o = realloc(p->out, p->len + got + 1);
			if (o) {
				p->out = o;
				memcpy(p->out + p->len, buf, got);
				p->len += got;
				p->out[p->len] = 0;
			}
		} else {
			p->eof = true;
		}
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->m);
		if (got <= 0)
			return NULL;
	}
}

int harness__spawn(struct proc *p, const char *const *argv)
{
	int out[2];
	pthread_condattr_t ca;

	memset(p, 0, sizeof(*p));
	p->status = -1;
	p->fd = -1;
	p->out = calloc(1, 1);
	pthread_mutex_init(&p->m, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (!p->out || pipe2(out, O_CLOEXEC))
		return -1;
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	p->t0 = now();
	pid_t pid = null < 0 ? -1 : launch(argv, null, out[1]);
	if (null >= 0)
		close(null);
	if (pid < 0) {
		close(out[0]);
		close(out[1]);
		return -1;
	}
	close(out[1]);
	p->pid = pid;
	p->fd = out[0];
	if (pthread_create(&p->reader, NULL, proc_reader, p)) {
		close(p->fd);
		p->fd = -1;
		p->eof = true;
		return -1;
	}
	return 0;
}

int harness__start(struct proc *p, ...)
{
	const char *argv[64];
	int n = 0;
	va_list ap;

	argv[n++] = harness__bin();
	va_start(ap, p);
	for (const char *a; n < 63 && (a = va_arg(ap, const char *));)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	return harness__spawn(p, argv);
}

static void deadline_in(struct timespec *ts, double secs)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	double t = ts->tv_sec + ts->tv_nsec / 1e9 + secs;
	ts->tv_sec = (time_t)t;
	ts->tv_nsec = (long)((t - ts->tv_sec) * 1e9);
}

bool harness__wait_output(struct proc *p, const char *text, double timeout_s)
{
	struct timespec ts;
	bool seen;

	deadline_in(&ts, timeout_s);
	pthread_mutex_lock(&p->m);
	while (!(seen = p->out && strstr(p->out, text)) && !p->eof)
		if (pthread_cond_timedwait(&p->cv, &p->m, &ts) == ETIMEDOUT) {
			seen = p->out && strstr(p->out, text);
			break;
		}
	pthread_mutex_unlock(&p->m);
	return seen;
}

bool harness__output_has(struct proc *p, const char *text)
{
	pthread_mutex_lock(&p->m);
	bool has = p->out && strstr(p->out, text);
	pthread_mutex_unlock(&p->m);
	return has;
}

char *harness__output(struct proc *p)
{
	pthread_mutex_lock(&p->m);
	char *o = strdup(p->out ? p->out : "");
	pthread_mutex_unlock(&p->m);
	return o;
}

int harness__wait(struct proc *p, double timeout_s)
{
	double end = now() + timeout_s;
	int st;

	if (!p->pid)
		return p->status;
	for (;;) {
		pid_t r = waitpid(p->pid, &st, WNOHANG);
		if (r == p->pid)
			break;
		if (r < 0 && errno != EINTR)
			return -1;
		if (now() >= end)
			return -1;
		usleep(2000);
	}
	p->t_exit = now();
	p->pid = 0;
	p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return p->status;
}

int harness__stop(struct proc *p, int sig, double timeout_s)
{
	if (p->pid)
		kill(p->pid, sig);
	return harness__wait(p, timeout_s);
}

void harness__proc_free(struct proc *p)
{
	struct timespec ts;

	if (p->pid && harness__wait(p, 0) < 0) {
		kill(p->pid, SIGKILL);
		harness__wait(p, 10);
	}
	if (p->fd >= 0) {
		/* Its children may hold the pipe open: give them a few
		 * seconds, then stop reading. */
		deadline_in(&ts, 5);
		pthread_mutex_lock(&p->m);
		while (!p->eof)
			if (pthread_cond_timedwait(&p->cv, &p->m, &ts) ==
			    ETIMEDOUT)
				break;
		bool eof = p->eof;
		pthread_mutex_unlock(&p->m);
		if (!eof)
			pthread_cancel(p->reader);
		pthread_join(p->reader, NULL);
		close(p->fd);
		p->fd = -1;
	}
	free(p->out);
	p->out = NULL;
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->m);
}

int harness__daemon(struct proc *p, const char *keyfile, char *addr,
		    size_t addr_len)
{
	return harness__daemon_at(p, "127.0.0.1:0", keyfile, addr, addr_len);
}

int harness__daemon_at(struct proc *p, const char *listen,
		       const char *keyfile, char *addr, size_t addr_len)
{
	static const char said[] = "slos host: listening on ";

	if (harness__start(p, "host", "--listen", listen, "--key", keyfile,
			   NULL))
		return -1;
	if (!harness__wait_output(p, said, 20 * harness__time_scale()))
		return -1;
	pthread_mutex_lock(&p->m);
	const char *a = strstr(p->out, said) + strlen(said);
	snprintf(addr, addr_len, "%.*s", (int)strcspn(a, " \r\n"), a);
	pthread_mutex_unlock(&p->m);
	return 0;
}

/* ---- processes, from /proc ---- */

void harness__subreaper(void)
{
	prctl(PR_SET_CHILD_SUBREAPER, 1);
}

/* ppid and state of pid: 0, or -1 if it is gone. */
static int proc_stat(pid_t pid, pid_t *ppid, char *state)
{
	char path[64], buf[1024];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* "pid (comm) S ppid ...": comm may hold anything, even ')' */
	char *e = strrchr(buf, ')');
	int pp;
	if (!e || sscanf(e + 1, " %c %d", state, &pp) != 2)
		return -1;
	*ppid = pp;
	return 0;
}

/* Its command line, NUL-separated, into buf; the length (0: none). */
static size_t proc_cmdline(pid_t pid, char *buf, size_t cap)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, cap - 1, f);
	fclose(f);
	buf[n] = 0;
	return n;
}

void harness__describe(pid_t pid, char *out, size_t len)
{
	char cmd[512];
	size_t n = proc_cmdline(pid, cmd, sizeof(cmd));

	for (size_t i = 0; i + 1 < n; i++)
		if (!cmd[i])
			cmd[i] = ' ';
	snprintf(out, len, "%d (%s)", (int)pid, n ? cmd : "?");
}

size_t harness__threads(pid_t pid, char *out, size_t len)
{
	char path[320], comm[32], wchan[64], stat[512];
	size_t at = 0;
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	out[0] = 0;
	if (!(d = opendir(path)))
		return 0;
	while ((e = readdir(d)) && at + 1 < len) {
		if (e->d_name[0] == '.')
			continue;
		char state = '?';
		comm[0] = wchan[0] = 0;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", (int)pid,
			 e->d_name);
		FILE *f = fopen(path, "r");
		if (f && fgets(stat, sizeof(stat), f)) {
			/* "tid (comm) S ...": comm may hold spaces */
			char *l = strchr(stat, '('), *r = strrchr(stat, ')');
			if (l && r && r > l) {
				snprintf(comm, sizeof(comm), "%.*s",
					 (int)(r - l - 1), l + 1);
				state = r[2];
			}
		}
		if (f)
			fclose(f);
		snprintf(path, sizeof(path), "/proc/%d/task/%s/wchan",
			 (int)pid, e->d_name);
		if ((f = fopen(path, "r"))) {
			if (!fgets(wchan, sizeof(wchan), f))
				wchan[0] = 0;
			fclose(f);
		}
		at += snprintf(out + at, len - at, "%s%s %s %c %s",
			       at ? "; " : "", e->d_name, comm, state,
			       wchan[0] && strcmp(wchan, "0") ? wchan : "-");
		if (at >= len)
			at = len - 1;
	}
	closedir(d);
	return at;
}

size_t harness__backtrace(pid_t pid, char *out, size_t len)
{
	char cmd[160], line[512];
	size_t at = 0;

	out[0] = 0;
	snprintf(cmd, sizeof(cmd),
		 "timeout 20 gdb -p %d -batch -nx -ex 'thread apply all bt 25' "
		 "2>/dev/null",
		 (int)pid);
	FILE *f = popen(cmd, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if ((line[0] == '#' || !strncmp(line, "Thread ", 7)) &&
		    at + 1 < len) {
			at += snprintf(out + at, len - at, "%s", line);
			if (at >= len)
				at = len - 1;
		}
	pclose(f);
	return at;
}

static bool runs_slos(pid_t pid, const char *argv1)
{
	char cmd[512];
	size_t n = proc_cmdline(pid, cmd, sizeof(cmd));

	if (!n)
		return false;
	const char *base = strrchr(cmd, '/');
	base = base ? base + 1 : cmd;
	size_t l0 = strlen(cmd);
	return !strcmp(base, "slos") && l0 + 1 < n &&
	       !strcmp(cmd + l0 + 1, argv1);
}

static int scan(pid_t ancestor, bool direct, const char *argv1, pid_t *out,
		int max)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int count = 0;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		pid_t pp;
		char st;

		if (*end || pid <= 0 || proc_stat(pid, &pp, &st) || st == 'Z')
			continue;
		bool under = pp == ancestor;
		/* up the tree, a bounded number of steps */
		for (int k = 0; !direct && !under && pp > 1 && k < 64; k++) {
			char s2;
			if (proc_stat(pp, &pp, &s2))
				break;
			under = pp == ancestor;
		}
		if (!under || (argv1 && !runs_slos(pid, argv1)))
			continue;
		if (count < max)
			out[count] = pid;
		count++;
	}
	closedir(d);
	return count;
}

int harness__descendants(pid_t ancestor, const char *argv1, pid_t *out,
			 int max)
{
	return scan(ancestor, false, argv1, out, max);
}

int harness__children(pid_t parent, pid_t *out, int max)
{
	return scan(parent, true, NULL, out, max);
}

int harness__listen_ports(pid_t pid, unsigned *ports, int max)
{
	static const char *const tables[] = { "tcp", "tcp6" };
	unsigned long inodes[256];
	int ni = 0, count = 0;
	char path[320], link[96], line[512];
	DIR *d;
	struct dirent *e;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d)) && ni < 256) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%s", (int)pid,
			 e->d_name);
		ssize_t n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = 0;
		unsigned long ino;
		if (sscanf(link, "socket:[%lu]", &ino) == 1)
			inodes[ni++] = ino;
	}
	closedir(d);
	for (int t = 0; t < 2; t++) {
		snprintf(path, sizeof(path), "/proc/%d/net/%s", (int)pid,
			 tables[t]);
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			char local[64];
			unsigned st, port;
			unsigned long ino;
			/* sl local rem st tx:rx tr:when retr uid timeout inode */
			if (sscanf(line,
				   " %*s %63s %*s %x %*s %*s %*s %*s %*s %lu",
				   local, &st, &ino) != 3 ||
			    st != 0x0A)
				continue;
			char *c = strrchr(local, ':');
			if (!c || sscanf(c + 1, "%x", &port) != 1)
				continue;
			for (int i = 0; i < ni; i++)
				if (inodes[i] == ino) {
					if (count < max)
						ports[count] = port;
					count++;
				}
		}
		fclose(f);
	}
	return count;
}
