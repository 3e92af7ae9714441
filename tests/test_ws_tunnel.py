"""WebSocket through the proxy: handshake checks, the tunnel, counters (spec §10).

Checked against HAProxy 2.6.12: an idle WebSocket is closed by `timeout tunnel` and the
line logs status 101 with `cD`; header names of the 101 are lower-cased; a 101 without
Sec-WebSocket-Accept gets 502 `PH`; a 200 answer to an upgrade stays plain HTTP.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import struct
import threading
import time

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from lb.http import h1
from tests.backends import WsBackend
from tests.lbproc import LbThread, RawBackend, raw_request

CFG = """
defaults
  mode http
  timeout client 600ms
  timeout server 600ms
  timeout connect 1s
  timeout tunnel 1500ms
frontend f
  bind 127.0.0.1:@@fe@@
  option http-server-close
  acl is_upgrade hdr(Connection) -i upgrade
  acl ws_allowed path_beg /ws
  http-request deny deny_status 403 if is_upgrade !ws_allowed
  http-response set-header X-Via-Lb yes
  use_backend ws if { hdr(Upgrade) -i websocket }
  default_backend ws
backend ws
  http-response add-header X-Upgraded %[status]
  server w1 127.0.0.1:@@w1@@
"""


@pytest.fixture(scope="module")
def env():  # type: ignore[no-untyped-def]
    with WsBackend("w1") as w1, LbThread(CFG, ports={"w1": w1.port}) as lb:
        lb.w1 = w1  # type: ignore[attr-defined]
        yield lb


def _url(lb, path: str = "/ws") -> str:  # type: ignore[no-untyped-def]
    return f"ws://127.0.0.1:{lb.ports['f']}{path}" if "f" in lb.ports else \
        f"ws://127.0.0.1:{lb.ports['fe']}{path}"


def _wait(pred, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.02)


def test_echo_text_binary_big_ping_close(env) -> None:  # type: ignore[no-untyped-def]
    lb = env
    fe = lb.state.frontends["f"].counters
    be = lb.state.backends["ws"].counters
    srv = lb.state.backends["ws"].servers[0].counters
    before_ok = fe.ws_upgrade_ok
    n = len(lb.txns)
    with connect(_url(lb), max_size=None, compression=None, open_timeout=5) as ws:
        # the 101 went through the response rules of both proxies
        assert ws.response.headers["x-via-lb"] == "yes"
        assert ws.response.headers["x-upgraded"] == "101"
        ws.send("hello")
        assert ws.recv(5) == "hello"
        ws.send(b"\x00\x01binary")
        assert ws.recv(5) == b"\x00\x01binary"
        big = os.urandom(1 << 20)
        ws.send(big)
        assert ws.recv(10) == big
        ws.ping(b"p").wait(5)
        # live counters while the tunnel is open
        assert fe.ws_tunnels_cur >= 1 and srv.ws_tunnels_cur >= 1
        assert fe.bin > len(big) and be.bout > len(big) and srv.bout > len(big)
        # kept alive past `timeout client`/`timeout server` (600ms) thanks to tunnel
        time.sleep(0.9)
        ws.send("still here")
        assert ws.recv(5) == "still here"
    t = lb.wait_txns(n + 1)[n]
    assert t.status == 101 and t.server_name == "w1"
    assert t.bytes_in > len(big) and t.bytes_out > len(big)
    assert t.t_active >= 900
    assert fe.ws_upgrade_ok == before_ok + 1
    assert be.ws_upgrade_ok >= 1 and srv.ws_upgrade_ok >= 1
    _wait(lambda: fe.ws_tunnels_cur == 0 and srv.ws_tunnels_cur == 0)
    assert sum(fe.ws_close.values()) >= 1
    assert fe.hrsp_1xx >= 1
    # http-server-close never strips what the upgrade needs
    hs = lb.w1.handshakes[-1]
    assert hs["connection"].lower() == "upgrade" and hs["upgrade"] == "websocket"


def test_idle_tunnel_closed_by_timeout_tunnel(env) -> None:  # type: ignore[no-untyped-def]
    lb = env
    fe = lb.state.frontends["f"].counters
    before = fe.ws_close["tunnel_timeout"]
    n = len(lb.txns)
    with connect(_url(lb), open_timeout=5) as ws:
        t0 = time.monotonic()
        with pytest.raises(ConnectionClosed):
            ws.recv(6)
        assert 1.2 < time.monotonic() - t0 < 5
    t = lb.wait_txns(n + 1)[n]
    assert (t.status, t.term) == (101, b"cD")
    assert fe.ws_close["tunnel_timeout"] == before + 1


def test_refused_upgrade_counted_denied(env) -> None:  # type: ignore[no-untyped-def]
    lb = env
    fe = lb.state.frontends["f"].counters
    before = fe.ws_fail["denied"]
    r = raw_request(lb.ports["fe"], b"GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                                    b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                                    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                    until_close=False)
    assert r.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert fe.ws_fail["denied"] == before + 1


def test_non_101_answer_stays_http(env) -> None:  # type: ignore[no-untyped-def]
    lb = env
    # WsBackend answers a GET without Connection: upgrade with 200; an upgrade
    # request with an unsupported version gets a non-101 from the websockets server.
    fe = lb.state.frontends["f"].counters
    before = fe.ws_fail["non_101"]
    r = raw_request(lb.ports["fe"], b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                                    b"Upgrade: websocket\r\nSec-WebSocket-Version: 99\r\n"
                                    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                    until_close=False)
    assert r.startswith(b"HTTP/1.1 426") or r.startswith(b"HTTP/1.1 400")
    assert fe.ws_fail["non_101"] == before + 1


def test_many_concurrent_websockets() -> None:
    cfg = CFG.replace("timeout tunnel 1500ms", "timeout tunnel 60s")
    with WsBackend("w1") as w1, LbThread(cfg, ports={"w1": w1.port}) as lb:
        _many(lb)


def _many(lb) -> None:  # type: ignore[no-untyped-def]
    n = 200
    errors: list[BaseException] = []
    stack = contextlib.ExitStack()
    conns = [stack.enter_context(connect(_url(lb), open_timeout=10)) for _ in range(n)]
    fe = lb.state.frontends["f"].counters
    assert fe.ws_tunnels_cur >= n

    def talk(i: int, ws) -> None:  # type: ignore[no-untyped-def]
        try:
            ws.send(f"m{i}")
            assert ws.recv(10) == f"m{i}"
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=talk, args=(i, ws)) for i, ws in enumerate(conns)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(20)
    stack.close()
    assert not errors
    _wait(lambda: fe.ws_tunnels_cur == 0, 10)
    assert fe.ws_tunnels_max >= n


# --------------------------------------------------------------------------- raw peers

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
HANDSHAKE = (b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
             b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + KEY + b"\r\n\r\n")


def _frame(payload: bytes, mask: bool) -> bytes:
    head = bytes([0x81, (0x80 if mask else 0) | len(payload)])
    if not mask:
        return head + payload
    m = b"\x01\x02\x03\x04"
    return head + m + bytes(b ^ m[i % 4] for i, b in enumerate(payload))


def _read_exact(s: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        d = s.recv(n - len(out))
        if not d:
            break
        out += d
    return out


def _raw_cfg() -> str:
    return """
