/*
 * http_check.h - what the request and response fuzz drivers share: running the head parser
 * whole or in pieces, checking what it reports against its contract (include/http.h), and
 * comparing two runs field by field. Every helper aborts on a violation so that libFuzzer
 * records the input as a crash.
 *
 * Static functions only: each driver includes this once.
 */
#ifndef ABGATE_FUZZ_HTTP_CHECK_H
#define ABGATE_FUZZ_HTTP_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "http.h"

/* Pieces a message is cut into for the incremental runs (at most three). */
#define MAX_PIECES 3

/* Calls the parser under test: a request (method ignored) or a response to method. */
typedef enum http_parse (*parse_cb)(struct http_msg *msg, const char *buf, size_t len,
				    const struct http_limits *lim, enum http_method method);

/* The outcome of one run: the last result and the message it left. hdr is owned here. */
struct run {
	enum http_parse r;
	struct http_msg msg;
	struct http_header *hdr; /* NULL when the run had no header array */
};

static void run_free(struct run *run)
{
	free(run->hdr);
	run->hdr = NULL;
}

/* An array of exactly n entries (NULL for 0), so that a write past max_hdr is caught. */
static void run_init(struct run *run, uint32_t max_hdr)
{
	memset(run, 0, sizeof(*run));
	if (max_hdr != 0) {
		run->hdr = calloc(max_hdr, sizeof(*run->hdr));
		CHECK(run->hdr != NULL);
	}
	run->msg.hdr = run->hdr;
	run->msg.max_hdr = max_hdr;
	http_msg_reset(&run->msg);
}

/*
 * Parses data[0..n) arriving in pieces that end at cuts[0..ncuts) (ascending, each <= n; the
 * last call always sees all n bytes). Each call but the last gets its prefix in a buffer of
 * exactly that length, so a read past len is caught; the last gets data itself. Once a call
 * returns anything but HTTP_AGAIN, later calls must return the same (the head is done or the
 * error is sticky).
 */
static void run_pieces(struct run *run, parse_cb parse, const uint8_t *data, size_t n,
		       const size_t *cuts, size_t ncuts, const struct http_limits *lim,
		       uint32_t max_hdr, enum http_method method)
{
	bool done = false;
	enum http_parse first = HTTP_AGAIN;

	run_init(run, max_hdr);
	for (size_t i = 0; i <= ncuts; i++) {
		size_t len = i < ncuts ? cuts[i] : n;
		enum http_parse r;

		if (len == n) {
			r = parse(&run->msg, (const char *)data, n, lim, method);
		} else {
			char *copy = malloc(len != 0 ? len : 1);

			CHECK(copy != NULL);
			memcpy(copy, data, len);
			r = parse(&run->msg, copy, len, lim, method);
			free(copy);
		}
		if (done)
			CHECK(r == first);
		else if (r != HTTP_AGAIN)
			done = true, first = r;
		run->r = r;
	}
}

/* The whole message in one call. */
static void run_whole(struct run *run, parse_cb parse, const uint8_t *data, size_t n,
		      const struct http_limits *lim, uint32_t max_hdr, enum http_method method)
{
	run_pieces(run, parse, data, n, NULL, 0, lim, max_hdr, method);
}

static bool span_in(struct http_span s, uint32_t lo, uint32_t hi)
{
	return s.off >= lo && s.off <= hi && s.len <= hi - s.off;
}

/* The header-array bound a parse ran under: max_hdr, narrowed by lim->max_headers. */
static uint32_t effective_max_headers(const struct http_limits *lim, uint32_t max_hdr)
{
	if (lim != NULL && lim->max_headers != 0 && lim->max_headers < max_hdr)
		return lim->max_headers;
	return max_hdr;
}

/*
 * Re-derives the framing of a complete head from its fields, independently of the parser:
 * every Content-Length element is a decimal number equal to msg->content_length; a request
 * with Transfer-Encoding is chunked, and one without is framed by Content-Length alone.
 */
