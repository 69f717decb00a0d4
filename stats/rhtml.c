/*
 * rhtml.c - the HTML report (see include/rhtml.h): tables as in the text report plus three
 * kinds of inline SVG chart, drawn from the analysis alone:
 *   - per metric, each variant's relative lift (or difference) with its confidence interval;
 *   - the traffic split over time (each variant's share of requests per interval);
 *   - the cumulative lift of the primary metric over time.
 * Everything is inline (CSS, SVG); the file opens with no network and no script.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "accum.h"
#include "analysis.h"
#include "render.h"
#include "rhtml.h"
#include "shadow_stats.h"

#define CHART_W 960
#define CHART_H 240
#define ML 70  /* left margin: y labels */
#define MR 150 /* right margin: legend */
#define MT 14
#define MB 34

static const char *const palette[] = {"#6b6b6b", "#1f77b4", "#d62728", "#2ca02c",
				      "#9467bd", "#ff7f0e", "#17becf", "#8c564b"};

static const char *color(size_t i)
{
	return palette[i % (sizeof(palette) / sizeof(palette[0]))];
}

static void esc(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&#39;", f);
			break;
		default:
			fputc(*s, f);
		}
	}
}

/* A "nice" step for about n ticks over span. */
static double nice_step(double span, int n)
{
	if (!(span > 0))
		return 1;
	double raw = span / n, mag = pow(10, floor(log10(raw))), r = raw / mag;
	return (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
}

static void svg_open(FILE *f, const char *label)
{
	fprintf(f,
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		"viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"",
		CHART_W, CHART_H, CHART_W, CHART_H);
	esc(f, label);
	fputs("\">\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n", f);
}

/* Horizontal gridlines and labels for [lo, hi] mapped onto the plot's height; pct: as %. */
static void y_axis(FILE *f, double lo, double hi, bool pct)
{
	double step = nice_step(hi - lo, 5);
	int ph = CHART_H - MT - MB;
	for (double v = ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
		double y = MT + ph * (1 - (v - lo) / (hi - lo));
		double shown = fabs(v) < step * 1e-9 ? 0 : v;
		fprintf(f,
			"<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e3e3e3\"/>\n",
			ML, y, CHART_W - MR, y);
		fprintf(f,
			"<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\" "
			"fill=\"#444\">%.4g%s</text>\n",
			ML - 6, y + 4, pct ? 100 * shown : shown, pct ? "%" : "");
	}
}

static void x_time_axis(FILE *f, double t0, double t1)
{
	int pw = CHART_W - ML - MR;
	for (int i = 0; i <= 4; i++) {
		double t = t0 + (t1 - t0) * i / 4.0;
		time_t tt = (time_t)t;
		struct tm tm;
		char buf[32];
		gmtime_r(&tt, &tm);
		strftime(buf, sizeof(buf), t1 - t0 > 2 * 86400 ? "%m-%d %H:%M" : "%H:%M:%S", &tm);
		fprintf(f,
			"<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\" "
			"fill=\"#444\">%s</text>\n",
			ML + pw * i / 4.0, CHART_H - MB + 16, buf);
	}
	fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"#444\">time (UTC)</text>\n",
		CHART_W - MR + 40, CHART_H - MB + 16);
}

static void legend(FILE *f, const struct analysis *a, size_t from)
{
	for (size_t i = from; i < a->nvariants; i++) {
		int y = MT + 12 + (int)(i - from) * 18;
		fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"4\" fill=\"%s\"/>\n",
			CHART_W - MR + 10, y - 4, color(i));
		fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" fill=\"#222\">",
			CHART_W - MR + 28, y + 1);
		esc(f, a->variants[i].name);
		fputs("</text>\n", f);
	}
}

/* ---- confidence intervals ---- */

