/*
 * test_logrec.c - unit tests for stats/logrec.c: the record shapes of the outcome log, escapes,
 * the cJSON fallback, torn and invalid lines, timestamps.
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
}

int main(void)
{
	test_shapes();
	test_escapes_and_fallback();
	test_bad_lines();
	test_ts();
	return check_summary("test_logrec");
}
