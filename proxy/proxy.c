/*
 * proxy.c - the data path (see include/proxy.h).
 *
 * A session is one client connection. Its socket, and its upstream connection's, are each
 * registered once, edge-triggered, for reading and writing; an edge only sets the conn's
 * readable/writable flag and runs session_run(), which moves bytes until nothing more can move:
 *
 *   client --read--> in --(head: parse, route, rewrite into uout; body: framed)--> upstream
 *   client <--write-- out (rewritten response head) + uin (framed body) <--read-- upstream
 *
 * Bodies are never copied: the framed bytes of `in` and `uin` are written to the other side
 * with writev() beside the rewritten head. Every buffer is bounded; when one is full the side
 * feeding it is simply not read (its readable flag stays set), and reading resumes as soon as
 * the other side drains it. A read shorter than the room offered means the socket is empty, so
 * the flag drops without a read returning EAGAIN: a plain request costs four socket calls.
 *
 * Requests on one connection are served one at a time; pipelined requests wait in `in` and are
 * answered in order. A head is parsed, in the worker's shared header array, only when a line
 * end has arrived, and fully handled in that same call.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "conf.h"
#include "conn.h"
#include "fwd.h"
#include "http.h"
#include "httpd.h"
#include "iobatch.h"
#include "live.h"
#include "log.h"
#include "net.h"
#include "outlog.h"
#include "proxy.h"
#include "put.h"
#include "ridmap.h"
#include "rollout.h"
#include "router.h"
#include "shadow.h"
#include "upstream.h"
#include "worker.h"

#define UNIT_MAX 256
#define RID_MAX 72
/* a record's fixed part plus its strings escaped at worst (6 bytes per byte) */
#define RECORD_MAX (2048 + 6 * (UNIT_MAX + RID_MAX))
#define ACCESS_TARGET_MAX 512
#define ACCESS_MAX (1024 + 6 * (ACCESS_TARGET_MAX + RID_MAX))

enum state {
	ST_HEAD,  /* waiting for (the rest of) a request head; idle when `in` is empty */
	ST_PROXY, /* a request is being exchanged with an upstream */
	ST_LOCAL, /* writing a response of our own (an error), then ST_HEAD or close */
	ST_LINGER, /* answered and half-closed: dropping what the client still sends (net.h) */
};

struct buf {
	char *p; /* NULL until needed; given back to the worker's pool when empty and idle */
	uint32_t start, end;
	uint32_t cap; /* bytes at p: the pool's size, or WORKER_BIG_BUF while a body streams */
};

struct session {
	uint8_t owner_kind; /* OWNER_SESSION: the pools' owner dispatch reads it first */
	struct worker *w;   /* (ref) */
	struct session *prev, *next;
	struct conn c;
	struct event *timer;
	uint64_t timer_at; /* armed deadline (us), 0 when not armed */
	enum state state;
	struct buf in, out, uin, uout;
	uint32_t lf_scan;  /* bytes of the head in `in` already searched for a line end */
	char ip[48];
	uint8_t ip_len;
	bool client_eof;
	bool close_after;  /* close once the current response is out */
	bool keep_alive;   /* the client allows another request after this one */
	size_t linger_left; /* ST_LINGER: bytes still to drop before closing anyway */

	uint64_t t_client;   /* last read from or write to the client (us) */
	uint64_t t_upstream; /* last progress with the upstream, or connect start */
	uint64_t t_head;     /* first byte of the pending head */
	uint64_t t_start;    /* request head complete */
	uint64_t t_linger;   /* ST_LINGER began */

	/* the request in flight */
	struct gen *gen; /* (ref) held for the request */
	const struct conf_experiment *exp;  /* (ref) into gen */
	const struct conf_variant *variant; /* (ref) into gen */
	const struct conf_backend *backend; /* (ref) into gen */
	enum http_method method;
	int minor;
	int tries;
	int server; /* registry id of the server tried last, -1 before any */
	enum http_body req_body;
	uint64_t req_left;
	uint32_t req_framed; /* body bytes at in.start ready to send */
	bool req_done;
	struct http_chunked req_chunk;

	uint8_t wq_want;  /* WQ_CLIENT/WQ_UPSTREAM: writes waiting for the end of the pass */
	bool wq_in_run;   /* wq_idx indexes w->wq_run (being flushed), not w->wq */
	int32_t wq_idx;   /* position in the worker's write queue, -1 when not queued */

	struct upconn *u;
	struct shadow *shadow; /* the request's shadow copy while the exchange runs, or NULL */
	bool u_reused;
	bool sent_any;      /* some of this request reached the upstream socket */
	bool got_any;       /* some of the response arrived */
	bool upstream_eof;
	int upstream_err;
	uint32_t uin_scan;
	bool resp_head_done;
	bool upstream_keep;
	enum http_body resp_body;
	uint64_t resp_left;
	uint32_t resp_framed;
	bool resp_done;
	bool aborted;       /* the response cannot be completed: close after what is buffered */
	struct http_chunked resp_chunk;
	int status;
	uint64_t bytes_in, bytes_out;

	char unit[UNIT_MAX];
	uint16_t unit_len;
	uint64_t unit_hash; /* H(salt ":" unit), 0 without a unit */
	bool set_cookie;
	bool forced;
	char rid[RID_MAX];
	uint8_t rid_len;
	bool rid_generated;
	char target[ACCESS_TARGET_MAX]; /* method and target for the access log */
	uint16_t target_len;
	uint8_t method_len;
};

static void session_run(struct session *s);
static void session_free(struct session *s);
static void local_response(struct session *s, int status, const char *reason, bool close);

/* ---- time and buffers ------------------------------------------------------------------ */

/* The time, read now. */
static void clock_tick(struct worker *w)
{
	w->now_us = worker_clock_us();
	w->clock_read = true;
}

/* The time at an event: read once per pass of the loop, by its first event (as nginx does), so
 * the events of one pass share it. */
static void clock_pass(struct worker *w)
{
	if (!w->clock_read)
		clock_tick(w);
}

static inline uint64_t now_us(const struct worker *w)
{
	return w->now_us;
}

static bool buf_ensure(struct session *s, struct buf *b)
{
	if (b->p == NULL) {
		b->p = worker_buf_get(s->w);
		b->start = b->end = 0;
		b->cap = s->w->bufs.size;
	}
	return b->p != NULL;
}

/* Gives b's memory back to the pool it came from; b is empty (and unallocated) after. */
static void buf_drop(struct session *s, struct buf *b)
{
	if (b->p != NULL) {
		if (b->cap > s->w->bufs.size)
			worker_bigbuf_put(s->w, b->p);
		else
			worker_buf_put(s->w, b->p);
	}
	b->p = NULL;
	b->start = b->end = b->cap = 0;
}

static void buf_release(struct session *s, struct buf *b)
{
	if (b->p != NULL && b->start == b->end)
		buf_drop(s, b);
}

/*
 * Swaps b for a large buffer while a body of more than its room is still to come through it,
 * so that a large body costs fewer, larger reads and writes. What b holds moves along (at most
 * one small buffer's worth, once per body). Without a large buffer to spare, b stays.
 */
static void buf_grow(struct session *s, struct buf *b)
{
	if (b->p == NULL || b->cap > s->w->bufs.size)
		return;
	char *big = worker_bigbuf_get(s->w);
	if (big == NULL)
		return;
	uint32_t len = b->end - b->start;
	memcpy(big, b->p + b->start, len);
	worker_buf_put(s->w, b->p);
	b->p = big;
	b->start = 0;
	b->end = len;
	b->cap = WORKER_BIG_BUF;
}

static inline uint32_t buf_len(const struct buf *b)
{
	return b->end - b->start;
}

/* Room at the end of b, moving its bytes to the front when that makes room. */
static uint32_t buf_room(struct session *s, struct buf *b)
{
	uint32_t cap = b->cap;

	if (b->end == cap && b->start > 0) {
		memmove(b->p, b->p + b->start, b->end - b->start);
		b->end -= b->start;
		b->start = 0;
	}
	return cap - b->end;
}

static inline void buf_consume(struct buf *b, uint32_t n)
{
	b->start += n;
	if (b->start == b->end)
		b->start = b->end = 0;
}

