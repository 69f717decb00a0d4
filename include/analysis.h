/*
 * analysis.h - the report object: per-variant accumulators of one experiment turned into
 * summaries, comparisons against the control and a sample-ratio check, ready for the decision
 * rule (decide.h) and the renderers (render.h). The live daemon and the report command build
 * it the same way.
 *
 * Conventions of the comparisons (each non-control variant against the control):
 *   - p_value is the two-sided fixed-horizon p-value (Welch's t for continuous metrics, Pearson
 *     chi-square without correction for binary ones), the number scipy gives;
 *   - p_one_sided is in the harm direction for guardrails and in the goal direction otherwise;
 *   - p_adjusted is Holm's adjustment within a family: all guardrail comparisons (of the
 *     one-sided harm p-values), all primary comparisons, all other comparisons (two-sided). With
 *     decision.sequential the adjusted values are computed from the sequential p-values;
 *   - every variance is taken at the unit (DESIGN.md): a metric's mean is a ratio over units
 *     (sum of values / number of values) and the variance of that mean comes from the delta
 *     method over the units (accum_metric_unitvar), or over the pseudo-unit buckets once a
 *     variant has more units than its exact per-unit map holds. Continuous metrics: Welch's t on
 *     those variances, df from the units (or buckets) of each arm. Binary metrics: the pooled
 *     chi-square divided by the Rao-Scott design-effect factor; differences, lifts and
 *     intervals use p(1-p) times the arm's design effect. With one value per unit both reduce
 *     exactly to scipy's Welch and chi-square;
 *   - sequential results use the difference (not the lift), N = both arms' units and
 *     N* = decision.sequential_n (5000 when unset);
 *   - the samples still needed are units per arm, from the per-unit variances;
 *   - the sample-ratio check compares distinct units (exact, or the exact count of a hash
 *     sample of the units once a variant passes its cap) with the weights.
 * Anything that cannot be computed has its has_* flag false and a note that says why.
 */
#ifndef ABGATE_ANALYSIS_H
#define ABGATE_ANALYSIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accum.h"
#include "conf.h"

#define ANALYSIS_MAX_NOTES 6

struct analysis_input {
	const char *experiment;
	size_t nvariants;			/* >= 1; the first is the control */
	const char *const *names;		/* (ref) nvariants names */
	const double *weights;			/* (ref) percentages; NULL: unknown */
	const double *epoch_weights;		/* (ref) NULL, or ACCUM_EPOCHS x nvariants
						   percentages: the weights of each epoch of the
						   unit sets (a row of zeros: use weights) */
	const char *unit;			/* (ref) what the unit is, e.g. "header
						   X-User-Id"; NULL: "unit" */
	const struct accum_variant *const *acc; /* (ref) nvariants accumulators */
	const struct conf_metric *metrics;	/* (ref) metric i is acc[v]->metrics[i] */
	size_t nmetrics;
	const struct conf_decision *decision; /* (ref) */
};

struct analysis_variant {
	char *name;
	bool has_weight;
	double weight; /* percent */
	uint64_t requests;
	double units;	       /* distinct units (an estimate when units_estimated) */
	bool units_estimated;  /* units = the exact count of a 1 / 2^units_level sample x 2^level */
	unsigned units_level;
	struct accum_series traffic;
};

struct analysis_summary {
	uint64_t n;
	uint64_t successes; /* binary */
	double rate;	    /* binary: successes / n */
	double mean, sd;
	bool has_quantiles;
	double p50, p95, p99;
	struct accum_unitvar uv; /* the mean as a ratio over units, its variance, design effect */
	double units;		 /* units with a value (exact, or the variant's when bucketed) */
	struct accum_series series; /* n and sum of values over time */
};

struct analysis_cmp {
	size_t variant;	  /* index into analysis.variants */
	const char *test; /* "welch_t" or "chi_square" */
	bool ok;	  /* the test itself could be computed */
	bool has_stat;
	double statistic, df, p_value;
	double p_one_sided;
	const char *one_sided; /* "harm" or "improvement" */
	bool has_adjusted;
	double p_adjusted;
	bool has_yates; /* binary: Yates-corrected p reported beside */
	double p_yates;
	bool has_fisher; /* binary with an expected count under 5 */
	double p_fisher;
	double min_expected;
	bool has_diff;
	double diff, ci_low, ci_high; /* treatment - control, two-sided 1 - alpha */
	bool has_lift;
	double lift, lift_ci_low, lift_ci_high;
	bool has_seq;
	double p_seq, p_seq_one_sided, seq_ci_low, seq_ci_high;
	bool has_mw; /* Mann-Whitney U on the histograms */
	double mw_u, mw_auc, mw_p;
	bool significant; /* at alpha after adjustment (harm only, for guardrails) */
	bool harm;	  /* guardrail: significant harm */
	bool better;	  /* significant in the goal's direction */
	int noninferior;  /* guardrails: 1 yes, 0 no, -1 not established */
	bool has_ni_bound;
	double ni_bound; /* upper confidence bound of the relative harm (with a margin) */
	double needed_n; /* units per arm to detect the observed difference; 0: unknown */
	double have_units; /* the smaller arm's units (for "still needed") */
	double design_effect; /* binary: the Rao-Scott factor delta; continuous: 1 */
	const char *notes[ANALYSIS_MAX_NOTES];
	size_t nnotes;
};

struct analysis_metric {
	struct conf_metric spec;     /* name owned by the analysis */
	struct analysis_summary *by; /* nvariants */
	struct analysis_cmp *cmp;    /* nvariants - 1, variant i + 1 against the control */
};

struct analysis_srm {
	bool computed;
	double chi2, df, p;
	bool flagged; /* p < srm_alpha and every arm has at least 8 units */
	const char *note;
	unsigned level; /* the units counted are a 1 / 2^level hash sample (0: all) */
	double *observed, *expected; /* nvariants: the distinct units compared (unit-epochs) */
};

struct analysis {
	char *experiment;
	struct conf_decision decision;
	double nstar; /* sequential N* in use */
	size_t nvariants;
	struct analysis_variant *variants;
	size_t nmetrics;
	struct analysis_metric *metrics;
	struct analysis_srm srm;
	char *unit;	    /* what the unit is */
	bool bucketed;	    /* some metric's variance came from the pseudo-unit buckets */
	double per_unit;    /* requests per unit over all arms */

	/* filled by decide_run() */
	const char *action;   /* "promote", "rollback", "continue", "investigate" */
	char *action_variant; /* the variant promoted or rolled back, NULL otherwise */
	char **reasons;
	size_t nreasons;
};

/* Fills dec with the defaults of DESIGN.md (alpha 0.05, min_samples 500, srm_alpha 0.001,
 * sequential off, N* 5000). */
void analysis_decision_defaults(struct conf_decision *dec);

/* Names experiment e's unit for the report ("header X-User-Id", "cookie uid", "query user")
 * in buf; e NULL gives "unit" (the log's unit field). Returns buf. */
const char *analysis_unit_name(const struct conf_experiment *e, char *buf, size_t len);

/* Builds the analysis. Returns it (owned by the caller: analysis_free) or NULL when out of
 * memory or nvariants is 0. */
struct analysis *analysis_build(const struct analysis_input *in);

/* Appends a reason (printf format); returns 0 or -1 when out of memory. */
int analysis_add_reason(struct analysis *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void analysis_free(struct analysis *a);

#endif
