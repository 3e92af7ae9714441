"""Health checks from configuration text, and their effect on live traffic through lb."""

from __future__ import annotations

import asyncio
import re

from healthcheck.runner import program_for
from healthcheck.steps import HttpSend, RunContext
from lb.config import load_text
from lb.config.model import Config
from lb.proxy import runner
from lb.state import OP_RUNNING, OP_STOPPED, State
from tests.backends import HttpBackend, WsBackend
from tests.healthcheck_support import (
    LogSink,
    RawServer,
    checker_service,
    checking,
    free_port,
    header,
    wait_for,
)

# verbatim from seed 002_3f84435e675188f7.txt (line 192), including the two `\r\n`
# whose backslashes the blog lost (`rn`), which the config layer recovers
SEED_LINE = ("option httpchk GET / HTTP/1.1rnHost:\\ ws.domain.comrnConnection:\\ Upgrade"
             "\\r\\nUpgrade:\\ websocket\\r\\nSec-WebSocket-Key:\\ haproxy\\r\\n"
             "Sec-WebSocket-Version:\\ 13\\r\\nSec-WebSocket-Protocol:\\ echo-protocol")


def seed_config(port: int, fe_port: int | None = None) -> Config:
    """The advanced backend of seed 002 (its check lines verbatim), on loopback."""
    text = f"""
global
    node testnode
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout check 1s
    default-server inter 100 rise 2 fall 3
frontend ft_web
    bind 127.0.0.1:{fe_port or free_port()}
    default_backend bk_ws
backend bk_ws
    balance roundrobin
    {SEED_LINE}
    http-check expect status 101
    server websrv1 127.0.0.1:{port} maxconn 30000 weight 10 cookie websrv1 check
"""
    res = load_text(text)
    assert res.ok, res.diagnostics
    texts = [d.text for d in res.diagnostics]
    assert any("hiding headers or body at the end of the version string is deprecated" in t
               for t in texts)
    assert res.config is not None
    return res.config


def test_seed_check_request_bytes() -> None:
    cfg = seed_config(9)
    prog = program_for(cfg.backend("bk_ws"))  # type: ignore[arg-type]
    send = next(s for s in prog.steps if isinstance(s, HttpSend))
    req = send.render(RunContext(key_factory=lambda: b"dGhlIHNhbXBsZSBub25jZQ=="))
    assert req == (b"GET / HTTP/1.1\r\nhost: ws.domain.com\r\nconnection: Upgrade\r\n"
                   b"upgrade: websocket\r\nsec-websocket-version: 13\r\n"
                   b"sec-websocket-protocol: echo-protocol\r\n"
                   b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")


async def _run_seed(port: int, seconds: float) -> tuple[State, LogSink]:
    st = State(seed_config(port))
    log = LogSink()
    async with checking(st, log):
        await asyncio.sleep(seconds)
    return st, log


def test_seed_check_real_websocket_server_stays_up() -> None:
    with WsBackend("w1") as w:
        st, log = asyncio.run(_run_seed(w.port, 0.6))
        handshakes = list(w.handshakes)
    srv = st.backends["bk_ws"].servers[0]
    assert srv.op == OP_RUNNING and srv.health == 4
    assert (srv.check_status, srv.check_code) == ("L7OK", 101)
    assert log.lines == []
    assert len(handshakes) >= 3
    keys = {h["sec-websocket-key"] for h in handshakes}
    assert len(keys) == len(handshakes)  # a fresh key for every check


def _answers() -> dict[str, bytes]:
    return {
        "200": b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
        "400": b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n",
        "bad_accept": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
                      b"\r\n\r\n",
    }


def test_seed_check_fooling_servers_go_down_with_reason() -> None:
    async def go() -> dict[str, tuple[State, LogSink]]:
        out = {}
        for name, answer in _answers().items():
            s = await RawServer(lambda r, a=answer: a).start()
            try:
                out[name] = await _run_seed(s.port, 0.3)
            finally:
                await s.stop()
        return out

    res = asyncio.run(go())
    tail = (r", check duration: \d+ms\. 0 active and 0 backup servers left\. 0 sessions "
            r"active, 0 requeued, 0 remaining in queue\.")
    expected = {
        "200": r'reason: Layer7 wrong status, code: 200, info: "OK"',
        "400": r'reason: Layer7 wrong status, code: 400, info: "Bad Request"',
        "bad_accept": r'reason: Layer7 invalid response, info: "WebSocket handshake: wrong '
                      r'Sec-WebSocket-Accept"',
    }
    for name, (st, log) in res.items():
        srv = st.backends["bk_ws"].servers[0]
        assert srv.op == OP_STOPPED, name
        assert re.fullmatch(r"Server bk_ws/websrv1 is DOWN, " + expected[name] + tail,
                            log.lines[0][2]), (name, log.lines[0])
        assert log.lines[0][1] == "alert"
        assert log.lines[1] == ("bk_ws", "emerg", "backend bk_ws has no server available!")


# --------------------------------------------------------------------------- with the proxy


async def _get(port: int) -> tuple[int, bytes]:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = await asyncio.wait_for(r.read(), 5)
    w.close()
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1]


