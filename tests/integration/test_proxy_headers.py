"""Headers through the proxy: X-Abgate-* both ways, stripping of client-sent ones, forced
variants, X-Request-Id, X-Forwarded-For, hop-by-hop removal, and units from cookies and
queries (with the cookie fallback)."""

import re

from harness import Experiment, HttpConn, make_echo, parallel_pipelined, user_request

MODEL_OF = {"control": "model-a", "treatment": "model-b"}


def echo_pair(procs, make_config, exp_kw=None, response_headers=()):
    """A proxy whose control goes to Python echo upstream echo-a and treatment to echo-b."""
    ua = procs.upstream(make_echo("echo-a", response_headers))
    ub = procs.upstream(make_echo("echo-b", response_headers))
    exp = Experiment("hdrs", [("control", "echo-a", 50), ("treatment", "echo-b", 50)],
                     **(exp_kw or {}))
    proxy = procs.proxy(make_config({"echo-a": ua.addr, "echo-b": ub.addr}, [exp]))
    return proxy, exp


def upstream_headers(r):
    return [(n, v) for n, v in r.json()["headers"]]


def names(headers):
    return [n.lower() for n, _ in headers]


def test_abgate_headers_on_response_and_at_backend(ab_proxy):
    proxy, exp = ab_proxy(50, 50)
    users = ["hdr-%d" % i for i in range(200)]
    resps = parallel_pipelined(proxy.port, [user_request(u) for u in users], nconns=2)
    seen = set()
    for u, r in zip(users, resps):
        v = exp.expect(u)
        seen.add(v)
        assert r.header_all("X-Abgate-Experiment") == ["ranker"]
        assert r.header_all("X-Abgate-Variant") == [v]
        body = r.json()
        assert body["variant"] == v
        assert body["model"] == MODEL_OF[v]
    assert seen == {"control", "treatment"}


def test_client_abgate_headers_are_stripped(ab_proxy):
    proxy, exp = ab_proxy(50, 50)
    users = ["strip-%d" % i for i in range(30)]
    with HttpConn(proxy.port) as c:
        for u in users:
            v = exp.expect(u)
            other = "treatment" if v == "control" else "control"
            r = c.request("GET", "/predict", [("X-User-Id", u), ("X-Abgate-Variant", other),
                                              ("X-Abgate-Experiment", "not-this")])
            assert r.status == 200
            assert r.header_all("X-Abgate-Variant") == [v]
            assert r.header_all("X-Abgate-Experiment") == ["ranker"]
            assert r.json()["variant"] == v
            assert r.json()["model"] == MODEL_OF[v]


def test_client_abgate_headers_never_reach_the_upstream(procs, make_config):
    proxy, exp = echo_pair(procs, make_config)
    with HttpConn(proxy.port) as c:
        for u in ("s1", "s2", "s3", "s4", "s5", "s6"):
            v = exp.expect(u)
            other = "treatment" if v == "control" else "control"
            r = c.request("GET", "/predict", [
                ("X-User-Id", u), ("X-Abgate-Variant", other), ("x-abgate-experiment", "zz"),
                ("X-Abgate-Whatever", "1"), ("X-Abgate-Force-Variant", other)])
            assert r.status == 200
            h = upstream_headers(r)
            abg = [(n.lower(), val) for n, val in h if n.lower().startswith("x-abgate-")]
            assert sorted(abg) == [("x-abgate-experiment", "hdrs"), ("x-abgate-variant", v)]
            assert r.header("X-Upstream") == {"control": "echo-a", "treatment": "echo-b"}[v]


