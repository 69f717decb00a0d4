/*
 * sdkhash.c - the experimentation SDKs' hashes and bucket rules (see include/sdkhash.h).
 *
 * FNV-1a 32 and MurmurHash3 x86_32 are written out here from their definitions; SHA-1, SHA-256
 * and MD5 come from OpenSSL's EVP interface. Inputs are taken as pieces (salt, separator, unit)
 * and streamed into the hash, so the request path never builds the concatenation.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "sdkhash.h"

/* ---- FNV-1a 32 ---------------------------------------------------------------------------- */

uint32_t sdkhash_fnv32a(uint32_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x01000193u;
	}
	return h;
}

/* ---- MurmurHash3 x86_32, streamed ---------------------------------------------------------- */

struct mm3 {
	uint32_t h;
	uint32_t len; /* bytes seen; the algorithm mixes in the length mod 2^32 */
	unsigned char tail[4];
	size_t ntail; /* bytes waiting in tail for a whole 4-byte block */
};

static inline uint32_t rotl32(uint32_t x, int r)
{
	return (x << r) | (x >> (32 - r));
}

static inline uint32_t mm3_scramble(uint32_t k)
{
	k *= 0xcc9e2d51u;
	k = rotl32(k, 15);
	return k * 0x1b873593u;
}

/* Blocks are read little-endian, as the reference implementation does on x86. */
static inline uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void mm3_block(struct mm3 *m, uint32_t k)
{
	m->h ^= mm3_scramble(k);
	m->h = rotl32(m->h, 13);
	m->h = m->h * 5 + 0xe6546b64u;
}

static void mm3_update(struct mm3 *m, const unsigned char *p, size_t len)
{
	m->len += (uint32_t)len;
	if (m->ntail > 0) {
		while (len > 0 && m->ntail < 4) {
			m->tail[m->ntail++] = *p++;
			len--;
		}
		if (m->ntail < 4)
			return;
		mm3_block(m, le32(m->tail));
		m->ntail = 0;
	}
	for (; len >= 4; p += 4, len -= 4)
		mm3_block(m, le32(p));
	memcpy(m->tail, p, len);
	m->ntail = len;
}

static uint32_t mm3_final(struct mm3 *m)
{
	uint32_t k = 0, h;

	switch (m->ntail) {
	case 3:
		k ^= (uint32_t)m->tail[2] << 16;
		/* fall through */
	case 2:
		k ^= (uint32_t)m->tail[1] << 8;
		/* fall through */
	case 1:
		k ^= m->tail[0];
		m->h ^= mm3_scramble(k);
	}
	h = m->h ^ m->len;
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

uint32_t sdkhash_murmur3_32(uint32_t seed, const void *a, size_t alen, const void *b, size_t blen,
			    const void *c, size_t clen)
{
	struct mm3 m = {.h = seed};

	mm3_update(&m, a, alen);
	if (blen > 0)
		mm3_update(&m, b, blen);
	if (clen > 0)
		mm3_update(&m, c, clen);
	return mm3_final(&m);
}

/* ---- OpenSSL digests ------------------------------------------------------------------------ */

/* The digests are fetched once for the process; each thread keeps one context (freed by the
 * key's destructor when the thread ends), so a request allocates nothing. */
static const EVP_MD *md_sha1, *md_sha256, *md_md5;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static pthread_key_t md_key;

static void md_ctx_free(void *p)
{
	EVP_MD_CTX_free(p);
}

static void md_init(void)
{
	md_sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
	md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	md_md5 = EVP_MD_fetch(NULL, "MD5", NULL);
	if (pthread_key_create(&md_key, md_ctx_free) != 0) {
		md_sha1 = md_sha256 = md_md5 = NULL;
	}
}

/*
 * The digest of the pieces a b c into out (EVP_MAX_MD_SIZE bytes). Returns false when OpenSSL
 * cannot compute it (the digest is not offered, or out of memory); out is then zero.
 */
static bool digest3(const EVP_MD **which, const void *a, size_t alen, const void *b, size_t blen,
		    const void *c, size_t clen, unsigned char *out)
{
	EVP_MD_CTX *ctx;

	pthread_once(&md_once, md_init);
	if (*which == NULL)
		goto fail;
	if ((ctx = pthread_getspecific(md_key)) == NULL) {
		if ((ctx = EVP_MD_CTX_new()) == NULL)
			goto fail;
		if (pthread_setspecific(md_key, ctx) != 0) {
			EVP_MD_CTX_free(ctx);
			goto fail;
		}
	}
	if (EVP_DigestInit_ex2(ctx, *which, NULL) == 1 && EVP_DigestUpdate(ctx, a, alen) == 1 &&
	    (blen == 0 || EVP_DigestUpdate(ctx, b, blen) == 1) &&
	    (clen == 0 || EVP_DigestUpdate(ctx, c, clen) == 1) &&
	    EVP_DigestFinal_ex(ctx, out, NULL) == 1)
		return true;
fail:
	/* the TLS module reads this thread's OpenSSL error queue: leave nothing of ours in it */
	ERR_clear_error();
	memset(out, 0, EVP_MAX_MD_SIZE);
	return false;
}

static inline uint64_t be64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

bool sdkhash_digest_works(const char *name)
{
	static const struct {
		const char *name;
		const EVP_MD **md;
		uint64_t empty; /* the first 8 bytes of the digest of "" */
	} known[] = {
	    {"SHA1", &md_sha1, 0xda39a3ee5e6b4b0dull},
	    {"SHA256", &md_sha256, 0xe3b0c44298fc1c14ull},
	    {"MD5", &md_md5, 0xd41d8cd98f00b204ull},
	};
	unsigned char md[EVP_MAX_MD_SIZE];

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(name, known[i].name) == 0)
			return digest3(known[i].md, "", 0, NULL, 0, NULL, 0, md) &&
			       be64(md) == known[i].empty;
	return false;
}

