/*
 * test_shadow_stats.c - unit tests for stats/shadow_stats.c and the report's shadow section:
 * the Wilson interval and McNemar's exact p-value on fixed counts, a set of shadow lines
 * folded into exact counts, rates, paired latencies and error pairs, and the "shadow" object
 * of the JSON report (null without shadow records) with the text, Markdown and HTML sections.
 *
 * The expected numbers were computed independently in Python: the Wilson bounds from the
 * closed form with z = NormalDist().inv_cdf(0.975) (and checked against the roots of
 * (p_hat - p)^2 = z^2 p (1 - p) / n), McNemar's p-values as 2 * sum(comb(n, i), i <= min(b, c))
 * / 2^n with exact fractions (and scipy.stats.binomtest), the paired interval with
 * scipy.stats.ttest_rel(...).confidence_interval().
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "accum.h"
#include "analysis.h"
#include "check.h"
#include "htest.h"
#include "logrec.h"
#include "render.h"
#include "shadow_stats.h"

static const double z95 = 1.9599639845400536;

static void test_wilson(void)
{
	static const struct {
		uint64_t k, n;
		double lo, hi;
	} v[] = {
	    {891, 990, 0.87973854994926737, 0.91716923948809215},
	    {900, 1000, 0.87984803680465162, 0.9170905564069044},
	    {160, 190, 0.78354738348995923, 0.8871037805639167},
	    {1, 3, 0.061491944720396319, 0.79234039919795229},
	    {3, 5, 0.23072428127601297, 0.88237922576735206},
	    {10, 10, 0.72246720013711085, 1},
	};
	double lo, hi;
	CHECK_REL(htest_norm_isf(0.025), z95, 1e-12);
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		CHECK_INT(shadow_stats_wilson(v[i].k, v[i].n, z95, &lo, &hi), 0);
		CHECK_REL(lo, v[i].lo, 1e-12);
		CHECK_REL(hi, v[i].hi, 1e-12);
	}
	/* no successes: the lower bound is exactly 0 */
	CHECK_INT(shadow_stats_wilson(0, 10, z95, &lo, &hi), 0);
	CHECK(lo == 0);
	CHECK_REL(hi, 0.27753279986288915, 1e-12);
	CHECK_INT(shadow_stats_wilson(0, 0, z95, &lo, &hi), -1);
	CHECK_INT(shadow_stats_wilson(4, 3, z95, &lo, &hi), -1);
}

static void test_mcnemar(void)
{
	static const struct {
		uint64_t b, c;
		double p;
	} v[] = {
	    {11, 0, 0.0009765625},
	    {3, 7, 0.34375},
	    {5, 5, 1},
	    {20, 40, 0.01348929373119186},
	    {120, 90, 0.045114087864840731},
	    {0, 1, 1},
	    {0, 0, 1},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		const char *test = NULL;
		CHECK_REL(shadow_stats_mcnemar(v[i].b, v[i].c, &test), v[i].p, 1e-10);
		CHECK_STR(test, "mcnemar_exact");
	}
	/* Past 10^6 pairs the continuity-corrected chi-square (scipy.stats.chi2.sf); the exact
	 * binomial p (scipy.stats.binomtest) is beside it: 0.9498227832109561 and, at the
	 * boundary, 0.8422627570516182. */
	const char *test = NULL;
	CHECK_REL(shadow_stats_mcnemar(5000100, 4999900, &test), 0.9498227827950041, 1e-10);
	CHECK_STR(test, "mcnemar_chi2_cc");
	CHECK_REL(shadow_stats_mcnemar(500100, 499900, &test), 0.8422627570516182, 1e-9); /* GSL sums 10^6 terms */
	CHECK_STR(test, "mcnemar_exact");
	CHECK_REL(shadow_stats_mcnemar(500101, 499900, &test), 0.8414806593302748, 1e-10);
	CHECK_STR(test, "mcnemar_chi2_cc");
}

static char scratch[4096];

static void add_line(struct shadow_stats *s, const char *line)
{
	struct logrec r;
	CHECK_INT(logrec_parse(line, strlen(line), &r, scratch, sizeof(scratch)), LOGREC_OK);
	CHECK_INT(shadow_stats_add(s, &r), 0);
}

