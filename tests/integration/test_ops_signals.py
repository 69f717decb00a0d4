"""Signals: SIGUSR1 reopens the outcome and access logs after a move (nothing lost, later
records in the new files); SIGTERM drains (requests in flight finish, /readyz says 503, exit 0
within drain_timeout_ms), also under wrk load; a second signal or the drain timeout stops it."""

import json
import os
import re
import signal
import subprocess
import threading
import time

from harness import (Experiment, HttpConn, YamlConfig, build_request, http, port_open,
                     wait_until)

WRK = "/usr/bin/wrk"


def with_access_log(cfg, access_path, extra=""):
    """The Config's text with log.access added (and extra top-level keys)."""
    text = cfg.text()
    line = "  outcomes: %s\n" % cfg.outcomes
    assert line in text
    text = text.replace(line, line + "  access: %s\n" % access_path) + extra
    return YamlConfig(cfg.path, text, port=cfg.port, admin_port=cfg.admin_port,
                      outcomes=cfg.outcomes)


def read_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.endswith("\n")]


def request_rids(path):
    return [r["rid"] for r in read_jsonl(path) if r.get("type") == "request"]


def access_rids(path):
    return [r["rid"] for r in read_jsonl(path)]


def one_experiment(backend_a="model-a", backend_b="model-b"):
    return Experiment("ranker", [("control", backend_a, 50), ("treatment", backend_b, 50)])


def send_rids(port, rids):
    with HttpConn(port) as c:
        for i, rid in enumerate(rids):
            r = c.request("GET", "/predict", [("X-User-Id", "rot-%d" % i), ("X-Request-Id", rid)])
            assert r.status == 200, r


def test_sigusr1_reopens_moved_logs_without_losing_records(procs, models, make_config,
                                                           tmp_path):
    a, b = models
    base = make_config({"model-a": a.addr, "model-b": b.addr}, [one_experiment()])
    access = str(tmp_path / "access.jsonl")
    proxy = procs.proxy(with_access_log(base, access))
    outcomes = base.outcomes

    # 1. before the move: everything lands in the first files
    pre = ["pre-%03d" % i for i in range(50)]
    send_rids(proxy.port, pre)
    wait_until(lambda: len(request_rids(outcomes)) == 50 and len(access_rids(access)) == 50,
               timeout=5, what="the first records on disk")
    os.rename(outcomes, outcomes + ".1")
    os.rename(access, access + ".1")
    n_reopened = proxy.log().count("log files reopened")
    proxy.proc.signal(signal.SIGUSR1)
    wait_until(lambda: proxy.log().count("log files reopened") > n_reopened, timeout=5,
               what="the reopen log line")

    # 2. after the signal: new records go to the new files only
    post = ["post-%03d" % i for i in range(40)]
    send_rids(proxy.port, post)
    wait_until(lambda: len(request_rids(outcomes)) >= 40 and len(access_rids(access)) >= 40,
               timeout=5, what="the records in the new files")
    time.sleep(0.3)
    assert request_rids(outcomes + ".1") == pre
    assert access_rids(access + ".1") == pre
    assert request_rids(outcomes) == post
    assert access_rids(access) == post

    # 3. a move and a signal while requests keep coming: every record is in exactly one file
    sent = []
    stop = threading.Event()
    errors = []

    def traffic():
        try:
            with HttpConn(proxy.port) as c:
                i = 0
                while not stop.is_set():
                    rid = "live-%05d" % i
                    r = c.request("GET", "/predict", [("X-User-Id", "live-%d" % i),
                                                      ("X-Request-Id", rid)])
                    assert r.status == 200, r
                    sent.append(rid)
                    i += 1
        except Exception as e:  # reported below
            errors.append(e)

    t = threading.Thread(target=traffic)
    t.start()
    time.sleep(0.3)
    os.rename(outcomes, outcomes + ".2")
    os.rename(access, access + ".2")
    proxy.proc.signal(signal.SIGUSR1)
    time.sleep(0.3)
    stop.set()
    t.join(10)
    assert not errors, errors
    assert len(sent) > 20, "too little traffic to mean anything: %d" % len(sent)

    want = set(post) | set(sent)

    def complete(files, reader):
        got = [rid for f in files for rid in reader(f)]
        return got if set(got) >= want else None

    time.sleep(0.3)
    got = wait_until(lambda: complete([outcomes, outcomes + ".2"], request_rids), timeout=5,
                     what="every request record")
    assert sorted(got) == sorted(want), "lost or duplicated request records"
    got = wait_until(lambda: complete([access, access + ".2"], access_rids), timeout=5,
                     what="every access record")
    assert sorted(got) == sorted(want), "lost or duplicated access records"
    # records are written in order: the rotated file holds a prefix, the new one the rest
    old, new = request_rids(outcomes + ".2"), request_rids(outcomes)
    assert old + new == post + sent
    assert new, "no record went to the new outcome log"


