"""Reloads: raising a weight only moves users in, bad files keep the old generation serving,
and reloads under load drop nothing."""

import math
import re
import signal
import subprocess
import time

from harness import (Experiment, HttpConn, bucket, parallel_pipelined, port_open, user_request,
                     wait_until)

USERS = ["ramp-%d" % i for i in range(6000)]


def assignments(port, users):
    # 8 connections: with workers: 2 both workers answer
    resps = parallel_pipelined(port, [user_request(u) for u in users], nconns=8, batch=200)
    out = {}
    for u, r in zip(users, resps):
        assert r.status == 200, r
        v = r.header("X-Abgate-Variant")
        assert r.json()["model"] == {"control": "model-a", "treatment": "model-b"}[v]
        out[u] = v
    return out


def expected(users, salt, control_bp):
    return {u: ("control" if bucket(salt, u) < control_bp else "treatment") for u in users}


def check_ramp(before, after):
    n = len(USERS)
    was = {u for u in USERS if before[u] == "treatment"}
    now = {u for u in USERS if after[u] == "treatment"}
    left = was - now
    assert left == set(), "%d treatment users moved out: %r" % (len(left), sorted(left)[:10])
    moved_in = now - was
    # exactly the users in buckets [6000, 8000) moved in: about 20% of everyone
    assert moved_in == {u for u in USERS if 6000 <= bucket("ranker", u) < 8000}
    sigma = math.sqrt(n * 0.2 * 0.8)
    assert abs(len(moved_in) - 0.2 * n) <= 4 * sigma, len(moved_in)


def test_raise_treatment_20_to_40_by_sighup_moves_nobody_out(ab_proxy):
    proxy, exp = ab_proxy(80, 20, workers=2)
    before = assignments(proxy.port, USERS)
    assert before == expected(USERS, "ranker", 8000)

    exp.variants = [("control", "model-a", 60), ("treatment", "model-b", 40)]
    proxy.config.write()
    proxy.sighup_and_wait(2)
    after = assignments(proxy.port, USERS)
    assert after == expected(USERS, "ranker", 6000)
    check_ramp(before, after)


def test_raise_treatment_20_to_40_by_admin_reload_moves_nobody_out(ab_proxy):
    proxy, exp = ab_proxy(80, 20, workers=2)
    before = assignments(proxy.port, USERS)
    assert before == expected(USERS, "ranker", 8000)

    exp.variants = [("control", "model-a", 60), ("treatment", "model-b", 40)]
    proxy.config.write()
    r = proxy.reload_admin()
    assert r.status == 200, r
    assert r.json() == {"result": "ok", "generation": 2}
    after = assignments(proxy.port, USERS)
    assert after == expected(USERS, "ranker", 6000)
    check_ramp(before, after)


# users whose variant differs between 80/20 and 75/25 (buckets [7500, 8000)) show whether a
# bad 80/25 file leaked into routing; the others check everyone else stays put
EDGE = [u for u in ("edge-%d" % i for i in range(4000)) if 7500 <= bucket("ranker", u) < 8000]
PLAIN = ["plain-%d" % i for i in range(300)]


def still_old_weights(proxy):
    users = EDGE + PLAIN
    assert len(EDGE) > 50
    got = assignments(proxy.port, users)
    assert got == expected(users, "ranker", 8000)


BAD_FILES = {
    # unterminated flow sequence: a YAML syntax error
    "broken_yaml": lambda good: good.replace("    variants:\n", "    variants: [\n", 1),
    # weights summing to 105: well-formed YAML, invalid configuration
    "weights_105": lambda good: good.replace("weight: 20}", "weight: 25}", 1),
}

LOC = r"^%s:(\d+):(\d+): \S.*"


def test_bad_reload_by_admin_answers_422_and_keeps_old_weights(ab_proxy):
    proxy, exp = ab_proxy(80, 20, workers=2)
    good = proxy.config.text()
    still_old_weights(proxy)
    for name, make_bad in BAD_FILES.items():
        bad = make_bad(good)
        assert bad != good
        proxy.config.write(bad)
        r = proxy.reload_admin()
        assert r.status == 422, (name, r)
        body = r.json()
        assert body["result"] == "error", body
        m = re.match(LOC % re.escape(proxy.config.path), body["error"])
        assert m, (name, body)
        line = int(m.group(1))
        assert 1 <= line <= bad.count("\n") + 1
        assert int(m.group(2)) >= 1
        if name == "weights_105":
            # the error points into the experiment's variants
            first = bad.splitlines().index("    variants:") + 1
            assert first <= line <= first + 2, body
        assert proxy.proc.alive()
        still_old_weights(proxy)

    # a good file afterwards is generation 2: failed reloads do not count
    exp.variants = [("control", "model-a", 75), ("treatment", "model-b", 25)]
    proxy.config.write()
    r = proxy.reload_admin()
    assert r.status == 200 and r.json() == {"result": "ok", "generation": 2}, r
    got = assignments(proxy.port, EDGE)
    assert set(got.values()) == {"treatment"}


