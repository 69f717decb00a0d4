"""Hard gates in the running daemon: an A/B experiment is evaluated every decision.interval_s,
and a gate (metric max) recommends rollback only once it has been breached at 3 consecutive
evaluations; a look at GET /experiments counts as one more evaluation without changing the
daemon's count. The streaks survive a reload."""

import pytest

from harness import HttpConn, YAML_FRONT, wait_until

CONFIG = YAML_FRONT + """\
log:
  error: stderr
  level: info
backends:
  fast:
    servers: [{fast}]
  slow:
    servers: [{slow}]
experiments:
  - name: gated
    match: {{path_prefix: /predict}}
    unit: {{header: X-User-Id}}
    variants:
      - {{name: control, backend: fast, weight: 50}}
      - {{name: treatment, backend: slow, weight: 50}}
    metrics:
      - {{name: latency_ms, kind: continuous, source: latency_ms, goal: decrease, max: 15}}
    decision: {{min_samples: 10, interval_s: {interval}}}
"""


def recommendation(px):
    r = px.admin("GET", "/experiments")
    assert r.status == 200, r
    (exp,) = [e for e in r.json()["experiments"] if e["name"] == "gated"]
    return exp["recommendation"]


def gate_reasons(rec):
    return [x for x in rec["reasons"] if x.startswith("hard gate")]


@pytest.fixture
def gated(procs, yaml_config):
    fast = procs.backend("model-a")
    slow = procs.backend("model-b", latency_ms=40)
    cfg = yaml_config(CONFIG.format(fast=fast.addr, slow=slow.addr, interval=3600))
    px = procs.proxy(cfg)
    with HttpConn(px.port) as c:
        for i in range(60):
            r = c.request("GET", "/predict", [("X-User-Id", "g-%d" % i)])
            assert r.status == 200, r
    return px, fast, slow


def test_a_gate_needs_three_consecutive_breaches(gated):
    px, fast, slow = gated
    # Every treatment request took 40 ms against a 15 ms gate, but no periodic evaluation has
    # run yet (interval 3600 s): this look is the first breach, not a rollback.
    # Nor the third look: looks do not add up.
    for _ in range(3):
        rec = recommendation(px)
        assert rec["action"] != "rollback" and not gate_reasons(rec), rec

    # Evaluated every second from now on: two periodic breaches and this look make three.
    px.config.body = CONFIG.format(fast=fast.addr, slow=slow.addr, interval=1)
    px.config.write()
    assert px.reload_admin().status == 200

    def rolled_back():
        rec = recommendation(px)
        return rec if rec["action"] == "rollback" else None
    rec = wait_until(rolled_back, timeout=10, interval=0.1, what="the gate's rollback")
    assert rec["variant"] == "treatment", rec
    (reason,) = gate_reasons(rec)
    assert reason.startswith("hard gate: latency_ms p99 of treatment = ")
    assert "exceeds max 15 for 3 consecutive evaluations" in reason, reason
    # the daemon's own third evaluation logs the change
    wait_until(lambda: "experiment gated: recommendation rollback treatment (hard gate: "
               in px.log(), timeout=5, what="the log line")
