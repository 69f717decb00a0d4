/*
 * test_conf.c - unit tests for proxy/conf.c: a full configuration compiled field by field, the
 * defaults of a minimal one, bucket ranges, one invalid document per error class with the exact
 * "FILE:LINE:COL: message" expected, reference counting, and the example files in conf/.
 *
 * Runs from the repository root (it loads every .yaml file in conf/). Run it under AddressSanitizer
 * too: the invalid documents are loaded many times to catch leaks on error paths.
 */
#include <arpa/inet.h>
#include <glob.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "conf.h"

static int load(const char *text, struct conf **out, char *err, size_t errlen)
{
	return conf_load_string("t.yaml", text, strlen(text), out, err, errlen);
}

static int port_of(const struct conf_addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
	if (a->ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
	return -1;
}

static const char full_yaml[] =
    "listen:\n"
    "  - addr: 127.0.0.1:18080\n"
    "  - addr: \"[::1]:18443\"\n"
    "    tls: {cert: conf/tls/server.crt, key: conf/tls/server.key}\n"
    "admin:\n"
    "  addr: 127.0.0.1:19901\n"
    "  token_file: conf/admin.token\n"
    "workers: 4\n"
    "io_uring: off\n"
    "drain_timeout_ms: 5000\n"
    "log:\n"
    "  error: var/error.log\n"
    "  level: debug\n"
    "  outcomes: var/outcomes.jsonl\n"
    "  access: var/access.log\n"
    "  fsync_ms: 0\n"
    "  max_pending_bytes: 1048576\n"
    "outcomes: {rid_window_s: 86400, max_rids: 5000000}\n"
    "limits:\n"
    "  max_header_bytes: 32768\n"
    "  max_headers: 50\n"
    "  max_request_line: 4096\n"
    "  max_body_bytes: 1048576\n"
    "  client_header_timeout_ms: 5000\n"
    "  client_timeout_ms: 20000\n"
    "  idle_timeout_ms: 30000\n"
    "  upstream_connect_timeout_ms: 500\n"
    "  upstream_timeout_ms: 10000\n"
    "  max_connections: 2000\n"
    "backends:\n"
    "  model-v1:\n"
    "    servers: [127.0.0.1:9001, \"http://127.0.0.1:9011\"]\n"
    "    health: {path: /healthz, interval_ms: 2000, timeout_ms: 500, rise: 1, fall: 5}\n"
    "  model-v2:\n"
    "    servers: [\"https://[::1]:9443\"]\n"
    "    ca_file: conf/ca.pem\n"
    "    verify: no\n"
    "  model-v3:\n"
    "    servers: [localhost:9003]\n"
    "default_backend: model-v1\n"
    "experiments:\n"
    "  - name: ranker-v2\n"
    "    match: {path_prefix: /predict, host: API.Example.com, method: post}\n"
    "    unit: {header: X-User-Id}\n"
    "    fallback: cookie\n"
    "    salt: s1\n"
    "    allow_force: true\n"
    "    variants:\n"
    "      - {name: control, backend: model-v1, weight: 90}\n"
    "      - {name: treatment, backend: model-v2, weight: 10}\n"
    "    shadow: {backend: model-v3, percent: 5, compare: {json_field: score, tolerance: "
    "0.01}}\n"
    "    metrics:\n"
    "      - {name: error_rate, kind: binary, source: status_5xx, goal: decrease, guardrail: "
    "true, max: 0.01}\n"
    "      - {name: latency_ms, kind: continuous, source: latency_ms, goal: decrease,\n"
    "         guardrail: true, margin: 0.05, max: 500}\n"
    "      - {name: click, kind: binary, source: outcome, goal: increase, primary: true}\n"
    "    decision: {alpha: 0.01, min_samples: 1000, srm_alpha: 0.0001, sequential: true,\n"
    "               on_srm: rollback, sequential_n: 2500}\n"
    "    rollout: {steps: [1, 5, 12.5, 50, 100], interval_s: 300, auto: true,\n"
    "              state_file: var/rollout.state}\n"
    "  - name: three-way\n"
    "    unit: {cookie: uid}\n"
    "    variants:\n"
    "      - {name: a, backend: model-v1, weight: 33.33}\n"
    "      - {name: b, backend: model-v2, weight: 33.33}\n"
    "      - {name: c, backend: model-v3, weight: 33.34}\n"
    "  - name: by-query\n"
    "    unit: {query: user}\n"
    "    variants:\n"
    "      - {name: old, backend: model-v1, weight: 99.5}\n"
    "      - {name: new, backend: model-v2, weight: 0.500}\n";

static void test_full(void)
{
	struct conf *c = NULL;
	char err[512] = "";

	CHECK_INT(load(full_yaml, &c, err, sizeof(err)), 0);
	if (c == NULL) {
		fprintf(stderr, "full config: %s\n", err);
		return;
	}
	CHECK_STR(c->path, "t.yaml");
	CHECK_INT(c->generation, 1);
	CHECK_INT(atomic_load(&c->refs), 1);

	CHECK_INT(c->nlistens, 2);
	CHECK_STR(c->listens[0].addr.text, "127.0.0.1:18080");
	CHECK_INT(c->listens[0].addr.ss.ss_family, AF_INET);
	CHECK_INT(c->listens[0].addr.sslen, sizeof(struct sockaddr_in));
	CHECK_INT(port_of(&c->listens[0].addr), 18080);
	CHECK(c->listens[0].tls_cert == NULL && c->listens[0].tls_key == NULL);
	CHECK_STR(c->listens[1].addr.text, "[::1]:18443");
	CHECK_INT(c->listens[1].addr.ss.ss_family, AF_INET6);
	CHECK_INT(port_of(&c->listens[1].addr), 18443);
	CHECK_STR(c->listens[1].tls_cert, "conf/tls/server.crt");
	CHECK_STR(c->listens[1].tls_key, "conf/tls/server.key");

	CHECK_STR(c->admin_addr.text, "127.0.0.1:19901");
	CHECK_INT(port_of(&c->admin_addr), 19901);
	CHECK_STR(c->admin_token_file, "conf/admin.token");
	CHECK_INT(c->workers, 4);
	CHECK(!c->io_uring);
	CHECK_INT(c->drain_timeout_ms, 5000);

	CHECK_STR(c->log_error, "var/error.log");
	CHECK_STR(c->log_level, "debug");
	CHECK_STR(c->log_outcomes, "var/outcomes.jsonl");
	CHECK_STR(c->log_access, "var/access.log");
	CHECK_INT(c->log_fsync_ms, 0);
	CHECK_INT(c->log_max_pending, 1048576);
	CHECK_INT(c->outcomes_rid_window_s, 86400);
	CHECK_INT(c->outcomes_max_rids, 5000000);

	CHECK_INT(c->limits.max_header_bytes, 32768);
	CHECK_INT(c->limits.max_headers, 50);
	CHECK_INT(c->limits.max_request_line, 4096);
	CHECK_INT(c->limits.max_body_bytes, 1048576);
	CHECK_INT(c->limits.client_header_timeout_ms, 5000);
	CHECK_INT(c->limits.client_timeout_ms, 20000);
	CHECK_INT(c->limits.idle_timeout_ms, 30000);
	CHECK_INT(c->limits.upstream_connect_timeout_ms, 500);
	CHECK_INT(c->limits.upstream_timeout_ms, 10000);
	CHECK_INT(c->limits.max_connections, 2000);

	CHECK_INT(c->nbackends, 3);
	struct conf_backend *b1 = conf_backend_find(c, "model-v1");
	struct conf_backend *b2 = conf_backend_find(c, "model-v2");
	struct conf_backend *b3 = conf_backend_find(c, "model-v3");
	CHECK(b1 == &c->backends[0] && b2 == &c->backends[1] && b3 == &c->backends[2]);
	CHECK(conf_backend_find(c, "model-v4") == NULL);
	CHECK(c->default_backend == b1);
	CHECK_STR(b1->name, "model-v1");
	CHECK_INT(b1->nservers, 2);
	CHECK_STR(b1->servers[0].addr.text, "127.0.0.1:9001");
	CHECK_INT(port_of(&b1->servers[0].addr), 9001);
	CHECK(!b1->servers[0].tls);
	CHECK_INT(b1->servers[0].id, -1);
	CHECK_STR(b1->servers[1].addr.text, "127.0.0.1:9011");
	CHECK(!b1->servers[1].tls);
	CHECK_INT(b1->servers[1].id, -1);
	CHECK_STR(b1->health_path, "/healthz");
	CHECK_INT(b1->health_interval_ms, 2000);
	CHECK_INT(b1->health_timeout_ms, 500);
	CHECK_INT(b1->health_rise, 1);
	CHECK_INT(b1->health_fall, 5);
	CHECK(b1->ca_file == NULL);
	CHECK(b1->verify);
	CHECK_INT(b2->nservers, 1);
	CHECK_STR(b2->servers[0].addr.text, "[::1]:9443");
	CHECK_INT(b2->servers[0].addr.ss.ss_family, AF_INET6);
	CHECK_INT(port_of(&b2->servers[0].addr), 9443);
	CHECK(b2->servers[0].tls);
	CHECK_STR(b2->ca_file, "conf/ca.pem");
	CHECK(!b2->verify);
	CHECK(b2->health_path == NULL);
	CHECK_INT(b2->health_rise, 2);
	CHECK_INT(b2->health_fall, 3);
	CHECK_STR(b3->servers[0].addr.text, "localhost:9003");
	CHECK_INT(port_of(&b3->servers[0].addr), 9003);

	CHECK_INT(c->nexperiments, 3);
	struct conf_experiment *e = conf_experiment_find(c, "ranker-v2");
	CHECK(e == &c->experiments[0]);
	CHECK(conf_experiment_find(c, "nope") == NULL);
	if (e == NULL)
		goto out;
	CHECK_STR(e->name, "ranker-v2");
	CHECK_INT(e->line, 42);
	CHECK_STR(e->match_path_prefix, "/predict");
	CHECK_STR(e->match_host, "api.example.com");
	CHECK_STR(e->match_method, "POST");
	CHECK_INT(e->unit, CONF_UNIT_HEADER);
	CHECK_STR(e->unit_name, "X-User-Id");
	CHECK_INT(e->fallback, CONF_FB_COOKIE);
	CHECK_STR(e->fallback_cookie, "abgate_uid");
	CHECK_STR(e->salt, "s1");
	CHECK(e->allow_force);
	CHECK_INT(e->nvariants, 2);
	CHECK_STR(e->variants[0].name, "control");
	CHECK(e->variants[0].backend == b1);
	CHECK_INT(e->variants[0].weight_bp, 9000);
	CHECK_INT(e->variants[0].lo, 0);
	CHECK_INT(e->variants[0].hi, 9000);
	CHECK_STR(e->variants[1].name, "treatment");
	CHECK(e->variants[1].backend == b2);
	CHECK_INT(e->variants[1].weight_bp, 1000);
	CHECK_INT(e->variants[1].lo, 9000);
	CHECK_INT(e->variants[1].hi, 10000);
	CHECK(conf_variant_find(e, "treatment") == &e->variants[1]);
	CHECK(conf_variant_find(e, "other") == NULL);
	CHECK(e->shadow.backend == b3);
	CHECK(e->shadow.percent == 5.0);
	CHECK_STR(e->shadow.compare_json_field, "score");
	CHECK(e->shadow.compare_tolerance == 0.01);

	CHECK_INT(e->nmetrics, 3);
	const struct conf_metric *m = e->metrics;
	CHECK_STR(m[0].name, "error_rate");
	CHECK_INT(m[0].kind, CONF_METRIC_BINARY);
	CHECK_INT(m[0].source, CONF_SRC_STATUS_5XX);
	CHECK_INT(m[0].goal, CONF_GOAL_DECREASE);
	CHECK(m[0].guardrail && !m[0].primary);
	CHECK(!m[0].has_margin);
	CHECK(m[0].has_max && m[0].max == 0.01);
	CHECK_STR(m[1].name, "latency_ms");
	CHECK_INT(m[1].kind, CONF_METRIC_CONTINUOUS);
	CHECK_INT(m[1].source, CONF_SRC_LATENCY_MS);
	CHECK_INT(m[1].goal, CONF_GOAL_DECREASE);
	CHECK(m[1].guardrail && !m[1].primary);
	CHECK(m[1].has_margin && m[1].margin == 0.05);
	CHECK(m[1].has_max && m[1].max == 500.0);
	CHECK_STR(m[2].name, "click");
	CHECK_INT(m[2].kind, CONF_METRIC_BINARY);
	CHECK_INT(m[2].source, CONF_SRC_OUTCOME);
	CHECK_INT(m[2].goal, CONF_GOAL_INCREASE);
	CHECK(!m[2].guardrail && m[2].primary);
	CHECK(!m[2].has_margin && !m[2].has_max);

	CHECK(e->decision.alpha == 0.01);
	CHECK_INT(e->decision.min_samples, 1000);
	CHECK(e->decision.srm_alpha == 0.0001);
	CHECK(e->decision.sequential);
	CHECK(e->decision.on_srm_rollback);
	CHECK(e->decision.sequential_n == 2500.0);
	CHECK_INT(e->decision.interval_s, 10); /* a rollout evaluates at each step instead */

	CHECK(e->rollout.enabled);
	CHECK_INT(e->rollout.nsteps, 5);
	if (e->rollout.nsteps == 5) {
		CHECK(e->rollout.steps[0] == 1.0);
		CHECK(e->rollout.steps[1] == 5.0);
		CHECK(e->rollout.steps[2] == 12.5);
		CHECK(e->rollout.steps[3] == 50.0);
		CHECK(e->rollout.steps[4] == 100.0);
	}
	CHECK_INT(e->rollout.interval_s, 300);
	CHECK(e->rollout.autostep);
	CHECK_STR(e->rollout.state_file, "var/rollout.state");

	/* The second experiment takes every default. */
	e = &c->experiments[1];
	CHECK_STR(e->name, "three-way");
	CHECK_INT(e->line, 61);
	CHECK(e->match_path_prefix == NULL && e->match_host == NULL && e->match_method == NULL);
	CHECK_INT(e->unit, CONF_UNIT_COOKIE);
	CHECK_STR(e->unit_name, "uid");
	CHECK_INT(e->fallback, CONF_FB_CONTROL);
	CHECK_STR(e->fallback_cookie, "uid");
	CHECK_STR(e->salt, "three-way");
	CHECK(!e->allow_force);
	CHECK_INT(e->nvariants, 3);
	CHECK_INT(e->variants[0].weight_bp, 3333);
	CHECK_INT(e->variants[0].lo, 0);
	CHECK_INT(e->variants[0].hi, 3333);
	CHECK_INT(e->variants[1].weight_bp, 3333);
	CHECK_INT(e->variants[1].lo, 3333);
	CHECK_INT(e->variants[1].hi, 6666);
	CHECK_INT(e->variants[2].weight_bp, 3334);
	CHECK_INT(e->variants[2].lo, 6666);
	CHECK_INT(e->variants[2].hi, 10000);
	CHECK(e->variants[2].backend == b3);
	CHECK(e->shadow.backend == NULL && e->shadow.compare_json_field == NULL);
	CHECK_INT(e->nmetrics, 0);
	CHECK(e->metrics == NULL);
	CHECK(e->decision.alpha == 0.05);
	CHECK_INT(e->decision.min_samples, 500);
	CHECK(e->decision.srm_alpha == 0.001);
	CHECK(!e->decision.sequential);
	CHECK(!e->decision.on_srm_rollback);
	CHECK(e->decision.sequential_n == 5000.0);
	CHECK_INT(e->decision.interval_s, 10);
	CHECK(!e->rollout.enabled && e->rollout.nsteps == 0 && e->rollout.steps == NULL);

	e = &c->experiments[2];
	CHECK_INT(e->unit, CONF_UNIT_QUERY);
	CHECK_STR(e->unit_name, "user");
	CHECK_STR(e->fallback_cookie, "abgate_uid");
	CHECK_INT(e->variants[0].weight_bp, 9950);
	CHECK_INT(e->variants[1].weight_bp, 50);
	CHECK_INT(e->variants[1].lo, 9950);
	CHECK_INT(e->variants[1].hi, 10000);
out:
	conf_free(c);
}

static void test_defaults(void)
{
	static const char yaml[] = "backends:\n"
				   "  only:\n"
				   "    servers: [127.0.0.1:9001]\n";
	struct conf *c = NULL;
	char err[512] = "";

	CHECK_INT(load(yaml, &c, err, sizeof(err)), 0);
	if (c == NULL) {
		fprintf(stderr, "minimal config: %s\n", err);
		return;
	}
	CHECK_INT(c->generation, 1);
	CHECK_INT(c->nlistens, 1);
	CHECK_STR(c->listens[0].addr.text, "127.0.0.1:8080");
	CHECK_INT(port_of(&c->listens[0].addr), 8080);
	CHECK(c->listens[0].tls_cert == NULL && c->listens[0].tls_key == NULL);
	CHECK_STR(c->admin_addr.text, "127.0.0.1:9901");
	CHECK_INT(port_of(&c->admin_addr), 9901);
	CHECK(c->admin_token_file == NULL);
	CHECK_INT(c->workers, 1);
	CHECK(c->io_uring);
	CHECK_INT(c->drain_timeout_ms, 10000);
	CHECK_STR(c->log_error, "stderr");
	CHECK_STR(c->log_level, "info");
	CHECK(c->log_outcomes == NULL && c->log_access == NULL);
	CHECK_INT(c->log_fsync_ms, 200);
	CHECK_INT(c->log_max_pending, 64 << 20);
	CHECK_INT(c->outcomes_rid_window_s, 3600);
	CHECK_INT(c->outcomes_max_rids, 2000000);
	CHECK_INT(c->limits.max_header_bytes, 16384);
	CHECK_INT(c->limits.max_headers, 100);
	CHECK_INT(c->limits.max_request_line, 8192);
	CHECK_INT(c->limits.max_body_bytes, 10485760);
	CHECK_INT(c->limits.client_header_timeout_ms, 10000);
	CHECK_INT(c->limits.client_timeout_ms, 30000);
	CHECK_INT(c->limits.idle_timeout_ms, 60000);
	CHECK_INT(c->limits.upstream_connect_timeout_ms, 1000);
	CHECK_INT(c->limits.upstream_timeout_ms, 30000);
	CHECK_INT(c->limits.max_connections, 10000);
	CHECK_INT(c->nbackends, 1);
	CHECK(c->backends[0].health_path == NULL);
	CHECK_INT(c->backends[0].health_interval_ms, 2000);
	CHECK_INT(c->backends[0].health_timeout_ms, 1000);
	CHECK_INT(c->backends[0].health_rise, 2);
	CHECK_INT(c->backends[0].health_fall, 3);
	CHECK(c->backends[0].verify);
	CHECK(c->backends[0].ca_file == NULL);
	CHECK(c->default_backend == NULL);
	CHECK_INT(c->nexperiments, 0);
	CHECK(c->experiments == NULL);

	/* References: the last unref frees (the sanitizers would catch a double free or leak). */
	CHECK(conf_ref(c) == c);
	CHECK_INT(atomic_load(&c->refs), 2);
	conf_unref(c);
	CHECK_INT(atomic_load(&c->refs), 1);
	conf_unref(c);
	CHECK(conf_ref(NULL) == NULL);
	conf_unref(NULL);
	conf_free(NULL);
}

/* Three backends (lines 1-4) that the invalid documents below build on. */
#define BACKENDS                                                                                   \
	"backends:\n"                                                                              \
	"  m1: {servers: [127.0.0.1:9001]}\n"                                                      \
	"  m2: {servers: [127.0.0.1:9002]}\n"                                                      \
	"  m3: {servers: [127.0.0.1:9003]}\n"

/* After BACKENDS: an experiment whose mapping starts on line 6 and whose variants key is on
 * line 8; its variants follow from line 9. */
#define EXP_HEAD                                                                                   \
	"experiments:\n"                                                                           \
	"  - name: e1\n"                                                                           \
	"    unit: {header: X-User}\n"                                                             \
	"    variants:\n"
#define VARIANTS_OK                                                                                \
	"      - {name: control, backend: m1, weight: 50}\n"                                       \
	"      - {name: treatment, backend: m2, weight: 50}\n"
#define EXP_OK BACKENDS EXP_HEAD VARIANTS_OK /* lines 1-10; more experiment keys from line 11 */

static const struct bad_case {
	const char *yaml;
	const char *err;
} bad_cases[] = {
    /* YAML syntax, empty documents, the document's shape. */
    {"listen: [127.0.0.1:1\nworkers: 1\n",
     "t.yaml:2:8: syntax error: did not find expected ',' or ']' (while parsing a flow sequence "
     "at line 1, column 9)"},
    {"workers: 1: 2\n",
     "t.yaml:1:11: syntax error: mapping values are not allowed in this context"},
    {"workers: \"1\x01\"\n", "t.yaml:1:12: syntax error: control characters are not allowed"},
    {"", "t.yaml:1:1: empty configuration (expected a mapping of settings)"},
    {"# only a comment\n", "t.yaml:1:1: empty configuration (expected a mapping of settings)"},
    {"- listen\n- workers\n", "t.yaml:1:1: the configuration must be a mapping of settings"},
    {"---\n", "t.yaml:2:1: the configuration must be a mapping of settings"},
    {BACKENDS "---\nworkers: 1\n", "t.yaml:5:1: only one YAML document is allowed"},
    {BACKENDS "workers: &w 4\ndrain_timeout_ms: *w\n", "t.yaml:5:10: anchors are not supported"},
    {BACKENDS "drain_timeout_ms: *w\n", "t.yaml:5:19: aliases are not supported"},
    {BACKENDS "workers: !!int 4\n", "t.yaml:5:10: tags are not supported"},
    {BACKENDS "workers: \"4\\0\"\n", "t.yaml:5:10: strings must not contain NUL characters"},
    {BACKENDS "? [a]\n: 1\n", "t.yaml:5:3: mapping keys must be plain strings"},
    {BACKENDS
     "log: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
     "t.yaml:5:38: nesting deeper than 32 levels"},

    /* Unknown, duplicate and missing keys. */
    {BACKENDS "lisen: []\n",
     "t.yaml:5:1: unknown key \"lisen\" in the configuration (allowed: listen, admin, workers, "
     "io_uring, "
     "drain_timeout_ms, log, limits, backends, default_backend, experiments, outcomes)"},
    {BACKENDS "limits: {max_header_byte: 100}\n",
     "t.yaml:5:10: unknown key \"max_header_byte\" in limits (allowed: max_header_bytes, "
     "max_headers, max_request_line, max_body_bytes, client_header_timeout_ms, "
     "client_timeout_ms, idle_timeout_ms, upstream_connect_timeout_ms, upstream_timeout_ms, "
     "max_connections)"},
    {"backends:\n  m1:\n    servers: [127.0.0.1:1]\n    helth: {path: /h}\n",
     "t.yaml:4:5: unknown key \"helth\" in backend (allowed: servers, health, ca_file, verify)"},
    {EXP_OK "    metrics:\n      - {name: x, kind: binary, goal: increase, primary: true, "
	    "weight: 1}\n",
     "t.yaml:12:64: unknown key \"weight\" in metric (allowed: name, kind, source, goal, "
     "guardrail, primary, margin, max)"},
    {BACKENDS "workers: 1\nlog: {level: info}\nworkers: 2\n",
     "t.yaml:7:1: duplicate key \"workers\" (first at line 5)"},
    {BACKENDS "log: {\"\": 1}\n", "t.yaml:5:7: empty key in log"},
    {"backends:\n  m1:\n    servers: [127.0.0.1:1]\n  m1:\n    servers: [127.0.0.1:2]\n",
     "t.yaml:4:3: duplicate backend \"m1\" (first at line 2)"},
    {"workers: 2\n", "t.yaml:1:1: missing required key \"backends\""},
    {"backends: {}\n", "t.yaml:1:11: backends must define at least one backend"},
    {"backends:\n  m1: {health: {path: /h}}\n",
     "t.yaml:2:7: backend: missing required key \"servers\""},
    {BACKENDS "experiments:\n  - name: e1\n    variants: []\n",
     "t.yaml:6:5: experiment: missing required key \"unit\""},
    {BACKENDS EXP_HEAD "      - {name: control, backend: m1, weight: 50}\n"
		       "      - {name: treatment, backend: m2}\n",
     "t.yaml:10:9: variant: missing required key \"weight\""},

    /* Wrong types. */
    {BACKENDS "workers: four\n", "t.yaml:5:10: workers: expected an integer, got \"four\""},
    {BACKENDS "workers: \"4\"\n",
     "t.yaml:5:10: workers: expected an integer, got the string \"4\""},
    {BACKENDS "workers:\n", "t.yaml:5:9: workers: expected an integer, got nothing"},
    {BACKENDS "limits: 5\n", "t.yaml:5:9: limits: expected a mapping, got \"5\""},
    {BACKENDS "listen: {addr: 127.0.0.1:1}\n",
     "t.yaml:5:9: listen: expected a list, got a mapping"},
    {BACKENDS "log: {level: [info]}\n", "t.yaml:5:14: log.level: expected a string, got a list"},
    {BACKENDS "experiments: {name: e1}\n",
     "t.yaml:5:14: experiments: expected a list, got a mapping"},
    {EXP_OK "    allow_force: maybe\n",
     "t.yaml:11:18: allow_force: expected true or false, got \"maybe\""},
    {EXP_OK "    decision: {alpha: 5%}\n",
     "t.yaml:11:23: decision.alpha: expected a number, got \"5%\""},
    {"backends: [m1]\n", "t.yaml:1:11: backends: expected a mapping of backend names, got a list"},

    /* Out-of-range numbers. */
    {BACKENDS "workers: 0\n", "t.yaml:5:10: workers must be between 1 and 64 (got 0)"},
    {BACKENDS "workers: 65\n", "t.yaml:5:10: workers must be between 1 and 64 (got 65)"},
    {BACKENDS "workers: 99999999999999999999999\n",
     "t.yaml:5:10: workers must be between 1 and 64 (got 99999999999999999999999)"},
    {BACKENDS "drain_timeout_ms: -5\n",
     "t.yaml:5:19: drain_timeout_ms must not be negative (got -5)"},
    {BACKENDS "limits:\n  client_timeout_ms: -100\n",
     "t.yaml:6:22: limits.client_timeout_ms must be between 1 and 86400000 (got -100)"},
    {BACKENDS "log: {fsync_ms: 3600001}\n",
     "t.yaml:5:17: log.fsync_ms must be at most 3600000 (got 3600001)"},
    {BACKENDS "outcomes: {rid_window_s: 0}\n",
     "t.yaml:5:26: outcomes.rid_window_s must be between 1 and 604800 (got 0)"},
    {BACKENDS "outcomes:\n  max_rids: 999\n",
     "t.yaml:6:13: outcomes.max_rids must be between 1000 and 50000000 (got 999)"},
    {BACKENDS "outcomes: {max_ids: 10}\n",
     "t.yaml:5:12: unknown key \"max_ids\" in outcomes (allowed: rid_window_s, max_rids)"},
    {BACKENDS "outcomes: 5\n",
     "t.yaml:5:11: outcomes: expected a mapping, got \"5\""},
    {BACKENDS "log: {max_pending_bytes: 4096}\n",
     "t.yaml:5:26: log.max_pending_bytes must be between 65536 and 17179869184 (got 4096)"},
    {EXP_OK "    shadow: {backend: m3, percent: 150}\n",
     "t.yaml:11:36: shadow.percent must be at least 0 and at most 100 (got 150)"},
    {"backends:\n  m1:\n    servers: [127.0.0.1:1]\n    health: {path: /h, interval_ms: 100, "
     "timeout_ms: 200}\n",
     "t.yaml:4:54: health.timeout_ms (200) must not exceed health.interval_ms (100)"},
    {EXP_OK "    metrics:\n      - {name: err, kind: binary, source: status_5xx, goal: "
	    "decrease, max: 1.5}\n",
     "t.yaml:12:76: max (a rate for a binary metric) must be at least 0 and at most 1 (got 1.5)"},
    {EXP_OK "    metrics:\n      - {name: lat, kind: continuous, goal: decrease, margin: -0.1}\n",
     "t.yaml:12:63: margin must be at least 0 (got -0.1)"},

    /* Weights. */
    {BACKENDS EXP_HEAD "      - {name: control, backend: m1, weight: 12.345}\n"
		       "      - {name: treatment, backend: m2, weight: 87.655}\n",
     "t.yaml:9:46: weight 12.345 has more than 2 decimals (one bucket is 0.01%)"},
    {BACKENDS EXP_HEAD "      - {name: control, backend: m1, weight: 55}\n"
		       "      - {name: treatment, backend: m2, weight: 50}\n",
     "t.yaml:8:5: weights sum to 105 (must be 100)"},
    {BACKENDS EXP_HEAD "      - {name: control, backend: m1, weight: 33.33}\n"
		       "      - {name: treatment, backend: m2, weight: 33.33}\n"
		       "      - {name: t2, backend: m3, weight: 33.33}\n",
     "t.yaml:8:5: weights sum to 99.99 (must be 100)"},
    {BACKENDS EXP_HEAD "      - {name: control, backend: m1, weight: 105}\n"
		       "      - {name: treatment, backend: m2, weight: -5}\n",
     "t.yaml:9:46: weight must be between 0 and 100 (got 105)"},
    {BACKENDS EXP_HEAD "      - {name: control, backend: m1, weight: 100}\n"
		       "      - {name: treatment, backend: m2, weight: -5}\n",
     "t.yaml:10:48: weight must be between 0 and 100 (got -5)"},
    {BACKENDS EXP_HEAD "      - {name: control, backend: m1, weight: \"50\"}\n"
		       "      - {name: treatment, backend: m2, weight: 50}\n",
     "t.yaml:9:46: weight: expected a percentage (a number with at most 2 decimals), got the "
     "string \"50\""},
    {BACKENDS EXP_HEAD "      - {name: control, backend: m1, weight: 50.}\n"
		       "      - {name: treatment, backend: m2, weight: 50}\n",
     "t.yaml:9:46: weight: expected a percentage (a number with at most 2 decimals), got "
     "\"50.\""},

    /* References to backends. */
    {BACKENDS EXP_HEAD "      - {name: control, backend: m1, weight: 50}\n"
		       "      - {name: treatment, backend: model-v9, weight: 50}\n",
     "t.yaml:10:36: variant backend: unknown backend \"model-v9\" (defined: m1, m2, m3)"},
    {BACKENDS "default_backend: m4\n",
     "t.yaml:5:18: default_backend: unknown backend \"m4\" (defined: m1, m2, m3)"},
    {EXP_OK "    shadow: {backend: m9, percent: 5}\n",
     "t.yaml:11:23: shadow.backend: unknown backend \"m9\" (defined: m1, m2, m3)"},
    {EXP_OK "    shadow: {percent: 5}\n", "t.yaml:11:13: shadow: missing required key \"backend\""},

    /* Duplicate and malformed names. */
    {EXP_OK "  - name: e1\n    unit: {header: X-User}\n    variants:\n" VARIANTS_OK,
     "t.yaml:11:11: duplicate experiment \"e1\" (first at line 6)"},
    {BACKENDS EXP_HEAD "      - {name: control, backend: m1, weight: 50}\n"
		       "      - {name: control, backend: m2, weight: 50}\n",
     "t.yaml:10:16: duplicate variant \"control\" in this experiment"},
    {EXP_OK "    metrics:\n"
	    "      - {name: click, kind: binary, goal: increase}\n"
	    "      - {name: click, kind: continuous, goal: increase}\n",
     "t.yaml:13:16: duplicate metric \"click\" in this experiment"},
    {BACKENDS "experiments:\n  - name: a b\n",
     "t.yaml:6:11: experiment name \"a b\" must be 1 to 64 letters, digits, '.', '_' or '-'"},

    /* Experiment structure. */
    {BACKENDS EXP_HEAD "      - {name: control, backend: m1, weight: 100}\n",
     "t.yaml:8:5: an experiment needs at least 2 variants (has 1)"},
    {BACKENDS "experiments:\n  - name: e1\n    unit: {}\n",
     "t.yaml:7:11: unit needs exactly one of header, cookie or query"},
    {BACKENDS "experiments:\n  - name: e1\n    unit: {header: X-User, cookie: uid}\n",
     "t.yaml:7:28: unit needs exactly one of header, cookie or query"},
    {BACKENDS "experiments:\n  - name: e1\n    unit: {header: \"X User\"}\n",
     "t.yaml:7:20: unit.header \"X User\" is not a valid HTTP token"},
    {EXP_OK "    fallback: sticky\n",
     "t.yaml:11:15: fallback must be one of control|client_ip|random|cookie (got \"sticky\")"},
    {EXP_OK "    metrics:\n      - {name: m, kind: ratio, goal: increase}\n",
     "t.yaml:12:25: metric kind must be one of binary|continuous (got \"ratio\")"},
    {EXP_OK "    metrics:\n      - {name: m, kind: binary, source: clicks, goal: increase}\n",
     "t.yaml:12:41: metric source must be one of status_5xx|status_4xx|latency_ms|outcome (got "
     "\"clicks\")"},
    {EXP_OK "    metrics:\n      - {name: m, kind: continuous, source: status_5xx, goal: "
	    "decrease}\n",
     "t.yaml:12:45: metric source status_5xx needs kind binary"},
    {EXP_OK "    metrics:\n      - {name: m, kind: binary, source: latency_ms, goal: decrease}\n",
     "t.yaml:12:41: metric source latency_ms needs kind continuous"},
    {EXP_OK "    metrics:\n      - {name: m, kind: binary, goal: up}\n",
     "t.yaml:12:39: metric goal must be one of increase|decrease (got \"up\")"},
    {EXP_OK "    metrics:\n"
	    "      - {name: a, kind: binary, goal: increase, primary: true}\n"
	    "      - {name: b, kind: binary, goal: increase, primary: false}\n"
	    "      - {name: c, kind: binary, goal: increase, primary: true}\n",
     "t.yaml:14:49: only one metric may be primary (already \"a\" at line 12)"},
    {EXP_OK "    decision: {alpha: 1}\n",
     "t.yaml:11:23: decision.alpha must be greater than 0 and less than 1 (got 1)"},
    {EXP_OK "    decision: {srm_alpha: 0}\n",
     "t.yaml:11:27: decision.srm_alpha must be greater than 0 and less than 1 (got 0)"},
    {EXP_OK "    decision: {interval_s: 0}\n",
     "t.yaml:11:28: decision.interval_s must be between 1 and 86400 (got 0)"},
    {EXP_OK "    decision: {on_srm: ignore}\n",
     "t.yaml:11:24: decision.on_srm must be one of investigate|rollback (got \"ignore\")"},
    {EXP_OK "    rollout: {steps: [1, 25, 5, 100]}\n",
     "t.yaml:11:30: rollout steps must be ascending (5 after 25)"},
    {EXP_OK "    rollout: {steps: [0, 100]}\n",
     "t.yaml:11:23: rollout steps must be greater than 0 (got 0)"},
    {EXP_OK "    rollout: {steps: [10, 50]}\n",
     "t.yaml:11:27: the last rollout step must be 100 (got 50)"},
    {EXP_OK "    rollout: {steps: [10, 150]}\n",
     "t.yaml:11:27: rollout step must be between 0 and 100 (got 150)"},
    {EXP_OK "    rollout: {steps: []}\n", "t.yaml:11:22: rollout.steps needs at least 1 item"},
    {EXP_OK "    rollout: {steps: [50, 100], state_file: s.json}\n"
	    "  - name: e2\n    unit: {header: X-User}\n    variants:\n" VARIANTS_OK
	    "    rollout: {steps: [50, 100], state_file: s.json}\n",
     "t.yaml:17:45: rollout.state_file \"s.json\" is also experiment \"e1\"'s"},
    {EXP_OK "    decision: {interval_s: 30}\n    rollout: {steps: [50, 100]}\n",
     "t.yaml:11:28: decision.interval_s does not apply to a rollout: its guardrails are "
     "evaluated at the end of each step (rollout.interval_s)"},
    {BACKENDS EXP_HEAD VARIANTS_OK "      - {name: t2, backend: m3, weight: 0}\n"
				   "    rollout: {steps: [50, 100]}\n",
     "t.yaml:12:5: rollout needs exactly 2 variants, the control and the canary (has 3)"},
    {EXP_OK "    match: {path_prefix: predict}\n",
     "t.yaml:11:26: match.path_prefix must start with '/' (got \"predict\")"},

    /* Hash modes (issue 20): the SDK's own terms, typed, required and unknown keys. */
    {EXP_OK "    hash: {mode: vwo}\n",

     "t.yaml:11:18: hash.mode must be one of "
     "abgate|growthbook|unleash|optimizely|launchdarkly|statsig|eppo (got "
     "\"vwo\")"},
    {EXP_OK "    hash: {seed: s}\n", "t.yaml:11:11: hash: missing required key \"mode\""},
    {EXP_OK "    hash: growthbook\n", "t.yaml:11:11: hash: expected a mapping, got \"growthbook\""},
    {EXP_OK "    hash: {mode: growthbook, salt: s}\n",
     "t.yaml:11:30: unknown key \"salt\" in hash (mode growthbook) (allowed: "
     "mode, seed, version, coverage)"},
    {EXP_OK "    hash: {mode: growthbook, version: 3}\n",
     "t.yaml:11:39: hash.version must be between 1 and 2 (got 3)"},
    {EXP_OK "    hash: {mode: growthbook, coverage: 1.5}\n",
     "t.yaml:11:40: hash.coverage must be at least 0 and at most 1 (got 1.5)"},
    {EXP_OK "    hash: {mode: growthbook, seed: [a]}\n",
     "t.yaml:11:36: hash.seed: expected a string, got a list"},
    {EXP_OK "    hash: {mode: unleash}\n",
     "t.yaml:11:11: hash (mode unleash): missing required key \"group_id\""},
    {EXP_OK "    hash: {mode: unleash, group_id: g, rollout: 101}\n",
     "t.yaml:11:49: hash.rollout must be at most 100 (got 101)"},
    {BACKENDS EXP_HEAD "      - {name: control, backend: m1, weight: 50.05}\n"
		       "      - {name: treatment, backend: m2, weight: 49.95}\n"
		       "    hash: {mode: unleash, group_id: g}\n",
     "t.yaml:9:46: weight 50.05 of variant \"control\" has two decimals: "
     "Unleash variant weights are in tenths of a percent"},
    {EXP_OK "    hash: {mode: unleash, group_id: g, variant_hash: new}\n",
     "t.yaml:11:54: hash.variant_hash must be one of current|legacy (got \"new\")"},
    {EXP_OK "    hash: {mode: optimizely}\n",
     "t.yaml:11:11: hash (mode optimizely): missing required key \"experiment_id\""},
    {EXP_OK "    hash: {mode: optimizely, experiment_id: \"\"}\n",
     "t.yaml:11:45: hash.experiment_id must not be empty"},
    {EXP_OK "    hash: {mode: launchdarkly, key: flag}\n",
     "t.yaml:11:11: hash (mode launchdarkly): missing required key \"salt\" "
     "(the flag's salt; or give the rollout's \"seed\")"},
    {EXP_OK "    hash: {mode: launchdarkly, salt: s}\n",
     "t.yaml:11:11: hash (mode launchdarkly): missing required key \"key\" "
     "(the flag key; or give the rollout's \"seed\")"},
    {EXP_OK "    hash: {mode: launchdarkly, key: flag, salt: s, seed: 61}\n",
     "t.yaml:11:37: hash.seed replaces key and salt in LaunchDarkly's "
     "bucketing: give either seed or key and salt"},
    {EXP_OK "    hash: {mode: launchdarkly, seed: 6.1}\n",
     "t.yaml:11:38: hash.seed: expected an integer, got \"6.1\""},
    {EXP_OK "    hash: {mode: launchdarkly, seed: -2147483649}\n",
     "t.yaml:11:38: hash.seed must be between -2147483648 and 2147483647 (got -2147483649)"},
    {EXP_OK "    hash: {mode: launchdarkly, seed: 99999999999999999999999}\n",
     "t.yaml:11:38: hash.seed must be between -2147483648 and 2147483647 (got "
     "99999999999999999999999)"},
    {EXP_OK "    hash: {mode: statsig}\n",
     "t.yaml:11:11: hash (mode statsig): missing required key \"salt\""},
    {EXP_OK "    hash: {mode: statsig, salt: s, total_shards: 100}\n",
     "t.yaml:11:36: unknown key \"total_shards\" in hash (mode statsig) "
     "(allowed: mode, salt)"},
    {EXP_OK "    hash: {mode: eppo, salt: s, total_shards: 0}\n",
     "t.yaml:11:47: hash.total_shards must be between 1 and 1000000000 (got 0)"},
    {BACKENDS EXP_HEAD "      - {name: control, backend: m1, weight: 50.05}\n"
		       "      - {name: treatment, backend: m2, weight: 49.95}\n"
		       "    hash: {mode: eppo, salt: s, total_shards: 1000}\n",
     "t.yaml:11:47: hash.total_shards 1000 does not split the weights into "
     "whole shards (variant \"control\" ends at 50.05%)"},
    {EXP_OK "    salt: s\n    hash: {mode: statsig, salt: s}\n",
     "t.yaml:11:5: salt belongs to hash mode abgate; hash mode statsig takes "
     "its SDK's seed, salt or key inside hash"},
    {EXP_OK
     "    hash: {mode: optimizely, experiment_id: \"123\"}\n    rollout: {steps: [50, 100]}\n",

     "t.yaml:12:5: rollout needs hash mode abgate: the application's SDK "
     "would not follow the proxy's steps (ramp the weights in the SDK and "
     "here, and reload)"},

    /* Addresses. */
    {"backends:\n  m1: {servers: [127.0.0.1:99999]}\n",
     "t.yaml:2:18: server \"127.0.0.1:99999\": bad port \"99999\" (must be 1-65535)"},
    {"backends:\n  m1: {servers: [\"http://127.0.0.1:0\"]}\n",
     "t.yaml:2:18: server \"http://127.0.0.1:0\": bad port \"0\" (must be 1-65535)"},
    {"backends:\n  m1: {servers: [127.0.0.1]}\n",
     "t.yaml:2:18: server \"127.0.0.1\": missing port (expected host:port)"},
    {"backends:\n  m1: {servers: [\"::1:80\"]}\n",
     "t.yaml:2:18: server \"::1:80\": IPv6 addresses need brackets, as in [::1]:8080"},
    {"backends:\n  m1: {servers: [\"ftp://127.0.0.1:21\"]}\n",
     "t.yaml:2:18: server \"ftp://127.0.0.1:21\": unsupported scheme (use http:// or https://)"},
    {"backends:\n  m1: {servers: [\"http://127.0.0.1:80/v1\"]}\n",
     "t.yaml:2:18: server \"http://127.0.0.1:80/v1\": a server is host:port, without a path"},
    {"backends:\n  m1: {servers: []}\n", "t.yaml:2:17: servers needs at least 1 item"},
    {BACKENDS "listen:\n  - addr: \"http://127.0.0.1:8080\"\n",
     "t.yaml:6:11: listen.addr \"http://127.0.0.1:8080\": a scheme is not allowed here "
     "(expected host:port)"},
    {BACKENDS "listen:\n  - addr: 127.0.0.1:8080\n  - addr: 127.0.0.1:8080\n",
     "t.yaml:7:11: listen.addr \"127.0.0.1:8080\" is the same address as line 6"},
    {BACKENDS "admin: {addr: \"[::1:9901\"}\n",
     "t.yaml:5:15: admin.addr \"[::1:9901\": expected [address]:port"},
    {BACKENDS "admin: {addr: 127.0.0.1:8080}\n",
     "t.yaml:5:15: admin.addr \"127.0.0.1:8080\" is also a listen address"},
    {BACKENDS "listen:\n  - addr: 127.0.0.1:8443\n    tls: {cert: server.crt}\n",
     "t.yaml:7:10: listen.tls needs both cert and key (missing key)"},
    {BACKENDS "io_uring: sometimes\n",
     "t.yaml:5:11: io_uring: expected true or false, got \"sometimes\""},
    {BACKENDS "log: {level: loud}\n",
     "t.yaml:5:14: log.level must be one of error|warn|info|debug (got \"loud\")"},
};

#define NBAD (sizeof(bad_cases) / sizeof(bad_cases[0]))

static void test_bad(void)
{
	for (size_t i = 0; i < NBAD; i++) {
		struct conf *c = NULL;
		char err[512] = "";
		int rc = load(bad_cases[i].yaml, &c, err, sizeof(err));
		CHECK_INT(rc, -1);
		CHECK(c == NULL);
		CHECK_STR(err, bad_cases[i].err);
		if (c != NULL)
			conf_free(c);
	}
	/* Many loads of every bad document: LeakSanitizer reports anything an error path drops. */
	for (int round = 0; round < 20; round++) {
		for (size_t i = 0; i < NBAD; i++) {
			struct conf *c = NULL;
			char err[64];
			if (load(bad_cases[i].yaml, &c, err, sizeof(err)) == 0)
				conf_free(c);
		}
	}
}

static void test_misc(void)
{
	struct conf *c = NULL;
	char err[512] = "";

	/* A host name that cannot resolve: the resolver's own words follow the colon. */
	static const char unresolvable[] =
	    "backends:\n  m1: {servers: [no-such-host.invalid:80]}\n";
	CHECK_INT(load(unresolvable, &c, err, sizeof(err)), -1);
	CHECK(strncmp(err,
		      "t.yaml:2:18: server \"no-such-host.invalid:80\": cannot resolve "
		      "\"no-such-host.invalid\": ",
		      81) == 0);

	/* A short buffer truncates the message but stays terminated. */
	char small[10];
	CHECK_INT(load("workers: [\n", &c, small, sizeof(small)), -1);
	CHECK_STR(small, "t.yaml:2:");

	/* An I/O error names the file and the reason. */
	CHECK_INT(conf_load("conf/does-not-exist.yaml", &c, err, sizeof(err)), -1);
	CHECK_STR(err, "conf/does-not-exist.yaml: cannot open: No such file or directory");

	/* conf_addr_parse on its own. */
	struct conf_addr a = {0};
	CHECK_INT(conf_addr_parse("[::1]:443", &a, err, sizeof(err)), 0);
	CHECK_STR(a.text, "[::1]:443");
	CHECK_INT(port_of(&a), 443);
	free(a.text);
	a.text = NULL;
	CHECK_INT(conf_addr_parse("127.0.0.1:", &a, err, sizeof(err)), -1);
	CHECK_STR(err, "bad port \"\" (must be 1-65535)");
	CHECK_INT(conf_addr_parse(":80", &a, err, sizeof(err)), -1);
	CHECK_STR(err, "missing host");
	CHECK(a.text == NULL);

	/* Booleans also read yes/no, and weights may carry trailing zeros. */
	static const char yaml[] =
	    BACKENDS EXP_HEAD "      - {name: control, backend: m1, weight: 87.500}\n"
			      "      - {name: treatment, backend: m2, weight: 12.5}\n"
			      "    allow_force: yes\n";
	c = NULL;
	CHECK_INT(load(yaml, &c, err, sizeof(err)), 0);
	if (c != NULL) {
		CHECK(c->experiments[0].allow_force);
		CHECK_INT(c->experiments[0].variants[0].weight_bp, 8750);
		CHECK_INT(c->experiments[0].variants[1].lo, 8750);
		conf_free(c);
	} else {
		fprintf(stderr, "yes/no config: %s\n", err);
	}
}

/* Every example in conf/ must load; the three named in the docs must be there. */
static void test_examples(void)
{
	glob_t g;
	bool demo = false, abgate = false, canary = false;

	CHECK_INT(glob("conf/*.yaml", 0, NULL, &g), 0);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		struct conf *c = NULL;
		char err[512] = "";
		const char *p = g.gl_pathv[i];
		int rc = conf_load(p, &c, err, sizeof(err));
		if (rc != 0)
			fprintf(stderr, "%s\n", err);
		CHECK_INT(rc, 0);
		if (c == NULL)
			continue;
		if (strcmp(p, "conf/demo.yaml") == 0) {
			demo = true;
			CHECK_STR(c->listens[0].addr.text, "127.0.0.1:8080");
			CHECK_STR(c->admin_addr.text, "127.0.0.1:9901");
			CHECK(c->default_backend == conf_backend_find(c, "model-v1"));
			struct conf_experiment *e = conf_experiment_find(c, "ranker-v2");
			CHECK(e != NULL);
			if (e != NULL) {
				CHECK_STR(e->match_path_prefix, "/predict");
				CHECK_INT(e->unit, CONF_UNIT_HEADER);
				CHECK_STR(e->unit_name, "X-User-Id");
				CHECK_INT(e->fallback, CONF_FB_COOKIE);
				CHECK_INT(e->nvariants, 2);
				CHECK_INT(e->variants[0].hi, 5000);
				CHECK(e->variants[1].backend == conf_backend_find(c, "model-v2"));
				CHECK_INT(e->nmetrics, 3);
			}
			CHECK_STR(c->log_outcomes, "var/outcomes.jsonl");
		} else if (strcmp(p, "conf/abgate.yaml") == 0) {
			abgate = true;
			CHECK(c->nexperiments >= 1);
		} else if (strcmp(p, "conf/canary.yaml") == 0) {
			canary = true;
			CHECK(c->nexperiments >= 1);
			for (size_t e = 0; e < c->nexperiments; e++) {
				CHECK(c->experiments[e].rollout.enabled);
				for (size_t m = 0; m < c->experiments[e].nmetrics; m++)
					CHECK(!c->experiments[e].metrics[m].primary);
			}
		}
		conf_free(c);
	}
	globfree(&g);
	CHECK(demo);
	CHECK(abgate);
	CHECK(canary);
}

int main(void)
{
	test_full();
	test_defaults();
	test_bad();
	test_misc();
	test_examples();
	return check_summary("test_conf");
}
