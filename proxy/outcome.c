/*
 * outcome.c - the outcome reader behind POST /outcomes (see include/outcome.h).
 *
 * A document that is not one JSON object or array of objects is refused whole; inside one,
 * each item is judged on its own, so a bad item names itself and spoils nothing else.
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
#include "ridmap.h"
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

static const char *const reason_names[OUTCOME_NREASONS] = {
	[OUTCOME_R_INVALID] = "invalid",
	[OUTCOME_R_EXPERIMENT] = "unknown_experiment",
	[OUTCOME_R_METRIC] = "unknown_metric",
	[OUTCOME_R_VALUE] = "bad_value",
	[OUTCOME_R_VARIANT] = "unknown_variant",
	[OUTCOME_R_RID_UNKNOWN] = "rid_unknown",
	[OUTCOME_R_RID_EXPIRED] = "rid_expired",
	[OUTCOME_R_RID_EVICTED] = "rid_evicted",
	[OUTCOME_R_UNATTRIBUTED] = "unattributed",
	[OUTCOME_R_TOO_LONG] = "too_long",
};

const char *outcome_reason_name(enum outcome_reason r)
{
	return r < OUTCOME_NREASONS ? reason_names[r] : "invalid";
}

/* Where the variant of a request id comes from, for check_outcome. */
struct lookup {
	struct ridmap *rids; /* (ref) may be NULL */
	uint64_t now_us;
	uint32_t max_rids;
};

/* The variant of e that request id rid was served, or NULL with the reason in *why and err. */
static const struct conf_variant *rid_variant(const struct lookup *lk,
					      const struct conf_experiment *e, const char *rid,
					      enum outcome_reason *why, char *err, size_t errlen)
{
	int id = -1;
	const char *exp, *var;

	switch (ridmap_get(lk->rids, rid, strlen(rid), lk->now_us, &id)) {
	case RIDMAP_FOUND:
		for (size_t i = 0; i < e->nvariants; i++)
			if (e->variants[i].id == id)
				return &e->variants[i];
		live_pair_names(id, &exp, &var);
		*why = OUTCOME_R_VARIANT;
		if (strcmp(exp, e->name) == 0)
			snprintf(err, errlen, "request id '%.64s' was served variant '%.64s', which "
					      "experiment '%s' no longer has", rid, var, e->name);
		else
			snprintf(err, errlen, "request id '%.64s' is a request of experiment "
					      "'%.64s', not of '%s'", rid, exp, e->name);
		return NULL;
	case RIDMAP_EXPIRED:
		*why = OUTCOME_R_RID_EXPIRED;
		snprintf(err, errlen, "request id '%.64s' expired from the window (older than %u s) "
				      "and no \"unit\" or \"variant\" is given", rid,
			 ridmap_window(lk->rids));
		return NULL;
	case RIDMAP_EVICTED:
		*why = OUTCOME_R_RID_EVICTED;
		snprintf(err, errlen, "request id '%.64s' was pushed out by newer ones (outcomes."
				      "max_rids is %u) and no \"unit\" or \"variant\" is given", rid,
			 lk->max_rids);
		return NULL;
	case RIDMAP_UNKNOWN:
		break;
	}
	*why = OUTCOME_R_RID_UNKNOWN;
	snprintf(err, errlen, "unknown request id '%.64s' (not a request of '%s' this proxy "
			      "served in the last %u s) and no \"unit\" or \"variant\" is given",
		 rid, e->name, lk->rids != NULL ? ridmap_window(lk->rids) : 0);
	return NULL;
}

/*
 * Validates one outcome object against generation c and fills p. On failure writes the reason
 * into err, sets *why and returns -1.
 */
