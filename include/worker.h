/*
 * worker.h - an event-loop thread: its listeners (SO_REUSEPORT), its sessions, its upstream
 * pools, its outcome-log staging buffer and its view of the configuration generation.
 *
 * Everything here belongs to one thread; the only shared state is the current generation
 * (taken under a lock when the process-wide sequence number changes) and the outcome-log queue.
 */
#ifndef ABGATE_WORKER_H
#define ABGATE_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "http.h"

struct conf;
struct event;
struct event_base;
struct outlog;
struct outlog_buf;
struct live_shard;
struct upstream_pools;
struct iobatch;
struct iobatch_result;
struct session;
struct shadow;

/* A generation as one worker uses it: the worker's requests in flight on it. */
struct gen {
	struct conf *conf; /* one reference held by this struct */
	uint32_t inflight;
	uint64_t seq;
	struct gen *next; /* retired generations still in use */
};

struct worker_listener {
	int fd;
	size_t index;     /* position in the configuration's listen list */
	struct event *ev;
	struct worker *w; /* (ref) */
};

/* A free list of equally sized I/O buffers, so that a request does not call malloc. */
struct buf_pool {
	char **free;
	uint32_t nfree, cap;
	uint32_t size; /* bytes per buffer */
};

/* Counters the owning thread updates and the admin thread reads: STAT_ADD is a relaxed load
 * and store (no locked instruction), since only the owner writes. */
#define STAT_ADD(field, n)                                                                         \
	atomic_store_explicit(&(field), atomic_load_explicit(&(field), memory_order_relaxed) + (n), \
			      memory_order_relaxed)
#define STAT_GET(field) atomic_load_explicit(&(field), memory_order_relaxed)

/* What an upstream connection's owner is: the first byte of a session and of a shadow. */
enum { OWNER_SESSION = 1, OWNER_SHADOW = 2 };

struct worker_stats {
	_Atomic uint64_t log_dropped;     /* request records that could not be formatted */
	_Atomic uint32_t sessions;        /* client connections open */
	_Atomic uint32_t active;          /* of which with a request in flight */
	_Atomic uint64_t shadow_compared; /* shadow answers compared and logged */
	_Atomic uint64_t shadow_failed;   /* shadow exchanges that failed or timed out */
	_Atomic uint64_t shadow_dropped;  /* sampled requests not mirrored (queue full, too large) */
};

#define WORKER_MAX_HEADERS 256

struct worker {
	int id;
	pthread_t thread;
	struct event_base *base;
	struct worker_listener *listeners;
	size_t nlisteners;
	struct event *tick;   /* periodic: flush the log staging buffer, reap retired gens */
	struct event *wake;   /* eventfd: drain/stop requests from the main thread */
	int wake_fd;

	struct gen *cur;      /* generation new requests start on */
	struct gen *retired;  /* older generations with requests still in flight */

	struct upstream_pools *pools;
	uint32_t *rr;         /* round-robin counters by the backend's first server id */
	int nrr;
	struct outlog_buf *olb; /* NULL without an outcome log */
	struct outlog_buf *alb; /* NULL without an access log */
	struct live_shard *live; /* this thread's live statistics */
	struct ridmap *rids;     /* (ref) the process's request-id map (ridmap.h), set before
				    the thread starts */
	struct buf_pool bufs;
	struct buf_pool big;  /* large buffers for bodies in flight (WORKER_BIG_BUF bytes each) */
	uint32_t big_inuse;   /* large buffers handed out, at most WORKER_BIG_MAX */
	uint32_t big_idle_ticks; /* ticks since a large buffer was last taken */

	/* parser scratch shared by this worker's sessions: a head is parsed in one go once a
	 * line end arrives, so no session keeps header spans across events */
	struct http_msg msg;
	struct http_header hdr[WORKER_MAX_HEADERS];

