/*
 * admin.c - the admin API handlers (see include/admin.h).
 *
 *   GET  /healthz                      the process is up
 *   GET  /readyz                       200 while accepting traffic, 503 while draining
 *   GET  /metrics                      Prometheus text format
 *   GET  /experiments                  live state of every experiment (JSON)
 *   GET  /experiments/NAME/report      the live report (?format=json|text|md|html)
 *   POST /reload                       reload the configuration file
 *   POST /outcomes                     record outcome events (one JSON object or an array)
 *   POST /experiments/NAME/promote     rollout commands (also rollback, pause, resume); an
 *                                      unknown command is 400, an experiment without a
 *                                      rollout 409
 * With admin.token_file, every request needs the bearer token (401 without it), checked on the
 * head before any body byte is read; so are the method (405), the query (400 for a parameter
 * the endpoint does not take) and the body size (413). JSON bodies are strict: one document,
 * nothing after it but whitespace.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include <cJSON.h>

#include "accum.h"
#include "admin.h"
#include "analysis.h"
#include "conf.h"
#include "decide.h"
#include "evaluate.h"
#include "httpd.h"
#include "live.h"
#include "outcome.h"
#include "outlog.h"
#include "render.h"
#include "ridmap.h"
#include "rollout.h"
#include "router.h"
#include "server.h"
#include "shadow_stats.h"
#include "upstream.h"

#define OUTCOME_LINE_MAX 4096

static void respond_json(struct httpd_req *req, int status, cJSON *doc)
{
	char *text = doc != NULL ? cJSON_PrintUnformatted(doc) : NULL;

	cJSON_Delete(doc);
	if (text == NULL) {
		httpd_respond(req, 500, "text/plain", "out of memory\n", 14);
		return;
	}
	size_t len = strlen(text);
	text[len] = '\n'; /* replaces the NUL: the body is length-delimited */
	httpd_respond(req, status, "application/json", text, len + 1);
	cJSON_free(text);
}

static void respond_error(struct httpd_req *req, int status, const char *reason)
{
	cJSON *doc = cJSON_CreateObject();

	cJSON_AddStringToObject(doc, "error", reason);
	respond_json(req, status, doc);
}

/* Whether every parameter name of the raw query q[0..qlen) is in allowed (NULL-terminated; may
 * be empty). Sets *bad to the first that is not (a span of q). */
static bool query_known(const char *q, size_t qlen, const char *const *allowed, const char **bad,
			size_t *bad_len)
{
	struct httpd_query_piece p;

	for (const char *end = q + qlen; httpd_query_next(&q, end, &p);) {
		size_t n = (size_t)(p.name_end - p.name);
		bool ok = p.name == p.value_end; /* an empty piece ("a&&b") names nothing */
		for (size_t i = 0; allowed[i] != NULL && !ok; i++)
			ok = strlen(allowed[i]) == n && memcmp(allowed[i], p.name, n) == 0;
		if (!ok) {
			*bad = p.name;
			*bad_len = n;
			return false;
		}
	}
	return true;
}

/* Whether every value of the raw query q[0..qlen) is 0, 1, false or true (the parameters of
 * POST /outcomes, atomic and defer, are booleans; admin_judge let no other through). */
static bool bool_values_ok(const char *q, size_t qlen)
{
	static const char *const ok[] = {"0", "1", "false", "true"};
	struct httpd_query_piece p;

	for (const char *end = q + qlen; httpd_query_next(&q, end, &p);) {
		size_t n = (size_t)(p.value_end - p.value);
		if (p.name == p.value_end)
			continue; /* an empty piece */
		bool good = false;
		for (size_t i = 0; i < 4 && !good; i++)
			good = strlen(ok[i]) == n && memcmp(ok[i], p.value, n) == 0;
		if (!good)
			return false;
	}
	return true;
}

/* ---- reload --------------------------------------------------------------------------------- */

static void handle_reload(struct httpd_req *req)
{
	char err[1024];
	cJSON *doc = cJSON_CreateObject();

	if (server_reload(err, sizeof(err)) == 0) {
		uint64_t seq;
		struct conf *c = server_conf_acquire(&seq);
		cJSON_AddStringToObject(doc, "result", "ok");
		cJSON_AddNumberToObject(doc, "generation", (double)c->generation);
		conf_unref(c);
		respond_json(req, 200, doc);
	} else {
		cJSON_AddStringToObject(doc, "result", "error");
		cJSON_AddStringToObject(doc, "error", err);
		respond_json(req, 422, doc);
	}
}

