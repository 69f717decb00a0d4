/*
 * logrec.c - outcome-log line parser (see include/logrec.h).
 *
 * The fast path reads the object in one pass: keys are matched against the few the report uses,
 * other values are skipped. Lines it does not handle (arrays, nested objects other than
 * "weights") go to cJSON, which is slower but general. The fields only shadow records use are
 * gathered whatever the type and judged only when the record is a shadow one, so that they
 * change nothing for the other types.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "logrec.h"

enum fast { FAST_OK, FAST_BAD, FAST_UNSUPPORTED };

struct rd {
	const char *p, *end;
	char *scratch;
	size_t sused, scap;
};

/* Raw field values gathered before validation. */
struct raw {
	double v;
	bool has_v;
	struct logrec_str type, ts, exp, variant, unit, metric;
	bool has_type, has_ts, has_exp, has_variant, has_unit, has_metric;
	double status, latency, value;
	bool has_status, has_latency, has_value, forced;
	bool has_weights;
	size_t nweights;
	struct logrec_str wname[LOGREC_MAX_WEIGHTS];
	double weight[LOGREC_MAX_WEIGHTS];
	bool too_many_weights;
	/* shadow records */
	struct logrec_str primary_variant, error;
	bool has_primary_variant, has_error;
	double primary_status, primary_latency, field_diff;
	bool has_primary_status, has_primary_latency, has_field_diff;
	bool has_same_status, same_status, has_same_body, same_body, has_field_agree, field_agree;
	bool shadow_mistyped; /* a shadow field of the wrong type: invalid if the record is one */
};

static void skip_ws(struct rd *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\r' || *r->p == '\n'))
		r->p++;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int read_hex4(const char *p, const char *end, unsigned *out)
{
	if (end - p < 4)
		return -1;
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexval(p[i]);
		if (h < 0)
			return -1;
		v = v * 16 + (unsigned)h;
	}
	*out = v;
	return 0;
}