static void ci_chart(FILE *f, const struct analysis *a, const struct analysis_metric *m)
{
	size_t k = a->nvariants - 1;
	if (k == 0)
		return;
	/* relative lift when every comparison has one, else the difference */
	bool rel = true, any = false;
	for (size_t i = 0; i < k; i++) {
		rel &= m->cmp[i].has_lift;
		any |= m->cmp[i].has_diff;
	}
	if (!any)
		return;
	double lo = 0, hi = 0;
	for (size_t i = 0; i < k; i++) {
		const struct analysis_cmp *c = &m->cmp[i];
		double l = rel ? c->lift_ci_low : c->ci_low, h = rel ? c->lift_ci_high : c->ci_high;
		if (!(rel ? c->has_lift : c->has_diff) || !isfinite(l) || !isfinite(h))
			continue;
		lo = fmin(lo, l);
		hi = fmax(hi, h);
	}
	if (hi - lo <= 0) {
		lo -= 1;
		hi += 1;
	}
	double pad = (hi - lo) * 0.08;
	lo -= pad;
	hi += pad;
	int rowh = 34, h = MT + MB + rowh * (int)k;
	int pw = CHART_W - ML - MR;
	fprintf(f,
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		"viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"confidence intervals\">\n"
		"<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n",
		CHART_W, h, CHART_W, h);
	double step = nice_step(hi - lo, 6);
	for (double v = ceil(lo / step) * step; v <= hi; v += step) {
		double x = ML + pw * (v - lo) / (hi - lo);
		double shown = fabs(v) < step * 1e-9 ? 0 : v;
		fprintf(f,
			"<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e3e3e3\"/>\n",
			x, MT, x, h - MB);
		fprintf(f,
			"<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\" "
			"fill=\"#444\">%.4g%s</text>\n",
			x, h - MB + 16, rel ? 100 * shown : shown, rel ? "%" : "");
	}
	double x0 = ML + pw * (0 - lo) / (hi - lo);
	fprintf(f,
		"<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#222\" "
		"stroke-dasharray=\"4 3\"/>\n",
		x0, MT, x0, h - MB);
	fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"#444\">%s vs control</text>\n",
		CHART_W - MR + 8, h - MB + 16, rel ? "relative lift" : "difference");
	for (size_t i = 0; i < k; i++) {
		const struct analysis_cmp *c = &m->cmp[i];
		double y = MT + rowh * (i + 0.5);
		fprintf(f,
			"<text x=\"%d\" y=\"%.1f\" font-size=\"12\" text-anchor=\"end\" "
			"fill=\"#222\">",
			ML - 6, y + 4);
		esc(f, a->variants[c->variant].name);
		fputs("</text>\n", f);
		if (!(rel ? c->has_lift : c->has_diff))
			continue;
		double est = rel ? c->lift : c->diff;
		double l = rel ? c->lift_ci_low : c->ci_low,
		       hgh = rel ? c->lift_ci_high : c->ci_high;
		const char *col = c->harm ? "#d62728" : c->better ? "#2ca02c" : color(c->variant);
		fprintf(f,
			"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
			"stroke-width=\"3\"/>\n",
			ML + pw * (l - lo) / (hi - lo), y, ML + pw * (hgh - lo) / (hi - lo), y,
			col);
		fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"%s\"/>\n",
			ML + pw * (est - lo) / (hi - lo), y, col);
	}
	fputs("</svg>\n", f);
}

/* ---- time series ---- */

/* A common grid over the series: origin, width and slot count (0 when every series is empty). */
struct grid {
	int64_t origin, width;
	size_t n;
};

static void grid_of(struct grid *g, const struct accum_series *const *s, size_t ns)
{
	struct accum_series u;
	accum_series_init(&u);
	for (size_t i = 0; i < ns; i++)
		accum_series_merge(&u, s[i]);
	g->n = 0;
	if (u.width == 0)
		return;
	size_t first = ACCUM_SERIES_SLOTS, last = 0;
	for (size_t i = 0; i < ACCUM_SERIES_SLOTS; i++)
		if (u.n[i]) {
			if (first == ACCUM_SERIES_SLOTS)
				first = i;
			last = i;
		}
	if (first == ACCUM_SERIES_SLOTS)
		return;
	g->width = u.width;
	g->origin = u.origin + (int64_t)first * u.width;
	g->n = last - first + 1;
}