static void handle_experiments(struct httpd_req *req)
{
	uint64_t seq;
	struct conf *c = server_conf_acquire(&seq);
	cJSON *doc = cJSON_CreateObject(), *list = cJSON_CreateArray();

	cJSON_AddNumberToObject(doc, "generation", (double)c->generation);
	cJSON_AddItemToObject(doc, "experiments", list);
	for (size_t i = 0; i < c->nexperiments; i++) {
		const struct conf_experiment *e = &c->experiments[i];
		struct analysis *a = evaluate_now(e);
		cJSON *ex = cJSON_CreateObject(), *vs = cJSON_CreateArray();
		cJSON_AddStringToObject(ex, "name", e->name);
		cJSON_AddItemToObject(ex, "variants", vs);
		for (size_t k = 0; k < e->nvariants; k++) {
			cJSON *v = cJSON_CreateObject();
			cJSON_AddStringToObject(v, "name", e->variants[k].name);
			cJSON_AddStringToObject(v, "backend", e->variants[k].backend->name);
			cJSON_AddNumberToObject(v, "weight", rollout_weight_bp(e, k) / 100.0);
			if (a != NULL) {
				cJSON_AddNumberToObject(v, "requests", (double)a->variants[k].requests);
				cJSON_AddNumberToObject(v, "units", round(a->variants[k].units));
			}
			cJSON_AddItemToArray(vs, v);
		}
		cJSON *rec = cJSON_CreateObject();
		if (a != NULL && a->action != NULL) {
			cJSON_AddStringToObject(rec, "action", a->action);
			if (a->action_variant != NULL)
				cJSON_AddStringToObject(rec, "variant", a->action_variant);
			cJSON *rs = cJSON_CreateArray();
			for (size_t k = 0; k < a->nreasons; k++)
				cJSON_AddItemToArray(rs, cJSON_CreateString(a->reasons[k]));
			cJSON_AddItemToObject(rec, "reasons", rs);
		} else {
			cJSON_AddNullToObject(rec, "action");
			cJSON_AddStringToObject(rec, "note", "out of memory");
		}
		cJSON_AddItemToObject(ex, "recommendation", rec);
		if (e->rt != NULL) {
			char *state = rollout_state_json(e->rt);
			if (state != NULL)
				cJSON_AddRawToObject(ex, "rollout", state);
			cJSON_free(state);
		}
		cJSON_AddItemToArray(list, ex);
		analysis_free(a);
	}
	conf_unref(c);
	respond_json(req, 200, doc);
}

static void handle_report(struct httpd_req *req, const char *name, size_t nlen)
{
	char fmt_name[16] = "json";
	char generated[32];
	uint64_t seq;

	static const char *const none[] = {NULL};
	const char *bad;
	size_t bad_len, qlen;
	const char *q = httpd_req_query(req, &qlen);
	/* an absent format is json (admin_head() let no other parameter through); one too long
	 * for fmt_name is no format we know */
	int fmt = -1;
	if (httpd_req_query_param(req, "format", fmt_name, sizeof(fmt_name)) >= 0 ||
	    query_known(q, qlen, none, &bad, &bad_len))
		fmt = render_format_parse(fmt_name);
	if (fmt < 0)
		return respond_error(req, 400, "format must be json, text, md or html");
	struct conf *c = server_conf_acquire(&seq);
	const struct conf_experiment *e = NULL;
	for (size_t i = 0; i < c->nexperiments && e == NULL; i++)
		if (strlen(c->experiments[i].name) == nlen &&
		    memcmp(c->experiments[i].name, name, nlen) == 0)
			e = &c->experiments[i];
	if (e == NULL) {
		conf_unref(c);
		return respond_error(req, 404, "no such experiment");
	}
	struct analysis *a = evaluate_now(e);
	conf_unref(c);
	if (a == NULL)
		return respond_error(req, 500, "out of memory");
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(generated, sizeof(generated), "%Y-%m-%dT%H:%M:%SZ", &tm);
	struct render_meta meta = {.generated = generated};
	struct shadow_summary shadow;
	for (size_t i = 0; i < a->nvariants; i++)
		meta.request += a->variants[i].requests;
	if (live_shadow_summary(a->experiment, &shadow))
		meta.shadow_stats = &shadow;
	char *out = NULL;
	size_t outlen = 0;
	FILE *f = open_memstream(&out, &outlen);
	int rc = f != NULL ? render_write(f, (enum render_format)fmt, &a, &meta, 1) : -1;
	if (f != NULL)
		fclose(f);
	analysis_free(a);
	static const char *const ctypes[] = {
		[RENDER_TEXT] = "text/plain; charset=utf-8",
		[RENDER_JSON] = "application/json",
		[RENDER_MD] = "text/markdown; charset=utf-8",
		[RENDER_HTML] = "text/html; charset=utf-8",
	};
	if (rc < 0)
		respond_error(req, 500, "cannot render the report");
	else
		httpd_respond(req, 200, ctypes[fmt], out, outlen);
	free(out);
}

