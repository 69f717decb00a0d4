"""Canary rollouts and shadow traffic, seen from outside: a canary that answers 500 rolls itself
back, a healthy one steps to 100, a restart resumes at the step it was at, the manual commands
act at once and are logged; a slow shadow backend leaves the clients' latency alone, a shadow
that disagrees on a known 10% of the users is reported at that rate by `abgate report`, and
shadows that cannot be reached or answer 500 are reported as failures and as error asymmetry.

Every proxy here is built from YAML written in the test (harness.YamlConfig), on fresh ports,
with its outcome log, error log and state file in the test's temporary directory."""

import json
import os
import socket
import random
import re
import statistics
import subprocess
import threading
import time

from harness import (ABGATE_BIN, HttpConn, YamlConfig, bucket, free_port, http, metric_series,
                     metric_value, parse_prometheus, start_proxy, wait_until)

EXP = "canary-exp"


# ---------------------------------------------------------------------------------------------
# Helpers.


def rollout_yaml(stable, canary, outcomes, steps=(10, 50, 100), interval_s=1, auto=True,
                 state_file=None, min_samples=30, extra_experiments=""):
    """A proxy configuration with one rollout experiment (control on `stable`, canary on
    `canary`, guardrail error_rate) on /predict keyed on X-User-Id."""
    rollout = "{steps: [%s], interval_s: %d, auto: %s%s}" % (
        ", ".join(str(s) for s in steps), interval_s, "true" if auto else "false",
        ", state_file: %s" % state_file if state_file else "")
    return """listen:
  - addr: 127.0.0.1:@PORT@
admin:
  addr: 127.0.0.1:@ADMIN@
log:
  error: stderr
  level: info
  outcomes: %(outcomes)s
  fsync_ms: 20
backends:
  stable: {servers: [%(stable)s]}
  canary: {servers: [%(canary)s]}
experiments:
  - name: %(exp)s
    match: {path_prefix: /predict}
    unit: {header: X-User-Id}
    variants:
      - {name: control, backend: stable, weight: 90}
      - {name: canary, backend: canary, weight: 10}
    metrics:
      - {name: error_rate, kind: binary, source: status_5xx, goal: decrease, guardrail: true}
    decision: {alpha: 0.05, min_samples: %(min_samples)d}
    rollout: %(rollout)s
%(extra)s""" % {"outcomes": outcomes, "stable": stable, "canary": canary, "exp": EXP,
                "min_samples": min_samples, "rollout": rollout, "extra": extra_experiments}


class Traffic:
    """Requests from varied users (random u-N) on a few keep-alive connections, in background
    threads, until stop(). Records (time, user, variant, status) of every answer."""

    def __init__(self, port, nconns=2, path="/predict", pause=0.0, seed=1):
        self.port = port
        self.path = path
        self.pause = pause
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.answers = []
        self.errors = []
        self.rng = random.Random(seed)
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(nconns)]
        for t in self.threads:
            t.start()

    def _run(self):
        conn = None
        try:
            while not self.stopped.is_set():
                if conn is None:
                    conn = HttpConn(self.port, timeout=10)
                with self.lock:
                    uid = "u-%d" % self.rng.randrange(1000000)
                r = conn.request("GET", self.path, [("X-User-Id", uid)])
                with self.lock:
                    self.answers.append((time.monotonic(), uid, r.header("X-Abgate-Variant"),
                                         r.status))
                if (r.header("Connection") or "").lower() == "close":
                    conn.close()
                    conn = None
                if self.pause:
                    time.sleep(self.pause)
        except Exception as e:  # reported by stop()
            self.errors.append(e)
        finally:
            if conn is not None:
                conn.close()

    def count(self):
        with self.lock:
            return len(self.answers)

    def stop(self):
        self.stopped.set()
        for t in self.threads:
            t.join(15)
        assert not self.errors, self.errors
        return list(self.answers)


def experiments(proxy):
    r = proxy.admin("GET", "/experiments")
    assert r.status == 200, r
    return {e["name"]: e for e in r.json()["experiments"]}


def rollout_state(proxy):
    return experiments(proxy)[EXP]["rollout"]


def command(proxy, cmd, exp=EXP):
    return proxy.admin("POST", "/experiments/%s/%s" % (exp, cmd))


def metrics(proxy):
    r = proxy.admin("GET", "/metrics")
    assert r.status == 200, r
    return parse_prometheus(r.body.decode())


