/*
 * rtext.c - the terminal report (fits 100 columns) and the Markdown report (tables that paste
 * into a pull request or a wiki). See include/rtext.h.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "analysis.h"
#include "render.h"
#include "rtext.h"
#include "shadow_stats.h"

#define WIDTH 100

/* Writes s wrapped at WIDTH, the first line after `first`, following lines indented by ind. */
static void wrap(FILE *f, const char *first, const char *s, int ind)
{
	int col = fprintf(f, "%s", first);
	while (*s) {
		const char *sp = strchr(s, ' ');
		size_t w = sp ? (size_t)(sp - s) : strlen(s);
		if (col > ind && col + 1 + (int)w > WIDTH) {
			fprintf(f, "\n%*s", ind, "");
			col = ind;
		} else if (col > ind) {
			fputc(' ', f);
			col++;
		}
		fwrite(s, 1, w, f);
		col += (int)w;
		s += w;
		while (*s == ' ')
			s++;
	}
	fputc('\n', f);
}

/* name cut to width characters ('~' marks a cut). */
static const char *cut(char *buf, size_t len, const char *name, size_t width)
{
	if (strlen(name) <= width || width < 2) {
		snprintf(buf, len, "%s", name);
	} else {
		snprintf(buf, len, "%.*s~", (int)(width - 1), name);
	}
	return buf;
}

static const char *kind_line(const struct conf_metric *s, char *buf, size_t len)
{
	snprintf(buf, len, "%s, goal %s%s%s",
		 s->kind == CONF_METRIC_BINARY ? "binary" : "continuous",
		 s->goal == CONF_GOAL_DECREASE ? "decrease" : "increase",
		 s->guardrail ? ", guardrail" : "", s->primary ? ", primary" : "");
	return buf;
}

static const char *verdict(const struct analysis_metric *m, const struct analysis_cmp *c)
{
	if (!c->ok)
		return "n/a";
	if (m->spec.guardrail)
		return c->harm ? "HARM" : c->noninferior == 1 ? "ok" : "no harm yet";
	if (c->better)
		return "BETTER";
	if (c->significant)
		return "WORSE";
	return "not signif.";
}

/* Signed number with sig digits, "-" when unknown. */
static const char *sgn(char *buf, size_t len, bool has, double v, int sig)
{
	if (!has || !isfinite(v))
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%+.*g", sig, v);
	return buf;
}

static const char *pct(char *buf, size_t len, bool has, double v)
{
	if (!has || !isfinite(v))
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%+.2f%%", 100 * v);
	return buf;
}

