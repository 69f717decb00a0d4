/*
 * shadow.c - shadow traffic (see include/shadow.h).
 *
 * A shadow lives on its worker's loop beside the session whose request it copies; the two are
 * linked until the primary exchange ends (shadow_primary_end), after which the shadow finishes
 * on its own: when its answer is in (or failed, or timed out) it compares, logs, and frees
 * itself. Nothing here ever touches the session's buffers or sockets.
 */
#include <errno.h>
#include <event2/event.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <cJSON.h>

#include "conf.h"
#include "http.h"
#include "live.h"
#include "log.h"
#include "net.h"
#include "outlog.h"
#include "shadow.h"
#include "upstream.h"
#include "worker.h"

#define REQ_MAX (64 * 1024)
#define RESP_MAX (256 * 1024)
#define TIMEOUT_MAX_MS 10000
#define RECORD_MAX 2048

struct bytes {
	char *p;
	size_t len, cap;
	bool truncated;
};

struct shadow {
	uint8_t owner_kind; /* OWNER_SHADOW: the pools' owner dispatch reads it first */
	struct worker *w;   /* (ref) */
	struct shadow *prev, *next;
	struct conf *conf;  /* a reference held for the names below */
	const struct conf_experiment *e; /* (ref) into conf */
	const char *variant;             /* (ref) the primary's variant */
	char rid[80];
	size_t rid_len;

	/* the shadow exchange */
	struct upconn *u;
	int server;
	bool reused;        /* u came from the idle pool */
	bool retried;       /* the copy went out again after a stale pooled connection */
	bool got_any;       /* some bytes of an answer came (an interim 1xx counts) */
	bool idempotent;    /* the request's method may be sent again */
	bool has_body;      /* the request has body bytes: never sent twice */
	bool capped;        /* the timer is the shadow's own cap, shorter than the limit */
	struct event *timer;
	struct bytes req;
	size_t sent;
	bool req_complete;
	bool dropped;       /* the request was too large to copy: nothing is sent */
	struct bytes resp;
	bool head_done, resp_done, failed;
	const char *fail_reason;
	int status;
	enum http_body body;
	uint64_t left;
	size_t body_start, framed;
	struct http_chunked ch;
	bool keep_alive;
	uint64_t t_sent;
	double latency_ms;

	/* the primary exchange */
	bool primary_ended;
	bool p_complete;
	int p_status;
	bool p_chunked;
	struct bytes p_body;
	double p_latency_ms;
};

static void finish(struct shadow *sh);

static uint64_t now_us(struct worker *w)
{
	(void)w;
	return worker_clock_us();
}