#define HEAD "{\"v\":1,\"type\":\"shadow\",\"ts\":\"2026-11-22T18:50:15Z\",\"exp\":\"exp\","
#define PAIR(st, lat, pst, plat)                                                                   \
	"\"status\":" #st ",\"latency_ms\":" #lat ",\"primary_status\":" #pst                      \
	",\"primary_latency_ms\":" #plat

/* Six compared records with both latencies (one not comparable), four failures, and one
 * record of the oldest shape (no primary fields). */
static struct shadow_stats *build(void)
{
	struct shadow_stats *s = shadow_stats_new();
	CHECK(s != NULL);
	add_line(s, HEAD PAIR(200, 300.5, 200, 1.5) ",\"same_status\":true,\"same_body\":true,"
						    "\"field_diff\":0,\"field_agree\":true}");
	add_line(s, HEAD PAIR(500, 302.25, 200, 2.0) ",\"same_status\":false,\"same_body\":false,"
						     "\"field_diff\":null,\"field_agree\":false}");
	add_line(s, HEAD PAIR(200, 301.0, 200, 1.25) ",\"same_status\":true,\"same_body\":false,"
						     "\"field_diff\":0.005,\"field_agree\":true}");
	add_line(s, HEAD PAIR(200, 299.75, 200, 1.75) ",\"same_status\":true,\"same_body\":false,"
						      "\"field_diff\":-0.5,\"field_agree\":false}");
	add_line(s, HEAD PAIR(503, 305.5, 503, 3.0) ",\"same_status\":true,\"same_body\":true,"
						    "\"field_diff\":0,\"field_agree\":true}");
	/* the primary never answered: no status pair, not comparable, but a latency pair */
	add_line(s, HEAD PAIR(200, 310.0, 0, 4.0) ",\"same_status\":null,\"same_body\":null}");
	add_line(s, HEAD "\"status\":null,\"latency_ms\":null,\"error\":\"timeout\","
			 "\"primary_status\":200,\"primary_latency_ms\":1}");
	add_line(s, HEAD "\"status\":null,\"latency_ms\":null,\"error\":\"connect\","
			 "\"primary_status\":200,\"primary_latency_ms\":1}");
	add_line(s, HEAD "\"status\":null,\"latency_ms\":null,\"error\":\"timeout\","
			 "\"primary_status\":200,\"primary_latency_ms\":1}");
	add_line(s, HEAD "\"status\":null,\"latency_ms\":null}");
	add_line(s, HEAD "\"variant\":\"shadow\",\"status\":200,\"latency_ms\":9.1,"
			 "\"same_body\":true}");
	return s;
}

