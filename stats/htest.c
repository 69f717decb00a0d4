/*
 * htest.c - fixed-horizon hypothesis tests on summary statistics (see include/htest.h).
 *
 * Every GSL call is guarded: its arguments are checked finite and in range first, because
 * some GSL functions abort on NaN under the default error handler and others silently return
 * 0 or infinity at the edges.
 */
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_sf_gamma.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "htest.h"

void htest_init(void)
{
	gsl_set_error_handler_off();
}

double htest_norm_sf(double z)
{
	if (isnan(z))
		return NAN;
	if (isinf(z))
		return z > 0 ? 0.0 : 1.0;
	return gsl_cdf_ugaussian_Q(z);
}

double htest_norm_isf(double p)
{
	if (!(p > 0.0 && p < 1.0))
		return NAN;
	return gsl_cdf_ugaussian_Qinv(p);
}

double htest_t_sf(double t, double df)
{
	if (isnan(t) || !isfinite(df) || !(df > 0.0))
		return NAN;
	if (isinf(t))
		return t > 0 ? 0.0 : 1.0;
	return gsl_cdf_tdist_Q(t, df);
}

double htest_t_isf(double p, double df)
{
	if (!(p > 0.0 && p < 1.0) || !isfinite(df) || !(df > 0.0))
		return NAN;
	return gsl_cdf_tdist_Qinv(p, df);
}

double htest_chi2_sf(double x, double df)
{
	if (isnan(x) || !isfinite(df) || !(df > 0.0))
		return NAN;
	if (x <= 0.0)
		return 1.0;
	if (isinf(x))
		return 0.0;
	return gsl_cdf_chisq_Q(x, df);
}

static bool arm_valid(const struct htest_arm *a)
{
	return isfinite(a->n) && isfinite(a->mean) && isfinite(a->var) && a->n >= 0 &&
	       a->var >= 0 && isfinite(a->df) && a->df >= 0;
}

/* The degrees of freedom of an arm's variance. */
static double arm_df(const struct htest_arm *a)
{
	return a->df > 0 ? a->df : a->n - 1;
}

/* Welch-Satterthwaite df from the variances of the two means and their df. */
static double welch_df(double vx, double dfx, double vy, double dfy)
{
	double den = 0.0;
	if (vx > 0)
		den += vx * vx / dfx;
	if (vy > 0)
		den += vy * vy / dfy;
	return (vx + vy) * (vx + vy) / den;
}

static double clamp01(double p)
{
	return p < 0.0 ? 0.0 : p > 1.0 ? 1.0 : p;
}

int htest_welch(const struct htest_arm *x, const struct htest_arm *y, double alpha,
		struct htest_welch *out)
{
	memset(out, 0, sizeof(*out));
	if (!arm_valid(x) || !arm_valid(y) || !(alpha > 0.0 && alpha < 1.0)) {
		out->note = "invalid input (non-finite value or alpha outside (0, 1))";
		return -1;
	}
	if (x->n < 2 || y->n < 2) {
		out->note = "needs at least 2 values in each arm";
		return -1;
	}
	if (arm_df(x) < 1 || arm_df(y) < 1) {
		out->note = "needs at least 2 units in each arm";
		return -1;
	}
	double vx = x->var / x->n, vy = y->var / y->n;
	out->diff = x->mean - y->mean;
	out->se = sqrt(vx + vy);
	if (!(out->se > 0.0)) {
		/* both arms constant: no variance to scale by, the means alone decide */
		out->ok = true;
		out->df = arm_df(x) + arm_df(y);
		out->ci_low = out->ci_high = out->diff;
		out->t_crit = 0.0;
		if (out->diff == 0.0) {
			out->has_stat = true;
			out->t = 0.0;
			out->p_two = out->p_less = out->p_greater = 1.0;
			out->note = "both arms are constant and equal: no difference (p = 1)";
		} else {
			out->has_stat = false;
			out->p_two = 0.0;
			out->p_less = out->diff < 0 ? 0.0 : 1.0;
			out->p_greater = out->diff > 0 ? 0.0 : 1.0;
			out->note = "both arms are constant with different values: deterministic "
				    "difference (t infinite, p = 0)";
		}
		return 0;
	}
	out->df = welch_df(vx, arm_df(x), vy, arm_df(y));
	out->t = out->diff / out->se;
	out->has_stat = true;
	double q = htest_t_sf(fabs(out->t), out->df);
	out->p_two = clamp01(2.0 * q);
	out->p_greater = htest_t_sf(out->t, out->df);
	out->p_less = htest_t_sf(-out->t, out->df);
	out->t_crit = htest_t_isf(alpha / 2.0, out->df);
	out->ci_low = out->diff - out->t_crit * out->se;
	out->ci_high = out->diff + out->t_crit * out->se;
	if (x->var == 0.0 || y->var == 0.0)
		out->note = "one arm is constant: df is the other arm's";
	out->ok = isfinite(out->p_two) && isfinite(out->ci_low) && isfinite(out->ci_high);
	if (!out->ok) {
		out->note = "numerical failure";
		return -1;
	}
	return 0;
}

