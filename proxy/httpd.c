/*
 * httpd.c - a small HTTP/1.1 server for the admin listener and the `abgate backend` model
 * server (see include/httpd.h).
 *
 * It follows the data path's event model: every socket is registered once with
 * EV_READ|EV_WRITE|EV_PERSIST|EV_ET; "readable"/"writable" flags remember the edges; reads and
 * writes go straight into per-connection buffers; a response is written as soon as it exists,
 * and EV_WRITE is waited for only after EAGAIN. Heads are parsed by http.h.
 *
 * A connection works on one request at a time: parse the head, read the body (Content-Length
 * only) whole, call the handler, and read nothing more until httpd_respond(). That answers
 * pipelined requests in order, bounds the read buffer by max_header_bytes + max_body, and keeps
 * the request's pointers into the read buffer stable while a deferred handler holds them.
 *
 * Lifetime: conn_close() is the one teardown of a connection. While the handler holds the
 * connection's request it only closes the socket; httpd_respond() then finishes the job.
 */
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "http.h"
#include "httpd.h"
#include "log.h"
#include "net.h"

#define HTTPD_MAX_HEADERS 64
#define HTTPD_MAX_REQUEST_LINE 8192
#define RBUF_MIN 4096
#define RBUF_KEEP 16384		   /* an idle connection keeps a read buffer up to this size */
#define WBUF_KEEP 65536		   /* ... and a write buffer up to this size */
#define WBUF_HIGH (256 * 1024)	   /* stop taking requests while this much output is unsent */
#define ACCEPT_PAUSE_MS 100	   /* out of descriptors: stop accepting this long */

#define DEFAULT_MAX_BODY (1024 * 1024)
#define DEFAULT_MAX_HEADER_BYTES 16384
#define DEFAULT_IDLE_TIMEOUT_MS 60000
#define DEFAULT_HEAD_TIMEOUT_MS 10000
#define DEFAULT_MAX_CONNS 256

enum conn_state {
	CS_HEAD,    /* waiting for (the rest of) a request head */
	CS_BODY,    /* head parsed; waiting for the Content-Length body */
	CS_HANDLER, /* the handler holds the request; nothing is read */
	CS_CLOSING, /* last response queued; close once it is written */
	CS_LINGER,  /* write side shut; discarding the peer's bytes until EOF or timeout */
};

struct httpd_conn;

struct httpd_req {
	struct httpd_conn *conn; /* (ref) the connection this request arrived on */
	const char *buf;	 /* (ref) the request's first byte inside conn->rbuf */
	char *xhdr;		 /* extra response header lines, each ending in CRLF */
	size_t xhdr_len;
	size_t xhdr_cap;
};

struct httpd_conn {
	struct httpd *h; /* (ref) */
	struct httpd_conn *prev, *next;
	int fd; /* -1 once closed */
	struct event *ev;
	struct event *timer; /* idle/slow timeout, linger timeout */
	enum conn_state state;
	bool readable;	 /* no EAGAIN seen since the last EV_READ */
	bool writable;	 /* no EAGAIN seen since the last EV_WRITE */
	bool peer_eof;	 /* the peer shut its write side */
	bool running;	 /* conn_run() is on the stack: httpd_respond() must not re-enter */
	bool keep_alive; /* the current request allows another one after it */
	bool early;	 /* the head callback holds the request: its body is not read */
	bool timed_head; /* the head timer runs (armed at the head's first byte) */
	size_t linger_left;
	size_t max_body; /* the current request's body limit (the head callback may lower it) */
	size_t reserved; /* body bytes of this request counted in h->body_bytes */

	char *rbuf; /* [rpos, rlen) holds unprocessed request bytes */
	size_t rpos, rlen, rcap;
	char *wbuf; /* [woff, wlen) holds unsent response bytes */
	size_t woff, wlen, wcap;

	struct http_msg msg; /* the request being parsed or handled; spans are relative to rpos */
	struct http_header hdr[HTTPD_MAX_HEADERS];
	size_t body_len; /* of the current request */
	struct httpd_req req;
	char peer[64];
};

