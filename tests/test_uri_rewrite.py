"""set-path, set-pathq, set-uri and the replace-path / replace-pathq / replace-uri
actions, byte for byte as HAProxy 2.6.12 rewrites the request line.

The replace actions search for the regex (it is not anchored) and replace the part
whole by the rendered format, back-references expanded (``exp_replace``). The path
actions keep ``scheme://authority`` of an absolute-form target; set-uri and
replace-uri work on the whole target. Each case runs through lb and, where it is
installed, HAProxy; the expected request lines are what HAProxy sent.

One deliberate difference, checked at the end: a result holding a blank leaves
the request alone in lb, where HAProxy writes it into the request line.
"""

from __future__ import annotations

import os
import socket

import pytest

from tests.lbproc import RawBackend
from tests.support_e2e import (
    HAPROXY,
    UdpLog,
    answer_ok,
    head_sent_through,
    lb_or_haproxy,
    one_backend_config,
)

pytestmark = pytest.mark.timeout(60)

KINDS = ["lb", "haproxy"] if os.path.exists(HAPROXY) else ["lb"]
ORIGIN = b"/a//b?q=1&r=2"
ABSOLUTE = b"http://h.com/a/b?q=1"
BARE = b"/a/b"

CASES = [
    ("set-path /new", ORIGIN, b"/new?q=1&r=2"),
    ("set-path /new", ABSOLUTE, b"http://h.com/new?q=1"),
    ("set-pathq /new?x=1", ABSOLUTE, b"http://h.com/new?x=1"),
    ("set-pathq /new", ORIGIN, b"/new"),
    ("set-uri /u?x=1", ABSOLUTE, b"/u?x=1"),
    (r"replace-path /a/(.*) /b/\1", ORIGIN, b"/b//b?q=1&r=2"),
    (r"replace-path (.*) /pre\1", ABSOLUTE, b"http://h.com/pre/a/b?q=1"),
    (r"replace-path ^/a /z", ORIGIN, b"/z?q=1&r=2"),
    ("replace-path q /nq", ORIGIN, b"/a//b?q=1&r=2"),
    (r"replace-path (b) %[req.hdr(host)]\1", BARE, b"h.comb"),
    (r"replace-pathq (.*)\?(.*) \1;\2", ABSOLUTE, b"http://h.com/a/b;q=1"),
    (r"replace-pathq ^/a/(.*) /c/\1", BARE, b"/c/b"),
    (r"replace-uri ^http://([^/]*)(.*) https://\1\2", ABSOLUTE, b"https://h.com/a/b?q=1"),
    (r"replace-uri (.*) \1&added=1", BARE, b"/a/b&added=1"),
    ("replace-uri /b /x", ORIGIN, b"/x"),
]


def request_line_sent(kind: str, rule: str, target: bytes) -> bytes:
    text = one_backend_config(f"    http-request {rule}")
    head = head_sent_through(kind, text, b"GET " + target + b" HTTP/1.1\r\nHost: h.com\r\n\r\n")
    return head.split(b"\r\n", 1)[0]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("rule", "target", "sent"), CASES,
                         ids=[f"{r} {t.decode()}" for r, t, _ in CASES])
def test_request_target_rewrites_match_haproxy(kind: str, rule: str, target: bytes,
                                               sent: bytes) -> None:
    assert request_line_sent(kind, rule, target) == b"GET " + sent + b" HTTP/1.1"


def test_a_blank_in_the_result_leaves_the_request_alone() -> None:
    """HAProxy 2.6.12 sends `GET x y?q=1&r=2 HTTP/1.1` for this rule: a request line
    the server cannot parse. lb keeps the request as it was."""
    assert request_line_sent("lb", r"replace-path b x\x20y", ORIGIN) == \
        b"GET /a//b?q=1&r=2 HTTP/1.1"


@pytest.mark.parametrize(("rule", "message"), [
    ("replace-path /a", "expects exactly 2 arguments <match-regex> and <replace-format>."),
    ("replace-uri", "expects exactly 2 arguments <match-regex> and <replace-format>."),
    ("set-pathq", "expects exactly 1 argument <format>."),
])
def test_argument_errors_are_haproxys(rule: str, message: str) -> None:
    from lb.config import load_text
    text = one_backend_config(f"    http-request {rule}")
    res = load_text(text.replace("@@fe@@", "8080").replace("@@s1@@", "8081"))
    errors = [d.text for d in res.diagnostics if d.fatal]
    assert any(e.endswith(f"while parsing 'http-request {rule.split()[0]}' rule : {message}")
               for e in errors), errors


@pytest.mark.parametrize("kind", KINDS)
def test_the_log_shows_the_request_as_received(kind: str) -> None:
    """HAProxy 2.6.12 logs the request line the client sent (`%r`, `%HM`, `%HU`,
    `%HP`), and `capture.req.*` read it too, whatever the rules rewrote. lb logged
    the rewritten one until session 29."""
    log = UdpLog()
    text = one_backend_config(
        f"    log 127.0.0.1:{log.port} local0\n    option dontlognull\n"
        "    http-request set-path /new\n    http-request set-method POST\n"
        '    log-format "%r|%HM|%HU|%HP|%[capture.req.uri]|%[capture.req.method]|'
        '%[capture.req.ver]"')
    try:
        with RawBackend(answer_ok) as srv, lb_or_haproxy(kind, text, {"s1": srv.port}) as px:
            with socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5) as c:
                c.sendall(b"GET /old?q=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                while c.recv(65536):
                    pass
            log.sock.settimeout(5)
            line = log.sock.recv(65536)
        assert line.split(b": ", 1)[1] == (
            b"GET /old?q=1 HTTP/1.1|GET|/old?q=1|/old|/old?q=1|GET|HTTP/1.1\n")
        (head,) = [h for h in srv.received if h]
        assert head.startswith(b"POST /new?q=1 HTTP/1.1\r\n")  # the server got the rewrite
    finally:
        log.close()

