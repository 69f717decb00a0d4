"""Helpers for the integration tier: free ports, real processes (model backends and the proxy)
on 127.0.0.1, temporary configuration files, a raw-socket HTTP/1.1 client, a small in-process
HTTP upstream for header and streaming checks, and the cohort hash recomputed in Python.

Every process started here is registered with a ProcessGroup, and the group kills whatever is
still alive at teardown, whether the test passed or not.
"""

import atexit
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ABGATE_BIN = os.environ.get("ABGATE_BIN") or os.path.join(REPO, "build", "abgate")
HOST = "127.0.0.1"

# ---------------------------------------------------------------------------------------------
# The cohort hash, as DESIGN.md and the README define it.

_M64 = (1 << 64) - 1
BUCKETS = 10000


def abgate_hash(data):
    """64-bit FNV-1a over the bytes followed by the MurmurHash3 fmix64 finalizer."""
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & _M64
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _M64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _M64
    h ^= h >> 33
    return h


def bucket(salt, unit):
    if isinstance(salt, str):
        salt = salt.encode()
    if isinstance(unit, str):
        unit = unit.encode()
    return abgate_hash(salt + b":" + unit) % BUCKETS


def weight_bp(weight):
    """A percentage with at most two decimals as integer basis points."""
    return int(round(float(weight) * 100))


def variant_for(variants, salt, unit):
    """variants: [(name, weight_percent), ...] in declared order; returns the owning name."""
    b = bucket(salt, unit)
    lo = 0
    for name, w in variants:
        hi = lo + weight_bp(w)
        if lo <= b < hi:
            return name
        lo = hi
    raise AssertionError("bucket %d not covered by %r" % (b, variants))


# ---------------------------------------------------------------------------------------------
# Ports and waiting.