struct httpd {
	struct event_base *base; /* (ref) */
	int fd;			 /* the listening socket */
	struct event *accept_ev;
	struct event *pause_ev; /* resumes accepting after EMFILE/ENFILE */
	struct httpd_opts opts;
	struct http_limits lim;
	size_t rbuf_max;
	httpd_handler_cb cb;
	void *arg;
	struct httpd_conn *conns; /* every connection, including closed ones awaiting a response;
				   * newest first */
	size_t nconns;		  /* open connections in conns */
	size_t body_bytes;	  /* request bodies being buffered, all connections */
	time_t date_sec;	  /* second that date[] was formatted for */
	char date[40];
};

static void conn_run(struct httpd_conn *c);
static void conn_close(struct httpd_conn *c);

static const struct {
	int status;
	const char *reason;
} reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {206, "Partial Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Payload Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {417, "Expectation Failed"},
    {422, "Unprocessable Content"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

const char *httpd_reason(int status)
{
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].status == status)
			return reasons[i].reason;
	return "Unknown";
}

/* The Date header's value for the current second, formatted once per second. */
static const char *httpd_date(struct httpd *h)
{
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct timeval tv;
	struct tm tm;

	/* The loop's cached time: no clock read per response. */
	if (event_base_gettimeofday_cached(h->base, &tv) != 0)
		gettimeofday(&tv, NULL);
	if (tv.tv_sec == h->date_sec && h->date[0] != '\0')
		return h->date;
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(h->date, sizeof(h->date), "%s, %02d %s %04d %02d:%02d:%02d GMT",
		 days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900,
		 tm.tm_hour, tm.tm_min, tm.tm_sec);
	h->date_sec = tv.tv_sec;
	return h->date;
}

/* ---- buffers ---- */

/* Makes room for n more bytes at the end of the write buffer. Returns 0 or -1 (no memory). */
static int wbuf_reserve(struct httpd_conn *c, size_t n)
{
	if (c->wcap - c->wlen >= n)
		return 0;
	if (c->woff > 0) {
		memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
		c->wlen -= c->woff;
		c->woff = 0;
		if (c->wcap - c->wlen >= n)
			return 0;
	}
	size_t cap = c->wcap ? c->wcap : 1024;
	while (cap - c->wlen < n)
		cap *= 2;
	char *p = realloc(c->wbuf, cap);
	if (p == NULL)
		return -1;
	c->wbuf = p;
	c->wcap = cap;
	return 0;
}

static int wbuf_append(struct httpd_conn *c, const char *data, size_t n)
{
	if (wbuf_reserve(c, n) < 0)
		return -1;
	memcpy(c->wbuf + c->wlen, data, n);
	c->wlen += n;
	return 0;
}

/*
 * Makes room at the end of the read buffer: first by moving the unprocessed bytes to the front,
 * then by growing it (at least to the current message's size) up to h->rbuf_max. Must not run
 * while the handler holds a request (its pointers point into rbuf). Returns 1 when there is
 * room, 0 when the buffer is at its bound and full, -1 when out of memory.
 */
static int rbuf_make_room(struct httpd_conn *c)
{
	if (c->rpos > 0) {
		memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
		c->rlen -= c->rpos;
		c->rpos = 0;
		return 1;
	}
	/* until a head is accepted the buffer holds at most a head: a body announced by a
	 * request that is then refused is never buffered */
	size_t max = c->state == CS_BODY ? c->msg.head_len + c->body_len : c->h->opts.max_header_bytes;
	if (max > c->h->rbuf_max)
		max = c->h->rbuf_max;
	if (c->rcap >= max)
		return 0;
	size_t cap = c->rcap ? c->rcap * 2 : RBUF_MIN;
	if (c->state == CS_BODY && cap < max)
		cap = max;
	if (cap > max)
		cap = max;
	char *p = realloc(c->rbuf, cap);
	if (p == NULL)
		return -1;
	c->rbuf = p;
	c->rcap = cap;
	return 1;
}

/* ---- connection I/O ---- */

/* Arms the connection's timer for ms milliseconds from now (replacing any earlier deadline). */
static void conn_set_timer(struct httpd_conn *c, uint32_t ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};

	evtimer_add(c->timer, &tv);
}

/*
 * Reads what the socket holds into the read buffer, until EAGAIN, EOF or a full buffer (then
 * c->readable stays set so that reading resumes once bytes were consumed). Returns the number
 * of bytes read, or -1 on a socket error or when out of memory.
 */
