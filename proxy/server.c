/*
 * server.c - the `serve` command (see include/server.h).
 *
 * The main thread owns the configuration file, the signals and the admin listener; worker
 * threads carry the traffic. A reload builds the new generation beside the old one and swaps
 * one pointer under a lock; workers notice the new sequence number at their next request.
 */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "admin.h"
#include "conf.h"
#include "evaluate.h"
#include "health.h"
#include "httpd.h"
#include "live.h"
#include "log.h"
#include "net.h"
#include "outlog.h"
#include "replay.h"
#include "ridmap.h"
#include "rollout.h"
#include "router.h"
#include "server.h"
#include "tls.h"
#include "upstream.h"
#include "worker.h"

atomic_uint_fast64_t server_conf_seq;

static struct conf *current;
static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;

static struct {
	const char *conf_path;
	struct event_base *base;
	struct worker **workers;
	uint32_t nworkers;
	struct outlog *outlog;
	struct outlog *access;
	struct live_shard *live;
	struct ridmap *rids;         /* request id -> pair served, written by the workers */
	struct ridmap *outcome_keys; /* keys of recorded outcomes (deduplication), admin only */
	struct httpd *admin;
	struct health *health;
	struct event *drain_timer;
	bool draining;
	uint64_t reloads_ok, reloads_failed;
	char *admin_token;
} srv;

struct conf *server_conf_acquire(uint64_t *seq)
{
	pthread_mutex_lock(&current_lock);
	struct conf *c = conf_ref(current);
	*seq = atomic_load(&server_conf_seq);
	pthread_mutex_unlock(&current_lock);
	return c;
}

struct outlog *server_outlog(void)
{
	return srv.outlog;
}

struct live_shard *server_live(void)
{
	return srv.live;
}

struct ridmap *server_rids(void)
{
	return srv.rids;
}

struct ridmap *server_outcome_keys(void)
{
	return srv.outcome_keys;
}

void server_stats_get(struct server_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->reloads_ok = srv.reloads_ok;
	st->reloads_failed = srv.reloads_failed;
	st->workers = srv.nworkers;
	st->log_dropped = srv.outlog != NULL ? outlog_dropped(srv.outlog) : 0;
	for (uint32_t i = 0; i < srv.nworkers; i++) {
		struct worker *w = srv.workers[i];
		if (w == NULL)
			continue;
		st->sessions += STAT_GET(w->stats.sessions);
		st->active += STAT_GET(w->stats.active);
		st->log_dropped += STAT_GET(w->stats.log_dropped);
		st->shadow_compared += STAT_GET(w->stats.shadow_compared);
		st->shadow_failed += STAT_GET(w->stats.shadow_failed);
		st->shadow_dropped += STAT_GET(w->stats.shadow_dropped);
		st->io_uring_workers += atomic_load(&w->io_uring_on) ? 1 : 0;
	}
}

const char *server_admin_token(void)
{
	return srv.admin_token;
}

/*
 * Reads the admin token of c into *token (NULL without token_file). Returns 0, or -1 with the
 * reason in err. A file that others may read is accepted with a warning.
 */
