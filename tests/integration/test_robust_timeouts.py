"""Slow and idle clients are cut off at the configured limits, and only they are: a slowloris
client (a header byte every 200 ms) at limits.client_header_timeout_ms while other clients are
served at full speed, and so is a client that sends part of a head and then nothing at all; an
idle keep-alive connection at limits.idle_timeout_ms (one in use is not cut); a client that
stalls in the middle of its request body, or stops reading its response, at
limits.client_timeout_ms. Where the proxy may answer, the only answer allowed is one 408.

Timing windows: a deadline of T ms must not cut earlier than 0.9 T, and must cut by T + 1 s
(the timers are per session and fire on time; the second is for a busy test machine)."""

import select
import socket
import statistics
import threading
import time

import pytest

from harness import HttpConn, ok_reply, read_until_close, split_response, user_request, wait_until

HEAD_MS = 1000


def slowloris(port, interval=0.2, give_up=8.0):
    """Sends a request head one byte every interval seconds until the proxy answers or closes.
    Returns (seconds from the first byte to the proxy's reaction, bytes received, closed)."""
    payload = (b"GET /predict HTTP/1.1\r\nHost: t\r\nX-User-Id: slowloris\r\nX-Pad: "
               + b"p" * 200 + b"\r\n\r\n")
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    t0 = time.monotonic()
    try:
        for i in range(len(payload)):
            if time.monotonic() - t0 > give_up:
                return None, b"", False
            try:
                s.send(payload[i:i + 1])
            except OSError:
                break  # already closed by the proxy: its reaction came first
            readable, _, _ = select.select([s], [], [], interval)
            if readable:
                break
        reacted = time.monotonic() - t0
        data = bytearray()
        s.settimeout(3)
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return reacted, bytes(data), True
                data += chunk
        except (ConnectionResetError, BrokenPipeError):
            return reacted, bytes(data), True
        except socket.timeout:
            return reacted, bytes(data), False
    finally:
        s.close()


def test_slowloris_cut_at_header_timeout_while_others_are_served(ab_proxy):
    proxy, exp = ab_proxy(50, 50, limits={"client_header_timeout_ms": HEAD_MS})
    results = [None] * 8
    threads = []

    def run(i):
        results[i] = slowloris(proxy.port)

    for i in range(len(results)):
        t = threading.Thread(target=run, args=(i,))
        t.start()
        threads.append(t)

    # meanwhile, ordinary clients: fresh connections and one keep-alive connection
    latencies = []
    statuses = []
    deadline = time.monotonic() + 1.6
    with HttpConn(proxy.port, timeout=5) as ka:
        n = 0
        while time.monotonic() < deadline:
            n += 1
            t = time.monotonic()
            with HttpConn(proxy.port, timeout=5) as c:
                c.send(user_request("fresh-%d" % n))
                statuses.append(c.read_response().status)
            latencies.append(time.monotonic() - t)
            t = time.monotonic()
            ka.send(user_request("ka-%d" % n))
            statuses.append(ka.read_response().status)
            latencies.append(time.monotonic() - t)
            time.sleep(0.02)
    for t in threads:
        t.join(15)

    assert statuses and set(statuses) == {200}, statuses
    assert len(statuses) >= 40, len(statuses)
    assert max(latencies) < 0.5, max(latencies)
    assert statistics.median(latencies) < 0.05, statistics.median(latencies)

    for reacted, data, closed in results:
        assert reacted is not None, "slowloris client never cut off"
        assert 0.9 * HEAD_MS / 1000 <= reacted <= HEAD_MS / 1000 + 1.0, reacted
        assert closed, "connection left open after the header timeout"
        if data:  # a 408, alone, is the only answer allowed
            status, headers, _, rest = split_response(data)
            assert status == 408 and rest == b"", data
    assert proxy.proc.alive()
    # the slow clients did not reach a backend: the outcome log has only the fast requests
    recs = proxy.wait_outcomes(lambda r: r["type"] == "request", len(statuses))
    assert not [r for r in recs if r.get("unit") == "slowloris"]


STALLED_HEADS = [
    ("fresh-connection-no-line-yet", False, b"GET /pre"),
    ("fresh-connection-request-line-sent", False, b"GET /predict HTTP/1.1\r\nHo"),
    ("keep-alive-second-request", True, b"GET /predict HTTP/1.1\r\nHost: t\r\n"),
]


@pytest.mark.parametrize("after_request,partial", [c[1:] for c in STALLED_HEADS],
                         ids=[c[0] for c in STALLED_HEADS])
