"""`option idle-close-on-response` during a soft stop, compared with HAProxy 2.6.12.

Without it, an idle keep-alive connection is closed as soon as the soft stop begins
(a client that does not retry a request written on it sees an error: the reason
the option exists, for load balancers such as AWS's ALB in front of the proxy).
With it, the connection waits for one more request, whose response says
`connection: close`, and then closes.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from typing import Any

import pytest

from tests.lbproc import LbProcess
from tests.support_e2e import Haproxy
from tests.test_config_haproxy_diff import assert_text_like_haproxy

CONFIG = """defaults
 mode http
 timeout client 5s
 timeout server 5s
 timeout connect 1s
 timeout http-keep-alive 5s
frontend fe
 bind 127.0.0.1:@@fe@@
 option idle-close-on-response
 http-request return status 200 content-type text/plain string ok
frontend plain
 bind 127.0.0.1:@@plain@@
 http-request return status 200 content-type text/plain string ok
"""

REQ = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"


def _head(data: bytes) -> list[bytes]:
    return data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def _read_response(s: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\nok" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


@pytest.mark.parametrize("kind", ["haproxy", "lb"])
def test_idle_connection_gets_one_more_response(kind: str) -> None:
    proxy: Any = LbProcess(CONFIG) if kind == "lb" else Haproxy(CONFIG)
    with proxy:
        socks = {}
        for name in ("fe", "plain"):
            s = socket.create_connection(("127.0.0.1", proxy.ports[name]), timeout=3)
            s.sendall(REQ)
            assert b"connection: close" not in _read_response(s)
            socks[name] = s
        pid = proxy.pid if kind == "lb" else proxy.proc.pid
        os.kill(pid, signal.SIGUSR1)
        time.sleep(0.5)
        try:
            # without the option: closed at once, the request written on it is lost
            plain = socks["plain"]
            try:
                plain.sendall(REQ)
                assert plain.recv(4096) == b""
            except ConnectionResetError:
                pass
            # with it: one more answer, which closes
            kept = socks["fe"]
            kept.sendall(REQ)
            head = _head(_read_response(kept))
            assert head[0] == b"HTTP/1.1 200 OK" and b"connection: close" in head
            assert kept.recv(4096) == b""
        finally:
            for s in socks.values():
                s.close()


@pytest.mark.parametrize("lines", [
    "backend b\n option idle-close-on-response\n server s 127.0.0.1:1",
    "listen l\n bind 127.0.0.1:18445\n option idle-close-on-response x",
    "listen l\n bind 127.0.0.1:18445\n no option idle-close-on-response",
])
def test_option_like_haproxy(tmp_path: Any, capsys: Any, lines: str) -> None:
    assert_text_like_haproxy(tmp_path, capsys, "defaults\n mode http\n timeout client 1s\n"
                             " timeout server 1s\n timeout connect 1s\n" + lines + "\n")
