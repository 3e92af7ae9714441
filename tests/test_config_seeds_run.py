"""The seed configuration 002 "advanced" really runs, with its blog artefacts recovered.

Every 192.168.x address is rewritten to a loopback backend first, so no packet leaves
127.0.0.1. The run goes through `python -m lb -f <file> -db` (LbProcess), i.e. the
validator's loader, the command line and the data plane together. What is checked is
what the recovered config means: the wrapped `http-request deny` line (joined back to
`hdr_websocket_key`), the Host / Upgrade switching rules and the protocol check.
"""

import asyncio
import os

from tests.backends import HttpBackend, WsBackend
from tests.lbproc import LbProcess, raw_request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def seed_on_loopback(web1: int, web2: int, ws1: int, ws2: int) -> str:
    with open(os.path.join(ROOT, "conf", "seed-002-advanced.cfg")) as fh:
        text = fh.read()
    text = text.replace("bind 192.168.10.3:80", "bind 127.0.0.1:@@fe@@")
    text = text.replace("192.168.10.11:8080", f"127.0.0.1:{ws1}")
    text = text.replace("192.168.10.12:8080", f"127.0.0.1:{ws2}")
    text = text.replace("192.168.10.11:80", f"127.0.0.1:{web1}")
    text = text.replace("192.168.10.12:80", f"127.0.0.1:{web2}")
    assert "192.168." not in text
    return text


def status(resp: bytes) -> int:
    return int(resp.split(b" ", 2)[1]) if resp.startswith(b"HTTP/1.1 ") else 0


def test_seed_002_advanced_routes_and_denies():
    with HttpBackend("web1") as w1, HttpBackend("web2") as w2, \
            WsBackend("ws1", subprotocols=["echo-protocol"]) as s1, \
            WsBackend("ws2", subprotocols=["echo-protocol"]) as s2, \
            LbProcess(seed_on_loopback(w1.port, w2.port, s1.port, s2.port)) as lb:
        try:
            _exercise(lb.ports["fe"], s1, s2)
        except (AssertionError, OSError) as exc:  # show what lb said
            raise AssertionError("lb output:\n" + "\n".join(lb.lines()[-20:])) from exc


def _exercise(port: int, s1: WsBackend, s2: WsBackend) -> None:
    # plain HTTP -> bk_web (round robin over the two web servers)
    seen = set()
    for _ in range(2):
        resp = raw_request(port, b"GET / HTTP/1.1\r\nHost: www.example.com\r\n"
                                 b"Connection: close\r\n\r\n")
        assert status(resp) == 200, resp
        seen.add(resp.rsplit(b"\r\n\r\n", 1)[1])
    assert seen == {b"web1", b"web2"}
    # Host ws.* without the upgrade headers -> bk_ws, whose (joined) deny rule fires
    resp = raw_request(port, b"GET / HTTP/1.1\r\nHost: ws.example.com\r\n"
                             b"Connection: close\r\n\r\n")
    assert status(resp) == 403, resp
    assert not s1.handshakes and not s2.handshakes
    # a real WebSocket with the application protocol -> bk_ws, echoed
    from websockets.asyncio.client import connect

    async def chat() -> tuple[str, str | None]:
        async with connect(f"ws://127.0.0.1:{port}/",
                           subprotocols=["echo-protocol"]) as ws:
            await ws.send("whoami")
            return str(await asyncio.wait_for(ws.recv(), 5)), ws.subprotocol

    name, proto = asyncio.run(chat())
    assert name in ("ws1", "ws2") and proto == "echo-protocol"
    # the wrong application protocol is refused by `deny if ! ws_valid_protocol`
    req = (b"GET / HTTP/1.1\r\nHost: ws.example.com\r\nConnection: Upgrade\r\n"
           b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           b"Sec-WebSocket-Protocol: chat\r\n\r\n")
    assert status(raw_request(port, req)) == 403


def seed_003_on_loopback(name: str, www: int, ws: int) -> str:
    with open(os.path.join(ROOT, "conf", name)) as fh:
        text = fh.read()
    # loopback only, no chroot/daemon/uid changes for a test run
    for line in ("chroot /usr/share/haproxy\n", "uid 99\n", "gid 99\n", "daemon\n"):
        text = text.replace(line, "")
    text = text.replace("bind *:80", "bind 127.0.0.1:@@fe@@")
    text = text.replace("127.0.0.1:8080", f"127.0.0.1:{www}")
    text = text.replace("127.0.0.1:8000", f"127.0.0.1:{ws}")
    return text


def test_seed_003_upgrade_detection_routes_websockets():
    with HttpBackend("www1") as www, WsBackend("ws1") as ws, \
            LbProcess(seed_003_on_loopback("seed-003-upgrade.cfg", www.port, ws.port)) as lb:
        port = lb.ports["fe"]
        try:
            resp = raw_request(port, b"GET / HTTP/1.1\r\nHost: ws.example.com\r\n"
                                     b"Connection: close\r\n\r\n")
            assert status(resp) == 200 and resp.endswith(b"www1")  # no Upgrade: www
            from websockets.asyncio.client import connect

            async def chat() -> str:
                # Host: ws.example.com (no port, as the seed's ACL expects), TCP to lb
                async with connect("ws://ws.example.com/", host="127.0.0.1", port=port) as c:
                    await c.send("whoami")
                    return str(await asyncio.wait_for(c.recv(), 5))

            assert asyncio.run(chat()) == "ws1"
        except (AssertionError, OSError) as exc:
            raise AssertionError("lb output:\n" + "\n".join(lb.lines()[-20:])) from exc
