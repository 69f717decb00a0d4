/*
 * test_router.c - the cohort hash's published vectors, exact splits for fixed key sequences,
 * experiment matching and unit extraction (proxy/router.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "conf.h"
#include "http.h"
#include "rollout.h"
#include "router.h"

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
		uint64_t h = router_unit_hash(e->salt, strlen(e->salt), unit, (size_t)n);
		control += router_assign(e, h) == &e->variants[0];
		CHECK(router_assign(e, h) == router_variant_at(e, (uint32_t)(h % 10000)));
	}
	CHECK_INT(control, 7971);
	e->rt = &rt;
	for (int k = 0; k < 3; k++) {
		atomic_store(&rt.canary_bp, bp[k]);
		for (int i = 0; i < 10000; i++) {
			int n = snprintf(unit, sizeof(unit), "u-%d", i);
			uint64_t h = router_unit_hash(e->salt, strlen(e->salt), unit, (size_t)n);
			const struct conf_variant *v = router_assign(e, h);
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
	test_match_and_units();
	return check_summary("test_router");
}
