/*
 * accum.c - mergeable accumulators: moments, log-linear histogram, HyperLogLog, unit sets and
 * per-unit sums, pseudo-unit buckets, time series (see include/accum.h). No locks, no GSL; the
 * update path allocates only when a unit table grows (doubling, so rarely).
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "accum.h"

/* ---- moments ---- */

void accum_moments_init(struct accum_moments *m)
{
	memset(m, 0, sizeof(*m));
	m->min = INFINITY;
	m->max = -INFINITY;
}

void accum_moments_add(struct accum_moments *m, double x)
{
	if (m->n == 0)
		m->ref = x;
	double y = x - m->ref;
	m->n++;
	double d = y - m->mean;
	m->mean += d / (double)m->n;
	m->m2 += d * (y - m->mean);
	if (x < m->min)
		m->min = x;
	if (x > m->max)
		m->max = x;
}

void accum_moments_merge(struct accum_moments *dst, const struct accum_moments *src)
{
	if (src->n == 0)
		return;
	if (dst->n == 0) {
		*dst = *src;
		return;
	}
	/* src's mean expressed relative to dst's reference */
	double mb = src->mean + (src->ref - dst->ref);
	double na = (double)dst->n, nb = (double)src->n, n = na + nb;
	double d = mb - dst->mean;
	dst->mean += d * nb / n;
	dst->m2 += src->m2 + d * d * na * nb / n;
	dst->n += src->n;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

double accum_moments_mean(const struct accum_moments *m)
{
	return m->n ? m->ref + m->mean : 0.0;
}

double accum_moments_var(const struct accum_moments *m)
{
	return m->n >= 2 ? m->m2 / (double)(m->n - 1) : 0.0;
}

double accum_moments_pvar(const struct accum_moments *m)
{
	return m->n ? m->m2 / (double)m->n : 0.0;
}

/* ---- histogram ---- */

void accum_hist_init(struct accum_hist *h)
{
	memset(h, 0, sizeof(*h));
}

size_t accum_hist_index(double x)
{
	double ax = fabs(x);
	if (!(ax >= ldexp(1.0, ACCUM_HIST_EMIN)))
		return ACCUM_HIST_HALF; /* zero bucket (also catches NaN defensively) */
	int e;
	double m = frexp(ax, &e); /* ax = m * 2^e, m in [0.5, 1) */
	long k = (long)(e - 1) - ACCUM_HIST_EMIN;
	long pos;
	if (k >= ACCUM_HIST_EMAX - ACCUM_HIST_EMIN) {
		pos = ACCUM_HIST_HALF - 1;
	} else {
		long sub = (long)((m - 0.5) * (2.0 * ACCUM_HIST_SUB));
		if (sub >= ACCUM_HIST_SUB)
			sub = ACCUM_HIST_SUB - 1;
		pos = k * ACCUM_HIST_SUB + sub;
	}
	return x > 0 ? (size_t)(ACCUM_HIST_HALF + 1 + pos) : (size_t)(ACCUM_HIST_HALF - 1 - pos);
}

double accum_hist_value(size_t i)
{
	if (i == ACCUM_HIST_HALF)
		return 0.0;
	long pos =
	    i > ACCUM_HIST_HALF ? (long)i - ACCUM_HIST_HALF - 1 : ACCUM_HIST_HALF - 1 - (long)i;
	long k = pos / ACCUM_HIST_SUB, sub = pos % ACCUM_HIST_SUB;
	double mid = ldexp(1.0 + ((double)sub + 0.5) / ACCUM_HIST_SUB, (int)k + ACCUM_HIST_EMIN);
	return i > ACCUM_HIST_HALF ? mid : -mid;
}

void accum_hist_clear(struct accum_hist *h)
{
	if (h->hi > h->lo)
		memset(h->counts + h->lo, 0, (h->hi - h->lo) * sizeof(h->counts[0]));
	h->total = 0;
	h->lo = h->hi = 0;
}

/* Widens the in-use range to [lo, hi). */
static inline void hist_cover(struct accum_hist *h, uint32_t lo, uint32_t hi)
{
	if (h->hi == h->lo) {
		h->lo = lo;
		h->hi = hi;
		return;
	}
	if (lo < h->lo)
		h->lo = lo;
	if (hi > h->hi)
		h->hi = hi;
}

void accum_hist_add(struct accum_hist *h, double x)
{
	uint32_t i = (uint32_t)accum_hist_index(x);

	h->counts[i]++;
	h->total++;
	hist_cover(h, i, i + 1);
}

void accum_hist_merge(struct accum_hist *dst, const struct accum_hist *src)
{
	if (src->total == 0)
		return;
	for (size_t i = src->lo; i < src->hi; i++)
		dst->counts[i] += src->counts[i];
	dst->total += src->total;
	hist_cover(dst, src->lo, src->hi);
}

double accum_hist_quantile(const struct accum_hist *h, double q, double lo, double hi)
{
	if (h->total == 0 || !(q >= 0.0 && q <= 1.0))
		return NAN;
	double r = ceil(q * (double)h->total);
	uint64_t rank = r < 1.0 ? 1 : (uint64_t)r;
	if (rank > h->total)
		rank = h->total;
	uint64_t cum = 0;
	size_t i;
	for (i = 0; i < ACCUM_HIST_BUCKETS; i++) {
		cum += h->counts[i];
		if (cum >= rank)
			break;
	}
	double v = accum_hist_value(i);
	if (v < lo)
		v = lo;
	if (v > hi)
		v = hi;
	return v;
}

/* ---- HyperLogLog ---- */

void accum_hll_init(struct accum_hll *h)
{
	memset(h, 0, sizeof(*h));
}

void accum_hll_add(struct accum_hll *h, uint64_t hash)
{
	uint32_t idx = (uint32_t)(hash >> (64 - ACCUM_HLL_BITS));
	uint64_t rest = hash << ACCUM_HLL_BITS;
	/* rank = position of the first 1 bit in the remaining 52 bits (52 + 1 when none) */
	uint8_t rank =
	    rest ? (uint8_t)(__builtin_clzll(rest) + 1) : (uint8_t)(64 - ACCUM_HLL_BITS + 1);
	if (rank > h->reg[idx])
		h->reg[idx] = rank;
}

void accum_hll_merge(struct accum_hll *dst, const struct accum_hll *src)
{
	for (size_t i = 0; i < ACCUM_HLL_REGS; i++)
		if (src->reg[i] > dst->reg[i])
			dst->reg[i] = src->reg[i];
}

double accum_hll_estimate(const struct accum_hll *h)
{
	const double m = ACCUM_HLL_REGS;
	double sum = 0.0;
	size_t zeros = 0;
	for (size_t i = 0; i < ACCUM_HLL_REGS; i++) {
		sum += ldexp(1.0, -(int)h->reg[i]);
		zeros += h->reg[i] == 0;
	}
	double e = 0.7213 / (1.0 + 1.079 / m) * m * m / sum;
	/* small range: linear counting over the empty registers is far more accurate */
	if (e <= 2.5 * m && zeros > 0)
		e = m * log(m / (double)zeros);
	return e;
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

uint64_t accum_hash64(const void *p, size_t len)
{
	const unsigned char *s = p;
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ (len * 0x100000001b3ULL);
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, s, 8);
		h ^= mix64(w);
		h = ((h << 27) | (h >> 37)) * 0x9e3779b97f4a7c15ULL + 0x52dce729ULL;
		s += 8;
		len -= 8;
	}
	uint64_t w = 0;
	for (size_t i = 0; i < len; i++)
		w |= (uint64_t)s[i] << (8 * i);
	h ^= mix64(w ^ 0x2545f4914f6cdd1dULL);
	return mix64(h);
}

