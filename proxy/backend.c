/*
 * backend.c - `abgate backend`: the model server that tests, the demo and benchmarks put
 * behind the proxy.
 *
 * Every request other than /healthz gets a JSON answer naming the model, a score in [0,1)
 * that depends only on the request body, and the request's size, path and the headers the
 * proxy sets (X-User-Id, X-Abgate-Variant, X-Request-Id), so that a test can see which backend
 * served which user. Latency is injected with a timer (the loop never sleeps) and errors with
 * a seeded generator, so that runs are reproducible.
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "backend.h"
#include "httpd.h"
#include "log.h"
#include "net.h"

#define BACKEND_MAX_BODY (10 * 1024 * 1024)
#define BACKEND_MAX_LATENCY_MS 3600000

struct backend_opts {
	const char *host;     /* (ref) argv; numeric address */
	long port;	      /* 0..65535; 0 picks a free port (logged) */
	const char *model;    /* (ref) argv */
	uint32_t latency_ms;  /* added before every model answer */
	double error_rate;    /* fraction of model answers that are 500 */
	uint64_t seed;	      /* of the error generator */
	long long fail_after; /* model answers after this many are 500; -1: never */
};

struct backend;

/* A model answer waiting for its latency to pass. */
struct delayed {
	struct backend *b;     /* (ref) */
	struct httpd_req *req; /* (ref) until answered; owned by the server */
	struct event *timer;
	int status;
	char *body; /* owned */
	size_t len;
	struct delayed *prev, *next;
};

struct backend {
	struct backend_opts o;
	struct event_base *base;
	struct httpd *httpd;
	uint64_t rng;		   /* splitmix64 state */
	unsigned long long served; /* model requests so far */
	struct delayed *delayed;   /* answers in flight */
	char model_hdr[300];	   /* "X-Backend-Model: NAME" */
};

/* ---- a small growable string for the JSON answer ---- */

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_put(struct sbuf *s, const char *data, size_t n)
{
	if (s->oom)
		return;
	if (s->cap - s->len < n + 1) {
		size_t cap = s->cap ? s->cap : 256;
		while (cap - s->len < n + 1)
			cap *= 2;
		char *p = realloc(s->p, cap);
		if (p == NULL) {
			s->oom = true;
			return;
		}
		s->p = p;
		s->cap = cap;
	}
	memcpy(s->p + s->len, data, n);
	s->len += n;
	s->p[s->len] = '\0';
}

static void sb_puts(struct sbuf *s, const char *str)
{
	sb_put(s, str, strlen(str));
}

/* Length of the well-formed UTF-8 sequence at s[0..n) (n > 0), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates, beyond U+10FFFF */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* Appends s[0..n) as a JSON string (NULL: null). Bytes that are not UTF-8 become U+FFFD. */
static void sb_json_str(struct sbuf *sb, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	if (s == NULL) {
		sb_puts(sb, "null");
		return;
	}
	sb_put(sb, "\"", 1);
	while (i < n) {
		size_t run = i;
		/* copy plain runs in one piece */
		while (run < n && u[run] >= 0x20 && u[run] < 0x80 && u[run] != '"' &&
		       u[run] != '\\')
			run++;
		sb_put(sb, s + i, run - i);
		i = run;
		if (i >= n)
			break;
		if (u[i] == '"' || u[i] == '\\') {
			char esc[2] = {'\\', (char)u[i]};
			sb_put(sb, esc, 2);
			i++;
		} else if (u[i] < 0x20) {
			char esc[8];
			snprintf(esc, sizeof(esc), "\\u%04x", u[i]);
			sb_put(sb, esc, 6);
			i++;
		} else {
			size_t len = utf8_len(u + i, n - i);
			if (len == 0) {
				sb_puts(sb, "\\ufffd");
				i++;
			} else {
				sb_put(sb, s + i, len);
				i += len;
			}
		}
	}
	sb_put(sb, "\"", 1);
}

/* ---- the model ---- */

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* The score of a body: FNV-1a 64 of its bytes, finalized by splitmix64's mixer, modulo 10^6,
 * read as millionths. Returns 0..999999. */
static uint32_t body_score(const char *body, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)body[i];
		h *= 0x100000001b3ULL;
	}
	return (uint32_t)(mix64(h) % 1000000);
}

