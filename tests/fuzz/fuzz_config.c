/*
 * fuzz_config.c - libFuzzer driver for the configuration loader, conf_load_string()
 * (include/conf.h).
 *
 * Input: a YAML document, as is. A document that loads must compile into a generation that
 * holds together (bucket ranges that tile 0..10000, backends that exist, ascending rollout
 * steps ending at 100, each hash mode's variant ranges ascending in its space, and every
 * assignment a variant of the experiment), and is freed again. A document that fails must leave one message that
 * starts "NAME:LINE:COL: " (LINE and COL 1-based) or "NAME: ", then says something.
 *
 * Server and listener host names are resolved while loading; inputs are not filtered for them,
 * so a name that reaches the resolver costs one lookup.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "conf.h"
#include "router.h"

#define NAME "fuzz.yaml"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Skips a positive decimal number without leading zeros; returns the byte after it or NULL. */
static const char *skip_number(const char *p)
{
	if (*p < '1' || *p > '9')
		return NULL;
	while (isdigit((unsigned char)*p))
		p++;
	return p;
}

/*
 * Checks the message of a failed load of text[0..len): its prefix, and that LINE:COL points
 * into the document (at most one past its last line break; a column at most one past the
 * longest line). Line breaks are counted generously (CR, LF and the last byte of NEL, LS, PS),
 * so the bound holds however the document ends its lines.
 */
static void check_error(const char *err, size_t errlen, const uint8_t *text, size_t len)
{
	const char *p;
	unsigned long line, col, breaks = 0;

	CHECK(memchr(err, '\0', errlen) != NULL);
	CHECK(strncmp(err, NAME ":", sizeof(NAME)) == 0);
	p = err + sizeof(NAME);
	if (*p != ' ') {
		CHECK(skip_number(p) != NULL);
		line = strtoul(p, NULL, 10);
		p = skip_number(p);
		CHECK(*p++ == ':');
		CHECK(skip_number(p) != NULL);
		col = strtoul(p, NULL, 10);
		p = skip_number(p);
		CHECK(*p++ == ':');
		CHECK(*p == ' ');
		for (size_t i = 0; i < len; i++)
			breaks += text[i] == '\n' || text[i] == '\r' || text[i] == 0x85 ||
				  text[i] == 0xa8 || text[i] == 0xa9;
		CHECK(line <= breaks + 2);
		CHECK(col <= len + 2);
	}
	CHECK(p[1] != '\0' && p[1] != ' ');
}

static bool backend_of(const struct conf *c, const struct conf_backend *b)
{
	return b >= c->backends && b < c->backends + c->nbackends;
}

static void check_conf(const struct conf *c)
{
	CHECK(c->path != NULL && strcmp(c->path, NAME) == 0);
	CHECK(c->nlistens >= 1 && c->admin_addr.text != NULL);
	CHECK(c->nbackends >= 1);
	CHECK(c->default_backend == NULL || backend_of(c, c->default_backend));
	for (size_t i = 0; i < c->nbackends; i++) {
		const struct conf_backend *b = &c->backends[i];

		CHECK(b->name != NULL && b->nservers >= 1);
		CHECK(b->health_timeout_ms <= b->health_interval_ms);
		for (size_t j = 0; j < b->nservers; j++)
			CHECK(b->servers[j].addr.text != NULL && b->servers[j].addr.sslen > 0);
	}
	for (size_t i = 0; i < c->nexperiments; i++) {
		const struct conf_experiment *e = &c->experiments[i];
		uint32_t lo = 0;
		size_t primaries = 0;

		CHECK(e->name != NULL && e->unit_name != NULL && e->salt != NULL);
		CHECK(e->fallback_cookie != NULL);
		CHECK(e->nvariants >= 2);
		for (size_t j = 0; j < e->nvariants; j++) {
			const struct conf_variant *v = &e->variants[j];

			CHECK(v->name != NULL && backend_of(c, v->backend));
			CHECK(v->lo == lo && v->hi == lo + v->weight_bp);
			lo = v->hi;
		}
		CHECK(lo == CONF_BUCKETS);
		for (size_t j = 0; j < e->nmetrics; j++)
			primaries += e->metrics[j].primary;
		CHECK(primaries <= 1);
		CHECK(e->shadow.backend == NULL || backend_of(c, e->shadow.backend));
		CHECK((e->hash.mode == CONF_HASH_ABGATE) == (e->hash.text == NULL));
		for (size_t j = 0; j < e->nvariants; j++) {
			const struct conf_variant *v = &e->variants[j];
			CHECK(v->range_lo <= v->range_hi && v->range_lo >= 0);
			CHECK(j == 0 || e->variants[j - 1].range_hi <= v->range_lo);
		}
		for (int u = 0; u < 4; u++) {
			char unit[16];
			uint64_t h;
			int n = snprintf(unit, sizeof(unit), "fuzz-%d", u);
			const struct conf_variant *v = router_assign(e, unit, (size_t)n, &h);
			CHECK(v == NULL || (v >= e->variants && v < e->variants + e->nvariants));
			CHECK(v != NULL || e->hash.mode == CONF_HASH_GROWTHBOOK ||
			      e->hash.mode == CONF_HASH_UNLEASH);
		}
		if (e->rollout.enabled) {
			CHECK(e->hash.mode == CONF_HASH_ABGATE);
			CHECK(e->nvariants == 2 && e->rollout.nsteps >= 1);
			for (size_t j = 1; j < e->rollout.nsteps; j++)
				CHECK(e->rollout.steps[j - 1] < e->rollout.steps[j]);
			CHECK(e->rollout.steps[e->rollout.nsteps - 1] == 100.0);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf *c = NULL;
	char err[512];

	memset(err, 'x', sizeof(err));
	if (conf_load_string(NAME, (const char *)data, size, &c, err, sizeof(err)) == 0) {
		CHECK(c != NULL);
		check_conf(c);
		conf_free(c);
	} else {
		CHECK(c == NULL);
		check_error(err, sizeof(err), data, size);
	}
	return 0;
}