static const struct conf *sconf(const struct session *s)
{
	return s->gen->conf;
}

/* ---- timers ------------------------------------------------------------------------------ */

static void timer_cb(evutil_socket_t fd, short what, void *arg);

enum timeout_result {
	TO_NONE,  /* no deadline passed; *next says when the next one comes */
	TO_RUN,   /* one passed and changed the session's state: run its loop */
	TO_FREED, /* one passed and the session is gone */
};

/* Checks the session's deadlines; when none has passed, stores the earliest coming one in
 * *next (0: none). */
static enum timeout_result check_timeouts(struct session *s, uint64_t now, uint64_t *next)
{
	const struct conf_limits *lim = &s->w->cur->conf->limits;
	uint64_t d = UINT64_MAX;

	if (s->wq_want != 0) {
		/* I/O of this pass is still to be made (an idle client's new request, say): the
		 * session runs again right after it, and its deadlines are weighed then */
		*next = 0;
		return TO_NONE;
	}
	if (s->gen != NULL)
		lim = &sconf(s)->limits;
#define DEADLINE(base, ms) ((base) + (uint64_t)(ms) * 1000u)
	switch (s->state) {
	case ST_HEAD:
		if (buf_len(&s->in) == 0) {
			d = DEADLINE(s->t_client, lim->idle_timeout_ms);
			if (now >= d) {
				session_free(s);
				return TO_FREED;
			}
		} else {
			d = DEADLINE(s->t_head, lim->client_header_timeout_ms);
			if (now >= d) {
				local_response(s, 408, "request head not received in time", true);
				return TO_RUN;
			}
		}
		break;
	case ST_PROXY:
		if (s->u != NULL && s->u->connecting) {
			d = DEADLINE(s->t_upstream, lim->upstream_connect_timeout_ms);
			if (now >= d) {
				s->upstream_err = ETIMEDOUT;
				s->upstream_eof = true;
				return TO_RUN; /* the loop answers 504 */
			}
		} else if (s->u != NULL && !s->resp_done) {
			d = DEADLINE(s->t_upstream, lim->upstream_timeout_ms);
			if (now >= d) {
				s->upstream_err = ETIMEDOUT;
				s->upstream_eof = true;
				return TO_RUN;
			}
		}
		if (buf_len(&s->out) > 0 || s->resp_framed > 0 || !s->req_done) {
			uint64_t dc = DEADLINE(s->t_client, lim->client_timeout_ms);
			if (now >= dc) {
				session_free(s);
				return TO_FREED;
			}
			if (dc < d)
				d = dc;
		}
		break;
	case ST_LOCAL:
		d = DEADLINE(s->t_client, lim->client_timeout_ms);
		if (now >= d) {
			session_free(s);
			return TO_FREED;
		}
		break;
	case ST_LINGER:
		d = DEADLINE(s->t_linger, NET_LINGER_MS);
		if (now >= d) {
			session_free(s);
			return TO_FREED;
		}
		break;
	}
#undef DEADLINE
	*next = d == UINT64_MAX ? 0 : d;
	return TO_NONE;
}

static void arm_timer(struct session *s, uint64_t now, uint64_t at)
{
	if (at == 0 || (s->timer_at != 0 && s->timer_at <= at))
		return; /* an earlier wake-up is armed; it re-arms for the rest when it fires */
	struct timeval tv;
	uint64_t delta = at > now ? at - now : 0;
	tv.tv_sec = (time_t)(delta / 1000000u);
	tv.tv_usec = (suseconds_t)(delta % 1000000u);
	if (event_add(s->timer, &tv) == 0)
		s->timer_at = at;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	uint64_t next;

	clock_pass(s->w);
	s->timer_at = 0;
	if (check_timeouts(s, now_us(s->w), &next) == TO_FREED)
		return;
	session_run(s);
}

/* ---- access log -------------------------------------------------------------------------- */

static char *put_json(char *o, char *end, const char *str, size_t len)
{
	if (str == NULL)
		return put(o, "null", 4);
	return o + outlog_json_str(o, (size_t)(end - o), str, len);
}

/* One JSON line per request: who asked what, what came back, how long it took. */
static void record_access(struct session *s, double latency_ms)
{
	struct worker *w = s->w;
	char *dst = outlog_reserve(w->alb, ACCESS_MAX);
	uint64_t wall = worker_wall_us(w, s->t_start);
	struct timeval tv = {.tv_sec = (time_t)(wall / 1000000u),
			     .tv_usec = (suseconds_t)(wall % 1000000u)};

	if (dst == NULL)
		return;
	char *o = dst, *end = dst + ACCESS_MAX;
	o = PUTS(o, "{\"ts\":\"");
	o += outlog_format_ts(o, (size_t)(end - o), &tv);
	o = PUTS(o, "\",\"client\":");
	o = put_json(o, end, s->ip, s->ip_len);
	o = PUTS(o, ",\"method\":");
	o = put_json(o, end, s->target, s->method_len);
	o = PUTS(o, ",\"target\":");
	o = put_json(o, end, s->target + s->method_len, s->target_len - s->method_len);
	o = PUTS(o, ",\"status\":");
	o = put_u64(o, (uint64_t)s->status);
	o = PUTS(o, ",\"latency_ms\":");
	uint64_t us = (uint64_t)(latency_ms * 1000.0 + 0.5);
	o = put_u64(o, us / 1000);
	*o++ = '.';
	*o++ = (char)('0' + us / 100 % 10);
	*o++ = (char)('0' + us / 10 % 10);
	*o++ = (char)('0' + us % 10);
	o = PUTS(o, ",\"bytes_in\":");
	o = put_u64(o, s->bytes_in);
	o = PUTS(o, ",\"bytes_out\":");
	o = put_u64(o, s->bytes_out);
	o = PUTS(o, ",\"exp\":");
	o = put_json(o, end, s->exp ? s->exp->name : NULL, s->exp ? s->exp->name_len : 0);
	o = PUTS(o, ",\"variant\":");
	o = put_json(o, end, s->variant ? s->variant->name : NULL,
		     s->variant ? s->variant->name_len : 0);
	o = PUTS(o, ",\"rid\":");
	o = put_json(o, end, s->rid, s->rid_len);
	o = PUTS(o, ",\"upstream\":");
	size_t ul = 0;
	const char *up = s->server >= 0 ? upstream_server_name(s->server, &ul) : NULL;
	o = put_json(o, end, up, ul);
	o = PUTS(o, "}\n");
	outlog_commit(w->alb, (size_t)(o - dst));
}

/* ---- request records ----------------------------------------------------------------------- */

static void record_request(struct session *s, uint64_t now)
{
	struct worker *w = s->w;

	double latency_ms = (double)(now - s->t_start) / 1000.0;

	if (w->alb != NULL)
		record_access(s, latency_ms);
	uint64_t wall = worker_wall_us(w, s->t_start);

	live_request(w->live, s->exp, s->variant, s->status, latency_ms, (double)wall / 1e6,
		     s->unit_hash, s->forced || s->unit_hash == 0);
	if (s->exp == NULL || w->olb == NULL)
		return;
	char *dst = outlog_reserve(w->olb, RECORD_MAX);
	if (dst == NULL)
		return; /* the queue is full: outlog_dropped() counts it */
	struct outlog_request r;
	memset(&r, 0, sizeof(r));
	r.ts.tv_sec = (time_t)(wall / 1000000u);
	r.ts.tv_usec = (suseconds_t)(wall % 1000000u);
	r.exp = s->exp->name;
	r.exp_len = s->exp->name_len;
	r.variant = s->variant->name;
	r.variant_len = s->variant->name_len;
	r.unit = s->unit_hash != 0 ? s->unit : NULL; /* 0: not randomised */
	r.unit_len = s->unit_hash != 0 ? s->unit_len : 0;
	r.rid = s->rid;
	r.rid_len = s->rid_len;
	r.status = s->status;
	r.latency_ms = latency_ms;
	if (s->server >= 0)
		r.upstream = upstream_server_name(s->server, &r.upstream_len);
	r.bytes_in = s->bytes_in;
	r.bytes_out = s->bytes_out;
	r.forced = s->forced;
	size_t len = outlog_format_request(dst, RECORD_MAX, &r);
	if (len == 0)
		STAT_ADD(w->stats.log_dropped, 1);
	outlog_commit(w->olb, len);
}

