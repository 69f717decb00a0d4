/*
 * analysis.c - accumulators in, report object out (see include/analysis.h): summaries per
 * variant, tests against the control, multiple-testing adjustment, sample-ratio check.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "htest.h"
#include "seqtest.h"
#include "sizing.h"

void analysis_decision_defaults(struct conf_decision *dec)
{
	memset(dec, 0, sizeof(*dec));
	dec->alpha = 0.05;
	dec->min_samples = 500;
	dec->srm_alpha = 0.001;
	dec->sequential = false;
	dec->on_srm_rollback = false;
	dec->sequential_n = 5000;
}

const char *analysis_unit_name(const struct conf_experiment *e, char *buf, size_t len)
{
	if (e == NULL || e->unit_name == NULL) {
		snprintf(buf, len, "unit");
		return buf;
	}
	const char *kind = e->unit == CONF_UNIT_HEADER ? "header"
			   : e->unit == CONF_UNIT_COOKIE ? "cookie"
							 : "query";
	snprintf(buf, len, "%s %s", kind, e->unit_name);
	return buf;
}

static void add_note(struct analysis_cmp *c, const char *note)
{
	if (note == NULL)
		return;
	for (size_t i = 0; i < c->nnotes; i++)
		if (strcmp(c->notes[i], note) == 0)
			return;
	if (c->nnotes < ANALYSIS_MAX_NOTES)
		c->notes[c->nnotes++] = note;
}

static void summarize(struct analysis_summary *s, const struct accum_metric *am, bool binary,
		      double variant_units)
{
	memset(s, 0, sizeof(*s));
	accum_metric_unitvar(am, &s->uv);
	s->units = s->uv.bucketed ? variant_units : s->uv.units;
	s->n = am->mom.n;
	s->successes = am->successes;
	s->rate = s->n ? (double)s->successes / (double)s->n : 0.0;
	s->mean = accum_moments_mean(&am->mom);
	s->sd = sqrt(accum_moments_var(&am->mom));
	s->series = am->series;
	if (!binary && am->hist && am->hist->total > 0) {
		s->has_quantiles = true;
		s->p50 = accum_hist_quantile(am->hist, 0.50, am->mom.min, am->mom.max);
		s->p95 = accum_hist_quantile(am->hist, 0.95, am->mom.min, am->mom.max);
		s->p99 = accum_hist_quantile(am->hist, 0.99, am->mom.min, am->mom.max);
	}
}

/* Does a positive difference (treatment - control) mean harm for this metric? */
static bool up_is_harm(const struct conf_metric *m)
{
	return m->goal == CONF_GOAL_DECREASE;
}

/* Mann-Whitney U over two histograms, buckets as tied groups. */
static void compare_hists(struct analysis_cmp *c, const struct accum_hist *ht,
			  const struct accum_hist *hc)
{
	size_t ng = 0;
	double *cx = malloc(ACCUM_HIST_BUCKETS * sizeof(double));
	double *cy = malloc(ACCUM_HIST_BUCKETS * sizeof(double));
	if (cx == NULL || cy == NULL)
		goto out;
	for (size_t i = 0; i < ACCUM_HIST_BUCKETS; i++) {
		if (ht->counts[i] == 0 && hc->counts[i] == 0)
			continue;
		cx[ng] = (double)ht->counts[i];
		cy[ng] = (double)hc->counts[i];
		ng++;
	}
	struct htest_mw mw;
	if (htest_mannwhitney(cx, cy, ng, &mw) == 0) {
		c->has_mw = true;
		c->mw_u = mw.u;
		c->mw_auc = mw.auc;
		c->mw_p = mw.p_two;
	}
out:
	free(cx);
	free(cy);
}

/*
 * One arm of a comparison at the unit: n values, the mean, var such that var / n is the
 * delta-method variance of the mean, df from the units (or buckets). Returns false (why set)
 * when the values come from a single unit, so no variance between units can be estimated.
 */
static bool unit_arm(const struct analysis_summary *s, const struct accum_metric *am, bool binary,
		     struct htest_arm *arm, const char **why)
{
	const struct accum_unitvar *uv = &s->uv;
	if (uv->n >= 2 && uv->groups < 2) {
		*why = "needs at least 2 units in each arm";
		return false;
	}
	/* fewer than 2 values: nothing clustered, the tests themselves say what is missing */
	double d = uv->ok ? uv->deff : 1.0, df = uv->ok ? uv->df : 0.0;
	if (binary) {
		double p = uv->n > 0 ? (double)am->successes / uv->n : 0;
		*arm = (struct htest_arm){uv->n, p, p * (1 - p) * d, df};
	} else {
		double var = uv->ok ? uv->var_mean * uv->n : accum_moments_var(&am->mom);
		*arm = (struct htest_arm){uv->n, uv->mean, var, df};
	}
	return true;
}

