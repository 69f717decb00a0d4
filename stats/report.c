/*
 * report.c - `abgate report`: streams outcome logs line by line into per-(experiment, variant)
 * accumulators, then analyses, decides and renders (see include/report.h).
 *
 * Memory does not grow with the number of lines: each log is read through one fixed buffer,
 * lines are parsed in place (logrec.c), and every record only bumps accumulators. What does
 * grow is bounded by the data's shape: experiments, variants and outcome metric names, plus per
 * variant the exact set of distinct units (12 bytes a slot in a table at most 3/4 full, at most
 * REPORT_MAX_UNITS units; past that it keeps an exact hash sample of them, halved as often as
 * needed, and the units are marked estimated) and per metric the exact per-unit sums (24 bytes
 * a unit, at most REPORT_MAX_SUMS units; past that the metric's variance comes from its 1024
 * pseudo-unit buckets, 16 KiB).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "accum.h"
#include "analysis.h"
#include "conf.h"
#include "decide.h"
#include "htest.h"
#include "logrec.h"
#include "pending.h"
#include "render.h"
#include "report.h"
#include "shadow_stats.h"

#define READ_BUF (1u << 20)
#define MAX_LINE (64u << 10)
#define REPORT_MAX_UNITS (1u << 20)
#define REPORT_MAX_SUMS (1u << 18)

/* The caps in force (--max-units, --max-unit-sums), set once per report_main. */
static size_t max_units = REPORT_MAX_UNITS, max_sums = REPORT_MAX_SUMS;
/* Whether any metric reads 4xx statuses (only a configured one can): else the slot is not fed,
 * which spares a per-unit table probe per request. */
static bool fold_4xx;

/* Metric slots every experiment has; outcome metrics follow in the order first seen. */
enum { SLOT_5XX, SLOT_4XX, SLOT_LATENCY, SLOT_OUTCOME0 };

struct rvar {
	char *name;
	struct accum_variant *acc;  /* requests, distinct units, traffic series */
	struct accum_metric *slots; /* nslots of the experiment */
};

/* One configuration epoch: a set of weights (units carry the bit of each epoch seen in). */
struct repoch {
	size_t n;
	char **names;
	double *w;
	double ts;	  /* the latest config record that set it */
};

struct rexp {
	char *name;
	struct rvar *vars;
	size_t nvars;
	char **outcomes; /* outcome metric names, slot SLOT_OUTCOME0 + i */
	size_t noutcomes;
	struct repoch *epochs;
	size_t nepochs;
	long cur;	   /* epoch in force in the current log, -1 before its first config */
	struct shadow_stats *shadow; /* NULL until the first shadow record */
	struct shadow_summary shadow_sum;
	struct render_meta meta;
};

struct report {
	const char *only; /* --experiment */
	struct rexp *exps;
	size_t nexps;
	uint64_t skipped;
	char *scratch;
};