/* Sums s's counts and sums into the grid's slots. */
static void on_grid(const struct grid *g, const struct accum_series *s, double *n, double *sum)
{
	for (size_t j = 0; j < g->n; j++)
		n[j] = sum[j] = 0;
	if (s->width == 0)
		return;
	for (size_t i = 0; i < ACCUM_SERIES_SLOTS; i++) {
		if (s->n[i] == 0)
			continue;
		int64_t t = s->origin + (int64_t)i * s->width;
		if (t < g->origin)
			continue;
		size_t j = (size_t)((t - g->origin) / g->width);
		if (j >= g->n)
			continue;
		n[j] += (double)s->n[i];
		sum[j] += s->sum[i];
	}
}

static void polyline(FILE *f, const double *x, const double *y, const bool *ok, size_t n,
		     const char *col, bool dashed)
{
	bool open = false;
	for (size_t j = 0; j < n; j++) {
		if (!ok[j]) {
			if (open)
				fputs("\"/>\n", f);
			open = false;
			continue;
		}
		if (!open)
			fprintf(
			    f,
			    "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"",
			    col, dashed ? " stroke-dasharray=\"5 4\"" : "");
		fprintf(f, "%.1f,%.1f ", x[j], y[j]);
		open = true;
	}
	if (open)
		fputs("\"/>\n", f);
}

static void traffic_chart(FILE *f, const struct analysis *a)
{
	const struct accum_series *ser[64] = {0};
	size_t k = a->nvariants < 64 ? a->nvariants : 64;
	for (size_t i = 0; i < k; i++)
		ser[i] = &a->variants[i].traffic;
	struct grid g;
	grid_of(&g, ser, k);
	if (g.n == 0) {
		fputs("<p class=\"note\">No timed requests: no traffic chart.</p>\n", f);
		return;
	}
	double tot[ACCUM_SERIES_SLOTS] = {0}, n[ACCUM_SERIES_SLOTS], sum[ACCUM_SERIES_SLOTS];
	double x[ACCUM_SERIES_SLOTS], y[ACCUM_SERIES_SLOTS];
	bool ok[ACCUM_SERIES_SLOTS];
	for (size_t i = 0; i < k; i++) {
		on_grid(&g, ser[i], n, sum);
		for (size_t j = 0; j < g.n; j++)
			tot[j] += n[j];
	}
	svg_open(f, "traffic split over time");
	y_axis(f, 0, 1, true);
	double t0 = (double)g.origin, t1 = (double)(g.origin + (int64_t)g.n * g.width);
	x_time_axis(f, t0, t1);
	int pw = CHART_W - ML - MR, ph = CHART_H - MT - MB;
	for (size_t i = 0; i < k; i++) {
		on_grid(&g, ser[i], n, sum);
		for (size_t j = 0; j < g.n; j++) {
			x[j] = ML + pw * (g.n == 1 ? 0.5 : (double)j / (double)(g.n - 1));
			ok[j] = tot[j] > 0;
			y[j] = MT + ph * (1 - (ok[j] ? n[j] / tot[j] : 0));
		}
		polyline(f, x, y, ok, g.n, color(i), false);
		if (a->variants[i].has_weight) {
			double wy = MT + ph * (1 - a->variants[i].weight / 100.0);
			fprintf(f,
				"<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\" "
				"stroke-dasharray=\"2 4\"/>\n",
				ML, wy, CHART_W - MR, wy, color(i));
		}
	}
	legend(f, a, 0);
	fputs("</svg>\n<p class=\"note\">Share of requests per interval; dotted lines: the latest "
	      "configured weights.</p>\n",
	      f);
}

