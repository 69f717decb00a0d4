/*
 * ridmap.c - the bounded, time-windowed request-id map (see include/ridmap.h).
 *
 * Per shard: a FIFO ring of records (the oldest at the tail, the next one written at the head;
 * a two-record key never wraps: a one-record filler takes the last record instead), the hash
 * of the key starting at each record, and an open-addressing index of record positions
 * (linear probing, deletion by backward shift, so no tombstones and lookups stay short). A key
 * put again kills its old record (its length set to 0) and is written anew at the head. Keys
 * fall out at the tail only: by age when a put or a lookup finds them older than the window,
 * for room when the ring is full. Their hashes go to the fallen-key ring (same scheme, 64-bit
 * fingerprints whose top bit says why), which forgets its oldest when full.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ridmap.h"

/* Times are kept as seconds of the monotonic clock plus this bias, so that keys replayed with
 * a time before the clock's origin still have one. */
#define T_BIAS (1u << 30)
#define TOP_BIT (1ull << 63)
#define NONE UINT32_MAX

struct rec {
	uint32_t t;     /* when the key was put (T_BIAS + monotonic seconds) */
	uint16_t value;
	uint8_t len;    /* key length; 0: no live key (killed, or a filler) */
	uint8_t span;   /* records this one takes: 1, or 2 for a key over RIDMAP_INLINE bytes
			   (its bytes from RIDMAP_INLINE on fill the next record whole) */
	char key[RIDMAP_INLINE];
};
_Static_assert(sizeof(struct rec) == 48, "a record is 48 bytes");

struct shard {
	pthread_mutex_t lock;
	struct rec *recs;   /* cap records */
	uint64_t *hash;     /* cap: the hash of the key whose first record is at that position */
	uint32_t *idx;      /* nidx: record position + 1, 0 empty */
	uint64_t *fallen;   /* cap: fingerprints of fallen keys (TOP_BIT set: evicted) */
	uint32_t *fidx;     /* nidx: fallen-ring position + 1, 0 empty */
	uint32_t cap, nidx;
	uint32_t head, used;   /* next record to write; records in use (live, killed, fillers) */
	uint32_t fhead, fused; /* the same for the fallen ring */
	uint64_t puts, expired, evicted, keys;
} __attribute__((aligned(64)));

struct ridmap {
	struct shard *shards;
	unsigned nshards;
	unsigned shift; /* shard = hash >> shift (unused with one shard) */
	uint32_t window;
};

uint64_t ridmap_hash(const void *key, size_t len, uint64_t seed)
{
	const unsigned char *p = key;
	const uint64_t k = 0x9e3779b97f4a7c15ull;
	uint64_t h = (seed ^ len) * k, w;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		memcpy(&w, p + i, 8);
		h = (h ^ w) * k;
		h ^= h >> 29;
	}
	if (i < len) {
		w = 0;
		memcpy(&w, p + i, len - i);
		h = (h ^ w) * k;
		h ^= h >> 29;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	return h ^ (h >> 31);
}

static inline uint32_t to_t(uint64_t now_us)
{
	return (uint32_t)(now_us / 1000000u) + T_BIAS;
}

/* Where a hash starts probing in an index of n entries (its low 32 bits; the shard took the
 * top ones, and the fallen ring's reason bit is the top one). */
static inline uint32_t home(uint64_t h, uint32_t n)
{
	return (uint32_t)(((h & 0xffffffffu) * (uint64_t)n) >> 32);
}

static inline bool older_than(uint32_t t, uint32_t now, uint32_t window)
{
	return (int64_t)now - (int64_t)t > (int64_t)window;
}

static void idx_insert(uint32_t *idx, uint32_t n, uint64_t h, uint32_t pos)
{
	uint32_t i = home(h, n);

	while (idx[i] != 0)
		if (++i == n)
			i = 0;
	idx[i] = pos + 1;
}

/* Removes position pos (whose hash is hashes[pos]) from the index, shifting back the entries
 * that probed past it so that every entry stays reachable from its home. */
static void idx_remove(uint32_t *idx, uint32_t n, const uint64_t *hashes, uint32_t pos)
{
	uint32_t i = home(hashes[pos], n), j;

	while (idx[i] != pos + 1) {
		if (idx[i] == 0)
			return; /* not indexed: nothing to do */
		if (++i == n)
			i = 0;
	}
	for (j = i;;) {
		if (++j == n)
			j = 0;
		uint32_t v = idx[j];
		if (v == 0)
			break;
		uint32_t k = home(hashes[v - 1], n);
		/* the entry at j stays when its home lies cyclically in (i, j] */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		idx[i] = v;
		i = j;
	}
	idx[i] = 0;
}

