"""Servers that are local stream sockets: `server s /path`, `unix@path`, `abns@name`.

Side by side with HAProxy 2.6.12 on the same config and the same backends (HTTP and
WebSocket servers of tests.backends listening on unix sockets): who answers, what
the traffic log says of both ends (`unix:0`), what `show stat` and `show servers
state` say, how health checks report a socket nobody listens on or that does not
exist (SOCKERR, "General socket error (...)"), and how a request to a dead socket
is retried (at once: no turn-around wait) and answered. Then what only lb is asked
here: keep-alive connections to such a server are reused, a WebSocket goes through
one, `mode tcp` relays to one, TLS runs over one, `set server ... addr` refuses
to move one, with HAProxy's text, and a `stats socket abns@` answers. Last, socket
paths too long for sun_path are refused as `haproxy -c` refuses them, wherever they
are written.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.backends import HttpBackend, WsBackend
from tests.lbproc import LbProcess, free_port
from tests.stats_support import ADMIN_HEAD, csv_rows, query, wait_socket
from tests.support_e2e import SideBySide, UdpLog, fetch
from tests.test_config_haproxy_diff import HEAD, assert_text_like_haproxy
from tests.test_tls_backend import TlsServer, pki  # noqa: F401 (the fixture)

SIDE_BY_SIDE = ADMIN_HEAD + """    retries 2
frontend fe
    bind 127.0.0.1:{fe}
    log 127.0.0.1:{log} local0
    log-format "%b/%s %si:%sp %bi:%bp %ST %tsc %rc %Tw/%Tc/%Ta"
    use_backend dead if {{ path /dead }}
    use_backend chain if {{ path /chain }}
    default_backend be
frontend inner
    bind abns@{abns}-{kind}
    default_backend only1
backend be
    option httpchk GET /health
    server s1 {d}/s1.sock check inter 200
    server s2 unix@{d}/s2.sock check inter 200
    server s3 abns@{abns} check inter 200
    server s4 {d}/missing.sock check inter 200
    server s5 {d}/refusing.sock check inter 200
backend dead
    option redispatch
    server d1 {d}/refusing.sock
backend chain
    server c1 abns@{abns}-{other}
backend only1
    server s1 {d}/s1.sock
backend agents
    server a1 {d}/agent.sock agent-check agent-port 1 agent-inter 200
    server a2 {d}/missing.sock agent-check agent-port 1 agent-inter 200
"""


def _servers(sock: str) -> dict[str, tuple[str, ...]] | None:
    """Each server's status, check status, last check text, address column; None
    until the first checks of all five are done."""
    rows = csv_rows(query(sock, "show stat").strip())
    out = {sv: (r["status"], r["check_status"], r["last_chk"], r["addr"])
           for (px, sv), r in rows.items() if px == "be" and sv.startswith("s")}
    return None if any(v[1] in ("", "INI") for v in out.values()) else out


def _agents(sock: str) -> dict[str, tuple[str, ...]] | None:
    """Each agent-checked server's status, agent status and text, once both ran."""
    rows = csv_rows(query(sock, "show stat").strip())
    out = {sv: (r["status"], r["agent_status"], r["last_agt"])
           for (px, sv), r in rows.items() if px == "agents" and sv.startswith("a")}
    return None if any(v[1] in ("", "INI") for v in out.values()) else out


def _agent_answering(path: str, reply: bytes) -> socket.socket:
    """An agent on a unix socket: ``reply`` to each connection (a thread)."""
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(16)

    def serve() -> None:
        while True:
            try:
                c, _ = listener.accept()
            except OSError:
                return
            with c:
                c.sendall(reply)

    threading.Thread(target=serve, daemon=True).start()
    return listener


def _refusing(path: str) -> None:
    """A socket file that nobody listens on any more: a connect is refused."""
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.close()


def abstract(name: str) -> str:
    """The address HAProxy 2.6.12 binds and connects to for `abns@<name>`: the name
    after a NUL, padded with NULs to the whole of sun_path (108 bytes)."""
    return ("\0" + name).ljust(108, "\0")


