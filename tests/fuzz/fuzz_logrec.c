/*
 * fuzz_logrec.c - libFuzzer driver for the outcome-log line reader, logrec_parse() and
 * logrec_parse_ts() (include/logrec.h).
 *
 * Input: one line, as is (no newline expected, though any byte may appear). The line is parsed
 * with a scratch buffer of exactly its length, the least the contract allows, so a write past
 * it is caught. A record must hold together: every string inside the line or the scratch
 * buffer, required fields present for its type, numbers finite and in range. The same line
 * with a CR appended (a log written with CRLF) must give the same answer and the same record.
 * The line is also read as a timestamp on its own, which must be accepted exactly when it is
 * well-formed (see timestamp_ok).
 */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "logrec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A line and the scratch buffer it was parsed with, both owned. */
struct parsed {
	enum logrec_parse rc;
	struct logrec rec;
	char *line, *scratch;
	size_t len;
};

static bool within(const struct logrec_str *s, const char *buf, size_t len)
{
	return s->s >= buf && s->s <= buf + len && s->len <= (size_t)(buf + len - s->s);
}

/* A string of the record: empty, or inside the line or the scratch buffer. */
static void check_str(const struct parsed *p, const struct logrec_str *s)
{
	if (s->len == 0)
		return;
	CHECK(s->s != NULL);
	CHECK(within(s, p->line, p->len) || within(s, p->scratch, p->len));
}

static void check_record(const struct parsed *p)
{
	const struct logrec *r = &p->rec;

	if (p->rc != LOGREC_OK) {
		CHECK(p->rc == LOGREC_MALFORMED || p->rc == LOGREC_INVALID);
		return;
	}
	CHECK(r->type >= LOGREC_OTHER && r->type <= LOGREC_SHADOW);
	CHECK(isfinite(r->ts));
	CHECK(r->exp.len > 0);
	check_str(p, &r->exp);
	check_str(p, &r->variant);
	check_str(p, &r->unit);
	check_str(p, &r->metric);
	CHECK(!r->has_unit || r->unit.len > 0);
	switch (r->type) {
	case LOGREC_REQUEST:
		CHECK(r->variant.len > 0);
		CHECK(r->status >= 0 && r->status <= 999);
		CHECK(isfinite(r->latency_ms));
		break;
	case LOGREC_OUTCOME:
		CHECK(r->variant.len > 0 && r->metric.len > 0);
		CHECK(isfinite(r->value));
		break;
	case LOGREC_CONFIG:
		CHECK(r->nweights <= LOGREC_MAX_WEIGHTS);
		for (size_t i = 0; i < r->nweights; i++) {
			CHECK(r->wname[i].len > 0);
			check_str(p, &r->wname[i]);
			CHECK(isfinite(r->weight[i]) && r->weight[i] >= 0);
		}
		break;
	case LOGREC_SHADOW:
		check_str(p, &r->primary_variant);
		check_str(p, &r->error);
		CHECK(!r->has_status || (r->status >= 0 && r->status <= 999));
		CHECK(!r->has_primary_status || (r->primary_status >= 0 && r->primary_status <= 999));
		CHECK(!r->has_latency || isfinite(r->latency_ms));
		CHECK(!r->has_primary_latency || isfinite(r->primary_latency_ms));
		CHECK(!r->has_field_diff || isfinite(r->field_diff));
		CHECK(r->same_status >= -1 && r->same_status <= 1);
		CHECK(r->same_body >= -1 && r->same_body <= 1);
		CHECK(r->field_agree >= -1 && r->field_agree <= 1);
		break;
	default:
		break;
	}
}

/* Parses data[0..size) followed by the byte extra (none when extra < 0). */
static void parse(struct parsed *p, const uint8_t *data, size_t size, int extra)
{
	p->len = size + (extra >= 0);
	p->line = malloc(p->len != 0 ? p->len : 1);
	p->scratch = malloc(p->len != 0 ? p->len : 1);
	CHECK(p->line != NULL && p->scratch != NULL);
	memcpy(p->line, data, size);
	if (extra >= 0)
		p->line[size] = (char)extra;
	memset(&p->rec, 0, sizeof(p->rec));
	p->rc = logrec_parse(p->line, p->len, &p->rec, p->scratch, p->len);
	check_record(p);
}

static void parsed_free(struct parsed *p)
{
	free(p->line);
	free(p->scratch);
}

static bool str_eq(const struct logrec_str *a, const struct logrec_str *b)
{
	return a->len == b->len && (a->len == 0 || memcmp(a->s, b->s, a->len) == 0);
}

