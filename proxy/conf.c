/*
 * conf.c - the configuration loader (see include/conf.h).
 *
 * Three stages, each in its own section below:
 *   1. libyaml events -> a small tree of nodes (scalar, list, mapping), each keeping the 1-based
 *      line and column where it starts. Anchors, aliases, tags and multi-document streams are
 *      refused here, so later stages only ever see plain trees.
 *   2. Typed accessors over the tree (strings, integers, decimals, booleans, percentages in basis
 *      points, choices) and a key checker that rejects unknown and duplicate keys. Every failure
 *      is reported once as "FILE:LINE:COL: message" at the offending key or value.
 *   3. Compilation of each section into struct conf. Backends come first because the other
 *      sections refer to them by name; the rest follow in file order. struct conf owns
 *      everything it points to, so on the first error the partial generation is freed whole.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "conf.h"
#include "log.h"
#include "outlog.h"
#include "sdkhash.h"

#define MAX_FILE_BYTES (16u << 20)
#define MAX_DEPTH 32
#define MAX_LISTENS 64
#define MAX_BACKENDS 1024
#define MAX_SERVERS 256
#define MAX_EXPERIMENTS 1024
#define MAX_VARIANTS 100
#define MAX_METRICS 64
#define MAX_STEPS 100
#define MAX_NAME 64
#define MAX_HASH_TEXT 256
#define DAY_MS 86400000u

/* ------------------------------------------------------------------------------------------ */
/* Stage 1: the node tree                                                                      */

enum node_kind { NODE_SCALAR, NODE_LIST, NODE_MAP };

struct node {
	enum node_kind kind;
	int line, col; /* 1-based position of the first character */
	bool plain;    /* scalar written without quotes: may stand for a number, bool or null */
	char *str;     /* scalar: the text, NUL-terminated */
	struct node **kids; /* list: the items; mapping: key, value, key, value, ... */
	size_t nkids;	    /* entries in kids (twice the pairs for a mapping) */
	size_t cap;	    /* allocated entries in kids */
};

/* The state of one load: where messages go and whether one was already written. */
struct ctx {
	const char *name; /* (ref) the file name used in messages */
	const char *text; /* (ref) the document */
	size_t len;
	char *err; /* (ref) the caller's message buffer */
	size_t errlen;
	bool failed;
};

static void node_free(struct node *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->nkids; i++)
		node_free(n->kids[i]);
	free(n->kids);
	free(n->str);
	free(n);
}

static size_t map_pairs(const struct node *m)
{
	return m->nkids / 2;
}

static const struct node *map_key(const struct node *m, size_t i)
{
	return m->kids[2 * i];
}

static const struct node *map_val(const struct node *m, size_t i)
{
	return m->kids[2 * i + 1];
}

/* Writes the first error of the load as "NAME:LINE:COL: message"; later ones are dropped so the
 * message always describes the first problem found. Returns -1 for "return fail(...)". */
static int fail_at(struct ctx *c, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_at(struct ctx *c, int line, int col, const char *fmt, ...)
{
	if (c->failed)
		return -1;
	c->failed = true;
	int n = snprintf(c->err, c->errlen, "%s:%d:%d: ", c->name, line, col);
	if (n >= 0 && (size_t)n < c->errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

#define fail(c, node, ...) fail_at((c), (node)->line, (node)->col, __VA_ARGS__)

static int oom(struct ctx *c)
{
	if (!c->failed) {
		c->failed = true;
		snprintf(c->err, c->errlen, "%s: out of memory", c->name);
	}
	return -1;
}

/* Turns a byte offset into a 1-based line and a column counted in characters, as libyaml
 * counts them (UTF-8 continuation bytes do not start a character). */
static void offset_position(const struct ctx *c, size_t off, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off && i < c->len; i++) {
		unsigned char ch = (unsigned char)c->text[i];
		if (ch == '\n') {
			(*line)++;
			*col = 1;
		} else if ((ch & 0xc0) != 0x80) {
			(*col)++;
		}
	}
}

static int syntax_error(struct ctx *c, const yaml_parser_t *p)
{
	int line, col;

	if (p->error == YAML_MEMORY_ERROR)
		return oom(c);
	const char *problem = p->problem ? p->problem : "invalid YAML";
	if (p->error == YAML_READER_ERROR) {
		/* The reader reports a byte offset and leaves the marks unset. */
		offset_position(c, p->problem_offset, &line, &col);
		return fail_at(c, line, col, "syntax error: %s", problem);
	}
	line = (int)p->problem_mark.line + 1;
	col = (int)p->problem_mark.column + 1;
	if (p->context != NULL)
		return fail_at(c, line, col, "syntax error: %s (%s at line %d, column %d)", problem,
			       p->context, (int)p->context_mark.line + 1,
			       (int)p->context_mark.column + 1);
	return fail_at(c, line, col, "syntax error: %s", problem);
}

static int next_event(struct ctx *c, yaml_parser_t *p, yaml_event_t *ev)
{
	if (yaml_parser_parse(p, ev))
		return 0;
	return syntax_error(c, p);
}

static int node_append(struct node *n, struct node *kid)
{
	if (n->nkids == n->cap) {
		size_t cap = n->cap ? 2 * n->cap : 8;
		struct node **kids = realloc(n->kids, cap * sizeof(*kids));
		if (kids == NULL)
			return -1;
		n->kids = kids;
		n->cap = cap;
	}
	n->kids[n->nkids++] = kid;
	return 0;
}

/*
 * Builds the node that starts with event *ev, reading the rest of it from p. Takes ownership of
 * *ev (always deleted). On success stores a new node owned by the caller in *out and returns 0;
 * on failure returns -1 with the error written and *out untouched.
 */
static int build_node(struct ctx *c, yaml_parser_t *p, yaml_event_t *ev, int depth,
		      struct node **out)
{
	struct node *n = NULL;
	const yaml_char_t *anchor = NULL, *tag = NULL;
	int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
	enum node_kind kind;

	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		kind = NODE_SCALAR;
		anchor = ev->data.scalar.anchor;
		tag = ev->data.scalar.tag;
		break;
	case YAML_SEQUENCE_START_EVENT:
		kind = NODE_LIST;
		anchor = ev->data.sequence_start.anchor;
		tag = ev->data.sequence_start.tag;
		break;
	case YAML_MAPPING_START_EVENT:
		kind = NODE_MAP;
		anchor = ev->data.mapping_start.anchor;
		tag = ev->data.mapping_start.tag;
		break;
	case YAML_ALIAS_EVENT:
		fail_at(c, line, col, "aliases are not supported");
		goto error;
	default:
		fail_at(c, line, col, "unexpected YAML structure");
		goto error;
	}
	if (anchor != NULL) {
		fail_at(c, line, col, "anchors are not supported");
		goto error;
	}
	if (tag != NULL) {
		fail_at(c, line, col, "tags are not supported");
		goto error;
	}
	if (depth > MAX_DEPTH) {
		fail_at(c, line, col, "nesting deeper than %d levels", MAX_DEPTH);
		goto error;
	}
	if ((n = calloc(1, sizeof(*n))) == NULL) {
		oom(c);
		goto error;
	}
	n->kind = kind;
	n->line = line;
	n->col = col;

	if (kind == NODE_SCALAR) {
		size_t len = ev->data.scalar.length;
		const char *v = (const char *)ev->data.scalar.value;
		/* A double-quoted "\0" would silently cut the string short. */
		if (memchr(v, '\0', len) != NULL) {
			fail_at(c, line, col, "strings must not contain NUL characters");
			goto error;
		}
		if ((n->str = malloc(len + 1)) == NULL) {
			oom(c);
			goto error;
		}
		memcpy(n->str, v, len);
		n->str[len] = '\0';
		n->plain = ev->data.scalar.plain_implicit;
		yaml_event_delete(ev);
		*out = n;
		return 0;
	}

	yaml_event_delete(ev);
	for (;;) {
		yaml_event_t e;
		struct node *kid;

		if (next_event(c, p, &e) < 0)
			goto error;
		if (e.type == YAML_SEQUENCE_END_EVENT || e.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&e);
			break;
		}
		if (build_node(c, p, &e, depth + 1, &kid) < 0)
			goto error;
		if (node_append(n, kid) < 0) {
			node_free(kid);
			oom(c);
			goto error;
		}
		if (kind == NODE_MAP && n->nkids % 2 == 1 && kid->kind != NODE_SCALAR) {
			fail(c, kid, "mapping keys must be plain strings");
			goto error;
		}
	}
	*out = n;
	return 0;

error:
	/* yaml_event_delete() zeroes the event, so deleting an already deleted one is harmless. */
	yaml_event_delete(ev);
	node_free(n);
	return -1;
}

/* Parses the whole document into a tree; the root must be a mapping. Same ownership as
 * build_node(). */
