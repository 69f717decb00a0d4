/*
 * accum.h - mergeable accumulators for the statistics of one experiment.
 *
 * Everything here is updated on the request path and merged on read, so it allocates nothing
 * per update, takes no lock and calls no GSL: the daemon keeps one set per worker thread and
 * merges the sets (accum_*_merge) when a report or a decision is due; the report command keeps
 * one set per (experiment, variant) while it streams the logs.
 *
 *   accum_moments  count, mean and M2 by Welford; merged by the formula of Chan, Golub and
 *                  LeVeque. Values are stored relative to a reference value (the first value
 *                  seen) so that a large common offset (1e9 + noise) keeps its precision.
 *   accum_hist     a log-linear histogram: 128 linear sub-buckets per power of two for
 *                  magnitudes in [2^-10, 2^30), mirrored for negative values, one bucket for
 *                  values of smaller magnitude (zero). Fixed memory, O(1) record, merged by
 *                  adding counts; a quantile read from it is within 0.4% of a value of the
 *                  bucket holding the wanted rank (bucket width / lower edge = 1/128).
 *   accum_hll      a HyperLogLog sketch (2^12 one-byte registers, standard error ~1.6%); kept
 *                  for callers that want an estimate. The analysis never uses it.
 *   accum_uset     the exact set of distinct units (64-bit unit keys, open addressing) with the
 *                  configuration epochs each unit was seen in; bounded by a cap, beyond which it
 *                  keeps an exact hash-defined sample of the units (1/2, 1/4, ... of them).
 *   accum_umap     per-unit sums of one metric (unit key -> number of values, sum of values),
 *                  exact up to a cap; past it the map is dropped and the pseudo-unit buckets
 *                  carry the variance.
 *   accum_buckets  ACCUM_BUCKETS pseudo-unit buckets per metric: count and sum of the values of
 *                  the units a second hash of the unit puts there. All of a unit's values fall
 *                  in one bucket, so bucket totals are independent and the delta method applies
 *                  across buckets. Fixed memory, merged by adding.
 *   accum_series   per-interval counts and sums over time in 128 slots whose width doubles
 *                  (pairs of slots merge) whenever a timestamp falls outside the covered span.
 *
 * accum_metric bundles what one (experiment, variant, metric) needs; accum_variant bundles the
 * per-variant request count, units and traffic series with one accum_metric per metric.
 */
#ifndef ABGATE_ACCUM_H
#define ABGATE_ACCUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- moments ---- */

struct accum_moments {
	uint64_t n;
	double ref;  /* reference value subtracted from every value (the first value seen) */
	double mean; /* mean of (x - ref) */
	double m2;   /* sum of squared deviations from the mean */
	double min, max;
};

void accum_moments_init(struct accum_moments *m);
/* Adds one value; x must be finite (the caller checks). */
void accum_moments_add(struct accum_moments *m, double x);
/* Adds src into dst (Chan et al.); src is unchanged. */
void accum_moments_merge(struct accum_moments *dst, const struct accum_moments *src);
/* The mean of the values (0 when n = 0). */
double accum_moments_mean(const struct accum_moments *m);
/* Sample variance M2/(n-1) (0 when n < 2); population variance M2/n (0 when n = 0). */
double accum_moments_var(const struct accum_moments *m);
double accum_moments_pvar(const struct accum_moments *m);

/* ---- log-linear histogram ---- */

#define ACCUM_HIST_SUB_BITS 7
#define ACCUM_HIST_SUB (1 << ACCUM_HIST_SUB_BITS) /* linear sub-buckets per power of two */
#define ACCUM_HIST_EMIN (-10)			  /* smallest magnitude kept: 2^-10 */
#define ACCUM_HIST_EMAX 30			  /* magnitudes clamp below 2^30 */
#define ACCUM_HIST_HALF ((ACCUM_HIST_EMAX - ACCUM_HIST_EMIN) * ACCUM_HIST_SUB)
/* Buckets in value order: negative (most negative first), zero, positive. */
#define ACCUM_HIST_BUCKETS (2 * ACCUM_HIST_HALF + 1)

struct accum_hist {
	uint64_t total;
	uint32_t lo, hi; /* every non-zero count is in counts[lo, hi) (both 0 while empty) */
	uint64_t counts[ACCUM_HIST_BUCKETS];
};

