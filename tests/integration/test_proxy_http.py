"""HTTP/1.x through the proxy: keep-alive, pipelining, HTTP/1.0, chunked request bodies,
Expect: 100-continue and large streamed responses read slowly."""

import re
import socket
import subprocess
import time

import pytest

from harness import Experiment, HttpConn, big_body, build_request, make_echo, user_request


def test_curl_reuses_one_connection_for_several_urls(ab_proxy):
    proxy, exp = ab_proxy(80, 20)
    urls = ["http://127.0.0.1:%d/predict/%d" % (proxy.port, i) for i in range(4)]
    p = subprocess.run(["curl", "-sv", "--max-time", "10", "-H", "X-User-Id: curl-user"] + urls,
                       capture_output=True, timeout=20)
    err = p.stderr.decode()
    assert p.returncode == 0, err
    assert err.count("Re-using existing connection") == 3, err
    assert len(re.findall(r"^\* +Connected to ", err, re.M)) == 1, err
    assert len(re.findall(r"^< HTTP/1.1 200", err, re.M)) == 4, err
    out = p.stdout.decode()
    variant = exp.expect("curl-user")
    model = {"control": "model-a", "treatment": "model-b"}[variant]
    assert out.count('"model":"%s"' % model) == 4, out
    for i in range(4):
        assert '"path":"/predict/%d"' % i in out


def test_three_pipelined_requests_in_one_write_answered_in_order(ab_proxy):
    proxy, exp = ab_proxy(80, 20)
    rids = ["rid-first-0001", "rid-second-0002", "rid-third-0003"]
    users = ["pipe-a", "pipe-b", "pipe-c"]
    data = b"".join(build_request("POST", "/predict/%d" % i,
                                  [("X-User-Id", u), ("X-Request-Id", rid)], body="x" * (i + 1))
                    for i, (u, rid) in enumerate(zip(users, rids)))
    with HttpConn(proxy.port) as c:
        c.send(data)
        for i, (u, rid) in enumerate(zip(users, rids)):
            r = c.read_response()
            assert r.status == 200, r
            assert r.header("X-Request-Id") == rid
            body = r.json()
            assert body["request_id"] == rid
            assert body["unit"] == u
            assert body["path"] == "/predict/%d" % i
            assert body["request_bytes"] == i + 1
            assert r.header("X-Abgate-Variant") == exp.expect(u)
        # generated ids: distinct, in order of the requests
        c.send(b"".join(user_request(u) for u in users))
        got = [c.read_response() for _ in users]
        ids = [r.header("X-Request-Id") for r in got]
        assert len(set(ids)) == 3
        for r, rid, u in zip(got, ids, users):
            assert re.fullmatch(r"[0-9a-f]{32}", rid), rid
            assert r.json()["request_id"] == rid
            assert r.json()["unit"] == u
        assert not c.is_closed(0.2)


def test_http10_closes_after_response_unless_keep_alive(ab_proxy):
    proxy, exp = ab_proxy(80, 20)
    with HttpConn(proxy.port) as c:
        c.send(b"GET /predict HTTP/1.0\r\nX-User-Id: old-client\r\n\r\n")
        r = c.read_response()
        assert r.status == 200, r
        assert r.json()["unit"] == "old-client"
        assert r.header("X-Abgate-Variant") == exp.expect("old-client")
        assert (r.header("Connection") or "").lower() != "keep-alive"
        assert c.is_closed(2.0), "HTTP/1.0 connection left open"

    with HttpConn(proxy.port) as c:
        for i in range(3):
            c.send(("GET /predict/%d HTTP/1.0\r\nConnection: keep-alive\r\n"
                    "X-User-Id: old-ka\r\n\r\n" % i).encode())
            r = c.read_response()
            assert r.status == 200, r
            assert r.header("Connection", "").lower() == "keep-alive", r
            assert r.header("Content-Length") == str(len(r.body))
            assert r.json()["path"] == "/predict/%d" % i
        assert not c.is_closed(0.3)


def test_http11_connection_close_is_honoured(ab_proxy):
    proxy, exp = ab_proxy(80, 20)
    with HttpConn(proxy.port) as c:
        r = c.request("GET", "/predict", [("X-User-Id", "u"), ("Connection", "close")])
        assert r.status == 200
        assert r.header("Connection", "").lower() == "close"
        assert c.is_closed(2.0)


def chunked(parts, ext=False):
    out = b""
    for p in parts:
        size = b"%x" % len(p)
        if ext:
            size += b";name=value"
        out += size + b"\r\n" + p + b"\r\n"
    return out + b"0\r\n\r\n"


