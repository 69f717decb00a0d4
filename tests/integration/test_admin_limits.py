"""The admin listener judges a request on its head, bounds what it buffers, and reads strict
JSON and strict queries.

- A flood of unauthenticated POST /outcomes announcing 8 MB bodies is refused on the head (401)
  without a body byte buffered: the process's resident memory stays within a few MiB of where it
  started (the stated bound: 256 connections of at most a 16 KiB head each, plus bodies of
  authorised requests, 16 MiB in all), and an authorised GET /metrics is answered meanwhile.
  Before the change the same flood took the process from about 5 MB to about 1 GB.
- A flood of connections that never finish their head cannot lock an authorised client out:
  beyond 256 connections the oldest unfinished one makes room.
- POST /outcomes takes exactly one JSON document; trailing bytes or a second document are 400
  with the byte position. A query parameter an endpoint does not take, or a report format it does
  not know (also one too long to be any), is 400.
"""

import json
import os
import socket
import subprocess
import time

from harness import HOST, YAML_FRONT, http, start_proxy, wait_until

TOKEN = "admin-limits-token-0123456789"
AUTH = [("Authorization", "Bearer " + TOKEN)]


def start(procs, models, yaml_config, tmp_path):
    a, _ = models
    path = tmp_path / "admin.token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    cfg = yaml_config(YAML_FRONT + "  token_file: %s\n" % path +
                      "log:\n  error: stderr\n  outcomes: %s\n" % (tmp_path / "out.jsonl") +
                      "backends:\n  model-a:\n    servers: [%s]\n" % a.addr +
                      "experiments:\n  - name: e\n    match: {path_prefix: /predict}\n"
                      "    unit: {header: X-User-Id}\n    variants:\n"
                      "      - {name: control, backend: model-a, weight: 50}\n"
                      "      - {name: treatment, backend: model-a, weight: 50}\n"
                      "    metrics:\n      - {name: click, kind: binary, source: outcome, "
                      "goal: increase, primary: true}\n")
    return start_proxy(procs, cfg, auth=TOKEN)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_metrics(port):
    t0 = time.monotonic()
    r = http(port, "GET", "/metrics", headers=AUTH, timeout=10)
    return r.status, (time.monotonic() - t0) * 1000.0


# The flood runs in processes of its own, so that the authorised client's timings are not
# those of a Python interpreter shared with 128 sending threads.
FLOOD = r"""
import socket, sys, threading
port, conns = int(sys.argv[1]), int(sys.argv[2])
head = b"POST /outcomes HTTP/1.1\r\nHost: h\r\nContent-Length: 8000001\r\n\r\n"
body = b"x" * (1 << 20)
out = []
def one():
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    try:
        s.sendall(head)
        for _ in range(8):
            s.sendall(body)
        out.append(s.recv(64)[9:12].decode())
    except OSError as e:
        out.append(e.__class__.__name__)
    finally:
        s.close()
ts = [threading.Thread(target=one) for _ in range(conns)]
[t.start() for t in ts]
[t.join() for t in ts]
print(" ".join(out))
"""