/* ---- units ---- */

uint64_t accum_unit_key(uint64_t unit_hash)
{
	static _Atomic uint64_t anon;
	uint64_t k;

	if (unit_hash != 0)
		k = mix64(unit_hash ^ 0x6a09e667f3bcc909ULL);
	else /* its own unit: a fresh key (mix64 is a bijection, so keys never repeat) */
		k = mix64(atomic_fetch_add_explicit(&anon, 1, memory_order_relaxed) ^
			  0xbb67ae8584caa73bULL);
	return k ? k : 1;
}

static size_t key_slot(uint64_t key, size_t cap)
{
	return (size_t)(key >> 16) & (cap - 1);
}

static bool in_sample(uint64_t key, unsigned level)
{
	return level == 0 || (key & ((1ULL << level) - 1)) == 0;
}

static size_t bucket_of(uint64_t key)
{
	return (size_t)(key >> (64 - ACCUM_BUCKET_BITS));
}

void accum_uset_init(struct accum_uset *s, size_t max)
{
	memset(s, 0, sizeof(*s));
	s->max = max ? max : ACCUM_UNITS_MAX;
}

void accum_uset_release(struct accum_uset *s)
{
	if (s == NULL)
		return;
	free(s->key);
	free(s->epoch);
	s->key = NULL;
	s->epoch = NULL;
	s->cap = s->count = 0;
}