_handed_out = set()
_port_lock = threading.Lock()


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago and not handed out before here."""
    with _port_lock:
        for _ in range(200):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((HOST, 0))
                port = s.getsockname()[1]
            finally:
                s.close()
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise RuntimeError("no free port found")


def wait_until(pred, timeout=5.0, interval=0.005, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def port_open(port, host=HOST):
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# A raw HTTP/1.1 client.


class Response:
    def __init__(self, version, status, reason, headers, body):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # [(name, value)] in received order
        self.body = body

    def header(self, name, default=None):
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def json(self):
        return json.loads(self.body.decode())

    def __repr__(self):
        return "<Response %s %d %r body=%r>" % (self.version, self.status, self.headers,
                                                self.body[:200])


class ConnectionClosed(Exception):
    pass


class HttpConn:
    """One client connection that writes raw bytes and reads responses in order."""

    def __init__(self, port, host=HOST, timeout=10.0, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = bytearray()
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, n=65536):
        if self.eof:
            raise ConnectionClosed("connection closed by peer")
        chunk = self.sock.recv(n)
        if not chunk:
            self.eof = True
            raise ConnectionClosed("connection closed by peer")
        self.buf += chunk

    def _read_until(self, delim):
        start = 0
        while True:
            i = self.buf.find(delim, start)
            if i >= 0:
                out = bytes(self.buf[:i + len(delim)])
                del self.buf[:i + len(delim)]
                return out
            start = max(0, len(self.buf) - len(delim) + 1)
            self._fill()

    def _read_exact(self, n):
        while len(self.buf) < n:
            self._fill(max(65536, n - len(self.buf)))
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def _read_to_eof(self):
        try:
            while True:
                self._fill()
        except ConnectionClosed:
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def read_head(self):
        head = self._read_until(b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")
        m = re.match(r"^(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
        if not m:
            raise AssertionError("bad status line %r" % lines[0])
        headers = []
        for line in lines[1:]:
            if not line:
                continue
            n, _, v = line.partition(":")
            headers.append((n, v.strip()))
        return m.group(1), int(m.group(2)), m.group(3) or "", headers

    def read_response(self, head_request=False, allow_1xx=False):
        """Reads one response; 1xx interim responses are returned only when allow_1xx."""
        while True:
            version, status, reason, headers = self.read_head()
            resp = Response(version, status, reason, headers, b"")
            if 100 <= status < 200 and not allow_1xx:
                continue
            break
        if head_request or 100 <= status < 200 or status in (204, 304):
            return resp
        te = resp.header("Transfer-Encoding")
        cl = resp.header("Content-Length")
        if te is not None and "chunked" in te.lower():
            resp.body = self._read_chunked()
        elif cl is not None:
            resp.body = self._read_exact(int(cl))
        else:
            resp.body = self._read_to_eof()
        return resp

    def _read_chunked(self):
        body = bytearray()
        while True:
            line = self._read_until(b"\r\n")
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while self._read_until(b"\r\n") != b"\r\n":
                    pass
                return bytes(body)
            body += self._read_exact(size)
            if self._read_exact(2) != b"\r\n":
                raise AssertionError("chunk not followed by CRLF")

    def request(self, method="GET", path="/", headers=None, body=None, version="HTTP/1.1"):
        self.send(build_request(method, path, headers, body, version))
        return self.read_response(head_request=(method == "HEAD"))

    def is_closed(self, timeout=2.0):
        """True when the peer closes the connection (reads EOF) within timeout."""
        if self.eof:
            return True
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(4096)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        finally:
            self.sock.settimeout(old)
        if chunk:
            self.buf += chunk
            return False
        self.eof = True
        return True


def build_request(method="GET", path="/", headers=None, body=None, version="HTTP/1.1"):
    """Request bytes; adds Host (unless given) and Content-Length for a body (unless the
    headers already frame it)."""
    if isinstance(body, str):
        body = body.encode()
    hdrs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {n.lower() for n, _ in hdrs}
    if "host" not in names:
        hdrs.insert(0, ("Host", "test.local"))
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        hdrs.append(("Content-Length", str(len(body))))
    out = "%s %s %s\r\n" % (method, path, version)
    out += "".join("%s: %s\r\n" % (n, v) for n, v in hdrs)
    out += "\r\n"
    data = out.encode("latin-1")
    if body is not None:
        data += body
    return data


def http(port, method="GET", path="/", headers=None, body=None, timeout=10.0):
    """One request on a fresh connection."""
    with HttpConn(port, timeout=timeout) as c:
        return c.request(method, path, headers, body)


def pipelined(conn, requests, batch=100):
    """Sends raw requests in pipelined batches and returns the responses in order."""
    out = []
    for i in range(0, len(requests), batch):
        part = requests[i:i + batch]
        conn.send(b"".join(part))
        for _ in part:
            out.append(conn.read_response())
    return out


def parallel_pipelined(port, requests, nconns=4, batch=100):
    """Spreads requests over nconns keep-alive connections (each pipelining batches), in
    threads. Returns the responses in the order of requests."""
    results = [None] * len(requests)
    errors = []

    def run(idx):
        try:
            with HttpConn(port, timeout=20) as c:
                mine = list(range(idx, len(requests), nconns))
                resps = pipelined(c, [requests[i] for i in mine], batch)
                for i, r in zip(mine, resps):
                    results[i] = r
        except Exception as e:  # reported to the caller below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(nconns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if errors:
        raise errors[0]
    assert all(r is not None for r in results), "some responses missing"
    return results


def user_request(uid, path="/predict", extra=None):
    headers = [("X-User-Id", uid)]
    if extra:
        headers += list(extra)
    return build_request("GET", path, headers)


# ---------------------------------------------------------------------------------------------
# Processes.


_live = set()


@atexit.register
def _kill_leftovers():
    for p in list(_live):
        p.kill()


class Proc:
    def __init__(self, name, argv, log_path, cwd=None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.p = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, cwd=cwd,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        _live.add(self)

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            self.p.send_signal(sig)

    def log(self):
        self._log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, timeout=5.0):
        """SIGTERM, then SIGKILL if it has not exited in timeout. Returns the exit status."""
        if self.alive():
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.p.wait()

    def kill(self):
        if self.alive():
            try:
                self.p.kill()
            except ProcessLookupError:
                pass
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def close(self):
        self.kill()
        _live.discard(self)
        try:
            self._log.close()
        except OSError:
            pass


class ProcessGroup:
    """Owns every process a test starts; close() kills them all."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.procs = []
        self.upstreams = []
        self._n = 0

    def _logfile(self, name):
        self._n += 1
        return str(self.tmp / ("%02d-%s.log" % (self._n, name)))

    def backend(self, model, latency_ms=None, error_rate=None, port=None):
        port = port or free_port()
        argv = [ABGATE_BIN, "backend", "--port", str(port), "--model", model, "--host", HOST]
        if latency_ms is not None:
            argv += ["--latency-ms", str(latency_ms)]
        if error_rate is not None:
            argv += ["--error-rate", str(error_rate)]
        p = Proc("backend-" + model, argv, self._logfile("backend-" + model))
        self.procs.append(p)
        b = Backend(p, model, port)
        wait_until(lambda: _healthz(port) or (not p.alive() and _died(p)), timeout=5,
                   what="backend %s on port %d" % (model, port))
        return b

    def proxy(self, config, name="proxy"):
        """config: a Config. Writes it and starts `abgate serve -c FILE`."""
        config.write()
        p = Proc(name, [ABGATE_BIN, "serve", "-c", config.path], self._logfile(name),
                 cwd=str(self.tmp))
        self.procs.append(p)
        px = Proxy(p, config)
        px.wait_ready()
        return px

    def upstream(self, handler=None):
        u = PyUpstream(handler)
        self.upstreams.append(u)
        return u

    def close(self):
        for p in self.procs:
            p.close()
        for u in self.upstreams:
            u.close()