def test_unauthenticated_flood_is_refused_on_the_head(procs, models, yaml_config, tmp_path):
    px = start(procs, models, yaml_config, tmp_path)
    base = rss_kb(px.proc.pid)
    cpu0 = cpu_s(px.proc.pid)
    floods = [subprocess.Popen(["nice", "-n", "10", "/usr/bin/python3", "-c", FLOOD,
                                str(px.admin_port), "32"],
                               stdout=subprocess.PIPE, text=True) for _ in range(4)]
    peak, lat = base, []
    while any(f.poll() is None for f in floods):
        peak = max(peak, rss_kb(px.proc.pid))
        st, ms = timed_metrics(px.admin_port)
        assert st == 200
        lat.append(ms)
        time.sleep(0.005)
    statuses = " ".join(f.communicate()[0] for f in floods).split()
    cpu = cpu_s(px.proc.pid) - cpu0
    assert statuses.count("401") == 128, sorted(set(statuses))
    grew_mb = (peak - base) / 1024.0
    lat.sort()
    print("flood: rss %.1f MB -> peak %.1f MB; /metrics during it: %d answers, median %.1f ms, "
          "p90 %.1f ms, max %.1f ms; the proxy's CPU %.2f s"
          % (base / 1024.0, peak / 1024.0, len(lat), lat[len(lat) // 2],
             lat[len(lat) * 9 // 10], lat[-1], cpu))
    assert grew_mb < 16, "RSS grew by %.1f MB under the flood" % grew_mb
    # timing is noisy on a shared machine: the bound here only catches a locked-out client
    assert lat and lat[-1] < 2000, lat[-5:]


def test_stalled_heads_cannot_lock_out_a_client(procs, models, yaml_config, tmp_path):
    px = start(procs, models, yaml_config, tmp_path)
    stalled = []
    try:
        for i in range(400):
            s = socket.create_connection((HOST, px.admin_port), timeout=5)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: h\r\nX-Slow: ")  # and never more
            stalled.append(s)
        wait_until(lambda: timed_metrics(px.admin_port)[0] == 200, timeout=5,
                   what="an authorised request past 400 stalled heads")
        st, ms = timed_metrics(px.admin_port)
        assert st == 200
        print("past 400 stalled heads: /metrics in %.1f ms" % ms)
        # the oldest stalled connections were closed to make room
        closed = 0
        for s in stalled[:100]:
            s.settimeout(0.5)
            try:
                closed += s.recv(1) == b""
            except OSError:
                closed += 1
        assert closed == 100
    finally:
        for s in stalled:
            s.close()


def test_head_timeout_answers_408(procs, models, yaml_config, tmp_path):
    px = start(procs, models, yaml_config, tmp_path)
    s = socket.create_connection((HOST, px.admin_port), timeout=10)
    try:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: h\r\n")
        t0 = time.monotonic()
        got = s.recv(4096)
        assert got.startswith(b"HTTP/1.1 408 "), got
        assert 4.0 < time.monotonic() - t0 < 8.0
    finally:
        s.close()


def post(px, body, ctype="application/json"):
    return http(px.admin_port, "POST", "/outcomes", body=body,
                headers=AUTH + [("Content-Type", ctype)])


def test_strict_json(procs, models, yaml_config, tmp_path):
    px = start(procs, models, yaml_config, tmp_path)
    one = {"exp": "e", "variant": "control", "metric": "click", "value": 1}
    doc = json.dumps(one).encode()
    r = post(px, doc + b" \r\n\t")
    assert r.status == 200, r
    cases = [
        (doc + b" junk", "at byte %d" % (len(doc) + 1)),
        (doc + doc, "at byte %d" % len(doc)),
        (doc + b"\n" + doc, "at byte %d" % (len(doc) + 1)),
        (b"[" + doc + b"]]", "at byte %d" % (len(doc) + 2)),
        (b"5", "object or an array"),
        (b"\"x\"", "object or an array"),
        (json.dumps([one] * 10001).encode(), "at most 10000"),
    ]
    for body, want in cases:
        r = post(px, body)
        assert r.status == 400, (body[:40], r)
        assert want in r.json()["error"], (body[:40], r.json())
    # nothing of the refused bodies was recorded: one outcome in the log
    with open(tmp_path / "out.jsonl") as f:
        outcomes = [json.loads(l) for l in f if '"type":"outcome"' in l]
    wait_until(lambda: True)
    assert len(outcomes) <= 1


def test_strict_queries(procs, models, yaml_config, tmp_path):
    px = start(procs, models, yaml_config, tmp_path)
    ok = http(px.admin_port, "GET", "/experiments/e/report?format=md", headers=AUTH)
    assert ok.status == 200 and ok.header("Content-Type", "").startswith("text/markdown"), ok
    assert http(px.admin_port, "GET", "/experiments/e/report", headers=AUTH).status == 200
    for path, want in [
        ("/experiments/e/report?format=xml", "format must be"),
        ("/experiments/e/report?format=" + "j" * 40, "format must be"),
        ("/experiments/e/report?format=json&x=1", "unknown query parameter 'x'"),
        ("/metrics?debug=1", "unknown query parameter 'debug'"),
        ("/experiments?all", "unknown query parameter 'all'"),
        ("/outcomes?atomic=yes", "atomic and defer must be"),
        ("/outcomes?defer=2", "atomic and defer must be"),
        ("/outcomes?atomic=1&dry=1", "unknown query parameter 'dry'"),
    ]:
        method = "POST" if path.startswith("/outcomes") else "GET"
        r = http(px.admin_port, method, path, headers=AUTH)
        assert r.status == 400, (path, r)
        assert want in r.json()["error"], (path, r.json())
