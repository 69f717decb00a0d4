"""POST /outcomes on the admin listener: attribution by variant, request id and unit; every
kind of bad input refused with 400 and nothing logged (alone, or in an atomic=1 batch); the
live state and the live report."""

import json
import os
import time

import pytest

from harness import HttpConn, YAML_FRONT, variant_for

WEIGHTS = [("control", 70), ("treatment", 30)]

CONFIG = YAML_FRONT + """\
log:
  error: stderr
  outcomes: {outcomes}
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
      - {{name: control, backend: model-a, weight: 70}}
      - {{name: treatment, backend: model-b, weight: 30}}
    metrics:
      - {{name: error_rate, kind: binary, source: status_5xx, goal: decrease, guardrail: true}}
      - {{name: latency_ms, kind: continuous, source: latency_ms, goal: decrease, guardrail: true}}
      - {{name: click, kind: binary, source: outcome, goal: increase, primary: true}}
      - {{name: revenue, kind: continuous, source: outcome, goal: increase}}
  - name: other
    match: {{path_prefix: /other}}
    unit: {{header: X-User-Id}}
    variants:
      - {{name: old, backend: model-a, weight: 50}}
      - {{name: new, backend: model-b, weight: 50}}
    metrics:
      - {{name: click, kind: binary, source: outcome, goal: increase, primary: true}}
"""


@pytest.fixture
def proxy(procs, models, yaml_config, tmp_path):
    a, b = models
    outcomes = str(tmp_path / "outcomes.jsonl")
    cfg = yaml_config(CONFIG.format(outcomes=outcomes, a=a.addr, b=b.addr), outcomes=outcomes)
    px = procs.proxy(cfg)
    px.wait_outcomes(lambda r: r["type"] == "config", 2)
    return px


def expect(unit, salt="ranker"):
    return variant_for(WEIGHTS, salt, unit)


def users_of(variant, n, prefix):
    out, i = [], 0
    while len(out) < n:
        u = "%s-%d" % (prefix, i)
        if expect(u) == variant:
            out.append(u)
        i += 1
    return out


def post(proxy, body, content_type="application/json", path="/outcomes"):
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    return proxy.admin("POST", path, body=body, headers=[("Content-Type", content_type)])


def outcome_records(proxy):
    return proxy.outcomes(lambda r: r["type"] == "outcome")


def post_ok(proxy, body, n):
    before = len(outcome_records(proxy))
    r = post(proxy, body)
    assert r.status == 200, r
    assert r.json() == {"accepted": n, "deduplicated": [], "rejected": []}, r
    recs = proxy.wait_outcomes(lambda x: x["type"] == "outcome", before + n)
    time.sleep(0.05)
    recs = outcome_records(proxy)
    assert len(recs) == before + n, "more records than accepted: %r" % recs[before:]
    return recs[before:]


def check(rec, exp, variant, metric, value, unit=None, rid=None):
    assert rec["v"] == 1 and rec["type"] == "outcome", rec
    assert (rec["exp"], rec["variant"], rec["metric"]) == (exp, variant, metric), rec
    assert rec["value"] == value and type(rec["value"]) in (int, float), rec
    assert rec.get("unit") == unit, rec
    assert rec.get("rid") == rid, rec


def request(proxy, unit, rid=None, path="/predict"):
    headers = [("X-User-Id", unit)]
    if rid:
        headers.append(("X-Request-Id", rid))
    with HttpConn(proxy.port) as c:
        r = c.request("GET", path, headers)
    assert r.status == 200, r
    return r


