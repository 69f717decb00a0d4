"""Framing that cannot be smuggled: a differential request-smuggling probe tier.

Each probe is raw bytes written on one client connection, followed on the same connection by
a benign `GET /benign-N HTTP/1.1`. The proxy sits in front of recorder.Recorder, a backend
that reads with a strict RFC 9112 reader and records the request boundaries each upstream
connection carried. The same strict reader, run over the client's bytes, says what the
proxy may do: refuse (an error status, or a close), or forward exactly the requests it finds,
with the same bodies, and then the benign request. Where RFC 9112 or RFC 9110 explicitly
lets a recipient be lenient (a bare LF as line end, obs-fold replaced by SP, NUL or CR in a
value replaced by SP, Transfer-Encoding overriding Content-Length with a close afterwards,
a repeated identical Content-Length, a request line split on any whitespace, empty lines
before a request line), the reading with that leniency is accepted as well
(recorder.all_readings).

A probe is a DESYNC when:
- the recorder read a request that no accepted reading contains (a smuggled `/pN/smuggled`,
  a request split or joined at another boundary), or bytes it cannot frame at all;
- a forwarded request lost its framing (body bytes without Content-Length or
  Transfer-Encoding), its body changed, or an HTTP/1.1 request went out without Host;
- a response went missing (a valid request unanswered), came from the proxy for a request at
  a clean boundary, or was the upstream's answer to another request (X-Rec-Id);
- abgate only: a forwarded request without X-Forwarded-For, without exactly one
  X-Request-Id (the client's, when it sent a valid one), or with an X-Abgate-* header abgate
  did not set itself.

The test asserts zero desyncs and prints `probes: N, desyncs: D, rejected: R, forwarded: F`.
A second test checks the response side: an upstream answer whose Connection header names
Content-Length or Transfer-Encoding reaches the client with its framing (or as a 502).

Peers, run by hand with the same probes and the same recorder
(`/usr/bin/python3 tests/integration/test_smuggling.py [abgate] [nginx] [haproxy]`; nginx:
proxy_http_version 1.1, Connection "", an upstream keepalive pool; HAProxy: mode http,
http-reuse always; both add X-Forwarded-For):

- nginx 1.22.1: 349 probes, 18 desyncs, 184 rejected, 147 forwarded (11 of them under a
  permitted leniency: bare LF in the head, whitespace in the request line, empty lines before
  it, CR or NUL in a value). The recorder never read a request at a boundary the client
  did not send (nginx reads each body itself and forwards it with its own Content-Length);
  the desyncs are what it forwards where a strict reader refuses: 14 chunked bodies it
  accepts and re-frames (a chunk size followed by SP or HTAB, empty or unterminated chunk
  extensions, a control character in one, bare LF after the size, the data or the last chunk,
  trailers with whitespace before the colon, bare LF or obs-fold, and a trailer section never
  ended, where it takes the benign request's lines for trailers and drops that request),
  0x01 and 0x7f in a field value passed on verbatim (2), HTTP/1.10 read as HTTP/1.1, and a
  request line without a version served as HTTP/0.9 (forwarded, answered with a bare body).
- HAProxy 2.6.12: 349 probes, 23 desyncs, 139 rejected, 187 forwarded (42 under a permitted
  leniency: Transfer-Encoding overriding Content-Length with a close afterwards, repeated
  identical Content-Length, obs-fold, bare LF in the head, request-line whitespace).
  No request split at the upstream either, but: an HTTP/1.0 request with Transfer-Encoding:
  chunked goes out as HTTP/1.0 with the chunked body (2; RFC 9112 6.1 has the recipient treat
  that framing as faulty, and a backend that ignores Transfer-Encoding in HTTP/1.0 reads the
  chunk as the next request: in the TE.CL variant, GET /pN/smuggled); 12 of the same lax
  chunked bodies as nginx, re-chunked; NUL, 0x01 and 0x7f in values (3) and NUL in a trailer
  passed on verbatim; HTTP/1.1 without Host, two identical Host fields and `Host: x, y`
  forwarded (3); HTTP/2.0 and HTTP/0.9 request lines forwarded as HTTP/1.x requests (2).
- abgate before issue 12 (the binary that drops what Connection names): 56 desyncs, 50 of them
  the Connection-naming class (Content-Length or Transfer-Encoding named: the upstream read
  /pN/smuggled; Host named: HTTP/1.1 without Host; X-Request-Id named: no X-Request-Id), 5
  repeated identical Content-Length values forwarded verbatim as the client's list, and
  `Host: x, y` forwarded.
"""

import os
import re
import shutil
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pytest  # noqa: E402

import harness  # noqa: E402
from harness import HOST, Config, Experiment, Proc, free_port, port_open, wait_until  # noqa: E402
from recorder import (Incomplete, Malformed, Recorder, StrictReader, all_readings,  # noqa: E402
                      named_framing_response)

TIMEOUT = 2.0        # the longest a probe waits for one more byte
EXTRA_WAIT = 0.05    # how long it waits for an unexpected extra response
PROBE_LIMIT = 5.0    # the most one probe's exchange may take
PROBE_BUDGET = 40    # the most the whole probe list may take in the test

# ---------------------------------------------------------------------------------------------
# Building probes. t is the probe's tag path ("/p17"); every request a probe carries has a
# target under it, so the recorder's events can be traced back to the probe that caused them.


def msg(start, *fields, body="", eol="\r\n"):
    """A request: the start line, the field lines as given, an empty line, the body."""
    s = start + eol + "".join(f + eol for f in fields) + eol
    if isinstance(body, str):
        body = body.encode("latin-1")
    return s.encode("latin-1") + body


def inner(t, name="inner"):
    """A whole request, used as a body or pipelined after one."""
    return "GET %s/%s HTTP/1.1\r\nHost: x\r\n\r\n" % (t, name)


def chunk(data):
    return "%x\r\n%s\r\n" % (len(data), data)


def benign(n):
    return b"GET /benign-%d HTTP/1.1\r\nHost: x\r\n\r\n" % n


def tag_of(t):
    return int(t[2:])


class Probe:
    def __init__(self, cls, name, build, control=False):
        self.cls = cls
        self.name = name
        self.build = build        # build(t) -> bytes
        self.control = control    # a plainly valid request: abgate must forward it

    def __repr__(self):
        return "%s/%s" % (self.cls, self.name)


PROBES = []


def add(cls, name, build, control=False):
    PROBES.append(Probe(cls, name, build, control))


# -- controls: plainly valid requests ----------------------------------------------------------

add("control", "get", lambda t: msg("GET %s/plain HTTP/1.1" % t, "Host: x"), True)
add("control", "post-content-length",
    lambda t: msg("POST %s/a HTTP/1.1" % t, "Host: x", "Content-Length: 5", body="hello"), True)
add("control", "post-empty-content-length",
    lambda t: msg("POST %s/a HTTP/1.1" % t, "Host: x", "Content-Length: 0"), True)