/* Appends n bytes, growing up to max; past it the copy is marked truncated. */
static void append(struct bytes *b, const char *p, size_t n, size_t max)
{
	if (b->truncated)
		return;
	if (b->len + n > max) {
		b->truncated = true;
		return;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		while (cap < b->len + n)
			cap *= 2;
		char *q = realloc(b->p, cap);
		if (q == NULL) {
			b->truncated = true;
			return;
		}
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

struct shadow *shadow_begin(struct worker *w, struct conf *c, const struct conf_experiment *e,
			    const char *variant, enum http_method method, const char *head,
			    size_t head_len, const char *rid, size_t rid_len)
{
	const struct conf_shadow *cs = &e->shadow;

	if (cs->backend == NULL || cs->percent <= 0)
		return NULL;
	if (cs->percent < 100 && (double)(worker_rand(w) % 1000000) >= cs->percent * 10000)
		return NULL;
	/* a head that cannot be copied whole (with our marker) is not mirrored at all */
	if (w->nshadows >= SHADOW_MAX_INFLIGHT || head_len < 4 || head_len - 2 + 22 > REQ_MAX ||
	    rid_len >= 80) {
		STAT_ADD(w->stats.shadow_dropped, 1);
		return NULL;
	}
	struct shadow *sh = calloc(1, sizeof(*sh));
	if (sh == NULL) {
		STAT_ADD(w->stats.shadow_dropped, 1);
		return NULL;
	}
	sh->owner_kind = OWNER_SHADOW;
	sh->w = w;
	sh->conf = conf_ref(c);
	sh->e = e;
	sh->variant = variant;
	sh->idempotent = http_method_idempotent(method);
	sh->server = -1;
	memcpy(sh->rid, rid, rid_len);
	sh->rid_len = rid_len;
	/* the same head, marked so the shadow backend can tell mirrored traffic apart */
	append(&sh->req, head, head_len - 2, REQ_MAX);
	append(&sh->req, "X-Abgate-Shadow: 1\r\n\r\n", 22, REQ_MAX);
	sh->next = w->shadows;
	if (w->shadows != NULL)
		w->shadows->prev = sh;
	w->shadows = sh;
	w->nshadows++;
	return sh;
}

void shadow_request_body(struct shadow *sh, const char *p, size_t n)
{
	if (n > 0)
		sh->has_body = true;
	append(&sh->req, p, n, REQ_MAX);
	if (sh->req.truncated)
		sh->dropped = true;
}

/* Gives up the upstream connection; reusable only after a cleanly framed answer. */
static void release(struct shadow *sh, bool reusable)
{
	if (sh->u != NULL) {
		upstream_release(sh->u, reusable);
		sh->u = NULL;
	}
	if (sh->timer != NULL)
		event_del(sh->timer);
}

/* Ends the exchange as failed. kind (an upstream_err, or -1 for none) is the shadow server's
 * fault, which counts toward its health like a primary request's: a dead shadow server is
 * marked down and then skipped. */
static void fail(struct shadow *sh, const char *why, int kind)
{
	if (kind >= 0)
		upstream_note_error(sh->server, (enum upstream_err)kind,
				    sh->e->shadow.backend->health_fall);
	sh->failed = true;
	sh->fail_reason = why;
	release(sh, false);
	if (sh->primary_ended)
		finish(sh);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct shadow *sh = arg;

	/* past the shadow's own cap but within the configured limit is not the server's fault */
	fail(sh, "timeout", sh->capped ? -1 : UPSTREAM_ERR_TIMEOUT);
}


/* The exchange failed on a kept-alive connection before any answer came: the server closed it
 * while it was idle, which says nothing about the server. The copy goes once more, on another
 * connection. Returns false when it cannot (already retried, or no connection). */
static bool retry_stale(struct shadow *sh)
{
	const struct conf_backend *be = sh->e->shadow.backend;

	/* as for a primary request: a method that may be repeated, without a body */
	if (!sh->reused || sh->retried || sh->got_any || !sh->idempotent || sh->has_body)
		return false;
	sh->retried = true;
	upstream_release(sh->u, false);
	sh->u = upstream_acquire(sh->w->pools, sh->server, be->tls_ctx, be->verify, sh,
				 &sh->reused);
	if (sh->u == NULL)
		upstream_note_error(sh->server, UPSTREAM_ERR_CONNECT, be->health_fall);
	sh->sent = 0;
	sh->t_sent = now_us(sh->w);
	return sh->u != NULL;
}

/* A failure of the connection itself (write, read, close): retried once when the pooled
 * connection was stale, else a fault of the server. Returns true when the exchange goes on. */
static bool conn_failed(struct shadow *sh, const char *why)
{
	bool stale = sh->reused && !sh->got_any;

	if (retry_stale(sh))
		return true;
	fail(sh, why, stale ? -1 : UPSTREAM_ERR_CLOSED);
	return false;
}

/* Parses the answer's head once it is in. Returns false on a malformed answer. */
static bool parse_head(struct shadow *sh)
{
	struct http_header hdr[64];
	struct http_msg m;

	http_msg_reset(&m);
	m.hdr = hdr;
	m.max_hdr = 64;
	enum http_parse rc = http_parse_response(&m, sh->resp.p, sh->resp.len, HTTP_M_POST, NULL);
	if (rc == HTTP_AGAIN)
		return !sh->resp.truncated;
	if (rc != HTTP_OK)
		return false;
	if (m.status < 200) { /* interim answers are skipped */
		memmove(sh->resp.p, sh->resp.p + m.head_len, sh->resp.len - m.head_len);
		sh->resp.len -= m.head_len;
		return parse_head(sh);
	}
	sh->head_done = true;
	sh->status = m.status;
	sh->body = m.body;
	sh->left = m.body == HTTP_BODY_LENGTH ? m.content_length : 0;
	sh->keep_alive = m.keep_alive;
	sh->body_start = sh->framed = m.head_len;
	http_chunked_reset(&sh->ch);
	sh->resp_done = m.body == HTTP_BODY_NONE;
	return true;
}

/* Frames the answer's body bytes that have arrived; sets resp_done at its end. */
static bool frame_body(struct shadow *sh)
{
	size_t avail = sh->resp.len - sh->framed;

	if (sh->resp_done || avail == 0)
		return true;
	if (sh->body == HTTP_BODY_LENGTH) {
		size_t take = sh->left < avail ? (size_t)sh->left : avail;
		sh->left -= take;
		sh->framed += take;
		sh->resp_done = sh->left == 0;
	} else if (sh->body == HTTP_BODY_CHUNKED) {
		size_t used;
		enum http_parse rc = http_chunked_feed(&sh->ch, sh->resp.p + sh->framed, avail, &used);
		if (rc == HTTP_ERROR || rc == HTTP_TOO_LARGE)
			return false;
		sh->framed += used;
		sh->resp_done = rc == HTTP_OK;
	} else {
		sh->framed += avail;
	}
	return true;
}

static void run(struct shadow *sh)
{
	struct upconn *u = sh->u;

	while (u != NULL && !sh->resp_done && !sh->failed) {
		bool progress = false;
		if (u->connecting) {
			if (!u->c.writable)
				return;
			if (net_socket_error(u->c.fd) != 0)
				return fail(sh, "connect", UPSTREAM_ERR_CONNECT);
			u->connecting = false;
		}
		if (sh->sent < sh->req.len && u->c.writable) {
			struct iovec iov = {sh->req.p + sh->sent, sh->req.len - sh->sent};
			ssize_t n = conn_writev(&u->c, &iov, 1);
			if (n < 0 && errno != EAGAIN) {
				if (!conn_failed(sh, "write"))
					return;
				u = sh->u;
				continue;
			}
			if (n > 0) {
				sh->sent += (size_t)n;
				progress = true;
			}
		}
		if (u->c.readable) {
			char buf[16384];
			ssize_t n = conn_read(&u->c, buf, sizeof(buf));
			if (n > 0) {
				sh->got_any = true;
				append(&sh->resp, buf, (size_t)n, RESP_MAX);
				progress = true;
			} else if (n == 0 || errno != EAGAIN) {
				if (sh->head_done && sh->body == HTTP_BODY_EOF) {
					frame_body(sh);
					sh->resp_done = true;
					sh->keep_alive = false;
					break;
				}
				if (!conn_failed(sh, n == 0 ? "closed" : "read"))
					return;
				u = sh->u;
				continue;
			}
		}
		if (!sh->head_done && !parse_head(sh))
			return fail(sh, "invalid response", UPSTREAM_ERR_INVALID);
		if (sh->head_done && !frame_body(sh))
			return fail(sh, "invalid response body", UPSTREAM_ERR_INVALID);
		if (sh->resp.truncated && !sh->resp_done) {
			/* bigger than we keep: compare what we have, drop the connection */
			sh->resp_done = true;
			sh->keep_alive = false;
		}
		if (!progress)
			return;
	}
	if (sh->resp_done && sh->u != NULL) {
		sh->latency_ms = (double)(now_us(sh->w) - sh->t_sent) / 1000.0;
		upstream_note_success(sh->server);
		release(sh, sh->keep_alive && sh->body != HTTP_BODY_EOF && !sh->resp.truncated &&
				    sh->framed == sh->resp.len);
		if (sh->primary_ended)
			finish(sh);
	}
}

void shadow_request_done(struct shadow *sh)
{
	const struct conf_backend *be = sh->e->shadow.backend;
	struct worker *w = sh->w;

	sh->req_complete = true;
	if (sh->dropped)
		return;
	for (size_t i = 0; i < be->nservers && sh->u == NULL; i++) {
		const struct conf_server *srv = &be->servers[w->shadow_rr++ % be->nservers];
		if (!upstream_server_usable(srv->id))
			continue;
		sh->server = srv->id;
		sh->u = upstream_acquire(w->pools, srv->id, be->tls_ctx, be->verify, sh,
					 &sh->reused);
		if (sh->u == NULL) /* refused at once (unreachable, no TLS): a connect failure */
			upstream_note_error(srv->id, UPSTREAM_ERR_CONNECT, be->health_fall);
	}
	if (sh->u == NULL) {
		sh->failed = true;
		sh->fail_reason = "no shadow server";
		return;
	}
	uint32_t ms = sh->conf->limits.upstream_timeout_ms;
	if (ms == 0 || ms > TIMEOUT_MAX_MS) {
		ms = TIMEOUT_MAX_MS;
		sh->capped = true;
	}
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	sh->timer = evtimer_new(w->base, timer_cb, sh);
	if (sh->timer == NULL || evtimer_add(sh->timer, &tv) < 0) {
		fail(sh, "timer", -1);
		return;
	}
	sh->t_sent = now_us(w);
	run(sh);
}

void shadow_event(struct shadow *sh, short what)
{
	run(sh);
}

void shadow_primary_head(struct shadow *sh, int status, bool chunked)
{
	sh->p_status = status;
	sh->p_chunked = chunked;
}

void shadow_primary_body(struct shadow *sh, const char *p, size_t n)
{
	append(&sh->p_body, p, n, RESP_MAX);
}

void shadow_primary_end(struct shadow *sh, double latency_ms, bool complete)
{
	sh->primary_ended = true;
	sh->p_complete = complete;
	sh->p_latency_ms = latency_ms;
	if (!sh->req_complete)
		sh->dropped = true; /* the request never completed: there is nothing to mirror */
	if (sh->dropped || sh->failed || sh->resp_done)
		finish(sh);
}

/* Removes chunk framing in place from a complete chunked body; returns the data length. */
static size_t dechunk(char *b, size_t n)
{
	size_t r = 0, w = 0;

	while (r < n) {
		size_t size = 0;
		while (r < n && ((b[r] >= '0' && b[r] <= '9') || ((b[r] | 0x20) >= 'a' && (b[r] | 0x20) <= 'f'))) {
			int c = b[r] | 0x20;
			size = size * 16 + (size_t)(c <= '9' ? c - '0' : c - 'a' + 10);
			if (size > n)
				return w;
			r++;
		}
		while (r < n && b[r] != '\n')
			r++;
		r++;
		if (size == 0 || r + size > n)
			break;
		memmove(b + w, b + r, size);
		w += size;
		r += size + 2;
	}
	return w;
}

/* The numeric JSON field of a body, if it has one. */
static bool json_number(const char *body, size_t len, const char *field, double *out)
{
	cJSON *doc = cJSON_ParseWithLength(body, len);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, field);
	bool ok = cJSON_IsNumber(v) && isfinite(v->valuedouble);

	if (ok)
		*out = v->valuedouble;
	cJSON_Delete(doc);
	return ok;
}

static char *put(char *o, const char *s)
{
	size_t n = strlen(s);
	memcpy(o, s, n);
	return o + n;
}

/* Compares, logs the shadow record, and frees the shadow. */
static void finish(struct shadow *sh)
{
	struct worker *w = sh->w;
	const struct conf_shadow *cs = &sh->e->shadow;
	char num[64];

	if (sh->dropped) {
		STAT_ADD(w->stats.shadow_dropped, 1);
		goto out;
	}
	if (sh->failed)
		STAT_ADD(w->stats.shadow_failed, 1);
	else
		STAT_ADD(w->stats.shadow_compared, 1);
	char *body = sh->resp.p != NULL ? sh->resp.p + sh->body_start : NULL;
	size_t blen = sh->resp.p != NULL ? sh->framed - sh->body_start : 0;
	if (!sh->failed && sh->body == HTTP_BODY_CHUNKED && body != NULL)
		blen = dechunk(body, blen);
	size_t plen = sh->p_body.len;
	if (sh->p_chunked && sh->p_body.p != NULL)
		plen = dechunk(sh->p_body.p, plen);
	bool comparable = !sh->failed && sh->p_complete && !sh->resp.truncated &&
			  !sh->p_body.truncated;
	char line[RECORD_MAX + 6 * sizeof(sh->rid)];
	char *o = line, *end = line + sizeof(line);
	uint64_t t = worker_wall_us(w, worker_clock_us());
	struct timeval tv = {.tv_sec = (time_t)(t / 1000000u), .tv_usec = (suseconds_t)(t % 1000000u)};
	o = put(o, "{\"v\":1,\"type\":\"shadow\",\"ts\":\"");
	o += outlog_format_ts(o, (size_t)(end - o), &tv);
	o = put(o, "\",\"exp\":");
	o += outlog_json_str(o, (size_t)(end - o), sh->e->name, strlen(sh->e->name));
	o = put(o, ",\"variant\":\"shadow\",\"primary_variant\":");
	o += outlog_json_str(o, (size_t)(end - o), sh->variant, strlen(sh->variant));
	o = put(o, ",\"rid\":");
	o += outlog_json_str(o, (size_t)(end - o), sh->rid, sh->rid_len);
	if (sh->failed) {
		o = put(o, ",\"status\":null,\"latency_ms\":null,\"error\":");
		o += outlog_json_str(o, (size_t)(end - o), sh->fail_reason,
				     strlen(sh->fail_reason));
	} else {
		snprintf(num, sizeof(num), ",\"status\":%d,\"latency_ms\":%.3f", sh->status,
			 sh->latency_ms);
		o = put(o, num);
	}
	snprintf(num, sizeof(num), ",\"primary_status\":%d,\"primary_latency_ms\":%.3f",
		 sh->p_status, sh->p_latency_ms);
	o = put(o, num);
	if (comparable) {
		bool same_status = sh->status == sh->p_status;
		bool same_body = blen == plen && (blen == 0 || memcmp(body, sh->p_body.p, blen) == 0);
		o = put(o, same_status ? ",\"same_status\":true" : ",\"same_status\":false");
		o = put(o, same_body ? ",\"same_body\":true" : ",\"same_body\":false");
		if (cs->compare_json_field != NULL) {
			double a, b;
			if (json_number(body, blen, cs->compare_json_field, &a) &&
			    json_number(sh->p_body.p, plen, cs->compare_json_field, &b)) {
				double diff = a - b;
				/* two huge values of opposite signs overflow: no number to log */
				if (isfinite(diff))
					snprintf(num, sizeof(num),
						 ",\"field_diff\":%.17g,\"field_agree\":%s", diff,
						 fabs(diff) <= cs->compare_tolerance ? "true" : "false");
				else
					snprintf(num, sizeof(num),
						 ",\"field_diff\":null,\"field_agree\":false");
				o = put(o, num);
			} else {
				o = put(o, ",\"field_diff\":null,\"field_agree\":false");
			}
		}
	} else {
		o = put(o, ",\"same_status\":null,\"same_body\":null");
	}
	o = put(o, "}\n");
	size_t len = (size_t)(o - line);
	/* the live report's shadow section counts every record, also one the log has to drop
	 * (and when there is no outcome log) */
	if (live_shadow_record(sh->e->name, line, len - 1) < 0)
		log_warnx("shadow record of %s not counted in the live report", sh->e->name);
	char *dst = w->olb != NULL ? outlog_reserve(w->olb, len) : NULL;
	if (dst != NULL) {
		memcpy(dst, line, len);
		outlog_commit(w->olb, len);
	}
out:
	release(sh, false);
	if (sh->timer != NULL)
		event_free(sh->timer);
	if (sh->prev != NULL)
		sh->prev->next = sh->next;
	else
		w->shadows = sh->next;
	if (sh->next != NULL)
		sh->next->prev = sh->prev;
	w->nshadows--;
	conf_unref(sh->conf);
	free(sh->req.p);
	free(sh->resp.p);
	free(sh->p_body.p);
	free(sh);
}

void shadow_close_all(struct worker *w)
{
	while (w->shadows != NULL) {
		struct shadow *sh = w->shadows;
		sh->dropped = true; /* shutting down: nothing more is compared */
		sh->primary_ended = true;
		finish(sh);
	}
}