def _died(p):
    raise AssertionError("%s exited early with %s:\n%s" % (p.name, p.p.returncode, p.log()))


def _healthz(port):
    try:
        return http(port, "GET", "/healthz", timeout=1).status == 200
    except OSError:
        return False
    except ConnectionClosed:
        return False


class Backend:
    def __init__(self, proc, model, port):
        self.proc = proc
        self.model = model
        self.port = port
        self.addr = "%s:%d" % (HOST, port)


class Config:
    """An abgate YAML file in a temporary directory, built from a few parameters."""

    def __init__(self, path, port, admin_port, backends, experiments, default_backend=None,
                 workers=1, outcomes=None, limits=None, extra=""):
        self.path = str(path)
        self.port = port
        self.admin_port = admin_port
        self.backends = backends        # {name: "127.0.0.1:port"}
        self.experiments = experiments  # [Experiment]
        self.default_backend = default_backend
        self.workers = workers
        self.outcomes = outcomes
        self.limits = limits or {}
        self.extra = extra

    def text(self):
        y = ["listen:", "  - addr: %s:%d" % (HOST, self.port),
             "admin:", "  addr: %s:%d" % (HOST, self.admin_port),
             "workers: %d" % self.workers]
        if os.environ.get("ABGATE_TEST_IO_URING") == "false" and "io_uring:" not in self.extra:
            y.append("io_uring: false")  # the pass that runs the data path call by call
        y += ["log:", "  error: stderr", "  level: info"]
        if self.outcomes:
            y.append("  outcomes: %s" % self.outcomes)
        if self.limits:
            y.append("limits:")
            y += ["  %s: %s" % (k, v) for k, v in self.limits.items()]
        y.append("backends:")
        for name, addr in self.backends.items():
            y += ["  %s:" % name, "    servers: [%s]" % addr]
        if self.default_backend:
            y.append("default_backend: %s" % self.default_backend)
        if self.experiments:
            y.append("experiments:")
            for e in self.experiments:
                y += e.lines()
        return "\n".join(y) + "\n" + self.extra

    def write(self, text=None):
        """Replaces the file atomically (write a sibling, then rename over it)."""
        data = self.text() if text is None else text
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(data)
        os.replace(tmp, self.path)


