"""capture.req.hdr(N) and capture.res.hdr(N): the values caught by a frontend's
`capture request|response header` lines, read back by rules, compared with HAProxy
2.6.12 on the same config and traffic.

HAProxy gives no value for a slot whose header was absent (the header set from it
is then empty) or for an index past the last slot. (HAProxy also refuses
capture.res.hdr in a request rule at load time; lb, which applies none of those
"may not be reliably used here" checks yet, loads it and finds no value there.)
"""

from __future__ import annotations

import os
import socket

import pytest

from tests.lbproc import RawBackend
from tests.support_e2e import HAPROXY, header_sent_through, lb_or_haproxy, one_backend_config

pytestmark = pytest.mark.timeout(60)

KINDS = ["lb", "haproxy"] if os.path.exists(HAPROXY) else ["lb"]

CAPTURES = ("    capture request header Host len 6\n"
            "    capture request header X-Absent len 8\n"
            "    capture request header User-Agent len 32\n")

REQUEST = (b"GET / HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: probe/1.0\r\n"
           b"Connection: close\r\n\r\n")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("expr", "want"), [
    ("capture.req.hdr(0)", b"www.ex"),  # cut to the capture's length
    ("capture.req.hdr(2)", b"probe/1.0"),
    ("capture.req.hdr(1)", b""),  # the header was absent: no value
    ("capture.req.hdr(7)", b""),  # no such slot
    ("capture.req.hdr(2),length", b"9"),
    ("capture.req.hdr(1),length", b""),  # no value at all, not an empty one
    ("capture.req.hdr(7),length", b""),
])
def test_request_captures_read_back(kind: str, expr: str, want: bytes) -> None:
    text = one_backend_config(CAPTURES + f'    http-request set-header X-V "%[{expr}]"')
    assert header_sent_through(kind, text, REQUEST, b"x-v") == [want]


def _answer_with_server_header(c: socket.socket, be: RawBackend) -> None:
    while be.recv_head(c).endswith(b"\r\n\r\n"):
        c.sendall(b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Length: 2\r\n\r\nok")


@pytest.mark.parametrize("kind", KINDS)
def test_response_capture_read_back_by_a_response_rule(kind: str) -> None:
    text = one_backend_config(
        "    capture response header Server len 5\n"
        "    capture response header X-None len 5\n"
        '    http-response set-header X-Srv "%[capture.res.hdr(0)]"\n'
        '    http-response set-header X-None "<%[capture.res.hdr(1)]>"')
    with RawBackend(_answer_with_server_header) as srv, \
            lb_or_haproxy(kind, text, {"s1": srv.port}) as px, \
            socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5) as c:
        c.sendall(REQUEST)
        got = b""
        while chunk := c.recv(65536):
            got += chunk
    head = got.split(b"\r\n\r\n", 1)[0].lower()
    assert b"\r\nx-srv: nginx\r\n" in head + b"\r\n", got
    assert b"\r\nx-none: <>" in head, got
