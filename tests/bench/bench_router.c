/*
 * bench_router.c - the request path's assignment cost in each hash mode: router_assign() over
 * a fixed set of 12-byte user ids, per call, for one experiment of three variants. (The
 * default mode against the code before hash modes: tests/bench/assign_cost.py, on the live
 * proxy.)
 *
 *   build/bench_router [CALLS [MODE]]   (default 2,000,000 calls per mode, best of 5 runs;
 *                                        MODE: only the line of that index, 0 = abgate)
 *
 * Under callgrind, run one mode with a small CALLS and --toggle-collect=bench_assign to count
 * the instructions of one call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "router.h"

#define NUNITS 4096

static const char *const modes[][2] = {
    {"abgate", NULL},
    {"growthbook v1", "{mode: growthbook, seed: gb-seed, version: 1}"},
    {"growthbook v2", "{mode: growthbook, seed: gb-seed, version: 2}"},
    {"unleash", "{mode: unleash, group_id: ranker-flag, rollout: 100}"},
    {"optimizely", "{mode: optimizely, experiment_id: \"1886780721\"}"},
    {"launchdarkly", "{mode: launchdarkly, key: ranker-flag, salt: 8f3a}"},
    {"statsig", "{mode: statsig, salt: 4fRZ2e}"},
    {"eppo", "{mode: eppo, salt: ranker-split}"},
};

static char units[NUNITS][16];
static size_t unit_len[NUNITS];
static volatile uintptr_t sink; /* keeps the results alive */

static struct conf *load(const char *hash)
{
	char yaml[1024], err[512];
	struct conf *c;

	snprintf(yaml, sizeof(yaml),
		 "backends:\n  a: {servers: [127.0.0.1:1]}\n"
		 "experiments:\n"
		 "  - name: ranker-v2\n"
		 "    unit: {header: X-User-Id}\n"
		 "%s%s%s"
		 "    variants:\n"
		 "      - {name: control, backend: a, weight: 50}\n"
		 "      - {name: t1, backend: a, weight: 25}\n"
		 "      - {name: t2, backend: a, weight: 25}\n",
		 hash ? "    hash: " : "", hash ? hash : "", hash ? "\n" : "");
	if (conf_load_string("bench.yaml", yaml, strlen(yaml), &c, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	return c;
}

/* router_assign() (inline) behind a call of its own, so callgrind can count it alone. */
__attribute__((noinline)) static const struct conf_variant *
bench_assign(const struct conf_experiment *e, const char *unit, size_t len, uint64_t *unit_hash)
{
	return router_assign(e, unit, len, unit_hash);
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Nanoseconds per call, best of 5 runs of calls. */
static double time_mode(const struct conf_experiment *e, long calls)
{
	double best = 1e18;
	for (int run = 0; run < 5; run++) {
		uintptr_t acc = 0;
		double t0 = now_ns();
		for (long i = 0; i < calls; i++) {
			size_t k = (size_t)i % NUNITS;
			uint64_t h;
			acc += (uintptr_t)bench_assign(e, units[k], unit_len[k], &h);
			acc += h;
		}
		double t = (now_ns() - t0) / (double)calls;
		sink = acc;
		if (t < best)
			best = t;
	}
	return best;
}

int main(int argc, char **argv)
{
	long calls = argc > 1 ? atol(argv[1]) : 2000000;
	long only = argc > 2 ? atol(argv[2]) : -1;

	for (int i = 0; i < NUNITS; i++)
		unit_len[i] = (size_t)snprintf(units[i], sizeof(units[i]), "user-%07d", i * 7919);
	printf("%-16s %10s\n", "mode", "ns/call");
	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		if (only >= 0 && (size_t)only != m)
			continue;
		struct conf *c = load(modes[m][1]);
		printf("%-16s %10.1f\n", modes[m][0], time_mode(&c->experiments[0], calls));
		conf_free(c);
	}
	return 0;
}
