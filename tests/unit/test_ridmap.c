/*
 * test_ridmap.c - the request-id map (proxy/ridmap.c): no collisions, exact eviction order
 * and expiry by age, the reasons given for fallen ids, two-record ids and the wrap, a check
 * against a model of the ring, concurrent writers, the memory bound measured with the map
 * full, and the cost of a put.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "ridmap.h"

#define S 1000000ull /* one second in microseconds */

/* AddressSanitizer's shadow memory (an eighth more) shows in the resident size. */
#if defined(__SANITIZE_ADDRESS__)
#define SHADOW_SHARE 8
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SHADOW_SHARE 8
#endif
#endif
#ifndef SHADOW_SHARE
#define SHADOW_SHARE 0
#endif

static enum ridmap_result get(struct ridmap *m, const char *k, uint64_t now, int *v)
{
	*v = -1;
	return ridmap_get(m, k, strlen(k), now, v);
}

static void put(struct ridmap *m, const char *k, int v, uint64_t now)
{
	ridmap_put(m, k, strlen(k), v, now);
}

static void test_sizes(void)
{
	struct ridmap_stats st;
	struct ridmap *m = ridmap_new(2000000, 3600, 0);

	CHECK(m != NULL);
	ridmap_stats(m, &st);
	/* 2,000,000 / 64 shards = 31,250 ids a shard, 80 bytes each */
	CHECK_INT(st.bytes, 2000000ull * RIDMAP_BYTES_PER_KEY);
	CHECK_INT(RIDMAP_BYTES_PER_KEY, 80);
	CHECK_INT(st.keys, 0);
	ridmap_free(m);
	m = ridmap_new(1000, 60, 64); /* 15.625 a shard, rounded up */
	ridmap_stats(m, &st);
	CHECK_INT(st.bytes, 64ull * 16 * 80);
	ridmap_free(m);
	CHECK(ridmap_new(0, 60, 1) == NULL);
	CHECK(ridmap_new(10, 0, 1) == NULL);
	CHECK(ridmap_new(10, 60, 3) == NULL);
	ridmap_free(NULL);
}

/* The ids of the report that lost r9 after 600 requests in the direct-mapped table. */
static void test_no_collisions(void)
{
	char k[32];
	int v, bad = 0;
	struct ridmap *m = ridmap_new(2000000, 3600, 0);

	for (int i = 0; i < 300000; i++) {
		snprintf(k, sizeof(k), "r%d", i);
		put(m, k, 1 + i % 7, 10 * S);
	}
	for (int i = 0; i < 300000; i++) {
		snprintf(k, sizeof(k), "r%d", i);
		if (get(m, k, 11 * S, &v) != RIDMAP_FOUND || v != 1 + i % 7)
			bad++;
	}
	CHECK_INT(bad, 0);
	CHECK(get(m, "r300000", 11 * S, &v) == RIDMAP_UNKNOWN && v == -1);
	CHECK(get(m, "", 11 * S, &v) == RIDMAP_UNKNOWN);
	struct ridmap_stats st;
	ridmap_stats(m, &st);
	CHECK_INT(st.puts, 300000);
	CHECK_INT(st.keys, 300000);
	CHECK_INT(st.evicted + st.expired, 0);
	ridmap_free(m);
}

