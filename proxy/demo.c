/*
 * demo.c - `abgate demo` (see include/demo.h).
 *
 * Processes: this one (traffic generator and conductor), two `abgate backend` children (the
 * current model and a candidate that is a little faster and earns a few more clicks), and an
 * `abgate serve` child on the demo configuration. Children die with their parent
 * (PR_SET_PDEATHSIG), and every exit path of the demo stops them and waits for them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "demo.h"
#include "report.h"

#define DEMO_THREADS 8
#define DEMO_USERS 20000
#define OUTCOME_BATCH 200

const char demo_config_template[] =
	"# demo.yaml - the configuration `abgate demo` runs: two local model backends, one A/B test.\n"
	"#\n"
	"# `abgate demo` starts the two demo model servers itself (model-v1 on port 9001, model-v2 on\n"
	"# port 9002), runs the proxy on this file, drives traffic and outcomes through it, and prints\n"
	"# the report. Check it by hand with: abgate check -c conf/demo.yaml\n"
	"\n"
	"# Where clients connect. A list: add more entries (and a tls: {cert, key} block) for HTTPS.\n"
	"listen:\n"
	"  - addr: 127.0.0.1:%u\n"
	"\n"
	"# The admin API (status, live report, metrics, reload) on its own loopback listener.\n"
	"admin:\n"
	"  addr: 127.0.0.1:%u\n"
	"\n"
	"log:\n"
	"  error: stderr                 # the error log: \"stderr\" or a file path\n"
	"  outcomes: %s  # every exposure and outcome, JSON Lines; `abgate report` reads it\n"
	"\n"
	"# Named pools of model servers. Variants and default_backend refer to these names.\n"
	"backends:\n"
	"  model-v1:                     # the current model: the control\n"
	"    servers: [127.0.0.1:%u]\n"
	"  model-v2:                     # the candidate model: the treatment\n"
	"    servers: [127.0.0.1:%u]\n"
	"\n"
	"# Requests that match no experiment go here.\n"
	"default_backend: model-v1\n"
	"\n"
	"experiments:\n"
	"  - name: ranker-v2\n"
	"    match: {path_prefix: /predict}  # only requests whose path starts with /predict\n"
	"    unit: {header: X-User-Id}       # the user id decides the cohort: same user, same variant\n"
	"    fallback: cookie                # no X-User-Id: set a random id in the abgate_uid cookie\n"
	"    variants:                       # the first is the control; weights in percent, sum 100\n"
	"      - {name: control, backend: model-v1, weight: 50}\n"
	"      - {name: treatment, backend: model-v2, weight: 50}\n"
	"    metrics:\n"
	"      # Guardrails: the treatment is rolled back if it is significantly worse on these.\n"
	"      - {name: error_rate, kind: binary, source: status_5xx, goal: decrease, guardrail: true}\n"
	"      - {name: latency_ms, kind: continuous, source: latency_ms, goal: decrease, guardrail: true}\n"
	"      # The primary metric: clicks reported by the application as outcomes.\n"
	"      - {name: click, kind: binary, source: outcome, goal: increase, primary: true}\n";

static volatile sig_atomic_t stop_requested;
static pid_t children[3];
static int nchildren;

struct totals {
	atomic_ulong requests;
	atomic_ulong errors;
	atomic_ulong by_variant[2];
	atomic_ulong clicks[2];
	atomic_ulong outcomes_posted;
};

static struct totals totals;
static unsigned proxy_port, admin_port;

static void on_signal(int sig)
{
	stop_requested = 1;
}

/* Starts `abgate ARGS...` as a child that dies with us; stdout/stderr to log_fd. */
static pid_t spawn(const char *const *argv, int log_fd)
{
	char *args[16];
	pid_t pid = fork();
	int n = 0;

	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (log_fd >= 0) {
		dup2(log_fd, 1);
		dup2(log_fd, 2);
	}
	for (; argv[n] != NULL && n < 15; n++)
		args[n] = strdup(argv[n]);
	args[n] = NULL;
	execv("/proc/self/exe", args);
	_exit(127);
}

static void stop_children(void)
{
	for (int i = nchildren - 1; i >= 0; i--)
		if (children[i] > 0)
			kill(children[i], SIGTERM);
	for (int i = nchildren - 1; i >= 0; i--) {
		if (children[i] > 0)
			waitpid(children[i], NULL, 0);
		children[i] = 0;
	}
	nchildren = 0;
}

