/*
 * router.h - cohort assignment: which experiment a request belongs to, which unit it carries,
 * and which variant (and so which backend) serves it.
 *
 * The bucket of a unit is H(salt ":" unit) mod 10000 where H is 64-bit FNV-1a over the bytes
 * followed by the 64-bit finalizer of MurmurHash3 (fmix64); README.md gives the definition, test
 * vectors and a few lines of Python that recompute it. Variants own contiguous bucket ranges in
 * declared order (compiled from the weights by conf), so the request path only hashes and scans.
 * An experiment may instead assign as an experimentation SDK does (its hash mode, struct
 * conf_hash); router_assign() is the one function that turns a unit into a variant either way,
 * for the data path and the outcome API alike.
 */
#ifndef ABGATE_ROUTER_H
#define ABGATE_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "http.h"

/* The 64-bit hash H of len bytes. */
uint64_t router_hash(const void *data, size_t len);

/* H(salt ":" unit), computed without building the concatenation. */
uint64_t router_unit_hash(const char *salt, size_t salt_len, const char *unit, size_t unit_len);

/* H(salt ":" unit) mod 10000: the unit's bucket. */
uint32_t router_bucket(const char *salt, size_t salt_len, const char *unit, size_t unit_len);

/* The variant owning bucket (0..9999) in e. Never NULL for a valid experiment. */
const struct conf_variant *router_variant_at(const struct conf_experiment *e, uint32_t bucket);

/* router_assign() beyond its fast path: the SDK modes and a running rollout; h is the unit's
 * H(salt ":" unit). Same results as router_assign(). */
const struct conf_variant *router_assign_slow(const struct conf_experiment *e, const char *unit,
					      size_t len, uint64_t h);

/*
 * The variant of experiment e for unit (len bytes), as e's hash mode assigns it; a running
 * rollout (e->rt, hash mode abgate only) overrides the weights: its canary owns the top
 * canary_bp buckets. Stores H(salt ":" unit) in *unit_hash (every mode: the unit-level statistics
 * count units by it). Returns a variant of e (not owned), or NULL when the mode leaves the unit
 * out of the experiment (GrowthBook coverage, Unleash gradual rollout): the caller serves such a
 * unit the control and does not count it as randomised. Inline so the default mode costs the
 * request path what the bucket scan alone did.
 */
static inline const struct conf_variant *router_assign(const struct conf_experiment *e,
						       const char *unit, size_t len,
						       uint64_t *unit_hash)
{
	uint64_t h = router_unit_hash(e->salt, e->salt_len, unit, len);

	*unit_hash = h;
	if (e->hash.mode != CONF_HASH_ABGATE || e->rt != NULL)
		return router_assign_slow(e, unit, len, h);
	return router_variant_at(e, (uint32_t)(h % CONF_BUCKETS));
}

/*
 * Compares experiment was (the running generation) with is (the same name in the next one) and
 * says whether the change moves units between variants other than from one that shrinks into one
 * that grows: a change of the hash's terms reassigns everyone; with the same terms, a unit moves
 * exactly when its old variant's range and a new variant's range overlap. Experiments with a
 * rollout are skipped (the rollout moves its canary monotonically). Returns true and writes one
 * line into msg (len bytes) when some units move that way.
 */
bool router_ramp_moves(const struct conf_experiment *was, const struct conf_experiment *is,
		       char *msg, size_t len);

/* Called by router_ramp_check() for each experiment whose change moves units; msg is one line,
 * valid during the call. */
typedef void (*router_ramp_cb)(void *arg, const struct conf_experiment *e, const char *msg);

/* Runs router_ramp_moves() over every experiment of is that was already in was (by name); calls
 * cb for each one that moves units. Returns how many did. */
size_t router_ramp_check(const struct conf *was, const struct conf *is, router_ramp_cb cb,
			 void *arg);

/* The first experiment of c that matches the request (path prefix, host, method), or NULL. */
const struct conf_experiment *router_match(const struct conf *c, const struct http_msg *m,
					   const char *buf);

/*
 * Finds the unit the experiment keys on (header, cookie or query parameter) in the request.
 * On success returns true and sets *unit / *len to the value: either a pointer into buf, or,
 * for a percent-encoded query value, into scratch (decoded, at most scratch_cap bytes).
 * Empty values count as absent.
 */
bool router_unit(const struct conf_experiment *e, const struct http_msg *m, const char *buf,
		 char *scratch, size_t scratch_cap, const char **unit, size_t *len);

/* Looks for cookie `name` in the request's Cookie headers; same contract as router_unit. */
bool router_cookie(const struct http_msg *m, const char *buf, const char *name, size_t name_len,
		   const char **value, size_t *len);

#endif