def test_stalled_head_cut_at_header_timeout(ab_proxy, after_request, partial):
    """A client that sends part of a head and then nothing at all (no further byte to wake the
    proxy up) is cut at the header timeout, measured from that head's first byte (on a
    keep-alive connection, not from the connection's start): a 408 or a close."""
    proxy, exp = ab_proxy(50, 50, limits={"client_header_timeout_ms": HEAD_MS,
                                          "idle_timeout_ms": 10000})
    with HttpConn(proxy.port, timeout=5) as c:
        if after_request:
            assert c.request("GET", "/predict", [("X-User-Id", "first")]).status == 200
            time.sleep(0.7)
        c.send(partial)
        t0 = time.monotonic()
        data, closed = read_until_close(c, timeout=HEAD_MS / 1000 + 3)
        took = time.monotonic() - t0
    assert closed, ("connection still open %.1f s after a partial head (header timeout %d ms);"
                    " received %r" % (took, HEAD_MS, data))
    assert 0.9 * HEAD_MS / 1000 <= took <= HEAD_MS / 1000 + 1.0, took
    if data:
        status, _, _, rest = split_response(data)
        assert status == 408 and rest == b"", data


def test_idle_keep_alive_closed_after_idle_timeout(ab_proxy):
    idle_ms = 1500
    proxy, exp = ab_proxy(50, 50, limits={"idle_timeout_ms": idle_ms,
                                          "client_header_timeout_ms": 10000})
    # a connection in use is not idle: requests 0.5 s apart keep it open well past idle_ms
    with HttpConn(proxy.port, timeout=5) as c:
        for i in range(6):
            assert c.request("GET", "/predict", [("X-User-Id", "busy-%d" % i)]).status == 200
            time.sleep(0.5)
    # an idle one is closed, silently, idle_ms after its last response
    with HttpConn(proxy.port, timeout=5) as c:
        assert c.request("GET", "/predict", [("X-User-Id", "idle")]).status == 200
        t0 = time.monotonic()
        assert not c.is_closed(0.9 * idle_ms / 1000), "closed before the idle timeout"
        assert c.is_closed(idle_ms / 1000 + 1.0), "idle connection still open"
        took = time.monotonic() - t0
        assert c.buf == bytearray(), "the proxy wrote %r to an idle connection" % bytes(c.buf)
    assert 0.9 * idle_ms / 1000 <= took <= idle_ms / 1000 + 1.0, took


def test_partial_body_then_stall_cut_at_client_timeout(procs, make_config, raw_upstream):
    client_ms = 1000
    up = raw_upstream()
    cfg = make_config({"up": up.addr}, [], default_backend="up",
                      limits={"client_timeout_ms": client_ms, "client_header_timeout_ms": 10000,
                              "idle_timeout_ms": 10000, "upstream_timeout_ms": 10000})
    proxy = procs.proxy(cfg)
    with HttpConn(proxy.port, timeout=5) as c:
        c.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        t0 = time.monotonic()
        data, closed = read_until_close(c, timeout=client_ms / 1000 + 2)
        took = time.monotonic() - t0
    assert closed, "stalled client never cut off"
    assert 0.9 * client_ms / 1000 <= took <= client_ms / 1000 + 1.0, took
    if data:  # nothing, or one 408
        status, _, _, rest = split_response(data)
        assert status == 408 and rest == b"", data
    # the upstream got the head and part of the body, never a whole request, and the proxy
    # closed that connection instead of leaving the backend waiting for the rest
    wait_until(lambda: all(closed for _, _, closed in up.snapshot()), timeout=2,
               what="the upstream connection closed")
    assert up.requests() == []
    for got, _, _ in up.snapshot():
        assert got == b"" or got.endswith(b"\r\n\r\n" + b"x" * 10) or got.endswith(b"\r\n\r\n")
    # the proxy still serves
    with HttpConn(proxy.port, timeout=5) as c:
        assert c.request("GET", "/after", [("Host", "t")]).status == 200


def test_client_that_stops_reading_cut_at_client_timeout(procs, make_config, raw_upstream):
    """The upstream streams 16 MiB; the client reads none of it. The proxy stops reading the
    upstream when its buffer is full, and after client_timeout_ms without progress closes both
    sides: nothing is buffered without limit and nobody waits forever."""
    client_ms = 1000
    size = 16 << 20
    started = []

    def big(rc, req):
        if not req.startswith(b"GET /big "):
            return ok_reply(rc, req)
        rc.sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        started.append(time.monotonic())
        block = b"z" * 65536
        for _ in range(size // len(block)):
            rc.sock.sendall(block)

    up = raw_upstream(big)
    cfg = make_config({"up": up.addr}, [], default_backend="up",
                      limits={"client_timeout_ms": client_ms, "upstream_timeout_ms": 10000})
    proxy = procs.proxy(cfg)
    with HttpConn(proxy.port, timeout=5, rcvbuf=4096) as c:
        c.send(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
        wait_until(lambda: started, timeout=3, what="the upstream answering")
        wait_until(lambda: all(closed for _, _, closed in up.snapshot()),
                   timeout=client_ms / 1000 + 3, what="the proxy closing the upstream side")
        cut = up.conns[0].closed_at - started[0]
        data, closed = read_until_close(c, timeout=3)
    assert closed, "client connection left open"
    assert len(data) < size // 2, len(data)
    assert 0.9 * client_ms / 1000 <= cut <= client_ms / 1000 + 2.0, cut
    with HttpConn(proxy.port, timeout=5) as c:
        r = c.request("GET", "/small", [("Host", "t")])
        assert r.status == 200 and r.body == b"ok\n", r