/*
 * Fills the fixed-horizon part of one comparison. t and k are the treatment and control
 * accumulators of the metric, st and sk their summaries.
 */
static void compare(const struct analysis *a, const struct analysis_metric *m,
		    struct analysis_cmp *c, const struct accum_metric *t,
		    const struct accum_metric *k, const struct analysis_summary *st,
		    const struct analysis_summary *sk)
{
	const struct conf_metric *spec = &m->spec;
	double alpha = a->decision.alpha;
	bool binary = spec->kind == CONF_METRIC_BINARY;
	bool guard = spec->guardrail;
	double nt = (double)t->mom.n, nk = (double)k->mom.n;
	double ut = st->units, uk = sk->units; /* independent units of each arm */
	struct htest_arm at, ak;
	const char *why = NULL;

	/* the one-sided alternative: harm for guardrails, the goal otherwise; pos: t > control */
	bool pos = guard ? up_is_harm(spec) : !up_is_harm(spec);
	c->one_sided = guard ? "harm" : "improvement";
	c->noninferior = -1;
	c->design_effect = 1.0;
	c->have_units = ut < uk ? ut : uk;
	c->test = binary ? "chi_square" : "welch_t";
	if (!unit_arm(st, t, binary, &at, &why) || !unit_arm(sk, k, binary, &ak, &why)) {
		add_note(c, why);
		return;
	}
	if (binary) {
		double pt = at.mean, pk = ak.mean;
		double table[4] = {(double)t->successes, nt - (double)t->successes,
				   (double)k->successes, nk - (double)k->successes};
		struct htest_chi2 x, y;
		if (htest_chi2_table(table, 2, 2, false, &x) == 0) {
			/* Rao-Scott: the pooled statistic over the design effects of the arms */
			double dt = st->uv.ok ? st->uv.deff : 1.0, dk = sk->uv.ok ? sk->uv.deff : 1.0;
			double delta = htest_rao_scott_delta(nt, dt, nk, dk);
			if (!(isfinite(delta) && delta > 0)) {
				delta = 1.0;
				add_note(c, "design effect not computable: chi-square uncorrected");
			}
			c->design_effect = delta;
			c->ok = c->has_stat = true;
			c->statistic = x.chi2 / delta;
			c->df = 1;
			c->p_value = htest_chi2_sf(c->statistic, 1);
			c->min_expected = x.min_expected;
			add_note(c, x.note);
			/* pooled z carries the direction; z^2 = chi2 */
			double z = sqrt(c->statistic) * (pt > pk ? 1 : pt < pk ? -1 : 0);
			c->p_one_sided = htest_norm_sf(pos ? z : -z);
			if (htest_chi2_table(table, 2, 2, true, &y) == 0) {
				c->has_yates = true;
				c->p_yates = htest_chi2_sf(y.chi2 / delta, 1);
			}
			struct htest_fisher f;
			if (x.min_expected < 5 &&
			    htest_fisher(table[0], table[1], table[2], table[3], &f) == 0) {
				c->has_fisher = true;
				c->p_fisher = f.p_two;
				add_note(c, "small expected counts: see p_value_fisher (Fisher's "
					    "exact test)");
			}
		} else {
			add_note(c, x.note);
		}
	} else {
		struct htest_welch w;
		if (htest_welch(&at, &ak, alpha, &w) == 0) {
			c->ok = true;
			c->has_stat = w.has_stat;
			c->statistic = w.t;
			c->df = w.df;
			c->p_value = w.p_two;
			c->p_one_sided = pos ? w.p_greater : w.p_less;
		}
		add_note(c, w.note);
		if (t->hist && k->hist)
			compare_hists(c, t->hist, k->hist);
	}

	/* difference and lift with p(1-p) or sample variances, Welch df */
	struct htest_welch d;
	if (htest_welch(&at, &ak, alpha, &d) == 0) {
		c->has_diff = true;
		c->diff = d.diff;
		c->ci_low = d.ci_low;
		c->ci_high = d.ci_high;
		if (a->decision.sequential) {
			double n = ut + uk;
			double h = seqtest_halfwidth(d.se, n, a->nstar, alpha);
			double p = seqtest_p(d.diff, d.se, n, a->nstar, alpha);
			double p1 = alpha < 0.5 ? seqtest_p_one_sided(pos ? d.diff : -d.diff, d.se,
								      n, a->nstar, alpha)
						: NAN;
			if (isfinite(h) && isfinite(p) && isfinite(p1)) {
				c->has_seq = true;
				c->seq_ci_low = d.diff - h;
				c->seq_ci_high = d.diff + h;
				c->p_seq = p;
				c->p_seq_one_sided = p1;
			}
		}
		/* units per arm to detect the observed difference with 80% power, from the
		 * variance one unit contributes (the variance of the mean times the units) */
		double need = sizing_n_means(ak.var / nk * uk, at.var / nt * ut, d.diff, alpha, 0.8);
		c->needed_n = isfinite(need) ? ceil(need) : 0;
	} else if (c->ok) {
		add_note(c, d.note);
	}
	struct htest_lift l;
	if (htest_lift(&at, &ak, alpha, &l) == 0) {
		c->has_lift = true;
		c->lift = l.lift;
		c->lift_ci_low = l.ci_low;
		c->lift_ci_high = l.ci_high;
	} else if (c->ok || nk >= 2) {
		add_note(c, l.note);
	}

	/* non-inferiority of a guardrail against its relative margin */
	if (guard && spec->has_margin) {
		size_t m_guard = 0;
		for (size_t i = 0; i < a->nmetrics; i++)
			m_guard += a->metrics[i].spec.guardrail ? a->nvariants - 1 : 0;
		double a1 = alpha / (double)(m_guard ? m_guard : 1);
		if (c->has_lift && l.se > 0) {
			double harm_lift = up_is_harm(spec) ? l.lift : -l.lift;
			double w = a->decision.sequential
				       ? seqtest_halfwidth_one_sided(l.se, ut + uk, a->nstar, a1)
				       : htest_t_isf(a1, l.df) * l.se;
			if (isfinite(w)) {
				c->has_ni_bound = true;
				c->ni_bound = harm_lift + w;
			}
		} else if (c->has_lift) {
			c->has_ni_bound = true;
			c->ni_bound = up_is_harm(spec) ? l.lift : -l.lift;
		} else {
			add_note(c, "non-inferiority bound needs a relative lift");
		}
	}
}

