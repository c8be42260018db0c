// SPDX-License-Identifier: MIT
/*
 * Snapshots and restore with the test OS: a computation interrupted by a
 * snapshot and finished by restores ends as an uninterrupted one does, a
 * running VM snapshotted through its control socket goes on, and every
 * damaged or mismatched snapshot is refused with status 2.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/harness.h"

#define CHECKSUM "test=checksum rounds=8 mib=8"

static char *tmpdir(void)
{
	char *d = strdup("/tmp/slos-snaptest-XXXXXX");

	cr_assert(d && mkdtemp(d), "mkdtemp");
	return d;
}

static void rmtree(const char *d)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	if (system(cmd))
		cr_log_warn("could not remove %s", d);
}

/* "checksum: result 0x..." of a run, or "" */
static void result(const struct run *r, char *out, size_t len)
{
	const char *p = r->out ? strstr(r->out, "checksum: result ") : NULL;

	out[0] = 0;
	if (p)
		snprintf(out, len, "%.*s", (int)strcspn(p, "\n"), p);
}

/* A snapshot of the checksum test taken at round 3 of 8, in dir/snap. */
static void take(const char *dir, char *snap, size_t len, const char *vcpus)
{
	struct run r;

	snprintf(snap, len, "%s/snap", dir);
	harness__run(&r, 120, NULL, "run", "--kernel", harness__testos(),
		     "--vcpus", vcpus, "--mem", "128M", "--cmdline", CHECKSUM,
		     "--snapshot-when", "round 3/", "--snapshot-to", snap,
		     NULL);
	cr_assert_eq(r.status, 0, "snapshot run: status %d:\n%s", r.status,
		     r.out);
	cr_assert(harness__has(&r, "round 3/8"), "%s", r.out);
	cr_assert(!harness__has(&r, "round 4/8"), "ran on after the "
						  "snapshot:\n%s",
		  r.out);
	cr_assert(!access(snap, F_OK), "no %s", snap);
	harness__free(&r);
}

struct restore_job {
	const char *snap;
	struct run r;
};

static void *restore_thread(void *arg)
{
	struct restore_job *j = arg;

	harness__run(&j->r, 120, NULL, "run", "--restore", j->snap, "--stats",
		     NULL);
	return NULL;
}

Test(snapshot, checksum_interrupted_equals_uninterrupted, .timeout = 300)
{
	char *dir = tmpdir(), snap[256], want[128], got[128];
	struct restore_job j[2];
	pthread_t t[2];
	struct run r;

	harness__run(&r, 120, NULL, "run", "--kernel", harness__testos(),
		     "--vcpus", "2", "--mem", "128M", "--cmdline", CHECKSUM,
		     NULL);
	cr_assert_eq(r.status, 0, "%s", r.out);
	result(&r, want, sizeof(want));
	cr_assert(*want, "no result:\n%s", r.out);
	harness__free(&r);

	take(dir, snap, sizeof(snap), "2");
	struct stat before, after;
	char path[300];
	snprintf(path, sizeof(path), "%s/memory", snap);
	cr_assert(!stat(path, &before));
	/* Twice at once from the same files: each restore is its own VM. */
	for (int i = 0; i < 2; i++) {
		j[i].snap = snap;
		pthread_create(&t[i], NULL, restore_thread, &j[i]);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		struct run *q = &j[i].r;
		cr_expect_eq(q->status, 0, "restore %d: status %d:\n%s", i,
			     q->status, q->out);
		cr_expect(!harness__has(q, "round 3/8"),
			  "restore %d replayed round 3:\n%s", i, q->out);
		cr_expect(harness__has(q, "round 4/8"), "%s", q->out);
		result(q, got, sizeof(got));
		cr_expect_str_eq(got, want, "restore %d: '%s', uninterrupted "
					    "'%s':\n%s",
				 i, got, want, q->out);
		cr_expect(harness__has(q, "restore: running after"), "%s",
			  q->out);
		harness__free(q);
	}
	/* The snapshot's files are never written by a restore. */
	cr_expect(!stat(path, &after) &&
			  after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
			  after.st_mtim.tv_nsec == before.st_mtim.tv_nsec,
		  "a restore wrote %s", path);
	rmtree(dir);
	free(dir);
}

/* A restore with --prefetch uses what the first restore recorded. */
Test(snapshot, prefetch_second_restore, .timeout = 300)
{
	char *dir = tmpdir(), snap[256], path[300];
	struct run r;

	take(dir, snap, sizeof(snap), "1");
	harness__run(&r, 120, NULL, "run", "--restore", snap, NULL);
	cr_expect_eq(r.status, 0, "%s", r.out);
	harness__free(&r);
	snprintf(path, sizeof(path), "%s/prefetch", snap);
	cr_expect(!access(path, R_OK), "first restore recorded nothing");
	harness__run(&r, 120, NULL, "run", "--restore", snap, "--prefetch",
		     NULL);
	cr_expect_eq(r.status, 0, "%s", r.out);
	cr_expect(harness__has(&r, "TEST checksum PASS"), "%s", r.out);
	harness__free(&r);
	rmtree(dir);
	free(dir);
}

struct ctl_job {
	const char *name, *snap;
	int status;
};

/* Waits for the VM's first round, then snapshots it through `slos ctl`. */
static void *ctl_thread(void *arg)
{
	struct ctl_job *c = arg;
	char cmd[1024];

	c->status = -1;
	for (int i = 0; i < 200; i++) {
		snprintf(cmd, sizeof(cmd), "'%s' ctl %s status >/dev/null 2>&1",
			 harness__bin(), c->name);
		if (!system(cmd))
			break;
		usleep(50000);
	}
	snprintf(cmd, sizeof(cmd), "'%s' ctl %s snapshot '%s' >/dev/null",
		 harness__bin(),
		 c->name, c->snap);
	c->status = system(cmd);
	return NULL;
}

