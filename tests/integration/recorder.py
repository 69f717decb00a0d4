"""A recording HTTP/1.1 backend for the request-smuggling tier, and the strict reference reader
it is built on.

StrictReader reads HTTP/1.1 requests the way RFC 9112 asks a careful recipient to: CRLF line
ends, a request line of exactly three parts, header names that are tokens, no obs-fold, no
control characters in values, Content-Length as digits only, Transfer-Encoding whose final
coding is chunked, chunk sizes in hex with CRLF after the size line and after the data. Anything
it cannot frame without guessing raises Malformed. A few leniencies that the RFCs explicitly
allow a recipient can be switched on one by one (LENIENCIES); the test uses them to list every
reading of a client byte stream that a conforming intermediary may act on.

Recorder is a raw-socket server on 127.0.0.1 that reads with the pure strict reader (no
leniency) and records, for each connection, every request it reads (method, target, headers,
body, framing, connection id and position), answering each with a small fixed 200 that carries
Content-Length and the id of the request it answers (X-Rec-Id). When the bytes cannot be read
it records a "garbage" event and closes; bytes left unfinished when the peer closes are a
"partial" event. The sequence of events per upstream connection is what shows a desync: a
request the client never sent as a request, a body without framing, garbage.

Run by hand (python3 recorder.py --port 9100) it prints each event as it happens.
"""

import re
import socket
import threading
import time

HOST = "127.0.0.1"

# Leniencies a conforming recipient may apply (RFC 9112 and RFC 9110):
#   lf        a bare LF ends a start line or field line (9112 section 2.2)
#   fold      obs-fold is replaced by SP; whitespace-preceded lines right after the start line
#             are consumed (9112 sections 5.2 and 2.2)
#   value_sp  NUL and bare CR inside a field value are replaced by SP (9110 section 5.5,
#             9112 section 2.2)
#   te_cl     Transfer-Encoding overrides Content-Length, and the connection closes after the
#             request (9112 section 6.1 and 6.3)
#   cl_same   a Content-Length repeated with the same decimal value counts once (9110 8.6)
#   ws_line   the request line is split on runs of whitespace (SP, HTAB, VT, FF, bare CR),
#             leading and trailing whitespace ignored (9112 section 3)
#   empty_lines  empty lines before a request line are ignored (9112 section 2.2)
LENIENCIES = ("lf", "fold", "value_sp", "te_cl", "cl_same", "ws_line", "empty_lines")

MAX_HEAD = 65536
MAX_BODY = 16 << 20
MAX_CHUNK_LINE = 4096
MAX_LEADING_EMPTY_LINES = 8
INT63 = (1 << 63) - 1

_TCHAR = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
TOKEN = re.compile(rb"[" + _TCHAR + rb"]+\Z")
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_PARAM = (rb"[ \t]*;[ \t]*[" + _TCHAR + rb"]+[ \t]*=[ \t]*(?:[" + _TCHAR + rb"]+|" + _QUOTED
          + rb")")
