"""The PROXY protocol: `bind ... accept-proxy` reads the header a connection starts
with, `server ... send-proxy` / `send-proxy-v2` write one before a server
connection's first byte, and a health check of such a server sends its own.

Seen on HAProxy 2.6.12 (127.0.0.1, these configs; each case runs both):
- v1 and v2 headers give the client's address (`option forwardfor`) and the
  destination (`dst`, `dst_port`); a v2 LOCAL or a v1 UNKNOWN header keeps the
  connection's own; bytes that are no header close the connection unanswered.
- `tcp-request connection` rules see the proxy in front, `tcp-request session` rules
  the client the header names.
- `send-proxy-v2` writes the 28-byte IPv4 header with no TLV, `send-proxy` the text
  line; checks of a `send-proxy-v2` server start with a v2 LOCAL header.
Left as they are: HAProxy fails a header split over two reads (it peeks at the
socket); lb waits for the rest. HAProxy reuses a send-proxy server connection for
the same client; lb opens a new one (with its header) for each exchange.
"""

from __future__ import annotations

import os
import socket
import struct
import time

import pytest

from lb.http import proxyproto
from tests.lbproc import LbProcess, RawBackend
from tests.support_e2e import HAPROXY, answer_ok, lb_or_haproxy
from tests.test_config_haproxy_diff import assert_text_like_haproxy

pytestmark = pytest.mark.timeout(60)

KINDS = ["lb", "haproxy"] if os.path.exists(HAPROXY) else ["lb"]

V2 = (proxyproto.SIGNATURE + b"\x21\x11\x00\x0c" + socket.inet_aton("1.2.3.4")
      + socket.inet_aton("5.6.7.8") + struct.pack("!HH", 1111, 2222))
REQUEST = b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n"

ACCEPT_CFG = """
defaults
    mode http
    timeout connect 5s
    timeout client 2s
    timeout server 5s
frontend fe
    bind 127.0.0.1:@@fe@@ accept-proxy
    option forwardfor
    tcp-request connection reject if { src 1.2.3.4 }
    tcp-request session reject if { src 9.9.9.9 }
    http-request set-header X-Dst %[dst]:%[dst_port]
    default_backend be
backend be
    server s1 127.0.0.1:@@s1@@
"""

# (header, what the server is told: X-Forwarded-For and X-Dst; None: closed unanswered)
ACCEPT_CASES = {
    "v1": (b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n", ("1.2.3.4", "5.6.7.8:2222")),
    "v2": (V2, ("1.2.3.4", "5.6.7.8:2222")),
    "v1-tcp6": (b"PROXY TCP6 ::1 ::2 1 2\r\n", ("::1", "::2:2")),
    "v2-local": (proxyproto.V2_LOCAL, ("127.0.0.1", "own")),
    "v1-unknown": (b"PROXY UNKNOWN\r\n", ("127.0.0.1", "own")),
    "no-header": (b"", None),
    "session-rule": (b"PROXY TCP4 9.9.9.9 5.6.7.8 1111 2222\r\n", None),
}


def _exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(data)
        got = b""
        try:
            while chunk := c.recv(65536):
                got += chunk
        except ConnectionResetError:
            pass
    return got


def _told(head: bytes, name: bytes) -> str | None:
    for line in head.split(b"\r\n"):
        if line.lower().startswith(name + b":"):
            return line.split(b":", 1)[1].strip().decode()
    return None


@pytest.mark.parametrize("kind", KINDS)
def test_accept_proxy(kind: str) -> None:
    with RawBackend(answer_ok) as srv, \
            lb_or_haproxy(kind, ACCEPT_CFG, {"s1": srv.port}) as px:
        port = px.ports["fe"]
        for name, (header, want) in ACCEPT_CASES.items():
            before = len(srv.received)
            got = _exchange(port, header + REQUEST.replace(b"Host", b"Connection: close\r\nHost"))
            heads = [h for h in srv.received[before:] if h]
            if want is None:
                assert b"HTTP/" not in got and heads == [], name
                continue
            assert got.startswith(b"HTTP/1.1 200"), (name, got)
            (head,) = heads
            xff, dst = want
            if dst == "own":
                dst = f"127.0.0.1:{port}"
            assert (_told(head, b"x-forwarded-for"), _told(head, b"x-dst")) == (xff, dst), name


def test_accept_proxy_header_in_pieces_and_silence() -> None:
    """lb waits for a header that comes in pieces; `timeout client` closes a
    connection that never sends one (silently: no 408 for a header)."""
    with RawBackend(answer_ok) as srv, lb_or_haproxy("lb", ACCEPT_CFG, {"s1": srv.port}) as px:
        with socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5) as c:
            for piece in (b"PROXY TCP4 1.2.3.4 5.6", b".7.8 1111 2222\r\nGET /x HTTP/1.1\r\n",
                          b"Connection: close\r\nHost: x\r\n\r\n"):
                c.sendall(piece)
                time.sleep(0.05)
            assert c.recv(65536).startswith(b"HTTP/1.1 200")
        assert _told(srv.received[-1], b"x-forwarded-for") == "1.2.3.4"
        with socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5) as c:
            t0 = time.monotonic()
            assert c.recv(65536) == b""  # closed by `timeout client 2s`, nothing sent
            assert 1.5 < time.monotonic() - t0 < 4


