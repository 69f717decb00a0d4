/*
 * conn.c - plain and TLS implementations of the connection interface (include/conn.h).
 */
#include <errno.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "tls.h"

#define TLS_RECORD 16384

void conn_event(struct conn *c, short what)
{
	if (what & EV_CLOSED)
		c->peer_closed = true;
	if (what & (EV_READ | EV_CLOSED)) {
		c->readable = true;
		if (c->write_wants_read)
			c->writable = true;
	}
	if (what & EV_WRITE) {
		c->writable = true;
		if (c->read_wants_write)
			c->readable = true;
	}
}

/* Maps an SSL_get_error() result to the return convention; logs fatal ones. */
static ssize_t tls_fail(struct conn *c, int ret, bool reading)
{
	SSL *ssl = c->tls;
	int e = SSL_get_error(ssl, ret);

	switch (e) {
	case SSL_ERROR_WANT_READ:
		c->readable = false;
		if (reading)
			c->read_wants_write = false;
		else
			c->write_wants_read = true;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		c->writable = false;
		if (reading)
			c->read_wants_write = true;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0) {
			if (ret == 0 || errno == 0)
				return 0; /* the peer closed without close_notify */
			return -1;
		}
		/* fall through */
	default: {
		long v = SSL_get_verify_result(ssl);
		if (v != X509_V_OK)
			log_warnx("TLS with %s: certificate rejected: %s", c->name ? c->name : "peer",
				  X509_verify_cert_error_string(v));
		else
			tls_log_errors(c->name ? c->name : "TLS");
		ERR_clear_error();
		errno = EPROTO;
		return -1;
	}
	}
}

/*
 * TLS reads run with read-ahead: OpenSSL asks the socket for as much as its buffer holds, so a
 * request costs one read() instead of one for the record header and one for its body. This
 * callback on the socket's BIO notes whether the latest such read came back short, which, as
 * for a plain socket, means the socket was empty after it: conn_read() then clears `readable`
 * without another read to see EAGAIN. Only the latest read counts: one SSL_read() may read
 * several times, and an earlier short read says nothing about what came after it.
 */
static long bio_read_cb(BIO *b, int oper, const char *argp, size_t len, int argi, long argl,
			int ret, size_t *processed)
{
	(void)argp;
	(void)argi;
	(void)argl;
	if (oper == (BIO_CB_READ | BIO_CB_RETURN)) {
		struct conn *c = (struct conn *)(void *)BIO_get_callback_arg(b);
		c->tls_drained = ret > 0 && processed != NULL && *processed < len;
	}
	return ret;
}

