/*
 * test_httpd.c - tests proxy/httpd.c: the small HTTP/1.1 server behind the admin listener and
 * `abgate backend`.
 *
 * One thread: the servers run on an event base that the test pumps with EVLOOP_NONBLOCK while
 * non-blocking client sockets in the same process send bytes and collect responses. Responses
 * are compared exactly, with the Date line taken out (its presence and shape are checked).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "check.h"
#include "http.h"
#include "httpd.h"
#include "log.h"
#include "net.h"

static struct event_base *base;

/* ---- the test handler ---- */

/* A request answered later from a timer. */
struct deferred {
	struct event *ev;
	struct httpd_req *req;
	struct deferred *next;
};

static struct deferred *deferred_list;
static int handled;	  /* requests the handler saw */
static int deferred_done; /* deferred requests answered */

static void deferred_unlink(struct deferred *d)
{
	for (struct deferred **p = &deferred_list; *p; p = &(*p)->next) {
		if (*p == d) {
			*p = d->next;
			break;
		}
	}
	event_free(d->ev);
	free(d);
}

static void deferred_cb(evutil_socket_t fd, short what, void *arg)
{
	struct deferred *d = arg;

	(void)fd;
	(void)what;
	httpd_respond(d->req, 200, "text/plain", "deferred", 8);
	deferred_done++;
	deferred_unlink(d);
}

static bool path_is(const char *p, size_t n, const char *want)
{
	return n == strlen(want) && memcmp(p, want, n) == 0;
}

static void handler(struct httpd_req *req, void *arg)
{
	size_t plen, qlen, mlen, blen, hlen;
	const char *path = httpd_req_path(req, &plen);
	const char *query = httpd_req_query(req, &qlen);
	const char *method = httpd_req_method_str(req, &mlen);
	const char *body = httpd_req_body(req, &blen);
	char out[512];

	(void)arg;
	handled++;
	if (path_is(path, plen, "/echo")) {
		if (httpd_req_method(req) != (mlen == 4	  ? HTTP_M_POST
					      : mlen == 3 ? HTTP_M_GET
							  : HTTP_M_HEAD))
			method = "wrong-method";
		int n = snprintf(out, sizeof(out), "%.*s %.*s q=%.*s body=%zu", (int)mlen, method,
				 (int)plen, path, (int)qlen, query, blen);
		httpd_add_header(req, "X-Handler: yes");
		httpd_respond(req, 200, "text/plain", out, (size_t)n);
	} else if (path_is(path, plen, "/body")) {
		httpd_respond(req, 200, "application/octet-stream", body, blen);
	} else if (path_is(path, plen, "/param")) {
		char v[16];
		int n = httpd_req_query_param(req, "name", v, sizeof(v));
		if (n < 0)
			httpd_respond(req, 200, "text/plain", "absent", 6);
		else
			httpd_respond(req, 200, "text/plain", v, (size_t)n);
	} else if (path_is(path, plen, "/hdr")) {
		const char *v = httpd_req_header(req, "x-test", &hlen);
		int n = snprintf(out, sizeof(out), "%.*s from %s", v ? (int)hlen : 4,
				 v ? v : "none", httpd_req_peer(req));
		httpd_respond(req, 200, "text/plain", out, (size_t)n);
	} else if (path_is(path, plen, "/defer")) {
		struct deferred *d = calloc(1, sizeof(*d));
		struct timeval tv = {0, 30000};
		d->req = req;
		d->ev = evtimer_new(base, deferred_cb, d);
		d->next = deferred_list;
		deferred_list = d;
		evtimer_add(d->ev, &tv);
	} else if (path_is(path, plen, "/big")) {
		/* 100000 bytes, starting with the query so that the order shows */
		char *big = malloc(100000);
		memset(big, 'x', 100000);
		memcpy(big, query, qlen < 100 ? qlen : 100);
		httpd_respond(req, 200, "text/plain", big, 100000);
		free(big);
	} else if (path_is(path, plen, "/sized")) {
		/* n zero bytes */
		char num[16];
		long n = httpd_req_query_param(req, "n", num, sizeof(num)) > 0 ? atol(num) : 0;
		char *zeros = calloc(1, (size_t)n + 1);
		httpd_respond(req, 200, "text/plain", zeros, (size_t)n);
		free(zeros);
	} else if (path_is(path, plen, "/empty")) {
		httpd_respond(req, 204, NULL, NULL, 0);
	} else {
		httpd_respond(req, 404, "text/plain", "not found\n", 10);
	}
}

