/*
 * test_sdkhash.c - the experimentation SDKs' hashes and bucket rules (proxy/sdkhash.c) against
 * the cross-SDK test vectors each SDK publishes. Every block names the repository and file its
 * numbers come from; the numbers are copied as data, nothing else.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "sdkhash.h"

#define S(x) (x), strlen(x)

/*
 * GrowthBook: growthbook/growthbook, packages/sdk-js/test/cases.json, the "hash" section
 * ([seed, value, version, expected]; version 99 gives null, here -1).
 */
static void test_growthbook_hash(void)
{
	static const struct {
		const char *seed, *value;
		int version;
		double want;
	} cases[] = {
	    {"", "a", 1, 0.22},
	    {"", "b", 1, 0.077},
	    {"b", "a", 1, 0.946},
	    {"ef", "d", 1, 0.652},
	    {"asdf", "8952klfjas09ujk", 1, 0.549},
	    {"", "123", 1, 0.011},
	    {"", "___)((*\":&", 1, 0.563},
	    {"seed", "a", 2, 0.0505},
	    {"seed", "b", 2, 0.2696},
	    {"foo", "ab", 2, 0.2575},
	    {"foo", "def", 2, 0.2019},
	    {"89123klj", "8952klfjas09ujkasdf", 2, 0.124},
	    {"90850943850283058242805", "123", 2, 0.7516},
	    {"()**(%$##$%#$#", "___)((*\":&", 2, 0.0128},
	    {"abc", "def", 99, -1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double got =
		    sdkhash_growthbook(cases[i].version, S(cases[i].seed), S(cases[i].value));
		if (got != cases[i].want)
			fprintf(stderr, "growthbook hash case %zu: %.17g, want %.17g\n", i, got,
				cases[i].want);
		CHECK(got == cases[i].want);
	}
	/* The same file's "feature" section: the buckets its experiment results report (the
	 * seed is the experiment key when no seed is given). */
	CHECK(sdkhash_growthbook(1, S("feature"), S("123")) == 0.863);
	CHECK(sdkhash_growthbook(1, S("feature"), S("456")) == 0.178);
	CHECK(sdkhash_growthbook(1, S("feature"), S("fds")) == 0.514);
	CHECK(sdkhash_growthbook(2, S("feature"), S("123")) == 0.5231);
	CHECK(sdkhash_growthbook(2, S("experiment"), S("1")) == 0.4413);
	CHECK(sdkhash_growthbook(2, S("holdout"), S("1")) == 0.8043);
}

/* GrowthBook: the same cases.json, the "getBucketRange" section ([n, coverage, weights]). */
static void test_growthbook_ranges(void)
{
	static const struct {
		const char *name;
		size_t n;
		double coverage;
		size_t nweights; /* 0: null */
		double weights[4];
		double want[4][2];
	} cases[] = {
	    {"normal 50/50", 2, 1, 0, {0}, {{0, 0.5}, {0.5, 1}}},
	    {"reduced coverage", 2, 0.5, 0, {0}, {{0, 0.25}, {0.5, 0.75}}},
	    {"zero coverage", 2, 0, 0, {0}, {{0, 0}, {0.5, 0.5}}},
	    {"4 variations", 4, 1, 0, {0}, {{0, 0.25}, {0.25, 0.5}, {0.5, 0.75}, {0.75, 1}}},
	    {"uneven weights", 2, 1, 2, {0.4, 0.6}, {{0, 0.4}, {0.4, 1}}},
	    {"uneven weights, 3 variations",
	     3,
	     1,
	     3,
	     {0.2, 0.3, 0.5},
	     {{0, 0.2}, {0.2, 0.5}, {0.5, 1}}},
	    {"uneven weights, reduced coverage, 3 variations",
	     3,
	     0.2,
	     3,
	     {0.2, 0.3, 0.5},
	     {{0, 0.04}, {0.2, 0.26}, {0.5, 0.6}}},
	    {"negative coverage", 2, -0.2, 0, {0}, {{0, 0}, {0.5, 0.5}}},
	    {"coverage above 1", 2, 1.5, 0, {0}, {{0, 0.5}, {0.5, 1}}},
	    {"weights sum below 1", 2, 1, 2, {0.4, 0.1}, {{0, 0.5}, {0.5, 1}}},
	    {"weights sum above 1", 2, 1, 2, {0.7, 0.6}, {{0, 0.5}, {0.5, 1}}},
	    {"weights.length not equal to num variations",
	     4,
	     1,
	     3,
	     {0.4, 0.4, 0.2},
	     {{0, 0.25}, {0.25, 0.5}, {0.5, 0.75}, {0.75, 1}}},
	    {"weights sum almost equals 1", 2, 1, 2, {0.4, 0.5999}, {{0, 0.4}, {0.4, 0.9999}}},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double lo[4], hi[4];
		sdkhash_growthbook_ranges(cases[i].n, cases[i].coverage,
					  cases[i].nweights ? cases[i].weights : NULL,
					  cases[i].nweights, lo, hi);
		for (size_t k = 0; k < cases[i].n; k++) {
			/* the SDKs' own tests compare these floating-point sums to ~1e-9 */
			bool ok = fabs(lo[k] - cases[i].want[k][0]) < 1e-9 &&
				  fabs(hi[k] - cases[i].want[k][1]) < 1e-9;
			if (!ok)
				fprintf(stderr, "getBucketRange \"%s\" range %zu: [%g, %g)\n",
					cases[i].name, k, lo[k], hi[k]);
			CHECK(ok);
		}
	}
	/* chooseVariation over the ranges: an end is not inclusive, gaps choose nothing */
	double lo[2] = {0, 0.5}, hi[2] = {0.25, 0.75};
	CHECK_INT(sdkhash_growthbook_choose(0.2, 2, lo, hi), 0);
	CHECK_INT(sdkhash_growthbook_choose(0.25, 2, lo, hi), -1);
	CHECK_INT(sdkhash_growthbook_choose(0.5, 2, lo, hi), 1);
	CHECK_INT(sdkhash_growthbook_choose(0.8, 2, lo, hi), -1);
}

/*
 * MurmurHash3 x86_32: the reference implementation's well-known values (empty input with seeds 0
 * and 1, and two strings with seed 0x9747b28c), then a split across pieces.
 */
static void test_murmur3(void)
{
	CHECK(sdkhash_murmur3_32(0, S(""), NULL, 0, NULL, 0) == 0);
	CHECK(sdkhash_murmur3_32(1, S(""), NULL, 0, NULL, 0) == 0x514e28b7u);
	CHECK(sdkhash_murmur3_32(0xffffffffu, S(""), NULL, 0, NULL, 0) == 0x81f16f39u);
	CHECK(sdkhash_murmur3_32(0, "\0\0\0\0", 4, NULL, 0, NULL, 0) == 0x2362f9deu);
	CHECK(sdkhash_murmur3_32(0x9747b28cu, S("aaaa"), NULL, 0, NULL, 0) == 0x5a97808au);
	CHECK(sdkhash_murmur3_32(0x9747b28cu, S("Hello, world!"), NULL, 0, NULL, 0) == 0x24884cbau);
	CHECK(sdkhash_murmur3_32(0x9747b28cu, S("The quick brown fox jumps over the lazy dog"),
				 NULL, 0, NULL, 0) == 0x2fa826cdu);
	/* streaming: every split of one input into three pieces gives the one-buffer value */
	const char *t = "The quick brown fox jumps over the lazy dog";
	size_t n = strlen(t);
	uint32_t whole = sdkhash_murmur3_32(7, t, n, NULL, 0, NULL, 0);
	int bad = 0;
	for (size_t i = 0; i <= n; i++)
		for (size_t j = i; j <= n; j++)
			bad += sdkhash_murmur3_32(7, t, i, t + i, j - i, t + j, n - j) != whole;
	CHECK_INT(bad, 0);
}

/* FNV-1a 32: the published FNV test values for "" and "a". */
static void test_fnv32a(void)
{
	CHECK(sdkhash_fnv32a(SDKHASH_FNV32_OFFSET, "", 0) == 0x811c9dc5u);
	CHECK(sdkhash_fnv32a(SDKHASH_FNV32_OFFSET, "a", 1) == 0xe40c292cu);
	CHECK(sdkhash_fnv32a(SDKHASH_FNV32_OFFSET, "foobar", 6) == 0xbf9cf968u);
}

/*
 * Unleash: Unleash/client-specification, specifications/10-flexible-rollout-strategy.json (the
 * gradual rollout: enabled when normalizedValue(groupId, userId) <= rollout);
 * specifications/08-variants.json as stored at commit 0b657999 (variant choice by the weights,
 * groupId = the feature name), written before the clients' new variant hashing, so with the
 * legacy seed 0; and specifications/16-strategy-variants.json at commit 0a874cfb (strategy
 * variants, groupId "a"), which current clients meet with the variant seed 86028157.
 */
static void test_unleash(void)
{
	const uint32_t L = SDKHASH_UNLEASH_LEGACY_VARIANT_SEED, V = SDKHASH_UNLEASH_VARIANT_SEED;

	CHECK(sdkhash_unleash_normalized(S("Feature.flexibleRollout.10"), S("174"), 100, 0) <= 10);
	CHECK(sdkhash_unleash_normalized(S("Feature.flexibleRollout.10"), S("499"), 100, 0) > 10);
	CHECK(sdkhash_unleash_normalized(S("Feature.flexibleRollout.userId.55"), S("25"), 100, 0) <=
	      55);
	CHECK(sdkhash_unleash_normalized(S("Feature.flexibleRollout.sessionId.42"), S("147"), 100,
					 0) <= 42);

	static const uint32_t a[] = {1}, b[] = {1, 1}, c[] = {33, 33, 33}, d[] = {1, 49, 50},
			      od[] = {33, 33, 34};
	CHECK_INT(sdkhash_unleash_variant(S("Feature.Variants.A"), S("0"), a, 1, L), 0);
	CHECK_INT(sdkhash_unleash_variant(S("Feature.Variants.B"), S("2"), b, 2, L), 0);
	CHECK_INT(sdkhash_unleash_variant(S("Feature.Variants.B"), S("0"), b, 2, L), 1);
	CHECK_INT(sdkhash_unleash_variant(S("Feature.Variants.C"), S("315"), c, 3, L), 0);
	CHECK_INT(sdkhash_unleash_variant(S("Feature.Variants.C"), S("320"), c, 3, L), 1);
	CHECK_INT(sdkhash_unleash_variant(S("Feature.Variants.C"), S("729"), c, 3, L), 2);
	CHECK_INT(sdkhash_unleash_variant(S("Feature.Variants.D"), S("367"), d, 3, L), 0);
	CHECK_INT(sdkhash_unleash_variant(S("Feature.Variants.D"), S("31"), d, 3, L), 1);
	CHECK_INT(sdkhash_unleash_variant(S("Feature.Variants.D"), S("19"), d, 3, L), 2);
	/* user 82 of Feature.Variants.override.D has no override: hashed to variant2 */
	CHECK_INT(sdkhash_unleash_variant(S("Feature.Variants.override.D"), S("82"), od, 3, L), 1);
	CHECK_INT(sdkhash_unleash_variant(S("x"), S("1"), (const uint32_t[]){0, 0}, 2, L), -1);
	/* 16-strategy-variants.json: Feature.strategy.multiple.variants and .numeric.variants */
	CHECK_INT(sdkhash_unleash_variant(S("a"), S("5"), b, 2, V), 0);
	CHECK_INT(sdkhash_unleash_variant(S("a"), S("0"), b, 2, V), 1);
	CHECK_INT(sdkhash_unleash_variant(S("a"), S("0"), a, 1, V), 0);
	CHECK_INT(V, 86028157);
}

/*
 * Optimizely: the bucketer values every Optimizely SDK reproduces, as in optimizely/swift-sdk,
 * OptimizelySDK/OptimizelyTests/OptimizelyTests-Common/BucketTests_Base.swift
 * (testHashIsCompliant; the same five cases as the other SDKs' bucketer tests).
 */
static void test_optimizely(void)
{
	CHECK_INT(sdkhash_optimizely_bucket(S("ppid1"), S("1886780721")), 5254);
	CHECK_INT(sdkhash_optimizely_bucket(S("ppid2"), S("1886780721")), 4299);
	CHECK_INT(sdkhash_optimizely_bucket(S("ppid2"), S("1886780722")), 2434);
	CHECK_INT(sdkhash_optimizely_bucket(S("ppid3"), S("1886780721")), 5439);
	CHECK_INT(sdkhash_optimizely_bucket(S("a very very very very very very very very very very "
					      "very very very very very long ppd string"),
					    S("1886780721")),
		  6128);
}

/*
 * LaunchDarkly: launchdarkly/python-server-sdk, ldclient/testing/impl/test_evaluator_bucketing.py
 * (test_bucket_by_user_key and test_bucket_by_user_key_with_seed; the file compares with
 * pytest.approx, a relative 1e-6).
 */
static void test_launchdarkly(void)
{
	char p[64];
	int n = sdkhash_launchdarkly_prefix("hashKey", "saltyA", false, 0, p, sizeof(p));
	CHECK_STR(p, "hashKey.saltyA");
	CHECK_REL(sdkhash_launchdarkly(p, (size_t)n, S("userKeyA")), 0.42157587, 1e-6);
	CHECK_REL(sdkhash_launchdarkly(p, (size_t)n, S("userKeyB")), 0.6708485, 1e-6);
	CHECK_REL(sdkhash_launchdarkly(p, (size_t)n, S("userKeyC")), 0.10343106, 1e-6);
	n = sdkhash_launchdarkly_prefix("hashKey", "saltyA", true, 61, p, sizeof(p));
	CHECK_STR(p, "61");
	CHECK_REL(sdkhash_launchdarkly(p, (size_t)n, S("userKeyA")), 0.09801207, 1e-6);
	CHECK_REL(sdkhash_launchdarkly(p, (size_t)n, S("userKeyB")), 0.14483777, 1e-6);
	CHECK_REL(sdkhash_launchdarkly(p, (size_t)n, S("userKeyC")), 0.9242641, 1e-6);
	CHECK_INT(sdkhash_launchdarkly_prefix("k", "s", false, 0, p, 3), -1);
}

/*
 * Statsig: statsig-io/statsig-server-core, statsig-rust/tests/hash_util_evaluation_hash_tests.rs
 * (the first 8 bytes of SHA-256, big-endian).
 */
static void test_statsig(void)
{
	CHECK(sdkhash_statsig(S(""), NULL, 0, NULL, 0) == 0xE3B0C44298FC1C14ull);
	CHECK(sdkhash_statsig(S("blargh"), NULL, 0, NULL, 0) == 0x0AC33512D18E20D5ull);
	CHECK(sdkhash_statsig(S("\xF0\x9F\x97\xBB"), NULL, 0, NULL, 0) == 0x1DDBF4EA8DAE91E5ull);
	CHECK(sdkhash_statsig(S("unicode \xF0\x9F\x97\xBB"), NULL, 0, NULL, 0) ==
	      0xD460740C12959D83ull);
	/* pieces stream into one digest */
	CHECK(sdkhash_statsig(S("bl"), S("ar"), S("gh")) == 0x0AC33512D18E20D5ull);
}

/* Eppo: Eppo-exp/python-sdk, test/sharders_test.py (test_md5_sharder, 10000 shards). */
static void test_eppo(void)
{
	CHECK_INT(sdkhash_eppo_shard(S("test-input"), NULL, 0, NULL, 0, 10000), 5619);
	CHECK_INT(sdkhash_eppo_shard(S("alice"), NULL, 0, NULL, 0, 10000), 3170);
	CHECK_INT(sdkhash_eppo_shard(S("bob"), NULL, 0, NULL, 0, 10000), 7420);
	CHECK_INT(sdkhash_eppo_shard(S("charlie"), NULL, 0, NULL, 0, 10000), 7497);
	CHECK_INT(sdkhash_eppo_shard(S("test"), S("-"), S("input"), 10000), 5619);
}

/* The digests the modes need are there (conf refuses a mode whose digest is not). */
static void test_digests(void)
{
	CHECK(sdkhash_digest_works("SHA1"));
	CHECK(sdkhash_digest_works("SHA256"));
	CHECK(sdkhash_digest_works("MD5"));
	CHECK(!sdkhash_digest_works("SHA512"));
}

int main(void)
{
	test_digests();
	test_growthbook_hash();
	test_growthbook_ranges();
	test_murmur3();
	test_fnv32a();
	test_unleash();
	test_optimizely();
	test_launchdarkly();
	test_statsig();
	test_eppo();
	return check_summary("test_sdkhash");
}
