/*
 * test_router.c - the cohort hash's published vectors, exact splits for fixed key sequences,
 * router_assign() in every hash mode (against the SDKs' published vectors where they name an
 * assignment, and against the SDK formulas of proxy/sdkhash.c for 10,000 units otherwise), the
 * ramp check between generations, experiment matching and unit extraction (proxy/router.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "conf.h"
#include "http.h"
#include "rollout.h"
#include "router.h"
#include "sdkhash.h"

/* The vectors README.md publishes (also computed by its Python re-implementation). */
static void test_hash_vectors(void)
{
	CHECK(router_hash("", 0) == 0xefd01f60ba992926ULL);
	CHECK(router_hash("a", 1) == 0x82a2a958a9bece5bULL);
	CHECK(router_hash("abgate", 6) == 0x3f5779444ee5d422ULL);
	CHECK(router_hash("ranker-v2:u-123", 15) == 0xa4269ce8d3251a22ULL);
	CHECK(router_hash("ranker-v2:user-42", 17) == 0x4030f6473c93d56eULL);
	CHECK_INT(router_bucket("ranker-v2", 9, "u-123", 5), 6258);
	CHECK_INT(router_bucket("ranker-v2", 9, "user-42", 7), 1694);
	CHECK_INT(router_bucket("", 0, "", 0), router_hash(":", 1) % 10000);
}

static struct conf *load(const char *yaml)
{
	char err[512];
	struct conf *c = NULL;

	if (conf_load_string("t.yaml", yaml, strlen(yaml), &c, err, sizeof(err)) < 0) {
		fprintf(stderr, "config: %s\n", err);
		exit(1);
	}
	return c;
}

static const char *cfg_8020 = "backends:\n"
			      "  a: {servers: [127.0.0.1:1]}\n"
			      "  b: {servers: [127.0.0.1:2]}\n"
			      "  c: {servers: [127.0.0.1:3]}\n"
			      "default_backend: a\n"
			      "experiments:\n"
			      "  - name: exp\n"
			      "    match: {path_prefix: /predict, method: POST}\n"
			      "    unit: {header: X-User-Id}\n"
			      "    variants:\n"
			      "      - {name: control, backend: a, weight: 80}\n"
			      "      - {name: treatment, backend: b, weight: 20}\n"
			      "  - name: three\n"
			      "    salt: ranker-v2\n"
			      "    match: {path_prefix: /three, host: api.example.com}\n"
			      "    unit: {query: user}\n"
			      "    variants:\n"
			      "      - {name: a, backend: a, weight: 33.33}\n"
			      "      - {name: b, backend: b, weight: 33.33}\n"
			      "      - {name: c, backend: c, weight: 33.34}\n"
			      "  - name: cookie\n"
			      "    match: {path_prefix: /c}\n"
			      "    unit: {cookie: uid}\n"
			      "    variants:\n"
			      "      - {name: a, backend: a, weight: 50}\n"
			      "      - {name: b, backend: b, weight: 50}\n";

/* A fixed key sequence gives an exact split (the same numbers as the Python version). */
static void test_exact_split(void)
{
	struct conf *c = load(cfg_8020);
	const struct conf_experiment *e = &c->experiments[0], *t = &c->experiments[1];
	char unit[32];
	int control = 0, three[3] = {0, 0, 0};

	for (int i = 0; i < 10000; i++) {
		int n = snprintf(unit, sizeof(unit), "u-%d", i);
		const struct conf_variant *v =
			router_variant_at(e, router_bucket(e->salt, strlen(e->salt), unit, (size_t)n));
		control += v == &e->variants[0];
		n = snprintf(unit, sizeof(unit), "user-%d", i);
		v = router_variant_at(t, router_bucket(t->salt, strlen(t->salt), unit, (size_t)n));
		three[v - t->variants]++;
	}
	CHECK_INT(control, 7971);
	CHECK_INT(three[0], 3278);
	CHECK_INT(three[1], 3365);
	CHECK_INT(three[2], 3357);
	/* bucket ranges are contiguous in declared order */
	CHECK_INT(e->variants[0].lo, 0);
	CHECK_INT(e->variants[0].hi, 8000);
	CHECK_INT(e->variants[1].lo, 8000);
	CHECK_INT(e->variants[1].hi, 10000);
	CHECK(router_variant_at(e, 7999) == &e->variants[0]);
	CHECK(router_variant_at(e, 8000) == &e->variants[1]);
	CHECK(router_variant_at(t, 3332) == &t->variants[0]);
	CHECK(router_variant_at(t, 3333) == &t->variants[1]);
	CHECK(router_variant_at(t, 6666) == &t->variants[2]);
	conf_free(c);
}

