/*
 * htest.h - fixed-horizon hypothesis tests on summary statistics, with GSL's distributions.
 *
 * Welch's t-test, relative lift by the delta method, Pearson chi-square on r x c tables (with
 * Yates' correction on request), chi-square goodness of fit (sample-ratio mismatch), Fisher's
 * exact test on 2x2 tables, Mann-Whitney U from tied groups (histogram buckets), and the Holm,
 * Benjamini-Hochberg and Bonferroni adjustments.
 *
 * Conventions shared by every function:
 *   - inputs are checked (finite, in range) before any GSL call; GSL's error handler must be
 *     off (htest_init() turns it off and is cheap to call more than once);
 *   - p-values come from upper-tail functions: p_two = 2 * Q(|t|), never 1 - P;
 *   - outputs never hold NaN or infinity where `ok` is true; a quantity that cannot be
 *     computed is flagged (`ok` false or a has_* flag false) and `note` says why in a static
 *     string;
 *   - comparisons are "x against y" like scipy.stats.ttest_ind(x, y): the statistic and the
 *     difference are x - y (the report passes the treatment as x and the control as y).
 */
#ifndef ABGATE_HTEST_H
#define ABGATE_HTEST_H

#include <stdbool.h>
#include <stddef.h>

/* Turns GSL's aborting error handler off (idempotent). */
void htest_init(void);

/* Upper tails and their inverses; NAN for invalid arguments (non-finite, df <= 0, p outside
 * (0, 1)). htest_*_isf(p) is the x with Q(x) = p. */
double htest_norm_sf(double z);
double htest_norm_isf(double p);
double htest_t_sf(double t, double df);
double htest_t_isf(double p, double df);
double htest_chi2_sf(double x, double df);

/*
 * One arm as summary statistics: count, mean and the variance the test should use, such that
 * var / n is the variance of the mean (the sample variance for independent continuous data;
 * p(1-p) for proportions; the delta-method variance of the mean times n for values clustered
 * by unit), and the degrees of freedom of that variance (n - 1 for independent values, units
 * - 1 for clustered ones; 0 means n - 1).
 */
struct htest_arm {
	double n;
	double mean;
	double var;
	double df;
};

struct htest_welch {
	bool ok;       /* everything below is finite and meaningful */
	bool has_stat; /* t is finite (false for a deterministic difference) */
	double t, df, se;
	double p_two;		/* 2 * Q(|t|, df) */
	double p_less;		/* alternative: x < y */
	double p_greater;	/* alternative: x > y */
	double diff;		/* mean x - mean y */
	double ci_low, ci_high; /* two-sided 1 - alpha interval for diff */
	double t_crit;		/* t_{1-alpha/2, df} */
	const char *note;	/* NULL, or why a case was defined specially / not computed */
};

/*
 * Welch's unequal-variance t-test of x against y at level alpha (for the CI), with the
 * Welch-Satterthwaite df from each arm's df (so clustered arms give the delta-method t test).
 * Needs n >= 2 and df >= 1 in each arm. One constant arm: df = df_other. Both constant: equal
 * means give t = 0, p = 1; different means give p = 0 with has_stat false (scipy: t = +-inf).
 * Returns 0, or -1 when not computable (ok false, note set).
 */
int htest_welch(const struct htest_arm *x, const struct htest_arm *y, double alpha,
		struct htest_welch *out);

struct htest_lift {
	bool ok;
	double lift; /* (mean x - mean y) / |mean y| */
	double se;   /* delta method, independent arms */
	double df;   /* Welch-Satterthwaite df from the unit variances */
	double ci_low, ci_high;
	double p_two; /* 2 * Q(|lift/se|, df) */
	const char *note;
};

/* Relative lift of x over y with its delta-method CI (GrowthBook's formulas). Returns 0 or -1
 * (zero control mean, an arm under 2 values, or zero variance in both arms). */
int htest_lift(const struct htest_arm *x, const struct htest_arm *y, double alpha,
	       struct htest_lift *out);

#define HTEST_MAX_CELLS 64

struct htest_chi2 {
	bool ok;
	double chi2, df, p;
	double min_expected; /* smallest expected count (warn under 5) */
	bool yates;	     /* the correction was applied (only ever with df = 1) */
	const char *note;
};

/*
 * Pearson's chi-square test of independence on a rows x cols table of counts (row-major,
 * rows * cols <= HTEST_MAX_CELLS, rows and cols >= 2). yates: apply Yates' continuity
 * correction when df = 1 (scipy's default; magnitude min(0.5, |O - E|)). A zero row total
 * makes the test uncomputable (-1); a zero column total (no events anywhere) gives chi2 = 0,
 * p = 1 with a note.
 */
int htest_chi2_table(const double *obs, size_t rows, size_t cols, bool yates,
		     struct htest_chi2 *out);

/*
 * The Rao-Scott first-order correction of a 2 x 2 chi-square comparing two proportions from
 * clustered samples: chi2 / delta, with delta = (d1 n2 + d2 n1) / (n1 + n2) for arms of n1 and
 * n2 values and design effects d1 and d2 (the variance of each proportion over its variance
 * under independent sampling). With d1 = d2 = 1 it is Pearson's chi-square. Returns delta, or
 * NAN for invalid input (then the caller keeps the uncorrected statistic).
 */
double htest_rao_scott_delta(double n1, double d1, double n2, double d2);

/*
 * Chi-square goodness of fit of k observed counts against expected counts (same total; e.g.
 * weight_i / sum(weights) * total), equal to scipy.stats.chisquare. Cells with expected 0 and
 * observed 0 are left out (and out of df); a cell with expected 0 but observed > 0 gives p = 0
 * with ok false and a note. A zero total gives chi2 = 0, p = 1.
 */
int htest_gof(const double *obs, const double *expected, size_t k, struct htest_chi2 *out);

/* Fisher's exact test on [[a, b], [c, d]]: two-sided p as scipy.stats.fisher_exact (sum of
 * the tables no more likely than the observed one, relative tolerance 1e-7). */
struct htest_fisher {
	bool ok;
	double p_two, p_less, p_greater;
	const char *note;
};
int htest_fisher(double a, double b, double c, double d, struct htest_fisher *out);

struct htest_mw {
	bool ok;
	double u;     /* U of x: pairs (x, y) with x > y, ties counting 1/2 */
	double auc;   /* u / (nx * ny): P(X > Y) + P(X = Y)/2 */
	double z;     /* with the continuity correction, signed like u - nx ny / 2 */
	double p_two; /* normal approximation, tie-corrected, continuity-corrected */
	const char *note;
};

/*
 * Mann-Whitney U of x against y from tied groups in increasing value order: cx[i] and cy[i]
 * values of x and y share the i-th value (a histogram bucket is one group). Same as
 * scipy.stats.mannwhitneyu(x, y, method="asymptotic") and R's wilcox.test(x, y, exact=FALSE).
 */
int htest_mannwhitney(const double *cx, const double *cy, size_t ngroups, struct htest_mw *out);

/* p-value adjustments of m p-values (out may equal p): Holm step-down, Benjamini-Hochberg
 * step-up, Bonferroni; the same as R's p.adjust. Return 0, or -1 when a p is not in [0, 1]. */
int htest_holm(const double *p, size_t m, double *out);
int htest_bh(const double *p, size_t m, double *out);
int htest_bonferroni(const double *p, size_t m, double *out);

#endif
