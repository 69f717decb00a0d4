/*
 * fwd.c - the forwarded heads (see include/fwd.h for the rules).
 *
 * Each field of the parsed head is classified once by its name; the Connection fields' tokens
 * are collected first, since they decide which of the other fields are hop-by-hop. The output
 * is bounded before anything is written: the peer's head plus what the proxy adds, so the
 * writers never check room field by field.
 */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "fwd.h"
#include "put.h"

/* At most this many Connection tokens are honoured; further ones remove nothing. */
#define FWD_CONN_TOKENS 16
/* Room for the request or status line's fixed parts and the fields the proxy writes itself,
 * beyond the variable strings counted one by one. */
#define FWD_FIXED 256

/* What forwarding needs to know of a header field, from its name alone. */
enum fwd_kind {
	K_PLAIN,
	K_HOP,        /* hop-by-hop: Keep-Alive, TE, Trailer, Upgrade, Proxy-* */
	K_CONNECTION, /* Connection itself (hop-by-hop, and it names more) */
	K_FRAMING,    /* Content-Length, Transfer-Encoding: the proxy writes its own */
	K_HOST,       /* routing: never removed by Connection */
	K_ABGATE,     /* X-Abgate-*: ours to set */
	K_EXPECT,
	K_XFF,
	K_REQUEST_ID,
};

static enum fwd_kind classify(const char *n, uint32_t len)
{
	switch (n[0] | 0x20) {
	case 'c':
		if (len == 10 && http_ieq_lit(n, "connection", 10))
			return K_CONNECTION;
		return len == 14 && http_ieq_lit(n, "content-length", 14) ? K_FRAMING : K_PLAIN;
	case 'e':
		return len == 6 && http_ieq_lit(n, "expect", 6) ? K_EXPECT : K_PLAIN;
	case 'h':
		return len == 4 && http_ieq_lit(n, "host", 4) ? K_HOST : K_PLAIN;
	case 'k':
		return len == 10 && http_ieq_lit(n, "keep-alive", 10) ? K_HOP : K_PLAIN;
	case 'p':
		return len > 6 && http_ieq_lit(n, "proxy-", 6) ? K_HOP : K_PLAIN;
	case 't':
		if ((len == 2 && http_ieq_lit(n, "te", 2)) || (len == 7 && http_ieq_lit(n, "trailer", 7)))
			return K_HOP;
		return len == 17 && http_ieq_lit(n, "transfer-encoding", 17) ? K_FRAMING : K_PLAIN;
	case 'u':
		return len == 7 && http_ieq_lit(n, "upgrade", 7) ? K_HOP : K_PLAIN;
	case 'x':
		if (len > 9 && http_ieq_lit(n, "x-abgate-", 9))
			return K_ABGATE;
		if (len == 15 && http_ieq_lit(n, "x-forwarded-for", 15))
			return K_XFF;
		return len == 12 && http_ieq_lit(n, "x-request-id", 12) ? K_REQUEST_ID : K_PLAIN;
	default:
		return K_PLAIN;
	}
}

/* The kinds of a head's first FWD_KINDS fields are kept from the first pass; any further ones
 * are classified again where they are used. */
#define FWD_KINDS 128

struct kinds {
	uint8_t k[FWD_KINDS];
	unsigned ntok;                    /* Connection tokens in tok */
	struct http_span tok[FWD_CONN_TOKENS];
};

static enum fwd_kind kind_of(const struct kinds *ks, const struct http_msg *m, const char *buf,
			     uint32_t i)
{
	if (i < FWD_KINDS)
		return (enum fwd_kind)ks->k[i];
	return classify(buf + m->hdr[i].name.off, m->hdr[i].name.len);
}

/* Classifies m's fields and collects the tokens of its Connection fields (at most
 * FWD_CONN_TOKENS, separated by commas and optional whitespace). */