static void text_metric(FILE *f, const struct analysis *a, const struct analysis_metric *m)
{
	char b1[64], b2[64], b3[64], b4[64], b5[64], b6[64], nb[32];
	bool binary = m->spec.kind == CONF_METRIC_BINARY;
	fprintf(f, "\nmetric %s (%s)\n", m->spec.name, kind_line(&m->spec, b1, sizeof(b1)));
	if (binary)
		fprintf(f, "  %-20s %12s %12s %12s\n", "variant", "n", "successes", "rate");
	else
		fprintf(f, "  %-20s %10s %12s %12s %11s %11s %11s\n", "variant", "n", "mean", "sd",
			"p50", "p95", "p99");
	for (size_t i = 0; i < a->nvariants; i++) {
		const struct analysis_summary *s = &m->by[i];
		cut(nb, sizeof(nb), a->variants[i].name, 20);
		if (binary)
			fprintf(f, "  %-20s %12llu %12llu %12s\n", nb, (unsigned long long)s->n,
				(unsigned long long)s->successes,
				render_num(b1, sizeof(b1), s->n > 0, s->rate, 5));
		else
			fprintf(f, "  %-20s %10llu %12s %12s %11s %11s %11s\n", nb,
				(unsigned long long)s->n,
				render_num(b1, sizeof(b1), s->n > 0, s->mean, 6),
				render_num(b2, sizeof(b2), s->n > 1, s->sd, 6),
				render_num(b3, sizeof(b3), s->has_quantiles, s->p50, 5),
				render_num(b4, sizeof(b4), s->has_quantiles, s->p95, 5),
				render_num(b5, sizeof(b5), s->has_quantiles, s->p99, 5));
	}
	char ul[512];
	int un = snprintf(ul, sizeof(ul), "units:");
	for (size_t i = 0; i < a->nvariants && un > 0 && (size_t)un < sizeof(ul); i++) {
		const struct analysis_summary *s = &m->by[i];
		un += snprintf(ul + un, sizeof(ul) - (size_t)un, "%s %s %.0f (%s per unit, design "
				"effect %s)", i ? ";" : "", cut(nb, sizeof(nb), a->variants[i].name, 20),
				s->units, render_num(b1, sizeof(b1), s->units > 0,
						     (double)s->n / s->units, 4),
				render_num(b2, sizeof(b2), s->uv.ok, s->uv.deff, 4));
	}
	wrap(f, "  ", ul, 4);
	fprintf(f, "  %-14s %11s %-25s %9s %9s %9s %s\n", "vs control", "diff", "  95% CI", "lift",
		"p", "p adj", "verdict");
	for (size_t i = 0; i + 1 < a->nvariants; i++) {
		const struct analysis_cmp *c = &m->cmp[i];
		char ci[160];
		if (c->has_diff)
			snprintf(ci, sizeof(ci), "[%s, %s]",
				 sgn(b1, sizeof(b1), true, c->ci_low, 4),
				 sgn(b2, sizeof(b2), true, c->ci_high, 4));
		else
			snprintf(ci, sizeof(ci), "-");
		cut(nb, sizeof(nb), a->variants[c->variant].name, 14);
		fprintf(f, "  %-14s %11s %-25s %9s %9s %9s %s\n", nb,
			sgn(b3, sizeof(b3), c->has_diff, c->diff, 4), ci,
			pct(b4, sizeof(b4), c->has_lift, c->lift),
			render_p(b5, sizeof(b5), c->ok, c->p_value),
			render_p(b6, sizeof(b6), c->has_adjusted, c->p_adjusted), verdict(m, c));
		char line[512];
		int n = snprintf(line, sizeof(line), "%s %s, one-sided (%s) p %s",
				 binary ? "chi2" : "t",
				 render_num(b1, sizeof(b1), c->ok && c->has_stat, c->statistic, 5),
				 c->one_sided, render_p(b2, sizeof(b2), c->ok, c->p_one_sided));
		if (!binary && c->has_stat && c->ok)
			n += snprintf(line + n, sizeof(line) - (size_t)n, ", df %.1f", c->df);
		if (c->has_seq)
			n += snprintf(line + n, sizeof(line) - (size_t)n,
				      ", sequential p %s, CS [%s, %s]",
				      render_p(b3, sizeof(b3), true, c->p_seq),
				      sgn(b4, sizeof(b4), true, c->seq_ci_low, 4),
				      sgn(b5, sizeof(b5), true, c->seq_ci_high, 4));
		if (c->has_yates)
			n += snprintf(line + n, sizeof(line) - (size_t)n, ", Yates p %s",
				      render_p(b3, sizeof(b3), true, c->p_yates));
		if (c->has_fisher)
			n += snprintf(line + n, sizeof(line) - (size_t)n, ", Fisher p %s",
				      render_p(b3, sizeof(b3), true, c->p_fisher));
		if (c->has_mw)
			n += snprintf(line + n, sizeof(line) - (size_t)n,
				      ", Mann-Whitney p %s (per request, descriptive)",
				      render_p(b3, sizeof(b3), true, c->mw_p));
		if (c->has_ni_bound)
			n += snprintf(line + n, sizeof(line) - (size_t)n,
				      ", non-inferiority bound %.4f (margin %g)", c->ni_bound,
				      m->spec.margin);
		wrap(f, "    ", line, 4);
		if (c->nnotes) {
			char notes[1024];
			render_notes(notes, sizeof(notes), c->notes, c->nnotes);
			wrap(f, "    note:", notes, 10);
		}
	}
}

/* The failure reasons as "timeout 8, connect 2" into buf. */
static const char *reasons(char *buf, size_t len, const struct shadow_summary *s)
{
	size_t off = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < s->nerrors && off < len; i++) {
		int w = snprintf(buf + off, len - off, "%s%s %llu", i ? ", " : "",
				 s->errors[i].reason, (unsigned long long)s->errors[i].n);
		if (w < 0)
			break;
		off += (size_t)w;
	}
	return buf;
}