static bool key_eq(const struct shard *s, uint32_t p, const char *key, size_t len)
{
	const struct rec *r = &s->recs[p];
	size_t a = len < RIDMAP_INLINE ? len : RIDMAP_INLINE;

	if (r->len != len || memcmp(r->key, key, a) != 0)
		return false;
	return len == a || memcmp((const char *)&s->recs[p + 1], key + a, len - a) == 0;
}

/* The index entry of the live key key, or NONE. */
static uint32_t find(const struct shard *s, uint64_t h, const char *key, size_t len)
{
	for (uint32_t i = home(h, s->nidx);;) {
		uint32_t v = s->idx[i];
		if (v == 0)
			return NONE;
		if (s->hash[v - 1] == h && key_eq(s, v - 1, key, len))
			return v - 1;
		if (++i == s->nidx)
			i = 0;
	}
}

/* Remembers that the key of hash h fell out (evicted: for room, else by age). */
static void fallen_push(struct shard *s, uint64_t h, bool evicted)
{
	if (s->fused == s->cap) {
		uint32_t oldest = (s->fhead + s->cap - s->fused) % s->cap;
		idx_remove(s->fidx, s->nidx, s->fallen, oldest);
		s->fused--;
	}
	s->fallen[s->fhead] = (h & ~TOP_BIT) | (evicted ? TOP_BIT : 0);
	idx_insert(s->fidx, s->nidx, h, s->fhead);
	s->fhead = s->fhead + 1 == s->cap ? 0 : s->fhead + 1;
	s->fused++;
}

/* RIDMAP_EXPIRED or RIDMAP_EVICTED for a remembered fallen key, else RIDMAP_UNKNOWN. */
static enum ridmap_result fallen_find(const struct shard *s, uint64_t h)
{
	for (uint32_t i = home(h, s->nidx);;) {
		uint32_t v = s->fidx[i];
		if (v == 0)
			return RIDMAP_UNKNOWN;
		uint64_t fp = s->fallen[v - 1];
		if ((fp & ~TOP_BIT) == (h & ~TOP_BIT))
			return fp & TOP_BIT ? RIDMAP_EVICTED : RIDMAP_EXPIRED;
		if (++i == s->nidx)
			i = 0;
	}
}

/* Drops the record at the tail; a live key in it falls out (evicted: for room). */
static void drop_oldest(struct shard *s, bool evicted)
{
	uint32_t t = (s->head + s->cap - s->used) % s->cap;
	struct rec *r = &s->recs[t];

	if (r->len != 0) {
		idx_remove(s->idx, s->nidx, s->hash, t);
		fallen_push(s, s->hash[t], evicted);
		if (evicted)
			s->evicted++;
		else
			s->expired++;
		s->keys--;
		r->len = 0;
	}
	s->used -= r->span;
}

/* Drops the records at the tail that hold no live key or a key older than the window. */
static void sweep(struct shard *s, uint32_t now, uint32_t window)
{
	while (s->used > 0) {
		const struct rec *r = &s->recs[(s->head + s->cap - s->used) % s->cap];
		if (r->len != 0 && !older_than(r->t, now, window))
			break;
		drop_oldest(s, false);
	}
}

static struct shard *shard_of(const struct ridmap *m, uint64_t h)
{
	return &m->shards[m->nshards == 1 ? 0 : h >> m->shift];
}

void ridmap_put(struct ridmap *m, const char *key, size_t len, int value, uint64_t now_us)
{
	if (m == NULL || len == 0 || len > RIDMAP_KEY_MAX)
		return;
	uint64_t h = ridmap_hash(key, len, 0);
	struct shard *s = shard_of(m, h);
	uint32_t now = to_t(now_us), span = len > RIDMAP_INLINE ? 2 : 1;

	pthread_mutex_lock(&s->lock);
	s->puts++;
	sweep(s, now, m->window);
	uint32_t old = find(s, h, key, len);
	if (old != NONE) { /* the newest request with this id is the one an outcome means */
		idx_remove(s->idx, s->nidx, s->hash, old);
		s->recs[old].len = 0;
		s->keys--;
	}
	if (span == 2 && s->head == s->cap - 1) {
		if (s->used == s->cap)
			drop_oldest(s, true);
		s->recs[s->head] = (struct rec){.span = 1};
		s->head = 0;
		s->used++;
	}
	while (s->cap - s->used < span)
		drop_oldest(s, true);
	uint32_t p = s->head;
	struct rec *r = &s->recs[p];
	size_t a = len < RIDMAP_INLINE ? len : RIDMAP_INLINE;
	r->t = now;
	r->value = (uint16_t)value;
	r->len = (uint8_t)len;
	r->span = (uint8_t)span;
	memcpy(r->key, key, a);
	if (len > a)
		memcpy(&s->recs[p + 1], key + a, len - a);
	s->hash[p] = h;
	idx_insert(s->idx, s->nidx, h, p);
	s->head = (p + span) % s->cap;
	s->used += span;
	s->keys++;
	pthread_mutex_unlock(&s->lock);
}