def parse_wrk(out):
    m = re.search(r"^\s*(\d+) requests in ", out, re.M)
    assert m, out
    errs = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    se = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if se:
        errs = dict(zip(("connect", "read", "write", "timeout"), map(int, se.groups())))
    return int(m.group(1)), errs


def test_sigterm_under_wrk_load_drains_and_exits_0(procs, models, make_config, tmp_path):
    """What is asserted about wrk: every response it read was a complete 2xx (no "Non-2xx or
    3xx responses" line; a truncated or malformed response would count as a read error) and
    no request timed out. Connection errors after the listener closes are expected: wrk
    connects without blocking, so a refused reconnect shows up as a write error (or a connect
    error), and any number of those is allowed. Read errors are allowed only once per
    connection (at most 32): a keep-alive connection the proxy closes while draining. The
    outcome log, flushed at exit, must hold only 200s and at least as many records as wrk
    counted responses. wrk is interrupted (it then prints its summary) once the proxy exited."""
    a, b = models
    drain_ms = 3000
    cfg = make_config({"model-a": a.addr, "model-b": b.addr}, [one_experiment()],
                      extra="drain_timeout_ms: %d\n" % drain_ms)
    proxy = procs.proxy(cfg)
    wrk = subprocess.Popen([WRK, "-t1", "-c32", "-d5s", "-H", "X-User-Id: wrk-user",
                            "http://127.0.0.1:%d/predict" % proxy.port],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(1.5)
        assert proxy.proc.alive()
        proxy.proc.signal(signal.SIGTERM)
        t0 = time.monotonic()
        rc = proxy.proc.p.wait(timeout=drain_ms / 1000.0 + 5)
        took = time.monotonic() - t0
        wrk.send_signal(signal.SIGINT)
        out = wrk.communicate(timeout=20)[0].decode()
    finally:
        if wrk.poll() is None:
            wrk.kill()
            wrk.wait()
    assert rc == 0, proxy.log()
    assert took < drain_ms / 1000.0, "exit took %.2fs, drain_timeout_ms is %d" % (took, drain_ms)
    assert "drain timeout" not in proxy.log()
    assert wrk.returncode == 0, out
    assert "Non-2xx" not in out, out
    n, errs = parse_wrk(out)
    assert n > 100, out
    assert errs["timeout"] == 0, out
    assert errs["read"] <= 32, out
    statuses = [r["status"] for r in read_jsonl(cfg.outcomes) if r.get("type") == "request"]
    assert set(statuses) == {200}, set(statuses)
    assert len(statuses) >= n, (len(statuses), n)


def slow_proxy(procs, make_config, latency_ms, extra=""):
    slow = procs.backend("slow", latency_ms=latency_ms)
    cfg = make_config({"slow": slow.addr}, [one_experiment("slow", "slow")], extra=extra)
    return procs.proxy(cfg)


class InFlight:
    """One request sent on its own connection, its response read in a thread."""

    def __init__(self, port, uid="slow-user"):
        self.conn = HttpConn(port, timeout=15)
        self.resp = None
        self.error = None
        self.done_at = None
        self.conn.send(build_request("GET", "/predict", [("X-User-Id", uid)]))
        self.started = time.monotonic()
        self.t = threading.Thread(target=self._read)
        self.t.start()

    def _read(self):
        try:
            self.resp = self.conn.read_response()
        except Exception as e:  # reported by the test
            self.error = e
        self.done_at = time.monotonic()

    def join(self, timeout=10):
        self.t.join(timeout)
        self.conn.close()
        assert self.error is None, self.error
        return self.resp


def test_sigterm_lets_a_slow_request_finish_then_exits_0(procs, make_config):
    proxy = slow_proxy(procs, make_config, 800)
    req = InFlight(proxy.port)
    time.sleep(0.25)
    proxy.proc.signal(signal.SIGTERM)
    # the listener is closed: new connections are refused while the slow request runs
    wait_until(lambda: not port_open(proxy.port), timeout=0.4, what="the listener to close")
    assert req.done_at is None
    r = req.join()
    assert r.status == 200, r
    assert r.json()["model"] == "slow"
    assert req.done_at - req.started >= 0.75
    rc = proxy.proc.p.wait(timeout=3)
    assert rc == 0, proxy.log()
    rec = [x for x in proxy.outcomes() if x["type"] == "request"]
    assert [x["status"] for x in rec] == [200], rec


def test_readyz_503_while_draining(procs, make_config):
    proxy = slow_proxy(procs, make_config, 800)
    assert proxy.admin("GET", "/readyz").status == 200
    req = InFlight(proxy.port)
    time.sleep(0.2)
    proxy.proc.signal(signal.SIGTERM)

    def draining():
        r = http(proxy.admin_port, "GET", "/readyz", timeout=1)
        return r if r.status == 503 else None

    r = wait_until(draining, timeout=0.4, what="/readyz 503")
    assert req.done_at is None, "the slow request finished before /readyz was asked"
    assert r.body.strip() == b"draining", r
    # the process is alive and healthy while it drains
    assert http(proxy.admin_port, "GET", "/healthz", timeout=1).status == 200
    assert req.join().status == 200
    assert proxy.proc.p.wait(timeout=3) == 0, proxy.log()


def test_second_sigterm_stops_at_once(procs, make_config):
    proxy = slow_proxy(procs, make_config, 5000)
    req = InFlight(proxy.port)
    time.sleep(0.2)
    proxy.proc.signal(signal.SIGTERM)
    time.sleep(0.2)
    assert proxy.proc.alive()
    proxy.proc.signal(signal.SIGTERM)
    t0 = time.monotonic()
    rc = proxy.proc.p.wait(timeout=3)
    assert time.monotonic() - t0 < 1.0
    assert rc == 0, proxy.log()
    req.t.join(5)
    req.conn.close()
    assert req.resp is None, "the slow request cannot have been answered"


def test_drain_timeout_bounds_the_wait(procs, make_config):
    proxy = slow_proxy(procs, make_config, 5000, extra="drain_timeout_ms: 500\n")
    req = InFlight(proxy.port)
    time.sleep(0.2)
    proxy.proc.signal(signal.SIGTERM)
    t0 = time.monotonic()
    rc = proxy.proc.p.wait(timeout=4)
    took = time.monotonic() - t0
    assert rc == 0, proxy.log()
    assert 0.4 <= took < 1.5, took
    assert "drain timeout" in proxy.log()
    req.t.join(5)
    req.conn.close()


def test_requests_arriving_with_sigterm_on_idle_connections_are_answered(procs, models,
                                                                         make_config):
    """Idle keep-alive connections whose next request arrives together with SIGTERM (the proxy
    is stopped meanwhile, so both can land in one pass of its loop): every request that reached
    the proxy is answered, the connections then close, and the proxy exits 0."""
    a, b = models
    for rnd in range(3):
        cfg = make_config({"model-a": a.addr, "model-b": b.addr}, [one_experiment()],
                          name="abgate-%d.yaml" % rnd)
        proxy = procs.proxy(cfg)
        conns = [HttpConn(proxy.port) for _ in range(40)]
        try:
            for i, c in enumerate(conns):  # one exchange each: kept alive, then idle
                assert c.request("GET", "/predict", [("X-User-Id", "u-%d" % i)]).status == 200
            proxy.proc.signal(signal.SIGSTOP)
            try:
                for i, c in enumerate(conns):
                    c.send(build_request("GET", "/predict", [("X-User-Id", "v-%d" % i)]))
                time.sleep(0.1)
                proxy.proc.signal(signal.SIGTERM)
                time.sleep(0.05)
            finally:
                proxy.proc.signal(signal.SIGCONT)
            for c in conns:
                r = c.read_response()
                assert r.status == 200, r
                # answered before the drain began (kept alive), or during it (close): either
                # way the connection then closes
                assert c.is_closed(), r
        finally:
            for c in conns:
                c.close()
        assert proxy.proc.p.wait(timeout=5) == 0, proxy.log()
