/*
 * test_htest.c - unit tests for stats/htest.c against the vectors of the statistics reference
 * (V1-V9, V13, V15, VK), each to 1e-9 relative; Welch with per-arm df from the units, and the
 * Rao-Scott factor.
 */
#include <math.h>

#include "accum.h"
#include "check.h"
#include "htest.h"

#define REL 1e-9

static const double v1_a[] = {27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1,
			      21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4};
static const double v1_b[] = {27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0,
			      24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4};

static struct htest_arm arm_of(const double *v, size_t n)
{
	struct accum_moments m;
	accum_moments_init(&m);
	for (size_t i = 0; i < n; i++)
		accum_moments_add(&m, v[i]);
	return (struct htest_arm){(double)m.n, accum_moments_mean(&m), accum_moments_var(&m), 0};
}

static void test_tails(void)
{
	htest_init();
	CHECK_REL(htest_t_sf(40, 100), 1.23105380107e-63, 1e-11);
	CHECK_REL(htest_t_sf(12, 30), 2.7900927076e-13, 1e-10);
	CHECK_REL(htest_norm_sf(8.5), 9.4795348222e-18, 1e-10);
	CHECK_REL(htest_norm_sf(20), 2.75362411861e-89, 1e-11);
	CHECK_REL(htest_norm_sf(37.5), 4.60535300958e-308, 1e-11);
	CHECK_REL(htest_chi2_sf(150, 1), 1.73364324572e-34, 1e-11);
	CHECK_REL(htest_chi2_sf(1000, 1), 1.7958327848e-219, 1e-10);
	CHECK_REL(htest_norm_isf(0.025), 1.95996398454005, 1e-13);
	/* guarded edges: no abort, no silent zero */
	CHECK(isnan(htest_t_sf(2, NAN)));
	CHECK(isnan(htest_t_sf(2, 0)));
	CHECK(isnan(htest_t_isf(0, 5)));
	CHECK(isnan(htest_norm_isf(1.5)));
	CHECK(isnan(htest_chi2_sf(NAN, 1)));
	CHECK(htest_norm_sf(INFINITY) == 0 && htest_norm_sf(-INFINITY) == 1);
}

static void test_welch_v1_v2(void)
{
	struct htest_arm a = arm_of(v1_a, 15), b = arm_of(v1_b, 15);
	CHECK_REL(a.mean, 20.82, 1e-12);
	CHECK_REL(b.mean, 22.9866666667, 1e-11);
	CHECK_REL(a.var, 7.86742857143, 1e-11);
	CHECK_REL(b.var, 3.81266666667, 1e-11);
	struct htest_welch w;
	CHECK_INT(htest_welch(&a, &b, 0.05, &w), 0);
	CHECK(w.ok && w.has_stat);
	CHECK_REL(w.t, -2.45535639829, REL);
	CHECK_REL(w.df, 24.9885292902, REL);
	CHECK_REL(w.p_two, 0.0213780014629, REL);
	CHECK_REL(w.p_less, 0.0106890007314, REL);
	CHECK_REL(w.p_greater, 1 - 0.0106890007314, REL);
	/* the other way round: treatment b against control a (scipy ttest_ind(b, a)) */
	CHECK_INT(htest_welch(&b, &a, 0.05, &w), 0);
	CHECK_REL(w.t, 2.455356398286006, REL);
	CHECK_REL(w.p_greater, 0.010689000731433492, REL);

	struct htest_arm ctl = {4800, 212.4, 45.1 * 45.1, 0}, can = {5200, 215.9, 52.7 * 52.7, 0};
	CHECK_INT(htest_welch(&can, &ctl, 0.05, &w), 0);
	CHECK_REL(w.t, 3.57618624282, REL);
	CHECK_REL(w.df, 9941.70384908, REL);
	CHECK_REL(w.se, 0.978696231781, REL);
	CHECK_REL(w.p_two, 0.000350298791947, REL);
	CHECK_REL(w.p_greater, 0.000175149395974, REL);
	CHECK_REL(w.t_crit, 1.96020263127, REL);
	CHECK_REL(w.ci_low, 1.58155707124, REL);
	CHECK_REL(w.ci_high, 5.41844292876, REL);
	CHECK_REL(w.diff, 3.5, 1e-12);
}