def config_weights(proxy, exp=EXP):
    """The weights of the experiment's config records, in log order: [(control, canary)]."""
    return [(r["weights"]["control"], r["weights"]["canary"])
            for r in proxy.outcomes(lambda r: r["type"] == "config" and r["exp"] == exp)]


def wait_config(proxy, weights, timeout=5.0):
    """Waits until the last config record carries weights (the log is written in batches)."""
    def ok():
        w = config_weights(proxy)
        return w if w and w[-1] == weights else None
    return wait_until(ok, timeout=timeout, what="a config record with weights %r" % (weights,))


def rollout_lines(proxy):
    return [l for l in proxy.log().splitlines() if "rollout %s:" % EXP in l]


def canary_side(unit, canary_weight, salt=EXP):
    """The rollout's canary owns the top canary_weight percent of the buckets."""
    return bucket(salt, unit) >= 10000 - round(canary_weight * 100)


def variants_of(port, users):
    out = {}
    with HttpConn(port) as c:
        for u in users:
            r = c.request("GET", "/predict", [("X-User-Id", u)])
            assert r.status == 200, r
            out[u] = r.header("X-Abgate-Variant")
    return out


def stable_and_canary(procs, canary_error_rate=None):
    return (procs.backend("model-stable"),
            procs.backend("model-canary", error_rate=canary_error_rate))


# ---------------------------------------------------------------------------------------------
# Rollouts.


def test_failing_canary_rolls_itself_back(procs, tmp_path):
    stable, canary = stable_and_canary(procs, canary_error_rate=1)
    outcomes = str(tmp_path / "outcomes.jsonl")
    cfg = YamlConfig(tmp_path / "abgate.yaml",
                     rollout_yaml(stable.addr, canary.addr, outcomes,
                                  state_file=str(tmp_path / "rollout.state")),
                     outcomes=outcomes)
    proxy = start_proxy(procs, cfg)
    assert rollout_state(proxy) == {"step": 1, "status": "running", "canary_weight": 10}

    traffic = Traffic(proxy.port, nconns=2)
    t0 = time.monotonic()
    try:
        wait_until(lambda: rollout_state(proxy)["status"] == "rolled_back", timeout=3.5,
                   interval=0.05, what="the rollback (within three intervals)")
        rolled_back_at = time.monotonic()
        time.sleep(0.3)  # requests in flight at the change finish
        after = time.monotonic()
        time.sleep(0.5)
    finally:
        answers = traffic.stop()
    assert rolled_back_at - t0 <= 3.5
    assert rollout_state(proxy) == {"step": 1, "status": "rolled_back", "canary_weight": 0}

    # before: the canary's users got its 500s; after: every user is on the control, served
    before = [a for a in answers if a[0] < rolled_back_at]
    assert any(v == "canary" and s == 500 for _, _, v, s in before), "no canary traffic seen"
    late = [a for a in answers if a[0] > after]
    assert len(late) > 20, "too little traffic after the rollback"
    assert all(v == "control" and s == 200 for _, _, v, s in late), late[:5]

    # the outcome log: the start's weights, then the canary at 0
    assert wait_config(proxy, (100, 0)) == [(90, 10), (100, 0)]
    m = metrics(proxy)
    assert metric_value(m, "abgate_rollout_weight", experiment=EXP, variant="canary") == 0
    assert metric_value(m, "abgate_rollout_weight", experiment=EXP, variant="control") == 100
    assert metric_value(m, "abgate_rollout_step", experiment=EXP) == 0
    lines = rollout_lines(proxy)
    assert any("rolled back" in l and "canary 0.00%" in l for l in lines), lines
    with open(str(tmp_path / "rollout.state")) as f:
        state = json.load(f)
    assert state["experiment"] == EXP and state["status"] == "rolled_back"
    assert state["canary_weight"] == 0