/* ---- ending a request ---------------------------------------------------------------------- */

/* The response is fully out (or abandoned): record it, let go of the upstream connection and
 * the generation, and make the session ready for the next request. */
static void end_request(struct session *s, bool upstream_reusable)
{
	uint64_t now = now_us(s->w);

	if (s->gen == NULL)
		return;
	record_request(s, now);
	if (s->shadow != NULL) {
		shadow_primary_end(s->shadow, (double)(now - s->t_start) / 1000.0, !s->aborted);
		s->shadow = NULL;
	}
	if (s->u != NULL) {
		upstream_release(s->u, upstream_reusable);
		s->u = NULL;
	}
	worker_gen_put(s->w, s->gen);
	s->gen = NULL;
	s->exp = NULL;
	s->variant = NULL;
	s->backend = NULL;
	s->state = ST_HEAD;
	s->lf_scan = 0;
	s->t_head = now;
	buf_release(s, &s->out);
	buf_release(s, &s->uin);
	buf_release(s, &s->uout);
	buf_release(s, &s->in);
}

/* ---- local responses ------------------------------------------------------------------------ */

/* What the session tags both heads with (see fwd.h). */
static struct fwd_tags session_tags(const struct session *s)
{
	struct fwd_tags t = {.rid = s->rid, .rid_len = s->rid_len};

	if (s->exp != NULL) {
		t.exp = s->exp->name;
		t.exp_len = s->exp->name_len;
		t.variant = s->variant->name;
		t.variant_len = s->variant->name_len;
	}
	return t;
}

/* Answers the current request ourselves with a short text body giving the reason. With close
 * (or whenever the rest of the request cannot be skipped) the connection closes afterwards. */
static void local_response(struct session *s, int status, const char *reason, bool close)
{
	char body[256];
	size_t blen = (size_t)snprintf(body, sizeof(body), "%d %s: %s\n", status,
				       httpd_reason(status), reason);

	if (blen >= sizeof(body))
		blen = sizeof(body) - 1;
	if (s->u != NULL) {
		upstream_release(s->u, false);
		s->u = NULL;
	}
	if (close || !s->keep_alive || !s->req_done || s->gen == NULL)
		s->close_after = true;
	s->status = status;
	if (s->shadow != NULL)
		shadow_primary_head(s->shadow, status, false);
	/* a pending 100 Continue may still be in out: the response goes after it, never over
	 * it (out holds at most that interim line here, far below the buffer's size). When it
	 * cannot be written, the connection just closes; the session loop frees it, since the
	 * callers up the stack still use the session. */
	if (!buf_ensure(s, &s->out) || s->out.cap - s->out.end < 1024 + blen) {
		s->close_after = true;
		s->state = ST_LOCAL;
		return;
	}
	char *o = s->out.p + s->out.end;
	o = PUTS(o, "HTTP/1.1 ");
	o = put_u64(o, (uint64_t)status);
	*o++ = ' ';
	o = put(o, httpd_reason(status), strlen(httpd_reason(status)));
	o = PUTS(o, "\r\nContent-Type: text/plain\r\nContent-Length: ");
	o = put_u64(o, blen);
	o = PUTS(o, "\r\n");
	if (s->rid_len > 0) {
		o = PUTS(o, "X-Request-Id: ");
		o = put(o, s->rid, s->rid_len);
		o = PUTS(o, "\r\n");
	}
	struct fwd_tags tags = session_tags(s);
	o = fwd_put_tags(o, &tags);
	if (s->close_after)
		o = PUTS(o, "Connection: close\r\n");
	else if (s->minor == 0)
		o = PUTS(o, "Connection: keep-alive\r\n");
	o = PUTS(o, "\r\n");
	if (s->method != HTTP_M_HEAD)
		o = put(o, body, blen);
	s->out.end = (uint32_t)(o - s->out.p);
	s->bytes_out += blen;
	s->state = ST_LOCAL;
	s->resp_framed = 0;
	s->uin.start = s->uin.end = 0;
}

/* ---- request heads -------------------------------------------------------------------------- */

static char *put_hex64(char *o, uint64_t v)
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 15; i >= 0; i--)
		*o++ = hex[(v >> (i * 4)) & 0xf];
	return o;
}

/* Keeps the client's X-Request-Id when it is printable and short, else makes one. */
static void take_request_id(struct session *s, const struct http_msg *m, const char *buf)
{
	int i = http_find_header(m, buf, "x-request-id", 12);

	s->rid_generated = false;
	if (i >= 0 && m->hdr[i].value.len > 0 && m->hdr[i].value.len < RID_MAX) {
		const char *v = buf + m->hdr[i].value.off;
		bool ok = true;
		for (uint32_t k = 0; k < m->hdr[i].value.len && ok; k++)
			ok = v[k] > 0x20 && v[k] < 0x7f && v[k] != '"' && v[k] != '\\';
		if (ok) {
			memcpy(s->rid, v, m->hdr[i].value.len);
			s->rid_len = (uint8_t)m->hdr[i].value.len;
			return;
		}
	}
	char *o = put_hex64(s->rid, worker_rand(s->w));
	o = put_hex64(o, worker_rand(s->w));
	s->rid_len = (uint8_t)(o - s->rid);
	s->rid_generated = true;
}

static void set_unit(struct session *s, const char *u, size_t len)
{
	if (len > UNIT_MAX)
		len = UNIT_MAX; /* the hash used the whole value; the log keeps its first bytes */
	memcpy(s->unit, u, len);
	s->unit_len = (uint16_t)len;
}

/* Chooses the variant of experiment e for this request (see router.h for the hashing). */
static void assign_variant(struct session *s, const struct conf_experiment *e,
			   const struct http_msg *m, const char *buf)
{
	char scratch[UNIT_MAX];
	const char *unit;
	size_t ulen;

	s->exp = e;
	s->forced = false;
	s->set_cookie = false;
	s->unit_len = 0;
	s->unit_hash = 0;
	if (e->allow_force) {
		int i = http_find_header(m, buf, "x-abgate-force-variant", 22);
		if (i >= 0) {
			struct http_span v = m->hdr[i].value;
			for (size_t k = 0; k < e->nvariants; k++) {
				if (e->variants[k].name_len == v.len &&
				    memcmp(e->variants[k].name, buf + v.off, v.len) == 0) {
					s->variant = &e->variants[k];
					s->forced = true;
				}
			}
		}
	}
	bool found = router_unit(e, m, buf, scratch, sizeof(scratch), &unit, &ulen);
	if (!found && e->fallback == CONF_FB_COOKIE && e->unit != CONF_UNIT_COOKIE)
		found = router_cookie(m, buf, e->fallback_cookie, e->fallback_cookie_len, &unit,
				      &ulen);
	if (!found) {
		switch (e->fallback) {
		case CONF_FB_CONTROL:
			if (!s->forced)
				s->variant = &e->variants[0];
			return; /* not randomised: logged without a unit */
		case CONF_FB_CLIENT_IP:
			unit = s->ip;
			ulen = s->ip_len;
			break;
		case CONF_FB_RANDOM:
			/* each request is its own unit; the request id stands for it in the log */
			unit = s->rid;
			ulen = s->rid_len;
			break;
		case CONF_FB_COOKIE: {
			char *o = put_hex64(scratch, worker_rand(s->w));
			o = put_hex64(o, worker_rand(s->w));
			unit = scratch;
			ulen = (size_t)(o - scratch);
			s->set_cookie = true;
			break;
		}
		}
	}
	set_unit(s, unit, ulen);
	const struct conf_variant *v = router_assign(e, unit, ulen, &s->unit_hash);
	if (v == NULL) {
		/* outside the SDK's coverage or rollout: the control, logged as not randomised (the
		 * unit stays for a cookie to set) */
		s->unit_hash = 0;
		v = &e->variants[0];
	}
	if (!s->forced)
		s->variant = v;
}

/* Writes the request head for the upstream into uout (see fwd.h). Returns false when it does
 * not fit. */
