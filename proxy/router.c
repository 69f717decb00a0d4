/*
 * router.c - cohort hashing, experiment matching and unit extraction (see include/router.h).
 */
#include <string.h>
#include <strings.h>

#include "rollout.h"
#include "router.h"

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

const struct conf_variant *router_assign(const struct conf_experiment *e, uint64_t unit_hash)
{
	uint32_t bucket = (uint32_t)(unit_hash % CONF_BUCKETS);

	if (e->rt != NULL) {
		uint32_t canary = atomic_load_explicit(&e->rt->canary_bp, memory_order_relaxed);
		return &e->variants[bucket >= CONF_BUCKETS - canary ? 1 : 0];
	}
	return router_variant_at(e, bucket);
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
