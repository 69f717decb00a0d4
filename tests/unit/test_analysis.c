/*
 * test_analysis.c - unit tests for stats/analysis.c: calibration of the whole pipeline
 * (accumulators -> analysis) on simulated experiments with a seeded RNG:
 *   - 1,000 A/A experiments: the false-positive rate of the fixed-horizon tests is alpha within
 *     binomial noise (4 sigma);
 *   - 1,000 A/A experiments looked at 20 times each with sequential testing: the rate of ever
 *     rejecting stays at or below alpha (plus noise), while naive repeated fixed tests inflate it;
 *   - a true effect sized by sizing.c for 80% power is detected 80% of the time (4 sigma);
 *   - 1,000 A/A experiments of returning units (geometric requests per unit, a per-unit level
 *     and propensity): the unit-level tests reject at alpha within 4 sigma, fixed-horizon and
 *     with 10 sequential looks, while the same values taken as independent reject far more;
 * plus the Holm families and the p-value conventions of the comparisons.
 */
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>

#include "accum.h"
#include "analysis.h"
#include "check.h"
#include "htest.h"
#include "sizing.h"

#define RUNS 1000
#define ALPHA 0.05

static gsl_rng *rng;
static char n_cont[] = "value", n_bin[] = "conv";

static struct conf_metric m_cont = {.name = n_cont,
				    .kind = CONF_METRIC_CONTINUOUS,
				    .source = CONF_SRC_OUTCOME,
				    .goal = CONF_GOAL_INCREASE,
				    .primary = true};
static struct conf_metric m_bin = {.name = n_bin,
				   .kind = CONF_METRIC_BINARY,
				   .source = CONF_SRC_OUTCOME,
				   .goal = CONF_GOAL_INCREASE,
				   .primary = true};

/* Two arms with one metric each, no histogram (speed). */
struct pair {
	struct accum_variant *v[2];
};

static void pair_init(struct pair *p)
{
	bool cont[1] = {false};
	p->v[0] = accum_variant_new(1, cont);
	p->v[1] = accum_variant_new(1, cont);
}

static void pair_free(struct pair *p)
{
	accum_variant_free(p->v[0]);
	accum_variant_free(p->v[1]);
}

static struct analysis *analyse(struct pair *p, const struct conf_metric *m, bool sequential,
				double nstar)
{
	const char *names[2] = {"control", "treatment"};
	const double w[2] = {50, 50};
	const struct accum_variant *acc[2] = {p->v[0], p->v[1]};
	struct conf_decision dec;
	analysis_decision_defaults(&dec);
	dec.alpha = ALPHA;
	dec.sequential = sequential;
	dec.sequential_n = nstar;
	struct analysis_input in = {.experiment = "sim",
				    .nvariants = 2,
				    .names = names,
				    .weights = w,
				    .acc = acc,
				    .metrics = m,
				    .nmetrics = 1,
				    .decision = &dec};
	return analysis_build(&in);
}

static void add(struct pair *p, int arm, double x)
{
	accum_variant_request(p->v[arm], 0, 0, 0);
	accum_metric_add(&p->v[arm]->metrics[0], 1795000000.0, x);
}

/* |count - n p| within 4 binomial standard deviations. */
static bool within(int count, int n, double p)
{
	return fabs(count - n * p) <= 4 * sqrt(n * p * (1 - p));
}

static void test_aa_fixed(void)
{
	int fp_t = 0, fp_chi = 0;
	for (int r = 0; r < RUNS; r++) {
		struct pair pc, pb;
		pair_init(&pc);
		pair_init(&pb);
		for (int arm = 0; arm < 2; arm++)
			for (int i = 0; i < 500; i++) {
				add(&pc, arm, 10 + gsl_ran_gaussian(rng, 2));
				add(&pb, arm, gsl_rng_uniform(rng) < 0.1);
			}
		struct analysis *a = analyse(&pc, &m_cont, false, 0);
		fp_t += a->metrics[0].cmp[0].p_value < ALPHA;
		analysis_free(a);
		a = analyse(&pb, &m_bin, false, 0);
		fp_chi += a->metrics[0].cmp[0].p_value < ALPHA;
		analysis_free(a);
		pair_free(&pc);
		pair_free(&pb);
	}
	printf("  A/A fixed horizon: Welch %d/%d, chi-square %d/%d rejections at alpha %g\n", fp_t,
	       RUNS, fp_chi, RUNS, ALPHA);
	CHECK(within(fp_t, RUNS, ALPHA));
	CHECK(within(fp_chi, RUNS, ALPHA));
}