/* ---- rollout control ------------------------------------------------------------------------ */

/* POST /experiments/NAME/{promote,rollback,pause,resume} */
static void handle_rollout_command(struct httpd_req *req, const char *rest, size_t len)
{
	char name[128], cmd[32];
	const char *slash = memchr(rest, '/', len);
	size_t nl = (size_t)(slash - rest), cl = len - nl - 1;
	uint64_t seq;
	char *body = NULL;

	if (nl == 0 || nl >= sizeof(name) || cl == 0 || cl >= sizeof(cmd))
		return respond_error(req, 404, "use /experiments/NAME/promote|rollback|pause|resume");
	memcpy(name, rest, nl);
	name[nl] = '\0';
	memcpy(cmd, slash + 1, cl);
	cmd[cl] = '\0';
	struct conf *c = server_conf_acquire(&seq);
	int status = rollout_command(c, name, cmd, &body);
	conf_unref(c);
	if (body == NULL)
		return respond_error(req, 500, "out of memory");
	size_t blen = strlen(body);
	body[blen] = '\n';
	httpd_respond(req, status, "application/json", body, blen + 1);
	cJSON_free(body);
}

/* ---- outcomes ---------------------------------------------------------------------------- */

/* Posted outcome items by what became of them, since the start (admin thread only). */
static struct {
	uint64_t accepted, deduplicated, deferred, retry;
	uint64_t rejected[OUTCOME_NREASONS];
} outcome_counts;

/* Whether the query sets boolean parameter name (to 1 or true; admin_judge let only those, 0
 * and false through). */
static bool query_flag(struct httpd_req *req, const char *name)
{
	char v[8];

	return httpd_req_query_param(req, name, v, sizeof(v)) > 0 &&
	       (strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
}

/*
 * Answers a parsed batch: {"accepted": N, "deduplicated": [{"index": i}, ...], "rejected":
 * [{"index": i, "reason": R, "error": TEXT}, ...]} where accepted counts the items recorded
 * (0 unless recorded), plus "error" when error is not NULL, and with defer=1 "deferred":
 * [{"index": i, "reason": R}, ...] (recorded as pending outcomes when recorded is true).
 */
static void respond_batch(struct httpd_req *req, int status, const struct outcome_batch *b,
			  bool recorded, bool defer, const char *error)
{
	cJSON *doc = cJSON_CreateObject(), *dups = cJSON_CreateArray(), *rej = cJSON_CreateArray();
	cJSON *def = defer ? cJSON_CreateArray() : NULL;

	cJSON_AddNumberToObject(doc, "accepted", recorded ? (double)b->accepted : 0);
	cJSON_AddItemToObject(doc, "deduplicated", dups);
	cJSON_AddItemToObject(doc, "rejected", rej);
	if (def != NULL)
		cJSON_AddItemToObject(doc, "deferred", def);
	if (error != NULL)
		cJSON_AddStringToObject(doc, "error", error);
	for (size_t i = 0; i < b->n; i++) {
		const struct outcome *o = &b->items[i];
		cJSON *it;
		if (o->status == OUTCOME_OK)
			continue;
		it = cJSON_CreateObject();
		cJSON_AddNumberToObject(it, "index", (double)i);
		if (o->status == OUTCOME_REJECTED) {
			cJSON_AddStringToObject(it, "reason", outcome_reason_name(o->reason));
			cJSON_AddStringToObject(it, "error", o->error != NULL
								 ? o->error
								 : outcome_reason_name(o->reason));
			cJSON_AddItemToArray(rej, it);
		} else if (o->status == OUTCOME_DEFERRED) {
			cJSON_AddStringToObject(it, "reason", outcome_reason_name(o->reason));
			if (def != NULL && recorded)
				cJSON_AddItemToArray(def, it);
			else
				cJSON_Delete(it);
		} else {
			cJSON_AddItemToArray(dups, it);
		}
	}
	respond_json(req, status, doc);
}

static void count_rejected(const struct outcome_batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->items[i].status == OUTCOME_REJECTED)
			outcome_counts.rejected[b->items[i].reason]++;
}

