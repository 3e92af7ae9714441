"""Every seed configuration in conf/ (articles 002 and 003) routes as its article says.

Each file is loaded as written after rewriting addresses only: `bind` lines to
127.0.0.1 ephemeral ports, `server` lines to local WebSocket-capable backends (a
`WsBackend` per server, which also answers plain GETs with its name), and `log`
addresses to an unused loopback UDP port. A real WebSocket session runs through each.
"""

from __future__ import annotations

import os
import re
import socket

import pytest
from websockets.sync.client import connect

from tests.backends import WsBackend
from tests.lbproc import ROOT, LbThread, raw_request

CONF = os.path.join(ROOT, "conf")


def rewrite(text: str) -> tuple[str, list[str]]:
    """Addresses → placeholders; returns the text and the server placeholder names."""
    out = []
    servers: list[str] = []
    section = ""
    nbind = 0
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            out.append(line)
            continue
        kw = words[0]
        if kw in ("frontend", "backend", "listen", "defaults", "global"):
            section = words[1] if len(words) > 1 else kw
        if kw == "bind" and len(words) > 1:
            nbind += 1
            words[1] = f"127.0.0.1:@@bind{nbind}@@"
            line = " ".join(words)
        elif kw == "server" and len(words) > 2:
            name = re.sub(r"\W", "_", f"{section}_{words[1]}")
            servers.append(name)
            words[2] = f"127.0.0.1:@@{name}@@"
            line = " ".join(words)
        elif kw == "log" and len(words) > 1 and words[1] not in ("global", "stdout", "stderr"):
            words[1] = "127.0.0.1:@@logudp@@"
            line = " ".join(words)
        out.append(line)
    return "\n".join(out) + "\n", servers


def _run(name: str, subprotocols: list[str] | None = None):  # type: ignore[no-untyped-def]
    with open(os.path.join(CONF, name)) as f:
        text, servers = rewrite(f.read())
    backends = {s: WsBackend(s, subprotocols=subprotocols).start() for s in servers}
    lb = LbThread(text, ports={s: b.port for s, b in backends.items()}).start()
    return lb, backends


def _stop(lb, backends) -> None:  # type: ignore[no-untyped-def]
    lb.stop()
    for b in backends.values():
        b.stop()


def _http_server(port: int, host: str, path: str = "/", extra: bytes = b"") -> str:
    r = raw_request(port, b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " + host.encode()
                    + b"\r\n" + extra + b"Connection: close\r\n\r\n")
    assert r.startswith(b"HTTP/1.1 200"), r[:200]
    return r.rsplit(b"\r\n\r\n", 1)[1].decode()


def _ws_server(port: int, host: str, path: str = "/",
               subprotocols: list[str] | None = None) -> str:
    # the URI carries the Host header; the socket goes to lb
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    with connect(f"ws://{host}{path}", sock=sock,
                 subprotocols=subprotocols, open_timeout=5) as ws:  # type: ignore[arg-type]
        ws.send("hello")
        assert ws.recv(5) == "hello"
        ws.send("whoami")
        return str(ws.recv(5))


def test_seed_002_simple_everything_to_bk_web() -> None:
    lb, bks = _run("seed-002-simple.cfg")
    try:
        p = lb.ports["bind1"]
        assert _http_server(p, "www.example.com").startswith("bk_web_websrv")
        assert _ws_server(p, "www.example.com").startswith("bk_web_websrv")
        # option forwardfor + http-server-close reached the server
        hs = [h for b in bks.values() for h in b.handshakes]
        assert hs and all(h.get("x-forwarded-for") == "127.0.0.1" for h in hs)
    finally:
        _stop(lb, bks)


def test_seed_002_advanced_routes_by_host_and_upgrade_and_validates() -> None:
    lb, bks = _run("seed-002-advanced.cfg", subprotocols=["echo-protocol"])
    try:
        p = lb.ports["bind1"]
        assert _http_server(p, "www.example.com").startswith("bk_web_")
        # Upgrade + Connection headers → bk_ws (with the application protocol)
        assert _ws_server(p, "www.example.com", subprotocols=["echo-protocol"]) \
            .startswith("bk_ws_")
        # Host ws.* → bk_ws
        assert _ws_server(p, "ws.example.com", subprotocols=["echo-protocol"]) \
            .startswith("bk_ws_")
        # bk_ws refuses an unknown application protocol (http-request deny → 403)
        r = raw_request(p, b"GET / HTTP/1.1\r\nHost: ws.example.com\r\nConnection: Upgrade\r\n"
                           b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                           b"Sec-WebSocket-Protocol: chat\r\n\r\n", until_close=False)
        assert r.startswith(b"HTTP/1.1 403 Forbidden")
        fe = lb.state.frontends["ft_web"].counters
        assert fe.ws_fail["denied"] == 1 and fe.ws_upgrade_ok == 2
    finally:
        _stop(lb, bks)


@pytest.mark.parametrize("cfg,ws_host,ws_path", [
    ("seed-003-subdomain.cfg", "ws.example.com", "/"),
    ("seed-003-upgrade.cfg", "ws.example.com", "/"),
    ("seed-003-uri.cfg", "www.example.com", "/websockets/chat"),
])
def test_seed_003(cfg: str, ws_host: str, ws_path: str) -> None:
    lb, bks = _run(cfg)
    try:
        p = lb.ports["bind1"]
        assert _http_server(p, "www.example.com") == "www_www1"
        if cfg == "seed-003-upgrade.cfg":
            # the article's example 3 needs both the Upgrade header and the ws. host
            assert _http_server(p, "ws.example.com") == "www_www1"
        assert _ws_server(p, ws_host, ws_path) == "ws_ws1"
        be = lb.state.backends["ws"].counters
        assert be.ws_upgrade_ok == 1
    finally:
        _stop(lb, bks)
