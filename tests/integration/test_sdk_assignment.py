"""Assignment that agrees with the application's experimentation SDK (hash modes): 10,000 users
through the live proxy under each mode get exactly the variant their SDK's published algorithm
gives, computed here in Python from each SDK's specification (hashlib for SHA-1, SHA-256 and
MD5; MurmurHash3 and FNV-1a written below). Units that a mode leaves out of the experiment
(GrowthBook coverage, Unleash gradual rollout) are served the control and logged without a unit;
outcomes posted by unit are attributed by the same assignment; a reload that moves users between
variants says so."""

import hashlib
import json
import subprocess

from harness import (ABGATE_BIN, YAML_FRONT, parallel_pipelined, user_request, variant_for,
                     weight_bp)

USERS = ["user-%05d" % i for i in range(10000)]
M32 = 0xFFFFFFFF

# ---------------------------------------------------------------------------------------------
# The SDKs' algorithms, from their documentation and specifications.


def murmur3_32(data, seed=0):
    """MurmurHash3 x86_32 over bytes."""
    c1, c2 = 0xCC9E2D51, 0x1B873593
    h = seed & M32
    n = len(data) // 4 * 4
    for i in range(0, n, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * c1) & M32
        k = ((k << 15) | (k >> 17)) & M32
        k = (k * c2) & M32
        h ^= k
        h = ((h << 13) | (h >> 19)) & M32
        h = (h * 5 + 0xE6546B64) & M32
    tail = data[n:]
    if tail:
        k = int.from_bytes(tail, "little")
        k = (k * c1) & M32
        k = ((k << 15) | (k >> 17)) & M32
        k = (k * c2) & M32
        h ^= k
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & M32
    h ^= h >> 16
    return h


def fnv32a(data):
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & M32
    return h


def cumulative(weights, scale):
    """[(lo, hi)] of contiguous ranges from 0 in declared order, weights in percent scaled."""
    out, lo = [], 0
    for w in weights:
        hi = lo + weight_bp(w) * scale // 10000
        out.append((lo, hi))
        lo = hi
    return out


def first_range(x, ranges):
    for i, (lo, hi) in enumerate(ranges):
        if lo <= x < hi:
            return i
    return None


def growthbook(seed, version, coverage, weights, unit):
    """hash(seed, value, version), getBucketRanges(n, coverage, weights), chooseVariation."""
    u = unit.encode()
    if version == 1:
        n = (fnv32a(u + seed.encode()) % 1000) / 1000
    else:
        n = (fnv32a(str(fnv32a(seed.encode() + u)).encode()) % 10000) / 10000
    cum, ranges = 0.0, []
    for w in [weight_bp(w) / 10000 for w in weights]:
        start = cum
        cum += w
        ranges.append((start, start + coverage * w))
    for i, (lo, hi) in enumerate(ranges):
        if lo <= n < hi:
            return i
    return None


UNLEASH_VARIANT_SEED = 86028157  # the clients' "new variant hashing" (late 2023); before: 0


