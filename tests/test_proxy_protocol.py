"""The PROXY protocol: `bind ... accept-proxy` reads the header a connection starts
with, `server ... send-proxy` / `send-proxy-v2` write one before a server
connection's first byte, and a health check of such a server sends its own.

Seen on HAProxy 2.6.12 (127.0.0.1, these configs; each case runs both):
- v1 and v2 headers give the client's address (`option forwardfor`) and the
  destination (`dst`, `dst_port`); a v2 LOCAL or a v1 UNKNOWN header keeps the
  connection's own; bytes that are no header close the connection unanswered, with
  a reset, and one line in the log naming the frontend, the listener and why.
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
import re
import socket
import struct
import time
from typing import Any

import pytest

from lb.http import proxyproto
from tests.lbproc import LbProcess, RawBackend, raw_request
from tests.support_e2e import HAPROXY, UdpLog, answer_ok, lb_or_haproxy
from tests.test_config_haproxy_diff import assert_text_like_haproxy

pytestmark = pytest.mark.timeout(60)

KINDS = ["lb", "haproxy"] if os.path.exists(HAPROXY) else ["lb"]

V2 = (proxyproto.SIGNATURE + b"\x21\x11\x00\x0c" + socket.inet_aton("1.2.3.4")
      + socket.inet_aton("5.6.7.8") + struct.pack("!HH", 1111, 2222))
REQUEST = b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n"
CLOSE_REQUEST = b"GET /x HTTP/1.1\r\nConnection: close\r\nHost: x\r\n\r\n"

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
    """Everything the proxy answers until it closes (a reset ends it too)."""
    return raw_request(port, data, timeout=5)


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


CHECK_CFG = """
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
    server s1 127.0.0.1:@@s1@@ {options} check inter 200