static void test_zero_variance(void)
{
	struct htest_arm five = {4, 5, 0, 0}, six = {4, 6, 0, 0};
	const double other[] = {4, 6, 5, 7};
	struct htest_arm o = arm_of(other, 4);
	struct htest_welch w;
	CHECK_INT(htest_welch(&five, &five, 0.05, &w), 0);
	CHECK(w.ok && w.has_stat && w.t == 0 && w.p_two == 1 && w.note != NULL);
	CHECK_INT(htest_welch(&five, &six, 0.05, &w), 0);
	CHECK(w.ok && !w.has_stat && w.p_two == 0 && w.p_less == 0 && w.p_greater == 1);
	CHECK(w.ci_low == -1 && w.ci_high == -1);
	CHECK_INT(htest_welch(&five, &o, 0.05, &w), 0);
	CHECK_REL(w.t, -0.774596669241, REL);
	CHECK_REL(w.p_two, 0.495025346060, REL);
	CHECK_REL(w.df, 3, 1e-12);
	/* empty and single-value arms, bad numbers: defined failure with a note */
	struct htest_arm empty = {0, 0, 0, 0}, one = {1, 3, 0, 0}, bad = {10, NAN, 1, 0};
	CHECK_INT(htest_welch(&empty, &o, 0.05, &w), -1);
	CHECK(!w.ok && w.note != NULL);
	CHECK_INT(htest_welch(&one, &o, 0.05, &w), -1);
	CHECK_INT(htest_welch(&bad, &o, 0.05, &w), -1);
	struct htest_lift l;
	CHECK_INT(htest_lift(&o, &(struct htest_arm){10, 0, 1, 0}, 0.05, &l), -1);
	CHECK(!l.ok && l.note != NULL);
	CHECK_INT(htest_lift(&six, &five, 0.05, &l), 0);
	CHECK(l.ok && l.lift == 0.2 && l.p_two == 0);
}

static void test_chi2(void)
{
	const double v4[] = {120, 9880, 165, 9835};
	struct htest_chi2 c;
	CHECK_INT(htest_chi2_table(v4, 2, 2, true, &c), 0);
	CHECK(c.yates);
	CHECK_REL(c.chi2, 6.89118179674, REL);
	CHECK_REL(c.p, 0.00866219819129, REL);
	CHECK_INT(htest_chi2_table(v4, 2, 2, false, &c), 0);
	CHECK(!c.yates && c.df == 1 && c.note == NULL);
	CHECK_REL(c.chi2, 7.20797682769, REL);
	CHECK_REL(c.p, 0.00725802643547, REL);
	CHECK_REL(c.min_expected, 142.5, 1e-12);
	/* pooled z, one-sided: z^2 = chi2 */
	CHECK_REL(sqrt(c.chi2), 2.68476755562, REL);
	CHECK_REL(htest_norm_sf(sqrt(c.chi2)), 0.00362901321773, REL);

	/* V4b: unpooled z (var p(1-p)) and Welch on raw 0/1 data (var n/(n-1) p(1-p)) */
	struct htest_arm ctl = {10000, 0.012, 0.012 * 0.988, 0},
			 can = {10000, 0.0165, 0.0165 * 0.9835, 0};
	struct htest_welch w;
	CHECK_INT(htest_welch(&can, &ctl, 0.05, &w), 0);
	CHECK_REL(w.t, 2.68525147998, REL);
	CHECK_REL(2 * htest_norm_sf(w.t), 0.00724752513315, REL);
	ctl.var *= 10000.0 / 9999.0;
	can.var *= 10000.0 / 9999.0;
	CHECK_INT(htest_welch(&can, &ctl, 0.05, &w), 0);
	CHECK_REL(w.t, 2.68511721405, REL);
	CHECK_REL(w.p_two, 0.0072565618987, REL);

	const double v5[] = {310, 150, 40, 290, 175, 35};
	CHECK_INT(htest_chi2_table(v5, 2, 3, true, &c), 0);
	CHECK(!c.yates && c.df == 2);
	CHECK_REL(c.chi2, 2.92307692308, REL);
	CHECK_REL(c.p, 0.231879262848, REL);

	const double v8[] = {1, 9, 8, 4};
	CHECK_INT(htest_chi2_table(v8, 2, 2, true, &c), 0);
	CHECK_REL(c.p, 0.0240499639911, REL);
	CHECK(c.min_expected < 5 && c.note != NULL);
	CHECK_INT(htest_chi2_table(v8, 2, 2, false, &c), 0);
	CHECK_REL(c.chi2, 7.245584045584045, REL);
	CHECK_REL(c.p, 0.00710755919864726, REL);

	/* no events anywhere: defined; an empty arm: not computable */
	const double none[] = {0, 100, 0, 120}, empty[] = {5, 95, 0, 0};
	CHECK_INT(htest_chi2_table(none, 2, 2, false, &c), 0);
	CHECK(c.ok && c.p == 1 && c.chi2 == 0 && c.note != NULL);
	CHECK_INT(htest_chi2_table(empty, 2, 2, false, &c), -1);
	CHECK(!c.ok && c.note != NULL);

	/* k x 2: three arms of errors/ok */
	const double k3[] = {10, 990, 12, 988, 25, 975};
	CHECK_INT(htest_chi2_table(k3, 3, 2, false, &c), 0);
	CHECK(c.df == 2 && c.p > 0 && c.p < 1);
}