add("control", "post-chunked",
    lambda t: msg("POST %s/c HTTP/1.1" % t, "Host: x", "Transfer-Encoding: chunked",
                  body="5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), True)
add("control", "post-chunked-extensions",
    lambda t: msg("POST %s/c HTTP/1.1" % t, "Host: x", "Transfer-Encoding: chunked",
                  body='5;name=value;q="quoted v"\r\nhello\r\n0;last\r\n\r\n'), True)
add("control", "post-chunked-trailer",
    lambda t: msg("POST %s/c HTTP/1.1" % t, "Host: x", "Transfer-Encoding: chunked",
                  body="5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n"), True)
add("control", "connection-keep-alive",
    lambda t: msg("GET %s/a HTTP/1.1" % t, "Host: x", "Connection: keep-alive"), True)
add("control", "pipelined-two",
    lambda t: msg("GET %s/a HTTP/1.1" % t, "Host: x") + inner(t).encode(), True)
add("control", "body-that-looks-like-a-request",
    lambda t: msg("POST %s/a HTTP/1.1" % t, "Host: x",
                  "Content-Length: %d" % len(inner(t, "in-body")), body=inner(t, "in-body")),
    True)
add("control", "expect-100-continue-with-body",
    lambda t: msg("POST %s/a HTTP/1.1" % t, "Host: x", "Expect: 100-continue",
                  "Content-Length: 5", body="hello"), True)
add("control", "connection-close-then-second-request",
    lambda t: msg("GET %s/a HTTP/1.1" % t, "Host: x", "Connection: close")
    + inner(t, "after-close").encode(), True)
add("control", "http10-then-second-request",
    lambda t: msg("GET %s/a HTTP/1.0" % t, "Host: x") + inner(t, "after-close").encode(), True)
add("control", "http10-keep-alive",
    lambda t: msg("GET %s/a HTTP/1.0" % t, "Host: x", "Connection: keep-alive"), True)
add("control", "x-forwarded-for-from-client",
    lambda t: msg("GET %s/a HTTP/1.1" % t, "Host: x", "X-Forwarded-For: 198.51.100.1"), True)
add("control", "x-request-id-from-client",
    lambda t: msg("GET %s/a HTTP/1.1" % t, "Host: x", "X-Request-Id: rid-%d" % tag_of(t)), True)

# -- Connection naming framing and routing fields ---------------------------------------------
# The named field must never be removed: the body is a whole request, so a proxy that drops
# Content-Length or Transfer-Encoding and passes the bytes on makes the upstream read
# /pN/smuggled as a request of its own.

CONNECTION_FORMS = [
    # (name, Connection field lines with {F}, placed after the named field)
    ("alone-before", ["Connection: {F}"], False),
    ("alone-after", ["Connection: {F}"], True),
    ("with-keep-alive", ["Connection: keep-alive, {F}"], False),
    ("first-no-space", ["Connection: {F},keep-alive"], False),
    ("second-connection-field", ["Connection: keep-alive", "Connection: {F}"], True),
    ("with-close", ["Connection: close, {F}"], False),
]


def _named(t, kind):
    """(start line, the named field line, body) for one kind of named field."""
    smuggled = inner(t, "smuggled")
    if kind == "cl":
        return ("POST %s/a HTTP/1.1" % t, "Content-Length: %d" % len(smuggled), smuggled)
    if kind == "te":
        return ("POST %s/a HTTP/1.1" % t, "Transfer-Encoding: chunked",
                chunk(smuggled) + "0\r\n\r\n")
    if kind == "host":
        return ("GET %s/a HTTP/1.1" % t, "Host: x", "")
    if kind == "xff":
        return ("GET %s/a HTTP/1.1" % t, "X-Forwarded-For: 203.0.113.7", "")
    if kind == "xrid":
        return ("GET %s/a HTTP/1.1" % t, "X-Request-Id: rid-%d" % tag_of(t), "")
    if kind == "xabgate":
        return ("GET %s/a HTTP/1.1" % t, "X-Abgate-Variant: treatment", "")
    raise ValueError(kind)


def _connection_probe(kind, token, lines, after):
    def build(t):
        start, field, body = _named(t, kind)
        conn = [c.replace("{F}", token) for c in lines]
        fields = [] if kind == "host" else ["Host: x"]
        fields += ([field] + conn) if after else (conn + [field])
        return msg(start, *fields, body=body)
    return build


for _kind, _tokens in [("cl", ["Content-Length", "content-length", "CONTENT-LENGTH"]),
                       ("te", ["Transfer-Encoding", "transfer-encoding"]),
                       ("host", ["Host"]), ("xff", ["X-Forwarded-For"]),
                       ("xrid", ["X-Request-Id"]), ("xabgate", ["X-Abgate-Variant"])]:
    for _token in _tokens:
        for _form, _lines, _after in CONNECTION_FORMS:
            add("connection-names", "%s-%s" % (_token, _form),
                _connection_probe(_kind, _token, _lines, _after))


def _smuggle_cl(t, *fields, method="POST"):
    s = inner(t, "smuggled")
    return msg("%s %s/a HTTP/1.1" % (method, t), "Host: x", *fields,
               "Content-Length: %d" % len(s), body=s)


add("connection-names", "Content-Length-on-get",
    lambda t: _smuggle_cl(t, "Connection: Content-Length", method="GET"))
add("connection-names", "Content-Length-with-expect",
    lambda t: _smuggle_cl(t, "Expect: 100-continue", "Connection: Content-Length"))
add("connection-names", "Host-and-Content-Length",
    lambda t: _smuggle_cl(t, "Connection: Host, Content-Length"))
add("connection-names", "Upgrade-and-Content-Length",
    lambda t: _smuggle_cl(t, "Upgrade: h2c", "Connection: Upgrade, Content-Length"))
add("connection-names", "Content-Length-and-Transfer-Encoding-named",
    lambda t: _smuggle_cl(t, "Connection: Content-Length, Transfer-Encoding"))
add("connection-names", "lowercase-connection-field",
    lambda t: _smuggle_cl(t, "connection: content-length"))
add("connection-names", "Content-Length-http10-keep-alive",
    lambda t: msg("POST %s/a HTTP/1.0" % t, "Host: x", "Connection: keep-alive, Content-Length",
                  "Content-Length: %d" % len(inner(t, "smuggled")), body=inner(t, "smuggled")))
add("connection-names", "Transfer-Encoding-with-trailer",
    lambda t: msg("POST %s/a HTTP/1.1" % t, "Host: x", "Connection: Transfer-Encoding, Trailer",
                  "Trailer: X-T", "Transfer-Encoding: chunked",
                  body=chunk(inner(t, "smuggled")) + "0\r\nX-T: 1\r\n\r\n"))

# -- Transfer-Encoding obfuscations ------------------------------------------------------------
# Each value in three bodies: chunked alone; CL.TE (Content-Length covers a zero chunk and a
# request, so a chunked reading sees /pN/smuggled pipelined while a Content-Length one does
# not); TE.CL (Content-Length stops after the first size line, so a Content-Length reading sees
# /pN/smuggled while a chunked one reads it as chunk data).

TE_VALUES = [
    ("chunked", "chunked"), ("capitalised", "Chunked"), ("uppercase", "CHUNKED"),
    ("leading-space", " chunked"), ("trailing-space", "chunked "), ("leading-tab", "\tchunked"),
    ("trailing-tab", "chunked\t"), ("identity-chunked", "identity, chunked"),
    ("gzip-chunked", "gzip, chunked"), ("trailing-comma", "chunked,"),
    ("leading-comma", ", chunked"), ("empty-element-first", " , chunked"),
    ("xchunked", "xchunked"), ("chunkedx", "chunkedx"), ("chunked-identity", "chunked, identity"),
    ("chunked-gzip", "chunked, gzip"), ("chunked-twice", "chunked, chunked"),
    ("split-word", "chun ked"), ("quoted", '"chunked"'), ("with-parameter", "chunked;q=1"),
    ("vertical-tab", "\x0bchunked"), ("form-feed", "\x0cchunked"), ("truncated", "chunk"),
    ("identity", "identity"), ("empty", ""), ("nul-after", "chunked\x00"),
    ("cr-after", "chunked\r"),
]

TE_FORMS = [
    # (name, field lines carrying the coding {V})
    ("space-before-colon", ["Transfer-Encoding : {V}"]),
    ("tab-before-colon", ["Transfer-Encoding\t: {V}"]),
    ("tab-after-colon", ["Transfer-Encoding:\t{V}"]),
    ("no-space-after-colon", ["Transfer-Encoding:{V}"]),
    ("lowercase-name", ["transfer-encoding: {V}"]),
    ("underscore-name", ["Transfer_Encoding: {V}"]),
    ("folded-value", ["Transfer-Encoding:", " {V}"]),
    ("folded-into-previous", ["X-Pad: a", " Transfer-Encoding: {V}"]),
    ("two-fields-chunked-chunked", ["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"]),
    ("two-fields-chunked-identity", ["Transfer-Encoding: chunked",
                                     "Transfer-Encoding: identity"]),
    ("two-fields-identity-chunked", ["Transfer-Encoding: identity",
                                     "Transfer-Encoding: chunked"]),
    ("two-fields-xchunked-chunked", ["Transfer-Encoding: xchunked",
                                     "Transfer-Encoding: chunked"]),
    ("two-fields-chunked-xchunked", ["Transfer-Encoding: chunked",
                                     "Transfer-Encoding: xchunked"]),
    ("two-fields-chunked-empty", ["Transfer-Encoding: chunked", "Transfer-Encoding: "]),
]


def _te_probe(te_lines, body_kind, version="HTTP/1.1"):
    def build(t):
        start = "POST %s/te %s" % (t, version)
        if body_kind == "te":
            return msg(start, "Host: x", *te_lines, body="5\r\nhello\r\n0\r\n\r\n")
        s = inner(t, "smuggled")
        if body_kind == "cl-te":
            body = "0\r\n\r\n" + s
            return msg(start, "Host: x", "Content-Length: %d" % len(body), *te_lines, body=body)
        body = chunk(s) + "0\r\n\r\n"
        first = len("%x\r\n" % len(s))
        return msg(start, "Host: x", *te_lines, "Content-Length: %d" % first, body=body)
    return build


for _name, _value in TE_VALUES:
    for _body in ("te", "cl-te", "te-cl"):
        add("transfer-encoding", "%s-%s" % (_name, _body),
            _te_probe(["Transfer-Encoding: " + _value], _body))
for _name, _lines in TE_FORMS:
    for _body in ("te", "te-cl"):
        add("transfer-encoding", "%s-%s" % (_name, _body),
            _te_probe([ln.replace("{V}", "chunked") for ln in _lines], _body))
for _body in ("te", "te-cl"):
    add("transfer-encoding", "http10-%s" % _body,
        _te_probe(["Transfer-Encoding: chunked"], _body, "HTTP/1.0"))

# -- Content-Length ----------------------------------------------------------------------------
# The body is "hello" followed by a whole request: read as 5, /pN/inner is pipelined; any other
# length splits somewhere else.

CL_VALUES = [
    ("plain", "5"), ("leading-zero", "05"), ("leading-zeros", "0005"), ("leading-space", " 5"),
    ("trailing-space", "5 "), ("leading-tab", "\t5"), ("plus", "+5"), ("minus", "-5"),
    ("minus-one", "-1"), ("list-same", "5, 5"), ("list-same-no-space", "5,5"),
    ("list-differing", "5, 6"), ("list-differing-reversed", "6, 5"), ("space-inside", "5 6"),
    ("decimal-point", "5.0"), ("exponent", "5e0"), ("hex", "0x5"), ("empty", ""),
    ("trailing-comma", "5,"), ("leading-comma", ",5"), ("overflow-32-bit", "4294967301"),
    ("overflow-64-bit", "18446744073709551621"), ("huge", "99999999999999999999999"),
    ("nul-after", "5\x00"), ("nul-before", "\x005"), ("bare-cr-inside", "5\r6"),
    ("fullwidth-digit", "\xef\xbc\x95"),
]

CL_FORMS = [
    ("two-fields-same", ["Content-Length: 5", "Content-Length: 5"]),
    ("two-fields-differing", ["Content-Length: 5", "Content-Length: 6"]),
    ("two-fields-differing-reversed", ["Content-Length: 6", "Content-Length: 5"]),
    ("two-fields-05-5", ["Content-Length: 5", "Content-Length: 05"]),
    ("two-fields-one-empty", ["Content-Length: 5", "Content-Length: "]),
    ("two-fields-one-list", ["Content-Length: 5", "Content-Length: 5, 5"]),
    ("space-before-colon", ["Content-Length : 5"]),
    ("tab-before-colon", ["Content-Length\t: 5"]),
    ("space-in-name", ["Content Length: 5"]),
    ("no-space-after-colon", ["Content-Length:5"]),
    ("lowercase-name", ["content-length: 5"]),
    ("folded-value", ["Content-Length:", " 5"]),
    ("folded-into-previous", ["X-Pad: a", " Content-Length: 5"]),
]


def _cl_probe(cl_lines, method="POST", version="HTTP/1.1"):
    def build(t):
        return msg("%s %s/cl %s" % (method, t, version), "Host: x", *cl_lines,
                   body="hello" + inner(t))
    return build


for _name, _value in CL_VALUES:
    add("content-length", _name, _cl_probe(["Content-Length: " + _value]))
for _name, _lines in CL_FORMS:
    add("content-length", _name, _cl_probe(_lines))
add("content-length", "http10", _cl_probe(["Content-Length: 5"], version="HTTP/1.0"))
add("content-length", "http10-keep-alive",
    _cl_probe(["Connection: keep-alive", "Content-Length: 5"], version="HTTP/1.0"))
add("content-length", "get-with-body", _cl_probe(["Content-Length: 5"], method="GET"))

# -- chunked framing ---------------------------------------------------------------------------

CHUNKED_BODIES = [
    ("leading-zeros", "005\r\nhello\r\n0\r\n\r\n"),
    ("twenty-digit-size", "00000000000000000005\r\nhello\r\n0\r\n\r\n"),
    ("uppercase-hex", "A\r\n0123456789\r\n0\r\n\r\n"),
    ("lowercase-hex", "a\r\n0123456789\r\n0\r\n\r\n"),
    ("extension-bare", "5;ext\r\nhello\r\n0\r\n\r\n"),
    ("extension-quoted", '5;e="a \\"b\\" c"\r\nhello\r\n0\r\n\r\n'),
    ("extension-bws", "5 ; e = v\r\nhello\r\n0\r\n\r\n"),
    ("extension-on-last-chunk", "5\r\nhello\r\n0;e=v\r\n\r\n"),
    ("many-chunks", "1\r\nh\r\n1\r\ne\r\n1\r\nl\r\n1\r\nl\r\n1\r\no\r\n0\r\n\r\n"),
    ("trailer-content-length", "5\r\nhello\r\n0\r\nContent-Length: 50\r\n\r\n"),
    ("trailer-transfer-encoding", "5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n"),
    ("size-overflow-18-digits", "ffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
    ("size-wraps-to-5", "10000000000000005\r\nhello\r\n0\r\n\r\n"),
    ("size-0x-prefix", "0x5\r\nhello\r\n0\r\n\r\n"),
    ("size-negative", "-5\r\nhello\r\n0\r\n\r\n"),
    ("size-plus", "+5\r\nhello\r\n0\r\n\r\n"),
    ("size-leading-space", " 5\r\nhello\r\n0\r\n\r\n"),
    ("size-trailing-space", "5 \r\nhello\r\n0\r\n\r\n"),
    ("size-trailing-tab", "5\t\r\nhello\r\n0\r\n\r\n"),
    ("size-empty", "\r\nhello\r\n0\r\n\r\n"),
    ("size-not-hex", "zz\r\nhello\r\n0\r\n\r\n"),
    ("extension-empty-name", "5;\r\nhello\r\n0\r\n\r\n"),
    ("extension-empty-name-value", "5;=v\r\nhello\r\n0\r\n\r\n"),
    ("extension-unterminated-quote", '5;e="open\r\nhello\r\n0\r\n\r\n'),
    ("extension-bare-lf", "5;e=v\nhello\r\n0\r\n\r\n"),
    ("extension-control-char", "5;e=\x01\r\nhello\r\n0\r\n\r\n"),
    ("bare-lf-after-size", "5\nhello\r\n0\r\n\r\n"),
    ("bare-lf-after-data", "5\r\nhello\n0\r\n\r\n"),
    ("bare-lf-last-chunk", "5\r\nhello\r\n0\n\n"),
    ("bare-cr-after-size", "5\rhello\r\n0\r\n\r\n"),
    ("missing-crlf-after-data", "5\r\nhelloXX0\r\n\r\n"),
    ("missing-crlf-next-size", "5\r\nhello0\r\n\r\n"),
    ("size-smaller-than-data", "3\r\nhello\r\n0\r\n\r\n"),
    ("size-larger-than-data", "7\r\nhello\r\n0\r\n\r\n"),
    ("missing-final-crlf", "5\r\nhello\r\n0\r\n"),
    ("trailer-space-before-colon", "5\r\nhello\r\n0\r\nX-T : 1\r\n\r\n"),
    ("trailer-bare-lf", "5\r\nhello\r\n0\r\nX-T: 1\n\r\n"),
    ("trailer-obs-fold", "5\r\nhello\r\n0\r\nX-T: 1\r\n 2\r\n\r\n"),
    ("trailer-nul", "5\r\nhello\r\n0\r\nX-T: \x00\r\n\r\n"),
]


def _chunked_probe(body):
    def build(t):
        return msg("POST %s/c HTTP/1.1" % t, "Host: x", "Transfer-Encoding: chunked", body=body)
    return build


for _name, _body in CHUNKED_BODIES:
    add("chunked", _name, _chunked_probe(_body))
add("chunked", "data-is-a-request",
    lambda t: msg("POST %s/c HTTP/1.1" % t, "Host: x", "Transfer-Encoding: chunked",
                  body=chunk(inner(t, "in-chunk")) + "0\r\n\r\n"))
add("chunked", "zero-chunk-then-request",
    lambda t: msg("POST %s/c HTTP/1.1" % t, "Host: x", "Transfer-Encoding: chunked",
                  body="0\r\n\r\n" + inner(t, "after-zero")))

# -- the head: line ends, obs-fold, NUL and other control characters, field names --------------


def _smuggle_after(t, field_lines, start=None):
    """A request whose field lines (given as raw text, CRLF not added) may hide a
    Content-Length covering a whole request: read without it, /pN/smuggled is a request."""
    s = inner(t, "smuggled")
    start = start or "POST %s/h HTTP/1.1\r\n" % t
    return (start + field_lines.replace("{L}", str(len(s))) + "\r\n").encode("latin-1") \
        + s.encode("latin-1")


HEAD_PROBES = [
    ("bare-lf-everywhere", lambda t: ("GET %s/h HTTP/1.1\nHost: x\nX-A: 1\n\n" % t).encode()),
    ("bare-lf-request-line", lambda t: ("GET %s/h HTTP/1.1\nHost: x\r\n\r\n" % t).encode()),
    ("bare-lf-one-field", lambda t: ("GET %s/h HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n" % t)
     .encode()),
    ("bare-lf-final", lambda t: ("GET %s/h HTTP/1.1\r\nHost: x\r\n\n" % t).encode()),
    ("bare-lf-hides-content-length",
     lambda t: _smuggle_after(t, "Host: x\r\nX-A: 1\nContent-Length: {L}\r\n")),
    ("bare-lf-content-length-with-body",
     lambda t: _smuggle_after(t, "Host: x\nContent-Length: {L}\n")),
    ("bare-cr-in-value", lambda t: ("GET %s/h HTTP/1.1\r\nHost: x\r\nX-A: 1\rX-B: 2\r\n\r\n" % t)
     .encode()),
    ("bare-cr-hides-content-length",
     lambda t: _smuggle_after(t, "Host: x\r\nX-A: 1\rContent-Length: {L}\r\n")),
    ("obs-fold-plain", lambda t: msg("GET %s/h HTTP/1.1" % t, "Host: x", "X-A: 1", " 2")),
    ("obs-fold-tab", lambda t: msg("GET %s/h HTTP/1.1" % t, "Host: x", "X-A: 1", "\t2")),
    ("obs-fold-content-length",
     lambda t: _smuggle_after(t, "Host: x\r\nContent-Length:\r\n {L}\r\n")),
    ("obs-fold-host", lambda t: msg("GET %s/h HTTP/1.1" % t, "Host:", " x")),
    ("whitespace-line-after-request-line",
     lambda t: msg("GET %s/h HTTP/1.1" % t, " X-A: 1", "Host: x")),
    ("whitespace-line-hides-content-length",
     lambda t: _smuggle_after(t, " Content-Length: {L}\r\nHost: x\r\n")),
    ("nul-in-name", lambda t: msg("GET %s/h HTTP/1.1" % t, "Host: x", "X-A\x00B: 1")),
    ("nul-in-value", lambda t: msg("GET %s/h HTTP/1.1" % t, "Host: x", "X-A: a\x00b")),
    ("nul-in-target", lambda t: msg("GET %s/h\x00x HTTP/1.1" % t, "Host: x")),
    ("nul-before-content-length-name",
     lambda t: _smuggle_after(t, "Host: x\r\n\x00Content-Length: {L}\r\n")),
    ("ctl-0x01-in-value", lambda t: msg("GET %s/h HTTP/1.1" % t, "Host: x", "X-A: a\x01b")),
    ("del-in-value", lambda t: msg("GET %s/h HTTP/1.1" % t, "Host: x", "X-A: a\x7fb")),
    ("obs-text-in-value", lambda t: msg("GET %s/h HTTP/1.1" % t, "Host: x", "X-A: caf\xe9")),
    ("space-before-colon", lambda t: msg("GET %s/h HTTP/1.1" % t, "Host: x", "X-A : 1")),
    ("space-before-colon-host", lambda t: msg("GET %s/h HTTP/1.1" % t, "Host : x")),
    ("space-in-name", lambda t: msg("GET %s/h HTTP/1.1" % t, "Host: x", "X A: 1")),
    ("no-colon", lambda t: msg("GET %s/h HTTP/1.1" % t, "Host: x", "X-A 1")),
    ("empty-name", lambda t: msg("GET %s/h HTTP/1.1" % t, "Host: x", ": 1")),
    ("colon-in-name-position", lambda t: msg("GET %s/h HTTP/1.1" % t, "Host: x", "X-A:: 1")),
    ("empty-host", lambda t: msg("GET %s/h HTTP/1.1" % t, "Host:")),
    ("no-host-http11", lambda t: msg("GET %s/h HTTP/1.1" % t, "X-A: 1")),
    ("no-host-http10", lambda t: msg("GET %s/h HTTP/1.0" % t, "X-A: 1")),
    ("two-hosts-same", lambda t: msg("GET %s/h HTTP/1.1" % t, "Host: x", "Host: x")),
    ("two-hosts-differing", lambda t: msg("GET %s/h HTTP/1.1" % t, "Host: x", "Host: y")),
    ("host-list", lambda t: msg("GET %s/h HTTP/1.1" % t, "Host: x, y")),
]
for _name, _build in HEAD_PROBES:
    add("head", _name, _build)

# -- request lines -----------------------------------------------------------------------------

LINE_PROBES = [
    ("two-spaces", "GET  {T}/r HTTP/1.1"),
    ("tab-separator", "GET\t{T}/r HTTP/1.1"),
    ("trailing-space", "GET {T}/r HTTP/1.1 "),
    ("leading-space", " GET {T}/r HTTP/1.1"),
    ("space-in-target", "GET {T}/r x HTTP/1.1"),
    ("lowercase-version", "GET {T}/r http/1.1"),
    ("http-1.2", "GET {T}/r HTTP/1.2"),
    ("http-2.0", "GET {T}/r HTTP/2.0"),
    ("http-0.9", "GET {T}/r HTTP/0.9"),
    ("http-1-no-minor", "GET {T}/r HTTP/1"),
    ("http-1.10", "GET {T}/r HTTP/1.10"),
    ("version-suffix", "GET {T}/r HTTP/1.1x"),
    ("missing-version", "GET {T}/r"),
    ("absolute-form", "GET http://x{T}/r HTTP/1.1"),
    ("absolute-form-https", "GET https://x{T}/r HTTP/1.1"),
    ("absolute-form-other-host", "GET http://other.example{T}/r HTTP/1.1"),
    ("target-without-slash", "GET p{T}/r HTTP/1.1"),
    ("long-method", "A" * 200 + " {T}/r HTTP/1.1"),
    ("lowercase-method", "get {T}/r HTTP/1.1"),
    ("method-not-a-token", "GE(T {T}/r HTTP/1.1"),
    ("options-asterisk", "OPTIONS * HTTP/1.1"),
]


def _line_probe(line):
    def build(t):
        return msg(line.replace("{T}", t), "Host: x")
    return build


for _name, _line in LINE_PROBES:
    add("request-line", _name, _line_probe(_line))
add("request-line", "empty-lines-before",
    lambda t: b"\r\n\r\n" + msg("GET %s/r HTTP/1.1" % t, "Host: x"))
add("request-line", "http2-preface",
    lambda t: b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

# -- Expect, Upgrade, persistence, abgate's own headers ----------------------------------------

MISC_PROBES = [
    ("expect", "continue-no-body",
     lambda t: msg("GET %s/e HTTP/1.1" % t, "Host: x", "Expect: 100-continue")),
    ("expect", "continue-zero-length",
     lambda t: msg("POST %s/e HTTP/1.1" % t, "Host: x", "Expect: 100-continue",
                   "Content-Length: 0")),
    ("expect", "continue-chunked",
     lambda t: msg("POST %s/e HTTP/1.1" % t, "Host: x", "Expect: 100-continue",
                   "Transfer-Encoding: chunked", body="5\r\nhello\r\n0\r\n\r\n")),
    ("expect", "continue-mixed-case",
     lambda t: msg("POST %s/e HTTP/1.1" % t, "Host: x", "Expect: 100-Continue",
                   "Content-Length: 5", body="hello")),
    ("expect", "unknown-expectation",
     lambda t: msg("POST %s/e HTTP/1.1" % t, "Host: x", "Expect: something-else",
                   "Content-Length: 5", body="hello")),
    ("expect", "continue-body-is-a-request",
     lambda t: _smuggle_cl(t, "Expect: 100-continue")),
    ("upgrade", "h2c",
     lambda t: msg("GET %s/u HTTP/1.1" % t, "Host: x", "Connection: Upgrade, HTTP2-Settings",
                   "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA")),
    ("upgrade", "h2c-with-body",
     lambda t: msg("POST %s/u HTTP/1.1" % t, "Host: x", "Connection: Upgrade, HTTP2-Settings",
                   "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA",
                   "Content-Length: 5", body="hello")),
    ("upgrade", "h2c-without-connection",
     lambda t: msg("GET %s/u HTTP/1.1" % t, "Host: x", "Upgrade: h2c",
                   "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA")),
    ("upgrade", "websocket",
     lambda t: msg("GET %s/u HTTP/1.1" % t, "Host: x", "Connection: Upgrade",
                   "Upgrade: websocket", "Sec-WebSocket-Version: 13",
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")),
    ("persistence", "close-uppercase-then-second",
     lambda t: msg("GET %s/k HTTP/1.1" % t, "Host: x", "Connection: CLOSE")
     + inner(t, "after-close").encode()),
    ("persistence", "keep-alive-and-close-then-second",
     lambda t: msg("GET %s/k HTTP/1.1" % t, "Host: x", "Connection: keep-alive, close")
     + inner(t, "after-close").encode()),
    ("persistence", "close-in-second-field-then-second",
     lambda t: msg("GET %s/k HTTP/1.1" % t, "Host: x", "Connection: keep-alive",
                   "Connection: close") + inner(t, "after-close").encode()),
    ("persistence", "close-with-body-then-second",
     lambda t: msg("POST %s/k HTTP/1.1" % t, "Host: x", "Connection: close",
                   "Content-Length: 5", body="hello") + inner(t, "after-close").encode()),
    ("persistence", "closed-is-not-close",
     lambda t: msg("GET %s/k HTTP/1.1" % t, "Host: x", "Connection: closed")),
    ("persistence", "http10-post-then-second",
     lambda t: msg("POST %s/k HTTP/1.0" % t, "Content-Length: 5", body="hello")
     + inner(t, "after-close").encode()),
    ("persistence", "three-pipelined",
     lambda t: msg("GET %s/k HTTP/1.1" % t, "Host: x") + inner(t, "two").encode()
     + inner(t, "three").encode()),
    ("abgate-headers", "client-variant-and-experiment",
     lambda t: msg("GET %s/x HTTP/1.1" % t, "Host: x", "X-Abgate-Variant: treatment",
                   "X-Abgate-Experiment: evil")),
    ("abgate-headers", "client-force-variant",
     lambda t: msg("GET %s/x HTTP/1.1" % t, "Host: x", "X-Abgate-Force-Variant: treatment")),
    ("abgate-headers", "client-shadow-flag",
     lambda t: msg("GET %s/x HTTP/1.1" % t, "Host: x", "X-Abgate-Shadow: 1")),
    ("abgate-headers", "lowercase-client-variant",
     lambda t: msg("GET %s/x HTTP/1.1" % t, "Host: x", "x-abgate-variant: treatment")),
]
for _cls, _name, _build in MISC_PROBES:
    add(_cls, _name, _build)


# ---------------------------------------------------------------------------------------------
# The client side: one exchange per probe, responses read strictly.


class Resp:
    def __init__(self, status, minor, headers, body, framing):
        self.status = status
        self.minor = minor
        self.headers = headers
        self.body = body
        self.framing = framing    # "cl", "chunked", "none" (no body by status) or "close"
        self.rec_id = self.header("x-rec-id")
        tokens = {t.strip().lower() for v in self.header_all("connection") for t in v.split(",")}
        self.closes = (framing == "close" or "close" in tokens
                       or (minor == 0 and "keep-alive" not in tokens))

    def header_all(self, name):
        return [v for n, v in self.headers if n.lower() == name]

    def header(self, name):
        v = self.header_all(name)
        return v[0] if v else None

    def __repr__(self):
        return "%d%s" % (self.status, " (upstream %s)" % self.rec_id if self.rec_id else "")


def parse_response(buf, eof):
    """(Resp, bytes used) for the response at the start of buf, None when more bytes are
    needed; ValueError when the bytes are not a response."""
    i = buf.find(b"\r\n\r\n")
    if i < 0:
        if len(buf) > 65536 or (eof and buf):
            raise ValueError("no response head in %r" % buf[:120])
        return None
    lines = buf[:i].split(b"\r\n")
    m = re.match(rb"HTTP/1\.([01]) ([0-9]{3})(?: [^\r\n]*)?\Z", lines[0])
    if not m:
        raise ValueError("bad status line %r" % lines[0][:120])
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or line[:1] in (b" ", b"\t"):
            raise ValueError("bad response field line %r" % line[:120])
        headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
    status, minor, pos = int(m.group(2)), int(m.group(1)), i + 4
    te = [v for n, v in headers if n.lower() == "transfer-encoding"]
    cl = [v for n, v in headers if n.lower() == "content-length"]
    if 100 <= status < 200 or status in (204, 304):
        return Resp(status, minor, headers, b"", "none"), pos
    if te:
        if cl or te[-1].split(",")[-1].strip().lower() != "chunked":
            raise ValueError("response framing %r %r" % (te, cl))
        try:
            body, end = StrictReader().chunked(buf, pos)
        except Incomplete:
            if eof:
                raise ValueError("truncated chunked response body")
            return None
        except Malformed as e:
            raise ValueError("bad chunked response body: %s" % e)
        return Resp(status, minor, headers, body, "chunked"), end
    if cl:
        if len(set(cl)) != 1 or not cl[0].isdigit():
            raise ValueError("response Content-Length %r" % cl)
        n = int(cl[0])
        if len(buf) < pos + n:
            if eof:
                raise ValueError("truncated response body")
            return None
        return Resp(status, minor, headers, buf[pos:pos + n], "cl"), pos + n
    if not eof:
        return None
    return Resp(status, minor, headers, buf[pos:], "close"), len(buf)


def exchange(port, data, expect):
    """Writes data on a fresh connection and reads responses until the connection closes,
    nothing more comes, or (with at least `expect` responses) nothing more comes within a
    short wait. Returns (responses, how it ended: "eof", "timeout" or "garbage: ...")."""
    s = socket.create_connection((HOST, port), timeout=TIMEOUT)
    try:
        try:
            s.sendall(data)
        except OSError:
            pass          # the proxy may close while a refused request is still being sent
        buf, resps, eof = b"", [], False
        hard = time.monotonic() + PROBE_LIMIT
        while True:
            while True:
                try:
                    r = parse_response(buf, eof)
                except ValueError as e:
                    return resps, "garbage: %s" % e
                if r is None:
                    break
                resp, used = r
                buf = buf[used:]
                if resp.status >= 200:
                    resps.append(resp)
            if eof:
                return resps, "eof" if not buf else "garbage: %r" % buf[:120]
            wait = EXTRA_WAIT if len(resps) >= max(expect, 1) else TIMEOUT
            wait = min(wait, hard - time.monotonic())
            if wait <= 0:
                return resps, "timeout" if not buf else "garbage: unfinished %r" % buf[:120]
            s.settimeout(wait)
            try:
                got = s.recv(65536)
            except socket.timeout:
                return resps, "timeout" if not buf else "garbage: unfinished %r" % buf[:120]
            except OSError:
                got = b""
            if got:
                buf += got
            else:
                eof = True
    finally:
        s.close()


# ---------------------------------------------------------------------------------------------
# Judging one probe against the readings of its bytes.

ABGATE_OWN = {("x-abgate-experiment", "smug"), ("x-abgate-variant", "control")}
TAG = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.\-]*://[^/]*)?/(?:p([0-9]+)/|benign-([0-9]+)\b)")


class Checks:
    def __init__(self, xff=True, abgate=False):
        self.xff = xff          # every forwarded request carries X-Forwarded-For
        self.abgate = abgate    # abgate's own header rules (X-Request-Id, X-Abgate-*)


def norm_target(t):
    if isinstance(t, bytes):
        t = t.decode("latin-1")
    m = re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*://[^/]*(/.*)?$", t)
    return (m.group(1) or "/") if m else t


def _label(q):
    return "%s %s" % (q.method.decode("latin-1"), q.target.decode("latin-1"))


def compare(q, ev, checks):
    """Why the upstream's request ev is not the request q of the reading (empty: it is)."""
    label = _label(q)
    if ev.method != q.method.decode("latin-1") or norm_target(ev.target) != norm_target(q.target):
        return ["the upstream read %s %s where the client sent %s" % (ev.method, ev.target,
                                                                      label)]
    out = []
    if ev.body != q.body:
        if q.body and ev.framing == "none":
            out.append("%s forwarded without Content-Length or Transfer-Encoding: its %d body "
                       "bytes were left unframed" % (label, len(q.body)))
        else:
            out.append("%s: body sent %r, the upstream read %r" % (label, q.body[:80],
                                                                   ev.body[:80]))
    out += ["%s forwarded as %s" % (label, v) for v in ev.violations]
    if checks.xff and not ev.header_all("x-forwarded-for"):
        out.append("%s forwarded without X-Forwarded-For" % label)
    if checks.abgate:
        seen = {}
        for n, v in ev.headers:
            ln = n.lower()
            if ln.startswith("x-abgate-"):
                if (ln, v) not in ABGATE_OWN:
                    out.append("%s forwarded with %s: %s, not abgate's own" % (label, n, v))
                seen[ln] = seen.get(ln, 0) + 1
        out += ["%s forwarded with %d %s fields" % (label, c, n) for n, c in seen.items() if c > 1]
        rids = ev.header_all("x-request-id")
        sent = q.field_all(b"x-request-id")
        if len(rids) != 1:
            out.append("%s forwarded with %d X-Request-Id fields" % (label, len(rids)))
        elif len(sent) == 1 and re.match(rb"rid-[0-9]+\Z", sent[0]) and \
                rids[0] != sent[0].decode():
            out.append("%s forwarded with X-Request-Id %s instead of the client's %s"
                       % (label, rids[0], sent[0].decode()))
    return out


def evaluate(rd, resps, end, events, checks):
    """(state, reasons) of what was observed against one reading: state "forwarded" or
    "rejected"; reasons empty unless it is a desync under this reading."""
    reqs = [e for e in events if e.kind == "request"]
    reasons = []
    state = "forwarded"
    j = k = 0
    stopped = False
    reject_ok = {0}   # only the probe's first request may be refused: later ones are clean
    i = 0
    while i < len(rd.requests) and not stopped and not reasons:
        q = rd.requests[i]
        label = _label(q)
        if j < len(resps):
            resp = resps[j]
            j += 1
            if resp.rec_id is not None:
                if k >= len(reqs) or resp.rec_id != reqs[k].id:
                    mine = [e for e in reqs if e.id == resp.rec_id]
                    reasons.append("the answer to %s is the upstream's answer to %s" % (
                        label, mine[0].describe() if mine else "request %s, never attributed "
                        "to this probe" % resp.rec_id))
                    break
                ev = reqs[k]
                k += 1
                reasons += compare(q, ev, checks)
                if resp.status != 200 or resp.body != ev.response_body:
                    reasons.append("the answer to %s was altered: %d %r" % (label, resp.status,
                                                                           resp.body[:80]))
                stopped = resp.closes
            elif resp.status >= 400:
                if i not in reject_ok:
                    reasons.append("%s, a valid request at a clean boundary, was answered %d by "
                                   "the proxy" % (label, resp.status))
                    break
                state = "rejected"
                stopped = resp.closes
            else:
                reasons.append("the proxy itself answered %d to %s" % (resp.status, label))
                break
        else:
            if end.startswith("garbage"):
                reasons.append("unreadable response bytes (%s)" % end)
            elif state == "rejected":
                stopped = True
            elif i in reject_ok and end == "eof":
                state, stopped = "rejected", True      # refused by closing
            else:
                reasons.append("no response to %s (%s)" % (label, end))
            break
        i += 1
    if not reasons and not stopped and i == len(rd.requests) and rd.end in ("reject",
                                                                             "incomplete"):
        if j < len(resps):
            resp = resps[j]
            j += 1
            if resp.rec_id is not None:
                reasons.append("the upstream answered bytes a strict reader %s (%s)" % (
                    "refuses" if rd.end == "reject" else "has not finished reading",
                    rd.reason or "waiting for more"))
            elif resp.status >= 400:
                state = "rejected"
            else:
                reasons.append("the proxy itself answered %d" % resp.status)
        elif rd.end == "reject":
            state = "rejected"         # refused by closing, or by not answering
        if end.startswith("garbage") and not reasons:
            if j == len(resps) and rd.end == "reject" and not events:
                state = "rejected"     # not an HTTP/1.1 answer, but nothing reached upstream
            else:
                reasons.append("unreadable response bytes (%s)" % end)
    if reasons:
        return "desync", reasons
    for ev in events:
        if ev.kind == "garbage":
            reasons.append("the upstream got bytes a strict reader refuses: %s" % ev.describe())
    if j < len(resps):
        reasons.append("%d response(s) more than the reading has requests: %s"
                       % (len(resps) - j, resps[j:]))
    if k < len(reqs):
        reasons.append("the upstream read requests the client never sent as such: %s"
                       % "; ".join(e.describe() for e in reqs[k:]))
    refused = state == "rejected" or rd.end in ("reject", "incomplete")
    allowed = {norm_target(q.target) for q in rd.requests}
    if rd.reject_target is not None:
        allowed.add(norm_target(rd.reject_target))
    for ev in events:
        if ev.kind == "partial":
            if ev.reason.startswith("bytes after"):
                reasons.append("the upstream got more after a request that closes the "
                               "connection: %s" % ev.describe())
            elif not refused:
                reasons.append("the upstream was left with an unfinished request: %s"
                               % ev.describe())
            elif ev.target is None or norm_target(ev.target) not in allowed:
                reasons.append("the upstream was left with an unfinished request the client "
                               "never began: %s" % ev.describe())
    return ("desync" if reasons else state), reasons


class Outcome:
    def __init__(self, n, probe, data, readings, resps, end):
        self.n = n
        self.probe = probe
        self.data = data
        self.readings = readings
        self.resps = resps
        self.end = end
        self.events = []
        self.verdict = None
        self.lenient = ()
        self.reasons = []
        self.t0 = 0.0

    def judge(self, checks):
        results = [(rd,) + evaluate(rd, self.resps, self.end, self.events, checks)
                   for rd in self.readings]
        ok = [r for r in results if r[1] != "desync"]
        if ok:
            ok.sort(key=lambda r: (r[1] != "forwarded", len(r[0].lenient)))
            rd, self.verdict, _ = ok[0]
            self.lenient = rd.lenient
            self.reasons = []
        else:
            self.verdict, self.reasons = "desync", results[0][2]

    def line(self):
        s = "%-10s %s (n=%d)" % (self.verdict, self.probe, self.n)
        if self.verdict == "forwarded" and self.lenient:
            s += " [lenient: %s]" % ",".join(self.lenient)
        if self.reasons:
            s += ": " + " | ".join(self.reasons[:3])
        return s


def run_probes(port, rec, probes, first=1, budget=None):
    """Runs each probe in turn on its own client connection; returns the Outcomes (not judged:
    call judge_all once the proxy has been stopped, so that unfinished upstream requests show).
    With a budget (seconds), stops starting probes once it is spent."""
    outcomes = []
    deadline = None if budget is None else time.monotonic() + budget
    for i, probe in enumerate(probes):
        if deadline is not None and time.monotonic() > deadline:
            break
        n = first + i
        data = probe.build("/p%d" % n) + benign(n)
        readings = all_readings(data)
        expect = max(len(rd.requests) for rd in readings)
        t0 = time.monotonic()
        resps, end = exchange(port, data, expect)
        o = Outcome(n, probe, data, readings, resps, end)
        o.t0 = t0
        outcomes.append(o)
        rec.wait_quiet(0.02, 0.5)
    return outcomes


def judge_all(outcomes, events, checks):
    """Attributes each recorder event to a probe (by the tag in its target, else by the time
    its first byte arrived) and judges every probe."""
    by_n = {o.n: o for o in outcomes}
    starts = [(o.t0, o) for o in outcomes]
    for ev in sorted(events, key=lambda e: e.seq):
        owner = None
        m = TAG.match(ev.target or "")
        if m:
            owner = by_n.get(int(m.group(1) or m.group(2)))
        if owner is None:
            for t0, o in starts:
                if t0 <= ev.t:
                    owner = o
        if owner is not None:
            owner.events.append(ev)
    for o in outcomes:
        o.judge(checks)


def summary(outcomes):
    c = {"desync": 0, "rejected": 0, "forwarded": 0}
    for o in outcomes:
        c[o.verdict] += 1
    return "probes: %d, desyncs: %d, rejected: %d, forwarded: %d" % (
        len(outcomes), c["desync"], c["rejected"], c["forwarded"])


def report(outcomes, events=True):
    """The summary line, the probes forwarded only under a leniency, and each desync with the
    upstream events attributed to it (the request boundaries each upstream connection saw)."""
    lines = [summary(outcomes)]
    by_cls = {}
    for o in outcomes:
        if o.verdict == "desync":
            by_cls[o.probe.cls] = by_cls.get(o.probe.cls, 0) + 1
    if by_cls:
        lines.append("desyncs by class: "
                     + ", ".join("%s %d" % kv for kv in sorted(by_cls.items())))
    lenient = [o for o in outcomes if o.verdict == "forwarded" and o.lenient]
    if lenient:
        lines.append("forwarded under a permitted leniency: %d (%s)" % (
            len(lenient), ", ".join(str(o.probe) for o in lenient)))
    for o in outcomes:
        if o.verdict == "desync":
            lines.append("  " + o.line())
            if events:
                lines += ["      upstream " + ev.describe() for ev in o.events[:8]]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The tests.


def smug_config(make, rec_addr):
    exp = Experiment("smug", [("control", "rec", 100), ("treatment", "rec2", 0)],
                     path_prefix="/")
    return make({"rec": rec_addr, "rec2": rec_addr}, [exp], default_backend="rec")


def test_probe_list_has_no_desync(procs, make_config, capsys):
    """Every probe, then the benign request, through abgate (one experiment on "/" and the
    default backend, both the recorder): no desync, every control forwarded, no crash."""
    rec = Recorder()
    procs.upstreams.append(rec)
    proxy = procs.proxy(smug_config(make_config, rec.addr))
    started = time.monotonic()
    outcomes = run_probes(proxy.port, rec, PROBES, budget=PROBE_BUDGET)
    assert proxy.proc.alive(), "the proxy died during the probes:\n" + proxy.log()[-3000:]
    proxy.stop()
    rec.wait_all_closed(3)
    judge_all(outcomes, rec.snapshot(), Checks(xff=True, abgate=True))
    text = report(outcomes)
    with capsys.disabled():
        print("\n" + text.split("\n", 1)[0] + " (%.1f s)" % (time.monotonic() - started))
    desyncs = [o for o in outcomes if o.verdict == "desync"]
    assert not desyncs, text
    assert len(outcomes) == len(PROBES), "only %d of %d probes ran within %d s:\n%s" % (
        len(outcomes), len(PROBES), PROBE_BUDGET, text)
    dropped = [o for o in outcomes if o.probe.control and o.verdict != "forwarded"]
    assert not dropped, "valid requests not forwarded: %s" % [o.line() for o in dropped]
    assert len(outcomes) >= 150


RESPONSE_CASES = [
    ("content-length", "Content-Length", False),
    ("keep-alive-content-length", "keep-alive, Content-Length", False),
    ("lowercase-content-length", "content-length", False),
    ("content-length-and-transfer-encoding", "Content-Length, Transfer-Encoding", False),
    ("transfer-encoding", "Transfer-Encoding", True),
    ("keep-alive-transfer-encoding", "keep-alive, Transfer-Encoding", True),
    ("uppercase-transfer-encoding", "TRANSFER-ENCODING", True),
    ("transfer-encoding-and-content-length", "Transfer-Encoding, Content-Length", True),
]


def read_one(sock, buf):
    """One final response from sock (interim ones skipped): (Resp or None, rest, error)."""
    eof = False
    while True:
        try:
            r = parse_response(buf, eof)
        except ValueError as e:
            return None, b"", str(e)
        if r is not None:
            resp, used = r
            buf = buf[used:]
            if resp.status >= 200:
                return resp, buf, None
            continue
        if eof:
            return None, b"", "closed before a response"
        try:
            got = sock.recv(65536)
        except socket.timeout:
            if b"\r\n\r\n" in buf:
                return None, b"", ("response framing removed: a head without Content-Length or "
                                   "Transfer-Encoding on a connection left open (got %r)"
                                   % buf[:300])
            return None, b"", "no complete response within %.0f s (buffered %r)" % (TIMEOUT,
                                                                                   buf[:200])
        except OSError:
            got = b""
        if got:
            buf += got
        else:
            eof = True


@pytest.mark.parametrize("connection,chunked", [c[1:] for c in RESPONSE_CASES],
                         ids=[c[0] for c in RESPONSE_CASES])
def test_response_naming_its_framing_in_connection_stays_framed(procs, make_config, connection,
                                                                chunked):
    """The upstream answers keep-alive with `Connection: <its own framing field>`: each
    response reaches the client framed (Content-Length or chunked) with its body whole, and the
    next one on the same connection is right too; or it is a 502. Never a response whose
    framing was removed (read to the close, or with the chunk syntax left in the body)."""
    rec = Recorder(named_framing_response(connection, chunked))
    procs.upstreams.append(rec)
    proxy = procs.proxy(make_config({"rec": rec.addr}, [], default_backend="rec"))
    problems = []
    sock = socket.create_connection((HOST, proxy.port), timeout=TIMEOUT)
    buf = b""
    try:
        paths = ["/r%d" % i for i in range(1, 4)]
        # one at a time, then two pipelined, all on the same connection unless a 502 closes it
        plan = [[p] for p in paths] + [["/r4", "/r5"]]
        for batch in plan:
            sock.sendall(b"".join(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % p.encode()
                                  for p in batch))
            for path in batch:
                resp, buf, err = read_one(sock, buf)
                if err:
                    problems.append("%s: %s" % (path, err))
                    break
                if resp.status == 502:
                    if resp.closes:
                        sock.close()
                        sock = socket.create_connection((HOST, proxy.port), timeout=TIMEOUT)
                        buf = b""
                        break
                    continue
                want = [e for e in rec.snapshot() if e.kind == "request" and e.target == path]
                if resp.status != 200 or not want:
                    problems.append("%s: %r (upstream saw %r)" % (path, resp, want))
                    continue
                if resp.framing not in ("cl", "chunked"):
                    problems.append("%s: response framing removed (%s)" % (path, resp.framing))
                if resp.body != want[0].response_body:
                    problems.append("%s: body %r, the upstream sent %r" % (
                        path, resp.body[:120], want[0].response_body))
                if resp.closes:
                    problems.append("%s: the keep-alive response closed the connection" % path)
            if problems:
                break
    finally:
        sock.close()
    assert not problems, problems
    assert proxy.proc.alive()


# ---------------------------------------------------------------------------------------------
# Peers, by hand: python3 tests/integration/test_smuggling.py [abgate] [nginx] [haproxy]

NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
error_log {tmp}/error.log warn;
pid {tmp}/nginx.pid;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream rec {{
        server {rec};
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://rec;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""

HAPROXY_CONF = """\
global
    maxconn 512
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    timeout http-request 5s
    option http-keep-alive
    option forwardfor
    http-reuse always
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server rec {rec}
"""


def run_peer(kind, probes=PROBES):
    """Runs the probe list against one proxy (abgate, nginx or haproxy) in front of a fresh
    recorder; returns (outcomes, report text)."""
    tmp = tempfile.mkdtemp(prefix="smuggle-%s-" % kind)
    rec = Recorder()
    port = free_port()
    proc = None
    try:
        if kind == "abgate":
            exp = Experiment("smug", [("control", "rec", 100), ("treatment", "rec2", 0)],
                             path_prefix="/")
            cfg = Config(os.path.join(tmp, "abgate.yaml"), port, free_port(),
                         {"rec": rec.addr, "rec2": rec.addr}, [exp], default_backend="rec")
            cfg.write()
            argv = [harness.ABGATE_BIN, "serve", "-c", cfg.path]
        elif kind == "nginx":
            path = os.path.join(tmp, "nginx.conf")
            with open(path, "w") as f:
                f.write(NGINX_CONF.format(tmp=tmp, rec=rec.addr, port=port))
            argv = ["/usr/sbin/nginx", "-p", tmp, "-c", path]
        elif kind == "haproxy":
            path = os.path.join(tmp, "haproxy.cfg")
            with open(path, "w") as f:
                f.write(HAPROXY_CONF.format(rec=rec.addr, port=port))
            argv = ["/usr/sbin/haproxy", "-db", "-f", path]
        else:
            raise ValueError(kind)
        proc = Proc(kind, argv, os.path.join(tmp, "%s.out" % kind), cwd=tmp)

        def up():
            if not proc.alive():
                raise AssertionError("%s exited:\n%s" % (kind, proc.log()))
            return port_open(port)
        wait_until(up, timeout=5, what="%s on port %d" % (kind, port))
        outcomes = run_probes(port, rec, probes)
        proc.stop()
        rec.wait_all_closed(3)
        judge_all(outcomes, rec.snapshot(), Checks(xff=True, abgate=(kind == "abgate")))
        return outcomes, report(outcomes)
    finally:
        if proc is not None:
            proc.close()
        rec.close()
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv):
    kinds = argv or ["abgate", "nginx", "haproxy"]
    for kind in kinds:
        started = time.monotonic()
        outcomes, text = run_peer(kind)
        print("== %s (%.1f s)" % (kind, time.monotonic() - started))
        print(text)
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