static const char *basis_words(const struct shadow_summary *s)
{
	if (s->basis == NULL)
		return "nothing compared";
	if (strcmp(s->basis, "json_field") == 0)
		return "same status and json field";
	if (strcmp(s->basis, "body") == 0)
		return "same status and body";
	return "same status and json field, else body";
}

/* The 5xx comparison in one sentence into buf. */
static const char *errors_line(char *buf, size_t len, const struct shadow_summary *s)
{
	char b1[32], b2[32], b3[32];
	if (!s->has_p) {
		snprintf(buf, len, "5xx: no pair of statuses");
		return buf;
	}
	snprintf(buf, len,
		 "5xx on %llu pairs: shadow %s, primary %s; only shadow %llu, only primary %llu; "
		 "%s p %s",
		 (unsigned long long)s->status_pairs,
		 render_num(b1, sizeof(b1), true, s->shadow_5xx.rate, 4),
		 render_num(b2, sizeof(b2), true, s->primary_5xx.rate, 4),
		 (unsigned long long)s->shadow_only, (unsigned long long)s->primary_only,
		 strcmp(s->test, "mcnemar_exact") == 0
		     ? "exact McNemar"
		     : "McNemar chi-square (continuity-corrected)",
		 render_p(b3, sizeof(b3), true, s->p_value));
	return buf;
}

/* The paired latency difference in one sentence into buf. */
static const char *diff_line(char *buf, size_t len, const struct shadow_summary *s)
{
	char b1[32], b2[32], b3[32];
	if (s->has_diff)
		snprintf(
		    buf, len,
		    "shadow - primary latency: mean %s ms, 95%% CI [%s, %s] (paired t, df %.0f)",
		    sgn(b1, sizeof(b1), true, s->diff_mean, 4),
		    sgn(b2, sizeof(b2), true, s->diff_ci_low, 4),
		    sgn(b3, sizeof(b3), true, s->diff_ci_high, 4), s->diff_df);
	else
		snprintf(buf, len, "shadow - primary latency: mean %s ms (fewer than 2 pairs)",
			 sgn(b1, sizeof(b1), s->pairs > 0, s->diff_mean, 4));
	return buf;
}

static void text_shadow(FILE *f, const struct shadow_summary *s)
{
	char line[1280], b1[64], b2[64], b6[1024];
	snprintf(line, sizeof(line),
		 "shadow traffic: %llu mirrored, %llu compared, %llu failed%s%s%s",
		 (unsigned long long)s->records, (unsigned long long)s->compared,
		 (unsigned long long)s->failed, s->nerrors ? " (" : "",
		 s->nerrors ? reasons(b6, sizeof(b6), s) : "", s->nerrors ? ")" : "");
	fputc('\n', f);
	wrap(f, "", line, 2);
	if (s->not_comparable)
		fprintf(f,
			"  %llu answers could not be compared (primary incomplete or too large)\n",
			(unsigned long long)s->not_comparable);
	snprintf(line, sizeof(line), "agreement (%s): %s", basis_words(s),
		 render_rate(b6, sizeof(b6), &s->agreement, "- (0 compared)"));
	wrap(f, "  ", line, 4);
	snprintf(line, sizeof(line), "same status %s; same body %s",
		 render_num(b1, sizeof(b1), s->same_status.has, s->same_status.rate, 4),
		 render_num(b2, sizeof(b2), s->same_body.has, s->same_body.rate, 4));
	if (s->field_n)
		snprintf(line + strlen(line), sizeof(line) - strlen(line),
			 "; json field missing in %llu of %llu",
			 (unsigned long long)s->field_missing, (unsigned long long)s->field_n);
	wrap(f, "  ", line, 4);
	fprintf(f, "  %-20s %10s %12s %12s %11s %11s %11s\n", "latency_ms", "n", "mean", "sd",
		"p50", "p95", "p99");
	const struct shadow_stats_side *sides[2] = {&s->shadow, &s->primary};
	const char *names[2] = {"shadow", "primary"};
	for (int i = 0; i < 2; i++) {
		char c[5][32];
		render_side_cells(c, sides[i]);
		fprintf(f, "  %-20s %10llu %12s %12s %11s %11s %11s\n", names[i],
			(unsigned long long)sides[i]->n, c[0], c[1], c[2], c[3], c[4]);
	}
	wrap(f, "  ", diff_line(line, sizeof(line), s), 4);
	wrap(f, "  ", errors_line(line, sizeof(line), s), 4);
	if (s->nnotes)
		wrap(f, "  note:", render_notes(b6, sizeof(b6), s->notes, s->nnotes), 8);
}

