// SPDX-License-Identifier: MIT
/* virtio-net: not yet (placeholder so the tree builds). */
#include <stdio.h>

#include "vmm/virtio/virtio.h"

struct virtio_dev *virtio__net_new(const struct virtio_spec *s, char *why,
				   size_t len)
{
	snprintf(why, len, "--net: virtio-net is not built yet");
	return NULL;
}
