"""Integration tests of `abgate report` and `abgate power`: seeded logs in the outcome-log format,
the real binary, scipy as the oracle (every p-value to 1e-9 relative), merging, torn lines,
errors, and the text/Markdown/HTML outputs (the HTML rendered by headless Chromium)."""
import datetime
import json
import os
import random
import shutil
import struct
import subprocess
import tempfile
import zlib

import pytest
from scipy import stats

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("ABGATE_BIN", os.path.join(ROOT, "build", "abgate"))
T0 = 1795000000.0
REL = 1e-9


def ts(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")


def run(*args, check=True):
    p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"abgate {' '.join(args)}: exit {p.returncode}: {p.stderr}")
    return p


def close(got, want, rel=REL):
    assert got is not None, f"got null, want {want}"
    scale = max(abs(want), 1e-300)
    assert abs(got - want) <= rel * scale, f"got {got!r}, want {want!r}"


class Data:
    """Seeded experiment data, kept per variant so scipy can see exactly what was logged.
    Each request comes from a unit of its own: independent data, where the unit-level tests
    reduce to scipy's (tests/integration/test_unit_stats.py has returning units)."""

    def __init__(self, seed, weights, n=6000, err=None, click=None, lat_scale=None,
                 integer_latency=False, revenue=True, exp="ranker-v2"):
        rng = random.Random(seed)
        self.exp = exp
        self.weights = weights
        names = list(weights)
        self.lat = {v: [] for v in names}
        self.err = {v: [] for v in names}
        self.click = {v: [] for v in names}
        self.rev = {v: [] for v in names}
        self.units = {v: set() for v in names}
        self.lines = [json.dumps({"v": 1, "type": "config", "ts": ts(T0), "generation": 1,
                                  "exp": exp, "weights": weights})]
        err = err or {}
        click = click or {}
        lat_scale = lat_scale or {}
        total = sum(weights.values())
        for i in range(n):
            r = rng.random() * total
            for v in names:
                r -= weights[v]
                if r < 0:
                    break
            rng.randrange(n // 3)  # the unit draw of old, kept so the data stay the same
            unit = f"u-{i}"
            status = 503 if rng.random() < err.get(v, 0.01) else 200
            if integer_latency:
                lat = float(rng.randrange(1, 120))
            else:
                lat = round(rng.lognormvariate(3, 0.5) * lat_scale.get(v, 1.0), 3)
            t = T0 + 1 + i * 0.25
            self.lines.append(json.dumps({
                "v": 1, "type": "request", "ts": ts(t), "exp": exp, "variant": v,
                "unit": unit, "rid": f"r{i}", "status": status, "latency_ms": lat,
                "upstream": "127.0.0.1:9001", "bytes_in": 70, "bytes_out": 29}))
            self.lat[v].append(lat)
            self.err[v].append(1 if status >= 500 else 0)
            self.units[v].add(unit)
            if rng.random() < 0.6:
                c = 1 if rng.random() < click.get(v, 0.10) else 0
                self.click[v].append(c)
                self.lines.append(json.dumps({
                    "v": 1, "type": "outcome", "ts": ts(t + 0.1), "exp": exp, "variant": v,
                    "unit": unit, "rid": f"r{i}", "metric": "click", "value": c}))
            if revenue and rng.random() < 0.3:
                x = round(rng.gammavariate(2.0, 10.0), 2)
                self.rev[v].append(x)
                self.lines.append(json.dumps({
                    "v": 1, "type": "outcome", "ts": ts(t + 0.2), "exp": exp, "variant": v,
                    "unit": unit, "rid": f"r{i}", "metric": "revenue", "value": x}))

    def write(self, path, lines=None, tail=""):
        with open(path, "w") as f:
            for line in (self.lines if lines is None else lines):
                f.write(line + "\n")
            f.write(tail)
        return str(path)


def report_json(*args):
    return json.loads(run("report", "--format", "json", *args).stdout)


def metric(rep, name):
    for m in rep["metrics"]:
        if m["name"] == name:
            return m
    raise AssertionError(f"no metric {name}")


def check_against_scipy(rep, d):
    names = list(d.weights)
    control = names[0]
    assert [v["name"] for v in rep["variants"]] == names
    for v in rep["variants"]:
        assert v["requests"] == len(d.lat[v["name"]])
        assert v["units"] == len(d.units[v["name"]])
        assert v["weight"] == d.weights[v["name"]]

    # the split check counts distinct units
    obs = [len(d.units[v]) for v in names]
    assert rep["srm"]["observed"] == obs
    tot = sum(d.weights.values())
    exp = [d.weights[v] / tot * sum(obs) for v in names]
    srm = stats.chisquare(obs, exp)
    close(rep["srm"]["chi2"], srm.statistic)
    close(rep["srm"]["p_value"], srm.pvalue)
    assert rep["srm"]["df"] == len(names) - 1

    lat = metric(rep, "latency_ms")
    for c in lat["comparisons"]:
        v = c["variant"]
        w = stats.ttest_ind(d.lat[v], d.lat[control], equal_var=False)
        close(c["statistic"], w.statistic)
        close(c["p_value"], w.pvalue)
        g = stats.ttest_ind(d.lat[v], d.lat[control], equal_var=False, alternative="greater")
        close(c["p_value_one_sided"], g.pvalue)  # harm for a decrease-goal guardrail
        assert c["test"] == "welch_t"
        close(lat["by_variant"][v]["mean"], sum(d.lat[v]) / len(d.lat[v]), 1e-12)

    for name, data in (("error_rate", d.err), ("click", d.click)):
        m = metric(rep, name)
        assert m["kind"] == "binary"
        for c in m["comparisons"]:
            v = c["variant"]
            table = [[sum(data[v]), len(data[v]) - sum(data[v])],
                     [sum(data[control]), len(data[control]) - sum(data[control])]]
            x = stats.chi2_contingency(table, correction=False)
            close(c["statistic"], x[0])
            close(c["p_value"], x[1])
            y = stats.chi2_contingency(table, correction=True)
            close(c["p_value_yates"], y[1])
            assert c["test"] == "chi_square" and c["df"] == 1
            assert m["by_variant"][v]["successes"] == sum(data[v])

    rev = metric(rep, "revenue")
    assert rev["kind"] == "continuous" and not rev["primary"]
    for c in rev["comparisons"]:
        v = c["variant"]
        w = stats.ttest_ind(d.rev[v], d.rev[control], equal_var=False)
        close(c["statistic"], w.statistic)
        close(c["p_value"], w.pvalue)
    assert metric(rep, "click")["primary"] is True


def test_two_arms_match_scipy(tmp_path):
    d = Data(1, {"control": 50, "treatment": 50}, err={"treatment": 0.02},
             click={"treatment": 0.12}, lat_scale={"treatment": 1.03})
    rep = report_json(d.write(tmp_path / "a.jsonl"))
    assert rep["experiment"] == "ranker-v2"
    assert rep["records"]["request"] == 6000
    assert rep["records"]["skipped"] == 0
    check_against_scipy(rep, d)
    assert rep["recommendation"]["action"] in ("promote", "rollback", "continue", "investigate")
    assert rep["recommendation"]["reasons"]


def test_three_arms_unequal_weights_match_scipy(tmp_path):
    d = Data(2, {"control": 20, "a": 40, "b": 40}, n=9000, click={"b": 0.115})
    rep = report_json(d.write(tmp_path / "a.jsonl"))
    check_against_scipy(rep, d)
    # Holm over the two primary comparisons
    ps = [c["p_value"] for c in metric(rep, "click")["comparisons"]]
    adj = [c["p_value_adjusted"] for c in metric(rep, "click")["comparisons"]]
    lo = min(range(2), key=lambda i: ps[i])
    close(adj[lo], min(1.0, 2 * ps[lo]))
    close(adj[1 - lo], min(1.0, max(2 * ps[lo], ps[1 - lo])))


def test_mann_whitney_matches_scipy(tmp_path):
    # integer latencies below 128 ms each fall in their own histogram bucket, so the
    # histogram-based U test sees the exact data
    d = Data(3, {"control": 50, "treatment": 50}, integer_latency=True, revenue=False)
    rep = report_json(d.write(tmp_path / "a.jsonl"))
    c = metric(rep, "latency_ms")["comparisons"][0]
    mw = stats.mannwhitneyu(d.lat["treatment"], d.lat["control"], method="asymptotic")
    close(c["mann_whitney"]["u"], mw.statistic)
    close(c["mann_whitney"]["p_value"], mw.pvalue)


def test_merged_logs_equal_concatenated(tmp_path):
    d = Data(4, {"control": 50, "treatment": 50})
    body = d.lines[1:]
    half = len(body) // 2
    a = d.write(tmp_path / "a.jsonl", [d.lines[0]] + body[:half])
    b = d.write(tmp_path / "b.jsonl", [d.lines[0]] + body[half:])
    whole = d.write(tmp_path / "all.jsonl", [d.lines[0]] + body)
    merged = report_json(a, b)
    single = report_json(whole)
    assert merged["logs"] == [a, b]
    for key in ("variants", "srm"):
        assert merged[key] == single[key]
    for mm, ms in zip(merged["metrics"], single["metrics"]):
        assert mm["by_variant"].keys() == ms["by_variant"].keys()
        for v in mm["by_variant"]:
            for k, x in mm["by_variant"][v].items():
                if isinstance(x, float):
                    close(x, ms["by_variant"][v][k], 1e-12)
                else:
                    assert x == ms["by_variant"][v][k]
        for cm, cs in zip(mm["comparisons"], ms["comparisons"]):
            close(cm["p_value"], cs["p_value"], 1e-12)
            close(cm["statistic"], cs["statistic"], 1e-12)
    assert merged["recommendation"] == single["recommendation"]
    check_against_scipy(merged, d)


def test_torn_line_skipped_and_counted(tmp_path):
    d = Data(5, {"control": 50, "treatment": 50}, n=2000)
    torn = '{"v":1,"type":"request","ts":"2026-11-22T18:50:15.1234Z","exp":"ranker-v2","vari'
    path = d.write(tmp_path / "a.jsonl", tail=torn)
    rep = report_json(path)
    assert rep["records"]["skipped"] == 1
    assert rep["records"]["request"] == 2000
    check_against_scipy(rep, d)
    # garbage in the middle as well, and a record with a non-numeric latency
    lines = d.lines[:10] + ["not json", '{"v":1,"type":"request"}', "[1,2]"] + d.lines[10:]
    rep = report_json(d.write(tmp_path / "b.jsonl", lines, tail=torn))
    assert rep["records"]["skipped"] == 4
    text = run("report", str(tmp_path / "b.jsonl")).stdout
    assert "skipped" in text and "4" in text


def test_errors_exit_1_with_one_line(tmp_path):
    d = Data(6, {"control": 50, "treatment": 50}, n=500)
    path = d.write(tmp_path / "a.jsonl")
    for args in (["report", str(tmp_path / "missing.jsonl")],
                 ["report", "--experiment", "nope", path],
                 ["report", "--format", "pdf", path],
                 ["report"],
                 ["report", "--bogus", path],
                 ["power", "--baseline", "0.1"],
                 ["power", "--baseline", "1.5", "--mde", "0.01"],
                 ["power", "--sd", "-1", "--mde", "2"],
                 ["power", "--baseline", "0.1", "--mde", "abc"]):
        p = run(*args, check=False)
        assert p.returncode == 1, args
        lines = p.stderr.strip().split("\n")
        assert len(lines) == 1, (args, p.stderr)
        assert lines[0].startswith(f"abgate {args[0]}: "), (args, p.stderr)


def test_help():
    for cmd in ("report", "power"):
        p = run(cmd, "--help")
        assert p.stdout.startswith(f"usage: abgate {cmd}")


def test_several_experiments(tmp_path):
    a = Data(7, {"control": 50, "treatment": 50}, n=1500, exp="one")
    b = Data(8, {"control": 90, "canary": 10}, n=1500, exp="two")
    path = a.write(tmp_path / "a.jsonl", a.lines + b.lines)
    rep = report_json(path)
    assert isinstance(rep, list) and [r["experiment"] for r in rep] == ["one", "two"]
    check_against_scipy(rep[0], a)
    check_against_scipy(rep[1], b)
    one = report_json("--experiment", "two", path)
    assert one["experiment"] == "two"
    check_against_scipy(one, b)


def test_decisions(tmp_path):
    # investigate: 50/50 configured, 60/40 observed
    d = Data(9, {"control": 60, "treatment": 40}, n=4000)
    lines = [json.dumps({"v": 1, "type": "config", "ts": ts(T0), "generation": 1,
                         "exp": "ranker-v2", "weights": {"control": 50, "treatment": 50}})]
    rep = report_json(d.write(tmp_path / "srm.jsonl", lines + d.lines[1:]))
    assert rep["srm"]["flagged"] is True
    assert rep["recommendation"]["action"] == "investigate"
    # rollback: the treatment errors three times as often
    d = Data(10, {"control": 50, "treatment": 50}, n=6000, err={"treatment": 0.05})
    rep = report_json(d.write(tmp_path / "rb.jsonl"))
    assert rep["recommendation"]["action"] == "rollback"
    assert any("error_rate" in r for r in rep["recommendation"]["reasons"])
    # continue: too little data
    d = Data(11, {"control": 50, "treatment": 50}, n=300)
    rep = report_json(d.write(tmp_path / "few.jsonl"))
    assert rep["recommendation"]["action"] == "continue"
    assert any("min_samples" in r for r in rep["recommendation"]["reasons"])
    # promote: clicks clearly better, guardrails unchanged
    d = Data(12, {"control": 50, "treatment": 50}, n=12000, click={"treatment": 0.16},
             revenue=False)
    rep = report_json(d.write(tmp_path / "win.jsonl"))
    assert rep["recommendation"]["action"] == "promote", rep["recommendation"]
    assert rep["recommendation"]["variant"] == "treatment"


def test_no_nan_in_json(tmp_path):
    # a constant arm, an arm without outcomes, a zero-mean control: nulls and notes only
    lines = [json.dumps({"v": 1, "type": "config", "ts": ts(T0), "generation": 1,
                         "exp": "e", "weights": {"control": 50, "treatment": 50}})]
    for i in range(40):
        v = "control" if i % 2 else "treatment"
        lines.append(json.dumps({"v": 1, "type": "request", "ts": ts(T0 + i), "exp": "e",
                                 "variant": v, "unit": f"u{i}", "status": 200,
                                 "latency_ms": 10.0}))
        if v == "control":
            lines.append(json.dumps({"v": 1, "type": "outcome", "ts": ts(T0 + i), "exp": "e",
                                     "variant": v, "metric": "score", "value": 0}))
    path = tmp_path / "z.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out = run("report", "--format", "json", str(path)).stdout
    assert "NaN" not in out and "Infinity" not in out
    rep = json.loads(out)
    c = metric(rep, "latency_ms")["comparisons"][0]
    assert c["p_value"] == 1 and "note" in c
    s = metric(rep, "score")["comparisons"][0]
    assert s["p_value"] is None and "note" in s


def test_text_md_html(tmp_path):
    d = Data(13, {"control": 50, "treatment": 50}, n=3000)
    path = d.write(tmp_path / "a.jsonl")
    text = run("report", path).stdout
    assert "ranker-v2" in text and "recommendation" in text.lower()
    assert max(len(line) for line in text.split("\n")) <= 100
    md = run("report", "--format", "md", path).stdout
    assert md.startswith("## ") and "| --- |" in md.replace("|---|", "| --- |") or "|---" in md
    out = tmp_path / "r.html"
    run("report", "--format", "html", "-o", str(out), path)
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html and "<script" not in html


def png_nonwhite_fraction(path):
    """Decodes an 8-bit RGB/RGBA PNG with zlib and returns the share of non-white pixels."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6)
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    nonwhite = total = 0
    i = 0
    for _ in range(height):
        ftype = raw[i]
        line = bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if ftype == 1:
                line[x] = (line[x] + a) & 255
            elif ftype == 2:
                line[x] = (line[x] + b) & 255
            elif ftype == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pr) & 255
        for x in range(0, stride, bpp):
            total += 1
            if line[x] < 240 or line[x + 1] < 240 or line[x + 2] < 240:
                nonwhite += 1
        prev = line
    return nonwhite / total


@pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="chromium not installed")
def test_html_renders_in_chromium(tmp_path):
    d = Data(14, {"control": 50, "treatment": 50}, n=4000, click={"treatment": 0.12})
    out = tmp_path / "r.html"
    run("report", "--format", "html", "-o", str(out), d.write(tmp_path / "a.jsonl"))
    png = tmp_path / "shot.png"
    profile = tempfile.mkdtemp(prefix="abgate-chromium-")
    try:
        p = subprocess.run(
            ["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", f"--user-data-dir={profile}", f"--screenshot={png}",
             "--window-size=1200,2000", f"file://{out}"],
            capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert png.exists(), p.stderr
    frac = png_nonwhite_fraction(png)
    assert frac > 0.01, frac


def test_power_vectors():
    p = run("power", "--baseline", "0.10", "--mde", "0.02", "--json")
    r = json.loads(p.stdout)
    close(r["n_exact"], 3840.84748244)
    assert r["n_per_variant"] == 3841
    r = json.loads(run("power", "--sd", "50", "--mde", "5", "--json").stdout)
    close(r["n_exact"], 1569.77594687)
    assert r["n_per_variant"] == 1570
    r = json.loads(run("power", "--baseline", "0.10", "--mde", "0.2", "--relative",
                       "--json").stdout)
    close(r["n_exact"], 3840.84748244)
    text = run("power", "--baseline", "0.1", "--mde", "0.02").stdout
    assert "3841" in text and "0.1" in text and "0.02" in text
    # returning units: n E requests, n E / M units per variant
    r = json.loads(run("power", "--baseline", "0.10", "--mde", "0.02", "--requests-per-unit",
                       "8", "--design-effect", "2.5", "--json").stdout)
    close(r["n_exact"], 3840.84748244 * 2.5 / 8)
    assert r["n_per_variant"] == 1201 and r["requests_per_variant"] == 9603
    assert r["n_in"] == "units"
    r = json.loads(run("power", "--baseline", "0.1", "--mde", "0.02", "--alpha", "0.01",
                       "--power", "0.9", "--json").stdout)
    za, zb = stats.norm.isf(0.005), stats.norm.isf(0.1)
    p1, p2 = 0.1, 0.1 + 0.02
    pb = (p1 + p2) / 2
    n = (za * (2 * pb * (1 - pb)) ** 0.5 + zb * (p1 * (1 - p1) + p2 * (1 - p2)) ** 0.5) ** 2 \
        / (p1 - p2) ** 2
    close(r["n_exact"], n)
