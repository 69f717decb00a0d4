/*
 * router.c - cohort hashing, experiment matching and unit extraction (see include/router.h).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "rollout.h"
#include "router.h"
#include "sdkhash.h"

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static inline uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= FNV_PRIME;
	}
	return h;
}

/* FNV-1a alone mixes its last bytes poorly into the low bits that "mod 10000" keeps; the
 * finalizer spreads every input bit over the whole word. */
static inline uint64_t fmix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

uint64_t router_hash(const void *data, size_t len)
{
	return fmix64(fnv1a(FNV_OFFSET, data, len));
}

uint64_t router_unit_hash(const char *salt, size_t salt_len, const char *unit, size_t unit_len)
{
	uint64_t h = fnv1a(FNV_OFFSET, (const unsigned char *)salt, salt_len);
	h = fnv1a(h, (const unsigned char *)":", 1);
	h = fnv1a(h, (const unsigned char *)unit, unit_len);
	return fmix64(h);
}

uint32_t router_bucket(const char *salt, size_t salt_len, const char *unit, size_t unit_len)
{
	return (uint32_t)(router_unit_hash(salt, salt_len, unit, unit_len) % CONF_BUCKETS);
}

const struct conf_variant *router_variant_at(const struct conf_experiment *e, uint32_t bucket)
{
	for (size_t i = 0; i < e->nvariants; i++)
		if (bucket < e->variants[i].hi)
			return &e->variants[i];
	return &e->variants[e->nvariants - 1];
}

/* The variant owning position x of a mode whose ranges are contiguous from 0 in declared order
 * (zero-weight variants have empty ranges), or NULL past the last one. */
static const struct conf_variant *contiguous_at(const struct conf_experiment *e, double x)
{
	for (size_t i = 0; i < e->nvariants; i++)
		if (x < e->variants[i].range_hi)
			return &e->variants[i];
	return NULL;
}

/* The SDK modes of router_assign(); the formulas are in sdkhash.h and README.md. */
static const struct conf_variant *sdk_assign(const struct conf_experiment *e, const char *unit,
					     size_t len)
{
	const struct conf_hash *h = &e->hash;
	const struct conf_variant *v;

	switch (h->mode) {
	case CONF_HASH_GROWTHBOOK: {
		double x = sdkhash_growthbook(h->version, h->text, h->text_len, unit, len);
		/* GrowthBook's ranges leave gaps when coverage < 1: those units are not in it */
		for (size_t i = 0; i < e->nvariants; i++)
			if (x >= e->variants[i].range_lo && x < e->variants[i].range_hi)
				return &e->variants[i];
		return NULL;
	}
	case CONF_HASH_UNLEASH: {
		uint32_t mm = sdkhash_murmur3_32(0, h->text, h->text_len, ":", 1, unit, len);
		/* the gradual rollout: enabled when percentage > 0 and mm % 100 + 1 <= percentage */
		if (h->rollout == 0 || mm % 100 + 1 > h->rollout)
			return NULL;
		/* the variant hash: the same murmur3 with the legacy seed 0, else a second one */
		uint32_t x = h->variant_seed == 0
				 ? mm % h->total_shards
				 : sdkhash_unleash_normalized(h->text, h->text_len, unit, len,
							      h->total_shards, h->variant_seed) - 1;
		return contiguous_at(e, x);
	}
	case CONF_HASH_OPTIMIZELY:
		return contiguous_at(e, sdkhash_optimizely_bucket(unit, len, h->text, h->text_len));
	case CONF_HASH_LAUNCHDARKLY:
		v = contiguous_at(e, sdkhash_launchdarkly(h->text, h->text_len, unit, len));
		/* past the last sum (rounding): LaunchDarkly takes the last variation */
		return v != NULL ? v : &e->variants[e->nvariants - 1];
	case CONF_HASH_STATSIG:
		return contiguous_at(e, (double)(sdkhash_statsig(h->text, h->text_len, ".", 1, unit,
								 len) %
						 SDKHASH_STATSIG_BUCKETS));
	case CONF_HASH_EPPO:
		return contiguous_at(e, sdkhash_eppo_shard(h->text, h->text_len, "-", 1, unit, len,
							   h->total_shards));
	case CONF_HASH_ABGATE:
		break;
	}
	return NULL;
}

