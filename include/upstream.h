/*
 * upstream.h - upstream servers and per-worker keep-alive connection pools.
 *
 * Servers are registered process-wide by address (upstream_register, at configuration load)
 * and keep their id across reloads, so a worker's pooled connections survive a reload. Each
 * worker owns a struct upstream_pools: idle connections per server (LIFO, bounded), and the
 * connections its sessions are using. A connection's event is registered once, edge-triggered,
 * for its whole life; its callback goes to the owning session, or, while idle, watches for the
 * server closing it.
 */
#ifndef ABGATE_UPSTREAM_H
#define ABGATE_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include "conn.h"

struct event_base;
struct conf;
struct conf_server;
struct upstream_pools;

/* Called with the owning session when its upstream connection has an edge (EV_READ/EV_WRITE). */
typedef void (*upstream_event_cb)(void *owner, short what);

struct upconn {
	struct conn c;
	struct upstream_pools *pools; /* (ref) */
	int server;                   /* registry id */
	void *owner;                  /* (ref) session using it; NULL while idle */
	struct upconn *next_idle;
	bool connecting;              /* non-blocking connect not yet confirmed */
	void *tls_ctx;                /* (ref) the TLS context it was made with, NULL: plain */
	uint32_t uses;                /* requests sent on this connection */
};

/* Why an exchange with a server failed (abgate_upstream_errors_total{reason}). */
enum upstream_err {
	UPSTREAM_ERR_CONNECT,  /* refused, unreachable, reset while connecting */
	UPSTREAM_ERR_TIMEOUT,  /* connect or response timeout */
	UPSTREAM_ERR_CLOSED,   /* closed or reset before the response was complete */
	UPSTREAM_ERR_INVALID,  /* a response that does not parse */
	UPSTREAM_ERR_COUNT,
};

/*
 * Server health, shared by all threads. Passive: `fall` consecutive failed exchanges mark a
 * server down (ejected); it is then skipped, except that once its back-off has passed one
 * request is let through as a probe; a success marks it up again, a failure doubles the
 * back-off (1 s, 2 s, ... 30 s). Active checks (health.c) report with upstream_health_result,
 * which marks a server down after `fall` failed checks and up after `rise` good ones.
 * The hot paths cost one relaxed load while a server is healthy.
 */
void upstream_note_error(int server, enum upstream_err why, uint32_t fall);
void upstream_note_success(int server);
void upstream_health_result(int server, bool ok, uint32_t rise, uint32_t fall);
/* May a request go to server now? (true when up, or when a down server's probe is due: the
 * first caller after the back-off gets true and the next back-off starts) */
bool upstream_server_usable(int server);
uint64_t upstream_error_count(int server, enum upstream_err why);
bool upstream_server_up(int server);
const char *upstream_err_name(enum upstream_err why);

/* Registers every server of the generation (assigning conf_server.id); returns 0 or -1. */
int upstream_register_conf(struct conf *c);
/* The address text of server id ("127.0.0.1:9001"); *len set when len is not NULL. */
const char *upstream_server_name(int id, size_t *len);
/* The socket address of server id. */
void upstream_server_addr(int id, struct sockaddr_storage *ss, socklen_t *len);
/* Number of registered servers. */
int upstream_server_count(void);

struct upstream_pools *upstream_pools_new(struct event_base *base, upstream_event_cb cb,
					  uint32_t max_idle_per_server);
/* Closes every idle connection and frees the pools; connections in use must be released. */
void upstream_pools_free(struct upstream_pools *p);

/*
 * Gives owner a connection to server id: an idle pooled one (*reused = true) or a new one whose
 * connect may still be in progress (u->connecting). Returns NULL with errno set when the socket
 * could not even be created or the connect failed at once. tls_ctx (an SSL_CTX) is used for
 * https:// servers; verify checks the server's certificate against its host name.
 */
struct upconn *upstream_acquire(struct upstream_pools *p, int server, void *tls_ctx, bool verify,
			       void *owner, bool *reused);

/* Takes the connection back: parked idle when reusable (and the pool has room), else closed
 * and freed. The owner must not touch u afterwards. */
void upstream_release(struct upconn *u, bool reusable);

/* Idle connections currently pooled, all servers (for metrics and tests). */
size_t upstream_idle_count(const struct upstream_pools *p);

#endif
