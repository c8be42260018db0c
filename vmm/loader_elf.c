// SPDX-License-Identifier: MIT
/*
 * ELF64 x86-64 executables (vmlinux, the test OS, the vmlinux unpacked from
 * a bzImage) into guest RAM at their physical addresses. Everything is
 * checked before the first byte is written, so a rejected file leaves guest
 * RAM as it was.
 */
#include <elf.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/loader_priv.h"

struct seg {
	uint64_t start, end; /* guest-physical [start, end) */
	uint64_t off, filesz;
	unsigned idx; /* program header index, for messages */
};

static int seg_cmp(const void *a, const void *b)
{
	const struct seg *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static int check_ehdr(const Elf64_Ehdr *eh, size_t len, const char *who,
		      char *err, size_t errlen)
{
	if (eh->e_ident[EI_CLASS] != ELFCLASS64) {
		loader_err(err, errlen, "%s: not a 64-bit ELF (class %u)", who,
			   eh->e_ident[EI_CLASS]);
		return -1;
	}
	if (eh->e_ident[EI_DATA] != ELFDATA2LSB) {
		loader_err(err, errlen, "%s: not a little-endian ELF", who);
		return -1;
	}
	if (eh->e_machine != EM_X86_64) {
		loader_err(err, errlen, "%s: ELF machine %u is not x86-64", who,
			   eh->e_machine);
		return -1;
	}
	if (eh->e_type != ET_EXEC) {
		loader_err(err, errlen,
			   "%s: ELF type %u is not an executable (ET_EXEC)",
			   who, eh->e_type);
		return -1;
	}
	if (eh->e_phentsize != sizeof(Elf64_Phdr)) {
		loader_err(err, errlen,
			   "%s: ELF program header size %u, expected %zu", who,
			   eh->e_phentsize, sizeof(Elf64_Phdr));
		return -1;
	}
	if (eh->e_phnum == 0 || eh->e_phnum == PN_XNUM) {
		loader_err(err, errlen, "%s: ELF has %s program headers", who,
			   eh->e_phnum ? "too many (PN_XNUM)" : "no");
		return -1;
	}
	if (eh->e_phoff > len ||
	    (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > len - eh->e_phoff) {
		loader_err(err, errlen,
			   "%s: truncated ELF program header table", who);
		return -1;
	}
	return 0;
}

static int check_seg(struct mem *m, const Elf64_Phdr *ph, unsigned i,
		     size_t len, const char *who, char *err, size_t errlen)
{
	uint64_t end = ph->p_paddr + ph->p_memsz;
	char why[96];

	if (ph->p_filesz > ph->p_memsz) {
		loader_err(err, errlen,
			   "%s: segment %u file size 0x%llx exceeds its "
			   "memory size 0x%llx",
			   who, i, (unsigned long long)ph->p_filesz,
			   (unsigned long long)ph->p_memsz);
		return -1;
	}
	if (ph->p_offset > len || ph->p_filesz > len - ph->p_offset) {
		loader_err(err, errlen,
			   "%s: segment %u data at file offset 0x%llx+0x%llx "
			   "is past the end of the file (%zu bytes)",
			   who, i, (unsigned long long)ph->p_offset,
			   (unsigned long long)ph->p_filesz, len);
		return -1;
	}
	if (end < ph->p_paddr) {
		loader_err(err, errlen, "%s: segment %u address range wraps",
			   who, i);
		return -1;
	}
	if (ph->p_paddr < MEM_HIGH) {
		loader_err(err, errlen,
			   "%s: segment %u [0x%llx,0x%llx) is below 1 MiB, "
			   "which holds the VMM's boot structures",
			   who, i, (unsigned long long)ph->p_paddr,
			   (unsigned long long)end);
		return -1;
	}
	if (!loader_ram(m, ph->p_paddr, ph->p_memsz)) {
		loader_err(err, errlen, "%s: segment %u [0x%llx,0x%llx) %s",
			   who, i, (unsigned long long)ph->p_paddr,
			   (unsigned long long)end,
			   loader_ram_why(m, ph->p_paddr, ph->p_memsz, why,
					  sizeof(why)));
		return -1;
	}
	return 0;
}

/* Collect the PT_LOAD segments that occupy memory, sorted by address. */
static struct seg *collect(struct mem *m, const uint8_t *f, size_t len,
			   const Elf64_Ehdr *eh, unsigned *nr, const char *who,
			   char *err, size_t errlen)
{
	struct seg *s = calloc(eh->e_phnum, sizeof(*s));
	unsigned i, n = 0;
	Elf64_Phdr ph;

	if (!s) {
		loader_err(err, errlen, "%s: out of memory", who);
		return NULL;
	}
	for (i = 0; i < eh->e_phnum; i++) {
		memcpy(&ph, f + eh->e_phoff + (uint64_t)i * sizeof(ph),
		       sizeof(ph));
		if (ph.p_type != PT_LOAD || !ph.p_memsz)
			continue;
		if (check_seg(m, &ph, i, len, who, err, errlen))
			goto fail;
		s[n++] = (struct seg){ph.p_paddr, ph.p_paddr + ph.p_memsz,
				      ph.p_offset, ph.p_filesz, i};
	}
	if (!n) {
		loader_err(err, errlen, "%s: ELF has no loadable segments",
			   who);
		goto fail;
	}
	qsort(s, n, sizeof(*s), seg_cmp);
	for (i = 1; i < n; i++) {
		if (s[i].start < s[i - 1].end) {
			loader_err(err, errlen,
				   "%s: segments %u [0x%llx,0x%llx) and %u "
				   "[0x%llx,0x%llx) overlap",
				   who, s[i - 1].idx,
				   (unsigned long long)s[i - 1].start,
				   (unsigned long long)s[i - 1].end, s[i].idx,
				   (unsigned long long)s[i].start,
				   (unsigned long long)s[i].end);
			goto fail;
		}
	}
	*nr = n;
	return s;
fail:
	free(s);
	return NULL;
}

/*
 * e_entry is physical for vmlinux (phys_startup_64) but may be a virtual
 * address for a kernel linked high: translate it through the segment whose
 * virtual range holds it. Physical ranges win because a vmlinux's per-CPU
 * segment has p_vaddr 0, which would otherwise claim low entries.
 */
static int find_entry(const uint8_t *f, const Elf64_Ehdr *eh,
		      const struct seg *s, unsigned n, uint64_t *entry)
{
	uint64_t e = eh->e_entry;
	Elf64_Phdr ph;
	unsigned i;

	for (i = 0; i < n; i++) {
		if (e >= s[i].start && e < s[i].end) {
			*entry = e;
			return 0;
		}
	}
	for (i = 0; i < eh->e_phnum; i++) {
		memcpy(&ph, f + eh->e_phoff + (uint64_t)i * sizeof(ph),
		       sizeof(ph));
		if (ph.p_type != PT_LOAD || !ph.p_memsz)
			continue;
		if (e >= ph.p_vaddr && e - ph.p_vaddr < ph.p_memsz) {
			*entry = e - ph.p_vaddr + ph.p_paddr;
			return 0;
		}
	}
	return -1;
}

int loader_elf_load(struct mem *m, const uint8_t *f, size_t len,
		    const char *who, struct kernel_image *out, char *err,
		    size_t errlen)
{
	Elf64_Ehdr eh;
	struct seg *s;
	unsigned i, n;
	uint8_t *dst;

	if (len < sizeof(eh)) {
		loader_err(err, errlen, "%s: truncated ELF header (%zu bytes)",
			   who, len);
		return -1;
	}
	memcpy(&eh, f, sizeof(eh));
	if (check_ehdr(&eh, len, who, err, errlen))
		return -1;
	s = collect(m, f, len, &eh, &n, who, err, errlen);
	if (!s)
		return -1;
	if (find_entry(f, &eh, s, n, &out->entry)) {
		loader_err(err, errlen,
			   "%s: entry point 0x%llx is in no loaded segment",
			   who, (unsigned long long)eh.e_entry);
		free(s);
		return -1;
	}
	for (i = 0; i < n; i++) {
		dst = loader_ram(m, s[i].start, s[i].end - s[i].start);
		memcpy(dst, f + s[i].off, s[i].filesz);
		memset(dst + s[i].filesz, 0,
		       s[i].end - s[i].start - s[i].filesz);
	}
	out->load_lo = s[0].start;
	out->load_hi = s[n - 1].end;
	free(s);
	return 0;
}
