"""The outcome log as the proxy writes it: config records at start and after each successful
reload, and one request record per request that matched an experiment."""

import re

from harness import Experiment, HttpConn, build_request

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def start_two(procs, models, make_config):
    a, b = models
    e1 = Experiment("ranker", [("control", "model-a", 80), ("treatment", "model-b", 20)])
    e2 = Experiment("reco", [("base", "model-a", "87.5"), ("new", "model-b", "12.5")],
                    path_prefix="/reco", salt="reco-salt-1")
    cfg = make_config({"model-a": a.addr, "model-b": b.addr}, [e1, e2],
                      default_backend="model-a")
    return procs.proxy(cfg), e1, e2


def config_records(proxy, generation, n=2):
    return proxy.wait_outcomes(lambda r: r["type"] == "config" and
                               r.get("generation") == generation, n)


def check_config(recs, expect):
    """expect: {exp: weights dict}"""
    got = {}
    for r in recs:
        assert r["v"] == 1
        assert TS.match(r["ts"]), r
        assert set(r) == {"v", "type", "ts", "generation", "exp", "weights"}, r
        assert r["exp"] not in got, "two config records for %s" % r["exp"]
        got[r["exp"]] = r["weights"]
        # declared order is kept
        assert list(r["weights"]) == list(expect[r["exp"]]), r
    assert got == expect


def test_config_records_at_start_and_after_each_good_reload(procs, models, make_config):
    proxy, e1, e2 = start_two(procs, models, make_config)
    recs = config_records(proxy, 1)
    check_config(recs, {"ranker": {"control": 80, "treatment": 20},
                        "reco": {"base": 87.5, "new": 12.5}})

    e1.variants = [("control", "model-a", 60), ("treatment", "model-b", 40)]
    proxy.config.write()
    r = proxy.reload_admin()
    assert r.json() == {"result": "ok", "generation": 2}
    check_config(config_records(proxy, 2), {"ranker": {"control": 60, "treatment": 40},
                                            "reco": {"base": 87.5, "new": 12.5}})

    # a bad file writes no config record and does not use up a generation
    good = proxy.config.text()
    proxy.config.write(good.replace("weight: 40}", "weight: 45}"))
    assert proxy.reload_admin().status == 422

    e2.variants = [("base", "model-a", "50.25"), ("new", "model-b", "49.75")]
    proxy.config.write()
    proxy.sighup_and_wait(3)
    check_config(config_records(proxy, 3), {"ranker": {"control": 60, "treatment": 40},
                                            "reco": {"base": 50.25, "new": 49.75}})
    configs = proxy.outcomes(lambda r: r["type"] == "config")
    assert sorted(r["generation"] for r in configs) == [1, 1, 2, 2, 3, 3]


def test_request_records_match_what_was_served(procs, models, make_config):
    a, b = models
    addr = {"model-a": a.addr, "model-b": b.addr}
    proxy, e1, e2 = start_two(procs, models, make_config)
    sent = {}
    with HttpConn(proxy.port) as c:
        for i in range(40):
            exp = e1 if i % 2 == 0 else e2
            path = "/predict/x" if exp is e1 else "/reco"
            unit = "log-user-%d" % i
            body = "b" * (i * 3)
            headers = [("X-User-Id", unit)]
            if i % 4 < 2:
                headers.append(("X-Request-Id", "log-rid-%03d" % i))
            raw = build_request("POST", path, headers, body=body)
            c.send(raw)
            r = c.read_response()
            assert r.status == 200, r
            rid = r.header("X-Request-Id")
            if i % 4 < 2:
                assert rid == "log-rid-%03d" % i
            v = exp.expect(unit)
            assert r.header("X-Abgate-Variant") == v
            backend = dict((n, bk) for n, bk, _ in exp.variants)[v]
            sent[rid] = dict(exp=exp.name, variant=v, unit=unit, status=200,
                             upstream=addr[backend], bytes_out=len(r.body), bytes_in=len(raw))
        # a request without any unit: fallback control, unit null
        r = c.request("GET", "/predict")
        sent[r.header("X-Request-Id")] = dict(exp="ranker", variant="control", unit=None,
                                              status=200, upstream=a.addr,
                                              bytes_out=len(r.body), bytes_in=None)
        # the default backend: no experiment
        r = c.request("GET", "/elsewhere", [("X-User-Id", "nobody")])
        assert r.status == 200 and r.header("X-Abgate-Variant") is None
        unmatched = r.header("X-Request-Id")

    recs = proxy.wait_outcomes(lambda x: x["type"] == "request" and x["rid"] in sent,
                               len(sent))
    assert len(recs) == len(sent), "duplicate request records"
    for rec in recs:
        want = sent[rec["rid"]]
        assert rec["v"] == 1
        assert TS.match(rec["ts"]), rec
        for k in ("exp", "variant", "unit", "status", "upstream", "bytes_out"):
            assert rec[k] == want[k], (k, rec, want)
        if want["bytes_in"] is not None:
            assert rec["bytes_in"] == want["bytes_in"], (rec, want)
        assert isinstance(rec["latency_ms"], (int, float)) and 0 <= rec["latency_ms"] < 5000
        assert "forced" not in rec
        assert {"v", "type", "ts", "exp", "variant", "unit", "rid", "status", "latency_ms",
                "upstream", "bytes_in", "bytes_out"} <= set(rec)
    # the unmatched request is not an exposure of any experiment
    for rec in proxy.outcomes(lambda x: x["type"] == "request" and x["rid"] == unmatched):
        assert rec["exp"] is None and rec["variant"] is None


def test_request_records_follow_reloaded_weights(ab_proxy):
    proxy, exp = ab_proxy(80, 20)
    # users in buckets [6000, 8000): control before the reload, treatment after
    from harness import bucket
    movers = [u for u in ("mv-%d" % i for i in range(400)) if 6000 <= bucket("ranker", u) < 8000]
    assert len(movers) > 20

    def send(tag):
        rids = {}
        with HttpConn(proxy.port) as c:
            for i, u in enumerate(movers):
                rid = "%s-%d" % (tag, i)
                r = c.request("GET", "/predict", [("X-User-Id", u), ("X-Request-Id", rid)])
                rids[rid] = r.header("X-Abgate-Variant")
        return rids

    before = send("before")
    assert set(before.values()) == {"control"}
    exp.variants = [("control", "model-a", 60), ("treatment", "model-b", 40)]
    proxy.config.write()
    assert proxy.reload_admin().status == 200
    after = send("after")
    assert set(after.values()) == {"treatment"}
    allr = dict(before, **after)
    recs = proxy.wait_outcomes(lambda x: x["type"] == "request" and x["rid"] in allr, len(allr))
    for rec in recs:
        assert rec["variant"] == allr[rec["rid"]]
