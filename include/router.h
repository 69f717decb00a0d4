/*
 * router.h - cohort assignment: which experiment a request belongs to, which unit it carries,
 * and which variant (and so which backend) serves it.
 *
 * The bucket of a unit is H(salt ":" unit) mod 10000 where H is 64-bit FNV-1a over the bytes
 * followed by the 64-bit finalizer of MurmurHash3 (fmix64); README.md gives the definition, test
 * vectors and a few lines of Python that recompute it. Variants own contiguous bucket ranges in
 * declared order (compiled from the weights by conf), so the request path only hashes and scans.
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

/*
 * The variant of e that serves a unit whose hash (router_unit_hash with e's salt) is
 * unit_hash: its bucket's owner at the weights in force, that is the rollout's canary weight
 * while e has a rollout (the canary owns the top buckets), else the YAML weights. The one
 * assignment rule: the data path and outcomes posted with only a unit both use it.
 */
const struct conf_variant *router_assign(const struct conf_experiment *e, uint64_t unit_hash);

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