static void classify_all(struct kinds *ks, const struct http_msg *m, const char *buf)
{
	bool conn = false;

	ks->ntok = 0;
	for (uint32_t i = 0; i < m->nhdr; i++) {
		enum fwd_kind k = classify(buf + m->hdr[i].name.off, m->hdr[i].name.len);
		if (i < FWD_KINDS)
			ks->k[i] = (uint8_t)k;
		conn |= k == K_CONNECTION;
	}
	for (uint32_t i = 0; conn && i < m->nhdr && ks->ntok < FWD_CONN_TOKENS; i++) {
		if (kind_of(ks, m, buf, i) != K_CONNECTION)
			continue;
		const char *p = buf + m->hdr[i].value.off, *end = p + m->hdr[i].value.len;
		while (p < end && ks->ntok < FWD_CONN_TOKENS) {
			while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
				p++;
			const char *t = p;
			while (p < end && *p != ',' && *p != ' ' && *p != '\t')
				p++;
			if (p > t) {
				ks->tok[ks->ntok].off = (uint32_t)(t - buf);
				ks->tok[ks->ntok].len = (uint32_t)(p - t);
				ks->ntok++;
			}
		}
	}
}

/* Whether a Connection token names field i, which is then hop-by-hop for this message. */
static bool named_by_connection(const struct kinds *ks, const struct http_msg *m,
				const char *buf, uint32_t i)
{
	struct http_span name = m->hdr[i].name;

	for (unsigned k = 0; k < ks->ntok; k++)
		if (ks->tok[k].len == name.len &&
		    strncasecmp(buf + ks->tok[k].off, buf + name.off, name.len) == 0)
			return true;
	return false;
}

static char *put_field(char *o, const struct http_msg *m, const char *buf, uint32_t i)
{
	o = put(o, buf + m->hdr[i].name.off, m->hdr[i].name.len);
	o = PUTS(o, ": ");
	o = put(o, buf + m->hdr[i].value.off, m->hdr[i].value.len);
	return PUTS(o, "\r\n");
}

static char *put_length(char *o, uint64_t n)
{
	o = PUTS(o, "Content-Length: ");
	o = put_u64(o, n);
	return PUTS(o, "\r\n");
}

char *fwd_put_tags(char *o, const struct fwd_tags *t)
{
	if (t->exp == NULL)
		return o;
	o = PUTS(o, "X-Abgate-Experiment: ");
	o = put(o, t->exp, t->exp_len);
	o = PUTS(o, "\r\nX-Abgate-Variant: ");
	o = put(o, t->variant, t->variant_len);
	return PUTS(o, "\r\n");
}

static char *put_rid(char *o, const struct fwd_tags *t)
{
	o = PUTS(o, "X-Request-Id: ");
	o = put(o, t->rid, t->rid_len);
	return PUTS(o, "\r\n");
}

static size_t tags_len(const struct fwd_tags *t)
{
	return t->exp_len + t->variant_len + t->rid_len + 64;
}