/* Uniform in [0,1) from the seeded splitmix64 sequence. */
static double backend_rand(struct backend *b)
{
	b->rng += 0x9e3779b97f4a7c15ULL;
	return (double)(mix64(b->rng) >> 11) * 0x1.0p-53;
}

static void delayed_free(struct delayed *d)
{
	if (d == NULL)
		return;
	if (d->prev != NULL)
		d->prev->next = d->next;
	else
		d->b->delayed = d->next;
	if (d->next != NULL)
		d->next->prev = d->prev;
	if (d->timer != NULL)
		event_free(d->timer);
	free(d->body);
	free(d);
}

static void delayed_cb(evutil_socket_t fd, short what, void *arg)
{
	struct delayed *d = arg;

	(void)fd;
	(void)what;
	httpd_respond(d->req, d->status, "application/json", d->body, d->len);
	delayed_free(d);
}

/* Sends the answer now or after the configured latency. Takes ownership of body. */
static void backend_answer(struct backend *b, struct httpd_req *req, int status, char *body,
			   size_t len)
{
	if (b->o.latency_ms > 0) {
		struct delayed *d = calloc(1, sizeof(*d));
		struct timeval tv = {.tv_sec = b->o.latency_ms / 1000,
				     .tv_usec = (suseconds_t)(b->o.latency_ms % 1000) * 1000};
		if (d != NULL) {
			d->b = b;
			d->req = req;
			d->status = status;
			d->body = body;
			d->len = len;
			d->next = b->delayed;
			if (b->delayed != NULL)
				b->delayed->prev = d;
			b->delayed = d;
			d->timer = evtimer_new(b->base, delayed_cb, d);
			if (d->timer != NULL && evtimer_add(d->timer, &tv) == 0)
				return;
			d->body = NULL; /* answered below instead */
			delayed_free(d);
		}
		log_warnx("backend: cannot delay an answer; answering now");
	}
	httpd_respond(req, status, "application/json", body, len);
	free(body);
}

static void header_json(struct sbuf *sb, struct httpd_req *req, const char *key, const char *name)
{
	size_t len;
	const char *v = httpd_req_header(req, name, &len);

	sb_puts(sb, key);
	sb_json_str(sb, v, len);
}

static void backend_handle(struct httpd_req *req, void *arg)
{
	struct backend *b = arg;
	size_t plen, blen;
	const char *path = httpd_req_path(req, &plen);

	httpd_add_header(req, b->model_hdr);
	if (plen == 8 && memcmp(path, "/healthz", 8) == 0) {
		httpd_respond(req, 200, "text/plain", "ok", 2);
		return;
	}

	b->served++;
	bool fail = (b->o.fail_after >= 0 && b->served > (unsigned long long)b->o.fail_after) ||
		    (b->o.error_rate > 0 && backend_rand(b) < b->o.error_rate);
	if (fail) {
		static const char err[] = "{\"error\":\"injected\"}";
		char *body = strdup(err);
		if (body == NULL) {
			httpd_respond(req, 500, "application/json", err, sizeof(err) - 1);
			return;
		}
		backend_answer(b, req, 500, body, sizeof(err) - 1);
		return;
	}

	const char *body = httpd_req_body(req, &blen);
	struct sbuf sb = {0};
	char num[64];
	sb_puts(&sb, "{\"model\":");
	sb_json_str(&sb, b->o.model, strlen(b->o.model));
	snprintf(num, sizeof(num), ",\"score\":0.%06u,\"request_bytes\":%zu,\"path\":",
		 (unsigned)body_score(body, blen), blen);
	sb_puts(&sb, num);
	sb_json_str(&sb, path, plen);
	header_json(&sb, req, ",\"unit\":", "X-User-Id");
	header_json(&sb, req, ",\"variant\":", "X-Abgate-Variant");
	header_json(&sb, req, ",\"request_id\":", "X-Request-Id");
	sb_puts(&sb, "}");
	if (sb.oom) {
		free(sb.p);
		httpd_respond(req, 500, "application/json", "{\"error\":\"out of memory\"}", 25);
		return;
	}
	backend_answer(b, req, 200, sb.p, sb.len);
}

static void backend_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct backend *b = arg;

	(void)what;
	log_info("backend %s: signal %d, exiting", b->o.model, (int)sig);
	event_base_loopbreak(b->base);
}

/* ---- command line ---- */