def test_healthy_canary_steps_to_100(procs, tmp_path):
    stable, canary = stable_and_canary(procs)
    outcomes = str(tmp_path / "outcomes.jsonl")
    cfg = YamlConfig(tmp_path / "abgate.yaml",
                     rollout_yaml(stable.addr, canary.addr, outcomes), outcomes=outcomes)
    proxy = start_proxy(procs, cfg)
    seen = []
    traffic = Traffic(proxy.port, nconns=2)
    try:
        def promoted():
            st = rollout_state(proxy)
            if not seen or seen[-1] != st:
                seen.append(st)
            return st["status"] == "promoted"
        wait_until(promoted, timeout=15, interval=0.05, what="the promotion to 100")
        time.sleep(0.3)
        after = time.monotonic()
        time.sleep(0.3)
    finally:
        answers = traffic.stop()
    assert seen[0] == {"step": 1, "status": "running", "canary_weight": 10}
    assert seen[-1] == {"step": 3, "status": "promoted", "canary_weight": 100}
    steps = [s["step"] for s in seen]
    assert steps == sorted(steps), seen
    # each step's weights, in order, in the outcome log
    assert wait_config(proxy, (0, 100)) == [(90, 10), (50, 50), (0, 100)]
    late = [a for a in answers if a[0] > after]
    assert late and all(v == "canary" and s == 200 for _, _, v, s in late)
    m = metrics(proxy)
    assert metric_value(m, "abgate_rollout_step", experiment=EXP) == 3
    assert metric_value(m, "abgate_rollout_weight", experiment=EXP, variant="canary") == 100
    lines = rollout_lines(proxy)
    assert any("step 2 of 3" in l and "canary 50.00%" in l for l in lines), lines
    assert any("step 3 of 3" in l and "canary 100.00%" in l and "promoted" in l
               for l in lines), lines


def test_restart_resumes_at_the_same_step(procs, tmp_path):
    stable, canary = stable_and_canary(procs)
    outcomes = str(tmp_path / "outcomes.jsonl")
    state_file = str(tmp_path / "rollout.state")
    cfg = YamlConfig(tmp_path / "abgate.yaml",
                     rollout_yaml(stable.addr, canary.addr, outcomes, state_file=state_file),
                     outcomes=outcomes)
    proxy = start_proxy(procs, cfg)
    traffic = Traffic(proxy.port, nconns=2)
    try:
        wait_until(lambda: rollout_state(proxy)["step"] == 2, timeout=10, interval=0.02,
                   what="the second step")
    finally:
        traffic.stop()  # without traffic the step cannot advance again
    r = command(proxy, "pause")
    assert r.status == 200, r
    assert r.json() == {"result": "ok",
                        "rollout": {"step": 2, "status": "paused", "canary_weight": 50}}
    assert proxy.stop() == 0

    with open(state_file) as f:
        state = json.load(f)
    assert state["experiment"] == EXP and state["status"] == "paused"
    assert state["canary_weight"] == 50

    proxy2 = start_proxy(procs, cfg, name="proxy-restarted")
    assert rollout_state(proxy2) == {"step": 2, "status": "paused", "canary_weight": 50}
    assert any("resumed from" in l for l in rollout_lines(proxy2)), proxy2.log()
    # the split is the step's: the top 50% of the buckets on the canary
    users = ["u-%d" % i for i in range(300)]
    got = variants_of(proxy2.port, users)
    want = {u: "canary" if canary_side(u, 50) else "control" for u in users}
    assert got == want
    assert 100 < sum(v == "canary" for v in got.values()) < 200
    m = metrics(proxy2)
    assert metric_value(m, "abgate_rollout_step", experiment=EXP) == 2
    assert metric_value(m, "abgate_rollout_weight", experiment=EXP, variant="canary") == 50
    # the restarted proxy's config record has the step's weights, not the YAML's 90/10
    assert wait_config(proxy2, (50, 50))
    # paused: no automatic stepping, whatever the traffic
    traffic = Traffic(proxy2.port, nconns=2)
    try:
        time.sleep(2.5)
    finally:
        traffic.stop()
    assert rollout_state(proxy2) == {"step": 2, "status": "paused", "canary_weight": 50}


