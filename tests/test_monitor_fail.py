"""`monitor fail`: the monitor-uri answers 503 while a condition holds, compared with
HAProxy 2.6.12 on 127.0.0.1 (2026-11-25): the answers, the frontend counters, no
log line, and the `-c` texts (live when HAProxy is installed)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.backends import HttpBackend
from tests.lbproc import LbProcess, raw_request
from tests.stats_support import query, wait_socket
from tests.support_e2e import HAPROXY, Haproxy
from tests.test_config_haproxy_diff import assert_text_like_haproxy

pytestmark = pytest.mark.timeout(60)

HAVE_HAPROXY = os.path.exists(HAPROXY)
KINDS = ["lb", "haproxy"] if HAVE_HAPROXY else ["lb"]

HEAD = ("defaults\n mode http\n timeout client 1s\n timeout server 1s\n timeout connect 1s\n"
        "frontend f\n bind 127.0.0.1:18081\n")
CHECK_CASES = [
    HEAD + " monitor fail\n", HEAD + " monitor fail foo\n", HEAD + " monitor fail if\n",
    HEAD + " monitor foo\n", HEAD + " monitor\n", HEAD + " monitor fail if nosuch\n",
    HEAD + " http-request deny if FALSE\n monitor fail if TRUE\n",
    HEAD + " use_backend b if TRUE\n monitor fail if TRUE\nbackend b\n",
    HEAD + " monitor fail if TRUE\n tcp-request session accept\n",
    HEAD + " monitor fail if TRUE\n tcp-request content accept\n",
    HEAD + " monitor fail if TRUE\n http-request deny if FALSE\n",
    "defaults\n mode http\n monitor fail if TRUE\nfrontend f\n bind :18081\n",
]


@pytest.mark.skipif(not HAVE_HAPROXY, reason="needs Debian's haproxy")
@pytest.mark.parametrize("text", CHECK_CASES)
def test_check_messages_match_haproxy(tmp_path: Path, capsys: Any, text: str) -> None:
    assert_text_like_haproxy(tmp_path, capsys, text)


CFG = """
global
    stats socket {sock} level admin

defaults
    mode http
    log 127.0.0.1:@@log@@ local0
    option httplog
    timeout connect 1s
    timeout client 5s
    timeout server 1s

frontend fe
    bind 127.0.0.1:@@fe@@
    monitor-uri /alive
    acl site_dead nbsrv(app) lt 1
    monitor fail if site_dead
    monitor fail if {{ hdr(x-fail) -m found }}
    monitor fail unless {{ hdr(x-ok) -m found }} {{ hdr(x-ok2) -m found }}
    http-request deny if {{ path /alive }} {{ hdr(x-deny) -m found }}
    default_backend app

frontend quiet
    bind 127.0.0.1:@@quiet@@
    monitor-uri /alive
    monitor fail if
    http-request return status 200

backend app
    server s1 127.0.0.1:@@app@@
"""

OK = b"x-ok: 1\r\nx-ok2: 1\r\n"
# request headers -> the status line HAProxy 2.6.12 answered (the monitor comes before
# the http-request rules: x-deny changes nothing)
CASES = [(OK, b"HTTP/1.1 200 OK"), (b"x-ok: 1\r\n", b"HTTP/1.1 503 Service Unavailable"),
         (OK + b"x-fail: 1\r\n", b"HTTP/1.1 503 Service Unavailable"),
         (OK + b"x-deny: 1\r\n", b"HTTP/1.1 200 OK")]


def _status(port: int, headers: bytes) -> bytes:
    raw = b"GET /alive HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n"
    return raw_request(port, raw, until_close=False).split(b"\r\n", 1)[0]


def _frontend(sock: str, name: str) -> dict[str, str]:
    lines = query(sock, "show stat").splitlines()
    names = lines[0].lstrip("# ").split(",")
    return next(dict(zip(names, ln.split(","), strict=False)) for ln in lines
                if ln.startswith(f"{name},FRONTEND,"))


@pytest.mark.parametrize("kind", KINDS)
def test_monitor_fail_answers_503_while_its_condition_holds(kind: str, tmp_path: Path) -> None:
    sock = str(tmp_path / "stats.sock")
    log = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    log.bind(("127.0.0.1", 0))
    log.settimeout(0.5)
    try:
        with HttpBackend("s1") as app:
            ports = {"log": log.getsockname()[1], "app": app.port}
            text = CFG.format(sock=sock)
            proxy = LbProcess(text, ports) if kind == "lb" else Haproxy(
                text, ports, single_thread=True)
            with proxy as px:
                wait_socket(sock)
                got = [_status(px.ports["fe"], h) for h, _ in CASES]
                quiet = _status(px.ports["quiet"], b"")
                query(sock, "disable server app/s1")  # nbsrv(app) drops to 0
                down = _status(px.ports["fe"], OK)
                fe = _frontend(sock, "fe")
                lines = []
                try:
                    while True:
                        lines.append(log.recv(4096))
                except TimeoutError:
                    pass
    finally:
        log.close()
    assert got == [status for _, status in CASES]
    assert quiet == b"HTTP/1.1 200 OK"  # an empty condition never holds
    assert down == b"HTTP/1.1 503 Service Unavailable"
    assert (fe["req_tot"], fe["hrsp_2xx"], fe["hrsp_5xx"], fe["intercepted"]) == \
        ("5", "2", "3", "5")
    # monitor requests are never logged, failing or not (the server's going down is)
    assert [ln for ln in lines if b"GET /alive" in ln] == []
    assert any(b"Server app/s1 is going DOWN for maintenance" in ln for ln in lines)