class Experiment:
    def __init__(self, name, variants, path_prefix="/predict", unit=("header", "X-User-Id"),
                 fallback=None, salt=None, allow_force=None, host=None, method=None,
                 fallback_cookie=None):
        self.name = name
        self.variants = variants  # [(name, backend, weight)]
        self.path_prefix = path_prefix
        self.unit = unit
        self.fallback = fallback
        self.salt = salt
        self.allow_force = allow_force
        self.host = host
        self.method = method
        self.fallback_cookie = fallback_cookie

    @property
    def effective_salt(self):
        return self.salt if self.salt is not None else self.name

    def weights(self):
        return [(n, w) for n, _, w in self.variants]

    def expect(self, unit):
        return variant_for(self.weights(), self.effective_salt, unit)

    def lines(self):
        match = []
        if self.path_prefix is not None:
            match.append("path_prefix: %s" % self.path_prefix)
        if self.host is not None:
            match.append("host: %s" % self.host)
        if self.method is not None:
            match.append("method: %s" % self.method)
        y = ["  - name: %s" % self.name]
        if match:
            y.append("    match: {%s}" % ", ".join(match))
        y.append("    unit: {%s: %s}" % self.unit)
        if self.fallback:
            y.append("    fallback: %s" % self.fallback)
        if self.fallback_cookie:
            y.append("    fallback_cookie: %s" % self.fallback_cookie)
        if self.salt is not None:
            y.append("    salt: %s" % self.salt)
        if self.allow_force is not None:
            y.append("    allow_force: %s" % ("true" if self.allow_force else "false"))
        y.append("    variants:")
        for n, b, w in self.variants:
            y.append("      - {name: %s, backend: %s, weight: %s}" % (n, b, w))
        return y


class Proxy:
    def __init__(self, proc, config):
        self.proc = proc
        self.config = config
        self.port = config.port
        self.admin_port = config.admin_port

    def wait_ready(self, timeout=5.0):
        def ready():
            if not self.proc.alive():
                raise AssertionError("proxy exited with %s:\n%s"
                                     % (self.proc.p.returncode, self.proc.log()))
            try:
                r = http(self.admin_port, "GET", "/readyz", timeout=1)
            except (OSError, ConnectionClosed):
                return False
            return r.status == 200 and port_open(self.port)
        wait_until(ready, timeout=timeout, what="proxy readiness")

    def log(self):
        return self.proc.log()

    def admin(self, method, path, body=None, headers=None):
        return http(self.admin_port, method, path, headers=headers, body=body)

    def reload_admin(self):
        return self.admin("POST", "/reload")

    def reloaded_count(self):
        return len(re.findall(r"reloaded .*generation \d+", self.log()))

    def sighup_and_wait(self, generation, timeout=5.0):
        """Sends SIGHUP and waits for the log line announcing the given generation."""
        pat = re.compile(r"reloaded .*: generation %d\b" % generation)
        self.proc.signal(signal.SIGHUP)
        wait_until(lambda: pat.search(self.log()), timeout=timeout,
                   what="reload to generation %d" % generation)

    def outcomes(self, predicate=None):
        path = self.config.outcomes
        if not path or not os.path.exists(path):
            return []
        recs = []
        with open(path) as f:
            for line in f:
                if line.endswith("\n"):
                    recs.append(json.loads(line))
        if predicate:
            recs = [r for r in recs if predicate(r)]
        return recs

    def wait_outcomes(self, predicate, count, timeout=5.0):
        """Waits until at least count records match (the log is written in batches) and
        returns the matching records."""
        def enough():
            recs = self.outcomes(predicate)
            return recs if len(recs) >= count else None
        return wait_until(enough, timeout=timeout, what="%d outcome records" % count)

    def stop(self):
        return self.proc.stop()


# ---------------------------------------------------------------------------------------------
# A small HTTP upstream written in Python, for what the model backend cannot do: echo the
# request headers it received, send hop-by-hop headers, and stream large bodies.


class UpstreamRequest:
    def __init__(self, method, target, version, headers, body):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.body = body

    def header_all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]