/*
 * POST /outcomes[?atomic=1][&defer=1]. Each item is recorded, found to be a duplicate (not
 * recorded again) or rejected with its reason; with atomic=1 one rejected item refuses the
 * batch; with defer=1 a rid-only item whose request id is not known here is recorded as a
 * pending outcome (for `abgate report`) instead of being rejected. The
 * items recorded go to the outcome log in one block, so a 503 (the log is behind) records
 * none of them; only then are they counted live and their keys remembered.
 */
static void handle_outcomes(struct httpd_req *req)
{
	size_t blen;
	const char *body = httpd_req_body(req, &blen);
	char err[512];
	uint64_t seq;
	struct outcome_batch batch;
	struct conf *c = server_conf_acquire(&seq);
	bool atomic = query_flag(req, "atomic");
	unsigned flags = query_flag(req, "defer") ? OUTCOME_DEFER : 0;
	struct timespec mono;

	clock_gettime(CLOCK_MONOTONIC, &mono);
	uint64_t now_us = (uint64_t)mono.tv_sec * 1000000u + (uint64_t)mono.tv_nsec / 1000u;
	if (outcome_parse(c, server_rids(), server_outcome_keys(), now_us, flags, body, blen, &batch,
			  err, sizeof(err)) < 0) {
		conf_unref(c);
		return respond_error(req, 400, err);
	}
	size_t nrec = batch.accepted + batch.deferred; /* the items that make a record */
	char *lines = nrec > 0 ? malloc(nrec * OUTCOME_LINE_MAX) : NULL;
	size_t used = 0;
	struct timeval tv;
	gettimeofday(&tv, NULL);
	for (size_t i = 0; lines != NULL && i < batch.n; i++) {
		const struct outcome *o = &batch.items[i];
		if (o->status != OUTCOME_OK && o->status != OUTCOME_DEFERRED)
			continue;
		struct outlog_outcome oc = {
			.ts = tv,
			.exp = o->e->name,
			.variant = o->v != NULL ? o->v->name : NULL,
			.pending = o->status == OUTCOME_DEFERRED,
			.unit = o->unit,
			.rid = o->rid,
			.metric = o->e->metrics[o->metric].name,
			.value = o->value,
			.id = o->id,
		};
		size_t len = outlog_format_outcome(lines + used, OUTCOME_LINE_MAX, &oc);
		if (len == 0)
			outcome_reject(&batch, i, OUTCOME_R_TOO_LONG,
				       "the outcome's record would be longer than 4096 bytes");
		used += len;
	}
	struct outlog *ol = server_outlog();
	nrec = batch.accepted + batch.deferred;
	if (nrec > 0 && lines == NULL) {
		httpd_add_header(req, "Retry-After: 1");
		respond_error(req, 503, "out of memory; nothing was recorded, retry");
		outcome_counts.retry += batch.accepted;
	} else if (batch.rejected > 0 &&
		   (atomic || (nrec == 0 && batch.duplicates == 0))) {
		const struct outcome *first = NULL;
		for (size_t i = 0; i < batch.n && first == NULL; i++)
			if (batch.items[i].status == OUTCOME_REJECTED)
				first = &batch.items[i];
		snprintf(err, sizeof(err), "outcome %zu: %s; nothing was recorded%s",
			 (size_t)(first - batch.items),
			 first->error != NULL ? first->error : outcome_reason_name(first->reason),
			 atomic && batch.rejected < batch.n ? " (atomic=1: the batch is all or nothing)"
							    : "");
		count_rejected(&batch);
		respond_batch(req, 400, &batch, false, flags != 0, err);
	} else if (nrec > 0 && ol != NULL && outlog_write_block(ol, lines, used) < 0) {
		httpd_add_header(req, "Retry-After: 1");
		respond_error(req, 503, "the outcome log is behind; nothing was recorded, retry");
		outcome_counts.retry += nrec;
	} else {
		double t = (double)tv.tv_sec + tv.tv_usec / 1e6;
		for (size_t i = 0; i < batch.n; i++) {
			const struct outcome *o = &batch.items[i];
			if (o->status != OUTCOME_OK && o->status != OUTCOME_DEFERRED)
				continue;
			/* pending ones are counted by the report; an outcome that names its unit
			 * joins that unit's other outcomes in the unit-level variance */
			if (o->status == OUTCOME_OK)
				live_outcome_unit(server_live(), o->e, o->v, o->metric, o->value, t,
						  o->unit != NULL
							  ? router_unit_hash(o->e->salt, o->e->salt_len,
									     o->unit, strlen(o->unit))
							  : 0);
			if (o->has_key)
				ridmap_put(server_outcome_keys(), (const char *)o->key,
					   OUTCOME_KEY_LEN, 0, now_us);
		}
		live_publish(server_live());
		outcome_counts.accepted += batch.accepted;
		outcome_counts.deduplicated += batch.duplicates;
		outcome_counts.deferred += batch.deferred;
		count_rejected(&batch);
		respond_batch(req, 200, &batch, true, flags != 0, NULL);
	}
	free(lines);
	outcome_batch_free(&batch);
	conf_unref(c);
}

