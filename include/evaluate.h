/*
 * evaluate.h - the daemon's view of its A/B experiments: the live analysis with the decision
 * rule applied (what GET /experiments and the live report show), and a timer per experiment
 * that evaluates it every decision.interval_s so that a hard gate counts only after
 * DECIDE_GATE_EVALS consecutive breaching evaluations (decide.h). Rollouts evaluate themselves
 * (rollout.h). Main thread only.
 */
#ifndef ABGATE_EVALUATE_H
#define ABGATE_EVALUATE_H

struct analysis;
struct conf;
struct conf_experiment;
struct event_base;

void evaluate_init(struct event_base *base);
/* After a load or a reload: starts, re-times or stops the timers. Each experiment keeps its
 * gate streaks across reloads while its name and shape stay. Returns 0 or -1 (memory). */
int evaluate_apply(const struct conf *c);
void evaluate_shutdown(void);

/*
 * The analysis of e on the live data, decided now. For an A/B experiment the hard gates count
 * this evaluation on top of the periodic ones before it (which it does not change), so a gate
 * shows as soon as its third consecutive breach is seen. NULL when out of memory.
 */
struct analysis *evaluate_now(const struct conf_experiment *e);

#endif