void accum_uset_clear(struct accum_uset *s)
{
	size_t max = s->max;
	if (s->cap > 4096) {
		accum_uset_release(s);
	} else if (s->cap) {
		memset(s->key, 0, s->cap * sizeof(*s->key));
		memset(s->epoch, 0, s->cap * sizeof(*s->epoch));
	}
	s->count = 0;
	s->level = 0;
	s->max = max;
}

/* Rebuilds s with ncap slots, keeping the keys of the current sample level. */
static int uset_rehash(struct accum_uset *s, size_t ncap)
{
	uint64_t *k = calloc(ncap, sizeof(*k));
	uint32_t *e = calloc(ncap, sizeof(*e));
	if (k == NULL || e == NULL) {
		free(k);
		free(e);
		return -1;
	}
	size_t count = 0;
	for (size_t i = 0; i < s->cap; i++) {
		if (s->key[i] == 0 || !in_sample(s->key[i], s->level))
			continue;
		size_t j = key_slot(s->key[i], ncap);
		while (k[j])
			j = (j + 1) & (ncap - 1);
		k[j] = s->key[i];
		e[j] = s->epoch[i];
		count++;
	}
	free(s->key);
	free(s->epoch);
	s->key = k;
	s->epoch = e;
	s->cap = ncap;
	s->count = count;
	return 0;
}

/* Adds key with the epoch bits `bits`. */
static int uset_put(struct accum_uset *s, uint64_t key, uint32_t bits)
{
	if (!in_sample(key, s->level))
		return 0;
	if (s->cap) {
		size_t j = key_slot(key, s->cap);
		while (s->key[j]) {
			if (s->key[j] == key) {
				s->epoch[j] |= bits;
				return 0;
			}
			j = (j + 1) & (s->cap - 1);
		}
	}
	/* a new unit: past the cap, halve the sample until it fits */
	while (s->count + 1 > s->max && s->level < 63) {
		s->level++;
		if (uset_rehash(s, s->cap) < 0)
			return -1;
		if (!in_sample(key, s->level))
			return 0;
	}
	if (s->cap == 0 || (s->count + 1) * 4 > s->cap * 3)
		if (uset_rehash(s, s->cap ? s->cap * 2 : 64) < 0)
			return -1;
	size_t j = key_slot(key, s->cap);
	while (s->key[j])
		j = (j + 1) & (s->cap - 1);
	s->key[j] = key;
	s->epoch[j] = bits;
	s->count++;
	return 0;
}

int accum_uset_add(struct accum_uset *s, uint64_t key, unsigned e)
{
	if (key == 0)
		return 0;
	return uset_put(s, key, 1u << (e < ACCUM_EPOCHS ? e : ACCUM_EPOCHS - 1));
}

int accum_uset_merge(struct accum_uset *dst, const struct accum_uset *src)
{
	if (src->level > dst->level) {
		dst->level = src->level;
		if (dst->cap && uset_rehash(dst, dst->cap) < 0)
			return -1;
	}
	for (size_t i = 0; i < src->cap; i++)
		if (src->key[i] && uset_put(dst, src->key[i], src->epoch[i]) < 0)
			return -1;
	return 0;
}

double accum_uset_count(const struct accum_uset *s, unsigned level, double *per_epoch)
{
	double n = 0;
	for (size_t i = 0; i < s->cap; i++) {
		if (s->key[i] == 0 || !in_sample(s->key[i], level))
			continue;
		n++;
		if (per_epoch)
			for (unsigned e = 0; e < ACCUM_EPOCHS; e++)
				if (s->epoch[i] & (1u << e))
					per_epoch[e]++;
	}
	return n;
}

static void umap_init(struct accum_umap *m, size_t max)
{
	memset(m, 0, sizeof(*m));
	m->max = max ? max : ACCUM_SUMS_MAX;
}

static void umap_release(struct accum_umap *m)
{
	free(m->key);
	free(m->n);
	free(m->sum);
	m->key = NULL;
	m->n = NULL;
	m->sum = NULL;
	m->cap = m->count = 0;
}