static void backend_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: abgate backend --port N --model NAME [--host ADDR] [--latency-ms M]\n"
	    "                      [--error-rate R] [--seed S] [--fail-after N]\n"
	    "\n"
	    "A model server for tests, the demo and benchmarks. Every path but /healthz answers\n"
	    "  {\"model\":NAME,\"score\":S,\"request_bytes\":N,\"path\":P,\"unit\":X-User-Id,\n"
	    "   \"variant\":X-Abgate-Variant,\"request_id\":X-Request-Id}\n"
	    "(absent headers are null) with the header X-Backend-Model: NAME. S in [0,1) depends\n"
	    "only on the request body. GET /healthz answers \"ok\".\n"
	    "\n"
	    "  --port N        listen on this TCP port (0: any free port, logged)\n"
	    "  --host ADDR     numeric address to listen on (default 127.0.0.1)\n"
	    "  --model NAME    model name to report\n"
	    "  --latency-ms M  delay every answer by M milliseconds (default 0)\n"
	    "  --error-rate R  answer 500 {\"error\":\"injected\"} to a fraction R in [0,1]\n"
	    "  --seed S        seed of the error generator (default 1)\n"
	    "  --fail-after N  answer 500 to every request after the first N\n"
	    "Exits 0 on SIGTERM or SIGINT.\n");
}

/* Says what is wrong with the command line in one line; returns the exit code 1. */
static int bad_arg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int bad_arg(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "abgate backend: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static bool parse_ll(const char *s, long long lo, long long hi, long long *out)
{
	char *end;

	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

/* Parses argv into o. Returns 0 to run, -1 after printing --help, 1 on a bad argument (said). */
static int backend_parse_args(struct backend_opts *o, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		const char *val = NULL;
		char name[32];
		long long n;

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			backend_usage(stdout);
			return -1;
		}
		if (strncmp(arg, "--", 2) != 0)
			return bad_arg("unexpected argument '%s' (see --help)", arg);
		const char *eq = strchr(arg, '=');
		size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
		if (nlen >= sizeof(name))
			return bad_arg("unknown option '%s' (see --help)", arg);
		memcpy(name, arg, nlen);
		name[nlen] = '\0';
		if (strcmp(name, "--port") != 0 && strcmp(name, "--model") != 0 &&
		    strcmp(name, "--host") != 0 && strcmp(name, "--latency-ms") != 0 &&
		    strcmp(name, "--error-rate") != 0 && strcmp(name, "--seed") != 0 &&
		    strcmp(name, "--fail-after") != 0)
			return bad_arg("unknown option '%s' (see --help)", arg);
		if (eq != NULL)
			val = eq + 1;
		else if (i + 1 < argc)
			val = argv[++i];
		else
			return bad_arg("%s needs a value", name);

		if (strcmp(name, "--port") == 0) {
			if (!parse_ll(val, 0, 65535, &n))
				return bad_arg("--port wants 0..65535, not '%s'", val);
			o->port = (long)n;
		} else if (strcmp(name, "--model") == 0) {
			if (*val == '\0' || strlen(val) > 256)
				return bad_arg("--model wants a name of 1 to 256 characters");
			for (const char *p = val; *p; p++)
				if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
					return bad_arg(
					    "--model '%s' must be printable ASCII without "
					    "spaces",
					    val);
			o->model = val;
		} else if (strcmp(name, "--host") == 0) {
			o->host = val;
		} else if (strcmp(name, "--latency-ms") == 0) {
			if (!parse_ll(val, 0, BACKEND_MAX_LATENCY_MS, &n))
				return bad_arg("--latency-ms wants 0..3600000, not '%s'", val);
			o->latency_ms = (uint32_t)n;
		} else if (strcmp(name, "--error-rate") == 0) {
			char *end;
			errno = 0;
			double r = strtod(val, &end);
			if (*val == '\0' || *end != '\0' || errno != 0 || !(r >= 0 && r <= 1))
				return bad_arg("--error-rate wants a number in [0,1], not '%s'",
					       val);
			o->error_rate = r;
		} else if (strcmp(name, "--seed") == 0) {
			char *end;
			errno = 0;
			unsigned long long s = strtoull(val, &end, 10);
			if (*val == '\0' || *val == '-' || *end != '\0' || errno != 0)
				return bad_arg("--seed wants a non-negative integer, not '%s'",
					       val);
			o->seed = s;
		} else {
			if (!parse_ll(val, 0, INT64_MAX, &n))
				return bad_arg(
				    "--fail-after wants a non-negative integer, not '%s'", val);
			o->fail_after = n;
		}
	}
	if (o->port < 0)
		return bad_arg("%s is required (see --help)", "--port");
	if (o->model == NULL)
		return bad_arg("%s is required (see --help)", "--model");
	return 0;
}

