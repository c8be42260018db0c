// SPDX-License-Identifier: MIT
/* --trace: events to a Chrome trace-event JSON file (vmm/trace.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "balancer/balancer.h"
#include "vmm/cluster.h"
#include "vmm/trace.h"

static struct {
	bool on;
	pthread_mutex_t lock;
	FILE *f;		   /* host 0 */
	unsigned nhosts, nr_vcpus; /* host 0: what records may name */
	uint64_t epoch_us;	   /* host 0: ts 0 */
	bool first;
	uint8_t named[256]; /* host 0: metadata written, per host */
	/* A member's batch for host 0. */
	int (*send)(void *arg, const void *p, size_t len);
	void *arg;
	uint8_t batch[TRACE_BATCH_MAX * TRACE_EV_SIZE];
	unsigned n;
} T = {.lock = PTHREAD_MUTEX_INITIALIZER};

static const char *const reasons[] = {"ctl", "guest", "balancer", "placement"};

static uint64_t now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return t.tv_sec * 1000000ULL + t.tv_nsec / 1000;
}

void trace__put(const struct trace_ev *e, uint8_t *out)
{
	out[0] = e->kind;
	out[1] = e->host;
	out[2] = e->vcpu;
	out[3] = e->vcpu >> 8;
	cl_put32(out + 4, e->d);
	cl_put64(out + 8, e->ts_us);
	cl_put64(out + 16, e->a);
	cl_put64(out + 24, e->b);
	cl_put64(out + 32, e->c);
}

void trace__get(struct trace_ev *e, const uint8_t *in)
{
	e->kind = in[0];
	e->host = in[1];
	e->vcpu = in[2] | in[3] << 8;
	e->d = cl_get32(in + 4);
	e->ts_us = cl_get64(in + 8);
	e->a = cl_get64(in + 16);
	e->b = cl_get64(in + 24);
	e->c = cl_get64(in + 32);
}

/* Host 0, under the lock: one event as JSON. */
static void write_ev(const struct trace_ev *e)
{
	FILE *f = T.f;
	double ts =
	    e->ts_us >= T.epoch_us ? (double)(e->ts_us - T.epoch_us) : 0;
	const char *sep = T.first ? "" : ",\n";

	T.first = false;
	if (!T.named[e->host]) {
		T.named[e->host] = 1;
		fprintf(f,
			"%s{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%u,"
			"\"args\":{\"name\":\"host %u\"}}",
			sep, e->host, e->host);
		for (unsigned v = 0; v < T.nr_vcpus; v++)
			fprintf(f,
				",\n{\"name\":\"thread_name\",\"ph\":\"M\","
				"\"pid\":%u,\"tid\":%u,\"args\":{\"name\":"
				"\"vCPU %u\"}}",
				e->host, v, v);
		sep = ",\n";
	}
	switch (e->kind) {
	case TRACE_RUN_BEGIN:
	case TRACE_RUN_END:
		fprintf(f,
			"%s{\"name\":\"run\",\"ph\":\"%s\",\"pid\":%u,"
			"\"tid\":%u,\"ts\":%.0f}",
			sep, e->kind == TRACE_RUN_BEGIN ? "B" : "E", e->host,
			e->vcpu, ts);
		break;
	case TRACE_FAULT:
	case TRACE_IO: {
		/* Both a wait that ended at ts: for a page (its home) or
		 * for a device access (the host that did it). */
		bool io = e->kind == TRACE_IO;

		fprintf(f,
			"%s{\"name\":\"%s\",\"ph\":\"X\",\"pid\":%u,"
			"\"tid\":%u,\"ts\":%.0f,\"dur\":%llu,\"args\":{"
			"\"%s\":\"0x%llx\",\"write\":%s,\"%s\":%llu}}",
			sep, io ? "io" : "fault", e->host, e->vcpu,
			ts > (double)e->c ? ts - (double)e->c : 0,
			(unsigned long long)e->c, io ? "addr" : "gpa",
			(unsigned long long)e->a, e->d ? "true" : "false",
			io ? "host" : "home", (unsigned long long)e->b);
		break;
	}
	case TRACE_BALANCE:
		fprintf(f,
			"%s{\"name\":\"balance\",\"ph\":\"i\",\"s\":\"t\","
			"\"pid\":%u,\"tid\":%u,\"ts\":%.0f,\"args\":{"
			"\"best\":%llu,\"faults\":%llu,\"total\":%llu,"
			"\"verdict\":\"%s\"}}",
			sep, e->host, e->vcpu, ts, (unsigned long long)e->a,
			(unsigned long long)e->b, (unsigned long long)e->c,
			balancer__verdict_name(e->d));
		break;
	case TRACE_JUMP:
		fprintf(f,
			"%s{\"name\":\"jump\",\"ph\":\"i\",\"s\":\"t\","
			"\"pid\":%u,\"tid\":%u,\"ts\":%.0f,\"args\":{"
			"\"from\":%llu,\"to\":%u,\"reason\":\"%s\","
			"\"latency_us\":%llu,\"state_bytes\":%u}}",
			sep, e->host, e->vcpu, ts, (unsigned long long)e->a,
			e->host, reasons[e->b], (unsigned long long)e->c, e->d);
		break;
	}
}