static int check_outcome(const struct conf *c, const struct lookup *lk, const cJSON *o,
			 struct outcome *p, enum outcome_reason *why, char *err, size_t errlen)
{
	static const char *const known[] = {"exp", "experiment", "metric", "value", "variant",
					    "rid", "unit", "id", "ts", "v", "type"};
	*why = OUTCOME_R_INVALID;
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
					      "variant, rid, unit, id)", f->string);
			return -1;
		}
	}
	static const char *const strings[] = {"exp", "experiment", "metric", "variant", "rid",
					      "unit", "id", "ts", "type"};
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
	const char *oid = str_field(o, "id");
	if (oid != NULL && (oid[0] == '\0' || strlen(oid) > OUTCOME_ID_MAX)) {
		snprintf(err, errlen, "\"id\" must be 1 to %d bytes", OUTCOME_ID_MAX);
		return -1;
	}
	p->e = NULL;
	for (size_t i = 0; i < c->nexperiments && p->e == NULL; i++)
		if (strcmp(c->experiments[i].name, exp) == 0)
			p->e = &c->experiments[i];
	if (p->e == NULL) {
		*why = OUTCOME_R_EXPERIMENT;
		snprintf(err, errlen, "unknown experiment '%.64s'", exp);
		return -1;
	}
	const struct conf_metric *m = NULL;
	for (size_t i = 0; i < p->e->nmetrics && m == NULL; i++)
		if (strcmp(p->e->metrics[i].name, metric) == 0) {
			m = &p->e->metrics[i];
			p->metric = i;
		}
	*why = OUTCOME_R_METRIC;
	if (m == NULL) {
		snprintf(err, errlen, "unknown metric '%.64s' in experiment '%s'", metric, exp);
		return -1;
	}
	if (m->source != CONF_SRC_OUTCOME) {
		snprintf(err, errlen, "metric '%s' is measured by the proxy, not posted", m->name);
		return -1;
	}
	*why = OUTCOME_R_VALUE;
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
	p->has_key = outcome_key(p->e->name, m->name, m->kind == CONF_METRIC_BINARY, rid, oid,
				 p->key);
	*why = OUTCOME_R_VARIANT;
	if (variant != NULL) {
		if ((p->v = variant_named(p->e, variant)) == NULL) {
			snprintf(err, errlen, "experiment '%s' has no variant '%.64s'", exp, variant);
			return -1;
		}
		return 0;
	}
	if (rid != NULL) {
		p->v = rid_variant(lk, p->e, rid, why, err, errlen);
		if (p->v != NULL)
			return 0;
		if (unit == NULL || unit[0] == '\0')
			return -1;
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
	*why = OUTCOME_R_UNATTRIBUTED;
	snprintf(err, errlen, "cannot attribute the outcome: give \"variant\", \"rid\" or \"unit\"");
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
		free(batch->items[i].id);
		free(batch->items[i].error);
	}
	free(batch->items);
	memset(batch, 0, sizeof(*batch));
}

void outcome_reject(struct outcome_batch *batch, size_t i, enum outcome_reason r,
		    const char *err)
{
	struct outcome *p = &batch->items[i];

	if (p->status == OUTCOME_OK)
		batch->accepted--;
	else if (p->status == OUTCOME_DUPLICATE)
		batch->duplicates--;
	else if (p->status == OUTCOME_DEFERRED)
		batch->deferred--;
	else
		batch->rejected--;
	free(p->error);
	p->status = OUTCOME_REJECTED;
	p->reason = r;
	p->error = strdup(err); /* NULL when out of memory: the reason's name stands for it */
	batch->rejected++;
}

/* Hashes the fields of a key in turn, each seeding the next (each hash covers its length). */
static uint64_t key_hash(const char *const *parts, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		seed = ridmap_hash(parts[i], strlen(parts[i]), seed);
	return seed;
}

