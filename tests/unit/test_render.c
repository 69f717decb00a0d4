/*
 * test_render.c - unit tests for stats/render.c, stats/rtext.c and stats/rhtml.c: the JSON
 * object has the keys of DESIGN.md and never NaN or Infinity (nulls and notes instead), the
 * text report fits 100 columns, Markdown and HTML come out whole.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "accum.h"
#include "analysis.h"
#include "check.h"
#include "decide.h"
#include "render.h"

static char n_lat[] = "latency_ms", n_click[] = "click";

static struct conf_metric specs[2] = {
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

/* control: 600 varied values; "flat": constant, no clicks; "empty": nothing. */
static struct analysis *build(void)
{
	bool cont[2] = {true, false};
	struct accum_variant *v[3] = {accum_variant_new(2, cont), accum_variant_new(2, cont),
				      accum_variant_new(2, cont)};
	for (int i = 0; i < 600; i++) {
		double t = 1795000000.0 + 10 * i;
		accum_variant_request(v[0], t, accum_unit_key((uint64_t)i + 1), 0);
		accum_metric_add(&v[0]->metrics[0], t, 10 + i % 17);
		accum_metric_add(&v[0]->metrics[1], t, i % 9 == 0);
		accum_variant_request(v[1], t, accum_unit_key((uint64_t)i + 1000), 0);
		accum_metric_add(&v[1]->metrics[0], t, 12);
		accum_metric_add(&v[1]->metrics[1], t, 0);
	}
	const char *names[3] = {"control", "flat", "empty-variant-with-a-rather-long-name"};
	const double w[3] = {50, 25, 25};
	const struct accum_variant *acc[3] = {v[0], v[1], v[2]};
	struct analysis_input in = {.experiment = "exp \"<quoted>\"",
				    .nvariants = 3,
				    .names = names,
				    .weights = w,
				    .acc = acc,
				    .metrics = specs,
				    .nmetrics = 2};
	struct analysis *a = analysis_build(&in);
	CHECK(a != NULL);
	CHECK_INT(decide_run(a, NULL), 0);
	for (int i = 0; i < 3; i++)
		accum_variant_free(v[i]);
	return a;
}

static char *render(struct analysis *a, enum render_format fmt, size_t *len)
{
	const char *logs[1] = {"var/outcomes.jsonl"};
	struct render_meta m = {.generated = "2026-11-22T18:50:15Z",
				.logs = logs,
				.nlogs = 1,
				.request = 1200,
				.outcome = 1200,
				.skipped = 3};
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	CHECK_INT(render_write(f, fmt, &a, &m, 1), 0);
	fclose(f);
	return buf;
}

static void test_json(struct analysis *a)
{
	size_t len;
	char *s = render(a, RENDER_JSON, &len);
	CHECK(strstr(s, "NaN") == NULL && strstr(s, ":\tnan") == NULL);
	CHECK(strstr(s, "Infinity") == NULL && strstr(s, "inf,") == NULL &&
	      strstr(s, "inf\n") == NULL);
	cJSON *o = cJSON_Parse(s);
	CHECK(o != NULL);
	static const char *const keys[] = {"experiment", "generated", "logs",	 "records",
					   "variants",	 "srm",	      "metrics", "recommendation"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		CHECK(cJSON_GetObjectItemCaseSensitive(o, keys[i]) != NULL);
	CHECK_INT(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "records"), "skipped")->valueint, 3);
	cJSON *m0 = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "metrics"), 0);
	cJSON *cmps = cJSON_GetObjectItem(m0, "comparisons");
	CHECK_INT(cJSON_GetArraySize(cmps), 2);
	cJSON *flat = cJSON_GetArrayItem(cmps, 0), *empty = cJSON_GetArrayItem(cmps, 1);
	static const char *const ckeys[] = {"variant",
					    "test",
					    "statistic",
					    "df",
					    "p_value",
					    "p_value_one_sided",
					    "p_value_adjusted",
					    "p_value_sequential",
					    "diff",
					    "ci_low",
					    "ci_high",
					    "relative_lift",
					    "significant"};
	for (size_t i = 0; i < sizeof(ckeys) / sizeof(ckeys[0]); i++)
		CHECK(cJSON_GetObjectItemCaseSensitive(flat, ckeys[i]) != NULL);
	CHECK_STR(cJSON_GetObjectItem(flat, "test")->valuestring, "welch_t");
	CHECK(cJSON_IsNumber(cJSON_GetObjectItem(flat, "p_value")));
	CHECK(cJSON_IsNull(cJSON_GetObjectItem(flat, "p_value_sequential")));
	CHECK(cJSON_IsNull(cJSON_GetObjectItem(empty, "p_value")));
	CHECK(cJSON_IsString(cJSON_GetObjectItem(empty, "note")));
	cJSON *by = cJSON_GetObjectItem(m0, "by_variant");
	CHECK(cJSON_IsNull(cJSON_GetObjectItem(
	    cJSON_GetObjectItem(by, "empty-variant-with-a-rather-long-name"), "mean")));
	cJSON *m1 = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "metrics"), 1);
	cJSON *c1 = cJSON_GetArrayItem(cJSON_GetObjectItem(m1, "comparisons"), 0);
	CHECK_STR(cJSON_GetObjectItem(c1, "test")->valuestring, "chi_square");
	CHECK(cJSON_IsNull(cJSON_GetObjectItem(c1, "relative_lift")) ||
	      cJSON_IsNumber(cJSON_GetObjectItem(c1, "relative_lift")));
	cJSON *rec = cJSON_GetObjectItem(o, "recommendation");
	CHECK(cJSON_IsString(cJSON_GetObjectItem(rec, "action")));
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(rec, "reasons")) > 0);
	cJSON_Delete(o);
	free(s);
}

static void test_text_md_html(struct analysis *a)
{
	size_t len;
	char *s = render(a, RENDER_TEXT, &len);
	size_t longest = 0, col = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\n') {
			if (col > longest)
				longest = col;
			col = 0;
		} else {
			col++;
		}
	}
	CHECK(longest <= 100);
	CHECK(strstr(s, "RECOMMENDATION: ") != NULL);
	CHECK(strstr(s, "skipped 3 malformed or torn lines") != NULL);
	free(s);
	s = render(a, RENDER_MD, &len);
	CHECK(strncmp(s, "## Experiment", 13) == 0);
	CHECK(strstr(s, "| --- |") != NULL);
	free(s);
	s = render(a, RENDER_HTML, &len);
	CHECK(strncmp(s, "<!DOCTYPE html>", 15) == 0);
	CHECK(strstr(s, "</html>") != NULL);
	CHECK(strstr(s, "<svg") != NULL && strstr(s, "<script") == NULL);
	CHECK(strstr(s, "exp &quot;&lt;quoted&gt;&quot;") != NULL);
	CHECK(strstr(s, "<quoted>") == NULL);
	free(s);
}

int main(void)
{
	struct analysis *a = build();
	test_json(a);
	test_text_md_html(a);
	analysis_free(a);
	CHECK_INT(render_format_parse("html"), RENDER_HTML);
	CHECK_INT(render_format_parse("pdf"), -1);
	return check_summary("test_render");
}