static void test_summary(void)
{
	struct shadow_stats *s = build();
	struct shadow_summary m;
	shadow_stats_summary(s, &m);
	CHECK_INT(m.records, 11);
	CHECK_INT(m.compared, 7);
	CHECK_INT(m.failed, 4);
	CHECK_INT(m.not_comparable, 2);
	CHECK_INT(m.nerrors, 3);
	CHECK_STR(m.errors[0].reason, "timeout");
	CHECK_INT(m.errors[0].n, 2);
	CHECK_STR(m.errors[1].reason, "connect");
	CHECK_INT(m.errors[1].n, 1);
	CHECK_STR(m.errors[2].reason, "unknown");
	CHECK_INT(m.errors[2].n, 1);

	/* agreement: records 1, 3 and 5 of the five comparable ones */
	CHECK_INT(m.agreement.n, 5);
	CHECK_INT(m.agreement.k, 3);
	CHECK(m.agreement.has);
	CHECK_REL(m.agreement.rate, 0.6, 1e-15);
	CHECK_REL(m.agreement.ci_low, 0.23072428127601297, 1e-12);
	CHECK_REL(m.agreement.ci_high, 0.88237922576735206, 1e-12);
	CHECK_STR(m.basis, "json_field");
	CHECK_INT(m.same_status.k, 4);
	CHECK_INT(m.same_status.n, 5);
	CHECK_REL(m.same_status.ci_low, 0.37553462976252544, 1e-12);
	CHECK_REL(m.same_status.ci_high, 0.9637758913675698, 1e-12);
	/* same_body: the five comparable records plus the oldest-shape one */
	CHECK_INT(m.same_body.k, 3);
	CHECK_INT(m.same_body.n, 6);
	CHECK_INT(m.field_n, 5);
	CHECK_INT(m.field_missing, 1);

	/* latency pairs: six records */
	CHECK_INT(m.pairs, 6);
	CHECK_INT(m.shadow.n, 6);
	CHECK_REL(m.shadow.mean, 303.16666666666669, 1e-12);
	CHECK_REL(m.shadow.sd, 3.9104560688833558, 1e-10);
	CHECK_REL(m.primary.mean, 2.25, 1e-12);
	CHECK_REL(m.primary.sd, 1.0488088481701516, 1e-10);
	/* quantiles come from the histogram: within its bucket width of the exact values */
	CHECK(fabs(m.shadow.p50 - 301.0) <= 301.0 / 128);
	CHECK(fabs(m.shadow.p99 - 310.0) <= 310.0 / 128);
	CHECK(fabs(m.primary.p50 - 1.75) <= 1.75 / 128);
	CHECK(m.has_diff);
	CHECK_REL(m.diff_mean, 300.91666666666669, 1e-12);
	CHECK_REL(m.diff_sd, 2.9097537123726926, 1e-10);
	CHECK_REL(m.diff_df, 5, 1e-15);
	CHECK_REL(m.diff_ci_low, 297.86306741642085, 1e-10);
	CHECK_REL(m.diff_ci_high, 303.97026591691252, 1e-10);

	/* status pairs: the five with a primary status; shadow 5xx twice, primary once (both at
	 * the same record), so one discordant pair */
	CHECK_INT(m.status_pairs, 5);
	CHECK_INT(m.shadow_5xx.k, 2);
	CHECK_INT(m.primary_5xx.k, 1);
	CHECK_INT(m.shadow_only, 1);
	CHECK_INT(m.primary_only, 0);
	CHECK(m.has_p);
	CHECK(m.p_value == 1);
	CHECK_STR(m.test, "mcnemar_exact");
	CHECK_INT(m.nnotes, 0);
	shadow_stats_free(s);
}

static void test_edges(void)
{
	struct shadow_summary m;
	/* only failures: nothing to compare, every missing number explained */
	struct shadow_stats *s = shadow_stats_new();
	char line[512];
	for (int i = 0; i < 20; i++) {
		snprintf(line, sizeof(line),
			 HEAD "\"status\":null,\"latency_ms\":null,\"error\":\"reason %d\"}",
			 i % 18);
		add_line(s, line);
	}
	shadow_stats_summary(s, &m);
	CHECK_INT(m.records, 20);
	CHECK_INT(m.failed, 20);
	CHECK_INT(m.compared, 0);
	CHECK(!m.agreement.has && !m.has_diff && !m.has_p);
	CHECK(m.basis == NULL);
	CHECK(m.nnotes >= 2);
	/* 16 reasons kept, the other two (one record each) pooled */
	CHECK_INT(m.nerrors, SHADOW_STATS_MAX_ERRORS + 1);
	CHECK_STR(m.errors[0].reason, "reason 0");
	CHECK_INT(m.errors[0].n, 2);
	CHECK_STR(m.errors[SHADOW_STATS_MAX_ERRORS].reason, "(other)");
	CHECK_INT(m.errors[SHADOW_STATS_MAX_ERRORS].n, 2);
	shadow_stats_free(s);

	/* records with and without field_agree: "mixed", each judged by what it carries */
	s = shadow_stats_new();
	add_line(s, HEAD PAIR(200, 5, 200, 4) ",\"same_status\":true,\"same_body\":false,"
					      "\"field_diff\":0,\"field_agree\":true}");
	add_line(s, HEAD PAIR(200, 5, 200, 4) ",\"same_status\":true,\"same_body\":false}");
	shadow_stats_summary(s, &m);
	CHECK_STR(m.basis, "mixed");
	CHECK_INT(m.agreement.k, 1);
	CHECK_INT(m.agreement.n, 2);
	/* identical differences: a zero-width interval, still finite */
	CHECK(m.has_diff && m.diff_ci_low == 1 && m.diff_ci_high == 1);
	CHECK_INT(m.shadow_only + m.primary_only, 0);
	CHECK(m.has_p && m.p_value == 1);
	shadow_stats_free(s);

	/* one pair: a mean difference but no interval */
	s = shadow_stats_new();
	add_line(s, HEAD PAIR(200, 7.5, 200, 2.5) ",\"same_status\":true,\"same_body\":true}");
	shadow_stats_summary(s, &m);
	CHECK_STR(m.basis, "body");
	CHECK_INT(m.pairs, 1);
	CHECK(!m.has_diff);
	CHECK(m.diff_mean == 5);
	shadow_stats_free(s);

	/* other record types are ignored */
	s = shadow_stats_new();
	add_line(s, "{\"v\":1,\"type\":\"request\",\"ts\":\"2026-11-22T18:50:15Z\",\"exp\":\"e\","
		    "\"variant\":\"t\",\"status\":200,\"latency_ms\":1}");
	shadow_stats_summary(s, &m);
	CHECK_INT(m.records, 0);
	shadow_stats_free(s);
	shadow_stats_free(NULL);
}