static void lift_chart(FILE *f, const struct analysis *a, const struct analysis_metric *m)
{
	const struct accum_series *ser[64] = {0};
	size_t k = a->nvariants < 64 ? a->nvariants : 64;
	if (k < 2)
		return;
	for (size_t i = 0; i < k; i++)
		ser[i] = &m->by[i].series;
	struct grid g;
	grid_of(&g, ser, k);
	if (g.n == 0) {
		fputs("<p class=\"note\">No values yet: no lift chart.</p>\n", f);
		return;
	}
	static double lift[64][ACCUM_SERIES_SLOTS];
	static bool ok[64][ACCUM_SERIES_SLOTS];
	double cn[ACCUM_SERIES_SLOTS], cs[ACCUM_SERIES_SLOTS], n[ACCUM_SERIES_SLOTS],
	    sum[ACCUM_SERIES_SLOTS], base[ACCUM_SERIES_SLOTS];
	on_grid(&g, ser[0], n, sum);
	double an = 0, as = 0;
	for (size_t j = 0; j < g.n; j++) {
		an += n[j];
		as += sum[j];
		base[j] = an > 0 ? as / an : NAN;
	}
	double lo = 0, hi = 0;
	for (size_t i = 1; i < k; i++) {
		on_grid(&g, ser[i], n, sum);
		double tn = 0, ts = 0;
		for (size_t j = 0; j < g.n; j++) {
			tn += n[j];
			ts += sum[j];
			cn[j] = tn;
			cs[j] = ts;
			ok[i][j] = tn > 0 && isfinite(base[j]) && base[j] != 0;
			lift[i][j] = ok[i][j] ? (cs[j] / cn[j] - base[j]) / fabs(base[j]) : 0;
			if (ok[i][j]) {
				lo = fmin(lo, lift[i][j]);
				hi = fmax(hi, lift[i][j]);
			}
		}
	}
	if (hi - lo <= 0) {
		lo -= 0.05;
		hi += 0.05;
	}
	double pad = (hi - lo) * 0.08;
	lo -= pad;
	hi += pad;
	char label[160];
	snprintf(label, sizeof(label), "cumulative relative lift of %s over time", m->spec.name);
	svg_open(f, label);
	y_axis(f, lo, hi, true);
	double t0 = (double)g.origin, t1 = (double)(g.origin + (int64_t)g.n * g.width);
	x_time_axis(f, t0, t1);
	int pw = CHART_W - ML - MR, ph = CHART_H - MT - MB;
	double zy = MT + ph * (1 - (0 - lo) / (hi - lo));
	fprintf(f,
		"<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#222\" "
		"stroke-dasharray=\"4 3\"/>\n",
		ML, zy, CHART_W - MR, zy);
	double x[ACCUM_SERIES_SLOTS], y[ACCUM_SERIES_SLOTS];
	for (size_t i = 1; i < k; i++) {
		for (size_t j = 0; j < g.n; j++) {
			x[j] = ML + pw * (g.n == 1 ? 0.5 : (double)j / (double)(g.n - 1));
			y[j] = MT + ph * (1 - (lift[i][j] - lo) / (hi - lo));
		}
		polyline(f, x, y, ok[i], g.n, color(i), false);
	}
	legend(f, a, 1);
	fputs("</svg>\n", f);
}

/* ---- document ---- */

static void table_row_cells(FILE *f, const char *const *cells, size_t n, const char *tag)
{
	fputs("<tr>", f);
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "<%s>", tag);
		esc(f, cells[i]);
		fprintf(f, "</%s>", tag);
	}
	fputs("</tr>\n", f);
}

