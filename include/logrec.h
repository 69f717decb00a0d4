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
};

/*
 * Parses line[0..len) (no newline; a trailing CR is ignored). scratch (at least len bytes)
 * holds decoded strings. Required fields: v = 1, type, ts, exp; request: variant, status,
 * latency_ms; outcome: variant, metric, value; config: weights. Returns LOGREC_OK with *out
 * filled, or why the line must be skipped.
 */
enum logrec_parse logrec_parse(const char *line, size_t len, struct logrec *out, char *scratch,
			       size_t scratch_len);

/* "2026-11-22T18:50:15.123456Z" (fraction optional, "Z" or "+HH:MM"/"-HH:MM") to seconds since
 * the epoch; returns 0 or -1. */
int logrec_parse_ts(const char *s, size_t len, double *out);

#endif
