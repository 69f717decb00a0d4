/*
 * http.c - the strict, incremental HTTP/1.1 head parser and chunked-body framer (contract in
 * include/http.h). Every request and every response of the data path goes through here, so it
 * scans each byte once, with table lookups, and never allocates.
 *
 * Resuming without rescanning: a head that arrives in pieces keeps its progress in struct
 * http_msg:
 *   msg->scanned  bytes already validated; the next call starts there
 *   msg->lines    offset where the line under scan begins (0 while on the start line)
 * A partial line keeps its progress in the fields it fills anyway: the request line in
 * method_s and target (target.off stays 0 until the method ends, target.len 0 until the target
 * ends; neither can be 0 once set), a header line in hdr[nhdr] (value.off stays 0 until the
 * colon). The status line has fixed positions up to the reason, so the offset alone tells
 * where it stands. A CR is accepted only as the end of a line, so a CR just before `scanned`
 * means "waiting for the LF". msg->head_len stays 0 until the head is complete.
 *
 * Syntax and limits are checked byte by byte, so a bad byte fails the call that delivers it.
 * Framing and semantics (Content-Length, Transfer-Encoding, Host, Connection, Expect) need the
 * whole head and are derived once, in one pass over hdr[], when the empty line arrives.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "http.h"

/* A chunk-size line (extensions included) or a trailer section longer than this is refused. */
#define CHUNKED_MAX_LINE 4096
/* 15 hex digits keep the size below 2^60, far from overflow, and far above any real body. */
#define CHUNKED_MAX_DIGITS 15

enum {
	CL_TOKEN = 0x1,	 /* tchar: method, field name, coding, chunk-ext name */
	CL_VALUE = 0x2,	 /* field-value and reason-phrase octet: HT, SP, VCHAR, obs-text */
	CL_TARGET = 0x4, /* request-target octet: VCHAR except '#' (a fragment is never sent) */
	CL_QDTEXT = 0x8, /* quoted-string octet that needs no backslash */
};

/* clang-format off */
#define T CL_TOKEN
#define V CL_VALUE
#define U CL_TARGET
#define Q CL_QDTEXT
static const uint8_t char_class[256] = {
	/* 00 */ 0, 0, 0, 0, 0, 0, 0, 0,
	/* 08 */ 0, V | Q, 0, 0, 0, 0, 0, 0,
	/* 10 */ 0, 0, 0, 0, 0, 0, 0, 0,
	/* 18 */ 0, 0, 0, 0, 0, 0, 0, 0,
	/* 20  SP ! " # $ % & ' */
	V | Q, T | V | U | Q, V | U, T | V | Q, T | V | U | Q, T | V | U | Q, T | V | U | Q,
	T | V | U | Q,
	/* 28  ( ) * + , - . / */
	V | U | Q, V | U | Q, T | V | U | Q, T | V | U | Q, V | U | Q, T | V | U | Q, T | V | U | Q,
	V | U | Q,
	/* 30  0 1 2 3 4 5 6 7 */
	T | V | U | Q, T | V | U | Q, T | V | U | Q, T | V | U | Q, T | V | U | Q, T | V | U | Q,
	T | V | U | Q, T | V | U | Q,
	/* 38  8 9 : ; < = > ? */
	T | V | U | Q, T | V | U | Q, V | U | Q, V | U | Q, V | U | Q, V | U | Q, V | U | Q,
	V | U | Q,
	/* 40  @ A B C D E F G */
	V | U | Q, T | V | U | Q, T | V | U | Q, T | V | U | Q, T | V | U | Q, T | V | U | Q,
	T | V | U | Q, T | V | U | Q,
	/* 48  H I J K L M N O */
	T | V | U | Q, T | V | U | Q, T | V | U | Q, T | V | U | Q, T | V | U | Q, T | V | U | Q,
	T | V | U | Q, T | V | U | Q,
	/* 50  P Q R S T U V W */
	T | V | U | Q, T | V | U | Q, T | V | U | Q, T | V | U | Q, T | V | U | Q, T | V | U | Q,
	T | V | U | Q, T | V | U | Q,
	/* 58  X Y Z [ \ ] ^ _ */
	T | V | U | Q, T | V | U | Q, T | V | U | Q, V | U | Q, V | U, V | U | Q, T | V | U | Q,
	T | V | U | Q,
	/* 60  ` a b c d e f g */
	T | V | U | Q, T | V | U | Q, T | V | U | Q, T | V | U | Q, T | V | U | Q, T | V | U | Q,
	T | V | U | Q, T | V | U | Q,
	/* 68  h i j k l m n o */
	T | V | U | Q, T | V | U | Q, T | V | U | Q, T | V | U | Q, T | V | U | Q, T | V | U | Q,
	T | V | U | Q, T | V | U | Q,
	/* 70  p q r s t u v w */
	T | V | U | Q, T | V | U | Q, T | V | U | Q, T | V | U | Q, T | V | U | Q, T | V | U | Q,
	T | V | U | Q, T | V | U | Q,
	/* 78  x y z { | } ~ DEL */
	T | V | U | Q, T | V | U | Q, T | V | U | Q, V | U | Q, T | V | U | Q, V | U | Q,
	T | V | U | Q, 0,
	/* obs-text: allowed in values, reasons and quoted strings, never in tokens or targets */
	[0x80 ... 0xff] = V | Q,
};
#undef T
#undef V
#undef U
#undef Q
/* clang-format on */

static inline bool is_class(uint8_t c, unsigned cls)
{
	return (char_class[c] & cls) != 0;
}

static inline uint8_t lower(uint8_t c)
{
	return (unsigned)(c - 'A') < 26u ? (uint8_t)(c | 0x20) : c;
}

