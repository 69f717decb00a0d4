"""The demo (runs, recommends, leaves no process behind, and writes conf/demo.yaml's text), the
example configurations, two instances assigning identically with merged reports, --help of
every command, and make install."""

import glob
import json
import os
import re
import subprocess
import time

import pytest

from harness import (ABGATE_BIN, REPO, Experiment, abgate_pids, parallel_pipelined,
                     user_request)

DEMO_LINE = re.compile(r"^abgate demo: proxy on 127\.0\.0\.1:(\d+) \(admin (\d+)\), "
                       r"model-v1 on (\d+), model-v2 on (\d+)$")


def proc_stat(pid):
    """(ppid, start time) of a process, or None when it is gone or a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if fields[0] == "Z":
        return None
    return int(fields[1]), int(fields[19])


def children_of(pid):
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st is not None and st[0] == pid:
                out[int(d)] = st[1]
    return out


def demo_leftovers(before, children, tmp_path):
    """Processes of this demo still running: the children seen while it ran (same pid and
    start time), and abgate processes started since `before` whose working directory or
    command line is in tmp_path (the demo's children inherit its working directory). Other
    abgate processes on the machine are not looked at."""
    out = {}
    for pid, start in children.items():
        st = proc_stat(pid)
        if st is not None and st[1] == start:
            out[pid] = "child of the demo"
    for pid, (cmd, cwd) in abgate_pids().items():
        if pid in before:
            continue
        if cwd == str(tmp_path) or cwd.startswith(str(tmp_path) + "/") or str(tmp_path) in cmd:
            out[pid] = (cmd, cwd)
    return out


def run_demo(tmp_path, duration):
    before = abgate_pids()
    demo = subprocess.Popen([ABGATE_BIN, "demo", "--duration", str(duration)],
                            cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    children = {}
    deadline = time.monotonic() + 60
    try:
        # watch the demo's children while it runs, to check afterwards that they are gone
        while demo.poll() is None and time.monotonic() < deadline:
            children.update(children_of(demo.pid))
            time.sleep(0.1)
        out, err = demo.communicate(timeout=max(1, deadline - time.monotonic()))
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    out, err = out.decode(), err.decode()
    left = demo_leftovers(before, children, tmp_path)
    for pid in left:  # clean up before failing, so nothing outlives the test
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    return demo.returncode, out, err, left, children


def test_demo_runs_recommends_and_leaves_no_process(tmp_path):
    rc, out, err, left, children = run_demo(tmp_path, 10)
    assert rc == 0, "demo exited %d\nstdout:\n%s\nstderr:\n%s" % (rc, out, err)
    assert len(children) >= 3, "the demo's two backends and proxy were not seen: %r" % children
    assert DEMO_LINE.match(out.splitlines()[0]), out[:500]
    assert any("RECOMMENDATION" in line for line in out.splitlines()), out
    assert not left, "processes left behind by the demo: %r" % left
    # the traffic went through: requests with no errors, and an outcome log with records
    m = re.search(r"^(\d+) requests \((\d+) errors\), (\d+) outcomes posted", out, re.M)
    assert m, out
    assert int(m.group(1)) > 1000 and int(m.group(2)) == 0, m.group(0)
    assert int(m.group(3)) == int(m.group(1)), m.group(0)
    assert os.path.getsize(tmp_path / "var" / "demo" / "outcomes.jsonl") > 0


def test_conf_demo_yaml_is_the_demo_template_with_default_values(tmp_path):
    rc, out, err, left, _ = run_demo(tmp_path, 1)
    assert rc == 0, "demo exited %d\nstdout:\n%s\nstderr:\n%s" % (rc, out, err)
    assert not left, left
    m = DEMO_LINE.match(out.splitlines()[0])
    assert m, out[:500]
    proxy, admin, v1, v2 = m.groups()
    generated = (tmp_path / "var" / "demo" / "demo.yaml").read_text()
    subst = [("  - addr: 127.0.0.1:%s\n" % proxy, "  - addr: 127.0.0.1:8080\n"),
             ("  addr: 127.0.0.1:%s\n" % admin, "  addr: 127.0.0.1:9901\n"),
             ("servers: [127.0.0.1:%s]" % v1, "servers: [127.0.0.1:9001]"),
             ("servers: [127.0.0.1:%s]" % v2, "servers: [127.0.0.1:9002]"),
             ("outcomes: var/demo/outcomes.jsonl  #", "outcomes: var/outcomes.jsonl  #")]
    for old, new in subst:
        assert generated.count(old) == 1, (old, generated)
        generated = generated.replace(old, new)
    with open(os.path.join(REPO, "conf", "demo.yaml")) as f:
        shipped = f.read()
    assert shipped.splitlines() == generated.splitlines()
    assert shipped == generated


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "conf", "*.yaml"))),
                         ids=os.path.basename)
def test_every_example_configuration_passes_check(path):
    r = subprocess.run([ABGATE_BIN, "check", "-c", path], cwd=REPO, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().startswith("%s: ok" % path), r.stdout


def test_two_instances_assign_every_user_identically_and_reports_merge(procs, models,
                                                                       make_config, tmp_path):
    a, b = models
    backends = {"model-a": a.addr, "model-b": b.addr}

    def exp():
        return Experiment("ranker", [("control", "model-a", 70), ("treatment", "model-b", 30)],
                          salt="shared-salt")

    log1, log2 = str(tmp_path / "one.jsonl"), str(tmp_path / "two.jsonl")
    p1 = procs.proxy(make_config(backends, [exp()], name="one.yaml", outcomes=log1), "proxy-1")
    p2 = procs.proxy(make_config(backends, [exp()], name="two.yaml", outcomes=log2), "proxy-2")
    assert p1.port != p2.port
    users = ["scale-%d" % i for i in range(10000)]
    reqs = [user_request(u) for u in users]
    got = []
    for p in (p1, p2):
        resps = parallel_pipelined(p.port, reqs, nconns=4, batch=250)
        assert all(r.status == 200 for r in resps)
        got.append([r.header("X-Abgate-Variant") for r in resps])
    e = exp()
    want = [e.expect(u) for u in users]
    diff = [u for u, x, y in zip(users, got[0], got[1]) if x != y]
    assert not diff, "%d users differ between the instances, e.g. %r" % (len(diff), diff[:5])
    assert got[0] == want
    assert 0.27 < want.count("treatment") / len(users) < 0.33

    # stopping flushes the outcome logs
    assert p1.stop() == 0 and p2.stop() == 0
    for log in (log1, log2):
        with open(log) as f:
            assert sum(1 for line in f if '"type":"request"' in line) == 10000
    both = tmp_path / "both.jsonl"
    with open(both, "wb") as out:
        for log in (log1, log2):
            with open(log, "rb") as f:
                out.write(f.read())

    def report(*logs):
        r = subprocess.run([ABGATE_BIN, "report", "--format", "json"] + list(logs),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        assert r.returncode == 0, r.stderr.decode()
        doc = json.loads(r.stdout.decode())
        assert isinstance(doc, dict), doc
        doc.pop("generated")
        doc.pop("logs")
        return doc

    merged, concatenated = report(log1, log2), report(str(both))
    assert merged["records"]["request"] == 20000
    assert {v["name"]: v["requests"] for v in merged["variants"]} == {
        "control": 2 * want.count("control"), "treatment": 2 * want.count("treatment")}
    assert merged == concatenated


COMMANDS = ["serve", "check", "report", "power", "demo", "backend"]


def run(*args):
    return subprocess.run([ABGATE_BIN] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=30)


def test_top_level_help():
    r = run("--help")
    assert r.returncode == 0, r
    out = r.stdout.decode()
    assert out.startswith("usage: abgate"), out
    for c in COMMANDS:
        assert re.search(r"^\s+%s\b" % c, out, re.M), (c, out)


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help(command):
    r = run(command, "--help")
    assert r.returncode == 0, r
    assert r.stdout.decode().startswith("usage: abgate %s" % command), r.stdout
    assert r.stderr == b""


def test_unknown_command_exits_1_with_one_line():
    r = run("frobnicate")
    assert r.returncode == 1
    assert r.stdout == b""
    err = r.stderr.decode()
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "frobnicate" in err


def build_mtimes():
    """Modification times of what `make` builds (build/abgate, the library, the objects)."""
    out = {}
    for p in ("abgate", "libabgate.a"):
        p = os.path.join(REPO, "build", p)
        if os.path.exists(p):
            out[p] = os.stat(p).st_mtime_ns
    for root, _, files in os.walk(os.path.join(REPO, "build", "obj")):
        for f in files:
            p = os.path.join(root, f)
            try:
                out[p] = os.stat(p).st_mtime_ns
            except OSError:
                pass
    return out


def test_make_install_destdir(tmp_path):
    built = os.path.join(REPO, "build", "abgate")
    up_to_date = subprocess.run(["make", "-q", "build/abgate"], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    before = build_mtimes()
    dest = tmp_path / "root"
    # with sources newer than the binary (a build in progress), -o keeps make from rebuilding
    # it under the feet of whoever is building: the install itself is what is checked here
    keep = [] if up_to_date else ["-o", "build/abgate"]
    r = subprocess.run(["make"] + keep + ["install", "DESTDIR=%s" % dest, "PREFIX=/usr"],
                       cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    out = r.stdout.decode()
    assert r.returncode == 0, out
    installed = dest / "usr" / "bin" / "abgate"
    assert installed.is_file(), out
    assert os.stat(installed).st_mode & 0o777 == 0o755
    with open(built, "rb") as f1, open(installed, "rb") as f2:
        assert f1.read() == f2.read()
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == [
        "usr", "usr/bin", "usr/bin/abgate"]
    # nothing was rebuilt: make only ran the install commands
    cmds = [line for line in out.splitlines() if line and not line.startswith("make")]
    assert all(line.startswith("install ") for line in cmds), out
    if up_to_date:
        assert build_mtimes() == before
    r = subprocess.run([str(installed), "--version"], stdout=subprocess.PIPE, timeout=10)
    assert r.returncode == 0 and r.stdout.startswith(b"abgate ")
