/*
 * evaluate.c - periodic evaluation of A/B experiments (see include/evaluate.h).
 */
#include <event2/event.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "conf.h"
#include "decide.h"
#include "evaluate.h"
#include "live.h"
#include "log.h"
#include "rollout.h"
#include "server.h"

/* One A/B experiment's evaluations, found by name across reloads. */
struct watch {
	struct watch *next;
	char *exp;
	struct event *timer;
	uint32_t interval_s;
	struct decide_state *state; /* the gate streaks of the periodic evaluations */
	char *action;               /* the last periodic evaluation's, for the log */
	bool seen;                  /* in the configuration being applied */
};

static struct {
	struct event_base *base;
	struct watch *all;
} ev;

/* The analysis of e on the live accumulators, not yet decided. */
static struct analysis *analyse(const struct conf_experiment *e)
{
	return live_analysis(e, e->metrics, &e->decision);
}

static struct watch *find(const char *name)
{
	for (struct watch *w = ev.all; w != NULL; w = w->next)
		if (strcmp(w->exp, name) == 0)
			return w;
	return NULL;
}

static void watch_free(struct watch *w)
{
	if (w->timer != NULL)
		event_free(w->timer);
	decide_state_free(w->state);
	free(w->action);
	free(w->exp);
	free(w);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct watch *w = arg;
	uint64_t seq;
	struct conf *c = server_conf_acquire(&seq);
	const struct conf_experiment *e = conf_experiment_find(c, w->exp);
	struct analysis *a = e != NULL && e->rt == NULL ? analyse(e) : NULL;

	(void)fd;
	(void)what;
	if (a != NULL) {
		if (w->state == NULL)
			w->state = decide_state_new(e->nvariants, e->nmetrics);
		decide_run(a, w->state);
		if (a->action != NULL && (w->action == NULL || strcmp(w->action, a->action) != 0)) {
			log_info("experiment %s: recommendation %s%s%s (%s)", w->exp, a->action,
				 a->action_variant != NULL ? " " : "",
				 a->action_variant != NULL ? a->action_variant : "",
				 a->nreasons > 0 ? a->reasons[0] : "no reason given");
			free(w->action);
			w->action = strdup(a->action);
		}
		analysis_free(a);
	}
	conf_unref(c);
}

void evaluate_init(struct event_base *base)
{
	ev.base = base;
}

int evaluate_apply(const struct conf *c)
{
	int rc = 0;

	for (struct watch *w = ev.all; w != NULL; w = w->next)
		w->seen = false;
	for (size_t i = 0; i < c->nexperiments; i++) {
		const struct conf_experiment *e = &c->experiments[i];
		if (e->rollout.enabled)
			continue;
		struct watch *w = find(e->name);
		if (w == NULL) {
			if ((w = calloc(1, sizeof(*w))) == NULL || (w->exp = strdup(e->name)) == NULL ||
			    (w->timer = event_new(ev.base, -1, EV_PERSIST, tick_cb, w)) == NULL) {
				if (w != NULL)
					watch_free(w);
				rc = -1;
				continue;
			}
			w->next = ev.all;
			ev.all = w;
		}
		w->seen = true;
		if (w->interval_s != e->decision.interval_s) {
			struct timeval tv = {(time_t)e->decision.interval_s, 0};
			event_del(w->timer);
			if (event_add(w->timer, &tv) < 0)
				rc = -1; /* interval_s unchanged: the next reload tries again */
			else
				w->interval_s = e->decision.interval_s;
		}
	}
	for (struct watch **pp = &ev.all; *pp != NULL;) {
		struct watch *w = *pp;
		if (w->seen) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		watch_free(w);
	}
	return rc;
}

void evaluate_shutdown(void)
{
	while (ev.all != NULL) {
		struct watch *w = ev.all;
		ev.all = w->next;
		watch_free(w);
	}
}

struct analysis *evaluate_now(const struct conf_experiment *e)
{
	struct analysis *a = analyse(e);
	struct watch *w = e->rt == NULL ? find(e->name) : NULL;

	if (a == NULL)
		return NULL;
	if (w == NULL) {
		decide_run(a, NULL);
		return a;
	}
	/* this evaluation counts on a copy: the streaks belong to the periodic ones (a state of
	 * another shape is reset by decide_run) */
	struct decide_state *copy = w->state != NULL ? decide_state_copy(w->state)
						     : decide_state_new(e->nvariants, e->nmetrics);
	decide_run(a, copy);
	decide_state_free(copy);
	return a;
}
