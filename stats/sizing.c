/*
 * sizing.c - sample size and power for two-arm tests (see include/sizing.h).
 */
#include <math.h>
#include <stdbool.h>

#include "htest.h"
#include "sizing.h"

static bool prob(double p)
{
	return p > 0.0 && p < 1.0;
}

/* z_{1-alpha/2} and z_{power}; false for invalid levels. */
static bool quantiles(double alpha, double power, double *za, double *zb)
{
	if (!prob(alpha) || !prob(power))
		return false;
	*za = htest_norm_isf(alpha / 2.0);
	*zb = htest_norm_isf(1.0 - power);
	return isfinite(*za) && isfinite(*zb);
}

double sizing_n_props(double p1, double p2, double alpha, double power)
{
	double za, zb;
	if (!prob(p1) || !prob(p2) || p1 == p2 || !quantiles(alpha, power, &za, &zb))
		return NAN;
	double pb = (p1 + p2) / 2.0, d = p1 - p2;
	double s = za * sqrt(2.0 * pb * (1.0 - pb)) + zb * sqrt(p1 * (1 - p1) + p2 * (1 - p2));
	return s * s / (d * d);
}

double sizing_n_props_unpooled(double p1, double p2, double alpha, double power)
{
	if (!prob(p1) || !prob(p2))
		return NAN;
	return sizing_n_means(p1 * (1 - p1), p2 * (1 - p2), p1 - p2, alpha, power);
}

double sizing_n_means(double var1, double var2, double delta, double alpha, double power)
{
	double za, zb;
	if (!isfinite(var1) || !isfinite(var2) || !(var1 + var2 > 0) || var1 < 0 || var2 < 0 ||
	    !isfinite(delta) || delta == 0.0 || !quantiles(alpha, power, &za, &zb))
		return NAN;
	double s = za + zb;
	return s * s * (var1 + var2) / (delta * delta);
}

double sizing_n_noninferiority(double var1, double var2, double margin, double d, double alpha,
			       double power)
{
	double za, zb;
	/* one-sided: z_{1-alpha} is the two-sided quantile at 2 alpha */
	if (!(alpha < 0.5) || !isfinite(margin) || !isfinite(d) || margin == d ||
	    !quantiles(2.0 * alpha, power, &za, &zb) || !isfinite(var1) || !isfinite(var2) ||
	    var1 < 0 || var2 < 0 || !(var1 + var2 > 0))
		return NAN;
	double s = za + zb;
	return s * s * (var1 + var2) / ((margin - d) * (margin - d));
}

double sizing_power(double delta, double se, double alpha)
{
	if (!isfinite(delta) || !isfinite(se) || !(se > 0) || !prob(alpha))
		return NAN;
	double za = htest_norm_isf(alpha / 2.0), r = delta / se;
	/* 1 - Phi(za - r) + Phi(-za - r), both as upper tails */
	return htest_norm_sf(za - r) + htest_norm_sf(za + r);
}

double sizing_power_props(double n, double p1, double p2, double alpha)
{
	if (!isfinite(n) || !(n > 0) || !prob(p1) || !prob(p2))
		return NAN;
	return sizing_power(p2 - p1, sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / n), alpha);
}
