"""`http-request early-hint`: 103 Early Hints responses, as HAProxy 2.6.12 sends them.

Observed on HAProxy 2.6.12 and compared here byte for byte where it is installed:
consecutive rules share one 103 until a rule that is not an `early-hint`, or one
with a condition, ends it; a failed condition drops only its own header; header
names go out in lower case, an empty value as `name: `; an HTTP/1.0 request gets
none; the 103s go out before whatever answers the request (the server, a `deny`, a
`return`); `%B` counts each 103 as HAProxy's HTX form weighs it.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import tempfile

import pytest

from tests.backends import WsBackend
from tests.lbproc import RawBackend
from tests.support_e2e import (
    HAPROXY,
    UdpLog,
    answer_ok,
    config_refusal,
    lb_or_haproxy,
    one_backend_config,
)

pytestmark = pytest.mark.timeout(60)

KINDS = ["lb", "haproxy"] if os.path.exists(HAPROXY) else ["lb"]

RULES = """\
    http-request early-hint Link "</style.css>; rel=preload; as=style"
    http-request early-hint link "</script.js>; rel=preload; as=script" if { path_beg /a }
    http-request early-hint x-after-cond "%[path]"
    http-request set-header x-mid 1
    http-request early-hint x-path "%[path]"
    http-request early-hint x-empty "%[req.hdr(nothere)]"
    http-request deny if { path_beg /deny }
    http-request return status 200 content-type text/plain string ok if { path_beg /ret }"""

REQUESTS = {
    "cond true": b"GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    "cond false": b"GET /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    "http/1.0": b"GET /a HTTP/1.0\r\nHost: h\r\n\r\n",
    "deny": b"GET /deny HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    "return": b"GET /ret HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    "keep-alive": (b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                   b"GET /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"),
}

HINT_ALL = (b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload; as=style\r\n\r\n"
            b"HTTP/1.1 103 Early Hints\r\nlink: </script.js>; rel=preload; as=script\r\n"
            b"x-after-cond: /a\r\n\r\n"
            b"HTTP/1.1 103 Early Hints\r\nx-path: /a\r\nx-empty: \r\n\r\n")


def _exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(request)
        got = b""
        while chunk := c.recv(65536):
            got += chunk
    return got


def test_hints_go_out_as_haproxy_sends_them() -> None:
    seen = {}
    for kind in KINDS:
        log = UdpLog()  # (one per proxy: lines() keeps what it read)
        try:
            text = one_backend_config(
                f"    log 127.0.0.1:{log.port} local0\n    option httplog\n{RULES}",
                "    http-request early-hint x-be be")
            with RawBackend(answer_ok) as srv, lb_or_haproxy(kind, text,
                                                             {"s1": srv.port}) as px:
                got = {k: _exchange(px.ports["fe"], r) for k, r in REQUESTS.items()}
                lines = log.lines(7)
        finally:
            log.close()
        assert len(lines) == 7
        # %B of the proxy's own replies (a proxied response's is lb's wire count, not
        # HAProxy's: docs/logging.md)
        sizes = {m.group(2): m.group(1) for m in (
            re.search(rb"\] \S+ \S+ \S+ \d+ (\d+) .*\"GET (/deny|/ret) ", line)
            for line in lines) if m}
        seen[kind] = (got, sizes)
    got, sizes = seen["lb"]
    assert sizes == {b"/deny": b"395", b"/ret": b"274"}  # the reply and three 103s
    assert got["cond true"].startswith(
        HINT_ALL + b"HTTP/1.1 103 Early Hints\r\nx-be: be\r\n\r\nHTTP/1.1 200 OK\r\n")
    assert got["cond true"].endswith(b"\r\n\r\nok")
    assert got["cond false"].startswith(
        b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload; as=style\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nx-after-cond: /b\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nx-path: /b\r\nx-empty: \r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nx-be: be\r\n\r\nHTTP/1.1 200 OK\r\n")
    assert got["http/1.0"].startswith(b"HTTP/1.1 200 OK\r\n")
    assert got["deny"].count(b" 103 ") == 3 and b"HTTP/1.1 403 Forbidden\r\n" in got["deny"]
    assert got["return"].count(b" 103 ") == 3 and got["return"].endswith(b"\r\n\r\nok")
    assert got["keep-alive"].count(b" 103 ") == 8 and got["keep-alive"].count(b" 200 OK") == 2
    if "haproxy" in seen:
        assert seen["lb"] == seen["haproxy"]


def test_a_websocket_upgrade_gets_its_hints_then_its_101() -> None:
    """HAProxy 2.6.12 sends the 103 before the 101 too, and the tunnel then works;
    a raw client reads both (a browser takes a 1xx before the 101)."""
    text = one_backend_config('    http-request early-hint link "</a.css>; rel=preload"')
    for kind in KINDS:
        with WsBackend() as ws, lb_or_haproxy(kind, text, {"s1": ws.port}) as px, \
                socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5) as c:
            c.sendall(b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      b"Sec-WebSocket-Version: 13\r\n\r\n")
            got = b""
            while got.count(b"\r\n\r\n") < 2:
                got += c.recv(65536)
            assert got.startswith(b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload"
                                  b"\r\n\r\nHTTP/1.1 101 "), (kind, got)
            c.sendall(b"\x81\x85\x00\x00\x00\x00hello")  # a masked text frame
            echo = got.split(b"\r\n\r\n", 2)[2]
            while len(echo) < 7:
                echo += c.recv(65536)
            assert echo == b"\x81\x05hello", kind


def test_an_early_hint_rule_in_a_config_checked_as_haproxy_does() -> None:
    d = tempfile.mkdtemp(prefix="lbtest-eh-")
    try:
        for args, want in (("", "expects exactly 2 arguments."),
                           ("link", "expects exactly 2 arguments."),
                           ("link a b", "found 'b'"),
                           ("link %[bogus]", "unknown fetch method 'bogus'")):
            path = os.path.join(d, "e.cfg")
            with open(path, "w") as f:
                f.write(one_backend_config(f"    http-request early-hint {args}")
                        .replace("@@fe@@", "18490").replace("@@s1@@", "18491"))
            lb = config_refusal([sys.executable, "-m", "lb"], path)
            assert want in lb, lb
            if os.path.exists(HAPROXY):
                assert lb == config_refusal([HAPROXY], path)
        with open(path, "w") as f:
            f.write(one_backend_config("", "    http-response early-hint link x")
                    .replace("@@fe@@", "18490").replace("@@s1@@", "18491"))
        assert "but got 'early-hint'" in config_refusal([sys.executable, "-m", "lb"], path)
    finally:
        for f in os.listdir(d):
            os.unlink(os.path.join(d, f))
        os.rmdir(d)