static void test_fisher(void)
{
	struct htest_fisher f;
	CHECK_INT(htest_fisher(1, 9, 8, 4, &f), 0);
	CHECK_REL(f.p_two, 0.0114993365767, REL);
	CHECK_REL(f.p_less, 0.0103936311367, REL);
	CHECK_REL(f.p_greater, 0.999557717824, REL);
	CHECK_INT(htest_fisher(0, 10, 0, 10, &f), 0);
	CHECK(f.p_two == 1);
	CHECK_INT(htest_fisher(1.5, 2, 3, 4, &f), -1);
}

static void test_srm(void)
{
	struct htest_chi2 c;
	double o1[] = {10300, 9700}, e1[] = {10000, 10000};
	CHECK_INT(htest_gof(o1, e1, 2, &c), 0);
	CHECK_REL(c.chi2, 18, 1e-12);
	CHECK_REL(c.p, 2.20904969986e-05, REL);
	double o2[] = {5050, 4950}, e2[] = {5000, 5000};
	CHECK_INT(htest_gof(o2, e2, 2, &c), 0);
	CHECK_REL(c.chi2, 1, 1e-12);
	CHECK_REL(c.p, 0.317310507863, REL);
	double o3[] = {600, 400}, e3[] = {500, 500};
	CHECK_INT(htest_gof(o3, e3, 2, &c), 0);
	CHECK_REL(c.chi2, 40, 1e-12);
	CHECK_REL(c.p, 2.53962858947e-10, REL);
	double o4[] = {2120, 3950, 3930}, e4[] = {2000, 4000, 4000};
	CHECK_INT(htest_gof(o4, e4, 3, &c), 0);
	CHECK(c.df == 2);
	CHECK_REL(c.chi2, 9.05, 1e-12);
	CHECK_REL(c.p, 0.0108347144364, REL);
	double o5[] = {1100, 8900}, e5[] = {1000, 9000};
	CHECK_INT(htest_gof(o5, e5, 2, &c), 0);
	CHECK_REL(c.chi2, 11.1111111111, 1e-10);
	CHECK_REL(c.p, 0.000858120666394, REL);
	double o6[] = {1000, 9000};
	CHECK_INT(htest_gof(o6, e5, 2, &c), 0);
	CHECK(c.chi2 == 0 && c.p == 1);
	/* weight 0 with traffic: flagged, not a crash; weight 0 without traffic: left out */
	double o7[] = {500, 500, 3}, e7[] = {501.5, 501.5, 0};
	CHECK_INT(htest_gof(o7, e7, 3, &c), -1);
	CHECK(c.p == 0 && c.note != NULL);
	double o8[] = {500, 500, 0}, e8[] = {500, 500, 0};
	CHECK_INT(htest_gof(o8, e8, 3, &c), 0);
	CHECK(c.df == 1 && c.p == 1);
	double z[] = {0, 0};
	CHECK_INT(htest_gof(z, e1, 2, &c), 0);
	CHECK(c.p == 1);
}

static void test_lift(void)
{
	struct htest_arm ctl = {10000, 0.1, 0.1 * 0.9, 0}, can = {10000, 0.11, 0.11 * 0.89, 0};
	struct htest_lift l;
	CHECK_INT(htest_lift(&can, &ctl, 0.05, &l), 0);
	CHECK_REL(l.lift, 0.1, 1e-12);
	CHECK_REL(l.se, 0.0454752680036, REL);
	CHECK_REL(l.df, 19962.7125581, REL);
	CHECK_REL(l.ci_low, 0.0108647081448, REL);
	CHECK_REL(l.ci_high, 0.189135291855, REL);
	CHECK_REL(l.p_two, 0.0278895287646, REL);
}