CODING = re.compile(rb"[" + _TCHAR + rb"]+(?:" + _PARAM + rb")*\Z")
CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]+)((?:[ \t]*;[ \t]*[" + _TCHAR + rb"]+(?:[ \t]*=[ \t]*(?:["
                        + _TCHAR + rb"]+|" + _QUOTED + rb"))?)*)\Z")
VERSION = re.compile(rb"HTTP/([0-9])\.([0-9])\Z")
ABSOLUTE = re.compile(rb"[A-Za-z][A-Za-z0-9+.\-]*://")
WS_LINE = re.compile(rb"[ \t\x0b\x0c\r]+")
HOST_VALUE = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(?::[0-9]*)?\Z")


class Malformed(Exception):
    """The bytes are not a request a strict reader can frame."""


class Incomplete(Exception):
    """More bytes are needed."""


class Head:
    def __init__(self):
        self.method = b""
        self.target = b""
        self.version = b""
        self.minor = 1
        self.fields = []        # [(name, value)] as bytes, after any permitted unfolding
        self.start = 0          # offset of the request line (after ignored empty lines)
        self.end = 0            # offset just past the empty line ending the head
        self.framing = "none"   # "none", "cl" or "chunked"
        self.length = 0         # the Content-Length when framing == "cl"
        self.close = False      # the connection ends after this request
        self.violations = []    # rules broken that do not change the framing (Host)
        self.expect_continue = False

    def field_all(self, name):
        name = name.lower()
        return [v for n, v in self.fields if n.lower() == name]


class Request(Head):
    def __init__(self, head):
        super().__init__()
        self.__dict__.update(head.__dict__)
        self.body = b""
        self.end = head.end


def _connection_tokens(fields):
    out = set()
    for n, v in fields:
        if n.lower() == b"connection":
            for t in v.split(b","):
                t = t.strip(b" \t").lower()
                if t:
                    out.add(t)
    return out


class StrictReader:
    def __init__(self, lenient=()):
        bad = set(lenient) - set(LENIENCIES)
        if bad:
            raise ValueError("unknown leniency %r" % sorted(bad))
        self.lenient = frozenset(lenient)

    # -- the head ------------------------------------------------------------------------------

    def _lines(self, data, pos):
        """(lines of the head without their terminators, offset of the request line, offset
        after the head)."""
        lines = []
        start = pos
        empties = 0
        limit = pos + MAX_HEAD
        while True:
            i = data.find(b"\n", pos)
            if i < 0 or i > limit:
                if len(data) > limit:
                    raise Malformed("request head larger than %d bytes" % MAX_HEAD)
                raise Incomplete()
            if i > pos and data[i - 1] == 0x0D:
                line = data[pos:i - 1]
            elif "lf" in self.lenient:
                line = data[pos:i]
            else:
                raise Malformed("bare LF in the request head")
            pos = i + 1
            if not line:
                if not lines:
                    if "empty_lines" not in self.lenient:
                        raise Malformed("empty line before the request line")
                    empties += 1
                    if empties > MAX_LEADING_EMPTY_LINES:
                        raise Malformed("too many empty lines before the request line")
                    start = pos
                    continue
                return lines, start, pos
            lines.append(line)

    def _value(self, value):
        if "value_sp" in self.lenient:
            value = value.replace(b"\x00", b" ").replace(b"\r", b" ")
        value = value.strip(b" \t")
        for c in value:
            if c == 0x00:
                raise Malformed("NUL in a field value")
            if c == 0x0D:
                raise Malformed("bare CR in a field value")
            if (c < 0x20 and c != 0x09) or c == 0x7F:
                raise Malformed("control character 0x%02x in a field value" % c)
        return value

    def _request_line(self, h, line):
        if "ws_line" in self.lenient:
            parts = WS_LINE.split(line.strip(b" \t\x0b\x0c\r"))
        else:
            if b"\r" in line:
                raise Malformed("bare CR in the request line")
            parts = line.split(b" ")
        if len(parts) != 3:
            raise Malformed("request line of %d parts: %r" % (len(parts), line[:100]))
        method, target, version = parts
        if not TOKEN.match(method):
            raise Malformed("method is not a token: %r" % method[:60])
        if not target or any(c < 0x21 or c > 0x7E for c in target):
            raise Malformed("bad request target %r" % target[:100])
        if not (target.startswith(b"/") or ABSOLUTE.match(target)
                or (target == b"*" and method == b"OPTIONS")):
            raise Malformed("request target in no accepted form: %r" % target[:100])
        m = VERSION.match(version)
        if not m or m.group(1) != b"1":
            raise Malformed("unsupported version %r" % version[:40])
        h.method, h.target, h.version = method, target, version
        h.minor = 0 if m.group(2) == b"0" else 1   # 1.2 and up are read as 1.1 (RFC 9110 6.2)

    def _fields(self, lines):
        fields = []
        for line in lines:
            if line[:1] in (b" ", b"\t"):
                if "fold" not in self.lenient:
                    raise Malformed("obs-fold or whitespace-preceded field line")
                if not fields:
                    continue    # whitespace-preceded line after the request line: consumed
                n, v = fields[-1]
                fields[-1] = (n, self._value(v + b" " + line.strip(b" \t")))
                continue
            name, sep, value = line.partition(b":")
            if not sep:
                raise Malformed("field line without a colon: %r" % line[:80])
            if not TOKEN.match(name):
                raise Malformed("field name is not a token: %r" % name[:80])
            fields.append((name, self._value(value)))
        return fields

    def head(self, data, pos=0):
        h = Head()
        lines, h.start, h.end = self._lines(data, pos)
        self._request_line(h, lines[0])
        h.fields = self._fields(lines[1:])
        hosts = h.field_all(b"host")
        if len(hosts) > 1:
            h.violations.append("%d Host fields" % len(hosts))
        elif not hosts and h.minor >= 1:
            h.violations.append("HTTP/1.1 without Host")
        elif hosts and not HOST_VALUE.match(hosts[0]):
            h.violations.append("an invalid Host %r" % hosts[0][:60])
        tokens = _connection_tokens(h.fields)
        h.close = b"close" in tokens or (h.minor == 0 and b"keep-alive" not in tokens)
        h.expect_continue = any(v.lower() == b"100-continue" for v in h.field_all(b"expect"))
        te = h.field_all(b"transfer-encoding")
        cl = h.field_all(b"content-length")
        if te:
            if h.minor == 0:
                raise Malformed("Transfer-Encoding in an HTTP/1.0 request")
            if cl:
                if "te_cl" not in self.lenient:
                    raise Malformed("Transfer-Encoding and Content-Length together")
                h.close = True
            codings = [c.strip(b" \t") for c in b",".join(te).split(b",")]
            codings = [c for c in codings if c]
            if not codings:
                raise Malformed("empty Transfer-Encoding")
            for c in codings:
                if not CODING.match(c):
                    raise Malformed("bad transfer coding %r" % c[:60])
            low = [c.lower() for c in codings]
            if low[-1] != b"chunked":
                raise Malformed("chunked is not the final transfer coding: %r" % b", ".join(te))
            if low.count(b"chunked") != 1:
                raise Malformed("chunked applied more than once")
            h.framing = "chunked"
        elif cl:
            items = [i.strip(b" \t") for v in cl for i in v.split(b",")]
            if len(items) > 1 and "cl_same" not in self.lenient:
                raise Malformed("Content-Length with several values: %r" % cl)
            for i in items:
                if not i or not all(0x30 <= c <= 0x39 for c in i):
                    raise Malformed("Content-Length is not digits: %r" % i[:40])
            values = {int(i) for i in items}
            if len(values) != 1:
                raise Malformed("differing Content-Length values %r" % cl)
            n = values.pop()
            if n > INT63:
                raise Malformed("Content-Length overflows")
            h.framing, h.length = "cl", n
        return h

    # -- the body ------------------------------------------------------------------------------

    def _crlf_line(self, data, pos, what):
        i = data.find(b"\n", pos)
        if i < 0:
            if len(data) - pos > MAX_CHUNK_LINE:
                raise Malformed("%s too long" % what)
            seen = data[pos:]
            if b"\r" in (seen[:-1] if seen.endswith(b"\r") else seen):
                raise Malformed("bare CR in %s" % what)
            raise Incomplete()
        if i == pos or data[i - 1] != 0x0D:
            raise Malformed("bare LF in %s" % what)
        line = data[pos:i - 1]
        if b"\r" in line:
            raise Malformed("bare CR in %s" % what)
        return line, i + 1

    def chunked(self, data, pos):
        """(decoded body, offset after the chunked body)."""
        body = bytearray()
        while True:
            line, pos = self._crlf_line(data, pos, "a chunk-size line")
            m = CHUNK_LINE.match(line)
            if not m:
                raise Malformed("bad chunk-size line %r" % line[:80])
            size = int(m.group(1), 16)
            if size > INT63:
                raise Malformed("chunk size overflows")
            if size == 0:
                break
            if len(body) + size > MAX_BODY:
                raise Malformed("body larger than %d bytes" % MAX_BODY)
            if len(data) < pos + size:
                raise Incomplete()
            body += data[pos:pos + size]
            pos += size
            tail = data[pos:pos + 2]
            if tail != b"\r\n"[:len(tail)]:
                raise Malformed("chunk data not followed by CRLF")
            if len(tail) < 2:
                raise Incomplete()
            pos += 2
        while True:   # the trailer section
            line, pos = self._crlf_line(data, pos, "the trailer section")
            if not line:
                return bytes(body), pos
            if line[:1] in (b" ", b"\t"):
                raise Malformed("obs-fold in the trailer section")
            name, sep, value = line.partition(b":")
            if not sep or not TOKEN.match(name):
                raise Malformed("bad trailer field %r" % line[:80])
            self._value(value)

    def request(self, data, pos=0):
        """The request starting at data[pos]; raises Incomplete or Malformed."""
        h = self.head(data, pos)
        r = Request(h)
        if h.framing == "cl":
            if len(data) - h.end < h.length:
                raise Incomplete()
            r.body = data[h.end:h.end + h.length]
            r.end = h.end + h.length
        elif h.framing == "chunked":
            r.body, r.end = self.chunked(data, h.end)
        return r


class Reading:
    """How a reader splits a whole client byte stream: the requests, then how it ends:
    "idle" (at a request boundary), "close" (a request ends the connection), "reject" (the
    next bytes cannot be framed) or "incomplete" (a request is not finished); reject_target is
    the target of the request where it stopped, when one can be made out."""

    def __init__(self, requests, end, reason="", reject_target=None, lenient=()):
        self.requests = requests
        self.end = end
        self.reason = reason
        self.reject_target = reject_target
        self.lenient = tuple(sorted(lenient))

    def key(self):
        return (tuple((r.method, r.target, r.body) for r in self.requests), self.end)

    def __repr__(self):
        return "<Reading %s %s%s>" % ([(r.method, r.target, len(r.body)) for r in self.requests],
                                      self.end, " (%s)" % self.reason if self.reason else "")


def read_stream(data, lenient=()):
    """Splits a client byte stream into requests with a StrictReader. A request that breaks
    a rule which does not change framing (Host) is a rejection here: a client-side reading is
    what a conforming server would accept."""
    reader = StrictReader(lenient)
    reqs = []
    pos = 0
    while True:
        if not data[pos:].strip(b"\r\n"):
            return Reading(reqs, "idle", lenient=lenient)
        m = re.match(rb"(?:\r?\n)*\S+[ \t]+(\S+)", data[pos:pos + 2048])
        here = m.group(1) if m else None
        try:
            r = reader.request(data, pos)
        except Incomplete:
            return Reading(reqs, "incomplete", "waiting for more", here, lenient)
        except Malformed as e:
            return Reading(reqs, "reject", str(e), here, lenient)
        if r.violations:
            return Reading(reqs, "reject", "; ".join(r.violations), r.target, lenient)
        reqs.append(r)
        pos = r.end
        if r.close:
            return Reading(reqs, "close", lenient=lenient)


def all_readings(data):
    """Every distinct reading of data under any combination of the leniencies, the strict
    reading first."""
    out = {}
    n = len(LENIENCIES)
    for mask in range(1 << n):
        chosen = [LENIENCIES[i] for i in range(n) if mask >> i & 1]
        rd = read_stream(data, chosen)
        out.setdefault(rd.key(), rd)
    return list(out.values())


# ---------------------------------------------------------------------------------------------
# The recording server.


class Event:
    """One thing an upstream connection carried: kind "request", "garbage" or "partial"."""

    def __init__(self, kind, conn, seq, t):
        self.kind = kind
        self.conn = conn          # connection id (1, 2, ... in accept order)
        self.seq = seq            # global order of events
        self.t = t                # time.monotonic() when the first byte of it arrived
        self.idx = 0              # position among the connection's requests (1, 2, ...)
        self.method = self.target = self.version = None
        self.headers = []         # [(name, value)] as str (latin-1)
        self.body = b""
        self.framing = None
        self.violations = []
        self.reason = ""
        self.data = b""           # the raw bytes (garbage and partial events)
        self.response = b""       # what the recorder answered (requests)
        self.response_body = b""
        self.close = False

    @property
    def id(self):
        return "%d.%d" % (self.conn, self.idx)

    def header_all(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def describe(self):
        if self.kind == "request":
            return "conn %d #%d: %s %s (%s, body %d bytes%s)" % (
                self.conn, self.idx, self.method, self.target, self.framing, len(self.body),
                "; " + "; ".join(self.violations) if self.violations else "")
        return "conn %d %s: %s %r" % (self.conn, self.kind, self.reason, self.data[:160])

    def __repr__(self):
        return "<Event %s>" % self.describe()


def plain_response(ev):
    """The default answer: 200 with Content-Length, naming the request it answers."""
    body = ("rec %s\n" % ev.id).encode()
    head = ("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
            "X-Rec-Id: %s\r\nConnection: %s\r\n\r\n"
            % (len(body), ev.id, "close" if ev.close else "keep-alive"))
    return head.encode() + body, body


def named_framing_response(connection, chunked=False):
    """A responder (for the response-side test) whose answers carry `Connection: <connection>`
    beside their own framing: Content-Length, or chunked when chunked is true."""
    def respond(ev):
        body = ("response body for %s (rec %s)\n" % (ev.target, ev.id)).encode()
        if chunked:
            framing = "Transfer-Encoding: chunked\r\n"
            half = len(body) // 2
            payload = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (half, body[:half], len(body) - half,
                                                             body[half:])
        else:
            framing = "Content-Length: %d\r\n" % len(body)
            payload = body
        head = ("HTTP/1.1 200 OK\r\nConnection: %s\r\nContent-Type: text/plain\r\n%s"
                "X-Rec-Id: %s\r\n\r\n" % (connection, framing, ev.id))
        return head.encode() + payload, body
    return respond


class Recorder:
    """The recording backend. responder(event) returns (response bytes, response body)."""

    def __init__(self, responder=None, host=HOST, port=0, on_event=None):
        self.responder = responder or plain_response
        self.on_event = on_event
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, port))
        self.lsock.listen(256)
        self.port = self.lsock.getsockname()[1]
        self.addr = "%s:%d" % (host, self.port)
        self.lock = threading.Lock()
        self.events = []
        self.socks = {}
        self.nconns = 0
        self.open_conns = 0
        self.last_activity = time.monotonic()
        self.closed = False
        self._seq = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            with self.lock:
                self.nconns += 1
                self.open_conns += 1
                cid = self.nconns
                self.socks[cid] = s
                self.last_activity = time.monotonic()
            threading.Thread(target=self._serve, args=(cid, s), daemon=True).start()

    def _event(self, kind, conn, t):
        with self.lock:
            self._seq += 1
            return Event(kind, conn, self._seq, t)

    def _record(self, ev):
        with self.lock:
            self.events.append(ev)
            self.last_activity = time.monotonic()
        if self.on_event:
            self.on_event(ev)

    def _serve(self, cid, s):
        reader = StrictReader()
        buf = bytearray()
        idx = 0
        t_start = None
        continued = False
        try:
            while True:
                try:
                    chunk = s.recv(65536)
                except OSError:
                    chunk = b""
                now = time.monotonic()
                with self.lock:
                    self.last_activity = now
                if not chunk:
                    break
                if t_start is None:
                    t_start = now
                buf += chunk
                while buf:
                    data = bytes(buf)
                    if not data.strip(b"\r\n"):
                        break
                    try:
                        req = reader.request(data)
                    except Incomplete:
                        if len(data) > MAX_BODY + MAX_HEAD:
                            self._garbage(cid, t_start, data, "request larger than the limit")
                            return
                        if not continued:
                            try:
                                h = reader.head(data)
                            except (Incomplete, Malformed):
                                h = None
                            if h is not None and h.expect_continue:
                                continued = True
                                s.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                        break
                    except Malformed as e:
                        self._garbage(cid, t_start, data, str(e))
                        return
                    idx += 1
                    ev = self._event("request", cid, t_start)
                    ev.idx = idx
                    ev.method = req.method.decode("latin-1")
                    ev.target = req.target.decode("latin-1")
                    ev.version = req.version.decode("latin-1")
                    ev.headers = [(n.decode("latin-1"), v.decode("latin-1"))
                                  for n, v in req.fields]
                    ev.body = req.body
                    ev.framing = req.framing
                    ev.violations = list(req.violations)
                    ev.close = req.close
                    ev.response, ev.response_body = self.responder(ev)
                    self._record(ev)
                    del buf[:req.end]
                    t_start = now if buf else None
                    continued = False
                    try:
                        s.sendall(ev.response)
                    except OSError:
                        return
                    if req.close:
                        if bytes(buf).strip(b"\r\n"):
                            self._partial(cid, t_start, bytes(buf), "bytes after a request "
                                          "that closes the connection")
                        return
            rest = bytes(buf)
            if rest.strip(b"\r\n"):
                self._partial(cid, t_start, rest, "connection closed inside a request")
        finally:
            with self.lock:
                self.open_conns -= 1
                self.socks.pop(cid, None)
                self.last_activity = time.monotonic()
            try:
                s.close()
            except OSError:
                pass

    def _garbage(self, cid, t, data, reason):
        ev = self._event("garbage", cid, t)
        ev.reason = reason
        ev.data = data[:2048]
        self._record(ev)

    def _partial(self, cid, t, data, reason):
        ev = self._event("partial", cid, t)
        ev.reason = reason
        ev.data = data[:2048]
        try:
            h = StrictReader().head(data)
            ev.method = h.method.decode("latin-1")
            ev.target = h.target.decode("latin-1")
        except (Incomplete, Malformed):
            pass
        self._record(ev)

    # -- what the test reads --------------------------------------------------------------------

    def snapshot(self):
        with self.lock:
            return list(self.events)

    def boundaries(self):
        """{connection id: [event description, ...]}: the request boundaries each upstream
        connection carried, in order."""
        out = {}
        for ev in self.snapshot():
            out.setdefault(ev.conn, []).append(ev.describe())
        return out

    def wait_quiet(self, quiet=0.02, timeout=1.0):
        """Waits until nothing has arrived for `quiet` seconds (at most timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                idle = time.monotonic() - self.last_activity
            if idle >= quiet:
                return True
            time.sleep(quiet / 2)
        return False

    def wait_all_closed(self, timeout=3.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.open_conns == 0:
                    return True
            time.sleep(0.01)
        return False

    def close(self):
        self.closed = True
        try:
            self.lsock.close()
        except OSError:
            pass
        with self.lock:
            socks = list(self.socks.values())
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="a recording HTTP/1.1 backend")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    r = Recorder(port=args.port, on_event=lambda ev: print(ev.describe(), flush=True))
    print("recording on %s" % r.addr, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        r.close()
