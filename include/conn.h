/*
 * conn.h - the connection interface under the data path: read, write(v), shutdown, close on a
 * non-blocking socket, plain or TLS. The proxy moves bytes only through these calls, so TLS
 * plugs in here without touching the HTTP logic.
 *
 * Return convention of conn_read/conn_writev: > 0 bytes moved; 0 from conn_read means the peer
 * closed; -1 with errno EAGAIN means "not now" (wait for the edge), any other errno is fatal
 * for the connection.
 */
#ifndef ABGATE_CONN_H
#define ABGATE_CONN_H

#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

struct event;

struct conn {
	int fd;             /* -1 when closed */
	struct event *ev;   /* registered once: EV_READ|EV_WRITE|EV_PERSIST|EV_ET */
	void *tls;          /* TLS state, NULL for plain sockets */
	bool readable;      /* an edge said readable and we have not seen EAGAIN/short read */
	bool writable;      /* no EAGAIN since the last EV_WRITE edge */
};

ssize_t conn_read(struct conn *c, void *buf, size_t len);
ssize_t conn_writev(struct conn *c, const struct iovec *iov, int iovcnt);
/* Closes the socket and frees the event; the struct itself belongs to the caller. */
void conn_close(struct conn *c);

#endif