int backend_main(int argc, char **argv)
{
	struct backend b = {.o = {.host = "127.0.0.1", .port = -1, .seed = 1, .fail_after = -1}};
	struct sockaddr_storage ss;
	socklen_t sslen;
	char addr[300];
	struct event *sigterm = NULL, *sigint = NULL;
	int rc = 2;

	int r = backend_parse_args(&b.o, argc, argv);
	if (r != 0)
		return r < 0 ? 0 : 1;
	const char *host = strcmp(b.o.host, "localhost") == 0 ? "127.0.0.1" : b.o.host;
	if (strchr(host, ':') != NULL && host[0] != '[')
		snprintf(addr, sizeof(addr), "[%s]:%ld", host, b.o.port);
	else
		snprintf(addr, sizeof(addr), "%s:%ld", host, b.o.port);
	if (strlen(host) > 200 || net_parse_addr(addr, &ss, &sslen) < 0)
		return bad_arg("--host wants a numeric IPv4 or IPv6 address, not '%s'", b.o.host);
	snprintf(b.model_hdr, sizeof(b.model_hdr), "X-Backend-Model: %s", b.o.model);
	b.rng = b.o.seed;

	/* Peers that vanish must not kill the process; writes use MSG_NOSIGNAL anyway. */
	signal(SIGPIPE, SIG_IGN);
	int fd = net_listen((struct sockaddr *)&ss, sslen, false, 1024);
	if (fd < 0) {
		fprintf(stderr, "abgate backend: listen on %s: %s\n", addr, strerror(errno));
		return 2;
	}
	/* With --port 0 the log line is how a caller learns the port. */
	struct sockaddr_storage bound;
	socklen_t blen = sizeof(bound);
	char shown[80] = "?";
	int port = (int)b.o.port;
	if (getsockname(fd, (struct sockaddr *)&bound, &blen) == 0) {
		net_addr_str((struct sockaddr *)&bound, shown, sizeof(shown));
		if (bound.ss_family == AF_INET)
			port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
		else if (bound.ss_family == AF_INET6)
			port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
	}

	/* the precise clock: the coarse one would answer --latency-ms a few ms early */
	struct event_config *cfg = event_config_new();
	if (cfg != NULL) {
		event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
		b.base = event_base_new_with_config(cfg);
		event_config_free(cfg);
	}
	if (b.base == NULL) {
		close(fd);
		fprintf(stderr, "abgate backend: cannot create the event loop\n");
		return 2;
	}
	struct httpd_opts hopts = {.max_body = BACKEND_MAX_BODY,
				   .max_body_total = SIZE_MAX,
				   .max_conns = 65536,
				   .server_name = NULL};
	b.httpd = httpd_new(b.base, fd, &hopts, backend_handle, &b); /* owns fd now */
	sigterm = evsignal_new(b.base, SIGTERM, backend_signal_cb, &b);
	sigint = evsignal_new(b.base, SIGINT, backend_signal_cb, &b);
	if (b.httpd == NULL || sigterm == NULL || sigint == NULL ||
	    evsignal_add(sigterm, NULL) < 0 || evsignal_add(sigint, NULL) < 0) {
		fprintf(stderr, "abgate backend: cannot set up the server\n");
		goto out;
	}
	if (bound.ss_family == AF_INET6)
		log_info("backend %s listening on [%s]:%d", b.o.model, shown, port);
	else
		log_info("backend %s listening on %s:%d", b.o.model, shown, port);
	if (event_base_dispatch(b.base) < 0) {
		fprintf(stderr, "abgate backend: event loop failed\n");
		goto out;
	}
	rc = 0;
out:
	/* Answers still delayed are dropped with their connections. */
	httpd_free(b.httpd);
	while (b.delayed != NULL)
		delayed_free(b.delayed);
	if (sigterm != NULL)
		event_free(sigterm);
	if (sigint != NULL)
		event_free(sigint);
	event_base_free(b.base);
	return rc;
}
