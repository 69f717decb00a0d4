/*
 * fuzz_logrec.c - libFuzzer driver for the outcome-log line reader, logrec_parse() and
 * logrec_parse_ts() (include/logrec.h).
 *
 * Input: one line, as is (no newline expected, though any byte may appear). The line is parsed
 * with a scratch buffer of exactly its length, the least the contract allows, so a write past
 * it is caught. A record must hold together: every string inside the line or the scratch
 * buffer, required fields present for its type, numbers finite and in range. The same line
 * with a CR appended (a log written with CRLF) must give the same answer and the same record.
 * The line is also read as a timestamp on its own.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logrec.h"

#define CHECK(cond)                                                                          \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                             \
		}                                                                            \
	} while (0)

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
	if (logrec_parse_ts(ts, size, &t) == 0)
		CHECK(isfinite(t));
	free(ts);
	return 0;
}