static bool span_is(const uint8_t *b, struct http_span s, const char *lit, size_t n)
{
	return s.len == n && http_ieq_lit((const char *)b + s.off, lit, n);
}

#define SPAN_IS(b, s, lit) span_is((b), (s), (lit), sizeof(lit) - 1)

static inline bool is_ws(uint8_t c)
{
	return c == ' ' || c == '\t';
}

static inline int hexval(uint8_t c)
{
	if ((unsigned)(c - '0') < 10u)
		return c - '0';
	c |= 0x20;
	if ((unsigned)(c - 'a') < 6u)
		return c - 'a' + 10;
	return -1;
}

/*
 * Returns the first offset in B[p..end) that is not a field-value octet, or END. Long values
 * (cookies, user agents, tokens) dominate a head, so many bytes are vetted at a time: with
 * SSE2 (every x86-64), sixteen bytes in a few instructions; elsewhere eight in a word, where a
 * word with no byte below 0x20 and none equal to 0x7f holds only value octets. HT is legal
 * but below 0x20, so the first suspect byte is looked at alone.
 */
static size_t scan_value(const uint8_t *b, size_t p, size_t end)
{
#ifdef __SSE2__
	const __m128i sp = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7f);

	while (end - p >= 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)(b + p));
		/* x >= 0x20 (unsigned) exactly when max(x, 0x20) == x */
		unsigned ok = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(x, sp), x));
		unsigned bad = ~ok | (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, del));

		bad &= 0xffffu;

		if (bad == 0) {
			p += 16;
			continue;
		}
		p += (unsigned)__builtin_ctz(bad);
		if (b[p] != '\t')
			return p;
		p++;
	}
#else
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;

	while (end - p >= 8) {
		uint64_t w, del;

		memcpy(&w, b + p, 8);
		del = w ^ (ones * 0x7f);
		if ((((w - ones * 0x20) & ~w) | ((del - ones) & ~del)) & highs) {
			for (size_t stop = p + 8; p < stop; p++)
				if (!is_class(b[p], CL_VALUE))
					return p;
			continue;
		}
		p += 8;
	}
#endif
	while (p < end && is_class(b[p], CL_VALUE))
		p++;
	return p;
}

/*
 * Returns the first offset in B[p..end) that is not a token character (tchar), or END. Field
 * names are letters, digits and '-' nearly always: with SSE2 those are recognised sixteen at a
 * time, and any other byte is left to the table.
 */
static size_t scan_token(const uint8_t *b, size_t p, size_t end)
{
#ifdef __SSE2__
	const __m128i case_bit = _mm_set1_epi8(0x20), a = _mm_set1_epi8('a');
	const __m128i zero = _mm_set1_epi8('0');
	const __m128i max_letter = _mm_set1_epi8(25), max_digit = _mm_set1_epi8(9);
	const __m128i dash = _mm_set1_epi8('-');

	while (end - p >= 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)(b + p));
		/* (x | 0x20) - 'a' <= 25 and x - '0' <= 9, unsigned: t <= k exactly when
		 * min(t, k) == t */
		__m128i l = _mm_sub_epi8(_mm_or_si128(x, case_bit), a);
		__m128i d = _mm_sub_epi8(x, zero);
		__m128i good = _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(l, max_letter), l),
					    _mm_cmpeq_epi8(_mm_min_epu8(d, max_digit), d));
		unsigned other;

		good = _mm_or_si128(good, _mm_cmpeq_epi8(x, dash));
		other = ~(unsigned)_mm_movemask_epi8(good) & 0xffffu;
		if (other == 0) {
			p += 16;
			continue;
		}
		p += (unsigned)__builtin_ctz(other);
		if (!is_class(b[p], CL_TOKEN))
			return p;
		p++;
	}
#endif
	while (p < end && is_class(b[p], CL_TOKEN))
		p++;
	return p;
}

/* Names what is wrong with byte C where the grammar wanted something else. */
static const char *bad_byte(uint8_t c, const char *otherwise)
{
	if (c == '\n')
		return "bare LF";
	if (c == '\r')
		return "bare CR";
	if (c < 0x20 || c == 0x7f)
		return "control character";
	return otherwise;
}

static enum http_parse sticky(const struct http_msg *msg)
{
	return msg->error_status == 414 || msg->error_status == 431 ? HTTP_TOO_LARGE : HTTP_ERROR;
}

/* Records why MSG is refused; returns the result the parse functions hand back. */
static enum http_parse fail(struct http_msg *msg, int status, const char *why)
{
	msg->error_status = status;
	msg->error = why;
	return sticky(msg);
}

void http_msg_reset(struct http_msg *msg)
{
	struct http_header *hdr = msg->hdr;
	uint32_t max_hdr = msg->max_hdr;

	memset(msg, 0, sizeof(*msg));
	msg->hdr = hdr;
	msg->max_hdr = max_hdr;
	msg->host_idx = -1;
}

/* The eight bytes of X with their ASCII capitals lowered and every other byte unchanged. */
static inline uint64_t lower8(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
	uint64_t low7 = x & ~high;
	/* per byte, no carry can cross: bit 7 of low7 + (0x80 - K) is set exactly when
	 * low7 >= K */
	uint64_t ge_a = low7 + ones * (0x80 - 'A'), gt_z = low7 + ones * (0x80 - 'Z' - 1);
	uint64_t upper = ge_a & ~gt_z & ~x & high;

	return x | (upper >> 2);
}