/* A port nobody listens on: the preferred one when free, else one the kernel picks. */
static unsigned pick_port(unsigned preferred)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return preferred;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sin.sin_port = htons((uint16_t)preferred);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		sin.sin_port = 0;
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
		    getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
			close(fd);
			return preferred;
		}
	}
	close(fd);
	return ntohs(sin.sin_port);
}

static int dial(unsigned port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct timeval tv = {5, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

struct response {
	int status;
	char variant[32];
	char rid[80];
	char body[4096];
	size_t body_len;
};

/* Copies the value of header `name` (with ": ") from head into dst. */
static void header_value(const char *head, const char *name, char *dst, size_t cap)
{
	const char *p = strcasestr(head, name);

	dst[0] = '\0';
	if (p == NULL)
		return;
	p += strlen(name);
	size_t n = strcspn(p, "\r\n");
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, p, n);
	dst[n] = '\0';
}

/* Reads one response with a Content-Length body on a blocking socket. */
static bool read_response(int fd, struct response *r)
{
	char buf[8192];
	size_t have = 0;
	char *end = NULL;

	while (end == NULL) {
		if (have == sizeof(buf) - 1)
			return false;
		ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (n <= 0)
			return false;
		have += (size_t)n;
		buf[have] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	*end = '\0';
	r->status = atoi(buf + 9);
	char cl[32];
	header_value(buf, "\r\nContent-Length: ", cl, sizeof(cl));
	header_value(buf, "\r\nX-Abgate-Variant: ", r->variant, sizeof(r->variant));
	header_value(buf, "\r\nX-Request-Id: ", r->rid, sizeof(r->rid));
	size_t want = (size_t)strtoul(cl, NULL, 10);
	size_t got = have - (size_t)(end + 4 - buf);
	if (want >= sizeof(r->body) || got > want)
		return false;
	memcpy(r->body, end + 4, got);
	while (got < want) {
		ssize_t n = read(fd, r->body + got, want - got);
		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	r->body[got] = '\0';
	r->body_len = got;
	return true;
}

/* Sends a request on *fd (reconnecting once when the connection was closed). */
static bool exchange(int *fd, unsigned port, const char *req, size_t len, struct response *r)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		if (*fd < 0 && (*fd = dial(port)) < 0)
			return false;
		if (write_all(*fd, req, len) && read_response(*fd, r))
			return true;
		close(*fd);
		*fd = -1;
	}
	return false;
}

static void post_outcomes(int *fd, char *batch, size_t *len, size_t count)
{
	char head[256];
	struct response r;

	if (count == 0)
		return;
	batch[*len - 1] = ']'; /* replaces the last comma */
	int hl = snprintf(head, sizeof(head),
			  "POST /outcomes HTTP/1.1\r\nHost: demo\r\nContent-Type: application/json\r\n"
			  "Content-Length: %zu\r\n\r\n", *len);
	char *req = malloc((size_t)hl + *len);
	if (req != NULL) {
		memcpy(req, head, (size_t)hl);
		memcpy(req + hl, batch, *len);
		if (exchange(fd, admin_port, req, (size_t)hl + *len, &r) && r.status == 200)
			atomic_fetch_add(&totals.outcomes_posted, count);
		free(req);
	}
	batch[0] = '[';
	*len = 1;
}

/* xorshift: the generator's own randomness (users, clicks), seeded per thread. */
static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void *traffic(void *arg)
{
	uint64_t seed = 0x9e3779b97f4a7c15ULL * (uint64_t)((uintptr_t)arg + 1);
	int pfd = -1, afd = -1;
	char *batch = malloc(OUTCOME_BATCH * 256 + 2);
	size_t blen = 1, count = 0;
	struct response r;

	if (batch == NULL)
		return NULL;
	batch[0] = '[';
	while (!stop_requested) {
		char req[512], body[64];
		unsigned user = (unsigned)(next_rand(&seed) % DEMO_USERS);
		int bl = snprintf(body, sizeof(body), "{\"features\":[%u,%u]}", user % 97, user % 13);
		int n = snprintf(req, sizeof(req),
				 "POST /predict HTTP/1.1\r\nHost: demo\r\nX-User-Id: user-%u\r\n"
				 "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
				 user, bl, body);
		if (!exchange(&pfd, proxy_port, req, (size_t)n, &r) || r.status != 200) {
			atomic_fetch_add(&totals.errors, 1);
			if (pfd < 0)
				usleep(10000);
			continue;
		}
		atomic_fetch_add(&totals.requests, 1);
		int v = strcmp(r.variant, "treatment") == 0;
		atomic_fetch_add(&totals.by_variant[v], 1);
		/* the candidate earns a few more clicks: 12% against 10% */
		bool click = next_rand(&seed) % 1000 < (v ? 120u : 100u);
		atomic_fetch_add(&totals.clicks[v], click);
		blen += (size_t)snprintf(batch + blen, 256,
					 "{\"exp\":\"ranker-v2\",\"metric\":\"click\",\"value\":%d,"
					 "\"rid\":\"%s\",\"unit\":\"user-%u\"},",
					 click, r.rid, user);
		if (++count == OUTCOME_BATCH) {
			post_outcomes(&afd, batch, &blen, count);
			count = 0;
		}
	}
	post_outcomes(&afd, batch, &blen, count);
	if (pfd >= 0)
		close(pfd);
	if (afd >= 0)
		close(afd);
	free(batch);
	return NULL;
}

/* The recommendation the proxy gives right now ("-" when unknown). */
static void current_action(int *fd, char *dst, size_t cap)
{
	static const char req[] = "GET /experiments HTTP/1.1\r\nHost: demo\r\n\r\n";
	struct response r;

	snprintf(dst, cap, "-");
	if (!exchange(fd, admin_port, req, sizeof(req) - 1, &r) || r.status != 200)
		return;
	cJSON *doc = cJSON_Parse(r.body);
	cJSON *exps = cJSON_GetObjectItem(doc, "experiments");
	cJSON *rec = cJSON_GetObjectItem(cJSON_GetArrayItem(exps, 0), "recommendation");
	cJSON *action = cJSON_GetObjectItem(rec, "action");
	if (cJSON_IsString(action))
		snprintf(dst, cap, "%s", action->valuestring);
	cJSON_Delete(doc);
}

static bool wait_ready(unsigned port, int seconds)
{
	for (int i = 0; i < seconds * 20 && !stop_requested; i++) {
		int fd = dial(port);
		if (fd >= 0) {
			close(fd);
			return true;
		}
		usleep(50000);
	}
	return false;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: abgate demo [--duration S]\n"
		   "  Starts two demo model backends and the proxy, drives traffic from %d users\n"
		   "  and their clicks through it for S seconds (default 30) with a progress line,\n"
		   "  then prints the report. Files go to var/demo/ (configuration, outcome log,\n"
		   "  process logs). Every process it starts is stopped when it ends, also on Ctrl-C.\n",
		DEMO_USERS);
}

