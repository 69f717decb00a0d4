/*
 * outcome.h - the outcome reader behind POST /outcomes: a JSON object or array of objects in,
 * validated outcomes attributed to a variant out. Pure apart from the recent-request-id lookup
 * (live_rid_get), so a fuzzer can drive it.
 *
 * Each object: {"exp": NAME, "metric": NAME, "value": V, and optionally "variant", "rid",
 * "unit"}. The variant comes from "variant", else from the request id (a recent request of that
 * experiment), else is recomputed from the unit. Binary metrics take 0, 1, true or false;
 * continuous ones any finite number. Only metrics with source "outcome" can be posted.
 */
#ifndef ABGATE_OUTCOME_H
#define ABGATE_OUTCOME_H

#include <stddef.h>

struct conf;
struct conf_experiment;
struct conf_variant;

/* Most outcomes in one batch (POST /outcomes answers 400 beyond it). */
#define OUTCOME_BATCH_MAX 10000

struct outcome {
	const struct conf_experiment *e; /* (ref) into the generation */
	const struct conf_variant *v;    /* (ref) */
	size_t metric;                   /* index into e->metrics */
	double value;
	char *unit;                      /* NULL when absent; owned by the batch */
	char *rid;                       /* NULL when absent; owned by the batch */
};

struct outcome_batch {
	struct outcome *items;
	size_t n;
};

/*
 * Parses and validates body against generation c: exactly one JSON document (an object or an
 * array of at most OUTCOME_BATCH_MAX objects), optionally surrounded by whitespace. All or nothing: returns 0 with every outcome
 * in *batch (free with outcome_batch_free), or -1 with one line in err naming the first bad
 * outcome and why (nothing in *batch). The batch refers into c: keep c alive while using it.
 */
int outcome_parse(const struct conf *c, const char *body, size_t len, struct outcome_batch *batch,
		  char *err, size_t errlen);
void outcome_batch_free(struct outcome_batch *batch);

#endif
