/*
 * live.c - live statistics of the running proxy (see include/live.h).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "accum.h"
#include "analysis.h"
#include "logrec.h"
#include "shadow_stats.h"
#include "conf.h"
#include "live.h"
#include "rollout.h"

#define MAX_PAIRS 65536
#define MAX_METRICS 64 /* the configuration allows no more per experiment */

const double live_duration_bounds[LIVE_DURATION_BUCKETS] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

struct pair {
	char *exp;
	char *variant;
};

/* Pairs are appended under the lock and never change once published; threads learn of a new
 * id only through a generation handed over under a lock, so they read them without locking. */
static struct pair *pairs[MAX_PAIRS];
static int npairs;
static pthread_mutex_t pairs_lock = PTHREAD_MUTEX_INITIALIZER;

/* The metric layout an entry's accumulators were made for. */
struct layout {
	size_t n;
	char **names;
	bool *continuous;
};

struct entry {
	bool dirty;
	uint64_t codes[500];
	uint64_t dur[LIVE_DURATION_BUCKETS + 1]; /* per bucket; the last is +Inf */
	uint64_t dur_count;
	double dur_sum;
	const struct conf_experiment *seen; /* (ref) last experiment checked against layout */
	struct layout layout;
	struct accum_variant *acc;          /* NULL outside experiments */
	uint32_t epoch;                     /* rollout step the accumulators belong to */
};

struct table {
	struct entry **e; /* indexed by pair id */
	int n;
};

struct live_shard {
	struct table delta;   /* the owning thread's, unlocked */
	struct table pub;     /* under lock */
	pthread_mutex_t lock;
	struct live_shard *next;
};

static struct live_shard *shards;
static pthread_mutex_t shards_lock = PTHREAD_MUTEX_INITIALIZER;

static int pair_find_or_add(const char *exp, const char *variant)
{
	for (int i = 0; i < npairs; i++)
		if (strcmp(pairs[i]->exp, exp) == 0 && strcmp(pairs[i]->variant, variant) == 0)
			return i;
	if (npairs == MAX_PAIRS)
		return -1;
	struct pair *p = calloc(1, sizeof(*p));
	if (p == NULL || (p->exp = strdup(exp)) == NULL || (p->variant = strdup(variant)) == NULL) {
		if (p != NULL)
			free(p->exp);
		free(p);
		return -1;
	}
	pairs[npairs] = p;
	return npairs++;
}

int live_register_conf(struct conf *c)
{
	int rc = 0;

	pthread_mutex_lock(&pairs_lock);
	if (pair_find_or_add("", "") != 0)
		rc = -1;
	for (size_t i = 0; i < c->nexperiments && rc == 0; i++) {
		struct conf_experiment *e = &c->experiments[i];
		for (size_t k = 0; k < e->nvariants; k++) {
			e->variants[k].id = pair_find_or_add(e->name, e->variants[k].name);
			if (e->variants[k].id < 0) {
				rc = -1;
				break;
			}
		}
	}
	pthread_mutex_unlock(&pairs_lock);
	return rc;
}

void live_pair_names(int id, const char **exp, const char **variant)
{
	*exp = pairs[id]->exp;
	*variant = pairs[id]->variant;
}

int live_pair_count(void)
{
	pthread_mutex_lock(&pairs_lock);
	int n = npairs;
	pthread_mutex_unlock(&pairs_lock);
	return n;
}

/* ---- layouts ----------------------------------------------------------------------------- */

static void layout_free(struct layout *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->names[i]);
	free(l->names);
	free(l->continuous);
	memset(l, 0, sizeof(*l));
}

static bool layout_is(const struct layout *l, const struct conf_experiment *e)
{
	if (l->n != e->nmetrics)
		return false;
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->names[i], e->metrics[i].name) != 0 ||
		    l->continuous[i] != (e->metrics[i].kind == CONF_METRIC_CONTINUOUS))
			return false;
	return true;
}

