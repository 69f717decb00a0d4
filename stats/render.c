/*
 * render.c - the JSON report, the format dispatch and shared number formatting
 * (see include/render.h). JSON never holds NaN or infinity: such a value is written as null
 * and the object gets a "note" saying why.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "render.h"
#include "rhtml.h"
#include "rtext.h"
#include "shadow_stats.h"

int render_format_parse(const char *name)
{
	static const char *const names[] = {"text", "json", "md", "html"};
	for (int i = 0; i < 4; i++)
		if (strcmp(name, names[i]) == 0)
			return i;
	return -1;
}

const char *render_num(char *buf, size_t len, bool has, double v, int sig)
{
	if (!has || !isfinite(v))
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.*g", sig, v);
	return buf;
}

const char *render_p(char *buf, size_t len, bool has, double p)
{
	if (!has || !isfinite(p))
		snprintf(buf, len, "-");
	else if (p >= 1e-4 || p == 0)
		snprintf(buf, len, "%.4f", p);
	else
		snprintf(buf, len, "%.1e", p);
	return buf;
}

const char *render_notes(char *buf, size_t len, const char *const *notes, size_t n)
{
	size_t off = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n && off < len; i++) {
		int w = snprintf(buf + off, len - off, "%s%s", i ? "; " : "", notes[i]);
		if (w < 0)
			break;
		off += (size_t)w;
	}
	return buf;
}

/* Adds a number, or null when it is unknown or not finite. Returns false on memory failure. */
static bool put_num(cJSON *o, const char *key, bool has, double v)
{
	if (has && isfinite(v))
		return cJSON_AddNumberToObject(o, key, v) != NULL;
	return cJSON_AddNullToObject(o, key) != NULL;
}

static bool put_str(cJSON *o, const char *key, const char *s)
{
	if (s == NULL)
		return cJSON_AddNullToObject(o, key) != NULL;
	return cJSON_AddStringToObject(o, key, s) != NULL;
}

static bool put_bool(cJSON *o, const char *key, bool b)
{
	return cJSON_AddBoolToObject(o, key, b) != NULL;
}

