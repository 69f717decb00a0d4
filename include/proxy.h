/*
 * proxy.h - the data path: one client session per accepted connection, parsing requests,
 * routing them to a variant's backend, streaming bodies both ways with bounded buffers, and
 * recording each exchange (outcome log, counters).
 */
#ifndef ABGATE_PROXY_H
#define ABGATE_PROXY_H

#include <stdbool.h>

struct worker;
struct worker_listener;

/* Accepts every pending connection on listener l of worker w (until EAGAIN). */
void proxy_accept(struct worker *w, const struct worker_listener *l);

/* The callback upstream pools deliver their connections' edges to (owner is a session). */
void proxy_upstream_event(void *owner, short what);

/* Makes the socket writes queued during this pass of the event loop, together, and runs
 * their sessions on; called after every pass. */
void proxy_flush(struct worker *w);

/* Closes idle keep-alive sessions (drain); sessions with a request in flight finish first and
 * then close. Called between passes of the loop, after proxy_flush(), so that a request whose
 * read was queued in the pass is read and served first. Returns the number of sessions still
 * open. */
unsigned proxy_drain(struct worker *w);

/* Closes every session at once (shutdown). */
void proxy_close_all(struct worker *w);

#endif