enum ridmap_result ridmap_get(struct ridmap *m, const char *key, size_t len, uint64_t now_us,
			      int *value)
{
	enum ridmap_result res;

	if (m == NULL || len == 0 || len > RIDMAP_KEY_MAX)
		return RIDMAP_UNKNOWN;
	uint64_t h = ridmap_hash(key, len, 0);
	struct shard *s = shard_of(m, h);
	uint32_t now = to_t(now_us);

	pthread_mutex_lock(&s->lock);
	sweep(s, now, m->window);
	uint32_t p = find(s, h, key, len);
	if (p == NONE) {
		res = fallen_find(s, h);
	} else if (older_than(s->recs[p].t, now, m->window)) {
		res = RIDMAP_EXPIRED; /* behind a younger record at the tail: not swept yet */
	} else {
		*value = s->recs[p].value;
		res = RIDMAP_FOUND;
	}
	pthread_mutex_unlock(&s->lock);
	return res;
}

uint32_t ridmap_window(const struct ridmap *m)
{
	return m->window;
}

void ridmap_sweep(struct ridmap *m, uint64_t now_us)
{
	for (unsigned i = 0; m != NULL && i < m->nshards; i++) {
		struct shard *s = &m->shards[i];
		pthread_mutex_lock(&s->lock);
		sweep(s, to_t(now_us), m->window);
		pthread_mutex_unlock(&s->lock);
	}
}

void ridmap_stats(struct ridmap *m, struct ridmap_stats *st)
{
	memset(st, 0, sizeof(*st));
	for (unsigned i = 0; m != NULL && i < m->nshards; i++) {
		struct shard *s = &m->shards[i];
		pthread_mutex_lock(&s->lock);
		st->puts += s->puts;
		st->expired += s->expired;
		st->evicted += s->evicted;
		st->keys += s->keys;
		st->bytes += (uint64_t)s->cap * (sizeof(struct rec) + 2 * sizeof(uint64_t)) +
			     (uint64_t)s->nidx * 2 * sizeof(uint32_t);
		pthread_mutex_unlock(&s->lock);
	}
}

void ridmap_free(struct ridmap *m)
{
	if (m == NULL)
		return;
	for (unsigned i = 0; m->shards != NULL && i < m->nshards; i++) {
		struct shard *s = &m->shards[i];
		free(s->recs);
		free(s->hash);
		free(s->idx);
		free(s->fallen);
		free(s->fidx);
		pthread_mutex_destroy(&s->lock);
	}
	free(m->shards);
	free(m);
}

struct ridmap *ridmap_new(uint32_t max_keys, uint32_t window_s, unsigned nshards)
{
	if (nshards == 0)
		nshards = RIDMAP_SHARDS;
	if (max_keys == 0 || window_s == 0 || nshards > 64 || (nshards & (nshards - 1)) != 0)
		return NULL;
	struct ridmap *m = calloc(1, sizeof(*m));
	void *mem = NULL;
	if (m == NULL || posix_memalign(&mem, 64, nshards * sizeof(struct shard)) != 0) {
		free(m);
		return NULL;
	}
	m->shards = memset(mem, 0, nshards * sizeof(struct shard));
	m->nshards = nshards;
	m->window = window_s;
	for (unsigned b = nshards; b > 1; b >>= 1)
		m->shift++;
	m->shift = 64 - m->shift;
	/* at least two records a shard, so that a two-record key always fits */
	uint32_t cap = (uint32_t)(((uint64_t)max_keys + nshards - 1) / nshards);
	if (cap < 2)
		cap = 2;
	for (unsigned i = 0; i < nshards; i++) {
		struct shard *s = &m->shards[i];
		pthread_mutex_init(&s->lock, NULL);
		s->cap = cap;
		s->nidx = 2 * cap;
		s->recs = calloc(cap, sizeof(*s->recs));
		s->hash = calloc(cap, sizeof(*s->hash));
		s->idx = calloc(s->nidx, sizeof(*s->idx));
		s->fallen = calloc(cap, sizeof(*s->fallen));
		s->fidx = calloc(s->nidx, sizeof(*s->fidx));
		if (s->recs == NULL || s->hash == NULL || s->idx == NULL || s->fallen == NULL ||
		    s->fidx == NULL) {
			m->nshards = i + 1;
			ridmap_free(m);
			return NULL;
		}
	}
	return m;
}