/* Two parses of the same line (but for a trailing CR) give the same record. */
static void check_same(const struct parsed *a, const struct parsed *b)
{
	const struct logrec *x = &a->rec, *y = &b->rec;

	CHECK(a->rc == b->rc);
	if (a->rc != LOGREC_OK)
		return;
	CHECK(x->type == y->type && x->ts == y->ts);
	CHECK(str_eq(&x->exp, &y->exp) && str_eq(&x->variant, &y->variant));
	CHECK(str_eq(&x->unit, &y->unit) && str_eq(&x->metric, &y->metric));
	CHECK(x->has_unit == y->has_unit);
	if (x->type == LOGREC_REQUEST)
		CHECK(x->status == y->status && x->latency_ms == y->latency_ms &&
		      x->forced == y->forced);
	if (x->type == LOGREC_OUTCOME)
		CHECK(x->value == y->value);
	if (x->type == LOGREC_CONFIG) {
		CHECK(x->nweights == y->nweights);
		for (size_t i = 0; i < x->nweights; i++)
			CHECK(str_eq(&x->wname[i], &y->wname[i]) && x->weight[i] == y->weight[i]);
	}
	if (x->type == LOGREC_SHADOW) {
		CHECK(x->has_status == y->has_status && (!x->has_status || x->status == y->status));
		CHECK(x->has_latency == y->has_latency &&
		      (!x->has_latency || x->latency_ms == y->latency_ms));
		CHECK(x->has_primary_status == y->has_primary_status &&
		      (!x->has_primary_status || x->primary_status == y->primary_status));
		CHECK(x->has_primary_latency == y->has_primary_latency &&
		      (!x->has_primary_latency || x->primary_latency_ms == y->primary_latency_ms));
		CHECK(x->has_field_diff == y->has_field_diff &&
		      (!x->has_field_diff || x->field_diff == y->field_diff));
		CHECK(x->same_status == y->same_status && x->same_body == y->same_body &&
		      x->field_agree == y->field_agree);
		CHECK(str_eq(&x->primary_variant, &y->primary_variant) && str_eq(&x->error, &y->error));
	}
}

static bool digits(const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int num(const uint8_t *s, size_t n)
{
	int v = 0;

	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

/*
 * Whether s[0..len) is a timestamp as include/logrec.h describes it, written independently of
 * the parser: "YYYY-MM-DDTHH:MM:SS" ('T', 't' or a space between date and time), an optional
 * fraction ".D+", then "Z", "z", "+HH:MM", "-HH:MM" or nothing; fields in range (month 1-12,
 * day 1-31, hour 0-23, minute 0-59, second 0-60, offset up to 23:59).
 */
static bool timestamp_ok(const uint8_t *s, size_t len)
{
	size_t i = 19;

	if (len < 19 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
	    !digits(s + 8, 2) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    !digits(s + 11, 2) || s[13] != ':' || !digits(s + 14, 2) || s[16] != ':' ||
	    !digits(s + 17, 2))
		return false;
	if (num(s + 5, 2) < 1 || num(s + 5, 2) > 12 || num(s + 8, 2) < 1 || num(s + 8, 2) > 31 ||
	    num(s + 11, 2) > 23 || num(s + 14, 2) > 59 || num(s + 17, 2) > 60)
		return false;
	if (i < len && s[i] == '.') {
		if (++i == len || !digits(s + i, 1))
			return false;
		while (i < len && digits(s + i, 1))
			i++;
	}
	if (i < len && (s[i] == 'Z' || s[i] == 'z'))
		return i + 1 == len;
	if (i < len && (s[i] == '+' || s[i] == '-'))
		return len - i == 6 && digits(s + i + 1, 2) && s[i + 3] == ':' &&
		       digits(s + i + 4, 2) && num(s + i + 1, 2) <= 23 && num(s + i + 4, 2) <= 59;
	return i == len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct parsed plain, crlf;
	char *ts;
	double t;

	parse(&plain, data, size, -1);
	parse(&crlf, data, size, '\r');
	check_same(&plain, &crlf);
	parsed_free(&plain);
	parsed_free(&crlf);

	ts = malloc(size != 0 ? size : 1);
	CHECK(ts != NULL);
	memcpy(ts, data, size);
	/* Accepted exactly when well-formed. */
	if (logrec_parse_ts(ts, size, &t) == 0) {
		CHECK(isfinite(t));
		CHECK(timestamp_ok(data, size));
	} else {
		CHECK(!timestamp_ok(data, size));
	}
	free(ts);
	return 0;
}