def test_unix_servers_like_haproxy(tmp_path: Path) -> None:
    d = str(tmp_path)
    abns = f"lbtest-abns-{os.getpid()}"
    _refusing(f"{d}/refusing.sock")
    logs = {"h": UdpLog(), "l": UdpLog()}
    agent = _agent_answering(f"{d}/agent.sock", b"drain\n")
    with HttpBackend("s1", path=f"{d}/s1.sock") as s1, \
            HttpBackend("s2", path=f"{d}/s2.sock"), HttpBackend("s3", path=abstract(abns)):
        fe = {"h": free_port(), "l": free_port()}
        # (each one's `chain` backend reaches the other's `inner` frontend by abns@)
        pair = SideBySide(d, lambda kind, sock, _: SIDE_BY_SIDE.format(
            sock=sock, log=logs[kind].port, fe=fe[kind], d=d, abns=abns, kind=kind,
            other="l" if kind == "h" else "h"))
        try:
            servers = pair.settle(_servers, looks=2, timeout=15)
            agents = pair.settle(_agents, looks=2, timeout=15)
            answers: dict[str, list[str | None]] = {}
            for kind in ("h", "l"):
                answers[kind] = [fetch(fe[kind]).server for _ in range(3)]
                r = fetch(fe[kind], "/dead")
                assert r.status == 503
                assert b"No server is available" in r.body
                answers[kind].append(fetch(fe[kind], "/chain").server)
                state = query(pair.socks[kind], "show servers state be")
                assert [line.split()[4] for line in state.splitlines()[2:] if line] == ["-"] * 5
                rows = csv_rows(query(pair.socks[kind], "show stat").strip())
                dead = rows[("dead", "d1")]
                assert (dead["econ"], dead["wretr"], dead["wredis"], dead["connect"]) == \
                    ("1", "2", "0", "3")
                logged = [line.decode().split(": ", 1)[1].strip()
                          for line in _lines(logs[kind], 5)]
                assert [_timeless(line) for line in logged] == [
                    "be/s1 unix:0 unix:0 200 ---- 0 N/N/N", "be/s2 unix:0 unix:0 200 ---- 0 N/N/N",
                    "be/s3 unix:0 unix:0 200 ---- 0 N/N/N", "dead/d1 unix:0 -:- 503 SC-- 2 N/-1/N",
                    "chain/c1 unix:0 unix:0 200 ---- 0 N/N/N"], kind
                # refused at once, so retried at once: no turn-around wait
                assert int(logged[3].rsplit("/", 1)[1]) < 500
            assert answers["h"] == answers["l"] == ["s1", "s2", "s3", "s1"]
            assert pair.logs["l"].take() == pair.logs["h"].take()
        finally:
            pair.close()
            agent.close()
            for log in logs.values():
                log.close()
    # what HAProxy 2.6.12 said (the comparison above is with it, live)
    assert servers == {
        "s1": ("UP", "L7OK", "", "unix"), "s2": ("UP", "L7OK", "", "unix"),
        "s3": ("UP", "L7OK", "", "unix"),
        "s4": ("DOWN", "SOCKERR", "General socket error (No such file or directory)", "unix"),
        "s5": ("DOWN", "SOCKERR", "General socket error (Connection refused)", "unix"),
    }
    assert s1.requests[0].path == "/health"
    # an agent check without `agent-addr` goes to the server's socket (its port unused)
    assert agents == {
        "a1": ("DRAIN (agent)", "CHECKED", ""),
        "a2": ("no check", "SOCKERR", "General socket error (No such file or directory)"),
    }


def _timeless(line: str) -> str:
    """A log line with its %Tw, %Tc (unless -1) and %Ta as N (a loaded machine
    makes any of them 1 ms now and then)."""
    rest, _, times = line.rpartition(" ")
    _tw, tc, _ta = times.split("/")
    return f"{rest} N/{tc if tc == '-1' else 'N'}/N"


def _lines(log: UdpLog, n: int) -> list[bytes]:
    """The next ``n`` datagrams of a log-format (not httplog) frontend."""
    out = []
    log.sock.settimeout(5)
    while len(out) < n:
        out.append(log.sock.recv(65536))
    return out