static void text_report(FILE *f, const struct analysis *a, const struct render_meta *m)
{
	char b1[64], b2[64], nb[32];
	fprintf(f, "abgate report: %s\n", a->experiment);
	fprintf(f, "generated %s from %zu log%s", m->generated ? m->generated : "-", m->nlogs,
		m->nlogs == 1 ? "" : "s");
	for (size_t i = 0; i < m->nlogs && i < 3; i++)
		fprintf(f, "%s%s", i ? ", " : ": ", m->logs[i]);
	fprintf(f, "%s\n", m->nlogs > 3 ? ", ..." : "");
	fprintf(f, "records: %llu requests, %llu outcomes, %llu config",
		(unsigned long long)m->request, (unsigned long long)m->outcome,
		(unsigned long long)m->config);
	if (m->forced)
		fprintf(f, ", %llu forced (left out)", (unsigned long long)m->forced);
	if (m->unrandomised)
		fprintf(f, ", %llu without a unit (left out)", (unsigned long long)m->unrandomised);
	fprintf(f, "\n");
	if (m->skipped)
		fprintf(f, "skipped %llu malformed or torn line%s (not counted)\n",
			(unsigned long long)m->skipped, m->skipped == 1 ? "" : "s");
	fprintf(f, "decision: alpha %g, min_samples %llu, srm_alpha %g, sequential %s",
		a->decision.alpha, (unsigned long long)a->decision.min_samples,
		a->decision.srm_alpha, a->decision.sequential ? "on" : "off");
	if (a->decision.sequential)
		fprintf(f, " (N* %g)", a->nstar);
	fprintf(f, "\n");
	char ul[512];
	snprintf(ul, sizeof(ul),
		 "unit analysed: %s, %.2f requests per unit; variances by the delta method over "
		 "units%s; the split check counts distinct units%s",
		 a->unit, a->per_unit, a->bucketed ? " (pseudo-unit buckets past the cap)" : "",
		 a->srm.level ? " (in a hash sample)" : "");
	wrap(f, "", ul, 2);
	fputc('\n', f);

	char head[160];
	char upper[32];
	size_t k;
	for (k = 0; a->action && a->action[k] && k + 1 < sizeof(upper); k++)
		upper[k] = (char)(a->action[k] >= 'a' && a->action[k] <= 'z' ? a->action[k] - 32
									     : a->action[k]);
	upper[k] = '\0';
	snprintf(head, sizeof(head), "RECOMMENDATION: %s%s%s%s", upper,
		 a->action_variant ? " (" : "", a->action_variant ? a->action_variant : "",
		 a->action_variant ? ")" : "");
	fprintf(f, "%s\n", head);
	for (size_t i = 0; i < a->nreasons; i++)
		wrap(f, "  - ", a->reasons[i], 4);

	fprintf(f, "\n  %-20s %9s %12s %12s\n", "variant", "weight", "requests", "units");
	for (size_t i = 0; i < a->nvariants; i++) {
		const struct analysis_variant *v = &a->variants[i];
		char w[32];
		if (v->has_weight)
			snprintf(w, sizeof(w), "%.2f%%", v->weight);
		else
			snprintf(w, sizeof(w), "-");
		fprintf(f, "  %-20s %9s %12llu %11.0f%s\n", cut(nb, sizeof(nb), v->name, 20), w,
			(unsigned long long)v->requests, v->units,
			i == 0 ? (v->units_estimated ? "~ (control)" : "  (control)")
			       : (v->units_estimated ? "~" : ""));
	}
	const struct analysis_srm *s = &a->srm;
	if (s->computed)
		fprintf(f, "  sample ratio: chi2 %s, df %g, p %s -> %s\n",
			render_num(b1, sizeof(b1), isfinite(s->chi2), s->chi2, 5), s->df,
			render_p(b2, sizeof(b2), true, s->p), s->flagged ? "MISMATCH" : "ok");
	else
		fprintf(f, "  sample ratio: not checked\n");
	if (s->note)
		wrap(f, "    note:", s->note, 10);
	for (size_t j = 0; j < a->nmetrics; j++)
		text_metric(f, a, &a->metrics[j]);
	if (m->shadow_stats)
		text_shadow(f, m->shadow_stats);
}

