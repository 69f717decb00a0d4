/*
 * decide.c - the decision rule (see include/decide.h).
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "decide.h"

struct decide_state *decide_state_new(size_t nvariants, size_t nmetrics)
{
	struct decide_state *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return NULL;
	st->streak = calloc(nvariants * nmetrics + 1, sizeof(uint32_t));
	if (st->streak == NULL) {
		free(st);
		return NULL;
	}
	st->nvariants = nvariants;
	st->nmetrics = nmetrics;
	return st;
}

struct decide_state *decide_state_copy(const struct decide_state *st)
{
	struct decide_state *c = decide_state_new(st->nvariants, st->nmetrics);

	if (c != NULL)
		memcpy(c->streak, st->streak, st->nvariants * st->nmetrics * sizeof(*c->streak));
	return c;
}

void decide_state_free(struct decide_state *st)
{
	if (st == NULL)
		return;
	free(st->streak);
	free(st);
}

/* p-values for reasons: plain decimals down to 1e-4, scientific below. */
static const char *fmt_p(char *buf, size_t len, double p)
{
	if (p >= 1e-4 || p == 0)
		snprintf(buf, len, "%.4f", p);
	else
		snprintf(buf, len, "%.2e", p);
	return buf;
}

static const char *pname(const struct analysis *a)
{
	return a->decision.sequential ? "sequential p" : "p";
}

static int set_action(struct analysis *a, const char *action, const char *variant)
{
	a->action = action;
	free(a->action_variant);
	a->action_variant = NULL;
	if (variant) {
		a->action_variant = strdup(variant);
		if (a->action_variant == NULL)
			return -1;
	}
	return 0;
}

static int rule_srm(struct analysis *a, int *rc)
{
	const struct analysis_srm *s = &a->srm;
	if (!s->flagged)
		return 0;
	char pb[32];
	*rc |= set_action(a, a->decision.on_srm_rollback ? "rollback" : "investigate", NULL);
	char counts[512] = "";
	size_t off = 0;
	for (size_t i = 0; i < a->nvariants && off < sizeof(counts); i++)
		off += (size_t)snprintf(counts + off, sizeof(counts) - off,
					"%s%s %.0f (expected %.1f, weight %g%%)", i ? ", " : "",
					a->variants[i].name, s->observed ? s->observed[i] : 0.0,
					s->expected ? s->expected[i] : 0.0, a->variants[i].weight);
	*rc |= analysis_add_reason(
	    a,
	    "sample ratio mismatch: chi2 = %.2f, df = %g, p = %s < srm_alpha %g; "
	    "distinct units%s %s; the data cannot be trusted either way",
	    isfinite(s->chi2) ? s->chi2 : 0.0, s->df, fmt_p(pb, sizeof(pb), s->p),
	    a->decision.srm_alpha, s->level ? " (a hash sample)" : "", counts);
	return 1;
}

static int rule_gates(struct analysis *a, struct decide_state *st, int *rc)
{
	bool have = st && st->nvariants == a->nvariants && st->nmetrics == a->nmetrics;
	if (st && !have) {
		/* the experiment changed shape: start counting again */
		uint32_t *s = calloc(a->nvariants * a->nmetrics + 1, sizeof(uint32_t));
		if (s) {
			free(st->streak);
			st->streak = s;
			st->nvariants = a->nvariants;
			st->nmetrics = a->nmetrics;
			have = true;
		}
	}
	int fired = 0;
	for (size_t j = 0; j < a->nmetrics; j++) {
		const struct analysis_metric *m = &a->metrics[j];
		if (!m->spec.has_max)
			continue;
		for (size_t i = 1; i < a->nvariants; i++) {
			const struct analysis_summary *s = &m->by[i];
			bool binary = m->spec.kind == CONF_METRIC_BINARY;
			bool known = s->n > 0 && (binary || s->has_quantiles);
			double v = binary ? s->rate : s->p99;
			bool breach = known && v > m->spec.max;
			uint32_t streak = 1;
			if (have) {
				uint32_t *p = &st->streak[i * a->nmetrics + j];
				*p = breach ? *p + 1 : 0;
				streak = *p;
			}
			if (!breach || (st && streak < DECIDE_GATE_EVALS))
				continue;
			if (!fired)
				*rc |= set_action(a, "rollback", a->variants[i].name);
			fired = 1;
			if (st)
				*rc |= analysis_add_reason(
				    a,
				    "hard gate: %s %s of %s = %g exceeds max %g for %u consecutive "
				    "evaluations",
				    m->spec.name, binary ? "rate" : "p99", a->variants[i].name, v,
				    m->spec.max, streak);
			else
				*rc |= analysis_add_reason(
				    a,
				    "hard gate: %s %s of %s = %g exceeds max %g (evaluated once on "
				    "the "
				    "whole log; the live daemon requires %d consecutive breaches)",
				    m->spec.name, binary ? "rate" : "p99", a->variants[i].name, v,
				    m->spec.max, DECIDE_GATE_EVALS);
		}
	}
	return fired;
}