SEND_CFG = """
defaults
    mode {mode}
    timeout connect 5s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:@@fe@@ {accept}
    default_backend be
backend be
    server s1 127.0.0.1:@@s1@@ {option}
"""


def _recorder(c: socket.socket, be: RawBackend) -> None:
    c.settimeout(5)
    data = b""
    while not data.endswith(b"\r\n\r\n"):
        d = c.recv(65536)
        if not d:
            break
        data += d
    be.received.append(data)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    c.close()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("option", ["send-proxy", "send-proxy-v2"])
def test_send_proxy_http(kind: str, option: str) -> None:
    with RawBackend(_recorder) as srv, lb_or_haproxy(
            kind, SEND_CFG.format(mode="http", accept="", option=option),
            {"s1": srv.port}) as px:
        fe = px.ports["fe"]
        with socket.create_connection(("127.0.0.1", fe), timeout=5) as c:
            c.sendall(REQUEST)
            assert c.recv(65536).startswith(b"HTTP/1.1 200")
            cport = c.getsockname()[1]
        (got,) = [h for h in srv.received if h]
    if option == "send-proxy":
        header = f"PROXY TCP4 127.0.0.1 127.0.0.1 {cport} {fe}\r\n".encode()
    else:
        header = (proxyproto.SIGNATURE + b"\x21\x11\x00\x0c" + socket.inet_aton("127.0.0.1") * 2
                  + struct.pack("!HH", cport, fe))
    assert got.startswith(header + b"GET /x HTTP/1.1\r\n"), got


@pytest.mark.parametrize("kind", KINDS)
def test_tcp_mode_passes_the_client_on(kind: str) -> None:
    """accept-proxy in front, send-proxy-v2 behind: the server learns the client the
    first header named, then gets the client's bytes."""
    with RawBackend(_recorder) as srv, lb_or_haproxy(
            kind, SEND_CFG.format(mode="tcp", accept="accept-proxy", option="send-proxy-v2"),
            {"s1": srv.port}) as px:
        _exchange(px.ports["fe"], b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n" + REQUEST)
        (got,) = [h for h in srv.received if h]
    assert got == V2 + REQUEST


def test_send_proxy_connection_serves_one_client() -> None:
    """The header names the client, so lb never hands the connection to another
    exchange: the second request of a keep-alive client gets a new one, and header."""
    with RawBackend(answer_ok) as srv, lb_or_haproxy(
            "lb", SEND_CFG.format(mode="http", accept="", option="send-proxy"),
            {"s1": srv.port}) as px:
        with socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5) as c:
            for _ in range(2):
                c.sendall(REQUEST)
                assert c.recv(65536).startswith(b"HTTP/1.1 200")
        time.sleep(0.2)
    heads = [h for h in srv.received if h]
    assert len(heads) == 2 and srv.accepted == 2
    assert all(h.startswith(b"PROXY TCP4 127.0.0.1 127.0.0.1 ") for h in heads), heads


def test_checks_of_a_send_proxy_v2_server_send_a_local_header() -> None:
    """HAProxy 2.6.12 starts each check connection with a v2 LOCAL header."""
    cfg = """
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout check 1s
frontend fe
    bind 127.0.0.1:@@fe@@
    default_backend be
backend be
    option httpchk GET /chk
    server s1 127.0.0.1:@@s1@@ send-proxy-v2 check inter 200
"""
    with RawBackend(_recorder) as srv, LbProcess(cfg, {"s1": srv.port}):
        deadline = time.monotonic() + 5
        while not [h for h in srv.received if h] and time.monotonic() < deadline:
            time.sleep(0.05)
    got = [h for h in srv.received if h]
    assert got and got[0] == proxyproto.V2_LOCAL + b"GET /chk HTTP/1.0\r\n\r\n", got


# ---------------------------------------------------------------- the parser


