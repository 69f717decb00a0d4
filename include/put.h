/*
 * put.h - appending to an output buffer whose room the caller has already checked (the heads
 * and records written this way are bounded before the first byte is written). Each call
 * returns the new end.
 */
#ifndef ABGATE_PUT_H
#define ABGATE_PUT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline char *put(char *o, const void *src, size_t n)
{
	memcpy(o, src, n);
	return o + n;
}

/* A string literal, without its NUL. */
#define PUTS(o, lit) put((o), (lit), sizeof(lit) - 1)

/* v in decimal. */
static inline char *put_u64(char *o, uint64_t v)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (n > 0)
		*o++ = tmp[--n];
	return o;
}

#endif
