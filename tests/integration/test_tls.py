"""TLS: an HTTPS listener (TLS 1.2 and 1.3 only, ALPN http/1.1, a plain-HTTP client gets a
plain 400), https upstreams with ca_file / verify, and certificates reloaded on SIGHUP."""

import hashlib
import random
import re
import socket
import ssl
import subprocess

import pytest

from harness import HttpConn, wait_until

OPENSSL = "/usr/bin/openssl"
CURL = "/usr/bin/curl"


def sh(argv, **kw):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30, **kw)
    assert r.returncode == 0, "%s failed:\n%s" % (argv, r.stderr.decode())
    return r


def make_ca(d, name):
    """A self-signed CA (EC P-256) in d: name.key, name.crt."""
    key, crt = d / (name + ".key"), d / (name + ".crt")
    sh([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", str(key), "-out", str(crt), "-days", "2", "-subj",
        "/CN=%s" % name, "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    return key, crt


def make_server_cert(d, name, ca_key, ca_crt, serial, cn="localhost"):
    """A server certificate for localhost and 127.0.0.1 signed by the CA: name.key, name.crt."""
    key, csr, crt = d / (name + ".key"), d / (name + ".csr"), d / (name + ".crt")
    ext = d / (name + ".ext")
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                   "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    sh([OPENSSL, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/O=abgate tests/CN=%s" % cn])
    sh([OPENSSL, "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
        "-set_serial", str(serial), "-days", "2", "-extfile", str(ext), "-out", str(crt)])
    return key, crt


@pytest.fixture
def pki(tmp_path):
    d = tmp_path / "pki"
    d.mkdir()
    ca_key, ca_crt = make_ca(d, "test-ca")
    other_key, other_crt = make_ca(d, "other-ca")
    key, crt = make_server_cert(d, "server", ca_key, ca_crt, 1001)
    return {"dir": d, "ca": ca_crt, "ca_key": ca_key, "other_ca": other_crt,
            "key": key, "crt": crt}


TLS_FRONT = """\
listen:
  - addr: 127.0.0.1:@PORT@
    tls: {{cert: {crt}, key: {key}}}
admin:
  addr: 127.0.0.1:@ADMIN@
log:
  error: stderr
  level: info
backends:
  model-a:
    servers: [{a}]
  model-b:
    servers: [{b}]
experiments:
  - name: ranker
    match: {{path_prefix: /predict}}
    unit: {{header: X-User-Id}}
    variants:
      - {{name: control, backend: model-a, weight: 50}}
      - {{name: treatment, backend: model-b, weight: 50}}
"""


@pytest.fixture
def tls_proxy(procs, models, yaml_config, pki):
    a, b = models
    cfg = yaml_config(TLS_FRONT.format(crt=pki["crt"], key=pki["key"], a=a.addr, b=b.addr))
    return procs.proxy(cfg)


def curl(port, *opts, path="/predict", user="tls-user", cacert=None):
    argv = [CURL, "-sS", "-v", "--max-time", "10", "-H", "X-User-Id: %s" % user]
    if cacert is not None:
        argv += ["--cacert", str(cacert)]
    argv += list(opts) + ["https://127.0.0.1:%d%s" % (port, path)]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def response_headers(verbose):
    return {m.group(1).lower(): m.group(2).strip()
            for m in re.finditer(r"^< ([A-Za-z0-9-]+): (.*)$", verbose, re.M)}


def test_https_listener_serves_with_variant_headers(tls_proxy, pki):
    rc, out, err = curl(tls_proxy.port, cacert=pki["ca"], user="tls-user-1")
    assert rc == 0, err
    assert re.search(r"^< HTTP/1\.1 200", err, re.M), err
    h = response_headers(err)
    assert h.get("x-abgate-experiment") == "ranker", err
    assert h.get("x-abgate-variant") in ("control", "treatment"), err
    model = {"control": "model-a", "treatment": "model-b"}[h["x-abgate-variant"]]
    assert '"model":"%s"' % model in out.replace(" ", ""), out
    # ALPN: the server picks http/1.1
    assert "ALPN: server accepted http/1.1" in err, err
    # the certificate is checked against the test CA: without it curl refuses
    rc, _, err = curl(tls_proxy.port, user="tls-user-1")
    assert rc != 0 and "certificate" in err.lower(), err


@pytest.mark.parametrize("version,flags", [("TLSv1.2", ["--tlsv1.2", "--tls-max", "1.2"]),
                                           ("TLSv1.3", ["--tlsv1.3", "--tls-max", "1.3"])])
def test_tls_12_and_13_work(tls_proxy, pki, version, flags):
    rc, out, err = curl(tls_proxy.port, *flags, cacert=pki["ca"])
    assert rc == 0, err
    assert "SSL connection using %s" % version in err, err
    assert re.search(r"^< HTTP/1\.1 200", err, re.M), err


