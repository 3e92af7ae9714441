"""`%U`: the bytes a request took from the client, head and body.

Before session 30 lb left the request target (and one byte) out of it: a request
with a 2,000-byte target logged 42. HAProxy 2.6.12 counts its HTX sizes, which run
a few bytes over the wire's (seen on 127.0.0.1: 51 for a 44-byte GET, 2,051 for the
same with a 2,000-byte target); lb counts the wire's
exactly, as it does for `%B` (docs/logging.md).
"""

from __future__ import annotations

import os
import re
import socket
import time

import pytest

from tests.lbproc import RawBackend
from tests.support_e2e import HAPROXY, UdpLog, answer_ok, lb_or_haproxy
from tests.test_lifecycle import read_response

pytestmark = pytest.mark.timeout(60)

KINDS = ["lb", "haproxy"] if os.path.exists(HAPROXY) else ["lb"]

CFG = """
defaults
    mode http
    log 127.0.0.1:{port} local0
    log-format "U=%U"
    timeout connect 5s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:@@fe@@
    default_backend be
backend be
    server s1 127.0.0.1:@@s1@@
"""

REQUESTS = [
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Client: alice\r\n\r\n",
    b"GET /" + b"x" * 2000 + b" HTTP/1.1\r\nHost: x\r\nX-Client: alice\r\n\r\n",
]


@pytest.mark.parametrize("kind", KINDS)
def test_request_bytes_logged(kind: str) -> None:
    log = UdpLog()
    with RawBackend(answer_ok) as srv, \
            lb_or_haproxy(kind, CFG.format(port=log.port), {"s1": srv.port}) as px:
        with socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5) as c:
            for req in REQUESTS:
                c.sendall(req)
                assert read_response(c).startswith(b"HTTP/1.1 200")
        got: list[int] = []
        deadline = time.monotonic() + 5
        log.sock.settimeout(0.5)
        while len(got) < len(REQUESTS) and time.monotonic() < deadline:
            try:
                m = re.search(rb"U=(\d+)", log.sock.recv(65536))
            except TimeoutError:
                continue
            if m and m[1] != b"0":  # (not the readiness probe's empty connection)
                got.append(int(m[1]))
    wire = [len(r) for r in REQUESTS]
    if kind == "lb":
        assert got == wire
    else:
        assert [u - w for u, w in zip(got, wire, strict=True)] == [7, 7]