/* Markdown table cells must not hold '|' or newlines. */
static void md_cell(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '|')
			fputs("\\|", f);
		else if (*s == '\n')
			fputc(' ', f);
		else
			fputc(*s, f);
	}
}

static void md_shadow(FILE *f, const struct shadow_summary *s)
{
	char line[512], b1[64], b2[64], b6[1024];
	fprintf(f, "\n### Shadow traffic\n\n%llu mirrored, %llu compared, %llu failed",
		(unsigned long long)s->records, (unsigned long long)s->compared,
		(unsigned long long)s->failed);
	if (s->nerrors) {
		fputs(" (", f);
		md_cell(f, reasons(b6, sizeof(b6), s));
		fputc(')', f);
	}
	if (s->not_comparable)
		fprintf(f, ", %llu not comparable", (unsigned long long)s->not_comparable);
	fputs(".\n\n", f);
	fprintf(f, "- agreement (%s): %s\n", basis_words(s),
		render_rate(b6, sizeof(b6), &s->agreement, "- (0 compared)"));
	fprintf(f, "- same status %s; same body %s\n",
		render_num(b1, sizeof(b1), s->same_status.has, s->same_status.rate, 4),
		render_num(b2, sizeof(b2), s->same_body.has, s->same_body.rate, 4));
	fprintf(f, "- %s\n", diff_line(line, sizeof(line), s));
	fprintf(f, "- %s\n", errors_line(line, sizeof(line), s));
	fputs("\n| latency_ms | n | mean | sd | p50 | p95 | p99 |\n"
	      "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
	      f);
	const struct shadow_stats_side *sides[2] = {&s->shadow, &s->primary};
	const char *names[2] = {"shadow", "primary"};
	for (int i = 0; i < 2; i++) {
		char c[5][32];
		render_side_cells(c, sides[i]);
		fprintf(f, "| %s | %llu | %s | %s | %s | %s | %s |\n", names[i],
			(unsigned long long)sides[i]->n, c[0], c[1], c[2], c[3], c[4]);
	}
	if (s->nnotes) {
		fputs("\n> ", f);
		md_cell(f, render_notes(b6, sizeof(b6), s->notes, s->nnotes));
		fputc('\n', f);
	}
}

