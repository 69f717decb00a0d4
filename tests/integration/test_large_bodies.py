"""Large bodies stream both ways byte for byte, through plain and TLS listeners and upstreams,
with memory bounded: a 16 MiB upload (Content-Length and chunked) and a 16 MiB download, also
with a slow client or a slow backend, while the proxy's resident memory stays within 8 MiB of
where it started (a connection holds at most two 1 MiB body buffers beside its small ones),
so a slow reader stops the other side instead of being buffered for."""

import hashlib
import socket
import ssl
import threading
import time

import pytest

from harness import ABGATE_BIN, HOST, YAML_FRONT, start_proxy
from test_tls import make_ca, make_server_cert

SIZE = 16 << 20
PIECE = 1 << 16


def pattern(n, seed=7):
    """n deterministic bytes (a repeated SHA-256 stream), the same on both sides."""
    out, block = bytearray(), hashlib.sha256(b"%d" % seed).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:n])


def built_with_asan(path):
    """Whether the binary was built with AddressSanitizer (make asan)."""
    with open(path, "rb") as f:
        return b"__asan_init" in f.read()


ASAN = built_with_asan(ABGATE_BIN)
DATA = pattern(SIZE)
DIGEST = hashlib.sha256(DATA).hexdigest()


class BodyBackend:
    """A backend on a free port (TLS when ctx is given): POST answers the hex SHA-256 of the
    body it read (Content-Length or chunked), GET answers SIZE bytes of pattern(). slow: it
    reads or writes 64 KiB every 2 ms, so the proxy must hold the other side back."""

    def __init__(self, ctx=None, slow=False):
        self.ctx, self.slow = ctx, slow
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((HOST, 0))
        self.lsock.listen(16)
        self.addr = "%s:%d" % (HOST, self.lsock.getsockname()[1])
        self.errors = []
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.lsock.close()

    def _accept(self):
        while True:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        try:
            if self.ctx is not None:
                s = self.ctx.wrap_socket(s, server_side=True)
            f = s.makefile("rb")
            while True:
                line = f.readline()
                if not line:
                    return
                method = line.split()[0]
                headers = {}
                while True:
                    h = f.readline()
                    if h in (b"\r\n", b""):
                        break
                    k, v = h.split(b":", 1)
                    headers[k.strip().lower()] = v.strip()
                if method == b"GET":
                    self._download(s)
                    continue
                sha = hashlib.sha256()
                if b"content-length" in headers:
                    left = int(headers[b"content-length"])
                    while left:
                        b = f.read(min(PIECE, left))
                        if not b:
                            raise ValueError("body cut short")
                        sha.update(b)
                        left -= len(b)
                        if self.slow:
                            time.sleep(0.002)
                else:
                    while True:
                        size = int(f.readline().split(b";")[0], 16)
                        if size == 0:
                            f.readline()
                            break
                        sha.update(f.read(size))
                        f.readline()
                        if self.slow:
                            time.sleep(0.002)
                body = sha.hexdigest().encode()
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        except (OSError, ValueError) as e:
            self.errors.append(repr(e))
        finally:
            s.close()

    def _download(self, s):
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % SIZE)
        for i in range(0, SIZE, PIECE):
            s.sendall(DATA[i:i + PIECE])
            if self.slow:
                time.sleep(0.002)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


class RssWatch:
    """Samples a process's resident memory every 10 ms until grew_mb() is called."""

    def __init__(self, pid):
        self.pid = pid
        self.base = self.peak = rss_kb(pid)
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, rss_kb(self.pid))
            except OSError:
                return  # the process is gone: the test says why
            time.sleep(0.01)

    def grew_mb(self):
        self.stop.set()
        self.t.join()
        return (self.peak - self.base) / 1024.0