int htest_lift(const struct htest_arm *x, const struct htest_arm *y, double alpha,
	       struct htest_lift *out)
{
	memset(out, 0, sizeof(*out));
	if (!arm_valid(x) || !arm_valid(y) || !(alpha > 0.0 && alpha < 1.0)) {
		out->note = "invalid input";
		return -1;
	}
	if (x->n < 2 || y->n < 2 || arm_df(x) < 1 || arm_df(y) < 1) {
		out->note = "needs at least 2 values (and 2 units) in each arm";
		return -1;
	}
	if (y->mean == 0.0) {
		out->note = "control mean is 0: relative lift undefined";
		return -1;
	}
	double my = fabs(y->mean);
	out->lift = (x->mean - y->mean) / my;
	double vr =
	    x->var / (my * my * x->n) + y->var * x->mean * x->mean / (my * my * my * my * y->n);
	out->se = sqrt(vr);
	double vx = x->var / x->n, vy = y->var / y->n;
	if (!(out->se > 0.0) || !(vx + vy > 0.0)) {
		out->ok = true;
		out->df = arm_df(x) + arm_df(y);
		out->ci_low = out->ci_high = out->lift;
		out->p_two = out->lift == 0.0 ? 1.0 : 0.0;
		out->note = "no variance: the lift is exact";
		return 0;
	}
	out->df = welch_df(vx, arm_df(x), vy, arm_df(y));
	double tc = htest_t_isf(alpha / 2.0, out->df);
	out->ci_low = out->lift - tc * out->se;
	out->ci_high = out->lift + tc * out->se;
	out->p_two = clamp01(2.0 * htest_t_sf(fabs(out->lift / out->se), out->df));
	out->ok = isfinite(out->ci_low) && isfinite(out->ci_high) && isfinite(out->p_two);
	if (!out->ok) {
		out->note = "numerical failure";
		return -1;
	}
	return 0;
}

int htest_chi2_table(const double *obs, size_t rows, size_t cols, bool yates,
		     struct htest_chi2 *out)
{
	memset(out, 0, sizeof(*out));
	if (rows < 2 || cols < 2 || rows * cols > HTEST_MAX_CELLS) {
		out->note = "table must be at least 2x2 and at most 64 cells";
		return -1;
	}
	double rt[HTEST_MAX_CELLS] = {0}, ct[HTEST_MAX_CELLS] = {0}, total = 0.0;
	for (size_t i = 0; i < rows; i++)
		for (size_t j = 0; j < cols; j++) {
			double o = obs[i * cols + j];
			if (!isfinite(o) || o < 0) {
				out->note = "counts must be finite and non-negative";
				return -1;
			}
			rt[i] += o;
			ct[j] += o;
			total += o;
		}
	for (size_t i = 0; i < rows; i++)
		if (rt[i] == 0.0) {
			out->note = "an arm has no observations";
			return -1;
		}
	/* columns with no counts carry no information; leave them out */
	size_t used = 0;
	for (size_t j = 0; j < cols; j++)
		used += ct[j] > 0;
	out->df = (double)(rows - 1) * (double)(used > 0 ? used - 1 : 0);
	out->min_expected = INFINITY;
	if (used < 2) {
		out->ok = true;
		out->chi2 = 0.0;
		out->p = 1.0;
		out->df = (double)(rows - 1) * (double)(cols - 1);
		out->min_expected = 0.0;
		out->note = "every observation falls in one category: no difference (p = 1)";
		return 0;
	}
	out->yates = yates && out->df == 1.0;
	double chi2 = 0.0;
	for (size_t i = 0; i < rows; i++)
		for (size_t j = 0; j < cols; j++) {
			if (ct[j] == 0.0)
				continue;
			double e = rt[i] * ct[j] / total;
			double d = obs[i * cols + j] - e;
			if (e < out->min_expected)
				out->min_expected = e;
			if (out->yates) {
				double mag = fabs(d) < 0.5 ? fabs(d) : 0.5;
				d = d > 0 ? d - mag : d + mag;
			}
			chi2 += d * d / e;
		}
	out->chi2 = chi2;
	out->p = htest_chi2_sf(chi2, out->df);
	out->ok = isfinite(out->p);
	if (!out->ok) {
		out->note = "numerical failure";
		return -1;
	}
	if (out->min_expected < 5.0)
		out->note =
		    "an expected count is under 5: the chi-square approximation is unreliable";
	return 0;
}

