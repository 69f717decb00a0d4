/*
 * test_outcome.c - the POST /outcomes reader (proxy/outcome.c): each item's status and reason
 * in a mixed batch, attribution by request id with the map's answers (found, expired, pushed
 * out, unknown, another experiment's), by unit with a rollout's canary weight (the data path's
 * rule, not the YAML weights), the deduplication keys and duplicates within a batch and
 * against the recorded keys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "conf.h"
#include "live.h"
#include "outcome.h"
#include "rollout.h"
#include "ridmap.h"
#include "router.h"

#define S 1000000ull
#define NOW (5000 * S)

static const char yaml[] = "backends:\n"
			   "  a: {servers: [127.0.0.1:1]}\n"
			   "  b: {servers: [127.0.0.1:2]}\n"
			   "outcomes: {rid_window_s: 60, max_rids: 1000}\n"
			   "experiments:\n"
			   "  - name: exp\n"
			   "    unit: {header: X-User-Id}\n"
			   "    variants:\n"
			   "      - {name: control, backend: a, weight: 90}\n"
			   "      - {name: canary, backend: b, weight: 10}\n"
			   "    metrics:\n"
			   "      - {name: click, kind: binary, goal: increase}\n"
			   "      - {name: revenue, kind: continuous, goal: increase}\n"
			   "      - {name: errors, kind: binary, source: status_5xx, goal: decrease}\n"
			   "  - name: other\n"
			   "    unit: {header: X-User-Id}\n"
			   "    variants:\n"
			   "      - {name: old, backend: a, weight: 50}\n"
			   "      - {name: new, backend: b, weight: 50}\n";

static struct conf *conf;
static struct ridmap *rids, *seen;

static int parse(const char *body, struct outcome_batch *b)
{
	char err[512];
	int rc = outcome_parse(conf, rids, seen, NOW, 0, body, strlen(body), b, err, sizeof(err));
	if (rc < 0)
		fprintf(stderr, "(refused: %s)\n", err);
	return rc;
}

static void test_keys(void)
{
	uint8_t a[OUTCOME_KEY_LEN], b[OUTCOME_KEY_LEN];

	CHECK(outcome_key("exp", "click", true, NULL, "o-1", a));
	CHECK(outcome_key("exp", "click", false, "r-1", "o-1", b));
	CHECK(memcmp(a, b, sizeof(a)) == 0); /* with an id, the rid and the kind do not matter */
	CHECK(outcome_key("exp", "revenue", false, NULL, "o-1", b));
	CHECK(memcmp(a, b, sizeof(a)) != 0); /* another metric: another outcome */
	CHECK(outcome_key("other", "click", true, NULL, "o-1", b));
	CHECK(memcmp(a, b, sizeof(a)) != 0);
	CHECK(outcome_key("exp", "click", true, "r-1", NULL, a));
	CHECK(outcome_key("exp", "click", true, NULL, "r-1", b));
	CHECK(memcmp(a, b, sizeof(a)) != 0); /* a rid is not an id of the same text */
	CHECK(!outcome_key("exp", "revenue", false, "r-1", NULL, a));
	CHECK(!outcome_key("exp", "click", true, NULL, NULL, a));
	/* fields are not confused by where one ends and the next begins */
	CHECK(outcome_key("ex", "pclick", true, NULL, "1", a));
	CHECK(outcome_key("exp", "click", true, NULL, "1", b));
	CHECK(memcmp(a, b, sizeof(a)) != 0);
}