static void check_framing(const struct http_msg *m, const uint8_t *data, bool response)
{
	bool te = false, cl = false;

	for (uint32_t i = 0; i < m->nhdr; i++) {
		const struct http_header *h = &m->hdr[i];
		const uint8_t *v = data + h->value.off, *end = v + h->value.len;

		if (http_span_ieq((const char *)data, h->name, "Transfer-Encoding", 17))
			te = true;
		if (!http_span_ieq((const char *)data, h->name, "Content-Length", 14))
			continue;
		cl = true;
		while (v <= end) {
			const uint8_t *comma = memchr(v, ',', (size_t)(end - v));
			const uint8_t *e = comma != NULL ? comma : end;
			uint64_t n = 0;

			while (v < e && (*v == ' ' || *v == '\t'))
				v++;
			while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			CHECK(v < e);
			for (; v < e; v++) {
				CHECK(*v >= '0' && *v <= '9');
				CHECK(n <= (UINT64_MAX - (uint64_t)(*v - '0')) / 10);
				n = n * 10 + (uint64_t)(*v - '0');
			}
			CHECK(n == m->content_length);
			if (comma == NULL)
				break;
			v = comma + 1;
		}
	}
	CHECK(!(te && cl));
	if (response)
		return;
	if (te)
		CHECK(m->body == HTTP_BODY_CHUNKED);
	else if (cl)
		CHECK(m->body == (m->content_length != 0 ? HTTP_BODY_LENGTH : HTTP_BODY_NONE));
	else
		CHECK(m->body == HTTP_BODY_NONE);
}

/*
 * Checks what a run reports against the contract of include/http.h for data[0..n):
 * statuses that go with each result, a complete head that ends in an empty line within the
 * limits, spans inside the head, framing that fits the message kind.
 */
static void check_run(const struct run *run, const uint8_t *data, size_t n,
		      const struct http_limits *lim, bool response)
{
	const struct http_msg *m = &run->msg;
	uint32_t cap = lim != NULL && lim->max_header_bytes != 0 ? lim->max_header_bytes : 0;

	switch (run->r) {
	case HTTP_OK:
		break;
	case HTTP_AGAIN:
		CHECK(m->head_len == 0);
		/* Scanning stops at the cap, so a buffer that reaches it cannot still wait. */
		CHECK(cap == 0 || n < cap);
		CHECK(m->error_status == 0);
		return;
	case HTTP_ERROR:
		CHECK(m->error != NULL);
		CHECK(m->error_status == 400 || m->error_status == 501 || m->error_status == 505);
		return;
	case HTTP_TOO_LARGE:
		CHECK(m->error != NULL);
		CHECK(m->error_status == 431 || (!response && m->error_status == 414));
		return;
	default:
		CHECK(!"result out of range");
	}

	CHECK(m->error_status == 0);
	CHECK(m->head_len >= 4 && m->head_len <= n);
	CHECK(memcmp(data + m->head_len - 4, "\r\n\r\n", 4) == 0);
	CHECK(cap == 0 || m->head_len <= cap);
	CHECK(m->nhdr <= effective_max_headers(lim, m->max_hdr));
	CHECK(m->minor == 0 || m->minor == 1);
	for (uint32_t i = 0; i < m->nhdr; i++) {
		const struct http_header *h = &m->hdr[i];

		CHECK(h->name.len > 0 && span_in(h->name, 0, m->head_len));
		CHECK(span_in(h->value, 0, m->head_len));
		CHECK(data[h->name.off + h->name.len] == ':');
		CHECK(h->value.off > h->name.off + h->name.len);
		if (h->value.len > 0) {
			uint8_t a = data[h->value.off], z = data[h->value.off + h->value.len - 1];

			CHECK(a != ' ' && a != '\t' && z != ' ' && z != '\t');
		}
	}
	CHECK(m->host_idx >= -1 && m->host_idx < (int)m->nhdr);
	if (!response)
		CHECK(m->host_idx == http_find_header(m, (const char *)data, "HOST", 4));
	check_framing(m, data, response);
	if (m->body == HTTP_BODY_LENGTH)
		CHECK(m->content_length > 0);
	if (m->body == HTTP_BODY_EOF)
		CHECK(response && !m->keep_alive);
	CHECK(m->body == HTTP_BODY_NONE || m->body == HTTP_BODY_LENGTH ||
	      m->body == HTTP_BODY_CHUNKED || m->body == HTTP_BODY_EOF);
	if (m->body == HTTP_BODY_CHUNKED)
		CHECK(m->minor == 1);
	if (response) {
		CHECK(m->status >= 100 && m->status <= 599);
		CHECK(span_in(m->reason, 0, m->head_len));
		CHECK(!m->expect_continue);
	} else {
		CHECK(m->method_s.off == 0 && m->method_s.len > 0);
		CHECK(m->target.len > 0 && span_in(m->target, 0, m->head_len));
		CHECK(m->target.off == m->method_s.len + 1);
		CHECK(span_in(m->path, m->target.off, m->target.off + m->target.len));
		CHECK(span_in(m->query, m->target.off, m->target.off + m->target.len));
		if (m->minor == 1)
			CHECK(m->host_idx >= 0);
		if (m->minor == 0)
			CHECK(!m->expect_continue);
	}
}