bool http_span_ieq(const char *buf, struct http_span s, const char *name, size_t name_len)
{
	const uint8_t *a = (const uint8_t *)buf + s.off, *n = (const uint8_t *)name;
	uint64_t x, y;

	if (s.len != name_len)
		return false;
	if (name_len < 8) {
		for (size_t i = 0; i < name_len; i++)
			if (lower(a[i]) != lower(n[i]))
				return false;
		return true;
	}
	for (size_t i = 0; i + 8 < name_len; i += 8) {
		memcpy(&x, a + i, 8);
		memcpy(&y, n + i, 8);
		if (lower8(x) != lower8(y))
			return false;
	}
	memcpy(&x, a + name_len - 8, 8);
	memcpy(&y, n + name_len - 8, 8);
	return lower8(x) == lower8(y);
}

int http_find_header(const struct http_msg *msg, const char *buf, const char *name, size_t name_len)
{
	for (uint32_t i = 0; i < msg->nhdr; i++)
		if (http_span_ieq(buf, msg->hdr[i].name, name, name_len))
			return (int)i;
	return -1;
}

static enum http_method method_of(const uint8_t *m, size_t len)
{
	switch (len) {
	case 3:
		if (memcmp(m, "GET", 3) == 0)
			return HTTP_M_GET;
		if (memcmp(m, "PUT", 3) == 0)
			return HTTP_M_PUT;
		break;
	case 4:
		if (memcmp(m, "POST", 4) == 0)
			return HTTP_M_POST;
		if (memcmp(m, "HEAD", 4) == 0)
			return HTTP_M_HEAD;
		break;
	case 5:
		if (memcmp(m, "PATCH", 5) == 0)
			return HTTP_M_PATCH;
		if (memcmp(m, "TRACE", 5) == 0)
			return HTTP_M_TRACE;
		break;
	case 6:
		if (memcmp(m, "DELETE", 6) == 0)
			return HTTP_M_DELETE;
		break;
	case 7:
		if (memcmp(m, "OPTIONS", 7) == 0)
			return HTTP_M_OPTIONS;
		if (memcmp(m, "CONNECT", 7) == 0)
			return HTTP_M_CONNECT;
		break;
	}
	return HTTP_M_OTHER;
}

/*
 * Checks byte I (0..7) of the HTTP-version that starts at V. The grammar is "HTTP/" DIGIT "."
 * DIGIT; a well-formed version other than 1.0 or 1.1 is 505, anything else 400. On the last
 * byte sets msg->minor. Returns false after recording the failure.
 */
static bool version_byte(struct http_msg *msg, const uint8_t *v, size_t i)
{
	static const uint8_t name[5] = {'H', 'T', 'T', 'P', '/'};
	uint8_t c = v[i];
	bool ok;

	if (i < 5)
		ok = c == name[i];
	else if (i == 6)
		ok = c == '.';
	else
		ok = (unsigned)(c - '0') < 10u;
	if (!ok) {
		fail(msg, 400, bad_byte(c, "malformed HTTP version"));
		return false;
	}
	if (i == 7) {
		if (v[5] != '1' || c > '1') {
			fail(msg, 505, "HTTP version not supported");
			return false;
		}
		msg->minor = c - '0';
	}
	return true;
}

/* authority-form "host:port" (CONNECT only): a non-empty host and a numeric port. */
static bool authority_form(const uint8_t *t, uint32_t len)
{
	uint32_t colon = len;

	while (colon > 0 && t[colon - 1] != ':')
		colon--;
	if (colon < 2 || colon == len || len - colon > 5)
		return false;
	for (uint32_t i = colon; i < len; i++)
		if ((unsigned)(t[i] - '0') >= 10u)
			return false;
	for (uint32_t i = 0; i < colon - 1; i++)
		if (t[i] == '/' || t[i] == '?' || t[i] == '@')
			return false;
	return true;
}

/*
 * Classifies the complete target and splits it into path and query. Origin-form "/p?q",
 * "*" for OPTIONS, absolute-form "scheme://authority/p?q" (path may be empty) and
 * authority-form for CONNECT, which is the only form CONNECT may use. Returns false when the
 * target fits none of them.
 */
static bool split_target(struct http_msg *msg, const uint8_t *b)
{
	uint32_t off = msg->target.off, len = msg->target.len, end = off + len, path;
	const uint8_t *t = b + off, *q;

	if (msg->method == HTTP_M_CONNECT) {
		if (!authority_form(t, len))
			return false;
		msg->path = (struct http_span){off, 0};
		msg->query = (struct http_span){end, 0};
		return true;
	}
	if (t[0] == '/') {
		path = off;
	} else if (t[0] == '*' && len == 1) {
		if (msg->method != HTTP_M_OPTIONS)
			return false;
		msg->path = msg->target;
		msg->query = (struct http_span){end, 0};
		return true;
	} else {
		uint32_t i = 1, auth;

		if ((unsigned)(lower(t[0]) - 'a') >= 26u)
			return false;
		while (i < len &&
		       ((unsigned)(lower(t[i]) - 'a') < 26u || (unsigned)(t[i] - '0') < 10u ||
			t[i] == '+' || t[i] == '-' || t[i] == '.'))
			i++;
		if (len - i < 3 || memcmp(t + i, "://", 3) != 0)
			return false;
		auth = i += 3;
		while (i < len && t[i] != '/' && t[i] != '?')
			i++;
		if (i == auth)
			return false;
		path = off + i;
	}
	q = memchr(b + path, '?', end - path);
	if (q != NULL) {
		uint32_t qoff = (uint32_t)(q - b);

		msg->path = (struct http_span){path, qoff - path};
		msg->query = (struct http_span){qoff + 1, end - qoff - 1};
	} else {
		msg->path = (struct http_span){path, end - path};
		msg->query = (struct http_span){end, 0};
	}
	return true;
}

