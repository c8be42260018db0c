// SPDX-License-Identifier: MIT
/*
 * virtio devices under a real Linux guest (the project kernel, whose
 * virtio drivers are built in; it finds the devices through the DSDT).
 * The guest's /init runs a script from the first disk (slos.run=vda:...),
 * so each boot checks blk reads and writes, rng and the console at once;
 * the host then reads the images back with debugfs, without mounting.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/harness.h"

#define NO_TORTURE "rcutorture.torture_type=none locktorture.torture_type=none"

static const char *guest(const char *f)
{
	static __thread char p[4][256];
	static __thread unsigned n;
	char *b = p[n++ % 4];

	snprintf(b, sizeof(p[0]), "build/linux/%s", f);
	return b;
}

struct images {
	char dir[64], data[96], ro[96], ro_arg[104];
};

/* The guest's checks: checksums of the files the host put there, a file
 * written and synced, the read-only disk refusing a write, rng bytes. */
static const char body_sh[] =
    "cat /proc/consoles\n"
    "echo ON-CPU $(cut -d' ' -f39 /proc/self/stat)\n"
    "sha256sum hello.txt rand.bin\n"
    "i=0; while [ $i -lt 3000 ]; do echo \"line $i\"; i=$((i+1)); done"
    " > out.txt\n"
    "sync\n"
    "echo RO=$(cat /sys/block/vdb/ro)\n"
    "dd if=/dev/zero of=/dev/vdb bs=512 count=1 2>/dev/null;"
    " echo RO-WRITE rc=$?\n"
    "echo RO-READ $(head -c 6 /dev/vdb)\n"
    "echo RNG-BYTES $(dd if=/dev/hwrng bs=64 count=4 2>/dev/null | wc -c)\n"
    "echo RNG-SOURCE $(cat /sys/class/misc/hw_random/rng_current)\n"
    "echo SYNCED-MARK\n";

/* slos.cpu1: the checks run on CPU 1 and the devices interrupt it (the
 * VM over hosts has CPU 1 on host 1); slos.hold: the guest stays up for
 * a SIGKILL of the VMM. */
static const char run_sh[] =
    "if grep -q slos.cpu1 /proc/cmdline; then\n"
    "  for i in $(grep virtio /proc/interrupts | cut -d: -f1); do\n"
    "    echo 2 > /proc/irq/$i/smp_affinity; done\n"
    "  taskset -c 1 sh body.sh\n"
    "else sh body.sh; fi\n"
    "grep virtio /proc/interrupts\n"
    "grep -q slos.hold /proc/cmdline && sleep 600\n"
    "true\n";

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	cr_assert(!system(cmd), "failed: %s", cmd);
}

static void make_images(struct images *im)
{
	char path[128];
	FILE *f;

	strcpy(im->dir, "/tmp/slos-virtio-XXXXXX");
	cr_assert(mkdtemp(im->dir));
	snprintf(im->data, sizeof(im->data), "%s/data.img", im->dir);
	snprintf(im->ro, sizeof(im->ro), "%s/ro.img", im->dir);
	snprintf(im->ro_arg, sizeof(im->ro_arg), "%s,ro", im->ro);
	sh("mkdir %s/files && echo hello-disk > %s/files/hello.txt && "
	   "head -c 300000 /dev/urandom > %s/files/rand.bin",
	   im->dir, im->dir, im->dir);
	snprintf(path, sizeof(path), "%s/files/run.sh", im->dir);
	f = fopen(path, "w");
	cr_assert(f);
	fputs(run_sh, f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/files/body.sh", im->dir);
	f = fopen(path, "w");
	cr_assert(f);
	fputs(body_sh, f);
	fclose(f);
	sh("cd %s/files && sha256sum hello.txt rand.bin > ../sums", im->dir);
	sh("truncate -s 16M %s && mke2fs -q -t ext2 -d %s/files %s", im->data,
	   im->dir, im->data);
	sh("printf 'RODISK' > %s && truncate -s 1M %s && sha256sum %s > "
	   "%s/ro.sum",
	   im->ro, im->ro, im->ro, im->dir);
}

/* What the guest must have printed and left on the disks. */
static void check_guest(const char *out, const struct images *im)
{
	char line[256], path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/sums", im->dir);
	f = fopen(path, "r");
	cr_assert(f);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		cr_expect(strstr(out, line), "guest did not read '%s':\n%s",
			  line, out);
	}
	fclose(f);
	cr_expect(strstr(out, "RO=1"), "vdb not read-only:\n%s", out);
	cr_expect(!strstr(out, "RO-WRITE rc=0"), "write to ro disk:\n%s", out);
	cr_expect(strstr(out, "RO-READ RODISK"), "%s", out);
	cr_expect(strstr(out, "RNG-BYTES 256"), "%s", out);
	cr_expect(strstr(out, "RNG-SOURCE virtio_rng"), "%s", out);
	cr_expect(strstr(out, "SYNCED-MARK"), "%s", out);
	cr_expect(!strstr(out, "needs a reset"), "%s", out);
	/* The written file, read back from the image by the host. */
	sh("i=0; while [ $i -lt 3000 ]; do echo \"line $i\"; i=$((i+1)); "
	   "done > %s/out.want",
	   im->dir);
	sh("debugfs -R 'dump /out.txt %s/out.got' %s 2>/dev/null && cmp "
	   "%s/out.want %s/out.got",
	   im->dir, im->data, im->dir, im->dir);
	sh("sha256sum -c --quiet %s/ro.sum", im->dir);
}