static bool span_eq(struct http_span a, struct http_span b)
{
	return a.off == b.off && a.len == b.len;
}

/*
 * Two runs over the same bytes must agree: always on the result, head_len and the header count;
 * on a complete head on everything derived from it; on a failure on the status and the reason.
 */
static void check_same(const struct run *a, const struct run *b)
{
	const struct http_msg *x = &a->msg, *y = &b->msg;

	CHECK(a->r == b->r);
	CHECK(x->head_len == y->head_len);
	CHECK(x->nhdr == y->nhdr);
	CHECK(x->error_status == y->error_status);
	if (a->r == HTTP_ERROR || a->r == HTTP_TOO_LARGE) {
		CHECK(x->error != NULL && y->error != NULL);
		CHECK(strcmp(x->error, y->error) == 0);
		return;
	}
	if (a->r != HTTP_OK)
		return;
	CHECK(x->method == y->method && span_eq(x->method_s, y->method_s));
	CHECK(span_eq(x->target, y->target) && span_eq(x->path, y->path) &&
	      span_eq(x->query, y->query));
	CHECK(x->status == y->status && span_eq(x->reason, y->reason));
	CHECK(x->minor == y->minor);
	CHECK(x->body == y->body && x->content_length == y->content_length);
	CHECK(x->conn_flags == y->conn_flags && x->keep_alive == y->keep_alive);
	CHECK(x->expect_continue == y->expect_continue && x->host_idx == y->host_idx);
	for (uint32_t i = 0; i < x->nhdr; i++)
		CHECK(span_eq(x->hdr[i].name, y->hdr[i].name) &&
		      span_eq(x->hdr[i].value, y->hdr[i].value));
}

/*
 * Cut points for data of length n from four control bytes: two 16-bit offsets modulo n + 1,
 * sorted; a repeated point is dropped, so a message comes in two or three pieces (or one when
 * both points are n). Returns the number of cuts stored in cuts[0..2).
 */
static size_t make_cuts(const uint8_t *ctl, size_t n, size_t *cuts)
{
	size_t a = ((size_t)ctl[0] << 8 | ctl[1]) % (n + 1);
	size_t b = ((size_t)ctl[2] << 8 | ctl[3]) % (n + 1);
	size_t k = 0;

	if (a > b) {
		size_t t = a;

		a = b;
		b = t;
	}
	if (a < n)
		cuts[k++] = a;
	if (b != a && b < n)
		cuts[k++] = b;
	return k;
}

#endif