class PyUpstream:
    """Threaded HTTP/1.1 server on a free 127.0.0.1 port. handler(req, conn_sock) returns None
    after writing the response itself, or a tuple (status, headers, body)."""

    def __init__(self, handler=None):
        self.handler = handler or echo_handler
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((HOST, 0))
        self.lsock.listen(128)
        self.port = self.lsock.getsockname()[1]
        self.addr = "%s:%d" % (HOST, self.port)
        self.requests = []
        self.connections = 0
        self.bytes_sent = 0
        self.lock = threading.Lock()
        self.closed = False
        self.socks = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.closed:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.socks.append(s)
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        rf = s.makefile("rb")
        try:
            while True:
                line = rf.readline(65536)
                if not line:
                    return
                method, target, version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
                headers = []
                while True:
                    h = rf.readline(65536).decode("latin-1")
                    if h in ("\r\n", "\n", ""):
                        break
                    n, _, v = h.partition(":")
                    headers.append((n, v.strip()))
                req = UpstreamRequest(method, target, version, headers, b"")
                te = req.header_all("Transfer-Encoding")
                cl = req.header_all("Content-Length")
                if te and "chunked" in te[-1].lower():
                    body = bytearray()
                    while True:
                        size = int(rf.readline().split(b";")[0], 16)
                        if size == 0:
                            while rf.readline() not in (b"\r\n", b""):
                                pass
                            break
                        body += rf.read(size)
                        rf.read(2)
                    req.body = bytes(body)
                elif cl:
                    req.body = rf.read(int(cl[0]))
                with self.lock:
                    self.requests.append(req)
                res = self.handler(req, s)
                if res is not None:
                    status, hdrs, body = res
                    self.send_response(s, status, hdrs, body, head_only=(method == "HEAD"))
                conn = ",".join(req.header_all("Connection")).lower()
                if version == "HTTP/1.0" and "keep-alive" not in conn or "close" in conn:
                    return
        except (OSError, ValueError):
            return
        finally:
            try:
                rf.close()
                s.close()
            except OSError:
                pass

    def send_response(self, s, status, headers, body, head_only=False):
        head = "HTTP/1.1 %d X\r\n" % status
        names = {n.lower() for n, _ in headers}
        if "content-length" not in names and "transfer-encoding" not in names:
            headers = list(headers) + [("Content-Length", str(len(body)))]
        head += "".join("%s: %s\r\n" % (n, v) for n, v in headers) + "\r\n"
        self.sendall(s, head.encode("latin-1") + (b"" if head_only else body))

    def sendall(self, s, data):
        view = memoryview(data)
        while view:
            n = s.send(view[:262144])
            with self.lock:
                self.bytes_sent += n
            view = view[n:]

    def close(self):
        self.closed = True
        try:
            self.lsock.close()
        except OSError:
            pass
        with self.lock:
            socks = list(self.socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass


def echo_handler(req, sock, name="echo", extra_headers=()):
    """Answers with the request it received as JSON: headers in order, body length."""
    body = json.dumps({"upstream": name, "method": req.method, "target": req.target,
                       "version": req.version, "headers": req.headers,
                       "body_len": len(req.body)}).encode()
    return 200, [("Content-Type", "application/json"), ("X-Upstream", name)] + list(
        extra_headers), body


def make_echo(name, extra_headers=()):
    return lambda req, sock: echo_handler(req, sock, name, extra_headers)


def big_body(n):
    """n deterministic bytes (a repeating counter pattern, so shifts and losses show)."""
    unit = bytes(range(256)) * 4 + b"abgate"
    reps = n // len(unit) + 1
    return (unit * reps)[:n]


# ---------------------------------------------------------------------------------------------
# Additions for the operations, outcomes, TLS and admin-auth tests.


# The start of a YAML configuration for YamlConfig: the listener on @PORT@ and the admin API on
# @ADMIN@. It has no braces, so a str.format template may begin with it.
YAML_FRONT = ("listen:\n  - addr: 127.0.0.1:@PORT@\n"
              "admin:\n  addr: 127.0.0.1:@ADMIN@\n")


class YamlConfig(Config):
    """A configuration written out as given: the text may hold the placeholders @PORT@ and
    @ADMIN@, replaced by the client and admin ports picked for it. For what Config cannot
    express (TLS listeners, metrics, log.access, token files, https backends)."""

    def __init__(self, path, body, port=None, admin_port=None, outcomes=None):
        super().__init__(path, port or free_port(), admin_port or free_port(), {}, [],
                         outcomes=outcomes)
        self.body = body

    def text(self):
        return (self.body.replace("@PORT@", str(self.port))
                .replace("@ADMIN@", str(self.admin_port)))


def start_proxy(group, config, name="proxy", ready=True, auth=None, timeout=5.0):
    """Like ProcessGroup.proxy, for configurations whose admin API needs a bearer token
    (auth, used for the readiness check) or that should not be waited for (ready=False)."""
    config.write()
    p = Proc(name, [ABGATE_BIN, "serve", "-c", config.path], group._logfile(name),
             cwd=str(group.tmp))
    group.procs.append(p)
    px = Proxy(p, config)
    if ready:
        headers = [("Authorization", "Bearer " + auth)] if auth else None

        def up():
            if not p.alive():
                raise AssertionError("%s exited with %s:\n%s" % (name, p.p.returncode, p.log()))
            try:
                r = http(config.admin_port, "GET", "/readyz", headers=headers, timeout=1)
            except (OSError, ConnectionClosed):
                return False
            return r.status == 200 and port_open(config.port)
        wait_until(up, timeout=timeout, what="%s readiness" % name)
    return px


def parse_prometheus(text):
    """Samples of the Prometheus text format: {(name, ((label, value), ...)): float}, labels
    sorted by name. Raises on a line it cannot read, and on a sample seen twice."""
    samples = {}
    pat = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
    lab = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = pat.match(line)
        if not m:
            raise AssertionError("unreadable metrics line %r" % line)
        labels = []
        if m.group(3):
            pos = 0
            body = m.group(3)
            while pos < len(body):
                lm = lab.match(body, pos)
                if not lm:
                    raise AssertionError("unreadable labels in %r" % line)
                labels.append((lm.group(1), lm.group(2)))
                pos = lm.end()
        key = (m.group(1), tuple(sorted(labels)))
        if key in samples:
            raise AssertionError("sample twice: %r" % line)
        samples[key] = float(m.group(4))
    return samples


def metric_value(samples, name, **labels):
    """The value of the sample with exactly these labels, or None."""
    return samples.get((name, tuple(sorted(labels.items()))))


def metric_series(samples, name):
    """[(labels dict, value)] of every sample named name."""
    return [(dict(k[1]), v) for k, v in samples.items() if k[0] == name]


def abgate_pids():
    """The running processes whose executable is the abgate binary: {pid: (cmdline, cwd)}."""
    want = os.path.realpath(ABGATE_BIN)
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            exe = os.readlink("/proc/%s/exe" % d)
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
            cwd = os.readlink("/proc/%s/cwd" % d)
        except OSError:
            continue
        if exe.endswith(" (deleted)"):
            exe = exe[:-len(" (deleted)")]
        if exe == want:
            out[int(d)] = (cmd, cwd)
    return out


# ---------------------------------------------------------------------------------------------
# Additions for the robustness tests (framing, timeouts, crash): a strict request parser, a
# raw-socket upstream that records every byte it receives, and reading a connection to its end.

_TOKEN_RE = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_CHUNK_EXT_RE = re.compile(
    rb'^(;[!#$%&\'*+\-.^_`|~0-9A-Za-z]+(=([!#$%&\'*+\-.^_`|~0-9A-Za-z]+|"([^"\\\x00-\x08'
    rb'\x0a-\x1f\x7f]|\\[\x09\x20-\x7e\x80-\xff])*"))?)*$')


def _strict_fields(lines):
    """[(lowercase name, value)] of header lines; ValueError on any line a strict parser
    refuses (obs-fold, whitespace before the colon, a name that is not a token, control
    characters in the value)."""
    out = []
    for line in lines:
        if not line or line[:1] in b" \t":
            raise ValueError("obs-fold or empty field line")
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN_RE.match(name):
            raise ValueError("bad field name %r" % name)
        value = value.strip(b" \t")
        if any((c < 0x20 and c != 0x09) or c == 0x7F for c in value):
            raise ValueError("control character in %r" % name)
        out.append((name.lower(), value))
    return out


def _strict_chunked(data, pos):
    """End offset of a chunked body starting at data[pos], None when incomplete; ValueError
    on bad framing (size not 1-16 hex digits, bad extension, data not followed by CRLF)."""
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            if b"\n" in data[pos:] or len(data) - pos > 4096:
                raise ValueError("bad chunk-size line")
            return None
        line = data[pos:eol]
        m = re.match(rb"^([0-9A-Fa-f]{1,16})(.*)$", line, re.S)
        if not m or not _CHUNK_EXT_RE.match(m.group(2)):
            raise ValueError("bad chunk-size line %r" % line)
        size = int(m.group(1), 16)
        pos = eol + 2
        if size == 0:
            # trailer section: field lines up to an empty line
            while True:
                eol = data.find(b"\r\n", pos)
                if eol < 0:
                    return None
                if eol == pos:
                    return pos + 2
                _strict_fields([data[pos:eol]])
                pos = eol + 2
        if len(data) < pos + size + 2:
            if len(data) > pos + size and data[pos + size:pos + size + 1] != b"\r":
                raise ValueError("chunk data not followed by CRLF")
            return None
        if data[pos + size:pos + size + 2] != b"\r\n":
            raise ValueError("chunk data not followed by CRLF")
        pos += size + 2


def strict_request_length(data):
    """The length of the complete HTTP/1.x request at the start of data (bytes), None when
    more bytes are needed. Raises ValueError on anything a strict HTTP/1.1 parser refuses, so
    that a request only counts as complete when its framing is unambiguous."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        if b"\n" in data.replace(b"\r\n", b""):
            raise ValueError("bare LF")
        return None
    lines = data[:end].split(b"\r\n")
    for line in lines:
        if b"\r" in line or b"\n" in line:
            raise ValueError("bare CR or LF")
    parts = lines[0].split(b" ")
    if (len(parts) != 3 or not _TOKEN_RE.match(parts[0]) or not parts[1]
            or parts[2] not in (b"HTTP/1.0", b"HTTP/1.1")):
        raise ValueError("bad request line %r" % lines[0])
    fields = _strict_fields(lines[1:])
    hosts = [v for n, v in fields if n == b"host"]
    if len(hosts) > 1 or (parts[2] == b"HTTP/1.1" and not hosts):
        raise ValueError("Host missing or repeated")
    te = [v for n, v in fields if n == b"transfer-encoding"]
    cls = set()
    for n, v in fields:
        if n == b"content-length":
            for item in v.split(b","):
                item = item.strip(b" \t")
                if not item.isdigit():
                    raise ValueError("bad Content-Length %r" % v)
                cls.add(int(item))
    pos = end + 4
    if te:
        if cls or parts[2] == b"HTTP/1.0":
            raise ValueError("Transfer-Encoding with Content-Length or in HTTP/1.0")
        codings = [c.strip(b" \t").lower() for c in b",".join(te).split(b",")]
        if codings != [b"chunked"]:
            raise ValueError("Transfer-Encoding other than chunked")
        return _strict_chunked(data, pos)
    if len(cls) > 1:
        raise ValueError("differing Content-Length values")
    n = cls.pop() if cls else 0
    return pos + n if len(data) >= pos + n else None


class RawConn:
    """What one connection to a RawUpstream carried."""

    def __init__(self, sock):
        self.sock = sock
        self.data = bytearray()    # every byte received, in order
        self.requests = []         # the complete requests found in data (bytes each)
        self.malformed = None      # why the strict parser gave up, if it did
        self.closed = False        # the peer closed (EOF or reset)
        self.closed_at = None      # time.monotonic() when it did


def ok_reply(conn, req):
    """RawUpstream's default answer to a complete request: 200 with a short body."""
    conn.sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
                      b"X-Raw-Upstream: 1\r\n\r\nok\n")