static void umap_clear(struct accum_umap *m)
{
	if (m->cap > 4096) {
		umap_release(m);
	} else if (m->cap) {
		memset(m->key, 0, m->cap * sizeof(*m->key));
		memset(m->n, 0, m->cap * sizeof(*m->n));
		memset(m->sum, 0, m->cap * sizeof(*m->sum));
	}
	m->count = 0;
	m->overflow = false;
}

static void umap_overflow(struct accum_umap *m)
{
	umap_release(m);
	m->overflow = true;
}

static int umap_rehash(struct accum_umap *m, size_t ncap)
{
	uint64_t *k = calloc(ncap, sizeof(*k)), *n = calloc(ncap, sizeof(*n));
	double *s = calloc(ncap, sizeof(*s));
	if (k == NULL || n == NULL || s == NULL) {
		free(k);
		free(n);
		free(s);
		return -1;
	}
	for (size_t i = 0; i < m->cap; i++) {
		if (m->key[i] == 0)
			continue;
		size_t j = key_slot(m->key[i], ncap);
		while (k[j])
			j = (j + 1) & (ncap - 1);
		k[j] = m->key[i];
		n[j] = m->n[i];
		s[j] = m->sum[i];
	}
	free(m->key);
	free(m->n);
	free(m->sum);
	m->key = k;
	m->n = n;
	m->sum = s;
	m->cap = ncap;
	return 0;
}

/* Adds cnt values summing to y to the unit `key`. Out of memory counts as an overflow (the
 * buckets still hold everything), so the map never holds a partial picture. */
static void umap_put(struct accum_umap *m, uint64_t key, uint64_t cnt, double y)
{
	if (m->overflow)
		return;
	if (m->cap) {
		size_t j = key_slot(key, m->cap);
		while (m->key[j]) {
			if (m->key[j] == key) {
				m->n[j] += cnt;
				m->sum[j] += y;
				return;
			}
			j = (j + 1) & (m->cap - 1);
		}
	}
	if (m->count + 1 > m->max) {
		umap_overflow(m);
		return;
	}
	if (m->cap == 0 || (m->count + 1) * 4 > m->cap * 3)
		if (umap_rehash(m, m->cap ? m->cap * 2 : 64) < 0) {
			umap_overflow(m);
			return;
		}
	size_t j = key_slot(key, m->cap);
	while (m->key[j])
		j = (j + 1) & (m->cap - 1);
	m->key[j] = key;
	m->n[j] = cnt;
	m->sum[j] = y;
	m->count++;
}

/* ---- time series ---- */

void accum_series_init(struct accum_series *s)
{
	memset(s, 0, sizeof(*s));
}

static int64_t floor_to(int64_t t, int64_t w)
{
	int64_t q = t / w;
	if (t % w != 0 && t < 0)
		q--;
	return q * w;
}

/* Re-bins s so that it covers [t0, t1] (plus what it holds) with a width of at least minw. */
static void series_rebin(struct accum_series *s, int64_t t0, int64_t t1, int64_t minw)
{
	if (s->width == 0) {
		s->width = 1;
		s->origin = t0;
	}
	int64_t lo = t0, hi = t1;
	for (size_t i = 0; i < ACCUM_SERIES_SLOTS; i++) {
		if (s->n[i] == 0 && s->sum[i] == 0.0)
			continue;
		int64_t a = s->origin + (int64_t)i * s->width;
		if (a < lo)
			lo = a;
		if (a + s->width - 1 > hi)
			hi = a + s->width - 1;
	}
	int64_t w = s->width > minw ? s->width : minw, o;
	for (;;) {
		o = floor_to(lo, w);
		if (hi < o + (int64_t)ACCUM_SERIES_SLOTS * w)
			break;
		w *= 2;
	}
	if (w == s->width && o == s->origin)
		return;
	uint64_t n[ACCUM_SERIES_SLOTS] = {0};
	double sum[ACCUM_SERIES_SLOTS] = {0};
	for (size_t i = 0; i < ACCUM_SERIES_SLOTS; i++) {
		if (s->n[i] == 0 && s->sum[i] == 0.0)
			continue;
		int64_t a = s->origin + (int64_t)i * s->width;
		size_t j = (size_t)((a - o) / w);
		n[j] += s->n[i];
		sum[j] += s->sum[i];
	}
	memcpy(s->n, n, sizeof(n));
	memcpy(s->sum, sum, sizeof(sum));
	s->width = w;
	s->origin = o;
}

