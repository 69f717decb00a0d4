"""The bounded soak (scripts/soak) for 60 s: wrk load with varying users, backend restarts,
reloads, log rotations and slow clients; the proxy must not grow its RSS or descriptors, must
not die, and must drain and exit 0 at the end. This is how `make test` runs the soak."""

import os
import re
import subprocess
import sys

from harness import ABGATE_BIN, REPO


def test_soak_60_seconds():
    env = dict(os.environ, ABGATE_BIN=ABGATE_BIN)
    p = subprocess.run([os.path.join(REPO, "scripts", "soak"), "--duration", "60"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, timeout=300)
    out = p.stdout.decode("utf-8", "replace")
    sys.stdout.write(out)  # shown by pytest when the test fails
    assert p.returncode == 0, out
    assert "soak: PASS" in out, out
    assert re.search(r"^soak: fds\b.*warm-up \d+, end \d+", out, re.M), out
    assert re.search(r"^soak: RSS: warm-up \d+ KiB, end \d+ KiB", out, re.M), out
