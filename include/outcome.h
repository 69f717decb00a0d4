/*
 * outcome.h - the outcome reader behind POST /outcomes: a JSON object or array of objects in,
 * each item validated and attributed to a variant, or rejected with its reason, or found to
 * be a duplicate of an outcome already recorded. Pure apart from the lookups in the two maps
 * it is given (ridmap.h), so a fuzzer can drive it.
 *
 * Each object: {"exp": NAME, "metric": NAME, "value": V, and optionally "variant", "rid",
 * "unit", "id"}. The variant comes from "variant", else from the request id (the variant that
 * request was served, whatever the weights, generation or rollout step now), else is
 * recomputed from the unit with the assignment in force (router_assign). Binary metrics take
 * 0, 1, true or false; continuous ones any finite number. Only metrics with source "outcome"
 * can be posted.
 *
 * With OUTCOME_DEFER, an item attributed by its request id alone whose id this proxy does not
 * know (never served here, expired or pushed out) is deferred rather than rejected: it is
 * recorded as a pending outcome, which `abgate report` attributes from the request records
 * of the logs it is given (another instance's included).
 *
 * Deduplication (outcome_key): an outcome with an "id" is the same outcome as any other with
 * the same (exp, metric, id); without one, an outcome of a binary metric with a "rid" is the
 * same as any other of the same (exp, metric, rid): a request converts at most once per
 * metric. Other outcomes (continuous without id, unit- or variant-only binary without id) are
 * never taken for duplicates. The keys of recorded outcomes are kept in a ridmap (16-byte
 * fingerprints) for the retention window.
 */
#ifndef ABGATE_OUTCOME_H
#define ABGATE_OUTCOME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conf;
struct conf_experiment;
struct conf_variant;
struct ridmap;

/* Most outcomes in one batch (POST /outcomes answers 400 beyond it). */
#define OUTCOME_BATCH_MAX 10000
/* Longest client outcome id. */
#define OUTCOME_ID_MAX 256
/* Bytes of an outcome's deduplication key. */
#define OUTCOME_KEY_LEN 16

/* Why an item was not recorded; outcome_reason_name() gives its metric label. */
enum outcome_reason {
	OUTCOME_R_INVALID,      /* not an object; a field unknown, mistyped or missing */
	OUTCOME_R_EXPERIMENT,   /* no such experiment */
	OUTCOME_R_METRIC,       /* no such metric, or one the proxy measures itself */
	OUTCOME_R_VALUE,        /* a value the metric's kind does not take */
	OUTCOME_R_VARIANT,      /* no such variant (named, or served to the request id) */
	OUTCOME_R_RID_UNKNOWN,  /* a request id not known, and no unit or variant */
	OUTCOME_R_RID_EXPIRED,  /* a request id older than outcomes.rid_window_s, and ... */
	OUTCOME_R_RID_EVICTED,  /* a request id pushed out at outcomes.max_rids, and ... */
	OUTCOME_R_UNATTRIBUTED, /* no variant, rid or unit at all */
	OUTCOME_R_TOO_LONG,     /* its log record would exceed the line limit (set by the caller) */
	OUTCOME_NREASONS
};
const char *outcome_reason_name(enum outcome_reason r);

enum outcome_status { OUTCOME_OK, OUTCOME_REJECTED, OUTCOME_DUPLICATE, OUTCOME_DEFERRED };

/* outcome_parse flags */
#define OUTCOME_DEFER 1u /* defer rid-only items whose request id is not known here */

struct outcome {
	enum outcome_status status;
	enum outcome_reason reason;      /* OUTCOME_REJECTED; OUTCOME_DEFERRED: why the rid was
					    not known (RID_UNKNOWN, RID_EXPIRED, RID_EVICTED) */
	char *error;                     /* OUTCOME_REJECTED: why, one line; owned by the batch */
	const struct conf_experiment *e; /* (ref) into the generation; OK and DUPLICATE */
	const struct conf_variant *v;    /* (ref); NULL when OUTCOME_DEFERRED (or a duplicate
					    that would have been deferred) */
	size_t metric;                   /* index into e->metrics */
	double value;
	char *unit;                      /* NULL when absent; owned by the batch */
	char *rid;                       /* NULL when absent; owned by the batch */
	char *id;                        /* the client's outcome id; NULL when absent; owned */
	bool has_key;                    /* key holds its deduplication key */
	uint8_t key[OUTCOME_KEY_LEN];
};

struct outcome_batch {
	struct outcome *items;
	size_t n;
	size_t accepted, rejected, duplicates, deferred; /* items by status */
};

/*
 * Parses body against generation c at monotonic time now_us (flags: OUTCOME_DEFER or 0):
 * exactly one JSON document (an
 * object or an array of 1 to OUTCOME_BATCH_MAX objects), optionally surrounded by whitespace.
 * Request ids are looked up in rids, and keys in seen (the keys of outcomes recorded before;
 * either map may be NULL: nothing is found there). Returns 0 with every item in *batch, each
 * OK, REJECTED, DUPLICATE (a repeat of an earlier item of the batch is a duplicate too) or
 * DEFERRED, to
 * be freed with outcome_batch_free; or -1 when the document as a whole is refused, with one
 * line in err and nothing in *batch. The batch refers into c: keep c alive while using it.
 */
int outcome_parse(const struct conf *c, struct ridmap *rids, struct ridmap *seen, uint64_t now_us,
		  unsigned flags, const char *body, size_t len, struct outcome_batch *batch,
		  char *err, size_t errlen);
void outcome_batch_free(struct outcome_batch *batch);

/* Marks item i of batch rejected for reason r (err: a copy is kept). */
void outcome_reject(struct outcome_batch *batch, size_t i, enum outcome_reason r,
		    const char *err);

/*
 * The deduplication key of an outcome (see above) into key; false when it has none. exp and
 * metric are names; rid and id may be NULL. The one rule: POST /outcomes and the restart's
 * replay of the outcome log both use it.
 */
bool outcome_key(const char *exp, const char *metric, bool binary, const char *rid,
		 const char *id, uint8_t key[OUTCOME_KEY_LEN]);

#endif