def test_forced_variant_with_allow_force(ab_proxy):
    proxy, exp = ab_proxy(50, 50, allow_force=True)
    users = ["force-%d" % i for i in range(20)]
    rids = {}
    with HttpConn(proxy.port) as c:
        for i, u in enumerate(users):
            v = exp.expect(u)
            other = "treatment" if v == "control" else "control"
            rid = "force-rid-%d" % i
            r = c.request("GET", "/predict", [("X-User-Id", u),
                                              ("X-Abgate-Force-Variant", other),
                                              ("X-Request-Id", rid)])
            assert r.status == 200
            assert r.header("X-Abgate-Variant") == other
            assert r.json()["variant"] == other
            assert r.json()["model"] == MODEL_OF[other]
            rids[rid] = (u, other, True)
            # without the header the user is back on the hashed variant
            rid2 = "plain-rid-%d" % i
            r = c.request("GET", "/predict", [("X-User-Id", u), ("X-Request-Id", rid2)])
            assert r.header("X-Abgate-Variant") == v
            assert r.json()["model"] == MODEL_OF[v]
            rids[rid2] = (u, v, False)
            # a name that is no variant forces nothing
            r = c.request("GET", "/predict", [("X-User-Id", u),
                                              ("X-Abgate-Force-Variant", "nonexistent")])
            assert r.header("X-Abgate-Variant") == v
    recs = proxy.wait_outcomes(lambda x: x["type"] == "request" and x["rid"] in rids,
                               len(rids))
    for rec in recs:
        u, v, forced = rids[rec["rid"]]
        assert rec["unit"] == u and rec["variant"] == v and rec["exp"] == "ranker"
        if forced:
            assert rec.get("forced") is True, rec
        else:
            assert "forced" not in rec or rec["forced"] is False, rec


def test_force_header_ignored_without_allow_force(ab_proxy):
    proxy, exp = ab_proxy(50, 50)
    with HttpConn(proxy.port) as c:
        for i in range(20):
            u = "noforce-%d" % i
            v = exp.expect(u)
            other = "treatment" if v == "control" else "control"
            r = c.request("GET", "/predict", [("X-User-Id", u),
                                              ("X-Abgate-Force-Variant", other)])
            assert r.header("X-Abgate-Variant") == v
            assert r.json()["model"] == MODEL_OF[v]


def test_request_id_kept_or_generated(ab_proxy):
    proxy, exp = ab_proxy(50, 50)
    with HttpConn(proxy.port) as c:
        r = c.request("GET", "/predict", [("X-User-Id", "rid-user"),
                                          ("X-Request-Id", "client-id-42.a_b")])
        assert r.header_all("X-Request-Id") == ["client-id-42.a_b"]
        assert r.json()["request_id"] == "client-id-42.a_b"
        ids = set()
        for _ in range(20):
            r = c.request("GET", "/predict", [("X-User-Id", "rid-user")])
            rid = r.header("X-Request-Id")
            assert len(r.header_all("X-Request-Id")) == 1
            assert re.fullmatch(r"[0-9a-f]{32}", rid), rid
            assert r.json()["request_id"] == rid
            ids.add(rid)
        assert len(ids) == 20


def test_x_forwarded_for_appended(procs, make_config):
    proxy, exp = echo_pair(procs, make_config)
    with HttpConn(proxy.port) as c:
        r = c.request("GET", "/predict", [("X-User-Id", "xff")])
        xff = [v for n, v in upstream_headers(r) if n.lower() == "x-forwarded-for"]
        assert xff == ["127.0.0.1"]
        r = c.request("GET", "/predict", [("X-User-Id", "xff"),
                                          ("X-Forwarded-For", "203.0.113.7, 10.0.0.1")])
        xff = [v for n, v in upstream_headers(r) if n.lower() == "x-forwarded-for"]
        assert xff == ["203.0.113.7, 10.0.0.1, 127.0.0.1"]
        # the request id goes upstream too
        ups = dict((n.lower(), v) for n, v in upstream_headers(r))
        assert ups["x-request-id"] == r.header("X-Request-Id")