static ssize_t conn_read(struct httpd_conn *c)
{
	size_t total = 0;

	while (c->readable) {
		if (c->rlen == c->rcap) {
			int room = rbuf_make_room(c);
			if (room < 0)
				return -1;
			if (room == 0)
				break;
		}
		ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
		if (n > 0) {
			c->rlen += (size_t)n;
			total += (size_t)n;
		} else if (n == 0) {
			c->peer_eof = true;
			c->readable = false;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			c->readable = false;
		} else if (errno != EINTR) {
			log_debug("httpd: %s: read: %s", c->peer, strerror(errno));
			return -1;
		}
	}
	return (ssize_t)total;
}

/*
 * Writes the pending output until it is gone or the socket says EAGAIN. A write deadline is
 * (re)armed while output stays pending, so a peer that stops reading times out. Returns 0, or
 * -1 on a socket error.
 */
static int conn_flush(struct httpd_conn *c)
{
	bool progress = false;

	while (c->woff < c->wlen && c->writable) {
		ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
		if (n > 0) {
			c->woff += (size_t)n;
			progress = true;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			c->writable = false;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else {
			log_debug("httpd: %s: write: %s", c->peer, strerror(errno));
			return -1;
		}
	}
	if (c->woff == c->wlen) {
		c->woff = c->wlen = 0;
		if (c->wcap > WBUF_KEEP) {
			free(c->wbuf);
			c->wbuf = NULL;
			c->wcap = 0;
		}
		/* Output gone: the handler's time is not limited by us. */
		if (progress && c->state == CS_HANDLER)
			evtimer_del(c->timer);
	} else if (progress && c->state != CS_LINGER) {
		conn_set_timer(c, c->h->opts.idle_timeout_ms);
	}
	return 0;
}

/* Discards what the peer still sends after the last response. Returns false when the
 * connection should go now (EOF, error, or the byte budget spent), true to keep waiting. */
static bool conn_linger(struct httpd_conn *c)
{
	if (c->peer_eof)
		return false;
	c->readable = false;
	return net_linger_read(c->fd, &c->linger_left);
}

/* ---- responses ---- */

/* Appends one formatted piece to the write buffer, which has room (see conn_put_response). */
static void put(struct httpd_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct httpd_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(c->wbuf + c->wlen, c->wcap - c->wlen, fmt, ap);
	va_end(ap);
	if (n > 0)
		c->wlen += (size_t)n < c->wcap - c->wlen ? (size_t)n : c->wcap - c->wlen - 1;
}

/*
 * Queues a complete response. head_only: the request was HEAD (headers as for a GET, no body).
 * keep: the connection stays open ("Connection: close" otherwise). xhdr (may be NULL): extra
 * header lines, CRLF-terminated. Returns 0 or -1 (no memory).
 */
static int conn_put_response(struct httpd_conn *c, int status, const char *ctype, const char *body,
			     size_t len, bool head_only, bool keep, const char *xhdr, size_t xlen)
{
	struct httpd *h = c->h;
	const char *server = h->opts.server_name;
	bool no_body = (status >= 100 && status < 200) || status == 204 || status == 304;
	bool send_body = !no_body && !head_only;

	size_t need = 200 + strlen(httpd_reason(status)) + (ctype ? strlen(ctype) : 0) +
		      (server ? strlen(server) : 0) + xlen + (send_body ? len : 0);
	if (wbuf_reserve(c, need) < 0)
		return -1;
	put(c, "HTTP/1.1 %d %s\r\nDate: %s\r\n", status, httpd_reason(status), httpd_date(h));
	if (server != NULL)
		put(c, "Server: %s\r\n", server);
	if (ctype != NULL)
		put(c, "Content-Type: %s\r\n", ctype);
	if (!no_body)
		put(c, "Content-Length: %zu\r\n", len);
	if (!keep)
		put(c, "Connection: close\r\n");
	else if (c->msg.minor == 0)
		put(c, "Connection: keep-alive\r\n");
	if (xlen > 0) {
		memcpy(c->wbuf + c->wlen, xhdr, xlen);
		c->wlen += xlen;
	}
	put(c, "\r\n");
	if (send_body && len > 0) {
		memcpy(c->wbuf + c->wlen, body, len);
		c->wlen += len;
	}
	return 0;
}

/* Answers a request that will not reach the handler (status with a short text reason) and
 * closes the connection after it. detail (static, may be NULL) is appended to the reason. */
static void conn_error(struct httpd_conn *c, int status, const char *detail)
{
	char body[256];
	int n;

	if (detail != NULL)
		n = snprintf(body, sizeof(body), "%s: %s\n", httpd_reason(status), detail);
	else
		n = snprintf(body, sizeof(body), "%s\n", httpd_reason(status));
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(body))
		n = sizeof(body) - 1;
	log_debug("httpd: %s: %d %s", c->peer, status, detail ? detail : httpd_reason(status));
	/* A failed allocation just closes: the peer sees EOF instead of the reason. */
	(void)conn_put_response(c, status, "text/plain", body, (size_t)n, false, false, NULL, 0);
	c->keep_alive = false;
	c->state = CS_CLOSING;
}

