/*
 * fwd.h - the forwarded head: what the proxy sends upstream for a client's request head, and
 * what it sends the client for an upstream's response head. The one place where a forwarded
 * message is framed and its hop-by-hop fields are removed.
 *
 * Pure: a parsed head (include/http.h) and a few values in, bytes out. No I/O, no allocation,
 * no session state, so a fuzzer can drive it and check that what it writes always parses again,
 * with the framing it was given.
 *
 * The rules (README "What the proxy does to a request" states them for users):
 *   - Framing is the proxy's, never the peer's. Every Content-Length and Transfer-Encoding
 *     field of the peer is dropped and the head carries the framing the parser computed for the
 *     body the proxy will send: "Content-Length: N" for a counted body (also 0, and on a
 *     bodiless HEAD or 304 answer the length it announces), "Transfer-Encoding: chunked" for a
 *     chunked one (relayed after http_chunked_feed() vetted it); a response read until close
 *     keeps its own codings and is close-delimited on the client side too.
 *   - Hop-by-hop fields are removed: Connection, Keep-Alive, TE, Trailer, Upgrade, Proxy-*,
 *     and the fields Connection names, except that Connection never removes a framing or
 *     routing field: Content-Length, Transfer-Encoding, Host, X-Forwarded-For, X-Request-Id and
 *     X-Abgate-*. Such tokens are ignored (the message is still served), as nginx ignores them.
 *   - Requests: the client's X-Abgate-* fields and Expect are dropped; X-Forwarded-For fields
 *     fold into one with the client's address last; X-Request-Id is added when the proxy made
 *     the id; X-Abgate-Experiment and X-Abgate-Variant are added for an experiment's request.
 *   - Responses: the status line is HTTP/1.1; the upstream's X-Abgate-* fields are dropped and
 *     ours added, X-Request-Id added when the upstream sent none, "Connection: close" when the
 *     client connection closes after it ("Connection: keep-alive" to a keep-alive HTTP/1.0
 *     client), and the unit cookie when one was made.
 */
#ifndef ABGATE_FWD_H
#define ABGATE_FWD_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

/* What abgate tags both heads with. Strings are (ref) and not NUL-terminated. */
struct fwd_tags {
	const char *exp;     /* the experiment's name; NULL when none matched */
	size_t exp_len;
	const char *variant; /* the variant's name (set when exp is) */
	size_t variant_len;
	const char *rid;     /* the request id */
	size_t rid_len;
};

struct fwd_request {
	const struct http_msg *m; /* (ref) the client's head as parsed, OK */
	const char *buf;          /* (ref) the bytes m's spans point into */
	const char *ip;           /* (ref) the client's address, appended to X-Forwarded-For */
	size_t ip_len;
	bool add_rid;             /* the request id was made here: send it upstream */
	struct fwd_tags tags;
};

struct fwd_response {
	const struct http_msg *m; /* (ref) the upstream's head as parsed, OK, status >= 200 */
	const char *buf;          /* (ref) the bytes m's spans point into */
	int client_minor;         /* the client's HTTP/1.<minor> */
	bool close;               /* the client connection closes after this response */
	const char *cookie_name;  /* (ref) a unit cookie to set, NULL for none */
	size_t cookie_name_len;
	const char *cookie_value; /* (ref) its value */
	size_t cookie_value_len;
	struct fwd_tags tags;
};

/*
 * Writes the upstream request head for r into out[0..cap), HTTP/1.<r->m->minor>. Returns its
 * length, or 0 when it does not fit in cap (nothing useful is left in out then).
 */
size_t fwd_request_head(char *out, size_t cap, const struct fwd_request *r);

/* Writes the client's response head for r into out[0..cap). Returns its length, or 0 when it
 * does not fit. */
size_t fwd_response_head(char *out, size_t cap, const struct fwd_response *r);

/* Appends "X-Abgate-Experiment" and "X-Abgate-Variant" lines for t (nothing without an
 * experiment) at o, which has room for them; returns the end. For the proxy's own answers. */
char *fwd_put_tags(char *o, const struct fwd_tags *t);

#endif
