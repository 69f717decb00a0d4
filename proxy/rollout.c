/*
 * rollout.c - canary stepping (see include/rollout.h).
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "analysis.h"
#include "conf.h"
#include "decide.h"
#include "live.h"
#include "log.h"
#include "outlog.h"
#include "rollout.h"
#include "server.h"

static struct {
	struct event_base *base;   /* (ref) */
	struct outlog *outlog;     /* (ref) */
	struct rollout_rt *all;
} ro;

static const char *const status_names[] = {"running", "paused", "rolled_back", "promoted"};

static struct rollout_rt *find(const char *exp)
{
	for (struct rollout_rt *rt = ro.all; rt != NULL; rt = rt->next)
		if (strcmp(rt->exp, exp) == 0)
			return rt;
	return NULL;
}

/* The generation's experiment this state belongs to (the current generation). */
static const struct conf_experiment *current_exp(const struct conf *c, const struct rollout_rt *rt)
{
	for (size_t i = 0; i < c->nexperiments; i++)
		if (c->experiments[i].rt == rt)
			return &c->experiments[i];
	return NULL;
}

uint32_t rollout_weight_bp(const struct conf_experiment *e, size_t k)
{
	if (e->rt == NULL || e->nvariants != 2)
		return e->variants[k].weight_bp;
	uint32_t canary = atomic_load(&e->rt->canary_bp);
	return k == 1 ? canary : 10000 - canary;
}

/* ---- persistence ------------------------------------------------------------------------- */

char *rollout_state_format(const char *exp, const struct rollout_saved *st)
{
	cJSON *doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "experiment", exp);
	cJSON_AddNumberToObject(doc, "step", st->step + 1); /* 1-based, as the admin API says */
	cJSON_AddStringToObject(doc, "status", status_names[st->status]);
	cJSON_AddNumberToObject(doc, "canary_weight", st->canary_bp / 100.0);
	char *text = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	return text;
}

const char *rollout_state_parse(const char *text, size_t len, const char *exp, size_t nsteps,
				struct rollout_saved *out)
{
	const char *end = NULL, *why = NULL;
	cJSON *doc = cJSON_ParseWithLengthOpts(text, len, &end, false);

	if (doc == NULL)
		return "not valid JSON";
	while (end < text + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
		end++;
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(doc, "experiment");
	const cJSON *step = cJSON_GetObjectItemCaseSensitive(doc, "step");
	const cJSON *status = cJSON_GetObjectItemCaseSensitive(doc, "status");
	const cJSON *w = cJSON_GetObjectItemCaseSensitive(doc, "canary_weight");
	int st = -1;
	for (int i = 0; cJSON_IsString(status) && i < 4; i++)
		if (strcmp(status->valuestring, status_names[i]) == 0)
			st = i;
	if (end != text + len)
		why = "more than one JSON value";
	else if (!cJSON_IsObject(doc))
		why = "not a JSON object";
	else if (!cJSON_IsString(e))
		why = "no experiment name";
	else if (strcmp(e->valuestring, exp) != 0)
		why = "another experiment's state";
	else if (!cJSON_IsNumber(step) || !(step->valuedouble >= 1 && step->valuedouble <= 1e6) ||
		 step->valuedouble != (double)(int)step->valuedouble)
		why = "step missing or not a whole number from 1";
	else if (st < 0)
		/* damage, not "running": that could send traffic back to a canary rolled back */
		why = "status missing or unknown";
	else if (!cJSON_IsNumber(w) || !(w->valuedouble >= 0 && w->valuedouble <= 100))
		why = "canary_weight missing or outside 0-100";
	else if ((st == ROLLOUT_ROLLED_BACK && w->valuedouble != 0) ||
		 (st == ROLLOUT_PROMOTED && w->valuedouble != 100))
		/* a rolled-back canary with traffic, or a promotion short of 100 */
		why = "canary_weight does not match the status";
	if (why == NULL) {
		int s = (int)step->valuedouble - 1;
		/* a configuration with fewer steps than the saved one: its last step */
		out->step = nsteps == 0 ? 0 : s >= (int)nsteps ? (int)nsteps - 1 : s;
		out->status = (enum rollout_status)st;
		out->canary_bp = (uint32_t)(w->valuedouble * 100 + 0.5);
	}
	cJSON_Delete(doc);
	return why;
}

static void save(const struct rollout_rt *rt)
{
	char tmp[4096];

	if (rt->state_file == NULL)
		return;
	struct rollout_saved st = {rt->step, rt->status, atomic_load(&rt->canary_bp)};
	char *text = rollout_state_format(rt->exp, &st);
	snprintf(tmp, sizeof(tmp), "%s.tmp", rt->state_file);
	FILE *f = text != NULL ? fopen(tmp, "w") : NULL;
	bool ok = f != NULL && fprintf(f, "%s\n", text) > 0;
	if (f != NULL) {
		ok &= fflush(f) == 0 && fsync(fileno(f)) == 0;
		ok &= fclose(f) == 0;
	}
	/* a rename replaces the state whole: a crash never leaves half a file */
	if (!ok || rename(tmp, rt->state_file) < 0)
		log_warn("rollout %s: cannot save its state to %s", rt->exp, rt->state_file);
	cJSON_free(text);
}

enum load_result { LOAD_NONE, LOAD_OK, LOAD_DAMAGED, LOAD_UNREADABLE };

/* Reads the state file into rt. A file that is not this experiment's state is moved aside as
 * FILE.damaged (FILE.damaged.TIME beside an earlier one: both may be evidence, or another
 * rollout's); one that cannot be read or moved stays as it is. The caller then holds the
 * rollout, and saves over the file only when it was moved aside. */
static enum load_result load(struct rollout_rt *rt, const struct conf_rollout *r)
{
	char buf[4096];
	const char *why = NULL;
	FILE *f = fopen(rt->state_file, "r");

