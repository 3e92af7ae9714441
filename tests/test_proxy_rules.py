"""http-request / http-response rules and use_backend through the proxy (spec §4).

Local responses checked against HAProxy 2.6.12: `redirect location /x` answers
`HTTP/1.1 302 Found`, `content-length: 0`, `location`, `cache-control: no-cache`;
`return status 200` answers `content-length: 0` only.
"""

from __future__ import annotations

from tests.backends import HttpBackend
from tests.lbproc import LbThread, raw_request

CFG = """
defaults
  mode http
  timeout client 5s
  timeout server 5s
  timeout connect 1s
frontend f
  bind 127.0.0.1:@@fe@@
  acl is_api path_beg /api
  http-request allow if { path /allowed }
  http-request deny deny_status 429 if { path /d429 }
  http-request return status 200 content-type text/plain string hello if { path /ret }
  http-request return status 204 if { path /empty }
  http-request redirect location /new code 301 if { path /old }
  http-request redirect prefix /p if { path_beg /pre }
  http-request redirect scheme https if { path /secure }
  http-request set-header X-Set fe-%[path] if is_api
  http-request add-header X-Add one
  http-request add-header X-Add two
  http-request del-header X-Drop
  http-request replace-header X-Rep ^(.*)-old$ \\1-new
  http-request deny if { path /allowed }
  use_backend be_%[req.hdr(x-route),lower] if { req.hdr(x-route) -m found }
  use_backend api if is_api
  default_backend web
backend api
  http-request set-header X-Backend api
  http-response set-header X-Resp api
  http-response del-header X-Server
  server s1 127.0.0.1:@@s1@@
backend web
  http-response deny if { status 500 }
  http-response add-header X-Web yes
  server s2 127.0.0.1:@@s2@@
backend be_dyn
  server s2 127.0.0.1:@@s2@@
"""


def _handler(req):  # type: ignore[no-untyped-def]
    if req.path == "/boom":
        return 500, [], b"boom"
    return 200, [("x-server", "s")], req.path.encode()


def test_rules_and_routing() -> None:
    with HttpBackend("s1", handler=_handler) as s1, HttpBackend("s2", handler=_handler) as s2, \
            LbThread(CFG, ports={"s1": s1.port, "s2": s2.port}) as lb:
        p = lb.ports["fe"]

        def get(path: str, extra: bytes = b"") -> bytes:
            return raw_request(p, b"GET " + path.encode() + b" HTTP/1.1\r\nHost: h.example\r\n"
                               + extra + b"Connection: close\r\n\r\n")

        assert get("/d429").startswith(b"HTTP/1.1 429 Too Many Requests\r\n")
        assert get("/ret") == (b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n"
                               b"content-type: text/plain\r\nconnection: close\r\n\r\nhello")
        # no content-length on a 204 (HAProxy 2.6.12 drops it too; RFC 9110 8.6)
        assert get("/empty") == b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n"
        assert get("/old") == (b"HTTP/1.1 301 Moved Permanently\r\ncontent-length: 0\r\n"
                               b"location: /new\r\n"
                               b"connection: close\r\n\r\n")
        assert b"\r\nlocation: /p/pre/x?q=1\r\n" in get("/pre/x?q=1")
        assert b"\r\nlocation: https://h.example/secure\r\n" in get("/secure")
        # allow stops the frontend's remaining rules (the deny below it never runs)
        assert get("/allowed").startswith(b"HTTP/1.1 200")
        assert s1.requests == [] and [r.path for r in s2.requests] == ["/allowed"]
        assert s2.requests[0].header("x-add") is None  # add-header came after allow

        r = get("/api/x", b"X-Drop: 1\r\nX-Rep: val-old\r\nX-Set: client\r\n")
        assert r.startswith(b"HTTP/1.1 200") and b"\r\nx-resp: api\r\n" in r
        assert b"x-server" not in r
        h = s1.requests[-1].headers
        assert ("x-set", "fe-/api/x") in h and ("x-set", "client") not in h
        assert [v for k, v in h if k == "x-add"] == ["one", "two"]
        assert ("x-drop", "1") not in h and ("x-rep", "val-new") in h
        assert ("x-backend", "api") in h

        r = get("/web")
        assert b"\r\nx-web: yes\r\n" in r
        r = get("/boom")  # http-response deny: 502, PH
        assert r.startswith(b"HTTP/1.1 502 Bad Gateway\r\n")

        # dynamic use_backend: a hit, and a miss falling to default_backend
        get("/d1", b"X-Route: DYN\r\n")
        get("/d2", b"X-Route: nosuch\r\n")
        assert [r.path for r in s2.requests][-2:] == ["/d1", "/d2"]

        ts = {t.url: t for t in lb.wait_txns(12)}
        assert (ts[b"/d429"].term, ts[b"/d429"].server_name) == (b"PR", None)
        assert ts[b"/ret"].term == b"LR" and ts[b"/old"].term == b"LR"
        assert ts[b"/boom"].term == b"PH" and ts[b"/boom"].status == 502
        assert ts[b"/d1"].backend_name == "be_dyn" and ts[b"/d2"].backend_name == "web"
        fe = lb.state.frontends["f"].counters
        assert fe.dreq == 1 and fe.dresp == 1
        assert lb.state.backends["web"].counters.dresp == 1