double htest_rao_scott_delta(double n1, double d1, double n2, double d2)
{
	if (!(n1 > 0 && n2 > 0 && d1 > 0 && d2 > 0) || !isfinite(n1 + n2 + d1 + d2))
		return NAN;
	return (d1 * n2 + d2 * n1) / (n1 + n2);
}

int htest_gof(const double *obs, const double *expected, size_t k, struct htest_chi2 *out)
{
	memset(out, 0, sizeof(*out));
	double total = 0.0;
	size_t cells = 0;
	bool impossible = false;
	out->min_expected = INFINITY;
	for (size_t i = 0; i < k; i++) {
		if (!isfinite(obs[i]) || obs[i] < 0 || !isfinite(expected[i]) || expected[i] < 0) {
			out->note = "counts must be finite and non-negative";
			return -1;
		}
		total += obs[i];
		if (expected[i] > 0) {
			cells++;
			if (expected[i] < out->min_expected)
				out->min_expected = expected[i];
		} else if (obs[i] > 0) {
			impossible = true;
		}
	}
	if (impossible) {
		out->df = cells > 1 ? (double)(cells - 1) : 1.0;
		out->p = 0.0;
		out->note = "traffic reached a variant whose expected share is 0";
		return -1;
	}
	if (total == 0.0 || cells < 2) {
		out->ok = true;
		out->df = cells > 1 ? (double)(cells - 1) : 0.0;
		out->chi2 = 0.0;
		out->p = 1.0;
		out->min_expected = 0.0;
		out->note =
		    total == 0.0 ? "no traffic" : "fewer than 2 variants with traffic share";
		return 0;
	}
	double chi2 = 0.0;
	for (size_t i = 0; i < k; i++) {
		if (expected[i] <= 0)
			continue;
		double d = obs[i] - expected[i];
		chi2 += d * d / expected[i];
	}
	out->chi2 = chi2;
	out->df = (double)(cells - 1);
	out->p = htest_chi2_sf(chi2, out->df);
	out->ok = isfinite(out->p);
	if (!out->ok) {
		out->note = "numerical failure";
		return -1;
	}
	return 0;
}

static bool is_count(double v)
{
	return isfinite(v) && v >= 0 && v <= 1e7 && v == floor(v);
}

int htest_fisher(double a, double b, double c, double d, struct htest_fisher *out)
{
	memset(out, 0, sizeof(*out));
	if (!is_count(a) || !is_count(b) || !is_count(c) || !is_count(d)) {
		out->note = "Fisher's test needs integer counts up to 1e7";
		return -1;
	}
	unsigned r1 = (unsigned)(a + b), c1 = (unsigned)(a + c), n = (unsigned)(a + b + c + d);
	if (r1 == 0 || r1 == n || c1 == 0 || c1 == n) {
		out->ok = true;
		out->p_two = out->p_less = out->p_greater = 1.0;
		out->note = "a margin is zero: no difference (p = 1)";
		return 0;
	}
	unsigned lo = r1 + c1 > n ? r1 + c1 - n : 0, hi = r1 < c1 ? r1 : c1;
	unsigned ka = (unsigned)a;
	double lnorm = gsl_sf_lnchoose(n, r1);
	double lobs = gsl_sf_lnchoose(c1, ka) + gsl_sf_lnchoose(n - c1, r1 - ka) - lnorm;
	double pobs = exp(lobs), two = 0.0, less = 0.0, greater = 0.0;
	for (unsigned k = lo; k <= hi; k++) {
		double pk = exp(gsl_sf_lnchoose(c1, k) + gsl_sf_lnchoose(n - c1, r1 - k) - lnorm);
		if (pk <= pobs * (1.0 + 1e-7))
			two += pk;
		if (k <= ka)
			less += pk;
		if (k >= ka)
			greater += pk;
	}
	out->p_two = clamp01(two);
	out->p_less = clamp01(less);
	out->p_greater = clamp01(greater);
	out->ok = true;
	return 0;
}

