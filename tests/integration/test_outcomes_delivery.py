"""Outcomes delivered: none lost, none counted twice, each credited to the variant the user saw.

- 300,000 requests with distinct X-Request-Id, then outcomes for the first 10,000 by request id
  alone: every one accepted and credited to the variant the proxy answered.
- Past outcomes.max_rids: exactly the ids the map pushed out (recomputed here from the map's
  published layout: 64 shards by the top bits of the id's hash, oldest out first) are rejected
  with their reason, the rest kept; ids older than outcomes.rid_window_s are rejected as expired.
- A batch of 100 with 3 bad items records the 97 and names the 3; retried, and retried again
  after a restart, nothing is counted twice (the outcome log and the live counts both checked);
  the rule without an id: a binary metric counts once per request.
- Rollout at 1%, 5% and 25%: outcomes by unit, by request id and by variant are credited to the
  variant each of 10,000 users was answered; an outcome for a request served at an earlier
  step or under an older generation is credited to the variant that request was served, also
  after a restart (the request ids come back from the outcome log's tail).
"""

import json
import signal
import time

from harness import (HttpConn, YAML_FRONT, build_request, metric_value, parallel_pipelined,
                     parse_prometheus, pipelined, start_proxy, variant_for, wait_until)

EXP = "ranker"

CONFIG = YAML_FRONT + """\
workers: {workers}
log:
  error: stderr
  outcomes: {outcomes}
outcomes: {{rid_window_s: {window}, max_rids: {max_rids}}}
backends:
  model-a:
    servers: [{a}]
  model-b:
    servers: [{b}]
experiments:
  - name: ranker
    match: {{path_prefix: /predict}}
    unit: {{header: X-User-Id}}
    variants:
      - {{name: control, backend: model-a, weight: {wc}}}
      - {{name: treatment, backend: model-b, weight: {wt}}}
    metrics:
      - {{name: click, kind: binary, source: outcome, goal: increase, primary: true}}
      - {{name: revenue, kind: continuous, source: outcome, goal: increase}}
{rollout}"""


def config(yaml_config, models, tmp_path, workers=2, window=3600, max_rids=2000000, wc=50,
           wt=50, rollout=""):
    a, b = models
    outcomes = str(tmp_path / "outcomes.jsonl")
    return yaml_config(CONFIG.format(workers=workers, outcomes=outcomes, window=window,
                                     max_rids=max_rids, a=a.addr, b=b.addr, wc=wc, wt=wt,
                                     rollout=rollout), outcomes=outcomes)


def start(procs, cfg):
    px = procs.proxy(cfg)
    px.wait_outcomes(lambda r: r["type"] == "config", 1)
    return px


def post(px, body, query=""):
    return px.admin("POST", "/outcomes" + query, body=json.dumps(body),
                    headers=[("Content-Type", "application/json")])


def outcome_records(px):
    return px.outcomes(lambda r: r["type"] == "outcome")


def metrics(px):
    r = px.admin("GET", "/metrics")
    assert r.status == 200, r
    return parse_prometheus(r.body.decode())


def serve(px, n, rid="d-%06d", user="u-%d", nconns=4, ordered=False):
    """n requests, request i with X-Request-Id rid % i and X-User-Id user % i; returns the
    variant each was answered. ordered: one connection, so the proxy sees them in order."""
    reqs = [build_request("GET", "/predict", [("X-User-Id", user % i), ("X-Request-Id", rid % i)])
            for i in range(n)]
    if ordered:
        with HttpConn(px.port, timeout=30) as c:
            resps = pipelined(c, reqs, batch=200)
    else:
        resps = parallel_pipelined(px.port, reqs, nconns=nconns, batch=200)
    out = []
    for i, r in enumerate(resps):
        assert r.status == 200 and r.header("X-Request-Id") == rid % i, r
        out.append(r.header("X-Abgate-Variant"))
    return out


def post_all(px, items, query=""):
    """Posts items in batches of 10,000; returns the answers' JSON, merged with global indexes."""
    merged = {"accepted": 0, "deduplicated": [], "rejected": []}
    for k in range(0, len(items), 10000):
        r = post(px, items[k:k + 10000], query)
        assert r.status in (200, 400), r
        doc = r.json()
        merged["accepted"] += doc["accepted"]
        merged["deduplicated"] += [dict(d, index=d["index"] + k) for d in doc["deduplicated"]]
        merged["rejected"] += [dict(d, index=d["index"] + k) for d in doc["rejected"]]
    return merged


