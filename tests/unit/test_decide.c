/*
 * test_decide.c - unit tests for stats/decide.c: the four actions on designed data (promote,
 * rollback on guardrail harm, investigate on SRM, continue on too little data), hard gates
 * evaluated once or over consecutive evaluations, a pure canary, and degenerate arms.
 */
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <stdlib.h>

#include "accum.h"
#include "analysis.h"
#include "check.h"
#include "decide.h"

enum { M_ERR, M_LAT, M_CLICK, NM };

static char n_err[] = "error_rate", n_lat[] = "latency_ms", n_click[] = "click";

static struct conf_metric specs[NM] = {
    {.name = n_err,
     .kind = CONF_METRIC_BINARY,
     .source = CONF_SRC_STATUS_5XX,
     .goal = CONF_GOAL_DECREASE,
     .guardrail = true},
    {.name = n_lat,
     .kind = CONF_METRIC_CONTINUOUS,
     .source = CONF_SRC_LATENCY_MS,
     .goal = CONF_GOAL_DECREASE,
     .guardrail = true},
    {.name = n_click,
     .kind = CONF_METRIC_BINARY,
     .source = CONF_SRC_OUTCOME,
     .goal = CONF_GOAL_INCREASE,
     .primary = true},
};

struct arm {
	unsigned requests;
	double err, lat_mean, click;
	unsigned units;
};

static gsl_rng *rng;

static struct accum_variant *make_arm(const struct arm *a)
{
	bool cont[NM] = {false, true, false};
	struct accum_variant *v = accum_variant_new(NM, cont);
	for (unsigned i = 0; i < a->requests; i++) {
		double t = 1795000000.0 + i;
		unsigned u = a->units ? i % a->units : i;
		accum_variant_request(v, t, accum_unit_key(accum_hash64(&u, sizeof(u))), 0);
		accum_metric_add(&v->metrics[M_ERR], t, gsl_rng_uniform(rng) < a->err);
		accum_metric_add(&v->metrics[M_LAT], t,
				 a->lat_mean * gsl_ran_lognormal(rng, 0, 0.3));
		accum_metric_add(&v->metrics[M_CLICK], t, gsl_rng_uniform(rng) < a->click);
	}
	return v;
}

/* Builds and decides a two-arm analysis; st may be NULL. The caller frees it. */
static struct analysis *run2(const struct arm *c, const struct arm *t, const double *weights,
			     const struct conf_metric *sp, size_t nm, struct decide_state *st)
{
	const struct accum_variant *acc[2] = {make_arm(c), make_arm(t)};
	const char *names[2] = {"control", "treatment"};
	struct conf_decision dec;
	analysis_decision_defaults(&dec);
	struct analysis_input in = {.experiment = "e",
				    .nvariants = 2,
				    .names = names,
				    .weights = weights,
				    .acc = acc,
				    .metrics = sp,
				    .nmetrics = nm,
				    .decision = &dec};
	struct analysis *a = analysis_build(&in);
	CHECK(a != NULL);
	CHECK_INT(decide_run(a, st), 0);
	accum_variant_free((struct accum_variant *)(uintptr_t)acc[0]);
	accum_variant_free((struct accum_variant *)(uintptr_t)acc[1]);
	return a;
}

static bool reason_has(const struct analysis *a, const char *s)
{
	for (size_t i = 0; i < a->nreasons; i++)
		if (strstr(a->reasons[i], s))
			return true;
	return false;
}

static const double w5050[2] = {50, 50};

static void test_promote(void)
{
	struct arm c = {10000, 0.01, 100, 0.10, 0}, t = {10000, 0.01, 100, 0.13, 0};
	struct analysis *a = run2(&c, &t, w5050, specs, NM, NULL);
	CHECK_STR(a->action, "promote");
	CHECK_STR(a->action_variant, "treatment");
	CHECK(reason_has(a, "primary metric click is better"));
	CHECK(a->metrics[M_CLICK].cmp[0].better);
	analysis_free(a);
}

