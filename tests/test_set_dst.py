"""Where a request is sent when its server names no address or port of its own:
`http-request set-dst` / `set-dst-port`, servers at `0.0.0.0` (or `*`) and servers
with a `+N`/`-N` port, each case run under lb and HAProxy 2.6.12 (2026-11-25, on
127.0.0.2 and 127.0.0.3 of the loopback network).

Seen on HAProxy: a server at 0.0.0.0 connects to the address the client connected
to, with its own port or, without one, the client's destination port; `+N` adds N to
that port; `set-dst`/`set-dst-port` change both for the rest of the request (the
`dst` fetch, `%fi:%fp`, the PROXY header sent), for that request only. A
`0.0.0.0` server with `check` and no port loads, and its checks fail (L4CON).
"""

from __future__ import annotations

import os
import re
import socket
import time

import pytest

from tests.lbproc import LbProcess, RawBackend, free_port
from tests.stats_support import query
from tests.support_e2e import HAPROXY, Haproxy, UdpLog, lb_or_haproxy
from tests.test_config_haproxy_diff import assert_text_like_haproxy

pytestmark = pytest.mark.timeout(60)

KINDS = ["lb", "haproxy"] if os.path.exists(HAPROXY) else ["lb"]

CFG = """
defaults
    mode http
    log 127.0.0.1:@@log@@ local0
    log-format "%fi:%fp dst=%[dst]:%[dst_port] %si:%sp"
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.2:@@fe@@
    http-request set-dst hdr(x-dst) if { req.hdr(x-dst) -m found }
    http-request set-dst-port hdr(x-port) if { req.hdr(x-port) -m found }
    use_backend bany if { path_beg /any }
    use_backend bstar if { path_beg /star }
    use_backend brel if { path_beg /rel }
    use_backend bpp if { path_beg /pp }
    default_backend bfix
backend bfix
    server s1 0.0.0.0:@@bp@@
backend bany
    server s1 0.0.0.0
backend bstar
    server s1 *:@@bp@@
backend brel
    server s1 127.0.0.2:{offset:+d}
backend bpp
    server s1 127.0.0.2:@@bp@@ send-proxy
"""


def _cfg(offset: int) -> str:
    return CFG.replace("{offset:+d}", f"{offset:+d}")


def _where(c: socket.socket, be: RawBackend) -> None:
    """Answer with the address this connection reached, and the header's first line."""
    first = be.recv_head(c).split(b"\r\n", 1)[0]
    host, port = c.getsockname()[:2]
    body = f"{host}:{port} ".encode() + first
    c.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: "
              + str(len(body)).encode() + b"\r\n\r\n" + body)
    c.close()


def _get(port: int, path: str, headers: str = "", count: int = 1) -> list[bytes]:
    """``count`` requests on one connection to 127.0.0.2 (``headers`` on the first
    only); the body of each answer."""
    out = []
    with socket.create_connection(("127.0.0.2", port), timeout=5) as c:
        for i in range(count):
            extra = headers if i == 0 else ""
            c.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
            got = b""
            while True:
                head, sep, body = got.partition(b"\r\n\r\n")
                m = re.search(rb"(?i)content-length: (\d+)", head)
                if sep and m and len(body) >= int(m.group(1)):
                    out.append(body)
                    break
                chunk = c.recv(4096)
                assert chunk, got
                got += chunk
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_destination_driven_servers(kind: str) -> None:
    fe, bp, bp2 = free_port(), free_port(), free_port()
    offset = bp - fe
    log = UdpLog()
    try:
        with RawBackend(_where, "127.0.0.2", bp), RawBackend(_where, "127.0.0.3", bp), \
                RawBackend(_where, "127.0.0.2", bp2), \
                lb_or_haproxy(kind, _cfg(offset),
                              {"fe": fe, "bp": bp, "log": log.port}) as px:
            assert px.ports["fe"] == fe
            cases = [
                # (path, request headers, what the server answered)
                ("/fix", "", f"127.0.0.2:{bp} GET /fix HTTP/1.1"),
                ("/fix", "x-dst: 127.0.0.3\r\n", f"127.0.0.3:{bp} GET /fix HTTP/1.1"),
                ("/star", "x-dst: 127.0.0.3\r\n", f"127.0.0.3:{bp} GET /star HTTP/1.1"),
                ("/any", f"x-port: {bp}\r\n", f"127.0.0.2:{bp} GET /any HTTP/1.1"),
                ("/any", f"x-dst: 127.0.0.3\r\nx-port: {bp}\r\n",
                 f"127.0.0.3:{bp} GET /any HTTP/1.1"),
                ("/rel", "", f"127.0.0.2:{bp} GET /rel HTTP/1.1"),  # fe + offset
                ("/rel", f"x-port: {bp2 - offset}\r\n", f"127.0.0.2:{bp2} GET /rel HTTP/1.1"),
                ("/pp", "x-dst: 127.0.0.3\r\nx-port: 99\r\n", f"127.0.0.2:{bp} PROXY TCP4 "),
            ]
            for path, headers, want in cases:
                (got,) = _get(fe, path, headers)
                assert got.decode().startswith(want), (path, headers, got)
            # the changed destination lasts for its request only
            assert _get(fe, "/fix", "x-dst: 127.0.0.3\r\n", count=2) == [
                f"127.0.0.3:{bp} GET /fix HTTP/1.1".encode(),
                f"127.0.0.2:{bp} GET /fix HTTP/1.1".encode()]
            log.sock.settimeout(5)
            lines = [log.sock.recv(65536).decode().split(": ", 1)[1].strip()
                     for _ in range(len(cases) + 2)]
    finally:
        log.close()
    assert lines[:3] == [f"127.0.0.2:{fe} dst=127.0.0.2:{fe} 127.0.0.2:{bp}",
                         f"127.0.0.3:{fe} dst=127.0.0.3:{fe} 127.0.0.3:{bp}",
                         f"127.0.0.3:{fe} dst=127.0.0.3:{fe} 127.0.0.3:{bp}"]
    assert lines[6] == f"127.0.0.2:{bp2 - offset} dst=127.0.0.2:{bp2 - offset} 127.0.0.2:{bp2}"


