"""`use-server`, `server-template` and `http-send-name-header`: HAProxy's texts for
their errors (both binaries run on each case) and the traffic they shape."""

from __future__ import annotations

import http.client
import os
from pathlib import Path
from typing import Any

import pytest

from lb.config import load_text
from tests.backends import HttpBackend
from tests.lbproc import LbProcess
from tests.stats_support import ADMIN_HEAD, query, wait_socket
from tests.test_config_haproxy_diff import HAPROXY, assert_backend_lines_like_haproxy

CHECK_CASES = [
    " server s 127.0.0.1:80\n use-server x if TRUE",
    " server s 127.0.0.1:80\n use-server s",
    " server s 127.0.0.1:80\n use-server",
    " server s 127.0.0.1:80\n use-server s if",
    " server s 127.0.0.1:80\n use-server s bogus TRUE",
    " server-template srv 3 127.0.0.1:80 check",
    " server-template srv 1-3 127.0.0.1:80",
    " server-template srv 0 127.0.0.1:80",
    " server-template srv 3-1 127.0.0.1:80",
    " server-template srv",
    " server-template srv 3",
    " server-template srv x 127.0.0.1:80",
    " server-template srv 2 127.0.0.1:80\n server srv1 127.0.0.1:81",
    " server s 127.0.0.1:80\n http-send-name-header",
    " server s 127.0.0.1:80\n http-send-name-header X-Srv extra",
]


@pytest.mark.skipif(not os.path.exists(HAPROXY), reason="needs Debian's haproxy")
@pytest.mark.parametrize("stmt", CHECK_CASES)
def test_check_messages_match_haproxy(tmp_path: Path, capsys: Any, stmt: str) -> None:
    assert_backend_lines_like_haproxy(tmp_path, capsys, stmt)


def test_a_template_is_servers_numbered_from_its_range() -> None:
    res = load_text("backend b\n mode http\n server-template web 3-5 127.0.0.1:8080 "
                    "check weight 7\n")
    assert res.ok, res.diagnostics
    (b,) = res.config.proxies
    assert [(s.name, s.puid, s.port, s.weight, s.check) for s in b.servers] == [
        ("web3", 1, 8080, 7, True), ("web4", 2, 8080, 7, True), ("web5", 3, 8080, 7, True)]


CFG = ADMIN_HEAD + """
frontend fe
    bind 127.0.0.1:{fe}
    default_backend be

backend be
    balance roundrobin
    http-send-name-header X-Srv
    use-server b if {{ path_beg /b }}
    use-server a if {{ path_beg /a }}
    server a 127.0.0.1:{a}
    server b 127.0.0.1:{b}
"""


def _get(port: int, path: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"X-Srv": "forged"})
        r = conn.getresponse()
        r.read()
        return r.getheader("x-server") or str(r.status)
    finally:
        conn.close()


def test_use_server_routes_and_the_server_hears_its_name(tmp_path: Path) -> None:
    """A use-server rule wins over round robin while its server is up, and is skipped
    when that server is in maintenance; each request reaches its server with one
    X-Srv header naming it (the client's own is replaced)."""
    sock = str(tmp_path / "lb.sock")
    with HttpBackend("a") as a, HttpBackend("b") as b, \
            LbProcess(CFG.format(sock=sock, fe="@@fe@@", a=a.port, b=b.port)) as lb:
        port = lb.ports["fe"]
        wait_socket(sock)
        assert [_get(port, "/b/x") for _ in range(4)] == ["b"] * 4
        assert [_get(port, "/a/x") for _ in range(4)] == ["a"] * 4
        assert {_get(port, "/other") for _ in range(4)} == {"a", "b"}
        for be in (a, b):
            names = [v for r in be.requests for k, v in r.headers if k.lower() == "x-srv"]
            assert names == [be.name] * len(be.requests)
        assert query(sock, "disable server be/b") == "\n"
        assert [_get(port, "/b/x") for _ in range(3)] == ["a"] * 3
