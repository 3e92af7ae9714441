"""`option originalto`: the address the client connected to, for the server.

Compared with HAProxy 2.6.12 on 127.0.0.1 (2026-11-25) with ``CFG`` below and a
backend that echoes the request head; each request also carried its own
`X-Original-To: given`. HAProxy sent, after the request's headers:
f1 `x-original-to: 127.0.0.1` (the request's own header kept, a second one
appended); f2 only `x-forwarded-for: 127.0.0.1` (127.0.0.1 is in its `except`);
f3 `x-be: 127.0.0.1` (the backend's header name wins over the frontend's); f4 nothing
(the frontend's `except` applies though the backend has the option without one); f5
`x-forwarded-for: 127.0.0.1` then `x-original-to: 127.0.0.1`; over IPv6, `x-original-to:
::1`. The configuration errors are compared live with `haproxy -c`.
"""

from __future__ import annotations

import http.client

import pytest

from tests.backends import HttpBackend
from tests.lbproc import LbThread, has_ipv6_loopback
from tests.test_config_haproxy_diff import HEAD, assert_check_like_haproxy

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("stmt", [
    "option originalto foo", "option originalto except", "option originalto header",
    "option originalto except 10.0.0.0/8 header X-A", "option originalto except bad/99",
    "option originalto header X-A header X-B", "option originalto except 10.0.0.1",
    "option originalto except ::1/128", "option originalto except 10.0.0.0/8 x",
])
def test_messages_match_haproxy(tmp_path, capsys, stmt):  # type: ignore[no-untyped-def]
    path = str(tmp_path / "o.cfg")
    with open(path, "w") as fh:
        fh.write(HEAD + "listen l\n bind :18080\n " + stmt + "\n server s 127.0.0.1:80\n")
    assert_check_like_haproxy(path, capsys)


CFG = """
defaults
    mode http
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend f1
    bind 127.0.0.1:@@f1@@
    {v6}
    option originalto
    default_backend b1
frontend f2
    bind 127.0.0.1:@@f2@@
    option originalto header X-Dst except 127.0.0.0/8
    option forwardfor
    default_backend b1
frontend f3
    bind 127.0.0.1:@@f3@@
    option originalto header X-Fe
    default_backend b3
frontend f4
    bind 127.0.0.1:@@f4@@
    option originalto except 127.0.0.0/8
    default_backend b4
frontend f5
    bind 127.0.0.1:@@f5@@
    option originalto
    option forwardfor
    default_backend b1
backend b1
    server s 127.0.0.1:@@be@@
backend b3
    option originalto header X-Be except 10.0.0.0/8
    server s 127.0.0.1:@@be@@
backend b4
    option originalto
    server s 127.0.0.1:@@be@@
"""

_ADDED = {
    "f1": [("x-original-to", "127.0.0.1")],
    "f2": [("x-forwarded-for", "127.0.0.1")],
    "f3": [("x-be", "127.0.0.1")],
    "f4": [],
    "f5": [("x-forwarded-for", "127.0.0.1"), ("x-original-to", "127.0.0.1")],
}


def _added(be: HttpBackend, host: str, port: int) -> list[tuple[str, str]]:
    c = http.client.HTTPConnection(host, port, timeout=5)
    c.request("GET", "/", headers={"X-Original-To": "given"})
    assert c.getresponse().status == 200
    c.close()
    headers = [(k.lower(), v) for k, v in be.requests[-1].headers]
    at = headers.index(("x-original-to", "given"))
    return headers[at + 1:]


def test_headers_sent_like_haproxy() -> None:
    v6 = has_ipv6_loopback()
    with HttpBackend() as be, LbThread(CFG.format(v6="bind [::1]:@@f6@@" if v6 else ""),
                                       ports={"be": be.port}) as lb:
        got = {fe: _added(be, "127.0.0.1", lb.ports[fe]) for fe in _ADDED}
        assert got == _ADDED
        if v6:
            assert _added(be, "::1", lb.ports["f6"]) == [("x-original-to", "::1")]
