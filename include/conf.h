/*
 * conf.h - the configuration generation: YAML (libyaml) -> node tree with line/column ->
 * validated as a whole -> compiled into the immutable struct conf the proxy runs on.
 *
 * A generation is built beside the running one on reload and swapped in only when whole;
 * everything it owns (strings, arrays) is freed together by conf_free(). Requests hold a
 * reference (conf_ref/conf_unref) so in-flight requests finish on the generation they began with.
 *
 * Weights are percentages with at most two decimals; they are kept as integer basis points
 * (1 = 0.01% = one bucket of 10000) and compiled into contiguous bucket ranges [lo, hi) in
 * declared order, so raising the last variant's weight only moves users into it.
 */
#ifndef ABGATE_CONF_H
#define ABGATE_CONF_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CONF_BUCKETS 10000

struct rollout_rt;

/* A resolved socket address, as written in the file ("127.0.0.1:8080", "[::1]:80", "host:80"). */
struct conf_addr {
	char *text; /* as written, without any scheme */
	struct sockaddr_storage ss;
	socklen_t sslen;
};

struct conf_listen {
	struct conf_addr addr;
	char *tls_cert; /* NULL: plain HTTP */
	char *tls_key;
	void *tls_ctx;  /* the TLS context built from them by tls_prepare_conf() */
};

struct conf_server {
	struct conf_addr addr;
	bool tls;       /* "https://" */
	int id;         /* process-wide server id, assigned by upstream_register() after load */
};

struct conf_backend {
	char *name;
	struct conf_server *servers;
	size_t nservers;
	char *health_path;      /* NULL: no active health check */
	uint32_t health_interval_ms;
	uint32_t health_timeout_ms;
	uint32_t health_rise;   /* successes to mark a server up (default 2) */
	uint32_t health_fall;   /* failures to mark it down (default 3) */
	char *ca_file;          /* https upstreams: CA bundle (NULL: system default) */
	bool verify;            /* https upstreams: verify the certificate (default true) */
	void *tls_ctx;          /* https upstreams: client context built by tls_prepare_conf() */
};

enum conf_unit { CONF_UNIT_HEADER, CONF_UNIT_COOKIE, CONF_UNIT_QUERY };
enum conf_fallback { CONF_FB_CONTROL, CONF_FB_CLIENT_IP, CONF_FB_RANDOM, CONF_FB_COOKIE };
enum conf_metric_kind { CONF_METRIC_BINARY, CONF_METRIC_CONTINUOUS };
enum conf_metric_source {
	CONF_SRC_STATUS_5XX,
	CONF_SRC_STATUS_4XX,
	CONF_SRC_LATENCY_MS,
	CONF_SRC_OUTCOME,
};
enum conf_goal { CONF_GOAL_INCREASE, CONF_GOAL_DECREASE };

struct conf_variant {
	char *name;
	size_t name_len;
	struct conf_backend *backend; /* (ref) */
	uint32_t weight_bp;           /* basis points, 0..10000 */
	uint32_t lo, hi;              /* bucket range [lo, hi) (hash mode abgate) */
	double range_lo, range_hi;    /* the variant's range [lo, hi) in the hash mode's own
					 space (see struct conf_hash); empty for weight 0 */
	int id;                       /* process-wide (experiment, variant) id, set by
					 live_register_conf() after load */
};

struct conf_metric {
	char *name;
	enum conf_metric_kind kind;
	enum conf_metric_source source;
	enum conf_goal goal;
	bool guardrail;
	bool primary;
	bool has_margin;
	double margin;  /* relative non-inferiority margin, e.g. 0.02 */
	bool has_max;
	double max;     /* hard gate: rate (binary) or value (continuous, compared with p99) */
};

struct conf_decision {
	double alpha;          /* default 0.05 */
	uint64_t min_samples;  /* default 500 */
	double srm_alpha;      /* default 0.001 */
	bool sequential;       /* default false */
	bool on_srm_rollback;  /* on_srm: rollback (default investigate) */
	double sequential_n;   /* tuning N* of the mixture SPRT (default 5000, as GrowthBook) */
	uint32_t interval_s;   /* the daemon evaluates an A/B experiment this often (10) */
};

struct conf_shadow {
	struct conf_backend *backend; /* (ref) NULL: no shadow */
	double percent;
	char *compare_json_field;     /* NULL: compare status and body only */
	double compare_tolerance;
};

/*
 * How units are assigned to variants: abgate's own hash (the default) or an experimentation
 * SDK's, so the proxy agrees with the application's SDK. Each mode's space, in which the variants'
 * range_lo/range_hi are compiled in declared order:
 *   abgate       buckets 0..9999 (the variants' lo/hi)
 *   growthbook   [0, 1): hash(seed, unit, version); [c, c + coverage * w) per variant
 *   unleash      0..total-1: normalizedValue(group_id, unit, total, variant_seed) - 1, total
 *                the weights' sum in Unleash's per-mille (1000); rollout gates with seed 0
 *   optimizely   buckets 0..9999 over unit + experiment_id
 *   launchdarkly [0, 1): SHA-1 of key.salt.unit (or seed.unit); weights in 1/100000
 *   statsig      buckets 0..9999: SHA-256(salt.unit) % 10000
 *   eppo         shards 0..total_shards-1: MD5(salt-unit) % total_shards
 */
enum conf_hash_mode {
	CONF_HASH_ABGATE,
	CONF_HASH_GROWTHBOOK,
	CONF_HASH_UNLEASH,
	CONF_HASH_OPTIMIZELY,
	CONF_HASH_LAUNCHDARKLY,
	CONF_HASH_STATSIG,
	CONF_HASH_EPPO,
};

