"""The stats socket, page and exporter of a real `python -m lb` process carrying real
HTTP and WebSocket traffic: counters after traffic, tunnel bytes counted while the
tunnel is open, a drain through the socket followed by traffic that shows it."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import tempfile
import time
from collections.abc import Iterator

import pytest
import websockets

from tests.backends import HttpBackend, WsBackend
from tests.lbproc import LbProcess
from tests.stats_support import query

CFG = """global
    stats socket {sock} mode 600 level admin
    stats timeout 5s

defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    timeout tunnel 30s

frontend fe
    bind 127.0.0.1:@@fe@@
    stats enable
    stats uri /lbstats
    stats refresh 5s
    stats admin if LOCALHOST
    http-request use-service prometheus-exporter if {{ path /metrics }}
    use_backend wsb if {{ hdr(upgrade) -i websocket }}
    use_backend bd if {{ path_beg /bd }}
    default_backend be

backend be
    server s1 127.0.0.1:@@s1@@
    server s2 127.0.0.1:@@s2@@

backend wsb
    server w1 127.0.0.1:@@w1@@

backend bd
    server d1 127.0.0.1:@@s1@@
    server d2 127.0.0.1:@@s2@@ disabled
"""


class Env:
    def __init__(self, lb: LbProcess, sock: str) -> None:
        self.lb = lb
        self.sock = sock
        self.port = lb.ports["fe"]

    def q(self, cmd: str) -> str:
        return query(self.sock, cmd)

    def rows(self) -> dict[tuple[str, str], dict[str, str]]:
        lines = self.q("show stat").splitlines()
        names = lines[0][2:].rstrip(",").split(",")
        out = {}
        for line in lines[1:]:
            if line:
                vals = line.rstrip(",").split(",")
                out[(vals[0], vals[1])] = dict(zip(names, vals, strict=False))
        return out

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    d = tempfile.mkdtemp(prefix="lbstats")
    sock = os.path.join(d, "lb.sock")
    with HttpBackend("s1") as s1, HttpBackend("s2") as s2, WsBackend("w1") as w1, \
            LbProcess(CFG.format(sock=sock), ports={"s1": s1.port, "s2": s2.port,
                                                   "w1": w1.port}) as lb:
        deadline = time.monotonic() + 10
        while not os.path.exists(sock) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.path.exists(sock), "\n".join(lb.lines())
        yield Env(lb, sock)


def test_http_counters_after_traffic(env: Env) -> None:
    env.q("clear counters all")
    for _ in range(6):
        status, _h, _b = env.get("/x")
        assert status == 200
    status, _h, _b = env.get("/x")
    deadline = time.monotonic() + 5
    while True:
        rows = env.rows()
        if int(rows[("fe", "FRONTEND")]["hrsp_2xx"]) >= 7 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    fe, be = rows[("fe", "FRONTEND")], rows[("be", "BACKEND")]
    s1, s2 = rows[("be", "s1")], rows[("be", "s2")]
    assert int(fe["req_tot"]) >= 7 and int(fe["hrsp_2xx"]) >= 7
    assert int(be["hrsp_2xx"]) == 7 and int(be["stot"]) == 7
    assert int(s1["hrsp_2xx"]) + int(s2["hrsp_2xx"]) == 7
    assert int(s1["lbtot"]) >= 3 and int(s2["lbtot"]) >= 3  # round robin spread them
    assert int(fe["bin"]) > 0 and int(fe["bout"]) > 0 and int(s1["bout"]) > 0
    assert s1["status"] == "no check" and be["status"] == "UP"
    assert env.lb.proc is not None and env.lb.proc.poll() is None


def test_drain_through_socket_then_traffic(env: Env) -> None:
    def servers(n: int) -> list[str]:
        return [env.get("/d")[1].get("x-server", "?") for _ in range(n)]

    assert set(servers(4)) == {"s1", "s2"}
    assert env.q("set server be/s1 state drain") == "\n"
    assert env.rows()[("be", "s1")]["status"] == "DRAIN"
    line = env.lb.wait_for_line("Server be/s1 enters drain state.", timeout=5)
    assert "1 active and 0 backup servers online." in line
    assert servers(6) == ["s2"] * 6
    assert env.q("disable server be/s2") == "\n"  # s1 drained, s2 in maintenance
    status, _h, _b = env.get("/d")
    assert status == 503
    assert env.q("set server be/s1 state ready; enable server be/s2") == "\n\n"
    assert set(servers(4)) == {"s1", "s2"}
    assert env.q("get weight be/s1") == "1 (initial 1)\n\n"


def test_disabled_server_serves_once_enabled(env: Env) -> None:
    """`disabled` is forced maintenance that `enable server` lifts (HAProxy 2.6: admin
    state 5, then 4 once enabled, and the server takes traffic)."""
    def servers(n: int) -> set[str]:
        return {env.get("/bd")[1].get("x-server", "?") for _ in range(n)}

    def d2_state() -> list[str]:
        rows = env.q("show servers state bd").splitlines()
        return [r.split()[5:7] + r.split()[13:14] for r in rows if " d2 " in r][0]

    assert servers(4) == {"s1"}
    assert env.rows()[("bd", "d2")]["status"] == "MAINT"
    assert d2_state() == ["0", "5", "8"]  # stopped; FMAINT|CMAINT; check paused
    assert env.q("enable server bd/d2") == "\n"
    env.lb.wait_for_line("Server bd/d2 is UP/READY (leaving forced maintenance).", timeout=5)
    assert d2_state() == ["2", "4", "8"]
    assert env.rows()[("bd", "d2")]["status"] == "no check"
    assert servers(4) == {"s1", "s2"}
    assert env.q("disable server bd/d2") == "\n"
    assert d2_state() == ["0", "5", "8"]
    assert servers(4) == {"s1"}


def test_websocket_tunnel_visible_while_open(env: Env) -> None:
    async def scenario() -> None:
        url = f"ws://127.0.0.1:{env.port}/chat"
        async with websockets.connect(url) as ws:
            await ws.send("whoami")
            assert await asyncio.wait_for(ws.recv(), 5) == "w1"
            await ws.send("x" * 1000)
            assert await asyncio.wait_for(ws.recv(), 5) == "x" * 1000
            data = json.loads(await asyncio.to_thread(env.q, "show websockets json"))
            tunnels = data["tunnels"]
            assert len(tunnels) == 1
            t = tunnels[0]
            assert (t["frontend"], t["backend"], t["server"]) == ("fe", "wsb", "w1")
            assert t["client"].startswith("127.0.0.1:") and t["age"] is not None
            assert t["bytes_in"] > 1000 and t["bytes_out"] > 1000  # counted as they flow
            rows = await asyncio.to_thread(env.rows)
            assert rows[("wsb", "w1")]["ws_tunnels_cur"] == "1"
            assert rows[("fe", "FRONTEND")]["ws_tunnels_cur"] == "1"
            assert int(rows[("fe", "FRONTEND")]["ws_bytes_in"]) > 1000
            sess = await asyncio.to_thread(env.q, "show sess")
            assert "kind=tunnel" in sess and "be=wsb srv=w1" in sess
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            data = json.loads(await asyncio.to_thread(env.q, "show websockets json"))
            if not data["tunnels"]:
                break
            await asyncio.sleep(0.05)
        assert data["tunnels"] == []
        wsb = next(p for p in data["proxies"] if p["name"] == "wsb")
        assert wsb["servers"][0]["tunnels_total"] >= 1
        assert sum(wsb["servers"][0]["closes"].values()) >= 1
        rows = await asyncio.to_thread(env.rows)
        assert int(rows[("wsb", "BACKEND")]["hrsp_1xx"]) >= 1  # the 101
        assert rows[("wsb", "w1")]["ws_tunnels_cur"] == "0"

    asyncio.run(scenario())


def test_shutdown_session_kills_a_tunnel(env: Env) -> None:
    async def scenario() -> None:
        async with websockets.connect(f"ws://127.0.0.1:{env.port}/k") as ws:
            await ws.send("whoami")
            await asyncio.wait_for(ws.recv(), 5)
            sess = await asyncio.to_thread(env.q, "show sess")
            sid = next(line.split(":")[0] for line in sess.splitlines() if "kind=tunnel" in line)
            assert await asyncio.to_thread(env.q, f"shutdown session {sid}") == "\n"
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)

    asyncio.run(scenario())


def test_stats_page_and_prometheus_through_lb(env: Env) -> None:
    status, headers, body = env.get("/lbstats")
    assert status == 200 and headers["content-type"].startswith("text/html")
    page = body.decode()
    assert 'id="be/s1"' in page and '<meta http-equiv="refresh" content="5">' in page
    status, headers, body = env.get("/lbstats;csv")
    assert status == 200 and body.decode().startswith("# pxname,svname,")
    status, headers, body = env.get("/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    text = body.decode()
    assert "# TYPE haproxy_frontend_http_requests_total counter" in text
    assert 'haproxy_server_status{proxy="be",server="s1",state="UP"} 1' in text
    assert "haproxy_backend_websocket_tunnels_current" in text
    rows = env.rows()
    assert int(rows[("fe", "FRONTEND")]["intercepted"]) >= 3


def test_show_info_and_config_of_running_lb(env: Env) -> None:
    def info() -> dict[str, str]:
        return dict(line.split(": ", 1) for line in env.q("show info").splitlines()
                    if ": " in line)
    before = int(info()["CumConns"])
    env.get("/")
    now = info()
    assert now["Name"] == "lb" and int(now["Pid"]) == env.lb.pid
    assert int(now["CumConns"]) == before + 1
    assert "stats uri /lbstats" in env.q("show config")


def test_stats_admin_post_through_lb(env: Env) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", env.port, timeout=5)
    try:
        conn.request("POST", "/lbstats?b=be&s=s2&action=maint", body=b"")
        r = conn.getresponse()
        r.read()
        assert r.status == 303 and r.getheader("location") == "/lbstats;st=DONE"
    finally:
        conn.close()
    assert env.rows()[("be", "s2")]["status"] == "MAINT"
    status, _h, body = env.get("/lbstats;st=DONE")
    assert status == 200 and b"Action processed successfully." in body
    assert b'action="/lbstats?b=be&amp;s=s2&amp;action=ready"' in body
    assert env.q("set server be/s2 state ready") == "\n"