/* ---- the request state machine ---- */

/* Gives back the current request's share of the body budget. */
static void conn_unreserve(struct httpd_conn *c)
{
	c->h->body_bytes -= c->reserved;
	c->reserved = 0;
}

/*
 * Shows the parsed head at rpos to the head callback. Returns true when the request goes on,
 * false when the callback answered it (the body is not read).
 */
static bool conn_head(struct httpd_conn *c)
{
	struct httpd *h = c->h;

	c->max_body = h->opts.max_body;
	if (h->opts.head == NULL)
		return true;
	c->state = CS_HANDLER;
	c->early = true;
	c->req.buf = c->rbuf + c->rpos;
	c->req.xhdr_len = 0;
	bool go = h->opts.head(&c->req, h->arg, &c->max_body);
	c->early = false;
	if (!go)
		return false; /* httpd_respond() set the state */
	c->state = CS_HEAD;
	if (c->max_body > h->opts.max_body)
		c->max_body = h->opts.max_body;
	return true;
}

/* Hands the complete request at rpos to the handler. */
static void conn_dispatch(struct httpd_conn *c)
{
	c->state = CS_HANDLER;
	c->req.buf = c->rbuf + c->rpos;
	c->req.xhdr_len = 0;
	if (c->woff == c->wlen)
		evtimer_del(c->timer);
	c->h->cb(&c->req, c->h->arg); /* may answer at once; conn_run() sees the new state */
}

/*
 * Advances the request at rpos with the bytes already buffered. Returns true when something
 * changed (state, output), false when more bytes are needed.
 */
static bool conn_parse(struct httpd_conn *c)
{
	size_t avail = c->rlen - c->rpos;
	struct http_msg *m = &c->msg;

	if (avail == 0 && c->state == CS_HEAD)
		return false; /* (rbuf may not even exist yet) */
	const char *buf = c->rbuf + c->rpos;
	if (c->state == CS_HEAD) {
		switch (http_parse_request(m, buf, avail, &c->h->lim)) {
		case HTTP_AGAIN:
			/* The buffer is as large as it gets and still holds no whole head. */
			if (c->rpos == 0 && c->rlen >= c->h->opts.max_header_bytes) {
				conn_error(c, 431, NULL);
				return true;
			}
			return false;
		case HTTP_ERROR:
		case HTTP_TOO_LARGE:
			conn_error(c, m->error_status ? m->error_status : 400, m->error);
			return true;
		case HTTP_OK:
			break;
		}
		c->keep_alive = m->keep_alive;
		if (c->timed_head) {
			c->timed_head = false;
			conn_set_timer(c, c->h->opts.idle_timeout_ms); /* now for the body */
		}
		if (!conn_head(c))
			return true;
		if (m->body == HTTP_BODY_CHUNKED) {
			conn_error(c, 411, NULL);
			return true;
		}
		if (m->body == HTTP_BODY_LENGTH && m->content_length > c->max_body) {
			conn_error(c, 413, c->max_body < c->h->opts.max_body
						   ? "this endpoint takes a smaller body"
						   : NULL);
			return true;
		}
		c->body_len = m->body == HTTP_BODY_LENGTH ? (size_t)m->content_length : 0;
		if (c->h->opts.max_body_total - c->h->body_bytes < c->body_len) {
			conn_error(c, 503, "too many request bodies at once; retry");
			return true;
		}
		c->reserved = c->body_len;
		c->h->body_bytes += c->body_len;
		c->state = CS_BODY;
		if (m->expect_continue && m->minor == 1 && c->body_len > 0 &&
		    avail < m->head_len + c->body_len) {
			static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
			if (wbuf_append(c, cont, sizeof(cont) - 1) < 0) {
				conn_error(c, 500, NULL);
				return true;
			}
		}
		return true;
	}
	if (avail < m->head_len + c->body_len)
		return false;
	conn_dispatch(c);
	return true;
}