def test_damaged_state_file_is_kept_aside_and_holds_the_canary_at_0(procs, tmp_path):
    """A state file that is not this rollout's state (torn mid-write, another experiment's, a
    status its weight contradicts) is never overwritten: it is moved to FILE.damaged, the error log says why, and
    the rollout holds the canary at 0% until resumed by hand, which restarts at step 1."""
    stable, canary = stable_and_canary(procs)
    outcomes = str(tmp_path / "outcomes.jsonl")
    state_file = str(tmp_path / "rollout.state")
    cfg = YamlConfig(tmp_path / "abgate.yaml",
                     rollout_yaml(stable.addr, canary.addr, outcomes, auto=False,
                                  state_file=state_file),
                     outcomes=outcomes)
    cases = [(b'{"experiment":"%s","step":2,"sta' % EXP.encode(), "not valid JSON"),
             (b'{"experiment":"other","step":2,"status":"running","canary_weight":50}\n',
              "another experiment's state"),
             (b'{"experiment":"%s","step":2,"status":"rolled_back","canary_weight":50}\n'
              % EXP.encode(), "canary_weight does not match the status")]
    for i, (damaged, why) in enumerate(cases):
        with open(state_file, "wb") as f:
            f.write(damaged)
        proxy = start_proxy(procs, cfg, name="proxy-%d" % i)
        assert rollout_state(proxy) == {"step": 1, "status": "rolled_back", "canary_weight": 0}
        # the first damaged file keeps its name; later ones get a time suffix beside it
        aside = state_file + ".damaged"
        if i > 0:
            later = [n for n in os.listdir(str(tmp_path)) if n.startswith("rollout.state.damaged.")]
            assert len(later) == 1, later
            aside = str(tmp_path / later[0])
        with open(aside, "rb") as f:
            assert f.read() == damaged
        log = proxy.log()
        assert ("rollout %s: state file %s unusable (%s), kept as %s"
                % (EXP, state_file, why, aside)) in log, log
        assert "held with the canary at 0%" in log, log
        users = ["u-%d" % i for i in range(100)]
        assert set(variants_of(proxy.port, users).values()) == {"control"}
        # the state saved in its place is the held one
        with open(state_file) as f:
            assert json.load(f) == {"experiment": EXP, "step": 1, "status": "rolled_back",
                                    "canary_weight": 0}
        r = command(proxy, "resume")
        assert r.status == 200, r
        assert rollout_state(proxy) == {"step": 1, "status": "running", "canary_weight": 10}
        assert proxy.stop() == 0
        if i > 0:
            os.remove(aside)
    with open(state_file + ".damaged", "rb") as f:
        assert f.read() == cases[0][0]  # never overwritten


def test_unreadable_state_file_holds_the_canary_and_is_left_alone(procs, tmp_path):
    """A state file that cannot be read (here a directory in its place) may be fine: it is left
    where it is, and the rollout is held with the canary at 0%."""
    stable, canary = stable_and_canary(procs)
    outcomes = str(tmp_path / "outcomes.jsonl")
    state_file = tmp_path / "rollout.state"
    state_file.mkdir()
    cfg = YamlConfig(tmp_path / "abgate.yaml",
                     rollout_yaml(stable.addr, canary.addr, outcomes, auto=False,
                                  state_file=str(state_file)),
                     outcomes=outcomes)
    proxy = start_proxy(procs, cfg)
    assert rollout_state(proxy) == {"step": 1, "status": "rolled_back", "canary_weight": 0}
    log = proxy.log()
    assert "rollout %s: cannot read its state file %s" % (EXP, state_file) in log, log
    assert "held with the canary at 0%" in log, log
    assert state_file.is_dir() and not (tmp_path / "rollout.state.damaged").exists()
    assert set(variants_of(proxy.port, ["u-%d" % i for i in range(50)]).values()) == {"control"}
    assert proxy.stop() == 0