	if (f == NULL && errno == ENOENT)
		return LOAD_NONE;
	if (f == NULL) {
		/* out of descriptors, say: the file may be fine, and is left as it is */
		log_error("rollout %s: cannot open its state file %s: %s", rt->exp, rt->state_file,
			  strerror(errno));
		return LOAD_UNREADABLE;
	} else {
		size_t n = fread(buf, 1, sizeof(buf), f);
		bool err = ferror(f) != 0;
		fclose(f);
		struct rollout_saved st;
		if (err) {
			log_error("rollout %s: cannot read its state file %s", rt->exp,
				  rt->state_file);
			return LOAD_UNREADABLE;
		} else if (n == sizeof(buf))
			why = "larger than a state file can be";
		else if ((why = rollout_state_parse(buf, n, rt->exp, r->nsteps, &st)) == NULL) {
			rt->step = st.step;
			rt->status = st.status;
			atomic_store(&rt->canary_bp, st.canary_bp);
			log_info("rollout %s: resumed from %s at step %d (%s, canary %.2f%%)",
				 rt->exp, rt->state_file, rt->step + 1, status_names[rt->status],
				 st.canary_bp / 100.0);
			return LOAD_OK;
		}
	}
	/* never over an earlier damaged file: that one is evidence too */
	char aside[4096];
	snprintf(aside, sizeof(aside), "%s.damaged", rt->state_file);
	int rc = renameat2(AT_FDCWD, rt->state_file, AT_FDCWD, aside, RENAME_NOREPLACE);
	if (rc < 0 && errno == EEXIST) {
		snprintf(aside, sizeof(aside), "%s.damaged.%lld", rt->state_file,
			 (long long)time(NULL));
		rc = renameat2(AT_FDCWD, rt->state_file, AT_FDCWD, aside, RENAME_NOREPLACE);
	}
	if (rc < 0) {
		/* then it stays where it is, and is not overwritten either */
		log_error("rollout %s: state file %s unusable (%s), and cannot be moved aside: %s",
			  rt->exp, rt->state_file, why, strerror(errno));
		return LOAD_UNREADABLE;
	}
	log_error("rollout %s: state file %s unusable (%s), kept as %s", rt->exp, rt->state_file,
		  why, aside);
	return LOAD_DAMAGED;
}

/* ---- changes ------------------------------------------------------------------------------- */

/* Makes a change visible everywhere: the data path, the logs, the state file. */
static void changed(struct rollout_rt *rt, const char *what, const char *reason)
{
	uint64_t seq;
	struct conf *c = server_conf_acquire(&seq);
	const struct conf_experiment *e = current_exp(c, rt);
	uint32_t canary = atomic_load(&rt->canary_bp);

	atomic_fetch_add(&rt->epoch, 1); /* the next evaluation looks at the new step only */
	log_info("rollout %s: %s -> canary %.2f%%, %s%s%s", rt->exp, what, canary / 100.0,
		 status_names[rt->status], reason ? ": " : "", reason ? reason : "");
	if (e != NULL && ro.outlog != NULL) {
		char line[2048];
		const char *names[2] = {e->variants[0].name, e->variants[1].name};
		uint32_t weights[2] = {rollout_weight_bp(e, 0), rollout_weight_bp(e, 1)};
		struct timeval tv;
		gettimeofday(&tv, NULL);
		size_t len = outlog_format_config(line, sizeof(line), &tv, c->generation, rt->exp,
						  names, weights, 2);
		if (len == 0 || outlog_write_block(ro.outlog, line, len) < 0)
			log_error("rollout %s: cannot queue its config record", rt->exp);
	}
	conf_unref(c);
	if (rt->dstate != NULL) {
		decide_state_free(rt->dstate);
		rt->dstate = NULL;
	}
	save(rt);
}

static void set_step(struct rollout_rt *rt, const struct conf_rollout *r, int step)
{
	rt->step = step;
	atomic_store(&rt->canary_bp, (uint32_t)(r->steps[step] * 100 + 0.5));
	if (atomic_load(&rt->canary_bp) >= 10000)
		rt->status = ROLLOUT_PROMOTED;
}

static void roll_back(struct rollout_rt *rt, const char *reason)
{
	atomic_store(&rt->canary_bp, 0);
	rt->status = ROLLOUT_ROLLED_BACK;
	changed(rt, "rolled back", reason);
}

/* ---- evaluation ---------------------------------------------------------------------------- */

/* The guardrail verdict on the current step's data: decide.h's action with every metric treated
 * as a guardrail-only canary (the primary metric drives A/B recommendations, not the stepping)
 * and the sequential tests on, since the rollout looks again and again. */
static struct analysis *evaluate(const struct conf_experiment *e, struct rollout_rt *rt)
{
	struct conf_metric metrics[64];
	struct conf_decision dec = e->decision;