static int load_token(const struct conf *c, char **token, char *err, size_t errlen)
{
	char buf[4097];
	struct stat st;

	*token = NULL;
	if (c->admin_token_file == NULL)
		return 0;
	FILE *f = fopen(c->admin_token_file, "r");
	if (f == NULL) {
		snprintf(err, errlen, "%s: admin.token_file %s: %s", c->path, c->admin_token_file,
			 strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077) != 0)
		log_warnx("admin.token_file %s can be read by other users (mode %03o): chmod 600 it",
			  c->admin_token_file, (unsigned)(st.st_mode & 0777));
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
			 buf[n - 1] == '\t'))
		buf[--n] = '\0';
	if (n == 0 || n == sizeof(buf) - 1 || strcspn(buf, " \t\r\n") != n) {
		snprintf(err, errlen, "%s: admin.token_file %s: must hold one token of 1 to 4096 "
				      "non-blank characters", c->path, c->admin_token_file);
		return -1;
	}
	if ((*token = strdup(buf)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

bool server_ready(void)
{
	return !srv.draining;
}

static void publish(struct conf *c)
{
	pthread_mutex_lock(&current_lock);
	struct conf *old = current;
	current = c;
	atomic_fetch_add_explicit(&server_conf_seq, 1, memory_order_release);
	pthread_mutex_unlock(&current_lock);
	conf_unref(old);
}

/* One config record per experiment: the weights in force from now on. */
static void log_config_records(const struct conf *c)
{
	char line[8192];
	struct timeval tv;

	if (srv.outlog == NULL)
		return;
	gettimeofday(&tv, NULL);
	for (size_t i = 0; i < c->nexperiments; i++) {
		const struct conf_experiment *e = &c->experiments[i];
		const char *names[64];
		uint32_t weights[64];
		size_t n = e->nvariants < 64 ? e->nvariants : 64;
		for (size_t k = 0; k < n; k++) { /* a rollout decides the split, not the YAML */
			names[k] = e->variants[k].name;
			weights[k] = rollout_weight_bp(e, k);
		}
		size_t len = outlog_format_config(line, sizeof(line), &tv, c->generation, e->name,
						  names, weights, n);
		if (len == 0 || outlog_write_block(srv.outlog, line, len) < 0)
			log_error("outcome log: cannot queue the config record of %s", e->name);
	}
}

static bool same_listeners(const struct conf *a, const struct conf *b)
{
	if (a->nlistens != b->nlistens)
		return false;
	for (size_t i = 0; i < a->nlistens; i++)
		if (strcmp(a->listens[i].addr.text, b->listens[i].addr.text) != 0)
			return false;
	return true;
}

static void warn_ramp(void *arg, const struct conf_experiment *e, const char *msg)
{
	log_warnx("reload: experiment %s: %s", e->name, msg);
}

int server_reload(char *err, size_t errlen)
{
	struct conf *n = NULL;
	uint64_t seq;

	if (conf_load(srv.conf_path, &n, err, errlen) < 0 || tls_prepare_conf(n, err, errlen) < 0) {
		conf_free(n);
		srv.reloads_failed++;
		log_error("reload failed, the running configuration stays: %s", err);
		return -1;
	}
	if (upstream_register_conf(n) < 0 || live_register_conf(n) < 0) {
		snprintf(err, errlen, "%s: too many upstream servers or experiment variants",
			 srv.conf_path);
		conf_free(n);
		srv.reloads_failed++;
		log_error("reload failed: %s", err);
		return -1;
	}
	char *token;
	if (load_token(n, &token, err, errlen) < 0) {
		conf_free(n);
		srv.reloads_failed++;
		log_error("reload failed, the running configuration stays: %s", err);
		return -1;
	}
	free(srv.admin_token);
	srv.admin_token = token;
	struct conf *old = server_conf_acquire(&seq);
	n->generation = old->generation + 1;
	if (!same_listeners(old, n))
		log_warnx("reload: listen addresses change only with a restart");
	if (old->workers != n->workers)
		log_warnx("reload: the number of workers changes only with a restart");
	if (old->io_uring != n->io_uring)
		log_warnx("reload: io_uring changes only with a restart");
	if ((old->log_outcomes == NULL) != (n->log_outcomes == NULL) ||
	    (old->log_outcomes && strcmp(old->log_outcomes, n->log_outcomes) != 0) ||
	    (old->log_access == NULL) != (n->log_access == NULL) ||
	    (old->log_access && strcmp(old->log_access, n->log_access) != 0))
		log_warnx("reload: log file paths change only with a restart");
	if (old->log_max_pending != n->log_max_pending)
		log_warnx("reload: log.max_pending_bytes changes only with a restart");
	router_ramp_check(old, n, warn_ramp, NULL);
	if (old->outcomes_rid_window_s != n->outcomes_rid_window_s ||
	    old->outcomes_max_rids != n->outcomes_max_rids)
		log_warnx("reload: outcomes.rid_window_s and outcomes.max_rids change only with a "
			  "restart");
	conf_unref(old);
	if (rollout_apply(n) < 0) {
		snprintf(err, errlen, "%s: cannot set up the rollouts (out of memory)", srv.conf_path);
		conf_free(n);
		srv.reloads_failed++;
		return -1;
	}
	publish(n);
	if (evaluate_apply(n) < 0)
		log_error("reload: some experiments will not be evaluated periodically (out of "
			  "memory)");
	health_apply(srv.health, n);
	log_config_records(n);
	srv.reloads_ok++;
	log_info("reloaded %s: generation %llu", srv.conf_path, (unsigned long long)n->generation);
	return 0;
}

static void stop_now(void)
{
	for (uint32_t i = 0; i < srv.nworkers; i++)
		worker_stop(srv.workers[i], false);
	event_base_loopbreak(srv.base);
}

static void drain_check_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t *deadline_ticks = arg;
	bool all = true;

	for (uint32_t i = 0; i < srv.nworkers; i++)
		all &= atomic_load(&srv.workers[i]->stopped);
	if (all || --*deadline_ticks == 0) {
		if (!all)
			log_warnx("drain timeout: closing the connections still open");
		stop_now();
	}
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	char err[1024];

	switch (sig) {
	case SIGHUP:
		(void)server_reload(err, sizeof(err));
		break;
	case SIGUSR1:
		if (log_reopen() < 0)
			log_warn("reopen error log");
		if (srv.outlog != NULL)
			outlog_reopen(srv.outlog);
		if (srv.access != NULL)
			outlog_reopen(srv.access);
		log_info("log files reopened");
		break;
	case SIGTERM:
	case SIGINT:
		if (srv.draining) {
			stop_now();
			break;
		}
		srv.draining = true;
		log_info("draining: no new connections, finishing requests in flight");
		for (uint32_t i = 0; i < srv.nworkers; i++)
			worker_stop(srv.workers[i], true);
		{
			static uint64_t ticks;
			uint64_t cur_seq;
			struct conf *c = server_conf_acquire(&cur_seq);
			ticks = c->drain_timeout_ms / 50 + 1;
			conf_unref(c);
			struct timeval tv = {0, 50000};
			srv.drain_timer = event_new(srv.base, -1, EV_PERSIST, drain_check_cb, &ticks);
			if (srv.drain_timer == NULL || event_add(srv.drain_timer, &tv) < 0)
				stop_now();
		}
		break;
	}
}

/* Refuses to share a port with another process: SO_REUSEPORT would let two instances split
 * the traffic silently. */
static int probe_listeners(const struct conf *c)
{
	for (size_t i = 0; i < c->nlistens; i++) {
		const struct conf_addr *a = &c->listens[i].addr;
		int fd = net_listen((const struct sockaddr *)&a->ss, a->sslen, false, 1);
		if (fd < 0) {
			fprintf(stderr, "abgate serve: cannot listen on %s: %s\n", a->text,
				strerror(errno));
			return -1;
		}
		close(fd);
	}
	return 0;
}

/* Creates the directory that will hold path, when missing (var/ on a fresh checkout). */
static void make_parent_dir(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');

	if (slash == NULL || slash == path || (size_t)(slash - path) >= sizeof(dir))
		return;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	for (char *p = dir + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(dir, 0755);
			*p = '/';
		}
	}
	mkdir(dir, 0755);
}