static void test_mixed_batch(void)
{
	struct outcome_batch b;
	const struct conf_experiment *e = &conf->experiments[0];

	CHECK_INT(parse("[{\"exp\":\"exp\",\"metric\":\"click\",\"value\":1,\"rid\":\"r-ok\"},"
			"{\"exp\":\"exp\",\"metric\":\"click\",\"value\":1,\"rid\":\"r-old\"},"
			"{\"exp\":\"exp\",\"metric\":\"click\",\"value\":1,\"rid\":\"r-gone\"},"
			"{\"exp\":\"exp\",\"metric\":\"click\",\"value\":1,\"rid\":\"r-never\"},"
			"{\"exp\":\"exp\",\"metric\":\"click\",\"value\":1,\"rid\":\"r-other\"},"
			"{\"exp\":\"exp\",\"metric\":\"click\",\"value\":1,\"rid\":\"r-old\","
			"\"unit\":\"u-1\"},"
			"{\"exp\":\"nope\",\"metric\":\"click\",\"value\":1,\"unit\":\"u\"},"
			"{\"exp\":\"exp\",\"metric\":\"errors\",\"value\":1,\"unit\":\"u\"},"
			"{\"exp\":\"exp\",\"metric\":\"click\",\"value\":3,\"unit\":\"u\"},"
			"{\"exp\":\"exp\",\"metric\":\"click\",\"value\":1,\"variant\":\"blue\"},"
			"{\"exp\":\"exp\",\"metric\":\"click\",\"value\":1},"
			"{\"exp\":\"exp\",\"metric\":\"click\",\"value\":1,\"id\":\"\",\"unit\":\"u\"},"
			"7,"
			"{\"exp\":\"exp\",\"metric\":\"revenue\",\"value\":2.5,\"variant\":\"canary\","
			"\"id\":\"o-9\"}]",
			&b),
		  0);
	static const int want_status[] = {
	    OUTCOME_OK,	      OUTCOME_REJECTED, OUTCOME_REJECTED, OUTCOME_REJECTED, OUTCOME_REJECTED,
	    OUTCOME_OK,	      OUTCOME_REJECTED, OUTCOME_REJECTED, OUTCOME_REJECTED, OUTCOME_REJECTED,
	    OUTCOME_REJECTED, OUTCOME_REJECTED, OUTCOME_REJECTED, OUTCOME_OK};
	static const int want_reason[] = {
	    -1, OUTCOME_R_RID_EXPIRED, OUTCOME_R_RID_EVICTED, OUTCOME_R_RID_UNKNOWN,
	    OUTCOME_R_VARIANT, -1, OUTCOME_R_EXPERIMENT, OUTCOME_R_METRIC, OUTCOME_R_VALUE,
	    OUTCOME_R_VARIANT, OUTCOME_R_UNATTRIBUTED, OUTCOME_R_INVALID, OUTCOME_R_INVALID, -1};
	CHECK_INT(b.n, 14);
	for (size_t i = 0; i < b.n && i < 14; i++) {
		CHECK_INT(b.items[i].status, want_status[i]);
		if (want_reason[i] >= 0)
			CHECK_INT(b.items[i].reason, want_reason[i]);
	}
	CHECK_INT(b.accepted, 3);
	CHECK_INT(b.rejected, 11);
	CHECK_INT(b.duplicates, 0);
	CHECK(b.items[0].v == &e->variants[1]);
	CHECK_STR(b.items[0].rid, "r-ok");
	CHECK(b.items[0].has_key);
	/* an expired id with a unit beside it: the unit decides */
	uint64_t h;
	CHECK(b.items[5].v == router_assign(e, "u-1", 3, &h));
	CHECK_STR(b.items[13].id, "o-9");
	CHECK_STR(b.items[1].error, "request id 'r-old' expired from the window (older than 60 s) "
				    "and no \"unit\" or \"variant\" is given");
	CHECK_STR(b.items[2].error, "request id 'r-gone' was pushed out by newer ones "
				    "(outcomes.max_rids is 1000) and no \"unit\" or \"variant\" is "
				    "given");
	CHECK_STR(b.items[3].error, "unknown request id 'r-never' (not a request of 'exp' this "
				    "proxy served in the last 60 s) and no \"unit\" or \"variant\" is "
				    "given");
	CHECK_STR(b.items[4].error, "request id 'r-other' is a request of experiment 'other', "
				    "not of 'exp'");
	CHECK_STR(b.items[12].error, "not a JSON object");
	CHECK_STR(outcome_reason_name(b.items[2].reason), "rid_evicted");
	outcome_batch_free(&b);
	CHECK(b.items == NULL && b.n == 0);
}