const struct conf_variant *router_assign_slow(const struct conf_experiment *e, const char *unit,
					      size_t len, uint64_t h)
{
	if (e->hash.mode != CONF_HASH_ABGATE)
		return sdk_assign(e, unit, len);
	uint32_t bucket = (uint32_t)(h % CONF_BUCKETS);
	if (e->rt != NULL) {
		/* a rollout's canary owns the top canary_bp buckets */
		uint32_t canary = atomic_load_explicit(&e->rt->canary_bp, memory_order_relaxed);
		return &e->variants[bucket >= CONF_BUCKETS - canary ? 1 : 0];
	}
	return router_variant_at(e, bucket);
}

/* Whether two experiments hash units identically (mode and every term that feeds the hash). */
static bool same_hash(const struct conf_experiment *a, const struct conf_experiment *b)
{
	const struct conf_hash *x = &a->hash, *y = &b->hash;

	if (x->mode != y->mode)
		return false;
	if (x->mode == CONF_HASH_ABGATE)
		return a->salt_len == b->salt_len && memcmp(a->salt, b->salt, a->salt_len) == 0;
	return x->text_len == y->text_len && memcmp(x->text, y->text, x->text_len) == 0 &&
	       x->version == y->version && x->total_shards == y->total_shards &&
	       x->variant_seed == y->variant_seed;
}

/* The size of the mode's space, for a share of units. */
static double space_of(const struct conf_experiment *e)
{
	switch (e->hash.mode) {
	case CONF_HASH_GROWTHBOOK:
	case CONF_HASH_LAUNCHDARKLY:
		return 1.0;
	case CONF_HASH_UNLEASH:
	case CONF_HASH_EPPO:
		return e->hash.total_shards;
	default:
		return CONF_BUCKETS;
	}
}

static const struct conf_variant *variant_named(const struct conf_experiment *e,
						const struct conf_variant *like)
{
	for (size_t i = 0; i < e->nvariants; i++)
		if (e->variants[i].name_len == like->name_len &&
		    memcmp(e->variants[i].name, like->name, like->name_len) == 0)
			return &e->variants[i];
	return NULL;
}

static double width(const struct conf_variant *v)
{
	return v != NULL ? v->range_hi - v->range_lo : 0;
}

bool router_ramp_moves(const struct conf_experiment *was, const struct conf_experiment *is,
		       char *msg, size_t len)
{
	if (was->rollout.enabled || is->rollout.enabled)
		return false;
	if (!same_hash(was, is)) {
		snprintf(msg, len,
			 "the hash's terms change (mode, salt, seed, key or shards): every unit is "
			 "assigned afresh, and units move between all the variants");
		return true;
	}
	const struct conf_variant *from = NULL, *to = NULL;
	bool from_shrinks = false;
	double moved = 0;
	for (size_t i = 0; i < was->nvariants; i++) {
		const struct conf_variant *x = &was->variants[i], *xn = variant_named(is, x);
		if (xn == NULL)
			continue; /* a removed variant's units must go somewhere */
		for (size_t j = 0; j < is->nvariants; j++) {
			const struct conf_variant *y = &is->variants[j];
			if (y == xn)
				continue;
			double lo = x->range_lo > y->range_lo ? x->range_lo : y->range_lo;
			double hi = x->range_hi < y->range_hi ? x->range_hi : y->range_hi;
			if (hi <= lo)
				continue;
			bool shrinks = width(xn) < width(x);
			bool grows = width(y) > width(variant_named(was, y));
			if (shrinks && grows)
				continue;
			if (from == NULL) {
				from = x;
				to = y;
				from_shrinks = shrinks;
			}
			moved += hi - lo;
		}
	}
	if (from == NULL)
		return false;
	snprintf(msg, len,
		 "the new weights move units from variant \"%s\" to \"%s\" although \"%s\" "
		 "does not %s (%.2f%% of all units move between variants this way)",
		 from->name, to->name, from_shrinks ? to->name : from->name,
		 from_shrinks ? "grow" : "shrink", 100.0 * moved / space_of(is));
	return true;
}

size_t router_ramp_check(const struct conf *was, const struct conf *is, router_ramp_cb cb,
			 void *arg)
{
	size_t n = 0;
	char msg[512];

	for (size_t i = 0; i < is->nexperiments; i++) {
		const struct conf_experiment *e = &is->experiments[i];
		const struct conf_experiment *old = conf_experiment_find(was, e->name);
		if (old != NULL && router_ramp_moves(old, e, msg, sizeof(msg))) {
			cb(arg, e, msg);
			n++;
		}
	}
	return n;
}