static void metric_section(FILE *f, const struct analysis *a, const struct analysis_metric *m)
{
	char b[8][64];
	bool binary = m->spec.kind == CONF_METRIC_BINARY;
	fputs("<h3>", f);
	esc(f, m->spec.name);
	fprintf(f, " <span class=\"tag\">%s, goal %s%s%s</span></h3>\n",
		binary ? "binary" : "continuous",
		m->spec.goal == CONF_GOAL_DECREASE ? "decrease" : "increase",
		m->spec.guardrail ? ", guardrail" : "", m->spec.primary ? ", primary" : "");
	fputs("<table>\n", f);
	if (binary) {
		const char *h[] = {"variant", "n", "successes", "rate"};
		table_row_cells(f, h, 4, "th");
	} else {
		const char *h[] = {"variant", "n", "mean", "sd", "p50", "p95", "p99"};
		table_row_cells(f, h, 7, "th");
	}
	for (size_t i = 0; i < a->nvariants; i++) {
		const struct analysis_summary *s = &m->by[i];
		snprintf(b[0], sizeof(b[0]), "%llu", (unsigned long long)s->n);
		if (binary) {
			snprintf(b[1], sizeof(b[1]), "%llu", (unsigned long long)s->successes);
			const char *c[] = {a->variants[i].name, b[0], b[1],
					   render_num(b[2], sizeof(b[2]), s->n > 0, s->rate, 5)};
			table_row_cells(f, c, 4, "td");
		} else {
			const char *c[] = {
			    a->variants[i].name,
			    b[0],
			    render_num(b[1], sizeof(b[1]), s->n > 0, s->mean, 6),
			    render_num(b[2], sizeof(b[2]), s->n > 1, s->sd, 6),
			    render_num(b[3], sizeof(b[3]), s->has_quantiles, s->p50, 5),
			    render_num(b[4], sizeof(b[4]), s->has_quantiles, s->p95, 5),
			    render_num(b[5], sizeof(b[5]), s->has_quantiles, s->p99, 5)};
			table_row_cells(f, c, 7, "td");
		}
	}
	fputs("</table>\n<table>\n", f);
	const char *h[] = {"vs control", "diff",	"95% CI",     "lift",	"lift 95% CI",
			   "p",		 "p one-sided", "p adjusted", "verdict"};
	table_row_cells(f, h, 9, "th");
	for (size_t i = 0; i + 1 < a->nvariants; i++) {
		const struct analysis_cmp *c = &m->cmp[i];
		char ci[160], lci[160], p1[96];
		char x1[64], x2[64];
		if (c->has_diff)
			snprintf(ci, sizeof(ci), "[%s, %s]",
				 render_num(x1, sizeof(x1), true, c->ci_low, 4),
				 render_num(x2, sizeof(x2), true, c->ci_high, 4));
		else
			snprintf(ci, sizeof(ci), "-");
		if (c->has_lift)
			snprintf(lci, sizeof(lci), "[%.2f%%, %.2f%%]", 100 * c->lift_ci_low,
				 100 * c->lift_ci_high);
		else
			snprintf(lci, sizeof(lci), "-");
		snprintf(p1, sizeof(p1), "%s (%s)", render_p(x1, sizeof(x1), c->ok, c->p_one_sided),
			 c->one_sided);
		if (c->has_lift)
			snprintf(b[2], sizeof(b[2]), "%+.2f%%", 100 * c->lift);
		else
			snprintf(b[2], sizeof(b[2]), "-");
		const char *verdict = !c->ok		  ? "n/a"
				      : m->spec.guardrail ? (c->harm		   ? "HARM"
							     : c->noninferior == 1 ? "ok"
										   : "no harm yet")
				      : c->better	  ? "BETTER"
				      : c->significant	  ? "WORSE"
							  : "not significant";
		const char *cells[] = {a->variants[c->variant].name,
				       render_num(b[1], sizeof(b[1]), c->has_diff, c->diff, 4),
				       ci,
				       b[2],
				       lci,
				       render_p(b[3], sizeof(b[3]), c->ok, c->p_value),
				       p1,
				       render_p(b[4], sizeof(b[4]), c->has_adjusted, c->p_adjusted),
				       verdict};
		table_row_cells(f, cells, 9, "td");
	}
	fputs("</table>\n", f);
	for (size_t i = 0; i + 1 < a->nvariants; i++) {
		const struct analysis_cmp *c = &m->cmp[i];
		char extra[512];
		int n =
		    snprintf(extra, sizeof(extra), "%s: %s = %s", a->variants[c->variant].name,
			     binary ? "chi2" : "t",
			     render_num(b[0], sizeof(b[0]), c->ok && c->has_stat, c->statistic, 5));
		if (c->has_seq)
			n += snprintf(extra + n, sizeof(extra) - (size_t)n,
				      "; sequential p %s, CS [%s, %s]",
				      render_p(b[1], sizeof(b[1]), true, c->p_seq),
				      render_num(b[2], sizeof(b[2]), true, c->seq_ci_low, 4),
				      render_num(b[3], sizeof(b[3]), true, c->seq_ci_high, 4));
		if (c->has_yates)
			n += snprintf(extra + n, sizeof(extra) - (size_t)n, "; Yates p %s",
				      render_p(b[1], sizeof(b[1]), true, c->p_yates));
		if (c->has_mw)
			n += snprintf(extra + n, sizeof(extra) - (size_t)n,
				      "; Mann-Whitney p %s (per request, descriptive)",
				      render_p(b[1], sizeof(b[1]), true, c->mw_p));
		fputs("<p class=\"note\">", f);
		esc(f, extra);
		if (c->nnotes) {
			char notes[1024];
			fputs(". ", f);
			esc(f, render_notes(notes, sizeof(notes), c->notes, c->nnotes));
		}
		fputs("</p>\n", f);
	}
	ci_chart(f, a, m);
}