static bool rewrite_request(struct session *s, const struct http_msg *m, const char *buf)
{
	struct fwd_request r = {
		.m = m,
		.buf = buf,
		.ip = s->ip,
		.ip_len = s->ip_len,
		.add_rid = s->rid_generated,
		.tags = session_tags(s),
	};
	size_t n = fwd_request_head(s->uout.p, s->uout.cap, &r);

	s->uout.start = 0;
	s->uout.end = (uint32_t)n;
	return n > 0;
}

enum { CONNECT_OK = 0, CONNECT_FAILED = -1, CONNECT_ALL_DOWN = -2 };

/* Picks the backend's next usable server (round robin per worker) and connects or reuses.
 * Returns CONNECT_OK, CONNECT_FAILED (every server tried failed) or CONNECT_ALL_DOWN (every
 * server left is marked down and none is due for a probe). */
static int connect_upstream(struct session *s)
{
	int down = 0;
	struct worker *w = s->w;
	const struct conf_backend *be = s->backend;
	int first = be->servers[0].id;

	if (first >= w->nrr) {
		int n = first + 64;
		uint32_t *rr = realloc(w->rr, (size_t)n * sizeof(*rr));
		if (rr == NULL)
			return CONNECT_FAILED;
		memset(rr + w->nrr, 0, (size_t)(n - w->nrr) * sizeof(*rr));
		w->rr = rr;
		w->nrr = n;
	}
	while ((size_t)s->tries < be->nservers) {
		const struct conf_server *srv = &be->servers[w->rr[first]++ % be->nservers];
		s->tries++;
		if (!upstream_server_usable(srv->id)) {
			down++;
			continue;
		}
		s->server = srv->id;
		s->u = upstream_acquire(w->pools, srv->id, be->tls_ctx, be->verify, s, &s->u_reused);
		if (s->u != NULL) {
			s->u->uses++;
			s->t_upstream = now_us(w);
			s->upstream_eof = false;
			s->upstream_err = 0;
			return CONNECT_OK;
		}
		log_warn("upstream %s: connect", upstream_server_name(srv->id, NULL));
		upstream_note_error(srv->id, UPSTREAM_ERR_CONNECT, be->health_fall);
	}
	return down > 0 && s->server < 0 ? CONNECT_ALL_DOWN : CONNECT_FAILED;
}

/* Answers when no server of the backend could take the request. */
static void no_upstream(struct session *s, int why)
{
	if (why == CONNECT_ALL_DOWN) {
		local_response(s, 503, "every server of the backend is down; retry later", false);
		return;
	}
	local_response(s, 502, "cannot connect to any server of the backend", false);
}

/* A complete request head is in w->msg: route it and start the exchange. */
static void start_request(struct session *s)
{
	struct worker *w = s->w;
	struct http_msg *m = &w->msg;
	const char *buf = s->in.p + s->in.start;

	s->gen = worker_gen_get(w);
	const struct conf *c = sconf(s);
	uint64_t now = now_us(w);

	s->t_start = now;
	s->method = m->method;
	s->minor = m->minor;
	s->keep_alive = m->keep_alive;
	s->close_after = false;
	s->exp = NULL;
	s->variant = NULL;
	s->tries = 0;
	s->server = -1;
	s->status = 0;
	s->bytes_in = m->head_len;
	s->bytes_out = 0;
	s->req_body = m->body;
	s->req_framed = 0;
	s->req_left = m->body == HTTP_BODY_LENGTH ? m->content_length : 0;
	s->req_done = m->body == HTTP_BODY_NONE ||
		      (m->body == HTTP_BODY_LENGTH && m->content_length == 0);
	http_chunked_reset(&s->req_chunk);
	s->sent_any = s->got_any = s->upstream_eof = false;
	s->resp_head_done = s->resp_done = s->aborted = false;
	s->resp_framed = 0;
	s->uin_scan = 0;
	take_request_id(s, m, buf);
	if (w->alb != NULL) {
		size_t ml = m->method_s.len < 16 ? m->method_s.len : 16;
		size_t tl = m->target.len < ACCESS_TARGET_MAX - ml ? m->target.len
								 : ACCESS_TARGET_MAX - ml;
		memcpy(s->target, buf + m->method_s.off, ml);
		memcpy(s->target + ml, buf + m->target.off, tl);
		s->method_len = (uint8_t)ml;
		s->target_len = (uint16_t)(ml + tl);
	}

	const struct conf_experiment *e = router_match(c, m, buf);
	if (e != NULL) {
		assign_variant(s, e, m, buf);
		s->backend = s->variant->backend;
		/* known before the answer leaves, so an outcome posted right after it finds it */
		ridmap_put(w->rids, s->rid, s->rid_len, s->variant->id, now);
	} else {
		s->unit_len = 0;
		s->backend = c->default_backend;
	}
	bool fits = buf_ensure(s, &s->uout) && rewrite_request(s, m, buf);
	bool expect = m->expect_continue && !s->req_done && m->minor == 1;
	uint32_t head_len = m->head_len;

	buf_consume(&s->in, head_len);
	s->lf_scan = 0;
	if (m->body == HTTP_BODY_LENGTH && m->content_length > c->limits.max_body_bytes) {
		local_response(s, 413, "request body larger than limits.max_body_bytes", true);
		return;
	}
	if (!fits) {
		local_response(s, 431, "request head too large to forward", true);
		return;
	}
	if (s->backend == NULL) {
		local_response(s, 404, "no experiment matches and no default_backend is set", false);
		return;
	}
	s->state = ST_PROXY;
	int rc = connect_upstream(s);
	if (rc != CONNECT_OK) {
		no_upstream(s, rc);
		return;
	}
	if (e != NULL && e->shadow.backend != NULL) {
		s->shadow = shadow_begin(w, s->gen->conf, e, s->variant->name, s->method,
					 s->uout.p, s->uout.end, s->rid, s->rid_len);
		if (s->shadow != NULL && s->req_done)
			shadow_request_done(s->shadow);
	}
	if (expect && buf_len(&s->in) == 0 && buf_ensure(s, &s->out)) {
		memcpy(s->out.p + s->out.end, "HTTP/1.1 100 Continue\r\n\r\n", 25);
		s->out.end += 25;
	}
}

/* ST_HEAD: looks for a complete head in `in` and handles it. */
static bool handle_head(struct session *s)
{
	struct worker *w = s->w;
	uint32_t len = buf_len(&s->in);

	if (len == 0)
		return false;
	if (s->lf_scan == 0)
		s->t_head = now_us(w);
	if (s->lf_scan >= len)
		return false;
	const char *buf = s->in.p + s->in.start;
	if (memchr(buf + s->lf_scan, '\n', len - s->lf_scan) == NULL) {
		s->lf_scan = len;
		const struct conf_limits *lim = &w->cur->conf->limits;
		if (len > lim->max_request_line && memchr(buf, '\n', len) == NULL) {
			local_response(s, 414, "request line longer than limits.max_request_line", true);
			return true;
		}
		if (len > lim->max_header_bytes) {
			local_response(s, 431, "request head larger than limits.max_header_bytes", true);
			return true;
		}
		return false;
	}
	const struct conf_limits *lim = &w->cur->conf->limits;
	struct http_limits hl = {
		.max_header_bytes = lim->max_header_bytes,
		.max_request_line = lim->max_request_line,
		.max_headers = lim->max_headers,
	};
	http_msg_reset(&w->msg);
	w->msg.hdr = w->hdr;
	w->msg.max_hdr = WORKER_MAX_HEADERS;
	switch (http_parse_request(&w->msg, buf, len, &hl)) {
	case HTTP_AGAIN:
		s->lf_scan = len;
		return false;
	case HTTP_ERROR:
	case HTTP_TOO_LARGE:
		s->keep_alive = false;
		local_response(s, w->msg.error_status ? w->msg.error_status : 400,
			       w->msg.error ? w->msg.error : "malformed request", true);
		return true;
	case HTTP_OK:
		break;
	}
	start_request(s);
	return true;
}

/* ---- bodies -------------------------------------------------------------------------------- */

