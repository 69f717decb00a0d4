"""Request and response framing under the robustness contract: every request the proxy cannot
frame unambiguously is refused with the exact status, the connection is closed after the
error, and the backend sees nothing of it; an upstream response it cannot frame never reaches
the client as if it were whole.

What is asserted, case by case:

- Errors found in the request head (the framing headers, obs-fold, whitespace before a colon,
  control characters, bare LF/CR, Host, the version, the limits): the client receives exactly
  one response with the expected status and `Connection: close`, nothing after it, then the
  proxy closes the connection; the upstream (a raw socket server recording every byte) was never
  even connected to. A valid request sent afterwards does reach it, so the zero is not vacuous.
- Errors found in a chunked body (bad chunk size, bad extension, no CRLF after chunk data,
  too large): the head may already have been forwarded while the body streams, so the client
  gets either exactly one 400 (413 for the size limit) followed by a close, or a close with no
  bytes at all; on the upstream side, no connection ever carries a complete request (a strict
  parser never finds one), every connection that received bytes is closed by the proxy, and
  what it received after the head is a prefix of the body's valid bytes (the bad bytes are never
  forwarded).
- Upstream responses the proxy cannot frame: exactly one 502 when the head is refused; when the
  head was already forwarded (bad chunked framing in the middle of the body), the client sees
  at most the valid chunks that came before the error, never a last-chunk, and the connection
  closes, so the truncation cannot pass for a whole body. In every case the proxy closes the
  upstream connection rather than reuse it.
- Right at each limit, a request is accepted and forwarded byte for byte (the body limit is on
  the body's data, so the same 1000 bytes pass with Content-Length and chunked alike).
"""

import time

import pytest

from harness import HttpConn, read_until_close, split_response, wait_until

# The smallest limits the configuration accepts for the head (max_header_bytes >= 1024,
# max_request_line >= 256), and a small body limit.
LIMITS = {"max_header_bytes": 1024, "max_headers": 10, "max_request_line": 256,
          "max_body_bytes": 1000}


@pytest.fixture
def gate(procs, make_config, raw_upstream):
    """A proxy (small limits, no experiment, everything to one backend) in front of a
    RawUpstream. Returns (proxy, upstream)."""
    def start(reply=None, limits=LIMITS):
        up = raw_upstream(reply)
        cfg = make_config({"up": up.addr}, [], default_backend="up", limits=limits)
        return procs.proxy(cfg), up
    return start


def head(start, *fields):
    """A request head: the start line, the field lines as given, CRLF everywhere."""
    return (start + "\r\n" + "".join(f + "\r\n" for f in fields) + "\r\n").encode("latin-1")


def assert_valid_request_passes(proxy, up):
    """A well-formed request still reaches the upstream whole, as the only complete request it
    ever got, and on a connection that carried nothing before it (never appended to what an
    aborted request left on a connection)."""
    with HttpConn(proxy.port, timeout=5) as c:
        r = c.request("GET", "/after", [("Host", "t")])
    assert r.status == 200, r
    assert r.header("X-Raw-Upstream") == "1", r
    reqs = up.requests()
    assert len(reqs) == 1, reqs
    assert reqs[0].startswith(b"GET /after HTTP/1.1\r\n"), reqs[0]
    carriers = [data for data, got, _ in up.snapshot() if got]
    assert len(carriers) == 1 and carriers[0].startswith(b"GET /after "), carriers


def assert_refused(proxy, up, raw, status):
    """raw is refused with exactly one `status` response, then the connection closes, and the
    upstream never hears of it."""
    with HttpConn(proxy.port, timeout=5) as c:
        c.send(raw)
        data, closed = read_until_close(c, timeout=3)
    got, headers, body, rest = split_response(data)
    assert got == status, data
    assert rest == b"", "bytes after the error response: %r" % rest
    assert [v.lower() for n, v in headers if n.lower() == "connection"] == ["close"], headers
    assert body.startswith(b"%d " % status), body
    assert closed, "connection left open after %d" % status
    assert up.conns == [] and up.bytes_received() == 0, up.snapshot()


# --------------------------------------------------------------------------------------------
# Errors in the request head: refused before anything is forwarded.

CHUNKED_HELLO = b"5\r\nhello\r\n0\r\n\r\n"