static size_t put_utf8(char *dst, unsigned cp)
{
	if (cp < 0x80) {
		dst[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		dst[0] = (char)(0xc0 | (cp >> 6));
		dst[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		dst[0] = (char)(0xe0 | (cp >> 12));
		dst[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		dst[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	dst[0] = (char)(0xf0 | (cp >> 18));
	dst[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	dst[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	dst[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Reads a JSON string at r->p (on the opening quote). Escaped strings are decoded to scratch. */
static int read_string(struct rd *r, struct logrec_str *out)
{
	if (r->p >= r->end || *r->p != '"')
		return -1;
	const char *s = ++r->p;
	bool esc = false;
	while (r->p < r->end && *r->p != '"') {
		unsigned char c = (unsigned char)*r->p;
		if (c < 0x20)
			return -1;
		if (c == '\\') {
			esc = true;
			r->p++;
		}
		r->p++;
	}
	if (r->p >= r->end)
		return -1;
	const char *e = r->p++;
	if (!esc) {
		out->s = s;
		out->len = (size_t)(e - s);
		return 0;
	}
	/* decoding never grows a string, so the line's length bounds the scratch use */
	char *dst = r->scratch + r->sused;
	size_t n = 0;
	if (r->sused + (size_t)(e - s) > r->scap)
		return -1;
	for (const char *p = s; p < e; p++) {
		if (*p != '\\') {
			dst[n++] = *p;
			continue;
		}
		p++;
		switch (*p) {
		case '"':
			dst[n++] = '"';
			break;
		case '\\':
			dst[n++] = '\\';
			break;
		case '/':
			dst[n++] = '/';
			break;
		case 'b':
			dst[n++] = '\b';
			break;
		case 'f':
			dst[n++] = '\f';
			break;
		case 'n':
			dst[n++] = '\n';
			break;
		case 'r':
			dst[n++] = '\r';
			break;
		case 't':
			dst[n++] = '\t';
			break;
		case 'u': {
			unsigned cp, lo;
			if (read_hex4(p + 1, e, &cp) < 0)
				return -1;
			p += 4;
			if (cp >= 0xd800 && cp < 0xdc00 && e - p >= 7 && p[1] == '\\' &&
			    p[2] == 'u' && read_hex4(p + 3, e, &lo) == 0 && lo >= 0xdc00 &&
			    lo < 0xe000) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				p += 6;
			}
			n += put_utf8(dst + n, cp);
			break;
		}
		default:
			return -1;
		}
	}
	out->s = dst;
	out->len = n;
	r->sused += n;
	return 0;
}

/* Reads a JSON number (strict grammar) at r->p. */
static int read_number(struct rd *r, double *out)
{
	const char *s = r->p, *p = r->p;
	if (p < r->end && *p == '-')
		p++;
	if (p >= r->end)
		return -1;
	if (*p == '0') {
		p++;
	} else if (*p >= '1' && *p <= '9') {
		while (p < r->end && *p >= '0' && *p <= '9')
			p++;
	} else {
		return -1;
	}
	if (p < r->end && *p == '.') {
		p++;
		if (p >= r->end || *p < '0' || *p > '9')
			return -1;
		while (p < r->end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < r->end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < r->end && (*p == '+' || *p == '-'))
			p++;
		if (p >= r->end || *p < '0' || *p > '9')
			return -1;
		while (p < r->end && *p >= '0' && *p <= '9')
			p++;
	}
	char buf[64];
	size_t n = (size_t)(p - s);
	if (n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	*out = strtod(buf, NULL);
	r->p = p;
	return 0;
}

static bool lit(struct rd *r, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(r->end - r->p) >= n && memcmp(r->p, word, n) == 0) {
		r->p += n;
		return true;
	}
	return false;
}

static bool key_is(const struct logrec_str *k, const char *name)
{
	size_t n = strlen(name);
	return k->len == n && memcmp(k->s, name, n) == 0;
}

/* Keys of the shadow fields, by the JSON type they must have (besides null). */
static bool shadow_number_key(const struct logrec_str *k)
{
	return key_is(k, "primary_status") || key_is(k, "primary_latency_ms") ||
	       key_is(k, "field_diff");
}

static bool shadow_bool_key(const struct logrec_str *k)
{
	return key_is(k, "same_status") || key_is(k, "same_body") || key_is(k, "field_agree");
}

static bool shadow_string_key(const struct logrec_str *k)
{
	return key_is(k, "primary_variant") || key_is(k, "error");
}

/* The keys a shadow record needs as something other than a string. */
static bool shadow_nonstring_key(const struct logrec_str *k)
{
	return shadow_number_key(k) || shadow_bool_key(k);
}

/* A null value: the field is known to be absent. */
static void shadow_null(struct raw *w, const struct logrec_str *k)
{
	if (key_is(k, "status"))
		w->has_status = false;
	else if (key_is(k, "latency_ms"))
		w->has_latency = false;
	else if (key_is(k, "primary_status"))
		w->has_primary_status = false;
	else if (key_is(k, "primary_latency_ms"))
		w->has_primary_latency = false;
	else if (key_is(k, "field_diff"))
		w->has_field_diff = false;
	else if (key_is(k, "same_status"))
		w->has_same_status = false;
	else if (key_is(k, "same_body"))
		w->has_same_body = false;
	else if (key_is(k, "field_agree"))
		w->has_field_agree = false;
	else if (key_is(k, "primary_variant"))
		w->has_primary_variant = false;
	else if (key_is(k, "error"))
		w->has_error = false;
}

static enum fast read_weights(struct rd *r, struct raw *w)
{
	r->p++; /* '{' */
	skip_ws(r);
	w->has_weights = true;
	w->nweights = 0;
	if (r->p < r->end && *r->p == '}') {
		r->p++;
		return FAST_OK;
	}
	for (;;) {
		struct logrec_str k;
		double v;
		skip_ws(r);
		if (read_string(r, &k) < 0)
			return FAST_BAD;
		skip_ws(r);
		if (r->p >= r->end || *r->p++ != ':')
			return FAST_BAD;
		skip_ws(r);
		if (r->p < r->end && (*r->p == '{' || *r->p == '[' || *r->p == '"'))
			return FAST_UNSUPPORTED;
		if (read_number(r, &v) < 0)
			return lit(r, "null") || lit(r, "true") || lit(r, "false")
				   ? FAST_UNSUPPORTED
				   : FAST_BAD;
		if (w->nweights < LOGREC_MAX_WEIGHTS) {
			w->wname[w->nweights] = k;
			w->weight[w->nweights++] = v;
		} else {
			w->too_many_weights = true;
		}
		skip_ws(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		if (r->p < r->end && *r->p == '}') {
			r->p++;
			return FAST_OK;
		}
		return FAST_BAD;
	}
}

static enum fast read_fast(struct rd *r, struct raw *w)
{
	skip_ws(r);
	if (r->p >= r->end || *r->p++ != '{')
		return FAST_BAD;
	skip_ws(r);
	if (r->p < r->end && *r->p == '}') {
		r->p++;
		goto tail;
	}
	for (;;) {
		struct logrec_str k, s;
		double num;
		skip_ws(r);
		if (read_string(r, &k) < 0)
			return FAST_BAD;
		skip_ws(r);
		if (r->p >= r->end || *r->p++ != ':')
			return FAST_BAD;
		skip_ws(r);
		if (r->p >= r->end)
			return FAST_BAD;
		char c = *r->p;
		if (c == '"') {
			if (read_string(r, &s) < 0)
				return FAST_BAD;
			if (key_is(&k, "type"))
				w->type = s, w->has_type = true;
			else if (key_is(&k, "ts"))
				w->ts = s, w->has_ts = true;
			else if (key_is(&k, "exp"))
				w->exp = s, w->has_exp = true;
			else if (key_is(&k, "variant"))
				w->variant = s, w->has_variant = true;
			else if (key_is(&k, "unit"))
				w->unit = s, w->has_unit = true;
			else if (key_is(&k, "metric"))
				w->metric = s, w->has_metric = true;
			else if (key_is(&k, "primary_variant"))
				w->primary_variant = s, w->has_primary_variant = true;
			else if (key_is(&k, "error"))
				w->error = s, w->has_error = true;
			else if (shadow_nonstring_key(&k))
				w->shadow_mistyped = true;
			else if (key_is(&k, "v") || key_is(&k, "status") ||
				 key_is(&k, "latency_ms") || key_is(&k, "value") ||
				 key_is(&k, "weights"))
				return FAST_UNSUPPORTED; /* mistyped: let the general path decide */
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			if (read_number(r, &num) < 0)
				return FAST_BAD;
			if (key_is(&k, "v"))
				w->v = num, w->has_v = true;
			else if (key_is(&k, "status"))
				w->status = num, w->has_status = true;
			else if (key_is(&k, "latency_ms"))
				w->latency = num, w->has_latency = true;
			else if (key_is(&k, "value"))
				w->value = num, w->has_value = true;
			else if (key_is(&k, "primary_status"))
				w->primary_status = num, w->has_primary_status = true;
			else if (key_is(&k, "primary_latency_ms"))
				w->primary_latency = num, w->has_primary_latency = true;
			else if (key_is(&k, "field_diff"))
				w->field_diff = num, w->has_field_diff = true;
			else if (shadow_bool_key(&k) || shadow_string_key(&k))
				w->shadow_mistyped = true;
		} else if (c == 't' || c == 'f') {
			bool b = c == 't';
			if (!lit(r, b ? "true" : "false"))
				return FAST_BAD;
			if (key_is(&k, "value"))
				w->value = b, w->has_value = true;
			else if (key_is(&k, "forced"))
				w->forced = b;
			else if (key_is(&k, "same_status"))
				w->same_status = b, w->has_same_status = true;
			else if (key_is(&k, "same_body"))
				w->same_body = b, w->has_same_body = true;
			else if (key_is(&k, "field_agree"))
				w->field_agree = b, w->has_field_agree = true;
			else if (key_is(&k, "status") || key_is(&k, "latency_ms") ||
				 shadow_number_key(&k) || shadow_string_key(&k))
				w->shadow_mistyped = true;
		} else if (c == 'n') {
			if (!lit(r, "null"))
				return FAST_BAD;
			if (key_is(&k, "unit"))
				w->has_unit = false;
			else
				shadow_null(w, &k);
		} else if (c == '{' && key_is(&k, "weights")) {
			enum fast f = read_weights(r, w);
			if (f != FAST_OK)
				return f;
		} else if (c == '{' || c == '[') {
			return FAST_UNSUPPORTED;
		} else {
			return FAST_BAD;
		}
		skip_ws(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		if (r->p < r->end && *r->p == '}') {
			r->p++;
			break;
		}
		return FAST_BAD;
	}
tail:
	skip_ws(r);
	return r->p == r->end ? FAST_OK : FAST_BAD;
}

/* Copies a cJSON string into scratch. */
static int take_str(struct rd *r, const cJSON *item, struct logrec_str *out, bool *has)
{
	if (item == NULL || cJSON_IsNull(item))
		return 0;
	if (!cJSON_IsString(item))
		return -1;
	size_t n = strlen(item->valuestring);
	if (r->sused + n > r->scap)
		return -1;
	memcpy(r->scratch + r->sused, item->valuestring, n);
	out->s = r->scratch + r->sused;
	out->len = n;
	r->sused += n;
	*has = true;
	return 0;
}

/* A number (or, with allow_bool, a boolean read as 0/1); absent and null leave *has alone. */
static int take_num(const cJSON *item, double *out, bool *has, bool allow_bool)
{
	if (item == NULL || cJSON_IsNull(item))
		return 0;
	if (cJSON_IsNumber(item))
		*out = item->valuedouble;
	else if (allow_bool && cJSON_IsBool(item))
		*out = cJSON_IsTrue(item) ? 1.0 : 0.0;
	else
		return -1;
	*has = true;
	return 0;
}

/* Shadow fields: the wrong type sets w->shadow_mistyped rather than failing the line. */
static int take_shadow_str(struct rd *r, struct raw *w, const cJSON *root, const char *key,
			   struct logrec_str *out, bool *has)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
	if (item != NULL && !cJSON_IsNull(item) && !cJSON_IsString(item)) {
		w->shadow_mistyped = true;
		return 0;
	}
	return take_str(r, item, out, has);
}

static void take_shadow_num(struct raw *w, const cJSON *root, const char *key, double *out,
			    bool *has)
{
	if (take_num(cJSON_GetObjectItemCaseSensitive(root, key), out, has, false) < 0)
		w->shadow_mistyped = true;
}

static void take_shadow_bool(struct raw *w, const cJSON *root, const char *key, bool *out,
			     bool *has)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
	if (item == NULL || cJSON_IsNull(item))
		return;
	if (!cJSON_IsBool(item)) {
		w->shadow_mistyped = true;
		return;
	}
	*out = cJSON_IsTrue(item);
	*has = true;
}

static enum logrec_parse read_cjson(struct rd *r, const char *line, size_t len, struct raw *w)
{
	const char *endp = NULL;
	cJSON *root = cJSON_ParseWithLengthOpts(line, len, &endp, 0);
	if (root == NULL)
		return LOGREC_MALFORMED;
	enum logrec_parse rc = LOGREC_INVALID;
	while (endp && endp < line + len &&
	       (*endp == ' ' || *endp == '\t' || *endp == '\r' || *endp == '\n'))
		endp++;
	if (endp != line + len || !cJSON_IsObject(root)) {
		rc = LOGREC_MALFORMED;
		goto out;
	}
	bool dummy = false;
	if (take_num(cJSON_GetObjectItemCaseSensitive(root, "v"), &w->v, &w->has_v, false) < 0 ||
	    take_str(r, cJSON_GetObjectItemCaseSensitive(root, "type"), &w->type, &w->has_type) <
		0 ||
	    take_str(r, cJSON_GetObjectItemCaseSensitive(root, "ts"), &w->ts, &w->has_ts) < 0 ||
	    take_str(r, cJSON_GetObjectItemCaseSensitive(root, "exp"), &w->exp, &w->has_exp) < 0 ||
	    take_str(r, cJSON_GetObjectItemCaseSensitive(root, "variant"), &w->variant,
		     &w->has_variant) < 0 ||
	    take_str(r, cJSON_GetObjectItemCaseSensitive(root, "unit"), &w->unit, &w->has_unit) <
		0 ||
	    take_str(r, cJSON_GetObjectItemCaseSensitive(root, "metric"), &w->metric,
		     &w->has_metric) < 0 ||
	    take_num(cJSON_GetObjectItemCaseSensitive(root, "status"), &w->status, &w->has_status,
		     false) < 0 ||
	    take_num(cJSON_GetObjectItemCaseSensitive(root, "latency_ms"), &w->latency,
		     &w->has_latency, false) < 0 ||
	    take_num(cJSON_GetObjectItemCaseSensitive(root, "value"), &w->value, &w->has_value,
		     true) < 0)
		goto out;
	double forced = 0;
	if (take_num(cJSON_GetObjectItemCaseSensitive(root, "forced"), &forced, &dummy, true) == 0)
		w->forced = forced != 0;
	if (take_shadow_str(r, w, root, "primary_variant", &w->primary_variant,
			    &w->has_primary_variant) < 0 ||
	    take_shadow_str(r, w, root, "error", &w->error, &w->has_error) < 0)
		goto out;
	take_shadow_num(w, root, "primary_status", &w->primary_status, &w->has_primary_status);
	take_shadow_num(w, root, "primary_latency_ms", &w->primary_latency,
			&w->has_primary_latency);
	take_shadow_num(w, root, "field_diff", &w->field_diff, &w->has_field_diff);
	take_shadow_bool(w, root, "same_status", &w->same_status, &w->has_same_status);
	take_shadow_bool(w, root, "same_body", &w->same_body, &w->has_same_body);
	take_shadow_bool(w, root, "field_agree", &w->field_agree, &w->has_field_agree);
	const cJSON *ws = cJSON_GetObjectItemCaseSensitive(root, "weights");
	if (ws) {
		if (!cJSON_IsObject(ws))
			goto out;
		w->has_weights = true;
		const cJSON *it;
		cJSON_ArrayForEach(it, ws)
		{
			if (!cJSON_IsNumber(it))
				goto out;
			if (w->nweights >= LOGREC_MAX_WEIGHTS) {
				w->too_many_weights = true;
				break;
			}
			struct cJSON name = {.type = cJSON_String, .valuestring = it->string};
			bool h = false;
			if (take_str(r, &name, &w->wname[w->nweights], &h) < 0)
				goto out;
			w->weight[w->nweights++] = it->valuedouble;
		}
	}
	rc = LOGREC_OK;
out:
	cJSON_Delete(root);
	return rc;
}

int logrec_parse_ts(const char *s, size_t len, double *out)
{
	/* YYYY-MM-DDTHH:MM:SS */
	if (len < 19)
		return -1;
	int f[6], pos[6] = {0, 5, 8, 11, 14, 17}, wid[6] = {4, 2, 2, 2, 2, 2};
	for (int i = 0; i < 6; i++) {
		int v = 0;
		for (int j = 0; j < wid[i]; j++) {
			char c = s[pos[i] + j];
			if (c < '0' || c > '9')
				return -1;
			v = v * 10 + (c - '0');
		}
		f[i] = v;
	}
	if (s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    s[13] != ':' || s[16] != ':')
		return -1;
	if (f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 || f[3] > 23 || f[4] > 59 || f[5] > 60)
		return -1;
	size_t i = 19;
	double frac = 0, scale = 0.1;
	if (i < len && s[i] == '.') {
		i++;
		if (i >= len || s[i] < '0' || s[i] > '9')
			return -1;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			frac += (s[i] - '0') * scale;
			scale /= 10;
			i++;
		}
	}
	int off = 0;
	if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i < len && (s[i] == '+' || s[i] == '-')) {
		if (len - i < 6 || s[i + 3] != ':')
			return -1;
		for (size_t k = 1; k <= 5; k++)
			if (k != 3 && (s[i + k] < '0' || s[i + k] > '9'))
				return -1;
		int hh = (s[i + 1] - '0') * 10 + (s[i + 2] - '0');
		int mm = (s[i + 4] - '0') * 10 + (s[i + 5] - '0');
		if (hh < 0 || hh > 23 || mm < 0 || mm > 59)
			return -1;
		off = (hh * 60 + mm) * 60 * (s[i] == '+' ? 1 : -1);
		i += 6;
	}
	if (i != len)
		return -1;
	/* days since 1970-01-01 of the civil date (proleptic Gregorian) */
	int y = f[0], m = f[1], d = f[2];
	y -= m <= 2;
	int era = (y >= 0 ? y : y - 399) / 400;
	int yoe = y - era * 400;
	int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	int64_t days = (int64_t)era * 146097 + doe - 719468;
	*out = (double)(days * 86400 + f[3] * 3600 + f[4] * 60 + f[5] - off) + frac;
	return 0;
}

static bool str_is(const struct logrec_str *k, const char *name)
{
	return key_is(k, name);
}

static bool status_ok(double s)
{
	return s >= 0 && s <= 999 && s == floor(s);
}

static signed char tri(bool has, bool v)
{
	return has ? (signed char)v : -1;
}

/* Checks and copies the fields of a shadow record; returns 0 or -1 (invalid). */
static int take_shadow(const struct raw *w, struct logrec *out)
{
	if (w->shadow_mistyped || (w->has_status && !status_ok(w->status)) ||
	    (w->has_latency && !isfinite(w->latency)) ||
	    (w->has_primary_status && !status_ok(w->primary_status)) ||
	    (w->has_primary_latency && !isfinite(w->primary_latency)) ||
	    (w->has_field_diff && !isfinite(w->field_diff)))
		return -1;
	out->has_status = w->has_status;
	out->status = w->has_status ? (int)w->status : 0;
	out->has_latency = w->has_latency;
	out->latency_ms = w->has_latency ? w->latency : 0;
	out->has_primary_status = w->has_primary_status;
	out->primary_status = w->has_primary_status ? (int)w->primary_status : 0;
	out->has_primary_latency = w->has_primary_latency;
	out->primary_latency_ms = w->has_primary_latency ? w->primary_latency : 0;
	out->has_field_diff = w->has_field_diff;
	out->field_diff = w->has_field_diff ? w->field_diff : 0;
	out->has_primary_variant = w->has_primary_variant;
	out->primary_variant = w->primary_variant;
	out->has_error = w->has_error;
	out->error = w->error;
	out->same_status = tri(w->has_same_status, w->same_status);
	out->same_body = tri(w->has_same_body, w->same_body);
	out->field_agree = tri(w->has_field_agree, w->field_agree);
	return 0;
}

enum logrec_parse logrec_parse(const char *line, size_t len, struct logrec *out, char *scratch,
			       size_t scratch_len)
{
	struct rd r = {line, line + len, scratch, 0, scratch_len};
	struct raw w;
	memset(&w, 0, sizeof(w));
	enum fast f = read_fast(&r, &w);
	if (f == FAST_BAD)
		return LOGREC_MALFORMED;
	if (f == FAST_UNSUPPORTED) {
		memset(&w, 0, sizeof(w));
		r.sused = 0;
		enum logrec_parse rc = read_cjson(&r, line, len, &w);
		if (rc != LOGREC_OK)
			return rc;
	}
	memset(out, 0, sizeof(*out));
	out->same_status = out->same_body = out->field_agree = -1;
	if (!w.has_v || w.v != 1 || !w.has_type || !w.has_exp || !w.has_ts || w.exp.len == 0)
		return LOGREC_INVALID;
	if (logrec_parse_ts(w.ts.s, w.ts.len, &out->ts) < 0)
		return LOGREC_INVALID;
	out->exp = w.exp;
	out->variant = w.variant;
	if (str_is(&w.type, "request")) {
		out->type = LOGREC_REQUEST;
		if (!w.has_variant || w.variant.len == 0 || !w.has_status || !w.has_latency ||
		    !isfinite(w.latency) || !status_ok(w.status))
			return LOGREC_INVALID;
		out->status = (int)w.status;
		out->latency_ms = w.latency;
		out->has_status = out->has_latency = true;
		out->forced = w.forced;
		out->unit = w.unit;
		out->has_unit = w.has_unit && w.unit.len > 0;
	} else if (str_is(&w.type, "outcome")) {
		out->type = LOGREC_OUTCOME;
		if (!w.has_variant || w.variant.len == 0 || !w.has_metric || w.metric.len == 0 ||
		    !w.has_value || !isfinite(w.value))
			return LOGREC_INVALID;
		out->metric = w.metric;
		out->value = w.value;
		out->unit = w.unit;
		out->has_unit = w.has_unit && w.unit.len > 0;
	} else if (str_is(&w.type, "config")) {
		out->type = LOGREC_CONFIG;
		if (!w.has_weights || w.too_many_weights)
			return LOGREC_INVALID;
		for (size_t i = 0; i < w.nweights; i++) {
			if (!isfinite(w.weight[i]) || w.weight[i] < 0 || w.wname[i].len == 0)
				return LOGREC_INVALID;
			out->wname[i] = w.wname[i];
			out->weight[i] = w.weight[i];
		}
		out->nweights = w.nweights;
	} else if (str_is(&w.type, "shadow")) {
		out->type = LOGREC_SHADOW;
		if (take_shadow(&w, out) < 0)
			return LOGREC_INVALID;
	} else {
		out->type = LOGREC_OTHER;
	}
	return LOGREC_OK;
}
