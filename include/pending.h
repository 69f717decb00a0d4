/*
 * pending.h - pending outcomes attributed offline, for `abgate report`.
 *
 * POST /outcomes?defer=1 records an outcome that names only a request id the instance does
 * not know (served by another instance, or past its window) as a "pending_outcome" record,
 * variant null. pending_attribute() finds, in all the logs given, the request record of each
 * pending outcome's id in the same experiment, and hands the outcome on with the variant that
 * request was served: the same attribution the live proxy makes by request id.
 *
 * Memory grows with the pending outcomes only (not with the logs): a first pass collects
 * them, and only when there are any does a second pass read the request records. Pending
 * outcomes with the same (exp, metric, id) count once (a retry posted to two instances); a
 * request id served several times is attributed by the first request record read.
 */
#ifndef ABGATE_PENDING_H
#define ABGATE_PENDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One pending outcome, attributed; strings are valid during the callback only. */
struct pending_outcome {
	double ts; /* when it was recorded, seconds since the epoch */
	const char *exp, *variant, *metric;
	double value;
	uint64_t unit_hash; /* accum_hash64 of its request's unit; 0 when that had none */
};

/* Takes one attributed outcome; returns 0, or -1 to stop (out of memory). */
typedef int (*pending_fold_cb)(void *arg, const struct pending_outcome *o);

struct pending_counts {
	uint64_t pending;      /* pending records read (of the experiment asked for) */
	uint64_t attributed;   /* handed to the callback */
	uint64_t unattributed; /* no request record of their id in the logs */
	uint64_t duplicates;   /* the same (exp, metric, id) as an earlier one */
};

/*
 * Attributes the pending outcomes of the logs paths[0..n) ("-", standard input, cannot be
 * read twice and is left out) of experiment only (NULL: all) and calls fold for each.
 * Returns 0, or -1 when a log cannot be read or memory runs out (errno set).
 */
int pending_attribute(const char *const *paths, size_t n, const char *only, pending_fold_cb fold,
		      void *arg, struct pending_counts *out);

/*
 * Copies the string value after key (such as ",\"rid\":\"") in a record the proxy wrote into
 * out (NUL-terminated): the proxy's names and request ids hold no quote or backslash, and such
 * a key cannot occur inside a JSON string. False when absent, empty, escaped or longer than
 * cap - 1.
 */
bool pending_plain_field(const char *line, size_t len, const char *key, char *out, size_t cap);

#endif