static bool layout_same(const struct layout *a, const struct layout *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->names[i], b->names[i]) != 0 || a->continuous[i] != b->continuous[i])
			return false;
	return true;
}

static int layout_copy(struct layout *dst, size_t n, const char *const *names,
		       const bool *continuous)
{
	memset(dst, 0, sizeof(*dst));
	if (n == 0)
		return 0;
	dst->names = calloc(n, sizeof(char *));
	dst->continuous = calloc(n, sizeof(bool));
	if (dst->names == NULL || dst->continuous == NULL)
		goto fail;
	dst->n = n;
	for (size_t i = 0; i < n; i++) {
		if ((dst->names[i] = strdup(names[i])) == NULL)
			goto fail;
		dst->continuous[i] = continuous[i];
	}
	return 0;
fail:
	layout_free(dst);
	return -1;
}

static int layout_of(struct layout *dst, const struct conf_experiment *e)
{
	const char *names[MAX_METRICS];
	bool cont[MAX_METRICS];

	if (e->nmetrics > MAX_METRICS)
		return -1;
	for (size_t i = 0; i < e->nmetrics; i++) {
		names[i] = e->metrics[i].name;
		cont[i] = e->metrics[i].kind == CONF_METRIC_CONTINUOUS;
	}
	return layout_copy(dst, e->nmetrics, names, cont);
}

/* ---- entries ------------------------------------------------------------------------------ */

static void entry_free(struct entry *en)
{
	if (en == NULL)
		return;
	accum_variant_free(en->acc);
	layout_free(&en->layout);
	free(en);
}

static struct entry *table_get(struct table *t, int id)
{
	if (id >= t->n) {
		int n = id + 16;
		struct entry **ne = realloc(t->e, (size_t)n * sizeof(*ne));
		if (ne == NULL)
			return NULL;
		memset(ne + t->n, 0, (size_t)(n - t->n) * sizeof(*ne));
		t->e = ne;
		t->n = n;
	}
	if (t->e[id] == NULL)
		t->e[id] = calloc(1, sizeof(struct entry));
	return t->e[id];
}

static void table_free(struct table *t)
{
	for (int i = 0; i < t->n; i++)
		entry_free(t->e[i]);
	free(t->e);
	t->e = NULL;
	t->n = 0;
}

/* Makes en's accumulators follow layout l (dropping their data when the layout changed). */
static int entry_set_layout(struct entry *en, const struct layout *l)
{
	if (en->acc != NULL && layout_same(&en->layout, l))
		return 0;
	accum_variant_free(en->acc);
	layout_free(&en->layout);
	en->acc = NULL;
	if (layout_copy(&en->layout, l->n, (const char *const *)l->names, l->continuous) < 0)
		return -1;
	en->acc = accum_variant_new(l->n, l->continuous);
	return en->acc != NULL ? 0 : -1;
}

/* The entry's accumulators for experiment e, (re)made when e's metrics differ. */
static struct accum_variant *entry_acc(struct entry *en, const struct conf_experiment *e)
{
	if (en->seen == e && en->acc != NULL)
		return en->acc;
	if (en->acc == NULL || !layout_is(&en->layout, e)) {
		struct layout l;
		if (layout_of(&l, e) < 0)
			return NULL;
		int rc = entry_set_layout(en, &l);
		layout_free(&l);
		if (rc < 0)
			return NULL;
	}
	en->seen = e;
	return en->acc;
}

static void acc_reset(struct accum_variant *v)
{
	accum_variant_clear(v);
}

/* The rollout epoch of experiment e (0 without a rollout). */
static uint32_t epoch_of(const struct conf_experiment *e)
{
	return e->rt != NULL ? atomic_load_explicit(&e->rt->epoch, memory_order_relaxed) : 0;
}

/* The entry's accumulators for e in its current epoch (emptied when a new step began). */
static struct accum_variant *entry_acc_now(struct entry *en, const struct conf_experiment *e)
{
	struct accum_variant *acc = entry_acc(en, e);
	uint32_t ep = epoch_of(e);

