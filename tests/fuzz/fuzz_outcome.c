/*
 * fuzz_outcome.c - libFuzzer driver for the POST /outcomes reader, outcome_parse()
 * (include/outcome.h).
 *
 * Input: the request body, as is. It is read against one generation loaded at start-up: an
 * A/B experiment with binary and continuous outcome metrics next to metrics the proxy measures
 * itself, and a three-variant experiment (one variant at weight 0) whose metrics take the
 * default source. A few request ids are in the request-id map so that attribution by "rid" is
 * reachable ("rid-1" .. "rid-5" name the variants in declared order); "old-1" has fallen out
 * of the window and "gone-1" was pushed out for room. The outcome keys of "id":"seen-1" on
 * click and of rid "rid-1" on click are recorded already, so those items are duplicates.
 *
 * Each body is read twice, without and with OUTCOME_DEFER (then a rid-only item whose request
 * id is not known is deferred, never anything else). A document that is read must give at
 * least one item, each exactly one of: recorded
 * (attributed to a variant of its experiment, on a metric posted by the application, with a
 * value its kind allows), a duplicate (with a deduplication key), or rejected (with a reason
 * and its text); the counts must add up; the batch is then freed. A refused document must
 * leave the batch empty and say why.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "fuzz_check.h"
#include "live.h"
#include "outcome.h"
#include "ridmap.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char config[] =
    "backends:\n"
    "  model-v1: {servers: [127.0.0.1:9001]}\n"
    "  model-v2: {servers: [127.0.0.1:9002]}\n"
    "default_backend: model-v1\n"
    "experiments:\n"
    "  - name: ranker-v2\n"
    "    match: {path_prefix: /predict}\n"
    "    unit: {header: X-User-Id}\n"
    "    variants:\n"
    "      - {name: control, backend: model-v1, weight: 50}\n"
    "      - {name: treatment, backend: model-v2, weight: 50}\n"
    "    metrics:\n"
    "      - {name: error_rate, kind: binary, source: status_5xx, goal: decrease,\n"
    "         guardrail: true}\n"
    "      - {name: latency_ms, kind: continuous, source: latency_ms, goal: decrease}\n"
    "      - {name: click, kind: binary, source: outcome, goal: increase, primary: true}\n"
    "      - {name: revenue, kind: continuous, source: outcome, goal: increase}\n"
    "  - name: canary\n"
    "    unit: {cookie: uid}\n"
    "    variants:\n"
    "      - {name: stable, backend: model-v1, weight: 99.5}\n"
    "      - {name: canary, backend: model-v2, weight: 0.5}\n"
    "      - {name: dark, backend: model-v2, weight: 0}\n"
    "    metrics:\n"
    "      - {name: converted, kind: binary, goal: increase}\n"
    "      - {name: basket, kind: continuous, goal: increase, margin: 0.05}\n";

static struct conf *conf;
static struct ridmap *rids, *seen;

#define NOW (1000ull * 1000000ull) /* the fuzzer's monotonic clock, at 1000 s */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[512];
	int id = 0;

	(void)argc;
	(void)argv;
	if (conf_load_string("outcome.yaml", config, sizeof(config) - 1, &conf, err,
			     sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_outcome: %s\n", err);
		abort();
	}
	/* a map of 64 ids in one shard, for a minute */
	rids = ridmap_new(64, 60, 1);
	seen = ridmap_new(64, 60, 1);
	if (rids == NULL || seen == NULL)
		abort();
	ridmap_put(rids, "old-1", 5, 1, NOW - 61 * 1000000ull);
	ridmap_put(rids, "gone-1", 6, 1, NOW);
	for (int i = 0; i < 64; i++) { /* pushes gone-1 out */
		char rid[16];
		snprintf(rid, sizeof(rid), "filler-%d", i);
		ridmap_put(rids, rid, strlen(rid), 1, NOW);
	}
	/* pair ids as the proxy assigns them after a load: 1..5 in declared order */
	if (live_register_conf(conf) < 0)
		abort();
	for (size_t i = 0; i < conf->nexperiments; i++) {
		for (size_t j = 0; j < conf->experiments[i].nvariants; j++) {
			char rid[16];

			id = conf->experiments[i].variants[j].id;
			snprintf(rid, sizeof(rid), "rid-%d", id);
			ridmap_put(rids, rid, strlen(rid), id, NOW);
		}
	}
	uint8_t key[OUTCOME_KEY_LEN];
	if (outcome_key("ranker-v2", "click", true, NULL, "seen-1", key))
		ridmap_put(seen, (const char *)key, sizeof(key), 0, NOW);
	if (outcome_key("ranker-v2", "click", true, "rid-1", NULL, key))
		ridmap_put(seen, (const char *)key, sizeof(key), 0, NOW);
	return 0;
}

