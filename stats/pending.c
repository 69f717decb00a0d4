/*
 * pending.c - pending outcomes attributed offline from the logs' request records (see
 * include/pending.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "accum.h"
#include "logrec.h"
#include "pending.h"

#define READ_BUF (1u << 20)
#define MAX_LINE (64u << 10)
#define NAME_MAX_BYTES 256

struct item {
	char *exp, *metric, *rid, *id; /* id NULL when absent */
	char *variant;                 /* NULL until its request record is found */
	double ts, value;
	uint64_t unit_hash; /* of its request's unit, once found (0: none) */
	bool dup;
	long next; /* the next item with the same rid hash slot chain, -1 */
};

struct pending {
	const char *only; /* (ref) */
	struct item *items;
	size_t n, cap;
	long *slots; /* open addressing over rid hashes: first item index, -1 empty */
	size_t nslots;
};

bool pending_plain_field(const char *line, size_t len, const char *key, char *out, size_t cap)
{
	size_t kl = strlen(key);
	const char *p = memmem(line, len, key, kl), *end = line + len, *q;

	if (p == NULL)
		return false;
	for (p += kl, q = p; q < end && *q != '"'; q++)
		if (*q == '\\')
			return false;
	if (q == end || q == p || (size_t)(q - p) >= cap)
		return false;
	memcpy(out, p, (size_t)(q - p));
	out[q - p] = '\0';
	return true;
}

typedef int (*line_cb)(struct pending *pd, const char *line, size_t len);

/* Calls cb for each whole line of path (a last line without its newline is torn: left out).
 * Returns 0, or -1 (errno set). */
static int each_line(const char *path, struct pending *pd, line_cb cb)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
	char *buf = fd >= 0 ? malloc(READ_BUF) : NULL;
	size_t have = 0;
	bool discarding = false;

	if (buf == NULL) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	for (;;) {
		ssize_t r = read(fd, buf + have, READ_BUF - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r < 0 ? -1 : 0;
			break;
		}
		have += (size_t)r;
		size_t start = 0;
		char *nl;
		while ((nl = memchr(buf + start, '\n', have - start)) != NULL) {
			size_t len = (size_t)(nl - (buf + start));
			if (!discarding && cb(pd, buf + start, len) < 0) {
				rc = -1;
				goto out;
			}
			discarding = false;
			start += len + 1;
		}
		memmove(buf, buf + start, have - start);
		have -= start;
		if (have > MAX_LINE) {
			discarding = true;
			have = 0;
		}
	}
out:
	free(buf);
	close(fd);
	return rc;
}

static const char *str_of(const cJSON *o, const char *name)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(f) && f->valuestring[0] != '\0' ? f->valuestring : NULL;
}

/* Pass 1: keeps each pending outcome (of the experiment asked for). */
static int take_pending(struct pending *pd, const char *line, size_t len)
{
	static const char pre[] = "{\"v\":1,\"type\":\"pending_outcome\"";

	if (len < sizeof(pre) || memcmp(line, pre, sizeof(pre) - 1) != 0)
		return 0;
	cJSON *o = cJSON_ParseWithLength(line, len);
	const char *exp = str_of(o, "exp"), *metric = str_of(o, "metric"), *rid = str_of(o, "rid");
	const char *ts = str_of(o, "ts"), *id = str_of(o, "id");
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "value");
	double t;
	int rc = 0;
	if (exp == NULL || metric == NULL || rid == NULL || ts == NULL ||
	    (!cJSON_IsNumber(v) && !cJSON_IsBool(v)) || logrec_parse_ts(ts, strlen(ts), &t) < 0 ||
	    (pd->only != NULL && strcmp(pd->only, exp) != 0))
		goto done;
	if (pd->n == pd->cap) {
		size_t cap = pd->cap ? 2 * pd->cap : 256;
		struct item *it = realloc(pd->items, cap * sizeof(*it));
		if (it == NULL) {
			rc = -1;
			goto done;
		}
		pd->items = it;
		pd->cap = cap;
	}
	struct item *it = &pd->items[pd->n];
	memset(it, 0, sizeof(*it));
	it->ts = t;
	it->value = cJSON_IsBool(v) ? (cJSON_IsTrue(v) ? 1 : 0) : v->valuedouble;
	it->exp = strdup(exp);
	it->metric = strdup(metric);
	it->rid = strdup(rid);
	it->id = id != NULL ? strdup(id) : NULL;
	pd->n++;
	if (it->exp == NULL || it->metric == NULL || it->rid == NULL || (id != NULL && !it->id))
		rc = -1;
done:
	cJSON_Delete(o);
	return rc;
}

static size_t slot_of(const struct pending *pd, const char *rid, size_t len)
{
	return (size_t)(accum_hash64(rid, len) & (pd->nslots - 1));
}