/* Host without port, compared case-insensitively. */
static bool host_matches(const char *want, size_t wl, const char *buf, struct http_span v)
{
	const char *p = buf + v.off;
	size_t len = v.len;

	if (len > 0 && p[0] != '[') {
		const char *colon = memchr(p, ':', len);
		if (colon != NULL)
			len = (size_t)(colon - p);
	}
	return len == wl && strncasecmp(p, want, len) == 0;
}

const struct conf_experiment *router_match(const struct conf *c, const struct http_msg *m,
					   const char *buf)
{
	for (size_t i = 0; i < c->nexperiments; i++) {
		const struct conf_experiment *e = &c->experiments[i];
		if (e->match_path_prefix != NULL) {
			size_t pl = e->match_path_prefix_len;
			if (m->path.len < pl || memcmp(buf + m->path.off, e->match_path_prefix, pl) != 0)
				continue;
		}
		if (e->match_method != NULL) {
			size_t ml = e->match_method_len;
			if (m->method_s.len != ml || memcmp(buf + m->method_s.off, e->match_method, ml) != 0)
				continue;
		}
		if (e->match_host != NULL) {
			if (m->host_idx < 0 || !host_matches(e->match_host, e->match_host_len, buf,
							     m->hdr[m->host_idx].value))
				continue;
		}
		return e;
	}
	return NULL;
}

bool router_cookie(const struct http_msg *m, const char *buf, const char *name, size_t name_len,
		   const char **value, size_t *len)
{
	for (uint32_t i = 0; i < m->nhdr; i++) {
		if (!http_span_ieq(buf, m->hdr[i].name, "cookie", 6))
			continue;
		const char *p = buf + m->hdr[i].value.off;
		const char *end = p + m->hdr[i].value.len;
		while (p < end) {
			while (p < end && (*p == ' ' || *p == ';'))
				p++;
			const char *semi = memchr(p, ';', (size_t)(end - p));
			const char *pair_end = semi ? semi : end;
			const char *eq = memchr(p, '=', (size_t)(pair_end - p));
			if (eq != NULL && (size_t)(eq - p) == name_len && memcmp(p, name, name_len) == 0) {
				const char *v = eq + 1;
				size_t vl = (size_t)(pair_end - v);
				while (vl > 0 && v[vl - 1] == ' ')
					vl--;
				if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
					v++;
					vl -= 2;
				}
				if (vl == 0)
					return false;
				*value = v;
				*len = vl;
				return true;
			}
			p = pair_end;
		}
	}
	return false;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Finds name=value in a query string; decodes %XX and '+' into scratch when present. */
static bool query_param(const char *q, size_t qlen, const char *name, size_t name_len,
			char *scratch, size_t cap, const char **value, size_t *len)
{
	const char *p = q, *end = q + qlen;

	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *pe = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(pe - p));
		if (eq != NULL && (size_t)(eq - p) == name_len && memcmp(p, name, name_len) == 0) {
			const char *v = eq + 1;
			size_t vl = (size_t)(pe - v);
			if (vl == 0)
				return false;
			if (memchr(v, '%', vl) == NULL && memchr(v, '+', vl) == NULL) {
				*value = v;
				*len = vl;
				return true;
			}
			size_t o = 0;
			for (size_t i = 0; i < vl; i++) {
				int c = (unsigned char)v[i];
				if (c == '+') {
					c = ' ';
				} else if (c == '%' && i + 2 < vl && hexval(v[i + 1]) >= 0 &&
					   hexval(v[i + 2]) >= 0) {
					c = hexval(v[i + 1]) * 16 + hexval(v[i + 2]);
					i += 2;
				}
				if (o >= cap)
					return false;
				scratch[o++] = (char)c;
			}
			if (o == 0)
				return false;
			*value = scratch;
			*len = o;
			return true;
		}
		p = pe + 1;
	}
	return false;
}

bool router_unit(const struct conf_experiment *e, const struct http_msg *m, const char *buf,
		 char *scratch, size_t scratch_cap, const char **unit, size_t *len)
{
	size_t nl = e->unit_name_len;

	switch (e->unit) {
	case CONF_UNIT_HEADER: {
		int i = http_find_header(m, buf, e->unit_name, nl);
		if (i < 0 || m->hdr[i].value.len == 0)
			return false;
		*unit = buf + m->hdr[i].value.off;
		*len = m->hdr[i].value.len;
		return true;
	}
	case CONF_UNIT_COOKIE:
		return router_cookie(m, buf, e->unit_name, nl, unit, len);
	case CONF_UNIT_QUERY:
		return query_param(buf + m->query.off, m->query.len, e->unit_name, nl, scratch,
				   scratch_cap, unit, len);
	}
	return false;
}