def test_good_outcomes_are_attributed_and_logged(proxy):
    # a single object naming the variant (which wins over the unit's own variant)
    u_ctrl = users_of("control", 1, "gv")[0]
    recs = post_ok(proxy, {"exp": "ranker", "metric": "click", "value": 1,
                           "variant": "treatment", "unit": u_ctrl}, 1)
    check(recs[0], "ranker", "treatment", "click", 1, unit=u_ctrl)

    # by request id: a real proxied request's X-Request-Id, also when the unit given beside it
    # hashes to the other variant
    t_user = users_of("treatment", 1, "rid")[0]
    c_user = users_of("control", 1, "rid")[0]
    r_t = request(proxy, t_user)
    rid_t = r_t.header("X-Request-Id")
    assert r_t.header("X-Abgate-Variant") == "treatment" and len(rid_t) == 32
    r_c = request(proxy, c_user, rid="client-chosen-rid-1")
    assert r_c.header("X-Request-Id") == "client-chosen-rid-1"
    assert r_c.header("X-Abgate-Variant") == "control"
    recs = post_ok(proxy, [
        {"exp": "ranker", "metric": "click", "value": True, "rid": rid_t},
        {"exp": "ranker", "metric": "click", "value": False, "rid": "client-chosen-rid-1",
         "unit": t_user},
        {"exp": "ranker", "metric": "revenue", "value": 12.5, "rid": rid_t},
    ], 3)
    check(recs[0], "ranker", "treatment", "click", 1, rid=rid_t)
    check(recs[1], "ranker", "control", "click", 0, unit=t_user, rid="client-chosen-rid-1")
    check(recs[2], "ranker", "treatment", "revenue", 12.5, rid=rid_t)

    # by unit, recomputed with the cohort hash (and the other experiment's salt)
    units = ["unit-%d" % i for i in range(12)]
    batch = [{"exp": "ranker", "metric": "click", "value": i % 2, "unit": u}
             for i, u in enumerate(units)]
    batch.append({"exp": "other", "metric": "click", "value": 1, "unit": "unit-0"})
    batch.append({"exp": "ranker", "metric": "revenue", "value": -3, "unit": "unit-1"})
    recs = post_ok(proxy, batch, len(batch))
    variants = set()
    for i, u in enumerate(units):
        check(recs[i], "ranker", expect(u), "click", i % 2, unit=u)
        variants.add(expect(u))
    assert variants == {"control", "treatment"}
    check(recs[12], "other", variant_for([("old", 50), ("new", 50)], "other", "unit-0"),
          "click", 1, unit="unit-0")
    check(recs[13], "ranker", expect("unit-1"), "revenue", -3, unit="unit-1")
    # an outcome record carries a timestamp like the request records
    assert all(isinstance(r["ts"], str) and r["ts"].endswith("Z") for r in recs)


