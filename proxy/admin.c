/*
 * admin.c - the admin API handlers (see include/admin.h).
 */
#include <stdio.h>
#include <string.h>

#include <cJSON.h>

#include "admin.h"
#include "conf.h"
#include "httpd.h"
#include "server.h"

static bool path_is(const struct httpd_req *req, const char *want)
{
	size_t len;
	const char *p = httpd_req_path(req, &len);

	return len == strlen(want) && memcmp(p, want, len) == 0;
}

static void respond_json(struct httpd_req *req, int status, cJSON *doc)
{
	char *text = cJSON_PrintUnformatted(doc);

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

void admin_handle(struct httpd_req *req, void *arg)
{
	enum http_method m = httpd_req_method(req);
	bool get = m == HTTP_M_GET || m == HTTP_M_HEAD;

	if (path_is(req, "/healthz")) {
		if (!get)
			return respond_error(req, 405, "use GET");
		httpd_respond(req, 200, "text/plain", "ok\n", 3);
	} else if (path_is(req, "/readyz")) {
		if (!get)
			return respond_error(req, 405, "use GET");
		if (server_ready())
			httpd_respond(req, 200, "text/plain", "ready\n", 6);
		else
			httpd_respond(req, 503, "text/plain", "draining\n", 9);
	} else if (path_is(req, "/reload")) {
		if (m != HTTP_M_POST)
			return respond_error(req, 405, "use POST");
		handle_reload(req);
	} else {
		respond_error(req, 404, "no such admin endpoint");
	}
}