static void err1(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void err1(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("abgate report: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- experiments and variants ---- */

static bool name_eq(const char *name, const struct logrec_str *s)
{
	return strlen(name) == s->len && memcmp(name, s->s, s->len) == 0;
}

static int slot_init(struct accum_metric *m, size_t slot)
{
	int rc = accum_metric_init(m, slot == SLOT_LATENCY || slot >= SLOT_OUTCOME0);
	m->units.max = max_sums;
	return rc;
}

/* A record's unit key: the unit's own, or (no unit) a key of its own. */
static uint64_t rec_key(const struct logrec *rec)
{
	return accum_unit_key(rec->has_unit ? accum_hash64(rec->unit.s, rec->unit.len) : 0);
}

static size_t exp_nslots(const struct rexp *e)
{
	return SLOT_OUTCOME0 + e->noutcomes;
}

static struct rexp *find_exp(struct report *r, const struct logrec_str *name, bool create)
{
	for (size_t i = 0; i < r->nexps; i++)
		if (name_eq(r->exps[i].name, name))
			return &r->exps[i];
	if (!create)
		return NULL;
	struct rexp *n = realloc(r->exps, (r->nexps + 1) * sizeof(*n));
	if (n == NULL)
		return NULL;
	r->exps = n;
	struct rexp *e = &n[r->nexps];
	memset(e, 0, sizeof(*e));
	e->cur = -1;
	e->name = strndup(name->s, name->len);
	if (e->name == NULL)
		return NULL;
	r->nexps++;
	return e;
}

/* Returns the index of the variant, creating it; -1 when out of memory. */
static long find_var(struct rexp *e, const struct logrec_str *name)
{
	for (size_t i = 0; i < e->nvars; i++)
		if (name_eq(e->vars[i].name, name))
			return (long)i;
	struct rvar *n = realloc(e->vars, (e->nvars + 1) * sizeof(*n));
	if (n == NULL)
		return -1;
	e->vars = n;
	struct rvar *v = &n[e->nvars];
	memset(v, 0, sizeof(*v));
	v->name = strndup(name->s, name->len);
	v->acc = accum_variant_new(0, NULL);
	v->slots = calloc(exp_nslots(e), sizeof(*v->slots));
	if (v->name == NULL || v->acc == NULL || v->slots == NULL)
		goto fail;
	accum_variant_limit(v->acc, max_units, 0);
	for (size_t s = 0; s < exp_nslots(e); s++)
		if (slot_init(&v->slots[s], s) < 0)
			goto fail;
	e->nvars++;
	return (long)e->nvars - 1;
fail:
	for (size_t s = 0; v->slots && s < exp_nslots(e); s++)
		accum_metric_release(&v->slots[s]);
	free(v->slots);
	accum_variant_free(v->acc);
	free(v->name);
	return -1;
}

/* Returns the slot of outcome metric NAME, creating it in every variant; -1 on failure. */
static long find_outcome(struct rexp *e, const struct logrec_str *name)
{
	for (size_t i = 0; i < e->noutcomes; i++)
		if (name_eq(e->outcomes[i], name))
			return (long)(SLOT_OUTCOME0 + i);
	char **n = realloc(e->outcomes, (e->noutcomes + 1) * sizeof(*n));
	if (n == NULL)
		return -1;
	e->outcomes = n;
	size_t slot = exp_nslots(e);
	for (size_t i = 0; i < e->nvars; i++) {
		struct accum_metric *s = realloc(e->vars[i].slots, (slot + 1) * sizeof(*s));
		if (s == NULL)
			return -1;
		e->vars[i].slots = s;
		if (slot_init(&s[slot], slot) < 0) {
			memset(&s[slot], 0, sizeof(s[slot]));
			return -1;
		}
	}
	n[e->noutcomes] = strndup(name->s, name->len);
	if (n[e->noutcomes] == NULL)
		return -1;
	e->noutcomes++;
	return (long)slot;
}

/* Makes the weights of a config record the epoch in force; returns 0 or -1 (memory). */
static int set_epoch(struct rexp *e, const struct logrec *rec)
{
	for (size_t i = 0; i < rec->nweights; i++)
		if (find_var(e, &rec->wname[i]) < 0)
			return -1;
	for (size_t k = 0; k < e->nepochs; k++) {
		struct repoch *p = &e->epochs[k];
		if (p->n != rec->nweights)
			continue;
		size_t i;
		for (i = 0; i < p->n; i++)
			if (!name_eq(p->names[i], &rec->wname[i]) || p->w[i] != rec->weight[i])
				break;
		if (i == p->n) {
			e->cur = (long)k;
			if (rec->ts >= p->ts)
				p->ts = rec->ts;
			return 0;
		}
	}
	struct repoch *n = realloc(e->epochs, (e->nepochs + 1) * sizeof(*n));
	if (n == NULL)
		return -1;
	e->epochs = n;
	struct repoch *p = &n[e->nepochs];
	memset(p, 0, sizeof(*p));
	p->names = calloc(rec->nweights + 1, sizeof(char *));
	p->w = calloc(rec->nweights + 1, sizeof(double));
	if (p->names == NULL || p->w == NULL)
		goto fail;
	for (size_t i = 0; i < rec->nweights; i++) {
		p->names[i] = strndup(rec->wname[i].s, rec->wname[i].len);
		if (p->names[i] == NULL)
			goto fail;
		p->n = i + 1;
		p->w[i] = rec->weight[i];
	}
	p->n = rec->nweights;
	p->ts = rec->ts;
	e->cur = (long)e->nepochs++;
	return 0;
fail:
	for (size_t i = 0; p->names && i < rec->nweights; i++)
		free(p->names[i]);
	free(p->names);
	free(p->w);
	return -1;
}

/* ---- streaming ---- */

/* Folds one outcome of e: metric's value for variant at ts. Returns 0, or -1 (out of memory). */
/* Folds an outcome of value at ts into its variant's metric, for the unit whose key
 * (accum_unit_key) is key. */
static int fold_outcome(struct rexp *e, const struct logrec_str *variant,
			const struct logrec_str *metric, double ts, double value, uint64_t key)
{
	long vi, slot;

	e->meta.outcome++;
	if ((vi = find_var(e, variant)) < 0 || (slot = find_outcome(e, metric)) < 0)
		return -1;
	accum_metric_add_unit(&e->vars[vi].slots[slot], ts, value, key);
	return 0;
}

/* pending_attribute's callback: a pending outcome, now with its request's variant. */
static int fold_pending(void *arg, const struct pending_outcome *o)
{
	struct report *r = arg;
	struct logrec_str exp = {o->exp, strlen(o->exp)}, var = {o->variant, strlen(o->variant)};
	struct logrec_str met = {o->metric, strlen(o->metric)};
	struct rexp *e = find_exp(r, &exp, true);

	return e != NULL ? fold_outcome(e, &var, &met, o->ts, o->value,
					accum_unit_key(o->unit_hash))
			 : -1;
}

/* Folds one line into the report. Returns 0, or -1 when out of memory. */
static int take_line(struct report *r, const char *line, size_t len)
{
	struct logrec rec;
	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	if (len == 0)
		return 0;
	if (logrec_parse(line, len, &rec, r->scratch, MAX_LINE) != LOGREC_OK) {
		r->skipped++;
		return 0;
	}
	if (r->only && !name_eq(r->only, &rec.exp))
		return 0;
	struct rexp *e = find_exp(r, &rec.exp, true);
	if (e == NULL)
		return -1;
	long vi;
	switch (rec.type) {
	case LOGREC_REQUEST: {
		if (rec.forced) {
			/* forced variants are test traffic: neither exposure nor outcome */
			e->meta.forced++;
			return 0;
		}
		if (!rec.has_unit) {
			/* no unit and fallback control: served the control without being randomised,
			 * so not part of the comparison (nor of the sample-ratio check) */
			e->meta.unrandomised++;
			return 0;
		}
		e->meta.request++;
		if ((vi = find_var(e, &rec.variant)) < 0)
			return -1;
		struct rvar *v = &e->vars[vi];
		uint64_t key = rec_key(&rec);
		/* the unit's epoch bit: epochs 0-29 their own, 30 and later share bit 30, and
		 * bit 31 is "before any config record" (judged by the latest weights) */
		unsigned bit = e->cur < 0 ? 31u : e->cur < 30 ? (unsigned)e->cur : 30u;
		if (accum_variant_request(v->acc, rec.ts, key, bit) < 0)
			return -1;
		double is5 = rec.status >= 500 && rec.status <= 599;
		double is4 = rec.status >= 400 && rec.status <= 499;
		accum_metric_add_unit(&v->slots[SLOT_5XX], rec.ts, is5, key);
		if (fold_4xx)
			accum_metric_add_unit(&v->slots[SLOT_4XX], rec.ts, is4, key);
		accum_metric_add_unit(&v->slots[SLOT_LATENCY], rec.ts, rec.latency_ms, key);
		return 0;
	}
	case LOGREC_OUTCOME:
		return fold_outcome(e, &rec.variant, &rec.metric, rec.ts, rec.value, rec_key(&rec));
	case LOGREC_CONFIG:
		e->meta.config++;
		return set_epoch(e, &rec);
	case LOGREC_SHADOW:
		e->meta.shadow++;
		if (e->shadow == NULL && (e->shadow = shadow_stats_new()) == NULL)
			return -1;
		return shadow_stats_add(e->shadow, &rec);
	case LOGREC_OTHER:
		e->meta.other++;
		return 0;
	}
	return 0;
}

/*
 * Streams one log through a fixed buffer. Returns 0, 1 when the file cannot be opened (message
 * printed), 2 on a read error or out of memory.
 */
static int stream_log(struct report *r, const char *path, char *buf)
{
	int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err1("%s: %s", path, strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < r->nexps; i++)
		r->exps[i].cur = -1;
	size_t have = 0;
	bool discarding = false; /* inside a line longer than MAX_LINE */
	int rc = 0;
	for (;;) {
		ssize_t n = read(fd, buf + have, READ_BUF - have);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err1("%s: %s", path, strerror(errno));
			rc = 2;
			break;
		}
		if (n == 0) {
			if (have > 0 && !discarding && take_line(r, buf, have) < 0)
				rc = 2;
			break;
		}
		have += (size_t)n;
		size_t start = 0;
		for (;;) {
			char *nl = memchr(buf + start, '\n', have - start);
			if (nl == NULL)
				break;
			size_t len = (size_t)(nl - (buf + start));
			if (discarding)
				discarding = false;
			else if (take_line(r, buf + start, len) < 0) {
				rc = 2;
				goto out;
			}
			start += len + 1;
		}
		memmove(buf, buf + start, have - start);
		have -= start;
		if (have > MAX_LINE) {
			/* an over-long line: skip it up to its newline */
			if (!discarding)
				r->skipped++;
			discarding = true;
			have = 0;
		}
	}
out:
	if (fd != 0)
		close(fd);
	if (rc == 2 && errno == ENOMEM)
		err1("out of memory");
	return rc;
}

/* ---- from accumulators to analyses ---- */

static char name_error_rate[] = "error_rate", name_latency[] = "latency_ms";

/* Metric specs and the slot each reads: from the configuration, else inferred. */
static int metric_specs(struct rexp *e, const struct conf_experiment *ce, struct conf_metric **out,
			size_t **slots, size_t *n)
{
	size_t cap = 3 + e->noutcomes + (ce ? ce->nmetrics : 0);
	struct conf_metric *m = calloc(cap, sizeof(*m));
	size_t *s = calloc(cap, sizeof(*s));
	if (m == NULL || s == NULL) {
		free(m);
		free(s);
		return -1;
	}
	size_t k = 0;
	if (ce && ce->nmetrics > 0) {
		for (size_t i = 0; i < ce->nmetrics; i++) {
			m[k] = ce->metrics[i];
			switch (ce->metrics[i].source) {
			case CONF_SRC_STATUS_5XX:
				s[k] = SLOT_5XX;
				break;
			case CONF_SRC_STATUS_4XX:
				s[k] = SLOT_4XX;
				break;
			case CONF_SRC_LATENCY_MS:
				s[k] = SLOT_LATENCY;
				break;
			case CONF_SRC_OUTCOME: {
				struct logrec_str nm = {m[k].name, strlen(m[k].name)};
				long sl = find_outcome(e, &nm);
				if (sl < 0)
					goto fail;
				s[k] = (size_t)sl;
				break;
			}
			}
			k++;
		}
	} else {
		m[k] = (struct conf_metric){.name = name_error_rate,
					    .kind = CONF_METRIC_BINARY,
					    .source = CONF_SRC_STATUS_5XX,
					    .goal = CONF_GOAL_DECREASE,
					    .guardrail = true};
		s[k++] = SLOT_5XX;
		m[k] = (struct conf_metric){.name = name_latency,
					    .kind = CONF_METRIC_CONTINUOUS,
					    .source = CONF_SRC_LATENCY_MS,
					    .goal = CONF_GOAL_DECREASE,
					    .guardrail = true};
		s[k++] = SLOT_LATENCY;
		bool have_primary = false;
		for (size_t i = 0; i < e->noutcomes; i++) {
			bool binary = true;
			for (size_t v = 0; v < e->nvars; v++)
				if (e->vars[v].slots[SLOT_OUTCOME0 + i].nonbinary)
					binary = false;
			m[k] = (struct conf_metric){.name = e->outcomes[i],
						    .kind = binary ? CONF_METRIC_BINARY
								   : CONF_METRIC_CONTINUOUS,
						    .source = CONF_SRC_OUTCOME,
						    .goal = CONF_GOAL_INCREASE,
						    .primary = binary && !have_primary};
			have_primary |= binary;
			s[k++] = SLOT_OUTCOME0 + i;
		}
	}
	*out = m;
	*slots = s;
	*n = k;
	return 0;
fail:
	free(m);
	free(s);
	return -1;
}

static long var_index(const struct rexp *e, const char *name)
{
	for (size_t i = 0; i < e->nvars; i++)
		if (strcmp(e->vars[i].name, name) == 0)
			return (long)i;
	return -1;
}

/* The latest epoch (by timestamp), or -1. */
static long latest_epoch(const struct rexp *e)
{
	long best = -1;
	for (size_t k = 0; k < e->nepochs; k++)
		if (best < 0 || e->epochs[k].ts >= e->epochs[best].ts)
			best = (long)k;
	return best;
}

/* Builds and decides one experiment's analysis; NULL when out of memory. */
static struct analysis *analyse(struct rexp *e, const struct conf_experiment *ce)
{
	struct analysis *a = NULL;
	struct conf_metric *specs = NULL;
	size_t *slots = NULL, nspecs = 0, k = e->nvars;
	size_t *order = NULL;
	const char **names = NULL;
	double *weights = NULL;
	const struct accum_variant **acc = NULL;
	struct accum_variant *tmp = NULL;
	bool *taken = NULL;

	if (metric_specs(e, ce, &specs, &slots, &nspecs) < 0)
		return NULL;
	/* config variants may add arms that got no traffic */
	if (ce)
		for (size_t i = 0; i < ce->nvariants; i++) {
			struct logrec_str nm = {ce->variants[i].name, strlen(ce->variants[i].name)};
			if (find_var(e, &nm) < 0)
				goto out;
		}
	if (e->nvars == 0) {
		/* only shadow (or unknown) records: an empty control keeps the report whole */
		struct logrec_str nm = {"control", strlen("control")};
		if (find_var(e, &nm) < 0)
			goto out;
	}
	k = e->nvars;
	order = calloc(k + 1, sizeof(*order));
	taken = calloc(k + 1, sizeof(*taken));
	names = calloc(k + 1, sizeof(*names));
	weights = calloc(k + 1, sizeof(*weights));
	acc = calloc(k + 1, sizeof(*acc));
	tmp = calloc(k + 1, sizeof(*tmp));
	if (!order || !taken || !names || !weights || !acc || !tmp)
		goto out;

	/* control first: configuration order, else the latest config record, else "control" */
	size_t no = 0;
	long le = latest_epoch(e);
	if (ce) {
		for (size_t i = 0; i < ce->nvariants; i++) {
			long vi = var_index(e, ce->variants[i].name);
			if (vi >= 0 && !taken[vi])
				order[no++] = (size_t)vi, taken[vi] = true;
		}
	} else if (le >= 0) {
		for (size_t i = 0; i < e->epochs[le].n; i++) {
			long vi = var_index(e, e->epochs[le].names[i]);
			if (vi >= 0 && !taken[vi])
				order[no++] = (size_t)vi, taken[vi] = true;
		}
	} else {
		long vi = var_index(e, "control");
		if (vi >= 0)
			order[no++] = (size_t)vi, taken[vi] = true;
	}
	for (size_t i = 0; i < k; i++)
		if (!taken[i])
			order[no++] = i;

	/* weights: the latest config record, else the configuration */
	bool have_w = false;
	double *wbyvar = calloc(k + 1, sizeof(double));
	if (wbyvar == NULL)
		goto out;
	if (le >= 0) {
		have_w = true;
		for (size_t i = 0; i < e->epochs[le].n; i++) {
			long vi = var_index(e, e->epochs[le].names[i]);
			if (vi >= 0)
				wbyvar[vi] = e->epochs[le].w[i];
		}
	} else if (ce) {
		have_w = true;
		for (size_t i = 0; i < ce->nvariants; i++) {
			long vi = var_index(e, ce->variants[i].name);
			if (vi >= 0)
				wbyvar[vi] = ce->variants[i].weight_bp / 100.0;
		}
	}
	/* each epoch's weights, in the analysis's variant order, by the units' epoch bit */
	double *ew = calloc(ACCUM_EPOCHS * k + 1, sizeof(double));
	if (ew == NULL) {
		free(wbyvar);
		goto out;
	}
	for (size_t q = 0; q < e->nepochs; q++) {
		struct repoch *p = &e->epochs[q];
		size_t bit = q < 30 ? q : 30;
		for (size_t j = 0; j < k; j++)
			ew[bit * k + j] = 0;
		for (size_t i = 0; i < p->n; i++) {
			long vi = var_index(e, p->names[i]);
			for (size_t j = 0; vi >= 0 && j < k; j++)
				if (order[j] == (size_t)vi)
					ew[bit * k + j] = p->w[i];
		}
	}

	for (size_t j = 0; j < k; j++) {
		size_t vi = order[j];
		struct rvar *v = &e->vars[vi];
		names[j] = v->name;
		weights[j] = wbyvar[vi];
		tmp[j] = *v->acc;
		tmp[j].nmetrics = nspecs;
		tmp[j].metrics = calloc(nspecs + 1, sizeof(struct accum_metric));
		if (tmp[j].metrics == NULL) {
			free(wbyvar);
			free(ew);
			goto out;
		}
		for (size_t m = 0; m < nspecs; m++)
			tmp[j].metrics[m] = v->slots[slots[m]]; /* shallow: histograms shared */
		acc[j] = &tmp[j];
	}
	free(wbyvar);

	char unit[160];
	struct conf_decision dec;
	if (ce)
		dec = ce->decision;
	else
		analysis_decision_defaults(&dec);
	struct analysis_input in = {
	    .experiment = e->name,
	    .nvariants = k,
	    .names = names,
	    .weights = have_w ? weights : NULL,
	    .epoch_weights = ew,
	    .unit = analysis_unit_name(ce, unit, sizeof(unit)),
	    .acc = acc,
	    .metrics = specs,
	    .nmetrics = nspecs,
	    .decision = &dec,
	};
	a = analysis_build(&in);
	free(ew);
	if (a && decide_run(a, NULL) < 0) {
		analysis_free(a);
		a = NULL;
	}
out:
	for (size_t j = 0; tmp && j < k; j++)
		free(tmp[j].metrics);
	free(tmp);
	free(acc);
	free(weights);
	free(names);
	free(taken);
	free(order);
	free(slots);
	free(specs);
	return a;
}

static void free_report(struct report *r)
{
	for (size_t i = 0; i < r->nexps; i++) {
		struct rexp *e = &r->exps[i];
		for (size_t v = 0; v < e->nvars; v++) {
			for (size_t s = 0; s < exp_nslots(e); s++)
				accum_metric_release(&e->vars[v].slots[s]);
			free(e->vars[v].slots);
			accum_variant_free(e->vars[v].acc);
			free(e->vars[v].name);
		}
		free(e->vars);
		for (size_t o = 0; o < e->noutcomes; o++)
			free(e->outcomes[o]);
		free(e->outcomes);
		for (size_t q = 0; q < e->nepochs; q++) {
			for (size_t n = 0; n < e->epochs[q].n; n++)
				free(e->epochs[q].names[n]);
			free(e->epochs[q].names);
			free(e->epochs[q].w);
		}
		free(e->epochs);
		shadow_stats_free(e->shadow);
		free(e->name);
	}
	free(r->exps);
	free(r->scratch);
}

/* ---- command line ---- */

static void usage(FILE *f)
{
	fputs(
	    "usage: abgate report [--experiment NAME] [--format text|json|md|html] [-o OUT]\n"
	    "                     [-c FILE] LOG...\n"
	    "\n"
	    "Analyses outcome logs (JSON Lines; several logs, e.g. one per instance, merge;\n"
	    "\"-\" reads standard input) and recommends promote, rollback, continue or "
	    "investigate.\n"
	    "\n"
	    "  -e, --experiment NAME  report only NAME. Without it every experiment found in the\n"
	    "                         logs is reported (JSON: an array when there are several)\n"
	    "  -f, --format FMT       text (default, 100 columns), json, md (Markdown), html\n"
	    "                         (one self-contained file with SVG charts)\n"
	    "  -o, --output OUT       write to OUT instead of standard output\n"
	    "  -c, --config FILE      take metrics, decision settings, variant order and weights\n"
	    "                         from the configuration. Without it the metrics are "
	    "inferred:\n"
	    "                         error_rate (5xx, guardrail), latency_ms (guardrail) and one\n"
	    "                         metric per outcome name (binary when every value is 0/1;\n"
	    "                         the first binary one is primary)\n"
	    "      --max-units N      distinct units held exactly per variant (default 1048576,\n"
	    "                         16-32 bytes each); past it the sample-ratio check counts an\n"
	    "                         exact hash sample of the units and says so\n"
	    "      --max-unit-sums N  units whose exact sums are kept per metric and variant\n"
	    "                         (default 262144, 32-64 bytes each); past it the variances\n"
	    "                         come from 1024 pseudo-unit buckets per metric\n"
	    "  -h, --help             this text\n"
	    "\n"
	    "Weights come from the latest config record in the logs, else the configuration; the\n"
	    "sample-ratio check compares each weight epoch's distinct units with its weights.\n"
	    "Requests with a forced variant are left out. Hard gates are evaluated once over the\n"
	    "whole log.\n"
	    "Malformed or torn lines are skipped and counted (records.skipped).\n"
	    "Every test is at the unit: means are ratios over units with delta-method variances,\n"
	    "and the sample-ratio check counts distinct units.\n"
	    "Shadow records (mirrored requests) get a section of their own: agreement with the\n"
	    "primary answers (95% Wilson interval), paired latencies, 5xx asymmetry (McNemar).\n"
	    "Exit status: 0 ok, 1 bad input (one line on standard error), 2 runtime failure.\n",
	    f);
}

static void utc_now(char *buf, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int report_main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"experiment", required_argument, NULL, 'e'},
	    {"format", required_argument, NULL, 'f'},
	    {"output", required_argument, NULL, 'o'},
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {"max-units", required_argument, NULL, 'U'},
	    {"max-unit-sums", required_argument, NULL, 'S'},
	    {NULL, 0, NULL, 0},
	};
	const char *only = NULL, *out = NULL, *cfile = NULL;
	int fmt = RENDER_TEXT, c;
	opterr = 0;
	optind = 0;
	max_units = REPORT_MAX_UNITS;
	max_sums = REPORT_MAX_SUMS;
	while ((c = getopt_long(argc, argv, ":e:f:o:c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			only = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'c':
			cfile = optarg;
			break;
		case 'f':
			fmt = render_format_parse(optarg);
			if (fmt < 0) {
				err1("unknown format '%s' (use text, json, md or html)", optarg);
				return 1;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'U':
		case 'S': {
			char *end;
			errno = 0;
			unsigned long long n = strtoull(optarg, &end, 10);
			if (errno || end == optarg || *end || n < 16 || n > (1ull << 30)) {
				err1("--%s must be an integer in [16, 1073741824]",
				     c == 'U' ? "max-units" : "max-unit-sums");
				return 1;
			}
			*(c == 'U' ? &max_units : &max_sums) = (size_t)n;
			break;
		}
		case ':':
			err1("option %s needs an argument", argv[optind - 1]);
			return 1;
		default:
			err1("unknown option '%s' (see --help)", argv[optind - 1]);
			return 1;
		}
	}
	if (optind >= argc) {
		err1("no log given (see --help)");
		return 1;
	}
	htest_init();

	int rc = 2;
	struct conf *conf = NULL;
	struct report r = {.only = only};
	struct analysis **as = NULL;
	struct render_meta *metas = NULL;
	size_t nas = 0;
	FILE *f = NULL;
	char *buf = malloc(READ_BUF);
	char generated[32];
	r.scratch = malloc(MAX_LINE + 1);
	if (buf == NULL || r.scratch == NULL) {
		err1("out of memory");
		goto done;
	}
	if (cfile) {
		char err[512];
		if (conf_load(cfile, &conf, err, sizeof(err)) < 0) {
			err1("%s", err);
			rc = 1;
			goto done;
		}
	}
	fold_4xx = false;
	for (size_t i = 0; conf && i < conf->nexperiments; i++)
		for (size_t j = 0; j < conf->experiments[i].nmetrics; j++)
			fold_4xx |= conf->experiments[i].metrics[j].source == CONF_SRC_STATUS_4XX;
	for (int i = optind; i < argc; i++) {
		int s = stream_log(&r, argv[i], buf);
		if (s != 0) {
			rc = s;
			goto done;
		}
	}
	struct pending_counts pc;
	if (pending_attribute((const char *const *)argv + optind, (size_t)(argc - optind), only,
			      fold_pending, &r, &pc) < 0) {
		err1("pending outcomes: %s", strerror(errno));
		goto done;
	}
	if (pc.unattributed > 0)
		err1("%llu pending outcome(s) have no request record in the logs given: not counted",
		     (unsigned long long)pc.unattributed);
	if (r.nexps == 0) {
		if (only)
			err1("experiment '%s' not found in the logs", only);
		else
			err1("no experiment records in the logs");
		rc = 1;
		goto done;
	}
	utc_now(generated, sizeof(generated));
	as = calloc(r.nexps, sizeof(*as));
	metas = calloc(r.nexps, sizeof(*metas));
	if (as == NULL || metas == NULL) {
		err1("out of memory");
		goto done;
	}
	for (size_t i = 0; i < r.nexps; i++) {
		struct rexp *e = &r.exps[i];
		const struct conf_experiment *ce =
		    conf ? conf_experiment_find(conf, e->name) : NULL;
		as[nas] = analyse(e, ce);
		if (as[nas] == NULL) {
			err1("out of memory");
			goto done;
		}
		metas[nas] = e->meta;
		metas[nas].generated = generated;
		metas[nas].logs = (const char *const *)argv + optind;
		metas[nas].nlogs = (size_t)(argc - optind);
		metas[nas].skipped = r.skipped;
		if (e->shadow != NULL) {
			shadow_stats_summary(e->shadow, &e->shadow_sum);
			metas[nas].shadow_stats = &e->shadow_sum;
		}
		nas++;
	}
	if (out) {
		f = fopen(out, "w");
		if (f == NULL) {
			err1("%s: %s", out, strerror(errno));
			rc = 1;
			goto done;
		}
	}
	if (render_write(f ? f : stdout, (enum render_format)fmt, as, metas, nas) < 0 ||
	    fflush(f ? f : stdout) != 0) {
		err1("%s: write failed: %s", out ? out : "standard output", strerror(errno));
		goto done;
	}
	if (f) {
		int cr = fclose(f);
		f = NULL;
		if (cr != 0) {
			err1("%s: %s", out, strerror(errno));
			goto done;
		}
	}
	rc = 0;
done:
	if (f)
		fclose(f);
	for (size_t i = 0; i < nas; i++)
		analysis_free(as[i]);
	free(as);
	free(metas);
	free_report(&r);
	free(buf);
	conf_free(conf);
	return rc;
}