def test_x_forwarded_for_split_over_two_header_lines_keeps_every_hop(procs, make_config):
    # Two X-Forwarded-For lines are one list (RFC 9110 5.3): "198.51.100.1, 203.0.113.9";
    # the proxy appends the client address to that whole list.
    proxy, exp = echo_pair(procs, make_config)
    with HttpConn(proxy.port) as c:
        r = c.request("GET", "/predict", [("X-User-Id", "xff2"),
                                          ("X-Forwarded-For", "198.51.100.1"),
                                          ("X-Forwarded-For", "203.0.113.9")])
        xff = [v for n, v in upstream_headers(r) if n.lower() == "x-forwarded-for"]
        hops = [h.strip() for v in xff for h in v.split(",")]
        assert hops == ["198.51.100.1", "203.0.113.9", "127.0.0.1"], xff


HOP_RESPONSE = [("Connection", "X-Resp-Hop"), ("X-Resp-Hop", "secret"),
                ("Keep-Alive", "timeout=5, max=100"), ("Proxy-Authenticate", "Basic"),
                ("Trailer", "X-Trail"), ("Upgrade", "foo/2"), ("X-End-To-End", "kept")]


def test_hop_by_hop_headers_removed_both_ways(procs, make_config):
    proxy, exp = echo_pair(procs, make_config, response_headers=HOP_RESPONSE)
    with HttpConn(proxy.port) as c:
        r = c.request("GET", "/predict", [
            ("X-User-Id", "hop"), ("Connection", "keep-alive, X-Hop-One, x-hop-two"),
            ("X-Hop-One", "1"), ("X-Hop-Two", "2"), ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"), ("Trailer", "X-Foo"), ("Upgrade", "foo/1"),
            ("Proxy-Authorization", "Basic eDp5"), ("Proxy-Connection", "keep-alive"),
            ("X-Keep", "yes")])
        assert r.status == 200
        got = names(upstream_headers(r))
        for h in ("connection", "x-hop-one", "x-hop-two", "keep-alive", "te", "trailer",
                  "upgrade", "proxy-authorization", "proxy-connection"):
            assert h not in got, (h, got)
        assert "x-keep" in got and "x-user-id" in got
        # and on the way back
        resp = names(r.headers)
        for h in ("x-resp-hop", "keep-alive", "proxy-authenticate", "trailer", "upgrade"):
            assert h not in resp, (h, r.headers)
        assert r.header("X-End-To-End") == "kept"
        for v in r.header_all("Connection"):
            assert v.lower() in ("keep-alive", "close"), r.headers
        # the connection stays usable
        r = c.request("GET", "/predict", [("X-User-Id", "hop")])
        assert r.status == 200


def parse_set_cookie(value):
    first, _, attrs = value.partition(";")
    name, _, val = first.strip().partition("=")
    return name, val, attrs


def test_cookie_fallback_sets_cookie_and_honours_it(ab_proxy):
    proxy, exp = ab_proxy(50, 50, fallback="cookie")
    seen = set()
    cookies = []
    for i in range(24):
        with HttpConn(proxy.port) as c:
            r = c.request("GET", "/predict")
            assert r.status == 200
            sc = r.header_all("Set-Cookie")
            assert len(sc) == 1, r.headers
            name, uid, attrs = parse_set_cookie(sc[0])
            assert name == "abgate_uid"
            assert re.fullmatch(r"[0-9A-Za-z_-]{8,}", uid), uid
            v = exp.expect(uid)
            assert r.header("X-Abgate-Variant") == v
            assert r.json()["model"] == MODEL_OF[v]
            seen.add(v)
            cookies.append((uid, v, r.header("X-Request-Id")))
            for _ in range(3):
                r = c.request("GET", "/predict", [("Cookie", "a=b; abgate_uid=%s; c=d" % uid)])
                assert r.header("X-Abgate-Variant") == v
                assert r.json()["model"] == MODEL_OF[v]
                assert r.header_all("Set-Cookie") == []
    assert len({u for u, _, _ in cookies}) == 24
    assert seen == {"control", "treatment"}
    # a unit header present: no cookie is set
    with HttpConn(proxy.port) as c:
        r = c.request("GET", "/predict", [("X-User-Id", "has-id")])
    assert r.header_all("Set-Cookie") == []
    # the log keys the first request on the cookie's id
    by_rid = {rid: (uid, v) for uid, v, rid in cookies}
    recs = proxy.wait_outcomes(lambda x: x["type"] == "request" and x["rid"] in by_rid, 24)
    for rec in recs:
        assert (rec["unit"], rec["variant"]) == by_rid[rec["rid"]]