Test(snapshot, ctl_snapshot_of_running_vm, .timeout = 300)
{
	char *dir = tmpdir(), snap[256], name[64], want[128], got[128];
	struct ctl_job c;
	pthread_t t;
	struct run r;

	snprintf(snap, sizeof(snap), "%s/snap", dir);
	snprintf(name, sizeof(name), "snaptest-%d", getpid());
	c = (struct ctl_job){ .name = name, .snap = snap };
	pthread_create(&t, NULL, ctl_thread, &c);
	harness__run(&r, 120, NULL, "run", "--kernel", harness__testos(),
		     "--vcpus", "2", "--mem", "128M", "--name", name,
		     "--cmdline", CHECKSUM, NULL);
	pthread_join(t, NULL);
	cr_assert_eq(c.status, 0, "ctl snapshot failed");
	cr_assert_eq(r.status, 0, "the VM did not go on:\n%s", r.out);
	result(&r, want, sizeof(want));
	cr_assert(*want, "%s", r.out);
	harness__free(&r);
	harness__run(&r, 120, NULL, "run", "--restore", snap, NULL);
	cr_expect_eq(r.status, 0, "%s", r.out);
	result(&r, got, sizeof(got));
	cr_expect_str_eq(got, want, "%s", r.out);
	harness__free(&r);
	rmtree(dir);
	free(dir);
}

/* ---- refusals: each a copy of one good snapshot, damaged one way ---- */

static void copy_snapshot(const char *from, const char *to)
{
	char cmd[700];

	snprintf(cmd, sizeof(cmd), "cp -r --sparse=always '%s' '%s'", from,
		 to);
	cr_assert(!system(cmd), "%s", cmd);
}

static void sh(const char *fmt, const char *dir)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), fmt, dir, dir, dir);
	cr_assert(!system(cmd), "%s", cmd);
}

static void refused(const char *snap, const char *why, const char *extra,
		    const char *extra_val)
{
	struct run r;

	harness__run(&r, 60, NULL, "run", "--restore", snap,
		     extra ? extra : NULL, extra_val, NULL);
	cr_expect_eq(r.status, 2, "%s: status %d:\n%s", why, r.status, r.out);
	cr_expect(harness__has(&r, why), "no '%s' in:\n%s", why, r.out);
	cr_expect(!harness__has(&r, "TEST checksum"), "ran:\n%s", r.out);
	harness__free(&r);
}

Test(snapshot, damaged_or_mismatched_refused, .timeout = 300)
{
	static const struct {
		const char *damage, *why;
	} cases[] = {
		/* a byte of the state flipped */
		{ "printf '\\377' | dd of=%s/state bs=1 seek=600 conv=notrunc "
		  "2>/dev/null",
		  "checksum mismatch" },
		{ "truncate -s 5000 %s/state", "checksum mismatch" },
		{ "truncate -s 10 %s/state", "truncated" },
		{ "truncate -s 100 %s/manifest", "truncated" },
		{ "sed -i 's/^slos-snapshot 1$/slos-snapshot 99/' %s/manifest",
		  "version 99 is not supported" },
		{ "sed -i 's/^vcpus .*/vcpus 3/' %s/manifest", "manifest says 3" },
		{ "sed -i 's/^cpuid 00000007.0 edx .*/cpuid 00000007.0 edx "
		  "ffffffff/' %s/manifest",
		  "lacks features" },
		{ "rm %s/memory", "memory" },
		{ "truncate -s 1G %s/memory", "larger than the guest" },
		{ "rm %s/manifest", "manifest" },
		{ "echo junk-junk-junk-junk-junk-junk > %s/state",
		  "not a slos state" },
	};
	char *dir = tmpdir(), snap[256], copy[300];

	take(dir, snap, sizeof(snap), "1");
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		snprintf(copy, sizeof(copy), "%s/c%zu", dir, i);
		copy_snapshot(snap, copy);
		sh(cases[i].damage, copy);
		refused(copy, cases[i].why, NULL, NULL);
	}
	/* A restored guest keeps its size and its vCPUs. */
	refused(snap, "differs from the snapshot", "--mem", "256M");
	refused(snap, "differs from the snapshot", "--vcpus", "2");
	refused("/nonexistent/snap", "No such file", NULL, NULL);
	/* The good one still restores after all that. */
	struct run r;
	harness__run(&r, 120, NULL, "run", "--restore", snap, NULL);
	cr_expect_eq(r.status, 0, "%s", r.out);
	harness__free(&r);
	rmtree(dir);
	free(dir);
}

Test(snapshot, bad_options_refused)
{
	struct run r;

	harness__run(&r, 30, NULL, "run", "--restore", "/tmp", "--kernel",
		     harness__testos(), NULL);
	cr_expect_eq(r.status, 2, "%s", r.out);
	cr_expect(harness__has(&r, "come from the snapshot"), "%s", r.out);
	harness__free(&r);
	harness__run(&r, 30, NULL, "run", "--kernel", harness__testos(),
		     "--snapshot-when", "x", NULL);
	cr_expect_eq(r.status, 2, "%s", r.out);
	cr_expect(harness__has(&r, "go together"), "%s", r.out);
	harness__free(&r);
	harness__run(&r, 30, NULL, "run", "--kernel", harness__testos(),
		     "--snapshot-when", "(", "--snapshot-to", "/tmp/x", NULL);
	cr_expect_eq(r.status, 2, "%s", r.out);
	cr_expect(harness__has(&r, "not a regular expression"), "%s", r.out);
	harness__free(&r);
}