/* ---- servers and clients ---- */

static int listen_port(int fd)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	getsockname(fd, (struct sockaddr *)&sin, &len);
	return ntohs(sin.sin_port);
}

/* Starts a server on an ephemeral 127.0.0.1 port; sets *port. */
static struct httpd *server_start(const struct httpd_opts *opts, int *port)
{
	struct sockaddr_storage ss;
	socklen_t len;

	net_parse_addr("127.0.0.1:0", &ss, &len);
	int fd = net_listen((struct sockaddr *)&ss, len, false, 64);
	if (fd < 0)
		return NULL;
	*port = listen_port(fd);
	return httpd_new(base, fd, opts, handler, NULL);
}

static void pump(int ms)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >= ms)
			return;
		usleep(500);
	}
}

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

struct cli {
	int fd;
	char buf[1 << 21];
	size_t len;
	bool eof;
};

static struct cli *cli_open(int port)
{
	struct cli *c = calloc(1, sizeof(*c));
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		perror("connect");
		exit(2);
	}
	fcntl(c->fd, F_SETFL, O_NONBLOCK);
	return c;
}

static void cli_close(struct cli *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

/* Sends all of data, pumping the server when the socket is full. */
static void cli_send(struct cli *c, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
		if (n > 0) {
			data += n;
			len -= (size_t)n;
		} else if (n < 0 && errno != EAGAIN) {
			return;
		} else {
			pump(1);
		}
	}
}

static void cli_sends(struct cli *c, const char *s)
{
	cli_send(c, s, strlen(s));
}

/* Moves whatever the socket holds into c->buf. */
static void cli_fill(struct cli *c)
{
	for (;;) {
		if (c->len == sizeof(c->buf))
			return;
		ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (n > 0) {
			c->len += (size_t)n;
		} else {
			if (n == 0 || (errno != EAGAIN && errno != EINTR))
				c->eof = true;
			return;
		}
	}
}

/* Length of the first complete response in c->buf, or 0. */
static size_t cli_complete(struct cli *c, enum http_method method)
{
	struct http_header hdr[64];
	struct http_msg m = {.hdr = hdr, .max_hdr = 64};

	http_msg_reset(&m);
	if (http_parse_response(&m, c->buf, c->len, method, NULL) != HTTP_OK)
		return 0;
	size_t need = m.head_len + (m.body == HTTP_BODY_LENGTH ? m.content_length : 0);
	return c->len >= need ? need : 0;
}

/*
 * Waits up to timeout_ms for the next response, copies it into out (NUL-terminated) without
 * its Date line, and sets *had_date when that line was there and well-formed. Returns the
 * length, or -1 when none came.
 */
static int cli_next_full(struct cli *c, enum http_method method, char *out, size_t cap,
			 int timeout_ms, bool *had_date)
{
	double end = now_ms() + timeout_ms;
	size_t n;

	for (;;) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		cli_fill(c);
		if ((n = cli_complete(c, method)) > 0)
			break;
		if (c->eof || now_ms() > end)
			return -1;
		usleep(200);
	}
	size_t w = 0;
	bool date = false;
	for (size_t i = 0; i < n;) {
		const char *eol = memmem(c->buf + i, n - i, "\r\n", 2);
		size_t ll = eol ? (size_t)(eol - (c->buf + i)) + 2 : n - i;
		if (ll == 37 && memcmp(c->buf + i, "Date: ", 6) == 0 &&
		    memcmp(c->buf + i + 31, " GMT\r\n", 6) == 0) {
			date = true;
		} else if (w + ll < cap) {
			memcpy(out + w, c->buf + i, ll);
			w += ll;
		}
		/* Only head lines are candidates for the Date; the body goes as is. */
		if (ll == 2) {
			size_t rest = n - i - 2;
			if (w + rest < cap) {
				memcpy(out + w, c->buf + i + 2, rest);
				w += rest;
			}
			break;
		}
		i += ll;
	}
	out[w] = '\0';
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
	if (had_date)
		*had_date = date;
	return (int)w;
}

