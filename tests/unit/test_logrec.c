/*
 * test_logrec.c - unit tests for stats/logrec.c: the record shapes of the outcome log, escapes,
 * the cJSON fallback, torn and invalid lines, shadow records, timestamps.
 */
#include <math.h>
#include <string.h>

#include "check.h"
#include "logrec.h"

static char scratch[4096];

static enum logrec_parse parse(const char *line, struct logrec *r)
{
	return logrec_parse(line, strlen(line), r, scratch, sizeof(scratch));
}

static bool str_eq(struct logrec_str s, const char *want)
{
	return s.len == strlen(want) && memcmp(s.s, want, s.len) == 0;
}

static void test_shapes(void)
{
	struct logrec r;
	CHECK_INT(
	    parse(
		"{\"v\":1,\"type\":\"request\",\"ts\":\"2026-11-22T18:50:15.123456Z\","
		"\"exp\":\"ranker-v2\",\"variant\":\"treatment\",\"unit\":\"u-123\",\"rid\":\"x\","
		"\"status\":503,\"latency_ms\":12.345,\"upstream\":\"127.0.0.1:9002\","
		"\"bytes_in\":70,\"bytes_out\":29}",
		&r),
	    LOGREC_OK);
	CHECK_INT(r.type, LOGREC_REQUEST);
	CHECK(str_eq(r.exp, "ranker-v2") && str_eq(r.variant, "treatment"));
	CHECK(r.has_unit && str_eq(r.unit, "u-123"));
	CHECK_INT(r.status, 503);
	CHECK(r.latency_ms == 12.345 && !r.forced);
	CHECK_REL(r.ts, 1795373415.123456, 1e-15);

	CHECK_INT(
	    parse("{\"v\":1,\"type\":\"outcome\",\"ts\":\"2026-11-22T18:50:15Z\",\"exp\":\"e\","
		  "\"variant\":\"control\",\"unit\":null,\"metric\":\"click\",\"value\":true}",
		  &r),
	    LOGREC_OK);
	CHECK_INT(r.type, LOGREC_OUTCOME);
	CHECK(!r.has_unit && r.value == 1 && str_eq(r.metric, "click"));

	CHECK_INT(
	    parse("{\"v\":1,\"type\":\"config\",\"ts\":\"2026-11-22T18:50:15Z\","
		  "\"generation\":3,\"exp\":\"e\",\"weights\":{\"control\":90,\"treatment\":10.5}}",
		  &r),
	    LOGREC_OK);
	CHECK_INT(r.type, LOGREC_CONFIG);
	CHECK_INT(r.nweights, 2);
	CHECK(str_eq(r.wname[1], "treatment") && r.weight[1] == 10.5);

	CHECK_INT(
	    parse("{\"v\":1,\"type\":\"shadow\",\"ts\":\"2026-11-22T18:50:15Z\",\"exp\":\"e\","
		  "\"variant\":\"shadow\",\"status\":200,\"latency_ms\":9.1,\"same_body\":true}",
		  &r),
	    LOGREC_OK);
	CHECK_INT(r.type, LOGREC_SHADOW);
	CHECK_INT(
	    parse("{\"v\":1,\"type\":\"future\",\"ts\":\"2026-11-22T18:50:15Z\",\"exp\":\"e\"}",
		  &r),
	    LOGREC_OK);
	CHECK_INT(r.type, LOGREC_OTHER);
	CHECK_INT(
	    parse("{\"v\":1,\"type\":\"request\",\"ts\":\"2026-11-22T18:50:15Z\",\"exp\":\"e\","
		  "\"variant\":\"t\",\"status\":200,\"latency_ms\":1,\"forced\":true}\r",
		  &r),
	    LOGREC_OK);
	CHECK(r.forced);
}