def test_chunked_request_body_forwarded(procs, make_config):
    # The abgate model backend refuses chunked request bodies (411, as its HTTP server is
    # documented to), so two Python upstreams that decode chunked bodies stand in for the
    # variants' backends here.
    ua, ub = procs.upstream(make_echo("echo-a")), procs.upstream(make_echo("echo-b"))
    exp = Experiment("ranker", [("control", "echo-a", 50), ("treatment", "echo-b", 50)])
    proxy = procs.proxy(make_config({"echo-a": ua.addr, "echo-b": ub.addr}, [exp]))
    parts = [b"hello", b" ", b"world" * 1000, bytes(range(256)) * 40]
    total = sum(len(p) for p in parts)
    users = [u for u in ("chunky-%d" % i for i in range(40))]
    one = next(u for u in users if exp.expect(u) == "control")
    two = next(u for u in users if exp.expect(u) == "treatment")
    with HttpConn(proxy.port) as c:
        for user, ext in ((one, False), (two, True)):
            head = build_request("POST", "/predict", [("X-User-Id", user),
                                                      ("Transfer-Encoding", "chunked")])
            c.send(head + chunked(parts, ext))
            r = c.read_response()
            assert r.status == 200, r
            want = {"control": "echo-a", "treatment": "echo-b"}[exp.expect(user)]
            assert r.header("X-Upstream") == want
            assert r.json()["body_len"] == total
            up = ua if want == "echo-a" else ub
            assert up.requests[-1].body == b"".join(parts)
        # the body split over several writes, with pauses inside the chunk headers and data
        body = chunked(parts)
        c.send(build_request("POST", "/predict", [("X-User-Id", one),
                                                  ("Transfer-Encoding", "chunked")]))
        c.send(body[:2])
        time.sleep(0.05)
        c.send(body[2:3000])
        time.sleep(0.05)
        c.send(body[3000:])
        r = c.read_response()
        assert r.status == 200, r
        assert r.json()["body_len"] == total
        assert ua.requests[-1].body == b"".join(parts)


def test_chunked_request_body_bytes_exact_at_upstream(procs, make_config):
    up = procs.upstream(make_echo("echo"))
    cfg = make_config({"py": up.addr}, [], default_backend="py")
    proxy = procs.proxy(cfg)
    parts = [b"abc", b"\x00\r\n0\r\n" * 100, big_body(70000)]
    with HttpConn(proxy.port) as c:
        c.send(build_request("POST", "/anything", [("Transfer-Encoding", "chunked")]) +
               chunked(parts))
        r = c.read_response()
        assert r.status == 200, r
        assert r.json()["body_len"] == sum(len(p) for p in parts)
    assert up.requests[-1].body == b"".join(parts)


def test_expect_100_continue_answered_by_proxy(ab_proxy):
    proxy, exp = ab_proxy(80, 20)
    with HttpConn(proxy.port) as c:
        c.send(build_request("POST", "/predict", [("X-User-Id", "expecting"),
                                                  ("Expect", "100-continue"),
                                                  ("Content-Length", "11")]))
        # the raw interim status line, before any body was sent
        line = c._read_until(b"\r\n")
        assert line == b"HTTP/1.1 100 Continue\r\n", line
        rest = c._read_until(b"\r\n")
        while rest != b"\r\n":
            rest = c._read_until(b"\r\n")
        c.send(b"hello world")
        r = c.read_response()
        assert r.status == 200, r
        assert r.json()["request_bytes"] == 11
        assert r.header("X-Abgate-Variant") == exp.expect("expecting")
        # the connection keeps working afterwards
        r = c.request("GET", "/predict", [("X-User-Id", "expecting")])
        assert r.status == 200


def test_expect_100_continue_upstream_sees_the_body(procs, make_config):
    up = procs.upstream(make_echo("echo"))
    cfg = make_config({"py": up.addr}, [], default_backend="py")
    proxy = procs.proxy(cfg)
    with HttpConn(proxy.port) as c:
        c.send(build_request("PUT", "/x", [("Expect", "100-continue"),
                                           ("Content-Length", "5")]))
        r = c.read_response(allow_1xx=True)
        assert (r.version, r.status) == ("HTTP/1.1", 100)
        c.send(b"12345")
        r = c.read_response()
        assert r.status == 200, r
        assert r.json()["body_len"] == 5
        # exactly one interim response: nothing but the final one arrived
        assert c.buf == b""
    assert up.requests[-1].body == b"12345"


BIG = 5 * 1024 * 1024


def big_handler(req, sock):
    data = big_body(BIG)
    if req.target == "/big-cl":
        return 200, [("Content-Type", "application/octet-stream")], data
    if req.target == "/big-chunked":
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n" \
               b"Transfer-Encoding: chunked\r\n\r\n"
        sock.sendall(head)
        step = 65536 + 17
        for i in range(0, len(data), step):
            piece = data[i:i + step]
            sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
        return None
    return 200, [], b"small"


