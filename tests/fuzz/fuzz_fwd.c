/*
 * fuzz_fwd.c - libFuzzer driver for the forwarded heads (include/fwd.h).
 *
 * Input: one control byte, then a message head.
 *   [0] bit 0: 0 a request (fwd_request_head), 1 a response (fwd_response_head);
 *       bit 1: the response answers a HEAD request; bit 2: tag the heads with an experiment;
 *       bit 3: the client connection closes after the response; bit 4: the client is HTTP/1.0.
 *
 * When the head parses, its forwarded head must parse again, whole, with the framing the first
 * parse computed (the same body kind and length), carry exactly one framing field when it has
 * a body (none from the peer), Host on every HTTP/1.1 request, one X-Forwarded-For ending in
 * the client's address, and no X-Abgate-* field but the proxy's own.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "fuzz_check.h"
#include "fwd.h"
#include "http.h"

#define MAXH 128
#define OUT (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char ip[] = "192.0.2.7";

/* Counts the fields of m named NAME (lower case). */
static unsigned count(const struct http_msg *m, const char *buf, const char *name)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < m->nhdr; i++)
		n += http_span_ieq(buf, m->hdr[i].name, name, strlen(name));
	return n;
}

static void check_tags(const struct http_msg *m, const char *buf, bool tagged)
{
	unsigned abgate = 0;

	for (uint32_t i = 0; i < m->nhdr; i++)
		abgate += m->hdr[i].name.len > 9 &&
			  strncasecmp(buf + m->hdr[i].name.off, "x-abgate-", 9) == 0;
	CHECK(abgate == (tagged ? 2u : 0u));
	if (tagged) {
		int v = http_find_header(m, buf, "x-abgate-variant", 16);
		CHECK(v >= 0 && http_span_ieq(buf, m->hdr[v].value, "treatment", 9));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http_header hdr[MAXH], hdr2[MAXH + 8]; /* the proxy adds up to 5 fields */
	static char out[OUT];
	struct http_msg m = {.hdr = hdr, .max_hdr = MAXH}, m2 = {.hdr = hdr2, .max_hdr = MAXH + 8};

	if (size < 1)
		return 0;
	uint8_t ctl = data[0];
	const char *buf = (const char *)data + 1;
	size_t len = size - 1;
	bool response = ctl & 1, tagged = ctl & 4;
	enum http_method method = ctl & 2 ? HTTP_M_HEAD : HTTP_M_GET;
	struct fwd_tags tags = {.rid = "rid-1", .rid_len = 5};
	if (tagged) {
		tags.exp = "exp";
		tags.exp_len = 3;
		tags.variant = "treatment";
		tags.variant_len = 9;
	}

	http_msg_reset(&m);
	http_msg_reset(&m2);
	size_t n;
	if (!response) {
		if (http_parse_request(&m, buf, len, NULL) != HTTP_OK)
			return 0;
		struct fwd_request r = {.m = &m, .buf = buf, .ip = ip, .ip_len = sizeof(ip) - 1,
					.add_rid = ctl & 8, .tags = tags};
		n = fwd_request_head(out, OUT, &r);
		if (n == 0)
			return 0; /* too large for the room given: refused, never truncated */
		CHECK(http_parse_request(&m2, out, n, NULL) == HTTP_OK);
		CHECK(m2.minor == m.minor);
		CHECK(m2.method == m.method);
		CHECK(m.minor == 0 || count(&m2, out, "host") == 1);
		CHECK(count(&m2, out, "x-forwarded-for") == 1);
		int x = http_find_header(&m2, out, "x-forwarded-for", 15);
		struct http_span v = m2.hdr[x].value;
		CHECK(v.len >= sizeof(ip) - 1 &&
		      memcmp(out + v.off + v.len - (sizeof(ip) - 1), ip, sizeof(ip) - 1) == 0);
		CHECK(count(&m2, out, "expect") == 0);
	} else {
		if (http_parse_response(&m, buf, len, method, NULL) != HTTP_OK || m.status < 200)
			return 0;
		struct fwd_response r = {.m = &m, .buf = buf, .client_minor = ctl & 16 ? 0 : 1,
					 .close = ctl & 8, .tags = tags};
		n = fwd_response_head(out, OUT, &r);
		if (n == 0)
			return 0;
		CHECK(http_parse_response(&m2, out, n, method, NULL) == HTTP_OK);
		CHECK(m2.status == m.status);
		CHECK(count(&m2, out, "x-request-id") >= 1);
		CHECK(!r.close || !m2.keep_alive);
	}
	CHECK(m2.head_len == n);
	CHECK(m2.body == m.body);
	if (m.body == HTTP_BODY_LENGTH || m2.has_length)
		CHECK(m2.content_length == m.content_length);
	/* a length the peer announced without a body survives, except on a 204 (none allowed) */
	CHECK(m2.has_length == (m.body == HTTP_BODY_LENGTH || (m.has_length && m.status != 204)));
	unsigned cl = count(&m2, out, "content-length"), te = count(&m2, out, "transfer-encoding");
	switch (m.body) {
	case HTTP_BODY_LENGTH:
		CHECK(cl == 1 && te == 0);
		break;
	case HTTP_BODY_CHUNKED:
		CHECK(cl == 0 && te == 1);
		break;
	case HTTP_BODY_NONE:
		CHECK(te == 0 && cl <= 1);
		break;
	case HTTP_BODY_EOF:
		CHECK(cl == 0);
		break;
	}
	check_tags(&m2, out, tagged);
	return 0;
}