/* One control arm with a few requests: enough for render_json. */
static struct analysis *tiny_analysis(void)
{
	struct accum_variant *v = accum_variant_new(0, NULL);
	for (int i = 0; i < 10; i++)
		accum_variant_request(v, 1795000000.0 + i, accum_unit_key((uint64_t)i + 1), 0);
	const char *names[1] = {"control"};
	const struct accum_variant *acc[1] = {v};
	struct analysis_input in = {
	    .experiment = "exp", .nvariants = 1, .names = names, .acc = acc};
	struct analysis *a = analysis_build(&in);
	CHECK(a != NULL);
	accum_variant_free(v);
	return a;
}

static char *render(struct analysis *a, const struct shadow_summary *sh, enum render_format fmt,
		    size_t *len)
{
	const char *logs[1] = {"outcomes.jsonl"};
	struct render_meta m = {.generated = "2026-11-22T18:50:15Z",
				.logs = logs,
				.nlogs = 1,
				.shadow = sh ? sh->records : 0,
				.shadow_stats = sh};
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	CHECK_INT(render_write(f, fmt, &a, &m, 1), 0);
	fclose(f);
	return buf;
}

static double num(const cJSON *o, const char *path)
{
	char key[64];
	const cJSON *it = o;
	while (it && *path) {
		size_t n = strcspn(path, ".");
		snprintf(key, sizeof(key), "%.*s", (int)n, path);
		it = cJSON_GetObjectItemCaseSensitive(it, key);
		path += n + (path[n] == '.');
	}
	CHECK(cJSON_IsNumber(it));
	return cJSON_IsNumber(it) ? it->valuedouble : NAN;
}

