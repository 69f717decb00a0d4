/*
 * shadow_stats.c - shadow records folded into counts and summarised: agreement with Wilson
 * intervals, paired latencies, 5xx asymmetry with McNemar's exact test (see
 * include/shadow_stats.h).
 *
 * The accumulator holds counts, moments and two histograms, so its size does not grow with
 * the number of records; only the failure reasons are copied (at most SHADOW_STATS_MAX_ERRORS).
 */
#include <gsl/gsl_cdf.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "accum.h"
#include "htest.h"
#include "logrec.h"
#include "shadow_stats.h"

struct shadow_stats {
	uint64_t records, compared, failed, not_comparable;
	char *reason[SHADOW_STATS_MAX_ERRORS]; /* owned */
	uint64_t reason_n[SHADOW_STATS_MAX_ERRORS];
	size_t nreasons;
	uint64_t reason_other;

	uint64_t status_n, status_same, body_n, body_same;
	uint64_t agree_n, agree, by_field, by_body;
	uint64_t field_n, field_missing;

	struct accum_moments lat_shadow, lat_primary, lat_diff;
	struct accum_hist *hist_shadow, *hist_primary; /* owned */

	uint64_t status_pairs, shadow_5xx, primary_5xx, shadow_only, primary_only;
};

struct shadow_stats *shadow_stats_new(void)
{
	struct shadow_stats *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->hist_shadow = malloc(sizeof(*s->hist_shadow));
	s->hist_primary = malloc(sizeof(*s->hist_primary));
	if (s->hist_shadow == NULL || s->hist_primary == NULL) {
		shadow_stats_free(s);
		return NULL;
	}
	accum_hist_init(s->hist_shadow);
	accum_hist_init(s->hist_primary);
	accum_moments_init(&s->lat_shadow);
	accum_moments_init(&s->lat_primary);
	accum_moments_init(&s->lat_diff);
	return s;
}

void shadow_stats_free(struct shadow_stats *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->nreasons; i++)
		free(s->reason[i]);
	free(s->hist_shadow);
	free(s->hist_primary);
	free(s);
}

/* Counts one failure under its reason ("unknown" when the record gives none). */
static int count_failure(struct shadow_stats *s, const struct logrec *rec)
{
	const char *why = rec->has_error && rec->error.len > 0 ? rec->error.s : "unknown";
	size_t len = rec->has_error && rec->error.len > 0 ? rec->error.len : strlen("unknown");
	/* reasons are kept as C strings: one with an escaped NUL is known by what precedes it */
	len = strnlen(why, len);
	for (size_t i = 0; i < s->nreasons; i++)
		if (strlen(s->reason[i]) == len && memcmp(s->reason[i], why, len) == 0) {
			s->reason_n[i]++;
			return 0;
		}
	if (s->nreasons == SHADOW_STATS_MAX_ERRORS) {
		s->reason_other++;
		return 0;
	}
	char *copy = strndup(why, len);
	if (copy == NULL)
		return -1;
	s->reason[s->nreasons] = copy;
	s->reason_n[s->nreasons++] = 1;
	return 0;
}

static bool is5xx(int status)
{
	return status >= 500 && status <= 599;
}

int shadow_stats_add(struct shadow_stats *s, const struct logrec *rec)
{
	if (rec->type != LOGREC_SHADOW)
		return 0;
	s->records++;
	if (!rec->has_status) {
		s->failed++;
		return count_failure(s, rec);
	}
	s->compared++;
	if (rec->same_status < 0)
		s->not_comparable++;
	if (rec->same_status >= 0) {
		s->status_n++;
		s->status_same += rec->same_status == 1;
	}
	if (rec->same_body >= 0) {
		s->body_n++;
		s->body_same += rec->same_body == 1;
	}
	if (rec->field_agree >= 0) {
		s->field_n++;
		s->field_missing += !rec->has_field_diff;
	}
	/* the JSON field, when the record compares one, decides over the raw bytes */
	int content = rec->field_agree >= 0 ? rec->field_agree : rec->same_body;
	if (rec->same_status >= 0 && content >= 0) {
		s->agree_n++;
		s->agree += rec->same_status == 1 && content == 1;
		if (rec->field_agree >= 0)
			s->by_field++;
		else
			s->by_body++;
	}
	if (rec->has_latency && rec->has_primary_latency) {
		accum_moments_add(&s->lat_shadow, rec->latency_ms);
		accum_moments_add(&s->lat_primary, rec->primary_latency_ms);
		accum_moments_add(&s->lat_diff, rec->latency_ms - rec->primary_latency_ms);
		accum_hist_add(s->hist_shadow, rec->latency_ms);
		accum_hist_add(s->hist_primary, rec->primary_latency_ms);
	}
	/* a primary status under 100 means the primary never answered: no pair */
	if (rec->has_primary_status && rec->primary_status >= 100) {
		bool a = is5xx(rec->status), b = is5xx(rec->primary_status);
		s->status_pairs++;
		s->shadow_5xx += a;
		s->primary_5xx += b;
		s->shadow_only += a && !b;
		s->primary_only += b && !a;
	}
	return 0;
}

int shadow_stats_wilson(uint64_t k, uint64_t n, double z, double *lo, double *hi)
{
	if (n == 0 || k > n || !isfinite(z) || z <= 0)
		return -1;
	double nn = (double)n, p = (double)k / nn, z2 = z * z;
	double denom = 1 + z2 / nn;
	double centre = (p + z2 / (2 * nn)) / denom;
	double half = z / denom * sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn));
	*lo = centre - half;
	*hi = centre + half;
	/* at k = 0 or k = n the bound is exactly 0 or 1; rounding must not cross it */
	if (*lo < 0 || k == 0)
		*lo = 0;
	if (*hi > 1 || k == n)
		*hi = 1;
	return 0;
}

