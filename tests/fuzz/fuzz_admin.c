/*
 * fuzz_admin.c - libFuzzer driver for the admin listener's request path up to the body: the
 * request head parsed by http.h, then judged by admin_judge() (include/admin.h).
 *
 * Input: one control byte, then a request head (and whatever follows it).
 *   [0] bit 0: a token is configured (the token is "fuzz-token"); else none is needed.
 *
 * For every head that parses, the verdict must keep the admin API's promises:
 *   - with a token, a request goes on only with "Authorization: Bearer fuzz-token" (the scheme
 *     in any case), and every refusal for a missing or wrong token is a 401 with a challenge;
 *   - a request that goes on names a known endpoint, with its method, and only the query
 *     parameters it takes (format for a report, atomic and defer with 0, 1, false or
 *     true for outcomes); its body limit is the endpoint's (never above 4 MiB);
 *   - every refusal has a status in 400..499 and a printable reason.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "admin.h"
#include "fuzz_check.h"
#include "http.h"

#define MAXH 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char token[] = "fuzz-token";

/* What a correct token check says, written plainly. */
static bool token_ok(const char *auth, size_t len)
{
	return auth != NULL && len == 7 + sizeof(token) - 1 && strncasecmp(auth, "bearer ", 7) == 0 &&
	       memcmp(auth + 7, token, sizeof(token) - 1) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http_header hdr[MAXH];
	struct http_msg m = {.hdr = hdr, .max_hdr = MAXH};

	if (size < 1)
		return 0;
	bool with_token = data[0] & 1;
	const char *buf = (const char *)data + 1;
	http_msg_reset(&m);
	if (http_parse_request(&m, buf, size - 1, NULL) != HTTP_OK)
		return 0;

	struct admin_request r = {
		.method = m.method,
		.path = buf + m.path.off,
		.path_len = m.path.len,
		.query = buf + m.query.off,
		.query_len = m.query.len,
	};
	int a = http_find_header(&m, buf, "authorization", 13);
	if (a >= 0) {
		r.auth = buf + m.hdr[a].value.off;
		r.auth_len = m.hdr[a].value.len;
	}
	struct admin_verdict v;
	admin_judge(&r, with_token ? token : NULL, &v);

	if (with_token && !token_ok(r.auth, r.auth_len))
		CHECK(v.status == 401 && v.challenge);
	if (v.status == 401)
		CHECK(with_token && !token_ok(r.auth, r.auth_len));
	if (v.status != 0) {
		CHECK(v.status >= 400 && v.status < 500);
		CHECK(v.reason[0] != '\0');
		for (const char *p = v.reason; *p != '\0'; p++)
			CHECK(*p >= 0x20 && *p < 0x7f);
		return 0;
	}
	CHECK(v.endpoint != EP_NONE);
	CHECK(v.max_body <= ADMIN_OUTCOMES_MAX_BYTES);
	bool get = m.method == HTTP_M_GET || m.method == HTTP_M_HEAD;
	switch (v.endpoint) {
	case EP_OUTCOMES:
		CHECK(v.max_body == ADMIN_OUTCOMES_MAX_BYTES);
		/* fall through */
	case EP_RELOAD:
	case EP_COMMAND:
		CHECK(m.method == HTTP_M_POST);
		break;
	default:
		CHECK(get);
		CHECK(v.max_body == ADMIN_SMALL_BODY);
	}
	/* every parameter that went through is one the endpoint takes */
	const char *q = r.query, *end = r.query + r.query_len;
	while (q < end) {
		const char *amp = memchr(q, '&', (size_t)(end - q));
		if (amp == NULL)
			amp = end;
		const char *eq = memchr(q, '=', (size_t)(amp - q));
		size_t n = (size_t)((eq != NULL ? eq : amp) - q);
		CHECK(n == 0 || (v.endpoint == EP_REPORT && n == 6 && memcmp(q, "format", 6) == 0) ||
		      (v.endpoint == EP_OUTCOMES && n == 6 && memcmp(q, "atomic", 6) == 0) ||
		      (v.endpoint == EP_OUTCOMES && n == 5 && memcmp(q, "defer", 5) == 0));
		if (v.endpoint == EP_OUTCOMES && n > 0) { /* and its value is a boolean */
			size_t vl = eq != NULL ? (size_t)(amp - eq - 1) : 0;
			CHECK((vl == 1 && (eq[1] == '0' || eq[1] == '1')) ||
			      (vl == 4 && memcmp(eq + 1, "true", 4) == 0) ||
			      (vl == 5 && memcmp(eq + 1, "false", 5) == 0));
		}
		q = amp + 1;
	}
	return 0;
}
