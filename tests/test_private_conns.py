"""Server connections a client connection owns (lb.proxy.private), against HAProxy
2.6.12 run side by side on the same configs and scripts.

What a script records, per request: the status, the server that answered, and which
of that server's connections carried it (``s1#2``: the second connection s1 saw). So
the comparison covers which requests travel on a kept connection and which open a
new one, not only who answered.

Seen on HAProxy 2.6.12 (and what these tests hold lb to):
- `http-reuse never` does not close the server connection after each response: the
  client connection keeps it, and its later requests to that server use it.
- A 401 offering NTLM/Negotiate (or a 407 with Proxy-Authenticate) makes the
  connection the client's own and sends the client's next requests to that server,
  whatever the balance algorithm, except a hashing one; `http-server-close` still
  closes it.
- `option prefer-last-server` acts only on connections a client owns: with the
  default `http-reuse safe` it changes nothing.
- A client keeps at most `max-session-srv-conns` (5) idle connections; `0` keeps
  none.
- `max-keep-alive-queue 0` gives up the last server when it is full; the default
  waits in its queue.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from lb.proxy.private import offers_connection_auth
from tests.backends import HttpBackend, Request
from tests.lbproc import LbProcess, LbThread
from tests.stats_support import csv_rows, query
from tests.support_e2e import HAPROXY, Haproxy
from tests.test_config_haproxy_diff import assert_text_like_haproxy
from tests.test_server_close_reset import StubbornBackend

pytestmark = pytest.mark.timeout(120)

needs_haproxy = pytest.mark.skipif(not os.path.exists(HAPROXY),
                                   reason="compares with HAProxy 2.6 (make test installs it)")

CFG = """
global
{global_lines}
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:@@fe@@
{fe_lines}
    default_backend be