/* Holm within one family: fam selects comparisons, p picks their p-value. */
static int adjust_family(struct analysis *a, int fam)
{
	size_t m = 0;
	for (size_t i = 0; i < a->nmetrics; i++)
		m += a->nvariants - 1;
	double *p = malloc((m ? m : 1) * sizeof(double));
	struct analysis_cmp **who = malloc((m ? m : 1) * sizeof(*who));
	if (p == NULL || who == NULL) {
		free(p);
		free(who);
		return -1;
	}
	size_t k = 0;
	for (size_t i = 0; i < a->nmetrics; i++) {
		const struct conf_metric *s = &a->metrics[i].spec;
		int f = s->guardrail ? 0 : s->primary ? 1 : 2;
		if (f != fam)
			continue;
		for (size_t j = 0; j + 1 < a->nvariants; j++) {
			struct analysis_cmp *c = &a->metrics[i].cmp[j];
			if (!c->ok)
				continue;
			double v;
			if (a->decision.sequential && c->has_seq)
				v = fam == 0 ? c->p_seq_one_sided : c->p_seq;
			else if (a->decision.sequential)
				continue;
			else
				v = fam == 0 ? c->p_one_sided : c->p_value;
			if (!(v >= 0 && v <= 1))
				continue;
			p[k] = v;
			who[k++] = c;
		}
	}
	if (k > 0 && htest_holm(p, k, p) == 0)
		for (size_t i = 0; i < k; i++) {
			who[i]->has_adjusted = true;
			who[i]->p_adjusted = p[i];
		}
	free(p);
	free(who);
	return 0;
}