	uint64_t rng;         /* xorshift state (random units, request ids), never 0 */
	uint64_t now_us;      /* monotonic time (us) at the pass of the loop being handled, or
				 at the flush of its I/O: worker_clock_us() */
	bool clock_read;      /* now_us was read in this pass (cleared after each pass) */
	int64_t wall_offset_us; /* wall clock minus worker_clock_us(), refreshed every tick */
	struct session *sessions; /* all live sessions (for drain and shutdown) */
	struct shadow *shadows;   /* shadow exchanges in flight */
	uint32_t nshadows;
	uint32_t shadow_rr;       /* round robin over shadow servers */
	bool draining;
	bool accept_paused;
	bool started;
	uint32_t pause_ticks;
	atomic_bool stopped;
	struct worker_stats stats;

	/* socket writes of this pass of the loop, made together once the pass is over
	 * (proxy_flush); NULL iob: each write is made at once */
	struct iobatch *iob;
	atomic_bool io_uring_on; /* iob is in use (for the metrics) */
	struct session **wq;     /* sessions with a write waiting for the flush */
	struct session **wq_run; /* the ones being flushed */
	uint32_t nwq, nwq_run, wq_cap;
};

/* Creates worker id with its own event base and listeners for every listen address of conf.
 * The listeners use SO_REUSEPORT so every worker binds the same addresses. Returns NULL (and
 * logs why) on failure. */
struct worker *worker_new(int id, struct conf *conf, struct outlog *ol, struct outlog *access);
/* Starts the worker's thread. */
int worker_start(struct worker *w);
/* Asks the worker to stop accepting and exit once its sessions are done (or at once if
 * graceful is false). Thread-safe. */
void worker_stop(struct worker *w, bool graceful);
/* Joins the thread and frees the worker. */
void worker_free(struct worker *w);

/* Takes the newest generation if the process-wide sequence moved; called at request start. */
void worker_refresh_conf(struct worker *w);
/* The generation a new request starts on (refreshed first), held until worker_gen_put. */
struct gen *worker_gen_get(struct worker *w);
/* Drops a request's hold on g (frees it when retired and unused). */
void worker_gen_put(struct worker *w, struct gen *g);

/* Stops accepting for a moment (descriptors or memory ran out, or max_connections reached);
 * accepting resumes from the worker's tick once it is possible again. */
void worker_accept_pause(struct worker *w);

/* The worker's pseudo-random stream (xorshift64*): random units, request ids, sampling. */
uint64_t worker_rand(struct worker *w);

/* Buffers from the worker's pool (size w->bufs.size); NULL when memory is exhausted. */
char *worker_buf_get(struct worker *w);
void worker_buf_put(struct worker *w, char *b);

/*
 * Large buffers, for a body that streams through a connection: fewer, larger reads and writes
 * per megabyte. At most WORKER_BIG_MAX are out at once per worker (WORKER_BIG_MAX *
 * WORKER_BIG_BUF bytes), and at most WORKER_BIG_KEEP stay allocated for reuse, for no longer
 * than WORKER_BIG_IDLE_MS after the last one was taken; beyond the limit worker_bigbuf_get()
 * returns NULL and the body streams through the small buffers.
 */
#define WORKER_BIG_BUF (1024u * 1024)
#define WORKER_BIG_MAX 32u
#define WORKER_BIG_KEEP 4u
#define WORKER_BIG_IDLE_MS 1000u
char *worker_bigbuf_get(struct worker *w);
void worker_bigbuf_put(struct worker *w, char *b);

/*
 * Monotonic time in microseconds, read once per event: what latencies and deadlines are
 * measured in, so that a step of the wall clock can neither make a latency negative nor fire
 * a timeout early. The loop's own cached time is not used: it is either coarse (a few ms, too
 * coarse for request latencies) or, in libevent's precise mode, costs a timerfd_settime() on
 * every pass of the loop. clock_gettime() is served by the vDSO without entering the kernel.
 */
static inline uint64_t worker_clock_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The wall-clock time (us since the epoch) of monotonic time MONO, for records' timestamps. */
static inline uint64_t worker_wall_us(const struct worker *w, uint64_t mono)
{
	return (uint64_t)((int64_t)mono + w->wall_offset_us);
}

/* Re-reads the offset between the wall clock and worker_clock_us() (every tick). */
void worker_wall_refresh(struct worker *w);

#endif