static void test_eviction_order(void)
{
	struct ridmap *m = ridmap_new(4, 3600, 1);
	struct ridmap_stats st;
	int v;

	put(m, "a", 1, S);
	put(m, "b", 2, S);
	put(m, "c", 3, S);
	put(m, "d", 4, S);
	put(m, "e", 5, S); /* the fifth: a, the oldest, makes room: [e b c d] */
	CHECK(get(m, "a", S, &v) == RIDMAP_EVICTED);
	CHECK(get(m, "b", S, &v) == RIDMAP_FOUND && v == 2);
	CHECK(get(m, "e", S, &v) == RIDMAP_FOUND && v == 5);
	/* c again: its old record dies (it still takes room), b makes room, c is the youngest */
	put(m, "c", 6, S);
	CHECK(get(m, "b", S, &v) == RIDMAP_EVICTED);
	CHECK(get(m, "c", S, &v) == RIDMAP_FOUND && v == 6);
	ridmap_stats(m, &st);
	CHECK_INT(st.keys, 3);
	CHECK_INT(st.evicted, 2);
	put(m, "f", 7, S); /* the dead record of c is the oldest: nobody falls out */
	ridmap_stats(m, &st);
	CHECK_INT(st.keys, 4);
	CHECK_INT(st.evicted, 2);
	put(m, "g", 8, S); /* d */
	put(m, "h", 9, S); /* e */
	for (const char *const *k = (const char *const[]){"a", "b", "d", "e", NULL}; *k; k++)
		CHECK(get(m, *k, S, &v) == RIDMAP_EVICTED);
	CHECK(get(m, "c", S, &v) == RIDMAP_FOUND && v == 6);
	CHECK(get(m, "f", S, &v) == RIDMAP_FOUND && v == 7);
	CHECK(get(m, "g", S, &v) == RIDMAP_FOUND && v == 8);
	CHECK(get(m, "h", S, &v) == RIDMAP_FOUND && v == 9);
	put(m, "i", 10, S); /* c, the oldest live one now */
	CHECK(get(m, "c", S, &v) == RIDMAP_EVICTED);
	ridmap_stats(m, &st);
	CHECK_INT(st.evicted, 5);
	CHECK_INT(st.expired, 0);
	CHECK_INT(st.keys, 4);
	CHECK_INT(st.puts, 10);
	ridmap_free(m);
}

static void test_window(void)
{
	struct ridmap *m = ridmap_new(100, 10, 1);
	struct ridmap_stats st;
	int v;

	put(m, "a", 1, 100 * S);
	put(m, "b", 2, 105 * S);
	CHECK(get(m, "a", 110 * S, &v) == RIDMAP_FOUND); /* 10 s old: still inside */
	CHECK(get(m, "a", 111 * S, &v) == RIDMAP_EXPIRED);
	CHECK(get(m, "b", 111 * S, &v) == RIDMAP_FOUND && v == 2);
	ridmap_stats(m, &st);
	CHECK_INT(st.expired, 1);
	CHECK_INT(st.keys, 1);
	CHECK(get(m, "b", 116 * S, &v) == RIDMAP_EXPIRED);
	CHECK(get(m, "zz", 116 * S, &v) == RIDMAP_UNKNOWN);
	ridmap_stats(m, &st);
	CHECK_INT(st.expired, 2);
	CHECK_INT(st.evicted, 0);
	CHECK_INT(st.keys, 0);
	/* a key older than the window behind a younger one at the tail (two workers' clocks a
	 * second apart) is reported expired before it is swept */
	put(m, "c", 3, 200 * S);
	put(m, "d", 4, 199 * S);
	CHECK(get(m, "d", 210 * S, &v) == RIDMAP_EXPIRED);
	CHECK(get(m, "c", 210 * S, &v) == RIDMAP_FOUND);
	CHECK_INT(ridmap_window(m), 10);
	/* a sweep counts what aged out without a put or a lookup in its shard */
	ridmap_stats(m, &st);
	CHECK_INT(st.keys, 2);
	ridmap_sweep(m, 300 * S);
	ridmap_stats(m, &st);
	CHECK_INT(st.keys, 0);
	CHECK_INT(st.expired, 4);
	ridmap_free(m);
}

static void test_long_keys_and_wrap(void)
{
	char l1[89], l2[89], l3[89], k88[89], k89[90];
	struct ridmap *m = ridmap_new(5, 3600, 1);
	struct ridmap_stats st;
	int v;

	memset(l1, 'x', 41), l1[41] = '\0';
	memset(l2, 'y', 71), l2[71] = '\0';
	memset(l3, 'z', 50), l3[50] = '\0';
	put(m, "s1", 1, S); /* record 0 */
	put(m, l1, 2, S);   /* 1-2 */
	put(m, "s2", 3, S); /* 3 */
	put(m, l2, 4, S);   /* 4 is the last: a filler there, then 0-1 (s1, l1 fall out) */
	CHECK(get(m, "s1", S, &v) == RIDMAP_EVICTED);
	CHECK(get(m, l1, S, &v) == RIDMAP_EVICTED);
	CHECK(get(m, "s2", S, &v) == RIDMAP_FOUND && v == 3);
	CHECK(get(m, l2, S, &v) == RIDMAP_FOUND && v == 4);
	/* same first 40 bytes, different tail: another key */
	char l2b[89];
	memcpy(l2b, l2, 72);
	l2b[70] = 'q';
	CHECK(get(m, l2b, S, &v) == RIDMAP_UNKNOWN);
	put(m, l3, 5, S); /* 2-3: s2 falls out */
	CHECK(get(m, "s2", S, &v) == RIDMAP_EVICTED);
	CHECK(get(m, l3, S, &v) == RIDMAP_FOUND && v == 5);
	CHECK(get(m, l2, S, &v) == RIDMAP_FOUND && v == 4);
	memset(k88, 'k', 88), k88[88] = '\0';
	memset(k89, 'k', 89), k89[89] = '\0';
	put(m, k88, 6, S);
	put(m, k89, 7, S); /* too long: ignored */
	CHECK(get(m, k88, S, &v) == RIDMAP_FOUND && v == 6);
	CHECK(get(m, k89, S, &v) == RIDMAP_UNKNOWN);
	ridmap_stats(m, &st);
	CHECK_INT(st.keys, 2);
	CHECK_INT(st.puts, 6);
	ridmap_free(m);
}