static int build_tree(struct ctx *c, struct node **out)
{
	yaml_parser_t p;
	yaml_event_t ev;
	struct node *root = NULL;
	int rc = -1;

	if (!yaml_parser_initialize(&p))
		return oom(c);
	yaml_parser_set_input_string(&p, (const unsigned char *)c->text, c->len);

	if (next_event(c, &p, &ev) < 0) /* stream start */
		goto out;
	yaml_event_delete(&ev);
	if (next_event(c, &p, &ev) < 0)
		goto out;
	if (ev.type == YAML_STREAM_END_EVENT) {
		yaml_event_delete(&ev);
		fail_at(c, 1, 1, "empty configuration (expected a mapping of settings)");
		goto out;
	}
	yaml_event_delete(&ev); /* document start */
	if (next_event(c, &p, &ev) < 0 || build_node(c, &p, &ev, 0, &root) < 0)
		goto out;
	if (next_event(c, &p, &ev) < 0) /* document end */
		goto out;
	yaml_event_delete(&ev);
	if (next_event(c, &p, &ev) < 0)
		goto out;
	if (ev.type != YAML_STREAM_END_EVENT) {
		fail_at(c, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
			"only one YAML document is allowed");
		yaml_event_delete(&ev);
		goto out;
	}
	yaml_event_delete(&ev);
	if (root->kind != NODE_MAP) {
		fail(c, root, "the configuration must be a mapping of settings");
		goto out;
	}
	*out = root;
	root = NULL;
	rc = 0;
out:
	node_free(root);
	yaml_parser_delete(&p);
	return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Stage 2: typed access                                                                       */

static bool is_null(const struct node *n)
{
	return n->kind == NODE_SCALAR && n->plain &&
	       (n->str[0] == '\0' || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
		strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0);
}

/* Copies at most 40 characters of s for a one-line message: controls become '?', and "..."
 * marks a cut. Returns buf. */
static const char *printable(const char *s, char *buf, size_t len)
{
	char text[48];
	size_t i;
	for (i = 0; s[i] != '\0' && i < 40; i++)
		text[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
	text[i] = '\0';
	snprintf(buf, len, "%s%s", text, s[i] != '\0' ? "..." : "");
	return buf;
}

/* Describes what a node holds, for "expected X, got Y" messages. */
static const char *describe(const struct node *n, char *buf, size_t len)
{
	char text[64];
	if (n->kind == NODE_MAP)
		return "a mapping";
	if (n->kind == NODE_LIST)
		return "a list";
	if (is_null(n))
		return "nothing";
	snprintf(buf, len, "%s\"%s\"", n->plain ? "" : "the string ",
		 printable(n->str, text, sizeof(text)));
	return buf;
}

static int fail_type(struct ctx *c, const struct node *n, const char *what, const char *expected)
{
	char buf[80];
	return fail(c, n, "%s: expected %s, got %s", what, expected, describe(n, buf, sizeof(buf)));
}

/* Checks that m is a mapping whose keys are all in the NULL-terminated list allowed, each at
 * most once. what names the mapping in messages ("in limits"). */
static int check_keys(struct ctx *c, const struct node *m, const char *what,
		      const char *const *allowed)
{
	if (m->kind != NODE_MAP)
		return fail_type(c, m, what, "a mapping");
	for (size_t i = 0; i < map_pairs(m); i++) {
		const struct node *k = map_key(m, i);
		size_t a;
		if (k->str[0] == '\0')
			return fail(c, k, "empty key in %s", what);
		for (a = 0; allowed[a] != NULL; a++)
			if (strcmp(k->str, allowed[a]) == 0)
				break;
		if (allowed[a] == NULL) {
			char list[512];
			size_t off = 0;
			list[0] = '\0';
			for (a = 0; allowed[a] != NULL && off < sizeof(list); a++) {
				int w = snprintf(list + off, sizeof(list) - off, "%s%s",
						 a ? ", " : "", allowed[a]);
				off += w > 0 ? (size_t)w : 0;
			}
			char buf[64];
			return fail(c, k, "unknown key \"%s\" in %s (allowed: %s)",
				    printable(k->str, buf, sizeof(buf)), what, list);
		}
		/* Every earlier key is known and distinct, so this loop stays short. */
		for (size_t j = 0; j < i; j++)
			if (strcmp(map_key(m, j)->str, k->str) == 0)
				return fail(c, k, "duplicate key \"%s\" (first at line %d)", k->str,
					    map_key(m, j)->line);
	}
	return 0;
}

/* The value of key name in mapping m, or NULL; the key node with map_keynode(). */
static const struct node *map_get(const struct node *m, const char *name)
{
	for (size_t i = 0; i < map_pairs(m); i++)
		if (strcmp(map_key(m, i)->str, name) == 0)
			return map_val(m, i);
	return NULL;
}

static const struct node *map_keynode(const struct node *m, const char *name)
{
	for (size_t i = 0; i < map_pairs(m); i++)
		if (strcmp(map_key(m, i)->str, name) == 0)
			return map_key(m, i);
	return NULL;
}

/* The value of the required key name in mapping m; on failure reports at the mapping. */
static int map_need(struct ctx *c, const struct node *m, const char *name, const char *what,
		    const struct node **out)
{
	if ((*out = map_get(m, name)) == NULL)
		return fail(c, m, "%s: missing required key \"%s\"", what, name);
	return 0;
}

/* A string scalar (quoted or plain, not null); *out points into the node. */
static int get_text(struct ctx *c, const struct node *n, const char *what, const char **out)
{
	if (n->kind != NODE_SCALAR || is_null(n))
		return fail_type(c, n, what, "a string");
	*out = n->str;
	return 0;
}

/* Like get_text() but non-empty and copied into *out (owned by the caller; NULL on failure). */
static int get_string(struct ctx *c, const struct node *n, const char *what, char **out)
{
	const char *s = NULL;
	if (get_text(c, n, what, &s) < 0)
		return -1;
	if (s[0] == '\0')
		return fail(c, n, "%s must not be empty", what);
	if ((*out = strdup(s)) == NULL)
		return oom(c);
	return 0;
}

static int get_uint(struct ctx *c, const struct node *n, const char *what, uint64_t min,
		    uint64_t max, uint64_t *out)
{
	if (n->kind != NODE_SCALAR || !n->plain || is_null(n))
		return fail_type(c, n, what, "an integer");
	const char *s = n->str;
	bool neg = false, big = false;
	uint64_t v = 0;
	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	if (*s == '\0')
		return fail_type(c, n, what, "an integer");
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return fail_type(c, n, what, "an integer");
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			big = true;
		else
			v = v * 10 + d;
	}
	if ((neg && (v != 0 || big)) || big || v < min || v > max) {
		if (neg && min == 0)
			return fail(c, n, "%s must not be negative (got %s)", what, n->str);
		if (min == 0)
			return fail(c, n, "%s must be at most %llu (got %s)", what,
				    (unsigned long long)max, n->str);
		return fail(c, n, "%s must be between %llu and %llu (got %s)", what,
			    (unsigned long long)min, (unsigned long long)max, n->str);
	}
	*out = v;
	return 0;
}

static int get_u32(struct ctx *c, const struct node *n, const char *what, uint32_t min,
		   uint32_t max, uint32_t *out)
{
	uint64_t v;
	if (get_uint(c, n, what, min, max, &v) < 0)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* A decimal number: [+-]digits[.digits][e[+-]digits] (a leading or trailing point is fine). */
static int get_double(struct ctx *c, const struct node *n, const char *what, double *out)
{
	if (n->kind != NODE_SCALAR || !n->plain || is_null(n))
		return fail_type(c, n, what, "a number");
	const char *s = n->str;
	size_t digits = 0;
	if (*s == '-' || *s == '+')
		s++;
	for (; isdigit((unsigned char)*s); s++)
		digits++;
	if (*s == '.')
		for (s++; isdigit((unsigned char)*s); s++)
			digits++;
	if (digits > 0 && (*s == 'e' || *s == 'E')) {
		s++;
		if (*s == '-' || *s == '+')
			s++;
		if (!isdigit((unsigned char)*s))
			return fail_type(c, n, what, "a number");
		while (isdigit((unsigned char)*s))
			s++;
	}
	if (digits == 0 || *s != '\0')
		return fail_type(c, n, what, "a number");
	/* The text is plain decimal, so strtod (C locale: the daemon never calls setlocale)
	 * cannot pick up hex, inf or nan. */
	double v = strtod(n->str, NULL);
	if (!isfinite(v))
		return fail(c, n, "%s is too large (got %s)", what, n->str);
	*out = v;
	return 0;
}

/* A number within [lo, hi]; an open end excludes the bound itself. */
static int get_double_in(struct ctx *c, const struct node *n, const char *what, double lo,
			 bool lo_open, double hi, bool hi_open, double *out)
{
	double v;
	if (get_double(c, n, what, &v) < 0)
		return -1;
	if (v < lo || (lo_open && v == lo) || v > hi || (hi_open && v == hi))
		return fail(c, n, "%s must be %s %g and %s %g (got %s)", what,
			    lo_open ? "greater than" : "at least", lo,
			    hi_open ? "less than" : "at most", hi, n->str);
	*out = v;
	return 0;
}

static int get_double_min(struct ctx *c, const struct node *n, const char *what, double lo,
			  bool lo_open, double *out)
{
	double v;
	if (get_double(c, n, what, &v) < 0)
		return -1;
	if (v < lo || (lo_open && v == lo))
		return fail(c, n, "%s must be %s %g (got %s)", what,
			    lo_open ? "greater than" : "at least", lo, n->str);
	*out = v;
	return 0;
}

/*
 * A percentage with at most two decimals, parsed from the text exactly (no floating point) into
 * basis points: "12.5" -> 1250. Trailing zeros beyond two decimals are fine ("12.500").
 */
static int get_percent_bp(struct ctx *c, const struct node *n, const char *what, uint32_t *out)
{
	static const char expected[] = "a percentage (a number with at most 2 decimals)";
	if (n->kind != NODE_SCALAR || !n->plain || is_null(n))
		return fail_type(c, n, what, expected);
	const char *s = n->str;
	bool neg = false, big = false;
	uint64_t whole = 0, frac = 0;
	size_t ndig = 0, nfrac = 0;
	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	for (; isdigit((unsigned char)*s); s++, ndig++) {
		if (whole > 100000)
			big = true;
		else
			whole = whole * 10 + (uint64_t)(*s - '0');
	}
	if (*s == '.') {
		for (s++; isdigit((unsigned char)*s); s++, nfrac++) {
			if (nfrac < 2)
				frac = frac * 10 + (uint64_t)(*s - '0');
			else if (*s != '0')
				return fail(c, n,
					    "%s %s has more than 2 decimals (one bucket is 0.01%%)",
					    what, n->str);
		}
		if (nfrac == 0)
			return fail_type(c, n, what, expected);
	}
	if (ndig == 0 || *s != '\0')
		return fail_type(c, n, what, expected);
	if (nfrac == 1)
		frac *= 10;
	uint64_t bp = whole * 100 + frac;
	if (big || bp > 10000 || (neg && bp != 0))
		return fail(c, n, "%s must be between 0 and 100 (got %s)", what, n->str);
	*out = (uint32_t)bp;
	return 0;
}

static int get_bool(struct ctx *c, const struct node *n, const char *what, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on"};
	static const char *const no[] = {"false", "no", "off"};
	if (n->kind == NODE_SCALAR && n->plain) {
		for (size_t i = 0; i < 3; i++) {
			if (strcasecmp(n->str, yes[i]) == 0) {
				*out = true;
				return 0;
			}
			if (strcasecmp(n->str, no[i]) == 0) {
				*out = false;
				return 0;
			}
		}
	}
	return fail_type(c, n, what, "true or false");
}

/* One of the NULL-terminated words in choices; stores its index. */
static int get_choice(struct ctx *c, const struct node *n, const char *what,
		      const char *const *choices, int *out)
{
	const char *s = NULL;
	if (get_text(c, n, what, &s) < 0)
		return -1;
	for (int i = 0; choices[i] != NULL; i++) {
		if (strcmp(s, choices[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	char list[160];
	size_t off = 0;
	list[0] = '\0';
	for (int i = 0; choices[i] != NULL && off < sizeof(list); i++) {
		int w = snprintf(list + off, sizeof(list) - off, "%s%s", i ? "|" : "", choices[i]);
		off += w > 0 ? (size_t)w : 0;
	}
	char buf[80];
	return fail(c, n, "%s must be one of %s (got %s)", what, list,
		    describe(n, buf, sizeof(buf)));
}

/* A list with between min and max items. */
static int get_list(struct ctx *c, const struct node *n, const char *what, size_t min, size_t max)
{
	if (n->kind != NODE_LIST)
		return fail_type(c, n, what, "a list");
	if (n->nkids < min)
		return fail(c, n, "%s needs at least %zu item%s", what, min, min == 1 ? "" : "s");
	if (n->nkids > max)
		return fail(c, n, "%s has %zu items (at most %zu)", what, n->nkids, max);
	return 0;
}

/* Names of backends, experiments, variants and metrics end up in headers, JSON logs and metric
 * labels, so they keep to a small, safe alphabet. */
static int check_name(struct ctx *c, const struct node *n, const char *what, const char *s)
{
	size_t len = strlen(s);
	bool ok = len > 0 && len <= MAX_NAME;
	for (size_t i = 0; ok && i < len; i++)
		ok = isalnum((unsigned char)s[i]) || s[i] == '.' || s[i] == '_' || s[i] == '-';
	if (!ok)
		return fail(c, n, "%s \"%s\" must be 1 to %d letters, digits, '.', '_' or '-'",
			    what, s, MAX_NAME);
	return 0;
}

/* An HTTP token (RFC 9110 tchar): header names, cookie names, methods. */
static int check_token(struct ctx *c, const struct node *n, const char *what, const char *s)
{
	bool ok = s[0] != '\0';
	for (const char *p = s; ok && *p != '\0'; p++)
		ok = isalnum((unsigned char)*p) || strchr("!#$%&'*+-.^_`|~", *p) != NULL;
	if (!ok)
		return fail(c, n, "%s \"%s\" is not a valid HTTP token", what, s);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Addresses                                                                                   */

int conf_addr_parse(const char *text, struct conf_addr *a, char *err, size_t errlen)
{
	char host[256], port[8];
	const char *h, *pt;
	size_t hlen;
	bool v6 = false;

	if (text == NULL || text[0] == '\0') {
		snprintf(err, errlen, "empty address");
		return -1;
	}
	if (strstr(text, "://") != NULL) {
		snprintf(err, errlen, "a scheme is not allowed here (expected host:port)");
		return -1;
	}
	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (close == NULL || close[1] != ':') {
			snprintf(err, errlen, "expected [address]:port");
			return -1;
		}
		h = text + 1;
		hlen = (size_t)(close - h);
		pt = close + 2;
		v6 = true;
	} else {
		const char *colon = strrchr(text, ':');
		if (colon == NULL) {
			snprintf(err, errlen, "missing port (expected host:port)");
			return -1;
		}
		h = text;
		hlen = (size_t)(colon - text);
		pt = colon + 1;
		if (memchr(h, ':', hlen) != NULL) {
			snprintf(err, errlen, "IPv6 addresses need brackets, as in [::1]:8080");
			return -1;
		}
	}
	if (hlen == 0) {
		snprintf(err, errlen, "missing host");
		return -1;
	}
	if (hlen >= sizeof(host)) {
		snprintf(err, errlen, "host name too long");
		return -1;
	}
	size_t plen = strlen(pt);
	unsigned long pv = 0;
	bool pok = plen > 0 && plen <= 5;
	for (size_t i = 0; pok && i < plen; i++) {
		pok = pt[i] >= '0' && pt[i] <= '9';
		pv = pv * 10 + (unsigned long)(pt[i] - '0');
	}
	if (!pok || pv < 1 || pv > 65535) {
		snprintf(err, errlen, "bad port \"%s\" (must be 1-65535)", pt);
		return -1;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	snprintf(port, sizeof(port), "%lu", pv);

	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = v6 ? AF_INET6 : AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (v6 ? AI_NUMERICHOST : 0);
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0 || res == NULL) {
		snprintf(err, errlen, "cannot resolve \"%s\": %s", host,
			 rc != 0 ? gai_strerror(rc) : "no address");
		if (res != NULL)
			freeaddrinfo(res);
		return -1;
	}
	char *copy = strdup(text);
	if (copy == NULL || res->ai_addrlen > sizeof(a->ss)) {
		snprintf(err, errlen, "out of memory");
		free(copy);
		freeaddrinfo(res);
		return -1;
	}
	memset(&a->ss, 0, sizeof(a->ss));
	memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
	a->sslen = res->ai_addrlen;
	a->text = copy;
	freeaddrinfo(res);
	return 0;
}

/* Parses the address scalar n into a (what names it in messages). */
static int get_addr(struct ctx *c, const struct node *n, const char *what, struct conf_addr *a)
{
	const char *s = NULL;
	char reason[160];
	if (get_text(c, n, what, &s) < 0)
		return -1;
	if (conf_addr_parse(s, a, reason, sizeof(reason)) < 0) {
		if (strcmp(reason, "out of memory") == 0)
			return oom(c);
		return fail(c, n, "%s \"%s\": %s", what, s, reason);
	}
	return 0;
}

/* A server: "host:port", "[v6]:port", "http://host:port" or "https://host:port". */
static int get_server(struct ctx *c, const struct node *n, struct conf_server *s)
{
	const char *text = NULL, *rest;
	char reason[160];

	if (get_text(c, n, "server", &text) < 0)
		return -1;
	s->tls = false;
	s->id = -1;
	rest = text;
	if (strncmp(text, "https://", 8) == 0) {
		s->tls = true;
		rest = text + 8;
	} else if (strncmp(text, "http://", 7) == 0) {
		rest = text + 7;
	} else if (strstr(text, "://") != NULL) {
		return fail(c, n, "server \"%s\": unsupported scheme (use http:// or https://)",
			    text);
	}
	if (strchr(rest, '/') != NULL)
		return fail(c, n, "server \"%s\": a server is host:port, without a path", text);
	if (conf_addr_parse(rest, &s->addr, reason, sizeof(reason)) < 0) {
		if (strcmp(reason, "out of memory") == 0)
			return oom(c);
		return fail(c, n, "server \"%s\": %s", text, reason);
	}
	return 0;
}

static bool addr_equal(const struct conf_addr *a, const struct conf_addr *b)
{
	return a->sslen == b->sslen && memcmp(&a->ss, &b->ss, a->sslen) == 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Stage 3: compilation                                                                        */

struct conf_backend *conf_backend_find(const struct conf *c, const char *name)
{
	if (c == NULL || name == NULL)
		return NULL;
	for (size_t i = 0; i < c->nbackends; i++)
		if (c->backends[i].name != NULL && strcmp(c->backends[i].name, name) == 0)
			return &c->backends[i];
	return NULL;
}

struct conf_experiment *conf_experiment_find(const struct conf *c, const char *name)
{
	if (c == NULL || name == NULL)
		return NULL;
	for (size_t i = 0; i < c->nexperiments; i++)
		if (c->experiments[i].name != NULL && strcmp(c->experiments[i].name, name) == 0)
			return &c->experiments[i];
	return NULL;
}

struct conf_variant *conf_variant_find(const struct conf_experiment *e, const char *name)
{
	if (e == NULL || name == NULL)
		return NULL;
	for (size_t i = 0; i < e->nvariants; i++)
		if (e->variants[i].name != NULL && strcmp(e->variants[i].name, name) == 0)
			return &e->variants[i];
	return NULL;
}

/* Resolves a backend reference; the error lists the defined backends. */
static int get_backend_ref(struct ctx *c, const struct conf *conf, const struct node *n,
			   const char *what, struct conf_backend **out)
{
	const char *s = NULL;
	if (get_text(c, n, what, &s) < 0)
		return -1;
	if ((*out = conf_backend_find(conf, s)) != NULL)
		return 0;
	char list[256];
	size_t off = 0;
	list[0] = '\0';
	for (size_t i = 0; i < conf->nbackends && off < sizeof(list); i++) {
		int w = snprintf(list + off, sizeof(list) - off, "%s%s", i ? ", " : "",
				 conf->backends[i].name);
		off += w > 0 ? (size_t)w : 0;
	}
	return fail(c, n, "%s: unknown backend \"%s\" (defined: %s)", what, s, list);
}

static int compile_listens(struct ctx *c, const struct node *v, struct conf *conf)
{
	static const char *const keys[] = {"addr", "tls", NULL};
	static const char *const tls_keys[] = {"cert", "key", NULL};

	if (get_list(c, v, "listen", 1, MAX_LISTENS) < 0)
		return -1;
	if ((conf->listens = calloc(v->nkids, sizeof(*conf->listens))) == NULL)
		return oom(c);
	conf->nlistens = v->nkids;
	for (size_t i = 0; i < v->nkids; i++) {
		const struct node *m = v->kids[i], *addr, *tls;
		struct conf_listen *l = &conf->listens[i];
		if (check_keys(c, m, "listen", keys) < 0 ||
		    map_need(c, m, "addr", "listen", &addr) < 0 ||
		    get_addr(c, addr, "listen.addr", &l->addr) < 0)
			return -1;
		for (size_t j = 0; j < i; j++)
			if (addr_equal(&conf->listens[j].addr, &l->addr))
				return fail(c, addr,
					    "listen.addr \"%s\" is the same address as line %d",
					    l->addr.text, map_get(v->kids[j], "addr")->line);
		if ((tls = map_get(m, "tls")) != NULL) {
			const struct node *cert, *key;
			if (check_keys(c, tls, "listen.tls", tls_keys) < 0)
				return -1;
			cert = map_get(tls, "cert");
			key = map_get(tls, "key");
			if (cert == NULL || key == NULL)
				return fail(c, tls,
					    "listen.tls needs both cert and key (missing %s)",
					    cert == NULL ? "cert" : "key");
			if (get_string(c, cert, "listen.tls.cert", &l->tls_cert) < 0 ||
			    get_string(c, key, "listen.tls.key", &l->tls_key) < 0)
				return -1;
		}
	}
	return 0;
}

static int compile_admin(struct ctx *c, const struct node *v, struct conf *conf)
{
	static const char *const keys[] = {"addr", "token_file", NULL};
	const struct node *n;

	if (check_keys(c, v, "admin", keys) < 0)
		return -1;
	if ((n = map_get(v, "addr")) != NULL && get_addr(c, n, "admin.addr", &conf->admin_addr) < 0)
		return -1;
	if ((n = map_get(v, "token_file")) != NULL &&
	    get_string(c, n, "admin.token_file", &conf->admin_token_file) < 0)
		return -1;
	return 0;
}

static int compile_log(struct ctx *c, const struct node *v, struct conf *conf)
{
	static const char *const keys[] = {"error",    "level",		"outcomes", "access",
					   "fsync_ms", "max_pending_bytes", NULL};
	const struct node *n;

	if (check_keys(c, v, "log", keys) < 0)
		return -1;
	if ((n = map_get(v, "error")) != NULL &&
	    get_string(c, n, "log.error", &conf->log_error) < 0)
		return -1;
	if ((n = map_get(v, "level")) != NULL) {
		const char *s = NULL;
		if (get_text(c, n, "log.level", &s) < 0)
			return -1;
		if (log_level_parse(s) < 0)
			return fail(
			    c, n, "log.level must be one of error|warn|info|debug (got \"%s\")", s);
		if ((conf->log_level = strdup(s)) == NULL)
			return oom(c);
	}
	if ((n = map_get(v, "outcomes")) != NULL &&
	    get_string(c, n, "log.outcomes", &conf->log_outcomes) < 0)
		return -1;
	if ((n = map_get(v, "access")) != NULL &&
	    get_string(c, n, "log.access", &conf->log_access) < 0)
		return -1;
	if ((n = map_get(v, "fsync_ms")) != NULL &&
	    get_u32(c, n, "log.fsync_ms", 0, 3600000, &conf->log_fsync_ms) < 0)
		return -1;
	/* from one pipe buffer up to 16 GiB */
	if ((n = map_get(v, "max_pending_bytes")) != NULL &&
	    get_uint(c, n, "log.max_pending_bytes", 65536, 1ull << 34, &conf->log_max_pending) < 0)
		return -1;
	return 0;
}

static int compile_limits(struct ctx *c, const struct node *v, struct conf *conf)
{
	/* Each limit, where it goes (one of p32 and p64) and its bounds; the defaults are set by
	 * conf_defaults(). */
	struct conf_limits *l = &conf->limits;
	const struct {
		const char *key;
		uint32_t *p32;
		uint64_t *p64;
		uint64_t min, max;
	} specs[] = {
	    {"max_header_bytes", &l->max_header_bytes, NULL, 1024, 1u << 20},
	    {"max_headers", &l->max_headers, NULL, 1, 10000},
	    {"max_request_line", &l->max_request_line, NULL, 256, 1u << 20},
	    {"max_body_bytes", NULL, &l->max_body_bytes, 0, 1ull << 40},
	    {"client_header_timeout_ms", &l->client_header_timeout_ms, NULL, 1, DAY_MS},
	    {"client_timeout_ms", &l->client_timeout_ms, NULL, 1, DAY_MS},
	    {"idle_timeout_ms", &l->idle_timeout_ms, NULL, 1, DAY_MS},
	    {"upstream_connect_timeout_ms", &l->upstream_connect_timeout_ms, NULL, 1, DAY_MS},
	    {"upstream_timeout_ms", &l->upstream_timeout_ms, NULL, 1, DAY_MS},
	    {"max_connections", &l->max_connections, NULL, 1, 10000000},
	};
	enum { NSPECS = sizeof(specs) / sizeof(specs[0]) };
	const char *keys[NSPECS + 1];

	for (size_t i = 0; i < NSPECS; i++)
		keys[i] = specs[i].key;
	keys[NSPECS] = NULL;
	if (check_keys(c, v, "limits", keys) < 0)
		return -1;
	for (size_t i = 0; i < map_pairs(v); i++) {
		size_t s = 0;
		while (strcmp(specs[s].key, map_key(v, i)->str) != 0)
			s++;
		char what[64];
		uint64_t val = 0;
		snprintf(what, sizeof(what), "limits.%s", specs[s].key);
		if (get_uint(c, map_val(v, i), what, specs[s].min, specs[s].max, &val) < 0)
			return -1;
		if (specs[s].p64 != NULL)
			*specs[s].p64 = val;
		else
			*specs[s].p32 = (uint32_t)val;
	}
	return 0;
}

static int compile_outcomes(struct ctx *c, const struct node *v, struct conf *conf)
{
	static const char *const keys[] = {"rid_window_s", "max_rids", NULL};
	const struct node *n;

	if (check_keys(c, v, "outcomes", keys) < 0)
		return -1;
	/* from a second to a week */
	if ((n = map_get(v, "rid_window_s")) != NULL &&
	    get_u32(c, n, "outcomes.rid_window_s", 1, 604800, &conf->outcomes_rid_window_s) < 0)
		return -1;
	/* 80 bytes an id: from 80 KB to 4 GB */
	if ((n = map_get(v, "max_rids")) != NULL &&
	    get_u32(c, n, "outcomes.max_rids", 1000, 50000000, &conf->outcomes_max_rids) < 0)
		return -1;
	return 0;
}

static int compile_health(struct ctx *c, const struct node *v, struct conf_backend *b)
{
	static const char *const keys[] = {"path", "interval_ms", "timeout_ms",
					   "rise", "fall",	  NULL};
	const struct node *n;

	if (check_keys(c, v, "health", keys) < 0 || map_need(c, v, "path", "health", &n) < 0 ||
	    get_string(c, n, "health.path", &b->health_path) < 0)
		return -1;
	if (b->health_path[0] != '/')
		return fail(c, n, "health.path must start with '/' (got \"%s\")", b->health_path);
	if ((n = map_get(v, "interval_ms")) != NULL &&
	    get_u32(c, n, "health.interval_ms", 10, DAY_MS, &b->health_interval_ms) < 0)
		return -1;
	if ((n = map_get(v, "timeout_ms")) != NULL &&
	    get_u32(c, n, "health.timeout_ms", 1, DAY_MS, &b->health_timeout_ms) < 0)
		return -1;
	if ((n = map_get(v, "rise")) != NULL &&
	    get_u32(c, n, "health.rise", 1, 100, &b->health_rise) < 0)
		return -1;
	if ((n = map_get(v, "fall")) != NULL &&
	    get_u32(c, n, "health.fall", 1, 100, &b->health_fall) < 0)
		return -1;
	/* A probe that outlives the interval would overlap the next one. */
	if (b->health_timeout_ms > b->health_interval_ms) {
		if ((n = map_get(v, "timeout_ms")) == NULL)
			n = map_get(v, "interval_ms");
		return fail(c, n, "health.timeout_ms (%u) must not exceed health.interval_ms (%u)",
			    b->health_timeout_ms, b->health_interval_ms);
	}
	return 0;
}

static int compile_backend(struct ctx *c, const struct node *v, struct conf_backend *b)
{
	static const char *const keys[] = {"servers", "health", "ca_file", "verify", NULL};
	const struct node *n, *servers;

	b->health_interval_ms = 2000;
	b->health_timeout_ms = 1000;
	b->health_rise = 2;
	b->health_fall = 3;
	b->verify = true;
	if (check_keys(c, v, "backend", keys) < 0 ||
	    map_need(c, v, "servers", "backend", &servers) < 0 ||
	    get_list(c, servers, "servers", 1, MAX_SERVERS) < 0)
		return -1;
	if ((b->servers = calloc(servers->nkids, sizeof(*b->servers))) == NULL)
		return oom(c);
	for (size_t i = 0; i < servers->nkids; i++) {
		if (get_server(c, servers->kids[i], &b->servers[i]) < 0)
			return -1;
		b->nservers = i + 1;
	}
	if ((n = map_get(v, "health")) != NULL && compile_health(c, n, b) < 0)
		return -1;
	if ((n = map_get(v, "ca_file")) != NULL && get_string(c, n, "ca_file", &b->ca_file) < 0)
		return -1;
	if ((n = map_get(v, "verify")) != NULL && get_bool(c, n, "verify", &b->verify) < 0)
		return -1;
	return 0;
}

static int compile_backends(struct ctx *c, const struct node *v, struct conf *conf)
{
	if (v->kind != NODE_MAP)
		return fail_type(c, v, "backends", "a mapping of backend names");
	size_t n = map_pairs(v);
	if (n == 0)
		return fail(c, v, "backends must define at least one backend");
	if (n > MAX_BACKENDS)
		return fail(c, v, "backends: at most %d backends", MAX_BACKENDS);
	if ((conf->backends = calloc(n, sizeof(*conf->backends))) == NULL)
		return oom(c);
	conf->nbackends = n;
	for (size_t i = 0; i < n; i++) {
		const struct node *k = map_key(v, i);
		if (check_name(c, k, "backend name", k->str) < 0)
			return -1;
		for (size_t j = 0; j < i; j++)
			if (strcmp(map_key(v, j)->str, k->str) == 0)
				return fail(c, k, "duplicate backend \"%s\" (first at line %d)",
					    k->str, map_key(v, j)->line);
		if ((conf->backends[i].name = strdup(k->str)) == NULL)
			return oom(c);
		if (compile_backend(c, map_val(v, i), &conf->backends[i]) < 0)
			return -1;
	}
	return 0;
}

static int compile_match(struct ctx *c, const struct node *v, struct conf_experiment *e)
{
	static const char *const keys[] = {"path_prefix", "host", "method", NULL};
	const struct node *n;

	if (check_keys(c, v, "match", keys) < 0)
		return -1;
	if ((n = map_get(v, "path_prefix")) != NULL) {
		if (get_string(c, n, "match.path_prefix", &e->match_path_prefix) < 0)
			return -1;
		if (e->match_path_prefix[0] != '/')
			return fail(c, n, "match.path_prefix must start with '/' (got \"%s\")",
				    e->match_path_prefix);
	}
	if ((n = map_get(v, "host")) != NULL) {
		if (get_string(c, n, "match.host", &e->match_host) < 0)
			return -1;
		for (char *p = e->match_host; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
	}
	if ((n = map_get(v, "method")) != NULL) {
		if (get_string(c, n, "match.method", &e->match_method) < 0 ||
		    check_token(c, n, "match.method", e->match_method) < 0)
			return -1;
		for (char *p = e->match_method; *p != '\0'; p++)
			*p = (char)toupper((unsigned char)*p);
	}
	return 0;
}

static int compile_unit(struct ctx *c, const struct node *v, struct conf_experiment *e)
{
	static const char *const keys[] = {"header", "cookie", "query", NULL};
	const struct node *n;

	if (check_keys(c, v, "unit", keys) < 0)
		return -1;
	if (map_pairs(v) != 1) {
		const struct node *at = map_pairs(v) == 0 ? v : map_key(v, 1);
		return fail(c, at, "unit needs exactly one of header, cookie or query");
	}
	n = map_val(v, 0);
	const char *k = map_key(v, 0)->str;
	char what[16];
	snprintf(what, sizeof(what), "unit.%s", k);
	if (get_string(c, n, what, &e->unit_name) < 0)
		return -1;
	if (strcmp(k, "header") == 0) {
		e->unit = CONF_UNIT_HEADER;
	} else if (strcmp(k, "cookie") == 0) {
		e->unit = CONF_UNIT_COOKIE;
	} else {
		e->unit = CONF_UNIT_QUERY;
		/* Query parameters are matched byte for byte, so keep to unreserved characters. */
		for (const char *p = e->unit_name; *p != '\0'; p++)
			if (!isalnum((unsigned char)*p) && strchr("-._~", *p) == NULL)
				return fail(c, n,
					    "unit.query \"%s\" may contain only letters, "
					    "digits, '-', '.', '_' and '~'",
					    e->unit_name);
		return 0;
	}
	return check_token(c, n, what, e->unit_name);
}

/* Formats basis points as a percentage without trailing zeros: 10500 -> "105", 9950 -> "99.5". */
static void format_bp(uint64_t bp, char *buf, size_t len)
{
	if (bp % 100 == 0)
		snprintf(buf, len, "%llu", (unsigned long long)(bp / 100));
	else if (bp % 10 == 0)
		snprintf(buf, len, "%llu.%llu", (unsigned long long)(bp / 100),
			 (unsigned long long)(bp % 100 / 10));
	else
		snprintf(buf, len, "%llu.%02llu", (unsigned long long)(bp / 100),
			 (unsigned long long)(bp % 100));
}

static int compile_variants(struct ctx *c, const struct node *key, const struct node *v,
			    const struct conf *conf, struct conf_experiment *e)
{
	static const char *const keys[] = {"name", "backend", "weight", NULL};
	uint64_t sum = 0;

	if (v->kind != NODE_LIST)
		return fail_type(c, v, "variants", "a list");
	if (v->nkids < 2)
		return fail(c, key, "an experiment needs at least 2 variants (has %zu)", v->nkids);
	if (v->nkids > MAX_VARIANTS)
		return fail(c, key, "an experiment has at most %d variants (has %zu)", MAX_VARIANTS,
			    v->nkids);
	if ((e->variants = calloc(v->nkids, sizeof(*e->variants))) == NULL)
		return oom(c);
	e->nvariants = v->nkids;
	for (size_t i = 0; i < v->nkids; i++) {
		const struct node *m = v->kids[i], *name, *backend, *weight;
		struct conf_variant *var = &e->variants[i];
		if (check_keys(c, m, "variant", keys) < 0 ||
		    map_need(c, m, "name", "variant", &name) < 0 ||
		    map_need(c, m, "backend", "variant", &backend) < 0 ||
		    map_need(c, m, "weight", "variant", &weight) < 0 ||
		    get_string(c, name, "variant name", &var->name) < 0 ||
		    check_name(c, name, "variant name", var->name) < 0)
			return -1;
		for (size_t j = 0; j < i; j++)
			if (strcmp(e->variants[j].name, var->name) == 0)
				return fail(c, name, "duplicate variant \"%s\" in this experiment",
					    var->name);
		if (get_backend_ref(c, conf, backend, "variant backend", &var->backend) < 0 ||
		    get_percent_bp(c, weight, "weight", &var->weight_bp) < 0)
			return -1;
		sum += var->weight_bp;
	}
	if (sum != CONF_BUCKETS) {
		char buf[32];
		format_bp(sum, buf, sizeof(buf));
		return fail(c, key, "weights sum to %s (must be 100)", buf);
	}
	/* Contiguous ranges in declared order: growing the last variant only moves users into
	 * it, never between the others. */
	uint32_t lo = 0;
	for (size_t i = 0; i < e->nvariants; i++) {
		e->variants[i].lo = lo;
		lo += e->variants[i].weight_bp;
		e->variants[i].hi = lo;
	}
	return 0;
}

static int compile_shadow(struct ctx *c, const struct node *v, const struct conf *conf,
			  struct conf_experiment *e)
{
	static const char *const keys[] = {"backend", "percent", "compare", NULL};
	static const char *const cmp_keys[] = {"json_field", "tolerance", NULL};
	const struct node *n, *cmp;

	e->shadow.percent = 100;
	if (check_keys(c, v, "shadow", keys) < 0 || map_need(c, v, "backend", "shadow", &n) < 0 ||
	    get_backend_ref(c, conf, n, "shadow.backend", &e->shadow.backend) < 0)
		return -1;
	if ((n = map_get(v, "percent")) != NULL &&
	    get_double_in(c, n, "shadow.percent", 0, false, 100, false, &e->shadow.percent) < 0)
		return -1;
	if ((cmp = map_get(v, "compare")) != NULL) {
		if (check_keys(c, cmp, "shadow.compare", cmp_keys) < 0)
			return -1;
		if ((n = map_get(cmp, "json_field")) != NULL &&
		    get_string(c, n, "shadow.compare.json_field", &e->shadow.compare_json_field) <
			0)
			return -1;
		if ((n = map_get(cmp, "tolerance")) != NULL &&
		    get_double_min(c, n, "shadow.compare.tolerance", 0, false,
				   &e->shadow.compare_tolerance) < 0)
			return -1;
	}
	return 0;
}

static int compile_metrics(struct ctx *c, const struct node *v, struct conf_experiment *e)
{
	static const char *const keys[] = {"name",    "kind",	"source", "goal", "guardrail",
					   "primary", "margin", "max",	  NULL};
	static const char *const kinds[] = {"binary", "continuous", NULL};
	static const char *const sources[] = {"status_5xx", "status_4xx", "latency_ms", "outcome",
					      NULL};
	static const char *const goals[] = {"increase", "decrease", NULL};
	const struct node *primary_at = NULL;

	if (get_list(c, v, "metrics", 0, MAX_METRICS) < 0)
		return -1;
	if (v->nkids == 0)
		return 0;
	if ((e->metrics = calloc(v->nkids, sizeof(*e->metrics))) == NULL)
		return oom(c);
	e->nmetrics = v->nkids;
	for (size_t i = 0; i < v->nkids; i++) {
		const struct node *m = v->kids[i], *name, *kind, *goal, *n;
		struct conf_metric *mt = &e->metrics[i];
		int k, src = CONF_SRC_OUTCOME, g;
		if (check_keys(c, m, "metric", keys) < 0 ||
		    map_need(c, m, "name", "metric", &name) < 0 ||
		    map_need(c, m, "kind", "metric", &kind) < 0 ||
		    map_need(c, m, "goal", "metric", &goal) < 0 ||
		    get_string(c, name, "metric name", &mt->name) < 0 ||
		    check_name(c, name, "metric name", mt->name) < 0)
			return -1;
		for (size_t j = 0; j < i; j++)
			if (strcmp(e->metrics[j].name, mt->name) == 0)
				return fail(c, name, "duplicate metric \"%s\" in this experiment",
					    mt->name);
		if (get_choice(c, kind, "metric kind", kinds, &k) < 0)
			return -1;
		mt->kind = (enum conf_metric_kind)k;
		if ((n = map_get(m, "source")) != NULL) {
			if (get_choice(c, n, "metric source", sources, &src) < 0)
				return -1;
			if ((src == CONF_SRC_STATUS_5XX || src == CONF_SRC_STATUS_4XX) &&
			    mt->kind != CONF_METRIC_BINARY)
				return fail(c, n, "metric source %s needs kind binary",
					    sources[src]);
			if (src == CONF_SRC_LATENCY_MS && mt->kind != CONF_METRIC_CONTINUOUS)
				return fail(c, n, "metric source latency_ms needs kind continuous");
		}
		mt->source = (enum conf_metric_source)src;
		if (get_choice(c, goal, "metric goal", goals, &g) < 0)
			return -1;
		mt->goal = (enum conf_goal)g;
		if ((n = map_get(m, "guardrail")) != NULL &&
		    get_bool(c, n, "guardrail", &mt->guardrail) < 0)
			return -1;
		if ((n = map_get(m, "primary")) != NULL) {
			if (get_bool(c, n, "primary", &mt->primary) < 0)
				return -1;
			if (mt->primary && primary_at != NULL)
				return fail(
				    c, map_keynode(m, "primary"),
				    "only one metric may be primary (already \"%s\" at line %d)",
				    map_get(primary_at, "name")->str, primary_at->line);
			if (mt->primary)
				primary_at = m;
		}
		if ((n = map_get(m, "margin")) != NULL) {
			if (get_double_min(c, n, "margin", 0, false, &mt->margin) < 0)
				return -1;
			mt->has_margin = true;
		}
		if ((n = map_get(m, "max")) != NULL) {
			if (mt->kind == CONF_METRIC_BINARY) {
				if (get_double_in(c, n, "max (a rate for a binary metric)", 0,
						  false, 1, false, &mt->max) < 0)
					return -1;
			} else if (get_double(c, n, "max", &mt->max) < 0) {
				return -1;
			}
			mt->has_max = true;
		}
	}
	return 0;
}

static int compile_decision(struct ctx *c, const struct node *v, struct conf_decision *d)
{
	static const char *const keys[] = {"alpha",	    "min_samples", "srm_alpha",
					   "sequential",   "on_srm",	   "sequential_n",
					   "interval_s", NULL};
	static const char *const on_srm[] = {"investigate", "rollback", NULL};
	const struct node *n;

	if (check_keys(c, v, "decision", keys) < 0)
		return -1;
	if ((n = map_get(v, "alpha")) != NULL &&
	    get_double_in(c, n, "decision.alpha", 0, true, 1, true, &d->alpha) < 0)
		return -1;
	if ((n = map_get(v, "min_samples")) != NULL &&
	    get_uint(c, n, "decision.min_samples", 1, 1000000000000ull, &d->min_samples) < 0)
		return -1;
	if ((n = map_get(v, "srm_alpha")) != NULL &&
	    get_double_in(c, n, "decision.srm_alpha", 0, true, 1, true, &d->srm_alpha) < 0)
		return -1;
	if ((n = map_get(v, "sequential")) != NULL &&
	    get_bool(c, n, "decision.sequential", &d->sequential) < 0)
		return -1;
	if ((n = map_get(v, "on_srm")) != NULL) {
		int i;
		if (get_choice(c, n, "decision.on_srm", on_srm, &i) < 0)
			return -1;
		d->on_srm_rollback = i == 1;
	}
	if ((n = map_get(v, "sequential_n")) != NULL &&
	    get_double_min(c, n, "decision.sequential_n", 0, true, &d->sequential_n) < 0)
		return -1;
	if ((n = map_get(v, "interval_s")) != NULL &&
	    get_u32(c, n, "decision.interval_s", 1, 86400, &d->interval_s) < 0)
		return -1;
	return 0;
}

static int compile_rollout(struct ctx *c, const struct node *key, const struct node *v,
			   struct conf_experiment *e)
{
	static const char *const keys[] = {"steps", "interval_s", "auto", "state_file", NULL};
	const struct node *steps, *n;

	if (check_keys(c, v, "rollout", keys) < 0 ||
	    map_need(c, v, "steps", "rollout", &steps) < 0 ||
	    get_list(c, steps, "rollout.steps", 1, MAX_STEPS) < 0)
		return -1;
	/* The ramp moves one canary against the control: control = 100 - step. */
	if (e->nvariants != 2)
		return fail(c, key,
			    "rollout needs exactly 2 variants, the control and the canary "
			    "(has %zu)",
			    e->nvariants);
	e->rollout.enabled = true;
	e->rollout.interval_s = 600;
	if ((e->rollout.steps = calloc(steps->nkids, sizeof(double))) == NULL)
		return oom(c);
	uint32_t prev = 0;
	for (size_t i = 0; i < steps->nkids; i++) {
		const struct node *s = steps->kids[i];
		uint32_t bp;
		if (get_percent_bp(c, s, "rollout step", &bp) < 0)
			return -1;
		if (bp == 0)
			return fail(c, s, "rollout steps must be greater than 0 (got %s)", s->str);
		if (bp <= prev)
			return fail(c, s, "rollout steps must be ascending (%s after %s)", s->str,
				    steps->kids[i - 1]->str);
		e->rollout.steps[i] = bp / 100.0;
		e->rollout.nsteps = i + 1;
		prev = bp;
	}
	if (prev != CONF_BUCKETS)
		return fail(c, steps->kids[steps->nkids - 1],
			    "the last rollout step must be 100 (got %s)",
			    steps->kids[steps->nkids - 1]->str);
	if ((n = map_get(v, "interval_s")) != NULL &&
	    get_u32(c, n, "rollout.interval_s", 1, 7 * 86400, &e->rollout.interval_s) < 0)
		return -1;
	if ((n = map_get(v, "auto")) != NULL &&
	    get_bool(c, n, "rollout.auto", &e->rollout.autostep) < 0)
		return -1;
	if ((n = map_get(v, "state_file")) != NULL &&
	    get_string(c, n, "rollout.state_file", &e->rollout.state_file) < 0)
		return -1;
	return 0;
}

/* The SDK's key, seed or salt: a non-empty scalar of at most MAX_HASH_TEXT bytes, copied into
 * h->text (owned by the generation). */
static int get_hash_text(struct ctx *c, const struct node *n, const char *what,
			 struct conf_hash *h)
{
	if (get_string(c, n, what, &h->text) < 0)
		return -1;
	h->text_len = strlen(h->text);
	if (h->text_len > MAX_HASH_TEXT)
		return fail(c, n, "%s is longer than %d bytes", what, MAX_HASH_TEXT);
	return 0;
}

/* A signed decimal integer that fits 32 bits (LaunchDarkly rollout seeds). */
static int get_i32(struct ctx *c, const struct node *n, const char *what, int64_t *out)
{
	if (n->kind != NODE_SCALAR || !n->plain || is_null(n))
		return fail_type(c, n, what, "an integer");
	const char *s = n->str + (n->str[0] == '-' || n->str[0] == '+');
	size_t digits = strspn(s, "0123456789");
	if (digits == 0 || s[digits] != '\0')
		return fail_type(c, n, what, "an integer");
	long long v = digits > 12 ? LLONG_MAX : strtoll(n->str, NULL, 10);
	if (v < INT32_MIN || v > INT32_MAX)
		return fail(c, n, "%s must be between %d and %d (got %s)", what, INT32_MIN,
			    INT32_MAX, n->str);
	*out = v;
	return 0;
}

/*
 * hash: {mode: ..., SDK keys}. Compiles each variant's range in the mode's space (see conf.h)
 * from the weights already compiled, in declared order as the SDKs lay them out. variants is the
 * experiment's variants list, for messages about one weight.
 */
static int compile_hash(struct ctx *c, const struct node *v, const struct node *variants,
			struct conf_experiment *e)
{
	static const char *const modes[] = {"abgate", "growthbook", "unleash", "optimizely",
					    "launchdarkly", "statsig", "eppo", NULL};
	static const char *const k_abgate[] = {"mode", NULL};
	static const char *const k_growthbook[] = {"mode", "seed", "version", "coverage", NULL};
	static const char *const k_unleash[] = {"mode", "group_id", "rollout", "variant_hash",
						NULL};
	static const char *const k_optimizely[] = {"mode", "experiment_id", NULL};
	static const char *const k_launchdarkly[] = {"mode", "key", "salt", "seed", NULL};
	static const char *const k_statsig[] = {"mode", "salt", NULL};
	static const char *const k_eppo[] = {"mode", "salt", "total_shards", NULL};
	static const char *const *const keys[] = {k_abgate,	  k_growthbook, k_unleash,
						  k_optimizely,	  k_launchdarkly, k_statsig,
						  k_eppo};
	struct conf_hash *h = &e->hash;
	const struct node *n, *mode;
	int mi;

	h->version = 1;
	h->coverage = 1;
	h->rollout = 100;
	h->total_shards = CONF_BUCKETS;
	if (v != NULL) {
		if (v->kind != NODE_MAP)
			return fail_type(c, v, "hash", "a mapping");
		if (map_need(c, v, "mode", "hash", &mode) < 0 ||
		    get_choice(c, mode, "hash.mode", modes, &mi) < 0)
			return -1;
		h->mode = (enum conf_hash_mode)mi;
		char what[40];
		snprintf(what, sizeof(what), "hash (mode %s)", modes[mi]);
		if (check_keys(c, v, what, keys[mi]) < 0)
			return -1;
	}
	switch (h->mode) {
	case CONF_HASH_ABGATE:
		break;
	case CONF_HASH_GROWTHBOOK:
		if ((n = map_get(v, "seed")) != NULL) {
			if (get_hash_text(c, n, "hash.seed", h) < 0)
				return -1;
		} else if ((h->text = strdup(e->name)) == NULL) {
			return oom(c);
		} else {
			h->text_len = strlen(h->text); /* GrowthBook's default: the key */
		}
		if ((n = map_get(v, "version")) != NULL) {
			uint32_t ver;
			if (get_u32(c, n, "hash.version", 1, 2, &ver) < 0)
				return -1;
			h->version = (int)ver;
		}
		if ((n = map_get(v, "coverage")) != NULL &&
		    get_double_in(c, n, "hash.coverage", 0, false, 1, false, &h->coverage) < 0)
			return -1;
		break;
	case CONF_HASH_UNLEASH:
		if (map_need(c, v, "group_id", "hash (mode unleash)", &n) < 0 ||
		    get_hash_text(c, n, "hash.group_id", h) < 0)
			return -1;
		if ((n = map_get(v, "rollout")) != NULL &&
		    get_u32(c, n, "hash.rollout", 0, 100, &h->rollout) < 0)
			return -1;
		h->variant_seed = SDKHASH_UNLEASH_VARIANT_SEED;
		if ((n = map_get(v, "variant_hash")) != NULL) {
			static const char *const kinds[] = {"current", "legacy", NULL};
			int k;
			if (get_choice(c, n, "hash.variant_hash", kinds, &k) < 0)
				return -1;
			if (k == 1)
				h->variant_seed = SDKHASH_UNLEASH_LEGACY_VARIANT_SEED;
		}
		h->total_shards = 1000;
		for (size_t i = 0; i < e->nvariants; i++)
			if (e->variants[i].weight_bp % 10 != 0)
				return fail(c, map_get(variants->kids[i], "weight"),
					    "weight %s of variant \"%s\" has two decimals: Unleash "
					    "variant weights are in tenths of a percent",
					    map_get(variants->kids[i], "weight")->str,
					    e->variants[i].name);
		break;
	case CONF_HASH_OPTIMIZELY:
		if (map_need(c, v, "experiment_id", "hash (mode optimizely)", &n) < 0 ||
		    get_hash_text(c, n, "hash.experiment_id", h) < 0)
			return -1;
		break;
	case CONF_HASH_LAUNCHDARKLY: {
		const struct node *key = map_get(v, "key"), *salt = map_get(v, "salt");
		const char *ks = NULL, *ss = NULL;
		int64_t seed = 0;
		bool has_seed = (n = map_get(v, "seed")) != NULL;
		if (has_seed && get_i32(c, n, "hash.seed", &seed) < 0)
			return -1;
		if (!has_seed && key == NULL)
			return fail(c, v, "hash (mode launchdarkly): missing required key \"key\" "
					  "(the flag key; or give the rollout's \"seed\")");
		if (!has_seed && salt == NULL)
			return fail(c, v, "hash (mode launchdarkly): missing required key \"salt\" "
					  "(the flag's salt; or give the rollout's \"seed\")");
		if (has_seed && (key != NULL || salt != NULL))
			return fail(c, key != NULL ? key : salt,
				    "hash.seed replaces key and salt in LaunchDarkly's bucketing: give "
				    "either seed or key and salt");
		if (key != NULL && (get_text(c, key, "hash.key", &ks) < 0 ||
				    get_text(c, salt, "hash.salt", &ss) < 0))
			return -1;
		if (key != NULL && (strlen(ks) > MAX_HASH_TEXT || strlen(ss) > MAX_HASH_TEXT))
			return fail(c, strlen(ks) > MAX_HASH_TEXT ? key : salt,
				    "hash.%s is longer than %d bytes",
				    strlen(ks) > MAX_HASH_TEXT ? "key" : "salt", MAX_HASH_TEXT);
		if (key != NULL && ks[0] == '\0')
			return fail(c, key, "hash.key must not be empty");
		char buf[2 * MAX_HASH_TEXT + 2];
		int len = sdkhash_launchdarkly_prefix(ks, ss, has_seed, seed, buf, sizeof(buf));
		if (len < 0 || (h->text = strdup(buf)) == NULL)
			return oom(c);
		h->text_len = (size_t)len;
		break;
	}
	case CONF_HASH_STATSIG:
		if (map_need(c, v, "salt", "hash (mode statsig)", &n) < 0 ||
		    get_hash_text(c, n, "hash.salt", h) < 0)
			return -1;
		break;
	case CONF_HASH_EPPO:
		if (map_need(c, v, "salt", "hash (mode eppo)", &n) < 0 ||
		    get_hash_text(c, n, "hash.salt", h) < 0)
			return -1;
		if ((n = map_get(v, "total_shards")) != NULL &&
		    get_u32(c, n, "hash.total_shards", 1, 1000000000u, &h->total_shards) < 0)
			return -1;
		for (size_t i = 0, cum = 0; i < e->nvariants; i++) {
			cum += e->variants[i].weight_bp;
			if ((uint64_t)cum * h->total_shards % CONF_BUCKETS != 0)
				return fail(c, n != NULL ? n : v, "hash.total_shards %u does not split the weights into "
						  "whole shards (variant \"%s\" ends at %.2f%%)",
					    h->total_shards, e->variants[i].name, cum / 100.0);
		}
		break;
	}

	static const char *const digest_of[] = {NULL,	  NULL,	    NULL,  NULL,
						 "SHA1", "SHA256", "MD5"};
	if (digest_of[h->mode] != NULL && !sdkhash_digest_works(digest_of[h->mode]))
		return fail(c, map_get(v, "mode"),
			    "hash mode %s needs %s, which this OpenSSL does not provide",
			    modes[h->mode], digest_of[h->mode]);

	/* the ranges, declared order, each mode's own arithmetic */
	double glo[MAX_VARIANTS], ghi[MAX_VARIANTS], gw[MAX_VARIANTS];
	double ld_sum = 0;
	uint64_t cum = 0;
	if (h->mode == CONF_HASH_GROWTHBOOK) {
		for (size_t i = 0; i < e->nvariants; i++)
			gw[i] = e->variants[i].weight_bp / 10000.0;
		sdkhash_growthbook_ranges(e->nvariants, h->coverage, gw, e->nvariants, glo, ghi);
	}
	for (size_t i = 0; i < e->nvariants; i++) {
		struct conf_variant *var = &e->variants[i];
		uint64_t lo = cum;
		cum += var->weight_bp;
		switch (h->mode) {
		case CONF_HASH_GROWTHBOOK:
			var->range_lo = glo[i];
			var->range_hi = ghi[i];
			break;
		case CONF_HASH_UNLEASH:
			var->range_lo = (double)(lo / 10);
			var->range_hi = (double)(cum / 10);
			break;
		case CONF_HASH_LAUNCHDARKLY:
			/* LaunchDarkly sums weight / 100000.0 as it goes */
			var->range_lo = ld_sum;
			ld_sum += (double)(var->weight_bp * 10) / 100000.0;
			var->range_hi = ld_sum;
			break;
		case CONF_HASH_EPPO:
			var->range_lo = (double)(lo * h->total_shards / CONF_BUCKETS);
			var->range_hi = (double)(cum * h->total_shards / CONF_BUCKETS);
			break;
		default:
			var->range_lo = (double)lo;
			var->range_hi = (double)cum;
			break;
		}
	}
	return 0;
}

static int compile_experiment(struct ctx *c, const struct node *m, const struct conf *conf,
			      struct conf_experiment *e, size_t index)
{
	static const char *const keys[] = {
	    "name",	"match",  "unit",    "fallback", "fallback_cookie", "salt", "allow_force",
	    "variants", "shadow", "metrics", "decision", "rollout",	    "hash",
	    NULL};
	static const char *const fallbacks[] = {"control", "client_ip", "random", "cookie", NULL};
	const struct node *name, *unit, *variants, *n;

	e->decision.alpha = 0.05;
	e->decision.min_samples = 500;
	e->decision.srm_alpha = 0.001;
	e->decision.sequential_n = 5000;
	e->decision.interval_s = 10;
	if (check_keys(c, m, "experiment", keys) < 0)
		return -1;
	e->line = m->line;
	if (map_need(c, m, "name", "experiment", &name) < 0 ||
	    get_string(c, name, "experiment name", &e->name) < 0 ||
	    check_name(c, name, "experiment name", e->name) < 0)
		return -1;
	for (size_t j = 0; j < index; j++)
		if (strcmp(conf->experiments[j].name, e->name) == 0)
			return fail(c, name, "duplicate experiment \"%s\" (first at line %d)",
				    e->name, conf->experiments[j].line);
	if ((n = map_get(m, "match")) != NULL && compile_match(c, n, e) < 0)
		return -1;
	if (map_need(c, m, "unit", "experiment", &unit) < 0 || compile_unit(c, unit, e) < 0)
		return -1;
	if ((n = map_get(m, "fallback")) != NULL) {
		int fb;
		if (get_choice(c, n, "fallback", fallbacks, &fb) < 0)
			return -1;
		e->fallback = (enum conf_fallback)fb;
	}
	if ((n = map_get(m, "fallback_cookie")) != NULL) {
		if (get_string(c, n, "fallback_cookie", &e->fallback_cookie) < 0 ||
		    check_token(c, n, "fallback_cookie", e->fallback_cookie) < 0)
			return -1;
	} else {
		e->fallback_cookie =
		    strdup(e->unit == CONF_UNIT_COOKIE ? e->unit_name : "abgate_uid");
		if (e->fallback_cookie == NULL)
			return oom(c);
	}
	if ((n = map_get(m, "salt")) != NULL) {
		if (get_string(c, n, "salt", &e->salt) < 0)
			return -1;
	} else if ((e->salt = strdup(e->name)) == NULL) {
		return oom(c);
	}
	if ((n = map_get(m, "allow_force")) != NULL &&
	    get_bool(c, n, "allow_force", &e->allow_force) < 0)
		return -1;
	if (map_need(c, m, "variants", "experiment", &variants) < 0 ||
	    compile_variants(c, map_keynode(m, "variants"), variants, conf, e) < 0)
		return -1;
	if (compile_hash(c, map_get(m, "hash"), variants, e) < 0)
		return -1;
	if (e->hash.mode != CONF_HASH_ABGATE && map_get(m, "salt") != NULL)
		return fail(c, map_keynode(m, "salt"),
			    "salt belongs to hash mode abgate; hash mode %s takes its SDK's seed, salt or "
			    "key inside hash",
			    map_get(map_get(m, "hash"), "mode")->str);
	if ((n = map_get(m, "shadow")) != NULL && compile_shadow(c, n, conf, e) < 0)
		return -1;
	if ((n = map_get(m, "metrics")) != NULL && compile_metrics(c, n, e) < 0)
		return -1;
	if ((n = map_get(m, "decision")) != NULL && compile_decision(c, n, &e->decision) < 0)
		return -1;
	if ((n = map_get(m, "rollout")) != NULL && e->hash.mode != CONF_HASH_ABGATE)
		return fail(c, map_keynode(m, "rollout"),
			    "rollout needs hash mode abgate: the application's SDK would not follow "
			    "the proxy's steps (ramp the weights in the SDK and here, and reload)");
	if ((n = map_get(m, "rollout")) != NULL &&
	    compile_rollout(c, map_keynode(m, "rollout"), n, e) < 0)
		return -1;
	const struct node *d = map_get(m, "decision");
	if (n != NULL && d != NULL && d->kind == NODE_MAP && map_get(d, "interval_s") != NULL)
		return fail(c, map_get(d, "interval_s"),
			    "decision.interval_s does not apply to a rollout: its guardrails are "
			    "evaluated at the end of each step (rollout.interval_s)");
	/* the request path uses these lengths on every request */
	e->name_len = strlen(e->name);
	e->unit_name_len = strlen(e->unit_name);
	e->salt_len = strlen(e->salt);
	e->match_path_prefix_len = e->match_path_prefix ? strlen(e->match_path_prefix) : 0;
	e->match_host_len = e->match_host ? strlen(e->match_host) : 0;
	e->match_method_len = e->match_method ? strlen(e->match_method) : 0;
	e->fallback_cookie_len = e->fallback_cookie ? strlen(e->fallback_cookie) : 0;
	for (size_t i = 0; i < e->nvariants; i++)
		e->variants[i].name_len = strlen(e->variants[i].name);
	return 0;
}

static int compile_experiments(struct ctx *c, const struct node *v, struct conf *conf)
{
	if (get_list(c, v, "experiments", 0, MAX_EXPERIMENTS) < 0)
		return -1;
	if (v->nkids == 0)
		return 0;
	if ((conf->experiments = calloc(v->nkids, sizeof(*conf->experiments))) == NULL)
		return oom(c);
	for (size_t i = 0; i < v->nkids; i++) {
		/* Counted before compiling so conf_free() sees the partial entry on failure. */
		conf->nexperiments = i + 1;
		if (compile_experiment(c, v->kids[i], conf, &conf->experiments[i], i) < 0)
			return -1;
		/* two rollouts saving to one file would each read the other's state */
		const char *sf = conf->experiments[i].rollout.state_file;
		for (size_t j = 0; sf != NULL && j < i; j++) {
			const char *other = conf->experiments[j].rollout.state_file;
			if (other != NULL && strcmp(other, sf) == 0) {
				const struct node *r = map_get(v->kids[i], "rollout");
				return fail(c, map_get(r, "state_file"),
					    "rollout.state_file \"%s\" is also experiment \"%s\"'s", sf,
					    conf->experiments[j].name);
			}
		}
	}
	return 0;
}

static void conf_defaults(struct conf *conf)
{
	conf->generation = 1;
	atomic_init(&conf->refs, 1);
	conf->workers = 1;
	conf->io_uring = true;
	conf->drain_timeout_ms = 10000;
	conf->log_fsync_ms = 200;
	conf->log_max_pending = OUTLOG_DEFAULT_MAX_PENDING;
	conf->limits.max_header_bytes = 16384;
	conf->limits.max_headers = 100;
	conf->limits.max_request_line = 8192;
	conf->limits.max_body_bytes = 10485760;
	conf->limits.client_header_timeout_ms = 10000;
	conf->limits.client_timeout_ms = 30000;
	conf->limits.idle_timeout_ms = 60000;
	conf->limits.upstream_connect_timeout_ms = 1000;
	conf->limits.upstream_timeout_ms = 30000;
	conf->limits.max_connections = 10000;
	conf->outcomes_rid_window_s = 3600;
	conf->outcomes_max_rids = 2000000;
}

/* Fills the defaults that need memory (strings, resolved addresses) for keys left out. */
static int conf_fill_defaults(struct ctx *c, struct conf *conf)
{
	char reason[160];

	if (conf->listens == NULL) {
		if ((conf->listens = calloc(1, sizeof(*conf->listens))) == NULL)
			return oom(c);
		conf->nlistens = 1;
		if (conf_addr_parse("127.0.0.1:8080", &conf->listens[0].addr, reason,
				    sizeof(reason)) < 0)
			return oom(c);
	}
	if (conf->admin_addr.text == NULL &&
	    conf_addr_parse("127.0.0.1:9901", &conf->admin_addr, reason, sizeof(reason)) < 0)
		return oom(c);
	if (conf->log_error == NULL && (conf->log_error = strdup("stderr")) == NULL)
		return oom(c);
	if (conf->log_level == NULL && (conf->log_level = strdup("info")) == NULL)
		return oom(c);
	return 0;
}

static int compile_root(struct ctx *c, const struct node *root, struct conf *conf)
{
	static const char *const keys[] = {"listen",   "admin",		  "workers",
					   "io_uring", "drain_timeout_ms", "log",
					   "limits",   "backends",	  "default_backend",
					   "experiments", "outcomes", NULL};
	const struct node *backends;

	if (check_keys(c, root, "the configuration", keys) < 0)
		return -1;
	if ((backends = map_get(root, "backends")) == NULL)
		return fail(c, root, "missing required key \"backends\"");
	if (compile_backends(c, backends, conf) < 0)
		return -1;
	for (size_t i = 0; i < map_pairs(root); i++) {
		const char *k = map_key(root, i)->str;
		const struct node *v = map_val(root, i);
		int rc = 0;
		if (strcmp(k, "listen") == 0)
			rc = compile_listens(c, v, conf);
		else if (strcmp(k, "admin") == 0)
			rc = compile_admin(c, v, conf);
		else if (strcmp(k, "workers") == 0)
			rc = get_u32(c, v, "workers", 1, 64, &conf->workers);
		else if (strcmp(k, "io_uring") == 0)
			rc = get_bool(c, v, "io_uring", &conf->io_uring);
		else if (strcmp(k, "drain_timeout_ms") == 0)
			rc = get_u32(c, v, "drain_timeout_ms", 0, 3600000, &conf->drain_timeout_ms);
		else if (strcmp(k, "log") == 0)
			rc = compile_log(c, v, conf);
		else if (strcmp(k, "limits") == 0)
			rc = compile_limits(c, v, conf);
		else if (strcmp(k, "outcomes") == 0)
			rc = compile_outcomes(c, v, conf);
		else if (strcmp(k, "default_backend") == 0)
			rc = get_backend_ref(c, conf, v, "default_backend", &conf->default_backend);
		else if (strcmp(k, "experiments") == 0)
			rc = compile_experiments(c, v, conf);
		if (rc < 0)
			return -1;
	}
	if (conf_fill_defaults(c, conf) < 0)
		return -1;
	for (size_t i = 0; i < conf->nlistens; i++)
		if (addr_equal(&conf->listens[i].addr, &conf->admin_addr)) {
			const struct node *at = map_get(root, "admin");
			at = at != NULL && at->kind == NODE_MAP && map_get(at, "addr") != NULL
				 ? map_get(at, "addr")
				 : root;
			return fail(c, at, "admin.addr \"%s\" is also a listen address",
				    conf->admin_addr.text);
		}
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Loading and lifetime                                                                        */

int conf_load_string(const char *name, const char *text, size_t len, struct conf **out, char *err,
		     size_t errlen)
{
	struct ctx c = {.name = name, .text = text, .len = len, .err = err, .errlen = errlen};
	struct node *root = NULL;
	struct conf *conf = NULL;

	if (errlen > 0)
		err[0] = '\0';
	if (build_tree(&c, &root) < 0)
		goto error;
	if ((conf = calloc(1, sizeof(*conf))) == NULL || (conf->path = strdup(name)) == NULL) {
		oom(&c);
		goto error;
	}
	conf_defaults(conf);
	if (compile_root(&c, root, conf) < 0)
		goto error;
	node_free(root);
	*out = conf;
	return 0;
error:
	conf_free(conf);
	node_free(root);
	return -1;
}

int conf_load(const char *path, struct conf **out, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (len == cap) {
			if (cap >= MAX_FILE_BYTES) {
				snprintf(err, errlen, "%s: file too large (over %u bytes)", path,
					 MAX_FILE_BYTES);
				goto error;
			}
			cap = cap ? 2 * cap : 16384;
			char *nb = realloc(buf, cap);
			if (nb == NULL) {
				snprintf(err, errlen, "%s: out of memory", path);
				goto error;
			}
			buf = nb;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
			goto error;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	rc = conf_load_string(path, buf ? buf : "", len, out, err, errlen);
	free(buf);
	return rc;
error:
	close(fd);
	free(buf);
	return -1;
}

struct conf *conf_ref(struct conf *c)
{
	if (c != NULL)
		atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}

void conf_unref(struct conf *c)
{
	/* acq_rel: the freeing thread must see every write made under the other references. */
	if (c != NULL && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
		conf_free(c);
}

static void backend_free(struct conf_backend *b)
{
	free(b->name);
	for (size_t i = 0; i < b->nservers; i++)
		free(b->servers[i].addr.text);
	free(b->servers);
	free(b->health_path);
	free(b->ca_file);
}

static void experiment_free(struct conf_experiment *e)
{
	free(e->name);
	free(e->match_path_prefix);
	free(e->match_host);
	free(e->match_method);
	free(e->unit_name);
	free(e->fallback_cookie);
	free(e->salt);
	for (size_t i = 0; i < e->nvariants; i++)
		free(e->variants[i].name);
	free(e->variants);
	for (size_t i = 0; i < e->nmetrics; i++)
		free(e->metrics[i].name);
	free(e->metrics);
	free(e->shadow.compare_json_field);
	free(e->rollout.steps);
	free(e->rollout.state_file);
	free(e->hash.text);
}

void conf_free(struct conf *c)
{
	if (c == NULL)
		return;
	if (c->release != NULL)
		c->release(c);
	for (size_t i = 0; i < c->nlistens; i++) {
		free(c->listens[i].addr.text);
		free(c->listens[i].tls_cert);
		free(c->listens[i].tls_key);
	}
	free(c->listens);
	free(c->admin_addr.text);
	free(c->admin_token_file);
	free(c->log_error);
	free(c->log_level);
	free(c->log_outcomes);
	free(c->log_access);
	for (size_t i = 0; i < c->nbackends; i++)
		backend_free(&c->backends[i]);
	free(c->backends);
	for (size_t i = 0; i < c->nexperiments; i++)
		experiment_free(&c->experiments[i]);
	free(c->experiments);
	free(c->path);
	free(c);
}