def test_bad_reload_by_sighup_logs_error_and_keeps_serving(ab_proxy):
    proxy, exp = ab_proxy(80, 20, workers=2)
    good = proxy.config.text()
    path = re.escape(proxy.config.path)
    seen = 0
    for name, make_bad in BAD_FILES.items():
        proxy.config.write(make_bad(good))
        proxy.proc.signal(signal.SIGHUP)
        seen += 1
        n = seen
        wait_until(lambda: len(re.findall(r"%s:\d+:\d+: " % path, proxy.log())) >= n,
                   what="reload error for %s in the log" % name)
        assert proxy.proc.alive()
        assert proxy.admin("GET", "/readyz").status == 200
        still_old_weights(proxy)
    assert proxy.reloaded_count() == 0
    proxy.config.write(good.replace("weight: 80}", "weight: 75}").replace("weight: 20}",
                                                                          "weight: 25}"))
    proxy.sighup_and_wait(2)
    got = assignments(proxy.port, EDGE)
    assert set(got.values()) == {"treatment"}


WRK_LUA = """
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/predict", {["X-User-Id"] = "wrk-" .. n})
end
"""


def run_wrk_with_reloads(proxy, exp, tmp_path, lua):
    argv = ["wrk", "-t1", "-c64", "-d4s", "--timeout", "3s"]
    if lua:
        script = tmp_path / "vary.lua"
        script.write_text(WRK_LUA)
        argv += ["-s", str(script)]
    argv.append("http://127.0.0.1:%d/predict" % proxy.port)
    out_path = tmp_path / "wrk.out"
    with open(out_path, "wb") as out:
        wrk = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        try:
            time.sleep(0.5)
            generation = 1
            for i in range(30):
                if i % 2 == 0:
                    exp.variants = [("control", "model-a", 60), ("treatment", "model-b", 40)]
                else:
                    exp.variants = [("control", "model-a", 80), ("treatment", "model-b", 20)]
                proxy.config.write()
                generation += 1
                if i % 4 < 2:
                    proxy.sighup_and_wait(generation)
                else:
                    r = proxy.reload_admin()
                    assert r.status == 200 and r.json()["generation"] == generation, r
                time.sleep(0.005)
            rc = wrk.wait(20)
        finally:
            if wrk.poll() is None:
                wrk.kill()
                wrk.wait()
    text = out_path.read_text()
    assert rc == 0, text
    return text, generation


def check_wrk(text):
    m = re.search(r"(\d+) requests in", text)
    assert m and int(m.group(1)) > 1000, text
    assert "Non-2xx or 3xx responses" not in text, text
    assert "Socket errors" not in text, text


def test_wrk_64_connections_through_30_reloads_varying_users(ab_proxy, tmp_path):
    proxy, exp = ab_proxy(80, 20, workers=2)
    text, generation = run_wrk_with_reloads(proxy, exp, tmp_path, lua=True)
    check_wrk(text)
    assert generation == 31
    assert proxy.proc.alive()
    # the last generation (80/20) serves
    users = ["after-%d" % i for i in range(500)]
    assert assignments(proxy.port, users) == expected(users, "ranker", 8000)
    r = proxy.reload_admin()
    assert r.json()["generation"] == 32


def test_wrk_64_connections_through_30_reloads_plain(ab_proxy, tmp_path):
    # no unit header: fallback control, every request goes to model-a, still zero errors
    proxy, exp = ab_proxy(80, 20, workers=2)
    text, generation = run_wrk_with_reloads(proxy, exp, tmp_path, lua=False)
    check_wrk(text)
    assert proxy.proc.alive()


def test_in_flight_request_finishes_on_its_generation(procs, models, make_config):
    a, b = models
    slow = procs.backend("model-slow", latency_ms=400)
    exp = Experiment("ranker", [("control", "model-slow", 80), ("treatment", "model-b", 20)])
    proxy = procs.proxy(make_config({"model-slow": slow.addr, "model-b": b.addr}, [exp]))
    mover = next(u for u in ("inflight-%d" % i for i in range(1000))
                 if 6000 <= bucket("ranker", u) < 8000)
    with HttpConn(proxy.port) as c:
        c.send(user_request(mover, extra=[("X-Request-Id", "inflight-old")]))
        time.sleep(0.1)
        exp.variants = [("control", "model-slow", 60), ("treatment", "model-b", 40)]
        proxy.config.write()
        assert proxy.reload_admin().json()["generation"] == 2
        r = c.read_response()
        assert r.status == 200
        assert r.header("X-Abgate-Variant") == "control"
        assert r.json()["model"] == "model-slow"
        # the next request of the same user is on the new generation
        r = c.request("GET", "/predict", [("X-User-Id", mover)])
        assert r.header("X-Abgate-Variant") == "treatment"
        assert r.json()["model"] == "model-b"
    rec = proxy.wait_outcomes(lambda x: x["type"] == "request" and x["rid"] == "inflight-old",
                              1)[0]
    assert rec["variant"] == "control" and rec["upstream"] == slow.addr


def test_sigterm_drains_in_flight_requests_and_exits_0(procs, models, make_config):
    a, _ = models
    slow = procs.backend("model-slow", latency_ms=500)
    exp = Experiment("ranker", [("control", "model-slow", 50), ("treatment", "model-slow", 50)])
    proxy = procs.proxy(make_config({"model-a": a.addr, "model-slow": slow.addr}, [exp],
                                    default_backend="model-a"))
    busy = HttpConn(proxy.port)
    idle = HttpConn(proxy.port)
    try:
        assert idle.request("GET", "/x").status == 200
        busy.send(user_request("drain-user"))
        time.sleep(0.1)
        proxy.proc.signal(signal.SIGTERM)
        r = busy.read_response()
        assert r.status == 200 and r.json()["model"] == "model-slow"
        assert proxy.proc.p.wait(5) == 0
        assert idle.is_closed(1) and busy.is_closed(1)
        assert not port_open(proxy.port)
    finally:
        busy.close()
        idle.close()
