/*
 * test_rollout_state.c - unit tests for the rollout state file's text (proxy/rollout.c):
 * rollout_state_format() and rollout_state_parse().
 */
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "check.h"
#include "rollout.h"

/* Parses the NUL-terminated text for "ranker" with nsteps steps. */
static const char *parse(const char *text, size_t nsteps, struct rollout_saved *out)
{
	return rollout_state_parse(text, strlen(text), "ranker", nsteps, out);
}

static void test_format_and_back(void)
{
	static const struct rollout_saved cases[] = {
		{0, ROLLOUT_RUNNING, 100},   {1, ROLLOUT_RUNNING, 500},
		{2, ROLLOUT_PAUSED, 1250},   {3, ROLLOUT_ROLLED_BACK, 0},
		{4, ROLLOUT_PROMOTED, 10000}, {4, ROLLOUT_RUNNING, 1},
	};
	char *t = rollout_state_format("ranker", &cases[1]);
	CHECK_STR(t, "{\"experiment\":\"ranker\",\"step\":2,\"status\":\"running\",\"canary_weight\":5}");
	cJSON_free(t);
	t = rollout_state_format("ranker", &cases[2]);
	CHECK_STR(t, "{\"experiment\":\"ranker\",\"step\":3,\"status\":\"paused\",\"canary_weight\":12.5}");
	cJSON_free(t);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rollout_saved got = {-1, ROLLOUT_RUNNING, 99999};
		t = rollout_state_format("ranker", &cases[i]);
		CHECK(t != NULL);
		if (t == NULL)
			continue;
		CHECK(parse(t, 5, &got) == NULL);
		CHECK_INT(got.step, cases[i].step);
		CHECK_INT(got.status, cases[i].status);
		CHECK_INT(got.canary_bp, cases[i].canary_bp);
		cJSON_free(t);
	}
}

static void test_accepted(void)
{
	struct rollout_saved st;

	/* as saved: one line and a newline */
	CHECK(parse("{\"experiment\":\"ranker\",\"step\":3,\"status\":\"rolled_back\","
		    "\"canary_weight\":0}\n", 5, &st) == NULL);
	CHECK_INT(st.step, 2);
	CHECK_INT(st.status, ROLLOUT_ROLLED_BACK);
	CHECK_INT(st.canary_bp, 0);
	/* keys in any order, spaces around, a CRLF */
	CHECK(parse(" { \"canary_weight\": 33.33, \"status\": \"paused\", \"step\": 1,"
		    " \"experiment\": \"ranker\" } \r\n", 5, &st) == NULL);
	CHECK_INT(st.step, 0);
	CHECK_INT(st.status, ROLLOUT_PAUSED);
	CHECK_INT(st.canary_bp, 3333);
	/* saved at step 5 of 5, configured now with 3 steps: the last one */
	CHECK(parse("{\"experiment\":\"ranker\",\"step\":5,\"status\":\"running\","
		    "\"canary_weight\":50}", 3, &st) == NULL);
	CHECK_INT(st.step, 2);
	CHECK_INT(st.canary_bp, 5000);
	CHECK(parse("{\"experiment\":\"ranker\",\"step\":1000000,\"status\":\"promoted\","
		    "\"canary_weight\":100}", 5, &st) == NULL);
	CHECK_INT(st.step, 4);
	CHECK_INT(st.canary_bp, 10000);
}

static void test_refused(void)
{
	static const struct {
		const char *text, *why;
	} bad[] = {
		{"", "not valid JSON"},
		{"{\"experiment\":\"ranker\",", "not valid JSON"},
		{"\x01\x02garbage", "not valid JSON"},
		{"[1,2]", "not a JSON object"},
		{"{}", "no experiment name"},
		{"{\"experiment\":7}", "no experiment name"},
		{"{\"experiment\":\"ranker-v3\",\"step\":1,\"status\":\"running\",\"canary_weight\":1}",
		 "another experiment's state"},
		{"{\"experiment\":\"Ranker\",\"step\":1,\"status\":\"running\",\"canary_weight\":1}",
		 "another experiment's state"},
		{"{\"experiment\":\"ranker\",\"status\":\"running\",\"canary_weight\":1}",
		 "step missing or not a whole number from 1"},
		{"{\"experiment\":\"ranker\",\"step\":0,\"status\":\"running\",\"canary_weight\":1}",
		 "step missing or not a whole number from 1"},
		{"{\"experiment\":\"ranker\",\"step\":2.5,\"status\":\"running\",\"canary_weight\":1}",
		 "step missing or not a whole number from 1"},
		{"{\"experiment\":\"ranker\",\"step\":\"2\",\"status\":\"running\",\"canary_weight\":1}",
		 "step missing or not a whole number from 1"},
		{"{\"experiment\":\"ranker\",\"step\":1000001,\"status\":\"running\",\"canary_weight\":1}",
		 "step missing or not a whole number from 1"},
		{"{\"experiment\":\"ranker\",\"step\":1,\"status\":\"walking\",\"canary_weight\":1}",
		 "status missing or unknown"},
		{"{\"experiment\":\"ranker\",\"step\":1,\"status\":\"Running\",\"canary_weight\":1}",
		 "status missing or unknown"},
		{"{\"experiment\":\"ranker\",\"step\":1,\"canary_weight\":1}", "status missing or unknown"},
		{"{\"experiment\":\"ranker\",\"step\":1,\"status\":\"running\",\"canary_weight\":100.5}",
		 "canary_weight missing or outside 0-100"},
		{"{\"experiment\":\"ranker\",\"step\":1,\"status\":\"running\",\"canary_weight\":-1}",
		 "canary_weight missing or outside 0-100"},
		{"{\"experiment\":\"ranker\",\"step\":1,\"status\":\"running\"}",
		 "canary_weight missing or outside 0-100"},
		{"{\"experiment\":\"ranker\",\"step\":1,\"status\":\"running\",\"canary_weight\":1}{}",
		 "more than one JSON value"},
		{"{\"experiment\":\"ranker\",\"step\":2,\"status\":\"rolled_back\",\"canary_weight\":50}",
		 "canary_weight does not match the status"},
		{"{\"experiment\":\"ranker\",\"step\":5,\"status\":\"promoted\",\"canary_weight\":5}",
		 "canary_weight does not match the status"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct rollout_saved st = {-7, ROLLOUT_PAUSED, 77};
		const char *why = parse(bad[i].text, 5, &st);
		CHECK_STR(why, bad[i].why);
		CHECK(st.step == -7 && st.status == ROLLOUT_PAUSED && st.canary_bp == 77);
	}
	/* a NUL inside the bytes read (a torn or corrupted write) is damage, not an end */
	static const char nul[] = "{\"experiment\":\"ranker\",\"step\":1,\"status\":\"running\","
				  "\"canary_weight\":1}\0{}";
	struct rollout_saved st;
	CHECK_STR(rollout_state_parse(nul, sizeof(nul) - 1, "ranker", 5, &st),
		  "more than one JSON value");
	/* only len bytes are read: the same text cut short is not valid */
	CHECK_STR(rollout_state_parse(nul, 20, "ranker", 5, &st), "not valid JSON");
}

int main(void)
{
	test_format_and_back();
	test_accepted();
	test_refused();
	return check_summary("test_rollout_state");
}