# ---- the request-id map --------------------------------------------------------------------

def test_300k_requests_then_outcomes_for_the_first_10k_all_accepted(procs, models, yaml_config,
                                                                    tmp_path):
    px = start(procs, config(yaml_config, models, tmp_path))
    t0 = time.monotonic()
    served = serve(px, 300000, nconns=6)
    took = time.monotonic() - t0
    m = metrics(px)
    assert metric_value(m, "abgate_outcome_rids") == 300000
    assert metric_value(m, "abgate_outcome_rids_expired_total", reason="max_rids") == 0
    assert metric_value(m, "abgate_outcome_rids_bytes") == 2000000 * 80

    items = [{"exp": EXP, "metric": "click", "value": i % 2, "rid": "d-%06d" % i}
             for i in range(10000)]
    doc = post_all(px, items)
    assert doc == {"accepted": 10000, "deduplicated": [], "rejected": []}, doc["rejected"][:3]
    recs = px.wait_outcomes(lambda r: r["type"] == "outcome", 10000, timeout=10)
    assert len(recs) == 10000
    wrong = [r for r in recs if r["variant"] != served[int(r["rid"][2:])]]
    assert not wrong, wrong[:3]
    assert {r["variant"] for r in recs} == {"control", "treatment"}
    m = metrics(px)
    assert metric_value(m, "abgate_outcomes_total", result="accepted") == 10000
    assert metric_value(m, "abgate_outcomes_total", result="rejected") == 0
    print("300,000 requests in %.1f s" % took)


M64 = (1 << 64) - 1


def ridmap_hash(key, seed=0):
    """proxy/ridmap.c's hash of a key (bytes), to know each id's shard."""
    k = 0x9E3779B97F4A7C15
    h = ((seed ^ len(key)) * k) & M64
    i, n = 0, len(key)
    while i + 8 <= n:
        h = ((h ^ int.from_bytes(key[i:i + 8], "little")) * k) & M64
        h ^= h >> 29
        i += 8
    if i < n:
        h = ((h ^ int.from_bytes(key[i:], "little")) * k) & M64
        h ^= h >> 29
    h ^= h >> 30
    h = (h * 0xBF58476D1CE4E5B9) & M64
    h ^= h >> 27
    h = (h * 0x94D049BB133111EB) & M64
    return h ^ (h >> 31)


