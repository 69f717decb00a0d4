"""Upstream failures (502/504, never another variant's backend), unmatched requests, experiment
matching, and `abgate check`."""

import glob
import os
import re
import subprocess
import time

from harness import ABGATE_BIN, REPO, Experiment, HttpConn, free_port, wait_until

MODEL_OF = {"control": "model-a", "treatment": "model-b"}


def users_of(exp, variant, n, prefix="u"):
    out = []
    i = 0
    while len(out) < n:
        u = "%s-%d" % (prefix, i)
        if exp.expect(u) == variant:
            out.append(u)
        i += 1
    return out


def test_backend_down_gives_502_then_fast_503_for_its_variant_only(procs, models, make_config):
    a, _ = models
    dead = "127.0.0.1:%d" % free_port()  # nothing listens there
    exp = Experiment("ranker", [("control", "model-a", 50), ("treatment", "model-b", 50)])
    proxy = procs.proxy(make_config({"model-a": a.addr, "model-b": dead}, [exp]))
    treat = users_of(exp, "treatment", 15, "down")
    ctrl = users_of(exp, "control", 15, "down")
    rids = {}
    statuses = []
    with HttpConn(proxy.port) as c:
        # repeated failures mark the server down (after 3, the default health.fall): from then
        # on its variant gets a fast 503, and still never another variant's backend
        for rnd in range(4):
            for u in treat:
                rid = "dead-%d-%s" % (rnd, u)
                t0 = time.monotonic()
                r = c.request("GET", "/predict", [("X-User-Id", u), ("X-Request-Id", rid)])
                took = time.monotonic() - t0
                assert r.status in (502, 503), r
                assert took < 0.5, took
                assert r.header("X-Abgate-Variant") == "treatment"
                assert r.header("X-Abgate-Experiment") == "ranker"
                assert r.header("X-Backend-Model") is None
                assert b"model-a" not in r.body
                assert 0 < len(r.body) < 200
                statuses.append(r.status)
                # a 503 never reached a server: its record names no upstream
                rids[rid] = ("treatment", r.status, dead if r.status == 502 else None)
            for u in ctrl:
                rid = "live-%d-%s" % (rnd, u)
                r = c.request("GET", "/predict", [("X-User-Id", u), ("X-Request-Id", rid)])
                assert r.status == 200, r
                assert r.json()["model"] == "model-a"
                rids[rid] = ("control", 200, a.addr)
    assert statuses[:3] == [502, 502, 502], statuses
    assert statuses[3] == 503, statuses
    assert statuses.count(503) >= len(statuses) - 8, statuses  # at most a few probes
    recs = proxy.wait_outcomes(lambda x: x["type"] == "request" and x["rid"] in rids,
                               len(rids))
    for rec in recs:
        assert (rec["variant"], rec["status"], rec["upstream"]) == rids[rec["rid"]], rec


def test_backend_dying_and_coming_back(procs, models, make_config):
    a, b = models
    exp = Experiment("ranker", [("control", "model-a", 50), ("treatment", "model-b", 50)])
    proxy = procs.proxy(make_config({"model-a": a.addr, "model-b": b.addr}, [exp]))
    treat = users_of(exp, "treatment", 5, "die")
    ctrl = users_of(exp, "control", 5, "die")
    with HttpConn(proxy.port) as c:
        for u in treat:
            r = c.request("GET", "/predict", [("X-User-Id", u)])
            assert r.status == 200 and r.json()["model"] == "model-b"
    b.proc.kill()
    for _ in range(3):
        for u in treat:
            with HttpConn(proxy.port) as c:
                r = c.request("GET", "/predict", [("X-User-Id", u)])
                assert r.status in (502, 503), r
                assert r.header("X-Abgate-Variant") == "treatment"
                assert r.header("X-Backend-Model") is None
        for u in ctrl:
            with HttpConn(proxy.port) as c:
                r = c.request("GET", "/predict", [("X-User-Id", u)])
                assert r.status == 200 and r.json()["model"] == "model-a"
    # the same server comes back on its port and is used again
    procs.backend("model-b", port=b.port)

    def back():
        with HttpConn(proxy.port) as c:
            r = c.request("GET", "/predict", [("X-User-Id", treat[0])])
            return r.status == 200 and r.json()["model"] == "model-b"
    wait_until(back, timeout=8, interval=0.1, what="model-b back in service")


def test_upstream_timeout_gives_504(procs, models, make_config):
    a, _ = models
    slow = procs.backend("model-slow", latency_ms=2000)
    exp = Experiment("ranker", [("control", "model-a", 50), ("treatment", "model-slow", 50)])
    proxy = procs.proxy(make_config({"model-a": a.addr, "model-slow": slow.addr}, [exp],
                                    limits={"upstream_timeout_ms": 300}))
    u = users_of(exp, "treatment", 1, "slow")[0]
    c_user = users_of(exp, "control", 1, "slow")[0]
    with HttpConn(proxy.port) as c:
        for _ in range(2):
            t0 = time.monotonic()
            r = c.request("GET", "/predict", [("X-User-Id", u)])
            took = time.monotonic() - t0
            assert r.status == 504, r
            assert r.header("X-Abgate-Variant") == "treatment"
            assert r.header("X-Backend-Model") is None
            assert 0 < len(r.body) < 200
            assert 0.25 <= took < 1.5, took
    with HttpConn(proxy.port) as c:
        r = c.request("GET", "/predict", [("X-User-Id", c_user)])
        assert r.status == 200 and r.json()["model"] == "model-a"
    recs = proxy.wait_outcomes(lambda x: x["type"] == "request" and x["status"] == 504, 2)
    assert all(x["variant"] == "treatment" and x["upstream"] == slow.addr for x in recs)


