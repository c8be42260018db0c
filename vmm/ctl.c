// SPDX-License-Identifier: MIT
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/cluster.h"
#include "vmm/config.h"
#include "vmm/ctl.h"
#include "vmm/snapshot.h"
#include "vmm/vm.h"

static int ctl_dir(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (getenv("SLOS_CTL_DIR"))
		n = snprintf(buf, len, "%s", getenv("SLOS_CTL_DIR"));
	else if (geteuid() == 0)
		n = snprintf(buf, len, "/run/slos");
	else if (xdg && *xdg)
		n = snprintf(buf, len, "%s/slos", xdg);
	else
		n = snprintf(buf, len, "/tmp/slos-%u", (unsigned)geteuid());
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int ctl__path(const char *name, char *buf, size_t len)
{
	char dir[256];
	int n;

	if (!config__valid_name(name) || ctl_dir(dir, sizeof(dir)))
		return -1;
	n = snprintf(buf, len, "%s/%s.sock", dir, name);
	return n < 0 || (size_t)n >= len ||
			       (size_t)n >= sizeof(((struct sockaddr_un *)0)->sun_path)
		       ? -1
		       : 0;
}

static int connect_to(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

int ctl__listen(const char *name, char *path, size_t len)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char dir[256];
	int fd;

	if (ctl_dir(dir, sizeof(dir)) || ctl__path(name, path, len)) {
		fprintf(stderr, "slos: control socket path for '%s' too long\n",
			name);
		return -1;
	}
	if (mkdir(dir, 0700) && errno != EEXIST) {
		fprintf(stderr, "slos: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	fd = connect_to(path);
	if (fd >= 0) {
		close(fd);
		fprintf(stderr, "slos: a VM named '%s' is already running\n",
			name);
		return -1;
	}
	unlink(path); /* stale: its VM is gone */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 8)) {
		fprintf(stderr, "slos: %s: %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	chmod(path, 0600);
	return fd;
}

int ctl__parse(const char *line, char *cmd, size_t cmdlen, char *arg,
	       size_t arglen)
{
	size_t vl = strlen(CTL_VERSION);
	const char *p, *sp;

	if (strncmp(line, CTL_VERSION " ", vl + 1))
		return -1;
	p = line + vl + 1;
	sp = strchr(p, ' ');
	size_t n = sp ? (size_t)(sp - p) : strlen(p);
	if (!n || n >= cmdlen)
		return -1;
	memcpy(cmd, p, n);
	cmd[n] = 0;
	const char *a = sp ? sp + 1 : "";
	if (strlen(a) >= arglen)
		return -1;
	strcpy(arg, a);
	return 0;
}

static void reply(int fd, const char *s)
{
	size_t n = strlen(s), off = 0;

	while (off < n) {
		ssize_t w = write(fd, s + off, n - off);
		if (w <= 0)
			return;
		off += w;
	}
}

static void status(struct vm *vm, char *out, size_t len)
{
	uint64_t exits = 0;
	int n;

	for (unsigned i = 0; i < vm->cfg.nr_vcpus; i++)
		exits += vm->vcpus[i].st.exits;
	n = snprintf(
	    out, len,
	    CTL_VERSION " OK {\"name\":\"%s\",\"id\":\"%s\","
			"\"state\":\"%s\",\"vcpus\":%u,\"mem_mib\":%llu,"
			"\"uptime_s\":%.3f,\"pvm\":%s,\"exits\":%llu,"
			"\"faults\":%llu,\"hosts\":%u,\"where\":[",
	    vm->cfg.name, vm->id,
	    atomic_load(&vm->stopping) ? "stopping" : "running",
	    vm->cfg.nr_vcpus, (unsigned long long)(vm->cfg.mem_size >> 20),
	    (vm__now_ns() - vm->start_ns) / 1e9, vm->pvm ? "true" : "false",
	    (unsigned long long)exits, (unsigned long long)vm->fault.st.faults,
	    vm->cfg.nhosts);
	/* where[i]: the host vCPU i runs on. */
	for (unsigned i = 0; i < vm->cfg.nr_vcpus && n > 0 && (size_t)n < len;
	     i++)
		n += snprintf(out + n, len - n, "%s%u", i ? "," : "",
			      cluster__where(vm, i));
	if (n > 0 && (size_t)n < len)
		snprintf(out + n, len - n, "]}\n");
}

/* "jump VCPU HOST": move a vCPU, and answer once it is there. */
static void jump(struct vm *vm, int fd, const char *arg)
{
	char why[256], out[512], *end;
	unsigned long vcpu, host;
	unsigned from;

	errno = 0;
	vcpu = strtoul(arg, &end, 10);
	if (errno || end == arg || *end != ' ') {
		reply(fd, CTL_VERSION " ERR usage: jump VCPU HOST\n");
		return;
	}
	const char *h = end + 1;
	host = strtoul(h, &end, 10);
	if (errno || end == h || *end || vcpu > 0xffff || host > 0xffff) {
		reply(fd, CTL_VERSION " ERR usage: jump VCPU HOST\n");
		return;
	}
	from = cluster__where(vm, vcpu);
	if (cluster__jump_wait(vm, vcpu, host, 10000, why, sizeof(why)))
		snprintf(out, sizeof(out),
			 CTL_VERSION " ERR vCPU %lu to host "
				     "%lu: %s\n",
			 vcpu, host, why);
	else
		snprintf(out, sizeof(out),
			 CTL_VERSION " OK {\"vcpu\":%lu,"
				     "\"from\":%u,\"host\":%lu}\n",
			 vcpu, from, host);
	reply(fd, out);
}

/* "move-device DEV HOST": move a virtio device's backend, and answer
 * once it runs there. */
static void move_device(struct vm *vm, int fd, const char *arg)
{
	char dev[16], why[256], out[512], *end;
	const char *sp = strchr(arg, ' ');
	unsigned long host;

	if (!sp || (size_t)(sp - arg) >= sizeof(dev) || sp == arg) {
		reply(fd, CTL_VERSION " ERR usage: move-device DEV HOST\n");
		return;
	}
	memcpy(dev, arg, sp - arg);
	dev[sp - arg] = '\0';
	errno = 0;
	host = strtoul(sp + 1, &end, 10);
	if (errno || end == sp + 1 || *end || host > 0xffff) {
		reply(fd, CTL_VERSION " ERR usage: move-device DEV HOST\n");
		return;
	}
	uint64_t t0 = vm__now_ns();
	if (cluster__move_device(vm, dev, host, 10000, why, sizeof(why)))
		snprintf(out, sizeof(out),
			 CTL_VERSION " ERR %s to host %lu: %s\n", dev, host,
			 why);
	else
		snprintf(out, sizeof(out),
			 CTL_VERSION " OK {\"device\":\"%s\",\"host\":%lu,"
				     "\"ms\":%.1f}\n",
			 dev, host, (vm__now_ns() - t0) / 1e6);
	reply(fd, out);
}

/* "snapshot /abs/DIR [--stop]": the client made DIR absolute. */
static void snapshot(struct vm *vm, int fd, char *arg)
{
	static const char flag[] = " --stop";
	char err[512], out[CTL_LINE_MAX + 600];
	size_t n = strlen(arg), fl = sizeof(flag) - 1;
	bool stop = n > fl && !strcmp(arg + n - fl, flag);

	if (stop)
		arg[n - fl] = 0;
	if (arg[0] != '/') {
		reply(fd, CTL_VERSION " ERR snapshot needs an absolute "
				      "directory\n");
		return;
	}
	if (snapshot__vm(vm, arg, stop, err, sizeof(err))) {
		snprintf(out, sizeof(out), CTL_VERSION " ERR %s\n", err);
	} else {
		snprintf(out, sizeof(out),
			 CTL_VERSION " OK {\"snapshot\":\"%s\",\"stopped\":%s}\n",
			 arg, stop ? "true" : "false");
	}
	reply(fd, out);
}

/* "stat": --stats' lines, now, from every host (members asked, up to
 * 2 s); several lines, to the end of the answer. */
static void stat_all(struct vm *vm, int fd)
{
	char *txt = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&txt, &n);

	if (!f) {
		reply(fd, CTL_VERSION " ERR out of memory\n");
		return;
	}
	fprintf(f, CTL_VERSION " OK slos stat %s: %u vCPUs, %u hosts\n",
		vm->cfg.name ? vm->cfg.name : "", vm->cfg.nr_vcpus,
		vm->cfg.nhosts < 1 ? 1 : vm->cfg.nhosts);
	vm__print_stats(vm, f);
	cluster__stat_members(vm, f, 2000);
	fclose(f);
	reply(fd, txt);
	free(txt);
}

void ctl__serve(struct vm *vm, int listen_fd)
{
	char line[CTL_LINE_MAX], cmd[32], arg[CTL_LINE_MAX], out[CTL_LINE_MAX];
	size_t n = 0;
	int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	/* Nor on one that does not read its (long: stat) answer. */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO,
		   &(struct timeval){ .tv_sec = 1 }, sizeof(struct timeval));
	/* A client gets one second to send its line: never stall the VM's
	 * main loop on a silent peer. */
	while (n < sizeof(line) - 1) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 1000) <= 0)
			break;
		ssize_t r = read(fd, line + n, sizeof(line) - 1 - n);
		if (r <= 0)
			break;
		n += r;
		if (memchr(line, '\n', n))
			break;
	}
	line[n] = 0;
	char *nl = strchr(line, '\n');
	if (!nl) {
		reply(fd, CTL_VERSION " ERR incomplete request\n");
		goto out;
	}
	*nl = 0;
	if (ctl__parse(line, cmd, sizeof(cmd), arg, sizeof(arg))) {
		reply(fd, CTL_VERSION " ERR bad request (want '" CTL_VERSION
				      " <command>')\n");
	} else if (!strcmp(cmd, "status")) {
		status(vm, out, sizeof(out));
		reply(fd, out);
	} else if (!strcmp(cmd, "stop")) {
		reply(fd, CTL_VERSION " OK {\"stopping\":true}\n");
		vm__stop(vm, VM_EXIT_OK, "stopped by control socket");
	} else if (!strcmp(cmd, "snapshot")) {
		snapshot(vm, fd, arg);
	} else if (!strcmp(cmd, "jump")) {
		jump(vm, fd, arg);
	} else if (!strcmp(cmd, "move-device")) {
		move_device(vm, fd, arg);
	} else if (!strcmp(cmd, "stat")) {
		stat_all(vm, fd);
	} else {
		snprintf(out, sizeof(out), CTL_VERSION " ERR unknown command '%.64s'\n",
			 cmd);
		reply(fd, out);
	}