/* The outcome and request-id figures of /metrics. */
static void outcome_metrics(FILE *f)
{
	struct ridmap_stats rs, ks;
	struct timespec mono;

	/* ids that aged out since anything touched their shard are counted now */
	clock_gettime(CLOCK_MONOTONIC, &mono);
	ridmap_sweep(server_rids(), (uint64_t)mono.tv_sec * 1000000u + (uint64_t)mono.tv_nsec / 1000u);
	ridmap_stats(server_rids(), &rs);
	ridmap_stats(server_outcome_keys(), &ks);
	fprintf(f,
		"# HELP abgate_outcomes_total Items posted to POST /outcomes, by result (accepted: "
		"recorded; deduplicated: recorded before, not again; rejected: refused, by reason "
		"in abgate_outcomes_rejected_total; deferred: recorded as pending, its request id "
		"unknown here, for the report to attribute; retry: answered 503, the outcome log "
		"was behind).\n"
		"# TYPE abgate_outcomes_total counter\n"
		"abgate_outcomes_total{result=\"accepted\"} %llu\n"
		"abgate_outcomes_total{result=\"deduplicated\"} %llu\n"
		"abgate_outcomes_total{result=\"deferred\"} %llu\n"
		"abgate_outcomes_total{result=\"retry\"} %llu\n",
		(unsigned long long)outcome_counts.accepted,
		(unsigned long long)outcome_counts.deduplicated,
		(unsigned long long)outcome_counts.deferred,
		(unsigned long long)outcome_counts.retry);
	uint64_t rejected = 0;
	for (int r = 0; r < OUTCOME_NREASONS; r++)
		rejected += outcome_counts.rejected[r];
	fprintf(f, "abgate_outcomes_total{result=\"rejected\"} %llu\n"
		   "# HELP abgate_outcomes_rejected_total Outcome items refused, by reason.\n"
		   "# TYPE abgate_outcomes_rejected_total counter\n",
		(unsigned long long)rejected);
	for (int r = 0; r < OUTCOME_NREASONS; r++)
		fprintf(f, "abgate_outcomes_rejected_total{reason=\"%s\"} %llu\n",
			outcome_reason_name((enum outcome_reason)r),
			(unsigned long long)outcome_counts.rejected[r]);
	fprintf(f,
		"# HELP abgate_outcome_rids_expired_total Request ids that fell out of the "
		"request-id map, by reason (window: older than outcomes.rid_window_s; max_rids: "
		"pushed out by newer ones at outcomes.max_rids).\n"
		"# TYPE abgate_outcome_rids_expired_total counter\n"
		"abgate_outcome_rids_expired_total{reason=\"window\"} %llu\n"
		"abgate_outcome_rids_expired_total{reason=\"max_rids\"} %llu\n"
		"# HELP abgate_outcome_rids Request ids held for attributing outcomes.\n"
		"# TYPE abgate_outcome_rids gauge\n"
		"abgate_outcome_rids %llu\n"
		"# HELP abgate_outcome_rids_bytes Memory reserved for the request-id map.\n"
		"# TYPE abgate_outcome_rids_bytes gauge\n"
		"abgate_outcome_rids_bytes %llu\n"
		"# HELP abgate_outcome_keys Keys of recorded outcomes held for deduplication.\n"
		"# TYPE abgate_outcome_keys gauge\n"
		"abgate_outcome_keys %llu\n"
		"# HELP abgate_outcome_keys_dropped_total Keys of recorded outcomes forgotten "
		"before their window ended (pushed out at outcomes.max_rids): a retry of such an "
		"outcome would be recorded again.\n"
		"# TYPE abgate_outcome_keys_dropped_total counter\n"
		"abgate_outcome_keys_dropped_total %llu\n",
		(unsigned long long)rs.expired, (unsigned long long)rs.evicted,
		(unsigned long long)rs.keys, (unsigned long long)rs.bytes,
		(unsigned long long)ks.keys, (unsigned long long)ks.evicted);
}

