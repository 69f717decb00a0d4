/*
 * logrec.h - one outcome-log line (DESIGN.md "Outcome log") parsed into a flat record.
 *
 * Pure: bytes in, struct out, no I/O. A small hand-written JSON reader handles the shapes the
 * proxy writes (one object of scalars, plus the flat "weights" object of config records) without
 * allocating; any other valid JSON line (arrays, deeper nesting) falls back to cJSON. Strings
 * without escapes point into the line; escaped ones are decoded into the caller's scratch
 * buffer (the fallback copies its strings there too). Every pointer in the record is valid as
 * long as the line and the scratch buffer are.
 */
#ifndef ABGATE_LOGREC_H
#define ABGATE_LOGREC_H

#include <stdbool.h>
#include <stddef.h>

enum logrec_type {
	LOGREC_OTHER = 0, /* valid, of a type the report does not use */
	LOGREC_REQUEST,
	LOGREC_OUTCOME,
	LOGREC_CONFIG,
	LOGREC_SHADOW,
};

enum logrec_parse {
	LOGREC_OK = 0,
	LOGREC_MALFORMED, /* not one JSON object (torn line, garbage) */
	LOGREC_INVALID,	  /* JSON, but a required field is missing, mistyped or not finite */
};

struct logrec_str {
	const char *s; /* not NUL-terminated */
	size_t len;
};

#define LOGREC_MAX_WEIGHTS 32

struct logrec {
	enum logrec_type type;
	double ts; /* seconds since the epoch */
	struct logrec_str exp, variant, unit, metric;
	bool has_unit;
	int status;	   /* request */
	double latency_ms; /* request */
	bool forced;	   /* request: variant forced by a test header */
	double value;	   /* outcome: true/false read as 1/0 */
	size_t nweights;   /* config */
	struct logrec_str wname[LOGREC_MAX_WEIGHTS];
	double weight[LOGREC_MAX_WEIGHTS];

	/*
	 * shadow: status and latency_ms above are the shadow's answer, present only when
	 * has_status / has_latency (both null when the exchange failed, then error says why).
	 * The three-valued flags hold 1 (true), 0 (false) or -1 (null or absent: the comparison
	 * was not possible, or the experiment compares no JSON field).
	 */
	bool has_status, has_latency;
	struct logrec_str primary_variant, error;
	bool has_primary_variant, has_error;
	bool has_primary_status, has_primary_latency;
	int primary_status;
	double primary_latency_ms;
	signed char same_status, same_body, field_agree;
	bool has_field_diff; /* false: absent, or null (the field is missing from an answer) */
	double field_diff;
};

/*
 * Parses line[0..len) (no newline; a trailing CR is ignored). scratch (at least len bytes)
 * holds decoded strings. Required fields: v = 1, type, ts, exp; request: variant, status,
 * latency_ms; outcome: variant, metric, value; config: weights. A shadow record needs nothing
 * more, but the fields it has must be well typed: status, primary_status (integers 0-999) and
 * latency_ms, primary_latency_ms, field_diff (finite numbers) or null; same_status, same_body,
 * field_agree booleans or null; error and primary_variant strings. Returns LOGREC_OK with *out
 * filled, or why the line must be skipped.
 */
enum logrec_parse logrec_parse(const char *line, size_t len, struct logrec *out, char *scratch,
			       size_t scratch_len);

/* "2026-11-22T18:50:15.123456Z" (fraction optional, "Z" or "+HH:MM"/"-HH:MM") to seconds since
 * the epoch; returns 0 or -1. */
int logrec_parse_ts(const char *s, size_t len, double *out);

#endif
