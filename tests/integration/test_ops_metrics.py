"""GET /metrics on the admin listener after known traffic: exact request counters, a consistent
duration histogram, reload counters, upstream errors and backend health; the output passes
`promtool check metrics`, and a real Prometheus server scrapes it."""

import json
import os
import subprocess
import time
import urllib.parse
import urllib.request

from harness import (Experiment, HttpConn, Proc, free_port, metric_series, metric_value,
                     parse_prometheus, wait_until)

PROMTOOL = "/usr/bin/promtool"
PROMETHEUS = "/usr/bin/prometheus"

# requests sent per variant, all answered 200 except the broken variant's: 502 for the first
# three (each a failed connect), then 503 at once (every server of its backend is down)
N_CONTROL, N_TREATMENT, N_OTHER = 30, 20, 4


def users_of(exp, variant, n, prefix):
    out, i = [], 0
    while len(out) < n:
        u = "%s-%d" % (prefix, i)
        if exp.expect(u) == variant:
            out.append(u)
        i += 1
    return out


def start(procs, models, make_config):
    """A proxy with three variants: two live backends and one on a port nobody listens on."""
    a, b = models
    dead = "127.0.0.1:%d" % free_port()
    exp = Experiment("ranker", [("control", "model-a", 40), ("treatment", "model-b", 40),
                                ("broken", "model-dead", 20)])
    cfg = make_config({"model-a": a.addr, "model-b": b.addr, "model-dead": dead}, [exp],
                      default_backend="model-a")
    return procs.proxy(cfg), exp, dead


def io_uring_expected(proxy):
    """Workers batching through io_uring, as the error log's start line says: 1 unless the
    configuration turned it off (the call-by-call test pass) or the kernel refused it."""
    log = proxy.log()
    if "one io_uring call per pass" in log:
        assert os.environ.get("ABGATE_TEST_IO_URING") != "false", log
        return 1
    assert "socket reads and writes: one system call each (" in log, log
    if os.environ.get("ABGATE_TEST_IO_URING") == "false":
        assert "one system call each (io_uring: false)" in log, log
    return 0


def scrape(proxy):
    r = proxy.admin("GET", "/metrics")
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("text/plain"), r
    return r.body.decode()


def scrape_until(proxy, pred, timeout=3.0):
    """Metrics are published by the workers every 50 ms: polls until pred(samples) holds and
    returns (text, samples); on timeout returns the last scrape for the assertions to show."""
    deadline = time.monotonic() + timeout
    time.sleep(0.2)
    while True:
        text = scrape(proxy)
        samples = parse_prometheus(text)
        if pred(samples) or time.monotonic() > deadline:
            return text, samples
        time.sleep(0.05)


def send(proxy, users, path="/predict"):
    statuses = []
    with HttpConn(proxy.port) as c:
        for u in users:
            statuses.append(c.request("GET", path, [("X-User-Id", u)]).status)
    return statuses


def up_of(samples, backend, server):
    return metric_value(samples, "abgate_backend_up", backend=backend, server=server)


