/* SPDX-License-Identifier: MIT */
/* Freestanding string and formatting routines, built for both rings. */
#ifndef TESTOS_LIB_H
#define TESTOS_LIB_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

/* printf subset: %d %i %u %x %lx %llx %p %s %c %%, flags 0 and -, width,
 * l/ll/z length. Always NUL-terminates; returns the untruncated length. */
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
int snprintf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parses a decimal (or 0x hex) unsigned number with an optional k/m/g
 * suffix; returns 0 on success. */
int parse_u64(const char *s, size_t len, uint64_t *out);

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
