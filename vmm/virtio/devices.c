// SPDX-License-Identifier: MIT
/* The command line's devices: --disk and --net values, and making each. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/virtio/virtio.h"

const char *virtio__kind_name(enum virtio_kind k)
{
	static const char *const n[] = {"blk", "net", "rng", "console"};

	return (unsigned)k < 4 ? n[k] : "?";
}

static int parse_host(const char *v, struct virtio_spec *s)
{
	char *end;
	unsigned long h;

	errno = 0;
	h = strtoul(v, &end, 10);
	if (errno || end == v || *end || h > 255)
		return -1;
	s->host = h;
	return 0;
}

static int parse_mac(const char *v, uint8_t mac[6])
{
	unsigned b[6];
	char tail;

	if (sscanf(v, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3],
		   &b[4], &b[5], &tail) != 6)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = b[i];
	/* A multicast address cannot be an interface's. */
	return mac[0] & 1 ? -1 : 0;
}

/* Split arg at commas into a first word and key[=value] options; each
 * option goes to opt(), which returns -1 for one it does not know. */
static int options(const char *arg, struct virtio_spec *s, char **first,
		   int (*opt)(struct virtio_spec *s, const char *k,
			      const char *v),
		   char *why, size_t len, const char *flag)
{
	char *copy = strdup(arg), *save = NULL, *tok;

	if (!copy) {
		snprintf(why, len, "out of memory");
		return -1;
	}
	tok = strtok_r(copy, ",", &save);
	if (!tok || !*tok) {
		snprintf(why, len, "%s '%s': empty", flag, arg);
		free(copy);
		return -1;
	}
	*first = strdup(tok);
	while ((tok = strtok_r(NULL, ",", &save))) {
		char *eq = strchr(tok, '=');

		if (eq)
			*eq++ = '\0';
		if (opt(s, tok, eq)) {
			snprintf(why, len, "%s '%s': bad option '%s%s%s'", flag,
				 arg, tok, eq ? "=" : "", eq ? eq : "");
			free(copy);
			free(*first);
			*first = NULL;
			return -1;
		}
	}
	free(copy);
	return *first ? 0 : -1;
}

static int disk_opt(struct virtio_spec *s, const char *k, const char *v)
{
	if (!strcmp(k, "ro") && !v)
		s->ro = true;
	else if (!strcmp(k, "host") && v)
		return parse_host(v, s);
	else
		return -1;
	return 0;
}

int virtio__parse_disk(const char *arg, struct virtio_spec *s, char *why,
		       size_t len)
{
	char *path;

	memset(s, 0, sizeof(*s));
	s->kind = VIRTIO_BLK;
	if (options(arg, s, &path, disk_opt, why, len, "--disk"))
		return -1;
	s->path = path;
	return 0;
}

static int net_opt(struct virtio_spec *s, const char *k, const char *v)
{
	if (!strcmp(k, "name") && v && *v && strlen(v) < 16) {
		free((char *)s->path); /* the last name= counts */
		s->path = strdup(v);
	} else if (!strcmp(k, "mac") && v) {
		if (parse_mac(v, s->mac))
			return -1;
		s->mac_set = true;
	} else if (!strcmp(k, "host") && v)
		return parse_host(v, s);
	else
		return -1;
	return 0;
}

int virtio__parse_net(const char *arg, struct virtio_spec *s, char *why,
		      size_t len)
{
	char *kind;

	memset(s, 0, sizeof(*s));
	s->kind = VIRTIO_NET;
	if (options(arg, s, &kind, net_opt, why, len, "--net"))
		goto fail;
	if (strcmp(kind, "tap")) {
		snprintf(why, len, "--net '%s': the only backend is tap", arg);
		free(kind);
		goto fail;
	}
	free(kind);
	return 0;
fail:
	/* A name= before the option that failed. */
	free((char *)s->path);
	s->path = NULL;
	return -1;
}

struct virtio_dev *virtio__new(const struct virtio_spec *s, char *why,
			       size_t len)
{
	switch (s->kind) {
	case VIRTIO_BLK:
		return virtio__blk_new(s, why, len);
	case VIRTIO_NET:
		return virtio__net_new(s, why, len);
	case VIRTIO_RNG:
		return virtio__rng_new(why, len);
	default:
		snprintf(why, len, "no such device kind");
		return NULL;
	}
}
