/*
 * tls.c - TLS contexts and OpenSSL error reporting (see include/tls.h).
 */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "tls.h"

#define TLS12_CIPHERS                                                                              \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:" \
	"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

static const unsigned char alpn_h1[] = "\x08http/1.1";

void tls_error_string(char *dst, size_t cap, const char *fallback)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		snprintf(dst, cap, "%s", fallback);
	else
		ERR_error_string_n(e, dst, cap);
	ERR_clear_error();
}

void tls_log_errors(const char *what)
{
	unsigned long e;
	char buf[256];

	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		log_warnx("%s: %s", what, buf);
	}
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	unsigned char *sel;

	if (SSL_select_next_proto(&sel, outlen, alpn_h1, sizeof(alpn_h1) - 1, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL; /* a client that speaks only h2: no */
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *base_ctx(const SSL_METHOD *method)
{
	SSL_CTX *ctx = SSL_CTX_new(method);

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* a peer that closes without close_notify (most HTTP clients) is an ordinary end of
	 * stream here: HTTP framing tells a truncated message apart */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static void release(struct conf *c)
{
	for (size_t i = 0; i < c->nlistens; i++) {
		SSL_CTX_free(c->listens[i].tls_ctx);
		c->listens[i].tls_ctx = NULL;
	}
	for (size_t i = 0; i < c->nbackends; i++) {
		SSL_CTX_free(c->backends[i].tls_ctx);
		c->backends[i].tls_ctx = NULL;
	}
}

int tls_prepare_conf(struct conf *c, char *err, size_t errlen)
{
	char why[256];

	c->release = release;
	for (size_t i = 0; i < c->nlistens; i++) {
		struct conf_listen *l = &c->listens[i];
		if (l->tls_cert == NULL)
			continue;
		SSL_CTX *ctx = base_ctx(TLS_server_method());
		if (ctx == NULL) {
			tls_error_string(why, sizeof(why), "cannot create a TLS context");
			snprintf(err, errlen, "%s: listen %s: %s", c->path, l->addr.text, why);
			return -1;
		}
		l->tls_ctx = ctx;
		if (SSL_CTX_use_certificate_chain_file(ctx, l->tls_cert) != 1) {
			tls_error_string(why, sizeof(why), "unreadable");
			snprintf(err, errlen, "%s: listen %s: cannot load certificate %s: %s", c->path,
				 l->addr.text, l->tls_cert, why);
			return -1;
		}
		if (SSL_CTX_use_PrivateKey_file(ctx, l->tls_key, SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_check_private_key(ctx) != 1) {
			tls_error_string(why, sizeof(why), "unreadable");
			snprintf(err, errlen, "%s: listen %s: cannot use key %s: %s", c->path,
				 l->addr.text, l->tls_key, why);
			return -1;
		}
		SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	}
	for (size_t i = 0; i < c->nbackends; i++) {
		struct conf_backend *be = &c->backends[i];
		bool any = false;
		for (size_t k = 0; k < be->nservers; k++)
			any |= be->servers[k].tls;
		if (!any)
			continue;
		SSL_CTX *ctx = base_ctx(TLS_client_method());
		if (ctx == NULL) {
			tls_error_string(why, sizeof(why), "cannot create a TLS context");
			snprintf(err, errlen, "%s: backend %s: %s", c->path, be->name, why);
			return -1;
		}
		be->tls_ctx = ctx;
		SSL_CTX_set_alpn_protos(ctx, alpn_h1, sizeof(alpn_h1) - 1);
		if (be->verify) {
			SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
			int ok = be->ca_file != NULL
					 ? SSL_CTX_load_verify_locations(ctx, be->ca_file, NULL)
					 : SSL_CTX_set_default_verify_paths(ctx);
			if (ok != 1) {
				tls_error_string(why, sizeof(why), "unreadable");
				snprintf(err, errlen, "%s: backend %s: cannot load CA file %s: %s",
					 c->path, be->name, be->ca_file ? be->ca_file : "(system)",
					 why);
				return -1;
			}
		} else {
			SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
			log_warnx("backend %s: certificate verification is off (verify: false)",
				  be->name);
		}
	}
	return 0;
}