def test_metrics_after_known_traffic(procs, models, make_config):
    a, b = models
    proxy, exp, dead = start(procs, models, make_config)

    _, s0 = scrape_until(proxy, lambda s: True, timeout=0)
    # every configured server is up before any failure
    assert up_of(s0, "model-a", a.addr) == 1
    assert up_of(s0, "model-b", b.addr) == 1
    assert up_of(s0, "model-dead", dead) == 1

    assert send(proxy, users_of(exp, "control", N_CONTROL, "mc")) == [200] * N_CONTROL
    assert send(proxy, users_of(exp, "treatment", N_TREATMENT, "mt")) == [200] * N_TREATMENT
    assert send(proxy, ["other-%d" % i for i in range(N_OTHER)], "/other") == [200] * N_OTHER
    # three consecutive failures mark the dead server down; the request right after them is
    # refused without a connection attempt (the first retry waits a back-off of a second)
    broken = users_of(exp, "broken", 4, "mb")
    assert send(proxy, broken) == [502, 502, 502, 503]
    _, s3 = scrape_until(proxy, lambda s: up_of(s, "model-dead", dead) == 0)
    assert up_of(s3, "model-dead", dead) == 0, "dead server still up after 3 failures"
    assert up_of(s3, "model-a", a.addr) == 1
    assert up_of(s3, "model-b", b.addr) == 1

    # one good reload (the same file) and one bad one (weights that do not add up)
    r = proxy.reload_admin()
    assert r.status == 200 and r.json() == {"result": "ok", "generation": 2}, r
    good = proxy.config.text()
    proxy.config.write(good.replace("weight: 20}", "weight: 25}"))
    r = proxy.reload_admin()
    assert r.status == 422, r
    proxy.config.write(good)

    want_requests = {
        ("ranker", "control", "200"): N_CONTROL,
        ("ranker", "treatment", "200"): N_TREATMENT,
        ("ranker", "broken", "502"): 3,
        ("ranker", "broken", "503"): 1,
        ("", "", "200"): N_OTHER,
    }

    def requests_of(samples):
        return {(l["experiment"], l["variant"], l["code"]): v
                for l, v in metric_series(samples, "abgate_requests_total")}

    text, s = scrape_until(proxy, lambda s: requests_of(s) == want_requests)
    assert requests_of(s) == want_requests, text

    # the histogram of each (experiment, variant): cumulative buckets, +Inf == count == the
    # requests counted for the pair, a plausible sum
    per_pair = {}
    for (e, v, _), n in want_requests.items():
        per_pair[(e, v)] = per_pair.get((e, v), 0) + n
    for (e, v), n in per_pair.items():
        buckets = [(l["le"], val) for l, val in
                   metric_series(s, "abgate_request_duration_seconds_bucket")
                   if l["experiment"] == e and l["variant"] == v]
        assert buckets, "no histogram for %r" % ((e, v),)
        assert all(set(l) == {"experiment", "variant", "le"} for l, _ in
                   metric_series(s, "abgate_request_duration_seconds_bucket"))
        finite = sorted((float(le), val) for le, val in buckets if le != "+Inf")
        inf = [val for le, val in buckets if le == "+Inf"]
        assert len(inf) == 1, buckets
        counts = [val for _, val in finite] + inf
        assert counts == sorted(counts), "buckets not cumulative: %r" % buckets
        count = metric_value(s, "abgate_request_duration_seconds_count", experiment=e, variant=v)
        total = metric_value(s, "abgate_request_duration_seconds_sum", experiment=e, variant=v)
        assert inf[0] == count == n, (e, v, inf, count, n)
        assert 0 < total < 5.0 * n, (e, v, total)

    assert metric_value(s, "abgate_config_reloads_total", result="success") == 1, text
    assert metric_value(s, "abgate_config_reloads_total", result="failure") == 1, text
    assert metric_value(s, "abgate_config_generation") == 2, text

    errors = {l["reason"]: v for l, v in metric_series(s, "abgate_upstream_errors_total")
              if l["backend"] == "model-dead" and l["server"] == dead}
    assert sum(errors.values()) > 0, text
    assert errors.get("connect", 0) > 0, errors
    for name, addr in (("model-a", a.addr), ("model-b", b.addr)):
        live = [v for l, v in metric_series(s, "abgate_upstream_errors_total")
                if l["backend"] == name and l["server"] == addr]
        assert live and sum(live) == 0, (name, live)

    assert up_of(s, "model-dead", dead) == 0
    assert up_of(s, "model-a", a.addr) == 1
    assert up_of(s, "model-b", b.addr) == 1
    assert metric_value(s, "abgate_outcome_log_dropped_total") == 0
    assert metric_value(s, "abgate_workers") == 1
    assert metric_value(s, "abgate_io_uring_workers") == io_uring_expected(proxy), text
    assert metric_value(s, "abgate_connections", state="active") is not None
    assert metric_value(s, "abgate_connections", state="idle") is not None


