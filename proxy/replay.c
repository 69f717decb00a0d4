/*
 * replay.c - the outcome log's tail put back into the request-id map and the outcome keys at
 * start (see include/replay.h).
 *
 * Request records are the bulk of the tail (one per request), so their three fields are read
 * straight from the proxy's own record layout (pending_plain_field). Outcome records, fewer
 * and holding client strings, are parsed as JSON.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "conf.h"
#include "logrec.h"
#include "outcome.h"
#include "pending.h"
#include "replay.h"
#include "ridmap.h"

/* A record may follow one up to this much younger (workers hand their records over in
 * batches), so the bisection starts this much before the window. */
#define SLACK_S 60
#define CHUNK (1u << 20)
#define LINE_MAX_BYTES (64u << 10)

struct replay {
	const struct conf *c;  /* (ref) */
	struct ridmap *rids;   /* (ref) may be NULL */
	struct ridmap *keys;   /* (ref) may be NULL */
	double cutoff;         /* seconds since the epoch: older records are out of the window */
	uint64_t now_wall_us, now_mono_us;
	struct replay_counts *n;
};

/* The timestamp of a record (any type: "ts" is among its first fields). */
static bool line_ts(const char *line, size_t len, double *ts)
{
	const char *p = memmem(line, len < 64 ? len : 64, ",\"ts\":\"", 7);
	if (p == NULL)
		return false;
	p += 7;
	const char *q = memchr(p, '"', len - (size_t)(p - line));
	return q != NULL && logrec_parse_ts(p, (size_t)(q - p), ts) == 0;
}

/* The monotonic time (us) of a record written at ts (seconds since the epoch). */
static uint64_t mono_of(const struct replay *r, double ts)
{
	double age = (double)r->now_wall_us - ts * 1e6;
	uint64_t a = age > 0 ? (uint64_t)age : 0;

	return r->now_mono_us > a ? r->now_mono_us - a : 0;
}

static void replay_request(struct replay *r, const char *line, size_t len, double ts)
{
	char exp[128], var[128], rid[RIDMAP_KEY_MAX + 1];

	if (r->rids == NULL || !pending_plain_field(line, len, ",\"exp\":\"", exp, sizeof(exp)) ||
	    !pending_plain_field(line, len, ",\"variant\":\"", var, sizeof(var)) ||
	    !pending_plain_field(line, len, ",\"rid\":\"", rid, sizeof(rid)))
		return;
	const struct conf_experiment *e = conf_experiment_find(r->c, exp);
	const struct conf_variant *v = e != NULL ? conf_variant_find(e, var) : NULL;
	if (v == NULL)
		return;
	ridmap_put(r->rids, rid, strlen(rid), v->id, mono_of(r, ts));
	r->n->requests++;
}

static const char *str_of(const cJSON *o, const char *name)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(f) ? f->valuestring : NULL;
}

static void replay_outcome(struct replay *r, const char *line, size_t len, double ts)
{
	uint8_t key[OUTCOME_KEY_LEN];

	if (r->keys == NULL)
		return;
	cJSON *o = cJSON_ParseWithLength(line, len);
	const char *exp = str_of(o, "exp"), *metric = str_of(o, "metric");
	const struct conf_experiment *e = exp != NULL ? conf_experiment_find(r->c, exp) : NULL;
	const struct conf_metric *m = NULL;
	for (size_t i = 0; e != NULL && metric != NULL && i < e->nmetrics && m == NULL; i++)
		if (strcmp(e->metrics[i].name, metric) == 0)
			m = &e->metrics[i];
	if (m != NULL && outcome_key(e->name, m->name, m->kind == CONF_METRIC_BINARY,
				     str_of(o, "rid"), str_of(o, "id"), key)) {
		ridmap_put(r->keys, (const char *)key, sizeof(key), 0, mono_of(r, ts));
		r->n->outcomes++;
	}
	cJSON_Delete(o);
}

static void replay_line(struct replay *r, const char *line, size_t len)
{
	static const char req[] = "{\"v\":1,\"type\":\"request\"";
	static const char out[] = "{\"v\":1,\"type\":\"outcome\"";
	static const char pending[] = "{\"v\":1,\"type\":\"pending_outcome\"";
	double ts;

	if (len < sizeof(req) || !line_ts(line, len, &ts) || ts < r->cutoff)
		return;
	if (memcmp(line, req, sizeof(req) - 1) == 0)
		replay_request(r, line, len, ts);
	else if (memcmp(line, out, sizeof(out) - 1) == 0 ||
		 (len >= sizeof(pending) && memcmp(line, pending, sizeof(pending) - 1) == 0))
		replay_outcome(r, line, len, ts);
}

/* An offset at or before the first record of the window (lines are in time order to within
 * SLACK_S): bisects on the first whole line after each probe. */
static off_t window_start(int fd, off_t size, double cutoff)
{
	char buf[8192];
	off_t lo = 0, hi = size;

	while (hi - lo > (off_t)CHUNK) {
		off_t mid = lo + (hi - lo) / 2;
		ssize_t n = pread(fd, buf, sizeof(buf), mid);
		const char *nl = n > 0 ? memchr(buf, '\n', (size_t)n) : NULL;
		const char *end = nl != NULL ? memchr(nl + 1, '\n', (size_t)(buf + n - nl - 1)) : NULL;
		double ts;
		if (end == NULL || !line_ts(nl + 1, (size_t)(end - nl - 1), &ts))
			hi = mid; /* cannot tell: read more rather than miss a record */
		else if (ts < cutoff - SLACK_S)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

int replay_outcome_log(const char *path, const struct conf *c, struct ridmap *rids,
		       struct ridmap *keys, uint64_t now_wall_us, uint64_t now_mono_us,
		       struct replay_counts *out)
{
	struct replay r = {c, rids, keys, now_wall_us / 1e6 - c->outcomes_rid_window_s,
			   now_wall_us, now_mono_us, out};
	struct stat st;
	int rc = -1, fd = open(path, O_RDONLY | O_CLOEXEC);
	char *buf = NULL;

	memset(out, 0, sizeof(*out));
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if (fstat(fd, &st) < 0 || (buf = malloc(CHUNK + LINE_MAX_BYTES)) == NULL)
		goto done;
	off_t at = window_start(fd, st.st_size, r.cutoff);
	size_t have = 0;
	bool skip = at > 0; /* the probe landed inside a line */
	while (at < st.st_size) {
		ssize_t n = pread(fd, buf + have, CHUNK, at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		at += n;
		out->bytes += (uint64_t)n;
		have += (size_t)n;
		char *p = buf, *end = buf + have, *nl;
		while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
			if (!skip)
				replay_line(&r, p, (size_t)(nl - p));
			skip = false;
			p = nl + 1;
		}
		have = (size_t)(end - p);
		if (have >= LINE_MAX_BYTES) { /* no record is this long: drop it */
			have = 0;
			skip = true;
		}
		memmove(buf, p, have);
	}
	rc = 0; /* a last line without its newline is torn: left out */
done:
	free(buf);
	close(fd);
	return rc;
}
