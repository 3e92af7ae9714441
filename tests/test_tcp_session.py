"""`tcp-request session` rules: once per client connection, after the connection
rules, and what a refused connection or session counts; and HAProxy's warnings for
rules written after a kind of rule that runs later.

Compared with HAProxy 2.6.12 on 127.0.0.1 (2026-11-25). With ``ONCE`` below, two
requests on one connection answered ``s=1 c=1`` then ``s=1 c=2``: the session rule ran
once, the content rule once per request (lb ran session rules with the content ones
before, and said ``s=2``). With `tcp-request connection reject`, each refused
connection was reset, counted in `dcon` and `conn_tot`, and not in `stot` (lb counted
it there too before); with `tcp-request session reject`, the connection was closed
(a FIN when the client had sent nothing), counted in `dses` and not in `stot`. Neither
is logged. The rule-order warnings are compared live with `haproxy -c`.
"""

from __future__ import annotations

import http.client
import socket
import time

import pytest

from tests.lbproc import LbThread
from tests.test_config_haproxy_diff import HEAD, assert_check_like_haproxy

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("lines", [
    "http-request deny\n tcp-request content accept",
    "http-request deny\n tcp-request connection accept",
    "use_backend b if TRUE\n tcp-request content accept",
    "tcp-request session accept\n tcp-request session accept",
    "tcp-request connection accept\n tcp-request session accept",
    "http-request deny\n tcp-request session accept",
    "redirect location /\n tcp-request session accept",
    "use_backend b if TRUE\n tcp-request connection accept",
    "tcp-request content accept\n tcp-request session accept",
    "tcp-request session accept\n tcp-request connection accept",
    "tcp-request content accept\n tcp-request connection accept",
    "use-server s if TRUE\n tcp-request content accept",
    # the other kinds HAProxy warns about (lb adds a hint line after use_backend only)
    "redirect location /\n http-request deny", "use-server s if TRUE\n http-request deny",
    "use_backend b if TRUE\n redirect location /", "use-server s if TRUE\n redirect location /",
    "use-server s if TRUE\n use_backend b if TRUE",
])
def test_rule_order_warnings_match_haproxy(tmp_path, capsys, lines):  # type: ignore[no-untyped-def]
    path = str(tmp_path / "o.cfg")
    with open(path, "w") as fh:
        fh.write(HEAD + "listen f\n bind :18090\n " + lines + "\n server s 127.0.0.1:1\n"
                 "backend b\n")
    assert_check_like_haproxy(path, capsys)


ONCE = """
defaults
    mode http
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend fe
    bind 127.0.0.1:@@fe@@
    tcp-request session set-var(sess.s) var(sess.s,0),add(1)
    tcp-request content set-var(sess.c) var(sess.c,0),add(1)
    http-request return status 200 content-type text/plain lf-string "s=%[var(sess.s)] c=%[var(sess.c)]"
"""


def test_session_rules_run_once_per_connection() -> None:
    with LbThread(ONCE) as lb:
        c = http.client.HTTPConnection("127.0.0.1", lb.ports["fe"], timeout=5)
        answers = []
        for _ in range(2):
            c.request("GET", "/")
            answers.append(c.getresponse().read())
        c.close()
    assert answers == [b"s=1 c=1", b"s=1 c=2"]


REJECT = """
defaults
    mode http
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend fe
    bind 127.0.0.1:@@fe@@
    tcp-request {where} reject if {{ src 127.0.0.1 }}
    http-request return status 200
"""


def _refused(port: int, send: bool) -> str:
    """How the connection ended: "reset" or "closed" (a reset may already reach the
    connect call on a busy machine)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            time.sleep(0.1)
            if send:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            return "closed" if s.recv(100) == b"" else "answered"
    except ConnectionResetError:
        return "reset"


@pytest.mark.parametrize("where,ends,denied", [
    ("connection", "reset", "dcon"),
    ("session", "closed", "dses"),
])
def test_refused_connections_and_sessions_count_like_haproxy(where: str, ends: str,
                                                             denied: str) -> None:
    with LbThread(REJECT.format(where=where)) as lb:
        port = lb.ports["fe"]
        c = lb.call(lambda: lb.state.frontends["fe"].counters)
        before = (c.conn_tot, getattr(c, denied))  # the start-up check connected once
        assert _refused(port, send=where == "connection") == ends
        assert _refused(port, send=False) in (ends, "closed")
        assert (c.conn_tot - before[0], getattr(c, denied) - before[1]) == (2, 2)
        assert c.stot == 0 and c.scur == 0 and c.req_tot == 0
        assert lb.call(lambda: lb.state.sess_rate.read(time.time())) == 0
