/*
 * http.h - a strict, incremental HTTP/1.1 message-head parser and chunked-body framer.
 *
 * Pure: bytes in, struct out. No I/O, no allocation; header names and values are spans
 * (offset, length) into the caller's buffer, stored in a caller-provided array. The same code
 * parses requests from clients (proxy and admin listener) and responses from upstreams.
 *
 * Incremental use: keep one struct http_msg per message; call http_msg_reset() before the
 * first call, then call the parse function each time more bytes have arrived (the buffer must
 * still hold the message from its first byte). Bytes already scanned are not scanned again.
 *
 * Strictness (a request that fails any of these gets the status in msg->error_status, and the
 * connection must be closed since framing can no longer be trusted):
 *   - every line ends in CRLF; a bare LF or bare CR anywhere in the head -> 400
 *   - request line "METHOD SP request-target SP HTTP/1.x"; single spaces; method a token;
 *     target origin-form ("/...") or "*" for OPTIONS or absolute-form; longer than
 *     lim->max_request_line -> 414; HTTP version other than 1.0/1.1 -> 505
 *   - header "name: value": name a token, no whitespace before the colon, no obs-fold
 *     (a line starting with SP/HT), no control characters (other than HT) in values -> 400
 *   - head larger than lim->max_header_bytes -> 431; more than lim->max_headers fields -> 431
 *   - Content-Length: digits only; several differing values (in one field or repeated) -> 400
 *   - Transfer-Encoding together with Content-Length -> 400; Transfer-Encoding whose last
 *     coding is not "chunked" -> 400 (request) or read-until-close (response); any
 *     Transfer-Encoding in an HTTP/1.0 message -> 400; codings other than chunked -> 501
 *   - HTTP/1.1 request without Host, with several Host fields, or with a Host value that is not
 *     uri-host [":" port] (whitespace, "@", a list) -> 400
 */
#ifndef ABGATE_HTTP_H
#define ABGATE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum http_parse {
	HTTP_OK = 0,      /* the head is complete; msg->head_len says how long it is */
	HTTP_AGAIN,       /* need more bytes */
	HTTP_ERROR,       /* malformed; msg->error and msg->error_status say why */
	HTTP_TOO_LARGE,   /* a limit was exceeded; msg->error_status is 414 or 431 */
};

enum http_method {
	HTTP_M_OTHER = 0,
	HTTP_M_GET,
	HTTP_M_HEAD,
	HTTP_M_POST,
	HTTP_M_PUT,
	HTTP_M_DELETE,
	HTTP_M_OPTIONS,
	HTTP_M_PATCH,
	HTTP_M_CONNECT,
	HTTP_M_TRACE,
};

/* May a request with method m be sent again when its connection failed before any answer
 * (RFC 9110 9.2.2: idempotent)? Only without a body, the callers add. */
static inline bool http_method_idempotent(enum http_method m)
{
	return m == HTTP_M_GET || m == HTTP_M_HEAD || m == HTTP_M_OPTIONS || m == HTTP_M_PUT ||
	       m == HTTP_M_DELETE || m == HTTP_M_TRACE;
}

enum http_body {
	HTTP_BODY_NONE = 0, /* no body (Content-Length: 0 or absent on a request, 1xx/204/304, HEAD) */
	HTTP_BODY_LENGTH,   /* msg->content_length bytes follow the head */
	HTTP_BODY_CHUNKED,  /* chunked transfer coding; frame it with struct http_chunked */
	HTTP_BODY_EOF,      /* response only: the body runs until the connection closes */
};

/* A run of bytes inside the caller's buffer. */
struct http_span {
	uint32_t off;
	uint32_t len;
};

struct http_header {
	struct http_span name;
	struct http_span value; /* leading and trailing SP/HT trimmed */
};

/* Limits applied while parsing; zero members mean "no limit" for that member. */
struct http_limits {
	uint32_t max_header_bytes;  /* the whole head, request/status line included */
	uint32_t max_request_line;  /* request line, CRLF excluded */
	uint32_t max_headers;       /* number of header fields; also bounded by msg->max_hdr */
};

/* Flags parsed from the Connection header (all fields, all tokens, case-insensitive). */
#define HTTP_CONN_CLOSE 0x1
#define HTTP_CONN_KEEP_ALIVE 0x2
#define HTTP_CONN_UPGRADE 0x4

struct http_msg {
	/* set by the caller before parsing */
	struct http_header *hdr; /* (ref) array of max_hdr entries, filled by the parser */
	uint32_t max_hdr;

	/* request line */
	enum http_method method;
	struct http_span method_s;
	struct http_span target; /* as sent */
	struct http_span path;   /* target up to '?' (for absolute-form: the path part) */
	struct http_span query;  /* after '?', without it; len 0 when absent */

	/* status line (responses) */
	int status;
	struct http_span reason;

	int minor;         /* HTTP/1.<minor>: 0 or 1 */
	uint32_t nhdr;     /* header fields stored in hdr[] */
	uint32_t head_len; /* bytes of the head including the empty line */

