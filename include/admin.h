/*
 * admin.h - the admin API on its own listener: /healthz, /readyz, POST /reload (and, as the
 * other modules arrive, /metrics, /experiments, /outcomes). It speaks through httpd.
 */
#ifndef ABGATE_ADMIN_H
#define ABGATE_ADMIN_H

struct httpd_req;

/* The httpd handler for the admin listener; arg is unused. */
void admin_handle(struct httpd_req *req, void *arg);

#endif