	if (acc != NULL && en->epoch != ep) {
		acc_reset(acc);
		en->epoch = ep;
	}
	return acc;
}

/* ---- shards ------------------------------------------------------------------------------- */

struct live_shard *live_shard_new(void)
{
	struct live_shard *sh = calloc(1, sizeof(*sh));

	if (sh == NULL)
		return NULL;
	pthread_mutex_init(&sh->lock, NULL);
	pthread_mutex_lock(&shards_lock);
	sh->next = shards;
	shards = sh;
	pthread_mutex_unlock(&shards_lock);
	return sh;
}

void live_shard_free(struct live_shard *sh)
{
	if (sh == NULL)
		return;
	pthread_mutex_lock(&shards_lock);
	for (struct live_shard **pp = &shards; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == sh) {
			*pp = sh->next;
			break;
		}
	}
	pthread_mutex_unlock(&shards_lock);
	table_free(&sh->delta);
	table_free(&sh->pub);
	pthread_mutex_destroy(&sh->lock);
	free(sh);
}

void live_request(struct live_shard *sh, const struct conf_experiment *e,
		  const struct conf_variant *v, int status, double latency_ms, double t,
		  uint64_t unit_hash, bool excluded)
{
	struct entry *en = table_get(&sh->delta, v != NULL ? v->id : 0);

	if (en == NULL)
		return;
	en->dirty = true;
	if (status >= 100 && status <= 599)
		en->codes[status - 100]++;
	double secs = latency_ms / 1000.0;
	size_t b = 0;
	while (b < LIVE_DURATION_BUCKETS && secs > live_duration_bounds[b])
		b++;
	en->dur[b]++;
	en->dur_count++;
	en->dur_sum += secs;
	if (e == NULL || excluded)
		return;
	struct accum_variant *acc = entry_acc_now(en, e);
	if (acc == NULL)
		return;
	/* one key per request: the unit's set entry, per-unit sums and bucket */
	uint64_t key = accum_unit_key(unit_hash);
	/* out of memory leaves the unit uncounted; the request and its values still count */
	(void)accum_variant_request(acc, t, unit_hash ? key : 0, 0);
	for (size_t i = 0; i < e->nmetrics; i++) {
		switch (e->metrics[i].source) {
		case CONF_SRC_STATUS_5XX:
			accum_metric_add_unit(&acc->metrics[i], t, status >= 500 ? 1.0 : 0.0, key);
			break;
		case CONF_SRC_STATUS_4XX:
			accum_metric_add_unit(&acc->metrics[i], t, status >= 400 && status < 500,
					      key);
			break;
		case CONF_SRC_LATENCY_MS:
			accum_metric_add_unit(&acc->metrics[i], t, latency_ms, key);
			break;
		case CONF_SRC_OUTCOME:
			break;
		}
	}
}

void live_outcome_unit(struct live_shard *sh, const struct conf_experiment *e,
		       const struct conf_variant *v, size_t m, double value, double t,
		       uint64_t unit_hash)
{
	struct entry *en = table_get(&sh->delta, v->id);

	if (en == NULL)
		return;
	struct accum_variant *acc = entry_acc_now(en, e);
	if (acc == NULL || m >= acc->nmetrics)
		return;
	en->dirty = true;
	accum_metric_add_unit(&acc->metrics[m], t, value, accum_unit_key(unit_hash));
}

void live_outcome(struct live_shard *sh, const struct conf_experiment *e,
		  const struct conf_variant *v, size_t m, double value, double t)
{
	live_outcome_unit(sh, e, v, m, value, t, 0);
}