/* Raising the last variant's weight only moves users into it. */
static void test_monotone_ramp(void)
{
	struct conf *a = load(cfg_8020);
	char *yaml = strdup(cfg_8020);
	char *p = strstr(yaml, "weight: 80}");
	memcpy(p, "weight: 60}", 11);
	p = strstr(yaml, "weight: 20}");
	memcpy(p, "weight: 40}", 11);
	struct conf *b = load(yaml);
	const struct conf_experiment *ea = &a->experiments[0], *eb = &b->experiments[0];
	char unit[32];
	int moved_out = 0, moved_in = 0;

	for (int i = 0; i < 20000; i++) {
		int n = snprintf(unit, sizeof(unit), "user-%d", i);
		uint32_t bk = router_bucket("exp", 3, unit, (size_t)n);
		bool was = router_variant_at(ea, bk) == &ea->variants[1];
		bool is = router_variant_at(eb, bk) == &eb->variants[1];
		moved_out += was && !is;
		moved_in += !was && is;
	}
	CHECK_INT(moved_out, 0);
	CHECK(moved_in > 3500 && moved_in < 4500);
	free(yaml);
	conf_free(a);
	conf_free(b);
}

/* One experiment "e" over backends a, b, c: variants "name:weight ..." and an optional hash
 * mapping (the text after "hash: "). Owned by the caller (conf_free). */
static struct conf *load_exp(const char *variants, const char *hash)
{
	char yaml[2048], vs[512];
	size_t off = 0;
	char *copy = strdup(variants), *save = NULL;
	const char *backends = "abc";
	int i = 0;

	for (char *t = strtok_r(copy, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save), i++) {
		char *colon = strchr(t, ':');
		*colon = '\0';
		off += (size_t)snprintf(vs + off, sizeof(vs) - off,
					"      - {name: %s, backend: %c, weight: %s}\n", t,
					backends[i % 3], colon + 1);
	}
	free(copy);
	snprintf(yaml, sizeof(yaml),
		 "backends:\n"
		 "  a: {servers: [127.0.0.1:1]}\n"
		 "  b: {servers: [127.0.0.1:2]}\n"
		 "  c: {servers: [127.0.0.1:3]}\n"
		 "experiments:\n"
		 "  - name: e\n"
		 "    unit: {header: X-User-Id}\n"
		 "%s%s%s"
		 "    variants:\n%s",
		 hash ? "    hash: " : "", hash ? hash : "", hash ? "\n" : "", vs);
	return load(yaml);
}

/* The index of unit's variant in c's experiment, -1 outside it; counts in unit_hash_wrong the
 * calls whose unit hash is not H(salt ":" unit), which every mode reports. */
static int unit_hash_wrong;

static int assign(const struct conf *c, const char *unit)
{
	uint64_t h;
	const struct conf_experiment *e = &c->experiments[0];
	const struct conf_variant *v = router_assign(e, unit, strlen(unit), &h);
	unit_hash_wrong += h != router_unit_hash(e->salt, e->salt_len, unit, strlen(unit));
	return v == NULL ? -1 : (int)(v - e->variants);
}

