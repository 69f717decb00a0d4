/*
 * outcome.c - the outcome reader behind POST /outcomes (see include/outcome.h).
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "conf.h"
#include "live.h"
#include "outcome.h"
#include "router.h"

static const struct conf_variant *variant_named(const struct conf_experiment *e, const char *n)
{
	for (size_t i = 0; i < e->nvariants; i++)
		if (strcmp(e->variants[i].name, n) == 0)
			return &e->variants[i];
	return NULL;
}

static const char *str_field(const cJSON *o, const char *name)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(f) ? f->valuestring : NULL;
}

/*
 * Validates one outcome object against generation c and fills p. On failure writes the reason
 * into err and returns -1.
 */
static int check_outcome(const struct conf *c, const cJSON *o, struct outcome *p, char *err,
			 size_t errlen)
{
	static const char *const known[] = {"exp", "experiment", "metric", "value", "variant",
					    "rid", "unit", "ts", "v", "type"};
	if (!cJSON_IsObject(o)) {
		snprintf(err, errlen, "not a JSON object");
		return -1;
	}
	for (const cJSON *f = o->child; f != NULL; f = f->next) {
		bool ok = false;
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]) && !ok; i++)
			ok = strcmp(f->string, known[i]) == 0;
		if (!ok) {
			snprintf(err, errlen, "unknown field '%.64s' (known: exp, metric, value, "
					      "variant, rid, unit)", f->string);
			return -1;
		}
	}
	static const char *const strings[] = {"exp", "experiment", "metric", "variant", "rid",
					      "unit", "ts", "type"};
	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, strings[i]);
		if (f != NULL && !cJSON_IsString(f)) {
			snprintf(err, errlen, "\"%s\" must be a string", strings[i]);
			return -1;
		}
	}
	const char *exp = str_field(o, "exp");
	if (exp == NULL)
		exp = str_field(o, "experiment");
	const char *metric = str_field(o, "metric");
	const cJSON *value = cJSON_GetObjectItemCaseSensitive(o, "value");
	if (exp == NULL || metric == NULL || value == NULL) {
		snprintf(err, errlen, "needs \"exp\" and \"metric\" (strings) and \"value\"");
		return -1;
	}
	p->e = NULL;
	for (size_t i = 0; i < c->nexperiments && p->e == NULL; i++)
		if (strcmp(c->experiments[i].name, exp) == 0)
			p->e = &c->experiments[i];
	if (p->e == NULL) {
		snprintf(err, errlen, "unknown experiment '%.64s'", exp);
		return -1;
	}
	const struct conf_metric *m = NULL;
	for (size_t i = 0; i < p->e->nmetrics && m == NULL; i++)
		if (strcmp(p->e->metrics[i].name, metric) == 0) {
			m = &p->e->metrics[i];
			p->metric = i;
		}
	if (m == NULL) {
		snprintf(err, errlen, "unknown metric '%.64s' in experiment '%s'", metric, exp);
		return -1;
	}
	if (m->source != CONF_SRC_OUTCOME) {
		snprintf(err, errlen, "metric '%s' is measured by the proxy, not posted", m->name);
		return -1;
	}
	if (m->kind == CONF_METRIC_BINARY) {
		if (cJSON_IsBool(value))
			p->value = cJSON_IsTrue(value) ? 1 : 0;
		else if (cJSON_IsNumber(value) && (value->valuedouble == 0 || value->valuedouble == 1))
			p->value = value->valuedouble;
		else {
			snprintf(err, errlen, "metric '%s' is binary: value must be 0, 1, true or false",
				 m->name);
			return -1;
		}
	} else {
		if (!cJSON_IsNumber(value) || !isfinite(value->valuedouble)) {
			snprintf(err, errlen, "metric '%s' is continuous: value must be a finite number",
				 m->name);
			return -1;
		}
		p->value = value->valuedouble;
	}
	const char *variant = str_field(o, "variant");
	const char *rid = str_field(o, "rid");
	const char *unit = str_field(o, "unit");
	if (variant != NULL) {
		if ((p->v = variant_named(p->e, variant)) == NULL) {
			snprintf(err, errlen, "experiment '%s' has no variant '%.64s'", exp, variant);
			return -1;
		}
		return 0;
	}
	if (rid != NULL) {
		int id = live_rid_get(rid, strlen(rid));
		for (size_t i = 0; i < p->e->nvariants && id >= 0; i++) {
			if (p->e->variants[i].id == id) {
				p->v = &p->e->variants[i];
				return 0;
			}
		}
	}
	if (unit != NULL && unit[0] != '\0') {
		uint64_t h;
		/* the data path's own assignment, so the two cannot disagree */
		if ((p->v = router_assign(p->e, unit, strlen(unit), &h)) == NULL) {
			snprintf(err, errlen,
				 "unit '%.64s' is outside experiment '%s' (its hash mode's coverage or "
				 "rollout): it was served the control without being randomised",
				 unit, exp);
			return -1;
		}
		return 0;
	}
	snprintf(err, errlen, rid != NULL ? "request id '%.64s' is not a recent request of '%s' and "
					    "no \"unit\" or \"variant\" is given"
					  : "cannot attribute the outcome: give \"variant\", \"rid\" "
					    "or \"unit\"%.0s%.0s",
		 rid != NULL ? rid : "", exp);
	return -1;
}