/* ---- metrics ------------------------------------------------------------------------------- */

/* Writes a label value with the escapes of the Prometheus text format. */
static void put_label(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', f);
		if (*v == '\n') {
			fputs("\\n", f);
			continue;
		}
		fputc(*v, f);
	}
}

static void handle_metrics(struct httpd_req *req)
{
	struct live_totals t;
	struct server_stats st;
	uint64_t seq;
	char *out = NULL;
	size_t outlen = 0;
	FILE *f = open_memstream(&out, &outlen);

	if (f == NULL || live_totals_get(&t) < 0) {
		if (f != NULL)
			fclose(f);
		free(out);
		return respond_error(req, 500, "out of memory");
	}
	server_stats_get(&st);
	struct conf *c = server_conf_acquire(&seq);

	fputs("# HELP abgate_requests_total Requests answered, by experiment, variant and status "
	      "code (experiment=\"\" outside experiments).\n"
	      "# TYPE abgate_requests_total counter\n", f);
	for (int i = 0; i < t.npairs; i++) {
		const char *exp, *var;
		live_pair_names(i, &exp, &var);
		for (int k = 0; k < 500; k++) {
			if (t.codes[i][k] == 0)
				continue;
			fputs("abgate_requests_total{experiment=\"", f);
			put_label(f, exp);
			fputs("\",variant=\"", f);
			put_label(f, var);
			fprintf(f, "\",code=\"%d\"} %llu\n", k + 100, (unsigned long long)t.codes[i][k]);
		}
	}
	fputs("# HELP abgate_request_duration_seconds Time from a complete request head to the end "
	      "of the response.\n"
	      "# TYPE abgate_request_duration_seconds histogram\n", f);
	for (int i = 0; i < t.npairs; i++) {
		const char *exp, *var;
		if (t.dur_count[i] == 0)
			continue;
		live_pair_names(i, &exp, &var);
		for (int k = 0; k <= LIVE_DURATION_BUCKETS; k++) {
			fputs("abgate_request_duration_seconds_bucket{experiment=\"", f);
			put_label(f, exp);
			fputs("\",variant=\"", f);
			put_label(f, var);
			if (k < LIVE_DURATION_BUCKETS)
				fprintf(f, "\",le=\"%g\"} %llu\n", live_duration_bounds[k],
					(unsigned long long)t.dur[i][k]);
			else
				fprintf(f, "\",le=\"+Inf\"} %llu\n", (unsigned long long)t.dur_count[i]);
		}
		fputs("abgate_request_duration_seconds_sum{experiment=\"", f);
		put_label(f, exp);
		fputs("\",variant=\"", f);
		put_label(f, var);
		fprintf(f, "\"} %.6f\n", t.dur_sum[i]);
		fputs("abgate_request_duration_seconds_count{experiment=\"", f);
		put_label(f, exp);
		fputs("\",variant=\"", f);
		put_label(f, var);
		fprintf(f, "\"} %llu\n", (unsigned long long)t.dur_count[i]);
	}
	fputs("# HELP abgate_upstream_errors_total Failed exchanges with backend servers, by "
	      "reason.\n# TYPE abgate_upstream_errors_total counter\n", f);
	for (size_t b = 0; b < c->nbackends; b++) {
		const struct conf_backend *be = &c->backends[b];
		for (size_t s = 0; s < be->nservers; s++) {
			for (int r = 0; r < UPSTREAM_ERR_COUNT; r++) {
				fputs("abgate_upstream_errors_total{backend=\"", f);
				put_label(f, be->name);
				fputs("\",server=\"", f);
				put_label(f, be->servers[s].addr.text);
				fprintf(f, "\",reason=\"%s\"} %llu\n", upstream_err_name(r),
					(unsigned long long)upstream_error_count(be->servers[s].id, r));
			}
		}
	}
	fputs("# HELP abgate_backend_up Whether a backend server is taking requests (1) or has "
	      "failed repeatedly (0).\n# TYPE abgate_backend_up gauge\n", f);
	for (size_t b = 0; b < c->nbackends; b++) {
		const struct conf_backend *be = &c->backends[b];
		for (size_t s = 0; s < be->nservers; s++) {
			fputs("abgate_backend_up{backend=\"", f);
			put_label(f, be->name);
			fputs("\",server=\"", f);
			put_label(f, be->servers[s].addr.text);
			fprintf(f, "\"} %d\n", upstream_server_up(be->servers[s].id) ? 1 : 0);
		}
	}
	fprintf(f,
		"# HELP abgate_config_reloads_total Configuration reloads, by result.\n"
		"# TYPE abgate_config_reloads_total counter\n"
		"abgate_config_reloads_total{result=\"success\"} %llu\n"
		"abgate_config_reloads_total{result=\"failure\"} %llu\n"
		"# HELP abgate_config_generation The configuration generation serving new requests.\n"
		"# TYPE abgate_config_generation gauge\n"
		"abgate_config_generation %llu\n"
		"# HELP abgate_outcome_log_dropped_total Request records the outcome log could not "
		"take.\n"
		"# TYPE abgate_outcome_log_dropped_total counter\n"
		"abgate_outcome_log_dropped_total %llu\n"
		"# HELP abgate_connections Client connections, by state.\n"
		"# TYPE abgate_connections gauge\n"
		"abgate_connections{state=\"active\"} %u\n"
		"abgate_connections{state=\"idle\"} %u\n"
		"# HELP abgate_workers Event-loop threads.\n"
		"# TYPE abgate_workers gauge\n"
		"abgate_workers %u\n"
		"# HELP abgate_io_uring_workers Event-loop threads making each pass's socket reads "
		"and writes in one io_uring call (the others make one call each).\n"
		"# TYPE abgate_io_uring_workers gauge\n"
		"abgate_io_uring_workers %u\n",
		(unsigned long long)st.reloads_ok, (unsigned long long)st.reloads_failed,
		(unsigned long long)c->generation, (unsigned long long)st.log_dropped, st.active,
		st.sessions >= st.active ? st.sessions - st.active : 0, st.workers,
		st.io_uring_workers);
	fprintf(f,
		"# HELP abgate_shadow_requests_total Mirrored requests, by result (compared, failed: "
		"error or timeout, dropped: not sent, queue full or request too large).\n"
		"# TYPE abgate_shadow_requests_total counter\n"
		"abgate_shadow_requests_total{result=\"compared\"} %llu\n"
		"abgate_shadow_requests_total{result=\"failed\"} %llu\n"
		"abgate_shadow_requests_total{result=\"dropped\"} %llu\n",
		(unsigned long long)st.shadow_compared, (unsigned long long)st.shadow_failed,
		(unsigned long long)st.shadow_dropped);
	rollout_metrics(f, c);
	outcome_metrics(f);
	conf_unref(c);
	live_totals_free(&t);
	fclose(f);
	httpd_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", out, outlen);
	free(out);
}