/* Pass 2: gives each pending outcome of a request id served in its experiment the variant. */
static int take_request(struct pending *pd, const char *line, size_t len)
{
	static const char pre[] = "{\"v\":1,\"type\":\"request\"";
	char exp[NAME_MAX_BYTES], var[NAME_MAX_BYTES], rid[NAME_MAX_BYTES], unit[1024];

	if (len < sizeof(pre) || memcmp(line, pre, sizeof(pre) - 1) != 0 ||
	    !pending_plain_field(line, len, ",\"rid\":\"", rid, sizeof(rid)))
		return 0;
	size_t rl = strlen(rid), s = slot_of(pd, rid, rl);
	for (size_t probe = 0; probe < pd->nslots && pd->slots[s] >= 0; probe++) {
		struct item *first = &pd->items[pd->slots[s]];
		if (strcmp(first->rid, rid) == 0) {
			if (!pending_plain_field(line, len, ",\"exp\":\"", exp, sizeof(exp)) ||
			    !pending_plain_field(line, len, ",\"variant\":\"", var, sizeof(var)))
				return 0;
			/* the unit the outcome belongs to, for the unit-level analysis (a unit with
			 * escapes in it is left out: the outcome then counts as its own unit) */
			uint64_t uh = 0;
			if (pending_plain_field(line, len, ",\"unit\":\"", unit, sizeof(unit)))
				uh = accum_hash64(unit, strlen(unit));
			for (long i = pd->slots[s]; i >= 0; i = pd->items[i].next) {
				struct item *it = &pd->items[i];
				if (it->variant != NULL || strcmp(it->exp, exp) != 0)
					continue;
				if ((it->variant = strdup(var)) == NULL)
					return -1;
				it->unit_hash = uh;
			}
			return 0;
		}
		s = (s + 1) & (pd->nslots - 1);
	}
	return 0;
}

static int by_id(const void *a, const void *b)
{
	const struct item *x = *(struct item *const *)a, *y = *(struct item *const *)b;
	int d = strcmp(x->exp, y->exp);

	if (d == 0)
		d = strcmp(x->metric, y->metric);
	if (d == 0)
		d = strcmp(x->id, y->id);
	if (d == 0) /* the earlier one counts */
		d = (x->ts > y->ts) - (x->ts < y->ts);
	return d;
}

/* Marks the repeats of an (exp, metric, id) and chains the items by request id. */
static int index_items(struct pending *pd, struct pending_counts *out)
{
	struct item **withid = malloc((pd->n + 1) * sizeof(*withid));
	size_t k = 0;

	for (pd->nslots = 16; pd->nslots < 2 * pd->n; pd->nslots *= 2)
		;
	pd->slots = malloc(pd->nslots * sizeof(*pd->slots));
	if (withid == NULL || pd->slots == NULL) {
		free(withid);
		return -1;
	}
	for (size_t i = 0; i < pd->n; i++)
		if (pd->items[i].id != NULL)
			withid[k++] = &pd->items[i];
	qsort(withid, k, sizeof(*withid), by_id);
	for (size_t i = 1; i < k; i++)
		if (strcmp(withid[i]->exp, withid[i - 1]->exp) == 0 &&
		    strcmp(withid[i]->metric, withid[i - 1]->metric) == 0 &&
		    strcmp(withid[i]->id, withid[i - 1]->id) == 0) {
			withid[i]->dup = true;
			out->duplicates++;
		}
	free(withid);
	for (size_t i = 0; i < pd->nslots; i++)
		pd->slots[i] = -1;
	for (size_t i = pd->n; i-- > 0;) { /* chains in log order */
		struct item *it = &pd->items[i];
		size_t s = slot_of(pd, it->rid, strlen(it->rid));
		while (pd->slots[s] >= 0 && strcmp(pd->items[pd->slots[s]].rid, it->rid) != 0)
			s = (s + 1) & (pd->nslots - 1);
		it->next = pd->slots[s];
		pd->slots[s] = (long)i;
	}
	return 0;
}

int pending_attribute(const char *const *paths, size_t n, const char *only, pending_fold_cb fold,
		      void *arg, struct pending_counts *out)
{
	struct pending pd = {.only = only};
	int rc = -1;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < n; i++)
		if (strcmp(paths[i], "-") != 0 && each_line(paths[i], &pd, take_pending) < 0)
			goto done;
	out->pending = pd.n;
	if (pd.n == 0) {
		rc = 0;
		goto done;
	}
	if (index_items(&pd, out) < 0)
		goto done;
	for (size_t i = 0; i < n; i++)
		if (strcmp(paths[i], "-") != 0 && each_line(paths[i], &pd, take_request) < 0)
			goto done;
	for (size_t i = 0; i < pd.n; i++) {
		const struct item *it = &pd.items[i];
		if (it->dup)
			continue;
		if (it->variant == NULL) {
			out->unattributed++;
			continue;
		}
		struct pending_outcome po = {it->ts, it->exp, it->variant, it->metric, it->value,
					     it->unit_hash};
		if (fold(arg, &po) < 0)
			goto done;
		out->attributed++;
	}
	rc = 0;
done:
	for (size_t i = 0; i < pd.n; i++) {
		free(pd.items[i].exp);
		free(pd.items[i].metric);
		free(pd.items[i].rid);
		free(pd.items[i].id);
		free(pd.items[i].variant);
	}
	free(pd.items);
	free(pd.slots);
	return rc;
}