HEAD_ERRORS = [
    # framing headers
    ("cl-and-te", head("POST /p HTTP/1.1", "Host: t", "Content-Length: 5",
                       "Transfer-Encoding: chunked") + CHUNKED_HELLO, 400),
    ("te-and-cl", head("POST /p HTTP/1.1", "Host: t", "Transfer-Encoding: chunked",
                       "Content-Length: 17") + CHUNKED_HELLO, 400),
    ("two-differing-content-lengths", head("POST /p HTTP/1.1", "Host: t", "Content-Length: 5",
                                           "Content-Length: 6") + b"hello!", 400),
    ("content-length-list-5-6", head("POST /p HTTP/1.1", "Host: t",
                                     "Content-Length: 5, 6") + b"hello!", 400),
    ("content-length-signed", head("POST /p HTTP/1.1", "Host: t",
                                   "Content-Length: +5") + b"hello", 400),
    ("content-length-negative", head("POST /p HTTP/1.1", "Host: t",
                                     "Content-Length: -1"), 400),
    ("te-last-coding-not-chunked", head("POST /p HTTP/1.1", "Host: t",
                                        "Transfer-Encoding: chunked, gzip") + CHUNKED_HELLO,
     400),
    ("te-gzip-alone", head("POST /p HTTP/1.1", "Host: t",
                           "Transfer-Encoding: gzip") + b"hello", 400),
    ("te-xchunked", head("POST /p HTTP/1.1", "Host: t",
                         "Transfer-Encoding: xchunked") + CHUNKED_HELLO, 400),
    ("te-second-field-not-chunked", head("POST /p HTTP/1.1", "Host: t",
                                         "Transfer-Encoding: chunked",
                                         "Transfer-Encoding: identity") + CHUNKED_HELLO, 400),
    ("te-in-http10", head("POST /p HTTP/1.0", "Host: t",
                          "Transfer-Encoding: chunked") + CHUNKED_HELLO, 400),
    # field syntax
    ("obs-fold-space", head("GET /p HTTP/1.1", "Host: t", "X-Test: one", " two"), 400),
    ("obs-fold-tab", head("GET /p HTTP/1.1", "Host: t", "X-Test: one", "\ttwo"), 400),
    ("space-before-colon", head("GET /p HTTP/1.1", "Host: t", "X-Test : one"), 400),
    ("tab-before-colon", head("GET /p HTTP/1.1", "Host: t", "X-Test\t: one"), 400),
    ("space-before-colon-content-length", head("POST /p HTTP/1.1", "Host: t",
                                               "Content-Length : 5") + b"hello", 400),
    ("ctl-0x01-in-value", head("GET /p HTTP/1.1", "Host: t", "X-Test: a\x01b"), 400),
    ("nul-in-value", head("GET /p HTTP/1.1", "Host: t", "X-Test: a\x00b"), 400),
    ("del-in-value", head("GET /p HTTP/1.1", "Host: t", "X-Test: a\x7fb"), 400),
    ("esc-in-value", head("GET /p HTTP/1.1", "Host: t", "X-Test: a\x1b[0mb"), 400),
    # line endings
    ("bare-lf-everywhere", b"GET /p HTTP/1.1\nHost: t\nX-Test: 1\n\n", 400),
    ("bare-lf-one-field", b"GET /p HTTP/1.1\r\nHost: t\nX-Test: 1\r\n\r\n", 400),
    ("bare-lf-request-line", b"GET /p HTTP/1.1\nHost: t\r\n\r\n", 400),
    ("bare-lf-smuggled-field", b"GET /p HTTP/1.1\r\nHost: t\r\nX-Test: 1\nContent-Length: 5"
                               b"\r\n\r\nhello", 400),
    ("bare-cr", b"GET /p HTTP/1.1\r\nHost: t\rX-Test: 1\r\n\r\n", 400),
    # Host
    ("http11-without-host", head("GET /p HTTP/1.1", "X-Test: 1"), 400),
    ("two-hosts-same", head("GET /p HTTP/1.1", "Host: t", "Host: t"), 400),
    ("two-hosts-differing", head("GET /p HTTP/1.1", "Host: a.example", "Host: b.example"), 400),
    # version
    ("http-2.0", head("GET /p HTTP/2.0", "Host: t"), 505),
    # limits
    ("header-section-over-max-header-bytes",
     head("GET /p HTTP/1.1", "Host: t", *("X-Pad-%d: %s" % (i, "p" * 300) for i in range(4))),
     431),
    ("header-count-over-max-headers",
     head("GET /p HTTP/1.1", "Host: t", *("X-N-%d: v" % i for i in range(10))), 431),
    ("request-line-over-max-request-line",
     head("GET /" + "a" * 300 + " HTTP/1.1", "Host: t"), 414),
    ("content-length-over-max-body-bytes",
     head("POST /p HTTP/1.1", "Host: t", "Content-Length: 1001") + b"x" * 1001, 413),
    ("content-length-over-max-body-bytes-head-only",
     head("POST /p HTTP/1.1", "Host: t", "Content-Length: 5000000"), 413),
]