/* ---- authentication ----------------------------------------------------------------------- */

/* Compares in time that depends only on the lengths, not on where the bytes differ. */
static bool same_secret(const char *a, size_t alen, const char *b, size_t blen)
{
	unsigned char diff = alen != blen;

	for (size_t i = 0; i < alen; i++)
		diff |= (unsigned char)(a[i] ^ b[i % (blen ? blen : 1)]);
	return diff == 0 && blen > 0;
}

/* Whether the Authorization value h (NULL when absent) carries token (NULL: none needed). */
static bool authorized(const char *h, size_t len, const char *token)
{
	if (token == NULL)
		return true;
	if (h == NULL || len < 7 || strncasecmp(h, "Bearer ", 7) != 0)
		return false;
	return same_secret(h + 7, len - 7, token, strlen(token));
}

/* ---- dispatch --------------------------------------------------------------------------------- */

static bool is(const char *path, size_t plen, const char *want)
{
	return plen == strlen(want) && memcmp(path, want, plen) == 0;
}

static enum admin_endpoint endpoint_of(const char *path, size_t plen)
{
	if (is(path, plen, "/healthz"))
		return EP_HEALTHZ;
	if (is(path, plen, "/readyz"))
		return EP_READYZ;
	if (is(path, plen, "/metrics"))
		return EP_METRICS;
	if (is(path, plen, "/experiments"))
		return EP_EXPERIMENTS;
	if (is(path, plen, "/reload"))
		return EP_RELOAD;
	if (is(path, plen, "/outcomes"))
		return EP_OUTCOMES;
	if (plen > 20 && memcmp(path, "/experiments/", 13) == 0 &&
	    memcmp(path + plen - 7, "/report", 7) == 0)
		return EP_REPORT;
	if (plen > 13 && memcmp(path, "/experiments/", 13) == 0 &&
	    memchr(path + 13, '/', plen - 13) != NULL)
		return EP_COMMAND;
	return EP_NONE;
}