/* Marks the request-body bytes that have arrived in `in` as ready to send. */
static bool frame_request(struct session *s)
{
	if (s->req_done)
		return false;
	uint32_t avail = buf_len(&s->in) - s->req_framed;
	if (avail == 0)
		return false;
	const char *p = s->in.p + s->in.start + s->req_framed;
	uint32_t take;
	if (s->req_body == HTTP_BODY_LENGTH) {
		take = s->req_left < avail ? (uint32_t)s->req_left : avail;
		s->req_left -= take;
		s->req_done = s->req_left == 0;
	} else {
		size_t used;
		enum http_parse rc = http_chunked_feed(&s->req_chunk, p, avail, &used);
		if (rc == HTTP_ERROR || rc == HTTP_TOO_LARGE) {
			if (s->sent_any || s->resp_head_done) {
				s->aborted = true;
				s->close_after = true;
				return true;
			}
			local_response(s, 400, s->req_chunk.error ? s->req_chunk.error
								  : "bad chunked body", true);
			return true;
		}
		take = (uint32_t)used;
		s->req_done = rc == HTTP_OK;
	}
	if (s->shadow != NULL) {
		shadow_request_body(s->shadow, p, take);
		if (s->req_done)
			shadow_request_done(s->shadow);
	}
	s->req_framed += take;
	s->bytes_in += take;
	if (s->req_body == HTTP_BODY_CHUNKED &&
	    s->req_chunk.data_bytes > sconf(s)->limits.max_body_bytes) {
		if (!s->resp_head_done) {
			local_response(s, 413, "request body larger than limits.max_body_bytes", true);
		} else {
			s->aborted = true;
			s->close_after = true;
		}
	}
	return true;
}

/* Marks the response-body bytes in `uin` as ready to send, noting the end of the body. */
static bool frame_response(struct session *s)
{
	if (s->resp_done)
		return false;
	uint32_t avail = buf_len(&s->uin) - s->resp_framed;
	bool moved = false;

	if (avail > 0) {
		const char *p = s->uin.p + s->uin.start + s->resp_framed;
		uint32_t take;
		switch (s->resp_body) {
		case HTTP_BODY_LENGTH:
			take = s->resp_left < avail ? (uint32_t)s->resp_left : avail;
			s->resp_left -= take;
			s->resp_done = s->resp_left == 0;
			break;
		case HTTP_BODY_CHUNKED: {
			size_t used;
			enum http_parse rc = http_chunked_feed(&s->resp_chunk, p, avail, &used);
			if (rc == HTTP_ERROR || rc == HTTP_TOO_LARGE) {
				upstream_note_error(s->server, UPSTREAM_ERR_INVALID, s->backend->health_fall);
				log_warnx("upstream %s: bad chunked response: %s",
					  upstream_server_name(s->server, NULL),
					  s->resp_chunk.error ? s->resp_chunk.error : "framing");
				s->aborted = true;
				s->close_after = true;
				s->resp_done = true;
				return true;
			}
			take = (uint32_t)used;
			s->resp_done = rc == HTTP_OK;
			break;
		}
		default: /* HTTP_BODY_EOF */
			take = avail;
			break;
		}
		if (s->shadow != NULL)
			shadow_primary_body(s->shadow, p, take);
		s->resp_framed += take;
		s->bytes_out += take;
		moved = true;
	}
	if (!s->resp_done && s->upstream_eof && buf_len(&s->uin) == s->resp_framed) {
		s->resp_done = true;
		if (s->resp_body != HTTP_BODY_EOF) {
			/* the upstream closed in the middle of the body: the client must see the
			 * truncation as a closed connection */
			log_warnx("upstream %s: closed before the end of the response body",
				  upstream_server_name(s->server, NULL));
			upstream_note_error(s->server, UPSTREAM_ERR_CLOSED, s->backend->health_fall);
			s->aborted = true;
		}
		s->close_after = true;
		moved = true;
	}
	return moved;
}

/* ---- batched writes -------------------------------------------------------------------------- */

/*
 * With an io_uring batch (w->iob), a plain socket's write is not made where the session loop
 * finds bytes to send: the session joins the worker's write queue and its loop goes on as if
 * the socket were full. After the pass of the event loop, proxy_flush() builds each queued
 * write from the session's buffers as they are then, makes them all in one system call, hands
 * each session its result as a direct write would have, and runs the session again. The
 * bytes are read only between building and the results, while no session code runs.
 */
/* what a session waits for, and the low bits of a batch tag (above them: its wq_run index) */
enum { OP_CLIENT_R, OP_UPSTREAM_R, OP_CLIENT_W, OP_UPSTREAM_W, OP_BITS = 2 };
enum {
	WQ_CLIENT_R = 1 << OP_CLIENT_R,
	WQ_UPSTREAM_R = 1 << OP_UPSTREAM_R,
	WQ_CLIENT_W = 1 << OP_CLIENT_W,
	WQ_UPSTREAM_W = 1 << OP_UPSTREAM_W,
};

static uint32_t client_read_room(struct session *s);
static bool client_got(struct session *s, ssize_t n);
static uint32_t upstream_read_room(struct session *s);
static bool upstream_got(struct session *s, ssize_t n);
static int upstream_iov(const struct session *s, struct iovec *iov);
static bool upstream_wrote(struct session *s, ssize_t w);
static int client_iov(const struct session *s, struct iovec *iov);
static bool client_wrote(struct session *s, ssize_t w);

static bool wq_grow(struct worker *w)
{
	uint32_t cap = w->wq_cap ? 2 * w->wq_cap : 64;
	struct session **a = realloc(w->wq, cap * sizeof(*a));
	if (a == NULL)
		return false;
	w->wq = a;
	struct session **b = realloc(w->wq_run, cap * sizeof(*b));
	if (b == NULL)
		return false;
	w->wq_run = b;
	w->wq_cap = cap;
	return true;
}

/* Queues operation `what` (WQ_*) on c for the flush, when c's I/O is batched. Returns true
 * when it is queued: the session's loop then goes on as if the socket had nothing to give or
 * take. False (no batch, a TLS socket, or a queue that cannot grow): make the call now. */
static bool wq_queue(struct session *s, const struct conn *c, uint8_t what)
{
	struct worker *w = s->w;

	if (w->iob == NULL || c->tls != NULL)
		return false;
	/* a body streaming through a large buffer (buf_grow) moves its bytes by direct calls:
	 * io_uring's non-blocking transfers of that size cost more than read(2) and writev(2)
	 * do (1 MiB bodies: 58 + 461 us of CPU a request batched, 28 + 376 direct) */
	if (s->in.cap > w->bufs.size || s->uin.cap > w->bufs.size)
		return false;
	if (s->wq_want == 0) {
		if (w->nwq == w->wq_cap && !wq_grow(w))
			return false;
		s->wq_idx = (int32_t)w->nwq;
		s->wq_in_run = false;
		w->wq[w->nwq++] = s;
	}
	s->wq_want |= what;
	return true;
}

static void wq_forget(struct session *s)
{
	if (s->wq_idx >= 0)
		(s->wq_in_run ? s->w->wq_run : s->w->wq)[s->wq_idx] = NULL;
	s->wq_idx = -1;
	s->wq_want = 0;
}

/* Makes the batch and hands each result to its session: reads first, since a read appends to a
 * buffer a write in the same batch may empty (and emptying rewinds it). */
static void wq_results(struct worker *w)
{
	unsigned n;
	const struct iobatch_result *results = iobatch_submit(w->iob, &n);

	for (int writes = 0; writes < 2; writes++) {
		for (unsigned i = 0; i < n; i++) {
			const struct iobatch_result *r = &results[i];
			unsigned op = (unsigned)(r->tag & ((1u << OP_BITS) - 1));
			if ((op >= OP_CLIENT_W) != (writes != 0))
				continue;
			struct session *s = w->wq_run[r->tag >> OP_BITS];
			ssize_t res = r->res;
			if (res < 0) {
				errno = -r->res;
				res = -1;
			}
			switch (op) {
			case OP_CLIENT_R:
				conn_note_read(&s->c, res, r->total);
				client_got(s, res);
				break;
			case OP_UPSTREAM_R:
				conn_note_read(&s->u->c, res, r->total);
				upstream_got(s, res);
				break;
			case OP_CLIENT_W:
				conn_note_write(&s->c, res, r->total);
				client_wrote(s, res);
				break;
			default:
				conn_note_write(&s->u->c, res, r->total);
				upstream_wrote(s, res);
			}
		}
	}
}