static void test_render(void)
{
	struct analysis *a = tiny_analysis();
	struct shadow_stats *s = build();
	struct shadow_summary m;
	shadow_stats_summary(s, &m);
	size_t len;

	/* without shadow records: "shadow": null */
	char *text = render(a, NULL, RENDER_JSON, &len);
	cJSON *o = cJSON_Parse(text);
	CHECK(o != NULL && cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "shadow")));
	cJSON_Delete(o);
	free(text);
	text = render(a, NULL, RENDER_TEXT, &len);
	CHECK(strstr(text, "shadow traffic") == NULL);
	free(text);

	text = render(a, &m, RENDER_JSON, &len);
	CHECK(strstr(text, "NaN") == NULL && strstr(text, "nan") == NULL &&
	      strstr(text, "Infinity") == NULL && strstr(text, "inf") == NULL);
	o = cJSON_Parse(text);
	const cJSON *sh = cJSON_GetObjectItemCaseSensitive(o, "shadow");
	CHECK(cJSON_IsObject(sh));
	CHECK(num(sh, "records") == 11 && num(sh, "compared") == 7 && num(sh, "failed") == 4);
	CHECK(num(sh, "not_comparable") == 2);
	CHECK(num(sh, "failed_by_error.timeout") == 2 && num(sh, "failed_by_error.unknown") == 1);
	CHECK(num(sh, "agreement.n") == 5 && num(sh, "agreement.agree") == 3);
	CHECK_REL(num(sh, "agreement.rate"), 0.6, 1e-15);
	CHECK_REL(num(sh, "agreement.ci_low"), 0.23072428127601297, 1e-12);
	CHECK_REL(num(sh, "agreement.ci_high"), 0.88237922576735206, 1e-12);
	CHECK_STR(cJSON_GetObjectItem(cJSON_GetObjectItem(sh, "agreement"), "basis")->valuestring,
		  "json_field");
	CHECK_STR(
	    cJSON_GetObjectItem(cJSON_GetObjectItem(sh, "agreement"), "interval")->valuestring,
	    "wilson");
	CHECK(num(sh, "same_status.same") == 4 && num(sh, "same_body.same") == 3);
	CHECK(num(sh, "json_field.missing") == 1);
	CHECK(num(sh, "latency_ms.pairs") == 6);
	CHECK_REL(num(sh, "latency_ms.shadow.mean"), 303.16666666666669, 1e-12);
	CHECK_REL(num(sh, "latency_ms.primary.mean"), 2.25, 1e-12);
	CHECK(num(sh, "latency_ms.shadow.p95") > 300);
	CHECK_REL(num(sh, "latency_ms.diff.ci_low"), 297.86306741642085, 1e-10);
	CHECK_REL(num(sh, "latency_ms.diff.ci_high"), 303.97026591691252, 1e-10);
	CHECK(num(sh, "errors_5xx.pairs") == 5 && num(sh, "errors_5xx.shadow_only") == 1);
	CHECK(num(sh, "errors_5xx.primary_only") == 0 && num(sh, "errors_5xx.p_value") == 1);
	CHECK_REL(num(sh, "errors_5xx.shadow.rate"), 0.4, 1e-15);
	CHECK_STR(cJSON_GetObjectItem(cJSON_GetObjectItem(sh, "errors_5xx"), "test")->valuestring,
		  "mcnemar_exact");
	CHECK(cJSON_GetObjectItem(sh, "note") == NULL);
	cJSON_Delete(o);
	free(text);

	text = render(a, &m, RENDER_TEXT, &len);
	size_t longest = 0, col = 0;
	for (size_t i = 0; i < len; i++) {
		if (text[i] == '\n') {
			longest = col > longest ? col : longest;
			col = 0;
		} else {
			col++;
		}
	}
	CHECK(longest <= 100);
	CHECK(strstr(text,
		     "shadow traffic: 11 mirrored, 7 compared, 4 failed (timeout 2, connect 1, "
		     "unknown 1)") != NULL);
	CHECK(strstr(text, "0.6 (3/5), 95% Wilson CI [0.2307, 0.8824]") != NULL);
	CHECK(strstr(text, "only shadow 1, only primary 0; exact McNemar p 1.0000") != NULL);
	free(text);
	text = render(a, &m, RENDER_MD, &len);
	CHECK(strstr(text, "### Shadow traffic") != NULL);
	CHECK(strstr(text, "| shadow | 6 |") != NULL);
	free(text);
	text = render(a, &m, RENDER_HTML, &len);
	CHECK(strstr(text, "<h2>Shadow traffic</h2>") != NULL);
	CHECK(strstr(text, "</html>") != NULL);
	free(text);
	shadow_stats_free(s);

	/* only failures: nulls with notes, still no NaN */
	s = shadow_stats_new();
	add_line(s, HEAD "\"status\":null,\"latency_ms\":null,\"error\":\"connect\"}");
	shadow_stats_summary(s, &m);
	text = render(a, &m, RENDER_JSON, &len);
	CHECK(strstr(text, "NaN") == NULL && strstr(text, "nan") == NULL);
	o = cJSON_Parse(text);
	sh = cJSON_GetObjectItemCaseSensitive(o, "shadow");
	CHECK(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(sh, "agreement"), "rate")));
	CHECK(cJSON_IsString(cJSON_GetObjectItem(cJSON_GetObjectItem(sh, "agreement"), "note")));
	CHECK(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(sh, "errors_5xx"), "p_value")));
	CHECK(cJSON_IsString(cJSON_GetObjectItem(sh, "note")));
	const cJSON *d = cJSON_GetObjectItem(cJSON_GetObjectItem(sh, "latency_ms"), "diff");
	CHECK(cJSON_IsNull(cJSON_GetObjectItem(d, "mean")) &&
	      cJSON_IsNull(cJSON_GetObjectItem(d, "ci_low")));
	cJSON_Delete(o);
	free(text);
	text = render(a, &m, RENDER_TEXT, &len);
	CHECK(strstr(text, "note:") != NULL);
	free(text);
	shadow_stats_free(s);
	analysis_free(a);
}

int main(void)
{
	htest_init();
	test_wilson();
	test_mcnemar();
	test_summary();
	test_edges();
	test_render();
	return check_summary("test_shadow_stats");
}
