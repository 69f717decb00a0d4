/*
 * test_fwd.c - unit tests for proxy/fwd.c: the forwarded request and response heads.
 *
 * Each case parses a head with http.h, forwards it, and compares the bytes with the exact head
 * the rules in include/fwd.h give; the forwarded head must also parse again, with the framing
 * the first parse computed.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "fwd.h"
#include "http.h"

#define MAXH 64
#define OUT 8192

static const struct fwd_tags no_tags = {.rid = "r1", .rid_len = 2};
static const struct fwd_tags exp_tags = {
    .exp = "ranker", .exp_len = 6, .variant = "treatment", .variant_len = 9,
    .rid = "r1", .rid_len = 2};

/* Forwards the request head in `in` and checks the output against want (NULL: must not
 * parse). Returns the reparsed head's body kind, or -1. */
static void check_request(const char *in, const struct fwd_tags *tags, bool add_rid,
			  const char *want)
{
	struct http_header hdr[MAXH], hdr2[MAXH];
	struct http_msg m = {.hdr = hdr, .max_hdr = MAXH}, m2 = {.hdr = hdr2, .max_hdr = MAXH};
	char out[OUT + 1];

	http_msg_reset(&m);
	CHECK_INT(http_parse_request(&m, in, strlen(in), NULL), HTTP_OK);
	struct fwd_request r = {.m = &m, .buf = in, .ip = "10.0.0.9", .ip_len = 8,
				.add_rid = add_rid, .tags = *tags};
	size_t n = fwd_request_head(out, OUT, &r);
	CHECK(n > 0);
	out[n] = '\0';
	CHECK_STR(out, want);
	http_msg_reset(&m2);
	CHECK_INT(http_parse_request(&m2, out, n, NULL), HTTP_OK);
	CHECK_INT(m2.head_len, n);
	CHECK_INT(m2.body, m.body);
	CHECK_INT(m2.content_length, m.content_length);
}

static void check_response(const char *in, enum http_method method, bool close, int minor,
			   const char *want)
{
	struct http_header hdr[MAXH], hdr2[MAXH];
	struct http_msg m = {.hdr = hdr, .max_hdr = MAXH}, m2 = {.hdr = hdr2, .max_hdr = MAXH};
	char out[OUT + 1];

	http_msg_reset(&m);
	CHECK_INT(http_parse_response(&m, in, strlen(in), method, NULL), HTTP_OK);
	struct fwd_response r = {.m = &m, .buf = in, .client_minor = minor, .close = close,
				 .tags = exp_tags};
	size_t n = fwd_response_head(out, OUT, &r);
	CHECK(n > 0);
	out[n] = '\0';
	CHECK_STR(out, want);
	http_msg_reset(&m2);
	CHECK_INT(http_parse_response(&m2, out, n, method, NULL), HTTP_OK);
	CHECK_INT(m2.head_len, n);
	CHECK_INT(m2.body, m.body);
	CHECK_INT(m2.content_length, m.content_length);
}

/* Connection never removes the framing: the POST keeps its length, so its body (itself a
 * request) stays a body. */
static void test_connection_names_framing(void)
{
	static const char *conns[] = {
	    "Content-Length", "keep-alive, Content-Length", "content-length", "CONTENT-LENGTH",
	    "close,content-length", "Content-Length\t, Host"};
	for (size_t i = 0; i < sizeof(conns) / sizeof(conns[0]); i++) {
		char in[512];
		snprintf(in, sizeof(in),
			 "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 35\r\nConnection: %s\r\n\r\n",
			 conns[i]);
		check_request(in, &no_tags, false,
			      "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 35\r\n"
			      "X-Forwarded-For: 10.0.0.9\r\n\r\n");
	}
	check_request("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
		      "Connection: Transfer-Encoding\r\n\r\n",
		      &no_tags, false,
		      "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
		      "X-Forwarded-For: 10.0.0.9\r\n\r\n");
	/* Host is routing: kept; so are the fields abgate sets */
	check_request("GET / HTTP/1.1\r\nHost: x\r\nConnection: Host, X-Forwarded-For, "
		      "X-Request-Id, X-Abgate-Variant\r\nX-Forwarded-For: 1.2.3.4\r\n"
		      "X-Request-Id: abc\r\nX-Abgate-Variant: control\r\n\r\n",
		      &exp_tags, false,
		      "GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc\r\n"
		      "X-Forwarded-For: 1.2.3.4, 10.0.0.9\r\nX-Abgate-Experiment: ranker\r\n"
		      "X-Abgate-Variant: treatment\r\n\r\n");
	/* an end-to-end field it names is still hop-by-hop */
	check_request("GET / HTTP/1.1\r\nHost: x\r\nConnection: X-Secret, close\r\n"
		      "X-Secret: s\r\nX-Other: o\r\n\r\n",
		      &no_tags, false,
		      "GET / HTTP/1.1\r\nHost: x\r\nX-Other: o\r\nX-Forwarded-For: 10.0.0.9\r\n\r\n");
}