def test_upstream_set_cookie_kept_beside_the_unit_cookie(procs, make_config):
    proxy, exp = echo_pair(procs, make_config, exp_kw={"fallback": "cookie"},
                           response_headers=[("Set-Cookie", "session=s1; Path=/")])
    with HttpConn(proxy.port) as c:
        r = c.request("GET", "/predict")
        cookies = [parse_set_cookie(v)[:2] for v in r.header_all("Set-Cookie")]
        assert ("session", "s1") in cookies
        uid = dict(cookies)["abgate_uid"]
        assert r.header("X-Abgate-Variant") == exp.expect(uid)
        # the unit cookie found among several Cookie lines
        r = c.request("GET", "/predict", [("Cookie", "session=s1"),
                                          ("Cookie", "abgate_uid=%s" % uid)])
        assert r.header("X-Abgate-Variant") == exp.expect(uid)
        assert [parse_set_cookie(v)[0] for v in r.header_all("Set-Cookie")] == ["session"]


def test_cookie_unit_with_cookie_fallback(ab_proxy):
    proxy, exp = ab_proxy(50, 50, unit=("cookie", "uid"), fallback="cookie")
    with HttpConn(proxy.port) as c:
        r = c.request("GET", "/predict")
        name, uid, _ = parse_set_cookie(r.header("Set-Cookie"))
        assert name == "uid"
        v = exp.expect(uid)
        assert r.header("X-Abgate-Variant") == v
        r = c.request("GET", "/predict", [("Cookie", "uid=%s" % uid)])
        assert r.header("X-Abgate-Variant") == v
        assert r.header_all("Set-Cookie") == []
        for u in ("cookie-user-%d" % i for i in range(20)):
            r = c.request("GET", "/predict", [("Cookie", "x=1; uid=%s" % u)])
            assert r.header("X-Abgate-Variant") == exp.expect(u)


def test_query_unit_and_other_fallbacks(procs, models, make_config):
    a, b = models
    q = Experiment("q", [("control", "model-a", 50), ("treatment", "model-b", 50)],
                   path_prefix="/q", unit=("query", "user"))
    ip = Experiment("ip", [("control", "model-a", 50), ("treatment", "model-b", 50)],
                    path_prefix="/ip", fallback="client_ip")
    ctl = Experiment("ctl", [("control", "model-a", 1), ("treatment", "model-b", 99)],
                     path_prefix="/ctl", fallback="control")
    proxy = procs.proxy(make_config({"model-a": a.addr, "model-b": b.addr}, [q, ip, ctl]))
    with HttpConn(proxy.port) as c:
        for u in ("alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta"):
            r = c.request("GET", "/q/x?a=1&user=%s&b=2" % u)
            assert r.header("X-Abgate-Experiment") == "q"
            assert r.header("X-Abgate-Variant") == q.expect(u), u
        r = c.request("GET", "/q?user=a%20b%2Fc")
        assert r.header("X-Abgate-Variant") == q.expect("a b/c")
        # client_ip: every request from 127.0.0.1 hashes the address
        for _ in range(3):
            r = c.request("GET", "/ip")
            assert r.header("X-Abgate-Variant") == ip.expect("127.0.0.1")
        # control: no unit, always the control (even at 1%)
        for _ in range(5):
            r = c.request("GET", "/ctl")
            assert r.header("X-Abgate-Variant") == "control"
            assert r.json()["model"] == "model-a"