/* What a record may say (host 0 formats only what passes). */
static bool valid(const struct trace_ev *e)
{
	if (e->kind >= TRACE_NR_KINDS || e->host >= T.nhosts ||
	    e->vcpu >= T.nr_vcpus)
		return false;
	if (e->kind == TRACE_FAULT || e->kind == TRACE_IO)
		return e->b < T.nhosts && e->d <= 1;
	if (e->kind == TRACE_BALANCE)
		return e->a < T.nhosts && e->d < BAL_NR_VERDICTS;
	return e->kind != TRACE_JUMP ||
	       (e->a < T.nhosts && e->b < JUMP_NR_REASONS);
}

int trace__open(const char *path, unsigned nhosts, unsigned nr_vcpus, char *why,
		size_t len)
{
	FILE *f = fopen(path, "we");

	if (!f) {
		snprintf(why, len, "--trace %s: %s", path, strerror(errno));
		return -1;
	}
	pthread_mutex_lock(&T.lock);
	T.f = f;
	T.nhosts = nhosts;
	T.nr_vcpus = nr_vcpus;
	T.epoch_us = now_us();
	T.first = true;
	memset(T.named, 0, sizeof(T.named));
	fprintf(f, "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n");
	T.on = true;
	pthread_mutex_unlock(&T.lock);
	return 0;
}

void trace__remote(int (*send)(void *arg, const void *p, size_t len), void *arg)
{
	pthread_mutex_lock(&T.lock);
	T.send = send;
	T.arg = arg;
	T.n = 0;
	T.on = true;
	pthread_mutex_unlock(&T.lock);
}

bool trace__on(void)
{
	return __atomic_load_n(&T.on, __ATOMIC_RELAXED);
}

/* A member, under the lock: send the batch (the lock keeps order). */
static void send_batch(void)
{
	if (T.n && T.send)
		T.send(T.arg, T.batch, T.n * TRACE_EV_SIZE);
	T.n = 0;
}

void trace__emit(enum trace_kind k, unsigned host, unsigned vcpu, uint64_t a,
		 uint64_t b, uint64_t c, uint32_t d)
{
	struct trace_ev e = {.kind = k,
			     .host = host,
			     .vcpu = vcpu,
			     .d = d,
			     .ts_us = now_us(),
			     .a = a,
			     .b = b,
			     .c = c};

	if (!trace__on())
		return;
	pthread_mutex_lock(&T.lock);
	if (T.f) {
		if (valid(&e))
			write_ev(&e);
	} else if (T.send) {
		trace__put(&e, T.batch + T.n * TRACE_EV_SIZE);
		if (++T.n == TRACE_BATCH_MAX)
			send_batch();
	}
	pthread_mutex_unlock(&T.lock);
}

void trace__flush(void)
{
	if (!trace__on())
		return;
	pthread_mutex_lock(&T.lock);
	if (T.f)
		fflush(T.f);
	else
		send_batch();
	pthread_mutex_unlock(&T.lock);
}

int trace__recv(unsigned from, const uint8_t *p, size_t len, const char **why)
{
	struct trace_ev e;
	int r = 0;

	if (len % TRACE_EV_SIZE || len > TRACE_BATCH_MAX * TRACE_EV_SIZE) {
		*why = "trace batch of a bad length";
		return -1;
	}
	pthread_mutex_lock(&T.lock);
	for (size_t off = 0; T.f && off < len; off += TRACE_EV_SIZE) {
		trace__get(&e, p + off);
		if (e.host != from || !valid(&e)) {
			*why = "bad trace record";
			r = -1;
			break;
		}
		write_ev(&e);
	}
	pthread_mutex_unlock(&T.lock);
	return r;
}

void trace__close(void)
{
	pthread_mutex_lock(&T.lock);
	if (T.f) {
		fprintf(T.f, "\n]}\n");
		fclose(T.f);
		T.f = NULL;
	}
	T.on = false;
	pthread_mutex_unlock(&T.lock);
}