static void test_escapes_and_fallback(void)
{
	struct logrec r;
	CHECK_INT(
	    parse(
		"{\"v\":1,\"type\":\"request\",\"ts\":\"2026-11-22T18:50:15Z\",\"exp\":\"a\\\"b\","
		"\"variant\":\"caf\\u00e9\",\"unit\":\"\\ud83d\\ude00\\n\",\"status\":200,"
		"\"latency_ms\":1e1}",
		&r),
	    LOGREC_OK);
	CHECK(str_eq(r.exp, "a\"b"));
	CHECK(str_eq(r.variant, "caf\xc3\xa9"));
	CHECK(str_eq(r.unit, "\xf0\x9f\x98\x80\n"));
	CHECK(r.latency_ms == 10);
	/* arrays and nested objects go through cJSON, with the same result */
	CHECK_INT(
	    parse("{\"v\":1,\"type\":\"outcome\",\"ts\":\"2026-11-22T18:50:15Z\",\"exp\":\"e\","
		  "\"tags\":[1,{\"x\":2}],\"extra\":{\"y\":[]},\"variant\":\"t\\u0041\","
		  "\"metric\":\"m\",\"value\":false}",
		  &r),
	    LOGREC_OK);
	CHECK(str_eq(r.variant, "tA") && r.value == 0);
	/* mistyped fields: the general path rejects them as invalid */
	CHECK_INT(
	    parse("{\"v\":1,\"type\":\"request\",\"ts\":\"2026-11-22T18:50:15Z\",\"exp\":\"e\","
		  "\"variant\":\"t\",\"status\":\"200\",\"latency_ms\":1}",
		  &r),
	    LOGREC_INVALID);
}

static void test_bad_lines(void)
{
	struct logrec r;
	const char *malformed[] = {
	    "",
	    "not json",
	    "{\"v\":1,\"type\":\"request\",\"ts\":\"2026-11-22T18:50:15Z\",\"exp\":\"e\",\"vari",
	    "{\"v\":1,}",
	    "{\"v\":01}",
	    "{\"v\":1} trailing",
	    "{\"v\":NaN}",
	    "{\"v\":1,\"x\":\"bad\\q\"}",
	    "{\"v\":1,\"x\":\"tab\there\"}",
	    "[1,2,3]",
	};
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++)
		CHECK_INT(parse(malformed[i], &r), LOGREC_MALFORMED);
	const char *invalid[] = {
	    "{\"v\":2,\"type\":\"request\",\"ts\":\"2026-11-22T18:50:15Z\",\"exp\":\"e\","
	    "\"variant\":\"t\",\"status\":200,\"latency_ms\":1}",
	    "{\"v\":1,\"type\":\"request\",\"ts\":\"yesterday\",\"exp\":\"e\","
	    "\"variant\":\"t\",\"status\":200,\"latency_ms\":1}",
	    "{\"v\":1,\"type\":\"request\",\"ts\":\"2026-11-22T18:50:15Z\",\"exp\":\"e\","
	    "\"variant\":\"t\",\"status\":200}",
	    "{\"v\":1,\"type\":\"request\",\"ts\":\"2026-11-22T18:50:15Z\",\"exp\":\"e\","
	    "\"variant\":\"t\",\"status\":200.5,\"latency_ms\":1}",
	    "{\"v\":1,\"type\":\"outcome\",\"ts\":\"2026-11-22T18:50:15Z\",\"exp\":\"e\","
	    "\"variant\":\"t\",\"metric\":\"m\",\"value\":1e999}",
	    "{\"v\":1,\"type\":\"outcome\",\"ts\":\"2026-11-22T18:50:15Z\",\"exp\":\"e\","
	    "\"variant\":\"t\",\"metric\":\"m\"}",
	    "{\"v\":1,\"type\":\"config\",\"ts\":\"2026-11-22T18:50:15Z\",\"exp\":\"e\"}",
	    "{\"v\":1,\"type\":\"config\",\"ts\":\"2026-11-22T18:50:15Z\",\"exp\":\"e\","
	    "\"weights\":{\"a\":-1}}",
	    "{\"type\":\"request\"}",
	};
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
		CHECK_INT(parse(invalid[i], &r), LOGREC_INVALID);
}

#define SHADOW_HEAD "{\"v\":1,\"type\":\"shadow\",\"ts\":\"2026-11-22T18:50:15Z\",\"exp\":\"exp\","