/* abgate mode: router_assign is the bucket scan, and a running rollout overrides the weights. */
static void test_assign_abgate(void)
{
	struct conf *c = load_exp("control:80 treatment:20", NULL);
	struct conf *m = load_exp("control:80 treatment:20", "{mode: abgate}");
	const struct conf_experiment *e = &c->experiments[0];
	char unit[32];
	int control = 0, same = 0;

	CHECK_INT(e->hash.mode, CONF_HASH_ABGATE);
	for (int i = 0; i < 10000; i++) {
		int n = snprintf(unit, sizeof(unit), "u-%d", i);
		int v = assign(c, unit);
		control += v == 0;
		same += v == (int)(router_variant_at(e, router_bucket("e", 1, unit, (size_t)n)) -
				   e->variants) &&
			v == assign(m, unit);
	}
	CHECK_INT(same, 10000);
	CHECK_INT(control, 8033);
	struct rollout_rt rt;
	memset(&rt, 0, sizeof(rt));
	c->experiments[0].rt = &rt;
	atomic_store(&rt.canary_bp, 0);
	CHECK_INT(assign(c, "u-1"), 0);
	atomic_store(&rt.canary_bp, 10000);
	CHECK_INT(assign(c, "u-1"), 1);
	atomic_store(&rt.canary_bp, 2500);
	int canary = 0;
	for (int i = 0; i < 10000; i++) {
		snprintf(unit, sizeof(unit), "u-%d", i);
		uint32_t b = router_bucket("e", 1, unit, strlen(unit));
		int v = assign(c, unit);
		canary += v;
		CHECK_INT(v, b >= 7500);
	}
	CHECK(canary > 2300 && canary < 2700);
	c->experiments[0].rt = NULL;
	conf_free(c);
	conf_free(m);
}

/*
 * GrowthBook: growthbook/growthbook packages/sdk-js/test/cases.json, "feature" section: the
 * experiment rule with variations [a, b, c] and no seed (the key "feature") puts id 123 in c,
 * 456 in a and fds in b; "creates experiments properly" (weights 0.1/0.9, coverage 0.99, seed
 * "feature", hashVersion 2) puts anonId 123 in variation 1.
 */
static void test_assign_growthbook(void)
{
	struct conf *c = load_exp("a:33.33 b:33.33 c:33.34", "{mode: growthbook, seed: feature}");
	CHECK_INT(c->experiments[0].hash.version, 1);
	CHECK_INT(assign(c, "123"), 2);
	CHECK_INT(assign(c, "456"), 0);
	CHECK_INT(assign(c, "fds"), 1);
	conf_free(c);
	c = load_exp("v0:10 v1:90",
		     "{mode: growthbook, seed: feature, version: 2, coverage: 0.99}");
	CHECK_INT(assign(c, "123"), 1);
	const struct conf_experiment *e = &c->experiments[0];
	CHECK(e->variants[0].range_lo == 0 && e->variants[0].range_hi == 0.1 * 0.99);
	CHECK(e->variants[1].range_lo == 0.1 && e->variants[1].range_hi == 0.1 + 0.99 * 0.9);
	/* the default seed is the experiment's name; coverage leaves units out */
	conf_free(c);
	c = load_exp("control:50 treatment:50", "{mode: growthbook, version: 2, coverage: 0.5}");
	char unit[32];
	int out = 0, agree = 0;
	for (int i = 0; i < 10000; i++) {
		snprintf(unit, sizeof(unit), "user-%d", i);
		double x = sdkhash_growthbook(2, "e", 1, unit, strlen(unit));
		int want = x < 0.25 ? 0 : (x >= 0.5 && x < 0.75) ? 1 : -1;
		int got = assign(c, unit);
		out += got < 0;
		agree += got == want;
	}
	CHECK_INT(agree, 10000);
	CHECK(out > 4700 && out < 5300);
	conf_free(c);
}

/* Unleash: the flexible rollout of Unleash/client-specification
 * specifications/10-flexible-rollout-strategy.json gates; variants follow the per-mille weights
 * as sdkhash_unleash_variant (checked against the specification's variant files) chooses them,
 * with the current variant seed or, with variant_hash: legacy, seed 0. */
