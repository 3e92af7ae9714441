"""`lb -d` prints HAProxy 2.6's debug trace of the traffic on stdout: accept, request
line and headers, response line and headers, closes. Checked against a real backend
and a real WebSocket server through a running `python -m lb`."""

from __future__ import annotations

import asyncio
import http.client
import re

import websockets

from tests.backends import HttpBackend, WsBackend
from tests.lbproc import LbProcess

CFG = """defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
    timeout tunnel 5s

frontend fe
    bind 127.0.0.1:@@fe@@
    use_backend ws if { hdr(upgrade) -i websocket }
    default_backend be

backend be
    server s1 127.0.0.1:@@s1@@

backend ws
    server w1 127.0.0.1:@@w1@@
"""

ID_FDS = r"[0-9a-f]{8}:(fe|be|ws)\.\w+\[[0-9a-f]{4}:[0-9a-f]{4,8}\]"


def _trace(lb: LbProcess) -> list[str]:
    return [line for line in lb.lines() if re.match(r"[0-9a-f]{8}:", line)]


def _wait(lb: LbProcess, pattern: str) -> None:
    lb.wait_for_line(pattern, timeout=5)


def test_http_exchange_is_traced_in_haproxy_format() -> None:
    with HttpBackend("s1") as s1, WsBackend("w1") as w1, \
            LbProcess(CFG, ports={"s1": s1.port, "w1": w1.port}, args=("-d",)) as lb:
        conn = http.client.HTTPConnection("127.0.0.1", lb.ports["fe"], timeout=5)
        conn.request("GET", "/x?y=1", headers={"X-Trace-Me": "yes"})
        r = conn.getresponse()
        assert r.status == 200 and r.read() == b"s1"
        conn.close()
        _wait(lb, ":be.closed[")
        # (the start-up probe's connection comes first: take the request's stream)
        sid = next(x for x in _trace(lb) if ":fe.clireq[" in x)[:8]
        lines = [x for x in _trace(lb) if x.startswith(sid)]
        accept = lines[0]
        assert re.fullmatch(r"(?P<id>[0-9a-f]{8}):fe\.accept\([0-9a-f]{4,8}\)=[0-9a-f]{4} "
                            r"from \[127\.0\.0\.1:\d+\] ALPN=<none>", accept), accept
        body = [re.sub(r"\[[0-9a-f]{4}:[0-9a-f]{4,8}\]", "[fds]", line)
                for line in lines[1:]]
        assert body[0] == f"{sid}:fe.clireq[fds]: GET /x?y=1 HTTP/1.1", body
        assert f"{sid}:fe.clihdr[fds]: x-trace-me: yes" in body
        # (the test backend's reason phrase is "X")
        rep = body.index(f"{sid}:be.srvrep[fds]: HTTP/1.1 200 X")
        assert all(b.startswith(f"{sid}:fe.clihdr[fds]: ") for b in body[1:rep])
        assert f"{sid}:be.srvhdr[fds]: x-server: s1" in body
        assert body[-1] == f"{sid}:be.closed[fds]"
        assert all(re.match(ID_FDS, line) for line in lines[1:]), lines
        # a server descriptor once the request went out, none before
        assert "ffffffff]" in lines[1] and "ffffffff]" not in lines[1 + rep]


def test_websocket_upgrade_is_traced() -> None:
    with HttpBackend("s1") as s1, WsBackend("w1") as w1, \
            LbProcess(CFG, ports={"s1": s1.port, "w1": w1.port}, args=("-d",)) as lb:
        async def talk() -> None:
            async with websockets.connect(f"ws://127.0.0.1:{lb.ports['fe']}/chat") as ws:
                await ws.send("hi")
                assert await ws.recv() == "hi"

        asyncio.run(talk())
        _wait(lb, ":ws.closed[")
        lines = _trace(lb)
        assert any(re.fullmatch(r"[0-9a-f]{8}:ws\.srvrep\[[0-9a-f]{4}:[0-9a-f]{4}\]: "
                                r"HTTP/1\.1 101 Switching Protocols", x) for x in lines), lines
        assert any(x.endswith(": upgrade: websocket") and ":fe.clihdr[" in x for x in lines)


def test_no_trace_without_d() -> None:
    with HttpBackend("s1") as s1, WsBackend("w1") as w1, \
            LbProcess(CFG, ports={"s1": s1.port, "w1": w1.port}) as lb:
        conn = http.client.HTTPConnection("127.0.0.1", lb.ports["fe"], timeout=5)
        conn.request("GET", "/")
        assert conn.getresponse().read() == b"s1"
        conn.close()
        assert _trace(lb) == []