static void test_aa_sequential(void)
{
	/* 20 looks of 100 values per arm; N* = the final total (4000) */
	int fp_seq = 0, fp_peek = 0, missing = 0;
	for (int r = 0; r < RUNS; r++) {
		struct pair p;
		pair_init(&p);
		bool seq = false, peek = false;
		for (int look = 0; look < 20; look++) {
			for (int arm = 0; arm < 2; arm++)
				for (int i = 0; i < 100; i++)
					add(&p, arm, 10 + gsl_ran_gaussian(rng, 2));
			struct analysis *a = analyse(&p, &m_cont, true, 4000);
			const struct analysis_cmp *c = &a->metrics[0].cmp[0];
			missing += !c->has_seq;
			seq |= c->p_seq < ALPHA;
			peek |= c->p_value < ALPHA;
			analysis_free(a);
		}
		fp_seq += seq;
		fp_peek += peek;
		pair_free(&p);
	}
	printf("  A/A with 20 looks: sequential %d/%d, naive repeated fixed tests %d/%d\n", fp_seq,
	       RUNS, fp_peek, RUNS);
	CHECK_INT(missing, 0);
	CHECK(fp_seq <= RUNS * ALPHA + 4 * sqrt(RUNS * ALPHA * (1 - ALPHA)));
	/* peeking with fixed-horizon tests inflates the error rate well beyond alpha */
	CHECK(fp_peek > 2 * RUNS * ALPHA);
}

/* Adds `units` returning units to pc (continuous) and pb (binary), each in an arm drawn at
 * random: each unit has a geometric number of requests (mean 5), a level N(10, 3) and a
 * propensity Beta(1, 9). keyed: the values carry their unit's key; otherwise each value is
 * its own unit. */
static void add_units(struct pair *pc, struct pair *pb, int units, bool keyed, unsigned *next)
{
	for (int u = 0; u < units; u++) {
		int arm = gsl_rng_uniform(rng) < 0.5;
		uint64_t key = accum_unit_key(++*next);
		double level = 10 + gsl_ran_gaussian(rng, 3), p = gsl_ran_beta(rng, 1, 9);
		unsigned k = gsl_ran_geometric(rng, 0.2);
		for (unsigned i = 0; i < k; i++) {
			double x = level + gsl_ran_gaussian(rng, 1);
			double y = gsl_rng_uniform(rng) < p;
			accum_variant_request(pc->v[arm], 0, key, 0);
			accum_variant_request(pb->v[arm], 0, key, 0);
			if (keyed) {
				accum_metric_add_unit(&pc->v[arm]->metrics[0], 1795000000.0, x, key);
				accum_metric_add_unit(&pb->v[arm]->metrics[0], 1795000000.0, y, key);
			} else {
				accum_metric_add(&pc->v[arm]->metrics[0], 1795000000.0, x);
				accum_metric_add(&pb->v[arm]->metrics[0], 1795000000.0, y);
			}
		}
	}
}

