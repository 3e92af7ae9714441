"""`errorloc`, `errorloc302`, `errorloc303` and `http-error`: the bytes a client gets
for a backend with no server (503), as HAProxy 2.6.12 sends them, and HAProxy's texts
for bad input."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.lbproc import LbProcess
from tests.test_config_haproxy_diff import HAPROXY, assert_backend_lines_like_haproxy

CHECK_CASES = [
    "errorloc", "errorloc 503", "errorloc 999 /x", "errorloc302 abc /x",
    "errorloc303 503 /x extra", "http-error", "http-error status", "http-error status 999",
    "http-error status 503 bogus", "http-error status 503 string",
    "http-error status 503 content-type",
    "http-error status 503 string x errorfile {d}/e503.http",
    "http-error status 503 content-type text/plain",
    "http-error status 503 errorfile /nonexist",
    "http-error status 503 file {d}/e503.http content-type text/plain",
    "http-error status 503 hdr x", "http-error status 503 lf-string %[path]",
]

ERRORFILE = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\r\ncustom\n"


@pytest.mark.skipif(not os.path.exists(HAPROXY), reason="needs Debian's haproxy")
@pytest.mark.parametrize("stmt", CHECK_CASES)
def test_check_messages_match_haproxy(tmp_path: Path, capsys: Any, stmt: str) -> None:
    (tmp_path / "e503.http").write_bytes(ERRORFILE)
    assert_backend_lines_like_haproxy(tmp_path, capsys, " server s 127.0.0.1:80\n "
                                      + stmt.format(d=tmp_path))


CFG = """
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s

frontend fe
    bind 127.0.0.1:{fe}
    http-request deny if {{ path /deny }}
    use_backend b2 if {{ path_beg /b2 }}
    use_backend b3 if {{ path_beg /b3 }}
    use_backend b4 if {{ path_beg /b4 }}
    use_backend b5 if {{ path_beg /b5 }}
    default_backend b

backend b
    errorloc 503 http://maint.example.com/down

backend b2
    errorloc303 503 /maint

backend b3
    http-error status 503 content-type "text/html; charset=utf-8" string "<h1>down</h1>" hdr x-a 1

backend b4
    http-error status 503 errorfile {d}/e503.http

backend b5
    http-error status 503
"""

# what HAProxy 2.6.12 sent for each path (2026-11-23, the same configuration)
EXPECTED = {
    "/": b"HTTP/1.1 302 Found\r\ncache-control: no-cache\r\ncontent-length: 0\r\n"
         b"location: http://maint.example.com/down\r\n\r\n",
    "/b2": b"HTTP/1.1 303 See Other\r\ncache-control: no-cache\r\ncontent-length: 0\r\n"
           b"location: /maint\r\n\r\n",
    "/b3": b"HTTP/1.1 503 Service Unavailable\r\nx-a: 1\r\ncontent-length: 13\r\n"
           b"content-type: text/html; charset=utf-8\r\n\r\n<h1>down</h1>",
    "/b4": b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n"
           b"connection: close\r\n\r\ncustom\n",
    "/b5": b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n",
}


def _exchange(port: int, paths: list[str],
              complete: Callable[[bytes], bool] = lambda out: False) -> tuple[bytes, bool]:
    """Send the requests on one connection; what came back, and whether the proxy
    closed the connection afterwards. Once ``complete(out)`` holds, a close would come
    at once: the connection is watched for half a second more instead of three."""
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    try:
        s.sendall(b"".join(f"GET {p} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for p in paths))
        out = b""
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    return out, True
                out += d
                if complete(out):
                    s.settimeout(0.5)
        except TimeoutError:
            return out, False
    finally:
        s.close()


def test_replies_are_haproxys_bytes(tmp_path: Path) -> None:
    (tmp_path / "e503.http").write_bytes(ERRORFILE)
    with LbProcess(CFG.format(fe="@@fe@@", d=tmp_path)) as lb:
        port = lb.ports["fe"]
        for path, expected in EXPECTED.items():
            if path == "/b4":
                continue
            want = len(expected) * 2
            out, closed = _exchange(port, [path, path],  # kept alive: both answered
                                    lambda out, n=want: len(out) >= n)
            assert out == expected * 2 and not closed, path
        # a request answered from its head alone keeps its connection, as with HAProxy
        out, closed = _exchange(port, ["/deny", "/deny"],
                                lambda out: out.count(b"HTTP/1.1 403 Forbidden\r\n") == 2)
        assert out.count(b"HTTP/1.1 403 Forbidden\r\n") == 2 and not closed
        # an errorfile that gives no length ends with the connection
        out, closed = _exchange(port, ["/b4", "/b4"])
        assert out == EXPECTED["/b4"] and closed