static double shown(const struct analysis_cmp *c)
{
	return c->has_adjusted ? c->p_adjusted : c->p_one_sided;
}

static int rule_harm(struct analysis *a, int *rc)
{
	int fired = 0;
	char pb[32];
	for (size_t j = 0; j < a->nmetrics; j++) {
		const struct analysis_metric *m = &a->metrics[j];
		for (size_t i = 0; i + 1 < a->nvariants; i++) {
			const struct analysis_cmp *c = &m->cmp[i];
			if (!m->spec.guardrail || !c->harm)
				continue;
			const char *vn = a->variants[c->variant].name;
			if (!fired)
				*rc |= set_action(a, "rollback", vn);
			fired = 1;
			*rc |= analysis_add_reason(
			    a,
			    "guardrail %s is worse for %s: %s %g vs %g (diff %+g), one-sided %s = "
			    "%s "
			    "(Holm-adjusted) < alpha %g",
			    m->spec.name, vn, m->spec.kind == CONF_METRIC_BINARY ? "rate" : "mean",
			    m->spec.kind == CONF_METRIC_BINARY ? m->by[c->variant].rate
							       : m->by[c->variant].mean,
			    m->spec.kind == CONF_METRIC_BINARY ? m->by[0].rate : m->by[0].mean,
			    c->diff, pname(a), fmt_p(pb, sizeof(pb), shown(c)), a->decision.alpha);
		}
	}
	return fired;
}

static const struct analysis_metric *primary_metric(const struct analysis *a)
{
	for (size_t j = 0; j < a->nmetrics; j++)
		if (a->metrics[j].spec.primary)
			return &a->metrics[j];
	return NULL;
}

static int rule_samples(struct analysis *a, int *rc)
{
	int fired = 0;
	const struct analysis_metric *pm = primary_metric(a);
	for (size_t i = 0; i < a->nvariants; i++) {
		const struct analysis_variant *v = &a->variants[i];
		if (v->requests < a->decision.min_samples) {
			if (!fired)
				*rc |= set_action(a, "continue", NULL);
			fired = 1;
			*rc |=
			    analysis_add_reason(a, "%s has %llu requests, under min_samples %llu",
						v->name, (unsigned long long)v->requests,
						(unsigned long long)a->decision.min_samples);
		}
		if (pm && pm->spec.kind == CONF_METRIC_BINARY &&
		    pm->by[i].successes < DECIDE_MIN_SUCCESSES) {
			if (!fired)
				*rc |= set_action(a, "continue", NULL);
			fired = 1;
			*rc |= analysis_add_reason(a, "%s has %llu successes of %s, under %d",
						   v->name, (unsigned long long)pm->by[i].successes,
						   pm->spec.name, DECIDE_MIN_SUCCESSES);
		}
	}
	return fired;
}

/* Describes how each guardrail stands for variant i (for promote and continue reasons). */
static bool guardrails_ok(struct analysis *a, size_t i, bool explain, int *rc)
{
	bool ok = true;
	for (size_t j = 0; j < a->nmetrics; j++) {
		const struct analysis_metric *m = &a->metrics[j];
		if (!m->spec.guardrail)
			continue;
		const struct analysis_cmp *c = &m->cmp[i - 1];
		if (c->noninferior == 1)
			continue;
		ok = false;
		if (!explain)
			continue;
		if (m->spec.has_margin && c->has_ni_bound)
			*rc |= analysis_add_reason(
			    a,
			    "guardrail %s not yet non-inferior for %s: upper bound of the "
			    "relative harm %.4f is not below the margin %g",
			    m->spec.name, a->variants[i].name, c->ni_bound, m->spec.margin);
		else
			*rc |= analysis_add_reason(
			    a, "guardrail %s not established non-inferior for %s%s", m->spec.name,
			    a->variants[i].name, c->ok ? "" : " (test not computable)");
	}
	return ok;
}