static void cleanup(struct images *im)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", im->dir);
	if (system(cmd))
		cr_log_warn("cannot remove %s", im->dir);
}

static void need_guest(void)
{
	if (access(guest("vmlinux"), R_OK) ||
	    access(guest("initramfs.cpio"), R_OK))
		cr_skip_test("no build/linux/vmlinux");
	if (system("command -v debugfs >/dev/null && command -v mke2fs "
		   ">/dev/null"))
		cr_skip_test("no e2fsprogs");
}

/*
 * One host, the console on hvc0: the disks, rng and console work, and a
 * write the guest synced is in the image after the VMM is killed with
 * SIGKILL (VIRTIO_BLK_F_FLUSH: fsync, not just a write to the page
 * cache would do here, but the guest's flush must not be lost either).
 */
Test(linux_virtio, blk_rng_console_kill9, .timeout = 600)
{
	struct images im;
	struct proc p;
	char *out;

	need_guest();
	make_images(&im);
	cr_assert(!harness__start(
	    &p, "run", "--kernel", guest("vmlinux"), "--initrd",
	    guest("initramfs.cpio"), "--mem", "256M", "--disk", im.data,
	    "--disk", im.ro_arg, "--rng", "--console", "virtio", "--cmdline",
	    "console=hvc0 panic=-1 " NO_TORTURE
	    " slos.run=vda:run.sh slos.hold",
	    NULL));
	bool marked = harness__wait_output(&p, "SYNCED-MARK",
					   420 * harness__time_scale());
	out = harness__output(&p);
	cr_assert(marked, "no SYNCED-MARK:\n%s", out);
	cr_expect(strstr(out, "SLOS-GUEST-UP"), "%s", out);
	/* /proc/consoles: hvc0 is the console, 229:0 its device. */
	cr_expect(strstr(out, "229:0"), "console not hvc0:\n%s", out);
	harness__stop(&p, SIGKILL, 10);
	check_guest(out, &im);
	free(out);
	harness__proc_free(&p);
	cleanup(&im);
}

/*
 * CPU 1 on host 1 with the data disk (host=1), CPU 0 on host 0 with the
 * read-only disk and the rng: the checks run on CPU 1, so its accesses to
 * host 0's devices are forwarded there (and CPU 0's to host 1's), the
 * queues' buffers move through the DSM, and the devices' interrupts,
 * bound to CPU 1, go through host 0's IOAPIC and cross the fabric. The
 * guest powers off and every host ends. (The boot CPU stays on host 0:
 * PVM's system-call hook does not follow a jump yet.)
 */
Test(linux_virtio, blk_rng_over_hosts, .timeout = 900)
{
	struct images im;
	struct run r;

	/* The lab's nested KVM serves a DSM fault in 1-2 ms, and Linux on
	 * a second host takes ~150k of them: there both CPUs stay on host
	 * 0 (the I/O then is local, its pages still over the DSM). */
	bool lab = getenv("SLOS_IN_LAB") != NULL;

	char data_arg[128];

	need_guest();
	make_images(&im);
	snprintf(data_arg, sizeof(data_arg), "%s,host=1", im.data);
	harness__run(&r, 800, NULL, "run", "--kernel", guest("vmlinux"),
		     "--initrd", guest("initramfs.cpio"), "--mem", "256M",
		     "--vcpus", "2", "--local-hosts", "2", "--vcpu-map",
		     lab ? "0,0" : "0,1", "--disk", data_arg, "--disk",
		     im.ro_arg, "--rng", "--stats", "--cmdline",
		     "console=ttyS0 panic=-1 " NO_TORTURE
		     " slos.run=vda:run.sh slos.cpu1",
		     NULL);
	cr_expect_eq(r.status, 0, "status %d after %.0fs:\n%s", r.status,
		     r.secs, r.out);
	cr_expect(harness__has(&r, "ON-CPU 1"), "%s", r.out);
	cr_expect(harness__has(&r, "SLOS-RUN rc=0"), "%s", r.out);
	cr_expect(harness__has(&r, "guest powered off"), "%s", r.out);
	/* The data disk is host 1's, the read-only one host 0's: each
	 * host forwarded accesses to the other's. */
	cr_expect(harness__has(&r, "slos: blk0 notifies"), "%s", r.out);
	cr_expect(harness__has(&r, "slos: blk1 notifies"), "%s", r.out);
	cr_expect(harness__has(&r, "host 0 forwarded"), "%s", r.out);
	if (!lab)
		cr_expect(harness__has(&r, "host 1 forwarded"), "%s", r.out);
	if (!lab)
		cr_expect(!harness__has(&r, "interrupts for other hosts' "
					    "vCPUs: caught 0,"),
			  "%s", r.out);
	check_guest(r.out, &im);
	cr_log_info("Linux, CPU 1 on host 1 doing the I/O, its disk there, "
		    "the others on host 0: powered off after %.1f s",
		    r.secs);
	harness__free(&r);
	cleanup(&im);
}