BAD = [
    ("malformed JSON", b'{"exp": "ranker", "metric": "click", "value": 1', "malformed"),
    ("not JSON at all", b"click=1", "malformed"),
    ("empty body", b"", "empty"),
    ("empty array", b"[]", "empty"),
    ("unknown experiment", {"exp": "nope", "metric": "click", "value": 1, "variant": "control"},
     "unknown experiment"),
    ("unknown metric", {"exp": "ranker", "metric": "purchases", "value": 1, "variant": "control"},
     "unknown metric"),
    ("metric measured by the proxy (latency)",
     {"exp": "ranker", "metric": "latency_ms", "value": 12.0, "variant": "control"}, "proxy"),
    ("metric measured by the proxy (errors)",
     {"exp": "ranker", "metric": "error_rate", "value": 1, "variant": "control"}, "proxy"),
    ("string for a binary metric",
     {"exp": "ranker", "metric": "click", "value": "1", "variant": "control"}, "binary"),
    ("2 for a binary metric",
     {"exp": "ranker", "metric": "click", "value": 2, "variant": "control"}, "binary"),
    ("0.5 for a binary metric",
     {"exp": "ranker", "metric": "click", "value": 0.5, "variant": "control"}, "binary"),
    ("string for a continuous metric",
     {"exp": "ranker", "metric": "revenue", "value": "x", "variant": "control"}, "continuous"),
    ("null for a continuous metric",
     {"exp": "ranker", "metric": "revenue", "value": None, "variant": "control"}, "continuous"),
    ("infinite value", b'{"exp":"ranker","metric":"revenue","value":1e999,"variant":"control"}',
     "continuous"),
    ("missing value", {"exp": "ranker", "metric": "click", "variant": "control"}, "value"),
    ("unknown field",
     {"exp": "ranker", "metric": "click", "value": 1, "variant": "control", "colour": "red"},
     "unknown field"),
    ("non-string unit", {"exp": "ranker", "metric": "click", "value": 1, "unit": 42}, "string"),
    ("non-string rid", {"exp": "ranker", "metric": "click", "value": 1, "rid": 7}, "string"),
    ("unknown variant",
     {"exp": "ranker", "metric": "click", "value": 1, "variant": "blue"}, "variant"),
    ("no variant, rid or unit", {"exp": "ranker", "metric": "click", "value": 1}, "attribute"),
    ("empty unit", {"exp": "ranker", "metric": "click", "value": 1, "unit": ""}, "attribute"),
    ("unknown request id and nothing else",
     {"exp": "ranker", "metric": "click", "value": 1, "rid": "never-seen"}, "never-seen"),
    ("an array item that is not an object", [1], "object"),
    ("one bad item in a batch, all or nothing",
     [{"exp": "ranker", "metric": "click", "value": 1, "variant": "control"},
      {"exp": "ranker", "metric": "click", "value": 0, "unit": "u-1"},
      {"exp": "ranker", "metric": "click", "value": 7, "unit": "u-2"}], "outcome 2", "atomic=1"),
    ("two bad items in a batch, all or nothing",
     [{"exp": "ranker", "metric": "click", "value": 1, "variant": "nope"},
      {"exp": "ranker", "metric": "click", "value": 0, "unit": "u-1"},
      {"exp": "ranker", "metric": "click", "value": 7, "unit": "u-2"}], "outcome 0",
     "atomic=true"),
]


def test_bad_outcomes_get_400_and_log_nothing(proxy):
    path = proxy.config.outcomes
    # a request of the experiment, so that a known request id exists and records are flowing
    request(proxy, "bad-user", rid="known-rid")
    # a request id of another experiment does not attribute an outcome of this one
    r = request(proxy, "bad-user", rid="other-exp-rid", path="/other")
    assert r.header("X-Abgate-Experiment") == "other"
    proxy.wait_outcomes(lambda r: r["type"] == "request", 2)
    time.sleep(0.3)
    bad = BAD + [("request id of another experiment",
                  {"exp": "ranker", "metric": "click", "value": 1, "rid": "other-exp-rid"},
                  "other-exp-rid")]
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        content = f.read()
    failures = []
    for name, body, word, *query in bad:
        r = post(proxy, body, path="/outcomes" + ("?" + query[0] if query else ""))
        if r.status != 400:
            failures.append("%s: status %d %r" % (name, r.status, r.body))
            continue
        try:
            reason = r.json()["error"]
        except (ValueError, KeyError):
            failures.append("%s: no JSON reason: %r" % (name, r.body))
            continue
        if word.lower() not in reason.lower():
            failures.append("%s: reason %r does not mention %r" % (name, reason, word))
        if r.json().get("accepted", 0) != 0:
            failures.append("%s: accepted %r" % (name, r.json()))
    time.sleep(0.3)
    assert os.path.getsize(path) == size, "a refused outcome was logged"
    with open(path, "rb") as f:
        assert f.read() == content
    assert not failures, "\n".join(failures)
    # and a good one still goes through afterwards
    recs = post_ok(proxy, {"exp": "ranker", "metric": "click", "value": 1, "rid": "known-rid"}, 1)
    check(recs[0], "ranker", expect("bad-user"), "click", 1, rid="known-rid")


def test_outcomes_wants_post(proxy):
    r = proxy.admin("GET", "/outcomes")
    assert r.status == 405, r


def no_nan(doc):
    return json.loads(json.dumps(doc), parse_constant=lambda c: pytest.fail("NaN/Inf: " + c))