double shadow_stats_mcnemar(uint64_t b, uint64_t c, const char **test)
{
	uint64_t n = b + c, m = b < c ? b : c;
	double p = NAN;

	htest_init(); /* GSL must report, not abort, when the binomial CDF gives up */
	if (n <= MCNEMAR_EXACT_MAX) {
		*test = "mcnemar_exact";
		if (n == 0 || b == c)
			return 1.0;
		p = 2 * gsl_cdf_binomial_P((unsigned)m, 0.5, (unsigned)n);
	}
	if (isnan(p)) {
		/* past what the binomial CDF sums reliably (it returns NaN near the middle from
		 * about 10^7 pairs): the continuity-corrected chi-square, which agrees with the
		 * exact test to about 1e-8 relative at 10^6 pairs */
		double d = fabs((double)b - (double)c) - 1;
		*test = "mcnemar_chi2_cc";
		return d <= 0 ? 1.0 : htest_chi2_sf(d * d / (double)n, 1);
	}
	return !(p < 1) ? 1.0 : p > 0 ? p : 0.0;
}

static void rate(struct shadow_stats_rate *r, uint64_t k, uint64_t n, double z)
{
	memset(r, 0, sizeof(*r));
	r->n = n;
	r->k = k;
	if (n == 0)
		return;
	r->has = true;
	r->rate = (double)k / (double)n;
	if (shadow_stats_wilson(k, n, z, &r->ci_low, &r->ci_high) < 0)
		r->has = false;
}

static void side(struct shadow_stats_side *o, const struct accum_moments *m,
		 const struct accum_hist *h)
{
	memset(o, 0, sizeof(*o));
	o->n = m->n;
	if (m->n == 0)
		return;
	o->has = true;
	o->mean = accum_moments_mean(m);
	o->has_sd = m->n > 1;
	o->sd = sqrt(accum_moments_var(m));
	o->p50 = accum_hist_quantile(h, 0.50, m->min, m->max);
	o->p95 = accum_hist_quantile(h, 0.95, m->min, m->max);
	o->p99 = accum_hist_quantile(h, 0.99, m->min, m->max);
}

static void note(struct shadow_summary *out, const char *why)
{
	if (out->nnotes < sizeof(out->notes) / sizeof(out->notes[0]))
		out->notes[out->nnotes++] = why;
}

void shadow_stats_summary(const struct shadow_stats *s, struct shadow_summary *out)
{
	double z = htest_norm_isf(0.025);
	memset(out, 0, sizeof(*out));
	out->records = s->records;
	out->compared = s->compared;
	out->failed = s->failed;
	out->not_comparable = s->not_comparable;
	for (size_t i = 0; i < s->nreasons; i++)
		out->errors[out->nerrors++] =
		    (struct shadow_stats_error){s->reason[i], s->reason_n[i]};
	if (s->reason_other)
		out->errors[out->nerrors++] =
		    (struct shadow_stats_error){"(other)", s->reason_other};

	rate(&out->agreement, s->agree, s->agree_n, z);
	rate(&out->same_status, s->status_same, s->status_n, z);
	rate(&out->same_body, s->body_same, s->body_n, z);
	out->basis = s->agree_n == 0	? NULL
		     : s->by_body == 0	? "json_field"
		     : s->by_field == 0 ? "body"
					: "mixed";
	out->field_n = s->field_n;
	out->field_missing = s->field_missing;
	if (s->agree_n == 0)
		note(out, s->compared == 0 ? "no shadow answer to compare"
					   : "no shadow answer could be compared with its primary");

	out->pairs = s->lat_diff.n;
	side(&out->shadow, &s->lat_shadow, s->hist_shadow);
	side(&out->primary, &s->lat_primary, s->hist_primary);
	out->diff_mean = accum_moments_mean(&s->lat_diff);
	if (s->lat_diff.n > 1) {
		double n = (double)s->lat_diff.n;
		double t = htest_t_isf(0.025, n - 1);
		out->diff_sd = sqrt(accum_moments_var(&s->lat_diff));
		out->diff_df = n - 1;
		double half = t * out->diff_sd / sqrt(n);
		out->diff_ci_low = out->diff_mean - half;
		out->diff_ci_high = out->diff_mean + half;
		out->has_diff = isfinite(out->diff_ci_low) && isfinite(out->diff_ci_high);
	}
	if (!out->has_diff)
		note(out, s->lat_diff.n > 1 ? "latency difference interval not finite"
					    : "fewer than 2 latency pairs: no paired interval");

	out->status_pairs = s->status_pairs;
	rate(&out->shadow_5xx, s->shadow_5xx, s->status_pairs, z);
	rate(&out->primary_5xx, s->primary_5xx, s->status_pairs, z);
	out->shadow_only = s->shadow_only;
	out->primary_only = s->primary_only;
	if (s->status_pairs > 0) {
		out->p_value = shadow_stats_mcnemar(s->shadow_only, s->primary_only, &out->test);
		out->has_p = isfinite(out->p_value);
	}
	if (!out->has_p)
		note(out, "no pair of statuses: no error comparison");
	else if (s->shadow_only + s->primary_only == 0)
		note(out, "no discordant 5xx pairs: the error test is uninformative (p = 1)");
}
