// SPDX-License-Identifier: MIT
/* `key=value` words of the kernel command line. */
#include "lib.h"
#include "test.h"

const char *targ_str(const char *key, size_t *len)
{
	size_t klen = strlen(key);
	const char *p = shared.cmdline;

	while (*p) {
		const char *w = p;
		size_t wlen = 0;

		while (w[wlen] && w[wlen] != ' ')
			wlen++;
		if (wlen > klen && w[klen] == '=' && !strncmp(w, key, klen)) {
			*len = wlen - klen - 1;
			return w + klen + 1;
		}
		p = w + wlen;
		while (*p == ' ')
			p++;
	}
	return 0;
}

uint64_t targ(const char *key, uint64_t def)
{
	size_t len;
	const char *v = targ_str(key, &len);
	uint64_t out;

	if (!v)
		return def;
	if (parse_u64(v, len, &out)) {
		tprintf("testos: bad value for %s= on the command line\n", key);
		tprintf("TEST %s FAIL bad command line\n",
			shared.test_name ? shared.test_name : "?");
		uexit(EXIT_BADCMD);
	}
	return out;
}