bool outcome_key(const char *exp, const char *metric, bool binary, const char *rid,
		 const char *id, uint8_t key[OUTCOME_KEY_LEN])
{
	const char *parts[4] = {exp, metric, id != NULL ? "id" : "rid", id != NULL ? id : rid};

	if (id == NULL && (!binary || rid == NULL))
		return false;
	/* two independent 64-bit hashes: a false duplicate among n keys has odds near
	 * n^2 / 2^129 */
	uint64_t a = key_hash(parts, 4, 0x6f7574636f6d6531ull);
	uint64_t b = key_hash(parts, 4, 0x6b65792d74776f32ull);
	memcpy(key, &a, 8);
	memcpy(key + 8, &b, 8);
	return true;
}

/* Orders item indexes by the items' keys, then by index (for the duplicates within a batch). */
static int by_key(const void *a, const void *b, void *items)
{
	const struct outcome *it = items;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	int d = memcmp(it[i].key, it[j].key, OUTCOME_KEY_LEN);

	return d != 0 ? d : (i > j) - (i < j);
}

/* Marks as duplicates the accepted (or deferred) items whose key was recorded before (in seen) or belongs
 * to an earlier item of the batch. Returns 0 or -1 (out of memory). */
static int mark_duplicates(struct outcome_batch *b, struct ridmap *seen, uint64_t now_us)
{
	size_t *order = malloc(b->n * sizeof(*order)), k = 0;
	int v;

	if (order == NULL)
		return -1;
	for (size_t i = 0; i < b->n; i++)
		if ((b->items[i].status == OUTCOME_OK || b->items[i].status == OUTCOME_DEFERRED) &&
		    b->items[i].has_key)
			order[k++] = i;
	qsort_r(order, k, sizeof(*order), by_key, b->items);
	for (size_t x = 0; x < k; x++) {
		struct outcome *p = &b->items[order[x]];
		bool dup = (x > 0 && memcmp(b->items[order[x - 1]].key, p->key, OUTCOME_KEY_LEN) == 0) ||
			   ridmap_get(seen, (const char *)p->key, OUTCOME_KEY_LEN, now_us, &v) ==
			       RIDMAP_FOUND;
		if (dup) {
			if (p->status == OUTCOME_OK)
				b->accepted--;
			else
				b->deferred--;
			p->status = OUTCOME_DUPLICATE;
			b->duplicates++;
		}
	}
	free(order);
	return 0;
}

int outcome_parse(const struct conf *c, struct ridmap *rids, struct ridmap *seen, uint64_t now_us,
		  unsigned flags, const char *body, size_t len, struct outcome_batch *batch,
		  char *err, size_t errlen)
{
	char why[400];
	struct lookup lk = {rids, now_us, c->outcomes_max_rids};

	memset(batch, 0, sizeof(*batch));
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
		enum outcome_reason r;
		batch->n = i + 1;
		batch->accepted++;
		if (check_outcome(c, &lk, o, p, &r, why, sizeof(why)) < 0) {
			bool rid_only = str_field(o, "rid") != NULL && str_field(o, "variant") == NULL;
			if (!(flags & OUTCOME_DEFER) || !rid_only ||
			    (r != OUTCOME_R_RID_UNKNOWN && r != OUTCOME_R_RID_EXPIRED &&
			     r != OUTCOME_R_RID_EVICTED)) {
				outcome_reject(batch, i, r, why);
				continue;
			}
			/* checked whole but for the rid: the report will look for its request */
			p->status = OUTCOME_DEFERRED;
			p->reason = r;
			p->v = NULL;
			batch->accepted--;
			batch->deferred++;
		}
		p->unit = dup_field(o, "unit");
		p->rid = dup_field(o, "rid");
		p->id = dup_field(o, "id");
		if ((str_field(o, "unit") && !p->unit) || (str_field(o, "rid") && !p->rid) ||
		    (str_field(o, "id") && !p->id)) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	if (mark_duplicates(batch, seen, now_us) < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	cJSON_Delete(doc);
	return 0;
fail:
	outcome_batch_free(batch);
	cJSON_Delete(doc);
	return -1;
}
