/*
 * server.h - the `serve` command: the process-wide configuration generation, worker threads,
 * signals (SIGHUP reload, SIGTERM/SIGINT drain, SIGUSR1 reopen logs) and the admin listener.
 */
#ifndef ABGATE_SERVER_H
#define ABGATE_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conf;

/* Bumped each time a new generation is published. Workers compare it at request start. */
extern atomic_uint_fast64_t server_conf_seq;

/* Returns the current generation with a reference taken for the caller, and its sequence. */
struct conf *server_conf_acquire(uint64_t *seq);

/* Reloads the configuration file: 0 on success, -1 with the reason in err (the old generation
 * keeps serving). Main thread only. */
int server_reload(char *err, size_t errlen);

struct outlog;
struct live_shard;

/* The outcome log writer (NULL without one) and the main thread's live-statistics shard, where
 * posted outcomes are counted. Main thread. */
struct outlog *server_outlog(void);
struct live_shard *server_live(void);

struct ridmap;
/* The request-id map the workers write (request id -> the pair it was served), and the keys
 * of the outcomes recorded (deduplication, admin thread only); see ridmap.h and outcome.h. */
struct ridmap *server_rids(void);
struct ridmap *server_outcome_keys(void);

struct server_stats {
	uint64_t reloads_ok, reloads_failed;
	uint64_t log_dropped;   /* request records dropped (queue full) */
	uint32_t sessions;      /* client connections open, all workers */
	uint32_t active;        /* of which with a request in flight */
	uint32_t workers;
	uint32_t io_uring_workers; /* of which batch their socket I/O through io_uring */
	uint64_t shadow_compared, shadow_failed, shadow_dropped;
};
void server_stats_get(struct server_stats *st);

/* The admin bearer token in force (NULL: none required). Main thread. */
const char *server_admin_token(void);

/* True while the proxy accepts traffic (false once draining). */
bool server_ready(void);

int server_main(int argc, char **argv);

#endif