def test_tcp_request_rules() -> None:
    cfg = """
defaults
  mode http
  timeout client 5s
  timeout server 5s
  timeout connect 1s
frontend f
  bind 127.0.0.1:@@fe@@
  tcp-request content reject if { path /tcpreject }
  default_backend b
frontend closed
  bind 127.0.0.1:@@closed@@
  tcp-request connection reject if { src 127.0.0.0/8 }
  default_backend b
backend b
  server s1 127.0.0.1:@@s1@@
"""
    with HttpBackend("s1") as s1, LbThread(cfg, ports={"s1": s1.port}) as lb:
        r = raw_request(lb.ports["closed"], b"GET / HTTP/1.1\r\n\r\n")
        assert r == b""
        assert lb.state.frontends["closed"].counters.dcon == 1
        r = raw_request(lb.ports["fe"], b"GET /tcpreject HTTP/1.1\r\n\r\n")
        assert r == b""
        r = raw_request(lb.ports["fe"], b"GET /ok HTTP/1.1\r\nConnection: close\r\n\r\n")
        assert r.endswith(b"s1")
        assert lb.state.frontends["f"].counters.dreq == 1
        assert [q.path for q in s1.requests] == ["/ok"]


def test_stats_uri_and_prometheus_service() -> None:
    cfg = """
defaults
  mode http
  timeout client 5s
  timeout server 5s
  timeout connect 1s
frontend f
  bind 127.0.0.1:@@fe@@
  stats enable
  stats uri /stats
  http-request use-service prometheus-exporter if { path /metrics }
  default_backend b
backend b
  server s1 127.0.0.1:@@s1@@
"""
    with HttpBackend("s1") as s1, LbThread(cfg, ports={"s1": s1.port}) as lb:
        r = raw_request(lb.ports["fe"], b"GET /stats;csv HTTP/1.1\r\nConnection: close\r\n\r\n")
        assert r.startswith(b"HTTP/1.1 200 OK\r\n") and b"# pxname,svname," in r
        r = raw_request(lb.ports["fe"], b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
        assert b"\r\ncontent-type: text/plain; version=0.0.4\r\n" in r
        assert b"haproxy_process_nbthread" in r
        ts = lb.wait_txns(2)
        assert (ts[0].term, ts[0].server_name) == (b"LR", "<STATS>")
        assert ts[1].term == b"LR"
        assert s1.requests == []


def test_http_after_response_runs_after_response_rules() -> None:
    cfg = """
defaults
  mode http
  timeout client 5s
  timeout server 5s
  timeout connect 1s
frontend f
  bind 127.0.0.1:@@fe@@
  http-after-response set-header X-Order fe-after
  default_backend b
backend b
  http-response set-header X-Order be-response
  http-after-response add-header X-Be-After yes
  server s1 127.0.0.1:@@s1@@
"""
    with HttpBackend("s1") as s1, LbThread(cfg, ports={"s1": s1.port}) as lb:
        r = raw_request(lb.ports["fe"], b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        assert b"\r\nx-order: fe-after\r\n" in r and b"be-response" not in r
        assert b"\r\nx-be-after: yes\r\n" in r
