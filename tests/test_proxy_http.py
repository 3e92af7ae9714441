"""End-to-end HTTP forwarding through the data plane on loopback (spec §4, §8).

Header handling checked against HAProxy 2.6.12 on loopback: forwarded names are
lower-cased both ways, `Connection: keep-alive` from a 1.1 client is dropped, a 1.0
client gets `connection: close`, http-server-close sends `connection: close` upstream.
"""

from __future__ import annotations

import socket
import time

from tests.backends import HttpBackend
from tests.lbproc import LbThread, RawBackend, raw_request

BASE = """
defaults
  mode http
  timeout client 5s
  timeout server 5s
  timeout connect 1s
"""

# one frontend in front of one server: most tests here need nothing more
ONE_BACKEND = BASE + """
frontend f
  bind 127.0.0.1:@@fe@@
  default_backend b
backend b
  server s1 127.0.0.1:@@s1@@
"""


def _exchange(sock: socket.socket, data: bytes, n_responses: int = 1,
              timeout: float = 5.0) -> bytes:
    """Send data and read until n complete (content-length) responses arrived."""
    sock.settimeout(timeout)
    sock.sendall(data)
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = 0
        rest = buf
        while b"\r\n\r\n" in rest:
            head, _, rest = rest.partition(b"\r\n\r\n")
            cl = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    cl = int(v)
            if len(rest) < cl:
                break
            rest = rest[cl:]
            done += 1
        if done >= n_responses:
            return buf
        d = sock.recv(65536)
        if not d:
            return buf
        buf += d
    return buf


