/*
 * live.h - the running proxy's live statistics: request counters by (experiment, variant,
 * status), a request duration histogram, and the experiment accumulators (accum.h) that the
 * live report and the decision rule read.
 *
 * Each event-loop thread updates its own struct live_shard on the request path with no lock
 * and no GSL. Every few ticks the thread folds what it gathered into the shard's published
 * copy under the shard's mutex (taken once per publication, never per request); readers (the
 * admin thread) merge the published copies of every shard under the same mutexes. Live figures
 * are therefore at most one publication interval old.
 *
 * (experiment, variant) pairs get process-wide ids that survive reloads, so counts carry over
 * from one generation to the next. Id 0 is the pair ("", "") of requests that match no
 * experiment.
 */
#ifndef ABGATE_LIVE_H
#define ABGATE_LIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conf;
struct conf_experiment;
struct conf_variant;
struct accum_variant;

/* Upper bounds (seconds) of the request duration histogram buckets (+Inf is implicit). */
#define LIVE_DURATION_BUCKETS 14
extern const double live_duration_bounds[LIVE_DURATION_BUCKETS];

struct live_shard;

/* Assigns every variant of c its pair id (conf_variant.id). Main thread, before publishing c.
 * Returns 0 or -1 (out of memory or too many pairs). */
int live_register_conf(struct conf *c);
/* The names of pair id (never NULL). */
void live_pair_names(int id, const char **exp, const char **variant);
int live_pair_count(void);

/* A shard for one thread, registered for readers; freed by live_shard_free. */
struct live_shard *live_shard_new(void);
void live_shard_free(struct live_shard *sh);

/*
 * Request path: counts one finished request. e/v NULL for a request outside any experiment.
 * t: seconds since the epoch; unit_hash: the unit's 64-bit hash (0: no unit). Excluded requests
 * (a forced variant, or no unit with fallback control: not randomised) are counted in the
 * request counters but kept out of the experiment's statistics.
 */
void live_request(struct live_shard *sh, const struct conf_experiment *e,
		  const struct conf_variant *v, int status, double latency_ms, double t,
		  uint64_t unit_hash, bool excluded);

/*
 * Counts an outcome of metric index m of experiment e for variant v, from the unit whose
 * hash is unit_hash (router_unit_hash(salt, unit), as live_request gets it), so that the
 * outcome joins its unit's other outcomes in the unit-level variance. live_outcome is the same
 * for an outcome of unknown unit: it counts as a unit of its own.
 */
void live_outcome_unit(struct live_shard *sh, const struct conf_experiment *e,
		       const struct conf_variant *v, size_t m, double value, double t,
		       uint64_t unit_hash);
void live_outcome(struct live_shard *sh, const struct conf_experiment *e,
		  const struct conf_variant *v, size_t m, double value, double t);

/* Folds the shard's new data into its published copy (takes the shard's mutex once). */
void live_publish(struct live_shard *sh);

/*
 * Readers. live_collect merges every shard's published accumulators of experiment e (with e's
 * metric layout) into out[0..e->nvariants), allocated here (accum_variant_free each, then
 * free(out)). Returns 0 or -1.
 */
int live_collect(const struct conf_experiment *e, struct accum_variant ***out);
/* The analysis of e's live data with these metrics (e's own, or a variation of them, as
 * e->nmetrics) and this decision rule, at the weights in force; NULL when out of memory. */
struct analysis *live_analysis(const struct conf_experiment *e, const struct conf_metric *metrics,
			       const struct conf_decision *dec);

/* Totals over all shards for /metrics. */
struct live_totals {
	int npairs;
	/* per pair: counts by status code (index = code - 100, codes 100..599) */
	uint64_t (*codes)[500];
	/* per pair: duration histogram (cumulative counts per bucket), count and sum (s) */
	uint64_t (*dur)[LIVE_DURATION_BUCKETS];
	uint64_t *dur_count;
	double *dur_sum;
};
/* Fills t (allocating; live_totals_free). Returns 0 or -1. */
int live_totals_get(struct live_totals *t);
void live_totals_free(struct live_totals *t);

/*
 * Shadow comparisons for the live report, per experiment name, since the process started. Fed
 * with each shadow record exactly as it is logged (line: one JSON line without its newline),
 * so the live figures are the ones `abgate report` computes from the log. Shadow traffic is a
 * sample of the requests, so one lock serves every thread. live_shadow_record returns 0, or -1
 * when the line does not parse or memory ran out (then it is not counted).
 */
struct shadow_summary;
int live_shadow_record(const char *exp, const char *line, size_t len);
/* The summary of experiment exp's shadow records so far; false when it has none. Strings in
 * *out stay valid for the life of the process. */
bool live_shadow_summary(const char *exp, struct shadow_summary *out);

#endif
