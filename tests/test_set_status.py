"""`http-response set-status`, as HAProxy 2.6.12 applies it.

Each case runs through lb and, where it is installed, HAProxy, against a server that
answers ``200 OK`` with a 2-byte body; the client's bytes and the logged status must
be the ones HAProxy gave. Without ``reason``, the reason is HAProxy's own for the
code (its list differs from the RFC's in places), else the name of the code's class.
A 204 drops the body the server sent. A 1xx is not applied by lb; HAProxy then sent
the client nothing at all.
"""

from __future__ import annotations

import os
import socket

import pytest

from lb.http.responses import set_status_reason
from tests.lbproc import RawBackend
from tests.support_e2e import HAPROXY, UdpLog, answer_ok, lb_or_haproxy, one_backend_config

pytestmark = pytest.mark.timeout(60)

KINDS = ["lb", "haproxy"] if os.path.exists(HAPROXY) else ["lb"]

CASES = [
    ("set-status 299", b"HTTP/1.1 299 Success\r\ncontent-length: 2\r\n\r\nok"),
    ("set-status 404", b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\nok"),
    ('set-status 503 reason "Gone Fishing"',
     b"HTTP/1.1 503 Gone Fishing\r\ncontent-length: 2\r\n\r\nok"),
    ("set-status 418", b"HTTP/1.1 418 I'm a teapot\r\ncontent-length: 2\r\n\r\nok"),
    ("set-status 599", b"HTTP/1.1 599 Server Error\r\ncontent-length: 2\r\n\r\nok"),
    ("set-status 999", b"HTTP/1.1 999 Other\r\ncontent-length: 2\r\n\r\nok"),
    ("set-status 204", b"HTTP/1.1 204 No Content\r\n\r\n"),
]


def _run(kind: str, rule: str, requests: int = 1) -> tuple[bytes, list[bytes]]:
    log = UdpLog()
    text = one_backend_config(f"    http-response {rule}").replace(
        "defaults\n", f"global\n    log 127.0.0.1:{log.port} local0\ndefaults\n"
                      "    log global\n    option httplog\n", 1)
    with RawBackend(answer_ok) as srv, lb_or_haproxy(kind, text, {"s1": srv.port}) as px:
        with socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5) as c:
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * requests)
            c.shutdown(socket.SHUT_WR)
            got = b""
            while chunk := c.recv(65536):
                got += chunk
        lines = log.lines(requests)
    return got, [line.split(b"] ", 1)[1].split()[3] for line in lines]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("rule", "reply"), CASES, ids=[c[0] for c in CASES])
def test_set_status_matches_haproxy(kind: str, rule: str, reply: bytes) -> None:
    got, statuses = _run(kind, rule)
    assert got == reply
    assert statuses == [reply.split()[1]]


def test_a_204_made_by_set_status_keeps_the_connection_in_step() -> None:
    """The body the server sent behind its 200 is not passed on: the next response
    on the same client connection starts where it should."""
    got, statuses = _run("lb", "set-status 204", requests=2)
    assert got == b"HTTP/1.1 204 No Content\r\n\r\n" * 2
    assert statuses == [b"204", b"204"]


def test_a_1xx_is_not_applied() -> None:
    got, statuses = _run("lb", "set-status 100")
    assert got == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
    assert statuses == [b"200"]


def test_default_reasons_are_haproxys() -> None:
    """Read from HAProxy 2.6.12's answers (session 28, every code from 200 to 599)."""
    assert [set_status_reason(c) for c in (200, 302, 408, 413, 416, 422, 502, 520)] == [
        b"OK", b"Moved Temporarily", b"Request Time-out", b"Request Entity Too Large",
        b"Requested range unsatisfiable", b"Unprocessable Content",
        b"Bad Gateway or Proxy Error", b"Web server is returning an unknown error"]
    assert [set_status_reason(c) for c in (150, 250, 399, 460, 590, 600, 999)] == [
        b"Informational", b"Success", b"Redirection", b"Client Error", b"Server Error",
        b"Other", b"Other"]


@pytest.mark.parametrize(("kw", "rule", "message"), [
    ("http-response", "set-status", "expects 1 argument: <status>; or 3 arguments: "
                                    "<status> reason <fmt>."),
    ("http-response", "set-status 99", "expects an integer status code between 100 and 999."),
    ("http-response", "set-status abc", "expects an integer status code between 100 and 999."),
    ("http-response", "set-status 1000",
     "expects an integer status code between 100 and 999."),
])
def test_set_status_errors_are_haproxys(kw: str, rule: str, message: str) -> None:
    from lb.config import load_text
    text = one_backend_config(f"    {kw} {rule}").replace("@@fe@@", "8080").replace(
        "@@s1@@", "8081")
    errors = [d.text for d in load_text(text).diagnostics if d.fatal]
    assert any(e.endswith(f"while parsing '{kw} set-status' rule : {message}")
               for e in errors), errors


@pytest.mark.parametrize("kw", ["http-request", "http-after-response"])
def test_set_status_is_refused_where_lb_does_not_apply_it(kw: str) -> None:
    """HAProxy has no http-request set-status; lb applies set-status to proxied
    responses only, so http-after-response (which also sees lb's own replies) refuses
    it rather than apply it to some responses and not others."""
    from lb.config import load_text
    text = one_backend_config(f"    {kw} set-status 404").replace("@@fe@@", "8080").replace(
        "@@s1@@", "8081")
    res = load_text(text)
    assert not res.ok
    assert any("set-status" in d.text for d in res.diagnostics if d.fatal)
