"""The data path's assignment cost in the live proxy: runs BINARY under callgrind, collecting
only inside proxy.c's assign_variant() (everything it calls included), sends 5,000 requests of
distinct users to one experiment of three variants in the default hash mode, and prints the
instructions per request. Run it on two builds to compare them:

    /usr/bin/python3 tests/bench/assign_cost.py build/abgate [OTHER_BUILD/abgate ...]
"""

import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration"))
import harness  # noqa: E402

N = 5000
CONFIG = """listen:
  - addr: 127.0.0.1:%d
admin:
  addr: 127.0.0.1:%d
backends:
  m: {servers: [127.0.0.1:%d]}
experiments:
  - name: ranker-v2
    unit: {header: X-User-Id}
    variants:
      - {name: control, backend: m, weight: 50}
      - {name: t1, backend: m, weight: 25}
      - {name: t2, backend: m, weight: 25}
"""


def measure(binary, tmp):
    bport, port, aport = harness.free_port(), harness.free_port(), harness.free_port()
    cfg = os.path.join(tmp, "assign.yaml")
    out = os.path.join(tmp, "callgrind.out")
    with open(cfg, "w") as f:
        f.write(CONFIG % (port, aport, bport))
    be = subprocess.Popen([binary, "backend", "--port", str(bport), "--model", "m"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    px = subprocess.Popen(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                           "--toggle-collect=assign_variant", binary, "serve", "-c", cfg],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        harness.wait_until(lambda: harness.port_open(port) and harness.port_open(bport),
                           timeout=60, what="proxy under callgrind")
        time.sleep(0.5)
        reqs = [harness.user_request("user-%07d" % (i * 7919)) for i in range(N)]
        rs = harness.parallel_pipelined(port, reqs, nconns=1, batch=100)
        assert all(r.status == 200 for r in rs)
    finally:
        px.terminate()
        px.wait()
        be.terminate()
        be.wait()
    with open(out) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1]) / N
    raise AssertionError("no totals in " + out)


def main():
    for binary in sys.argv[1:] or [harness.ABGATE_BIN]:
        with tempfile.TemporaryDirectory() as tmp:
            print("%-40s %8.1f instructions per request" % (binary, measure(binary, tmp)))


if __name__ == "__main__":
    main()