void live_publish(struct live_shard *sh)
{
	bool any = false;

	for (int i = 0; i < sh->delta.n && !any; i++)
		any = sh->delta.e[i] != NULL && sh->delta.e[i]->dirty;
	if (!any)
		return;
	pthread_mutex_lock(&sh->lock);
	for (int i = 0; i < sh->delta.n; i++) {
		struct entry *d = sh->delta.e[i];
		if (d == NULL || !d->dirty)
			continue;
		struct entry *p = table_get(&sh->pub, i);
		if (p == NULL)
			continue;
		for (size_t k = 0; k < 500; k++)
			p->codes[k] += d->codes[k];
		for (size_t k = 0; k <= LIVE_DURATION_BUCKETS; k++)
			p->dur[k] += d->dur[k];
		p->dur_count += d->dur_count;
		p->dur_sum += d->dur_sum;
		memset(d->codes, 0, sizeof(d->codes));
		memset(d->dur, 0, sizeof(d->dur));
		d->dur_count = 0;
		d->dur_sum = 0;
		if (d->acc != NULL && entry_set_layout(p, &d->layout) == 0) {
			/* a newer step empties the published figures; older data is dropped */
			if ((int32_t)(d->epoch - p->epoch) > 0) {
				acc_reset(p->acc);
				p->epoch = d->epoch;
			}
			if (d->epoch == p->epoch)
				accum_variant_merge(p->acc, d->acc);
			acc_reset(d->acc);
		}
		d->dirty = false;
	}
	pthread_mutex_unlock(&sh->lock);
}

struct analysis *live_analysis(const struct conf_experiment *e, const struct conf_metric *metrics,
			       const struct conf_decision *dec)
{
	struct accum_variant **acc;
	const char **names = calloc(e->nvariants, sizeof(*names));
	double *weights = calloc(e->nvariants, sizeof(*weights));
	struct analysis *a = NULL;

	if (names != NULL && weights != NULL && live_collect(e, &acc) == 0) {
		for (size_t i = 0; i < e->nvariants; i++) {
			names[i] = e->variants[i].name;
			weights[i] = rollout_weight_bp(e, i) / 100.0;
		}
		char unit[160];
		struct analysis_input in = {
			.experiment = e->name,
			.unit = analysis_unit_name(e, unit, sizeof(unit)),
			.nvariants = e->nvariants,
			.names = names,
			.weights = weights,
			.acc = (const struct accum_variant *const *)acc,
			.metrics = metrics,
			.nmetrics = e->nmetrics,
			.decision = dec,
		};
		a = analysis_build(&in);
		for (size_t i = 0; i < e->nvariants; i++)
			accum_variant_free(acc[i]);
		free(acc);
	}
	free(names);
	free(weights);
	return a;
}

int live_collect(const struct conf_experiment *e, struct accum_variant ***out)
{
	bool cont[MAX_METRICS];
	struct accum_variant **acc;

	if (e->nmetrics > MAX_METRICS || (acc = calloc(e->nvariants, sizeof(*acc))) == NULL)
		return -1;
	for (size_t i = 0; i < e->nmetrics; i++)
		cont[i] = e->metrics[i].kind == CONF_METRIC_CONTINUOUS;
	for (size_t v = 0; v < e->nvariants; v++) {
		if ((acc[v] = accum_variant_new(e->nmetrics, cont)) == NULL)
			goto fail;
	}
	pthread_mutex_lock(&shards_lock);
	for (struct live_shard *sh = shards; sh != NULL; sh = sh->next) {
		pthread_mutex_lock(&sh->lock);
		for (size_t v = 0; v < e->nvariants; v++) {
			int id = e->variants[v].id;
			if (id >= sh->pub.n || sh->pub.e[id] == NULL)
				continue;
			struct entry *p = sh->pub.e[id];
			if (p->acc != NULL && layout_is(&p->layout, e) && p->epoch == epoch_of(e))
				accum_variant_merge(acc[v], p->acc);
		}
		pthread_mutex_unlock(&sh->lock);
	}
	pthread_mutex_unlock(&shards_lock);
	*out = acc;
	return 0;
fail:
	for (size_t v = 0; v < e->nvariants; v++)
		accum_variant_free(acc[v]);
	free(acc);
	return -1;
}

