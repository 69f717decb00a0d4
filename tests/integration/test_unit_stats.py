"""Statistics at the randomisation unit, through `abgate report` on simulated outcome logs.

Units come back: requests per unit are heavy-tailed (1 + floor of a lognormal, mean ~9), each
unit has its own click propensity (Beta(0.4, 3.6), mean 0.1), error propensity and latency
level (lognormal). The traffic is A/A: both arms are drawn from the same population, each unit
assigned to one arm for good.

- Calibration: over SEEDS experiments the report's fixed-horizon tests reject at alpha = 0.05
  within 3 binomial standard deviations of alpha (count in [1, 19] of 200), for the binary
  (click, error_rate) and the continuous (latency_ms) metrics; the sample-ratio check on
  distinct units flags (p < srm_alpha = 0.001) at most 3 times in 200 (P(Bin(200, 0.001) > 3)
  is 5e-5) and rejects at 0.05 within the same 3-sigma band. The same logs analysed per
  request (scipy's Welch and chi-square on the requests, chisquare on request counts) land far
  outside those bands, so the test can fail.
- Oracles: the per-unit delta method in numpy and statsmodels' OLS with cluster-robust errors
  (intercept-only per arm, groups = units: its default small-sample factor G/(G-1) equals the
  delta method's M/(M-1)) give the report's standard errors, statistics and p-values to 1e-9.
  Past the per-unit cap the report uses 1024 pseudo-unit buckets: an oracle that recomputes the
  buckets from the documented hashes agrees to 1e-9, and the bucketed standard error is within
  4 standard deviations of the exact per-unit one, the sd derived from the per-unit residuals
  e_i under random bucketing: 0.5 sqrt(2/K (1 - sum e^4 / (sum e^2)^2)), at most 2.2% for
  K = 1024.
- Past the distinct-unit cap the split check counts an exact hash sample of the units: the
  counts equal the oracle's and the statistic equals scipy.stats.chisquare on them.
- Sequential: four looks at A/A traffic with `decision.sequential` (from `-c`, which also names
  the unit): ever rejecting stays at or below alpha + 3 sigma (0 and 0 of 100), where the
  fixed-horizon p-values at the same looks reject 13 and 11 times.
- Power: with a true latency effect the report detects it as often as statsmodels' cluster-robust
  OLS on a treatment dummy does (34 and 34 of 60).
- Live: through the proxy with two workers, /experiments and the live report count each
  variant's distinct units exactly and analyse the request metrics at the unit.
"""
import os
import subprocess
import json

import numpy as np
from scipy import stats

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("ABGATE_BIN", os.path.join(ROOT, "build", "abgate"))
SEEDS = 200
ALPHA = 0.05
EXP = "aa"
TS = "2026-11-22T18:50:%02d.000000Z"


def simulate(seed, units=1500, per_unit=True, lift=1.0):
    """One experiment's log lines (A/A unless lift scales the treatment's latency levels) and,
    per arm, the data an oracle needs."""
    rng = np.random.default_rng(seed)
    if per_unit:
        n = 1 + np.floor(rng.lognormal(1.5, 1.1, units)).astype(int)
        n = np.minimum(n, 400)
    else:
        n = np.ones(units, dtype=int)
    arm = rng.random(units) < 0.5  # True: treatment
    p_click = rng.beta(0.4, 3.6, units)
    p_err = rng.beta(0.3, 20.0, units)
    level = rng.lognormal(3.0, 0.7, units)
    lines = [json.dumps({"v": 1, "type": "config", "ts": TS % 0, "generation": 1, "exp": EXP,
                         "weights": {"control": 50, "treatment": 50}})]
    data = {v: {"unit": [], "lat": [], "err": [], "cunit": [], "click": []}
            for v in ("control", "treatment")}
    for i in range(units):
        v = "treatment" if arm[i] else "control"
        k = int(n[i])
        lat = np.round(level[i] * (lift if arm[i] else 1.0) * rng.lognormal(0.0, 0.3, k), 3)
        err = rng.random(k) < p_err[i]
        has_click = rng.random(k) < 0.7
        click = rng.random(k) < p_click[i]
        u = f"u{seed}-{i}"
        d = data[v]
        t = TS % (1 + i % 50)
        for j in range(k):
            lines.append(
                f'{{"v":1,"type":"request","ts":"{t}","exp":"{EXP}","variant":"{v}",'
                f'"unit":"{u}","status":{503 if err[j] else 200},"latency_ms":{lat[j]}}}')
            d["unit"].append(i)
            d["lat"].append(lat[j])
            d["err"].append(int(err[j]))
            if has_click[j]:
                lines.append(
                    f'{{"v":1,"type":"outcome","ts":"{t}","exp":"{EXP}","variant":"{v}",'
                    f'"unit":"{u}","metric":"click","value":{int(click[j])}}}')
                d["cunit"].append(i)
                d["click"].append(int(click[j]))
    for d in data.values():
        for key in d:
            d[key] = np.array(d[key])
    return lines, data