def test_manual_commands_act_at_once_and_are_logged(procs, tmp_path):
    stable, canary = stable_and_canary(procs)
    outcomes = str(tmp_path / "outcomes.jsonl")
    plain = """  - name: plain
    match: {path_prefix: /plain}
    unit: {header: X-User-Id}
    variants:
      - {name: control, backend: stable, weight: 50}
      - {name: treatment, backend: canary, weight: 50}
"""
    cfg = YamlConfig(tmp_path / "abgate.yaml",
                     rollout_yaml(stable.addr, canary.addr, outcomes, auto=False,
                                  state_file=str(tmp_path / "rollout.state"),
                                  extra_experiments=plain),
                     outcomes=outcomes)
    proxy = start_proxy(procs, cfg)
    users = ["u-%d" % i for i in range(200)]
    ex = experiments(proxy)
    assert ex[EXP]["rollout"] == {"step": 1, "status": "running", "canary_weight": 10}
    assert "rollout" not in ex["plain"]
    assert [v["weight"] for v in ex[EXP]["variants"]] == [90, 10]

    def expect(cmd, status, step, canary_weight):
        r = command(proxy, cmd)
        assert r.status == 200, r
        assert r.json() == {"result": "ok", "rollout": {"step": step, "status": status,
                                                        "canary_weight": canary_weight}}
        assert rollout_state(proxy) == r.json()["rollout"]
        # the very next requests follow the new split
        got = variants_of(proxy.port, users)
        assert got == {u: "canary" if canary_side(u, canary_weight) else "control"
                       for u in users}, cmd
        m = metrics(proxy)
        assert metric_value(m, "abgate_rollout_weight", experiment=EXP,
                            variant="canary") == canary_weight
        assert metric_value(m, "abgate_rollout_step", experiment=EXP) == (
            0 if status == "rolled_back" else step)

    def refused(cmd, exp=EXP, code=409):
        r = command(proxy, cmd, exp)
        assert r.status == code, (cmd, r)
        assert "error" in r.json(), r

    expect("pause", "paused", 1, 10)
    refused("pause")
    expect("resume", "running", 1, 10)
    refused("resume")
    expect("rollback", "rolled_back", 1, 0)
    assert wait_config(proxy, (100, 0))
    expect("resume", "running", 1, 10)  # a rolled-back rollout starts again at step 1
    assert wait_config(proxy, (90, 10))
    expect("promote", "promoted", 3, 100)
    refused("resume")
    refused("pause")
    assert wait_config(proxy, (0, 100)) == [(90, 10), (100, 0), (90, 10), (0, 100)]
    # a reload keeps the rollout's state (the YAML's 90/10 stays ignored), and its config
    # record carries the rollout's weights
    r = proxy.admin("POST", "/reload")
    assert r.status == 200, r
    assert rollout_state(proxy) == {"step": 3, "status": "promoted", "canary_weight": 100}
    assert variants_of(proxy.port, users[:50]) == {u: "canary" for u in users[:50]}
    assert wait_until(lambda: len(config_weights(proxy)) == 5, what="the reload's config record")
    assert config_weights(proxy)[-1] == (0, 100)
    refused("promote", exp="plain")
    refused("rollback", exp="plain")
    refused("promote", exp="no-such-experiment", code=404)
    refused("frobnicate", code=400)
    refused("frobnicate", exp="plain", code=400)

    lines = rollout_lines(proxy)
    for want in ("paused by hand at step 1", "resumed by hand at step 1",
                 "rolled back -> canary 0.00%", "restarted by hand at step 1",
                 "promoted by hand -> canary 100.00%"):
        assert any(want in l for l in lines), (want, lines)


# ---------------------------------------------------------------------------------------------
# Shadow traffic.


def shadow_yaml(backends, experiments_text, outcomes):
    y = ["listen:", "  - addr: 127.0.0.1:@PORT@", "admin:", "  addr: 127.0.0.1:@ADMIN@",
         "log:", "  error: stderr", "  level: info", "  outcomes: %s" % outcomes,
         "backends:"]
    for name, addr in backends.items():
        y.append("  %s: {servers: [%s]}" % (name, addr))
    return "\n".join(y) + "\nexperiments:\n" + experiments_text


def mirrored(name, prefix, shadow, compare=None):
    """An experiment's YAML: 50/50 on backend `model`, every request mirrored to `shadow`."""
    return """  - name: %s
    match: {path_prefix: %s}
    unit: {header: X-User-Id}
    variants:
      - {name: control, backend: model, weight: 50}
      - {name: treatment, backend: model, weight: 50}
    shadow: {backend: %s, percent: 100%s}
""" % (name, prefix, shadow, ", compare: {%s}" % compare if compare else "")


def client_latencies(port, paths, n, nconns=4):
    """Sends n requests per path over nconns keep-alive connections, each connection
    alternating between the paths; returns {path: [seconds]} measured by the client."""
    out = {p: [] for p in paths}
    lock = threading.Lock()
    errors = []

    def run(k):
        try:
            with HttpConn(port, timeout=10) as c:
                for i in range(k, n, nconns):
                    for p in (paths if i % 2 == 0 else paths[::-1]):
                        t = time.monotonic()
                        r = c.request("GET", p, [("X-User-Id", "u-%d" % i)])
                        dt = time.monotonic() - t
                        assert r.status == 200, r
                        with lock:
                            out[p].append(dt)
        except Exception as e:  # re-raised below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(nconns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return out


