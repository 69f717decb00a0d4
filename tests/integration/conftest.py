"""Fixtures for the integration tier: every test gets its own processes, ports and files, and
everything it started is killed at teardown, also when the test fails."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import Config, Experiment, ProcessGroup, free_port  # noqa: E402


@pytest.fixture
def procs(tmp_path):
    if not os.access(harness.ABGATE_BIN, os.X_OK):
        pytest.fail("abgate binary not found at %s (build it with make, or set ABGATE_BIN)"
                    % harness.ABGATE_BIN)
    group = ProcessGroup(tmp_path)
    try:
        yield group
    finally:
        group.close()


@pytest.fixture
def models(procs):
    """Two model backends: model-a (the control's) and model-b (the treatment's)."""
    return procs.backend("model-a"), procs.backend("model-b")


@pytest.fixture
def make_config(tmp_path):
    """Builds a Config on fresh ports, with the outcome log in tmp_path."""
    def make(backends, experiments, name="abgate.yaml", **kw):
        kw.setdefault("outcomes", str(tmp_path / "outcomes.jsonl"))
        return Config(tmp_path / name, free_port(), free_port(), backends, experiments, **kw)
    return make


def ab_experiment(control=80, treatment=20, **kw):
    """The usual two-arm experiment on /predict keyed on X-User-Id."""
    return Experiment(kw.pop("name", "ranker"),
                      [("control", "model-a", control), ("treatment", "model-b", treatment)],
                      **kw)


@pytest.fixture
def ab_proxy(procs, models, make_config):
    """Starts a proxy in front of model-a/model-b with one experiment (control first).
    Call it with the experiment's keyword arguments; returns (proxy, experiment)."""
    a, b = models

    def start(control=80, treatment=20, workers=1, default_backend=None, limits=None, **kw):
        exp = ab_experiment(control, treatment, **kw)
        cfg = make_config({"model-a": a.addr, "model-b": b.addr}, [exp], workers=workers,
                          default_backend=default_backend, limits=limits)
        return procs.proxy(cfg), exp
    return start


@pytest.fixture
def yaml_config(tmp_path):
    """Builds a YamlConfig (text given whole, @PORT@/@ADMIN@ on fresh ports) in tmp_path."""
    def make(body, name="abgate.yaml", outcomes=None):
        return harness.YamlConfig(tmp_path / name, body, outcomes=outcomes)
    return make


@pytest.fixture
def raw_upstream(procs):
    """Builds a harness.RawUpstream (records every byte it receives; reply(raw_conn, request)
    answers complete requests, 200 "ok" by default), closed with the test's processes."""
    def make(reply=None):
        u = harness.RawUpstream(reply)
        procs.upstreams.append(u)
        return u
    return make
