/*
 * tls.h - TLS with OpenSSL, in one place: the contexts a generation needs (one per TLS
 * listener, one per backend with https:// servers), and draining OpenSSL's error queue into the
 * error log. The connection interface (conn.h) does the per-connection I/O.
 *
 * Policy: TLS 1.2 and 1.3 only; for TLS 1.2 only ECDHE with AES-GCM or ChaCha20-Poly1305; ALPN
 * "http/1.1". Upstream certificates are verified (chain and host name) unless the backend says
 * `verify: false`; the CA bundle is the backend's ca_file or the system's.
 */
#ifndef ABGATE_TLS_H
#define ABGATE_TLS_H

#include <stddef.h>

struct conf;

/* Builds the TLS contexts of generation c (and sets c->release to free them). Returns 0, or -1
 * with "FILE: listen ADDR: cannot load certificate ...: reason" in err. */
int tls_prepare_conf(struct conf *c, char *err, size_t errlen);

/* Logs and clears every error OpenSSL has queued for this thread, prefixed with what. */
void tls_log_errors(const char *what);

/* Writes the first queued OpenSSL error (or `fallback`) into dst and clears the queue. */
void tls_error_string(char *dst, size_t cap, const char *fallback);

#endif