int demo_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"duration", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	double duration = 30;
	int ch;
	char *end;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			duration = strtod(optarg, &end);
			if (*end != '\0' || !(duration > 0 && duration <= 86400)) {
				fprintf(stderr, "abgate demo: --duration takes seconds in (0, 86400]\n");
				return 1;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "abgate demo: unknown option (see abgate demo --help)\n");
			return 1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "abgate demo: unexpected argument '%s'\n", argv[optind]);
		return 1;
	}
	mkdir("var", 0755);
	if (mkdir("var/demo", 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "abgate demo: cannot create var/demo: %s\n", strerror(errno));
		return 1;
	}
	const char *conf_path = "var/demo/demo.yaml", *log_path = "var/demo/outcomes.jsonl";
	proxy_port = pick_port(8080);
	admin_port = pick_port(9901);
	unsigned v1 = pick_port(9001), v2 = pick_port(9002);
	FILE *cf = fopen(conf_path, "w");
	if (cf == NULL) {
		fprintf(stderr, "abgate demo: cannot write %s: %s\n", conf_path, strerror(errno));
		return 1;
	}
	fprintf(cf, demo_config_template, proxy_port, admin_port, log_path, v1, v2);
	fclose(cf);
	unlink(log_path);
	FILE *lf = fopen("var/demo/processes.log", "w");
	int log_fd = lf != NULL ? fileno(lf) : -1;

	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	char p1[16], p2[16];
	snprintf(p1, sizeof(p1), "%u", v1);
	snprintf(p2, sizeof(p2), "%u", v2);
	const char *b1[] = {"abgate", "backend", "--port", p1, "--model", "model-v1", "--latency-ms", "2",
		      NULL};
	const char *b2[] = {"abgate", "backend", "--port", p2, "--model", "model-v2", "--latency-ms", "1",
		      NULL};
	const char *sv[] = {"abgate", "serve", "-c", conf_path, NULL};
	children[nchildren++] = spawn(b1, log_fd);
	children[nchildren++] = spawn(b2, log_fd);
	if (!wait_ready(v1, 10) || !wait_ready(v2, 10)) {
		fprintf(stderr, "abgate demo: the model backends did not start (see "
				"var/demo/processes.log)\n");
		stop_children();
		return 2;
	}
	children[nchildren++] = spawn(sv, log_fd);
	if (!wait_ready(proxy_port, 10) || !wait_ready(admin_port, 10)) {
		fprintf(stderr, "abgate demo: the proxy did not start (see var/demo/processes.log)\n");
		stop_children();
		return 2;
	}
	printf("abgate demo: proxy on 127.0.0.1:%u (admin %u), model-v1 on %u, model-v2 on %u\n"
	       "experiment ranker-v2: 50/50 split by X-User-Id, metrics error_rate, latency_ms, "
	       "click (primary)\n",
	       proxy_port, admin_port, v1, v2);
	fflush(stdout);

	pthread_t th[DEMO_THREADS];
	int nth = 0;
	for (int i = 0; i < DEMO_THREADS; i++)
		if (pthread_create(&th[nth], NULL, traffic, (void *)(uintptr_t)i) == 0)
			nth++;
	struct timeval t0, now;
	gettimeofday(&t0, NULL);
	unsigned long last = 0;
	int afd = -1;
	bool tty = isatty(1);
	for (;;) {
		usleep(1000000);
		gettimeofday(&now, NULL);
		double el = (double)(now.tv_sec - t0.tv_sec) + (now.tv_usec - t0.tv_usec) / 1e6;
		unsigned long total = atomic_load(&totals.requests);
		unsigned long c = atomic_load(&totals.by_variant[0]);
		unsigned long t = atomic_load(&totals.by_variant[1]);
		char action[32];
		current_action(&afd, action, sizeof(action));
		printf("%s[%5.1fs] %7lu requests %6lu req/s  split %.1f%% / %.1f%%  errors %lu  "
		       "recommendation: %-11s%s",
		       tty ? "\r" : "", el, total, total - last,
		       total ? 100.0 * (double)c / (double)total : 0.0,
		       total ? 100.0 * (double)t / (double)total : 0.0,
		       atomic_load(&totals.errors), action, tty ? "" : "\n");
		fflush(stdout);
		last = total;
		if (stop_requested || el >= duration)
			break;
	}
	if (afd >= 0)
		close(afd);
	bool interrupted = stop_requested;
	stop_requested = 1;
	for (int i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	printf("%s\n", tty ? "" : "");
	/* stop the proxy first so that it flushes the outcome log */
	kill(children[2], SIGTERM);
	waitpid(children[2], NULL, 0);
	children[2] = 0;
	nchildren = 2;
	stop_children();
	if (lf != NULL)
		fclose(lf);
	if (interrupted) {
		printf("abgate demo: interrupted; every process it started is stopped\n");
		return 130;
	}
	printf("%lu requests (%lu errors), %lu outcomes posted; clicks %lu / %lu\n\n",
	       atomic_load(&totals.requests), atomic_load(&totals.errors),
	       atomic_load(&totals.outcomes_posted), atomic_load(&totals.clicks[0]),
	       atomic_load(&totals.clicks[1]));
	fflush(stdout);
	char a0[] = "report", a1[] = "-c", a2[] = "var/demo/demo.yaml", a3[] = "var/demo/outcomes.jsonl";
	char *rargv[] = {a0, a1, a2, a3, NULL};
	int rc = report_main(4, rargv);
	printf("\nThe outcome log is %s; `abgate report -c %s %s --format html -o report.html` "
	       "writes the HTML report.\n", log_path, conf_path, log_path);
	return rc;
}