@pytest.mark.parametrize(("data", "want"), [
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nrest", ("1.2.3.4", 1, "5.6.7.8", 2, 32)),
    (V2 + b"rest", ("1.2.3.4", 1111, "5.6.7.8", 2222, 28)),
    (b"PROXY TCP4 1.2.3.4", None),
    (proxyproto.SIGNATURE[:7], None),
    (V2[:20], None),
    (b"GET / HTTP/1.1\r\n", proxyproto.NOT_PROXY),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n", proxyproto.BAD_V1),
    (b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n", proxyproto.BAD_V1),
    (b"PROXY " + b"x" * 120, proxyproto.BAD_V1),
    (proxyproto.SIGNATURE + b"\x31\x11\x00\x00", proxyproto.BAD_V2),
    (proxyproto.SIGNATURE + b"\x21\x11\x00\x04abcd", proxyproto.BAD_V2),
])
def test_parse(data: bytes, want: object) -> None:
    res = proxyproto.parse(data)
    if isinstance(res, proxyproto.Header):
        assert not res.local
        assert (res.src, res.sport, res.dst, res.dport, res.size) == want
    else:
        assert res == want


def test_headers_written() -> None:
    assert proxyproto.v1("1.2.3.4", 1, "5.6.7.8", 2) == b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"
    assert proxyproto.v1("::1", 1, "1.2.3.4", 2) == b"PROXY UNKNOWN\r\n"
    assert proxyproto.v2("1.2.3.4", 1111, "5.6.7.8", 2222) == V2
    assert len(proxyproto.v2("::1", 1, "::2", 2)) == 16 + 36


EXPECT_CFG = """
defaults
    mode http
    timeout connect 5s
    timeout client 2s
    timeout server 5s
frontend fe
    bind 127.0.0.1:@@fe@@
    option forwardfor
    tcp-request connection expect-proxy layer4 if { src 127.0.0.1 } { dst_port @@fe@@ }
    default_backend be
frontend other
    bind 127.0.0.1:@@other@@
    option forwardfor
    tcp-request connection expect-proxy layer4 if { src 10.0.0.0/8 }
    default_backend be
backend be
    server s1 127.0.0.1:@@s1@@
"""


@pytest.mark.parametrize("kind", KINDS)
def test_expect_proxy_rule(kind: str) -> None:
    """`tcp-request connection expect-proxy layer4`: the connections the rule matches
    start with a header; the others are plain."""
    req = REQUEST.replace(b"Host", b"Connection: close\r\nHost")
    with RawBackend(answer_ok) as srv, lb_or_haproxy(kind, EXPECT_CFG, {"s1": srv.port}) as px:
        got = _exchange(px.ports["fe"], b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n" + req)
        assert got.startswith(b"HTTP/1.1 200"), got
        assert _told(srv.received[-1], b"x-forwarded-for") == "1.2.3.4"
        assert b"HTTP/" not in _exchange(px.ports["fe"], req)  # no header: closed
        got = _exchange(px.ports["other"], req)  # the rule does not match here
        assert got.startswith(b"HTTP/1.1 200"), got
        assert _told(srv.received[-1], b"x-forwarded-for") == "127.0.0.1"


@pytest.mark.skipif(not os.path.exists(HAPROXY), reason="needs haproxy")
def test_expect_proxy_messages_match_haproxy(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert_text_like_haproxy(tmp_path, capsys, (
        "defaults\n mode http\n timeout client 1s\n timeout server 1s\n timeout connect 1s\n"
        "frontend f\n bind 127.0.0.1:18080\n tcp-request connection expect-proxy\n"
        " tcp-request connection expect-proxy layer7\n"
        " tcp-request session expect-proxy layer4\n"
        " tcp-request content expect-proxy layer4\n default_backend b\n"
        "backend b\n server s 127.0.0.1:1\n"))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mode", ["http", "tcp"])
def test_client_gone_before_its_header_gets_nothing(kind: str, mode: str) -> None:
    """A client that half-closes before its PROXY header is whole is closed at once,
    unanswered: no 400 for a handshake (HAProxy 2.6.12 resets it, lb closes)."""
    cfg = SEND_CFG.format(mode=mode, accept="accept-proxy", option="")
    with RawBackend(answer_ok) as srv, lb_or_haproxy(kind, cfg, {"s1": srv.port}) as px:
        with socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5) as c:
            t0 = time.monotonic()
            c.sendall(b"PROXY TCP4 1.2.3.4")
            try:  # (HAProxy may have reset it already: it fails a header cut short)
                c.shutdown(socket.SHUT_WR)
                got = c.recv(65536)
            except OSError:  # ENOTCONN, ECONNRESET
                got = b""
            assert got == b"" and time.monotonic() - t0 < 1.5
        assert srv.accepted == 0
