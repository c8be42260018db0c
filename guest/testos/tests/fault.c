// SPDX-License-Identifier: MIT
/*
 * Deliberately raises an exception at ring 3 (kind=pf|ud|gp|de|bp, default
 * pf), or in the kernel (kgp): checks that exceptions reach the kernel,
 * which must report them and end the run with exit status 3. Returning
 * here is the failure.
 */
#include "lib.h"
#include "test.h"

static int fault(struct tctx *t)
{
	size_t len;
	const char *k = targ_str("kind", &len);

	if (t->cpu != 0)
		return 0;
	if (!k || (len == 2 && !strncmp(k, "pf", 2))) {
		tprintf("fault: reading kernel memory at %p from ring 3\n",
			(void *)KERNEL_BASE);
		(void)*(volatile uint64_t *)KERNEL_BASE;
	} else if (len == 2 && !strncmp(k, "ud", 2)) {
		__asm__ volatile(".byte 0x0f, 0xff"); /* ud0 */
	} else if (len == 2 && !strncmp(k, "gp", 2)) {
		__asm__ volatile("cli");
	} else if (len == 2 && !strncmp(k, "de", 2)) {
		/* asm: the compiler would turn 1 / x into x == 1. */
		__asm__ volatile("xor %%ecx, %%ecx; div %%ecx"
				 :
				 : "a"(1), "d"(0)
				 : "ecx");
	} else if (len == 2 && !strncmp(k, "bp", 2)) {
		__asm__ volatile("int3");
	} else if (len == 3 && !strncmp(k, "kgp", 3)) {
		/* A non-canonical pointer makes the kernel itself fault
		 * (#GP at ring 0) inside the SYS_WAIT call. */
		usys(SYS_WAIT, (long)0xdead000000000000ULL, 0, 0);
	} else {
		tprintf("testos: kind= must be pf, ud, gp, de, bp or kgp\n");
		tprintf("TEST fault FAIL bad command line\n");
		uexit(EXIT_BADCMD);
	}
	return tfail(t, "the exception did not stop the run");
}

TESTOS_TEST("fault", fault,
	    "kind=pf|ud|gp|de|bp|kgp exception: must exit with 3");