/*
 * Moves the connection as far as its buffers and flags allow. Returns false when it must be
 * closed now.
 */
static bool conn_drive(struct httpd_conn *c)
{
	for (;;) {
		if (c->woff < c->wlen && c->writable && conn_flush(c) < 0)
			return false;
		switch (c->state) {
		case CS_HANDLER:
			return true;
		case CS_CLOSING:
			if (c->woff < c->wlen)
				return true;
			/* Shut the write side and drain the peer before closing, so that a peer
			 * still sending does not get a reset that destroys the response in flight.
			 */
			shutdown(c->fd, SHUT_WR);
			c->state = CS_LINGER;
			c->linger_left = NET_LINGER_BYTES;
			conn_set_timer(c, NET_LINGER_MS);
			return conn_linger(c);
		case CS_LINGER:
			return conn_linger(c);
		case CS_HEAD:
		case CS_BODY:
			break;
		}
		/* A peer that sends requests but does not read the answers waits here. */
		if (c->wlen - c->woff > WBUF_HIGH)
			return true;
		if (conn_parse(c))
			continue;
		ssize_t n = conn_read(c);
		if (n < 0)
			return false;
		if (n > 0) {
			if (c->state == CS_HEAD && !c->timed_head) {
				/* a head has begun: it must now come whole in time */
				c->timed_head = true;
				conn_set_timer(c, c->h->opts.head_timeout_ms);
			}
			continue;
		}
		if (c->readable) {
			/* Buffer full at its bound, yet the parser wants more: cannot happen with a
			 * correct parser (a head over max_header_bytes is TOO_LARGE); answer
			 * anyway. */
			conn_error(c, 431, NULL);
			continue;
		}
		if (c->peer_eof) {
			/* A half-closed peer with no complete request left: finish writing, then
			 * go. A partial request is dropped without an answer. */
			if (c->rlen > c->rpos || c->woff == c->wlen)
				return false;
			c->state = CS_CLOSING;
			continue;
		}
		return true;
	}
}

/* Runs the connection after an event. Frees c when it is done (see conn_close). */
static void conn_run(struct httpd_conn *c)
{
	c->running = true;
	bool ok = conn_drive(c);
	c->running = false;
	if (!ok)
		conn_close(c); /* may free c */
}

/*
 * Whether the peer reset the connection, looked at while the handler works and nothing is read.
 * A FIN alone does not count: a half-closed peer may still wait for its answer.
 */
static bool conn_peer_reset(struct httpd_conn *c)
{
	char byte;

	for (;;) {
		ssize_t n = recv(c->fd, &byte, 1, MSG_PEEK);
		if (n >= 0)
			return false;
		if (errno != EINTR)
			return errno != EAGAIN && errno != EWOULDBLOCK;
	}
}

static void conn_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct httpd_conn *c = arg;

	(void)fd;
	if (what & EV_READ)
		c->readable = true;
	if (what & EV_WRITE)
		c->writable = true;
	/* A reset client's socket goes now, not when the answer is written. */
	if ((what & EV_READ) && c->state == CS_HANDLER && conn_peer_reset(c)) {
		log_debug("httpd: %s: reset while the handler works", c->peer);
		conn_close(c); /* keeps c until httpd_respond() */
		return;
	}
	conn_run(c); /* may free c */
}

static void conn_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct httpd_conn *c = arg;

	(void)fd;
	(void)what;
	if (c->state == CS_HANDLER && c->woff == c->wlen)
		return; /* the handler's time is its own */
	if (c->state == CS_HEAD && c->rlen > c->rpos && c->woff == c->wlen) {
		conn_error(c, 408, "request head not received in time");
		conn_run(c); /* may free c */
		return;
	}
	if (c->state != CS_LINGER)
		log_debug("httpd: %s: timeout", c->peer);
	conn_close(c); /* may free c */
}

/*
 * The one teardown of a connection: closes its socket, and frees it unless the handler still
 * holds its request; then httpd_respond() calls this again once the request is answered.
 */