static uint64_t wq_tag(uint32_t i, unsigned op)
{
	return (uint64_t)i << OP_BITS | op;
}

/* Queues one session's operation in the batch, making the batch first when it is full. */
static void wq_send(struct worker *w, int fd, const struct iovec *iov, int n, uint64_t tag)
{
	if (!iobatch_send(w->iob, fd, iov, n, tag)) {
		wq_results(w);
		iobatch_send(w->iob, fd, iov, n, tag);
	}
}

static void wq_recv(struct worker *w, int fd, void *buf, uint32_t len, uint64_t tag)
{
	if (!iobatch_recv(w->iob, fd, buf, len, tag)) {
		wq_results(w);
		iobatch_recv(w->iob, fd, buf, len, tag);
	}
}

void proxy_flush(struct worker *w)
{
	while (w->nwq > 0) {
		struct session **t = w->wq_run;
		w->wq_run = w->wq;
		w->wq = t;
		w->nwq_run = w->nwq;
		w->nwq = 0;
		clock_tick(w);
		for (uint32_t i = 0; i < w->nwq_run; i++) {
			struct session *s = w->wq_run[i];
			if (s == NULL)
				continue;
			s->wq_in_run = true;
			uint8_t want = s->wq_want;
			s->wq_want = 0;
			/* each built from the session as it is now, reads first: making room
			 * for a read may move a buffer's bytes, which a write then points to */
			struct iovec iov[2];
			uint32_t room;
			int n;
			if ((want & WQ_CLIENT_R) && (room = client_read_room(s)) > 0)
				wq_recv(w, s->c.fd, s->in.p + s->in.end, room, wq_tag(i, OP_CLIENT_R));
			if ((want & WQ_UPSTREAM_R) && (room = upstream_read_room(s)) > 0)
				wq_recv(w, s->u->c.fd, s->uin.p + s->uin.end, room,
					wq_tag(i, OP_UPSTREAM_R));
			if ((want & WQ_CLIENT_W) && s->c.writable && (n = client_iov(s, iov)) > 0)
				wq_send(w, s->c.fd, iov, n, wq_tag(i, OP_CLIENT_W));
			struct upconn *u = s->u;
			if ((want & WQ_UPSTREAM_W) && u != NULL && u->c.writable && !u->connecting &&
			    (n = upstream_iov(s, iov)) > 0)
				wq_send(w, u->c.fd, iov, n, wq_tag(i, OP_UPSTREAM_W));
		}
		wq_results(w);
		for (uint32_t i = 0; i < w->nwq_run; i++) {
			struct session *s = w->wq_run[i];
			if (s == NULL)
				continue;
			w->wq_run[i] = NULL;
			s->wq_idx = -1;
			s->wq_in_run = false;
			session_run(s);
		}
		w->nwq_run = 0;
	}
}

/* ---- upstream I/O -------------------------------------------------------------------------- */

/* The upstream failed before a response head arrived: retry where that is safe, else answer
 * 502/504 ourselves (never another variant's backend). */
static void upstream_failed(struct session *s)
{
	int err = s->upstream_err;
	bool timeout = err == ETIMEDOUT;

	if (s->u == NULL)
		return;
	const char *name = upstream_server_name(s->server, NULL);
	/* a kept-alive connection the server closed while idle is not a failure of the server */
	bool stale = s->u_reused && !s->got_any && !timeout;
	if (!stale)
		upstream_note_error(s->server,
				    timeout	       ? UPSTREAM_ERR_TIMEOUT
				    : s->u->connecting ? UPSTREAM_ERR_CONNECT
						       : UPSTREAM_ERR_CLOSED,
				    s->backend->health_fall);
	if (err != 0) {
		errno = err;
		log_warn("upstream %s", name);
	} else {
		log_warnx("upstream %s: closed the connection without a response", name);
	}
	upstream_release(s->u, false);
	s->u = NULL;
	/* Nothing of the request reached the server: another server of the same backend may
	 * take it. A reused keep-alive connection that the server closed as we used it is retried
	 * only for an idempotent request without a body (its head is still in uout): anything else
	 * may have reached the model already. */
	bool idempotent = http_method_idempotent(s->method);
	bool retry = !timeout && (!s->sent_any || (s->u_reused && !s->got_any && idempotent &&
						   s->req_body == HTTP_BODY_NONE));
	if (retry) {
		if (s->u_reused && s->tries > 0)
			s->tries--; /* a stale pooled connection does not use up the server's turn */
		s->uout.start = 0;
		s->sent_any = false;
		if (connect_upstream(s) == CONNECT_OK)
			return;
	}
	if (timeout)
		local_response(s, 504, s->got_any ? "upstream response timed out"
						   : "upstream did not answer in time", false);
	else
		local_response(s, 502, "upstream connection failed", false);
}

static bool write_upstream(struct session *s)
{
	struct upconn *u = s->u;

	if (u == NULL || !u->c.writable)
		return false;
	if (u->connecting) {
		int err = net_socket_error(u->c.fd);
		if (err != 0) {
			s->upstream_err = err;
			s->upstream_eof = true;
			return true;
		}
		u->connecting = false;
		s->t_upstream = now_us(s->w);
	}
	if (s->wq_want & WQ_UPSTREAM_W)
		return false;
	struct iovec iov[2];
	int n = upstream_iov(s, iov);
	if (n == 0)
		return false;
	if (wq_queue(s, &u->c, WQ_UPSTREAM_W))
		return false;
	return upstream_wrote(s, conn_writev(&u->c, iov, n));
}

/* What the upstream socket should take next: the rewritten head, then framed body bytes. */
static int upstream_iov(const struct session *s, struct iovec *iov)
{
	int n = 0;

	if (buf_len(&s->uout) > 0) {
		iov[n].iov_base = s->uout.p + s->uout.start;
		iov[n++].iov_len = buf_len(&s->uout);
	}
	if (s->req_framed > 0) {
		iov[n].iov_base = s->in.p + s->in.start;
		iov[n++].iov_len = s->req_framed;
	}
	return n;
}

/* Takes the result of writing upstream_iov() to the upstream (errno set when w < 0). */
static bool upstream_wrote(struct session *s, ssize_t w)
{
	if (w < 0) {
		if (errno == EAGAIN)
			return false;
		s->upstream_err = errno;
		s->upstream_eof = true;
		return true;
	}
	s->sent_any = true;
	s->t_upstream = now_us(s->w);
	size_t left = (size_t)w;
	uint32_t h = buf_len(&s->uout) < left ? buf_len(&s->uout) : (uint32_t)left;
	s->uout.start += h; /* uout keeps its bytes (start rewinds for a retry) */
	left -= h;
	if (left > 0) {
		buf_consume(&s->in, (uint32_t)left);
		s->req_framed -= (uint32_t)left;
	}
	return true;
}

/* Room for the next upstream read at the end of uin; 0 when there is nothing to read now, or
 * the client has not taken what we have. */
static uint32_t upstream_read_room(struct session *s)
{
	struct upconn *u = s->u;

	if (u == NULL || !u->c.readable || u->connecting || s->upstream_eof)
		return 0;
	if (!buf_ensure(s, &s->uin))
		return 0;
	/* the same for a large response body */
	if (s->resp_head_done && !s->resp_done &&
	    (s->resp_body == HTTP_BODY_LENGTH ? s->resp_left > s->uin.cap
					      : buf_len(&s->uin) >= s->uin.cap / 2))
		buf_grow(s, &s->uin);
	return buf_room(s, &s->uin);
}

static bool read_upstream(struct session *s)
{
	if (s->wq_want & WQ_UPSTREAM_R)
		return false;
	uint32_t room = upstream_read_room(s);
	if (room == 0)
		return false;
	if (wq_queue(s, &s->u->c, WQ_UPSTREAM_R))
		return false;
	return upstream_got(s, conn_read(&s->u->c, s->uin.p + s->uin.end, room));
}

