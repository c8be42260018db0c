/* SPDX-License-Identifier: MIT */
/* Ring-3 side of the ud2 call ABI (see abi.h). */
#ifndef TESTOS_USYS_H
#define TESTOS_USYS_H

#include "abi.h"

static inline long usys(long nr, long a0, long a1, long a2)
{
	long ret = nr;

	__asm__ volatile("ud2"
			 : "+a"(ret)
			 : "D"(a0), "S"(a1), "d"(a2)
			 : "memory");
	return ret;
}

#endif