class RawUpstream:
    """An upstream on a free 127.0.0.1 port that records every byte each connection carries
    (conns) and answers every request that a strict parser finds complete by calling
    reply(raw_conn, request_bytes), which writes to raw_conn.sock itself (ok_reply by default).
    Once a connection's bytes stop parsing, nothing more is answered on it, and
    raw_conn.malformed says why; the bytes are still recorded. close() is what
    ProcessGroup.close() calls, so it can sit in procs.upstreams."""

    def __init__(self, reply=None):
        self.reply = reply or ok_reply
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((HOST, 0))
        self.lsock.listen(128)
        self.port = self.lsock.getsockname()[1]
        self.addr = "%s:%d" % (HOST, self.port)
        self.conns = []
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            rc = RawConn(s)
            with self.lock:
                self.conns.append(rc)
            threading.Thread(target=self._serve, args=(rc,), daemon=True).start()

    def _serve(self, rc):
        pos = 0
        try:
            while True:
                try:
                    chunk = rc.sock.recv(65536)
                except (ConnectionResetError, OSError):
                    chunk = b""
                if not chunk:
                    break
                with self.lock:
                    rc.data += chunk
                    data = bytes(rc.data)
                while rc.malformed is None and pos < len(data):
                    try:
                        n = strict_request_length(data[pos:])
                    except ValueError as e:
                        rc.malformed = str(e)
                        break
                    if n is None:
                        break
                    req = data[pos:pos + n]
                    pos += n
                    with self.lock:
                        rc.requests.append(req)
                    try:
                        self.reply(rc, req)
                    except OSError:
                        pass
        finally:
            with self.lock:
                rc.closed = True
                rc.closed_at = time.monotonic()
            try:
                rc.sock.close()
            except OSError:
                pass

    def requests(self):
        """Every complete request received so far, over all connections."""
        with self.lock:
            return [r for c in self.conns for r in c.requests]

    def bytes_received(self):
        with self.lock:
            return sum(len(c.data) for c in self.conns)

    def snapshot(self):
        """[(bytes received, complete requests, closed)] per connection, in accept order."""
        with self.lock:
            return [(bytes(c.data), list(c.requests), c.closed) for c in self.conns]

    def close(self):
        self.closed = True
        try:
            self.lsock.close()
        except OSError:
            pass
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def read_until_close(conn, timeout=3.0):
    """Everything an HttpConn receives (its buffered bytes first) until the peer closes or
    timeout seconds pass. Returns (data, closed): a reset counts as closed."""
    deadline = time.monotonic() + timeout
    data = bytearray(conn.buf)
    conn.buf.clear()
    if conn.eof:
        return bytes(data), True
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(data), False
        conn.sock.settimeout(left)
        try:
            chunk = conn.sock.recv(65536)
        except socket.timeout:
            return bytes(data), False
        except (ConnectionResetError, BrokenPipeError):
            conn.eof = True
            return bytes(data), True
        if not chunk:
            conn.eof = True
            return bytes(data), True
        data += chunk


def split_response(data):
    """Parses one Content-Length framed response at the start of data (bytes): returns
    (status, [(name, value)], body, rest). ValueError when it is not a whole response."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise ValueError("no complete response head in %r" % data[:200])
    lines = data[:end].decode("latin-1").split("\r\n")
    m = re.match(r"^HTTP/1\.[01] (\d{3}) ", lines[0] + " ")
    if not m:
        raise ValueError("bad status line %r" % lines[0])
    headers = []
    for line in lines[1:]:
        n, _, v = line.partition(":")
        headers.append((n, v.strip()))
    cl = [v for n, v in headers if n.lower() == "content-length"]
    if len(cl) != 1:
        raise ValueError("response without one Content-Length: %r" % headers)
    body_end = end + 4 + int(cl[0])
    if len(data) < body_end:
        raise ValueError("truncated response body")
    return int(m.group(1)), headers, data[end + 4:body_end], data[body_end:]
