/*
 * fuzz_request.c - libFuzzer driver for http_parse_request() (include/http.h).
 *
 * Input: an 8-byte control prefix, then the message bytes (a request head and whatever follows).
 *   [0..3]  where the incremental runs cut the message (see make_cuts in http_check.h)
 *   [4]     limits.max_header_bytes: 0 none, else 16 + the byte
 *   [5]     limits.max_request_line: 0 none, else 8 + the byte
 *   [6]     limits.max_headers: low 4 bits, 0 none
 *   [7]     entries in the header array: low 6 bits, 0 for no array at all
 *
 * The message is parsed without limits and with the limits above, each time whole and in
 * pieces. Whole and incremental runs must agree; each run must keep the contract; and the two
 * settings must agree where the limits do not bite:
 *   - a head complete under the limits is the same head without them;
 *   - a head complete without limits that fits them is complete under them too;
 *   - a syntax error under the limits is the same error without them.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http.h"
#include "http_check.h"

#define CTL_BYTES 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum http_parse parse_request(struct http_msg *msg, const char *buf, size_t len,
				     const struct http_limits *lim, enum http_method method)
{
	(void)method;
	return http_parse_request(msg, buf, len, lim);
}

/* Parses msg[0..n) whole and in pieces, checks both, and leaves the whole run in *out. */
static void parse_both(struct run *out, const uint8_t *msg, size_t n, const size_t *cuts,
		       size_t ncuts, const struct http_limits *lim, uint32_t max_hdr)
{
	struct run inc;

	run_whole(out, parse_request, msg, n, lim, max_hdr, HTTP_M_OTHER);
	check_run(out, msg, n, lim, false);
	run_pieces(&inc, parse_request, msg, n, cuts, ncuts, lim, max_hdr, HTTP_M_OTHER);
	check_same(out, &inc);
	run_free(&inc);
}

/* Length of the request line of a complete head: up to its CR (a head has no other bare CR). */
static size_t request_line_len(const uint8_t *msg, size_t head_len)
{
	const uint8_t *cr = memchr(msg, '\r', head_len);

	CHECK(cr != NULL);
	return (size_t)(cr - msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_limits lim;
	struct run free_run, lim_run;
	size_t cuts[MAX_PIECES - 1], ncuts, n;
	const uint8_t *msg;
	uint32_t max_hdr;

	if (size < CTL_BYTES)
		return 0;
	msg = data + CTL_BYTES;
	n = size - CTL_BYTES;
	ncuts = make_cuts(data, n, cuts);
	lim.max_header_bytes = data[4] != 0 ? 16u + data[4] : 0;
	lim.max_request_line = data[5] != 0 ? 8u + data[5] : 0;
	lim.max_headers = data[6] & 15u;
	max_hdr = data[7] & 63u;

	parse_both(&free_run, msg, n, cuts, ncuts, NULL, max_hdr);
	parse_both(&lim_run, msg, n, cuts, ncuts, &lim, max_hdr);

	if (lim_run.r == HTTP_OK) {
		CHECK(free_run.r == HTTP_OK);
		check_same(&free_run, &lim_run);
		CHECK(lim.max_request_line == 0 ||
		      request_line_len(msg, free_run.msg.head_len) <= lim.max_request_line);
	}
	if (free_run.r == HTTP_OK &&
	    (lim.max_header_bytes == 0 || free_run.msg.head_len <= lim.max_header_bytes) &&
	    (lim.max_headers == 0 || free_run.msg.nhdr <= lim.max_headers) &&
	    (lim.max_request_line == 0 ||
	     request_line_len(msg, free_run.msg.head_len) <= lim.max_request_line))
		CHECK(lim_run.r == HTTP_OK);
	if (lim_run.r == HTTP_ERROR) {
		CHECK(free_run.r == HTTP_ERROR);
		CHECK(free_run.msg.error_status == lim_run.msg.error_status);
		CHECK(strcmp(free_run.msg.error, lim_run.msg.error) == 0);
	}
	run_free(&free_run);
	run_free(&lim_run);
	return 0;
}
