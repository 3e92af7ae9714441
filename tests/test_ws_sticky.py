"""conf/ws-sticky.cfg end to end: routing by Upgrade, a header added to the 101, the
per-route refusal counted as `denied`, `timeout tunnel` in force."""

from __future__ import annotations

import os

from websockets.sync.client import connect

from tests.backends import HttpBackend, WsBackend
from tests.lbproc import ROOT, LbThread, raw_request
from tests.test_seeds_e2e import rewrite


def test_ws_sticky_config() -> None:
    with open(os.path.join(ROOT, "conf", "ws-sticky.cfg")) as f:
        text, servers = rewrite(f.read())
    assert servers == ["bk_ws_ws1", "bk_ws_ws2", "bk_web_web1"]
    with WsBackend("ws1") as w1, WsBackend("ws2") as w2, HttpBackend("web1") as web, \
            LbThread(text, ports={"bk_ws_ws1": w1.port, "bk_ws_ws2": w2.port,
                                  "bk_web_web1": web.port}) as lb:
        p = lb.ports["bind1"]
        seen = set()
        for _ in range(2):
            with connect(f"ws://127.0.0.1:{p}/ws/chat", open_timeout=5) as ws:
                name = ws.response.headers["x-ws-server"]
                ws.send("whoami")
                assert ws.recv(5) == name
                seen.add(name)
        assert seen == {"ws1", "ws2"}
        r = raw_request(p, b"GET /page HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert r.endswith(b"web1") and b"x-ws-server" not in r
        r = raw_request(p, b"GET /other HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                           b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                        until_close=False)
        assert r.startswith(b"HTTP/1.1 403 Forbidden")
        fe = lb.state.frontends["ft_ws"].counters
        assert fe.ws_fail["denied"] == 1 and fe.ws_upgrade_ok == 2
        assert lb.rt.backends["bk_ws"].t_tunnel == 3600.0