def test_unmatched_without_default_backend_is_404(ab_proxy):
    proxy, exp = ab_proxy(50, 50)
    with HttpConn(proxy.port) as c:
        for path in ("/", "/other", "/predic", "/PREDICT"):
            r = c.request("GET", path, [("X-User-Id", "x")])
            assert r.status == 404, (path, r)
            assert r.header("X-Abgate-Variant") is None
            assert r.header("X-Backend-Model") is None
        # the connection still serves matching requests
        r = c.request("GET", "/predict", [("X-User-Id", "x")])
        assert r.status == 200


def test_unmatched_with_default_backend_goes_there(ab_proxy):
    proxy, exp = ab_proxy(50, 50, default_backend="model-b")
    with HttpConn(proxy.port) as c:
        for i in range(5):
            r = c.request("GET", "/other/%d" % i, [("X-User-Id", "u%d" % i)])
            assert r.status == 200
            assert r.json()["model"] == "model-b"
            assert r.header("X-Abgate-Experiment") is None
            assert r.header("X-Abgate-Variant") is None


def test_match_by_host_and_method_first_match_wins(procs, models, make_config):
    a, b = models
    e1 = Experiment("by-host", [("control", "model-a", 50), ("treatment", "model-b", 50)],
                    host="api.example.com", method="POST")
    e2 = Experiment("any", [("control", "model-a", 50), ("treatment", "model-b", 50)])
    e3 = Experiment("never", [("control", "model-a", 50), ("treatment", "model-b", 50)])
    proxy = procs.proxy(make_config({"model-a": a.addr, "model-b": b.addr}, [e1, e2, e3],
                                    default_backend="model-a"))
    cases = [
        ("POST", "API.Example.com:8080", "/predict", "by-host"),
        ("POST", "api.example.com", "/predict/v2", "by-host"),
        ("GET", "api.example.com", "/predict", "any"),
        ("POST", "other.example.com", "/predict", "any"),
        ("POST", "api.example.com", "/other", None),
    ]
    with HttpConn(proxy.port) as c:
        for method, host, path, want in cases:
            r = c.request(method, path, [("Host", host), ("X-User-Id", "m-user")], body=b"")
            assert r.status == 200, r
            assert r.header("X-Abgate-Experiment") == want, (method, host, path)
            if want:
                exp = e1 if want == "by-host" else e2
                assert r.header("X-Abgate-Variant") == exp.expect("m-user")


def run_check(path, cwd=REPO):
    p = subprocess.run([ABGATE_BIN, "check", "-c", path], capture_output=True, cwd=cwd,
                       timeout=10)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def test_check_accepts_every_shipped_config():
    files = sorted(glob.glob(os.path.join(REPO, "conf", "*.yaml")))
    assert files
    for f in files:
        rel = os.path.relpath(f, REPO)
        rc, out, err = run_check(rel)
        assert rc == 0, (rel, out, err)
        assert re.match(r"^%s: ok\b" % re.escape(rel), out + err), (out, err)


BASE = """listen:
  - addr: 127.0.0.1:1
backends:
  a:
    servers: [127.0.0.1:2]
  b:
    servers: [127.0.0.1:3]
experiments:
  - name: e
    unit: {header: X-User-Id}
    variants:
      - {name: c, backend: a, weight: 50}
      - {name: t, backend: b, weight: 50}
"""


def test_check_rejects_bad_files_with_one_located_line(tmp_path):
    cases = {
        # (text, exact "LINE:COL" or None when only the form is fixed)
        "unknown_top": (BASE.replace("backends:\n", "bogus: 1\nbackends:\n"), "3:1"),
        "unknown_nested": (BASE.replace("    servers: [127.0.0.1:3]\n",
                                        "    servers: [127.0.0.1:3]\n    colour: red\n"),
                           "8:5"),
        "weights_105": (BASE.replace("weight: 50}\n", "weight: 55}\n", 1), None),
        "broken_yaml": (BASE.replace("    variants:\n", "    variants: [\n"), None),
        "tab_indent": (BASE.replace("  b:\n", "\tb:\n"), None),
        # the column of the unknown name itself (1-based)
        "unknown_backend": (BASE.replace("backend: b,", "backend: zz,"),
                            "13:%d" % (BASE.splitlines()[12].index("backend: b,") + 10)),
    }
    for name, (text, loc) in cases.items():
        path = tmp_path / ("%s.yaml" % name)
        path.write_text(text)
        rc, out, err = run_check(str(path), cwd=str(tmp_path))
        lines = (out + err).splitlines()
        assert rc == 1, (name, out, err)
        assert len(lines) == 1, (name, lines)
        m = re.match(r"^%s:(\d+):(\d+): \S.*$" % re.escape(str(path)), lines[0])
        assert m, (name, lines[0])
        if loc is not None:
            assert "%s:%s" % (m.group(1), m.group(2)) == loc, (name, lines[0])
    # the base itself is fine
    good = tmp_path / "good.yaml"
    good.write_text(BASE)
    assert run_check(str(good))[0] == 0