static void check_batch(const struct outcome_batch *b, unsigned flags)
{
	size_t ok = 0, dup = 0, rej = 0, def = 0;

	CHECK(b->n >= 1 && b->items != NULL);
	for (size_t i = 0; i < b->n; i++) {
		const struct outcome *o = &b->items[i];
		const struct conf_experiment *e = o->e;
		const struct conf_metric *m;

		if (o->status == OUTCOME_REJECTED) {
			rej++;
			CHECK(o->reason < OUTCOME_NREASONS && outcome_reason_name(o->reason) != NULL);
			CHECK(o->error != NULL && o->error[0] != '\0');
			continue;
		}
		if (o->status == OUTCOME_DEFERRED) {
			/* only asked for, and only for a request id not known here */
			def++;
			CHECK(flags & OUTCOME_DEFER);
			CHECK(o->v == NULL && o->rid != NULL);
			CHECK(o->reason == OUTCOME_R_RID_UNKNOWN || o->reason == OUTCOME_R_RID_EXPIRED ||
			      o->reason == OUTCOME_R_RID_EVICTED);
			CHECK(e >= conf->experiments && e < conf->experiments + conf->nexperiments);
			CHECK(o->metric < e->nmetrics && e->metrics[o->metric].source == CONF_SRC_OUTCOME);
			continue;
		}
		CHECK(o->status == OUTCOME_OK || o->status == OUTCOME_DUPLICATE);
		CHECK(o->error == NULL);
		if (o->status == OUTCOME_DUPLICATE) {
			dup++;
			CHECK(o->has_key);
		} else {
			ok++;
		}
		CHECK(o->id == NULL || (o->id[0] != '\0' && strlen(o->id) <= OUTCOME_ID_MAX));
		CHECK(e >= conf->experiments && e < conf->experiments + conf->nexperiments);
		if (o->v == NULL) /* a duplicate that would have been deferred */
			CHECK(o->status == OUTCOME_DUPLICATE && (flags & OUTCOME_DEFER) && o->rid);
		else
			CHECK(o->v >= e->variants && o->v < e->variants + e->nvariants);
		CHECK(o->metric < e->nmetrics);
		m = &e->metrics[o->metric];
		CHECK(m->source == CONF_SRC_OUTCOME);
		if (m->kind == CONF_METRIC_BINARY)
			CHECK(o->value == 0 || o->value == 1);
		else
			CHECK(isfinite(o->value));
	}
	CHECK(ok == b->accepted && dup == b->duplicates && rej == b->rejected &&
	      def == b->deferred);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome_batch batch;
	char err[512];

	for (unsigned flags = 0; flags <= OUTCOME_DEFER; flags += OUTCOME_DEFER) {
		memset(&batch, 0xa5, sizeof(batch));
		memset(err, 'x', sizeof(err));
		if (outcome_parse(conf, rids, seen, NOW, flags, (const char *)data, size, &batch,
				  err, sizeof(err)) == 0) {
			check_batch(&batch, flags);
			outcome_batch_free(&batch);
			CHECK(batch.items == NULL && batch.n == 0);
		} else {
			CHECK(batch.items == NULL && batch.n == 0);
			CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
		}
	}
	return 0;
}