static void test_rollback_on_harm(void)
{
	struct arm c = {10000, 0.01, 100, 0.10, 0}, t = {10000, 0.03, 100, 0.13, 0};
	struct analysis *a = run2(&c, &t, w5050, specs, NM, NULL);
	CHECK_STR(a->action, "rollback");
	CHECK_STR(a->action_variant, "treatment");
	CHECK(reason_has(a, "guardrail error_rate is worse"));
	CHECK(a->metrics[M_ERR].cmp[0].harm);
	CHECK(a->metrics[M_ERR].cmp[0].p_adjusted < 0.05);
	analysis_free(a);
	/* latency harm alone */
	struct arm t2 = {10000, 0.01, 110, 0.10, 0};
	a = run2(&c, &t2, w5050, specs, NM, NULL);
	CHECK_STR(a->action, "rollback");
	CHECK(reason_has(a, "guardrail latency_ms is worse"));
	analysis_free(a);
}

static void test_investigate_on_srm(void)
{
	struct arm c = {6000, 0.01, 100, 0.10, 0}, t = {4000, 0.01, 100, 0.13, 0};
	struct analysis *a = run2(&c, &t, w5050, specs, NM, NULL);
	CHECK(a->srm.flagged);
	CHECK_REL(a->srm.chi2, 400, 1e-12);
	CHECK_STR(a->action, "investigate");
	CHECK(reason_has(a, "sample ratio mismatch"));
	analysis_free(a);
	/* a mismatch of distinct units with fewer than 8 units in an arm is not flagged */
	struct arm c2 = {600, 0.01, 100, 0.10, 40}, t2 = {400, 0.01, 100, 0.10, 4};
	a = run2(&c2, &t2, w5050, specs, NM, NULL);
	CHECK(!a->srm.flagged && a->srm.p < 0.001);
	CHECK(strcmp(a->action, "investigate") != 0);
	analysis_free(a);
}

static void test_continue_on_little_data(void)
{
	struct arm c = {200, 0.01, 100, 0.10, 0}, t = {200, 0.01, 100, 0.13, 0};
	struct analysis *a = run2(&c, &t, w5050, specs, NM, NULL);
	CHECK_STR(a->action, "continue");
	CHECK(a->action_variant == NULL);
	CHECK(reason_has(a, "under min_samples 500"));
	analysis_free(a);
	/* enough requests but no difference: continue with a sample-size estimate */
	struct arm c2 = {3000, 0.01, 100, 0.10, 0}, t2 = {3000, 0.01, 100, 0.105, 0};
	a = run2(&c2, &t2, w5050, specs, NM, NULL);
	CHECK_STR(a->action, "continue");
	CHECK(reason_has(a, "to detect this difference with 80% power") ||
	      reason_has(a, "no difference observed"));
	analysis_free(a);
}

static void test_hard_gates(void)
{
	struct conf_metric sp[NM];
	memcpy(sp, specs, sizeof(sp));
	sp[M_ERR].has_max = true;
	sp[M_ERR].max = 0.02;
	/* both arms at 3%: no harm against the control, but the gate is breached */
	struct arm c = {5000, 0.03, 100, 0.10, 0}, t = {5000, 0.03, 100, 0.10, 0};
	struct analysis *a = run2(&c, &t, w5050, sp, NM, NULL);
	CHECK_STR(a->action, "rollback");
	CHECK(reason_has(a, "hard gate") && reason_has(a, "evaluated once"));
	analysis_free(a);
	/* the daemon needs three consecutive breaches (guardrail noise may still roll back) */
	struct decide_state *st = decide_state_new(2, NM);
	for (int i = 1; i <= 3; i++) {
		a = run2(&c, &t, w5050, sp, NM, st);
		CHECK(reason_has(a, "hard gate") == (i == 3));
		if (i == 3) {
			CHECK_STR(a->action, "rollback");
			CHECK(reason_has(a, "3 consecutive"));
		}
		analysis_free(a);
	}
	/* a good evaluation resets the streak */
	struct arm ok = {5000, 0.005, 100, 0.10, 0};
	a = run2(&c, &ok, w5050, sp, NM, st);
	CHECK(!reason_has(a, "hard gate"));
	analysis_free(a);
	a = run2(&c, &t, w5050, sp, NM, st);
	CHECK(!reason_has(a, "hard gate"));
	analysis_free(a);
	decide_state_free(st);
	decide_state_free(NULL);
}