def test_down_server_no_longer_receives_traffic() -> None:
    async def go() -> None:
        s1 = HttpBackend("s1", port=free_port()).start()  # (bound again below)
        s2 = HttpBackend("s2").start()
        p1 = s1.port
        fe = free_port()
        res = load_text(f"""
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout check 1s
frontend f
    bind 127.0.0.1:{fe}
    default_backend b
backend b
    option httpchk GET /health
    server s1 127.0.0.1:{p1} check inter 100 rise 2 fall 2
    server s2 127.0.0.1:{s2.port} check inter 100 rise 2 fall 2
""")
        assert res.ok and res.config is not None, res.diagnostics
        log = LogSink()

        rt = await runner.start(res.config, services=[checker_service(log)])
        a, b = rt.state.backends["b"].servers
        try:
            await wait_for(lambda: a.check_status == "L7OK" and b.check_status == "L7OK")
            bodies = {(await _get(fe))[1] for _ in range(4)}
            assert bodies == {b"s1", b"s2"}
            s1.stop()
            await wait_for(lambda: a.op == OP_STOPPED, timeout=5)
            got = [await _get(fe) for _ in range(6)]
            assert got == [(200, b"s2")] * 6
            s2.stop()
            await wait_for(lambda: b.op == OP_STOPPED, timeout=5)
            status, _ = await _get(fe)
            assert status == 503
            assert ("b", "emerg", "backend b has no server available!") in log.lines
            s1b = HttpBackend("s1", port=p1).start()
            await wait_for(lambda: a.op == OP_RUNNING, timeout=5)
            assert await _get(fe) == (200, b"s1")
            s1b.stop()
            ups = log.find("Server b/s1 is UP")
            assert ups and ups[0][2].startswith(
                "Server b/s1 is UP, reason: Layer7 check passed, code: 200, check duration: ")
            assert s1b.requests and s1b.requests[0].path == "/health"
        finally:
            await rt.stop()

    asyncio.run(go())


def test_ws_check_requests_carry_valid_keys_end_to_end() -> None:
    # the seed's check against a raw server that records what the check sent
    async def go() -> list[bytes]:
        s = await RawServer(lambda r: b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n"
                                      b"\r\n").start()
        try:
            await _run_seed(s.port, 0.25)
        finally:
            await s.stop()
        return s.requests

    reqs = asyncio.run(go())
    assert reqs
    for req in reqs:
        assert header(req, b"sec-websocket-key") not in (None, b"haproxy")
        assert header(req, b"host") == b"ws.domain.com"


def test_event_log_sink_sends_syslog_and_mirrors_stderr(capfd) -> None:  # type: ignore[no-untyped-def]
    import socket as so

    from healthcheck import event_log_sink

    rx = so.socket(so.AF_INET, so.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(5)
    lport = rx.getsockname()[1]
    res = load_text(f"""
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
backend b
    log 127.0.0.1:{lport} local0
    server s1 127.0.0.1:{free_port()} check inter 100
""")
    assert res.ok and res.config is not None, res.diagnostics
    st = State(res.config)

    async def go() -> None:
        async with checking(st, event_log_sink(st)):
            await wait_for(lambda: st.backends["b"].servers[0].op == OP_STOPPED)
            await asyncio.sleep(0.05)

    asyncio.run(go())
    got = [rx.recv(2048), rx.recv(2048)]
    rx.close()
    # local0 (16) * 8 + alert (1) = <129>; emerg = <128>
    assert got[0].startswith(b"<129>") and b"Server b/s1 is DOWN, reason: Layer4 connection " \
        b"problem, info: \"Connection refused\"" in got[0]
    assert got[1].startswith(b"<128>") and got[1].rstrip(b"\n").endswith(
        b"backend b has no server available!")
    err = capfd.readouterr().err
    assert re.search(r"\[WARNING\]  \(\d+\) : Server b/s1 is DOWN, reason: Layer4 connection "
                     r"problem", err), err
    assert re.search(r"\[ALERT\]    \(\d+\) : backend 'b' has no server available!", err), err


def test_shutdown_sessions_closes_live_websocket_tunnels() -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    async def go() -> None:
        ws_srv = WsBackend("w1").start()
        health = HttpBackend("health").start()  # `port` sends the checks here
        fe = free_port()
        res = load_text(f"""
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout tunnel 30s
    timeout check 1s
frontend f
    bind 127.0.0.1:{fe}
    default_backend b
backend b
    option httpchk GET /health
    server w1 127.0.0.1:{ws_srv.port} check port {health.port} inter 100 fall 1 on-marked-down shutdown-sessions
""")
        assert res.ok and res.config is not None, res.diagnostics
        log = LogSink()

        rt = await runner.start(res.config, services=[checker_service(log)])
        terms: list[bytes] = []
        rt.txn_hook = lambda txn: terms.append(bytes(txn.term))
        srv = rt.state.backends["b"].servers[0]
        try:
            await wait_for(lambda: srv.check_status == "L7OK")
            async with connect(f"ws://127.0.0.1:{fe}/") as ws:
                await ws.send("whoami")
                assert await asyncio.wait_for(ws.recv(), 5) == "w1"
                assert srv.streams  # the tunnel is counted on the server
                health.stop()
                await wait_for(lambda: srv.op == OP_STOPPED, timeout=5)
                closed = False
                try:
                    await asyncio.wait_for(ws.recv(), 5)
                except ConnectionClosed:
                    closed = True
                assert closed
            assert not srv.streams and srv.cur_conns == 0
            assert log.find("Server b/w1 is DOWN")
            # the tunnel is logged as ended by the server going down (`D` first)
            assert terms and terms[-1][:1] == b"D", terms
        finally:
            await rt.stop()
            ws_srv.stop()

    asyncio.run(go())