static void conn_close(struct httpd_conn *c)
{
	if (c->ev != NULL) {
		event_free(c->ev);
		c->ev = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	if (c->timer != NULL)
		evtimer_del(c->timer);
	if (c->state == CS_HANDLER)
		return;

	struct httpd *h = c->h;
	conn_unreserve(c);
	h->nconns--;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	if (c->timer != NULL)
		event_free(c->timer);
	free(c->rbuf);
	free(c->wbuf);
	free(c->req.xhdr);
	free(c);
}

/*
 * At the connection limit, makes room by closing the oldest connection that is lingering after
 * its last answer, else the oldest that sent part of a head (slow or stalled), else the oldest
 * idle one.
 * Connections whose request is being read or handled are kept. Returns whether it made room.
 */
static bool conn_evict(struct httpd *h)
{
	struct httpd_conn *answered = NULL, *partial = NULL, *idle = NULL;

	/* the list is newest first: the last match of each kind is its oldest */
	for (struct httpd_conn *c = h->conns; c != NULL; c = c->next) {
		if (c->fd < 0)
			continue;
		if (c->state == CS_LINGER)
			answered = c;
		else if (c->state == CS_HEAD && c->rlen > c->rpos)
			partial = c;
		else if (c->state == CS_HEAD)
			idle = c;
	}
	struct httpd_conn *victim = answered != NULL ? answered : partial != NULL ? partial : idle;
	if (victim == NULL)
		return false;
	log_debug("httpd: connection limit: closing %s (waiting for a head)", victim->peer);
	conn_close(victim);
	return true;
}

/* Takes ownership of the accepted socket fd (closed on failure). */
static void conn_new(struct httpd *h, int fd, const struct sockaddr *sa)
{
	struct httpd_conn *c = calloc(1, sizeof(*c));
	int one = 1;

	if (c == NULL) {
		log_warnx("httpd: out of memory for a connection");
		close(fd);
		return;
	}
	if (h->nconns >= h->opts.max_conns && !conn_evict(h)) {
		log_debug("httpd: connection limit (%zu) reached, refusing one", h->opts.max_conns);
		free(c);
		close(fd);
		return;
	}
	h->nconns++;
	c->h = h;
	c->fd = fd;
	c->state = CS_HEAD;
	c->writable = true; /* a fresh socket has room; the first EV_WRITE edge may be the add */
	c->req.conn = c;
	c->msg.hdr = c->hdr;
	c->msg.max_hdr = HTTPD_MAX_HEADERS;
	http_msg_reset(&c->msg);
	net_addr_str(sa, c->peer, sizeof(c->peer));
	/* Responses go out in one write each; do not let Nagle hold the second one back. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	c->next = h->conns;
	if (h->conns != NULL)
		h->conns->prev = c;
	h->conns = c;

	c->timer = evtimer_new(h->base, conn_timeout_cb, c);
	c->ev = event_new(h->base, fd, EV_READ | EV_WRITE | EV_PERSIST | EV_ET, conn_event_cb, c);
	if (c->timer == NULL || c->ev == NULL || event_add(c->ev, NULL) < 0) {
		log_warnx("httpd: cannot register a connection");
		conn_close(c);
		return;
	}
	conn_set_timer(c, h->opts.idle_timeout_ms);
}

/* ---- listener ---- */

static void httpd_accept_cb(evutil_socket_t fd, short what, void *arg)
{
	struct httpd *h = arg;

	(void)fd;
	(void)what;
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int cfd = accept4(h->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd >= 0) {
			conn_new(h, cfd, (struct sockaddr *)&ss);
			continue;
		}
		switch (errno) {
		case EAGAIN:
#if EAGAIN != EWOULDBLOCK
		case EWOULDBLOCK:
#endif
			return;
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
			continue;
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM: {
			/* Out of descriptors or memory: retrying at once would spin on the pending
			 * connection. Stop listening for a moment; the timer accepts again. */
			struct timeval tv = {.tv_sec = 0, .tv_usec = ACCEPT_PAUSE_MS * 1000};
			log_warn("httpd: accept (pausing %d ms)", ACCEPT_PAUSE_MS);
			event_del(h->accept_ev);
			evtimer_add(h->pause_ev, &tv);
			return;
		}
		default:
			log_warn("httpd: accept");
			return;
		}
	}
}

static void httpd_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct httpd *h = arg;

	(void)fd;
	(void)what;
	if (event_add(h->accept_ev, NULL) < 0)
		log_warnx("httpd: cannot resume accepting");
	/* Edge-triggered: connections that queued during the pause raise no new edge. */
	httpd_accept_cb(h->fd, EV_READ, h);
}

