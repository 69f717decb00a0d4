/*
 * shadow.h - shadow traffic: a sampled copy of an experiment's requests goes to a shadow
 * backend, fire and forget, and its answer is compared with the primary's.
 *
 * A shadow never delays or fails the client's request: it has its own upstream connection,
 * its own timeout, and bounded copies of the request (64 KiB) and of both answers (256 KiB);
 * a worker runs at most SHADOW_MAX_INFLIGHT at once and counts what it drops. When both the
 * shadow's and the primary's answers are in, it logs a "shadow" record: the shadow's status
 * and latency, whether the status matches, whether the body is byte-identical, and, with
 * `compare: {json_field, tolerance}`, whether that numeric field agrees within the tolerance.
 */
#ifndef ABGATE_SHADOW_H
#define ABGATE_SHADOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

struct conf;
struct conf_experiment;
struct shadow;
struct worker;

#define SHADOW_MAX_INFLIGHT 256

/*
 * Starts shadowing the request being routed when experiment e mirrors and the sample picks it:
 * head is the request head as rewritten for the upstream. Returns the shadow (owned by the
 * worker; the caller keeps a reference until shadow_primary_end) or NULL.
 */
struct shadow *shadow_begin(struct worker *w, struct conf *c, const struct conf_experiment *e,
			    const char *variant, enum http_method method, const char *head,
			    size_t head_len, const char *rid, size_t rid_len);
/* Request body bytes, in order, as they are forwarded to the primary. */
void shadow_request_body(struct shadow *sh, const char *p, size_t n);
/* The whole request is known: the shadow sends it now. */
void shadow_request_done(struct shadow *sh);
/* The primary's response head and body bytes as they stream to the client. */
void shadow_primary_head(struct shadow *sh, int status, bool chunked);
void shadow_primary_body(struct shadow *sh, const char *p, size_t n);
/* The primary exchange is over (complete or not); the caller lets go of sh. */
void shadow_primary_end(struct shadow *sh, double latency_ms, bool complete);

/* An edge on the shadow's upstream connection (owner dispatch from the pools). */
void shadow_event(struct shadow *sh, short what);
/* Frees every shadow of the worker (shutdown). */
void shadow_close_all(struct worker *w);

#endif
