/*
 * conn.c - plain-socket implementation of the connection interface (include/conn.h).
 */
#include <errno.h>
#include <event2/event.h>
#include <unistd.h>

#include "conn.h"

ssize_t conn_read(struct conn *c, void *buf, size_t len)
{
	ssize_t n;

	do
		n = read(c->fd, buf, len);
	while (n < 0 && errno == EINTR);
	return n;
}

ssize_t conn_writev(struct conn *c, const struct iovec *iov, int iovcnt)
{
	ssize_t n;

	do
		n = writev(c->fd, iov, iovcnt);
	while (n < 0 && errno == EINTR);
	return n;
}

void conn_close(struct conn *c)
{
	if (c->ev != NULL) {
		event_free(c->ev);
		c->ev = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	c->readable = c->writable = false;
}
