/*
 * seqtest.c - confidence sequences, sequential p-values and the mixture SPRT
 * (see include/seqtest.h; formulas in the statistics reference, sections 2.4 and 3.1).
 */
#include <math.h>
#include <stdbool.h>

#include "seqtest.h"

static bool pos_finite(double v)
{
	return isfinite(v) && v > 0.0;
}

double seqtest_rho(double a, double nstar)
{
	if (!(a > 0.0 && a < 1.0) || !pos_finite(nstar))
		return NAN;
	double l = -2.0 * log(a);
	return sqrt((l + log(l + 1.0)) / nstar);
}

/* 2 (N rho^2 + 1) / (N^2 rho^2), the common factor of both half-widths. */
static double factor(double n, double rho)
{
	return 2.0 * (n * rho * rho + 1.0) / (n * n * rho * rho);
}

double seqtest_halfwidth(double se, double n, double nstar, double alpha)
{
	if (!isfinite(se) || se < 0 || !pos_finite(n) || !(alpha > 0.0 && alpha < 1.0))
		return NAN;
	double rho = seqtest_rho(alpha, nstar);
	if (isnan(rho))
		return NAN;
	return se * sqrt(n) * sqrt(factor(n, rho) * log(sqrt(n * rho * rho + 1.0) / alpha));
}

double seqtest_halfwidth_one_sided(double se, double n, double nstar, double alpha)
{
	if (!isfinite(se) || se < 0 || !pos_finite(n) || !(alpha > 0.0 && alpha < 0.5))
		return NAN;
	double rho = seqtest_rho(2.0 * alpha, nstar);
	if (isnan(rho))
		return NAN;
	return sqrt(se * se * n * factor(n, rho) *
		    log(1.0 + sqrt(n * rho * rho + 1.0) / (2.0 * alpha)));
}

double seqtest_p(double delta, double se, double n, double nstar, double alpha)
{
	if (!isfinite(delta) || !isfinite(se) || se < 0 || !pos_finite(n) || !pos_finite(nstar) ||
	    !(alpha > 0.0 && alpha < 1.0))
		return NAN;
	if (se == 0.0)
		return delta == 0.0 ? 1.0 : 0.0;
	double rho = seqtest_rho(alpha, nstar);
	double z = delta / se, nr = n * rho * rho;
	double loge = nr * z * z / (2.0 * (nr + 1.0)) - 0.5 * log(nr + 1.0);
	if (loge <= 0.0)
		return 1.0;
	return exp(-loge);
}

double seqtest_p_one_sided(double delta, double se, double n, double nstar, double alpha)
{
	if (!isfinite(delta) || !isfinite(se) || se < 0 || !pos_finite(n) || !pos_finite(nstar) ||
	    !(alpha > 0.0 && alpha < 0.5))
		return NAN;
	if (delta <= 0.0)
		return 1.0;
	if (se == 0.0)
		return 0.0;
	double rho = seqtest_rho(2.0 * alpha, nstar);
	/* delta^2 = se^2 n f ln(1 + s / (2 a)) solved for a */
	double s = sqrt(n * rho * rho + 1.0);
	double e = expm1(delta * delta / (se * se * n * factor(n, rho)));
	if (!(e > 0.0))
		return 1.0;
	double p = s / (2.0 * e);
	return p > 1.0 ? 1.0 : p;
}

double seqtest_msprt_lambda(double n, double dbar, double v, double tau2, double theta0)
{
	if (!pos_finite(n) || !isfinite(dbar) || !pos_finite(v) || !pos_finite(tau2) ||
	    !isfinite(theta0))
		return NAN;
	double d = dbar - theta0, vt = v + n * tau2;
	return sqrt(v / vt) * exp(n * n * tau2 * d * d / (2.0 * v * vt));
}

double seqtest_msprt_halfwidth(double n, double v, double tau2, double alpha)
{
	if (!pos_finite(n) || !pos_finite(v) || !pos_finite(tau2) || !(alpha > 0.0 && alpha < 1.0))
		return NAN;
	double vt = v + n * tau2;
	return sqrt(v * vt / (n * n * tau2) * (2.0 * log(1.0 / alpha) + log(vt / v)));
}