def evicted_ids(rids, max_rids, shards=64):
    """The ids a map of max_rids pushes out when rids are put in this order: each shard keeps
    its ceil(max_rids / shards) newest."""
    cap = -(-max_rids // shards)
    per = {}
    for r in rids:
        per.setdefault(ridmap_hash(r.encode()) >> 58, []).append(r)
    out = set()
    for ids in per.values():
        out.update(ids[:max(0, len(ids) - cap)])
    return out


def test_past_max_rids_exactly_the_pushed_out_ids_are_rejected(procs, models, yaml_config,
                                                               tmp_path):
    n, max_rids = 60000, 55000
    px = start(procs, config(yaml_config, models, tmp_path, workers=1, max_rids=max_rids))
    served = serve(px, n, ordered=True)
    gone = evicted_ids(["d-%06d" % i for i in range(n)], max_rids)
    first = ["d-%06d" % i for i in range(10000)]
    assert 3000 < len(gone & set(first)) < 10000 and gone <= set(first), len(gone)
    m = metrics(px)
    assert metric_value(m, "abgate_outcome_rids_expired_total", reason="max_rids") == len(gone)
    assert metric_value(m, "abgate_outcome_rids") == n - len(gone)

    items = [{"exp": EXP, "metric": "click", "value": 1, "rid": r} for r in first]
    doc = post_all(px, items)
    rejected = {first[d["index"]]: d for d in doc["rejected"]}
    assert set(rejected) == gone
    assert doc["accepted"] == 10000 - len(gone) and doc["deduplicated"] == []
    for d in rejected.values():
        assert d["reason"] == "rid_evicted", d
        assert "pushed out by newer ones (outcomes.max_rids is 55000)" in d["error"], d
    recs = px.wait_outcomes(lambda r: r["type"] == "outcome", 10000 - len(gone))
    assert sorted(r["rid"] for r in recs) == sorted(set(first) - gone)
    assert all(r["variant"] == served[int(r["rid"][2:])] for r in recs)
    m = metrics(px)
    assert metric_value(m, "abgate_outcomes_rejected_total", reason="rid_evicted") == len(gone)
    assert metric_value(m, "abgate_outcomes_total", result="accepted") == 10000 - len(gone)

    # with a unit beside it, a pushed-out id is still attributed (by the unit)
    r = post(px, {"exp": EXP, "metric": "click", "value": 1, "rid": sorted(gone)[0],
                  "unit": "u-0"})
    assert r.status == 200 and r.json()["accepted"] == 1, r
    # an id never served is unknown, not expired
    r = post(px, {"exp": EXP, "metric": "click", "value": 1, "rid": "never-served"})
    assert r.status == 400 and r.json()["rejected"][0]["reason"] == "rid_unknown", r
    assert "unknown request id 'never-served'" in r.json()["error"]


def test_ids_older_than_the_window_are_rejected_as_expired(procs, models, yaml_config,
                                                           tmp_path):
    px = start(procs, config(yaml_config, models, tmp_path, window=2))
    serve(px, 1000, rid="old-%d")
    time.sleep(3.2)
    served = serve(px, 1000, rid="new-%d")
    items = ([{"exp": EXP, "metric": "click", "value": 1, "rid": "old-%d" % i}
              for i in range(1000)] +
             [{"exp": EXP, "metric": "click", "value": 1, "rid": "new-%d" % i}
              for i in range(1000)])
    r = post(px, items)
    assert r.status == 200, r
    doc = r.json()
    assert doc["accepted"] == 1000
    assert [d["index"] for d in doc["rejected"]] == list(range(1000))
    for d in doc["rejected"]:
        assert d["reason"] == "rid_expired", d
        assert "expired from the window (older than 2 s)" in d["error"], d
    recs = px.wait_outcomes(lambda x: x["type"] == "outcome", 1000)
    assert all(x["variant"] == served[int(x["rid"][4:])] for x in recs)
    m = metrics(px)
    assert metric_value(m, "abgate_outcome_rids_expired_total", reason="window") == 1000
    assert metric_value(m, "abgate_outcomes_rejected_total", reason="rid_expired") == 1000


# ---- per-item results and deduplication ----------------------------------------------------

def click_counts(px):
    """(n, successes) of click per variant in the live report."""
    r = px.admin("GET", "/experiments/%s/report?format=json" % EXP)
    assert r.status == 200, r
    click = {m["name"]: m for m in r.json()["metrics"]}["click"]["by_variant"]
    return {v: (c["n"], c["successes"]) for v, c in click.items()}


def batch_of_100(tag):
    """100 click outcomes for distinct users (by unit, by request id, by variant), each with
    an id; items 3, 50 and 97 are bad."""
    items = []
    for i in range(100):
        o = {"exp": EXP, "metric": "click", "value": i % 3 == 0, "id": "%s-%d" % (tag, i)}
        if i % 3 == 0:
            o["unit"] = "b-%s-%d" % (tag, i)
        elif i % 3 == 1:
            o["rid"] = "r-%s-%d" % (tag, i)
        else:
            o["variant"] = "treatment"
            o["unit"] = "b-%s-%d" % (tag, i)
        items.append(o)
    items[3] = dict(items[3], metric="clicks")         # no such metric
    items[50] = dict(items[50], value=2)               # not binary
    items[97] = {"exp": EXP, "metric": "click", "value": 1, "rid": "r-never", "id": "x"}
    return items


def test_a_batch_with_3_bad_items_records_97_and_a_retry_counts_nothing_twice(
        procs, models, yaml_config, tmp_path):
    cfg = config(yaml_config, models, tmp_path)
    px = start(procs, cfg)
    serve(px, 100, rid="r-a-%d", user="b-a-%d")
    serve(px, 100, rid="r-b-%d", user="b-b-%d")
    items = batch_of_100("a")

    r = post(px, items)
    assert r.status == 200, r
    doc = r.json()
    assert doc["accepted"] == 97 and doc["deduplicated"] == []
    assert [(d["index"], d["reason"]) for d in doc["rejected"]] == [
        (3, "unknown_metric"), (50, "bad_value"), (97, "rid_unknown")], doc
    assert "unknown metric 'clicks'" in doc["rejected"][0]["error"]
    assert "binary" in doc["rejected"][1]["error"]
    assert "r-never" in doc["rejected"][2]["error"]
    recs = px.wait_outcomes(lambda x: x["type"] == "outcome", 97)
    assert sorted(x["id"] for x in recs) == sorted(
        "a-%d" % i for i in range(100) if i not in (3, 50, 97))
    time.sleep(0.3)
    live = click_counts(px)
    assert sum(n for n, _ in live.values()) == 97
    assert sum(s for _, s in live.values()) == sum(
        1 for i in range(100) if i % 3 == 0 and i not in (3, 50, 97))

    # the same batch again: the 97 are duplicates (not errors, not logged), the 3 still named
    r = post(px, items)
    assert r.status == 200, r
    doc = r.json()
    assert doc["accepted"] == 0
    assert [d["index"] for d in doc["deduplicated"]] == [i for i in range(100)
                                                         if i not in (3, 50, 97)]
    assert [d["index"] for d in doc["rejected"]] == [3, 50, 97]
    time.sleep(0.3)
    assert len(outcome_records(px)) == 97
    assert click_counts(px) == live
    m = metrics(px)
    assert metric_value(m, "abgate_outcomes_total", result="accepted") == 97
    assert metric_value(m, "abgate_outcomes_total", result="deduplicated") == 97
    assert metric_value(m, "abgate_outcomes_total", result="rejected") == 6
    assert metric_value(m, "abgate_outcomes_rejected_total", reason="unknown_metric") == 2

    # all or nothing on request: the bad items named, nothing recorded
    fresh = batch_of_100("b")
    r = post(px, fresh, "?atomic=1")
    assert r.status == 400, r
    doc = r.json()
    assert doc["accepted"] == 0 and [d["index"] for d in doc["rejected"]] == [3, 50, 97]
    assert "nothing was recorded" in doc["error"] and "atomic" in doc["error"]
    time.sleep(0.3)
    assert len(outcome_records(px)) == 97

    # a restart: the keys come back from the outcome log, so the retry still counts once
    assert px.stop() == 0
    px = start_proxy(procs, cfg)
    assert "97 outcome keys" in px.log(), px.log()
    r = post(px, items)
    assert r.status == 200, r
    assert r.json()["accepted"] == 0 and len(r.json()["deduplicated"]) == 97, r.json()
    time.sleep(0.3)
    assert len(outcome_records(px)) == 97
    # the requests' ids came back too: item 1's rid is still attributed
    r = post(px, {"exp": EXP, "metric": "revenue", "value": 5, "rid": "r-a-1"})
    assert r.status == 200 and r.json()["accepted"] == 1, r


def test_without_an_id_a_binary_metric_counts_once_per_request(procs, models, yaml_config,
                                                               tmp_path):
    px = start(procs, config(yaml_config, models, tmp_path))
    served = serve(px, 3, rid="q-%d")
    click = {"exp": EXP, "metric": "click", "value": 1, "rid": "q-0"}
    revenue = {"exp": EXP, "metric": "revenue", "value": 9.5, "rid": "q-0"}
    # twice in one batch, and once more later: the click counts once, revenue each time
    r = post(px, [click, dict(click, value=0), revenue, revenue])
    assert r.status == 200, r
    assert r.json() == {"accepted": 3, "deduplicated": [{"index": 1}], "rejected": []}
    r = post(px, [click, revenue])
    assert r.json() == {"accepted": 1, "deduplicated": [{"index": 0}], "rejected": []}
    # another request's click, and clicks by unit only, are not duplicates
    r = post(px, [dict(click, rid="q-1"), {"exp": EXP, "metric": "click", "value": 1,
                                            "unit": "u-2"},
                  {"exp": EXP, "metric": "click", "value": 1, "unit": "u-2"}])
    assert r.json()["accepted"] == 3, r
    recs = px.wait_outcomes(lambda x: x["type"] == "outcome", 7)
    assert len(recs) == 7
    assert [x["variant"] for x in recs if x.get("rid") == "q-0"] == [served[0]] * 4


# ---- attribution ---------------------------------------------------------------------------

ROLLOUT = """\
    rollout: {{steps: [1, 5, 25, 100], interval_s: 600, auto: false, state_file: {state}}}
"""


def rollout_config(yaml_config, models, tmp_path, step, weight):
    state = tmp_path / "rollout.state"
    state.write_text(json.dumps({"experiment": EXP, "step": step, "status": "paused",
                                 "canary_weight": weight}))
    # YAML weights 90/10, which a running rollout overrides
    return config(yaml_config, models, tmp_path, wc=90, wt=10,
                  rollout=ROLLOUT.format(state=state))


def canary_of(unit, weight):
    return "treatment" if variant_for([("c", 100 - weight), ("t", weight)], EXP, unit) == "t" \
        else "control"


def attribute_all(px, tag, n=10000):
    """n users' requests, then outcomes by unit, by request id and by variant for each;
    returns (variants answered, outcome records) and checks every record's variant."""
    users = ["%s-user-%d" % (tag, i) for i in range(n)]
    reqs = [build_request("GET", "/predict", [("X-User-Id", u), ("X-Request-Id", "%s-%d" % (tag, i))])
            for i, u in enumerate(users)]
    answered = [r.header("X-Abgate-Variant") for r in parallel_pipelined(px.port, reqs)]
    items = ([{"exp": EXP, "metric": "click", "value": 1, "unit": u} for u in users] +
             [{"exp": EXP, "metric": "click", "value": 1, "rid": "%s-%d" % (tag, i)}
              for i in range(n)] +
             [{"exp": EXP, "metric": "click", "value": 1, "variant": answered[i],
               "id": "%s-v-%d" % (tag, i)} for i in range(n)])
    before = len(outcome_records(px))
    doc = post_all(px, items)
    assert doc == {"accepted": 3 * n, "deduplicated": [], "rejected": []}, doc["rejected"][:3]
    recs = px.wait_outcomes(lambda x: x["type"] == "outcome", before + 3 * n, timeout=10)[before:]
    index = {u: i for i, u in enumerate(users)}
    wrong = []
    for x in recs:
        i = index[x["unit"]] if x.get("unit") else (
            int(x["rid"].rsplit("-", 1)[1]) if x.get("rid") else int(x["id"].rsplit("-", 1)[1]))
        if x["variant"] != answered[i]:
            wrong.append((x, answered[i]))
    assert not wrong, wrong[:3]
    return answered, recs


def test_rollout_steps_credit_every_outcome_to_the_variant_answered(procs, models, yaml_config,
                                                                    tmp_path):
    for step, weight in ((1, 1), (2, 5), (3, 25)):
        px = start(procs, rollout_config(yaml_config, models, tmp_path, step, weight))
        answered, _ = attribute_all(px, "s%d" % step)
        share = answered.count("treatment") / len(answered)
        assert abs(share - weight / 100) < 0.02, (weight, share)
        assert all(answered[i] == canary_of("s%d-user-%d" % (step, i), weight)
                   for i in range(len(answered)))
        assert px.stop() == 0


def test_an_outcome_is_credited_to_the_variant_its_request_was_served(procs, models,
                                                                      yaml_config, tmp_path):
    """Across a rollout step, a reload (an older generation) and a restart."""
    cfg = rollout_config(yaml_config, models, tmp_path, 1, 1)
    px = start(procs, cfg)
    users = ["m-user-%d" % i for i in range(4000)]
    reqs = [build_request("GET", "/predict", [("X-User-Id", u), ("X-Request-Id", "m-%d" % i)])
            for i, u in enumerate(users)]
    before = [r.header("X-Abgate-Variant") for r in parallel_pipelined(px.port, reqs)]
    # to the 100% step: every user is the canary's now
    r = px.admin("POST", "/experiments/%s/promote" % EXP)
    assert r.status == 200, r
    after = [r.header("X-Abgate-Variant") for r in parallel_pipelined(px.port, [
        build_request("GET", "/predict", [("X-User-Id", u), ("X-Request-Id", "m2-%d" % i)])
        for i, u in enumerate(users)])]
    assert set(after) == {"treatment"} and before.count("control") > 3800
    # a reload as well: the outcome is posted under a newer generation
    assert px.reload_admin().status == 200
    doc = post_all(px, [{"exp": EXP, "metric": "click", "value": 1, "rid": "m-%d" % i}
                        for i in range(4000)] +
                   [{"exp": EXP, "metric": "click", "value": 1, "unit": u} for u in users])
    assert doc["accepted"] == 8000, doc["rejected"][:3]
    recs = px.wait_outcomes(lambda x: x["type"] == "outcome", 8000)
    by_rid = {x["rid"]: x["variant"] for x in recs if x.get("rid")}
    assert by_rid == {"m-%d" % i: before[i] for i in range(4000)}
    # by unit: the assignment in force when the outcome arrives
    assert {x["variant"] for x in recs if x.get("unit")} == {"treatment"}

    # a restart: the request ids of the window come back from the log, with what was served
    px.proc.signal(signal.SIGTERM)
    wait_until(lambda: not px.proc.alive(), timeout=10)
    px = start_proxy(procs, cfg)
    doc = post_all(px, [{"exp": EXP, "metric": "revenue", "value": 1.5, "rid": "m-%d" % i}
                        for i in range(4000)])
    assert doc["accepted"] == 4000, doc["rejected"][:3]
    recs = px.wait_outcomes(lambda x: x["type"] == "outcome" and x["metric"] == "revenue", 4000)
    assert {x["rid"]: x["variant"] for x in recs} == {"m-%d" % i: before[i]
                                                       for i in range(4000)}


# ---- offline attribution -------------------------------------------------------------------

def run_report(logs, *extra):
    import subprocess
    from harness import ABGATE_BIN
    p = subprocess.run([ABGATE_BIN, "report", "--format", "json", "--experiment", EXP] +
                       list(extra) + [str(x) for x in logs], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout), p.stderr


def test_outcomes_posted_to_the_wrong_instance_are_credited_by_the_report(
        procs, models, yaml_config, tmp_path):
    """Two instances, each with its own log; requests served by A, their outcomes posted to B
    with defer=1 (B does not know the ids): B records them as pending, and `abgate report`
    over both logs credits every one to the variant A served."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    cfg_a = config(yaml_config, models, tmp_path / "a", workers=1)
    cfg_b = config(yaml_config, models, tmp_path / "b", workers=1)
    a, b = start(procs, cfg_a), start(procs, cfg_b)
    served = serve(a, 3000, rid="w-%d", user="wu-%d")
    clicks = [i % 3 == 0 for i in range(3000)]
    items = [{"exp": EXP, "metric": "click", "value": clicks[i], "rid": "w-%d" % i,
              "id": "wc-%d" % i} for i in range(3000)]
    r = post(b, items, "?defer=1")
    assert r.status == 200, r
    doc = r.json()
    assert doc["accepted"] == 0 and doc["rejected"] == [] and doc["deduplicated"] == []
    assert len(doc["deferred"]) == 3000
    assert {d["reason"] for d in doc["deferred"]} == {"rid_unknown"}
    # a retry to B counts once; without defer=1 such an item is still rejected
    r = post(b, items[:10], "?defer=1")
    assert r.json()["accepted"] == 0 and len(r.json()["deduplicated"]) == 10, r.json()
    r = post(b, {"exp": EXP, "metric": "click", "value": 1, "rid": "w-5"})
    assert r.status == 400 and r.json()["rejected"][0]["reason"] == "rid_unknown", r
    pend = b.wait_outcomes(lambda x: x["type"] == "pending_outcome", 3000)
    assert len(pend) == 3000 and all(x["variant"] is None for x in pend)
    m = metrics(b)
    assert metric_value(m, "abgate_outcomes_total", result="deferred") == 3000
    a.stop()
    b.stop()

    want = {}
    for i, v in enumerate(served):
        n, s = want.get(v, (0, 0))
        want[v] = (n + 1, s + clicks[i])
    rep, err = run_report([cfg_a.outcomes, cfg_b.outcomes])
    click = {x["name"]: x for x in rep["metrics"]}["click"]["by_variant"]
    assert {v: (c["n"], c["successes"]) for v, c in click.items()} == want, (click, want)
    assert err == ""
    # B's log alone: the requests are not there, so nothing is credited, and it says so
    rep, err = run_report([cfg_b.outcomes])
    assert "3000 pending outcome(s) have no request record" in err, err