def test_tls_11_refused(tls_proxy, pki):
    rc, _, err = curl(tls_proxy.port, "--tlsv1.1", "--tls-max", "1.1", cacert=pki["ca"])
    assert rc != 0, err
    assert "< HTTP" not in err
    # the client's own defaults may refuse TLS 1.1 before the server is asked: offer it for
    # real (security level 0) and check that the server is the one that says no
    r = subprocess.run([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % tls_proxy.port,
                        "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0", "-CAfile", str(pki["ca"])],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    text = r.stdout.decode("latin-1")
    assert r.returncode != 0, text
    assert "alert protocol version" in text or "protocol version" in text.lower(), text
    # and the proxy still serves TLS 1.2 afterwards
    assert curl(tls_proxy.port, "--tlsv1.2", cacert=pki["ca"])[0] == 0


def test_plain_http_to_the_tls_port_gets_a_plain_400_and_close(tls_proxy):
    with HttpConn(tls_proxy.port, timeout=5) as c:
        c.send(b"GET /predict HTTP/1.1\r\nHost: x\r\nX-User-Id: plain\r\n\r\n")
        r = c.read_response()
        assert r.status == 400, r
        assert r.version == "HTTP/1.1"
        assert c.is_closed(3), "the connection stays open after the 400"


HTTPS_UPSTREAM_FRONT = """\
listen:
  - addr: 127.0.0.1:@PORT@
admin:
  addr: 127.0.0.1:@ADMIN@
log:
  error: stderr
backends:
  model-a:
    servers: [{a}]
  secure:
    servers: ["https://127.0.0.1:{tls_port}"]
{tls_opts}experiments:
  - name: ranker
    match: {{path_prefix: /predict}}
    unit: {{header: X-User-Id}}
    variants:
      - {{name: control, backend: model-a, weight: 0}}
      - {{name: treatment, backend: secure, weight: 100}}
"""

TLS_TERMINATOR = """\
listen:
  - addr: 127.0.0.1:@PORT@
    tls: {{cert: {crt}, key: {key}}}
admin:
  addr: 127.0.0.1:@ADMIN@
log:
  error: stderr
backends:
  model-b:
    servers: [{b}]
default_backend: model-b
"""


@pytest.fixture
def tls_upstream(procs, models, yaml_config, pki):
    """A second abgate instance terminating TLS in front of model-b: the https upstream."""
    _, b = models
    cfg = yaml_config(TLS_TERMINATOR.format(crt=pki["crt"], key=pki["key"], b=b.addr),
                      name="terminator.yaml")
    return procs.proxy(cfg, "terminator")


def front(procs, models, yaml_config, tls_upstream, tls_opts, name):
    a, _ = models
    text = HTTPS_UPSTREAM_FRONT.format(a=a.addr, tls_port=tls_upstream.port, tls_opts=tls_opts)
    return procs.proxy(yaml_config(text, name=name + ".yaml"), name)


def through(proxy, n=3):
    out = []
    with HttpConn(proxy.port) as c:
        for i in range(n):
            out.append(c.request("GET", "/predict", [("X-User-Id", "up-%d" % i)]))
    return out


def test_https_upstream_with_the_right_ca(procs, models, yaml_config, tls_upstream, pki):
    px = front(procs, models, yaml_config, tls_upstream, "    ca_file: %s\n" % pki["ca"],
               "front-ca")
    for r in through(px):
        assert r.status == 200, r
        assert r.header("X-Abgate-Variant") == "treatment"
        assert r.json()["model"] == "model-b"


def test_https_upstream_with_a_wrong_ca_gets_502(procs, models, yaml_config, tls_upstream, pki):
    px = front(procs, models, yaml_config, tls_upstream, "    ca_file: %s\n" % pki["other_ca"],
               "front-wrong-ca")
    for r in through(px, 2):
        assert r.status == 502, r
        assert r.header("X-Abgate-Variant") == "treatment"
        assert b"model-b" not in r.body
    wait_until(lambda: re.search(r"certificate", px.log()), timeout=3,
               what="a certificate error in the error log")
    assert re.search(r"certificate rejected: .+", px.log()), px.log()


def test_https_upstream_without_verification(procs, models, yaml_config, tls_upstream, pki):
    # the wrong CA, but verification is off: the exchange goes through
    px = front(procs, models, yaml_config, tls_upstream,
               "    ca_file: %s\n    verify: false\n" % pki["other_ca"], "front-noverify")
    for r in through(px):
        assert r.status == 200, r
        assert r.json()["model"] == "model-b"
    assert "verification is off" in px.log()


def test_reload_to_another_ca_governs_the_next_requests(procs, models, yaml_config,
                                                       tls_upstream, pki):
    """Requests that start after a reload run on the new generation: when it trusts another
    CA, a keep-alive connection verified under the old one must not carry them."""
    px = front(procs, models, yaml_config, tls_upstream, "    ca_file: %s\n" % pki["ca"],
               "front-reload-ca")
    assert [r.status for r in through(px, 2)] == [200, 200]
    a, _ = models
    px.config.body = HTTPS_UPSTREAM_FRONT.format(a=a.addr, tls_port=tls_upstream.port,
                                                 tls_opts="    ca_file: %s\n" % pki["other_ca"])
    px.config.write()
    r = px.reload_admin()
    assert r.status == 200, r
    statuses = [r.status for r in through(px, 2)]
    assert statuses == [502, 502], "served after the reload distrusted the upstream's CA: %r" % (
        statuses,)


def peer_certificate(port):
    """(subject, serial) of the certificate a new TLS connection to port is shown."""
    r = subprocess.run([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % port,
                        "-servername", "localhost"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    pem = re.search(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", r.stdout, re.S)
    assert pem, r.stdout.decode("latin-1") + r.stderr.decode("latin-1")
    x = subprocess.run([OPENSSL, "x509", "-noout", "-subject", "-serial"], input=pem.group(0),
                       stdout=subprocess.PIPE, timeout=30)
    text = x.stdout.decode()
    subject = re.search(r"^subject=(.*)$", text, re.M).group(1).strip()
    serial = re.search(r"^serial=(.*)$", text, re.M).group(1).strip()
    return subject, int(serial, 16)


def test_reload_picks_up_a_new_certificate(tls_proxy, pki):
    subject, serial = peer_certificate(tls_proxy.port)
    assert serial == 1001 and "CN = localhost" in subject, (subject, serial)
    d = pki["dir"]
    key2, crt2 = make_server_cert(d, "server2", pki["ca_key"], pki["ca"], 2002,
                                  cn="abgate-renewed")
    # replace the files in place, as a certificate renewal does
    pki["crt"].write_bytes(crt2.read_bytes())
    pki["key"].write_bytes(key2.read_bytes())
    tls_proxy.sighup_and_wait(2)
    subject, serial = peer_certificate(tls_proxy.port)
    assert serial == 2002 and "CN = abgate-renewed" in subject, (subject, serial)
    rc, _, err = curl(tls_proxy.port, cacert=pki["ca"])
    assert rc == 0, err
    assert re.search(r"subject: .*CN=abgate-renewed", err), err
    assert "ALPN: server accepted http/1.1" in err


# ---- the TLS read path: whole bodies, pipelining, one byte per record ----

TLS_RAW_FRONT = """\
listen:
  - addr: 127.0.0.1:@PORT@
    tls: {{cert: {crt}, key: {key}}}
admin:
  addr: 127.0.0.1:@ADMIN@
log:
  error: stderr
limits:
  max_body_bytes: 4194304
backends:
  up:
    servers: [{up}]
default_backend: up
"""


def digest_reply(conn, req):
    """Answers with the request's path and the length and SHA-256 of its body."""
    head, _, body = req.partition(b"\r\n\r\n")
    path = head.split(b" ", 2)[1]
    out = b"%s %d %s" % (path, len(body), hashlib.sha256(body).hexdigest().encode())
    conn.sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(out), out))


class TlsClient:
    def __init__(self, port, ca):
        ctx = ssl.create_default_context(cafile=str(ca))
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed; have %r" % self.buf[:200])
        self.buf += chunk

    def response(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        m = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
        n = int(m.group(1))
        while len(self.buf) < n:
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, body

    def close(self):
        self.sock.close()


def post_bytes(path, body):
    return (b"POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n"
            % (path.encode(), len(body))) + body


def test_tls_reads_whole_bodies_pipelines_and_single_byte_records(procs, yaml_config, pki,
                                                                   raw_upstream):
    up = raw_upstream(digest_reply)
    px = procs.proxy(yaml_config(TLS_RAW_FRONT.format(crt=pki["crt"], key=pki["key"],
                                                      up=up.addr)))
    c = TlsClient(px.port, pki["ca"])
    try:
        # bodies around the TLS record size (16 KiB) and larger than the read buffers,
        # one after the other on one connection
        rnd = random.Random(7)
        for size in (0, 1, 16383, 16384, 16385, 100000, (1 << 20) + 7):
            body = rnd.randbytes(size)
            c.sock.sendall(post_bytes("/b%d" % size, body))
            status, got = c.response()
            want = b"/b%d %d %s" % (size, size, hashlib.sha256(body).hexdigest().encode())
            assert (status, got) == (200, want)

        # 40 requests in one write: 40 answers, in order
        c.sock.sendall(b"".join(post_bytes("/p%d" % i, b"x" * i) for i in range(40)))
        for i in range(40):
            status, got = c.response()
            assert status == 200 and got.startswith(b"/p%d %d " % (i, i)), (i, got)

        # one request dripped one byte per TLS record
        for b in post_bytes("/drip", b"drip-body"):
            c.sock.send(bytes([b]))
        status, got = c.response()
        assert status == 200 and got.startswith(b"/drip 9 "), got
    finally:
        c.close()
