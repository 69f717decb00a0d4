/*
 * outlog.h - the outcome log: JSON Lines written by one writer thread, in batches.
 *
 * Event-loop threads never write(2) a record themselves: each formats records into its own
 * staging buffer (struct outlog_buf, one per thread, no lock), and hands full buffers to the
 * writer (one mutex acquisition per batch, never per record). The writer thread appends
 * batches to the file with one write(2) each and fsyncs every fsync_ms. The queue between them
 * is bounded (max_pending bytes): when it is full, request records are dropped and counted
 * (outlog_dropped), while callers that must not lose anything (POST /outcomes) ask first with
 * outlog_write_block(), which either queues the whole block or refuses it.
 *
 * Record formats are those of DESIGN.md ("v":1; types request, outcome, config, shadow).
 */
#ifndef ABGATE_OUTLOG_H
#define ABGATE_OUTLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

struct outlog;
struct outlog_buf;

/* The bound on queued bytes when outlog_open() is given 0 (log.max_pending_bytes). */
#define OUTLOG_DEFAULT_MAX_PENDING (64u << 20)

/*
 * Opens (appends to, creating it 0640 if needed) PATH and starts the writer thread.
 * fsync_ms = 0 never fsyncs. max_pending is the bound on queued bytes (0: 64 MiB).
 * Returns the writer (owned by the caller, freed by outlog_close) or NULL with errno set.
 */
struct outlog *outlog_open(const char *path, uint32_t fsync_ms, size_t max_pending);

/* Writes everything queued, fsyncs, stops the thread and frees the writer. NULL is allowed.
 * Every outlog_buf of this writer must have been freed (flushed) first. */
void outlog_close(struct outlog *ol);

/* Asks the writer to reopen its file by path (SIGUSR1 after a rotation); returns at once.
 * Records queued before the call go to the old file, records queued after to the new one. */
void outlog_reopen(struct outlog *ol);

/* Blocks until everything queued before the call is written (tests, drain). */
void outlog_sync(struct outlog *ol);

/* Records dropped because the queue was full (request and shadow records only). */
uint64_t outlog_dropped(const struct outlog *ol);

/* Bytes written to the file so far (for tests and metrics). */
uint64_t outlog_written(const struct outlog *ol);

/*
 * Queues one block of complete lines (each ending in '\n') as a unit: either all of it is
 * queued (returns 0) or, when the queue has no room for it, nothing is (returns -1). Safe from
 * any thread. The bytes are copied.
 */
int outlog_write_block(struct outlog *ol, const char *data, size_t len);

/* A per-thread staging buffer of `size` bytes (0: 64 KiB). Owned by the caller. */
struct outlog_buf *outlog_buf_new(struct outlog *ol, size_t size);
/* Flushes what is staged and frees the buffer. NULL is allowed. */
void outlog_buf_free(struct outlog_buf *b);

/*
 * Reserves room for one record of at most maxlen bytes in the staging buffer (handing the
 * staged records to the writer first when they leave too little room) and returns where to
 * format it; outlog_commit() then adds the len bytes written there. Returns NULL when the
 * writer's queue is full: the record is then counted in outlog_dropped() and the caller skips it.
 */
char *outlog_reserve(struct outlog_buf *b, size_t maxlen);
void outlog_commit(struct outlog_buf *b, size_t len);

/* Hands the staged records to the writer (called by the loop's timer, e.g. every 50 ms). */
void outlog_flush(struct outlog_buf *b);

/*
 * Record formatting. Each formatter writes one complete JSON line (with '\n') into dst of
 * capacity cap and returns its length, or 0 if it did not fit. Strings are JSON-escaped;
 * numbers are never NaN/Infinity (non-finite doubles are written as null).
 */

/* "2026-11-22T18:50:15.123456Z" (27 chars + NUL). Cached per second: cheap per request. */
size_t outlog_format_ts(char *dst, size_t cap, const struct timeval *tv);

/* Appends s (len bytes) JSON-escaped, with the surrounding quotes, at dst; returns the length
 * written or 0 if it did not fit in cap. Invalid UTF-8 bytes are written as \u00XX. */
size_t outlog_json_str(char *dst, size_t cap, const char *s, size_t len);

struct outlog_request {
	struct timeval ts;
	const char *exp; size_t exp_len;         /* NULL: no experiment (default backend) */
	const char *variant; size_t variant_len;
	const char *unit; size_t unit_len;       /* NULL or len 0: no unit */
	const char *rid; size_t rid_len;
	int status;
	double latency_ms;
	const char *upstream; size_t upstream_len; /* "127.0.0.1:9002" or NULL */
	uint64_t bytes_in, bytes_out;
	bool forced;                             /* variant forced by a test header */
};
size_t outlog_format_request(char *dst, size_t cap, const struct outlog_request *r);

struct outlog_outcome {
	struct timeval ts;
	const char *exp, *variant, *unit, *rid, *metric; /* NUL-terminated; unit/rid may be NULL */
	double value;
	const char *id; /* the client's outcome id, written as "id" after "value"; NULL: none */
	bool pending;   /* a "pending_outcome" record: its variant (null) is left to `abgate
			   report`, which finds the request record of its rid in the logs */
};
size_t outlog_format_outcome(char *dst, size_t cap, const struct outlog_outcome *o);

/* {"v":1,"type":"config","ts":...,"generation":G,"exp":NAME,"weights":{"control":90,...}}:
 * weights given in basis points, written as percentages with up to two decimals. */
size_t outlog_format_config(char *dst, size_t cap, const struct timeval *ts, uint64_t generation,
			    const char *exp, const char *const *variants,
			    const uint32_t *weights_bp, size_t n);

#endif