struct httpd *httpd_new(struct event_base *base, int fd, const struct httpd_opts *opts,
			httpd_handler_cb cb, void *arg)
{
	struct httpd *h = calloc(1, sizeof(*h));

	if (h == NULL) {
		close(fd);
		return NULL;
	}
	h->base = base;
	h->fd = fd;
	h->cb = cb;
	h->arg = arg;
	if (opts != NULL)
		h->opts = *opts;
	if (h->opts.max_body == 0)
		h->opts.max_body = DEFAULT_MAX_BODY;
	if (h->opts.max_header_bytes == 0)
		h->opts.max_header_bytes = DEFAULT_MAX_HEADER_BYTES;
	if (h->opts.idle_timeout_ms == 0)
		h->opts.idle_timeout_ms = DEFAULT_IDLE_TIMEOUT_MS;
	if (h->opts.head_timeout_ms == 0)
		h->opts.head_timeout_ms = DEFAULT_HEAD_TIMEOUT_MS < h->opts.idle_timeout_ms
						  ? DEFAULT_HEAD_TIMEOUT_MS
						  : h->opts.idle_timeout_ms;
	if (h->opts.max_conns == 0)
		h->opts.max_conns = DEFAULT_MAX_CONNS;
	if (h->opts.max_body_total == 0)
		h->opts.max_body_total = 4 * h->opts.max_body;
	h->lim.max_header_bytes = h->opts.max_header_bytes;
	h->lim.max_request_line = HTTPD_MAX_REQUEST_LINE;
	h->lim.max_headers = HTTPD_MAX_HEADERS;
	h->rbuf_max = (size_t)h->opts.max_header_bytes + h->opts.max_body;

	h->accept_ev = event_new(base, fd, EV_READ | EV_PERSIST | EV_ET, httpd_accept_cb, h);
	h->pause_ev = evtimer_new(base, httpd_resume_cb, h);
	if (h->accept_ev == NULL || h->pause_ev == NULL || event_add(h->accept_ev, NULL) < 0) {
		httpd_free(h);
		return NULL;
	}
	return h;
}

void httpd_free(struct httpd *h)
{
	if (h == NULL)
		return;
	while (h->conns != NULL) {
		struct httpd_conn *c = h->conns;
		c->state = CS_CLOSING; /* drops a request the handler still holds */
		conn_close(c);
	}
	if (h->accept_ev != NULL)
		event_free(h->accept_ev);
	if (h->pause_ev != NULL)
		event_free(h->pause_ev);
	if (h->fd >= 0)
		close(h->fd);
	free(h);
}

/* ---- the handler's side ---- */

void httpd_respond(struct httpd_req *req, int status, const char *content_type, const char *body,
		   size_t len)
{
	struct httpd_conn *c = req->conn;

	if (c->state != CS_HANDLER) {
		log_error("httpd: response to a request already answered");
		return;
	}
	if (c->fd < 0) {
		/* The client went away while the handler worked: drop the answer, free the rest. */
		log_debug("httpd: %s: client gone, answer dropped", c->peer);
		c->state = CS_CLOSING;
		conn_close(c);
		return;
	}
	if (c->early && c->msg.body != HTTP_BODY_NONE)
		c->keep_alive = false; /* the body was not read: nothing after it can be */
	bool head_only = c->msg.method == HTTP_M_HEAD;
	if (conn_put_response(c, status, content_type, body, len, head_only, c->keep_alive,
			      req->xhdr, req->xhdr_len) < 0) {
		log_warnx("httpd: %s: out of memory for a response", c->peer);
		c->keep_alive = false;
	}
	c->rpos += c->msg.head_len + (c->early ? 0 : c->body_len);
	conn_unreserve(c);
	if (c->rpos == c->rlen) {
		c->rpos = c->rlen = 0;
		if (c->rcap > RBUF_KEEP) {
			free(c->rbuf);
			c->rbuf = NULL;
			c->rcap = 0;
		}
	}
	if (req->xhdr_cap > 4096) {
		free(req->xhdr);
		req->xhdr = NULL;
		req->xhdr_cap = 0;
	}
	req->xhdr_len = 0;
	if (c->keep_alive) {
		c->state = CS_HEAD;
		c->body_len = 0;
		http_msg_reset(&c->msg);
		conn_set_timer(c, c->h->opts.idle_timeout_ms);
	} else {
		c->state = CS_CLOSING;
	}
	/* Called from inside the handler: conn_run() is on the stack and carries on. */
	if (!c->running)
		conn_run(c); /* may free c */
}

