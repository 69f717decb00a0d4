"""Traffic split: weights, the exact per-user assignment, stickiness across requests, workers
and restarts, and each variant served by its own backend."""

import math

from harness import (HttpConn, bucket, parallel_pipelined, pipelined, user_request,
                     variant_for)

MODEL_OF = {"control": "model-a", "treatment": "model-b"}


def check_response(r, uid):
    """A proxied response for user uid; returns the variant it says it served."""
    assert r.status == 200, r
    variant = r.header("X-Abgate-Variant")
    assert variant in MODEL_OF, r
    assert r.header("X-Abgate-Experiment") == "ranker", r
    body = r.json()
    # the variant's own backend answered, and it saw the same variant and user
    assert r.header("X-Backend-Model") == MODEL_OF[variant], r
    assert body["model"] == MODEL_OF[variant], r
    assert body["variant"] == variant, r
    assert body["unit"] == uid, r
    return variant


def test_hash_test_vectors():
    # The Python reference against a few hand-checked values of the definition: FNV-1a of the
    # empty input is the offset basis, then fmix64.
    from harness import abgate_hash
    h = 0xCBF29CE484222325
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) % 2**64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) % 2**64
    h ^= h >> 33
    assert abgate_hash(b"") == h
    # FNV-1a of "a" is 0xaf63dc4c8601ec8c (the published FNV test vector)
    x = 0xAF63DC4C8601EC8C
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) % 2**64
    x ^= x >> 33
    x = (x * 0xC4CEB9FE1A85EC53) % 2**64
    x ^= x >> 33
    assert abgate_hash(b"a") == x
    assert bucket("ranker", "u") == abgate_hash(b"ranker:u") % 10000


def test_20000_users_split_80_20_exactly_as_the_hash_says(ab_proxy):
    proxy, exp = ab_proxy(80, 20)
    users = ["user-%05d" % i for i in range(20000)]
    resps = parallel_pipelined(proxy.port, [user_request(u) for u in users], nconns=4,
                               batch=250)
    got = {u: check_response(r, u) for u, r in zip(users, resps)}

    n = len(users)
    treat = sum(1 for v in got.values() if v == "treatment")
    sigma = math.sqrt(n * 0.8 * 0.2)
    assert abs(treat - 0.2 * n) <= 4 * sigma, (treat, n)
    assert abs((n - treat) - 0.8 * n) <= 4 * sigma

    # every single user where the documented hash puts them
    weights = exp.weights()
    wrong = [(u, got[u], variant_for(weights, "ranker", u)) for u in users
             if got[u] != variant_for(weights, "ranker", u)]
    assert wrong == [], "%d users misrouted, first: %r" % (len(wrong), wrong[:10])
    # the reference itself is sane on this key sequence
    assert sum(1 for u in users if bucket("ranker", u) >= 8000) == treat


def test_explicit_salt_and_uneven_decimal_weights(ab_proxy):
    # salt given explicitly and weights with two decimals: buckets [0, 8765) are control
    proxy, exp = ab_proxy("87.65", "12.35", salt="s-2026")
    users = ["k%d" % i for i in range(3000)]
    resps = parallel_pipelined(proxy.port, [user_request(u) for u in users], nconns=2)
    for u, r in zip(users, resps):
        expect = "treatment" if bucket("s-2026", u) >= 8765 else "control"
        assert check_response(r, u) == expect, u


def sticky_round(port, users, nconns):
    """Sends every user once on each of nconns connections (each in its own order) and returns
    {user: set of variants seen}."""
    reqs, owners = [], []
    for k in range(nconns):
        rot = users[k * 37 % len(users):] + users[:k * 37 % len(users)]
        for u in rot:
            reqs.append(user_request(u))
            owners.append(u)
    # parallel_pipelined spreads request i on connection i % nconns; reorder so that
    # connection k gets the k-th rotation
    order = []
    per = len(users)
    for j in range(per):
        for k in range(nconns):
            order.append(k * per + j)
    resps = parallel_pipelined(port, [reqs[i] for i in order], nconns=nconns, batch=100)
    seen = {}
    for i, r in zip(order, resps):
        u = owners[i]
        seen.setdefault(u, set()).add(check_response(r, u))
    return seen


def test_variant_sticky_across_requests_workers_and_restart(ab_proxy, procs):
    proxy, exp = ab_proxy(80, 20, workers=2)
    users = ["sticky-%d" % i for i in range(600)]
    expect = {u: exp.expect(u) for u in users}

    # the same user many times on one connection
    with HttpConn(proxy.port) as c:
        some = users[:100]
        resps = pipelined(c, [user_request(u) for u in some * 5], batch=100)
        for i, r in enumerate(resps):
            u = some[i % 100]
            assert check_response(r, u) == expect[u]

    # 16 connections: SO_REUSEPORT spreads them over both workers; every user is sent on
    # every connection, so each is served by both workers
    seen = sticky_round(proxy.port, users, 16)
    for u in users:
        assert seen[u] == {expect[u]}, (u, seen[u])

    # a restart (same file, same ports) keeps every user where they were
    assert proxy.stop() == 0
    proxy2 = procs.proxy(proxy.config, name="proxy-restarted")
    seen = sticky_round(proxy2.port, users, 16)
    for u in users:
        assert seen[u] == {expect[u]}, (u, seen[u])


def test_each_variant_served_by_its_own_backend_with_three_arms(procs, models, make_config):
    a, b = models
    c = procs.backend("model-c")
    from harness import Experiment
    exp = Experiment("three", [("control", "model-a", 50), ("t1", "model-b", 30),
                               ("t2", "model-c", 20)])
    cfg = make_config({"model-a": a.addr, "model-b": b.addr, "model-c": c.addr}, [exp])
    proxy = procs.proxy(cfg)
    model_of = {"control": "model-a", "t1": "model-b", "t2": "model-c"}
    users = ["m%d" % i for i in range(1500)]
    resps = parallel_pipelined(proxy.port, [user_request(u) for u in users], nconns=3)
    counts = {}
    for u, r in zip(users, resps):
        assert r.status == 200
        v = r.header("X-Abgate-Variant")
        assert v == exp.expect(u), u
        assert r.header("X-Abgate-Experiment") == "three"
        assert r.header("X-Backend-Model") == model_of[v]
        assert r.json()["model"] == model_of[v]
        assert r.json()["variant"] == v
        counts[v] = counts.get(v, 0) + 1
    assert set(counts) == {"control", "t1", "t2"}