	/* framing and semantics derived from the headers */
	enum http_body body;
	uint64_t content_length; /* valid when body == HTTP_BODY_LENGTH or has_length */
	bool has_length;         /* a (valid) Content-Length field was present, even one of 0 or
				  * one on a bodiless response (HEAD, 304) */
	bool has_te;             /* a Transfer-Encoding field was present */
	unsigned conn_flags;     /* HTTP_CONN_* from Connection */
	bool keep_alive;         /* the sender allows another message on this connection */
	bool expect_continue;    /* request carried "Expect: 100-continue" */
	int host_idx;            /* index of Host in hdr[], -1 when absent */

	/* on HTTP_ERROR / HTTP_TOO_LARGE */
	int error_status;  /* 400, 414, 431, 501 or 505 (502 for responses: the caller decides) */
	const char *error; /* static string, e.g. "Content-Length and Transfer-Encoding together" */

	/* private scanning state */
	uint32_t scanned;
	uint32_t lines;
};

/* Clears the parse state; keeps hdr and max_hdr. */
void http_msg_reset(struct http_msg *msg);

/*
 * Parses a request head from buf[0..len). lim may be NULL (no limits beyond max_hdr).
 * Returns HTTP_OK, HTTP_AGAIN, HTTP_ERROR or HTTP_TOO_LARGE as described above.
 */
enum http_parse http_parse_request(struct http_msg *msg, const char *buf, size_t len,
				   const struct http_limits *lim);

/*
 * Parses a response head from buf[0..len). req_method is the method of the request it answers
 * (a HEAD response, 1xx, 204 and 304 have no body). Same returns as http_parse_request.
 */
enum http_parse http_parse_response(struct http_msg *msg, const char *buf, size_t len,
				    enum http_method req_method, const struct http_limits *lim);

/* Finds the first header named NAME (case-insensitive); returns its index or -1. */
int http_find_header(const struct http_msg *msg, const char *buf, const char *name, size_t name_len);

/* Case-insensitive comparison of a span with NAME. */
bool http_span_ieq(const char *buf, struct http_span s, const char *name, size_t name_len);

/*
 * Chunked transfer coding framer: tells where a chunked body ends without copying it.
 * Accepts chunk-size in hex (at most 15 hex digits, no leading/trailing junk), chunk
 * extensions ";name[=value]" (token or quoted-string), CRLF after each chunk's data, and
 * trailer fields (same rules as header fields) after the last chunk.
 */
struct http_chunked {
	uint8_t state;
	uint8_t digits;
	uint64_t remaining; /* data bytes left in the current chunk */
	uint64_t data_bytes; /* chunk data seen so far: the decoded body's size */
	uint32_t trailer_bytes;
	uint32_t line_bytes;
	const char *error;  /* static string on HTTP_ERROR */
};

void http_chunked_reset(struct http_chunked *c);

/*
 * Feeds buf[0..len) (the bytes after those fed before). Returns
 *   HTTP_OK      the body ended; *used = bytes of buf that belong to it (the rest is the next
 *                message)
 *   HTTP_AGAIN   all of buf belongs to the body and more is needed (*used = len)
 *   HTTP_ERROR   bad framing (c->error says why)
 *   HTTP_TOO_LARGE  a chunk-size or trailer section line over 4096 bytes
 * On HTTP_ERROR and HTTP_TOO_LARGE *used is unspecified: the body cannot be forwarded anyway.
 */
enum http_parse http_chunked_feed(struct http_chunked *c, const char *buf, size_t len, size_t *used);

/*
 * Case-insensitive comparison of A[0..n) with the literal LIT[0..n) of lower-case letters,
 * digits and '-', where A is a field name or value the parser has vetted. OR-ing 0x20 lowers
 * a letter and leaves digits and '-' alone; the only other bytes it maps onto a literal's are
 * control characters, which no vetted name or value holds (HT becomes ')'). So whole words
 * are compared at once, the last one overlapping the one before.
 */
static inline bool http_ieq_lit(const char *a, const char *lit, size_t n)
{
	const uint64_t case8 = 0x2020202020202020ull;
	const uint32_t case4 = 0x20202020u;
	uint64_t x, y;
	uint32_t u, v;

	if (n >= 8) {
		for (size_t i = 0; i + 8 < n; i += 8) {
			memcpy(&x, a + i, 8);
			memcpy(&y, lit + i, 8);
			if ((x | case8) != y)
				return false;
		}
		memcpy(&x, a + n - 8, 8);
		memcpy(&y, lit + n - 8, 8);
		return (x | case8) == y;
	}
	if (n >= 4) {
		memcpy(&u, a, 4);
		memcpy(&v, lit, 4);
		if ((u | case4) != v)
			return false;
		memcpy(&u, a + n - 4, 4);
		memcpy(&v, lit + n - 4, 4);
		return (u | case4) == v;
	}
	for (size_t i = 0; i < n; i++)
		if (((uint8_t)a[i] | 0x20) != (uint8_t)lit[i])
			return false;
	return true;
}

#endif
