"""`dispatch` and `option transparent`: a backend that does not load balance.

Without a `balance` line (here or in its defaults), a backend with `dispatch
<addr>:<port>` sends every request that persistence (a cookie, `use-server`, a stick
table) does not place to that address; with `option transparent`, to the address the
client connected to (after `set-dst`). Observed on HAProxy 2.6.12 on 127.0.0.1, and
compared live below:
- the log names no server (`b/<NOSRV>`), no cookie is set (`--NN`), a cookie that
  names a server still goes there (`--VN`), an unknown one goes to the dispatch (`--IN`);
- `lbtot` stays 0; the backend's `status` in `show stat` reads DOWN when it has
  servers (HAProxy never adds their weights up) and UP when it has none; its `algo`
  is `none`, its `weight` and `uweight` 0, and so is each server's `weight`;
- a dispatch that refuses connections is retried there, with the turn-around
  delay, and never "redispatched": 503 `SC--`, retries `2` (not `+2`), `wretr` 2;
- `balance` (even a bare one, which is `balance roundrobin`) wins: the dispatch
  is ignored with a warning, and `option transparent` with it is an error.

Also the address forms of `dispatch` (`ipv6@::1:80`, `tcp@name:80`, `fd@`, `udp@`...)
against `haproxy -c`.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile

import pytest
from websockets.sync.client import connect as ws_connect

from lb.config import load_text
from tests.backends import HttpBackend, WsBackend
from tests.lbproc import LbProcess, free_port, raw_request
from tests.stats_support import csv_rows, query, wait_socket
from tests.support_e2e import HAPROXY, Haproxy, UdpLog, fetch
from tests.test_config_haproxy_diff import assert_text_like_haproxy

needs_haproxy = pytest.mark.skipif(not shutil.which(HAPROXY),
                                   reason="compares with HAProxy 2.6 (make test installs it)")

HEAD = ("defaults\n mode http\n timeout client 1s\n timeout server 1s\n"
        " timeout connect 1s\n")

CHECK_CASES = [
    "backend b\n dispatch 127.0.0.1:80\n server s 127.0.0.1:81\n",
    "backend b\n dispatch ipv6@::1:80\n", "backend b\n dispatch ::1:80\n",
    "backend b\n dispatch ipv6@[::1]:80\n", "backend b\n dispatch tcp@localhost:80\n",
    "backend b\n dispatch tcp6@::1:80\n", "backend b\n dispatch ipv4@localhost:80\n",
    "backend b\n dispatch ipv4@::1:80\n", "backend b\n dispatch ipv6@127.0.0.1:80\n",
    "backend b\n dispatch ipv6@localhost:80\n", "backend b\n dispatch udp@127.0.0.1:80\n",
    "backend b\n dispatch fd@3\n", "backend b\n dispatch fd@\n",
    "backend b\n dispatch sockpair@x\n", "backend b\n dispatch sockpair@\n",
    "backend b\n dispatch sockpair@99999999999999999999\n",
    "backend b\n dispatch fd@99999999999\n",
    "backend b\n dispatch abns@foo\n", "backend b\n dispatch /tmp/lb-x.sock\n",
    "backend b\n dispatch 127.0.0.1:99999\n", "backend b\n dispatch :80\n",
    # balance mode: the dispatch is ignored (a bare `balance` counts)
    "backend b\n balance\n dispatch 127.0.0.1:80\n",
    "backend b\n dispatch 127.0.0.1:80\n balance first\n",
    "defaults\n balance first\nbackend b\n dispatch 127.0.0.1:80\n",
    "listen l\n bind 127.0.0.1:18999\n dispatch 127.0.0.1:80\n balance source\n",
    # option transparent: refused with balance, dropped for a dispatch
    "listen l\n bind 127.0.0.1:18999\n option transparent\n server s 127.0.0.1:81\n",
    "listen l\n balance leastconn\n option transparent\n server s 127.0.0.1:81\n",
    "backend b\n balance\n transparent\n dispatch 127.0.0.1:80\n",
    "backend b\n option transparent\n dispatch 127.0.0.1:80\n",
    "frontend f\n bind 127.0.0.1:18999\n transparent\n",
    "frontend f\n bind 127.0.0.1:18999\n option transparent\n",
    # a listen without bind: its warning comes first
    "listen l\n dispatch 127.0.0.1:80\n balance roundrobin\n",
]


@needs_haproxy
@pytest.mark.parametrize("text", CHECK_CASES)
def test_check_like_haproxy(tmp_path, capsys, text: str) -> None:  # type: ignore[no-untyped-def]
    assert_text_like_haproxy(tmp_path, capsys, HEAD + text)


def _backend(text: str, name: str = "b"):  # type: ignore[no-untyped-def]
    res = load_text(HEAD + text, "t.cfg")
    assert res.config is not None, res.diagnostics
    return next(p for p in res.config.proxies if p.name == name)


def test_model() -> None:
    b = _backend("backend b\n dispatch ipv6@::1:8080\n server s 127.0.0.1:81\n")
    assert b.dispatch is not None
    assert (b.dispatch.name, b.dispatch.host, b.dispatch.port) == ("", "::1", 8080)
    assert [s.name for s in b.servers] == ["s"]  # (never listed with the servers)
    assert _backend("backend b\n dispatch localhost:80\n").dispatch.host == "127.0.0.1"
    assert _backend("backend b\n balance\n dispatch 127.0.0.1:80\n").dispatch is None
    t = _backend("backend b\n option transparent\n").dispatch
    assert (t.host, t.port) == ("0.0.0.0", None)  # where the client connected
    assert _backend("backend b\n option transparent\n no option transparent\n").dispatch is None
    d = _backend("backend b\n transparent\n dispatch 127.0.0.1:80\n").dispatch
    assert (d.host, d.port) == ("127.0.0.1", 80)  # the dispatch wins


def test_bare_balance_is_roundrobin() -> None:
    """HAProxy 2.6.12 reads a bare `balance` as `balance roundrobin`, also over the
    defaults' algorithm (seen on 127.0.0.1: with `balance leastconn` in the defaults
    and a bare `balance`, requests alternate onto a server that holds one hanging)."""
    b = _backend("backend b\n balance leastconn\n balance\n server s 127.0.0.1:81\n")
    assert (b.balance.algorithm, b.balance.explicit) == ("roundrobin", True)
    b = _backend("backend b\n server s 127.0.0.1:81\n")
    assert (b.balance.algorithm, b.balance.explicit) == ("roundrobin", False)


CONFIG = """
global
    log 127.0.0.1:@@log@@ local0
    stats socket @@sock@@ level admin