static void test_mannwhitney(void)
{
	/* VK: canary b against baseline a, as tied groups of the exact values */
	double vals[30], cx[30] = {0}, cy[30] = {0};
	size_t ng = 0;
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < 15; i++) {
			double v = pass ? v1_a[i] : v1_b[i];
			size_t g;
			for (g = 0; g < ng && vals[g] != v; g++)
				;
			if (g == ng)
				vals[ng++] = v;
			(pass ? cy : cx)[g] += 1;
		}
	/* order the groups by value */
	for (size_t i = 1; i < ng; i++)
		for (size_t j = i; j > 0 && vals[j - 1] > vals[j]; j--) {
			double t = vals[j];
			vals[j] = vals[j - 1];
			vals[j - 1] = t;
			t = cx[j];
			cx[j] = cx[j - 1];
			cx[j - 1] = t;
			t = cy[j];
			cy[j] = cy[j - 1];
			cy[j - 1] = t;
		}
	struct htest_mw m;
	CHECK_INT(htest_mannwhitney(cx, cy, ng, &m), 0);
	CHECK_REL(m.u, 171.5, 1e-12);
	CHECK_REL(m.p_two, 0.0152013038212, REL);
	CHECK(m.z > 0);
	CHECK_REL(m.auc, 171.5 / 225.0, 1e-12);
	/* the other direction gives the complementary U and the same p */
	CHECK_INT(htest_mannwhitney(cy, cx, ng, &m), 0);
	CHECK_REL(m.u, 225 - 171.5, 1e-12);
	CHECK_REL(m.p_two, 0.0152013038212, REL);
	double one[] = {5}, other[] = {7};
	CHECK_INT(htest_mannwhitney(one, other, 1, &m), 0);
	CHECK(m.p_two == 1 && m.note != NULL);
	double none[] = {0};
	CHECK_INT(htest_mannwhitney(none, other, 1, &m), -1);
}

static void test_adjust(void)
{
	const double p[] = {0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216};
	const double bonf[] = {0.01, 0.08, 0.39, 0.41, 0.42, 0.6, 0.74, 1, 1, 1};
	const double holm[] = {0.01, 0.072, 0.312, 0.312, 0.312, 0.312, 0.312, 0.615, 0.615, 0.615};
	const double bh[] = {0.01, 0.04,	   0.084, 0.084, 0.084,
			     0.1,  0.105714285714, 0.216, 0.216, 0.216};
	double out[10], shuffled[10], sout[10];
	CHECK_INT(htest_bonferroni(p, 10, out), 0);
	for (int i = 0; i < 10; i++)
		CHECK_REL(out[i], bonf[i], REL);
	CHECK_INT(htest_holm(p, 10, out), 0);
	for (int i = 0; i < 10; i++)
		CHECK_REL(out[i], holm[i], REL);
	CHECK_INT(htest_bh(p, 10, out), 0);
	for (int i = 0; i < 10; i++)
		CHECK_REL(out[i], bh[i], REL);
	/* order of the input does not matter */
	for (int i = 0; i < 10; i++)
		shuffled[i] = p[(i * 7) % 10];
	CHECK_INT(htest_holm(shuffled, 10, sout), 0);
	for (int i = 0; i < 10; i++)
		CHECK_REL(sout[i], holm[(i * 7) % 10], REL);
	CHECK_INT(htest_bh(shuffled, 10, sout), 0);
	for (int i = 0; i < 10; i++)
		CHECK_REL(sout[i], bh[(i * 7) % 10], REL);
	const double bad[] = {0.5, NAN};
	CHECK_INT(htest_holm(bad, 2, out), -1);
	CHECK_INT(htest_holm(p, 0, out), 0);
}

/*
 * Clustered arms: the df of each arm's variance is its units - 1, not n - 1. x: n 100 values
 * from 10 units, var/n 0.04; y: n 200 from 20 units, var/n 0.045 (scipy: df =
 * 25.408226221079687, t = 1.7149858514250886, p = 0.09852118737407141). And the Rao-Scott
 * factor (d1 n2 + d2 n1) / (n1 + n2).
 */
static void test_clustered(void)
{
	struct htest_arm x = {100, 1.0, 4.0, 9}, y = {200, 0.5, 9.0, 19};
	struct htest_welch w;
	CHECK_INT(htest_welch(&x, &y, 0.05, &w), 0);
	CHECK_REL(w.df, 25.408226221079687, 1e-12);
	CHECK_REL(w.t, 1.7149858514250886, 1e-12);
	CHECK_REL(w.p_two, 0.09852118737407141, 1e-9);
	/* df 0 means n - 1: the independent test */
	struct htest_arm xi = {100, 1.0, 4.0, 0}, yi = {200, 0.5, 9.0, 0};
	struct htest_welch wi;
	CHECK_INT(htest_welch(&xi, &yi, 0.05, &wi), 0);
	CHECK(wi.df > 200);
	/* one unit in an arm: no test */
	struct htest_arm one = {50, 1.0, 4.0, 0.5};
	CHECK_INT(htest_welch(&one, &y, 0.05, &w), -1);
	CHECK_REL(htest_rao_scott_delta(100, 2, 300, 1), 1.75, 1e-15);
	CHECK_REL(htest_rao_scott_delta(100, 1, 300, 1), 1.0, 1e-15);
	CHECK(isnan(htest_rao_scott_delta(0, 1, 300, 1)));
}

int main(void)
{
	test_clustered();
	test_tails();
	test_welch_v1_v2();
	test_zero_variance();
	test_chi2();
	test_fisher();
	test_srm();
	test_lift();
	test_mannwhitney();
	test_adjust();
	return check_summary("test_htest");
}