/*
 * Scans the request line from *pp to END. Returns HTTP_AGAIN when END came first or the line
 * is complete (msg->lines then points past its LF), else the failure. *pp moves past what was
 * scanned.
 */
static enum http_parse scan_request_line(struct http_msg *msg, const uint8_t *b, size_t *pp,
					 size_t end)
{
	size_t p = *pp, vstart;
	enum http_parse r = HTTP_AGAIN;

	if (msg->target.off == 0) {
		p = scan_token(b, p, end);
		if (p == end)
			goto out;
		if (b[p] != ' ' || p == 0) {
			r = fail(msg, 400, bad_byte(b[p], "malformed method"));
			goto out;
		}
		msg->method_s = (struct http_span){0, (uint32_t)p};
		msg->method = method_of(b, p);
		msg->target.off = (uint32_t)++p;
	}
	if (msg->target.len == 0) {
		while (p < end && is_class(b[p], CL_TARGET))
			p++;
		if (p == end)
			goto out;
		if (b[p] != ' ' || p == msg->target.off) {
			r = fail(msg, 400, bad_byte(b[p], "malformed request-target"));
			goto out;
		}
		msg->target.len = (uint32_t)(p - msg->target.off);
		p++;
		if (!split_target(msg, b)) {
			r = fail(msg, 400, "request-target form not allowed");
			goto out;
		}
	}
	vstart = msg->target.off + msg->target.len + 1;
	/* the usual "HTTP/1.1" CRLF at once; anything else byte by byte, for the precise error */
	if (p == vstart && end - p >= 10 && memcmp(b + p, "HTTP/1.", 7) == 0 &&
	    (b[p + 7] == '1' || b[p + 7] == '0') && b[p + 8] == '\r' && b[p + 9] == '\n') {
		msg->minor = b[p + 7] - '0';
		p += 10;
		msg->lines = (uint32_t)p;
		goto out;
	}
	for (; p < end; p++) {
		size_t i = p - vstart;

		if (i < 8) {
			if (!version_byte(msg, b + vstart, i)) {
				r = sticky(msg);
				goto out;
			}
		} else if (i == 8) {
			if (b[p] != '\r') {
				r = fail(msg, 400, bad_byte(b[p], "junk after HTTP version"));
				goto out;
			}
		} else {
			if (b[p] != '\n') {
				r = fail(msg, 400, "bare CR");
				goto out;
			}
			msg->lines = (uint32_t)++p;
			break;
		}
	}
out:
	*pp = p;
	return r;
}

/*
 * Scans the status line "HTTP/1.x DDD reason" (the SP and reason may be absent) from *pp to
 * END; same returns as scan_request_line.
 */