def test_live_state_and_report_reflect_outcomes_and_requests(proxy):
    ctrl = users_of("control", 9, "live")
    treat = users_of("treatment", 6, "live")
    for u in ctrl + treat:
        request(proxy, u)
    clicks = ([{"exp": "ranker", "metric": "click", "value": 1, "unit": u} for u in ctrl[:4]] +
              [{"exp": "ranker", "metric": "click", "value": 0, "unit": u} for u in ctrl[4:]] +
              [{"exp": "ranker", "metric": "click", "value": 1, "unit": u} for u in treat[:5]] +
              [{"exp": "ranker", "metric": "click", "value": 0, "unit": u} for u in treat[5:]])
    post_ok(proxy, clicks, 15)
    post_ok(proxy, [{"exp": "ranker", "metric": "revenue", "value": v, "variant": "treatment"}
                    for v in (10, 20, 30)], 3)
    time.sleep(0.2)

    r = proxy.admin("GET", "/experiments")
    assert r.status == 200, r
    doc = r.json()
    exps = {e["name"]: e for e in doc["experiments"]}
    assert set(exps) == {"ranker", "other"}
    ranker = {v["name"]: v for v in exps["ranker"]["variants"]}
    assert ranker["control"]["requests"] == 9 and ranker["control"]["units"] == 9, ranker
    assert ranker["treatment"]["requests"] == 6 and ranker["treatment"]["units"] == 6, ranker
    assert ranker["control"]["weight"] == 70 and ranker["treatment"]["weight"] == 30
    assert exps["ranker"]["recommendation"]["action"] in (
        "promote", "rollback", "continue", "investigate")
    assert {v["name"]: v["requests"] for v in exps["other"]["variants"]} == {"old": 0, "new": 0}

    r = proxy.admin("GET", "/experiments/ranker/report?format=json")
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("application/json")
    rep = no_nan(json.loads(r.body.decode()))
    assert {"experiment", "variants", "srm", "metrics", "recommendation"} <= set(rep)
    assert rep["experiment"] == "ranker"
    assert [(v["name"], v["weight"], v["requests"], v["units"]) for v in rep["variants"]] == [
        ("control", 70, 9, 9), ("treatment", 30, 6, 6)]
    assert {"chi2", "df", "p_value", "flagged"} <= set(rep["srm"])
    metrics = {m["name"]: m for m in rep["metrics"]}
    assert set(metrics) == {"error_rate", "latency_ms", "click", "revenue"}
    for m in rep["metrics"]:
        assert {"name", "kind", "goal", "by_variant", "comparisons"} <= set(m), m
        assert [c["variant"] for c in m["comparisons"]] == ["treatment"], m
        assert "p_value" in m["comparisons"][0]
    click = metrics["click"]["by_variant"]
    assert (click["control"]["n"], click["control"]["successes"]) == (9, 4), click
    assert (click["treatment"]["n"], click["treatment"]["successes"]) == (6, 5), click
    assert metrics["click"]["primary"] is True
    rev = metrics["revenue"]["by_variant"]
    assert rev["treatment"]["n"] == 3 and rev["treatment"]["mean"] == 20, rev
    assert rev["control"]["n"] == 0, rev
    lat = metrics["latency_ms"]["by_variant"]
    assert (lat["control"]["n"], lat["treatment"]["n"]) == (9, 6), lat
    assert rep["recommendation"]["action"] in ("promote", "rollback", "continue", "investigate")
    assert isinstance(rep["recommendation"]["reasons"], list) and rep["recommendation"]["reasons"]

    r = proxy.admin("GET", "/experiments/ranker/report?format=html")
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("text/html")
    assert b"<svg" in r.body
    r = proxy.admin("GET", "/experiments/ranker/report?format=text")
    assert r.status == 200 and b"RECOMMENDATION" in r.body.upper(), r
    r = proxy.admin("GET", "/experiments/nope/report?format=json")
    assert r.status == 404, r
    assert "error" in r.json()
    r = proxy.admin("GET", "/experiments/ranker/report?format=pdf")
    assert r.status == 400, r
