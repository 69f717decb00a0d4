/*
 * rollout.h - canary stepping: the running weight of a rollout's canary, its automatic
 * evaluation, manual control, and the state file that lets a restart resume.
 *
 * A rollout experiment has two variants, the control and the canary. While a rollout is
 * configured, its state (not the YAML weights) decides the split: the canary owns the top
 * `step` percent of the buckets (control = 100 - step), so every step only moves users into the
 * canary. The state lives outside the configuration generations (a reload keeps it) in a
 * struct rollout_rt per experiment name; the data path reads one atomic weight from it.
 *
 * With `auto: true` the main thread evaluates the guardrails every interval_s on the data of
 * the current step, always with the sequential (always-valid) tests: significant harm or a hard
 * gate breached 3 times in a row -> the canary goes to weight 0 (rolled back); `investigate`
 * holds the step; every guardrail non-inferior with min_samples per arm -> the next step;
 * reaching 100 is the promotion. Each change is logged (error log, a config record in the
 * outcome log), counted in the metrics and written to the state file.
 */
#ifndef ABGATE_ROLLOUT_H
#define ABGATE_ROLLOUT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct conf;
struct event_base;
struct outlog;

enum rollout_status { ROLLOUT_RUNNING, ROLLOUT_PAUSED, ROLLOUT_ROLLED_BACK, ROLLOUT_PROMOTED };

struct rollout_rt {
	/* read by the data path */
	_Atomic uint32_t canary_bp; /* the canary's weight in basis points */
	_Atomic uint32_t epoch;     /* bumped when a step starts: live statistics restart */
	/* main thread only */
	char *exp;
	int step;                   /* index into the steps; -1 before the first */
	enum rollout_status status;
	struct decide_state *dstate;
	struct event *timer;
	uint32_t interval_s;
	char *state_file;           /* NULL: not persisted */
	struct rollout_rt *next;
};

/* Sets up the rollout machinery on the main thread's base; ol may be NULL. */
void rollout_init(struct event_base *base, struct outlog *ol);
/* Attaches generation c's rollouts (e->rt), creating each state on first sight (from its state
 * file when there is one) and (re)arming the evaluation timers. Main thread. Returns 0 or -1. */
int rollout_apply(struct conf *c);
/* Frees every rollout state. */
void rollout_shutdown(void);

/*
 * Manual control: cmd is "promote", "rollback", "pause" or "resume". Returns the HTTP status
 * to answer (200, 404 no such experiment, 409 no rollout or not possible now) with a JSON body
 * (malloc'd, the caller frees) in *body.
 */
int rollout_command(const struct conf *c, const char *exp, const char *cmd, char **body);

struct conf_experiment;

/* The weight in force of variant k of e, in basis points: while a rollout runs, its canary
 * weight (and the rest for the control), else the YAML's. */
uint32_t rollout_weight_bp(const struct conf_experiment *e, size_t k);

/* A rollout's state as its state file keeps it. */
struct rollout_saved {
	int step; /* index into the configured steps */
	enum rollout_status status;
	uint32_t canary_bp;
};
/* The state file's text for experiment exp: one JSON object (malloc'd; NULL when out of
 * memory), such as {"experiment":"x","step":2,"status":"running","canary_weight":5}. */
char *rollout_state_format(const char *exp, const struct rollout_saved *st);
/* Reads a state file's text (len bytes, any bytes; whitespace may follow the object) for
 * experiment exp configured with nsteps steps. Returns NULL and fills *out when it is exp's
 * state (a saved step beyond the configured ones becomes the last), else why not: invalid or
 * not one object, another experiment's, step not a whole number from 1, an unknown status,
 * canary_weight outside 0-100, or a weight its status contradicts (rolled_back above 0,
 * promoted below 100). */
const char *rollout_state_parse(const char *text, size_t len, const char *exp, size_t nsteps,
				struct rollout_saved *out);

/* The rollout state as a JSON object string (malloc'd) for /experiments, or NULL. */
char *rollout_state_json(const struct rollout_rt *rt);

/* Writes abgate_rollout_step and abgate_rollout_weight for generation c. */
void rollout_metrics(FILE *f, const struct conf *c);

#endif