static enum http_parse scan_status_line(struct http_msg *msg, const uint8_t *b, size_t *pp,
					size_t end)
{
	size_t p = *pp;
	enum http_parse r = HTTP_AGAIN;

	/* the usual "HTTP/1.1 200 " at once; anything else byte by byte, for the precise error */
	if (p == 0 && end >= 13 && memcmp(b, "HTTP/1.", 7) == 0 && (b[7] == '1' || b[7] == '0') &&
	    b[8] == ' ' && b[9] >= '1' && b[9] <= '5' && (unsigned)(b[10] - '0') < 10u &&
	    (unsigned)(b[11] - '0') < 10u && (b[12] == ' ' || b[12] == '\r')) {
		msg->minor = b[7] - '0';
		msg->status = (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
		p = 13;
	}
	for (; p < end && p < 13; p++) {
		uint8_t c = b[p];

		if (p < 8) {
			if (!version_byte(msg, b, p)) {
				r = sticky(msg);
				goto out;
			}
		} else if (p == 8) {
			if (c != ' ') {
				r = fail(msg, 400, bad_byte(c, "malformed status line"));
				goto out;
			}
		} else if (p < 12) {
			/* Codes outside 100..599 have no defined meaning to relay. */
			if ((unsigned)(c - '0') >= 10u || (p == 9 && (c < '1' || c > '5'))) {
				r = fail(msg, 400, bad_byte(c, "malformed status code"));
				goto out;
			}
			if (p == 11)
				msg->status = (b[9] - '0') * 100 + (b[10] - '0') * 10 + (c - '0');
		} else if (c != ' ' && c != '\r') {
			r = fail(msg, 400, bad_byte(c, "malformed status line"));
			goto out;
		}
	}
	if (p < 13)
		goto out;
	for (;;) {
		if (b[p - 1] == '\r') {
			if (p == end)
				goto out;
			if (b[p] != '\n') {
				r = fail(msg, 400, "bare CR");
				goto out;
			}
			if (b[12] == ' ')
				msg->reason = (struct http_span){13, (uint32_t)(p - 1 - 13)};
			else
				msg->reason = (struct http_span){12, 0};
			msg->lines = (uint32_t)++p;
			goto out;
		}
		p = scan_value(b, p, end);
		if (p == end)
			goto out;
		if (b[p] != '\r') {
			r = fail(msg, 400, bad_byte(b[p], "malformed reason phrase"));
			goto out;
		}
		p++;
	}
out:
	*pp = p;
	return r;
}

/* Sets H's value to B[value.off..cr) without leading and trailing SP/HT. */
static void trim_value(struct http_header *h, const uint8_t *b, size_t cr)
{
	size_t s = h->value.off, e = cr;

	while (s < e && is_ws(b[s]))
		s++;
	while (e > s && is_ws(b[e - 1]))
		e--;
	h->value = (struct http_span){(uint32_t)s, (uint32_t)(e - s)};
}

/*
 * Scans header lines from *pp to END, storing at most MAXH fields. Returns HTTP_AGAIN when END
 * came first or the empty line ended the head (msg->head_len is then set), else the failure.
 * The labels inside the loop are where a call resumes a line that an earlier call left
 * unfinished.
 */
static enum http_parse scan_fields(struct http_msg *msg, const uint8_t *b, size_t *pp, size_t end,
				   uint32_t maxh)
{
	size_t p = *pp, ls = msg->lines;
	struct http_header *h;
	enum http_parse r = HTTP_AGAIN;
	uint8_t c;

	if (p > ls) {
		if (b[ls] == '\r')
			goto end_lf;
		h = &msg->hdr[msg->nhdr];
		if (h->value.off == 0)
			goto name;
		if (b[p - 1] == '\r')
			goto line_lf;
		goto value;
	}
	for (;;) {
		if (p == end)
			goto out;
		c = b[p];
		if (c == '\r') {
			p++;
			goto end_lf;
		}
		if (!is_class(c, CL_TOKEN)) {
			/* A line that starts with whitespace is obs-fold (or hides a field from
			 * parsers that join it to the start line); both are refused. */
			r = fail(msg, 400,
				 is_ws(c)   ? "obs-fold or whitespace at line start"
				 : c == ':' ? "empty field name"
					    : bad_byte(c, "malformed field name"));
			goto out;
		}
		if (msg->nhdr >= maxh) {
			r = fail(msg, 431, "too many header fields");
			goto out;
		}
		h = &msg->hdr[msg->nhdr];
		h->name.off = (uint32_t)p++;
		h->value.off = 0;
	name:
		p = scan_token(b, p, end);
		if (p == end)
			goto out;
		if (b[p] != ':') {
			c = b[p];
			r = fail(msg, 400,
				 is_ws(c)    ? "whitespace before colon"
				 : c == '\r' ? "field without colon"
					     : bad_byte(c, "malformed field name"));
			goto out;
		}
		h->name.len = (uint32_t)(p - h->name.off);
		h->value.off = (uint32_t)++p;
	value:
		p = scan_value(b, p, end);
		if (p == end)
			goto out;
		if (b[p] != '\r') {
			r = fail(msg, 400, bad_byte(b[p], "malformed field value"));
			goto out;
		}
		p++;
	line_lf:
		if (p == end)
			goto out;
		if (b[p] != '\n') {
			r = fail(msg, 400, "bare CR");
			goto out;
		}
		p++;
		trim_value(h, b, p - 2);
		msg->nhdr++;
		msg->lines = (uint32_t)p;
	}
end_lf:
	if (p == end)
		goto out;
	if (b[p] != '\n') {
		r = fail(msg, 400, "bare CR");
		goto out;
	}
	msg->head_len = (uint32_t)++p;
out:
	*pp = p;
	return r;
}

/*
 * Takes the next element of the comma-separated list in B[*p..end) into *EL, without the OWS
 * around it; empty elements are returned too (callers decide). Returns false when the list is
 * used up. Start with *p at the value's offset.
 */
static bool list_next(const uint8_t *b, uint32_t *p, uint32_t end, struct http_span *el)
{
	const uint8_t *comma;
	uint32_t s = *p, e;

	if (s > end)
		return false;
	comma = memchr(b + s, ',', end - s);
	e = comma != NULL ? (uint32_t)(comma - b) : end;
	*p = e + 1;
	while (s < e && is_ws(b[s]))
		s++;
	while (e > s && is_ws(b[e - 1]))
		e--;
	*el = (struct http_span){s, e - s};
	return true;
}

/*
 * Folds one Content-Length field into *CL. "5, 5" and repeated fields of equal value are one
 * length; anything else than digits, an overflow, an empty element or a second different
 * value makes the framing ambiguous. Returns false then.
 */
static bool content_length(const uint8_t *b, struct http_span v, bool *have, uint64_t *cl)
{
	uint32_t p = v.off, end = v.off + v.len;
	struct http_span el;

	/* the usual single number of at most 18 digits, which cannot overflow */
	if (v.len > 0 && v.len <= 18) {
		uint64_t n = 0;
		uint32_t i = p;

		for (; i < end && (unsigned)(b[i] - '0') < 10u; i++)
			n = n * 10 + (b[i] - '0');
		if (i == end) {
			if (*have && n != *cl)
				return false;
			*cl = n;
			*have = true;
			return true;
		}
	}
	while (list_next(b, &p, end, &el)) {
		uint64_t n = 0;

		if (el.len == 0)
			return false;
		for (uint32_t i = el.off; i < el.off + el.len; i++) {
			unsigned d = (unsigned)(b[i] - '0');

			if (d >= 10u || n > (UINT64_MAX - d) / 10)
				return false;
			n = n * 10 + d;
		}
		if (*have && n != *cl)
			return false;
		*cl = n;
		*have = true;
	}
	return true;
}

static unsigned connection_flags(const uint8_t *b, struct http_span v)
{
	uint32_t p = v.off, end = v.off + v.len;
	struct http_span el;
	unsigned flags = 0;

	/* a single token, the usual case, is the whole (trimmed) value */
	if (SPAN_IS(b, v, "keep-alive"))
		return HTTP_CONN_KEEP_ALIVE;
	if (SPAN_IS(b, v, "close"))
		return HTTP_CONN_CLOSE;
	while (list_next(b, &p, end, &el)) {
		if (SPAN_IS(b, el, "close"))
			flags |= HTTP_CONN_CLOSE;
		else if (SPAN_IS(b, el, "keep-alive"))
			flags |= HTTP_CONN_KEEP_ALIVE;
		else if (SPAN_IS(b, el, "upgrade"))
			flags |= HTTP_CONN_UPGRADE;
	}
	return flags;
}

/* Whether a Host value is uri-host [":" port] (RFC 9112 3.2, RFC 3986 3.2.2): the characters
 * of a reg-name or an IP literal and a port, nothing else (no whitespace, no "@", no list). */
static bool host_valid(const uint8_t *b, struct http_span v)
{
	for (uint32_t i = 0; i < v.len; i++) {
		uint8_t ch = b[v.off + i];
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
			continue;
		if (strchr("-._~%!$&'()*+,;=:[]", ch) == NULL || ch == '\0')
			return false;
	}
	return true;
}

/* What the Transfer-Encoding fields of one head add up to. */
struct te_state {
	bool seen;	   /* at least one field */
	bool chunked;	   /* chunked appears */
	bool last_chunked; /* chunked is the final coding */
	bool other;	   /* a coding other than chunked appears */
};

/* Folds one Transfer-Encoding field into TE; returns false when it cannot be valid. */
static bool transfer_encoding(const uint8_t *b, struct http_span v, struct te_state *te)
{
	uint32_t p = v.off, end = v.off + v.len;
	struct http_span el;
	bool any = false;

	while (list_next(b, &p, end, &el)) {
		if (el.len == 0)
			continue;
		any = true;
		if (SPAN_IS(b, el, "chunked")) {
			/* Chunked twice means two framings of one body: no safe reading exists. */
			if (te->chunked)
				return false;
			te->chunked = te->last_chunked = true;
		} else {
			te->other = true;
			te->last_chunked = false;
		}
	}
	te->seen = true;
	return any;
}

/* A response without a body whatever its headers say (RFC 9112 6.3, items 1 and 2). */
static bool bodiless_response(int status, enum http_method req_method)
{
	return req_method == HTTP_M_HEAD || status < 200 || status == 204 || status == 304 ||
	       (req_method == HTTP_M_CONNECT && status < 300);
}

/*
 * Derives framing and semantics from the complete head, and refuses the combinations that
 * would let two parties disagree on where the message ends.
 */
static enum http_parse finish_head(struct http_msg *msg, const uint8_t *b, bool response,
				   enum http_method req_method)
{
	struct te_state te = {0};
	bool have_cl = false;
	uint64_t cl = 0;
	unsigned hosts = 0;

	for (uint32_t i = 0; i < msg->nhdr; i++) {
		const struct http_header *h = &msg->hdr[i];

		switch (h->name.len) {
		case 4:
			if (!SPAN_IS(b, h->name, "host"))
				break;
			if (!response && !host_valid(b, h->value))
				return fail(msg, 400, "invalid Host");
			if (hosts++ == 0)
				msg->host_idx = (int)i;
			break;
		case 6:
			if (SPAN_IS(b, h->name, "expect") && SPAN_IS(b, h->value, "100-continue"))
				msg->expect_continue = true;
			break;
		case 10:
			if (SPAN_IS(b, h->name, "connection"))
				msg->conn_flags |= connection_flags(b, h->value);
			break;
		case 14:
			if (SPAN_IS(b, h->name, "content-length") &&
			    !content_length(b, h->value, &have_cl, &cl))
				return fail(msg, 400, "malformed or conflicting Content-Length");
			break;
		case 17:
			if (SPAN_IS(b, h->name, "transfer-encoding") &&
			    !transfer_encoding(b, h->value, &te))
				return fail(msg, 400, "malformed Transfer-Encoding");
			break;
		}
	}

	if (te.seen) {
		if (have_cl)
			return fail(msg, 400, "Content-Length and Transfer-Encoding together");
		if (msg->minor == 0)
			return fail(msg, 400, "Transfer-Encoding in HTTP/1.0");
		/* A response whose last coding is not chunked is read until close, and its
		 * codings are relayed untouched, so they need not be understood. */
		if (!te.last_chunked && !response)
			return fail(msg, 400, "Transfer-Encoding does not end in chunked");
		if (te.last_chunked && te.other)
			return fail(msg, 501, "transfer coding not implemented");
	}
	if (!response) {
		if (hosts > 1)
			return fail(msg, 400, "several Host fields");
		if (hosts == 0 && msg->minor == 1)
			return fail(msg, 400, "HTTP/1.1 request without Host");
		/* RFC 9110 10.1.1: an HTTP/1.0 client cannot handle 100 (Continue). */
		if (msg->minor == 0)
			msg->expect_continue = false;
	} else {
		msg->expect_continue = false;
	}

	if (have_cl)
		msg->content_length = cl;
	msg->has_length = have_cl;
	msg->has_te = te.seen;
	if (response && bodiless_response(msg->status, req_method))
		msg->body = HTTP_BODY_NONE;
	else if (te.seen)
		msg->body = te.last_chunked ? HTTP_BODY_CHUNKED : HTTP_BODY_EOF;
	else if (have_cl)
		msg->body = cl != 0 ? HTTP_BODY_LENGTH : HTTP_BODY_NONE;
	else
		msg->body = response ? HTTP_BODY_EOF : HTTP_BODY_NONE;

	if (msg->minor == 1)
		msg->keep_alive = !(msg->conn_flags & HTTP_CONN_CLOSE);
	else
		msg->keep_alive = (msg->conn_flags & (HTTP_CONN_CLOSE | HTTP_CONN_KEEP_ALIVE)) ==
				  HTTP_CONN_KEEP_ALIVE;
	/* The close is what ends such a body. */
	if (msg->body == HTTP_BODY_EOF)
		msg->keep_alive = false;
	return HTTP_OK;
}

static enum http_parse parse_head(struct http_msg *msg, const char *buf, size_t len,
				  const struct http_limits *lim, bool response,
				  enum http_method req_method)
{
	const uint8_t *b = (const uint8_t *)buf;
	size_t p = msg->scanned, end, cap = UINT32_MAX;
	uint32_t maxh = msg->hdr != NULL ? msg->max_hdr : 0;
	enum http_parse r;

	if (msg->error_status != 0)
		return sticky(msg);
	if (msg->head_len != 0)
		return HTTP_OK;
	/* The buffer may only grow between calls; a shorter one brings nothing new. */
	if (len <= p)
		return HTTP_AGAIN;
	if (lim != NULL) {
		if (lim->max_header_bytes != 0)
			cap = lim->max_header_bytes;
		if (lim->max_headers != 0 && lim->max_headers < maxh)
			maxh = lim->max_headers;
	}
	/* Scanning stops at the cap, so an oversized head costs no more than the cap. */
	end = len < cap ? len : cap;

	if (msg->lines == 0) {
		size_t lend = end, maxline = 0;

		if (!response && lim != NULL)
			maxline = lim->max_request_line;
		/* Stop just past the limit, unless the CR sits exactly there: then its LF may
		 * follow. */
		if (maxline != 0 && lend > maxline + 1)
			lend = b[maxline] == '\r' ? maxline + 2 : maxline + 1;
		r = response ? scan_status_line(msg, b, &p, lend)
			     : scan_request_line(msg, b, &p, lend);
		if (r != HTTP_AGAIN)
			return r;
		if (msg->lines == 0) {
			msg->scanned = (uint32_t)p;
			if (maxline != 0 && p > maxline && b[maxline] != '\r')
				return fail(msg, 414, "request line too long");
			if (p >= cap)
				return fail(msg, 431, "header section too large");
			return HTTP_AGAIN;
		}
	}

	r = scan_fields(msg, b, &p, end, maxh);
	if (r != HTTP_AGAIN)
		return r;
	msg->scanned = (uint32_t)p;
	if (msg->head_len != 0)
		return finish_head(msg, b, response, req_method);
	if (p >= cap)
		return fail(msg, 431, "header section too large");
	return HTTP_AGAIN;
}

enum http_parse http_parse_request(struct http_msg *msg, const char *buf, size_t len,
				   const struct http_limits *lim)
{
	return parse_head(msg, buf, len, lim, false, HTTP_M_OTHER);
}

enum http_parse http_parse_response(struct http_msg *msg, const char *buf, size_t len,
				    enum http_method req_method, const struct http_limits *lim)
{
	return parse_head(msg, buf, len, lim, true, req_method);
}

/*
 * Chunked framer states. The size-line states come first and the trailer states last, so
 * that the byte accounting for the 4096-byte limits is two comparisons.
 */
enum {
	CH_SIZE_START = 0,  /* first hex digit of chunk-size */
	CH_SIZE,	    /* more digits, ';' or CR */
	CH_EXT_NAME_START,  /* first octet of a chunk-ext name, just after ';' */
	CH_EXT_NAME,	    /* name octets, '=', ';' or CR */
	CH_EXT_VALUE_START, /* token or opening quote, just after '=' */
	CH_EXT_TOKEN,	    /* token value octets, ';' or CR */
	CH_EXT_QUOTED,	    /* inside a quoted-string */
	CH_EXT_QUOTED_ESC,  /* after a backslash in a quoted-string */
	CH_EXT_QUOTED_END,  /* after the closing quote: ';' or CR */
	CH_SIZE_LF,	    /* LF ending the size line */
	CH_DATA,	    /* c->remaining data octets to skip */
	CH_DATA_CR,	    /* CR after the data */
	CH_DATA_LF,	    /* LF after the data */
	CH_TRAILER_START,   /* start of a trailer line: a field name or the final CR */
	CH_TRAILER_NAME,    /* field name octets or ':' */
	CH_TRAILER_VALUE,   /* field value octets or CR */
	CH_TRAILER_LF,	    /* LF ending a trailer field */
	CH_END_LF,	    /* LF ending the body */
	CH_DONE,
	CH_ERROR,
	CH_TOO_LARGE,
};

void http_chunked_reset(struct http_chunked *c)
{
	memset(c, 0, sizeof(*c));
	c->state = CH_SIZE_START;
}

static enum http_parse chunked_fail(struct http_chunked *c, enum http_parse r, const char *why,
				    size_t p, size_t *used)
{
	c->state = r == HTTP_TOO_LARGE ? CH_TOO_LARGE : CH_ERROR;
	c->error = why;
	*used = p;
	return r;
}

/* The state after a chunk-size line (or a chunk-ext) ends with byte CH, or -1 if it cannot. */
static int after_ext(uint8_t ch)
{
	if (ch == ';')
		return CH_EXT_NAME_START;
	if (ch == '\r')
		return CH_SIZE_LF;
	return -1;
}

enum http_parse http_chunked_feed(struct http_chunked *c, const char *buf, size_t len, size_t *used)
{
	const uint8_t *b = (const uint8_t *)buf;
	size_t p = 0;

	switch (c->state) {
	case CH_DONE:
		*used = 0;
		return HTTP_OK;
	case CH_ERROR:
		*used = 0;
		return HTTP_ERROR;
	case CH_TOO_LARGE:
		*used = 0;
		return HTTP_TOO_LARGE;
	}

	while (p < len) {
		uint8_t ch;
		int next = -1, d;

		if (c->state == CH_DATA) {
			size_t n = len - p;

			if (n > c->remaining)
				n = (size_t)c->remaining;
			p += n;
			c->remaining -= n;
			c->data_bytes += n;
			if (c->remaining == 0)
				c->state = CH_DATA_CR;
			continue;
		}
		if (c->state == CH_TRAILER_VALUE) {
			size_t q = scan_value(b, p, len);

			if (q - p > CHUNKED_MAX_LINE - c->trailer_bytes)
				return chunked_fail(c, HTTP_TOO_LARGE, "trailer section too large",
						    p, used);
			c->trailer_bytes += (uint32_t)(q - p);
			p = q;
			if (p == len)
				break;
		}

		ch = b[p];
		if (c->state >= CH_TRAILER_START) {
			if (++c->trailer_bytes > CHUNKED_MAX_LINE)
				return chunked_fail(c, HTTP_TOO_LARGE, "trailer section too large",
						    p, used);
		} else if (c->state < CH_SIZE_LF && ch != '\r') {
			if (++c->line_bytes > CHUNKED_MAX_LINE)
				return chunked_fail(c, HTTP_TOO_LARGE, "chunk-size line too long",
						    p, used);
		}

		switch (c->state) {
		case CH_SIZE_START:
			if ((d = hexval(ch)) < 0)
				return chunked_fail(c, HTTP_ERROR, "chunk size is not hex", p,
						    used);
			c->remaining = (uint64_t)d;
			c->digits = 1;
			next = CH_SIZE;
			break;
		case CH_SIZE:
			if ((d = hexval(ch)) >= 0) {
				if (++c->digits > CHUNKED_MAX_DIGITS)
					return chunked_fail(c, HTTP_ERROR, "chunk size too large",
							    p, used);
				c->remaining = c->remaining << 4 | (uint64_t)d;
				next = CH_SIZE;
			} else {
				next = after_ext(ch);
			}
			break;
		case CH_EXT_NAME_START:
			if (is_class(ch, CL_TOKEN))
				next = CH_EXT_NAME;
			break;
		case CH_EXT_NAME:
			if (is_class(ch, CL_TOKEN))
				next = CH_EXT_NAME;
			else if (ch == '=')
				next = CH_EXT_VALUE_START;
			else
				next = after_ext(ch);
			break;
		case CH_EXT_VALUE_START:
			if (ch == '"')
				next = CH_EXT_QUOTED;
			else if (is_class(ch, CL_TOKEN))
				next = CH_EXT_TOKEN;
			break;
		case CH_EXT_TOKEN:
			next = is_class(ch, CL_TOKEN) ? CH_EXT_TOKEN : after_ext(ch);
			break;
		case CH_EXT_QUOTED:
			if (ch == '"')
				next = CH_EXT_QUOTED_END;
			else if (ch == '\\')
				next = CH_EXT_QUOTED_ESC;
			else if (is_class(ch, CL_QDTEXT))
				next = CH_EXT_QUOTED;
			break;
		case CH_EXT_QUOTED_ESC:
			if (is_class(ch, CL_VALUE))
				next = CH_EXT_QUOTED;
			break;
		case CH_EXT_QUOTED_END:
			next = after_ext(ch);
			break;
		case CH_SIZE_LF:
			if (ch != '\n')
				return chunked_fail(c, HTTP_ERROR, "bare CR in chunk-size line", p,
						    used);
			c->line_bytes = 0;
			next = c->remaining != 0 ? CH_DATA : CH_TRAILER_START;
			break;
		case CH_DATA_CR:
			if (ch != '\r')
				return chunked_fail(c, HTTP_ERROR, "no CRLF after chunk data", p,
						    used);
			next = CH_DATA_LF;
			break;
		case CH_DATA_LF:
			if (ch != '\n')
				return chunked_fail(c, HTTP_ERROR, "no CRLF after chunk data", p,
						    used);
			next = CH_SIZE_START;
			break;
		case CH_TRAILER_START:
			if (ch == '\r')
				next = CH_END_LF;
			else if (is_class(ch, CL_TOKEN))
				next = CH_TRAILER_NAME;
			else
				return chunked_fail(c, HTTP_ERROR,
						    is_ws(ch)
							? "obs-fold in trailer"
							: bad_byte(ch, "malformed trailer field"),
						    p, used);
			break;
		case CH_TRAILER_NAME:
			if (is_class(ch, CL_TOKEN))
				next = CH_TRAILER_NAME;
			else if (ch == ':')
				next = CH_TRAILER_VALUE;
			else
				return chunked_fail(c, HTTP_ERROR,
						    is_ws(ch)
							? "whitespace before colon in trailer"
							: bad_byte(ch, "malformed trailer field"),
						    p, used);
			break;
		case CH_TRAILER_VALUE:
			/* scan_value stopped here: only the CR may end the value. */
			if (ch != '\r')
				return chunked_fail(c, HTTP_ERROR,
						    bad_byte(ch, "malformed trailer field"), p,
						    used);
			next = CH_TRAILER_LF;
			break;
		case CH_TRAILER_LF:
			if (ch != '\n')
				return chunked_fail(c, HTTP_ERROR, "bare CR in trailer", p, used);
			next = CH_TRAILER_START;
			break;
		case CH_END_LF:
			if (ch != '\n')
				return chunked_fail(c, HTTP_ERROR, "bare CR after trailer", p,
						    used);
			c->state = CH_DONE;
			*used = p + 1;
			return HTTP_OK;
		}
		if (next < 0)
			return chunked_fail(c, HTTP_ERROR,
					    bad_byte(ch, "malformed chunk-size line"), p, used);
		c->state = (uint8_t)next;
		p++;
	}
	*used = len;
	return HTTP_AGAIN;
}