static void test_shadow(void)
{
	struct logrec r;
	/* a compared record as the proxy writes it */
	CHECK_INT(
	    parse(SHADOW_HEAD
		  "\"variant\":\"shadow\",\"primary_variant\":\"control\","
		  "\"rid\":\"ab12\",\"status\":200,\"latency_ms\":303.946,\"primary_status\":200,"
		  "\"primary_latency_ms\":0.376,\"same_status\":true,\"same_body\":false,"
		  "\"field_diff\":-0.25,\"field_agree\":false}",
		  &r),
	    LOGREC_OK);
	CHECK_INT(r.type, LOGREC_SHADOW);
	CHECK(str_eq(r.exp, "exp") && str_eq(r.variant, "shadow"));
	CHECK(r.has_primary_variant && str_eq(r.primary_variant, "control"));
	CHECK(r.has_status && r.status == 200 && r.has_latency && r.latency_ms == 303.946);
	CHECK(r.has_primary_status && r.primary_status == 200);
	CHECK(r.has_primary_latency && r.primary_latency_ms == 0.376);
	CHECK_INT(r.same_status, 1);
	CHECK_INT(r.same_body, 0);
	CHECK_INT(r.field_agree, 0);
	CHECK(r.has_field_diff && r.field_diff == -0.25);
	CHECK(!r.has_error);

	/* a failed exchange: nulls, an error, no comparison */
	CHECK_INT(
	    parse(SHADOW_HEAD
		  "\"variant\":\"shadow\",\"status\":null,\"latency_ms\":null,"
		  "\"error\":\"time\\tout\",\"primary_status\":502,\"primary_latency_ms\":1.5,"
		  "\"same_status\":null,\"same_body\":null}",
		  &r),
	    LOGREC_OK);
	CHECK(!r.has_status && !r.has_latency);
	CHECK(r.has_error && str_eq(r.error, "time\tout"));
	CHECK(r.has_primary_status && r.primary_status == 502);
	CHECK_INT(r.same_status, -1);
	CHECK_INT(r.same_body, -1);
	CHECK_INT(r.field_agree, -1);
	CHECK(!r.has_field_diff);

	/* the field missing from an answer: field_diff null, field_agree false */
	CHECK_INT(parse(SHADOW_HEAD "\"status\":200,\"latency_ms\":1,\"same_status\":true,"
				    "\"same_body\":true,\"field_diff\":null,\"field_agree\":false}",
			&r),
		  LOGREC_OK);
	CHECK(!r.has_field_diff && r.field_agree == 0 && r.same_status == 1);

	/* the oldest shape: only the shadow's side */
	CHECK_INT(parse(SHADOW_HEAD "\"variant\":\"shadow\",\"status\":200,\"latency_ms\":9.1,"
				    "\"same_body\":true}",
			&r),
		  LOGREC_OK);
	CHECK(r.has_status && !r.has_primary_status && !r.has_primary_latency);
	CHECK(r.same_status == -1 && r.same_body == 1 && r.field_agree == -1);

	/* through the general path (a nested value), with the same result */
	CHECK_INT(
	    parse(
		SHADOW_HEAD
		"\"extra\":{\"a\":[1]},\"primary_variant\":\"c\\u0041\","
		"\"status\":null,\"latency_ms\":null,\"error\":\"connect\",\"primary_status\":200,"
		"\"primary_latency_ms\":2,\"same_status\":null,\"same_body\":null}",
		&r),
	    LOGREC_OK);
	CHECK(!r.has_status && !r.has_latency && r.has_error && str_eq(r.error, "connect"));
	CHECK(str_eq(r.primary_variant, "cA") && r.primary_status == 200);
	CHECK(r.primary_latency_ms == 2 && r.same_status == -1 && r.same_body == -1);
	CHECK_INT(parse(SHADOW_HEAD "\"extra\":[],\"status\":404,\"latency_ms\":3,"
				    "\"same_status\":false,\"same_body\":true,\"field_diff\":0.5,"
				    "\"field_agree\":true}",
			&r),
		  LOGREC_OK);
	CHECK(r.status == 404 && r.same_status == 0 && r.same_body == 1 && r.field_agree == 1);
	CHECK(r.has_field_diff && r.field_diff == 0.5);

	/* mistyped or out-of-range shadow fields make a shadow record invalid, on both paths */
	const char *invalid[] = {
	    SHADOW_HEAD "\"status\":200,\"latency_ms\":1,\"same_status\":\"yes\"}",
	    SHADOW_HEAD "\"status\":200,\"latency_ms\":1,\"same_body\":1}",
	    SHADOW_HEAD "\"status\":200.5,\"latency_ms\":1}",
	    SHADOW_HEAD "\"status\":true,\"latency_ms\":1}",
	    SHADOW_HEAD "\"status\":200,\"latency_ms\":1,\"primary_status\":1000}",
	    SHADOW_HEAD "\"status\":200,\"latency_ms\":1,\"primary_status\":false}",
	    SHADOW_HEAD "\"status\":200,\"latency_ms\":1,\"primary_latency_ms\":\"2\"}",
	    SHADOW_HEAD "\"status\":200,\"latency_ms\":1,\"field_diff\":1e999}",
	    SHADOW_HEAD "\"status\":200,\"latency_ms\":1,\"field_agree\":0}",
	    SHADOW_HEAD "\"status\":null,\"latency_ms\":null,\"error\":5}",
	    SHADOW_HEAD "\"status\":null,\"latency_ms\":null,\"error\":true}",
	    SHADOW_HEAD "\"x\":[1],\"status\":200,\"latency_ms\":1,\"same_status\":\"yes\"}",
	    SHADOW_HEAD "\"x\":[1],\"status\":null,\"latency_ms\":null,\"error\":{}}",
	    SHADOW_HEAD "\"x\":[1],\"status\":200,\"latency_ms\":1,\"field_diff\":[0]}",
	    SHADOW_HEAD "\"x\":[1],\"status\":200,\"latency_ms\":1,\"primary_variant\":7}",
	};
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
		CHECK_INT(parse(invalid[i], &r), LOGREC_INVALID);

	/* the same fields on other record types change nothing */
	CHECK_INT(
	    parse("{\"v\":1,\"type\":\"request\",\"ts\":\"2026-11-22T18:50:15Z\",\"exp\":\"e\","
		  "\"variant\":\"t\",\"status\":200,\"latency_ms\":1,\"same_status\":\"yes\","
		  "\"error\":5,\"field_diff\":true}",
		  &r),
	    LOGREC_OK);
	CHECK_INT(r.type, LOGREC_REQUEST);
	CHECK(r.has_status && r.status == 200 && r.same_status == -1 && !r.has_error);
	CHECK_INT(
	    parse("{\"v\":1,\"type\":\"outcome\",\"ts\":\"2026-11-22T18:50:15Z\",\"exp\":\"e\","
		  "\"x\":[1],\"variant\":\"t\",\"metric\":\"m\",\"value\":1,\"same_body\":7}",
		  &r),
	    LOGREC_OK);
	CHECK_INT(r.type, LOGREC_OUTCOME);
}