void httpd_add_header(struct httpd_req *req, const char *line)
{
	size_t n = strlen(line);

	if (strpbrk(line, "\r\n") != NULL || n == 0) {
		log_error("httpd: refusing a malformed response header");
		return;
	}
	if (req->xhdr_cap - req->xhdr_len < n + 2) {
		size_t cap = req->xhdr_cap ? req->xhdr_cap : 256;
		while (cap - req->xhdr_len < n + 2)
			cap *= 2;
		char *p = realloc(req->xhdr, cap);
		if (p == NULL) {
			log_warnx("httpd: out of memory for a response header");
			return;
		}
		req->xhdr = p;
		req->xhdr_cap = cap;
	}
	memcpy(req->xhdr + req->xhdr_len, line, n);
	memcpy(req->xhdr + req->xhdr_len + n, "\r\n", 2);
	req->xhdr_len += n + 2;
}

enum http_method httpd_req_method(const struct httpd_req *req)
{
	return req->conn->msg.method;
}

const char *httpd_req_method_str(const struct httpd_req *req, size_t *len)
{
	*len = req->conn->msg.method_s.len;
	return req->buf + req->conn->msg.method_s.off;
}

const char *httpd_req_path(const struct httpd_req *req, size_t *len)
{
	*len = req->conn->msg.path.len;
	return req->buf + req->conn->msg.path.off;
}

const char *httpd_req_query(const struct httpd_req *req, size_t *len)
{
	*len = req->conn->msg.query.len;
	return req->buf + req->conn->msg.query.off;
}

const char *httpd_req_header(const struct httpd_req *req, const char *name, size_t *len)
{
	const struct http_msg *m = &req->conn->msg;
	int i = http_find_header(m, req->buf, name, strlen(name));

	if (i < 0) {
		*len = 0;
		return NULL;
	}
	*len = m->hdr[i].value.len;
	return req->buf + m->hdr[i].value.off;
}

const char *httpd_req_body(const struct httpd_req *req, size_t *len)
{
	*len = req->conn->body_len;
	return req->buf + req->conn->msg.head_len;
}

const char *httpd_req_peer(const struct httpd_req *req)
{
	return req->conn->peer;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Decodes one byte of a URL-encoded run at *p (< end): "+" is a space, "%XX" a byte, and a
 * "%" not followed by two hex digits stands for itself. Advances *p. */
static unsigned char url_next(const char **p, const char *end)
{
	const char *s = *p;

	if (*s == '+') {
		*p = s + 1;
		return ' ';
	}
	if (*s == '%' && end - s >= 3 && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
		*p = s + 3;
		return (unsigned char)(hexval(s[1]) * 16 + hexval(s[2]));
	}
	*p = s + 1;
	return (unsigned char)*s;
}

/* Whether the URL-encoded run [s, end) decodes to the NUL-terminated name. */
static bool url_equals(const char *s, const char *end, const char *name)
{
	while (s < end) {
		if (*name == '\0' || url_next(&s, end) != (unsigned char)*name)
			return false;
		name++;
	}
	return *name == '\0';
}

bool httpd_query_next(const char **q, const char *end, struct httpd_query_piece *p)
{
	const char *s = *q;

	if (s >= end)
		return false;
	const char *amp = memchr(s, '&', (size_t)(end - s));
	if (amp == NULL)
		amp = end;
	const char *eq = memchr(s, '=', (size_t)(amp - s));
	p->name = s;
	p->name_end = eq != NULL ? eq : amp;
	p->value = eq != NULL ? eq + 1 : amp;
	p->value_end = amp;
	*q = amp + 1;
	return true;
}

int httpd_req_query_param(const struct httpd_req *req, const char *name, char *dst, size_t cap)
{
	size_t qlen;
	const char *q = httpd_req_query(req, &qlen);
	const char *end = q + qlen;
	struct httpd_query_piece p;

	while (httpd_query_next(&q, end, &p)) {
		if (url_equals(p.name, p.name_end, name)) {
			const char *v = p.value, *amp = p.value_end;
			size_t n = 0;
			while (v < amp) {
				unsigned char ch = url_next(&v, amp);
				if (n + 1 >= cap)
					return -1;
				dst[n++] = (char)ch;
			}
			if (cap == 0 || n > (size_t)INT32_MAX)
				return -1;
			dst[n] = '\0';
			return (int)n;
		}
	}
	return -1;
}
