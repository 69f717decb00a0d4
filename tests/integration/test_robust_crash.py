"""A crash (SIGKILL under load) leaves an outcome log that is still usable: every complete line
is a whole JSON record, a torn last line is at most the start of one, and `abgate report`
skips and counts it. A torn line is appended on purpose when the kill happened to leave the
log clean, so the skip path is exercised either way."""

import json
import re
import shutil
import signal
import subprocess
import time

from conftest import ab_experiment
from harness import ABGATE_BIN, HttpConn

WRK_LUA = """
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/predict", {["X-User-Id"] = "crash-" .. (n % 5000)})
end
"""


def load_then_kill(proxy, tmp_path, seconds=2.0):
    """Drives wrk at the proxy for `seconds`, then SIGKILLs the proxy while wrk still runs."""
    assert shutil.which("wrk"), "wrk is needed (scripts/deps.sh test installs it)"
    script = tmp_path / "vary.lua"
    script.write_text(WRK_LUA)
    out = open(tmp_path / "wrk.out", "wb")
    wrk = subprocess.Popen(["wrk", "-t2", "-c32", "-d%ds" % (seconds + 3), "--timeout", "2s",
                            "-s", str(script), "http://127.0.0.1:%d/predict" % proxy.port],
                           stdout=out, stderr=subprocess.STDOUT)
    try:
        time.sleep(seconds)
        assert proxy.proc.alive(), proxy.log()
        proxy.proc.p.send_signal(signal.SIGKILL)
        assert proxy.proc.p.wait(5) == -signal.SIGKILL
    finally:
        time.sleep(0.2)
        wrk.kill()
        wrk.wait()
        out.close()


def split_log(path):
    """(complete lines, the bytes after the last newline)."""
    data = open(path, "rb").read()
    *lines, tail = data.split(b"\n")
    return lines, tail


def report(*args):
    return subprocess.run([ABGATE_BIN, "report"] + list(args), capture_output=True, timeout=60)


def test_sigkill_under_load_leaves_a_readable_log(procs, models, make_config, tmp_path):
    a, b = models
    exp = ab_experiment(50, 50)
    cfg = make_config({"model-a": a.addr, "model-b": b.addr}, [exp], workers=2)
    proxy = procs.proxy(cfg)
    log = cfg.outcomes
    load_then_kill(proxy, tmp_path)

    lines, tail = split_log(log)
    requests = 0
    for i, line in enumerate(lines):
        rec = json.loads(line)  # every complete line is a whole record
        assert rec["v"] == 1 and rec["type"] in ("config", "request"), rec
        if rec["type"] == "request":
            requests += 1
            assert rec["exp"] == "ranker" and rec["variant"] in ("control", "treatment"), rec
    assert json.loads(lines[0])["type"] == "config"
    assert requests > 200, "too little load before the kill (%d requests logged)" % requests
    if tail:
        # torn by the kill: the start of a record, not a whole one
        assert tail.startswith(b"{"), tail
        try:
            json.loads(tail)
            whole = True
        except ValueError:
            whole = False
        assert not whole, "a whole record without its newline: %r" % tail
    else:
        # the kill fell between two writes: tear a line ourselves
        with open(log, "ab") as f:
            f.write(lines[-1][:len(lines[-1]) // 2])

    r = report("--format", "json", log)
    assert r.returncode == 0, r.stderr.decode()
    rep = json.loads(r.stdout)
    assert rep["records"]["skipped"] == 1, rep["records"]
    assert rep["records"]["request"] == requests, rep["records"]

    r = report(log)
    assert r.returncode == 0, r.stderr.decode()
    text = r.stdout.decode()
    assert re.search(r"\bskipped 1 malformed or torn line\b", text), text


def test_restart_after_a_crash_appends_readable_records(procs, models, make_config, tmp_path):
    """After a kill that tore the last line, a restarted proxy appending to the same log must
    not glue its first record onto the torn fragment: every record it writes is readable."""
    a, b = models
    exp = ab_experiment(50, 50)
    cfg = make_config({"model-a": a.addr, "model-b": b.addr}, [exp])
    proxy = procs.proxy(cfg)
    log = cfg.outcomes
    load_then_kill(proxy, tmp_path)
    lines, tail = split_log(log)
    if not tail:
        with open(log, "ab") as f:
            f.write(lines[-1][:len(lines[-1]) // 2])
    before = len(lines)

    proxy = procs.proxy(cfg, name="proxy-restarted")
    rids = ["after-crash-%03d" % i for i in range(20)]
    with HttpConn(proxy.port) as c:
        for rid in rids:
            r = c.request("GET", "/predict", [("X-User-Id", rid), ("X-Request-Id", rid)])
            assert r.status == 200, r
    assert proxy.stop() == 0

    lines, tail = split_log(log)
    assert tail == b"", "the restarted proxy left a partial line: %r" % tail
    bad = []
    after = []
    for line in lines[before:]:
        try:
            after.append(json.loads(line))
        except ValueError:
            bad.append(line)
    # the torn fragment is the only unreadable line; the restart's config record and all 20
    # requests are whole lines of their own
    assert len(bad) == 1 and not bad[0].endswith(b"}"), bad
    assert [x["type"] for x in after[:1]] == ["config"], after[:1]
    assert sorted(x["rid"] for x in after if x["type"] == "request") == rids
    rep = json.loads(report("--format", "json", log).stdout)
    assert rep["records"]["skipped"] == 1, rep["records"]