"""


@pytest.mark.parametrize(("options", "header"), [
    # HAProxy 2.6.12 starts each check connection with a v2 LOCAL header ...
    ("send-proxy-v2", proxyproto.V2_LOCAL),
    # ... with the `proxy-v2-options` TLVs that name no client (CRC32C, SSL), not
    # UNIQUE_ID or AUTHORITY: the bytes HAProxy sent for this server line
    ("send-proxy-v2 proxy-v2-options crc32c,ssl,unique-id,authority",
     proxyproto.SIGNATURE + b" \x00\x00\x0f\x03\x00\x04\x88\x9d\xa1\xdf \x00\x05\x00\x00\x00\x00\x00"),
])
def test_checks_of_a_send_proxy_v2_server_send_a_local_header(options: str,
                                                              header: bytes) -> None:
    with RawBackend(_recorder) as srv, LbProcess(CHECK_CFG.format(options=options),
                                                 {"s1": srv.port}):
        deadline = time.monotonic() + 5
        while not [h for h in srv.received if h] and time.monotonic() < deadline:
            time.sleep(0.05)
    got = [h for h in srv.received if h]
    assert got and got[0] == header + b"GET /chk HTTP/1.0\r\n\r\n", got


# ---------------------------------------------------------------- the parser


def _v2(cmd: int, fam: int, body: bytes) -> bytes:
    return proxyproto.SIGNATURE + bytes((0x20 | cmd, fam)) + struct.pack("!H", len(body)) + body


def _tlv(kind: int, value: bytes) -> bytes:
    return bytes((kind,)) + struct.pack("!H", len(value)) + value


IP4 = socket.inet_aton("1.2.3.4") + socket.inet_aton("5.6.7.8") + struct.pack("!HH", 11, 22)


def _with_crc(body: bytes, good: bool = True) -> bytes:
    """A v2 header whose CRC32C TLV is right (or off by one)."""
    header = _v2(1, 0x11, body + _tlv(proxyproto.TLV_CRC32C, b"\0" * 4))
    crc = proxyproto.crc32c(header) + (0 if good else 1)
    return header[:-4] + (crc & 0xFFFFFFFF).to_bytes(4, "big")


@pytest.mark.parametrize(("data", "want"), [
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nrest", ("1.2.3.4", 1, "5.6.7.8", 2, 32)),
    (V2 + b"rest", ("1.2.3.4", 1111, "5.6.7.8", 2222, 28)),
    (_v2(1, 0x11, IP4 + _tlv(0x01, b"h2") + _tlv(0xE0, b"x")), ("1.2.3.4", 11, "5.6.7.8", 22, 37)),
    (_with_crc(IP4), ("1.2.3.4", 11, "5.6.7.8", 22, 35)),
    (b"PROXY TCP4 1.2.3.4", None),
    (b"PROX", None),
    (proxyproto.SIGNATURE[:7], None),
    (V2[:20], None),
    (b"hello\r\n", proxyproto.TRUNCATED),  # short, and neither header's start
    (b"GET / HTTP/1.1\r\n", proxyproto.NOT_PROXY),
    (b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", proxyproto.BAD_PROTO),
    (b"PROXY TCP4\r\n", proxyproto.BAD_PROTO),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n", proxyproto.BAD_HDR),
    (b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n", proxyproto.BAD_HDR),
    (b"PROXY TCP4 " + b"x" * 120, proxyproto.BAD_HDR),
    (proxyproto.SIGNATURE + b"\x31\x11\x00\x00", proxyproto.NOT_PROXY),  # version 3
    (_v2(2, 0x11, IP4), proxyproto.BAD_HDR),  # command 2
    (proxyproto.SIGNATURE + b"\x21\x11\x00\x04abcd", proxyproto.BAD_HDR),
    (_v2(1, 0x00, b""), proxyproto.BAD_HDR),  # PROXY over UNSPEC, UDP, unix: refused
    (_v2(1, 0x12, IP4), proxyproto.BAD_HDR),
    (_v2(1, 0x31, bytes(216)), proxyproto.BAD_HDR),
])
def test_parse(data: bytes, want: object) -> None:
    res = proxyproto.parse(data)
    if isinstance(res, proxyproto.Header):
        assert not res.local and res.error is None
        assert (res.src, res.sport, res.dst, res.dport, res.size) == want
    else:
        assert res == want


@pytest.mark.parametrize("tlvs", [
    b"\x01\x00\x09ab",  # a TLV longer than the header
    b"\x01\x00",  # half a TLV head
    _tlv(proxyproto.TLV_CRC32C, b"\0\0\0"),  # a CRC32C of 3 bytes
    _tlv(proxyproto.TLV_AUTHORITY, b"a" * 256),
    _tlv(proxyproto.TLV_UNIQUE_ID, b"a" * 129),
])
def test_parse_bad_tlvs(tlvs: bytes) -> None:
    """The addresses are read (HAProxy logs the header's client), the header refused."""
    res = proxyproto.parse(_v2(1, 0x11, IP4 + tlvs))
    assert isinstance(res, proxyproto.Header)
    assert (res.src, res.error) == ("1.2.3.4", proxyproto.BAD_HDR)
    res = proxyproto.parse(_with_crc(IP4, good=False))
    assert isinstance(res, proxyproto.Header) and res.error == proxyproto.BAD_HDR


def test_parse_refuses_a_v2_header_over_the_limit() -> None:
    header = _v2(1, 0x11, IP4 + _tlv(0xE0, b"x" * 100))
    assert isinstance(proxyproto.parse(header), proxyproto.Header)
    assert proxyproto.parse(header[:16], limit=len(header) - 1) == proxyproto.TRUNCATED
    assert proxyproto.parse(header, limit=len(header)) is not proxyproto.TRUNCATED


def test_crc32c() -> None:
    assert proxyproto.crc32c(b"123456789") == 0xE3069283  # the standard check value
    assert proxyproto.crc32c(b"") == 0


def test_headers_written() -> None:
    assert proxyproto.v1("1.2.3.4", 1, "5.6.7.8", 2) == b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"
    # one address IPv6, the other IPv4: both IPv6, the IPv4 one mapped (HAProxy 2.6.12
    # after `http-request set-src` made the client ::5: `PROXY TCP6 ::5
    # ::ffff:127.0.0.1 <port> <port>`, and the same addresses in a v2 TCP6 header)
    assert proxyproto.v1("::5", 1, "127.0.0.1", 2) == b"PROXY TCP6 ::5 ::ffff:127.0.0.1 1 2\r\n"
    assert proxyproto.v2("::5", 1, "127.0.0.1", 2) == (
        proxyproto.SIGNATURE + b"\x21\x21\x00\x24" + socket.inet_pton(socket.AF_INET6, "::5")
        + socket.inet_pton(socket.AF_INET6, "::ffff:127.0.0.1") + struct.pack("!HH", 1, 2))
    assert proxyproto.v1("unix", 0, "127.0.0.1", 2) == b"PROXY UNKNOWN\r\n"
    assert proxyproto.v2("1.2.3.4", 1111, "5.6.7.8", 2222) == V2
    assert len(proxyproto.v2("::1", 1, "::2", 2)) == 16 + 36
    assert proxyproto.v2("unix", 0, "1.2.3.4", 2) == proxyproto.V2_LOCAL


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


# ---------------------------------------------------------------- refused headers

LOG_CFG = """
defaults
    mode {mode}
    log 127.0.0.1:{log} local0
    option {option}
    {extra}
    timeout connect 2s
    timeout client 1s
    timeout server 2s
frontend fe
    bind 127.0.0.1:@@fe@@ accept-proxy
    bind 127.0.0.1:@@named@@ accept-proxy name pub
    bind 127.0.0.1:@@numbered@@ accept-proxy id 9
    default_backend be
backend be
    server s1 127.0.0.1:@@s1@@
"""

# what the client sends, then (how the connection ends, HAProxy's line). Seen on
# HAProxy 2.6.12: a refused header is logged as `<client>:<port> [<accept date>]
# <frontend>/<listener>: <why>` and nothing else (no request line, no counter), and
# closed with a reset when bytes were received (HAProxy leaves them unread).
REFUSED = {
    "nothing": (b"", "FIN", proxyproto.EMPTY),
    "short junk": (b"hello\r\n", "RST", proxyproto.TRUNCATED),
    "a request": (REQUEST, "RST", proxyproto.NOT_PROXY),
    "v1 protocol": (b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n" + REQUEST, "RST", proxyproto.BAD_PROTO),
    "v1 address": (b"PROXY TCP4 ::1 ::1 1 2\r\n" + REQUEST, "RST", proxyproto.BAD_HDR),
    "v2 version": (proxyproto.SIGNATURE + b"\x31\x11\x00\x0c" + IP4 + REQUEST, "RST",
                   proxyproto.NOT_PROXY),
    "v2 command": (_v2(2, 0x11, IP4) + REQUEST, "RST", proxyproto.BAD_HDR),
    "v2 over UNSPEC": (_v2(1, 0x00, b"") + REQUEST, "RST", proxyproto.BAD_HDR),
    "v2 TLV overrun": (_v2(1, 0x11, IP4 + b"\x01\x00\x09ab") + REQUEST, "RST",
                       proxyproto.BAD_HDR),
    "v2 CRC32C": (_with_crc(IP4, good=False) + REQUEST, "RST", proxyproto.BAD_HDR),
    # HAProxy reads the header within one 16 KiB buffer: one announcing more is cut
    "v2 over 16 KiB": (_v2(1, 0x11, IP4 + _tlv(0xE0, b"x" * 16400)) + REQUEST, "RST",
                       proxyproto.TRUNCATED),
}


def _refused(port: int, data: bytes) -> str:
    """Send ``data`` (or half-close at once) and tell how the connection ended."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        try:
            if data:
                c.sendall(data)  # (a large one may meet the reset already)
            else:
                c.shutdown(socket.SHUT_WR)
            got = c.recv(65536)
        except ConnectionResetError:
            return "RST"
    return "FIN" if got == b"" else got.decode(errors="replace")


def _log_lines(log: UdpLog, timeout: float = 0.5) -> list[str]:
    """Every line the receiver has, without its syslog header and the client's port
    and date (they differ between runs)."""
    out = []
    log.sock.settimeout(timeout)
    while True:
        try:
            data = log.sock.recv(65536).decode()
        except TimeoutError:
            return out
        line = data.split(": ", 1)[1].strip()
        out.append(re.sub(r"^(\S+):\d+ \[[^]]+\] ", r"\1 ", line))


@pytest.mark.parametrize("kind", KINDS)
def test_refused_headers_are_logged_and_reset(kind: str) -> None:
    log = UdpLog()
    cfg = LOG_CFG.format(mode="http", log=log.port, option="httplog", extra="")
    try:
        with RawBackend(answer_ok) as srv, lb_or_haproxy(kind, cfg, {"s1": srv.port}) as px:
            for name, (data, end, why) in REFUSED.items():
                assert _refused(px.ports["fe"], data) == end, name
                who = "1.2.3.4" if "TLV" in name or "CRC" in name else "127.0.0.1"
                assert _log_lines(log) == [f"{who} fe/1: {why}"], name
            # the listener is named by its `name`, else its number (`id`, or in order)
            assert _refused(px.ports["named"], REQUEST) == "RST"
            assert _refused(px.ports["numbered"], REQUEST) == "RST"
            assert _log_lines(log) == [f"127.0.0.1 fe/pub: {proxyproto.NOT_PROXY}",
                                       f"127.0.0.1 fe/9: {proxyproto.NOT_PROXY}"]
            # a good header with a right CRC32C TLV is served
            got = _exchange(px.ports["fe"], _with_crc(IP4) + REQUEST.replace(
                b"Host", b"Connection: close\r\nHost"))
            assert got.startswith(b"HTTP/1.1 200"), got
            assert srv.accepted == 1
            (served,) = _log_lines(log)
            assert served.startswith("1.2.3.4 fe be/s1 "), served
            if kind == "lb":  # every connection counted; one session, one request
                c = px.rt.frontends["fe"].counters
                n = len(REFUSED) + 3
                assert (c.conn_tot, c.stot, c.req_tot, c.ereq, c.hrsp_4xx) == (n, 1, 1, 0, 0)
                _no_connection_left(px)
            # silence until `timeout client`: a FIN
            with socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5) as c:
                assert c.recv(10) == b""
            assert _log_lines(log) == [f"127.0.0.1 fe/1: {proxyproto.TIMEOUT}"]
            # a client that resets before sending anything
            c = socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
            assert _log_lines(log) == [f"127.0.0.1 fe/1: {proxyproto.ABORT}"]
            if kind == "lb":
                _no_connection_left(px)
    finally:
        log.close()


def _no_connection_left(px: Any) -> None:
    """Every connection's accounting was undone (current connections, the
    frontend's, the listener's maxconn slots)."""
    rt = px.rt
    deadline = time.monotonic() + 5
    while rt.state.curr_conns and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (rt.state.curr_conns, rt.actconn, rt.frontends["fe"].st.conns) == (0, 0, 0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("mode", "option", "extra", "want"), [
    # (the lines for a silent half-close, then for a request: priority and text)
    ("tcp", "tcplog", "", [("134", proxyproto.EMPTY), ("134", proxyproto.NOT_PROXY)]),
    ("http", "httplog", "option dontlognull", [("134", proxyproto.NOT_PROXY)]),
    ("http", "httplog", "option log-separate-errors",
     [("131", proxyproto.EMPTY), ("131", proxyproto.NOT_PROXY)]),
    ("http", "dontlognull", "", []),  # a log target but no log format: no line
])
def test_refused_header_log_options(kind: str, mode: str, option: str, extra: str,
                                    want: list[tuple[str, str]]) -> None:
    log = UdpLog()
    cfg = LOG_CFG.format(mode=mode, log=log.port, option=option, extra=extra)
    try:
        with RawBackend(answer_ok) as srv, lb_or_haproxy(kind, cfg, {"s1": srv.port}) as px:
            assert _refused(px.ports["fe"], b"") == "FIN"
            assert _refused(px.ports["fe"], REQUEST) == "RST"
            got = []
            log.sock.settimeout(0.5)
            while True:
                try:
                    data = log.sock.recv(65536).decode()
                except TimeoutError:
                    break
                got.append((data[1:4], data.rsplit(": ", 1)[1].strip()))
            assert got == want
            assert srv.accepted == 0
    finally:
        log.close()


@pytest.mark.parametrize("kind", KINDS)
def test_tcp_mode_times_out_a_missing_header(kind: str) -> None:
    """`timeout client` bounds the wait for the header in `mode tcp` too (lb waited
    forever there before)."""
    log = UdpLog()
    cfg = LOG_CFG.format(mode="tcp", log=log.port, option="tcplog", extra="")
    try:
        with RawBackend(answer_ok) as srv, lb_or_haproxy(kind, cfg, {"s1": srv.port}) as px:
            with socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5) as c:
                t0 = time.monotonic()
                assert c.recv(10) == b""
                assert 0.8 < time.monotonic() - t0 < 3.5
            assert _log_lines(log) == [f"127.0.0.1 fe/1: {proxyproto.TIMEOUT}"]
            assert srv.accepted == 0
    finally:
        log.close()


# ---------------------------------------------------------------- proxy-v2-options

V2_OPTS_CFG = """
defaults
    mode {mode}
    timeout connect 5s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:@@fe@@ accept-proxy
    unique-id-format abc-%[src_port]
    default_backend be
backend be
    server s1 127.0.0.1:@@s1@@ {option}
"""

# a header from the proxy in front with AUTHORITY and UNIQUE_ID TLVs
WITH_TLVS = _v2(1, 0x11, IP4 + _tlv(proxyproto.TLV_AUTHORITY, b"h.com")
                + _tlv(proxyproto.TLV_UNIQUE_ID, b"front-id"))


def _sent_ahead(data: bytes) -> tuple[bytes, bytes]:
    """The v2 header the server got and what followed it."""
    assert data.startswith(proxyproto.SIGNATURE), data
    size = 16 + struct.unpack("!H", data[14:16])[0]
    return data[:size], data[size:]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("mode", "options", "tlvs"), [
    # (what follows the addresses, the CRC32C value aside: HAProxy 2.6.12's order is
    # CRC32C, AUTHORITY (passed on from the header received), UNIQUE_ID, SSL)
    ("http", "crc32c", [proxyproto.TLV_CRC32C]),
    ("http", "ssl,unique-id,crc32c,authority",
     [proxyproto.TLV_CRC32C, b"h.com", b"abc-11", proxyproto.SSL_NONE]),
    ("tcp", "unique-id", [b"abc-11"]),
    ("http", "cert-cn,cert-key", [proxyproto.SSL_NONE]),
])
def test_proxy_v2_options(kind: str, mode: str, options: str, tlvs: list[object]) -> None:
    cfg = V2_OPTS_CFG.format(mode=mode, option=f"send-proxy-v2 proxy-v2-options {options}")
    with RawBackend(_recorder) as srv, lb_or_haproxy(kind, cfg, {"s1": srv.port}) as px:
        _exchange(px.ports["fe"], WITH_TLVS + CLOSE_REQUEST)
        (got,) = [h for h in srv.received if h]
    header, rest = _sent_ahead(got)
    assert rest == CLOSE_REQUEST or rest.startswith(b"GET /x HTTP/1.1\r\n"), rest
    want = b""
    for t in tlvs:
        if t == proxyproto.TLV_CRC32C:
            want += header[28:35]  # (checked below, by parsing the header)
        elif t == proxyproto.SSL_NONE:
            want += proxyproto.SSL_NONE
        else:
            assert isinstance(t, bytes)
            kind_ = proxyproto.TLV_AUTHORITY if t == b"h.com" else proxyproto.TLV_UNIQUE_ID
            want += _tlv(kind_, t)
    assert header[12:16] == b"\x21\x11" + struct.pack("!H", 12 + len(want))
    assert header[16:28] == IP4 and header[28:] == want, header
    parsed = proxyproto.parse(header)
    assert isinstance(parsed, proxyproto.Header) and parsed.error is None  # the CRC is right


@pytest.mark.parametrize("kind", KINDS)
def test_proxy_v2_options_alone_send_v1(kind: str) -> None:
    """`proxy-v2-options` without `send-proxy-v2`: HAProxy 2.6.12 sends a v1 line."""
    cfg = V2_OPTS_CFG.format(mode="http", option="proxy-v2-options crc32c")
    with RawBackend(_recorder) as srv, lb_or_haproxy(kind, cfg, {"s1": srv.port}) as px:
        _exchange(px.ports["fe"], V2 + CLOSE_REQUEST)
        (got,) = [h for h in srv.received if h]
    assert got.startswith(b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\nGET /x HTTP/1.1\r\n"), got


@pytest.mark.skipif(not os.path.exists(HAPROXY), reason="needs haproxy")
def test_proxy_v2_options_messages_match_haproxy(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert_text_like_haproxy(tmp_path, capsys, (
        "defaults\n mode http\n timeout client 1s\n timeout server 1s\n timeout connect 1s\n"
        "frontend f\n bind 127.0.0.1:18080\n default_backend b\n"
        "backend b\n server s1 127.0.0.1:1 proxy-v2-options crc32c,foo\n"
        " server s2 127.0.0.1:1 proxy-v2-options\n"
        " server s3 127.0.0.1:1 proxy-v2-options crc32c,\n"
        " server s4 127.0.0.1:1 send-proxy-v2 proxy-v2-options ssl,cert-cn,ssl-cipher,"
        "cert-sig,cert-key,authority,crc32c,unique-id\n"))


FETCH_CFG = """
defaults
    mode http
    timeout connect 5s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:@@fe@@ accept-proxy
    bind 127.0.0.1:@@plain@@
    http-request return status 200 content-type text/plain lf-string "%[fc_rcvd_proxy]|%[fc_pp_authority]|%[fc_pp_unique_id]"
"""


@pytest.mark.parametrize("kind", KINDS)
def test_fetches_of_the_header_received(kind: str) -> None:
    """`fc_rcvd_proxy`, and the AUTHORITY and UNIQUE_ID TLVs of a v2 header."""
    with lb_or_haproxy(kind, FETCH_CFG) as px:
        for port, header, want in (
                (px.ports["fe"], WITH_TLVS, b"1|h.com|front-id"),
                (px.ports["fe"], V2, b"1||"),
                (px.ports["fe"], b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", b"1||"),
                (px.ports["plain"], b"", b"0||")):
            got = _exchange(port, header + CLOSE_REQUEST)
            assert got.startswith(b"HTTP/1.1 200") and got.endswith(b"\r\n\r\n" + want), got
