/*
 * health.c - active health checks (see include/health.h).
 */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "health.h"
#include "log.h"
#include "net.h"
#include "upstream.h"

struct check {
	struct health *h;      /* (ref) */
	struct check *next;
	int server;
	bool tls;
	uint32_t interval_ms, timeout_ms, rise, fall;
	struct event *timer;   /* next check */
	struct event *io;      /* the check in progress, NULL between checks */
	int fd;
	bool sent;
	char req[512];
	size_t reqlen;
	char buf[256];
	size_t len;
};

struct health {
	struct event_base *base; /* (ref) */
	struct check *checks;
};

static void finish(struct check *k, bool ok)
{
	if (k->io != NULL) {
		event_free(k->io);
		k->io = NULL;
	}
	if (k->fd >= 0) {
		close(k->fd);
		k->fd = -1;
	}
	upstream_health_result(k->server, ok, k->rise, k->fall);
	struct timeval tv = {k->interval_ms / 1000, (k->interval_ms % 1000) * 1000};
	event_add(k->timer, &tv);
}

/* A status line "HTTP/1.x NNN": is NNN a 2xx or 3xx? -1 while incomplete. */
static int status_ok(const char *b, size_t len)
{
	if (len < 12)
		return -1;
	if (memcmp(b, "HTTP/1.", 7) != 0 || b[8] != ' ')
		return 0;
	return b[9] == '2' || b[9] == '3';
}

static void io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct check *k = arg;

	if (what & EV_TIMEOUT)
		return finish(k, false);
	if ((what & EV_WRITE) && !k->sent) {
		if (net_socket_error(k->fd) != 0)
			return finish(k, false);
		if (k->tls)
			return finish(k, true); /* TLS servers: the connect is the check */
		ssize_t n = write(k->fd, k->req, k->reqlen);
		if (n != (ssize_t)k->reqlen)
			return finish(k, false);
		k->sent = true;
		event_del(k->io);
		event_assign(k->io, k->h->base, k->fd, EV_READ | EV_PERSIST, io_cb, k);
		struct timeval tv = {k->timeout_ms / 1000, (k->timeout_ms % 1000) * 1000};
		event_add(k->io, &tv);
		return;
	}
	if (what & EV_READ) {
		ssize_t n = read(k->fd, k->buf + k->len, sizeof(k->buf) - k->len);
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0)
			return finish(k, false);
		k->len += (size_t)n;
		int ok = status_ok(k->buf, k->len);
		if (ok >= 0)
			finish(k, ok == 1);
	}
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct check *k = arg;
	struct sockaddr_storage ss;
	socklen_t sl;
	bool in_progress;

	upstream_server_addr(k->server, &ss, &sl);
	k->sent = false;
	k->len = 0;
	k->fd = net_connect((struct sockaddr *)&ss, sl, &in_progress);
	if (k->fd < 0)
		return finish(k, false);
	k->io = event_new(k->h->base, k->fd, EV_WRITE | EV_PERSIST, io_cb, k);
	struct timeval tv = {k->timeout_ms / 1000, (k->timeout_ms % 1000) * 1000};
	if (k->io == NULL || event_add(k->io, &tv) < 0)
		finish(k, false);
}

static void check_free(struct check *k)
{
	if (k->io != NULL)
		event_free(k->io);
	if (k->fd >= 0)
		close(k->fd);
	if (k->timer != NULL)
		event_free(k->timer);
	free(k);
}

struct health *health_new(struct event_base *base)
{
	struct health *h = calloc(1, sizeof(*h));

	if (h != NULL)
		h->base = base;
	return h;
}

static void clear(struct health *h)
{
	while (h->checks != NULL) {
		struct check *k = h->checks;
		h->checks = k->next;
		check_free(k);
	}
}

void health_apply(struct health *h, const struct conf *c)
{
	clear(h);
	for (size_t b = 0; b < c->nbackends; b++) {
		const struct conf_backend *be = &c->backends[b];
		if (be->health_path == NULL)
			continue;
		for (size_t i = 0; i < be->nservers; i++) {
			struct check *k = calloc(1, sizeof(*k));
			if (k == NULL) {
				log_warnx("health checks: out of memory");
				return;
			}
			k->h = h;
			k->fd = -1;
			k->server = be->servers[i].id;
			k->tls = be->servers[i].tls;
			k->interval_ms = be->health_interval_ms ? be->health_interval_ms : 2000;
			k->timeout_ms = be->health_timeout_ms ? be->health_timeout_ms : 1000;
			k->rise = be->health_rise;
			k->fall = be->health_fall;
			int n = snprintf(k->req, sizeof(k->req),
					 "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: abgate-health\r\n"
					 "Connection: close\r\n\r\n",
					 be->health_path, be->servers[i].addr.text);
			k->reqlen = n > 0 && (size_t)n < sizeof(k->req) ? (size_t)n : 0;
			k->timer = evtimer_new(h->base, timer_cb, k);
			k->next = h->checks;
			h->checks = k;
			struct timeval now = {0, 0};
			if (k->timer == NULL || k->reqlen == 0 || event_add(k->timer, &now) < 0)
				log_warnx("health check of %s cannot start", be->servers[i].addr.text);
		}
	}
}

void health_free(struct health *h)
{
	if (h == NULL)
		return;
	clear(h);
	free(h);
}