def test_abstract_socket_with_check_and_no_port_loads_like_haproxy(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    # lb used to ask it for a port, as for a network address
    assert_text_like_haproxy(tmp_path, capsys, HEAD + (
        "frontend fe\n bind 127.0.0.1:18401\n default_backend b\n"
        "backend b\n server s1 abns@x check\n server s2 unix@/tmp/x check\n"
        " server s3 /tmp/y check\n"))


_NAME_107, _NAME_108 = "a" * 107, "a" * 108  # abns@: 107 bytes at most
_PATH_97, _PATH_98 = "/" + "p" * 96, "/" + "p" * 97  # a file: 97
_FE = "frontend fe\n bind 127.0.0.1:18401\n default_backend b\n"
_BE = "backend b\n server s 127.0.0.1:80\n"

SOCKET_PATHS = [
    _FE + f"backend b\n server s1 abns@{_NAME_107}\n server s2 {_PATH_97}\n"
    f" server s3 unix@{_PATH_97}\n dispatch {_PATH_97}\n",
    _FE + f"backend b\n server s1 abns@{_NAME_108}\n",
    _FE + f"backend b\n server s1 {_PATH_98}\n",
    _FE + f"backend b\n server s1 unix@{_PATH_98}\n",
    _FE + f"backend b\n server-template s 2 abns@{_NAME_108}\n",
    _FE + "backend b\n server-template s 2 1.2.3.4:99999\n",
    _FE + f"backend b\n server s 1.2.3.4:80 check addr {_PATH_98}\n",
    _FE + f"backend b\n default-server addr {_PATH_98}\n server s 1.2.3.4:80 check\n",
    _FE + f"backend b\n dispatch {_PATH_98}\n",
    f"frontend fe\n bind abns@{_NAME_107}\n bind {_PATH_97}\n default_backend b\n" + _BE,
    f"frontend fe\n bind abns@{_NAME_108}\n default_backend b\n" + _BE,
    f"frontend fe\n bind unix@{_PATH_98},127.0.0.1:18402\n default_backend b\n" + _BE,
    f"frontend fe\n bind 127.0.0.1:18401\n log {_PATH_98} local0\n default_backend b\n"
    + _BE,
    f"global\n stats socket abns@{_NAME_108}\n" + _FE + _BE,
    f"global\n stats socket {_PATH_98}\n" + _FE + _BE,
    "frontend fe\n bind abns@\n default_backend b\nbackend b\n server s1 abns@\n"
    " server s2 unix@\n",
]


@pytest.mark.parametrize("block", SOCKET_PATHS)
def test_socket_paths_checked_like_haproxy(tmp_path, capsys, block: str) -> None:  # type: ignore[no-untyped-def]
    assert_text_like_haproxy(tmp_path, capsys, HEAD + block)


LB_ONLY = """
global
    stats socket {d}/lb.sock level admin
    stats socket abns@{abns} level admin
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:@@fe@@
    use_backend ws if {{ hdr(upgrade) -i websocket }}
    use_backend tlspp if {{ path_beg /tlspp }}
    use_backend tls if {{ path_beg /tls }}
    default_backend be
backend be
    server s1 {d}/s1.sock
backend ws
    server w1 unix@{d}/w1.sock
backend tls
    server t1 {d}/t1.sock ssl verify none
backend tlspp
    server t2 {d}/t2.sock ssl verify none send-proxy
listen raw
    mode tcp
    bind 127.0.0.1:@@raw@@
    server r1 {d}/s1.sock
"""


def test_keepalive_websocket_tcp_and_tls_through_unix_servers(tmp_path: Path,
                                                               pki: dict[str, str]) -> None:  # noqa: F811
    d = str(tmp_path)
    tls = TlsServer("t1", pki, path=f"{d}/t1.sock")
    tls_pp = TlsServer("t2", pki, proxy_header=True, path=f"{d}/t2.sock")
    try:
        abns = f"lbtest-stats-{os.getpid()}"
        with HttpBackend("s1", path=f"{d}/s1.sock") as s1, WsBackend("w1", path=f"{d}/w1.sock"), \
                LbProcess(LB_ONLY.format(d=d, abns=abns)) as lb:
            port = lb.ports["fe"]
            # keep-alive: three requests on one client connection, one server connection
            with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                for i in range(3):
                    c.sendall(b"GET /k%d HTTP/1.1\r\nhost: x\r\n\r\n" % i)
                    assert _response(c).endswith(b"\r\n\r\ns1")
            assert [r.path for r in s1.requests] == ["/k0", "/k1", "/k2"]
            assert s1.connections == 1
            # a WebSocket
            assert asyncio.run(_ws_round(port)) == ["w1", "hello"]
            # TLS over the socket
            r = fetch(port, "/tls/x")
            assert (r.status, r.server, r.body) == (200, "t1", b"t1 saw /tls/x")
            # ... with the client's PROXY header in clear before the handshake
            r = fetch(port, "/tlspp")
            assert (r.status, r.server) == (200, "t2")
            assert tls_pp.proxy_lines[0].startswith(b"PROXY TCP4 127.0.0.1 127.0.0.1 ")
            # mode tcp: the bytes both ways, as they are
            with socket.create_connection(("127.0.0.1", lb.ports["raw"]), timeout=5) as c:
                c.sendall(b"GET /raw HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                data = b""
                while chunk := c.recv(65536):
                    data += chunk
            assert data.startswith(b"HTTP/1.1 200 X\r\n") and data.endswith(b"\r\n\r\ns1")
            assert s1.requests[-1].path == "/raw"
            # the CLI does not move a local socket's server (HAProxy 2.6.12's answer)
            wait_socket(f"{d}/lb.sock")
            assert query(f"{d}/lb.sock", "set server be/s1 addr 127.0.0.1 port 80") == (
                "Update for the current server address family is only supported through "
                "configuration file by 'stats socket command'\n\n")
            assert fetch(port, "/after").server == "s1"
            # a stats socket in the abstract namespace, at HAProxy's padded address
            assert "s1" in query(abstract(abns), "show servers state be")
    finally:
        tls.close()
        tls_pp.close()


def _response(c: socket.socket) -> bytes:
    """One response with a Content-Length body, read whole."""
    data = b""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        data += c.recv(65536)
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            m = re.search(rb"(?i)content-length: (\d+)", head)
            if m and len(body) >= int(m.group(1)):
                return data
    raise AssertionError(data)


async def _ws_round(port: int) -> list[str]:
    from websockets.asyncio.client import connect

    async with connect(f"ws://127.0.0.1:{port}/chat") as ws:
        await ws.send("whoami")
        first = await ws.recv()
        await ws.send("hello")
        return [str(first), str(await ws.recv())]