static void test_pure_canary(void)
{
	struct conf_metric sp[2];
	memcpy(sp, specs, sizeof(sp));
	sp[M_LAT].has_margin = true;
	sp[M_LAT].margin = 0.05;
	struct arm c = {20000, 0.01, 100, 0, 0}, t = {20000, 0.01, 100, 0, 0};
	const double w[2] = {90, 10};
	struct arm t90 = {20000 / 9, 0.01, 100, 0, 0};
	struct analysis *a = run2(&c, &t, w5050, sp, 2, NULL);
	CHECK_STR(a->action, "promote");
	CHECK(a->metrics[M_LAT].cmp[0].has_ni_bound && a->metrics[M_LAT].cmp[0].ni_bound < 0.05);
	CHECK(reason_has(a, "non-inferior"));
	analysis_free(a);
	a = run2(&c, &t90, w, sp, 2, NULL);
	CHECK(!a->srm.flagged);
	analysis_free(a);
	/* 10% slower with a 5% margin: rollback (harm) */
	struct arm slow = {20000, 0.01, 110, 0, 0};
	a = run2(&c, &slow, w5050, sp, 2, NULL);
	CHECK_STR(a->action, "rollback");
	analysis_free(a);
}

static void test_degenerate(void)
{
	/* empty treatment, zero control mean, constant arms: defined, explained, no crash */
	struct arm c = {1000, 0, 100, 0, 0}, t = {0, 0, 100, 0, 0};
	struct analysis *a = run2(&c, &t, w5050, specs, NM, NULL);
	CHECK_STR(a->action, "continue");
	const struct analysis_cmp *x = &a->metrics[M_LAT].cmp[0];
	CHECK(!x->ok && x->nnotes > 0);
	CHECK(!a->metrics[M_CLICK].cmp[0].ok);
	analysis_free(a);
	struct arm c2 = {1000, 0, 100, 0, 0}, t2 = {1000, 0, 100, 0, 0};
	a = run2(&c2, &t2, w5050, specs, NM, NULL);
	x = &a->metrics[M_ERR].cmp[0];
	CHECK(x->ok && x->p_value == 1 && !x->has_lift && x->nnotes > 0);
	analysis_free(a);
	/* one variant only */
	const struct accum_variant *acc[1] = {make_arm(&c)};
	const char *names[1] = {"control"};
	struct analysis_input in = {.experiment = "solo",
				    .nvariants = 1,
				    .names = names,
				    .acc = acc,
				    .metrics = specs,
				    .nmetrics = NM};
	a = analysis_build(&in);
	CHECK(a != NULL);
	CHECK_INT(decide_run(a, NULL), 0);
	CHECK(a->action != NULL);
	CHECK(!a->srm.computed);
	analysis_free(a);
	accum_variant_free((struct accum_variant *)(uintptr_t)acc[0]);
	in.nvariants = 0;
	CHECK(analysis_build(&in) == NULL);
}

int main(void)
{
	rng = gsl_rng_alloc(gsl_rng_mt19937);
	gsl_rng_set(rng, 20261122);
	test_promote();
	test_rollback_on_harm();
	test_investigate_on_srm();
	test_continue_on_little_data();
	test_hard_gates();
	test_pure_canary();
	test_degenerate();
	gsl_rng_free(rng);
	return check_summary("test_decide");
}
