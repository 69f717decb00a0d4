/*
 * sdkhash.h - the hashes and bucket rules of the experimentation SDKs that abgate can agree
 * with (GrowthBook, Unleash, Optimizely, LaunchDarkly, Statsig, Eppo), each as its SDKs document
 * and test it, so that the proxy assigns a user the variant the application's SDK assigns.
 *
 * Every function here is pure: bytes in, a number out, no allocation (SHA-1, SHA-256 and MD5
 * come from OpenSSL's EVP interface through one digest context per thread). The router
 * (router_assign) is the only caller on the request path; conf uses the range helpers to compile
 * the weights. README.md ("Assignment that agrees with an SDK") gives the formulas.
 */
#ifndef ABGATE_SDKHASH_H
#define ABGATE_SDKHASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The SDK modes' fixed numbers. Unleash's clients hash variants with seed 86028157 since the
 * releases of late 2023 that announced "new variant hashing" (client specification change 68);
 * earlier releases used seed 0, as the gradual rollout does. */
#define SDKHASH_UNLEASH_VARIANT_SEED 86028157u
#define SDKHASH_UNLEASH_LEGACY_VARIANT_SEED 0u
#define SDKHASH_OPTIMIZELY_SEED 1u
#define SDKHASH_OPTIMIZELY_BUCKETS 10000u
#define SDKHASH_STATSIG_BUCKETS 10000u

/* 32-bit FNV-1a of len bytes, continuing from h (start with SDKHASH_FNV32_OFFSET). */
#define SDKHASH_FNV32_OFFSET 0x811c9dc5u
uint32_t sdkhash_fnv32a(uint32_t h, const void *data, size_t len);

/*
 * MurmurHash3 x86_32 of the concatenation of up to three pieces (b and c may be NULL with
 * length 0), with seed. Streaming over the pieces gives the same value as hashing one buffer.
 */
uint32_t sdkhash_murmur3_32(uint32_t seed, const void *a, size_t alen, const void *b, size_t blen,
			    const void *c, size_t clen);

/*
 * GrowthBook's hash(seed, value, version): version 1 is fnv32a(value seed) % 1000 / 1000,
 * version 2 fnv32a(decimal(fnv32a(seed value))) % 10000 / 10000. Returns the value in [0, 1),
 * or -1 for any other version (GrowthBook returns null: the user is not in the experiment).
 */
double sdkhash_growthbook(int version, const char *seed, size_t seed_len, const char *value,
			  size_t value_len);

/*
 * GrowthBook's getBucketRanges(n, coverage, weights): coverage is clamped to [0, 1]; weights
 * (NULL, or n of them) fall back to equal weights when absent, of another length or summing
 * outside [0.99, 1.01]; range i is [c_i, c_i + coverage * w_i) where c_i sums the weights
 * before it. Writes n pairs into lo[] and hi[].
 */
void sdkhash_growthbook_ranges(size_t n, double coverage, const double *weights, size_t nweights,
			       double *lo, double *hi);

/* GrowthBook's chooseVariation: the first i with lo[i] <= x < hi[i], or -1. */
int sdkhash_growthbook_choose(double x, size_t n, const double *lo, const double *hi);

/*
 * Unleash's normalizedValue: murmur3_32(groupId ":" id, seed) % normalizer + 1, so 1..normalizer.
 * The gradual rollout uses seed 0 and normalizer 100 (enabled when the value is at most the
 * rollout percentage); variants use SDKHASH_UNLEASH_VARIANT_SEED (or the legacy 0) and the
 * weights' total.
 */
uint32_t sdkhash_unleash_normalized(const char *group, size_t group_len, const char *id,
				    size_t id_len, uint32_t normalizer, uint32_t seed);

/*
 * Unleash's variant choice over weights[0..n): the first variant with a non-zero weight whose
 * running total reaches normalized(group, id, total, seed). Returns its index, or -1 when the
 * weights sum to 0.
 */
int sdkhash_unleash_variant(const char *group, size_t group_len, const char *id, size_t id_len,
			    const uint32_t *weights, size_t n, uint32_t seed);

/* Optimizely's bucket value: floor(murmur3_32(bucketing_id experiment_id, 1) * 10000 / 2^32). */
uint32_t sdkhash_optimizely_bucket(const char *id, size_t id_len, const char *experiment_id,
				   size_t experiment_id_len);

/*
 * LaunchDarkly's bucket: the first 15 hex digits of SHA-1(prefix "." value) divided by
 * 0xFFFFFFFFFFFFFFF, in [0, 1]. The prefix is key "." salt, or the decimal seed when the rollout
 * has one; sdkhash_launchdarkly_prefix() writes it into buf (cap bytes) and returns its length,
 * or -1 when it does not fit.
 */
int sdkhash_launchdarkly_prefix(const char *key, const char *salt, bool has_seed, int64_t seed,
				char *buf, size_t cap);
double sdkhash_launchdarkly(const char *prefix, size_t prefix_len, const char *value,
			    size_t value_len);

/*
 * Statsig's hash: the first 8 bytes of SHA-256 over the concatenation of the pieces a b c,
 * big-endian (b and c may be NULL with length 0). Statsig buckets salt "." unit with it.
 */
uint64_t sdkhash_statsig(const void *a, size_t alen, const void *b, size_t blen, const void *c,
			 size_t clen);

/*
 * Eppo's shard: the first 4 bytes of MD5 over the concatenation of the pieces, big-endian,
 * mod total_shards (> 0). Eppo shards salt "-" subject_key.
 */
uint32_t sdkhash_eppo_shard(const void *a, size_t alen, const void *b, size_t blen, const void *c,
			    size_t clen, uint32_t total_shards);

/*
 * Whether OpenSSL computes the digest name ("SHA1", "SHA256" or "MD5") here, checked against
 * the digest of the empty input. conf refuses a mode whose digest is missing (a FIPS-only
 * provider has no MD5, for one) rather than assigning every unit the same bucket.
 */
bool sdkhash_digest_works(const char *name);

#endif
