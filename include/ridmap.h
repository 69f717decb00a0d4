/*
 * ridmap.h - a bounded, time-windowed map from short byte keys (request ids) to a small value
 * (the (experiment, variant) pair a request was served), that never confuses two keys and
 * never forgets one inside its window while it has room.
 *
 * The data path puts every request id of an experiment with the pair it was served; the admin
 * thread looks ids up when an outcome names only its request. POST /outcomes also keeps the
 * keys of the outcomes it recorded in a second map (outcome.h), for deduplication.
 *
 * Layout: the map is cut into shards by the top bits of the key's 64-bit hash, each with its
 * own mutex (a put takes one uncontended lock, never a lock shared by all workers). A shard is
 * a FIFO ring of 48-byte records (the key bytes are kept whole and compared on lookup, so two
 * keys never collide) indexed by an open-addressing table of 32-bit positions (linear probing,
 * at most half full). A key of up to RIDMAP_INLINE bytes takes one record, a longer one (up to
 * RIDMAP_KEY_MAX) two. A key falls out of its shard, oldest first, when it is older than the
 * window (expired) or when the shard needs its room for a newer one (evicted, at the maximum);
 * its 64-bit fingerprint is then kept in a second, smaller ring so that a later lookup can say
 * which of the two happened, for as many fallen keys as the shard holds live ones.
 *
 * Memory, fixed at creation (calloc'd, so pages are touched only as the rings fill):
 * RIDMAP_BYTES_PER_KEY bytes per key of capacity: the 48-byte record, its 8-byte hash, 8 bytes
 * of index, and 16 bytes (fingerprint and index) for the fallen-key ring.
 */
#ifndef ABGATE_RIDMAP_H
#define ABGATE_RIDMAP_H

#include <stddef.h>
#include <stdint.h>

/* Longest key kept in one record, and longest key kept at all (two records). */
#define RIDMAP_INLINE 40
#define RIDMAP_KEY_MAX 88
/* Bytes of memory per key of capacity (see above). */
#define RIDMAP_BYTES_PER_KEY 80
/* Shards of a map made with nshards = 0. */
#define RIDMAP_SHARDS 64

struct ridmap;

enum ridmap_result {
	RIDMAP_FOUND,   /* *value set */
	RIDMAP_UNKNOWN, /* never put, or fallen out so long ago that the map forgot it */
	RIDMAP_EXPIRED, /* put, but older than the window */
	RIDMAP_EVICTED, /* put, then pushed out by newer keys at the maximum */
};

struct ridmap_stats {
	uint64_t puts;    /* keys put */
	uint64_t expired; /* keys that fell out by age */
	uint64_t evicted; /* keys that fell out for room */
	uint64_t keys;    /* keys held now */
	uint64_t bytes;   /* memory reserved for the map */
};

/*
 * A map of max_keys keys (keys of up to RIDMAP_INLINE bytes; a longer key counts twice) kept
 * for window_s seconds, in nshards shards (a power of two up to 64; 0: RIDMAP_SHARDS); each
 * shard holds max_keys / nshards of them, rounded up. Returns the map (owned by the caller,
 * freed by ridmap_free) or NULL when out of memory or given nonsense (max_keys or window_s 0).
 */
struct ridmap *ridmap_new(uint32_t max_keys, uint32_t window_s, unsigned nshards);
/* Frees the map; NULL is allowed. No thread may be using it. */
void ridmap_free(struct ridmap *m);

/*
 * Puts key[0..len) with value (0..65535) at monotonic time now_us (worker_clock_us's clock);
 * a key already held is replaced. Keys longer than RIDMAP_KEY_MAX, and a NULL map, are
 * ignored. Thread-safe: takes the key's shard lock once; no allocation, no system call.
 */
void ridmap_put(struct ridmap *m, const char *key, size_t len, int value, uint64_t now_us);

/* Looks key up at monotonic time now_us; on RIDMAP_FOUND sets *value. Thread-safe. */
enum ridmap_result ridmap_get(struct ridmap *m, const char *key, size_t len, uint64_t now_us,
			      int *value);

/* The window the map was made with. */
uint32_t ridmap_window(const struct ridmap *m);

/* Drops the ids older than the window at monotonic time now_us from every shard (puts and
 * lookups drop those they meet; this counts the rest, for the metrics). Thread-safe. */
void ridmap_sweep(struct ridmap *m, uint64_t now_us);

/* Counters and sizes summed over the shards (takes each shard lock in turn). */
void ridmap_stats(struct ridmap *m, struct ridmap_stats *st);

/* The map's 64-bit hash of a key (also what outcome keys are built from). */
uint64_t ridmap_hash(const void *key, size_t len, uint64_t seed);

#endif
