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

struct httpd_req;

/* Largest body of POST /outcomes (its batch holds at most OUTCOME_BATCH_MAX outcomes, see
 * outcome.h). Other endpoints take at most ADMIN_SMALL_BODY bytes (and ignore them). */
#define ADMIN_OUTCOMES_MAX_BYTES (4u << 20)
#define ADMIN_SMALL_BODY 4096

/* The httpd head callback for the admin listener (see httpd_head_cb); arg is unused. */
bool admin_head(struct httpd_req *req, void *arg, size_t *max_body);

/* The httpd handler for the admin listener; arg is unused. */
void admin_handle(struct httpd_req *req, void *arg);

#endif