defaults
  mode http
  timeout client 5s
  timeout server 5s
  timeout connect 1s
  timeout tunnel 5s
frontend f
  bind 127.0.0.1:@@fe@@
  default_backend b
backend b
  server s1 127.0.0.1:@@s1@@
"""


def test_frame_in_a_later_read_waits_for_the_101() -> None:
    """A handshake alone in its read is scanned (lb.http.headscan); the client's
    frame that follows in another read, before the server's 101, is held like
    httptools' upgrade tail and relayed after the 101, not parsed as a request."""
    def server(c: socket.socket, rb: RawBackend) -> None:
        head = rb.recv_head(c)
        time.sleep(0.3)  # the client's frame reaches lb first
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + h1.ws_accept(KEY)
                  + b"\r\n\r\n")
        want = _frame(b"early", True)
        rb.received.append(head.split(b"\r\n\r\n", 1)[1]
                           + _read_exact(c, len(want) - len(head.split(b"\r\n\r\n", 1)[1])))
        c.sendall(_frame(b"bye", False))
        time.sleep(0.3)
        c.close()

    with RawBackend(server) as rb, LbThread(_raw_cfg(), ports={"s1": rb.port}) as lb:
        with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=5) as c:
            c.sendall(HANDSHAKE)
            time.sleep(0.1)
            c.sendall(_frame(b"early", True))
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += c.recv(1000)
            head, _, rest = buf.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
            want = _frame(b"bye", False)
            assert rest + _read_exact(c, len(want) - len(rest)) == want
        assert rb.received[1] == _frame(b"early", True)


