"""One check of each kind against real loopback servers (healthcheck.check_once)."""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import time

from healthcheck import CheckResult, check_once
from lb.config.model import (
    CheckConnect,
    CheckSpec,
    HttpCheckExpect,
    HttpCheckSend,
    TcpCheckExpect,
    TcpCheckSend,
    Timeouts,
)
from lb.http import h1
from tests.backends import HttpBackend, WsBackend
from tests.healthcheck_support import RawServer, backend, free_port, header, server, state_of

SEED_SEND = HttpCheckSend("GET", "/", "HTTP/1.1", (
    ("Host", "ws.domain.com"), ("Connection", "Upgrade"), ("Upgrade", "websocket"),
    ("Sec-WebSocket-Key", "haproxy"), ("Sec-WebSocket-Version", "13"),
    ("Sec-WebSocket-Protocol", "echo-protocol")))
SEED_CHECK = CheckSpec(kind="http", steps=(SEED_SEND, HttpCheckExpect("status", "101")))


def once(port: int, check: CheckSpec, timeouts: Timeouts | None = None,
         **srv_kw: object) -> CheckResult:
    be = backend([server("s1", port, **srv_kw)], check, timeouts=timeouts)
    st = state_of(be)
    srv = st.backends["b"].servers[0]
    return asyncio.run(check_once(srv, be))


def once_async(port: int, check: CheckSpec, timeouts: Timeouts | None = None,
               **srv_kw: object):  # type: ignore[no-untyped-def]
    be = backend([server("s1", port, **srv_kw)], check, timeouts=timeouts)
    st = state_of(be)
    return check_once(st.backends["b"].servers[0], be)


# --------------------------------------------------------------------------- TCP


def test_tcp_connect_ok_and_refused() -> None:
    with HttpBackend("s1") as b:
        r = once(b.port, CheckSpec())
    assert (r.status, r.desc) == ("L4OK", "")
    assert 0 <= r.duration_ms < 1000
    r = once(free_port(), CheckSpec())
    assert (r.status, r.desc) == ("L4CON", "Connection refused")


def test_check_port_and_addr_options() -> None:
    with HttpBackend("s1") as b:
        # the server's own port is closed; `port` sends the check elsewhere
        r = once(free_port(), CheckSpec(), check_port=b.port)
        assert r.status == "L4OK"
        r = once(b.port, CheckSpec(), check_addr="127.0.0.2", check_port=free_port())
        assert r.status == "L4CON"


def test_connect_timeout_is_l4tout() -> None:
    # a listener whose accept queue is full drops SYNs: the connect never completes
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            c = socket.socket()
            c.setblocking(False)
            try:
                c.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(c)
        time.sleep(0.05)
        t0 = time.monotonic()
        r = once(port, CheckSpec(), timeouts=Timeouts(connect=0.3, check=0.3), inter=2.0)
        elapsed = time.monotonic() - t0
        tc = once(port, CheckSpec(kind="tcp-check", steps=(TcpCheckSend(b"PING\r\n"),)),
                  timeouts=Timeouts(connect=0.3, check=1.0), inter=2.0)
    finally:
        for c in fillers:
            c.close()
        lsock.close()
    # checked against HAProxy 2.6.12 (same full-backlog listener, timeout connect 300ms,
    # inter 2s): `reason: Layer4 timeout, check duration: 306ms` and, for tcp-check,
    # `info: " at initial connection step of tcp-check"`
    assert (r.status, r.desc) == ("L4TOUT", "")
    # connect timeout = min(timeout connect, inter) when `timeout check` is set
    assert 0.25 < elapsed < 1.5
    assert (tc.status, tc.desc) == ("L4TOUT", " at initial connection step of tcp-check")
    assert 250 <= tc.duration_ms < 1500


# --------------------------------------------------------------------------- HTTP


def test_httpchk_default_request_and_status() -> None:
    with HttpBackend("s1") as b:
        r = once(b.port, CheckSpec(kind="http", steps=(HttpCheckSend(),)))
        assert (r.status, r.code, r.desc) == ("L7OK", 200, "")
        assert b.requests[0].method == "OPTIONS" and b.requests[0].path == "/"
        assert b.requests[0].version == "1.0" and b.requests[0].headers == []

    def fail(req):  # type: ignore[no-untyped-def]
        return 503, [], b"busy"

    with HttpBackend("s1", handler=fail) as b:
        r = once(b.port, CheckSpec(kind="http", steps=(HttpCheckSend("GET", "/health"),)))
    assert (r.status, r.code, r.desc) == ("L7STS", 503, "X")  # reason phrase of the backend