/* Puts SSL on c's socket with read-ahead and the short-read callback. */
static SSL *tls_new(struct conn *c, void *ctx)
{
	SSL *ssl = SSL_new(ctx);
	BIO *rbio;

	if (ssl == NULL || SSL_set_fd(ssl, c->fd) != 1 || (rbio = SSL_get_rbio(ssl)) == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_read_ahead(ssl, 1);
	BIO_set_callback_arg(rbio, (char *)(void *)c);
	BIO_set_callback_ex(rbio, bio_read_cb);
	return ssl;
}

/* Server side, first read: a TLS client opens with a handshake record (0x16); anything else
 * is most likely plain HTTP sent to the TLS port. */
static int sniff(struct conn *c)
{
	unsigned char b;
	ssize_t n = recv(c->fd, &b, 1, MSG_PEEK);

	if (n < 0) {
		if (errno == EAGAIN)
			c->readable = false;
		return -1;
	}
	if (n == 0)
		return 0;
	c->tls_sniff = false;
	if (b != 0x16) {
		errno = EPROTONOSUPPORT;
		return -1;
	}
	return 1;
}

ssize_t conn_read(struct conn *c, void *buf, size_t len)
{
	ssize_t n;

	if (c->tls == NULL) {
		do
			n = read(c->fd, buf, len);
		while (n < 0 && errno == EINTR);
		conn_note_read(c, n, len);
		return n;
	}
	if (c->tls_sniff) {
		int s = sniff(c);
		if (s <= 0)
			return s;
	}
	ERR_clear_error();
	c->read_wants_write = false;
	c->tls_drained = false;
	int r = SSL_read(c->tls, buf, len > INT32_MAX ? INT32_MAX : (int)len);
	if (r > 0) {
		/* Read again until WANT_READ, unless this call's socket read came back short and
		 * OpenSSL holds nothing more: then the socket is empty and the next data brings
		 * an edge (with EV_CLOSED when the peer closed, which the next read reports). */
		if (c->tls_drained && !SSL_has_pending(c->tls) && !c->peer_closed)
			c->readable = false;
		return r;
	}
	return tls_fail(c, r, true);
}

void conn_note_write(struct conn *c, ssize_t n, size_t total)
{
	if (n < 0 ? errno == EAGAIN : (size_t)n < total)
		c->writable = false;
}

void conn_note_read(struct conn *c, ssize_t n, size_t len)
{
	/* a short read drained the socket: the next data brings a new edge (a FIN that came
	 * with this data brought EV_CLOSED, and then the next read returns 0) */
	if (n < 0 ? errno == EAGAIN : (n > 0 && (size_t)n < len && !c->peer_closed))
		c->readable = false;
}

ssize_t conn_writev(struct conn *c, const struct iovec *iov, int iovcnt)
{
	ssize_t n;

	if (c->tls == NULL) {
		size_t total = 0;
		for (int i = 0; i < iovcnt; i++)
			total += iov[i].iov_len;
		do
			n = writev(c->fd, iov, iovcnt);
		while (n < 0 && errno == EINTR);
		conn_note_write(c, n, total);
		return n;
	}
	/* One TLS record carries as much as fits: gather up to 16 KiB first. A write that had to
	 * wait is repeated with the same bytes and length, as OpenSSL requires. */
	char rec[TLS_RECORD];
	size_t len = 0;
	for (int i = 0; i < iovcnt && len < sizeof(rec); i++) {
		size_t take = iov[i].iov_len < sizeof(rec) - len ? iov[i].iov_len : sizeof(rec) - len;
		memcpy(rec + len, iov[i].iov_base, take);
		len += take;
	}
	if (c->retry_len > 0 && c->retry_len <= len)
		len = c->retry_len;
	if (len == 0)
		return 0;
	ERR_clear_error();
	c->write_wants_read = false;
	int r = SSL_write(c->tls, rec, (int)len);
	if (r > 0) {
		c->retry_len = 0;
		return r;
	}
	c->retry_len = (uint32_t)len;
	return tls_fail(c, r, false);
}

int conn_tls_accept(struct conn *c, void *ctx)
{
	SSL *ssl = tls_new(c, ctx);

	if (ssl == NULL) {
		tls_log_errors("TLS accept");
		return -1;
	}
	SSL_set_accept_state(ssl);
	c->tls = ssl;
	c->tls_sniff = true;
	return 0;
}

int conn_tls_connect(struct conn *c, void *ctx, const char *host, bool verify)
{
	SSL *ssl = tls_new(c, ctx);

	if (ssl == NULL)
		goto fail;
	if (host != NULL && host[0] != '\0') {
		bool is_ip = strspn(host, "0123456789.:") == strlen(host);
		char sni[256]; /* the SNI macro takes a non-const pointer */
		snprintf(sni, sizeof(sni), "%s", host);
		if (!is_ip && SSL_set_tlsext_host_name(ssl, sni) != 1)
			goto fail;
		if (verify) {
			if (is_ip) {
				X509_VERIFY_PARAM *p = SSL_get0_param(ssl);
				if (X509_VERIFY_PARAM_set1_ip_asc(p, host) != 1)
					goto fail;
			} else if (SSL_set1_host(ssl, host) != 1) {
				goto fail;
			}
		}
	}
	SSL_set_connect_state(ssl);
	c->tls = ssl;
	return 0;
fail:
	SSL_free(ssl);
	tls_log_errors("TLS connect");
	return -1;
}

void conn_shutdown_write(struct conn *c)
{
	if (c->tls != NULL && SSL_is_init_finished((SSL *)c->tls)) {
		(void)SSL_shutdown(c->tls); /* one close_notify, no waiting for the peer's */
		ERR_clear_error();
	}
	if (c->fd >= 0)
		(void)shutdown(c->fd, SHUT_WR);
	c->writable = false;
}

void conn_close(struct conn *c)
{
	if (c->tls != NULL) {
		SSL *ssl = c->tls;
		if (SSL_is_init_finished(ssl))
			(void)SSL_shutdown(ssl); /* one close_notify, no waiting for the peer's */
		SSL_free(ssl);
		ERR_clear_error();
		c->tls = NULL;
	}
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