def test_slow_shadow_leaves_client_latency_alone(procs, tmp_path):
    model = procs.backend("model-a")
    slow = procs.backend("model-slow", latency_ms=300)
    outcomes = str(tmp_path / "outcomes.jsonl")
    exps = mirrored("mirrored", "/mirrored", "slow") + """  - name: plain
    match: {path_prefix: /plain}
    unit: {header: X-User-Id}
    variants:
      - {name: control, backend: model, weight: 50}
      - {name: treatment, backend: model, weight: 50}
"""
    cfg = YamlConfig(tmp_path / "abgate.yaml",
                     shadow_yaml({"model": model.addr, "slow": slow.addr}, exps, outcomes),
                     outcomes=outcomes)
    proxy = start_proxy(procs, cfg)
    lat = client_latencies(proxy.port, ["/mirrored", "/plain"], 400)
    p50_shadow = statistics.median(lat["/mirrored"]) * 1000
    p50_plain = statistics.median(lat["/plain"]) * 1000
    assert len(lat["/mirrored"]) == len(lat["/plain"]) == 400
    assert p50_shadow < p50_plain + 20, (p50_shadow, p50_plain)
    # the shadow did take its 300 ms, off the clients' path
    proxy.wait_outcomes(lambda r: r["type"] == "shadow" and r.get("status") == 200, 1,
                        timeout=5)
    time.sleep(0.5)
    recs = proxy.outcomes(lambda r: r["type"] == "shadow")
    answered = [r for r in recs if r["status"] is not None]
    assert any(r["latency_ms"] >= 300 for r in answered), answered[:3]
    # (the test backend's timer runs on a coarse clock: under load it may answer a few ms
    # early, so not every record reaches 300)
    assert all(r["latency_ms"] > 290 for r in answered), answered[:3]
    assert all(r["exp"] == "mirrored" and r["primary_latency_ms"] < 290 for r in answered)
    # every mirrored request is accounted for: compared, failed or dropped (at most 256 in
    # flight per worker), and each compared or failed one has its record
    def settled():
        m = metrics(proxy)
        c, f, d = (metric_value(m, "abgate_shadow_requests_total", result=k) or 0
                   for k in ("compared", "failed", "dropped"))
        return (c, f, d) if c + f + d == 400 else None
    compared, failed, dropped = wait_until(settled, timeout=5, what="400 shadow results")
    recs = proxy.wait_outcomes(lambda r: r["type"] == "shadow", compared + failed)
    assert len(recs) == compared + failed and compared == len(answered) > 0
    assert failed == 0, (compared, failed, dropped)


def shadow_scorer(primary_addr, altered):
    """A shadow model: asks the primary model the same question and answers as it did, but
    with score + 0.5 for the users whose id ends in '0' (recorded in altered)."""
    host, port = primary_addr.rsplit(":", 1)
    lock = threading.Lock()

    def handle(req, sock):
        keep = [(n, v) for n, v in req.headers
                if n.lower() in ("x-user-id", "x-request-id", "x-abgate-variant",
                                 "x-abgate-experiment", "content-type")]
        r = http(int(port), req.method, req.target, headers=keep, body=req.body or None)
        uid = req.header_all("X-User-Id")[0]
        body = r.body
        if uid.endswith("0"):
            doc = json.loads(body)
            doc["score"] = doc["score"] + 0.5
            body = json.dumps(doc).encode()
            with lock:
                altered.add(uid)
        return r.status, [("Content-Type", "application/json")], body
    return handle


def live_report(proxy, name):
    r = proxy.admin("GET", "/experiments/%s/report?format=json" % name)
    assert r.status == 200, r
    return r.json()