static void md_report(FILE *f, const struct analysis *a, const struct render_meta *m)
{
	char b1[64], b2[64], b3[64], b4[64], b5[64];
	fprintf(f, "## Experiment `%s`: **%s**%s%s\n\n", a->experiment, a->action ? a->action : "-",
		a->action_variant ? " " : "", a->action_variant ? a->action_variant : "");
	for (size_t i = 0; i < a->nreasons; i++) {
		fputs("- ", f);
		md_cell(f, a->reasons[i]);
		fputc('\n', f);
	}
	fprintf(f, "\n%llu requests, %llu outcomes", (unsigned long long)m->request,
		(unsigned long long)m->outcome);
	if (m->skipped)
		fprintf(f, ", **%llu malformed or torn lines skipped**",
			(unsigned long long)m->skipped);
	fprintf(f, "; alpha %g, min_samples %llu, sequential %s; generated %s.\n\n",
		a->decision.alpha, (unsigned long long)a->decision.min_samples,
		a->decision.sequential ? "on" : "off", m->generated ? m->generated : "-");

	fputs("| variant | weight | requests | units |\n| --- | ---: | ---: | ---: |\n", f);
	for (size_t i = 0; i < a->nvariants; i++) {
		const struct analysis_variant *v = &a->variants[i];
		fputs("| ", f);
		md_cell(f, v->name);
		fprintf(f, "%s | %s | %llu | %.0f%s |\n", i == 0 ? " (control)" : "",
			v->has_weight ? render_num(b1, sizeof(b1), true, v->weight, 6) : "-",
			(unsigned long long)v->requests, v->units,
			v->units_estimated ? " (est.)" : "");
	}
	fputs("\nUnit analysed: ", f);
	md_cell(f, a->unit);
	fprintf(f, ", %.2f requests per unit; variances by the delta method over units%s; the "
		   "split check counts distinct units%s.\n",
		a->per_unit, a->bucketed ? " (pseudo-unit buckets past the cap)" : "",
		a->srm.level ? " (in a hash sample)" : "");
	if (a->srm.computed)
		fprintf(f, "\nSample ratio: chi2 = %s, df = %g, p = %s (%s).\n",
			render_num(b1, sizeof(b1), isfinite(a->srm.chi2), a->srm.chi2, 5),
			a->srm.df, render_p(b2, sizeof(b2), true, a->srm.p),
			a->srm.flagged ? "**mismatch**" : "ok");
	else
		fprintf(f, "\nSample ratio: not checked (%s).\n", a->srm.note ? a->srm.note : "-");

	for (size_t j = 0; j < a->nmetrics; j++) {
		const struct analysis_metric *mt = &a->metrics[j];
		bool binary = mt->spec.kind == CONF_METRIC_BINARY;
		fprintf(f, "\n### `%s` (%s)\n\n", mt->spec.name,
			kind_line(&mt->spec, b1, sizeof(b1)));
		if (binary)
			fputs("| variant | n | successes | rate |\n| --- | ---: | ---: | ---: |\n",
			      f);
		else
			fputs("| variant | n | mean | sd | p50 | p95 | p99 |\n"
			      "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
			      f);
		for (size_t i = 0; i < a->nvariants; i++) {
			const struct analysis_summary *s = &mt->by[i];
			fputs("| ", f);
			md_cell(f, a->variants[i].name);
			if (binary)
				fprintf(f, " | %llu | %llu | %s |\n", (unsigned long long)s->n,
					(unsigned long long)s->successes,
					render_num(b1, sizeof(b1), s->n > 0, s->rate, 5));
			else
				fprintf(f, " | %llu | %s | %s | %s | %s | %s |\n",
					(unsigned long long)s->n,
					render_num(b1, sizeof(b1), s->n > 0, s->mean, 6),
					render_num(b2, sizeof(b2), s->n > 1, s->sd, 6),
					render_num(b3, sizeof(b3), s->has_quantiles, s->p50, 5),
					render_num(b4, sizeof(b4), s->has_quantiles, s->p95, 5),
					render_num(b5, sizeof(b5), s->has_quantiles, s->p99, 5));
		}
		fputs("\n| vs control | diff | 95% CI | lift | p | p one-sided | p adjusted | "
		      "verdict |\n"
		      "| --- | ---: | --- | ---: | ---: | ---: | ---: | --- |\n",
		      f);
		for (size_t i = 0; i + 1 < a->nvariants; i++) {
			const struct analysis_cmp *c = &mt->cmp[i];
			char ci[160];
			if (c->has_diff)
				snprintf(ci, sizeof(ci), "[%s, %s]",
					 sgn(b1, sizeof(b1), true, c->ci_low, 4),
					 sgn(b2, sizeof(b2), true, c->ci_high, 4));
			else
				snprintf(ci, sizeof(ci), "-");
			fputs("| ", f);
			md_cell(f, a->variants[c->variant].name);
			fprintf(f, " | %s | %s | %s | %s | ",
				sgn(b3, sizeof(b3), c->has_diff, c->diff, 4), ci,
				pct(b4, sizeof(b4), c->has_lift, c->lift),
				render_p(b5, sizeof(b5), c->ok, c->p_value));
			fprintf(f, "%s (%s) | %s | %s |\n",
				render_p(b1, sizeof(b1), c->ok, c->p_one_sided), c->one_sided,
				render_p(b2, sizeof(b2), c->has_adjusted, c->p_adjusted),
				verdict(mt, c));
		}
		for (size_t i = 0; i + 1 < a->nvariants; i++) {
			const struct analysis_cmp *c = &mt->cmp[i];
			if (c->nnotes == 0)
				continue;
			char notes[1024];
			fprintf(f, "\n> %s: ", a->variants[c->variant].name);
			md_cell(f, render_notes(notes, sizeof(notes), c->notes, c->nnotes));
			fputc('\n', f);
		}
	}
}

int rtext_write(FILE *f, const struct analysis *a, const struct render_meta *m, int markdown)
{
	if (markdown) {
		md_report(f, a, m);
		if (m->shadow_stats)
			md_shadow(f, m->shadow_stats);
	} else {
		text_report(f, a, m);
	}
	return ferror(f) ? -1 : 0;
}
