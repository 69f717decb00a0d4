/*
 * httpd.h - a small HTTP/1.1 server on the data path's parser and event model, for the admin
 * listener and the `abgate backend` test/demo model server.
 *
 * Each accepted socket is registered once with libevent (EV_READ|EV_WRITE|EV_PERSIST|EV_ET);
 * requests are parsed with http.h. A request's head is shown to opts.head (when set) before any
 * body byte is read: it may refuse the request there (authentication, a per-endpoint body
 * limit), and then the body is never read or buffered. Bodies must carry Content-Length
 * (chunked -> 411), are read whole up to the request's limit (413 beyond) and handed to the
 * handler with the request. Memory is bounded: at most opts.max_conns connections (beyond it
 * the oldest connection that has not sent a whole head yet makes room, so a flood of slow or
 * idle connections cannot lock out a client that sends its request at once), a head within
 * opts.head_timeout_ms, and request bodies buffered at once at most opts.max_body_total bytes
 * in all (503 beyond). A connection closed with its peer still sending lingers (net.h). Pipelined
 * requests are answered in order: the next one is parsed only after the current one was
 * answered. The handler may answer at once or later (from a timer): the request stays valid
 * until httpd_respond() is called exactly once; if the client went away meanwhile the answer is
 * discarded then, and the connection freed.
 */
#ifndef ABGATE_HTTPD_H
#define ABGATE_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"

struct event_base;
struct httpd;
struct httpd_req;

typedef void (*httpd_handler_cb)(struct httpd_req *req, void *arg);

/*
 * Looks at a request whose head has arrived, before any body byte is read. Returns true to go
 * on: the body (at most *max_body bytes, which the callback may lower) is read and the request
 * handed to the handler. Returns false after answering the request itself with httpd_respond():
 * its body is then never read, and a connection whose request has a body closes (lingering).
 */
typedef bool (*httpd_head_cb)(struct httpd_req *req, void *arg, size_t *max_body);

struct httpd_opts {
	size_t max_body;           /* default 1 MiB */
	uint32_t max_header_bytes; /* default 16384 */
	uint32_t idle_timeout_ms;  /* default 60000: keep-alive and slow requests */
	uint32_t head_timeout_ms;  /* a request head must arrive whole this soon (408); default
				    * 10000, or idle_timeout_ms when that is shorter */
	size_t max_conns;          /* connections at once; default 256 */
	size_t max_body_total;     /* request body bytes buffered at once, all connections;
				    * default 4 * max_body */
	httpd_head_cb head;        /* NULL: every head goes on */
	const char *server_name;   /* Server header; NULL: none */
};

/*
 * Serves the listening socket fd (non-blocking, owned by the server from now on) on base,
 * calling cb(req, arg) for each request. opts may be NULL. Returns NULL on failure.
 */
struct httpd *httpd_new(struct event_base *base, int fd, const struct httpd_opts *opts,
			httpd_handler_cb cb, void *arg);
/* Closes the listener and every connection; requests still unanswered are dropped. NULL ok. */
void httpd_free(struct httpd *h);

/* Request accessors; the returned pointers are valid until httpd_respond(). Strings are not
 * NUL-terminated unless said: use the lengths. */
enum http_method httpd_req_method(const struct httpd_req *req);
const char *httpd_req_method_str(const struct httpd_req *req, size_t *len);
const char *httpd_req_path(const struct httpd_req *req, size_t *len);
const char *httpd_req_query(const struct httpd_req *req, size_t *len);
/* First header named name (case-insensitive), or NULL. */
const char *httpd_req_header(const struct httpd_req *req, const char *name, size_t *len);
const char *httpd_req_body(const struct httpd_req *req, size_t *len);
/* The peer's address, NUL-terminated ("127.0.0.1"). */
const char *httpd_req_peer(const struct httpd_req *req);
/* Copies the value of query parameter name (URL-decoded, NUL-terminated) into dst; returns its
 * length, or -1 when absent or longer than cap - 1. */
int httpd_req_query_param(const struct httpd_req *req, const char *name, char *dst, size_t cap);

/* One piece of a raw query, "name=value" or "name": spans into the query, not decoded. */
struct httpd_query_piece {
	const char *name, *name_end;   /* empty for an empty piece ("a&&b") */
	const char *value, *value_end; /* empty without "=" */
};

/* Takes the next piece of the raw query [*q, end) into *p and moves *q past it. Returns false
 * when nothing is left. Every reader of a query splits it here. */
bool httpd_query_next(const char **q, const char *end, struct httpd_query_piece *p);

/* Adds a response header line ("Name: value", no CRLF) for the coming httpd_respond(). */
void httpd_add_header(struct httpd_req *req, const char *line);

/*
 * Answers the request: status, Content-Type (NULL: none), body of len bytes (copied).
 * Frees req. Must be called exactly once per request (from the head callback, or the handler).
 */
void httpd_respond(struct httpd_req *req, int status, const char *content_type, const char *body,
		   size_t len);

/* Reason phrase of a status code ("OK", "Not Found"...). */
const char *httpd_reason(int status);

#endif