def unleash(group_id, rollout, weights, unit, variant_seed=UNLEASH_VARIANT_SEED):
    """flexibleRollout: normalizedValue(groupId:unit, seed 0) <= rollout; then the variant whose
    running weight total (weights out of 1000) reaches normalizedValue(groupId:unit, total,
    variant seed)."""
    key = ("%s:%s" % (group_id, unit)).encode()
    if rollout == 0 or murmur3_32(key, 0) % 100 + 1 > rollout:
        return None
    ws = [weight_bp(w) // 10 for w in weights]
    target = murmur3_32(key, variant_seed) % sum(ws) + 1
    counter = 0
    for i, w in enumerate(ws):
        if w == 0:
            continue
        counter += w
        if counter >= target:
            return i
    return None


def optimizely(experiment_id, weights, unit):
    """bucket = floor(murmur3(bucketing id + experiment id, seed 1) / 2^32 * 10000), then the
    first traffic allocation whose endOfRange is above it."""
    h = murmur3_32((unit + experiment_id).encode(), 1)
    bucket = int(h / 2**32 * 10000)
    end = 0
    for i, w in enumerate(weights):
        end += weight_bp(w)
        if bucket < end:
            return i
    return None


def launchdarkly(key, salt, weights, unit):
    """bucket = int(sha1(key.salt.value)[:15], 16) / 0xFFFFFFFFFFFFFFF; weights in 1/1000 %,
    summed as weight / 100000.0; past the last sum, the last variation."""
    hx = hashlib.sha1(("%s.%s.%s" % (key, salt, unit)).encode()).hexdigest()
    bucket = int(hx[:15], 16) / float(0xFFFFFFFFFFFFFFF)
    total = 0.0
    for i, w in enumerate(weights):
        total += weight_bp(w) * 10 / 100000.0
        if bucket < total:
            return i
    return len(weights) - 1


def statsig(salt, weights, unit):
    """The first 8 bytes of sha256(salt.unit), big-endian, mod 10000 over the allocation."""
    h = int.from_bytes(hashlib.sha256(("%s.%s" % (salt, unit)).encode()).digest()[:8], "big")
    return first_range(h % 10000, cumulative(weights, 10000))


def eppo(salt, total_shards, weights, unit):
    """The first 4 bytes of md5(salt-subject), big-endian, mod total_shards over shard ranges."""
    h = int(hashlib.md5(("%s-%s" % (salt, unit)).encode()).hexdigest()[:8], 16)
    return first_range(h % total_shards, cumulative(weights, total_shards))


# ---------------------------------------------------------------------------------------------
# One proxy with one experiment per mode, each on its own path.

W3 = [20, 30.5, 49.5]
MODES = [
    # (name, hash mapping or None, weights, reference(unit) -> index or None)
    ("abgate", None, W3, None),
    ("growthbook", "{mode: growthbook, seed: gb-seed, version: 2, coverage: 0.8}", W3,
     lambda u: growthbook("gb-seed", 2, 0.8, W3, u)),
    ("growthbook1", "{mode: growthbook, version: 1}", W3,
     lambda u: growthbook("growthbook1", 1, 1.0, W3, u)),
    ("unleash", "{mode: unleash, group_id: ranker-flag, rollout: 70}", W3,
     lambda u: unleash("ranker-flag", 70, W3, u)),
    ("unleash-legacy", "{mode: unleash, group_id: ranker-flag, variant_hash: legacy}", W3,
     lambda u: unleash("ranker-flag", 100, W3, u, variant_seed=0)),
    ("optimizely", "{mode: optimizely, experiment_id: \"1886780721\"}", W3,
     lambda u: optimizely("1886780721", W3, u)),
    ("launchdarkly", "{mode: launchdarkly, key: ranker-flag, salt: 8f3a}", W3,
     lambda u: launchdarkly("ranker-flag", "8f3a", W3, u)),
    ("statsig", "{mode: statsig, salt: 4fRZ2e}", W3, lambda u: statsig("4fRZ2e", W3, u)),
    ("eppo", "{mode: eppo, salt: ranker-split, total_shards: 10000}", W3,
     lambda u: eppo("ranker-split", 10000, W3, u)),
]
VARIANTS = ["control", "t1", "t2"]
BACKEND_OF = {"control": "model-a", "t1": "model-b", "t2": "model-a"}


def config_text(outcomes, a, b, weights_of=None, workers=1):
    y = [YAML_FRONT.rstrip("\n"), "workers: %d" % workers, "log:", "  error: stderr",
         "  outcomes: %s" % outcomes,
         "backends:", "  model-a:", "    servers: [%s]" % a, "  model-b:",
         "    servers: [%s]" % b, "experiments:"]
    for name, hash_map, weights, _ in MODES:
        weights = (weights_of or {}).get(name, weights)
        y += ["  - name: %s" % name, "    match: {path_prefix: /m/%s/}" % name,
              "    unit: {header: X-User-Id}"]
        if hash_map:
            y.append("    hash: %s" % hash_map)
        y.append("    variants:")
        for v, w in zip(VARIANTS, weights):
            y.append("      - {name: %s, backend: %s, weight: %s}" % (v, BACKEND_OF[v], w))
        y.append("    metrics:")
        y.append("      - {name: click, kind: binary, source: outcome, goal: increase}")
    return "\n".join(y) + "\n"


def expected(name, ref, unit):
    """(variant served, whether the unit is randomised) for unit under mode name."""
    if ref is None:
        return variant_for(list(zip(VARIANTS, W3)), name, unit), True
    i = ref(unit)
    return (VARIANTS[0], False) if i is None else (VARIANTS[i], True)


def start(procs, models, yaml_config, tmp_path, workers=1):
    a, b = models
    outcomes = str(tmp_path / "outcomes.jsonl")
    cfg = yaml_config(config_text(outcomes, a.addr, b.addr, workers=workers), outcomes=outcomes)
    return procs.proxy(cfg), cfg, outcomes, a, b


def test_10000_users_per_mode_get_their_sdks_variant(procs, models, yaml_config, tmp_path):
    proxy, _, _, _, _ = start(procs, models, yaml_config, tmp_path)
    for name, _, _, ref in MODES:
        resps = parallel_pipelined(proxy.port,
                                   [user_request(u, path="/m/%s/p" % name) for u in USERS],
                                   nconns=4, batch=250)
        wrong, out, counts = [], 0, {v: 0 for v in VARIANTS}
        for u, r in zip(USERS, resps):
            assert r.status == 200, r
            assert r.header("X-Abgate-Experiment") == name, r
            got = r.header("X-Abgate-Variant")
            want, randomised = expected(name, ref, u)
            if got != want:
                wrong.append((u, got, want))
            # the variant's own backend answered
            assert r.json()["model"] == BACKEND_OF[got], r
            counts[got] += 1
            out += not randomised
        assert not wrong, "%s: %d of %d users differ from the SDK, e.g. %r" % (
            name, len(wrong), len(USERS), wrong[:5])
        # every arm is used, and the split is near the weights (or the covered share of them)
        share = 1 - out / len(USERS)
        for v, w in zip(VARIANTS, W3):
            n_in = counts[v] - (out if v == "control" else 0)
            assert abs(n_in - len(USERS) * share * w / 100) < 250, (name, v, counts, out)
        if name == "growthbook":
            assert 1500 < out < 2500, out   # coverage 0.8
        elif name == "unleash":
            assert 2500 < out < 3500, out   # rollout 70
        else:
            assert out == 0


def test_every_worker_assigns_alike(procs, models, yaml_config, tmp_path):
    # each worker thread keeps its own digest context: four workers, many connections
    proxy, _, _, _, _ = start(procs, models, yaml_config, tmp_path, workers=4)
    users = USERS[:3000]
    for name, _, _, ref in MODES:
        resps = parallel_pipelined(proxy.port,
                                   [user_request(u, path="/m/%s/p" % name) for u in users],
                                   nconns=16, batch=50)
        for u, r in zip(users, resps):
            assert r.header("X-Abgate-Variant") == expected(name, ref, u)[0], (name, u, r)


def test_units_outside_the_mode_are_logged_unrandomised(procs, models, yaml_config, tmp_path):
    proxy, _, _, _, _ = start(procs, models, yaml_config, tmp_path)
    users = USERS[:400]
    for name in ("growthbook", "unleash", "statsig"):
        ref = dict((m[0], m[3]) for m in MODES)[name]
        parallel_pipelined(proxy.port, [user_request(u, path="/m/%s/p" % name) for u in users],
                           nconns=2, batch=100)
        recs = proxy.wait_outcomes(lambda r, n=name: r["type"] == "request" and r["exp"] == n,
                                   len(users))
        by_unit = [r for r in recs if r.get("unit") is not None]
        want_in = sorted(u for u in users if ref(u) is not None)
        assert sorted(r["unit"] for r in by_unit) == want_in, name
        assert len(recs) - len(by_unit) == len(users) - len(want_in), name
        for r in recs:
            if r.get("unit") is None:
                assert r["variant"] == "control", r
        for r in by_unit:
            assert r["variant"] == VARIANTS[ref(r["unit"])], r


def test_outcomes_by_unit_follow_the_same_assignment(procs, models, yaml_config, tmp_path):
    proxy, _, _, _, _ = start(procs, models, yaml_config, tmp_path)
    users = USERS[:50]
    for name, _, _, ref in MODES:
        inside = [u for u in users if ref is None or ref(u) is not None]
        body = json.dumps([{"exp": name, "metric": "click", "value": 1, "unit": u}
                           for u in inside])
        r = proxy.admin("POST", "/outcomes", body=body,
                        headers=[("Content-Type", "application/json")])
        assert r.status == 200, (name, r)
        recs = proxy.wait_outcomes(lambda x, n=name: x["type"] == "outcome" and x["exp"] == n,
                                   len(inside))
        for rec in recs:
            assert rec["variant"] == expected(name, ref, rec["unit"])[0], rec
        outside = [u for u in users if ref is not None and ref(u) is None]
        if outside:
            body = json.dumps({"exp": name, "metric": "click", "value": 1, "unit": outside[0]})
            r = proxy.admin("POST", "/outcomes", body=body,
                            headers=[("Content-Type", "application/json")])
            assert r.status == 400, r
            assert b"outside experiment" in r.body, r


def test_reload_warns_when_weights_move_users_between_variants(procs, models, yaml_config,
                                                              tmp_path):
    proxy, cfg, outcomes, a, b = start(procs, models, yaml_config, tmp_path)
    # statsig: t1 gives a share to the last arm and keeps its start: users move t1 -> t2 only
    cfg.body = config_text(outcomes, a.addr, b.addr, {"statsig": [20, 20.5, 59.5]})
    cfg.write()
    proxy.sighup_and_wait(2)
    # optimizely: the control grows, t1 keeps its weight, so its range slides onto t2's users
    cfg.body = config_text(outcomes, a.addr, b.addr, {"statsig": [20, 20.5, 59.5],
                                                      "optimizely": [30, 30.5, 39.5]})
    cfg.write()
    proxy.sighup_and_wait(3)
    log = proxy.log()
    assert ("reload: experiment optimizely: the new weights move units from variant \"t1\" "
            "to \"control\" although \"t1\" does not shrink") in log, log
    assert "reload: experiment statsig:" not in log, log
    # the new generation assigns as the SDK does with the new weights
    w = [30, 30.5, 39.5]
    resps = parallel_pipelined(proxy.port, [user_request(u, path="/m/optimizely/p")
                                            for u in USERS[:2000]], nconns=2, batch=200)
    for u, r in zip(USERS, resps):
        assert r.header("X-Abgate-Variant") == VARIANTS[optimizely("1886780721", w, u)], r


def test_check_validates_hash_and_compares_with_previous(tmp_path):
    old = tmp_path / "old.yaml"
    new = tmp_path / "new.yaml"
    text = config_text(str(tmp_path / "o.jsonl"), "127.0.0.1:9", "127.0.0.1:10")
    text = text.replace("@PORT@", "18080").replace("@ADMIN@", "19901")
    old.write_text(text)
    new.write_text(text.replace("{mode: statsig, salt: 4fRZ2e}", "{mode: statsig, salt: new}"))
    r = subprocess.run([ABGATE_BIN, "check", "-c", str(new), "--previous", str(old)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r
    assert r.stderr == ("%s: warning: experiment statsig: the hash's terms change (mode, salt, "
                        "seed, key or shards): every unit is assigned afresh, and units move "
                        "between all the variants\n" % new), r.stderr
    r = subprocess.run([ABGATE_BIN, "check", "-c", str(old), "--previous", str(old)],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr == "", r
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("{mode: eppo, salt: ranker-split, total_shards: 10000}",
                                "{mode: eppo, salt: ranker-split, shards: 10000}"))
    r = subprocess.run([ABGATE_BIN, "check", "-c", str(bad)], capture_output=True, text=True)
    assert r.returncode == 1
    line = next(i for i, l in enumerate(text.splitlines(), 1) if "mode: eppo" in l)
    assert r.stderr.startswith("%s:%d:" % (bad, line)), r.stderr
    assert 'unknown key "shards" in hash (mode eppo) (allowed: mode, salt, total_shards)' \
        in r.stderr, r.stderr


def test_report_counts_units_and_checks_the_split_alike_in_every_mode(procs, models,
                                                                       yaml_config, tmp_path):
    """`abgate report` over the log of the 10,000 users: in every mode each variant's distinct
    units are exactly the randomised users the SDK puts there, the split check is computed on
    them (and passes: the SDKs split by the weights), and the unrandomised users (outside a
    coverage or rollout) are records of the log but in no variant's requests or units."""
    proxy, cfg, outcomes, _, _ = start(procs, models, yaml_config, tmp_path)
    for name, _, _, _ in MODES:
        resps = parallel_pipelined(proxy.port,
                                   [user_request(u, path="/m/%s/p" % name) for u in USERS],
                                   nconns=4, batch=250)
        assert all(r.status == 200 for r in resps)
    assert proxy.proc.stop() == 0
    for name, _, _, ref in MODES:
        want = {v: 0 for v in VARIANTS}
        for u in USERS:
            v, randomised = expected(name, ref, u)
            want[v] += randomised
        r = subprocess.run([ABGATE_BIN, "report", "--format", "json", "--experiment", name,
                            "-c", cfg.path, outcomes], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        rep = json.loads(r.stdout)
        got = {v["name"]: v["units"] for v in rep["variants"]}
        assert got == want, (name, got, want)
        out = len(USERS) - sum(want.values())
        assert rep["records"]["request"] == sum(want.values()), (name, rep["records"])
        assert rep["records"]["unrandomised"] == out, (name, rep["records"])
        assert sum(v["requests"] for v in rep["variants"]) == sum(want.values()), name
        assert rep["srm"]["p_value"] is not None and not rep["srm"]["flagged"], (name,
                                                                                 rep["srm"])