/* The shadow traffic: counts, agreement, latency table, 5xx asymmetry. */
static void shadow_section(FILE *f, const struct shadow_summary *s)
{
	char b[6][96], line[512];
	fprintf(f, "<h2>Shadow traffic</h2>\n<p>%llu mirrored requests: %llu compared, %llu failed",
		(unsigned long long)s->records, (unsigned long long)s->compared,
		(unsigned long long)s->failed);
	for (size_t i = 0; i < s->nerrors; i++) {
		fputs(i ? ", " : " (", f);
		esc(f, s->errors[i].reason);
		fprintf(f, " %llu", (unsigned long long)s->errors[i].n);
	}
	fprintf(f, "%s", s->nerrors ? ")" : "");
	if (s->not_comparable)
		fprintf(f, ", %llu not comparable", (unsigned long long)s->not_comparable);
	fputs(".</p>\n<table>\n", f);
	const char *h[] = {"comparison", "rate (95% Wilson interval)"};
	table_row_cells(f, h, 2, "th");
	const char *basis =
	    s->basis == NULL			  ? "agreement"
	    : strcmp(s->basis, "json_field") == 0 ? "agreement (status and json field)"
	    : strcmp(s->basis, "body") == 0	  ? "agreement (status and body)"
						  : "agreement (status and json field, else body)";
	const char *r1[] = {basis, render_rate(b[0], sizeof(b[0]), &s->agreement, "-")};
	const char *r2[] = {"same status", render_rate(b[1], sizeof(b[1]), &s->same_status, "-")};
	const char *r3[] = {"same body", render_rate(b[2], sizeof(b[2]), &s->same_body, "-")};
	table_row_cells(f, r1, 2, "td");
	table_row_cells(f, r2, 2, "td");
	table_row_cells(f, r3, 2, "td");
	fputs("</table>\n<table>\n", f);
	const char *lh[] = {"latency_ms", "n", "mean", "sd", "p50", "p95", "p99"};
	table_row_cells(f, lh, 7, "th");
	const struct shadow_stats_side *sides[2] = {&s->shadow, &s->primary};
	const char *names[2] = {"shadow", "primary"};
	for (int i = 0; i < 2; i++) {
		char n[32], c[5][32];
		snprintf(n, sizeof(n), "%llu", (unsigned long long)sides[i]->n);
		render_side_cells(c, sides[i]);
		const char *cells[] = {names[i], n, c[0], c[1], c[2], c[3], c[4]};
		table_row_cells(f, cells, 7, "td");
	}
	fputs("</table>\n<p>", f);
	if (s->has_diff)
		snprintf(
		    line, sizeof(line),
		    "Shadow - primary latency: mean %s ms, 95%% CI [%s, %s] (paired t, df %.0f).",
		    render_num(b[0], sizeof(b[0]), true, s->diff_mean, 4),
		    render_num(b[1], sizeof(b[1]), true, s->diff_ci_low, 4),
		    render_num(b[2], sizeof(b[2]), true, s->diff_ci_high, 4), s->diff_df);
	else
		snprintf(line, sizeof(line), "Shadow - primary latency: mean %s ms (no interval).",
			 render_num(b[0], sizeof(b[0]), s->pairs > 0, s->diff_mean, 4));
	esc(f, line);
	fputs("</p>\n<p>", f);
	if (s->has_p)
		snprintf(line, sizeof(line),
			 "5xx on %llu pairs: shadow %s, primary %s; shadow only %llu, primary only "
			 "%llu; McNemar %s p = %s.",
			 (unsigned long long)s->status_pairs,
			 render_num(b[0], sizeof(b[0]), true, s->shadow_5xx.rate, 4),
			 render_num(b[1], sizeof(b[1]), true, s->primary_5xx.rate, 4),
			 (unsigned long long)s->shadow_only, (unsigned long long)s->primary_only,
			 strcmp(s->test, "mcnemar_exact") == 0
			     ? "exact (binomial)"
			     : "chi-square (continuity-corrected)",
			 render_p(b[2], sizeof(b[2]), true, s->p_value));
	else
		snprintf(line, sizeof(line), "5xx: no pair of statuses.");
	esc(f, line);
	fputs("</p>\n", f);
	if (s->nnotes) {
		char notes[1024];
		fputs("<p class=\"note\">", f);
		esc(f, render_notes(notes, sizeof(notes), s->notes, s->nnotes));
		fputs("</p>\n", f);
	}
}

