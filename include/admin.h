/*
 * admin.h - the admin API on its own listener (the endpoints are listed in admin.c). It speaks
 * through httpd: admin_head() judges each request on its head (the bearer token, the method,
 * the query, the body size the endpoint allows) before any body byte is read, and admin_handle()
 * answers the requests it let through.
 */
#ifndef ABGATE_ADMIN_H
#define ABGATE_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

struct httpd_req;

/* Largest body of POST /outcomes (its batch holds at most OUTCOME_BATCH_MAX outcomes, see
 * outcome.h). Other endpoints take at most ADMIN_SMALL_BODY bytes (and ignore them). */
#define ADMIN_OUTCOMES_MAX_BYTES (4u << 20)
#define ADMIN_SMALL_BODY 4096

enum admin_endpoint {
	EP_NONE,
	EP_HEALTHZ,
	EP_READYZ,
	EP_METRICS,
	EP_EXPERIMENTS,
	EP_REPORT,
	EP_COMMAND,
	EP_RELOAD,
	EP_OUTCOMES,
};

/* What admin_judge() looks at: spans of a parsed head (not NUL-terminated). */
struct admin_request {
	enum http_method method;
	const char *path; /* (ref) */
	size_t path_len;
	const char *query; /* (ref) without the '?' */
	size_t query_len;
	const char *auth; /* (ref) the Authorization value, NULL when absent */
	size_t auth_len;
};

struct admin_verdict {
	int status;                 /* 0: go on; else the answer (401, 404, 405, 400) */
	char reason[192];           /* why, when status != 0 */
	bool challenge;             /* a 401: send WWW-Authenticate */
	enum admin_endpoint endpoint;
	size_t max_body;            /* the body the endpoint takes */
};

/*
 * Judges a request on its head alone, in this order: the bearer token (token NULL: none is
 * needed), the endpoint, its method, its query parameters. Pure, so a fuzzer drives it.
 */
void admin_judge(const struct admin_request *r, const char *token, struct admin_verdict *v);

/* The httpd head callback for the admin listener (see httpd_head_cb); arg is unused. */
bool admin_head(struct httpd_req *req, void *arg, size_t *max_body);

/* The httpd handler for the admin listener; arg is unused. */
void admin_handle(struct httpd_req *req, void *arg);

#endif
