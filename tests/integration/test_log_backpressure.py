"""The outcome log falling behind: with the log on a pipe nobody reads, the queue fills up to
log.max_pending_bytes; then POST /outcomes answers 503 and records nothing, request records
are dropped and counted, and the proxy keeps serving. Once the pipe is read again, every
outcome that was accepted is in the log exactly once and none that was refused is."""

import json
import os
import time

import pytest

from harness import HttpConn, YAML_FRONT, metric_value, parse_prometheus, wait_until

CONFIG = YAML_FRONT + """\
log:
  error: stderr
  outcomes: {fifo}
  fsync_ms: 0
  max_pending_bytes: 65536
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
      - {{name: control, backend: model-a, weight: 50}}
      - {{name: treatment, backend: model-b, weight: 50}}
    metrics:
      - {{name: click, kind: binary, source: outcome, goal: increase, primary: true}}
"""


class PipeReader:
    """The read end of the log's pipe, read only when asked."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.data = bytearray()

    def drain(self):
        while True:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return
            if not chunk:
                return
            self.data += chunk

    def settle(self, quiet=0.5, timeout=10.0):
        """Reads until nothing more has come for `quiet` seconds and the data ends a line."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            self.drain()
            if len(self.data) != last:
                last, since = len(self.data), time.monotonic()
            elif time.monotonic() - since >= quiet and self.data.endswith(b"\n"):
                return
            time.sleep(0.02)
        raise AssertionError("the log never settled (%d bytes read)" % len(self.data))

    def records(self):
        return [json.loads(line) for line in self.data.decode().splitlines() if line]

    def close(self):
        os.close(self.fd)


@pytest.fixture
def stalled(procs, models, yaml_config, tmp_path):
    a, b = models
    fifo = str(tmp_path / "outcomes.pipe")
    os.mkfifo(fifo)
    reader = PipeReader(fifo)
    cfg = yaml_config(CONFIG.format(fifo=fifo, a=a.addr, b=b.addr))
    px = procs.proxy(cfg)
    yield px, reader
    reader.close()


def post_outcome(px, unit):
    body = json.dumps({"exp": "ranker", "metric": "click", "value": 1, "unit": unit})
    return px.admin("POST", "/outcomes", body=body,
                    headers=[("Content-Type", "application/json")])


def dropped(px):
    r = px.admin("GET", "/metrics")
    assert r.status == 200, r
    return metric_value(parse_prometheus(r.body.decode()), "abgate_outcome_log_dropped_total")


def test_a_stalled_log_refuses_outcomes_and_loses_nothing_accepted(stalled):
    px, reader = stalled
    accepted, refused = [], []
    # Nobody reads the pipe: its buffer, then the 64 KiB queue fill up. Each record is about
    # 150 bytes, so a few thousand posts are more than enough.
    for i in range(20000):
        unit = "bp-%d" % i
        r = post_outcome(px, unit)
        if r.status == 200:
            assert r.json() == {"accepted": 1, "deduplicated": [], "rejected": []}, r
            accepted.append(unit)
            continue
        assert r.status == 503, r
        assert b"outcome log is behind" in r.body, r
        refused.append(unit)
        if len(refused) >= 20:
            break
    assert len(refused) >= 20, "the queue never filled: %d accepted" % len(accepted)
    assert len(accepted) > 100

    # The data path keeps answering; once its staging buffer is full too, its records have
    # nowhere to go and are counted.
    assert dropped(px) == 0
    sent = 0
    with HttpConn(px.port) as c:
        while sent < 5000 and (sent % 100 or dropped(px) < 100):
            r = c.request("GET", "/predict", [("X-User-Id", "req-%d" % sent)])
            assert r.status == 200, r
            sent += 1
    lost = dropped(px)
    assert lost >= 100, "no request record dropped after %d requests" % sent

    # The pipe is read again: the writer catches up and outcomes are accepted again.
    def caught_up():
        reader.drain()
        r = post_outcome(px, "after-%d" % len(accepted))
        if r.status == 200:
            accepted.append("after-%d" % len(accepted))
            return True
        return False
    wait_until(caught_up, timeout=10, interval=0.05, what="the log to catch up")
    reader.settle()

    recs = reader.records()
    units = [r["unit"] for r in recs if r["type"] == "outcome"]
    assert sorted(units) == sorted(accepted), (
        "accepted but missing: %r; logged but refused: %r"
        % (sorted(set(accepted) - set(units))[:5], sorted(set(units) - set(accepted))[:5]))
    assert not set(refused) & set(units)
    # every request is either in the log or counted as dropped
    logged = sum(1 for r in recs if r["type"] == "request")
    assert dropped(px) == lost
    assert logged + lost == sent, (logged, lost, sent)
    assert px.proc.alive()