def test_http_expect_string_and_send_state() -> None:
    spec = CheckSpec(kind="http", send_state=True, steps=(
        HttpCheckSend("GET", "/hc", "HTTP/1.1", (("Host", "svc"),)),
        HttpCheckExpect("string", "s1")))
    with HttpBackend("s1") as b:
        r = once(b.port, spec)
        assert (r.status, r.code) == ("L7OK", 200)
        req = b.requests[0]
        assert req.header("host") == "svc"
        state_hdr = req.header("x-haproxy-server-state")
        assert state_hdr == (f"UP 1/3; address=127.0.0.1; port={b.port}; name=b/s1; "
                             "node=testnode; weight=1/1; scur=0/0; qcur=0")
        assert req.header("connection") == "close"
    spec2 = CheckSpec(kind="http", steps=(HttpCheckSend(), HttpCheckExpect("string", "nope")))
    with HttpBackend("s1") as b:
        r = once(b.port, spec2)
    assert (r.status, r.desc) == ("L7RSP", "HTTP content check did not match")


def test_http_server_closes_without_answer_and_garbage() -> None:
    async def go() -> tuple[CheckResult, CheckResult]:
        closer = await RawServer(lambda req: b"", close=True).start()
        garbage = await RawServer(lambda req: b"hello world\r\n", close=True).start()
        spec = CheckSpec(kind="http", steps=(HttpCheckSend(),))
        try:
            return (await once_async(closer.port, spec), await once_async(garbage.port, spec))
        finally:
            await closer.stop()
            await garbage.stop()

    # HAProxy 2.6.12 reports both as "Layer7 invalid response" without info
    a, b = asyncio.run(go())
    assert (a.status, a.desc) == ("L7RSP", "")
    assert (b.status, b.desc) == ("L7RSP", "")


def test_accept_then_hang_is_l7tout() -> None:
    async def go() -> tuple[CheckResult, float, CheckResult, float]:
        hang = await RawServer(lambda req: None).start()
        spec = CheckSpec(kind="http", steps=(HttpCheckSend(),))
        try:
            t0 = time.monotonic()
            with_tc = await once_async(hang.port, spec, Timeouts(connect=1, check=0.3), inter=2.0)
            t1 = time.monotonic()
            # without `timeout check` the whole check must fit in `inter`
            without = await once_async(hang.port, spec, Timeouts(connect=1), inter=0.4)
            t2 = time.monotonic()
            return with_tc, t1 - t0, without, t2 - t1
        finally:
            await hang.stop()

    a, da, b, db = asyncio.run(go())
    assert (a.status, a.desc) == ("L7TOUT", "")
    assert 0.25 < da < 1.5 and 250 <= a.duration_ms < 1500
    assert b.status == "L7TOUT"
    assert 0.35 < db < 1.5


def test_http_check_connect_port() -> None:
    with HttpBackend("s1") as b:
        spec = CheckSpec(kind="http", steps=(CheckConnect(port=b.port), HttpCheckSend()))
        r = once(free_port(), spec)
    assert (r.status, r.code) == ("L7OK", 200)


def test_disable_on_404_conditional_pass() -> None:
    def nf(req):  # type: ignore[no-untyped-def]
        return 404, [], b""

    with HttpBackend("s1", handler=nf) as b:
        r = once(b.port, CheckSpec(kind="http", steps=(HttpCheckSend(),), disable_on_404=True))
    assert (r.status, r.code) == ("L7OKC", 404)


# --------------------------------------------------------------------------- tcp-check