def test_the_proxy_header_names_the_new_destination() -> None:
    """`set-dst` before a send-proxy server: the header's destination is the new one
    (HAProxy 2.6.12 sent `PROXY TCP4 127.0.0.1 127.0.0.3 <port> 99`)."""
    fe, bp = free_port(), free_port()
    got: list[bytes] = []

    def record(c: socket.socket, be: RawBackend) -> None:
        c.settimeout(5)
        got.append(c.recv(4096))
        c.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        c.close()

    log = UdpLog()
    try:
        with RawBackend(record, "127.0.0.2", bp), lb_or_haproxy(
                "lb", _cfg(0), {"fe": fe, "bp": bp, "log": log.port}):
            _get(fe, "/pp", "x-dst: 127.0.0.3\r\nx-port: 99\r\n")
    finally:
        log.close()
    assert got and got[0].startswith(b"PROXY TCP4 127.0.0.1 127.0.0.3 "), got
    assert got[0].split(b"\r\n")[0].endswith(b" 99")


CHECK_CFG = """
global
    stats socket {sock} level admin
defaults
    mode http
    timeout connect 1s
    timeout client 2s
    timeout server 2s
    timeout check 1s
frontend fe
    bind 127.0.0.1:@@fe@@
    default_backend be
backend be
    option httpchk GET /
    server s1 0.0.0.0 check inter 200
    server s2 127.0.0.1:+5 check inter 200 port @@chk@@
"""


@pytest.mark.parametrize("kind", KINDS)
def test_checks_of_servers_without_an_address(kind: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """HAProxy 2.6.12 loads a 0.0.0.0 server with `check` and no port; its checks go to
    0.0.0.0:0 and fail. A `+N` server checks its `port`."""
    sock = str(tmp_path / "s.sock")

    def ok(c: socket.socket, be: RawBackend) -> None:
        be.recv_head(c)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        c.close()

    with RawBackend(ok) as chk:
        text = CHECK_CFG.format(sock=sock)
        ports = {"chk": chk.port}
        proc = Haproxy(text, ports=ports) if kind == "haproxy" else LbProcess(text, ports)
        with proc:
            deadline = time.monotonic() + 10
            while True:
                lines = query(sock, "show stat").lstrip("# ").splitlines()
                head = lines[0].split(",")
                rows = [dict(zip(head, r.split(","), strict=False)) for r in lines[1:] if r]
                got = {r["svname"]: (r["status"], r["check_status"]) for r in rows
                       if r["svname"] in ("s1", "s2")}
                if got == {"s1": ("DOWN", "L4CON"), "s2": ("UP", "L7OK")} \
                        or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
    assert got == {"s1": ("DOWN", "L4CON"), "s2": ("UP", "L7OK")}


@pytest.mark.skipif(not os.path.exists(HAPROXY), reason="needs haproxy")
@pytest.mark.parametrize("lines", [
    # (HAProxy stops reading a file after its first bad http rule: one per file)
    " http-request set-dst\n", " http-request set-dst-port src extra\n",
    " http-request set-dst nosuch\n",
    " http-request set-dst-port res.hdr(x)\n",
    " default_backend b\nbackend b\n server s1 0.0.0.0 check\n"
    " server s2 127.0.0.1:+3 check\n server s3 *:80 check\n",
])
def test_messages_match_haproxy(tmp_path, capsys, lines: str) -> None:  # type: ignore[no-untyped-def]
    assert_text_like_haproxy(tmp_path, capsys, (
        "defaults\n mode http\n timeout client 1s\n timeout server 1s\n timeout connect 1s\n"
        "frontend f\n bind 127.0.0.1:18080\n" + lines))


LOG_ADDR_CFG = """
defaults
    mode {mode}
    log 127.0.0.1:@@log@@ local0
    log-format "%si:%sp %bi:%bp"
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:@@fe@@
    {deny}
    default_backend be
backend be
    server s1 127.0.0.1:@@s1@@
"""


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mode", ["http", "tcp"])
def test_server_addresses_in_the_log(kind: str, mode: str) -> None:
    """`%si:%sp` is where the request went, `%bi:%bp` the address lb's connection to
    the server came from (what the server saw); `-:-` for both when no server was
    tried (HAProxy 2.6.12; lb printed `-:0` and never filled %si/%bi in)."""
    peers: list[int] = []

    def answer(c: socket.socket, be: RawBackend) -> None:
        peers.append(c.getpeername()[1])
        be.recv_head(c)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        c.close()

    deny = "http-request deny if { path /deny }" if mode == "http" else ""
    log = UdpLog()
    try:
        with RawBackend(answer) as srv, lb_or_haproxy(
                kind, LOG_ADDR_CFG.format(mode=mode, deny=deny),
                {"s1": srv.port, "log": log.port}) as px:
            paths = ["/deny", "/ok"] if mode == "http" else ["/ok"]
            for path in paths:
                with socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5) as c:
                    c.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                              .encode())
                    while c.recv(4096):
                        pass
            log.sock.settimeout(5)
            lines = [log.sock.recv(65536).decode().split(": ", 1)[1].strip() for _ in paths]
    finally:
        log.close()
    want = [f"127.0.0.1:{srv.port} 127.0.0.1:{peers[0]}"]
    assert lines == (["-:- -:-"] + want if mode == "http" else want)


