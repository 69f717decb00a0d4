/*
 * decide.h - the decision rule of DESIGN.md ("Statistics and decision"), applied to an analysis:
 * investigate, rollback, continue or promote, checked in that order, with reasons that carry
 * the numbers behind them.
 *
 *   1. SRM flagged -> investigate (rollback with decision.on_srm: rollback);
 *   2. a hard gate (metric max: rate for binary metrics, p99 for continuous ones) breached by a
 *      non-control variant -> rollback. The live daemon keeps a decide_state so that a gate
 *      counts only after DECIDE_GATE_EVALS consecutive breaching evaluations; without a state
 *      (the report command) the gate is evaluated once on all the data;
 *   3. a guardrail significantly worse (one-sided, Holm-adjusted) -> rollback;
 *   4. an arm under min_samples requests, or under 25 successes of a binary primary metric ->
 *      continue;
 *   5. the primary metric significantly better in its goal's direction and no guardrail worse
 *      -> promote (the variant with the largest improvement when several qualify); with no
 *      primary metric, every guardrail non-inferior -> promote;
 *   6. otherwise continue, with the samples per arm still needed for the observed difference.
 */
#ifndef ABGATE_DECIDE_H
#define ABGATE_DECIDE_H

#include <stddef.h>
#include <stdint.h>

struct analysis;

#define DECIDE_GATE_EVALS 3
#define DECIDE_MIN_SUCCESSES 25

/* Consecutive hard-gate breaches per (variant, metric), kept by the daemon across evaluations. */
struct decide_state {
	size_t nvariants, nmetrics;
	uint32_t *streak; /* nvariants * nmetrics, owned */
};

/* A state for an experiment of that shape (owned by the caller: decide_state_free), or NULL. */
struct decide_state *decide_state_new(size_t nvariants, size_t nmetrics);
/* A copy of st (owned by the caller), or NULL (memory). */
struct decide_state *decide_state_copy(const struct decide_state *st);
void decide_state_free(struct decide_state *st);

/*
 * Sets a->action, a->action_variant and a->reasons. st: the daemon's state (updated; a state of
 * another shape is reset), or NULL to evaluate the hard gates once. Returns 0, or -1 when out of
 * memory (the action is then still set).
 */
int decide_run(struct analysis *a, struct decide_state *st);

#endif