struct conf_hash {
	enum conf_hash_mode mode;
	char *text;            /* the SDK's key, seed or salt string (see below); NULL in abgate */
	size_t text_len;       /* growthbook seed, unleash group_id, optimizely experiment_id,
				  launchdarkly "key.salt" or "seed", statsig salt, eppo salt */
	int version;           /* growthbook hash version, 1 or 2 (default 1, as the SDK) */
	double coverage;       /* growthbook share of units in the experiment (default 1) */
	uint32_t rollout;      /* unleash gradual rollout percentage 0..100 (default 100) */
	uint32_t total_shards; /* eppo shards (default 10000); unleash: the weights' total, 1000 */
	uint32_t variant_seed; /* unleash variant hash seed: 86028157 (current clients, default) or
				  0 (clients before their late-2023 "new variant hashing") */
};

struct conf_rollout {
	bool enabled;
	double *steps; /* percentages, ascending, each in (0, 100], the last 100 */
	size_t nsteps;
	uint32_t interval_s;
	bool autostep;
	char *state_file;
};

struct conf_experiment {
	char *name;
	size_t name_len;
	char *match_path_prefix; /* NULL: any path */
	char *match_host;        /* NULL: any host; compared case-insensitively, port ignored */
	char *match_method;      /* NULL: any method */
	size_t match_path_prefix_len, match_host_len, match_method_len;
	enum conf_unit unit;
	char *unit_name;         /* header, cookie or query-parameter name */
	size_t unit_name_len;
	enum conf_fallback fallback;
	char *fallback_cookie;   /* cookie set by fallback: cookie (default: unit_name for cookie
				    units, else "abgate_uid") */
	size_t fallback_cookie_len;
	char *salt;              /* default: the name */
	size_t salt_len;
	bool allow_force;        /* honour X-Abgate-Force-Variant */
	struct conf_variant *variants; /* the first is the control */
	size_t nvariants;
	struct conf_metric *metrics;
	size_t nmetrics;
	struct conf_decision decision;
	struct conf_shadow shadow;
	struct conf_rollout rollout;
	struct conf_hash hash;   /* the assignment mode; router_assign() reads it */
	int line; /* where the experiment starts in the file */
	struct rollout_rt *rt; /* (ref) the running rollout's state, set by rollout_apply();
				  NULL without a rollout */
};

struct conf_limits {
	uint32_t max_header_bytes;            /* 16384 */
	uint32_t max_headers;                 /* 100 */
	uint32_t max_request_line;            /* 8192 */
	uint64_t max_body_bytes;              /* 10485760 */
	uint32_t client_header_timeout_ms;    /* 10000: the whole request head */
	uint32_t client_timeout_ms;           /* 30000: between reads/writes while a request runs */
	uint32_t idle_timeout_ms;             /* 60000: keep-alive between requests */
	uint32_t upstream_connect_timeout_ms; /* 1000 */
	uint32_t upstream_timeout_ms;         /* 30000 */
	uint32_t max_connections;             /* 10000 per worker */
};

struct conf {
	char *path;            /* the file it came from */
	uint64_t generation;   /* 1 at start, +1 for each successful reload */
	atomic_uint refs;

	struct conf_listen *listens;
	size_t nlistens;
	struct conf_addr admin_addr;  /* default 127.0.0.1:9901 */
	char *admin_token_file;       /* NULL: no authentication */
	uint32_t workers;             /* default 1 */
	bool io_uring;                /* batch each loop pass's socket I/O (default true) */
	uint32_t drain_timeout_ms;    /* default 10000 */

	char *log_error;              /* "stderr" default */
	char *log_level;              /* "info" default */
	char *log_outcomes;           /* NULL: no outcome log */
	char *log_access;             /* NULL: no access log */
	uint32_t log_fsync_ms;        /* default 200; 0 = never fsync */
	uint64_t log_max_pending;     /* bytes a log may queue unwritten; default 64 MiB */

	struct conf_limits limits;

	/* outcomes: how long, and how many, request ids (and posted outcomes' keys, for
	 * deduplication) are remembered; a restart applies a change */
	uint32_t outcomes_rid_window_s; /* default 3600 */
	uint32_t outcomes_max_rids;     /* default 2000000 */

	struct conf_backend *backends;
	size_t nbackends;
	struct conf_backend *default_backend; /* (ref) NULL: unmatched requests get 404 */

	struct conf_experiment *experiments;
	size_t nexperiments;

	/* Frees what other modules attached to the generation (TLS contexts); called by
	 * conf_free() when set. */
	void (*release)(struct conf *c);
};

/*
 * Loads and validates PATH. On success returns 0 and stores a new generation (refs = 1, owned by
 * the caller) in *out. On failure returns -1 and writes "PATH:LINE:COL: message" (or
 * "PATH: message" for I/O errors) into err, *out untouched.
 */
int conf_load(const char *path, struct conf **out, char *err, size_t errlen);

/* Same as conf_load on an in-memory document; name stands for the path in messages. */
int conf_load_string(const char *name, const char *text, size_t len, struct conf **out, char *err,
		     size_t errlen);

/* Takes and drops references; the last conf_unref() frees the generation. NULL is allowed. */
struct conf *conf_ref(struct conf *c);
void conf_unref(struct conf *c);

/* Frees a generation regardless of its references (for load failures and tests). */
void conf_free(struct conf *c);

/* Lookups by name; NULL when absent. */
struct conf_backend *conf_backend_find(const struct conf *c, const char *name);
struct conf_experiment *conf_experiment_find(const struct conf *c, const char *name);
struct conf_variant *conf_variant_find(const struct conf_experiment *e, const char *name);

/* Parses "host:port" / "[v6]:port" into a; returns 0 or -1 with a reason in err. */
int conf_addr_parse(const char *text, struct conf_addr *a, char *err, size_t errlen);

#endif
