/*
 * test_analysis.c - unit tests for stats/analysis.c: calibration of the whole pipeline
 * (accumulators -> analysis) on simulated experiments with a seeded RNG:
 *   - 1,000 A/A experiments: the false-positive rate of the fixed-horizon tests is alpha within
 *     binomial noise (4 sigma);
 *   - 1,000 A/A experiments looked at 20 times each with sequential testing: the rate of ever
 *     rejecting stays at or below alpha (plus noise), while naive repeated fixed tests inflate it;
 *   - a true effect sized by sizing.c for 80% power is detected 80% of the time (4 sigma);
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
	test_power();
	test_conventions();
	gsl_rng_free(rng);
	return check_summary("test_analysis");
}
