/*
 * test_http.c - unit tests for proxy/http.c: valid and invalid request and response heads
 * (each also fed in every possible split), the limits, pipelining, and the chunked framer.
 *
 * Every incremental feed hands the parser a private copy of exactly the bytes that have
 * "arrived", so that under the address sanitizer a read past them is an error.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "http.h"

#define MAX_HDR 64

/* Spans turned into strings for CHECK_STR; a few live at once. */
static const char *span_str(const char *buf, struct http_span s)
{
	static char ring[8][1024];
	static unsigned next;
	char *out = ring[next++ % 8];
	size_t n = s.len < 1023 ? s.len : 1023;

	memcpy(out, buf + s.off, n);
	out[n] = '\0';
	return out;
}

/* Prints RAW with control bytes escaped, to name the case a failed CHECK belongs to. */
static void print_case(const char *what, int i, const char *raw, size_t len)
{
	fprintf(stderr, "  in %s case %d: \"", what, i);
	for (size_t k = 0; k < len && k < 200; k++) {
		unsigned char c = (unsigned char)raw[k];

		if (c == '\r')
			fputs("\\r", stderr);
		else if (c == '\n')
			fputs("\\n", stderr);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(stderr, "\\x%02x", c);
		else
			fputc(c, stderr);
	}
	fputs(len > 200 ? "...\"\n" : "\"\n", stderr);
}

static void msg_init(struct http_msg *m, struct http_header *hdr, uint32_t max_hdr)
{
	/* Garbage first, so that a field reset forgets shows up. */
	memset(m, 0xa5, sizeof(*m));
	m->hdr = hdr;
	m->max_hdr = max_hdr;
	http_msg_reset(m);
}

static enum http_parse parse(struct http_msg *m, const char *buf, size_t len, bool response,
			     enum http_method req_method, const struct http_limits *lim)
{
	if (response)
		return http_parse_response(m, buf, len, req_method, lim);
	return http_parse_request(m, buf, len, lim);
}

/* Parses RAW[0..k) from a heap copy of exactly k bytes. */
static enum http_parse parse_prefix(struct http_msg *m, const char *raw, size_t k, bool response,
				    enum http_method req_method, const struct http_limits *lim)
{
	char *copy = malloc(k ? k : 1);
	enum http_parse r;

	memcpy(copy, raw, k);
	r = parse(m, copy, k, response, req_method, lim);
	free(copy);
	return r;
}

static bool span_eq(struct http_span a, struct http_span b)
{
	return a.off == b.off && a.len == b.len;
}

/* Everything a caller may read after HTTP_OK. */
static bool msg_equal(const struct http_msg *a, const struct http_msg *b)
{
	if (a->method != b->method || !span_eq(a->method_s, b->method_s) ||
	    !span_eq(a->target, b->target) || !span_eq(a->path, b->path) ||
	    !span_eq(a->query, b->query) || a->status != b->status ||
	    !span_eq(a->reason, b->reason) || a->minor != b->minor || a->nhdr != b->nhdr ||
	    a->head_len != b->head_len || a->body != b->body ||
	    a->content_length != b->content_length || a->conn_flags != b->conn_flags ||
	    a->keep_alive != b->keep_alive || a->expect_continue != b->expect_continue ||
	    a->host_idx != b->host_idx || a->error_status != b->error_status)
		return false;
	for (uint32_t i = 0; i < a->nhdr; i++)
		if (!span_eq(a->hdr[i].name, b->hdr[i].name) ||
		    !span_eq(a->hdr[i].value, b->hdr[i].value))
			return false;
	return true;
}

/*
 * Feeds a valid head of N bytes one more byte at a time, then in two pieces split at every
 * boundary; each must say HTTP_AGAIN with everything so far scanned (nothing left to rescan)
 * until the last byte, and end exactly like WANT, the head parsed at once.
 */
static void check_incremental_ok(const char *raw, size_t n, bool response,
				 enum http_method req_method, const struct http_limits *lim,
				 const struct http_msg *want)
{
	struct http_header hdr[MAX_HDR];
	struct http_msg m;
	enum http_parse r;
	int bad_again = 0, bad_scanned = 0;

	msg_init(&m, hdr, MAX_HDR);
	for (size_t k = 1; k < n; k++) {
		r = parse_prefix(&m, raw, k, response, req_method, lim);
		if (r != HTTP_AGAIN)
			bad_again++;
		else if (m.scanned != k)
			bad_scanned++;
	}
	CHECK_INT(bad_again, 0);
	CHECK_INT(bad_scanned, 0);
	CHECK_INT(parse_prefix(&m, raw, n, response, req_method, lim), HTTP_OK);
	CHECK(msg_equal(&m, want));
	/* Asking again after the end changes nothing. */
	CHECK_INT(parse_prefix(&m, raw, n, response, req_method, lim), HTTP_OK);
	CHECK(msg_equal(&m, want));

	bad_again = 0;
	int bad_end = 0;
	for (size_t k = 1; k < n; k++) {
		msg_init(&m, hdr, MAX_HDR);
		if (parse_prefix(&m, raw, k, response, req_method, lim) != HTTP_AGAIN)
			bad_again++;
		if (parse_prefix(&m, raw, n, response, req_method, lim) != HTTP_OK ||
		    !msg_equal(&m, want))
			bad_end++;
	}
	CHECK_INT(bad_again, 0);
	CHECK_INT(bad_end, 0);
}

/* ---------------------------------------------------------------- valid requests */

struct req_case {
	const char *raw;
	enum http_method method;
	const char *method_s;
	const char *target, *path, *query;
	int minor;
	int nhdr;
	const char *hname, *hval; /* one field to look up, or NULL */
	enum http_body body;
	uint64_t clen;
	bool keep_alive, expect;
	unsigned conn;
	int host_idx;
	struct http_limits lim;
};