/* The fallen ring remembers as many fallen keys as the shard holds live ones. */
static void test_fallen_ring_bound(void)
{
	char k[16];
	struct ridmap *m = ridmap_new(2, 3600, 1);
	int v;

	for (int i = 0; i < 10; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		put(m, k, i + 1, S);
	}
	CHECK(get(m, "k9", S, &v) == RIDMAP_FOUND && v == 10);
	CHECK(get(m, "k8", S, &v) == RIDMAP_FOUND && v == 9);
	CHECK(get(m, "k7", S, &v) == RIDMAP_EVICTED);
	CHECK(get(m, "k6", S, &v) == RIDMAP_EVICTED);
	CHECK(get(m, "k5", S, &v) == RIDMAP_UNKNOWN);
	CHECK(get(m, "k0", S, &v) == RIDMAP_UNKNOWN);
	ridmap_free(m);
}

/* Random puts and gets on a small shard against a model of its ring (one-record keys). */
static void test_model(void)
{
	enum { CAP = 97, POOL = 300, STEPS = 200000 };
	struct ridmap *m = ridmap_new(CAP, 3600, 1);
	int ring[CAP], head = 0, used = 0; /* key number per record, -1 dead */
	int live[POOL], fell[POOL];        /* value if live else 0; fell: 1 when it fell out */
	unsigned seed = 12345;
	int bad = 0;
	char k[16];

	memset(live, 0, sizeof(live));
	memset(fell, 0, sizeof(fell));
	for (int step = 0; step < STEPS; step++) {
		seed = seed * 1103515245u + 12345u;
		int key = (int)((seed >> 8) % POOL), v = 0;
		snprintf(k, sizeof(k), "key-%d", key);
		if ((seed >> 4) & 1) {
			enum ridmap_result r = get(m, k, S, &v);
			bool ok = live[key] ? r == RIDMAP_FOUND && v == live[key]
					    : r != RIDMAP_FOUND;
			bad += !ok;
			continue;
		}
		for (int i = 0; i < used && live[key]; i++)
			if (ring[(head + CAP - used + i) % CAP] == key)
				ring[(head + CAP - used + i) % CAP] = -1;
		live[key] = 0;
		if (used == CAP) {
			int old = ring[(head + CAP - used) % CAP];
			if (old >= 0) {
				live[old] = 0;
				fell[old] = 1;
			}
			used--;
		}
		ring[head] = key;
		head = (head + 1) % CAP;
		used++;
		live[key] = 1 + step % 1000;
		ridmap_put(m, k, strlen(k), live[key], S);
	}
	CHECK_INT(bad, 0);
	struct ridmap_stats st;
	ridmap_stats(m, &st);
	int nlive = 0;
	for (int i = 0; i < POOL; i++)
		nlive += live[i] != 0;
	CHECK_INT(st.keys, nlive);
	ridmap_free(m);
}

struct writer {
	struct ridmap *m;
	int id, n;
	char *keys; /* n ids of 32 bytes, formatted beforehand */
	double ns_per_put;
};

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* n ids shaped like the proxy's own (32 hex digits), distinct for each id. */
static char *make_keys(int id, int n)
{
	char *keys = malloc((size_t)n * 32 + 1);
	for (int i = 0; i < n; i++) {
		char k[40];
		snprintf(k, sizeof(k), "%08x%08x%016x", id, i, (unsigned)(i * 2654435761u));
		memcpy(keys + (size_t)i * 32, k, 32);
	}
	return keys;
}

