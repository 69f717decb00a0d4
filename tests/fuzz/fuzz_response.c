/*
 * fuzz_response.c - libFuzzer driver for http_parse_response() (include/http.h).
 *
 * Input: an 8-byte control prefix, then the message bytes (a response head and what follows).
 *   [0..3]  where the incremental runs cut the message (see make_cuts in http_check.h)
 *   [4]     limits.max_header_bytes: 0 none, else 16 + the byte
 *   [5]     unused by responses (kept so request and response seeds share a layout)
 *   [6]     limits.max_headers: low 4 bits, 0 none
 *   [7]     entries in the header array: low 6 bits, 0 for no array at all
 *
 * The message is parsed as the answer to a GET, a HEAD and a CONNECT, without and with the
 * limits, each whole and in pieces. Whole and incremental runs must agree and keep the
 * contract. The request method only decides whether a body follows, so every method must
 * see the same result, head and headers; an answer to HEAD never has a body.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http.h"
#include "http_check.h"

#define CTL_BYTES 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum http_parse parse_response(struct http_msg *msg, const char *buf, size_t len,
				      const struct http_limits *lim, enum http_method method)
{
	return http_parse_response(msg, buf, len, method, lim);
}

static void parse_both(struct run *out, const uint8_t *msg, size_t n, const size_t *cuts,
		       size_t ncuts, const struct http_limits *lim, uint32_t max_hdr,
		       enum http_method method)
{
	struct run inc;

	run_whole(out, parse_response, msg, n, lim, max_hdr, method);
	check_run(out, msg, n, lim, true);
	run_pieces(&inc, parse_response, msg, n, cuts, ncuts, lim, max_hdr, method);
	check_same(out, &inc);
	run_free(&inc);
}

/* Runs a and b differ only in the method they answer: everything but the framing agrees. */
static void check_same_head(const struct run *a, const struct run *b)
{
	CHECK(a->r == b->r);
	CHECK(a->msg.head_len == b->msg.head_len);
	CHECK(a->msg.nhdr == b->msg.nhdr);
	CHECK(a->msg.error_status == b->msg.error_status);
	if (a->r == HTTP_OK) {
		CHECK(a->msg.status == b->msg.status && a->msg.minor == b->msg.minor);
		CHECK(a->msg.content_length == b->msg.content_length);
		CHECK(a->msg.conn_flags == b->msg.conn_flags);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum http_method methods[] = {HTTP_M_GET, HTTP_M_HEAD, HTTP_M_CONNECT};
	enum { NMETHODS = sizeof(methods) / sizeof(methods[0]) };
	struct http_limits lim;
	struct run free_run[NMETHODS], lim_run[NMETHODS];
	size_t cuts[MAX_PIECES - 1], ncuts, n;
	const uint8_t *msg;
	uint32_t max_hdr;

	if (size < CTL_BYTES)
		return 0;
	msg = data + CTL_BYTES;
	n = size - CTL_BYTES;
	ncuts = make_cuts(data, n, cuts);
	lim.max_header_bytes = data[4] != 0 ? 16u + data[4] : 0;
	lim.max_request_line = 0;
	lim.max_headers = data[6] & 15u;
	max_hdr = data[7] & 63u;

	for (size_t i = 0; i < NMETHODS; i++) {
		parse_both(&free_run[i], msg, n, cuts, ncuts, NULL, max_hdr, methods[i]);
		parse_both(&lim_run[i], msg, n, cuts, ncuts, &lim, max_hdr, methods[i]);
		if (i > 0) {
			check_same_head(&free_run[0], &free_run[i]);
			check_same_head(&lim_run[0], &lim_run[i]);
		}
		if (methods[i] == HTTP_M_HEAD && free_run[i].r == HTTP_OK)
			CHECK(free_run[i].msg.body == HTTP_BODY_NONE);
		if (lim_run[i].r == HTTP_OK) {
			CHECK(free_run[i].r == HTTP_OK);
			check_same(&free_run[i], &lim_run[i]);
		}
		if (free_run[i].r == HTTP_OK &&
		    (lim.max_header_bytes == 0 ||
		     free_run[i].msg.head_len <= lim.max_header_bytes) &&
		    (lim.max_headers == 0 || free_run[i].msg.nhdr <= lim.max_headers))
			CHECK(lim_run[i].r == HTTP_OK);
		if (lim_run[i].r == HTTP_ERROR) {
			CHECK(free_run[i].r == HTTP_ERROR);
			CHECK(strcmp(free_run[i].msg.error, lim_run[i].msg.error) == 0);
		}
	}
	for (size_t i = 0; i < NMETHODS; i++) {
		run_free(&free_run[i]);
		run_free(&lim_run[i]);
	}
	return 0;
}