/* clang-format off */
static const struct req_case req_cases[] = {
	{.raw = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
	 .method = HTTP_M_GET, .method_s = "GET", .target = "/", .path = "/", .query = "",
	 .minor = 1, .nhdr = 1, .hname = "host", .hval = "example.com",
	 .body = HTTP_BODY_NONE, .keep_alive = true, .host_idx = 0},
	{.raw = "GET /predict?user=42&x=%20y HTTP/1.1\r\nUser-Agent: t/1.0\r\nHost: a\r\n\r\n",
	 .method = HTTP_M_GET, .method_s = "GET", .target = "/predict?user=42&x=%20y",
	 .path = "/predict", .query = "user=42&x=%20y", .minor = 1, .nhdr = 2,
	 .hname = "User-Agent", .hval = "t/1.0", .keep_alive = true, .host_idx = 1},
	{.raw = "GET /a? HTTP/1.1\r\nHost: a\r\n\r\n",
	 .method = HTTP_M_GET, .method_s = "GET", .target = "/a?", .path = "/a", .query = "",
	 .minor = 1, .nhdr = 1, .keep_alive = true, .host_idx = 0},
	{.raw = "GET /a?b?c=/d HTTP/1.1\r\nHost: a\r\n\r\n",
	 .method = HTTP_M_GET, .method_s = "GET", .target = "/a?b?c=/d", .path = "/a",
	 .query = "b?c=/d", .minor = 1, .nhdr = 1, .keep_alive = true, .host_idx = 0},
	{.raw = "POST /predict HTTP/1.1\r\nHost: a\r\nContent-Length: 13\r\n"
		"Expect: 100-continue\r\n\r\n",
	 .method = HTTP_M_POST, .method_s = "POST", .target = "/predict", .path = "/predict",
	 .query = "", .minor = 1, .nhdr = 3, .hname = "content-length", .hval = "13",
	 .body = HTTP_BODY_LENGTH, .clen = 13, .keep_alive = true, .expect = true,
	 .host_idx = 0},
	{.raw = "POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n"
		"Transfer-Encoding: chunked\r\n\r\n",
	 .method = HTTP_M_POST, .method_s = "POST", .target = "/x", .path = "/x", .query = "",
	 .minor = 1, .nhdr = 3, .hname = "transfer-encoding", .hval = "chunked",
	 .body = HTTP_BODY_CHUNKED, .keep_alive = true, .expect = true, .host_idx = 0},
	{.raw = "PUT /x HTTP/1.1\r\nHost: a\r\nTRANSFER-ENCODING:   Chunked \t\r\n\r\n",
	 .method = HTTP_M_PUT, .method_s = "PUT", .target = "/x", .path = "/x", .query = "",
	 .minor = 1, .nhdr = 2, .hname = "Transfer-Encoding", .hval = "Chunked",
	 .body = HTTP_BODY_CHUNKED, .keep_alive = true, .host_idx = 0},
	{.raw = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
	 .method = HTTP_M_POST, .method_s = "POST", .target = "/x", .path = "/x", .query = "",
	 .minor = 1, .nhdr = 2, .body = HTTP_BODY_LENGTH, .clen = 5, .keep_alive = true,
	 .host_idx = 0},
	{.raw = "POST /x HTTP/1.1\r\nContent-Length: 7\r\nHost: a\r\nContent-Length: 007\r\n\r\n",
	 .method = HTTP_M_POST, .method_s = "POST", .target = "/x", .path = "/x", .query = "",
	 .minor = 1, .nhdr = 3, .body = HTTP_BODY_LENGTH, .clen = 7, .keep_alive = true,
	 .host_idx = 1},
	{.raw = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
	 .method = HTTP_M_POST, .method_s = "POST", .target = "/x", .path = "/x", .query = "",
	 .minor = 1, .nhdr = 2, .body = HTTP_BODY_NONE, .clen = 0, .keep_alive = true,
	 .host_idx = 0},
	{.raw = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n",
	 .method = HTTP_M_POST, .method_s = "POST", .target = "/x", .path = "/x", .query = "",
	 .minor = 1, .nhdr = 2, .body = HTTP_BODY_LENGTH, .clen = UINT64_MAX,
	 .keep_alive = true, .host_idx = 0},
	{.raw = "GET / HTTP/1.0\r\n\r\n",
	 .method = HTTP_M_GET, .method_s = "GET", .target = "/", .path = "/", .query = "",
	 .minor = 0, .nhdr = 0, .keep_alive = false, .host_idx = -1},
	{.raw = "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nExpect: 100-continue\r\n\r\n",
	 .method = HTTP_M_GET, .method_s = "GET", .target = "/", .path = "/", .query = "",
	 .minor = 0, .nhdr = 2, .keep_alive = true, .expect = false,
	 .conn = HTTP_CONN_KEEP_ALIVE, .host_idx = -1},
	{.raw = "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
	 .method = HTTP_M_GET, .method_s = "GET", .target = "/", .path = "/", .query = "",
	 .minor = 0, .nhdr = 1, .keep_alive = false,
	 .conn = HTTP_CONN_KEEP_ALIVE | HTTP_CONN_CLOSE, .host_idx = -1},
	{.raw = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
	 .method = HTTP_M_GET, .method_s = "GET", .target = "/", .path = "/", .query = "",
	 .minor = 1, .nhdr = 2, .keep_alive = false, .conn = HTTP_CONN_CLOSE, .host_idx = 0},
	{.raw = "GET / HTTP/1.1\r\nConnection: Upgrade\r\nHost: a\r\n"
		"connection: x-foo,, CLOSE ,te\r\nUpgrade: websocket\r\n\r\n",
	 .method = HTTP_M_GET, .method_s = "GET", .target = "/", .path = "/", .query = "",
	 .minor = 1, .nhdr = 4, .hname = "upgrade", .hval = "websocket", .keep_alive = false,
	 .conn = HTTP_CONN_UPGRADE | HTTP_CONN_CLOSE, .host_idx = 1},
	{.raw = "GET / HTTP/1.1\r\nhOsT: a\r\nX-Pad:   v a l  \t\r\nX-Empty:\r\n"
		"X-Tab:\ta\tb\t\r\n\r\n",
	 .method = HTTP_M_GET, .method_s = "GET", .target = "/", .path = "/", .query = "",
	 .minor = 1, .nhdr = 4, .hname = "x-pad", .hval = "v a l", .keep_alive = true,
	 .host_idx = 0},
	{.raw = "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:   \r\n\r\n",
	 .method = HTTP_M_GET, .method_s = "GET", .target = "/", .path = "/", .query = "",
	 .minor = 1, .nhdr = 2, .hname = "X-EMPTY", .hval = "", .keep_alive = true,
	 .host_idx = 0},
	{.raw = "GET / HTTP/1.1\r\nHost: a\r\nX-Tab:\ta\tb\t\r\n\r\n",
	 .method = HTTP_M_GET, .method_s = "GET", .target = "/", .path = "/", .query = "",
	 .minor = 1, .nhdr = 2, .hname = "x-tab", .hval = "a\tb", .keep_alive = true,
	 .host_idx = 0},
	{.raw = "GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\xc3\xa9 \xff\r\n\r\n",
	 .method = HTTP_M_GET, .method_s = "GET", .target = "/", .path = "/", .query = "",
	 .minor = 1, .nhdr = 2, .hname = "x-name", .hval = "caf\xc3\xa9 \xff",
	 .keep_alive = true, .host_idx = 0},
	{.raw = "GET / HTTP/1.1\r\nHost: a\r\n!#$%&'*+-.^_`|~09azAZ: tchars\r\n\r\n",
	 .method = HTTP_M_GET, .method_s = "GET", .target = "/", .path = "/", .query = "",
	 .minor = 1, .nhdr = 2, .hname = "!#$%&'*+-.^_`|~09AZaz", .hval = "tchars",
	 .keep_alive = true, .host_idx = 0},
	{.raw = "GET / HTTP/1.1\r\nHost: a\r\nCookie: session=0123456789abcdef0123456789abcdef; "
		"theme=dark;\ttracking=\"a,b,c\"; x=!#$%&'()*+,-./:;<=>?@[\\]^_`{|}~; "
		"0123456789012345678901234567890123456789012345678901234567890123456789\r\n\r\n",
	 .method = HTTP_M_GET, .method_s = "GET", .target = "/", .path = "/", .query = "",
	 .minor = 1, .nhdr = 2, .hname = "cookie",
	 .hval = "session=0123456789abcdef0123456789abcdef; theme=dark;\ttracking=\"a,b,c\"; "
		 "x=!#$%&'()*+,-./:;<=>?@[\\]^_`{|}~; "
		 "0123456789012345678901234567890123456789012345678901234567890123456789",
	 .keep_alive = true, .host_idx = 0},
	{.raw = "HEAD /h HTTP/1.1\r\nHost: a\r\n\r\n",
	 .method = HTTP_M_HEAD, .method_s = "HEAD", .target = "/h", .path = "/h", .query = "",
	 .minor = 1, .nhdr = 1, .keep_alive = true, .host_idx = 0},
	{.raw = "DELETE /d?force=1 HTTP/1.1\r\nHost: a\r\n\r\n",
	 .method = HTTP_M_DELETE, .method_s = "DELETE", .target = "/d?force=1", .path = "/d",
	 .query = "force=1", .minor = 1, .nhdr = 1, .keep_alive = true, .host_idx = 0},
	{.raw = "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
	 .method = HTTP_M_OPTIONS, .method_s = "OPTIONS", .target = "*", .path = "*",
	 .query = "", .minor = 1, .nhdr = 1, .keep_alive = true, .host_idx = 0},
	{.raw = "PATCH /p HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n",
	 .method = HTTP_M_PATCH, .method_s = "PATCH", .target = "/p", .path = "/p",
	 .query = "", .minor = 1, .nhdr = 2, .body = HTTP_BODY_LENGTH, .clen = 2,
	 .keep_alive = true, .host_idx = 0},
	{.raw = "TRACE / HTTP/1.1\r\nHost: a\r\n\r\n",
	 .method = HTTP_M_TRACE, .method_s = "TRACE", .target = "/", .path = "/", .query = "",
	 .minor = 1, .nhdr = 1, .keep_alive = true, .host_idx = 0},
	{.raw = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
	 .method = HTTP_M_CONNECT, .method_s = "CONNECT", .target = "example.com:443",
	 .path = "", .query = "", .minor = 1, .nhdr = 1, .keep_alive = true, .host_idx = 0},
	{.raw = "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n",
	 .method = HTTP_M_CONNECT, .method_s = "CONNECT", .target = "[::1]:8443", .path = "",
	 .query = "", .minor = 1, .nhdr = 1, .keep_alive = true, .host_idx = 0},
	{.raw = "PROPFIND /dav HTTP/1.1\r\nHost: a\r\n\r\n",
	 .method = HTTP_M_OTHER, .method_s = "PROPFIND", .target = "/dav", .path = "/dav",
	 .query = "", .minor = 1, .nhdr = 1, .keep_alive = true, .host_idx = 0},
	/* Methods are case-sensitive: "get" is some other method. */
	{.raw = "get / HTTP/1.1\r\nHost: a\r\n\r\n",
	 .method = HTTP_M_OTHER, .method_s = "get", .target = "/", .path = "/", .query = "",
	 .minor = 1, .nhdr = 1, .keep_alive = true, .host_idx = 0},
	{.raw = "GET http://example.com/p/q?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
	 .method = HTTP_M_GET, .method_s = "GET", .target = "http://example.com/p/q?x=1",
	 .path = "/p/q", .query = "x=1", .minor = 1, .nhdr = 1, .keep_alive = true,
	 .host_idx = 0},
	{.raw = "GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n",
	 .method = HTTP_M_GET, .method_s = "GET", .target = "http://example.com", .path = "",
	 .query = "", .minor = 1, .nhdr = 1, .keep_alive = true, .host_idx = 0},
	{.raw = "GET https://h:8443?q HTTP/1.1\r\nHost: h\r\n\r\n",
	 .method = HTTP_M_GET, .method_s = "GET", .target = "https://h:8443?q", .path = "",
	 .query = "q", .minor = 1, .nhdr = 1, .keep_alive = true, .host_idx = 0},
	/* A request line exactly at the limit, a head exactly at the limit, exactly the
	 * allowed number of fields. */
	{.raw = "GET /0123456 HTTP/1.1\r\nHost: a\r\n\r\n",
	 .method = HTTP_M_GET, .method_s = "GET", .target = "/0123456", .path = "/0123456",
	 .query = "", .minor = 1, .nhdr = 1, .keep_alive = true, .host_idx = 0,
	 .lim = {.max_request_line = 21}},
	{.raw = "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n",
	 .method = HTTP_M_GET, .method_s = "GET", .target = "/", .path = "/", .query = "",
	 .minor = 1, .nhdr = 2, .keep_alive = true, .host_idx = 0,
	 .lim = {.max_header_bytes = 33, .max_request_line = 14, .max_headers = 2}},
};
/* clang-format on */