static void *write_many(void *arg)
{
	struct writer *w = arg;
	double t0 = now_ns();

	for (int i = 0; i < w->n; i++)
		ridmap_put(w->m, w->keys + (size_t)i * 32, 32, 1 + w->id, 5 * S);
	w->ns_per_put = (now_ns() - t0) / w->n;
	return NULL;
}

static void *read_many(void *arg)
{
	struct writer *w = arg;
	int v;
	for (int i = 0; i < w->n; i++)
		(void)ridmap_get(w->m, "not-there", 9, 5 * S, &v);
	return NULL;
}

/* Two writers and a reader at once (as two workers and the admin thread); then every id is
 * found with its writer's value. Prints the cost of a put, alone and with two writers. */
static void test_threads_and_cost(void)
{
	enum { N = 500000 };
	struct ridmap *m = ridmap_new(2000000, 3600, 0);
	struct writer w[3] = {{m, 0, N, make_keys(0, N), 0}, {m, 1, N, make_keys(1, N), 0},
			      {m, 2, N, NULL, 0}};
	struct writer warm = {m, 7, N, make_keys(7, N), 0}, alone = {m, 8, N, make_keys(8, N), 0};
	pthread_t th[3];
	int bad = 0, v;

	/* fill the map first (every page touched, the rings wrapped): puts then evict, as in a
	 * proxy that has run for a while */
	for (int i = 0; i < 5; i++) {
		warm.id = 7 + i * 16;
		write_many(&warm);
	}
	write_many(&alone);
	pthread_create(&th[0], NULL, write_many, &w[0]);
	pthread_create(&th[1], NULL, write_many, &w[1]);
	pthread_create(&th[2], NULL, read_many, &w[2]);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	for (int id = 0; id < 2; id++)
		for (int i = 0; i < N; i++)
			if (ridmap_get(m, w[id].keys + (size_t)i * 32, 32, 5 * S, &v) !=
				RIDMAP_FOUND ||
			    v != 1 + id)
				bad++;
	CHECK_INT(bad, 0);
	printf("ridmap: put of a 32-byte id into a full map of 2,000,000: %.0f ns alone, %.0f and "
	       "%.0f ns with two writers and a reader at once\n",
	       alone.ns_per_put, w[0].ns_per_put, w[1].ns_per_put);
	free((char *)w[0].keys);
	free((char *)w[1].keys);
	free((char *)warm.keys);
	free((char *)alone.keys);
	ridmap_free(m);
}

static long rss_kb(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = -1;
	fclose(f);
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* A map of 1,000,000 ids filled, then 1,000,000 more so that the fallen ring fills too: the
 * resident memory it added stays within RIDMAP_BYTES_PER_KEY per id. */
static void test_memory_full(void)
{
	enum { N = 1000000 };
	char k[40];
	long before = rss_kb();
	struct ridmap *m = ridmap_new(N, 3600, 0);
	struct ridmap_stats st;

	for (int i = 0; i < 2 * N; i++) {
		snprintf(k, sizeof(k), "%032x", i);
		ridmap_put(m, k, 32, 1, S);
	}
	long after = rss_kb();
	ridmap_stats(m, &st);
	double per = (after - before) * 1024.0 / N;
	printf("ridmap: full map of %d ids: %.1f MB resident, %.1f bytes an id (bound %d); "
	       "%llu held, %llu evicted\n",
	       N, (after - before) / 1024.0, per, RIDMAP_BYTES_PER_KEY,
	       (unsigned long long)st.keys, (unsigned long long)st.evicted);
	CHECK(before > 0 && after > 0);
	CHECK(per <= RIDMAP_BYTES_PER_KEY + 2 + (SHADOW_SHARE ? RIDMAP_BYTES_PER_KEY / SHADOW_SHARE : 0));
	CHECK(st.keys >= N - 64 * 1 && st.keys <= N);
	CHECK_INT(st.keys + st.evicted, 2 * N);
	ridmap_free(m);
}

int main(void)
{
	test_sizes();
	test_no_collisions();
	test_eviction_order();
	test_window();
	test_long_keys_and_wrap();
	test_fallen_ring_bound();
	test_model();
	test_threads_and_cost();
	test_memory_full();
	return check_summary("test_ridmap");
}