static void test_duplicates(void)
{
	struct outcome_batch b;
	uint8_t key[OUTCOME_KEY_LEN];

	/* recorded before: click of r-ok; o-1 */
	CHECK(outcome_key("exp", "click", true, "r-ok", NULL, key));
	ridmap_put(seen, (const char *)key, sizeof(key), 0, NOW);
	CHECK(outcome_key("exp", "revenue", false, NULL, "o-1", key));
	ridmap_put(seen, (const char *)key, sizeof(key), 0, NOW);
	CHECK_INT(parse("[{\"exp\":\"exp\",\"metric\":\"click\",\"value\":0,\"rid\":\"r-ok\"},"
			"{\"exp\":\"exp\",\"metric\":\"revenue\",\"value\":4,\"rid\":\"r-ok\"},"
			"{\"exp\":\"exp\",\"metric\":\"revenue\",\"value\":4,\"rid\":\"r-ok\"},"
			"{\"exp\":\"exp\",\"metric\":\"revenue\",\"value\":1,\"unit\":\"u\","
			"\"id\":\"o-1\"},"
			"{\"exp\":\"exp\",\"metric\":\"click\",\"value\":1,\"unit\":\"u\","
			"\"id\":\"o-2\"},"
			"{\"exp\":\"exp\",\"metric\":\"click\",\"value\":1,\"unit\":\"u\","
			"\"id\":\"o-2\"},"
			"{\"exp\":\"exp\",\"metric\":\"click\",\"value\":1,\"unit\":\"u\"},"
			"{\"exp\":\"exp\",\"metric\":\"click\",\"value\":1,\"unit\":\"u\"},"
			"{\"exp\":\"exp\",\"metric\":\"click\",\"value\":9,\"unit\":\"u\","
			"\"id\":\"o-2\"}]",
			&b),
		  0);
	static const int want[] = {OUTCOME_DUPLICATE, OUTCOME_OK, OUTCOME_OK,
				   OUTCOME_DUPLICATE, OUTCOME_OK, OUTCOME_DUPLICATE,
				   OUTCOME_OK,	      OUTCOME_OK, OUTCOME_REJECTED};
	CHECK_INT(b.n, 9);
	for (size_t i = 0; i < b.n && i < 9; i++)
		CHECK_INT(b.items[i].status, want[i]);
	CHECK_INT(b.accepted, 5);
	CHECK_INT(b.duplicates, 3);
	CHECK_INT(b.rejected, 1);
	/* the keys age out with the window: a minute later they are new again */
	outcome_batch_free(&b);
	char err[256];
	const char *body = "{\"exp\":\"exp\",\"metric\":\"revenue\",\"value\":1,\"id\":\"o-1\","
			   "\"unit\":\"u\"}";
	CHECK_INT(outcome_parse(conf, rids, seen, NOW + 61 * S, 0, body, strlen(body), &b, err,
				sizeof(err)),
		  0);
	CHECK_INT(b.accepted, 1);
	outcome_batch_free(&b);
}

/* During a rollout, an outcome with only a unit goes where the data path sends the unit: the
 * canary's top buckets at its weight, not the YAML's 90/10. */
static void test_unit_during_rollout(void)
{
	struct conf_experiment *e = &conf->experiments[0];
	struct rollout_rt rt;
	char body[128];
	int canary = 0, bad = 0;

	memset(&rt, 0, sizeof(rt));
	atomic_store(&rt.canary_bp, 100);
	e->rt = &rt;
	for (int i = 0; i < 10000; i++) {
		struct outcome_batch b;
		char unit[16];
		int n = snprintf(unit, sizeof(unit), "u-%d", i);
		snprintf(body, sizeof(body),
			 "{\"exp\":\"exp\",\"metric\":\"click\",\"value\":1,\"unit\":\"%s\"}", unit);
		if (parse(body, &b) < 0 || b.accepted != 1) {
			bad++;
			continue;
		}
		uint64_t h = router_unit_hash("exp", 3, unit, (size_t)n);
		bad += b.items[0].v != &e->variants[h % 10000 >= 9900 ? 1 : 0];
		canary += b.items[0].v == &e->variants[1];
		outcome_batch_free(&b);
	}
	e->rt = NULL;
	CHECK_INT(bad, 0);
	CHECK_INT(canary, 95); /* of 10,000 users at 1% (at the YAML's 10%: about 1000) */
}

static void test_documents(void)
{
	struct outcome_batch b;
	char err[256];

	static const char *const bad[] = {"", "[]", "{", "5", "{} {}", "[{}]]"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_INT(outcome_parse(conf, rids, seen, NOW, 0, bad[i], strlen(bad[i]), &b, err,
					sizeof(err)),
			  -1);
		CHECK(b.items == NULL && b.n == 0 && err[0] != '\0');
	}
	/* a single bad object is a batch of one rejected item, not a refused document */
	CHECK_INT(parse("{\"exp\":\"exp\"}", &b), 0);
	CHECK_INT(b.rejected, 1);
	CHECK_INT(b.items[0].reason, OUTCOME_R_INVALID);
	outcome_batch_free(&b);
	/* no map at all: every request id is unknown */
	const char *one = "{\"exp\":\"exp\",\"metric\":\"click\",\"value\":1,\"rid\":\"r-ok\"}";
	CHECK_INT(outcome_parse(conf, NULL, NULL, NOW, 0, one, strlen(one), &b, err, sizeof(err)), 0);
	CHECK_INT(b.items[0].reason, OUTCOME_R_RID_UNKNOWN);
	outcome_batch_free(&b);
}

