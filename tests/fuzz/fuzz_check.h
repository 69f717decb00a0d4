/*
 * fuzz_check.h - the check every fuzz driver makes: CHECK(cond) aborts with the file, line and
 * condition when cond fails, so that libFuzzer records the input as a crash.
 */
#ifndef ABGATE_FUZZ_CHECK_H
#define ABGATE_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                          \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                             \
		}                                                                            \
	} while (0)

#endif