/* The framing written is the parser's reading, whatever the client's spelling was. */
static void test_request_framing(void)
{
	check_request("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 007\r\n\r\n", &no_tags,
		      false,
		      "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n"
		      "X-Forwarded-For: 10.0.0.9\r\n\r\n");
	check_request("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
		      &no_tags, false,
		      "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
		      "X-Forwarded-For: 10.0.0.9\r\n\r\n");
	check_request("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", &no_tags, false,
		      "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
		      "X-Forwarded-For: 10.0.0.9\r\n\r\n");
	check_request("POST /a HTTP/1.1\r\nHost: x\r\ntransfer-encoding: CHUNKED\r\n\r\n", &no_tags,
		      false,
		      "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
		      "X-Forwarded-For: 10.0.0.9\r\n\r\n");
	check_request("GET /x HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\n"
		      "TE: trailers\r\nUpgrade: h2c\r\nKeep-Alive: 5\r\nProxy-Authorization: a\r\n\r\n",
		      &exp_tags, true,
		      "GET /x HTTP/1.0\r\nX-Forwarded-For: 10.0.0.9\r\nX-Request-Id: r1\r\n"
		      "X-Abgate-Experiment: ranker\r\nX-Abgate-Variant: treatment\r\n\r\n");
}

static void test_response_framing(void)
{
	/* Connection cannot strip a response's length on a keep-alive connection */
	check_response("HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: Content-Length\r\n\r\n",
		       HTTP_M_GET, false, 1,
		       "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Request-Id: r1\r\n"
		       "X-Abgate-Experiment: ranker\r\nX-Abgate-Variant: treatment\r\n\r\n");
	check_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
		       "Connection: keep-alive, Transfer-Encoding\r\nX-Request-Id: up\r\n\r\n",
		       HTTP_M_GET, false, 1,
		       "HTTP/1.1 200 OK\r\nX-Request-Id: up\r\nTransfer-Encoding: chunked\r\n"
		       "X-Abgate-Experiment: ranker\r\nX-Abgate-Variant: treatment\r\n\r\n");
	/* read until close: the codings stay, the client side closes too */
	check_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", HTTP_M_GET, true, 1,
		       "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nX-Request-Id: r1\r\n"
		       "X-Abgate-Experiment: ranker\r\nX-Abgate-Variant: treatment\r\n"
		       "Connection: close\r\n\r\n");
	/* HEAD and 304 announce a length without a body; 204 has none */
	check_response("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", HTTP_M_HEAD, false, 0,
		       "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nX-Request-Id: r1\r\n"
		       "X-Abgate-Experiment: ranker\r\nX-Abgate-Variant: treatment\r\n"
		       "Connection: keep-alive\r\n\r\n");
	check_response("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", HTTP_M_GET, false, 1,
		       "HTTP/1.1 204 No Content\r\nX-Request-Id: r1\r\n"
		       "X-Abgate-Experiment: ranker\r\nX-Abgate-Variant: treatment\r\n\r\n");
	check_response("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Abgate-Variant: spoof\r\n\r\n",
		       HTTP_M_GET, false, 1,
		       "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Request-Id: r1\r\n"
		       "X-Abgate-Experiment: ranker\r\nX-Abgate-Variant: treatment\r\n\r\n");
}

/* A head that cannot fit is refused, never truncated. */
static void test_room(void)
{
	const char *in = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	struct http_header hdr[MAXH];
	struct http_msg m = {.hdr = hdr, .max_hdr = MAXH};
	char out[OUT];

	http_msg_reset(&m);
	CHECK_INT(http_parse_request(&m, in, strlen(in), NULL), HTTP_OK);
	struct fwd_request r = {.m = &m, .buf = in, .ip = "1.2.3.4", .ip_len = 7, .tags = no_tags};
	CHECK_INT(fwd_request_head(out, 64, &r), 0);
	CHECK(fwd_request_head(out, sizeof(out), &r) > 0);
}

int main(void)
{
	test_connection_names_framing();
	test_request_framing();
	test_response_framing();
	test_room();
	return check_summary("test_fwd");
}