out:
	close(fd);
}

static int request(const char *name, const char *req, char *resp, size_t cap,
		   bool quiet);

/* `slos ctl` alone: every VM whose socket answers, one status a line. */
static int list(void)
{
	char dir[256], resp[CTL_LINE_MAX];
	struct dirent *e;
	DIR *d;
	int found = 0;

	if (ctl_dir(dir, sizeof(dir)) || !(d = opendir(dir))) {
		fprintf(stderr, "slos: ctl: no VMs (no %s)\n", dir);
		return 1;
	}
	while ((e = readdir(d))) {
		char name[256];
		size_t n = strlen(e->d_name);
		if (n < 6 || n - 5 >= sizeof(name) ||
		    strcmp(e->d_name + n - 5, ".sock"))
			continue;
		memcpy(name, e->d_name, n - 5);
		name[n - 5] = 0;
		if (request(name, CTL_VERSION " status\n", resp, sizeof(resp),
			    true))
			continue;
		fputs(resp, stdout);
		found++;
	}
	closedir(d);
	if (!found)
		fprintf(stderr, "slos: ctl: no VMs are running (in %s)\n", dir);
	return found ? 0 : 1;
}

int ctl__client(int argc, char **argv)
{
	char path[256], req[CTL_LINE_MAX];
	static char resp[1 << 20]; /* `stat` answers with many lines */
	char abs[CTL_LINE_MAX];
	int len;

	if (argc == 1)
		return list();
	if (argc < 3) {
		fprintf(stderr, "usage: slos ctl [NAME status|stop|stat|"
				"jump VCPU HOST|move-device DEV HOST|\n"
				"                 snapshot DIR [--stop]]\n");
		return 2;
	}
	/* The VM resolves paths from its own directory: send ours. */
	if (!strcmp(argv[2], "snapshot")) {
		if (argc < 4 || argc > 5 ||
		    (argc == 5 && strcmp(argv[4], "--stop"))) {
			fprintf(stderr, "usage: slos ctl NAME snapshot DIR "
					"[--stop]\n");
			return 2;
		}
		if (argv[3][0] != '/') {
			char cwd[CTL_LINE_MAX / 2];
			if (!getcwd(cwd, sizeof(cwd)) ||
			    snprintf(abs, sizeof(abs), "%s/%s", cwd,
				     argv[3]) >= (int)sizeof(abs)) {
				fprintf(stderr, "slos: ctl: path too long\n");
				return 2;
			}
			argv[3] = abs;
		}
	}
	if (ctl__path(argv[1], path, sizeof(path))) {
		fprintf(stderr, "slos: ctl: bad VM name '%s'\n", argv[1]);
		return 2;
	}
	len = snprintf(req, sizeof(req), CTL_VERSION " %s", argv[2]);
	for (int i = 3; i < argc && len > 0 && (size_t)len < sizeof(req); i++)
		len += snprintf(req + len, sizeof(req) - len, " %s", argv[i]);
	if (len < 0 || (size_t)len >= sizeof(req) - 1) {
		fprintf(stderr, "slos: ctl: request too long\n");
		return 2;
	}
	req[len++] = '\n';
	req[len] = 0;
	return request(argv[1], req, resp, sizeof(resp), false);
}