@pytest.mark.parametrize("raw,status", [c[1:] for c in HEAD_ERRORS],
                         ids=[c[0] for c in HEAD_ERRORS])
def test_bad_request_head_refused_and_closed_backend_sees_nothing(gate, raw, status):
    proxy, up = gate()
    assert_refused(proxy, up, raw, status)
    assert_valid_request_passes(proxy, up)


def test_bad_head_after_a_good_request_on_the_same_connection(gate):
    """The error closes a keep-alive connection that already served a request, and the bad
    request does not reach the upstream over the pooled connection either."""
    proxy, up = gate()
    with HttpConn(proxy.port, timeout=5) as c:
        r = c.request("GET", "/first", [("Host", "t")])
        assert r.status == 200
        c.send(head("POST /p HTTP/1.1", "Host: t", "Content-Length: 5",
                    "Transfer-Encoding: chunked") + CHUNKED_HELLO)
        data, closed = read_until_close(c, timeout=3)
    status, headers, _, rest = split_response(data)
    assert status == 400 and rest == b"", data
    assert closed
    reqs = up.requests()
    assert len(reqs) == 1 and reqs[0].startswith(b"GET /first "), reqs
    assert b"hello" not in b"".join(d for d, _, _ in up.snapshot())


# Right at the limits: accepted and forwarded whole.

ACCEPTED = [
    ("max-headers-exactly",
     head("GET /p HTTP/1.1", "Host: t", *("X-N-%d: v" % i for i in range(9)))),
    ("request-line-exactly-max",
     head("GET /" + "a" * (256 - len("GET / HTTP/1.1")) + " HTTP/1.1", "Host: t")),
    ("head-under-max-header-bytes",
     head("GET /p HTTP/1.1", "Host: t", "X-Pad: " + "p" * 700)),
    ("content-length-exactly-max-body",
     head("POST /p HTTP/1.1", "Host: t", "Content-Length: 1000") + b"x" * 1000),
    ("chunked-exactly-max-body",
     head("POST /p HTTP/1.1", "Host: t", "Transfer-Encoding: chunked")
     + b"1f4\r\n" + b"x" * 500 + b"\r\n1f4;name=value\r\n" + b"y" * 500 + b"\r\n0\r\n\r\n"),
]