int live_totals_get(struct live_totals *t)
{
	int n = live_pair_count();

	memset(t, 0, sizeof(*t));
	t->npairs = n;
	t->codes = calloc((size_t)n, sizeof(*t->codes));
	t->dur = calloc((size_t)n, sizeof(*t->dur));
	t->dur_count = calloc((size_t)n, sizeof(uint64_t));
	t->dur_sum = calloc((size_t)n, sizeof(double));
	if (n > 0 && (t->codes == NULL || t->dur == NULL || t->dur_count == NULL ||
		      t->dur_sum == NULL)) {
		live_totals_free(t);
		return -1;
	}
	pthread_mutex_lock(&shards_lock);
	for (struct live_shard *sh = shards; sh != NULL; sh = sh->next) {
		pthread_mutex_lock(&sh->lock);
		for (int i = 0; i < sh->pub.n && i < n; i++) {
			const struct entry *p = sh->pub.e[i];
			if (p == NULL)
				continue;
			for (size_t k = 0; k < 500; k++)
				t->codes[i][k] += p->codes[k];
			uint64_t cum = 0;
			for (size_t k = 0; k < LIVE_DURATION_BUCKETS; k++) {
				cum += p->dur[k];
				t->dur[i][k] += cum;
			}
			t->dur_count[i] += p->dur_count;
			t->dur_sum[i] += p->dur_sum;
		}
		pthread_mutex_unlock(&sh->lock);
	}
	pthread_mutex_unlock(&shards_lock);
	return 0;
}

void live_totals_free(struct live_totals *t)
{
	free(t->codes);
	free(t->dur);
	free(t->dur_count);
	free(t->dur_sum);
	memset(t, 0, sizeof(*t));
}

/* ---- shadow comparisons -------------------------------------------------------------------- */

struct shadow_entry {
	struct shadow_entry *next;
	char *exp;
	struct shadow_stats *st;
};

static pthread_mutex_t shadow_lock = PTHREAD_MUTEX_INITIALIZER;
static struct shadow_entry *shadow_entries; /* kept for the life of the process */

static struct shadow_entry *shadow_find(const char *exp)
{
	for (struct shadow_entry *en = shadow_entries; en != NULL; en = en->next)
		if (strcmp(en->exp, exp) == 0)
			return en;
	return NULL;
}

int live_shadow_record(const char *exp, const char *line, size_t len)
{
	struct logrec rec;
	char buf[4096]; /* a shadow record fits (shadow.c bounds it well below this) */
	char *scratch = len < sizeof(buf) ? buf : malloc(len + 1);
	int rc = -1;

	if (scratch == NULL)
		return -1;
	if (logrec_parse(line, len, &rec, scratch, len + 1) != LOGREC_OK ||
	    rec.type != LOGREC_SHADOW) {
		if (scratch != buf)
			free(scratch);
		return -1;
	}
	pthread_mutex_lock(&shadow_lock);
	struct shadow_entry *en = shadow_find(exp);
	if (en == NULL && (en = calloc(1, sizeof(*en))) != NULL) {
		en->exp = strdup(exp);
		en->st = shadow_stats_new();
		if (en->exp == NULL || en->st == NULL) {
			free(en->exp);
			shadow_stats_free(en->st);
			free(en);
			en = NULL;
		} else {
			en->next = shadow_entries;
			shadow_entries = en;
		}
	}
	if (en != NULL)
		rc = shadow_stats_add(en->st, &rec) < 0 ? -1 : 0;
	pthread_mutex_unlock(&shadow_lock);
	if (scratch != buf)
		free(scratch);
	return rc;
}

bool live_shadow_summary(const char *exp, struct shadow_summary *out)
{
	pthread_mutex_lock(&shadow_lock);
	struct shadow_entry *en = shadow_find(exp);
	if (en != NULL)
		shadow_stats_summary(en->st, out);
	pthread_mutex_unlock(&shadow_lock);
	return en != NULL;
}