defaults
    mode http
    log global
    option httplog
    timeout client 5s
    timeout server 5s
    timeout connect 200ms
frontend fe
    bind 127.0.0.1:@@fe@@
    use_backend dead if { path /dead }
    use_backend empty if { path /empty }
    default_backend b
backend b
    dispatch 127.0.0.1:@@disp@@
    cookie SRV insert indirect
    server s1 127.0.0.1:@@s1@@ cookie c1
backend empty
    dispatch 127.0.0.1:@@disp@@
backend dead
    option redispatch
    retries 2
    dispatch 127.0.0.1:@@deadport@@
"""

# (path, cookie) -> who answers, Set-Cookie sent, the log's termination flags and
# retries, as HAProxy 2.6.12 gives them
EXCHANGES = [
    (("/", None), ("disp", False, "--NN", "0")),
    (("/", "SRV=c1"), ("s1", False, "--VN", "0")),
    (("/", "SRV=zz"), ("disp", False, "--IN", "0")),
    (("/empty", None), ("disp", False, "----", "0")),  # (no cookie in that backend)
    (("/dead", None), (503, False, "SC--", "2")),
]
STAT_COLUMNS = ("stot", "lbtot", "econ", "wretr", "wredis", "connect", "status", "act",
                "hrsp_2xx", "hrsp_5xx", "weight", "uweight", "algo")


def _run(kind: str, ports: dict[str, int], log: UdpLog) -> tuple[list, dict, list]:
    text = CONFIG.replace("@@log@@", str(log.port))
    sock = ports["sock"]
    if kind == "lb":
        px = LbProcess(text.replace("@@sock@@", str(sock)), ports={
            k: v for k, v in ports.items() if k != "sock"})
    else:
        px = Haproxy(text.replace("@@sock@@", str(sock)), ports={
            k: v for k, v in ports.items() if k != "sock"}, single_thread=True)
    seen = []
    with px:
        wait_socket(str(sock))
        for (path, cookie), _ in EXCHANGES:
            r = fetch(ports["fe"], path, [("cookie", cookie)] if cookie else [])
            seen.append((r.server if r.status == 200 else r.status,
                         r.get("set-cookie") is not None))
        rows = csv_rows(query(str(sock), "show stat").strip())
    records = log.records(len(EXCHANGES))
    return seen, rows, records


@needs_haproxy
@pytest.mark.parametrize("kind", ["lb", "haproxy"])
def test_dispatch_traffic_like_haproxy(kind: str) -> None:
    disp, s1 = HttpBackend("disp").start(), HttpBackend("s1").start()
    log = UdpLog()
    tmp = tempfile.mkdtemp(prefix="lbtest-disp-")
    try:
        ports = {"disp": disp.port, "s1": s1.port, "deadport": free_port(),
                 "fe": free_port(), "sock": os.path.join(tmp, "s.sock")}
        seen, rows, records = _run(kind, ports, log)  # type: ignore[arg-type]
    finally:
        disp.stop()
        s1.stop()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
    assert seen == [(who, cookie) for _, (who, cookie, _, _) in EXCHANGES]
    got = [(r["srv"], r["tsc"], r["rc"]) for r in records]
    assert got == [("<NOSRV>" if w != "s1" else "s1", tsc, rc)
                   for _, (w, _, tsc, rc) in EXCHANGES]
    # Tw is the difference of two whole-millisecond stamps (as in HAProxy), so a
    # loaded machine can turn a sub-millisecond wait into 1; Tc is -1: never connected
    assert records[-1]["Tw"] in (0, 1) and records[-1]["Tc"] == -1
    b, empty, dead = rows[("b", "BACKEND")], rows[("empty", "BACKEND")], rows[("dead", "BACKEND")]
    assert {c: b[c] for c in STAT_COLUMNS} == {
        "stot": "3", "lbtot": "0", "econ": "0", "wretr": "0", "wredis": "0", "connect": "3",
        "status": "DOWN", "act": "1", "hrsp_2xx": "3", "hrsp_5xx": "0",
        "weight": "0", "uweight": "0", "algo": "none"}  # (no algorithm, no weights)
    assert (empty["status"], empty["stot"], empty["lbtot"], empty["algo"]) == (
        "UP", "1", "0", "none")
    assert {c: dead[c] for c in ("stot", "econ", "wretr", "wredis", "connect", "hrsp_5xx")} \
        == {"stot": "1", "econ": "1", "wretr": "2", "wredis": "0", "connect": "3",
            "hrsp_5xx": "1"}
    s1row = rows[("b", "s1")]
    assert (s1row["stot"], s1row["lbtot"], s1row["connect"]) == ("1", "0", "1")
    assert (s1row["weight"], s1row["uweight"]) == ("0", "1")


def test_transparent_goes_where_the_client_connected() -> None:
    """`option transparent`: the request goes to its destination address, here moved
    by `set-dst-port`; a cookie still reaches its server."""
    target, s1 = HttpBackend("target").start(), HttpBackend("s1").start()
    text = f"""