/* Send one request, print (or, quiet, keep) the answer's payload. */
static int request(const char *name, const char *req, char *resp, size_t cap,
		   bool quiet)
{
	const char *ok = CTL_VERSION " OK ", *er = CTL_VERSION " ERR ";
	char path[256];
	size_t n = 0;
	int fd;

	if (ctl__path(name, path, sizeof(path)) ||
	    (fd = connect_to(path)) < 0) {
		if (!quiet)
			fprintf(stderr, "slos: ctl: no VM '%s' (%s: %s)\n",
				name, path, strerror(errno));
		return 2;
	}
	reply(fd, req);
	while (n < cap - 1) {
		ssize_t r = read(fd, resp + n, cap - 1 - n);
		if (r <= 0)
			break;
		n += r;
	}
	close(fd);
	resp[n] = 0;
	if (!strncmp(resp, ok, strlen(ok))) {
		memmove(resp, resp + strlen(ok), n - strlen(ok) + 1);
		if (!quiet)
			fputs(resp, stdout);
		return 0;
	}
	if (!quiet && !strncmp(resp, er, strlen(er)))
		fprintf(stderr, "slos: ctl: %s", resp + strlen(er));
	else if (!quiet)
		fprintf(stderr, "slos: ctl: malformed reply from '%s'\n", name);
	return 1;
}