void accum_series_cover(struct accum_series *s, int64_t t0, int64_t t1)
{
	series_rebin(s, t0, t1, 1);
}

void accum_series_add(struct accum_series *s, double t, double x)
{
	int64_t ts = (int64_t)floor(t);
	if (s->width == 0 || ts < s->origin ||
	    ts >= s->origin + (int64_t)ACCUM_SERIES_SLOTS * s->width)
		series_rebin(s, ts, ts, 1);
	size_t j = (size_t)((ts - s->origin) / s->width);
	s->n[j]++;
	s->sum[j] += x;
}

void accum_series_merge(struct accum_series *dst, const struct accum_series *src)
{
	if (src->width == 0)
		return;
	int64_t lo = INT64_MAX, hi = INT64_MIN;
	for (size_t i = 0; i < ACCUM_SERIES_SLOTS; i++) {
		if (src->n[i] == 0 && src->sum[i] == 0.0)
			continue;
		int64_t a = src->origin + (int64_t)i * src->width;
		if (a < lo)
			lo = a;
		if (a + src->width - 1 > hi)
			hi = a + src->width - 1;
	}
	if (lo > hi)
		return;
	series_rebin(dst, lo, hi, src->width);
	for (size_t i = 0; i < ACCUM_SERIES_SLOTS; i++) {
		if (src->n[i] == 0 && src->sum[i] == 0.0)
			continue;
		int64_t a = src->origin + (int64_t)i * src->width;
		size_t j = (size_t)((a - dst->origin) / dst->width);
		dst->n[j] += src->n[i];
		dst->sum[j] += src->sum[i];
	}
}

/* ---- bundles ---- */

int accum_metric_init(struct accum_metric *am, bool with_hist)
{
	memset(am, 0, sizeof(*am));
	accum_moments_init(&am->mom);
	accum_series_init(&am->series);
	umap_init(&am->units, 0);
	am->bk = calloc(1, sizeof(*am->bk));
	if (am->bk == NULL)
		return -1;
	if (with_hist) {
		am->hist = malloc(sizeof(*am->hist));
		if (am->hist == NULL)
			return -1;
		accum_hist_init(am->hist);
	}
	return 0;
}

void accum_metric_add_unit(struct accum_metric *am, double t, double x, uint64_t key)
{
	accum_moments_add(&am->mom, x);
	if (x == 1.0)
		am->successes++;
	else if (x != 0.0)
		am->nonbinary++;
	if (am->hist)
		accum_hist_add(am->hist, x);
	accum_series_add(&am->series, t, x);
	double y = x - am->mom.ref;
	if (am->bk) {
		size_t b = bucket_of(key);
		am->bk->n[b]++;
		am->bk->sum[b] += y;
	}
	umap_put(&am->units, key, 1, y);
}

void accum_metric_add(struct accum_metric *am, double t, double x)
{
	accum_metric_add_unit(am, t, x, accum_unit_key(0));
}

void accum_metric_clear(struct accum_metric *am)
{
	accum_moments_init(&am->mom);
	am->successes = 0;
	am->nonbinary = 0;
	if (am->hist != NULL)
		accum_hist_clear(am->hist);
	accum_series_init(&am->series);
	if (am->bk != NULL)
		memset(am->bk, 0, sizeof(*am->bk));
	umap_clear(&am->units);
}

int accum_metric_merge(struct accum_metric *dst, const struct accum_metric *src)
{
	if (src->mom.n > 0) {
		/* the sums are relative to each side's reference: move src's onto dst's */
		double shift = dst->mom.n > 0 ? src->mom.ref - dst->mom.ref : 0.0;
		if (dst->bk == NULL && (dst->bk = calloc(1, sizeof(*dst->bk))) == NULL)
			return -1;
		if (src->bk == NULL) {
			umap_overflow(&dst->units); /* cannot happen for initialised metrics */
		} else {
			for (size_t b = 0; b < ACCUM_BUCKETS; b++) {
				dst->bk->n[b] += src->bk->n[b];
				dst->bk->sum[b] += src->bk->sum[b] + (double)src->bk->n[b] * shift;
			}
		}
		if (src->units.overflow)
			umap_overflow(&dst->units);
		for (size_t i = 0; i < src->units.cap && !dst->units.overflow; i++)
			if (src->units.key[i])
				umap_put(&dst->units, src->units.key[i], src->units.n[i],
					 src->units.sum[i] + (double)src->units.n[i] * shift);
	}
	accum_moments_merge(&dst->mom, &src->mom);
	dst->successes += src->successes;
	dst->nonbinary += src->nonbinary;
	if (src->hist) {
		if (dst->hist == NULL) {
			dst->hist = malloc(sizeof(*dst->hist));
			if (dst->hist == NULL)
				return -1;
			accum_hist_init(dst->hist);
		}
		accum_hist_merge(dst->hist, src->hist);
	}
	accum_series_merge(&dst->series, &src->series);
	return 0;
}