static void test_assign_unleash(void)
{
	struct conf *c = load_exp("control:50 treatment:50",
				  "{mode: unleash, group_id: Feature.flexibleRollout.10, "
				  "rollout: 10}");
	CHECK(assign(c, "174") >= 0);
	CHECK_INT(assign(c, "499"), -1);
	conf_free(c);
	c = load_exp("a:33.3 b:33.3 c:33.4", "{mode: unleash, group_id: g, rollout: 40}");
	struct conf *l = load_exp("a:33.3 b:33.3 c:33.4",
				  "{mode: unleash, group_id: g, rollout: 40, variant_hash: legacy}");
	static const uint32_t w[] = {333, 333, 334};
	char unit[32];
	int agree = 0, in = 0, hits[3] = {0, 0, 0};
	for (int i = 0; i < 10000; i++) {
		snprintf(unit, sizeof(unit), "user-%d", i);
		size_t n = strlen(unit);
		bool on = sdkhash_unleash_normalized("g", 1, unit, n, 100, 0) <= 40;
		int cur = sdkhash_unleash_variant("g", 1, unit, n, w, 3, SDKHASH_UNLEASH_VARIANT_SEED);
		int old = sdkhash_unleash_variant("g", 1, unit, n, w, 3,
						  SDKHASH_UNLEASH_LEGACY_VARIANT_SEED);
		int got = assign(c, unit);
		agree += got == (on ? cur : -1) && assign(l, unit) == (on ? old : -1);
		in += on;
		if (got >= 0)
			hits[got]++;
	}
	CHECK_INT(agree, 10000);
	CHECK(in > 3800 && in < 4200);
	/* the current seed spreads the rollout's units over all three variants evenly */
	for (int k = 0; k < 3; k++)
		CHECK(hits[k] > in / 3 - 200 && hits[k] < in / 3 + 200);
	CHECK_INT(c->experiments[0].hash.variant_seed, 86028157);
	CHECK_INT(l->experiments[0].hash.variant_seed, 0);
	conf_free(c);
	conf_free(l);
	c = load_exp("a:50 b:50", "{mode: unleash, group_id: g}");
	CHECK_INT(c->experiments[0].hash.rollout, 100);
	conf_free(c);
	c = load_exp("a:50 b:50", "{mode: unleash, group_id: g, rollout: 0}");
	CHECK_INT(assign(c, "user-1"), -1);
	conf_free(c);
}

/* Optimizely: the swift-sdk BucketTests_Base.swift values put ppid1 at bucket 5254 and ppid2 at
 * 4299 of experiment 1886780721; traffic allocation ends at 5254 for the first variation. */
static void test_assign_optimizely(void)
{
	struct conf *c = load_exp("control:52.54 treatment:47.46",
				  "{mode: optimizely, experiment_id: 1886780721}");
	CHECK_STR(c->experiments[0].hash.text, "1886780721");
	CHECK_INT(assign(c, "ppid1"), 1);
	CHECK_INT(assign(c, "ppid2"), 0);
	CHECK_INT(assign(c, "ppid3"), 1);
	conf_free(c);
	c = load_exp("control:52.55 treatment:47.45",
		     "{mode: optimizely, experiment_id: \"1886780721\"}");
	CHECK_INT(assign(c, "ppid1"), 0);
	conf_free(c);
}

/* LaunchDarkly: python-server-sdk test_evaluator_bucketing.py gives userKeyA 0.42157587 for key
 * hashKey and salt saltyA (0.09801207 with seed 61): weights in 1/1000 % put the boundary. */