def report(lines, path, *args):
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    p = subprocess.run([BIN, "report", "--format", "json", *args, str(path)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def metric(rep, name):
    return next(m for m in rep["metrics"] if m["name"] == name)


# ---- oracles ----------------------------------------------------------------------------

def delta_var(values, groups):
    """Delta-method variance of the mean of values clustered by groups, and M - 1."""
    ids, inv = np.unique(groups, return_inverse=True)
    s = np.bincount(inv, weights=values)
    c = np.bincount(inv)
    r = values.mean()
    e = s - r * c
    m, n = len(ids), len(values)
    return m / (m - 1) * (e ** 2).sum() / n ** 2, m - 1


def welch_from(v1, df1, v2, df2, diff):
    df = (v1 + v2) ** 2 / (v1 ** 2 / df1 + v2 ** 2 / df2)
    t = diff / np.sqrt(v1 + v2)
    return t, df, 2 * stats.t.sf(abs(t), df)


def rao_scott(x_t, g_t, x_c, g_c):
    """Pearson chi-square of the 2x2 table over the Rao-Scott factor; returns (chi2, p, delta)."""
    table = [[x_t.sum(), len(x_t) - x_t.sum()], [x_c.sum(), len(x_c) - x_c.sum()]]
    chi2 = stats.chi2_contingency(table, correction=False)[0]
    d = []
    for x, g in ((x_t, g_t), (x_c, g_c)):
        v, _ = delta_var(x.astype(float), g)
        d.append(v / (x.var(ddof=1) / len(x)))
    nt, nc = len(x_t), len(x_c)
    delta = (d[0] * nc + d[1] * nt) / (nt + nc)
    return chi2 / delta, stats.chi2.sf(chi2 / delta, 1), delta


M64 = (1 << 64) - 1


def mix64(x):
    x ^= x >> 33
    x = (x * 0xff51afd7ed558ccd) & M64
    x ^= x >> 33
    x = (x * 0xc4ceb9fe1a85ec53) & M64
    return x ^ (x >> 33)


def hash64(b):
    """The report's hash of a unit string (stats/accum.c accum_hash64)."""
    n = len(b)
    h = 0x9e3779b97f4a7c15 ^ ((n * 0x100000001b3) & M64)
    i = 0
    while n - i >= 8:
        h ^= mix64(int.from_bytes(b[i:i + 8], "little"))
        h = ((((h << 27) | (h >> 37)) & M64) * 0x9e3779b97f4a7c15 + 0x52dce729) & M64
        i += 8
    h ^= mix64(int.from_bytes(b[i:], "little") ^ 0x2545f4914f6cdd1d)
    return mix64(h)


def unit_key(name):
    """The unit's key (accum_unit_key): its top 10 bits pick the pseudo-unit bucket, its low
    bits the hash sample of the distinct-unit set."""
    return mix64(hash64(name.encode()) ^ 0x6a09e667f3bcc909) or 1


def close(got, want, rel=1e-9):
    assert got is not None, f"got null, want {want}"
    assert abs(got - want) <= rel * max(abs(want), 1e-300), f"got {got!r}, want {want!r}"


# ---- calibration ------------------------------------------------------------------------

def band(count, n=SEEDS, p=ALPHA, k=3.0):
    sd = (n * p * (1 - p)) ** 0.5
    return abs(count - n * p) <= k * sd


def test_aa_false_positives_at_the_unit_and_inflated_per_request(tmp_path):
    hits = {k: 0 for k in ("click", "latency_ms", "error_rate", "srm05", "srm_flag")}
    naive = {k: 0 for k in ("click", "latency_ms", "error_rate", "srm05", "srm_flag")}
    per_unit = []
    for seed in range(SEEDS):
        lines, d = simulate(seed)
        rep = report(lines, tmp_path / "aa.jsonl")
        assert rep["analysis_unit"]["unit"] == "unit"
        per_unit.append(rep["analysis_unit"]["requests_per_unit"])
        for name in ("click", "latency_ms", "error_rate"):
            c = metric(rep, name)["comparisons"][0]
            assert c["p_value"] is not None, (seed, name, c)
            hits[name] += c["p_value"] < ALPHA
        hits["srm05"] += rep["srm"]["p_value"] < ALPHA
        hits["srm_flag"] += rep["srm"]["flagged"]
        # the same logs, every request taken as independent
        t, c = d["treatment"], d["control"]
        naive["latency_ms"] += stats.ttest_ind(t["lat"], c["lat"], equal_var=False).pvalue < ALPHA
        for name, key in (("click", "click"), ("error_rate", "err")):
            table = [[t[key].sum(), len(t[key]) - t[key].sum()],
                     [c[key].sum(), len(c[key]) - c[key].sum()]]
            naive[name] += stats.chi2_contingency(table, correction=False)[1] < ALPHA
        reqs = [len(c["lat"]), len(t["lat"])]
        p_req = stats.chisquare(reqs, [sum(reqs) / 2] * 2).pvalue
        naive["srm05"] += p_req < ALPHA
        naive["srm_flag"] += p_req < 0.001
    print(f"\nA/A over {SEEDS} seeds, {np.mean(per_unit):.2f} requests per unit: rejections at "
          f"{ALPHA} (SRM: p < 0.05, flagged at 0.001)\n  at the unit:  {hits}\n"
          f"  per request:  {naive}")
    for name in ("click", "latency_ms", "error_rate", "srm05"):
        assert band(hits[name]), (name, hits)
        assert not band(naive[name]) and naive[name] > SEEDS * ALPHA, (name, naive)
    assert hits["srm_flag"] <= 3, hits
    assert naive["srm_flag"] > 3, naive


def test_power_with_a_true_effect_matches_a_cluster_robust_regression(tmp_path):
    """Validity is not bought with wide intervals: with latency levels 15% higher in the
    treatment, the report detects the difference as often as statsmodels' OLS of latency on a
    treatment dummy with cluster-robust errors by unit (a different estimator of the same
    variance, with G - 1 df) does on the same logs: within 3 sigma of a binomial difference."""
    import statsmodels.api as sm
    runs, hit, hit_ols = 60, 0, 0
    for seed in range(5000, 5000 + runs):
        lines, d = simulate(seed, lift=1.15)
        rep = report(lines, tmp_path / "p.jsonl")
        hit += metric(rep, "latency_ms")["comparisons"][0]["p_value"] < ALPHA
        t, c = d["treatment"], d["control"]
        y = np.concatenate([t["lat"], c["lat"]])
        x = sm.add_constant(np.concatenate([np.ones(len(t["lat"])), np.zeros(len(c["lat"]))]))
        g = np.concatenate([t["unit"], c["unit"]])
        fit = sm.OLS(y, x).fit(cov_type="cluster", cov_kwds={"groups": g})
        hit_ols += fit.pvalues[1] < ALPHA
    print(f"\npower, latency +15%: report {hit}/{runs}, cluster-robust OLS {hit_ols}/{runs}")
    p = (hit + hit_ols) / (2 * runs)
    assert abs(hit - hit_ols) <= 3 * (2 * runs * p * (1 - p)) ** 0.5
    assert 0.2 * runs < hit < runs  # a test with real but not total power


# ---- oracles ------------------------------------------------------------------------------

def check_exact(rep, d):
    t, c = d["treatment"], d["control"]
    lat = metric(rep, "latency_ms")
    vs = {}
    for v, x in (("treatment", t), ("control", c)):
        var, df = delta_var(x["lat"], x["unit"])
        vs[v] = (var, df)
        by = lat["by_variant"][v]
        assert by["variance_from"] == "units" and by["units"] == df + 1
        close(by["se_mean"], var ** 0.5)
        close(by["design_effect"], var / (x["lat"].var(ddof=1) / len(x["lat"])))
        # statsmodels: intercept-only OLS, cluster-robust by unit (default correction)
        import statsmodels.api as sm
        fit = sm.OLS(x["lat"], np.ones(len(x["lat"]))).fit(
            cov_type="cluster", cov_kwds={"groups": x["unit"]})
        close(fit.bse[0], var ** 0.5)
        close(fit.params[0], lat["by_variant"][v]["mean"])
    cmp = lat["comparisons"][0]
    tstat, df, p = welch_from(vs["treatment"][0], vs["treatment"][1], vs["control"][0],
                              vs["control"][1], t["lat"].mean() - c["lat"].mean())
    close(cmp["statistic"], tstat)
    close(cmp["df"], df)
    close(cmp["p_value"], p)
    for name, key, g in (("click", "click", "cunit"), ("error_rate", "err", "unit")):
        chi2, p, delta = rao_scott(t[key], t[g], c[key], c[g])
        cm = metric(rep, name)["comparisons"][0]
        close(cm["statistic"], chi2)
        close(cm["p_value"], p)
        close(cm["design_effect"], delta)


def test_exact_per_unit_matches_numpy_and_statsmodels(tmp_path):
    for seed in (1001, 1002):
        lines, d = simulate(seed)
        rep = report(lines, tmp_path / "o.jsonl")
        assert rep["analysis_unit"]["variance"] == "delta method over units"
        check_exact(rep, d)
        # the clustering is real: design effects well above 1
        assert metric(rep, "latency_ms")["by_variant"]["control"]["design_effect"] > 3


def test_one_request_per_unit_is_scipy(tmp_path):
    lines, d = simulate(1003, units=4000, per_unit=False)
    rep = report(lines, tmp_path / "one.jsonl")
    t, c = d["treatment"], d["control"]
    w = stats.ttest_ind(t["lat"], c["lat"], equal_var=False)
    cmp = metric(rep, "latency_ms")["comparisons"][0]
    close(cmp["statistic"], w.statistic)
    close(cmp["p_value"], w.pvalue)
    for name, key in (("click", "click"), ("error_rate", "err")):
        table = [[t[key].sum(), len(t[key]) - t[key].sum()],
                 [c[key].sum(), len(c[key]) - c[key].sum()]]
        x = stats.chi2_contingency(table, correction=False)
        cm = metric(rep, name)["comparisons"][0]
        close(cm["statistic"], x[0])
        close(cm["p_value"], x[1])
        close(cm["design_effect"], 1.0)
    obs = [len(c["lat"]), len(t["lat"])]
    close(rep["srm"]["chi2"], stats.chisquare(obs).statistic)
    close(rep["srm"]["p_value"], stats.chisquare(obs).pvalue)


def bucket_oracle(x, groups, names):
    """The delta method over the pseudo-unit buckets the report puts the units in."""
    b = np.array([unit_key(names[g]) >> 54 for g in groups])
    return delta_var(x, b), b


def test_buckets_past_the_per_unit_cap(tmp_path):
    seed = 1004
    lines, d = simulate(seed)
    exact = report(lines, tmp_path / "e.jsonl")
    rep = report(lines, tmp_path / "b.jsonl", "--max-unit-sums", "64")
    assert "pseudo-unit buckets" in rep["analysis_unit"]["variance"]
    names = [f"u{seed}-{i}" for i in range(1500)]
    lat = metric(rep, "latency_ms")
    vs = {}
    for v in ("treatment", "control"):
        x = d[v]
        (var, df), b = bucket_oracle(x["lat"], x["unit"], names)
        vs[v] = (var, df)
        by = lat["by_variant"][v]
        assert by["variance_from"] == "pseudo-unit buckets" and by["buckets"] == df + 1
        close(by["se_mean"], var ** 0.5)
        # against the exact per-unit figure. Given the per-unit residuals e_i, the buckets
        # sum them in random groups: sum_b E_b^2 = sum_i e_i^2 + 2 sum_(i<j, same bucket)
        # e_i e_j, the cross term has mean 0 and variance (2/K)((sum e^2)^2 - sum e^4), so
        # the bucketed variance is the exact one within a relative sd of
        # sqrt(2/K (1 - sum e^4 / (sum e^2)^2)), and the standard error within half that.
        ids, inv = np.unique(x["unit"], return_inverse=True)
        e = (np.bincount(inv, weights=x["lat"]) - x["lat"].mean() * np.bincount(inv))
        rel_sd = 0.5 * (2 / 1024 * (1 - (e ** 4).sum() / (e ** 2).sum() ** 2)) ** 0.5
        m, k = len(ids), df + 1
        factor = ((k / (k - 1)) / (m / (m - 1))) ** 0.5  # the two small-sample factors
        se_exact = metric(exact, "latency_ms")["by_variant"][v]["se_mean"]
        ratio = by["se_mean"] / se_exact
        print(f"\n{v}: bucketed/exact SE {ratio:.4f}, tolerance {factor:.4f} +- "
              f"{4 * rel_sd:.4f} ({k} buckets used of 1024)")
        assert abs(ratio - factor) <= 4 * rel_sd
    cmp = lat["comparisons"][0]
    tstat, df, p = welch_from(vs["treatment"][0], vs["treatment"][1], vs["control"][0],
                              vs["control"][1], d["treatment"]["lat"].mean() -
                              d["control"]["lat"].mean())
    close(cmp["statistic"], tstat)
    close(cmp["p_value"], p)
    # bucketing does not keep the exact reduction to scipy with one request per unit
    # (the buckets are not the units), which is why small logs keep exact per-unit sums


def test_split_check_on_a_hash_sample_past_the_unit_cap(tmp_path):
    seed = 1005
    lines, d = simulate(seed, units=3000)
    rep = report(lines, tmp_path / "s.jsonl", "--max-units", "256")
    srm = rep["srm"]
    level = round(-np.log2(srm["sample"]))
    assert level >= 3 and "hash sample" in rep["analysis_unit"]["srm_counts"]
    names = [f"u{seed}-{i}" for i in range(3000)]
    obs = []
    for v in ("control", "treatment"):
        units = set(d[v]["unit"].tolist())
        obs.append(sum(1 for u in units if unit_key(names[u]) & ((1 << level) - 1) == 0))
    assert srm["observed"] == obs
    x = stats.chisquare(obs)
    close(srm["chi2"], x.statistic)
    close(srm["p_value"], x.pvalue)
    for v in rep["variants"]:
        assert v["units_estimated"] is True
    # the figures that do not depend on the set are unchanged
    full = report(lines, tmp_path / "f.jsonl")
    assert [v["requests"] for v in full["variants"]] == [v["requests"] for v in rep["variants"]]
    assert full["srm"]["observed"] == [len(set(d[v]["unit"].tolist()))
                                       for v in ("control", "treatment")]


# ---- the live proxy ---------------------------------------------------------------------

LIVE_YAML = """workers: 2
log:
  error: stderr
  level: info
backends:
  model-a: {servers: [%s]}
  model-b: {servers: [%s]}
experiments:
  - name: ranker
    match: {path_prefix: /predict}
    unit: {header: X-User-Id}
    variants:
      - {name: control, backend: model-a, weight: 50}
      - {name: treatment, backend: model-b, weight: 50}
    metrics:
      - {name: error_rate, kind: binary, source: status_5xx, goal: decrease, guardrail: true}
      - {name: latency_ms, kind: continuous, source: latency_ms, goal: decrease, guardrail: true}
"""


def test_live_counts_distinct_units_and_analyses_at_the_unit(procs, models, yaml_config):
    """Through the proxy (two workers, so a unit's requests reach both): /experiments counts
    each variant's distinct units exactly, and the live report analyses at the unit."""
    from harness import YAML_FRONT, bucket, http, parallel_pipelined, user_request, wait_until
    a, b = models
    proxy = procs.proxy(yaml_config(YAML_FRONT + LIVE_YAML % (a.addr, b.addr)))
    rng = np.random.default_rng(5)
    users = [f"live-{i}" for i in range(600)]
    reqs, who = [], []
    for u in users:
        for _ in range(int(rng.geometric(0.25))):
            reqs.append(user_request(u))
            who.append(u)
    order = rng.permutation(len(reqs))
    resps = parallel_pipelined(proxy.port, [reqs[i] for i in order], nconns=4, batch=100)
    assert all(r.status == 200 for r in resps)
    want = {"control": set(), "treatment": set()}
    for u in who:
        want["control" if bucket("ranker", u) < 5000 else "treatment"].add(u)

    def live():
        r = http(proxy.admin_port, "GET", "/experiments")
        return {v["name"]: v for v in r.json()["experiments"][0]["variants"]}

    wait_until(lambda: sum(v.get("requests", 0) for v in live().values()) == len(reqs),
               timeout=10, what="live counts")
    got = live()
    for name in ("control", "treatment"):
        assert got[name]["units"] == len(want[name]), (name, got[name], len(want[name]))
    r = http(proxy.admin_port, "GET", "/experiments/ranker/report?format=json")
    assert r.status == 200, r
    rep = r.json()
    assert rep["analysis_unit"]["unit"] == "header X-User-Id"
    close(rep["analysis_unit"]["requests_per_unit"], len(reqs) / len(users), 1e-12)
    assert rep["srm"]["observed"] == [len(want["control"]), len(want["treatment"])]
    assert {m["name"] for m in rep["metrics"]} == {"latency_ms", "error_rate"}
    for m in rep["metrics"]:
        for name in ("control", "treatment"):
            by = m["by_variant"][name]
            assert by["units"] == len(want[name]) and by["variance_from"] == "units", (m, by)
            close(by["values_per_unit"], len([u for u in who if u in want[name]]) /
                  len(want[name]), 1e-12)


def test_split_check_per_weight_epoch_with_returning_units(tmp_path):
    """A ramp (90/10, then 50/50) moves returning units into the canary: each epoch's distinct
    units are expected in its own weights' shares, so a healthy ramp is no mismatch, and
    losing a tenth of the canary's units in the second epoch is one."""
    rng = np.random.default_rng(11)
    b = rng.random(20000)
    reps = 1 + rng.geometric(0.3, (2, 20000))

    def log(drop):
        lines = [json.dumps({"v": 1, "type": "config", "ts": TS % 0, "generation": 1,
                             "exp": EXP, "weights": {"control": 90, "canary": 10}})]
        for i in range(10000):
            v = "canary" if b[i] >= 0.9 else "control"
            lines += [f'{{"v":1,"type":"request","ts":"{TS % 1}","exp":"{EXP}","variant":"{v}",'
                      f'"unit":"u{i}","status":200,"latency_ms":10}}'] * int(reps[0, i])
        lines.append(json.dumps({"v": 1, "type": "config", "ts": TS % 2, "generation": 2,
                                 "exp": EXP, "weights": {"control": 50, "canary": 50}}))
        for i in range(20000):
            v = "canary" if b[i] >= 0.5 else "control"
            if drop and v == "canary" and i % 10 == 0:
                continue
            lines += [f'{{"v":1,"type":"request","ts":"{TS % 3}","exp":"{EXP}","variant":"{v}",'
                      f'"unit":"u{i}","status":200,"latency_ms":10}}'] * int(reps[1, i])
        return lines

    for drop in (False, True):
        srm = report(log(drop), tmp_path / "ramp.jsonl")["srm"]
        first = [(b[:10000] < 0.9).sum(), (b[:10000] >= 0.9).sum()]
        second = [(b < 0.5).sum(), ((b >= 0.5) & ((np.arange(20000) % 10 != 0) | (not drop))).sum()]
        obs = [int(first[0] + second[0]), int(first[1] + second[1])]
        exp = [sum(first) * 0.9 + sum(second) * 0.5, sum(first) * 0.1 + sum(second) * 0.5]
        assert srm["observed"] == obs
        for got, want in zip(srm["expected"], exp):
            close(got, want)
        x = stats.chisquare(obs, exp)
        close(srm["chi2"], x.statistic)
        assert srm["flagged"] is drop, srm


SEQ_YAML = """listen:
  - addr: 127.0.0.1:18080
backends:
  a: {servers: [127.0.0.1:19001]}
experiments:
  - name: aa
    match: {path_prefix: /predict}
    unit: {header: X-User-Id}
    variants:
      - {name: control, backend: a, weight: 50}
      - {name: treatment, backend: a, weight: 50}
    metrics:
      - {name: click, kind: binary, source: outcome, goal: increase, primary: true}
      - {name: latency_ms, kind: continuous, source: latency_ms, goal: decrease}
    decision: {alpha: 0.05, sequential: true, sequential_n: 1500}
"""


def test_aa_sequential_looks_stay_at_alpha(tmp_path):
    """Four looks (a quarter of the units at a time) at A/A traffic of returning units, with
    the configuration's sequential tests: the chance of ever rejecting stays at or below
    alpha (plus 3 binomial sigma), while the fixed-horizon p-values at the same looks reject
    more often. The unit is the configured one."""
    conf = tmp_path / "seq.yaml"
    conf.write_text(SEQ_YAML)
    runs, seq, fixed = 100, {"click": 0, "latency_ms": 0}, {"click": 0, "latency_ms": 0}
    for seed in range(7000, 7000 + runs):
        lines, _ = simulate(seed)
        cut = [i for i, line in enumerate(lines) if f'"unit":"u{seed}-' in line]
        ever_s, ever_f = set(), set()
        for q in (1, 2, 3, 4):
            end = cut[min(len(cut) - 1, len(cut) * q // 4)] + 1 if q < 4 else len(lines)
            rep = report(lines[:end], tmp_path / "look.jsonl", "-c", str(conf))
            assert rep["analysis_unit"]["unit"] == "header X-User-Id"
            for name in seq:
                c = metric(rep, name)["comparisons"][0]
                assert c["p_value_sequential"] is not None, c
                if c["p_value_sequential"] < ALPHA:
                    ever_s.add(name)
                if c["p_value"] < ALPHA:
                    ever_f.add(name)
        for name in seq:
            seq[name] += name in ever_s
            fixed[name] += name in ever_f
    print(f"\nA/A, 4 looks over {runs} runs: sequential {seq}, fixed-horizon {fixed}")
    bound = runs * ALPHA + 3 * (runs * ALPHA * (1 - ALPHA)) ** 0.5
    for name in seq:
        assert seq[name] <= bound, seq
        assert fixed[name] >= seq[name]