/* Takes the result of reading into the end of uin (errno set when n < 0). */
static bool upstream_got(struct session *s, ssize_t n)
{
	struct upconn *u = s->u;

	if (n > 0) {
		s->uin.end += (uint32_t)n;
		s->got_any = true;
		s->t_upstream = now_us(s->w);
		return true;
	}
	if (n < 0 && errno == EAGAIN)
		return false;
	s->upstream_err = n < 0 ? errno : 0;
	s->upstream_eof = true;
	u->c.readable = false;
	return true;
}

/* ---- response heads ------------------------------------------------------------------------ */

/* Writes the client's response head into out from the upstream's (in w->msg; see fwd.h). */
static bool rewrite_response(struct session *s, const struct http_msg *m, const char *buf)
{
	struct fwd_response r = {
		.m = m,
		.buf = buf,
		.client_minor = s->minor,
		.close = s->close_after,
		.tags = session_tags(s),
	};

	if (s->set_cookie) {
		r.cookie_name = s->exp->fallback_cookie;
		r.cookie_name_len = s->exp->fallback_cookie_len;
		r.cookie_value = s->unit;
		r.cookie_value_len = s->unit_len;
	}
	if (!buf_ensure(s, &s->out))
		return false;
	size_t n = fwd_response_head(s->out.p + s->out.end, s->out.cap - s->out.end, &r);
	s->out.end += (uint32_t)n;
	return n > 0;
}

/* ST_PROXY: parses the response head once it is in uin. */
static bool handle_response_head(struct session *s)
{
	struct worker *w = s->w;
	uint32_t len = buf_len(&s->uin);

	if (s->resp_head_done)
		return false;
	if (len == 0 || s->uin_scan >= len) {
		if (s->upstream_eof) {
			upstream_failed(s);
			return true;
		}
		return false;
	}
	const char *buf = s->uin.p + s->uin.start;
	if (memchr(buf + s->uin_scan, '\n', len - s->uin_scan) == NULL) {
		s->uin_scan = len;
		return handle_response_head(s);
	}
	const struct conf_limits *lim = &sconf(s)->limits;
	struct http_limits hl = {.max_header_bytes = lim->max_header_bytes,
				 .max_headers = WORKER_MAX_HEADERS};
	http_msg_reset(&w->msg);
	w->msg.hdr = w->hdr;
	w->msg.max_hdr = WORKER_MAX_HEADERS;
	enum http_parse rc = http_parse_response(&w->msg, buf, len, s->method, &hl);
	if (rc == HTTP_AGAIN) {
		s->uin_scan = len;
		if (len >= s->uin.cap) {
			rc = HTTP_TOO_LARGE;
		} else {
			if (s->upstream_eof) {
				s->upstream_err = 0;
				upstream_failed(s);
				return true;
			}
			return false;
		}
	}
	if (rc != HTTP_OK) {
		log_warnx("upstream %s: invalid response: %s", upstream_server_name(s->server, NULL),
			  w->msg.error ? w->msg.error : "malformed head");
		upstream_note_error(s->server, UPSTREAM_ERR_INVALID, s->backend->health_fall);
		local_response(s, 502, "invalid response from upstream", false);
		return true;
	}
	if (w->msg.status < 200) {
		if (w->msg.status == 101) {
			local_response(s, 502, "upstream switched protocols unasked", false);
			return true;
		}
		buf_consume(&s->uin, w->msg.head_len); /* interim responses are not forwarded */
		s->uin_scan = 0;
		return true;
	}
	s->status = w->msg.status;
	upstream_note_success(s->server);
	if (s->shadow != NULL)
		shadow_primary_head(s->shadow, s->status, w->msg.body == HTTP_BODY_CHUNKED);
	s->resp_body = w->msg.body;
	s->resp_left = w->msg.body == HTTP_BODY_LENGTH ? w->msg.content_length : 0;
	s->resp_done = w->msg.body == HTTP_BODY_NONE ||
		       (w->msg.body == HTTP_BODY_LENGTH && w->msg.content_length == 0);
	http_chunked_reset(&s->resp_chunk);
	s->upstream_keep = w->msg.keep_alive;
	if (!s->keep_alive || w->msg.body == HTTP_BODY_EOF || !s->req_done || s->w->draining)
		s->close_after = true;
	if (!rewrite_response(s, &w->msg, buf)) {
		local_response(s, 502, "upstream response head too large", false);
		return true;
	}
	buf_consume(&s->uin, w->msg.head_len);
	s->resp_head_done = true;
	return true;
}

/* ---- client I/O ---------------------------------------------------------------------------- */

/* Room for the next client read at the end of `in`; 0 when nothing is to be read now. */
static uint32_t client_read_room(struct session *s)
{
	if (!s->c.readable || s->client_eof || s->state == ST_LOCAL)
		return 0;
	/* a request body must still be read when the connection closes after this response;
	 * the next request need not be */
	if (s->close_after && (s->state != ST_PROXY || s->req_done))
		return 0;
	if (!buf_ensure(s, &s->in))
		return 0;
	/* a large request body on its way: read it in large pieces */
	if (s->state == ST_PROXY && !s->req_done &&
	    (s->req_body == HTTP_BODY_CHUNKED ? buf_len(&s->in) >= s->in.cap / 2
					      : s->req_left > s->in.cap))
		buf_grow(s, &s->in);
	return buf_room(s, &s->in);
}

static bool read_client(struct session *s)
{
	if (s->wq_want & WQ_CLIENT_R)
		return false;
	uint32_t room = client_read_room(s);
	if (room == 0)
		return false;
	if (wq_queue(s, &s->c, WQ_CLIENT_R))
		return false;
	return client_got(s, conn_read(&s->c, s->in.p + s->in.end, room));
}

/* Takes the result of reading into the end of `in` (errno set when n < 0). */
static bool client_got(struct session *s, ssize_t n)
{
	if (n > 0) {
		s->in.end += (uint32_t)n;
		s->t_client = now_us(s->w);
		return true;
	}
	if (n < 0 && errno == EAGAIN)
		return false;
	if (n < 0 && errno == EPROTONOSUPPORT) {
		/* plain HTTP on a TLS listener: say so in plain HTTP, then close */
		static const char msg[] = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
					  "Content-Length: 38\r\nConnection: close\r\n\r\n"
					  "plain HTTP request sent to a TLS port\n";
		ssize_t w = write(s->c.fd, msg, sizeof(msg) - 1);
		(void)w;
	}
	s->client_eof = true;
	s->c.readable = false;
	return true;
}

/* What the client socket should take next: our response head, then framed body bytes. */
static int client_iov(const struct session *s, struct iovec *iov)
{
	int n = 0;

	if (buf_len(&s->out) > 0) {
		iov[n].iov_base = s->out.p + s->out.start;
		iov[n++].iov_len = buf_len(&s->out);
	}
	if (s->resp_framed > 0) {
		iov[n].iov_base = s->uin.p + s->uin.start;
		iov[n++].iov_len = s->resp_framed;
	}
	return n;
}

static bool write_client(struct session *s)
{
	struct iovec iov[2];

	if (!s->c.writable || (s->wq_want & WQ_CLIENT_W))
		return false;
	int n = client_iov(s, iov);
	if (n == 0)
		return false;
	if (wq_queue(s, &s->c, WQ_CLIENT_W))
		return false;
	return client_wrote(s, conn_writev(&s->c, iov, n));
}

/* Takes the result of writing client_iov() to the client (errno set when w < 0). */
static bool client_wrote(struct session *s, ssize_t w)
{
	if (w < 0) {
		if (errno == EAGAIN)
			return false;
		/* the client is gone: nothing more can be delivered */
		s->aborted = true;
		s->close_after = true;
		s->out.start = s->out.end = 0;
		if (s->resp_framed > 0) {
			buf_consume(&s->uin, s->resp_framed);
			s->resp_framed = 0;
		}
		return true;
	}
	s->t_client = now_us(s->w);
	size_t left = (size_t)w;
	uint32_t h = buf_len(&s->out) < left ? buf_len(&s->out) : (uint32_t)left;
	buf_consume(&s->out, h);
	left -= h;
	if (left > 0) {
		buf_consume(&s->uin, (uint32_t)left);
		s->resp_framed -= (uint32_t)left;
	}
	return true;
}