static void test_valid_requests(void)
{
	for (size_t i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
		const struct req_case *c = &req_cases[i];
		size_t n = strlen(c->raw);
		struct http_header hdr[MAX_HDR];
		struct http_msg m;
		int failed = check_failed;

		msg_init(&m, hdr, MAX_HDR);
		CHECK_INT(http_parse_request(&m, c->raw, n, &c->lim), HTTP_OK);
		CHECK_INT(m.head_len, n);
		CHECK_INT(m.method, c->method);
		CHECK_STR(span_str(c->raw, m.method_s), c->method_s);
		CHECK_STR(span_str(c->raw, m.target), c->target);
		CHECK_STR(span_str(c->raw, m.path), c->path);
		CHECK_STR(span_str(c->raw, m.query), c->query);
		CHECK_INT(m.minor, c->minor);
		CHECK_INT(m.nhdr, c->nhdr);
		CHECK_INT(m.body, c->body);
		if (c->body == HTTP_BODY_LENGTH || c->clen != 0)
			CHECK(m.content_length == c->clen);
		CHECK_INT(m.keep_alive, c->keep_alive);
		CHECK_INT(m.expect_continue, c->expect);
		CHECK_INT(m.conn_flags, c->conn);
		CHECK_INT(m.host_idx, c->host_idx);
		CHECK_INT(m.status, 0);
		if (c->hname != NULL) {
			int h = http_find_header(&m, c->raw, c->hname, strlen(c->hname));

			CHECK(h >= 0);
			if (h >= 0)
				CHECK_STR(span_str(c->raw, m.hdr[h].value), c->hval);
		}
		check_incremental_ok(c->raw, n, false, HTTP_M_OTHER, &c->lim, &m);
		if (check_failed != failed)
			print_case("valid request", (int)i, c->raw, n);
	}
}

/* ---------------------------------------------------------------- valid responses */

struct resp_case {
	const char *raw;
	enum http_method req_method;
	int status;
	const char *reason;
	int minor;
	int nhdr;
	enum http_body body;
	uint64_t clen;
	bool keep_alive;
	unsigned conn;
};

/* clang-format off */
static const struct resp_case resp_cases[] = {
	{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", HTTP_M_GET, 200, "OK", 1, 1,
	 HTTP_BODY_LENGTH, 5, true, 0},
	{"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", HTTP_M_GET, 200, "", 1, 1, HTTP_BODY_NONE,
	 0, true, 0},
	{"HTTP/1.1 200 \r\nContent-Length: 1\r\n\r\n", HTTP_M_GET, 200, "", 1, 1,
	 HTTP_BODY_LENGTH, 1, true, 0},
	{"HTTP/1.1 503 Service Unavailable \xe2\x9c\x97\tnow\r\nContent-Length: 2\r\n\r\n",
	 HTTP_M_POST, 503, "Service Unavailable \xe2\x9c\x97\tnow", 1, 1, HTTP_BODY_LENGTH, 2,
	 true, 0},
	{"HTTP/1.1 204 No Content\r\n\r\n", HTTP_M_GET, 204, "No Content", 1, 0, HTTP_BODY_NONE,
	 0, true, 0},
	{"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", HTTP_M_GET, 304,
	 "Not Modified", 1, 1, HTTP_BODY_NONE, 100, true, 0},
	{"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", HTTP_M_HEAD, 200, "OK", 1, 1,
	 HTTP_BODY_NONE, 100, true, 0},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_M_HEAD, 200, "OK", 1, 1,
	 HTTP_BODY_NONE, 0, true, 0},
	{"HTTP/1.1 100 Continue\r\n\r\n", HTTP_M_POST, 100, "Continue", 1, 0, HTTP_BODY_NONE, 0,
	 true, 0},
	{"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	 HTTP_M_GET, 101, "Switching Protocols", 1, 2, HTTP_BODY_NONE, 0, true,
	 HTTP_CONN_UPGRADE},
	{"HTTP/1.1 200 Connection established\r\n\r\n", HTTP_M_CONNECT, 200,
	 "Connection established", 1, 0, HTTP_BODY_NONE, 0, true, 0},
	{"HTTP/1.1 200 OK\r\n\r\n", HTTP_M_GET, 200, "OK", 1, 0, HTTP_BODY_EOF, 0, false, 0},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_M_GET, 200, "OK", 1, 1,
	 HTTP_BODY_CHUNKED, 0, true, 0},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", HTTP_M_GET, 200, "OK", 1, 1,
	 HTTP_BODY_EOF, 0, false, 0},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", HTTP_M_GET, 200, "OK", 1,
	 1, HTTP_BODY_EOF, 0, false, 0},
	{"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n", HTTP_M_GET, 200, "OK", 0, 1,
	 HTTP_BODY_LENGTH, 3, false, 0},
	{"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\n", HTTP_M_GET,
	 200, "OK", 0, 2, HTTP_BODY_LENGTH, 3, true, HTTP_CONN_KEEP_ALIVE},
	{"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 2\r\n\r\n", HTTP_M_GET,
	 404, "Not Found", 1, 2, HTTP_BODY_LENGTH, 2, false, HTTP_CONN_CLOSE},
	{"HTTP/1.1 599 x\r\nContent-Length: 4, 4\r\nContent-Length: 4\r\n\r\n", HTTP_M_GET, 599,
	 "x", 1, 2, HTTP_BODY_LENGTH, 4, true, 0},
};
/* clang-format on */

static void test_valid_responses(void)
{
	for (size_t i = 0; i < sizeof(resp_cases) / sizeof(resp_cases[0]); i++) {
		const struct resp_case *c = &resp_cases[i];
		size_t n = strlen(c->raw);
		struct http_header hdr[MAX_HDR];
		struct http_msg m;
		int failed = check_failed;

		msg_init(&m, hdr, MAX_HDR);
		CHECK_INT(http_parse_response(&m, c->raw, n, c->req_method, NULL), HTTP_OK);
		CHECK_INT(m.head_len, n);
		CHECK_INT(m.status, c->status);
		CHECK_STR(span_str(c->raw, m.reason), c->reason);
		CHECK_INT(m.minor, c->minor);
		CHECK_INT(m.nhdr, c->nhdr);
		CHECK_INT(m.body, c->body);
		CHECK(m.content_length == c->clen);
		CHECK_INT(m.keep_alive, c->keep_alive);
		CHECK_INT(m.conn_flags, c->conn);
		CHECK_INT(m.expect_continue, 0);
		check_incremental_ok(c->raw, n, true, c->req_method, NULL, &m);
		if (check_failed != failed)
			print_case("valid response", (int)i, c->raw, n);
	}
}

/* ---------------------------------------------------------------- invalid messages */

struct bad_case {
	const char *raw;
	size_t len; /* 0: strlen(raw) */
	int status;
	size_t early; /* non-zero: the error must appear exactly when this many bytes arrived */
	bool response;
	enum http_method req_method;
	struct http_limits lim;
};

#define REQ(raw, status)                                                                           \
	{                                                                                          \
		raw, 0, status, 0, false, HTTP_M_OTHER,                                            \
		{                                                                                  \
			0, 0, 0                                                                    \
		}                                                                                  \
	}
#define REQ_EARLY(raw, status, early)                                                              \
	{                                                                                          \
		raw, 0, status, early, false, HTTP_M_OTHER,                                        \
		{                                                                                  \
			0, 0, 0                                                                    \
		}                                                                                  \
	}