static char *dup_field(const cJSON *o, const char *name)
{
	const char *v = str_field(o, name);

	return v != NULL ? strdup(v) : NULL;
}

void outcome_batch_free(struct outcome_batch *batch)
{
	for (size_t i = 0; i < batch->n; i++) {
		free(batch->items[i].unit);
		free(batch->items[i].rid);
	}
	free(batch->items);
	batch->items = NULL;
	batch->n = 0;
}

int outcome_parse(const struct conf *c, const char *body, size_t len, struct outcome_batch *batch,
		  char *err, size_t errlen)
{
	char why[400];

	batch->items = NULL;
	batch->n = 0;
	if (len == 0) {
		snprintf(err, errlen, "empty body: send a JSON object or an array of objects");
		return -1;
	}
	const char *end = NULL;
	cJSON *doc = cJSON_ParseWithLengthOpts(body, len, &end, false);
	if (doc == NULL) {
		snprintf(err, errlen, "malformed JSON near byte %zu",
			 (size_t)(cJSON_GetErrorPtr() != NULL ? cJSON_GetErrorPtr() - body : 0));
		return -1;
	}
	/* one document and nothing after it: trailing bytes, or a second document, would be
	 * dropped without a word */
	size_t at = end != NULL ? (size_t)(end - body) : len;
	while (at < len && (body[at] == ' ' || body[at] == '\t' || body[at] == '\r' ||
			    body[at] == '\n'))
		at++;
	if (at < len) {
		cJSON_Delete(doc);
		snprintf(err, errlen,
			 "unexpected bytes after the JSON document at byte %zu: send one object or "
			 "one array of objects",
			 at);
		return -1;
	}
	if (!cJSON_IsArray(doc) && !cJSON_IsObject(doc)) {
		cJSON_Delete(doc);
		snprintf(err, errlen, "the body must be a JSON object or an array of objects");
		return -1;
	}
	size_t n = cJSON_IsArray(doc) ? (size_t)cJSON_GetArraySize(doc) : 1;
	if (n == 0) {
		cJSON_Delete(doc);
		snprintf(err, errlen, "empty array: nothing to record");
		return -1;
	}
	if (n > OUTCOME_BATCH_MAX) {
		cJSON_Delete(doc);
		snprintf(err, errlen, "%zu outcomes in one batch: at most %d; nothing was recorded", n,
			 OUTCOME_BATCH_MAX);
		return -1;
	}
	if ((batch->items = calloc(n, sizeof(*batch->items))) == NULL) {
		cJSON_Delete(doc);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	const cJSON *o = cJSON_IsArray(doc) ? doc->child : doc;
	for (size_t i = 0; i < n; i++, o = o->next) {
		struct outcome *p = &batch->items[i];
		batch->n = i + 1;
		if (check_outcome(c, o, p, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "outcome %zu: %s; nothing was recorded", i, why);
			goto fail;
		}
		p->unit = dup_field(o, "unit");
		p->rid = dup_field(o, "rid");
		if ((str_field(o, "unit") && !p->unit) || (str_field(o, "rid") && !p->rid)) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	cJSON_Delete(doc);
	return 0;
fail:
	outcome_batch_free(batch);
	cJSON_Delete(doc);
	return -1;
}