/* ---- GrowthBook ----------------------------------------------------------------------------- */

double sdkhash_growthbook(int version, const char *seed, size_t seed_len, const char *value,
			  size_t value_len)
{
	if (version == 1) {
		uint32_t h = sdkhash_fnv32a(SDKHASH_FNV32_OFFSET, value, value_len);
		h = sdkhash_fnv32a(h, seed, seed_len);
		return (double)(h % 1000) / 1000.0;
	}
	if (version == 2) {
		char dec[10]; /* the decimal digits of a uint32, written from the end */
		size_t n = 0;
		uint32_t h = sdkhash_fnv32a(SDKHASH_FNV32_OFFSET, seed, seed_len);
		h = sdkhash_fnv32a(h, value, value_len);
		do {
			dec[sizeof(dec) - 1 - n++] = (char)('0' + h % 10);
			h /= 10;
		} while (h != 0);
		h = sdkhash_fnv32a(SDKHASH_FNV32_OFFSET, dec + sizeof(dec) - n, n);
		return (double)(h % 10000) / 10000.0;
	}
	return -1;
}

void sdkhash_growthbook_ranges(size_t n, double coverage, const double *weights, size_t nweights,
			       double *lo, double *hi)
{
	bool equal = weights == NULL || nweights != n;

	if (coverage < 0)
		coverage = 0;
	if (coverage > 1)
		coverage = 1;
	if (!equal) {
		double sum = 0;
		for (size_t i = 0; i < n; i++)
			sum += weights[i];
		equal = sum < 0.99 || sum > 1.01;
	}
	/* the same operations in the same order as the SDKs, so the doubles agree bit for bit */
	double cum = 0;
	for (size_t i = 0; i < n; i++) {
		double w = equal ? 1.0 / (double)n : weights[i];
		lo[i] = cum;
		cum += w;
		hi[i] = lo[i] + coverage * w;
	}
}

int sdkhash_growthbook_choose(double x, size_t n, const double *lo, const double *hi)
{
	for (size_t i = 0; i < n; i++)
		if (x >= lo[i] && x < hi[i])
			return (int)i;
	return -1;
}

/* ---- Unleash -------------------------------------------------------------------------------- */

uint32_t sdkhash_unleash_normalized(const char *group, size_t group_len, const char *id,
				    size_t id_len, uint32_t normalizer, uint32_t seed)
{
	uint32_t h = sdkhash_murmur3_32(seed, group, group_len, ":", 1, id, id_len);
	return h % normalizer + 1;
}

int sdkhash_unleash_variant(const char *group, size_t group_len, const char *id, size_t id_len,
			    const uint32_t *weights, size_t n, uint32_t seed)
{
	uint32_t total = 0, counter = 0;

	for (size_t i = 0; i < n; i++)
		total += weights[i];
	if (total == 0)
		return -1;
	uint32_t target = sdkhash_unleash_normalized(group, group_len, id, id_len, total, seed);
	for (size_t i = 0; i < n; i++) {
		if (weights[i] == 0)
			continue;
		counter += weights[i];
		if (counter >= target)
			return (int)i;
	}
	return -1;
}

/* ---- Optimizely ----------------------------------------------------------------------------- */

uint32_t sdkhash_optimizely_bucket(const char *id, size_t id_len, const char *experiment_id,
				   size_t experiment_id_len)
{
	uint32_t h = sdkhash_murmur3_32(SDKHASH_OPTIMIZELY_SEED, id, id_len, experiment_id,
					experiment_id_len, NULL, 0);
	/* h * 10000 < 2^46, so the SDKs' floating-point floor(h / 2^32 * 10000) is exact and
	 * equals this integer form */
	return (uint32_t)(((uint64_t)h * SDKHASH_OPTIMIZELY_BUCKETS) >> 32);
}

/* ---- LaunchDarkly --------------------------------------------------------------------------- */

int sdkhash_launchdarkly_prefix(const char *key, const char *salt, bool has_seed, int64_t seed,
				char *buf, size_t cap)
{
	int n = has_seed ? snprintf(buf, cap, "%" PRId64, seed)
			 : snprintf(buf, cap, "%s.%s", key, salt);
	return n >= 0 && (size_t)n < cap ? n : -1;
}

double sdkhash_launchdarkly(const char *prefix, size_t prefix_len, const char *value,
			    size_t value_len)
{
	unsigned char md[EVP_MAX_MD_SIZE];

	digest3(&md_sha1, prefix, prefix_len, ".", 1, value, value_len, md);
	/* 15 hex digits are the first 60 bits */
	uint64_t v = be64(md) >> 4;
	return (double)v / (double)0xFFFFFFFFFFFFFFFull;
}

/* ---- Statsig and Eppo ----------------------------------------------------------------------- */

uint64_t sdkhash_statsig(const void *a, size_t alen, const void *b, size_t blen, const void *c,
			 size_t clen)
{
	unsigned char md[EVP_MAX_MD_SIZE];

	digest3(&md_sha256, a, alen, b, blen, c, clen, md);
	return be64(md);
}

uint32_t sdkhash_eppo_shard(const void *a, size_t alen, const void *b, size_t blen, const void *c,
			    size_t clen, uint32_t total_shards)
{
	unsigned char md[EVP_MAX_MD_SIZE];

	digest3(&md_md5, a, alen, b, blen, c, clen, md);
	uint32_t v = (uint32_t)md[0] << 24 | (uint32_t)md[1] << 16 | (uint32_t)md[2] << 8 | md[3];
	return v % total_shards;
}