def test_shadow_disagreement_is_reported_at_its_rate(procs, tmp_path):
    model = procs.backend("model-a")
    altered = set()
    shadow = procs.upstream(shadow_scorer(model.addr, altered))
    outcomes = str(tmp_path / "outcomes.jsonl")
    exps = """  - name: exp
    match: {path_prefix: /predict}
    unit: {header: X-User-Id}
    variants:
      - {name: control, backend: model, weight: 50}
      - {name: treatment, backend: model, weight: 50}
    shadow: {backend: shadow, percent: 100, compare: {json_field: score, tolerance: 0.01}}
"""
    cfg = YamlConfig(tmp_path / "abgate.yaml",
                     shadow_yaml({"model": model.addr, "shadow": shadow.addr}, exps, outcomes),
                     outcomes=outcomes)
    proxy = start_proxy(procs, cfg)
    n = 1000
    users = ["u-%d" % i for i in range(n)]
    with HttpConn(proxy.port) as c:
        for i, u in enumerate(users):
            r = c.request("POST", "/predict", [("X-User-Id", u)],
                          body=json.dumps({"features": [i, i % 7]}))
            assert r.status == 200, r
            # the client always gets the primary's answer
            assert r.header("X-Backend-Model") == "model-a", r
    proxy.wait_outcomes(lambda r: r["type"] == "shadow", n, timeout=15)
    mirrored = list(shadow.requests)
    assert len(mirrored) == n
    assert all(q.header_all("X-Abgate-Shadow") == ["1"] for q in mirrored)
    assert all(q.header_all("X-Abgate-Experiment") == ["exp"] for q in mirrored)
    live = live_report(proxy, "exp")
    live_text = proxy.admin("GET", "/experiments/exp/report?format=text")
    assert proxy.stop() == 0
    recs = proxy.outcomes()
    unit_of = {r["rid"]: r["unit"] for r in recs if r["type"] == "request"}
    shadows = [r for r in recs if r["type"] == "shadow"]
    assert len(unit_of) == n and len(shadows) == n
    assert altered == {u for u in users if u.endswith("0")}

    # every record's verdict follows the users' rule exactly
    agree = 0
    for r in shadows:
        u = unit_of[r["rid"]]
        differs = u.endswith("0")
        assert r["status"] == 200 and r["primary_status"] == 200, r
        assert r["same_status"] is True, r
        assert r["field_agree"] is (not differs), (u, r)
        assert r["same_body"] is (not differs), (u, r)
        if differs:
            assert abs(r["field_diff"] - 0.5) < 1e-9, r
        else:
            assert r["field_diff"] == 0, r
        agree += not differs
    assert agree == 900

    p = subprocess.run([ABGATE_BIN, "report", "--format", "json", outcomes],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    sh = json.loads(p.stdout)["shadow"]
    # the live report counts the same records as the log: the same section, to the last digit
    assert live["shadow"] == sh
    assert b"agreement (same status and json field): 0.9 (900/1000)" in live_text.body
    assert sh["records"] == n and sh["compared"] == n and sh["failed"] == 0
    ag = sh["agreement"]
    assert ag["basis"] == "json_field" and ag["interval"] == "wilson"
    assert ag["n"] == n and ag["agree"] == agree
    assert ag["rate"] == agree / n
    assert ag["ci_low"] < 0.90 < ag["ci_high"]
    assert sh["same_status"]["rate"] == 1
    assert sh["same_body"]["same"] == agree
    assert sh["errors_5xx"]["shadow_only"] == sh["errors_5xx"]["primary_only"] == 0
    assert sh["latency_ms"]["pairs"] == n

    text = subprocess.run([ABGATE_BIN, "report", outcomes], capture_output=True, text=True,
                          timeout=30)
    assert text.returncode == 0, text.stderr
    assert re.search(r"agreement \(same status and json field\): 0\.9 \(900/1000\)",
                     text.stdout), text.stdout


def test_failing_and_erroring_shadows_in_the_report(procs, tmp_path):
    model = procs.backend("model-a")
    broken = procs.backend("model-broken", error_rate=1)
    dead = "127.0.0.1:%d" % free_port()
    outcomes = str(tmp_path / "outcomes.jsonl")
    exps = "".join(mirrored(name, "/" + name, backend, "json_field: score, tolerance: 0.01")
                   for name, backend in (("to-dead", "dead"), ("to-broken", "broken")))
    cfg = YamlConfig(tmp_path / "abgate.yaml",
                     shadow_yaml({"model": model.addr, "broken": broken.addr, "dead": dead},
                                 exps, outcomes),
                     outcomes=outcomes)
    proxy = start_proxy(procs, cfg)
    n = 100
    with HttpConn(proxy.port) as c:
        for i in range(n):
            for path in ("/to-dead", "/to-broken"):
                r = c.request("GET", path, [("X-User-Id", "u-%d" % i)])
                assert r.status == 200, r  # a failing shadow never touches the client
    proxy.wait_outcomes(lambda r: r["type"] == "shadow", 2 * n, timeout=10)
    live = {name: live_report(proxy, name) for name in ("to-dead", "to-broken")}
    # shadow failures count toward the shadow server's health as a primary's would: the dead
    # one is marked down after its `fall` connect failures and then skipped; answering 500 is
    # not a failure of the connection
    m = metrics(proxy)
    assert metric_value(m, "abgate_upstream_errors_total", backend="dead", server=dead,
                        reason="connect") >= 3
    assert metric_value(m, "abgate_backend_up", backend="dead", server=dead) == 0
    assert metric_value(m, "abgate_backend_up", backend="broken", server=broken.addr) == 1
    assert proxy.stop() == 0
    recs = proxy.outcomes(lambda r: r["type"] == "shadow")
    to_dead = [r for r in recs if r["exp"] == "to-dead"]
    to_broken = [r for r in recs if r["exp"] == "to-broken"]
    assert len(to_dead) == len(to_broken) == n
    for r in to_dead:
        assert r["status"] is None and r["latency_ms"] is None and r["error"], r
        assert r["same_status"] is None and r["same_body"] is None, r
    for r in to_broken:
        assert r["status"] == 500 and r["primary_status"] == 200, r
        assert r["same_status"] is False and r["field_agree"] is False, r
        assert r["field_diff"] is None, r  # the 500's body has no score

    p = subprocess.run([ABGATE_BIN, "report", "--format", "json", outcomes],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    reports = {x["experiment"]: x for x in json.loads(p.stdout)}
    for name in ("to-dead", "to-broken"):
        assert live[name]["shadow"] == reports[name]["shadow"], name
    sd = reports["to-dead"]["shadow"]
    assert sd["records"] == sd["failed"] == n and sd["compared"] == 0
    reasons = {}
    for r in to_dead:
        reasons[r["error"]] = reasons.get(r["error"], 0) + 1
    assert sd["failed_by_error"] == reasons
    assert sd["agreement"]["rate"] is None and sd["agreement"]["note"]
    assert sd["errors_5xx"]["p_value"] is None and sd["note"]
    sb = reports["to-broken"]["shadow"]
    assert sb["compared"] == n and sb["failed"] == 0
    assert sb["agreement"]["agree"] == 0 and sb["agreement"]["rate"] == 0
    assert sb["json_field"] == {"n": n, "missing": n}
    e = sb["errors_5xx"]
    assert e["pairs"] == n and e["shadow"]["rate"] == 1 and e["primary"]["rate"] == 0
    assert e["shadow_only"] == n and e["primary_only"] == 0
    assert e["test"] == "mcnemar_exact"
    assert abs(e["p_value"] - 2 * 0.5 ** n) <= 1e-12 * 2 * 0.5 ** n


def test_stale_pooled_shadow_connection_is_retried_once(procs, tmp_path):
    """A shadow server that closes a kept-alive connection on its second request, unanswered
    (as one that timed the connection out just then): the copy goes again on a new connection,
    every shadow is compared, and nothing counts against the server's health."""
    model = procs.backend("model-a")
    lock = threading.Lock()
    served = {}

    def one_per_connection(req, sock):
        with lock:
            n = served.get(sock, 0)
            served[sock] = n + 1
        if n > 0:
            sock.shutdown(socket.SHUT_RDWR)
            return None
        return 200, [("Content-Type", "application/json")], b'{"score": 0.5}'

    shadow = procs.upstream(one_per_connection)
    outcomes = str(tmp_path / "outcomes.jsonl")
    exps = mirrored("mirrored", "/predict", "shadow")
    cfg = YamlConfig(tmp_path / "abgate.yaml",
                     shadow_yaml({"model": model.addr, "shadow": shadow.addr}, exps, outcomes),
                     outcomes=outcomes)
    proxy = start_proxy(procs, cfg)
    n = 8
    with HttpConn(proxy.port) as c:
        for i in range(n):
            r = c.request("GET", "/predict", [("X-User-Id", "u-%d" % i)])
            assert r.status == 200, r
            # the shadow is done before the next request, so its connection is pooled
            proxy.wait_outcomes(lambda r: r["type"] == "shadow", i + 1)
    recs = proxy.outcomes(lambda r: r["type"] == "shadow")
    assert len(recs) == n
    for r in recs:
        assert r["status"] == 200 and not r.get("error") and r["same_status"] is True, r
    # the first request opened a connection; each later one found it closed, then went again
    assert len(shadow.requests) == 2 * n - 1, len(shadow.requests)
    assert sorted(served.values()) == [1] + [2] * (n - 1), served
    m = metrics(proxy)
    assert not [v for l, v in metric_series(m, "abgate_upstream_errors_total")
                if l["backend"] == "shadow" and v > 0], m
    assert metric_value(m, "abgate_backend_up", backend="shadow", server=shadow.addr) == 1
    assert proxy.stop() == 0