static void test_assign_launchdarkly(void)
{
	struct conf *c = load_exp("off:42.15 on:57.85", "{mode: launchdarkly, key: hashKey, "
							"salt: saltyA}");
	CHECK_INT(assign(c, "userKeyA"), 1);
	CHECK_INT(assign(c, "userKeyC"), 0);
	conf_free(c);
	c = load_exp("off:42.16 on:57.84", "{mode: launchdarkly, key: hashKey, salt: saltyA}");
	CHECK_INT(assign(c, "userKeyA"), 0);
	conf_free(c);
	c = load_exp("off:9.80 on:90.20", "{mode: launchdarkly, seed: 61}");
	CHECK_INT(assign(c, "userKeyA"), 1);
	CHECK_INT(assign(c, "userKeyC"), 1);
	conf_free(c);
	c = load_exp("off:9.81 on:90.19", "{mode: launchdarkly, seed: 61}");
	CHECK_INT(assign(c, "userKeyA"), 0);
	conf_free(c);
}

/* Which of three contiguous ranges ending at a, b and beyond holds x. */
static int of3(uint64_t x, uint64_t a, uint64_t b)
{
	return x < a ? 0 : x < b ? 1 : 2;
}

/* Statsig and Eppo: their hash of salt "." unit and salt "-" unit, scanned over the declared
 * ranges (Eppo's in total_shards). */
static void test_assign_statsig_eppo(void)
{
	struct conf *st = load_exp("a:20 b:30 c:50", "{mode: statsig, salt: exp_salt}");
	struct conf *ep = load_exp("a:20 b:30 c:50", "{mode: eppo, salt: exp_salt}");
	struct conf *ep100 =
	    load_exp("a:20 b:30 c:50", "{mode: eppo, salt: exp_salt, total_shards: 100}");
	char unit[32], buf[64];
	int agree = 0;
	for (int i = 0; i < 10000; i++) {
		snprintf(unit, sizeof(unit), "user-%d", i);
		int n = snprintf(buf, sizeof(buf), "exp_salt.%s", unit);
		uint64_t b = sdkhash_statsig(buf, (size_t)n, NULL, 0, NULL, 0) % 10000;
		int want = of3(b, 2000, 5000);
		n = snprintf(buf, sizeof(buf), "exp_salt-%s", unit);
		uint32_t s = sdkhash_eppo_shard(buf, (size_t)n, NULL, 0, NULL, 0, 10000);
		uint32_t s100 = sdkhash_eppo_shard(buf, (size_t)n, NULL, 0, NULL, 0, 100);
		agree += assign(st, unit) == want && assign(ep, unit) == of3(s, 2000, 5000) &&
			 assign(ep100, unit) == of3(s100, 20, 50);
	}
	CHECK_INT(agree, 10000);
	conf_free(st);
	conf_free(ep);
	conf_free(ep100);
}

/* The ramp check between two generations of one experiment. */
static bool moves(const char *v1, const char *h1, const char *v2, const char *h2, char *msg,
		  size_t len)
{
	struct conf *a = load_exp(v1, h1), *b = load_exp(v2, h2);
	bool r = router_ramp_moves(&a->experiments[0], &b->experiments[0], msg, len);
	conf_free(a);
	conf_free(b);
	return r;
}

