"""Killing a stream that became a WebSocket tunnel, through the stats socket.

`shutdown session <id>` and `shutdown sessions server <b>/<s>` end the tunnel at
once: the client sees the connection end, the server's maxconn slot is given back
(a waiting handshake gets it), the stream leaves `ServerState.streams` and the
tunnel registry, and the traffic log line says `KD` (killed by an administrator).
The on-marked-down path (`D`, logged `DD`) is in tests/test_ws_tunnel.py.
"""

from __future__ import annotations

import json
import os
import tempfile
import time

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from tests.backends import WsBackend
from tests.lbproc import LbProcess
from tests.stats_support import query

pytestmark = pytest.mark.timeout(40)

CFG = """global
    log stdout format raw local0 info
    stats socket @@SOCK@@ mode 600 level admin
defaults
    mode http
    log global
    option httplog
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout tunnel 30s
    timeout queue 10s
frontend fe
    bind 127.0.0.1:@@fe@@
    default_backend bws
backend bws
    server ws1 127.0.0.1:@@ws@@ maxconn 1
"""


def wait_for(pred, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def server_row(sock: str) -> dict[str, str]:
    lines = [x for x in query(sock, "show stat").splitlines() if x]
    names = lines[0][2:].split(",")
    for x in lines[1:]:
        row = dict(zip(names, x.split(","), strict=False))
        if row["pxname"] == "bws" and row["svname"] == "ws1":
            return row
    raise AssertionError("no ws1 row")


@pytest.mark.parametrize("how", ["session", "server"])
def test_admin_kill_ends_tunnel_and_frees_the_slot(how: str) -> None:
    sock = os.path.join(tempfile.mkdtemp(prefix="lbkill"), "s.sock")
    with WsBackend() as wsb, LbProcess(CFG.replace("@@SOCK@@", sock),
                                       ports={"ws": wsb.port}) as lb:
        port = lb.ports["fe"]
        assert wait_for(lambda: os.path.exists(sock))
        with ws_connect(f"ws://127.0.0.1:{port}/a", open_timeout=5) as ws:
            ws.send("x")
            assert ws.recv(5) == "x"
            (tun,) = json.loads(query(sock, "show websockets json"))["tunnels"]
            assert server_row(sock)["scur"] == "1"
            if how == "session":
                assert query(sock, f"shutdown session {tun['id']:#x}").strip() == ""
            else:
                assert query(sock, "shutdown sessions server bws/ws1").strip() == ""
            with pytest.raises(ConnectionClosed):
                ws.recv(5)
        line = lb.wait_for_line(" 101 ", timeout=5)
        assert " KD-- " in line, line
        assert wait_for(lambda: server_row(sock)["scur"] == "0")
        assert json.loads(query(sock, "show websockets json"))["tunnels"] == []
        assert "ws1" not in query(sock, "show sess")
        # the slot (maxconn 1) is free again: a new handshake is not queued
        with ws_connect(f"ws://127.0.0.1:{port}/b", open_timeout=3) as ws2:
            ws2.send("y")
            assert ws2.recv(5) == "y"