static const char move_sh[] =
    /* At least 150 records and 20 s: the moves must come while it
     * writes, whatever the KVM's speed (the lab's is far faster). */
    "echo WRITE-LOOP-START\n"
    "t0=$(date +%s); i=0\n"
    "while [ $i -lt 150 ] || [ $(($(date +%s) - t0)) -lt 20 ]; do"
    " echo \"record $i abcdefghijklmnopqrstuvwxyz\" >> log.txt; sync;"
    " i=$((i+1)); done\n"
    "echo WRITE-LOOP-DONE n=$i\n"
    "echo RNG-BYTES $(dd if=/dev/hwrng bs=64 count=2 2>/dev/null | wc -c)\n";

static void ctl_ok(const char *name, const char *dev, const char *host)
{
	struct run r;

	harness__run(&r, 30, NULL, "ctl", name, "move-device", dev, host, NULL);
	cr_expect_eq(r.status, 0, "move-device %s %s: %s", dev, host, r.out);
	cr_expect(harness__has(&r, "\"ms\":"), "%s", r.out);
	harness__free(&r);
}

/*
 * `slos ctl VM move-device`: the disk's backend moves host 0 -> 1 -> 0
 * -> 1 while the guest appends and syncs a file on it, and the rng moves
 * too; the file is exact afterwards (no write lost or done twice), the
 * guest noticed nothing but pauses, and bad requests are refused.
 * Host 1 runs no vCPU: it only holds the devices.
 */
Test(linux_virtio, move_device_during_writes, .timeout = 900)
{
	char dir[] = "/tmp/slos-vmove-XXXXXX", path[128], name[32];
	struct proc p;
	struct run r;
	FILE *f;

	need_guest();
	cr_assert(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/files", dir);
	cr_assert(!mkdir(path, 0755));
	snprintf(path, sizeof(path), "%s/files/run.sh", dir);
	f = fopen(path, "w");
	cr_assert(f);
	fputs(move_sh, f);
	fclose(f);
	sh("truncate -s 16M %s/d.img && mke2fs -q -t ext2 -d %s/files "
	   "%s/d.img",
	   dir, dir, dir);
	snprintf(path, sizeof(path), "%s/d.img", dir);
	snprintf(name, sizeof(name), "vmove%d", getpid());
	cr_assert(!harness__start(
	    &p, "run", "--name", name, "--kernel", guest("vmlinux"), "--initrd",
	    guest("initramfs.cpio"), "--mem", "256M", "--local-hosts", "2",
	    "--disk", path, "--rng", "--stats", "--cmdline",
	    "console=ttyS0 panic=-1 " NO_TORTURE " slos.run=vda:run.sh", NULL));
	bool started = harness__wait_output(&p, "WRITE-LOOP-START",
					    400 * harness__time_scale());
	char *out = harness__output(&p);
	cr_assert(started, "no WRITE-LOOP-START:\n%s", out);
	free(out);
	ctl_ok(name, "blk0", "1");
	ctl_ok(name, "rng1", "1");
	sleep(2);
	ctl_ok(name, "blk0", "0");
	sleep(2);
	ctl_ok(name, "blk0", "1");
	harness__run(&r, 30, NULL, "ctl", name, "move-device", "blk9", "1",
		     NULL);
	cr_expect(r.status && harness__has(&r, "no device 'blk9'"), "%s",
		  r.out);
	harness__free(&r);
	harness__run(&r, 30, NULL, "ctl", name, "move-device", "blk0", "5",
		     NULL);
	cr_expect(r.status && harness__has(&r, "no host 5"), "%s", r.out);
	harness__free(&r);
	int st = harness__wait(&p, 600 * harness__time_scale());
	out = harness__output(&p);
	cr_expect_eq(st, 0, "status %d:\n%s", st, out);
	const char *done = strstr(out, "WRITE-LOOP-DONE n=");
	unsigned records = 0;
	cr_expect(done && sscanf(done, "WRITE-LOOP-DONE n=%u", &records) == 1 &&
		      records >= 150,
		  "%s", out);
	cr_expect(strstr(out, "RNG-BYTES 128"), "%s", out);
	cr_expect(strstr(out, "SLOS-RUN rc=0"), "%s", out);
	cr_expect(strstr(out, "host 0 forwarded"), "%s", out);
	cr_expect(!strstr(out, "needs a reset"), "%s", out);
	free(out);
	harness__proc_free(&p);
	sh("i=0; while [ $i -lt %u ]; do echo \"record $i "
	   "abcdefghijklmnopqrstuvwxyz\"; i=$((i+1)); done > %s/want && "
	   "debugfs -R 'dump /log.txt %s/got' %s/d.img 2>/dev/null && cmp "
	   "%s/want %s/got",
	   records, dir, dir, dir, dir, dir);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	if (system(path))
		cr_log_warn("cannot remove %s", dir);
}