defaults
    mode http
    timeout client 5s
    timeout server 5s
    timeout connect 1s
frontend fe
    bind 127.0.0.1:@@fe@@
    http-request set-dst-port int({target.port})
    default_backend b
backend b
    option transparent
    cookie SRV insert indirect
    server s1 127.0.0.1:{s1.port} cookie c1
"""
    lb = LbProcess(text).start()
    try:
        assert fetch(lb.ports["fe"]).server == "target"
        assert fetch(lb.ports["fe"], headers=[("cookie", "SRV=c1")]).server == "s1"
    finally:
        lb.stop()
        target.stop()
        s1.stop()


def test_tcp_relay_and_websocket_through_a_dispatch() -> None:
    """The old simple TCP relay (`mode tcp`, `dispatch`), and a WebSocket upgrade
    through an HTTP backend that dispatches."""
    echo = socket.socket()
    echo.bind(("127.0.0.1", 0))
    echo.listen(4)
    ws = WsBackend("w1").start()
    text = f"""
defaults
    timeout client 5s
    timeout server 5s
    timeout connect 1s
listen relay
    mode tcp
    bind 127.0.0.1:@@relay@@
    dispatch 127.0.0.1:{echo.getsockname()[1]}
listen web
    mode http
    bind 127.0.0.1:@@fe@@
    dispatch 127.0.0.1:{ws.port}
"""
    lb = LbProcess(text).start()
    try:
        import threading

        def serve_one() -> None:
            c, _ = echo.accept()
            with c:
                c.sendall(b"banner\n" + c.recv(100))

        t = threading.Thread(target=serve_one, daemon=True)
        t.start()
        got = raw_request(lb.ports["relay"], b"ping\n", until_close=True)
        t.join(5)
        assert got == b"banner\nping\n"
        with ws_connect(f"ws://127.0.0.1:{lb.ports['fe']}/chat", open_timeout=5) as c:
            c.send("hello")
            assert c.recv(timeout=5) == "hello"
    finally:
        lb.stop()
        ws.stop()
        echo.close()