	if (e->nmetrics > 64)
		return NULL;
	for (size_t i = 0; i < e->nmetrics; i++) {
		metrics[i] = e->metrics[i];
		metrics[i].primary = false;
	}
	dec.sequential = true;
	struct analysis *a = live_analysis(e, metrics, &dec);
	if (a != NULL) {
		if (rt->dstate == NULL)
			rt->dstate = decide_state_new(2, e->nmetrics);
		decide_run(a, rt->dstate);
	}
	return a;
}

static void join_reasons(const struct analysis *a, char *dst, size_t cap)
{
	size_t o = 0;

	dst[0] = '\0';
	for (size_t i = 0; i < a->nreasons && o + 3 < cap; i++) {
		int n = snprintf(dst + o, cap - o, "%s%s", i ? "; " : "", a->reasons[i]);
		if (n < 0)
			break;
		o += (size_t)n < cap - o ? (size_t)n : cap - o - 1;
	}
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rollout_rt *rt = arg;
	uint64_t seq;
	char reasons[1024];

	if (rt->status != ROLLOUT_RUNNING)
		return;
	struct conf *c = server_conf_acquire(&seq);
	const struct conf_experiment *e = current_exp(c, rt);
	struct analysis *a = e != NULL && e->rollout.autostep ? evaluate(e, rt) : NULL;
	if (a != NULL && a->action != NULL) {
		join_reasons(a, reasons, sizeof(reasons));
		if (strcmp(a->action, "rollback") == 0) {
			roll_back(rt, reasons);
		} else if (strcmp(a->action, "promote") == 0) {
			int next = rt->step + 1 < (int)e->rollout.nsteps ? rt->step + 1 : rt->step;
			char label[64];
			snprintf(label, sizeof(label), "step %d of %zu", next + 1, e->rollout.nsteps);
			set_step(rt, &e->rollout, next);
			changed(rt, label, reasons);
		} else if (strcmp(a->action, "investigate") == 0) {
			log_warnx("rollout %s: holding step %d: %s", rt->exp, rt->step + 1, reasons);
		} else {
			log_debug("rollout %s: step %d continues: %s", rt->exp, rt->step + 1, reasons);
		}
	}
	analysis_free(a);
	conf_unref(c);
}

/* (Re)arms the stepping timer when its period changed: a reload that keeps it keeps the
 * count-down, so frequent reloads cannot hold a rollout at its step. */
static void arm(struct rollout_rt *rt, const struct conf_experiment *e)
{
	uint32_t want = e->rollout.autostep ? e->rollout.interval_s : 0; /* 0: not stepping */

	if (rt->timer == NULL && (rt->timer = event_new(ro.base, -1, EV_PERSIST, tick_cb, rt)) == NULL)
		return;
	if (want == rt->interval_s)
		return;
	event_del(rt->timer);
	rt->interval_s = 0;
	struct timeval tv = {(time_t)want, 0};
	if (want != 0 && event_add(rt->timer, &tv) == 0)
		rt->interval_s = want; /* on failure the next reload tries again */
}

void rollout_init(struct event_base *base, struct outlog *ol)
{
	ro.base = base;
	ro.outlog = ol;
}

int rollout_apply(struct conf *c)
{
	for (size_t i = 0; i < c->nexperiments; i++) {
		struct conf_experiment *e = &c->experiments[i];
		e->rt = NULL;
		if (!e->rollout.enabled)
			continue;
		struct rollout_rt *rt = find(e->name);
		bool fresh = rt == NULL;
		if (fresh) {
			if ((rt = calloc(1, sizeof(*rt))) == NULL || (rt->exp = strdup(e->name)) == NULL) {
				free(rt);
				return -1;
			}
			rt->step = -1;
			rt->next = ro.all;
			ro.all = rt;
		}
		free(rt->state_file);
		rt->state_file = e->rollout.state_file ? strdup(e->rollout.state_file) : NULL;
		enum load_result lr = LOAD_NONE;
		if (fresh && rt->state_file != NULL)
			lr = load(rt, &e->rollout);
		if (fresh && lr == LOAD_NONE) {
			/* a new rollout starts at its first step */
			rt->status = ROLLOUT_RUNNING;
			set_step(rt, &e->rollout, 0);
			log_info("rollout %s: starts at step 1 of %zu (canary %.2f%%)", e->name,
				 e->rollout.nsteps, e->rollout.steps[0]);
			save(rt);
		} else if (fresh && lr != LOAD_OK) { /* damaged or unreadable */
			/* where it stood is unknown: the canary gets no traffic until someone says
			 * (resume restarts at step 1, promote goes to 100). An unreadable file is
			 * not overwritten until then. */
			rt->step = 0;
			rt->status = ROLLOUT_ROLLED_BACK;
			atomic_store(&rt->canary_bp, 0);
			log_error("rollout %s: held with the canary at 0%% (rolled_back) until resumed "
				  "or promoted by hand", e->name);
			if (lr == LOAD_DAMAGED)
				save(rt);
		} else if (!fresh && rt->step >= (int)e->rollout.nsteps) {
			/* the reload took steps away: the index moves to the new last step (the
			 * weight in force stays until the next step or command) */
			log_warnx("rollout %s: step %d no longer exists; now at step %zu of %zu",
				  e->name, rt->step + 1, e->rollout.nsteps, e->rollout.nsteps);
			rt->step = (int)e->rollout.nsteps - 1;
			save(rt);
		} else if (!fresh && e->variants[1].weight_bp != atomic_load(&rt->canary_bp)) {
			log_info("rollout %s: the YAML weights are ignored while the rollout runs "
				 "(canary at %.2f%%, %s)", e->name, atomic_load(&rt->canary_bp) / 100.0,
				 status_names[rt->status]);
		}
		e->rt = rt;
		if (ro.base != NULL)
			arm(rt, e);
	}
	return 0;
}

void rollout_shutdown(void)
{
	while (ro.all != NULL) {
		struct rollout_rt *rt = ro.all;
		ro.all = rt->next;
		if (rt->timer != NULL)
			event_free(rt->timer);
		decide_state_free(rt->dstate);
		free(rt->state_file);
		free(rt->exp);
		free(rt);
	}
}

/* ---- manual control and views -------------------------------------------------------------- */

char *rollout_state_json(const struct rollout_rt *rt)
{
	cJSON *doc = cJSON_CreateObject();

	cJSON_AddNumberToObject(doc, "step", rt->step + 1);
	cJSON_AddStringToObject(doc, "status", status_names[rt->status]);
	cJSON_AddNumberToObject(doc, "canary_weight", atomic_load(&rt->canary_bp) / 100.0);
	char *text = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	return text;
}

static char *message(const char *key, const char *value, const struct rollout_rt *rt)
{
	char *state = rt != NULL ? rollout_state_json(rt) : NULL;
	cJSON *doc = cJSON_CreateObject();

	cJSON_AddStringToObject(doc, key, value);
	if (state != NULL)
		cJSON_AddRawToObject(doc, "rollout", state);
	char *text = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	cJSON_free(state);
	return text;
}

int rollout_command(const struct conf *c, const char *exp, const char *cmd, char **body)
{
	static const char *const cmds[] = {"promote", "rollback", "pause", "resume"};
	bool known = false;

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		known |= strcmp(cmd, cmds[i]) == 0;
	if (!known) {
		*body = message("error", "unknown command: use promote, rollback, pause or resume",
				NULL);
		return 400;
	}
	const struct conf_experiment *e = conf_experiment_find(c, exp);
	if (e == NULL) {
		*body = message("error", "no such experiment", NULL);
		return 404;
	}
	struct rollout_rt *rt = e->rt;
	if (rt == NULL) {
		*body = message("error", "this experiment has no rollout", NULL);
		return 409;
	}
	if (strcmp(cmd, "promote") == 0) {
		if (rt->status == ROLLOUT_PROMOTED) {
			*body = message("error", "the rollout is already promoted", rt);
			return 409;
		}
		set_step(rt, &e->rollout, (int)e->rollout.nsteps - 1);
		changed(rt, "promoted by hand", NULL);
	} else if (strcmp(cmd, "rollback") == 0) {
		if (rt->status == ROLLOUT_ROLLED_BACK) {
			*body = message("error", "the rollout is already rolled back", rt);
			return 409;
		}
		roll_back(rt, "by hand");
	} else if (strcmp(cmd, "pause") == 0) {
		if (rt->status != ROLLOUT_RUNNING) {
			*body = message("error", "only a running rollout can be paused", rt);
			return 409;
		}
		rt->status = ROLLOUT_PAUSED;
		log_info("rollout %s: paused by hand at step %d", rt->exp, rt->step + 1);
		save(rt);
	} else { /* resume */
		if (rt->status == ROLLOUT_RUNNING || rt->status == ROLLOUT_PROMOTED) {
			*body = message("error", "the rollout is not paused or rolled back", rt);
			return 409;
		}
		bool restart = rt->status == ROLLOUT_ROLLED_BACK;
		rt->status = ROLLOUT_RUNNING;
		if (restart) {
			set_step(rt, &e->rollout, 0);
			changed(rt, "restarted by hand at step 1", NULL);
		} else {
			log_info("rollout %s: resumed by hand at step %d", rt->exp, rt->step + 1);
			save(rt);
		}
	}
	*body = message("result", "ok", rt);
	return 200;
}

void rollout_metrics(FILE *f, const struct conf *c)
{
	fputs("# HELP abgate_rollout_step The current step of a rollout (1-based; 0 when rolled "
	      "back).\n# TYPE abgate_rollout_step gauge\n", f);
	for (size_t i = 0; i < c->nexperiments; i++) {
		const struct rollout_rt *rt = c->experiments[i].rt;
		if (rt != NULL)
			fprintf(f, "abgate_rollout_step{experiment=\"%s\"} %d\n", rt->exp,
				rt->status == ROLLOUT_ROLLED_BACK ? 0 : rt->step + 1);
	}
	fputs("# HELP abgate_rollout_weight The weight (percent) a rollout gives each variant.\n"
	      "# TYPE abgate_rollout_weight gauge\n", f);
	for (size_t i = 0; i < c->nexperiments; i++) {
		const struct conf_experiment *e = &c->experiments[i];
		if (e->rt == NULL)
			continue;
		for (size_t k = 0; k < 2; k++)
			fprintf(f, "abgate_rollout_weight{experiment=\"%s\",variant=\"%s\"} %g\n",
				e->name, e->variants[k].name, rollout_weight_bp(e, k) / 100.0);
	}
}