static void test_ramp_moves(void)
{
	char msg[256] = "";
	static const char *const modes[] = {
	    NULL,
	    "{mode: growthbook, seed: s, version: 2}",
	    "{mode: unleash, group_id: g}",
	    "{mode: unleash, group_id: g, variant_hash: legacy}",
	    "{mode: optimizely, experiment_id: \"1\"}",
	    "{mode: launchdarkly, key: k, salt: s}",
	    "{mode: statsig, salt: s}",
	    "{mode: eppo, salt: s}",
	};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		/* a canary ramp moves units from the control into the canary only */
		CHECK(!moves("control:100 canary:0", modes[i], "control:95 canary:5", modes[i], msg,
			     sizeof(msg)));
		CHECK(!moves("control:80 treatment:20", modes[i], "control:60 treatment:40",
			     modes[i], msg, sizeof(msg)));
		CHECK(!moves("a:50 b:50", modes[i], "a:50 b:50", modes[i], msg, sizeof(msg)));
		/* growing the first arm shifts the middle one into the last one's units */
		CHECK(moves("a:34 b:33 c:33", modes[i], "a:50 b:25 c:25", modes[i], msg,
			    sizeof(msg)));
		CHECK(strstr(msg, "from variant \"c\" to \"b\"") != NULL);
		/* a variant added at the end takes units from b, which keeps its weight */
		CHECK(moves("a:50 b:50", modes[i], "a:40 b:50 c:10", modes[i], msg, sizeof(msg)));
		CHECK(strstr(msg, "from variant \"a\" to \"b\"") != NULL);
	}
	CHECK(moves("a:50 b:50", NULL, "a:50 b:50", "{mode: statsig, salt: e}", msg, sizeof(msg)));
	CHECK(strstr(msg, "every unit is assigned afresh") != NULL);
	CHECK(moves("a:50 b:50", "{mode: growthbook, seed: s}", "a:50 b:50",
		    "{mode: growthbook, seed: s, version: 2}", msg, sizeof(msg)));
	CHECK(moves("a:50 b:50", "{mode: unleash, group_id: g}", "a:50 b:50",
		    "{mode: unleash, group_id: g, variant_hash: legacy}", msg, sizeof(msg)));
	CHECK(moves("a:50 b:50", "{mode: eppo, salt: s}", "a:50 b:50",
		    "{mode: eppo, salt: s, total_shards: 100}", msg, sizeof(msg)));
	/* GrowthBook coverage and the Unleash rollout only move units in or out */
	CHECK(!moves("a:50 b:50", "{mode: growthbook, coverage: 0.5}", "a:50 b:50",
		     "{mode: growthbook, coverage: 1}", msg, sizeof(msg)));
	CHECK(!moves("a:50 b:50", "{mode: unleash, group_id: g, rollout: 10}", "a:50 b:50",
		     "{mode: unleash, group_id: g, rollout: 60}", msg, sizeof(msg)));
	/* with coverage below 1, b's range starts where a's weight ends: the units moving between
	 * the two go from the one that shrinks to the one that grows */
	CHECK(!moves("a:50 b:50", "{mode: growthbook, coverage: 0.5}", "a:20 b:80",
		     "{mode: growthbook, coverage: 0.5}", msg, sizeof(msg)));
}

static int parse(const char *raw, struct http_msg *m, struct http_header *hdr)
{
	http_msg_reset(m);
	m->hdr = hdr;
	m->max_hdr = 32;
	return http_parse_request(m, raw, strlen(raw), NULL);
}

static void test_match_and_units(void)
{
	struct conf *c = load(cfg_8020);
	struct http_header hdr[32];
	struct http_msg m;
	char scratch[64];
	const char *u;
	size_t ul;

	const char *r1 = "POST /predict/x HTTP/1.1\r\nHost: h\r\nX-User-Id: u-7\r\n\r\n";
	CHECK_INT(parse(r1, &m, hdr), HTTP_OK);
	CHECK(router_match(c, &m, r1) == &c->experiments[0]);
	CHECK(router_unit(&c->experiments[0], &m, r1, scratch, sizeof(scratch), &u, &ul));
	CHECK(ul == 3 && memcmp(u, "u-7", 3) == 0);

	/* method mismatch: falls through to no experiment */
	const char *r2 = "GET /predict HTTP/1.1\r\nHost: h\r\n\r\n";
	CHECK_INT(parse(r2, &m, hdr), HTTP_OK);
	CHECK(router_match(c, &m, r2) == NULL);

	/* host match ignores case and port; query unit is percent-decoded */
	const char *r3 = "GET /three?a=1&user=ann%20b+c&z HTTP/1.1\r\nHost: API.example.com:8080\r\n\r\n";
	CHECK_INT(parse(r3, &m, hdr), HTTP_OK);
	CHECK(router_match(c, &m, r3) == &c->experiments[1]);
	CHECK(router_unit(&c->experiments[1], &m, r3, scratch, sizeof(scratch), &u, &ul));
	CHECK(ul == 7 && memcmp(u, "ann b c", 7) == 0);
	const char *r4 = "GET /three?user= HTTP/1.1\r\nHost: api.example.com\r\n\r\n";
	CHECK_INT(parse(r4, &m, hdr), HTTP_OK);
	CHECK(!router_unit(&c->experiments[1], &m, r4, scratch, sizeof(scratch), &u, &ul));
	const char *r5 = "GET /three HTTP/1.1\r\nHost: other.example.com\r\n\r\n";
	CHECK_INT(parse(r5, &m, hdr), HTTP_OK);
	CHECK(router_match(c, &m, r5) == NULL);

	/* cookies: several headers, quoted values, names that merely end alike */
	const char *r6 = "GET /c HTTP/1.1\r\nHost: h\r\nCookie: xuid=1; a=b\r\n"
			 "Cookie: other=2;  uid=\"k-9\"\r\n\r\n";
	CHECK_INT(parse(r6, &m, hdr), HTTP_OK);
	CHECK(router_match(c, &m, r6) == &c->experiments[2]);
	CHECK(router_unit(&c->experiments[2], &m, r6, scratch, sizeof(scratch), &u, &ul));
	CHECK(ul == 3 && memcmp(u, "k-9", 3) == 0);
	const char *r7 = "GET /c HTTP/1.1\r\nHost: h\r\nCookie: xuid=1\r\n\r\n";
	CHECK_INT(parse(r7, &m, hdr), HTTP_OK);
	CHECK(!router_unit(&c->experiments[2], &m, r7, scratch, sizeof(scratch), &u, &ul));
	conf_free(c);
}