static int rule_promote(struct analysis *a, int *rc)
{
	const struct analysis_metric *pm = primary_metric(a);
	char pb[32];
	if (pm) {
		size_t best = 0;
		double best_gain = 0;
		for (size_t i = 0; i + 1 < a->nvariants; i++) {
			const struct analysis_cmp *c = &pm->cmp[i];
			if (!c->better || !guardrails_ok(a, c->variant, false, rc))
				continue;
			double gain = fabs(c->diff);
			if (best == 0 || gain > best_gain) {
				best = c->variant;
				best_gain = gain;
			}
		}
		if (best == 0)
			return 0;
		const struct analysis_cmp *c = &pm->cmp[best - 1];
		bool binary = pm->spec.kind == CONF_METRIC_BINARY;
		*rc |= set_action(a, "promote", a->variants[best].name);
		*rc |= analysis_add_reason(
		    a,
		    "primary metric %s is better for %s: %s %g vs %g (diff %+g, 95%% CI [%g, %g]), "
		    "%s = %s < alpha %g",
		    pm->spec.name, a->variants[best].name, binary ? "rate" : "mean",
		    binary ? pm->by[best].rate : pm->by[best].mean,
		    binary ? pm->by[0].rate : pm->by[0].mean, c->diff, c->ci_low, c->ci_high,
		    pname(a), fmt_p(pb, sizeof(pb), c->has_adjusted ? c->p_adjusted : c->p_value),
		    a->decision.alpha);
		*rc |= analysis_add_reason(a, "no guardrail is worse");
		return 1;
	}
	/* a pure canary: every guardrail non-inferior for every variant */
	size_t nguard = 0;
	for (size_t j = 0; j < a->nmetrics; j++)
		nguard += a->metrics[j].spec.guardrail;
	if (nguard == 0 || a->nvariants < 2)
		return 0;
	for (size_t i = 1; i < a->nvariants; i++)
		if (!guardrails_ok(a, i, false, rc))
			return 0;
	*rc |= set_action(a, "promote", a->nvariants == 2 ? a->variants[1].name : NULL);
	for (size_t j = 0; j < a->nmetrics; j++) {
		const struct analysis_metric *m = &a->metrics[j];
		if (!m->spec.guardrail)
			continue;
		for (size_t i = 0; i + 1 < a->nvariants; i++) {
			const struct analysis_cmp *c = &m->cmp[i];
			if (m->spec.has_margin)
				*rc |= analysis_add_reason(
				    a,
				    "guardrail %s non-inferior for %s: upper bound of the relative "
				    "harm %.4f < margin %g",
				    m->spec.name, a->variants[c->variant].name, c->ni_bound,
				    m->spec.margin);
			else
				*rc |=
				    analysis_add_reason(a,
							"guardrail %s shows no significant harm "
							"for %s at %llu+ samples "
							"per arm (one-sided %s = %s)",
							m->spec.name, a->variants[c->variant].name,
							(unsigned long long)a->decision.min_samples,
							pname(a), fmt_p(pb, sizeof(pb), shown(c)));
		}
	}
	return 1;
}

static void rule_continue(struct analysis *a, int *rc)
{
	char pb[32];
	*rc |= set_action(a, "continue", NULL);
	const struct analysis_metric *pm = primary_metric(a);
	if (pm == NULL) {
		for (size_t i = 1; i < a->nvariants; i++)
			guardrails_ok(a, i, true, rc);
		if (a->nreasons == 0)
			*rc |= analysis_add_reason(
			    a, "no primary metric and no guardrail to decide on");
		return;
	}
	for (size_t i = 0; i + 1 < a->nvariants; i++) {
		const struct analysis_cmp *c = &pm->cmp[i];
		const char *vn = a->variants[c->variant].name;
		if (!c->ok) {
			*rc |= analysis_add_reason(
			    a, "primary metric %s for %s: not computable (%s)", pm->spec.name, vn,
			    c->nnotes ? c->notes[0] : "no data");
			continue;
		}
		if (c->better) {
			guardrails_ok(a, c->variant, true, rc);
			continue;
		}
		double p = c->has_adjusted ? c->p_adjusted : c->p_value;
		double have = c->have_units;
		if (c->significant) {
			*rc |= analysis_add_reason(
			    a,
			    "primary metric %s is significantly worse for %s (diff %+g, %s = %s)",
			    pm->spec.name, vn, c->diff, pname(a), fmt_p(pb, sizeof(pb), p));
		} else if (c->needed_n > 0) {
			double more = c->needed_n > have ? c->needed_n - have : 0;
			*rc |= analysis_add_reason(
			    a,
			    "primary metric %s for %s: diff %+g, %s = %s, not significant at alpha "
			    "%g; about %.0f more units per arm (%.0f in all per arm) to detect this "
			    "difference with 80%% power",
			    pm->spec.name, vn, c->diff, pname(a), fmt_p(pb, sizeof(pb), p),
			    a->decision.alpha, more, c->needed_n);
		} else {
			*rc |= analysis_add_reason(
			    a,
			    "primary metric %s for %s: diff %+g, %s = %s, not significant at alpha "
			    "%g; no difference observed, so no sample size can be estimated",
			    pm->spec.name, vn, c->diff, pname(a), fmt_p(pb, sizeof(pb), p),
			    a->decision.alpha);
		}
	}
}

int decide_run(struct analysis *a, struct decide_state *st)
{
	int rc = 0;
	for (size_t i = 0; i < a->nreasons; i++)
		free(a->reasons[i]);
	a->nreasons = 0;
	set_action(a, "continue", NULL);
	if (rule_srm(a, &rc))
		return rc ? -1 : 0;
	if (rule_gates(a, st, &rc))
		return rc ? -1 : 0;
	if (rule_harm(a, &rc))
		return rc ? -1 : 0;
	if (rule_samples(a, &rc))
		return rc ? -1 : 0;
	if (rule_promote(a, &rc))
		return rc ? -1 : 0;
	rule_continue(a, &rc);
	return rc ? -1 : 0;
}