TCP_RULES_CFG = """
defaults
    mode {mode}
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.2:@@fe@@
    tcp-request {where} set-dst str(127.0.0.3)
    tcp-request {where} set-dst-port int(@@bp@@)
    tcp-request {where} set-src str(10.9.8.7)
    default_backend b
backend b
    server s1 0.0.0.0 send-proxy
"""


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("mode", "where"), [
    ("tcp", "connection"), ("tcp", "content"), ("http", "session")])
def test_tcp_request_set_dst(kind: str, mode: str, where: str) -> None:
    """`tcp-request connection|session|content set-dst*` and `set-src`: a connection
    or session rule sets the addresses for every request of the connection, a content
    rule for the stream (in `mode tcp`, the whole connection). The server's PROXY
    header shows both."""
    fe, bp = free_port(), free_port()
    with RawBackend(_where, "127.0.0.3", bp), lb_or_haproxy(
            kind, TCP_RULES_CFG.format(mode=mode, where=where), {"fe": fe, "bp": bp}):
        got = _get(fe, "/t", count=1 if mode == "tcp" else 2)
    assert len(got) == (1 if mode == "tcp" else 2)
    for body in got:  # `<where the server was reached> PROXY TCP4 <src> <dst> <sp> <dp>`
        assert body.startswith(f"127.0.0.3:{bp} PROXY TCP4 10.9.8.7 127.0.0.3 ".encode())
        assert body.endswith(f" {bp}".encode()), body


@pytest.mark.skipif(not os.path.exists(HAPROXY), reason="needs haproxy")
@pytest.mark.parametrize("rule", [
    "connection set-dst", "connection set-dst nosuch", "connection set-dst src extra",
    "session set-src-port int(5) if TRUE", "content set-dst-port hdr(x)"])
def test_tcp_request_set_dst_messages(tmp_path, capsys, rule: str) -> None:  # type: ignore[no-untyped-def]
    assert_text_like_haproxy(tmp_path, capsys, (
        "defaults\n mode http\n timeout client 1s\n timeout server 1s\n timeout connect 1s\n"
        f"frontend f\n bind 127.0.0.1:18080\n tcp-request {rule}\n default_backend b\n"
        "backend b\n server s 127.0.0.1:1\n"))


ADDR_CFG = """
global
    stats socket {sock} level admin
defaults
    mode http
    timeout connect 1s
    timeout client 2s
    timeout server 2s
frontend fe
    bind 127.0.0.1:@@fe@@
    default_backend be
backend be
    server s1 127.0.0.1
    server s2 127.0.0.1:+5
    server s3 127.0.0.1:-10
    server s4 0.0.0.0
    server s5 *:81
"""


@pytest.mark.parametrize("kind", KINDS)
def test_stats_addr_of_servers_without_a_port(kind: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`show stat`'s addr: the port offset for a port-less or `+N` server (HAProxy
    2.6.12; lb showed the address alone), `*` as 0.0.0.0."""
    sock = str(tmp_path / "s.sock")
    text = ADDR_CFG.format(sock=sock)
    with (Haproxy(text, ports={}) if kind == "haproxy" else LbProcess(text, {})):
        lines = query(sock, "show stat").lstrip("# ").splitlines()
    head = lines[0].split(",")
    rows = [dict(zip(head, r.split(","), strict=False)) for r in lines[1:] if r]
    assert [r["addr"] for r in rows if r["svname"].startswith("s")] == [
        "127.0.0.1:0", "127.0.0.1:5", "127.0.0.1:-10", "0.0.0.0:0", "0.0.0.0:81"]