void admin_judge(const struct admin_request *r, const char *token, struct admin_verdict *v)
{
	static const char *const none[] = {NULL};
	static const char *const report[] = {"format", NULL};
	static const char *const outcomes[] = {"atomic", "defer", NULL};
	bool get = r->method == HTTP_M_GET || r->method == HTTP_M_HEAD;
	const char *bad;
	size_t bad_len;

	memset(v, 0, sizeof(*v));
	v->endpoint = endpoint_of(r->path, r->path_len);
	v->max_body = ADMIN_SMALL_BODY;
	if (!authorized(r->auth, r->auth_len, token)) {
		v->status = 401;
		v->challenge = true;
		snprintf(v->reason, sizeof(v->reason), "missing or wrong bearer token");
		return;
	}
	switch (v->endpoint) {
	case EP_NONE:
		v->status = 404;
		snprintf(v->reason, sizeof(v->reason), "no such admin endpoint");
		return;
	case EP_HEALTHZ:
	case EP_READYZ:
	case EP_METRICS:
	case EP_EXPERIMENTS:
	case EP_REPORT:
		if (!get) {
			v->status = 405;
			snprintf(v->reason, sizeof(v->reason), "use GET");
			return;
		}
		break;
	case EP_COMMAND:
	case EP_RELOAD:
	case EP_OUTCOMES:
		if (r->method != HTTP_M_POST) {
			v->status = 405;
			snprintf(v->reason, sizeof(v->reason), "use POST");
			return;
		}
		break;
	}
	bool rep = v->endpoint == EP_REPORT, oc = v->endpoint == EP_OUTCOMES;
	if (!query_known(r->query, r->query_len, rep ? report : oc ? outcomes : none, &bad,
			 &bad_len)) {
		/* the name is echoed only as far as it is printable */
		size_t n = 0;
		while (n < bad_len && n < 64 && bad[n] > 0x20 && bad[n] < 0x7f && bad[n] != '\'' &&
		       bad[n] != '\\' && bad[n] != '"')
			n++;
		v->status = 400;
		snprintf(v->reason, sizeof(v->reason), "unknown query parameter '%.*s'%s%s", (int)n,
			 bad, n < bad_len ? "..." : "",
			 rep  ? " (this endpoint takes format)"
			 : oc ? " (this endpoint takes atomic and defer)"
			      : " (this endpoint takes none)");
		return;
	}
	if (oc && !bool_values_ok(r->query, r->query_len)) {
		v->status = 400;
		snprintf(v->reason, sizeof(v->reason), "atomic and defer must be 0, 1, false or true");
		return;
	}
	if (v->endpoint == EP_OUTCOMES)
		v->max_body = ADMIN_OUTCOMES_MAX_BYTES;
}

bool admin_head(struct httpd_req *req, void *arg, size_t *max_body)
{
	struct admin_request r = {.method = httpd_req_method(req)};
	struct admin_verdict v;

	(void)arg;
	r.path = httpd_req_path(req, &r.path_len);
	r.query = httpd_req_query(req, &r.query_len);
	r.auth = httpd_req_header(req, "authorization", &r.auth_len);
	admin_judge(&r, server_admin_token(), &v);
	if (v.status != 0) {
		if (v.challenge)
			httpd_add_header(req, "WWW-Authenticate: Bearer realm=\"abgate admin\"");
		respond_error(req, v.status, v.reason);
		return false;
	}
	*max_body = v.max_body;
	return true;
}

/* Answers a request admin_head() let through. */
void admin_handle(struct httpd_req *req, void *arg)
{
	size_t plen;
	const char *path = httpd_req_path(req, &plen);

	(void)arg;
	switch (endpoint_of(path, plen)) {
	case EP_HEALTHZ:
		httpd_respond(req, 200, "text/plain", "ok\n", 3);
		break;
	case EP_READYZ:
		if (server_ready())
			httpd_respond(req, 200, "text/plain", "ready\n", 6);
		else
			httpd_respond(req, 503, "text/plain", "draining\n", 9);
		break;
	case EP_METRICS:
		handle_metrics(req);
		break;
	case EP_EXPERIMENTS:
		handle_experiments(req);
		break;
	case EP_REPORT:
		handle_report(req, path + 13, plen - 20);
		break;
	case EP_COMMAND:
		handle_rollout_command(req, path + 13, plen - 13);
		break;
	case EP_RELOAD:
		handle_reload(req);
		break;
	case EP_OUTCOMES:
		handle_outcomes(req);
		break;
	case EP_NONE:
		respond_error(req, 404, "no such admin endpoint");
		break;
	}
}