void accum_hist_init(struct accum_hist *h);
/* Empties an initialised histogram, touching only the buckets in use (cheap to repeat). */
void accum_hist_clear(struct accum_hist *h);
/* Records one finite value. Magnitudes beyond the range go to the outermost bucket. */
void accum_hist_add(struct accum_hist *h, double x);
void accum_hist_merge(struct accum_hist *dst, const struct accum_hist *src);
/* The bucket index of x, and the value that represents bucket i (its midpoint). */
size_t accum_hist_index(double x);
double accum_hist_value(size_t i);
/*
 * The q-quantile (0 <= q <= 1) as the representative value of the bucket that holds the
 * ceil(q*total)-th smallest value (the smallest for q = 0), clamped to [lo, hi] (pass the
 * exact minimum and maximum when known, else -INFINITY and INFINITY). NAN when empty.
 */
double accum_hist_quantile(const struct accum_hist *h, double q, double lo, double hi);

/* ---- distinct count ---- */

#define ACCUM_HLL_BITS 12
#define ACCUM_HLL_REGS (1 << ACCUM_HLL_BITS)

struct accum_hll {
	uint8_t reg[ACCUM_HLL_REGS];
};

void accum_hll_init(struct accum_hll *h);
/* Adds an item by its 64-bit hash (use accum_hash64 for strings). */
void accum_hll_add(struct accum_hll *h, uint64_t hash);
void accum_hll_merge(struct accum_hll *dst, const struct accum_hll *src);
/* Estimated number of distinct hashes added (with the small-range correction). */
double accum_hll_estimate(const struct accum_hll *h);
/* A well-mixed 64-bit hash of len bytes at p. */
uint64_t accum_hash64(const void *p, size_t len);

/* ---- units ---- */

/*
 * A unit's key: a second hash of the unit's 64-bit hash (independent in effect of the cohort
 * assignment, which keeps H mod 10000). Its top ACCUM_BUCKET_BITS bits pick the pseudo-unit
 * bucket, its low bits the sample (below), bits 16 and up the slot in a hash table. Never 0.
 * unit_hash 0 (no unit: the value is its own unit) gives a fresh key, unique in the process.
 */
uint64_t accum_unit_key(uint64_t unit_hash);

#define ACCUM_BUCKET_BITS 10
#define ACCUM_BUCKETS (1u << ACCUM_BUCKET_BITS)
/* Default caps (units): the live proxy's; `abgate report` raises them (accum_variant_limit). */
#define ACCUM_UNITS_MAX (1u << 17)
#define ACCUM_SUMS_MAX (1u << 15)
#define ACCUM_EPOCHS 32 /* epoch bits per unit; epochs 31 and later share the last bit */

struct accum_uset {
	uint64_t *key;	 /* cap slots; 0 marks an empty one */
	uint32_t *epoch; /* per slot: bit e set when the unit was seen in epoch e */
	size_t cap, count;
	size_t max;	/* at most this many units are held (0: ACCUM_UNITS_MAX) */
	unsigned level; /* only keys with key & (2^level - 1) == 0 are held (0: every unit) */
};

void accum_uset_init(struct accum_uset *s, size_t max);
/* Adds a unit key seen in epoch e (0..; clamped). Returns 0 or -1 (out of memory). */
int accum_uset_add(struct accum_uset *s, uint64_t key, unsigned e);
int accum_uset_merge(struct accum_uset *dst, const struct accum_uset *src);
/* Empties s (keeps its memory when small). */
void accum_uset_clear(struct accum_uset *s);
void accum_uset_release(struct accum_uset *s);
/*
 * The units held that belong to the sample of level `level` (>= s->level): their number, and
 * per epoch (when per_epoch is not NULL, ACCUM_EPOCHS entries, added to) the units seen in it.
 */
double accum_uset_count(const struct accum_uset *s, unsigned level, double *per_epoch);

struct accum_umap {
	uint64_t *key;	/* cap slots; 0 marks an empty one */
	uint64_t *n;	/* values of the unit */
	double *sum;	/* sum of (value - the metric's ref) over the unit's values */
	size_t cap, count;
	size_t max;	/* 0: ACCUM_SUMS_MAX */
	bool overflow;	/* more than max units came: the map is freed and stays empty */
};

struct accum_buckets {
	uint64_t n[ACCUM_BUCKETS];
	double sum[ACCUM_BUCKETS]; /* sum of (value - the metric's ref) */
};

/* ---- time series ---- */

#define ACCUM_SERIES_SLOTS 128

struct accum_series {
	int64_t origin; /* start of slot 0, seconds since the epoch, a multiple of width */
	int64_t width;	/* seconds per slot, a power of two; 0 while empty */
	uint64_t n[ACCUM_SERIES_SLOTS];
	double sum[ACCUM_SERIES_SLOTS];
};

