/* SPDX-License-Identifier: MIT */
/* Internals of the ring-3 framework (not for tests: see test.h). */
#ifndef TESTOS_USER_H
#define TESTOS_USER_H

#include "test.h"

extern char fail_reason[256];
extern volatile uint32_t failed;

/* Ends this CPU's part of the run; on CPU 0 also reports and exits. */
__attribute__((noreturn)) void finish_run(struct tctx *t);
const char *tsc_khz_source(void);
uint8_t uio_probe_in(uint16_t port);
void user_main(unsigned cpu);

#endif
