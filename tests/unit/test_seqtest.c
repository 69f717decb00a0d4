/*
 * test_seqtest.c - unit tests for stats/seqtest.c: confidence sequences and sequential
 * p-values (V10, V10b of the statistics reference) and the mixture SPRT (V11).
 */
#include <math.h>

#include "check.h"
#include "htest.h"
#include "seqtest.h"

#define REL 1e-9

static void test_v10(void)
{
	htest_init();
	/* V9's lift and SE, N* = 5000, N = 20000 */
	struct htest_arm ctl = {10000, 0.1, 0.1 * 0.9, 0}, can = {10000, 0.11, 0.11 * 0.89, 0};
	struct htest_lift l;
	CHECK_INT(htest_lift(&can, &ctl, 0.05, &l), 0);
	CHECK_REL(seqtest_rho(0.05, 5000), 0.0398400667714, REL);
	double h = seqtest_halfwidth(l.se, 20000, 5000, 0.05);
	CHECK_REL(h, 0.142206353762, REL);
	CHECK_REL(l.lift - h, -0.0422063537621, REL);
	CHECK_REL(l.lift + h, 0.242206353762, REL);
	CHECK_REL(seqtest_p(l.lift, l.se, 20000, 5000, 0.05), 0.549037944345, REL);
	CHECK_REL(seqtest_rho(0.1, 5000), 0.0355776885289, REL);
	double h1 = seqtest_halfwidth_one_sided(l.se, 20000, 5000, 0.05);
	CHECK_REL(h1, 0.13043200631, REL);
	CHECK_REL(l.lift - h1, -0.0304320063104, REL);
	/* fixed-horizon half-widths the sequence is compared with */
	CHECK_REL(htest_norm_isf(0.025) * l.se, 0.0891298874744, REL);
	CHECK_REL(htest_norm_isf(0.05) * l.se, 0.0748001595123, REL);
}

static void test_v10b(void)
{
	struct htest_arm ctl = {100000, 0.1, 0.1 * 0.9, 0}, can = {100000, 0.105, 0.105 * 0.895, 0};
	struct htest_lift l;
	CHECK_INT(htest_lift(&can, &ctl, 0.05, &l), 0);
	CHECK_REL(l.lift, 0.05, 1e-12);
	CHECK_REL(l.se, 0.0138996402831, REL);
	CHECK_REL(seqtest_halfwidth(l.se, 200000, 5000, 0.05), 0.0477305383591, REL);
	CHECK_REL(seqtest_p(l.lift, l.se, 200000, 5000, 0.05), 0.0282140496826, REL);
	/* the fixed-horizon p quoted with it is the normal one */
	CHECK_REL(2 * htest_norm_sf(l.lift / l.se), 0.000321642125388, REL);
}

static void test_one_sided_p(void)
{
	/* the one-sided p is where the one-sided bound (mixture fixed at alpha) touches 0 */
	double se = 0.01, n = 20000, ns = 5000;
	double delta = seqtest_halfwidth_one_sided(se, n, ns, 0.05);
	CHECK_REL(seqtest_p_one_sided(delta, se, n, ns, 0.05), 0.05, 1e-12);
	CHECK(seqtest_p_one_sided(delta * 1.01, se, n, ns, 0.05) < 0.05);
	CHECK(seqtest_p_one_sided(delta * 0.99, se, n, ns, 0.05) > 0.05);
	CHECK(seqtest_p_one_sided(-0.05, se, n, ns, 0.05) == 1);
	CHECK(seqtest_p_one_sided(1e-6, se, n, ns, 0.05) == 1);
	CHECK(seqtest_p_one_sided(0.01, 0, n, ns, 0.05) == 0);
	CHECK(isnan(seqtest_p_one_sided(0.01, se, n, ns, 0.5)));
	/* two-sided p < alpha exactly when the sequence excludes 0 */
	double h = seqtest_halfwidth(se, n, ns, 0.05);
	CHECK(seqtest_p(h * 1.001, se, n, ns, 0.05) < 0.05);
	CHECK(seqtest_p(h * 0.999, se, n, ns, 0.05) > 0.05);
	CHECK(seqtest_p(0, 0, n, ns, 0.05) == 1 && seqtest_p(1, 0, n, ns, 0.05) == 0);
	CHECK(isnan(seqtest_p(NAN, se, n, ns, 0.05)));
	CHECK(isnan(seqtest_halfwidth(se, 0, ns, 0.05)));
	CHECK(isnan(seqtest_rho(0.05, 0)));
}

static void test_msprt(void)
{
	double v = 0.1879;
	double lam = seqtest_msprt_lambda(10000, 0.01, v, 1e-4, 0);
	CHECK_REL(lam, 3.73617675192, REL);
	CHECK_REL(1 / lam, 0.267653290088, REL);
	double hw = seqtest_msprt_halfwidth(10000, v, 1e-4, 0.05);
	CHECK_REL(hw, 0.013224723617, REL);
	CHECK_REL(0.01 - hw, -0.00322472361696, REL);
	CHECK_REL(seqtest_msprt_lambda(10000, 0.01, v, 1e-3, 0), 1.85037626249, REL);
	CHECK_REL(1 / seqtest_msprt_lambda(10000, 0.01, v, 1e-3, 0), 0.540430624989, REL);
	/* the running minimum over looks, Bernoulli plug-in V at each look */
	const double n[] = {2000, 5000, 10000}, cx[] = {200, 500, 1000}, cy[] = {230, 560, 1100};
	const double want[] = {0.785246006804, 0.480872307973, 0.267653290088};
	double pav = 1;
	for (int i = 0; i < 3; i++) {
		double px = cx[i] / n[i], py = cy[i] / n[i];
		double vi = px * (1 - px) + py * (1 - py);
		double p = 1 / seqtest_msprt_lambda(n[i], py - px, vi, 1e-4, 0);
		if (p < pav)
			pav = p;
		CHECK_REL(pav, want[i], REL);
	}
	CHECK(isnan(seqtest_msprt_lambda(0, 0.01, v, 1e-4, 0)));
}

int main(void)
{
	test_v10();
	test_v10b();
	test_one_sided_p();
	test_msprt();
	return check_summary("test_seqtest");
}
