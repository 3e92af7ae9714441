"""`option http-restrict-req-hdr-names preserve|delete|reject`, against HAProxy 2.6.12
(2026-11-25, 127.0.0.1): request header names with a character outside
[A-Za-z0-9-] are dropped or refused (403, as a deny) after the proxy's own
http-request rules, by the frontend and then by the backend. Each runtime case also
runs HAProxy when it is installed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.backends import HttpBackend
from tests.lbproc import LbProcess, raw_request
from tests.stats_support import ADMIN_HEAD, query, wait_socket
from tests.support_e2e import HAPROXY, Haproxy
from tests.test_config_haproxy_diff import assert_text_like_haproxy

pytestmark = pytest.mark.timeout(60)

HAVE_HAPROXY = os.path.exists(HAPROXY)
KINDS = ["lb", "haproxy"] if HAVE_HAPROXY else ["lb"]

HEAD = ("defaults\n mode http\n timeout client 1s\n timeout server 1s\n timeout connect 1s\n"
        "frontend f\n bind :18081\n")
CHECK_CASES = [HEAD + f" {stmt}\n" for stmt in (
    "option http-restrict-req-hdr-names", "option http-restrict-req-hdr-names foo",
    "no option http-restrict-req-hdr-names", "default option http-restrict-req-hdr-names",
    "option http-restrict-req-hdr-names reject extra",
    "option http-restrict-req-hdr-names delete")] + [
    HEAD.replace("defaults\n mode http", "defaults\n mode tcp\n option "
                 "http-restrict-req-hdr-names reject")]


@pytest.mark.skipif(not HAVE_HAPROXY, reason="needs Debian's haproxy")
@pytest.mark.parametrize("text", CHECK_CASES)
def test_check_messages_match_haproxy(tmp_path: Path, capsys: Any, text: str) -> None:
    assert_text_like_haproxy(tmp_path, capsys, text)


CFG = ADMIN_HEAD + """
frontend f
    bind 127.0.0.1:@@fe@@
    option http-restrict-req-hdr-names delete
    http-request set-header X_Added 1 if {{ path /add }}
    use_backend rej if {{ path_beg /rej }}
    default_backend b

frontend strict
    bind 127.0.0.1:@@strict@@
    option http-restrict-req-hdr-names reject
    default_backend b

backend b
    server s1 127.0.0.1:@@be@@

backend rej
    option http-restrict-req-hdr-names reject
    http-request set-header X_Late 1
    server s1 127.0.0.1:@@be@@
"""

ODD = b"X_Foo: 1\r\nX-Ok: 2\r\nX.Dot: 3\r\nx~t: 4\r\n"


def _x_headers(be: HttpBackend) -> list[str]:
    req = be.requests[-1]
    return sorted(k.lower() for k, _ in req.headers if k.lower().startswith("x"))


@pytest.mark.parametrize("kind", KINDS)
def test_names_are_dropped_or_refused_as_haproxy_does(kind: str, tmp_path: Path) -> None:
    sock = str(tmp_path / "s.sock")
    with HttpBackend("s1") as be:
        text = CFG.format(sock=sock)
        ports = {"be": be.port}
        proxy = LbProcess(text, ports) if kind == "lb" else Haproxy(text, ports,
                                                                    single_thread=True)
        with proxy as px:
            wait_socket(sock)

            def ask(port: int, path: str, extra: bytes = b"") -> bytes:
                raw = f"GET {path} HTTP/1.1\r\nHost: x\r\n".encode() + extra + b"\r\n"
                return raw_request(port, raw, until_close=False).split(b" ", 2)[1]

            assert ask(px.ports["fe"], "/", ODD) == b"200"
            assert _x_headers(be) == ["x-ok"]
            # a header the rules added is checked too: they run first
            assert ask(px.ports["fe"], "/add") == b"200"
            assert _x_headers(be) == []
            # the backend's own rule adds one its option then refuses
            assert ask(px.ports["fe"], "/rej") == b"403"
            assert ask(px.ports["strict"], "/", b"X-Ok: 1\r\n") == b"200"
            assert ask(px.ports["strict"], "/", ODD) == b"403"
            rows = query(sock, "show stat").splitlines()
    names = rows[0].lstrip("# ").split(",")
    stat = {(r["pxname"], r["svname"]): r for r in
            (dict(zip(names, ln.split(","), strict=False)) for ln in rows[1:] if ln)}
    # refused as a deny: dreq on the frontend (and the backend whose option refused)
    assert [stat[("f", "FRONTEND")][k] for k in ("dreq", "hrsp_4xx")] == ["1", "1"]
    assert [stat[("rej", "BACKEND")][k] for k in ("dreq", "hrsp_4xx")] == ["1", "1"]
    assert [stat[("strict", "FRONTEND")][k] for k in ("dreq", "hrsp_4xx")] == ["1", "1"]
    assert len(be.requests) == 3