void accum_metric_release(struct accum_metric *am)
{
	if (am == NULL)
		return;
	free(am->hist);
	am->hist = NULL;
	free(am->bk);
	am->bk = NULL;
	umap_release(&am->units);
}

void accum_metric_unitvar(const struct accum_metric *am, struct accum_unitvar *out)
{
	memset(out, 0, sizeof(*out));
	out->n = (double)am->mom.n;
	out->mean = accum_moments_mean(&am->mom);
	out->deff = 1.0;
	double r = am->mom.mean; /* the mean relative to ref, as the sums are */
	double se2 = 0.0, m = 0.0;
	if (!am->units.overflow) {
		for (size_t i = 0; i < am->units.cap; i++) {
			if (am->units.key[i] == 0)
				continue;
			double e = am->units.sum[i] - r * (double)am->units.n[i];
			se2 += e * e;
			m++;
		}
		out->units = m;
	} else if (am->bk != NULL) {
		out->bucketed = true;
		out->units = NAN;
		for (size_t b = 0; b < ACCUM_BUCKETS; b++) {
			if (am->bk->n[b] == 0)
				continue;
			double e = am->bk->sum[b] - r * (double)am->bk->n[b];
			se2 += e * e;
			m++;
		}
	}
	out->groups = m;
	if (m < 2 || out->n < 2)
		return;
	out->ok = true;
	out->df = m - 1;
	out->var_mean = m / (m - 1) * se2 / (out->n * out->n);
	double s2 = accum_moments_var(&am->mom);
	if (s2 > 0)
		out->deff = out->var_mean / (s2 / out->n);
}

struct accum_variant *accum_variant_new(size_t nmetrics, const bool *continuous)
{
	struct accum_variant *v = calloc(1, sizeof(*v));
	if (v == NULL)
		return NULL;
	accum_uset_init(&v->units, 0);
	accum_series_init(&v->traffic);
	v->metrics = calloc(nmetrics ? nmetrics : 1, sizeof(*v->metrics));
	if (v->metrics == NULL)
		goto fail;
	for (size_t i = 0; i < nmetrics; i++) {
		v->nmetrics = i + 1;
		if (accum_metric_init(&v->metrics[i], continuous ? continuous[i] : true) < 0)
			goto fail;
	}
	v->nmetrics = nmetrics;
	return v;
fail:
	accum_variant_free(v);
	return NULL;
}

void accum_variant_limit(struct accum_variant *v, size_t units_max, size_t sums_max)
{
	if (units_max)
		v->units.max = units_max;
	for (size_t i = 0; sums_max && i < v->nmetrics; i++)
		v->metrics[i].units.max = sums_max;
}

int accum_variant_request(struct accum_variant *v, double t, uint64_t key, unsigned epoch)
{
	v->requests++;
	accum_series_add(&v->traffic, t, 1.0);
	return accum_uset_add(&v->units, key, epoch);
}

void accum_variant_clear(struct accum_variant *v)
{
	v->requests = 0;
	accum_uset_clear(&v->units);
	accum_series_init(&v->traffic);
	for (size_t i = 0; i < v->nmetrics; i++)
		accum_metric_clear(&v->metrics[i]);
}

int accum_variant_merge(struct accum_variant *dst, const struct accum_variant *src)
{
	if (dst->nmetrics != src->nmetrics)
		return -1;
	dst->requests += src->requests;
	if (accum_uset_merge(&dst->units, &src->units) < 0)
		return -1;
	accum_series_merge(&dst->traffic, &src->traffic);
	for (size_t i = 0; i < src->nmetrics; i++)
		if (accum_metric_merge(&dst->metrics[i], &src->metrics[i]) < 0)
			return -1;
	return 0;
}

void accum_variant_free(struct accum_variant *v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < v->nmetrics; i++)
		accum_metric_release(&v->metrics[i]);
	free(v->metrics);
	accum_uset_release(&v->units);
	free(v);
}