class SlowConn(HttpConn):
    """Reads at most 16 KiB at a time and pauses between reads."""

    def _fill(self, n=65536):
        time.sleep(0.0005)
        super()._fill(min(n, 16384))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("path", ["/big-cl", "/big-chunked"])
def test_large_response_streams_to_a_slow_reader(procs, make_config, path):
    up = procs.upstream(big_handler)
    cfg = make_config({"py": up.addr}, [], default_backend="py")
    proxy = procs.proxy(cfg)
    expect = big_body(BIG)
    with SlowConn(proxy.port, rcvbuf=16384, timeout=20) as c:
        r = c.request("GET", "/small")
        assert r.body == b"small"
        rss0 = rss_kib(proxy.proc.pid)
        c.send(build_request("GET", path))
        # the client stalls while the upstream has the whole body ready
        time.sleep(0.5)
        rss1 = rss_kib(proxy.proc.pid)
        r = c.read_response()
        assert r.status == 200, r
        if path == "/big-cl":
            assert r.header("Content-Length") == str(BIG)
        assert len(r.body) == BIG
        assert r.body == expect
        # the proxy's buffers are bounded: it did not pull the 5 MB into its own memory
        assert rss1 - rss0 < 3 * 1024, (rss0, rss1)
        # the framing held: the same connection serves the next request
        r = c.request("GET", "/small")
        assert r.status == 200 and r.body == b"small"


def test_pipelined_requests_keep_order_when_the_first_is_slow(procs, models, make_config):
    a, _ = models
    slow = procs.backend("model-slow", latency_ms=150)
    exp = Experiment("ranker", [("control", "model-a", 50), ("treatment", "model-slow", 50)])
    proxy = procs.proxy(make_config({"model-a": a.addr, "model-slow": slow.addr}, [exp]))
    users = ["order-%d" % i for i in range(40)]
    slow_u = [u for u in users if exp.expect(u) == "treatment"][:3]
    fast_u = [u for u in users if exp.expect(u) == "control"][:3]
    seq = [slow_u[0], fast_u[0], fast_u[1], slow_u[1], fast_u[2], slow_u[2]]
    with HttpConn(proxy.port) as c:
        c.send(b"".join(build_request("POST", "/predict", [("X-User-Id", u),
                                                           ("X-Request-Id", "ord-%d" % i)],
                                      body="y" * i) for i, u in enumerate(seq)))
        for i, u in enumerate(seq):
            r = c.read_response()
            assert r.status == 200, r
            assert r.header("X-Request-Id") == "ord-%d" % i
            body = r.json()
            assert (body["request_id"], body["unit"], body["request_bytes"]) == (
                "ord-%d" % i, u, i)
            assert body["model"] == ("model-slow" if u in slow_u else "model-a")


def test_close_delimited_upstream_response_ends_promptly(procs, make_config):
    # The upstream frames its response by closing the connection (no Content-Length, no
    # chunking). The client must get the whole body and see its end (the proxy closes or
    # re-frames) right away, not when some timeout fires.
    def handler(req, sock):
        sock.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"z" * 1000)
        sock.shutdown(socket.SHUT_RDWR)
        return None
    up = procs.upstream(handler)
    proxy = procs.proxy(make_config({"py": up.addr}, [], default_backend="py"))
    for i in range(20):
        with HttpConn(proxy.port, timeout=2) as c:
            c.send(build_request("GET", "/eof/%d" % i))
            t0 = time.monotonic()
            try:
                r = c.read_response()
            except socket.timeout:
                raise AssertionError("request %d: body relayed (%d bytes buffered) but the "
                                     "response never ended" % (i, len(c.buf)))
            assert r.status == 200
            assert r.body == b"z" * 1000
            assert time.monotonic() - t0 < 1.0


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_large_request_body_uploaded_exactly(procs, make_config, framing):
    up = procs.upstream(make_echo("echo"))
    proxy = procs.proxy(make_config({"py": up.addr}, [], default_backend="py"))
    data = big_body(5 * 1024 * 1024)
    with HttpConn(proxy.port, timeout=20) as c:
        if framing == "chunked":
            step = 100003
            c.send(build_request("POST", "/upload", [("Transfer-Encoding", "chunked")]) +
                   chunked([data[i:i + step] for i in range(0, len(data), step)]))
            r = c.read_response()
        else:
            r = c.request("POST", "/upload", body=data)
        assert r.status == 200, r
        assert r.json()["body_len"] == len(data)
        assert up.requests[-1].body == data
        r = c.request("GET", "/after")
        assert r.status == 200 and r.json()["target"] == "/after"