static void judge(struct analysis *a, struct analysis_metric *m, struct analysis_cmp *c)
{
	const struct conf_metric *s = &m->spec;
	double alpha = a->decision.alpha;
	if (!c->ok)
		return;
	if (a->decision.sequential && !c->has_seq)
		add_note(c, "sequential p-value not computable");
	if (c->has_adjusted) {
		bool sig = c->p_adjusted < alpha;
		bool up = c->diff > 0, down = c->diff < 0;
		if (s->guardrail) {
			c->harm = sig && (up_is_harm(s) ? up : down);
			c->significant = c->harm;
		} else {
			c->significant = sig;
			c->better = sig && (up_is_harm(s) ? down : up);
		}
	}
	if (s->guardrail) {
		if (s->has_margin)
			c->noninferior = c->has_ni_bound ? c->ni_bound < s->margin : -1;
		else {
			uint64_t nt = m->by[c->variant].n, nk = m->by[0].n;
			bool enough =
			    nt >= a->decision.min_samples && nk >= a->decision.min_samples;
			c->noninferior = c->harm ? 0 : enough ? 1 : -1;
		}
		if (c->harm)
			c->noninferior = 0;
	}
}

/*
 * The sample-ratio check on distinct units: every variant's units counted at the sample level
 * of the most sampled set (all units while no set passed its cap), per epoch; each epoch's
 * units are expected in its weights' shares.
 */
static void check_srm(struct analysis *a, const struct analysis_input *in)
{
	struct analysis_srm *s = &a->srm;
	size_t k = a->nvariants;
	double *cnt = calloc(k * ACCUM_EPOCHS, sizeof(double));
	double *obs = calloc(k, sizeof(double)), *exp = calloc(k, sizeof(double));
	if (cnt == NULL || obs == NULL || exp == NULL) {
		free(obs);
		free(exp);
		goto out;
	}
	s->observed = obs;
	s->expected = exp;
	unsigned level = 0;
	for (size_t i = 0; i < k; i++)
		if (in->acc[i]->units.level > level)
			level = in->acc[i]->units.level;
	s->level = level;
	/* observed: each epoch's distinct units, summed (the distinct units with one epoch) */
	for (size_t i = 0; i < k; i++) {
		accum_uset_count(&in->acc[i]->units, level, cnt + i * ACCUM_EPOCHS);
		for (size_t e = 0; e < ACCUM_EPOCHS; e++)
			obs[i] += cnt[i * ACCUM_EPOCHS + e];
	}
	bool have_w = false;
	for (size_t e = 0; e < ACCUM_EPOCHS; e++) {
		double tot = 0, wsum = 0;
		for (size_t i = 0; i < k; i++)
			tot += cnt[i * ACCUM_EPOCHS + e];
		if (tot == 0)
			continue;
		const double *w = in->weights;
		if (in->epoch_weights) {
			const double *row = in->epoch_weights + e * k;
			double rs = 0;
			for (size_t i = 0; i < k; i++)
				rs += row[i];
			if (rs > 0)
				w = row;
		}
		if (w == NULL)
			continue;
		for (size_t i = 0; i < k; i++)
			wsum += w[i];
		if (!(wsum > 0))
			continue;
		have_w = true;
		for (size_t i = 0; i < k; i++)
			exp[i] += tot * w[i] / wsum;
	}
	double total = 0;
	for (size_t i = 0; i < k; i++)
		total += obs[i];
	if (!have_w && total > 0) {
		s->note =
		    "weights unknown: no config record in the logs and no configuration given";
		goto out;
	}
	if (k < 2) {
		s->note = "only one variant";
		goto out;
	}
	struct htest_chi2 x;
	int rc = htest_gof(obs, exp, k, &x);
	s->df = x.df;
	s->note = x.note;
	if (rc < 0 && x.p == 0) {
		/* traffic where none was expected: a mismatch by definition */
		s->computed = true;
		s->chi2 = INFINITY;
		s->p = 0;
	} else if (rc == 0) {
		s->computed = true;
		s->chi2 = x.chi2;
		s->p = x.p;
	} else {
		goto out;
	}
	bool enough = true;
	for (size_t i = 0; i < k; i++)
		if (obs[i] < 8 && exp[i] > 0)
			enough = false;
	s->flagged = s->p < a->decision.srm_alpha && enough;
	if (s->p < a->decision.srm_alpha && !enough)
		s->note = "not flagged: an arm has fewer than 8 units";
	else if (level > 0 && s->note == NULL)
		s->note = "distinct units counted exactly in a hash sample of the units (the unit "
			  "cap was reached)";
out:
	free(cnt);
}