static void test_aa_clustered(void)
{
	int fp[2][2] = {{0}}, fp_seq = 0, fp_srm = 0, missing = 0;
	unsigned next = 0;
	for (int r = 0; r < RUNS; r++) {
		for (int keyed = 0; keyed < 2; keyed++) {
			struct pair pc, pb;
			pair_init(&pc);
			pair_init(&pb);
			add_units(&pc, &pb, 300, keyed, &next);
			struct analysis *a = analyse(&pc, &m_cont, false, 0);
			fp[keyed][0] += a->metrics[0].cmp[0].p_value < ALPHA;
			if (keyed)
				fp_srm += a->srm.p < ALPHA;
			analysis_free(a);
			a = analyse(&pb, &m_bin, false, 0);
			fp[keyed][1] += a->metrics[0].cmp[0].p_value < ALPHA;
			analysis_free(a);
			pair_free(&pc);
			pair_free(&pb);
		}
		/* 10 sequential looks of 60 more units each, N* = the final units (600) */
		struct pair pc, pb;
		pair_init(&pc);
		pair_init(&pb);
		bool seq = false;
		for (int look = 0; look < 10; look++) {
			add_units(&pc, &pb, 60, true, &next);
			struct analysis *a = analyse(&pc, &m_cont, true, 600);
			missing += !a->metrics[0].cmp[0].has_seq;
			seq |= a->metrics[0].cmp[0].p_seq < ALPHA;
			analysis_free(a);
		}
		fp_seq += seq;
		pair_free(&pc);
		pair_free(&pb);
	}
	printf("  A/A, returning units: at the unit Welch %d, chi-square %d, split check %d, "
	       "sequential (10 looks) %d; per value Welch %d, chi-square %d (of %d)\n",
	       fp[1][0], fp[1][1], fp_srm, fp_seq, fp[0][0], fp[0][1], RUNS);
	CHECK(within(fp[1][0], RUNS, ALPHA));
	CHECK(within(fp[1][1], RUNS, ALPHA));
	CHECK(within(fp_srm, RUNS, ALPHA));
	CHECK_INT(missing, 0);
	CHECK(fp_seq <= RUNS * ALPHA + 4 * sqrt(RUNS * ALPHA * (1 - ALPHA)));
	/* the same values taken as independent: far outside the band */
	CHECK(fp[0][0] > 3 * RUNS * ALPHA);
	CHECK(fp[0][1] > 2 * RUNS * ALPHA);
}

/*
 * One value per unit through the whole pipeline (unit keys, delta method, Rao-Scott): the
 * statistics reference's scipy vectors. V1: ttest_ind(a, b, equal_var=False) t =
 * -2.45535639829, p = 0.0213780014629. V4: chi2_contingency([[120, 9880], [165, 9835]],
 * correction=False) chi2 = 7.20797682769, p = 0.00725802643547. And the same values with
 * every unit seen twice (each value logged twice by its unit): the units carry no more
 * information than before, so the unit-level t is unchanged, with a design effect of
 * (2M - 1) / (M - 1) against the per-value variance (29/14 for M = 15); the Pearson chi2 of
 * the doubled table doubles and the Rao-Scott factor (19999/9999 for 10,000 units an arm)
 * brings it back to the single-value figure within 1e-4.
 */
static void test_one_value_per_unit_is_scipy(void)
{
	static const double a[] = {27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1,
				   21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4};
	static const double b[] = {27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0,
				   24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4};
	for (int twice = 0; twice < 2; twice++) {
		struct pair pc, pb;
		pair_init(&pc);
		pair_init(&pb);
		unsigned next = 1000000u * (unsigned)(twice + 1);
		/* arm 1 is the "treatment" (x) and gets a; arm 0 the control, b */
		for (int i = 0; i < 15; i++)
			for (int arm = 0; arm < 2; arm++) {
				uint64_t key = accum_unit_key(++next);
				for (int r = 0; r <= twice; r++) {
					accum_variant_request(pc.v[arm], 0, key, 0);
					accum_metric_add_unit(&pc.v[arm]->metrics[0], 1795000000.0,
							      arm ? a[i] : b[i], key);
				}
			}
		for (int arm = 0; arm < 2; arm++)
			for (int i = 0; i < 10000; i++) {
				uint64_t key = accum_unit_key(++next);
				double y = i < (arm ? 165 : 120);
				for (int r = 0; r <= twice; r++)
					accum_metric_add_unit(&pb.v[arm]->metrics[0], 1795000000.0, y,
							      key);
			}
		struct analysis *x = analyse(&pc, &m_cont, false, 0);
		const struct analysis_cmp *c = &x->metrics[0].cmp[0];
		CHECK(c->ok);
		CHECK_REL(c->statistic, -2.45535639829, 1e-10);
		CHECK_REL(c->p_value, 0.0213780014629, 1e-9);
		CHECK_INT(x->metrics[0].by[0].units, 15);
		CHECK_REL(x->metrics[0].by[0].uv.deff, twice ? 29.0 / 14 : 1.0, 1e-12);
		analysis_free(x);
		x = analyse(&pb, &m_bin, false, 0);
		c = &x->metrics[0].cmp[0];
		CHECK(c->ok);
		if (!twice) {
			CHECK_REL(c->statistic, 7.20797682769, 1e-10);
			CHECK_REL(c->p_value, 0.00725802643547, 1e-9);
			CHECK_REL(c->design_effect, 1.0, 1e-12);
		} else {
			CHECK_REL(c->design_effect, 19999.0 / 9999, 1e-12);
			CHECK_REL(c->statistic, 2 * 7.20797682769 * 9999 / 19999, 1e-10);
			CHECK_REL(c->statistic, 7.20797682769, 1e-4);
		}
		analysis_free(x);
		pair_free(&pc);
		pair_free(&pb);
	}
}