def test_tcp_check_send_expect() -> None:
    async def go() -> list[CheckResult]:
        pong = await RawServer(lambda req: b"+PONG\r\n", need_head=False, close=True).start()
        hang = await RawServer(lambda req: None, need_head=False).start()
        ok = CheckSpec(kind="tcp-check", steps=(TcpCheckSend(b"PING\r\n"),
                                                 TcpCheckExpect("string", b"+PONG")))
        bad = CheckSpec(kind="tcp-check", steps=(TcpCheckSend(b"PING\r\n"),
                                                  TcpCheckExpect("string", b"+PANG")))
        try:
            return [await once_async(pong.port, ok), await once_async(pong.port, bad),
                    await once_async(hang.port, ok, Timeouts(connect=1, check=0.3)),
                    await once_async(free_port(), ok)]
        finally:
            await pong.stop()
            await hang.stop()

    ok, bad, hung, refused = asyncio.run(go())
    assert (ok.status, ok.code, ok.desc) == ("L7OK", 0, "(tcp-check)")
    assert (bad.status, bad.desc) == ("L7RSP", "TCPCHK did not match content '+PANG' at step 2")
    assert (hung.status, hung.desc) == (
        "L7TOUT", " at step 2 of tcp-check (expect string '+PONG')")
    assert (refused.status, refused.desc) == (
        "L4CON", "Connection refused at initial connection step of tcp-check")


# --------------------------------------------------------------------------- WebSocket


def test_seed_ws_check_against_real_websocket_server_is_up() -> None:
    with WsBackend("w1") as w:
        r = once(w.port, SEED_CHECK)
        time.sleep(0.2)
        hs = w.handshakes[-1]
    assert (r.status, r.code, r.desc) == ("L7OK", 101, "")
    assert r.ws_closed
    # the seed's invalid key `haproxy` was replaced by a valid one
    assert h1.ws_key_valid(hs["sec-websocket-key"].encode())
    assert hs["sec-websocket-protocol"] == "echo-protocol"


def _raw_101(accept: bytes | None):  # type: ignore[no-untyped-def]
    def respond(req: bytes) -> bytes:
        head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        if accept is not None:
            head += b"Sec-WebSocket-Accept: " + accept + b"\r\n"
        return head + b"\r\n"
    return respond


def _good_101(req: bytes) -> bytes:
    key = header(req, b"sec-websocket-key") or b""
    return _raw_101(h1.ws_accept(key))(req)