static void report_section(FILE *f, const struct analysis *a, const struct render_meta *m)
{
	char b1[64], b2[64];
	const char *act = a->action ? a->action : "continue";
	fputs("<section>\n<h1>Experiment ", f);
	esc(f, a->experiment);
	fputs("</h1>\n", f);
	fprintf(f, "<div class=\"rec %s\"><b>", act);
	esc(f, act);
	if (a->action_variant) {
		fputs(" ", f);
		esc(f, a->action_variant);
	}
	fputs("</b><ul>\n", f);
	for (size_t i = 0; i < a->nreasons; i++) {
		fputs("<li>", f);
		esc(f, a->reasons[i]);
		fputs("</li>\n", f);
	}
	fputs("</ul></div>\n<p class=\"meta\">", f);
	fprintf(f, "%llu requests, %llu outcomes, %llu config records",
		(unsigned long long)m->request, (unsigned long long)m->outcome,
		(unsigned long long)m->config);
	if (m->skipped)
		fprintf(f, "; <b>%llu malformed or torn lines skipped</b>",
			(unsigned long long)m->skipped);
	fprintf(f, ". alpha %g, min_samples %llu, srm_alpha %g, sequential %s. Generated ",
		a->decision.alpha, (unsigned long long)a->decision.min_samples,
		a->decision.srm_alpha, a->decision.sequential ? "on" : "off");
	esc(f, m->generated ? m->generated : "-");
	fputs(" from ", f);
	for (size_t i = 0; i < m->nlogs; i++) {
		if (i)
			fputs(", ", f);
		esc(f, m->logs[i]);
	}
	fputs(".</p>\n<h2>Variants</h2>\n<table>\n", f);
	const char *h[] = {"variant", "weight", "requests", "units"};
	table_row_cells(f, h, 4, "th");
	for (size_t i = 0; i < a->nvariants; i++) {
		const struct analysis_variant *v = &a->variants[i];
		char w[32], r[32], u[48];
		if (v->has_weight)
			snprintf(w, sizeof(w), "%.2f%%", v->weight);
		else
			snprintf(w, sizeof(w), "-");
		snprintf(r, sizeof(r), "%llu", (unsigned long long)v->requests);
		snprintf(u, sizeof(u), "%.0f%s", v->units, v->units_estimated ? " (est.)" : "");
		fprintf(f, "<tr><td><span class=\"sw\" style=\"background:%s\"></span>", color(i));
		esc(f, v->name);
		fprintf(f, "%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
			i == 0 ? " (control)" : "", w, r, u);
	}
	fputs("</table>\n<p>Unit analysed: ", f);
	esc(f, a->unit);
	fprintf(f, ", %.2f requests per unit; variances by the delta method over units%s; the "
		   "split check counts distinct units%s.</p>\n",
		a->per_unit, a->bucketed ? " (pseudo-unit buckets past the cap)" : "",
		a->srm.level ? " (in a hash sample)" : "");
	if (a->srm.computed)
		fprintf(f, "<p>Sample ratio: chi2 = %s, df = %g, p = %s: %s</p>\n",
			render_num(b1, sizeof(b1), isfinite(a->srm.chi2), a->srm.chi2, 5),
			a->srm.df, render_p(b2, sizeof(b2), true, a->srm.p),
			a->srm.flagged ? "<b class=\"bad\">mismatch</b>" : "ok");
	else
		fputs("<p>Sample ratio: not checked.</p>\n", f);
	if (a->srm.note) {
		fputs("<p class=\"note\">", f);
		esc(f, a->srm.note);
		fputs("</p>\n", f);
	}
	fputs("<h2>Traffic split over time</h2>\n", f);
	traffic_chart(f, a);
	const struct analysis_metric *pm = NULL;
	for (size_t j = 0; j < a->nmetrics && pm == NULL; j++)
		if (a->metrics[j].spec.primary)
			pm = &a->metrics[j];
	if (pm == NULL && a->nmetrics > 0)
		pm = &a->metrics[0];
	if (pm) {
		fputs("<h2>Cumulative lift of ", f);
		esc(f, pm->spec.name);
		fputs(" over time</h2>\n", f);
		lift_chart(f, a, pm);
	}
	fputs("<h2>Metrics</h2>\n", f);
	for (size_t j = 0; j < a->nmetrics; j++)
		metric_section(f, a, &a->metrics[j]);
	if (m->shadow_stats)
		shadow_section(f, m->shadow_stats);
	fputs("</section>\n", f);
}