def test_promtool_check_metrics_passes(procs, models, make_config, tmp_path):
    proxy, exp, dead = start(procs, models, make_config)
    send(proxy, users_of(exp, "control", 5, "pc") + users_of(exp, "treatment", 5, "pt") +
         users_of(exp, "broken", 4, "pb"))
    send(proxy, ["x"], "/other")
    proxy.reload_admin()
    text, _ = scrape_until(proxy, lambda s: sum(
        v for l, v in metric_series(s, "abgate_requests_total") if l["variant"] == "broken") == 4)
    (tmp_path / "metrics.txt").write_text(text)
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    assert r.returncode == 0, "promtool check metrics failed (%d):\n%s\n--- metrics:\n%s" % (
        r.returncode, r.stdout.decode(), text)


def prom_query(port, query):
    url = "http://127.0.0.1:%d/api/v1/query?%s" % (port, urllib.parse.urlencode({"query": query}))
    with urllib.request.urlopen(url, timeout=2) as f:
        return json.loads(f.read().decode())


def test_prometheus_scrapes_the_admin_metrics(procs, models, make_config, tmp_path):
    proxy, exp, _ = start(procs, models, make_config)
    assert send(proxy, users_of(exp, "control", 7, "sc")) == [200] * 7
    assert send(proxy, users_of(exp, "treatment", 3, "st")) == [200] * 3
    scrape_until(proxy, lambda s: metric_value(
        s, "abgate_requests_total", experiment="ranker", variant="treatment", code="200") == 3)

    port = free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                   "scrape_configs:\n  - job_name: abgate\n    scrape_interval: 1s\n"
                   "    scrape_timeout: 1s\n    static_configs:\n"
                   "      - targets: ['127.0.0.1:%d']\n" % proxy.admin_port)
    data = tmp_path / "prom-data"
    data.mkdir()
    prom = Proc("prometheus", [PROMETHEUS, "--config.file=%s" % cfg,
                               "--storage.tsdb.path=%s" % data,
                               "--web.listen-address=127.0.0.1:%d" % port],
                str(tmp_path / "prometheus.log"), cwd=str(tmp_path))
    procs.procs.append(prom)

    def scraped():
        if not prom.alive():
            raise AssertionError("prometheus exited:\n%s" % prom.log())
        try:
            doc = prom_query(port, "abgate_requests_total")
        except OSError:
            return None
        if doc.get("status") != "success":
            return None
        got = {r["metric"].get("variant"): r for r in doc["data"]["result"]}
        return got if {"control", "treatment"} <= set(got) else None

    got = wait_until(scraped, timeout=30, interval=0.25, what="prometheus to scrape abgate")
    for variant, n in (("control", 7), ("treatment", 3)):
        m = got[variant]["metric"]
        assert m["__name__"] == "abgate_requests_total"
        assert m["experiment"] == "ranker" and m["code"] == "200", m
        assert m["job"] == "abgate" and m["instance"] == "127.0.0.1:%d" % proxy.admin_port, m
        assert float(got[variant]["value"][1]) == n, got[variant]
    up = prom_query(port, 'up{job="abgate"}')["data"]["result"]
    assert [float(r["value"][1]) for r in up] == [1.0], up
    assert prom.stop(timeout=10) == 0 or not prom.alive()


def test_io_uring_off_makes_one_call_each_and_says_so(procs, models, make_config):
    """io_uring: false: the worker makes a system call per read and write, the start line
    says why, the gauge reads 0, and requests are served the same."""
    a, b = models
    exp = Experiment("ranker", [("control", "model-a", 50), ("treatment", "model-b", 50)])
    cfg = make_config({"model-a": a.addr, "model-b": b.addr}, [exp], extra="io_uring: false\n")
    proxy = procs.proxy(cfg)
    users = users_of(exp, "control", 3, "u") + users_of(exp, "treatment", 3, "v")
    send(proxy, users)
    text, s = scrape_until(proxy, lambda s: sum(
        v for l, v in metric_series(s, "abgate_requests_total")) == len(users))
    assert metric_value(s, "abgate_io_uring_workers") == 0, text
    assert "socket reads and writes: one system call each (io_uring: false)" in proxy.log()
    for v in ("control", "treatment"):
        assert metric_value(s, "abgate_requests_total", experiment="ranker", variant=v,
                            code="200") == 3, text