static char resp[1 << 21];

static const char *cli_next(struct cli *c)
{
	if (cli_next_full(c, HTTP_M_GET, resp, sizeof(resp), 2000, NULL) < 0)
		return "(no response)";
	return resp;
}

/* Whether the server closes the connection (EOF with no further bytes) within timeout_ms. */
static bool cli_sees_eof(struct cli *c, int timeout_ms)
{
	double end = now_ms() + timeout_ms;

	while (now_ms() < end) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		cli_fill(c);
		if (c->eof)
			return c->len == 0;
		usleep(200);
	}
	return false;
}

/* Whether the server answers something starting with prefix and then closes, within
 * timeout_ms. */
static bool cli_sees_answer_then_eof(struct cli *c, const char *prefix, int timeout_ms)
{
	double end = now_ms() + timeout_ms;

	while (now_ms() < end) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		cli_fill(c);
		if (c->eof)
			return c->len >= strlen(prefix) && memcmp(c->buf, prefix, strlen(prefix)) == 0;
		usleep(200);
	}
	return false;
}

/*
 * The response expected from a server: status ("200 OK"), Server header value (NULL: none),
 * Content-Type (NULL: none), header lines after Content-Length (each ending in CRLF), body.
 */
static const char *want(const char *server, const char *status, const char *ctype, const char *more,
			const char *body)
{
	static char buf[8192];
	int n = snprintf(buf, sizeof(buf), "HTTP/1.1 %s\r\n", status);

	if (server != NULL)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "Server: %s\r\n", server);
	if (ctype != NULL)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "Content-Type: %s\r\n", ctype);
	snprintf(buf + n, sizeof(buf) - (size_t)n, "Content-Length: %zu\r\n%s\r\n%s", strlen(body),
		 more, body);
	return buf;
}

#define SRV "abgate-test"
#define XH "X-Handler: yes\r\n"
/* a text answer of the main server */
#define TEXT(more, body) want(SRV, "200 OK", "text/plain", more, body)
#define OCTETS(body) want(SRV, "200 OK", "application/octet-stream", "", body)
#define CLOSE "Connection: close\r\n"

/* ---- tests ---- */

static int port_a; /* the main server */

static void test_simple_get(void)
{
	struct cli *c = cli_open(port_a);
	bool date = false;

	cli_sends(c, "GET /echo?x=1 HTTP/1.1\r\nHost: t\r\n\r\n");
	CHECK(cli_next_full(c, HTTP_M_GET, resp, sizeof(resp), 2000, &date) > 0);
	CHECK_STR(resp, "HTTP/1.1 200 OK\r\nServer: abgate-test\r\nContent-Type: text/plain\r\n"
			"Content-Length: 22\r\nX-Handler: yes\r\n\r\nGET /echo q=x=1 body=0");
	CHECK(date);
	CHECK(!cli_sees_eof(c, 30));

	cli_sends(c, "GET /hdr HTTP/1.1\r\nHost: t\r\nX-Test: \t hello \r\n\r\n");
	CHECK_STR(cli_next(c), TEXT("", "hello from 127.0.0.1"));
	cli_sends(c, "GET /hdr HTTP/1.1\r\nHost: t\r\n\r\n");
	CHECK_STR(cli_next(c), TEXT("", "none from 127.0.0.1"));
	cli_sends(c, "GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n");
	CHECK_STR(cli_next(c), want(SRV, "404 Not Found", "text/plain", "", "not found\n"));
	cli_sends(c, "GET /empty HTTP/1.1\r\nHost: t\r\n\r\n");
	CHECK_STR(cli_next(c), "HTTP/1.1 204 No Content\r\nServer: abgate-test\r\n\r\n");
	cli_close(c);
}