def test_both_tails_relayed_first_in_order() -> None:
    def server(c: socket.socket, rb: RawBackend) -> None:
        head = rb.recv_head(c)
        key = [ln.split(b":", 1)[1].strip() for ln in head.split(b"\r\n")
               if ln.lower().startswith(b"sec-websocket-key")][0]
        # 101 and a first server frame in the same packet
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + h1.ws_accept(key)
                  + b"\r\n\r\n" + _frame(b"server-early", False))
        # the client's early frame is held by the proxy until the 101, then sent first
        tail = head.split(b"\r\n\r\n", 1)[1]
        want = _frame(b"client-early", True)
        while len(tail) < len(want):
            tail += c.recv(len(want) - len(tail))
        rb.received.append(tail)
        want2 = _frame(b"second", True)
        rb.received.append(_read_exact(c, len(want2)))
        c.sendall(_frame(b"bye", False))
        time.sleep(0.3)
        c.close()

    with RawBackend(server) as rb, LbThread(_raw_cfg(), ports={"s1": rb.port}) as lb:
        with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=5) as c:
            c.sendall(HANDSHAKE + _frame(b"client-early", True))  # one packet
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += c.recv(1000)
            head, _, rest = buf.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
            assert b"\r\nsec-websocket-accept: " + h1.ws_accept(KEY) in head
            want = _frame(b"server-early", False)
            while len(rest) < len(want):
                rest += c.recv(100)
            assert rest[:len(want)] == want
            c.sendall(_frame(b"second", True))
            tail = rest[len(want):] + _read_exact(c, 5 - len(rest[len(want):]))
            assert tail == _frame(b"bye", False)
        # exactly once, in order, on the server side
        assert rb.received[1] == _frame(b"client-early", True)
        assert rb.received[2] == _frame(b"second", True)
        t = lb.wait_txns(1)[0]
        assert t.status == 101


def test_abrupt_server_kill_logs_SD() -> None:
    def server(c: socket.socket, rb: RawBackend) -> None:
        head = rb.recv_head(c)
        key = [ln.split(b":", 1)[1].strip() for ln in head.split(b"\r\n")
               if ln.lower().startswith(b"sec-websocket-key")][0]
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + h1.ws_accept(key)
                  + b"\r\n\r\n")
        c.recv(100)
        # killed: RST instead of FIN
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()

    with RawBackend(server) as rb, LbThread(_raw_cfg(), ports={"s1": rb.port}) as lb:
        with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=5) as c:
            c.sendall(HANDSHAKE)
            assert c.recv(1000).startswith(b"HTTP/1.1 101")
            c.sendall(_frame(b"x", True))
            try:
                end = c.recv(100)
            except ConnectionResetError:
                end = b""
            assert end == b""  # the client sees the connection end
        t = lb.wait_txns(1)[0]
        assert (t.status, t.term) == (101, b"SD")
        fe = lb.state.frontends["f"].counters
        _wait(lambda: fe.ws_close["server_closed"] == 1)


def test_bad_accept_502_and_missing_accept() -> None:
    def server(c: socket.socket, rb: RawBackend) -> None:
        rb.recv_head(c)
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                  + base64.b64encode(b"x" * 20) + b"\r\n\r\n")
        time.sleep(0.5)

    with RawBackend(server) as rb, LbThread(_raw_cfg(), ports={"s1": rb.port}) as lb:
        r = raw_request(lb.ports["fe"], HANDSHAKE, until_close=False)
        assert r.startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
        t = lb.wait_txns(1)[0]
        assert (t.status, t.term) == (502, b"PH")
        for c in (lb.state.frontends["f"].counters, lb.state.backends["b"].counters,
                  lb.state.backends["b"].servers[0].counters):
            assert c.ws_fail["bad_accept"] == 1
        assert lb.state.backends["b"].counters.eresp == 1


def test_half_close_is_propagated() -> None:
    def server(c: socket.socket, rb: RawBackend) -> None:
        head = rb.recv_head(c)
        key = [ln.split(b":", 1)[1].strip() for ln in head.split(b"\r\n")
               if ln.lower().startswith(b"sec-websocket-key")][0]
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + h1.ws_accept(key)
                  + b"\r\n\r\n")
        got = b""
        while True:
            d = c.recv(100)
            if not d:
                break
            got += d
        rb.received.append(got)
        # the client half-closed; we can still send
        c.sendall(_frame(b"after-fin", False))
        c.close()

    with RawBackend(server) as rb, LbThread(_raw_cfg(), ports={"s1": rb.port}) as lb:
        with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=5) as c:
            c.sendall(HANDSHAKE)
            assert c.recv(1000).startswith(b"HTTP/1.1 101")
            c.sendall(_frame(b"last", True))
            c.shutdown(socket.SHUT_WR)
            data = b""
            while True:
                d = c.recv(100)
                if not d:
                    break
                data += d
        assert data == _frame(b"after-fin", False)
        assert rb.received[-1] == _frame(b"last", True)
        assert lb.wait_txns(1)[0].term == b"--"