#define REQ_LIM(raw, status, early, bytes, line, n)                                                \
	{                                                                                          \
		raw, 0, status, early, false, HTTP_M_OTHER,                                        \
		{                                                                                  \
			bytes, line, n                                                             \
		}                                                                                  \
	}
#define RESP(raw, status)                                                                          \
	{                                                                                          \
		raw, 0, status, 0, true, HTTP_M_GET,                                               \
		{                                                                                  \
			0, 0, 0                                                                    \
		}                                                                                  \
	}
#define RESP_EARLY(raw, status, early)                                                             \
	{                                                                                          \
		raw, 0, status, early, true, HTTP_M_GET,                                           \
		{                                                                                  \
			0, 0, 0                                                                    \
		}                                                                                  \
	}

/* clang-format off */
static const struct bad_case bad_cases[] = {
	/* line endings */
	REQ_EARLY("GET / HTTP/1.1\nHost: a\r\n\r\n", 400, 15),
	REQ_EARLY("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400, 24),
	REQ_EARLY("GET / HTTP/1.1\r\nHost: a\r\n\n", 400, 26),
	REQ_EARLY("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400, 25),
	REQ_EARLY("GET / HTTP/1.1\rHost: a\r\n\r\n", 400, 16),
	REQ_EARLY("GET / HTTP/1.1\r\nHost: a\r\n\rX", 400, 27),
	REQ_EARLY("GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n", 400, 7),
	REQ_EARLY("GET /a\nb HTTP/1.1\r\nHost: a\r\n\r\n", 400, 7),
	REQ_EARLY("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, 1),
	REQ_EARLY("GET / HTTP/1.1\r\nHost\r\n\r\n", 400, 21),
	/* request line shape */
	REQ_EARLY("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, 5),
	REQ_EARLY("GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400, 7),
	REQ_EARLY(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, 1),
	REQ_EARLY("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, 4),
	REQ_EARLY("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, 2),
	REQ_EARLY("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400, 15),
	REQ_EARLY("GET / http/1.1\r\nHost: a\r\n\r\n", 400, 7),
	REQ_EARLY("GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400, 15),
	REQ_EARLY("GET / HTTP/1\r\nHost: a\r\n\r\n", 400, 13),
	REQ_EARLY("GET / HTTP/11.1\r\nHost: a\r\n\r\n", 400, 13),
	REQ_EARLY("GET /\r\n\r\n", 400, 6),
	/* versions */
	REQ_EARLY("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, 14),
	REQ_EARLY("GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505, 14),
	REQ_EARLY("GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505, 14),
	/* request-target forms and octets */
	REQ_EARLY("GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, 6),
	REQ_EARLY("GET foo HTTP/1.1\r\nHost: a\r\n\r\n", 400, 8),
	REQ_EARLY("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", 400, 7),
	REQ_EARLY("GET http:/x HTTP/1.1\r\nHost: a\r\n\r\n", 400, 12),
	REQ_EARLY("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", 400, 14),
	REQ_EARLY("GET 1http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, 15),
	REQ_EARLY("CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", 400, 10),
	REQ_EARLY("CONNECT host HTTP/1.1\r\nHost: a\r\n\r\n", 400, 13),
	REQ_EARLY("CONNECT host: HTTP/1.1\r\nHost: a\r\n\r\n", 400, 14),
	REQ_EARLY("CONNECT :443 HTTP/1.1\r\nHost: a\r\n\r\n", 400, 13),
	REQ_EARLY("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400, 7),
	REQ_EARLY("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400, 9),
	REQ_EARLY("GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400, 7),
	/* field syntax */
	REQ_EARLY("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, 21),
	REQ_EARLY("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400, 21),
	REQ_EARLY("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", 400, 32),
	REQ_EARLY("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n", 400, 32),
	REQ_EARLY("GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400, 17),
	REQ_EARLY("GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", 400, 26),
	REQ_EARLY("GET / HTTP/1.1\r\nHo(st: a\r\n\r\n", 400, 19),
	REQ_EARLY("GET / HTTP/1.1\r\nHo\x01st: a\r\n\r\n", 400, 19),
	REQ_EARLY("GET / HTTP/1.1\r\nHost: a\x01z\r\n\r\n", 400, 24),
	REQ_EARLY("GET / HTTP/1.1\r\nHost: a\x7fz\r\n\r\n", 400, 24),
	REQ_EARLY("GET / HTTP/1.1\r\nHost: a\x1b[31mz\r\n\r\n", 400, 24),
	REQ_EARLY("GET / HTTP/1.1\r\nHost: a\r\nX: 0123456789abcdef0123456789\x0b\r\n\r\n", 400,
		  55),
	/* DEL and NUL in the middle of a long run, where values are checked a word at a time */
	REQ_EARLY("GET / HTTP/1.1\r\nHost: a\r\nX: 0123456789\x7f"
		  "0123456789abcdef\r\n\r\n",
		  400, 39),
	{"GET / HTTP/1.1\r\nHost: a\r\nX: 0123456789\0" "0123456789abcdef\r\n\r\n", 57, 400, 39,
	 false, HTTP_M_OTHER, {0, 0, 0}},
	{"GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", 29, 400, 24, false, HTTP_M_OTHER, {0, 0, 0}},
	/* Content-Length */
	REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
	    400),
	REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
	    400),
	REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
	/* a Host value that is not uri-host [":" port] */
	REQ("GET / HTTP/1.1\r\nHost: x, y\r\n\r\n", 400),
	REQ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
	REQ("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", 400),
	REQ("GET / HTTP/1.1\r\nHost: a\"b\r\n\r\n", 400),
	REQ("GET / HTTP/1.0\r\nHost: a/b\r\n\r\n", 400),
	REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", 400),
	REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,,5\r\n\r\n", 400),
	REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n", 400),
	REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400),
	REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
	REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400),
	REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5a\r\n\r\n", 400),
	REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", 400),
	REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 6\r\n\r\n", 400),
	REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1.5\r\n\r\n", 400),
	REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n", 400),
	REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400),
	/* Transfer-Encoding */
	REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
	REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
	REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	    "Transfer-Encoding: identity\r\n\r\n",
	    400),
	REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400),
	REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", 400),
	REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\n\r\n", 400),
	REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", 400),
	REQ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
	REQ("POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
	REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
	REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo,chunked\r\n\r\n", 501),
	REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n",
	    501),
	/* Host */
	REQ("GET / HTTP/1.1\r\n\r\n", 400),
	REQ("GET / HTTP/1.1\r\nX-Host: a\r\n\r\n", 400),
	REQ("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),
	REQ("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400),
	REQ("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400),
	/* limits: 414 and 431 as soon as the limit is passed, the head still incomplete */
	REQ_LIM("GET /0123456789abcdef HTTP/1.1\r\nHost: a\r\n\r\n", 414, 21, 0, 20, 0),
	REQ_LIM("GET /0123456 HTTP/1.1\r\nHost: a\r\n\r\n", 414, 21, 0, 20, 0),
	/* too long is decided before looking further: the junk after the limit is not seen */
	REQ_LIM("GET /0123456789abcdef\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 414, 21, 0, 20, 0),
	REQ_LIM("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n", 431, 32, 32, 0, 0),
	REQ_LIM("GET / HTTP/1.1\r\nHost: a\r\nX-Long: 0123456789012345678901234567890123456789"
		"0123456789\r\n\r\n",
		431, 40, 40, 0, 0),
	REQ_LIM("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nY: 2\r\n\r\n", 431, 32, 0, 0, 2),
	REQ_LIM("GET /0123456789abcdef HTTP/1.1\r\nHost: a\r\n\r\n", 431, 10, 10, 0, 0),
	/* responses */
	RESP_EARLY("HTTP/1.1 20 OK\r\n\r\n", 400, 12),
	RESP_EARLY("HTTP/1.1 2000 OK\r\n\r\n", 400, 13),
	RESP_EARLY("HTTP/1.1 600 Nope\r\n\r\n", 400, 10),
	RESP_EARLY("HTTP/1.1 099 Nope\r\n\r\n", 400, 10),
	RESP_EARLY("HTTP/1.1  200 OK\r\n\r\n", 400, 10),
	RESP_EARLY("HTTP/1.1 2x0 OK\r\n\r\n", 400, 11),
	RESP_EARLY("HTTP/1.1 200OK\r\n\r\n", 400, 13),
	RESP_EARLY("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", 400, 16),
	RESP_EARLY("HTTP/1.1 200\n\r\n", 400, 13),
	RESP_EARLY("HTTP/1.1 200 O\x01K\r\n\r\n", 400, 15),
	RESP_EARLY("HTTP/1.1 200 OK\rX\r\n\r\n", 400, 17),
	RESP_EARLY("HTTP/2.0 200 OK\r\n\r\n", 505, 8),
	RESP_EARLY("HTTP/1.2 200 OK\r\n\r\n", 505, 8),
	RESP_EARLY("HTTP/1.1\r\n\r\n", 400, 9),
	RESP_EARLY("ICY 200 OK\r\n\r\n", 400, 1),
	RESP_EARLY("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", 400, 24),
	RESP_EARLY("HTTP/1.1 200 OK\r\nX : a\r\n\r\n", 400, 19),
	RESP_EARLY("HTTP/1.1 200 OK\r\nX: a\x7f\r\n\r\n", 400, 22),
	RESP("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
	RESP("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
	RESP("HTTP/1.1 204 No Content\r\nContent-Length: 1, 2\r\n\r\n", 400),
	RESP("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", 400),
	RESP("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
	RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
	RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400),
};
/* clang-format on */

static void test_invalid(void)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		size_t n = c->len ? c->len : strlen(c->raw);
		struct http_header hdr[MAX_HDR];
		struct http_msg m;
		enum http_parse want, r;
		size_t first = 0;
		int failed = check_failed;

		want = c->status == 414 || c->status == 431 ? HTTP_TOO_LARGE : HTTP_ERROR;
		msg_init(&m, hdr, MAX_HDR);
		r = parse(&m, c->raw, n, c->response, c->req_method, &c->lim);
		CHECK_INT(r, want);
		CHECK_INT(m.error_status, c->status);
		CHECK(m.error != NULL);
		/* Errors stick. */
		CHECK_INT(parse(&m, c->raw, n, c->response, c->req_method, &c->lim), want);

		/* Fed a byte at a time, it fails as soon as the culprit arrives, and then for
		 * good. */
		msg_init(&m, hdr, MAX_HDR);
		for (size_t k = 1; k <= n; k++) {
			r = parse_prefix(&m, c->raw, k, c->response, c->req_method, &c->lim);
			if (r != HTTP_AGAIN) {
				first = k;
				break;
			}
		}
		CHECK_INT(r, want);
		CHECK_INT(m.error_status, c->status);
		if (c->early != 0)
			CHECK_INT(first, c->early);
		CHECK_INT(parse_prefix(&m, c->raw, n, c->response, c->req_method, &c->lim), want);

		/* Two pieces, split anywhere before the failure point. */
		int bad_split = 0;
		for (size_t k = 1; k < first; k++) {
			msg_init(&m, hdr, MAX_HDR);
			if (parse_prefix(&m, c->raw, k, c->response, c->req_method, &c->lim) !=
				HTTP_AGAIN ||
			    parse_prefix(&m, c->raw, n, c->response, c->req_method, &c->lim) !=
				want ||
			    m.error_status != c->status)
				bad_split++;
		}
		CHECK_INT(bad_split, 0);
		if (check_failed != failed)
			print_case("invalid", (int)i, c->raw, n);
	}
}

/* Incomplete heads are never errors, however they are cut. */
static void test_incomplete(void)
{
	static const char *const heads[] = {
	    "GET / HTTP/1.1",
	    "GET / HTTP/1.1\r",
	    "GET / HTTP/1.1\r\nHost: a\r\n",
	    "GET / HTTP/1.1\r\nHost: a\r\n\r",
	    "HTTP/1.1 200",
	    "HTTP/1.1 200 OK\r\nX: y",
	};

	for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
		struct http_header hdr[MAX_HDR];
		struct http_msg m;
		size_t n = strlen(heads[i]);

		msg_init(&m, hdr, MAX_HDR);
		CHECK_INT(parse(&m, heads[i], n, heads[i][0] == 'H', HTTP_M_GET, NULL), HTTP_AGAIN);
		CHECK_INT(m.scanned, n);
		CHECK_INT(m.head_len, 0);
	}
}

/* ---------------------------------------------------------------- limits */

static void test_limits(void)
{
	struct http_header hdr[MAX_HDR];
	struct http_msg m;
	char big[4096];
	size_t n;

	/* More fields than msg->max_hdr: 431 when the first field too many begins. */
	const char *three = "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nY: 2\r\n\r\n";
	msg_init(&m, hdr, 2);
	CHECK_INT(http_parse_request(&m, three, strlen(three), NULL), HTTP_TOO_LARGE);
	CHECK_INT(m.error_status, 431);
	msg_init(&m, hdr, 3);
	CHECK_INT(http_parse_request(&m, three, strlen(three), NULL), HTTP_OK);
	/* max_headers tighter than max_hdr wins; looser does not. */
	struct http_limits lim = {.max_headers = 2};
	msg_init(&m, hdr, 3);
	CHECK_INT(http_parse_request(&m, three, strlen(three), &lim), HTTP_TOO_LARGE);
	lim.max_headers = 10;
	msg_init(&m, hdr, 3);
	CHECK_INT(http_parse_request(&m, three, strlen(three), &lim), HTTP_OK);

	/* A head that never ends is refused once the limit is reached, not before, and the
	 * parser looks no further than the limit. */
	n = (size_t)snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: a\r\nX: ");
	memset(big + n, 'x', sizeof(big) - n);
	lim = (struct http_limits){.max_header_bytes = 1000};
	msg_init(&m, hdr, MAX_HDR);
	CHECK_INT(http_parse_request(&m, big, 999, &lim), HTTP_AGAIN);
	CHECK_INT(http_parse_request(&m, big, 1000, &lim), HTTP_TOO_LARGE);
	CHECK_INT(m.error_status, 431);
	msg_init(&m, hdr, MAX_HDR);
	CHECK_INT(http_parse_request(&m, big, sizeof(big), &lim), HTTP_TOO_LARGE);
	CHECK_INT(m.error_status, 431);
	CHECK(m.scanned <= 1000);

	/* A request line that never ends: 414 once it is longer than the limit. */
	memcpy(big, "GET /", 5);
	memset(big + 5, 'a', sizeof(big) - 5);
	lim = (struct http_limits){.max_header_bytes = 8192, .max_request_line = 100};
	msg_init(&m, hdr, MAX_HDR);
	CHECK_INT(http_parse_request(&m, big, 100, &lim), HTTP_AGAIN);
	CHECK_INT(http_parse_request(&m, big, 101, &lim), HTTP_TOO_LARGE);
	CHECK_INT(m.error_status, 414);
	msg_init(&m, hdr, MAX_HDR);
	CHECK_INT(http_parse_request(&m, big, sizeof(big), &lim), HTTP_TOO_LARGE);
	CHECK_INT(m.error_status, 414);

	/* With the CR exactly at the limit the line still fits, whatever follows. */
	const char *fits = "GET /abc HTTP/1.1\r\nHost: a\r\n\r\n";
	lim = (struct http_limits){.max_request_line = 17};
	msg_init(&m, hdr, MAX_HDR);
	CHECK_INT(http_parse_request(&m, fits, 18, &lim), HTTP_AGAIN);
	CHECK_INT(http_parse_request(&m, fits, strlen(fits), &lim), HTTP_OK);
	lim.max_request_line = 16;
	msg_init(&m, hdr, MAX_HDR);
	CHECK_INT(http_parse_request(&m, fits, strlen(fits), &lim), HTTP_TOO_LARGE);
	CHECK_INT(m.error_status, 414);

	/* Exactly max_hdr fields and a head of exactly max_header_bytes pass. */
	char many[4096];
	n = (size_t)snprintf(many, sizeof(many), "GET / HTTP/1.1\r\nHost: a\r\n");
	for (int i = 1; i < MAX_HDR; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, "X-%d: %d\r\n", i, i * 7);
	n += (size_t)snprintf(many + n, sizeof(many) - n, "\r\n");
	lim = (struct http_limits){.max_header_bytes = (uint32_t)n};
	msg_init(&m, hdr, MAX_HDR);
	CHECK_INT(http_parse_request(&m, many, n, &lim), HTTP_OK);
	CHECK_INT(m.nhdr, MAX_HDR);
	CHECK_STR(span_str(many, m.hdr[MAX_HDR - 1].value), "441");
	check_incremental_ok(many, n, false, HTTP_M_OTHER, &lim, &m);
	lim.max_header_bytes--;
	msg_init(&m, hdr, MAX_HDR);
	CHECK_INT(http_parse_request(&m, many, n, &lim), HTTP_TOO_LARGE);
	CHECK_INT(m.error_status, 431);
	msg_init(&m, hdr, MAX_HDR - 1);
	CHECK_INT(http_parse_request(&m, many, n, NULL), HTTP_TOO_LARGE);
	CHECK_INT(m.error_status, 431);

	/* No header array at all: a field is one too many. */
	msg_init(&m, NULL, 0);
	CHECK_INT(http_parse_request(&m, three, strlen(three), NULL), HTTP_TOO_LARGE);
	msg_init(&m, NULL, 0);
	CHECK_INT(http_parse_request(&m, "GET / HTTP/1.0\r\n\r\n", 18, NULL), HTTP_OK);
}

/* ---------------------------------------------------------------- pipelining */

static void test_pipelined(void)
{
	struct http_header hdr[MAX_HDR];
	struct http_msg m;
	const char *two = "GET /first HTTP/1.1\r\nHost: a\r\n\r\n"
			  "POST /second?x=1 HTTP/1.1\r\nHost: b\r\nContent-Length: 3\r\n\r\nabc"
			  "PUT /third HTTP/1.1\r\nHost: c\r\nTransfer-Encoding: chunked\r\n\r\n"
			  "3;ext=1\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n"
			  "GET /fourth HTTP/1.1\r\nHost: d\r\n\r\n";
	size_t n = strlen(two), off;

	msg_init(&m, hdr, MAX_HDR);
	CHECK_INT(http_parse_request(&m, two, n, NULL), HTTP_OK);
	CHECK_INT(m.head_len, strlen("GET /first HTTP/1.1\r\nHost: a\r\n\r\n"));
	CHECK_STR(span_str(two, m.path), "/first");
	CHECK_INT(m.body, HTTP_BODY_NONE);
	off = m.head_len;
	CHECK(strncmp(two + off, "POST ", 5) == 0);

	msg_init(&m, hdr, MAX_HDR);
	CHECK_INT(http_parse_request(&m, two + off, n - off, NULL), HTTP_OK);
	CHECK_STR(span_str(two + off, m.path), "/second");
	CHECK_STR(span_str(two + off, m.query), "x=1");
	CHECK_INT(m.body, HTTP_BODY_LENGTH);
	CHECK(m.content_length == 3);
	CHECK_STR(span_str(two + off, m.hdr[m.host_idx].value), "b");
	off += m.head_len;
	CHECK(strncmp(two + off, "abc", 3) == 0);
	off += 3;

	msg_init(&m, hdr, MAX_HDR);
	CHECK_INT(http_parse_request(&m, two + off, n - off, NULL), HTTP_OK);
	CHECK_STR(span_str(two + off, m.path), "/third");
	CHECK_INT(m.body, HTTP_BODY_CHUNKED);
	off += m.head_len;

	struct http_chunked ch;
	size_t used = 0;
	http_chunked_reset(&ch);
	CHECK_INT(http_chunked_feed(&ch, two + off, n - off, &used), HTTP_OK);
	CHECK_INT(used, strlen("3;ext=1\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n"));
	off += used;

	msg_init(&m, hdr, MAX_HDR);
	CHECK_INT(http_parse_request(&m, two + off, n - off, NULL), HTTP_OK);
	CHECK_STR(span_str(two + off, m.path), "/fourth");
	CHECK_INT(off + m.head_len, n);

	/* A response followed by the next one. */
	const char *resp =
	    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 204 No Content\r\n\r\n";
	msg_init(&m, hdr, MAX_HDR);
	CHECK_INT(http_parse_response(&m, resp, strlen(resp), HTTP_M_GET, NULL), HTTP_OK);
	CHECK_INT(m.head_len, 38);
	msg_init(&m, hdr, MAX_HDR);
	CHECK_INT(http_parse_response(&m, resp + 40, strlen(resp) - 40, HTTP_M_GET, NULL), HTTP_OK);
	CHECK_INT(m.status, 204);
}

/* ---------------------------------------------------------------- helpers */

static void test_helpers(void)
{
	struct http_header hdr[MAX_HDR];
	struct http_msg m;
	const char *raw =
	    "GET / HTTP/1.1\r\nHost: a\r\nX-Dup: 1\r\nx-dup: 2\r\nContent-Type: t\r\n\r\n";

	msg_init(&m, hdr, MAX_HDR);
	CHECK_INT(http_parse_request(&m, raw, strlen(raw), NULL), HTTP_OK);
	CHECK_INT(http_find_header(&m, raw, "host", 4), 0);
	CHECK_INT(http_find_header(&m, raw, "X-DUP", 5), 1);
	CHECK_INT(http_find_header(&m, raw, "content-type", 12), 3);
	CHECK_INT(http_find_header(&m, raw, "content-typ", 11), -1);
	CHECK_INT(http_find_header(&m, raw, "X-Missing", 9), -1);
	CHECK(http_span_ieq(raw, m.hdr[3].name, "CONTENT-TYPE", 12));
	CHECK(http_span_ieq(raw, m.hdr[3].name, "Content-Type", 12));
	CHECK(!http_span_ieq(raw, m.hdr[3].name, "Content-Typf", 12));
	CHECK(!http_span_ieq(raw, m.hdr[3].name, "Content-Type ", 13));
	CHECK(http_span_ieq(raw, (struct http_span){0, 0}, "", 0));
	/* Case folding is for letters only: '[' is not '{', '@' is not '`'. */
	CHECK(!http_span_ieq("[@", (struct http_span){0, 2}, "{`", 2));
}

/* ---------------------------------------------------------------- chunked framer */

struct chunk_case {
	const char *raw;
	size_t len;  /* 0: strlen(raw) */
	size_t body; /* bytes of the body on HTTP_OK */
	enum http_parse want;
};

#define NEXT "GET /next HTTP/1.1\r\nHost: a\r\n\r\n"
#define CHUNK_OK(body)                                                                             \
	{                                                                                          \
		body NEXT, 0, sizeof(body) - 1, HTTP_OK                                            \
	}
#define CHUNK_BAD(raw)                                                                             \
	{                                                                                          \
		raw, 0, 0, HTTP_ERROR                                                              \
	}

/* clang-format off */
static const struct chunk_case chunk_cases[] = {
	CHUNK_OK("0\r\n\r\n"),
	CHUNK_OK("000\r\n\r\n"),
	CHUNK_OK("5\r\nhello\r\n0\r\n\r\n"),
	CHUNK_OK("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
	CHUNK_OK("A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n"),
	CHUNK_OK("00005\r\n\r\n\r\n\r\r\n0\r\n\r\n"),
	CHUNK_OK("00000000000000a\r\n0123456789\r\n0\r\n\r\n"),
	CHUNK_OK("5;foo=bar\r\nhello\r\n6;a;b=\"q \\\"x\\\" y\";c\r\n world\r\n0;last\r\n\r\n"),
	CHUNK_OK("1;n=\"\"\r\nx\r\n1;!#$%&'*+-.^_`|~=!#$%&'*+-.^_`|~\r\ny\r\n0\r\n\r\n"),
	CHUNK_OK("1;q=\"\xc3\xa9\t;,=\"\r\nx\r\n0\r\n\r\n"),
	CHUNK_OK("3\r\nabc\r\n0\r\nX-Checksum: 123\r\nX-Empty:\r\nX-Sp:  a b  \r\n\r\n"),
	CHUNK_OK("3\r\n\r\n\r\r\n0;x=y\r\nT: \x80\xff\r\n\r\n"),
	/* Data is opaque: anything may sit inside it, a size line look-alike included. */
	CHUNK_OK("8\r\n0\r\n\r\n\n\r\x00\r\n0\r\n\r\n"),
	CHUNK_BAD("g\r\n"),
	CHUNK_BAD("\r\n"),
	CHUNK_BAD("-5\r\n"),
	CHUNK_BAD("0x5\r\n"),
	CHUNK_BAD(" 5\r\nhello\r\n0\r\n\r\n"),
	CHUNK_BAD("5 \r\nhello\r\n0\r\n\r\n"),
	CHUNK_BAD("5\t\r\nhello\r\n0\r\n\r\n"),
	CHUNK_BAD("5 ;a\r\nhello\r\n0\r\n\r\n"),
	CHUNK_BAD("5; a\r\nhello\r\n0\r\n\r\n"),
	CHUNK_BAD("5;a =b\r\nhello\r\n0\r\n\r\n"),
	CHUNK_BAD("5;a= b\r\nhello\r\n0\r\n\r\n"),
	CHUNK_BAD("5;a=b \r\nhello\r\n0\r\n\r\n"),
	CHUNK_BAD("5;\r\nhello\r\n0\r\n\r\n"),
	CHUNK_BAD("5;=b\r\nhello\r\n0\r\n\r\n"),
	CHUNK_BAD("5;a=\r\nhello\r\n0\r\n\r\n"),
	CHUNK_BAD("5;a=b\"c\"\r\nhello\r\n0\r\n\r\n"),
	CHUNK_BAD("5;a=\"b\"c\r\nhello\r\n0\r\n\r\n"),
	CHUNK_BAD("5;a=\"open\r\nhello\r\n0\r\n\r\n"),
	CHUNK_BAD("5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n"),
	CHUNK_BAD("5;a=(b)\r\nhello\r\n0\r\n\r\n"),
	CHUNK_BAD("5\nhello\r\n0\r\n\r\n"),
	CHUNK_BAD("5\rhello\r\n0\r\n\r\n"),
	CHUNK_BAD("5\r\nhelloX\r\n0\r\n\r\n"),
	CHUNK_BAD("5\r\nhello\n0\r\n\r\n"),
	CHUNK_BAD("5\r\nhello\rX0\r\n\r\n"),
	CHUNK_BAD("5\r\nhell\r\n0\r\n\r\n"),
	CHUNK_BAD("1000000000000000\r\n"),
	CHUNK_BAD("0000000000000001\r\nx\r\n0\r\n\r\n"),
	CHUNK_BAD("0\r\nX : y\r\n\r\n"),
	CHUNK_BAD("0\r\nX: y\r\n z\r\n\r\n"),
	CHUNK_BAD("0\r\n X: y\r\n\r\n"),
	CHUNK_BAD("0\r\nX: \x01\r\n\r\n"),
	CHUNK_BAD("0\r\nX: y\n\r\n"),
	CHUNK_BAD("0\r\nX: y\rZ\r\n"),
	CHUNK_BAD("0\r\nX\r\n\r\n"),
	CHUNK_BAD("0\r\n: y\r\n\r\n"),
	CHUNK_BAD("0\r\n\n"),
	CHUNK_BAD("0\r\n\rX"),
	CHUNK_BAD("0\n\r\n"),
};
/* clang-format on */

/*
 * Feeds RAW[0..n) to a fresh framer in pieces of STEP bytes (the first piece FIRST bytes when
 * non-zero), each from an exact-size copy; returns the final result and the body length seen.
 */
static int broken_promises;

static enum http_parse feed_pieces(const char *raw, size_t n, size_t first, size_t step,
				   size_t *body)
{
	struct http_chunked c;
	size_t off = 0;
	enum http_parse r = HTTP_AGAIN;

	http_chunked_reset(&c);
	*body = 0;
	while (off < n) {
		size_t k = off == 0 && first ? first : step, used = SIZE_MAX;
		char *copy;

		if (k > n - off)
			k = n - off;
		copy = malloc(k);
		memcpy(copy, raw + off, k);
		r = http_chunked_feed(&c, copy, k, &used);
		free(copy);
		/* HTTP_AGAIN promises that all was used; a failure says why. */
		if ((r == HTTP_AGAIN && used != k) ||
		    ((r == HTTP_ERROR || r == HTTP_TOO_LARGE) && c.error == NULL))
			broken_promises++;
		off += used;
		if (r != HTTP_AGAIN)
			break;
	}
	*body = off;
	return r;
}

static void test_chunked_cases(void)
{
	for (size_t i = 0; i < sizeof(chunk_cases) / sizeof(chunk_cases[0]); i++) {
		const struct chunk_case *c = &chunk_cases[i];
		size_t n = c->len ? c->len : strlen(c->raw), body;
		int failed = check_failed, bad = 0;

		if (c->want == HTTP_OK)
			n = c->body + strlen(NEXT); /* the body may hold a NUL */
		CHECK_INT(feed_pieces(c->raw, n, 0, n, &body), c->want);
		if (c->want == HTTP_OK)
			CHECK_INT(body, c->body);
		/* A byte at a time. */
		CHECK_INT(feed_pieces(c->raw, n, 0, 1, &body), c->want);
		if (c->want == HTTP_OK)
			CHECK_INT(body, c->body);
		/* Two pieces split at every boundary. */
		for (size_t k = 1; k < n; k++)
			if (feed_pieces(c->raw, n, k, n, &body) != c->want ||
			    (c->want == HTTP_OK && body != c->body))
				bad++;
		CHECK_INT(bad, 0);
		if (check_failed != failed)
			print_case("chunked", (int)i, c->raw, n);
	}
}

static void test_chunked_sizes(void)
{
	static char buf[70000];
	struct http_chunked c;
	size_t n, used, body;

	/* A big chunk is skipped in bulk, however it is cut. */
	n = (size_t)snprintf(buf, sizeof(buf), "10000\r\n");
	memset(buf + n, 'd', 0x10000);
	n += 0x10000;
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\n0\r\n\r\n");
	CHECK_INT(feed_pieces(buf, n, 0, n, &body), HTTP_OK);
	CHECK_INT(body, n);
	CHECK_INT(feed_pieces(buf, n, 0, 1000, &body), HTTP_OK);
	CHECK_INT(body, n);
	CHECK_INT(feed_pieces(buf, n, 3, 7, &body), HTTP_OK);
	CHECK_INT(body, n);

	/* While data is pending, remaining counts it down. */
	http_chunked_reset(&c);
	CHECK_INT(http_chunked_feed(&c, buf, 100, &used), HTTP_AGAIN);
	CHECK_INT(used, 100);
	CHECK(c.remaining == 0x10000 - (100 - 7));

	/* The largest size the framer takes: 15 hex digits. */
	http_chunked_reset(&c);
	CHECK_INT(http_chunked_feed(&c, "fffffffffffffff\r\nab", 19, &used), HTTP_AGAIN);
	CHECK(c.remaining == 0xfffffffffffffffull - 2);

	/* A size line of 4096 bytes is fine, 4097 is too long. */
	memcpy(buf, "1;x=", 4);
	memset(buf + 4, 'v', 4092);
	memcpy(buf + 4096, "\r\nx\r\n0\r\n\r\n", 10);
	CHECK_INT(feed_pieces(buf, 4106, 0, 4106, &body), HTTP_OK);
	CHECK_INT(body, 4106);
	memcpy(buf, "1;x=", 4);
	memset(buf + 4, 'v', 4093);
	memcpy(buf + 4097, "\r\nx\r\n0\r\n\r\n", 10);
	CHECK_INT(feed_pieces(buf, 4107, 0, 4107, &body), HTTP_TOO_LARGE);
	CHECK_INT(feed_pieces(buf, 4107, 0, 1, &body), HTTP_TOO_LARGE);
	CHECK_INT(feed_pieces(buf, 4107, 2000, 4107, &body), HTTP_TOO_LARGE);
	/* An endless extension is refused without waiting for its end. */
	memset(buf + 4, 'v', 10000);
	CHECK_INT(feed_pieces(buf, 10004, 0, 10004, &body), HTTP_TOO_LARGE);
	CHECK_INT(body, 4096);

	/* A trailer section of 4096 bytes is fine, one more is too much. */
	n = (size_t)snprintf(buf, sizeof(buf), "0\r\nX: ");
	memset(buf + n, 't', 4096 - 2 - 3 - 2);
	n += 4096 - 2 - 3 - 2;
	memcpy(buf + n, "\r\n\r\n", 4);
	n += 4;
	CHECK_INT(n, 3 + 4096);
	CHECK_INT(feed_pieces(buf, n, 0, n, &body), HTTP_OK);
	CHECK_INT(body, n);
	CHECK_INT(feed_pieces(buf, n, 0, 1, &body), HTTP_OK);
	n = (size_t)snprintf(buf, sizeof(buf), "0\r\nX: ");
	memset(buf + n, 't', 4096 - 2 - 3 - 1);
	n += 4096 - 2 - 3 - 1;
	memcpy(buf + n, "\r\n\r\n", 4);
	n += 4;
	CHECK_INT(feed_pieces(buf, n, 0, n, &body), HTTP_TOO_LARGE);
	CHECK_INT(feed_pieces(buf, n, 0, 1, &body), HTTP_TOO_LARGE);
	CHECK_INT(feed_pieces(buf, n, 5, 9, &body), HTTP_TOO_LARGE);
	/* An endless trailer value is refused without waiting for its end. */
	n = (size_t)snprintf(buf, sizeof(buf), "0\r\nX: ");
	memset(buf + n, 't', 10000);
	n += 10000;
	CHECK_INT(feed_pieces(buf, n, 0, n, &body), HTTP_TOO_LARGE);
	CHECK_INT(feed_pieces(buf, n, 0, 1, &body), HTTP_TOO_LARGE);
	CHECK_INT(body, 3 + 4096);
	/* Many small trailer fields add up. */
	n = (size_t)snprintf(buf, sizeof(buf), "0\r\n");
	while (n < 5000)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-T: 1\r\n");
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\n");
	CHECK_INT(feed_pieces(buf, n, 0, n, &body), HTTP_TOO_LARGE);

	/* Once done or failed, the framer stays so and takes nothing more. */
	http_chunked_reset(&c);
	CHECK_INT(http_chunked_feed(&c, "0\r\n\r\nXYZ", 8, &used), HTTP_OK);
	CHECK_INT(used, 5);
	CHECK_INT(http_chunked_feed(&c, "XYZ", 3, &used), HTTP_OK);
	CHECK_INT(used, 0);
	http_chunked_reset(&c);
	CHECK_INT(http_chunked_feed(&c, "z", 1, &used), HTTP_ERROR);
	CHECK(c.error != NULL);
	CHECK_INT(http_chunked_feed(&c, "0\r\n\r\n", 5, &used), HTTP_ERROR);
	/* Nothing fed, nothing decided. */
	http_chunked_reset(&c);
	CHECK_INT(http_chunked_feed(&c, "", 0, &used), HTTP_AGAIN);
	CHECK_INT(used, 0);
}

/* ---------------------------------------------------------------- a long head, dripped */

/*
 * A 60 kB head fed one byte at a time: with rescanning this would be billions of steps; each
 * call must resume where the previous one stopped.
 */
static void test_long_head_dripped(void)
{
	static char head[70000];
	struct http_header hdr[MAX_HDR];
	struct http_msg m;
	size_t n;
	int bad = 0;

	n = (size_t)snprintf(head, sizeof(head), "POST /%0400d?q=1 HTTP/1.1\r\nHost: a\r\n", 7);
	for (int i = 0; i < 60; i++) {
		n += (size_t)snprintf(head + n, sizeof(head) - n, "X-Field-%d: ", i);
		memset(head + n, 'a' + i % 26, 990);
		n += 990;
		memcpy(head + n, "\r\n", 2);
		n += 2;
	}
	n += (size_t)snprintf(head + n, sizeof(head) - n, "Content-Length: 9\r\n\r\n");
	msg_init(&m, hdr, MAX_HDR);
	for (size_t k = 1; k < n; k++)
		if (http_parse_request(&m, head, k, NULL) != HTTP_AGAIN || m.scanned != k)
			bad++;
	CHECK_INT(bad, 0);
	CHECK_INT(http_parse_request(&m, head, n, NULL), HTTP_OK);
	CHECK_INT(m.nhdr, 62);
	CHECK_INT(m.head_len, n);
	CHECK_INT(m.body, HTTP_BODY_LENGTH);
	CHECK(m.content_length == 9);
	CHECK_INT(m.hdr[61].value.len, 1);
	CHECK_INT(m.hdr[60].value.len, 990);
	CHECK_INT(m.query.len, 3);
}

/* RFC 9110 tchar, written out independently of the parser's table. */
static bool ref_tchar(unsigned c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c != 0 && strchr("!#$%&'*+-.^_`|~", (int)c) != NULL);
}

/*
 * The scans that vet many bytes at a time (field values and names), against byte-by-byte
 * rules: every byte value at every position of a value and a name long enough for the wide
 * paths, including the positions where a 16-byte block ends.
 */
static void test_wide_scans(void)
{
	struct http_header hdr[MAX_HDR];
	struct http_msg m;
	char raw[160];
	int wrong = 0;

	for (unsigned c = 0; c < 256; c++) {
		for (int pos = 1; pos < 39; pos++) {
			/* value: 40 bytes of 'v' with c at pos (never at either end: OWS is trimmed) */
			char val[41];
			memset(val, 'v', 40);
			val[40] = '\0';
			val[pos] = (char)c;
			int n = snprintf(raw, sizeof(raw), "GET / HTTP/1.1\r\nHost: h\r\nX-V: ");
			memcpy(raw + n, val, 40);
			n += 40;
			n += snprintf(raw + n, sizeof(raw) - (size_t)n, "\r\nAccept: */*\r\n\r\n");
			msg_init(&m, hdr, MAX_HDR);
			enum http_parse r = parse_prefix(&m, raw, (size_t)n, false, HTTP_M_OTHER, NULL);
			bool ok = c == '\t' || (c >= 0x20 && c != 0x7f);
			if (ok != (r == HTTP_OK) ||
			    (ok && (m.nhdr != 3 || m.hdr[1].value.len != 40)))
				wrong++;

			/* name: 40 token bytes with c at pos */
			char name[41];
			memset(name, 'n', 40);
			name[40] = '\0';
			name[pos] = (char)c;
			n = snprintf(raw, sizeof(raw), "HTTP/1.1 200 OK\r\n");
			memcpy(raw + n, name, 40);
			n += 40;
			n += snprintf(raw + n, sizeof(raw) - (size_t)n, ": x\r\nContent-Length: 0\r\n\r\n");
			msg_init(&m, hdr, MAX_HDR);
			r = parse_prefix(&m, raw, (size_t)n, true, HTTP_M_GET, NULL);
			if (c == ':') {
				/* the name ends there; the rest is part of the value */
				if (r != HTTP_OK || m.hdr[0].name.len != (uint32_t)pos)
					wrong++;
			} else if (ref_tchar(c) != (r == HTTP_OK) ||
				   (r == HTTP_OK && m.hdr[0].name.len != 40)) {
				wrong++;
			}
		}
	}
	CHECK_INT(wrong, 0);
}

/* Case-insensitive span comparison, word-wise for 8 bytes and more, against a byte-by-byte
 * ASCII folding: every pair of byte values at a position of a 9-byte and a 17-byte name. */
static void test_span_ieq_bytes(void)
{
	int wrong = 0;

	for (size_t len = 9; len <= 17; len += 8) {
		char a[17], b[17];
		struct http_span s = {0, (uint32_t)len};

		memset(a, 'k', len);
		memset(b, 'k', len);
		for (unsigned x = 0; x < 256; x++) {
			for (unsigned y = 0; y < 256; y++) {
				size_t pos = (x + y) % len;
				unsigned lx = x >= 'A' && x <= 'Z' ? x + 32 : x;
				unsigned ly = y >= 'A' && y <= 'Z' ? y + 32 : y;

				a[pos] = (char)x;
				b[pos] = (char)y;
				if (http_span_ieq(a, s, b, len) != (lx == ly))
					wrong++;
				a[pos] = b[pos] = 'k';
			}
		}
	}
	CHECK_INT(wrong, 0);
}

/* The whole-word comparisons with known names and tokens, in any case, and near misses. */
static void test_known_words(void)
{
	static const struct {
		const char *head;
		int body, keep_alive, expect;
	} cases[] = {
	    {"POST / HTTP/1.1\r\nHOST: h\r\nCONTENT-LENGTH: 7\r\n\r\n", HTTP_BODY_LENGTH, 1, 0},
	    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: CHUNKED\r\n\r\n", HTTP_BODY_CHUNKED, 1, 0},
	    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunkee\r\n\r\n", -1, 0, 0},
	    {"GET / HTTP/1.1\r\nHost: h\r\nConnection: CLOSE\r\n\r\n", HTTP_BODY_NONE, 0, 0},
	    {"GET / HTTP/1.1\r\nHost: h\r\nConnection: closf\r\n\r\n", HTTP_BODY_NONE, 1, 0},
	    {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", HTTP_BODY_NONE, 1, 0},
	    {"GET / HTTP/1.0\r\nConnection: Keep-Alivf\r\n\r\n", HTTP_BODY_NONE, 0, 0},
	    {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", HTTP_BODY_NONE, 0, 0},
	    {"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-CONTINUE\r\nContent-Length: 1\r\n\r\n",
	     HTTP_BODY_LENGTH, 1, 1},
	    {"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continuf\r\nContent-Length: 1\r\n\r\n",
	     HTTP_BODY_LENGTH, 1, 0},
	    {"GET / HTTP/1.1\r\nHosu: h\r\n\r\n", -1, 0, 0},
	    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 000000000000000012\r\n\r\n",
	     HTTP_BODY_LENGTH, 1, 0},
	    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n", -1, 0,
	     0},
	    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 12a\r\n\r\n", -1, 0, 0},
	};
	struct http_header hdr[MAX_HDR];
	struct http_msg m;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = strlen(cases[i].head);
		int before = check_failed;

		msg_init(&m, hdr, MAX_HDR);
		enum http_parse r = parse_prefix(&m, cases[i].head, n, false, HTTP_M_OTHER, NULL);
		if (cases[i].body < 0) {
			CHECK(r == HTTP_ERROR);
		} else {
			CHECK(r == HTTP_OK);
			CHECK_INT(m.body, cases[i].body);
			CHECK_INT(m.keep_alive, cases[i].keep_alive);
			CHECK_INT(m.expect_continue, cases[i].expect);
		}
		if (check_failed != before)
			print_case("known words", (int)i, cases[i].head, n);
	}
	msg_init(&m, hdr, MAX_HDR);
	CHECK(parse_prefix(&m, cases[11].head, strlen(cases[11].head), false, HTTP_M_OTHER,
			   NULL) == HTTP_OK);
	CHECK_INT(m.content_length, 12);
}

int main(void)
{
	test_valid_requests();
	test_valid_responses();
	test_invalid();
	test_incomplete();
	test_limits();
	test_pipelined();
	test_helpers();
	test_chunked_cases();
	test_chunked_sizes();
	test_long_head_dripped();
	test_wide_scans();
	test_span_ieq_bytes();
	test_known_words();
	CHECK_INT(broken_promises, 0);
	return check_summary("test_http");
}
