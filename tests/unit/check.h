/*
 * check.h - the unit-test vocabulary: CHECK macros that count, and a summary line.
 *
 * Each tests/unit/test_*.c defines main() that calls its test functions and returns
 * check_summary(), which prints "N passed, N failed" and returns 1 when anything failed.
 */
#ifndef ABGATE_CHECK_H
#define ABGATE_CHECK_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (cond) {                                                                        \
			check_passed++;                                                            \
		} else {                                                                           \
			check_failed++;                                                            \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
		}                                                                                  \
	} while (0)

#define CHECK_INT(got, want)                                                                       \
	do {                                                                                       \
		long long g_ = (long long)(got), w_ = (long long)(want);                          \
		if (g_ == w_) {                                                                    \
			check_passed++;                                                            \
		} else {                                                                           \
			check_failed++;                                                            \
			fprintf(stderr, "%s:%d: %s = %lld, want %lld\n", __FILE__, __LINE__, #got, \
				g_, w_);                                                           \
		}                                                                                  \
	} while (0)

#define CHECK_STR(got, want)                                                                       \
	do {                                                                                       \
		const char *g_ = (got), *w_ = (want);                                              \
		if (g_ != NULL && w_ != NULL && strcmp(g_, w_) == 0) {                             \
			check_passed++;                                                            \
		} else {                                                                           \
			check_failed++;                                                            \
			fprintf(stderr, "%s:%d: %s = \"%s\", want \"%s\"\n", __FILE__, __LINE__,  \
				#got, g_ ? g_ : "(null)", w_ ? w_ : "(null)");                     \
		}                                                                                  \
	} while (0)

/* Relative tolerance check: |got - want| <= rel * max(|want|, tiny). */
#define CHECK_REL(got, want, rel)                                                                  \
	do {                                                                                       \
		double g_ = (got), w_ = (want);                                                    \
		double s_ = fabs(w_) > 1e-300 ? fabs(w_) : 1e-300;                                 \
		if (fabs(g_ - w_) <= (rel) * s_) {                                                 \
			check_passed++;                                                            \
		} else {                                                                           \
			check_failed++;                                                            \
			fprintf(stderr, "%s:%d: %s = %.17g, want %.17g (rel %.3g)\n", __FILE__,    \
				__LINE__, #got, g_, w_, fabs(g_ - w_) / s_);                       \
		}                                                                                  \
	} while (0)

static inline int check_summary(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, check_passed, check_failed);
	return check_failed ? 1 : 0;
}

#endif