def test_kill_from_state_ends_tunnel_with_shutdown_reason() -> None:
    """`shutdown sessions server` / on-marked-down: ServerState.streams holds the
    exchange; kill(b"D") ends the tunnel, logs DD and counts reason `shutdown`."""
    with WsBackend("w1") as w1, LbThread(_raw_cfg(), ports={"s1": w1.port}) as lb:
        with connect(f"ws://127.0.0.1:{lb.ports['fe']}/", open_timeout=5) as ws:
            ws.send("x")
            assert ws.recv(5) == "x"
            srv = lb.state.backends["b"].servers[0]
            assert len(srv.streams) == 1 and len(lb.state.tunnels) == 1
            (stream,) = srv.streams
            lb.call(stream.kill, b"D")
            with pytest.raises(ConnectionClosed):
                ws.recv(5)
        t = lb.wait_txns(1)[0]
        assert (t.status, t.term) == (101, b"DD")
        assert srv.counters.ws_close["shutdown"] == 1
        assert not srv.streams and not lb.state.tunnels and srv.cur_conns == 0


def test_refused_upgrade_keeps_connection_http() -> None:
    """A 200 to an upgrade is a normal response: the same client connection then
    carries a plain request (checked against HAProxy 2.6.12: keep-alive stays)."""
    def server(c: socket.socket, rb: RawBackend) -> None:
        c.settimeout(5)
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            head, _, buf = buf.partition(b"\r\n\r\n")
            rb.received.append(head)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    with RawBackend(server) as rb, LbThread(_raw_cfg(), ports={"s1": rb.port}) as lb:
        with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=5) as c:
            c.sendall(HANDSHAKE)
            r = b""
            while not r.endswith(b"ok"):
                r += c.recv(1000)
            assert r.startswith(b"HTTP/1.1 200 OK\r\n")
            c.sendall(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
            r = b""
            while not r.endswith(b"ok"):
                r += c.recv(1000)
            assert r.startswith(b"HTTP/1.1 200 OK\r\n")
        assert rb.received[-1].startswith(b"GET /next HTTP/1.1\r\n")
        ts = lb.wait_txns(2)
        assert [t.status for t in ts] == [200, 200]
        assert lb.state.frontends["f"].counters.ws_fail["non_101"] == 1


def test_server_fin_timeout_after_client_half_close() -> None:
    """The client's FIN leaves the server's side to time out (server-fin, sD), as in
    HAProxy (tests/test_half_close.py compares the cases); counted by reason."""
    def server(c: socket.socket, rb: RawBackend) -> None:
        head = rb.recv_head(c)
        key = [ln.split(b":", 1)[1].strip() for ln in head.split(b"\r\n")
               if ln.lower().startswith(b"sec-websocket-key")][0]
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + h1.ws_accept(key)
                  + b"\r\n\r\n")
        c.settimeout(10)
        try:
            while c.recv(100):
                pass  # the client's FIN arrives; we never close our side
            time.sleep(5)
        except OSError:
            pass

    cfg = _raw_cfg().replace("timeout tunnel 5s", "timeout tunnel 10s\n  timeout server-fin 400ms")
    with RawBackend(server) as rb, LbThread(cfg, ports={"s1": rb.port}) as lb:
        with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=5) as c:
            c.sendall(HANDSHAKE)
            assert c.recv(1000).startswith(b"HTTP/1.1 101")
            t0 = time.monotonic()
            c.shutdown(socket.SHUT_WR)
            assert c.recv(100) == b""
            assert 0.3 < time.monotonic() - t0 < 5
        t = lb.wait_txns(1)[0]
        assert (t.status, t.term) == (101, b"sD")
        _wait(lambda: lb.state.frontends["f"].counters.ws_close["server_fin"] == 1)


@pytest.mark.parametrize("headers", [
    b"Connection: Upgrade\r\n",  # HAProxy 2.6.12 relays this one (docs/websocket.md)
    b"Upgrade: websocket\r\n",  # HAProxy: 502 too
    b"",  # HAProxy: 502 too
], ids=["no-upgrade", "no-connection", "neither"])
def test_101_without_its_upgrade_headers_is_a_502(headers: bytes) -> None:
    def server(c: socket.socket, rb: RawBackend) -> None:
        head = rb.recv_head(c)
        key = [ln.split(b":", 1)[1].strip() for ln in head.split(b"\r\n")
               if ln.lower().startswith(b"sec-websocket-key")][0]
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\n" + headers
                  + b"Sec-WebSocket-Accept: " + h1.ws_accept(key) + b"\r\n\r\n")
        time.sleep(0.5)

    with RawBackend(server) as rb, LbThread(_raw_cfg(), ports={"s1": rb.port}) as lb:
        r = raw_request(lb.ports["fe"], HANDSHAKE, until_close=False)
        assert r.startswith(b"HTTP/1.1 502 Bad Gateway\r\n"), r[:80]
        t = lb.wait_txns(1)[0]
        assert (t.status, t.term) == (502, b"PH")
        assert lb.state.backends["b"].counters.eresp == 1
        assert lb.state.frontends["f"].counters.ws_tunnels_tot == 0
        assert lb.state.frontends["f"].counters.ws_fail["bad_accept"] == 1