/* router_assign: the YAML weights without a rollout; with one, its canary weight (the top
 * buckets), whatever the YAML says. Units u-0 .. u-9999 with salt "exp": 7971 control at
 * 80/20 (the README's number); the canary's 95, 505 and 2485 at 1, 5 and 25% (the same
 * numbers as the Python version). */
static void test_assign(void)
{
	struct conf *c = load(cfg_8020);
	struct conf_experiment *e = &c->experiments[0];
	struct rollout_rt rt;
	char unit[32];
	int control = 0, canary[3] = {0, 0, 0};
	static const uint32_t bp[3] = {100, 500, 2500};

	memset(&rt, 0, sizeof(rt));
	for (int i = 0; i < 10000; i++) {
		int n = snprintf(unit, sizeof(unit), "u-%d", i);
		uint64_t h = router_unit_hash(e->salt, strlen(e->salt), unit, (size_t)n), got;
		const struct conf_variant *v = router_assign(e, unit, (size_t)n, &got);
		CHECK(got == h);
		control += v == &e->variants[0];
		CHECK(v == router_variant_at(e, (uint32_t)(h % 10000)));
	}
	CHECK_INT(control, 7971);
	e->rt = &rt;
	for (int k = 0; k < 3; k++) {
		atomic_store(&rt.canary_bp, bp[k]);
		for (int i = 0; i < 10000; i++) {
			int n = snprintf(unit, sizeof(unit), "u-%d", i);
			uint64_t h = router_unit_hash(e->salt, strlen(e->salt), unit, (size_t)n), got;
			const struct conf_variant *v = router_assign(e, unit, (size_t)n, &got);
			canary[k] += v == &e->variants[1];
			CHECK(v == &e->variants[h % 10000 >= 10000 - bp[k] ? 1 : 0]);
		}
	}
	/* each step only moves users into the canary */
	CHECK(canary[0] < canary[1] && canary[1] < canary[2]);
	CHECK_INT(canary[0], 95);
	CHECK_INT(canary[1], 505);
	CHECK_INT(canary[2], 2485);
	e->rt = NULL;
	conf_free(c);
}

int main(void)
{
	test_hash_vectors();
	test_assign();
	test_exact_split();
	test_monotone_ramp();
	test_assign_abgate();
	test_assign_growthbook();
	test_assign_unleash();
	test_assign_optimizely();
	test_assign_launchdarkly();
	test_assign_statsig_eppo();
	CHECK_INT(unit_hash_wrong, 0);
	test_ramp_moves();
	test_match_and_units();
	return check_summary("test_router");
}
