"""`http-request set-src` and `set-src-port`, against HAProxy 2.6.12 (2026-11-25,
127.0.0.1): the client address the rest of the request sees (fetches, `%ci`/`%cp`,
later rules), for that request only; an address that does not parse changes
nothing, a port keeps its low 16 bits. Each case also runs HAProxy when installed."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.support_e2e import HAPROXY, UdpLog, lb_or_haproxy
from tests.test_config_haproxy_diff import assert_text_like_haproxy

pytestmark = pytest.mark.timeout(60)

HAVE_HAPROXY = os.path.exists(HAPROXY)
KINDS = ["lb", "haproxy"] if HAVE_HAPROXY else ["lb"]

HEAD = ("defaults\n mode http\n timeout client 1s\n timeout server 1s\n timeout connect 1s\n"
        "frontend f\n bind :18081\n")
CHECK_CASES = [HEAD + f" {stmt}\n" for stmt in (
    "http-request set-src", "http-request set-src nosuch", "http-request set-src src extra",
    "http-request set-src-port", "http-request set-src res.hdr(x)",
    "http-request set-src src,ipmask(24)")]


@pytest.mark.skipif(not HAVE_HAPROXY, reason="needs Debian's haproxy")
@pytest.mark.parametrize("text", CHECK_CASES)
def test_check_messages_match_haproxy(tmp_path: Path, capsys: Any, text: str) -> None:
    assert_text_like_haproxy(tmp_path, capsys, text)


CFG = """
defaults
    mode http
    log 127.0.0.1:@@log@@ local0
    log-format "%ci:%cp %HU"
    timeout connect 1s
    timeout client 5s
    timeout server 5s

frontend fe
    bind 127.0.0.1:@@fe@@
    http-request set-src hdr(x-forwarded-for) if { req.hdr(x-forwarded-for) -m found }
    http-request set-src-port hdr(x-port) if { req.hdr(x-port) -m found }
    http-request set-header x-seen "%[src] %ci"
    http-request return status 200 content-type text/plain lf-string "%[src] %ci %[req.hdr(x-seen)]"
"""

# (request headers, body HAProxy 2.6.12 answered, the port it logged: client's or this)
CASES = [
    (b"X-Forwarded-For: 10.1.2.3\r\n", b"10.1.2.3 10.1.2.3 10.1.2.3 10.1.2.3", None),
    (b"", b"127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.1", None),  # the next request: its own
    (b"X-Forwarded-For: bogus\r\n", b"127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.1", None),
    (b"X-Forwarded-For: 1.1.1.1, 2.2.2.2\r\n", b"2.2.2.2 2.2.2.2 2.2.2.2 2.2.2.2", None),
    (b"X-Forwarded-For: 2001:db8::1\r\nX-Port: 4242\r\n",
     b"2001:db8::1 2001:db8::1 2001:db8::1 2001:db8::1", 4242),
    (b"X-Port: 70000\r\n", b"127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.1", 4464),
    (b"X-Port: -1\r\n", b"127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.1", 65535),
]


def _read_reply(c: socket.socket) -> bytes:
    """One reply with a content-length: its body."""
    got = b""
    while True:
        head, sep, body = got.partition(b"\r\n\r\n")
        m = re.search(rb"content-length: (\d+)", head)
        if sep and m and len(body) >= int(m.group(1)):
            return body
        got += c.recv(4096)


@pytest.mark.parametrize("kind", KINDS)
def test_set_src_is_the_requests_address(kind: str) -> None:
    log = UdpLog()
    try:
        with lb_or_haproxy(kind, CFG, {"log": log.port}) as px:
            with socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5) as c:
                own_port = c.getsockname()[1]
                bodies = []
                for extra, _body, _port in CASES:
                    c.sendall(b"GET /r HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n")
                    bodies.append(_read_reply(c))
            lines: list[str] = []
            log.sock.settimeout(5)
            while len(lines) < len(CASES):  # (this format has no termination state)
                lines.append(log.sock.recv(65536).decode())
    finally:
        log.close()
    assert bodies == [body for _, body, _ in CASES]
    ports = [int(re.search(r":(\d+) /r", ln).group(1)) for ln in lines]  # type: ignore[union-attr]
    assert ports == [port or own_port for _, _, port in CASES]
