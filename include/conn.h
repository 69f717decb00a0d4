/*
 * conn.h - the connection interface under the data path: read, write(v), close on a
 * non-blocking socket, plain or TLS. The proxy moves bytes only through these calls, so TLS
 * plugs in here without touching the HTTP logic.
 *
 * Edge-triggered readiness: conn_event() records an edge (EV_READ/EV_WRITE/EV_CLOSED) in the
 * readable and writable flags; conn_read()/conn_writev() clear them when the socket has nothing
 * more to give or take, so the caller simply tries while a flag is set. Sockets are registered
 * with EV_CLOSED so that a FIN arriving with the last data is not mistaken for an empty socket. A TLS read may need the socket to be
 * writable (and a TLS write readable); conn_event() maps those edges for it.
 *
 * Return convention of conn_read/conn_writev: > 0 bytes moved; 0 from conn_read means the peer
 * closed; -1 with errno EAGAIN means "not now" (wait for the edge), EPROTONOSUPPORT (read) that
 * a plain HTTP request arrived on a TLS listener, any other errno is fatal for the connection
 * (TLS failures are logged here, with conn.name).
 */
#ifndef ABGATE_CONN_H
#define ABGATE_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct event;

struct conn {
	int fd;             /* -1 when closed */
	struct event *ev;   /* registered once: EV_READ|EV_WRITE|EV_PERSIST|EV_ET */
	void *tls;          /* SSL, NULL for plain sockets */
	const char *name;   /* (ref) peer name for log lines */
	bool readable;      /* an edge said readable and nothing since said it is empty */
	bool peer_closed;   /* the peer's FIN has arrived (EV_CLOSED): read until 0 */
	bool writable;      /* no EAGAIN since the last EV_WRITE edge */
	bool tls_sniff;     /* server side: first bytes not yet checked for a TLS handshake */
	bool read_wants_write;  /* the last TLS read stopped for want of writability */
	bool write_wants_read;  /* the last TLS write stopped for want of readability */
	bool tls_drained;   /* the latest socket read under TLS gave less than asked for */
	uint32_t retry_len; /* a TLS write to repeat with exactly this length */
};

/* Records an edge reported by the event loop. */
void conn_event(struct conn *c, short what);

ssize_t conn_read(struct conn *c, void *buf, size_t len);
ssize_t conn_writev(struct conn *c, const struct iovec *iov, int iovcnt);
/* Note the result n of reading into len bytes of room, or of writing total bytes, made on a
 * plain socket by other means (errno set when n < 0), as conn_read() and conn_writev() do for
 * their own: the readable or writable flag drops when the socket is found empty or full. */
void conn_note_read(struct conn *c, ssize_t n, size_t len);
void conn_note_write(struct conn *c, ssize_t n, size_t total);

/* Puts TLS on an accepted socket (server side) with SSL_CTX ctx. Returns 0 or -1. */
int conn_tls_accept(struct conn *c, void *ctx);
/* Puts TLS on a connecting socket (client side): SNI and, when verify, the host name check
 * against host. Returns 0 or -1. */
int conn_tls_connect(struct conn *c, void *ctx, const char *host, bool verify);

/* Ends the sending side: a TLS close_notify (once the handshake is done), then a TCP half-close.
 * Reading may go on (see net_linger_read()). */
void conn_shutdown_write(struct conn *c);

/* Closes the socket and frees the event and TLS state; the struct belongs to the caller. */
void conn_close(struct conn *c);

#endif