int htest_mannwhitney(const double *cx, const double *cy, size_t ngroups, struct htest_mw *out)
{
	memset(out, 0, sizeof(*out));
	double nx = 0, ny = 0, rx = 0, before = 0, ties = 0;
	for (size_t i = 0; i < ngroups; i++) {
		if (!isfinite(cx[i]) || !isfinite(cy[i]) || cx[i] < 0 || cy[i] < 0) {
			out->note = "counts must be finite and non-negative";
			return -1;
		}
		double t = cx[i] + cy[i];
		if (t == 0)
			continue;
		rx += cx[i] * (before + (t + 1.0) / 2.0);
		ties += t * t * t - t;
		before += t;
		nx += cx[i];
		ny += cy[i];
	}
	if (nx == 0 || ny == 0) {
		out->note = "an arm has no values";
		return -1;
	}
	double n = nx + ny;
	out->u = rx - nx * (nx + 1.0) / 2.0;
	out->auc = out->u / (nx * ny);
	double mu = nx * ny / 2.0;
	double var = nx * ny / 12.0 * ((n + 1.0) - (n > 1 ? ties / (n * (n - 1.0)) : 0.0));
	out->ok = true;
	if (!(var > 0.0)) {
		out->z = 0.0;
		out->p_two = 1.0;
		out->note = "every value is tied: no difference (p = 1)";
		return 0;
	}
	double dev = out->u - mu;
	double a = fabs(dev) - 0.5;
	double s = sqrt(var);
	out->z = (dev < 0 ? -a : a) / s;
	out->p_two = a <= 0 ? 1.0 : clamp01(2.0 * htest_norm_sf(a / s));
	return 0;
}

struct ranked {
	double p;
	size_t i;
};

static int cmp_ranked(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;
	if (x->p < y->p)
		return -1;
	if (x->p > y->p)
		return 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

/* Sorts p ascending (stable by index). Returns NULL on bad input or out of memory. */
static struct ranked *rank_p(const double *p, size_t m)
{
	struct ranked *r = malloc((m ? m : 1) * sizeof(*r));
	if (r == NULL)
		return NULL;
	for (size_t i = 0; i < m; i++) {
		if (!(p[i] >= 0.0 && p[i] <= 1.0)) {
			free(r);
			return NULL;
		}
		r[i].p = p[i];
		r[i].i = i;
	}
	qsort(r, m, sizeof(*r), cmp_ranked);
	return r;
}

int htest_holm(const double *p, size_t m, double *out)
{
	struct ranked *r = rank_p(p, m);
	if (r == NULL)
		return -1;
	double run = 0.0;
	for (size_t j = 0; j < m; j++) {
		double v = (double)(m - j) * r[j].p;
		if (v > 1.0)
			v = 1.0;
		if (v > run)
			run = v;
		out[r[j].i] = run;
	}
	free(r);
	return 0;
}

int htest_bh(const double *p, size_t m, double *out)
{
	struct ranked *r = rank_p(p, m);
	if (r == NULL)
		return -1;
	double run = 1.0;
	for (size_t j = m; j-- > 0;) {
		double v = (double)m * r[j].p / (double)(j + 1);
		if (v < run)
			run = v;
		out[r[j].i] = run;
	}
	free(r);
	return 0;
}

int htest_bonferroni(const double *p, size_t m, double *out)
{
	for (size_t i = 0; i < m; i++)
		if (!(p[i] >= 0.0 && p[i] <= 1.0))
			return -1;
	for (size_t i = 0; i < m; i++) {
		double v = (double)m * p[i];
		out[i] = v > 1.0 ? 1.0 : v;
	}
	return 0;
}