def test_seed_ws_check_against_fooling_servers() -> None:
    async def go() -> dict[str, tuple[CheckResult, RawServer]]:
        servers = {
            "fixed_accept": await RawServer(_raw_101(b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")).start(),
            "no_accept": await RawServer(_raw_101(None)).start(),
            "ok200": await RawServer(lambda r: b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
                                     ).start(),
            "bad400": await RawServer(lambda r: b"HTTP/1.1 400 Bad Request\r\n"
                                      b"content-length: 0\r\n\r\n").start(),
            "good": await RawServer(_good_101).start(),
        }
        out = {}
        for name, s in servers.items():
            out[name] = (await once_async(s.port, SEED_CHECK), s)
        await asyncio.sleep(0.1)
        for s in servers.values():
            await s.stop()
        return out

    res = asyncio.run(go())
    fixed, _ = res["fixed_accept"]
    assert (fixed.status, fixed.code) == ("L7RSP", 101)
    assert fixed.desc == "WebSocket handshake: wrong Sec-WebSocket-Accept"
    noacc, _ = res["no_accept"]
    assert (noacc.status, noacc.desc) == (
        "L7RSP", "WebSocket handshake: 101 without Sec-WebSocket-Accept")
    assert (res["ok200"][0].status, res["ok200"][0].code, res["ok200"][0].desc) == (
        "L7STS", 200, "OK")
    assert (res["bad400"][0].status, res["bad400"][0].code, res["bad400"][0].desc) == (
        "L7STS", 400, "Bad Request")
    good, gsrv = res["good"]
    assert (good.status, good.code) == ("L7OK", 101)
    # the request carried a fresh valid key; the server then got a masked close frame
    key = header(gsrv.requests[0], b"sec-websocket-key")
    assert key is not None and len(base64.b64decode(key)) == 16
    frame = gsrv.after[0]
    assert frame[0] == 0x88 and frame[1] == 0x82  # FIN+close, masked, 2-byte payload
    mask = frame[2:6]
    assert bytes(b ^ mask[i % 4] for i, b in enumerate(frame[6:8])) == b"\x03\xe8"


def test_upgrade_request_without_websocket_is_status_only() -> None:
    async def go() -> CheckResult:
        s = await RawServer(_raw_101(None)).start()
        spec = CheckSpec(kind="http", steps=(HttpCheckSend("GET", "/"),
                                              HttpCheckExpect("status", "101")))
        try:
            return await once_async(s.port, spec)
        finally:
            await s.stop()

    r = asyncio.run(go())
    assert (r.status, r.code) == ("L7OK", 101)


# --------------------------------------------------------------------------- TLS


def test_tls_checks(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import ssl

    from tests.healthcheck_support import self_signed_cert

    cert, key = self_signed_cert(tmp_path)
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(cert, key)
    http = CheckSpec(kind="http", steps=(HttpCheckSend("GET", "/"),))

    async def go() -> dict[str, CheckResult]:
        tls_http = await RawServer(lambda r: b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
                                   ).start(ssl=sctx)
        tls_ws = await RawServer(_good_101).start(ssl=sctx)
        plain = await RawServer(lambda r: b"HTTP/1.1 400 Bad Request\r\n\r\n",
                                close=True, need_head=False).start()
        try:
            return {
                "l6ok": await once_async(tls_http.port, CheckSpec(), ssl=True, verify="none"),
                "l7ok": await once_async(tls_http.port, http, ssl=True, verify="none"),
                "wss": await once_async(tls_ws.port, SEED_CHECK, check_ssl=True,
                                        verify="none"),
                "not_tls": await once_async(plain.port, http, check_ssl=True, verify="none"),
                "untrusted": await once_async(tls_http.port, http, ssl=True, sni="localhost"),
                "port_moves_check": await once_async(free_port(), CheckSpec(), ssl=True,
                                                     verify="none", check_port=plain.port),
            }
        finally:
            await tls_http.stop()
            await tls_ws.stop()
            await plain.stop()

    r = asyncio.run(go())
    assert (r["l6ok"].status, r["l6ok"].desc) == ("L6OK", "")
    assert (r["l7ok"].status, r["l7ok"].code) == ("L7OK", 200)
    assert (r["wss"].status, r["wss"].code) == ("L7OK", 101) and r["wss"].ws_closed
    assert (r["not_tls"].status, r["not_tls"].desc) == ("L6RSP", "SSL handshake failure")
    assert r["untrusted"].status == "L6RSP"  # self-signed, verified against system CAs
    assert r["port_moves_check"].status == "L4OK"  # `port` drops the implicit ssl


def test_check_send_proxy_line() -> None:
    # checked against HAProxy 2.6.12: `check-send-proxy` sends
    # `PROXY TCP4 127.0.0.1 127.0.0.1 52892 19499\r\n` (the check's own addresses) first
    async def go() -> tuple[CheckResult, bytes, CheckResult, bytes]:
        s = await RawServer(lambda r: b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").start()
        try:
            http = CheckSpec(kind="http", steps=(HttpCheckSend("GET", "/"),))
            a = await once_async(s.port, http, check_send_proxy=True)
            b = await once_async(s.port, http, send_proxy=True, check_addr="127.0.0.1",
                                 check_port=s.port)
            return a, s.requests[0], b, s.requests[1]
        finally:
            await s.stop()

    a, req_a, b, req_b = asyncio.run(go())
    assert a.status == "L7OK"
    line, _, rest = req_a.partition(b"\r\n")
    assert re.fullmatch(rb"PROXY TCP4 127\.0\.0\.1 127\.0\.0\.1 \d+ \d+", line), line
    assert rest == b"GET / HTTP/1.0\r\n\r\n"
    # `send-proxy` applies to checks only when port/addr did not move them
    assert b.status == "L7OK" and req_b == b"GET / HTTP/1.0\r\n\r\n"


def test_reset_without_answer_is_socket_error() -> None:
    class Resetter(asyncio.Protocol):
        def connection_made(self, transport):  # type: ignore[no-untyped-def]
            self.t = transport

        def data_received(self, data: bytes) -> None:
            sock = self.t.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.t.abort()

    async def go() -> tuple[CheckResult, CheckResult]:
        srv = await asyncio.get_running_loop().create_server(Resetter, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        tcp = CheckSpec(kind="tcp-check", steps=(TcpCheckSend(b"PING\r\n"),
                                                  TcpCheckExpect("string", b"+PONG")))
        try:
            return (await once_async(port, CheckSpec(kind="http", steps=(HttpCheckSend(),))),
                    await once_async(port, tcp))
        finally:
            srv.close()

    r, t = asyncio.run(go())
    assert (t.status, t.desc) == (
        "SOCKERR", "Connection reset by peer at step 2 of tcp-check (expect string '+PONG')")
    # checked against HAProxy 2.6.12: an RST before any byte of answer is
    # `reason: Socket error, info: "Connection reset by peer"`
    assert (r.status, r.desc) == ("SOCKERR", "Connection reset by peer")