struct analysis *analysis_build(const struct analysis_input *in)
{
	if (in->nvariants == 0)
		return NULL;
	htest_init();
	struct analysis *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return NULL;
	a->experiment = strdup(in->experiment ? in->experiment : "");
	a->unit = strdup(in->unit ? in->unit : "unit");
	if (in->decision)
		a->decision = *in->decision;
	else
		analysis_decision_defaults(&a->decision);
	if (!(a->decision.alpha > 0 && a->decision.alpha < 1))
		a->decision.alpha = 0.05;
	a->nstar = a->decision.sequential_n > 0 ? a->decision.sequential_n : 5000;
	size_t k = in->nvariants;
	a->variants = calloc(k, sizeof(*a->variants));
	a->metrics = calloc(in->nmetrics ? in->nmetrics : 1, sizeof(*a->metrics));
	if (a->experiment == NULL || a->unit == NULL || a->variants == NULL || a->metrics == NULL)
		goto fail;
	a->nvariants = k;
	for (size_t i = 0; i < k; i++) {
		struct analysis_variant *v = &a->variants[i];
		v->name = strdup(in->names[i]);
		if (v->name == NULL)
			goto fail;
		v->has_weight = in->weights != NULL;
		v->weight = in->weights ? in->weights[i] : 0;
		v->requests = in->acc[i]->requests;
		v->units_level = in->acc[i]->units.level;
		v->units_estimated = v->units_level > 0;
		v->units = ldexp(accum_uset_count(&in->acc[i]->units, v->units_level, NULL),
				 (int)v->units_level);
		v->traffic = in->acc[i]->traffic;
	}
	for (size_t j = 0; j < in->nmetrics; j++) {
		struct analysis_metric *m = &a->metrics[j];
		a->nmetrics = j + 1;
		m->spec = in->metrics[j];
		m->spec.name = strdup(in->metrics[j].name);
		m->by = calloc(k, sizeof(*m->by));
		m->cmp = calloc(k, sizeof(*m->cmp));
		if (m->spec.name == NULL || m->by == NULL || m->cmp == NULL)
			goto fail;
	}
	a->nmetrics = in->nmetrics;
	for (size_t j = 0; j < in->nmetrics; j++) {
		struct analysis_metric *m = &a->metrics[j];
		bool binary = m->spec.kind == CONF_METRIC_BINARY;
		for (size_t i = 0; i < k; i++) {
			summarize(&m->by[i], &in->acc[i]->metrics[j], binary, a->variants[i].units);
			a->bucketed |= m->by[i].uv.bucketed;
		}
		for (size_t i = 1; i < k; i++) {
			m->cmp[i - 1].variant = i;
			compare(a, m, &m->cmp[i - 1], &in->acc[i]->metrics[j],
				&in->acc[0]->metrics[j], &m->by[i], &m->by[0]);
		}
	}
	double req = 0, units = 0;
	for (size_t i = 0; i < k; i++) {
		req += (double)a->variants[i].requests;
		units += a->variants[i].units;
	}
	a->per_unit = units > 0 ? req / units : 0;
	for (int fam = 0; fam < 3; fam++)
		if (adjust_family(a, fam) < 0)
			goto fail;
	for (size_t j = 0; j < a->nmetrics; j++)
		for (size_t i = 0; i + 1 < k; i++)
			judge(a, &a->metrics[j], &a->metrics[j].cmp[i]);
	check_srm(a, in);
	return a;
fail:
	analysis_free(a);
	return NULL;
}

int analysis_add_reason(struct analysis *a, const char *fmt, ...)
{
	char **r = realloc(a->reasons, (a->nreasons + 1) * sizeof(*r));
	if (r == NULL)
		return -1;
	a->reasons = r;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&r[a->nreasons], fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	a->nreasons++;
	return 0;
}

void analysis_free(struct analysis *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < a->nvariants; i++)
		free(a->variants[i].name);
	free(a->variants);
	for (size_t j = 0; j < a->nmetrics; j++) {
		free(a->metrics[j].spec.name);
		free(a->metrics[j].by);
		free(a->metrics[j].cmp);
	}
	free(a->metrics);
	free(a->srm.observed);
	free(a->srm.expected);
	free(a->unit);
	for (size_t i = 0; i < a->nreasons; i++)
		free(a->reasons[i]);
	free(a->reasons);
	free(a->action_variant);
	free(a->experiment);
	free(a);
}
