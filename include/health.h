/*
 * health.h - active health checks of backend servers, on the main thread's event loop.
 *
 * For every backend with `health: {path, interval_ms, timeout_ms, rise, fall}`, each server
 * gets a GET of the path every interval; a 2xx or 3xx answer within the timeout is a pass.
 * (For https:// servers the check is a TCP connect.) Results go to upstream_health_result(),
 * which marks servers down after `fall` failures and up after `rise` passes; the data path then
 * skips servers that are down.
 */
#ifndef ABGATE_HEALTH_H
#define ABGATE_HEALTH_H

struct conf;
struct event_base;
struct health;

/* A checker on base (owned by the caller: health_free). NULL when out of memory. */
struct health *health_new(struct event_base *base);
/* Replaces the running checks with those generation c asks for (at start and each reload). */
void health_apply(struct health *h, const struct conf *c);
/* Stops every check and frees the checker. NULL is allowed. */
void health_free(struct health *h);

#endif