size_t fwd_request_head(char *out, size_t cap, const struct fwd_request *r)
{
	const struct http_msg *m = r->m;
	const char *buf = r->buf;
	struct kinds ks;
	bool xff = false;

	if ((size_t)m->head_len + FWD_FIXED + r->ip_len + tags_len(&r->tags) > cap)
		return 0;
	classify_all(&ks, m, buf);
	char *o = out;
	o = put(o, buf + m->method_s.off, m->method_s.len);
	*o++ = ' ';
	o = put(o, buf + m->target.off, m->target.len);
	o = m->minor == 0 ? PUTS(o, " HTTP/1.0\r\n") : PUTS(o, " HTTP/1.1\r\n");
	for (uint32_t i = 0; i < m->nhdr; i++) {
		switch (kind_of(&ks, m, buf, i)) {
		case K_HOP:
		case K_CONNECTION:
		case K_FRAMING:
		case K_ABGATE:
		case K_EXPECT:
			continue;
		case K_XFF:
			xff = true;
			continue;
		case K_HOST:
		case K_REQUEST_ID:
			break;
		case K_PLAIN:
			if (ks.ntok > 0 && named_by_connection(&ks, m, buf, i))
				continue;
			break;
		}
		o = put_field(o, m, buf, i);
	}
	if (m->body == HTTP_BODY_CHUNKED)
		o = PUTS(o, "Transfer-Encoding: chunked\r\n");
	else if (m->body == HTTP_BODY_LENGTH || m->has_length)
		o = put_length(o, m->body == HTTP_BODY_LENGTH ? m->content_length : 0);
	o = PUTS(o, "X-Forwarded-For: ");
	if (xff) {
		/* several X-Forwarded-For fields fold into one list, ours last */
		for (uint32_t i = 0; i < m->nhdr; i++) {
			if (kind_of(&ks, m, buf, i) != K_XFF)
				continue;
			o = put(o, buf + m->hdr[i].value.off, m->hdr[i].value.len);
			o = PUTS(o, ", ");
		}
	}
	o = put(o, r->ip, r->ip_len);
	o = PUTS(o, "\r\n");
	if (r->add_rid)
		o = put_rid(o, &r->tags);
	o = fwd_put_tags(o, &r->tags);
	o = PUTS(o, "\r\n");
	return (size_t)(o - out);
}

size_t fwd_response_head(char *out, size_t cap, const struct fwd_response *r)
{
	const struct http_msg *m = r->m;
	const char *buf = r->buf;
	struct kinds ks;
	bool have_rid = false;

	if ((size_t)m->head_len + FWD_FIXED + tags_len(&r->tags) + r->cookie_name_len +
		    r->cookie_value_len >
	    cap)
		return 0;
	classify_all(&ks, m, buf);
	char *o = out;
	o = PUTS(o, "HTTP/1.1 ");
	o = put_u64(o, (uint64_t)m->status);
	*o++ = ' ';
	o = put(o, buf + m->reason.off, m->reason.len);
	o = PUTS(o, "\r\n");
	for (uint32_t i = 0; i < m->nhdr; i++) {
		switch (kind_of(&ks, m, buf, i)) {
		case K_HOP:
		case K_CONNECTION:
		case K_ABGATE:
			continue;
		case K_FRAMING:
			/* a body read until close keeps the codings it was sent with */
			if (m->body == HTTP_BODY_EOF && m->has_te)
				break;
			continue;
		case K_REQUEST_ID:
			have_rid = true;
			break;
		case K_HOST:
		case K_EXPECT:
		case K_XFF:
		case K_PLAIN:
			if (ks.ntok > 0 && named_by_connection(&ks, m, buf, i))
				continue;
			break;
		}
		o = put_field(o, m, buf, i);
	}
	if (m->body == HTTP_BODY_CHUNKED)
		o = PUTS(o, "Transfer-Encoding: chunked\r\n");
	else if (m->body == HTTP_BODY_LENGTH)
		o = put_length(o, m->content_length);
	else if (m->body == HTTP_BODY_NONE && m->has_length && m->status != 204)
		o = put_length(o, m->content_length); /* 0, or what a HEAD or 304 announces */
	if (!have_rid)
		o = put_rid(o, &r->tags);
	o = fwd_put_tags(o, &r->tags);
	if (r->cookie_name != NULL) {
		o = PUTS(o, "Set-Cookie: ");
		o = put(o, r->cookie_name, r->cookie_name_len);
		*o++ = '=';
		o = put(o, r->cookie_value, r->cookie_value_len);
		o = PUTS(o, "; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax\r\n");
	}
	if (r->close)
		o = PUTS(o, "Connection: close\r\n");
	else if (r->client_minor == 0)
		o = PUTS(o, "Connection: keep-alive\r\n");
	o = PUTS(o, "\r\n");
	return (size_t)(o - out);
}