int rhtml_write(FILE *f, struct analysis *const *as, const struct render_meta *metas, size_t n)
{
	fputs(
	    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>abgate "
	    "report",
	    f);
	for (size_t i = 0; i < n && i < 3; i++) {
		fputs(i ? ", " : ": ", f);
		esc(f, as[i]->experiment);
	}
	fputs(
	    "</title>\n<style>\n"
	    "body{font-family:sans-serif;margin:24px;color:#222;background:#fff;max-width:1000px}\n"
	    "h1{font-size:22px}h2{font-size:18px;margin-top:28px}h3{font-size:15px;margin-top:22px}"
	    "\n"
	    "table{border-collapse:collapse;margin:8px 0;font-size:13px}\n"
	    "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}\n"
	    "th:first-child,td:first-child{text-align:left}th{background:#f2f2f2}\n"
	    ".rec{border-left:6px solid #888;padding:8px 14px;background:#f7f7f7;font-size:14px}\n"
	    ".rec b{font-size:18px;text-transform:uppercase}\n"
	    ".promote{border-color:#2ca02c}.rollback{border-color:#d62728}\n"
	    ".investigate{border-color:#ff7f0e}.continue{border-color:#1f77b4}\n"
	    ".note,.meta{font-size:12px;color:#555}.tag{font-weight:normal;color:#666}\n"
	    ".bad{color:#d62728}.sw{display:inline-block;width:10px;height:10px;margin-right:6px}\n"
	    "svg{display:block;margin:6px 0}\n"
	    "</style>\n</head>\n<body>\n",
	    f);
	for (size_t i = 0; i < n; i++)
		report_section(f, as[i], &metas[i]);
	fputs("</body>\n</html>\n", f);
	return ferror(f) ? -1 : 0;
}