def read_response(s, slow=False):
    """Reads one Content-Length response: (status, hex SHA-256 of the body, its length, the
    body itself when at most 1 KiB)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        assert chunk, "closed before the head"
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = next(int(l.split(b":")[1]) for l in lines[1:]
                  if l.lower().startswith(b"content-length:"))
    sha, got, short = hashlib.sha256(rest), len(rest), rest
    while got < length:
        chunk = s.recv(min(65536, length - got))
        assert chunk, "closed after %d of %d body bytes" % (got, length)
        sha.update(chunk)
        if length <= 1024:
            short += chunk
        got += len(chunk)
        if slow:
            time.sleep(0.002)
    return status, sha.hexdigest(), length, short


def upload(s, chunked, slow):
    head = b"POST /predict HTTP/1.1\r\nHost: h\r\nX-User-Id: u-1\r\n"
    if chunked:
        s.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n")
    else:
        s.sendall(head + b"Content-Length: %d\r\n\r\n" % SIZE)
    for i in range(0, SIZE, PIECE):
        piece = DATA[i:i + PIECE]
        s.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        if slow:
            time.sleep(0.002)
    if chunked:
        s.sendall(b"0\r\n\r\n")


@pytest.fixture
def certs(tmp_path):
    d = tmp_path / "pki"
    d.mkdir()
    ca_key, ca_crt = make_ca(d, "ca")
    key, crt = make_server_cert(d, "server", ca_key, ca_crt, 1)
    return ca_crt, key, crt


def start(procs, yaml_config, backend, tls_front, tls_back, certs):
    ca, key, crt = certs
    listen = "  - addr: 127.0.0.1:@PORT@\n"
    if tls_front:
        listen += "    tls: {cert: %s, key: %s}\n" % (crt, key)
    server = ("https://" if tls_back else "") + backend.addr
    extra = "    ca_file: %s\n" % ca if tls_back else ""
    body = (YAML_FRONT.replace("  - addr: 127.0.0.1:@PORT@\n", listen) +
            "log:\n  error: stderr\nlimits:\n  max_body_bytes: %d\n" % (64 << 20) +
            "backends:\n  big:\n    servers: [%s]\n%s" % (server, extra) +
            "default_backend: big\n")
    return start_proxy(procs, yaml_config(body))


CASES = [
    # (TLS to the client, TLS to the backend, what, the slow side)
    (False, False, "upload", None), (False, False, "upload-chunked", None),
    (False, False, "download", None), (False, False, "upload", "backend"),
    (False, False, "upload", "client"), (False, False, "download", "client"),
    (False, False, "download", "backend"),
    (True, True, "upload", None), (True, True, "download", None),
    (True, False, "upload-chunked", "backend"), (True, False, "download", "client"),
]


@pytest.mark.parametrize("front,back,what,slow", CASES,
                         ids=["%s%s-%s-%s" % ("tls" if f else "plain", "-tlsup" if b else "", w,
                                              s or "fast") for f, b, w, s in CASES])
def test_16_mib_byte_exact(procs, yaml_config, certs, front, back, what, slow):
    ca, key, crt = certs
    bctx = None
    if back:
        bctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        bctx.load_cert_chain(str(crt), str(key))
    backend = BodyBackend(bctx, slow=slow == "backend")
    try:
        px = start(procs, yaml_config, backend, front, back, certs)
        watch = RssWatch(px.proc.pid)
        s = socket.create_connection((HOST, px.port), timeout=60)
        if front:
            s = ssl.create_default_context(cafile=str(ca)).wrap_socket(
                s, server_hostname="localhost")
        try:
            if what == "download":
                s.sendall(b"GET /download HTTP/1.1\r\nHost: h\r\n\r\n")
                status, digest, length, _ = read_response(s, slow=slow == "client")
                assert (status, length) == (200, SIZE)
                assert digest == DIGEST
            else:
                # the whole body first (the backend answers once it read it all; and one TLS
                # connection must not be read and written by two threads at once)
                upload(s, what.endswith("chunked"), slow == "client")
                status, _, _, body = read_response(s)
                # the backend answers the digest of the body it read
                assert (status, body) == (200, DIGEST.encode())
        finally:
            s.close()
            grew = watch.grew_mb()
        print("%s: RSS grew %.1f MB" % (what, grew))
        # under AddressSanitizer the quarantine and shadow memory grow on their own
        if not ASAN:
            assert grew < 8, "RSS grew by %.1f MB for one 16 MiB transfer" % grew
        assert not backend.errors, backend.errors
    finally:
        backend.close()
