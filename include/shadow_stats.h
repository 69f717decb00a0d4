/*
 * shadow_stats.h - the report's view of shadow traffic: the proxy's "shadow" records of one
 * experiment (a mirrored request, the shadow backend's answer and how it compares with the
 * primary's) folded into counts, and turned into rates with intervals and paired comparisons.
 *
 * Definitions (each over the records where it can be computed):
 *   - compared: the shadow answered (its status is known); failed: it did not (the record says
 *     why in "error"). A compared record is not comparable when the proxy could not compare
 *     the answers (same_status null: the primary was incomplete, a body was too large);
 *   - a comparable record agrees when same_status is true and, when the record carries
 *     field_agree (compare.json_field configured), field_agree is true, else same_body is true.
 *     The agreement rate, the same-status rate and the same-body rate are fractions of the
 *     comparable records, each with a 95% Wilson score interval;
 *   - latency: the records with both the shadow's and the primary's latency: the mean, sd and
 *     p50/p95/p99 (log-linear histograms, accum.h) of each side, and the paired difference
 *     (shadow - primary) with its mean and a 95% t-interval (df = n - 1);
 *   - error asymmetry: the records with both statuses (the primary's a real one, >= 100): the
 *     5xx rate of each side, the discordant pairs b (only the shadow answered 5xx) and c (only
 *     the primary did), and McNemar's exact test: the two-sided binomial p-value
 *     min(1, 2 P(X <= min(b, c))), X ~ Binomial(b + c, 1/2) (1 when b + c = 0).
 * Nothing in a summary is NaN or infinite where its has_* flag is true.
 */
#ifndef ABGATE_SHADOW_STATS_H
#define ABGATE_SHADOW_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct logrec;
struct shadow_stats; /* the accumulator of one experiment: opaque */

#define SHADOW_STATS_MAX_ERRORS 16 /* distinct failure reasons kept; the rest: "(other)" */

/* A count of one failure reason. */
struct shadow_stats_error {
	const char *reason; /* (ref) owned by the accumulator */
	uint64_t n;
};

/* k of n, with its 95% Wilson interval (has: n > 0). */
struct shadow_stats_rate {
	uint64_t n, k;
	bool has;
	double rate, ci_low, ci_high;
};

/* One side's latencies (has: n > 0; has_sd: n > 1). */
struct shadow_stats_side {
	uint64_t n;
	bool has, has_sd;
	double mean, sd, p50, p95, p99;
};

struct shadow_summary {
	uint64_t records, compared, failed, not_comparable;
	size_t nerrors; /* failure reasons in first-seen order, "(other)" last when used */
	struct shadow_stats_error errors[SHADOW_STATS_MAX_ERRORS + 1];

	struct shadow_stats_rate agreement, same_status, same_body;
	const char *basis; /* "json_field", "body", "mixed" (per record), NULL: none comparable */
	uint64_t field_n, field_missing; /* records with field_agree; of them field_diff null */

	uint64_t pairs; /* records with both latencies */
	struct shadow_stats_side shadow, primary;
	bool has_diff; /* the interval and sd: pairs > 1 (diff_mean needs pairs > 0) */
	double diff_mean, diff_sd, diff_df, diff_ci_low, diff_ci_high;

	uint64_t status_pairs; /* records with both statuses */
	struct shadow_stats_rate shadow_5xx, primary_5xx;
	uint64_t shadow_only, primary_only; /* discordant pairs b and c */
	bool has_p;
	double p_value;	  /* McNemar's exact (binomial) test, two-sided */
	const char *test; /* "mcnemar_exact", or "mcnemar_chi2_cc" past MCNEMAR_EXACT_MAX pairs */

	const char *notes[4]; /* why something is missing, static strings */
	size_t nnotes;
};

/* A new, empty accumulator (owned by the caller: shadow_stats_free), or NULL (memory). */
struct shadow_stats *shadow_stats_new(void);
void shadow_stats_free(struct shadow_stats *s);

/* Folds one parsed shadow record in (other types are ignored). Returns 0, or -1 when out of
 * memory (a failure reason could not be copied). */
int shadow_stats_add(struct shadow_stats *s, const struct logrec *rec);

/* Fills out from s; out's reasons point into s, valid while s is. */
void shadow_stats_summary(const struct shadow_stats *s, struct shadow_summary *out);

/* The Wilson score interval for k successes in n trials with the normal quantile z (1.96 for
 * 95%): *lo and *hi. Returns 0, or -1 when n is 0 or k > n. */
int shadow_stats_wilson(uint64_t k, uint64_t n, double z, double *lo, double *hi);

/* Discordant pairs up to which McNemar's test is the exact binomial one. */
#define MCNEMAR_EXACT_MAX 1000000u

/* McNemar's exact two-sided p-value from the discordant counts b and c (see above), or past
 * MCNEMAR_EXACT_MAX pairs the continuity-corrected chi-square; *test gets the name of the test
 * used. */
double shadow_stats_mcnemar(uint64_t b, uint64_t c, const char **test);

#endif