@pytest.mark.parametrize("raw", [c[1] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_request_at_the_limits_is_forwarded(gate, raw):
    assert len(raw.split(b"\r\n", 1)[0]) <= LIMITS["max_request_line"]
    proxy, up = gate()
    with HttpConn(proxy.port, timeout=5) as c:
        c.send(raw)
        r = c.read_response()
        assert r.status == 200, r
        assert r.header("X-Raw-Upstream") == "1"
        assert not c.is_closed(0.2)
    reqs = up.requests()
    assert len(reqs) == 1, up.snapshot()
    body_in = raw.split(b"\r\n\r\n", 1)[1]
    assert reqs[0].endswith(b"\r\n\r\n" + body_in), reqs[0][-200:]


# --------------------------------------------------------------------------------------------
# Errors in a chunked request body: the head may have been forwarded already.

CHUNK_HEAD = head("POST /p HTTP/1.1", "Host: t", "Transfer-Encoding: chunked")

# (name, valid body prefix, bad rest, expected status when the proxy still answers)
CHUNKED_ERRORS = [
    ("size-zz", b"5\r\nhello\r\n", b"zz\r\nhello\r\n0\r\n\r\n", 400),
    ("size-zz-first", b"", b"zz\r\nhello\r\n0\r\n\r\n", 400),
    ("size-too-many-hex-digits", b"5\r\nhello\r\n",
     b"00000000000000000005\r\nhello\r\n0\r\n\r\n", 400),
    ("size-huge", b"", b"fffffffffffffffffff\r\nhello\r\n0\r\n\r\n", 400),
    ("size-negative", b"5\r\nhello\r\n", b"-5\r\nhello\r\n0\r\n\r\n", 400),
    ("size-with-0x", b"", b"0x5\r\nhello\r\n0\r\n\r\n", 400),
    ("size-empty", b"5\r\nhello\r\n", b"\r\nhello\r\n0\r\n\r\n", 400),
    ("extension-empty-name", b"5\r\nhello\r\n", b"5;=v\r\nhello\r\n0\r\n\r\n", 400),
    ("extension-control-char", b"5\r\nhello\r\n", b"5;e=\x01\r\nhello\r\n0\r\n\r\n", 400),
    ("extension-unterminated-quote", b"", b'5;e="open\r\nhello\r\n0\r\n\r\n', 400),
    ("no-crlf-after-data", b"5\r\nhello", b"XX0\r\n\r\n", 400),
    ("bare-lf-after-data", b"5\r\nhello", b"\n0\r\n\r\n", 400),
    ("bare-lf-after-size", b"", b"5\nhello\r\n0\r\n\r\n", 400),
    ("over-max-body-bytes", b"200\r\n" + b"x" * 512 + b"\r\n",
     b"200\r\n" + b"y" * 512 + b"\r\n0\r\n\r\n", 413),
]


def check_upstream_never_got_a_request(up, valid):
    """No connection carries a complete request; each that received bytes is closed by the
    proxy; after the forwarded head, only a prefix of the valid body bytes arrived."""
    wait_until(lambda: all(closed for data, _, closed in up.snapshot() if data),
               timeout=3, what="the proxy closing the upstream connection")
    for data, reqs, closed in up.snapshot():
        assert reqs == [], reqs
        if not data:
            continue
        i = data.find(b"\r\n\r\n")
        assert i > 0 and data.startswith(b"POST /p HTTP/1.1\r\n"), data
        assert valid.startswith(data[i + 4:]), (data[i + 4:], valid)


def assert_client_got_error_or_close(c, status):
    """Exactly one `status` response then a close, or a close with no bytes at all."""
    data, closed = read_until_close(c, timeout=3)
    assert closed, "connection left open after a bad chunked body (got %r)" % data
    if data:
        got, headers, _, rest = split_response(data)
        assert got == status, data
        assert rest == b"", rest
        assert [v.lower() for n, v in headers if n.lower() == "connection"] == ["close"]
    return data


@pytest.mark.parametrize("valid,bad,status", [c[1:] for c in CHUNKED_ERRORS],
                         ids=[c[0] for c in CHUNKED_ERRORS])
def test_bad_chunked_body_in_one_write(gate, valid, bad, status):
    proxy, up = gate()
    with HttpConn(proxy.port, timeout=5) as c:
        c.send(CHUNK_HEAD + valid + bad)
        assert_client_got_error_or_close(c, status)
    check_upstream_never_got_a_request(up, valid)
    assert_valid_request_passes(proxy, up)


@pytest.mark.parametrize("valid,bad,status",
                         [c[1:] for c in CHUNKED_ERRORS if c[1]],
                         ids=[c[0] for c in CHUNKED_ERRORS if c[1]])
def test_bad_chunked_body_after_the_head_was_forwarded(gate, valid, bad, status):
    """The valid part goes first and is seen at the upstream before the bad part is sent, so
    the proxy has certainly forwarded the head: it must abort the upstream request."""
    proxy, up = gate()
    with HttpConn(proxy.port, timeout=5) as c:
        c.send(CHUNK_HEAD + valid)
        wait_until(lambda: up.bytes_received() > 0 and
                   up.snapshot()[0][0].endswith(b"\r\n\r\n" + valid),
                   timeout=3, what="the head and the valid chunks at the upstream")
        c.send(bad)
        assert_client_got_error_or_close(c, status)
    check_upstream_never_got_a_request(up, valid)
    assert len(up.conns) == 1
    assert_valid_request_passes(proxy, up)


# --------------------------------------------------------------------------------------------
# The same strictness on upstream responses.


def reply_with(*parts, pause=0.0):
    """A RawUpstream reply that writes parts in order, pausing between them, then leaves the
    connection open (the proxy must be the one to close it)."""
    def reply(rc, req):
        for i, p in enumerate(parts):
            if i and pause:
                time.sleep(pause)
            rc.sock.sendall(p)
    return reply


BAD_RESPONSES = [
    ("cl-and-te", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\n0\r\n\r\n"),
    ("te-and-cl", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
                  b"5\r\nhello\r\n0\r\n\r\n"),
    ("status-line-two-digit-code", b"HTTP/1.1 20 OK\r\nContent-Length: 5\r\n\r\nhello"),
    ("status-line-letters-in-code", b"HTTP/1.1 2OO OK\r\nContent-Length: 5\r\n\r\nhello"),
    ("status-line-bad-protocol", b"HTTX/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
    ("status-line-garbage", b"hello world\r\n\r\n"),
    ("obs-fold", b"HTTP/1.1 200 OK\r\nX-Test: one\r\n two\r\nContent-Length: 5\r\n\r\nhello"),
    ("obs-fold-tab", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Test: one\r\n\ttwo\r\n\r\n"
                     b"hello"),
    ("two-differing-content-lengths", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                                      b"Content-Length: 6\r\n\r\nhello!"),
]


@pytest.mark.parametrize("raw", [c[1] for c in BAD_RESPONSES], ids=[c[0] for c in BAD_RESPONSES])
def test_bad_upstream_response_head_gives_502(gate, raw):
    proxy, up = gate(reply_with(raw))
    with HttpConn(proxy.port, timeout=5) as c:
        r = c.request("GET", "/p", [("Host", "t")])
        assert r.status == 502, r
        assert b"hello" not in r.body, r
        assert r.header("X-Test") is None
    assert len(up.requests()) == 1
    wait_until(lambda: all(closed for _, _, closed in up.snapshot()), timeout=3,
               what="the proxy closing the upstream connection that sent a bad head")


def read_chunks_until_close(c, timeout=3.0):
    """Decodes the chunked body of a response whose head was read, until the connection closes.
    Returns (data of the complete chunks, whether the last-chunk arrived, closed)."""
    raw, closed = read_until_close(c, timeout)
    data = bytearray()
    pos = 0
    while True:
        eol = raw.find(b"\r\n", pos)
        if eol < 0:
            return bytes(data), False, closed
        size = int(raw[pos:eol].split(b";")[0], 16)
        if size == 0:
            return bytes(data), raw[eol:].startswith(b"\r\n\r\n"), closed
        if len(raw) < eol + 2 + size + 2:
            return bytes(data), False, closed
        data += raw[eol + 2:eol + 2 + size]
        pos = eol + 2 + size + 2


def test_bad_chunked_upstream_body_after_the_head_truncates_and_closes(gate):
    first = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Test: streamed\r\n\r\n" \
            b"5\r\nhello\r\n"
    proxy, up = gate(reply_with(first, b"zz\r\nworld\r\n0\r\n\r\n", pause=0.3))
    with HttpConn(proxy.port, timeout=5) as c:
        c.send(head("GET /p HTTP/1.1", "Host: t"))
        version, status, _, headers = c.read_head()
        assert status == 200
        assert dict((n.lower(), v) for n, v in headers).get("x-test") == "streamed"
        data, ended, closed = read_chunks_until_close(c)
    assert data == b"hello", data
    assert not ended, "the client saw a last-chunk: the truncation looks like a whole body"
    assert closed, "client connection left open after a broken upstream body"
    wait_until(lambda: all(closed for _, _, closed in up.snapshot()), timeout=3,
               what="the proxy closing the upstream connection")


@pytest.mark.parametrize("bad", [b"zz\r\nworld\r\n0\r\n\r\n", b"5\r\nworldXX0\r\n\r\n",
                                 b"-5\r\nworld\r\n0\r\n\r\n"],
                         ids=["size-zz", "no-crlf-after-data", "size-negative"])
def test_bad_chunked_upstream_body_in_one_write(gate, bad):
    """Head and broken body arrive together: either the proxy refuses it whole (exactly one
    502), or it has forwarded the head and then cuts the body short (at most the valid chunk,
    no last-chunk, then a close)."""
    raw = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Test: streamed\r\n\r\n"
           b"5\r\nhello\r\n" + bad)
    proxy, up = gate(reply_with(raw))
    with HttpConn(proxy.port, timeout=5) as c:
        c.send(head("GET /p HTTP/1.1", "Host: t"))
        version, status, _, headers = c.read_head()
        if status == 502:
            names = [n.lower() for n, _ in headers]
            assert "x-test" not in names
            cl = int(dict((n.lower(), v) for n, v in headers)["content-length"])
            assert b"hello" not in c._read_exact(cl)
        else:
            # the head went out before the framing error was found: what follows it is at
            # most the valid chunk, never a last-chunk, and the connection closes
            assert status == 200, (status, headers)
            data, ended, closed = read_chunks_until_close(c)
            assert b"hello".startswith(data) and not ended and closed, (data, ended, closed)
    wait_until(lambda: all(closed for _, _, closed in up.snapshot()), timeout=3,
               what="the proxy closing the upstream connection")