void accum_series_init(struct accum_series *s);
/* Adds a count of 1 and x to the slot holding time t (seconds since the epoch, finite). */
void accum_series_add(struct accum_series *s, double t, double x);
/* Adds src into dst; the result covers both spans (the width may grow). */
void accum_series_merge(struct accum_series *dst, const struct accum_series *src);
/* Widens s (doubling its width, re-aligning its origin) until [t0, t1] fits in its slots. */
void accum_series_cover(struct accum_series *s, int64_t t0, int64_t t1);

/* ---- per (experiment, variant, metric) and per variant ---- */

struct accum_metric {
	struct accum_moments mom;   /* every value; mom.ref is the reference of the sums below */
	uint64_t successes;	    /* values equal to 1 */
	uint64_t nonbinary;	    /* values other than 0 and 1 */
	struct accum_hist *hist;    /* NULL unless the metric is continuous; owned */
	struct accum_series series; /* n and sum of values per interval */
	struct accum_buckets *bk;   /* pseudo-unit buckets; owned */
	struct accum_umap units;    /* exact per-unit sums while under the cap */
};

/* with_hist: allocate the histogram (continuous metrics). Returns 0 or -1 (out of memory). */
int accum_metric_init(struct accum_metric *am, bool with_hist);
/* Adds value x at time t for the unit of key `key` (accum_unit_key). */
void accum_metric_add_unit(struct accum_metric *am, double t, double x, uint64_t key);
/* Adds a value that is its own unit (independent of every other value). */
void accum_metric_add(struct accum_metric *am, double t, double x);
/* Empties the metric, keeping its allocations. */
void accum_metric_clear(struct accum_metric *am);
/* dst gets a histogram when src has one and dst has none. Returns 0 or -1 (out of memory). */
int accum_metric_merge(struct accum_metric *dst, const struct accum_metric *src);
/* Frees the histogram, buckets and unit map; the struct belongs to the caller. NULL is allowed. */
void accum_metric_release(struct accum_metric *am);

/*
 * The metric's mean as a ratio over units (sum of values / number of values) with the variance
 * of that mean by the delta method, clustered by unit: with e_i = s_i - mean * n_i over the M
 * groups (s_i, n_i: sum and count of group i's values),
 *     var_mean = M / (M - 1) * sum_i e_i^2 / N^2,     df = M - 1.
 * The groups are the units themselves while the exact per-unit map holds them all, else the
 * non-empty pseudo-unit buckets. With one value per unit this is s^2 / N with df = N - 1, the
 * variance Welch's test uses. deff = var_mean / (s^2 / N), the design effect (1 when s^2 = 0).
 */
struct accum_unitvar {
	bool ok;	 /* at least 2 groups and 2 values */
	bool bucketed;	 /* the groups are pseudo-unit buckets */
	double n;	 /* values */
	double groups;	 /* M */
	double units;	 /* units with a value (exact), or NAN when bucketed */
	double mean;	 /* of the values */
	double var_mean; /* delta-method variance of the mean */
	double df;	 /* M - 1 */
	double deff;
};
void accum_metric_unitvar(const struct accum_metric *am, struct accum_unitvar *out);

struct accum_variant {
	uint64_t requests;
	struct accum_uset units; /* distinct units, exact (or an exact sample past the cap) */
	struct accum_series traffic; /* requests per interval */
	size_t nmetrics;
	struct accum_metric *metrics; /* nmetrics entries; owned */
};

/*
 * Allocates a variant with nmetrics metrics; continuous[i] says whether metric i keeps a
 * histogram (NULL: every metric does). Owned by the caller (accum_variant_free); NULL when
 * out of memory.
 */
struct accum_variant *accum_variant_new(size_t nmetrics, const bool *continuous);
/* Sets the caps of v's unit set and of its metrics' unit maps (0: keep the default). */
void accum_variant_limit(struct accum_variant *v, size_t units_max, size_t sums_max);
/* Counts one request (t: seconds since the epoch) of the unit of key `key` (accum_unit_key;
 * 0: no unit, not counted as a unit) seen in configuration epoch `epoch` (0 when unknown).
 * Returns 0, or -1 when the unit set could not grow (the request is counted, the unit not). */
int accum_variant_request(struct accum_variant *v, double t, uint64_t key, unsigned epoch);
/* Empties v, keeping its shape and allocations. */
void accum_variant_clear(struct accum_variant *v);
/* Adds src into dst; both must have the same number of metrics. Returns 0 or -1. */
int accum_variant_merge(struct accum_variant *dst, const struct accum_variant *src);
void accum_variant_free(struct accum_variant *v);

#endif