static cJSON *json_summary(const struct analysis_metric *m, const struct analysis_summary *s)
{
	cJSON *o = cJSON_CreateObject();
	if (o == NULL)
		return NULL;
	bool ok = put_num(o, "n", true, (double)s->n);
	/* the unit-level figures: units (or buckets) the variance rests on, design effect */
	ok &= put_num(o, "units", true, s->units);
	ok &= put_num(o, "values_per_unit", s->units > 0, (double)s->n / s->units);
	ok &= put_num(o, "se_mean", s->uv.ok, sqrt(s->uv.var_mean));
	ok &= put_num(o, "design_effect", s->uv.ok, s->uv.deff);
	ok &= put_str(o, "variance_from", s->uv.bucketed ? "pseudo-unit buckets" : "units");
	if (s->uv.bucketed)
		ok &= put_num(o, "buckets", true, s->uv.groups);
	if (m->spec.kind == CONF_METRIC_BINARY) {
		ok &= put_num(o, "successes", true, (double)s->successes);
		ok &= put_num(o, "rate", s->n > 0, s->rate);
	} else {
		ok &= put_num(o, "mean", s->n > 0, s->mean);
		ok &= put_num(o, "sd", s->n > 1, s->sd);
		ok &= put_num(o, "p50", s->has_quantiles, s->p50);
		ok &= put_num(o, "p95", s->has_quantiles, s->p95);
		ok &= put_num(o, "p99", s->has_quantiles, s->p99);
		if (s->n == 0)
			ok &= put_str(o, "note", "no values");
		else if (s->n == 1)
			ok &= put_str(o, "note", "one value: no standard deviation");
	}
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static cJSON *json_cmp(const struct analysis *a, const struct analysis_metric *m,
		       const struct analysis_cmp *c)
{
	cJSON *o = cJSON_CreateObject();
	if (o == NULL)
		return NULL;
	bool binary = m->spec.kind == CONF_METRIC_BINARY;
	bool ok = put_str(o, "variant", a->variants[c->variant].name);
	ok &= put_str(o, "test", c->test);
	ok &= put_num(o, "statistic", c->ok && c->has_stat, c->statistic);
	ok &= put_num(o, "df", c->ok, c->df);
	ok &= put_num(o, "p_value", c->ok, c->p_value);
	ok &= put_num(o, "p_value_one_sided", c->ok, c->p_one_sided);
	ok &= put_str(o, "one_sided", c->one_sided);
	ok &= put_num(o, "p_value_adjusted", c->has_adjusted, c->p_adjusted);
	ok &= put_num(o, "p_value_sequential", c->has_seq, c->p_seq);
	if (a->decision.sequential) {
		ok &= put_num(o, "p_value_sequential_one_sided", c->has_seq, c->p_seq_one_sided);
		ok &= put_num(o, "seq_ci_low", c->has_seq, c->seq_ci_low);
		ok &= put_num(o, "seq_ci_high", c->has_seq, c->seq_ci_high);
	}
	if (binary) {
		ok &= put_num(o, "design_effect", c->ok, c->design_effect);
		ok &= put_num(o, "p_value_yates", c->has_yates, c->p_yates);
		ok &= put_num(o, "min_expected", c->ok, c->min_expected);
		if (c->has_fisher)
			ok &= put_num(o, "p_value_fisher", true, c->p_fisher);
	}
	ok &= put_num(o, "diff", c->has_diff, c->diff);
	ok &= put_num(o, "ci_low", c->has_diff, c->ci_low);
	ok &= put_num(o, "ci_high", c->has_diff, c->ci_high);
	ok &= put_num(o, "relative_lift", c->has_lift, c->lift);
	ok &= put_num(o, "relative_lift_ci_low", c->has_lift, c->lift_ci_low);
	ok &= put_num(o, "relative_lift_ci_high", c->has_lift, c->lift_ci_high);
	if (!binary) {
		cJSON *mw = cJSON_AddObjectToObject(o, "mann_whitney");
		ok &= mw != NULL;
		if (mw) {
			ok &= put_num(mw, "u", c->has_mw, c->mw_u);
			ok &= put_num(mw, "auc", c->has_mw, c->mw_auc);
			ok &= put_num(mw, "p_value", c->has_mw, c->mw_p);
		}
	}
	ok &= put_bool(o, "significant", c->significant);
	if (m->spec.guardrail) {
		ok &= put_bool(o, "harm", c->harm);
		if (c->noninferior < 0)
			ok &= cJSON_AddNullToObject(o, "noninferior") != NULL;
		else
			ok &= put_bool(o, "noninferior", c->noninferior == 1);
		if (m->spec.has_margin)
			ok &= put_num(o, "noninferiority_bound", c->has_ni_bound, c->ni_bound);
	} else {
		ok &= put_bool(o, "better", c->better);
	}
	ok &= put_num(o, "needed_per_arm", c->needed_n > 0, c->needed_n);
	ok &= put_str(o, "needed_in", "units");
	if (c->nnotes) {
		char buf[1024];
		ok &= put_str(o, "note", render_notes(buf, sizeof(buf), c->notes, c->nnotes));
	}
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static cJSON *json_metric(const struct analysis *a, const struct analysis_metric *m)
{
	cJSON *o = cJSON_CreateObject();
	if (o == NULL)
		return NULL;
	const struct conf_metric *s = &m->spec;
	bool ok = put_str(o, "name", s->name);
	ok &= put_str(o, "kind", s->kind == CONF_METRIC_BINARY ? "binary" : "continuous");
	ok &= put_str(o, "goal", s->goal == CONF_GOAL_DECREASE ? "decrease" : "increase");
	ok &= put_bool(o, "guardrail", s->guardrail);
	ok &= put_bool(o, "primary", s->primary);
	if (s->has_margin)
		ok &= put_num(o, "margin", true, s->margin);
	if (s->has_max)
		ok &= put_num(o, "max", true, s->max);
	cJSON *by = cJSON_AddObjectToObject(o, "by_variant");
	cJSON *cmps = cJSON_AddArrayToObject(o, "comparisons");
	ok &= by != NULL && cmps != NULL;
	for (size_t i = 0; ok && i < a->nvariants; i++) {
		cJSON *v = json_summary(m, &m->by[i]);
		ok &= v != NULL;
		if (v)
			cJSON_AddItemToObject(by, a->variants[i].name, v);
	}
	for (size_t i = 0; ok && i + 1 < a->nvariants; i++) {
		cJSON *c = json_cmp(a, m, &m->cmp[i]);
		ok &= c != NULL;
		if (c)
			cJSON_AddItemToArray(cmps, c);
	}
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* k of n with its Wilson interval; why says what is missing when n is 0. */
static cJSON *json_rate(const struct shadow_stats_rate *r, const char *count_key, const char *why)
{
	cJSON *o = cJSON_CreateObject();
	if (o == NULL)
		return NULL;
	bool ok = put_num(o, "n", true, (double)r->n);
	ok &= put_num(o, count_key, true, (double)r->k);
	ok &= put_num(o, "rate", r->has, r->rate);
	ok &= put_num(o, "ci_low", r->has, r->ci_low);
	ok &= put_num(o, "ci_high", r->has, r->ci_high);
	if (!r->has)
		ok &= put_str(o, "note", why);
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static bool add_item(cJSON *o, const char *key, cJSON *item)
{
	if (item == NULL)
		return false;
	cJSON_AddItemToObject(o, key, item);
	return true;
}

static cJSON *json_side(const struct shadow_stats_side *sd)
{
	cJSON *o = cJSON_CreateObject();
	if (o == NULL)
		return NULL;
	bool ok = put_num(o, "n", true, (double)sd->n);
	ok &= put_num(o, "mean", sd->has, sd->mean);
	ok &= put_num(o, "sd", sd->has_sd, sd->sd);
	ok &= put_num(o, "p50", sd->has, sd->p50);
	ok &= put_num(o, "p95", sd->has, sd->p95);
	ok &= put_num(o, "p99", sd->has, sd->p99);
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* The "shadow" object (DESIGN terms in include/shadow_stats.h). */
static cJSON *json_shadow(const struct shadow_summary *s)
{
	cJSON *o = cJSON_CreateObject();
	if (o == NULL)
		return NULL;
	bool ok = put_num(o, "records", true, (double)s->records);
	ok &= put_num(o, "compared", true, (double)s->compared);
	ok &= put_num(o, "failed", true, (double)s->failed);
	ok &= put_num(o, "not_comparable", true, (double)s->not_comparable);
	cJSON *fe = cJSON_AddObjectToObject(o, "failed_by_error");
	ok &= fe != NULL;
	for (size_t i = 0; fe && i < s->nerrors; i++)
		ok &= put_num(fe, s->errors[i].reason, true, (double)s->errors[i].n);

	const char *nc = "no comparable shadow answer";
	cJSON *ag = json_rate(&s->agreement, "agree", nc);
	ok &= ag != NULL;
	if (ag) {
		ok &= put_str(ag, "basis", s->basis);
		ok &= put_num(ag, "confidence", true, 0.95);
		ok &= put_str(ag, "interval", "wilson");
		cJSON_AddItemToObject(o, "agreement", ag);
	}
	ok &= add_item(o, "same_status", json_rate(&s->same_status, "same", nc));
	ok &= add_item(o, "same_body", json_rate(&s->same_body, "same", nc));
	cJSON *fd = cJSON_AddObjectToObject(o, "json_field");
	ok &= fd != NULL;
	if (fd) {
		ok &= put_num(fd, "n", true, (double)s->field_n);
		ok &= put_num(fd, "missing", true, (double)s->field_missing);
	}

	cJSON *lat = cJSON_AddObjectToObject(o, "latency_ms");
	ok &= lat != NULL;
	if (lat) {
		ok &= put_num(lat, "pairs", true, (double)s->pairs);
		ok &= add_item(lat, "shadow", json_side(&s->shadow));
		ok &= add_item(lat, "primary", json_side(&s->primary));
		cJSON *d = cJSON_AddObjectToObject(lat, "diff");
		ok &= d != NULL;
		if (d) {
			ok &= put_str(d, "of", "shadow - primary");
			ok &= put_str(d, "test", "paired_t");
			ok &= put_num(d, "mean", s->pairs > 0, s->diff_mean);
			ok &= put_num(d, "sd", s->has_diff, s->diff_sd);
			ok &= put_num(d, "df", s->has_diff, s->diff_df);
			ok &= put_num(d, "ci_low", s->has_diff, s->diff_ci_low);
			ok &= put_num(d, "ci_high", s->has_diff, s->diff_ci_high);
			if (!s->has_diff)
				ok &= put_str(d, "note",
					      s->pairs > 1 ? "interval not finite"
							   : "fewer than 2 latency pairs");
		}
	}

	cJSON *er = cJSON_AddObjectToObject(o, "errors_5xx");
	ok &= er != NULL;
	if (er) {
		const char *np = "no pair of statuses";
		ok &= put_num(er, "pairs", true, (double)s->status_pairs);
		ok &= add_item(er, "shadow", json_rate(&s->shadow_5xx, "errors", np));
		ok &= add_item(er, "primary", json_rate(&s->primary_5xx, "errors", np));
		ok &= put_num(er, "shadow_only", true, (double)s->shadow_only);
		ok &= put_num(er, "primary_only", true, (double)s->primary_only);
		ok &= put_str(er, "test", s->has_p ? s->test : "mcnemar_exact");
		ok &= put_num(er, "p_value", s->has_p, s->p_value);
		if (!s->has_p)
			ok &= put_str(er, "note", np);
	}
	if (s->nnotes) {
		char buf[1024];
		ok &= put_str(o, "note", render_notes(buf, sizeof(buf), s->notes, s->nnotes));
	}
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

cJSON *render_json(const struct analysis *a, const struct render_meta *m)
{
	cJSON *o = cJSON_CreateObject();
	if (o == NULL)
		return NULL;
	bool ok = put_str(o, "experiment", a->experiment);
	ok &= put_str(o, "generated", m ? m->generated : NULL);
	cJSON *logs = cJSON_AddArrayToObject(o, "logs");
	ok &= logs != NULL;
	for (size_t i = 0; ok && m && i < m->nlogs; i++) {
		cJSON *s = cJSON_CreateString(m->logs[i]);
		ok &= s != NULL;
		if (s)
			cJSON_AddItemToArray(logs, s);
	}
	cJSON *rec = cJSON_AddObjectToObject(o, "records");
	ok &= rec != NULL;
	if (rec && m) {
		ok &= put_num(rec, "request", true, (double)m->request);
		ok &= put_num(rec, "outcome", true, (double)m->outcome);
		ok &= put_num(rec, "skipped", true, (double)m->skipped);
		ok &= put_num(rec, "config", true, (double)m->config);
		ok &= put_num(rec, "shadow", true, (double)m->shadow);
		ok &= put_num(rec, "forced", true, (double)m->forced);
		ok &= put_num(rec, "unrandomised", true, (double)m->unrandomised);
		ok &= put_num(rec, "other", true, (double)m->other);
	}
	cJSON *dec = cJSON_AddObjectToObject(o, "decision");
	ok &= dec != NULL;
	if (dec) {
		ok &= put_num(dec, "alpha", true, a->decision.alpha);
		ok &= put_num(dec, "min_samples", true, (double)a->decision.min_samples);
		ok &= put_num(dec, "srm_alpha", true, a->decision.srm_alpha);
		ok &= put_bool(dec, "sequential", a->decision.sequential);
		ok &= put_num(dec, "sequential_n", true, a->nstar);
	}
	cJSON *un = cJSON_AddObjectToObject(o, "analysis_unit");
	ok &= un != NULL;
	if (un) {
		ok &= put_str(un, "unit", a->unit);
		ok &= put_num(un, "requests_per_unit", a->per_unit > 0, a->per_unit);
		ok &= put_str(un, "variance", a->bucketed ? "delta method over units; pseudo-unit "
							   "buckets where a metric passed the "
							   "per-unit cap"
							 : "delta method over units");
		ok &= put_str(un, "srm_counts", a->srm.level ? "distinct units in a hash sample"
							     : "distinct units");
	}
	cJSON *vars = cJSON_AddArrayToObject(o, "variants");
	ok &= vars != NULL;
	for (size_t i = 0; ok && i < a->nvariants; i++) {
		const struct analysis_variant *v = &a->variants[i];
		cJSON *x = cJSON_CreateObject();
		ok &= x != NULL;
		if (x == NULL)
			break;
		cJSON_AddItemToArray(vars, x);
		ok &= put_str(x, "name", v->name);
		ok &= put_num(x, "weight", v->has_weight, v->weight);
		ok &= put_num(x, "requests", true, (double)v->requests);
		ok &= put_num(x, "units", true, v->units);
		ok &= put_num(x, "requests_per_unit", v->units > 0,
			      (double)v->requests / v->units);
		if (v->units_estimated) {
			ok &= put_bool(x, "units_estimated", true);
			ok &= put_num(x, "units_sample", true, ldexp(1.0, -(int)v->units_level));
		}
	}
	cJSON *srm = cJSON_AddObjectToObject(o, "srm");
	ok &= srm != NULL;
	if (srm) {
		ok &= put_num(srm, "chi2", a->srm.computed, a->srm.chi2);
		ok &= put_num(srm, "df", a->srm.computed || a->srm.df > 0, a->srm.df);
		ok &= put_num(srm, "p_value", a->srm.computed, a->srm.p);
		ok &= put_bool(srm, "flagged", a->srm.flagged);
		ok &= put_str(srm, "counts", "distinct units");
		if (a->srm.level)
			ok &= put_num(srm, "sample", true, ldexp(1.0, -(int)a->srm.level));
		cJSON *ob = cJSON_AddArrayToObject(srm, "observed");
		cJSON *ex = cJSON_AddArrayToObject(srm, "expected");
		ok &= ob != NULL && ex != NULL;
		for (size_t i = 0; ok && a->srm.observed && i < a->nvariants; i++) {
			cJSON *x1 = cJSON_CreateNumber(a->srm.observed[i]);
			cJSON *x2 = cJSON_CreateNumber(a->srm.expected[i]);
			ok &= x1 != NULL && x2 != NULL;
			if (x1)
				cJSON_AddItemToArray(ob, x1);
			if (x2)
				cJSON_AddItemToArray(ex, x2);
		}
		if (a->srm.note || (a->srm.computed && !isfinite(a->srm.chi2)))
			ok &=
			    put_str(srm, "note", a->srm.note ? a->srm.note : "infinite statistic");
	}
	cJSON *mets = cJSON_AddArrayToObject(o, "metrics");
	ok &= mets != NULL;
	for (size_t j = 0; ok && j < a->nmetrics; j++) {
		cJSON *x = json_metric(a, &a->metrics[j]);
		ok &= x != NULL;
		if (x)
			cJSON_AddItemToArray(mets, x);
	}
	if (m && m->shadow_stats)
		ok &= add_item(o, "shadow", json_shadow(m->shadow_stats));
	else
		ok &= cJSON_AddNullToObject(o, "shadow") != NULL;
	cJSON *r = cJSON_AddObjectToObject(o, "recommendation");
	ok &= r != NULL;
	if (r) {
		ok &= put_str(r, "action", a->action ? a->action : "continue");
		if (a->action_variant)
			ok &= put_str(r, "variant", a->action_variant);
		cJSON *rs = cJSON_AddArrayToObject(r, "reasons");
		ok &= rs != NULL;
		for (size_t i = 0; ok && i < a->nreasons; i++) {
			cJSON *s = cJSON_CreateString(a->reasons[i]);
			ok &= s != NULL;
			if (s)
				cJSON_AddItemToArray(rs, s);
		}
	}
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static int write_json(FILE *f, struct analysis *const *as, const struct render_meta *metas,
		      size_t n)
{
	cJSON *root = NULL;
	if (n == 1) {
		root = render_json(as[0], &metas[0]);
	} else {
		root = cJSON_CreateArray();
		for (size_t i = 0; root && i < n; i++) {
			cJSON *x = render_json(as[i], &metas[i]);
			if (x == NULL) {
				cJSON_Delete(root);
				root = NULL;
				break;
			}
			cJSON_AddItemToArray(root, x);
		}
	}
	if (root == NULL)
		return -1;
	char *s = cJSON_Print(root);
	cJSON_Delete(root);
	if (s == NULL)
		return -1;
	int rc = fputs(s, f) < 0 || fputc('\n', f) == EOF ? -1 : 0;
	cJSON_free(s);
	return rc;
}

int render_write(FILE *f, enum render_format fmt, struct analysis *const *as,
		 const struct render_meta *metas, size_t n)
{
	switch (fmt) {
	case RENDER_JSON:
		return write_json(f, as, metas, n);
	case RENDER_HTML:
		return rhtml_write(f, as, metas, n);
	case RENDER_TEXT:
	case RENDER_MD:
		for (size_t i = 0; i < n; i++) {
			if (i > 0 && fputc('\n', f) == EOF)
				return -1;
			if (rtext_write(f, as[i], &metas[i], fmt == RENDER_MD) < 0)
				return -1;
		}
		return 0;
	}
	return -1;
}

const char *render_rate(char *buf, size_t len, const struct shadow_stats_rate *r,
			const char *none)
{
	char b1[32], b2[32], b3[32];

	if (!r->has)
		snprintf(buf, len, "%s", none);
	else
		snprintf(buf, len, "%s (%llu/%llu), 95%% Wilson CI [%s, %s]",
			 render_num(b1, sizeof(b1), true, r->rate, 4), (unsigned long long)r->k,
			 (unsigned long long)r->n, render_num(b2, sizeof(b2), true, r->ci_low, 4),
			 render_num(b3, sizeof(b3), true, r->ci_high, 4));
	return buf;
}

void render_side_cells(char cells[5][32], const struct shadow_stats_side *d)
{
	render_num(cells[0], sizeof(cells[0]), d->has, d->mean, 6);
	render_num(cells[1], sizeof(cells[1]), d->has_sd, d->sd, 6);
	render_num(cells[2], sizeof(cells[2]), d->has, d->p50, 5);
	render_num(cells[3], sizeof(cells[3]), d->has, d->p95, 5);
	render_num(cells[4], sizeof(cells[4]), d->has, d->p99, 5);
}