backend be
{be_lines}
{servers}
"""


def answer(name: str, delay_paths: tuple[str, ...] = ()) -> Any:
    """A handler answering ``/r?status=401&hdr=name:value...`` as asked, ``/slow``
    after a second, anything else with 200; each answer names its server."""
    def handle(req: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        url = urlsplit(req.path)
        if url.path == "/slow":
            time.sleep(1.0)
        status, hdrs = 200, [("x-server", name)]
        for k, v in parse_qsl(url.query):
            if k == "status":
                status = int(v)
            elif k == "hdr":
                hk, hv = v.split(":", 1)
                hdrs.append((hk, hv))
        return status, hdrs, name.encode()
    return handle


class Servers:
    """``n`` backends s1..sN that record, per request, the lb/HAProxy-side port of
    the connection it came on."""

    def __init__(self, n: int) -> None:
        self.backends = [HttpBackend(f"s{i}", handler=answer(f"s{i}")).start()
                         for i in range(1, n + 1)]

    @property
    def ports(self) -> dict[str, int]:
        return {b.name: b.port for b in self.backends}

    def lines(self, extra: str = "") -> str:
        return "\n".join(f"    server {b.name} 127.0.0.1:@@{b.name}@@{extra}"
                         for b in self.backends)

    def connection_of(self, name: str, nth: int) -> int:
        """The peer port of the ``nth`` request (from 0) that server ``name`` saw."""
        b = next(b for b in self.backends if b.name == name)
        return b.requests[nth].peer[1]

    def close(self) -> None:
        for b in self.backends:
            b.stop()


def _get(sock: socket.socket, path: str) -> tuple[int, str]:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    hdrs = dict(line.lower().split(": ", 1) for line in lines[1:])
    need = int(hdrs.get("content-length", "0"))
    while len(body) < need:
        body += sock.recv(65536)
    return int(lines[0].split()[1]), hdrs.get("x-server", "-")


def run_script(kind: str, servers: Servers, text: str, script: list[tuple[int, str]],
               stats: bool = False) -> tuple[list[str], Any]:
    """Send ``script``'s requests, each on its client connection (by index, all kept
    open until the end), through lb or HAProxy; what each got (``200 s1#1``), and
    `show stat` rows when ``stats``."""
    sock_path = None
    if stats:
        sock_path = f"/tmp/lbtest-priv-{os.getpid()}-{kind}.sock"
        text = text.replace("{global_lines}", f"    stats socket {sock_path} level admin")
    else:
        text = text.replace("{global_lines}", "")
    if kind == "haproxy":
        px: Any = Haproxy(text, servers.ports, single_thread=True)
    elif stats:
        px = LbProcess(text, servers.ports)
    else:
        px = LbThread(text, ports=servers.ports)
    seen: dict[str, int] = {}  # requests each server saw so far
    labels: dict[tuple[str, int], str] = {}  # (server, peer port) -> s1#n
    out = []
    rows = None
    with px:
        clients: dict[int, socket.socket] = {}
        try:
            for who, path in script:
                if who not in clients:
                    clients[who] = socket.create_connection(
                        ("127.0.0.1", px.ports["fe"]), timeout=10)
                status, name = _get(clients[who], path)
                label = "-"
                if name != "-":
                    port = servers.connection_of(name, seen.get(name, 0))
                    seen[name] = seen.get(name, 0) + 1
                    key = (name, port)
                    if key not in labels:
                        labels[key] = f"{name}#{sum(1 for k in labels if k[0] == name) + 1}"
                    label = labels[key]
                out.append(f"{status} {label}")
            if stats:
                assert sock_path is not None
                rows = csv_rows(query(sock_path, "show stat").strip())
        finally:
            for c in clients.values():
                c.close()
    return out, rows


def like_haproxy(n: int, be_lines: str, script: list[tuple[int, str]],
                 fe_lines: str = "", server_extra: str = "") -> list[str]:
    results = {}
    for kind in ("haproxy", "lb"):
        servers = Servers(n)
        try:
            text = CFG.format(global_lines="{global_lines}", fe_lines=fe_lines,
                              be_lines=be_lines, servers=servers.lines(server_extra))
            results[kind] = run_script(kind, servers, text, script)[0]
        finally:
            servers.close()
    assert results["lb"] == results["haproxy"]
    return results["lb"]


NTLM = "/r?status=401&hdr=www-authenticate:NTLM"
FOUR = [(0, "/a")] * 4


@needs_haproxy
@pytest.mark.parametrize(("be_lines", "script", "expected"), [
    # the default: a new connection for the first request, the pool's after
    ("    balance roundrobin", FOUR, ["200 s1#1", "200 s2#1", "200 s3#1", "200 s1#1"]),
    ("    balance roundrobin\n    option prefer-last-server", FOUR,
     ["200 s1#1", "200 s2#1", "200 s3#1", "200 s1#1"]),
    # http-reuse never: the client's own connections, kept between its requests
    ("    balance roundrobin\n    http-reuse never", FOUR,
     ["200 s1#1", "200 s2#1", "200 s3#1", "200 s1#1"]),
    ("    balance roundrobin\n    http-reuse never\n    option prefer-last-server", FOUR,
     ["200 s1#1", "200 s1#1", "200 s1#1", "200 s1#1"]),
    ("    balance leastconn\n    http-reuse never\n    option prefer-last-server", FOUR,
     ["200 s1#1", "200 s1#1", "200 s1#1", "200 s1#1"]),
    # a hashing balance is never overridden; the owned connection still serves
    ("    balance uri\n    http-reuse never\n    option prefer-last-server",
     [(0, "/a"), (0, "/b"), (0, "/a"), (0, "/b")], None),
    # NTLM: stuck to the server, on the same connection
    ("    balance roundrobin", [(0, NTLM), (0, "/a"), (0, "/b"), (0, "/c")],
     ["401 s1#1", "200 s1#1", "200 s1#1", "200 s1#1"]),
    ("    balance uri", [(0, NTLM), (0, "/a"), (0, NTLM), (0, "/b")], None),
    ("    balance roundrobin\n    option http-server-close",
     [(0, NTLM), (0, "/a"), (0, "/b"), (0, "/c")],
     ["401 s1#1", "200 s2#1", "200 s3#1", "200 s1#2"]),
    # an NTLM connection is never another client's, even with http-reuse always
    ("    balance roundrobin\n    http-reuse always",
     [(0, NTLM), (1, "/a"), (1, "/b"), (1, "/c"), (0, "/d")],
     ["401 s1#1", "200 s2#1", "200 s3#1", "200 s1#2", "200 s1#1"]),
])
def test_next_requests_like_haproxy(be_lines: str, script: list[tuple[int, str]],
                                    expected: list[str] | None) -> None:
    got = like_haproxy(3, be_lines, script)
    if expected is not None:
        assert got == expected


@needs_haproxy
@pytest.mark.parametrize("offer", [
    "status=401&hdr=www-authenticate:Negotiate abc", "status=401&hdr=www-authenticate:nego",
    "status=401&hdr=www-authenticate:NTLMSSP",
    "status=401&hdr=www-authenticate:Basic realm=x, NTLM",
    "status=401&hdr=www-authenticate:Basic realm=x&hdr=www-authenticate:ntlm",
    "status=407&hdr=proxy-authenticate:NTLM",
    # not a connection's authentication
    "status=401&hdr=proxy-authenticate:NTLM", "status=407&hdr=www-authenticate:NTLM",
    "status=403&hdr=www-authenticate:NTLM", "status=200&hdr=www-authenticate:NTLM",
    "status=401&hdr=www-authenticate:Basic realm=NTLM",
])
def test_which_answers_bind_the_connection_like_haproxy(offer: str) -> None:
    path = "/r?" + offer.replace(" ", "%20").replace(",", "%2C")
    like_haproxy(2, "    balance roundrobin", [(0, path), (0, "/a"), (0, "/b")])


@needs_haproxy
@pytest.mark.parametrize(("n", "fe_lines", "be_lines", "requests"), [
    (7, "", "    http-reuse never", 14),  # 5 kept, the 6th and 7th closed
    (3, "    max-session-srv-conns 1", "    http-reuse never", 6),
    (3, "    max-session-srv-conns 0", "    http-reuse never", 6),
    (3, "    max-session-srv-conns 0", "", 0),  # NTLM: kept by nobody
])
def test_max_session_srv_conns_like_haproxy(n: int, fe_lines: str, be_lines: str,
                                           requests: int) -> None:
    script = [(0, "/a")] * requests if requests else [(0, NTLM), (0, "/a"), (0, "/b"),
                                                      (0, "/c")]
    like_haproxy(n, "    balance roundrobin\n" + be_lines, script, fe_lines=fe_lines)


@needs_haproxy
def test_owned_connections_count_as_reuses_like_haproxy() -> None:
    """`connect`, `reuse` and `lbtot` of each server: a kept connection is a reuse,
    and a request prefer-last-server places is not load balanced."""
    results = {}
    for kind in ("haproxy", "lb"):
        servers = Servers(7)
        try:
            text = CFG.format(global_lines="{global_lines}", fe_lines="",
                              be_lines="    http-reuse never", servers=servers.lines())
            script = [(0, "/a")] * 14 + [(1, NTLM)] + [(1, "/b")] * 3
            got, rows = run_script(kind, servers, text, script, stats=True)
            results[kind] = got, {sv: (r["connect"], r["reuse"], r["lbtot"])
                                  for (px, sv), r in rows.items() if px == "be"}
        finally:
            servers.close()
    assert results["lb"] == results["haproxy"]
    assert results["lb"][1]["BACKEND"] == ("10", "8", "15")


@needs_haproxy
def test_dispatch_connections_are_the_clients_own_like_haproxy() -> None:
    """A `dispatch` connection serves the client that opened it again, never another
    (HAProxy 2.6.12: 2 connects and 4 reuses for these 6 requests)."""
    results = {}
    for kind in ("haproxy", "lb"):
        servers = Servers(1)
        try:
            text = CFG.format(global_lines="{global_lines}", fe_lines="",
                              be_lines="    dispatch 127.0.0.1:@@s1@@\n    http-reuse always",
                              servers="")
            script = [(0, "/a")] * 3 + [(1, "/b")] * 2 + [(0, "/c")]
            got, rows = run_script(kind, servers, text, script, stats=True)
            results[kind] = got, (rows["be", "BACKEND"]["connect"], rows["be", "BACKEND"]["reuse"])
        finally:
            servers.close()
    assert results["lb"] == results["haproxy"]
    assert results["lb"] == (["200 s1#1"] * 3 + ["200 s1#2"] * 2 + ["200 s1#1"], ("2", "4"))


@needs_haproxy
@pytest.mark.parametrize(("line", "second"), [
    ("", "s1"),  # waits for its last server
    ("    max-keep-alive-queue 1", "s1"),
    ("    max-keep-alive-queue 0", "s2"),  # full: load balanced instead
    ("    max-keep-alive-queue -1", "s1"),
])
def test_max_keep_alive_queue_like_haproxy(line: str, second: str) -> None:
    """s1 takes one request at a time; client A owns a connection to it, client B
    holds its slot with a slow request when A asks again."""
    for kind in ("haproxy", "lb"):
        servers = Servers(2)
        try:
            text = CFG.format(global_lines="", fe_lines="",
                              be_lines="    balance first\n    http-reuse never\n"
                                       "    option prefer-last-server\n" + line,
                              servers=servers.lines(" maxconn 1"))
            px: Any = (Haproxy(text, servers.ports, single_thread=True) if kind == "haproxy"
                       else LbThread(text, ports=servers.ports))
            with px, socket.create_connection(("127.0.0.1", px.ports["fe"]), 10) as a, \
                    socket.create_connection(("127.0.0.1", px.ports["fe"]), 10) as b:
                assert _get(a, "/a") == (200, "s1")
                slow: list[tuple[int, str]] = []
                t = threading.Thread(target=lambda out=slow, c=b: out.append(_get(c, "/slow")))
                t.start()
                deadline = time.monotonic() + 5
                while not any(r.path == "/slow" for r in servers.backends[0].requests):
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
                assert (kind, _get(a, "/b")) == (kind, (200, second))
                t.join(5)
                assert slow == [(200, "s1")]
        finally:
            servers.close()


def test_the_client_leaving_resets_the_connections_it_owns() -> None:
    """Each owned connection is closed with a reset once its client is gone."""
    with StubbornBackend() as be, LbThread(
            CFG.format(global_lines="", fe_lines="", be_lines="    http-reuse never",
                       servers="    server s1 127.0.0.1:@@s1@@"),
            ports={"s1": be.port}) as px:
        with socket.create_connection(("127.0.0.1", px.ports["fe"]), 10) as c:
            for _ in range(3):
                c.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                got = b""
                while not got.endswith(b"ok"):
                    got += c.recv(65536)
            time.sleep(0.2)
            assert be.ends == []  # one connection, kept for all three
        assert be.wait_ends(1) == ["reset"]
        assert be.accepted == 1


def test_an_owned_connection_its_server_closed_is_replaced() -> None:
    """A server that closes an idle connection its client owns costs nothing: the
    next request opens another."""
    from tests.lbproc import RawBackend

    def once_then_close(c: socket.socket, be: RawBackend) -> None:
        be.recv_head(c)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Server: s1\r\n\r\nok")
        time.sleep(0.1)
        c.close()

    with RawBackend(once_then_close) as be, LbThread(
            CFG.format(global_lines="", fe_lines="",
                       be_lines="    http-reuse never\n    option prefer-last-server",
                       servers="    server s1 127.0.0.1:@@s1@@"),
            ports={"s1": be.port}) as px:
        with socket.create_connection(("127.0.0.1", px.ports["fe"]), 10) as c:
            assert _get(c, "/a") == (200, "s1")
            time.sleep(0.4)
            assert _get(c, "/b") == (200, "s1")
        assert be.accepted == 2


@pytest.mark.parametrize(("status", "headers", "binds"), [
    (401, [(b"www-authenticate", b"NTLM")], True),
    (401, [(b"www-authenticate", b"ntlm TlRMTVNTUAABAAAAB4IIog==")], True),
    (401, [(b"www-authenticate", b"Negotiate")], True),
    (401, [(b"www-authenticate", b"Nego2")], True),
    (401, [(b"www-authenticate", b"Basic realm=\"x\", NTLM")], True),
    (401, [(b"www-authenticate", b"Basic realm=\"x\""), (b"www-authenticate", b"NTLM")],
     True),
    (401, [(b"www-authenticate", b"Basic realm=\"NTLM\"")], False),
    (401, [(b"www-authenticate", b"Bearer")], False),
    (401, [(b"proxy-authenticate", b"NTLM")], False),
    (407, [(b"proxy-authenticate", b"Negotiate")], True),
    (407, [(b"www-authenticate", b"NTLM")], False),
])
def test_offers_connection_auth(status: int, headers: list[tuple[bytes, bytes]],
                                binds: bool) -> None:
    assert offers_connection_auth(status, headers) is binds


CONFIG_TEXTS = [
    "backend b\n max-keep-alive-queue\n", "backend b\n max-keep-alive-queue 1x\n",
    "backend b\n max-keep-alive-queue 0x1g\n", "backend b\n max-keep-alive-queue 08\n",
    "backend b\n max-keep-alive-queue -1 3\n",
    "frontend f\n bind 127.0.0.1:18102\n max-keep-alive-queue 3\n",
    "backend b\n max-session-srv-conns\n", "backend b\n max-session-srv-conns 3\n",
    "frontend f\n bind 127.0.0.1:18102\n max-session-srv-conns x\n",
    "defaults\n max-session-srv-conns -5\n",
    "frontend f\n bind 127.0.0.1:18102\n option prefer-last-server\n",
    "backend b\n option prefer-last-server x\n", "backend b\n no option prefer-last-server\n",
]


@needs_haproxy
@pytest.mark.parametrize("text", CONFIG_TEXTS)
def test_keywords_checked_like_haproxy(tmp_path, capsys, text: str) -> None:  # type: ignore[no-untyped-def]
    head = "defaults\n mode http\n timeout client 1s\n timeout server 1s\n timeout connect 1s\n"
    assert_text_like_haproxy(tmp_path, capsys, head + text)


def test_settings_reach_the_model() -> None:
    from lb.config import load_text
    head = "defaults\n mode http\n timeout client 1s\n timeout server 1s\n timeout connect 1s\n"
    res = load_text(head + " max-session-srv-conns 2\n max-keep-alive-queue 4\n"
                    "frontend f\n bind 127.0.0.1:18102\n default_backend b\n"
                    "backend b\n option prefer-last-server\n server s 127.0.0.1:80\n", "t")
    assert res.config is not None
    px = {p.name: p for p in res.config.proxies}
    assert px["f"].max_session_srv_conns == 2
    assert px["b"].max_ka_queue == 5
    assert px["b"].options.prefer_last_server
    assert not px["f"].options.prefer_last_server


def test_a_connection_upgraded_to_a_tunnel_is_no_longer_kept() -> None:
    """A WebSocket upgrade sent on an owned connection takes it (a reuse); from the
    101 on it is the tunnel's, and its client's list of kept connections forgets it
    (closing the client later must not touch the tunnel's socket again)."""
    from tests.lbproc import RawBackend

    def http_then_echo(c: socket.socket, be: RawBackend) -> None:
        while True:
            head = be.recv_head(c)
            if not head.endswith(b"\r\n\r\n"):
                return
            if b"upgrade: websocket" in head.lower():
                c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          b"Connection: Upgrade\r\n"
                          b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
                while data := c.recv(65536):
                    c.sendall(data)
                return
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Server: s1\r\n\r\nok")

    with RawBackend(http_then_echo) as be, LbThread(
            CFG.format(global_lines="", fe_lines="", be_lines="    http-reuse never",
                       servers="    server s1 127.0.0.1:@@s1@@"),
            ports={"s1": be.port}) as px:
        with socket.create_connection(("127.0.0.1", px.ports["fe"]), 10) as c:
            assert _get(c, "/a") == (200, "s1")
            c.sendall(b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                      b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
            got = b""
            while b"\r\n\r\n" not in got:
                got += c.recv(65536)
            assert got.startswith(b"HTTP/1.1 101")
            c.sendall(b"ping")
            echoed = b""
            while len(echoed) < 4:
                echoed += c.recv(65536)
            assert echoed == b"ping"
            conn = px.txns[-1].conn
            assert be.accepted == 1  # the upgrade went on the kept connection
            assert not conn.srv_conns  # ... which the tunnel took over
        assert be.accepted == 1


def test_take_passes_over_what_cannot_carry_a_request() -> None:
    """lb.proxy.private.take: only an idle, open connection to that server, within
    `timeout server`; one past it is closed on the way."""
    from types import SimpleNamespace as NS

    from lb.proxy import private

    class Transport:
        def __init__(self, closing: bool = False) -> None:
            self.closing = closing

        def is_closing(self) -> bool:
            return self.closing

    closed: list[str] = []

    def kept(name: str, srv: object, **kw: Any) -> Any:
        sc = NS(name=name, srv=srv, txn=None, closed=False, transport=Transport(),
                idle_since=100.0)

        def close_done() -> None:
            closed.append(name)
            sc.closed = True
        sc.close_done = close_done
        for k, v in kw.items():
            setattr(sc, k, v)
        return sc

    s1, s2 = object(), object()
    conn = NS(srv_conns=[
        kept("other-server", s2), kept("busy", s1, txn=object()),
        kept("closed", s1, closed=True), kept("no-transport", s1, transport=None),
        kept("closing", s1, transport=Transport(closing=True)),
        kept("too-old", s1, idle_since=80.0), kept("good", s1)])
    assert private.take(conn, s1, 10.0, 100.5).name == "good"
    assert closed == ["too-old"]
    conn.srv_conns.append(kept("old-but-no-timeout", s1, idle_since=1.0))
    conn.srv_conns.remove(next(sc for sc in conn.srv_conns if sc.name == "good"))
    assert private.take(conn, s1, None, 1000.0).name == "old-but-no-timeout"