static void test_keep_alive(void)
{
	struct cli *c = cli_open(port_a);
	int before = handled;

	cli_sends(c, "GET /echo?n=1 HTTP/1.1\r\nHost: t\r\n\r\n");
	CHECK_STR(cli_next(c), TEXT(XH, "GET /echo q=n=1 body=0"));
	cli_sends(c, "POST /echo?n=2 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
	CHECK_STR(cli_next(c), TEXT(XH, "POST /echo q=n=2 body=3"));
	CHECK_INT(handled - before, 2);
	CHECK(!cli_sees_eof(c, 30));
	cli_close(c);
}

static void test_pipelined(void)
{
	struct cli *c = cli_open(port_a);

	/* two in one write */
	cli_sends(c, "GET /echo?n=1 HTTP/1.1\r\nHost: t\r\n\r\n"
		     "POST /echo?n=2 HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nxy");
	CHECK_STR(cli_next(c), TEXT(XH, "GET /echo q=n=1 body=0"));
	CHECK_STR(cli_next(c), TEXT(XH, "POST /echo q=n=2 body=2"));

	/* the first is deferred: the others must still come after it */
	cli_sends(c, "GET /defer HTTP/1.1\r\nHost: t\r\n\r\n"
		     "GET /echo?n=2 HTTP/1.1\r\nHost: t\r\n\r\n"
		     "GET /echo?n=3 HTTP/1.1\r\nHost: t\r\n\r\n");
	CHECK_STR(cli_next(c), TEXT("", "deferred"));
	CHECK_STR(cli_next(c), TEXT(XH, "GET /echo q=n=2 body=0"));
	CHECK_STR(cli_next(c), TEXT(XH, "GET /echo q=n=3 body=0"));

	/* many, in writes that split requests anywhere: the read buffer fills, is compacted and
	 * refilled while requests are taken off its front */
	static char many[16000];
	size_t mlen = 0;
	for (int i = 0; i < 300; i++)
		mlen += (size_t)snprintf(many + mlen, sizeof(many) - mlen,
					 "GET /echo?%03d HTTP/1.1\r\nHost: t\r\n\r\n", i);
	for (size_t off = 0; off < mlen; off += 2999) {
		cli_send(c, many + off, mlen - off < 2999 ? mlen - off : 2999);
		pump(2);
	}
	int in_order = 0;
	for (int i = 0; i < 300; i++) {
		char body[32];
		snprintf(body, sizeof(body), "GET /echo q=%03d body=0", i);
		if (strcmp(cli_next(c), TEXT(XH, body)) == 0)
			in_order++;
	}
	CHECK_INT(in_order, 300);

	/* the second closes: the third is never answered */
	cli_sends(c, "GET /echo?n=4 HTTP/1.1\r\nHost: t\r\n\r\n"
		     "GET /echo?n=5 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
		     "GET /echo?n=6 HTTP/1.1\r\nHost: t\r\n\r\n");
	CHECK_STR(cli_next(c), TEXT(XH, "GET /echo q=n=4 body=0"));
	CHECK_STR(cli_next(c), TEXT(CLOSE XH, "GET /echo q=n=5 body=0"));
	CHECK(cli_sees_eof(c, 1000));
	cli_close(c);
}

static void test_post_body(void)
{
	struct cli *c = cli_open(port_a);
	char body[3000], head[128], want_buf[4000];

	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (char)(i * 7 + 3); /* NULs, CR and LF included */
	int hn =
	    snprintf(head, sizeof(head),
		     "POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n", sizeof(body));
	cli_send(c, head, (size_t)hn);
	cli_send(c, body, sizeof(body));
	int n = cli_next_full(c, HTTP_M_GET, resp, sizeof(resp), 2000, NULL);
	int wn = snprintf(want_buf, sizeof(want_buf),
			  "HTTP/1.1 200 OK\r\nServer: abgate-test\r\nContent-Type: "
			  "application/octet-stream\r\nContent-Length: 3000\r\n\r\n");
	memcpy(want_buf + wn, body, sizeof(body));
	CHECK_INT(n, wn + (int)sizeof(body));
	CHECK(n == wn + (int)sizeof(body) && memcmp(resp, want_buf, (size_t)n) == 0);
	cli_close(c);
}

static void test_drip(void)
{
	struct cli *c = cli_open(port_a);
	const char *req = "POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello";
	int before = handled, early = 0;

	for (const char *p = req; *p; p++) {
		cli_send(c, p, 1);
		pump(1);
		if (p[1] != '\0' && handled != before)
			early++; /* dispatched before the last byte */
	}
	CHECK_INT(early, 0);
	CHECK_STR(cli_next(c), OCTETS("hello"));
	CHECK_INT(handled - before, 1);
	cli_close(c);
}

static void test_deferred(void)
{
	struct cli *c = cli_open(port_a);
	int done = deferred_done;
	double t0 = now_ms();

	cli_sends(c, "GET /defer HTTP/1.1\r\nHost: t\r\n\r\n");
	CHECK_STR(cli_next(c), TEXT("", "deferred"));
	CHECK(now_ms() - t0 >= 25);
	CHECK_INT(deferred_done - done, 1);
	/* the connection goes on after a deferred answer */
	cli_sends(c, "GET /param?a=1&name=J%C3%BCrgen+x%21&b HTTP/1.1\r\nHost: t\r\n\r\n");
	CHECK_STR(cli_next(c), TEXT("", "J\xc3\xbcrgen x!"));
	cli_close(c);
}

static void test_query_params(void)
{
	struct cli *c = cli_open(port_a);

	cli_sends(c, "GET /param?nam=1&name HTTP/1.1\r\nHost: t\r\n\r\n");
	CHECK_STR(cli_next(c), TEXT("", ""));
	cli_sends(c, "GET /param?n%61me=%zz%4 HTTP/1.1\r\nHost: t\r\n\r\n");
	CHECK_STR(cli_next(c), TEXT("", "%zz%4"));
	/* 15 bytes fit a 16-byte buffer; 16 do not */
	cli_sends(c, "GET /param?name=123456789012345 HTTP/1.1\r\nHost: t\r\n\r\n");
	CHECK_STR(cli_next(c), TEXT("", "123456789012345"));
	cli_sends(c, "GET /param?name=1234567890123456 HTTP/1.1\r\nHost: t\r\n\r\n");
	CHECK_STR(cli_next(c), TEXT("", "absent"));
	cli_sends(c, "GET /param HTTP/1.1\r\nHost: t\r\n\r\n");
	CHECK_STR(cli_next(c), TEXT("", "absent"));
	cli_sends(c, "GET /param?names=1&x=2&name=%41&name=B HTTP/1.1\r\nHost: t\r\n\r\n");
	CHECK_STR(cli_next(c), TEXT("", "A"));
	cli_close(c);
}

static void test_head(void)
{
	struct cli *c = cli_open(port_a);

	cli_sends(c, "HEAD /echo HTTP/1.1\r\nHost: t\r\n\r\n");
	CHECK(cli_next_full(c, HTTP_M_HEAD, resp, sizeof(resp), 2000, NULL) > 0);
	CHECK_STR(resp, "HTTP/1.1 200 OK\r\nServer: abgate-test\r\nContent-Type: text/plain\r\n"
			"Content-Length: 20\r\nX-Handler: yes\r\n\r\n");
	/* no body was sent: the next response starts right after */
	cli_sends(c, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
	CHECK_STR(cli_next(c), TEXT(XH, "GET /echo q= body=0"));
	cli_close(c);
}

static void test_http10(void)
{
	struct cli *c = cli_open(port_a);

	cli_sends(c, "GET /echo HTTP/1.0\r\n\r\n");
	CHECK_STR(cli_next(c), TEXT(CLOSE XH, "GET /echo q= body=0"));
	CHECK(cli_sees_eof(c, 1000));
	cli_close(c);

	c = cli_open(port_a);
	cli_sends(c, "GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	CHECK_STR(cli_next(c), TEXT("Connection: keep-alive\r\n" XH, "GET /echo q= body=0"));
	cli_sends(c, "GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	CHECK_STR(cli_next(c), TEXT("Connection: keep-alive\r\n" XH, "GET /echo q= body=0"));
	CHECK(!cli_sees_eof(c, 30));
	cli_close(c);

	/* HTTP/1.1 with Connection: close */
	c = cli_open(port_a);
	cli_sends(c, "GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
	CHECK_STR(cli_next(c), TEXT(CLOSE XH, "GET /echo q= body=0"));
	CHECK(cli_sees_eof(c, 1000));
	cli_close(c);
}

static void test_expect_continue(void)
{
	struct cli *c = cli_open(port_a);

	cli_sends(c, "POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
		     "Expect: 100-continue\r\n\r\n");
	CHECK_STR(cli_next(c), "HTTP/1.1 100 Continue\r\n\r\n");
	cli_sends(c, "ping");
	CHECK_STR(cli_next(c), OCTETS("ping"));
	/* body already there: no 100 */
	cli_sends(c, "POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
		     "Expect: 100-continue\r\n\r\npong");
	CHECK_STR(cli_next(c), OCTETS("pong"));
	/* too large: 413 instead of 100 */
	cli_sends(c, "POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 70000\r\n"
		     "Expect: 100-continue\r\n\r\n");
	CHECK_STR(cli_next(c),
		  want(SRV, "413 Payload Too Large", "text/plain", CLOSE, "Payload Too Large\n"));
	CHECK(cli_sees_eof(c, 1000));
	cli_close(c);
}

static void test_chunked_411(void)
{
	struct cli *c = cli_open(port_a);
	int before = handled;

	cli_sends(c, "POST /body HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
		     "5\r\nhello\r\n0\r\n\r\n");
	CHECK_STR(
	    cli_next(c),
	    "HTTP/1.1 411 Length Required\r\nServer: abgate-test\r\nContent-Type: text/plain\r\n"
	    "Content-Length: 16\r\nConnection: close\r\n\r\nLength Required\n");
	CHECK(cli_sees_eof(c, 1000));
	CHECK_INT(handled, before);
	cli_close(c);
}

static void test_oversize_413(void)
{
	struct cli *c = cli_open(port_a);
	static char body[70000];
	int before = handled;

	memset(body, 'b', sizeof(body));
	cli_sends(c, "POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 70000\r\n\r\n");
	cli_send(c, body, sizeof(body)); /* the server drains it while closing */
	CHECK_STR(cli_next(c), "HTTP/1.1 413 Payload Too Large\r\nServer: abgate-test\r\n"
			       "Content-Type: text/plain\r\nContent-Length: 18\r\n"
			       "Connection: close\r\n\r\nPayload Too Large\n");
	CHECK(cli_sees_eof(c, 1000));
	CHECK_INT(handled, before);
	cli_close(c);

	/* exactly max_body is fine */
	c = cli_open(port_a);
	cli_sends(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 65536\r\n\r\n");
	pump(5); /* the head alone first */
	cli_send(c, body, 65536);
	CHECK_STR(cli_next(c), TEXT(XH, "POST /echo q= body=65536"));
	cli_close(c);
}

/* The status and body the server sends for a request the parser rejects. */
static void parser_verdict(const char *req, int *status, char *body, size_t cap)
{
	struct http_header hdr[64];
	struct http_msg m = {.hdr = hdr, .max_hdr = 64};
	struct http_limits lim = {
	    .max_header_bytes = 2048, .max_request_line = 8192, .max_headers = 64};

	http_msg_reset(&m);
	enum http_parse r = http_parse_request(&m, req, strlen(req), &lim);
	*status = r == HTTP_ERROR || r == HTTP_TOO_LARGE ? m.error_status : 0;
	snprintf(body, cap, "%s: %s\n", httpd_reason(*status), m.error ? m.error : "?");
}

static void check_rejected(const char *req, int want_status)
{
	struct cli *c = cli_open(port_a);
	char body[256], status_line[64];
	int status;
	int before = handled;

	parser_verdict(req, &status, body, sizeof(body));
	CHECK_INT(status, want_status);
	snprintf(status_line, sizeof(status_line), "%d %s", status, httpd_reason(status));
	cli_sends(c, req);
	CHECK_STR(cli_next(c), want(SRV, status_line, "text/plain", CLOSE, body));
	CHECK(cli_sees_eof(c, 1000));
	CHECK_INT(handled, before);
	cli_close(c);
}

static void test_malformed(void)
{
	static char big[3000];

	check_rejected("GET / HTTP/1.1\nHost: t\n\n", 400);
	check_rejected("GET  / HTTP/1.1\r\nHost: t\r\n\r\n", 400);
	check_rejected("GET / HTTP/1.1\r\n\r\n", 400);
	check_rejected("GET / HTTP/1.1\r\nHost: t\r\n folded\r\n\r\n", 400);
	check_rejected("GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505);
	check_rejected(
	    "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400);
	check_rejected("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
		       "Transfer-Encoding: chunked\r\n\r\n",
		       400);
	/* header section over max_header_bytes (2048) */
	snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: t\r\nX-Big: %02500d\r\n\r\n", 7);
	check_rejected(big, 431);

	/* a bad request behind a good one on the same connection */
	struct cli *c = cli_open(port_a);
	cli_sends(c, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\nGET /\x01 HTTP/1.1\r\n\r\n");
	CHECK_STR(cli_next(c), TEXT(XH, "GET /echo q= body=0"));
	CHECK(strncmp(cli_next(c), "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
	CHECK(cli_sees_eof(c, 1000));
	cli_close(c);
}

static void test_disconnect_before_deferred(void)
{
	int done = deferred_done;

	/* plain close while the handler holds the request */
	struct cli *c = cli_open(port_a);
	cli_sends(c, "GET /defer HTTP/1.1\r\nHost: t\r\n\r\n");
	pump(5);
	cli_close(c);

	/* reset, with another request pipelined behind */
	c = cli_open(port_a);
	cli_sends(c, "GET /defer HTTP/1.1\r\nHost: t\r\n\r\nGET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
	pump(5);
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	cli_close(c);

	/* gone before the server even read the request */
	c = cli_open(port_a);
	cli_sends(c, "GET /defer HTTP/1.1\r\nHost: t\r\n\r\n");
	cli_close(c);

	/* reset after a large answer while a deferred one is held: the server closes the
	 * socket at once and frees the connection when the answer comes */
	c = calloc(1, sizeof(*c));
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port_a)};
	int small = 4096;
	pump(5); /* the previous one reaches the handler */
	int before = handled;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	connect(c->fd, (struct sockaddr *)&sin, sizeof(sin));
	fcntl(c->fd, F_SETFL, O_NONBLOCK);
	cli_sends(c, "GET /sized?n=250000 HTTP/1.1\r\nHost: t\r\n\r\n"
		     "GET /defer HTTP/1.1\r\nHost: t\r\n\r\n");
	pump(10);
	CHECK_INT(handled - before, 2);
	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	cli_close(c);

	pump(150);
	CHECK_INT(deferred_done - done, 4);
	CHECK(deferred_list == NULL);

	/* the server still serves */
	c = cli_open(port_a);
	cli_sends(c, "GET /defer HTTP/1.1\r\nHost: t\r\n\r\n");
	CHECK_STR(cli_next(c), TEXT("", "deferred"));
	cli_close(c);
}

/* A client that pipelines many requests and reads nothing: the server stops at its output
 * bound, and carries on, in order, once the client reads. */
static void test_slow_reader(void)
{
	struct cli *c = cli_open(port_a);
	char req[64];
	int before = handled, ok = 0;

	for (int i = 0; i < 200; i++) {
		int n = snprintf(req, sizeof(req), "GET /big?%03d HTTP/1.1\r\nHost: t\r\n\r\n", i);
		cli_send(c, req, (size_t)n);
	}
	pump(100);
	CHECK(handled - before < 200);
	for (int i = 0; i < 200; i++) {
		int n = cli_next_full(c, HTTP_M_GET, resp, sizeof(resp), 2000, NULL);
		char w[16];
		snprintf(w, sizeof(w), "\r\n\r\n%03d", i);
		const char *b = strstr(resp, "\r\n\r\n");
		if (n > 100000 && b != NULL && memcmp(b, w, 7) == 0)
			ok++;
	}
	CHECK_INT(ok, 200);
	CHECK_INT(handled - before, 200);
	cli_close(c);
}

static void test_idle_timeout(void)
{
	struct httpd_opts o = {.idle_timeout_ms = 100};
	int port;
	struct httpd *h = server_start(&o, &port);
	double t0 = now_ms();

	CHECK(h != NULL);
	/* a slow head: answered 408 (the head timeout defaults to the shorter idle timeout),
	 * then closed */
	struct cli *c = cli_open(port);
	cli_sends(c, "GET / HTTP/1.1\r\nHo");
	CHECK(cli_sees_answer_then_eof(c, "HTTP/1.1 408 ", 1000));
	CHECK(now_ms() - t0 >= 90);
	cli_close(c);

	/* an idle keep-alive connection, after a request */
	c = cli_open(port);
	cli_sends(c, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
	CHECK_STR(cli_next(c), want(NULL, "200 OK", "text/plain", XH, "GET /echo q= body=0"));
	t0 = now_ms();
	CHECK(cli_sees_eof(c, 1000));
	CHECK(now_ms() - t0 >= 90);
	cli_close(c);

	/* the handler's time is not limited: a deferred answer longer than the timeout arrives */
	struct httpd_opts o2 = {.idle_timeout_ms = 10};
	struct httpd *h2 = server_start(&o2, &port);
	c = cli_open(port);
	cli_sends(c, "GET /defer HTTP/1.1\r\nHost: t\r\n\r\n");
	CHECK_STR(cli_next(c), want(NULL, "200 OK", "text/plain", "", "deferred"));
	cli_close(c);
	httpd_free(h2);
	httpd_free(h);
}

/* httpd_free() with a request still held by the handler: dropped, nothing leaks. */
static void test_free_with_pending(void)
{
	int port;
	struct httpd *h = server_start(NULL, &port);
	struct cli *c = cli_open(port);
	int before = handled;

	cli_sends(c, "GET /defer HTTP/1.1\r\nHost: t\r\n\r\n");
	pump(10);
	CHECK_INT(handled - before, 1);
	httpd_free(h);
	/* the handler's side forgets the request without answering it */
	while (deferred_list != NULL)
		deferred_unlink(deferred_list);
	CHECK(cli_sees_eof(c, 1000));
	cli_close(c);
	httpd_free(NULL);
}

static int count_open_below(int limit)
{
	int n = 0;

	for (int fd = 0; fd < limit; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

/* Out of descriptors: the server pauses accepting and takes the connection later. */
static void test_emfile(void)
{
	struct rlimit old, lim;
	int port;
	struct httpd *h = server_start(NULL, &port);

	getrlimit(RLIMIT_NOFILE, &old);
	/* room for exactly three more descriptors: c1, its accepted socket, c2 */
	lim = old;
	for (lim.rlim_cur = 1; lim.rlim_cur < old.rlim_cur && lim.rlim_cur < 4096; lim.rlim_cur++)
		if ((int)lim.rlim_cur - count_open_below((int)lim.rlim_cur) == 3)
			break;
	if (setrlimit(RLIMIT_NOFILE, &lim) < 0) {
		CHECK(0);
		httpd_free(h);
		return;
	}
	struct cli *c1 = cli_open(port);
	cli_sends(c1, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
	CHECK_STR(cli_next(c1), want(NULL, "200 OK", "text/plain", XH, "GET /echo q= body=0"));
	struct cli *c2 = cli_open(port);
	cli_sends(c2, "GET /echo?2 HTTP/1.1\r\nHost: t\r\n\r\n");
	pump(30);
	cli_fill(c2);
	CHECK_INT(c2->len, 0); /* not accepted: no descriptor */
	cli_close(c1);
	CHECK_STR(cli_next(c2), want(NULL, "200 OK", "text/plain", XH, "GET /echo q=2 body=0"));
	cli_close(c2);
	setrlimit(RLIMIT_NOFILE, &old);
	httpd_free(h);
}

static void test_reason(void)
{
	CHECK_STR(httpd_reason(200), "OK");
	CHECK_STR(httpd_reason(404), "Not Found");
	CHECK_STR(httpd_reason(431), "Request Header Fields Too Large");
	CHECK_STR(httpd_reason(503), "Service Unavailable");
}

int main(void)
{
	struct httpd_opts opts = {
	    .max_body = 65536, .max_header_bytes = 2048, .server_name = "abgate-test"};

	log_set_level(LOG_ERROR);
	base = event_base_new();
	struct httpd *a = server_start(&opts, &port_a);
	CHECK(a != NULL);
	if (a == NULL)
		return check_summary("test_httpd");

	test_reason();
	test_simple_get();
	test_keep_alive();
	test_pipelined();
	test_post_body();
	test_drip();
	test_deferred();
	test_query_params();
	test_head();
	test_http10();
	test_expect_continue();
	test_chunked_411();
	test_oversize_413();
	test_malformed();
	test_disconnect_before_deferred();
	test_slow_reader();
	test_idle_timeout();
	test_free_with_pending();
	test_emfile();

	httpd_free(a);
	event_base_free(base);
	return check_summary("test_httpd");
}