static void test_power(void)
{
	/* continuous: sd 1, true difference 0.2 */
	double n = ceil(sizing_n_means(1, 1, 0.2, ALPHA, 0.8));
	CHECK_INT((long long)n, 393);
	int hit_t = 0, hit_chi = 0;
	double nb = ceil(sizing_n_props(0.10, 0.13, ALPHA, 0.8));
	for (int r = 0; r < RUNS; r++) {
		struct pair pc, pb;
		pair_init(&pc);
		pair_init(&pb);
		for (int i = 0; i < (int)n; i++) {
			add(&pc, 0, gsl_ran_gaussian(rng, 1));
			add(&pc, 1, 0.2 + gsl_ran_gaussian(rng, 1));
		}
		for (int i = 0; i < (int)nb; i++) {
			add(&pb, 0, gsl_rng_uniform(rng) < 0.10);
			add(&pb, 1, gsl_rng_uniform(rng) < 0.13);
		}
		struct analysis *a = analyse(&pc, &m_cont, false, 0);
		hit_t += a->metrics[0].cmp[0].better;
		analysis_free(a);
		a = analyse(&pb, &m_bin, false, 0);
		hit_chi += a->metrics[0].cmp[0].better;
		analysis_free(a);
		pair_free(&pc);
		pair_free(&pb);
	}
	printf("  power 0.8 by design: Welch %d/%d (n %g), chi-square %d/%d (n %g)\n", hit_t, RUNS,
	       n, hit_chi, RUNS, nb);
	CHECK(within(hit_t, RUNS, 0.8));
	CHECK(within(hit_chi, RUNS, 0.8));
}

static void test_conventions(void)
{
	/* one-sided p in the goal's direction halves the two-sided p when the effect points there
	 */
	struct pair p;
	pair_init(&p);
	for (int i = 0; i < 400; i++) {
		add(&p, 0, gsl_ran_gaussian(rng, 1));
		add(&p, 1, 0.15 + gsl_ran_gaussian(rng, 1));
	}
	struct analysis *a = analyse(&p, &m_cont, false, 0);
	const struct analysis_cmp *c = &a->metrics[0].cmp[0];
	CHECK(c->ok && c->diff > 0);
	CHECK_REL(c->p_one_sided, c->p_value / 2, 1e-12);
	CHECK_STR(c->one_sided, "improvement");
	CHECK(c->has_adjusted && c->p_adjusted == c->p_value); /* a family of one */
	CHECK(!c->has_seq);
	CHECK(c->has_lift && c->has_diff && c->ci_low < c->diff && c->diff < c->ci_high);
	CHECK(c->needed_n > 0);
	analysis_free(a);
	/* sequential: wider interval than the fixed one, larger p */
	a = analyse(&p, &m_cont, true, 800);
	c = &a->metrics[0].cmp[0];
	CHECK(c->has_seq && c->seq_ci_low < c->ci_low && c->seq_ci_high > c->ci_high);
	CHECK(c->p_seq >= c->p_value);
	CHECK(c->p_adjusted == c->p_seq);
	analysis_free(a);
	pair_free(&p);
}

int main(void)
{
	htest_init();
	rng = gsl_rng_alloc(gsl_rng_mt19937);
	gsl_rng_set(rng, 12345);
	test_aa_fixed();
	test_aa_sequential();
	test_aa_clustered();
	test_one_value_per_unit_is_scipy();
	test_power();
	test_conventions();
	gsl_rng_free(rng);
	return check_summary("test_analysis");
}