/* Puts back the request ids and outcome keys of the outcome log's window (replay.h). */
static void replay_tail(const struct conf *c)
{
	struct replay_counts n;
	struct timeval tv;
	struct timespec t0, t1;

	gettimeofday(&tv, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	uint64_t wall = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
	uint64_t mono = (uint64_t)t0.tv_sec * 1000000u + (uint64_t)t0.tv_nsec / 1000u;
	if (replay_outcome_log(c->log_outcomes, c, srv.rids, srv.outcome_keys, wall, mono, &n) < 0)
		log_warn("outcome log %s: cannot read its tail (request ids and outcome keys of "
			 "the last %u s are not known)", c->log_outcomes, c->outcomes_rid_window_s);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (n.bytes > 0)
		log_info("outcome log %s: the last %u s put back: %llu request ids, %llu outcome "
			 "keys (%.1f MB read in %.2f s)",
			 c->log_outcomes, c->outcomes_rid_window_s, (unsigned long long)n.requests,
			 (unsigned long long)n.outcomes, n.bytes / 1e6,
			 (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: abgate serve -c FILE\n"
		   "  Runs the proxy in the foreground.\n"
		   "  SIGHUP or POST /reload: reload FILE (a bad file keeps the running one)\n"
		   "  SIGTERM/SIGINT: stop accepting, finish requests in flight, exit 0\n"
		   "  SIGUSR1: reopen the log files (after rotation)\n");
}

int server_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	char err[1024];
	struct event *sigs[4] = {NULL};
	int rc = 2, ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			srv.conf_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "abgate serve: unknown option (see abgate serve --help)\n");
			return 1;
		}
	}
	if (srv.conf_path == NULL || optind != argc) {
		fprintf(stderr, "abgate serve: needs -c FILE and nothing else\n");
		return 1;
	}
	struct conf *c;
	if (conf_load(srv.conf_path, &c, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (tls_prepare_conf(c, err, sizeof(err)) < 0 ||
	    load_token(c, &srv.admin_token, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		conf_free(c);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	if (log_open(c->log_error) < 0) {
		fprintf(stderr, "abgate serve: cannot open error log %s: %s\n", c->log_error,
			strerror(errno));
		conf_free(c);
		return 1;
	}
	log_set_level((enum log_level)log_level_parse(c->log_level));
	if (upstream_register_conf(c) < 0 || live_register_conf(c) < 0 || probe_listeners(c) < 0) {
		conf_free(c);
		return 1;
	}
	if (c->log_outcomes != NULL) {
		make_parent_dir(c->log_outcomes);
		if ((srv.outlog = outlog_open(c->log_outcomes, c->log_fsync_ms, c->log_max_pending)) == NULL) {
			fprintf(stderr, "abgate serve: cannot open outcome log %s: %s\n",
				c->log_outcomes, strerror(errno));
			conf_free(c);
			rc = 1;
			goto out;
		}
	}
	if (c->log_access != NULL) {
		make_parent_dir(c->log_access);
		if ((srv.access = outlog_open(c->log_access, c->log_fsync_ms, c->log_max_pending)) == NULL) {
			fprintf(stderr, "abgate serve: cannot open access log %s: %s\n",
				c->log_access, strerror(errno));
			conf_free(c);
			rc = 1;
			goto out;
		}
	}
	if ((srv.base = event_base_new()) == NULL || (srv.live = live_shard_new()) == NULL ||
	    (srv.health = health_new(srv.base)) == NULL) {
		conf_free(c);
		goto out;
	}
	srv.rids = ridmap_new(c->outcomes_max_rids, c->outcomes_rid_window_s, 0);
	srv.outcome_keys = ridmap_new(c->outcomes_max_rids, c->outcomes_rid_window_s, 0);
	if (srv.rids == NULL || srv.outcome_keys == NULL) {
		fprintf(stderr, "abgate serve: cannot reserve the request-id maps (outcomes.max_rids "
				"%u: %llu MB)\n", c->outcomes_max_rids,
			(unsigned long long)c->outcomes_max_rids * RIDMAP_BYTES_PER_KEY * 2 >> 20);
		conf_free(c);
		goto out;
	}
	if (c->log_outcomes != NULL)
		replay_tail(c);
	rollout_init(srv.base, srv.outlog);
	evaluate_init(srv.base);
	if (rollout_apply(c) < 0 || evaluate_apply(c) < 0) {
		fprintf(stderr, "abgate serve: cannot set up the rollouts and evaluations (out of "
				"memory)\n");
		conf_free(c);
		goto out;
	}
	publish(c);
	log_config_records(c);
	health_apply(srv.health, c);
	srv.nworkers = c->workers;
	if ((srv.workers = calloc(srv.nworkers, sizeof(*srv.workers))) == NULL)
		goto out;
	for (uint32_t i = 0; i < srv.nworkers; i++) {
		if ((srv.workers[i] = worker_new((int)i, c, srv.outlog, srv.access)) == NULL) {
			fprintf(stderr, "abgate serve: cannot start worker %u (see the error log)\n", i);
			goto out;
		}
		srv.workers[i]->rids = srv.rids;
	}
	int afd = net_listen((const struct sockaddr *)&c->admin_addr.ss, c->admin_addr.sslen, false,
			     128);
	if (afd < 0) {
		fprintf(stderr, "abgate serve: cannot listen on admin %s: %s\n", c->admin_addr.text,
			strerror(errno));
		rc = 1;
		goto out;
	}
	struct httpd_opts ho = {
		.max_body = ADMIN_OUTCOMES_MAX_BYTES,
		.max_body_total = 4 * ADMIN_OUTCOMES_MAX_BYTES,
		.max_conns = 256,
		.head_timeout_ms = 5000,
		.head = admin_head,
		.server_name = "abgate",
	};
	if ((srv.admin = httpd_new(srv.base, afd, &ho, admin_handle, NULL)) == NULL)
		goto out;
	static const int signums[4] = {SIGHUP, SIGTERM, SIGINT, SIGUSR1};
	for (int i = 0; i < 4; i++) {
		sigs[i] = evsignal_new(srv.base, signums[i], signal_cb, NULL);
		if (sigs[i] == NULL || event_add(sigs[i], NULL) < 0)
			goto out;
	}
	for (uint32_t i = 0; i < srv.nworkers; i++) {
		if (worker_start(srv.workers[i]) < 0) {
			log_warn("start worker %u", i);
			goto out;
		}
	}
	for (size_t i = 0; i < c->nlistens; i++)
		log_info("listening on %s", c->listens[i].addr.text);
	log_info("admin on %s, %u worker(s), generation %llu", c->admin_addr.text, srv.nworkers,
		 (unsigned long long)c->generation);
	event_base_dispatch(srv.base);
	rc = 0;
out:
	if (srv.workers != NULL) {
		for (uint32_t i = 0; i < srv.nworkers; i++) {
			if (srv.workers[i] != NULL && srv.workers[i]->started && rc != 0)
				worker_stop(srv.workers[i], false);
			worker_free(srv.workers[i]);
		}
		free(srv.workers);
	}
	for (int i = 0; i < 4; i++)
		if (sigs[i] != NULL)
			event_free(sigs[i]);
	if (srv.drain_timer != NULL)
		event_free(srv.drain_timer);
	httpd_free(srv.admin);
	health_free(srv.health);
	live_shard_free(srv.live);
	ridmap_free(srv.rids);
	ridmap_free(srv.outcome_keys);
	srv.rids = srv.outcome_keys = NULL;
	outlog_close(srv.outlog);
	outlog_close(srv.access);
	free(srv.admin_token);
	srv.admin_token = NULL;
	/* their timers live on the main loop: freed before it */
	rollout_shutdown();
	evaluate_shutdown();
	if (srv.base != NULL)
		event_base_free(srv.base);
	pthread_mutex_lock(&current_lock);
	conf_unref(current);
	current = NULL;
	pthread_mutex_unlock(&current_lock);
	if (rc == 0)
		log_info("stopped");
	return rc;
}