/* With OUTCOME_DEFER, rid-only items whose id is not known here wait for the report; the
 * rest are judged as before, and a deferred item's key deduplicates like any other. */
static void test_defer(void)
{
	struct outcome_batch b;
	char err[256];
	const char *body =
	    "[{\"exp\":\"exp\",\"metric\":\"click\",\"value\":1,\"rid\":\"r-never\"},"
	    "{\"exp\":\"exp\",\"metric\":\"click\",\"value\":1,\"rid\":\"r-old\"},"
	    "{\"exp\":\"exp\",\"metric\":\"click\",\"value\":1,\"rid\":\"r-gone\"},"
	    "{\"exp\":\"exp\",\"metric\":\"click\",\"value\":1,\"rid\":\"r-other\"},"
	    "{\"exp\":\"exp\",\"metric\":\"click\",\"value\":1,\"rid\":\"r-never\"},"
	    "{\"exp\":\"exp\",\"metric\":\"click\",\"value\":5,\"rid\":\"r-x\"},"
	    "{\"exp\":\"exp\",\"metric\":\"revenue\",\"value\":5,\"rid\":\"r-x\",\"id\":\"p-1\"},"
	    "{\"exp\":\"exp\",\"metric\":\"click\",\"value\":1,\"rid\":\"r-ok\",\"id\":\"p-2\"}]";
	static const int want[] = {OUTCOME_DEFERRED, OUTCOME_DEFERRED, OUTCOME_DEFERRED,
				   OUTCOME_REJECTED, OUTCOME_DUPLICATE, OUTCOME_REJECTED,
				   OUTCOME_DEFERRED, OUTCOME_OK};

	CHECK_INT(outcome_parse(conf, rids, seen, NOW, OUTCOME_DEFER, body, strlen(body), &b, err,
				sizeof(err)),
		  0);
	CHECK_INT(b.n, 8);
	for (size_t i = 0; i < b.n && i < 8; i++)
		CHECK_INT(b.items[i].status, want[i]);
	CHECK_INT(b.deferred, 4);
	CHECK_INT(b.accepted, 1);
	CHECK_INT(b.duplicates, 1);
	CHECK_INT(b.rejected, 2);
	CHECK(b.items[0].v == NULL && b.items[0].reason == OUTCOME_R_RID_UNKNOWN);
	CHECK_INT(b.items[1].reason, OUTCOME_R_RID_EXPIRED);
	CHECK_INT(b.items[2].reason, OUTCOME_R_RID_EVICTED);
	CHECK_INT(b.items[3].reason, OUTCOME_R_VARIANT);
	CHECK_STR(b.items[6].rid, "r-x");
	CHECK_STR(b.items[6].id, "p-1");
	outcome_batch_free(&b);
}

int main(void)
{
	char err[512];

	if (conf_load_string("t.yaml", yaml, sizeof(yaml) - 1, &conf, err, sizeof(err)) < 0 ||
	    live_register_conf(conf) < 0) {
		fprintf(stderr, "config: %s\n", err);
		return 1;
	}
	rids = ridmap_new(conf->outcomes_max_rids, conf->outcomes_rid_window_s, 1);
	seen = ridmap_new(1000, 60, 1);
	const struct conf_experiment *e = &conf->experiments[0], *o = &conf->experiments[1];
	ridmap_put(rids, "r-old", 5, e->variants[0].id, NOW - 61 * S);
	ridmap_put(rids, "r-gone", 6, e->variants[0].id, NOW);
	for (int i = 0; i < 1000; i++) { /* pushes r-gone out */
		char k[16];
		snprintf(k, sizeof(k), "fill-%d", i);
		ridmap_put(rids, k, strlen(k), e->variants[0].id, NOW);
	}
	ridmap_put(rids, "r-ok", 4, e->variants[1].id, NOW);
	ridmap_put(rids, "r-other", 7, o->variants[1].id, NOW);
	test_keys();
	test_mixed_batch();
	test_duplicates();
	test_unit_during_rollout();
	test_documents();
	test_defer();
	ridmap_free(rids);
	ridmap_free(seen);
	conf_free(conf);
	return check_summary("test_outcome");
}