def test_keepalive_two_requests_one_connection() -> None:
    cfg = ONE_BACKEND
    with HttpBackend("s1") as s1, LbThread(cfg, ports={"s1": s1.port}) as lb:
        with socket.create_connection(("127.0.0.1", lb.ports["fe"])) as c:
            r1 = _exchange(c, b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n"
                              b"X-Mixed-Case: V\r\n\r\n")
            r2 = _exchange(c, b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        assert r1 == (b"HTTP/1.1 200 X\r\nx-server: s1\r\ncontent-type: text/plain\r\n"
                      b"content-length: 2\r\n\r\ns1")
        assert r2.endswith(b"\r\n\r\ns1")
        assert [r.path for r in s1.requests] == ["/a", "/b"]
        # keep-alive dropped, names lower-cased, value untouched
        assert s1.requests[0].headers == [("host", "x"), ("x-mixed-case", "V")]
        assert s1.connections == 1  # the server connection was reused
        txns = lb.wait_txns(2)
        assert [(t.status, t.term, t.backend_name, t.server_name) for t in txns] == \
            [(200, b"--", "b", "s1")] * 2
        fe = lb.state.frontends["f"].counters
        be = lb.state.backends["b"].counters
        srv = lb.state.backends["b"].servers[0].counters
        assert fe.req_tot == 2 and be.req_tot == 2 and srv.req_tot == 2
        assert fe.hrsp_2xx == 2 and be.hrsp_2xx == 2 and srv.hrsp_2xx == 2
        assert be.stot == 2 and be.scur == 0 and srv.scur == 0
        assert fe.bout == len(r1) + len(r2) and srv.bout == fe.bout
        assert srv.bin > 0


def test_http_server_close_and_httpclose_and_http10() -> None:
    cfg = BASE + """
frontend f
  bind 127.0.0.1:@@fe@@
  default_backend b
frontend fclose
  bind 127.0.0.1:@@fe2@@
  option httpclose
  default_backend b
backend b
  option http-server-close
  server s1 127.0.0.1:@@s1@@
"""
    with HttpBackend("s1") as s1, LbThread(cfg, ports={"s1": s1.port}) as lb:
        with socket.create_connection(("127.0.0.1", lb.ports["fe"])) as c:
            r1 = _exchange(c, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
            r2 = _exchange(c, b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"connection" not in r1.lower() and r2.endswith(b"s1")
        assert s1.connections == 2  # one server connection per request
        # server-close mode: the request upstream says close
        assert s1.requests[0].header("connection") == "close"
        r = raw_request(lb.ports["fe2"], b"GET /c HTTP/1.1\r\nHost: x\r\n\r\n")
        assert r.startswith(b"HTTP/1.1 200 X\r\n") and b"\r\nconnection: close\r\n" in r
        # HTTP/1.0 client without keep-alive: close toward the client
        r = raw_request(lb.ports["fe"], b"GET /d HTTP/1.0\r\nHost: x\r\n\r\n")
        assert b"\r\nconnection: close\r\n" in r
        assert s1.requests[-1].version == "1.0"


def test_http10_keepalive_upstream() -> None:
    cfg = ONE_BACKEND
    with HttpBackend("s1") as s1, LbThread(cfg, ports={"s1": s1.port}) as lb:
        r = raw_request(lb.ports["fe"], b"GET /d HTTP/1.0\r\nHost: x\r\n\r\n")
        assert r.startswith(b"HTTP/1.1 200") and b"connection: close" in r
        assert s1.requests[0].header("connection") == "keep-alive"
        with socket.create_connection(("127.0.0.1", lb.ports["fe"])) as c:
            r = _exchange(c, b"GET /e HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            assert b"\r\nconnection: keep-alive\r\n" in r
            r = _exchange(c, b"GET /f HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            assert r.endswith(b"s1")


def test_request_version_from_the_parser_in_every_connection_shape() -> None:
    """The client's version reaches the server, the transaction and the log whether
    or not a Connection header is present (client.py reads it without
    get_http_version when llhttp says keep-alive and no Connection header came);
    versions llhttp parses but HAProxy refuses (2.0, 0.9) stay 400."""
    cfg = ONE_BACKEND
    with HttpBackend("s1") as s1, LbThread(cfg, ports={"s1": s1.port}) as lb:
        with socket.create_connection(("127.0.0.1", lb.ports["fe"])) as c:
            r1 = _exchange(c, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
            r2 = _exchange(c, b"GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert b"connection" not in r1.lower() and b"\r\nconnection: close\r\n" in r2
        r3 = raw_request(lb.ports["fe"], b"GET /c HTTP/1.0\r\nHost: x\r\n\r\n")
        with socket.create_connection(("127.0.0.1", lb.ports["fe"])) as c:
            r4 = _exchange(c, b"GET /d HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
        assert b"\r\nconnection: close\r\n" in r3
        assert b"\r\nconnection: keep-alive\r\n" in r4
        assert [(r.path, r.version) for r in s1.requests] == [
            ("/a", "1.1"), ("/b", "1.1"), ("/c", "1.0"), ("/d", "1.0")]
        txns = lb.wait_txns(4)
        assert [(t.version, t.line()) for t in txns] == [
            (b"1.1", b"GET /a HTTP/1.1"), (b"1.1", b"GET /b HTTP/1.1"),
            (b"1.0", b"GET /c HTTP/1.0"), (b"1.0", b"GET /d HTTP/1.0")]
        for bad in (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", b"GET / HTTP/0.9\r\nHost: x\r\n\r\n"):
            assert raw_request(lb.ports["fe"], bad).startswith(b"HTTP/1.1 400 Bad request"), bad
        assert len(s1.requests) == 4


def test_forwardfor_variants() -> None:
    cfg = BASE + """
frontend f
  bind 127.0.0.1:@@fe@@
  use_backend bhdr if { path_beg /hdr }
  use_backend bifnone if { path_beg /ifnone }
  use_backend bexcept if { path_beg /except }
  default_backend b
backend b
  option forwardfor
  server s1 127.0.0.1:@@s1@@
backend bhdr
  option forwardfor header X-Client
  server s1 127.0.0.1:@@s1@@
backend bifnone
  option forwardfor header X-Real-IP if-none
  server s1 127.0.0.1:@@s1@@
backend bexcept
  option forwardfor except 127.0.0.0/8
  server s1 127.0.0.1:@@s1@@
"""
    with HttpBackend("s1") as s1, LbThread(cfg, ports={"s1": s1.port}) as lb:
        p = lb.ports["fe"]
        raw_request(p, b"GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nConnection: close\r\n\r\n")
        raw_request(p, b"GET /hdr HTTP/1.1\r\nConnection: close\r\n\r\n")
        raw_request(p, b"GET /ifnone HTTP/1.1\r\nX-Real-IP: 9.9.9.9\r\nConnection: close\r\n\r\n")
        raw_request(p, b"GET /except HTTP/1.1\r\nConnection: close\r\n\r\n")
        h = [r.headers for r in s1.requests]
        assert h[0] == [("x-forwarded-for", "1.1.1.1"), ("x-forwarded-for", "127.0.0.1")]
        assert h[1] == [("x-client", "127.0.0.1")]
        assert h[2] == [("x-real-ip", "9.9.9.9")]
        assert h[3] == []


def test_chunked_request_and_response_with_trailers() -> None:
    def handler(c: socket.socket, rb: RawBackend) -> None:
        data = rb.recv_head(c)
        while not data.endswith(b"0\r\nx-t: 1\r\n\r\n"):
            data += c.recv(65536)
        rb.received[-1] = data
        c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n")
        time.sleep(0.5)

    cfg = ONE_BACKEND
    with RawBackend(handler) as rb, LbThread(cfg, ports={"s1": rb.port}) as lb:
        r = raw_request(lb.ports["fe"],
                        b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                        b"Connection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n")
        assert rb.received[0].endswith(b"\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nx-t: 1\r\n\r\n")
        assert r == (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
                     b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-sum: 42\r\n\r\n")


def test_expect_100_continue_relayed() -> None:
    def handler(c: socket.socket, rb: RawBackend) -> None:
        rb.recv_head(c)
        c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = c.recv(100)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        time.sleep(0.5)

    cfg = ONE_BACKEND
    with RawBackend(handler) as rb, LbThread(cfg, ports={"s1": rb.port}) as lb:
        with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=5) as c:
            c.sendall(b"PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                      b"Expect: 100-continue\r\n\r\n")
            first = c.recv(100)
            assert first == b"HTTP/1.1 100 Continue\r\n\r\n"
            c.sendall(b"data")
            rest = _exchange(c, b"", 1)
        assert rest == b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\ndata"
        assert lb.wait_txns(1)[0].status == 200


def test_head_204_304_without_body_and_until_close() -> None:
    def handler(req):  # type: ignore[no-untyped-def]
        if req.path == "/204":
            return 204, [], b""
        if req.path == "/304":
            return 304, [("etag", "x")], b""
        return 200, [("x-server", "s1")], b"body!"

    cfg = ONE_BACKEND
    with HttpBackend("s1", handler=handler) as s1, LbThread(cfg, ports={"s1": s1.port}) as lb:
        with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=5) as c:
            c.settimeout(5)
            c.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
            r = c.recv(1000)
            assert r == b"HTTP/1.1 200 X\r\nx-server: s1\r\ncontent-length: 5\r\n\r\n"
            r = _exchange(c, b"GET /204 HTTP/1.1\r\nHost: x\r\n\r\n")
            assert r.startswith(b"HTTP/1.1 204 X\r\n") and r.endswith(b"\r\n\r\n")
            r = _exchange(c, b"GET /304 HTTP/1.1\r\nHost: x\r\n\r\n")
            assert r.startswith(b"HTTP/1.1 304 X\r\netag: x\r\n")
            r = _exchange(c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert r.endswith(b"body!")
        assert [t.status for t in lb.wait_txns(4)] == [200, 204, 304, 200]

    def until_close(c: socket.socket, rb: RawBackend) -> None:
        rb.recv_head(c)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nstream...")
        time.sleep(0.2)
        c.sendall(b"end")
        c.close()

    with RawBackend(until_close) as rb, LbThread(BASE + """
frontend f
  bind 127.0.0.1:@@fe@@
  default_backend b
backend b
  server s1 127.0.0.1:@@s1@@
""", ports={"s1": rb.port}) as lb:
        r = raw_request(lb.ports["fe"], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert r == (b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n"
                     b"stream...end")
        assert lb.wait_txns(1)[0].term == b"--"


def test_pipelined_requests_answered_in_order() -> None:
    def handler(req):  # type: ignore[no-untyped-def]
        return 200, [], req.path.encode()

    cfg = ONE_BACKEND
    with HttpBackend("s1", handler=handler, delay=0.05) as s1, \
            LbThread(cfg, ports={"s1": s1.port}) as lb:
        with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=5) as c:
            r = _exchange(c, b"GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 3\r\n"
                             b"\r\nabcGET /3 HTTP/1.1\r\n\r\n", 3)
        bodies = [part.split(b"\r\n\r\n")[1][:2] for part in r.split(b"HTTP/1.1 ")[1:]]
        assert bodies == [b"/1", b"/2", b"/3"]
        assert s1.requests[1].body == b"abc"


def test_no_backend_503_nosrv() -> None:
    cfg = BASE + """
frontend f
  bind 127.0.0.1:@@fe@@
  use_backend b if { path /b }
backend b
  server s1 127.0.0.1:@@s1@@
"""
    with HttpBackend("s1") as s1, LbThread(cfg, ports={"s1": s1.port}) as lb:
        r = raw_request(lb.ports["fe"], b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert r == (b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 107\r\n"
                     b"cache-control: no-cache\r\ncontent-type: text/html\r\n"
                     b"connection: close\r\n\r\n<html><body><h1>503 Service Unavailable</h1>\n"
                     b"No server is available to handle this request.\n</body></html>\n")
        t = lb.wait_txns(1)[0]
        assert (t.status, t.term, t.backend_name, t.server_name) == (503, b"SC", None, None)
        assert s1.requests == []


def test_connect_refused_retries_then_503_sc() -> None:
    refused = RawBackend(lambda c, rb: None)
    port = refused.port
    refused.sock.close()  # nothing listens there any more
    cfg = BASE + """
frontend f
  bind 127.0.0.1:@@fe@@
  default_backend b
backend b
  retries 2
  timeout connect 200ms
  server s1 127.0.0.1:@@dead@@
"""
    with LbThread(cfg, ports={"dead": port}) as lb:
        t0 = time.monotonic()
        r = raw_request(lb.ports["fe"], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", timeout=8,
                        until_close=False)
        assert r.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        assert time.monotonic() - t0 >= 0.35  # two waits of min(timeout connect, 1s)
        t = lb.wait_txns(1)[0]
        assert (t.term, t.retries, t.server_name) == (b"SC", 2, "s1")
        be = lb.state.backends["b"].counters
        assert be.wretr == 2 and be.econ == 1


def test_server_errors_502_504() -> None:
    def early_close(c: socket.socket, rb: RawBackend) -> None:
        rb.recv_head(c)
        c.close()

    def garbage(c: socket.socket, rb: RawBackend) -> None:
        rb.recv_head(c)
        c.sendall(b"garbage\r\n\r\n")
        time.sleep(0.5)

    def silent(c: socket.socket, rb: RawBackend) -> None:
        rb.recv_head(c)
        time.sleep(3)

    cfg = BASE + """
frontend f
  bind 127.0.0.1:@@fe@@
  use_backend bclose if { path /close }
  use_backend bgarbage if { path /garbage }
  default_backend bsilent
backend bclose
  server s1 127.0.0.1:@@close@@
backend bgarbage
  server s1 127.0.0.1:@@garbage@@
backend bsilent
  timeout server 500ms
  server s1 127.0.0.1:@@silent@@
"""
    with RawBackend(early_close) as a, RawBackend(garbage) as b, RawBackend(silent) as c, \
            LbThread(cfg, ports={"close": a.port, "garbage": b.port, "silent": c.port}) as lb:
        p = lb.ports["fe"]
        r = raw_request(p, b"GET /close HTTP/1.1\r\n\r\n", until_close=False)
        assert r.startswith(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 107\r\n")
        r = raw_request(p, b"GET /garbage HTTP/1.1\r\n\r\n", until_close=False)
        assert r.startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
        r = raw_request(p, b"GET /silent HTTP/1.1\r\n\r\n", until_close=False)
        assert r == (b"HTTP/1.1 504 Gateway Time-out\r\ncontent-length: 92\r\n"
                     b"cache-control: no-cache\r\ncontent-type: text/html\r\n\r\n"
                     b"<html><body><h1>504 Gateway Time-out</h1>\n"
                     b"The server didn't respond in time.\n</body></html>\n")
        terms = [(t.status, t.term) for t in lb.wait_txns(3)]
        assert terms == [(502, b"SH"), (502, b"PH"), (504, b"sH")]
        assert lb.state.backends["bgarbage"].counters.eresp == 1
        assert lb.state.backends["bgarbage"].servers[0].counters.eresp == 1


def test_errorfile_replaces_page(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ef = tmp_path / "503.http"
    ef.write_bytes(b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n"
                   b"content-length: 5\r\n\r\nsorry")
    cfg = BASE + f"""
frontend f
  bind 127.0.0.1:@@fe@@
  errorfile 503 {ef}
"""
    with LbThread(cfg) as lb:
        r = raw_request(lb.ports["fe"], b"GET / HTTP/1.1\r\n\r\n", until_close=False)
        assert r.endswith(b"\r\n\r\nsorry") and r.startswith(b"HTTP/1.1 503")


def test_chunked_response_to_http10_client_is_decoded_and_closed() -> None:
    def handler(c: socket.socket, rb: RawBackend) -> None:
        rb.recv_head(c)
        c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        time.sleep(0.5)

    cfg = ONE_BACKEND
    with RawBackend(handler) as rb, LbThread(cfg, ports={"s1": rb.port}) as lb:
        r = raw_request(lb.ports["fe"], b"GET / HTTP/1.0\r\n\r\n")
        assert r == b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nhello world"