static void test_ts(void)
{
	double t;
	CHECK_INT(logrec_parse_ts("1970-01-01T00:00:00Z", 20, &t), 0);
	CHECK(t == 0);
	CHECK_INT(logrec_parse_ts("2000-03-01T00:00:00Z", 20, &t), 0);
	CHECK(t == 951868800);
	CHECK_INT(logrec_parse_ts("2026-11-22T18:50:15.5+01:00", 27, &t), 0);
	CHECK(t == 1795373415.5 - 3600);
	CHECK_INT(logrec_parse_ts("2026-11-22T18:50:15", 19, &t), 0);
	CHECK_INT(logrec_parse_ts("2026-13-22T18:50:15Z", 20, &t), -1);
	CHECK_INT(logrec_parse_ts("2026-11-22T18:50:15Zx", 21, &t), -1);
	CHECK_INT(logrec_parse_ts("2026-11-22", 10, &t), -1);
	/* the offset's digits are digits */
	CHECK_INT(logrec_parse_ts("1970-01-01T00:00:01+23:5)", 25, &t), -1);
	CHECK_INT(logrec_parse_ts("1970-01-01T00:00:01+2x:00", 25, &t), -1);
	CHECK_INT(logrec_parse_ts("1970-01-01T00:00:01-00:30", 25, &t), 0);
	CHECK(t == 1 + 1800);
}

int main(void)
{
	test_shapes();
	test_escapes_and_fallback();
	test_bad_lines();
	test_shadow();
	test_ts();
	return check_summary("test_logrec");
}