/* ---- the session loop ---------------------------------------------------------------------- */

/* ST_PROXY: is the exchange over? Then let go of it. Returns true when it ended. */
static bool finish_exchange(struct session *s)
{
	if (!(s->resp_done || s->aborted) || buf_len(&s->out) > 0 || s->resp_framed > 0)
		return false;
	bool reusable = !s->aborted && s->upstream_keep && s->resp_body != HTTP_BODY_EOF &&
			s->req_done && s->req_framed == 0 && buf_len(&s->uout) == 0 &&
			buf_len(&s->uin) == 0 && !s->upstream_eof;
	if (!s->req_done)
		s->close_after = true;
	if (s->req_framed > 0) {
		/* the upstream answered before taking the whole body: the rest of it is dropped
		 * here, never read as the next request */
		buf_consume(&s->in, s->req_framed);
		s->req_framed = 0;
	}
	end_request(s, reusable);
	return true;
}

/* ST_LINGER: drops what the client sends until it closes, the budget is spent or the time is
 * up. May free s. */
static void session_linger(struct session *s)
{
	uint64_t now = now_us(s->w), next = 0;

	s->c.readable = false;
	if (!net_linger_read(s->c.fd, &s->linger_left)) {
		session_free(s);
		return;
	}
	if (check_timeouts(s, now, &next) == TO_NONE)
		arm_timer(s, now, next);
}

/*
 * Ends the client connection after its last response. At once when the client has sent all it
 * meant to (its request was read whole and nothing more waits) or is gone; otherwise by a
 * lingering close: the write side is shut, the buffers go back to the pool, and what the client
 * still sends is dropped for a bounded time, so that it reads the answer rather than a reset.
 * May free s.
 */
static void session_close(struct session *s)
{
	if (s->aborted || s->client_eof || s->c.fd < 0 || (s->req_done && buf_len(&s->in) == 0)) {
		session_free(s);
		return;
	}
	wq_forget(s);
	conn_shutdown_write(&s->c);
	buf_drop(s, &s->in);
	buf_drop(s, &s->out);
	buf_drop(s, &s->uin);
	buf_drop(s, &s->uout);
	s->state = ST_LINGER;
	s->linger_left = NET_LINGER_BYTES;
	s->t_linger = now_us(s->w);
	session_linger(s);
}

static void session_run(struct session *s)
{
	bool progress = true;

	if (s->state == ST_LINGER) {
		session_linger(s); /* may free s */
		return;
	}
	while (progress) {
		progress = read_client(s);
		switch (s->state) {
		case ST_HEAD:
			if (handle_head(s))
				progress = true;
			break;
		case ST_PROXY:
			progress |= frame_request(s);
			if (s->state != ST_PROXY)
				break;
			progress |= write_upstream(s);
			progress |= read_upstream(s);
			if (s->u != NULL && s->upstream_eof && !s->resp_head_done && !s->got_any) {
				upstream_failed(s);
				progress = true;
				break;
			}
			if (!s->resp_head_done)
				progress |= handle_response_head(s);
			if (s->state == ST_PROXY && s->resp_head_done)
				progress |= frame_response(s);
			break;
		case ST_LOCAL:
		case ST_LINGER:
			break;
		}
		progress |= write_client(s);
		if (s->state == ST_PROXY && finish_exchange(s))
			progress = true;
		if (s->state == ST_LOCAL && buf_len(&s->out) == 0) {
			if (s->gen != NULL)
				end_request(s, false);
			s->state = ST_HEAD;
			progress = true;
		}
		if (s->state == ST_HEAD && (s->close_after || s->aborted ||
					    (s->client_eof && buf_len(&s->in) == 0))) {
			session_close(s); /* may free s */
			return;
		}
	}
	if (s->state == ST_HEAD && s->client_eof) {
		session_free(s); /* a partial head and nothing more will come */
		return;
	}
	if (s->c.fd >= 0 && !s->client_eof && s->state == ST_HEAD && buf_len(&s->in) == 0 &&
	    s->wq_want == 0 && s->w->draining) {
		session_free(s);
		return;
	}
	uint64_t now = now_us(s->w), next = 0;
	switch (check_timeouts(s, now, &next)) {
	case TO_FREED:
		return;
	case TO_RUN:
		session_run(s); /* a deadline passed: the loop acts on it */
		return;
	case TO_NONE:
		arm_timer(s, now, next);
	}
}

static void client_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	clock_pass(s->w);
	conn_event(&s->c, what);
	session_run(s);
}

void proxy_upstream_event(void *owner, short what)
{
	if (*(const uint8_t *)owner == OWNER_SHADOW) {
		shadow_event(owner, what);
	} else {
		clock_pass(((struct session *)owner)->w);
		session_run(owner);
	}
}

/* The one teardown of a session: every path that ends a client connection comes here. */
static void session_free(struct session *s)
{
	struct worker *w = s->w;

	wq_forget(s);
	if (s->u != NULL) {
		upstream_release(s->u, false);
		s->u = NULL;
	}
	if (s->shadow != NULL) {
		shadow_primary_end(s->shadow, (double)(now_us(w) - s->t_start) / 1000.0, false);
		s->shadow = NULL;
	}
	if (s->gen != NULL) {
		if (s->status == 0)
			s->status = 499; /* the client left before the response was complete */
		if (s->exp != NULL)
			record_request(s, now_us(w));
		worker_gen_put(w, s->gen);
	}
	conn_close(&s->c);
	if (s->timer != NULL)
		event_free(s->timer);
	buf_drop(s, &s->in);
	buf_drop(s, &s->out);
	buf_drop(s, &s->uin);
	buf_drop(s, &s->uout);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		w->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	STAT_ADD(w->stats.sessions, -1);
	free(s);
}

/* ---- accepting ------------------------------------------------------------------------------ */

void proxy_accept(struct worker *w, const struct worker_listener *l)
{
	clock_pass(w);
	worker_refresh_conf(w); /* new connections get a reload's certificates at once */
	int lfd = l->fd;
	const struct conf *c = w->cur->conf;
	void *tls = l->index < c->nlistens ? c->listens[l->index].tls_ctx : NULL;

	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				worker_accept_pause(w);
			return;
		}
		struct session *s = calloc(1, sizeof(*s));
		if (s == NULL) {
			close(fd);
			worker_accept_pause(w);
			return;
		}
		s->owner_kind = OWNER_SESSION;
		s->w = w;
		s->c.fd = fd;
		s->c.writable = true;
		s->server = -1;
		s->wq_idx = -1;
		s->ip_len = (uint8_t)net_addr_str((struct sockaddr *)&ss, s->ip, sizeof(s->ip));
		s->t_client = s->t_head = now_us(w);
		s->c.name = s->ip;
		s->c.ev = event_new(w->base, fd, EV_READ | EV_WRITE | EV_CLOSED | EV_PERSIST | EV_ET,
				    client_cb, s);
		if (tls != NULL && conn_tls_accept(&s->c, tls) < 0) {
			session_free(s);
			continue;
		}
		s->timer = evtimer_new(w->base, timer_cb, s);
		s->next = w->sessions;
		if (w->sessions != NULL)
			w->sessions->prev = s;
		w->sessions = s;
		STAT_ADD(w->stats.sessions, 1);
		if (s->c.ev == NULL || s->timer == NULL || event_add(s->c.ev, NULL) < 0) {
			session_free(s);
			continue;
		}
		if (STAT_GET(w->stats.sessions) >= w->cur->conf->limits.max_connections)
			worker_accept_pause(w);
		/* the request is often already there: no need to wait for the edge */
		s->c.readable = true;
		session_run(s);
	}
}

unsigned proxy_drain(struct worker *w)
{
	clock_tick(w);
	struct session *s = w->sessions, *next;

	for (; s != NULL; s = next) {
		next = s->next;
		if (s->state == ST_HEAD && buf_len(&s->in) == 0)
			session_free(s);
		else
			s->close_after = true;
	}
	return STAT_GET(w->stats.sessions);
}

void proxy_close_all(struct worker *w)
{
	clock_tick(w);
	while (w->sessions != NULL)
		session_free(w->sessions);
}
